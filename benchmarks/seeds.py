"""The headline claims over seeds: does the method's advantage survive a new draw of data and initialisation?

Run: ``python benchmarks/seeds.py [--preset fast] [--seeds 0 1 2] [--out docs/results/seeds]``
(``--quick``: the smoke preset, seed 0 only, written to a temporary folder unless ``--out`` is given:
checks the script in a minute; its figures mean nothing).

For each seed the whole world is new: the synthetic identities, the split, the baseline's
initialisation and every run's pair sampling.  Each seed is one experiment,
``run(Experiment(seed=s, runs=...))`` (:func:`hfr_tutorial.experiment.run`, the path of the main
job): the baseline, the method (:data:`~hfr_tutorial.runs.METHOD_RUN`), full fine-tuning
(:data:`~hfr_tutorial.runs.FULL_RUN`) and the method without distillation (its registered
ablation), at the rates chosen on dev for seed 0 (``RunSpec.rates``; re-choosing per seed would be
fairer still and costs a sweep per seed).  The headline figures are read from each seed's claims
(the gap recovered, the VIS change, the method minus full fine-tuning, the distillation effect:
:mod:`hfr_tutorial.experiment.summary`), reported per seed with the mean and the standard deviation
over seeds, beside each seed's paired bootstrap interval: a claim survives when its sign holds on
every seed.

Writes ``seeds.json`` and ``seeds.md``, and each seed's ``metrics.json`` and ``report.md`` under
``seed<N>/`` (the experiment's checkpoints are not kept there); every model is cached, so the
default seed costs nothing more after the main job.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hfr_tutorial.config import get_preset
from hfr_tutorial.experiment import Experiment, run, value_of
from hfr_tutorial.runs import FULL_RUN, METHOD_RUN, ablations

ROOT = Path(__file__).resolve().parents[1]
NO_DISTILL = next(a for a, of in ablations().items() if of == METHOD_RUN)
RUNS = (METHOD_RUN, FULL_RUN, NO_DISTILL)
CLAIMS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "method NIR gap recovered": lambda c: c["runs"][METHOD_RUN]["gap_recovered"]["nir->vis"],
    "method thermal gap recovered": lambda c: c["runs"][METHOD_RUN]["gap_recovered"]["thermal->vis"],
    "method VIS change": lambda c: c["runs"][METHOD_RUN]["vis_change"],
    "method minus full, NIR rank-1": lambda c: c["method_minus_full"]["nir->vis"],
    "method minus full, thermal rank-1": lambda c: c["method_minus_full"]["thermal->vis"],
    "method minus full, VIS rank-1": lambda c: c["method_minus_full"]["vis->vis"],
    "distillation effect on VIS (method)": lambda c: c["distillation_effect"][METHOD_RUN]["vis->vis"],
}
"""Each headline claim, read from one seed's claims (``metrics.json``: ``folds["default"]["claims"]``)."""


def seed_record(metrics: dict[str, Any]) -> dict[str, Any]:
    """One seed's figures: each claim's value (and its paired interval), every model's eval rank-1, the claims."""
    fold = metrics["folds"]["default"]
    claims = fold["claims"]
    picked = {k: f(claims) for k, f in CLAIMS.items()}
    return {"claims": {k: value_of(v) for k, v in picked.items()},
            "intervals": {k: v.get("interval") if isinstance(v, dict) else None for k, v in picked.items()},
            "rank1": {name: {p: v["rank1"] for p, v in r["protocols"].items()}
                      for name, r in fold["models"].items() if r.get("status", "ok") == "ok"},
            "summary": claims}


def markdown(record: dict[str, Any]) -> str:
    seeds = record["seeds"]
    lines = [f"# Headline claims over seeds {seeds} (preset `{record['preset']}`)", "",
             "| claim | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std | same sign on every seed |",
             "|---|" + "---:|" * len(seeds) + "---:|:---:|"]
    for k, c in record["claims"].items():
        lines.append(f"| {k} | " + " | ".join(f"{v:+.3f}" for v in c["values"])
                     + f" | {c['mean']:+.3f} ± {c['std']:.3f} | {'yes' if c['same_sign_every_seed'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smoke preset, seed 0: checks the script works")
    parser.add_argument("--preset", default=None, help="preset (default fast; quick: smoke)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 0 1 2; quick: 0)")
    parser.add_argument("--workers", type=int, default=None,
                        help="models trained side by side on a CPU (default: the library's, HFR_BUILD_WORKERS)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder (default docs/results/seeds; quick: a temporary folder)")
    args = parser.parse_args(argv)
    preset = get_preset(args.preset or ("smoke" if args.quick else "fast"))
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        parser.error(f"--seeds {seeds}: give distinct whole numbers >= 0")
    out = args.out or (Path(tempfile.mkdtemp(prefix="seeds-quick-")) if args.quick else ROOT / "docs/results/seeds")
    start = time.perf_counter()
    per_seed = {}
    for seed in seeds:
        print(f"[seed {seed}]")
        experiment = Experiment(runs=RUNS, preset=preset, seed=seed)
        with tempfile.TemporaryDirectory(prefix=f"seeds-{seed}-") as tmp:
            metrics = run(experiment, Path(tmp) / "run", figures=False, workers=args.workers)
            folder = out / f"seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("metrics.json", "report.md"):  # the record, without the checkpoints' copies
                shutil.copyfile(Path(tmp) / "run" / name, folder / name)
        per_seed[seed] = seed_record(metrics)
    claims = {k: [per_seed[s]["claims"][k] for s in seeds] for k in CLAIMS}
    record = {"preset": preset.name, "seeds": seeds, "runs": list(RUNS), "per_seed": per_seed,
              "claims": {k: {"values": v, "mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1
                             else 0.0, "same_sign_every_seed": bool(all(x > 0 for x in v) or all(x < 0 for x in v))}
                         for k, v in claims.items()},
              "seconds": round(time.perf_counter() - start, 1)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "seeds.md").write_text(markdown(record))
    print(markdown(record))
    print(f"wrote {out / 'seeds.json'} and {out / 'seeds.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

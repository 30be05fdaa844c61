"""Which layers to tune: the hand-picked readings of the paper against an automatic choice, on dev then eval.

Run: ``python benchmarks/policy_study.py [--preset fast] [--seed 0] [--out docs/results/policy_study]``
(``--quick``: the smoke preset, written to a temporary folder unless ``--out`` is given: checks the
script in a minute or two; its figures mean nothing).

xEdgeFace tunes "LayerNorm and shallow early convolutional layers"; Idiap's project page names the
adapted modules "LayerNorm, conv stem, stages S0, S1, S2".  The readings compared here, each with
the method's losses (InfoNCE + self-distillation at the preset's lambda) and the same epochs:

* ``layernorm``; ``layernorm+stem``; ``paper`` (+ stage 0, the tutorial's choice);
  ``layernorm+stem+convs012`` (+ only the convolutions of S0-S2); ``layernorm+stem+stages012``
  (+ all of S0-S2, the literal reading); ``full``;
* **auto**: :func:`hfr_tutorial.autoselect.group_scores` ranks the baseline's parameter groups by
  the empirical Fisher information per parameter of the contrastive loss on dev pairs, *before any
  training*, and :func:`~hfr_tutorial.autoselect.select_groups` takes the best under the ``paper``
  policy's budget (14,488 on EdgeFace-XXS), so the two compare at the same size.

Dev: a policy whose run is registered with a rate for the stand-in (``layernorm``, ``paper``,
``full``: :data:`hfr_tutorial.runs.RUNS`, rates chosen by ``benchmarks/dev_selection.py``) keeps that
rate; each new policy gets its rate from a dev sweep (:func:`hfr_tutorial.selection.lr_sweep`: three
half-decade rates around the rate of the nearest registered policy in size (:data:`START`), one more
past a winning end).  Each new policy is then registered as a run (:class:`~hfr_tutorial.runs.RunSpec`,
role ``variant``, its dev-chosen rate), and eval is **one** experiment,
``run(Experiment(runs=...))`` (:func:`hfr_tutorial.experiment.run`, the main job's path): every
policy's eval figures with paired bootstrap intervals over identities and the share of the
baseline's eval NIR and thermal gap it recovers (its claims).  Writes ``policy_study.json`` and
``policy_study.md``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from hfr_tutorial.artifacts import load_adapted, load_baseline, load_faceset
from hfr_tutorial.autoselect import group_scores, select_groups
from hfr_tutorial.config import Preset, get_preset
from hfr_tutorial.experiment import Experiment, run, value_of
from hfr_tutorial.parallel_build import default_workers, side_by_side
from hfr_tutorial.runs import RUNS, STAND_IN, RunSpec, register_run
from hfr_tutorial.selection import at_edge, lr_sweep
from hfr_tutorial.train import AdaptSettings
from hfr_tutorial.tuning import apply_policy

ROOT = Path(__file__).resolve().parents[1]
HAND_PICKED = ("layernorm", "layernorm+stem", "paper", "layernorm+stem+convs012", "layernorm+stem+stages012", "full")
AUTO = "auto (Fisher per parameter, paper's budget)"
START = {"layernorm+stem": (3e-2, 1e-1, 3e-1),  # between layernorm (3e-1) and paper (3e-2)
         "layernorm+stem+convs012": (1e-2, 3e-2, 1e-1),  # near paper and full (3e-2)
         "layernorm+stem+stages012": (1e-2, 3e-2, 1e-1),
         AUTO: (1e-2, 3e-2, 1e-1)}  # the paper's budget
"""First rates of the sweep of each policy without a registered rate."""
CROSS = ("nir->vis", "thermal->vis")
PROTOCOLS = ("vis->vis", *CROSS)


def registered_rate(settings: AdaptSettings) -> float | None:
    """The stand-in rate of the registered run with these settings (chosen by dev_selection.py), or None."""
    spec = RUNS.get(settings.name)
    if spec is None or spec.settings != settings:
        return None
    return spec.fixed_rate(STAND_IN)


def train_candidate(settings: AdaptSettings, preset: Preset, seed: int) -> tuple[str, float, bool]:
    """A spawned process's job: one candidate of a sweep into the cache (the sweep then loads it)."""
    artifact = load_adapted(settings, preset, seed, progress=False)
    return settings.label, artifact.seconds, artifact.from_cache


def first_round(candidates: list[AdaptSettings], preset: Preset, seed: int, workers: int) -> None:
    """Train every first-round candidate side by side (each is independent of the others); on one worker the
    sweeps train them in turn."""
    if workers < 2 or len(candidates) < 2:
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    print(f"[first round] {len(candidates)} candidates side by side in {workers} processes")
    for label, seconds, cached in side_by_side(train_candidate, [(s, preset, seed) for s in candidates], workers,
                                               threads):
        print(f"      {label}: {'already cached' if cached else f'trained in {seconds:.0f} s'}")


def markdown(record: dict[str, Any]) -> str:
    lines = [f"# Which layers to tune (preset `{record['preset']}`, seed {record['seed']})", "",
             f"Automatic choice under the paper policy's budget ({record['budget']:,} parameters): "
             f"`{record['auto_policy']}`.", "",
             "Rates chosen on dev; eval in one experiment (`hfr_tutorial.experiment.run`): rank-1 with 95 % bootstrap "
             "intervals over identities, paired across models; gap recovered = (run - baseline) / (baseline VIS - "
             "baseline), per cross-modal protocol, on eval, with its paired interval.", "",
             "| policy | trainable | % | lr (dev) | dev mean rank-1 | eval VIS | eval NIR | eval thermal "
             "| NIR gap recovered | thermal gap recovered |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in record["policies"].items():
        cells = []
        for p in PROTOCOLS:
            lo, hi = r["intervals"][p]["rank1"]
            cells.append(f"{r['eval'][p]['rank1']:.3f} [{lo:.3f}, {hi:.3f}]")
        for p in CROSS:
            interval = r["gap_recovered_interval"][p]
            cells.append(f"{100 * r['gap_recovered'][p]:.0f} %"
                         + (f" [{100 * interval[0]:.0f}, {100 * interval[1]:.0f}]" if interval else ""))
        edge = " (at the sweep's end)" if r["at_edge"] else ""
        lines.append(f"| {label} | {r['trainable']:,} | {100 * r['trainable'] / r['total']:.2f} | {r['lr']:g}{edge} | "
                     f"{r['dev']['score']:.4f} | " + " | ".join(cells) + " |")
    change = record["change_vs_baseline"]
    lines += ["", "Automatic choice minus `paper` (same budget), eval rank-1: " + "; ".join(
        f"{p} {d['value']:+.3f}" for p, d in record["auto_minus_paper"].items())
        + ". Each against the baseline, with paired 95 % intervals: " + "; ".join(
        f"{p} auto {change[AUTO][p]['value']:+.3f} [{change[AUTO][p]['interval'][0]:+.3f}, "
        f"{change[AUTO][p]['interval'][1]:+.3f}], paper {change['paper'][p]['value']:+.3f} "
        f"[{change['paper'][p]['interval'][0]:+.3f}, {change['paper'][p]['interval'][1]:+.3f}]"
        for p in PROTOCOLS) + ".",
        "", "Dev sweeps of the new policies (mean dev rank-1 per rate): " + "; ".join(
        f"`{label}` {r['sweep']}" for label, r in record["policies"].items() if r["sweep"] != "registered rate") + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smoke preset: checks the script works")
    parser.add_argument("--preset", default=None, help="preset (default fast; quick: smoke)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None,
                        help="models trained side by side on a CPU (default: the library's, HFR_BUILD_WORKERS)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder (default docs/results/policy_study; quick: a temporary folder)")
    args = parser.parse_args(argv)
    preset = get_preset(args.preset or ("smoke" if args.quick else "fast"))
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        parser.error(f"--workers {workers}: give a whole number >= 1")
    out = args.out or (Path(tempfile.mkdtemp(prefix="policy-quick-")) if args.quick
                       else ROOT / "docs" / "results" / "policy_study")
    start = time.perf_counter()
    faceset = load_faceset(preset, args.seed)
    baseline = load_baseline(preset, args.seed)
    budget = apply_policy(copy.deepcopy(baseline.model), "paper").trainable
    scores = group_scores(baseline.model, faceset.select(split="dev"), preset.train.contrastive, seed=args.seed)
    auto_policy, ranking = select_groups(scores, budget)
    settings = {label: AdaptSettings(policy=label, contrastive=preset.train.contrastive) for label in HAND_PICKED}
    settings[AUTO] = AdaptSettings(policy=auto_policy, contrastive=preset.train.contrastive)
    unknown = [label for label, s in settings.items() if registered_rate(s) is None and label not in START]
    if unknown:
        raise SystemExit(f"policy_study: {unknown} have neither a registered stand-in rate nor first rates in START; "
                         "add them to START.")
    record: dict[str, Any] = {"preset": preset.name, "seed": args.seed, "budget": budget, "auto_policy": auto_policy,
                              "ranking": ranking.reset_index().to_dict(orient="records"), "policies": {}}
    first_round([replace(s, lr=lr) for label, s in settings.items()
                 for lr in ((registered_rate(s),) if registered_rate(s) is not None else START[label])],
                preset, args.seed, workers)

    # dev: a rate per policy; the new policies become registered runs
    names: dict[str, str] = {}
    for label, s in settings.items():
        print(f"[policy] {label}")
        lr = registered_rate(s)
        if lr is not None:
            table = lr_sweep(s, preset, args.seed, rates=(lr,), max_extend=0)  # its dev figures at that rate
            sweep = "registered rate"
        else:
            table = lr_sweep(s, preset, args.seed, rates=START[label], max_extend=1)
            lr = float(table.index[table["chosen"]][0])
            sweep = ", ".join(f"{r:.0e}: {table.loc[r, 'score']:.4f}" for r in table.index)
            register_run(RunSpec(s.name, "variant", s, rates={STAND_IN: lr},
                                 note=f"policy study: {label}, its rate chosen on dev ({sweep})"), replace_existing=True)
        names[label] = s.name
        record["policies"][label] = {"policy": s.policy, "run": s.name, "lr": lr, "sweep": sweep,
                                     "at_edge": bool(sweep != "registered rate" and at_edge(table)),
                                     "dev": {k: (v.item() if hasattr(v, "item") else v)
                                             for k, v in table.loc[lr].to_dict().items()}}

    # eval: one experiment, every policy's run beside the baseline, paired intervals
    experiment = Experiment(runs=tuple(names.values()), preset=preset, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="policy-study-") as tmp:
        # every model is in the cache by now (the sweeps trained them): nothing to train side by side, and a
        # spawned process would not know the runs registered above
        metrics = run(experiment, Path(tmp) / "run", figures=False, workers=1)
    fold = metrics["folds"]["default"]
    models, claims = fold["models"], fold["claims"]
    record["baseline_eval"] = models[claims["start"]]["protocols"]
    record["change_vs_baseline"] = {}
    for label, name in names.items():
        m, c = models[name], claims["runs"][name]
        record["policies"][label].update(
            trainable=m["trainable_params"], total=m["total_params"], eval=m["protocols"], intervals=m["intervals"],
            gap_recovered={p: value_of(c["gap_recovered"][p]) for p in CROSS},
            gap_recovered_interval={p: c["gap_recovered"][p].get("interval") if isinstance(c["gap_recovered"][p], dict)
                                    else None for p in CROSS})
        record["change_vs_baseline"][label] = {p: c["change"][p]["rank1"] for p in PROTOCOLS}
    auto, paper = record["policies"][AUTO], record["policies"]["paper"]
    record["auto_minus_paper"] = {p: {"value": auto["eval"][p]["rank1"] - paper["eval"][p]["rank1"]}
                                  for p in PROTOCOLS}
    record["experiment"] = {"fingerprint": metrics["fingerprint"], "runs": list(names.values()),
                            "intervals": claims["intervals"], "environment": metrics["environment"]}
    record["seconds"] = round(time.perf_counter() - start, 1)
    text = markdown(record)
    out.mkdir(parents=True, exist_ok=True)
    (out / "policy_study.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    (out / "policy_study.md").write_text(text)
    print(text)
    print(f"wrote {out / 'policy_study.json'} and {out / 'policy_study.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

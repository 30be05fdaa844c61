"""Choose the comparison runs' learning rates, and the method's loss, on dev identities only.

Run: ``python benchmarks/dev_selection.py [--preset fast] [--seed 0] [--out docs/results/dev_selection]``
(``--quick``: the smoke preset, the method's recipe only, written to a temporary folder unless
``--out`` is given: checks the script; its figures mean nothing).

For every registered run (:data:`hfr_tutorial.runs.RUNS`) that adapts and is not an ablation (the
paper's policy with InfoNCE and with the published pairwise margin loss, LayerNorm-only, full
fine-tuning; all with self-distillation at the preset's lambda and the same epochs),
:func:`hfr_tutorial.selection.lr_sweep`
trains one run per rate (3e-3, 1e-2, 3e-2, extended by half-decades past an end that wins, at most twice)
and scores it on the dev identities: mean dev rank-1 over VIS->VIS, NIR->VIS and thermal->VIS,
ties by mean dev AUC.  The ablations without distillation (``paper/infonce``, ``full/infonce``)
take the rate of the same policy and loss with distillation: they remove one component and keep
everything else.  The method's loss is the one of the two paper-policy recipes with the higher
dev score.

Writes ``selection.json`` (every candidate's dev figures, the winners, whether a winner is at an end
of the ladder) and ``selection.md``.  The winners are the stand-in rates of the registered runs
(``RunSpec.rates["stand-in"]`` in :mod:`hfr_tutorial.runs`); ``tests/test_selection.py`` checks they agree.
Eval identities are never read.  Every candidate is cached, so a second run only re-scores.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from hfr_tutorial.config import get_preset
from hfr_tutorial.runs import METHOD_RUN, RUNS
from hfr_tutorial.selection import START_RATES, at_edge, lr_sweep
from hfr_tutorial.train import AdaptSettings

ROOT = Path(__file__).resolve().parents[1]

SWEPT: dict[str, AdaptSettings] = {name: spec.settings for name, spec in RUNS.items()
                                   if spec.settings is not None and spec.role != "ablation"}
"""The recipes whose rate is swept (name -> the registered run's settings, without a rate): every registered
run that adapts, but the ablations, which keep the rate of the run they ablate."""


def markdown(record: dict) -> str:
    lines = [f"# Learning rates chosen on dev (preset `{record['preset']}`, seed {record['seed']})", "",
             "Each recipe trains at each rate on the training identities and is scored on the "
             f"{record['dev_identities']} dev identities (mean rank-1 over the three protocols, ties by mean AUC). "
             "Eval is not read.", "",
             "| recipe | lr | dev VIS rank-1 | dev NIR rank-1 | dev thermal rank-1 | dev mean rank-1 | dev mean AUC | chosen |",
             "|---|---:|---:|---:|---:|---:|---:|:---:|"]
    for name, entry in record["sweeps"].items():
        for lr, row in entry["candidates"].items():
            lines.append(f"| {name} | {lr} | {row['vis->vis rank1']:.3f} | {row['nir->vis rank1']:.3f} | "
                         f"{row['thermal->vis rank1']:.3f} | {row['score']:.4f} | {row['tie']:.4f} | "
                         f"{'**yes**' if row['chosen'] else ''} |")
    lines += ["", f"Method's loss (higher dev score of the paper-policy recipes): `{record['method']}`.", ""]
    edges = [n for n, e in record["sweeps"].items() if e["at_edge"]]
    lines.append("Winners at an end of the ladder: " + (", ".join(edges) if edges else "none") + ".")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smoke preset, the method's recipe only")
    parser.add_argument("--preset", default=None, help="preset (default fast; quick: smoke)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder (default docs/results/dev_selection; quick: a temporary folder)")
    parser.add_argument("--only", nargs="+", choices=list(SWEPT), default=None, help="sweep only these recipes")
    args = parser.parse_args(argv)
    preset = get_preset(args.preset or ("smoke" if args.quick else "fast"))
    if args.quick and args.only is None:
        args.only = [METHOD_RUN]
    args.out = args.out or (Path(tempfile.mkdtemp(prefix="dev-selection-quick-")) if args.quick
                            else ROOT / "docs" / "results" / "dev_selection")
    start = time.perf_counter()
    record: dict = {"preset": preset.name, "seed": args.seed, "start_rates": list(START_RATES),
                    "dev_identities": preset.data.n_dev_ids, "sweeps": {}}
    for name in args.only or SWEPT:
        print(f"[sweep] {name}")
        table = lr_sweep(SWEPT[name], preset, args.seed)
        chosen = float(table.index[table["chosen"]][0])
        record["sweeps"][name] = {"chosen_lr": chosen, "at_edge": at_edge(table),
                                  "candidates": {f"{lr:.0e}": {k: (v.item() if hasattr(v, "item") else v)
                                                               for k, v in row.items()}
                                                 for lr, row in table.to_dict(orient="index").items()}}
    papers = {n: max(c["score"] for c in e["candidates"].values() if c["chosen"])
              for n, e in record["sweeps"].items() if n.startswith("paper/")}
    record["method"] = max(papers, key=lambda n: (papers[n], n == "paper/pairwise+distill")) if papers else None
    record["seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "selection.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "selection.md").write_text(markdown(record))
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Choose the recipe's yes/no settings on dev identities only: the oracle's and the method's augmentation.

Run: ``python benchmarks/recipe_choices.py [--preset fast] [--seed 0] [--out docs/results/dev_selection]``
(``--quick``: the smoke preset, written to a temporary folder unless ``--out`` is given: checks the
script; its figures mean nothing).

Two settings of :class:`hfr_tutorial.config.TrainConfig` are choices between two recipes rather
than budgets, so each is made the way the learning rates are (``benchmarks/dev_selection.py``):
both candidates are trained on the training identities and scored on the dev identities with
:func:`hfr_tutorial.selection.selection_score` (mean dev rank-1 over VIS->VIS, NIR->VIS and
thermal->VIS, ties by mean dev AUC); eval is never read.

* ``oracle_augment``: the joint oracle trained with the baseline's flips, crops and VIS colour
  jitter, or on the images as the sensors made them (at ``oracle_epochs``, which is a rule:
  the baseline's optimisation steps);
* ``adapt_augment_vis``: the method (:data:`~hfr_tutorial.runs.METHOD_RUN` at its dev-chosen
  stand-in rate, ``RunSpec.rates``) with the same augmentations on its VIS images, or without (then the frozen teacher's
  targets are computed once).

Writes ``choices.json`` (every candidate's dev figures and the winners) and ``choices.md`` under
``--out``; ``tests/test_selection.py`` checks that ``TrainConfig``'s defaults are the recorded
winners.  Every candidate is cached (``HFR_CACHE``), so a second run only re-scores.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from hfr_tutorial.artifacts import load_adapted, load_faceset, load_oracle
from hfr_tutorial.config import get_preset
from hfr_tutorial.runs import METHOD_RUN, STAND_IN, get_run
from hfr_tutorial.selection import dev_figures, selection_score

ROOT = Path(__file__).resolve().parents[1]

PROTOCOLS = ("vis->vis", "nir->vis", "thermal->vis")


def score(model, dev_set, batch_size: int) -> dict:
    figures = dev_figures(model, dev_set, batch_size)
    rank1, auc = selection_score(figures)
    row = {f"{p} rank1": round(float(figures[p]["rank1"]), 4) for p in PROTOCOLS if p in figures}
    row.update(score=round(rank1, 4), tie=round(auc, 4))
    return row


def choose(rows: dict[str, dict]) -> str:
    """The candidate with the higher (score, tie); on an exact tie the current default (listed first)."""
    names = list(rows)
    return max(names, key=lambda n: (rows[n]["score"], rows[n]["tie"], -names.index(n)))


def markdown(record: dict) -> str:
    lines = [f"# Recipe choices made on dev (preset `{record['preset']}`, seed {record['seed']})", "",
             f"Each candidate trains on the training identities and is scored on the {record['dev_identities']} dev "
             "identities (mean rank-1 over the three protocols, ties by mean AUC). Eval is not read.", "",
             "| setting | candidate | dev VIS rank-1 | dev NIR rank-1 | dev thermal rank-1 | dev mean rank-1 | dev mean AUC | chosen |",
             "|---|---|---:|---:|---:|---:|---:|:---:|"]
    for setting, entry in record["choices"].items():
        for value, row in entry["candidates"].items():
            lines.append(f"| `{setting}` ({entry['what']}) | {value} | {row['vis->vis rank1']:.3f} | "
                         f"{row['nir->vis rank1']:.3f} | {row['thermal->vis rank1']:.3f} | {row['score']:.4f} | "
                         f"{row['tie']:.4f} | {'**yes**' if value == entry['chosen'] else ''} |")
    lines += ["", f"Took {record['seconds']:.0f} s (training included, on an empty cache)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smoke preset: checks the script works")
    parser.add_argument("--preset", default=None, help="preset (default fast; quick: smoke)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder (default docs/results/dev_selection; quick: a temporary folder)")
    args = parser.parse_args(argv)
    preset = get_preset(args.preset or ("smoke" if args.quick else "fast"))
    args.out = args.out or (Path(tempfile.mkdtemp(prefix="recipe-choices-quick-")) if args.quick
                            else ROOT / "docs" / "results" / "dev_selection")
    start = time.perf_counter()
    dev = load_faceset(preset, args.seed).select(split="dev")
    record: dict = {"preset": preset.name, "seed": args.seed, "dev_identities": preset.data.n_dev_ids, "choices": {}}

    rows = {}
    for value in (preset.train.oracle_augment, not preset.train.oracle_augment):
        print(f"[choice] oracle_augment={value}")
        oracle = load_oracle(preset.replace(train__oracle_augment=value), args.seed)
        rows[str(value)] = score(oracle.model, dev, preset.eval_batch_size)
    record["choices"]["oracle_augment"] = {"what": f"joint oracle, {preset.train.oracle_epochs} epochs",
                                           "candidates": rows, "chosen": choose(rows)}

    rows = {}
    method = get_run(METHOD_RUN)
    settings = method.settings_at(method.rates[STAND_IN])
    for value in (preset.train.adapt_augment_vis, not preset.train.adapt_augment_vis):
        print(f"[choice] adapt_augment_vis={value}")
        run = load_adapted(settings, preset.replace(train__adapt_augment_vis=value), args.seed)
        rows[str(value)] = score(run.model, dev, preset.eval_batch_size)
    record["choices"]["adapt_augment_vis"] = {"what": f"{METHOD_RUN}, lr {settings.lr:g}", "candidates": rows,
                                              "chosen": choose(rows)}

    record["seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "choices.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "choices.md").write_text(markdown(record))
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

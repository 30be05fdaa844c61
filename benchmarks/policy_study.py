"""Which layers to tune: the hand-picked readings of the paper against an automatic choice, on dev then eval.

Run: ``python benchmarks/policy_study.py [--preset fast] [--seed 0] [--out docs/results/policy_study]``

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

Each policy gets its rate from a dev sweep (:func:`hfr_tutorial.selection.lr_sweep`: three
half-decade rates, one more past a winning end).  The three policies that
``benchmarks/dev_selection.py`` already swept (``layernorm``, ``paper``, ``full``, with the same
losses and epochs) take the rate on its record (``docs/results/dev_selection/selection.json``) and
train once at it; each new policy starts from the three rates around the record's rate of the
nearest policy in size (:data:`START`).  The table reports every policy's dev score at its chosen
rate, then its eval rank-1 with bootstrap intervals over identities, computed once, and the share
of the baseline's eval NIR and thermal gap (VIS rank-1 minus cross-modal rank-1) it recovers.
Writes ``policy_study.json`` and ``policy_study.md``.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from hfr_tutorial.artifacts import load_adapted, load_baseline, load_faceset
from hfr_tutorial.autoselect import group_scores, select_groups
from hfr_tutorial.config import get_preset
from hfr_tutorial.evaluate import DEFAULT_PROTOCOLS
from hfr_tutorial.parallel_build import build_missing
from hfr_tutorial.pipeline import evaluate_model
from hfr_tutorial.selection import at_edge, lr_sweep
from hfr_tutorial.train import AdaptSettings
from hfr_tutorial.tuning import apply_policy
from hfr_tutorial.uncertainty import bootstrap_protocols

ROOT = Path(__file__).resolve().parents[1]
HAND_PICKED = ("layernorm", "layernorm+stem", "paper", "layernorm+stem+convs012", "layernorm+stem+stages012", "full")
AUTO = "auto (Fisher per parameter, paper's budget)"
SWEPT_ON_RECORD = {"layernorm": "layernorm/infonce+distill", "paper": "paper/infonce+distill",
                   "full": "full/infonce+distill"}
"""Policies whose rate ``benchmarks/dev_selection.py`` chose (policy -> its recipe in selection.json)."""
START = {"layernorm+stem": (3e-2, 1e-1, 3e-1),  # between layernorm (3e-1) and paper (3e-2)
         "layernorm+stem+convs012": (1e-2, 3e-2, 1e-1),  # near paper and full (3e-2)
         "layernorm+stem+stages012": (1e-2, 3e-2, 1e-1),
         AUTO: (1e-2, 3e-2, 1e-1)}  # the paper's budget
"""First rates of the sweep of each policy not on the record."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "policy_study")
    args = parser.parse_args(argv)
    preset = get_preset(args.preset)
    start = time.perf_counter()
    faceset = load_faceset(preset, args.seed)
    baseline = load_baseline(preset, args.seed)
    budget = apply_policy(copy.deepcopy(baseline.model), "paper").trainable
    scores = group_scores(baseline.model, faceset.select(split="dev"), preset.train.contrastive, seed=args.seed)
    auto_policy, ranking = select_groups(scores, budget)
    policies = {p: p for p in HAND_PICKED}
    policies[AUTO] = auto_policy
    chosen_on_record = json.loads((ROOT / "docs/results/dev_selection/selection.json").read_text())["sweeps"]
    record: dict = {"preset": preset.name, "seed": args.seed, "budget": budget, "auto_policy": auto_policy,
                    "ranking": ranking.reset_index().to_dict(orient="records"), "policies": {}}
    # every first-round candidate is independent of the others: train them side by side first
    # (hfr_tutorial.parallel_build; the sweeps below then load them from the cache)
    first_round = [replace(AdaptSettings(policy=policy, contrastive=preset.train.contrastive), lr=lr)
                   for label, policy in policies.items()
                   for lr in ((float(chosen_on_record[SWEPT_ON_RECORD[label]]["chosen_lr"]),)
                              if label in SWEPT_ON_RECORD else START[label])]
    build_missing(first_round, preset, args.seed)
    eval_set = faceset.select(split="eval")
    base_emb, base_eval = evaluate_model(baseline.model, eval_set, preset.eval_batch_size)
    embeddings = {"baseline": base_emb}
    record["baseline_eval"] = base_eval
    for label, policy in policies.items():
        print(f"[policy] {label}")
        settings = AdaptSettings(policy=policy, contrastive=preset.train.contrastive)
        if label in SWEPT_ON_RECORD:
            lr = float(chosen_on_record[SWEPT_ON_RECORD[label]]["chosen_lr"])
            table = lr_sweep(settings, preset, args.seed, rates=(lr,), max_extend=0)
            sweep = "dev_selection record"
        else:
            table = lr_sweep(settings, preset, args.seed, rates=START[label], max_extend=1)
            lr = float(table.index[table["chosen"]][0])
            sweep = ", ".join(f"{r:.0e}: {table.loc[r, 'score']:.4f}" for r in table.index)
        run = load_adapted(replace(settings, lr=lr), preset, args.seed)
        emb, protocols = evaluate_model(run.model, eval_set, preset.eval_batch_size)  # eval: once, for the report
        embeddings[label] = emb
        record["policies"][label] = {"policy": policy, "trainable": run.trainable_params, "total": run.total_params,
                                     "lr": lr, "sweep": sweep, "at_edge": bool(label not in SWEPT_ON_RECORD and at_edge(table)),
                                     "dev": table.loc[lr].to_dict(), "eval": protocols}
    boot = bootstrap_protocols(embeddings, eval_set.identities, eval_set.modalities, DEFAULT_PROTOCOLS,
                               seed=args.seed)
    lines = [f"# Which layers to tune (preset `{preset.name}`, seed {args.seed})", "",
             f"Automatic choice under the paper policy's budget ({budget:,} parameters): `{auto_policy}`.", "",
             "Rates chosen on dev; eval rank-1 with 95 % bootstrap intervals over identities (computed once); "
             "gap recovered = (run - baseline) / (baseline VIS - baseline), per cross-modal protocol, on eval.", "",
             "| policy | trainable | % | lr (dev) | dev mean rank-1 | eval VIS | eval NIR | eval thermal "
             "| NIR gap recovered | thermal gap recovered |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base_vis = base_eval["vis->vis"]["rank1"]
    for label, r in record["policies"].items():
        r["intervals"] = boot.intervals(label)
        cells = []
        for p in DEFAULT_PROTOCOLS:
            lo, hi = boot.interval(label, p, "rank1")
            cells.append(f"{r['eval'][p]['rank1']:.3f} [{lo:.3f}, {hi:.3f}]")
        r["gap_recovered"] = {p: (r["eval"][p]["rank1"] - base_eval[p]["rank1"]) / (base_vis - base_eval[p]["rank1"])
                              for p in ("nir->vis", "thermal->vis")}
        cells += [f"{100 * r['gap_recovered'][p]:.0f} %" for p in ("nir->vis", "thermal->vis")]
        edge = " (at the sweep's end)" if r["at_edge"] else ""
        lines.append(f"| {label} | {r['trainable']:,} | {100 * r['trainable'] / r['total']:.2f} | {r['lr']:g}{edge} | "
                     f"{r['dev']['score']:.4f} | " + " | ".join(cells) + " |")
    record["auto_minus_paper"] = {p: boot.difference(AUTO, "paper", p) for p in DEFAULT_PROTOCOLS}
    lines += ["", "Automatic choice minus `paper` (same budget), eval rank-1 with paired 95 % intervals: " + "; ".join(
        f"{p} {d['value']:+.3f} [{d['interval'][0]:+.3f}, {d['interval'][1]:+.3f}]"
        for p, d in record["auto_minus_paper"].items()) + ".",
        "", "Dev sweeps of the new policies (mean dev rank-1 per rate): " + "; ".join(
        f"`{label}` {r['sweep']}" for label, r in record["policies"].items() if r["sweep"] != "dev_selection record") + "."]
    record["seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "policy_study.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    (args.out / "policy_study.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

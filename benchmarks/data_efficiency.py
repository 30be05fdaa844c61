"""How little paired data does the method need?  Eval rank-1 against paired identities and pairs per identity.

Run: ``python benchmarks/data_efficiency.py [--preset fast] [--seeds 0 1 2] [--quick]``

The method's promise is "a small amount of paired heterogeneous data".  This benchmark takes the
fast preset's world (seed 0: its identities, its RGB baseline) and gives the adaptation less of
its training split:

* **paired identities** (``--identities``, default 10 25 50 100 200 400) with every image
  (6 per modality on the fast preset);
* **pairs per identity** (``--pairs``, default 1 2 6): images kept per modality and identity,
  at ``--pairs-at`` identities (default 50), so ``1`` is one VIS, one NIR and one thermal
  capture of each person.

Each point trains three models, with the recipe chosen on dev for the whole training split (no
setting is chosen here, and eval is only measured):

* ``method``: :data:`~hfr_tutorial.runs.METHOD_RUN` from the RGB baseline;
* ``full``: :data:`~hfr_tutorial.runs.FULL_RUN` from the RGB baseline (every parameter);
* ``oracle``: the joint oracle, from scratch, on every VIS image of the training split (the RGB
  data the baseline had) plus the reduced NIR/thermal images, for as many optimisation steps as
  the oracle of the whole split (by rule the baseline's steps).

**Same step budget.**  Fewer identities make shorter epochs, so every adaptation runs the number
of optimisation steps of the preset's recipe on the whole split (``adapt_epochs`` x steps per
epoch; the epochs are rounded to the nearest whole number, and each record says its steps); the
oracle likewise keeps its steps.  A batch holds distinct identities, so with fewer identities
than ``batch_size`` the batch is every identity (fewer in-batch negatives: part of what less data
costs).  The curve thus separates the amount of data from the amount of compute.

Over ``--seeds``: the seed draws which identities and images are kept (nested: a larger point
keeps a smaller point's identities) and the training order; the world and its baseline stay
seed 0, as a user's pretrained model stays the same.  The table and the figure give the mean over
seeds and the spread (lowest to highest seed).  The point with every identity and image at seed 0
is the main job's own run, loaded from the cache.

**Your data and a pretrained model** (``--data LAYOUT [--protocol NAME] [--model edgeface_xxs]``):
the same curves for a standard layout (``data_scripts/`` write one) and a pretrained EdgeFace (the
official weights by default, or a checkpoint file), through the main job's path for a pretrained
model (``hfr-tutorial run --data``): the preset's pretrained recipe, a dev split carved from the
training identities when the protocol has none, and for each model the learning rate chosen on dev
with every training identity (``--lr`` fixes it instead), kept for every smaller point.  The
identities axis ends at every training identity with a VIS image and an image of each other
modality, the pairs axis at the most images an identity has per modality.  The oracle (from
scratch) is not part of this mode; the curves start from the pretrained model before adaptation.
Records go to ``runs/data_efficiency/<layout>-<protocol>/`` unless ``--out`` says otherwise.

Writes ``data_efficiency.json`` and ``data_efficiency.md`` (``--out``, default
``docs/results/data_efficiency``) and the figure ``docs/results/data_efficiency.png``
(:func:`hfr_tutorial.plots.plot_data_efficiency`; notebook 05 shows it).  Every point is one
experiment of the main job's path (:func:`hfr_tutorial.experiment.run` with a
:class:`~hfr_tutorial.experiment.TrainSubset`): its models are ordinary cache entries (an interrupted
run resumes, a second run trains nothing), and its figures come with the main job's metrics.  ``--quick``
runs a small grid on the ``smoke`` preset (seconds; CI runs it) and writes under ``--out`` only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # hfr_tutorial from this checkout

from hfr_tutorial.config import get_preset  # noqa: E402
from hfr_tutorial.environment import machine_description  # noqa: E402
from hfr_tutorial.experiment import (EmbeddedData, Experiment, ExperimentError, LayoutData, StandIn,  # noqa: E402
                                     TrainSubset, experiment_from_args, resolve_device, run)
from hfr_tutorial.parallel_build import default_workers  # noqa: E402
from hfr_tutorial.plots import plot_data_efficiency  # noqa: E402
from hfr_tutorial.runs import FULL_RUN, METHOD_RUN, ORACLE_RUN  # noqa: E402

MODELS = ("method", "full", "oracle")
RUN_OF = {"method": METHOD_RUN, "full": FULL_RUN, "oracle": ORACLE_RUN}
"""The run each model of the study trains."""


def grid(identities: list[int], pairs: list[int], pairs_at: int, full_pairs: int) -> list[tuple[str, int, int]]:
    """The points ``(axis, n_identities, pairs_per_identity)`` of the two curves (a shared point appears once per axis)."""
    points = [("identities", n, full_pairs) for n in identities]
    points += [("pairs", pairs_at, k) for k in pairs]
    return points


def limits(train: Any) -> tuple[int, int]:
    """``(identities, pairs)`` at the top of the two axes: identities with VIS and every other modality of
    ``train``, and the most images one of them has of one modality (keeping that many keeps every image)."""
    mods = sorted(set(train.modalities.tolist()))
    complete = set.intersection(*(set(np.unique(train.identities[train.modalities == m]).tolist()) for m in mods))
    counts = [int(np.sum((train.identities == i) & (train.modalities == m))) for i in complete for m in mods]
    return len(complete), max(counts, default=0)


def point_experiment(base: Experiment, n: int, k: int, seed: int, models: list[str]) -> Experiment:
    """The experiment of one point: ``base`` on ``n`` paired identities x ``k`` images (drawn with ``seed``)."""
    data = base.data
    subset = TrainSubset(n, k, seed)
    data = EmbeddedData(subset) if isinstance(data, EmbeddedData) else LayoutData(data.root, data.protocol, subset)
    return Experiment(data, base.start, tuple(RUN_OF[m] for m in models), base.preset, base.seed, base.lr,
                      base.epochs, base.batch_size)


def point_records(metrics: dict[str, Any], n: int, k: int, seed: int, models: list[str]) -> list[dict[str, Any]]:
    """The study's record of each model of one point, read from the point experiment's ``metrics.json``."""
    fold = next(iter(metrics["folds"].values()))
    out = []
    for m in models:
        rec = fold["models"][RUN_OF[m]]
        if rec.get("status") != "ok":
            raise ExperimentError(f"{m} at {n} identities x {k} images (seed {seed}): {rec['reason']}")
        recipe = rec.get("recipe", {})
        out.append({"model": m, "n_identities": n, "pairs_per_identity": k, "seed": seed,
                    "epochs": recipe.get("epochs"), "steps": recipe.get("steps", rec.get("steps")),
                    "batch_size": recipe.get("batch_size"), "train_images": recipe.get("train_images"),
                    "train_seconds": rec["train_seconds"], "from_cache": rec["from_cache"], "lr": rec["lr"],
                    "rank1": {p: v["rank1"] for p, v in rec["protocols"].items()},
                    "rank1_interval": {p: v["rank1"] for p, v in rec["intervals"].items()}})
    return out


def summarise(points: list[dict[str, Any]], baseline: dict[str, float]) -> dict:
    """Mean and spread over seeds per (model, axis, n, k, protocol), and where each curve flattens."""
    import pandas as pd

    rows = [{"model": p["model"], "axis": p["axis"], "n_identities": p["n_identities"],
             "pairs_per_identity": p["pairs_per_identity"], "seed": p["seed"], "protocol": proto, "rank1": v}
            for p in points for proto, v in p["rank1"].items()]
    frame = pd.DataFrame(rows)
    stats = (frame.groupby(["model", "axis", "n_identities", "pairs_per_identity", "protocol"])["rank1"]
             .agg(mean="mean", std="std", low="min", high="max", seeds="count").reset_index())
    return {"table": stats.to_dict(orient="records"), "flattens": flattening(stats, baseline)}


def flattening(stats: Any, baseline: dict[str, float], share: float = 0.9) -> dict[str, dict[str, Any]]:
    """Per model and cross-modal protocol: the fewest paired identities whose mean gain reaches ``share`` of the gain at the most.

    Gain = mean rank-1 minus the RGB baseline's (the model before adaptation), on the identities axis.
    """
    out: dict[str, dict[str, Any]] = {}
    ids = stats[stats["axis"] == "identities"]
    for (model, proto), g in ids.groupby(["model", "protocol"]):
        if proto == "vis->vis":
            continue
        g = g.sort_values("n_identities")
        gains = g["mean"].to_numpy() - baseline[proto]
        top = gains[-1]
        reached = [int(n) for n, gain in zip(g["n_identities"], gains) if top > 0 and gain >= share * top]
        out.setdefault(model, {})[proto] = {"identities": reached[0] if reached else None,
                                            "gain_at_most": float(top), "share": share}
    return out


def _where(flat: dict[str, Any]) -> str:
    return "no gain at all" if flat["identities"] is None else f"{flat['identities']} identities"


def markdown(record: dict[str, Any]) -> list[str]:
    """The README's table: mean rank-1 (lowest-highest over seeds) per point, model and protocol."""
    stats = record["summary"]["table"]
    protos = [p for p in record.get("protocols", ("vis->vis", "nir->vis", "thermal->vis"))
              if any(s["protocol"] == p for s in stats)]
    names = {p: {"vis->vis": "VIS", "nir->vis": "NIR"}.get(p, p.split("->")[0]) for p in protos}
    models = [m for m in MODELS if any(s["model"] == m for s in stats)]
    budget = f"{record['adapt_steps']} steps for an adaptation" + (
        f", {record['oracle_steps']} for the oracle" if "oracle" in models else "")
    lines = [f"Eval rank-1, mean over seeds {record['seeds']} (lowest to highest seed in brackets), preset "
             f"`{record['preset']}`, every run at the recipe's step budget ({budget}). "
             f"{record.get('baseline_name', 'RGB baseline before adaptation')}: "
             + ", ".join(f"{names[p]} {record['baseline'][p]:.3f}" for p in protos) + ".", "",
             "| paired identities | pairs per identity | " + " | ".join(f"{m} {names[p]}" for m in models for p in protos)
             + " |", "|---:|---:|" + "---:|" * (len(models) * len(protos))]
    keys = sorted({(s["n_identities"], s["pairs_per_identity"]) for s in stats}, key=lambda t: (t[1], t[0]))
    for n, k in keys:
        cells = []
        for m in models:
            for p in protos:
                s = next((s for s in stats if s["model"] == m and s["n_identities"] == n
                          and s["pairs_per_identity"] == k and s["protocol"] == p), None)
                cells.append("-" if s is None else f"{s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]")
        lines.append(f"| {n} | {k} | " + " | ".join(cells) + " |")
    flat = record["summary"]["flattens"]
    lines += ["", "Where the identities curve flattens (the fewest paired identities whose mean gain over the "
              "baseline reaches 90 % of the gain with every identity): " + "; ".join(
                  f"{m} " + ", ".join(f"{names[p]} {_where(f[p])}" for p in protos if p in f)
                  for m, f in flat.items()) + "."]
    if isinstance(record.get("lr"), dict):
        lines += ["", "Learning rates, chosen on dev with every training identity and kept for every point: "
                  + ", ".join(f"{m} {lr:g}" for m, lr in record["lr"].items()) + "."]
    m = record["machine"]
    lines += ["", f"The {record['runs']} runs took {record['train_seconds_total'] / 60:.0f} min of training in all (each "
              f"run's own time, the main job's runs excepted; this run of the script {record['seconds']:.0f} s) on "
              f"`{m['cpu']}` ({m['logical_cores']} cores, torch {m['torch']}, {m['device']}): {record['workers']} "
              f"training process(es) side by side, {m['threads']} thread(s) each; points trained by an earlier run "
              "of the benchmark load from its cache."]
    return lines


def default_identities(n_max: int) -> list[int]:
    """The identities axis: 10, 25, 50, 100, 200, 400 below ``n_max``, then ``n_max``; for a set too small
    for three of them, an eighth, a quarter and a half of ``n_max`` (at least 2, the fewest a batch can contrast)."""
    points = [n for n in (10, 25, 50, 100, 200, 400) if n < n_max] + [n_max]
    if len(points) < 4:
        points = sorted({max(2, round(n_max * f)) for f in (0.125, 0.25, 0.5)} | {n_max})
    return [n for n in points if n <= n_max]


def _check_grid(identities: list[int], pairs: list[int], pairs_at: int, n_max: int, k_max: int, where: str) -> None:
    """Refuse, before any training, a grid the data cannot give (SystemExit naming the range)."""
    if n_max < 2:
        raise SystemExit(f"data_efficiency: {where} has {n_max} paired training identities (VIS and every other "
                         "modality); the contrastive loss needs at least 2. Give a layout with more.")
    for name, values, low, high in (("--identities", identities + [pairs_at], 2, n_max), ("--pairs", pairs, 1, k_max)):
        bad = [v for v in values if v < low or v > high]
        if bad:
            raise SystemExit(f"data_efficiency: {name} {bad} out of range; {where} has {n_max} paired training "
                             f"identities and at most {k_max} images per modality, so give {low}..{high} "
                             "(2 identities at least: a batch contrasts one identity with another).")
    if max(identities) != n_max:
        raise SystemExit(f"data_efficiency: --identities must end at the whole split ({n_max}), the point "
                         "every gain is measured against.")
    if k_max not in pairs:
        raise SystemExit(f"data_efficiency: --pairs must include every image ({k_max}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--data", type=Path, default=None, metavar="LAYOUT",
                        help="a standard layout (default: the embedded synthetic world of --preset)")
    parser.add_argument("--protocol", default=None, help="one protocol of --data (default: its default.csv)")
    parser.add_argument("--model", default=None, metavar="VARIANT|CHECKPOINT",
                        help="with --data: the pretrained starting model (default edgeface_xxs, its official weights)")
    parser.add_argument("--lr", type=float, default=None,
                        help="with --data: a fixed learning rate (default: chosen on dev per model, every identity)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--quick: 0 1)")
    parser.add_argument("--identities", type=int, nargs="+", default=None)
    parser.add_argument("--pairs", type=int, nargs="+", default=None)
    parser.add_argument("--pairs-at", type=int, default=None)
    parser.add_argument("--models", nargs="+", default=None, choices=MODELS,
                        help="default all three (--quick and --data: method full)")
    parser.add_argument("--workers", type=int, default=None, help="training processes side by side (default 2 on "
                        "a CPU with 2 or more cores, HFR_BUILD_WORKERS if set; 1 on a GPU)")
    parser.add_argument("--quick", action="store_true", help="a small grid on the smoke preset (CI)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args(argv)

    layout = args.data is not None
    if args.quick:
        args.preset = "smoke"
        args.seeds = args.seeds or [0, 1]
        if not layout:
            args.identities = args.identities or [8, 64]
            args.pairs = args.pairs or [1, 3]
            args.pairs_at = args.pairs_at or 8
        args.models = args.models or ["method", "full"]
        args.out = args.out or ROOT / "runs" / "data_efficiency_quick"
    args.seeds = args.seeds or [0, 1, 2]
    args.models = args.models or (["method", "full"] if layout else list(MODELS))
    if not layout and (args.protocol or args.lr is not None or args.model is not None):
        raise SystemExit("data_efficiency: --protocol, --lr and --model need --data (the embedded world adapts its "
                         "own RGB baseline, with the rates chosen on dev by the main job).")
    if layout and "oracle" in args.models:
        raise SystemExit("data_efficiency: --models oracle trains from scratch on the embedded world only; with "
                         "--data compare method and full (the pretrained model is the start).")
    if layout and not args.data.is_dir():
        raise SystemExit(f"data_efficiency: --data {args.data} is not a folder; give a standard layout "
                         "(data_scripts/ write one).")
    try:
        device = str(resolve_device(None if args.device == "auto" else args.device))
        base = experiment_from_args(data=args.data.resolve() if layout else None, protocol=args.protocol,
                                    model=(args.model or "edgeface_xxs") if layout else None, preset=args.preset,
                                    runs=[RUN_OF[m] for m in args.models], lr=args.lr)
        if layout and len(base.data.fold_names()) > 1:
            raise ExperimentError(f"--protocol {args.protocol} names {len(base.data.fold_names())} folds; the curve is "
                                  "measured on one: give one of them.")
        faceset = next(iter(base.data.folds(base.preset, base.seed, progress=False).values()))
        train = faceset.select(split="train")
        n_max, k_max = limits(train)
        held_out = list(faceset.meta.get("dev_carved", []))
        where = (f"the layout {args.data} (protocol {args.protocol or 'default'}" + (
            f"; {len(held_out)} training identities held out as dev, as it has no dev split)" if held_out else ")")
                 if layout else f"the preset {base.preset.name!r}")
    except (ExperimentError, ValueError, FileNotFoundError) as err:
        raise SystemExit(f"data_efficiency: {err}") from None
    preset = base.preset
    default_out = (ROOT / "runs" / "data_efficiency" / f"{faceset.name}-{args.protocol or 'default'}".replace("/", "-")
                   if layout else ROOT / "docs" / "results" / "data_efficiency")
    identities = args.identities or default_identities(n_max)
    pairs = args.pairs or sorted({1, 2, k_max} & set(range(1, k_max + 1)))
    pairs_at = args.pairs_at or min(50, n_max)
    out = args.out or default_out
    figure = args.figure or (ROOT / "docs" / "results" / "data_efficiency.png" if out == default_out and not layout
                             else out / "data_efficiency.png")
    _check_grid(identities, pairs, pairs_at, n_max, k_max, where)  # bad input: refused before any training
    workers = (1 if device != "cpu" else default_workers()) if args.workers is None else args.workers
    if workers < 1:
        raise SystemExit("data_efficiency: --workers must be >= 1.")
    points = grid(identities, pairs, pairs_at, k_max)
    start_time = time.perf_counter()
    runs_dir = out / "points"
    lr_choice: dict[str, Any] = {}
    if layout and args.lr is None:  # each model's rate chosen on dev with every identity, kept for every point
        print(f"[data efficiency] choosing each model's learning rate on dev from {list(preset.pretrained.lr_grid)}")
        whole = run(base, runs_dir / "lr-choice", device=device, workers=workers, progress=False, figures=False,
                    checkpoints=False, overwrite=True)
        fold = next(iter(whole["folds"].values()))
        for m in args.models:
            rec = fold["models"][RUN_OF[m]]
            if rec.get("status") != "ok":
                raise SystemExit(f"data_efficiency: {m}: {rec['reason']}")
            lr_choice[m] = {"lr": rec["lr"], "candidates": rec["recipe"]["candidates"], "how": rec["recipe"]["how"]}
    keys = sorted({(n, k, s) for s in args.seeds for _, n, k in points}, key=lambda t: (-t[0], t[2], t[1]))
    print(f"[data efficiency] {len(keys)} points x {len(args.models)} models ({len(points)} grid points x "
          f"{len(args.seeds)} seeds; cached models load)")
    from tqdm.auto import tqdm

    results: dict[tuple, dict] = {}
    start_name = None
    for n, k, seed in tqdm(keys, desc="data efficiency", mininterval=5):
        models = args.models
        if layout and lr_choice:  # one experiment per model: each at its own dev-chosen rate
            records = []
            for m in models:
                e = point_experiment(base, n, k, seed, [m])
                e = Experiment(e.data, e.start, e.runs, e.preset, e.seed, lr_choice[m]["lr"])
                metrics = run(e, runs_dir / f"{m}-n{n}-k{k}-s{seed}", device=device, workers=workers,
                              progress=False, figures=False, checkpoints=False, overwrite=True)
                records += point_records(metrics, n, k, seed, [m])
        else:
            metrics = run(point_experiment(base, n, k, seed, models), runs_dir / f"n{n}-k{k}-s{seed}", device=device,
                          workers=workers, progress=False, figures=False, checkpoints=False, overwrite=True)
            records = point_records(metrics, n, k, seed, models)
        start_name = metrics["experiment"]["starting_model"]["name"]
        fold = next(iter(metrics["folds"].values()))
        baseline_r1 = {p: v["rank1"] for p, v in fold["models"][start_name]["protocols"].items()}
        for r in records:
            results[(r["model"], n, k, seed)] = r
    flat_points = [{**results[(m, n, k, s)], "axis": axis} for axis, n, k in points for m in args.models
                   for s in args.seeds]
    protocols = list(baseline_r1)
    described = base.describe()
    if layout:
        baseline_name = f"{base.start.variant} before adaptation"
        source = {"kind": "layout", "root": described["data"]["root"], "name": faceset.name,
                  "protocol": args.protocol or "default", "starting_model": described["starting_model"],
                  "protocols": protocols, "dev_identities_held_out": held_out}
    else:
        baseline_name = "RGB baseline before adaptation"
        source = {"kind": "embedded", "name": f"synthetic-{preset.name}"}
    adapt_steps = next((p["steps"] for p in flat_points if p["model"] != "oracle"
                        and p["n_identities"] == n_max and p["pairs_per_identity"] == k_max), None)
    oracle_steps = next((p["steps"] for p in flat_points if p["model"] == "oracle"
                         and p["n_identities"] == n_max and p["pairs_per_identity"] == k_max), None)
    import torch

    record = {"preset": preset.name, "data": source, "seeds": args.seeds, "models": args.models, "run_names": RUN_OF,
              "identities": identities, "pairs": pairs, "pairs_at": pairs_at, "workers": workers,
              "baseline": baseline_r1, "baseline_name": baseline_name, "protocols": protocols,
              "adapt_steps": adapt_steps, "oracle_steps": oracle_steps if "oracle" in args.models else "-",
              "lr": ({m: c["lr"] for m, c in lr_choice.items()} if lr_choice else
                     {m: args.lr for m in args.models} if args.lr is not None else
                     "chosen on dev by the main job (the preset's recipe)"),
              "lr_selection": lr_choice or None, "points": flat_points,
              "machine": {**machine_description(threads=1 if workers > 1 else torch.get_num_threads()),
                          "device": device},
              "runs": len(results),
              "train_seconds_total": round(sum(r["train_seconds"] for r in results.values()
                                               if not r["from_cache"]), 1)}
    record["summary"] = summarise(flat_points, baseline_r1)
    record["seconds"] = round(time.perf_counter() - start_time, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "data_efficiency.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    title = f"preset `{preset.name}`" + (f", layout `{faceset.name}`, {base.start.variant}" if layout else "")
    lines = [f"# How much paired data (`benchmarks/data_efficiency.py`, {title})", "", *markdown(record)]
    (out / "data_efficiency.md").write_text("\n".join(lines) + "\n")
    figure.parent.mkdir(parents=True, exist_ok=True)
    plot_data_efficiency(record).savefig(figure, bbox_inches="tight")
    print("\n".join(lines))
    print(f"wrote {out / 'data_efficiency.json'}, {out / 'data_efficiency.md'} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

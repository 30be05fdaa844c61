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

* ``method``: :data:`~hfr_tutorial.artifacts.METHOD_RUN` from the RGB baseline;
* ``full``: :data:`~hfr_tutorial.artifacts.FULL_RUN` from the RGB baseline (every parameter);
* ``oracle``: the joint oracle, from scratch, on every VIS image of the training split (the RGB
  data the baseline had) plus the reduced NIR/thermal images, for as many optimisation steps as
  the oracle of the whole split (:func:`~hfr_tutorial.artifacts.load_oracle`, by rule the
  baseline's steps).

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

Writes ``data_efficiency.json`` and ``data_efficiency.md`` (``--out``, default
``docs/results/data_efficiency``) and the figure ``docs/results/data_efficiency.png``
(:func:`hfr_tutorial.plots.plot_data_efficiency`; notebook 05 shows it).  Each trained point is
cached under ``$HFR_CACHE/<preset>/data_efficiency/``, so an interrupted run resumes.  ``--quick``
runs a small grid on the ``smoke`` preset (seconds; CI runs it) and writes under ``--out`` only.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("method", "full", "oracle")
STUDY_VERSION = 1
"""Bump when a change here makes the cached points wrong."""


def grid(identities: list[int], pairs: list[int], pairs_at: int, full_pairs: int) -> list[tuple[str, int, int]]:
    """The points ``(axis, n_identities, pairs_per_identity)`` of the two curves (a shared point appears once per axis)."""
    points = [("identities", n, full_pairs) for n in identities]
    points += [("pairs", pairs_at, k) for k in pairs]
    return points


def _world(preset_name: str) -> tuple[Any, Any, Any]:
    from hfr_tutorial.artifacts import load_baseline, load_faceset
    from hfr_tutorial.config import get_preset

    preset = get_preset(preset_name)
    faceset = load_faceset(preset, 0, progress=False)
    return preset, faceset, load_baseline(preset, 0, progress=False)


def _cache_file(preset: Any, model: str, n: int, k: int, seed: int, payload: dict[str, Any]) -> Path:
    from hfr_tutorial.config import cache_dir

    digest = hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return cache_dir() / preset.name / "data_efficiency" / f"{model}-n{n}-k{k}-s{seed}-{digest}.json"


def _steps(loader_length: int, target: int) -> int:
    """Whole epochs whose steps come nearest ``target`` (at least one)."""
    return max(1, round(target / max(1, loader_length)))


def train_point(preset_name: str, model: str, n: int, k: int, seed: int) -> dict[str, Any]:
    """Train (or load) one model of one point and evaluate it on eval; the record is cached as JSON."""
    from hfr_tutorial.artifacts import (COMPARISON_RUNS, FULL_RUN, METHOD_RUN, adapt_payload, load_adapted,
                                        load_oracle, recognizer_payload)
    from hfr_tutorial.pipeline import evaluate_model, write_json
    from hfr_tutorial.train import adapt_cross_spectral, train_recognizer

    preset, faceset, baseline = _world(preset_name)
    train_all = faceset.select(split="train")
    config = preset.train
    whole = n == preset.data.n_train_ids and k == preset.data.images_per_modality
    if model == "oracle":
        data = train_all.paired_subset(n, k, seed=seed, all_vis=True)
        steps_per_epoch = len(data) // config.batch_size
        full_steps = config.oracle_epochs * (len(train_all) // config.batch_size)
        epochs = _steps(steps_per_epoch, full_steps)
        payload = recognizer_payload(preset, 0, tuple(preset.data.modalities), epochs, augment=config.oracle_augment)
        batch = config.batch_size
    else:
        settings = COMPARISON_RUNS[METHOD_RUN if model == "method" else FULL_RUN].resolved(config)
        data = train_all.paired_subset(n, k, seed=seed)
        batch = min(config.batch_size, n)
        cfg = replace(config, batch_size=batch)
        length = len(data.pair_loader(batch, seed=seed, pairs_per_identity=cfg.adapt_pairs_per_identity,
                                      drop_last=True))
        full_length = len(train_all.pair_loader(config.batch_size, seed=0,
                                                pairs_per_identity=config.adapt_pairs_per_identity, drop_last=True))
        epochs = _steps(length, settings.epochs * full_length)
        steps_per_epoch = length
        settings = replace(settings, epochs=epochs)
        payload = adapt_payload(preset.replace(train__batch_size=batch), settings, baseline.key, seed)
    payload = {**payload, "study": STUDY_VERSION, "n": n, "k": k, "subset_seed": seed, "model": model}
    path = _cache_file(preset, model, n, k, seed, payload)
    if path.is_file():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    if whole and seed == 0:  # the main job's own run: load it (or build it where the main job would)
        artifact = (load_oracle(preset, 0, progress=False) if model == "oracle"
                    else load_adapted(COMPARISON_RUNS[METHOD_RUN if model == "method" else FULL_RUN], preset, 0,
                                      progress=False))
        trained, seconds = artifact.model, artifact.seconds
    elif model == "oracle":
        result = train_recognizer(data, config, epochs=epochs, modalities=tuple(preset.data.modalities),
                                  augment=config.oracle_augment, seed=seed, progress=False)
        trained, seconds = result.model, result.seconds
    else:
        result = adapt_cross_spectral(baseline.model, data, cfg, settings, seed=seed, progress=False)
        trained, seconds = result.model, result.seconds
    _, protocols = evaluate_model(trained, faceset.select(split="eval"), preset.eval_batch_size)
    record = {"model": model, "n_identities": n, "pairs_per_identity": k, "seed": seed, "epochs": epochs,
              "steps": epochs * steps_per_epoch, "batch_size": batch, "train_images": len(data),
              "train_seconds": round(seconds, 1), "from_main_job": bool(whole and seed == 0),
              "rank1": {p: r["rank1"] for p, r in protocols.items()}, "wall_seconds": round(time.perf_counter() - t0, 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return record


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
    protos = ("vis->vis", "nir->vis", "thermal->vis")
    names = {"vis->vis": "VIS", "nir->vis": "NIR", "thermal->vis": "thermal"}
    models = [m for m in MODELS if any(s["model"] == m for s in stats)]
    lines = [f"Eval rank-1, mean over seeds {record['seeds']} (lowest to highest seed in brackets), preset "
             f"`{record['preset']}`, every run at the recipe's step budget ({record['adapt_steps']} steps for an "
             f"adaptation, {record['oracle_steps']} for the oracle). RGB baseline before adaptation: "
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
                  f"{m} NIR {_where(f['nir->vis'])}, thermal {_where(f['thermal->vis'])}"
                  for m, f in flat.items()) + "."]
    m = record["machine"]
    lines += ["", f"The {record['runs']} runs took {record['train_seconds_total'] / 60:.0f} min of training in all (each "
              f"run's own time, the main job's runs excepted; this run of the script {record['seconds']:.0f} s) on "
              f"`{m['cpu']}` ({m['logical_cores']} cores, torch {m['torch']}, {m['device']}): {record['workers']} "
              f"training process(es) side by side, {m['threads']} thread(s) each; points trained by an earlier run "
              "of the benchmark load from its cache."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--quick: 0 1)")
    parser.add_argument("--identities", type=int, nargs="+", default=None)
    parser.add_argument("--pairs", type=int, nargs="+", default=None)
    parser.add_argument("--pairs-at", type=int, default=None)
    parser.add_argument("--models", nargs="+", default=None, choices=MODELS,
                        help="default all three (--quick: method full)")
    parser.add_argument("--workers", type=int, default=None, help="training processes side by side (default 2 on "
                        "a CPU with 2 or more cores, HFR_BUILD_WORKERS if set)")
    parser.add_argument("--quick", action="store_true", help="a small grid on the smoke preset (CI)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args(argv)

    from hfr_tutorial.config import get_preset
    import torch

    from hfr_tutorial.deploy import machine_description
    from hfr_tutorial.parallel_build import default_workers, side_by_side
    from hfr_tutorial.pipeline import evaluate_model

    if args.quick:
        args.preset = "smoke"
        args.seeds = args.seeds or [0, 1]
        args.identities = args.identities or [8, 64]
        args.pairs = args.pairs or [1, 3]
        args.pairs_at = args.pairs_at or 8
        args.models = args.models or ["method", "full"]
        args.out = args.out or ROOT / "runs" / "data_efficiency_quick"
    args.seeds = args.seeds or [0, 1, 2]
    args.models = args.models or list(MODELS)
    preset = get_preset(args.preset)
    data = preset.data
    identities = args.identities or [n for n in (10, 25, 50, 100, 200, 400) if n <= data.n_train_ids]
    pairs = args.pairs or sorted({1, 2, data.images_per_modality})
    pairs_at = args.pairs_at or min(50, data.n_train_ids)
    out = args.out or ROOT / "docs" / "results" / "data_efficiency"
    figure = args.figure or (out / "data_efficiency.png" if args.quick else ROOT / "docs" / "results" / "data_efficiency.png")
    # bad input: refuse before any training
    for name, values, high in (("--identities", identities + [pairs_at], data.n_train_ids),
                               ("--pairs", pairs, data.images_per_modality)):
        bad = [v for v in values if v < 1 or v > high]
        if bad:
            raise SystemExit(f"data_efficiency: {name} {bad} out of range; the preset {preset.name!r} has "
                             f"{data.n_train_ids} training identities and {data.images_per_modality} images per "
                             f"modality, so give 1..{high}.")
    if max(identities) != data.n_train_ids:
        raise SystemExit(f"data_efficiency: --identities must end at the whole split ({data.n_train_ids}), the point "
                         "every gain is measured against.")
    if data.images_per_modality not in pairs:
        raise SystemExit(f"data_efficiency: --pairs must include every image ({data.images_per_modality}).")
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise SystemExit("data_efficiency: --workers must be >= 1.")
    points = grid(identities, pairs, pairs_at, data.images_per_modality)
    calls = sorted({(preset.name, m, n, k, s) for s in args.seeds for m in args.models for _, n, k in points},
                   key=lambda c: (c[1] != "oracle", -c[2], c[4]))  # the long ones first
    print(f"[data efficiency] {len(calls)} models on {workers} process(es): {len(points)} points x "
          f"{len(args.models)} models x {len(args.seeds)} seeds (cached points load)")
    start = time.perf_counter()
    _, faceset, baseline = _world(preset.name)  # the data and the baseline exist before any worker starts
    from tqdm.auto import tqdm

    results: dict[tuple, dict] = {}
    if workers > 1:
        iterator = side_by_side(train_point, calls, workers, threads=1)
    else:
        iterator = (train_point(*c) for c in calls)
    for call, result in zip(calls, tqdm(iterator, total=len(calls), desc="data efficiency", mininterval=5)):
        results[call[1:]] = result
    flat_points = [{**results[(m, n, k, s)], "axis": axis} for axis, n, k in points for m in args.models
                   for s in args.seeds]
    _, base = evaluate_model(baseline.model, faceset.select(split="eval"), preset.eval_batch_size)
    baseline_r1 = {p: r["rank1"] for p, r in base.items()}
    adapt_steps = next((p["steps"] for p in flat_points if p["model"] != "oracle"
                        and p["n_identities"] == data.n_train_ids and p["pairs_per_identity"] == data.images_per_modality), None)
    oracle_steps = next((p["steps"] for p in flat_points if p["model"] == "oracle"
                         and p["n_identities"] == data.n_train_ids and p["pairs_per_identity"] == data.images_per_modality), None)
    record = {"preset": preset.name, "seeds": args.seeds, "models": args.models, "identities": identities,
              "pairs": pairs, "pairs_at": pairs_at, "workers": workers, "baseline": baseline_r1,
              "adapt_steps": adapt_steps, "oracle_steps": oracle_steps if "oracle" in args.models else "-",
              "points": flat_points, "machine": {**machine_description(threads=1 if workers > 1 else torch.get_num_threads()),
                          "device": "cpu"},
              "runs": len(results),
              "train_seconds_total": round(sum(r["train_seconds"] for r in results.values() if not r["from_main_job"]), 1)}
    record["summary"] = summarise(flat_points, baseline_r1)
    record["seconds"] = round(time.perf_counter() - start, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "data_efficiency.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    lines = [f"# How much paired data (`benchmarks/data_efficiency.py`, preset `{preset.name}`)", "", *markdown(record)]
    (out / "data_efficiency.md").write_text("\n".join(lines) + "\n")
    from hfr_tutorial.plots import plot_data_efficiency

    figure.parent.mkdir(parents=True, exist_ok=True)
    plot_data_efficiency(record).savefig(figure, bbox_inches="tight")
    print("\n".join(lines))
    print(f"wrote {out / 'data_efficiency.json'}, {out / 'data_efficiency.md'} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

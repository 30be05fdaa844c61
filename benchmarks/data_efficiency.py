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
(:func:`hfr_tutorial.plots.plot_data_efficiency`; notebook 05 shows it).  Each trained point is
cached under ``$HFR_CACHE/<preset>/data_efficiency/``, so an interrupted run resumes.  ``--quick``
runs a small grid on the ``smoke`` preset (seconds; CI runs it) and writes under ``--out`` only.
"""
from __future__ import annotations

import argparse
import functools
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
    from hfr_tutorial.artifacts import (COMPARISON_RUNS, adapt_payload, load_adapted,
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
        settings = COMPARISON_RUNS[run_name(model)].resolved(config)
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
                    else load_adapted(COMPARISON_RUNS[run_name(model)], preset, 0, progress=False))
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


# ------------------------------------------------------------------ a layout and a pretrained model
def run_name(model: str) -> str:
    """The comparison run a model of this study trains: the paper's policy and loss, or every parameter."""
    from hfr_tutorial.artifacts import FULL_RUN, METHOD_RUN

    return METHOD_RUN if model == "method" else FULL_RUN


@functools.lru_cache(maxsize=1)
def _layout_world(data: str, protocol: str | None, model_ref: str, preset_name: str) -> tuple[Any, ...]:
    """``(preset, faceset, start, teacher, protocols, held_out)`` of a layout, as the main job reads it.

    ``faceset`` has a dev split (carved from the training identities with the recipe's
    ``dev_fraction`` and seed 0 when the protocol has none); ``protocols`` are the eval protocols the
    layout supports; ``held_out`` names the identities carved as dev (empty when the protocol has a
    dev split).  Raises ``ExperimentError`` (a clear message) for data or a model the method
    cannot run on, before any training.
    """
    from hfr_tutorial.config import get_preset
    from hfr_tutorial.data import FaceSet
    from hfr_tutorial.experiment import ExperimentError, carve_dev, check_faceset, resolve_folds, resolve_model

    preset = get_preset(preset_name)
    folds = resolve_folds(data, protocol)
    if len(folds) > 1:
        raise ExperimentError(f"--protocol {protocol} names {len(folds)} folds ({', '.join(map(str, folds))}); the "
                              "curve is measured on one: give one of them.")
    start = resolve_model(model_ref)
    teacher = start.load()
    faceset = FaceSet.from_layout(data, protocol=folds[0])
    protocols = check_faceset(faceset, f"{data}, protocol {protocol or 'default'}")
    if faceset.image_size % 16:
        raise ExperimentError(f"{data}: images of {faceset.image_size} px; EdgeFace needs a side divisible by 16 "
                              "(112 for the official weights). Rewrite the layout with --size 112.")
    held_out: list[str] = []
    if not np.any(faceset.splits == "dev"):
        faceset, held_out = carve_dev(faceset, preset.pretrained.dev_fraction, 0)
    return preset, faceset, start, teacher, protocols, held_out


def limits(train: Any) -> tuple[int, int]:
    """``(identities, pairs)`` at the top of the two axes: identities with VIS and every other modality of
    ``train``, and the most images one of them has of one modality (keeping that many keeps every image)."""
    mods = sorted(set(train.modalities.tolist()))
    complete = set.intersection(*(set(np.unique(train.identities[train.modalities == m]).tolist()) for m in mods))
    counts = [int(np.sum((train.identities == i) & (train.modalities == m))) for i in complete for m in mods]
    return len(complete), max(counts, default=0)


def _layout_key(data: str, protocol: str | None, model_ref: str, preset_name: str) -> tuple[Any, str]:
    """The preset and a digest of what a layout point depends on: the images and splits, the weights, the recipe."""
    from dataclasses import asdict

    preset, faceset, start, *_ = _layout_world(data, protocol, model_ref, preset_name)
    content = hashlib.sha1()
    for path, split, ident, mod in zip(faceset.paths, faceset.splits, faceset.identities, faceset.modalities):
        content.update(f"{path}|{split}|{ident}|{mod}\n".encode())
    payload = {"study": STUDY_VERSION, "data": content.hexdigest(), "weights": start.describe()["sha256"],
               "recipe": asdict(preset.pretrained), "train": asdict(preset.train)}
    return preset, hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _layout_cache(data: str, protocol: str | None, model_ref: str, preset_name: str, name: str) -> Path:
    from hfr_tutorial.config import cache_dir

    preset, key = _layout_key(data, protocol, model_ref, preset_name)
    return cache_dir() / preset.name / "data_efficiency" / f"layout-{key}" / f"{name}.json"


def _eval_rank1(model: Any, data: str, protocol: str | None, model_ref: str, preset_name: str,
                device: str) -> dict[str, float]:
    from hfr_tutorial.evaluate import embed
    from hfr_tutorial.experiment import protocol_figures

    preset, faceset, _, _, protocols, _ = _layout_world(data, protocol, model_ref, preset_name)
    evalset = faceset.select(split="eval")
    emb = embed(model.to(device), evalset, batch_size=preset.eval_batch_size, progress=False)
    return {p: float(r["rank1"]) for p, r in protocol_figures(emb, evalset, protocols).items()}


def choose_lr(data: str, protocol: str | None, model_ref: str, preset_name: str, model: str, device: str,
              progress: bool = True) -> dict[str, Any]:
    """The rate of ``model`` chosen on dev with every training identity, as the main job chooses it (cached).

    Trains the model at each rate of the recipe's ``lr_grid`` (seed 0) and keeps the best on dev
    that passes the VIS guard; the kept model is also the curve's top point at seed 0 (written to
    the point cache).  Raises ``ExperimentError`` with the guard's reason when every rate is refused.
    """
    from hfr_tutorial.evaluate import embed
    from hfr_tutorial.experiment import ExperimentError, dev_summary, adapt_choosing_lr
    from hfr_tutorial.pipeline import write_json

    path = _layout_cache(data, protocol, model_ref, preset_name, f"lr-{model}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        return json.loads(path.read_text())
    preset, faceset, _, teacher, *_ = _layout_world(data, protocol, model_ref, preset_name)
    dev = faceset.select(split="dev")
    teacher_dev = embed(teacher.to(device), dev, batch_size=preset.eval_batch_size, progress=False)
    dev_before, _ = dev_summary(teacher_dev, dev)  # the VIS guard's reference: the model before adaptation
    say = print if progress else (lambda *a, **k: None)
    say(f"[data efficiency] {model}: choosing the learning rate on dev from {list(preset.pretrained.lr_grid)}")
    rec = adapt_choosing_lr(run_name(model), teacher, faceset, dev, preset, preset.pretrained,
                            list(preset.pretrained.lr_grid), dev_before, seed=0, device=device, say=say)
    if rec["status"] != "ok":
        raise ExperimentError(f"{model}: {rec['reason']}")
    train = faceset.select(split="train")
    n, k = limits(train)
    if len(train.paired_subset(n, k, seed=0)) == len(train):  # the top point is the whole split: keep this model
        config = rec["config"]
        length = len(train.pair_loader(config.batch_size, seed=0, pairs_per_identity=config.adapt_pairs_per_identity,
                                       drop_last=True))
        point = {"model": model, "n_identities": n, "pairs_per_identity": k, "seed": 0, "epochs": config.adapt_epochs,
                 "steps": config.adapt_epochs * length, "batch_size": config.batch_size, "train_images": len(train),
                 "train_seconds": round(rec["result"].seconds, 1), "from_main_job": False, "lr": rec["lr"],
                 "rank1": _eval_rank1(rec["result"].model, data, protocol, model_ref, preset_name, device)}
        write_json(_layout_cache(data, protocol, model_ref, preset_name, f"{model}-n{n}-k{k}-s0-lr{rec['lr']:g}"),
                   point)
    chosen = {"lr": rec["lr"], "candidates": rec["candidates"], "selection": rec["selection"],
              "train_seconds": rec["train_seconds"]}
    write_json(path, chosen)
    return chosen


def train_layout_point(data: str, protocol: str | None, model_ref: str, preset_name: str, model: str, n: int, k: int,
                       seed: int, lr: float, device: str) -> dict[str, Any]:
    """Adapt the pretrained model on ``n`` paired identities x ``k`` images of the layout; eval rank-1 (cached)."""
    from hfr_tutorial.artifacts import COMPARISON_RUNS
    from hfr_tutorial.experiment import pretrained_train_config
    from hfr_tutorial.pipeline import write_json
    from hfr_tutorial.train import adapt_cross_spectral

    path = _layout_cache(data, protocol, model_ref, preset_name, f"{model}-n{n}-k{k}-s{seed}-lr{lr:g}")
    if path.is_file():
        return json.loads(path.read_text())
    preset, faceset, _, teacher, *_ = _layout_world(data, protocol, model_ref, preset_name)
    recipe = preset.pretrained
    train_all = faceset.select(split="train")
    subset = train_all.paired_subset(n, k, seed=seed)
    n_all = len(np.unique(train_all.identities))
    config = pretrained_train_config(preset, recipe, lr, n)
    full = pretrained_train_config(preset, recipe, lr, n_all)
    length = len(subset.pair_loader(config.batch_size, seed=seed, pairs_per_identity=config.adapt_pairs_per_identity,
                                    drop_last=True))
    full_length = len(train_all.pair_loader(full.batch_size, seed=0, pairs_per_identity=full.adapt_pairs_per_identity,
                                            drop_last=True))
    epochs = _steps(length, recipe.epochs * full_length)  # the step budget of the whole split
    config = replace(config, adapt_epochs=epochs)
    settings = replace(COMPARISON_RUNS[run_name(model)], lr=None, epochs=None)  # the recipe's rate and epochs
    t0 = time.perf_counter()
    result = adapt_cross_spectral(teacher, subset, config, settings, seed=seed, device=device, progress=False)
    record = {"model": model, "n_identities": n, "pairs_per_identity": k, "seed": seed, "epochs": epochs,
              "steps": epochs * length, "batch_size": config.batch_size, "train_images": len(subset),
              "train_seconds": round(result.seconds, 1), "from_main_job": False, "lr": lr,
              "rank1": _eval_rank1(result.model, data, protocol, model_ref, preset_name, device),
              "wall_seconds": round(time.perf_counter() - t0, 1)}
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

    from hfr_tutorial.config import get_preset
    import torch

    from hfr_tutorial.deploy import machine_description
    from hfr_tutorial.experiment import ExperimentError, resolve_device
    from hfr_tutorial.parallel_build import default_workers, side_by_side

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
    if args.lr is not None and not (np.isfinite(args.lr) and args.lr > 0):
        raise SystemExit(f"data_efficiency: --lr {args.lr}: a learning rate must be a finite number > 0.")
    if not layout and (args.protocol or args.lr is not None or args.model is not None):
        raise SystemExit("data_efficiency: --protocol, --lr and --model need --data (the embedded world adapts its "
                         "own RGB baseline, with the rates chosen on dev by the main job).")
    try:
        device = str(resolve_device(None if args.device == "auto" else args.device))
        if layout:
            if "oracle" in args.models:
                raise SystemExit("data_efficiency: --models oracle trains from scratch on the embedded world only; "
                                 "with --data compare method and full (the pretrained model is the start).")
            data_arg = str(args.data.resolve())
            if not args.data.is_dir():
                raise SystemExit(f"data_efficiency: --data {args.data} is not a folder; give a standard layout "
                                 "(data_scripts/ write one).")
            world = (data_arg, args.protocol, args.model or "edgeface_xxs", args.preset)
            preset, faceset, start, teacher, protocols, held_out = _layout_world(*world)
            n_max, k_max = limits(faceset.select(split="train"))
            where = f"the layout {args.data} (protocol {args.protocol or 'default'}" + (
                f"; {len(held_out)} training identities held out as dev, as it has no dev split)" if held_out else ")")
            name = f"{faceset.name}-{args.protocol or 'default'}".replace("/", "-")
            default_out = ROOT / "runs" / "data_efficiency" / name
        else:
            preset, faceset, baseline = _world(args.preset)
            protocols = ["vis->vis", "nir->vis", "thermal->vis"]
            n_max, k_max = preset.data.n_train_ids, preset.data.images_per_modality
            where = f"the preset {preset.name!r}"
            default_out = ROOT / "docs" / "results" / "data_efficiency"
    except (ExperimentError, ValueError, FileNotFoundError) as err:
        raise SystemExit(f"data_efficiency: {err}") from None
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
    lr_choice: dict[str, Any] = {}
    if layout:
        for m in args.models:  # the rate chosen on dev with every identity, before the curve (cached)
            try:
                lr_choice[m] = ({"lr": args.lr, "selection": "learning rate given (--lr)"} if args.lr is not None
                                else choose_lr(*world, m, device))
            except ExperimentError as err:
                raise SystemExit(f"data_efficiency: {err}") from None
        calls = sorted({(*world, m, n, k, s, lr_choice[m]["lr"], device) for s in args.seeds for m in args.models
                        for _, n, k in points}, key=lambda c: (-c[5], c[7]))
        fn: Any = train_layout_point
        key_of = (lambda c: c[4:8])
    else:
        calls = sorted({(preset.name, m, n, k, s) for s in args.seeds for m in args.models for _, n, k in points},
                       key=lambda c: (c[1] != "oracle", -c[2], c[4]))  # the long ones first
        fn, key_of = train_point, (lambda c: c[1:5])
    print(f"[data efficiency] {len(calls)} models on {workers} process(es): {len(points)} points x "
          f"{len(args.models)} models x {len(args.seeds)} seeds (cached points load)")
    from tqdm.auto import tqdm

    results: dict[tuple, dict] = {}
    iterator = side_by_side(fn, calls, workers, threads=1) if workers > 1 else (fn(*c) for c in calls)
    for call, result in zip(calls, tqdm(iterator, total=len(calls), desc="data efficiency", mininterval=5)):
        results[key_of(call)] = result
    flat_points = [{**results[(m, n, k, s)], "axis": axis} for axis, n, k in points for m in args.models
                   for s in args.seeds]
    if layout:
        baseline_r1 = _eval_rank1(teacher, *world, device)
        baseline_name = f"{start.variant} before adaptation"
        source = {"kind": "layout", "root": data_arg, "name": faceset.name, "protocol": args.protocol or "default",
                  "starting_model": start.describe(), "protocols": protocols, "dev_identities_held_out": held_out}
    else:
        from hfr_tutorial.pipeline import evaluate_model

        _, base = evaluate_model(baseline.model, faceset.select(split="eval"), preset.eval_batch_size)
        baseline_r1 = {p: r["rank1"] for p, r in base.items()}
        baseline_name = "RGB baseline before adaptation"
        source = {"kind": "embedded", "name": f"synthetic-{preset.name}"}
    adapt_steps = next((p["steps"] for p in flat_points if p["model"] != "oracle"
                        and p["n_identities"] == n_max and p["pairs_per_identity"] == k_max), None)
    oracle_steps = next((p["steps"] for p in flat_points if p["model"] == "oracle"
                         and p["n_identities"] == n_max and p["pairs_per_identity"] == k_max), None)
    record = {"preset": preset.name, "data": source, "seeds": args.seeds, "models": args.models,
              "identities": identities, "pairs": pairs, "pairs_at": pairs_at, "workers": workers,
              "baseline": baseline_r1, "baseline_name": baseline_name, "protocols": protocols,
              "adapt_steps": adapt_steps, "oracle_steps": oracle_steps if "oracle" in args.models else "-",
              "lr": {m: c["lr"] for m, c in lr_choice.items()} or "chosen on dev by the main job (the preset's recipe)",
              "lr_selection": lr_choice or None, "points": flat_points,
              "machine": {**machine_description(threads=1 if workers > 1 else torch.get_num_threads()),
                          "device": device},
              "runs": len(results),
              "train_seconds_total": round(sum(r["train_seconds"] for r in results.values() if not r["from_main_job"]), 1)}
    record["summary"] = summarise(flat_points, baseline_r1)
    record["seconds"] = round(time.perf_counter() - start_time, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "data_efficiency.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    title = f"preset `{preset.name}`" + (f", layout `{faceset.name}`, {start.variant}" if layout else "")
    lines = [f"# How much paired data (`benchmarks/data_efficiency.py`, {title})", "", *markdown(record)]
    (out / "data_efficiency.md").write_text("\n".join(lines) + "\n")
    from hfr_tutorial.plots import plot_data_efficiency

    figure.parent.mkdir(parents=True, exist_ok=True)
    plot_data_efficiency(record).savefig(figure, bbox_inches="tight")
    print("\n".join(lines))
    print(f"wrote {out / 'data_efficiency.json'}, {out / 'data_efficiency.md'} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

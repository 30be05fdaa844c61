"""One experiment, one path: :func:`run` trains (or loads), evaluates and reports any :class:`Experiment`.

The CLI (``hfr-tutorial run``), the notebooks and every benchmark call it.  For each fold of the data:

1. the starting model (the stand-in, cached; or a checkpoint) embeds the dev and eval identities;
2. every run trains at each of its candidate rates (:mod:`.recipe`) as a cached artifact
   (:func:`hfr_tutorial.artifacts.load_adaptation`: locks, digests, resume after a kill, reuse by a
   second call); on a CPU the missing models train side by side first
   (:mod:`hfr_tutorial.parallel_build`);
3. each candidate is scored on dev; the rate is kept by the run's rule (fixed, or the best on dev
   that passes the VIS guard);
4. the kept models and the starting model embed the eval identities once; every registered metric
   (:data:`hfr_tutorial.metrics.METRICS`) with a paired bootstrap interval over identities; the
   claims (:mod:`.summary`);

then the summary over folds, ``metrics.json`` (one schema), ``report.md`` (:mod:`.report`),
``figures/`` (:mod:`.figures`) and ``checkpoints/`` (every kept adapted model, official key names,
loadable with ``hfr_tutorial.models.load_edgeface(variant, path)``), written by the ``--out`` rule
(:mod:`.outdir`).

Taught in: ``notebooks/05_full_training.ipynb`` and ``notebooks/07_real_edgeface.ipynb``.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..artifacts import (Artifact, adapt_kind, adapt_payload, load_adaptation, load_oracle, load_recognizer,
                         model_is_cached, oracle_payload, recognizer_payload)
from ..config import TrainConfig, get_device
from ..data import FaceSet, cross_modalities
from ..environment import describe_environment
from ..evaluate import apply_threshold, available_protocols, embed, far_key, score_protocols, threshold_at_far
from ..metrics import METRICS, N_BOOT, figures_of, paired_bootstrap, protocol_record
from ..models.edgeface import INPUT_SIZE
from ..parallel_build import default_workers, side_by_side
from ..runs import get_run
from ..train import check_pairable
from .figures import write_figures
from .outdir import output_folder, write_json
from .recipe import candidate, choose, rate_plan, refusal
from .report import render_report
from .spec import (EmbeddedData, Experiment, ExperimentError, Start, StandIn, fold_key, held_out_dev,
                   subset_is_whole, training_seed)
from .summary import fold_claims, over_folds

SCHEMA = 2
"""The version of ``metrics.json``'s layout."""


def resolve_device(device: str | None) -> torch.device:
    """``auto``/None: CUDA when present, else CPU; a named device must exist (clear error otherwise)."""
    if device in (None, "auto"):
        return get_device(None)
    if device == "cuda" and not torch.cuda.is_available():
        raise ExperimentError("--device cuda: no CUDA device is visible to torch here (torch.cuda.is_available() is "
                              f"False; torch {torch.__version__}). Use --device cpu, or install a CUDA build of torch.")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ExperimentError("--device mps: Apple's Metal backend is not available here. Use --device cpu.")
    if device not in ("cpu", "cuda", "mps") and not str(device).startswith("cuda:"):
        raise ExperimentError(f"--device {device}: choose auto, cpu, cuda or mps.")
    return torch.device(device)


def check_faceset(faceset: FaceSet, where: str) -> list[str]:
    """Refuse, before any training, a set the method cannot run on; returns its eval protocols."""
    problems = []
    for split in ("train", "eval"):
        if not np.any(faceset.splits == split):
            problems.append(f"no images in split {split!r}")
    train = faceset.select(split="train")
    if len(train) and (not np.any(train.modalities == "vis") or not cross_modalities(train.modalities)):
        problems.append(f"its train split holds modalities {sorted(set(train.modalities))}: the method pairs VIS with "
                        "another modality of the same identities, so it needs both")
    dev = faceset.select(split="dev")
    if len(dev) and len(np.unique(dev.identities)) < 2:
        problems.append("its dev split holds one identity: dev scores need genuine and impostor pairs, so give it at "
                        "least 2 identities")
    protocols: list[str] = []
    evalset = faceset.select(split="eval")
    if len(evalset):
        try:
            protocols = available_protocols(evalset.identities, evalset.modalities, evalset.roles)
        except ValueError as err:
            problems.append(f"its eval split: {err}")
        else:
            missing = [m for m in cross_modalities(evalset.modalities) if f"{m}->vis" not in protocols]
            if missing:
                problems.append(f"its eval split holds {missing} images but none is a probe of an identity enrolled in "
                                "the VIS gallery (role 'probe', and a 'gallery' VIS image of the same identity)")
            elif not [p for p in protocols if not p.startswith("vis->")]:
                problems.append(f"its eval split has no cross-modal protocol (modalities "
                                f"{sorted(set(evalset.modalities))}; every probe modality needs probes of "
                                "identities enrolled in the VIS gallery)")
    if problems:
        raise ExperimentError(f"{where}: " + "; ".join(problems) + ". Fix the protocol CSV (split and role columns) "
                              "or choose another protocol.")
    return protocols


# ------------------------------------------------------------------------------------------------
# The models of a fold
# ------------------------------------------------------------------------------------------------
def training_split(experiment: Experiment, faceset: FaceSet) -> tuple[FaceSet, FaceSet]:
    """(the whole training split, what the adaptation trains on: the subset when the data asks for one)."""
    full = faceset.select(split="train")
    subset = experiment.data.subset
    if subset is None:
        return full, full
    return full, full.paired_subset(subset.n_identities, subset.images_per_modality, seed=subset.seed)


def _oracle(experiment: Experiment, faceset: FaceSet, data: str, device: Any, progress: bool) -> Artifact:
    """The joint oracle of the fold (the embedded data only): from the cache, or trained."""
    preset, seed = experiment.preset, experiment.seed
    subset = experiment.data.subset
    if subset is None or (subset.seed == seed and subset_is_whole(subset, faceset)):
        return load_oracle(preset, seed, progress)
    full = faceset.select(split="train")
    data_set = artifact_train_images(experiment, faceset)
    config = preset.train
    steps = config.oracle_epochs * (len(full) // config.batch_size)
    epochs = max(1, round(steps / max(1, len(data_set) // config.batch_size)))
    return load_recognizer(data_set, faceset.select(split="dev"), data + "-oracle", config,
                           modalities=tuple(preset.data.modalities), epochs=epochs, augment=config.oracle_augment,
                           name="joint/oracle", kind="oracle", preset_name=preset.name, seed=subset.seed,
                           device=device, progress=progress)


def artifact_train_images(experiment: Experiment, faceset: FaceSet) -> FaceSet:
    """The images the oracle of this fold trains on (every VIS image of the split, the subset of the others)."""
    full = faceset.select(split="train")
    subset = experiment.data.subset
    if subset is None:
        return full
    return full.paired_subset(subset.n_identities, subset.images_per_modality, seed=subset.seed, all_vis=True)


def _adapted(experiment: Experiment, start: Start, faceset: FaceSet, data: str, run: str, lr: float,
             config: TrainConfig, device: Any, progress: bool) -> Artifact:
    """One run at one rate: the cached adaptation of the starting model on the fold's training split."""
    _, train = training_split(experiment, faceset)
    return load_adaptation(start.model, start.key, start.variant, train, faceset.select(split="dev"), data, config,
                           get_run(run).settings_at(lr), preset_name=experiment.preset.name,
                           seed=training_seed(experiment), device=device, bf16=experiment.bf16, progress=progress)


def _requests(experiment: Experiment, folds: dict[str, FaceSet], num_workers: int | None) -> list[tuple]:
    """Every (fold, run, rate) whose model the cache lacks, most expensive first."""
    missing = []
    start_key = experiment.start.key(experiment.preset, experiment.seed)
    for label, faceset in folds.items():
        full, train = training_split(experiment, faceset)
        data = fold_key(experiment.data, faceset, experiment.preset, experiment.seed)
        for run in experiment.runs:
            spec = get_run(run)
            if not spec.adapts:
                continue
            config = _config(experiment, full, train, num_workers)
            for lr in rate_plan(experiment, spec).rates:
                payload = adapt_payload(start_key, data, config, spec.settings_at(lr), training_seed(experiment),
                                        experiment.bf16)
                if not model_is_cached(experiment.preset.name, adapt_kind(spec.settings_at(lr), config), payload):
                    cost = 2.0 if spec.settings.policy.startswith("full") else 1.0  # type: ignore[union-attr]
                    missing.append((cost, label, run, lr))
    return [m[1:] for m in sorted(missing, key=lambda m: -m[0])]


def _config(experiment: Experiment, full: FaceSet, train: FaceSet, num_workers: int | None) -> TrainConfig:
    config = experiment.adapt_config(full, train)
    return config if num_workers is None else replace(config, num_workers=num_workers)


def build_in_worker(experiment: Experiment, label: str, what: str, lr: float | None,
                    num_workers: int | None) -> tuple[str, float, bool, str]:
    """A spawned process's job: load or train one model of ``experiment`` into the cache (``what``: "start",
    the oracle's name, or a run at rate ``lr``); returns its label, seconds, whether it was cached and its
    cache entry's name."""
    t0 = time.perf_counter()
    preset, seed = experiment.preset, experiment.seed
    folds = experiment.data.folds(preset, seed, progress=False)
    faceset = folds[label]
    data = fold_key(experiment.data, faceset, preset, seed)
    if what == "start":
        start = experiment.start.load(preset, seed, progress=False)
        return "start", time.perf_counter() - t0, start.from_cache, start.entry
    if not get_run(what).adapts:
        artifact = _oracle(experiment, faceset, data, None, progress=False)
    else:
        start = experiment.start.load(preset, seed, progress=False)
        full, train = training_split(experiment, faceset)
        artifact = _adapted(experiment, start, faceset, data, what, float(lr), _config(experiment, full, train,
                                                                                      num_workers), None, False)
    return (f"{what}" + (f" (lr {lr:g})" if lr is not None else ""), time.perf_counter() - t0, artifact.from_cache,
            artifact.path.name)


def build_missing(experiment: Experiment, folds: dict[str, FaceSet], *, workers: int | None, device: torch.device,
                  num_workers: int | None, say: Callable[..., None]) -> dict[str, tuple[float, str]]:
    """Train the experiment's missing models side by side on a CPU (nothing on a GPU: one process uses it best).

    Stage 1: the stand-in and the oracle (the stand-in's adaptations start from it); stage 2: every
    (fold, run, rate) the cache lacks.  A stage with one model leaves it to this process (every thread).
    Returns ``{label: (seconds, cache entry name)}`` of the models trained here.
    """
    workers = default_workers() if workers is None else int(workers)
    if workers < 2 or device.type != "cpu":
        return {}
    threads = max(1, (os.cpu_count() or 1) // workers)
    first: list[tuple] = []
    preset, seed = experiment.preset, experiment.seed
    if isinstance(experiment.start, StandIn) and not _stand_in_cached(experiment):
        first.append(("default", "start", None))
    oracle = [r for r in experiment.runs if not get_run(r).adapts]
    if oracle and experiment.data.subset is None and isinstance(experiment.data, EmbeddedData) and \
            not model_is_cached(preset.name, "oracle", oracle_payload(preset, seed)):
        first.append(("default", oracle[0], None))
    built: dict[str, tuple[float, str]] = {}
    for stage in (first, None):
        jobs = stage if stage is not None else _requests(experiment, folds, num_workers)
        if len(jobs) < 2:
            continue
        n = min(workers, len(jobs))
        say(f"      training {len(jobs)} models side by side in {n} processes ({threads} thread each)")
        t0 = time.perf_counter()
        calls = [(experiment, label, what, lr, num_workers) for label, what, lr in jobs]
        for name, seconds, cached, entry in side_by_side(build_in_worker, calls, n, threads):
            if not cached:
                built[name] = (round(seconds, 1), entry)
            say(f"      {name}: {'already cached' if cached else f'trained in {seconds:.0f} s'}")
        say(f"      stage done in {time.perf_counter() - t0:.0f} s")
    return built


def _stand_in_cached(experiment: Experiment) -> bool:
    preset = experiment.preset
    return model_is_cached(preset.name, "baseline", recognizer_payload(preset, experiment.seed, ("vis",),
                                                                       preset.train.baseline_epochs))


# ------------------------------------------------------------------------------------------------
# Evaluation of a fold
# ------------------------------------------------------------------------------------------------
def _record(artifact: Artifact | None, start: Start | None = None,
            built: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A model's record; ``from_cache`` is False for a model trained by this run (here or side by side)."""
    if artifact is None:  # the starting model
        assert start is not None
        return {"status": "ok", "role": "start", "trainable_params": start.trainable_params,
                "total_params": start.total_params, "train_seconds": round(start.train_seconds, 1),
                "train_threads": start.train_threads, "from_cache": start.from_cache and start.entry not in built}
    return {"status": "ok", "trainable_params": artifact.trainable_params, "total_params": artifact.total_params,
            "train_seconds": round(artifact.seconds, 1), "train_threads": artifact.meta.get("threads"),
            "from_cache": artifact.from_cache and artifact.path.name not in built, "cache_entry": artifact.path.name}


def _choose_on_dev(experiment: Experiment, spec: Any, start: Start, faceset: FaceSet, data: str,
                   start_dev: dict[str, Any], built: frozenset[str], *, device: torch.device, num_workers: int | None,
                   progress: bool) -> tuple[dict[str, Any], Artifact | None, np.ndarray | None]:
    """Train (or load) ``spec`` at each of its candidate rates, score each on dev, keep one by the run's rule.

    Returns the run's record, the kept model and its dev embeddings; a run whose every rate the VIS
    guard refused comes back as ``{"status": "refused", "reason": ...}`` with no model.
    """
    full, train = training_split(experiment, faceset)
    dev = faceset.select(split="dev")
    config = _config(experiment, full, train, num_workers)
    plan = rate_plan(experiment, spec)
    candidates, trained = [], {}
    for lr in plan.rates:
        artifact = _adapted(experiment, start, faceset, data, spec.name, lr, config, device, progress)
        emb = embed(artifact.model, dev, batch_size=experiment.preset.eval_batch_size, progress=False, device=device)
        candidates.append(candidate(lr, figures_of(emb, dev), start_dev, plan.guard, artifact.seconds,
                                    artifact.from_cache and artifact.path.name not in built))
        trained[lr] = (artifact, emb)
    steps_per_epoch = len(train.pair_loader(config.batch_size, seed=training_seed(experiment),
                                            pairs_per_identity=config.adapt_pairs_per_identity, drop_last=True))
    resolved = spec.settings.resolved(config)
    recipe = {"how": plan.how, "guard": plan.guard, "candidates": candidates, "epochs": config.adapt_epochs,
              "steps": config.adapt_epochs * steps_per_epoch, "batch_size": config.batch_size,
              "train_images": len(train), "pairs_per_identity": config.adapt_pairs_per_identity,
              "distill_weight": resolved.distill_weight, "contrastive": resolved.contrastive}
    chosen = choose(candidates)
    if chosen is None:
        return ({"status": "refused", "role": spec.role, "reason": refusal(plan, candidates, start_dev),
                 "recipe": recipe}, None, None)
    artifact, dev_emb = trained[chosen["lr"]]
    rec = {**_record(artifact, built=built), "role": spec.role, "lr": chosen["lr"], "dev": chosen["dev"],
           "recipe": recipe, "train_seconds": round(sum(c["train_seconds"] for c in candidates), 1)}
    return rec, artifact, dev_emb


def _copy_checkpoint(artifact: Artifact, checkpoints: Path, run: str, fold: str | None) -> str:
    """Copy a kept model (official key names) into ``checkpoints``; returns its path relative to ``--out``."""
    path = checkpoints / (f"{fold}/" if fold else "") / (run.replace("/", "-").replace("+", "_") + ".pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifact.path / "model.pt", path)
    return str(Path("checkpoints") / path.relative_to(checkpoints))


def evaluate_fold(experiment: Experiment, label: str, faceset: FaceSet, protocols: list[str], start: Start, *,
                  device: torch.device, num_workers: int | None, progress: bool, say: Callable[..., None],
                  checkpoints: Path | None,
                  built: frozenset[str] = frozenset()) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every model of one fold: choices on dev, figures on eval with paired intervals, the claims.

    Returns the fold's record (``metrics.json``'s ``folds[label]``) and what its figures need.
    """
    preset, seed = experiment.preset, experiment.seed
    _, train = training_split(experiment, faceset)
    data = fold_key(experiment.data, faceset, preset, seed)
    dev, evalset = faceset.select(split="dev"), faceset.select(split="eval")
    batch = preset.eval_batch_size
    start_model = start.model.to(device)
    dev_embeddings = {start.name: embed(start_model, dev, batch_size=batch, progress=False, device=device)}
    start_dev = figures_of(dev_embeddings[start.name], dev)
    embeddings = {start.name: embed(start_model, evalset, batch_size=batch, progress=progress, device=device)}
    models: dict[str, Any] = {start.name: {**_record(None, start, built), "dev": start_dev}}
    histories: dict[str, Any] = {}
    say(f"      {start.name}: " + _rank1_line(figures_of(embeddings[start.name], evalset)) + " (eval)")
    for run in experiment.runs:
        spec = get_run(run)
        if not spec.adapts:
            artifact = _oracle(experiment, faceset, data, device, progress)
            dev_embeddings[run] = embed(artifact.model, dev, batch_size=batch, progress=False, device=device)
            rec = {**_record(artifact, built=built), "role": spec.role, "lr": preset.train.baseline_lr,
                   "steps": int(artifact.meta["payload"]["epochs"] * (len(artifact_train_images(experiment, faceset))
                                                                     // preset.train.batch_size)),
                   "dev": figures_of(dev_embeddings[run], dev),
                   "selection": "trained from scratch on every modality with the preset's TrainConfig"}
        else:
            rec, artifact, dev_emb = _choose_on_dev(experiment, spec, start, faceset, data, start_dev, built,
                                                   device=device, num_workers=num_workers, progress=progress)
            if artifact is None:
                models[run] = rec
                say(f"      {run}: refused ({rec['reason']})")
                continue
            dev_embeddings[run] = dev_emb
            if checkpoints is not None:
                rec["checkpoint"] = _copy_checkpoint(artifact, checkpoints, run,
                                                     label if len(experiment.data.describe(preset, seed)["folds"]) > 1
                                                     else None)
        histories[run] = artifact.history
        rec["history"] = artifact.history.to_dict(orient="records")
        embeddings[run] = embed(artifact.model, evalset, batch_size=batch, progress=False, device=device)
        models[run] = rec
        say(f"      {run}" + (f" (lr {rec['lr']:g})" if spec.adapts else "") + ": "
            + _rank1_line(figures_of(embeddings[run], evalset))
            + (" [cache]" if artifact.from_cache else f" [trained, {artifact.seconds:.0f} s]"))
    scored = {name: score_protocols(e, evalset.identities, evalset.modalities, protocols, evalset.roles)
              for name, e in embeddings.items()}
    for name, by_protocol in scored.items():
        models[name]["protocols"] = {p: protocol_record(ps) for p, ps in by_protocol.items()}
        models[name]["operating_points"] = operating_points(dev_embeddings[name], dev, by_protocol)
    say(f"      intervals: {N_BOOT} bootstrap resamples of the eval identities, paired across models")
    boot = paired_bootstrap(scored, seed=seed)
    for name in scored:
        models[name]["intervals"] = boot.intervals(name)
    fold = {"protocols": protocols, "dev_identities_held_out": held_out_dev(faceset),
            "identities": {s: int(len(np.unique(faceset.identities[faceset.splits == s])))
                           for s in ("train", "dev", "eval")},
            "train_identities_used": int(len(np.unique(train.identities))),
            "models": models,
            "claims": fold_claims(start.name, [r for r in experiment.runs if r in scored], protocols, boot)}
    return fold, {"embeddings": embeddings, "evalset": evalset, "protocols": protocols, "start": start.name,
                  "histories": histories}


OPERATING_FARS: tuple[float, ...] = (1e-2, 1e-3)
"""FARs whose threshold is chosen on dev and applied to eval (the deployable operating points)."""


def operating_points(dev_embeddings: np.ndarray, dev: FaceSet, eval_scored: dict[str, Any]) -> dict[str, Any]:
    """Per protocol, the threshold chosen on dev at each FAR of :data:`OPERATING_FARS` and the FAR and TAR
    it actually gives on eval: what a deployed system would see (a threshold tuned on eval would
    report an optimistic FAR)."""
    dev_protocols = [p for p in eval_scored if p in available_protocols(dev.identities, dev.modalities, dev.roles)]
    dev_scored = score_protocols(dev_embeddings, dev.identities, dev.modalities, dev_protocols, dev.roles)
    out: dict[str, Any] = {}
    for p, ps in eval_scored.items():
        if p in dev_scored:
            d = dev_scored[p]
            out[p] = {far_key(f).replace("tar_at_", ""): apply_threshold(ps.scores, ps.same,
                                                                         threshold_at_far(d.scores, d.same, f))
                      for f in OPERATING_FARS}
    return out


def _rank1_line(figures: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{p} rank-1 {v['rank1']:.3f}" for p, v in figures.items())


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------
def run(experiment: Experiment, out: str | Path, *, device: str | None = None, workers: int | None = None,
        num_workers: int | None = None, progress: bool = True, figures: bool = True, checkpoints: bool = True,
        overwrite: bool = False) -> dict[str, Any]:
    """Train (or load), evaluate and report ``experiment`` into ``out``; returns the ``metrics.json`` record.

    Args:
        experiment: what to run (:class:`~hfr_tutorial.experiment.spec.Experiment`).
        out: the folder of ``metrics.json``, ``report.md``, ``figures/`` and ``checkpoints/`` (the
            ``--out`` rule: :mod:`hfr_tutorial.experiment.outdir`).
        device: ``auto``/None (CUDA when present), ``cpu``, ``cuda`` or ``mps``: training and evaluation.
        workers: on a CPU, how many missing models train side by side (default ``HFR_BUILD_WORKERS``,
            else 2 on two or more cores; 1 trains them one after another in this process).
        num_workers: data-loader processes per training (default: the preset's; not part of any key).
        checkpoints: copy each kept adapted model into ``out/checkpoints/`` (they stay in the cache either way).
        overwrite: replace the result of another experiment in ``out``.
    """
    experiment.check()
    torch_device = resolve_device(device)
    if experiment.bf16 and torch_device.type != "cuda":
        raise ExperimentError(f"--bf16 applies to CUDA devices; this run is on {torch_device.type}, where bfloat16 "
                              "autocast was 7-14x slower (benchmarks/bench_speed.py). Leave --bf16 out.")
    if workers is not None and workers < 1:
        raise ExperimentError(f"--build-workers {workers}: give a whole number >= 1 (1 trains the models one after "
                              "another in this process).")
    say = print if progress else (lambda *a, **k: None)
    preset, seed = experiment.preset, experiment.seed
    t0 = time.perf_counter()
    described = experiment.describe()
    with output_folder(out, experiment.fingerprint(), overwrite) as target:
        say(f"[1/4] data: {described['data']['name']}; starting model: {described['starting_model']['name']}; "
            f"preset {preset.name!r}, seed {seed}, device {torch_device}")
        folds = experiment.data.folds(preset, seed, progress)
        protocols_of = {label: check_faceset(fs, f"{described['data']['name']}, protocol {label}")
                        for label, fs in folds.items()}
        notes = _check_sizes(experiment, folds)
        for label, faceset in folds.items():
            full, train = training_split(experiment, faceset)
            for run_name in experiment.runs:
                if get_run(run_name).adapts:
                    check_pairable(train, _config(experiment, full, train, num_workers).batch_size,
                                   where=f"fold {label}, run {run_name}")
        for note in notes:
            say(f"      note: {note}")
        say("[2/4] models: from the cache, or trained")
        built = build_missing(experiment, folds, workers=workers, device=torch_device, num_workers=num_workers, say=say)
        start = experiment.start.load(preset, seed, progress)
        say(f"[3/4] evaluation on eval identities ({len(folds)} fold{'s' if len(folds) > 1 else ''})")
        fold_records, plot_data = {}, None
        for label, faceset in folds.items():
            if len(folds) > 1:
                say(f"      fold {label}")
            record, data = evaluate_fold(experiment, label, faceset, protocols_of[label], start, device=torch_device,
                                         num_workers=num_workers, progress=progress, say=say,
                                         checkpoints=target / "checkpoints" if checkpoints else None,
                                         built=frozenset(entry for _, entry in built.values()))
            fold_records[label] = record
            plot_data = plot_data or data
        metrics: dict[str, Any] = {
            "schema": SCHEMA, "fingerprint": experiment.fingerprint(), "experiment": described,
            "preset": preset.name, "seed": seed, "device": str(torch_device),
            "metrics": {name: {"label": m.label, "higher_is_better": m.higher_is_better, "headline": m.headline}
                        for name, m in METRICS.items()},
            "folds": fold_records, "summary": over_folds(fold_records), "notes": notes,
            "trained_here": {name: seconds for name, (seconds, _) in built.items()},
            "environment": describe_environment(threads=torch.get_num_threads())}
        say("[4/4] report")
        metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
        first = next(iter(fold_records.values()))
        figure_files = write_figures(target / "figures", first, plot_data) if figures and plot_data else {}
        metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
        write_json(target / "metrics.json", metrics)
        (target / "report.md").write_text(render_report(metrics, figure_files))
    say(f"Done in {metrics['wall_seconds']:.0f} s. Report: {Path(out) / 'report.md'}  metrics: "
        f"{Path(out) / 'metrics.json'}")
    return metrics


def _check_sizes(experiment: Experiment, folds: dict[str, FaceSet]) -> list[str]:
    """Refuse an image size EdgeFace cannot take; note one the starting model was not trained at."""
    notes = []
    for label, fs in folds.items():
        if fs.image_size % 16:
            raise ExperimentError(f"{experiment.describe()['data']['name']}: images of {fs.image_size} px; EdgeFace "
                                  "needs a side divisible by 16 (112 for the official weights). Rewrite the layout "
                                  "with --size 112.")
        if not isinstance(experiment.start, StandIn) and fs.image_size != INPUT_SIZE:
            notes.append(f"the images are {fs.image_size} px but {experiment.start.variant}'s official weights were "
                         f"trained at {INPUT_SIZE} px: its accuracy before adaptation is lower than on {INPUT_SIZE}-px "
                         f"faces (write the layout with --size {INPUT_SIZE} to compare with published figures).")
            break
    return notes

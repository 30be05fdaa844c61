"""An experiment with a pretrained starting model: data x starting model x runs x protocols.

The embedded default (:func:`hfr_tutorial.pipeline.run_pipeline`) trains its own RGB baseline on
synthetic faces.  This module runs the same method from a model **pretrained elsewhere** -- the
official EdgeFace weights (``--model edgeface_xxs``) or any EdgeFace checkpoint -- on any data:
a standard layout (``--data``, one protocol or a family of folds) or the embedded synthetic set.

* The official weights are the frozen teacher and the student's start; the report's "before" row
  is the unadapted model.  No baseline is trained.
* A model pretrained elsewhere needs a recipe of its own: the stand-in's large learning rates (4e-2,
  near the 3e-2 chosen for the network trained here from scratch) destroys a real EdgeFace's VIS accuracy.  Each
  run's learning rate is chosen **on dev identities** from :attr:`PretrainedRecipe.lr_grid` (or given
  with ``lr``); every candidate's dev figures are recorded in ``metrics.json``.  Eval is computed
  once, for the chosen model.
* Dev identities come from the protocol's ``dev`` split, or, where it has none (CASIA's View 2
  folds), a seeded :attr:`PretrainedRecipe.dev_fraction` of the training identities is held out
  (never trained on) and recorded.
* A guard refuses a model whose dev VIS verification AUC falls more than
  :attr:`PretrainedRecipe.max_dev_vis_auc_drop` below the unadapted model's: it is reported as
  refused (with the figures and the knob to turn), never written as a result.
* The protocols follow the data (:func:`hfr_tutorial.evaluate.available_protocols`): each non-VIS
  modality against VIS, VIS against VIS where identities have a second VIS image; gallery and
  probes follow the protocol CSV's ``role`` column.  A protocol family (``view2`` for
  ``view2_1 .. view2_10``) runs every fold and reports mean and standard deviation.
* Every adapted model is saved under ``<out>/checkpoints/`` with the official key names, so
  ``load_edgeface(variant, path)`` loads it anywhere.

Taught in ``notebooks/07_real_edgeface.ipynb``.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import PretrainedRecipe, Preset, get_device, get_preset
from .selection import selection_score

MEAN_STD_METRICS = ("rank1", "auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3")
"""Metrics of which a fold family reports mean and standard deviation."""


class ExperimentError(ValueError):
    """An experiment that cannot start (the message names the input, the problem and the fix)."""


# ------------------------------------------------------------------------------------------------
# The starting model
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartingModel:
    """A pretrained EdgeFace found on disk: its variant and its checkpoint file."""

    variant: str
    checkpoint: Path

    def load(self) -> Any:
        from .models import load_edgeface

        return load_edgeface(self.variant, self.checkpoint).eval()

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha256(self.checkpoint.read_bytes()).hexdigest()
        return {"variant": self.variant, "checkpoint": str(self.checkpoint), "sha256": digest}


def resolve_model(model: str, variant: str | None = None) -> StartingModel:
    """``--model``: a variant name (its official weights are looked for on disk) or a checkpoint path.

    Raises:
        ExperimentError: the variant's weights are not on disk (says where it looked and how to
            get them), the path does not exist, or the file fits no variant.
    """
    from .models import find_checkpoint, get_variant, list_variants, read_checkpoint, weights_hint
    from .models.edgeface import _guess_variant

    if model in list_variants():
        if variant is not None and variant != model:
            raise ExperimentError(f"--model {model} and --variant {variant} disagree; give one of them.")
        path = find_checkpoint(model)
        if path is None:
            raise ExperimentError(f"--model {model}: no weights of this variant on disk. {weights_hint(model)}")
        return StartingModel(model, path)
    path = Path(model).expanduser()
    if not path.exists():
        raise ExperimentError(f"--model {model!r} is neither a variant ({', '.join(list_variants())}) nor an existing "
                              f"checkpoint file. {weights_hint(variant or 'edgeface_xxs')}")
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.pt"))
        raise ExperimentError(f"--model {path} is a folder; give the checkpoint file itself"
                              + (f" (it holds {', '.join(found[:5])})." if found else " (it holds no .pt file)."))
    if variant is None:
        variant = _guess_variant(read_checkpoint(path))
        if variant is None:
            raise ExperimentError(f"--model {path}: its keys and shapes match no EdgeFace variant; pass --variant.")
    get_variant(variant)
    return StartingModel(variant, path)


# ------------------------------------------------------------------------------------------------
# The data
# ------------------------------------------------------------------------------------------------
def resolve_folds(root: str | Path, protocol: str | None) -> list[str | None]:
    """The protocols to run: ``[protocol]``, or every fold of a family (``view2`` -> ``view2_1 .. view2_10``)."""
    pdir = Path(root) / "protocols"
    if protocol is None or (pdir / f"{protocol}.csv").is_file():
        return [protocol]
    pattern = re.compile(rf"^{re.escape(protocol)}_(\d+)$")
    folds = sorted((p.stem for p in pdir.glob("*.csv") if pattern.match(p.stem)),
                   key=lambda s: int(pattern.match(s).group(1)))  # type: ignore[union-attr]
    if not folds:
        available = sorted(p.stem for p in pdir.glob("*.csv")) if pdir.is_dir() else []
        raise ExperimentError(f"--protocol {protocol}: neither {pdir / (protocol + '.csv')} nor folds "
                              f"{protocol}_1, {protocol}_2 ... exist. Available: {available or 'none'}.")
    return folds


def carve_dev(faceset: Any, fraction: float, seed: int) -> tuple[Any, list[str]]:
    """A copy whose ``fraction`` of training identities (seeded) is moved to ``dev``; their names.

    Used when a protocol has no dev split: those identities are never trained on, and recipe
    choices and the VIS guard read them instead of eval.
    """
    from .data import FaceSet

    train_ids = np.unique(faceset.identities[faceset.splits == "train"])
    n_dev = max(2, int(round(fraction * len(train_ids))))
    if len(train_ids) - n_dev < 2:
        raise ExperimentError(f"{faceset.name}: {len(train_ids)} training identities are too few to hold {n_dev} out "
                              "for dev; add identities or give the protocol a dev split.")
    rng = np.random.default_rng([int(seed), 0xDE5])
    dev_ids = np.sort(rng.choice(train_ids, size=n_dev, replace=False))
    splits = faceset.splits.copy()
    splits[np.isin(faceset.identities, dev_ids) & (splits == "train")] = "dev"
    carved = FaceSet(faceset.images, faceset.identities, faceset.modalities, splits=splits, paths=faceset.paths,
                     identity_names=faceset.identity_names, name=faceset.name, landmarks=faceset.landmarks,
                     roles=faceset.roles, meta=faceset.meta)
    return carved, [str(faceset.identity_names[i]) for i in dev_ids]


def check_faceset(faceset: Any, where: str) -> list[str]:
    """Refuse, before any training, a set the method cannot run on; returns its eval protocols."""
    from .evaluate import available_protocols
    from .data.faceset import cross_modalities

    problems = []
    for split in ("train", "eval"):
        if not np.any(faceset.splits == split):
            problems.append(f"no images in split {split!r}")
    train = faceset.select(split="train")
    if len(train) and (not np.any(train.modalities == "vis") or not cross_modalities(train.modalities)):
        problems.append(f"its train split holds modalities {sorted(set(train.modalities))}: the method pairs VIS with "
                        "another modality of the same identities, so it needs both")
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
# Evaluation
# ------------------------------------------------------------------------------------------------
def protocol_figures(embeddings: np.ndarray, faceset: Any, protocols: Sequence[str],
                     dev_scores: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Rank-1/5, AUC, EER, TAR at FAR 1e-2 and 1e-3 per protocol; with dev scores, dev-threshold figures too.

    ``dev_thr_far_1e-3`` (and ``1e-2``): the threshold chosen on dev at that FAR and the FAR and
    TAR it actually gives on this set (the deployable operating point).
    """
    from .evaluate import apply_threshold, protocol_metrics, score_protocols, threshold_at_far

    scored = score_protocols(embeddings, faceset.identities, faceset.modalities, protocols, faceset.roles)
    out = {}
    for name, ps in scored.items():
        m = protocol_metrics(ps)
        row = {k: m[k] for k in ("rank1", "rank5", "auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3",
                                 "n_probes", "n_gallery")}
        if dev_scores and name in dev_scores:
            dps = dev_scores[name]
            for far, key in ((1e-2, "1e-2"), (1e-3, "1e-3")):
                thr = threshold_at_far(dps.scores, dps.same, far)
                row[f"dev_thr_far_{key}"] = apply_threshold(ps.scores, ps.same, thr)
        out[name] = row
    return out


def dev_summary(embeddings: np.ndarray, dev: Any) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Rank-1 and AUC per protocol of ``dev`` (``{"nir->vis": {"rank1": .., "auc": ..}}``) and the scored protocols."""
    from .evaluate import available_protocols, protocol_metrics, score_protocols

    protocols = available_protocols(dev.identities, dev.modalities, dev.roles)
    scored = score_protocols(embeddings, dev.identities, dev.modalities, protocols, dev.roles)
    figures = {n: {"rank1": protocol_metrics(ps)["rank1"], "auc": protocol_metrics(ps)["auc"]}
               for n, ps in scored.items()}
    return figures, scored


# ------------------------------------------------------------------------------------------------
# The experiment
# ------------------------------------------------------------------------------------------------
def pretrained_train_config(preset: Preset, recipe: PretrainedRecipe, lr: float, n_ids: int,
                            num_workers: int | None = None) -> Any:
    """The preset's ``TrainConfig`` with the pretrained recipe applied: its epochs, ``lr``, lambda, pairs,
    loss, and a batch of ``min(recipe.batch_size, n_ids)`` identities (a batch holds distinct identities)."""
    batch = min(recipe.batch_size, n_ids)
    changes: dict[str, Any] = dict(batch_size=batch, adapt_epochs=recipe.epochs, adapt_lr=lr,
                                   distill_weight=recipe.distill_weight,
                                   adapt_pairs_per_identity=recipe.pairs_per_identity, contrastive=recipe.contrastive)
    if num_workers is not None:
        changes["num_workers"] = num_workers
    return replace(preset.train, **changes)


def adapt_choosing_lr(name: str, teacher: Any, faceset: Any, dev: Any, preset: Preset, recipe: PretrainedRecipe,
                      lrs: Sequence[float], dev_before: dict[str, dict[str, float]], *, seed: int, device: Any,
                      bf16: bool = False, num_workers: int | None = None, progress: bool = False,
                      say: Any = lambda *a, **k: None) -> dict[str, Any]:
    """Train the comparison run ``name`` from ``teacher`` on ``faceset``'s train split at each rate of ``lrs``;
    keep the best on ``dev`` that passes the VIS guard.

    ``dev_before``: the unadapted model's dev figures (``{"vis->vis": {"auc": ...}}``), the guard's
    reference.  Returns the record ``metrics.json`` holds per run: ``status`` ``"ok"`` with ``lr``,
    ``candidates``, ``result`` (the chosen :class:`~hfr_tutorial.train.TrainResult`) and ``config``, or
    ``"refused"`` with the ``reason`` when every rate lost too much dev VIS AUC.
    """
    from .artifacts import COMPARISON_RUNS
    from .evaluate import embed
    from .train import adapt_cross_spectral

    settings = COMPARISON_RUNS[name]
    train = faceset.select(split="train")
    n_ids = len(np.unique(train.identities))
    base_vis = dev_before.get("vis->vis", {}).get("auc")
    candidates = []
    best = None
    for lr in lrs:
        config = pretrained_train_config(preset, recipe, lr, n_ids, num_workers)
        result = adapt_cross_spectral(teacher, train, config, replace(settings, lr=None, epochs=None), dev_set=dev,
                                      seed=seed, device=device, progress=progress, bf16=bf16)
        model = result.model.to(device)
        emb = embed(model, dev, batch_size=preset.eval_batch_size, progress=False)
        figures, scored = dev_summary(emb, dev)
        vis_auc = figures.get("vis->vis", {}).get("auc")
        drop = None if base_vis is None or vis_auc is None else base_vis - vis_auc
        refused = drop is not None and drop > recipe.max_dev_vis_auc_drop
        cand = {"lr": lr, "dev": figures, "dev_score": selection_score(figures), "dev_vis_auc_drop": drop,
                "refused_by_guard": refused, "seconds": round(result.seconds, 1)}
        candidates.append(cand)
        say(f"      {name} lr {lr:g}: dev " + ", ".join(f"{p} rank-1 {v['rank1']:.3f} AUC {v['auc']:.3f}"
                                                       for p, v in figures.items())
            + (f"  REFUSED (dev VIS AUC -{drop:.3f})" if refused else ""))
        if not refused and (best is None or cand["dev_score"] > best[0]["dev_score"]):
            best = (cand, result, scored, config)
    record: dict[str, Any] = {"settings": asdict(settings), "candidates": candidates,
                              "selection": ("learning rate chosen on dev identities: highest mean dev rank-1 over "
                                            "every protocol (VIS included), ties by mean AUC")
                              if len(lrs) > 1 else "learning rate given (no sweep)"}
    if best is None:
        worst = max(c["dev_vis_auc_drop"] or 0 for c in candidates)
        record["status"] = "refused"
        record["reason"] = (f"dev VIS AUC fell by up to {worst:.3f} (more than the guard's "
                            f"{recipe.max_dev_vis_auc_drop}) below the unadapted model's {base_vis:.3f} at every "
                            f"learning rate tried ({', '.join(f'{lr:g}' for lr in lrs)}): the model was not kept. "
                            "Lower the learning rate (--lr), or raise lambda (PretrainedRecipe.distill_weight).")
        return record
    cand, result, _, config = best
    record.update(status="ok", lr=cand["lr"], result=result, config=config,
                  trainable_params=result.policy.trainable, total_params=result.policy.total,
                  train_seconds=round(sum(c["seconds"] for c in candidates), 1))
    return record


def run_experiment(*, data: str | Path | None = None, protocol: str | None = None, model: str = "edgeface_xxs",
                   variant: str | None = None, runs: Sequence[str] | None = None,
                   preset: str | Preset | None = None, out: str | Path = "runs/real", seed: int = 0,
                   device: str | None = None, epochs: int | None = None, batch_size: int | None = None,
                   lr: float | None = None, num_workers: int | None = None, bf16: bool = False,
                   progress: bool = True, figures: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Adapt a pretrained EdgeFace on ``data`` and evaluate every run on every protocol the data supports.

    Args:
        data: a standard layout (``None``: the embedded synthetic data of ``preset``).
        protocol: a protocol of the layout, or a family name whose folds ``<name>_1 ..`` all run.
        model: a variant name (its official weights, found by ``find_checkpoint``) or a checkpoint path.
        variant: the variant of a checkpoint path (guessed from its keys when omitted).
        runs: comparison runs (default: every one of :data:`~hfr_tutorial.artifacts.COMPARISON_RUNS`);
            ``joint/oracle`` trains from scratch and runs only when named.
        lr: a fixed learning rate (default: chosen on dev from ``preset.pretrained.lr_grid``).
        epochs, batch_size, num_workers: override the preset's pretrained recipe.
        device: ``auto`` / ``None`` (CUDA when present), ``cpu``, ``cuda``, ``mps``.
        bf16: bfloat16 autocast for the student's forward pass (CUDA).
        overwrite: replace the results of another experiment left in ``out`` (refused otherwise).
    Returns:
        The dictionary written to ``<out>/metrics.json``.
    """
    from .artifacts import COMPARISON_RUNS, ORACLE_RUN
    from .data import FaceSet
    from .evaluate import embed
    from .pipeline import OutputError, check_out_dir, previous_results, write_json

    preset = get_preset(preset)
    recipe = preset.pretrained
    if epochs is not None or batch_size is not None:
        recipe = replace(recipe, **({"epochs": epochs} if epochs is not None else {}),
                         **({"batch_size": batch_size} if batch_size is not None else {}))
    runs = list(runs) if runs is not None else list(COMPARISON_RUNS)
    unknown = [r for r in runs if r not in COMPARISON_RUNS and r != ORACLE_RUN]
    if unknown or not runs:
        raise ExperimentError(f"--runs {runs}: choose one or more of {[*COMPARISON_RUNS, ORACLE_RUN]}.")
    if lr is not None and not (np.isfinite(lr) and lr > 0):
        raise ExperimentError(f"--lr {lr}: a learning rate must be a finite number > 0.")
    out = Path(out)
    torch_device = resolve_device(device)
    start = resolve_model(model, variant)
    teacher = start.load()  # a file of another variant is refused here, before the data is read
    check_out_dir(out)
    earlier = None if overwrite else previous_results(out)
    if earlier is not None:
        same = (earlier.get("kind") == "pretrained" and earlier.get("starting_model", {}).get("checkpoint") == str(start.checkpoint)
                and earlier.get("data", {}).get("root") == (str(Path(data).resolve()) if data is not None else None)
                and earlier.get("data", {}).get("protocol") == protocol)
        dropped = [r for r in earlier.get("runs_requested", earlier.get("runs", [])) if r not in runs]
        if not same or dropped:
            raise OutputError(f"--out {out} holds the results of an earlier experiment"
                              + (f" (runs {dropped} would be dropped)" if dropped else " with other data or model")
                              + ". Pass --overwrite to replace them, or choose another --out.")
    say = print if progress else (lambda *a, **k: None)
    t0 = time.perf_counter()

    if data is not None:
        from .data.layout import read_dataset_json

        info = read_dataset_json(data)
        folds = resolve_folds(data, protocol)
        sets = {fold: FaceSet.from_layout(data, protocol=fold) for fold in folds}
        source = {"kind": "layout", "root": str(Path(data).resolve()), "name": info["name"],
                  "protocol": protocol, "folds": [f for f in folds if f],
                  "simulated_modalities": info.get("simulated_modalities") or [],
                  "alignment": info.get("alignment"), "source": info.get("source")}
    else:
        if protocol is not None:
            raise ExperimentError("--protocol needs --data: the embedded synthetic data has one fixed protocol.")
        from .artifacts import load_faceset

        sets = {None: load_faceset(preset, seed, progress)}
        source = {"kind": "embedded", "name": f"synthetic-{preset.name}", "folds": [],
                  "simulated_modalities": ["nir", "thermal"]}
    protocols_of = {fold: check_faceset(fs, f"{data or 'embedded data'}, protocol {fold or 'default'}")
                    for fold, fs in sets.items()}
    for fold, fs in sets.items():  # the model's input size must be the data's
        if fs.image_size % 16:
            raise ExperimentError(f"{data}: images of {fs.image_size} px; EdgeFace needs a side divisible by 16 "
                                  "(112 for the official weights). Rewrite the layout with --size 112.")

    say(f"[1/3] starting model: {start.variant} from {start.checkpoint}; data: {source['name']}"
        + (f", {len(sets)} fold(s)" if len(sets) > 1 else "") + f"; device {torch_device}")
    lrs = [lr] if lr is not None else list(recipe.lr_grid)
    metrics: dict[str, Any] = {
        "kind": "pretrained", "preset": preset.name, "seed": seed, "data": source,
        "starting_model": start.describe(), "device": str(torch_device),
        "recipe": {**asdict(recipe), "lr_candidates": lrs, "chosen_on": "dev identities"},
        "runs_requested": runs, "folds": {}, "notes": []}
    if ORACLE_RUN in runs:
        metrics["notes"].append("joint/oracle trains a network from scratch on every modality (the preset's "
                                "TrainConfig), not from the pretrained weights.")
    checkpoints = out / "checkpoints"
    plot_data: dict[str, Any] = {}
    for fold, faceset in sets.items():
        label = fold or "default"
        say(f"[2/3] protocol {label}: "
            + ", ".join(f"{s} {len(np.unique(faceset.identities[faceset.splits == s]))} identities"
                        for s in ("train", "dev", "eval")))
        carved: list[str] = []
        if not np.any(faceset.splits == "dev"):
            faceset, carved = carve_dev(faceset, recipe.dev_fraction, seed)
            say(f"      no dev split: {len(carved)} training identities held out as dev (never trained on)")
        dev, evalset = faceset.select(split="dev"), faceset.select(split="eval")
        eval_protocols = protocols_of[fold]
        teacher_dev = embed(teacher.to(torch_device), dev, batch_size=preset.eval_batch_size, progress=False)
        dev_before, dev_scored = dev_summary(teacher_dev, dev)
        emb_before = embed(teacher, evalset, batch_size=preset.eval_batch_size, progress=progress)
        fold_rec: dict[str, Any] = {
            "protocols": eval_protocols, "dev_identities_held_out": carved,
            "identities": {s: int(len(np.unique(faceset.identities[faceset.splits == s])))
                           for s in ("train", "dev", "eval")},
            "before": {"name": f"{start.variant} (unadapted)", "dev": dev_before,
                       "protocols": protocol_figures(emb_before, evalset, eval_protocols, dev_scored)},
            "runs": {}}
        say("      before (unadapted): " + _rank1_line(fold_rec["before"]["protocols"]))
        embeddings = {"before": emb_before}
        for name in runs:
            if name == ORACLE_RUN:
                rec = _oracle(faceset, preset, seed, torch_device, progress)
            else:
                rec = adapt_choosing_lr(name, teacher, faceset, dev, preset, recipe, lrs, dev_before, seed=seed,
                                        device=torch_device, bf16=bf16, num_workers=num_workers, progress=progress, say=say)
            if rec.get("status") != "ok":
                say(f"      {name}: {rec['reason']}")
                fold_rec["runs"][name] = rec
                continue
            result = rec.pop("result")
            rec.pop("config", None)
            emb = embed(result.model.to(torch_device), evalset, batch_size=preset.eval_batch_size, progress=False)
            rec["protocols"] = protocol_figures(emb, evalset, eval_protocols, dev_scored)
            path = checkpoints / (f"{label}/" if len(sets) > 1 else "") / (name.replace("/", "-").replace("+", "_") + ".pt")
            path.parent.mkdir(parents=True, exist_ok=True)
            _save_checkpoint(result.model, path)
            rec["checkpoint"] = str(path)
            rec["history"] = result.history.to_dict(orient="records")
            fold_rec["runs"][name] = rec
            embeddings[name] = emb
            say(f"      {name} (lr {rec['lr']:g}): " + _rank1_line(rec["protocols"]))
        metrics["folds"][label] = fold_rec
        if not plot_data:
            plot_data = {"embeddings": embeddings, "evalset": evalset, "protocols": eval_protocols}
    metrics["summary"] = summarize_folds(metrics["folds"])
    metrics["environment"] = _environment()
    say("[3/3] report")
    metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out / "metrics.json", metrics)
    figure_files = write_figures(out / "figures", metrics, plot_data) if figures and plot_data else {}
    metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out / "metrics.json", metrics)
    (out / "report.md").write_text(render_report(metrics, figure_files))
    say(f"Done in {metrics['wall_seconds']:.0f} s. Report: {out / 'report.md'}  metrics: {out / 'metrics.json'}")
    return metrics


def resolve_device(device: str | None) -> Any:
    """``auto``/None: CUDA when present, else CPU; a named device must exist (clear error otherwise)."""
    import torch

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


def _oracle(faceset: Any, preset: Preset, seed: int, device: Any, progress: bool) -> dict[str, Any]:
    from .data.faceset import cross_modalities
    from .train import train_recognizer

    train = faceset.select(split="train")
    mods = ("vis", *cross_modalities(train.modalities))
    result = train_recognizer(train, preset.train, epochs=preset.train.oracle_epochs, modalities=mods,
                              augment=preset.train.oracle_augment, dev_set=None, seed=seed, device=device,
                              progress=progress)
    n = sum(p.numel() for p in result.model.parameters())
    return {"status": "ok", "result": result, "lr": preset.train.baseline_lr, "trainable_params": n,
            "total_params": n, "train_seconds": round(result.seconds, 1),
            "selection": "trained from scratch with the preset's TrainConfig (not from the pretrained weights)"}


def _save_checkpoint(model: Any, path: Path) -> None:
    """The adapted weights with the official key names (``model.*``), written atomically."""
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    tmp.replace(path)


def _rank1_line(protocols: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{p} rank-1 {v['rank1']:.3f}" for p, v in protocols.items())


def summarize_folds(folds: dict[str, Any]) -> dict[str, Any]:
    """Mean and standard deviation (ddof 1; 0 for one fold) over folds of each run's metrics, and the changes."""
    names = ["before"] + sorted({n for f in folds.values() for n, r in f["runs"].items() if r.get("status") == "ok"})
    out: dict[str, Any] = {"n_folds": len(folds), "runs": {}}
    for name in names:
        per_protocol: dict[str, dict[str, dict[str, float]]] = {}
        for f in folds.values():
            rec = f["before"] if name == "before" else f["runs"].get(name, {})
            for p, m in rec.get("protocols", {}).items():
                for k in MEAN_STD_METRICS:
                    per_protocol.setdefault(p, {}).setdefault(k, []).append(m[k])  # type: ignore[arg-type]
        out["runs"][name] = {p: {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                                     "n": len(v)} for k, v in ms.items()} for p, ms in per_protocol.items()}
    before = out["runs"]["before"]
    out["change_vs_before"] = {
        name: {p: {k: r[p][k]["mean"] - before[p][k]["mean"] for k in ("rank1", "auc", "eer")} for p in r if p in before}
        for name, r in out["runs"].items() if name != "before"}
    return out


def _environment() -> dict[str, Any]:
    import platform

    import timm
    import torch

    return {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
            "timm": timm.__version__, "numpy": np.__version__}


def write_figures(folder: Path, metrics: dict[str, Any], plot_data: dict[str, Any]) -> dict[str, str]:
    """Rank-1 per run and protocol, and ROC curves before / after the method (first fold)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from . import plots
    from .artifacts import METHOD_RUN
    from .evaluate import metrics_table, score_protocols

    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    fold = next(iter(metrics["folds"].values()))
    results = {"before (unadapted)": fold["before"]["protocols"],
               **{n: r["protocols"] for n, r in fold["runs"].items() if r.get("status") == "ok"}}
    fig = plots.plot_metric_bars(metrics_table(results), "rank1")
    fig.savefig(folder / "rank1_by_run.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    files["Rank-1 by run and protocol"] = "figures/rank1_by_run.png"
    evalset, embs = plot_data["evalset"], plot_data["embeddings"]
    after = next((n for n in (METHOD_RUN, *embs) if n in embs and n != "before"), None)
    curves = {"before (unadapted)": score_protocols(embs["before"], evalset.identities, evalset.modalities,
                                                    plot_data["protocols"], evalset.roles)}
    if after:
        curves[f"after: {after}"] = score_protocols(embs[after], evalset.identities, evalset.modalities,
                                                    plot_data["protocols"], evalset.roles)
    fig = plots.plot_roc(curves)
    fig.savefig(folder / "roc.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    files["ROC before and after adaptation"] = "figures/roc.png"
    return files


def _cell(stat: dict[str, float], folds: int) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}" if folds > 1 else f"{stat['mean']:.3f}"


def render_report(metrics: dict[str, Any], figure_files: dict[str, str]) -> str:
    """The Markdown report: where data and model came from, the recipe, the table, the guard, the figures."""
    d, m, s = metrics["data"], metrics["starting_model"], metrics["summary"]
    n = s["n_folds"]
    lines = [f"# hfr-tutorial report: {m['variant']} adapted on {d['name']}", ""]
    lines += ["## What ran", "",
              f"- **Data**: " + (f"layout at `{d['root']}`, protocol `{d['protocol'] or 'default'}`" if
                                           d["kind"] == "layout" else "the embedded synthetic faces of the preset")
              + (f", {n} folds ({', '.join(d['folds'])}); figures are mean ± std over folds" if n > 1 else "") + ".",
              f"- **Simulated modalities**: {', '.join(d['simulated_modalities']) or 'none'}"
              + (" (made from VIS photos by `hfr_tutorial.data.spectral`: they show a shift of low-level appearance, "
                 "not a real sensor)" if d["simulated_modalities"] else "") + ".",
              f"- **Starting model** (teacher and the student's start; the 'before' row): `{m['variant']}` from "
              f"`{m['checkpoint']}` (sha256 {m['sha256'][:12]}).",
              f"- **Recipe** (preset `{metrics['preset']}`, pretrained): {metrics['recipe']['epochs']} epochs, "
              f"batch of up to {metrics['recipe']['batch_size']} identities, {metrics['recipe']['pairs_per_identity']} "
              f"pairs per identity and epoch, lambda {metrics['recipe']['distill_weight']}, "
              f"{metrics['recipe']['contrastive']} loss; learning rate from "
              f"{', '.join(f'{x:g}' for x in metrics['recipe']['lr_candidates'])}, chosen on dev identities.",
              f"- **Device**: {metrics['device']}; wall time {metrics['wall_seconds']:.0f} s.", ""]
    lines += ["## Results on eval identities (never trained on, never used for a choice)", "",
              "| run | trainable | protocol | rank-1 | AUC | EER | TAR@FAR=1e-2 | TAR@FAR=1e-3 (VR@0.1%) |",
              "|---|---:|---|---:|---:|---:|---:|---:|"]
    first = next(iter(metrics["folds"].values()))
    for name, r in s["runs"].items():
        rec = first["before"] if name == "before" else first["runs"][name]
        pct = "0 (frozen)" if name == "before" else f"{rec['trainable_params']:,} ({100 * rec['trainable_params'] / rec['total_params']:.2f} %)"
        shown = "before: unadapted" if name == "before" else name
        for p, st in r.items():
            lines.append(f"| {shown} | {pct} | {p} | " + " | ".join(_cell(st[k], n) for k in MEAN_STD_METRICS) + " |")
    lines += ["", "## Choices made on dev", ""]
    for label, f in metrics["folds"].items():
        held = f["dev_identities_held_out"]
        lines.append(f"- protocol `{label}`: identities train {f['identities']['train']}, dev {f['identities']['dev']}"
                     + (" (held out from train)" if held else "") + f", eval {f['identities']['eval']}.")
        for name, r in f["runs"].items():
            if r.get("status") != "ok":
                lines.append(f"  - `{name}`: **refused by the VIS guard**: {r['reason']}")
                continue
            tried = "; ".join(f"lr {c['lr']:g}: dev score {c['dev_score'][0]:.3f}/{c['dev_score'][1]:.3f}"
                              + (" (refused)" if c["refused_by_guard"] else "") for c in r.get("candidates", []))
            lines.append(f"  - `{name}`: lr {r['lr']:g} ({tried or r['selection']}); checkpoint `{r['checkpoint']}`.")
        if n > 3:
            lines.append("  - (further folds in metrics.json)")
            break
    if s["change_vs_before"]:
        lines += ["", "## Change against the unadapted model (rank-1, mean over folds)", ""]
        for name, ch in s["change_vs_before"].items():
            lines.append(f"- `{name}`: " + ", ".join(f"{p} {v['rank1']:+.3f}" for p, v in ch.items()))
    for note in metrics["notes"]:
        lines.append(f"- note: {note}")
    lines += ["", "## Figures", ""]
    for title, path in figure_files.items():
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    return "\n".join(lines)

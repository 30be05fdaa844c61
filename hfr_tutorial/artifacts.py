"""Load from the cache if present, else build: datasets and trained models.

Every expensive step of the tutorial (generating the synthetic data, training the RGB baseline,
the joint oracle and each adaptation run) is an *artifact* stored under
``$HFR_CACHE/<preset>/<kind>-<key>/``.  The key is a digest of everything that determines the
result: the preset's data and training settings, the run's settings, the seed, the key of the
model it starts from, and :data:`CACHE_VERSION`.  So

* any notebook runs on its own (what it needs is built if missing), a second run is fast, and
  the ``run`` command and the notebooks share what they built;
* an entry written by another configuration is simply another key, never used by mistake;
* an entry that is corrupt (unreadable files, weights that do not fit, a record whose key does
  not match) is rebuilt, with a warning, never silently used.

Training writes its per-epoch checkpoints inside the entry, so an interrupted build resumes.

Taught in: every notebook's setup cell; ``notebooks/05_full_training.ipynb`` explains it.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from .config import Preset, cache_dir, get_preset
from .models.edgeface import EdgeFace, create_edgeface
from .train import AdaptSettings, TrainResult, adapt_cross_spectral, train_recognizer

CACHE_VERSION = 1
"""Bump when a change of code makes old cache entries wrong."""


@dataclass
class Artifact:
    """A trained model loaded from (or just written to) the cache, with its record."""

    name: str
    model: EdgeFace
    history: pd.DataFrame
    seconds: float
    key: str
    path: Path
    meta: dict[str, Any]
    from_cache: bool

    @property
    def trainable_params(self) -> int:
        return int(self.meta.get("trainable_params", sum(p.numel() for p in self.model.parameters())))

    @property
    def total_params(self) -> int:
        return int(self.meta.get("total_params", sum(p.numel() for p in self.model.parameters())))


def _digest(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _generator_version() -> str:
    """A digest of the generator's source: editing the generator invalidates cached data and models."""
    from .data import synthetic

    return hashlib.sha1(Path(synthetic.__file__).read_bytes()).hexdigest()[:12]


def _entry_dir(preset: Preset, kind: str, key: str) -> Path:
    return cache_dir() / preset.name / f"{kind}-{key}"


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
def data_payload(preset: Preset, seed: int) -> dict[str, Any]:
    return {"kind": "data", "data": asdict(preset.data), "seed": seed, "generator": _generator_version(),
            "cache_version": CACHE_VERSION}


def load_faceset(preset: str | Preset | None = None, seed: int = 0, progress: bool = True) -> Any:
    """The embedded synthetic cross-spectral FaceSet of a preset, from the cache or generated.

    The images are stored as a ``.npy`` file and memory-mapped when read back, so a large preset
    does not need to fit in memory twice.
    """
    from .data import FaceSet, synthetic_faceset

    preset = get_preset(preset)
    payload = data_payload(preset, seed)
    key = _digest(payload)
    entry = _entry_dir(preset, "data", key)
    arrays = ("images", "identities", "modalities", "splits")  # plus identity_names (and landmarks)
    if (entry / "meta.json").is_file():
        try:
            meta = json.loads((entry / "meta.json").read_text())
            if meta.get("payload") != json.loads(json.dumps(payload, default=str)):
                raise ValueError("record does not match its key")
            loaded = {name: np.load(entry / f"{name}.npy", mmap_mode="r" if name == "images" else None,
                                    allow_pickle=False) for name in arrays}
            if len({len(v) for v in loaded.values()}) != 1 or loaded["images"].dtype != np.uint8:
                raise ValueError("arrays of different lengths or wrong dtype")
            names = np.load(entry / "identity_names.npy", allow_pickle=False)
            landmarks = np.load(entry / "landmarks.npy") if (entry / "landmarks.npy").is_file() else None
            return FaceSet(images=loaded["images"], identities=loaded["identities"],
                           modalities=loaded["modalities"].astype(str), splits=loaded["splits"].astype(str),
                           identity_names=names.astype(str), landmarks=landmarks,
                           name=meta.get("name", f"synthetic-{preset.name}"), meta=meta.get("faceset_meta", {}))
        except Exception as exc:  # corrupt or stale: rebuild
            warnings.warn(f"Cache entry {entry} is unusable ({exc}); rebuilding it.")
            shutil.rmtree(entry, ignore_errors=True)
    faceset = synthetic_faceset(preset, seed=seed, progress=progress)
    tmp = entry.with_name(entry.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "images.npy", np.ascontiguousarray(faceset.images))
    np.save(tmp / "identities.npy", np.asarray(faceset.identities, dtype=np.int64))
    np.save(tmp / "modalities.npy", np.asarray(faceset.modalities).astype("U16"))
    np.save(tmp / "splits.npy", np.asarray(faceset.splits).astype("U16"))
    np.save(tmp / "identity_names.npy", np.asarray(faceset.identity_names).astype(str))
    if faceset.landmarks is not None:
        np.save(tmp / "landmarks.npy", np.asarray(faceset.landmarks, dtype=np.float32))
    (tmp / "meta.json").write_text(json.dumps({"payload": payload, "name": faceset.name,
                                               "faceset_meta": json.loads(json.dumps(faceset.meta, default=str))},
                                              indent=1, default=str))
    shutil.rmtree(entry, ignore_errors=True)
    tmp.rename(entry)
    return faceset


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
def _load_model_entry(entry: Path, payload: dict[str, Any], variant: str, name: str, key: str) -> Artifact | None:
    if not (entry / "meta.json").is_file():
        return None
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if meta.get("payload") != json.loads(json.dumps(payload, default=str)):
            raise ValueError("its record does not match its key (written by another configuration)")
        model = create_edgeface(variant, seed=None)
        model.load_state_dict(torch.load(entry / "model.pt", map_location="cpu", weights_only=True), strict=True)
        history = pd.DataFrame(meta.get("history", []))
        return Artifact(name, model.eval(), history, float(meta["seconds"]), key, entry, meta, from_cache=True)
    except Exception as exc:
        warnings.warn(f"Cache entry {entry} is unusable ({type(exc).__name__}: {exc}); rebuilding it.")
        for child in ("model.pt", "meta.json"):
            (entry / child).unlink(missing_ok=True)
        return None


def _build_model_entry(entry: Path, payload: dict[str, Any], name: str, key: str,
                       build: Callable[[Path], TrainResult]) -> Artifact:
    entry.mkdir(parents=True, exist_ok=True)
    result = build(entry / "checkpoints")
    torch.save(result.model.state_dict(), entry / "model.pt.tmp")
    (entry / "model.pt.tmp").replace(entry / "model.pt")
    meta = {"payload": payload, "name": name, "seconds": round(result.seconds, 2),
            "history": result.history.to_dict(orient="records"), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    if result.policy is not None:
        meta.update(trainable_params=result.policy.trainable, total_params=result.policy.total)
    else:
        n = sum(p.numel() for p in result.model.parameters())
        meta.update(trainable_params=n, total_params=n)
    (entry / "meta.json.tmp").write_text(json.dumps(meta, indent=1, default=str))
    (entry / "meta.json.tmp").replace(entry / "meta.json")
    shutil.rmtree(entry / "checkpoints", ignore_errors=True)
    return Artifact(name, result.model.eval(), result.history, result.seconds, key, entry, meta, from_cache=False)


def _model_artifact(preset: Preset, kind: str, name: str, payload: dict[str, Any],
                    build: Callable[[Path], TrainResult], rebuild: bool) -> Artifact:
    key = _digest(payload)
    entry = _entry_dir(preset, kind, key)
    if rebuild:
        shutil.rmtree(entry, ignore_errors=True)
    found = _load_model_entry(entry, payload, preset.train.variant, name, key)
    return found if found is not None else _build_model_entry(entry, payload, name, key, build)


def recognizer_payload(preset: Preset, seed: int, modalities: tuple[str, ...], epochs: int) -> dict[str, Any]:
    return {"kind": "recognizer", "data": data_payload(preset, seed), "train": asdict(preset.train),
            "modalities": list(modalities), "epochs": epochs, "seed": seed, "cache_version": CACHE_VERSION}


def load_baseline(preset: str | Preset | None = None, seed: int = 0, progress: bool = True,
                  rebuild: bool = False) -> Artifact:
    """The RGB baseline (EdgeFace trained on VIS images of the training identities), cached."""
    preset = get_preset(preset)
    epochs = preset.train.baseline_epochs
    payload = recognizer_payload(preset, seed, ("vis",), epochs)

    def build(checkpoints: Path) -> TrainResult:
        faceset = load_faceset(preset, seed, progress)
        return train_recognizer(faceset.select(split="train"), preset.train, epochs=epochs, modalities=("vis",),
                                dev_set=faceset.select(split="dev"), seed=seed, checkpoint_dir=checkpoints,
                                progress=progress)

    return _model_artifact(preset, "baseline", "baseline", payload, build, rebuild)


def load_oracle(preset: str | Preset | None = None, seed: int = 0, progress: bool = True,
                rebuild: bool = False) -> Artifact:
    """The joint oracle: the same network trained from scratch on all modalities, cached.

    It trains ``TrainConfig.oracle_epochs`` epochs over every modality (on the fast preset 1.5x
    the baseline's optimisation steps: learning to recognise and to align three sensors from scratch
    is slow), without augmentation (``TrainConfig.oracle_augment``).  It needs paired data for every
    identity from the start and more compute than the method: a reference, not a ceiling.
    """
    preset = get_preset(preset)
    modalities = tuple(preset.data.modalities)
    epochs = preset.train.oracle_epochs
    payload = recognizer_payload(preset, seed, modalities, epochs)

    def build(checkpoints: Path) -> TrainResult:
        faceset = load_faceset(preset, seed, progress)
        return train_recognizer(faceset.select(split="train"), preset.train, epochs=epochs, modalities=modalities,
                                augment=preset.train.oracle_augment, dev_set=faceset.select(split="dev"), seed=seed,
                                checkpoint_dir=checkpoints, progress=progress)

    return _model_artifact(preset, "oracle", "joint/oracle", payload, build, rebuild)


def load_adapted(settings: AdaptSettings = AdaptSettings(), preset: str | Preset | None = None, seed: int = 0,
                 progress: bool = True, rebuild: bool = False) -> Artifact:
    """An adaptation run of the baseline (the method or a variant of it), cached."""
    preset = get_preset(preset)
    baseline = load_baseline(preset, seed, progress)
    payload = {"kind": "adapt", "baseline": baseline.key, "train": asdict(preset.train),
               "settings": asdict(settings.resolved(preset.train)), "seed": seed, "cache_version": CACHE_VERSION}

    def build(checkpoints: Path) -> TrainResult:
        faceset = load_faceset(preset, seed, progress)
        return adapt_cross_spectral(baseline.model, faceset.select(split="train"), preset.train, settings,
                                    dev_set=faceset.select(split="dev"), seed=seed, checkpoint_dir=checkpoints,
                                    progress=progress)

    kind = "adapt-" + settings.name.replace("/", "-").replace("+", "_")
    return _model_artifact(preset, kind, settings.name, payload, build, rebuild)


# The comparison runs of the tutorial (names are public: metrics.json, notebooks, README).
COMPARISON_RUNS: dict[str, AdaptSettings] = {
    "paper/contrastive+distill": AdaptSettings(policy="paper"),
    "paper/contrastive": AdaptSettings(policy="paper", distill_weight=0.0),
    "layernorm/contrastive+distill": AdaptSettings(policy="layernorm"),
    "full/contrastive+distill": AdaptSettings(policy="full", lr=1e-3),
}
ORACLE_RUN = "joint/oracle"

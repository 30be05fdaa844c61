"""Load from the cache if present, else build: the datasets and the trained models.

Every expensive step of the tutorial (generating the synthetic data, training the RGB baseline,
the joint oracle and each adaptation run, from the stand-in or from an official checkpoint) is an
*artifact* stored in a cache entry (:mod:`hfr_tutorial.cache`: keys, digests, locks).  Its key is
a digest of everything that determines the result:

* data: the preset's sizes, the generator's settings and :data:`~hfr_tutorial.data.synthetic.GENERATOR_VERSION`
  (embedded data), or the content digest of a layout's FaceSet (:func:`faceset_digest`);
* a recogniser (baseline, oracle): its data, the TrainConfig fields it reads
  (:data:`RECOGNIZER_FIELDS`), its modalities, epochs and augmentation, the seed;
* an adaptation: the key of its starting model (the baseline's key, or the sha256 of an official
  checkpoint), the key of its data, the TrainConfig fields it reads (:data:`ADAPT_FIELDS`), its
  resolved :class:`~hfr_tutorial.train.AdaptSettings` (policy, losses, lambda, epochs, rate), the seed;

so any notebook runs on its own, a second run is fast, the ``run`` command, the notebooks and the
benchmarks share what they built, and an entry written by another configuration is another key.
An entry that is corrupt or changed after it was written is rebuilt, with a warning, never used.
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
from torch import nn

from .cache import (CACHE_VERSION, canonical, check_digests, digests, entry_dir, entry_lock,
                    payload_key, read_only_error, write_json_atomic)
from .config import Preset, TrainConfig, get_preset
from .data import FaceSet, SyntheticConfig, synthetic_faceset
from .data.synthetic import GENERATOR_VERSION
from .models.edgeface import EdgeFace, create_edgeface
from .train import AdaptSettings, TrainResult, adapt_cross_spectral, train_recognizer


USED: dict[str, str] = {}
"""Every cache entry this process has loaded or built: ``{name: entry folder}`` (:func:`used_entries`)."""


def used_entries() -> dict[str, str]:
    """``{name: cache entry}`` of every dataset and model this process loaded or built, in order.

    A notebook prints it in its last cell (:func:`print_used_entries`): two notebooks that show the
    same run must name the same entry, so their figures come from one model (a test compares them).
    """
    return dict(USED)


def print_used_entries() -> None:
    """Print :func:`used_entries`, one per line (the provenance of this notebook's figures)."""
    print("cache entries used by this notebook (one entry: one model, the same in every notebook):")
    for name, entry in USED.items():
        print(f"  {name}: {entry}")


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


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
def data_payload(preset: Preset, seed: int) -> dict[str, Any]:
    """The key's contents of the embedded data: sizes, generator settings and version, seed."""
    return {"kind": "data", "data": asdict(preset.data), "generator": asdict(SyntheticConfig()),
            "generator_version": GENERATOR_VERSION, "seed": seed, "cache_version": CACHE_VERSION}


def data_key(preset: Preset, seed: int) -> str:
    """The key of the embedded data of a preset and seed (what models trained on it are keyed by)."""
    return payload_key(data_payload(preset, seed))


def faceset_digest(faceset: FaceSet) -> str:
    """A content digest of a FaceSet: its images, identities, modalities, splits and roles.

    The key of data read from a layout: two reads of the same layout (in any folder) give the same
    digest, and any change of an image, a label, a split or a role gives another one.
    """
    digest = hashlib.sha256()
    for array in (faceset.images, faceset.identities, faceset.modalities, faceset.splits,
                  faceset.roles if faceset.roles is not None else np.array([])):
        arr = np.ascontiguousarray(np.asarray(array))
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def load_faceset(preset: str | Preset | None = None, seed: int = 0, progress: bool = True) -> FaceSet:
    """The embedded synthetic cross-spectral FaceSet of a preset, from the cache or generated.

    The images are stored as a ``.npy`` file and memory-mapped when read back, so a large preset
    does not need to fit in memory twice.
    """
    preset = get_preset(preset)
    payload = data_payload(preset, seed)
    entry = entry_dir(preset.name, "data", payload_key(payload))
    USED[f"data ({preset.name}, seed {seed})"] = entry.name
    if (entry / "meta.json").is_file():
        try:  # a finished entry is read without its lock (meta.json is written last; the digests are checked)
            return _read_faceset_entry(entry, payload, preset)
        except Exception:
            pass  # unusable: the locked path below rebuilds it (or says why it cannot)
    with entry_lock(entry) as writable:
        if (entry / "meta.json").is_file():
            try:
                return _read_faceset_entry(entry, payload, preset)
            except Exception as exc:  # corrupt or stale: rebuild
                if not writable:
                    raise read_only_error(entry, f"is unusable ({exc})") from None
                warnings.warn(f"Cache entry {entry} is unusable ({exc}); rebuilding it.")
                shutil.rmtree(entry, ignore_errors=True)
        elif not writable:
            raise read_only_error(entry, "is missing")
        faceset = synthetic_faceset(preset, seed=seed, progress=progress)
        _write_faceset_entry(entry, faceset, payload)
        return faceset


_DATA_ARRAYS = ("images", "identities", "modalities", "splits")  # plus identity_names (and landmarks)


def _read_faceset_entry(entry: Path, payload: dict[str, Any], preset: Preset) -> FaceSet:
    """The FaceSet of a data entry, checked (record, digests, lengths, dtype); ValueError when unusable."""
    meta = json.loads((entry / "meta.json").read_text())
    if meta.get("payload") != canonical(payload):
        raise ValueError("record does not match its key")
    names = [f"{n}.npy" for n in (*_DATA_ARRAYS, "identity_names")]
    if (entry / "landmarks.npy").is_file():
        names.append("landmarks.npy")
    check_digests(entry, meta, names)
    loaded = {name: np.load(entry / f"{name}.npy", mmap_mode="r" if name == "images" else None,
                            allow_pickle=False) for name in _DATA_ARRAYS}
    if len({len(v) for v in loaded.values()}) != 1 or loaded["images"].dtype != np.uint8:
        raise ValueError("arrays of different lengths or wrong dtype")
    identity_names = np.load(entry / "identity_names.npy", allow_pickle=False)
    landmarks = np.load(entry / "landmarks.npy") if (entry / "landmarks.npy").is_file() else None
    faceset = FaceSet(images=loaded["images"], identities=loaded["identities"],
                      modalities=loaded["modalities"].astype(str), splits=loaded["splits"].astype(str),
                      identity_names=identity_names.astype(str), landmarks=landmarks,
                      name=meta.get("name", f"synthetic-{preset.name}"), meta=meta.get("faceset_meta", {}))
    return faceset


def _write_faceset_entry(entry: Path, faceset: FaceSet, payload: dict[str, Any]) -> None:
    """Write a data entry in a temporary sibling, with the digests of its files, then rename it into place."""
    tmp = entry.with_name(entry.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    arrays = {"images": np.ascontiguousarray(faceset.images),
              "identities": np.asarray(faceset.identities, dtype=np.int64),
              "modalities": np.asarray(faceset.modalities).astype("U16"),
              "splits": np.asarray(faceset.splits).astype("U16"),
              "identity_names": np.asarray(faceset.identity_names).astype(str)}
    if faceset.landmarks is not None:
        arrays["landmarks"] = np.asarray(faceset.landmarks, dtype=np.float32)
    for name, arr in arrays.items():
        np.save(tmp / f"{name}.npy", arr)
    meta = {"payload": payload, "name": faceset.name,
            "faceset_meta": json.loads(json.dumps(faceset.meta, default=str)),
            "files": digests(tmp, [f"{n}.npy" for n in arrays])}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    shutil.rmtree(entry, ignore_errors=True)
    tmp.rename(entry)


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
def _load_model_entry(entry: Path, payload: dict[str, Any], variant: str, name: str, key: str,
                      writable: bool = True) -> Artifact | None:
    """The cached model of ``entry``, or None when it is missing or unusable (then it is cleared, with a warning)."""
    if not (entry / "meta.json").is_file():
        return None
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if meta.get("payload") != canonical(payload):
            raise ValueError("its record does not match its key (written by another configuration)")
        check_digests(entry, meta, ["model.pt"])
        model = create_edgeface(variant, seed=None)
        model.load_state_dict(torch.load(entry / "model.pt", map_location="cpu", weights_only=True), strict=True)
        history = pd.DataFrame(meta.get("history", []))
        return Artifact(name, model.eval(), history, float(meta["seconds"]), key, entry, meta, from_cache=True)
    except Exception as exc:
        if not writable:
            raise read_only_error(entry, f"is unusable ({type(exc).__name__}: {exc})") from None
        warnings.warn(f"Cache entry {entry} is unusable ({type(exc).__name__}: {exc}); rebuilding it.")
        for child in ("model.pt", "meta.json"):
            (entry / child).unlink(missing_ok=True)
        return None


def _build_model_entry(entry: Path, payload: dict[str, Any], name: str, key: str,
                       build: Callable[[Path], TrainResult]) -> Artifact:
    entry.mkdir(parents=True, exist_ok=True)
    result = build(entry / "checkpoints")
    tmp = entry / "model.pt.tmp"
    try:  # a full disk or an interruption leaves no half-written file behind
        torch.save(result.model.state_dict(), tmp)
        tmp.replace(entry / "model.pt")
    finally:
        tmp.unlink(missing_ok=True)
    meta = {"payload": payload, "name": name, "seconds": round(result.seconds, 2), "threads": torch.get_num_threads(),
            "history": result.history.to_dict(orient="records"), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    if result.policy is not None:
        meta.update(trainable_params=result.policy.trainable, total_params=result.policy.total)
    else:
        n = sum(p.numel() for p in result.model.parameters())
        meta.update(trainable_params=n, total_params=n)
    meta["files"] = digests(entry, ["model.pt"])
    write_json_atomic(entry / "meta.json", meta)
    shutil.rmtree(entry / "checkpoints", ignore_errors=True)
    return Artifact(name, result.model.eval(), result.history, result.seconds, key, entry, meta, from_cache=False)


def model_artifact(preset_name: str, kind: str, name: str, payload: dict[str, Any], variant: str,
                   build: Callable[[Path], TrainResult], rebuild: bool = False, used_as: str | None = None) -> Artifact:
    """Load the model entry of ``payload`` or build it with ``build(checkpoint_dir)``, holding its lock
    (a concurrent run waits, then loads it).  ``used_as`` names it in :func:`used_entries` (default ``name``)."""
    key = payload_key(payload)
    entry = entry_dir(preset_name, kind, key)
    if not rebuild and (entry / "meta.json").is_file():
        try:  # a finished entry is read without its lock (meta.json is written last; the digests are checked)
            found = _load_model_entry(entry, payload, variant, name, key, writable=False)
        except Exception:
            found = None  # unusable: the locked path below rebuilds it (or says why it cannot)
        if found is not None:
            USED[used_as or name] = entry.name
            return found
    artifact = _locked_model_artifact(entry, key, payload, variant, name, build, rebuild)
    USED[used_as or name] = entry.name
    return artifact


def _locked_model_artifact(entry: Path, key: str, payload: dict[str, Any], variant: str, name: str,
                           build: Callable[[Path], TrainResult], rebuild: bool) -> Artifact:
    with entry_lock(entry) as writable:
        if not writable:
            if rebuild:
                raise read_only_error(entry, "was asked to be rebuilt")
            found = _load_model_entry(entry, payload, variant, name, key, writable=False)
            if found is None:
                raise read_only_error(entry, "is missing")
            return found
        if rebuild:
            shutil.rmtree(entry, ignore_errors=True)
        found = _load_model_entry(entry, payload, variant, name, key)
        return found if found is not None else _build_model_entry(entry, payload, name, key, build)


def model_is_cached(preset_name: str, kind: str, payload: dict[str, Any]) -> bool:
    """Whether the entry of ``payload`` exists (without loading or building it)."""
    return (entry_dir(preset_name, kind, payload_key(payload)) / "meta.json").is_file()


ADAPT_FIELDS: tuple[str, ...] = ("batch_size", "adapt_pairs_per_identity", "adapt_augment_vis", "temperature",
                                 "margin", "distill", "weight_decay", "warmup_fraction")
"""The TrainConfig fields an adaptation run reads besides its resolved :class:`AdaptSettings` (loss,
lambda, epochs, rate) and the model it starts from: its cache key holds these, so changing the
oracle's budget or the default ``adapt_lr`` retrains no adaptation run that does not use them."""

RECOGNIZER_FIELDS: tuple[str, ...] = ("variant", "batch_size", "baseline_lr", "head", "head_scale", "head_margin",
                                      "weight_decay", "warmup_fraction")
"""The TrainConfig fields that determine a recognizer (the baseline, the oracle): its key leaves out the
adaptation settings, so changing the adaptation recipe does not retrain the baseline it starts from."""


def recognizer_payload(preset: Preset, seed: int, modalities: tuple[str, ...], epochs: int,
                       augment: bool = True) -> dict[str, Any]:
    """The cache key's contents for a recognizer of the embedded data trained on ``modalities`` for ``epochs``."""
    return _recognizer_payload(data_key(preset, seed), preset.train, modalities, epochs, augment, seed)


def _recognizer_payload(data: str, config: TrainConfig, modalities: tuple[str, ...], epochs: int, augment: bool,
                        seed: int) -> dict[str, Any]:
    return {"kind": "recognizer", "data": data, "train": {k: getattr(config, k) for k in RECOGNIZER_FIELDS},
            "augment": augment, "modalities": list(modalities), "epochs": epochs, "seed": seed,
            "cache_version": CACHE_VERSION}


def adapt_payload(start_key: str, data: str, config: TrainConfig, settings: AdaptSettings, seed: int,
                  bf16: bool = False) -> dict[str, Any]:
    """The cache key's contents for an adaptation: its start, its data, :data:`ADAPT_FIELDS`, its settings."""
    payload = {"kind": "adapt", "start": start_key, "data": data,
               "train": {k: getattr(config, k) for k in ADAPT_FIELDS},
               "settings": asdict(settings.resolved(config)), "seed": seed, "cache_version": CACHE_VERSION}
    if bf16:
        payload["bf16"] = True
    return payload


def adapt_kind(settings: AdaptSettings, config: TrainConfig) -> str:
    """The cache folder prefix of an adaptation run: ``adapt-<policy>-<loss>``, hashed when long."""
    name = settings.resolved(config).name
    kind = "adapt-" + name.replace("/", "-").replace("+", "_")
    if len(kind) > 60 or not kind.replace("-", "").replace("_", "").replace(".", "").isalnum():
        # a groups:<g1>,<g2>,... policy: a short, safe folder name (the full name stays in meta.json)
        kind = f"adapt-{settings.policy.split(':')[0]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return kind


def load_baseline(preset: str | Preset | None = None, seed: int = 0, progress: bool = True,
                  rebuild: bool = False) -> Artifact:
    """The RGB baseline (EdgeFace trained on VIS images of the training identities), cached."""
    preset = get_preset(preset)
    faceset = load_faceset(preset, seed, progress)
    return load_recognizer(faceset.select(split="train"), faceset.select(split="dev"), data_key(preset, seed),
                           preset.train, modalities=("vis",), epochs=preset.train.baseline_epochs, augment=True,
                           name="baseline", kind="baseline", preset_name=preset.name, seed=seed, progress=progress,
                           rebuild=rebuild)


def oracle_payload(preset: Preset, seed: int) -> dict[str, Any]:
    """The oracle's key contents: every modality of the preset, ``oracle_epochs``, ``oracle_augment``."""
    return recognizer_payload(preset, seed, tuple(preset.data.modalities), preset.train.oracle_epochs,
                              augment=preset.train.oracle_augment)


def load_oracle(preset: str | Preset | None = None, seed: int = 0, progress: bool = True,
                rebuild: bool = False) -> Artifact:
    """The joint oracle: the same network trained from scratch on all modalities, cached.

    It trains ``TrainConfig.oracle_epochs`` epochs over every modality (by rule, the baseline's number
    of optimisation steps), with or without augmentation as chosen on dev (``TrainConfig.oracle_augment``).
    It needs paired data for every identity from the start and as much compute as the baseline, more
    than the method: a reference, not a ceiling.
    """
    preset = get_preset(preset)
    faceset = load_faceset(preset, seed, progress)
    return load_recognizer(faceset.select(split="train"), faceset.select(split="dev"), data_key(preset, seed),
                           preset.train, modalities=tuple(preset.data.modalities), epochs=preset.train.oracle_epochs,
                           augment=preset.train.oracle_augment, name="joint/oracle", kind="oracle",
                           preset_name=preset.name, seed=seed, progress=progress, rebuild=rebuild)


def load_recognizer(train_set: FaceSet, dev_set: FaceSet | None, data: str, config: TrainConfig, *,
                    modalities: tuple[str, ...], epochs: int, augment: bool, name: str, kind: str, preset_name: str,
                    seed: int = 0, device: Any = None, progress: bool = True, rebuild: bool = False) -> Artifact:
    """A recogniser trained from scratch on the ``modalities`` of ``train_set`` (whose data has key ``data``),
    cached: the RGB baseline (VIS), the joint oracle (every modality), or the oracle of a data subset."""
    payload = _recognizer_payload(data, config, modalities, epochs, augment, seed)

    def build(checkpoints: Path) -> TrainResult:
        return train_recognizer(train_set, config, epochs=epochs, modalities=modalities, augment=augment,
                                dev_set=dev_set, seed=seed, device=device, checkpoint_dir=checkpoints,
                                progress=progress)

    return model_artifact(preset_name, kind, name, payload, config.variant, build, rebuild)


def load_adaptation(start: nn.Module, start_key: str, variant: str, train_set: FaceSet, dev_set: FaceSet | None,
                    data: str, config: TrainConfig, settings: AdaptSettings, *, preset_name: str, seed: int = 0,
                    device: Any = None, bf16: bool = False, progress: bool = True, rebuild: bool = False) -> Artifact:
    """An adaptation of ``start`` (key ``start_key``) on ``train_set`` (whose data has key ``data``), cached.

    The one cached adaptation of the library: :func:`load_adapted` (the stand-in on the embedded
    data) and :func:`hfr_tutorial.experiment.run` (any data, any starting model) both call it.  The
    per-epoch validation reads ``dev_set`` (identities never trained on; never ``eval``).
    """
    payload = adapt_payload(start_key, data, config, settings, seed, bf16)

    def build(checkpoints: Path) -> TrainResult:
        return adapt_cross_spectral(start, train_set, config, settings,
                                    dev_set=dev_set if dev_set is not None and len(dev_set) else None, seed=seed,
                                    device=device, checkpoint_dir=checkpoints, progress=progress, bf16=bf16)

    return model_artifact(preset_name, adapt_kind(settings, config), settings.resolved(config).name, payload, variant,
                          build, rebuild, used_as=f"{settings.label} from {start_key[:19]}")


def load_adapted(settings: AdaptSettings = AdaptSettings(), preset: str | Preset | None = None, seed: int = 0,
                 progress: bool = True, rebuild: bool = False) -> Artifact:
    """An adaptation of the RGB baseline on the embedded data (the method or a variant of it), cached.

    ``settings`` with ``lr=None`` take the preset's ``adapt_lr``; a registered run's settings at its
    dev-chosen rate are ``hfr_tutorial.runs.get_run(name).settings_at(rate)``.
    """
    preset = get_preset(preset)
    baseline = load_baseline(preset, seed, progress)
    faceset = load_faceset(preset, seed, progress)
    return load_adaptation(baseline.model, baseline.key, preset.train.variant, faceset.select(split="train"),
                           faceset.select(split="dev"), data_key(preset, seed), preset.train, settings,
                           preset_name=preset.name, seed=seed, progress=progress, rebuild=rebuild)


def is_cached(what: str | AdaptSettings, preset: str | Preset | None = None, seed: int = 0) -> bool:
    """Whether the model ``what`` ("baseline", "joint/oracle" or an :class:`AdaptSettings` of the stand-in on
    the embedded data) has an entry in the cache, without loading or building anything."""
    preset = get_preset(preset)
    base_payload = recognizer_payload(preset, seed, ("vis",), preset.train.baseline_epochs)
    if what == "baseline":
        return model_is_cached(preset.name, "baseline", base_payload)
    if what == "joint/oracle":
        return model_is_cached(preset.name, "oracle", oracle_payload(preset, seed))
    if isinstance(what, str):
        raise ValueError(f"is_cached({what!r}): give 'baseline', 'joint/oracle' or AdaptSettings.")
    return model_is_cached(preset.name, adapt_kind(what, preset.train),
                           adapt_payload(payload_key(base_payload), data_key(preset, seed), preset.train, what, seed))

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
  not match, a file whose sha256 differs from the one recorded in its ``meta.json``) is rebuilt,
  with a warning, never silently used;
* one process at a time builds an entry: each entry has a lock (``.<entry>.lock`` beside it, an
  ``fcntl.flock`` that the system releases when its holder dies, so a killed run never leaves a
  stale lock).  A second run that needs the entry says which process holds it, waits, then loads
  what the first one built;
* a read-only cache serves the entries it holds; one that must build a missing entry there, or an
  ``HFR_CACHE`` that is not a folder, stops with a :class:`~hfr_tutorial.config.CacheError`
  naming ``HFR_CACHE`` and what to do.

Training writes its per-epoch checkpoints inside the entry, so an interrupted build resumes.

Taught in: every notebook's setup cell; ``notebooks/05_full_training.ipynb`` explains it.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch

from .config import CacheError, Preset, cache_dir, cache_fix, cache_problem, get_preset
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
# Content digests: a file changed after it was written is never used
# ------------------------------------------------------------------------------------------------
_VERIFIED: dict[str, tuple[int, int, str]] = {}
"""Files this process has hashed: path -> (size, mtime_ns, sha256), so a second load skips the work."""


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (hex), read in chunks; reused while its size and mtime are unchanged."""
    st = path.stat()
    known = _VERIFIED.get(str(path))
    if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
        return known[2]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    _VERIFIED[str(path)] = (st.st_size, st.st_mtime_ns, digest.hexdigest())
    return digest.hexdigest()


def _digests(entry: Path, names: list[str]) -> dict[str, str]:
    """{file name: sha256} of the named files of an entry (recorded in its meta.json)."""
    return {name: file_sha256(entry / name) for name in names}


def _check_digests(entry: Path, meta: dict[str, Any], required: list[str]) -> bool:
    """Raise ValueError when a file of the entry differs from its recorded sha256; False when none is recorded.

    Entries written before digests were recorded have none: they are checked as before and
    their digests are recorded then (:func:`_adopt_digests`), so old caches stay usable.
    """
    files = meta.get("files")
    if files is None:
        return False
    missing = [n for n in required if n not in files]
    if missing:
        raise ValueError(f"meta.json records no digest for {missing}")
    for name, expected in files.items():
        if file_sha256(entry / name) != expected:
            raise ValueError(f"{name} differs from the sha256 recorded in meta.json (changed after it was written)")
    return True


def _adopt_digests(entry: Path, meta: dict[str, Any], names: list[str]) -> None:
    """Record the digests of an entry that predates them (skipped quietly in a read-only cache)."""
    meta = dict(meta, files=_digests(entry, names))
    with contextlib.suppress(OSError):
        _write_json_atomic(entry / "meta.json", meta)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------
# One lock per entry
# ------------------------------------------------------------------------------------------------
_HELD: dict[tuple[int, str], int] = {}
"""Entry locks this process holds, per thread: (thread id, lock path) -> depth (re-entrant)."""

LOCK_REPORT_SECONDS = 60.0
"""While waiting for an entry, say so again this often."""


def lock_path(entry: Path) -> Path:
    """The lock file of a cache entry: a hidden sibling, so globbing entries never sees it."""
    return entry.parent / f".{entry.name}.lock"


def lock_holder(entry: Path) -> str:
    """Who holds (or last held) an entry's lock, as its lock file records it: pid, host, start time, command."""
    try:
        info = json.loads(lock_path(entry).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')} (since {info.get('since')}: "
            f"{info.get('command', '?')})")


def _is_read_only(err: OSError) -> bool:
    return isinstance(err, PermissionError) or err.errno in (errno.EACCES, errno.EROFS, errno.EPERM)


def _open_lock(path: Path) -> int | None:
    """The lock file's descriptor, or None where the cache is read-only (nothing can be built there)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        if _is_read_only(err):
            return None
        raise CacheError(f"{cache_problem(cache_dir(), err)} {cache_fix()}") from None


@contextlib.contextmanager
def entry_lock(entry: Path, *, timeout: float | None = None, poll: float = 0.2) -> Iterator[bool]:
    """Hold the lock of cache entry ``entry`` for the ``with`` block; yields False in a read-only cache.

    When another process holds it, says which (pid, host, since when, its command) and waits for
    it (``timeout`` seconds at most, default forever: building an entry takes minutes), then
    proceeds, so the caller loads what the other process built.  The lock is an ``fcntl.flock``:
    the system drops it when its holder exits or is killed, so a dead run's lock is taken over at
    once.  Re-entrant within a thread.  Where ``fcntl`` does not exist (Windows) entries are not
    locked.
    """
    path = lock_path(entry)
    key = (threading.get_ident(), str(path))
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield True
        finally:
            _HELD[key] -= 1
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    fd = _open_lock(path)
    if fd is None:
        yield False
        return
    try:
        _acquire(fcntl, fd, entry, timeout, poll)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "command": " ".join(sys.argv)[:200]}).encode())
        _HELD[key] = 1
        try:
            yield True
        finally:
            del _HELD[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fcntl: Any, fd: int, entry: Path, timeout: float | None, poll: float) -> None:
    """Take the flock on ``fd``, telling the user who holds it while waiting."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    except OSError as err:  # a file system without locks (some network mounts): go on unlocked
        warnings.warn(f"Cannot lock cache entry {entry} ({err}); two runs sharing it may collide.")
        return
    start = last = time.monotonic()
    print(f"Cache entry {entry} is being built by {lock_holder(entry)}; waiting for it to finish "
          "(then its result is loaded, not built again).", file=sys.stderr, flush=True)
    while True:
        time.sleep(poll)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print(f"Cache entry {entry} is free after {time.monotonic() - start:.0f} s.", file=sys.stderr, flush=True)
            return
        except BlockingIOError:
            now = time.monotonic()
            if timeout is not None and now - start >= timeout:
                raise TimeoutError(
                    f"Cache entry {entry} is still held by {lock_holder(entry)} after {timeout:.0f} s. Wait for that "
                    f"run to finish or stop it; if no such process runs, delete {lock_path(entry)}.") from None
            if now - last >= LOCK_REPORT_SECONDS:
                print(f"Still waiting for cache entry {entry} ({now - start:.0f} s; held by {lock_holder(entry)}).",
                      file=sys.stderr, flush=True)
                last = now


def _read_only_error(entry: Path, why: str) -> CacheError:
    """The error for an entry that must be (re)built in a cache that cannot be written."""
    return CacheError(f"{cache_problem(cache_dir(), PermissionError(errno.EACCES, 'read-only'))} Cache entry "
                      f"{entry} {why} and would have to be built there. {cache_fix(missing_entry=True)}")


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
    from .data import synthetic_faceset

    preset = get_preset(preset)
    payload = data_payload(preset, seed)
    key = _digest(payload)
    entry = _entry_dir(preset, "data", key)
    with entry_lock(entry) as writable:
        if (entry / "meta.json").is_file():
            try:
                return _read_faceset_entry(entry, payload, preset, writable)
            except Exception as exc:  # corrupt or stale: rebuild
                if not writable:
                    raise _read_only_error(entry, f"is unusable ({exc})") from None
                warnings.warn(f"Cache entry {entry} is unusable ({exc}); rebuilding it.")
                shutil.rmtree(entry, ignore_errors=True)
        elif not writable:
            raise _read_only_error(entry, "is missing")
        faceset = synthetic_faceset(preset, seed=seed, progress=progress)
        _write_faceset_entry(entry, faceset, payload)
        return faceset


_DATA_ARRAYS = ("images", "identities", "modalities", "splits")  # plus identity_names (and landmarks)


def _read_faceset_entry(entry: Path, payload: dict[str, Any], preset: Preset, writable: bool) -> Any:
    """The FaceSet of a data entry, checked (record, digests, lengths, dtype); ValueError when unusable."""
    from .data import FaceSet

    meta = json.loads((entry / "meta.json").read_text())
    if meta.get("payload") != json.loads(json.dumps(payload, default=str)):
        raise ValueError("record does not match its key")
    names = [f"{n}.npy" for n in (*_DATA_ARRAYS, "identity_names")]
    if (entry / "landmarks.npy").is_file():
        names.append("landmarks.npy")
    has_digests = _check_digests(entry, meta, names)
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
    if not has_digests and writable:
        _adopt_digests(entry, meta, names)
    return faceset


def _write_faceset_entry(entry: Path, faceset: Any, payload: dict[str, Any]) -> None:
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
            "files": _digests(tmp, [f"{n}.npy" for n in arrays])}
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
        if meta.get("payload") != json.loads(json.dumps(payload, default=str)):
            raise ValueError("its record does not match its key (written by another configuration)")
        has_digests = _check_digests(entry, meta, ["model.pt"])
        model = create_edgeface(variant, seed=None)
        model.load_state_dict(torch.load(entry / "model.pt", map_location="cpu", weights_only=True), strict=True)
        history = pd.DataFrame(meta.get("history", []))
        if not has_digests and writable:
            _adopt_digests(entry, meta, ["model.pt"])
        return Artifact(name, model.eval(), history, float(meta["seconds"]), key, entry, meta, from_cache=True)
    except Exception as exc:
        if not writable:
            raise _read_only_error(entry, f"is unusable ({type(exc).__name__}: {exc})") from None
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
    meta = {"payload": payload, "name": name, "seconds": round(result.seconds, 2), "threads": torch.get_num_threads(),
            "history": result.history.to_dict(orient="records"), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    if result.policy is not None:
        meta.update(trainable_params=result.policy.trainable, total_params=result.policy.total)
    else:
        n = sum(p.numel() for p in result.model.parameters())
        meta.update(trainable_params=n, total_params=n)
    meta["files"] = _digests(entry, ["model.pt"])
    _write_json_atomic(entry / "meta.json", meta)
    shutil.rmtree(entry / "checkpoints", ignore_errors=True)
    return Artifact(name, result.model.eval(), result.history, result.seconds, key, entry, meta, from_cache=False)


def _model_artifact(preset: Preset, kind: str, name: str, payload: dict[str, Any],
                    build: Callable[[Path], TrainResult], rebuild: bool) -> Artifact:
    """Load the entry of ``payload`` or build it, holding its lock (a concurrent run waits, then loads it)."""
    key = _digest(payload)
    entry = _entry_dir(preset, kind, key)
    with entry_lock(entry) as writable:
        if not writable:
            if rebuild:
                raise _read_only_error(entry, "was asked to be rebuilt")
            found = _load_model_entry(entry, payload, preset.train.variant, name, key, writable=False)
            if found is None:
                raise _read_only_error(entry, "is missing")
            return found
        if rebuild:
            shutil.rmtree(entry, ignore_errors=True)
        found = _load_model_entry(entry, payload, preset.train.variant, name, key)
        return found if found is not None else _build_model_entry(entry, payload, name, key, build)


NOT_IN_KEY: tuple[str, ...] = ("num_workers",)
"""TrainConfig fields that change how fast a model trains, not what it learns: left out of cache keys."""


def train_payload(preset: Preset) -> dict[str, Any]:
    """The training settings that determine a trained model (``TrainConfig`` less :data:`NOT_IN_KEY`)."""
    return {k: v for k, v in asdict(preset.train).items() if k not in NOT_IN_KEY}


ADAPT_FIELDS: tuple[str, ...] = ("batch_size", "adapt_pairs_per_identity", "adapt_augment_vis", "temperature",
                                 "margin", "distill", "weight_decay", "warmup_fraction")
"""The TrainConfig fields an adaptation run reads besides its resolved :class:`AdaptSettings` (loss,
lambda, epochs, rate) and the baseline it starts from (whose own key pins the recogniser's fields):
its cache key holds these, so changing the oracle's budget or the default ``adapt_lr`` retrains no
adaptation run that does not use them."""


RECOGNIZER_FIELDS: tuple[str, ...] = ("variant", "batch_size", "baseline_lr", "head", "head_scale", "head_margin",
                                      "weight_decay", "warmup_fraction")
"""The TrainConfig fields that determine a recognizer (the baseline, the oracle): its key leaves out the
adaptation settings, so changing the adaptation recipe does not retrain the baseline it starts from."""


def recognizer_payload(preset: Preset, seed: int, modalities: tuple[str, ...], epochs: int,
                       augment: bool = True) -> dict[str, Any]:
    """The cache key's contents for a recognizer trained on ``modalities`` for ``epochs`` epochs."""
    train = {k: getattr(preset.train, k) for k in RECOGNIZER_FIELDS}
    return {"kind": "recognizer", "data": data_payload(preset, seed), "train": train, "augment": augment,
            "modalities": list(modalities), "epochs": epochs, "seed": seed, "cache_version": CACHE_VERSION}


def adapt_payload(preset: Preset, settings: AdaptSettings, baseline_key: str, seed: int) -> dict[str, Any]:
    """The cache key's contents for an adaptation run: its baseline, :data:`ADAPT_FIELDS`, its settings."""
    return {"kind": "adapt", "baseline": baseline_key, "train": {k: getattr(preset.train, k) for k in ADAPT_FIELDS},
            "settings": asdict(settings.resolved(preset.train)), "seed": seed, "cache_version": CACHE_VERSION}


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

    It trains ``TrainConfig.oracle_epochs`` epochs over every modality (by rule, the baseline's number
    of optimisation steps), with or without augmentation as chosen on dev (``TrainConfig.oracle_augment``).
    It needs paired data for every identity from the start and as much compute as the baseline, more
    than the method: a reference, not a ceiling.
    """
    preset = get_preset(preset)
    modalities = tuple(preset.data.modalities)
    epochs = preset.train.oracle_epochs
    payload = recognizer_payload(preset, seed, modalities, epochs, augment=preset.train.oracle_augment)

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
    payload = adapt_payload(preset, settings, baseline.key, seed)

    def build(checkpoints: Path) -> TrainResult:
        faceset = load_faceset(preset, seed, progress)
        return adapt_cross_spectral(baseline.model, faceset.select(split="train"), preset.train, settings,
                                    dev_set=faceset.select(split="dev"), seed=seed, checkpoint_dir=checkpoints,
                                    progress=progress)

    name = settings.resolved(preset.train).name
    return _model_artifact(preset, _adapt_kind(settings, preset), name, payload, build, rebuild)


def _adapt_kind(settings: AdaptSettings, preset: Preset) -> str:
    """The cache folder prefix of an adaptation run: ``adapt-<policy>-<loss>``, hashed when long."""
    name = settings.resolved(preset.train).name
    kind = "adapt-" + name.replace("/", "-").replace("+", "_")
    if len(kind) > 60 or not kind.replace("-", "").replace("_", "").replace(".", "").isalnum():
        # a groups:<g1>,<g2>,... policy: a short, safe folder name (the full name stays in meta.json)
        kind = f"adapt-{settings.policy.split(':')[0]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return kind


def is_cached(what: str | AdaptSettings, preset: str | Preset | None = None, seed: int = 0) -> bool:
    """Whether the model ``what`` ("baseline", the oracle's name, a comparison run's name or an
    :class:`AdaptSettings`) has an entry in the cache, without loading or building anything."""
    preset = get_preset(preset)
    base_payload = recognizer_payload(preset, seed, ("vis",), preset.train.baseline_epochs)
    if what == "baseline":
        kind, payload = "baseline", base_payload
    elif what == ORACLE_RUN:
        kind, payload = "oracle", recognizer_payload(preset, seed, tuple(preset.data.modalities),
                                                     preset.train.oracle_epochs, augment=preset.train.oracle_augment)
    else:
        settings = COMPARISON_RUNS[what] if isinstance(what, str) else what
        kind, payload = _adapt_kind(settings, preset), adapt_payload(preset, settings, _digest(base_payload), seed)
    return (_entry_dir(preset, kind, _digest(payload)) / "meta.json").is_file()


# The comparison runs of the tutorial (names are public: metrics.json, notebooks, README). Each name
# says the tuning policy and the losses, <policy>/<infonce|pairwise>[+distill]. The learning rate of
# every run with distillation was chosen on the dev identities by benchmarks/dev_selection.py
# (docs/results/dev_selection/selection.md: each policy and loss swept over the same half-decade rates,
# the same epochs); a run without distillation is the ablation of the run with it and keeps its rate.
# tests/test_selection.py checks that these rates are the recorded winners.
COMPARISON_RUNS: dict[str, AdaptSettings] = {
    "paper/infonce+distill": AdaptSettings(policy="paper", contrastive="infonce", lr=3e-2),
    "paper/pairwise+distill": AdaptSettings(policy="paper", contrastive="pairwise", lr=3e-2),
    "paper/infonce": AdaptSettings(policy="paper", contrastive="infonce", distill_weight=0.0, lr=3e-2),
    # the sweep's winner at the top of the ladder (3e-1 after two extensions): it may want more still
    "layernorm/infonce+distill": AdaptSettings(policy="layernorm", contrastive="infonce", lr=3e-1),
    "full/infonce+distill": AdaptSettings(policy="full", contrastive="infonce", lr=3e-2),
    "full/infonce": AdaptSettings(policy="full", contrastive="infonce", distill_weight=0.0, lr=3e-2),
}
METHOD_RUN = "paper/infonce+distill"
"""The method as the tutorial reports it: the paper-policy run whose loss won on dev (dev mean rank-1 0.934
with InfoNCE against 0.921 with the published pairwise margin loss, each at its best rate, 3e-2)."""
FULL_RUN = "full/infonce+distill"
"""Full fine-tuning with the method's losses: what the method is compared with at the same epochs."""
ABLATIONS: dict[str, str] = {"paper/infonce": METHOD_RUN, "full/infonce": FULL_RUN}
"""Each run without distillation and the run it ablates (same policy, loss and rate)."""
ORACLE_RUN = "joint/oracle"

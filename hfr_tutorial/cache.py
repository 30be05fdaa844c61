"""The artifact cache's mechanism: entry folders, keys, content digests, locks, atomic writes.

An *entry* is a folder ``$HFR_CACHE/<preset>/<kind>-<key>/`` whose key is a digest of everything
that determines its content (:func:`payload_key`).  This module knows nothing of what is cached
(:mod:`hfr_tutorial.artifacts` does): it gives each entry

* a content check: the sha256 of every file is recorded in its ``meta.json`` when it is written
  and compared when it is read, so a file changed after it was written is never used;
* one lock: ``.<entry>.lock`` beside it, an ``fcntl.flock`` that the system releases when its
  holder dies (a killed run never leaves a stale lock).  A second process that needs the entry
  says which process holds it, waits, then loads what the first one built;
* read-only handling: a read-only cache serves the entries it holds; one that must build a
  missing entry there stops with a :class:`~hfr_tutorial.config.CacheError` naming ``HFR_CACHE``.

Taught in: ``notebooks/05_full_training.ipynb`` (load from the cache if present, else train).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

from .config import CacheError, cache_dir, cache_fix, cache_problem

CACHE_VERSION = 2
"""Bump when a change of code makes old cache entries wrong (2: the experiment path's payloads)."""


def payload_key(payload: dict[str, Any]) -> str:
    """The entry key of a payload: a short digest of its canonical JSON."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def canonical(payload: Any) -> Any:
    """``payload`` as it reads back from JSON (tuples become lists): what ``meta.json`` records."""
    return json.loads(json.dumps(payload, default=str))


def entry_dir(preset_name: str, kind: str, key: str) -> Path:
    """The folder of an entry: ``$HFR_CACHE/<preset>/<kind>-<key>``."""
    return cache_dir() / preset_name / f"{kind}-{key}"


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


def digests(entry: Path, names: list[str]) -> dict[str, str]:
    """{file name: sha256} of the named files of an entry (recorded in its meta.json)."""
    return {name: file_sha256(entry / name) for name in names}


def check_digests(entry: Path, meta: dict[str, Any], required: list[str]) -> None:
    """Raise ValueError when a file of the entry is not recorded or differs from its recorded sha256."""
    files = meta.get("files") or {}
    missing = [n for n in required if n not in files]
    if missing:
        raise ValueError(f"meta.json records no digest for {missing}")
    for name, expected in files.items():
        if file_sha256(entry / name) != expected:
            raise ValueError(f"{name} differs from the sha256 recorded in meta.json (changed after it was written)")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary sibling, then rename it into place (never half a file; no .tmp left on error)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=1, default=str))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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


def read_only_error(entry: Path, why: str) -> CacheError:
    """The error for an entry that must be (re)built in a cache that cannot be written."""
    return CacheError(f"{cache_problem(cache_dir(), PermissionError(errno.EACCES, 'read-only'))} Cache entry "
                      f"{entry} {why} and would have to be built there. {cache_fix(missing_entry=True)}")

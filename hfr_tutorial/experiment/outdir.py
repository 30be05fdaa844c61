"""The ``--out`` rule: one writer at a time, results that always describe one model, nothing replaced silently.

* ``--out`` must be a folder this process can write, absent, empty, or holding an earlier
  hfr-tutorial result (its ``metrics.json``): a folder of other files is never replaced.
* An earlier result of **another** experiment (other data, model, runs, preset, seed or recipe
  overrides) is replaced only with ``--overwrite``; the same experiment may be rerun into it.
* One lock per ``--out`` (``.<name>.lock`` beside it, an ``fcntl.flock`` the system drops when its
  holder dies): a second run into the same folder stops at once, naming the first.
* A run writes into a temporary sibling (``.<name>.partial-<pid>``) and swaps it in only when
  everything is written, so ``metrics.json``, the report, the figures and the checkpoints always come
  from the same run; an interrupted run leaves the previous result as it was (and its partial
  folder is cleared by the next run).

Taught in: ``notebooks/05_full_training.ipynb``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np

RESULT_FILE = "metrics.json"


class OutputError(ValueError):
    """``--out`` cannot take the results (not a folder, not writable, busy, or holding results that would be lost)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def previous_fingerprint(out: Path) -> str | None:
    """The experiment fingerprint of the result in ``out`` ('' for one that records none; None: no result)."""
    path = out / RESULT_FILE
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text()).get("fingerprint", ""))
    except (OSError, json.JSONDecodeError, AttributeError):
        return ""


def check_out(out: Path, fingerprint: str, overwrite: bool) -> None:
    """Refuse an ``--out`` that cannot take these results, before any work (see the module docstring)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder. Give a folder for metrics.json, report.md and figures/.")
    if out.is_dir():
        before = previous_fingerprint(out)
        if before is None and any(out.iterdir()):
            raise OutputError(f"--out {out} holds files that are not an hfr-tutorial result (no {RESULT_FILE}); they "
                              "would be replaced. Choose a new or empty folder, e.g. --out runs/mine.")
        if before is not None and before != fingerprint and not overwrite:
            raise OutputError(f"--out {out} holds the result of another experiment (other data, model, runs, preset, "
                              "seed or settings). Pass --overwrite to replace it, or choose another --out.")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{out.name}.write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"--out {out}: its folder {parent} is not writable ({err.strerror or err}). Choose a folder "
                          "you can write to, e.g. --out runs/mine.") from None


@contextlib.contextmanager
def output_folder(out: str | Path, fingerprint: str, overwrite: bool = False) -> Iterator[Path]:
    """Hold ``out``'s lock and yield a fresh temporary sibling to write into; swap it in when the block ends
    without an error (otherwise remove it and leave ``out`` as it was)."""
    out = Path(out)
    check_out(out, fingerprint, overwrite)
    lock = out.parent / f".{out.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another run"
            raise OutputError(f"--out {out} is being written by {holder}. Wait for it to finish, or choose another "
                              "--out.") from None
        except ImportError:  # pragma: no cover - Windows: no lock
            pass
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        _clear_stale_partials(out)
        check_out(out, fingerprint, overwrite)  # again, under the lock: another run may have finished meanwhile
        partial = out.parent / f".{out.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            yield partial
            _swap_in(partial, out)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)


def _clear_stale_partials(out: Path) -> None:
    """Remove partial and old folders of ``out`` left by runs that are no longer alive."""
    for stale in out.parent.glob(f".{out.name}.*-*"):
        kind, _, pid = stale.name.rpartition("-")
        if stale.is_dir() and pid.isdigit() and (kind.endswith(".partial") or kind.endswith(".old")) \
                and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _swap_in(partial: Path, out: Path) -> None:
    """Replace ``out`` by ``partial`` (two renames in one folder; the old result is removed afterwards)."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(partial, out)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON (NaN and infinities as null, numpy numbers as Python numbers)."""
    path.write_text(json.dumps(jsonable(value), indent=2))


def jsonable(value: Any) -> Any:
    """``value`` with numpy types made plain and non-finite floats made None, rounded to 6 decimals."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return value

"""Train the missing models of the comparison side by side: one process per core, one thread each.

Why: on a small CPU one training process keeps its cores only partly busy (EdgeFace-XXS at 64 px
has small layers, and Python runs between kernels).  ``benchmarks/bench_speed.py`` measured a
2-thread training step at only 1.16x the speed of a 1-thread step on a 2-core host, while two
1-thread runs side by side each kept about 0.7x of that speed: about 1.4x the training steps per
second in all.  The comparison's models are independent once the baseline exists (the oracle does
not even need it), so :func:`build_missing` trains them in two stages:

1. the RGB baseline and the joint oracle;
2. every adaptation run (they all start from the baseline), the longest first.

Each model is built by the same :mod:`hfr_tutorial.artifacts` loader that the notebooks call,
into the same cache entry, under the same lock, so the result is the artifact a sequential run
would have stored, trained with one thread (``meta.json`` records ``threads``; results from
another thread count differ by float rounding only).  A stage with a single missing model, a GPU
device, or ``workers=1`` (``HFR_BUILD_WORKERS=1``) leaves the training to the caller's process.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable, Iterator, Sequence

from .config import Preset, get_preset

WORKERS_ENV = "HFR_BUILD_WORKERS"


def default_workers() -> int:
    """``HFR_BUILD_WORKERS`` if set, else 2 on a machine with at least 2 cores, else 1."""
    value = os.environ.get(WORKERS_ENV)
    if value:
        try:
            workers = int(value)
        except ValueError:
            raise ValueError(f"{WORKERS_ENV}={value!r} is not a whole number; set it to 1 (train in this process) "
                             "or 2 (two training processes side by side).") from None
        if workers < 1:
            raise ValueError(f"{WORKERS_ENV}={value!r}: give a whole number >= 1 (1 trains in this process).")
        return workers
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _label(what: Any) -> str:
    return what if isinstance(what, str) else what.label


def _relative_cost(what: Any) -> float:
    """A rough order for the second stage: full fine-tuning first (its step is the slowest)."""
    policy = what if isinstance(what, str) else what.policy
    return 2.0 if policy.startswith("full") or "stages012" in policy else 1.0


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _build_one(what: Any, preset: Preset, seed: int) -> tuple[str, float, bool]:
    """Worker: load or build one model into the cache; return its label, seconds and whether it was cached."""
    from .artifacts import COMPARISON_RUNS, ORACLE_RUN, load_adapted, load_baseline, load_oracle

    t0 = time.perf_counter()
    if what == "baseline":
        artifact = load_baseline(preset, seed, progress=False)
    elif what == ORACLE_RUN:
        artifact = load_oracle(preset, seed, progress=False)
    else:
        artifact = load_adapted(COMPARISON_RUNS[what] if isinstance(what, str) else what, preset, seed, progress=False)
    return _label(what), time.perf_counter() - t0, artifact.from_cache


def build_missing(runs: Sequence[Any], preset: str | Preset | None = None, seed: int = 0, *,
                  workers: int | None = None, device: Any = None, progress: bool = True) -> dict[str, float]:
    """Train, side by side, the models of ``runs`` (and the baseline) that the cache lacks.

    Args:
        runs: names of :data:`~hfr_tutorial.artifacts.COMPARISON_RUNS` and/or ``ORACLE_RUN``, or
            :class:`~hfr_tutorial.train.AdaptSettings` (a sweep's candidates).
        workers: processes side by side (default :func:`default_workers`); each uses
            ``max(1, cores // workers)`` threads.
        device: the training device; on a GPU nothing is built here (one process uses it best).
    Returns:
        ``{name: seconds}`` of every model trained here (empty when nothing was missing or the
        conditions for side-by-side training do not hold).  Call the loaders afterwards: they then
        load from the cache.
    """
    from .artifacts import COMPARISON_RUNS, ORACLE_RUN, is_cached, load_faceset
    from .config import get_device

    preset = get_preset(preset)
    unknown = [r for r in runs if isinstance(r, str) and r not in COMPARISON_RUNS and r != ORACLE_RUN]
    if unknown:
        raise ValueError(f"build_missing: unknown run(s) {unknown}; choose from {[*COMPARISON_RUNS, ORACLE_RUN]}.")
    workers = default_workers() if workers is None else int(workers)
    if workers < 2 or get_device(device).type != "cpu":
        return {}
    threads = max(1, (os.cpu_count() or 1) // workers)
    first = [n for n in ("baseline", *(r for r in runs if r == ORACLE_RUN)) if not is_cached(n, preset, seed)]
    second = sorted((r for r in runs if r != ORACLE_RUN and not is_cached(r, preset, seed)),
                    key=_relative_cost, reverse=True)
    if len(first) + len(second) < 2:
        return {}
    load_faceset(preset, seed, progress)  # the data exist before any worker reads them
    built: dict[str, float] = {}
    say = print if progress else (lambda *a, **k: None)
    for stage in (first, second):
        if len(stage) < 2:
            continue  # one model: the caller's process trains it with every thread
        n = min(workers, len(stage))
        say(f"      training {len(stage)} models side by side in {n} processes ({threads} thread each): "
            + ", ".join(_label(w) for w in stage))
        t0 = time.perf_counter()
        for name, seconds, cached in side_by_side(_build_one, [(w, preset, seed) for w in stage], n, threads):
            if not cached:
                built[name] = round(seconds, 1)
            say(f"      {name}: {'already cached' if cached else f'trained in {seconds:.0f} s'}")
        say(f"      stage done in {time.perf_counter() - t0:.0f} s")
    return built


def side_by_side(fn: Callable[..., Any], calls: Sequence[tuple], workers: int, threads: int = 1) -> Iterator[Any]:
    """``fn(*args)`` for each ``args`` of ``calls`` in ``workers`` spawned processes of ``threads`` threads each.

    Yields the results in the order of ``calls`` (each as soon as it and those before it are done);
    an exception in a call is raised here.  ``fn`` must be importable (a module-level function):
    the processes are spawned, never forked from a process whose thread pools are running.
    """
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        for future in [pool.submit(fn, *args) for args in calls]:
            yield future.result()

"""Train missing models side by side: one process per core, one thread each.

Why: on a small CPU one training process keeps its cores only partly busy (EdgeFace-XXS at 64 px
has small layers, and Python runs between kernels).  ``benchmarks/bench_speed.py`` measured a
2-thread training step at only 1.16x the speed of a 1-thread step on a 2-core host, while two
1-thread runs side by side each kept about 0.7x of that speed: about 1.4x the training steps per
second in all.  :func:`hfr_tutorial.experiment.run` trains the missing models of an experiment
this way (each into its own cache entry, under its lock, so the result is the artifact a
sequential run would have stored; ``meta.json`` records the thread count).

Taught in: ``notebooks/05_full_training.ipynb``.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable, Iterator, Sequence

import torch

from .config import build_workers


def default_workers() -> int:
    """How many models train side by side on a CPU (:func:`hfr_tutorial.config.build_workers`)."""
    return build_workers()


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


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

"""Timing deployable forms on this CPU: a fixed number of threads, all forms measured interleaved in one run.

What a timing depends on (the CPU, the threads, the library versions) is recorded with it by
:func:`hfr_tutorial.environment.machine_description`.  Taught in ``notebooks/08_edge_deployment.ipynb``;
used by ``benchmarks/bench_deploy.py``.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from hfr_tutorial.deploy.export import DEFAULT_THREADS
from hfr_tutorial.deploy.forms import Form


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run PyTorch with ``n`` intra-op threads inside the block, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)



def benchmark_forms(forms: Sequence[Form], *, batches: Sequence[int] = (1, 64), repeats: Mapping[int, int] | int = 30,
                    warmup: int = 3, threads: int = DEFAULT_THREADS, seed: int = 0) -> pd.DataFrame:
    """Latency of each form at each batch size, all forms measured interleaved in one run.

    For each batch size, every form is warmed up, then the forms take turns, one call each, for
    ``repeats`` rounds (the order rotates each round), so a slow spell of the machine hits all forms
    alike.  PyTorch runs with ``threads`` threads (restored afterwards); build the ONNX forms with
    the same number (:func:`onnx_form`).  Input: random normalised faces of each form's size.

    Returns one row per (form, batch): ``median_ms``, ``p25_ms``, ``p75_ms``, ``images_per_s``
    (batch / median), ``repeats`` and ``size_mb`` (on disk).
    """
    if not forms:
        raise ValueError("benchmark_forms: forms is empty; pass at least one Form (torch_form, onnx_form).")
    rng = np.random.default_rng(seed)
    rows = []
    with torch_threads(threads):
        for batch in batches:
            n_rep = repeats[batch] if isinstance(repeats, Mapping) else int(repeats)
            inputs = {f.image_size: rng.standard_normal((batch, 3, f.image_size, f.image_size)).astype(np.float32)
                      for f in forms}
            for form in forms:
                for _ in range(warmup):
                    form.run(inputs[form.image_size])
            times: dict[str, list[float]] = {f.name: [] for f in forms}
            for r in range(n_rep):
                for j in range(len(forms)):
                    form = forms[(r + j) % len(forms)]
                    start = time.perf_counter()
                    form.run(inputs[form.image_size])
                    times[form.name].append(time.perf_counter() - start)
            for form in forms:
                t = np.asarray(times[form.name]) * 1e3
                median = float(np.median(t))
                rows.append({"form": form.name, "batch": batch, "median_ms": median,
                             "p25_ms": float(np.percentile(t, 25)), "p75_ms": float(np.percentile(t, 75)),
                             "images_per_s": batch / (median / 1e3), "repeats": n_rep,
                             "size_mb": form.size_bytes / 1e6})
    return pd.DataFrame(rows)

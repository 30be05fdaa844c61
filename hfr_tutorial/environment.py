"""What a result was measured on: Python, the platform, the CPU, its cores and threads, the library versions.

Every record that carries a number someone may compare later (``metrics.json``, a benchmark's JSON,
a timing in notebook 08) stores :func:`describe_environment` beside it, so two records are read
against the same facts.  One place for it: before, two orchestrators each kept a copy,
and ``deploy`` a third with the CPU.

A leaf module: it imports nothing of the package.  Taught in ``notebooks/08_edge_deployment.ipynb``.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {"timm": ("timm",), "onnxruntime": ("onnxruntime", "onnxruntime-gpu")}


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def _version(package: str) -> str | None:
    """The installed version of ``package`` (without importing it), or None when it is not installed."""
    for dist in _DISTRIBUTIONS.get(package, (package,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def describe_environment(threads: int | None = None) -> dict[str, Any]:
    """``{python, platform, cpu, logical_cores, threads, torch, timm, numpy[, onnxruntime]}`` of this process.

    ``threads`` is the number of threads the measurement used (default: PyTorch's intra-op
    threads now).  ``onnxruntime`` is present only when it is installed.
    """
    env: dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu_model(),
        "logical_cores": os.cpu_count(), "threads": int(threads) if threads is not None else torch.get_num_threads(),
        "torch": torch.__version__, "timm": _version("timm"), "numpy": np.__version__,
    }
    onnxruntime = _version("onnxruntime")
    if onnxruntime is not None:
        env["onnxruntime"] = onnxruntime
    return env


def machine_description(threads: int = 2) -> dict[str, Any]:
    """What a timing depends on: :func:`describe_environment` and PyTorch's quantized engine (int8 kernels)."""
    return {**describe_environment(threads), "quantized_engine": torch.backends.quantized.engine}

"""What a result depends on besides its settings: the machine and the library versions.

Every record the library writes (``metrics.json``, the benchmarks' JSON) carries
:func:`describe_environment`, so a figure can be traced to the CPU, thread count and versions
that produced it.

Taught in: ``notebooks/08_edge_deployment.ipynb`` (timings depend on the machine).
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe_environment(threads: int | None = None) -> dict[str, Any]:
    """CPU model, cores, the threads used, the GPU if any, and the versions of Python, torch, timm, numpy
    and onnxruntime (when installed)."""
    out: dict[str, Any] = {"cpu": cpu_model(), "logical_cores": os.cpu_count(),
                           "threads": int(threads if threads is not None else torch.get_num_threads()),
                           "platform": platform.platform(), "python": platform.python_version(),
                           "torch": torch.__version__, "timm": _version("timm"), "numpy": np.__version__,
                           "quantized_engine": torch.backends.quantized.engine}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    onnxruntime = _version("onnxruntime")
    if onnxruntime:
        out["onnxruntime"] = onnxruntime
    return out


def machine_description(threads: int) -> dict[str, Any]:
    """:func:`describe_environment` for a timing run with ``threads`` intra-op threads."""
    return describe_environment(threads)

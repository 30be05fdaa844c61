"""What deployment refuses with: :class:`DeploymentError`, and the check that its packages are installed.

Shared by every module of :mod:`hfr_tutorial.deploy`.  Taught in ``notebooks/08_edge_deployment.ipynb``.
"""
from __future__ import annotations

import importlib.util

DEPLOY_PACKAGES: tuple[str, ...] = ("onnx", "onnxruntime", "onnxscript")
"""The deploy extra: checking and quantizing (onnx, onnxruntime) and torch's dynamo exporter (onnxscript)."""


class DeploymentError(ValueError):
    """An exported or quantized model that cannot be trusted: unreadable, changed, or disagreeing.

    A ``ValueError``, so the command line reports it as an error message (exit code 2).
    """


def require_deploy_packages() -> None:
    """Fail early, naming the fix, when onnx, onnxruntime or onnxscript is not installed."""
    missing = [name for name in DEPLOY_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"Edge deployment needs {', '.join(missing)}, which is not installed: "
                          "pip install -c constraints.txt -e '.[deploy]' (the dev extra includes it).")

"""Deployable forms of a model: a PyTorch module or an ONNX file behind one interface, and embedding faces with it.

A :class:`Form` runs a float32 batch of normalised faces and knows its size on disk, so the
agreement check (:mod:`~hfr_tutorial.deploy.agreement`) and the timings
(:mod:`~hfr_tutorial.deploy.timing`) treat PyTorch float, PyTorch int8 and the ONNX files alike.

Taught in ``notebooks/08_edge_deployment.ipynb``.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hfr_tutorial.deploy.errors import DeploymentError
from hfr_tutorial.deploy.export import DEFAULT_THREADS, OUTPUT_NAME, check_image_size, file_size, onnx_session
from hfr_tutorial.evaluate import l2_normalize
from hfr_tutorial.models.edgeface import images_to_tensor


def torch_file_size(model: nn.Module, path: str | os.PathLike | None = None) -> int:
    """Bytes of ``torch.save(model.state_dict())``, written to ``path`` when given (else measured in memory)."""
    if path is not None:
        torch.save(model.state_dict(), path)
        return file_size(path)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


@dataclass
class Form:
    """One deployable form of a model: how to run it and what it weighs on disk.

    ``run`` maps a float32 batch (B, 3, S, S) of normalised faces to raw (B, D) embeddings.
    """

    name: str
    run: Callable[[np.ndarray], np.ndarray]
    size_bytes: int
    image_size: int
    path: Path | None = None
    kind: str = "torch"  # "torch" or "onnx"


def torch_form(model: nn.Module, name: str, *, image_size: int, path: str | os.PathLike | None = None) -> Form:
    """A PyTorch model as a :class:`Form` (CPU, eval, inference mode); its size is that of its state dict."""
    net = model.cpu().eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return Form(name, run, torch_file_size(net, path), check_image_size(image_size),
                Path(path) if path is not None else None, "torch")


def onnx_form(path: str | os.PathLike, name: str, *, threads: int = DEFAULT_THREADS) -> Form:
    """An ONNX file as a :class:`Form`, run by onnxruntime with ``threads`` threads (after :func:`load_onnx`)."""
    session = onnx_session(path, threads=threads)
    input_name = session.get_inputs()[0].name
    image_size = int(session.get_inputs()[0].shape[2])

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return Form(name, run, file_size(path), image_size, Path(path), "onnx")


def faces_to_input(images: np.ndarray, image_size: int | None = None) -> np.ndarray:
    """uint8 faces (N, H, W, 3) -> the models' float32 input (N, 3, H, W) (``images_to_tensor``)."""
    images = np.asarray(images)
    if image_size is not None and images.shape[1:3] != (image_size, image_size):
        raise DeploymentError(f"the model takes {image_size}x{image_size} faces, got {images.shape[1]}x{images.shape[2]}: "
                              f"resize the faces, or export with image_size={images.shape[1]}.")
    return images_to_tensor(images).numpy()


def embed_form(form: Form, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """L2-normalised (N, D) embeddings of uint8 faces (N, S, S, 3) under one form, batch by batch."""
    if len(images) == 0:
        raise ValueError(f"embed_form({form.name!r}): images is empty; pass uint8 faces (N, S, S, 3) with N >= 1.")
    out = [form.run(faces_to_input(images[i:i + batch_size], form.image_size))
           for i in range(0, len(images), batch_size)]
    emb = np.concatenate(out).astype(np.float32)
    if not np.isfinite(emb).all():
        raise DeploymentError(f"{form.name}: output {OUTPUT_NAME!r} holds NaN or infinite values.")
    return l2_normalize(emb)

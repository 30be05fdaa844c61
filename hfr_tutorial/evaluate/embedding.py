"""Embeddings: a model and images in, unit-length (N, D) embeddings out (:func:`embed`).

Taught in ``notebooks/01_baseline_rgb_model.ipynb``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from ..models.edgeface import images_to_tensor


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """Divide each row by its Euclidean norm (rows of zeros stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, eps)


def _default_transform() -> Callable[[np.ndarray], Any]:
    # Imported lazily: evaluation must not depend on the model code unless it embeds images.
    return images_to_tensor


def _iter_batches(source: Any, batch_size: int) -> tuple[Iterable[Any], int | None]:
    """Yield raw batches of ``source`` and their number (None when unknown)."""
    images = getattr(source, "images", None)
    if images is None and isinstance(source, np.ndarray):
        images = source
    if images is None and isinstance(source, torch.Tensor):
        images = source
    if images is not None:
        n = len(images)
        starts = range(0, n, batch_size)
        return (images[s : s + batch_size] for s in starts), len(starts)
    if not isinstance(source, Iterable):
        raise ValueError(
            f"embed() got a {type(source).__name__}: pass a FaceSet (anything with .images), a "
            "uint8 array (N,H,W,3), a float tensor (N,3,H,W) or an iterable of such batches "
            "(a DataLoader yielding x or (x, y))."
        )
    try:
        n_batches = len(source)  # type: ignore[arg-type]
    except TypeError:
        n_batches = None
    return iter(source), n_batches


def _to_input(batch: Any, transform: Callable[[np.ndarray], Any] | None) -> torch.Tensor:
    """Turn one raw batch (x, (x, y), uint8 images or a float tensor) into model input."""
    if isinstance(batch, (tuple, list)) and not isinstance(batch, np.ndarray):
        if not batch:
            raise ValueError("embed() got an empty batch tuple; a loader must yield x or (x, y).")
        batch = batch[0]
    if isinstance(batch, torch.Tensor) and batch.dtype.is_floating_point:
        if batch.ndim != 4 or batch.shape[1] not in (1, 3):
            raise ValueError(
                f"embed() got a float tensor of shape {tuple(batch.shape)}; expected model input "
                "(B,3,H,W). Pass uint8 images (B,H,W,3) to have them transformed instead."
            )
        return batch
    array = batch.numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
    if array.ndim not in (3, 4):
        raise ValueError(
            f"embed() got images of shape {array.shape}; expected uint8 (B,H,W,3) images (or "
            "grayscale (B,H,W)) or a float tensor (B,3,H,W)."
        )
    transform = transform or _default_transform()
    out = transform(array)
    return out if isinstance(out, torch.Tensor) else torch.as_tensor(out)


def _model_device(model: Any) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def embed(
    model: torch.nn.Module,
    faceset_or_loader: Any,
    *,
    batch_size: int = 256,
    flip_tta: bool = False,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    transform: Callable[[np.ndarray], Any] | None = None,
) -> np.ndarray:
    """Embed every image of a FaceSet (or loader) with ``model``: (N, D) float32, unit rows.

    ``faceset_or_loader`` is a FaceSet (its ``.images``), a uint8 image array (N,H,W,3), a float
    tensor (N,3,H,W) or an iterable of batches (``x`` or ``(x, y)``).  uint8 images go through
    ``transform`` (default: EdgeFace's ``images_to_tensor``: ToTensor, then mean 0.5 / std 0.5).
    Float tensors are taken as ready model input: a loader that yields ToTensor images in [0, 1]
    (such as ``FaceSet.loader``) still needs the mean/std step, so prefer passing the FaceSet.

    The model runs in ``torch.inference_mode`` and ``eval()`` mode (BatchNorm/Dropout frozen), and
    gets its previous train/eval mode and device back afterwards.  With ``flip_tta`` the embedding
    of the horizontally flipped face is added before normalising, the usual face-recognition
    test-time augmentation.  ``device`` defaults to where the model already is; ``progress``
    (None: automatic) shows a tqdm bar when there are more than a few batches.

    Taught in ``notebooks/01_baseline_rgb_model.ipynb``.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    batches, n_batches = _iter_batches(faceset_or_loader, batch_size)
    original_device = _model_device(model)
    target = torch.device(device) if device is not None else original_device
    show = progress if progress is not None else (n_batches is None or n_batches > 4)
    was_training = model.training
    outputs: list[np.ndarray] = []
    try:
        model.eval()
        if target != original_device:
            model.to(target)
        with torch.inference_mode():
            for batch in tqdm(batches, total=n_batches, desc="embed", disable=not show, leave=False):
                x = _to_input(batch, transform).to(target, non_blocking=True)
                if x.dtype == torch.float64 or not x.dtype.is_floating_point:
                    x = x.float()
                y = model(x)
                if flip_tta:
                    y = y + model(torch.flip(x, dims=[3]))
                if y.ndim != 2:
                    raise ValueError(
                        f"The model returned shape {tuple(y.shape)}; embed() needs (B, D) embeddings."
                    )
                outputs.append(y.float().cpu().numpy())
    finally:
        if target != original_device:
            model.to(original_device)
        model.train(was_training)
    if not outputs:
        raise ValueError("embed() got no images: the FaceSet or loader is empty.")
    emb = np.concatenate(outputs, axis=0)
    if not np.isfinite(emb).all():
        raise ValueError(
            "The model produced NaN or infinite embeddings; check its weights (a diverged training "
            "run?) and that the images were normalised the way the model expects."
        )
    return l2_normalize(emb)


def _check_embeddings(embeddings: Any) -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (N, D), got shape {emb.shape}.")
    if not np.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or infinite values; check the model that made them.")
    return emb

"""Checks of embeddings computed by hand (notebook 01): shape, unit rows, and equal to the library's ``embed``.

:func:`check_embed_function` runs the student's ``my_embed(model, images)`` on the images the notebook
shows and on hidden ones (noise images of the same size, a batch of one), with
:func:`hfr_tutorial.evaluate.embed` recorded: a function that calls it fails.  When the embeddings
differ, it names the common wrong input transform that reproduces them ([0, 1] pixels, 0-255,
ImageNet statistics, BGR).

Taught in: ``notebooks/01_baseline_rgb_model.ipynb`` (exercise 1).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .guard import Case, Comparison, check_function
from .feedback import as_array, verdict

EMBEDDING_MIN_COSINE = 0.9999
"""Smallest row cosine to the reference embeddings that counts as the same embedding.

The same model, the same images and the right input give cosines above 0.999999 on a CPU and
above 0.9999 with GPU TF32 arithmetic or another batch size. A ``[0, 1]`` input instead of EdgeFace's
``[-1, 1]`` gives about 0.93 on the official EdgeFace-XXS weights, and a 0-255 or ImageNet-normalised
input about 0.05."""


def _wrong_inputs() -> dict[str, Callable[[np.ndarray], torch.Tensor]]:
    """Common wrong input transforms of uint8 (B, H, W, 3) images, to name the mistake."""
    def chw(images: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float()

    imagenet_mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    imagenet_std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return {
        "pixels in [0, 1] (ToTensor without Normalize(0.5, 0.5))": lambda im: chw(im) / 255,
        "raw 0-255 pixels (no scaling at all)": chw,
        "ImageNet mean/std (EdgeFace uses mean 0.5, std 0.5)":
            lambda im: (chw(im) / 255 - imagenet_mean) / imagenet_std,
        "BGR channel order (the images are RGB)":
            lambda im: (chw(np.ascontiguousarray(np.asarray(im)[..., ::-1])) / 255 - 0.5) / 0.5,
    }


def _diagnose(emb: np.ndarray, model: torch.nn.Module, images: Any) -> str:
    """Name the wrong input transform that reproduces ``emb``, if one does."""
    from hfr_tutorial.evaluate import embed

    array = np.asarray(images)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        return ""
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    for name, transform in _wrong_inputs().items():
        wrong = embed(model, array, transform=transform, progress=False)
        if np.min(np.sum(unit * wrong, axis=1)) >= EMBEDDING_MIN_COSINE:
            return f"your embeddings are what the model gives for {name}"
    return ""


def _compare(emb_like: Any, n: int, dim: int, reference: np.ndarray | None, model: torch.nn.Module | None,
             images: Any, min_cosine: float) -> Comparison:
    """Shape, finiteness, unit rows, then the cosine of every row to the reference."""
    if emb_like is None:
        return Comparison(False, "the embeddings are None: did the cell (or the function) return them?")
    try:
        emb = as_array(emb_like)
    except (TypeError, ValueError):
        return Comparison(False, f"a {type(emb_like).__name__}, not an array of embeddings")
    if emb.shape != (n, dim):
        hint = "one row per image, one column per embedding dimension"
        if emb.shape == (dim, n):
            hint = "transposed: rows must be images (use .T, or normalise with dim=1)"
        elif emb.ndim == 4:
            hint = "these look like images or feature maps: pass them through the model"
        return Comparison(False, f"the embeddings have shape {emb.shape}; there are {n} images", hint)
    if not np.isfinite(emb).all():
        return Comparison(False, "NaN or infinite values", "uint8 images must become float before the model")
    norms = np.linalg.norm(emb, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-4):
        hint = "L2-normalise each row: torch.nn.functional.normalize(x, dim=1)"
        if np.allclose(np.linalg.norm(emb, axis=0), 1.0, atol=1e-4):
            hint = "you normalised the columns (dim=0); normalise each row (dim=1)"
        return Comparison(False, "the rows are not unit length", hint)
    if reference is None:
        return Comparison(True)
    ref = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    cos = np.sum(emb / norms[:, None] * ref, axis=1)
    if cos.min() >= min_cosine:
        return Comparison(True)
    hint = _diagnose(emb, model, images) if model is not None and images is not None else ""
    return Comparison(False, f"the embeddings differ from the library's (smallest row cosine {cos.min():.4f}, "
                             f"at least {min_cosine} needed)",
                      hint or ("the input must be images_to_tensor(images) (ToTensor, then mean 0.5 / std 0.5: "
                               "pixels in [-1, 1]), the model in eval() mode, the same images in the same order"))


def check_embeddings(embeddings: Any, n: int, dim: int = 512, *, reference: Any = None,
                     model: torch.nn.Module | None = None, images: Any = None,
                     min_cosine: float = EMBEDDING_MIN_COSINE) -> bool:
    """Embeddings are ``(n, dim)`` unit-length rows **equal to the reference embeddings**.

    The reference is ``reference`` (an ``(n, dim)`` array) or, given ``model`` and ``images``, the
    library's ``embed(model, images)``.  Each row must have cosine >= ``min_cosine`` to its reference
    row (see :data:`EMBEDDING_MIN_COSINE`).  Without either, only the shape and the norms are checked,
    and the verdict says so.  A notebook exercise uses :func:`check_embed_function` instead: an array
    can come from the library's ``embed`` itself, a function is run with that call recorded.
    """
    if reference is None and model is not None and images is not None:
        from hfr_tutorial.evaluate import embed

        reference = embed(model, images, progress=False)
    ref = None if reference is None else as_array(reference)
    if ref is not None and ref.shape != (n, dim):
        raise ValueError(f"check_embeddings: the reference has shape {ref.shape}, expected ({n}, {dim}); "
                         "the notebook must pass the library's embeddings of the same images.")
    result = _compare(embeddings, n, dim, ref, model, images, min_cosine)
    if not result.ok:
        return verdict(False, "embeddings", problem=result.problem, hint=result.hint)
    if ref is None:
        return verdict(True, "embeddings", success=f"{n} unit-length {dim}-d rows",
                       note="only shape and norms were checked; pass reference=embed(model, images) "
                            "(or model= and images=) to compare the values")
    return verdict(True, "embeddings match the library's embed()", success=f"every row cosine >= {min_cosine}")


def _hidden_images(images: np.ndarray, seed: int = 11) -> list[tuple[str, np.ndarray]]:
    """Images the student never sees: noise and smooth gradients of the shown images' size, and one image alone."""
    rng = np.random.default_rng(seed)
    h, w = images.shape[1:3]
    noise = rng.integers(0, 256, size=(3, h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    ramps = np.stack([np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)),
                                ((xx + yy) * 127 // max(h + w - 2, 1)) + k * 40], axis=-1) for k in range(2)])
    ramps = np.clip(ramps, 0, 255).astype(np.uint8)
    return [("3 hidden noise images", noise), ("2 hidden gradient images", ramps),
            ("one hidden image alone (a batch of 1)", noise[1:2])]


def check_embed_function(fn: Any, model: torch.nn.Module, images: Any, *, dim: int | None = None,
                         min_cosine: float = EMBEDDING_MIN_COSINE) -> bool:
    """``fn(model, images)`` returns the library's ``embed(model, images)``, on the shown and on hidden images.

    ``images`` are the uint8 ``(N, H, W, 3)`` faces the notebook shows; the check adds noise and
    gradient images of the same size and a batch of one.  The student's function runs with
    :func:`hfr_tutorial.evaluate.embed` and :func:`hfr_tutorial.metrics.evaluate_model` recorded: a
    function that calls them fails.  It gets a copy of the model, so it cannot change the notebook's.
    """
    from hfr_tutorial.evaluate import embed
    from hfr_tutorial.metrics import evaluate_model

    shown = np.asarray(images)
    if shown.dtype != np.uint8 or shown.ndim != 4 or shown.shape[-1] != 3:
        raise ValueError(f"check_embed_function: images must be uint8 (N, H, W, 3) faces, got {shown.dtype} "
                         f"{shown.shape}; pass the images the exercise embeds.")
    cases = [Case(f"the {len(shown)} images shown", (model, shown), hidden=False)]
    cases += [Case(label, (model, imgs)) for label, imgs in _hidden_images(shown)]

    def compare(result: Any, ref: np.ndarray, case: Case, args: tuple) -> Comparison:
        return _compare(result, len(case.args[1]), ref.shape[1] if dim is None else dim, ref, model,
                        case.args[1], min_cosine)

    return check_function(fn, cases, what="your embedding function gives the library's embeddings",
                          reference=lambda case: embed(model, case.args[1], progress=False), compare=compare,
                          forbidden={"embed": embed, "evaluate_model": evaluate_model},
                          signature="my_embed(model, images)",
                          forbidden_hint="convert the images (images_to_tensor), run the model in eval mode without "
                                         "gradients and L2-normalise the rows yourself")

"""Self-checks for the notebooks' exercises: call one after your solution to see if it is right.

Each check raises an ``AssertionError`` whose message says what is wrong and gives a hint, and
prints a short confirmation when the answer passes.  They are tested against the solved
notebooks (the student copies replace the solutions with ``NotImplementedError``).

Taught in: the "Exercises" section of every notebook.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _ok(message: str) -> None:
    print(f"Correct: {message}")


def check_embeddings(embeddings: Any, n: int, dim: int = 512) -> None:
    """Embeddings are an (n, dim) float array of unit-length rows."""
    emb = np.asarray(embeddings.detach().cpu() if isinstance(embeddings, torch.Tensor) else embeddings)
    assert emb.shape == (n, dim), f"expected shape ({n}, {dim}), got {emb.shape}: one row per image"
    norms = np.linalg.norm(emb, axis=1)
    assert np.allclose(norms, 1, atol=1e-4), (f"rows must have unit length (norms {norms.min():.3f}..{norms.max():.3f}): "
                                              "did you L2-normalise?")
    _ok(f"{n} unit-length {dim}-d embeddings")


def check_rank1(value: float, similarity: np.ndarray, gallery_labels: np.ndarray, probe_labels: np.ndarray) -> None:
    """Rank-1 equals the share of probes whose most similar gallery entry has their identity."""
    expected = float(np.mean(np.asarray(gallery_labels)[np.argmax(similarity, axis=1)] == np.asarray(probe_labels)))
    assert abs(float(value) - expected) < 1e-6, (f"rank-1 should be {expected:.4f}, got {float(value):.4f}: for each "
                                                 "probe (row), take the gallery column with the highest similarity")
    _ok(f"rank-1 = {expected:.4f}")


def check_trainable(model: torch.nn.Module, expected: int, what: str = "trainable parameters") -> None:
    """The model has exactly ``expected`` parameters with ``requires_grad``."""
    got = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert got == expected, (f"{what}: expected {expected:,}, got {got:,}. Freeze everything first "
                             "(requires_grad_(False)), then unfreeze only the chosen parameters")
    _ok(f"{got:,} {what}")


def check_loss_close(value: torch.Tensor | float, reference: torch.Tensor | float, what: str = "loss") -> None:
    """A loss computed by hand matches the library's value."""
    v, r = float(value), float(reference)
    assert abs(v - r) <= 1e-5 * max(1.0, abs(r)), f"{what}: yours {v:.6f}, reference {r:.6f}"
    _ok(f"{what} = {v:.6f} matches the reference")


def check_in_range(value: float, low: float, high: float, what: str) -> None:
    """A measured figure falls in the range the notebook states."""
    assert low <= float(value) <= high, f"{what} = {float(value):.4f} is outside [{low}, {high}]"
    _ok(f"{what} = {float(value):.4f} in [{low}, {high}]")

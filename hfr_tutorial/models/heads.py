"""Margin heads (CosFace, ArcFace) for training a face embedding with identity labels.

A margin head holds one learnable class centre per training identity and turns an embedding
into logits ``s * cos(theta_c)``, making the target class harder by a margin: CosFace subtracts
``m`` from the target cosine (Wang et al., 2018), ArcFace adds ``m`` to the target angle (Deng
et al., 2019).  They train the RGB baseline (and the joint oracle); the heads are thrown away
afterwards, only the embedding network is kept.

Taught in: ``notebooks/01_baseline_rgb_model.ipynb``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MarginHead(nn.Module):
    """Base class: normalised class centres and the cosine logits; subclasses add the margin."""

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 32.0, margin: float = 0.35):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a margin head needs at least 2 identities, got {num_classes}")
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.weight, std=0.01)
        self.scale, self.margin = scale, margin

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.normalize(embeddings, dim=1) @ F.normalize(self.weight, dim=1).T

    def margin_cosine(self, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, num_classes); with ``labels`` the margin is applied to the target class."""
        cosine = self.cosine(embeddings)
        if labels is None:
            return self.scale * cosine
        return self.scale * self.margin_cosine(cosine, labels)


class CosFaceHead(MarginHead):
    """CosFace (large margin cosine loss): target logit ``s * (cos(theta) - m)``."""

    def margin_cosine(self, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cosine - self.margin * F.one_hot(labels, cosine.shape[1]).to(cosine.dtype)


class ArcFaceHead(MarginHead):
    """ArcFace (additive angular margin): target logit ``s * cos(theta + m)``.

    Where ``theta + m`` would pass pi the usual CosFace-like fallback keeps the logit monotonic.
    """

    def __init__(self, embedding_dim: int, num_classes: int, scale: float = 64.0, margin: float = 0.5):
        super().__init__(embedding_dim, num_classes, scale, margin)

    def margin_cosine(self, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = cosine.clamp(-1 + 1e-7, 1 - 1e-7)
        sine = torch.sqrt(1 - cosine**2)
        target = cosine * math.cos(self.margin) - sine * math.sin(self.margin)
        threshold, fallback = math.cos(math.pi - self.margin), math.sin(math.pi - self.margin) * self.margin
        target = torch.where(cosine > threshold, target, cosine - fallback)
        one_hot = F.one_hot(labels, cosine.shape[1]).bool()
        return torch.where(one_hot, target, cosine)


def make_head(name: str, embedding_dim: int, num_classes: int, scale: float, margin: float) -> MarginHead:
    """A margin head by name: ``"cosface"`` or ``"arcface"``."""
    heads = {"cosface": CosFaceHead, "arcface": ArcFaceHead}
    if name not in heads:
        raise ValueError(f"Unknown margin head {name!r}; choose one of {sorted(heads)}.")
    return heads[name](embedding_dim, num_classes, scale=scale, margin=margin)

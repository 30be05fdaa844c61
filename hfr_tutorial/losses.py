"""Losses of the method: cross-modal contrastive alignment and self-distillation.

Every loss is a small ``nn.Module`` taking embeddings (not images) with an explicit, documented
``reduction`` (``"mean"``, ``"sum"`` or ``"none"``), after pytorch-metric-learning's style.
Embeddings need not be normalised: each loss normalises where its formula uses cosines.

* :class:`PairwiseContrastiveLoss` -- xEdgeFace's form over all VIS x other-modality pairs of a
  batch: ``y * (1 - cos) + (1 - y) * max(0, cos - m)`` with ``y = 1`` for the same identity.
* :class:`CrossModalInfoNCE` -- the alternative the notebooks compare: each NIR/thermal
  embedding must pick its own identity's VIS embedding among the batch (softmax over cosines
  divided by a temperature), symmetrised over both directions.
* :class:`MultiPositiveInfoNCE` -- InfoNCE whose positives are decided by the labels: every image of
  the same identity in the batch is a positive (not a negative), both directions averaged
  (``"multipositive"`` in a run's config).
* :class:`SelfDistillationLoss` -- keeps the student's VIS embeddings where the frozen RGB
  teacher puts them (cosine distance or MSE), weighted by ``weight`` (lambda).
* :class:`MethodLoss` -- the method's objective in one module: the contrastive term(s) plus the
  distillation term, returning every term by name.  :func:`make_method_loss` builds it from the
  names a run gives (``"infonce"``, ``"pairwise"``, ``"multipositive"``, ``"pairwise+infonce"``),
  the one place a loss is assembled (the training step, the automatic layer selection and the
  benchmarks all call it).

One signature for every contrastive loss: ``forward(vis, other, labels)`` with two ``(B, D)``
batches and the identity of each row (``labels`` may be ``None`` for a loss that needs only the
row pairing).  A batch of one pair has no negative: every contrastive loss refuses it.

Taught in: ``notebooks/03_contrastive_alignment.ipynb`` and ``notebooks/04_self_distillation.ipynb``.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_pair(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"{what}: expected two (B, D) embedding batches with the same D, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def _check_negatives(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    """Refuse a batch of one pair: it holds no negative, so a contrastive loss would be 0 and teach nothing."""
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError(f"{what}: a batch of {a.shape[0]} VIS and {b.shape[0]} other embeddings holds no negative "
                         "pair, so the contrastive loss would be 0 (the run would be distillation only). Use a batch "
                         "of at least 2 identities (--batch-size 2 or more).")


class PairwiseContrastiveLoss(nn.Module):
    """xEdgeFace's cross-modal contrastive loss with a margin for negatives.

    For VIS embeddings ``v_i`` (labels ``a_i``) and NIR/thermal embeddings ``t_j`` (labels
    ``b_j``), every pair (i, j) contributes ``1 - cos(v_i, t_j)`` if ``a_i == b_j`` (pull
    together) and ``max(0, cos(v_i, t_j) - margin)`` otherwise (push apart until the cosine is
    below the margin).

    Reduction: ``"mean"`` averages positive-pair terms and negative-pair terms separately and
    adds the two means (so the few positives are not drowned by the many negatives; with
    ``balanced=False`` it is the plain mean over all pairs); ``"sum"`` sums every pair's term;
    ``"none"`` returns the (B_vis, B_other) matrix of terms.
    """

    def __init__(self, margin: float = 0.5, reduction: str = "mean", balanced: bool = True):
        super().__init__()
        _reduce(torch.zeros(1), reduction)
        self.margin, self.reduction, self.balanced = margin, reduction, balanced

    def forward(self, vis: torch.Tensor, other: torch.Tensor, vis_labels: torch.Tensor,
                other_labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_pair(vis, other, "PairwiseContrastiveLoss")
        _check_negatives(vis, other, "PairwiseContrastiveLoss")
        other_labels = vis_labels if other_labels is None else other_labels
        cos = F.normalize(vis, dim=1) @ F.normalize(other, dim=1).T
        same = (vis_labels[:, None] == other_labels[None, :]).to(cos.dtype)
        terms = same * (1 - cos) + (1 - same) * F.relu(cos - self.margin)
        if self.reduction == "mean" and self.balanced:
            pos = (terms * same).sum() / same.sum().clamp_min(1)
            neg = (terms * (1 - same)).sum() / (1 - same).sum().clamp_min(1)
            return pos + neg
        return _reduce(terms, self.reduction)


class CrossModalInfoNCE(nn.Module):
    """InfoNCE between VIS and NIR/thermal embeddings of a batch of pairs.

    Row ``i`` of ``vis`` and row ``i`` of ``other`` show the same identity; the other rows of
    the batch are its negatives (the pair loader puts each identity in a batch at most once).
    Logits are cosines divided by ``temperature``; the loss is the cross-entropy of picking the
    right partner, averaged over both directions (other->VIS and VIS->other) when
    ``symmetric`` is true.

    Reduction: ``"mean"`` averages over pairs, ``"sum"`` sums, ``"none"`` returns one value per
    pair (the mean of its two directions when symmetric).
    """

    def __init__(self, temperature: float = 0.07, symmetric: bool = True, reduction: str = "mean"):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        _reduce(torch.zeros(1), reduction)
        self.temperature, self.symmetric, self.reduction = temperature, symmetric, reduction

    def forward(self, vis: torch.Tensor, other: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``labels`` is accepted for the common signature and not read: row ``i`` of each batch is the pair."""
        _check_pair(vis, other, "CrossModalInfoNCE")
        _check_negatives(vis, other, "CrossModalInfoNCE")
        if vis.shape[0] != other.shape[0]:
            raise ValueError(f"CrossModalInfoNCE needs paired rows, got {vis.shape[0]} VIS and {other.shape[0]} other")
        logits = F.normalize(other, dim=1) @ F.normalize(vis, dim=1).T / self.temperature
        target = torch.arange(logits.shape[0], device=logits.device)
        per_pair = F.cross_entropy(logits, target, reduction="none")
        if self.symmetric:
            per_pair = 0.5 * (per_pair + F.cross_entropy(logits.T, target, reduction="none"))
        return _reduce(per_pair, self.reduction)


class SelfDistillationLoss(nn.Module):
    """Keep the student's VIS embeddings close to the frozen teacher's: ``weight * distance``.

    ``kind="cosine"``: distance ``1 - cos(student_i, teacher_i)`` (scale-free, what face
    recognition compares); ``kind="mse"``: mean squared difference of the L2-normalised
    embeddings (per row, averaged over dimensions).  The teacher is detached: no gradient flows
    into it.  Reduction over rows: ``"mean"``, ``"sum"`` or ``"none"``; ``weight`` (lambda)
    multiplies the result.
    """

    def __init__(self, weight: float = 1.0, kind: str = "cosine", reduction: str = "mean"):
        super().__init__()
        if kind not in ("cosine", "mse"):
            raise ValueError(f"kind must be 'cosine' or 'mse', got {kind!r}")
        _reduce(torch.zeros(1), reduction)
        self.weight, self.kind, self.reduction = weight, kind, reduction

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        _check_pair(student, teacher, "SelfDistillationLoss")
        s, t = F.normalize(student, dim=1), F.normalize(teacher.detach(), dim=1)
        if self.kind == "cosine":
            per_row = 1 - (s * t).sum(dim=1)
        else:
            per_row = ((s - t) ** 2).mean(dim=1)
        return self.weight * _reduce(per_row, self.reduction)


CONTRASTIVE_LOSSES: dict[str, Callable[[float, float], nn.Module]] = {
    "infonce": lambda temperature, margin: CrossModalInfoNCE(temperature=temperature),
    "pairwise": lambda temperature, margin: PairwiseContrastiveLoss(margin=margin),
    "multipositive": lambda temperature, margin: MultiPositiveInfoNCE(temperature=temperature),
}
"""The contrastive losses a run may name, each built from (temperature, margin): add one here to compare it."""


def make_contrastive_loss(name: str, *, temperature: float = 0.07, margin: float = 0.5) -> nn.Module:
    """The contrastive loss named in a config (a key of :data:`CONTRASTIVE_LOSSES`)."""
    if name not in CONTRASTIVE_LOSSES:
        raise ValueError(f"Unknown contrastive loss {name!r}; choose one of {sorted(CONTRASTIVE_LOSSES)} (or several "
                         "joined by '+').")
    return CONTRASTIVE_LOSSES[name](temperature, margin)


class MethodLoss(nn.Module):
    """The method's objective: the sum of the contrastive terms plus the self-distillation term.

    ``forward(vis, other, labels, teacher_vis)`` takes the student's VIS and NIR/thermal embeddings
    of a batch of pairs, the identity of each pair and the frozen teacher's embeddings of the same
    VIS images (needed only when ``distill`` is set), and returns every term by name plus
    ``"loss"``, their sum (what the optimiser minimises; the other entries are logged).  The
    distillation term carries its own weight (lambda).  Taught in ``notebooks/04_self_distillation.ipynb``.
    """

    def __init__(self, contrastive: Mapping[str, nn.Module], distill: SelfDistillationLoss | None = None):
        super().__init__()
        if not contrastive:
            raise ValueError("MethodLoss needs at least one contrastive term (e.g. {'infonce': CrossModalInfoNCE()}).")
        self.contrastive = nn.ModuleDict(dict(contrastive))
        self.distill = distill

    def forward(self, vis: torch.Tensor, other: torch.Tensor, labels: torch.Tensor | None,
                teacher_vis: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=vis.device)
        for name, loss_fn in self.contrastive.items():
            out[name] = loss_fn(vis, other, labels)
            total = total + out[name]
        if self.distill is not None:
            if teacher_vis is None:
                raise ValueError("MethodLoss with self-distillation needs teacher_vis, the frozen teacher's embeddings "
                                 "of the batch's VIS images.")
            out["distill"] = self.distill(vis, teacher_vis)
            total = total + out["distill"]
        out["loss"] = total
        return out


def make_method_loss(contrastive: str, *, temperature: float = 0.07, margin: float = 0.5,
                     distill_weight: float = 0.0, distill_kind: str = "cosine") -> MethodLoss:
    """The :class:`MethodLoss` of a run: ``contrastive`` names one loss or several joined by ``+``
    (``"pairwise+infonce"``); ``distill_weight`` 0 leaves distillation out."""
    terms = {part: make_contrastive_loss(part, temperature=temperature, margin=margin) for part in contrastive.split("+")}
    distill = SelfDistillationLoss(weight=distill_weight, kind=distill_kind) if distill_weight > 0 else None
    return MethodLoss(terms, distill)


class MultiPositiveInfoNCE(nn.Module):
    r"""Multi-positive, symmetric InfoNCE: every image of the same identity in the batch is a positive.

    George, Unal & Marcel (2026), arXiv 2609.10303, pair this loss with a cosine-preservation term
    to a frozen teacher (our :class:`SelfDistillationLoss`).  :class:`CrossModalInfoNCE` assumes
    each identity appears once per batch: a second image of the same person is then treated as a
    *negative* and pushed away, which is wrong.  Here the labels decide: with cosines
    :math:`s_{ij} = \cos(t_i, v_j) / \tau` between row ``i`` of ``other`` (:math:`t`) and row
    ``j`` of ``vis`` (:math:`v`), and :math:`P(i) = \{j : y_j = y_i\}` (never empty: row ``i``
    itself is in it), the other->VIS direction is

    .. math::
        \ell^{t \to v}_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
            \log \frac{\exp s_{ip}}{\sum_{k} \exp s_{ik}},

    the VIS->other direction :math:`\ell^{v \to t}_i` is the same with the roles swapped (rows of
    ``vis`` as anchors, softmax over ``other``), and the loss of row ``i`` is
    :math:`\tfrac12(\ell^{t \to v}_i + \ell^{v \to t}_i)`.  The average over positives sits
    *outside* the log (the "L_out" form of Khosla et al., 2020, Supervised Contrastive Learning,
    which they found trains better than the sum inside the log); the paper's own normalisation
    could not be checked here.  With all labels distinct it is exactly :class:`CrossModalInfoNCE`.

    Args:
        temperature: :math:`\tau`, the softmax temperature (> 0).
        reduction: ``"mean"`` averages the per-row losses, ``"sum"`` sums them, ``"none"`` returns
            the (B,) per-row losses (each the mean of its two directions).

    ``forward(vis, other, labels)``: ``vis`` and ``other`` are (B, D) embeddings (not necessarily
    normalised), ``labels`` the (B,) identity of each row, the same for both batches (row ``i``
    of ``vis`` and of ``other`` show the same person).

    Taught in ``notebooks/03_contrastive_alignment.ipynb`` (beside InfoNCE and the pairwise loss).
    """

    def __init__(self, temperature: float = 0.07, reduction: str = "mean"):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        _reduce(torch.zeros(1), reduction)
        self.temperature, self.reduction = temperature, reduction

    def forward(self, vis: torch.Tensor, other: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        _check_pair(vis, other, "MultiPositiveInfoNCE")
        _check_negatives(vis, other, "MultiPositiveInfoNCE")
        if labels is None:
            raise ValueError("MultiPositiveInfoNCE needs labels, the (B,) identity of each row: the positives of a "
                             "row are the rows of the same identity. Pass the batch's identity labels.")
        n = vis.shape[0]
        if other.shape[0] != n:
            raise ValueError(f"MultiPositiveInfoNCE needs paired rows, got {n} VIS and {other.shape[0]} other")
        labels = torch.as_tensor(labels, device=vis.device)
        if labels.shape != (n,):
            raise ValueError(f"MultiPositiveInfoNCE: labels must be one identity per row, shape ({n},); got "
                             f"{tuple(labels.shape)}")
        logits = F.normalize(other, dim=1) @ F.normalize(vis, dim=1).T / self.temperature
        positive = (labels[:, None] == labels[None, :]).to(logits.dtype)
        n_pos = positive.sum(dim=1)  # symmetric matrix: the same counts for both directions

        def direction(lg: torch.Tensor) -> torch.Tensor:
            return -(F.log_softmax(lg, dim=1) * positive).sum(dim=1) / n_pos

        per_row = 0.5 * (direction(logits) + direction(logits.T))
        return _reduce(per_row, self.reduction)

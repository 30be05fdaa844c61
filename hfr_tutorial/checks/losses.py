"""Checks of losses written by hand (notebooks 03 and 04): InfoNCE, its value at chance, distillation.

Each check calls the student's function on the batch the notebook shows and on hidden batches (other
sizes, other embedding widths, rows of very different norms, other temperatures or weights) and
compares it with the library's loss of the same input: ``CrossModalInfoNCE``,
``SelfDistillationLoss``.  Those classes (and ``F.cross_entropy``, which exercise 1 of notebook 03
asks to do without) are recorded while the student's function runs: a function that uses them fails.
A wrong value gets the name of the usual slip it matches (one direction only, the temperature
forgotten, no normalisation, a sum for a mean, lambda forgotten ...), never the right value.

Taught in: ``notebooks/03_contrastive_alignment.ipynb`` (exercises 1, 2),
``notebooks/04_self_distillation.ipynb`` (exercises 1, 2).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from .guard import Case, Comparison, check_function
from .feedback import as_scalar, direction_hint, fmt

LOSS_RTOL = 1e-4
"""Relative tolerance of a loss written by hand: float32 rounding passes, a missing term does not."""


def _loss_library() -> dict[str, Any]:
    from hfr_tutorial import losses

    return {"CrossModalInfoNCE": losses.CrossModalInfoNCE, "MultiPositiveInfoNCE": losses.MultiPositiveInfoNCE,
            "SelfDistillationLoss": losses.SelfDistillationLoss, "MethodLoss": losses.MethodLoss,
            "make_contrastive_loss": losses.make_contrastive_loss, "make_method_loss": losses.make_method_loss}


def _compare_number(result: Any, ref: float, slips: dict[str, float], hint: str = "") -> Comparison:
    """A scalar against the reference; a wrong one is matched with the named slips, else a direction."""
    v, why = as_scalar(result)
    if v is None:
        return Comparison(False, why)
    tol = max(LOSS_RTOL * abs(ref), 1e-6)
    if abs(v - ref) <= tol:
        return Comparison(True)
    for name, value in slips.items():
        if math.isfinite(value) and abs(v - value) <= max(LOSS_RTOL * abs(value), 1e-6) and abs(value - ref) > tol:
            return Comparison(False, f"it returned {fmt(v)}", name)
    return Comparison(False, f"it returned {fmt(v)}", "; ".join(h for h in (direction_hint(v, ref), hint) if h))


def _batches(seed: int, dims: tuple[tuple[int, int], ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pairs of (B, D) batches whose rows have very different norms (so normalising matters)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, d in dims:
        a = torch.randn(b, d, generator=g) * torch.empty(b, 1).uniform_(0.2, 5.0, generator=g)
        c = (a + torch.randn(b, d, generator=g)) * torch.empty(b, 1).uniform_(0.2, 5.0, generator=g)
        out.append((a, c))
    return out


# --------------------------------------------------------------------------------------------
# InfoNCE (notebook 03, exercise 1)
# --------------------------------------------------------------------------------------------
def _infonce_slips(vis: torch.Tensor, other: torch.Tensor, t: float) -> dict[str, float]:
    """The values of the usual wrong InfoNCE computations on this input, each with its hint."""
    s = F.normalize(other.double(), dim=1) @ F.normalize(vis.double(), dim=1).T
    raw = other.double() @ vis.double().T

    def both(m: torch.Tensor) -> tuple[float, float]:
        rows = -(m.diag() - torch.logsumexp(m, dim=1))
        cols = -(m.diag() - torch.logsumexp(m, dim=0))
        return float(rows.mean()), float(cols.mean())

    r, c = both(s / t)
    r1, c1 = both(s)
    rr, cr = both(raw / t)
    b = len(vis)
    return {"only one direction (the rows, NIR/thermal->VIS): average it with the columns' (VIS->NIR/thermal)": r,
            "only one direction (the columns, VIS->NIR/thermal): average it with the rows' (NIR/thermal->VIS)": c,
            "the two directions added: their mean is the loss": r + c,
            "the temperature is missing: divide the cosines by T": 0.5 * (r1 + c1),
            "the cosines are multiplied by T: divide them by T": 0.5 * sum(both(s * t)),
            "the embeddings are not normalised: the logits are cosines (of L2-normalised rows) divided by T":
                0.5 * (rr + cr),
            "a sum over the batch: take the mean over the pairs": 0.5 * (r + c) * b,
            "+logit - logsumexp has the wrong sign: the loss is -(logit - logsumexp)": -0.5 * (r + c)}


def check_infonce_function(fn: Any, vis: Any = None, other: Any = None, temperature: float | None = None) -> bool:
    """``fn(vis, other, T)`` equals ``CrossModalInfoNCE(temperature=T)(vis, other)`` on shown and hidden batches.

    ``vis``, ``other`` (``(B, D)`` embeddings, row ``i`` a pair) and ``temperature`` are what the
    notebook shows; hidden cases add batches of 5, 17 and 33 pairs, 8- to 64-d, rows of very different
    norms, at T = 0.05, 0.2 and 1.  ``CrossModalInfoNCE`` (and every loss class of the library) and
    ``F.cross_entropy`` are recorded while ``fn`` runs.
    """
    cases = []
    if vis is not None and other is not None and temperature is not None:
        v, o = torch.as_tensor(vis).detach().cpu().float(), torch.as_tensor(other).detach().cpu().float()
        cases.append(Case(f"the shown batch ({len(v)} pairs) at T = {temperature:g}", (v, o, float(temperature)),
                          hidden=False))
    for (v, o), t in zip(_batches(7, ((5, 8), (17, 64), (33, 16))), (0.05, 0.2, 1.0)):
        cases.append(Case(f"a hidden batch of {len(v)} pairs ({v.shape[1]}-d) at T = {t:g}", (v, o, t)))
    nce = _loss_library()["CrossModalInfoNCE"]
    return check_function(
        fn, cases, what="your InfoNCE function",
        reference=lambda c: float(nce(temperature=c.args[2])(c.args[0].double(), c.args[1].double())),
        compare=lambda result, ref, c, args: _compare_number(result, ref, _infonce_slips(*c.args)),
        forbidden={**_loss_library(), "F.cross_entropy": F.cross_entropy, "F.nll_loss": F.nll_loss},
        signature="my_infonce(vis, other, T)",
        forbidden_hint="cosine matrix / T, then -(diagonal - logsumexp) over the rows and over the columns, "
                       "each averaged, then the mean of the two directions")


# --------------------------------------------------------------------------------------------
# InfoNCE at chance (notebook 03, exercise 2): a formula in B
# --------------------------------------------------------------------------------------------
HIDDEN_BATCH_SIZES = (2, 3, 7, 10, 100, 1000)
"""The batch sizes the chance formula is checked on besides the notebook's."""


def check_chance_function(fn: Any, batch_size: int | None = None, temperature: float = 0.07) -> bool:
    """``fn(B)`` is the InfoNCE loss of ``B`` identical pairs, for the shown ``B`` and the hidden ones.

    The reference is ``CrossModalInfoNCE(temperature)(ones(B, 8), ones(B, 8))`` for each ``B`` of
    :data:`HIDDEN_BATCH_SIZES` (and ``batch_size``): a number right for one ``B`` only fails.  The
    library's loss classes are recorded while ``fn`` runs.
    """
    sizes = ([int(batch_size)] if batch_size else []) + [b for b in HIDDEN_BATCH_SIZES if b != batch_size]
    cases = [Case(f"B = {b}" + ("" if i or not batch_size else " (the notebook's)"), (b,),
                  hidden=bool(i or not batch_size)) for i, b in enumerate(sizes)]
    nce = _loss_library()["CrossModalInfoNCE"](temperature=temperature)

    def reference(case: Case) -> float:
        ones = torch.ones(case.args[0], 8, dtype=torch.float64)
        return float(nce(ones, ones))

    def compare(result: Any, ref: float, case: Case, args: tuple) -> Comparison:
        b = case.args[0]
        slips = {"that is log(B - 1): the right partner is one of the B candidates too": math.log(b - 1) if b > 2
                 else float("nan"),
                 "that is the chance probability 1/B; the loss is its negative log": 1 / b,
                 "the two directions added: their mean is the loss": 2 * math.log(b),
                 "divided by the temperature: identical embeddings give equal logits whatever T is":
                     math.log(b) / temperature}
        return _compare_number(result, ref, slips, hint="every candidate gets the same softmax share")

    return check_function(fn, cases, what="your formula for InfoNCE at chance", reference=reference,
                          compare=compare, forbidden=_loss_library(), signature="chance_loss(B)",
                          forbidden_hint="work it out on paper: B equal logits, a softmax over them, -log of "
                                         "the right one's share")


# --------------------------------------------------------------------------------------------
# Self-distillation (notebook 04, exercises 1 and 2)
# --------------------------------------------------------------------------------------------
def _distill_slips(student: torch.Tensor, teacher: torch.Tensor, lam: float, kind: str) -> dict[str, float]:
    s, t = F.normalize(student.double(), dim=1), F.normalize(teacher.double(), dim=1)
    if kind == "cosine":
        per_row = 1 - (s * t).sum(dim=1)
        raw = 1 - (student.double() * teacher.double()).sum(dim=1)
        return {"lambda is missing: multiply by lam": float(per_row.mean()),
                "the embeddings are not normalised: the cosine of the L2-normalised rows": float(lam * raw.mean()),
                "a sum over the rows: take the mean over the batch": float(lam * per_row.sum()),
                "that is lambda x the mean cosine, a similarity: the distance is 1 - cos": float(lam * (s * t).sum(1).mean()),
                "the MSE form: this exercise asks for the cosine distance": float(lam * ((s - t) ** 2).mean(1).mean())}
    per_row = ((s - t) ** 2).mean(dim=1)
    return {"lambda is missing: multiply by lam": float(per_row.mean()),
            "a sum over the D dimensions: average them (mean over dim=1)": float(lam * ((s - t) ** 2).sum(1).mean()),
            "the embeddings are not normalised: normalise both before the difference":
                float(lam * ((student.double() - teacher.double()) ** 2).mean(1).mean()),
            "a sum over the rows: take the mean over the batch": float(lam * per_row.sum()),
            "the cosine form: this exercise asks for the mean squared difference": float(lam * (1 - (s * t).sum(1)).mean()),
            "not squared: square the differences": float(lam * (s - t).abs().mean(1).mean())}


def check_distillation_function(fn: Any, kind: str, student: Any = None, teacher: Any = None,
                                lam: float | None = None) -> bool:
    """``fn(student, teacher, lam)`` equals ``SelfDistillationLoss(weight=lam, kind=kind)(student, teacher)``.

    ``kind`` is ``"cosine"`` or ``"mse"``; ``student``, ``teacher`` and ``lam`` are what the notebook
    shows, and hidden cases add batches of other sizes and widths with rows of very different norms, at
    lambda 0.5, 3 and 25.  The library's loss classes are recorded while ``fn`` runs.
    """
    if kind not in ("cosine", "mse"):
        raise ValueError(f"check_distillation_function: kind must be 'cosine' or 'mse', got {kind!r}.")
    cases = []
    if student is not None and teacher is not None and lam is not None:
        s, t = torch.as_tensor(student).detach().cpu().float(), torch.as_tensor(teacher).detach().cpu().float()
        cases.append(Case(f"the shown embeddings ({len(s)} rows) at lambda = {lam:g}", (s, t, float(lam)),
                          hidden=False))
    for (s, t), lam_h in zip(_batches(13, ((6, 32), (21, 8), (40, 128))), (0.5, 3.0, 25.0)):
        cases.append(Case(f"hidden embeddings ({len(s)} rows, {s.shape[1]}-d) at lambda = {lam_h:g}", (s, t, lam_h)))
    loss: Callable[..., Any] = _loss_library()["SelfDistillationLoss"]
    formula = "lam x mean over rows of (1 - cos)" if kind == "cosine" else \
        "lam x mean over rows of the mean over D of (normalised student - normalised teacher)^2"
    return check_function(
        fn, cases, what=f"your {kind} distillation function",
        reference=lambda c: float(loss(weight=c.args[2], kind=kind)(c.args[0].double(), c.args[1].double())),
        compare=lambda result, ref, c, args: _compare_number(result, ref, _distill_slips(*c.args, kind)),
        forbidden=_loss_library(), signature=f"my_{'distill' if kind == 'cosine' else 'mse'}(student, teacher, lam)",
        forbidden_hint=f"normalise both, then {formula}")

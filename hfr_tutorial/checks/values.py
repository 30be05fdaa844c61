"""Checks of one number against an independent reference: right or wrong, and which way, never the answer.

For a notebook's exercises prefer the function checks (:mod:`hfr_tutorial.checks.guard`): a number can
be pasted, a function is run on hidden inputs.  These remain for a quick comparison in a cell of your
own, and as the building block of the other checks.

Taught in: the "Exercises" section of every notebook.
"""
from __future__ import annotations

from typing import Any

from .feedback import as_scalar, direction_hint, fmt, verdict


def check_close(value: Any, reference: Any, what: str = "value", *, rtol: float = 1e-4, atol: float = 1e-6,
                hint: str = "") -> bool:
    """``value`` equals the independent ``reference`` within ``max(rtol * |reference|, atol)``.

    The default tolerances pass float32 rounding and reject the usual slips (a factor 2 or 100, a
    missing term).  A wrong value gets a hint that names a recognised factor or says which way it is
    off, never the reference; ``hint`` adds advice specific to the exercise.
    """
    ref, why = as_scalar(reference)
    if ref is None:
        raise ValueError(f"check_close: the reference for {what!r}: {why}; the notebook must pass one number.")
    v, why = as_scalar(value)
    if v is None:
        return verdict(False, what, problem=why, hint=hint)
    tol = max(rtol * abs(ref), atol)
    if abs(v - ref) <= tol:
        return verdict(True, what, success=f"{fmt(v)}, within the tolerance of the reference")
    advice = "; ".join(h for h in (direction_hint(v, ref), hint) if h)
    return verdict(False, what, problem=f"yours, {fmt(v)}, is not the reference value", hint=advice)


def check_loss_close(value: Any, reference: Any, what: str = "loss", *, rtol: float = 1e-4, atol: float = 1e-6,
                     hint: str = "") -> bool:
    """A loss computed by hand matches the library's value of the same loss (see :func:`check_close`).

    ``reference`` must come from the library (e.g. ``CrossModalInfoNCE(temperature=T)(vis, other)``) on
    the same inputs.  A tensor ``value`` must be one number (a 0-d tensor).
    """
    return check_close(value, reference, what, rtol=rtol, atol=atol, hint=hint)


def check_in_range(value: Any, low: float, high: float, what: str, *, hint: str = "") -> bool:
    """A figure falls in ``[low, high]``, the range of valid answers (a cosine in [-1, 1], a share in [0, 100]).

    Use it for validity, not for correctness: a range around the right answer gives the answer away
    and lets a guess pass.  A failed check says below or above, not the bounds.
    """
    if not low <= high:
        raise ValueError(f"check_in_range: low ({low}) must not exceed high ({high}) for {what!r}.")
    v, why = as_scalar(value)
    if v is None:
        return verdict(False, what, problem=why, hint=hint)
    if low <= v <= high:
        return verdict(True, what, success=f"{fmt(v)} lies in [{fmt(low)}, {fmt(high)}]")
    side = "below" if v < low else "above"
    return verdict(False, what, problem=f"yours, {fmt(v)}, lies {side} the range of valid answers", hint=hint)

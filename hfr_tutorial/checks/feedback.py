"""How a self-check reports: a verdict that says what is wrong and gives a hint, never the answer.

A failed check prints

    Not yet: <what was checked>
      problem: <what is wrong: a shape, a sign, a hidden input it fails on, a library call it makes>
      hint:    <a direction, a factor or the likely cause>

and never the expected value, nor anything it could be recovered from (the reference, a ratio to it,
the bounds of a tight range): submitting a wrong answer and pasting what the check printed must not
pass (``tests/test_exercise_attacks.py`` tries exactly that on every exercise).  A passed check may
print the reference: the student has it already.

A wrong answer prints and returns ``False``, so a student's notebook keeps running; with
``HFR_STRICT_CHECKS=1`` (CI runs of the solved notebooks) it also raises :class:`CheckFailed`.

Taught in: the "Exercises" section of every notebook.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..config import strict_checks


class CheckFailed(AssertionError):
    """A self-check found a wrong answer (raised only in strict mode, ``HFR_STRICT_CHECKS=1``)."""


def verdict(ok: bool, what: str, *, success: str = "", problem: str = "", hint: str = "", note: str = "") -> bool:
    """Print the verdict of a check and return ``ok``; in strict mode a wrong answer raises :class:`CheckFailed`.

    ``success`` is printed only when ``ok`` (it may name the reference); ``problem`` and ``hint`` only
    when not, and they must not contain the expected value.
    """
    if ok:
        lines = [f"Correct: {what}" + (f": {success}" if success else "")]
    else:
        lines = [f"Not yet: {what}"]
        if problem:
            lines.append(f"  problem: {problem}")
        if hint:
            lines.append(f"  hint:    {hint}")
    if note:
        lines.append(f"  note:    {note}")
    message = "\n".join(lines)
    print(message)
    if not ok and strict_checks():
        raise CheckFailed(message)
    return ok


def as_array(x: Any) -> np.ndarray:
    """A float64 numpy copy of an array-like (torch tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def as_scalar(value: Any) -> tuple[float | None, str]:
    """``(number, "")`` for a scalar answer, else ``(None, why it is not one)``."""
    if value is None:
        return None, "it is None: did the cell (or the function) assign and return the value?"
    if isinstance(value, bool):
        return None, f"it is {value!r}, a bool; the answer is a number"
    if isinstance(value, str):
        return None, "it is a str; the answer is a number"
    try:
        arr = as_array(value)
    except (TypeError, ValueError):
        return None, f"it is a {type(value).__name__}, not a number"
    if arr.size != 1:
        return None, (f"it is an array of shape {arr.shape}, not one number: reduce it "
                      "(.mean() over the batch, or index the element you want)")
    number = float(arr.reshape(()))
    if not math.isfinite(number):
        return None, f"it is {number}, not a finite number"
    return number, ""


def fmt(x: float) -> str:
    """A number as the checks print it (4 decimals, or 6 significant digits when small)."""
    return f"{x:.6g}" if abs(x) < 1e-3 and x != 0 else f"{x:.4f}"


FACTOR_SLIPS: tuple[tuple[float, str], ...] = (
    (100.0, "about 100x too large: a percent where a fraction is wanted?"),
    (0.01, "about 100x too small: a fraction where a percent is wanted?"),
    (2.0, "about 2x too large: two terms added where their mean is wanted, or a missing factor 1/2?"),
    (0.5, "about half the right size: one of two terms where their mean is wanted, or an extra factor 1/2?"),
    (-1.0, "the right size with the wrong sign"),
)
"""Factors between a wrong answer and the right one that name a usual slip (the hint names the factor only)."""


def direction_hint(value: float, reference: float) -> str:
    """Which way ``value`` is off from ``reference``, in words, coarse enough not to give the reference away.

    A recognised factor (100, 1/100, 2, 1/2, -1) is named with its usual cause; otherwise the hint says
    "too large" or "too small" and a bucket of the ratio (under 10 %, up to 2x, up to 10x, more).
    """
    if reference == 0:
        return "too large" if value > 0 else "too small"
    ratio = value / reference
    for factor, hint in FACTOR_SLIPS:
        if abs(ratio - factor) <= 1e-3 * abs(factor):
            return hint
    if ratio == 0:
        return "it is zero: too small" if reference > 0 else "it is zero: too large"
    if ratio < 0:
        return "the wrong sign" + (" and too large" if value > reference else " and too small")
    bigger = value > reference
    r = ratio if ratio >= 1 else 1 / ratio
    size = ("slightly (by less than 10 %)" if r < 1.1 else "by 10 % up to a factor 2" if r < 2 else
            "by a factor between 2 and 10" if r < 10 else "by more than a factor 10")
    return f"too {'large' if bigger else 'small'}, {size}"


def close(value: float, reference: float, tol: float) -> bool:
    """``|value - reference| <= tol``."""
    return abs(value - reference) <= tol

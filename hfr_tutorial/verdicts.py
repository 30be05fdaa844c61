"""Sentences from figures with intervals: what a notebook or a report says about a difference, in one call.

A claim is a figure, or ``{"value": v, "interval": [lo, hi]}`` (a paired bootstrap interval,
:mod:`hfr_tutorial.metrics`).  A difference is *established* when its interval excludes 0; the
words a notebook prints follow from that, never from the point estimate alone.

Taught in: ``notebooks/06_evaluation.ipynb`` (intervals); used by every notebook that states a result.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def value_of(claim: Any) -> float:
    """The figure of a claim, whether it carries an interval (``{"value", "interval"}``) or not."""
    return float(claim["value"]) if isinstance(claim, dict) else float(claim)


def interval_of(claim: Any) -> tuple[float, float] | None:
    """The (lo, hi) interval of a claim, or None when it has none (or a non-finite end)."""
    if not isinstance(claim, dict) or not claim.get("interval"):
        return None
    lo, hi = claim["interval"]
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return float(lo), float(hi)


def fmt_claim(claim: Any, scale: float = 1.0, digits: int = 3, sign: bool = False, unit: str = "") -> str:
    """``0.973 [0.962, 0.981]``: a claim with its interval, scaled (100 for percent)."""
    spec = f"{'+' if sign else ''}.{digits}f"
    value = value_of(claim) * scale
    text = f"{value:{spec}}{unit}" if np.isfinite(value) else "n/a"
    interval = interval_of(claim)
    if interval is not None:
        text += f" [{interval[0] * scale:{spec}}, {interval[1] * scale:{spec}}]"
    return text


def fmt_difference(claim: Any, digits: int = 3) -> str:
    """A difference with its sign and interval: ``+0.012 [-0.003, +0.027]``."""
    return fmt_claim(claim, digits=digits, sign=True)


def direction(claim: Any) -> int:
    """+1 when the interval lies above 0, -1 below, 0 when it holds 0 (or the claim has no interval)."""
    interval = interval_of(claim)
    if interval is None:
        return 0
    return 1 if interval[0] > 0 else -1 if interval[1] < 0 else 0


def established(claim: Any) -> bool:
    """Whether the difference is established by its interval (the interval excludes 0)."""
    return direction(claim) != 0


def say(claim: Any, more: str, less: str, same: str) -> str:
    """``more`` when the difference is established above 0, ``less`` below, ``same`` when its interval holds 0."""
    return {1: more, -1: less, 0: same}[direction(claim)]

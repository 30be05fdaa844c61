"""Shared names of the evaluation: the reported FARs, the default protocols, the ranks."""
from __future__ import annotations

import math

FARS: tuple[float, ...] = (1e-1, 1e-2, 1e-3)
"""The false accept rates at which TAR is reported (keys ``tar_at_far_1e-1`` ...)."""

DEFAULT_PROTOCOLS: tuple[str, ...] = ("vis->vis", "nir->vis", "thermal->vis")
"""Probe->gallery protocols of the embedded synthetic data (gallery always VIS)."""

RANKS: tuple[int, ...] = (1, 5, 10)


def far_key(far: float) -> str:
    """The metric name of TAR at a FAR, e.g. ``far_key(0.01) == "tar_at_far_1e-2"``."""
    exponent = math.log10(far)
    if abs(exponent - round(exponent)) < 1e-9:
        return f"tar_at_far_1e{int(round(exponent))}"
    return f"tar_at_far_{far:g}"

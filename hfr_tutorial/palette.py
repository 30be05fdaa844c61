"""One palette for the whole course: each modality and each run has one colour in every figure.

Runs get their colour when they are registered (:func:`hfr_tutorial.runs.register_run` calls
:func:`assign_run_color`); a name never registered gets a stable colour of its own (the same
name, the same colour).  A leaf module: no matplotlib.

Taught in: every notebook's figures (``notebooks/05_full_training.ipynb`` names them).
"""
from __future__ import annotations

import hashlib

MODALITY_COLORS: dict[str, str] = {"vis": "#3A6FB0", "nir": "#8E44AD", "thermal": "#E4572E", "swir": "#2A9D8F",
                                   "sketch": "#6B6B6B", "depth": "#A6611A"}
"""The colour of each modality: VIS blue, NIR purple, thermal hot orange-red. Runs keep away from these hues."""

RUN_COLORS: dict[str, str] = {"baseline": "#4D4D4D", "before (unadapted)": "#4D4D4D"}
"""The colour of each run by name; filled by the run registry."""

_FALLBACK = ("#808000", "#17BECF", "#B15928", "#33A02C", "#BC80BD", "#FDB462", "#8DD3C7", "#999933")


def assign_run_color(name: str, color: str | None = None) -> str:
    """Give run ``name`` its colour (``color``, or a stable fallback); returns it."""
    RUN_COLORS[name] = color or _fallback(name)
    return RUN_COLORS[name]


def _fallback(name: str) -> str:
    taken = set(RUN_COLORS.values())
    start = int(hashlib.sha1(name.encode()).hexdigest(), 16) % len(_FALLBACK)
    for i in range(len(_FALLBACK)):
        candidate = _FALLBACK[(start + i) % len(_FALLBACK)]
        if candidate not in taken:
            return candidate
    return _FALLBACK[start]


def run_color(name: str) -> str:
    """The colour of run ``name`` (registered, or a stable fallback for a name never registered)."""
    if name not in RUN_COLORS:
        if name.endswith("(unadapted)"):
            return RUN_COLORS["before (unadapted)"]
        return _fallback(name)
    return RUN_COLORS[name]


def modality_color(modality: str) -> str:
    """The colour of a modality (grey for one without its own)."""
    return MODALITY_COLORS.get(modality, "#999999")

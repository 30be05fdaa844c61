"""One palette for the whole course: each modality and each run keeps one colour in every figure.

A reader learns a colour once: VIS is blue, NIR purple, thermal orange-red, in the data grids of
notebook 00, the UMAP maps, the ROC curves and the widgets alike.  Runs get colours of their own,
away from those hues (greys, greens, browns, magenta, olive), so a run's bar or curve is never read as
a sensor, and a run keeps its colour from one figure to the next: before this module the colours
were handed out by position, so teal was the method in one figure of notebook 05 and full
fine-tuning in the next.

* :data:`MODALITY_COLORS` / :func:`modality_color`: the colour of a modality (an unknown one gets
  a stable colour of its own).
* :func:`run_color`: the colour of a run, by name.  The run registry fills the table with
  :func:`assign_run_color` when a run is registered; ``"baseline"`` and ``"before (unadapted)"``
  and ``"RGB baseline"`` (the starting model, embedded or pretrained, as the report and the notebooks name it) are fixed here; any other name gets a colour from
  :data:`FALLBACK_RUN_COLORS` chosen from its name (see :func:`run_color`).

This module is a leaf: no matplotlib, no other module of the package, only hex strings, so the
registry, the plots and the widgets can all import it.  Taught in
``notebooks/00_data_and_modality_gap.ipynb`` (modalities) and ``notebooks/05_full_training.ipynb`` (runs).
"""
from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping

MODALITY_COLORS: dict[str, str] = {
    "vis": "#3A6FB0",  # visible light: blue
    "nir": "#8E44AD",  # near infrared: purple
    "thermal": "#E4572E",  # long-wave infrared: hot orange-red
    "swir": "#2A9D8F",
    "sketch": "#6B6B6B",
}
"""One colour per modality, used by every figure and widget (notebooks draw modalities with it too)."""

MODALITY_NAMES: dict[str, str] = {"vis": "VIS", "nir": "NIR", "thermal": "thermal", "swir": "SWIR", "sketch": "sketch"}
"""How a modality is written in labels and prose."""

_EXTRA_MODALITY_COLORS: tuple[str, ...] = ("#0173B2", "#DE8F05", "#029E73", "#D55E00", "#CC78BC", "#CA9161",
                                           "#FBAFE4", "#949494", "#ECE133", "#56B4E9")
"""Colours of modalities without an entry in :data:`MODALITY_COLORS` (seaborn's "colorblind" palette)."""

STARTING_MODEL_COLOR = "#4D4D4D"
"""The starting model before adaptation: the RGB baseline or the unadapted pretrained EdgeFace."""

FIXED_RUN_COLORS: dict[str, str] = {"baseline": STARTING_MODEL_COLOR, "RGB baseline": STARTING_MODEL_COLOR,
                                    "before (unadapted)": STARTING_MODEL_COLOR}
"""Runs whose colour is fixed here: the starting model, under the names the two paths and the notebooks give it."""

FALLBACK_RUN_COLORS: tuple[str, ...] = ("#1B9E77", "#C49A00", "#66A61E", "#A6761D", "#E7298A", "#808000",
                                        "#17BECF", "#111111", "#E78AC3", "#8C564B", "#BCBD22")
"""Colours of run names the registry did not colour: greens, browns, magenta, olive, cyan, near-black,
pink, away from the blue, purple and orange-red of :data:`MODALITY_COLORS` and from the starting model's grey."""

_HEX = re.compile(r"#[0-9a-fA-F]{6}")
_lock = threading.Lock()
_assigned: dict[str, str] = {}  # filled by the run registry through assign_run_color
_fallback: dict[str, str] = {}  # colours handed to unregistered names, kept for the life of the process


def modality_color(modality: str) -> str:
    """The colour of a modality (case does not matter); an unknown name gets a stable colour of its own."""
    key = str(modality).lower()
    if key in MODALITY_COLORS:
        return MODALITY_COLORS[key]
    return _EXTRA_MODALITY_COLORS[_slot(key, len(_EXTRA_MODALITY_COLORS))]


def modality_name(modality: str) -> str:
    """A modality as labels write it: ``"vis"`` -> ``"VIS"``, ``"thermal"`` -> ``"thermal"``."""
    return MODALITY_NAMES.get(str(modality).lower(), str(modality))


def _slot(name: str, n: int) -> int:
    """A position in ``0..n-1`` that depends on ``name`` only (not on Python's per-process string hashing)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") % n


def _check_hex(color: str, what: str) -> str:
    if not isinstance(color, str) or not _HEX.fullmatch(color):
        raise ValueError(f"{what}: colour {color!r} is not a '#RRGGBB' hex string; pass one such as '#1B9E77'.")
    return color.upper()


def assign_run_color(name: str, color: str) -> None:
    """Give the run ``name`` the colour ``color`` (``'#RRGGBB'``) in every figure: the run registry calls this.

    Assigning the colour a run already has does nothing.  Refused with a ValueError: a name that
    is empty or already has another colour (the registry registers a run once), a colour that is not
    ``'#RRGGBB'``, a colour of a modality (a run must not be read as a sensor), and a colour another
    run already has (two runs in one colour cannot be told apart).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"assign_run_color: run name {name!r} must be a non-empty string.")
    color = _check_hex(color, f"assign_run_color({name!r})")
    with _lock:
        current = _assigned.get(name, FIXED_RUN_COLORS.get(name))
        if current is not None and current.upper() == color:
            return
        if current is not None:
            raise ValueError(f"assign_run_color: run {name!r} already has colour {current}; a run keeps one colour "
                             f"in every figure, so {color} is refused. Register each run once.")
        if color in {c.upper() for c in MODALITY_COLORS.values()}:
            modality = next(m for m, c in MODALITY_COLORS.items() if c.upper() == color)
            raise ValueError(f"assign_run_color({name!r}, {color}): that is the colour of the modality {modality!r}; "
                             f"choose a run colour away from the modality hues, e.g. one of {FALLBACK_RUN_COLORS[:4]}.")
        owners = [n for n, c in {**FIXED_RUN_COLORS, **_assigned}.items() if c.upper() == color]
        if owners:
            raise ValueError(f"assign_run_color({name!r}, {color}): {', '.join(map(repr, owners))} already "
                             f"{'has' if len(owners) == 1 else 'have'} that colour; choose another so the runs can "
                             "be told apart.")
        _assigned[name] = color
        for other, taken in list(_fallback.items()):  # an unregistered name holding that colour draws again
            if taken == color:
                del _fallback[other]


def assigned_run_colors() -> dict[str, str]:
    """``{run: colour}`` of the fixed and registered runs (a copy)."""
    with _lock:
        return {**FIXED_RUN_COLORS, **_assigned}


def run_color(name: str) -> str:
    """The colour of the run ``name``, the same in every figure.

    A registered run (:func:`assign_run_color`) or a fixed one (:data:`FIXED_RUN_COLORS`) gets its
    colour.  Any other name gets one of :data:`FALLBACK_RUN_COLORS`: the slot its SHA-256 picks, or
    when a registered run or an earlier unregistered name already holds that colour, the next free
    one; the choice is then kept for the life of the process.  So a name always gets the same colour
    in one session (every figure of a notebook), different names get different colours while the
    fallback colours last, and a name alone in its slot gets the same colour in every session.
    """
    if not isinstance(name, str):
        raise TypeError(f"run_color takes a run's name (a str), got {name!r}: colours follow runs, not their position "
                        "in a figure, so the same run keeps its colour in every figure.")
    with _lock:
        if name in _assigned:
            return _assigned[name]
        if name in FIXED_RUN_COLORS:
            return FIXED_RUN_COLORS[name]
        if name.endswith(" (unadapted)"):  # a pretrained starting model before adaptation, e.g. "edgeface_xxs (unadapted)"
            return STARTING_MODEL_COLOR
        if name in _fallback:
            return _fallback[name]
        taken = {c.upper() for c in (*FIXED_RUN_COLORS.values(), *_assigned.values(), *_fallback.values())}
        n = len(FALLBACK_RUN_COLORS)
        start = _slot(name, n)
        color = next((FALLBACK_RUN_COLORS[(start + k) % n] for k in range(n)
                      if FALLBACK_RUN_COLORS[(start + k) % n].upper() not in taken), FALLBACK_RUN_COLORS[start])
        _fallback[name] = color
        return color


def run_colors(names: Mapping[str, object] | list[str] | tuple[str, ...]) -> dict[str, str]:
    """``{name: run_color(name)}`` for several runs, in their order."""
    return {str(name): run_color(str(name)) for name in names}


def _forget_run_colors() -> None:
    """Empty the registered and fallback tables (for tests that register runs of their own)."""
    with _lock:
        _assigned.clear()
        _fallback.clear()

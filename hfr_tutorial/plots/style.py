"""The figures' style: rc settings, pyplot-free figures, colours of things that are not runs, labels in words.

Every figure of the course is built by :func:`new_figure` on an Agg canvas, without pyplot's global
state (no figure piles up in a long notebook; the same inputs give the same pixels), and drawn
under :func:`styled` (the tutorial's rc settings, the caller's own left untouched).  Colours of
modalities and runs come from :mod:`hfr_tutorial.palette`; this module adds those of things that
are neither (genuine and impostor scores, the series of one run, what a policy trains).  Axis
titles, panel titles and legends name figures in words (:func:`metric_label`: ``rank1`` is
"rank-1", ``val_vis_rank1`` "dev VIS rank-1"), never by their column names.

Used by every module of :mod:`hfr_tutorial.plots`; taught in ``notebooks/00_data_and_modality_gap.ipynb``.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hfr_tutorial.evaluate import parse_protocol
from hfr_tutorial.palette import modality_color, modality_name

GENUINE_COLOR = "#2E8B57"
"""Genuine scores (pairs of one person) in histograms."""
IMPOSTOR_COLOR = "#9A9A9A"
"""Impostor scores (pairs of two people) in histograms."""
SERIES_COLORS: tuple[str, ...] = ("#4D4D4D", "#1B9E77", "#C49A00", "#66A61E", "#A6761D", "#E7298A")
"""Several series of one run in one panel (its loss terms, say): not runs, so not :func:`~hfr_tutorial.palette.run_color`."""
TRAINED_COLOR = "#C0392B"
"""What a tuning policy trains: the strips of the architecture diagram, the highlighted bar of the budget."""
RUN_LINESTYLES = ("-", "--", ":", "-.")
"""Line styles of runs compared in one curve figure (colour is the probe modality there)."""
IDENTITY_MARKERS = ("o", "s", "^", "D", "P", "X", "v", "*", "<", ">", "h", "p")
"""Markers of the highlighted identities of a 2-D map."""

RC: dict[str, Any] = {
    **sns.axes_style("whitegrid"),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.alpha": 0.35,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "image.interpolation": "nearest",
}
"""The tutorial's rc settings, applied by :func:`styled` for the duration of one drawing."""


def styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw under the tutorial's style without touching the caller's rcParams."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(RC):
            return func(*args, **kwargs)

    return wrapper


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **kw: Any) -> tuple[Figure, np.ndarray]:
    """A pyplot-free Figure on an Agg canvas and its axes (always a 2-D array)."""
    fig = Figure(figsize=figsize or (4.2 * ncols, 3.4 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def figure_and_axes(ax: Any = None, **kw: Any) -> tuple[Figure, Any]:
    """``(ax.figure, ax)`` when the caller gives an axis to draw on, else a new one-panel figure."""
    if ax is not None:
        return ax.figure, ax
    fig, axes = new_figure(1, 1, **kw)
    return fig, axes[0, 0]


def legend_right(ax: Any) -> None:
    """The axis' legend outside it, on its right, so it covers no curve."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def empty_input(function: str, argument: str, expected: str) -> ValueError:
    """The error of a plot given nothing to draw: which function, which argument, what it expects."""
    return ValueError(f"{function}: {argument} is empty, so there is nothing to draw; pass {expected}.")


_METRIC_LABELS: dict[str, str] = {
    "rank1": "rank-1", "auc": "ROC AUC", "eer": "EER", "d_prime": "d′", "loss": "total loss",
    "infonce": "InfoNCE term", "pairwise": "pairwise margin term", "contrastive": "contrastive term",
    "distill": "self-distillation term", "lr": "learning rate", "train_acc": "training accuracy",
    "seconds": "seconds per epoch", "n_probes": "probes", "n_gallery": "gallery entries",
    "trainable_percent": "trainable parameters (%)",
}


def metric_label(name: str) -> str:
    """A column or metric name in words, for titles, axes and legends.

    ``rank1`` -> "rank-1", ``tar_at_far_1e-2`` -> "TAR at FAR = 1e-2", ``eer`` -> "EER",
    ``val_vis_rank1`` -> "dev VIS rank-1" (a history's ``val_*`` columns are measured on the dev
    identities), ``lr`` -> "learning rate"; an unknown name gets its underscores replaced by spaces.
    """
    key = str(name)
    low = key.lower()
    if low in _METRIC_LABELS:
        return _METRIC_LABELS[low]
    if m := re.fullmatch(r"rank(\d+)", low):
        return f"rank-{m.group(1)}"
    if m := re.fullmatch(r"tar_at_far_(.+)", low):
        return f"TAR at FAR = {m.group(1)}"
    if m := re.fullmatch(r"val_([a-z]+)_(.+)", low):
        return f"dev {modality_name(m.group(1))} {metric_label(m.group(2))}"
    return key.replace("_", " ")


def protocol_color(protocol: str) -> str:
    """A protocol ``"nir->vis"`` takes the colour of its probe modality (NIR)."""
    try:
        return modality_color(parse_protocol(protocol)[0])
    except ValueError:
        return modality_color(protocol)

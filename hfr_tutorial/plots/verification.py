"""Verification and identification curves: ROC, DET, CMC and genuine/impostor score histograms.

Each function takes ``{protocol: scores}`` where scores are a
:class:`~hfr_tutorial.evaluate.ProtocolScores` or a ``(scores, same)`` pair, or
``{run: {protocol: scores}}`` to compare runs: a curve takes its probe modality's colour
(:func:`~hfr_tutorial.plots.style.protocol_color`) and each run a line style of its own.  The DET
plot is drawn on normal-deviate axes as ISO/IEC 19795-1 draws it, with ticks chosen for the room
the axis has (:class:`NormalDeviateLocator`), so they never overlap however narrow the panel.

Taught in ``notebooks/06_evaluation.ipynb`` (and the histograms in ``01`` and ``03``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.ticker
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from scipy.stats import norm

from hfr_tutorial import evaluate as ev
from hfr_tutorial.plots.style import (GENUINE_COLOR, IMPOSTOR_COLOR, RUN_LINESTYLES, empty_input, figure_and_axes,
                                      legend_right, new_figure, protocol_color, styled)

CURVES_EXPECTED = ("{protocol: ProtocolScores} (evaluate.score_protocols), {protocol: (scores, same)} or "
                   "{run: {protocol: scores}}")


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def _as_pair(value: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if hasattr(value, "scores") and hasattr(value, "same"):
        return np.asarray(value.scores).ravel(), np.asarray(value.same, dtype=bool).ravel()
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return np.asarray(value[0]).ravel(), np.asarray(value[1]).astype(bool).ravel()
    return None


def curve_items(curves: Any, function: str = "plot") -> list[tuple[str | None, str, Any]]:
    """``[(run, protocol, value)]`` from one value, ``{protocol: v}`` or ``{run: {protocol: v}}``.

    An empty dict (or a run with no protocols) is refused with a ValueError naming ``function``.
    """
    if curves is None:
        raise empty_input(function, "curves", CURVES_EXPECTED)
    if not isinstance(curves, Mapping):
        return [(None, "", curves)]
    if not curves:
        raise empty_input(function, "curves", CURVES_EXPECTED)
    items: list[tuple[str | None, str, Any]] = []
    for key, value in curves.items():
        if isinstance(value, Mapping):
            if not value:
                raise empty_input(function, f"curves[{key!r}]", "the protocols of that run ({protocol: scores})")
            items.extend((str(key), str(p), v) for p, v in value.items())
        else:
            items.append((None, str(key), value))
    return items


def score_pairs(curves: Any, function: str = "plot") -> list[tuple[str | None, str, np.ndarray, np.ndarray]]:
    """``[(run, protocol, scores, same)]`` of ``curves``, each with genuine and impostor pairs.

    Refused with a ValueError that names ``function`` and the curve: a value that is not scores, a
    curve with no scores, scores and labels of different lengths, and a curve without both genuine
    and impostor pairs (a rate of either cannot be measured then).
    """
    out = []
    for run, protocol, value in curve_items(curves, function):
        name = f"{run}: {protocol}" if run else (protocol or "scores")
        pair = _as_pair(value)
        if pair is None:
            raise ValueError(f"{function}: curve {name!r} holds a {type(value).__name__}; pass ProtocolScores "
                             "(evaluate.score_protocols) or a (scores, same) pair.")
        scores, same = pair
        if scores.size == 0:
            raise empty_input(function, f"curve {name!r}", "its scores and their genuine/impostor labels (same)")
        if scores.shape != same.shape:
            raise ValueError(f"{function}: curve {name!r} has {scores.size} scores and {same.size} labels; pass one "
                             "genuine/impostor label per score.")
        n_genuine = int(same.sum())
        if n_genuine in (0, same.size):
            raise ValueError(f"{function}: curve {name!r} has {n_genuine} genuine pairs of {same.size}; a curve needs "
                             "both genuine and impostor pairs: check the identities of its gallery and probes.")
        out.append((run, protocol, scores, same))
    return out


def _styles(items: Sequence[tuple]) -> tuple[dict[str | None, str], Callable[[str], str]]:
    runs = list(dict.fromkeys(item[0] for item in items))
    linestyle = {run: RUN_LINESTYLES[i % len(RUN_LINESTYLES)] for i, run in enumerate(runs)}
    return linestyle, protocol_color


def _label(run: str | None, protocol: str, extra: str = "") -> str:
    name = f"{run}: {protocol}" if run else protocol
    return f"{name} {extra}".strip()


# ---------------------------------------------------------------------------------------------
# ROC
# ---------------------------------------------------------------------------------------------
@styled
def plot_roc(curves: Any, *, ax: Any = None, title: str = "ROC", mark_far: float | None = 1e-2) -> Figure:
    """ROC curves, TAR against FAR on a log axis, one colour per protocol (legend: AUC).

    ``mark_far`` puts a dot at the operating point TAR@FAR of each curve.
    """
    items = score_pairs(curves, "plot_roc")
    fig, ax = figure_and_axes(ax, figsize=(6.4, 3.6))
    linestyle, color = _styles(items)
    far_min = 1.0
    for run, protocol, scores, same in items:
        far, tar, _ = ev.roc(scores, same)
        far_min = min(far_min, 1.0 / max(1, int((~same).sum())))
        m = ev.verification_metrics(scores, same, fars=(mark_far,) if mark_far else ())
        ax.plot(far[far > 0], tar[far > 0], ls=linestyle[run], color=color(protocol), lw=1.6,
                label=_label(run, protocol, f"(AUC {m['auc']:.3f})"))
        if mark_far:
            ax.plot([mark_far], [m[ev.far_key(mark_far)]], "o", color=color(protocol), ms=4)
    grid = np.logspace(math.log10(far_min), 0, 50)
    ax.plot(grid, grid, color="0.6", lw=0.8, ls=":", label="chance")
    ax.set(xscale="log", xlim=(far_min, 1.0), ylim=(0, 1.01), xlabel="false accept rate (FAR)",
           ylabel="true accept rate (TAR)", title=title)
    legend_right(ax)
    return fig


# ---------------------------------------------------------------------------------------------
# DET on normal-deviate axes
# ---------------------------------------------------------------------------------------------
DET_TICKS: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9,
                                0.95, 0.98, 0.99, 0.999)
"""Error rates that may label a DET axis, shown in percent; :class:`NormalDeviateLocator` picks among them."""

_DET_TICK_PRIORITY: tuple[float, ...] = (0.5, 0.1, 0.9, 1e-2, 0.99, 1e-3, 0.999, 1e-4, 1e-5, 1e-6, 0.2, 0.8, 0.05,
                                         0.95, 0.02, 0.98, 0.3, 0.7)
""":data:`DET_TICKS` by importance: 50 %, then the decades outwards from it, then the rates between them."""


def _probit(p: Any) -> np.ndarray:
    return norm.ppf(np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12))


def _probit_inverse(z: Any) -> np.ndarray:
    return norm.cdf(np.asarray(z, dtype=float))


def _percent(p: float) -> str:
    return f"{100 * p:.6g} %"


class NormalDeviateLocator(matplotlib.ticker.Locator):
    """Ticks of a normal-deviate axis that fit the room the axis has, so that no two labels overlap.

    On a probit axis the rates 95 %, 99 % and 99.9 % (or 0.01 %, 0.1 % and 1 %) sit close together,
    and how close in pixels depends on the axis range and the panel's size: a fixed list of ticks
    overlaps in a narrow panel and where the range is wide.  At each draw this locator measures the
    axis in pixels, estimates a label's width (x) or height (y) from the tick font size, and adds
    the candidates of :data:`DET_TICKS` inside the view, the most important first (50 %, the decades
    outwards from it, then 20, 80, 5, 95 % and the rest), each only if it keeps one label's room
    (plus a gap) from every tick already chosen.
    """

    def __init__(self, which: str, fontsize: float) -> None:
        if which not in ("x", "y"):
            raise ValueError(f"NormalDeviateLocator: which={which!r}; give 'x' or 'y'.")
        self.which = which
        self.fontsize = float(fontsize)

    def __call__(self) -> list[float]:
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def _axis_pixels(self) -> float:
        axes = getattr(self.axis, "axes", None)
        if axes is None:
            return 400.0
        box = axes.get_window_extent()
        return float(box.width if self.which == "x" else box.height) or 400.0

    def _room(self, label: str, dpi: float) -> float:
        """Pixels one label needs along the axis, with a gap of about half a character."""
        points = (0.62 * len(label) + 0.6) * self.fontsize if self.which == "x" else 1.6 * self.fontsize
        return points * dpi / 72.0

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        low, high = sorted((float(vmin), float(vmax)))
        candidates = [t for t in _DET_TICK_PRIORITY if low <= t <= high]
        if not candidates:
            return []
        span = max(float(_probit(high)) - float(_probit(low)), 1e-9)
        dpi = self.axis.axes.figure.dpi if getattr(self.axis, "axes", None) is not None else 100.0
        per_z = self._axis_pixels() / span
        chosen: list[float] = []
        for tick in candidates:
            z, room = float(_probit(tick)), self._room(_percent(tick), dpi)
            if all(abs(z - float(_probit(c))) * per_z >= (room + self._room(_percent(c), dpi)) / 2 for c in chosen):
                chosen.append(tick)
        return sorted(chosen)


def set_normal_deviate_axis(ax: Any, which: str, low: float, high: float) -> None:
    """Put an error-rate axis on the normal-deviate (probit) scale of ISO/IEC 19795-1 DET plots.

    A rate ``p`` sits at ``scipy.stats.norm.ppf(p)``: two Gaussian score distributions give a
    straight DET line, and the small error rates where good systems differ are spread out.  The
    ticks are those of :data:`DET_TICKS` inside ``[low, high]`` that fit the axis without overlap
    (:class:`NormalDeviateLocator`), labelled in percent.
    """
    if which not in ("x", "y"):
        raise ValueError(f"set_normal_deviate_axis: which={which!r}; give 'x' or 'y'.")
    if not 0 < low < high < 1:
        raise ValueError(f"set_normal_deviate_axis: the limits ({low}, {high}) must satisfy 0 < low < high < 1 "
                         "(error rates where the probit is finite).")
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("function", functions=(_probit, _probit_inverse))
    (ax.set_xlim if which == "x" else ax.set_ylim)(low, high)
    size = matplotlib.font_manager.FontProperties(size=matplotlib.rcParams[f"{which}tick.labelsize"]).get_size_in_points()
    axis.set_major_locator(NormalDeviateLocator(which, size))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: _percent(v)))
    axis.set_minor_locator(matplotlib.ticker.NullLocator())


@styled
def plot_det(curves: Any, *, ax: Any = None, title: str = "DET") -> Figure:
    """DET curves: FRR against FAR on normal-deviate (probit) axes, as ISO/IEC 19795-1 draws them.

    Each rate is placed at its standard-normal quantile (:func:`set_normal_deviate_axis`) and the
    ticks are labelled in percent, as many as the panel has room for; lower left is better.  A dot
    marks each curve's EER, where it crosses the dotted FAR = FRR line.  The axes start at the
    smallest rate the scores can measure (one impostor pair, one genuine pair) and end just above
    the largest error plotted.
    """
    items = score_pairs(curves, "plot_det")
    fig, ax = figure_and_axes(ax, figsize=(6.4, 3.8))
    linestyle, color = _styles(items)
    far_min, frr_min, top = 1.0, 1.0, 0.5
    for run, protocol, scores, same in items:
        far, tar, _ = ev.roc(scores, same)
        frr = 1.0 - tar
        far_min = min(far_min, 1.0 / max(1, int((~same).sum())))
        frr_min = min(frr_min, 1.0 / max(1, int(same.sum())))
        keep = (far > 0) & (frr > 0)
        top = max(top, float(far[keep].max()) if keep.any() else 0.0, float(frr[keep].max()) if keep.any() else 0.0)
        eer = ev.verification_metrics(scores, same, fars=())["eer"]
        ax.plot(far[keep], frr[keep], ls=linestyle[run], color=color(protocol), lw=1.6,
                label=_label(run, protocol, f"(EER {100 * eer:.1f} %)"))
        if eer > 0:
            ax.plot([eer], [eer], "o", color=color(protocol), ms=4)
    top = min(0.999, top)
    ax.plot([min(far_min, frr_min), top], [min(far_min, frr_min), top], color="0.6", lw=0.8, ls=":",
            label="FAR = FRR")
    set_normal_deviate_axis(ax, "x", min(far_min, top / 2), top)
    set_normal_deviate_axis(ax, "y", min(frr_min, top / 2), top)
    ax.set(xlabel="false accept rate (FAR), normal-deviate scale",
           ylabel="false reject rate (FRR), normal-deviate scale", title=title)
    legend_right(ax)
    return fig


# ---------------------------------------------------------------------------------------------
# CMC
# ---------------------------------------------------------------------------------------------
@styled
def plot_cmc(curves: Any, *, max_rank: int = 20, ax: Any = None, title: str = "CMC") -> Figure:
    """Cumulative match characteristic: identification rate against rank (1..``max_rank``).

    Values are :class:`~hfr_tutorial.evaluate.ProtocolScores` or precomputed CMC arrays.
    """
    items = curve_items(curves, "plot_cmc")
    fig, ax = figure_and_axes(ax, figsize=(6.4, 3.6))
    linestyle, color = _styles(items)
    top = 1
    for run, protocol, value in items:
        cmc = value.cmc(max_rank) if hasattr(value, "cmc") else np.asarray(value, dtype=float).ravel()[:max_rank]
        if cmc.size == 0:
            name = f"{run}: {protocol}" if run else (protocol or "cmc")
            raise empty_input("plot_cmc", f"curve {name!r}", "ProtocolScores or a CMC array of at least one rank")
        ranks = np.arange(1, cmc.size + 1)
        top = max(top, cmc.size)
        ax.plot(ranks, cmc, ls=linestyle[run], color=color(protocol), marker="o", ms=2.5, lw=1.4,
                label=_label(run, protocol, f"(rank-1 {cmc[0]:.2f})"))
    ax.set(xlim=(0.5, top + 0.5), ylim=(0, 1.01), xlabel="rank", ylabel="identification rate", title=title)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    legend_right(ax)
    return fig


# ---------------------------------------------------------------------------------------------
# Score histograms
# ---------------------------------------------------------------------------------------------
@styled
def plot_score_histograms(curves: Any, *, bins: int = 40, thresholds: float | Mapping[str, float] | None = None) -> Figure:
    """Genuine and impostor score distributions, one panel per protocol (rows: runs).

    The overlap is what verification errors are made of; the title gives the decidability d'.
    ``thresholds`` (one value or ``{protocol: value}``) draws the decision threshold.
    """
    items = score_pairs(curves, "plot_score_histograms")
    runs = list(dict.fromkeys(item[0] for item in items))
    protocols = list(dict.fromkeys(item[1] for item in items))
    fig, axes = new_figure(len(runs), len(protocols), figsize=(3.3 * len(protocols), 2.6 * len(runs)), sharex=True)
    edges = np.linspace(min(s.min() for *_, s, _ in items), max(s.max() for *_, s, _ in items), bins + 1)
    for run, protocol, scores, same in items:
        ax = axes[runs.index(run), protocols.index(protocol)]
        threshold = thresholds.get(protocol) if isinstance(thresholds, Mapping) else thresholds
        draw_score_histogram(ax, scores, same, color=protocol_color(protocol), bins=edges, threshold=threshold)
        ax.set_title(f"{_label(run, protocol)}   {ax.get_title()}")
    axes[0, -1].legend(loc="upper left")
    return fig


def draw_score_histogram(ax: Any, scores: Any, same: Any, *, color: str = GENUINE_COLOR, bins: Any = 40,
                         threshold: float | None = None) -> Any:
    """Genuine (``color``) and impostor (grey) score densities on ``ax``; the title gives d'."""
    ((_, _, scores, same),) = score_pairs({"scores": (scores, same)}, "draw_score_histogram")
    scores = scores.astype(float)
    if np.ndim(bins) == 0:  # shared edges, so genuine and impostor bars have the same width
        bins = np.linspace(scores.min(), scores.max(), int(bins) + 1)
    sns.histplot(x=scores[~same], bins=bins, stat="density", color=IMPOSTOR_COLOR, element="step",
                 alpha=0.35, ax=ax, label="impostor")
    sns.histplot(x=scores[same], bins=bins, stat="density", color=color, element="step",
                 alpha=0.45, ax=ax, label="genuine")
    ax.set_title(f"d' = {ev.decidability(scores[same], scores[~same]):.2f}")
    if threshold is not None:
        ax.axvline(threshold, color="k", lw=1, ls="--", label="threshold")
    ax.set(xlabel="cosine similarity", ylabel="density")
    return ax

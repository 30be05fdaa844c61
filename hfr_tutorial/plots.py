"""Figures of the tutorial: they only draw what they are given (embeddings, scores, tables).

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``: a
notebook shows the returned figure, a script saves it with ``fig.savefig(...)``.  Figures are
built without pyplot's global state (no figure piles up in a long notebook) on an Agg canvas,
so the same inputs give the same pixels.  Modalities keep one colour everywhere
(:data:`MODALITY_COLORS`); a protocol ``"nir->vis"`` takes its probe modality's colour, and runs
compared side by side take :data:`RUN_COLORS`, chosen away from the modality hues.  Axis titles,
panel titles and legends name figures in words (:func:`metric_label`: ``rank1`` is "rank-1",
``val_vis_rank1`` "dev VIS rank-1"), never by their column names.

Curves (ROC, DET, CMC, histograms) take ``{protocol: scores}`` where scores are a
:class:`~hfr_tutorial.evaluate.ProtocolScores` or a ``(scores, same)`` pair, or
``{run: {protocol: scores}}`` to compare runs (one line style per run).

The diagrams are drawn by code too: :func:`plot_edgeface_architecture` walks the model's own
modules (stem, stages, blocks, head) and highlights what a tuning policy trains, so it is true of
the model it is given; :func:`plot_method_flow` draws the method's data flow and
:func:`plot_normalisation_axes` the axes BatchNorm, InstanceNorm and LayerNorm2d average over.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (UMAP, image grids),
``notebooks/01_baseline_rgb_model.ipynb`` and ``02_layer_freezing`` (the architecture, the
normalisation axes), ``03``-``05`` (the method's flow) and ``notebooks/06_evaluation.ipynb``
(everything else); ``05_full_training`` shows :func:`plot_data_efficiency`.
"""
from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from hfr_tutorial import evaluate as ev

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

RUN_COLORS: tuple[str, ...] = ("#4D4D4D", "#1B9E77", "#C49A00", "#66A61E", "#A6761D", "#E7298A", "#808000",
                               "#17BECF", "#111111")
"""Colours of runs compared in one figure (bars, training curves): greys, greens, browns and magenta,
away from the blue, purple and orange-red of :data:`MODALITY_COLORS`, so a run is never read as a sensor."""

GENUINE_COLOR = "#2E8B57"
IMPOSTOR_COLOR = "#9A9A9A"
RUN_LINESTYLES = ("-", "--", ":", "-.")
IDENTITY_MARKERS = ("o", "s", "^", "D", "P", "X", "v", "*", "<", ">", "h", "p")

_RC: dict[str, Any] = {
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


def styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw under the tutorial's style without touching the caller's rcParams."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(_RC):
            return func(*args, **kwargs)

    return wrapper


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **kw: Any) -> tuple[Figure, np.ndarray]:
    """A pyplot-free Figure on an Agg canvas and its axes (always a 2-D array)."""
    fig = Figure(figsize=figsize or (4.2 * ncols, 3.4 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def modality_color(modality: str) -> str:
    """The colour of a modality; unknown names get a stable colour from seaborn's palette."""
    key = str(modality).lower()
    if key in MODALITY_COLORS:
        return MODALITY_COLORS[key]
    palette = sns.color_palette("colorblind", 10).as_hex()
    return palette[sum(map(ord, key)) % len(palette)]


def modality_name(modality: str) -> str:
    """A modality as labels write it: ``"vis"`` -> ``"VIS"``, ``"thermal"`` -> ``"thermal"``."""
    return MODALITY_NAMES.get(str(modality).lower(), str(modality))


def run_color(index: int) -> str:
    """The colour of the ``index``-th run of a comparison (cycles through :data:`RUN_COLORS`)."""
    return RUN_COLORS[index % len(RUN_COLORS)]


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
        return modality_color(ev.parse_protocol(protocol)[0])
    except ValueError:
        return modality_color(protocol)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def _as_pair(value: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if hasattr(value, "scores") and hasattr(value, "same"):
        return np.asarray(value.scores), np.asarray(value.same, dtype=bool)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return np.asarray(value[0]).ravel(), np.asarray(value[1]).astype(bool).ravel()
    return None


def _curve_items(curves: Any) -> list[tuple[str | None, str, Any]]:
    """``[(run, protocol, value)]`` from one value, ``{protocol: v}`` or ``{run: {protocol: v}}``."""
    if not isinstance(curves, Mapping):
        return [(None, "", curves)]
    items: list[tuple[str | None, str, Any]] = []
    for key, value in curves.items():
        if isinstance(value, Mapping):
            items.extend((str(key), str(p), v) for p, v in value.items())
        else:
            items.append((None, str(key), value))
    if not items:
        raise ValueError("Nothing to plot: the curves dict is empty.")
    return items


def _pair_items(curves: Any) -> list[tuple[str | None, str, np.ndarray, np.ndarray]]:
    out = []
    for run, protocol, value in _curve_items(curves):
        pair = _as_pair(value)
        if pair is None:
            raise ValueError(
                f"Curve {protocol!r} holds a {type(value).__name__}; pass ProtocolScores "
                "(evaluate.score_protocols) or a (scores, same) pair."
            )
        out.append((run, protocol, *pair))
    return out


def _styles(items: Sequence[tuple]) -> tuple[dict[str | None, str], Callable[[str], str]]:
    runs = list(dict.fromkeys(item[0] for item in items))
    linestyle = {run: RUN_LINESTYLES[i % len(RUN_LINESTYLES)] for i, run in enumerate(runs)}
    return linestyle, protocol_color


def _label(run: str | None, protocol: str, extra: str = "") -> str:
    name = f"{run}: {protocol}" if run else protocol
    return f"{name} {extra}".strip()


def _legend_right(ax: Any) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _target(ax: Any, **kw: Any) -> tuple[Figure, Any]:
    if ax is not None:
        return ax.figure, ax
    fig, axes = new_figure(1, 1, **kw)
    return fig, axes[0, 0]


# ---------------------------------------------------------------------------------------------
# Verification and identification curves
# ---------------------------------------------------------------------------------------------


@styled
def plot_roc(curves: Any, *, ax: Any = None, title: str = "ROC", mark_far: float | None = 1e-2) -> Figure:
    """ROC curves, TAR against FAR on a log axis, one colour per protocol (legend: AUC).

    ``mark_far`` puts a dot at the operating point TAR@FAR of each curve.
    """
    items = _pair_items(curves)
    fig, ax = _target(ax, figsize=(6.4, 3.6))
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
    _legend_right(ax)
    return fig


DET_TICKS: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 0.999)
"""Error rates that may label a DET axis (those inside the axis limits are used), shown in percent."""


def _probit(p: Any) -> np.ndarray:
    from scipy.stats import norm

    return norm.ppf(np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12))


def _probit_inverse(z: Any) -> np.ndarray:
    from scipy.stats import norm

    return norm.cdf(np.asarray(z, dtype=float))


def _percent(p: float) -> str:
    return f"{100 * p:.6g} %"


def set_normal_deviate_axis(ax: Any, which: str, low: float, high: float) -> None:
    """Put an error-rate axis on the normal-deviate (probit) scale of ISO/IEC 19795-1 DET plots.

    A rate ``p`` sits at ``scipy.stats.norm.ppf(p)``: two Gaussian score distributions give a
    straight DET line, and the small error rates where good systems differ are spread out.  The
    ticks are the :data:`DET_TICKS` inside ``[low, high]``, labelled in percent.
    """
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("function", functions=(_probit, _probit_inverse))
    (ax.set_xlim if which == "x" else ax.set_ylim)(low, high)
    ticks = [t for t in DET_TICKS if low <= t <= high]
    axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: _percent(v)))
    axis.set_minor_locator(matplotlib.ticker.NullLocator())


@styled
def plot_det(curves: Any, *, ax: Any = None, title: str = "DET") -> Figure:
    """DET curves: FRR against FAR on normal-deviate (probit) axes, as ISO/IEC 19795-1 draws them.

    Each rate is placed at its standard-normal quantile (:func:`set_normal_deviate_axis`) and the
    ticks are labelled in percent; lower left is better.  A dot marks each curve's EER, where it
    crosses the dotted FAR = FRR line.  The axes start at the smallest rate the scores can measure
    (one impostor pair, one genuine pair) and end just above the largest error plotted.
    """
    items = _pair_items(curves)
    fig, ax = _target(ax, figsize=(6.4, 3.8))
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
    set_normal_deviate_axis(ax, "x", far_min, top)
    set_normal_deviate_axis(ax, "y", frr_min, top)
    ax.set(xlabel="false accept rate (FAR), normal-deviate scale",
           ylabel="false reject rate (FRR), normal-deviate scale", title=title)
    _legend_right(ax)
    return fig


@styled
def plot_cmc(curves: Any, *, max_rank: int = 20, ax: Any = None, title: str = "CMC") -> Figure:
    """Cumulative match characteristic: identification rate against rank (1..``max_rank``).

    Values are :class:`~hfr_tutorial.evaluate.ProtocolScores` or precomputed CMC arrays.
    """
    items = _curve_items(curves)
    fig, ax = _target(ax, figsize=(6.4, 3.6))
    linestyle, color = _styles(items)
    top = 1
    for run, protocol, value in items:
        cmc = value.cmc(max_rank) if hasattr(value, "cmc") else np.asarray(value, dtype=float)[:max_rank]
        ranks = np.arange(1, cmc.size + 1)
        top = max(top, cmc.size)
        ax.plot(ranks, cmc, ls=linestyle[run], color=color(protocol), marker="o", ms=2.5, lw=1.4,
                label=_label(run, protocol, f"(rank-1 {cmc[0]:.2f})"))
    ax.set(xlim=(0.5, top + 0.5), ylim=(0, 1.01), xlabel="rank", ylabel="identification rate", title=title)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    _legend_right(ax)
    return fig


@styled
def plot_score_histograms(curves: Any, *, bins: int = 40, thresholds: float | Mapping[str, float] | None = None) -> Figure:
    """Genuine and impostor score distributions, one panel per protocol (rows: runs).

    The overlap is what verification errors are made of; the title gives the decidability d'.
    ``thresholds`` (one value or ``{protocol: value}``) draws the decision threshold.
    """
    items = _pair_items(curves)
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
    scores = np.asarray(scores, dtype=float).ravel()
    same = np.asarray(same, dtype=bool).ravel()
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


# ---------------------------------------------------------------------------------------------
# Embedding pictures
# ---------------------------------------------------------------------------------------------


def _as_panels(embeddings: Any, default_title: str = "embeddings") -> dict[str, np.ndarray]:
    if isinstance(embeddings, Mapping):
        if not embeddings:
            raise ValueError("No embeddings to plot: the dict is empty.")
        return {str(k): np.asarray(v, dtype=np.float32) for k, v in embeddings.items()}
    return {default_title: np.asarray(embeddings, dtype=np.float32)}


def _check_panel_labels(panels: Mapping[str, np.ndarray], identities: Any, modalities: Any) -> tuple[np.ndarray, np.ndarray]:
    identities = np.asarray(identities).ravel()
    modalities = np.asarray(modalities).astype(str).ravel()
    for title, emb in panels.items():
        if emb.ndim != 2 or len(emb) != identities.size or identities.size != modalities.size:
            raise ValueError(
                f"Embeddings {title!r} have shape {emb.shape} but there are {identities.size} identities "
                f"and {modalities.size} modalities; pass one label of each per embedding row."
            )
    return identities, modalities


def reduce_2d(embeddings: np.ndarray, *, method: str = "umap", random_state: int = 0,
              n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int | None = None,
              metric: str = "cosine") -> np.ndarray:
    """2-D coordinates of embeddings by UMAP (umap-learn, seeded) or PCA.

    UMAP keeps neighbourhoods (who is close to whom) rather than distances; with a fixed
    ``random_state`` it is deterministic.  Falls back to PCA, with a warning, only when umap-learn
    cannot be imported.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if len(x) < 5:
        raise ValueError(f"Need at least 5 embeddings for a 2-D map, got {len(x)}.")
    if method not in ("umap", "pca"):
        raise ValueError(f"Unknown method {method!r}; use 'umap' or 'pca'.")
    if method == "umap":
        try:
            import umap
        except ImportError as err:  # pragma: no cover - umap-learn is a dependency
            warnings.warn(f"umap-learn could not be imported ({err}); drawing PCA instead.", stacklevel=2)
            method = "pca"
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=random_state).fit_transform(x)
    k = min(n_neighbors, len(x) - 1)
    knn = _exact_cosine_knn(x, k) if metric == "cosine" and len(x) <= _EXACT_KNN_MAX else (None, None, None)
    reducer = umap.UMAP(n_neighbors=k, min_dist=min_dist, n_epochs=n_epochs, metric=metric,
                        random_state=random_state, n_jobs=1, precomputed_knn=knn)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        return np.asarray(reducer.fit_transform(x))


_EXACT_KNN_MAX = 5000


def _exact_cosine_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, None]:
    """Exact k nearest neighbours by cosine distance (each point first, at distance 0).

    For the few thousand points a figure shows this is quick and exact, and it spares UMAP the
    approximate search (and its just-in-time compilation, the slowest part of a first call).
    """
    unit = ev.l2_normalize(x)
    dist = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    np.fill_diagonal(dist, -1.0)  # self first, even with duplicate points
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    d = np.take_along_axis(dist, idx, axis=1)
    d[:, 0] = 0.0
    return idx.astype(np.int32), d.astype(np.float32), None


def _pick(values: np.ndarray, n: int) -> np.ndarray:
    """``n`` values spread evenly over the sorted unique ``values`` (deterministic)."""
    unique = np.unique(values)
    if n >= unique.size:
        return unique
    return unique[np.linspace(0, unique.size - 1, n).round().astype(int)]


@styled
def plot_umap(
    embeddings: Any,
    identities: Any,
    modalities: Any,
    *,
    highlight: Sequence[Any] | int = 6,
    n_pair_lines: int = 15,
    random_state: int = 0,
    method: str = "umap",
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    point_size: float = 7.0,
) -> Figure:
    """UMAP maps of embeddings side by side (e.g. ``{"before": E0, "after": E1}``).

    Points are coloured by modality.  A few ``highlight``-ed identities (a count, or a list of
    identities) get their own marker, and thin lines join each VIS image to the NIR/thermal
    images of the same person for ``n_pair_lines`` identities: short lines mean the model puts a
    person's faces together whatever the sensor; long parallel lines mean the sensor moved them.
    Each panel is its own UMAP fit (``random_state`` fixed), so positions across panels are
    not comparable, only their arrangement.  Taught in ``notebooks/00_data_and_modality_gap.ipynb``.
    """
    panels = _as_panels(embeddings)
    identities, modalities = _check_panel_labels(panels, identities, modalities)
    marked = _pick(identities, highlight) if isinstance(highlight, int) else np.asarray(list(highlight))
    rng = np.random.default_rng(random_state)
    others = np.setdiff1d(np.unique(identities), marked)
    lined = np.concatenate([marked, rng.permutation(others)])[: max(0, n_pair_lines)]
    order = [m for m in ev._ordered_modalities(modalities, "vis")]
    fig, axes = new_figure(1, len(panels), figsize=(4.6 * len(panels), 4.4))
    for ax, (title, emb) in zip(axes[0], panels.items()):
        xy = reduce_2d(emb, method=method, random_state=random_state, n_neighbors=n_neighbors,
                       min_dist=min_dist, n_epochs=n_epochs)
        _draw_pair_lines(ax, xy, identities, modalities, lined)
        for mod in order:
            sel = (modalities == mod) & ~np.isin(identities, marked)
            ax.scatter(*xy[sel].T, s=point_size, color=modality_color(mod), alpha=0.55, lw=0, zorder=2)
        for k, ident in enumerate(marked):
            for mod in order:
                sel = (identities == ident) & (modalities == mod)
                ax.scatter(*xy[sel].T, s=point_size * 6, marker=IDENTITY_MARKERS[k % len(IDENTITY_MARKERS)],
                           color=modality_color(mod), edgecolor="k", lw=0.6, zorder=3)
        ax.set_title(title)
        ax.set(xticks=[], yticks=[], xlabel=f"{method.upper()} 1", ylabel=f"{method.upper()} 2")
    handles = [Patch(color=modality_color(m), label=m) for m in order]
    handles += [Line2D([], [], ls="", marker=IDENTITY_MARKERS[k % len(IDENTITY_MARKERS)], mfc="w", mec="k",
                       label=f"id {ident}") for k, ident in enumerate(marked)]
    handles.append(Line2D([], [], color="0.4", lw=0.6, label="same person, VIS to other"))
    axes[0, -1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def _draw_pair_lines(ax: Any, xy: np.ndarray, identities: np.ndarray, modalities: np.ndarray, lined: np.ndarray) -> None:
    from matplotlib.collections import LineCollection

    segments, colors = [], []
    for ident in lined:
        vis = np.flatnonzero((identities == ident) & (modalities == "vis"))
        if vis.size == 0:
            continue
        for j in np.flatnonzero((identities == ident) & (modalities != "vis")):
            segments.append([xy[vis[0]], xy[j]])
            colors.append(modality_color(modalities[j]))
    if segments:
        ax.add_collection(LineCollection(segments, colors=colors, linewidths=0.6, alpha=0.4, zorder=1))


def _ordered_images(identities: np.ndarray, modalities: np.ndarray, max_identities: int) -> np.ndarray:
    keep_ids = np.unique(identities)[:max_identities]
    order = {m: i for i, m in enumerate(ev._ordered_modalities(modalities, "vis"))}
    idx = np.flatnonzero(np.isin(identities, keep_ids))
    mod_rank = np.array([order[m] for m in modalities[idx]])
    return idx[np.lexsort((idx, mod_rank, identities[idx]))]


@styled
def plot_similarity_matrix(
    embeddings: Any,
    identities: Any,
    modalities: Any,
    *,
    max_identities: int = 12,
    vmin: float = -0.2,
    vmax: float = 1.0,
) -> Figure:
    """Cosine similarity of every image pair, ordered by identity then modality.

    With a good model each identity is a bright block on the diagonal; a modality gap shows as
    dim off-diagonal sub-blocks inside each identity (VIS against NIR/thermal).  The strips on
    the edges give each row's modality.  Pass ``{"before": E0, "after": E1}`` for panels.
    """
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    panels = _as_panels(embeddings)
    identities, modalities = _check_panel_labels(panels, identities, modalities)
    idx = _ordered_images(identities, modalities, max_identities)
    strip = np.array([matplotlib.colors.to_rgb(modality_color(m)) for m in modalities[idx]])[None]
    bounds = np.flatnonzero(np.diff(identities[idx]) != 0) + 0.5
    fig, axes = new_figure(1, len(panels), figsize=(4.4 * len(panels), 4.0))
    for ax, (title, emb) in zip(axes[0], panels.items()):
        e = ev.l2_normalize(emb[idx])
        image = ax.imshow(e @ e.T, cmap="magma", vmin=vmin, vmax=vmax)
        for b in bounds:
            ax.axhline(b, color="w", lw=0.4)
            ax.axvline(b, color="w", lw=0.4)
        divider = make_axes_locatable(ax)
        left = divider.append_axes("left", size="4%", pad=0.02)
        left.imshow(strip.transpose(1, 0, 2), aspect="auto")
        left.set_axis_off()
        ax.set(xticks=[], yticks=[], title=f"{title} ({len(np.unique(identities[idx]))} identities)")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="cosine similarity")
    mods = ev._ordered_modalities(modalities[idx], "vis")
    fig.legend(handles=[Patch(color=modality_color(m), label=m) for m in mods], loc="outside lower center", ncols=len(mods))
    return fig


# ---------------------------------------------------------------------------------------------
# Training, budgets, images and comparisons
# ---------------------------------------------------------------------------------------------

def _curve_group(col: str) -> str:
    """The panel a history column belongs to when one run is drawn (columns of one kind share a panel)."""
    c = str(col).lower()
    if "loss" in c or c in ("infonce", "pairwise", "distill", "contrastive"):
        return "loss"
    if c == "lr" or "lr_" in c or "learning_rate" in c:
        return "learning rate"
    if c.startswith("train_") and "acc" in c:
        return "training accuracy"
    if m := re.fullmatch(r"val_[a-z]+_(.+)", c):
        return f"dev {metric_label(m.group(1))}"
    if "second" in c or c in ("time", "duration"):
        return "seconds per epoch"
    return metric_label(col)


_GROUP_ORDER = ("loss", "learning rate", "training accuracy")


def _is_rate(col: str) -> bool:
    """A column whose values are shares in [0, 1] (drawn on the full 0-1 axis)."""
    c = str(col).lower()
    return any(t in c for t in ("rank", "acc", "auc", "tar")) and "loss" not in c


def _history_frames(history: Any) -> dict[str | None, "pandas.DataFrame"]:  # noqa: F821
    import pandas as pd

    if isinstance(history, Mapping) and all(isinstance(v, (pd.DataFrame, list)) for v in history.values()):
        return {str(k): pd.DataFrame(v) for k, v in history.items()}
    return {None: pd.DataFrame(history)}


def _baseline_values(baseline: Any) -> dict[str, float]:
    """``{column: value}`` of the reference lines: a mapping, or a history whose last row is used."""
    import pandas as pd

    if baseline is None:
        return {}
    if isinstance(baseline, pd.DataFrame):  # a history: the dev figures of its last epoch (not its losses)
        if baseline.empty:
            return {}
        last = baseline.iloc[-1]
        return {str(k): float(v) for k, v in last.items() if str(k).startswith("val_")}
    return {str(k): float(v) for k, v in dict(baseline).items()}


@styled
def plot_training_curves(history: Any, *, x: str = "epoch", columns: Sequence[str] | None = None,
                         baseline: Any = None, baseline_label: str = "baseline (before adaptation)",
                         ncols: int = 4) -> Figure:
    """The numeric columns of training histories against ``epoch``, with labels in words.

    * One run (a history DataFrame, or a list of row dicts): columns of one kind share a panel
      (the loss terms; the learning rate; the dev rank-1 of each probe modality, coloured by
      :data:`MODALITY_COLORS`; the seconds per epoch; any other column alone).
    * Several runs (``{run: history}``): one panel per column, each run one colour of
      :data:`RUN_COLORS` in every panel.

    Either way one legend serves the whole figure, below the panels, so it covers no curve.

    ``columns`` picks the columns to draw (default: every numeric one but ``x``).  ``baseline`` is
    ``{column: value}`` or the baseline's own history (the dev figures, ``val_*``, of its last
    epoch): a dashed line in the panel of each column it names, so a change (forgetting, say) is
    read against it.  Shares (rank-1, accuracy, AUC, TAR) are drawn on their full 0-1 axis, the
    learning rate on a linear one (a cosine decay to 0 has no log).
    """
    frames = _history_frames(history)
    if not frames:
        raise ValueError("plot_training_curves got an empty dict of histories; pass at least one run.")
    numeric: list[str] = []
    for frame in frames.values():
        for col in frame.select_dtypes("number").columns:
            if col != x and col not in numeric:
                numeric.append(str(col))
    if columns is not None:
        missing = [c for c in columns if c not in numeric]
        if missing:
            raise ValueError(f"plot_training_curves: column(s) {missing} are not numeric columns of the history; "
                             f"it has {numeric}.")
        numeric = [str(c) for c in columns]
    if not numeric:
        raise ValueError(f"The history has no numeric columns besides {x!r}; nothing to plot.")
    reference = _baseline_values(baseline)
    several = not (len(frames) == 1 and None in frames)
    loss_rank = {"infonce": 0, "pairwise": 1, "contrastive": 2, "distill": 3, "loss": 4}
    grouped: dict[str, list[str]] = {}
    for col in numeric:
        grouped.setdefault(_curve_group(col), []).append(col)
    if "loss" in grouped:  # the contrastive terms, then distillation, then their total
        grouped["loss"].sort(key=lambda c: loss_rank.get(c.lower(), 5))
    fixed = [g for g in _GROUP_ORDER if g in grouped]
    timing = [g for g in grouped if g == "seconds per epoch"]
    order = fixed + [g for g in grouped if g not in fixed + timing] + timing
    if several:  # one panel per column, in the order of their groups
        panels = {col: [col] for g in order for col in grouped[g]}
    else:
        panels = {g: grouped[g] for g in order}
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(3.3 * ncols, 2.6 * nrows + 0.45))
    handles: dict[str, Any] = {}
    for k, (name, cols) in enumerate(panels.items()):
        ax = axes.flat[k]
        for r, (run, frame) in enumerate(frames.items()):
            xs = frame[x] if x in frame else np.arange(1, len(frame) + 1)
            for c, col in enumerate(col for col in cols if col in frame):
                if several:
                    color, label = run_color(r), str(run)
                else:
                    mod = re.fullmatch(r"val_([a-z]+)_.+", col.lower())
                    color = modality_color(mod.group(1)) if mod else run_color(c)
                    label = metric_label(col)
                (line,) = ax.plot(xs, frame[col], color=color, marker="o", ms=2.5, lw=1.3, label=label)
                if several or len(cols) > 1:  # a lone curve is named by its panel's title
                    handles.setdefault(label, line)
        for col in cols:
            if col in reference:
                mod = re.fullmatch(r"val_([a-z]+)_.+", col.lower())
                color = modality_color(mod.group(1)) if mod and not several else "0.35"
                ax.axhline(reference[col], color=color, ls="--", lw=1.0)
                handles.setdefault(baseline_label, Line2D([], [], color="0.35", ls="--", lw=1.0))
        if all(_is_rate(col) for col in cols):
            ax.set_ylim(0, 1.02)
        elif name == "learning rate" or any(_curve_group(col) == "learning rate" for col in cols):
            ax.set_ylim(bottom=0)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        ax.set(title=metric_label(name) if several else name, xlabel=x)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    if several:  # the runs in the order given, then the reference line
        handles = {**{str(r): handles[str(r)] for r in frames if str(r) in handles}, **handles}
    if len(handles) > 1:  # one legend for the figure, below the panels: it covers no curve
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(4, len(handles)))
    return fig


def _budget_rows(table: Any) -> list[tuple[str, float, float]]:
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        frame = table.set_index("policy") if "policy" in table.columns else table
        return [(str(i), float(r["trainable"]), float(r["total"])) for i, r in frame.iterrows()]
    rows = []
    for name, value in dict(table).items():
        if isinstance(value, Mapping):
            rows.append((str(name), float(value["trainable"]), float(value["total"])))
        else:
            trainable, total = value
            rows.append((str(name), float(trainable), float(total)))
    return rows


@styled
def plot_parameter_budget(table: Any, *, highlight: str | None = "paper") -> Figure:
    """Trainable parameters of each tuning policy on a log scale, labelled with their share.

    ``table``: a DataFrame with ``policy``, ``trainable`` and ``total`` columns, or a dict
    ``{policy: (trainable, total)}`` / ``{policy: {"trainable": .., "total": ..}}``.  The grey
    bars are the whole network.  Taught in ``notebooks/02_layer_freezing.ipynb``.
    """
    rows = _budget_rows(table)
    if not rows:
        raise ValueError("The parameter table is empty.")
    fig, axes = new_figure(1, 1, figsize=(6.0, 0.45 * len(rows) + 1.2))
    ax = axes[0, 0]
    y = np.arange(len(rows))[::-1]
    totals = np.array([r[2] for r in rows])
    trainable = np.array([r[1] for r in rows])
    ax.barh(y, totals, color="0.88", height=0.7, label="total")
    colors = ["#C0392B" if r[0] == highlight else "#3A6FB0" for r in rows]
    ax.barh(y, np.maximum(trainable, 0.8), color=colors, height=0.7, label="trainable")
    for yi, (name, t, tot) in zip(y, rows):
        share = 100.0 * t / tot if tot else 0.0
        ax.text(max(t, 1.0) * 1.15, yi, f"{int(t):,} ({share:.2f} %)", va="center", fontsize=8)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.set_xscale("log")
    ax.set_xlim(0.8, totals.max() * 8)
    ax.set(xlabel="parameters (log scale)", title="trainable parameters per tuning policy")
    ax.grid(axis="y", visible=False)
    return fig


def _grid_cells(images: Any, ncols: int | None) -> list[list[Any]]:
    """Rows of cells from a grid array, a flat batch or nested lists."""
    def wrap(flat: Sequence[Any]) -> list[list[Any]]:
        width = ncols or len(flat)
        return [list(flat[i : i + width]) for i in range(0, len(flat), width)]

    if isinstance(images, np.ndarray):
        color = images.shape[-1] in (1, 3, 4)
        if images.ndim == 2 or (images.ndim == 3 and color):
            return [[images]]  # one image
        if images.ndim == 3 or (images.ndim == 4 and color):
            return wrap(list(images))  # a flat batch (N,H,W) or (N,H,W,C)
        if images.ndim in (4, 5):
            return [list(row) for row in images]  # a grid (R,C,H,W[,C])
        raise ValueError(f"images of shape {images.shape} are not a batch or grid of images.")
    rows = list(images)
    if rows and isinstance(rows[0], (list, tuple)):
        return [list(row) for row in rows]
    return wrap(rows)


@styled
def plot_image_grid(
    images: Any,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    *,
    ncols: int | None = None,
    titles: Sequence[Sequence[str]] | None = None,
    cell_size: float = 1.3,
) -> Figure:
    """A grid of face images, e.g. rows = identities and columns = VIS / NIR / thermal.

    ``images``: an array (rows, cols, H, W[, 3]), a list of rows (``None`` leaves a cell blank),
    or a flat batch (N, H, W[, 3]) wrapped every ``ncols`` images.  Grayscale cells are drawn in
    grey.  ``titles`` gives a caption per cell (same nesting as the grid).
    """
    cells = _grid_cells(images, ncols)
    nrows, ncols = len(cells), max(len(r) for r in cells)
    if row_labels is not None and len(row_labels) != nrows:
        raise ValueError(f"{len(row_labels)} row labels for {nrows} rows of images.")
    if col_labels is not None and len(col_labels) != ncols:
        raise ValueError(f"{len(col_labels)} column labels for {ncols} columns of images.")
    fig, axes = new_figure(nrows, ncols, figsize=(cell_size * ncols + 0.4, cell_size * nrows + 0.3))
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    for r in range(nrows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
            for side in ax.spines.values():
                side.set_visible(False)
            image = cells[r][c] if c < len(cells[r]) else None
            if image is not None:
                image = np.asarray(image)
                if image.ndim == 3 and image.shape[-1] == 1:
                    image = image[..., 0]
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0 if image.dtype == np.uint8 else None,
                          vmax=255 if image.dtype == np.uint8 else None)
            if titles is not None and r < len(titles) and c < len(titles[r]) and titles[r][c]:
                ax.set_title(titles[r][c], fontsize=7, pad=2)
            if col_labels is not None and r == 0:
                ax.set_title(col_labels[c] if titles is None else f"{col_labels[c]}\n{ax.get_title()}",
                             fontsize=9, color=MODALITY_COLORS.get(str(col_labels[c]).lower(), "k"))
            if row_labels is not None and c == 0:
                ax.set_ylabel(row_labels[r], fontsize=8, color=MODALITY_COLORS.get(str(row_labels[r]).lower(), "k"))
    return fig


@styled
def plot_metric_bars(table: Any, metric: str | Sequence[str] = "rank1", *, runs: Sequence[str] | None = None) -> Figure:
    """Bars comparing runs on each protocol, one panel per metric (e.g. ``["rank1", "tar_at_far_1e-2"]``).

    Runs take :data:`RUN_COLORS` in the order given, protocol labels their probe modality's colour,
    and titles and axes name each metric in words (:func:`metric_label`).

    ``table`` is :func:`~hfr_tutorial.evaluate.metrics_table` output, or anything it accepts
    (``{run: protocols}`` or a loaded ``metrics.json``).  ``runs`` picks and orders the runs.
    """
    import pandas as pd

    frame = table if isinstance(table, pd.DataFrame) else ev.metrics_table(table)
    metrics = [metric] if isinstance(metric, str) else list(metric)
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        raise ValueError(f"Metric(s) {missing} not in the table; it has {sorted(frame.columns)}.")
    order = list(runs) if runs is not None else list(dict.fromkeys(frame["run"]))
    frame = frame[frame["run"].isin(order)]
    protocols = list(dict.fromkeys(frame["protocol"]))
    fig, axes = new_figure(1, len(metrics), figsize=(max(4.5, 1.1 * len(protocols) * max(1, len(order)) / 2.2 + 1.5) * len(metrics), 3.6))
    palette = [run_color(i) for i in range(len(order))]
    for ax, name in zip(axes[0], metrics):
        sns.barplot(data=frame, x="protocol", y=name, hue="run", order=protocols, hue_order=order,
                    palette=palette, saturation=1.0, ax=ax, errorbar=None)
        for container in ax.containers:
            ax.bar_label(container, fmt="%.2f", fontsize=6, padding=1)
        for tick in ax.get_xticklabels():
            tick.set_color(protocol_color(tick.get_text()))
        ax.set(ylim=(0, 1.1) if frame[name].max() <= 1 else (0, None), title=metric_label(name),
               xlabel="probe -> gallery", ylabel=metric_label(name))
        ax.legend_.remove() if ax.legend_ is not None else None
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center")
    return fig


# ---------------------------------------------------------------------------------------------
# Diagrams: the architecture (drawn from the model), the method's data flow, normalisation axes
# ---------------------------------------------------------------------------------------------
TRAINED_COLOR = "#C0392B"
"""Fill of a box whose parameters the tuning policy trains (the highlight of :func:`plot_parameter_budget` too)."""
PARTLY_TRAINED_COLOR = "#F1A9A0"
"""Fill of a box of which the policy trains only some parameters."""
FROZEN_COLOR = "#E4E4E4"
"""Fill of a box whose parameters stay frozen (or of every box when no policy is given)."""
LAYERNORM_HATCH = "////"
"""The hatch that marks a LayerNorm's box in the architecture diagram."""


DATA_EFFICIENCY_MODELS: dict[str, str] = {"method": "the method (paper policy)", "full": "full fine-tuning",
                                           "oracle": "joint oracle (from scratch)"}
"""How :func:`plot_data_efficiency` names the models of ``benchmarks/data_efficiency.py``."""


@styled
def plot_data_efficiency(record: Mapping[str, Any]) -> Figure:
    """Eval rank-1 against the amount of paired data: one row per axis, one column per protocol.

    ``record`` is ``benchmarks/data_efficiency.py``'s ``data_efficiency.json`` (``summary.table``:
    mean, lowest and highest seed per model, axis, point and protocol; ``baseline``: the starting
    model before adaptation, named by ``baseline_name``, by default the RGB baseline).  Row 1 varies
    the paired identities (log axis, every image of each), row 2 the pairs per identity at
    ``pairs_at`` identities.  Each model is a line (the mean over seeds) with a band from its lowest
    to its highest seed; the dashed grey line is the starting model, where every curve starts from
    (the oracle excepted: it trains from scratch).
    """
    stats = list(record["summary"]["table"])
    if not stats:
        raise ValueError("plot_data_efficiency: the record's summary table is empty; run benchmarks/data_efficiency.py.")
    protocols = [p for p in ("vis->vis", "nir->vis", "thermal->vis") if any(s["protocol"] == p for s in stats)]
    models = [m for m in DATA_EFFICIENCY_MODELS if any(s["model"] == m for s in stats)]
    axes_rows = [("identities", "n_identities", "paired identities (every image of each)"),
                 ("pairs", "pairs_per_identity", f"pairs per identity (at {record.get('pairs_at', '?')} identities)")]
    fig, axes = new_figure(2, len(protocols), figsize=(3.6 * len(protocols), 6.4))
    seeds = len(record.get("seeds", []))
    for r, (axis, key, xlabel) in enumerate(axes_rows):
        for c, proto in enumerate(protocols):
            ax = axes[r, c]
            for i, model in enumerate(models):
                rows = sorted((s for s in stats if s["model"] == model and s["axis"] == axis and s["protocol"] == proto),
                              key=lambda s: s[key])
                if not rows:
                    continue
                x = np.array([s[key] for s in rows], dtype=float)
                color = run_color(i)
                ax.fill_between(x, [s["low"] for s in rows], [s["high"] for s in rows], color=color, alpha=0.18,
                                linewidth=0)
                ax.plot(x, [s["mean"] for s in rows], marker="o", ms=3.5, color=color,
                        label=DATA_EFFICIENCY_MODELS[model])
            base = record.get("baseline", {}).get(proto)
            if base is not None:
                ax.axhline(base, color="0.55", ls="--", lw=1,
                           label=record.get("baseline_name", "RGB baseline before adaptation"))
            if axis == "identities":
                ax.set_xscale("log")
            xs = sorted({s[key] for s in stats if s["axis"] == axis})
            ax.set_xticks(xs)
            ax.set_xticklabels([str(v) for v in xs])
            ax.minorticks_off()
            ax.set_ylim(0, 1.02)
            ax.set_xlabel(xlabel)
            probe = proto.split("->")[0]
            ax.set_title(f"{modality_name(probe)} probes vs VIS gallery", color=modality_color(probe))
            if c == 0:
                ax.set_ylabel("eval rank-1")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    fig.suptitle(f"How much paired data: eval rank-1, mean over {seeds} seeds (band: lowest to highest seed)")
    return fig


@dataclass(frozen=True)
class ArchitecturePart:
    """One box of :func:`plot_edgeface_architecture`: a module of the network and the parameters it owns.

    ``row`` is the stage (the stem sits in stage 0's row, the head in the last row), ``column`` the
    position in the row (0: stem or downsampling layer, 1...: the blocks). ``block`` names the box
    the part is drawn in (``"stem"``, ``"downsample"``, ``"ConvBlock"``, ``"SDTA"``, ``"head"``).
    ``module`` is the module's name in ``model.named_modules()``; ``parameters`` are full names as
    ``model.named_parameters()`` gives them, so they compare directly with
    :func:`hfr_tutorial.tuning.policy_parameter_names`.
    """

    row: int
    column: int
    block: str
    module: str
    label: str
    is_layernorm: bool
    parameters: tuple[str, ...]
    count: int


_BLOCK_NAMES = {"ConvBlock": "ConvBlock", "SplitTransposeBlock": "SDTA"}
_OWN_PARAMETER_PART = {"gamma": "mlp", "gamma_xca": "xca"}  # a block's layer scales join what they scale


def _backbone(model: Any) -> tuple[Any, str]:
    """The timm EdgeNeXt inside ``model`` and the prefix of its parameter names."""
    if hasattr(model, "model") and hasattr(model.model, "stem"):
        backbone, prefix = model.model, "model."
    else:
        backbone, prefix = model, ""
    if not all(hasattr(backbone, name) for name in ("stem", "stages", "head")):
        raise ValueError("plot_edgeface_architecture needs an EdgeFace (or a timm EdgeNeXt): a module with "
                         f"stem, stages and head; got a {type(model).__name__}.")
    return backbone, prefix


def _kernel(conv: Any) -> str:
    k = conv.kernel_size
    return f"{k[0]}×{k[1]}" if isinstance(k, tuple) else f"{k}×{k}"


def _part_label(name: str, module: Any) -> str:
    """A short label of a block's part (or of a stem/downsample/head layer) from its module."""
    import torch.nn as nn

    from hfr_tutorial.tuning import is_layernorm

    if is_layernorm(module):
        return "LayerNorm2d" if type(module).__name__ == "LayerNorm2d" else "LayerNorm"
    if isinstance(module, nn.Conv2d):
        stride = module.stride[0] if isinstance(module.stride, tuple) else module.stride
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return f"{'dw ' if depthwise else ''}conv {_kernel(module)}" + (f" /{stride}" if stride > 1 else "")
    if name == "convs":
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        return f"{len(convs)} dw conv{'s' if len(convs) != 1 else ''} {_kernel(convs[0])}" if convs else "convs"
    if name == "pos_embd":
        return "positional enc."
    if name == "xca":
        return "XCA attention"
    if name == "mlp":
        return "pointwise MLP"
    if name == "fc":
        out = getattr(module, "out_features", None)
        if out is None:
            weights = [p for p in module.parameters() if p.ndim == 2]
            out = weights[-1].shape[0] if weights else "?"
        return f"fc → {out}-d"
    return name


def edgeface_architecture(model: Any) -> list[ArchitecturePart]:
    """The boxes of the architecture diagram, walked from the model's own modules.

    The stem's and the downsampling layers' sub-layers, each block's parts (``conv_dw``, ``norm``,
    ``mlp``; in split-transpose (SDTA) blocks ``convs``, ``pos_embd``, ``norm_xca``, ``xca``,
    ``norm``, ``mlp``) and the head's layers become one part each; a block's layer scales
    (``gamma``, ``gamma_xca``) join the part whose output they scale. Every parameter of the model
    is in exactly one part, so the parts refine :func:`hfr_tutorial.tuning.parameter_groups` and
    every named tuning policy trains a union of whole parts.
    """
    from hfr_tutorial.tuning import is_layernorm

    backbone, prefix = _backbone(model)
    numel = {name: p.numel() for name, p in model.named_parameters()}
    parts: list[ArchitecturePart] = []

    def add(row: int, column: int, block: str, module_name: str, label: str, module: Any,
            extra: Sequence[str] = ()) -> None:
        names = tuple(f"{prefix}{module_name}.{n}" for n, _ in module.named_parameters()) + tuple(extra)
        if names:
            parts.append(ArchitecturePart(row, column, block, f"{prefix}{module_name}", label, is_layernorm(module),
                                          names, sum(numel[n] for n in names)))

    def add_layers(row: int, column: int, block: str, module_name: str, module: Any) -> None:
        children = list(module.named_children())
        if not children:
            add(row, column, block, module_name, _part_label(module_name.rsplit(".", 1)[-1], module), module)
        for child_name, child in children:
            add(row, column, block, f"{module_name}.{child_name}", _part_label(child_name, child), child)

    stage0_downsample = any(True for _ in backbone.stages[0].downsample.parameters()) if len(backbone.stages) else False
    offset = 1 if stage0_downsample else 0  # the stem gets its own row only when stage 0 has a downsampling layer
    add_layers(0, 0, "stem", "stem", backbone.stem)
    for i, stage in enumerate(backbone.stages):
        row = i + offset
        add_layers(row, 0, "downsample", f"stages.{i}.downsample", stage.downsample)
        for j, blk in enumerate(stage.blocks):
            block = _BLOCK_NAMES.get(type(blk).__name__, type(blk).__name__)
            base = f"stages.{i}.blocks.{j}"
            own = {n: f"{prefix}{base}.{n}" for n, _ in blk.named_parameters(recurse=False)}
            children = dict(blk.named_children())
            for child_name, child in children.items():
                extra = [full for n, full in own.items() if _OWN_PARAMETER_PART.get(n) == child_name]
                add(row, j + 1, block, f"{base}.{child_name}", _part_label(child_name, child), child, extra)
            placed = {n for part in parts for n in part.parameters}
            left = [full for full in own.values() if full not in placed]
            if left:
                parts.append(ArchitecturePart(row, j + 1, block, f"{prefix}{base}", "own parameters", False,
                                              tuple(left), sum(numel[n] for n in left)))
    head_row = len(backbone.stages) + offset
    add_layers(head_row, 0, "head", "head", backbone.head)
    placed = {n for part in parts for n in part.parameters}
    rest = tuple(n for n in numel if n not in placed)
    if rest:  # anything outside stem, stages and head (e.g. a norm before the head)
        parts.append(ArchitecturePart(head_row, 1, "other", "other", "other parameters", False, rest,
                                      sum(numel[n] for n in rest)))
    return parts


def _row_titles(model: Any, parts: Sequence[ArchitecturePart]) -> dict[int, str]:
    """'stage i' with its channels and resolution (1/stride of the input), 'stem', 'head'."""
    import torch.nn as nn

    from hfr_tutorial.tuning import is_layernorm

    backbone, _ = _backbone(model)
    offset = max(p.row for p in parts) - len(backbone.stages)  # 1 when the stem has a row of its own
    titles, stride = {}, 1
    for conv in (m for m in backbone.stem.modules() if isinstance(m, nn.Conv2d)):
        stride *= conv.stride[0]
    if offset:
        titles[0] = f"stem\n1/{stride} of the input size"
    for i, stage in enumerate(backbone.stages):
        for conv in (m for m in stage.downsample.modules() if isinstance(m, nn.Conv2d)):
            stride *= conv.stride[0]
        norms = [m for m in stage.blocks.modules() if is_layernorm(m)]
        channels = f"{norms[0].normalized_shape[0]} ch, " if norms else ""
        titles[i + offset] = f"stage {i}\n{channels}1/{stride} of the input size"
    titles[len(backbone.stages) + offset] = "head"
    return titles


def _text_color(face: str) -> str:
    r, g, b = matplotlib.colors.to_rgb(face)
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.55 else "black"


@styled
def plot_edgeface_architecture(model: Any, policy: str | None = None, ax: Any = None, *,
                               part_labels: bool = True, title: str | None = None) -> Figure:
    """EdgeFace (EdgeNeXt with a 512-d head) as boxes drawn from the model's own modules.

    One row per stage (the stem opens stage 0, a downsampling layer each later stage), one box per
    block, labelled ``ConvBlock`` (depth-wise conv, LayerNorm, pointwise MLP) or ``SDTA`` (timm's
    ``SplitTransposeBlock``: multi-scale depth-wise convs, positional encoding, cross-covariance
    attention over channels, MLP), with its parameter count; inside each box a strip per part with
    its own count (:func:`edgeface_architecture`). LayerNorms are hatched. With ``policy`` (a name of
    :data:`hfr_tutorial.tuning.POLICIES` or a ``groups:`` policy) the strips whose parameters that
    policy trains are filled in :data:`TRAINED_COLOR`, and the legend states trainable / total
    parameters. The model is not modified (the policy's parameters come from
    :func:`hfr_tutorial.tuning.policy_parameter_names`). ``part_labels=False`` leaves the strips
    unlabelled, for small panels. Each strip's patch has the part's module name as its ``gid``.

    Taught in ``notebooks/01_baseline_rgb_model.ipynb`` and ``notebooks/02_layer_freezing.ipynb``.
    """
    from matplotlib.patches import Rectangle

    from hfr_tutorial.tuning import policy_parameter_names

    parts = edgeface_architecture(model)
    numel = {name: p.numel() for name, p in model.named_parameters()}
    total = sum(numel.values())
    trained = policy_parameter_names(model, policy) if policy is not None else set()
    rows = sorted({p.row for p in parts})
    ncols = max(p.column for p in parts) + 1
    width, gap_x, height, gap_y = 1.0, 0.32, 1.0, 0.55
    fig, ax = _target(ax, figsize=(1.45 * (ncols + 1.2), 1.45 * len(rows) + 0.5))
    row_titles = _row_titles(model, parts)

    def top(row: int) -> float:
        return -row * (height + gap_y)

    boxes: dict[tuple[int, int], list[ArchitecturePart]] = {}
    for part in parts:
        boxes.setdefault((part.row, part.column), []).append(part)
    for (row, column), members in boxes.items():
        x, y_top = column * (width + gap_x), top(row)
        weights = [0.6 if p.is_layernorm else 1.0 for p in members]
        unit = height / sum(weights)
        y = y_top
        for part, w in zip(members, weights):
            inside = sum(n in trained for n in part.parameters)
            face = (TRAINED_COLOR if inside == len(part.parameters) else PARTLY_TRAINED_COLOR if inside
                    else FROZEN_COLOR)
            rect = Rectangle((x, y - w * unit), width, w * unit, facecolor=face, edgecolor="0.35", lw=0.6,
                             hatch=LAYERNORM_HATCH if part.is_layernorm else None, gid=part.module)
            ax.add_patch(rect)
            if part_labels:
                ax.text(x + width / 2, y - w * unit / 2, f"{part.label} · {part.count:,}", ha="center", va="center",
                        fontsize=5.4, color=_text_color(face),
                        bbox=dict(boxstyle="square,pad=0.05", fc=face, ec="none", alpha=0.85) if part.is_layernorm
                        else None)
            y -= w * unit
        ax.add_patch(Rectangle((x, y_top - height), width, height, fill=False, edgecolor="0.15", lw=1.1))
        block, count = members[0].block, sum(p.count for p in members)
        ax.text(x + width / 2, y_top + 0.04, f"{block}\n{count:,}", ha="center", va="bottom",
                fontsize=7 if part_labels else 5.5, linespacing=1.0,
                fontweight="bold" if block == "SDTA" else "normal")
        if (row, column + 1) in boxes:
            ax.annotate("", xy=(x + width + gap_x, y_top - height / 2), xytext=(x + width, y_top - height / 2),
                        arrowprops=dict(arrowstyle="->", lw=0.8, color="0.35"))
    # from the last box of a row to the first of the next: right, down, back left, into the next row
    for row, nxt in zip(rows, rows[1:]):
        last = max(c for r, c in boxes if r == row)
        x_end, mid = last * (width + gap_x) + width, top(row) - height / 2
        below = top(row) - height - gap_y / 2
        xs = [x_end, x_end + gap_x / 2, x_end + gap_x / 2, -gap_x / 2, -gap_x / 2]
        ys = [mid, mid, below, below, top(nxt) - height / 2]
        ax.plot(xs, ys, color="0.35", lw=0.8)
        ax.annotate("", xy=(0, top(nxt) - height / 2), xytext=(-gap_x / 2, top(nxt) - height / 2),
                    arrowprops=dict(arrowstyle="->", lw=0.8, color="0.35"))
    for row in rows:
        ax.text(-gap_x * 0.9, top(row) - height / 2, row_titles.get(row, ""), ha="right", va="center", fontsize=7.5)
    head_row = rows[-1]
    head_end = max(c for r, c in boxes if r == head_row) * (width + gap_x) + width
    ax.annotate("", xy=(head_end + gap_x, top(head_row) - height / 2), xytext=(head_end, top(head_row) - height / 2),
                arrowprops=dict(arrowstyle="->", lw=0.8, color="0.35"))
    ax.text(head_end + gap_x + 0.05, top(head_row) - height / 2, "embedding", ha="left", va="center", fontsize=7)
    n_trained = sum(numel[n] for n in trained)
    handles = [Patch(facecolor=FROZEN_COLOR, edgecolor="0.35", label="frozen" if policy else "a part of a block"),
               Patch(facecolor="white", edgecolor="0.35", hatch=LAYERNORM_HATCH, label="LayerNorm (hatched)")]
    if policy is not None:
        handles.insert(0, Patch(facecolor=TRAINED_COLOR, edgecolor="0.35",
                                label=f"trained by '{policy}': {n_trained:,} of {total:,} parameters "
                                      f"({100 * n_trained / total:.2f} %)"))
        if any(0 < sum(n in trained for n in p.parameters) < len(p.parameters) for p in parts):
            handles.insert(1, Patch(facecolor=PARTLY_TRAINED_COLOR, edgecolor="0.35", label="partly trained"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False, borderaxespad=0.2)
    variant = getattr(model, "variant", type(model).__name__)
    ax.set_title(title if title is not None else
                 f"{variant}: {total:,} parameters" + (f"; policy '{policy}'" if policy else ""), fontsize=9)
    ax.set_xlim(-2.1, ncols * (width + gap_x) + 0.1)
    ax.set_ylim(top(rows[-1]) - height - 0.15, top(rows[0]) + 0.45)
    ax.set_axis_off()
    return fig


# The method's data flow ------------------------------------------------------------------------
_FLOW_NODES: dict[str, tuple[float, float, float, float, str]] = {
    # name: (x, y, width, height, text)
    "vis_batch": (0.0, 3.6, 2.2, 1.0, "VIS batch\n(colour photos)"),
    "other_batch": (0.0, 1.2, 2.2, 1.0, "NIR / thermal batch\n(the same identities)"),
    "teacher": (3.2, 5.6, 2.8, 1.2, "frozen teacher\n(the RGB model: eval mode,\nno gradients)"),
    "student": (3.2, 1.2, 2.8, 3.4,
                "student\n(a copy of the RGB model,\ntuned under a policy:\nonly the policy's\nparameters train)"),
    "teacher_vis": (7.0, 5.7, 2.0, 1.0, "teacher's VIS\nembeddings"),
    "student_vis": (7.0, 3.6, 2.0, 1.0, "student's VIS\nembeddings"),
    "student_other": (7.0, 1.2, 2.0, 1.0, "student's NIR/thermal\nembeddings"),
    "distill": (10.0, 4.75, 2.6, 1.1, "self-distillation loss\n1 − cos(student VIS,\nteacher VIS)"),
    "contrastive": (10.0, 1.95, 2.6, 1.1, "contrastive loss\n(InfoNCE or pairwise)\nVIS vs NIR/thermal"),
    "total": (13.5, 3.15, 2.3, 1.2, "total loss =\ncontrastive\n+ λ · distill"),
}


def _flow_style(name: str) -> tuple[str, str, str]:
    """(face, edge, line style) of a node of the method's diagram."""
    light = lambda c: matplotlib.colors.to_hex(0.25 * np.array(matplotlib.colors.to_rgb(c)) + 0.75)  # noqa: E731
    if name in ("vis_batch", "student_vis", "teacher_vis"):
        return light(MODALITY_COLORS["vis"]), MODALITY_COLORS["vis"], "-"
    if name in ("other_batch", "student_other"):
        return light(MODALITY_COLORS["nir"]), MODALITY_COLORS["thermal"], "-"
    if name == "student":
        return light(TRAINED_COLOR), TRAINED_COLOR, "-"
    if name == "teacher":
        return FROZEN_COLOR, "0.45", "--"
    return "white", "0.25", "-"


def _flow_arrow(ax: Any, points: Sequence[tuple[float, float]], gid: str, *, color: str = "0.3",
                ls: str = "-", lw: float = 1.0, label: str | None = None) -> None:
    """A polyline ending in an arrow head; the arrow's annotation carries ``gid`` ('from->to')."""
    if len(points) > 2:
        xs, ys = zip(*points[:-1])
        ax.plot(xs, ys, color=color, ls=ls, lw=lw)
    arrow = ax.annotate("", xy=points[-1], xytext=points[-2],
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, ls=ls, shrinkA=0, shrinkB=0,
                                        mutation_scale=10))
    arrow.set_gid(gid)
    if label:
        (x0, y0), (x1, y1) = points[-2], points[-1]
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12, label, ha="center", va="bottom", fontsize=8, color=color)


@styled
def plot_method_flow(ax: Any = None) -> Figure:
    """The method's data flow: the student, the frozen teacher and the two losses.

    VIS and NIR/thermal batches of the same identities go through the student (the RGB model tuned
    under a policy); the contrastive loss compares its VIS with its NIR/thermal embeddings. The VIS
    batch also goes through the frozen teacher (the RGB model as it was), and the
    self-distillation loss compares the teacher's VIS embeddings with the student's. The total is
    contrastive + λ · distill, and its gradients (dashed, red) reach only the student's policy
    parameters; the teacher gets none. Each node's box has the node's name as its ``gid``, each
    arrow's annotation ``"from->to"``.

    Taught in ``notebooks/03_contrastive_alignment.ipynb``, ``04_self_distillation`` and ``05_full_training``.
    """
    from matplotlib.patches import FancyBboxPatch

    fig, ax = _target(ax, figsize=(10.5, 4.6))
    for name, (x, y, w, h, text) in _FLOW_NODES.items():
        face, edge, ls = _flow_style(name)
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.15", facecolor=face,
                                    edgecolor=edge, lw=1.6 if name in ("student", "teacher", "total") else 1.1, ls=ls,
                                    gid=name))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=7.5,
                fontweight="bold" if name in ("student", "teacher", "total") else "normal")

    def left(n: str, dy: float = 0.0) -> tuple[float, float]:
        x, y, w, h, _ = _FLOW_NODES[n]
        return x, y + h / 2 + dy

    def right(n: str, dy: float = 0.0) -> tuple[float, float]:
        x, y, w, h, _ = _FLOW_NODES[n]
        return x + w, y + h / 2 + dy

    vx, vy, vw, vh, _ = _FLOW_NODES["vis_batch"]
    _flow_arrow(ax, [right("vis_batch"), (3.2, right("vis_batch")[1])], "vis_batch->student")
    _flow_arrow(ax, [right("other_batch"), (3.2, right("other_batch")[1])], "other_batch->student")
    _flow_arrow(ax, [(vx + vw / 2, vy + vh), (vx + vw / 2, left("teacher")[1]), left("teacher")], "vis_batch->teacher")
    _flow_arrow(ax, [(6.0, right("vis_batch")[1]), left("student_vis")], "student->student_vis")
    _flow_arrow(ax, [(6.0, right("other_batch")[1]), left("student_other")], "student->student_other")
    _flow_arrow(ax, [right("teacher", -0.1), left("teacher_vis", 0.0)], "teacher->teacher_vis")
    _flow_arrow(ax, [right("teacher_vis"), (9.5, right("teacher_vis")[1]), (9.5, left("distill", 0.25)[1]),
                     left("distill", 0.25)], "teacher_vis->distill")
    _flow_arrow(ax, [right("student_vis", 0.2), (9.7, right("student_vis", 0.2)[1]), (9.7, left("distill", -0.25)[1]),
                     left("distill", -0.25)], "student_vis->distill")
    _flow_arrow(ax, [right("student_vis", -0.2), (9.7, right("student_vis", -0.2)[1]),
                     (9.7, left("contrastive", 0.25)[1]), left("contrastive", 0.25)], "student_vis->contrastive")
    _flow_arrow(ax, [right("student_other"), (9.5, right("student_other")[1]), (9.5, left("contrastive", -0.25)[1]),
                     left("contrastive", -0.25)], "student_other->contrastive")
    tx, ty, tw, th, _ = _FLOW_NODES["total"]
    _flow_arrow(ax, [right("distill"), (13.05, right("distill")[1]), (13.05, ty + th * 0.75), (tx, ty + th * 0.75)],
                "distill->total")
    ax.text(13.0, right("distill")[1] + 0.08, "× λ", ha="right", va="bottom", fontsize=9, fontweight="bold")
    _flow_arrow(ax, [right("contrastive"), (13.05, right("contrastive")[1]), (13.05, ty + th * 0.25),
                     (tx, ty + th * 0.25)], "contrastive->total")
    sx, sy, sw, sh, _ = _FLOW_NODES["student"]
    _flow_arrow(ax, [(tx + tw / 2, ty), (tx + tw / 2, 0.45), (sx + sw / 2, 0.45), (sx + sw / 2, sy)], "total->student",
                color=TRAINED_COLOR, ls="--", lw=1.2)
    ax.text((sx + sw / 2 + tx + tw / 2) / 2, 0.5, "backward: gradients reach only the student's policy parameters",
            ha="center", va="bottom", fontsize=7.5, color=TRAINED_COLOR)
    x, y, w, h, _ = _FLOW_NODES["teacher"]
    ax.text(x + w / 2, y + h + 0.08, "no gradient, never updated", ha="center", va="bottom", fontsize=7,
            color="0.35", style="italic")
    ax.set_xlim(-0.2, 16.0)
    ax.set_ylim(0.2, 7.3)
    ax.set_axis_off()
    ax.set_title("The method: contrastive alignment of the student, self-distillation to a frozen teacher", fontsize=9)
    return fig


# Normalisation axes -----------------------------------------------------------------------------
NORMALISATION_AXES: dict[str, tuple[str, ...]] = {
    "BatchNorm": ("N", "H×W"),
    "InstanceNorm": ("H×W",),
    "LayerNorm2d": ("C",),
}
"""The axes of an (N, C, H×W) feature tensor each normalisation averages over (one mean and variance per
combination of the other axes). LayerNorm2d is timm's, as EdgeNeXt/EdgeFace uses it (and ``nn.LayerNorm`` on
channels-last features, inside the blocks): over the channels at each position of each image."""

_NORM_CAPTIONS = {
    "BatchNorm": "one mean and variance per channel,\nover the batch and all positions",
    "InstanceNorm": "one per image and channel,\nover that image's positions",
    "LayerNorm2d": "one per image and position,\nover the channels there (EdgeNeXt)",
}


def normalisation_members(kind: str, shape: tuple[int, int, int] = (4, 6, 6),
                          anchor: tuple[int, int, int] | None = None) -> np.ndarray:
    """Boolean (N, C, P) mask of the cells that share one mean and variance with the ``anchor`` cell.

    ``kind`` is a key of :data:`NORMALISATION_AXES`, ``P`` the positions H×W flattened. The default
    anchor is the last image, the first channel and the last position, the cell the diagram shows
    on all three visible faces of its cube.
    """
    if kind not in NORMALISATION_AXES:
        raise ValueError(f"Unknown normalisation {kind!r}; choose one of {', '.join(NORMALISATION_AXES)}.")
    n, c, p = shape
    a = anchor if anchor is not None else (n - 1, 0, p - 1)
    axes = NORMALISATION_AXES[kind]
    members = np.ones(shape, dtype=bool)
    index = np.indices(shape)
    for k, axis in enumerate(("N", "C", "H×W")):
        if axis not in axes:  # a separate statistic per value of this axis
            members &= index[k] == a[k]
    return members


def _cube_faces(n: int, c: int, p: int, origin: tuple[float, float],
                depth: tuple[float, float]) -> list[tuple[str, tuple[int, int, int], np.ndarray]]:
    """The visible faces of an N x C x P block of cells: front (c = 0), top (p = P-1), right (n = N-1)."""
    ox, oy = origin
    dx, dy = depth

    def pt(i: float, k: float, j: float) -> tuple[float, float]:  # i along N, k along C (depth), j along P
        return ox + i + k * dx, oy + j + k * dy

    faces = []
    for i in range(n):
        for j in range(p):
            corners = [pt(i, 0, j), pt(i + 1, 0, j), pt(i + 1, 0, j + 1), pt(i, 0, j + 1)]
            faces.append(("front", (i, 0, j), np.array(corners)))
    for i in range(n):
        for k in range(c):
            corners = [pt(i, k, p), pt(i + 1, k, p), pt(i + 1, k + 1, p), pt(i, k + 1, p)]
            faces.append(("top", (i, k, p - 1), np.array(corners)))
    for k in range(c):
        for j in range(p):
            corners = [pt(n, k, j), pt(n, k + 1, j), pt(n, k + 1, j + 1), pt(n, k, j + 1)]
            faces.append(("right", (n - 1, k, j), np.array(corners)))
    return faces


NORMALISATION_COLOR = "#E9B949"
"""Fill of the cells that share one mean and variance in :func:`plot_normalisation_axes`."""


@styled
def plot_normalisation_axes(ax: Any = None, *, shape: tuple[int, int, int] = (4, 6, 6)) -> Figure:
    """Which cells of an (N, C, H×W) feature tensor BatchNorm, InstanceNorm and LayerNorm2d average over.

    The usual cube picture (as in Wu and He's Group Normalization paper): N across, C in depth, the
    positions H×W up. In each cube the shaded cells share one mean and one variance
    (:func:`normalisation_members`): BatchNorm a whole channel over the batch and every position,
    InstanceNorm one channel of one image, LayerNorm2d, EdgeNeXt's, the channel vector at one
    position of one image. All three then apply a learnt per-channel scale and shift. Each face
    cell's polygon has the ``gid`` ``"<kind>:<face>:<n>,<c>,<p>"``, shaded or not as its cell.

    Taught in ``notebooks/02_layer_freezing.ipynb``.
    """
    from matplotlib.patches import Polygon

    n, c, p = shape
    depth = (0.42, 0.32)
    fig, ax = _target(ax, figsize=(10.0, 3.6))
    shade = {"front": 1.0, "top": 0.86, "right": 0.74}
    step = n + c * depth[0] + 2.6
    for k, kind in enumerate(NORMALISATION_AXES):
        members = normalisation_members(kind, shape)
        ox = k * step
        for face, (i, ch, j), poly in _cube_faces(n, c, p, (ox, 0.0), depth):
            base = np.array(matplotlib.colors.to_rgb(NORMALISATION_COLOR if members[i, ch, j] else "white"))
            ax.add_patch(Polygon(poly, closed=True, facecolor=base * shade[face], edgecolor="0.35", lw=0.6,
                                 gid=f"{kind}:{face}:{i},{ch},{j}"))
        ax.annotate("", xy=(ox + n, -0.45), xytext=(ox, -0.45), arrowprops=dict(arrowstyle="->", lw=0.8, color="0.3"))
        ax.text(ox + n / 2, -0.55, "N (images)", ha="center", va="top", fontsize=8)
        ax.annotate("", xy=(ox - 0.4, p), xytext=(ox - 0.4, 0), arrowprops=dict(arrowstyle="->", lw=0.8, color="0.3"))
        ax.text(ox - 0.55, p / 2, "H×W (positions)", ha="right", va="center", rotation=90, fontsize=8)
        cx, cy = ox + n + 0.3, -0.3
        ax.annotate("", xy=(cx + c * depth[0], cy + c * depth[1]), xytext=(cx, cy),
                    arrowprops=dict(arrowstyle="->", lw=0.8, color="0.3"))
        ax.text(cx + c * depth[0] / 2 + 0.2, cy + c * depth[1] / 2 - 0.2, "C (channels)", ha="left", va="top",
                fontsize=8)
        ax.text(ox + (n + c * depth[0]) / 2, p + c * depth[1] + 0.35,
                f"{kind}\naverages over {' and '.join(NORMALISATION_AXES[kind])}", ha="center", va="bottom",
                fontsize=9, fontweight="bold")
        ax.text(ox + (n + c * depth[0]) / 2, -1.35, _NORM_CAPTIONS[kind], ha="center", va="top", fontsize=7.5)
    ax.set_xlim(-1.6, 3 * step - 2.0)
    ax.set_ylim(-2.6, p + c * depth[1] + 1.9)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title("Shaded: the cells that share one mean and variance (each normalisation then applies a learnt "
                 "per-channel scale and shift)", fontsize=8.5)
    return fig

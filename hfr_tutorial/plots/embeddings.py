"""Pictures of embeddings: 2-D maps (UMAP or PCA) with pair lines, and cosine similarity matrices.

These functions only draw: the 2-D coordinates come from :func:`hfr_tutorial.projection.reduce_2d`.
Both take one array of embeddings or ``{title: embeddings}`` (one panel each, e.g. ``{"before": E0,
"after": E1}``) with one identity and one modality label per row.  A map's axes are limited to
where its points are (:func:`robust_limits`), so one far outlier does not squeeze the rest of a
"before" map into a corner; the points left outside are counted in the panel.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (maps), ``03_contrastive_alignment``
(similarity matrices) and ``06_evaluation``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from mpl_toolkits.axes_grid1 import make_axes_locatable

from hfr_tutorial import evaluate as ev
from hfr_tutorial.palette import modality_color
from hfr_tutorial.plots.style import IDENTITY_MARKERS, empty_input, new_figure, styled
from hfr_tutorial.projection import reduce_2d

EMBEDDINGS_EXPECTED = "an (N, D) array of embeddings or {title: (N, D) array}, one row per labelled image"

OUTLIER_FENCE = 3.0
"""Tukey's "far out" fence: a map's axes end this many interquartile ranges beyond the quartiles."""


def embedding_panels(embeddings: Any, identities: Any, modalities: Any, *, function: str = "plot",
                     default_title: str = "embeddings") -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """``({title: (N, D) float32}, identities, modalities)``, checked: one label of each per row.

    Refused with a ValueError naming ``function``: an empty dict, a panel with no rows or not 2-D,
    and labels whose number differs from the rows.
    """
    if isinstance(embeddings, Mapping):
        if not embeddings:
            raise empty_input(function, "embeddings", EMBEDDINGS_EXPECTED)
        panels = {str(k): np.asarray(v, dtype=np.float32) for k, v in embeddings.items()}
    else:
        panels = {default_title: np.asarray(embeddings, dtype=np.float32)}
    identities = np.asarray(identities).ravel()
    modalities = np.asarray(modalities).astype(str).ravel()
    for title, emb in panels.items():
        if emb.size == 0:
            raise empty_input(function, f"embeddings {title!r}", EMBEDDINGS_EXPECTED)
        if emb.ndim != 2 or len(emb) != identities.size or identities.size != modalities.size:
            raise ValueError(
                f"{function}: embeddings {title!r} have shape {emb.shape} but there are {identities.size} identities "
                f"and {modalities.size} modalities; pass one label of each per embedding row."
            )
    return panels, identities, modalities


def robust_limits(values: Any, *, fence: float | None = OUTLIER_FENCE, pad: float = 0.05) -> tuple[float, float]:
    """Axis limits of one coordinate that keep its points in view but not its far outliers.

    The limits are the data's range cut at Tukey's fences, ``Q1 - fence * IQR`` and ``Q3 + fence *
    IQR`` (the default 3 is his "far out"), then widened by ``pad`` of their span on each side.
    Clusters of a map (one per modality before adaptation, say) sit within the fences, however far
    apart; a lone point far from every cluster does not, and no longer squeezes the rest into a
    corner.  ``fence=None`` keeps the whole range.  A coordinate whose quartiles coincide keeps its
    whole range too.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise empty_input("robust_limits", "values", "the finite coordinates of at least one point")
    low, high = float(v.min()), float(v.max())
    if fence is not None:
        q1, q3 = np.percentile(v, [25, 75])
        iqr = float(q3 - q1)
        if iqr > 0:
            low, high = max(low, float(q1 - fence * iqr)), min(high, float(q3 + fence * iqr))
    span = high - low
    if span <= 0:
        span = max(abs(low), 1.0)
    return low - pad * span, high + pad * span


def _pick(values: np.ndarray, n: int) -> np.ndarray:
    """``n`` values spread evenly over the sorted unique ``values`` (deterministic)."""
    unique = np.unique(values)
    if n >= unique.size:
        return unique
    return unique[np.linspace(0, unique.size - 1, n).round().astype(int)]


def _draw_pair_lines(ax: Any, xy: np.ndarray, identities: np.ndarray, modalities: np.ndarray, lined: np.ndarray) -> None:
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
    outlier_fence: float | None = OUTLIER_FENCE,
) -> Figure:
    """UMAP maps of embeddings side by side (e.g. ``{"before": E0, "after": E1}``).

    Points are coloured by modality.  A few ``highlight``-ed identities (a count, or a list of
    identities) get their own marker, and thin lines join each VIS image to the NIR/thermal
    images of the same person for ``n_pair_lines`` identities: short lines mean the model puts a
    person's faces together whatever the sensor; long parallel lines mean the sensor moved them.
    Each panel is its own UMAP fit (``random_state`` fixed), so positions across panels are
    not comparable, only their arrangement.  Each panel's axes are cut at ``outlier_fence``
    (:func:`robust_limits`; ``None`` shows every point) and the points beyond are counted in its
    lower right corner.  Taught in ``notebooks/00_data_and_modality_gap.ipynb``.
    """
    panels, identities, modalities = embedding_panels(embeddings, identities, modalities, function="plot_umap")
    marked = _pick(identities, highlight) if isinstance(highlight, int) else np.asarray(list(highlight))
    rng = np.random.default_rng(random_state)
    others = np.setdiff1d(np.unique(identities), marked)
    lined = np.concatenate([marked, rng.permutation(others)])[: max(0, n_pair_lines)]
    order = list(ev.ordered_modalities(modalities, "vis"))
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
        (x0, x1), (y0, y1) = robust_limits(xy[:, 0], fence=outlier_fence), robust_limits(xy[:, 1], fence=outlier_fence)
        ax.set(xlim=(x0, x1), ylim=(y0, y1))
        beyond = int(np.sum((xy[:, 0] < x0) | (xy[:, 0] > x1) | (xy[:, 1] < y0) | (xy[:, 1] > y1)))
        if beyond:
            ax.text(0.99, 0.01, f"{beyond} outlying point{'s' if beyond > 1 else ''} beyond the axes", ha="right",
                    va="bottom", fontsize=7, color="0.35", transform=ax.transAxes)
        ax.set_title(title)
        ax.set(xticks=[], yticks=[], xlabel=f"{method.upper()} 1", ylabel=f"{method.upper()} 2")
    handles = [Patch(color=modality_color(m), label=m) for m in order]
    handles += [Line2D([], [], ls="", marker=IDENTITY_MARKERS[k % len(IDENTITY_MARKERS)], mfc="w", mec="k",
                       label=f"id {ident}") for k, ident in enumerate(marked)]
    handles.append(Line2D([], [], color="0.4", lw=0.6, label="same person, VIS to other"))
    axes[0, -1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def _ordered_images(identities: np.ndarray, modalities: np.ndarray, max_identities: int) -> np.ndarray:
    keep_ids = np.unique(identities)[:max_identities]
    order = {m: i for i, m in enumerate(ev.ordered_modalities(modalities, "vis"))}
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
    panels, identities, modalities = embedding_panels(embeddings, identities, modalities,
                                                      function="plot_similarity_matrix")
    if max_identities < 1:
        raise ValueError(f"plot_similarity_matrix: max_identities={max_identities}; give at least 1.")
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
    mods = ev.ordered_modalities(modalities[idx], "vis")
    fig.legend(handles=[Patch(color=modality_color(m), label=m) for m in mods], loc="outside lower center", ncols=len(mods))
    return fig

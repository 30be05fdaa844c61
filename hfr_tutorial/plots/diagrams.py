"""Diagrams drawn by code: EdgeFace's architecture, the method's data flow, the axes normalisations average over.

Drawn from code, they stay true when the code changes: :func:`plot_edgeface_architecture` draws the
boxes :func:`hfr_tutorial.models.edgeface_architecture` reads from the model's own modules and
highlights the parameters it is told are trained (the caller asks the tuning policy for them:
:func:`hfr_tutorial.tuning.policy_parameter_names`), :func:`plot_method_flow` draws the method's data
flow and :func:`plot_normalisation_axes` the axes BatchNorm, InstanceNorm and LayerNorm2d average
over.  Like every figure here they take what they draw; they never decide what a policy trains.

Taught in ``notebooks/01_baseline_rgb_model.ipynb`` and ``02_layer_freezing`` (the architecture,
the normalisation axes) and ``03``-``05`` (the method's flow).
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch, Polygon, Rectangle

from hfr_tutorial.models.architecture import ArchitecturePart, architecture_row_titles, edgeface_architecture
from hfr_tutorial.palette import MODALITY_COLORS
from hfr_tutorial.plots.style import TRAINED_COLOR, figure_and_axes, styled

PARTLY_TRAINED_COLOR = "#F1A9A0"
"""Fill of a box of which only some parameters are trained."""
FROZEN_COLOR = "#E4E4E4"
"""Fill of a box whose parameters stay frozen (or of every box when nothing is marked trained)."""
LAYERNORM_HATCH = "////"
"""The hatch that marks a LayerNorm's box in the architecture diagram."""


def _text_color(face: str) -> str:
    r, g, b = matplotlib.colors.to_rgb(face)
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.55 else "black"


def _trained_names(model: Any, trained: Any) -> set[str]:
    """The set of trained parameter names, checked against the model's own names."""
    if trained is None:
        return set()
    if isinstance(trained, str):
        raise TypeError(f"plot_edgeface_architecture: trained={trained!r} is a string; pass the names of the "
                        "trained parameters, e.g. trained=hfr_tutorial.tuning.policy_parameter_names(model, "
                        f"{trained!r}), label={trained!r}.")
    names = {str(n) for n in trained}
    unknown = sorted(names - {n for n, _ in model.named_parameters()})
    if unknown:
        raise ValueError(f"plot_edgeface_architecture: {len(unknown)} trained name(s) are not parameters of this "
                         f"model, e.g. {unknown[:3]}; pass names as model.named_parameters() gives them "
                         "(hfr_tutorial.tuning.policy_parameter_names does).")
    return names


@styled
def plot_edgeface_architecture(model: Any, trained: Collection[str] | None = None, ax: Any = None, *,
                               label: str | None = None, part_labels: bool = True, title: str | None = None) -> Figure:
    """EdgeFace (EdgeNeXt with a 512-d head) as boxes drawn from the model's own modules.

    One row per stage (the stem opens stage 0, a downsampling layer each later stage), one box per
    block, labelled ``ConvBlock`` (depth-wise conv, LayerNorm, pointwise MLP) or ``SDTA`` (timm's
    ``SplitTransposeBlock``: multi-scale depth-wise convs, positional encoding, cross-covariance
    attention over channels, MLP), with its parameter count; inside each box a strip per part with
    its own count (:func:`~hfr_tutorial.models.edgeface_architecture`). LayerNorms are hatched.

    ``trained`` names the parameters that learn (as ``model.named_parameters()`` names them): the
    strips that own them are filled in :data:`~hfr_tutorial.plots.style.TRAINED_COLOR` (partly
    trained ones lighter), and the legend states trainable / total parameters, under ``label``
    (the policy's name, say).  To draw a tuning policy::

        plot_edgeface_architecture(model, policy_parameter_names(model, "paper"), label="paper")

    (:func:`hfr_tutorial.tuning.policy_parameter_names`); the drawing itself knows nothing of
    policies.  The model is not modified.  ``part_labels=False`` leaves the strips unlabelled, for
    small panels.  Each strip's patch has the part's module name as its ``gid``.

    Taught in ``notebooks/01_baseline_rgb_model.ipynb`` and ``notebooks/02_layer_freezing.ipynb``.
    """
    parts = edgeface_architecture(model)
    numel = {name: p.numel() for name, p in model.named_parameters()}
    total = sum(numel.values())
    marked = trained is not None
    trained = _trained_names(model, trained)
    rows = sorted({p.row for p in parts})
    ncols = max(p.column for p in parts) + 1
    width, gap_x, height, gap_y = 1.0, 0.32, 1.0, 0.55
    fig, ax = figure_and_axes(ax, figsize=(1.45 * (ncols + 1.2), 1.45 * len(rows) + 0.5))
    row_titles = architecture_row_titles(model, parts)

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
    handles = [Patch(facecolor=FROZEN_COLOR, edgecolor="0.35", label="frozen" if marked else "a part of a block"),
               Patch(facecolor="white", edgecolor="0.35", hatch=LAYERNORM_HATCH, label="LayerNorm (hatched)")]
    if marked:
        by = f" by '{label}'" if label else ""
        handles.insert(0, Patch(facecolor=TRAINED_COLOR, edgecolor="0.35",
                                label=f"trained{by}: {n_trained:,} of {total:,} parameters "
                                      f"({100 * n_trained / total:.2f} %)"))
        if any(0 < sum(n in trained for n in p.parameters) < len(p.parameters) for p in parts):
            handles.insert(1, Patch(facecolor=PARTLY_TRAINED_COLOR, edgecolor="0.35", label="partly trained"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False, borderaxespad=0.2)
    variant = getattr(model, "variant", type(model).__name__)
    ax.set_title(title if title is not None else
                 f"{variant}: {total:,} parameters" + (f"; trained: {label}" if label else ""), fontsize=9)
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
    fig, ax = figure_and_axes(ax, figsize=(10.5, 4.6))
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
    n, c, p = shape
    depth = (0.42, 0.32)
    fig, ax = figure_and_axes(ax, figsize=(10.0, 3.6))
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

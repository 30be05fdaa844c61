"""Grids of face images: rows of identities, columns of modalities (or any batch wrapped in rows).

A column or row labelled with a modality's name takes its colour (:mod:`hfr_tutorial.palette`), so
the grid's VIS/NIR/thermal headings match every later figure.  Taught in
``notebooks/00_data_and_modality_gap.ipynb`` and ``notebooks/01_baseline_rgb_model.ipynb``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from hfr_tutorial.palette import MODALITY_COLORS
from hfr_tutorial.plots.style import empty_input, new_figure, styled

IMAGES_EXPECTED = ("an array (rows, cols, H, W[, 3]), a flat batch (N, H, W[, 3]) or a list of rows of images, "
                   "with at least one image")


def _grid_cells(images: Any, ncols: int | None) -> list[list[Any]]:
    """Rows of cells from a grid array, a flat batch or nested lists."""
    def wrap(flat: Sequence[Any]) -> list[list[Any]]:
        width = ncols or len(flat)
        return [list(flat[i : i + width]) for i in range(0, len(flat), width)]

    if ncols is not None and ncols < 1:
        raise ValueError(f"plot_image_grid: ncols={ncols}; give at least 1 (or None for one row).")
    if isinstance(images, np.ndarray):
        if images.size == 0:
            raise empty_input("plot_image_grid", "images", IMAGES_EXPECTED)
        color = images.shape[-1] in (1, 3, 4)
        if images.ndim == 2 or (images.ndim == 3 and color):
            return [[images]]  # one image
        if images.ndim == 3 or (images.ndim == 4 and color):
            return wrap(list(images))  # a flat batch (N,H,W) or (N,H,W,C)
        if images.ndim in (4, 5):
            return [list(row) for row in images]  # a grid (R,C,H,W[,C])
        raise ValueError(f"plot_image_grid: images of shape {images.shape} are not a batch or grid of images.")
    rows = list(images) if images is not None else []
    if rows and isinstance(rows[0], (list, tuple)):
        cells = [list(row) for row in rows]
    else:
        cells = wrap(rows) if rows else []
    if not any(cell is not None for row in cells for cell in row):
        raise empty_input("plot_image_grid", "images", IMAGES_EXPECTED)
    return cells


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
        raise ValueError(f"plot_image_grid: {len(row_labels)} row labels for {nrows} rows of images.")
    if col_labels is not None and len(col_labels) != ncols:
        raise ValueError(f"plot_image_grid: {len(col_labels)} column labels for {ncols} columns of images.")
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

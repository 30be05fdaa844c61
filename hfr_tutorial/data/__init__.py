"""Data: the synthetic cross-spectral faces, the ``FaceSet`` model, the standard layout, alignment
and pseudo-NIR/thermal simulation of real photos.

Taught in ``notebooks/00_data_and_modality_gap.ipynb``.
"""
from .faceset import KNOWN_MODALITIES, SPLITS, FaceDataset, FaceSet, PairDataset, augment_image, cross_modalities
from .synthetic import (
    SYNTHETIC_MODALITIES,
    SyntheticConfig,
    render_grid,
    save_grid,
    synthetic_faceset,
    synthetic_identity_images,
)

__all__ = [
    "FaceSet", "FaceDataset", "PairDataset", "augment_image", "SPLITS", "KNOWN_MODALITIES", "cross_modalities",
    "SyntheticConfig", "SYNTHETIC_MODALITIES", "synthetic_faceset", "synthetic_identity_images",
    "render_grid", "save_grid",
]

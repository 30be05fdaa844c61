"""Faces for the agreement check and the calibration when the user brings none, or from a standard layout.

Taught in ``notebooks/08_edge_deployment.ipynb``; used by ``hfr-tutorial export`` and ``benchmarks/bench_deploy.py``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from hfr_tutorial.data import FaceSet
from hfr_tutorial.data.synthetic import synthetic_identity_images


def synthetic_faces(image_size: int, *, identities: Sequence[int] = range(20_000, 20_040), per_modality: int = 2,
                    modalities: Sequence[str] = ("vis", "nir", "thermal"),
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embedded synthetic faces (images, identities, modalities) at ``image_size``, for checks and calibration.

    Identities 20,000 and up are beyond every preset's identities; pass another range (e.g.
    ``range(30_000, 30_032)``) for a calibration set disjoint from the agreement set.
    """
    images, ids, mods = [], [], []
    for identity in identities:
        faces = synthetic_identity_images(int(identity), n=per_modality, modalities=modalities, size=image_size,
                                          seed=seed)
        for modality in modalities:
            images.append(faces[modality])
            ids += [int(identity)] * len(faces[modality])
            mods += [modality] * len(faces[modality])
    return np.concatenate(images), np.asarray(ids), np.asarray(mods)


def layout_faces(root: str | os.PathLike, image_size: int, *, max_faces: int = 512,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces of a standard layout (images, identities, modalities), resized to ``image_size``, at most ``max_faces``.

    Draws evenly over the layout (a seeded random subset when it holds more than ``max_faces``).
    """
    faceset = FaceSet.from_layout(root)
    n = len(faceset)
    if n == 0:
        raise ValueError(f"The layout {str(root)!r} holds no faces; give a layout with images (see data_scripts/).")
    index = np.arange(n) if n <= max_faces else np.sort(np.random.default_rng(seed).choice(n, max_faces, replace=False))
    images = np.asarray(faceset.images[index])
    if images.shape[1] != image_size:
        images = np.stack([np.asarray(Image.fromarray(im).resize((image_size, image_size), Image.BILINEAR))
                           for im in images])
    return images, faceset.identities[index], faceset.modalities[index]

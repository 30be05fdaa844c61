"""Image conversions and geometry shared by the simulated sensors (:mod:`hfr_tutorial.data.spectral`).

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Real photos, simulated sensors").
"""
from __future__ import annotations

import numpy as np

from ..align import template

_F = np.float32


def _as_rgb01(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"Expected an RGB (H, W, 3) or grey (H, W) image, got shape {img.shape}.")
    img = img[..., :3]
    if img.dtype == np.uint8:
        return img.astype(_F) / 255.0
    img = img.astype(_F)
    if img.min() < 0 or img.max() > 1:
        raise ValueError("Float images must lie in [0, 1]; pass uint8 or rescale first.")
    return img


def _to_uint8_grey3(x: np.ndarray) -> np.ndarray:
    g = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(_F)


def _landmarks(landmarks: np.ndarray | None, h: int, w: int) -> np.ndarray:
    if landmarks is None:
        pts = template(112) * np.array([w / 112.0, h / 112.0])
    else:
        pts = np.asarray(landmarks, dtype=np.float64)
        if pts.shape != (5, 2):
            raise ValueError(f"landmarks must be (5, 2) (x, y) of eyes, nose tip, mouth corners; got {pts.shape}.")
    return pts.astype(_F)


def _gauss(h: int, w: int, cx: float, cy: float, sigma: float) -> np.ndarray:
    x = np.arange(w, dtype=_F)
    y = np.arange(h, dtype=_F)
    return np.exp(-((y[:, None] - cy) ** 2) / (2 * sigma ** 2)) * np.exp(-((x[None, :] - cx) ** 2) / (2 * sigma ** 2))


def _face_frame(image: np.ndarray, landmarks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """``(rgb in [0, 1], landmarks in pixels, eye distance, landmarks' mean)`` of an aligned face.

    Every landmark-based rendering starts here; eyes at (almost) one place are refused, not rendered.
    """
    rgb = _as_rgb01(image)
    h, w = rgb.shape[:2]
    pts = _landmarks(landmarks, h, w)
    eye_d = float(np.linalg.norm(pts[1] - pts[0]))
    if eye_d < 2:
        raise ValueError("The eye landmarks are (almost) at the same place; pass real landmarks.")
    return rgb, pts, eye_d, pts.mean(axis=0)


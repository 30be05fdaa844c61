"""Five-point face alignment to the standard 112x112 face-recognition template.

Face recognition models such as EdgeFace are trained on faces *aligned* the same way: a
similarity transform (rotation, uniform scale, translation -- no shear, so the face keeps its
shape) moves five landmarks -- the two eye centres, the nose tip and the two mouth corners -- as
close as possible (least squares) to fixed positions in a 112x112 crop, the "ArcFace template".
The same step turns a NIR or thermal frame into the input the network expects, so cross-spectral
recognition starts with it too (landmarks then come from a detector that works in that band).

scikit-image estimates the transform (``SimilarityTransform``, Umeyama's method) and warps the
image (``warp``); this module only fixes the template and the conventions: landmarks are
``(x, y)`` pixel coordinates with ``(0, 0)`` the centre of the top-left pixel, in the order of
:data:`LANDMARK_ORDER`.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Bring your own data").
"""
from __future__ import annotations

import numpy as np
from skimage.transform import SimilarityTransform, warp

LANDMARK_ORDER: tuple[str, ...] = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")
"""Landmark order (image left to right: ``left_eye`` is the one with the smaller x)."""

ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
"""The standard five-point template of 112x112 face-recognition crops (insightface / ArcFace)."""


def template(size: int = 112) -> np.ndarray:
    """The five template points for a ``size`` x ``size`` crop (the 112 template scaled)."""
    if size < 16:
        raise ValueError(f"size={size}: an aligned face needs at least 16 px.")
    return ARCFACE_TEMPLATE_112 * (size / 112.0)


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (5, 2):
        raise ValueError(f"landmarks must have shape (5, 2): (x, y) of {list(LANDMARK_ORDER)}; got {pts.shape}.")
    if not np.all(np.isfinite(pts)):
        raise ValueError("landmarks contain NaN or infinite values; the detector found no face here.")
    return pts


def estimate_transform(landmarks: np.ndarray, size: int = 112) -> SimilarityTransform:
    """The least-squares similarity transform taking ``landmarks`` to the template of ``size``."""
    src = _check_landmarks(landmarks)
    dst = template(size)
    if np.linalg.norm(src[1] - src[0]) < 1e-6:
        raise ValueError("The two eye landmarks coincide: no alignment is possible. Check the landmark order "
                         f"{list(LANDMARK_ORDER)}.")
    if hasattr(SimilarityTransform, "from_estimate"):
        tform = SimilarityTransform.from_estimate(src, dst)
        ok = bool(tform)
    else:  # scikit-image < 0.26
        tform = SimilarityTransform()
        ok = tform.estimate(src, dst)
    if not ok:
        raise ValueError(f"Could not estimate a similarity transform from landmarks {src.tolist()} "
                         "(degenerate points); check the detector output.")
    return tform


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112, order: int = 1,
               mode: str = "edge") -> np.ndarray:
    """Warp ``image`` (H, W[, C], uint8 or float) so its landmarks land on the template; uint8 (size, size, C).

    ``order``: interpolation (0 nearest, 1 bilinear, 3 bicubic); ``mode``: how pixels outside
    the photo are filled (``edge`` repeats the border, ``constant`` is black).
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C), got shape {img.shape}.")
    tform = estimate_transform(landmarks, size)
    out_shape = (size, size) + img.shape[2:]
    warped = warp(img.astype(np.float64), inverse_map=tform.inverse, output_shape=out_shape,
                  order=order, mode=mode, cval=0.0, preserve_range=True)
    if img.dtype == np.uint8:
        return np.clip(np.round(warped), 0, 255).astype(np.uint8)
    return warped.astype(img.dtype)


def transform_points(points: np.ndarray, tform: SimilarityTransform) -> np.ndarray:
    """Apply ``tform`` to (N, 2) points (x, y)."""
    return tform(np.asarray(points, dtype=np.float64))


def alignment_error(landmarks: np.ndarray, size: int = 112) -> float:
    """Mean distance in pixels between the aligned landmarks and the template (0 for a perfect fit)."""
    tform = estimate_transform(landmarks, size)
    return float(np.linalg.norm(transform_points(landmarks, tform) - template(size), axis=1).mean())

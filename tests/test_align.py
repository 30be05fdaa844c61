"""Five-point similarity alignment: recovered transforms, landmark accuracy in pixels, errors."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import SimilarityTransform, warp

from hfr_tutorial.data.align import (
    ARCFACE_TEMPLATE_112,
    align_face,
    alignment_error,
    estimate_transform,
    template,
)
from hfr_tutorial.data.synthetic import synthetic_identity_images


def _random_similarity(rng):
    return SimilarityTransform(scale=rng.uniform(0.5, 2.5), rotation=rng.uniform(-0.7, 0.7),
                               translation=rng.uniform(-40, 80, size=2))


def test_template_scales():
    assert np.allclose(template(112), ARCFACE_TEMPLATE_112)
    assert np.allclose(template(224), 2 * ARCFACE_TEMPLATE_112)


@pytest.mark.parametrize("seed", range(5))
def test_known_transform_is_recovered(seed):
    rng = np.random.default_rng(seed)
    true = _random_similarity(rng)  # maps template -> photo
    landmarks = true(template(112))
    est = estimate_transform(landmarks, 112)  # must map photo -> template
    assert np.allclose(est.params, np.linalg.inv(true.params), atol=1e-6)
    assert alignment_error(landmarks) < 1e-6
    noisy = landmarks + rng.normal(0, 0.5, landmarks.shape)
    assert alignment_error(noisy) < 1.5


@pytest.mark.parametrize("seed", range(3))
def test_warped_image_puts_landmarks_on_the_template(seed):
    """Bright dots drawn at the photo's landmarks end up within a pixel of the template points."""
    rng = np.random.default_rng(seed)
    h, w = 260, 240
    turn = SimilarityTransform(scale=rng.uniform(1.0, 1.8), rotation=rng.uniform(-0.5, 0.5))
    centre = turn(template(112)).mean(axis=0)
    shift = np.array([w / 2, h / 2]) - centre + rng.uniform(-15, 15, size=2)  # keep the face inside the photo
    true = SimilarityTransform(matrix=SimilarityTransform(translation=shift).params @ turn.params)
    pts = true(template(112))
    yy, xx = np.mgrid[0:h, 0:w]
    photo = np.zeros((h, w), np.float64)
    for x, y in pts:
        photo += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))
    img = np.clip(photo * 255, 0, 255).astype(np.uint8)
    aligned = align_face(np.dstack([img] * 3), pts, 112)
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    a = aligned[..., 0].astype(float)
    for tx, ty in template(112):
        x0, y0 = int(round(tx)), int(round(ty))
        win = a[y0 - 4:y0 + 5, x0 - 4:x0 + 5]
        wy, wx = np.mgrid[-4:5, -4:5]
        cy = (win * wy).sum() / win.sum() + y0
        cx = (win * wx).sum() / win.sum() + x0
        assert np.hypot(cx - tx, cy - ty) < 1.0


def test_synthetic_face_realigned_after_a_known_warp():
    """A synthetic face warped by a known similarity aligns to the same crop as the original."""
    imgs, lms = synthetic_identity_images(2, 1, modalities=("vis",), size=128, seed=0, return_landmarks=True)["vis"]
    img, lm = imgs[0], lms[0]
    move = SimilarityTransform(scale=0.8, rotation=0.3, translation=(30, -10))
    moved = (warp(img / 255.0, move.inverse, output_shape=(160, 160), order=1, mode="edge") * 255).round().astype(np.uint8)
    a = align_face(img, lm, 112).astype(float)
    b = align_face(moved, move(lm), 112).astype(float)
    assert np.abs(a - b)[16:-16, 16:-16].mean() < 6.0  # same face, same crop (up to resampling)
    other = align_face(img, lm + np.array([8.0, 0.0]), 112).astype(float)  # wrong landmarks move the face
    assert np.abs(a - other)[16:-16, 16:-16].mean() > 8.0


def test_bad_landmarks_are_explained():
    with pytest.raises(ValueError, match=r"shape \(5, 2\)"):
        estimate_transform(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        estimate_transform(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="coincide"):
        estimate_transform(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="image must be"):
        align_face(np.zeros((2, 2, 2, 2)), template(112))

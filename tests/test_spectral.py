"""Pseudo-NIR and pseudo-thermal from real RGB photos (the faces of HFR_ASSETS), at both severities.

The ``mild`` tests are the original ones, pinned to ``severity="mild"`` (whose pixels must not
change); the ``realistic`` ones check the sensor model's effects on real faces.  The physical effects
one by one, and the byte-identity of ``mild``, are in ``tests/test_spectral_effects.py`` (no assets).
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import laplace
from sklearn.linear_model import LogisticRegression

from hfr_tutorial.data.spectral import pseudo_nir, pseudo_thermal, simulate, simulation_steps, skin_probability


@pytest.fixture(scope="module")
def faces(assets):
    """Real faces: (images uint8 (N, 112, 112, 3), identity names, is_colour)."""
    files = sorted((assets / "faces").glob("*/vis/*/*"))
    if not files:
        pytest.fail(f"{assets / 'faces'} holds no images (expected <set>/vis/<identity>/<file>)")
    imgs, names, colour = [], [], []
    for f in files:
        im = Image.open(f)
        colour.append(im.mode not in ("L", "LA"))
        imgs.append(np.asarray(im.convert("RGB").resize((112, 112), Image.BILINEAR)))
        names.append(f.parent.name)
    return np.stack(imgs), np.array(names), np.array(colour)


def _grey(x):
    return x.astype(float).mean(axis=2)


def _detail(x):
    """High-frequency energy: mean absolute Laplacian of the grey image."""
    return float(np.abs(laplace(_grey(x))).mean())


@pytest.mark.parametrize("severity", ["mild", "realistic"])
def test_outputs_are_one_channel_uint8_and_deterministic(faces, severity):
    imgs, _, _ = faces
    for fn in (pseudo_nir, pseudo_thermal):
        out = fn(imgs[0], seed=1, severity=severity)
        assert out.shape == imgs[0].shape and out.dtype == np.uint8
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
        assert np.array_equal(out, fn(imgs[0], seed=1, severity=severity))
        assert not np.array_equal(out, fn(imgs[0], seed=2, severity=severity))
        assert np.array_equal(fn(imgs[0], seed=None, severity=severity), fn(imgs[0], seed=None, severity=severity))


def test_nir_follows_red_and_smooths_skin(faces):
    imgs, _, colour = faces
    col = imgs[colour]
    assert len(col) >= 5
    corr_r, corr_b, detail_ratio = [], [], []
    for img in col:
        nir = pseudo_nir(img, seed=None, severity="mild")[..., 0].astype(float).ravel()
        corr_r.append(np.corrcoef(nir, img[..., 0].astype(float).ravel())[0, 1])
        corr_b.append(np.corrcoef(nir, img[..., 2].astype(float).ravel())[0, 1])
        detail_ratio.append(_detail(pseudo_nir(img, seed=None, severity="mild")) / _detail(img))
    assert np.mean(corr_r) > np.mean(corr_b)
    assert np.mean(corr_r) > 0.9
    assert np.mean(detail_ratio) < 0.9  # sub-surface scattering smooths the texture


@pytest.mark.parametrize("severity", ["mild", "realistic"])
def test_thermal_is_blurred_and_warm_faced(faces, severity):
    imgs, _, _ = faces
    for img in imgs[::5]:
        th = pseudo_thermal(img, seed=None, severity=severity)[..., 0].astype(float)
        if severity == "mild":  # realistic keeps sensor-scale detail (fixed-pattern noise): see the texture test
            assert _detail(np.dstack([th] * 3)) < 0.5 * _detail(img)
        centre = th[40:80, 35:77].mean()
        corners = np.mean([th[:8, :8].mean(), th[:8, -8:].mean()])
        assert centre > corners + 60  # the face is warmer than the room


def test_mild_thermal_knobs(faces):
    imgs, _, _ = faces
    stronger = pseudo_thermal(imgs[0], seed=None, blur=2.5, severity="mild")
    assert _detail(stronger) < _detail(pseudo_thermal(imgs[0], seed=None, severity="mild"))
    flat = pseudo_thermal(imgs[0], seed=None, contrast=0.4, severity="mild")
    assert flat.std() < pseudo_thermal(imgs[0], seed=None, severity="mild").std()


def test_realistic_thermal_knobs(faces):
    """Fewer sensor pixels and a wider PSF lose detail; more noise adds it; the palette recolours."""
    imgs, _, _ = faces
    img = imgs[0]
    base = pseudo_thermal(img, seed=None)
    assert _detail(pseudo_thermal(img, seed=None, native_size=16)) < _detail(base)
    assert _detail(pseudo_thermal(img, seed=None, native_size=96, psf=0.3)) > _detail(base)
    assert _detail(pseudo_thermal(img, seed=3, netd=0.5)) > _detail(pseudo_thermal(img, seed=3))
    black = pseudo_thermal(img, seed=None, palette="black-hot")
    assert np.array_equal(black, 255 - base)
    iron = pseudo_thermal(img, seed=None, palette="ironbow")
    assert not (iron[..., 0] == iron[..., 2]).all()  # false colour


@pytest.mark.parametrize("severity", ["mild", "realistic"])
def test_thermal_ignores_colour_cast(faces, severity):
    """A colour cast changes VIS a lot and the thermal simulation much less: emission has no colour."""
    imgs, _, colour = faces
    img = imgs[colour][0]
    cast = np.clip(img.astype(float) * np.array([1.15, 1.0, 0.8]), 0, 255).astype(np.uint8)
    vis_change = np.abs(cast.astype(float) - img).mean()
    th_change = np.abs(pseudo_thermal(cast, seed=None, severity=severity).astype(float)
                       - pseudo_thermal(img, seed=None, severity=severity)).mean()
    assert th_change < 0.5 * vis_change


def test_realistic_thermal_has_no_skin_texture_and_nir_keeps_more_of_the_face(faces):
    """The skin's fine structure (pores, wrinkles, freckles) barely survives in thermal; NIR keeps most of it.

    Measured on skin patches (cheeks, forehead) as the correlation between the photo's Laplacian and
    the simulated image's (here: thermal ~0.19, NIR ~0.82, the mild thermal ~0.35).
    """
    imgs, _, _ = faces
    patches = [(slice(68, 88), slice(24, 40)), (slice(68, 88), slice(72, 88)), (slice(18, 34), slice(40, 72))]

    def texture_corr(sim, img):
        ls, li = laplace(_grey(sim)), laplace(_grey(img))
        a = np.concatenate([ls[p].ravel() for p in patches])
        b = np.concatenate([li[p].ravel() for p in patches])
        return np.corrcoef(a, b)[0, 1]

    th = np.nanmean([texture_corr(pseudo_thermal(i, seed=None), i) for i in imgs[::7]])
    nir = np.nanmean([texture_corr(pseudo_nir(i, seed=None), i) for i in imgs[::7]])
    assert th < 0.3 and nir > th + 0.4


def test_simulation_steps_on_a_real_photo(faces):
    imgs, _, _ = faces
    for mod, fn in (("nir", pseudo_nir), ("thermal", pseudo_thermal)):
        steps = simulation_steps(imgs[0], mod, seed=4)
        assert steps[0][0] == "photo" and np.array_equal(steps[0][1], imgs[0])
        assert len(steps) >= 6 and all(im.shape == imgs[0].shape and im.dtype == np.uint8 for _, im in steps)
        assert np.array_equal(steps[-1][1], fn(imgs[0], seed=4))


@pytest.mark.parametrize("severity", ["mild", "realistic"])
def test_simulated_modalities_are_linearly_separable(faces, severity):
    """On colour photos a linear probe tells VIS, pseudo-NIR and pseudo-thermal apart.

    (A grey photo's mild pseudo-NIR is only a tone-mapped copy of it, so grey sets are left out.)
    """
    imgs, names, colour = faces
    imgs, names = imgs[colour], names[colour]
    nir = simulate(imgs, "nir", seed=0, severity=severity)
    th = simulate(imgs, "thermal", seed=0, severity=severity)
    X = np.concatenate([imgs, nir, th])[:, ::8, ::8].reshape(3 * len(imgs), -1) / 255.0
    y = np.repeat(["vis", "nir", "thermal"], len(imgs))
    ident = np.tile(names, 3)
    test = np.isin(ident, np.unique(names)[::2])  # identity-disjoint split
    acc = LogisticRegression(max_iter=1000, C=1.0).fit(X[~test], y[~test]).score(X[test], y[test])
    assert acc >= 0.9


def test_skin_probability_and_errors(faces):
    imgs, _, colour = faces
    p = skin_probability(imgs[colour][0])
    assert p.shape == (112, 112) and 0 <= p.min() and p.max() <= 1
    assert p[50:70, 40:72].mean() > p[:6, :6].mean() or p[:6, :6].mean() > 0.5  # skin where the face is
    grey = imgs[~colour][0] if (~colour).any() else np.repeat(imgs[0].mean(2, keepdims=True), 3, 2).astype(np.uint8)
    assert np.allclose(skin_probability(grey), 1.0)
    with pytest.raises(ValueError, match="RGB"):
        pseudo_nir(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        pseudo_thermal(imgs[0], landmarks=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        pseudo_thermal(imgs[0], landmarks=np.zeros((3, 2)), severity="mild")
    with pytest.raises(ValueError, match="modality"):
        simulate(imgs[:1], "sketch")

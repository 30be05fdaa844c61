"""The simulated sensors' physical effects one by one, the settings, and the byte-identical mild severity.

No real assets needed: synthetic faces (aligned to the template) and hand-made arrays.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy.ndimage import laplace

from hfr_tutorial.data import synthetic_identity_images
from hfr_tutorial.data.align import template
from hfr_tutorial.data.spectral import (DEFAULT_SEVERITY, REALISTIC_NIR, REALISTIC_THERMAL, NIRSettings, ThermalSettings,
                                        face_regions, glasses_mask, pseudo_nir, pseudo_thermal, settings_for, simulate,
                                        simulation_steps)
from hfr_tutorial.data.spectral import nir as N
from hfr_tutorial.data.spectral import thermal as T
from hfr_tutorial.data.spectral.regions import refine_irises


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return np.concatenate([synthetic_identity_images(i, n=2, size=112, seed=3)["vis"] for i in range(3)])


def _h(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def _detail(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    return float(np.abs(laplace(x.mean(axis=2) if x.ndim == 3 else x)).mean())


# ---------------------------------------------------------------------- mild: the old pixels, exactly

def test_mild_is_byte_identical_to_the_simulation_before_realistic(faces):
    """Digests of the outputs of the module as it was before the realistic severity (commit 55646e6)."""
    grey = np.repeat(faces[:1].mean(3, keepdims=True), 3, 3).astype(np.uint8)
    lm = np.repeat(template(112)[None], len(faces), 0).astype(np.float32)
    m = {"severity": "mild"}
    got = {
        "nir_stack": _h(simulate(faces, "nir", seed=5, **m)),
        "thermal_stack": _h(simulate(faces, "thermal", seed=5, **m)),
        "thermal_lm": _h(simulate(faces, "thermal", lm, seed=0, **m)),
        "nir_none": _h(pseudo_nir(faces[0], seed=None, smooth=2.0, vignetting=0.1, **m)),
        "thermal_opts": _h(pseudo_thermal(faces[1], seed=7, blur=2.0, contrast=0.5, noise=0.05, **m)),
        "thermal_grey": _h(pseudo_thermal(grey[0], seed=1, **m)),
        "nir_64": _h(pseudo_nir(synthetic_identity_images(9, n=1, size=64, seed=1)["vis"][0], seed=2, **m)),
    }
    assert got == {"nir_stack": "2f5f4dcce8b4aa7d", "thermal_stack": "dc9cc62ee038d92c",
                   "thermal_lm": "eeb0a308e321fb37", "nir_none": "a9c82e2c78214e6c",
                   "thermal_opts": "606d9eeadea1fc5c", "thermal_grey": "8a1ce42480eb1137",
                   "nir_64": "8ae08db193edbacf"}


def test_realistic_is_the_default_and_differs_from_mild(faces):
    assert DEFAULT_SEVERITY == "realistic"
    for fn in (pseudo_nir, pseudo_thermal):
        assert np.array_equal(fn(faces[0], seed=1), fn(faces[0], seed=1, severity="realistic"))
        assert not np.array_equal(fn(faces[0], seed=1), fn(faces[0], seed=1, severity="mild"))
    assert np.array_equal(simulate(faces[:2], "thermal", seed=3)[1], pseudo_thermal(faces[1], seed=4))


# ---------------------------------------------------------------------- settings

def test_settings_severities_and_overrides():
    assert settings_for("thermal") == REALISTIC_THERMAL and settings_for("nir") == REALISTIC_NIR
    assert settings_for("thermal", "mild", blur=2.0) is None
    assert settings_for("thermal", native_size=20).native_size == 20
    custom = ThermalSettings(native_size=50)
    assert settings_for("thermal", custom) is custom
    with pytest.raises(ValueError, match="severity 'harsh' unknown"):
        settings_for("nir", "harsh")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['blur'\]"):
        settings_for("thermal", blur=2.0)  # a mild knob under realistic
    with pytest.raises(ValueError, match="mild simulation takes"):
        settings_for("nir", "mild", native_size=3)
    with pytest.raises(ValueError, match="needs a NIRSettings"):
        settings_for("nir", custom)
    with pytest.raises(ValueError, match="warmer than ambient"):
        ThermalSettings(skin=20.0)
    with pytest.raises(ValueError, match="native_size"):
        ThermalSettings(native_size=4)
    with pytest.raises(ValueError, match="wavelength"):
        NIRSettings(wavelength=1300)
    with pytest.raises(ValueError, match="falloff"):
        NIRSettings(falloff=1.5)


def test_errors_name_the_problem(faces):
    with pytest.raises(ValueError, match="glasses=True needs severity='realistic'"):
        pseudo_thermal(faces[0], severity="mild", glasses=True)
    with pytest.raises(ValueError, match="one per image"):
        simulate(faces[:3], "nir", glasses=[True])
    with pytest.raises(ValueError, match="modality"):
        simulation_steps(faces[0], "sketch")


# ---------------------------------------------------------------------- regions

def test_regions_of_an_aligned_face(faces):
    r = face_regions(faces[0])
    assert r.colour and r.face.shape == (112, 112)
    assert r.skin[60:80, 45:67].mean() > 0.8  # cheeks and nose: skin
    assert r.background[:4, :4].mean() == 1.0 and r.head[:4, :4].max() == 0.0
    assert np.allclose(r.landmarks, template(112), atol=1e-4)
    assert abs(r.eye_d - np.linalg.norm(template(112)[1] - template(112)[0])) < 1e-3
    canthi = r.inner_canthi()
    assert r.landmarks[0, 0] < canthi[0, 0] < canthi[1, 0] < r.landmarks[1, 0]
    grey = np.repeat(faces[0].mean(2, keepdims=True), 3, 2).astype(np.uint8)
    assert not face_regions(grey).colour  # no colour cue: skin from the ellipse and darkness
    lenses, frame = glasses_mask(r)
    x, y = r.landmarks[0].round().astype(int)
    assert lenses[y, x] == 1.0 and lenses[100, 56] == 0.0 and frame.max() == 1.0


def test_irises_are_found_on_the_darkest_spot_near_the_template():
    img = np.full((112, 112), 0.7, np.float32)
    eyes = template(112)[:2].astype(np.float32)
    img[50:55, 40:45] = 0.1  # an iris 4 px right of the left template eye (38.3, 51.7)
    found = refine_irises(img, eyes, eye_d=35.0)
    assert np.allclose(found[0], (42, 52), atol=1.5)
    assert np.allclose(found[1], eyes[1], atol=4.5)  # flat elsewhere: stays within the search window


# ---------------------------------------------------------------------- thermal effects

def test_materials_skin_warm_hair_and_background_near_ambient(faces):
    r = face_regions(faces[0])
    t = T.material_temperature(r, ambient=22.0, skin=34.0, hair_warmth=2.5, brow_cooling=2.0)
    assert t[:3, :3].mean() == pytest.approx(22.0, abs=0.01)  # background: the room
    assert t[r.skin > 0.95].mean() > 33.0
    hair = (r.hair > 0.9) & (r.brows < 0.05)
    if hair.any():
        assert 22.0 < t[hair].mean() < 26.0


def test_heat_pattern_canthi_warmest_nose_cool(faces):
    r = face_regions(faces[0])
    off = T.facial_heat_pattern(r)
    cx, cy = r.inner_canthi()[0].round().astype(int)
    nx, ny = r.landmarks[2].round().astype(int)
    assert off[cy, cx] > 1.5 and off[ny - 2, nx] < -1.5
    assert off[cy, cx] >= off[r.skin > 0.5].max() - 0.3
    assert np.abs(T.facial_heat_pattern(r, scale=0.0)).max() == 0


def test_relief_cavities_warm_protrusions_cool(faces):
    r = face_regions(faces[0])
    lum = np.full((112, 112), 0.6, np.float32)
    lum[40:60, 30:50] = 0.2  # a dark (recessed) patch inside the face
    rel = T.relief_from_shading(lum, r, degrees=1.0, sigma=0.05)
    assert rel[50, 40] > 0.5 and rel[80, 56] < 0.2
    assert np.abs(T.relief_from_shading(lum, r, degrees=0.0)).max() == 0


def test_grazing_emission_darkens_the_outline_only(faces):
    r = face_regions(faces[0])
    t = np.full((112, 112), 34.0, np.float32)
    out = T.grazing_emissivity(t, r, ambient=22.0, loss=0.5)
    assert out[60, 56] == pytest.approx(34.0) and out[60, 2] < 30.0


def test_glasses_are_cold_in_thermal_and_transparent_in_nir(faces):
    img = faces[0]
    r = face_regions(img)
    x, y = r.landmarks[0].round().astype(int)
    t = np.full((112, 112), 35.0, np.float32)
    assert T.cold_glasses(t, r, ambient=22.0)[y, x] < 26.0
    th, th_g = pseudo_thermal(img, seed=None), pseudo_thermal(img, seed=None, glasses=True)
    assert th_g[y - 2:y + 3, x - 2:x + 3].mean() < th[y - 2:y + 3, x - 2:x + 3].mean() - 30  # eyes hidden by cold glass
    nir, nir_g = pseudo_nir(img, seed=None).astype(float), pseudo_nir(img, seed=None, glasses=True).astype(float)
    iris = (slice(y - 2, y + 3), slice(x - 2, x + 3))
    assert abs(nir_g[iris].mean() - nir[iris].mean()) < 25  # the eye still shows through the lens
    assert nir_g.max() >= nir.max() and (nir_g != nir).any()  # but the lens adds a glint


def test_optics_blur_and_sensor_sampling():
    rng = np.random.default_rng(0)
    scene = (30 + rng.standard_normal((112, 112))).astype(np.float32)
    blurred = T.optics_blur(scene, 1.5)
    assert _detail(blurred) < 0.3 * _detail(scene) and blurred.mean() == pytest.approx(scene.mean(), abs=0.05)
    assert np.array_equal(T.optics_blur(scene, 0), scene)
    native = T.microbolometer_sampling(scene, 28)
    assert native.shape == (28, 28) and native.mean() == pytest.approx(scene.mean(), abs=0.02)
    assert native.std() < 0.4 * scene.std()  # each sensor pixel averages 4x4 scene pixels
    assert T.upscale(native, (112, 112)).shape == (112, 112)


def test_fixed_pattern_belongs_to_the_camera_and_has_columns():
    a = T.fixed_pattern_noise((40, 40), camera_seed=1, pixel=0.05, column=0.2)
    assert np.array_equal(a, T.fixed_pattern_noise((40, 40), camera_seed=1, pixel=0.05, column=0.2))
    assert not np.array_equal(a, T.fixed_pattern_noise((40, 40), camera_seed=2, pixel=0.05, column=0.2))
    col_sd = a.mean(axis=0).std()
    assert col_sd > 0.1 and a.mean(axis=1).std() < 0.05  # stripes run down the columns
    n = T.temporal_noise((200, 200), np.random.default_rng(0), netd=0.08)
    assert n.std() == pytest.approx(0.08, rel=0.05)


def test_automatic_gain_ignores_absolute_temperature():
    rng = np.random.default_rng(1)
    frame = (25 + 5 * rng.random((30, 30))).astype(np.float32)
    a = T.automatic_gain(frame, 1, 99)
    assert a.min() == 0.0 and a.max() == 1.0
    assert np.allclose(a, T.automatic_gain(frame + 10.0, 1, 99), atol=1e-5)  # a warmer room: the same picture


def test_thermal_steps_and_camera(faces):
    steps = simulation_steps(faces[0], "thermal", seed=3, camera_seed=2)
    names = [n for n, _ in steps]
    assert names[0] == "photo" and any("sensor" in n for n in names) and any("automatic gain" in n for n in names)
    assert np.array_equal(steps[-1][1], pseudo_thermal(faces[0], seed=3, camera_seed=2))
    assert not np.array_equal(steps[-1][1], pseudo_thermal(faces[0], seed=3, camera_seed=5))
    assert [n for n, _ in simulation_steps(faces[0], "thermal", severity="mild")] == ["photo", "mild thermal"]
    assert any("glasses" in n for n, _ in simulation_steps(faces[0], "thermal", glasses=True))


# ---------------------------------------------------------------------- NIR effects

def test_nir_reflectance_follows_red():
    rng = np.random.default_rng(2)
    rgb = rng.random((50, 50, 3)).astype(np.float32)
    x = N.nir_reflectance(rgb, 850)
    cr = np.corrcoef(x.ravel(), rgb[..., 0].ravel())[0, 1]
    cb = np.corrcoef(x.ravel(), rgb[..., 2].ravel())[0, 1]
    assert cr > 0.8 > 0.3 > cb
    assert np.corrcoef(N.nir_reflectance(rgb, 940).ravel(), rgb[..., 0].ravel())[0, 1] > cr  # 940 nm: redder still


def test_ambient_light_rejection_flattens_a_side_light(faces):
    r = face_regions(faces[0])
    flat = np.full((112, 112), 0.5, np.float32)
    lit = flat * np.linspace(0.4, 1.6, 112, dtype=np.float32)[None, :]  # light from the right
    out = N.reject_ambient_light(lit, r, 1.0)
    core = r.face > 0.99
    assert out[core].std() < 0.3 * lit[core].std()
    assert np.array_equal(N.reject_ambient_light(lit, r, 0.0), lit)


def test_active_illumination_dark_background_bright_centre(faces):
    r = face_regions(faces[0])
    x = N.active_illumination(np.full((112, 112), 0.8, np.float32), r, falloff=0.5, background=0.2)
    assert x[2, 2] == pytest.approx(0.16, abs=0.01) and x[60, 56] > x[60, 22] > x[2, 2]


def test_skin_smoothing_keeps_edges_removes_texture():
    rng = np.random.default_rng(3)
    img = np.full((112, 112), 0.5, np.float32)
    img[:, 56:] = 0.9  # a strong edge
    tex = img + 0.02 * rng.standard_normal(img.shape).astype(np.float32)
    out = N.skin_smoothing(tex, 1.0)
    assert out[:, :50].std() < 0.75 * tex[:, :50].std()
    assert out[:, 58:].mean() - out[:, :54].mean() > 0.35


def test_irises_light_pupils_dark_or_bright(faces):
    r = face_regions(faces[0])
    base = np.full((112, 112), 0.5, np.float32)
    base[r.skin > 0.5] = 0.7
    x, y = r.irises[0]
    yy, xx = np.mgrid[0:112, 0:112]
    base[np.hypot(xx - x, yy - y) < 0.1 * r.eye_d] = 0.1  # a dark (brown) iris, as in the photo
    dark = N.iris_and_pupils(base, r, 1.0)
    assert dark[int(y), int(x)] < 0.1 and dark[int(y), int(x + 0.07 * r.eye_d)] > 0.3  # dark pupil, light iris
    bright = N.iris_and_pupils(base, r, 1.0, bright_pupil=True)
    assert bright[int(y), int(x)] > 0.8


def test_glints_on_the_nose_and_corneas(faces):
    r = face_regions(faces[0])
    base = np.full((112, 112), 0.4, np.float32)
    g = N.specular_highlights(base, r, None, 0.3)
    nx, ny = r.landmarks[2]
    assert g[int(ny - 0.08 * r.eye_d), int(nx)] > 0.55 and g[2, 2] == pytest.approx(0.4)
    a = N.specular_highlights(base, r, np.random.default_rng(0), 0.3)
    b = N.specular_highlights(base, r, np.random.default_rng(1), 0.3)
    assert not np.array_equal(a, b)  # the strength varies from photo to photo


def test_vignetting_and_sensor_noise():
    flat = np.full((112, 112), 0.6, np.float32)
    v = N.vignetting(flat, 0.4)
    assert v[56, 56] > v[0, 0] and v[0, 0] == pytest.approx(0.6 * (1 - 0.4), abs=0.02)
    rng = np.random.default_rng(0)
    dim = N.sensor_noise(np.full((112, 112), 0.1, np.float32), rng, shot=0.05, read=0.0)
    bright = N.sensor_noise(np.full((112, 112), 0.9, np.float32), rng, shot=0.05, read=0.0)
    assert bright.std() > 2 * dim.std()  # shot noise grows with the signal
    assert np.array_equal(N.sensor_noise(flat, None, 0.05, 0.02), flat)
    low = N.sensor_noise(flat + np.random.default_rng(1).random(flat.shape).astype(np.float32) * 0.2, None, 0, 0, 28)
    assert low.shape == (112, 112)


def test_nir_steps(faces):
    steps = simulation_steps(faces[1], "nir", seed=2)
    assert steps[0][0] == "photo" and any("nm" in n for n, _ in steps)
    assert np.array_equal(steps[-1][1], pseudo_nir(faces[1], seed=2))


def test_a_realistic_face_takes_milliseconds(faces):
    """Vectorised numpy: far below a tenth of a second per face even on a busy machine (a loose bound)."""
    import time

    t = time.perf_counter()
    simulate(faces, "thermal", seed=0)
    simulate(faces, "nir", seed=0)
    assert (time.perf_counter() - t) / (2 * len(faces)) < 0.1

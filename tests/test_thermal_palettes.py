"""Thermal palettes (hfr_tutorial.data.thermal_palettes): round trips, detection with a stated confidence, wrong
palettes."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hfr_tutorial.data import synthetic_identity_images
from hfr_tutorial.data.thermal_palettes import (DEFAULT_TOLERANCE, PALETTES, apply_palette, detect_palette,
                                                palette_curve, palette_to_grey)
from hfr_tutorial.data.spectral import pseudo_thermal

COLOUR = ("ironbow", "inferno", "rainbow")


@pytest.fixture(scope="module")
def thermal_faces() -> list[np.ndarray]:
    """White-hot simulated thermal faces (one channel): what a camera measured."""
    faces = np.concatenate([synthetic_identity_images(i, n=2, size=112, seed=5)["vis"] for i in range(3)])
    return [pseudo_thermal(f, seed=i)[..., 0] for i, f in enumerate(faces)]


def _jpeg(img: np.ndarray, quality: int = 85) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_curves_start_cold_and_are_distinct():
    for name in PALETTES:
        c = palette_curve(name)
        assert c.shape == (1024, 3) and c.min() >= 0 and c.max() <= 255
        steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
        assert steps.max() < 8  # a continuous curve, finely sampled
    assert palette_curve("ironbow")[0].sum() == 0 and palette_curve("ironbow")[-1].min() > 200  # black -> white
    assert palette_curve("black-hot")[0].min() == 255  # cold is white in black-hot


@pytest.mark.parametrize("name", PALETTES)
def test_round_trip_grey_palette_grey(name):
    grey = np.tile(np.arange(256, dtype=np.uint8), (3, 1))
    back, dist = palette_to_grey(apply_palette(grey, name), name)
    assert back.dtype == np.uint8 and back.shape == grey.shape
    assert np.abs(back.astype(int) - grey).max() <= 3 and dist.max() < 2.0


@pytest.mark.parametrize("name", COLOUR + ("black-hot",))
def test_round_trip_through_jpeg_on_thermal_faces(thermal_faces, name):
    """Exported as JPEG (colour noise, chroma subsampling): still within a few levels on average."""
    for grey in thermal_faces[:3]:
        back, dist = palette_to_grey(_jpeg(apply_palette(grey, name)), name)
        err = np.abs(back.astype(int) - grey)
        assert err.mean() < 4 and np.percentile(err, 95) < 14, (name, err.mean())
        assert (dist > DEFAULT_TOLERANCE).mean() < 0.05


@pytest.mark.parametrize("name", COLOUR)
def test_detect_palette_with_confidence(thermal_faces, name):
    exports = [_jpeg(apply_palette(g, name)) for g in thermal_faces]
    match = detect_palette(exports)
    assert match.name == name and not match.ambiguous
    assert match.confidence > 0.9 and match.confidence == match.fractions[name]
    assert all(match.fractions[o] < match.confidence for o in COLOUR if o != name)
    one = detect_palette(exports[0])
    assert one.name == name and "curve" in one.note


def test_grey_exports_are_white_or_black_hot_by_the_warm_face(thermal_faces):
    white = detect_palette(np.repeat(thermal_faces[0][..., None], 3, axis=2))
    assert white.name == "white-hot" and white.confidence > 0.99 and not white.ambiguous
    assert "heuristic" in white.note
    black = detect_palette(apply_palette(thermal_faces[0], "black-hot"))
    assert black.name == "black-hot" and not black.ambiguous
    flat = detect_palette(np.full((64, 64, 3), 128, np.uint8))
    assert flat.ambiguous  # no warm centre to tell the polarity


def test_wrong_palette_is_visible_in_the_distances(thermal_faces):
    """Reading an ironbow export with another palette leaves many pixels far from that curve.

    Inferno shares ironbow's dark end (black through purple), so its grey is only a few levels off,
    but a third of a full-range ramp lies off its curve; rainbow and the grey palettes are far off.
    """
    ramp = np.tile(np.arange(256, dtype=np.uint8), (3, 1))
    export = apply_palette(ramp, "ironbow")
    _, good = palette_to_grey(export, "ironbow")
    assert (good > DEFAULT_TOLERANCE).mean() == 0
    for wrong, min_error in (("inferno", 2), ("rainbow", 30), ("white-hot", 15), ("black-hot", 60)):
        back, dist = palette_to_grey(export, wrong)
        assert (dist > DEFAULT_TOLERANCE).mean() > 0.25, wrong
        assert np.abs(back.astype(int) - ramp).mean() > min_error, wrong
    # a false-colour export is not grey: detection never calls it white-hot
    assert detect_palette(apply_palette(thermal_faces[1], "ironbow")).name == "ironbow"


def test_bad_inputs():
    with pytest.raises(ValueError, match="palette 'sepia' unknown"):
        apply_palette(np.zeros((4, 4), np.uint8), "sepia")
    with pytest.raises(ValueError, match="0-255"):
        apply_palette(np.full((4, 4), 300.0), "ironbow")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        palette_to_grey(np.zeros((4, 4, 5), np.uint8), "inferno")
    with pytest.raises(ValueError, match="no image"):
        detect_palette([])
    assert apply_palette(np.zeros((2, 2), np.uint8), "Iron").shape == (2, 2, 3)  # aliases

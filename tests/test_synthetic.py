"""The synthetic cross-spectral generator: determinism, shapes, physics cues and the modality gap.

The gap figures are measured here on raw pixels (never typed in): a linear classifier must tell
the modalities apart, and nearest-neighbour identification from NIR/thermal probes to a VIS
gallery must be far below VIS-to-VIS.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from hfr_tutorial.config import get_preset
from hfr_tutorial.data import SyntheticConfig, synthetic_faceset, synthetic_identity_images
from hfr_tutorial.data.synthetic import generate, main, render_grid, save_grid

TINY = get_preset("fast").replace(data__n_train_ids=6, data__n_dev_ids=2, data__n_eval_ids=4,
                                  data__images_per_modality=3, data__image_size=48)


@pytest.fixture(scope="module")
def tiny():
    return synthetic_faceset(TINY, seed=0, progress=False)


@pytest.fixture(scope="module")
def gap_data():
    """160 identities x 3 modalities x 4 images at 32 px (a few seconds)."""
    imgs, ids, mods, k, _ = generate(range(160), ["vis", "nir", "thermal"], 4, 32, seed=3)
    return imgs, ids, mods, k


def test_shapes_dtypes_and_splits(tiny):
    n = 12 * 3 * 3
    assert len(tiny) == n
    assert tiny.images.shape == (n, 48, 48, 3) and tiny.images.dtype == np.uint8
    assert tiny.identities.dtype == np.int64 and tiny.image_size == 48
    assert set(tiny.modalities) == {"vis", "nir", "thermal"}
    assert (tiny.paths == "").all()
    counts = {s: len(np.unique(tiny.identities[tiny.splits == s])) for s in ("train", "dev", "eval")}
    assert counts == {"train": 6, "dev": 2, "eval": 4}
    train = set(tiny.identities[tiny.splits == "train"])
    assert not train & set(tiny.identities[tiny.splits != "train"])
    assert tiny.landmarks.shape == (n, 5, 2)
    assert tiny.identity_name(3) == "syn00003"
    summary = tiny.summary()
    assert summary.loc["train", "vis"] == 18 and summary.loc["eval", "identities"] == 4


def test_same_seed_same_bytes_other_seed_differs(tiny):
    again = synthetic_faceset(TINY, seed=0, progress=False)
    assert np.array_equal(again.images, tiny.images)
    assert np.array_equal(again.identities, tiny.identities)
    other = synthetic_faceset(TINY, seed=1, progress=False)
    assert not np.array_equal(other.images, tiny.images)


def test_thread_count_does_not_change_pixels():
    a = generate(range(5), ["vis", "thermal"], 2, 32, seed=2, workers=1, chunk_images=4)[0]
    b = generate(range(5), ["vis", "thermal"], 2, 32, seed=2, workers=3, chunk_images=6)[0]
    assert np.array_equal(a, b)


def test_identity_images_match_the_faceset_and_are_prefix_stable(tiny):
    imgs = synthetic_identity_images(4, 3, size=48, seed=0)
    for m in ("vis", "nir", "thermal"):
        sel = tiny.subset((tiny.identities == 4) & (tiny.modalities == m))
        assert np.array_equal(sel.images, imgs[m])
    more = synthetic_identity_images(4, 5, modalities=("nir",), size=48, seed=0)
    assert np.array_equal(more["nir"][:3], imgs["nir"])


def test_nir_and_thermal_are_one_channel_vis_is_colour(tiny):
    for m in ("nir", "thermal"):
        x = tiny.select(modality=m).images.astype(int)
        assert (x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all()
    vis = tiny.select(modality="vis").images.astype(int)
    assert np.abs(vis[..., 0] - vis[..., 2]).mean() > 5


def test_physics_cues_at_the_landmarks():
    """Pupils are dark in NIR, the face is warmer than the room in thermal, eyes warmer than the nose tip."""
    out = synthetic_identity_images(7, 6, size=96, seed=0, return_landmarks=True,
                                    config=SyntheticConfig(noise=0.0))
    nir, lm = out["nir"]
    th, lm_t = out["thermal"]

    def at(img, xy):
        x, y = np.round(xy).astype(int)
        return float(img[y, x, 0])

    for img, pts in zip(nir, lm):
        cheek = at(img, (pts[0] + pts[3]) / 2)  # between eye and mouth corner
        assert at(img, pts[0]) < cheek and at(img, pts[1]) < cheek  # dark pupils, bright skin
    for img, pts in zip(th, lm_t):
        face = np.mean([at(img, p) for p in pts[:2]])
        corners = img[:4, :4, 0].mean()
        assert face > corners + 60  # warm face, room-temperature background
        assert at(img, pts[2]) < face  # nose tip cooler than the eyes


def test_knobs_change_what_they_say():
    def hf_energy(x):
        g = x[..., 0].astype(float)
        return np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=2)).mean()

    soft = generate(range(4), ["thermal"], 2, 48, config=SyntheticConfig(thermal_blur=3.0))[0]
    sharp = generate(range(4), ["thermal"], 2, 48, config=SyntheticConfig(thermal_blur=0.3, noise=0.0))[0]
    assert hf_energy(soft) < hf_energy(sharp)
    flat = generate(range(4), ["thermal"], 2, 48, config=SyntheticConfig(thermal_contrast=0.3))[0]
    full = generate(range(4), ["thermal"], 2, 48)[0]
    assert flat.std() < 0.5 * full.std()
    clean = generate(range(2), ["nir"], 1, 48, config=SyntheticConfig(noise=0.0))[0]
    noisy = generate(range(2), ["nir"], 1, 48, config=SyntheticConfig(noise=3.0))[0]
    assert hf_energy(noisy) > hf_energy(clean)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="thermal_blur"):
        SyntheticConfig(thermal_blur=-1)
    with pytest.raises(ValueError, match="probability"):
        SyntheticConfig(glasses_prob=2)
    with pytest.raises(ValueError, match="renders"):
        synthetic_identity_images(0, 1, modalities=("sketch",))
    with pytest.raises(ValueError, match="preset"):
        synthetic_faceset("nope", progress=False)


def test_linear_probe_tells_modalities_apart(gap_data):
    imgs, ids, mods, _ = gap_data
    X = imgs[:, ::4, ::4].reshape(len(imgs), -1).astype(np.float32) / 255.0  # 8x8x3 pixels
    train = ids < 80  # identity-disjoint train/test halves
    clf = LogisticRegression(max_iter=500, C=0.1).fit(X[train], mods[train])
    acc = clf.score(X[~train], mods[~train])
    assert acc >= 0.95, f"linear modality probe accuracy {acc:.3f} < 0.95"


def test_pixel_identification_gap(gap_data):
    """NIR/thermal -> VIS nearest-neighbour rank-1 on raw pixels is at most half of VIS -> VIS."""
    imgs, ids, mods, k = gap_data
    X = imgs.reshape(len(imgs), -1).astype(np.float32) / 255.0
    gallery = (mods == "vis") & (k == 0)
    G, gid = X[gallery], ids[gallery]
    rank1 = {}
    for m in ("vis", "nir", "thermal"):
        probe = (mods == m) & ~gallery
        P = X[probe]
        d = (P * P).sum(1)[:, None] - 2 * P @ G.T + (G * G).sum(1)[None]
        rank1[m] = float((gid[d.argmin(1)] == ids[probe]).mean())
    chance = 1 / len(gid)
    assert rank1["vis"] > 8 * chance, rank1  # identity is visible in raw VIS pixels at all
    assert rank1["nir"] <= 0.5 * rank1["vis"], rank1
    assert rank1["thermal"] <= 0.5 * rank1["vis"], rank1


def test_grid_picture(tmp_path):
    grid = render_grid(n_identities=2, n_per_modality=2, size=32)
    assert grid.dtype == np.uint8 and grid.shape[0] == 2 * 32 + 1 and grid.shape[1] > 6 * 32
    path = save_grid(tmp_path / "grid.png", n_identities=2, n_per_modality=1, size=32)
    assert path.stat().st_size > 1000
    main(["--grid", str(tmp_path / "cli.png"), "--identities", "1", "--per-modality", "1", "--size", "32"])
    assert (tmp_path / "cli.png").exists()

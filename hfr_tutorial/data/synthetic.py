"""Synthetic cross-spectral faces: procedural identities seen by three simulated sensors.

Real paired NIR-VIS and thermal-VIS face sets are licensed per user, so the tutorial ships a
generator instead. Each **identity** is a seeded parameter vector that fixes the face's
*geometry*: head and jaw shape, ears, hairline and hair style, the position and size of eyes,
brows, nose and mouth, optional glasses or beard, and a smooth identity-specific skin *relief*
(bumps of the skin surface, standing in for the bone structure and superficial vessels that make
faces individual). Each identity is then photographed by three simulated sensors, each a small
physically motivated renderer working on the same geometry:

``vis`` (visible light, colour camera)
    Reflectance (albedo) per facial region -- skin, lips, hair, sclera, iris, glasses -- under a
    directional light plus ambient light (Lambert shading from the head's surface normals and the
    relief), a little specular shine, an sRGB-like tone curve.  The relief also marks the skin's
    albedo (pigment and superficial vessels: slightly darker and redder).  Colour is a *per-image
    nuisance*: white balance, tint, exposure, background and clothes change from shot to shot, and
    skin tone varies only a little between identities, so a VIS model has to learn the face, not
    its palette.
``nir`` (about 850 nm, active illumination, one channel replicated to RGB)
    The camera carries its own illuminator, so light comes from the viewer: shading is mostly a
    facing-ratio fall-off, the background (farther away) is darker than the face (inverse-square
    law).  At 850 nm skin reflects strongly and melanin and haemoglobin absorb less: skin is bright
    and uniform, lips differ little from skin, skin tone hardly matters, dark hair looks dark-grey
    rather than black, irises of every colour look dark-grey, the sclera is bright, and the
    relief's vessel pattern shows as slightly darker skin (deoxygenated blood absorbs at 850 nm).  Light scatters under
    the skin, which smooths the image (a small blur); the sensor is noisier than a colour camera
    (fewer photons).
``thermal`` (long-wave infrared, 8-14 um, emission)
    Nothing is reflected: the camera sees temperature.  A temperature map is built per region --
    warm forehead and inner eye corners (the warmest spot of the face), cooler cheeks, cool nose
    tip and ears, cold hair (it insulates), glasses opaque and at room temperature, a warm open
    mouth -- plus the identity's relief as a pattern of warmer and cooler skin (vessels).  Skin
    near the silhouette looks cooler (emissivity falls at grazing angles).  The optics blur more
    (long wavelengths), automatic gain control maps the scene's temperature range to grey levels
    (the face's inner structure keeps less contrast than in VIS); column fixed-pattern noise and
    temporal noise are added.  White-hot polarity.

Every image adds nuisances: in-plane rotation, scale, shift, a small yaw (features move with their
depth), expression (smile, open mouth, raised brows, blinks, gaze), illumination, colour cast,
ambient temperature, sensor noise.  The strength of each is a knob of :class:`SyntheticConfig`.

The modality shift this produces is what the tutorial's method assumes: low-level (reflectance or
emission per region, texture, contrast, noise, blur) while the geometry that carries identity is
seen by all three sensors.  Identity-specific cues that only one sensor could see are kept small
(hair colour varies over dark shades only, the nose tip's coolness varies little between people),
so that what a model learns about a person in VIS is there to be found in NIR and thermal.  The
calibrated constants (``_THERMAL``, ``_NIR_*``, ``_RELIEF_ALBEDO``) were tuned by training models
on the ``fast`` preset: a model trained on all three modalities must find NIR and thermal probes in
a VIS gallery, a VIS-only model must not (``benchmarks/identity_checks.py`` measures both).  Raise
``thermal_blur`` or lower ``thermal_contrast`` to show where that
assumption stops holding.

Everything is vectorised NumPy over batches of images (no Python loop per pixel).  Image ``k`` of
identity ``i`` in modality ``m`` depends only on ``(seed, i, m, k)`` and the config, so
:func:`synthetic_identity_images` reproduces the images of :func:`synthetic_faceset`.

Taught in ``notebooks/00_data_and_modality_gap.ipynb``.

Command line: ``python -m hfr_tutorial.data.synthetic --grid docs/figures/synthetic_grid.png``.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Preset
    from .faceset import FaceSet

SYNTHETIC_MODALITIES: tuple[str, ...] = ("vis", "nir", "thermal")
"""The modalities the generator can render (VIS first)."""

LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")
"""Order of the five landmarks returned with ``return_landmarks=True`` (image left to right)."""

_F = np.float32
_MOD_INDEX = {"vis": 0, "nir": 1, "thermal": 2}
_N_BUMPS = 6  # relief bumps per identity
_GEOMETRY_SPREAD = 1.2  # calibrated: identity_spread=1 widens the base geometry ranges by this
# Thermal: temperature offsets (degrees C) of facial regions from the skin temperature, and the
# relief's vessel pattern amplitude.  Calibrated so that the regions that carry identity in VIS
# (brows, eyes, mouth, relief) stay visible after blur and gain control, as in real LWIR faces.
_THERMAL = {"brow": -2.5, "eye": 1.0, "lips": 0.8, "relief": 1.5, "canthus": 2.0,
            "hair": 0.62,  # hair surface: this share of the way from room to skin temperature
            "agc_lo": 1.0,  # gain control: black is this many degrees above room temperature
            "gamma": 1.4}  # tone curve: grey = stretched temperature ** gamma
# The relief also marks the skin's albedo (pigment and superficial vessels): slightly darker and
# redder in VIS, darker in NIR (haemoglobin absorbs at 850 nm), warmer in thermal.  One spatial
# pattern seen by all three sensors.
_RELIEF_ALBEDO = {"vis": 0.2, "nir": 0.2}
_NOSE_COOL = (0.9, 1.1)  # identity range of how much colder the nose tip is (thermal only)
_HAIR_MEL = (0.45, 1.0)  # identity range of hair melanin (0 blond .. 1 black)
_NIR_HAIR = (0.30, 0.18)  # NIR hair reflectance: a - b * melanin (dark hair looks dark-grey, not black)
_NIR_BG = 0.3  # NIR background reflectance range (walls the illuminator reaches)
_NIR_REGIONS = {"sclera": 0.8, "lips": 0.85}  # NIR: reflectance of the sclera; lips relative to skin
_NIR_NOISE = 0.015  # NIR sensor noise (fraction of full scale) at noise=1

GENERATOR_VERSION = 1
"""Bump when a change of this module changes the images it renders: the version (with the
generator's settings) keys the cached data and every model trained on it.  A test renders a small
fixed set and compares it with ``tests/data/generator_reference.npz``: it fails when the output
changes while this number stays the same."""


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the synthetic generator; the defaults are the tutorial's calibrated setting.

    Strength knobs are multipliers (1.0 = default, 0 = off); raise them to make the task harder.

    Attributes:
        pose: in-plane rotation, scale, shift and yaw of the head.
        expression: smile, open mouth, raised brows, blinks, gaze.
        illumination: direction and strength of the VIS light, NIR illuminator jitter, ambient
            temperature range in thermal.
        colour_cast: per-image white balance, tint and exposure of VIS images (and the spread of
            background and clothes colours).
        noise: sensor noise of every modality (VIS 1.2 %, NIR 1.5 %, thermal 2 % of full scale at 1.0).
        nir_blur: Gaussian blur of NIR images in pixels at 64 px (scales with the image size);
            imitates sub-surface scattering and the NIR lens.
        thermal_blur: Gaussian blur of thermal images in pixels at 64 px (scales with the image
            size); imitates the large point-spread function of long-wave optics.
        thermal_contrast: contrast of the thermal image after automatic gain control (1.0 = the
            camera stretches background-to-warmest over the full range; lower = flatter image).
        relief: strength of the identity-specific skin relief (shading in VIS/NIR, temperature
            pattern in thermal).
        identity_spread: how different identities are (scales every geometry parameter's
            deviation from the average face; lower = harder to tell people apart).
        glasses_prob, beard_prob: share of identities wearing glasses / with facial hair.
        zoom: face size in the frame (1.0 = eye distance 0.26 of the image width; about 1.2
            matches the tight ArcFace 112x112 template).
    """

    pose: float = 1.0
    expression: float = 1.0
    illumination: float = 1.0
    colour_cast: float = 1.0
    noise: float = 1.0
    nir_blur: float = 0.3
    thermal_blur: float = 0.4
    thermal_contrast: float = 1.0
    relief: float = 1.0
    identity_spread: float = 1.0
    glasses_prob: float = 0.2
    beard_prob: float = 0.25
    zoom: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"SyntheticConfig.{f.name}={value!r} is invalid: every knob is a finite number >= 0 "
                    "(1.0 = default strength). Fix the value you passed."
                )
        for name in ("glasses_prob", "beard_prob"):
            if getattr(self, name) > 1:
                raise ValueError(f"SyntheticConfig.{name}={getattr(self, name)} is a probability: use 0..1.")
        if self.zoom <= 0:
            raise ValueError("SyntheticConfig.zoom must be > 0 (1.0 = default face size).")


# --------------------------------------------------------------------------------------------
# Parameters: identities and per-image nuisances
# --------------------------------------------------------------------------------------------

def _lerp(lo: float, hi: float, t: np.ndarray, spread: float = 1.0) -> np.ndarray:
    """Map uniforms t in [0, 1] to [lo, hi], shrunk towards the middle by ``spread`` < 1."""
    mid = 0.5 * (lo + hi)
    return (mid + (t - 0.5) * (hi - lo) * spread).astype(_F)


def identity_parameters(identities: Sequence[int] | np.ndarray, seed: int = 0,
                        config: SyntheticConfig | None = None) -> dict[str, np.ndarray]:
    """The parameter vector of each identity (one row each), from ``(seed, identity)`` alone.

    Returns a dict of float32 arrays of shape ``(n,)`` (``bump_*`` arrays have shape
    ``(n, 6)``), in face units (the image half-width at neutral pose and ``zoom=1``).
    """
    cfg = config or SyntheticConfig()
    ids = np.asarray(identities, dtype=np.int64).reshape(-1)
    U = np.empty((len(ids), 64), dtype=np.float64)
    for row, ident in enumerate(ids):
        U[row] = np.random.default_rng([int(seed), 0x1D, int(ident)]).random(64)
    sp = cfg.identity_spread * _GEOMETRY_SPREAD  # geometry: how different faces are
    p: dict[str, np.ndarray] = {}
    L = lambda lo, hi, k: _lerp(lo, hi, U[:, k], sp)  # noqa: E731
    # head
    p["head_w"] = L(0.55, 0.75, 0)
    p["head_h"] = L(0.82, 1.0, 1)
    p["head_cy"] = L(-0.08, 0.0, 2)
    p["jaw"] = L(0.05, 0.5, 3)
    p["forehead"] = L(0.0, 0.22, 4)
    p["head_p"] = L(1.9, 2.8, 5)
    p["ear_y"] = L(-0.06, 0.08, 6)
    p["ear_h"] = L(0.09, 0.19, 7)
    p["ear_w"] = L(0.04, 0.10, 8)
    p["ear_out"] = L(-0.02, 0.05, 9)
    p["neck_w"] = L(0.26, 0.40, 10)
    # eyes and brows
    p["eye_y"] = L(-0.17, -0.05, 11)
    p["eye_x"] = L(0.20, 0.31, 12)
    p["eye_w"] = L(0.07, 0.11, 13)
    p["eye_h"] = L(0.030, 0.050, 14)
    p["eye_tilt"] = L(-0.18, 0.18, 15)
    p["iris_r"] = L(0.030, 0.040, 16)
    p["brow_gap"] = L(0.07, 0.15, 17)
    p["brow_t"] = L(0.015, 0.05, 18)
    p["brow_l"] = L(0.085, 0.14, 19)
    p["brow_arch"] = L(-0.005, 0.04, 20)
    p["brow_slant"] = L(-0.2, 0.2, 21)
    p["brow_in"] = L(-0.02, 0.03, 22)
    # nose and mouth
    p["nose_y"] = L(0.15, 0.31, 23)
    p["nose_w"] = L(0.055, 0.115, 24)
    p["nose_bridge"] = L(0.022, 0.05, 25)
    p["nose_h"] = L(0.05, 0.14, 26)
    p["mouth_y"] = p["nose_y"] + L(0.14, 0.26, 27)
    p["mouth_w"] = L(0.11, 0.22, 28)
    p["lip_u"] = L(0.012, 0.032, 29)
    p["lip_l"] = L(0.016, 0.040, 30)
    p["chin"] = L(0.0, 0.06, 31)
    p["cheek"] = L(0.0, 0.06, 32)
    p["socket"] = L(0.02, 0.06, 33)
    # hair: style 0 short, 1 covering the ears, 2 long, 3 receding / bald
    style = np.searchsorted(np.array([0.45, 0.65, 0.85]), U[:, 34]).astype(_F)
    p["hair_style"] = style
    p["hair_y"] = np.where(style == 3, L(-1.05, -0.85, 35), L(-0.78, -0.38, 35)).astype(_F)
    p["hair_curv"] = L(0.15, 1.0, 36)
    p["hair_part"] = L(-0.18, 0.18, 37)
    p["hair_vol"] = L(0.01, 0.17, 38)
    p["hair_len"] = L(0.35, 0.95, 39)
    p["fringe"] = (U[:, 40] < 0.18).astype(_F) * (style != 3)
    p["fringe_y"] = L(-0.42, -0.28, 41)
    # beard: 0 none, 1 moustache, 2 goatee, 3 full; glasses
    has_beard = U[:, 42] < cfg.beard_prob
    p["beard"] = np.where(has_beard, 1 + np.floor(U[:, 43] * 3), 0).astype(_F)
    p["beard_density"] = L(0.55, 1.0, 44)
    p["glasses"] = (U[:, 45] < cfg.glasses_prob).astype(_F)
    p["glass_w"] = L(0.095, 0.135, 46)
    p["glass_h"] = L(0.065, 0.10, 47)
    p["glass_p"] = np.where(U[:, 48] < 0.5, 2.0, 4.0).astype(_F)
    p["glass_t"] = L(0.010, 0.022, 49)
    p["glass_shade"] = L(0.02, 0.6, 50)
    # colours (only mildly identity-specific; per-image casts dominate)
    C = lambda k: np.clip(U[:, k], 0, 1).astype(_F)  # noqa: E731  colours: never widened
    p["skin_tone"] = C(51)
    p["hair_mel"] = (_HAIR_MEL[0] + (_HAIR_MEL[1] - _HAIR_MEL[0]) * C(52)).astype(_F)  # 0 blond .. 1 black
    p["hair_red"] = C(53)
    p["iris_col"] = C(54)
    p["nose_cool"] = L(_NOSE_COOL[0], _NOSE_COOL[1], 55)  # how much colder the nose tip is (thermal)
    # relief bumps (identity-specific skin surface / vessel pattern)
    rb = np.stack([np.random.default_rng([int(seed), 0x2E, int(i)]).random((4, _N_BUMPS)) for i in ids]) \
        if len(ids) else np.zeros((0, 4, _N_BUMPS))
    p["bump_u"] = (0.55 * (2 * rb[:, 0] - 1)).astype(_F)
    p["bump_v"] = (-0.55 + 1.25 * rb[:, 1]).astype(_F)
    p["bump_s"] = (0.06 + 0.09 * rb[:, 2]).astype(_F)
    p["bump_a"] = (np.sign(rb[:, 3] - 0.5) * (0.4 + 0.6 * np.abs(2 * rb[:, 3] - 1))).astype(_F)
    return p


def image_parameters(identity: int, modality: str, n: int, seed: int = 0,
                     config: SyntheticConfig | None = None) -> dict[str, np.ndarray]:
    """Per-image nuisance parameters of the first ``n`` images of one identity in one modality.

    Row ``k`` depends only on ``(seed, identity, modality, k)``: asking for more images keeps the
    first ones unchanged.
    """
    cfg = config or SyntheticConfig()
    m = _check_modality(modality)
    U = np.random.default_rng([int(seed), 0x1A, int(identity), m]).random((n, 32))
    # calibrated scales: the knobs' default 1.0 is the tutorial's setting
    po, ex, il, cc = cfg.pose * 0.8, cfg.expression, cfg.illumination * 0.4, cfg.colour_cast * 0.6
    q: dict[str, np.ndarray] = {}
    c = lambda k: (2 * U[:, k] - 1)  # noqa: E731  centred uniform in [-1, 1]
    q["rot"] = (np.deg2rad(5.0) * c(0) * po).astype(_F)
    q["scale"] = (1 + 0.05 * c(1) * po).astype(_F)
    q["tx"] = (0.035 * c(2) * po).astype(_F)
    q["ty"] = (0.035 * c(3) * po).astype(_F)
    q["yaw"] = (0.2 * c(4) * po).astype(_F)
    q["smile"] = (np.clip(U[:, 5] * 1.2 - 0.2, 0, 1) * ex).astype(_F)
    q["mouth_open"] = (np.where(U[:, 6] < 0.25, 0.035 * U[:, 7], 0.0) * ex).astype(_F)
    q["brow_raise"] = (np.clip(0.03 * U[:, 8] - 0.008, -0.008, 0.022) * ex).astype(_F)
    q["eye_open"] = (1 - np.clip(0.5 * U[:, 9] ** 3, 0, 0.5) * ex).astype(_F)
    q["gaze_x"] = (0.35 * c(10) * ex).astype(_F)
    q["gaze_y"] = (0.2 * c(11) * ex).astype(_F)
    # light (VIS: direction/ambient; NIR: illuminator jitter; thermal: ambient temperature)
    q["light_az"] = (np.deg2rad(45.0) * c(12) * il).astype(_F)
    q["light_el"] = (np.deg2rad(10 + 40 * U[:, 13]) ).astype(_F)
    q["ambient"] = (0.62 - 0.3 * U[:, 14] * min(il, 1.5)).astype(_F)
    q["gain"] = (1 + 0.15 * c(15) * il).astype(_F)
    # colour cast (VIS) / reflectance jitter (NIR) / temperatures (thermal)
    q["wb_r"] = np.exp(0.16 * c(16) * cc).astype(_F)
    q["wb_b"] = np.exp(0.16 * c(17) * cc).astype(_F)
    q["tint"] = np.exp(0.06 * c(18) * cc).astype(_F)
    q["bg_hue"] = U[:, 19].astype(_F)
    q["bg_val"] = U[:, 20].astype(_F)
    q["bg_grad"] = c(21).astype(_F)
    q["cloth_hue"] = U[:, 22].astype(_F)
    q["cloth_val"] = U[:, 23].astype(_F)
    q["skin_jit"] = (0.05 * c(24) * cc).astype(_F)
    q["hair_jit"] = (0.08 * c(25) * cc).astype(_F)
    q["t_amb"] = (22 + 4 * c(26) * il).astype(_F)
    q["t_skin"] = (34 + 0.5 * c(27)).astype(_F)
    q["breath"] = c(28).astype(_F)
    q["agc_lo"] = (1.5 * c(29)).astype(_F)
    q["agc_hi"] = (0.8 * c(30)).astype(_F)
    q["glint"] = U[:, 31].astype(_F)
    return q


def _check_modality(modality: str) -> int:
    if modality not in _MOD_INDEX:
        raise ValueError(
            f"Unknown synthetic modality {modality!r}: the generator renders {list(SYNTHETIC_MODALITIES)}."
        )
    return _MOD_INDEX[modality]


# --------------------------------------------------------------------------------------------
# Geometry: soft masks of every facial region, in image space, for a batch of images
# --------------------------------------------------------------------------------------------

def _soft(d: np.ndarray, w: np.ndarray | float) -> np.ndarray:
    """Anti-aliased coverage of a region given a signed distance d (negative inside)."""
    r = d / w
    np.subtract(0.5, r, out=r)
    return np.clip(r, 0.0, 1.0, out=r)


def _col(a: np.ndarray) -> np.ndarray:
    """(B,) -> (B,1,1) for broadcasting over pixels."""
    return np.asarray(a, dtype=_F).reshape(-1, 1, 1)


class _View:
    """Face-space coordinates of some images of a batch: what the feature functions work on."""

    def __init__(self, g: dict, q: dict, u: np.ndarray, v: np.ndarray, w: np.ndarray, a: np.ndarray):
        self.g, self.q, self.u, self.v, self.w, self.a = g, q, u, v, w, a
        self.cy = np.cos(q["yaw"])
        self.sy = np.sin(q["yaw"])

    def shift(self, depth: float) -> np.ndarray:
        """Horizontal offset of a feature at ``depth`` (in head half-widths) under yaw."""
        return self.sy * (depth * self.g["head_w"])

    def rows(self, idx: np.ndarray) -> "_View":
        sub = lambda d: {k: val[idx] for k, val in d.items()}  # noqa: E731
        return _View(sub(self.g), sub(self.q), self.u[idx], self.v[idx], self.w[idx], self.a[idx])


def _scatter(B: int, idx: np.ndarray, part: np.ndarray) -> np.ndarray:
    out = np.zeros((B,) + part.shape[1:], _F)
    out[idx] = part
    return out


def _glasses(V: _View) -> tuple[np.ndarray, np.ndarray]:
    """Frame and lens coverage of glasses (rounded or rectangular rims, bridge, temples)."""
    g, u, v, w = V.g, V.u, V.v, V.w
    gu = np.abs(u - V.shift(0.95)) - g["eye_x"] * V.cy
    gv = v - g["eye_y"] + 0.008
    x2 = (gu / g["glass_w"]) ** 2
    y2 = (gv / g["glass_h"]) ** 2
    S = np.where(g["glass_p"] > 3, x2 * x2 + y2 * y2, x2 + y2)
    d = (S - 1) / g["glass_p"] * g["glass_w"]
    ring = _soft(np.abs(d) - 0.5 * g["glass_t"], w)
    lens = _soft(d, w)
    bar = np.abs(gv + 0.25 * g["glass_h"]) - 0.4 * g["glass_t"]
    bridge = _soft(np.maximum(bar, gu + g["eye_x"] * V.cy), w) * (gu < -0.5 * g["glass_w"])
    temple = _soft(np.maximum(np.abs(gv + 0.45 * g["glass_h"]) - 0.4 * g["glass_t"],
                              np.maximum(g["glass_w"] - gu, np.abs(u) - (V.a + 0.05))), w)
    return np.maximum(np.maximum(ring, bridge), temple), lens


def _beard(V: _View, mouth_top: np.ndarray, mouth_bot: np.ndarray, mc: np.ndarray, mw: np.ndarray) -> np.ndarray:
    """Facial hair coverage: 1 moustache, 2 moustache + goatee, 3 full beard."""
    g, u, v, w = V.g, V.u, V.v, V.w
    must = _soft(np.maximum(np.abs(v - (mouth_top - 0.028 + 0.02 * (mc / mw) ** 2)) - 0.02,
                            np.abs(mc) - 1.15 * mw), w)
    goat = _soft(np.maximum(np.abs(mc) - 0.65 * mw - 0.03 * (v - g["mouth_y"]), mouth_bot + 0.01 - v), w)
    topline = (g["mouth_y"] - 0.07) + (g["ear_y"] + 0.6 * g["ear_h"] - g["mouth_y"] + 0.07) * np.clip(
        (np.abs(u) - g["mouth_w"]) / np.maximum(g["head_w"] - g["mouth_w"], 0.05), 0, 1)
    full = _soft(topline - v, w)
    style = g["beard"]
    bm = np.where(style == 1, must, np.maximum(must, np.where(style == 2, goat, full)))
    return bm * g["beard_density"]


def _long_hair(V: _View) -> np.ndarray:
    """Hair falling behind the head and beside the neck (hair style 2)."""
    g, u, v, w = V.g, V.u, V.v, V.w
    half = g["head_w"] + g["hair_vol"] + 0.07
    rl = (u / half) ** 2 + (np.minimum(v, 0) / (g["head_h"] + g["hair_vol"])) ** 2
    return _soft((rl - 1) * 0.5 * half, w) * _soft(v - g["hair_len"], w)


class _Geometry:
    """Masks, heights and coordinates of one batch (B images of one size) in face space.

    Face space: ``u`` to the right, ``v`` down, in units of the image half-width at neutral
    pose and ``zoom=1``, ``v = 0`` at the head centre.  Every region is a soft coverage in
    [0, 1] (anti-aliased over one pixel).
    """

    def __init__(self, P: dict[str, np.ndarray], Q: dict[str, np.ndarray], size: int,
                 cfg: SyntheticConfig, need_shading: bool):
        g = {k: _col(val) for k, val in P.items() if val.ndim == 1}
        q = {k: _col(val) for k, val in Q.items()}
        self.g, self.q, self.size = g, q, size
        B = len(Q["rot"])
        ax = ((np.arange(size, dtype=_F) + 0.5) * _F(2.0 / size) - 1.0)
        self.x, self.y = ax[None, None, :], ax[None, :, None]
        s = q["scale"] * _F(cfg.zoom)
        self.s = s
        self.cr, self.sr = np.cos(q["rot"]), np.sin(q["rot"])
        x0 = self.x - q["tx"]
        y0 = self.y - q["ty"]
        u = (self.cr * x0 + self.sr * y0) / s
        v = (self.cr * y0 - self.sr * x0) / s - g["head_cy"]
        self.u, self.v = u, v
        w = (_F(2.0 / size) / s).astype(_F)  # one pixel in face units
        self.w = w
        hw = g["head_w"]
        # ---- head outline: superellipse |u/a|^p + |v/h|^p = 1, jaw taper, forehead narrowing
        vn = v / g["head_h"]
        a = hw * (1 - g["jaw"] * np.clip(vn, 0, 1) ** 2 - g["forehead"] * np.clip(-vn, 0, 1) ** 2)
        self.a = a
        p = g["head_p"]
        S = (np.abs(u) / a) ** p + np.abs(vn) ** p
        self.inside_head = S < 1
        self.head = _soft((S - 1) / p * hw, w)
        V = _View(g, q, u, v, w, a)
        self.view = V
        self.cy, self.sy = V.cy, V.sy
        self.shift = V.shift
        # ---- neck and torso
        self.neck = _soft(np.maximum(np.abs(u) - g["neck_w"], 0.25 - v), w)
        torso_top = g["head_h"] * 0.95 + 0.35 * np.maximum(np.abs(u) - g["neck_w"], 0)
        self.torso = _soft(torso_top - v, 2 * w)
        # ---- ears (mirrored), painted behind the head
        ey = g["ear_y"]
        ex = hw * (1 - g["jaw"] * np.clip(ey / g["head_h"], 0, 1) ** 2) + g["ear_out"]
        eu = np.abs(u + self.shift(-0.3)) - ex
        ev = v - ey
        ew, eh = g["ear_w"], g["ear_h"]
        self.ears = _soft((np.sqrt((eu / ew) ** 2 + (ev / eh) ** 2) - 1) * ew, w)
        inner = np.sqrt(((eu - 0.15 * ew) / (0.5 * ew)) ** 2 + (ev / (0.6 * eh)) ** 2)
        self.ear_inner = _soft((inner - 1) * 0.5 * ew, w) * self.ears * (1 - self.head)
        # ---- hair on the head (style 0 short, 1 covering the ears, 2 long, 3 receding)
        style = g["hair_style"]
        vol = g["hair_vol"]
        rb = (u / (a + vol)) ** 2 + (np.minimum(v, 0) / (g["head_h"] + vol)) ** 2
        in_big = _soft((rb - 1) * 0.5 * hw, w)
        uh = u - self.shift(0.4)
        hl = g["hair_y"] + g["hair_curv"] * uh * uh + g["hair_part"] * uh
        hl = np.where(g["fringe"] > 0, np.maximum(hl, g["fringe_y"] + 0.6 * uh * uh), hl)
        side_t = np.clip((np.abs(u) - 0.74 * hw) / (0.2 * hw), 0, 1)
        ear_top = ey - np.where(style == 1, _F(-0.6), _F(0.45)) * eh
        hl_eff = np.maximum(hl, -1.6 + (ear_top + 1.6) * side_t)
        bottom_out = np.where(style == 2, g["hair_len"], ear_top)
        front = np.where(self.inside_head, _soft(v - hl_eff, w), _soft(v - bottom_out, w))
        self.hair = in_big * front
        long_rows = np.flatnonzero(P["hair_style"] == 2)
        self.hair_back = _scatter(B, long_rows, _long_hair(V.rows(long_rows))) if len(long_rows) else None
        # ---- eyes (mirrored about the yawed midline)
        su = u - self.shift(0.75)
        self.sgn = np.where(su >= 0, _F(1), _F(-1))
        du = np.abs(su) - g["eye_x"] * V.cy
        dv = v - g["eye_y"]
        ct, st = np.cos(g["eye_tilt"]), np.sin(g["eye_tilt"])
        du_r = ct * du - st * dv
        dv_r = st * du + ct * dv
        ew_ = g["eye_w"] * (1 + 0.3 * V.sy * self.sgn)  # the eye nearer the camera looks larger
        qe = 1 - (du_r / ew_) ** 2
        qs = np.sqrt(np.clip(qe, 0, 1))
        upper = -(g["eye_h"] * q["eye_open"]) * qs
        lower = (0.75 * g["eye_h"] * (0.5 + 0.5 * q["eye_open"])) * qs
        self.eye = _soft(np.maximum(np.maximum(upper - dv_r, dv_r - lower), np.abs(du_r) - ew_), w)
        idx = du - (q["gaze_x"] * g["iris_r"]) * self.sgn
        idy = dv - q["gaze_y"] * g["iris_r"]
        ri = np.sqrt(idx * idx + idy * idy)
        self.iris = _soft(ri - g["iris_r"], w) * self.eye
        self.pupil = _soft(ri - 0.42 * g["iris_r"], w) * self.eye
        self.lash = _soft(np.maximum(np.abs(dv_r - upper) - 0.006 - 0.004 * qs, np.abs(du_r) - 1.05 * ew_), w)
        self.du_eye, self.dv_eye = du, dv
        # ---- brows
        bu = np.abs(u - self.shift(0.8)) - g["eye_x"] * V.cy + g["brow_in"]
        bq = bu / g["brow_l"]
        bcy = (g["eye_y"] - g["brow_gap"] - q["brow_raise"] - g["brow_arch"] * (1 - bq * bq)
               - g["brow_slant"] * bu)
        bt = g["brow_t"] * (1 - 0.45 * np.clip(bq, 0, 1))
        self.brow = _soft(np.maximum(np.abs(v - bcy) - 0.5 * bt, np.abs(bu) - g["brow_l"]), w)
        # ---- nose: nostrils (dark in VIS/NIR) and the tip (cool in thermal)
        nc = u - self.shift(1.05)
        self.nc = nc
        nu_ = (np.abs(nc) - 0.45 * g["nose_w"]) / (0.26 * g["nose_w"])
        nv_ = (v - (g["nose_y"] + 0.018)) / 0.011
        self.nostril = _soft((np.sqrt(nu_ * nu_ + nv_ * nv_) - 1) * 0.011, w)
        self.nose_tip = self.gauss(self.shift(1.05), g["nose_y"] - 0.015, 0.9 * g["nose_w"])
        # ---- mouth
        mc = u - self.shift(0.85)
        mw = g["mouth_w"] * (1 + 0.12 * q["smile"]) * V.cy
        qm = np.clip(1 - (mc / mw) ** 2, 0, 1)
        qms = np.sqrt(qm)
        mid = g["mouth_y"] - 0.022 * q["smile"] * (1 - qm)
        gap = q["mouth_open"] * qms
        top = mid - 0.5 * gap - g["lip_u"] * qms * (1 - 0.25 / (1 + (mc * 40) ** 2))
        bot = mid + 0.5 * gap + g["lip_l"] * qms
        edge = np.abs(mc) - mw
        self.lips = _soft(np.maximum(np.maximum(top - v, v - bot), edge), w)
        d_in = np.maximum(np.maximum(mid - 0.5 * gap - 0.0035 - v, v - (mid + 0.5 * gap + 0.0035)), edge + 0.03 * mw)
        self.mouth_in = _soft(d_in, w) * np.clip(0.55 + 12 * gap, 0, 1)
        open_rows = np.flatnonzero(Q["mouth_open"] > 0.01)
        self.teeth = None
        if len(open_rows):
            t_d = np.maximum(np.maximum(mid - 0.5 * gap - v, v - (mid + 0.1 * gap)), np.abs(mc) - 0.6 * mw)
            self.teeth = _soft(t_d, w) * (Q["mouth_open"] > 0.01).reshape(-1, 1, 1)
        # ---- beard and glasses, computed only for the images that have them
        rows = np.flatnonzero(P["beard"] > 0)
        self.beard = None
        if len(rows):
            part = _beard(V.rows(rows), top[rows], bot[rows], mc[rows], mw[rows])
            self.beard = _scatter(B, rows, part) * self.head
        rows = np.flatnonzero(P["glasses"] > 0)
        self.frame = self.lens = None
        if len(rows):
            fr, le = _glasses(V.rows(rows))
            self.frame, self.lens = _scatter(B, rows, fr), _scatter(B, rows, le)
        # ---- relief: identity-specific smooth bumps of the skin, about +-1
        relief = np.zeros_like(u)
        cu0 = self.shift(0.8)
        for k in range(_N_BUMPS):
            relief += _col(P["bump_a"][:, k]) * self.gauss(cu0 + _col(P["bump_u"][:, k]),
                                                            _col(P["bump_v"][:, k]), _col(P["bump_s"][:, k]))
        self.relief = relief
        if need_shading:
            self._shading_fields(cfg)

    def gauss(self, cu: np.ndarray, cv: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """An isotropic Gaussian bump centred at face point (cu, cv), as a separable product.

        Rotation and scale keep isotropic Gaussians isotropic, so the bump is evaluated on the
        image axes (two small exponentials and one outer product instead of a full-frame exp).
        """
        q, s = self.q, self.s
        cvh = cv + self.g["head_cy"]
        X = s * (self.cr * cu - self.sr * cvh) + q["tx"]
        Y = s * (self.sr * cu + self.cr * cvh) + q["ty"]
        k = -0.5 / (s * sigma) ** 2
        return np.exp(k * (self.x - X) ** 2) * np.exp(k * (self.y - Y) ** 2)

    def _shading_fields(self, cfg: SyntheticConfig) -> None:
        """Surface normals (face space): an ellipsoid-like head plus a height field of features."""
        g, q, u, v = self.g, self.q, self.u, self.v
        hw = g["head_w"]
        vol = g["hair_vol"]
        qx = u / (self.a + np.where(self.inside_head, _F(0), vol))
        qy = v / (g["head_h"] + np.where(v < 0, vol, _F(0)))
        nz = np.sqrt(1 - np.clip(qx * qx + qy * qy, 0, 0.985)) * 1.3
        # local heights: nose ridge, alae, brow ridge, eye sockets, cheekbones, chin, lips, relief
        nyu = g["eye_y"] + 0.02
        nt = np.clip((v - nyu) / (g["nose_y"] - nyu), 0, 1)
        wb = g["nose_bridge"] + (0.55 * g["nose_w"] - g["nose_bridge"]) * nt
        below = np.maximum(v - g["nose_y"], 0) / 0.025
        h = g["nose_h"] * np.exp(-(self.nc * self.nc) / (2 * wb * wb) - below * below) * nt ** 0.8
        ns, ny_ = self.shift(1.05), g["nose_y"] - 0.005
        h += 0.3 * g["nose_h"] * (self.gauss(ns - 0.55 * g["nose_w"], ny_, 0.022)
                                  + self.gauss(ns + 0.55 * g["nose_w"], ny_, 0.022))
        h += 0.03 * np.exp(-((v - g["eye_y"] + g["brow_gap"] * 0.8) ** 2) / (2 * 0.035 ** 2) - (u * u) / 0.2)
        h -= g["socket"] * np.exp(-(self.du_eye ** 2 / (2 * 0.085 ** 2) + (self.dv_eye + 0.012) ** 2 / (2 * 0.055 ** 2)))
        cv = g["nose_y"] - 0.06
        h += g["cheek"] * (self.gauss(-0.62 * hw, cv, 0.09) + self.gauss(0.62 * hw, cv, 0.09))
        h += g["chin"] * self.gauss(self.shift(0.8), g["mouth_y"] + 0.17, 0.07)
        h += 0.012 * self.lips - 0.01 * self.mouth_in + (0.07 * cfg.relief) * self.relief
        # slope of h in face units (np.gradient is per pixel; one pixel = self.w face units)
        hy, hx = np.gradient(h, axis=(1, 2))
        k = 1.3 / self.w
        nx = qx - hx * k
        ny = qy - hy * k
        inv = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz)
        nx, ny, nz = nx * inv, ny * inv, nz * inv
        # ears face sideways and forward
        e = self.ears * (1 - self.head)
        self.nx = nx + e * (0.45 * self.sgn - nx)
        self.ny = ny - e * ny
        self.nz = nz + e * (0.85 - nz)

    def light_dot(self, az: np.ndarray, el: np.ndarray) -> np.ndarray:
        """Lambert term max(n.L, 0) for a light at azimuth/elevation (image space, per image)."""
        lx = np.sin(az) * np.cos(el)
        ly = -np.sin(el) * 0.6
        lz = np.cos(az) * np.cos(el)
        # bring the light into face space: undo in-plane rotation and yaw
        lxf = self.cr * lx + self.sr * ly
        lyf = self.cr * ly - self.sr * lx
        lxf, lzf = self.cy * lxf - self.sy * lz, self.sy * lxf + self.cy * lz
        n = np.sqrt(lxf ** 2 + lyf ** 2 + lzf ** 2)
        return np.maximum(self.nx * (lxf / n) + self.ny * (lyf / n) + self.nz * (lzf / n), 0)

    def landmarks(self) -> np.ndarray:
        """(B, 5, 2) pixel coordinates (x, y) of the eye centres, nose tip and mouth corners."""
        g, q = self.g, self.q
        ce = self.shift(0.75)
        ex = g["eye_x"] * self.cy
        mc = self.shift(0.85)
        mw = g["mouth_w"] * (1 + 0.12 * q["smile"]) * self.cy
        my = g["mouth_y"] - 0.022 * q["smile"]
        pu = np.concatenate([ce - ex, ce + ex, self.shift(1.05), mc - mw, mc + mw], axis=2)[:, 0]
        pv = np.concatenate([g["eye_y"], g["eye_y"], g["nose_y"], my, my], axis=2)[:, 0] + g["head_cy"][:, 0]
        s, cr, sr = self.s[:, 0], self.cr[:, 0], self.sr[:, 0]
        x = s * (cr * pu - sr * pv) + q["tx"][:, 0]
        y = s * (sr * pu + cr * pv) + q["ty"][:, 0]
        to_px = lambda c: (c + 1.0) * (self.size / 2.0) - 0.5  # noqa: E731
        return np.stack([to_px(x), to_px(y)], axis=-1).astype(_F)



def _hsv_colour(hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """(B,) HSV in [0,1] -> (B,3) RGB (vectorised)."""
    h6 = (hue % 1.0) * 6.0
    k = (np.array([5.0, 3.0, 1.0])[None, :] + h6[:, None]) % 6.0
    f = np.clip(np.minimum(k, 4.0 - k), 0, 1)
    return (val[:, None] * (1 - sat[:, None] * f)).astype(_F)


class _Layers:
    """Painter's algorithm: regions painted back to front, each with a coverage and a value."""

    def __init__(self) -> None:
        self.order: list[tuple[np.ndarray, Any]] = []

    def add(self, alpha: np.ndarray | None, value: Any) -> None:
        """Paint ``value`` (per image, (B,1,1) or (B,3), or per pixel) with coverage ``alpha``."""
        if alpha is not None:
            self.order.append((alpha, value))

    def compose(self, base: np.ndarray) -> np.ndarray:
        """One channel: ``out = out + alpha * (value - out)`` layer after layer."""
        out = base
        for alpha, value in self.order:
            out = out + alpha * (value - out)
        return out

    def compose_colours(self, base_weights: list[np.ndarray], base_colours: list[np.ndarray]) -> np.ndarray:
        """Colour images with per-image colours: weights front to back, then one batched matmul.

        ``base_weights``/``base_colours`` describe the background (per-pixel weights (B,H,W),
        per-image colours (B,3)).  Returns (B,H,W,3).
        """
        B, H, W = self.order[0][0].shape
        cover = np.ones((B, H, W), _F)
        weights, colours = [], []
        for alpha, colour in reversed(self.order):
            wgt = alpha * cover
            cover -= wgt
            weights.append(wgt)
            colours.append(np.broadcast_to(np.asarray(colour, _F).reshape(-1, 3), (B, 3)))
        weights += [cover * bw for bw in base_weights]
        colours += base_colours
        Wm = np.stack(weights, axis=1).reshape(B, len(weights), H * W)
        C = np.stack(colours, axis=2).astype(_F)  # (B, 3, M)
        return np.matmul(C, Wm).reshape(B, 3, H, W).transpose(0, 2, 3, 1)


def _fg(G: _Geometry) -> np.ndarray:
    """Coverage of everything that is not background (the person)."""
    fg = G.head + G.ears + G.neck + G.hair + G.torso
    if G.hair_back is not None:
        fg = fg + G.hair_back
    return np.minimum(fg, 1)


def _skin_cover(G: _Geometry) -> np.ndarray:
    """Coverage of bare facial skin (the head minus hair, eyes, brows and beard)."""
    c = G.head * (1 - G.hair) * (1 - G.eye) * (1 - G.brow)
    if G.beard is not None:
        c = c * (1 - G.beard)
    return c


def _render_vis(G: _Geometry, P: dict, Q: dict, cfg: SyntheticConfig, noise: np.ndarray) -> np.ndarray:
    """Visible light: albedo per region x (ambient + Lambert) + shine, white balance, sRGB, noise."""
    q = G.q
    B, H, W = G.u.shape
    tone = P["skin_tone"] + Q["skin_jit"]
    skin = np.stack([0.72 - 0.06 * tone, 0.50 - 0.06 * tone, 0.40 - 0.06 * tone], axis=1)
    mel = np.clip(P["hair_mel"] + Q["hair_jit"], 0, 1)
    hv = 0.4 * (1 - mel) ** 3 + 0.012  # linear reflectance: black .. blond
    hair = np.stack([hv * (1.0 + 0.08 * P["hair_red"]), hv * (0.85 - 0.03 * P["hair_red"]), hv * 0.68], axis=1)
    ic = P["iris_col"][:, None]
    iris = np.where(ic < 0.5, np.concatenate([0.25 + 0.1 * ic, 0.15 + 0.05 * ic, 0.08 + 0 * ic], 1),
                    np.concatenate([0.22 - 0.1 * ic, 0.32 + 0 * ic, 0.35 + 0.15 * ic], 1))
    lips = skin * np.array([1.0, 0.62, 0.62])
    bg = _hsv_colour(Q["bg_hue"], 0.45 * Q["bg_val"], 0.2 + 0.7 * Q["bg_val"])
    cloth = _hsv_colour(Q["cloth_hue"], 0.2 + 0.6 * Q["cloth_val"], 0.15 + 0.6 * (1 - Q["cloth_val"]))
    frame = (0.05 + 0.5 * P["glass_shade"])[:, None] * np.array([1.0, 0.9, 0.8])
    L = _Layers()
    L.add(G.torso, cloth)
    L.add(G.neck, skin * 0.85)
    L.add(G.ears, skin)
    L.add(G.hair_back, hair)
    L.add(G.head, skin)
    L.add(G.ear_inner, skin * 0.7)
    L.add(G.beard, hair)
    L.add(G.lips, lips)
    L.add(G.mouth_in, (0.08, 0.03, 0.03))
    L.add(G.teeth, (0.75, 0.72, 0.65))
    L.add(G.nostril, skin * 0.25)
    L.add(G.eye, (0.75, 0.72, 0.68))
    L.add(G.iris, iris)
    L.add(G.pupil, (0.02, 0.02, 0.02))
    L.add(G.lash, hair * 0.3)
    L.add(G.brow, hair * 0.8)
    L.add(G.hair, hair)
    L.add(G.frame, frame)
    grad = (0.35 * q["bg_grad"]) * (G.y - 0 * G.u)  # vertical gradient of the backdrop
    albedo = L.compose_colours([np.ones_like(grad), grad], [bg, bg])
    if _RELIEF_ALBEDO["vis"]:
        mark = (_RELIEF_ALBEDO["vis"] * _skin_cover(G) * G.relief)[..., None] * np.array([0.6, 1.0, 0.9], _F)
        albedo = albedo * (1 - mark)
    # shading: ambient + directional Lambert, specular shine on skin
    lam = G.light_dot(q["light_az"], q["light_el"])
    amb = q["ambient"]
    fg = _fg(G)
    shade = 1 + fg * (amb + (1 - amb) * 1.25 * lam - 1)
    lam2 = lam * lam
    lam8 = lam2 * lam2
    lam8 = lam8 * lam8
    spec = (lam8 * lam8 * lam8) * (0.12 * G.head * (1 - G.hair))
    gain = q["gain"] * 1.15
    wb = np.stack([Q["wb_r"], 1 / Q["tint"], Q["wb_b"]], axis=1)
    wb = (wb / np.cbrt(wb.prod(axis=1, keepdims=True))).reshape(B, 1, 1, 3).astype(_F)
    img = (albedo * (shade * gain)[..., None] + spec[..., None]) * wb
    if G.lens is not None:  # a faint reflection on the lenses
        img += (G.lens * (0.06 * q["glint"]))[..., None]
    img = np.clip(img, 0, 1) ** _F(1 / 2.2)
    # sensor noise: mostly luminance, a little chroma (demosaicing)
    lum = noise[:, :H, :, None]
    chroma = np.roll(lum, 1, axis=2) * np.array([0.5, -0.5, 0.3], _F)
    return img + (0.012 * cfg.noise) * (lum + chroma)


def _render_nir(G: _Geometry, P: dict, Q: dict, cfg: SyntheticConfig, noise: np.ndarray) -> np.ndarray:
    """~850 nm active NIR: reflectance per region under a camera-mounted illuminator, one channel."""
    q = G.q
    B, H, W = G.u.shape
    skin = 0.62 - 0.04 * _col(P["skin_tone"] + Q["skin_jit"] * 0.3)
    mel = _col(np.clip(P["hair_mel"] + Q["hair_jit"] * 0.5, 0, 1))
    hair = _NIR_HAIR[0] - _NIR_HAIR[1] * mel  # melanin absorbs less at 850 nm: dark hair looks dark-grey
    L = _Layers()
    L.add(G.torso, 0.15 + 0.5 * q["cloth_val"])
    L.add(G.neck, skin * 0.9)
    L.add(G.ears, skin)
    L.add(G.hair_back, hair)
    L.add(G.head, skin)
    L.add(G.ear_inner, skin * 0.75)
    L.add(G.beard, hair * 0.9)
    L.add(G.lips, skin * _NIR_REGIONS["lips"])  # haemoglobin absorbs less: lips differ a little from skin
    L.add(G.mouth_in, 0.05)
    L.add(G.teeth, 0.7)
    L.add(G.nostril, skin * 0.25)
    L.add(G.eye, _NIR_REGIONS["sclera"])
    L.add(G.iris, 0.22 + 0.06 * _col(P["iris_col"]))  # every iris colour looks dark-grey
    L.add(G.pupil, 0.03)
    L.add(G.lash, hair * 0.4)
    L.add(G.brow, hair * 0.75)
    L.add(G.hair, hair)
    L.add(G.frame, 0.3 + 0.4 * _col(P["glass_shade"]))
    refl = L.compose(0.05 + _NIR_BG * q["bg_val"] + 0 * G.u)  # the far background gets little light
    if _RELIEF_ALBEDO["nir"]:
        refl = refl * (1 - _RELIEF_ALBEDO["nir"] * _skin_cover(G) * G.relief)
    # the illuminator sits by the lens: facing-ratio shading, inverse-square vignetting
    lam = G.light_dot(q["light_az"] * 0.15, np.deg2rad(_F(8.0)) + q["light_el"] * 0.1)
    amb = 0.08 + 0.1 * (q["ambient"] - 0.32)
    shade = 1 + _fg(G) * (amb + (1 - amb) * 1.15 * lam - 1)
    vign = 1 - 0.25 * (G.x * G.x + G.y * G.y)
    img = refl * shade * vign * (q["gain"] * 1.1)
    if G.lens is not None:  # the illuminator's glint on the lenses
        glint = G.gauss(G.shift(0.95) - G.g["eye_x"] * G.cy + 0.03, G.g["eye_y"] - 0.04, _F(0.012)) \
            + G.gauss(G.shift(0.95) + G.g["eye_x"] * G.cy + 0.03, G.g["eye_y"] - 0.04, _F(0.012))
        img += G.lens * glint * (0.8 * (q["glint"] > 0.4))
    sigma = cfg.nir_blur * G.size / 64.0
    if sigma > 0:  # sub-surface scattering and the lens
        img = gaussian_filter(img, sigma=(0, sigma, sigma), mode="nearest")
    img = np.clip(img, 0, 1) ** _F(1 / 1.6)
    img = img + (_NIR_NOISE * cfg.noise) * noise[:, :H] * np.sqrt(np.clip(img, 0.05, 1))
    return np.repeat(img[..., None], 3, axis=3)


def _render_thermal(G: _Geometry, P: dict, Q: dict, cfg: SyntheticConfig, noise: np.ndarray) -> np.ndarray:
    """LWIR emission: a temperature map per region, grazing-angle emissivity, blur, AGC, noise."""
    g, q = G.g, G.q
    B, H, W = G.u.shape
    ta = q["t_amb"]
    ts = q["t_skin"]
    # skin: warm forehead, cooler lower cheeks and nose tip, identity relief = vessel pattern
    vv = G.v - g["eye_y"]
    cheek = np.clip((np.abs(G.u) - 0.3 * g["head_w"]) / (0.4 * g["head_w"]), 0, 1) * np.clip(vv / 0.15, 0, 1)
    skin_t = (ts + 0.7 * np.clip(-(vv + 0.1) / 0.2, 0, 1) - 1.1 * cheek
              - (1.4 + 0.15 * (26 - ta)) * g["nose_cool"] * G.nose_tip
              + (_THERMAL["relief"] * cfg.relief) * G.relief)
    # the inner eye corners (caruncle, fed by the ophthalmic artery) are the warmest spot
    inner = g["eye_x"] * G.cy - g["eye_w"] * 0.95
    ce = G.shift(0.75)
    canthus = (G.gauss(ce - inner, g["eye_y"] + 0.004, _F(0.02))
               + G.gauss(ce + inner, g["eye_y"] + 0.004, _F(0.02)))
    skin_t = skin_t + _THERMAL["canthus"] * canthus
    hair_t = ta + (ts - ta) * _THERMAL["hair"]  # hair insulates: its surface is near room temperature
    L = _Layers()
    L.add(G.torso, ta + 5.0)
    L.add(G.neck, ts + 0.3)
    L.add(G.ears, ts - 2.5)
    L.add(G.hair_back, hair_t)
    L.add(G.head, skin_t)
    L.add(G.beard, ta + (ts - ta) * 0.62)
    L.add(G.lips, ts + _THERMAL["lips"])
    L.add(G.mouth_in, ts + 1.8)
    L.add(G.nostril, ts - 0.5 + 1.2 * q["breath"])  # breathing in (cool) or out (warm)
    L.add(G.eye, ts + _THERMAL["eye"] + 1.0 * canthus)
    L.add(G.brow, ts + _THERMAL["brow"])
    L.add(G.hair, hair_t)
    if G.lens is not None:  # glass is opaque in LWIR: the lens shows its own temperature
        L.add(G.lens, ta + 3.0)
        L.add(G.frame, ta + 4.0)
    T = L.compose(ta + (0.6 * q["bg_grad"]) * G.y + 0 * G.u)
    # emissivity falls at grazing angles: the silhouette looks cooler
    qx = G.u / (G.a + g["hair_vol"])
    qy = G.v / (g["head_h"] + g["hair_vol"])
    rr = np.minimum(qx * qx + qy * qy, 1)
    T = T - (0.35 * np.minimum(G.head + G.hair, 1)) * (rr * rr) * (T - ta)
    sigma = cfg.thermal_blur * G.size / 64.0
    if sigma > 0:  # long-wave optics: a wide point-spread function
        T = gaussian_filter(T, sigma=(0, sigma, sigma), mode="nearest")
    # automatic gain control: the camera stretches [lo, hi] to the grey range (white-hot)
    lo = ta + _THERMAL["agc_lo"] + q["agc_lo"]
    hi = ts + 1.8 + q["agc_hi"]
    img = np.clip((T - lo) / (hi - lo), 0, 1.2)
    # plateau-equalisation-like tone curve: the face's populated temperatures get more grey levels
    img = img ** _F(_THERMAL["gamma"])
    img = 0.5 + (img - 0.5) * cfg.thermal_contrast
    # temporal noise (NETD) and column fixed-pattern noise of the microbolometer array
    img = img + (0.02 * cfg.noise) * noise[:, :H] + (0.012 * cfg.noise) * noise[:, H:H + 1]
    return np.repeat(img[..., None], 3, axis=3)


_RENDERERS = {"vis": _render_vis, "nir": _render_nir, "thermal": _render_thermal}


def render_batch(identity_params: dict[str, np.ndarray], image_params: dict[str, np.ndarray],
                 modality: str, size: int, config: SyntheticConfig | None = None,
                 noise: np.ndarray | None = None, return_landmarks: bool = False):
    """Render a batch: row ``b`` of ``identity_params`` seen with nuisances row ``b`` of ``image_params``.

    ``noise`` is a (B, size + 1, size) standard-normal field (sensor noise; the last row drives
    row-wise effects such as thermal column noise; zeros if None).
    Returns uint8 (B, size, size, 3), and (B, 5, 2) landmarks when asked.
    """
    cfg = config or SyntheticConfig()
    _check_modality(modality)
    B = len(image_params["rot"])
    if noise is None:
        noise = np.zeros((B, size + 1, size), _F)
    G = _Geometry(identity_params, image_params, size, cfg, need_shading=modality != "thermal")
    img = _RENDERERS[modality](G, identity_params, image_params, cfg, noise)
    out = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if return_landmarks:
        return out, G.landmarks()
    return out


# --------------------------------------------------------------------------------------------
# Drivers: images of identities, the whole FaceSet, a grid figure
# --------------------------------------------------------------------------------------------

def _noise(seed: int, identity: int, modality: str, n: int, size: int) -> np.ndarray:
    rng = np.random.default_rng([int(seed), 0x40, int(identity), _MOD_INDEX[modality]])
    return rng.standard_normal((n, size + 1, size), dtype=_F)


def _take(params: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[rows] for k, v in params.items()}


def _render_jobs(jobs: list[tuple[int, str, int]], size: int, seed: int, cfg: SyntheticConfig,
                 id_params: dict[str, np.ndarray], id_row: dict[int, int],
                 return_landmarks: bool = False):
    """Render (identity, modality, n_images) jobs of one modality as one batch."""
    modality = jobs[0][1]
    rows, img_p, noises = [], [], []
    for ident, mod, n in jobs:
        assert mod == modality
        rows += [id_row[ident]] * n
        img_p.append(image_parameters(ident, mod, n, seed, cfg))
        noises.append(_noise(seed, ident, mod, n, size))
    Q = {k: np.concatenate([d[k] for d in img_p]) for k in img_p[0]}
    P = _take(id_params, np.asarray(rows))
    return render_batch(P, Q, modality, size, cfg, np.concatenate(noises), return_landmarks)


def synthetic_identity_images(identity: int, n: int = 4, modalities: Sequence[str] = SYNTHETIC_MODALITIES,
                              size: int = 64, seed: int = 0, config: SyntheticConfig | None = None,
                              return_landmarks: bool = False) -> dict[str, np.ndarray]:
    """The first ``n`` images of one identity in each modality: ``{modality: uint8 (n, size, size, 3)}``.

    The same images :func:`synthetic_faceset` builds for that identity (same seed, size, config).
    With ``return_landmarks`` each value is a pair ``(images, landmarks (n, 5, 2))``.
    """
    cfg = config or SyntheticConfig()
    if n < 1:
        raise ValueError(f"n={n}: ask for at least one image per modality.")
    P = identity_parameters([identity], seed, cfg)
    out = {}
    for mod in modalities:
        _check_modality(mod)
        out[mod] = _render_jobs([(identity, mod, n)], size, seed, cfg, P, {identity: 0}, return_landmarks)
    return out


def _default_workers() -> int:
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, min(4, os.cpu_count() or 1))


def generate(identities: Sequence[int], modalities: Sequence[str], n_per_modality: int, size: int,
             seed: int = 0, config: SyntheticConfig | None = None, progress: bool = False,
             workers: int | None = None, chunk_images: int = 96):
    """Render every identity in every modality: returns (images, identities, modalities, k, landmarks).

    Arrays are ordered identity-major, then modality, then image index ``k``.  Batches run in a
    small thread pool (NumPy releases the GIL), which does not change any pixel.
    """
    cfg = config or SyntheticConfig()
    ids = [int(i) for i in identities]
    mods = list(modalities)
    for m in mods:
        _check_modality(m)
    n = int(n_per_modality)
    if n < 1 or size < 16:
        raise ValueError(f"n_per_modality={n}, size={size}: need at least 1 image and 16 px.")
    P = identity_parameters(ids, seed, cfg)
    id_row = {ident: r for r, ident in enumerate(ids)}
    total = len(ids) * len(mods) * n
    images = np.empty((total, size, size, 3), np.uint8)
    landmarks = np.empty((total, 5, 2), _F)
    per_chunk = max(1, chunk_images // n)
    tasks = []
    for mi, mod in enumerate(mods):
        for start in range(0, len(ids), per_chunk):
            chunk = ids[start:start + per_chunk]
            tasks.append((mi, mod, start, chunk))

    def run(task):
        mi, mod, start, chunk = task
        imgs, lms = _render_jobs([(i, mod, n) for i in chunk], size, seed, cfg, P, id_row, True)
        # place identity-major: index = (row * n_mods + mi) * n + k
        rows = np.arange(start, start + len(chunk))
        dest = ((rows[:, None] * len(mods) + mi) * n + np.arange(n)[None, :]).reshape(-1)
        images[dest] = imgs
        landmarks[dest] = lms
        return len(dest)

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc=f"synthetic faces ({size}px)", unit="img")
    workers = workers or _default_workers()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(run, tasks):
            if bar is not None:
                bar.update(done)
    if bar is not None:
        bar.close()
    id_arr = np.repeat(np.asarray(ids, np.int64), len(mods) * n)
    mod_arr = np.tile(np.repeat(np.asarray(mods), n), len(ids))
    k_arr = np.tile(np.arange(n), len(ids) * len(mods))
    return images, id_arr, mod_arr, k_arr, landmarks


def synthetic_faceset(preset: "str | Preset | None" = "fast", seed: int = 0, progress: bool = True,
                      config: SyntheticConfig | None = None, workers: int | None = None) -> "FaceSet":
    """The embedded synthetic cross-spectral face set of a preset, as a :class:`FaceSet`.

    Sizes come from ``preset.data`` (image size, train/dev/eval identities, images per modality,
    modalities).  Identities ``0 .. n_train-1`` are ``train``, the next ``n_dev`` are ``dev``, the
    rest ``eval`` (identities are random draws, so this is an identity-disjoint random split).
    Images are ordered identity, modality, image.  Same ``seed`` and config, same bytes.

    Taught in ``notebooks/00_data_and_modality_gap.ipynb``.
    """
    from ..config import get_preset
    from .faceset import FaceSet

    p = get_preset(preset)
    d = p.data
    cfg = config or SyntheticConfig()
    mods = tuple(d.modalities)
    unknown = [m for m in mods if m not in _MOD_INDEX]
    if unknown:
        raise ValueError(f"Preset {p.name!r} asks for modalities {unknown} the generator cannot render; "
                         f"it renders {list(SYNTHETIC_MODALITIES)}.")
    n_ids = d.n_train_ids + d.n_dev_ids + d.n_eval_ids
    t0 = time.perf_counter()
    images, ids, mod_arr, _, landmarks = generate(range(n_ids), mods, d.images_per_modality, d.image_size,
                                                  seed=seed, config=cfg, progress=progress, workers=workers)
    split_of_id = np.array(["train"] * d.n_train_ids + ["dev"] * d.n_dev_ids + ["eval"] * d.n_eval_ids)
    meta = {"source": "hfr_tutorial.data.synthetic", "seed": int(seed), "preset": p.name,
            "config": dataclasses.asdict(cfg), "seconds": round(time.perf_counter() - t0, 2)}
    return FaceSet(images, ids, mod_arr, splits=split_of_id[ids], identity_names=[f"syn{i:05d}" for i in range(n_ids)],
                   name=f"synthetic-{p.name}-s{seed}", landmarks=landmarks, meta=meta)


def render_grid(n_identities: int = 6, n_per_modality: int = 2, size: int = 112, seed: int = 0,
                config: SyntheticConfig | None = None, modalities: Sequence[str] = SYNTHETIC_MODALITIES,
                first_identity: int = 0, gap: int = 4) -> np.ndarray:
    """One uint8 picture: rows = identities, columns = ``n_per_modality`` images per modality."""
    cfg = config or SyntheticConfig()
    rows = []
    for ident in range(first_identity, first_identity + n_identities):
        imgs = synthetic_identity_images(ident, n_per_modality, modalities, size, seed, cfg)
        cells = []
        for m in modalities:
            for k in range(n_per_modality):
                cells.append(imgs[m][k])
                cells.append(np.full((size, 1 if k < n_per_modality - 1 else gap, 3), 255, np.uint8))
        rows.append(np.concatenate(cells[:-1], axis=1))
        rows.append(np.full((1, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def save_grid(path: str | Path, n_identities: int = 6, n_per_modality: int = 2, size: int = 112, seed: int = 0,
              config: SyntheticConfig | None = None) -> Path:
    """Save :func:`render_grid` with a title row naming the columns (matplotlib, on its own Agg canvas).

    The figure is built without pyplot, so no backend is selected and nothing is left open.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    grid = render_grid(n_identities, n_per_modality, size, seed, config)
    h, w = grid.shape[:2]
    fig = Figure(figsize=(w / 100, (h + 30) / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, h / (h + 30)))
    ax.imshow(grid, interpolation="nearest")
    ax.axis("off")
    col_w = w / 3
    for j, m in enumerate(SYNTHETIC_MODALITIES):
        fig.text((j + 0.5) * col_w / w, 1 - 15 / (h + 30), m.upper() if m != "thermal" else "thermal",
                 ha="center", va="center", fontsize=12)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m hfr_tutorial.data.synthetic --grid PATH`` (and ``--time`` to time a preset)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", help="write the identity x modality grid picture here (PNG)")
    ap.add_argument("--identities", type=int, default=6)
    ap.add_argument("--per-modality", type=int, default=2)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time", metavar="PRESET", help="build this preset's set and print the time it took")
    args = ap.parse_args(argv)
    if args.grid:
        print(save_grid(args.grid, args.identities, args.per_modality, args.size, args.seed))
    if args.time:
        t0 = time.perf_counter()
        fs = synthetic_faceset(args.time, seed=args.seed, progress=True)
        print(fs, f"built in {time.perf_counter() - t0:.1f} s")
    if not (args.grid or args.time):
        ap.print_help()


if __name__ == "__main__":
    main()

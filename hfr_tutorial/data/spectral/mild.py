"""The "mild" severity: the first, gentle simulation (kept byte-identical for the same seed).

These are the functions :mod:`hfr_tutorial.data.spectral` had before the sensor-realistic
simulation (``severity="realistic"``) was added; existing layouts, tests and notebooks that ask for
``severity="mild"`` keep their exact pixels.  They are *documented approximations*: they reproduce
the low-level differences between bands (per-region reflectance or emission, texture, contrast,
blur, noise), not a sensor.  The official EdgeFace-XXS barely notices them (NIR->VIS rank-1 ~0.99,
thermal->VIS ~0.80 on 40 real people), which is why "realistic" became the default.

``mild_nir`` -- about 850 nm with active illumination
    * Channel weighting: skin's reflectance spectrum in the near infrared continues the red end
      of the visible one, while melanin and haemoglobin absorb far less than in green and blue,
      so NIR ~ mostly red, a little green, almost no blue (linear light), then brightened.
    * Skin smoothing: NIR light travels further under the skin before it comes back
      (sub-surface scattering), so freckles, pores and small blemishes fade: an edge-aware blur
      (blur where the image is flat, keep strong edges such as eyes and the face outline).
    * Active illuminator by the lens: light falls off towards the image corners (vignetting) and
      the sensor is noisier than a colour camera.  One channel, replicated to RGB.

``mild_thermal`` -- long-wave infrared emission (8-14 um)
    * A temperature map from the face's geometry, not its colours: skin (found by a skin-colour
      rule, or an ellipse around the landmarks for grey photos) is warm, everything else
      (background, hair) is near room temperature; the inner eye corners are the warmest spots,
      the nose tip and the cheeks cooler, the forehead and an open mouth warmer.  Landmarks place
      these regions (default: the 112x112 template positions, i.e. an aligned face).
    * The optics blur (a Gaussian point-spread function), automatic gain control maps the
      temperatures to grey levels with low contrast inside the face, microbolometer noise (per
      pixel and per column) is added.  White-hot, one channel replicated to RGB.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Real photos, simulated sensors").
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, sobel

from .imaging import _F, _as_rgb01, _face_frame, _gauss, _srgb_to_linear, _to_uint8_grey3
from .regions import skin_probability


def mild_nir(image: np.ndarray, *, seed: int | None = 0, smooth: float = 1.0, noise: float = 0.02,
           vignetting: float = 0.25, weights: tuple[float, float, float] = (0.75, 0.2, 0.05)) -> np.ndarray:
    """Mild severity: an ~850 nm active-NIR image from an RGB face photo; uint8 (H, W, 3), equal channels.

    Args:
        image: uint8 (H, W, 3) RGB (or grey (H, W)) photo, ideally aligned.
        seed: noise seed (``None``: no noise).
        smooth: strength of the sub-surface-scattering smoothing (blur sigma as % of the width).
        noise: sensor noise standard deviation (fraction of full scale).
        vignetting: light fall-off from the centre to the corners (0 = none).
        weights: linear-light weights of R, G, B (NIR follows red most).

    Taught in ``notebooks/00_data_and_modality_gap.ipynb``.
    """
    rgb = _srgb_to_linear(_as_rgb01(image))
    h, w = rgb.shape[:2]
    wr = np.asarray(weights, dtype=_F)
    if wr.shape != (3,) or np.any(wr < 0) or wr.sum() <= 0:
        raise ValueError(f"weights={weights}: give three non-negative channel weights (R, G, B).")
    lin = rgb @ (wr / wr.sum())
    # brighter skin: melanin absorbs little at 850 nm (a lift of the mid-tones)
    nir = np.clip(lin * 1.15, 0, 1) ** (1 / 2.6)
    if smooth > 0:
        sigma = smooth * 0.012 * w
        blurred = gaussian_filter(nir, sigma)
        edges = np.hypot(sobel(nir, 0), sobel(nir, 1))
        keep = np.clip(edges / (np.percentile(edges, 90) + 1e-6), 0, 1)  # strong edges survive
        nir = keep * nir + (1 - keep) * blurred
    yy, xx = np.mgrid[0:h, 0:w].astype(_F)
    r2 = ((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2
    nir = nir * (1 - vignetting * r2 / 2)
    if seed is not None and noise > 0:
        rng = np.random.default_rng([int(seed), 0x41])
        nir = nir + noise * rng.standard_normal((h, w)).astype(_F) * np.sqrt(np.clip(nir, 0.05, 1))
    return _to_uint8_grey3(nir)


def mild_thermal(image: np.ndarray, landmarks: np.ndarray | None = None, *, seed: int | None = 0,
                 blur: float = 1.0, contrast: float = 1.0, noise: float = 0.02, ambient: float = 22.0,
                 skin: float = 34.0) -> np.ndarray:
    """Mild severity: a long-wave-infrared (thermal) image of an aligned face photo; uint8 (H, W, 3).

    Args:
        image: uint8 (H, W, 3) RGB (or grey) photo, aligned.
        landmarks: (5, 2) eye centres, nose tip, mouth corners in pixels; default: the standard
            112x112 template scaled to the image (an aligned face).
        seed: noise seed (``None``: no noise).
        blur: optics blur (sigma as 1.5 % of the width at 1.0).
        contrast: contrast after automatic gain control (lower = flatter).
        noise: temporal noise standard deviation (fraction of full scale); column noise is half.
        ambient, skin: room and skin temperatures in degrees Celsius.

    Taught in ``notebooks/00_data_and_modality_gap.ipynb``.
    """
    rgb, pts, eye_d, centre = _face_frame(image, landmarks)
    h, w = rgb.shape[:2]
    # face region prior: an ellipse around the landmarks (covers forehead to chin)
    yy, xx = np.mgrid[0:h, 0:w].astype(_F)
    ex, ey = 1.25 * eye_d, 1.9 * eye_d
    cy = centre[1] - 0.25 * eye_d
    ell = ((xx - centre[0]) / ex) ** 2 + ((yy - cy) / ey) ** 2
    prior = np.clip(1.5 - ell, 0, 1)
    skin_p = skin_probability(image) * prior
    # the person is warmer than the room; skin warmest; hair (dark compared with the face's own
    # skin, e.g. brows, beard, hairline) insulates and is cooler -- this carries the photo's identity
    lum = rgb.mean(axis=2)
    core = prior > 0.8
    ref = float(np.median(lum[core])) if core.any() else float(np.median(lum))
    hair = np.clip((ref - lum) / max(0.35 * ref, 0.05), 0, 1)
    person = np.clip(prior * 1.4, 0, 1)
    temp = ambient + (skin - ambient) * person
    temp -= 4.0 * hair * person + 2.0 * (1 - skin_probability(image)) * person
    s = eye_d / 4
    eye_c = pts[:2]
    nose, mouth = pts[2], pts[3:].mean(axis=0)
    inner = [eye_c[0] + 0.3 * (eye_c[1] - eye_c[0]), eye_c[1] - 0.3 * (eye_c[1] - eye_c[0])]
    for (x, y) in inner:  # inner eye corners: the warmest spot of the face
        temp += 1.5 * _gauss(h, w, x, y, 0.5 * s) * person
    for (x, y) in eye_c:
        temp += 0.6 * _gauss(h, w, x, y, s) * person
    temp -= 2.0 * _gauss(h, w, nose[0], nose[1], 1.1 * s)  # cool nose tip
    temp += 0.5 * _gauss(h, w, mouth[0], mouth[1], 1.2 * s) * person
    forehead = np.clip((eye_c[:, 1].mean() - 0.3 * eye_d - yy) / eye_d, 0, 1) * skin_p
    temp += 0.6 * forehead
    cheeks = np.clip((np.abs(xx - centre[0]) - 0.6 * eye_d) / (0.5 * eye_d), 0, 1) * np.clip(
        (yy - nose[1] + 0.3 * eye_d) / eye_d, 0, 1) * skin_p
    temp -= 1.0 * cheeks
    if blur > 0:  # long-wave optics: wide point-spread function
        temp = gaussian_filter(temp, blur * 0.015 * w, mode="nearest")
    lo, hi = ambient + 1.0, skin + 2.0  # automatic gain control
    img = np.clip((temp - lo) / (hi - lo), 0, 1)
    img = 0.5 + (img - 0.5) * contrast
    if seed is not None and noise > 0:
        rng = np.random.default_rng([int(seed), 0x7E])
        img = img + noise * rng.standard_normal((h, w)).astype(_F) + 0.5 * noise * rng.standard_normal((1, w)).astype(_F)
    return _to_uint8_grey3(img)

"""Sensor-realistic pseudo-NIR faces (active 850 or 940 nm illumination) from aligned photos.

Face-recognition NIR cameras light the face themselves (LEDs beside the lens) and block visible
light with a band-pass filter, so the image is *reflected LED light*.  Each function below is one
physical effect, in the order a frame is made:

1. :func:`nir_reflectance` -- skin reflects NIR like the red end of the visible spectrum while
   melanin and haemoglobin absorb far less than in green and blue: one channel, mostly red.
2. :func:`reject_ambient_light` -- the band-pass filter removes the room's light, so the
   photo's own lighting (side light, shadows) largely disappears.
3. :func:`active_illumination` -- the LED is a near-frontal point source: irradiance falls with
   the angle to the surface (Lambert) and with distance squared, so the face's middle is bright,
   its sides darker, and the background (metres behind) nearly black.
4. :func:`skin_smoothing` -- NIR light travels further under the skin (sub-surface scattering):
   pores, freckles and blemishes fade; strong edges (eyes, outline) stay.
5. :func:`iris_and_pupils` -- irises of every colour reflect NIR (their melanin is nearly
   transparent there), so they turn light grey and the pupil stands out dark (or bright, with a
   coaxial LED: the "bright pupil" of the retina's reflection).
6. :func:`specular_highlights` -- skin oil mirrors the LED on the nose tip, forehead and
   cheekbones, and each cornea shows a small, sharp glint.
7. :func:`lens_reflections` -- glasses are transparent to NIR (the eyes stay visible), but each
   lens mirrors the LED.  Only when the caller says the photo shows glasses (see :mod:`.regions`).
8. :func:`vignetting` -- the wide-angle lens darkens the corners (cos^4 law).
9. :func:`sensor_noise` -- silicon is less sensitive at 850 nm (and worse at 940 nm), so gain is
   high: photon (shot) noise that grows with brightness plus read noise; optionally a lower
   resolution (``native_size``) for surveillance-distance faces.

:class:`NIRSettings` holds every knob; ``severity="realistic"`` uses the values calibrated in
``benchmarks/sensor_calibration.py``.

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Real photos, simulated sensors").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, sobel

from .imaging import _F, _as_rgb01, _gauss, _srgb_to_linear, _to_uint8_grey3
from .regions import FaceRegions, face_regions, glasses_mask

WAVELENGTHS = {850: (0.75, 0.2, 0.05), 940: (0.85, 0.12, 0.03)}
"""Linear-light weights of R, G, B standing for skin's reflectance at each LED wavelength."""


@dataclass(frozen=True)
class NIRSettings:
    """Knobs of the realistic NIR simulation.

    wavelength: 850 or 940 (nm).  ambient_rejection: 0-1, how much of the photo's own lighting
    the band-pass filter removes.  falloff: 0-1, darkening of the face's sides (Lambert, on the
    face ellipse).  background: brightness left to the background (inverse square, 0-1).
    smooth: sub-surface smoothing (blur sigma as 1.2 % of the width at 1).  iris: 0-1, how far
    the irises move toward the skin's brightness.  bright_pupil: coaxial LED (retro-reflecting
    retina).  specular: peak of the skin glints (0-1 of full scale).  vignetting: corner
    darkening.  shot, read: noise (fraction of full scale; shot scales with sqrt(signal)).
    native_size: sensor pixels across the aligned crop (0 = the crop's own size).
    """

    wavelength: int = 850
    ambient_rejection: float = 0.7
    falloff: float = 0.45
    background: float = 0.25
    smooth: float = 1.0
    iris: float = 0.8
    bright_pupil: bool = False
    specular: float = 0.25
    vignetting: float = 0.3
    shot: float = 0.03
    read: float = 0.015
    native_size: int = 0

    def __post_init__(self) -> None:
        if self.wavelength not in WAVELENGTHS:
            raise ValueError(f"NIRSettings: wavelength={self.wavelength}; choose one of {sorted(WAVELENGTHS)} (nm).")
        for name in ("ambient_rejection", "falloff", "background", "iris", "specular", "vignetting"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"NIRSettings: {name}={v}; give a value in [0, 1].")
        if min(self.smooth, self.shot, self.read) < 0:
            raise ValueError("NIRSettings: smooth, shot and read must be >= 0.")
        if self.native_size and not 8 <= int(self.native_size) <= 1024:
            raise ValueError(f"NIRSettings: native_size={self.native_size}; give 0 (full size) or 8-1024 pixels.")


def nir_reflectance(rgb: np.ndarray, wavelength: int = 850) -> np.ndarray:
    """One NIR channel (0-1) from an sRGB photo (0-1): mostly red, almost no blue, brightened skin.

    Skin's reflectance keeps rising past red into the NIR (melanin absorbs less and less,
    haemoglobin barely), so NIR follows red most, green a little, blue hardly; at 940 nm even
    more so.  Computed in linear light; the lift of the mid-tones stands for skin being brighter
    in NIR than in red (dark skin most of all).
    """
    lin = _srgb_to_linear(np.asarray(rgb, _F))
    wr = np.asarray(WAVELENGTHS[int(wavelength)], _F)
    return (np.clip(lin @ (wr / wr.sum()) * 1.15, 0, 1) ** (1 / 2.6)).astype(_F)


def reject_ambient_light(nir: np.ndarray, regions: FaceRegions, strength: float) -> np.ndarray:
    """Remove ``strength`` of the photo's large-scale lighting (shadows, side light), keep the detail.

    The NIR camera's band-pass filter blocks the room's visible light, so only the camera's own
    LED lights the face: the photo's lighting must go.  Lighting varies slowly across the face,
    reflectance quickly, so dividing by a wide blur (half an eye distance) flattens the lighting
    (the retinex idea); ``strength`` interpolates in the log domain.
    """
    if strength <= 0:
        return np.asarray(nir, _F)
    low = gaussian_filter(np.asarray(nir, _F), 0.5 * regions.eye_d, mode="nearest") + 0.02
    w = regions.head
    level = float((low * w).sum() / max(w.sum(), 1e-6))
    return np.clip(nir * (level / low) ** strength, 0, 1).astype(_F)


def active_illumination(nir: np.ndarray, regions: FaceRegions, falloff: float, background: float) -> np.ndarray:
    """Light the scene from the camera: Lambert fall-off on the face, inverse-square dark background.

    The face is modelled as an ellipsoid (its ellipse's normalised radius gives the angle between
    the surface and the LED: cos = sqrt(1 - r^2)); the background is metres further than the
    face, so it keeps only ``background`` of its brightness.
    """
    r2 = np.clip(regions.face_r2, 0, 1)
    lambert = (1 - falloff) + falloff * np.sqrt(1 - r2)
    gain = background + (1 - background) * regions.head * lambert
    return np.clip(nir * gain, 0, 1).astype(_F)


def skin_smoothing(nir: np.ndarray, strength: float) -> np.ndarray:
    """Edge-aware blur: NIR scatters under the skin, so fine texture fades but strong edges stay."""
    if strength <= 0:
        return np.asarray(nir, _F)
    w = nir.shape[1]
    blurred = gaussian_filter(nir, strength * 0.012 * w)
    edges = np.hypot(sobel(nir, 0), sobel(nir, 1))
    keep = np.clip(edges / (np.percentile(edges, 90) + 1e-6), 0, 1)
    return (keep * nir + (1 - keep) * blurred).astype(_F)


def iris_and_pupils(nir: np.ndarray, regions: FaceRegions, strength: float, bright_pupil: bool = False) -> np.ndarray:
    """Light irises (every eye colour reflects NIR) around a dark, or bright, pupil.

    Iris radius: 0.09 eye distances (an 11.7 mm iris for a 63 mm interpupillary distance); pupil:
    0.35 of it.  Centres: the refined irises of :class:`FaceRegions`.  ``strength`` moves the iris
    toward the median skin brightness; a coaxial LED makes the pupil bright (retina reflection).
    """
    if strength <= 0:
        return np.asarray(nir, _F)
    h, w = nir.shape
    d = regions.eye_d
    skin = regions.skin > 0.5
    skin_level = float(np.median(nir[skin])) if skin.any() else float(np.median(nir))
    out = np.asarray(nir, _F).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(_F)
    for x, y in regions.irises:
        rr = np.hypot(xx - x, yy - y)
        iris = np.clip((0.09 * d - rr) / max(0.25, 0.02 * d) + 0.5, 0, 1)
        pupil = np.clip((0.035 * d - rr) / max(0.25, 0.015 * d) + 0.5, 0, 1)
        out = out + strength * iris * (0.8 * skin_level - out)
        out = out * (1 - pupil) + pupil * (0.9 if bright_pupil else 0.06)
    return np.clip(out, 0, 1).astype(_F)


def specular_highlights(nir: np.ndarray, regions: FaceRegions, rng: np.random.Generator | None,
                        strength: float) -> np.ndarray:
    """Glints of the LED on oily skin (nose tip, forehead, cheekbones) and on each cornea.

    Skin is a weak mirror (sebum): under a point source near the lens, the surfaces facing the
    camera show highlights.  Their strength varies from photo to photo (``rng``; ``None``: mean).
    The corneal glint is a small, sharp reflection just above each pupil's centre.
    """
    if strength <= 0:
        return np.asarray(nir, _F)
    h, w = nir.shape
    d = regions.eye_d
    pts = regions.landmarks
    nose = pts[2]
    eye_y = float(pts[:2, 1].mean())
    spots = [(nose[0], nose[1] - 0.08 * d, 0.07), (pts[:2, 0].mean(), eye_y - 0.75 * d, 0.14),
             (pts[0, 0] - 0.05 * d, nose[1] - 0.15 * d, 0.09), (pts[1, 0] + 0.05 * d, nose[1] - 0.15 * d, 0.09)]
    k = rng.uniform(0.4, 1.0, len(spots)) if rng is not None else np.full(len(spots), 0.7)
    glint = np.zeros((h, w), _F)
    for (x, y, s), kk in zip(spots, k):
        glint += kk * _gauss(h, w, x, y, s * d)
    glint *= regions.skin
    for x, y in regions.irises:
        glint += 1.5 * _gauss(h, w, x + 0.02 * d, y - 0.03 * d, max(0.5, 0.015 * d))
    return np.clip(nir + strength * glint, 0, 1).astype(_F)


def lens_reflections(nir: np.ndarray, regions: FaceRegions) -> np.ndarray:
    """Glasses in NIR: transparent lenses (eyes visible) with one LED glint each, a faint frame."""
    h, w = nir.shape
    d = regions.eye_d
    lenses, frame = glasses_mask(regions)
    out = nir * (1 - 0.3 * frame)
    for x, y in regions.landmarks[:2]:
        out = out + 0.6 * _gauss(h, w, x - 0.15 * d, y - 0.12 * d, max(0.6, 0.035 * d)) * lenses
    return np.clip(out, 0, 1).astype(_F)


def vignetting(nir: np.ndarray, strength: float) -> np.ndarray:
    """Darken toward the corners (the cos^4 law of a wide-angle lens): ``strength`` at the corners' half-way."""
    h, w = nir.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(_F)
    r2 = ((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2
    return (nir * (1 - strength * r2 / 2)).astype(_F)


def sensor_noise(nir: np.ndarray, rng: np.random.Generator | None, shot: float, read: float,
                 native_size: int = 0) -> np.ndarray:
    """Photon (shot) noise growing with sqrt(signal), plus read noise; optionally at a coarser resolution.

    Silicon's quantum efficiency is ~30 % at 850 nm and ~15 % at 940 nm, so NIR cameras run at
    high gain: visibly noisy.  With ``native_size`` the frame is area-sampled to that many pixels
    across the crop (a face far from the camera) and the noise lives on those pixels.
    """
    x = np.asarray(nir, _F)
    h, w = x.shape
    if native_size and native_size != w:
        x = np.asarray(Image.fromarray(np.ascontiguousarray(x)).resize((native_size, native_size), Image.BOX), _F)
    if rng is not None and (shot > 0 or read > 0):
        sd = np.sqrt(shot ** 2 * np.clip(x, 0, 1) + read ** 2)
        x = x + sd * rng.standard_normal(x.shape).astype(_F)
    if x.shape != (h, w):
        x = np.asarray(Image.fromarray(np.ascontiguousarray(x, dtype=_F)).resize((w, h), Image.BILINEAR), _F)
    return np.clip(x, 0, 1).astype(_F)


def realistic_nir(image: np.ndarray, landmarks: np.ndarray | None, settings: NIRSettings, *,
                  seed: int | None, glasses: bool = False,
                  steps: list[tuple[str, np.ndarray]] | None = None) -> np.ndarray:
    """The realistic chain (module docstring, 1-9) on one aligned photo; uint8 (H, W, 3), equal channels.

    ``seed`` drives the noise and the glints' strengths (``None``: no noise, mean glints).  When
    ``steps`` is a list, each stage's picture is appended as ``(name, uint8 image)``.
    """
    s = settings
    rgb = _as_rgb01(image)
    regions = face_regions(image, landmarks)
    rng = np.random.default_rng([int(seed), 0x4E]) if seed is not None else None
    rec = steps.append if steps is not None else None
    if rec:
        rec(("photo", np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)))
    x = nir_reflectance(rgb, s.wavelength)
    if rec:
        rec((f"{s.wavelength} nm reflectance", _to_uint8_grey3(x)))
    x = reject_ambient_light(x, regions, s.ambient_rejection)
    if rec:
        rec(("room light filtered out", _to_uint8_grey3(x)))
    x = active_illumination(x, regions, s.falloff, s.background)
    if rec:
        rec(("LED light: fall-off, dark background", _to_uint8_grey3(x)))
    x = skin_smoothing(x, s.smooth)
    if rec:
        rec(("sub-surface scattering", _to_uint8_grey3(x)))
    x = iris_and_pupils(x, regions, s.iris, s.bright_pupil)
    x = specular_highlights(x, regions, rng, s.specular)
    if rec:
        rec(("irises, pupils and glints", _to_uint8_grey3(x)))
    if glasses:
        x = lens_reflections(x, regions)
        if rec:
            rec(("glasses: transparent, glints", _to_uint8_grey3(x)))
    x = vignetting(x, s.vignetting)
    x = sensor_noise(x, rng, s.shot, s.read, s.native_size)
    out = _to_uint8_grey3(x)
    if rec:
        rec(("vignetting and sensor noise", out))
    return out

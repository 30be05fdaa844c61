"""Sensor-realistic pseudo-thermal (long-wave infrared, 8-14 um) faces from aligned photos.

A thermal camera sees *emitted heat*, not reflected light, through a small, noisy sensor.  Each
function below is one physical effect, applied in the order a real frame is made:

1. :func:`material_temperature` -- skin ~34 C; hair, brows and the background near the room's
   ~22 C (hair insulates, the room is the room); no colour and no skin texture survive.
2. :func:`facial_heat_pattern` -- the warmest spots are the inner eye corners (the canthi, over
   the ophthalmic artery) and the eyes; the forehead and lips are warm, the nose tip and cheeks
   cooler (exposed, less perfused).
3. :func:`relief_from_shading` -- cavities (eye sockets, the sides of the nose, folds) lose less
   heat and emit like small black bodies, so they read warmer; protrusions cooler.  A photo does
   not give the 3D shape, so its own smoothed shading stands in for it (dark = recessed): this is
   the simulation's only identity cue inside the face besides the outline, hairline and brows,
   and its strength (``relief``) is a calibrated knob.
4. :func:`grazing_emissivity` -- skin seen at a grazing angle (the face's edge) emits less
   toward the camera, so the outline darkens.
5. :func:`cold_glasses` -- glass is opaque to LWIR: lenses show the (cold) reflected room, not
   the warm eyes.  Only when the caller says the photo shows glasses (see :mod:`.regions`).
6. :func:`optics_blur` -- germanium lenses and diffraction at 10 um: a wide point-spread function.
7. :func:`microbolometer_sampling` -- 160x120 to 640x480 pixels for a whole scene, so a face at a
   few metres is only tens of pixels wide: the face is area-averaged onto a coarse grid
   (``native_size`` pixels across the aligned crop) and later upscaled by the aligner.
8. :func:`fixed_pattern_noise` and :func:`temporal_noise` -- per-pixel offsets left after
   non-uniformity correction, per-column offsets of the readout amplifiers (stripes), and the
   temporal noise (NETD, ~50-100 mK).  The fixed pattern belongs to the camera
   (``camera_seed``), the temporal noise to the frame (``seed``).
9. :func:`automatic_gain` -- the camera maps the frame's own temperature range (robust
   percentiles) to 8 bits, so the face's grey levels depend on what else is in view.
10. Upscaling to the aligned size and a palette (:mod:`hfr_tutorial.data.thermal_palettes`):
    white-hot by default, as recognition expects; black-hot and false colour as cameras export.

:class:`ThermalSettings` holds every knob; ``severity="realistic"`` uses the values calibrated in
``benchmarks/sensor_calibration.py`` (see ``docs/results/sensor_calibration/``).

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Real photos, simulated sensors").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from ..thermal_palettes import apply_palette
from .imaging import _F, _as_rgb01
from .regions import FaceRegions, face_regions, glasses_mask


@dataclass(frozen=True)
class ThermalSettings:
    """Knobs of the realistic thermal simulation (temperatures in degrees Celsius).

    ambient, skin: room and skin temperatures.  hair_warmth: how far above ambient hair is.
    brow_cooling: how much cooler the brows are than the skin around them.  pattern: scale of the
    facial heat pattern (canthi, nose ...).  relief: degrees per standard deviation of the photo's
    smoothed shading (cavities warmer).  relief_sigma: smoothing of that shading, in eye distances.
    edge_loss: fraction of the skin-ambient contrast lost at the face's edge (grazing emission).
    psf: optics blur, sigma in *sensor* pixels.  native_size: sensor pixels across the aligned
    crop (a 640x480 camera with the face filling a seventh of its width, or a 320x240 one at
    close range, gives ~96; a 160x120 camera at a few metres ~30).

    The defaults are the ``realistic`` severity, chosen on dev identities only
    (``benchmarks/sensor_calibration.py``): with them the unadapted EdgeFace-XXS lands near the
    published unadapted thermal figures.  The first guess (36 sensor pixels, ``relief=0.6``) was
    far harder than a real camera (thermal->VIS EER ~36 %, rank-1 0.12 on dev); the photo-shading
    proxy of the relief makes matching harder as it grows (it also carries the photo's lighting),
    so it is kept small.
    netd: temporal noise, degrees.  fpn: residual per-pixel offsets, degrees.  column: per-column
    offsets, degrees.  agc: the percentiles of the frame mapped to black and white.  palette:
    output palette (``white-hot`` for recognition).
    """

    ambient: float = 22.0
    skin: float = 34.0
    hair_warmth: float = 2.5
    brow_cooling: float = 2.0
    pattern: float = 1.0
    relief: float = 0.15
    relief_sigma: float = 0.12
    edge_loss: float = 0.25
    psf: float = 0.5
    native_size: int = 96
    netd: float = 0.08
    fpn: float = 0.06
    column: float = 0.08
    agc: tuple[float, float] = (1.0, 99.5)
    palette: str = "white-hot"

    def __post_init__(self) -> None:
        if not self.skin > self.ambient:
            raise ValueError(f"ThermalSettings: skin ({self.skin} C) must be warmer than ambient ({self.ambient} C).")
        if not 8 <= int(self.native_size) <= 1024:
            raise ValueError(f"ThermalSettings: native_size={self.native_size}; give 8-1024 sensor pixels across "
                             "the face crop.")
        if min(self.netd, self.fpn, self.column, self.psf, self.relief, self.edge_loss) < 0:
            raise ValueError("ThermalSettings: noise, blur, relief and edge_loss must be >= 0.")
        lo, hi = self.agc
        if not 0 <= lo < hi <= 100:
            raise ValueError(f"ThermalSettings: agc={self.agc}; give two percentiles 0 <= low < high <= 100.")


# ---------------------------------------------------------------------- emission (the scene)

def material_temperature(regions: FaceRegions, ambient: float, skin: float, hair_warmth: float,
                         brow_cooling: float) -> np.ndarray:
    """Temperature of what each pixel *is*: skin warm, hair a little above ambient, background ambient.

    LWIR images have no colour and no skin texture: emission depends on temperature and
    emissivity (skin ~0.98 whatever its colour), so freckles, make-up and skin tone vanish.
    Hair insulates: its surface sits a few degrees above the room.  Brows are thin hair over warm
    skin: cooler than the skin, warmer than scalp hair.
    """
    r = regions
    temp = ambient + (skin - ambient) * r.skin + hair_warmth * r.hair
    temp -= brow_cooling * r.brows * r.skin
    return temp.astype(_F)


def facial_heat_pattern(regions: FaceRegions, scale: float = 1.0) -> np.ndarray:
    """Offsets (degrees) of the face's heat map, placed by the landmarks.

    Inner canthi +1.8 (the warmest point of a face: the ophthalmic artery runs close under thin
    skin), eyes +0.8, forehead +0.5 (well perfused, no fat), lips +0.6; nose tip -2.5 and cheeks
    -1.0 (exposed extremities, cooled first); the chin -0.4.  Values follow the facial
    thermography literature's ordering, not a person: identical for every aligned face.
    """
    r = regions
    h, w = r.face.shape
    d = r.eye_d
    off = np.zeros((h, w), _F)
    for p in r.inner_canthi():
        off += 1.8 * r.blob(p, 0.1)
    for p in r.landmarks[:2]:
        off += 0.8 * r.blob(p, 0.22)
    nose, mouth = r.landmarks[2], r.landmarks[3:].mean(axis=0)
    off -= 2.5 * r.blob(nose + np.array([0, -0.05 * d], _F), 0.2)
    off += 0.6 * r.blob(mouth, 0.22)
    off -= 0.4 * r.blob(mouth + np.array([0, 0.45 * d], _F), 0.3)
    for side in (-1, 1):
        off -= 1.0 * r.blob(np.array([nose[0] + side * 0.75 * d, nose[1] + 0.05 * d], _F), 0.3)
    eye_y = float(r.landmarks[:2, 1].mean())
    yy = np.arange(h, dtype=_F)[:, None]
    off += 0.5 * np.clip((eye_y - 0.55 * d - yy) / (0.5 * d), 0, 1) * np.ones((1, w), _F)
    return (scale * off * r.skin).astype(_F)


def relief_from_shading(luminance: np.ndarray, regions: FaceRegions, degrees: float, sigma: float = 0.12) -> np.ndarray:
    """Offsets (degrees) standing for the face's relief: recessed (darker in the photo) is warmer.

    Cavities (eye sockets, the sides of the nose, the mouth's corners) exchange heat with
    themselves instead of the room and act as cavity radiators, so a thermal image shows the
    face's 3D structure faintly.  A photo's shading, smoothed over ``sigma`` eye distances (no
    texture, no pores), is the nearest proxy: z-scored over the skin and scaled by ``degrees``.
    It also carries some of the photo's lighting, which a real thermal image would not.
    """
    if degrees == 0:
        return np.zeros_like(regions.skin)
    lum = gaussian_filter(np.asarray(luminance, _F), max(0.5, sigma * regions.eye_d))
    wts = regions.skin
    m = float((lum * wts).sum() / max(wts.sum(), 1e-6))
    s = float(np.sqrt(((lum - m) ** 2 * wts).sum() / max(wts.sum(), 1e-6)))
    z = np.clip((m - lum) / max(s, 1e-3), -2.5, 2.5)  # darker than the skin's mean -> positive
    return (degrees * z * wts).astype(_F)


def grazing_emissivity(temp: np.ndarray, regions: FaceRegions, ambient: float, loss: float) -> np.ndarray:
    """Darken the face's edge: skin viewed at a grazing angle emits less toward the camera.

    Emissivity falls off beyond ~60 degrees from the surface normal (and the camera sees more of
    the reflected, cooler room), so a face's apparent temperature drops toward its outline.  The
    face ellipse stands in for the surface normal: ``loss`` of the contrast to ambient is lost
    where the ellipse fades out.
    """
    edge = 1 - regions.face
    return (ambient + (temp - ambient) * (1 - loss * edge)).astype(_F)


def cold_glasses(temp: np.ndarray, regions: FaceRegions, ambient: float) -> np.ndarray:
    """Glass is opaque to 8-14 um: lenses show the reflected room (near ambient), the frame too.

    Eyes behind glasses are hidden, the very region (canthi) that is warmest without them.
    """
    lenses, frame = glasses_mask(regions)
    cover = np.clip(lenses + frame, 0, 1)
    return (temp * (1 - cover) + (ambient + 3.0) * lenses * (1 - frame) + (ambient + 5.0) * frame).astype(_F)


# ---------------------------------------------------------------------- the camera

def optics_blur(temp: np.ndarray, sigma: float) -> np.ndarray:
    """Blur by the lens's point-spread function (Gaussian, ``sigma`` in the array's pixels).

    At 10 um the diffraction spot of an f/1 lens (~2.44 * lambda * N = 24 um) spans more than a
    17 um microbolometer pixel, and cheap chalcogenide/germanium optics add aberrations.
    """
    if sigma <= 0:
        return np.asarray(temp, _F)
    return gaussian_filter(np.asarray(temp, _F), sigma, mode="nearest").astype(_F)


def microbolometer_sampling(temp: np.ndarray, native_size: int) -> np.ndarray:
    """Area-average the scene onto ``native_size`` x ``native_size`` sensor pixels.

    Each microbolometer integrates the radiance over its footprint; with 160x120 to 640x480
    pixels for the whole field of view, a face a few metres away covers only a few dozen pixels.
    """
    t = np.asarray(temp, _F)
    if t.shape[0] == native_size and t.shape[1] == native_size:
        return t.copy()
    return np.asarray(Image.fromarray(np.ascontiguousarray(t)).resize((native_size, native_size), Image.BOX), _F)


def fixed_pattern_noise(shape: tuple[int, int], camera_seed: int, pixel: float, column: float) -> np.ndarray:
    """The camera's own offsets (degrees): per pixel, and per column (vertical stripes).

    Non-uniformity correction (the shutter's flat field) leaves residual per-pixel offsets, and
    each column shares a readout amplifier whose offset drifts: stripes.  Fixed for one camera,
    so it comes from ``camera_seed``, not from the frame's seed: every frame of that camera
    carries the same pattern.
    """
    rng = np.random.default_rng([int(camera_seed), 0xF9])
    h, w = shape
    return (pixel * rng.standard_normal((h, w)) + column * rng.standard_normal((1, w))).astype(_F)


def temporal_noise(shape: tuple[int, int], rng: np.random.Generator, netd: float) -> np.ndarray:
    """Frame-to-frame noise (degrees): the noise-equivalent temperature difference (NETD), white."""
    return (netd * rng.standard_normal(shape)).astype(_F)


def automatic_gain(frame: np.ndarray, low: float = 1.0, high: float = 99.5) -> np.ndarray:
    """Map the frame's ``low``..``high`` percentiles of temperature to 0..1 (clipped).

    Cameras stretch whatever is in view over the 8-bit output: a cold background widens the
    range and compresses the face; the face's grey levels are not absolute temperatures.
    """
    lo, hi = np.percentile(frame, [low, high])
    return np.clip((frame - lo) / max(float(hi - lo), 1e-3), 0, 1).astype(_F)


def upscale(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling to ``size`` (H, W): what the aligner does to a small thermal face."""
    h, w = size
    a = np.asarray(x, _F)
    if a.shape == (h, w):
        return a.copy()
    return np.asarray(Image.fromarray(np.ascontiguousarray(a)).resize((w, h), Image.BILINEAR), _F)


# ---------------------------------------------------------------------- the chain

def _show_temp(temp: np.ndarray, s: ThermalSettings) -> np.ndarray:
    """A temperature map as a white-hot picture on a fixed scale (ambient - 1 to skin + 2.5)."""
    g = np.clip((np.asarray(temp, _F) - (s.ambient - 1)) / (s.skin + 2.5 - s.ambient + 1), 0, 1)
    return np.repeat(np.round(g * 255).astype(np.uint8)[..., None], 3, axis=2)


def realistic_thermal(image: np.ndarray, landmarks: np.ndarray | None, settings: ThermalSettings, *,
                      seed: int | None, camera_seed: int = 0, glasses: bool = False,
                      steps: list[tuple[str, np.ndarray]] | None = None) -> np.ndarray:
    """The realistic chain (module docstring, 1-10) on one aligned photo; uint8 (H, W, 3).

    ``seed`` drives the temporal noise (``None``: no temporal noise); ``camera_seed`` the fixed
    pattern.  When ``steps`` is a list, each stage's picture is appended as ``(name, uint8 image)``.
    """
    s = settings
    rgb = _as_rgb01(image)
    h, w = rgb.shape[:2]
    regions = face_regions(image, landmarks)
    lum = rgb.mean(axis=2)
    rec = steps.append if steps is not None else None
    if rec:
        rec(("photo", np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)))
        rec(("regions: skin / hair / background", regions.as_rgb()))
    temp = material_temperature(regions, s.ambient, s.skin, s.hair_warmth, s.brow_cooling)
    if rec:
        rec(("materials: skin warm, hair and room near ambient", _show_temp(temp, s)))
    temp = temp + facial_heat_pattern(regions, s.pattern)
    if rec:
        rec(("heat pattern: canthi warmest, nose cool", _show_temp(temp, s)))
    temp = temp + relief_from_shading(lum, regions, s.relief, s.relief_sigma)
    temp = grazing_emissivity(temp, regions, s.ambient, s.edge_loss)
    if rec:
        rec(("relief and grazing emission", _show_temp(temp, s)))
    if glasses:
        temp = cold_glasses(temp, regions, s.ambient)
        if rec:
            rec(("glasses: opaque, cold", _show_temp(temp, s)))
    n = int(s.native_size)
    scale = n / float(w)
    temp = optics_blur(temp, s.psf / scale)  # sigma given in sensor pixels
    if rec:
        rec(("optics blur", _show_temp(temp, s)))
    frame = microbolometer_sampling(temp, n)
    if rec:
        rec((f"sensor: {n}x{n} pixels", _show_temp(upscale(frame, (h, w)), s)))
    frame = frame + fixed_pattern_noise(frame.shape, camera_seed, s.fpn, s.column)
    if seed is not None:
        frame = frame + temporal_noise(frame.shape, np.random.default_rng([int(seed), 0x7F]), s.netd)
    if rec:
        rec(("fixed-pattern, column and temporal noise", _show_temp(upscale(frame, (h, w)), s)))
    level = automatic_gain(frame, *s.agc)
    level = np.round(level * 255) / 255  # the camera's 8-bit output
    if rec:
        native = np.asarray(Image.fromarray(np.round(level * 255).astype(np.uint8)).resize((w, h), Image.NEAREST))
        rec(("automatic gain (8 bits, sensor pixels)", np.repeat(native[..., None], 3, axis=2)))
    grey = np.clip(np.round(upscale(level, (h, w)) * 255), 0, 255).astype(np.uint8)
    out = apply_palette(grey, s.palette)
    if rec:
        rec((f"upscaled (bilinear), {s.palette}", out))
    return out

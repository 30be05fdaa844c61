"""Pseudo-NIR and pseudo-thermal faces simulated from ordinary (visible-light) photos.

For users who have aligned RGB face photos but no licensed cross-spectral data: a practice set
whose NIR and thermal probes differ from the VIS gallery the way real sensors' images do.  They
are simulations, not measurements (see "What it cannot show" below); identity comes only from
the photo.

Two severities (``severity=``):

``"realistic"`` (the default) -- a sensor model, one tested function per physical effect:
    * thermal (:mod:`.thermal`): emission instead of reflection (no colour, no skin texture;
      hair, brows and background near ambient; canthi warmest, nose cool; the face's relief
      faintly), cold opaque glasses, the optics' blur, a microbolometer's few pixels across the
      face (then upscaled), fixed-pattern, column and temporal noise, automatic gain, and the
      palettes cameras export;
    * NIR (:mod:`.nir`): 850/940 nm reflectance, the room's light filtered out, the camera's own
      LED (fall-off, dark background), sub-surface smoothing, light irises and dark pupils,
      specular glints, transparent glasses with glints, vignetting, sensor noise.

    Its default settings (:data:`REALISTIC_THERMAL`, :data:`REALISTIC_NIR`) were chosen on dev
    identities of a practice set made from real photos so that the unadapted official
    EdgeFace-XXS scores near the published unadapted figures (thermal->VIS EER ~20-25 %), with
    NIR closer to VIS than thermal.  Measured on 24 dev identities (118 real people in all):
    thermal->VIS EER 23.9 % [17.1, 30.6], rank-1 0.36; NIR->VIS EER 3.2 % [1.3, 6.0], rank-1 0.98
    (mild: 12.0 % and 0.7 %): ``benchmarks/sensor_calibration.py``,
    ``docs/results/sensor_calibration/calibration.md``.
``"mild"`` -- the first, gentle simulation (:mod:`.mild`), byte-identical to what this module
    produced before for the same seed: channel weighting, smoothing and vignetting for NIR; a
    blurred template heat map for thermal.  The real EdgeFace barely notices it.

A :class:`NIRSettings` or :class:`ThermalSettings` can be passed as ``severity`` for any
intermediate setting (the calibration does), and single knobs as keyword overrides.

What it cannot show (only a real sensor's data can): real emissivity and blood-flow patterns of
a person (the heat map is the same template for everyone, plus a proxy of the relief from the
photo's shading); the temperature changes with exercise, alcohol, illness, the weather or the
time since entering the room; real hair and clothing temperatures; glasses, unless the caller
says a photo shows them (they are not detected); the exact noise spectrum, optics, NUC drift
and AGC of a given camera; NIR's real reflectance of make-up, tattoos, and skins of different
melanin content; pose, expression and timing differences between a VIS and a NIR/thermal
capture (here both come from the same photo, so pose and expression match exactly).

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Real photos, simulated sensors").
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, Sequence

import numpy as np

from .mild import mild_nir, mild_thermal
from .nir import NIRSettings, realistic_nir
from .regions import FaceRegions, face_regions, glasses_mask, skin_probability
from .thermal import ThermalSettings, realistic_thermal

SEVERITIES: tuple[str, ...] = ("realistic", "mild")
DEFAULT_SEVERITY = "realistic"
MODALITIES: tuple[str, ...] = ("nir", "thermal")

REALISTIC_THERMAL = ThermalSettings()
"""The calibrated thermal settings of ``severity="realistic"`` (see the module docstring)."""
REALISTIC_NIR = NIRSettings()
"""The calibrated NIR settings of ``severity="realistic"``."""

_MILD_KNOBS = {"nir": ("smooth", "noise", "vignetting", "weights"),
               "thermal": ("blur", "contrast", "noise", "ambient", "skin")}

__all__ = ["DEFAULT_SEVERITY", "FaceRegions", "MODALITIES", "NIRSettings", "REALISTIC_NIR", "REALISTIC_THERMAL",
           "SEVERITIES", "ThermalSettings", "face_regions", "glasses_mask", "pseudo_nir", "pseudo_thermal",
           "settings_for", "simulate", "simulation_steps", "skin_probability"]


def settings_for(modality: str, severity: str | NIRSettings | ThermalSettings = DEFAULT_SEVERITY,
                 **overrides: Any) -> NIRSettings | ThermalSettings | None:
    """The settings a severity stands for (``None`` for ``"mild"``), with keyword overrides applied.

    ``severity`` is ``"realistic"``, ``"mild"`` or a settings object of the modality.  Overrides
    name fields of :class:`NIRSettings` / :class:`ThermalSettings` (realistic) or the mild
    functions' keywords (:mod:`.mild`).
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality {modality!r} unknown; choose one of {list(MODALITIES)}.")
    cls = NIRSettings if modality == "nir" else ThermalSettings
    if isinstance(severity, (NIRSettings, ThermalSettings)):
        if not isinstance(severity, cls):
            raise ValueError(f"severity is a {type(severity).__name__}, but modality {modality!r} needs a "
                             f"{cls.__name__}.")
        base = severity
    elif severity == "mild":
        bad = sorted(set(overrides) - set(_MILD_KNOBS[modality]))
        if bad:
            raise ValueError(f"severity='mild' {modality}: unknown setting(s) {bad}; the mild simulation takes "
                             f"{list(_MILD_KNOBS[modality])}.")
        return None
    elif severity == "realistic":
        base = REALISTIC_NIR if modality == "nir" else REALISTIC_THERMAL
    else:
        raise ValueError(f"severity {severity!r} unknown; choose one of {list(SEVERITIES)} or pass a {cls.__name__}.")
    names = {f.name for f in fields(cls)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"{cls.__name__}: unknown setting(s) {bad}; choose from {sorted(names)}.")
    return replace(base, **overrides) if overrides else base


def pseudo_nir(image: np.ndarray, landmarks: np.ndarray | None = None, *, seed: int | None = 0,
               severity: str | NIRSettings = DEFAULT_SEVERITY, glasses: bool = False, **overrides: Any) -> np.ndarray:
    """Simulate an active-NIR image of an aligned RGB face photo; uint8 (H, W, 3), equal channels.

    Args:
        image: uint8 (H, W, 3) RGB (or grey (H, W)) photo, aligned.
        landmarks: (5, 2) eye centres, nose tip, mouth corners in pixels; default the 112x112
            template scaled to the image.  (The mild severity does not use them.)
        seed: noise seed (``None``: no noise).
        severity: ``"realistic"`` (default), ``"mild"`` or a :class:`NIRSettings`.
        glasses: the photo shows glasses (transparent in NIR, with glints); realistic only.
        **overrides: single settings (``NIRSettings`` fields, or the mild keywords).

    Taught in ``notebooks/00_data_and_modality_gap.ipynb``.
    """
    settings = settings_for("nir", severity, **overrides)
    if settings is None:
        if glasses:
            raise ValueError("glasses=True needs severity='realistic' (the mild simulation has no glasses).")
        return mild_nir(image, seed=seed, **overrides)
    return realistic_nir(image, landmarks, settings, seed=seed, glasses=glasses)


def pseudo_thermal(image: np.ndarray, landmarks: np.ndarray | None = None, *, seed: int | None = 0,
                   severity: str | ThermalSettings = DEFAULT_SEVERITY, glasses: bool = False, camera_seed: int = 0,
                   **overrides: Any) -> np.ndarray:
    """Simulate a long-wave-infrared (thermal) image of an aligned face photo; uint8 (H, W, 3).

    Args:
        image: uint8 (H, W, 3) RGB (or grey) photo, aligned.
        landmarks: (5, 2) eye centres, nose tip, mouth corners in pixels; default the 112x112
            template scaled to the image (an aligned face).
        seed: temporal-noise seed (``None``: none).
        severity: ``"realistic"`` (default), ``"mild"`` or a :class:`ThermalSettings`.
        glasses: the photo shows glasses (opaque and cold in thermal); realistic only.
        camera_seed: the simulated camera's fixed pattern (the same for all its frames).
        **overrides: single settings (``ThermalSettings`` fields such as ``palette="ironbow"``,
            or the mild keywords ``blur``, ``contrast``, ``noise``, ``ambient``, ``skin``).

    Taught in ``notebooks/00_data_and_modality_gap.ipynb``.
    """
    settings = settings_for("thermal", severity, **overrides)
    if settings is None:
        if glasses:
            raise ValueError("glasses=True needs severity='realistic' (the mild simulation has no glasses).")
        return mild_thermal(image, landmarks, seed=seed, **overrides)
    return realistic_thermal(image, landmarks, settings, seed=seed, camera_seed=camera_seed, glasses=glasses)


def simulate(images: np.ndarray, modality: str, landmarks: np.ndarray | None = None, seed: int = 0,
             severity: str | NIRSettings | ThermalSettings = DEFAULT_SEVERITY,
             glasses: Sequence[bool] | np.ndarray | None = None, **kwargs: Any) -> np.ndarray:
    """Apply :func:`pseudo_nir` or :func:`pseudo_thermal` to a stack (N, H, W, 3); seeds ``seed + i``.

    ``landmarks``: (N, 5, 2) or ``None`` (template); ``glasses``: one flag per image or ``None``;
    ``kwargs`` go to the per-image function (e.g. ``camera_seed`` for thermal).
    """
    if modality not in ("nir", "thermal", "vis"):
        raise ValueError(f"simulate: modality {modality!r} unknown; choose 'nir' or 'thermal' ('vis' = unchanged).")
    imgs = np.asarray(images)
    if modality == "vis":
        return imgs.copy()
    if glasses is not None and len(glasses) != len(imgs):
        raise ValueError(f"simulate: {len(glasses)} glasses flags for {len(imgs)} images; give one per image.")
    fn = pseudo_thermal if modality == "thermal" else pseudo_nir
    out = np.empty(imgs.shape[:3] + (3,), np.uint8)
    for i, img in enumerate(imgs):
        lm = None if landmarks is None else landmarks[i]
        extra = {"glasses": True} if glasses is not None and glasses[i] else {}
        out[i] = fn(img, lm, seed=seed + i, severity=severity, **extra, **kwargs)
    return out


def simulation_steps(image: np.ndarray, modality: str, severity: str | NIRSettings | ThermalSettings = DEFAULT_SEVERITY,
                     seed: int | None = 0, landmarks: np.ndarray | None = None, glasses: bool = False,
                     camera_seed: int = 0, **overrides: Any) -> list[tuple[str, np.ndarray]]:
    """A photo through each step of the simulation: ``[(step name, uint8 (H, W, 3) image), ...]``.

    The last image is exactly what :func:`pseudo_nir` / :func:`pseudo_thermal` return for the same
    arguments.  The mild severity is one step (``[("photo", ...), ("mild <modality>", ...)]``).
    ``camera_seed``: the thermal camera's fixed pattern.  For notebook 00's figure of a real photo
    through a simulated sensor.
    """
    settings = settings_for(modality, severity, **overrides)
    rgb = np.asarray(image)
    if settings is None:
        out = (pseudo_nir(image, seed=seed, severity="mild", **overrides) if modality == "nir"
               else pseudo_thermal(image, landmarks, seed=seed, severity="mild", **overrides))
        photo = rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)
        return [("photo", photo[..., :3].copy()), (f"mild {modality}", out)]
    steps: list[tuple[str, np.ndarray]] = []
    if modality == "nir":
        realistic_nir(image, landmarks, settings, seed=seed, glasses=glasses, steps=steps)  # type: ignore[arg-type]
    else:
        realistic_thermal(image, landmarks, settings, seed=seed, glasses=glasses, steps=steps,  # type: ignore[arg-type]
                          camera_seed=camera_seed)
    return steps

"""Thermal palettes: false colour for display, and back to one channel for recognition.

A thermal camera measures one number per pixel (a temperature, or the radiance behind it).  To
show it, cameras and their software map that number through a *palette*: grey "white-hot" (hot
is bright), "black-hot" (hot is dark), or false colour such as FLIR's ironbow, matplotlib's
inferno or a rainbow.  Many exported files (JPEG screenshots, FLIR's default exports) keep only
the coloured picture.  A face-recognition model must see the one channel, in a fixed polarity:
a palette is a change of appearance that carries no information, and a false-colour image fed
as RGB would look to the network like an unrelated, very strange VIS photo.

* :func:`apply_palette` renders a one-channel image through a palette (what the camera does);
* :func:`palette_to_grey` inverts it: every pixel goes to the nearest colour *on the palette's
  curve* (a k-d tree over a finely sampled curve), so JPEG noise and slightly different vendor
  curves still land near the right level; the distance to the curve is returned, so overlays
  (a crosshair, a temperature scale bar, text) show up as far-from-curve pixels;
* :func:`detect_palette` guesses the palette of an image with a *stated* confidence: the fraction
  of pixels within ``tolerance`` of each palette's curve.  White-hot and black-hot have the same
  colours (grey), so between the two only the picture can decide: for a face crop the face
  (warm) fills the centre, so a centre brighter than the border means white-hot.  That rule is a
  heuristic and says so (``PaletteMatch.note``); ambiguous guesses are flagged.

The palettes (``PALETTES``): ``white-hot``, ``black-hot``, ``ironbow`` (black, indigo, purple,
red, orange, yellow, white: an approximation of FLIR's Iron, whose exact table is not public;
other vendors' "iron" curves differ a little, which the nearest-colour rule absorbs within the
tolerance), ``inferno`` (matplotlib's, perceptually uniform) and ``rainbow`` (matplotlib's
``jet``, OpenCV's ``COLORMAP_JET``, the rainbow most export tools use).  Used by
``data_scripts/prepare_folder.py --palette`` and by the thermal simulation
(:mod:`hfr_tutorial.data.spectral`); taught in ``notebooks/00_data_and_modality_gap.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

PALETTES: tuple[str, ...] = ("white-hot", "black-hot", "ironbow", "inferno", "rainbow")
GREY_PALETTES: tuple[str, ...] = ("white-hot", "black-hot")
DEFAULT_TOLERANCE = 24.0
"""Distance (in 0-255 RGB units) within which a pixel counts as *on* a palette's curve: covers
JPEG quality ~75 colour noise and small differences between vendors' curves."""

_IRONBOW = np.array([  # position in [0, 1], R, G, B
    [0.00, 0, 0, 0], [0.12, 25, 0, 95], [0.28, 100, 0, 150], [0.44, 175, 15, 130], [0.58, 225, 60, 45],
    [0.72, 248, 130, 0], [0.86, 255, 200, 35], [1.00, 255, 255, 225]], dtype=np.float64)
_SAMPLES = 1024  # points along a curve: 4 per grey level, finer than JPEG noise


def _check_name(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    aliases = {"whitehot": "white-hot", "blackhot": "black-hot", "iron": "ironbow", "jet": "rainbow"}
    key = aliases.get(key.replace("-", ""), key)
    if key not in PALETTES:
        raise ValueError(f"palette {name!r} unknown; choose one of {list(PALETTES)}.")
    return key


@lru_cache(maxsize=None)
def palette_curve(name: str, samples: int = _SAMPLES) -> np.ndarray:
    """The palette's colours along its curve: float (samples, 3) in 0-255, coldest first."""
    key = _check_name(name)
    t = np.linspace(0.0, 1.0, samples)
    if key == "white-hot":
        curve = np.repeat(t[:, None] * 255.0, 3, axis=1)
    elif key == "black-hot":
        curve = np.repeat((1 - t[:, None]) * 255.0, 3, axis=1)
    elif key == "ironbow":
        curve = np.stack([np.interp(t, _IRONBOW[:, 0], _IRONBOW[:, c]) for c in (1, 2, 3)], axis=1)
    else:
        from matplotlib import colormaps

        curve = colormaps["inferno" if key == "inferno" else "jet"](t)[:, :3] * 255.0
    curve.setflags(write=False)
    return curve


@lru_cache(maxsize=None)
def _tree(name: str):  # noqa: ANN202 (a scipy object)
    from scipy.spatial import cKDTree

    return cKDTree(palette_curve(name))


def _as_grey(image: np.ndarray, what: str) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[..., :3].astype(np.float64).mean(axis=2)
    if img.ndim != 2:
        raise ValueError(f"{what}: expected a one-channel (H, W) or (H, W, 3) image, got shape {img.shape}.")
    return img.astype(np.float64)


def apply_palette(grey: np.ndarray, name: str = "white-hot") -> np.ndarray:
    """Render a one-channel image (uint8 0-255, or (H, W, 3) with equal channels) through a palette.

    Returns uint8 (H, W, 3).  ``white-hot`` replicates the channel; ``black-hot`` inverts it.
    """
    key = _check_name(name)
    g = _as_grey(grey, "apply_palette")
    if g.min() < 0 or g.max() > 255:
        raise ValueError("apply_palette: values must lie in 0-255 (a uint8 image).")
    curve = palette_curve(key)
    idx = np.clip(np.round(g / 255.0 * (len(curve) - 1)), 0, len(curve) - 1).astype(np.int64)
    return np.clip(np.round(curve[idx]), 0, 255).astype(np.uint8)


def palette_to_grey(image: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Back to one channel: (grey uint8 (H, W), white-hot; distance (H, W) of each pixel to the curve).

    Each pixel takes the level of the nearest colour on the palette's curve; ``distance`` (0-255 RGB
    units) says how far it was (overlays, text and heavy compression are far).
    """
    key = _check_name(name)
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"palette_to_grey: expected an (H, W, 3) image, got shape {np.asarray(image).shape}.")
    rgb = img[..., :3].astype(np.float64)
    dist, idx = _tree(key).query(rgb.reshape(-1, 3))
    level = idx / (_SAMPLES - 1.0)  # curves run coldest first, so the index is the level (black-hot included)
    grey = np.clip(np.round(level * 255.0), 0, 255).astype(np.uint8).reshape(rgb.shape[:2])
    return grey, dist.reshape(rgb.shape[:2]).astype(np.float32)


@dataclass(frozen=True)
class PaletteMatch:
    """The guess of :func:`detect_palette`.

    ``name``: the palette; ``confidence``: the fraction of pixels within ``tolerance`` of its
    curve; ``fractions``: that fraction for every palette tried; ``ambiguous``: True when the
    runner-up is within 0.05 of the winner (colour palettes) or, between white-hot and black-hot,
    when the centre and the border are nearly as bright; ``note``: how the choice was made.
    """

    name: str
    confidence: float
    fractions: dict[str, float] = field(default_factory=dict)
    ambiguous: bool = False
    note: str = ""


def _polarity(grey: np.ndarray) -> float:
    """Mean brightness of the central half minus that of the outer border (0-255 units)."""
    h, w = grey.shape
    centre = grey[h // 4: h - h // 4, w // 4: w - w // 4].mean()
    border = np.concatenate([grey[: h // 8].ravel(), grey[h - h // 8:].ravel(), grey[:, : w // 8].ravel(),
                             grey[:, w - w // 8:].ravel()]).mean()
    return float(centre - border)


def detect_palette(image: np.ndarray | list[np.ndarray], candidates: tuple[str, ...] = PALETTES,
                   tolerance: float = DEFAULT_TOLERANCE, polarity_margin: float = 8.0) -> PaletteMatch:
    """Guess the palette of a thermal image (or of several, pooled), with a stated confidence.

    Args:
        image: uint8 (H, W, 3) image, or a list of them (a folder's worth: one camera, one palette).
        candidates: palettes to try.
        tolerance: distance to a curve (0-255 RGB) that counts as on it (:data:`DEFAULT_TOLERANCE`).
        polarity_margin: between white-hot and black-hot, how much brighter (or darker) the
            centre must be than the border (0-255) for a firm answer.

    See the module docstring for the rules; check ``confidence`` and ``ambiguous`` before trusting it.
    """
    imgs = image if isinstance(image, (list, tuple)) else [image]
    if not imgs:
        raise ValueError("detect_palette: no image given.")
    names = [_check_name(c) for c in candidates]
    pix = []
    for im in imgs:
        a = np.asarray(im)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4):
            raise ValueError(f"detect_palette: expected (H, W, 3) images, got shape {a.shape}.")
        pix.append(a[..., :3].reshape(-1, 3).astype(np.float64))
    rgb = np.concatenate(pix)
    if len(rgb) > 200_000:  # a sample is enough for a fraction
        rgb = rgb[np.random.default_rng(0).choice(len(rgb), 200_000, replace=False)]
    fractions = {n: float((_tree(n).query(rgb, distance_upper_bound=tolerance)[0] <= tolerance).mean())
                 for n in names}
    grey_names = [n for n in names if n in GREY_PALETTES]
    colour_names = [n for n in names if n not in GREY_PALETTES]
    best_colour = max(colour_names, key=fractions.get) if colour_names else None
    grey_fraction = max((fractions[n] for n in grey_names), default=-1.0)
    if best_colour is not None and fractions[best_colour] > grey_fraction:
        others = sorted((fractions[n] for n in colour_names if n != best_colour), reverse=True)
        ambiguous = bool(others) and fractions[best_colour] - others[0] < 0.05
        return PaletteMatch(best_colour, fractions[best_colour], fractions, ambiguous,
                            f"{fractions[best_colour]:.0%} of pixels within {tolerance:g} of the {best_colour} curve")
    if not grey_names:
        raise ValueError("detect_palette: the image is grey but no grey palette is among the candidates.")
    diff = float(np.mean([_polarity(_as_grey(im, "detect_palette")) for im in imgs]))
    name = "white-hot" if diff >= 0 else "black-hot"
    if name not in grey_names:
        name = grey_names[0]
    note = (f"grey image ({grey_fraction:.0%} of pixels grey): white-hot and black-hot share their colours; the "
            f"centre is {abs(diff):.0f} levels {'brighter' if diff >= 0 else 'darker'} than the border, read as a "
            f"warm face in {name} (a heuristic for face crops)")
    return PaletteMatch(name, grey_fraction, fractions, abs(diff) < polarity_margin, note)

"""Where the skin, hair, eyes, nose and mouth are in an aligned face photo: the maps the sensors need.

A simulated sensor must know *what* each pixel shows, because the bands see materials, not
colours: in long-wave infrared skin glows at ~34 C while hair and the background sit near room
temperature; in active NIR the irises turn light and the background goes dark.  Two sources of
that knowledge, both cheap and deterministic:

* **Geometry**: an aligned face has its five landmarks at the 112x112 template positions
  (:func:`hfr_tutorial.data.align.template`), so the eyes, the inner eye corners (canthi), the
  nose tip, the mouth, the cheeks and the forehead are *where the template says*; ellipses around
  the landmarks bound the face and the head (face plus hair).
* **Colour**: skin against hair and background from a chroma rule (YCbCr, as in classic skin
  detectors); hair, brows and beard are also *darker* than the face's own skin.  A grey photo has
  no colour cue: there the face ellipse and the darkness rule are all there is (said in
  :attr:`FaceRegions.colour`).

Glasses are **not detected**: at 112x112 a rule on edges or colour confuses frames with brows,
shadows and wrinkles (and rimless glasses leave almost nothing to see), and no trained detector
runs offline here.  Pass ``glasses=True`` for photos you know show glasses (``prepare_folder.py
--glasses FILE`` for a folder); :func:`glasses_mask`
then gives the lenses' place from the landmarks.  Without it a face with glasses is simulated as
if the lenses were skin and eyes (wrong in thermal, where glass is opaque and cold).

Taught in ``notebooks/00_data_and_modality_gap.ipynb`` (section "Real photos, simulated sensors").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .imaging import _F, _as_rgb01, _face_frame, _gauss


def skin_probability(image: np.ndarray) -> np.ndarray:
    """A soft skin mask from colour (YCbCr chroma rule); all ones for grey photos (no colour cue)."""
    rgb = _as_rgb01(image)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if np.allclose(r, g, atol=2 / 255) and np.allclose(g, b, atol=2 / 255):
        return np.ones(r.shape, _F)
    cb = 128 + 255 * (-0.168736 * r - 0.331264 * g + 0.5 * b)
    cr = 128 + 255 * (0.5 * r - 0.418688 * g - 0.081312 * b)
    ycc = np.exp(-(((cr - 152) / 18) ** 2 + ((cb - 110) / 18) ** 2) / 2)
    return np.clip(ycc * 2, 0, 1).astype(_F)


def _radius2(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(_F)
    return (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2).astype(_F)


def _ellipse(h: int, w: int, cx: float, cy: float, rx: float, ry: float, soft: float = 0.5) -> np.ndarray:
    """1 inside the ellipse, falling linearly to 0 over ``soft`` of its normalised radius outside."""
    return np.clip((1 + soft - _radius2(h, w, cx, cy, rx, ry)) / soft, 0, 1).astype(_F)


@dataclass(frozen=True)
class FaceRegions:
    """Soft (H, W) float32 maps in [0, 1] of an aligned face, and its landmarks.

    ``face``: the face ellipse (forehead to chin); ``head``: face plus hair; ``skin``: bare skin;
    ``hair``: head that is not skin (hair, hats, a beard); ``brows``: dark band above each eye;
    ``background``: ``1 - head``; ``face_r2``: the squared normalised radius of the face ellipse
    (0 at its centre, 1 on its edge: a stand-in for the face's curvature); ``landmarks``: the
    (5, 2) points used; ``irises``: (2, 2) eye points moved to the darkest spot near the
    template's (the iris); ``eye_d``: the distance between the eyes in pixels; ``colour``:
    whether the photo had colour (else skin is guessed from the ellipse and darkness only).
    """

    face: np.ndarray
    head: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    brows: np.ndarray
    background: np.ndarray
    face_r2: np.ndarray
    landmarks: np.ndarray
    irises: np.ndarray
    eye_d: float
    colour: bool

    def blob(self, point: np.ndarray, sigma: float) -> np.ndarray:
        """A Gaussian bump of width ``sigma`` (in eye distances) at ``point`` (x, y)."""
        h, w = self.face.shape
        return _gauss(h, w, float(point[0]), float(point[1]), sigma * self.eye_d)

    def inner_canthi(self) -> np.ndarray:
        """The two inner eye corners (x, y): 28 % of the way from each eye centre to the other."""
        e = self.landmarks[:2]
        return np.stack([e[0] + 0.28 * (e[1] - e[0]), e[1] - 0.28 * (e[1] - e[0])])

    def as_rgb(self) -> np.ndarray:
        """A picture of the regions: skin red, hair green, background blue (uint8), for notebooks."""
        rgb = np.stack([self.skin, np.clip(self.hair + self.brows, 0, 1), self.background], axis=2)
        return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def refine_irises(luminance: np.ndarray, eyes: np.ndarray, eye_d: float, search: float = 0.12) -> np.ndarray:
    """Move each eye point to the darkest spot (the iris) within ``search`` eye distances of it.

    The template gives where the eyes *should* be; a real aligned face is off by a few pixels
    (gaze, landmark error).  Pupils drawn at the template point would sit on the eyelid: NIR
    needs them on the iris.  The luminance is smoothed over a fraction of the iris first, so one
    dark pixel (an eyelash) does not win.
    """
    lum = gaussian_filter(np.asarray(luminance, _F), max(0.5, 0.04 * eye_d))
    h, w = lum.shape
    r = max(1, int(round(search * eye_d)))
    out = np.array(eyes, dtype=_F)
    for k, (x, y) in enumerate(eyes):
        x0, x1 = int(max(0, round(x) - r)), int(min(w, round(x) + r + 1))
        y0, y1 = int(max(0, round(y) - r)), int(min(h, round(y) + r + 1))
        if x1 <= x0 or y1 <= y0:
            continue
        win = lum[y0:y1, x0:x1]
        iy, ix = np.unravel_index(np.argmin(win), win.shape)
        out[k] = (x0 + ix, y0 + iy)
    return out


def face_regions(image: np.ndarray, landmarks: np.ndarray | None = None) -> FaceRegions:
    """The region maps of an aligned face photo (uint8 RGB or grey), from its landmarks and colours.

    ``landmarks``: (5, 2) eye centres, nose tip, mouth corners in pixels; default the 112x112
    template scaled to the image (an aligned face).  See the module docstring for the rules.
    """
    rgb, pts, eye_d, centre = _face_frame(image, landmarks)
    h, w = rgb.shape[:2]
    # an aligned face spans ~1.05 eye distances either side of its axis and ~1.45 above and below
    # a point a quarter eye distance above the landmarks' mean (forehead to chin); hair adds a rim
    face_r2 = _radius2(h, w, centre[0], centre[1] - 0.25 * eye_d, 1.05 * eye_d, 1.45 * eye_d)
    face = np.clip((1.3 - face_r2) / 0.3, 0, 1).astype(_F)
    head = _ellipse(h, w, centre[0], centre[1] - 0.5 * eye_d, 1.3 * eye_d, 1.75 * eye_d, soft=0.3)
    lum = rgb.mean(axis=2)
    core = face > 0.8
    ref = float(np.median(lum[core])) if core.any() else float(np.median(lum))
    dark = np.clip((ref - lum) / max(0.35 * ref, 0.05), 0, 1)  # hair, brows, beard: darker than the face's skin
    # eyes, nostrils and an open mouth are dark in a photo but are not hair: keep them skin
    sig = 0.2 * eye_d
    openings = sum(_gauss(h, w, float(x), float(y), sig) for x, y in pts[:2])
    openings = openings + _gauss(h, w, float(pts[3:, 0].mean()), float(pts[3:, 1].mean()), sig)
    dark = dark * (1 - np.clip(1.5 * openings, 0, 1))
    colour_p = skin_probability(image)
    colour = not bool(np.all(colour_p == 1.0))
    if colour:  # the colour rule, helped inside the face ellipse where it fails (casts, odd white balance)
        skin = np.clip(colour_p + 0.6 * face, 0, 1) * head * (1 - 0.8 * dark)
    else:
        skin = face * (1 - dark)
    skin = np.clip(gaussian_filter(skin, 0.02 * w), 0, 1).astype(_F)  # a pore is not a hole in the skin
    hair = np.clip(head - skin, 0, 1).astype(_F)
    eye_y = float(pts[:2, 1].mean())
    yy, xx = np.mgrid[0:h, 0:w].astype(_F)
    band = np.clip(1 - np.abs(yy - (eye_y - 0.33 * eye_d)) / (0.2 * eye_d), 0, 1)
    near_eye = np.maximum(*(np.clip(1 - np.abs(xx - x) / (0.5 * eye_d), 0, 1) for x in pts[:2, 0]))
    brows = (band * near_eye * dark).astype(_F)
    irises = refine_irises(lum, pts[:2], eye_d)
    return FaceRegions(face=face, head=head, skin=skin, hair=hair, brows=brows, background=(1 - head).astype(_F),
                       face_r2=face_r2, landmarks=pts, irises=irises, eye_d=eye_d, colour=colour)


def glasses_mask(regions: FaceRegions) -> tuple[np.ndarray, np.ndarray]:
    """(lenses, frame): soft maps of a pair of glasses placed from the eye landmarks.

    Lenses: an ellipse of 0.42 x 0.32 eye distances around each eye; frame: their rims and the
    bridge over the nose.  A geometric guess (no detection: see the module docstring), for photos
    the caller says show glasses.
    """
    h, w = regions.face.shape
    d = regions.eye_d
    lenses = np.zeros((h, w), _F)
    frame = np.zeros((h, w), _F)
    for x, y in regions.landmarks[:2]:
        inner = _ellipse(h, w, x, y + 0.03 * d, 0.42 * d, 0.32 * d, soft=0.15)
        outer = _ellipse(h, w, x, y + 0.03 * d, 0.47 * d, 0.37 * d, soft=0.15)
        lenses = np.maximum(lenses, inner)
        frame = np.maximum(frame, np.clip(outer - inner, 0, 1))
    (x0, y0), (x1, y1) = regions.landmarks[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(_F)
    bridge = ((np.abs(yy - (min(y0, y1) - 0.05 * d)) < 0.04 * d) & (xx > x0 + 0.4 * d) & (xx < x1 - 0.4 * d))
    frame = np.maximum(frame, bridge.astype(_F))
    return lenses, frame

"""Offline face detection and five-point landmarks for a user's own photos (dlib).

A folder of ordinary photos is not a face-recognition input yet: EdgeFace expects a face
*aligned* to the 112x112 five-point template (:mod:`hfr_tutorial.data.align`).  This module finds
the faces and their five landmarks with **dlib**, which works offline: the ``dlib-bin`` wheel
carries the library, and the ``face-recognition-models`` package carries the model files
(``shape_predictor_68_face_landmarks.dat``, ``mmod_human_face_detector.dat``).  That package's own
``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so the files are located by
path, without importing it.

* The detector is dlib's HOG + linear SVM frontal-face detector (fast on a CPU), with dlib's CNN
  (MMOD) detector as an option (``method="cnn"``: slower, finds more non-frontal faces).
* The 68-point shape predictor (iBUG 300-W convention) gives the landmarks; the five points of the
  template are the two eye centres (mean of each eye's six points), the nose tip (point 30) and the
  two mouth corners (points 48 and 54).
* With several faces in a photo, :meth:`FaceDetector.detect` returns them largest first: a
  user's photo of a person is centred on that person, a bystander is usually smaller.

Install: ``pip install dlib-bin face-recognition-models`` (part of the ``faces`` extra, which the
``dev`` extra includes).  Used by ``data_scripts/prepare_folder.py``; taught in
``notebooks/07_real_edgeface.ipynb``.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODELS_PACKAGE = "face_recognition_models"
PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR = "mmod_human_face_detector.dat"
INSTALL_HINT = "pip install -c constraints.txt dlib-bin face-recognition-models"
METHODS: tuple[str, ...] = ("hog", "cnn")


class DetectorUnavailable(ImportError):
    """dlib or its model files are not installed (the message says how to install them)."""


@dataclass(frozen=True)
class Detection:
    """One face: its box ``(left, top, right, bottom)`` in pixels, five landmarks ``(5, 2)`` (x, y), a score."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        left, top, right, bottom = self.box
        return max(0.0, right - left) * max(0.0, bottom - top)


def model_file(name: str) -> Path:
    """Path of a dlib model file shipped by ``face-recognition-models`` (found without importing it)."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable(f"The dlib model files are not installed (package {MODELS_PACKAGE!r} is missing). "
                                  f"Install them with: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    raise DetectorUnavailable(f"{name} is missing from the installed {MODELS_PACKAGE} package "
                              f"({list(spec.submodule_search_locations)}). Reinstall it: {INSTALL_HINT}")


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise DetectorUnavailable(f"Face detection needs dlib, which is not installed ({exc}). "
                                  f"Install it with: {INSTALL_HINT}") from None
    return dlib


def five_points(shape68: np.ndarray) -> np.ndarray:
    """The template's five points from 68 iBUG landmarks: eye centres, nose tip, mouth corners.

    Ordered as :data:`hfr_tutorial.data.align.LANDMARK_ORDER` (image left to right), so the eye
    with the smaller x comes first whatever the face's roll.
    """
    pts = np.asarray(shape68, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"five_points expects 68 (x, y) landmarks, got shape {pts.shape}.")
    eye_a, eye_b = pts[36:42].mean(0), pts[42:48].mean(0)  # the subject's right eye, then left eye
    mouth_a, mouth_b = pts[48], pts[54]
    eyes = sorted([eye_a, eye_b], key=lambda p: p[0])
    mouth = sorted([mouth_a, mouth_b], key=lambda p: p[0])
    return np.array([eyes[0], eyes[1], pts[30], mouth[0], mouth[1]], dtype=np.float64)


class FaceDetector:
    """dlib face detector + 68-point landmarks, reduced to the five template points.

    Args:
        method: ``"hog"`` (default, fast) or ``"cnn"`` (dlib's MMOD CNN; slower on a CPU).
        upsample: times dlib upsamples the image before detecting (1 finds faces down to about
            40 px; 0 is faster on large photos).
        max_side: photos larger than this (in pixels, longest side) are shrunk for detection; the
            landmarks are mapped back to the original pixels.
    """

    def __init__(self, method: str = "hog", upsample: int = 1, max_side: int = 1024):
        if method not in METHODS:
            raise ValueError(f"FaceDetector: method={method!r}; choose one of {list(METHODS)}.")
        dlib = _import_dlib()
        self.method, self.upsample, self.max_side = method, int(upsample), int(max_side)
        self._predictor = dlib.shape_predictor(str(model_file(PREDICTOR_68)))
        if method == "hog":
            self._detector = dlib.get_frontal_face_detector()
        else:
            self._detector = dlib.cnn_face_detection_model_v1(str(model_file(CNN_DETECTOR)))
        self._dlib = dlib

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Every face in ``image`` (uint8, (H, W) or (H, W, 3)), largest first (empty list: none found)."""
        img = np.asarray(image)
        if img.dtype != np.uint8:
            raise ValueError(f"FaceDetector.detect expects a uint8 image, got {img.dtype}.")
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"FaceDetector.detect expects (H, W) or (H, W, 3), got shape {img.shape}.")
        scale = min(1.0, self.max_side / max(img.shape[:2]))
        work = img
        if scale < 1.0:
            from PIL import Image

            size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
            work = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
        work = np.ascontiguousarray(work)
        found = []
        if self.method == "hog":
            rects, scores, _ = self._detector.run(work, self.upsample, 0.0)
            pairs = list(zip(rects, scores))
        else:
            pairs = [(d.rect, d.confidence) for d in self._detector(work, self.upsample)]
        for rect, score in pairs:
            shape = self._predictor(work, rect)
            pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64) / scale
            box = (rect.left() / scale, rect.top() / scale, rect.right() / scale, rect.bottom() / scale)
            found.append(Detection(box=box, landmarks=five_points(pts), score=float(score)))
        return sorted(found, key=lambda d: -d.area)


def detector_available() -> bool:
    """True when dlib and its model files are installed (tests and notebooks skip the detector otherwise)."""
    try:
        _import_dlib()
        model_file(PREDICTOR_68)
    except DetectorUnavailable:
        return False
    return True

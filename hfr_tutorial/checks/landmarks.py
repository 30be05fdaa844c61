"""Check of the five template points taken from 68 landmarks by hand (notebook 07).

:func:`check_five_points_function` calls the student's ``my_five_points(shape68)`` on the notebook's
landmarks and on hidden ones (a face with its eyes and mouth corners listed in the other order, a
rolled face, random points) and compares with :func:`hfr_tutorial.data.detect.five_points`, which is
recorded while the student's function runs.  A wrong answer is matched with the usual slips (eye
centres from five points, the wrong nose point, no ordering by x, x and y swapped).

Taught in: ``notebooks/07_real_edgeface.ipynb`` (exercise 1).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .guard import Case, Comparison, check_function
from .feedback import as_array


def _hidden_shapes(seed: int = 23) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    face = np.zeros((68, 2))
    face[:, 0], face[:, 1] = rng.uniform(20, 90, 68), rng.uniform(20, 90, 68)
    face[36:42] = [30, 45] + rng.normal(0, 2, (6, 2))   # one eye on the left of the image
    face[42:48] = [80, 44] + rng.normal(0, 2, (6, 2))   # the other on the right
    face[30], face[33] = [56, 62], [55, 70]
    face[48], face[54] = [38, 85], [74, 86]
    mirrored = face.copy()
    mirrored[:, 0] = 112 - mirrored[:, 0]                # eyes and mouth corners now listed right to left
    angle = np.deg2rad(35)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = (face - 56) @ rot.T + 56
    return [("hidden landmarks of a mirrored face (eyes listed right to left)", mirrored),
            ("hidden landmarks of a face rolled by 35 degrees", rolled),
            ("hidden random landmarks", rng.uniform(0, 112, size=(68, 2))),
            ("hidden random landmarks at another scale", rng.uniform(0, 1000, size=(68, 2)))]


def _slips(shape68: np.ndarray) -> dict[str, np.ndarray]:
    p = shape68
    by_x = lambda a, b: sorted([a, b], key=lambda q: q[0])  # noqa: E731
    eyes, mouth = by_x(p[36:42].mean(0), p[42:48].mean(0)), by_x(p[48], p[54])
    right = np.array([eyes[0], eyes[1], p[30], mouth[0], mouth[1]])
    return {
        "the eye centres are the mean of six points each (36-41 and 42-47; a slice 36:42 ends before 42)":
            np.array([*by_x(p[36:41].mean(0), p[42:47].mean(0)), p[30], *mouth]),
        "the nose tip is point 30 (33 is the bottom of the nose)": np.array([eyes[0], eyes[1], p[33], *mouth]),
        "order the eyes by x, image-left first, whatever their landmark numbers":
            np.array([p[36:42].mean(0), p[42:48].mean(0), p[30], *mouth]),
        "order the mouth corners by x, image-left first": np.array([*eyes, p[30], p[48], p[54]]),
        "x and y are swapped: each row is (x, y)": right[:, ::-1],
        "the order is eyes, nose tip, mouth corners (LANDMARK_ORDER)":
            np.array([eyes[0], eyes[1], mouth[0], mouth[1], p[30]]),
    }


def _compare(result: Any, ref: np.ndarray, shape68: np.ndarray) -> Comparison:
    try:
        pts = as_array(result)
    except (TypeError, ValueError):
        return Comparison(False, f"it returned a {type(result).__name__}, not an array of points")
    if pts.shape != (5, 2):
        hint = "transposed: one row per point" if pts.shape == (2, 5) else "five rows of (x, y)"
        return Comparison(False, f"it returned shape {pts.shape}", hint)
    if np.abs(pts - ref).max() <= 1e-6:
        return Comparison(True)
    for hint, wrong in _slips(shape68).items():
        if np.abs(pts - wrong).max() <= 1e-6 and np.abs(wrong - ref).max() > 1e-6:
            return Comparison(False, "the points are not the template's five", hint)
    rows = [i for i in range(5) if np.abs(pts[i] - ref[i]).max() > 1e-6]
    names = ["left eye", "right eye", "nose tip", "left mouth corner", "right mouth corner"]
    return Comparison(False, f"wrong point(s): {', '.join(names[i] for i in rows)} (in image order)",
                      "eye centres = mean of points 36-41 and of 42-47, nose tip = 30, mouth corners = 48 and 54; "
                      "eyes and mouth corners each ordered by x")


def check_five_points_function(fn: Any, shape68: Any = None) -> bool:
    """``fn(shape68)`` returns the library's ``five_points(shape68)``, on the shown and on hidden landmarks.

    ``shape68`` is the (68, 2) array the notebook shows; hidden cases add a mirrored face (its eyes
    listed in the other order), a rolled face and random points.  ``five_points`` and the detector's
    landmark method are recorded while ``fn`` runs.
    """
    from hfr_tutorial.data.detect import FaceDetector, five_points

    cases = []
    if shape68 is not None:
        cases.append(Case("the shown landmarks", (as_array(shape68),), hidden=False))
    cases += [Case(label, (pts,)) for label, pts in _hidden_shapes()]
    return check_function(fn, cases, what="your five points", reference=lambda case: five_points(case.args[0]),
                          compare=lambda result, ref, case, args: _compare(result, ref, case.args[0]),
                          forbidden={"five_points": five_points, "FaceDetector": FaceDetector},
                          signature="my_five_points(shape68)",
                          forbidden_hint="take the means and the points from shape68 with slices, then order by x")

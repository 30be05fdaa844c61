"""Verification: ROC, EER, TAR at a FAR, thresholds chosen on dev and applied to eval, decidability.

A pair is accepted when ``score >= threshold``; FAR is the share of impostor pairs accepted, TAR
the share of genuine pairs accepted.  Taught in ``notebooks/06_evaluation.ipynb``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .constants import FARS, far_key


def _check_scores(scores: Any, same: Any, what: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    same = np.asarray(same).ravel()
    if scores.shape != same.shape:
        raise ValueError(
            f"{what} and same have different lengths ({scores.size} vs {same.size}); pass one "
            "genuine/impostor label per score."
        )
    if same.dtype != bool:
        if not np.isin(same, (0, 1)).all():
            raise ValueError("same must be boolean (True for a genuine pair) or 0/1.")
        same = same.astype(bool)
    if not np.isfinite(scores).all():
        raise ValueError(f"{what} contain NaN or infinite values; embeddings must be finite.")
    n_gen = int(same.sum())
    if n_gen == 0 or n_gen == same.size:
        raise ValueError(
            f"{what} need both genuine and impostor pairs (got {n_gen} genuine of {same.size}); "
            "check the identities of the protocol."
        )
    return scores, same


def roc(scores: Any, same: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FAR, TAR and thresholds of every operating point, from ``sklearn.metrics.roc_curve``.

    Every distinct score is a threshold (``drop_intermediate=False``), so tied scores move FAR and
    TAR together exactly as scikit-learn counts them.  The first point (FAR = TAR = 0) has an
    infinite threshold in scikit-learn; here it is the smallest float above the highest score,
    which also accepts nothing but stays finite (JSON-safe).
    """
    from sklearn.metrics import roc_curve

    scores, same = _check_scores(scores, same)
    far, tar, thresholds = roc_curve(same, scores, drop_intermediate=False)
    thresholds = thresholds.astype(np.float64)
    thresholds[~np.isfinite(thresholds)] = np.nextafter(scores.max(), np.inf)
    return far, tar, thresholds


def tar_at_far_from_roc(far: np.ndarray, tar: np.ndarray, thr: np.ndarray, target: float) -> tuple[float, float]:
    """Highest TAR whose FAR does not exceed ``target`` (no interpolation), and its threshold."""
    i = int(np.searchsorted(far, target, side="right")) - 1  # last point with far <= target
    return float(tar[i]), float(thr[i])


def eer_from_roc(far: np.ndarray, tar: np.ndarray, thr: np.ndarray) -> tuple[float, float]:
    """Equal error rate: where FAR and FRR cross, linearly interpolated between ROC points."""
    frr = 1.0 - tar
    diff = frr - far  # non-increasing along the curve: +1 at the start, -1 at the end
    i = int(np.argmax(diff <= 0))  # first point where FRR <= FAR (always exists: diff[-1] = -1)
    if i == 0 or diff[i] == 0:
        return float(far[i]), float(thr[i])
    t = diff[i - 1] / (diff[i - 1] - diff[i])
    eer = far[i - 1] + t * (far[i] - far[i - 1])
    threshold = thr[i - 1] + t * (thr[i] - thr[i - 1])
    return float(eer), float(threshold)


def verification_metrics(scores: Any, same: Any, fars: Sequence[float] = FARS) -> dict[str, float]:
    """AUC, EER and TAR at fixed FARs of genuine/impostor ``scores`` (``same`` True = genuine).

    Returns ``auc``, ``eer``, ``eer_threshold`` and for each FAR (default 1e-1, 1e-2, 1e-3)
    ``tar_at_far_1e-k`` with its ``threshold_at_far_1e-k``.  TAR at a FAR is the highest TAR of an
    operating point whose FAR does not exceed it (with 1,000 impostor pairs, FAR 1e-3 allows
    exactly one accepted impostor).  EER is where FAR and FRR cross, interpolated linearly.

    Taught in ``notebooks/06_evaluation.ipynb``.
    """
    from sklearn.metrics import auc

    far, tar, thr = roc(scores, same)
    out: dict[str, float] = {"auc": float(auc(far, tar))}
    out["eer"], out["eer_threshold"] = eer_from_roc(far, tar, thr)
    for target in fars:
        key = far_key(target)
        out[key], out[key.replace("tar_at", "threshold_at")] = tar_at_far_from_roc(far, tar, thr, target)
    return out


def threshold_at_far(dev_scores: Any, dev_same: Any, far: float) -> float:
    """The decision threshold chosen on **dev** scores: the lowest one whose dev FAR <= ``far``.

    Apply it unchanged to eval scores with :func:`apply_threshold`: a threshold tuned on the
    evaluation set itself would report an optimistic FAR.  Taught in ``notebooks/06_evaluation.ipynb``.
    """
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"far must be a rate in [0, 1], got {far}.")
    return tar_at_far_from_roc(*roc(dev_scores, dev_same), far)[1]


def apply_threshold(eval_scores: Any, eval_same: Any, threshold: float) -> dict[str, float]:
    """FAR and TAR that a fixed ``threshold`` actually gives on (eval) scores (accept if >=)."""
    scores, same = _check_scores(eval_scores, eval_same, "eval_scores")
    accepted = scores >= threshold
    return {
        "threshold": float(threshold),
        "far": float(accepted[~same].mean()),
        "tar": float(accepted[same].mean()),
        "frr": float(1.0 - accepted[same].mean()),
    }


def decidability(genuine: Any, impostor: Any) -> float:
    """Daugman's decidability ``d' = |mean_g - mean_i| / sqrt((var_g + var_i) / 2)``.

    How many pooled standard deviations separate the genuine and impostor score distributions:
    d' near 0 means the scores cannot tell the same person from another (the modality gap at
    its worst); face recognition within one modality typically gives d' of 3 or more.  Uses the
    population variance (ddof=0).  Taught in ``notebooks/06_evaluation.ipynb``.
    """
    genuine = np.asarray(genuine, dtype=np.float64).ravel()
    impostor = np.asarray(impostor, dtype=np.float64).ravel()
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("decidability needs at least one genuine and one impostor score.")
    spread = math.sqrt((genuine.var() + impostor.var()) / 2.0)
    gap = abs(genuine.mean() - impostor.mean())
    if spread == 0.0:
        return math.inf if gap > 0 else 0.0
    return float(gap / spread)

"""Bootstrap intervals over identities: how sure a rank-1, EER or TAR is, and a difference between two models.

A rank-1 of 0.973 on 1,000 probes is not the same claim as 0.973 on 16.  The faces of one person
are not independent (a hard identity is hard in all its images), so the unit of resampling is the
**identity**: each bootstrap resample draws the probe identities with replacement and keeps every
probe of a drawn identity (the gallery stays fixed: a duplicated gallery identity would make
rank-1 ill-defined).

* :func:`percentile_interval` turns resamples into a (lo, hi) interval;
* :func:`eer_from_histograms` and :func:`tar_from_histograms` compute EER and TAR@FAR of many
  resampled score histograms at once (``*_from_curves`` from their FRR/FAR curves, computed once).

The resampling itself (one draw for every model and protocol, so differences are paired) is
:func:`hfr_tutorial.metrics.paired_bootstrap`, with every registered metric.

Rank-1 is exact on every resample.  EER and TAR@FAR are computed from per-identity histograms of
``bins`` score bins with linear interpolation (within about 1e-3 of the exact
:func:`hfr_tutorial.evaluate.verification_metrics`); the point estimates are always the exact values
on all faces.

Taught in: ``notebooks/06_evaluation.ipynb`` and ``notebooks/08_edge_deployment.ipynb``.
"""
from __future__ import annotations

import numpy as np


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval of ``samples`` at coverage ``level`` (NaN resamples ignored)."""
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: give a coverage in (0, 1), e.g. 0.95.")
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return float(lo), float(hi)


def error_curves(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FRR and FAR at every bin edge of (B, K) score histograms over increasing bins."""
    zeros = np.zeros((len(genuine), 1))
    g_total = np.maximum(genuine.sum(axis=1, keepdims=True), 1e-12)
    i_total = np.maximum(impostor.sum(axis=1, keepdims=True), 1e-12)
    # a threshold at edge k accepts bins k..: FRR = genuine below it, FAR = impostor at or above it
    frr = np.concatenate([zeros, np.cumsum(genuine, axis=1)], axis=1) / g_total
    far = 1.0 - np.concatenate([zeros, np.cumsum(impostor, axis=1)], axis=1) / i_total
    return frr, far


def eer_from_histograms(genuine: np.ndarray, impostor: np.ndarray) -> np.ndarray:
    """EER of (B, K) weighted score histograms over increasing bins, interpolated between bin edges."""
    return eer_from_curves(*error_curves(genuine, impostor))


def eer_from_curves(frr: np.ndarray, far: np.ndarray) -> np.ndarray:
    """EER of (B, K + 1) FRR and FAR curves (:func:`error_curves`), interpolated between bin edges."""
    d = far - frr  # decreasing from 1 to -1
    k = np.maximum(np.argmax(d <= 0, axis=1), 1)
    rows = np.arange(len(d))
    d0, d1 = d[rows, k - 1], d[rows, k]
    t = np.where(d0 - d1 > 0, d0 / np.where(d0 - d1 > 0, d0 - d1, 1.0), 0.0)
    far_k = far[rows, k - 1] + t * (far[rows, k] - far[rows, k - 1])
    frr_k = frr[rows, k - 1] + t * (frr[rows, k] - frr[rows, k - 1])
    return (far_k + frr_k) / 2


def tar_from_histograms(genuine: np.ndarray, impostor: np.ndarray, far_target: float) -> np.ndarray:
    """TAR at the threshold where the FAR of (B, K) histograms falls to ``far_target`` (interpolated)."""
    return tar_from_curves(*error_curves(genuine, impostor), far_target)


def tar_from_curves(frr: np.ndarray, far: np.ndarray, far_target: float) -> np.ndarray:
    """TAR at the threshold where FAR falls to ``far_target`` on (B, K + 1) curves (interpolated)."""
    k = np.maximum(np.argmax(far <= far_target, axis=1), 1)  # first edge at or below the target FAR
    rows = np.arange(len(far))
    f0, f1 = far[rows, k - 1], far[rows, k]
    t = np.where(f0 - f1 > 0, (f0 - far_target) / np.where(f0 - f1 > 0, f0 - f1, 1.0), 0.0)
    tar0, tar1 = 1 - frr[rows, k - 1], 1 - frr[rows, k]
    return tar0 + np.clip(t, 0, 1) * (tar1 - tar0)

"""Bootstrap intervals over identities: how sure a rank-1, EER or TAR is, and a difference between two models.

A rank-1 of 0.973 on 1,000 probes is not the same claim as 0.973 on 16.  The faces of one person
are not independent (a hard identity is hard in all its images), so the unit of resampling is the
**identity**: each bootstrap resample draws the probe identities with replacement and keeps every
probe of a drawn identity (the gallery stays fixed: a duplicated gallery identity would make
rank-1 ill-defined).

* :func:`bootstrap_protocols` draws **one** set of identity resamples and applies it to every
  model and every protocol, so the resampled figures are *paired*: the interval of a difference
  (the method minus the baseline, a gap recovered, one model over another) is computed from the
  same resamples, which is far tighter, and honest, compared with two separate intervals.
* :func:`percentile_interval` turns resamples into a (lo, hi) interval.
* :func:`bootstrap_intervals` is the table form (one row per model and protocol), used by
  notebook 08.

Rank-1 is exact on every resample.  EER and TAR@FAR are computed from per-identity histograms of
``bins`` score bins with linear interpolation (within about 1e-3 of the exact
:func:`hfr_tutorial.evaluate.verification_metrics`); the point estimates are always the exact values
on all faces.

Taught in: ``notebooks/06_evaluation.ipynb`` and ``notebooks/08_edge_deployment.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .evaluate import DEFAULT_PROTOCOLS, evaluate_protocols, far_key, score_protocols

INTERVAL_FARS: tuple[float, ...] = (1e-2, 1e-3)
"""The FARs whose TAR gets an interval (``tar_at_far_1e-2``, ``tar_at_far_1e-3``)."""


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


def _curves(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    frr, far = _curves(genuine, impostor)
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
    frr, far = _curves(genuine, impostor)
    k = np.maximum(np.argmax(far <= far_target, axis=1), 1)  # first edge at or below the target FAR
    rows = np.arange(len(far))
    f0, f1 = far[rows, k - 1], far[rows, k]
    t = np.where(f0 - f1 > 0, (f0 - far_target) / np.where(f0 - f1 > 0, f0 - f1, 1.0), 0.0)
    tar0, tar1 = 1 - frr[rows, k - 1], 1 - frr[rows, k]
    return tar0 + np.clip(t, 0, 1) * (tar1 - tar0)


def auc_from_histograms(genuine: np.ndarray, impostor: np.ndarray) -> np.ndarray:
    """ROC AUC of (B, K) weighted score histograms over increasing bins (trapezoids between bin edges).

    Equals P(genuine > impostor) + P(same bin) / 2: ties within a bin count half, so the value is
    within about one bin's share of the exact AUC.
    """
    frr, far = _curves(genuine, impostor)
    tar = 1.0 - frr
    return np.sum((far[:, :-1] - far[:, 1:]) * (tar[:, :-1] + tar[:, 1:]) / 2, axis=1)


@dataclass
class Bootstrap:
    """Paired bootstrap resamples of every model's figures (one set of identity resamples for all).

    ``samples[model][protocol][metric]`` is a ``(n_boot,)`` array and ``point[model][protocol][metric]``
    the exact figure on all faces; metrics are ``rank1``, ``eer`` and ``tar_at_far_<far>``.
    """

    samples: dict[str, dict[str, dict[str, np.ndarray]]]
    point: dict[str, dict[str, dict[str, float]]]
    n_boot: int
    level: float
    n_identities: int
    metrics: tuple[str, ...] = field(default=("rank1", "eer"))

    def interval(self, model: str, protocol: str, metric: str) -> tuple[float, float]:
        """The (lo, hi) interval of one figure."""
        return percentile_interval(self.samples[model][protocol][metric], self.level)

    def intervals(self, model: str) -> dict[str, dict[str, list[float]]]:
        """``{protocol: {metric: [lo, hi]}}`` of one model (the form ``metrics.json`` stores)."""
        return {p: {m: list(self.interval(model, p, m)) for m in v} for p, v in self.samples[model].items()}

    def difference(self, model: str, reference: str, protocol: str, metric: str = "rank1") -> dict[str, Any]:
        """``model - reference`` on one figure: the exact difference and its paired interval."""
        delta = self.samples[model][protocol][metric] - self.samples[reference][protocol][metric]
        value = self.point[model][protocol][metric] - self.point[reference][protocol][metric]
        return {"value": float(value), "interval": list(percentile_interval(delta, self.level))}


def bootstrap_protocols(embeddings: Mapping[str, np.ndarray], identities: Any, modalities: Any,
                        protocols: Sequence[str] = DEFAULT_PROTOCOLS, *, fars: Sequence[float] = INTERVAL_FARS,
                        n_boot: int = 1000, level: float = 0.95, seed: int = 0, bins: int = 4000,
                        auc: bool = False, roles: Any = None) -> Bootstrap:
    """Resample the probe identities ``n_boot`` times; every model's rank-1, EER and TAR@FAR on each resample.

    Args:
        embeddings: ``{name: (N, D) embeddings}`` of the same N faces under several models.
        identities, modalities: labels of the N faces.
        protocols: ``"probe->gallery"`` protocols (:func:`hfr_tutorial.evaluate.score_protocols`).
        fars: the FARs whose TAR is resampled (empty: rank-1 and EER only).
        n_boot, level, seed: resamples, coverage, seed (same seed, same resamples, same intervals).
        bins: score bins for the resampled EER and TAR (width about 2/bins in cosine).
        auc: also resample the ROC AUC (metric ``auc``, from the same histograms).
        roles: a protocol's gallery/probe role per face (as :func:`hfr_tutorial.evaluate.score_protocols`).

    One draw of identity weights (a multinomial over every identity that is a probe in some
    protocol) serves every model and protocol, so differences are paired across models *and*
    across protocols (a gap recovered divides one protocol's change by another's).
    """
    if not embeddings:
        raise ValueError("bootstrap_protocols got no embeddings; pass {name: (N, D) array}.")
    if not 0 < level < 1 or n_boot < 10:
        raise ValueError(f"level must be in (0, 1) and n_boot >= 10, got level={level}, n_boot={n_boot}.")
    rng = np.random.default_rng(seed)
    scored = {name: score_protocols(e, identities, modalities, tuple(protocols), roles)
              for name, e in embeddings.items()}
    first = next(iter(scored.values()))
    ids = np.unique(np.concatenate([first[p].probe_labels for p in protocols]))
    counts = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), size=n_boot).astype(np.float64)
    metric_names = ("rank1", "eer", *(far_key(f) for f in fars), *(("auc",) if auc else ()))
    samples: dict[str, dict[str, dict[str, np.ndarray]]] = {name: {} for name in embeddings}
    point: dict[str, dict[str, dict[str, float]]] = {name: {} for name in embeddings}
    for name, by_protocol in scored.items():
        exact = evaluate_protocols(embeddings[name], identities, modalities, tuple(protocols), roles=roles)
        for protocol in protocols:
            ps = by_protocol[protocol]
            point[name][protocol] = {m: float(exact[protocol][m]) for m in metric_names}
            probe_id = np.searchsorted(ids, ps.probe_labels)
            probes_per_id = np.bincount(probe_id, minlength=len(ids)).astype(np.float64)
            hits = np.bincount(probe_id, weights=(ps.ranks() == 1).astype(np.float64), minlength=len(ids))
            with np.errstate(invalid="ignore", divide="ignore"):
                rank1 = (counts @ hits) / (counts @ probes_per_id)
            same = ps.probe_labels[:, None] == ps.gallery_labels[None, :]
            edges = np.linspace(ps.similarity.min() - 1e-9, ps.similarity.max() + 1e-9, bins + 1)
            bin_of = np.clip(np.searchsorted(edges, ps.similarity, side="right") - 1, 0, bins - 1)
            owner = np.broadcast_to(probe_id[:, None], ps.similarity.shape)
            gen = np.zeros((len(ids), bins))
            imp = np.zeros((len(ids), bins))
            np.add.at(gen, (owner[same], bin_of[same]), 1.0)
            np.add.at(imp, (owner[~same], bin_of[~same]), 1.0)
            eer, tars, aucs = [], {f: [] for f in fars}, []
            for i in range(0, n_boot, 100):  # 100 resamples at a time bounds the memory
                g, m = counts[i:i + 100] @ gen, counts[i:i + 100] @ imp
                eer.append(eer_from_histograms(g, m))
                for f in fars:
                    tars[f].append(tar_from_histograms(g, m, f))
                if auc:
                    aucs.append(auc_from_histograms(g, m))
            out = {"rank1": rank1, "eer": np.concatenate(eer)}
            out.update({far_key(f): np.concatenate(v) for f, v in tars.items()})
            if auc:
                out["auc"] = np.concatenate(aucs)
            samples[name][protocol] = out
    return Bootstrap(samples, point, n_boot, level, len(ids), metric_names)


def bootstrap_intervals(embeddings: Mapping[str, np.ndarray], identities: Any, modalities: Any,
                        protocols: Sequence[str] = DEFAULT_PROTOCOLS, *, reference: str | None = None,
                        n_boot: int = 1000, level: float = 0.95, seed: int = 0, bins: int = 4000) -> "pandas.DataFrame":  # noqa: F821
    """Rank-1 and EER of each model and protocol with bootstrap intervals over identities, as a table.

    Returns a DataFrame indexed by (model, protocol) with ``rank1``, ``rank1_lo``, ``rank1_hi``,
    ``eer``, ``eer_lo``, ``eer_hi`` and, with ``reference`` (a key of ``embeddings``), the paired
    change against it: ``d_rank1``, ``d_rank1_lo``, ... (see :func:`bootstrap_protocols`).
    """
    import pandas as pd

    if reference is not None and reference not in embeddings:
        raise KeyError(f"reference {reference!r} is not one of the embeddings: {list(embeddings)}.")
    rows = []
    for protocol in protocols:  # one protocol at a time: the same resamples as one draw per protocol
        boot = bootstrap_protocols(embeddings, identities, modalities, (protocol,), fars=(), n_boot=n_boot,
                                   level=level, seed=seed, bins=bins)
        for name in embeddings:
            row: dict[str, Any] = {"model": name, "protocol": protocol}
            for metric in ("rank1", "eer"):
                lo, hi = boot.interval(name, protocol, metric)
                row.update({metric: boot.point[name][protocol][metric], f"{metric}_lo": lo, f"{metric}_hi": hi})
                if reference is not None:
                    d = boot.difference(name, reference, protocol, metric)
                    row.update({f"d_{metric}": d["value"], f"d_{metric}_lo": d["interval"][0],
                                f"d_{metric}_hi": d["interval"][1]})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["model", "protocol"])

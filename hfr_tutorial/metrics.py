"""The reported metrics: one list that the evaluation, the intervals, the reports, the figures and the
fold summaries all read.

A :class:`Metric` says how its figure is computed on one protocol's scores (:meth:`Metric.point`,
exact, on all faces) and on a bootstrap resample of the probe identities (:meth:`Metric.resample`);
its label and direction serve the tables and the figures.  Registering one
(:func:`register_metric`) is the only edit needed to have it in ``metrics.json``, with its paired
interval, in the report and in the metrics figure of every experiment.

Intervals: :func:`paired_bootstrap` draws **one** set of identity resamples (a multinomial over
every identity that is a probe in some protocol) and applies it to every model and every protocol,
so a difference between models, or a gap recovered (one protocol's change over another's), is
computed on the same resamples: paired, and far tighter than two separate intervals would be.  The
gallery stays fixed.  Rank-k is exact on every resample; the ROC figures (EER, TAR@FAR, AUC) use
per-identity score histograms (:data:`BOOTSTRAP_BINS` bins, within about 1e-3 of the exact figure).

Taught in: ``notebooks/06_evaluation.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from sklearn.metrics import auc as _area

from .evaluate import (DEFAULT_PROTOCOLS, ProtocolScores, available_protocols, eer_from_roc, embed, far_key, roc,
                       score_protocols, tar_at_far_from_roc)
from .uncertainty import eer_from_curves, error_curves, percentile_interval, tar_from_curves

N_BOOT = 1000
"""Bootstrap resamples of the eval identities behind every interval of a report."""
LEVEL = 0.95
"""Coverage of every interval."""
BOOTSTRAP_BINS = 4000
"""Score bins of the per-identity histograms the resampled ROC figures are computed from."""
COUNTS: tuple[str, ...] = ("n_probes", "n_gallery")
"""Counts recorded beside the metrics of each protocol (no interval)."""


class ScoredProtocol:
    """One protocol's scores with what the metrics share computed once: ranks and the ROC curve."""

    def __init__(self, ps: ProtocolScores):
        self.ps = ps

    @cached_property
    def ranks(self) -> np.ndarray:
        return self.ps.ranks()

    @cached_property
    def roc(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return roc(self.ps.scores, self.ps.same)


class IdentityResampler:
    """One protocol's figures on every bootstrap resample of the probe identities.

    ``counts`` is the ``(n_boot, n_ids)`` multinomial draw shared by every model and protocol;
    ``ids`` the sorted identities it draws from.
    """

    def __init__(self, scored: ScoredProtocol, ids: np.ndarray, counts: np.ndarray, bins: int = BOOTSTRAP_BINS):
        ps = scored.ps
        self.scored, self.counts, self.bins = scored, counts, bins
        self.probe_id = np.searchsorted(ids, ps.probe_labels)
        self.n_ids = len(ids)
        self.probes_per_id = np.bincount(self.probe_id, minlength=self.n_ids).astype(np.float64)

    def rank_k(self, k: int) -> np.ndarray:
        hits = np.bincount(self.probe_id, weights=(self.scored.ranks <= k).astype(np.float64), minlength=self.n_ids)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.counts @ hits) / (self.counts @ self.probes_per_id)

    @cached_property
    def histograms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-identity genuine and impostor score histograms, ``(n_ids, bins)`` each."""
        ps, bins = self.scored.ps, self.bins
        same = ps.probe_labels[:, None] == ps.gallery_labels[None, :]
        edges = np.linspace(ps.similarity.min() - 1e-9, ps.similarity.max() + 1e-9, bins + 1)
        bin_of = np.clip(np.searchsorted(edges, ps.similarity, side="right") - 1, 0, bins - 1)
        owner = np.broadcast_to(self.probe_id[:, None], ps.similarity.shape)
        gen = np.zeros((self.n_ids, bins))
        imp = np.zeros((self.n_ids, bins))
        np.add.at(gen, (owner[same], bin_of[same]), 1.0)
        np.add.at(imp, (owner[~same], bin_of[~same]), 1.0)
        return gen, imp

    @cached_property
    def resampled_histograms(self) -> tuple[np.ndarray, np.ndarray]:
        """Genuine and impostor score histograms of every resample, ``(n_boot, bins)`` each (computed once
        for all the ROC figures of this protocol)."""
        gen, imp = self.histograms  # float32: every count stays an exact integer (< 2**24 pairs), half the memory
        counts = self.counts.astype(np.float32)
        return counts @ gen.astype(np.float32), counts @ imp.astype(np.float32)

    @cached_property
    def curves(self) -> tuple[np.ndarray, np.ndarray]:
        """FRR and FAR at every bin edge of every resample, ``(n_boot, bins + 1)`` each (computed once)."""
        return error_curves(*self.resampled_histograms)

    def eer(self) -> np.ndarray:
        return eer_from_curves(*self.curves)

    def tar_at_far(self, far: float) -> np.ndarray:
        return tar_from_curves(*self.curves, far)

    def auc(self) -> np.ndarray:
        """Area under the ROC of every resample: the trapezoid rule over the bin edges (ties count half)."""
        frr, far = self.curves
        tar = 1 - frr
        return -np.trapezoid(tar, far, axis=1)


@dataclass(frozen=True)
class Metric:
    """A reported figure of one protocol: how it is computed exactly and on a resample, and how it reads."""

    name: str
    label: str
    point: Callable[[ScoredProtocol], float]
    resample: Callable[[IdentityResampler], np.ndarray] | None = None
    higher_is_better: bool = True
    headline: bool = False  # a column of the report's main table


def rank_metric(k: int, headline: bool = False) -> Metric:
    """Rank-``k`` identification rate: the share of probes whose identity is among the ``k`` best gallery scores."""
    return Metric(f"rank{k}", f"rank-{k}", lambda s: float(np.mean(s.ranks <= k)), lambda r: r.rank_k(k),
                  headline=headline)


def tar_metric(far: float, headline: bool = False) -> Metric:
    """TAR at a FAR: the highest genuine accept rate of an operating point whose FAR does not exceed ``far``."""
    return Metric(far_key(far), f"TAR@FAR={far:g}", lambda s: tar_at_far_from_roc(*s.roc, far)[0],
                  lambda r: r.tar_at_far(far), headline=headline)


METRICS: dict[str, Metric] = {}
"""Every reported metric, in order (the order of the report's columns and the figure's panels)."""


def register_metric(metric: Metric, *, replace_existing: bool = False) -> Metric:
    """Add a metric to :data:`METRICS`; every experiment then reports it, with its interval."""
    if metric.name in METRICS and not replace_existing:
        raise ValueError(f"A metric named {metric.name!r} is registered already; pass replace_existing=True.")
    if metric.name in COUNTS:
        raise ValueError(f"{metric.name!r} is a count recorded with every protocol, not a metric.")
    METRICS[metric.name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a metric (tests register temporary ones)."""
    METRICS.pop(name, None)


register_metric(rank_metric(1, headline=True))
register_metric(rank_metric(5))
register_metric(Metric("auc", "ROC AUC", lambda s: float(_area(*s.roc[:2])), lambda r: r.auc(), headline=True))
register_metric(Metric("eer", "EER", lambda s: eer_from_roc(*s.roc)[0], lambda r: r.eer(), higher_is_better=False,
                       headline=True))
register_metric(tar_metric(1e-1))
register_metric(tar_metric(1e-2))
register_metric(tar_metric(1e-3, headline=True))


def metric_label(name: str) -> str:
    """How a metric is written in tables and figures."""
    return METRICS[name].label if name in METRICS else name


def protocol_record(ps: ProtocolScores, metrics: Sequence[str] | None = None) -> dict[str, Any]:
    """The figures of one protocol: every registered metric (exact) and the counts."""
    scored = ScoredProtocol(ps)
    names = list(METRICS) if metrics is None else list(metrics)
    out: dict[str, Any] = {name: float(METRICS[name].point(scored)) for name in names}
    out["n_probes"] = int(ps.probe_idx.size)
    out["n_gallery"] = int(ps.gallery_idx.size)
    return out


def figures_of(embeddings: np.ndarray, faceset: Any) -> dict[str, dict[str, Any]]:
    """``{protocol: record}`` of embeddings of ``faceset`` on every protocol it supports (gallery and probes by
    its roles, else the first VIS image of each identity): every registered metric and the counts."""
    protocols = available_protocols(faceset.identities, faceset.modalities, faceset.roles)
    scored = score_protocols(embeddings, faceset.identities, faceset.modalities, protocols, faceset.roles)
    return {name: protocol_record(ps) for name, ps in scored.items()}


def evaluate_model(model: Any, faceset: Any, batch_size: int = 256, device: Any = None,
                   progress: bool = False) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
    """A model's embeddings of ``faceset`` and its figures (:func:`figures_of`) on every protocol the set supports."""
    emb = embed(model, faceset, batch_size=batch_size, progress=progress, device=device)
    return emb, figures_of(emb, faceset)


@dataclass
class PairedBootstrap:
    """Paired resamples of every model's figures: ``samples[model][protocol][metric]`` is ``(n_boot,)``."""

    samples: dict[str, dict[str, dict[str, np.ndarray]]]
    point: dict[str, dict[str, dict[str, float]]]
    n_boot: int
    level: float
    n_identities: int
    metrics: tuple[str, ...] = field(default=())

    def interval(self, model: str, protocol: str, metric: str) -> tuple[float, float]:
        return percentile_interval(self.samples[model][protocol][metric], self.level)

    def intervals(self, model: str) -> dict[str, dict[str, list[float]]]:
        """``{protocol: {metric: [lo, hi]}}`` of one model (the form ``metrics.json`` stores)."""
        return {p: {m: list(self.interval(model, p, m)) for m in v} for p, v in self.samples[model].items()}

    def difference(self, model: str, reference: str, protocol: str, metric: str = "rank1") -> dict[str, Any]:
        """``model - reference`` on one figure: the exact difference and its paired interval."""
        delta = self.samples[model][protocol][metric] - self.samples[reference][protocol][metric]
        value = self.point[model][protocol][metric] - self.point[reference][protocol][metric]
        return {"value": float(value), "interval": list(percentile_interval(delta, self.level))}

    def claim(self, value: float, samples: np.ndarray | None) -> dict[str, Any] | float:
        """A figure with its interval from ``samples`` (a function of these resamples), or the bare figure."""
        if samples is None:
            return float(value)
        return {"value": float(value), "interval": list(percentile_interval(samples, self.level))}


def _check_resampling(n_boot: int, level: float) -> None:
    if not 0 < level < 1 or n_boot < 10:
        raise ValueError(f"level must be in (0, 1) and n_boot >= 10, got level={level}, n_boot={n_boot}.")


def paired_bootstrap(scored: Mapping[str, Mapping[str, ProtocolScores]], *, n_boot: int = N_BOOT,
                     level: float = LEVEL, seed: int = 0, metrics: Sequence[str | Metric] | None = None,
                     bins: int = BOOTSTRAP_BINS) -> PairedBootstrap:
    """Resample the probe identities ``n_boot`` times; every model's figures on every resample.

    Args:
        scored: ``{model: {protocol: ProtocolScores}}`` of the same faces and protocols under each
            model (:func:`hfr_tutorial.evaluate.score_protocols`, roles of a layout included).
        metrics: the metrics to resample (names of registered ones, or :class:`Metric` objects;
            default: every registered one that can be).
    """
    if not scored:
        raise ValueError("paired_bootstrap got no models; pass {model: {protocol: ProtocolScores}}.")
    _check_resampling(n_boot, level)
    chosen = [METRICS[m] if isinstance(m, str) else m for m in (METRICS if metrics is None else metrics)]
    chosen = [m for m in chosen if m.resample is not None]
    names = [m.name for m in chosen]
    first = next(iter(scored.values()))
    protocols = list(first)
    ids = np.unique(np.concatenate([first[p].probe_labels for p in protocols]))
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), size=n_boot).astype(np.float64)
    samples: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    point: dict[str, dict[str, dict[str, float]]] = {}
    for model, by_protocol in scored.items():
        samples[model], point[model] = {}, {}
        for protocol in protocols:
            view = ScoredProtocol(by_protocol[protocol])
            resampler = IdentityResampler(view, ids, counts, bins)
            samples[model][protocol] = {m.name: m.resample(resampler) for m in chosen}  # type: ignore[misc]
            point[model][protocol] = {m.name: float(m.point(view)) for m in chosen}
    return PairedBootstrap(samples, point, n_boot, level, len(ids), tuple(names))


def bootstrap_protocols(embeddings: Mapping[str, np.ndarray], identities: Any, modalities: Any,
                        protocols: Sequence[str] = DEFAULT_PROTOCOLS, *, fars: Sequence[float] = (1e-2, 1e-3),
                        roles: Any = None, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
                        bins: int = BOOTSTRAP_BINS, auc: bool = False) -> PairedBootstrap:
    """:func:`paired_bootstrap` of embeddings: every model's rank-1, EER and TAR at ``fars`` on each resample.

    ``embeddings`` maps a model's name to its ``(N, D)`` embeddings of the same N faces (labels
    ``identities`` and ``modalities``, optional protocol ``roles``).  ``auc=True`` resamples the ROC
    AUC too (metric ``auc``, from the same per-identity histograms).
    """
    if not embeddings:
        raise ValueError("bootstrap_protocols got no embeddings; pass {name: (N, D) array}.")
    _check_resampling(n_boot, level)
    scored = {name: score_protocols(e, identities, modalities, tuple(protocols), roles)
              for name, e in embeddings.items()}
    chosen = [METRICS["rank1"], METRICS["eer"], *(METRICS.get(far_key(f)) or tar_metric(f) for f in fars),
              *((METRICS["auc"],) if auc else ())]
    return paired_bootstrap(scored, n_boot=n_boot, level=level, seed=seed, metrics=chosen, bins=bins)


def bootstrap_intervals(embeddings: Mapping[str, np.ndarray], identities: Any, modalities: Any,
                        protocols: Sequence[str] = DEFAULT_PROTOCOLS, *, reference: str | None = None,
                        n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
                        bins: int = BOOTSTRAP_BINS) -> "pandas.DataFrame":  # noqa: F821
    """Rank-1 and EER of each model and protocol with bootstrap intervals over identities, as a table.

    Returns a DataFrame indexed by (model, protocol) with ``rank1``, ``rank1_lo``, ``rank1_hi``,
    ``eer``, ``eer_lo``, ``eer_hi`` and, with ``reference`` (a key of ``embeddings``), the paired
    change against it: ``d_rank1``, ``d_rank1_lo``, ... (one resample draw per protocol).
    """
    import pandas as pd

    if reference is not None and reference not in embeddings:
        raise KeyError(f"reference {reference!r} is not one of the embeddings: {list(embeddings)}.")
    rows = []
    for protocol in protocols:
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

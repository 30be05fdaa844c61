"""Scored protocols: the similarity matrix of each protocol and every metric of it, as tidy tables.

Taught in ``notebooks/06_evaluation.ipynb``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .constants import DEFAULT_PROTOCOLS, FARS, RANKS
from .embedding import _check_embeddings, l2_normalize
from .identification import _check_labels, cmc_curve, identification_protocol, parse_protocol, probe_ranks
from .verification import decidability, verification_metrics


@dataclass
class ProtocolScores:
    """Everything one probe->gallery protocol compares: indices, labels and the similarity matrix.

    ``similarity[i, j]`` is the cosine of probe ``i`` and gallery template ``j``; ``scores`` and
    ``same`` flatten it into verification pairs (genuine when the identities match).
    """

    name: str
    gallery_idx: np.ndarray
    probe_idx: np.ndarray
    gallery_labels: np.ndarray
    probe_labels: np.ndarray
    similarity: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        return self.similarity.ravel()

    @property
    def same(self) -> np.ndarray:
        return (self.probe_labels[:, None] == self.gallery_labels[None, :]).ravel()

    @property
    def genuine(self) -> np.ndarray:
        return self.scores[self.same]

    @property
    def impostor(self) -> np.ndarray:
        return self.scores[~self.same]

    def ranks(self) -> np.ndarray:
        return probe_ranks(self.similarity, self.gallery_labels, self.probe_labels)

    def cmc(self, max_rank: int | None = None) -> np.ndarray:
        return cmc_curve(self.similarity, self.gallery_labels, self.probe_labels, max_rank)


def score_protocols(
    embeddings: Any,
    identities: Any,
    modalities: Any,
    protocols: Sequence[str] = DEFAULT_PROTOCOLS,
    roles: Any = None,
) -> dict[str, ProtocolScores]:
    """Cosine similarity matrices of each protocol (``"probe->gallery"``), for metrics and plots.

    ``roles``: optional protocol role per image (``gallery`` / ``probe``), see
    :func:`identification_protocol`.
    """
    if isinstance(protocols, str):
        protocols = (protocols,)
    emb = l2_normalize(_check_embeddings(embeddings))
    identities, modalities = _check_labels(identities, modalities, n=len(emb))
    out: dict[str, ProtocolScores] = {}
    for name in protocols:
        probe_mod, gallery_mod = parse_protocol(name)
        g, p = identification_protocol(identities, modalities, probe_mod, gallery_mod, roles)
        sim = emb[p] @ emb[g].T
        out[name] = ProtocolScores(name, g, p, identities[g], identities[p], sim.astype(np.float64))
    return out


def protocol_metrics(ps: ProtocolScores, ks: Sequence[int] = RANKS, fars: Sequence[float] = FARS) -> dict[str, Any]:
    """Identification and verification metrics of one protocol, as plain (JSON-ready) numbers."""
    ranks = ps.ranks()
    out: dict[str, Any] = {f"rank{k}": float(np.mean(ranks <= k)) for k in ks}
    out.update(verification_metrics(ps.scores, ps.same, fars))
    out["d_prime"] = decidability(ps.genuine, ps.impostor)
    out["n_probes"] = int(ps.probe_idx.size)
    out["n_gallery"] = int(ps.gallery_idx.size)
    return out


def evaluate_protocols(
    embeddings: Any,
    identities: Any,
    modalities: Any,
    protocols: Sequence[str] = DEFAULT_PROTOCOLS,
    ks: Sequence[int] = RANKS,
    roles: Any = None,
) -> dict[str, dict[str, Any]]:
    """All metrics of every protocol in one call: ``{"nir->vis": {"rank1": ..., "auc": ...}, ...}``.

    Each protocol holds ``rank1``/``rank5``/``rank10``, ``auc``, ``eer`` (+ ``eer_threshold``),
    ``tar_at_far_1e-1``/``1e-2``/``1e-3`` (+ thresholds), ``d_prime``, ``n_probes`` and
    ``n_gallery`` (the ``protocols`` entry of ``metrics.json``).  Gallery: the first VIS image
    per identity; probes: the other images of the probe modality; verification: every probe
    against every template; ``roles`` (gallery/probe per image, from a protocol CSV) replaces
    that rule by the protocol's own.  Taught in ``notebooks/06_evaluation.ipynb``.
    """
    scored = score_protocols(embeddings, identities, modalities, protocols, roles)
    return {name: protocol_metrics(ps, ks) for name, ps in scored.items()}


def all_pairs_verification(embeddings: Any, identities: Any) -> dict[str, float]:
    """Verification metrics over every pair of images of one set (no gallery): AUC, EER, TAR at FAR.

    The measure of ``shared/assets/README.md``'s reference figures (a small labelled set, all
    pairs); each unordered pair counts once.
    """
    emb = l2_normalize(_check_embeddings(embeddings))
    identities = np.asarray(identities).ravel()
    if identities.size != len(emb):
        raise ValueError(f"{len(emb)} embeddings but {identities.size} identity labels.")
    rows, cols = np.triu_indices(len(emb), 1)
    scores = np.einsum("ij,ij->i", emb[rows], emb[cols])
    return verification_metrics(scores, identities[rows] == identities[cols])


def metrics_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """A tidy table, one row per (run, protocol) and one column per metric.

    ``results`` maps a run name to its protocols dict (the output of :func:`evaluate_protocols`)
    or to a run dict holding ``protocols`` and scalar fields (``trainable_params`` ...), which
    become columns too.  A whole ``metrics.json`` (``{"baseline": ..., "runs": {...}}``) is
    accepted as is.
    """
    if "runs" in results and isinstance(results["runs"], Mapping):
        flat: dict[str, Any] = {}
        if "baseline" in results:
            flat["baseline"] = results["baseline"]
        flat.update(results["runs"])
        results = flat
    rows = []
    for run, entry in results.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"Run {run!r} holds a {type(entry).__name__}; expected a dict of protocols.")
        protocols = entry.get("protocols", entry)
        extra = {k: v for k, v in entry.items() if k != "protocols" and not isinstance(v, Mapping)}
        for protocol, metrics in protocols.items():
            if not isinstance(metrics, Mapping):
                continue
            rows.append({"run": run, "protocol": protocol, **extra, **metrics})
    if not rows:
        raise ValueError("metrics_table got no protocols; pass {run: evaluate_protocols(...)}.")
    return pd.DataFrame(rows)

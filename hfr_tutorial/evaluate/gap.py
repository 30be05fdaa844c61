"""The modality gap in embedding space: genuine similarity per modality, centroid distances, how well a
linear probe tells the modalities apart.  Taught in ``notebooks/00_data_and_modality_gap.ipynb`` and ``06``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import MODALITIES

from .embedding import _check_embeddings, l2_normalize
from .identification import _check_labels, _check_modality
from .protocols import score_protocols
from .verification import decidability


def genuine_similarity(
    embeddings: Any, identities: Any, modalities: Any, reference: str = "vis"
) -> dict[str, float]:
    """Mean cosine of genuine pairs (same identity) within ``reference`` and across modalities.

    Keys ``"vis-vis"`` (distinct VIS images of one person), ``"vis-nir"``, ``"vis-thermal"``...
    (a VIS image and an image of the other modality, same person).  For a model that ignores the
    sensor the cross-modal means match the within-VIS one; the shortfall is the modality gap in
    its plainest form.  Taught in ``notebooks/00_data_and_modality_gap.ipynb`` and ``06_evaluation``.
    """
    emb = l2_normalize(_check_embeddings(embeddings))
    identities, modalities = _check_labels(identities, modalities, n=len(emb))
    _check_modality(reference, modalities, "reference")
    ref = modalities == reference
    out: dict[str, float] = {}
    for mod in ordered_modalities(modalities, reference):
        other = modalities == mod
        sim = emb[ref] @ emb[other].T
        same = identities[ref][:, None] == identities[other][None, :]
        if mod == reference:
            same &= ~np.eye(same.shape[0], dtype=bool)  # an image is not its own genuine pair
        out[f"{reference}-{mod}"] = float(sim[same].mean()) if same.any() else float("nan")
    return out


def ordered_modalities(modalities: np.ndarray, first: str | None = None) -> list[str]:
    present = list(dict.fromkeys(modalities.tolist()))
    known = [m for m in MODALITIES if m in present]
    ordered = known + sorted(m for m in present if m not in known)
    if first is not None and first in ordered:
        ordered.remove(first)
        ordered.insert(0, first)
    return ordered


def centroid_distances(embeddings: Any, modalities: Any, reference: str = "vis") -> dict[str, float]:
    """Euclidean distance between the mean embedding of ``reference`` and of each other modality.

    L2-normalised embeddings live on the unit sphere, so the distance runs from 0 (the modalities
    share a centre: no global shift) to 2.  A sensor that shifts every face the same way shows up
    here even when identities stay separable.  Keys ``"vis-nir"``, ``"vis-thermal"``...
    """
    emb = l2_normalize(_check_embeddings(embeddings))
    modalities = np.asarray(modalities).astype(str).ravel()
    if modalities.size != len(emb):
        raise ValueError(f"{len(emb)} embeddings but {modalities.size} modality labels.")
    _check_modality(reference, modalities, "reference")
    centre = emb[modalities == reference].mean(axis=0)
    return {
        f"{reference}-{mod}": float(np.linalg.norm(emb[modalities == mod].mean(axis=0) - centre))
        for mod in ordered_modalities(modalities, reference)
        if mod != reference
    }


def modality_probe_accuracy(
    embeddings: Any, modalities: Any, *, folds: int = 5, seed: int = 0, max_iter: int = 1000
) -> float:
    """Cross-validated accuracy of a linear classifier that predicts the modality from embeddings.

    A logistic regression (scikit-learn) trained on part of the embeddings and scored on the
    rest (stratified ``folds``-fold, shuffled with ``seed``).  Chance is 1 / number of modalities:
    near chance, the embedding no longer says which sensor took the photo; near 1, it does,
    even if identities are still recognised.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    emb = l2_normalize(_check_embeddings(embeddings))
    labels = np.asarray(modalities).astype(str).ravel()
    if labels.size != len(emb):
        raise ValueError(f"{len(emb)} embeddings but {labels.size} modality labels.")
    classes, counts = np.unique(labels, return_counts=True)
    if classes.size < 2:
        raise ValueError("modality_probe_accuracy needs at least two modalities.")
    if counts.min() < folds:
        raise ValueError(
            f"Modality {classes[counts.argmin()]!r} has {counts.min()} images, fewer than the "
            f"{folds} folds; pass fewer folds or more images."
        )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    clf = LogisticRegression(max_iter=max_iter)
    # One BLAS thread: the fits multiply small matrices, and next to torch's OpenMP threads a
    # multi-threaded BLAS mostly waits. Measured per call on 2 cores, same accuracy: 1.5 s against
    # 0.6 s when idle, 4-5 s against 0.8 s while another job ran.
    with threadpool_limits(limits=1, user_api="blas"):
        return float(cross_val_score(clf, emb, labels, cv=cv).mean())


def gap_measures(
    embeddings: Any,
    identities: Any,
    modalities: Any,
    protocols: Sequence[str] | None = None,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Every modality-gap measure in one dict (taught in ``notebooks/06_evaluation.ipynb``).

    * ``genuine_similarity``: mean genuine cosine within VIS and VIS-to-other (see
      :func:`genuine_similarity`);
    * ``centroid_distance``: distance of each modality's centre from VIS' (:func:`centroid_distances`);
    * ``modality_probe_accuracy`` and ``modality_chance``: how well a linear probe tells the
      sensor from the embedding (:func:`modality_probe_accuracy`);
    * ``d_prime``: decidability of genuine vs impostor scores per protocol (:func:`decidability`);
      default protocols: every modality present against VIS.
    """
    emb = _check_embeddings(embeddings)
    identities, modalities = _check_labels(identities, modalities, n=len(emb))
    if protocols is None:
        protocols = [f"{m}->vis" for m in ordered_modalities(modalities, "vis")]
    scored = score_protocols(emb, identities, modalities, protocols)
    return {
        "genuine_similarity": genuine_similarity(emb, identities, modalities),
        "centroid_distance": centroid_distances(emb, modalities),
        "modality_probe_accuracy": modality_probe_accuracy(emb, modalities, seed=seed),
        "modality_chance": 1.0 / np.unique(modalities).size,
        "d_prime": {name: decidability(ps.genuine, ps.impostor) for name, ps in scored.items()},
    }

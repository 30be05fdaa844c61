"""Identification: protocols (which images are gallery, which probes), ranks, CMC and rank-k.

A protocol ``"nir->vis"`` searches NIR probes against a VIS gallery of one template per identity
(the first VIS image, or the protocol CSV's roles).  Taught in ``notebooks/06_evaluation.ipynb``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.faceset import KNOWN_MODALITIES

from .constants import RANKS


def parse_protocol(protocol: str) -> tuple[str, str]:
    """``"nir->vis"`` -> ``("nir", "vis")`` (probe modality, gallery modality)."""
    parts = [p.strip().lower() for p in re.split(r"->|→", protocol)]
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            f"Protocol {protocol!r} is not of the form 'probe->gallery', e.g. 'nir->vis'."
        )
    return parts[0], parts[1]


def _check_labels(identities: Any, modalities: Any, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    identities = np.asarray(identities).ravel()
    modalities = np.asarray(modalities).astype(str).ravel()
    if identities.shape != modalities.shape:
        raise ValueError(
            f"identities ({identities.size}) and modalities ({modalities.size}) differ in length; "
            "pass one label of each per image."
        )
    if n is not None and identities.size != n:
        raise ValueError(
            f"{n} embeddings but {identities.size} identity/modality labels; embed the same "
            "images you take the labels from (e.g. both from faceset.select(split='eval'))."
        )
    return identities, modalities


def _check_modality(name: str, modalities: np.ndarray, role: str) -> None:
    if not np.any(modalities == name):
        present = sorted(set(modalities.tolist()))
        raise ValueError(
            f"Unknown {role} modality {name!r}: these images hold {present}. Use one of those "
            "(modality names are lower case, e.g. 'vis', 'nir', 'thermal')."
        )


def _role_mask(roles: Any, n: int, role: str) -> np.ndarray | None:
    """Where ``roles`` (one per image, or None) says ``role``; None when no image has a gallery role."""
    if roles is None:
        return None
    roles = np.asarray(roles).astype(str).ravel()
    if roles.size != n:
        raise ValueError(f"roles has {roles.size} entries but there are {n} images; give one role per image.")
    if not np.any(roles == "gallery"):
        return None  # no protocol roles (e.g. generated data): the first-image rule applies
    return roles == role


def identification_protocol(
    identities: Any, modalities: Any, probe_modality: str, gallery_modality: str = "vis",
    roles: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-set gallery and probe indices: ``(gallery_idx, probe_idx)``.

    Without ``roles`` (or when no image has the role ``gallery``) the gallery holds one template
    per identity, the FIRST image (in index order) of ``gallery_modality``; the probes are all
    images of ``probe_modality`` except those gallery images.  With the roles of a protocol CSV
    (``gallery`` / ``probe`` per image) the gallery is every ``gallery_modality`` image whose role
    is ``gallery`` and the probes every ``probe_modality`` image whose role is ``probe``, as the
    dataset's protocol defines them.  Either way the probes are restricted to identities enrolled
    in the gallery (closed set: every probe has its mate).  Taught in ``notebooks/06_evaluation.ipynb``.
    """
    identities, modalities = _check_labels(identities, modalities)
    _check_modality(gallery_modality, modalities, "gallery")
    _check_modality(probe_modality, modalities, "probe")
    is_gallery_role = _role_mask(roles, identities.size, "gallery")
    if is_gallery_role is None:
        in_gallery_mod = np.flatnonzero(modalities == gallery_modality)
        _, first = np.unique(identities[in_gallery_mod], return_index=True)
        gallery_idx = np.sort(in_gallery_mod[first])
        is_probe = (modalities == probe_modality) & np.isin(identities, identities[gallery_idx])
        is_probe[gallery_idx] = False
    else:
        gallery_idx = np.flatnonzero(is_gallery_role & (modalities == gallery_modality))
        if gallery_idx.size == 0:
            raise ValueError(
                f"Protocol {probe_modality}->{gallery_modality} has no gallery: no {gallery_modality} image has "
                "the role 'gallery' in this protocol. Give the gallery images role=gallery in the protocol CSV."
            )
        is_probe = ((_role_mask(roles, identities.size, "probe") & (modalities == probe_modality))
                    & np.isin(identities, identities[gallery_idx]))
    probe_idx = np.flatnonzero(is_probe)
    if probe_idx.size == 0:
        raise ValueError(
            f"Protocol {probe_modality}->{gallery_modality} has no probes: no {probe_modality} "
            f"image belongs to an identity enrolled from {gallery_modality} (apart from the "
            "gallery images themselves). Use a set with more than one image per identity."
        )
    return gallery_idx, probe_idx


def available_protocols(identities: Any, modalities: Any, roles: Any = None,
                        gallery_modality: str = "vis") -> list[str]:
    """The protocols a set of images supports, in a fixed order: ``vis->vis`` first, then each other modality.

    Each modality other than the gallery's gives ``<modality>->vis`` when it has at least one probe
    of an enrolled identity; ``vis->vis`` is included when some identity has a second VIS image
    besides its gallery template (with protocol roles: when some VIS image is a probe).  So a
    NIR-only dataset (CASIA NIR-VIS 2.0) gets ``nir->vis`` (and ``vis->vis`` where it can), the
    embedded data all three.
    """
    identities, modalities = _check_labels(identities, modalities)
    present = [m for m in KNOWN_MODALITIES if np.any(modalities == m)]
    present += sorted(set(modalities.tolist()) - set(present))
    if gallery_modality not in present:
        raise ValueError(
            f"These images have no {gallery_modality!r} (VIS) gallery: modalities {present}. Every protocol "
            f"searches probes against a {gallery_modality} gallery; add {gallery_modality} images."
        )
    out = []
    for probe in [gallery_modality] + [m for m in present if m != gallery_modality]:
        try:
            identification_protocol(identities, modalities, probe, gallery_modality, roles)
        except ValueError:
            continue
        out.append(f"{probe}->{gallery_modality}")
    return out


def _identity_scores(similarity: np.ndarray, gallery_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best score per gallery identity: (P, n_ids) and the sorted identities."""
    ids, inverse = np.unique(gallery_labels, return_inverse=True)
    if ids.size == gallery_labels.size:
        out = np.empty_like(similarity)
        out[:, inverse] = similarity
        return out, ids
    order = np.argsort(inverse, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
    return np.maximum.reduceat(similarity[:, order], starts, axis=1), ids


def probe_ranks(similarity: Any, gallery_labels: Any, probe_labels: Any) -> np.ndarray:
    """Rank (1 = best) of each probe's true identity among the gallery identities.

    With several templates per identity the best one counts.  Ties count against the probe (an
    impostor identity scoring exactly as high ranks first), so a model that maps every face to
    the same point gets rank-1 = 0 and not 1.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    gallery_labels = np.asarray(gallery_labels).ravel()
    probe_labels = np.asarray(probe_labels).ravel()
    if similarity.shape != (probe_labels.size, gallery_labels.size):
        raise ValueError(
            f"similarity has shape {similarity.shape} but there are {probe_labels.size} probes and "
            f"{gallery_labels.size} gallery templates; expected (n_probes, n_gallery)."
        )
    per_id, ids = _identity_scores(similarity, gallery_labels)
    pos = np.searchsorted(ids, probe_labels)
    pos = np.minimum(pos, ids.size - 1)
    missing = ids[pos] != probe_labels
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} probes have no template in the gallery (e.g. identity "
            f"{probe_labels[missing][0]!r}); closed-set identification needs every probe identity "
            "enrolled. Build the indices with identification_protocol()."
        )
    mate = per_id[np.arange(probe_labels.size), pos]
    better = (per_id >= mate[:, None]).sum(axis=1) - 1  # other identities at least as high
    return better + 1


def cmc_curve(
    similarity: Any, gallery_labels: Any, probe_labels: Any, max_rank: int | None = None
) -> np.ndarray:
    """Cumulative match characteristic: ``cmc[k-1]`` = fraction of probes with rank <= k.

    ``max_rank`` defaults to the number of gallery identities (where the curve reaches 1).
    Taught in ``notebooks/06_evaluation.ipynb``.
    """
    ranks = probe_ranks(similarity, gallery_labels, probe_labels)
    n_ids = np.unique(np.asarray(gallery_labels)).size
    max_rank = n_ids if max_rank is None else int(max_rank)
    if max_rank < 1:
        raise ValueError(f"max_rank must be at least 1, got {max_rank}.")
    counts = np.bincount(np.minimum(ranks, max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    return np.cumsum(counts) / ranks.size


def rank_k(
    similarity: Any, gallery_labels: Any, probe_labels: Any, ks: Sequence[int] = RANKS
) -> dict[int, float]:
    """Rank-k identification accuracy for each k: the fraction of probes whose mate is in the top k."""
    ranks = probe_ranks(similarity, gallery_labels, probe_labels)
    return {int(k): float(np.mean(ranks <= k)) for k in ks}

"""Evaluation: embeddings, verification, identification and the modality gap.

Everything here takes **embeddings and labels** (numpy arrays), never models or files, except
:func:`embed`, which turns a model and images into those embeddings.  A notebook needs two lines::

    emb = embed(model, faceset.select(split="eval"))
    results = evaluate_protocols(emb, eval_set.identities, eval_set.modalities)

Conventions used throughout (and taught in ``notebooks/06_evaluation.ipynb``):

* A **score** is the cosine similarity of two L2-normalised embeddings; higher means "more alike".
* A pair is **accepted** when ``score >= threshold``.  FAR (false accept rate) is the fraction of
  impostor pairs accepted, TAR (true accept rate) the fraction of genuine pairs accepted, and
  FRR = 1 - TAR.
* A **protocol** ``"nir->vis"`` means NIR probes searched against a VIS gallery.  The gallery holds
  one template per identity (the first VIS image in index order); the probes are every other
  image of the probe modality whose identity is in the gallery (closed set).
* Verification scores of a protocol are the cosines of every probe against every gallery
  template; a pair is genuine when both share the identity.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FARS: tuple[float, ...] = (1e-1, 1e-2, 1e-3)
"""The false accept rates at which TAR is reported (keys ``tar_at_far_1e-1`` ...)."""

DEFAULT_PROTOCOLS: tuple[str, ...] = ("vis->vis", "nir->vis", "thermal->vis")
"""Probe->gallery protocols of the embedded synthetic data (gallery always VIS)."""

RANKS: tuple[int, ...] = (1, 5, 10)


def far_key(far: float) -> str:
    """The metric name of TAR at a FAR, e.g. ``far_key(0.01) == "tar_at_far_1e-2"``."""
    exponent = math.log10(far)
    if abs(exponent - round(exponent)) < 1e-9:
        return f"tar_at_far_1e{int(round(exponent))}"
    return f"tar_at_far_{far:g}"


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """Divide each row by its Euclidean norm (rows of zeros stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, eps)


def _default_transform() -> Callable[[np.ndarray], Any]:
    # Imported lazily: evaluation must not depend on the model code unless it embeds images.
    from hfr_tutorial.models.edgeface import images_to_tensor

    return images_to_tensor


def _iter_batches(source: Any, batch_size: int) -> tuple[Iterable[Any], int | None]:
    """Yield raw batches of ``source`` and their number (None when unknown)."""
    images = getattr(source, "images", None)
    if images is None and isinstance(source, np.ndarray):
        images = source
    if images is None:
        try:
            import torch

            if isinstance(source, torch.Tensor):
                images = source
        except ImportError:  # pragma: no cover - torch is a hard dependency
            pass
    if images is not None:
        n = len(images)
        starts = range(0, n, batch_size)
        return (images[s : s + batch_size] for s in starts), len(starts)
    if not isinstance(source, Iterable):
        raise ValueError(
            f"embed() got a {type(source).__name__}: pass a FaceSet (anything with .images), a "
            "uint8 array (N,H,W,3), a float tensor (N,3,H,W) or an iterable of such batches "
            "(a DataLoader yielding x or (x, y))."
        )
    try:
        n_batches = len(source)  # type: ignore[arg-type]
    except TypeError:
        n_batches = None
    return iter(source), n_batches


def _to_input(batch: Any, transform: Callable[[np.ndarray], Any] | None) -> "torch.Tensor":  # noqa: F821
    """Turn one raw batch (x, (x, y), uint8 images or a float tensor) into model input."""
    import torch

    if isinstance(batch, (tuple, list)) and not isinstance(batch, np.ndarray):
        if not batch:
            raise ValueError("embed() got an empty batch tuple; a loader must yield x or (x, y).")
        batch = batch[0]
    if isinstance(batch, torch.Tensor) and batch.dtype.is_floating_point:
        if batch.ndim != 4 or batch.shape[1] not in (1, 3):
            raise ValueError(
                f"embed() got a float tensor of shape {tuple(batch.shape)}; expected model input "
                "(B,3,H,W). Pass uint8 images (B,H,W,3) to have them transformed instead."
            )
        return batch
    array = batch.numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
    if array.ndim not in (3, 4):
        raise ValueError(
            f"embed() got images of shape {array.shape}; expected uint8 (B,H,W,3) images (or "
            "grayscale (B,H,W)) or a float tensor (B,3,H,W)."
        )
    transform = transform or _default_transform()
    out = transform(array)
    return out if isinstance(out, torch.Tensor) else torch.as_tensor(out)


def _model_device(model: Any) -> "torch.device":  # noqa: F821
    import torch

    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def embed(
    model: "torch.nn.Module",  # noqa: F821
    faceset_or_loader: Any,
    *,
    batch_size: int = 256,
    flip_tta: bool = False,
    device: "str | torch.device | None" = None,  # noqa: F821
    progress: bool | None = None,
    transform: Callable[[np.ndarray], Any] | None = None,
) -> np.ndarray:
    """Embed every image of a FaceSet (or loader) with ``model``: (N, D) float32, unit rows.

    ``faceset_or_loader`` is a FaceSet (its ``.images``), a uint8 image array (N,H,W,3), a float
    tensor (N,3,H,W) or an iterable of batches (``x`` or ``(x, y)``).  uint8 images go through
    ``transform`` (default: EdgeFace's ``images_to_tensor``: ToTensor, then mean 0.5 / std 0.5).
    Float tensors are taken as ready model input: a loader that yields ToTensor images in [0, 1]
    (such as ``FaceSet.loader``) still needs the mean/std step, so prefer passing the FaceSet.

    The model runs in ``torch.inference_mode`` and ``eval()`` mode (BatchNorm/Dropout frozen), and
    gets its previous train/eval mode and device back afterwards.  With ``flip_tta`` the embedding
    of the horizontally flipped face is added before normalising, the usual face-recognition
    test-time augmentation.  ``device`` defaults to where the model already is; ``progress``
    (None: automatic) shows a tqdm bar when there are more than a few batches.

    Taught in ``notebooks/01_baseline_rgb_model.ipynb``.
    """
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    batches, n_batches = _iter_batches(faceset_or_loader, batch_size)
    original_device = _model_device(model)
    target = torch.device(device) if device is not None else original_device
    show = progress if progress is not None else (n_batches is None or n_batches > 4)
    was_training = model.training
    outputs: list[np.ndarray] = []
    try:
        model.eval()
        if target != original_device:
            model.to(target)
        with torch.inference_mode():
            for batch in tqdm(batches, total=n_batches, desc="embed", disable=not show, leave=False):
                x = _to_input(batch, transform).to(target, non_blocking=True)
                if x.dtype == torch.float64 or not x.dtype.is_floating_point:
                    x = x.float()
                y = model(x)
                if flip_tta:
                    y = y + model(torch.flip(x, dims=[3]))
                if y.ndim != 2:
                    raise ValueError(
                        f"The model returned shape {tuple(y.shape)}; embed() needs (B, D) embeddings."
                    )
                outputs.append(y.float().cpu().numpy())
    finally:
        if target != original_device:
            model.to(original_device)
        model.train(was_training)
    if not outputs:
        raise ValueError("embed() got no images: the FaceSet or loader is empty.")
    emb = np.concatenate(outputs, axis=0)
    if not np.isfinite(emb).all():
        raise ValueError(
            "The model produced NaN or infinite embeddings; check its weights (a diverged training "
            "run?) and that the images were normalised the way the model expects."
        )
    return l2_normalize(emb)


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Identification
# ---------------------------------------------------------------------------------------------


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
    from .data.faceset import KNOWN_MODALITIES

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


def _check_embeddings(embeddings: Any) -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (N, D), got shape {emb.shape}.")
    if not np.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or infinite values; check the model that made them.")
    return emb


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


def metrics_table(results: Mapping[str, Any]) -> "pandas.DataFrame":  # noqa: F821
    """A tidy table, one row per (run, protocol) and one column per metric.

    ``results`` maps a run name to its protocols dict (the output of :func:`evaluate_protocols`)
    or to a run dict holding ``protocols`` and scalar fields (``trainable_params`` ...), which
    become columns too.  A whole ``metrics.json`` (``{"baseline": ..., "runs": {...}}``) is
    accepted as is.
    """
    import pandas as pd

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


# ---------------------------------------------------------------------------------------------
# The modality gap
# ---------------------------------------------------------------------------------------------


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
    for mod in _ordered_modalities(modalities, reference):
        other = modalities == mod
        sim = emb[ref] @ emb[other].T
        same = identities[ref][:, None] == identities[other][None, :]
        if mod == reference:
            same &= ~np.eye(same.shape[0], dtype=bool)  # an image is not its own genuine pair
        out[f"{reference}-{mod}"] = float(sim[same].mean()) if same.any() else float("nan")
    return out


def _ordered_modalities(modalities: np.ndarray, first: str | None = None) -> list[str]:
    from hfr_tutorial.config import MODALITIES

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
        for mod in _ordered_modalities(modalities, reference)
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
        protocols = [f"{m}->vis" for m in _ordered_modalities(modalities, "vis")]
    scored = score_protocols(emb, identities, modalities, protocols)
    return {
        "genuine_similarity": genuine_similarity(emb, identities, modalities),
        "centroid_distance": centroid_distances(emb, modalities),
        "modality_probe_accuracy": modality_probe_accuracy(emb, modalities, seed=seed),
        "modality_chance": 1.0 / np.unique(modalities).size,
        "d_prime": {name: decidability(ps.genuine, ps.impostor) for name, ps in scored.items()},
    }

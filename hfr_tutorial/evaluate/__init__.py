"""Evaluation: embeddings, verification, identification and the modality gap, one module each.

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

Modules: :mod:`.embedding` (:func:`embed`), :mod:`.verification` (ROC, EER, TAR@FAR, thresholds),
:mod:`.identification` (protocols, ranks, CMC), :mod:`.protocols` (scored protocols and their metrics,
tidy tables), :mod:`.gap` (the modality gap in embedding space); :mod:`.constants` (FARs, protocols, ranks).
"""
from .constants import DEFAULT_PROTOCOLS, FARS, RANKS, far_key
from .embedding import embed, l2_normalize
from .verification import apply_threshold, decidability, eer_from_roc, roc, tar_at_far_from_roc, threshold_at_far, verification_metrics
from .identification import available_protocols, cmc_curve, identification_protocol, parse_protocol, probe_ranks, rank_k
from .protocols import ProtocolScores, all_pairs_verification, evaluate_protocols, metrics_table, protocol_metrics, score_protocols
from .gap import ordered_modalities, centroid_distances, gap_measures, genuine_similarity, modality_probe_accuracy

__all__ = ['DEFAULT_PROTOCOLS', 'FARS', 'ProtocolScores', 'RANKS', 'all_pairs_verification', 'apply_threshold', 'available_protocols', 'centroid_distances', 'cmc_curve', 'decidability', 'eer_from_roc', 'embed', 'evaluate_protocols', 'far_key', 'gap_measures', 'genuine_similarity', 'identification_protocol', 'l2_normalize', 'metrics_table', 'modality_probe_accuracy', 'ordered_modalities', 'parse_protocol', 'probe_ranks', 'protocol_metrics', 'rank_k', 'roc', 'score_protocols', 'tar_at_far_from_roc', 'threshold_at_far', 'verification_metrics']

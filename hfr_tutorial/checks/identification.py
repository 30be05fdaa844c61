"""Checks of identification computed by hand (notebook 00): the cosine similarity matrix and rank-1.

:func:`check_similarity_function` and :func:`check_rank1_function` call the student's functions on the
notebook's data and on hidden data: features of very different norms (so a dot product ranks
differently from a cosine), other sizes, labels that are not the column indices, a single probe.  The
library functions they re-implement (``l2_normalize``, ``rank_k``, ``probe_ranks``, ``cmc_curve``,
``evaluate_protocols`` ...) are recorded: a function that calls one fails.  :func:`check_rank1` checks
a value with its similarity, for a cell of your own.

Taught in: ``notebooks/00_data_and_modality_gap.ipynb`` (exercise 1).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .guard import Case, Comparison, check_function
from .feedback import as_array, as_scalar, fmt, verdict


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _rank_library() -> dict[str, Any]:
    from hfr_tutorial import evaluate as ev

    return {name: getattr(ev, name) for name in ("rank_k", "probe_ranks", "cmc_curve", "evaluate_protocols",
                                                 "score_protocols", "protocol_metrics")}


def _hidden_features(seed: int = 3) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Non-negative 'pixel' features with very different norms: a dot product ranks them unlike a cosine."""
    rng = np.random.default_rng(seed)
    cases = []
    for n_probe, n_gallery, dim in ((21, 7, 48), (9, 13, 16), (1, 4, 8)):
        centres = rng.random((n_gallery, dim))
        gallery = centres * rng.uniform(0.2, 5.0, size=(n_gallery, 1))
        who = rng.integers(0, n_gallery, n_probe)
        probes = np.clip(centres[who] + rng.normal(scale=0.35, size=(n_probe, dim)), 0, None)
        probes *= rng.uniform(0.2, 5.0, size=(n_probe, 1))
        label = f"hidden features ({n_probe} probes, {n_gallery} gallery rows, {dim}-d)"
        cases.append((label, probes, gallery))
    return cases


def _compare_similarity(result: Any, ref: np.ndarray, probes: np.ndarray, gallery: np.ndarray) -> Comparison:
    try:
        sim = as_array(result)
    except (TypeError, ValueError):
        return Comparison(False, f"it returned a {type(result).__name__}, not a matrix")
    n_p, n_g = ref.shape
    if sim.shape != ref.shape:
        hint = "rows are probes, columns gallery rows: probes @ gallery.T"
        if sim.shape == (n_g, n_p):
            hint = "transposed: rows must be probes (probe_vectors @ gallery_vectors.T)"
        return Comparison(False, f"the matrix has shape {sim.shape} for {n_p} probes and {n_g} gallery rows", hint)
    diff = float(np.abs(sim - ref).max())
    if diff <= 1e-4:
        return Comparison(True)
    hint = "L2-normalise both the probe and the gallery rows before the product (cosine = dot of unit vectors)"
    pu, gu = _unit(probes), _unit(gallery)
    if np.allclose(sim, probes @ gallery.T, rtol=1e-4, atol=1e-6):
        hint = "that is the plain dot product: divide each row by its norm first (cosine, not dot)"
    elif np.allclose(sim, probes @ gu.T, rtol=1e-4, atol=1e-6):
        hint = "only the gallery rows are normalised; normalise the probes too"
    elif np.allclose(sim, pu @ gallery.T, rtol=1e-4, atol=1e-6):
        hint = "only the probe rows are normalised; normalise the gallery rows too"
    elif np.allclose(sim, (probes / np.linalg.norm(probes, axis=0)) @ (gallery / np.linalg.norm(gallery, axis=0)).T,
                     rtol=1e-4, atol=1e-6):
        hint = "you normalised the columns (axis=0); normalise each row (axis=1, keepdims=True)"
    return Comparison(False, f"these are not the cosines of the probe and gallery rows (off by up to {diff:.2g})",
                      hint)


def check_similarity_function(fn: Any, probe_features: Any = None, gallery_features: Any = None) -> bool:
    """``fn(probes, gallery)`` returns the (probes x gallery) cosine similarity matrix, on shown and hidden data.

    ``probe_features`` and ``gallery_features`` are the rows the notebook shows (optional); hidden
    cases add features of very different norms and other sizes.  ``l2_normalize`` and the library's
    protocol functions are recorded while ``fn`` runs.
    """
    from hfr_tutorial.evaluate import l2_normalize

    cases = []
    if probe_features is not None and gallery_features is not None:
        pf, gf = as_array(probe_features), as_array(gallery_features)
        pf, gf = pf.reshape(len(pf), -1), gf.reshape(len(gf), -1)
        cases.append(Case(f"the shown features ({len(pf)} probes, {len(gf)} gallery rows)", (pf, gf), hidden=False))
    cases += [Case(label, (p, g)) for label, p, g in _hidden_features()]
    return check_function(
        fn, cases, what="your similarity function gives the cosine matrix",
        reference=lambda case: _unit(case.args[0]) @ _unit(case.args[1]).T,
        compare=lambda result, ref, case, args: _compare_similarity(result, ref, *case.args),
        forbidden={"l2_normalize": l2_normalize, **_rank_library()},
        signature="my_similarity(probe_vectors, gallery_vectors)",
        forbidden_hint="divide each row by its norm (np.linalg.norm(x, axis=1, keepdims=True)), then probes @ gallery.T")


def _hidden_rank_cases(seed: int = 5) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Similarities whose labels are not the column indices, with a rank-1 strictly between 0 and 1."""
    rng = np.random.default_rng(seed)
    cases = []
    for n_probe, n_gallery in ((40, 10), (15, 23), (1, 5)):
        gallery_labels = rng.permutation(np.arange(100, 100 + 3 * n_gallery, 3))
        who = rng.integers(0, n_gallery, n_probe)
        sim = rng.uniform(-0.3, 0.6, size=(n_probe, n_gallery))
        hit = rng.random(n_probe) < 0.6
        sim[np.arange(n_probe)[hit], who[hit]] += 0.5  # the mate wins for about 60 % of the probes
        probe_labels = gallery_labels[who]
        cases.append((f"a hidden similarity of {n_probe} probes x {n_gallery} gallery rows, labels other than the "
                      "column numbers", sim, gallery_labels, probe_labels))
    return cases


def _compare_rank1(result: Any, ref: float, sim: np.ndarray, gallery_labels: np.ndarray,
                   probe_labels: np.ndarray) -> Comparison:
    v, why = as_scalar(result)
    if v is None:
        return Comparison(False, why)
    tol = 0.5 / len(probe_labels)
    if abs(v - ref) <= tol:
        return Comparison(True)
    if 1 < v <= 100 and abs(v / 100 - ref) <= tol:
        return Comparison(False, f"it returned {fmt(v)}, a percent", "give the fraction of probes (between 0 and 1)")
    by_index = float(np.mean(sim.argmax(axis=1) == probe_labels))
    worst = float(np.mean(gallery_labels[sim.argmin(axis=1)] == probe_labels))
    hint = ("for each probe (row) take the gallery column with the highest similarity (argmax over axis=1), "
            "compare gallery_labels there with the probe's label, and average over the probes")
    if abs(v - by_index) <= tol and abs(by_index - ref) > tol:
        hint = "you compared the column number with the probe's label: compare gallery_labels[column] instead"
    elif abs(v - worst) <= tol and abs(worst - ref) > tol:
        hint = "that takes the least similar gallery row (argmin): the best match has the highest cosine"
    return Comparison(False, f"it returned {fmt(v)}, not the share of probes whose best match has their label",
                      hint)


def check_rank1_function(fn: Any, similarity: Any = None, gallery_labels: Any = None, probe_labels: Any = None) -> bool:
    """``fn(similarity, gallery_labels, probe_labels)`` returns rank-1, on the shown and on hidden similarities.

    The reference is the library's ``rank_k(similarity, gallery_labels, probe_labels)[1]``, within half
    a probe.  Hidden cases have labels that are not the column numbers and more probes than gallery
    rows (or fewer); ``rank_k`` and the functions built on it are recorded while ``fn`` runs.
    """
    from hfr_tutorial.evaluate import rank_k

    cases = []
    if similarity is not None:
        sim = as_array(similarity)
        g, p = np.asarray(gallery_labels).ravel(), np.asarray(probe_labels).ravel()
        if sim.shape != (len(p), len(g)):
            raise ValueError(f"check_rank1_function: similarity {sim.shape} for {len(p)} probe and {len(g)} gallery "
                             "labels; pass the (probes x gallery) similarity of the shown labels.")
        cases.append(Case("the shown similarity", (sim, g, p), hidden=False))
    cases += [Case(label, (s, g, p)) for label, s, g, p in _hidden_rank_cases()]
    return check_function(
        fn, cases, what="your rank-1 function",
        reference=lambda case: rank_k(*case.args, ks=(1,))[1],
        compare=lambda result, ref, case, args: _compare_rank1(result, ref, *case.args),
        forbidden=_rank_library(), signature="my_rank1(similarity, gallery_labels, probe_labels)",
        forbidden_hint="argmax over each row, gallery_labels at those columns, == probe_labels, mean")


def check_rank1(value: Any, similarity: Any, gallery_labels: Any, probe_labels: Any, *,
                probe_features: Any = None, gallery_features: Any = None, reference: float | None = None) -> bool:
    """A rank-1 value and the cosine ``similarity`` (probes x gallery) it was computed from are both right.

    The reference is computed from ``probe_features`` and ``gallery_features`` (their cosines) and/or
    given as ``reference``, the library's rank-1.  Rank-1 must match to within half a probe, the
    similarity to within 1e-4 of the true cosines.  Without features or reference only the form of
    ``similarity`` and the rank-1 it gives are checked, and the verdict says so.  A notebook exercise
    uses :func:`check_similarity_function` and :func:`check_rank1_function` instead.
    """
    from hfr_tutorial.evaluate import rank_k

    g = np.asarray(gallery_labels).ravel()
    p = np.asarray(probe_labels).ravel()
    v, why = as_scalar(value)
    if v is None:
        return verdict(False, "rank-1", problem=why)
    try:
        sim = as_array(similarity)
    except (TypeError, ValueError):
        return verdict(False, "similarity", problem=f"a {type(similarity).__name__}, not a matrix")
    ref_sim = None
    if probe_features is not None or gallery_features is not None:
        if probe_features is None or gallery_features is None:
            raise ValueError("check_rank1: pass both probe_features and gallery_features (or neither).")
        pf, gf = as_array(probe_features), as_array(gallery_features)
        pf, gf = pf.reshape(len(pf), -1), gf.reshape(len(gf), -1)
        if (len(pf), len(gf)) != (len(p), len(g)):
            raise ValueError(f"check_rank1: {len(pf)} probe and {len(gf)} gallery feature rows for {len(p)} probe "
                             f"and {len(g)} gallery labels; pass the features of the same images, in the same order.")
        ref_sim = _unit(pf) @ _unit(gf).T
        result = _compare_similarity(sim, ref_sim, pf, gf)
        if not result.ok:
            return verdict(False, "similarity (cosine of probe and gallery rows)", problem=result.problem,
                           hint=result.hint)
    elif sim.shape != (len(p), len(g)):
        hint = ("transposed: rows must be probes" if sim.shape == (len(g), len(p)) else
                "rows are probes, columns gallery templates")
        return verdict(False, "similarity", problem=f"shape {sim.shape} for {len(p)} probes and {len(g)} gallery "
                                                    "templates", hint=hint)
    elif sim.min() < -1 - 1e-4 or sim.max() > 1 + 1e-4:
        return verdict(False, "similarity (cosine of probe and gallery rows)", problem="values outside [-1, 1]",
                       hint="a cosine is the dot product of unit vectors: L2-normalise the rows first")
    if ref_sim is not None:
        ref = rank_k(ref_sim, g, p, ks=(1,))[1]
        if reference is not None and abs(float(reference) - ref) > 0.5 / len(p):
            raise ValueError("check_rank1: the reference rank-1 disagrees with the features'; the notebook passes "
                             "features and reference of different images.")
    elif reference is not None:
        ref = float(reference)
    else:
        ref = rank_k(sim, g, p, ks=(1,))[1]
    note = ("" if (ref_sim is not None or reference is not None) else
            "rank-1 was only compared with your own similarity; pass probe_features= and gallery_features= "
            "(or reference=) for an independent check")
    result = _compare_rank1(v, ref, sim, g, p)
    if result.ok:
        return verdict(True, "rank-1", success=f"{v:.4f}", note=note)
    own = rank_k(sim, g, p, ks=(1,))[1]
    hint = result.hint
    if abs(v - own) <= 0.5 / len(p) and abs(own - ref) > 0.5 / len(p):
        hint = ("your rank-1 follows from your similarity, so the similarity is what is wrong: cosines of "
                "L2-normalised probe and gallery rows, rows = probes")
    return verdict(False, "rank-1", problem=result.problem, hint=hint, note=note)

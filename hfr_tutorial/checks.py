"""Self-checks for the notebooks' exercises: call one after your solution to see whether it is right.

Every check compares your answer with an **independent reference**: a value the library computes
from data your solution did not touch (the features, the scores, the model), never a value
recomputed from your own intermediate results. A wrong cosine therefore cannot make a rank-1
"correct", and embeddings from a wrongly normalised input cannot pass as right.

Each check prints a verdict. When the answer is wrong it prints what was expected, what was found and
a hint that names the usual mistake it recognises. It also returns the verdict as a ``bool``, so a
notebook can write ``ok = check_...(...)``. The tolerances are set to separate a right answer from the
common wrong ones, not to be as loose as possible: float rounding passes; a factor of 100, a
missing normalisation or an EER 20 % off does not.

A wrong answer prints and returns ``False`` without raising, so a student's notebook keeps running.
With the environment variable ``HFR_STRICT_CHECKS=1`` (meant for CI runs of the solved notebooks) a
wrong answer also raises :class:`CheckFailed` (an ``AssertionError``), so a broken solution fails
the run.

``tests/test_checks.py`` feeds every check the right answer and typical wrong ones and asserts the
verdicts.

Taught in: the "Exercises" section of every notebook.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from .config import strict_checks

"""Set to 1 to make a failed check raise :class:`CheckFailed` (CI runs of the solved notebooks)."""

EMBEDDING_MIN_COSINE = 0.9999
"""Smallest row cosine to the reference embeddings that counts as the same embedding.

The same model, the same images and the right input give cosines above 0.999999 on a CPU and
above 0.9999 with GPU TF32 arithmetic or another batch size. A ``[0, 1]`` input instead of EdgeFace's
``[-1, 1]`` gives about 0.93 on the official EdgeFace-XXS weights, and a 0-255 or ImageNet-normalised
input about 0.05."""


class CheckFailed(AssertionError):
    """A self-check found a wrong answer (raised only in strict mode, see :func:`hfr_tutorial.config.strict_checks`)."""


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------
def _strict() -> bool:
    return strict_checks()


def _verdict(ok: bool, what: str, expected: str, found: str, hint: str = "", note: str = "") -> bool:
    """Print the verdict; in strict mode raise on a wrong answer; return ``ok``."""
    if ok:
        lines = [f"Correct: {what}: found {found}; expected {expected}"]
    else:
        lines = [f"Not yet: {what}", f"  expected: {expected}", f"  found:    {found}"]
        if hint:
            lines.append(f"  hint:     {hint}")
    if note:
        lines.append(f"  note:     {note}")
    message = "\n".join(lines)
    print(message)
    if not ok and _strict():
        raise CheckFailed(message)
    return ok


def _array(x: Any) -> np.ndarray:
    """A float64 numpy copy of an array-like (torch tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def _scalar(value: Any) -> tuple[float | None, str]:
    """``(number, "")`` for a scalar answer, else ``(None, why it is not one)``."""
    if value is None:
        return None, "None: did the cell assign the variable?"
    if isinstance(value, bool):
        return None, f"{value!r}, a bool: the answer is a number"
    try:
        arr = _array(value)
    except (TypeError, ValueError):
        return None, f"a {type(value).__name__}, not a number"
    if arr.size != 1:
        return None, (f"an array of shape {arr.shape}, not one number: reduce it "
                      "(.mean() over the batch, or index the element you want)")
    number = float(arr.reshape(()))
    if not math.isfinite(number):
        return None, f"{number}: not a finite number"
    return number, ""


def _fmt(x: float) -> str:
    return f"{x:.6g}" if abs(x) < 1e-3 and x != 0 else f"{x:.4f}"


def _factor_hint(value: float, reference: float) -> str:
    """A hint for the classic factor errors (percent vs fraction, a missing 1/2, a sign)."""
    if reference == 0 or value == 0:
        return ""
    ratio = value / reference
    for factor, hint in ((100.0, "100 times the reference: a percent where a fraction is wanted?"),
                         (0.01, "a hundredth of the reference: a fraction where a percent is wanted?"),
                         (2.0, "twice the reference: a sum where a mean is wanted, or a missing factor 1/2?"),
                         (0.5, "half the reference: a mean of two terms where their sum is wanted, or an extra 1/2?"),
                         (-1.0, "the reference with the wrong sign")):
        if abs(ratio - factor) <= 1e-3 * abs(factor):
            return hint
    return f"yours / reference = {ratio:.4g}"


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------
def check_close(value: Any, reference: Any, what: str = "value", *, rtol: float = 1e-4, atol: float = 1e-6,
                hint: str = "") -> bool:
    """``value`` equals the independent ``reference`` within ``max(rtol * |reference|, atol)``.

    The default tolerances pass float32 rounding and reject the usual slips (a factor 2 or 100, a
    missing term); the printed hint names the factor when it recognises one. ``hint`` adds advice
    specific to the exercise.
    """
    ref, why = _scalar(reference)
    if ref is None:
        raise ValueError(f"check_close: the reference for {what!r} is {why}; the notebook must pass one number.")
    v, why = _scalar(value)
    tol = max(rtol * abs(ref), atol)
    expected = f"{_fmt(ref)} (within {tol:.1g})"
    if v is None:
        return _verdict(False, what, expected, why, hint)
    ok = abs(v - ref) <= tol
    advice = "; ".join(h for h in (_factor_hint(v, ref) if not ok else "", hint) if h)
    return _verdict(ok, what, expected, _fmt(v), advice)


def check_loss_close(value: Any, reference: Any, what: str = "loss", *, rtol: float = 1e-4, atol: float = 1e-6,
                     hint: str = "") -> bool:
    """A loss computed by hand matches the library's value of the same loss (see :func:`check_close`).

    ``reference`` must come from the library (e.g. ``CrossModalInfoNCE(temperature=T)(vis, other)``) on
    the same inputs the exercise gives. A tensor ``value`` must be one number (a 0-d tensor).
    """
    return check_close(value, reference, what, rtol=rtol, atol=atol, hint=hint)


def check_in_range(value: Any, low: float, high: float, what: str, *, hint: str = "") -> bool:
    """A figure falls in ``[low, high]``, a range the notebook derives from an independent reference.

    Prefer :func:`check_close`, :func:`check_eer` or :func:`check_threshold` where they apply: they
    choose the tolerance from the data and recognise the common wrong answers.
    """
    if not low <= high:
        raise ValueError(f"check_in_range: low ({low}) must not exceed high ({high}) for {what!r}.")
    v, why = _scalar(value)
    expected = f"a value in [{_fmt(low)}, {_fmt(high)}]"
    if v is None:
        return _verdict(False, what, expected, why, hint)
    ok = low <= v <= high
    side = "" if ok else ("below the range" if v < low else "above the range")
    return _verdict(ok, what, expected, _fmt(v), "; ".join(h for h in (side, hint) if h))


# --------------------------------------------------------------------------------------------
# Embeddings (notebook 01)
# --------------------------------------------------------------------------------------------
def _wrong_inputs() -> dict[str, Callable[[np.ndarray], torch.Tensor]]:
    """Common wrong input transforms of uint8 (B, H, W, 3) images, to name the mistake."""
    def chw(images: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float()

    imagenet_mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    imagenet_std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return {
        "pixels in [0, 1] (ToTensor without Normalize(0.5, 0.5))": lambda im: chw(im) / 255,
        "raw 0-255 pixels (no scaling at all)": chw,
        "ImageNet mean/std (EdgeFace uses mean 0.5, std 0.5)":
            lambda im: (chw(im) / 255 - imagenet_mean) / imagenet_std,
        "BGR channel order (the images are RGB)":
            lambda im: (chw(np.ascontiguousarray(np.asarray(im)[..., ::-1])) / 255 - 0.5) / 0.5,
    }


def _diagnose_embeddings(emb: np.ndarray, model: torch.nn.Module, images: Any) -> str:
    """Name the wrong input transform that reproduces ``emb``, if one does."""
    from hfr_tutorial.evaluate import embed

    array = np.asarray(images)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        return ""
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    for name, transform in _wrong_inputs().items():
        wrong = embed(model, array, transform=transform, progress=False)
        if np.min(np.sum(unit * wrong, axis=1)) >= EMBEDDING_MIN_COSINE:
            return f"your embeddings are what the model gives for {name}"
    return ""


def check_embeddings(embeddings: Any, n: int, dim: int = 512, *, reference: Any = None,
                     model: torch.nn.Module | None = None, images: Any = None,
                     min_cosine: float = EMBEDDING_MIN_COSINE) -> bool:
    """Embeddings are ``(n, dim)`` unit-length rows **equal to the reference embeddings**.

    The reference is ``reference`` (an ``(n, dim)`` array) or, given ``model`` and ``images``, the
    library's ``embed(model, images)`` (eval mode, EdgeFace's input normalisation, L2-normalised).
    Each row must have cosine >= ``min_cosine`` to its reference row (see
    :data:`EMBEDDING_MIN_COSINE`). Given ``model`` and ``images``, a failed check also says which
    common wrong input transform ([0, 1] pixels, 0-255, ImageNet statistics, BGR) reproduces your
    embeddings. Without either argument only the shape and the norms are checked, and the verdict
    says so.
    """
    expected = f"{n} unit-length {dim}-d rows"
    if embeddings is None:
        return _verdict(False, "embeddings", expected, "None: did the cell assign the variable?")
    try:
        emb = _array(embeddings)
    except (TypeError, ValueError):
        return _verdict(False, "embeddings", expected, f"a {type(embeddings).__name__}, not an array")
    if emb.shape != (n, dim):
        hint = "one row per image, one column per embedding dimension"
        if emb.shape == (dim, n):
            hint = "transposed: rows must be images (use .T, or normalise with dim=1)"
        elif emb.ndim == 4:
            hint = "these look like images or feature maps: pass them through the model"
        return _verdict(False, "embedding shape", f"({n}, {dim})", str(emb.shape), hint)
    if not np.isfinite(emb).all():
        return _verdict(False, "embeddings", expected, "NaN or infinite values",
                        "check the input: uint8 images must become float before the model")
    norms = np.linalg.norm(emb, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-4):
        hint = "L2-normalise each row: torch.nn.functional.normalize(x, dim=1)"
        if np.allclose(np.linalg.norm(emb, axis=0), 1.0, atol=1e-4):
            hint = "you normalised the columns (dim=0); normalise each row (dim=1)"
        return _verdict(False, "embedding norms", "1 for every row",
                        f"norms from {norms.min():.4f} to {norms.max():.4f}", hint)
    if reference is None and model is not None and images is not None:
        from hfr_tutorial.evaluate import embed

        reference = embed(model, images, progress=False)
    if reference is None:
        return _verdict(True, "embeddings", expected, f"{n} unit-length {dim}-d rows",
                        note="only shape and norms were checked; pass reference=embed(model, images) "
                             "(or model= and images=) to compare the values")
    ref = _array(reference)
    if ref.shape != (n, dim):
        raise ValueError(f"check_embeddings: the reference has shape {ref.shape}, expected ({n}, {dim}); "
                         "the notebook must pass the library's embeddings of the same images.")
    ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
    cos = np.sum(emb / norms[:, None] * ref, axis=1)
    worst = int(np.argmin(cos))
    found = f"smallest cosine {cos[worst]:.6f} (row {worst}), largest |difference| {np.abs(emb - ref).max():.2e}"
    if cos.min() >= min_cosine:
        return _verdict(True, "embeddings match the library's embed()", f"every cosine >= {min_cosine}", found)
    hint = ""
    if model is not None and images is not None:
        hint = _diagnose_embeddings(emb, model, images)
    if not hint:
        hint = ("the input must be images_to_tensor(images) (ToTensor, then mean 0.5 / std 0.5: pixels in "
                "[-1, 1]), the model in eval() mode, the same images in the same order")
    return _verdict(False, "embeddings match the library's embed()", f"every cosine >= {min_cosine}", found, hint)


# --------------------------------------------------------------------------------------------
# Identification (notebook 00)
# --------------------------------------------------------------------------------------------
def check_rank1(value: Any, similarity: Any, gallery_labels: Any, probe_labels: Any, *,
                probe_features: Any = None, gallery_features: Any = None, reference: float | None = None) -> bool:
    """Rank-1 and the cosine ``similarity`` (probes x gallery) it was computed from are both right.

    The independent reference is computed from ``probe_features`` and ``gallery_features`` (the
    vectors the similarity should be built from: the check takes their cosines itself) and/or given
    as ``reference``, the library's rank-1 (e.g. ``pixel_results["nir->vis"]["rank1"]``).
    Rank-1 must match to within half a probe; the similarity to within 1e-4 of the true cosines.
    Without features or reference the check can only test that ``similarity`` looks like a cosine
    matrix and that ``value`` follows from it, and says so.
    """
    from hfr_tutorial.evaluate import rank_k

    gallery_labels = np.asarray(gallery_labels).ravel()
    probe_labels = np.asarray(probe_labels).ravel()
    n_p, n_g = probe_labels.size, gallery_labels.size
    tol = 0.5 / n_p
    what = "rank-1"
    v, why = _scalar(value)
    if v is None:
        return _verdict(False, what, "a fraction of probes in [0, 1]", why)

    try:
        sim = _array(similarity)
    except (TypeError, ValueError):
        return _verdict(False, "similarity", f"a ({n_p}, {n_g}) array", f"a {type(similarity).__name__}")
    if sim.shape != (n_p, n_g):
        hint = "rows are probes, columns gallery templates: probes @ gallery.T"
        if sim.shape == (n_g, n_p):
            hint = "transposed: rows must be probes (probe_vectors @ gallery_vectors.T)"
        return _verdict(False, "similarity shape", f"({n_p}, {n_g}) = (probes, gallery)", str(sim.shape), hint)

    ref_sim = None
    if probe_features is not None or gallery_features is not None:
        if probe_features is None or gallery_features is None:
            raise ValueError("check_rank1: pass both probe_features and gallery_features (or neither).")
        pf, gf = _array(probe_features), _array(gallery_features)
        pf, gf = pf.reshape(len(pf), -1), gf.reshape(len(gf), -1)
        if (len(pf), len(gf)) != (n_p, n_g):
            raise ValueError(f"check_rank1: {len(pf)} probe and {len(gf)} gallery feature rows for {n_p} probe "
                             f"and {n_g} gallery labels; pass the features of the same images, in the same order.")
        pu = pf / np.maximum(np.linalg.norm(pf, axis=1, keepdims=True), 1e-12)
        gu = gf / np.maximum(np.linalg.norm(gf, axis=1, keepdims=True), 1e-12)
        ref_sim = pu @ gu.T
    own = rank_k(sim, gallery_labels, probe_labels, ks=(1,))[1]  # what the student's similarity gives

    # 1. The similarity itself.
    if ref_sim is not None:
        diff = float(np.abs(sim - ref_sim).max())
        if diff > 1e-4:
            hint = "L2-normalise both the probe and the gallery rows before the product (cosine = dot of unit vectors)"
            if np.allclose(sim, pf @ gf.T, rtol=1e-4, atol=1e-6):
                hint = "that is the plain dot product: divide each row by its norm first (cosine, not dot)"
            elif np.allclose(sim, pf @ gu.T, rtol=1e-4, atol=1e-6):
                hint = ("only the gallery rows are normalised; normalise the probes too (rank-1 happens not to "
                        "change, but the scores are not cosines)")
            elif np.allclose(sim, pu @ gf.T, rtol=1e-4, atol=1e-6):
                hint = "only the probe rows are normalised; normalise the gallery rows too"
            return _verdict(False, "similarity (cosine of probe and gallery rows)", "the cosines, within 1e-4",
                            f"largest difference {diff:.3g}", hint)
    elif sim.min() < -1 - 1e-4 or sim.max() > 1 + 1e-4:
        return _verdict(False, "similarity (cosine of probe and gallery rows)", "values in [-1, 1]",
                        f"values from {sim.min():.4g} to {sim.max():.4g}",
                        "a cosine is the dot product of unit vectors: L2-normalise the rows first")

    # 2. Rank-1.
    if ref_sim is not None:
        ref = rank_k(ref_sim, gallery_labels, probe_labels, ks=(1,))[1]
        if reference is not None and abs(float(reference) - ref) > tol:
            raise ValueError(f"check_rank1: the reference rank-1 {float(reference):.4f} disagrees with the features' "
                             f"{ref:.4f}; the notebook passes features and reference of different images.")
        source = "from the features"
    elif reference is not None:
        ref, source = float(reference), "the library's value"
    else:
        ref, source = own, "from your similarity (no independent reference given)"
    expected = f"{ref:.4f} ({source}, within half a probe)"
    note = ("" if (ref_sim is not None or reference is not None) else
            "rank-1 was only compared with your own similarity; pass probe_features= and gallery_features= "
            "(or reference=) for an independent check")
    if abs(v - ref) <= tol:
        return _verdict(True, what, expected, f"{v:.4f}", note=note)
    if 1 < v <= 100 and abs(v / 100 - ref) <= tol:
        hint = "that is a percent: give the fraction of probes (between 0 and 1)"
    elif abs(v - own) <= tol:
        hint = ("your rank-1 follows from your similarity, so the similarity is what is wrong: cosines of "
                "L2-normalised probe and gallery rows, rows = probes")
    else:
        hint = ("for each probe (row) take the gallery column with the highest similarity (argmax over axis=1, "
                "not axis=0), compare gallery_labels there with probe_labels and average")
    return _verdict(False, what, expected, f"{v:.4f}", hint, note)


# --------------------------------------------------------------------------------------------
# Tuning policies (notebooks 02, 05)
# --------------------------------------------------------------------------------------------
def _examples(names: Iterable[str], k: int = 3) -> str:
    names = sorted(names)
    shown = ", ".join(names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def check_trainable(model: torch.nn.Module, expected: int, what: str = "trainable parameters", *,
                    policy: str | None = None) -> bool:
    """The model trains exactly ``expected`` parameters, and (given ``policy``) exactly that policy's ones.

    ``expected`` is the count the library reports (``policy_table`` or ``apply_policy``). With
    ``policy`` (a name from :data:`hfr_tutorial.tuning.POLICIES`) the check also compares *which*
    parameters have ``requires_grad`` with :func:`hfr_tutorial.tuning.policy_parameter_names`, so a
    wrong set with the right count fails, and it names what is missing or extra.
    """
    if not isinstance(model, torch.nn.Module):
        return _verdict(False, what, f"{expected:,} in a torch.nn.Module", f"a {type(model).__name__}")
    params = dict(model.named_parameters())
    got = sum(p.numel() for p in params.values() if p.requires_grad)
    total = sum(p.numel() for p in params.values())
    expected_text = f"{expected:,} of {total:,}"
    if policy is not None:
        from hfr_tutorial.tuning import policy_parameter_names

        names = policy_parameter_names(model, policy)
        policy_count = sum(params[name].numel() for name in names)
        if policy_count != expected:
            raise ValueError(f"check_trainable: expected={expected:,} but policy {policy!r} trains {policy_count:,} "
                             "parameters of this model; the notebook passes a count of another model or policy.")
        trainable = {name for name, p in params.items() if p.requires_grad}
        missing, extra = names - trainable, trainable - names
        expected_text += f" (the parameters of policy {policy!r})"
        if not missing and not extra:
            return _verdict(True, what, expected_text, f"{got:,}")
        hints = []
        if got == total:
            hints.append("everything is trainable: freeze the whole model first (model.requires_grad_(False))")
        elif got == 0:
            hints.append("nothing is trainable: after freezing, unfreeze the policy's parameters "
                         "(requires_grad_(True))")
        else:
            if missing:
                hints.append(f"{len(missing)} should train but are frozen: {_examples(missing)}")
            if extra:
                hints.append(f"{len(extra)} train but should not: {_examples(extra)}")
        return _verdict(False, what, expected_text, f"{got:,}", "; ".join(hints))
    if got == expected:
        return _verdict(True, what, expected_text, f"{got:,}",
                        note="only the count was compared; pass policy= to check which parameters train")
    hint = ("freeze everything first (model.requires_grad_(False)), then unfreeze only the chosen parameters"
            if got > expected else "some chosen parameters are still frozen: unfreeze every one the policy names")
    return _verdict(False, what, expected_text, f"{got:,}", hint)


# --------------------------------------------------------------------------------------------
# Verification (notebook 06)
# --------------------------------------------------------------------------------------------
def _labels(scores: Any, same: Any, caller: str) -> tuple[np.ndarray, np.ndarray]:
    scores = _array(scores).ravel()
    same = np.asarray(same).ravel().astype(bool)
    if scores.shape != same.shape:
        raise ValueError(f"{caller}: {scores.size} scores but {same.size} labels; "
                         "pass one same/not-same label per score.")
    if same.all() or not same.any():
        raise ValueError(f"{caller}: the scores need genuine and impostor pairs (got {int(same.sum())} genuine of "
                         f"{same.size}).")
    return scores, same


def eer_tolerance(eer: float, n_genuine: int, n_impostor: int, rel_tol: float = 0.1) -> float:
    """How far a hand-computed EER may lie from the library's: ``max(rel_tol * eer, 2 / min(n))``.

    Two sources of honest difference: the library interpolates linearly where FAR and FRR cross,
    a hand computation takes the mean of FAR and FRR at the closest threshold; they differ by at
    most about one step of the ROC, 1/n of the smaller class. The relative part (10 %) is the
    tolerance when the counts are large, so an EER 20 % off fails.
    """
    return max(rel_tol * eer, 2.0 / min(n_genuine, n_impostor))


def check_eer(value: Any, scores: Any, same: Any, *, rel_tol: float = 0.1, what: str = "EER") -> bool:
    """An equal error rate computed by hand matches ``verification_metrics(scores, same)["eer"]``.

    ``scores`` and ``same`` are the genuine/impostor scores the exercise gives (``ps.scores``,
    ``ps.same``); the tolerance comes from :func:`eer_tolerance`. The hints recognise a percent,
    swapped genuine/impostor labels and the EER's threshold given in place of the rate.
    """
    from hfr_tutorial.evaluate import verification_metrics

    scores, same = _labels(scores, same, "check_eer")
    metrics = verification_metrics(scores, same)
    ref, ref_thr = metrics["eer"], metrics["eer_threshold"]
    tol = eer_tolerance(ref, int(same.sum()), int((~same).sum()), rel_tol)
    expected = f"{ref:.4f} ± {tol:.4f} (verification_metrics, interpolated)"
    v, why = _scalar(value)
    if v is None:
        return _verdict(False, what, expected, why)
    if abs(v - ref) <= tol:
        return _verdict(True, what, expected, f"{v:.4f}")
    if 1 < v <= 100 and abs(v / 100 - ref) <= tol:
        hint = "that is a percent: give the rate as a fraction between 0 and 1"
    elif abs(v - (1 - ref)) <= tol:
        hint = ("that is 1 - EER: genuine and impostor are swapped (impostor scores give FAR, genuine scores FRR), "
                "or the scores were treated as distances")
    elif abs(v - ref_thr) <= 1e-3 * max(1.0, abs(ref_thr)):
        hint = "that is the threshold at the EER; the EER is the error rate there, the mean of FAR and FRR"
    else:
        hint = ("at each candidate threshold: FAR = share of impostor scores >= threshold, FRR = share of genuine "
                "scores < threshold; take the threshold where |FAR - FRR| is smallest and the mean of the two there")
    return _verdict(False, what, expected, f"{v:.4f}", hint)


def check_threshold(threshold: Any, scores: Any, same: Any, target_far: float, *, far: Any = None,
                    slack: float | None = None, what: str = "threshold") -> bool:
    """A threshold chosen on these (dev) scores gives a FAR **at or just below** ``target_far``.

    The rule: the FAR it gives must not exceed the target. It must not be needlessly strict either: its
    FAR must be within ``slack`` of the FAR of the lowest threshold that keeps the rule (the one
    ``threshold_at_far`` returns). Otherwise any larger threshold, 1.0 included, would pass, while it
    rejects more genuine users. ``slack`` defaults to ``max(0.05 * target_far, 3 / n_impostor)``.
    With ``far`` (the FAR the student measured, e.g. ``dev_far``) the check also requires it to equal
    the FAR the threshold really gives on these scores.
    Accept means ``score >= threshold``, as in :func:`hfr_tutorial.evaluate.apply_threshold`.
    """
    from hfr_tutorial.evaluate import apply_threshold, threshold_at_far

    if not 0.0 < float(target_far) <= 1.0:
        raise ValueError(f"check_threshold: target_far must be a rate in (0, 1], got {target_far}.")
    target_far = float(target_far)
    scores, same = _labels(scores, same, "check_threshold")
    n_imp = int((~same).sum())
    best_thr = threshold_at_far(scores, same, target_far)
    best = apply_threshold(scores, same, best_thr)
    slack = max(0.05 * target_far, 3.0 / n_imp) if slack is None else float(slack)
    floor = max(0.0, best["far"] - slack)
    expected = (f"a FAR in [{_fmt(floor)}, {_fmt(target_far)}] on these scores (the lowest threshold that keeps "
                f"FAR <= {target_far:g} is {best_thr:.4f}: FAR {_fmt(best['far'])}, TAR {best['tar']:.4f})")
    t, why = _scalar(threshold)
    if t is None:
        return _verdict(False, what, expected, why)
    got = apply_threshold(scores, same, t)
    found = f"{t:.4f} (FAR {_fmt(got['far'])}, TAR {got['tar']:.4f})"
    if got["far"] > target_far + 1e-12:
        hint = (f"FAR {_fmt(got['far'])} breaks the rule (it exceeds the target {target_far:g}): the threshold "
                "is too low; choose the lowest threshold whose FAR on dev does not exceed the target "
                "(threshold_at_far)")
        if abs(t - target_far) < 1e-12:
            hint = ("that is the target FAR itself, not a threshold on the scores: "
                    "use threshold_at_far(scores, same, far)")
        return _verdict(False, what, expected, found, hint)
    if got["far"] < floor:
        hint = (f"FAR {_fmt(got['far'])} is far below the target: a larger threshold than needed, which rejects more "
                f"genuine users (TAR {got['tar']:.4f} instead of {best['tar']:.4f}); take the lowest threshold whose "
                "dev FAR does not exceed the target")
        if t > scores.max():
            hint = ("it lies above every score, so it accepts no pair at all: FAR 0 keeps the rule trivially; "
                    "take the lowest threshold whose dev FAR does not exceed the target")
        return _verdict(False, what, expected, found, hint)
    if far is not None:
        f, why = _scalar(far)
        if f is None or abs(f - got["far"]) > 0.5 / n_imp:
            hint = ("the FAR must be measured on the same (dev) scores with your threshold: "
                    "apply_threshold(scores, same, threshold)['far'] (accept when score >= threshold)")
            if f is not None and abs(f - got["tar"]) <= 0.5 / int(same.sum()):
                hint = "that is the TAR (genuine pairs accepted); the FAR counts accepted impostor pairs"
            return _verdict(False, "FAR of your threshold", f"{_fmt(got['far'])}", why or _fmt(f), hint)
    return _verdict(True, what, expected, found)

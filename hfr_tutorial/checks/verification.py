"""Checks of verification computed by hand (notebook 06): the EER, and a threshold chosen on dev.

:func:`check_eer_function` calls the student's ``my_eer(scores, same)`` on the notebook's scores and
on hidden score sets (a low and a high EER, tied scores, few genuine pairs, shuffled order) and
compares it with ``verification_metrics(scores, same)["eer"]`` within :func:`eer_tolerance`;
``verification_metrics``, the ROC functions it is built on and scikit-learn's ``roc_curve`` are
recorded while it runs.  :func:`check_threshold` checks a threshold chosen on dev scores: its dev FAR
keeps the target, it is not needlessly strict, it was not chosen on eval, and the FARs the student
reports are the ones it gives.

Taught in: ``notebooks/06_evaluation.ipynb`` (exercises 1, 2).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .guard import Case, Comparison, check_function
from .feedback import as_array, as_scalar, fmt, verdict


def _labels(scores: Any, same: Any, caller: str) -> tuple[np.ndarray, np.ndarray]:
    scores = as_array(scores).ravel()
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


def _hand_eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Mean of FAR and FRR at the threshold where they are closest (the exercise's recipe)."""
    genuine, impostor = np.sort(scores[same]), np.sort(scores[~same])
    candidates = np.unique(scores)
    far = 1 - np.searchsorted(impostor, candidates, side="left") / impostor.size
    frr = np.searchsorted(genuine, candidates, side="left") / genuine.size
    best = np.argmin(np.abs(far - frr))
    return float((far[best] + frr[best]) / 2)


def _compare_eer(result: Any, scores: np.ndarray, same: np.ndarray, rel_tol: float) -> Comparison:
    from hfr_tutorial.evaluate import verification_metrics

    v, why = as_scalar(result)
    if v is None:
        return Comparison(False, why)
    metrics = verification_metrics(scores, same)
    ref, ref_thr = metrics["eer"], metrics["eer_threshold"]
    tol = eer_tolerance(ref, int(same.sum()), int((~same).sum()), rel_tol)
    if abs(v - ref) <= tol:
        return Comparison(True)
    problem = f"yours, {fmt(v)}, is not the equal error rate of these scores"
    if 1 < v <= 100 and abs(v / 100 - ref) <= tol:
        return Comparison(False, problem, "that is a percent: give the rate as a fraction between 0 and 1")
    swapped = _hand_eer(scores, ~same)
    if abs(v - swapped) <= tol or abs(v - (1 - ref)) <= tol:
        return Comparison(False, problem, "genuine and impostor are swapped (impostor scores give FAR, genuine "
                                          "scores FRR), or the scores were treated as distances")
    if abs(v - ref_thr) <= 1e-3 * max(1.0, abs(ref_thr)):
        return Comparison(False, problem, "that is the threshold at the EER; the EER is the error rate there, the "
                                          "mean of FAR and FRR")
    direction = "too large" if v > ref else "too small"
    return Comparison(False, problem, f"{direction}; at each candidate threshold: FAR = share of impostor scores >= "
                                      "threshold, FRR = share of genuine scores < threshold; take the threshold "
                                      "where |FAR - FRR| is smallest and the mean of the two there")


def check_eer(value: Any, scores: Any, same: Any, *, rel_tol: float = 0.1, what: str = "EER") -> bool:
    """An equal error rate matches ``verification_metrics(scores, same)["eer"]`` within :func:`eer_tolerance`.

    A wrong value gets a hint (a percent, genuine and impostor swapped, the threshold in place of the
    rate, or which way it is off), never the reference.  A notebook exercise uses
    :func:`check_eer_function`, which runs the student's function on hidden scores too.
    """
    scores, same = _labels(scores, same, "check_eer")
    result = _compare_eer(value, scores, same, rel_tol)
    if result.ok:
        return verdict(True, what, success=f"{fmt(as_scalar(value)[0])}")
    return verdict(False, what, problem=result.problem, hint=result.hint)


def _hidden_scores(seed: int = 17) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    specs = (("hidden scores with a low EER (300 genuine, 6,000 impostor pairs)", 300, 6000, (0.6, 0.12), (0.15, 0.13), None),
             ("hidden scores with a high EER (150 genuine, 1,500 impostor pairs)", 150, 1500, (0.35, 0.2), (0.1, 0.2), None),
             ("hidden scores with many ties (rounded to 2 decimals)", 400, 4000, (0.5, 0.15), (0.2, 0.15), 2),
             ("hidden scores with few pairs (25 genuine, 250 impostor)", 25, 250, (0.55, 0.15), (0.2, 0.15), None))
    cases = []
    for label, n_g, n_i, (mg, sg), (mi, si), decimals in specs:
        scores = np.concatenate([rng.normal(mg, sg, n_g), rng.normal(mi, si, n_i)])
        if decimals is not None:
            scores = np.round(scores, decimals)
        same = np.r_[np.ones(n_g, bool), np.zeros(n_i, bool)]
        order = rng.permutation(len(scores))
        cases.append((label, scores[order], same[order]))
    return cases


def check_eer_function(fn: Any, scores: Any = None, same: Any = None, *, rel_tol: float = 0.1) -> bool:
    """``fn(scores, same)`` returns the EER of ``verification_metrics``, on the shown and on hidden scores.

    ``scores`` and ``same`` (True = genuine pair) are what the notebook shows; hidden sets add a low
    and a high EER, tied scores and few genuine pairs, in shuffled order.  The tolerance is
    :func:`eer_tolerance` of each set.  ``verification_metrics``, ``roc``, ``eer_from_roc``,
    ``protocol_metrics`` and scikit-learn's ``roc_curve`` are recorded while ``fn`` runs.
    """
    from sklearn.metrics import roc_curve

    from hfr_tutorial import evaluate as ev

    cases = []
    if scores is not None and same is not None:
        s, y = _labels(scores, same, "check_eer_function")
        cases.append(Case(f"the shown scores ({int(y.sum()):,} genuine, {int((~y).sum()):,} impostor pairs)", (s, y),
                          hidden=False))
    cases += [Case(label, (s, y)) for label, s, y in _hidden_scores()]
    forbidden = {name: getattr(ev, name) for name in ("verification_metrics", "roc", "eer_from_roc", "protocol_metrics",
                                                      "evaluate_protocols", "all_pairs_verification")}
    forbidden["sklearn.metrics.roc_curve"] = roc_curve
    forbidden["_hand_eer"] = _hand_eer
    return check_function(fn, cases, what="your EER function", reference=lambda case: None,
                          compare=lambda result, ref, case, args: _compare_eer(result, *case.args, rel_tol),
                          forbidden=forbidden, signature="my_eer(scores, same)",
                          forbidden_hint="sort the genuine and the impostor scores and count with np.searchsorted "
                                         "at every candidate threshold")


def check_threshold(threshold: Any, scores: Any, same: Any, target_far: float, *, far: Any = None,
                    slack: float | None = None, eval_scores: Any = None, eval_same: Any = None,
                    eval_far: Any = None, what: str = "threshold") -> bool:
    """A threshold chosen on these (dev) scores gives a FAR **at or just below** ``target_far``.

    The rule has two sides: the dev FAR it gives must not exceed the target, and it must not be
    needlessly strict: its FAR must be within ``slack`` (default ``max(0.05 * target_far, 3 /
    n_impostor)``) of the FAR of the lowest threshold that keeps the rule (``threshold_at_far``),
    else any larger threshold, 1.0 included, would pass.  With ``far`` (the FAR the student measured
    on dev) it must be the FAR the threshold really gives.  With ``eval_scores``/``eval_same`` a
    threshold chosen on eval instead of dev is named, and ``eval_far`` must be the FAR it gives
    there.  Accept means ``score >= threshold``.  No failure prints the right threshold or its FAR.
    """
    from hfr_tutorial.evaluate import apply_threshold, threshold_at_far

    if not 0.0 < float(target_far) <= 1.0:
        raise ValueError(f"check_threshold: target_far must be a rate in (0, 1], got {target_far}.")
    target_far = float(target_far)
    scores, same = _labels(scores, same, "check_threshold")
    n_imp = int((~same).sum())
    best = apply_threshold(scores, same, threshold_at_far(scores, same, target_far))
    slack = max(0.05 * target_far, 3.0 / n_imp) if slack is None else float(slack)
    floor = max(0.0, best["far"] - slack)
    t, why = as_scalar(threshold)
    if t is None:
        return verdict(False, what, problem=why)
    got = apply_threshold(scores, same, t)
    mine = f"your threshold {t:.4f} gives a dev FAR of {fmt(got['far'])}"
    on_eval = ""
    if eval_scores is not None and eval_same is not None:
        ev_s, ev_y = _labels(eval_scores, eval_same, "check_threshold")
        dev_choice = threshold_at_far(scores, same, target_far)
        eval_choice = threshold_at_far(ev_s, ev_y, target_far)
        if abs(t - eval_choice) <= 1e-12 and abs(eval_choice - dev_choice) > 1e-12:
            on_eval = "it is the threshold chosen on the eval scores"
    if on_eval:
        return verdict(False, what, problem=on_eval,
                       hint="choose it on the dev scores and apply it unchanged to eval: eval only measures")
    if got["far"] > target_far + 1e-12:
        hint = ("too low: it accepts too many impostors; choose the lowest threshold whose FAR on dev does not "
                "exceed the target (threshold_at_far on the dev scores)")
        if abs(t - target_far) < 1e-12:
            hint = "that is the target FAR itself, not a threshold on the scores: use threshold_at_far(scores, same, far)"
        return verdict(False, what, problem=f"{mine}, above the target", hint=hint)
    if got["far"] < floor:
        hint = ("too strict: a larger threshold than needed, which rejects more genuine users; take the lowest "
                "threshold whose dev FAR does not exceed the target")
        if t > scores.max():
            hint = ("it lies above every score, so it accepts no pair at all: FAR 0 keeps the rule trivially; take "
                    "the lowest threshold whose dev FAR does not exceed the target")
        return verdict(False, what, problem=f"{mine}, far below the target", hint=hint)
    for name, reported, ss, yy in (("dev", far, scores, same),
                                   ("eval", eval_far, eval_scores, eval_same)):
        if reported is None or ss is None:
            continue
        ss, yy = _labels(ss, yy, "check_threshold")
        true = apply_threshold(ss, yy, t)
        f, why = as_scalar(reported)
        if f is None or abs(f - true["far"]) > 0.5 / int((~yy).sum()):
            hint = (f"measure it on the {name} scores with your threshold: apply_threshold(scores, same, threshold)"
                    "['far'] (accept when score >= threshold)")
            if f is not None and abs(f - true["tar"]) <= 0.5 / int(yy.sum()):
                hint = "that is the TAR (genuine pairs accepted); the FAR counts accepted impostor pairs"
            return verdict(False, f"the {name} FAR of your threshold", problem=why or "it is not the FAR your "
                           f"threshold gives on the {name} scores", hint=hint)
    return verdict(True, what, success=f"{t:.4f}: dev FAR {fmt(got['far'])} (target {target_far:g}), dev TAR "
                                       f"{got['tar']:.4f}")

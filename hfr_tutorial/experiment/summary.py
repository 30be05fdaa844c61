"""The claims of an experiment, each with its paired interval, and the summary over folds.

Per fold, on one set of identity resamples shared by every model and protocol
(:func:`hfr_tutorial.metrics.paired_bootstrap`):

* ``start_gap``: the starting model's VIS rank-1 minus each cross-modal rank-1 (the modality gap);
* per run: ``change`` (its figure minus the starting model's, every resampled metric and protocol),
  ``gap_recovered`` (share of each gap it closes), ``vis_change``, ``trainable_percent``; the oracle:
  ``cross_over_vis`` (its cross-modal rank-1 over its own VIS rank-1);
* ``method_minus_full`` and ``method_over_full``: the method against full fine-tuning;
* ``distillation_effect``: for each ablation, the run with the ingredient minus the run without.

Roles come from the run registry (:mod:`hfr_tutorial.runs`).  Over folds (CASIA's View 2):
mean and standard deviation of every metric.

Taught in: ``notebooks/06_evaluation.ipynb`` (intervals) and ``notebooks/05_full_training.ipynb``.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..metrics import METRICS, PairedBootstrap
from ..runs import ablations, get_run, role_of
from ..verdicts import fmt_claim

VIS = "vis->vis"


def cross_protocols(protocols: list[str]) -> list[str]:
    """The cross-modal protocols (probe modality other than VIS)."""
    return [p for p in protocols if not p.startswith("vis->")]


def fold_claims(start: str, runs: list[str], protocols: list[str], boot: PairedBootstrap) -> dict[str, Any]:
    """The claims of one fold (see the module docstring); ``start`` and ``runs`` are keys of ``boot``."""
    point, samples = boot.point, boot.samples

    def fig(model: str, protocol: str, metric: str = "rank1") -> tuple[float, np.ndarray]:
        return point[model][protocol][metric], samples[model][protocol][metric]

    cross = cross_protocols(protocols)
    out: dict[str, Any] = {"start": start, "runs": {}}
    has_vis = VIS in protocols
    if has_vis:
        vis, vis_s = fig(start, VIS)
        out["start_vis_rank1"] = vis
        out["start_gap"] = {p: boot.claim(vis - fig(start, p)[0], vis_s - fig(start, p)[1]) for p in cross}
    for name in runs:
        if name not in point:
            continue
        entry: dict[str, Any] = {"change": {p: {m: boot.claim(fig(name, p, m)[0] - fig(start, p, m)[0],
                                                              fig(name, p, m)[1] - fig(start, p, m)[1])
                                                for m in boot.metrics} for p in protocols}}
        if has_vis:
            entry["vis_change"] = entry["change"][VIS]["rank1"]
        if get_run(name).adapts:
            if has_vis:
                entry["gap_recovered"] = {}
                for p in cross:
                    b, b_s = fig(start, p)
                    v, v_s = fig(name, p)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        entry["gap_recovered"][p] = boot.claim((v - b) / (vis - b) if vis > b else float("nan"),
                                                               (v_s - b_s) / (vis_s - b_s))
        elif has_vis:
            own, own_s = fig(name, VIS)
            with np.errstate(invalid="ignore", divide="ignore"):
                entry["cross_over_vis"] = {p: boot.claim(fig(name, p)[0] / own if own else float("nan"),
                                                         fig(name, p)[1] / own_s) for p in cross}
        out["runs"][name] = entry
    method, full = role_of("method"), role_of("full")
    if method in point and full in point:
        out["method"], out["full"] = method, full
        out["method_minus_full"], out["method_over_full"] = {}, {}
        for p in protocols:
            m, m_s = fig(method, p)
            f, f_s = fig(full, p)
            out["method_minus_full"][p] = boot.claim(m - f, m_s - f_s)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["method_over_full"][p] = boot.claim(m / max(1e-9, f), m_s / f_s)
    effects = {}
    for ablation, of in ablations().items():
        if ablation in point and of in point:
            effects[of] = {p: boot.claim(fig(of, p)[0] - fig(ablation, p)[0], fig(of, p)[1] - fig(ablation, p)[1])
                           for p in protocols}
    if effects:
        out["distillation_effect"] = effects
    out["intervals"] = {"method": "percentile bootstrap over eval identities, paired across models and protocols",
                        "resamples": boot.n_boot, "level": boot.level, "identities": boot.n_identities}
    return out


def over_folds(folds: Mapping[str, Any]) -> dict[str, Any]:
    """Mean and standard deviation (ddof 1; 0 for one fold) over folds of every model's metrics."""
    names: list[str] = []
    for f in folds.values():
        for n, r in f["models"].items():
            if r.get("status", "ok") == "ok" and n not in names:
                names.append(n)
    out: dict[str, Any] = {"n_folds": len(folds), "models": {}}
    for name in names:
        values: dict[str, dict[str, list[float]]] = {}
        for f in folds.values():
            for p, m in f["models"].get(name, {}).get("protocols", {}).items():
                for k in METRICS:
                    if k in m:
                        values.setdefault(p, {}).setdefault(k, []).append(m[k])
        out["models"][name] = {p: {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1
                                       else 0.0, "n": len(v)} for k, v in ms.items()} for p, ms in values.items()}
    return out


def headline_lines(claims: Mapping[str, Any], trainable: Mapping[str, float]) -> list[str]:
    """The claims of one fold, one sentence each, every figure with its paired 95 % interval."""
    lines = []
    start = claims["start"]
    if "start_gap" in claims:
        lines.append(f"- `{start}`: VIS rank-1 {claims['start_vis_rank1']:.3f}; modality gap (VIS minus cross-modal "
                     "rank-1) " + ", ".join(f"{p} {fmt_claim(g)}" for p, g in claims["start_gap"].items()) + ".")
    for name, entry in claims["runs"].items():
        pct = f" ({trainable[name]:.2f} % trainable)" if name in trainable else ""
        if "gap_recovered" in entry:
            rec = ", ".join(f"{p} {fmt_claim(v, 100, 0, unit=' %')}" for p, v in entry["gap_recovered"].items())
            lines.append(f"- `{name}`{pct}: gap recovered {rec}; VIS rank-1 change "
                         f"{fmt_claim(entry['vis_change'], sign=True)}.")
        elif "cross_over_vis" in entry:
            rel = ", ".join(f"{p} {fmt_claim(v, 100, 0, unit=' %')}" for p, v in entry["cross_over_vis"].items())
            lines.append(f"- `{name}`: cross-modal rank-1 as a share of its own VIS rank-1: {rel}.")
        else:
            ch = ", ".join(f"{p} {fmt_claim(v['rank1'], sign=True)}" for p, v in entry["change"].items())
            lines.append(f"- `{name}`{pct}: rank-1 change against `{start}`: {ch}.")
        eer = [f"{p} {fmt_claim(entry['change'][p]['eer'], 100, 1, sign=True, unit=' pp')}"
               for p in cross_protocols(list(entry["change"])) if "eer" in entry["change"][p]]
        if eer:
            lines.append(f"  EER change: {', '.join(eer)}" + (
                f"; VIS AUC change {fmt_claim(entry['change'][VIS]['auc'], sign=True)}"
                if VIS in entry["change"] and "auc" in entry["change"][VIS] else "") + ".")
    if "method_minus_full" in claims:
        cross = cross_protocols(list(claims["method_minus_full"]))
        lines.append(f"- The method (`{claims['method']}`) against full fine-tuning (`{claims['full']}`): rank-1 "
                     + ", ".join(f"{p} {fmt_claim(claims['method_minus_full'][p], sign=True)} "
                                 f"({fmt_claim(claims['method_over_full'][p], 100, 0, unit=' %')} of it)" for p in cross)
                     + (f"; VIS {fmt_claim(claims['method_minus_full'][VIS], sign=True)}"
                        if VIS in claims["method_minus_full"] else "") + ".")
    for run, effect in claims.get("distillation_effect", {}).items():
        lines.append(f"- Self-distillation in `{run}` (with minus without): rank-1 "
                     + ", ".join(f"{p} {fmt_claim(v, sign=True)}" for p, v in effect.items()) + ".")
    i = claims["intervals"]
    lines.append(f"- Brackets: 95 % {i['method']} ({i['resamples']} resamples of {i['identities']} identities). "
                 "A difference whose interval contains 0 is not established by this run.")
    return lines

"""The verdicts of the course notebooks: their comparisons said in sentences that follow the intervals.

A notebook that states a result should not build its sentences inline: the words ("keeps more VIS",
"level within the noise") must follow from the paired intervals, the same way every time, and a
student reading the cell should see one call, not fifty lines of string formatting.  Each function
here writes the paragraph of one notebook cell from the figures that cell computed; the words come
from :func:`hfr_tutorial.verdicts.say` (a difference is *established* when its interval excludes 0).

* :func:`comparison_lines` and :func:`oracle_verdict`: the comparison runs side by side;
* :func:`forgetting_verdict`: freezing and self-distillation separated, on VIS rank-1;
* :func:`policy_study_verdict`: which layers to tune, from ``benchmarks/policy_study.py``'s record;
* :func:`anchor_verdict` and :func:`lambda_sweep_verdict`: what distillation and its weight do (notebook 04);
* :func:`data_efficiency_verdict`: how the method falls with less paired data, from
  ``benchmarks/data_efficiency.py``'s record.

Taught in: ``notebooks/05_full_training.ipynb`` and ``notebooks/04_self_distillation.ipynb``
(:func:`anchor_verdict`, :func:`lambda_sweep_verdict`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .runs import get_run, role_of
from .uncertainty import percentile_interval
from .verdicts import direction, established, fmt_claim, fmt_difference, say, value_of

if TYPE_CHECKING:
    from .metrics import PairedBootstrap

VIS = "vis->vis"
CROSS = ("nir->vis", "thermal->vis")
_SENSOR = {"nir->vis": "NIR", "thermal->vis": "thermal"}


def _pct(claim: Any) -> str:
    """A share in percent, no decimals, with its interval: ``73 % [68, 79]``."""
    return fmt_claim(claim, scale=100, digits=0, unit=" %")


def _recovered(entry: Mapping[str, Any]) -> str:
    return " and ".join(f"{_pct(entry['gap_recovered'][p])} of the {_SENSOR[p]} gap" for p in CROSS)


def _policy(name: str) -> str | None:
    settings = get_run(name).settings
    return settings.policy if settings is not None else None


def comparison_lines(claims: Mapping[str, Any], trainable: Mapping[str, float]) -> list[str]:
    """The comparison runs' figures, one sentence each, every figure with its paired 95 % interval.

    ``claims`` is :func:`hfr_tutorial.experiment.summary.fold_claims` of the baseline and the
    registered runs (method, full fine-tuning, the other loss, LayerNorm only, the ablations and the
    oracle, by their roles in :mod:`hfr_tutorial.runs`); ``trainable`` maps a run to the percent of
    the weights it trains.  Used by ``notebooks/05_full_training.ipynb`` (section 4).
    """
    runs = claims["runs"]
    method, full = claims["method"], claims["full"]
    method_policy = _policy(method)
    others = [n for n in runs if n != method and get_run(n).role != "ablation" and _policy(n) == method_policy]
    layernorm = [n for n in runs if get_run(n).adapts and _policy(n) == "layernorm"]
    oracle = next((n for n, e in runs.items() if "cross_over_vis" in e), None)
    vis_change = {n: fmt_claim(e["vis_change"], sign=True) for n, e in runs.items() if "vis_change" in e}
    lines = ["Figures with their 95 % paired intervals over eval identities, [low, high].",
             f"Baseline: VIS rank-1 {claims['start_vis_rank1']:.3f}; gaps "
             + ", ".join(f"{p} {fmt_claim(g)}" for p, g in claims["start_gap"].items()) + ".",
             f"The method ({method}) trains {trainable[method]:.2f} % of the weights, recovers "
             f"{_recovered(runs[method])}, and changes VIS rank-1 by {vis_change[method]}."]
    lines += [f"The other loss ({n}): {_recovered(runs[n])}; VIS change {vis_change[n]}." for n in others]
    lines += [f"LayerNorm only ({trainable[n]:.2f} %): {_recovered(runs[n])}; VIS change {vis_change[n]}."
              for n in layernorm]
    lines.append(f"Full fine-tuning ({trainable[full]:.0f} %): {_recovered(runs[full])}; "
                 f"VIS change {vis_change[full]}.")
    lines.append("The method's cross-modal rank-1 over full fine-tuning's: "
                 + ", ".join(f"{_pct(claims['method_over_full'][p])} ({p})" for p in CROSS) + ".")
    for run, effect in claims.get("distillation_effect", {}).items():
        lines.append(f"Distillation in {run} (with minus without): "
                     + ", ".join(f"{p} {fmt_claim(v, sign=True)}" for p, v in effect.items()) + ".")
    if oracle is not None:
        lines.append("The oracle's cross-modal rank-1 is "
                     + ", ".join(f"{_pct(v)} ({p})" for p, v in runs[oracle]["cross_over_vis"].items())
                     + " of its own VIS rank-1.")
    return lines


def oracle_verdict(claims: Mapping[str, Any], boot: PairedBootstrap, seconds: Mapping[str, float],
                   oracle: str | None = None) -> str:
    """The paragraph "What the oracle says" (Markdown): the method against the joint oracle, with intervals.

    The method's rank-1 minus the oracle's per cross-modal protocol, the oracle's VIS change and its
    thermal and NIR shares of its own VIS rank-1, both training times (``seconds`` by run name), and
    whether thermal stays the harder sensor for the method (its thermal minus NIR rank-1 on the same
    resamples of ``boot``).  ``oracle``: the oracle's run name (default: the registered one).  Used by
    ``notebooks/05_full_training.ipynb`` (section 4).
    """
    method = claims["method"]
    oracle = oracle or role_of("oracle")
    runs = claims["runs"]
    share = runs[oracle]["cross_over_vis"]
    vs_oracle = {p: boot.difference(method, oracle, p) for p in CROSS}
    delta = boot.samples[method]["thermal->vis"]["rank1"] - boot.samples[method]["nir->vis"]["rank1"]
    hard = {"value": boot.point[method]["thermal->vis"]["rank1"] - boot.point[method]["nir->vis"]["rank1"],
            "interval": list(percentile_interval(delta, boot.level))}
    return ("**What the oracle says.** The method's rank-1 minus the oracle's: "
            + "; ".join(f"{p} {fmt_difference(d)} "
                        f"({say(d, 'the method is ahead', 'the oracle is ahead', 'level within the noise')})"
                        for p, d in vs_oracle.items())
            + ". The oracle's VIS rank-1 differs from the baseline's by "
            f"{fmt_claim(runs[oracle]['vis_change'], sign=True)}, and its thermal share of its own VIS rank-1 is "
            f"{_pct(share['thermal->vis'])} against "
            f"{_pct(share['nir->vis'])} for NIR. Training took {seconds[method]:.0f} s for the method (from the "
            f"converged baseline) and {seconds[oracle]:.0f} s for the oracle (from scratch). For the method, "
            f"thermal→VIS minus NIR→VIS rank-1 is {fmt_difference(hard)}: thermal "
            + say(hard, "is the easier sensor here.", "stays the harder sensor.",
                  "and NIR are level within the noise."))


def forgetting_verdict(boot: PairedBootstrap, method: str, full: str, without: Mapping[str, str]) -> str:
    """Does freezing limit forgetting, does distillation, or both? One paragraph (Markdown) on VIS rank-1.

    ``without`` maps each run to its ablation without self-distillation (same policy, loss, rate and
    epochs).  Freezing is judged on the two runs without distillation (``method``'s policy minus full
    fine-tuning), distillation within each policy (with minus without); a difference counts only when
    its paired interval in ``boot`` excludes 0.  The method's policy is the first part of its run name
    (``paper/infonce+distill``: ``paper``).  Used by ``notebooks/05_full_training.ipynb`` (section 5).
    """
    frozen, free = without[method], without[full]
    freeze = boot.difference(frozen, free, VIS)
    text = [say(freeze,
                f"Without distillation, freezing does limit forgetting here: `{frozen}` keeps "
                f"{fmt_difference(freeze)} more VIS rank-1 than `{free}`.",
                f"Without distillation, the frozen policy keeps *less* VIS rank-1 than full fine-tuning "
                f"({fmt_difference(freeze)}): here freezing does not limit forgetting.",
                f"Without distillation, freezing makes no clear difference to VIS: `{frozen}` minus `{free}` is "
                f"{fmt_difference(freeze)}, an interval that holds 0.")]
    distill_helps = False
    for words, run in ((f"the `{method.split('/')[0]}` policy", method), ("full fine-tuning", full)):
        d = boot.difference(run, without[run], VIS)
        distill_helps |= established(d) and value_of(d) > 0
        text.append(f"For {words}, distillation "
                    f"{say(d, 'keeps more VIS', 'keeps less VIS', 'makes no clear difference to VIS')} "
                    f"({fmt_difference(d)}).")
    freeze_helps = established(freeze) and value_of(freeze) > 0
    saved = "what freezing can be credited with here is the memory and storage it saves (notebook 02, section 4)."
    text.append({(True, True): "Both freezing and distillation help keep VIS on this data.",
                 (True, False): "What keeps VIS here is freezing, not distillation.",
                 (False, True): "What keeps VIS here is distillation, not freezing: " + saved,
                 (False, False): "Neither makes a clear difference to VIS on this data: " + saved}[freeze_helps,
                                                                                                   distill_helps])
    return " ".join(text)


READINGS = ("paper", "layernorm+stem+convs012", "layernorm+stem+stages012")
"""The three readings of the paper's "which layers" that the policy study trains."""


def policy_study_verdict(study: Mapping[str, Any], n_eval_identities: int) -> str:
    """What the policy study shows (Markdown): the readings of the paper on dev and eval, and the automatic choice.

    ``study`` is ``docs/results/policy_study/policy_study.json`` (``benchmarks/policy_study.py``);
    the automatic choice against ``paper`` is judged by its paired intervals (``auto_minus_paper``:
    better, worse, or no different per protocol).  Used by ``notebooks/05_full_training.ipynb`` (section 6).
    """
    s = study["policies"]
    auto_label = next(k for k in s if k.startswith("auto"))
    d = study["auto_minus_paper"]
    best = max(READINGS, key=lambda k: s[k]["dev"]["score"])
    spread = max(s[k]["dev"]["score"] for k in READINGS) - min(s[k]["dev"]["score"] for k in READINGS)
    words = [f"{say(v, 'better', 'worse', 'no different')} on {p}" for p, v in d.items()]
    verdict = (", ".join(words[:-1]) + " and " + words[-1]
               + " than `paper` (an interval that excludes 0 tells them apart)")
    order = "too close for 50 dev identities to separate them" if spread < 0.01 else "a clear order"
    auto = {p: fmt_difference(d[p]) for p in (VIS, *CROSS)}
    rec = {k: {p: 100 * s[k]["gap_recovered"][p] for p in CROSS} for k in (best, "paper", "full")}
    return f"""
**What the study shows.** Of the three readings of the paper, `{best}` scores highest on dev
({s[best]['dev']['score']:.3f} mean dev rank-1, against {s['paper']['dev']['score']:.3f} for `paper`); the three
lie within {spread:.3f} of each other on dev, {order}. On
eval `{best}` recovers {rec[best]['nir->vis']:.0f} % of the NIR gap and
{rec[best]['thermal->vis']:.0f} % of the thermal gap with {s[best]['trainable']:,}
trainable parameters; `paper` recovers {rec['paper']['nir->vis']:.0f} % and
{rec['paper']['thermal->vis']:.0f} % with {s['paper']['trainable']:,}, and `full`
{rec['full']['nir->vis']:.0f} % and {rec['full']['thermal->vis']:.0f} %
with all {s['full']['trainable']:,}.

**The automatic choice** (same budget as `paper`, {s[auto_label]['trainable']:,} parameters) minus
`paper`, eval rank-1 with paired 95 % intervals: VIS {auto['vis->vis']}, NIR {auto['nir->vis']},
thermal {auto['thermal->vis']}. So on these {n_eval_identities} eval identities the
automatic choice is {verdict}. On dev it scored {s[auto_label]['dev']['score']:.3f}, against
{s['paper']['dev']['score']:.3f} for `paper`: a criterion measured before training (how hard the loss
pulls on a group at the start) is not the same as what a group can do after eight epochs of training.

**What the published text settles, and what it does not.** It settles the *kind* of parameters
(normalisation and early convolutions, not the deep attention blocks) and that the budget is small.
It does not settle the exact set: the two literal readings differ tenfold in size. On this stand-in
the larger sets buy more of the gap on eval at a growing parameter cost, and dev says how sure that
order is; on real NIR or thermal data the choice should be made the same way, on dev identities of
that data.
"""


_MODEL_NAMES = {"method": "The method", "full": "Full fine-tuning", "oracle": "The oracle"}


def data_efficiency_verdict(efficiency: Mapping[str, Any]) -> str:
    """How each model falls with less paired data, in Markdown bullets, from the data-efficiency record.

    ``efficiency`` is ``docs/results/data_efficiency/data_efficiency.json``
    (``benchmarks/data_efficiency.py``).  Per model: its mean rank-1 with the fewest and with every
    identity, and the fewest identities at which it has 90 % of its gain; per size, the method minus
    full fine-tuning with whether it has the same sign on every seed (the seeds are the evidence, not
    the mean); and per model, one pair against six pairs per identity.  Used by
    ``notebooks/05_full_training.ipynb`` (section 7).
    """
    table, points, seeds = efficiency["summary"]["table"], efficiency["points"], efficiency["seeds"]

    def cell(model: str, n: int, k: int, protocol: str) -> Mapping[str, Any]:
        return next(s for s in table if s["model"] == model and s["n_identities"] == n
                    and s["pairs_per_identity"] == k and s["protocol"] == protocol)

    def per_seed(model: str, n: int, k: int, protocol: str) -> dict[int, float]:
        return {p["seed"]: p["rank1"][protocol] for p in points
                if p["model"] == model and p["n_identities"] == n and p["pairs_per_identity"] == k}

    top, k_all = max(efficiency["identities"]), max(efficiency["pairs"])
    fewest, at, k_one = min(efficiency["identities"]), efficiency["pairs_at"], min(efficiency["pairs"])
    lines = []
    for model, flat in efficiency["summary"]["flattens"].items():
        parts = []
        for proto, f in flat.items():
            lo, hi = cell(model, fewest, k_all, proto), cell(model, top, k_all, proto)
            where = (f"it has 90 % of its gain with {f['identities']} identities" if f["identities"] is not None
                     else "it gains nothing over the baseline")
            parts.append(f"{proto} {lo['mean']:.3f} with {fewest} identities, {hi['mean']:.3f} with {top} "
                         f"({where})")
        lines.append(f"- {_MODEL_NAMES[model]}: " + "; ".join(parts) + ".")
    if {"method", "full"} <= set(efficiency["models"]):
        for n in efficiency["identities"]:
            cells = []
            for proto in (VIS, *CROSS):
                a, b = per_seed("method", n, k_all, proto), per_seed("full", n, k_all, proto)
                diffs = np.array([a[s] - b[s] for s in seeds])
                sign = ("ahead on every seed" if (diffs > 0).all() else "behind on every seed" if (diffs < 0).all()
                        else "not the same sign on every seed")
                cells.append(f"{proto} {diffs.mean():+.3f} ({sign})")
            lines.append(f"- {n} identities, the method minus full fine-tuning: " + "; ".join(cells) + ".")
    for model in efficiency["models"]:
        one, many = (cell(model, at, k, "thermal->vis") for k in (k_one, k_all))
        lines.append(f"- {_MODEL_NAMES[model]}, {at} identities, thermal->vis: {one['mean']:.3f} [{one['low']:.3f}, "
                     f"{one['high']:.3f}] with {k_one} pair(s) per identity, {many['mean']:.3f} [{many['low']:.3f}, "
                     f"{many['high']:.3f}] with {k_all}.")
    return "\n".join(lines)


def anchor_verdict(boot: PairedBootstrap, *, baseline: str, without: str, with_: str) -> str:
    """What the anchor does (Markdown): VIS and cross-modal rank-1 without and with distillation, paired intervals.

    ``boot`` holds the three models under the names ``baseline``, ``without`` (contrastive only) and
    ``with_`` (contrastive + distillation).  Taught in ``notebooks/04_self_distillation.ipynb``, section 3.
    """
    vis_without = boot.difference(without, baseline, VIS)
    vis_with = boot.difference(with_, baseline, VIS)
    anchor = {p: boot.difference(with_, without, p) for p in (VIS, *CROSS)}
    vis_word = say(anchor[VIS], "keeps more VIS accuracy", "keeps less VIS accuracy", "makes no clear difference to VIS")
    signs = {direction(anchor[p]) for p in CROSS}
    names = {"nir->vis": "NIR→VIS", "thermal->vis": "thermal→VIS"}
    cross_word = ("helps the cross-modal side too" if signs == {1} else
                  "costs cross-modal accuracy" if signs == {-1} else
                  "makes no clear difference to the cross-modal side" if signs == {0} else
                  " and ".join(say(anchor[p], f"raises {names[p]} (an interval above 0)",
                                   f"lowers {names[p]} (an interval below 0)",
                                   f"leaves {names[p]} within the noise (an interval that holds 0)") for p in CROSS))
    return (f"**What the anchor does here** (change of rank-1, 95 % paired interval over identities). Against the "
            f"baseline, VIS→VIS changes by {fmt_difference(vis_without)} without distillation and by "
            f"{fmt_difference(vis_with)} with it: distillation {vis_word} ({fmt_difference(anchor[VIS])}). On the "
            f"cross-modal side it changes NIR→VIS by {fmt_difference(anchor['nir->vis'])} and thermal→VIS by "
            f"{fmt_difference(anchor['thermal->vis'])}: it {cross_word}.")


def lambda_sweep_verdict(sweep: Any, *, baseline_dev: Mapping[str, float], method_dev: Mapping[str, float],
                         method_lambda: float, method_epochs: int, sweep_epochs: int, n_vis_probes: int) -> str:
    """What the λ sweep shows (Markdown), from its table of dev rank-1 and the dev rule's choice.

    ``sweep`` is a DataFrame indexed by λ with the columns ``"dev vis->vis"``, ``"dev nir->vis"``,
    ``"dev thermal->vis"`` and ``"dev score"`` (the mean of the three: the dev rule; ties go to the
    smaller λ).  A change of VIS rank-1 of at most one dev probe (``1 / n_vis_probes``) counts as none.
    Taught in ``notebooks/04_self_distillation.ipynb``, section 6.
    """
    tol = 1.5 / n_vis_probes  # one probe is no change, two are
    vis_curve = sweep["dev vis->vis"]
    cross = sweep[["dev nir->vis", "dev thermal->vis"]].mean(axis=1)
    lo, hi = vis_curve.index[0], vis_curve.index[-1]
    change = vis_curve[hi] - vis_curve[lo]
    steps = np.diff(vis_curve.to_numpy())
    trend = "rises" if change > tol else "falls" if change < -tol else f"stays within one dev probe ({1 / n_vis_probes:.3f})"
    if trend in ("rises", "falls"):
        trend += " steadily" if (np.all(steps >= -tol) or np.all(steps <= tol)) else ", though not at every step"
    chosen = sweep["dev score"].idxmax()
    method_score = float(np.mean([method_dev[p] for p in (VIS, *CROSS)]))
    base_cross = float(np.mean([baseline_dev[p] for p in CROSS]))
    same = (", the same." if chosen == method_lambda else
            f", which scores {sweep.loc[method_lambda, 'dev score']:.3f} here.")
    return (f"**What this sweep shows (dev identities, {sweep_epochs} epochs per point).** From λ = {lo:g} to "
            f"λ = {hi:g}, dev VIS rank-1 {trend}: {vis_curve[lo]:.3f} → {vis_curve[hi]:.3f} (baseline "
            f"{baseline_dev[VIS]:.3f}). The mean dev NIR/thermal rank-1 is highest at λ = {cross.idxmax():g} "
            f"({cross.max():.3f}) and is {cross[hi]:.3f} at λ = {hi:g} (baseline {base_cross:.3f}). By the dev rule "
            f"(mean dev rank-1 over the three protocols) the sweep picks **λ = {chosen:g}** (score "
            f"{sweep.loc[chosen, 'dev score']:.3f}); the method uses λ = {method_lambda:g}{same} Separately, at its own "
            f"{method_epochs} epochs the method reaches dev rank-1 VIS {method_dev[VIS]:.3f}, NIR "
            f"{method_dev['nir->vis']:.3f}, thermal {method_dev['thermal->vis']:.3f} (score {method_score:.3f}): a "
            "longer budget, not a point of this sweep.")

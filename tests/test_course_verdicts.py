"""hfr_tutorial.course_verdicts: the notebooks' verdict sentences follow the intervals, not the point estimates."""
from __future__ import annotations

import numpy as np
import pytest

from hfr_tutorial.course_verdicts import (anchor_verdict, comparison_lines, data_efficiency_verdict, forgetting_verdict,
                                          lambda_sweep_verdict,
                                          oracle_verdict, policy_study_verdict)
from hfr_tutorial.metrics import PairedBootstrap
from hfr_tutorial.runs import FULL_RUN, METHOD_RUN, ORACLE_RUN

PROTOCOLS = ("vis->vis", "nir->vis", "thermal->vis")
N_BOOT = 201
WITHOUT = {METHOD_RUN: "paper/infonce", FULL_RUN: "full/infonce"}


def _boot(figures: dict[str, dict[str, tuple[float, float]]]) -> PairedBootstrap:
    """A bootstrap by hand: ``{model: {protocol: (point, half-width)}}``; each resample is point + an even spread.

    Models share the same spread pattern, so a difference's interval is the point difference plus or minus the
    difference of the half-widths: equal widths give an interval of width 0, unequal ones a wider interval.
    """
    ramp = np.linspace(-1.0, 1.0, N_BOOT)
    samples = {m: {p: {"rank1": v + w * ramp} for p, (v, w) in by.items()} for m, by in figures.items()}
    point = {m: {p: {"rank1": v} for p, (v, _) in by.items()} for m, by in figures.items()}
    return PairedBootstrap(samples, point, N_BOOT, 0.95, 50, ("rank1",))


def _claim(value: float, lo: float, hi: float) -> dict:
    return {"value": value, "interval": [lo, hi]}


# ---------------------------------------------------------------------------------------------
# forgetting_verdict (notebook 05, section 5)
# ---------------------------------------------------------------------------------------------
def _forgetting_boot(frozen_vis: float, free_vis: float, width: float = 0.0) -> PairedBootstrap:
    vis = {METHOD_RUN: 0.97, FULL_RUN: 0.96, "paper/infonce": frozen_vis, "full/infonce": free_vis}
    return _boot({m: {"vis->vis": (v, width if m == "paper/infonce" else 0.0)} for m, v in vis.items()})


def test_forgetting_an_interval_that_excludes_zero_is_established():
    text = forgetting_verdict(_forgetting_boot(0.92, 0.85), METHOD_RUN, FULL_RUN, WITHOUT)
    assert "freezing does limit forgetting here: `paper/infonce` keeps +0.070" in text
    assert "For the `paper` policy, distillation keeps more VIS (+0.050 [+0.050, +0.050])" in text
    assert "For full fine-tuning, distillation keeps more VIS (+0.110" in text
    assert text.endswith("Both freezing and distillation help keep VIS on this data.")


def test_forgetting_an_interval_that_holds_zero_is_not_established():
    # paper/infonce 0.02 above full/infonce, but resampled over +-0.05: the interval holds 0
    text = forgetting_verdict(_forgetting_boot(0.87, 0.85, width=0.05), METHOD_RUN, FULL_RUN, WITHOUT)
    assert "freezing makes no clear difference to VIS" in text and "an interval that holds 0" in text
    assert "does limit forgetting" not in text
    assert text.endswith("What keeps VIS here is distillation, not freezing: what freezing can be credited with "
                         "here is the memory and storage it saves (notebook 02, section 4).")


def test_forgetting_less_vis_with_freezing_says_so():
    text = forgetting_verdict(_forgetting_boot(0.80, 0.85), METHOD_RUN, FULL_RUN, WITHOUT)
    assert "the frozen policy keeps *less* VIS rank-1 than full fine-tuning (-0.050" in text


# ---------------------------------------------------------------------------------------------
# comparison_lines and oracle_verdict (notebook 05, section 4)
# ---------------------------------------------------------------------------------------------
def _claims() -> dict:
    gap = {"nir->vis": _claim(0.73, 0.68, 0.79), "thermal->vis": _claim(0.80, 0.76, 0.84)}
    entry = {"gap_recovered": gap, "vis_change": _claim(0.008, -0.009, 0.025)}
    return {
        "start": "baseline", "method": METHOD_RUN, "full": FULL_RUN, "start_vis_rank1": 0.963,
        "start_gap": {"nir->vis": _claim(0.652, 0.608, 0.694), "thermal->vis": _claim(0.951, 0.930, 0.969)},
        "runs": {METHOD_RUN: entry, "paper/pairwise+distill": entry, "paper/infonce": entry,
                 "layernorm/infonce+distill": entry, FULL_RUN: entry, "full/infonce": entry,
                 ORACLE_RUN: {"vis_change": _claim(-0.053, -0.079, -0.026),
                              "cross_over_vis": {"nir->vis": _claim(0.93, 0.89, 0.96),
                                                 "thermal->vis": _claim(0.77, 0.73, 0.82)}}},
        "method_over_full": {p: _claim(0.92, 0.88, 0.95) for p in PROTOCOLS},
        "distillation_effect": {METHOD_RUN: {"vis->vis": _claim(0.057, 0.035, 0.082)}},
    }


def test_comparison_lines_name_each_run_by_its_role():
    trainable = {METHOD_RUN: 1.16, "layernorm/infonce+distill": 0.27, FULL_RUN: 100.0}
    lines = comparison_lines(_claims(), trainable)
    assert lines[0].startswith("Figures with their 95 % paired intervals")
    assert lines[1] == "Baseline: VIS rank-1 0.963; gaps nir->vis 0.652 [0.608, 0.694], thermal->vis 0.951 [0.930, 0.969]."
    assert lines[2] == (f"The method ({METHOD_RUN}) trains 1.16 % of the weights, recovers 73 % [68, 79] of the NIR gap "
                        "and 80 % [76, 84] of the thermal gap, and changes VIS rank-1 by +0.008 [-0.009, +0.025].")
    text = "\n".join(lines)
    assert "The other loss (paper/pairwise+distill)" in text and "The other loss (paper/infonce)" not in text
    assert "LayerNorm only (0.27 %)" in text and "Full fine-tuning (100 %)" in text
    assert f"Distillation in {METHOD_RUN} (with minus without): vis->vis +0.057 [+0.035, +0.082]." in text
    assert lines[-1] == "The oracle's cross-modal rank-1 is 93 % [89, 96] (nir->vis), 77 % [73, 82] (thermal->vis) of its own VIS rank-1."


@pytest.mark.parametrize("method_thermal, words", [(0.80, ("the method is ahead", "is the easier sensor here.")),
                                                   (0.62, ("the oracle is ahead", "stays the harder sensor."))])
def test_oracle_verdict_follows_the_intervals(method_thermal, words):
    boot = _boot({METHOD_RUN: {"nir->vis": (0.70, 0.0), "thermal->vis": (method_thermal, 0.0)},
                  ORACLE_RUN: {"nir->vis": (0.70, 0.05), "thermal->vis": (0.70, 0.0)}})
    text = oracle_verdict(_claims(), boot, seconds={METHOD_RUN: 82.0, ORACLE_RUN: 189.4})
    assert text.startswith("**What the oracle says.**")
    # NIR: equal points, the oracle resampled over +-0.05: the interval holds 0
    assert "nir->vis +0.000 [-0.047, +0.047] (level within the noise)" in text
    assert f"thermal->vis {method_thermal - 0.70:+.3f}" in text and words[0] in text
    assert text.endswith(words[1])
    assert "Training took 82 s for the method (from the converged baseline) and 189 s for the oracle" in text


# ---------------------------------------------------------------------------------------------
# policy_study_verdict and data_efficiency_verdict (notebook 05, sections 6 and 7)
# ---------------------------------------------------------------------------------------------
def _policy(trainable: int, score: float, nir: float, thermal: float) -> dict:
    return {"trainable": trainable, "dev": {"score": score}, "gap_recovered": {"nir->vis": nir, "thermal->vis": thermal}}


def test_policy_study_verdict_judges_the_automatic_choice_by_its_intervals():
    study = {"policies": {"paper": _policy(14488, 0.939, 0.75, 0.80),
                          "layernorm+stem+convs012": _policy(53832, 0.938, 0.80, 0.82),
                          "layernorm+stem+stages012": _policy(516536, 0.943, 0.87, 0.85),
                          "full": _policy(1244744, 0.931, 0.84, 0.82),
                          "auto (Fisher per parameter, paper's budget)": _policy(12988, 0.930, 0.7, 0.7)},
             "auto_minus_paper": {"vis->vis": _claim(-0.005, -0.019, 0.007),
                                  "nir->vis": _claim(0.030, 0.010, 0.050),
                                  "thermal->vis": _claim(-0.067, -0.102, -0.033)}}
    text = policy_study_verdict(study, 200)
    assert "`layernorm+stem+stages012` scores highest on dev" in text
    assert "too close for 50 dev identities to separate them" in text  # a spread of 0.005 on dev
    assert ("automatic choice is no different on vis->vis, better on nir->vis and worse on thermal->vis than `paper`"
            in text)
    assert "on these 200 eval identities" in text and "12,988 parameters" in text


def test_data_efficiency_verdict_reads_the_seeds_not_the_mean():
    seeds, sizes = [0, 1, 2], [10, 50]
    points, table = [], []
    for model, base in (("method", 0.5), ("full", 0.4)):
        for n in sizes:
            for k in (1, 6):
                for s in seeds:
                    # thermal: the method ahead on every seed; nir: ahead on two seeds, behind on one
                    nir = base + (0.1 if model == "method" and s < 2 else 0.0) + (0.15 if model == "full" and s == 2 else 0)
                    points.append({"model": model, "seed": s, "n_identities": n, "pairs_per_identity": k,
                                   "rank1": {"vis->vis": 0.9, "nir->vis": nir, "thermal->vis": base + n / 1000}})
                for p in PROTOCOLS:
                    table.append({"model": model, "n_identities": n, "pairs_per_identity": k, "protocol": p,
                                  "mean": base + n / 1000, "low": base, "high": base + 0.1})
    record = {"identities": sizes, "pairs": [1, 6], "pairs_at": 50, "seeds": seeds, "models": ["method", "full"],
              "points": points, "summary": {"table": table, "flattens": {
                  "method": {"thermal->vis": {"identities": 10}}, "full": {"thermal->vis": {"identities": None}}}}}
    text = data_efficiency_verdict(record)
    lines = text.splitlines()
    assert lines[0] == "- The method: thermal->vis 0.510 with 10 identities, 0.550 with 50 (it has 90 % of its gain with 10 identities)."
    assert "(it gains nothing over the baseline)" in lines[1]
    assert "- 10 identities, the method minus full fine-tuning: vis->vis +0.000 (not the same sign on every seed); " \
           "nir->vis +0.117 (not the same sign on every seed); thermal->vis +0.100 (ahead on every seed)." in lines
    assert lines[-1] == "- Full fine-tuning, 50 identities, thermal->vis: 0.450 [0.400, 0.500] with 1 pair(s) per identity, " \
                        "0.450 [0.400, 0.500] with 6."


# ---------------------------------------------------------------------------------------------
# anchor_verdict and lambda_sweep_verdict (notebook 04)
# ---------------------------------------------------------------------------------------------
def _anchor_boot(with_vis: float, with_cross: tuple[float, float], width: float = 0.0) -> PairedBootstrap:
    figures = {"baseline": {"vis->vis": 0.96, "nir->vis": 0.31, "thermal->vis": 0.01},
               "without": {"vis->vis": 0.91, "nir->vis": 0.72, "thermal->vis": 0.74},
               "with": {"vis->vis": with_vis, "nir->vis": with_cross[0], "thermal->vis": with_cross[1]}}
    return _boot({m: {p: (v, width if m == "with" else 0.0) for p, v in by.items()} for m, by in figures.items()})


def test_anchor_verdict_follows_the_intervals():
    text = anchor_verdict(_anchor_boot(0.97, (0.79, 0.78)), baseline="baseline", without="without", with_="with")
    assert "distillation keeps more VIS accuracy (+0.060 [+0.060, +0.060])" in text
    assert text.endswith("it helps the cross-modal side too.")
    wide = anchor_verdict(_anchor_boot(0.93, (0.74, 0.76), width=0.05), baseline="baseline", without="without",
                          with_="with")
    assert "makes no clear difference to VIS" in wide and text != wide
    assert wide.endswith("it makes no clear difference to the cross-modal side.")
    mixed = anchor_verdict(_anchor_boot(0.97, (0.79, 0.70)), baseline="baseline", without="without", with_="with")
    assert mixed.endswith("it raises NIR→VIS (an interval above 0) and lowers thermal→VIS (an interval below 0).")
    one_clear = anchor_verdict(_anchor_boot(0.97, (0.79, 0.74), width=0.0), baseline="baseline", without="without",
                               with_="with")
    assert one_clear.endswith("it raises NIR→VIS (an interval above 0) and leaves thermal→VIS within the noise "
                              "(an interval that holds 0).")


def _sweep(vis: list[float], nir: list[float], thermal: list[float]):
    import pandas as pd

    table = pd.DataFrame({"dev vis->vis": vis, "dev nir->vis": nir, "dev thermal->vis": thermal},
                         index=pd.Index([0.0, 3.0, 30.0], name="lambda"))
    table["dev score"] = table.mean(axis=1)
    return table


def test_lambda_sweep_verdict_picks_by_the_dev_rule_and_reads_the_vis_trend():
    base = {"vis->vis": 0.98, "nir->vis": 0.44, "thermal->vis": 0.04}
    method = {"vis->vis": 0.99, "nir->vis": 0.91, "thermal->vis": 0.91}
    kwargs = dict(baseline_dev=base, method_dev=method, method_lambda=3.0, method_epochs=8, sweep_epochs=2,
                  n_vis_probes=100)
    text = lambda_sweep_verdict(_sweep([0.94, 0.97, 0.99], [0.68, 0.74, 0.65], [0.65, 0.57, 0.30]), **kwargs)
    assert "dev VIS rank-1 rises steadily: 0.940 → 0.990" in text
    dip = lambda_sweep_verdict(_sweep([0.94, 0.92, 0.99], [0.68, 0.74, 0.65], [0.65, 0.57, 0.30]), **kwargs)
    assert "rises, though not at every step: 0.940" in dip  # a dip of two probes is a step down
    assert "picks **λ = 3**" in text and "the method uses λ = 3, the same." in text
    flat = lambda_sweep_verdict(_sweep([0.95, 0.955, 0.96], [0.9, 0.6, 0.5], [0.9, 0.6, 0.5]), **kwargs)
    assert "stays within one dev probe (0.010)" in flat  # one probe of 100 is no trend
    assert "picks **λ = 0**" in flat and "which scores" in flat

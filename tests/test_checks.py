"""hfr_tutorial.checks: each self-check passes the right answer and fails the typical wrong ones, naming them.

Everything here is tiny and synthetic (a few vectors, a small conv net, a miniature EdgeNeXt-shaped
module), CPU only, no training: the whole file runs in a few seconds.  The attacks on the exercises (a
pasted printed number, a library call, a formula right for the shown input only) are in
``tests/test_exercise_attacks.py``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hfr_tutorial import checks
from hfr_tutorial.checks.verification import _hand_eer
from hfr_tutorial.evaluate import apply_threshold, l2_normalize, rank_k, threshold_at_far, verification_metrics
from hfr_tutorial.losses import CrossModalInfoNCE, SelfDistillationLoss
from hfr_tutorial.models import images_to_tensor
from hfr_tutorial.tuning import apply_policy, policy_parameter_names


@pytest.fixture(autouse=True)
def _lenient(monkeypatch):
    """The checks' default mode (print and return False); strict mode has its own test."""
    monkeypatch.delenv("HFR_STRICT_CHECKS", raising=False)


# --------------------------------------------------------------------------------------------
# Verdicts: a bool, and on failure the problem and a hint, never the expected value
# --------------------------------------------------------------------------------------------
def test_a_failed_check_prints_problem_and_hint_not_the_reference(capsys):
    assert checks.check_close(2.0, 1.3, "x") is False
    out = capsys.readouterr().out
    assert "Not yet: x" in out and "problem:" in out and "hint:" in out
    assert "1.3" not in out and "expected" not in out
    assert checks.check_close(1.3, 1.3, "x") is True
    assert capsys.readouterr().out.startswith("Correct: x")


def test_strict_mode_raises_on_a_wrong_answer_only(monkeypatch):
    monkeypatch.setenv("HFR_STRICT_CHECKS", "1")
    assert checks.check_close(1.0, 1.0, "x") is True
    with pytest.raises(checks.CheckFailed, match="Not yet"):
        checks.check_close(2.0, 1.0, "x")
    with pytest.raises(checks.CheckFailed):
        checks.check_infonce_function(lambda v, o, t: 0.0)
    with pytest.raises(checks.CheckFailed):
        checks.check_prediction("maybe", choices=("yes", "no"))
    with pytest.raises(checks.CheckFailed):
        checks.check_answer("too short")
    assert issubclass(checks.CheckFailed, AssertionError)


# --------------------------------------------------------------------------------------------
# Numbers and losses (notebooks 03, 04, 05, 08)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, hint", [(100.0, "percent"), (0.01, "fraction"), (2.0, "2x"), (0.5, "half"),
                                         (-1.0, "sign"), (None, "None"), (np.ones(3), "reduce"),
                                         (1.05, "slightly"), (0.3, "too small"), (40.0, "more than a factor 10")])
def test_check_close_names_the_usual_slip(capsys, value, hint):
    assert checks.check_close(value, 1.0, "share") is False
    assert hint in capsys.readouterr().out


def test_check_close_passes_float32_rounding_and_not_a_near_miss():
    assert checks.check_close(np.float32(math.log(7)), math.log(7)) is True
    assert checks.check_close(math.log(7) * (1 + 1e-3), math.log(7)) is False
    assert checks.check_close(1e-7, 0.0) is True and checks.check_close(1e-5, 0.0) is False


def test_check_loss_close_infonce_right_and_wrong():
    torch.manual_seed(0)
    vis, other, T = torch.randn(8, 16), torch.randn(8, 16), 0.1
    reference = CrossModalInfoNCE(temperature=T)(vis, other)
    s = F.normalize(other, dim=1) @ F.normalize(vis, dim=1).T / T
    other_to_vis = -(s.diag() - torch.logsumexp(s, dim=1))
    vis_to_other = -(s.diag() - torch.logsumexp(s, dim=0))
    assert checks.check_loss_close(0.5 * (other_to_vis.mean() + vis_to_other.mean()), reference) is True
    assert checks.check_loss_close(other_to_vis.mean(), reference) is False  # one direction only
    s1 = F.normalize(other, dim=1) @ F.normalize(vis, dim=1).T  # temperature forgotten
    no_t = 0.5 * (-(s1.diag() - torch.logsumexp(s1, 1)).mean() - (s1.diag() - torch.logsumexp(s1, 0)).mean())
    assert checks.check_loss_close(no_t, reference) is False
    assert checks.check_loss_close(other_to_vis, reference) is False  # not reduced to one number
    B = 8
    chance = CrossModalInfoNCE(temperature=T)(torch.ones(B, 8), torch.ones(B, 8))
    assert checks.check_loss_close(math.log(B), chance) is True
    assert checks.check_loss_close(math.log(B - 1), chance) is False


def test_check_loss_close_distillation_right_and_wrong():
    torch.manual_seed(1)
    student, teacher, lam = torch.randn(16, 32), torch.randn(16, 32), 10.0
    reference = SelfDistillationLoss(weight=lam, kind="cosine")(student, teacher)
    cos = (F.normalize(student, dim=1) * F.normalize(teacher, dim=1)).sum(dim=1)
    assert checks.check_loss_close(lam * (1 - cos).mean(), reference) is True
    assert checks.check_loss_close((1 - cos).mean(), reference) is False  # lambda forgotten
    raw_cos = (student * teacher).sum(dim=1)  # not normalised
    assert checks.check_loss_close(lam * (1 - raw_cos).mean(), reference) is False
    mse_ref = SelfDistillationLoss(weight=lam, kind="mse")(student, teacher)
    diff = F.normalize(student, dim=1) - F.normalize(teacher, dim=1)
    assert checks.check_loss_close(lam * (diff ** 2).mean(dim=1).mean(), mse_ref) is True
    assert checks.check_loss_close(lam * (diff ** 2).sum(dim=1).mean(), mse_ref) is False  # sum over D, not mean


def test_check_in_range():
    assert checks.check_in_range(0.5, 0.0, 1.0, "x") is True
    assert checks.check_in_range(1.5, 0.0, 1.0, "x") is False
    assert checks.check_in_range(float("nan"), 0.0, 1.0, "x") is False
    with pytest.raises(ValueError, match="low"):
        checks.check_in_range(0.5, 1.0, 0.0, "x")


# --------------------------------------------------------------------------------------------
# Embeddings (notebook 01)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.GELU(), nn.Flatten(), nn.Linear(8 * 7 * 7, 32)).eval()


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(6, 16, 16, 3), dtype=np.uint8)


def _student_embed(net: nn.Module, x: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    with torch.no_grad():
        y = net(x)
    return F.normalize(y, dim=1) if normalise else y


def test_check_embeddings_right_answer(tiny_net, faces):
    mine = _student_embed(tiny_net, images_to_tensor(faces))
    assert checks.check_embeddings(mine, n=6, dim=32, model=tiny_net, images=faces) is True
    one_by_one = torch.cat([_student_embed(tiny_net, images_to_tensor(faces[i:i + 1])) for i in range(6)])
    assert checks.check_embeddings(one_by_one.numpy(), n=6, dim=32, model=tiny_net, images=faces) is True


@pytest.mark.parametrize("name, transform", [
    ("[0, 1]", lambda im: torch.as_tensor(im).permute(0, 3, 1, 2).float() / 255),
    ("0-255", lambda im: torch.as_tensor(im).permute(0, 3, 1, 2).float()),
    ("ImageNet", lambda im: (torch.as_tensor(im).permute(0, 3, 1, 2).float() / 255
                             - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                            / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)),
])
def test_check_embeddings_catches_a_wrong_input_normalisation(capsys, tiny_net, faces, name, transform):
    wrong = _student_embed(tiny_net, transform(faces))
    # The old check (shape and norm only) would have passed these: unit rows of the right shape.
    assert np.allclose(np.linalg.norm(wrong.numpy(), axis=1), 1, atol=1e-5)
    assert checks.check_embeddings(wrong, n=6, dim=32, model=tiny_net, images=faces) is False
    out = capsys.readouterr().out
    assert "Not yet" in out and name in out
    reference = _student_embed(tiny_net, images_to_tensor(faces)).numpy()
    assert checks.check_embeddings(wrong, n=6, dim=32, reference=reference) is False


def test_check_embeddings_catches_missing_l2_and_shape_and_other_images(capsys, tiny_net, faces):
    x = images_to_tensor(faces)
    assert checks.check_embeddings(_student_embed(tiny_net, x, normalise=False), n=6, dim=32) is False
    assert "L2-normalise" in capsys.readouterr().out
    by_column = _student_embed(tiny_net, x, normalise=False)
    assert checks.check_embeddings(F.normalize(by_column, dim=0), n=6, dim=32) is False
    assert checks.check_embeddings(_student_embed(tiny_net, x).T, n=6, dim=32) is False
    assert "transposed" in capsys.readouterr().out
    other = _student_embed(tiny_net, images_to_tensor(faces[::-1].copy()))
    assert checks.check_embeddings(other, n=6, dim=32, model=tiny_net, images=faces) is False
    assert checks.check_embeddings(None, n=6, dim=32) is False


def test_check_embeddings_without_reference_says_it_only_checked_shape(capsys, tiny_net, faces):
    assert checks.check_embeddings(_student_embed(tiny_net, images_to_tensor(faces)), n=6, dim=32) is True
    assert "only shape and norms" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Rank-1 (notebook 00)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ident():
    """Non-negative 'pixel' features with very different norms, so dot product != cosine ranking."""
    rng = np.random.default_rng(3)
    n_ids, per = 12, 3
    centres = rng.random((n_ids, 48))
    gallery = centres * rng.uniform(0.2, 5.0, size=(n_ids, 1))
    probe_labels = np.repeat(np.arange(n_ids), per)
    probes = np.clip(centres[probe_labels] + rng.normal(scale=0.35, size=(n_ids * per, 48)), 0, None)
    probes *= rng.uniform(0.2, 5.0, size=(len(probes), 1))
    gallery_labels = np.arange(n_ids)
    cosine = l2_normalize(probes) @ l2_normalize(gallery).T
    dot = probes @ gallery.T
    right = rank_k(cosine, gallery_labels, probe_labels, ks=(1,))[1]
    wrong = rank_k(dot, gallery_labels, probe_labels, ks=(1,))[1]
    assert abs(right - wrong) > 0.05, "fixture: the dot product must rank differently from the cosine"
    return dict(probes=probes, gallery=gallery, probe_labels=probe_labels, gallery_labels=gallery_labels,
                cosine=cosine, dot=dot, right=right, wrong=wrong)


def _r1(sim, d):
    return float(np.mean(d["gallery_labels"][sim.argmax(axis=1)] == d["probe_labels"]))


def test_check_rank1_right_answer(ident):
    d = ident
    unit_p = d["probes"] / np.linalg.norm(d["probes"], axis=1, keepdims=True)
    unit_g = d["gallery"] / np.linalg.norm(d["gallery"], axis=1, keepdims=True)
    sim = unit_p @ unit_g.T
    assert checks.check_rank1(_r1(sim, d), sim, d["gallery_labels"], d["probe_labels"],
                              probe_features=d["probes"], gallery_features=d["gallery"]) is True
    assert checks.check_rank1(_r1(sim, d), sim, d["gallery_labels"], d["probe_labels"], reference=d["right"]) is True


def test_check_rank1_is_not_fooled_by_a_wrong_cosine(capsys, ident):
    d = ident
    # The case: an unnormalised dot product and the rank-1 computed from it.
    value = _r1(d["dot"], d)
    assert checks.check_rank1(value, d["dot"], d["gallery_labels"], d["probe_labels"],
                              probe_features=d["probes"], gallery_features=d["gallery"]) is False
    assert "plain dot product" in capsys.readouterr().out
    assert checks.check_rank1(value, d["cosine"], d["gallery_labels"], d["probe_labels"], reference=d["right"]) is False
    # Even the old call (no independent reference) rejects a "similarity" outside [-1, 1].
    assert checks.check_rank1(value, d["dot"], d["gallery_labels"], d["probe_labels"]) is False


def test_check_rank1_catches_one_sided_normalisation_transpose_and_percent(capsys, ident):
    d = ident
    probes_only = l2_normalize(d["probes"]) @ d["gallery"].T
    assert checks.check_rank1(_r1(probes_only, d), probes_only, d["gallery_labels"], d["probe_labels"],
                              probe_features=d["probes"], gallery_features=d["gallery"]) is False
    assert "probe rows are normalised" in capsys.readouterr().out
    gallery_only = d["probes"] @ l2_normalize(d["gallery"]).T  # same argmax as the cosine, wrong scores
    assert _r1(gallery_only, d) == pytest.approx(d["right"])
    assert checks.check_rank1(d["right"], gallery_only, d["gallery_labels"], d["probe_labels"],
                              probe_features=d["probes"], gallery_features=d["gallery"]) is False
    assert checks.check_rank1(d["right"], d["cosine"].T, d["gallery_labels"], d["probe_labels"],
                              reference=d["right"]) is False
    assert "transposed" in capsys.readouterr().out
    assert checks.check_rank1(100 * d["right"], d["cosine"], d["gallery_labels"], d["probe_labels"],
                              reference=d["right"]) is False
    assert "percent" in capsys.readouterr().out
    one_probe_off = d["right"] + 1 / d["probe_labels"].size
    assert checks.check_rank1(one_probe_off, d["cosine"], d["gallery_labels"], d["probe_labels"],
                              reference=d["right"]) is False


def test_check_rank1_refuses_inconsistent_references(ident):
    d = ident
    with pytest.raises(ValueError, match="disagrees"):
        checks.check_rank1(d["right"], d["cosine"], d["gallery_labels"], d["probe_labels"],
                           probe_features=d["probes"], gallery_features=d["gallery"], reference=d["right"] + 0.2)
    with pytest.raises(ValueError, match="both"):
        checks.check_rank1(d["right"], d["cosine"], d["gallery_labels"], d["probe_labels"], probe_features=d["probes"])


# --------------------------------------------------------------------------------------------
# Tuning policies (notebooks 02, 05) on a miniature EdgeNeXt-shaped module (no timm, fast)
# --------------------------------------------------------------------------------------------
class _LayerNorm2d(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # channels at each position, as timm's
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), _LayerNorm2d(8))
        self.stages = nn.Sequential(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), _LayerNorm2d(8),
                                                  nn.Conv2d(8, 8, 1)),
                                    nn.Sequential(_LayerNorm2d(8), nn.Conv2d(8, 16, 2, stride=2)))
        self.head = nn.Sequential(nn.Flatten(), nn.LayerNorm(16), nn.Linear(16, 8))


class _Mini(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = _Backbone()


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("policy", ["layernorm", "layernorm+stem"])
def test_check_trainable_right_answer(policy):
    model = _Mini()
    expected = apply_policy(_Mini(), policy).trainable
    model.requires_grad_(False)
    for name, p in model.named_parameters():
        if name in policy_parameter_names(model, policy):
            p.requires_grad_(True)
    assert checks.check_trainable(model, expected, policy=policy) is True
    assert checks.check_trainable(model, expected) is True  # the old call still works


def test_check_trainable_wrong_answers(capsys):
    expected = apply_policy(_Mini(), "layernorm+stem").trainable
    everything = _Mini()
    assert checks.check_trainable(everything, expected, policy="layernorm+stem") is False
    assert "freeze the whole model first" in capsys.readouterr().out
    ln_only = _Mini()
    apply_policy(ln_only, "layernorm")
    assert checks.check_trainable(ln_only, expected, policy="layernorm+stem") is False
    assert "model.stem.0.weight" in capsys.readouterr().out
    nothing = _Mini().requires_grad_(False)
    assert checks.check_trainable(nothing, expected, policy="layernorm+stem") is False


def test_check_trainable_same_count_wrong_set_fails_with_policy(capsys):
    model = _Mini()
    expected = apply_policy(model, "layernorm").trainable
    params = dict(model.named_parameters())
    params["model.head.1.bias"].requires_grad_(False)      # a LayerNorm bias (16 values) frozen ...
    params["model.stages.1.1.bias"].requires_grad_(True)   # ... and a conv bias (16 values) unfrozen
    assert _count(model) == expected  # the count alone cannot see it
    assert checks.check_trainable(model, expected, policy="layernorm") is False
    out = capsys.readouterr().out
    assert "model.head.1.bias" in out and "model.stages.1.1.bias" in out
    with pytest.raises(ValueError, match="policy"):
        checks.check_trainable(model, expected + 1, policy="layernorm")


# --------------------------------------------------------------------------------------------
# EER and thresholds (notebook 06)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def verif():
    """About the notebook's regime: 1,200 genuine, 24,000 impostor scores, EER about 2-3 %."""
    rng = np.random.default_rng(7)
    genuine = rng.normal(0.60, 0.11, 1200)
    impostor = rng.normal(0.12, 0.13, 24000)
    scores = np.concatenate([genuine, impostor])
    same = np.r_[np.ones(genuine.size, bool), np.zeros(impostor.size, bool)]
    return scores, same


def _hand_eer(scores: np.ndarray, same: np.ndarray) -> float:
    """The notebook's solution: mean of FAR and FRR where they are closest."""
    genuine, impostor = np.sort(scores[same]), np.sort(scores[~same])
    candidates = np.unique(scores)
    far = 1 - np.searchsorted(impostor, candidates, side="left") / impostor.size
    frr = np.searchsorted(genuine, candidates, side="left") / genuine.size
    best = np.argmin(np.abs(far - frr))
    return float((far[best] + frr[best]) / 2)


def test_check_eer_right_answers(verif):
    scores, same = verif
    eer = verification_metrics(scores, same)["eer"]
    assert 0.01 < eer < 0.05
    assert checks.check_eer(_hand_eer(scores, same), scores, same) is True
    assert checks.check_eer(eer, scores, same) is True


@pytest.mark.parametrize("factor", [0.8, 1.2, 1.9, 0.1])
def test_check_eer_rejects_an_eer_off_by_20_percent_or_more(verif, factor):
    scores, same = verif
    eer = verification_metrics(scores, same)["eer"]
    assert checks.check_eer(factor * eer, scores, same) is False


def test_check_eer_names_percent_swap_and_threshold(capsys, verif):
    scores, same = verif
    m = verification_metrics(scores, same)
    assert checks.check_eer(100 * m["eer"], scores, same) is False
    assert "percent" in capsys.readouterr().out
    assert checks.check_eer(_hand_eer(scores, ~same), scores, same) is False  # genuine/impostor swapped
    assert "swapped" in capsys.readouterr().out
    assert checks.check_eer(m["eer_threshold"], scores, same) is False
    assert "threshold" in capsys.readouterr().out.split("hint:")[1]


def test_eer_tolerance_is_relative_for_large_counts_and_one_roc_step_for_small():
    assert checks.eer_tolerance(0.01, 1200, 240000) == pytest.approx(2 / 1200)
    assert checks.eer_tolerance(0.2, 10000, 100000) == pytest.approx(0.02)
    assert checks.eer_tolerance(0.2, 20, 400) == pytest.approx(0.1)


def test_check_threshold_right_answers(verif):
    scores, same = verif
    thr = threshold_at_far(scores, same, 0.1)
    far = apply_threshold(scores, same, thr)["far"]
    assert checks.check_threshold(thr, scores, same, 0.1) is True
    assert checks.check_threshold(thr, scores, same, 0.1, far=far) is True
    # A few impostors' worth stricter is still "just below the target".
    imp = np.sort(scores[~same])
    a_bit_stricter = imp[np.searchsorted(imp, thr) + 20]
    assert 0.099 < apply_threshold(scores, same, a_bit_stricter)["far"] < 0.1
    assert checks.check_threshold(a_bit_stricter, scores, same, 0.1) is True


def test_check_threshold_rejects_needlessly_strict_and_rule_breaking_thresholds(capsys, verif):
    scores, same = verif
    thr = threshold_at_far(scores, same, 0.1)
    assert checks.check_threshold(1.0, scores, same, 0.1) is False  # accepts nothing: FAR 0
    assert "accepts no pair" in capsys.readouterr().out
    strict = threshold_at_far(scores, same, 0.05)  # a valid FAR, but for another target
    assert checks.check_threshold(strict, scores, same, 0.1) is False
    assert "far below the target" in capsys.readouterr().out
    too_low = thr - 0.02
    assert apply_threshold(scores, same, too_low)["far"] > 0.1
    assert checks.check_threshold(too_low, scores, same, 0.1) is False
    assert "above the target" in capsys.readouterr().out
    assert checks.check_threshold(0.1, scores, same, 0.1) is False  # the target FAR given as a threshold
    assert checks.check_threshold(None, scores, same, 0.1) is False


def test_check_threshold_checks_the_reported_far(capsys, verif):
    scores, same = verif
    thr = threshold_at_far(scores, same, 0.1)
    got = apply_threshold(scores, same, thr)
    assert checks.check_threshold(thr, scores, same, 0.1, far=got["tar"]) is False
    assert "TAR" in capsys.readouterr().out
    assert checks.check_threshold(thr, scores, same, 0.1, far=got["far"] + 0.01) is False
    with pytest.raises(ValueError, match="target_far"):
        checks.check_threshold(thr, scores, same, 0.0)


def test_check_threshold_names_a_threshold_chosen_on_eval_and_checks_the_eval_far(capsys, verif):
    scores, same = verif
    rng = np.random.default_rng(8)
    ev_scores = np.concatenate([rng.normal(0.58, 0.12, 1000), rng.normal(0.16, 0.14, 20000)])
    ev_same = np.r_[np.ones(1000, bool), np.zeros(20000, bool)]
    on_eval = threshold_at_far(ev_scores, ev_same, 0.1)
    assert checks.check_threshold(on_eval, scores, same, 0.1, eval_scores=ev_scores, eval_same=ev_same) is False
    assert "eval scores" in capsys.readouterr().out
    thr = threshold_at_far(scores, same, 0.1)
    eval_far = apply_threshold(ev_scores, ev_same, thr)["far"]
    assert checks.check_threshold(thr, scores, same, 0.1, eval_scores=ev_scores, eval_same=ev_same,
                                  eval_far=eval_far) is True
    assert checks.check_threshold(thr, scores, same, 0.1, eval_scores=ev_scores, eval_same=ev_same,
                                  eval_far=0.1) is False


# --------------------------------------------------------------------------------------------
# The call recorder behind every function check
# --------------------------------------------------------------------------------------------
def test_the_recorder_sees_a_call_by_any_route_and_restores_the_profiler():
    import sys

    import hfr_tutorial.losses as losses_module
    previous = sys.getprofile()
    alias = CrossModalInfoNCE
    with checks.recording({"CrossModalInfoNCE": CrossModalInfoNCE, "apply_policy": apply_policy}) as rec:
        alias(temperature=0.1)(torch.randn(3, 4), torch.randn(3, 4))   # an alias
        getattr(losses_module, "CrossModalInfoNCE")                      # a look-up alone is no call
    assert rec.called == ["CrossModalInfoNCE"]
    with checks.recording({"verification_metrics": verification_metrics}) as rec:
        from hfr_tutorial.evaluate import protocol_metrics, score_protocols  # noqa: F401
        verification_metrics(np.r_[0.9, 0.1], np.r_[True, False])
    assert rec.called == ["verification_metrics"]
    assert sys.getprofile() is previous


def test_a_function_check_reports_errors_stubs_and_non_functions(capsys):
    def stub(vis, other, t):
        raise NotImplementedError("Exercise: write your solution here")

    assert checks.check_infonce_function(stub) is False
    assert "NotImplementedError" in capsys.readouterr().out
    assert checks.check_infonce_function(4.2) is False
    assert "needs a function" in capsys.readouterr().out
    assert checks.check_infonce_function(lambda v, o: 0.0) is False  # the wrong signature
    assert "TypeError" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Function checks: the right answer passes, the usual slips are named
# --------------------------------------------------------------------------------------------
def _infonce(vis, other, t):
    s = F.normalize(other, dim=1) @ F.normalize(vis, dim=1).T / t
    return 0.5 * ((-(s.diag() - torch.logsumexp(s, 1))).mean() + (-(s.diag() - torch.logsumexp(s, 0))).mean())


@pytest.mark.parametrize("wrong, hint", [
    (lambda v, o, t: (-(_s(v, o, t).diag() - torch.logsumexp(_s(v, o, t), 1))).mean(), "only one direction"),
    (lambda v, o, t: _infonce(v, o, 1.0), "temperature is missing"),
    (lambda v, o, t: 2 * _infonce(v, o, t), "added"),
    (lambda v, o, t: _infonce(v, o, t) * len(v), "sum over the batch"),
    (lambda v, o, t: 0.5 * sum((-(m.diag() - torch.logsumexp(m, d))).mean() for m, d in ((o @ v.T / t, 1), (o @ v.T / t, 0))),
     "not normalised"),
])
def test_check_infonce_function_names_the_slip(capsys, wrong, hint):
    vis, other = torch.randn(8, 16), torch.randn(8, 16)
    assert checks.check_infonce_function(_infonce, vis, other, 0.1) is True
    capsys.readouterr()
    assert checks.check_infonce_function(wrong, vis, other, 0.1) is False
    assert hint in capsys.readouterr().out


def _s(v, o, t):
    return F.normalize(o, dim=1) @ F.normalize(v, dim=1).T / t


def test_check_distillation_function_both_kinds(capsys):
    s, t = torch.randn(16, 64), torch.randn(16, 64)

    def cosine(a, b, lam):
        return lam * (1 - (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1)).mean()

    def mse(a, b, lam):
        return lam * ((F.normalize(a, dim=1) - F.normalize(b, dim=1)) ** 2).mean(1).mean()

    assert checks.check_distillation_function(cosine, "cosine", s, t, 10.0) is True
    assert checks.check_distillation_function(mse, "mse", s, t, 10.0) is True
    assert checks.check_distillation_function(lambda a, b, lam: cosine(a, b, 1.0), "cosine", s, t, 10.0) is False
    assert "lambda is missing" in capsys.readouterr().out
    assert checks.check_distillation_function(
        lambda a, b, lam: lam * ((F.normalize(a, dim=1) - F.normalize(b, dim=1)) ** 2).sum(1).mean(), "mse") is False
    assert "sum over the D dimensions" in capsys.readouterr().out
    assert checks.check_distillation_function(cosine, "mse", s, t, 10.0) is False
    assert "cosine form" in capsys.readouterr().out
    with pytest.raises(ValueError, match="kind"):
        checks.check_distillation_function(cosine, "l1")


def test_check_chance_function(capsys):
    assert checks.check_chance_function(lambda b: math.log(b), 64, temperature=0.07) is True
    assert checks.check_chance_function(lambda b: math.log(b - 1), 64) is False
    assert "log(B - 1)" in capsys.readouterr().out
    assert checks.check_chance_function(lambda b: 1 / b, 64) is False
    assert "negative log" in capsys.readouterr().out


def test_check_similarity_and_rank1_functions(capsys, ident):
    d = ident

    def similarity(p, g):
        return l2_normalize(np.asarray(p)) @ l2_normalize(np.asarray(g)).T  # a helper of the library: recorded

    def by_hand(p, g):
        return (p / np.linalg.norm(p, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T

    assert checks.check_similarity_function(by_hand, d["probes"], d["gallery"]) is True
    assert checks.check_similarity_function(similarity, d["probes"], d["gallery"]) is False
    assert "l2_normalize" in capsys.readouterr().out
    assert checks.check_similarity_function(lambda p, g: p @ g.T, d["probes"], d["gallery"]) is False
    assert "plain dot product" in capsys.readouterr().out
    assert checks.check_similarity_function(lambda p, g: by_hand(p, g).T, d["probes"], d["gallery"]) is False
    assert "transposed" in capsys.readouterr().out

    def rank1(sim, g, p):
        return float(np.mean(g[sim.argmax(axis=1)] == p))

    assert checks.check_rank1_function(rank1, d["cosine"], d["gallery_labels"], d["probe_labels"]) is True
    assert checks.check_rank1_function(lambda sim, g, p: float(np.mean(sim.argmax(axis=1) == p))) is False
    assert "column number" in capsys.readouterr().out
    assert checks.check_rank1_function(lambda sim, g, p: 100 * rank1(sim, g, p)) is False
    assert "percent" in capsys.readouterr().out
    assert checks.check_rank1_function(lambda sim, g, p: rank_k(sim, g, p, ks=(1,))[1]) is False
    assert "rank_k" in capsys.readouterr().out


def test_check_embed_function(capsys, tiny_net, faces):
    def mine(model, images):
        with torch.no_grad():
            return F.normalize(model.eval()(images_to_tensor(images)), dim=1)

    assert checks.check_embed_function(mine, tiny_net, faces) is True
    capsys.readouterr()

    def zero_one(model, images):
        with torch.no_grad():
            return F.normalize(model(torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255), dim=1)

    assert checks.check_embed_function(zero_one, tiny_net, faces) is False
    assert "[0, 1]" in capsys.readouterr().out
    from hfr_tutorial.evaluate import embed
    assert checks.check_embed_function(lambda m, im: embed(m, im, progress=False), tiny_net, faces) is False
    assert "`embed`" in capsys.readouterr().out


def test_check_policy_and_share_functions(capsys):
    hidden = [("a scrambled model", lambda: checks.policies._scrambled(_Mini(), 1))]

    def by_hand(model):
        model.requires_grad_(False)
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.requires_grad_(True)

    def unfreeze_only(model):
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.requires_grad_(True)

    assert checks.check_policy_function(by_hand, "layernorm", _Mini, hidden=hidden) is True
    assert checks.check_policy_function(unfreeze_only, "layernorm", _Mini, hidden=hidden) is False
    assert "freeze the whole model first" in capsys.readouterr().out
    assert checks.check_policy_function(lambda m: apply_policy(m, "layernorm"), "layernorm", _Mini, hidden=hidden) is False
    assert "apply_policy" in capsys.readouterr().out

    def share(model):
        return 100 * sum(p.numel() for p in model.parameters() if p.requires_grad) / sum(
            p.numel() for p in model.parameters())

    assert checks.check_share_function(share, _Mini) is True
    assert checks.check_share_function(lambda m: share(m) / 100, _Mini) is False
    assert "fraction" in capsys.readouterr().out


def test_check_eer_function(capsys, verif):
    scores, same = verif

    def hand(s, y):
        return _hand_eer(s, y)

    assert checks.check_eer_function(hand, scores, same) is True
    assert checks.check_eer_function(lambda s, y: verification_metrics(s, y)["eer"], scores, same) is False
    assert "verification_metrics" in capsys.readouterr().out
    assert checks.check_eer_function(lambda s, y: 100 * hand(s, y), scores, same) is False
    assert "percent" in capsys.readouterr().out
    assert checks.check_eer_function(lambda s, y: hand(s, ~y), scores, same) is False
    assert "swapped" in capsys.readouterr().out


def test_check_five_points_function(capsys):
    from hfr_tutorial.data.detect import five_points

    def mine(p):
        eyes = sorted([p[36:42].mean(0), p[42:48].mean(0)], key=lambda q: q[0])
        mouth = sorted([p[48], p[54]], key=lambda q: q[0])
        return np.array([eyes[0], eyes[1], p[30], mouth[0], mouth[1]])

    shape68 = np.random.default_rng(7).uniform(0, 112, size=(68, 2))
    assert checks.check_five_points_function(mine, shape68) is True
    assert checks.check_five_points_function(five_points, shape68) is False
    assert "five_points" in capsys.readouterr().out
    assert checks.check_five_points_function(lambda p: np.array([p[36:42].mean(0), p[42:48].mean(0), p[30],
                                                                 *sorted([p[48], p[54]], key=lambda q: q[0])]),
                                             shape68) is False
    assert "order the eyes by x" in capsys.readouterr().out
    assert checks.check_five_points_function(lambda p: mine(p)[:, ::-1], shape68) is False
    assert "swapped" in capsys.readouterr().out


def test_check_min_cosine_and_int8_size_functions(capsys):
    def smallest(a, b):
        return float((np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())

    assert checks.check_min_cosine_function(smallest) is True
    assert checks.check_min_cosine_function(lambda a, b: 1.0) is False
    assert checks.check_min_cosine_function(lambda a, b: float(np.sum(a * b, 1).min())) is False
    assert "not normalised" in capsys.readouterr().out

    def predict(model):
        lin = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
        return lin + 4 * (sum(t.numel() for t in model.state_dict().values()) - lin)

    assert checks.check_int8_size_function(predict, _Mini()) is True
    assert checks.check_int8_size_function(lambda m: 4 * sum(t.numel() for t in m.state_dict().values())) is False
    assert "Linear weights take 1 byte" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Predict and explain: the form is checked, nothing is graded
# --------------------------------------------------------------------------------------------
def test_check_prediction_checks_the_form_only(capsys):
    assert checks.check_prediction("more", choices=("more", "less"), because="a reason of at least five words") is True
    assert checks.check_prediction("More", choices=("more", "less")) is False
    assert "offered choices" in capsys.readouterr().out
    assert checks.check_prediction("more", choices=("more", "less"), because="") is False
    assert checks.check_prediction(1.5, choices=(0, 1)) is False
    assert "outside the valid range" in capsys.readouterr().out
    parts = {"a": ("x", "y"), "n": (0, 100)}
    assert checks.check_prediction({"a": "x", "n": 3}, choices=parts) is True
    assert checks.check_prediction({"a": "x"}, choices=parts) is False
    assert checks.check_prediction({"a": "z", "n": 3}, choices=parts) is False
    assert checks.check_prediction({"a": "x", "n": "3"}, choices=parts) is False


def test_show_outcome_shows_both_without_a_verdict(capsys):
    checks.show_outcome("little", "none", detail="nir 0 %")
    out = capsys.readouterr().out
    assert "little" in out and "none" in out and "nir 0 %" in out
    assert not any(w in out.lower() for w in ("correct", "wrong", "not yet", "right"))
    checks.show_outcome({"a": "x", "n": 3}, {"a": "y", "n": 4})
    out = capsys.readouterr().out
    assert "x" in out and "y" in out and "3" in out and "4" in out


def test_check_answer_wants_sentences(capsys):
    assert checks.check_answer("word " * 25) is True
    assert checks.check_answer("too short") is False
    assert checks.check_answer(None) is False

"""Tuning policies: which parameters learn, their counts, and that frozen ones stay untouched."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from timm.layers import LayerNorm as TimmLayerNorm
from timm.layers import LayerNorm2d
from torch import nn

from hfr_tutorial.models import count_parameters, create_edgeface
from hfr_tutorial.tuning import (
    POLICIES,
    apply_policy,
    policy_parameter_names,
    policy_table,
    trainable_parameters,
)

VARIANTS = ["edgeface_xxs", "edgeface_xs_gamma_06"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, and far faster on busy cores (no spin waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Trainable parameters per policy, measured once and pinned here (the tests below also rebuild
# each set independently, from module types and module identity); totals are the published sizes.
EXPECTED = {
    "edgeface_xxs": {"frozen": 0, "layernorm": 3_328, "layernorm+stem": 4_504, "paper": 14_488,
                     "full": 1_244_744},
    "edgeface_xs_gamma_06": {"frozen": 0, "layernorm": 5_080, "layernorm+stem": 6_648,
                             "paper": 26_424, "full": 1_770_492},
}


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    return {variant: create_edgeface(variant) for variant in VARIANTS}


def _names_of(model: nn.Module, module: nn.Module) -> set[str]:
    """Full parameter names of ``module``'s parameters inside ``model``, matched by identity."""
    ids = {id(p) for p in module.parameters()}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def _layernorm_names_by_class(model: nn.Module) -> set[str]:
    """The LayerNorm affine parameters, found independently of the module under test."""
    names = set()
    for module in model.modules():
        if type(module) in (nn.LayerNorm, TimmLayerNorm, LayerNorm2d):
            assert module.elementwise_affine
            names |= _names_of(model, module)
    return names


def _numel(model: nn.Module, names: set[str]) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n in names)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("policy", POLICIES)
def test_apply_policy_counts(models, variant, policy):
    model = models[variant]
    report = apply_policy(model, policy)
    assert report.policy == policy
    assert report.total == EXPECTED[variant]["full"] == count_parameters(model)
    assert report.trainable == EXPECTED[variant][policy]
    # requires_grad agrees with the report and with the name set
    assert count_parameters(model, trainable_only=True) == report.trainable
    names = policy_parameter_names(model, policy)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == names
    assert _numel(model, names) == report.trainable
    assert report.fraction == pytest.approx(report.trainable / report.total)


def test_paper_policy_on_xxs_is_about_one_percent(models):
    report = apply_policy(models["edgeface_xxs"], "paper")
    assert (report.trainable, report.total) == (14_488, 1_244_744)
    assert 0.01 < report.fraction < 0.02
    assert report.fraction == pytest.approx(0.011639, abs=1e-5)
    assert str(report) == "paper: 14,488 of 1,244,744 parameters trainable (1.16 %)"


@pytest.mark.parametrize("variant", VARIANTS)
def test_paper_policy_stays_parameter_efficient(models, variant):
    report = apply_policy(models[variant], "paper")
    assert 0.01 < report.fraction < 0.02


@pytest.mark.parametrize("variant", VARIANTS)
def test_layernorm_policy_is_exactly_the_layernorm_affine_params(models, variant):
    model = models[variant]
    names = policy_parameter_names(model, "layernorm")
    expected = _layernorm_names_by_class(model)
    assert names == expected
    # and they are all weights/biases of LayerNorm (2d) modules, both of each
    assert all(n.endswith((".weight", ".bias")) for n in names)
    for norm in {n.rsplit(".", 1)[0] for n in names}:
        assert {norm + ".weight", norm + ".bias"} <= names
    # sanity: norms exist in every part of the network (stem, each stage, head)
    assert "model.stem.1.weight" in names and "model.head.norm.weight" in names
    assert any(n.startswith("model.stages.3.") for n in names)
    # nothing that is not a norm: no convolution or linear weight
    convs_and_linears = set()
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            convs_and_linears |= _names_of(model, module)
    assert not names & convs_and_linears


@pytest.mark.parametrize("variant", VARIANTS)
def test_layernorm_plus_stem_adds_only_the_stem(models, variant):
    model = models[variant]
    added = policy_parameter_names(model, "layernorm+stem") - policy_parameter_names(model, "layernorm")
    stem = _names_of(model, model.model.stem)
    assert added  # the patchify conv
    assert all(n.startswith("model.stem.") for n in added)
    assert added == stem - policy_parameter_names(model, "layernorm")
    assert added == {"model.stem.0.weight", "model.stem.0.bias"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_paper_adds_exactly_the_first_stage(models, variant):
    model = models[variant]
    paper = policy_parameter_names(model, "paper")
    added = paper - policy_parameter_names(model, "layernorm+stem")
    stage0 = _names_of(model, model.model.stages[0])
    assert added and all(n.startswith("model.stages.0.") for n in added)
    assert stage0 <= paper
    assert paper == _layernorm_names_by_class(model) | _names_of(model, model.model.stem) | stage0
    # nothing of the deeper stages except their norms
    for index in (1, 2, 3):
        deeper = _names_of(model, model.model.stages[index])
        assert paper & deeper == deeper & _layernorm_names_by_class(model)


@pytest.mark.parametrize("variant", VARIANTS)
def test_full_is_all_and_frozen_is_none(models, variant):
    model = models[variant]
    all_names = {n for n, _ in model.named_parameters()}
    assert policy_parameter_names(model, "full") == all_names
    assert policy_parameter_names(model, "frozen") == set()
    apply_policy(model, "frozen")
    assert list(trainable_parameters(model)) == []
    apply_policy(model, "full")
    assert len(list(trainable_parameters(model))) == len(all_names)


@pytest.mark.parametrize("variant", VARIANTS)
def test_policies_are_strictly_nested(models, variant):
    model = models[variant]
    sets = [policy_parameter_names(model, p) for p in POLICIES]
    assert POLICIES == ("frozen", "layernorm", "layernorm+stem", "paper", "full")
    for smaller, larger in zip(sets, sets[1:]):
        assert smaller < larger  # proper subset


def test_reapplying_a_policy_resets_requires_grad(models):
    model = models["edgeface_xxs"]
    apply_policy(model, "full")
    report = apply_policy(model, "paper")
    assert count_parameters(model, trainable_only=True) == report.trainable == 14_488
    apply_policy(model, "frozen")
    assert count_parameters(model, trainable_only=True) == 0


def test_policy_on_bare_timm_backbone(models):
    """The same policy on the wrapped EdgeFace and on its inner timm EdgeNeXt trains the same tensors."""
    model = models["edgeface_xxs"]
    for policy in POLICIES:
        bare = {"model." + n for n in policy_parameter_names(model.model, policy)}
        assert bare == policy_parameter_names(model, policy)


def test_unknown_policy_raises_and_leaves_model_alone(models):
    model = models["edgeface_xxs"]
    apply_policy(model, "paper")
    before = [p.requires_grad for p in model.parameters()]
    with pytest.raises(ValueError) as info:
        apply_policy(model, "stem-only")
    message = str(info.value)
    assert "stem-only" in message
    for policy in POLICIES:
        assert policy in message
    assert [p.requires_grad for p in model.parameters()] == before
    with pytest.raises(ValueError):
        policy_parameter_names(model, "Paper")


@pytest.fixture(scope="module")
def paper_model_after_backward() -> nn.Module:
    """EdgeFace-XXS under ``paper`` after one backward pass (shared: the tests only read grads)."""
    model = create_edgeface("edgeface_xxs", seed=0)
    apply_policy(model, "paper")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 32, 32, generator=generator)
    target = torch.randn(2, 512, generator=generator)
    loss = nn.functional.mse_loss(model(x), target)
    loss.backward()
    return model


def test_frozen_parameters_get_no_gradient(paper_model_after_backward):
    model = paper_model_after_backward
    trainable = policy_parameter_names(model, "paper")
    n_trainable = n_frozen = 0
    for name, param in model.named_parameters():
        if name in trainable:
            n_trainable += 1
            assert param.requires_grad, name
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
            assert param.grad.abs().max() > 0, name
        else:
            n_frozen += 1
            assert not param.requires_grad, name
            assert param.grad is None, name
    assert n_trainable > 0 and n_frozen > 0


def test_optimizer_state_only_for_trainable_and_frozen_weights_unchanged(paper_model_after_backward):
    model = paper_model_after_backward
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = policy_parameter_names(model, "paper")
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-2, weight_decay=0.05)
    optimizer.step()

    param_ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
    state_ids = {id(p) for p in optimizer.state}
    named = dict(model.named_parameters())
    expected_ids = {id(named[n]) for n in trainable}
    assert param_ids == expected_ids
    assert state_ids == expected_ids
    for p in optimizer.state:
        assert set(optimizer.state[p]) >= {"exp_avg", "exp_avg_sq"}

    changed = 0
    for name, param in model.named_parameters():
        if name in trainable:
            changed += not torch.equal(param, before[name])
        else:
            assert torch.equal(param, before[name]), name  # bit-identical
    assert changed == len(trainable)  # AdamW moves every trainable tensor


def test_policy_table_xxs(models):
    """One row per policy, each on a model from the factory (reused here: apply_policy resets it)."""
    calls = []

    def factory():
        calls.append(1)
        return models["edgeface_xxs"]

    table = policy_table(factory)
    assert len(calls) == len(POLICIES)
    assert isinstance(table, pd.DataFrame)
    assert table.index.name == "policy"
    assert tuple(table.index) == POLICIES
    assert list(table.columns) == ["trainable", "total", "percent"]
    assert table["trainable"].to_dict() == EXPECTED["edgeface_xxs"]
    assert (table["total"] == 1_244_744).all()
    assert table.loc["paper", "percent"] == pytest.approx(1.164)
    assert table.loc["full", "percent"] == 100.0
    assert table.loc["frozen", "percent"] == 0.0
    assert table["trainable"].is_monotonic_increasing


def test_policy_table_subset_of_policies(models):
    table = policy_table(lambda: models["edgeface_xs_gamma_06"], policies=("layernorm", "paper"))
    assert list(table.index) == ["layernorm", "paper"]
    assert table.loc["paper", "trainable"] == 26_424
    assert table.loc["paper", "percent"] == pytest.approx(100 * 26_424 / 1_770_492, abs=1e-3)

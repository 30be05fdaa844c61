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
    group_sizes,
    groups_policy,
    parameter_groups,
    parse_groups_policy,
    policy_groups,
    policy_parameter_names,
    policy_table,
    trainable_parameters,
)

VARIANTS = ["edgeface_xxs", "edgeface_xs_gamma_06"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


# Trainable parameters per policy, measured once and pinned here (the tests below also rebuild
# each set independently, from module types and module identity); totals are the published sizes.
EXPECTED = {
    "edgeface_xxs": {"frozen": 0, "layernorm": 3_328, "layernorm+stem": 4_504, "paper": 14_488,
                     "layernorm+stem+convs012": 53_832, "layernorm+stem+stages012": 516_536,
                     "full": 1_244_744},
    "edgeface_xs_gamma_06": {"frozen": 0, "layernorm": 5_080, "layernorm+stem": 6_648,
                             "paper": 26_424, "layernorm+stem+convs012": 90_052,
                             "layernorm+stem+stages012": 779_800, "full": 1_770_492},
}
NEW_POLICIES = ("layernorm+stem+convs012", "layernorm+stem+stages012")


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
    """frozen < layernorm < layernorm+stem < (paper, convs012) < stages012 < full; paper and convs012 cross."""
    model = models[variant]
    assert POLICIES == ("frozen", "layernorm", "layernorm+stem", "paper", "layernorm+stem+convs012",
                        "layernorm+stem+stages012", "full")
    sets = {p: policy_parameter_names(model, p) for p in POLICIES}
    chains = [("frozen", "layernorm", "layernorm+stem", "paper", "layernorm+stem+stages012", "full"),
              ("layernorm+stem", "layernorm+stem+convs012", "layernorm+stem+stages012")]
    for chain in chains:
        for smaller, larger in zip(chain, chain[1:]):
            assert sets[smaller] < sets[larger], (smaller, larger)  # proper subset
    # the two readings of "S0, S1, S2" and the paper's choice: neither holds the other
    assert not sets["paper"] <= sets["layernorm+stem+convs012"]
    assert not sets["layernorm+stem+convs012"] <= sets["paper"]
    # counts increase along POLICIES (the table's order)
    counts = [_numel(model, sets[p]) for p in POLICIES]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)


def _stage_convs(model: nn.Module, stages: tuple[int, ...]) -> set[str]:
    names = set()
    for index in stages:
        for module in model.model.stages[index].modules():
            if isinstance(module, nn.Conv2d):
                names |= _names_of(model, module)
    return names


@pytest.mark.parametrize("variant", VARIANTS)
def test_convs012_is_layernorms_stem_and_the_early_convolutions(models, variant):
    model = models[variant]
    names = policy_parameter_names(model, "layernorm+stem+convs012")
    base = _layernorm_names_by_class(model) | _names_of(model, model.model.stem)
    convs = _stage_convs(model, (0, 1, 2))
    assert names == base | convs
    # the depthwise convs of every block, the downsampling convs, nothing linear, nothing of stage 3
    assert {f"model.stages.{i}.blocks.0.conv_dw.weight" for i in (0, 1, 2)} <= names
    assert {"model.stages.1.downsample.1.weight", "model.stages.2.downsample.1.weight"} <= names
    assert not any(".mlp." in n or ".xca." in n for n in names)
    assert not (names - _layernorm_names_by_class(model)) & _names_of(model, model.model.stages[3])
    stage3_convs = _stage_convs(model, (3,))
    assert stage3_convs and not names & stage3_convs


@pytest.mark.parametrize("variant", VARIANTS)
def test_stages012_is_layernorms_stem_and_all_of_the_first_three_stages(models, variant):
    model = models[variant]
    names = policy_parameter_names(model, "layernorm+stem+stages012")
    stages = set().union(*(_names_of(model, model.model.stages[i]) for i in (0, 1, 2)))
    assert names == _layernorm_names_by_class(model) | _names_of(model, model.model.stem) | stages
    deeper = _names_of(model, model.model.stages[3]) | _names_of(model, model.model.head)
    assert names & deeper == deeper & _layernorm_names_by_class(model)


def test_new_policies_on_xxs_exact_counts(models):
    model = models["edgeface_xxs"]
    convs = apply_policy(model, "layernorm+stem+convs012")
    assert str(convs) == "layernorm+stem+convs012: 53,832 of 1,244,744 parameters trainable (4.32 %)"
    stages = apply_policy(model, "layernorm+stem+stages012")
    assert str(stages) == "layernorm+stem+stages012: 516,536 of 1,244,744 parameters trainable (41.50 %)"
    # the figures DESIGN.md and the module docstring quote: about 4 % and 41.5 %
    assert 0.04 < convs.fraction < 0.045 and stages.fraction == pytest.approx(0.415, abs=5e-4)


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
    assert "groups:" in message and "parameter_groups" in message
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
    assert table.loc["layernorm+stem+convs012", "percent"] == pytest.approx(4.325)
    assert table.loc["layernorm+stem+stages012", "percent"] == pytest.approx(41.497)
    assert table.loc["full", "percent"] == 100.0
    assert table.loc["frozen", "percent"] == 0.0
    assert table["trainable"].is_monotonic_increasing


def test_policy_table_subset_of_policies(models):
    table = policy_table(lambda: models["edgeface_xs_gamma_06"], policies=("layernorm", "paper"))
    assert list(table.index) == ["layernorm", "paper"]
    assert table.loc["paper", "trainable"] == 26_424
    assert table.loc["paper", "percent"] == pytest.approx(100 * 26_424 / 1_770_492, abs=1e-3)


# ------------------------------------------------------------------------------------------------
# Parameter groups and the ``groups:`` form
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_groups_partition_the_model(models, variant):
    model = models[variant]
    groups = parameter_groups(model)
    members = [n for names in groups.values() for n in names]
    assert sorted(members) == sorted(n for n, _ in model.named_parameters())  # each exactly once
    assert set(groups["layernorms"]) == _layernorm_names_by_class(model)
    assert groups["stem"] == ["model.stem.0.weight", "model.stem.0.bias"]
    sizes = group_sizes(model)
    assert list(sizes.index) == list(groups) and sizes.sum() == EXPECTED[variant]["full"]
    assert sizes["layernorms"] == EXPECTED[variant]["layernorm"]
    # the layer scales go with the part whose output they multiply
    assert "model.stages.0.blocks.0.gamma" in groups["stages.0.blocks.0.mlp"]
    xca = next(g for g in groups if g.endswith(".xca"))
    assert any(n.endswith(".gamma_xca") for n in groups[xca])
    # block-level granularity: a few dozen groups, every name a module path without "model."
    assert 30 <= len(groups) <= 60
    assert not any(g.startswith("model.") for g in groups)
    assert "head.fc" in groups


def test_parameter_groups_of_xxs():
    model = create_edgeface("edgeface_xxs")
    sizes = group_sizes(model)
    assert len(sizes) == 34
    assert list(sizes.index[:8]) == ["layernorms", "stem", "stages.0.blocks.0.conv_dw", "stages.0.blocks.0.mlp",
                                     "stages.0.blocks.1.conv_dw", "stages.0.blocks.1.mlp", "stages.1.downsample",
                                     "stages.1.blocks.0.conv_dw"]
    assert (sizes["stem"], sizes["stages.0.blocks.0.conv_dw"], sizes["stages.0.blocks.0.mlp"]) == (1_176, 240, 4_752)
    assert (sizes["stages.1.blocks.1.xca"], sizes["stages.1.blocks.1.pos_embd"]) == (9_460, 3_120)
    assert sizes["head.fc"] == 86_528
    assert (sizes.min(), sizes.max(), sizes.idxmax()) == (240, 226_800, "stages.3.blocks.0.mlp")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("policy", ["layernorm", "layernorm+stem", "paper", *NEW_POLICIES, "full"])
def test_named_policies_are_unions_of_groups(models, variant, policy):
    """Each named policy has a groups: form that trains exactly the same tensors (the round trip)."""
    model = models[variant]
    as_groups = policy_groups(model, policy)
    assert as_groups.startswith("groups:")
    assert policy_parameter_names(model, as_groups) == policy_parameter_names(model, policy)
    report = apply_policy(model, as_groups)
    assert report.policy == as_groups and report.trainable == EXPECTED[variant][policy]
    assert count_parameters(model, trainable_only=True) == report.trainable


def test_groups_form_of_the_paper_policy_on_xxs(models):
    model = models["edgeface_xxs"]
    assert policy_groups(model, "paper") == ("groups:layernorms,stem,stages.0.blocks.0.conv_dw,stages.0.blocks.0.mlp,"
                                             "stages.0.blocks.1.conv_dw,stages.0.blocks.1.mlp")
    assert policy_groups(model, "layernorm") == "groups:layernorms"


def test_groups_policy_trains_exactly_its_groups(models):
    model = models["edgeface_xxs"]
    groups = parameter_groups(model)
    chosen = ["stages.2.blocks.5.xca", "stem"]  # order does not matter
    policy = groups_policy(chosen)
    assert policy == "groups:stages.2.blocks.5.xca,stem"
    report = apply_policy(model, policy)
    expected = set(groups["stem"]) | set(groups["stages.2.blocks.5.xca"])
    assert {n for n, p in model.named_parameters() if p.requires_grad} == expected
    assert report.trainable == 1_176 + 31_420
    assert parse_groups_policy(" groups:stem , layernorms".strip(), model) == ["stem", "layernorms"]


def test_groups_policy_on_bare_timm_backbone(models):
    model = models["edgeface_xxs"]
    policy = "groups:layernorms,stem,stages.1.downsample,head.fc"
    bare = {"model." + n for n in policy_parameter_names(model.model, policy)}
    assert bare == policy_parameter_names(model, policy)
    assert list(parameter_groups(model.model)) == list(parameter_groups(model))


def test_unknown_group_raises_clearly_and_leaves_model_alone(models):
    model = models["edgeface_xxs"]
    apply_policy(model, "paper")
    before = [p.requires_grad for p in model.parameters()]
    with pytest.raises(ValueError) as info:
        apply_policy(model, "groups:layernorms,stages.9.blocks.0.mlp")
    message = str(info.value)
    assert "stages.9.blocks.0.mlp" in message and "Unknown parameter group" in message
    assert "stages.0.blocks.0.conv_dw" in message and "parameter_groups" in message  # lists the valid names
    with pytest.raises(ValueError, match="no 'model.' prefix"):
        apply_policy(model, "groups:model.stem")
    for bad, match in [("groups:", "names no group"), ("groups:stem,,layernorms", "empty group name"),
                       ("groups:stem,stem", "more than once")]:
        with pytest.raises(ValueError, match=match):
            apply_policy(model, bad)
    with pytest.raises(ValueError, match="trains nothing is 'frozen'"):
        groups_policy([])
    assert [p.requires_grad for p in model.parameters()] == before


def test_policy_groups_refuses_a_policy_that_splits_a_group(models, monkeypatch):
    import hfr_tutorial.tuning as tuning

    model = models["edgeface_xxs"]
    monkeypatch.setattr(tuning, "policy_parameter_names", lambda m, p: {"model.stem.0.weight"})
    with pytest.raises(ValueError, match=r"only part of the group\(s\) \['stem'\]"):
        policy_groups(model, "stem-weight-only")

"""Automatic selection of what to tune: scores per parameter group on dev pairs, greedy choice under a budget."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hfr_tutorial.autoselect import CRITERIA, dev_pair_batches, group_scores, score_policies, select_groups
from hfr_tutorial.config import get_preset
from hfr_tutorial.data import synthetic_faceset
from hfr_tutorial.losses import CrossModalInfoNCE
from hfr_tutorial.models import count_parameters, create_edgeface
from hfr_tutorial.tuning import apply_policy, group_sizes, parameter_groups, parse_groups_policy

PAPER_XXS = 14_488
SMOKE = get_preset("fast").replace(name="autoselect-smoke", data__image_size=32, data__n_train_ids=4,
                                   data__n_dev_ids=12, data__n_eval_ids=4, data__images_per_modality=2)
FAST = {"n_batches": 2, "batch_size": 8, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


@pytest.fixture(scope="module")
def faceset():
    return synthetic_faceset(SMOKE, seed=0, progress=False)


@pytest.fixture(scope="module")
def dev(faceset):
    return faceset.select(split="dev")


@pytest.fixture(scope="module")
def model():
    return create_edgeface("edgeface_xxs", seed=0)


@pytest.fixture(scope="module")
def scores(model, dev):
    return group_scores(model, dev, "infonce", seed=0, **FAST)


def test_group_scores_table(model, scores):
    assert list(scores.index) == list(parameter_groups(model)) and scores.index.name == "group"
    assert list(scores.columns) == ["params", "fisher", "fisher_per_param", "grad_norm", "grad_norm_per_param"]
    assert scores["params"].to_dict() == group_sizes(model).to_dict()
    assert scores["params"].sum() == count_parameters(model) == 1_244_744
    values = scores.drop(columns="params").to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    np.testing.assert_allclose(scores["fisher_per_param"], scores["fisher"] / scores["params"])
    np.testing.assert_allclose(scores["grad_norm_per_param"], scores["grad_norm"] / np.sqrt(scores["params"]))
    # Fisher (mean of squares) >= squared norm of the mean gradient (Jensen), group by group
    assert (scores["fisher"] >= scores["grad_norm"] ** 2 * (1 - 1e-9)).all()
    assert scores[["fisher", "grad_norm"]].gt(0).any().all()  # the loss pulls on the model
    assert scores.attrs["loss"] == "infonce" and scores.attrs["n_batches"] == 2
    assert scores.attrs["batch_sizes"] == [8, 8] and scores.attrs["seed"] == 0
    assert np.isfinite(scores.attrs["mean_loss"])


def test_group_scores_is_deterministic_for_a_seed(model, dev, scores):
    again = group_scores(model, dev, "infonce", seed=0, **FAST)
    pd.testing.assert_frame_equal(again, scores, check_exact=True)
    other_seed = group_scores(model, dev, "infonce", seed=1, **FAST)
    assert not np.allclose(other_seed["fisher"], scores["fisher"])  # another draw of dev pairs


def test_group_scores_takes_pair_loader_batches(model, dev, scores):
    """Batches drawn once with FaceSet.pair_loader (via dev_pair_batches) give the same table."""
    batches = dev_pair_batches(dev, n_batches=2, batch_size=8, seed=0)
    assert len(batches) == 2 and {"vis", "other", "label"} <= set(batches[0])
    assert all(len(set(b["identity"].tolist())) == len(b["identity"]) == 8 for b in batches)  # true negatives
    assert set(m for b in batches for m in b["modality"]) <= {"nir", "thermal"}
    from_batches = group_scores(model, batches, CrossModalInfoNCE(temperature=0.07), seed=0, device="cpu")
    pd.testing.assert_frame_equal(from_batches, scores, check_exact=True, check_flags=False)
    assert from_batches.attrs["loss"] == "CrossModalInfoNCE"


def test_group_scores_leaves_the_model_alone(model, dev):
    apply_policy(model, "paper")
    flags = [p.requires_grad for p in model.parameters()]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    group_scores(model, dev, "pairwise", seed=0, n_batches=1, batch_size=4, device="cpu")
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert model.training and all(p.grad is None for p in model.parameters())
    model.eval()


def test_group_scores_pairwise_and_both(model, dev):
    pairwise = group_scores(model, dev, "pairwise", seed=0, n_batches=1, batch_size=8, device="cpu")
    both = group_scores(model, dev, "pairwise+infonce", seed=0, n_batches=1, batch_size=8, device="cpu")
    assert pairwise.attrs["loss"] == "pairwise" and both.attrs["loss"] == "pairwise+infonce"
    assert np.isfinite(pairwise["fisher"]).all() and pairwise["fisher"].gt(0).any()
    assert not np.allclose(pairwise["fisher"], both["fisher"])


@pytest.mark.parametrize("split", [None, "eval", "train", ("dev", "eval")])
def test_group_scores_refuses_anything_but_dev(model, faceset, split):
    """The criterion is a choice, so it never reads eval (nor train) identities."""
    data = faceset if split is None else faceset.select(split=split)
    with pytest.raises(ValueError, match=r"dev identities only.*select\(split='dev'\)"):
        group_scores(model, data, **FAST)


def test_dev_pair_batches_needs_pairs(dev):
    with pytest.raises(ValueError, match="needs both"):
        dev_pair_batches(dev.select(modality="vis"))
    with pytest.raises(ValueError, match="n_batches"):
        dev_pair_batches(dev, n_batches=0)
    more = dev_pair_batches(dev, n_batches=5, batch_size=64, seed=0)  # capped at the 12 dev identities
    assert len(more) == 5 and all(len(b["label"]) == 12 for b in more)


# ------------------------------------------------------------------------------------------------
# select_groups
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("criterion", CRITERIA)
def test_selection_round_trips_through_apply_policy(model, scores, criterion):
    policy, ranking = select_groups(scores, PAPER_XXS, criterion=criterion)
    chosen = parse_groups_policy(policy, model)
    assert chosen == [g for g in scores.index if g in set(chosen)]  # model order: one string per choice
    assert "layernorms" in chosen and ranking.loc["layernorms", "reason"] == "always"
    assert set(ranking.index[ranking["selected"]]) == set(chosen)
    fresh = create_edgeface("edgeface_xxs", seed=0)
    report = apply_policy(fresh, policy)
    groups = parameter_groups(fresh)
    trained = {n for n, p in fresh.named_parameters() if p.requires_grad}
    assert trained == {n for g in chosen for n in groups[g]}  # exactly the chosen groups
    assert report.trainable <= PAPER_XXS and report.trainable == ranking.attrs["trainable"]
    assert report.trainable == scores.loc[chosen, "params"].sum() == ranking["cumulative"].iloc[-1]
    assert ranking.attrs["policy"] == policy and ranking.attrs["criterion"] == criterion
    # ranked by the criterion after the groups always taken; greedy: a skipped group did not fit
    ranked = ranking.loc[ranking["reason"] != "always", criterion].to_numpy()
    assert (np.diff(ranked) <= 0).all()
    before = ranking["cumulative"].shift(1, fill_value=0)
    over = ranking["reason"] == "over budget"
    assert (before[over] + ranking.loc[over, "params"] > PAPER_XXS).all()
    assert list(ranking.columns) == ["rank", "params", criterion, "reason", "selected", "cumulative"]
    assert list(ranking["rank"]) == list(range(1, len(scores) + 1))


def test_selection_compared_with_the_hand_picked_policies(model, scores):
    policy, _ = select_groups(scores, PAPER_XXS)
    table = score_policies(scores, model, ["frozen", "layernorm", "paper", "layernorm+stem+convs012", policy])
    assert table.loc["paper", "params"] == PAPER_XXS and table.loc["paper", "groups"] == 6
    assert table.loc["layernorm+stem+convs012", "params"] == 53_832
    assert table.loc["frozen", "params"] == 0 and table.loc["frozen", "fisher"] == 0
    assert table.loc[policy, "params"] <= PAPER_XXS
    assert table.loc["layernorm", "fisher"] == pytest.approx(scores.loc["layernorms", "fisher"])
    # greedy by Fisher per parameter captures at least the Fisher of the paper's choice at its budget
    assert table.loc[policy, "fisher"] >= table.loc["paper", "fisher"]


def test_select_groups_greedy_on_a_hand_made_table():
    scores = pd.DataFrame({"params": [10, 50, 30, 5, 20], "fisher_per_param": [5.0, 4.0, 3.0, 0.0, 2.0]},
                          index=pd.Index(["a", "b", "c", "d", "e"], name="group"))
    policy, ranking = select_groups(scores, 45, always=())
    assert policy == "groups:a,c"  # b does not fit after a, c does, e no longer does; d has no signal
    assert ranking["reason"].to_dict() == {"a": "selected", "b": "over budget", "c": "selected",
                                           "e": "over budget", "d": "no signal"}
    assert list(ranking["cumulative"]) == [10, 10, 40, 40, 40]
    policy, ranking = select_groups(scores, 45, always=("e",))
    assert policy == "groups:a,e" and ranking.index[0] == "e" and ranking.attrs["trainable"] == 30
    # ties keep model order
    tied = scores.assign(fisher_per_param=1.0)
    assert select_groups(tied, 60, always=())[0] == "groups:a,b"


def test_select_groups_errors(scores):
    with pytest.raises(ValueError, match="Unknown criterion 'hessian'"):
        select_groups(scores, PAPER_XXS, criterion="hessian")
    with pytest.raises(ValueError, match="hold 3,328 parameters, more than the budget of 1,000"):
        select_groups(scores, 1_000)
    with pytest.raises(ValueError, match="not groups of the scores"):
        select_groups(scores, PAPER_XXS, always=("norms",))
    for bad in (0, 14_488.5, True):
        with pytest.raises(ValueError, match="budget_params"):
            select_groups(scores, bad)
    with pytest.raises(ValueError, match="lack the column"):
        select_groups(scores.drop(columns="fisher_per_param"), PAPER_XXS)

"""MultiPositiveInfoNCE: every image of the same identity is a positive, both directions averaged."""
from __future__ import annotations

import math

import pytest
import torch

from hfr_tutorial.losses import CrossModalInfoNCE, MultiPositiveInfoNCE

pytestmark = pytest.mark.usefixtures("one_thread")


def _emb(seed: int, n: int, dim: int = 12) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _slow(vis, other, labels, tau):
    """The formula written in plain Python loops (an independent computation)."""
    v = [[float(x) for x in row] for row in vis]
    t = [[float(x) for x in row] for row in other]
    y = [int(x) for x in labels]

    def cos(a, b):
        return sum(p * q for p, q in zip(a, b)) / math.sqrt(sum(p * p for p in a) * sum(q * q for q in b))

    def one_direction(anchors, refs):
        out = []
        for i, a in enumerate(anchors):
            s = [cos(a, r) / tau for r in refs]
            log_z = math.log(sum(math.exp(x) for x in s))
            pos = [j for j in range(len(refs)) if y[j] == y[i]]
            out.append(-sum(s[p] - log_z for p in pos) / len(pos))
        return out

    a, b = one_direction(t, v), one_direction(v, t)
    return [0.5 * (p + q) for p, q in zip(a, b)]


def test_equals_crossmodal_infonce_when_labels_are_distinct():
    vis, other = _emb(0, 9), _emb(1, 9)
    labels = torch.arange(9) * 7
    for reduction in ("mean", "sum", "none"):
        for tau in (0.07, 0.5):
            ours = MultiPositiveInfoNCE(tau, reduction)(vis, other, labels)
            ref = CrossModalInfoNCE(tau, symmetric=True, reduction=reduction)(vis, other)
            assert torch.allclose(ours, ref, atol=1e-10)


def test_equals_a_slow_loop_reference_with_repeated_labels():
    vis, other = _emb(2, 10), _emb(3, 10)
    labels = torch.tensor([4, 1, 4, 2, 1, 4, 3, 3, 9, 2])
    for tau in (0.07, 0.3):
        ref = torch.tensor(_slow(vis, other, labels, tau), dtype=torch.float64)
        none = MultiPositiveInfoNCE(tau, "none")(vis, other, labels)
        assert none.shape == (10,) and torch.allclose(none, ref, atol=1e-9)
        assert torch.isclose(MultiPositiveInfoNCE(tau, "mean")(vis, other, labels), ref.mean(), atol=1e-9)
        assert torch.isclose(MultiPositiveInfoNCE(tau, "sum")(vis, other, labels), ref.sum(), atol=1e-9)
    # repeated labels really change the value (a second image is no longer a negative)
    assert not torch.isclose(MultiPositiveInfoNCE()(vis, other, labels), CrossModalInfoNCE()(vis, other))


def test_gradients_flow_to_both_batches_and_pull_positives_together():
    vis, other = _emb(4, 8).requires_grad_(), _emb(5, 8).requires_grad_()
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = MultiPositiveInfoNCE(0.1)(vis, other, labels)
    loss.backward()
    assert vis.grad is not None and other.grad is not None
    assert torch.isfinite(vis.grad).all() and vis.grad.abs().sum() > 0 and other.grad.abs().sum() > 0
    # one gradient step lowers the loss
    with torch.no_grad():
        v2, o2 = vis - 0.5 * vis.grad, other - 0.5 * other.grad
    assert MultiPositiveInfoNCE(0.1)(v2, o2, labels) < loss.detach()


def test_perfectly_aligned_identities_score_lower_than_shuffled():
    centres = _emb(6, 4, dim=32)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    vis = centres[labels] + 0.01 * _emb(7, 8, dim=32)
    other = centres[labels] + 0.01 * _emb(8, 8, dim=32)
    loss = MultiPositiveInfoNCE(0.1)
    good = loss(vis, other, labels)
    bad = loss(vis, other[torch.tensor([2, 3, 4, 5, 6, 7, 0, 1])], labels)
    assert good < bad
    # the floor with two positives per row is log(2): both positives share the probability
    assert abs(float(good) - math.log(2)) < 0.05


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="temperature"):
        MultiPositiveInfoNCE(temperature=0)
    with pytest.raises(ValueError, match="reduction"):
        MultiPositiveInfoNCE(reduction="max")
    with pytest.raises(ValueError, match="paired rows"):
        MultiPositiveInfoNCE()(_emb(0, 4), _emb(1, 5), torch.arange(4))
    with pytest.raises(ValueError, match="one identity per row"):
        MultiPositiveInfoNCE()(_emb(0, 4), _emb(1, 4), torch.arange(5))


def test_a_run_can_name_it_and_a_batch_of_one_pair_is_refused():
    from hfr_tutorial.losses import CONTRASTIVE_LOSSES, make_contrastive_loss, make_method_loss

    assert "multipositive" in CONTRASTIVE_LOSSES
    loss = make_contrastive_loss("multipositive", temperature=0.2)
    assert isinstance(loss, MultiPositiveInfoNCE) and loss.temperature == 0.2
    vis, other, labels = _emb(0, 6), _emb(1, 6), torch.tensor([0, 0, 1, 1, 2, 2])
    terms = make_method_loss("pairwise+multipositive", temperature=0.2)(vis, other, labels)
    assert torch.isclose(terms["multipositive"], MultiPositiveInfoNCE(0.2)(vis, other, labels))
    assert torch.isclose(terms["loss"], terms["pairwise"] + terms["multipositive"])
    one = _emb(2, 1)
    with pytest.raises(ValueError, match="no negative"):  # one pair: the loss would teach nothing
        MultiPositiveInfoNCE()(one, one, torch.zeros(1))
    with pytest.raises(ValueError, match="needs labels"):
        MultiPositiveInfoNCE()(vis, other, None)

"""Losses compared with independent computations: plain loops and pytorch-metric-learning.

How pytorch-metric-learning (PML) relates to our losses (checked against PML 2.x source):

* ``ContrastiveLoss(pos_margin, neg_margin, distance=CosineSimilarity())``: for a similarity
  (``is_inverted``) ``distance.margin(x, y) = y - x``, so a positive pair costs
  ``relu(pos_margin - cos)`` and a negative pair ``relu(cos - neg_margin)``.  With
  ``pos_margin=1`` the positive term is ``relu(1 - cos) = 1 - cos`` (cos <= 1): exactly
  xEdgeFace's ``y*(1-cos) + (1-y)*max(0, cos-m)``.  PML returns two sub-losses (positive pairs,
  negative pairs), reduces each with the reducer and *sums* them: with ``MeanReducer`` that is
  mean over positive pairs + mean over negative pairs, our ``reduction="mean", balanced=True``;
  with ``SumReducer`` it is our ``"sum"``; ``DoNothingReducer`` gives the per-pair terms (our
  ``"none"`` matrix, indexed by PML's pair indices).  PML's *default* reducer,
  ``AvgNonZeroReducer``, averages only the non-zero terms, which we do not; our unbalanced mean
  (over all pairs) has no PML reducer, it is ``SumReducer``'s value over ``B_vis * B_other``.
  With ``ref_emb``/``ref_labels`` (a distinct labels tensor) PML uses every (query, ref) pair,
  the diagonal included, as we do.  PML returns 0 when there is at most one pair of each kind;
  the tests use bigger batches.
* ``NTXentLoss(temperature, distance=CosineSimilarity())`` with ``ref_emb`` and labels
  ``arange(B)`` on both sides: each query row has one positive (its own pair) and the other
  B-1 refs as negatives, loss ``-log(exp(s_ii/T) / sum_j exp(s_ij/T))`` averaged over rows, i.e.
  one direction of our InfoNCE (queries = the side whose rows are the softmax rows).  PML adds a
  tiny ``finfo.tiny`` inside the log, negligible here.  Our symmetric loss is the mean of the
  two directions.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import ContrastiveLoss, NTXentLoss
from pytorch_metric_learning.reducers import DoNothingReducer, MeanReducer, SumReducer

from hfr_tutorial.losses import (
    CrossModalInfoNCE,
    PairwiseContrastiveLoss,
    SelfDistillationLoss,
    make_contrastive_loss,
)

DIM = 16


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def _embeddings(seed: int, n: int, dim: int = DIM, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=generator, dtype=dtype)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.tolist(), b.tolist()
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.fixture
def pair_batch():
    """VIS and NIR embeddings with repeated identities (several positives per row), float64.

    A small shared component per identity makes some positive and negative cosines exceed the
    margin so that both branches of the hinge are exercised.
    """
    vis_labels = torch.tensor([0, 1, 2, 3, 0, 1, 4, 5])
    other_labels = torch.tensor([0, 1, 2, 3, 4, 2, 6, 0, 1, 5])
    centres = _embeddings(99, 7)
    vis = centres[vis_labels] + 0.8 * _embeddings(1, len(vis_labels))
    other = centres[other_labels] + 0.8 * _embeddings(2, len(other_labels))
    return vis, other, vis_labels, other_labels


def _loop_terms(vis, other, vis_labels, other_labels, margin):
    terms = [[0.0] * len(other) for _ in range(len(vis))]
    for i in range(len(vis)):
        for j in range(len(other)):
            c = _cos(vis[i], other[j])
            y = 1.0 if int(vis_labels[i]) == int(other_labels[j]) else 0.0
            terms[i][j] = y * (1 - c) + (1 - y) * max(0.0, c - margin)
    return terms


# ------------------------------------------------------------------------------------------
# PairwiseContrastiveLoss
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("margin", [0.0, 0.3, 0.5])
def test_pairwise_matches_loop_all_reductions(pair_batch, margin):
    vis, other, a, b = pair_batch
    terms = _loop_terms(vis, other, a, b, margin)
    flat = [t for row in terms for t in row]
    same = [[int(a[i]) == int(b[j]) for j in range(len(b))] for i in range(len(a))]
    pos = [terms[i][j] for i in range(len(a)) for j in range(len(b)) if same[i][j]]
    neg = [terms[i][j] for i in range(len(a)) for j in range(len(b)) if not same[i][j]]
    assert len(pos) >= 5 and len(neg) >= 30
    if margin < 0.5:  # the hinge is active for some negatives and not for others
        assert 0 < sum(t > 0 for t in neg) < len(neg)

    none = PairwiseContrastiveLoss(margin=margin, reduction="none")(vis, other, a, b)
    assert none.shape == (len(vis), len(other))
    torch.testing.assert_close(none, torch.tensor(terms, dtype=none.dtype), rtol=0, atol=1e-12)

    total = PairwiseContrastiveLoss(margin=margin, reduction="sum")(vis, other, a, b)
    assert total.item() == pytest.approx(sum(flat), abs=1e-10)

    plain = PairwiseContrastiveLoss(margin=margin, reduction="mean", balanced=False)(vis, other, a, b)
    assert plain.item() == pytest.approx(sum(flat) / len(flat), abs=1e-12)

    balanced = PairwiseContrastiveLoss(margin=margin, reduction="mean")(vis, other, a, b)
    assert balanced.item() == pytest.approx(sum(pos) / len(pos) + sum(neg) / len(neg), abs=1e-12)
    assert balanced.item() != pytest.approx(plain.item(), abs=1e-3)  # the two means really differ


def test_pairwise_defaults_other_labels_to_vis_labels():
    vis, other = _embeddings(3, 6), _embeddings(4, 6)
    labels = torch.arange(6)
    loss = PairwiseContrastiveLoss(margin=0.2)
    assert loss(vis, other, labels).item() == pytest.approx(loss(vis, other, labels, labels.clone()).item())
    # with one positive per row (the diagonal) the balanced mean is mean(1 - cos_ii) + mean over the rest
    terms = _loop_terms(vis, other, labels, labels, 0.2)
    pos = [terms[i][i] for i in range(6)]
    neg = [terms[i][j] for i in range(6) for j in range(6) if i != j]
    assert loss(vis, other, labels).item() == pytest.approx(sum(pos) / 6 + sum(neg) / 30, abs=1e-12)


def test_pairwise_is_scale_invariant(pair_batch):
    vis, other, a, b = pair_batch
    loss = PairwiseContrastiveLoss(margin=0.3)
    scales = torch.linspace(0.1, 10, len(vis), dtype=vis.dtype)[:, None]
    assert loss(vis * scales, 5 * other, a, b).item() == pytest.approx(loss(vis, other, a, b).item(), abs=1e-12)


def test_pairwise_extreme_cases():
    x = _embeddings(5, 4)
    labels = torch.arange(4)
    # identical embeddings of the same identity: positive terms vanish
    none = PairwiseContrastiveLoss(margin=0.5, reduction="none")(x, x.clone(), labels)
    torch.testing.assert_close(none.diagonal(), torch.zeros(4, dtype=x.dtype), rtol=0, atol=1e-12)
    # opposite embeddings of the same identity: the positive term is 2; of different identities: 0
    opposite = PairwiseContrastiveLoss(margin=0.0, reduction="none")(x, -x, labels, labels)
    torch.testing.assert_close(opposite.diagonal(), torch.full((4,), 2.0, dtype=x.dtype))
    # all labels distinct from the other side: no positives, the balanced mean is the negative mean
    loss = PairwiseContrastiveLoss(margin=-1.0)(x, x.clone(), labels, labels + 10)
    expected = 1 + F.normalize(x) @ F.normalize(x).T  # cos - (-1)
    assert loss.item() == pytest.approx(expected.mean().item(), abs=1e-12)


def _pml_contrastive(margin, reducer):
    return ContrastiveLoss(pos_margin=1, neg_margin=margin, distance=CosineSimilarity(), reducer=reducer)


@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_pairwise_matches_pytorch_metric_learning(pair_batch, margin):
    vis, other, a, b = pair_batch
    b = b.clone()  # a distinct ref_labels tensor: PML keeps every (query, ref) pair
    ours_mean = PairwiseContrastiveLoss(margin=margin, reduction="mean", balanced=True)(vis, other, a, b)
    pml_mean = _pml_contrastive(margin, MeanReducer())(vis, a, ref_emb=other, ref_labels=b)
    assert ours_mean.item() == pytest.approx(pml_mean.item(), abs=1e-10)

    ours_sum = PairwiseContrastiveLoss(margin=margin, reduction="sum")(vis, other, a, b)
    pml_sum = _pml_contrastive(margin, SumReducer())(vis, a, ref_emb=other, ref_labels=b)
    assert ours_sum.item() == pytest.approx(pml_sum.item(), abs=1e-10)

    # the unbalanced mean is PML's sum over the number of pairs
    ours_plain = PairwiseContrastiveLoss(margin=margin, reduction="mean", balanced=False)(vis, other, a, b)
    assert ours_plain.item() == pytest.approx(pml_sum.item() / (len(vis) * len(other)), abs=1e-12)

    # per-pair terms, placed by PML's pair indices
    ours_none = PairwiseContrastiveLoss(margin=margin, reduction="none")(vis, other, a, b)
    raw = _pml_contrastive(margin, DoNothingReducer())(vis, a, ref_emb=other, ref_labels=b)
    rebuilt = torch.full_like(ours_none, float("nan"))
    for key in ("pos_loss", "neg_loss"):
        rows, cols = raw[key]["indices"]
        rebuilt[rows, cols] = raw[key]["losses"]
    assert not torch.isnan(rebuilt).any()  # PML covered every pair, diagonal included
    torch.testing.assert_close(ours_none, rebuilt, rtol=0, atol=1e-12)


def test_pml_default_reducer_differs_as_documented(pair_batch):
    """PML's default AvgNonZeroReducer averages only non-zero terms: not our balanced mean."""
    vis, other, a, b = pair_batch
    terms = torch.tensor(_loop_terms(vis, other, a, b, 0.3), dtype=vis.dtype)
    same = a[:, None] == b[None, :]
    neg = terms[~same]
    assert (neg == 0).any()
    expected = terms[same].mean() + neg[neg > 0].mean()
    pml = ContrastiveLoss(pos_margin=1, neg_margin=0.3, distance=CosineSimilarity())(
        vis, a, ref_emb=other, ref_labels=b.clone())
    assert pml.item() == pytest.approx(expected.item(), abs=1e-10)
    ours = PairwiseContrastiveLoss(margin=0.3)(vis, other, a, b)
    assert ours.item() < pml.item() - 1e-3


def test_pairwise_gradients_reach_both_sides(pair_batch):
    vis, other, a, b = (t.clone() for t in pair_batch)
    vis.requires_grad_(True)
    other.requires_grad_(True)
    PairwiseContrastiveLoss(margin=0.3)(vis, other, a, b).backward()
    assert vis.grad is not None and other.grad is not None
    assert vis.grad.abs().sum() > 0 and other.grad.abs().sum() > 0
    assert torch.isfinite(vis.grad).all() and torch.isfinite(other.grad).all()


def test_pairwise_gradient_matches_finite_differences(pair_batch):
    vis, other, a, b = (t.clone() for t in pair_batch)
    vis.requires_grad_(True)
    other.requires_grad_(True)
    loss = PairwiseContrastiveLoss(margin=0.3)
    assert torch.autograd.gradcheck(lambda v, o: loss(v, o, a, b), (vis, other), fast_mode=True)


# ------------------------------------------------------------------------------------------
# CrossModalInfoNCE
# ------------------------------------------------------------------------------------------

def _loop_infonce(vis, other, temperature):
    """Per pair: -log softmax of the right partner, other->VIS and VIS->other."""
    n = len(vis)
    sims = [[_cos(other[i], vis[j]) / temperature for j in range(n)] for i in range(n)]
    o2v = [-(sims[i][i] - math.log(sum(math.exp(s) for s in sims[i]))) for i in range(n)]
    columns = [[sims[i][j] for i in range(n)] for j in range(n)]
    v2o = [-(columns[j][j] - math.log(sum(math.exp(s) for s in columns[j]))) for j in range(n)]
    return o2v, v2o


@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_infonce_matches_loop(temperature):
    vis = _embeddings(10, 7)
    other = vis + 1.2 * _embeddings(11, 7)  # correlated partners, not trivially separable
    o2v, v2o = _loop_infonce(vis, other, temperature)
    sym = [(x + y) / 2 for x, y in zip(o2v, v2o)]

    none = CrossModalInfoNCE(temperature, reduction="none")(vis, other)
    torch.testing.assert_close(none, torch.tensor(sym, dtype=none.dtype), rtol=1e-10, atol=1e-10)
    mean = CrossModalInfoNCE(temperature)(vis, other)
    assert mean.item() == pytest.approx(sum(sym) / len(sym), rel=1e-10)
    total = CrossModalInfoNCE(temperature, reduction="sum")(vis, other)
    assert total.item() == pytest.approx(sum(sym), rel=1e-10)
    one_way = CrossModalInfoNCE(temperature, symmetric=False, reduction="none")(vis, other)
    torch.testing.assert_close(one_way, torch.tensor(o2v, dtype=none.dtype), rtol=1e-10, atol=1e-10)
    assert o2v != pytest.approx(v2o)  # the two directions really differ


def test_infonce_matches_cross_entropy():
    vis, other = _embeddings(12, 9, dtype=torch.float32), _embeddings(13, 9, dtype=torch.float32)
    t = 0.1
    logits = F.normalize(other, dim=1) @ F.normalize(vis, dim=1).T / t
    target = torch.arange(9)
    expected = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    assert CrossModalInfoNCE(t)(vis, other).item() == pytest.approx(expected.item(), rel=1e-5)
    one_way = F.cross_entropy(logits, target, reduction="sum")
    got = CrossModalInfoNCE(t, symmetric=False, reduction="sum")(vis, other)
    assert got.item() == pytest.approx(one_way.item(), rel=1e-5)


@pytest.mark.parametrize("temperature", [0.07, 0.3])
def test_infonce_matches_pml_ntxent(temperature):
    vis = _embeddings(14, 8)
    other = vis + _embeddings(15, 8)
    labels = torch.arange(8)
    ntxent = NTXentLoss(temperature=temperature, distance=CosineSimilarity())
    other_to_vis = ntxent(other, labels, ref_emb=vis, ref_labels=labels.clone())
    vis_to_other = ntxent(vis, labels, ref_emb=other, ref_labels=labels.clone())
    one_way = CrossModalInfoNCE(temperature, symmetric=False)(vis, other)
    assert one_way.item() == pytest.approx(other_to_vis.item(), rel=1e-9)
    sym = CrossModalInfoNCE(temperature)(vis, other)
    assert sym.item() == pytest.approx(0.5 * (other_to_vis + vis_to_other).item(), rel=1e-9)


def test_infonce_perfect_alignment_and_scale_invariance():
    vis = F.normalize(torch.eye(5, dtype=torch.float64) + 0.0, dim=1)
    # orthogonal pairs matched exactly: loss = log(1 + (B-1) * exp(-1/T))
    t = 0.1
    expected = math.log(1 + 4 * math.exp(-1 / t))
    assert CrossModalInfoNCE(t)(vis, vis.clone()).item() == pytest.approx(expected, rel=1e-12)
    x, y = _embeddings(16, 6), _embeddings(17, 6)
    assert CrossModalInfoNCE(t)(3 * x, 0.2 * y).item() == pytest.approx(CrossModalInfoNCE(t)(x, y).item(), rel=1e-12)


def test_infonce_gradients_reach_both_sides():
    vis, other = _embeddings(18, 5).requires_grad_(True), _embeddings(19, 5).requires_grad_(True)
    CrossModalInfoNCE(0.2)(vis, other).backward()
    for t in (vis, other):
        assert t.grad is not None and t.grad.abs().sum() > 0 and torch.isfinite(t.grad).all()
    assert torch.autograd.gradcheck(lambda v, o: CrossModalInfoNCE(0.2)(v, o),
                                    (vis.detach().requires_grad_(True), other.detach().requires_grad_(True)), fast_mode=True)


# ------------------------------------------------------------------------------------------
# SelfDistillationLoss
# ------------------------------------------------------------------------------------------

def test_distillation_cosine_and_mse_match_formulas():
    student, teacher = _embeddings(20, 6), _embeddings(21, 6)
    cos_rows = [1 - _cos(student[i], teacher[i]) for i in range(6)]
    mse_rows = []
    for i in range(6):
        s = [v / math.sqrt(sum(x * x for x in student[i].tolist())) for v in student[i].tolist()]
        t = [v / math.sqrt(sum(x * x for x in teacher[i].tolist())) for v in teacher[i].tolist()]
        mse_rows.append(sum((p - q) ** 2 for p, q in zip(s, t)) / DIM)
    # on unit vectors |s - t|^2 = 2 (1 - cos): the two kinds agree up to 2 / D
    assert mse_rows == pytest.approx([2 * c / DIM for c in cos_rows], rel=1e-10)

    none = SelfDistillationLoss(kind="cosine", reduction="none")(student, teacher)
    torch.testing.assert_close(none, torch.tensor(cos_rows, dtype=none.dtype), rtol=1e-12, atol=1e-12)
    assert SelfDistillationLoss()(student, teacher).item() == pytest.approx(sum(cos_rows) / 6, rel=1e-12)
    assert SelfDistillationLoss(reduction="sum")(student, teacher).item() == pytest.approx(sum(cos_rows), rel=1e-12)
    mse = SelfDistillationLoss(kind="mse", reduction="none")(student, teacher)
    torch.testing.assert_close(mse, torch.tensor(mse_rows, dtype=mse.dtype), rtol=1e-12, atol=1e-12)
    assert SelfDistillationLoss(kind="mse")(student, teacher).item() == pytest.approx(sum(mse_rows) / 6, rel=1e-12)
    # torch's own MSE on the normalised embeddings
    expected = F.mse_loss(F.normalize(student), F.normalize(teacher))
    assert SelfDistillationLoss(kind="mse")(student, teacher).item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize("kind", ["cosine", "mse"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_distillation_weight_scales(kind, reduction):
    student, teacher = _embeddings(22, 5), _embeddings(23, 5)
    base = SelfDistillationLoss(1.0, kind, reduction)(student, teacher)
    scaled = SelfDistillationLoss(10.0, kind, reduction)(student, teacher)
    torch.testing.assert_close(scaled, 10.0 * base)
    assert (base > 0).all()
    zero = SelfDistillationLoss(0.0, kind, reduction)(student, teacher)
    assert (zero == 0).all()


@pytest.mark.parametrize("kind", ["cosine", "mse"])
def test_distillation_zero_when_student_equals_teacher(kind):
    x = _embeddings(24, 5)
    assert SelfDistillationLoss(3.0, kind)(x, x.clone()).item() == pytest.approx(0.0, abs=1e-12)
    # scale-free: a rescaled copy is also "equal"
    assert SelfDistillationLoss(3.0, kind)(2.5 * x, x).item() == pytest.approx(0.0, abs=1e-12)
    assert SelfDistillationLoss(1.0, kind)(-x, x).item() > 0


@pytest.mark.parametrize("kind", ["cosine", "mse"])
def test_distillation_teacher_gets_no_gradient(kind):
    student = _embeddings(25, 4).requires_grad_(True)
    teacher = _embeddings(26, 4).requires_grad_(True)
    SelfDistillationLoss(2.0, kind)(student, teacher).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda s: SelfDistillationLoss(2.0, kind)(s, teacher),
                                    (student.detach().requires_grad_(True),), fast_mode=True)


# ------------------------------------------------------------------------------------------
# Argument checks
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: PairwiseContrastiveLoss(reduction="avg"),
    lambda: CrossModalInfoNCE(reduction="batchmean"),
    lambda: SelfDistillationLoss(reduction=None),
    lambda: CrossModalInfoNCE(temperature=0),
    lambda: CrossModalInfoNCE(temperature=-0.1),
    lambda: SelfDistillationLoss(kind="kl"),
])
def test_bad_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


def test_bad_reduction_message_names_choices():
    with pytest.raises(ValueError, match="mean.*sum.*none"):
        PairwiseContrastiveLoss(reduction="avg")


@pytest.mark.parametrize("a_shape, b_shape", [((4, 8), (4, 7)), ((4,), (4,)), ((2, 4, 8), (2, 4, 8))])
def test_bad_shapes_raise(a_shape, b_shape):
    a, b = torch.randn(*a_shape), torch.randn(*b_shape)
    labels = torch.arange(a_shape[0])
    with pytest.raises(ValueError):
        PairwiseContrastiveLoss()(a, b, labels)
    with pytest.raises(ValueError):
        CrossModalInfoNCE()(a, b)
    with pytest.raises(ValueError):
        SelfDistillationLoss()(a, b)


def test_infonce_needs_paired_rows():
    with pytest.raises(ValueError, match="paired"):
        CrossModalInfoNCE()(torch.randn(4, 8), torch.randn(5, 8))
    # the pairwise loss accepts unequal batch sizes
    loss = PairwiseContrastiveLoss(reduction="none")(torch.randn(4, 8), torch.randn(5, 8),
                                                     torch.arange(4), torch.arange(5))
    assert loss.shape == (4, 5)


def test_make_contrastive_loss():
    loss = make_contrastive_loss("infonce", temperature=0.2)
    assert isinstance(loss, CrossModalInfoNCE) and loss.temperature == 0.2
    loss = make_contrastive_loss("pairwise", margin=0.4)
    assert isinstance(loss, PairwiseContrastiveLoss) and loss.margin == 0.4
    with pytest.raises(ValueError, match="infonce"):
        make_contrastive_loss("triplet")

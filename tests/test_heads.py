"""Margin heads: CosFace / ArcFace logits against their formulas, and a tiny training run."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hfr_tutorial.models.heads import ArcFaceHead, CosFaceHead, MarginHead, make_head


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def _setup(head_cls, seed=0, batch=6, dim=10, classes=5, **kwargs):
    torch.manual_seed(seed)
    head = head_cls(dim, classes, **kwargs)
    embeddings = torch.randn(batch, dim)
    labels = torch.randint(0, classes, (batch,))
    return head, embeddings, labels


def _reference_cosine(head, embeddings):
    """Cosines computed row by row, independently of ``MarginHead.cosine``."""
    w = head.weight.detach()
    rows = []
    for e in embeddings:
        rows.append([float(torch.dot(e, c) / (e.norm() * c.norm())) for c in w])
    return torch.tensor(rows)


@pytest.mark.parametrize("scale, margin", [(32.0, 0.35), (16.0, 0.2), (64.0, 0.0)])
def test_cosface_logits(scale, margin):
    head, x, y = _setup(CosFaceHead, scale=scale, margin=margin)
    cos = _reference_cosine(head, x)
    logits = head(x, y)
    assert logits.shape == (6, 5)
    for i in range(6):
        for c in range(5):
            expected = scale * (cos[i, c] - margin) if c == y[i] else scale * cos[i, c]
            assert logits[i, c].item() == pytest.approx(expected.item(), abs=1e-4)
    # exactly one entry per row moved, by s*m
    delta = head(x) - logits
    torch.testing.assert_close(delta, scale * margin * F.one_hot(y, 5).float(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("head_cls", [CosFaceHead, ArcFaceHead])
def test_without_labels_plain_scaled_cosine(head_cls):
    head, x, _ = _setup(head_cls, scale=20.0, margin=0.4)
    torch.testing.assert_close(head(x), 20.0 * _reference_cosine(head, x), rtol=0, atol=1e-4)
    # scale-free in the embedding
    torch.testing.assert_close(head(7.0 * x), head(x), rtol=0, atol=1e-4)


@pytest.mark.parametrize("scale, margin", [(64.0, 0.5), (30.0, 0.3)])
def test_arcface_logits_where_angle_plus_margin_below_pi(scale, margin):
    head, x, y = _setup(ArcFaceHead, seed=1, batch=8, scale=scale, margin=margin)
    cos = _reference_cosine(head, x)
    logits = head(x, y)
    checked = 0
    for i in range(8):
        for c in range(5):
            if c == y[i]:
                theta = math.acos(float(cos[i, c]))
                assert theta + margin < math.pi
                expected = scale * math.cos(theta + margin)
                checked += 1
            else:
                expected = scale * float(cos[i, c])
            assert logits[i, c].item() == pytest.approx(expected, abs=1e-4)
    assert checked == 8


def test_arcface_target_is_harder_and_matches_angle_form_on_a_grid():
    """Embeddings at chosen angles to the class centre: target = s cos(theta + m) for theta < pi - m."""
    margin, scale = 0.5, 64.0
    head = ArcFaceHead(2, 2, scale=scale, margin=margin)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    thetas = torch.linspace(0.05, math.pi - margin - 0.05, 25)
    x = torch.stack([torch.cos(thetas), torch.sin(thetas)], dim=1)
    logits = head(x, torch.zeros(25, dtype=torch.long))
    torch.testing.assert_close(logits[:, 0], scale * torch.cos(thetas + margin), rtol=0, atol=1e-4)
    torch.testing.assert_close(logits[:, 1], scale * torch.sin(thetas), rtol=0, atol=1e-4)
    assert (logits[:, 0] < scale * torch.cos(thetas)).all()


def test_arcface_fallback_past_pi_is_monotonic_and_below_plain():
    """Past theta = pi - m the logit falls back to s (cos - m sin m): still decreasing in theta."""
    margin, scale = 0.5, 64.0
    head = ArcFaceHead(2, 2, scale=scale, margin=margin)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    thetas = torch.linspace(0.01, math.pi - 0.01, 400)
    x = torch.stack([torch.cos(thetas), torch.sin(thetas)], dim=1)
    target = head(x, torch.zeros(400, dtype=torch.long))[:, 0]
    assert (target[1:] < target[:-1]).all()
    past = thetas > math.pi - margin
    assert past.any()
    expected = scale * (torch.cos(thetas[past]) - math.sin(math.pi - margin) * margin)
    torch.testing.assert_close(target[past], expected, rtol=0, atol=1e-4)
    assert (target < scale * torch.cos(thetas)).all()


def _clusters(seed=0, per_class=25, classes=4, in_dim=8, emb_dim=32):
    generator = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(classes, in_dim, generator=generator)
    labels = torch.arange(classes).repeat_interleave(per_class)
    points = centres[labels] + 0.5 * torch.randn(len(labels), in_dim, generator=generator)
    torch.manual_seed(seed)
    projection = nn.Linear(in_dim, emb_dim).requires_grad_(False)  # fixed random "backbone"
    return projection(points), labels


@pytest.mark.parametrize("head_cls, kwargs", [(CosFaceHead, {"scale": 16.0, "margin": 0.35}),
                                              (ArcFaceHead, {"scale": 16.0, "margin": 0.5}),
                                              (ArcFaceHead, {})])
def test_tiny_training_run_reaches_full_accuracy(head_cls, kwargs):
    embeddings, labels = _clusters()
    torch.manual_seed(0)
    head = head_cls(embeddings.shape[1], 4, **kwargs)
    with torch.no_grad():
        before = (head(embeddings).argmax(1) == labels).float().mean().item()
    # Adam: the centres start tiny (std 0.01) and are normalised, so plain SGD steps would be huge
    optimizer = torch.optim.Adam(head.parameters(), lr=0.01)
    losses = []
    for _ in range(100):
        loss = F.cross_entropy(head(embeddings, labels), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        accuracy = (head(embeddings).argmax(1) == labels).float().mean().item()
    assert before < 0.75  # the random head starts far from the answer
    assert accuracy == 1.0
    assert losses[-1] < 0.5 * losses[0]


def test_margin_head_gradient_reaches_embeddings_and_centres():
    head, x, y = _setup(ArcFaceHead, scale=16.0, margin=0.3)
    x.requires_grad_(True)
    F.cross_entropy(head(x, y), y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("head_cls", [CosFaceHead, ArcFaceHead])
@pytest.mark.parametrize("classes", [0, 1])
def test_fewer_than_two_classes_raises(head_cls, classes):
    with pytest.raises(ValueError, match="at least 2"):
        head_cls(8, classes)


def test_defaults_and_make_head():
    assert (CosFaceHead(4, 3).scale, CosFaceHead(4, 3).margin) == (32.0, 0.35)
    assert (ArcFaceHead(4, 3).scale, ArcFaceHead(4, 3).margin) == (64.0, 0.5)
    head = make_head("arcface", 12, 7, scale=10.0, margin=0.2)
    assert isinstance(head, ArcFaceHead) and head.weight.shape == (7, 12)
    assert (head.scale, head.margin) == (10.0, 0.2)
    assert isinstance(make_head("cosface", 4, 2, 8.0, 0.1), CosFaceHead)
    with pytest.raises(ValueError, match="arcface"):
        make_head("sphereface", 4, 2, 8.0, 0.1)
    with pytest.raises(NotImplementedError):
        MarginHead(4, 2)(torch.randn(2, 4), torch.tensor([0, 1]))

"""SmallMapDepthwiseConv2d: the matrix form of a depthwise convolution equals the convolution."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hfr_tutorial.models import SmallMapDepthwiseConv2d, create_edgeface, use_small_map_depthwise
from hfr_tutorial.models.edgeface import depthwise_as_matmul

# (channels, map side, kernel): every depthwise shape of EdgeFace-XXS at 64 px and 112 px, plus a
# map larger than its kernel window (where the module must fall back to the convolution).
SHAPES = [(24, 16, 3), (48, 8, 5), (88, 4, 7), (168, 2, 9), (42, 2, 3), (88, 7, 7), (168, 3, 9), (30, 3, 3)]


@pytest.mark.parametrize("channels,side,kernel", SHAPES)
def test_matrix_form_equals_the_convolution_forward_and_backward(channels, side, kernel):
    torch.manual_seed(0)
    x = torch.randn(5, channels, side, side, requires_grad=True)
    w = torch.randn(channels, 1, kernel, kernel, requires_grad=True)
    b = torch.randn(channels, requires_grad=True)
    pad = (kernel // 2, kernel // 2)
    ref = F.conv2d(x, w, b, padding=pad, groups=channels)
    out = depthwise_as_matmul(x, w, b, pad)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    g = torch.randn_like(ref)
    grads_ref = torch.autograd.grad(ref, (x, w, b), g)
    grads = torch.autograd.grad(out, (x, w, b), g)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, atol=1e-3, rtol=1e-4)


def test_rectangular_map_and_no_bias():
    torch.manual_seed(1)
    x = torch.randn(2, 6, 2, 3)
    w = torch.randn(6, 1, 5, 5)
    torch.testing.assert_close(depthwise_as_matmul(x, w, None, (2, 2)), F.conv2d(x, w, None, padding=2, groups=6),
                               atol=1e-5, rtol=1e-5)


def test_edgeface_uses_it_only_for_same_depthwise_convs_and_keeps_its_state_dict():
    model = create_edgeface("edgeface_xxs")
    swapped = [n for n, m in model.named_modules() if type(m) is SmallMapDepthwiseConv2d]
    assert len(swapped) == 15  # 10 conv_dw of the conv blocks and 5 convs of the SDTA blocks
    assert all(n.endswith("conv_dw") or ".convs." in n for n in swapped)
    assert type(model.model.stem[0]) is nn.Conv2d  # the 4x4 stride-4 stem is no depthwise conv
    plain = copy.deepcopy(model)
    assert use_small_map_depthwise(plain, enabled=False) == 15
    assert not any(type(m) is SmallMapDepthwiseConv2d for m in plain.modules())
    assert list(model.state_dict()) == list(plain.state_dict())


@pytest.mark.parametrize("size", [64, 112])
def test_training_step_gradients_match_the_plain_model(size):
    """One forward and backward of the whole network in training mode, both forms."""
    torch.manual_seed(0)
    fast = create_edgeface("edgeface_xxs").train()
    plain = copy.deepcopy(fast)
    use_small_map_depthwise(plain, enabled=False)
    x = torch.randn(4, 3, size, size)
    out_fast, out_plain = fast(x), plain(x)
    torch.testing.assert_close(out_fast, out_plain, atol=1e-4, rtol=1e-4)
    out_fast.square().sum().backward()
    out_plain.square().sum().backward()
    for (name, p), q in zip(fast.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-3, rtol=1e-3, msg=lambda m: f"{name}: {m}")


def test_eval_mode_is_the_plain_convolution_exactly():
    torch.manual_seed(0)
    model = create_edgeface("edgeface_xxs").eval()
    plain = copy.deepcopy(model)
    use_small_map_depthwise(plain, enabled=False)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))


def test_a_frozen_weight_takes_the_plain_convolution(monkeypatch):
    """The matrix form pays only for the weight's gradient: a frozen conv keeps the convolution."""
    import hfr_tutorial.models.edgeface as edgeface

    calls = []
    monkeypatch.setattr(edgeface, "depthwise_as_matmul", lambda *a, **k: calls.append(1) or F.conv2d(
        a[0], a[1], a[2], padding=a[3], groups=a[0].shape[1]))
    conv = nn.Conv2d(8, 8, 7, padding=3, groups=8)
    use_small_map_depthwise(nn.Sequential(conv))
    conv.train()(torch.randn(2, 8, 4, 4))
    assert calls == [1]
    conv.weight.requires_grad_(False)
    conv(torch.randn(2, 8, 4, 4))
    assert calls == [1]
    conv.weight.requires_grad_(True)
    conv.eval()(torch.randn(2, 8, 4, 4))
    assert calls == [1]

"""The optimiser and the learning-rate schedule both training loops use.

AdamW with a linear warm-up over a fraction of the steps, then a cosine decay to zero.

Taught in: ``notebooks/05_full_training.ipynb``.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

FUSED_ADAMW_DEVICES = ("cpu", "cuda")
"""Device types whose AdamW has the fused kernel (torch checks this only at the first step)."""


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup_fraction`` of the steps, then cosine to zero."""
    warmup = max(1, int(round(total_steps * warmup_fraction)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def adamw(params: Sequence[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, with the fused kernel when every parameter is a float tensor on a CPU or CUDA device.

    The fused update handles all tensors at once: about 4x faster than the per-tensor loop on a CPU,
    where the optimiser step was a tenth of a training step.
    """
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_ADAMW_DEVICES and p.is_floating_point() for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def warmup_cosine_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                            warmup_fraction: float) -> torch.optim.lr_scheduler.LambdaLR:
    """The :func:`warmup_cosine` schedule attached to ``optimizer``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup_fraction))

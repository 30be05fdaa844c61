"""Tuning policies: which parameters of a pretrained EdgeFace learn during adaptation.

The method's premise is that the modality gap is mostly *low-level* (reflectance, emission,
contrast, texture, noise): the early convolutional layers and the normalisation statistics see
it, while the deeper layers that encode identity can stay as the RGB model learnt them.  So
only a small, early part of the network is tuned:

=================  ===========================================================================
policy             trainable parameters
=================  ===========================================================================
``frozen``         none (the pretrained RGB model as is)
``layernorm``      every LayerNorm / LayerNorm2d affine weight and bias
``layernorm+stem`` those, plus the convolutional stem (patchify conv and its norm)
``paper``          every LayerNorm, the stem and the whole first stage (the shallow early
                   convolutional layers): about 1.2 % of EdgeFace-XXS
``full``           everything (full fine-tuning, for comparison)
=================  ===========================================================================

A frozen parameter has ``requires_grad=False``, so it receives no gradient, and
:func:`trainable_parameters` hands only the others to the optimiser, so it keeps no optimiser
state either.

Taught in: ``notebooks/02_layer_freezing.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import pandas as pd
from torch import nn

POLICIES: tuple[str, ...] = ("frozen", "layernorm", "layernorm+stem", "paper", "full")


def is_layernorm(module: nn.Module) -> bool:
    """True for ``nn.LayerNorm`` and its subclasses (timm's LayerNorm and LayerNorm2d)."""
    return isinstance(module, nn.LayerNorm)


def _layernorm_names(model: nn.Module) -> set[str]:
    names = set()
    for module_name, module in model.named_modules():
        if is_layernorm(module):
            for param_name, _ in module.named_parameters(recurse=False):
                names.add(f"{module_name}.{param_name}" if module_name else param_name)
    return names


def _prefix_names(model: nn.Module, prefixes: tuple[str, ...]) -> set[str]:
    return {name for name, _ in model.named_parameters() if name.startswith(prefixes)}


def _backbone_prefix(model: nn.Module) -> str:
    """``model.`` for the EdgeFace wrapper, '' for a bare timm EdgeNeXt."""
    return "model." if hasattr(model, "model") and hasattr(model.model, "stem") else ""


def policy_parameter_names(model: nn.Module, policy: str) -> set[str]:
    """Names of the parameters a policy trains (see the module docstring for the policies)."""
    prefix = _backbone_prefix(model)
    all_names = {name for name, _ in model.named_parameters()}
    rules: dict[str, Callable[[], set[str]]] = {
        "frozen": set,
        "layernorm": lambda: _layernorm_names(model),
        "layernorm+stem": lambda: _layernorm_names(model) | _prefix_names(model, (f"{prefix}stem.",)),
        "paper": lambda: _layernorm_names(model) | _prefix_names(model, (f"{prefix}stem.", f"{prefix}stages.0.")),
        "full": lambda: all_names,
    }
    if policy not in rules:
        raise ValueError(f"Unknown tuning policy {policy!r}; choose one of {', '.join(POLICIES)}.")
    return rules[policy]()


@dataclass(frozen=True)
class PolicyReport:
    """What a policy trains: counts and the fraction of the model."""

    policy: str
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.policy}: {self.trainable:,} of {self.total:,} parameters trainable ({100 * self.fraction:.2f} %)"


def apply_policy(model: nn.Module, policy: str) -> PolicyReport:
    """Set ``requires_grad`` on every parameter of ``model`` according to ``policy``; report counts."""
    names = policy_parameter_names(model, policy)
    trainable = total = 0
    for name, param in model.named_parameters():
        param.requires_grad_(name in names)
        total += param.numel()
        trainable += param.numel() if name in names else 0
    return PolicyReport(policy, trainable, total)


def trainable_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The parameters to give the optimiser (frozen ones get no optimiser state)."""
    return (p for p in model.parameters() if p.requires_grad)


def policy_table(model_factory: Callable[[], nn.Module], policies: tuple[str, ...] = POLICIES) -> pd.DataFrame:
    """Trainable / total parameters of each policy on fresh models from ``model_factory``."""
    rows = []
    for policy in policies:
        report = apply_policy(model_factory(), policy)
        rows.append({"policy": policy, "trainable": report.trainable, "total": report.total,
                     "percent": round(100 * report.fraction, 3)})
    return pd.DataFrame(rows).set_index("policy")

"""Tuning policies: which parameters of a pretrained EdgeFace learn during adaptation.

The method's premise is that the modality gap is mostly *low-level* (reflectance, emission,
contrast, texture, noise): the early convolutional layers and the normalisation statistics see
it, while the deeper layers that encode identity can stay as the RGB model learnt them.  So
only a small, early part of the network is tuned.  Counts are on EdgeFace-XXS (1,244,744
parameters), measured with :func:`hfr_tutorial.models.create_edgeface` and pinned by
``tests/test_tuning.py`` (EdgeFace-XS-gamma-0.6, 1,770,492: 5,080 / 6,648 / 26,424 / 90,052 /
779,800 for the five policies from ``layernorm`` to ``layernorm+stem+stages012``):

=============================  ======================================================  ==========  =========
policy                         trainable parameters                                    XXS count   of XXS
=============================  ======================================================  ==========  =========
``frozen``                     none (the pretrained RGB model as is)                   0           0 %
``layernorm``                  every LayerNorm / LayerNorm2d affine weight and bias    3,328       0.27 %
``layernorm+stem``             those, plus the convolutional stem (patchify conv and   4,504       0.36 %
                               its norm)
``paper``                      every LayerNorm, the stem and the whole first stage     14,488      1.16 %
                               (the shallow early layers): the method's choice
``layernorm+stem+convs012``    every LayerNorm, the stem and only the convolutions     53,832      4.32 %
                               (``nn.Conv2d`` weights and biases) of stages 0, 1, 2:
                               the depthwise convs of every block, the downsampling
                               convs, the split-transpose blocks' convs and their
                               1x1 positional-encoding projection
``layernorm+stem+stages012``   every LayerNorm, the stem and all of stages 0, 1, 2     516,536     41.50 %
                               (convs, MLPs, attention, layer scales)
``full``                       everything (full fine-tuning, for comparison)           1,244,744   100 %
``groups:<g1>,<g2>,...``       the named parameter groups (:func:`parameter_groups`),  --          --
                               e.g. chosen by :mod:`hfr_tutorial.autoselect`
=============================  ======================================================  ==========  =========

Why the two ``...012`` policies: Idiap's project page for xEdgeFace names the adapted modules
"LayerNorm, conv stem, stages S0, S1, S2".  Read literally (all of S0-S2) that is 41.5 % of XXS,
far from "parameter-efficient"; read as "the convolutions of S0-S2" (EdgeNeXt's pointwise layers
are ``nn.Linear`` in channels-last form, so they are *not* in this reading) it is 4.3 %.  Which
reading serves best is for a measured study to show, not for a name to hide.  The policies nest
as ``frozen`` < ``layernorm`` < ``layernorm+stem`` < (``paper`` and, separately,
``layernorm+stem+convs012``) < ``layernorm+stem+stages012`` < ``full``: ``paper`` is *not* a subset
of ``layernorm+stem+convs012``, since it trains stage 0's MLPs, which the convs reading leaves
frozen.

**Parameter groups** (what ``groups:`` names and what :mod:`hfr_tutorial.autoselect` ranks) cut
the backbone into the sub-modules of its blocks, so that every parameter is in exactly one group
(names are relative to the timm backbone, the same for the EdgeFace wrapper and a bare EdgeNeXt):

* ``layernorms`` -- every LayerNorm of the model in one group (3,328 parameters on XXS: too
  small to be worth ranking one by one, and trained by every policy but ``frozen``/``full``);
* ``stem`` -- the patchify convolution (its LayerNorm is in ``layernorms``);
* ``stages.<i>.downsample`` -- a stage's downsampling convolution;
* ``stages.<i>.blocks.<j>.<part>`` -- one part of a block: ``conv_dw`` (depthwise conv),
  ``mlp`` (the two pointwise layers, with the layer scale ``gamma`` that multiplies their
  output), and in split-transpose blocks also ``convs`` (the multi-scale depthwise convs),
  ``pos_embd`` (positional encoding) and ``xca`` (cross-covariance attention, with its layer
  scale ``gamma_xca``);
* ``head.fc`` -- the embedding layer (its LayerNorm is in ``layernorms``).

EdgeFace-XXS has 34 groups (from 240 parameters in a stage-0 depthwise conv to 226,800 in a
stage-3 MLP); EdgeFace-XS-gamma-0.6 has 47.  ``paper`` and both ``...012`` policies are unions of whole groups, so
:func:`policy_groups` writes each of them as a ``groups:`` string and an automatic selection can be
compared with them group by group.

A frozen parameter has ``requires_grad=False``, so it receives no gradient, and
:func:`trainable_parameters` hands only the others to the optimiser, so it keeps no optimiser
state either.

Taught in: ``notebooks/02_layer_freezing.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import pandas as pd
from torch import nn

from .models.architecture import is_layernorm

POLICIES: tuple[str, ...] = ("frozen", "layernorm", "layernorm+stem", "paper", "layernorm+stem+convs012",
                             "layernorm+stem+stages012", "full")
"""The named policies, in increasing order of trainable parameters on every EdgeFace variant."""

GROUPS_PREFIX = "groups:"
"""A policy string ``groups:<g1>,<g2>,...`` trains exactly the named parameter groups."""

LAYERNORM_GROUP = "layernorms"
"""The group that holds every LayerNorm's affine parameters."""

_LAYER_SCALES = {"gamma": "mlp", "gamma_xca": "xca"}
"""A block's own layer-scale parameters, and the part whose output each one multiplies."""

_EARLY_STAGES = ("stages.0.", "stages.1.", "stages.2.")




def _module_param_names(model: nn.Module, accept: Callable[[str, nn.Module], bool]) -> set[str]:
    """Full names of the parameters owned directly by the modules that ``accept(name, module)``."""
    names = set()
    for module_name, module in model.named_modules():
        if accept(module_name, module):
            for param_name, _ in module.named_parameters(recurse=False):
                names.add(f"{module_name}.{param_name}" if module_name else param_name)
    return names


def _layernorm_names(model: nn.Module) -> set[str]:
    return _module_param_names(model, lambda _, module: is_layernorm(module))


def _prefix_names(model: nn.Module, prefixes: tuple[str, ...]) -> set[str]:
    return {name for name, _ in model.named_parameters() if name.startswith(prefixes)}


def _early_conv_names(model: nn.Module, prefix: str) -> set[str]:
    """Weights and biases of every ``nn.Conv2d`` in stages 0, 1 and 2."""
    stages = tuple(prefix + s for s in _EARLY_STAGES)
    return _module_param_names(model, lambda name, module: isinstance(module, nn.Conv2d)
                               and f"{name}.".startswith(stages))


def _backbone_prefix(model: nn.Module) -> str:
    """``model.`` for the EdgeFace wrapper, '' for a bare timm EdgeNeXt."""
    return "model." if hasattr(model, "model") and hasattr(model.model, "stem") else ""


# ------------------------------------------------------------------------------------------------
# Parameter groups
# ------------------------------------------------------------------------------------------------
def _group_name(relative: str) -> str:
    """The group of a non-LayerNorm parameter, from its name relative to the backbone."""
    parts = relative.split(".")
    if parts[0] == "stem":
        return "stem"
    if parts[0] == "stages" and len(parts) >= 4 and parts[2] == "downsample":
        return ".".join(parts[:3])
    if parts[0] == "stages" and len(parts) >= 5 and parts[2] == "blocks":
        block, part = ".".join(parts[:4]), parts[4]
        if len(parts) == 5:  # a block's own parameter (a layer scale): it joins what it scales
            part = _LAYER_SCALES.get(part, part)
        return f"{block}.{part}"
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]  # head.fc (plain or low-rank), or the top module


def parameter_groups(model: nn.Module) -> dict[str, list[str]]:
    """The model's parameter groups: group name -> full parameter names, in model order.

    Every parameter is in exactly one group (see the module docstring for the granularity):
    ``layernorms`` (all LayerNorms), ``stem``, ``stages.<i>.downsample``,
    ``stages.<i>.blocks.<j>.<part>`` and ``head.fc``.  Group names do not carry the EdgeFace
    wrapper's ``model.`` prefix, so the same ``groups:`` policy works on the wrapper and on its
    bare timm backbone.
    """
    prefix = _backbone_prefix(model)
    layernorms = _layernorm_names(model)
    groups: dict[str, list[str]] = {LAYERNORM_GROUP: []}
    layer_scales: list[tuple[str, str]] = []
    for name, _ in model.named_parameters():
        if name in layernorms:
            groups[LAYERNORM_GROUP].append(name)
            continue
        relative = name[len(prefix):] if prefix and name.startswith(prefix) else name
        group = _group_name(relative)
        if relative.rsplit(".", 1)[-1] in _LAYER_SCALES and relative.count(".") == 4:
            layer_scales.append((group, name))  # placed after the layers, so groups keep module order
        else:
            groups.setdefault(group, []).append(name)
    for group, name in layer_scales:
        groups.setdefault(group, []).append(name)
    if not groups[LAYERNORM_GROUP]:
        del groups[LAYERNORM_GROUP]
    return groups


def group_sizes(model: nn.Module) -> pd.Series:
    """Parameters per group (index: group name in model order), the weights of a budgeted selection."""
    numel = {name: p.numel() for name, p in model.named_parameters()}
    groups = parameter_groups(model)
    return pd.Series({g: sum(numel[n] for n in names) for g, names in groups.items()}, name="params",
                     dtype="int64").rename_axis("group")


def groups_policy(groups: Iterable[str]) -> str:
    """The policy string ``groups:<g1>,<g2>,...`` that trains exactly ``groups`` (order kept)."""
    groups = list(groups)
    if not groups:
        raise ValueError("groups_policy: no group given; the policy that trains nothing is 'frozen'.")
    return GROUPS_PREFIX + ",".join(groups)


def parse_groups_policy(policy: str, model: nn.Module | None = None) -> list[str]:
    """The group names of a ``groups:`` policy, checked against ``model``'s groups when given."""
    if not policy.startswith(GROUPS_PREFIX):
        raise ValueError(f"{policy!r} is not a groups policy: it must start with {GROUPS_PREFIX!r}, "
                         f"e.g. 'groups:{LAYERNORM_GROUP},stem'.")
    names = [g.strip() for g in policy[len(GROUPS_PREFIX):].split(",")]
    if names == [""]:
        raise ValueError(f"Tuning policy {policy!r} names no group; the policy that trains nothing is 'frozen'.")
    if "" in names:
        raise ValueError(f"Tuning policy {policy!r} has an empty group name (a stray comma); "
                         "write 'groups:<g1>,<g2>,...' with no empty entries.")
    repeated = sorted({g for g in names if names.count(g) > 1})
    if repeated:
        raise ValueError(f"Tuning policy {policy!r} names the group(s) {repeated} more than once; name each once.")
    if model is not None:
        known = parameter_groups(model)
        unknown = [g for g in names if g not in known]
        if unknown:
            raise ValueError(
                f"Unknown parameter group(s) {unknown} in tuning policy {policy!r}. This model's "
                f"{len(known)} groups are: {', '.join(known)} (see hfr_tutorial.tuning.parameter_groups; "
                "a group name has no 'model.' prefix).")
    return names


def policy_groups(model: nn.Module, policy: str) -> str:
    """``policy`` written as the ``groups:`` policy that trains the same parameters.

    Raises ``ValueError`` when the policy trains only part of some group (then it is not a union of
    groups).  The groups come in model order, so equal sets give equal strings.
    """
    names = policy_parameter_names(model, policy)
    chosen, partial = [], []
    for group, members in parameter_groups(model).items():
        inside = sum(n in names for n in members)
        if inside == len(members):
            chosen.append(group)
        elif inside:
            partial.append(group)
    if partial:
        raise ValueError(f"Tuning policy {policy!r} trains only part of the group(s) {partial}; it is not a union "
                         "of parameter groups, so it has no 'groups:' form.")
    return groups_policy(chosen)


# ------------------------------------------------------------------------------------------------
# Policies
# ------------------------------------------------------------------------------------------------
def policy_parameter_names(model: nn.Module, policy: str) -> set[str]:
    """Names of the parameters a policy trains (see the module docstring for the policies)."""
    prefix = _backbone_prefix(model)
    all_names = {name for name, _ in model.named_parameters()}
    if policy.startswith(GROUPS_PREFIX):
        groups = parameter_groups(model)
        return {name for g in parse_groups_policy(policy, model) for name in groups[g]}
    ln_stem = lambda: _layernorm_names(model) | _prefix_names(model, (f"{prefix}stem.",))  # noqa: E731
    rules: dict[str, Callable[[], set[str]]] = {
        "frozen": set,
        "layernorm": lambda: _layernorm_names(model),
        "layernorm+stem": ln_stem,
        "paper": lambda: ln_stem() | _prefix_names(model, (f"{prefix}stages.0.",)),
        "layernorm+stem+convs012": lambda: ln_stem() | _early_conv_names(model, prefix),
        "layernorm+stem+stages012": lambda: ln_stem() | _prefix_names(model, tuple(prefix + s for s in _EARLY_STAGES)),
        "full": lambda: all_names,
    }
    if policy not in rules:
        raise ValueError(f"Unknown tuning policy {policy!r}; choose one of {', '.join(POLICIES)}, or "
                         f"'{GROUPS_PREFIX}<g1>,<g2>,...' with parameter groups of the model (e.g. "
                         f"'{GROUPS_PREFIX}{LAYERNORM_GROUP},stem,stages.0.blocks.0.conv_dw'; "
                         "hfr_tutorial.tuning.parameter_groups lists them).")
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
    """Set ``requires_grad`` on every parameter of ``model`` according to ``policy``; report counts.

    An unknown policy or group raises ``ValueError`` before any parameter is touched.
    """
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

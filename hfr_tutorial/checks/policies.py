"""Checks of a tuning policy set by hand (notebooks 02 and 05): which parameters train, and their share.

:func:`check_policy_function` calls the student's ``fn(model)`` (it sets ``requires_grad`` in place) on
a fresh model of the notebook, on the same model with its ``requires_grad`` flags scrambled (so a
function that only unfreezes, without freezing first, fails), and on another EdgeFace variant (other
blocks, other names), and compares *which* parameters train with
:func:`hfr_tutorial.tuning.policy_parameter_names`.  ``apply_policy`` and the functions it is built
on are recorded while the student's function runs.  :func:`check_share_function` checks a trainable
share in percent on models with random ``requires_grad`` patterns.

Taught in: ``notebooks/02_layer_freezing.ipynb`` (exercise 1), ``notebooks/05_full_training.ipynb``
(exercise 1).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .guard import Case, Comparison, check_function
from .feedback import as_scalar, direction_hint, fmt, verdict

HIDDEN_VARIANT = "edgeface_xs_gamma_06"
"""The EdgeFace variant the policy checks add as a hidden model (other stages, low-rank Linear layers)."""


def _examples(names: Iterable[str], k: int = 3) -> str:
    names = sorted(names)
    shown = ", ".join(names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def _policy_library() -> dict[str, Any]:
    from hfr_tutorial import tuning

    return {name: getattr(tuning, name) for name in ("apply_policy", "policy_parameter_names", "policy_groups",
                                                      "parameter_groups", "policy_table")}


def _scrambled(model: nn.Module, seed: int) -> nn.Module:
    """``model`` with a random half of its parameters frozen and the rest trainable."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.requires_grad_(bool(rng.random() < 0.5))
    return model


def _hidden_models(make_model: Callable[[], nn.Module]) -> list[tuple[str, Callable[[], nn.Module]]]:
    from hfr_tutorial.models import create_edgeface

    return [("the model with its requires_grad flags scrambled (some frozen, some not)",
             lambda: _scrambled(make_model(), seed=1)),
            (f"a hidden model ({HIDDEN_VARIANT}, scrambled flags)",
             lambda: _scrambled(create_edgeface(HIDDEN_VARIANT, seed=2), seed=3))]


def _compare_policy(model: nn.Module, names: set[str], policy: str) -> Comparison:
    params = dict(model.named_parameters())
    trainable = {name for name, p in params.items() if p.requires_grad}
    missing, extra = names - trainable, trainable - names
    if not missing and not extra:
        return Comparison(True)
    if trainable == set(params):
        return Comparison(False, "every parameter trains",
                          "freeze the whole model first (model.requires_grad_(False)), then unfreeze the policy's")
    if not trainable:
        return Comparison(False, "no parameter trains",
                          "after freezing, unfreeze the policy's parameters (requires_grad_(True))")
    hints = []
    if missing:
        hints.append(f"{len(missing)} should train but are frozen, e.g. {_examples(missing, 2)}")
    if extra:
        hints.append(f"{len(extra)} train but should not, e.g. {_examples(extra, 2)}")
    return Comparison(False, f"the parameters that train are not those of policy {policy!r}", "; ".join(hints))


def check_policy_function(fn: Any, policy: str, make_model: Callable[[], nn.Module], *,
                          hidden: Sequence[tuple[str, Callable[[], nn.Module]]] | None = None) -> bool:
    """``fn(model)`` makes exactly the parameters of ``policy`` trainable, on the notebook's and on hidden models.

    ``make_model`` builds a fresh model of the notebook (e.g. ``lambda: create_edgeface(variant)``);
    ``hidden`` (default: the same with scrambled ``requires_grad`` flags, and :data:`HIDDEN_VARIANT`
    with scrambled flags) adds models the student does not see.  ``fn`` changes the model in place
    (its return value is ignored unless it is a module).  The verdict names up to two missing or extra
    parameters.
    """
    from hfr_tutorial.tuning import policy_parameter_names

    models = [("a fresh model of the notebook", make_model, False)]
    models += [(label, factory, True) for label, factory in (hidden if hidden is not None else
                                                             _hidden_models(make_model))]
    cases = [Case(label, (factory(),), hidden=is_hidden) for label, factory, is_hidden in models]

    def compare(result: Any, names: set[str], case: Case, args: tuple) -> Comparison:
        model = result if isinstance(result, nn.Module) else args[0]
        return _compare_policy(model, names, policy)

    return check_function(
        fn, cases, what=f"your function sets the {policy!r} policy",
        reference=lambda case: policy_parameter_names(case.args[0], policy), compare=compare,
        forbidden=_policy_library(), signature="my_policy(model)",
        forbidden_hint="walk model.named_modules() / named_parameters() and set requires_grad yourself")


def _trainable_share(model: nn.Module) -> float:
    total = sum(p.numel() for p in model.parameters())
    return 100.0 * sum(p.numel() for p in model.parameters() if p.requires_grad) / total


def _compare_share(result: Any, ref: float) -> Comparison:
    v, why = as_scalar(result)
    if v is None:
        return Comparison(False, why)
    if abs(v - ref) <= max(1e-6, 1e-6 * abs(ref)):
        return Comparison(True)
    return Comparison(False, f"it returned {fmt(v)}", "; ".join(h for h in (
        direction_hint(v, ref), "the share in percent: 100 x trainable parameters / all parameters "
                                "(count numel(), not tensors)") if h))


def check_share_function(fn: Any, make_model: Callable[[], nn.Module], *, model: nn.Module | None = None) -> bool:
    """``fn(model)`` returns the share of trainable parameters in percent, on ``model`` and on hidden models.

    ``model`` is the notebook's (as its policy left it; default: a fresh one from ``make_model``); the
    hidden cases are three models from ``make_model`` with a random subset of parameters trainable.
    ``apply_policy`` and ``policy_table`` are recorded while ``fn`` runs.
    """
    shown = model if model is not None else make_model()
    cases = [Case("the notebook's model", (shown,), hidden=False)]
    cases += [Case("a hidden model with a random set of trainable parameters", (_scrambled(make_model(), seed),))
              for seed in (4, 5, 6)]
    return check_function(fn, cases, what="your trainable share (%)", reference=lambda c: _trainable_share(c.args[0]),
                          compare=lambda result, ref, c, args: _compare_share(result, ref),
                          forbidden=_policy_library(), signature="my_share(model)",
                          forbidden_hint="sum p.numel() over the trainable parameters and over all of them")


def check_trainable(model: nn.Module, expected: int, what: str = "trainable parameters", *,
                    policy: str | None = None) -> bool:
    """The model trains exactly ``expected`` parameters, and (given ``policy``) exactly that policy's ones.

    ``expected`` is the count the library reports (``policy_table`` or ``apply_policy``).  With
    ``policy`` the check also compares *which* parameters have ``requires_grad`` with
    :func:`hfr_tutorial.tuning.policy_parameter_names`.  A notebook exercise uses
    :func:`check_policy_function` instead: a model can be set by ``apply_policy`` itself.
    """
    if not isinstance(model, torch.nn.Module):
        return verdict(False, what, problem=f"a {type(model).__name__}, not a torch.nn.Module")
    params = dict(model.named_parameters())
    got = sum(p.numel() for p in params.values() if p.requires_grad)
    if policy is not None:
        from hfr_tutorial.tuning import policy_parameter_names

        names = policy_parameter_names(model, policy)
        if sum(params[name].numel() for name in names) != expected:
            raise ValueError(f"check_trainable: expected={expected:,} is not what policy {policy!r} trains on this "
                             "model; the notebook passes a count of another model or policy.")
        result = _compare_policy(model, names, policy)
        if result.ok:
            return verdict(True, what, success=f"{got:,}, the parameters of policy {policy!r}")
        return verdict(False, what, problem=result.problem, hint=result.hint)
    if got == expected:
        return verdict(True, what, success=f"{got:,}",
                       note="only the count was compared; pass policy= to check which parameters train")
    hint = ("too many: freeze everything first (model.requires_grad_(False)), then unfreeze only the chosen ones"
            if got > expected else "too few: some chosen parameters are still frozen")
    return verdict(False, what, problem=f"{got:,} parameters train, not the policy's number", hint=hint)

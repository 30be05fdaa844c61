"""Choosing what to tune automatically, before training: rank parameter groups, pick under a budget.

The paper hand-picks the layers to adapt (every LayerNorm, the stem and the first stage) and names
an automatic choice as future work.  This module makes a cheap one, measured on the pretrained
model before any training step:

1. :func:`group_scores` -- for each parameter group of :func:`hfr_tutorial.tuning.parameter_groups`
   (``layernorms``, ``stem``, ``stages.<i>.downsample``, ``stages.<i>.blocks.<j>.<part>``,
   ``head.fc``: 34 groups on EdgeFace-XXS), how strongly the cross-modal contrastive loss pulls
   on it, from the gradients of a few batches of (VIS, NIR/thermal) pairs of **dev** identities:

   * ``fisher`` -- the empirical Fisher information: the mean over batches of the squared
     gradient, per parameter, summed over the group (the trace of the group's Fisher block).  It
     says how much the loss changes when the group moves, whatever the direction;
   * ``grad_norm`` -- the L2 norm of the group's mean gradient over the batches: the first-order
     rate at which one steepest-descent step on that group alone lowers the loss;
   * ``fisher_per_param`` = ``fisher / params`` and ``grad_norm_per_param`` =
     ``grad_norm / sqrt(params)`` (the RMS of the mean gradient): the value per trained parameter,
     which is what a budgeted choice must compare (a big group has a big total by size alone).

2. :func:`select_groups` -- greedy selection under a parameter budget (for example the ``paper``
   policy's 14,488 on XXS): the groups of ``always`` first, then the others by decreasing
   criterion, each taken if it still fits.  Ranking by a per-parameter criterion is the classic
   greedy rule for a knapsack whose values add up (the Fisher trace and the squared gradient norm
   both add over groups).  It returns a ``groups:...`` policy string -- reproducible, usable as a
   cache key, and accepted by :func:`hfr_tutorial.tuning.apply_policy` -- and the ranking table.

3. :func:`score_policies` -- the same totals for hand-picked policies (``paper``, the two readings
   of "S0, S1, S2", ...), so an automatic choice can be compared with them at the same budget.

Why only the contrastive loss: at the pretrained point the student *is* the teacher, so the
self-distillation term and its gradient are exactly zero; the criterion is the contrastive loss
of :func:`hfr_tutorial.losses.make_method_loss` (``infonce``, ``pairwise`` or both joined by
``+``).  Pairs come from :meth:`hfr_tutorial.data.faceset.FaceSet.pair_loader`, as in
:func:`hfr_tutorial.train.adapt_cross_spectral` (every non-VIS modality paired with VIS, each
identity at most once per batch, images un-augmented), and go through the method's own training
step (:class:`hfr_tutorial.train.step.AdaptationStep`).  The model is scored on a copy in eval mode (no
dropout or drop-path; EdgeNeXt has no BatchNorm), so the same seed gives the same scores.

What this does **not** touch: the eval identities.  A ``FaceSet`` given to :func:`group_scores`
must hold only the dev split (``faceset.select(split="dev")``); anything else is refused.
Caveat: the Fisher and the gradient depend on how a layer is parametrised (a LayerNorm gain and a
convolution weight are on different scales), so the criterion is a heuristic for what to try
first, not a proof of what adapts best; the policy study on dev is what decides.

Taught in: ``notebooks/05_full_training.ipynb`` (section 6, the policy study).
"""
from __future__ import annotations

import copy
import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .config import TrainConfig, get_device, seed_everything
from .data.faceset import cross_modalities
from .losses import MethodLoss, make_method_loss
from .train.step import AdaptationStep
from .tuning import LAYERNORM_GROUP, group_sizes, groups_policy, parameter_groups, policy_groups

CRITERIA: tuple[str, ...] = ("fisher_per_param", "grad_norm_per_param", "fisher", "grad_norm")
"""Columns of :func:`group_scores` that :func:`select_groups` can rank by (the first is the default)."""

SCORE_COLUMNS: tuple[str, ...] = ("params", "fisher", "fisher_per_param", "grad_norm", "grad_norm_per_param")

ContrastiveLoss = str | nn.Module | Sequence[nn.Module]


# ------------------------------------------------------------------------------------------------
# Data: pair batches of dev identities, drawn by FaceSet.pair_loader
# ------------------------------------------------------------------------------------------------
def _check_dev_only(faceset: Any) -> None:
    splits = sorted(set(np.asarray(faceset.splits).astype(str).tolist()))
    if splits != ["dev"]:
        shown = [s or "'' (unassigned)" for s in splits]
        raise ValueError(
            f"group_scores got a FaceSet {getattr(faceset, 'name', '')!r} with the split(s) {shown}: the selection "
            "criterion is measured on dev identities only, so that no choice reads eval. Pass "
            "faceset.select(split='dev') (or assign splits first with FaceSet.with_splits).")


def dev_pair_batches(dev_set: Any, *, n_batches: int = 4, batch_size: int = 32, seed: int = 0,
                     pairs_per_identity: int = 4) -> list[dict[str, Any]]:
    """``n_batches`` batches of same-identity (VIS, NIR/thermal) pairs from a dev-only ``FaceSet``.

    The batches are those of :meth:`FaceSet.pair_loader` (every non-VIS modality of the set paired
    with VIS, each identity at most once per batch, no augmentation), epoch 0 first and further
    epochs when one epoch has fewer full batches.  ``batch_size`` is capped at the number of
    identities that have pairs (a batch cannot hold an identity twice).  Deterministic in ``seed``.
    """
    _check_dev_only(dev_set)
    if n_batches < 1:
        raise ValueError(f"n_batches={n_batches}: need at least one batch to measure gradients.")
    others = cross_modalities(dev_set.modalities)
    if not others or not np.any(np.asarray(dev_set.modalities) == "vis"):
        raise ValueError(f"dev_pair_batches: the dev set holds modalities {sorted(set(dev_set.modalities))}; the "
                         "contrastive criterion pairs VIS with another modality (nir, thermal, ...), so it needs both.")
    ids_with_pairs = (set(dev_set.identities[dev_set.modalities == "vis"].tolist())
                      & set(dev_set.identities[np.isin(dev_set.modalities, others)].tolist()))
    if len(ids_with_pairs) < 2:
        raise ValueError(f"dev_pair_batches: {len(ids_with_pairs)} dev identities have both VIS and "
                         f"{list(others)} images; a contrastive batch needs at least 2 (its negatives).")
    batch_size = min(int(batch_size), len(ids_with_pairs))
    batches: list[dict[str, Any]] = []
    for epoch in range(n_batches):  # each epoch gives at least one full batch
        loader = dev_set.pair_loader(batch_size, seed=seed, epoch=epoch, pairs_per_identity=pairs_per_identity,
                                     modalities=others, drop_last=True)
        for batch in loader:
            batches.append(batch)
            if len(batches) == n_batches:
                return batches
    raise ValueError(f"dev_pair_batches: the dev set gave only {len(batches)} batches of {batch_size} pairs; "
                     "lower batch_size or n_batches.")  # pragma: no cover (each epoch gives >= 1 batch)


# ------------------------------------------------------------------------------------------------
# Scores
# ------------------------------------------------------------------------------------------------
def _method_loss(loss_fn: ContrastiveLoss | None, temperature: float, margin: float) -> MethodLoss:
    """The contrastive objective as a :class:`~hfr_tutorial.losses.MethodLoss` without distillation (the
    criterion scores how the alignment term pulls on each group at the pretrained point)."""
    if loss_fn is None:
        loss_fn = TrainConfig.contrastive
    if isinstance(loss_fn, str):
        return make_method_loss(loss_fn, temperature=temperature, margin=margin, distill_weight=0.0)
    terms = [loss_fn] if isinstance(loss_fn, nn.Module) else list(loss_fn)
    return MethodLoss({f"term{i}": term for i, term in enumerate(terms)})


def _loss_name(loss_fn: ContrastiveLoss | None) -> str:
    if loss_fn is None:
        return TrainConfig.contrastive
    if isinstance(loss_fn, str):
        return loss_fn
    modules = [loss_fn] if isinstance(loss_fn, nn.Module) else list(loss_fn)
    return "+".join(type(m).__name__ for m in modules)


def group_scores(model: nn.Module, data: Any, loss_fn: ContrastiveLoss | None = None, *, n_batches: int = 4,
                 batch_size: int = 32, seed: int = 0, pairs_per_identity: int = 4,
                 temperature: float = TrainConfig.temperature, margin: float = TrainConfig.margin,
                 device: str | torch.device | None = None) -> pd.DataFrame:
    """Per parameter group, how strongly the contrastive loss pulls on it at the pretrained point.

    Args:
        model: the pretrained EdgeFace (or a bare EdgeNeXt); scored on a deep copy in eval mode, so
            the caller's model (its weights and ``requires_grad`` flags) is left as it is.
        data: a ``FaceSet`` of the **dev** split only (batches drawn by :func:`dev_pair_batches`),
            or an iterable of batches already drawn by :meth:`FaceSet.pair_loader` (dicts with
            ``vis``, ``other`` in [0, 1] and ``label``); then ``n_batches``, ``batch_size`` and
            ``pairs_per_identity`` are not used and every batch given is.
        loss_fn: ``"infonce"``, ``"pairwise"`` or ``"pairwise+infonce"`` (built by
            :func:`hfr_tutorial.losses.make_method_loss` with ``temperature`` / ``margin``, no distillation),
            a loss module, or a list of them (summed); default ``TrainConfig.contrastive``.
        seed: seeds torch, NumPy and the pair draw.
        device: where the gradients are computed (default: CUDA when present).

    Returns:
        A DataFrame indexed by ``group`` (model order) with ``params``, ``fisher``,
        ``fisher_per_param``, ``grad_norm`` and ``grad_norm_per_param`` (see the module docstring);
        ``attrs`` records the loss, the number of batches, their size, the mean loss and the seed.
    """
    seed_everything(seed)
    if hasattr(data, "pair_loader"):
        batches: Iterable[dict[str, Any]] = dev_pair_batches(data, n_batches=n_batches, batch_size=batch_size,
                                                             seed=seed, pairs_per_identity=pairs_per_identity)
    else:
        batches = data
    device = get_device(device)
    scored = copy.deepcopy(model).to(device).eval()
    step = AdaptationStep(scored, _method_loss(loss_fn, temperature, margin).to(device), device=device)
    named = dict(scored.named_parameters())
    for p in named.values():
        p.requires_grad_(True)
    grad_sum = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in named.items()}
    sq_sum = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in named.items()}
    count, losses, sizes = 0, [], []
    for batch in batches:
        loss = step(batch)["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"group_scores: the contrastive loss is {loss.item()} on batch {count}; check the "
                                     "model's weights and the images (float in [0, 1]).")
        scored.zero_grad(set_to_none=True)
        loss.backward()
        for n, p in named.items():
            if p.grad is not None:
                g = p.grad.detach().to(torch.float64)
                grad_sum[n] += g
                sq_sum[n] += g * g
        count += 1
        losses.append(float(loss.detach()))
        sizes.append(len(batch["vis"]))
    if count == 0:
        raise ValueError("group_scores: no batch to measure gradients on; give a dev FaceSet or at least one batch.")
    sizes_s = group_sizes(scored)
    rows = []
    for group, members in parameter_groups(scored).items():
        fisher = sum(float(sq_sum[n].sum()) for n in members) / count
        grad_sq = sum(float((grad_sum[n] / count).pow(2).sum()) for n in members)
        params = int(sizes_s[group])
        rows.append({"group": group, "params": params, "fisher": fisher, "fisher_per_param": fisher / params,
                     "grad_norm": math.sqrt(grad_sq), "grad_norm_per_param": math.sqrt(grad_sq / params)})
    table = pd.DataFrame(rows).set_index("group")
    table.attrs.update(loss=_loss_name(loss_fn), n_batches=count, batch_sizes=sizes, mean_loss=float(np.mean(losses)),
                       seed=seed)
    return table


# ------------------------------------------------------------------------------------------------
# Selection under a budget
# ------------------------------------------------------------------------------------------------
def _check_scores(scores: pd.DataFrame, criterion: str) -> None:
    if criterion not in CRITERIA:
        raise ValueError(f"Unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}.")
    missing = [c for c in ("params", criterion) if c not in scores.columns]
    if missing:
        raise ValueError(f"select_groups: the scores lack the column(s) {missing}; "
                         "pass the table group_scores returns.")


def select_groups(scores: pd.DataFrame, budget_params: int, criterion: str = "fisher_per_param",
                  always: Sequence[str] = (LAYERNORM_GROUP,)) -> tuple[str, pd.DataFrame]:
    """The best groups under a parameter budget, as a ``groups:`` policy, and the ranking behind it.

    The groups of ``always`` come first (every hand-picked policy but ``frozen`` tunes the
    LayerNorms, and they are tiny), then the others by decreasing ``criterion`` (ties: model
    order); each is taken if the parameters taken so far plus its own stay within
    ``budget_params``, else skipped (a smaller one further down may still fit).  A group with no
    gradient signal (criterion 0) is never taken.

    Returns ``(policy, ranking)``: ``policy`` lists the chosen groups in model order (equal choices
    give equal strings); ``ranking`` has one row per group in ranked order, with ``rank``,
    ``params``, the criterion, ``selected``, ``reason`` (``always``, ``selected``,
    ``over budget``, ``no signal``) and ``cumulative`` (parameters taken after that row).
    """
    _check_scores(scores, criterion)
    if isinstance(budget_params, bool) or not isinstance(budget_params, (int, np.integer)) or budget_params < 1:
        raise ValueError(f"budget_params={budget_params!r}: give a whole number of parameters >= 1 "
                         "(e.g. 14_488, the paper policy's count on EdgeFace-XXS).")
    always = list(always)
    unknown = [g for g in always if g not in scores.index]
    if unknown:
        raise ValueError(f"select_groups: always={unknown} are not groups of the scores; the groups are: "
                         f"{', '.join(scores.index)}.")
    used = int(scores.loc[always, "params"].sum()) if always else 0
    if used > budget_params:
        raise ValueError(f"select_groups: the groups always taken ({', '.join(always)}) hold {used:,} parameters, "
                         f"more than the budget of {int(budget_params):,}; raise the budget or take fewer "
                         "groups always.")
    order = list(scores.index)
    rest = scores.drop(index=always)
    rest = rest.assign(_pos=[order.index(g) for g in rest.index])
    rest = rest.sort_values([criterion, "_pos"], ascending=[False, True], kind="mergesort").drop(columns="_pos")
    rows = []
    for group in always:
        rows.append({"group": group, "reason": "always", "selected": True})
    cumulative = [used] * len(always)
    for group, row in rest.iterrows():
        params = int(row["params"])
        if not row[criterion] > 0:
            reason = "no signal"
        elif used + params <= budget_params:
            reason = "selected"
            used += params
        else:
            reason = "over budget"
        rows.append({"group": group, "reason": reason, "selected": reason == "selected"})
        cumulative.append(used)
    ranking = pd.DataFrame(rows).set_index("group")
    ranking.insert(0, "rank", np.arange(1, len(ranking) + 1))
    ranking.insert(1, "params", scores.loc[ranking.index, "params"].astype("int64"))
    ranking.insert(2, criterion, scores.loc[ranking.index, criterion].astype(float))
    ranking["cumulative"] = np.asarray(cumulative, dtype=np.int64)
    chosen = set(ranking.index[ranking["selected"]])
    policy = groups_policy(g for g in order if g in chosen)
    ranking.attrs.update(criterion=criterion, budget_params=int(budget_params), policy=policy, trainable=used)
    return policy, ranking


def score_policies(scores: pd.DataFrame, model: nn.Module, policies: Sequence[str]) -> pd.DataFrame:
    """The criterion totals of whole policies (hand-picked or ``groups:``), to compare at a budget.

    Each policy must be a union of parameter groups (every policy in
    :data:`hfr_tutorial.tuning.POLICIES` is).  Columns: ``params``, ``groups`` (how many),
    ``fisher`` (sum over its groups), ``grad_norm`` (norm of its mean gradient: the root of the
    sum of the groups' squares) and both per parameter.
    """
    rows = []
    for policy in policies:
        groups = policy_groups(model, policy)[len("groups:"):].split(",") if policy != "frozen" else []
        sub = scores.loc[groups]
        params = int(sub["params"].sum())
        fisher = float(sub["fisher"].sum())
        grad_norm = math.sqrt(float((sub["grad_norm"] ** 2).sum()))
        rows.append({"policy": policy, "params": params, "groups": len(groups), "fisher": fisher,
                     "fisher_per_param": fisher / params if params else 0.0, "grad_norm": grad_norm,
                     "grad_norm_per_param": grad_norm / math.sqrt(params) if params else 0.0})
    return pd.DataFrame(rows).set_index("policy")


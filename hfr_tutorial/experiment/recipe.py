"""Each run's learning rate: fixed where it was chosen on dev offline, else chosen on dev now, with a guard.

* The stand-in's comparison rates were chosen on the dev identities by ``benchmarks/dev_selection.py``
  and are part of each run (``RunSpec.rates``): one candidate, recorded as such.
* A starting model pretrained elsewhere takes the preset's grid (``PretrainedRecipe.lr_grid``): every
  rate trains a cached model, each is scored on dev (:func:`hfr_tutorial.selection.selection_score`:
  mean dev rank-1 over every protocol, VIS included, ties by mean AUC), and the best one that passes
  the **VIS guard** is kept: a model whose dev VIS AUC fell by more than
  ``PretrainedRecipe.max_dev_vis_auc_drop`` below the unadapted model's is refused (the stand-in's
  rate of 4e-2 took a real EdgeFace's VIS AUC from 0.98 to 0.55).  When every rate is refused the
  run is reported as refused, with the figures and the knob to turn, never as a result.
* ``--lr`` gives one rate to every run (still guarded for a pretrained model).

Eval is never read here.

Taught in: ``notebooks/07_real_edgeface.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..runs import RunSpec
from ..selection import best_rate, selection_score
from .spec import Experiment


@dataclass(frozen=True)
class RatePlan:
    """The rates a run tries and how its rate is decided (said in the report)."""

    rates: tuple[float, ...]
    how: str
    guard: float | None


def rate_plan(experiment: Experiment, spec: RunSpec) -> RatePlan:
    """The candidate rates of ``spec`` in ``experiment`` and the rule that picks one."""
    guard = experiment.preset.pretrained.max_dev_vis_auc_drop if experiment.start.guarded else None
    if experiment.lr is not None:
        return RatePlan((float(experiment.lr),), "given (--lr)", guard)
    fixed = spec.fixed_rate(experiment.start.recipe)
    if fixed is not None:
        return RatePlan((float(fixed),), "chosen on dev identities offline (benchmarks/dev_selection.py)", guard)
    return RatePlan(tuple(float(r) for r in experiment.preset.pretrained.lr_grid),
                    "chosen on dev identities from the grid: highest mean dev rank-1 over every protocol (VIS "
                    "included), ties by mean AUC", guard)


def candidate(lr: float, dev: dict[str, dict[str, float]], start_dev: dict[str, dict[str, float]],
              guard: float | None, seconds: float, from_cache: bool) -> dict[str, Any]:
    """One rate's dev record: its figures, its selection score and whether the VIS guard refuses it."""
    base_vis = start_dev.get("vis->vis", {}).get("auc")
    vis = dev.get("vis->vis", {}).get("auc")
    drop = None if base_vis is None or vis is None else base_vis - vis
    score, tie = selection_score(dev)
    return {"lr": lr, "dev": dev, "dev_score": [score, tie], "dev_vis_auc_drop": drop,
            "refused_by_guard": bool(guard is not None and drop is not None and drop > guard),
            "train_seconds": round(seconds, 1), "from_cache": from_cache}


def choose(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The winning candidate among those the guard lets through (None when it refuses all)."""
    allowed = {c["lr"]: {"score": c["dev_score"][0], "tie": c["dev_score"][1]}
               for c in candidates if not c["refused_by_guard"]}
    if not allowed:
        return None
    best = best_rate(allowed)
    return next(c for c in candidates if c["lr"] == best)


def refusal(plan: RatePlan, candidates: list[dict[str, Any]], start_dev: dict[str, dict[str, float]]) -> str:
    """Why every rate was refused, and what to do."""
    worst = max(c["dev_vis_auc_drop"] or 0 for c in candidates)
    base = start_dev.get("vis->vis", {}).get("auc", float("nan"))
    return (f"dev VIS AUC fell by up to {worst:.3f} (more than the guard's {plan.guard}) below the unadapted model's "
            f"{base:.3f} at every learning rate tried ({', '.join(f'{lr:g}' for lr in plan.rates)}): the model was "
            "not kept. Lower the learning rate (--lr), or raise lambda (PretrainedRecipe.distill_weight).")

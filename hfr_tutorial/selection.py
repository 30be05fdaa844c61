"""Choosing settings on dev identities: learning-rate sweeps of the comparison runs, and the score they maximise.

A tutorial that teaches "choose the threshold on dev, report on eval" must choose everything else
that way too.  This module is the one place where the embedded comparison's settings are chosen:

* :func:`selection_score` -- what every sweep maximises: the mean rank-1 over every dev protocol,
  VIS->VIS included (so a rate that buys cross-modal accuracy by forgetting VIS does not win),
  ties broken by the mean AUC.  The experiment's choice among a grid of rates (:mod:`hfr_tutorial.experiment.recipe`) uses it too.
* :func:`dev_figures` -- a model's figures on the **dev** identities (never eval).
* :func:`lr_sweep` -- one adaptation run per learning rate on a ladder of half-decades, each trained
  on the training identities and scored on dev; when the best rate lies at an end of the rates
  tried, the sweep extends one step past it (at most ``max_extend`` times), so the winner is never
  an artefact of where the grid stopped.  Every candidate is a cached artifact
  (:func:`hfr_tutorial.artifacts.load_adapted`), so a sweep that has run once costs nothing again.

Nothing here reads the eval split: :func:`dev_figures` takes the dev set it is given and
:func:`lr_sweep` passes it ``faceset.select(split="dev")``; a test runs a sweep with the eval split
made unreadable.  ``benchmarks/dev_selection.py`` runs the sweeps of the comparison runs and writes
``docs/results/dev_selection/selection.json``, whose winners are the rates in
``RunSpec.rates`` of :data:`hfr_tutorial.runs.RUNS` (a test checks that they agree).

Taught in: ``notebooks/05_full_training.ipynb``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .artifacts import load_adapted, load_faceset
from .config import Preset, get_preset
from .metrics import evaluate_model

LR_LADDER: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
"""Learning rates a sweep may try: half-decade steps (each about 3.2x the last)."""

START_RATES: tuple[float, ...] = (3e-3, 1e-2, 3e-2)
"""Where every policy's sweep starts: the same three rates for LayerNorm-only, the paper's policy and
full fine-tuning, extended along :data:`LR_LADDER` when the best one is at an end."""


def selection_score(dev_figures: dict[str, dict[str, float]]) -> tuple[float, float]:
    """What a sweep maximises on dev: mean rank-1 over every dev protocol (VIS included), then mean AUC.

    VIS->VIS counts as much as each cross-modal protocol, so a rate that buys cross-modal accuracy
    by forgetting VIS does not win; AUC (all pairs) breaks the ties that rank-1 on a few dev
    identities leaves.
    """
    rank1 = float(np.mean([v["rank1"] for v in dev_figures.values()]))
    auc = float(np.mean([v["auc"] for v in dev_figures.values()]))
    return rank1, auc


def dev_figures(model: Any, dev_set: Any, batch_size: int = 256, device: Any = None) -> dict[str, dict[str, float]]:
    """Every registered metric of every protocol ``dev_set`` supports (gallery and probes by its roles, else
    the first VIS image of each identity), on the **dev** identities only."""
    splits = set(np.unique(dev_set.splits)) if getattr(dev_set, "splits", None) is not None else set()
    if splits - {"dev"}:
        raise ValueError(f"dev_figures got images of the split(s) {sorted(splits - {'dev'})}: choices are made on dev "
                         "only; pass faceset.select(split='dev').")
    return evaluate_model(model, dev_set, batch_size, device=device)[1]


def _rate_key(lr: float) -> str:
    return f"{lr:.0e}"


def lr_sweep(settings: Any, preset: str | Preset | None = None, seed: int = 0,
             rates: Sequence[float] = START_RATES, ladder: Sequence[float] = LR_LADDER, max_extend: int = 2,
             progress: bool = True, device: Any = None) -> pd.DataFrame:
    """Train ``settings`` at each rate (then past an end that wins), score each on dev; one row per rate.

    Args:
        settings: an :class:`~hfr_tutorial.train.AdaptSettings`; its ``lr`` is replaced by each rate.
        rates: the rates tried first (members of ``ladder``).
        ladder: the ordered rates the sweep may extend along.
        max_extend: how many steps past an end of ``rates`` the sweep may take in total.
    Returns:
        A DataFrame indexed by ``lr`` with dev ``<protocol> rank1`` / ``auc`` columns, ``score``
        (mean dev rank-1), ``tie`` (mean dev AUC), ``train_seconds`` and ``chosen`` (True for the
        winner: highest score, then highest tie, then the smaller rate).
    """
    preset = get_preset(preset)
    ladder = sorted(float(r) for r in ladder)
    unknown = [r for r in rates if float(r) not in ladder]
    if unknown or not rates:
        raise ValueError(f"lr_sweep rates {list(rates)} must be a non-empty subset of the ladder {ladder}.")
    dev = load_faceset(preset, seed, progress).select(split="dev")
    rows: dict[float, dict[str, Any]] = {}

    def run(lr: float) -> None:
        artifact = load_adapted(replace(settings, lr=lr), preset, seed, progress)
        figures = dev_figures(artifact.model, dev, preset.eval_batch_size, device=device)
        score, tie = selection_score(figures)
        row: dict[str, Any] = {f"{p} rank1": f["rank1"] for p, f in figures.items()}
        row.update({f"{p} auc": f["auc"] for p, f in figures.items()})
        row.update(score=score, tie=tie, train_seconds=round(artifact.seconds, 1), run=artifact.name)
        rows[lr] = row
        if progress:
            print(f"      {artifact.name} lr {_rate_key(lr)}: dev mean rank-1 {score:.4f} (AUC {tie:.4f})"
                  f"{' [cache]' if artifact.from_cache else f' [{artifact.seconds:.0f} s]'}")

    for lr in sorted(float(r) for r in rates):
        run(lr)
    for _ in range(max_extend):
        best = best_rate(rows)
        tried = sorted(rows)
        i = ladder.index(best)
        if best == tried[0] and i > 0:
            run(ladder[i - 1])
        elif best == tried[-1] and i < len(ladder) - 1:
            run(ladder[i + 1])
        else:
            break
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    table.index.name = "lr"
    table["chosen"] = table.index == best_rate(rows)
    return table


def best_rate(rows: dict[float, dict[str, Any]]) -> float:
    """The winning rate: highest score, then highest tie-breaker, then the smaller (more conservative) rate."""
    return min(rows, key=lambda lr: (-round(rows[lr]["score"], 9), -round(rows[lr]["tie"], 9), lr))


def at_edge(table: pd.DataFrame) -> bool:
    """True when the chosen rate is the smallest or largest one tried (the sweep could not go further)."""
    chosen = float(table.index[table["chosen"]][0])
    return chosen in (float(table.index.min()), float(table.index.max()))

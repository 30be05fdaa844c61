"""The figures of an experiment's report, written once for every kind of data and starting model.

* ``rank1_by_run.png`` -- rank-1 of every model on every protocol (the report's first figure);
* ``metrics_by_run.png`` -- every registered metric (:data:`hfr_tutorial.metrics.METRICS`), one panel each;
* ``roc.png`` -- ROC curves of the starting model and the method;
* ``umap_before_after.png`` -- UMAP of eval embeddings before and after the method (40 identities);
* ``training_curves.png`` -- the adaptation runs' history tables;
* ``parameter_budget.png`` -- trainable parameters of each run.

Figures of the first fold (a fold family's folds are alike).  Taught in ``notebooks/06_evaluation.ipynb``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .. import plots
from ..evaluate import metrics_table, score_protocols
from ..metrics import METRICS
from ..runs import role_of

UMAP_IDENTITIES = 40


def write_figures(folder: Path, fold: dict[str, Any], plot_data: dict[str, Any]) -> dict[str, str]:
    """Draw the figures of one fold's record into ``folder``; returns ``{title: path relative to the report}``.

    ``plot_data``: ``embeddings`` ({model: eval embeddings}), ``evalset``, ``protocols``, ``start``
    (the starting model's name) and ``histories`` ({run: history table}).
    """
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}

    def save(fig: Any, name: str, title: str) -> None:
        fig.savefig(folder / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files[title] = f"figures/{name}"

    models = {n: r for n, r in fold["models"].items() if r.get("status", "ok") == "ok"}
    table = metrics_table({n: r["protocols"] for n, r in models.items()})
    save(plots.plot_metric_bars(table, "rank1"), "rank1_by_run.png", "Rank-1 by run and protocol")
    shown = [m for m in METRICS if m in table.columns]
    save(plots.plot_metric_bars(table, shown), "metrics_by_run.png", "Every reported metric by run and protocol")
    evalset, embs, start = plot_data["evalset"], plot_data["embeddings"], plot_data["start"]
    method = role_of("method")
    after = method if method in embs else next((n for n in embs if n != start), None)
    curves = {start: score_protocols(embs[start], evalset.identities, evalset.modalities, plot_data["protocols"],
                                     evalset.roles)}
    if after:
        curves[after] = score_protocols(embs[after], evalset.identities, evalset.modalities, plot_data["protocols"],
                                        evalset.roles)
    save(plots.plot_roc(curves), "roc.png", f"ROC: {start} and {after or 'no adapted run'}")
    if after:
        rng = np.random.default_rng(0)
        ids = np.unique(evalset.identities)
        keep = np.isin(evalset.identities, rng.choice(ids, size=min(UMAP_IDENTITIES, len(ids)), replace=False))
        save(plots.plot_umap({f"before adaptation ({start})": embs[start][keep], f"after adaptation ({after})":
                              embs[after][keep]}, evalset.identities[keep], evalset.modalities[keep], random_state=0),
             "umap_before_after.png", "UMAP of eval embeddings before and after adaptation")
    histories = {n: h for n, h in plot_data["histories"].items() if h is not None and len(h)}
    if histories:
        save(plots.plot_training_curves(histories), "training_curves.png", "Training curves of the trained runs")
    budget = {n: (r["trainable_params"], r["total_params"]) for n, r in models.items() if n != start}
    if budget:
        save(plots.plot_parameter_budget(budget), "parameter_budget.png", "Trainable parameters per run")
    return files

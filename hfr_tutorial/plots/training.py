"""Figures of training and comparison: training curves, the parameter budget, metric bars, data efficiency.

Whenever runs are compared (curves of several runs, bars per run, the models of the data-efficiency
study) each run takes its own colour from :func:`hfr_tutorial.palette.run_color`, by name, so a run
has the same colour in every figure of the course whatever else the figure shows.  Labels are
words (:func:`~hfr_tutorial.plots.style.metric_label`).

Taught in ``notebooks/02_layer_freezing.ipynb`` (budget), ``03``-``05`` (curves and bars) and
``05_full_training`` (:func:`plot_data_efficiency`).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hfr_tutorial import evaluate as ev
from hfr_tutorial.palette import modality_color, modality_name, run_color
from hfr_tutorial.plots.style import (SERIES_COLORS, TRAINED_COLOR, empty_input, metric_label, new_figure,
                                      protocol_color, styled)

# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------
HISTORY_EXPECTED = "a history DataFrame (one row per epoch), a list of row dicts, or {run: history}"


def _curve_group(col: str) -> str:
    """The panel a history column belongs to when one run is drawn (columns of one kind share a panel)."""
    c = str(col).lower()
    if "loss" in c or c in ("infonce", "pairwise", "multipositive", "distill", "contrastive"):
        return "loss"
    if c == "lr" or "lr_" in c or "learning_rate" in c:
        return "learning rate"
    if c.startswith("train_") and "acc" in c:
        return "training accuracy"
    if m := re.fullmatch(r"val_[a-z]+_(.+)", c):
        return f"dev {metric_label(m.group(1))}"
    if "second" in c or c in ("time", "duration"):
        return "seconds per epoch"
    return metric_label(col)


_GROUP_ORDER = ("loss", "learning rate", "training accuracy")


ZOOM_ABOVE = 0.5
"""A panel of shares whose values all exceed this is drawn on a zoomed axis (see :func:`_rate_limits`)."""


def _rate_limits(ax: Any) -> tuple[float, float]:
    """The y range of a panel of shares: 0 to 1.02, or from a step of 0.05 below its lowest value to 1.01
    when every value drawn in it (curves and reference lines) is above :data:`ZOOM_ABOVE`."""
    values = np.concatenate([np.asarray(line.get_ydata(), dtype=float).ravel() for line in ax.get_lines()]
                            or [np.zeros(1)])
    values = values[np.isfinite(values)]
    low = float(values.min()) if len(values) else 0.0
    if low <= ZOOM_ABOVE:
        return 0.0, 1.02
    return math.floor((low - 0.02) * 20) / 20, 1.01


def _is_rate(col: str) -> bool:
    """A column whose values are shares in [0, 1] (drawn on the full 0-1 axis)."""
    c = str(col).lower()
    return any(t in c for t in ("rank", "acc", "auc", "tar")) and "loss" not in c


def _history_frames(history: Any) -> dict[str | None, pd.DataFrame]:
    if history is None:
        raise empty_input("plot_training_curves", "history", HISTORY_EXPECTED)
    if isinstance(history, Mapping) and all(isinstance(v, (pd.DataFrame, list)) for v in history.values()):
        if not history:
            raise empty_input("plot_training_curves", "history", HISTORY_EXPECTED)
        frames: dict[str | None, pd.DataFrame] = {str(k): pd.DataFrame(v) for k, v in history.items()}
    else:
        frames = {None: pd.DataFrame(history)}
    for run, frame in frames.items():
        if frame.empty:
            where = "history" if run is None else f"history[{run!r}]"
            raise empty_input("plot_training_curves", where, "at least one epoch's row")
    return frames


def _baseline_values(baseline: Any) -> dict[str, float]:
    """``{column: value}`` of the reference lines: a mapping, or a history whose last row is used."""
    if baseline is None:
        return {}
    if isinstance(baseline, pd.DataFrame):  # a history: the dev figures of its last epoch (not its losses)
        if baseline.empty:
            return {}
        last = baseline.iloc[-1]
        return {str(k): float(v) for k, v in last.items() if str(k).startswith("val_")}
    return {str(k): float(v) for k, v in dict(baseline).items()}


@styled
def plot_training_curves(history: Any, *, x: str = "epoch", columns: Sequence[str] | None = None,
                         baseline: Any = None, baseline_label: str = "baseline (before adaptation)",
                         ncols: int = 4) -> Figure:
    """The numeric columns of training histories against ``epoch``, with labels in words.

    * One run (a history DataFrame, or a list of row dicts): columns of one kind share a panel
      (the loss terms; the learning rate; the dev rank-1 of each probe modality, coloured by
      :data:`~hfr_tutorial.palette.MODALITY_COLORS`; the seconds per epoch; any other column alone).
    * Several runs (``{run: history}``): one panel per column, each run in its own colour
      (:func:`~hfr_tutorial.palette.run_color`), the same in every panel and every figure.

    Either way one legend serves the whole figure, below the panels, so it covers no curve.

    ``columns`` picks the columns to draw (default: every numeric one but ``x``).  ``baseline`` is
    ``{column: value}`` or the baseline's own history (the dev figures, ``val_*``, of its last
    epoch): a dashed line in the panel of each column it names, so a change (forgetting, say) is
    read against it.  Shares (rank-1, accuracy, AUC, TAR) are drawn on their full 0-1 axis, unless every
    value of a panel (its reference line included) is above :data:`ZOOM_ABOVE`: then the axis starts just
    below the lowest (:func:`_rate_limits`), so a drift of a few points, such as the dev VIS rank-1 of a
    run that forgets, is visible rather than flattened against 1.  The learning rate is drawn on a
    linear axis (a cosine decay to 0 has no log).
    """
    frames = _history_frames(history)
    numeric: list[str] = []
    for frame in frames.values():
        for col in frame.select_dtypes("number").columns:
            if col != x and col not in numeric:
                numeric.append(str(col))
    if columns is not None:
        if not columns:
            raise empty_input("plot_training_curves", "columns", "the names of numeric columns to draw (or None for all)")
        missing = [c for c in columns if c not in numeric]
        if missing:
            raise ValueError(f"plot_training_curves: column(s) {missing} are not numeric columns of the history; "
                             f"it has {numeric}.")
        numeric = [str(c) for c in columns]
    if not numeric:
        raise ValueError(f"plot_training_curves: the history has no numeric columns besides {x!r}; nothing to plot.")
    reference = _baseline_values(baseline)
    several = not (len(frames) == 1 and None in frames)
    loss_rank = {"infonce": 0, "pairwise": 1, "contrastive": 2, "distill": 3, "loss": 4}
    grouped: dict[str, list[str]] = {}
    for col in numeric:
        grouped.setdefault(_curve_group(col), []).append(col)
    if "loss" in grouped:  # the contrastive terms, then distillation, then their total
        grouped["loss"].sort(key=lambda c: loss_rank.get(c.lower(), 5))
    fixed = [g for g in _GROUP_ORDER if g in grouped]
    timing = [g for g in grouped if g == "seconds per epoch"]
    order = fixed + [g for g in grouped if g not in fixed + timing] + timing
    if several:  # one panel per column, in the order of their groups
        panels = {col: [col] for g in order for col in grouped[g]}
    else:
        panels = {g: grouped[g] for g in order}
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(3.3 * ncols, 2.6 * nrows + 0.45))
    handles: dict[str, Any] = {}
    for k, (name, cols) in enumerate(panels.items()):
        ax = axes.flat[k]
        for run, frame in frames.items():
            xs = frame[x] if x in frame else np.arange(1, len(frame) + 1)
            for c, col in enumerate(col for col in cols if col in frame):
                if several:
                    color, label = run_color(str(run)), str(run)
                else:
                    mod = re.fullmatch(r"val_([a-z]+)_.+", col.lower())
                    color = modality_color(mod.group(1)) if mod else SERIES_COLORS[c % len(SERIES_COLORS)]
                    label = metric_label(col)
                (line,) = ax.plot(xs, frame[col], color=color, marker="o", ms=2.5, lw=1.3, label=label)
                if several or len(cols) > 1:  # a lone curve is named by its panel's title
                    handles.setdefault(label, line)
        for col in cols:
            if col in reference:
                mod = re.fullmatch(r"val_([a-z]+)_.+", col.lower())
                color = modality_color(mod.group(1)) if mod and not several else "0.35"
                ax.axhline(reference[col], color=color, ls="--", lw=1.0)
                handles.setdefault(baseline_label, Line2D([], [], color="0.35", ls="--", lw=1.0))
        if all(_is_rate(col) for col in cols):
            ax.set_ylim(_rate_limits(ax))
        elif name == "learning rate" or any(_curve_group(col) == "learning rate" for col in cols):
            ax.set_ylim(bottom=0)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        ax.set(title=metric_label(name) if several else name, xlabel=x)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    if several:  # the runs in the order given, then the reference line
        handles = {**{str(r): handles[str(r)] for r in frames if str(r) in handles}, **handles}
    if len(handles) > 1:  # one legend for the figure, below the panels: it covers no curve
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(4, len(handles)))
    return fig


# ---------------------------------------------------------------------------------------------
# Parameter budget
# ---------------------------------------------------------------------------------------------
BUDGET_BAR_COLOR = "#5F5F5F"
"""The trainable bar of a policy that is not highlighted (the highlighted one is :data:`~hfr_tutorial.plots.style.TRAINED_COLOR`)."""


def _budget_rows(table: Any) -> list[tuple[str, float, float]]:
    if isinstance(table, pd.DataFrame):
        frame = table.set_index("policy") if "policy" in table.columns else table
        return [(str(i), float(r["trainable"]), float(r["total"])) for i, r in frame.iterrows()]
    rows = []
    for name, value in dict(table).items():
        if isinstance(value, Mapping):
            rows.append((str(name), float(value["trainable"]), float(value["total"])))
        else:
            trainable, total = value
            rows.append((str(name), float(trainable), float(total)))
    return rows


@styled
def plot_parameter_budget(table: Any, *, highlight: str | None = "paper") -> Figure:
    """Trainable parameters of each tuning policy on a log scale, labelled with their share.

    ``table``: a DataFrame with ``policy``, ``trainable`` and ``total`` columns, or a dict
    ``{policy: (trainable, total)}`` / ``{policy: {"trainable": .., "total": ..}}``.  The grey
    bars are the whole network; the ``highlight``-ed policy's trainable bar is red, as the strips
    a policy trains in the architecture diagram.  Taught in ``notebooks/02_layer_freezing.ipynb``.
    """
    rows = _budget_rows(table) if table is not None else []
    if not rows:
        raise empty_input("plot_parameter_budget", "table",
                          "{policy: (trainable, total)} or a DataFrame with policy, trainable and total columns")
    fig, axes = new_figure(1, 1, figsize=(6.0, 0.45 * len(rows) + 1.2))
    ax = axes[0, 0]
    y = np.arange(len(rows))[::-1]
    totals = np.array([r[2] for r in rows])
    trainable = np.array([r[1] for r in rows])
    ax.barh(y, totals, color="0.88", height=0.7, label="total")
    colors = [TRAINED_COLOR if r[0] == highlight else BUDGET_BAR_COLOR for r in rows]
    ax.barh(y, np.maximum(trainable, 0.8), color=colors, height=0.7, label="trainable")
    for yi, (name, t, tot) in zip(y, rows):
        share = 100.0 * t / tot if tot else 0.0
        ax.text(max(t, 1.0) * 1.15, yi, f"{int(t):,} ({share:.2f} %)", va="center", fontsize=8)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.set_xscale("log")
    ax.set_xlim(0.8, max(float(totals.max()), 1.0) * 8)
    ax.set(xlabel="parameters (log scale)", title="trainable parameters per tuning policy")
    ax.grid(axis="y", visible=False)
    return fig


# ---------------------------------------------------------------------------------------------
# Metric bars
# ---------------------------------------------------------------------------------------------
@styled
def plot_metric_bars(table: Any, metric: str | Sequence[str] = "rank1", *, runs: Sequence[str] | None = None) -> Figure:
    """Bars comparing runs on each protocol, one panel per metric (e.g. ``["rank1", "tar_at_far_1e-2"]``).

    Each run takes its own colour (:func:`~hfr_tutorial.palette.run_color`, by name), protocol
    labels their probe modality's colour, and titles and axes name each metric in words
    (:func:`~hfr_tutorial.plots.style.metric_label`).

    ``table`` is :func:`~hfr_tutorial.evaluate.metrics_table` output, or anything it accepts
    (``{run: protocols}`` or a loaded ``metrics.json``).  ``runs`` picks and orders the runs.
    """
    expected = "evaluate.metrics_table output, {run: {protocol: metrics}} or a loaded metrics.json"
    if table is None or (isinstance(table, (Mapping, pd.DataFrame)) and len(table) == 0):
        raise empty_input("plot_metric_bars", "table", expected)
    frame = table if isinstance(table, pd.DataFrame) else ev.metrics_table(table)
    if frame.empty:
        raise empty_input("plot_metric_bars", "table", expected)
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if not metrics:
        raise empty_input("plot_metric_bars", "metric", "a metric name such as 'rank1', or a list of them")
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        raise ValueError(f"plot_metric_bars: metric(s) {missing} not in the table; it has {sorted(frame.columns)}.")
    known = list(dict.fromkeys(frame["run"]))
    if runs is not None:
        if not runs:
            raise empty_input("plot_metric_bars", "runs", f"the runs to show (or None for all: {known})")
        unknown = [r for r in runs if r not in known]
        if unknown:
            raise ValueError(f"plot_metric_bars: run(s) {unknown} are not in the table; it has {known}.")
    order = list(runs) if runs is not None else known
    frame = frame[frame["run"].isin(order)]
    protocols = list(dict.fromkeys(frame["protocol"]))
    fig, axes = new_figure(1, len(metrics), figsize=(max(4.5, 1.1 * len(protocols) * max(1, len(order)) / 2.2 + 1.5) * len(metrics), 3.6))
    palette = {str(r): run_color(str(r)) for r in order}
    for ax, name in zip(axes[0], metrics):
        sns.barplot(data=frame, x="protocol", y=name, hue="run", order=protocols, hue_order=order,
                    palette=palette, saturation=1.0, ax=ax, errorbar=None)
        for container in ax.containers:
            ax.bar_label(container, fmt="%.2f", fontsize=6, padding=1)
        for tick in ax.get_xticklabels():
            tick.set_color(protocol_color(tick.get_text()))
        ax.set(ylim=(0, 1.1) if frame[name].max() <= 1 else (0, None), title=metric_label(name),
               xlabel="probe -> gallery", ylabel=metric_label(name))
        if ax.legend_ is not None:
            ax.legend_.remove()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center")
    return fig


# ---------------------------------------------------------------------------------------------
# Data efficiency
# ---------------------------------------------------------------------------------------------
DATA_EFFICIENCY_MODELS: dict[str, str] = {"method": "the method (paper policy)", "full": "full fine-tuning",
                                           "oracle": "joint oracle (from scratch)"}
"""How :func:`plot_data_efficiency` names the models of ``benchmarks/data_efficiency.py``."""


@styled
def plot_data_efficiency(record: Mapping[str, Any], *, run_names: Mapping[str, str] | None = None) -> Figure:
    """Eval rank-1 against the amount of paired data: one row per axis, one column per protocol.

    ``record`` is ``benchmarks/data_efficiency.py``'s ``data_efficiency.json`` (``summary.table``:
    mean, lowest and highest seed per model, axis, point and protocol; ``baseline``: the starting
    model before adaptation, named by ``baseline_name``, by default the RGB baseline).  Row 1 varies
    the paired identities (log axis, every image of each), row 2 the pairs per identity at
    ``pairs_at`` identities.  Each model is a line (the mean over seeds) with a band from its lowest
    to its highest seed; the dashed grey line is the starting model, where every curve starts from
    (the oracle excepted: it trains from scratch).

    A model is coloured as the run it is (:func:`~hfr_tutorial.palette.run_color`): ``run_names``
    (default: the record's ``run_names``) maps a model of the study (``method``, ``full``,
    ``oracle``) to its run's name (e.g. ``paper/infonce+distill``); a model without one is
    coloured by its own key.
    """
    summary = record.get("summary", {}) if isinstance(record, Mapping) else {}
    stats = list(summary.get("table", []) if isinstance(summary, Mapping) else [])
    if not stats:
        raise empty_input("plot_data_efficiency", "record['summary']['table']",
                          "the data_efficiency.json that benchmarks/data_efficiency.py writes")
    names = dict(record.get("run_names", {}))
    names.update(run_names or {})
    protocols = [p for p in ("vis->vis", "nir->vis", "thermal->vis") if any(s["protocol"] == p for s in stats)]
    models = [m for m in DATA_EFFICIENCY_MODELS if any(s["model"] == m for s in stats)]
    axes_rows = [("identities", "n_identities", "paired identities (every image of each)"),
                 ("pairs", "pairs_per_identity", f"pairs per identity (at {record.get('pairs_at', '?')} identities)")]
    fig, axes = new_figure(2, len(protocols), figsize=(3.6 * len(protocols), 6.4))
    seeds = len(record.get("seeds", []))
    for r, (axis, key, xlabel) in enumerate(axes_rows):
        for c, proto in enumerate(protocols):
            ax = axes[r, c]
            for model in models:
                rows = sorted((s for s in stats if s["model"] == model and s["axis"] == axis and s["protocol"] == proto),
                              key=lambda s: s[key])
                if not rows:
                    continue
                x = np.array([s[key] for s in rows], dtype=float)
                color = run_color(str(names.get(model, model)))
                ax.fill_between(x, [s["low"] for s in rows], [s["high"] for s in rows], color=color, alpha=0.18,
                                linewidth=0)
                ax.plot(x, [s["mean"] for s in rows], marker="o", ms=3.5, color=color,
                        label=DATA_EFFICIENCY_MODELS[model])
            base = record.get("baseline", {}).get(proto)
            if base is not None:
                ax.axhline(base, color="0.55", ls="--", lw=1,
                           label=record.get("baseline_name", "RGB baseline before adaptation"))
            if axis == "identities":
                ax.set_xscale("log")
            xs = sorted({s[key] for s in stats if s["axis"] == axis})
            ax.set_xticks(xs)
            ax.set_xticklabels([str(v) for v in xs])
            ax.minorticks_off()
            ax.set_ylim(0, 1.02)
            ax.set_xlabel(xlabel)
            probe = proto.split("->")[0]
            ax.set_title(f"{modality_name(probe)} probes vs VIS gallery", color=modality_color(probe))
            if c == 0:
                ax.set_ylabel("eval rank-1")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    fig.suptitle(f"How much paired data: eval rank-1, mean over {seeds} seeds (band: lowest to highest seed)")
    return fig

"""Interactive explorers for JupyterLab (ipywidgets) that degrade to a static figure.

Each explorer keeps its state in plain attributes that :meth:`update` changes (so tests and
scripts drive them headless), draws that state with :meth:`static_figure`, and builds its
ipywidgets controls only when shown.  In a notebook::

    explorer = IdentityExplorer(images, identities, modalities, {"before": e0, "after": e1})
    show(explorer)

:func:`show` displays the live widget in a Jupyter kernel and the static figure where widgets
cannot render (no kernel, ipywidgets missing, or ``HFR_STATIC_WIDGETS=1`` for rendered docs).
Like the plots, explorers take images, embeddings and scores, never models.

Taught in ``notebooks/06_evaluation.ipynb`` (the explorers), ``notebooks/03_contrastive_alignment.ipynb``
(:class:`LossExplorer`) and ``notebooks/04_self_distillation.ipynb`` (:class:`TrainingKnobs`, which re-trains
the student's own loop).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from hfr_tutorial import evaluate as ev
from hfr_tutorial.config import static_widgets
from hfr_tutorial.palette import modality_color
from hfr_tutorial.plots import (GENUINE_COLOR, draw_score_histogram, embedding_panels, new_figure, plot_metric_bars,
                                plot_roc, protocol_color, score_pairs, styled)



class _Explorer:
    """Shared plumbing: lazy ipywidgets UI, an Output that re-renders on every update."""

    _ui: Any = None
    _output: Any = None

    def static_figure(self) -> Figure:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def widget(self) -> Any:
        """The ipywidgets UI (built on first use; raises ImportError without ipywidgets)."""
        if self._ui is None:
            import ipywidgets

            self._output = ipywidgets.Output()
            self._ui = self._build(ipywidgets)
            self._render()
        return self._ui

    def _build(self, ipywidgets: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _render(self) -> None:
        if self._output is None:
            return
        from IPython.display import display

        with self._output:
            self._output.clear_output(wait=True)
            display(self.static_figure())

    def _ipython_display_(self) -> None:
        show(self)


# ---------------------------------------------------------------------------------------------
# Identity explorer
# ---------------------------------------------------------------------------------------------


@dataclass
class Match:
    """One gallery match of a query: the gallery identity, its image index, score and correctness."""

    identity: Any
    index: int
    score: float
    correct: bool


class IdentityExplorer(_Explorer):
    """Pick an identity: its VIS/NIR/thermal images and their top-k gallery matches per model.

    ``embeddings`` maps a stage name to embeddings of the same images (``{"before": e0, "after":
    e1}``) or is one array.  The gallery is the first ``gallery_modality`` image of each identity
    (as in :func:`~hfr_tutorial.evaluate.identification_protocol`); a query is an image of that
    identity in each modality other than its gallery image (``sample`` picks which).  After
    :meth:`update`, ``rows`` holds per modality the query index, the ``matches`` (a list of
    :class:`Match` per stage) and the ``rank`` of the true identity per stage.
    """

    def __init__(
        self,
        images: Any,
        identities: Any,
        modalities: Any,
        embeddings: Mapping[str, np.ndarray] | np.ndarray,
        *,
        gallery_modality: str = "vis",
        k: int = 3,
        identity: Any = None,
    ) -> None:
        self.images = images
        panels, self.identities, self.modalities = embedding_panels(embeddings, identities, modalities,
                                                                    function="IdentityExplorer", default_title="model")
        self.stages = {name: ev.l2_normalize(e) for name, e in panels.items()}
        if len(images) != self.identities.size:
            raise ValueError(f"{len(images)} images but {self.identities.size} labels; pass one image per embedding.")
        self.gallery_idx, _ = ev.identification_protocol(self.identities, self.modalities, gallery_modality, gallery_modality)
        self.gallery_modality = gallery_modality
        self.modality_order = ev.ordered_modalities(self.modalities, gallery_modality)
        enrolled = self.identities[self.gallery_idx]
        queries = np.isin(self.identities, enrolled)
        queries[self.gallery_idx] = False
        self.options = [i.item() if hasattr(i, "item") else i for i in np.unique(self.identities[queries])]
        if not self.options:
            raise ValueError("No identity has images besides its gallery image; nothing to explore.")
        self.k = int(k)
        self.identity: Any = None
        self.sample = 0
        self.rows: list[dict[str, Any]] = []
        self.update(identity=self.options[0] if identity is None else identity)

    def _query_indices(self, identity: Any, sample: int) -> dict[str, int]:
        out = {}
        for mod in self.modality_order:
            idx = np.flatnonzero((self.identities == identity) & (self.modalities == mod))
            idx = idx[~np.isin(idx, self.gallery_idx)]
            if idx.size:
                out[mod] = int(idx[sample % idx.size])
        return out

    def update(self, identity: Any = None, sample: int | None = None, k: int | None = None) -> list[dict[str, Any]]:
        """Select an identity (and which of its images, ``sample``) and recompute the matches."""
        if identity is not None:
            if identity not in self.options:
                raise ValueError(f"Identity {identity!r} has no query images here; choose one of {self.options[:10]}...")
            self.identity = identity
        if sample is not None:
            self.sample = int(sample)
        if k is not None:
            self.k = int(k)
        gallery_labels = self.identities[self.gallery_idx]
        self.rows = []
        for mod, q in self._query_indices(self.identity, self.sample).items():
            matches, ranks = {}, {}
            for stage, emb in self.stages.items():
                sim = emb[self.gallery_idx] @ emb[q]
                top = np.argsort(-sim, kind="stable")[: self.k]
                matches[stage] = [
                    Match(gallery_labels[j].item(), int(self.gallery_idx[j]), float(sim[j]), bool(gallery_labels[j] == self.identity))
                    for j in top
                ]
                ranks[stage] = int(ev.probe_ranks(sim[None], gallery_labels, np.array([self.identity]))[0])
            self.rows.append({"modality": mod, "query": q, "matches": matches, "rank": ranks})
        self._render()
        return self.rows

    @styled
    def static_figure(self) -> Figure:
        """Rows: the query images; per stage, its top-k gallery faces (green: right person)."""
        stages = list(self.stages)
        ncols = 1 + len(stages) * self.k
        fig, axes = new_figure(len(self.rows), ncols, figsize=(1.25 * ncols + 0.6, 1.45 * len(self.rows) + 0.4))
        for r, row in enumerate(self.rows):
            cells = [(row["query"], f"{row['modality']} query", modality_color(row["modality"]))]
            for stage in stages:
                for i, m in enumerate(row["matches"][stage]):
                    head = f"{stage} (rank {row['rank'][stage]})\n" if i == 0 else "\n"
                    cells.append((m.index, f"{head}id {m.identity}: {m.score:.2f}", GENUINE_COLOR if m.correct else "#C0392B"))
            for c, (index, title, color) in enumerate(cells):
                ax = axes[r, c]
                ax.imshow(np.asarray(self.images[index]))
                ax.set_title(title, fontsize=7, color=color, pad=2)
                ax.set(xticks=[], yticks=[])
                for side in ax.spines.values():
                    side.set(visible=True, color=color, linewidth=2 if c else 1)
        fig.suptitle(f"identity {self.identity}: top-{self.k} gallery matches", fontsize=10)
        return fig

    def _build(self, ipywidgets: Any) -> Any:
        self._identity_control = ipywidgets.Dropdown(options=self.options, value=self.identity, description="identity")
        self._sample_control = ipywidgets.BoundedIntText(value=self.sample, min=0, max=99, description="image")
        self._identity_control.observe(lambda change: self.update(identity=change["new"]), names="value")
        self._sample_control.observe(lambda change: self.update(sample=change["new"]), names="value")
        return ipywidgets.VBox([ipywidgets.HBox([self._identity_control, self._sample_control]), self._output])


# ---------------------------------------------------------------------------------------------
# Threshold explorer
# ---------------------------------------------------------------------------------------------


class ThresholdExplorer(_Explorer):
    """A threshold slider that moves the operating point on the ROC and updates FAR and TAR.

    ``curves`` maps a protocol to its scores (:class:`~hfr_tutorial.evaluate.ProtocolScores`
    or ``(scores, same)``), or is one of them.  State after :meth:`update`: ``protocol``,
    ``threshold``, ``far``, ``tar``, ``frr`` (accept when score >= threshold).
    """

    def __init__(self, curves: Any, *, threshold: float | None = None, protocol: str | None = None) -> None:
        items = score_pairs(curves, "ThresholdExplorer")
        self.curves = {(p or "scores"): (s.astype(float), m) for _, p, s, m in items}
        self.protocol = protocol or next(iter(self.curves))
        self.threshold = float("nan")
        self.far = self.tar = self.frr = float("nan")
        if threshold is None:
            scores, same = self._current()
            threshold = ev.verification_metrics(scores, same, fars=())["eer_threshold"]
        self.update(threshold=threshold, protocol=self.protocol)

    def _current(self) -> tuple[np.ndarray, np.ndarray]:
        return self.curves[self.protocol]

    def update(self, threshold: float | None = None, protocol: str | None = None) -> dict[str, float]:
        """Move the threshold and/or switch protocol; returns the operating point."""
        if protocol is not None:
            if protocol not in self.curves:
                raise ValueError(f"Unknown protocol {protocol!r}; choose one of {list(self.curves)}.")
            self.protocol = protocol
        if threshold is not None:
            self.threshold = float(threshold)
        point = ev.apply_threshold(*self._current(), self.threshold)
        self.far, self.tar, self.frr = point["far"], point["tar"], point["frr"]
        if self._ui is not None:
            self._summary.value = self.summary()
            if self._slider.value != self.threshold:
                self._slider.value = self.threshold
        self._render()
        return point

    def set_far(self, far: float) -> dict[str, float]:
        """Put the threshold where the FAR (on these scores) is at most ``far``."""
        return self.update(threshold=ev.threshold_at_far(*self._current(), far))

    def summary(self) -> str:
        return (f"{self.protocol}: threshold {self.threshold:.3f} -> FAR {100 * self.far:.2f} %, "
                f"TAR {100 * self.tar:.1f} %, FRR {100 * self.frr:.1f} %")

    @styled
    def static_figure(self) -> Figure:
        """ROC with the operating point, and the score histograms with the threshold."""
        scores, same = self._current()
        fig, axes = new_figure(1, 2, figsize=(10.0, 3.6))
        plot_roc({self.protocol: (scores, same)}, ax=axes[0, 0], mark_far=None, title="operating point on the ROC")
        far_min = axes[0, 0].get_xlim()[0]
        axes[0, 0].plot([max(self.far, far_min)], [self.tar], "o", ms=9, mfc="none", mec="k", mew=2)
        draw_score_histogram(axes[0, 1], scores, same, color=protocol_color(self.protocol), threshold=self.threshold)
        axes[0, 1].legend(loc="upper left")
        fig.suptitle(self.summary(), fontsize=10)
        return fig

    def _build(self, ipywidgets: Any) -> Any:
        lo = float(min(s.min() for s, _ in self.curves.values()))
        hi = float(max(s.max() for s, _ in self.curves.values()))
        self._slider = ipywidgets.FloatSlider(value=self.threshold, min=lo, max=hi, step=(hi - lo) / 400 or 0.01,
                                              description="threshold", readout_format=".3f", continuous_update=False)
        self._protocol_control = ipywidgets.Dropdown(options=list(self.curves), value=self.protocol, description="protocol")
        self._summary = ipywidgets.HTML(self.summary())
        self._slider.observe(lambda change: self.update(threshold=change["new"]), names="value")
        self._protocol_control.observe(lambda change: self.update(protocol=change["new"]), names="value")
        return ipywidgets.VBox([ipywidgets.HBox([self._protocol_control, self._slider]), self._summary, self._output])


# ---------------------------------------------------------------------------------------------
# Run selector
# ---------------------------------------------------------------------------------------------


class RunSelector(_Explorer):
    """A dropdown over the comparison runs, showing the chosen run's metrics and figures.

    ``results``: a loaded ``metrics.json``, ``{run: protocols}`` or a
    :func:`~hfr_tutorial.evaluate.metrics_table` frame.  ``figures`` (optional) maps a run to
    ``{title: Figure or image path}``.  State after :meth:`update`: ``run`` and ``table`` (that
    run's rows).
    """

    def __init__(self, results: Any, figures: Mapping[str, Mapping[str, Any]] | None = None, *,
                 metrics: Sequence[str] = ("rank1", "tar_at_far_1e-2"), run: str | None = None) -> None:
        import pandas as pd

        self.frame = results if isinstance(results, pd.DataFrame) else ev.metrics_table(results)
        self.runs = list(dict.fromkeys(self.frame["run"]))
        self.figures = dict(figures or {})
        self.metrics = list(metrics)
        self.run = ""
        self.table = self.frame.iloc[:0]
        self.update(run or self.runs[0])

    def update(self, run: str | None = None) -> "pd.DataFrame":  # noqa: F821
        """Select a run; returns its metrics, one row per protocol."""
        if run is not None:
            if run not in self.runs:
                raise ValueError(f"Unknown run {run!r}; choose one of {self.runs}.")
            self.run = run
        self.table = self.frame[self.frame["run"] == self.run].set_index("protocol")
        self._render()
        return self.table

    def static_figure(self) -> Figure:
        """Bars of every run on each protocol (the selected run named in the title)."""
        fig = plot_metric_bars(self.frame, self.metrics)
        fig.suptitle(f"selected run: {self.run}", fontsize=10)
        return fig

    def _render(self) -> None:
        if self._output is None:
            return
        from IPython.display import Image, display

        columns = [c for c in self.table.columns if c != "run"]
        with self._output:
            self._output.clear_output(wait=True)
            display(self.table[columns])
            for title, figure in self.figures.get(self.run, {}).items():
                print(title)
                display(Image(filename=str(figure)) if isinstance(figure, (str, os.PathLike)) else figure)
            display(self.static_figure())

    def _build(self, ipywidgets: Any) -> Any:
        self._run_control = ipywidgets.Dropdown(options=self.runs, value=self.run, description="run")
        self._run_control.observe(lambda change: self.update(run=change["new"]), names="value")
        return ipywidgets.VBox([self._run_control, self._output])


# ---------------------------------------------------------------------------------------------
# Contrastive loss explorer
# ---------------------------------------------------------------------------------------------


class LossExplorer(_Explorer):
    """Temperature and margin sliders over one batch's similarity matrix: which pairs each loss works on.

    ``cosines`` is a batch's ``(B, B)`` matrix of cos(NIR/thermal row ``i``, VIS column ``j``), the
    pairs on the diagonal.  For the current ``temperature`` InfoNCE gives every row a softmax over the
    batch: the share of it that the negatives get is what they are pushed with, and a small
    temperature gives nearly all of it to the hardest ones.  For the current ``margin`` the pairwise
    loss works only on the negatives whose cosine is above it.  State after :meth:`update`:
    ``temperature``, ``margin`` and ``stats`` (the two losses, the share of active negatives, the mean
    softmax weight of each row's hardest negative).

    Taught in ``notebooks/03_contrastive_alignment.ipynb``.
    """

    def __init__(self, cosines: Any, *, temperature: float = 0.07, margin: float = 0.5) -> None:
        cos = np.asarray(cosines, dtype=np.float64)
        if cos.ndim != 2 or cos.shape[0] != cos.shape[1] or cos.shape[0] < 2:
            raise ValueError(f"LossExplorer: cosines has shape {cos.shape}; pass one batch's (B, B) matrix of "
                             "cos(NIR/thermal row i, VIS column j) with B >= 2 (the pairs on the diagonal).")
        if not np.all(np.isfinite(cos)) or np.abs(cos).max() > 1 + 1e-6:
            raise ValueError("LossExplorer: cosines must be finite and within [-1, 1]; pass cosines of "
                             "normalised embeddings, not raw dot products.")
        self.cosines = cos
        self.temperature, self.margin = float("nan"), float("nan")
        self.stats: dict[str, float] = {}
        self.update(temperature=temperature, margin=margin)

    def _softmax(self) -> np.ndarray:
        logits = self.cosines / self.temperature
        logits = logits - logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def update(self, temperature: float | None = None, margin: float | None = None) -> dict[str, float]:
        """Set the temperature and/or the margin; returns the batch's figures at those values."""
        if temperature is not None:
            if not (np.isfinite(temperature) and temperature > 0):
                raise ValueError(f"LossExplorer: temperature={temperature!r}; give a positive number (e.g. 0.07).")
            self.temperature = float(temperature)
        if margin is not None:
            if not (np.isfinite(margin) and -1 <= margin <= 1):
                raise ValueError(f"LossExplorer: margin={margin!r}; give a cosine in [-1, 1] (e.g. 0.5).")
            self.margin = float(margin)
        cos, n = self.cosines, len(self.cosines)
        off = ~np.eye(n, dtype=bool)
        rows = np.log(np.exp(cos / self.temperature).sum(axis=1)) - np.diag(cos) / self.temperature
        cols = np.log(np.exp(cos / self.temperature).sum(axis=0)) - np.diag(cos) / self.temperature
        hinge = np.maximum(0.0, cos[off] - self.margin)
        weights = self._softmax()
        self.stats = {"infonce": float(0.5 * (rows.mean() + cols.mean())),
                      "pairwise": float((1 - np.diag(cos)).mean() + hinge.mean()),
                      "active_negatives": float((cos[off] > self.margin).mean()),
                      "hardest_negative_weight": float(np.where(off, weights, -1).max(axis=1).mean())}
        if self._ui is not None:
            self._summary.value = self.summary()
        self._render()
        return self.stats

    def summary(self) -> str:
        s = self.stats
        return (f"T = {self.temperature:.3g}: InfoNCE {s['infonce']:.3f}, each row's hardest negative gets "
                f"{100 * s['hardest_negative_weight']:.0f} % of its softmax | m = {self.margin:.2f}: pairwise "
                f"{s['pairwise']:.3f}, {100 * s['active_negatives']:.1f} % of the negatives above the margin")

    @styled
    def static_figure(self) -> Figure:
        """Three panels: the cosines, InfoNCE's softmax weights at T, the pairwise hinge at m."""
        fig, axes = new_figure(1, 3, figsize=(12.0, 3.8))
        n = len(self.cosines)
        off = ~np.eye(n, dtype=bool)
        panels = (("cos(NIR/thermal i, VIS j)", self.cosines, "RdBu_r", (-1, 1)),
                  (f"InfoNCE softmax of each row, T = {self.temperature:.3g}", self._softmax(), "viridis", (0, 1)),
                  (f"pairwise hinge max(0, cos - {self.margin:.2f}), negatives",
                   np.where(off, np.maximum(0.0, self.cosines - self.margin), np.nan), "magma", (0, None)))
        for ax, (title, values, cmap, (lo, hi)) in zip(axes[0], panels):
            image = ax.imshow(values, cmap=cmap, vmin=lo, vmax=hi if hi is not None else max(np.nanmax(values), 1e-3))
            ax.set(title=title, xlabel="VIS j", ylabel="NIR/thermal i")
            ax.title.set_fontsize(9)
            ax.grid(False)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        fig.suptitle(self.summary(), fontsize=9)
        return fig

    def _build(self, ipywidgets: Any) -> Any:
        self._temperature_control = ipywidgets.FloatLogSlider(value=self.temperature, base=10, min=-2, max=0,
                                                              step=0.05, description="T", continuous_update=False)
        self._margin_control = ipywidgets.FloatSlider(value=self.margin, min=-0.2, max=0.9, step=0.05,
                                                      description="m", continuous_update=False)
        self._summary = ipywidgets.HTML(self.summary())
        self._temperature_control.observe(lambda change: self.update(temperature=change["new"]), names="value")
        self._margin_control.observe(lambda change: self.update(margin=change["new"]), names="value")
        return ipywidgets.VBox([ipywidgets.HBox([self._temperature_control, self._margin_control]), self._summary,
                                self._output])


# ---------------------------------------------------------------------------------------------
# Training knobs
# ---------------------------------------------------------------------------------------------


class TrainingKnobs(_Explorer):
    """Knobs that re-train a small model and redraw its figure: one dropdown per knob, one button.

    ``train(**knobs)`` trains with the chosen values and returns a Figure (notebook 04 passes its own
    training loop, written in the notebook).  ``knobs`` maps each keyword of ``train`` to the values
    offered; ``start`` gives the values first shown and ``figure`` the figure already drawn for them,
    so showing the panel trains nothing.  Training starts only on the button (a run takes seconds,
    too long to follow a dropdown).  State: ``values`` (the last values trained) and ``figure``.

    Taught in ``notebooks/04_self_distillation.ipynb``.
    """

    def __init__(self, train: Callable[..., Figure], knobs: Mapping[str, Sequence[Any]], *,
                 start: Mapping[str, Any], figure: Figure) -> None:
        if not callable(train):
            raise ValueError(f"TrainingKnobs: train is {type(train).__name__}; pass the function that trains "
                             "with the knobs' values and returns a Figure.")
        if not knobs or any(len(list(options)) == 0 for options in knobs.values()):
            raise ValueError("TrainingKnobs: knobs is empty or offers no value for a knob; pass "
                             "{'lam': (0.0, 3.0, 30.0), ...}.")
        self.train, self.knobs = train, {name: list(options) for name, options in knobs.items()}
        self.values = self._checked(dict(start), require_all=True)
        self.figure = figure

    def _checked(self, values: dict[str, Any], require_all: bool = False) -> dict[str, Any]:
        unknown = sorted(set(values) - set(self.knobs))
        missing = sorted(set(self.knobs) - set(values)) if require_all else []
        if unknown or missing:
            raise ValueError(f"TrainingKnobs: unknown knob(s) {unknown} or missing {missing}; the knobs are "
                             f"{sorted(self.knobs)}.")
        for name, value in values.items():
            if value not in self.knobs[name]:
                raise ValueError(f"TrainingKnobs: {name}={value!r} is not offered; choose one of {self.knobs[name]}.")
        return values

    def update(self, **values: Any) -> Figure:
        """Train with ``values`` (the other knobs keep their last values) and redraw; returns the figure."""
        chosen = {**self.values, **self._checked(values)}
        figure = self.train(**chosen)
        if not isinstance(figure, Figure):
            raise TypeError(f"TrainingKnobs: train returned {type(figure).__name__}; it must return a matplotlib "
                            "Figure (e.g. the one plot_metric_bars returns).")
        self.values, self.figure = chosen, figure
        self._render()
        return figure

    def static_figure(self) -> Figure:
        """The figure of the last values trained (``start`` until the button is pressed)."""
        return self.figure

    def _build(self, ipywidgets: Any) -> Any:
        controls = {name: ipywidgets.Dropdown(options=options, value=self.values[name], description=name)
                    for name, options in self.knobs.items()}
        button = ipywidgets.Button(description="train with these knobs", button_style="primary")
        status = ipywidgets.Label("")

        def on_click(_: Any) -> None:
            status.value = "training..."
            self.update(**{name: control.value for name, control in controls.items()})
            status.value = "done: " + ", ".join(f"{k}={v}" for k, v in self.values.items())

        button.on_click(on_click)
        return ipywidgets.VBox([ipywidgets.HBox(list(controls.values())), ipywidgets.HBox([button, status]),
                                self._output])


# ---------------------------------------------------------------------------------------------
# Showing
# ---------------------------------------------------------------------------------------------


@dataclass
class Shown:
    """What :func:`show` displayed: ``kind`` is ``"widget"`` or ``"static"``; ``obj`` the object.

    It displays as nothing itself, so ``show(x)`` at the end of a cell shows ``x`` once.
    """

    kind: str
    obj: Any

    def _ipython_display_(self) -> None:
        pass


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show(explorer: Any, *, static: bool | None = None) -> Shown:
    """Display an explorer: the live widget in a Jupyter kernel, else its static figure.

    ``static=None`` decides automatically: static when ``HFR_STATIC_WIDGETS`` is set (rendered
    docs, nbval runs), when there is no kernel to talk to (a script, a test, an exported
    notebook), or when ipywidgets cannot be imported.  Outside IPython nothing is drawn; the
    returned :class:`Shown` holds the figure to save.
    """
    if static is None:
        static = static_widgets() or not _in_kernel()
    if not static:
        try:
            ui = explorer.widget
        except ImportError:
            static = True
        else:
            _display(ui)
            return Shown("widget", ui)
    figure = explorer.static_figure()
    if _in_ipython():
        _display(figure)
    return Shown("static", figure)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def _display(obj: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets/jupyter
        return
    display(obj)

"""Figures: each builds on small inputs, is deterministic, keeps the palette, and refuses empty input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hfr_tutorial import evaluate as ev  # noqa: E402
from hfr_tutorial import plots, projection  # noqa: E402
from hfr_tutorial.plots.training import ZOOM_ABOVE  # noqa: E402
from hfr_tutorial.models import edgeface_architecture  # noqa: E402
from hfr_tutorial.palette import MODALITY_COLORS, modality_color, run_color  # noqa: E402


def pixels(fig: Figure) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def assert_deterministic(build) -> Figure:
    """Build the figure twice: a Figure each time, and the same pixels."""
    first, second = build(), build()
    assert isinstance(first, Figure)
    a, b = pixels(first), pixels(second)
    assert a.shape == b.shape and np.array_equal(a, b)
    assert a[..., :3].std() > 0  # something was drawn
    return first


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n_ids, per_mod = 10, 3
    identities = np.repeat(np.arange(n_ids), 3 * per_mod)
    modalities = np.tile(np.repeat(["vis", "nir", "thermal"], per_mod), n_ids)
    centres = rng.normal(size=(n_ids, 16))
    shift = {"vis": 0.0, "nir": 1.0, "thermal": 2.0}
    direction = rng.normal(size=16)
    noise = 0.5 * rng.normal(size=(identities.size, 16))
    before = centres[identities] + noise + np.array([shift[m] for m in modalities])[:, None] * direction
    after = centres[identities] + noise
    scored = {"before": ev.score_protocols(before, identities, modalities),
              "after": ev.score_protocols(after, identities, modalities)}
    return {"ids": identities, "mods": modalities, "before": before, "after": after, "scored": scored}


@pytest.fixture(autouse=True)
def no_pyplot_leak():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "plots must not register figures with pyplot"


def test_protocols_take_their_probe_modality_colour():
    assert plots.protocol_color("thermal->vis") == MODALITY_COLORS["thermal"]
    assert plots.protocol_color("nir->vis") == modality_color("NIR")


@pytest.mark.parametrize("name, words", [
    ("rank1", "rank-1"), ("rank5", "rank-5"), ("eer", "EER"), ("auc", "ROC AUC"),
    ("tar_at_far_1e-2", "TAR at FAR = 1e-2"), ("val_vis_rank1", "dev VIS rank-1"),
    ("val_thermal_rank1", "dev thermal rank-1"), ("lr", "learning rate"), ("infonce", "InfoNCE term"),
    ("pairwise", "pairwise margin term"), ("train_acc", "training accuracy"), ("grad_norm", "grad norm"),
])
def test_metric_labels_are_words(name, words):
    assert plots.metric_label(name) == words


def _texts(fig: Figure) -> list[str]:
    """Every title, axis label, tick label and legend entry of a figure."""
    out = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        if ax.get_legend() is not None:
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return [t for t in out if t]


RAW_NAMES = ("rank1", "val_vis_rank1", "val_nir_rank1", "val_thermal_rank1", "tar_at_far_1e-2", "infonce", "lr")


def test_roc_is_deterministic_and_coloured_by_probe_modality(data):
    fig = assert_deterministic(lambda: plots.plot_roc(data["scored"]))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    lines = {line.get_label().split(" (")[0]: line for line in ax.get_lines()}
    nir = lines["after: nir->vis"]
    assert mcolors.to_hex(nir.get_color()) == MODALITY_COLORS["nir"].lower()
    assert lines["before: nir->vis"].get_linestyle() != nir.get_linestyle()  # runs differ by line style


def test_roc_changes_with_the_scores(data):
    a = pixels(plots.plot_roc(data["scored"]["before"]))
    b = pixels(plots.plot_roc(data["scored"]["after"]))
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_roc_accepts_score_pairs_and_draws_on_a_given_axis(data):
    ps = data["scored"]["after"]["nir->vis"]
    fig, axes = plots.new_figure(1, 2)
    out = plots.plot_roc({"nir->vis": (ps.scores, ps.same)}, ax=axes[0, 1])
    assert out is fig and axes[0, 1].get_lines()
    with pytest.raises(ValueError, match="ProtocolScores"):
        plots.plot_roc({"nir->vis": "not scores"})


def test_det_is_on_normal_deviate_axes(data):
    from scipy.stats import norm

    fig = assert_deterministic(lambda: plots.plot_det(data["scored"]))
    ax = fig.axes[0]
    assert ax.get_xscale() == "function" and ax.get_yscale() == "function"
    for axis in (ax.xaxis, ax.yaxis):  # a rate p sits at the standard-normal quantile of p (ISO/IEC 19795-1)
        rates = np.array([1e-3, 0.01, 0.2, 0.5])
        assert axis.get_transform().transform(rates) == pytest.approx(norm.ppf(rates))
    labels = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    assert labels and all(label.endswith("%") for label in labels)
    lo, hi = ax.get_xlim()
    assert 0 < lo < hi < 1  # rates, inside (0, 1) where the probit is finite
    ps = data["scored"]["before"]["thermal->vis"]
    far, tar, _ = ev.roc(ps.scores, ps.same)
    line = next(line for line in ax.get_lines() if line.get_label().startswith("before: thermal->vis"))
    keep = (far > 0) & (tar < 1)
    assert line.get_xdata() == pytest.approx(far[keep]) and line.get_ydata() == pytest.approx(1 - tar[keep])
    assert mcolors.to_hex(line.get_color()) == MODALITY_COLORS["thermal"].lower()


def test_det_cmc_and_histograms(data):
    assert_deterministic(lambda: plots.plot_det(data["scored"]["before"]))
    fig = assert_deterministic(lambda: plots.plot_cmc(data["scored"], max_rank=5))
    first = fig.axes[0].get_lines()[0]
    assert first.get_xdata().tolist() == [1, 2, 3, 4, 5]
    expected = data["scored"]["before"]["vis->vis"].cmc(5)
    assert first.get_ydata() == pytest.approx(expected)
    plots.plot_cmc({"precomputed": np.array([0.5, 0.8, 1.0])})
    fig = assert_deterministic(lambda: plots.plot_score_histograms(data["scored"], thresholds=0.3))
    assert len(fig.axes) == 6  # 2 runs x 3 protocols


def test_umap_side_by_side_deterministic_with_pair_lines(data):
    def build():
        return plots.plot_umap({"before": data["before"], "after": data["after"]}, data["ids"], data["mods"],
                               highlight=3, n_pair_lines=4, n_epochs=30, n_neighbors=8, random_state=0)

    fig = assert_deterministic(build)
    left = fig.axes[0]
    assert [ax.get_title() for ax in fig.axes[:2]] == ["before", "after"]
    lines = [c for c in left.collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 4 * 6  # 4 identities x 6 non-VIS images
    point_colors = {mcolors.to_hex(c.get_facecolor()[0]) for c in left.collections
                    if isinstance(c, matplotlib.collections.PathCollection) and len(c.get_offsets())}
    assert point_colors == {MODALITY_COLORS[m].lower() for m in ("vis", "nir", "thermal")}


def test_umap_falls_back_to_pca_only_when_umap_cannot_be_imported(data, monkeypatch):
    pca = projection.reduce_2d(data["after"], method="pca")
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` raise ImportError
    with pytest.warns(UserWarning, match="PCA"):
        xy = projection.reduce_2d(data["after"], method="umap")
    assert xy == pytest.approx(pca)
    fig = plots.plot_umap(data["after"], data["ids"], data["mods"], method="pca")
    assert fig.axes[0].get_xlabel() == "PCA 1"


def test_embedding_figures_check_labels(data):
    with pytest.raises(ValueError, match="one label of each per embedding"):
        plots.plot_umap(data["after"][:-1], data["ids"], data["mods"], method="pca")
    with pytest.raises(ValueError, match="at least 5"):
        projection.reduce_2d(data["after"][:3])


def test_similarity_matrix_ordered_by_identity(data):
    order = plots.embeddings._ordered_images(data["ids"][::-1], data["mods"][::-1], max_identities=2)
    ids = data["ids"][::-1][order]
    assert (np.diff(ids) >= 0).all() and set(ids) == {0, 1}
    assert data["mods"][::-1][order][:3].tolist() == ["vis"] * 3  # VIS first within an identity
    fig = assert_deterministic(lambda: plots.plot_similarity_matrix(
        {"before": data["before"], "after": data["after"]}, data["ids"], data["mods"], max_identities=4))
    image = np.ma.getdata(fig.axes[0].get_images()[0].get_array())
    assert image.shape == (36, 36)
    assert np.diag(image) == pytest.approx(np.ones(36), abs=1e-5)  # cosine of an image with itself


def _history(seed: int = 0, epochs: int = 4, loss: str = "infonce") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    e = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": e, loss: 3.0 / e, "distill": 0.3 / e, "loss": 3.3 / e,
                         "lr": 0.04 * np.cos(e / epochs * np.pi / 2),  # ends at 0: a cosine decay
                         "val_vis_rank1": 0.9 + 0.05 * rng.random(epochs),
                         "val_nir_rank1": np.linspace(0.4, 0.9, epochs),
                         "val_thermal_rank1": np.linspace(0.1, 0.9, epochs), "seconds": 9 + rng.random(epochs)})


def test_training_curves_of_one_run_group_columns_in_words():
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.0], "loss_distill": [1.0, 0.5, 0.4],
                            "lr": [1e-3, 1e-2, 0.0], "val_nir_rank1": [0.1, 0.3, 0.5], "val_vis_rank1": [0.9, 0.9, 0.8],
                            "seconds": [5.0, 5.1, 4.9], "grad_norm": [1.0, 0.9, 0.8], "note": ["a", "b", "c"]})
    fig = assert_deterministic(lambda: plots.plot_training_curves(history, baseline={"val_vis_rank1": 0.95}))
    axes = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in axes] == ["loss", "learning rate", "dev rank-1", "grad norm", "seconds per epoch"]
    assert axes[1].get_yscale() == "linear"  # the schedule ends at 0: no log axis, and no claim of one
    dev = axes[2]
    colors = {line.get_label(): mcolors.to_hex(line.get_color()) for line in dev.get_lines()}
    assert colors["dev NIR rank-1"] == MODALITY_COLORS["nir"].lower()
    assert colors["dev VIS rank-1"] == MODALITY_COLORS["vis"].lower()
    assert dev.get_ylim() == (0, 1.02)  # a share on its full axis
    assert any(line.get_linestyle() == "--" and line.get_ydata()[0] == 0.95 for line in dev.get_lines())
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1  # one legend, outside the panels
    assert not set(RAW_NAMES) & set(_texts(fig))
    with pytest.raises(ValueError, match="no numeric columns"):
        plots.plot_training_curves(pd.DataFrame({"epoch": [1, 2]}))
    with pytest.raises(ValueError, match="not numeric columns"):
        plots.plot_training_curves(history, columns=["rank7"])


def test_training_curves_of_many_runs_one_panel_per_metric_and_one_legend():
    runs = {f"run {k}": _history(k, loss="pairwise" if k == 1 else "infonce") for k in range(7)}
    runs["run 6"] = runs["run 6"].to_dict("records")  # a list of rows works too
    base = _history(9).iloc[[-1]]
    fig = assert_deterministic(lambda: plots.plot_training_curves(runs, baseline=base))
    axes = [ax for ax in fig.axes if ax.axison]
    titles = [ax.get_title() for ax in axes]
    assert titles == ["InfoNCE term", "pairwise margin term", "self-distillation term", "total loss", "learning rate",
                      "dev VIS rank-1", "dev NIR rank-1", "dev thermal rank-1", "seconds per epoch"]
    assert all(ax.get_legend() is None for ax in fig.axes)  # no legend covers a panel ...
    (legend,) = fig.legends  # ... one serves them all, each run named once
    entries = [t.get_text() for t in legend.get_texts()]
    assert entries == list(runs) + ["baseline (before adaptation)"]
    vis = axes[titles.index("dev VIS rank-1")]
    run_lines = [line for line in vis.get_lines() if line.get_linestyle() == "-"]
    assert [mcolors.to_hex(line.get_color()) for line in run_lines] == [run_color(f"run {k}").lower() for k in range(7)]
    reference = [line for line in vis.get_lines() if line.get_linestyle() == "--"]
    assert len(reference) == 1 and reference[0].get_ydata()[0] == pytest.approx(base["val_vis_rank1"].iloc[0])
    lowest = min(np.min(line.get_ydata()) for line in vis.get_lines())
    assert ZOOM_ABOVE < vis.get_ylim()[0] < lowest and vis.get_ylim()[1] == 1.01  # a drift of a few points shows
    nir = axes[titles.index("dev NIR rank-1")]
    assert nir.get_ylim() == (0, 1.02)  # values from 0.4: the full axis
    assert not set(RAW_NAMES) & set(_texts(fig))
    picked = plots.plot_training_curves(runs, columns=["val_vis_rank1"])
    assert [ax.get_title() for ax in picked.axes if ax.axison] == ["dev VIS rank-1"]


def test_parameter_budget_same_picture_from_dict_or_table():
    budget = {"frozen": (0, 1_000_000), "layernorm": (5_000, 1_000_000), "paper": (11_800, 1_000_000),
              "full": (1_000_000, 1_000_000)}
    table = pd.DataFrame([{"policy": k, "trainable": t, "total": n} for k, (t, n) in budget.items()])
    fig = assert_deterministic(lambda: plots.plot_parameter_budget(budget))
    assert np.array_equal(pixels(plots.plot_parameter_budget(budget)), pixels(plots.plot_parameter_budget(table)))
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert "11,800 (1.18 %)" in labels and fig.axes[0].get_xscale() == "log"


def test_image_grid_layouts():
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 256, size=(2, 3, 12, 12, 3), dtype=np.uint8)
    fig = assert_deterministic(lambda: plots.plot_image_grid(grid, ["id 1", "id 2"], ["vis", "nir", "thermal"]))
    assert len(fig.axes) == 6 and fig.axes[1].get_title() == "nir"
    flat = plots.plot_image_grid(grid.reshape(6, 12, 12, 3), ncols=4)
    assert len(flat.axes) == 8  # two rows of four, the last two blank
    ragged = plots.plot_image_grid([[grid[0, 0], None], [grid[1, 0][..., 0]]])  # blank and grayscale cells
    assert len(ragged.axes) == 4
    with pytest.raises(ValueError, match="row labels"):
        plots.plot_image_grid(grid, ["only one"])


def test_metric_bars_from_results_and_table():
    rng = np.random.default_rng(1)
    def protocols():
        return {p: {"rank1": float(rng.random()), "tar_at_far_1e-2": float(rng.random())} for p in ev.DEFAULT_PROTOCOLS}
    results = {"baseline": protocols(), "paper": protocols()}
    table = ev.metrics_table(results)
    fig = assert_deterministic(lambda: plots.plot_metric_bars(table, ["rank1", "tar_at_far_1e-2"]))
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches if p.get_height() > 0)
    assert heights == sorted(round(v, 6) for v in table["rank1"])
    assert [ax.get_title() for ax in fig.axes] == ["rank-1", "TAR at FAR = 1e-2"]
    assert not set(RAW_NAMES) & set(_texts(fig))
    bar_colors = {mcolors.to_hex(p.get_facecolor()) for p in fig.axes[0].patches if p.get_height() > 0}
    assert bar_colors == {run_color("baseline").lower(), run_color("paper").lower()}
    assert np.array_equal(pixels(plots.plot_metric_bars(results)), pixels(plots.plot_metric_bars(table)))
    with pytest.raises(ValueError, match="not in the table"):
        plots.plot_metric_bars(table, "rank7")


def test_exact_knn_given_to_umap_matches_sklearn():
    from sklearn.neighbors import NearestNeighbors

    x = np.random.default_rng(3).normal(size=(60, 8))
    idx, dist, _ = projection.exact_cosine_knn(x, 5)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=5, metric="cosine").fit(x).kneighbors(x)
    assert idx.tolist() == ref_idx.tolist()
    assert dist == pytest.approx(ref_dist, abs=1e-5)


# --------------------------------------------------------------------------------------------
# Diagrams: the architecture drawn from the model, the method's flow, the normalisation axes
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def edgeface():
    from hfr_tutorial.models import create_edgeface

    return create_edgeface("edgeface_xxs")


def _strips(fig: Figure) -> dict[str, str]:
    """gid -> fill colour (hex) of every part strip of an architecture diagram."""
    return {p.get_gid(): mcolors.to_hex(p.get_facecolor()) for ax in fig.axes for p in ax.patches if p.get_gid()}


def test_architecture_parts_cover_every_parameter_once(edgeface):
    parts = edgeface_architecture(edgeface)
    names = [n for part in parts for n in part.parameters]
    assert sorted(names) == sorted(n for n, _ in edgeface.named_parameters())  # each parameter in exactly one box
    numel = dict((n, p.numel()) for n, p in edgeface.named_parameters())
    assert all(part.count == sum(numel[n] for n in part.parameters) for part in parts)
    # the blocks are the model's own: ConvBlock / SDTA per stage, in order, and the LayerNorms are flagged
    for i, stage in enumerate(edgeface.model.stages):
        kinds = [type(b).__name__ for b in stage.blocks]
        drawn = {p.column: p.block for p in parts if p.row == i and p.column > 0}
        assert [drawn[j + 1] for j in range(len(kinds))] == [
            "SDTA" if k == "SplitTransposeBlock" else "ConvBlock" for k in kinds]
    from hfr_tutorial.tuning import policy_parameter_names

    flagged = {n for part in parts if part.is_layernorm for n in part.parameters}
    assert flagged == policy_parameter_names(edgeface, "layernorm")
    assert {p.block for p in parts} >= {"stem", "downsample", "ConvBlock", "SDTA", "head"}


@pytest.mark.parametrize("policy", [p for p in __import__("hfr_tutorial.tuning", fromlist=["POLICIES"]).POLICIES])
def test_architecture_highlights_exactly_what_a_policy_trains(edgeface, policy):
    import copy

    from hfr_tutorial.tuning import apply_policy, policy_parameter_names

    before = {n: p.requires_grad for n, p in edgeface.named_parameters()}
    fig = plots.plot_edgeface_architecture(edgeface, policy_parameter_names(edgeface, policy), part_labels=False,
                                           label=policy)
    assert {n: p.requires_grad for n, p in edgeface.named_parameters()} == before  # drawing changes nothing
    parts = {p.module: p for p in edgeface_architecture(edgeface)}
    strips = _strips(fig)
    assert set(strips) == set(parts)
    highlighted = {gid for gid, color in strips.items() if color == mcolors.to_hex(plots.TRAINED_COLOR)}
    assert not any(color == mcolors.to_hex(plots.PARTLY_TRAINED_COLOR) for color in strips.values())
    drawn = {n for gid in highlighted for n in parts[gid].parameters}
    assert drawn == policy_parameter_names(edgeface, policy)
    # ... and exactly what apply_policy makes trainable
    model = copy.deepcopy(edgeface)
    report = apply_policy(model, policy)
    assert drawn == {n for n, p in model.named_parameters() if p.requires_grad}
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"trained by '{policy}': {report.trainable:,} of {report.total:,} parameters" in legend[0]


def test_architecture_labels_counts_and_draws_on_a_given_axis(edgeface):
    from hfr_tutorial.tuning import policy_parameter_names

    fig = assert_deterministic(lambda: plots.plot_edgeface_architecture(edgeface))
    texts = [t.get_text() for t in fig.axes[0].texts]
    stem = sum(p.numel() for p in edgeface.model.stem.parameters())
    assert f"stem\n{stem:,}" in texts and any(t.startswith("SDTA\n") for t in texts)
    assert any(t.startswith("XCA attention · ") for t in texts) and any("fc → 512-d" in t for t in texts)
    assert set(_strips(fig).values()) == {mcolors.to_hex(plots.FROZEN_COLOR)}  # no policy: nothing highlighted
    grid, axes = plots.new_figure(1, 2, figsize=(12, 4))
    for ax, policy in zip(axes[0], ("layernorm", "paper")):
        trained = policy_parameter_names(edgeface, policy)
        assert plots.plot_edgeface_architecture(edgeface, trained, ax=ax, part_labels=False,
                                                label=policy if policy == "paper" else None) is grid
    assert ["paper" in ax.get_title() for ax in axes[0]] == [False, True]
    with pytest.raises(TypeError, match=r"policy_parameter_names\(model, 'paper'\), label='paper'"):
        plots.plot_edgeface_architecture(edgeface, "paper")  # a policy's name: the drawing knows no policies
    with pytest.raises(ValueError, match="not parameters of this model"):
        plots.plot_edgeface_architecture(edgeface, {"model.stem.0.weight", "model.nothing.here"})


def test_architecture_of_a_low_rank_variant():
    from hfr_tutorial.models import create_edgeface
    from hfr_tutorial.tuning import policy_parameter_names

    model = create_edgeface("edgeface_xs_gamma_06")
    fig = plots.plot_edgeface_architecture(model, policy_parameter_names(model, "layernorm+stem+convs012"),
                                           part_labels=False)
    parts = {p.module: p for p in edgeface_architecture(model)}
    highlighted = {g for g, c in _strips(fig).items() if c == mcolors.to_hex(plots.TRAINED_COLOR)}
    assert {n for g in highlighted for n in parts[g].parameters} == policy_parameter_names(
        model, "layernorm+stem+convs012")


FLOW_EDGES = {
    "vis_batch->student", "other_batch->student", "vis_batch->teacher", "student->student_vis",
    "student->student_other", "teacher->teacher_vis", "student_vis->contrastive", "student_other->contrastive",
    "student_vis->distill", "teacher_vis->distill", "contrastive->total", "distill->total", "total->student",
}


def test_method_flow_draws_the_method():
    fig = assert_deterministic(plots.plot_method_flow)
    ax = fig.axes[0]
    edges = {t.get_gid() for t in ax.texts if t.get_gid()}
    assert edges == FLOW_EDGES
    assert not {e for e in edges if e.endswith("->teacher") and not e.startswith("vis_batch")}  # no gradient to it
    nodes = {p.get_gid() for p in ax.patches if p.get_gid()}
    assert nodes == {e.split("->")[0] for e in FLOW_EDGES} | {e.split("->")[1] for e in FLOW_EDGES}
    words = " ".join(t.get_text() for t in ax.texts)
    for needed in ("frozen teacher", "student", "contrastive", "self-distillation", "λ · distill", "× λ",
                   "only the student's policy parameters", "NIR / thermal", "VIS batch"):
        assert needed in words, needed
    grid, axes = plots.new_figure(1, 1)
    assert plots.plot_method_flow(ax=axes[0, 0]) is grid


def _shares_statistics(kind: str, shape: tuple[int, int, int], anchor: tuple[int, int, int]) -> np.ndarray:
    """The cells whose values the anchor's normalised output depends on, measured with autograd on torch's
    and timm's modules (positions laid out as H x W = 2 x P/2)."""
    import torch
    from timm.layers import LayerNorm2d

    n, c, p = shape
    module = {"BatchNorm": torch.nn.BatchNorm2d(c, affine=False), "InstanceNorm": torch.nn.InstanceNorm2d(c),
              "LayerNorm2d": LayerNorm2d(c, affine=False)}[kind].train()
    x = torch.randn(n, c, 2, p // 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    module = module.double()
    x.requires_grad_(True)
    i, ch, j = anchor
    module(x)[i, ch, j // (p // 2), j % (p // 2)].backward()
    return (x.grad.abs() > 1e-12).reshape(n, c, p).numpy()


@pytest.mark.parametrize("kind", list(plots.NORMALISATION_AXES))
def test_normalisation_cells_are_what_the_modules_average(kind):
    shape = (4, 6, 6)
    members = plots.normalisation_members(kind, shape)
    anchor = (shape[0] - 1, 0, shape[2] - 1)
    assert members[anchor]
    assert np.array_equal(members, _shares_statistics(kind, shape, anchor))
    other = (1, 2, 3)
    assert np.array_equal(plots.normalisation_members(kind, shape, other), _shares_statistics(kind, shape, other))


def test_normalisation_diagram_shades_the_shared_cells():
    fig = assert_deterministic(plots.plot_normalisation_axes)
    polys = [p for p in fig.axes[0].patches if p.get_gid()]
    for kind in plots.NORMALISATION_AXES:
        members = plots.normalisation_members(kind)
        mine = [p for p in polys if p.get_gid().startswith(f"{kind}:")]
        assert len(mine) == 4 * 6 + 4 * 6 + 6 * 6  # front, top and right faces of a 4 x 6 x 6 block
        for poly in mine:
            cell = tuple(int(v) for v in poly.get_gid().split(":")[2].split(","))
            white = np.allclose(mcolors.to_rgb(poly.get_facecolor()), mcolors.to_rgb("white"), atol=0.3)
            assert members[cell] != white, poly.get_gid()
    titles = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "LayerNorm2d\naverages over C" in titles and "BatchNorm\naverages over N and H×W" in titles
    with pytest.raises(ValueError, match="Unknown normalisation"):
        plots.normalisation_members("GroupNorm")


def _efficiency_record(models=("method", "full", "oracle")):
    table = []
    for m_i, model in enumerate(models):
        for axis, key, values in (("identities", "n_identities", (10, 50, 400)), ("pairs", "pairs_per_identity", (1, 6))):
            for v in values:
                for p_i, proto in enumerate(("vis->vis", "nir->vis", "thermal->vis")):
                    mean = 0.3 + 0.1 * m_i + 0.05 * p_i + 0.0005 * v
                    table.append({"model": model, "axis": axis, "n_identities": v if axis == "identities" else 50,
                                  "pairs_per_identity": v if axis == "pairs" else 6, "protocol": proto,
                                  "mean": mean, "std": 0.01, "low": mean - 0.02, "high": mean + 0.02, "seeds": 3})
    return {"summary": {"table": table}, "seeds": [0, 1, 2], "pairs_at": 50,
            "baseline": {"vis->vis": 0.96, "nir->vis": 0.3, "thermal->vis": 0.01}}


def test_data_efficiency_figure_has_a_line_and_band_per_model_and_panel():
    fig = plots.plot_data_efficiency(_efficiency_record())
    axes = fig.axes
    assert len(axes) == 6
    for ax in axes:
        assert len(ax.collections) == 3  # one band per model
        assert len(ax.lines) == 4  # three means and the baseline
        assert ax.get_ylabel() in ("eval rank-1", "")
    assert axes[0].get_xscale() == "log" and axes[3].get_xscale() == "linear"
    assert [t.get_text() for t in fig.legends[0].get_texts()][:3] == list(plots.DATA_EFFICIENCY_MODELS.values())
    # a model absent from the record is absent from the figure
    fig2 = plots.plot_data_efficiency(_efficiency_record(("method",)))
    assert all(len(ax.lines) == 2 for ax in fig2.axes)
    with pytest.raises(ValueError, match=r"plot_data_efficiency: record\['summary'\]\['table'\] is empty"):
        plots.plot_data_efficiency({"summary": {"table": []}})


# --------------------------------------------------------------------------------------------
# DET ticks, robust map limits, empty input, layering
# --------------------------------------------------------------------------------------------
def _overlaps(fig: Figure, axis: Any) -> list[tuple[str, str]]:
    """Pairs of neighbouring tick labels of ``axis`` whose boxes overlap once drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = sorted((t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()),
                    key=lambda t: t.get_window_extent(renderer).x0 if axis.axis_name == "x"
                    else t.get_window_extent(renderer).y0)
    boxes = [t.get_window_extent(renderer) for t in labels]
    return [(a.get_text(), b.get_text()) for (a, ba), (b, bb) in zip(zip(labels, boxes), zip(labels[1:], boxes[1:]))
            if ba.overlaps(bb)]


@pytest.mark.parametrize("figsize, at_least", [((9.0, 3.0), 3), ((6.4, 3.8), 1), ((14.0, 5.0), 5)])
def test_det_tick_labels_never_overlap(figsize, at_least):
    """Issue #28: notebook 06's DET x-ticks overlapped where the curves differ (wide range, narrow panel)."""
    rng = np.random.default_rng(0)
    same = np.r_[np.ones(300, bool), np.zeros(60_000, bool)]  # rates from 1/60000 to ~1 on the x axis
    curves = {"nir->vis": (np.r_[rng.normal(0.6, 0.2, 300), rng.normal(0.0, 0.2, 60_000)], same),
              "thermal->vis": (np.r_[rng.normal(0.2, 0.2, 300), rng.normal(0.0, 0.2, 60_000)], same)}
    fig, axes = plots.new_figure(1, 3, figsize=figsize)
    plots.plot_det(curves, ax=axes[0, 1])
    ax = axes[0, 1]
    for axis in (ax.xaxis, ax.yaxis):
        assert _overlaps(fig, axis) == []
        shown = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
        assert len(shown) >= at_least, shown  # still a readable scale
        assert "50 %" in shown
    alone = plots.plot_det(curves)
    for axis in (alone.axes[0].xaxis, alone.axes[0].yaxis):
        assert _overlaps(alone, axis) == [] and len([t for t in axis.get_ticklabels() if t.get_text()]) >= 5


def test_det_ticks_follow_the_axis_range():
    locator = plots.NormalDeviateLocator("x", 9.0)
    fig, axes = plots.new_figure(1, 1, figsize=(6, 3))
    axes[0, 0].xaxis.set_major_locator(locator)
    fig.canvas.draw()
    narrow, wide = locator.tick_values(0.01, 0.5), locator.tick_values(1e-6, 0.999)
    assert set(narrow) <= set(plots.DET_TICKS) and 0.01 in narrow and 0.5 in narrow and 0.05 in narrow
    assert all(1e-6 <= t <= 0.999 for t in wide) and len(wide) < len([t for t in plots.DET_TICKS if t >= 1e-6])


def test_robust_limits_keep_clusters_and_drop_a_far_outlier():
    rng = np.random.default_rng(0)
    clusters = np.r_[rng.normal(0, 1, 100), rng.normal(30, 1, 100)]  # two modality clusters far apart
    low, high = plots.robust_limits(clusters)
    assert low < clusters.min() and high > clusters.max()  # both clusters in view
    with_outlier = np.r_[clusters, 5000.0]
    low2, high2 = plots.robust_limits(with_outlier)
    assert high2 < 200  # the outlier is beyond the axes ...
    assert plots.robust_limits(with_outlier, fence=None)[1] > 5000  # ... unless asked for the whole range
    assert plots.robust_limits([3.0, 3.0, 3.0]) == pytest.approx((2.85, 3.15))


def test_a_map_with_one_outlier_counts_it_beyond_the_axes(data):
    emb = data["after"].copy()
    emb[0] = 1e3 * np.abs(emb[0])  # PCA puts it far from every other point
    fig = plots.plot_umap(emb, data["ids"], data["mods"], method="pca")
    ax = fig.axes[0]
    assert any(t.get_text() == "1 outlying point beyond the axes" for t in ax.texts)
    xy = projection.reduce_2d(emb, method="pca")
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    assert inside.sum() == len(xy) - 1 and not inside[0]
    everything = plots.plot_umap(emb, data["ids"], data["mods"], method="pca", outlier_fence=None)
    assert not everything.axes[0].texts


def _empty_cases():
    ids, mods = np.array([], int), np.array([], str)
    return [
        ("plot_roc", lambda: plots.plot_roc({}), "plot_roc: curves is empty"),
        ("plot_roc run", lambda: plots.plot_roc({"run": {}}), r"plot_roc: curves\['run'\] is empty"),
        ("plot_roc scores", lambda: plots.plot_roc({"nir->vis": ([], [])}), "plot_roc: curve 'nir->vis' is empty"),
        ("plot_roc one-sided", lambda: plots.plot_roc({"nir->vis": ([0.1, 0.2], [True, True])}),
         "plot_roc: curve 'nir->vis' has 2 genuine pairs of 2"),
        ("plot_det", lambda: plots.plot_det({}), "plot_det: curves is empty"),
        ("plot_cmc", lambda: plots.plot_cmc({}), "plot_cmc: curves is empty"),
        ("plot_cmc array", lambda: plots.plot_cmc({"nir->vis": np.array([])}), "plot_cmc: curve 'nir->vis' is empty"),
        ("histograms", lambda: plots.plot_score_histograms({}), "plot_score_histograms: curves is empty"),
        ("histogram", lambda: plots.draw_score_histogram(None, [], []), "draw_score_histogram: curve 'scores' is empty"),
        ("umap", lambda: plots.plot_umap({}, ids, mods), "plot_umap: embeddings is empty"),
        ("umap rows", lambda: plots.plot_umap(np.zeros((0, 8)), ids, mods), "plot_umap: embeddings 'embeddings' is empty"),
        ("similarity", lambda: plots.plot_similarity_matrix({}, ids, mods), "plot_similarity_matrix: embeddings is empty"),
        ("curves", lambda: plots.plot_training_curves({}), "plot_training_curves: history is empty"),
        ("curves rows", lambda: plots.plot_training_curves(pd.DataFrame()), "plot_training_curves: history is empty"),
        ("curves run", lambda: plots.plot_training_curves({"a": []}), r"plot_training_curves: history\['a'\] is empty"),
        ("budget", lambda: plots.plot_parameter_budget({}), "plot_parameter_budget: table is empty"),
        ("grid", lambda: plots.plot_image_grid([]), "plot_image_grid: images is empty"),
        ("grid array", lambda: plots.plot_image_grid(np.zeros((0, 8, 8, 3), np.uint8)), "plot_image_grid: images is empty"),
        ("grid blanks", lambda: plots.plot_image_grid([[None, None]]), "plot_image_grid: images is empty"),
        ("bars", lambda: plots.plot_metric_bars({}), "plot_metric_bars: table is empty"),
        ("bars frame", lambda: plots.plot_metric_bars(pd.DataFrame()), "plot_metric_bars: table is empty"),
        ("efficiency", lambda: plots.plot_data_efficiency({}), r"plot_data_efficiency: record\['summary'\]\['table'\] is empty"),
    ]


@pytest.mark.parametrize("case", _empty_cases(), ids=[c[0] for c in _empty_cases()])
def test_empty_input_is_refused_naming_the_argument(case):
    """Issue #27 item 11: the plot functions gave tracebacks on empty input."""
    _, call, match = case
    with pytest.raises(ValueError, match=match) as err:
        call()
    assert "pass " in str(err.value) or "needs both" in str(err.value)  # and says what is expected


def test_metric_bars_refuse_runs_that_are_not_in_the_table():
    table = ev.metrics_table({"baseline": {"vis->vis": {"rank1": 0.9}}})
    with pytest.raises(ValueError, match=r"run\(s\) \['nope'\] are not in the table"):
        plots.plot_metric_bars(table, runs=["nope"])
    with pytest.raises(ValueError, match="plot_metric_bars: runs is empty"):
        plots.plot_metric_bars(table, runs=[])


def test_plots_import_no_tuning_nor_anything_above_it():
    code = "import sys, hfr_tutorial.plots, hfr_tutorial.widgets; print(sorted(m for m in sys.modules if m.startswith('hfr_tutorial')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = {m.split(".")[1] for m in eval(out) if "." in m}
    assert not loaded & {"tuning", "train", "losses", "artifacts", "pipeline", "experiment", "selection", "deploy"}, loaded


def test_no_library_module_selects_a_matplotlib_backend():
    root = Path(plots.__file__).resolve().parents[1]
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if "matplotlib.use(" in p.read_text()]
    assert offenders == [], offenders

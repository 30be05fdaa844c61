"""Widgets: state and callbacks work headless; show() falls back to a static figure."""
from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hfr_tutorial import evaluate as ev  # noqa: E402
from hfr_tutorial import widgets as w  # noqa: E402


@pytest.fixture(scope="module")
def data():
    """6 identities x (3 VIS, 2 NIR, 2 thermal); 'after' is perfect, 'before' puts NIR faces nearer the next identity."""
    n_ids = 6
    mods = ["vis"] * 3 + ["nir"] * 2 + ["thermal"] * 2
    identities = np.repeat(np.arange(n_ids), len(mods))
    modalities = np.tile(mods, n_ids)
    eye = np.eye(16, dtype=np.float32)
    after = eye[identities] + 0.01 * np.arange(identities.size)[:, None] * eye[15]
    before = after.copy()
    nir = modalities == "nir"
    before[nir] = 0.8 * eye[(identities[nir] + 1) % n_ids] + 0.6 * eye[identities[nir]]  # NIR faces look like the next person
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(identities.size, 10, 10, 3), dtype=np.uint8)
    return {"images": images, "ids": identities, "mods": modalities, "before": before, "after": after}


def test_identity_explorer_state(data):
    explorer = w.IdentityExplorer(data["images"], data["ids"], data["mods"],
                                  {"before": data["before"], "after": data["after"]}, k=2)
    assert explorer.identity == 0 and explorer.options == list(range(6))
    explorer.update(identity=3)
    rows = {row["modality"]: row for row in explorer.rows}
    assert list(rows) == ["vis", "nir", "thermal"]
    # the VIS query is not the gallery image (the first VIS image of identity 3: index 21)
    assert rows["vis"]["query"] == 22 and 21 in explorer.gallery_idx
    assert rows["nir"]["query"] == 24 and rows["thermal"]["query"] == 26
    assert rows["nir"]["rank"] == {"before": 2, "after": 1}
    top = rows["nir"]["matches"]["before"]
    assert [m.identity for m in top] == [4, 3] and not top[0].correct and top[1].correct  # the "next person" wins
    assert top[0].score >= top[1].score and len(top) == 2
    assert rows["nir"]["matches"]["after"][0] == w.Match(3, 21, pytest.approx(1.0, abs=1e-3), True)
    explorer.update(sample=1)
    assert {row["modality"]: row["query"] for row in explorer.rows} == {"vis": 23, "nir": 25, "thermal": 27}
    with pytest.raises(ValueError, match="no query images"):
        explorer.update(identity=99)


def test_identity_explorer_checks_inputs(data):
    with pytest.raises(ValueError, match="one image per embedding"):
        w.IdentityExplorer(data["images"][:-1], data["ids"], data["mods"], data["after"])
    with pytest.raises(ValueError, match="one label of each"):
        w.IdentityExplorer(data["images"], data["ids"], data["mods"], data["after"][:-1])


def test_identity_explorer_static_figure_is_deterministic(data):
    def build():
        explorer = w.IdentityExplorer(data["images"], data["ids"], data["mods"], {"before": data["before"], "after": data["after"]}, k=2)
        return explorer.static_figure()

    a, b = build(), build()
    a.canvas.draw()
    b.canvas.draw()
    assert np.array_equal(np.asarray(a.canvas.buffer_rgba()), np.asarray(b.canvas.buffer_rgba()))
    assert len(a.axes) == 3 * (1 + 2 * 2)  # 3 modalities x (query + 2 stages x top-2)


def test_identity_explorer_dropdown_callback(data):
    explorer = w.IdentityExplorer(data["images"], data["ids"], data["mods"], data["after"])
    explorer.widget  # builds the controls
    explorer._identity_control.value = 4
    assert explorer.identity == 4 and explorer.rows[0]["query"] == 4 * 7 + 1
    explorer._sample_control.value = 1
    assert explorer.sample == 1


@pytest.fixture(scope="module")
def curves():
    rng = np.random.default_rng(1)
    same = rng.random(400) < 0.25
    scores = np.round(rng.normal(size=400) + 2 * same, 1)
    same2 = rng.random(300) < 0.5
    return {"nir->vis": (scores, same), "thermal->vis": (rng.normal(size=300) + same2, same2)}


def test_threshold_explorer_update_matches_counts(curves):
    explorer = w.ThresholdExplorer(curves)
    assert explorer.protocol == "nir->vis"
    eer = ev.verification_metrics(*curves["nir->vis"])
    assert explorer.threshold == pytest.approx(eer["eer_threshold"])  # starts at the EER point
    scores, same = curves["nir->vis"]
    point = explorer.update(threshold=1.0)
    assert explorer.far == point["far"] == np.mean(scores[~same] >= 1.0)
    assert explorer.tar == np.mean(scores[same] >= 1.0) and explorer.frr == pytest.approx(1 - explorer.tar)
    assert "FAR" in explorer.summary() and "nir->vis" in explorer.summary()
    explorer.set_far(0.05)
    assert explorer.far <= 0.05 and explorer.tar == pytest.approx(ev.verification_metrics(scores, same, fars=(0.05,))["tar_at_far_0.05"])
    explorer.update(protocol="thermal->vis")
    s2, m2 = curves["thermal->vis"]
    assert explorer.far == np.mean(s2[~m2] >= explorer.threshold)
    with pytest.raises(ValueError, match="Unknown protocol"):
        explorer.update(protocol="sketch->vis")
    assert isinstance(explorer.static_figure(), Figure)


def test_threshold_explorer_slider_callback(curves):
    explorer = w.ThresholdExplorer(curves["nir->vis"])
    explorer.widget
    explorer._slider.value = 0.5
    assert explorer.threshold == pytest.approx(0.5)
    assert "0.500" in explorer._summary.value
    explorer.update(threshold=1.5)
    assert explorer._slider.value == pytest.approx(1.5)  # the slider follows programmatic updates


@pytest.fixture(scope="module")
def results():
    def protocols(r):
        return {p: {"rank1": r, "auc": 0.9, "eer": 0.1, "tar_at_far_1e-2": r / 2} for p in ev.DEFAULT_PROTOCOLS}
    return {"baseline": {"protocols": protocols(0.3)},
            "runs": {"paper/infonce+distill": {"trainable_params": 10, "protocols": protocols(0.7)}}}


def test_run_selector_update_and_dropdown(results):
    selector = w.RunSelector(results)
    assert selector.runs == ["baseline", "paper/infonce+distill"] and selector.run == "baseline"
    table = selector.update("paper/infonce+distill")
    assert list(table.index) == list(ev.DEFAULT_PROTOCOLS) and (table["rank1"] == 0.7).all()
    with pytest.raises(ValueError, match="Unknown run"):
        selector.update("nope")
    selector.widget
    selector._run_control.value = "baseline"
    assert selector.run == "baseline" and (selector.table["rank1"] == 0.3).all()
    assert isinstance(selector.static_figure(), Figure)


def test_show_falls_back_to_static_without_a_kernel(curves, monkeypatch):
    explorer = w.ThresholdExplorer(curves)
    shown = w.show(explorer)  # pytest has no Jupyter kernel
    assert shown.kind == "static" and isinstance(shown.obj, Figure)
    # with a kernel the live widget is displayed ...
    monkeypatch.setattr(w, "_in_kernel", lambda: True)
    monkeypatch.delenv("HFR_STATIC_WIDGETS", raising=False)
    shown = w.show(explorer)
    assert shown.kind == "widget" and shown.obj is explorer.widget
    # ... unless rendered docs ask for pictures, or ipywidgets cannot be imported
    monkeypatch.setenv("HFR_STATIC_WIDGETS", "1")
    assert w.show(explorer).kind == "static"
    monkeypatch.setenv("HFR_STATIC_WIDGETS", "0")
    fresh = w.ThresholdExplorer(curves)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    assert w.show(fresh).kind == "static"


def _knob_figure(label: str) -> Figure:
    fig = Figure()
    fig.suptitle(label)
    return fig


def test_training_knobs_train_only_on_update_and_keep_the_other_knobs():
    calls = []

    def train(lam, lr):
        calls.append((lam, lr))
        return _knob_figure(f"lam={lam} lr={lr}")

    start = _knob_figure("start")
    knobs = w.TrainingKnobs(train, {"lam": (0.0, 3.0), "lr": (0.01, 0.03)}, start={"lam": 3.0, "lr": 0.03},
                            figure=start)
    assert calls == [] and knobs.static_figure() is start  # showing the panel trains nothing
    fig = knobs.update(lam=0.0)
    assert calls == [(0.0, 0.03)] and knobs.values == {"lam": 0.0, "lr": 0.03}
    assert knobs.static_figure() is fig and fig._suptitle.get_text() == "lam=0.0 lr=0.03"


def test_training_knobs_refuse_unknown_knobs_and_values_before_training():
    calls = []
    knobs = w.TrainingKnobs(lambda lam: calls.append(lam) or _knob_figure("x"), {"lam": (0.0, 3.0)},
                            start={"lam": 3.0}, figure=_knob_figure("start"))
    with pytest.raises(ValueError, match="lam=7.0 is not offered"):
        knobs.update(lam=7.0)
    with pytest.raises(ValueError, match="unknown knob"):
        knobs.update(tau=0.1)
    with pytest.raises(ValueError, match="missing"):
        w.TrainingKnobs(lambda lam, lr: _knob_figure("x"), {"lam": (0.0,), "lr": (0.1,)}, start={"lam": 0.0},
                        figure=_knob_figure("s"))
    assert calls == []
    bad = w.TrainingKnobs(lambda lam: "not a figure", {"lam": (0.0, 3.0)}, start={"lam": 3.0},
                          figure=_knob_figure("start"))
    with pytest.raises(TypeError, match="must return a matplotlib"):
        bad.update(lam=0.0)
    assert bad.values == {"lam": 3.0}  # a failed run changes no state


def test_training_knobs_button_trains_with_the_dropdowns_values():
    pytest.importorskip("ipywidgets")
    calls = []
    knobs = w.TrainingKnobs(lambda lam, policy: calls.append((lam, policy)) or _knob_figure("x"),
                            {"lam": (0.0, 3.0), "policy": ("paper", "full")}, start={"lam": 3.0, "policy": "paper"},
                            figure=_knob_figure("start"))
    ui = knobs.widget
    dropdowns = ui.children[0].children
    dropdowns[0].value, dropdowns[1].value = 0.0, "full"
    assert calls == []  # a dropdown alone trains nothing
    ui.children[1].children[0].click()
    assert calls == [(0.0, "full")] and knobs.values == {"lam": 0.0, "policy": "full"}


def _batch_cosines(seed: int = 0, b: int = 8):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    vis, other = torch.randn(b, 6, generator=g, dtype=torch.float64), torch.randn(b, 6, generator=g, dtype=torch.float64)
    return vis, other, (F.normalize(other, dim=1) @ F.normalize(vis, dim=1).T).numpy()


@pytest.mark.parametrize("temperature, margin", [(0.07, 0.5), (0.5, 0.0), (1.0, -0.2)])
def test_loss_explorer_equals_the_library_losses(temperature, margin):
    import torch

    from hfr_tutorial.losses import CrossModalInfoNCE, PairwiseContrastiveLoss

    vis, other, cos = _batch_cosines()
    stats = w.LossExplorer(cos, temperature=temperature, margin=margin).stats
    labels = torch.arange(len(vis))
    assert stats["infonce"] == pytest.approx(CrossModalInfoNCE(temperature=temperature)(vis, other).item(), rel=1e-9)
    assert stats["pairwise"] == pytest.approx(
        PairwiseContrastiveLoss(margin=margin)(vis, other, labels, labels).item(), rel=1e-9)
    off = ~np.eye(len(cos), dtype=bool)
    assert stats["active_negatives"] == pytest.approx((cos[off] > margin).mean())


def test_loss_explorer_a_smaller_temperature_gives_the_hardest_negative_more_weight():
    _, _, cos = _batch_cosines(seed=1)
    explorer = w.LossExplorer(cos, temperature=1.0)
    flat = explorer.stats["hardest_negative_weight"]
    sharp = explorer.update(temperature=0.03)["hardest_negative_weight"]
    assert sharp > flat and explorer.temperature == 0.03 and explorer.margin == 0.5
    assert isinstance(explorer.static_figure(), Figure)


@pytest.mark.parametrize("cosines, match", [(np.ones((3, 2)), "shape"), (np.ones((1, 1)), "shape"),
                                            (np.full((3, 3), 2.0), "within \\[-1, 1\\]")])
def test_loss_explorer_refuses_what_is_not_a_batch_of_cosines(cosines, match):
    with pytest.raises(ValueError, match=match):
        w.LossExplorer(cosines)


def test_loss_explorer_refuses_a_bad_temperature_or_margin_and_keeps_its_state():
    _, _, cos = _batch_cosines()
    explorer = w.LossExplorer(cos)
    for bad in ({"temperature": 0.0}, {"temperature": -1.0}, {"margin": 1.5}):
        with pytest.raises(ValueError, match="LossExplorer"):
            explorer.update(**bad)
    assert (explorer.temperature, explorer.margin) == (0.07, 0.5)


def test_loss_explorer_sliders_update_it():
    pytest.importorskip("ipywidgets")
    _, _, cos = _batch_cosines()
    explorer = w.LossExplorer(cos)
    explorer.widget
    explorer._margin_control.value = 0.2
    assert explorer.margin == 0.2 and "m = 0.20" in explorer.summary()

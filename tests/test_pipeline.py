"""The main job end to end on a tiny preset: metrics.json, figures, report, and the command line."""
from __future__ import annotations

import json
import time

import pytest

from hfr_tutorial import pipeline
from hfr_tutorial.__main__ import main
from hfr_tutorial.config import get_preset
from hfr_tutorial.pipeline import gap_recovery, run_pipeline

TINY = get_preset("smoke").replace(
    name="tiny", data__n_train_ids=32, data__n_dev_ids=8, data__n_eval_ids=8, train__batch_size=16,
    train__baseline_epochs=1, train__adapt_epochs=1, train__adapt_pairs_per_identity=1)


@pytest.mark.slow
def test_run_pipeline_writes_metrics_figures_and_report(tmp_path, monkeypatch):
    write_figures = pipeline.write_figures

    started = []

    def slow_figures(*args, **kwargs):  # the reported wall time must include drawing the figures
        started.append(time.perf_counter())
        time.sleep(1.0)
        return write_figures(*args, **kwargs)

    monkeypatch.setattr(pipeline, "write_figures", slow_figures)
    t0 = time.perf_counter()
    metrics = run_pipeline(TINY, out=tmp_path, runs=["paper/infonce+distill", "paper/infonce"], progress=False)
    elapsed = time.perf_counter() - t0
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert started[0] - t0 + 1.0 - 0.2 < on_disk["wall_seconds"] <= elapsed + 0.1
    assert f"Wall time {on_disk['wall_seconds']:.0f} s" in (tmp_path / "report.md").read_text()
    assert on_disk["runs"].keys() == {"paper/infonce+distill", "paper/infonce"}
    for record in [on_disk["baseline"], *on_disk["runs"].values()]:
        assert {"trainable_params", "total_params", "train_seconds", "protocols"} <= set(record)
        assert set(record["protocols"]) == {"vis->vis", "nir->vis", "thermal->vis"}
        for values in record["protocols"].values():
            assert {"rank1", "auc", "eer", "tar_at_far_1e-2"} <= set(values)
            assert 0 <= values["rank1"] <= 1 and values["n_probes"] > 0
    assert on_disk["runs"]["paper/infonce+distill"]["trainable_params"] == 14_488
    assert metrics["summary"]["paper/infonce"]["gap_recovered"].keys() == {"nir->vis", "thermal->vis"}
    report = (tmp_path / "report.md").read_text()
    assert "paper/infonce+distill" in report
    for name in ("rank1_by_run.png", "roc.png", "umap_before_after.png", "training_curves.png", "parameter_budget.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000, name
        assert f"figures/{name}" in report


def test_gap_recovery_arithmetic():
    base = {"protocols": {"vis->vis": {"rank1": 0.9}, "nir->vis": {"rank1": 0.1}, "thermal->vis": {"rank1": 0.3}}}
    run = {"protocols": {"vis->vis": {"rank1": 0.9}, "nir->vis": {"rank1": 0.7}, "thermal->vis": {"rank1": 0.3}}}
    assert gap_recovery(base, run) == pytest.approx({"nir->vis": 0.75, "thermal->vis": 0.0})


def test_cli_refuses_unknown_run_and_preset(tmp_path, capsys):
    """argparse's choices refuse them (exit 2) and list what is allowed."""
    for argv, allowed in ((["--runs", "nope"], "paper/infonce+distill"), (["--preset", "huge"], "smoke")):
        with pytest.raises(SystemExit) as exc:
            main(["run", "--out", str(tmp_path), *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "invalid choice" in err and allowed in err


def test_cli_lists_variants(capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    assert "edgeface_xxs" in out and "1,244,744" in out

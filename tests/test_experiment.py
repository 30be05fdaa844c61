"""One experiment, one path: the embedded default and a layout with a pretrained model through hfr_tutorial.experiment.run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hfr_tutorial import metrics as metrics_module
from hfr_tutorial import runs as runs_module
from hfr_tutorial.__main__ import main as cli
from hfr_tutorial.artifacts import load_faceset
from hfr_tutorial.config import get_preset
from hfr_tutorial.evaluate import available_protocols, evaluate_protocols, identification_protocol
from hfr_tutorial.experiment import (EmbeddedData, Experiment, ExperimentError, LayoutData, OutputError, Pretrained,
                                     StandIn, carve_dev, experiment_from_args, resolve_model, run)
from hfr_tutorial.metrics import Metric, register_metric, tar_metric
from hfr_tutorial.models import create_edgeface, find_checkpoint, load_edgeface
from hfr_tutorial.runs import RunSpec, register_run
from hfr_tutorial.train import AdaptSettings

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ weights where users have them
def test_find_checkpoint_searches_the_hub_checkpoints_folder(tmp_path, monkeypatch, capsys):
    """torch.hub.load(...) saves into <hub>/checkpoints/<variant>.pt: that must be found (it was not)."""
    monkeypatch.delenv("HFR_ASSETS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert find_checkpoint("edgeface_xxs") is None
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(create_edgeface("edgeface_xxs").state_dict(), tmp_path / "hub" / "checkpoints" / "edgeface_xxs.pt")
    torch.save({}, tmp_path / "hub" / "checkpoints" / "edgeface_xs_q.pt")
    assert find_checkpoint("edgeface_xxs") == tmp_path / "hub" / "checkpoints" / "edgeface_xxs.pt"
    assert find_checkpoint("edgeface_xs") == tmp_path / "hub" / "checkpoints" / "edgeface_xs_q.pt"
    assets = tmp_path / "assets" / "weights"
    assets.mkdir(parents=True)
    torch.save({}, assets / "edgeface_xxs_float.pt")
    monkeypatch.setenv("HFR_ASSETS", str(tmp_path / "assets"))
    assert find_checkpoint("edgeface_xxs") == assets / "edgeface_xxs_float.pt"  # HFR_ASSETS first
    assert cli(["weights"]) == 0
    out = capsys.readouterr().out
    assert "edgeface_xs_gamma_06" in out and "Missing: edgeface_base, edgeface_s_gamma_05, edgeface_xs_gamma_06" in out
    assert "edgeface_xxs " not in out.split("Missing:")[1]  # found variants are not in the hint


def test_resolve_model_errors_say_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("HFR_ASSETS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ExperimentError, match="Looked for edgeface_xxs_float.pt.*hub/checkpoints"):
        resolve_model("edgeface_xxs")
    with pytest.raises(ExperimentError, match="neither a variant"):
        resolve_model(str(tmp_path / "nope.pt"))
    with pytest.raises(ExperimentError, match="is a folder"):
        resolve_model(str(tmp_path))
    path = tmp_path / "xs.pt"
    torch.save(create_edgeface("edgeface_xs").state_dict(), path)
    assert resolve_model(str(path)).variant == "edgeface_xs"  # guessed from the keys


# ------------------------------------------------------------------ protocols follow the data
def test_protocols_follow_the_modalities_present():
    ids = np.array([0, 0, 0, 1, 1, 1])
    assert available_protocols(ids, ["vis", "nir", "nir", "vis", "nir", "nir"]) == ["nir->vis"]
    assert available_protocols(ids, ["vis", "vis", "nir", "vis", "vis", "nir"]) == ["vis->vis", "nir->vis"]
    assert available_protocols(ids, ["vis", "thermal", "nir"] * 2) == ["nir->vis", "thermal->vis"]
    with pytest.raises(ValueError, match="no 'vis'"):
        available_protocols(ids, ["nir"] * 6)


def test_roles_of_a_protocol_decide_gallery_and_probes():
    ids = np.array([0, 0, 0, 1, 1, 1])
    mods = np.array(["vis", "vis", "nir", "vis", "vis", "nir"])
    roles = np.array(["probe", "gallery", "probe", "gallery", "probe", "probe"])
    g, p = identification_protocol(ids, mods, "vis", "vis")
    assert g.tolist() == [0, 3]  # first VIS image without roles
    g, p = identification_protocol(ids, mods, "vis", "vis", roles)
    assert g.tolist() == [1, 3] and p.tolist() == [0, 4]
    g, p = identification_protocol(ids, mods, "nir", "vis", roles)
    assert p.tolist() == [2, 5]
    emb = np.eye(6, 4)[[0, 0, 1, 2, 2, 3]] + 0.01
    assert set(evaluate_protocols(emb, ids, mods, ["nir->vis"], roles=roles)) == {"nir->vis"}


def test_fold_families_and_carve_dev(tmp_path):
    (tmp_path / "protocols").mkdir()
    for name in ("view1", "view2_1", "view2_2", "view2_10", "default"):
        (tmp_path / "protocols" / f"{name}.csv").write_text("split,role,identity,modality,path\n")
    assert LayoutData(tmp_path, "view2").fold_names() == ["view2_1", "view2_2", "view2_10"]
    assert LayoutData(tmp_path, "view1").fold_names() == ["view1"] and LayoutData(tmp_path).fold_names() == [None]
    with pytest.raises(ExperimentError, match="Available"):
        LayoutData(tmp_path, "view3").fold_names()
    fs = load_faceset("smoke", seed=0, progress=False).select(split=["train", "eval"])
    carved, names = carve_dev(fs, 0.2, seed=0)
    dev_ids = np.unique(carved.identities[carved.splits == "dev"])
    assert len(names) == len(dev_ids) == round(0.2 * 64)
    assert not np.isin(dev_ids, carved.identities[carved.splits == "train"]).any()
    assert np.array_equal(carved.splits == "eval", fs.splits == "eval")


# ------------------------------------------------------------------ the combinations of data and starting model
def test_the_four_combinations_one_refused_by_rule(smoke_layout, tiny):
    root, ckpt = smoke_layout
    Experiment(EmbeddedData(), StandIn(), preset=tiny).check()
    Experiment(EmbeddedData(), Pretrained("edgeface_xxs", ckpt), preset=tiny).check()
    Experiment(LayoutData(root), Pretrained("edgeface_xxs", ckpt), preset=tiny).check()
    with pytest.raises(ExperimentError, match="trained here from scratch.*--model edgeface_xxs"):
        Experiment(LayoutData(root), StandIn(), preset=tiny).check()
    with pytest.raises(ExperimentError, match="oracle trains a network from scratch"):
        Experiment(LayoutData(root), Pretrained("edgeface_xxs", ckpt), ("joint/oracle",), preset=tiny).check()
    assert "joint/oracle" not in Experiment(LayoutData(root), Pretrained("edgeface_xxs", ckpt), preset=tiny).runs


@pytest.mark.parametrize("kwargs,match", [
    ({"batch_size": 1}, "no negative pair"), ({"seed": -1}, "--seed -1"), ({"lr": 1e9}, "--lr"),
    ({"lr": float("nan")}, "--lr"), ({"epochs": 0}, "--epochs 0"), ({"runs": ("nope",)}, "unknown"),
])
def test_bad_settings_are_refused_before_any_work(tiny, kwargs, match):
    with pytest.raises(ExperimentError, match=match):
        Experiment(preset=tiny, **kwargs).check()


def test_bf16_on_a_cpu_is_refused_before_any_work(tiny, tmp_path):
    with pytest.raises(ExperimentError, match="--bf16 applies to CUDA"):
        run(Experiment(preset=tiny, bf16=True), tmp_path / "o", device="cpu", progress=False)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ the embedded default
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import tiny_preset

    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("run") / "out"
    experiment = Experiment(preset=tiny_preset(), runs=("paper/infonce+distill", "paper/infonce"))
    # the module's runs share one cache, set for this run only: a value left in os.environ would leak into
    # every later test and notebook kernel of this pytest worker (they would train into an empty cache)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HFR_CACHE", str(cache))
        t0 = time.perf_counter()
        metrics = run(experiment, out, device="cpu", workers=1, progress=False)
    return metrics, out, cache, time.perf_counter() - t0


@pytest.mark.slow
def test_the_embedded_run_writes_metrics_figures_report_and_checkpoints(tiny_run):
    metrics, out, _, elapsed = tiny_run
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["schema"] == 2 and 0 < on_disk["wall_seconds"] <= elapsed + 0.1
    fold = on_disk["folds"]["default"]
    assert list(fold["models"]) == ["baseline", "paper/infonce+distill", "paper/infonce"]
    for record in fold["models"].values():
        assert {"trainable_params", "total_params", "train_seconds", "protocols", "intervals"} <= set(record)
        assert set(record["protocols"]) == {"vis->vis", "nir->vis", "thermal->vis"}
        for protocol, values in record["protocols"].items():
            assert set(metrics_module.METRICS) <= set(values) and values["n_probes"] > 0
            lo, hi = record["intervals"][protocol]["rank1"]
            assert lo <= values["rank1"] <= hi
        assert set(record["operating_points"]["nir->vis"]) == {"far_1e-2", "far_1e-3"}
    method = fold["models"]["paper/infonce+distill"]
    assert method["trainable_params"] == 14_488 and method["lr"] == 3e-2
    assert method["recipe"]["how"].startswith("chosen on dev identities offline")
    assert load_edgeface("edgeface_xxs", out / method["checkpoint"]) is not None
    claims = fold["claims"]
    assert claims["runs"]["paper/infonce"]["gap_recovered"].keys() == {"nir->vis", "thermal->vis"}
    assert "paper/infonce+distill" in claims["distillation_effect"]
    report = (out / "report.md").read_text()
    assert f"wall time {on_disk['wall_seconds']:.0f} s" in report and "paper/infonce+distill" in report
    for name in ("rank1_by_run.png", "metrics_by_run.png", "roc.png", "umap_before_after.png",
                 "training_curves.png", "parameter_budget.png"):
        assert (out / "figures" / name).stat().st_size > 10_000, name
        assert f"figures/{name}" in report


@pytest.mark.slow
def test_a_new_run_and_a_new_metric_take_one_edit_each(tiny_run, tmp_path, monkeypatch):
    """Register a run and a metric: both appear in metrics.json, the report and a figure, and nothing else is edited."""
    _, _, cache, _ = tiny_run
    monkeypatch.setenv("HFR_CACHE", str(cache))
    name = "layernorm+stem/infonce+distill"
    register_run(RunSpec(name, "variant", AdaptSettings(policy="layernorm+stem", contrastive="infonce"),
                         rates={"stand-in": 3e-2}))
    register_metric(tar_metric(1e-4))
    try:
        from conftest import tiny_preset

        out = tmp_path / "out"
        run(Experiment(preset=tiny_preset(), runs=("paper/infonce+distill", name)), out, device="cpu", workers=1,
            progress=False)
        saved = json.loads((out / "metrics.json").read_text())
        record = saved["folds"]["default"]["models"][name]
        assert "tar_at_far_1e-4" in record["protocols"]["nir->vis"] and "tar_at_far_1e-4" in record["intervals"]["nir->vis"]
        report = (out / "report.md").read_text()
        assert name in report and "TAR@FAR=0.0001" in report
        from matplotlib import pyplot as plt  # the metrics figure has one panel per registered metric
        image = plt.imread(out / "figures" / "metrics_by_run.png")
        assert image.shape[1] > 8 * 300  # eight panels side by side
    finally:
        runs_module.unregister_run(name)
        metrics_module.unregister_metric("tar_at_far_1e-4")


@pytest.mark.slow
def test_a_second_run_into_a_new_folder_trains_nothing(tiny_run, tmp_path, monkeypatch):
    _, _, cache, _ = tiny_run
    monkeypatch.setenv("HFR_CACHE", str(cache))
    from conftest import tiny_preset

    again = run(Experiment(preset=tiny_preset(), runs=("paper/infonce+distill", "paper/infonce")), tmp_path / "o",
                device="cpu", workers=1, progress=False)
    assert all(m["from_cache"] for m in again["folds"]["default"]["models"].values())
    assert again["trained_here"] == {}


# ------------------------------------------------------------------ the --out rule
def test_the_out_rule(tiny, tmp_path, smoke_layout):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is a file"):
        run(Experiment(preset=tiny), tmp_path / "file", progress=False)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not an hfr-tutorial result"):
        run(Experiment(preset=tiny), foreign, progress=False, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.json").write_text(json.dumps({"fingerprint": "another"}))
    with pytest.raises(OutputError, match="--overwrite"):
        run(Experiment(preset=tiny), other, progress=False)


def test_a_second_run_into_the_same_out_stops_at_once(tiny, tmp_path):
    """Two runs into one --out at once: the second is refused, naming the first (no lost results)."""
    import fcntl

    out = tmp_path / "out"
    lock = tmp_path / ".out.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"pid 4242")
    try:
        with pytest.raises(OutputError, match="being written by pid 4242"):
            run(Experiment(preset=tiny), out, progress=False)
    finally:
        os.close(fd)


def test_a_failed_run_leaves_the_previous_result_and_no_partial(tiny, tmp_path, monkeypatch):
    from hfr_tutorial.experiment import runner

    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"fingerprint": Experiment(preset=tiny).fingerprint()}))
    (out / "report.md").write_text("old report")

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "build_missing", fail)
    with pytest.raises(KeyboardInterrupt):
        run(Experiment(preset=tiny), out, progress=False)
    assert (out / "report.md").read_text() == "old report"
    assert not list(tmp_path.glob(".out.partial-*"))


# ------------------------------------------------------------------ a layout and a pretrained model
@pytest.fixture(scope="module")
def layout_run(smoke_layout, tmp_path_factory):
    from conftest import tiny_preset

    root, ckpt = smoke_layout
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("run") / "out"
    experiment = Experiment(LayoutData(root), Pretrained("edgeface_xxs", ckpt), ("paper/infonce+distill",),
                            preset=tiny_preset().replace(pretrained__lr_grid=(3e-4, 1e-3)))
    with pytest.MonkeyPatch.context() as mp:  # not os.environ: see tiny_run
        mp.setenv("HFR_CACHE", str(cache))
        result = run(experiment, out, device="cpu", workers=1, progress=False)
    return result, out, cache, experiment


def test_a_layout_run_chooses_on_dev_reports_intervals_and_writes_loadable_checkpoints(smoke_layout, layout_run):
    root, ckpt = smoke_layout
    m, out, _, _ = layout_run
    fold = m["folds"]["default"]
    assert fold["protocols"] == ["vis->vis", "nir->vis", "thermal->vis"]
    method = fold["models"]["paper/infonce+distill"]
    assert method["status"] == "ok" and method["lr"] in (3e-4, 1e-3)
    assert [c["lr"] for c in method["recipe"]["candidates"]] == [3e-4, 1e-3]
    assert method["recipe"]["how"].startswith("chosen on dev identities from the grid")
    assert method["intervals"]["nir->vis"]["eer"][0] <= method["protocols"]["nir->vis"]["eer"]
    assert m["experiment"]["starting_model"]["checkpoint"] == str(ckpt)
    model = load_edgeface("edgeface_xxs", out / method["checkpoint"])  # official key names
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                     load_edgeface("edgeface_xxs", ckpt).state_dict().values()))
    assert "eer" in fold["claims"]["runs"]["paper/infonce+distill"]["change"]["thermal->vis"]
    report = (out / "report.md").read_text()
    assert "adapted on synthetic-smoke" in report and "figures/roc.png" in report and "[" in report


def test_a_layout_run_reuses_the_cache(layout_run, tmp_path, monkeypatch):
    _, _, cache, experiment = layout_run
    monkeypatch.setenv("HFR_CACHE", str(cache))
    again = run(experiment, tmp_path / "new", device="cpu", workers=1, progress=False)
    assert all(c["from_cache"] for c in again["folds"]["default"]["models"]["paper/infonce+distill"]["recipe"]["candidates"])


def test_the_guard_refuses_a_model_that_lost_vis(smoke_layout, tiny, tmp_path):
    root, ckpt = smoke_layout
    preset = tiny.replace(pretrained__max_dev_vis_auc_drop=-1.0)  # any change counts as a collapse
    m = run(Experiment(LayoutData(root), Pretrained("edgeface_xxs", ckpt), ("paper/infonce+distill",), preset=preset),
            tmp_path / "out", device="cpu", workers=1, progress=False, figures=False)
    model = m["folds"]["default"]["models"]["paper/infonce+distill"]
    assert model["status"] == "refused" and "Lower the learning rate" in model["reason"]
    assert "checkpoint" not in model and not (tmp_path / "out" / "checkpoints").exists()


@pytest.mark.slow
def test_the_pretrained_path_resumes_after_sigkill(smoke_layout, tmp_path):
    """Kill a layout run mid-training; the rerun resumes the model from its last epoch and reports."""
    root, ckpt = smoke_layout
    script = tmp_path / "go.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from conftest import tiny_preset
        from hfr_tutorial.experiment import Experiment, LayoutData, Pretrained, run
        if __name__ == "__main__":
            preset = tiny_preset().replace(pretrained__epochs=4)
            e = Experiment(LayoutData({str(root)!r}), Pretrained("edgeface_xxs", {str(ckpt)!r}),
                           ("full/infonce+distill",), preset=preset)
            run(e, {str(tmp_path / 'out')!r}, device="cpu", workers=1, progress=True)
    """))
    env = {**os.environ, "HFR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    seen = ""
    for line in proc.stdout:  # type: ignore[union-attr]
        seen += line
        if "epoch 2/4" in line or ": epoch 2," in line:
            break
    deadline = time.time() + 120
    while not list((tmp_path / "cache").rglob("last.json")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((tmp_path / "cache").rglob("last.json")), seen
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming from" in done.stdout
    assert (tmp_path / "out" / "metrics.json").is_file()


def test_a_layout_without_vis_gallery_is_refused_before_training(tiny, tmp_path):
    fs = load_faceset("smoke", seed=0, progress=False)
    fs.select(modality=["nir", "thermal"]).write_layout(tmp_path / "novis")
    torch.save(create_edgeface("edgeface_xxs").state_dict(), tmp_path / "m.pt")
    with pytest.raises(ExperimentError, match="needs both|no 'vis'"):
        run(Experiment(LayoutData(tmp_path / "novis"), Pretrained("edgeface_xxs", tmp_path / "m.pt"), preset=tiny),
            tmp_path / "o", progress=False, figures=False)
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_of_another_variant_and_a_modality_without_probes_are_refused(smoke_layout, tiny, tmp_path):
    import csv
    import shutil

    from hfr_tutorial.models import CheckpointError

    root, ckpt = smoke_layout
    with pytest.raises(CheckpointError, match="most likely belongs to variant 'edgeface_xxs'"):
        run(Experiment(LayoutData(root), Pretrained("edgeface_xs", ckpt), preset=tiny), tmp_path / "o", progress=False)
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    rows = list(csv.DictReader(open(bad / "protocols" / "default.csv")))
    for r in rows:  # thermal eval images lose their probe role
        if r["split"] == "eval" and r["modality"] == "thermal":
            r["role"] = "gallery"
    with open(bad / "protocols" / "default.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ExperimentError, match=r"\['thermal'\] images but none is a probe"):
        run(Experiment(LayoutData(bad), Pretrained("edgeface_xxs", ckpt), preset=tiny), tmp_path / "o", progress=False)


def test_casia_view2_runs_every_fold_nir_only(tmp_path):
    """The miniature CASIA archive of test_data_scripts -> converter -> run --protocol view2: ten folds, mean +- std."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_data_scripts import N_FACES, make_casia

    from data_scripts import casia_nir_vis2
    from hfr_tutorial.data import synthetic_identity_images

    faces = {i: synthetic_identity_images(i, n=3, size=48, seed=7, return_landmarks=True) for i in range(N_FACES)}
    root, annot, _ = make_casia(tmp_path, faces)
    layout = tmp_path / "layout"
    casia_nir_vis2.main(["--root", str(root), "--out", str(layout), "--annotations", str(annot), "--size", "32",
                         "--no-progress"])
    torch.save(create_edgeface("edgeface_xxs", seed=1).state_dict(), tmp_path / "m.pt")
    rc = cli(["run", "--data", str(layout), "--protocol", "view2", "--model", str(tmp_path / "m.pt"), "--preset",
              "smoke", "--runs", "paper/infonce+distill", "--out", str(tmp_path / "out"), "--quiet",
              "--device", "cpu", "--build-workers", "1"])
    assert rc == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(m["folds"]) == [f"view2_{k}" for k in range(1, 11)]
    assert m["summary"]["n_folds"] == 10
    stats = m["summary"]["models"]["paper/infonce+distill"]
    assert list(stats) == ["nir->vis"]  # one VIS image per test subject: no vis->vis, and no thermal
    assert stats["nir->vis"]["rank1"]["n"] == 10 and stats["nir->vis"]["rank1"]["std"] >= 0
    assert all(f["dev_identities_held_out"] for f in m["folds"].values())  # View 2 has no dev split
    assert all(f["models"]["paper/infonce+distill"]["intervals"]["nir->vis"]["rank1"] for f in m["folds"].values())
    report = (tmp_path / "out" / "report.md").read_text()
    assert "10 folds" in report and " ± " in report


# ------------------------------------------------------------------ the command line
@pytest.mark.parametrize("command", [[], ["run"], ["data"], ["variants"], ["weights"]])
def test_every_help_prints_and_exits_0(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage: hfr-tutorial" in text and ":func:" not in text and "``" not in text


def test_version_and_choices(capsys, tmp_path):
    from hfr_tutorial import __version__

    with pytest.raises(SystemExit):
        cli(["--version"])
    assert __version__ in capsys.readouterr().out
    for argv, allowed in ((["--runs", "nope"], "paper/infonce+distill"), (["--preset", "huge"], "smoke")):
        with pytest.raises(SystemExit) as exc:
            cli(["run", "--out", str(tmp_path), *argv])
        assert exc.value.code == 2 and allowed in capsys.readouterr().err


def test_cli_lists_variants(capsys):
    assert cli(["variants"]) == 0
    out = capsys.readouterr().out
    assert "edgeface_xxs" in out and "1,244,744" in out


def test_cli_errors_exit_2_with_the_fix(tmp_path, monkeypatch, capsys, smoke_layout):
    root, _ = smoke_layout
    monkeypatch.delenv("HFR_ASSETS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert cli(["run", "--model", "edgeface_xxs", "--out", str(tmp_path / "o")]) == 2
    assert "torch.hub.load" in capsys.readouterr().err
    assert cli(["run", "--data", str(root), "--model", "baseline"]) == 2
    assert "pretrained model" in capsys.readouterr().err
    assert cli(["run", "--protocol", "x", "--preset", "smoke", "--out", str(tmp_path / "o")]) == 2
    assert "--protocol needs --data" in capsys.readouterr().err
    assert cli(["run", "--batch-size", "1", "--preset", "smoke", "--out", str(tmp_path / "o")]) == 2
    assert "no negative pair" in capsys.readouterr().err
    assert cli(["run", "--seed", "-1", "--preset", "smoke", "--out", str(tmp_path / "o")]) == 2
    assert "--seed -1" in capsys.readouterr().err
    (tmp_path / "f").write_text("")
    assert cli(["run", "--preset", "smoke", "--out", str(tmp_path / "f"), "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_experiment_from_args_names_the_defaults(smoke_layout):
    root, ckpt = smoke_layout
    e = experiment_from_args(preset="smoke")
    assert isinstance(e.data, EmbeddedData) and isinstance(e.start, StandIn) and "joint/oracle" in e.runs
    e = experiment_from_args(data=root, model=str(ckpt), preset="smoke")
    assert isinstance(e.data, LayoutData) and e.start.variant == "edgeface_xxs" and "joint/oracle" not in e.runs
    assert e.fingerprint() != experiment_from_args(data=root, model=str(ckpt), preset="smoke", seed=1).fingerprint()
    assert e.fingerprint() == experiment_from_args(data=root, model=str(ckpt), preset="smoke").fingerprint()


@pytest.mark.assets
def test_real_weights_keep_vis_on_aligned_real_photos(assets, tmp_path):
    """prepare_folder.py on the real photos, then the real edgeface_xxs adapted: VIS kept on unseen identities."""
    from hfr_tutorial.data.detect import detector_available

    if not detector_available():
        pytest.skip("dlib-bin / face-recognition-models are not installed")
    sys.path.insert(0, str(REPO))
    from data_scripts import prepare_folder

    layout = tmp_path / "real"
    prepare_folder.main(["--source", str(assets / "photos" / "deepface9"), str(assets / "faces" / "dlib_johns"),
                         "--out", str(layout), "--pseudo", "nir,thermal", "--split", "0.5,0.2,0.3", "--no-progress"])
    preset = get_preset("smoke").replace(pretrained__epochs=2, pretrained__batch_size=16, pretrained__lr_grid=(3e-4,))
    m = run(Experiment(LayoutData(layout), resolve_model("edgeface_xxs"), ("paper/infonce+distill",), preset=preset),
            tmp_path / "out", device="cpu", workers=1, progress=False, figures=False)
    models = m["folds"]["default"]["models"]
    before, after = models["edgeface_xxs (unadapted)"]["protocols"], models["paper/infonce+distill"]["protocols"]
    assert before["vis->vis"]["auc"] > 0.95  # aligned real faces, real weights
    assert after["vis->vis"]["rank1"] >= before["vis->vis"]["rank1"] - 0.02
    assert m["experiment"]["data"]["simulated_modalities"] == ["nir", "thermal"]

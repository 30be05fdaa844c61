"""The path of a pretrained starting model: weights on disk, protocols that follow the data, folds, the guard, the CLI."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hfr_tutorial.__main__ import main as cli
from hfr_tutorial.artifacts import load_faceset
from hfr_tutorial.config import get_preset
from hfr_tutorial.evaluate import available_protocols, evaluate_protocols, identification_protocol
from hfr_tutorial.experiment import ExperimentError, carve_dev, resolve_folds, resolve_model, run_experiment
from hfr_tutorial.models import create_edgeface, find_checkpoint, load_edgeface

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


def test_weights_prints_no_hint_when_everything_is_found(tmp_path, monkeypatch, capsys):
    from hfr_tutorial.models import list_variants

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    for name in list_variants():
        torch.save({}, tmp_path / "hub" / "checkpoints" / f"{name}.pt")
    assert cli(["weights"]) == 0
    assert "Missing" not in capsys.readouterr().out


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


def test_resolve_folds_and_carve_dev(tmp_path):
    (tmp_path / "protocols").mkdir()
    for name in ("view1", "view2_1", "view2_2", "view2_10", "default"):
        (tmp_path / "protocols" / f"{name}.csv").write_text("split,role,identity,modality,path\n")
    assert resolve_folds(tmp_path, "view2") == ["view2_1", "view2_2", "view2_10"]
    assert resolve_folds(tmp_path, "view1") == ["view1"] and resolve_folds(tmp_path, None) == [None]
    with pytest.raises(ExperimentError, match="Available"):
        resolve_folds(tmp_path, "view3")
    fs = load_faceset("smoke", seed=0, progress=False).select(split=["train", "eval"])
    carved, names = carve_dev(fs, 0.2, seed=0)
    dev_ids = np.unique(carved.identities[carved.splits == "dev"])
    assert len(names) == len(dev_ids) == round(0.2 * 64)
    assert not np.isin(dev_ids, carved.identities[carved.splits == "train"]).any()
    assert np.array_equal(carved.splits == "eval", fs.splits == "eval")


# ------------------------------------------------------------------ the experiment, end to end
@pytest.fixture(scope="module")
def smoke_run(smoke_layout, tmp_path_factory):
    root, ckpt = smoke_layout
    out = tmp_path_factory.mktemp("run") / "out"
    m = run_experiment(data=root, model=str(ckpt), preset="smoke", runs=["paper/infonce+distill"], out=out,
                       progress=False, figures=True, device="cpu")
    return m, out


def test_run_experiment_on_a_layout_writes_loadable_checkpoints(smoke_layout, smoke_run):
    root, ckpt = smoke_layout
    m, out = smoke_run
    fold = m["folds"]["default"]
    assert fold["protocols"] == ["vis->vis", "nir->vis", "thermal->vis"]
    run = fold["runs"]["paper/infonce+distill"]
    assert run["status"] == "ok" and run["lr"] == get_preset("smoke").pretrained.lr_grid[0]
    for metric in ("rank1", "auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "dev_thr_far_1e-3"):
        assert metric in run["protocols"]["nir->vis"]
    assert m["starting_model"]["checkpoint"] == str(ckpt) and m["data"]["kind"] == "layout"
    model = load_edgeface("edgeface_xxs", run["checkpoint"])  # official key names
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                     load_edgeface("edgeface_xxs", ckpt).state_dict().values()))
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["summary"]["runs"]["before"]["nir->vis"]["rank1"]["n"] == 1
    report = (out / "report.md").read_text()
    assert "adapted on synthetic-smoke" in report and "figures/roc.png" in report
    assert (out / "figures" / "rank1_by_run.png").is_file()


def test_the_guard_refuses_a_model_that_lost_vis(smoke_layout, tmp_path):
    root, ckpt = smoke_layout
    preset = get_preset("smoke").replace(pretrained__max_dev_vis_auc_drop=-1.0)  # any change counts as a collapse
    m = run_experiment(data=root, model=str(ckpt), preset=preset, runs=["paper/infonce+distill"],
                       out=tmp_path / "out", progress=False, figures=False, device="cpu")
    run = m["folds"]["default"]["runs"]["paper/infonce+distill"]
    assert run["status"] == "refused" and "Lower the learning rate" in run["reason"]
    assert "checkpoint" not in run and not (tmp_path / "out" / "checkpoints").exists()


def test_refuses_to_drop_earlier_results_and_bad_inputs(smoke_layout, smoke_run, tmp_path):
    root, ckpt = smoke_layout
    _, out = smoke_run
    kw = dict(data=root, model=str(ckpt), preset="smoke", out=out, progress=False, figures=False, device="cpu")
    with pytest.raises(ValueError, match="--overwrite"):
        run_experiment(runs=["paper/infonce"], **kw)
    with pytest.raises(ExperimentError, match="choose one or more"):
        run_experiment(runs=[], **{**kw, "out": tmp_path / "o2"})
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        run_experiment(runs=["paper/infonce"], **{**kw, "out": tmp_path / "file"})
    if not torch.cuda.is_available():
        with pytest.raises(ExperimentError, match="no CUDA device"):
            run_experiment(runs=["paper/infonce"], **{**kw, "device": "cuda", "out": tmp_path / "o3"})


def test_a_layout_without_vis_gallery_is_refused_before_training(tmp_path):
    fs = load_faceset("smoke", seed=0, progress=False)
    fs.select(modality=["nir", "thermal"]).write_layout(tmp_path / "novis")
    torch.save(create_edgeface("edgeface_xxs").state_dict(), tmp_path / "m.pt")
    with pytest.raises(ExperimentError, match="needs both|no 'vis'"):
        run_experiment(data=tmp_path / "novis", model=str(tmp_path / "m.pt"), preset="smoke", out=tmp_path / "o",
                       progress=False, figures=False)
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_a_checkpoint_of_another_variant_and_a_modality_without_probes_are_refused(smoke_layout, tmp_path):
    import csv

    from hfr_tutorial.models import CheckpointError

    root, ckpt = smoke_layout
    with pytest.raises(CheckpointError, match="most likely belongs to variant 'edgeface_xxs'"):
        run_experiment(data=root, model=str(ckpt), variant="edgeface_xs", preset="smoke", out=tmp_path / "o",
                       progress=False, figures=False)
    bad = tmp_path / "bad"
    import shutil

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
        run_experiment(data=bad, model=str(ckpt), preset="smoke", out=tmp_path / "o", progress=False, figures=False)


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
              "--device", "cpu"])
    assert rc == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(m["folds"]) == [f"view2_{k}" for k in range(1, 11)]
    assert m["summary"]["n_folds"] == 10
    stats = m["summary"]["runs"]["paper/infonce+distill"]
    assert list(stats) == ["nir->vis"]  # one VIS image per test subject: no vis->vis, and no thermal
    assert stats["nir->vis"]["rank1"]["n"] == 10 and stats["nir->vis"]["rank1"]["std"] >= 0
    assert all(f["dev_identities_held_out"] for f in m["folds"].values())  # View 2 has no dev split
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


def test_version_and_choices(capsys):
    from hfr_tutorial import __version__

    with pytest.raises(SystemExit):
        cli(["--version"])
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli(["run", "--preset", "huge"])
    assert exc.value.code == 2 and "smoke" in capsys.readouterr().err


def test_cli_errors_exit_2_with_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HFR_ASSETS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert cli(["run", "--model", "edgeface_xxs", "--out", str(tmp_path / "o")]) == 2
    assert "torch.hub.load" in capsys.readouterr().err
    assert cli(["run", "--data", str(tmp_path), "--model", "baseline"]) == 2
    assert "pretrained model" in capsys.readouterr().err
    assert cli(["run", "--lr", "0.1", "--preset", "smoke", "--out", str(tmp_path / "o")]) == 2
    assert "--model" in capsys.readouterr().err
    (tmp_path / "f").write_text("")
    assert cli(["run", "--preset", "smoke", "--out", str(tmp_path / "f"), "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err


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
    preset = get_preset("smoke").replace(pretrained__epochs=2, pretrained__batch_size=16,
                                         pretrained__lr_grid=(3e-4,))
    m = run_experiment(data=layout, model="edgeface_xxs", preset=preset, runs=["paper/infonce+distill"],
                       out=tmp_path / "out", progress=False, figures=False, device="cpu")
    fold = m["folds"]["default"]
    before, after = fold["before"]["protocols"], fold["runs"]["paper/infonce+distill"]["protocols"]
    assert before["vis->vis"]["auc"] > 0.95  # aligned real faces, real weights
    assert after["vis->vis"]["rank1"] >= before["vis->vis"]["rank1"] - 0.02
    assert m["data"]["simulated_modalities"] == ["nir", "thermal"]

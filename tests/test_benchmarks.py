"""The benchmarks' --quick modes run (as CI runs them) and write the JSON the README's tables come from.

Each script runs in a subprocess, writing to a temporary folder; only the structure of its JSON is
checked (rows present, positive times and ratios, the counted FLOPs and parameters of EdgeFace-XXS):
quick timings mean nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfr_tutorial.config import get_preset
from hfr_tutorial.tuning import POLICIES

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(script: str, out: Path, *extra: str, timeout: int = 600) -> dict:
    # One intra-op thread: the same code paths, and no threads spin-waiting for each other on a busy
    # host (there, bench_speed.py --quick on 2 threads took over 150 s instead of 30 s).
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out), *extra],
                            capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert out.is_file() and out.with_suffix(".md").is_file()
    return json.loads(out.read_text())


def _real_assets() -> bool:
    root = os.environ.get("HFR_ASSETS")
    return (bool(root) and (Path(root) / "weights" / "edgeface_xxs_float.pt").is_file()
            and (Path(root) / "faces").is_dir())


@pytest.fixture(scope="module")
def cost112(tmp_path_factory) -> dict:
    return _run("bench_cost112.py", tmp_path_factory.mktemp("cost112") / "bench.json", "--threads", "1")


def test_cost112_machine_and_settings(cost112):
    m = cost112["machine"]
    assert m["cpu"] and m["threads"] == 1 and m["torch"] and m["device"] == "cpu"
    st = cost112["settings"]
    assert st["quick"] and st["input_size"] == 112 and st["interleaved"] and st["reference"] == "EdgeFace-XXS float"


def test_cost112_flops_and_parameters_of_edgeface_xxs(cost112):
    check = cost112["flops_check"]
    assert check["passed"], check
    xxs = next(r for r in cost112["inference"] if r["model"] == "EdgeFace-XXS float")
    assert xxs["params"] == 1_244_744
    assert abs(xxs["mflops"] - 94.72) / 94.72 < 0.02
    assert xxs["m_multiply_adds"] == pytest.approx(xxs["mflops"] / 2)  # FlopCounterMode: 2 FLOPs per multiply-add
    assert xxs["ratio_flops"] == pytest.approx(1.0) and xxs["ratio_latency"] == pytest.approx(1.0)


def test_cost112_inference_rows(cost112):
    rows = {r["model"]: r for r in cost112["inference"]}
    for name in ("EdgeFace-XXS float", "EdgeFace-XXS int8 (dynamic, the _q form)", "ResNet-50 (timm, 512-d head) float",
                 "dlib ResNet face recogniser (150x150 chips)"):
        assert name in rows
    for r in rows.values():
        if r["status"] != "ok":
            assert r["status"] == "skipped" and r["reason"], r
            continue
        assert r["latency_ms"] > 0 and r["images_per_s"] > 0 and r["ratio_latency"] > 0 and r["ratio_throughput"] > 0
        if r["family"] != "dlib":
            assert r["params"] > 0 and r["ratio_params"] > 0 and r["ratio_flops"] > 0
    resnet = rows["ResNet-50 (timm, 512-d head) float"]
    assert resnet["status"] == "ok" and resnet["ratio_flops"] > 10 and resnet["ratio_params"] > 10
    q = rows["EdgeFace-XXS int8 (dynamic, the _q form)"]
    assert q["status"] == "ok" and q["params"] == 1_244_744
    if _real_assets():
        assert q["weights"] == "official (edgeface_xxs_q.pt)"


def test_cost112_training_rows(cost112):
    rows = {r["policy"]: r for r in cost112["training"]}
    assert set(rows) == {p for p in POLICIES if p != "frozen"} | {"paper (teacher forward every step)"}
    assert rows["full"]["ratio_time"] == pytest.approx(1.0) and rows["full"]["trainable"] == 1_244_744
    assert rows["paper"]["trainable"] == 14_488
    for r in rows.values():
        assert r["ms_per_step"] > 0 and r["ratio_time"] > 0 and r["ratio_peak"] > 0 and r["ratio_trainable"] > 0
        assert r["saved_activation_bytes"] > 0 and r["peak_bytes"] > r["weights_bytes"] > 0
        assert r["optimizer_state_bytes"] >= 8 * r["trainable"]  # AdamW: two float32 moments per parameter
    assert rows["paper"]["optimizer_state_bytes"] < rows["full"]["optimizer_state_bytes"] / 50


def test_cost112_end_to_end(cost112):
    e = cost112["end_to_end"]
    if not _real_assets():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("In CI the real assets must be present (HFR_ASSETS)")
        assert e["status"] == "skipped" and e["reason"]
        return
    assert e["status"] == "ok", e
    assert e["weights"].startswith("official") and e["run"] == "paper/infonce+distill"
    assert e["images_per_s"] > 0 and e["steps_per_epoch"] >= 1
    assert e["casia"]["identities"] == 360 and e["casia"]["minutes_per_epoch"] > 0


def test_cost112_end_to_end_goes_through_the_experiment(cost112):
    """With the real assets, the official weights are adapted by run(Experiment(LayoutData, Pretrained)), trained
    here (a fresh cache), the epoch timed with the dev validation the experiment runs."""
    e = cost112["end_to_end"]
    if e["status"] == "skipped":
        pytest.skip(e["reason"])
    assert e["trained_here"] and e["lr"] == get_preset("fast").pretrained.lr_grid[0]
    assert e["split_identities"]["train"] == e["identities"] >= e["batch_pairs"]
    assert e["split_identities"]["dev"] >= 2 and e["split_identities"]["eval"] >= 1
    assert "dev rank-1 validation" in e["epoch_includes"] and e["setup_seconds"] > 0


def test_bench_speed_quick(tmp_path):
    result = _run("bench_speed.py", tmp_path / "bench.json")
    assert result["steps"] and result["input"]
    for row in [*result["steps"], *result["input"]]:
        assert row["ms"] > 0, row
    assert {(r["step"], r["option"]) for r in result["steps"]} >= {("baseline", "timm convolutions"),
                                                                   ("method", "+ bf16 autocast")}


def test_bench_cost_quick(tmp_path):
    result = _folder_run("bench_cost.py", tmp_path, "results.json")
    rows = {r["policy"]: r for r in result["training"]}
    assert set(rows) == {p for p in POLICIES if p != "frozen"} | {"paper (teacher forward every step)"}
    assert rows["paper"]["trainable"] == 14_488 and rows["full"]["ratio_to_full"] == pytest.approx(1.0)
    assert all(r["ms_per_step"] > 0 and r["optimizer_state_kb"] > 0 for r in rows.values())
    assert result["env"]["environment"]["torch"] and result["inference"][0]["model"] == "edgeface_xxs"


# ------------------------------------------------------------------------------------------------
# The studies on the embedded data (--quick: the smoke preset), one cache for the module
# ------------------------------------------------------------------------------------------------
def _folder_run(script: str, out: Path, record: str, *extra: str, cache: Path | None = None,
                timeout: int = 600) -> dict:
    """Run a benchmark whose ``--out`` is a folder; its JSON ``record`` (and the .md beside it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HFR_BUILD_WORKERS": "1"}
    if cache is not None:
        env["HFR_CACHE"] = str(cache)
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out), *extra],
                            capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out / record).is_file() and (out / record).with_suffix(".md").is_file()
    return json.loads((out / record).read_text())


@pytest.fixture(scope="module")
def smoke_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("smoke_cache")


def test_seeds_quick_reads_each_seeds_claims(smoke_cache, tmp_path):
    from hfr_tutorial.runs import FULL_RUN, METHOD_RUN

    record = _folder_run("seeds.py", tmp_path, "seeds.json", "--workers", "1", cache=smoke_cache)
    assert record["preset"] == "smoke" and record["seeds"] == [0] and METHOD_RUN in record["runs"]
    seed = record["per_seed"]["0"]
    assert set(seed["claims"]) == set(record["claims"]) and len(record["claims"]) == 7
    for name, value in seed["claims"].items():
        assert value == record["claims"][name]["values"][0]
        lo, hi = seed["intervals"][name]  # each claim with its paired interval
        assert lo <= hi
    assert set(seed["rank1"]) == {"baseline", *record["runs"]}
    assert seed["summary"]["method"] == METHOD_RUN and seed["summary"]["full"] == FULL_RUN
    metrics = json.loads((tmp_path / "seed0" / "metrics.json").read_text())
    assert metrics["schema"] == 2 and (tmp_path / "seed0" / "report.md").is_file()
    assert not (tmp_path / "seed0" / "checkpoints").exists()


def test_policy_study_quick_registers_its_runs_and_evaluates_them_in_one_experiment(smoke_cache, tmp_path):
    from hfr_tutorial.runs import STAND_IN, get_run

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from policy_study import AUTO, HAND_PICKED

    record = _folder_run("policy_study.py", tmp_path, "policy_study.json", "--workers", "1", cache=smoke_cache)
    assert list(record["policies"]) == [*HAND_PICKED, AUTO] and record["auto_policy"].startswith("groups:")
    assert record["experiment"]["runs"] == [r["run"] for r in record["policies"].values()]
    for label, r in record["policies"].items():
        assert r["run"] == f"{r['policy']}/infonce+distill"
        assert set(r["eval"]) >= {"vis->vis", "nir->vis", "thermal->vis"} and r["trainable"] <= r["total"]
        lo, hi = r["intervals"]["nir->vis"]["rank1"]
        assert lo <= r["eval"]["nir->vis"]["rank1"] <= hi
        assert isinstance(r["gap_recovered"]["nir->vis"], float) and len(r["gap_recovered_interval"]["nir->vis"]) == 2
        if label in ("layernorm", "paper", "full"):  # the registered runs keep the rate chosen by dev_selection.py
            assert r["sweep"] == "registered rate" and r["lr"] == get_run(r["run"]).rates[STAND_IN]
        else:
            assert r["lr"] in [float(x.split(":")[0]) for x in r["sweep"].split(", ")]
    assert record["policies"]["paper"]["trainable"] == record["budget"] >= record["policies"][AUTO]["trainable"]
    paper, auto = record["policies"]["paper"]["eval"], record["policies"][AUTO]["eval"]
    assert record["auto_minus_paper"]["nir->vis"]["value"] == pytest.approx(auto["nir->vis"]["rank1"]
                                                                            - paper["nir->vis"]["rank1"])


def test_dev_selection_and_recipe_choices_quick_read_dev_only(smoke_cache, tmp_path):
    from hfr_tutorial.runs import METHOD_RUN

    selection = _folder_run("dev_selection.py", tmp_path, "selection.json", cache=smoke_cache)
    assert list(selection["sweeps"]) == [METHOD_RUN] and selection["method"] == METHOD_RUN
    sweep = selection["sweeps"][METHOD_RUN]
    assert [c["chosen"] for c in sweep["candidates"].values()].count(True) == 1
    assert f"{sweep['chosen_lr']:.0e}" in sweep["candidates"]
    choices = _folder_run("recipe_choices.py", tmp_path, "choices.json", cache=smoke_cache)
    assert set(choices["choices"]) == {"oracle_augment", "adapt_augment_vis"}
    for entry in choices["choices"].values():
        assert entry["chosen"] in entry["candidates"] and len(entry["candidates"]) == 2


def test_identity_checks_quick(smoke_cache, tmp_path):
    result = _folder_run("identity_checks.py", tmp_path, "results.json", cache=smoke_cache)
    assert result["split"] == "dev" and set(result["rank1"]) == {"baseline", "baseline, grey VIS", "joint/oracle"}
    assert (tmp_path / "synthetic_grid.png").is_file()


@pytest.fixture(scope="module")
def data_efficiency(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("data_efficiency")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HFR_CACHE": str(out / "cache")}  # module scope: set it here
    cmd = [sys.executable, str(ROOT / "benchmarks" / "data_efficiency.py"), "--quick", "--out", str(out),
           "--workers", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "data_efficiency.json").read_text()), out


def test_data_efficiency_quick_covers_its_grid_at_one_step_budget(data_efficiency):
    record, out = data_efficiency
    assert (out / "data_efficiency.md").is_file() and (out / "data_efficiency.png").stat().st_size > 10_000
    points = record["points"]
    expected = {(axis, n, k, m, s) for axis, n, k in [("identities", 8, 3), ("identities", 64, 3), ("pairs", 8, 1),
                                                       ("pairs", 8, 3)]
                for m in record["models"] for s in record["seeds"]}
    assert {(p["axis"], p["n_identities"], p["pairs_per_identity"], p["model"], p["seed"]) for p in points} == expected
    for p in points:
        assert p["steps"] == record["adapt_steps"]  # fewer identities: more epochs, the same steps
        assert p["batch_size"] == min(32, p["n_identities"])
        assert set(p["rank1"]) == {"vis->vis", "nir->vis", "thermal->vis"}
    # seeds draw different identities: the 8-identity runs of two seeds differ
    r1 = {p["seed"]: p["rank1"]["nir->vis"] for p in points if p["n_identities"] == 8 and p["pairs_per_identity"] == 3
          and p["model"] == "method"}
    assert r1[0] != r1[1]
    rows = {(s["model"], s["axis"], s["n_identities"], s["pairs_per_identity"], s["protocol"]): s
            for s in record["summary"]["table"]}
    s = rows[("method", "identities", 8, 3, "nir->vis")]
    assert s["seeds"] == 2 and s["low"] <= s["mean"] <= s["high"]


def test_data_efficiency_refuses_a_bad_grid_before_training(tmp_path):
    for extra, words in ((["--identities", "0", "64"], "out of range"), (["--identities", "8", "16"], "must end at"),
                         (["--pairs", "1"], "must include every image")):
        result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "data_efficiency.py"), "--quick",
                                 "--out", str(tmp_path), *extra], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert result.returncode != 0 and words in result.stderr, result.stderr[-2000:]
        assert not (tmp_path / "data_efficiency.json").exists()


def _efficiency(out: Path, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HFR_CACHE": str(out / "cache")}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "data_efficiency.py"), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def layout_efficiency(smoke_layout, tmp_path_factory) -> tuple[dict, Path]:
    root, ckpt = smoke_layout
    out = tmp_path_factory.mktemp("layout_efficiency")
    result = _efficiency(out, "--quick", "--data", str(root), "--model", str(ckpt), "--identities", "8", "64",
                         "--pairs", "1", "3", "--pairs-at", "8", "--workers", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "data_efficiency.json").read_text()), out


def test_data_efficiency_on_a_layout_and_a_checkpoint(layout_efficiency, smoke_layout):
    """--data/--model: the user's layout and pretrained model, the rate chosen on dev once per model."""
    record, out = layout_efficiency
    root, ckpt = smoke_layout
    assert record["data"]["kind"] == "layout" and record["data"]["starting_model"]["checkpoint"] == str(ckpt)
    assert record["models"] == ["method", "full"] and record["baseline_name"] == "edgeface_xxs before adaptation"
    assert (out / "data_efficiency.png").stat().st_size > 10_000
    assert "edgeface_xxs before adaptation" in (out / "data_efficiency.md").read_text()
    points = record["points"]
    assert {(p["n_identities"], p["pairs_per_identity"]) for p in points} == {(8, 3), (64, 3), (8, 1)}
    for p in points:
        assert p["steps"] == record["adapt_steps"] and p["lr"] == record["lr"][p["model"]]
        assert set(p["rank1"]) == set(record["protocols"]) == {"vis->vis", "nir->vis", "thermal->vis"}
    for model, choice in record["lr_selection"].items():
        grid = list(get_preset("smoke").pretrained.lr_grid)  # every rate of the recipe was tried on dev
        assert [c["lr"] for c in choice["candidates"]] == grid and choice["lr"] in grid
        assert choice["lr"] == record["lr"][model]
    # the top point at seed 0 is the model the rate was chosen with; seed 1 trains in another order
    top = {p["seed"]: p["rank1"]["nir->vis"] for p in points if p["model"] == "method" and p["n_identities"] == 64}
    assert top[0] != top[1]
    # every point is an experiment of the main job's path; the top point at seed 0 is the model the rate was chosen
    # with, loaded from the cache
    choice = json.loads((out / "points" / "lr-choice" / "metrics.json").read_text())
    assert choice["schema"] == 2
    top0 = next(p for p in points if p["model"] == "method" and p["n_identities"] == 64 and p["seed"] == 0)
    assert top0["from_cache"]


def test_data_efficiency_on_a_layout_refuses_bad_input_before_training(smoke_layout, tmp_path):
    root, ckpt = smoke_layout
    cases = ((["--data", str(tmp_path / "nowhere")], "not a folder"),
             (["--data", str(root), "--model", str(ckpt), "--models", "oracle"], "embedded world only"),
             (["--data", str(root), "--model", str(ckpt), "--identities", "8", "65"], "out of range"),
             (["--data", str(root), "--model", str(ckpt), "--lr", "-1"], "finite number in (0, 1]"),
             (["--data", str(root), "--model", str(tmp_path / "missing.pt")], "missing.pt"),
             (["--lr", "0.001"], "need --data"), (["--model", "edgeface_xxs"], "need --data"))
    for extra, words in cases:
        result = _efficiency(tmp_path, "--quick", *extra, timeout=120)
        assert result.returncode != 0 and words in result.stderr, (extra, result.stderr[-2000:])
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "data_efficiency.json").exists() and not (tmp_path / "cache").exists()


@pytest.mark.assets
def test_data_efficiency_with_the_real_weights_on_real_photos(assets, tmp_path):
    """The real edgeface_xxs on a layout of real photos (pseudo NIR/thermal): the same command, tiny grid."""
    from hfr_tutorial.data.detect import detector_available

    if not detector_available():
        pytest.skip("dlib-bin / face-recognition-models are not installed")
    layout = tmp_path / "real"
    subprocess.run([sys.executable, str(ROOT / "data_scripts" / "prepare_folder.py"), "--source",
                    str(assets / "photos" / "deepface9"), str(assets / "faces" / "dlib_johns"), "--out", str(layout),
                    "--pseudo", "nir,thermal", "--split", "0.5,0.2,0.3", "--no-progress"], check=True,
                   capture_output=True)
    result = _efficiency(tmp_path / "out", "--quick", "--data", str(layout), "--model", "edgeface_xxs",
                         "--models", "method", "--seeds", "0", "--workers", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "data_efficiency.json").read_text())
    assert record["data"]["starting_model"]["variant"] == "edgeface_xxs"
    assert record["baseline"]["vis->vis"] > 0.9  # aligned real faces, real weights
    assert record["identities"][-1] == max(p["n_identities"] for p in record["points"]) >= 2


def test_default_identities_axis_ends_at_the_whole_split_and_spreads_on_a_small_set():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from data_efficiency import default_identities

    assert default_identities(400) == [10, 25, 50, 100, 200, 400]
    assert default_identities(360) == [10, 25, 50, 100, 200, 360]  # a CASIA-sized training split
    assert default_identities(11) == [2, 3, 6, 11]  # the real photos of HFR_ASSETS: a curve, not two points
    assert default_identities(2) == [2]


def test_data_efficiency_carves_dev_from_a_layout_without_one_and_says_so(smoke_layout, tmp_path):
    """A protocol with no dev split: the main job's rule holds out a fifth of the training identities as dev, so the
    identities axis ends below the protocol's training identities; the refusal says why."""
    import shutil

    root, ckpt = smoke_layout
    nodev = tmp_path / "nodev"
    shutil.copytree(root, nodev)
    csv = nodev / "protocols" / "default.csv"
    csv.write_text("".join("train," + line[4:] if line.startswith("dev,") else line
                           for line in csv.read_text().splitlines(keepends=True)))
    result = _efficiency(tmp_path / "out", "--quick", "--data", str(nodev), "--model", str(ckpt),
                         "--identities", "8", "80", "--pairs", "1", "3", timeout=120)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "16 training identities held out as dev" in result.stderr and "give 2..64" in result.stderr, result.stderr

"""Reliability of the run path (issue #27, items 1, 7, 8, 11 and 12): each case refused or handled with a clear
error before long work, leaving nothing half-written. Each test fails on the code before the one experiment path."""
from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from hfr_tutorial.__main__ import main as cli
from hfr_tutorial.config import cache_fix


class _Planted:
    """A pickle that runs code when unpickled (what a writable shared cache could be given)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def test_a_planted_checkpoint_in_the_cache_runs_no_code(tmp_path):
    """Item 1: a cache entry's checkpoint is read with weights_only=True; a pickle with code is ignored."""
    from hfr_tutorial.train.loop import CHECKPOINT_NAME, CHECKPOINT_RECORD, load_checkpoint

    marker = tmp_path / "pwned"
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save({"modules": _Planted(str(marker))}, folder / CHECKPOINT_NAME)
    digest = hashlib.sha256((folder / CHECKPOINT_NAME).read_bytes()).hexdigest()
    fingerprint = {"kind": "adapt"}
    (folder / CHECKPOINT_RECORD).write_text(json.dumps({"fingerprint": fingerprint, "epoch": 0, "history": [],
                                                       "weights_sha256": digest}))
    assert load_checkpoint(folder, fingerprint) is None
    assert not marker.exists()


def test_batch_size_one_is_refused(tmp_path, capsys):
    """Item 7: a batch of one identity has no negative: refused, never reported under the method's name."""
    assert cli(["run", "--preset", "smoke", "--batch-size", "1", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "no negative pair" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_a_contrastive_loss_refuses_a_batch_of_one_pair():
    from hfr_tutorial.losses import CrossModalInfoNCE, PairwiseContrastiveLoss

    one = torch.randn(1, 8)
    for loss in (CrossModalInfoNCE(), PairwiseContrastiveLoss()):
        with pytest.raises(ValueError, match="no negative"):
            loss(one, one, torch.zeros(1))


def test_a_rerun_with_other_settings_needs_overwrite(tmp_path, capsys):
    """Item 8: --out holding another experiment's result (here another seed) is refused without --overwrite."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"schema": 2, "fingerprint": "seed-1-run", "preset": "smoke",
                                                  "seed": 1, "runs": {}}))
    assert cli(["run", "--preset", "smoke", "--seed", "0", "--out", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text())["fingerprint"] == "seed-1-run"


def test_ctrl_c_during_a_run_exits_130_and_leaves_out_as_it_was(tmp_path, capsys, monkeypatch):
    """Items 8 and 11: SIGINT (KeyboardInterrupt) during a run: a message, exit 130, no partial folder."""
    from hfr_tutorial.experiment import runner

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "build_missing", interrupted)
    assert cli(["run", "--preset", "smoke", "--out", str(tmp_path / "o"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resumes" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.partial-*"))


def test_a_full_disk_during_a_run_names_the_problem_and_leaves_no_tmp(tmp_path, capsys, monkeypatch):
    """Item 11: ENOSPC while a model is saved: exit 2 naming the disk, no .tmp in the cache, --out untouched."""
    from hfr_tutorial import artifacts

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts.torch, "save", full)
    cache = Path(os.environ["HFR_CACHE"])
    assert cli(["run", "--preset", "smoke", "--runs", "paper/infonce", "--out", str(tmp_path / "o"), "--quiet",
                "--build-workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "space" in err.split("error:")[1]
    assert not list(cache.rglob("*.tmp")) and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,match", [
    (["--seed", "-1"], "--seed -1"), (["--lr", "1e9"], "--lr"), (["--epochs", "0"], "--epochs 0"),
])
def test_bad_settings_are_refused_before_the_model_is_read(tmp_path, capsys, smoke_layout, argv, match):
    """Item 12: the setting is named, before the (here not even valid) checkpoint is read or any work starts."""
    root, _ = smoke_layout
    not_a_model = tmp_path / "photo.pt"
    not_a_model.write_bytes(b"\xff\xd8\xff\xe0 JPEG")
    assert cli(["run", "--data", str(root), "--model", str(not_a_model), "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and "JPEG" not in err


def test_bf16_on_a_cpu_is_refused_and_named(tmp_path, capsys):
    """Item 12: --bf16 was applied on a CPU and recorded nowhere; now refused with the reason."""
    assert cli(["run", "--preset", "smoke", "--bf16", "--device", "cpu", "--out", str(tmp_path / "o")]) == 2
    assert "--bf16 applies to CUDA" in capsys.readouterr().err


def test_a_read_only_home_is_not_suggested_again(monkeypatch):
    """Item 12: the fix for an unwritable default cache must not point at the same place under HOME."""
    assert "$HOME" not in cache_fix() and "HFR_CACHE=" in cache_fix()


def test_a_diverged_loss_names_the_command_line_knob():
    """Item 11: the hint of TrainingDiverged names --lr, not a library call."""
    from hfr_tutorial.train.loop import TrainingDiverged, check_finite

    with pytest.raises(TrainingDiverged, match="--lr"):
        check_finite(torch.tensor(float("nan")), 0, 0, 0, 1e9, "paper/infonce+distill")

"""Bad data and injected faults (issue #15): each ends in a correct result or a clear error, nothing half-written.

Faults are injected rather than staged with chmod, so the tests mean the same as root (CI
containers) and as a user: :func:`deny_writes` makes a folder read-only for this process,
:func:`deny_reads` makes one file unreadable, :func:`fail_after` makes the n-th call of a
function raise (a full disk, a corrupt source image).  The concurrent-cache cases run a second
builder in a thread and in a second process.
"""
from __future__ import annotations

import builtins
import csv
import errno
import io
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from hfr_tutorial import artifacts
from hfr_tutorial.artifacts import load_faceset
from hfr_tutorial.cache import entry_dir, entry_lock, lock_holder, lock_path, payload_key
from hfr_tutorial.config import CacheError, get_preset
from hfr_tutorial.data import FaceSet, synthetic_faceset
from hfr_tutorial.data.imageio import to_rgb8
from hfr_tutorial.data.layout import LayoutError, load_image, read_layout, validate_layout, write_layout
from hfr_tutorial.models import CheckpointError, create_edgeface, load_edgeface, read_checkpoint
from hfr_tutorial.train import AdaptSettings, TrainResult

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from data_scripts import _common  # noqa: E402
from data_scripts._common import DatasetError, Item  # noqa: E402

TINY = get_preset("smoke").replace(name="tiny", data__n_train_ids=8, data__n_dev_ids=4, data__n_eval_ids=4,
                                   data__images_per_modality=2, data__image_size=32)
SMALL = get_preset("fast").replace(data__n_train_ids=4, data__n_dev_ids=1, data__n_eval_ids=2,
                                   data__images_per_modality=2, data__image_size=32)


# ---------------------------------------------------------------------- fault injection

def _under(path, root: Path) -> bool:
    if isinstance(path, int):
        return False
    try:
        return Path(os.path.abspath(os.fspath(path))).is_relative_to(root)
    except TypeError:
        return False


def _denied(path) -> PermissionError:
    return PermissionError(errno.EACCES, "Permission denied", str(path))


def deny_writes(monkeypatch, root: Path) -> None:
    """Make ``root`` read-only for this process: creating, writing, renaming or deleting under it fails."""
    root = Path(os.path.abspath(root))
    real_open, real_os_open = builtins.open, os.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and _under(file, root):
            raise _denied(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & writing and _under(path, root) and "dir_fd" not in kwargs:
            raise _denied(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guard(real):
        def fake(*paths, **kwargs):
            if any(_under(p, root) for p in paths[:2] if not isinstance(p, int)):
                raise _denied(paths[0])
            return real(*paths, **kwargs)
        return fake

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    for name in ("mkdir", "unlink", "remove", "rmdir", "replace", "rename"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))


def deny_reads(monkeypatch, target: Path) -> None:
    """Make one file unreadable for this process (what a permission-denied image looks like)."""
    target = Path(os.path.abspath(target))
    real_open = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and Path(os.path.abspath(os.fspath(file))) == target:
            raise _denied(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)


def fail_after(monkeypatch, owner, name: str, n: int, error: BaseException) -> None:
    """Let ``owner.name`` work ``n`` times, then raise ``error`` (a disk that fills up, a file that breaks)."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def fake(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, fake)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to show a folder is exactly as it was)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------- layouts

@pytest.fixture(scope="module")
def fs():
    return synthetic_faceset(SMALL, seed=0, progress=False)


@pytest.fixture()
def layout(fs, tmp_path):
    return write_layout(fs, tmp_path / "lay")


def _rows(path):
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _write_rows(path, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.DictWriter(fh, fieldnames=["split", "role", "identity", "modality", "path"], lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)


def _refused_everywhere(root, match):
    """The reader and validate_layout (headers only and decoding) refuse the layout with the same reason."""
    for check in (lambda: read_layout(root), lambda: validate_layout(root, decode=False),
                  lambda: validate_layout(root, decode=True)):
        with pytest.raises(LayoutError, match=match):
            check()


def test_16_bit_png_in_a_layout_is_scaled_like_the_converters_scale_it(layout):
    rows = _rows(layout / "protocols" / "default.csv")
    f = layout / rows[0]["path"]
    grey = np.asarray(Image.open(f).convert("L"), dtype=np.uint16)
    Image.fromarray(grey * 257).save(f)  # the same face as a 16-bit sensor saves it
    assert Image.open(f).mode.startswith("I")
    img = read_layout(layout).images[0]
    assert np.array_equal(img, np.repeat(grey[:, :, None], 3, axis=2).astype(np.uint8))  # not clipped to 0/255
    assert np.array_equal(load_image(f), _common.read_image(f))  # one rule for the reader and the converters
    with Image.open(f) as im:
        assert np.array_equal(to_rgb8(im), img)


def test_write_layout_overwrite_replaces_the_old_protocols_and_images(fs, layout):
    old = FaceSet.from_layout(layout)
    small = FaceSet(fs.images[:10], fs.identities[:10], fs.modalities[:10], identity_names=fs.identity_names)
    write_layout(small, layout, overwrite=True)
    back = FaceSet.from_layout(layout)
    assert len(old) == len(fs) and len(back) == 10  # not the previous layout under the new name
    assert not (layout / "protocols" / "default.csv").exists()
    assert len(list((layout / "images").rglob("*.png"))) == 10


def test_write_layout_that_fails_midway_leaves_the_old_layout_intact(fs, layout, monkeypatch):
    before = tree(layout)
    other = FaceSet(255 - fs.images, fs.identities, fs.modalities, splits=fs.splits, identity_names=fs.identity_names)
    fail_after(monkeypatch, Image.Image, "save", 5, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="No space left"):
        write_layout(other, layout, overwrite=True)
    assert tree(layout) == before
    assert sorted(p.name for p in layout.parent.iterdir()) == ["lay"]  # no temporary folder left behind


def test_write_layout_into_a_folder_a_killed_write_left(fs, tmp_path):
    (tmp_path / ".lay.partial" / "images").mkdir(parents=True)  # what a SIGKILL during a write leaves
    root = write_layout(fs, tmp_path / "lay")
    assert len(FaceSet.from_layout(root)) == len(fs) and not (tmp_path / ".lay.partial").exists()


def test_protocol_with_only_its_header_is_refused(layout):
    _write_rows(layout / "protocols" / "default.csv", [])
    _refused_everywhere(layout, r"default\.csv: has a header but no rows")


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_protocol_paths_must_stay_inside_the_root(layout, where):
    rows = _rows(layout / "protocols" / "default.csv")
    outside = layout.parent / "outside.png"
    Image.open(layout / rows[0]["path"]).save(outside)  # a valid face, just not in the layout
    rows[0]["path"] = "../outside.png" if where == "parent" else str(outside)
    _write_rows(layout / "protocols" / "default.csv", rows)
    _refused_everywhere(layout, r"row 2: path .*outside\.png.* (leaves the layout root|is absolute).*stay inside")


def test_jpeg_data_in_a_png_file_is_refused(layout):
    rows = _rows(layout / "protocols" / "default.csv")
    f = layout / rows[1]["path"]
    Image.open(f).convert("RGB").save(f, format="JPEG", quality=95)
    _refused_everywhere(layout, rf"{f.name}: holds JPEG data, not PNG")


def test_protocol_saved_with_a_bom_and_crlf_is_read(fs, layout):
    path = layout / "protocols" / "default.csv"
    rows = _rows(path)
    _write_rows(path, rows, encoding="utf-8-sig")  # what Excel writes on Windows
    assert path.read_bytes().startswith(b"\xef\xbb\xbfsplit,") and b"\r\n" in path.read_bytes()
    back = read_layout(layout)
    assert np.array_equal(back.splits, fs.splits) and validate_layout(layout)["images"] == len(fs)


def test_dev_eval_leak_is_named_by_validate_layout_and_the_reader(layout):
    path = layout / "protocols" / "default.csv"
    rows = _rows(path)
    dev = next(r for r in rows if r["split"] == "dev")
    ev = next(r for r in rows if r["split"] == "eval" and r["modality"] == dev["modality"])
    ev.update(identity=dev["identity"], path=dev["path"])
    _write_rows(path, rows)
    _refused_everywhere(layout, rf"default\.csv: identities \['{dev['identity']}'\] appear in both 'dev' and 'eval'")


def test_permission_denied_image_says_so(layout, monkeypatch):
    rows = _rows(layout / "protocols" / "default.csv")
    f = layout / rows[2]["path"]
    deny_reads(monkeypatch, f)
    _refused_everywhere(layout, rf"{f.name}: permission denied.*readable")
    with pytest.raises(LayoutError) as err:
        load_image(f)
    assert "permission denied" in str(err.value) and "Re-export" not in str(err.value)


# ---------------------------------------------------------------------- converters

def _converter_args(root: Path, out: Path, overwrite: bool = False) -> Namespace:
    return Namespace(root=root, out=out, size=32, landmarks=None, crop_fraction=1.0, overwrite=overwrite,
                     no_progress=True)


def _fake_dataset(base: Path, fs: FaceSet) -> tuple[Path, dict[str, list]]:
    """A dataset folder of JPEG frames (one per image of ``fs``) and a one-protocol description of it."""
    root = base / "dataset"
    prows = []
    for i in range(len(fs)):
        ident = str(fs.identity_names[fs.identities[i]])
        src = root / ident / f"{fs.modalities[i]}_{i}.jpg"
        src.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fs.images[i]).save(src, quality=95)
        split = "train" if fs.splits[i] == "train" else "eval"
        role = "train" if split == "train" else ("gallery" if fs.modalities[i] == "vis" else "probe")
        prows.append((split, role, Item(src, ident, str(fs.modalities[i]), f"{i:04d}")))
    return root, {"p": prows}


def _finish(args, protocols):
    return _common.finish(args, protocols, default="p", dataset="Fake", converter="test", source="", licence="",
                          alignment="centre crop")


def test_converter_that_fails_midway_leaves_nothing_and_reruns(fs, tmp_path, capsys):
    root, protocols = _fake_dataset(tmp_path, fs)
    broken = protocols["p"][7][2].source
    good = broken.read_bytes()
    broken.write_bytes(good[: len(good) // 3])  # a truncated JPEG, as in a bad download
    out = tmp_path / "layout"
    with pytest.raises(DatasetError, match=rf"(?s){broken.name}.*Nothing was written to --out {out}.*run the same command"):
        _finish(_converter_args(root, out), protocols)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
    broken.write_bytes(good)  # the user re-copies the file and runs the same command again
    assert _finish(_converter_args(root, out), protocols)["images"] == len(fs)
    assert len(FaceSet.from_layout(out)) == len(fs)


def test_converter_overwrite_that_fails_keeps_the_previous_layout(fs, tmp_path, monkeypatch):
    root, protocols = _fake_dataset(tmp_path, fs)
    out = tmp_path / "layout"
    _finish(_converter_args(root, out), protocols)
    before = tree(out)
    fail_after(monkeypatch, Image.Image, "save", 10, KeyboardInterrupt())  # Ctrl-C during the rewrite
    with pytest.raises(KeyboardInterrupt):
        _finish(_converter_args(root, out, overwrite=True), protocols)
    assert tree(out) == before and not (tmp_path / ".layout.partial").exists()


def test_converter_clears_what_an_old_interrupted_run_left_with_overwrite(fs, tmp_path):
    root, protocols = _fake_dataset(tmp_path, fs)
    out = tmp_path / "layout"
    (out / "images" / "vis" / "x").mkdir(parents=True)  # images but no dataset.json: an older converter died
    (out / "images" / "vis" / "x" / "0.png").write_bytes(b"half")
    with pytest.raises(DatasetError, match="no dataset.json.*--overwrite"):
        _finish(_converter_args(root, out), protocols)
    assert _finish(_converter_args(root, out, overwrite=True), protocols)["images"] == len(fs)
    assert not (out / "images" / "vis" / "x").exists()


def test_converter_whose_out_cannot_be_written_exits_2_before_aligning(fs, tmp_path, monkeypatch, capsys):
    root, protocols = _fake_dataset(tmp_path, fs)
    (tmp_path / "ro").mkdir()
    deny_writes(monkeypatch, tmp_path / "ro")
    aligned = []
    monkeypatch.setattr(_common, "warp_to_template", lambda *a, **k: aligned.append(1))
    assert _common.run_cli(lambda argv: _finish(_converter_args(root, tmp_path / "ro" / "layout"), protocols)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'ro'}") and "Permission denied" in err and "--out" in err
    assert not aligned and not any((tmp_path / "ro").iterdir())


def test_write_layout_into_the_current_folder(fs, tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    write_layout(fs, ".")
    assert len(FaceSet.from_layout(tmp_path / "here")) == len(fs) and Path.cwd() == tmp_path / "here"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]


def test_converter_out_inside_root_is_refused(fs, tmp_path):
    root, protocols = _fake_dataset(tmp_path, fs)
    before = tree(root)
    for out in (root / "layout", root):
        with pytest.raises(DatasetError, match=r"--out .* lies inside --root .*Choose an --out outside"):
            _finish(_converter_args(root, out), protocols)
    assert tree(root) == before


# ---------------------------------------------------------------------- settings and checkpoints

@pytest.mark.parametrize("field, value", [("adapt_lr", float("inf")), ("baseline_lr", float("nan")),
                                          ("distill_weight", float("nan")), ("distill_weight", -1.0),
                                          ("distill_weight", float("inf")), ("temperature", 0.0),
                                          ("warmup_fraction", 1.5), ("weight_decay", float("nan"))])
def test_train_config_refuses_non_finite_or_out_of_range_numbers(field, value):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{field}=.* is invalid: .*preset\.replace\(train__{field}="):
        TINY.replace(**{f"train__{field}": value})


@pytest.mark.parametrize("field, value", [("lr", -1.0), ("lr", float("inf")), ("lr", 0.0),
                                          ("distill_weight", float("nan")), ("distill_weight", -0.5),
                                          ("epochs", 0)])
def test_adapt_settings_refuse_rates_and_weights_that_cannot_train(field, value):
    with pytest.raises(ValueError, match=rf"AdaptSettings\.{field}=.* is invalid.*None for the preset"):
        AdaptSettings(**{field: value})
    assert AdaptSettings(distill_weight=0.0).name.endswith("/infonce")  # 0 still switches distillation off


def test_checkpoint_with_nan_weights_is_refused(tmp_path):
    state = create_edgeface("edgeface_xxs").state_dict()
    key = "model.stages.1.blocks.0.conv_dw.weight"
    state[key] = state[key].clone()
    state[key][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "diverged.pt")
    with pytest.raises(CheckpointError, match=rf"diverged\.pt'?: {key} holds 1 NaN or infinite"):
        load_edgeface("edgeface_xxs", tmp_path / "diverged.pt")


def test_checkpoint_folder_says_it_is_a_folder_and_lists_its_files(tmp_path):
    torch.save(create_edgeface("edgeface_xxs").state_dict(), tmp_path / "edgeface_xxs.pt")
    with pytest.raises(IsADirectoryError, match=r"is a folder, not a file; it holds edgeface_xxs\.pt"):
        read_checkpoint(tmp_path)
    (tmp_path / "edgeface_xxs.pt").unlink()
    with pytest.raises(IsADirectoryError, match="holds no .pt file"):
        load_edgeface("edgeface_xxs", tmp_path)


def test_data_parallel_checkpoint_is_accepted(tmp_path):
    model = create_edgeface("edgeface_xxs", seed=3)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "dp.pt")
    loaded = load_edgeface("edgeface_xxs", tmp_path / "dp.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


# ---------------------------------------------------------------------- the cache

def _fake_build(calls: list, seconds: float = 0.0):
    def build(checkpoints: Path) -> TrainResult:
        calls.append(threading.get_ident())
        time.sleep(seconds)
        return TrainResult(create_edgeface("edgeface_xxs", seed=1), pd.DataFrame([{"epoch": 1}]), seconds)
    return build


def _model(calls, seconds=0.0, rebuild=False):
    return artifacts.model_artifact(TINY.name, "fake", "fake", {"kind": "fake"}, "edgeface_xxs", _fake_build(calls, seconds), rebuild)


def test_tampered_images_npy_is_rebuilt_never_used():
    first = load_faceset(TINY, progress=False)
    (entry,) = (entry_dir(TINY.name, "x", "y").parent.parent / "tiny").glob("data-*")
    np.save(entry / "images.npy", np.zeros_like(np.asarray(first.images)))  # same size, every pixel 0
    with pytest.warns(UserWarning, match=r"images\.npy differs from the sha256 .*rebuilding"):
        again = load_faceset(TINY, progress=False)
    assert np.array_equal(np.asarray(again.images), np.asarray(first.images))
    assert isinstance(load_faceset(TINY, progress=False).images, np.memmap)  # and it is a good entry again


def test_tampered_model_weights_are_rebuilt_never_used():
    calls: list = []
    built = _model(calls)
    torch.save({k: torch.zeros_like(v) for k, v in built.model.state_dict().items()}, built.path / "model.pt")
    with pytest.warns(UserWarning, match=r"model\.pt differs from the sha256"):
        again = _model(calls)
    assert not again.from_cache and len(calls) == 2
    assert all(torch.equal(a, b) for a, b in zip(built.model.state_dict().values(), again.model.state_dict().values()))


def test_entry_without_digests_is_rebuilt_never_used():
    calls: list = []
    built = _model(calls)
    meta = json.loads((built.path / "meta.json").read_text())
    del meta["files"]
    (built.path / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="records no digest"):
        assert not _model(calls).from_cache
    assert len(calls) == 2 and "model.pt" in json.loads((built.path / "meta.json").read_text())["files"]


def test_two_builders_of_one_entry_build_it_once(capfd):
    calls: list = []
    results: dict[str, artifacts.Artifact] = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, _model(calls, seconds=1.0)))
               for n in ("a", "b")]
    for t in threads:
        t.start()
        time.sleep(0.2)
    for t in threads:
        t.join(60)
    assert len(calls) == 1 and sorted(r.from_cache for r in results.values()) == [False, True]
    err = capfd.readouterr().err
    assert f"is being built by pid {os.getpid()}" in err and "fake-" in err and "waiting" in err


def test_second_process_waits_for_the_entry_and_loads_what_the_first_built(tmp_path):
    preset = TINY
    entry = entry_dir(preset.name, "data", payload_key(artifacts.data_payload(preset, 0)))
    script = ("import numpy as np; from hfr_tutorial.artifacts import load_faceset; from hfr_tutorial.config import "
              "get_preset; p = get_preset('smoke').replace(name='tiny', data__n_train_ids=8, data__n_dev_ids=4, "
              "data__n_eval_ids=4, data__images_per_modality=2, data__image_size=32); "
              "fs = load_faceset(p, progress=False); print('from-cache', isinstance(fs.images, np.memmap))")
    with entry_lock(entry):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=dict(os.environ))
        waiting = _read_until(child.stderr, "is being built by", seconds=120)
        assert f"pid {os.getpid()}" in waiting and entry.name in waiting
        load_faceset(preset, progress=False)  # this process builds it while the other waits
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert "from-cache True" in out and "Traceback" not in err


def _read_until(stream, text: str, seconds: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    seen, deadline = "", time.monotonic() + seconds
    while text not in seen and time.monotonic() < deadline:
        if sel.select(timeout=1):
            line = stream.readline()
            if not line:
                break
            seen += line
    assert text in seen, seen
    return seen


def test_stale_lock_of_a_dead_run_is_taken_over_at_once():
    entry = entry_dir(TINY.name, "x", "y").parent.parent / "tiny" / "fake-0"
    lock_path(entry).parent.mkdir(parents=True, exist_ok=True)
    lock_path(entry).write_text(json.dumps({"pid": 2 ** 22 + 1, "host": "gone", "since": "yesterday"}))
    start = time.monotonic()
    with entry_lock(entry, timeout=5):
        assert time.monotonic() - start < 2
        assert lock_holder(entry).startswith(f"pid {os.getpid()} ")


def test_lock_held_too_long_names_the_holder():
    entry = entry_dir(TINY.name, "x", "y").parent.parent / "tiny" / "fake-1"
    held, release = threading.Event(), threading.Event()

    def hold():
        with entry_lock(entry):
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        with pytest.raises(TimeoutError, match=rf"still held by pid {os.getpid()} .*Wait for that run"):
            with entry_lock(entry, timeout=0.5):
                pass
    finally:
        release.set()
        t.join(10)


def test_hfr_cache_pointing_at_a_file_names_the_setting(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("HFR_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CacheError, match=r"HFR_CACHE=.*cache.* is a file.*Point HFR_CACHE at a folder"):
        load_faceset(TINY, progress=False)


def test_read_only_cache_serves_its_entries_and_names_a_missing_one(monkeypatch):
    load_faceset(TINY, progress=False)
    calls: list = []
    _model(calls)
    cache = entry_dir(TINY.name, 'x', 'y').parent.parent
    deny_writes(monkeypatch, cache)
    assert isinstance(load_faceset(TINY, progress=False).images, np.memmap)  # what it holds still loads
    assert _model(calls).from_cache
    with pytest.raises(CacheError, match=r"HFR_CACHE=.* is not writable.*data-.* is missing.*Point HFR_CACHE at"):
        load_faceset(TINY.replace(data__n_eval_ids=5), progress=False)
    with pytest.raises(CacheError, match=r"not writable.*is missing"):
        artifacts.model_artifact(TINY.name, "fake", "fake", {"kind": "other"}, "edgeface_xxs", _fake_build(calls), False)
    assert len(calls) == 1

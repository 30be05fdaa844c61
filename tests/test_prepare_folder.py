"""data_scripts/prepare_folder.py: a user's own photos -> the standard layout (detect, align, simulate, split)."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from data_scripts import prepare_folder  # noqa: E402
from data_scripts._common import DatasetError  # noqa: E402
from hfr_tutorial.data import FaceSet, synthetic_identity_images  # noqa: E402
from hfr_tutorial.data.detect import detector_available, five_points  # noqa: E402
from hfr_tutorial.data.layout import validate_layout  # noqa: E402

needs_dlib = pytest.mark.skipif(not detector_available(), reason="dlib-bin / face-recognition-models not installed")
REFERENCE_AUC = {"dlib_johns": 0.900, "bbt8_faceapi": 0.694}  # shared/assets/README.md, whole image resized


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(folder).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


@pytest.fixture()
def crops(tmp_path):
    """<source>/<identity>/<n>.png: synthetic face crops of 6 identities, 3 each (no detector needed)."""
    src = tmp_path / "photos"
    for i in range(6):
        imgs = synthetic_identity_images(i, n=3, size=64, seed=1)["vis"]
        for k, img in enumerate(imgs):
            (src / f"person{i}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(src / f"person{i}" / f"{k}.png")
    (src / "README.txt").write_text("not an image")
    return src


def test_crops_become_a_layout_with_pseudo_modalities_and_protocol(crops, tmp_path, capsys):
    before = _digest(crops)
    out = tmp_path / "layout"
    info = prepare_folder.main(["--source", str(crops), "--out", str(out), "--detector", "none",
                                "--pseudo", "nir,thermal", "--split", "0.34,0.33,0.33", "--no-progress"])
    assert _digest(crops) == before  # the source is never written to
    assert info["modalities"] == ["vis", "nir", "thermal"] and info["simulated_modalities"] == ["nir", "thermal"]
    assert info["splits"] == {"train": 2, "dev": 2, "eval": 2}
    assert any("1 file(s) that are not images" in n for n in info["notes"])
    validate_layout(out)
    fs = FaceSet.from_layout(out)
    ev = fs.select(split="eval")
    assert (ev.roles[ev.modalities == "vis"] == "gallery").sum() == 2  # one template per eval identity
    assert set(ev.roles[ev.modalities != "vis"]) == {"probe"}
    # simulated probes come from the non-gallery photos only: 2 per identity and modality
    assert (ev.modalities == "thermal").sum() == 4
    assert not (out.parent / "layout.partial").exists()
    rerun = prepare_folder.main(["--source", str(crops), "--out", str(out), "--detector", "none",
                                 "--pseudo", "nir,thermal", "--split", "0.34,0.33,0.33", "--no-progress"])
    assert rerun == info and "up to date" in capsys.readouterr().out  # idempotent
    with pytest.raises(DatasetError, match="--overwrite"):
        prepare_folder.main(["--source", str(crops), "--out", str(out), "--detector", "none", "--no-progress"])


def test_an_interrupted_run_resumes(crops, tmp_path, monkeypatch):
    out = tmp_path / "layout"
    args = ["--source", str(crops), "--out", str(out), "--detector", "none", "--split", "0.34,0.33,0.33",
            "--no-progress"]
    calls = {"n": 0}
    real = prepare_folder.warp_to_template

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(prepare_folder, "warp_to_template", dying)
    with pytest.raises(KeyboardInterrupt):
        prepare_folder.main(args)
    assert not out.exists() and (tmp_path / "layout.partial" / "progress.jsonl").is_file()
    monkeypatch.setattr(prepare_folder, "warp_to_template", real)
    aligned = {"n": 0}
    monkeypatch.setattr(prepare_folder, "warp_to_template", lambda *a, **k: (aligned.__setitem__("n", aligned["n"] + 1),
                                                                            real(*a, **k))[1])
    prepare_folder.main(args)
    assert aligned["n"] == 18 - 6  # the six photos done before the interruption are not redone
    assert len(FaceSet.from_layout(out)) == 18


def test_bad_inputs_are_refused_before_work(crops, tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        prepare_folder.main(["--source", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    with pytest.raises(DatasetError, match="inside"):
        prepare_folder.main(["--source", str(crops), "--out", str(crops / "layout"), "--detector", "none"])
    with pytest.raises(DatasetError, match="cannot be simulated"):
        prepare_folder.main(["--source", str(crops), "--out", str(tmp_path / "o"), "--pseudo", "xray"])
    with pytest.raises(DatasetError, match="add up to 1"):
        prepare_folder.main(["--source", str(crops), "--out", str(tmp_path / "o"), "--split", "0.5,0.5,0.5"])
    (crops / "person0" / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match="(?s)broken.jpg.*--skip-unreadable"):
        prepare_folder.main(["--source", str(crops), "--out", str(tmp_path / "o"), "--detector", "none"])
    assert not (tmp_path / "o").exists()
    info = prepare_folder.main(["--source", str(crops), "--out", str(tmp_path / "o"), "--detector", "none",
                                "--skip-unreadable", "--split", "0.34,0.33,0.33", "--no-progress"])
    assert any("broken.jpg" in n and "left out" in n for n in info["notes"])


@needs_dlib
def test_no_face_anywhere_is_an_error_and_one_miss_is_listed(crops, tmp_path):
    noise = tmp_path / "noise"
    for i in range(2):
        (noise / f"p{i}").mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.random.default_rng(k + 10 * i).integers(0, 255, (120, 120, 3), dtype=np.uint8)).save(
                noise / f"p{i}" / f"{k}.png")
    with pytest.raises(DatasetError, match="No face was found in any of the 4 photos"):
        # --split 1,0,0: two identities cannot fill dev and eval, which is checked (and refused) before alignment
        prepare_folder.main(["--source", str(noise), "--out", str(tmp_path / "o"), "--split", "1,0,0", "--no-progress"])


def test_five_points_from_68():
    pts = np.zeros((68, 2))
    pts[36:42] = [60, 40]  # the subject's right eye sits on the image's right here (a mirrored face)
    pts[42:48] = [30, 41]
    pts[30], pts[48], pts[54] = [45, 60], [55, 80], [35, 80]
    assert np.allclose(five_points(pts), [[30, 41], [60, 40], [45, 60], [35, 80], [55, 80]])


@pytest.mark.assets
@needs_dlib
def test_real_photos_are_found_aligned_and_beat_the_reference_auc(assets, tmp_path):
    """The acceptance figures of issue #13: every deepface9 photo detected; aligned AUC >= the README's reference."""
    from hfr_tutorial.evaluate import all_pairs_verification, embed
    from hfr_tutorial.models import find_checkpoint, load_edgeface

    model = load_edgeface("edgeface_xxs", find_checkpoint("edgeface_xxs"))
    info = prepare_folder.main(["--source", str(assets / "photos" / "deepface9"), "--out", str(tmp_path / "d9"),
                                "--split", "1,0,0", "--no-progress"])
    assert info["alignment_counts"] == {"detected": 25, "centre-crop": 0}
    for name, reference in REFERENCE_AUC.items():
        prepare_folder.main(["--source", str(assets / "faces" / name), "--out", str(tmp_path / name),
                             "--split", "1,0,0", "--no-progress"])
        fs = FaceSet.from_layout(tmp_path / name)
        auc = all_pairs_verification(embed(model, fs, progress=False), fs.identities)["auc"]
        assert auc >= reference, f"{name}: aligned AUC {auc:.3f} below the whole-image reference {reference}"

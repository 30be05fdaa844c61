"""data_scripts/: each converter on a miniature fake copy of its dataset, laid out as the owners publish it.

Every fake copy has a few identities of synthetic faces saved in the dataset's own formats (JPEG,
BMP, 16-bit PNG) with protocol lists and annotation files in the documented formats.  The tests
run the converter's ``main``, read the result with ``FaceSet.from_layout`` and check identities,
modalities, splits, protocol rows, that no identity leaks between train and test, and that a
wrong ``--root`` fails with a message naming what was expected.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.transform import SimilarityTransform, warp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from data_scripts import _common, casia_nir_vis2, mcxface, polathermal, scface, tufts  # noqa: E402
from data_scripts._common import DatasetError  # noqa: E402
from hfr_tutorial.data import FaceSet, synthetic_identity_images  # noqa: E402
from hfr_tutorial.data.align import template  # noqa: E402
from hfr_tutorial.data.layout import LayoutError  # noqa: E402

N_FACES = 10


@pytest.fixture(scope="module")
def faces():
    """{identity index: {modality: (images (3, 48, 48, 3), landmarks (3, 5, 2))}} of synthetic faces."""
    return {i: synthetic_identity_images(i, n=3, size=48, seed=7, return_landmarks=True) for i in range(N_FACES)}


def place(face: np.ndarray, lms: np.ndarray, shape: tuple[int, int], eyes: np.ndarray) -> np.ndarray:
    """A (H, W, 3) uint8 frame showing ``face`` moved so its eyes land on ``eyes`` (a similarity)."""
    src = np.asarray(lms[:2], np.float64)
    tform = SimilarityTransform.from_estimate(src, np.asarray(eyes, np.float64)) \
        if hasattr(SimilarityTransform, "from_estimate") else SimilarityTransform()
    if not hasattr(SimilarityTransform, "from_estimate"):
        tform.estimate(src, np.asarray(eyes, np.float64))
    out = warp(face.astype(np.float64), tform.inverse, output_shape=shape + (3,), mode="edge", preserve_range=True)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def grey(img: np.ndarray) -> np.ndarray:
    return img.mean(axis=2).round().astype(np.uint8)


def protocol(out: Path, name: str) -> list[dict[str, str]]:
    with open(out / "protocols" / f"{name}.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def ids_of(rows, **match) -> set[str]:
    return {r["identity"] for r in rows if all(r[k] == v for k, v in match.items())}


def assert_no_leak(rows) -> None:
    train = ids_of(rows, split="train")
    for split in ("dev", "eval"):
        assert not train & ids_of(rows, split=split)
    assert not ids_of(rows, split="dev") & ids_of(rows, split="eval")


def sources(out: Path) -> list[dict[str, str]]:
    with open(out / "sources.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------- shared machinery

def test_eye_alignment_puts_the_eyes_on_the_template():
    img = np.zeros((120, 160, 3), np.uint8)
    eyes = np.array([[92.0, 58.0], [50.0, 50.0]])  # given right-to-left: the order must not matter
    for x, y in eyes:
        img[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 255
    face = _common.warp_to_template(img, eyes, 112)
    t = template(112)[:2]
    g = face[:, :, 0].astype(float)
    for tx, ty in t:
        patch = g[int(ty) - 4:int(ty) + 5, int(tx) - 4:int(tx) + 5]
        iy, ix = np.unravel_index(np.argmax(patch), patch.shape)
        assert abs(int(ty) - 4 + iy - ty) <= 1.5 and abs(int(tx) - 4 + ix - tx) <= 1.5
    lms = _common.eyes_to_landmarks(eyes, 112)
    assert np.allclose(lms[:2], eyes[::-1])


def test_centre_crop_and_box_crop_take_the_expected_square():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 50:150] = 200  # the centre square of a 200x100 frame
    face = _common.warp_to_template(img, _common.centre_crop_landmarks(200, 100, 50), 50)
    assert face.shape == (50, 50, 3) and face.min() == 200
    face = _common.warp_to_template(img, _common.box_to_landmarks((0, 0, 40, 40), 50, margin=1.0), 50)
    assert face.max() == 0


def test_read_image_scales_16_bit_and_replicates_grey(tmp_path):
    v = np.full((8, 9), 100 * 257, np.uint16)
    Image.fromarray(v).save(tmp_path / "a.png")
    img = _common.read_image(tmp_path / "a.png")
    assert img.shape == (8, 9, 3) and img.dtype == np.uint8 and np.all(img == 100)


def test_extension_fallback_and_limit_and_seeded_splits(tmp_path):
    (tmp_path / "001.bmp").write_bytes(b"x")
    assert _common.find_with_extensions(tmp_path / "001.jpg") == tmp_path / "001.bmp"
    assert _common.find_with_extensions(tmp_path / "002.jpg") is None
    assert _common.limit_identities([str(i) for i in range(1, 11)], 3) == {"1", "5", "10"}
    a = _common.seeded_identity_splits([str(i) for i in range(20)], 8, 3, seed=1, always_train=["5"])
    b = _common.seeded_identity_splits([str(i) for i in range(20)], 8, 3, seed=1, always_train=["5"])
    assert a == b and a[0] != a[1]
    for train, test in a:
        assert len(train) == 8 and "5" in train and not set(train) & set(test) and len(train) + len(test) == 20


# ---------------------------------------------------------------------- CASIA NIR-VIS 2.0

CASIA_SUBJECTS = [f"{10001 + i}" for i in range(8)]


def make_casia(base: Path, faces) -> tuple[Path, Path, dict]:
    """NIR-VIS-2.0/s{1,2}/{VIS,NIR}/<id>/NNN.{jpg,bmp}, .pos eye files and the protocol lists."""
    root, annot = base / "NIR-VIS-2.0", base / "eyes"
    files: dict[str, dict[str, list[str]]] = {}
    rng = np.random.default_rng(0)
    for i, sid in enumerate(CASIA_SUBJECTS):
        session = "s1" if i < 4 else "s2"
        files[sid] = {}
        for mod, ext, n in (("VIS", ".jpg", 1), ("NIR", ".bmp", 2)):
            imgs, lms = faces[i]["vis" if mod == "VIS" else "nir"]
            files[sid][mod] = []
            for k in range(n):
                eyes = np.array([[40, 36], [62, 38]]) + rng.integers(-3, 4, size=(1, 2))
                frame = place(imgs[k], lms[k], (80, 96), eyes)
                rel = f"{session}/{mod}/{sid}/{k + 1:03d}{ext}"
                f = root / rel
                f.parent.mkdir(parents=True, exist_ok=True)
                if mod == "VIS":
                    Image.fromarray(frame).save(f, quality=90)
                else:
                    Image.fromarray(grey(frame)).save(f)
                if not (sid == CASIA_SUBJECTS[0] and mod == "NIR" and k == 1):  # one image without .pos
                    pos = (annot / rel).with_suffix(".pos")
                    pos.parent.mkdir(parents=True, exist_ok=True)
                    # Bob's order: right eye (image-left, smaller x) first
                    pos.write_text(f"{eyes[0][0]} {eyes[0][1]} {eyes[1][0]} {eyes[1][1]}\n")
                files[sid][mod].append(rel)

    def line(rel: str, wrong_ext: bool = False) -> str:
        if wrong_ext:
            rel = rel.rsplit(".", 1)[0] + ".jpg"  # listed as .jpg, stored as .bmp
        return rel.replace("/", "\\")

    def write(name: str, subjects: list[str], mod: str) -> None:
        lines = [line(r, wrong_ext=(mod == "NIR")) for s in subjects for r in files[s][mod]]
        (root / "protocols").mkdir(parents=True, exist_ok=True)
        (root / "protocols" / f"{name}.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode())

    folds = {}
    for k in list(range(1, 11)) + ["dev"]:
        r = np.random.default_rng([3, 0 if k == "dev" else k]).permutation(len(CASIA_SUBJECTS))
        test = [CASIA_SUBJECTS[j] for j in sorted(r[:4])]
        train = [s for s in CASIA_SUBJECTS if s not in test]
        if k == 2:
            train = train + test[:1]  # a leak in the lists: the converter must drop it from train
        folds[k] = (train, test)
        write(f"vis_train_{k}", train, "VIS")
        write(f"nir_train_{k}", train, "NIR")
        write(f"vis_gallery_{k}", test, "VIS")
        write(f"nir_probe_{k}", test, "NIR")
    return root, annot, folds


@pytest.fixture(scope="module")
def casia(tmp_path_factory, faces):
    base = tmp_path_factory.mktemp("casia")
    root, annot, folds = make_casia(base, faces)
    out = base / "layout"
    summary = casia_nir_vis2.main(["--root", str(root), "--out", str(out), "--annotations", str(annot),
                                   "--no-progress"])
    return root, out, folds, summary


def test_casia_protocols_and_faceset(casia):
    root, out, folds, summary = casia
    info = json.loads((out / "dataset.json").read_text())
    assert info["modalities"] == ["vis", "nir"] and info["image_size"] == 112
    assert info["identities"] == CASIA_SUBJECTS and info["default_protocol"] == "view2_1"
    assert set(info["protocols"]) == {f"view2_{k}" for k in range(1, 11)} | {"view1"}
    fs = FaceSet.from_layout(out)  # default = view2_1
    train, test = folds[1]
    assert set(fs.select(split="train").identity_name(fs.select(split="train").identities)) == set(train)
    ev = fs.select(split="eval")
    assert set(ev.identity_name(ev.identities)) == set(test) and set(fs.splits) == {"train", "eval"}
    assert fs.image_size == 112 and set(fs.modalities) == {"vis", "nir"}
    for k in range(1, 11):
        rows = protocol(out, f"view2_{k}")
        assert_no_leak(rows)
        train, test = folds[k]
        gal = [r for r in rows if r["role"] == "gallery"]
        probes = [r for r in rows if r["role"] == "probe"]
        assert {r["modality"] for r in gal} == {"vis"} and {r["modality"] for r in probes} == {"nir"}
        assert sorted(r["identity"] for r in gal) == test  # one VIS image per test subject
        assert len(probes) == 2 * len(test) and ids_of(rows, split="eval") == set(test)
        assert ids_of(rows, split="train") == set(train) - set(test)
    view1 = FaceSet.from_layout(out, protocol="view1")
    assert set(view1.splits) == {"train", "dev"}
    assert any("view2_2" in n and "left out" in n for n in summary["notes"])  # the leak was dropped
    src = sources(out)
    assert len(src) == 8 * 3 and Counter(r["alignment"] for r in src) == {"eyes": 23, "centre-crop": 1}
    assert any(r["source"] == "s1/NIR/10001/001.bmp" for r in src)  # listed as .jpg, found as .bmp


def test_casia_aligned_faces_match_a_direct_alignment(casia, faces):
    root, out, _, _ = casia
    src = {r["source"]: r["path"] for r in sources(out)}
    aligned = np.asarray(Image.open(out / src["s1/VIS/10002/001.jpg"]))
    again = _common.warp_to_template(np.asarray(Image.open(root / "s1/VIS/10002/001.jpg").convert("RGB")),
                                     np.loadtxt(root.parent / "eyes" / "s1/VIS/10002/001.pos").reshape(2, 2), 112)
    assert aligned.shape == (112, 112, 3) and np.array_equal(aligned, again)


def test_casia_wrong_root_and_missing_list(casia, tmp_path):
    root = casia[0]
    with pytest.raises(DatasetError, match=r"expected NIR-VIS-2\.0/protocols/ .*s1\.\.s4 and protocols"):
        casia_nir_vis2.main(["--root", str(root / "s1"), "--out", str(tmp_path / "o")])
    with pytest.raises(DatasetError, match="no such folder"):
        casia_nir_vis2.main(["--root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    part = tmp_path / "NIR-VIS-2.0"
    (part / "protocols").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"expected NIR-VIS-2\.0/protocols/vis_train_1\.txt"):
        casia_nir_vis2.main(["--root", str(part), "--out", str(tmp_path / "o")])
    with pytest.raises(LayoutError, match="already exists"):  # --out holds a layout: refused without --overwrite
        casia_nir_vis2.main(["--root", str(root), "--out", str(casia[1])])


def test_casia_runs_as_a_script_with_limit(casia, tmp_path):
    root, _, _, _ = casia
    out = tmp_path / "small"
    proc = subprocess.run([sys.executable, str(REPO / "data_scripts" / "casia_nir_vis2.py"), "--root", str(root),
                           "--out", str(out), "--folds", "1", "--no-view1", "--limit", "4", "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "protocols/view2_1.csv (default)" in proc.stdout
    info = json.loads((out / "dataset.json").read_text())
    assert len(info["identities"]) == 4 and info["protocols"] == ["view2_1"]


def test_cli_errors_are_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["casia_nir_vis2.py", "--root", str(tmp_path / "nope"), "--out",
                                      str(tmp_path / "o")])
    assert _common.run_cli(casia_nir_vis2.main) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --root") and "NIR-VIS-2.0" in err and "Traceback" not in err


# ---------------------------------------------------------------------- Tufts

def make_tufts(base: Path, faces) -> Path:
    """TD_RGB_E_Set<s>/<p>/TD_RGB_E_<k>.jpg, TD_IR_E (thermal), TD_NIR_A nested once more by the unzip tool."""
    root = base / "Tufts"
    for p in range(1, 11):
        s = 1 if p <= 5 else 2
        for pkg, mod, ks, nested in (("TD_RGB_E", "vis", (1, 2), False), ("TD_IR_E", "thermal", (1, 2), False),
                                     ("TD_NIR_A", "nir", (0,), True)):
            if pkg == "TD_NIR_A" and p == 10:
                continue  # participant 10 has no NIR
            imgs, lms = faces[p - 1][mod]
            for j, k in enumerate(ks):
                frame = place(imgs[j], lms[j], (64, 80), np.array([[30, 28], [50, 28]]))
                if mod != "vis":
                    frame = grey(frame)
                d = root / f"{pkg}_Set{s}"
                if nested:
                    d = d / f"{pkg}_Set{s}"
                f = d / str(p) / f"{pkg}_{k}.jpg"
                f.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(frame).save(f, quality=90)
    with open(base / "bounding-boxes.csv", "w") as fh:
        fh.write("Set,Participant,File,Left,Top,Width,Height\n")
        for p in (1, 2, 3):
            fh.write(f"Set1,{p},TD_IR_E_1.jpg,20,14,40,44\n")
    return root


def test_tufts_seeded_split_and_protocols(tmp_path, faces):
    root = make_tufts(tmp_path, faces)
    out = tmp_path / "layout"
    (tmp_path / "eyes.csv").write_text("path,x1,y1,x2,y2\nTD_RGB_E_Set1/1/TD_RGB_E_1.jpg,30,28,50,28\n")
    tufts.main(["--root", str(root), "--out", str(out), "--boxes", str(tmp_path / "bounding-boxes.csv"),
                "--landmarks", str(tmp_path / "eyes.csv"), "--splits", "2", "--seed", "3", "--no-progress"])
    info = json.loads((out / "dataset.json").read_text())
    assert info["modalities"] == ["vis", "nir", "thermal"] and info["default_protocol"] == "vis-thermal-split1"
    assert set(info["protocols"]) == {"vis-thermal-split1", "vis-thermal-split2", "vis-nir-split1", "vis-nir-split2"}
    expected = _common.seeded_identity_splits([str(p) for p in range(1, 11)], 4, 2, seed=3)  # 50/113 of 10 -> 4
    for s, (train, test) in enumerate(expected, 1):
        for probe_mod in ("thermal", "nir"):
            rows = protocol(out, f"vis-{probe_mod}-split{s}")
            assert_no_leak(rows)
            assert ids_of(rows, split="train") == set(train) and ids_of(rows, split="eval") == set(test)
            gal = [r for r in rows if r["role"] == "gallery"]
            assert sorted(r["identity"] for r in gal) == sorted(test)
            assert all(r["path"].endswith("/TD_RGB_E_1.png") for r in gal)  # the neutral VIS image
            probes = [r for r in rows if r["role"] == "probe"]
            assert {r["modality"] for r in probes} == {probe_mod}
            per_id = 2 if probe_mod == "thermal" else 1
            assert len(probes) == per_id * len([t for t in test if probe_mod == "thermal" or t != "10"])
            assert {r["modality"] for r in rows if r["role"] == "train"} == {"vis", probe_mod}
    assert expected[0] != expected[1]
    fs = FaceSet.from_layout(out)
    assert set(fs.modalities) == {"vis", "thermal"} and set(fs.splits) == {"train", "eval"}
    assert Counter(r["alignment"] for r in sources(out)) == {"box": 3, "landmarks-file": 1, "centre-crop": 42}
    with pytest.raises(DatasetError, match=r"expected Tufts/TD_RGB_E_Set1/.*is --root the folder that holds"):
        tufts.main(["--root", str(root / "TD_IR_E_Set1"), "--out", str(tmp_path / "o")])


# ---------------------------------------------------------------------- Polathermal

POLA_EYES = np.array([[65.0, 106.0], [140.0, 106.0]])


def make_polathermal(base: Path, faces) -> Path:
    """Registered/Visible/IOD87_{B,E}/A<NN>_IOD87_<B|E>_VI_f<MM>.png and Polarimetric/A<NN>_R<r>_<B|E>_<ch>_f<WW>.png."""
    root = base / "Polathermal" / "Registered"
    for n in range(1, 9):
        vis, vlm = faces[n]["vis"]
        th, tlm = faces[n]["thermal"]
        for kind, frames in (("B", (1, 2)), ("E", (3,))):
            for f in frames:
                img = place(vis[f - 1], vlm[f - 1], (140, 160), POLA_EYES)
                path = root / "Visible" / f"IOD87_{kind}" / f"A{n:02d}_IOD87_{kind}_VI_f{f:02d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(path)
        for j, (rng_, kind, ch, f) in enumerate((("1", "B", "S0", 1), ("2", "E", "S0", 5), ("3", "E", "S0", 9),
                                                 ("1", "B", "DP", 1), ("1", "B", "S1", 1))):
            img16 = grey(place(th[j % 3], tlm[j % 3], (140, 160), POLA_EYES)).astype(np.uint16) * 257
            path = root / "Polarimetric" / f"A{n:02d}_R{rng_}_{kind}_{ch}_f{f:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img16).save(path)
    (root / "Polarimetric" / "readme.txt").write_text("not an image")
    return root


def test_polathermal_splits_and_protocols(tmp_path, faces):
    root = make_polathermal(tmp_path, faces)
    out = tmp_path / "layout"
    summary = polathermal.main(["--root", str(root), "--out", str(out), "--no-progress"])
    info = json.loads((out / "dataset.json").read_text())
    names = {f"VIS-thermal-{p}-split{s}" for p in ("overall", "expression", "R1", "R2", "R3") for s in range(1, 6)}
    assert set(info["protocols"]) == names | {f"VIS-VIS-split{s}" for s in range(1, 6)}
    assert info["modalities"] == ["vis", "thermal"] and len(info["identities"]) == 8
    splits = _common.seeded_identity_splits([f"A{n:02d}" for n in range(1, 9)], 3, 5, seed=0)  # 25/60 of 8 -> 3
    assert len({tuple(t) for t, _ in splits}) > 1
    for s, (train, test) in enumerate(splits, 1):
        for p, per_id, check in (("overall", 3, None), ("expression", 2, "_E_"), ("R1", 1, "_R1_"),
                                 ("R3", 1, "_R3_")):
            rows = protocol(out, f"VIS-thermal-{p}-split{s}")
            assert_no_leak(rows)
            assert ids_of(rows, split="train") == set(train) and ids_of(rows, split="eval") == set(test)
            gal = [r for r in rows if r["role"] == "gallery"]
            assert len(gal) == 2 * len(test) and all("_IOD87_B_" in r["path"] for r in gal)
            probes = [r for r in rows if r["role"] == "probe"]
            assert len(probes) == per_id * len(test) and {r["modality"] for r in probes} == {"thermal"}
            assert all("_S0_" in r["path"] and (check is None or check in r["path"]) for r in probes)
        vv = protocol(out, f"VIS-VIS-split{s}")
        assert {r["modality"] for r in vv if r["role"] == "probe"} == {"vis"}
        assert all("_IOD87_E_" in r["path"] for r in vv if r["role"] == "probe")
    fs = FaceSet.from_layout(out)  # default: VIS-thermal-overall-split1
    assert fs.meta["protocol"] == "default" and len(fs) == 3 * (3 + 3) + 5 * (2 + 3)
    assert not (out / "images" / "thermal" / "A01" / "A01_R1_B_DP_f01.png").exists()
    assert any("DP 8" in n and "S1 8" in n for n in summary["notes"])
    # the fixed eyes put the synthetic face's eyes on the template: aligned 16-bit thermal looks like 8-bit
    th = np.asarray(Image.open(out / "images/thermal/A01/A01_R1_B_S0_f01.png"))
    assert th.dtype == np.uint8 and 20 < th.mean() < 235
    with pytest.raises(DatasetError, match=r"expected Registered/Visible/IOD87_B/ .*Polarimetric/"):
        polathermal.main(["--root", str(root.parent), "--out", str(tmp_path / "o")])


# ---------------------------------------------------------------------- SCface

SC_SUBJECTS = [1, 2, 44, 45, 88, 89]


def make_scface(base: Path, faces) -> Path:
    """mugshot_frontal_cropped_all/<sid>_frontal.JPG, surveillance_cameras_distance_<d>/cam_<c>/<sid>_cam<c>_<d>.jpg,
    surveillance_cameras_IR_cam8/<sid>_cam8.jpg and the annotation file (name + 8 integers)."""
    root = base / "SCface"
    lines = []
    rng = np.random.default_rng(1)
    for i, sid in enumerate(SC_SUBJECTS):
        vis, vlm = faces[i]["vis"]
        nir, nlm = faces[i]["nir"]
        shots = [(f"mugshot_frontal_cropped_all/{sid:03d}_frontal.JPG", vis[0], vlm[0], True)]
        for d in (1, 2, 3):
            for c in (1, 3, 6, 7):
                nirs = c >= 6
                shots.append((f"surveillance_cameras_distance_{d}/cam_{c}/{sid:03d}_cam{c}_{d}.jpg",
                              (nir if nirs else vis)[d - 1], (nlm if nirs else vlm)[d - 1], not nirs))
        shots.append((f"surveillance_cameras_IR_cam8/{sid:03d}_cam8.jpg", nir[0], nlm[0], False))
        for rel, img, lm, colour in shots:
            eyes = np.array([[30, 30], [52, 31]]) + rng.integers(-2, 3, size=(1, 2))
            frame = place(img, lm, (72, 84), eyes)
            f = root / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame if colour else grey(frame)).save(f, format="JPEG", quality=90)
            name = Path(rel).name.rsplit(".", 1)[0]
            if name != "088_cam7_2":  # one image without annotation
                lines.append(f"{name} {eyes[0][0]} {eyes[0][1]} {eyes[1][0]} {eyes[1][1]} 41 45 41 58")
    (root / "scface_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def test_scface_protocols(tmp_path, faces):
    root = make_scface(tmp_path, faces)
    out = tmp_path / "layout"
    scface.main(["--root", str(root), "--out", str(out), "--no-progress"])
    info = json.loads((out / "dataset.json").read_text())
    assert info["modalities"] == ["vis", "nir"] and info["default_protocol"] == "vis-nir"
    assert set(info["protocols"]) == {"combined", "close", "medium", "far", "vis-nir", "vis-nir-close",
                                      "vis-nir-medium", "vis-nir-far", "nir-nir"}
    split = {"001": "train", "002": "train", "044": "dev", "045": "dev", "088": "eval", "089": "eval"}
    for name, probe_mod, per_id, dist in (("combined", "vis", 6, None), ("close", "vis", 2, "3"),
                                          ("far", "vis", 2, "1"), ("vis-nir", "nir", 6, None),
                                          ("vis-nir-medium", "nir", 2, "2"), ("nir-nir", "nir", 6, None)):
        rows = protocol(out, name)
        assert_no_leak(rows)
        assert {r["identity"]: r["split"] for r in rows} == split
        gal = [r for r in rows if r["role"] == "gallery"]
        gal_name = "_cam8.png" if name == "nir-nir" else "_frontal.png"
        assert len(gal) == 4 and all(r["path"].endswith(gal_name) for r in gal)
        probes = [r for r in rows if r["role"] == "probe"]
        assert len(probes) == 4 * per_id and {r["modality"] for r in probes} == {probe_mod}
        cams = ("_cam6_", "_cam7_") if probe_mod == "nir" else ("_cam1_", "_cam3_")
        assert all(any(c in r["path"] for c in cams) for r in probes)
        assert dist is None or all(r["path"].endswith(f"_{dist}.png") for r in probes)
    fs = FaceSet.from_layout(out)
    assert set(fs.splits) == {"train", "dev", "eval"} and set(fs.modalities) == {"vis", "nir"}
    assert Counter(r["alignment"] for r in sources(out)) == {"eyes": 6 * 14 - 1, "centre-crop": 1}
    small = tmp_path / "small"
    scface.main(["--root", str(root), "--out", str(small), "--limit", "3", "--no-progress"])
    assert json.loads((small / "dataset.json").read_text())["identities"] == ["001", "044", "089"]
    with pytest.raises(DatasetError, match=r"expected SCface/mugshot_frontal_cropped_all/ .*surveillance_cameras"):
        scface.main(["--root", str(tmp_path), "--out", str(tmp_path / "o")])


# ---------------------------------------------------------------------- MCXFace

def make_mcxface(base: Path, faces) -> tuple[Path, Path]:
    """<root>/<subject>/<session>/<channel>/frame_000.jpg and a CSV in Bob's column names; eyes on COLOR rows only."""
    root = base / "MCXFace"
    rows = []
    for i in range(6):
        subject = f"subj{i + 1:02d}"
        for session in ((1,) if i == 0 else (1, 2)):  # subj01 was seen in one session only
            eyes = np.array([[30, 30], [50, 30]]) + session
            for channel, mod in (("COLOR", "vis"), ("NIR", "nir"), ("THERMAL", "thermal")):
                imgs, lms = faces[i][mod]
                frame = place(imgs[session], lms[session], (70, 80), eyes)
                rel = f"{subject}/session{session}/{channel.lower()}/frame_000.jpg"
                f = root / rel
                f.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(frame if mod == "vis" else grey(frame)).save(f, quality=90)
                e = [str(v) for v in (eyes[1][0], eyes[1][1], eyes[0][0], eyes[0][1])] if channel == "COLOR" \
                    else ["", "", "", ""]
                rows.append([rel[:-4], subject, channel, str(session), "0"] + e)  # path without extension
    csv_path = base / "mcxface.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["PATH", "REFERENCE_ID", "channel", "session", "frame", "reye_x", "reye_y", "leye_x", "leye_y"])
        w.writerows(rows)
    return root, csv_path


def test_mcxface_from_csv(tmp_path, faces):
    root, csv_path = make_mcxface(tmp_path, faces)
    out = tmp_path / "layout"
    mcxface.main(["--root", str(root), "--csv", str(csv_path), "--out", str(out), "--splits", "2", "--no-progress"])
    info = json.loads((out / "dataset.json").read_text())
    assert info["modalities"] == ["vis", "nir", "thermal"] and info["default_protocol"] == "COLOR-NIR-split1"
    pairs = ["COLOR-NIR", "COLOR-THERMAL", "COLOR-COLOR", "NIR-NIR", "THERMAL-THERMAL"]
    assert set(info["protocols"]) == {f"{p}-split{s}" for p in pairs for s in (1, 2)}
    for s in (1, 2):
        for p in pairs:
            rows = protocol(out, f"{p}-split{s}")
            assert_no_leak(rows)
            assert "subj01" in ids_of(rows, split="train")  # single-session subjects always train
            assert len(ids_of(rows, split="train")) == 4 and len(ids_of(rows, split="eval")) == 2
            src, tgt = (m.lower().replace("color", "vis") for m in p.split("-"))
            gal = [r for r in rows if r["role"] == "gallery"]
            probes = [r for r in rows if r["role"] == "probe"]
            assert len(gal) == 2 and all(r["modality"] == src and "session1" in r["path"] for r in gal)
            assert len(probes) == 2 and all(r["modality"] == tgt and "session2" in r["path"] for r in probes)
    fs = FaceSet.from_layout(out)
    assert set(fs.modalities) == {"vis", "nir"}
    assert Counter(r["alignment"] for r in sources(out)) == {"eyes": 33}  # eyes shared by the frame's channels
    again = mcxface.main(["--root", str(root), "--csv", str(csv_path), "--out", str(out), "--splits", "1",
                          "--overwrite", "--no-progress"])  # replaces the layout, stale protocols go
    assert sorted(p.stem for p in (out / "protocols").glob("*.csv")) == sorted([f"{p}-split1" for p in pairs]
                                                                             + ["default"])
    assert again["images"] == 33
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not an empty folder"):
        mcxface.main(["--root", str(root), "--csv", str(csv_path), "--out", str(tmp_path / "busy")])
    with pytest.raises(DatasetError, match=r"expected the CSV .*mcxface\.csv.*--csv"):
        mcxface.main(["--root", str(root), "--out", str(tmp_path / "o")])
    bad = tmp_path / "bad.csv"
    bad.write_text("file,who\nx.jpg,1\n")
    with pytest.raises(DatasetError, match=r"no column for \['identity', 'channel'\]"):
        mcxface.main(["--root", str(root), "--csv", str(bad), "--out", str(tmp_path / "o")])

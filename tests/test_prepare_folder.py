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


# ---------------------------------------------------------------------- severity, palettes, near-duplicates (issue #26)

def _layout_images(out: Path, modality: str) -> dict[str, np.ndarray]:
    return {p.relative_to(out).as_posix(): np.asarray(Image.open(p)) for p in sorted((out / "images" / modality).rglob("*.png"))}


def test_severity_is_recorded_and_mild_keeps_the_old_pixels(crops, tmp_path):
    from hfr_tutorial.data.align import template
    from hfr_tutorial.data.spectral import REALISTIC_THERMAL, simulate

    base = ["--source", str(crops), "--detector", "none", "--pseudo", "nir,thermal", "--split", "0.34,0.33,0.33",
            "--no-progress"]
    real = prepare_folder.main(base + ["--out", str(tmp_path / "real")])
    mild = prepare_folder.main(base + ["--out", str(tmp_path / "mild"), "--severity", "mild"])
    assert real["simulation_severity"] == "realistic" and mild["simulation_severity"] == "mild"
    assert "'realistic'" in real["simulation"] and real["prepare_folder"]["severity"] == "realistic"
    assert real["simulation_settings"]["thermal"]["native_size"] == REALISTIC_THERMAL.native_size
    # mild: exactly what the simulation wrote before severities existed (template landmarks, the sha1 seed)
    lm = template(112)[None].astype(np.float32)  # the 64 px crops are aligned to --size 112
    for rel, img in list(_layout_images(tmp_path / "mild", "thermal").items())[:4]:
        vis_rel = rel.replace("images/thermal/", "images/vis/")
        face = np.asarray(Image.open(tmp_path / "mild" / vis_rel).convert("RGB"))
        seed = int(hashlib.sha1(f"0:thermal:{vis_rel}".encode()).hexdigest()[:8], 16)
        assert np.array_equal(img, simulate(face[None], "thermal", lm, seed=seed, severity="mild")[0])
        assert not np.array_equal(img, np.asarray(Image.open(tmp_path / "real" / rel)))
    # what --pseudo writes is what simulate_face renders (the calibration relies on it)
    rel, img = next(iter(_layout_images(tmp_path / "real", "nir").items()))
    vis_rel = rel.replace("images/nir/", "images/vis/")
    face = np.asarray(Image.open(tmp_path / "real" / vis_rel).convert("RGB"))
    assert np.array_equal(img, prepare_folder.simulate_face(face, "nir", "realistic", 0, vis_rel))
    with pytest.raises(SystemExit):
        prepare_folder.main(base + ["--out", str(tmp_path / "x"), "--severity", "harsh"])


def test_near_duplicates_of_the_gallery_are_never_probes(tmp_path):
    """A re-encoded copy of the gallery photo (as LFW's Serena_Williams_0002/0016) is no probe, nor its pseudo copies."""
    src = tmp_path / "photos"
    for i in range(6):
        imgs = synthetic_identity_images(i, n=3, size=64, seed=1)["vis"]
        (src / f"person{i}").mkdir(parents=True)
        for k, img in enumerate(imgs):
            Image.fromarray(img).save(src / f"person{i}" / f"{k}.png")
        # a JPEG re-encoding of the gallery photo (0.png), slightly cropped, named to sort last
        Image.fromarray(imgs[0][1:, 1:]).resize((64, 64)).save(src / f"person{i}" / "9.jpg", quality=80)
    args = ["--source", str(src), "--detector", "none", "--pseudo", "nir,thermal", "--split", "0.34,0.33,0.33",
            "--no-progress"]
    info = prepare_folder.main(args + ["--out", str(tmp_path / "a")])
    rows = (tmp_path / "a" / "protocols" / "default.csv").read_text().splitlines()
    probes = [r for r in rows if ",probe," in r]
    assert probes and not any(r.endswith("/9.png") for r in probes)
    assert not any(r.endswith("/0.png") for r in probes)  # the gallery photo's pseudo copies neither
    assert info["near_duplicate_probes_left_out"] == 4  # 2 dev + 2 eval identities
    assert any("near-duplicates" in n for n in info["notes"])
    off = prepare_folder.main(args + ["--out", str(tmp_path / "b"), "--near-duplicate", "0"])
    assert off["near_duplicate_probes_left_out"] == 0
    rows = (tmp_path / "b" / "protocols" / "default.csv").read_text().splitlines()
    assert sum(r.endswith("/9.png") and ",probe," in r for r in rows) == 4 * 3  # vis, nir, thermal x 4 identities
    aligned = tmp_path / "b" / "images" / "vis" / "person0"
    h0, h9, h1 = (prepare_folder.difference_hash(np.asarray(Image.open(aligned / f"{k}.png"))) for k in (0, 9, 1))
    assert (h0 != h9).sum() <= 20 < (h0 != h1).sum()


def test_per_identity_spreads_the_photos(crops, tmp_path):
    for k in range(3, 7):
        Image.open(crops / "person0" / "0.png").transpose(Image.FLIP_LEFT_RIGHT).save(crops / "person0" / f"{k}.png")
    info = prepare_folder.main(["--source", str(crops), "--out", str(tmp_path / "o"), "--detector", "none",
                                "--per-identity", "3", "--split", "1,0,0", "--no-progress"])
    names = sorted(p.name for p in (tmp_path / "o" / "images" / "vis" / "person0").iterdir())
    assert names == ["0.png", "3.png", "6.png"]  # of 0..6: the first, the middle, the last
    assert info["prepare_folder"]["per_identity"] == 3
    with pytest.raises(DatasetError, match="per-identity"):
        prepare_folder.main(["--source", str(crops), "--out", str(tmp_path / "p"), "--per-identity", "-1"])


def _thermal_exports(tmp_path: Path, palette: str) -> tuple[Path, dict[str, np.ndarray]]:
    """<src>/vis/<id>/<k>.png and <src>/thermal/<id>/<k>.jpg exported in ``palette``; the true grey of each."""
    from hfr_tutorial.data.thermal_palettes import apply_palette
    from hfr_tutorial.data.spectral import pseudo_thermal

    src = tmp_path / f"cam-{palette}"
    truth = {}
    for i in range(4):
        imgs = synthetic_identity_images(i, n=3, size=64, seed=2)["vis"]
        for k, img in enumerate(imgs):
            (src / "vis" / f"p{i}").mkdir(parents=True, exist_ok=True)
            (src / "thermal" / f"p{i}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(src / "vis" / f"p{i}" / f"{k}.png")
            grey = pseudo_thermal(img, seed=k)[..., 0]
            truth[f"p{i}/{k}"] = grey
            Image.fromarray(apply_palette(grey, palette)).save(src / "thermal" / f"p{i}" / f"{k}.jpg", quality=90)
    return src, truth


@pytest.mark.parametrize("palette", ["ironbow", "auto"])
def test_false_colour_thermal_folders_become_one_channel(tmp_path, palette):
    src, truth = _thermal_exports(tmp_path, "ironbow")
    out = tmp_path / "o"
    # --split 0.5,0,0.5: four identities cannot give dev and eval two each (a one-identity split is refused)
    info = prepare_folder.main(["--source", str(src), "--out", str(out), "--detector", "none", "--palette", palette,
                                "--split", "0.5,0,0.5", "--size", "64", "--no-progress"])
    pal = info["thermal_palette"]
    assert pal["requested"] == palette and list(pal["sources"].values())[0]["palette"] == "ironbow"
    if palette == "auto":
        assert list(pal["sources"].values())[0]["confidence"] > 0.9
    assert pal["max_off_palette"] < 0.05
    thermal = _layout_images(out, "thermal")
    vis = _layout_images(out, "vis")
    assert thermal and all((im[..., 0] == im[..., 2]).all() for im in thermal.values())  # grey, white-hot
    for rel, im in thermal.items():  # same size: the centre crop is the identity; close to what was measured
        key = rel.split("/", 2)[2][:-4]
        assert np.abs(im[..., 0].astype(int) - truth[key]).mean() < 5
    assert vis and all(not (im[..., 0] == im[..., 2]).all() for im in vis.values())  # VIS untouched


def test_palette_refusals(tmp_path, crops):
    with pytest.raises(DatasetError, match="no thermal photos"):
        prepare_folder.main(["--source", str(crops), "--out", str(tmp_path / "o"), "--palette", "ironbow"])
    with pytest.raises(DatasetError, match="unknown"):
        prepare_folder.main(["--source", str(crops), "--out", str(tmp_path / "o"), "--palette", "sepia"])
    # a folder whose colours fit no palette: auto stops and asks for the name
    src = tmp_path / "odd"
    for i in range(2):
        (src / "thermal" / f"p{i}").mkdir(parents=True)
        (src / "vis" / f"p{i}").mkdir(parents=True)
        for k in range(2):
            rng = np.random.default_rng(k + 5 * i)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(src / "thermal" / f"p{i}" / f"{k}.png")
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(src / "vis" / f"p{i}" / f"{k}.png")
    with pytest.raises(DatasetError, match="(?s)not clear.*--palette"):
        prepare_folder.main(["--source", str(src), "--out", str(tmp_path / "o2"), "--detector", "none",
                             "--palette", "auto", "--split", "1,0,0"])
    assert not (tmp_path / "o2").exists()


def test_a_tight_crop_is_retried_with_a_border():
    """No face in the photo itself: the padded copy is searched and its landmarks mapped back."""
    from hfr_tutorial.data.detect import Detection

    class Fake:
        def __init__(self):
            self.shapes = []

        def detect(self, img):
            self.shapes.append(img.shape)
            if img.shape[0] == 40:
                return []
            return [Detection(box=(10.0, 10.0, 50.0, 50.0), landmarks=np.full((5, 2), 20.0), score=1.0)]

    img = np.zeros((40, 40, 3), np.uint8)
    img[10:30, 10:30] = 200
    det = Fake()
    faces, padded = prepare_folder.detect_faces(det, img)
    assert padded and det.shapes == [(40, 40, 3), (60, 60, 3)]
    assert np.allclose(faces[0].landmarks, 10.0) and faces[0].box == (0.0, 0.0, 40.0, 40.0)
    faces, padded = prepare_folder.detect_faces(type("D", (), {"detect": lambda self, im: []})(), img)
    assert faces == [] and not padded


def test_glasses_list_changes_the_simulated_eyes(crops, tmp_path):
    listing = tmp_path / "glasses.txt"
    listing.write_text("# photos with glasses\nperson1/1.png\nperson4/2\n")
    base = ["--source", str(crops), "--detector", "none", "--pseudo", "nir,thermal", "--split", "0.34,0.33,0.33",
            "--no-progress"]
    plain = prepare_folder.main(base + ["--out", str(tmp_path / "a")])
    worn = prepare_folder.main(base + ["--out", str(tmp_path / "b"), "--glasses", str(listing)])
    assert plain["simulated_with_glasses"] == 0 and worn["simulated_with_glasses"] == 2
    assert worn["prepare_folder"]["glasses"] == ["person1/1.png", "person4/2"]
    a, b = _layout_images(tmp_path / "a", "thermal"), _layout_images(tmp_path / "b", "thermal")
    changed = sorted(k for k in a if not np.array_equal(a[k], b[k]))
    assert changed == ["images/thermal/person1/1.png", "images/thermal/person4/2.png"]
    eye = (slice(48, 56), slice(34, 42))  # the left eye of the 112 template
    assert b["images/thermal/person1/1.png"][eye].mean() < a["images/thermal/person1/1.png"][eye].mean() - 20
    listing.write_text("person1/7.png\n")
    with pytest.raises(DatasetError, match=r"match no VIS photo: \['person1/7.png'\]"):
        prepare_folder.main(base + ["--out", str(tmp_path / "c"), "--glasses", str(listing)])
    with pytest.raises(DatasetError, match="needs --severity realistic"):
        prepare_folder.main(base + ["--out", str(tmp_path / "c"), "--glasses", str(listing), "--severity", "mild"])
    with pytest.raises(DatasetError, match="needs --pseudo"):
        prepare_folder.main(["--source", str(crops), "--out", str(tmp_path / "c"), "--glasses", str(listing)])


@pytest.mark.parametrize("change", [["--severity", "mild"], ["--glasses", "GLASSES"]])
def test_resume_with_other_simulation_settings_makes_the_simulated_images_again(crops, tmp_path, monkeypatch, change):
    """A run stopped during the simulation and resumed with another --severity or --glasses list gives the images of
    the settings it finishes with, not a mix (severity and glasses are SIMULATION_KEYS), even when stopped twice."""
    from hfr_tutorial.data import spectral

    assert {"severity", "glasses"} <= set(prepare_folder.SIMULATION_KEYS)
    listing = tmp_path / "glasses.txt"
    listing.write_text("person1/1.png\nperson4/2\n")
    change = [str(listing) if a == "GLASSES" else a for a in change]
    base = ["--source", str(crops), "--detector", "none", "--pseudo", "nir,thermal", "--split", "0.34,0.33,0.33",
            "--no-progress"]
    prepare_folder.main(base + ["--out", str(tmp_path / "fresh")])
    real = spectral.simulate

    def dying_after(n):
        calls = {"n": 0}

        def dying(*a, **k):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt  # Ctrl-C while the simulated images are written
            return real(*a, **k)
        return dying

    monkeypatch.setattr(spectral, "simulate", dying_after(30))  # 36 images in all: most are made
    with pytest.raises(KeyboardInterrupt):
        prepare_folder.main(base + ["--out", str(tmp_path / "o")] + change)
    monkeypatch.setattr(spectral, "simulate", dying_after(3))  # the default settings now, stopped again early
    with pytest.raises(KeyboardInterrupt):
        prepare_folder.main(base + ["--out", str(tmp_path / "o")])
    monkeypatch.setattr(spectral, "simulate", real)
    prepare_folder.main(base + ["--out", str(tmp_path / "o")])
    fresh = tmp_path / "fresh" / "images"
    for mod in ("nir", "thermal"):
        files = sorted((fresh / mod).rglob("*.png"))
        assert len(files) == 18
        for f in files:
            assert f.read_bytes() == (tmp_path / "o" / "images" / f.relative_to(fresh)).read_bytes(), f

"""Issue #27, the data side: bad photos, folders, lists, layouts and checkpoint files a new user brings.

Each test is one case of the issue and failed on the code before the fix (checked by running this
file against that commit).  Escapes: a layout or a converter never reads a file outside its root
(``..``, absolute paths, symbolic links).  Photos: read upright (EXIF), hidden entries skipped and
listed, identity names readable and distinct, unknown modality folders named, duplicates found by
content.  prepare_folder: "up to date" only for the same photos, resume only from verified images,
split and size checks before any alignment.  Errors: never a traceback or torch's advice to unpickle.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from data_scripts import _common, casia_nir_vis2, mcxface, prepare_folder  # noqa: E402
from data_scripts._common import DatasetError  # noqa: E402
from hfr_tutorial.data import FaceSet, synthetic_identity_images  # noqa: E402
from hfr_tutorial.data.layout import LayoutError, load_image, read_layout, validate_layout, write_layout  # noqa: E402
from hfr_tutorial.models import CheckpointError, load_edgeface, read_checkpoint  # noqa: E402

FAST = ["--detector", "none", "--no-progress"]


def _face(i: int, k: int = 0, size: int = 64) -> np.ndarray:
    return synthetic_identity_images(i, n=k + 1, size=size, seed=1)["vis"][k]


def _person(folder: Path, i: int, n: int = 3, names: list[str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        Image.fromarray(_face(i, k)).save(folder / f"{(names or [str(j) for j in range(n)])[k]}.png")


@pytest.fixture()
def photos(tmp_path):
    """<photos>/person<i>/<k>.png: 6 identities x 3 synthetic face crops."""
    src = tmp_path / "photos"
    for i in range(6):
        _person(src / f"person{i}", i)
    return src


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["split", "role", "identity", "modality", "path"])
        w.writeheader()
        w.writerows(rows)


# ---------------------------------------------------------------------- layouts: escapes and self-matches

@pytest.fixture()
def layout(tmp_path):
    fs = FaceSet(np.stack([_face(i, k, 32) for i in range(4) for k in range(2)]), np.repeat(np.arange(4), 2),
                 ["vis"] * 8, splits=["train"] * 4 + ["eval"] * 4, identity_names=["a", "b", "c", "d"])
    return write_layout(fs, tmp_path / "lay")


@pytest.mark.parametrize("what", ["file", "folder", "protocol"])
def test_layout_link_leading_outside_the_root_is_refused(layout, tmp_path, what):
    """Case 2: a symbolic link under images/ (or protocols/) to a file outside the layout is refused when read."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    if what == "file":
        target = layout / _rows(layout / "protocols" / "default.csv")[0]["path"]
        (outside / "secret.png").write_bytes(target.read_bytes())
        target.unlink()
        target.symlink_to(outside / "secret.png")
    elif what == "folder":
        folder = layout / "images" / "vis" / "a"
        os.replace(folder, outside / "a")
        folder.symlink_to(outside / "a", target_is_directory=True)
    else:
        os.replace(layout / "protocols" / "default.csv", outside / "default.csv")
        (layout / "protocols" / "default.csv").symlink_to(outside / "default.csv")
    for read in (lambda: FaceSet.from_layout(layout), lambda: validate_layout(layout),
                 lambda: read_layout(layout, protocol=None)):
        with pytest.raises(LayoutError, match=rf"(?s)symbolic link.*{re.escape(str(outside))}.*outside the layout root"):
            read()


def test_protocol_using_one_image_as_gallery_and_probe_is_refused(layout):
    """Case 9: a gallery image repeated as a probe of the same split would match itself; refused, rows named."""
    rows = _rows(layout / "protocols" / "default.csv")
    gallery = next(r for r in rows if r["role"] == "gallery")
    _write_rows(layout / "protocols" / "default.csv", rows + [dict(gallery, role="probe")])
    for read in (lambda: FaceSet.from_layout(layout), lambda: validate_layout(layout, decode=False)):
        with pytest.raises(LayoutError, match=rf"row {len(rows) + 2}: .*{re.escape(gallery['path'])}.* row \d+ uses "
                                              "the same image as a gallery"):
            read()


def test_from_layout_given_a_file_says_it_is_a_file(layout):
    """Case 12: from_layout on dataset.json says it is a file and names the folder to give."""
    with pytest.raises(LayoutError, match=rf"is a file, not a folder.*give its folder {re.escape(str(layout))}"):
        FaceSet.from_layout(layout / "dataset.json")


def test_from_layout_none_names_the_argument():
    """Case 12: from_layout(None) is a TypeError naming the argument, not a pathlib error."""
    with pytest.raises(TypeError, match=r"root=None: give the path of a layout folder"):
        FaceSet.from_layout(None)
    with pytest.raises(TypeError, match=r"root=3"):
        validate_layout(3)


# ---------------------------------------------------------------------- checkpoints

def test_load_edgeface_with_a_number_names_the_argument():
    """Case 12: load_edgeface('edgeface_xxs', 123) names the checkpoint argument (and says how to pass a seed)."""
    with pytest.raises(TypeError, match=r"checkpoint=123\).*seed="):
        load_edgeface("edgeface_xxs", 123)
    with pytest.raises(TypeError, match=r"variant=7"):
        load_edgeface(7)


def test_jpeg_named_pt_gets_our_error_not_torchs_advice(tmp_path):
    """Case 12: a JPEG renamed .pt is named as a JPEG; torch's 'set weights_only=False' never reaches the user."""
    path = tmp_path / "model.pt"
    Image.fromarray(_face(0)).save(path, format="JPEG")
    with pytest.raises(CheckpointError, match=r"is not a PyTorch checkpoint: it holds JPEG image data") as info:
        read_checkpoint(path)
    assert "weights_only" not in str(info.value)


def test_checkpoint_holding_objects_is_refused_without_advice_to_unpickle(tmp_path):
    """Case 12 / 1: a checkpoint holding Python objects is refused by us, naming the object, never 'weights_only=False'."""
    import argparse

    path = tmp_path / "objects.pt"
    torch.save({"weight": torch.zeros(2), "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(CheckpointError, match=r"holds Python objects other than tensors \(it names argparse\.Namespace\)"
                       ) as info:
        read_checkpoint(path)
    assert "weights_only" not in str(info.value)


# ---------------------------------------------------------------------- photos: EXIF, bombs

def test_exif_orientation_is_applied_wherever_photos_are_read(tmp_path):
    """Case 3: a phone photo stored sideways with orientation 6 is read upright by every reader."""
    img = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high
    img[:, :10] = 255  # a white band on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(img).save(path, quality=98, exif=exif)
    for read in (_common.read_image, load_image):
        arr = read(path)
        assert arr.shape == (40, 20, 3)  # upright: 20 wide, 40 high
        assert arr[:10].mean() > 200 and arr[-10:].mean() < 50  # the band is now on top


def test_decompression_bomb_is_named_and_skippable(photos, tmp_path, monkeypatch):
    """Case 11: an image over the decompression-bomb limit is named (no traceback); --skip-unreadable skips it."""
    big = photos / "person0" / "huge.png"
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 64x64 photos pass, the 100x100 one is a "bomb"
    out = tmp_path / "o"
    args = ["--source", str(photos), "--out", str(out), "--split", "0.34,0.33,0.33", "--size", "48", *FAST]
    with pytest.raises(DatasetError, match=r"(?s)huge\.png: too large to decode safely.*--skip-unreadable"):
        prepare_folder.main(args)
    assert not out.exists() and not (tmp_path / "o.partial").exists()
    info = prepare_folder.main(args + ["--skip-unreadable"])
    assert any("huge.png" in n and "too large" in n for n in info["notes"])
    with pytest.raises(DatasetError, match=r"huge\.png: too large"):
        _common.read_image(big)
    with pytest.raises(LayoutError, match=r"huge\.png: too large"):
        load_image(big)


# ---------------------------------------------------------------------- prepare_folder: sizes

@pytest.mark.parametrize("size", ["0", "-16", "100", "8"])
def test_size_not_a_positive_multiple_of_16_is_refused_before_work(photos, tmp_path, size):
    """Cases 6 and 11: --size 0, negative, 100 or 8 are refused before anything is written, naming 112."""
    out = tmp_path / "o"
    with pytest.raises(DatasetError, match=rf"--size {size} .*multiple of 16.*--size 112"):
        prepare_folder.main(["--source", str(photos), "--out", str(out), "--size", size, *FAST])
    assert not out.exists() and not (tmp_path / "o.partial").exists()
    with pytest.raises(DatasetError, match="multiple of 16"):
        _common.check_size(int(size))  # the converters' check (finish) is the same function


def test_size_other_than_112_is_warned_and_recorded(photos, tmp_path, capsys):
    """Case 6: --size 64 works, but says (stderr and dataset.json) that the official weights take 112."""
    info = prepare_folder.main(["--source", str(photos), "--out", str(tmp_path / "o"), "--size", "64",
                                "--split", "0.34,0.33,0.33", *FAST])
    assert "112" in info["image_size_warning"] and "warning: image_size 64" in capsys.readouterr().err
    assert json.loads((tmp_path / "o" / "dataset.json").read_text(encoding="utf-8"))["image_size_warning"]


@pytest.mark.parametrize("flag, value", [("--seed", "-1"), ("--crop-fraction", "0"), ("--crop-fraction", "nan")])
def test_seed_and_crop_fraction_that_cannot_work_are_refused_before_work(photos, tmp_path, flag, value):
    """A negative --seed (numpy refuses it) or a zero/NaN --crop-fraction: the flag named, nothing written."""
    with pytest.raises(DatasetError, match=rf"{flag} "):
        prepare_folder.main(["--source", str(photos), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33",
                             flag, value, *FAST])
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()
    with pytest.raises(DatasetError, match="--seed -1"):
        _common.seeded_identity_splits(["a", "b", "c"], 2, 1, seed=-1)


# ---------------------------------------------------------------------- prepare_folder: what is a person

def test_hidden_entries_are_skipped_and_listed(photos, tmp_path, capsys):
    """Case 4: .thumbnails, .DS_Store and a hidden folder never become a person or a photo; they are listed."""
    _person(photos / "person0" / ".thumbnails", 9, n=1)
    _person(photos / ".trash", 8)
    (photos / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    _person(photos / "__MACOSX" / "person1", 1)
    (photos / "nobody" / ".cache").mkdir(parents=True)  # a person folder with nothing to read
    info = prepare_folder.main(["--source", str(photos), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33",
                                *FAST])
    assert info["identities"] == [f"person{i}" for i in range(6)]
    assert len(FaceSet.from_layout(tmp_path / "o")) == 18
    hidden = info["skipped_files"]["hidden"]
    assert {"photos/.DS_Store", "photos/.trash/", "photos/__MACOSX/", "photos/person0/.thumbnails/"} <= set(hidden)
    assert ".thumbnails" in capsys.readouterr().out and info["skipped_files"]["empty"] == ["photos/nobody/"]


def test_unicode_identity_names_are_kept_distinct_and_readable(tmp_path):
    """Case 4: 张伟 and 李娜 stay two people with their names, Zoë keeps her ë; other names stay distinct too."""
    src = tmp_path / "photos"
    names = ["张伟", "李娜", "Zoë", "Anna Maria", "Anna_Maria", "Bob"]
    for i, name in enumerate(names):
        _person(src / name, i, names=[f"{name[0]}{k}" for k in range(3)])
    info = prepare_folder.main(["--source", str(src), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33", *FAST])
    ids = info["identities"]
    assert len(ids) == 6 and {"张伟", "李娜", "Zoë", "Bob"} <= set(ids)
    anna = [i for i in ids if i.startswith("Anna_Maria-")]  # two folders, one layout name: both get a hash
    assert len(anna) == 2 and sorted(info["identity_folders"][a] for a in anna) == ["Anna Maria", "Anna_Maria"]
    fs = FaceSet.from_layout(tmp_path / "o")
    assert len(fs) == 18 and len(np.unique(fs.identities)) == 6


def test_two_sources_with_the_same_folder_name_are_not_merged(tmp_path):
    """Case 4: two sources named 'photos' both holding 'anna' give two identities, never one."""
    a, b = tmp_path / "alice" / "photos", tmp_path / "bob" / "photos"
    for k, root in enumerate((a, b)):
        for i in range(3):
            _person(root / ("anna" if i == 0 else f"p{k}{i}"), 3 * k + i, names=[f"{root.parent.name}{j}" for j in range(3)])
    info = prepare_folder.main(["--source", str(a), str(b), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33",
                                *FAST])
    assert {"photos-anna", "photos-2-anna"} <= set(info["identities"]) and len(info["identities"]) == 6
    assert info["sources"] == {"photos": str(a.resolve()), "photos-2": str(b.resolve())}
    assert any("never merged" in n for n in info["notes"])


@pytest.mark.parametrize("folder, fix", [("ir", "nir"), ("RGB", "vis")])
def test_unknown_modality_folder_is_named_with_the_accepted_names(tmp_path, folder, fix):
    """Case 4: vis/ next to ir/ (or RGB/) is refused before work, naming the folder, the accepted names and the fix."""
    src = tmp_path / "photos"
    for i in range(3):
        _person(src / "vis" / f"p{i}", i)
        _person(src / folder / f"p{i}", i)
    with pytest.raises(DatasetError, match=rf"(?s)\['{folder}'\] is not a modality.*vis, nir, thermal.*rename "
                                           rf"'{folder}' to {fix}"):
        prepare_folder.main(["--source", str(src), "--out", str(tmp_path / "o"), *FAST])
    assert not (tmp_path / "o.partial").exists()


def test_identical_photos_across_splits_are_refused_before_work(photos, tmp_path, monkeypatch):
    """Case 4: one photo filed under identities of different splits is refused, naming the files, before aligning."""
    for i in range(1, 6):
        (photos / f"person{i}" / "copy.png").write_bytes((photos / "person0" / "0.png").read_bytes())
    aligned = []
    monkeypatch.setattr(prepare_folder, "warp_to_template", lambda *a, **k: aligned.append(1))
    with pytest.raises(DatasetError, match=r"(?s)filed, byte for byte, under identities that fall in different splits"
                                           r".*person0/0\.png.*person1/copy\.png"):
        prepare_folder.main(["--source", str(photos), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33", *FAST])
    assert not aligned and not (tmp_path / "o.partial").exists()


def test_identical_photos_in_one_split_are_reported(photos, tmp_path):
    """Case 4: the same photo under two identities of one split is reported (notes and dataset.json)."""
    (photos / "person1" / "copy.png").write_bytes((photos / "person0" / "0.png").read_bytes())
    info = prepare_folder.main(["--source", str(photos), "--out", str(tmp_path / "o"), "--split", "1,0,0", *FAST])
    assert any("under two identities" in n and "person1/copy.png" in n for n in info["notes"])
    assert sorted(info["duplicates"][0]) == ["person0/0.png", "person1/copy.png"]


def test_a_probe_identical_to_its_gallery_photo_is_left_out(photos, tmp_path):
    """Case 4 / 9: a byte-identical copy of the gallery photo is never a probe (it would match itself)."""
    for i in range(6):
        (photos / f"person{i}" / "0b.png").write_bytes((photos / f"person{i}" / "0.png").read_bytes())
    info = prepare_folder.main(["--source", str(photos), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33",
                                *FAST])
    rows = _rows(tmp_path / "o" / "protocols" / "default.csv")
    tested = [r for r in rows if r["split"] != "train"]
    assert tested and not any(r["path"].endswith("/0b.png") for r in tested)
    assert any(r["path"].endswith("/0b.png") for r in rows if r["split"] == "train")
    assert any("4 probe(s) identical to their identity's gallery photo" in n for n in info["notes"])


def test_symlink_in_a_source_leading_outside_it_is_refused(photos, tmp_path):
    """Case 2: a photo linked from outside the source is refused by name before any work."""
    outside = tmp_path / "private.png"
    Image.fromarray(_face(9)).save(outside)
    (photos / "person0" / "link.png").symlink_to(outside)
    with pytest.raises(DatasetError, match=rf"link\.png: a symbolic link to {re.escape(str(outside))}, outside --source"):
        prepare_folder.main(["--source", str(photos), "--out", str(tmp_path / "o"), *FAST])
    assert not (tmp_path / "o.partial").exists()


def test_gif_webp_heic_and_other_skipped_files_are_listed_by_name(photos, tmp_path):
    """Case 12: files in formats not read here are listed by name, with the advice to convert them."""
    Image.fromarray(_face(0)).save(photos / "person0" / "anim.gif")
    (photos / "person1" / "phone.heic").write_bytes(b"\0\0\0\x18ftypheic")
    (photos / "person2" / "web.webp").write_bytes(b"RIFF\0\0\0\0WEBP")
    (photos / "notes.txt").write_text("mine")
    info = prepare_folder.main(["--source", str(photos), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33",
                                *FAST])
    convert = next(n for n in info["notes"] if "convert them to JPEG or PNG" in n)
    assert all(name in convert for name in ("anim.gif", "phone.heic", "web.webp"))
    assert any("notes.txt" in n for n in info["notes"])


def test_non_utf8_names_are_named_and_a_rerun_works(photos, tmp_path, capsys):
    """Case 11: a folder and a photo whose names are not UTF-8: no traceback, both kept, listed; reruns work."""
    os.rename(photos / "person5", os.fsdecode(bytes(photos / "person5") + b"_Jos\xe9"))
    Image.fromarray(_face(0, 2)).save(os.fsdecode(bytes(photos / "person0") + b"/caf\xe9.png"))
    args = ["--source", str(photos), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33", *FAST]
    info = prepare_folder.main(args)
    assert len(info["identities"]) == 6 and all(i.isascii() for i in info["identities"])
    assert any("not UTF-8" in n and "caf\\xe9" in n for n in info["notes"])
    assert any(v == "person5_Jos\\xe9" for v in info["renamed_identities"].values())
    assert len(FaceSet.from_layout(tmp_path / "o")) == 19 and not (tmp_path / "o.partial").exists()
    assert "up to date" in (prepare_folder.main(args) and capsys.readouterr().out)
    proc = subprocess.run([sys.executable, str(REPO / "data_scripts" / "prepare_folder.py"), *args, "--overwrite",
                           "--pseudo", "nir"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


# ---------------------------------------------------------------------- prepare_folder: up to date, resume, splits

def test_up_to_date_only_when_the_photos_are_the_same(photos, tmp_path, capsys):
    """Case 5: after a new person and a lost photo, the same command does not say 'up to date'."""
    args = ["--source", str(photos), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33", *FAST]
    prepare_folder.main(args)
    prepare_folder.main(args)
    assert "up to date" in capsys.readouterr().out
    _person(photos / "person6", 6)
    (photos / "person1" / "2.png").unlink()
    with pytest.raises(DatasetError, match=r"(?s)photos under --source changed.*3 photo\(s\) added \(person6/0\.png.*"
                                           r"1 photo\(s\) removed \(person1/2\.png\).*--overwrite"):
        prepare_folder.main(args)
    info = prepare_folder.main(args + ["--overwrite"])
    assert "person6" in info["identities"] and len(FaceSet.from_layout(tmp_path / "o")) == 20


def test_resume_redoes_a_damaged_image(photos, tmp_path, monkeypatch):
    """Case 5: a resumed run keeps only images it verifies: a truncated aligned or simulated image is redone."""
    from hfr_tutorial.data import spectral

    args = ["--source", str(photos), "--out", str(tmp_path / "o"), "--split", "0.34,0.33,0.33", "--pseudo", "nir", *FAST]
    real = spectral.simulate
    calls = {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # Ctrl-C while the simulated images are written
        return real(*a, **k)

    monkeypatch.setattr(spectral, "simulate", dying)
    with pytest.raises(KeyboardInterrupt):
        prepare_folder.main(args)
    partial = tmp_path / "o.partial"
    aligned = sorted((partial / "images" / "vis").rglob("*.png"))
    simulated = sorted((partial / "images" / "nir").rglob("*.png"))
    assert len(aligned) == 18 and len(simulated) == 3
    for f in (aligned[4], simulated[1]):  # what a kill during a save (or a crash of the disk cache) leaves
        f.write_bytes(f.read_bytes()[:60])
    monkeypatch.setattr(spectral, "simulate", real)
    redone = []
    real_warp = prepare_folder.warp_to_template
    monkeypatch.setattr(prepare_folder, "warp_to_template", lambda *a, **k: (redone.append(1), real_warp(*a, **k))[1])
    prepare_folder.main(args)
    assert len(redone) == 1  # only the damaged aligned image
    validate_layout(tmp_path / "o", decode=True)  # every image decodes to its last byte


def test_resume_with_another_seed_makes_the_simulated_images_again(photos, tmp_path, monkeypatch):
    """A run stopped during the simulation and resumed with another --seed gives that seed's images, not a mix."""
    from hfr_tutorial.data import spectral

    base = ["--source", str(photos), "--split", "0.34,0.33,0.33", "--pseudo", "thermal", *FAST]
    prepare_folder.main(base + ["--out", str(tmp_path / "fresh"), "--seed", "5"])
    real, calls = spectral.simulate, {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(spectral, "simulate", dying)
    with pytest.raises(KeyboardInterrupt):
        prepare_folder.main(base + ["--out", str(tmp_path / "o"), "--seed", "1"])
    monkeypatch.setattr(spectral, "simulate", real)
    prepare_folder.main(base + ["--out", str(tmp_path / "o"), "--seed", "5"])
    for f in sorted((tmp_path / "fresh" / "images" / "thermal").rglob("*.png")):
        assert f.read_bytes() == (tmp_path / "o" / f.relative_to(tmp_path / "fresh")).read_bytes()


def test_pseudo_modality_that_the_sources_hold_for_real_is_refused(tmp_path):
    """--pseudo nir over real NIR photos would put a simulated image in a real one's place: refused before work."""
    src = tmp_path / "photos"
    for i in range(4):
        _person(src / "vis" / f"p{i}", i)
        _person(src / "nir" / f"p{i}", i)
    with pytest.raises(DatasetError, match=r"already hold real nir photos.*--pseudo thermal"):
        prepare_folder.main(["--source", str(src), "--out", str(tmp_path / "o"), "--pseudo", "nir,thermal", *FAST])


def test_one_identity_dev_split_is_refused_before_alignment_and_the_fix_works(tmp_path, monkeypatch, capsys):
    """Case 12: 5 people with the default split would give dev one identity: refused before any alignment, and
    the --split the message suggests then works (no .partial in the way)."""
    src = tmp_path / "photos"
    for i in range(5):
        _person(src / f"p{i}", i)
    args = ["--source", str(src), "--out", str(tmp_path / "o"), *FAST]
    aligned = []
    real_warp = prepare_folder.warp_to_template
    monkeypatch.setattr(prepare_folder, "warp_to_template", lambda *a, **k: (aligned.append(1), real_warp(*a, **k))[1])
    with pytest.raises(DatasetError, match=r"dev would hold a single identity.*impostor pairs.*Use --split ") as info:
        prepare_folder.main(args)
    assert not aligned and not (tmp_path / "o.partial").exists()
    fix = re.search(r"Use --split (\S+?),? or", str(info.value)).group(1)
    out = prepare_folder.main(args + ["--split", fix])
    assert all(out["splits"][s] != 1 for s in ("dev", "eval")) and out["splits"]["eval"] >= 2


def test_a_split_that_cannot_be_filled_leaves_no_partial_and_its_fix_works(tmp_path):
    """Case 12: with too few people of two photos the split is refused before work; --split 1,0,0 then works."""
    src = tmp_path / "photos"
    for i in range(4):
        _person(src / f"p{i}", i, n=2 if i == 0 else 1)
    args = ["--source", str(src), "--out", str(tmp_path / "o"), *FAST]
    with pytest.raises(DatasetError, match=r"--split 1,0,0"):
        prepare_folder.main(args)
    assert not (tmp_path / "o.partial").exists()
    assert prepare_folder.main(args + ["--split", "1,0,0"])["splits"] == {"train": 4, "dev": 0, "eval": 0}


# ---------------------------------------------------------------------- converters: escapes and encodings

def _mcxface(base: Path, rows_extra: list[list[str]] = (), encoding: str = "utf-8", subjects: list[str] | None = None):
    """<root>/<subject>/s<session>/<channel>.png for 4 subjects x 2 sessions x COLOR/NIR, and the CSV."""
    root = base / "MCXFace"
    subjects = subjects or [f"subj{i}" for i in range(4)]
    rows = []
    for i, subject in enumerate(subjects):
        for session in (1, 2):
            for channel in ("color", "nir"):
                rel = f"s{i}/s{session}/{channel}.png"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(_face(i, session)).save(root / rel)
                rows.append([rel, subject, channel.upper(), str(session)])
    csv_path = base / "mcxface.csv"
    text = "path,identity,channel,session\n" + "".join(",".join(r) + "\n" for r in rows + list(rows_extra))
    csv_path.write_bytes(text.encode(encoding))
    return root, csv_path


@pytest.mark.parametrize("path", ["../../secret/face.png", "/SECRET/face.png"])
def test_mcxface_refuses_paths_leaving_root(tmp_path, path):
    """Case 2: a CSV path climbing out of --root (or absolute) is refused, naming the line, before anything is copied."""
    secret = tmp_path / "secret"
    secret.mkdir()
    Image.fromarray(_face(9)).save(secret / "face.png")
    path = path.replace("/SECRET", str(secret))
    root, csv_path = _mcxface(tmp_path / "data", [[path, "subj0", "COLOR", "2"]])
    out = tmp_path / "layout"
    with pytest.raises(DatasetError, match=rf"mcxface\.csv, line 18: path {re.escape(repr(path))} .*--root"):
        mcxface.main(["--root", str(root), "--csv", str(csv_path), "--out", str(out), "--splits", "1", "--no-progress"])
    assert not out.exists()


def test_converter_refuses_a_link_leading_outside_root(tmp_path):
    """Case 2: an image under --root that is a symbolic link to a file outside it is refused before any work."""
    secret = tmp_path / "secret.png"
    Image.fromarray(_face(9)).save(secret)
    root, csv_path = _mcxface(tmp_path / "data")
    (root / "s0" / "s2" / "nir.png").unlink()
    (root / "s0" / "s2" / "nir.png").symlink_to(secret)
    out = tmp_path / "layout"
    with pytest.raises(DatasetError, match=rf"(?s)lead outside --root .*nir\.png -> {re.escape(str(secret))}"):
        mcxface.main(["--root", str(root), "--csv", str(csv_path), "--out", str(out), "--splits", "1", "--no-progress"])
    assert not out.exists() and not list(tmp_path.glob(".layout.partial"))


def test_latin1_mcxface_csv_is_refused_by_name_or_read_with_encoding(tmp_path):
    """Case 11: a Latin-1 CSV is refused naming the file, the line and --encoding; with --encoding the names survive."""
    root, csv_path = _mcxface(tmp_path / "data", encoding="latin-1", subjects=["José", "Zoë", "Ana", "Bo"])
    args = ["--root", str(root), "--csv", str(csv_path), "--splits", "1", "--no-progress"]
    with pytest.raises(DatasetError, match=r"mcxface\.csv: not UTF-8 text \(line 2: .*--encoding latin-1"):
        mcxface.main(args + ["--out", str(tmp_path / "o")])
    mcxface.main(args + ["--out", str(tmp_path / "o"), "--encoding", "latin-1"])
    info = json.loads((tmp_path / "o" / "dataset.json").read_text(encoding="utf-8"))
    assert sorted(info["identities"]) == sorted(["José", "Zoë", "Ana", "Bo"])


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_utf16_casia_lists_are_read_not_garbled(tmp_path, encoding):
    """Case 12: CASIA lists saved as UTF-16 (with or without a byte-order mark) give the same entries as UTF-8."""
    lines = ["s1\\VIS\\10001\\001.jpg", "s2\\NIR\\10002\\016.bmp"]
    path = tmp_path / "vis_train_1.txt"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    assert casia_nir_vis2.parse_list(path) == [(1, "s1/VIS/10001/001.jpg"), (2, "s2/NIR/10002/016.bmp")]
    path.write_bytes("s1\\VIS\\10001\\001.jpg\n".encode("utf-8") + "s1\\VIS\\Ren\xe9e\\002.jpg\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"not UTF-8 text \(line 2"):
        casia_nir_vis2.parse_list(path)


def test_casia_list_entry_climbing_out_is_refused(tmp_path):
    """Case 2: a CASIA list entry with '..' is refused naming the list and line."""
    with pytest.raises(DatasetError, match=r"vis_train_1\.txt, line 3: .*'\.\.'"):
        casia_nir_vis2.split_entry("s1/VIS/../../../etc/passwd", tmp_path / "vis_train_1.txt", 3)


# ---------------------------------------------------------------------- the command line

def test_hfr_tutorial_data_onto_a_layout_says_pass_overwrite_before_work(layout, monkeypatch, capsys):
    """Case 12: 'hfr-tutorial data --out LAYOUT' says 'pass --overwrite' (not overwrite=True), before generating faces."""
    from hfr_tutorial import __main__ as cli
    from hfr_tutorial import artifacts

    monkeypatch.setattr(artifacts, "load_faceset", lambda *a, **k: pytest.fail("faces generated before the check"))
    assert cli.main(["data", "--preset", "smoke", "--out", str(layout)]) == 2
    err = capsys.readouterr().err
    assert "pass --overwrite" in err and "overwrite=True" not in err

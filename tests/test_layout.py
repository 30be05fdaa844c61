"""The standard on-disk layout: round trip, lazy reading, and every validation error."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from hfr_tutorial.config import get_preset
from hfr_tutorial.data import FaceSet, synthetic_faceset
from hfr_tutorial.data.layout import LayoutError, LazyImages, read_layout, validate_layout, write_layout

SMALL = get_preset("fast").replace(data__n_train_ids=4, data__n_dev_ids=1, data__n_eval_ids=2,
                                   data__images_per_modality=2, data__image_size=32)


@pytest.fixture(scope="module")
def fs():
    return synthetic_faceset(SMALL, seed=0, progress=False)


@pytest.fixture()
def layout(fs, tmp_path):
    return write_layout(fs, tmp_path / "lay", alignment="synthetic (no alignment needed)", licence="generated")


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_rows(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["split", "role", "identity", "modality", "path"])
        w.writeheader()
        w.writerows(rows)


def test_round_trip_gives_identical_pixels_and_labels(fs, layout):
    info = json.loads((layout / "dataset.json").read_text())
    assert info["image_size"] == 32 and info["modalities"] == ["vis", "nir", "thermal"]
    back = FaceSet.from_layout(layout)
    assert np.array_equal(back.images, fs.images)
    assert np.array_equal(back.identities, fs.identities)
    assert np.array_equal(back.modalities, fs.modalities)
    assert np.array_equal(back.splits, fs.splits)
    assert list(back.identity_name(back.identities)) == list(fs.identity_name(fs.identities))
    assert all(p.endswith(".png") for p in back.paths)
    rows = _rows(layout / "protocols" / "default.csv")
    roles = {(r["split"], r["role"]) for r in rows}
    assert roles == {("train", "train"), ("dev", "gallery"), ("dev", "probe"), ("eval", "gallery"), ("eval", "probe")}
    gallery = [r for r in rows if r["role"] == "gallery"]
    assert len(gallery) == 3 and {r["modality"] for r in gallery} == {"vis"}
    assert validate_layout(layout)["images"] == len(fs)


def test_lazy_reading(fs, layout):
    lazy = FaceSet.from_layout(layout, lazy=True)
    assert isinstance(lazy.images, LazyImages) and lazy.images.shape == fs.images.shape
    assert np.array_equal(lazy.images[5], fs.images[5])
    assert np.array_equal(lazy.images[np.array([2, 7])], fs.images[[2, 7]])
    ev = lazy.select(split="eval", modality="nir")
    assert isinstance(ev.images, LazyImages)
    assert np.array_equal(np.asarray(ev.images), fs.select(split="eval", modality="nir").images)
    x, y = next(iter(lazy.select(split="train").loader(4, shuffle=False)))
    assert x.shape == (4, 3, 32, 32)


def test_extra_protocols_and_choice(fs, layout, tmp_path):
    rows = _rows(layout / "protocols" / "default.csv")
    nir_only = [r for r in rows if r["modality"] in ("vis", "nir")]
    out = write_layout(fs, tmp_path / "two", protocols={"nir_vis": nir_only})
    assert set(FaceSet.from_layout(out, protocol="nir_vis").modalities) == {"vis", "nir"}
    (out / "protocols" / "default.csv").unlink()
    shutil.copy(out / "protocols" / "nir_vis.csv", out / "protocols" / "other.csv")
    with pytest.raises(LayoutError, match="several protocols"):
        FaceSet.from_layout(out)
    with pytest.raises(LayoutError, match="not found"):
        FaceSet.from_layout(out, protocol="missing")


def test_no_protocol_reads_every_image_unassigned(fs, layout):
    shutil.rmtree(layout / "protocols")
    back = read_layout(layout)
    assert len(back) == len(fs) and set(back.splits) == {""}
    assert set(back.with_splits((0.5, 0.25, 0.25), seed=0).splits) == {"train", "dev", "eval"}


def test_missing_dataset_json(layout):
    (layout / "dataset.json").unlink()
    with pytest.raises(LayoutError, match=r"dataset\.json: missing.*write_layout"):
        FaceSet.from_layout(layout)


def test_unknown_modality(layout):
    rows = _rows(layout / "protocols" / "default.csv")
    rows[0]["modality"] = "infrared"
    _write_rows(layout / "protocols" / "default.csv", rows)
    with pytest.raises(LayoutError, match=r"default\.csv, row 2: unknown modality 'infrared'.*Allowed"):
        FaceSet.from_layout(layout)
    info = json.loads((layout / "dataset.json").read_text())
    info["modalities"] = ["vis", "IR"]
    (layout / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(LayoutError, match=r"dataset\.json: unknown modalities \['IR'\]"):
        validate_layout(layout)


def test_unknown_modality_folder(layout):
    shutil.rmtree(layout / "protocols")
    (layout / "images" / "nir").rename(layout / "images" / "NIR850")
    with pytest.raises(LayoutError, match=r"NIR850.*unknown modality folder.*rename"):
        FaceSet.from_layout(layout)


def test_image_that_does_not_decode(layout):
    rows = _rows(layout / "protocols" / "default.csv")
    bad = layout / rows[3]["path"]
    bad.write_bytes(b"this is not a png")
    with pytest.raises(LayoutError, match=rf"{bad.name}: does not decode.*PNG"):
        validate_layout(layout)
    with pytest.raises(LayoutError, match="does not decode"):
        FaceSet.from_layout(layout)


def test_image_with_wrong_size(layout):
    rows = _rows(layout / "protocols" / "default.csv")
    bad = layout / rows[4]["path"]
    Image.new("RGB", (40, 32)).save(bad)
    with pytest.raises(LayoutError, match=rf"{bad.name}: image is 40x32 but dataset.json says image_size=32.*align"):
        FaceSet.from_layout(layout)


def test_protocol_row_whose_file_is_absent(layout):
    rows = _rows(layout / "protocols" / "default.csv")
    (layout / rows[6]["path"]).unlink()
    with pytest.raises(LayoutError, match=rf"default\.csv, row 8: file '{rows[6]['path']}' is absent"):
        FaceSet.from_layout(layout)


def test_identity_in_train_and_eval_is_refused(layout):
    rows = _rows(layout / "protocols" / "default.csv")
    train_id = rows[0]["identity"]
    ev = next(r for r in rows if r["split"] == "eval")
    ev["identity"] = train_id
    ev["path"] = rows[0]["path"]
    ev["modality"] = rows[0]["modality"]
    _write_rows(layout / "protocols" / "default.csv", rows)
    with pytest.raises(LayoutError, match=rf"\['{train_id}'\] appear in both 'train' and 'eval'.*leak"):
        FaceSet.from_layout(layout)


def test_write_refuses_to_overwrite_and_bad_names(fs, layout):
    with pytest.raises(LayoutError, match="already exists"):
        write_layout(fs, layout)
    bad = FaceSet(fs.images[:2], [0, 0], ["vis", "vis"], identity_names=["a/b"])
    with pytest.raises(LayoutError, match="folder names"):
        bad.write_layout(layout.parent / "bad")

"""The practice set made from the real VIS assets (issue #26): enough eval identities, honest probes, a real gap.

Uses the session fixture ``practice_layout`` (tests/conftest.py): lfw62 + yaleb38 + essex18, 3 photos per
identity, realistic pseudo NIR and thermal, the default split.
"""
from __future__ import annotations

import csv
import json
from collections import defaultdict

import numpy as np
import pytest

from hfr_tutorial.data import FaceSet
from hfr_tutorial.data.layout import validate_layout

pytestmark = pytest.mark.assets


def _rows(layout):
    with open(layout / "protocols" / "default.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_practice_set_has_enough_eval_identities_and_records_its_simulation(practice_layout):
    validate_layout(practice_layout)
    info = json.loads((practice_layout / "dataset.json").read_text())
    assert info["simulated_modalities"] == ["nir", "thermal"] and info["simulation_severity"] == "realistic"
    assert info["prepare_folder"]["per_identity"] == 3 and len(info["identities"]) == 118
    assert info["splits"]["eval"] >= 30
    rows = _rows(practice_layout)
    with_thermal = {r["identity"] for r in rows if r["split"] == "eval" and r["modality"] == "thermal"
                    and r["role"] == "probe"}
    galleries = {r["identity"] for r in rows if r["split"] == "eval" and r["role"] == "gallery"}
    assert len(with_thermal & galleries) >= 30  # intervals over identities mean something
    assert info["alignment_counts"]["centre-crop"] <= 10  # tight Yale B crops are found with a border


def test_no_pseudo_probe_is_made_from_its_gallery_photo(practice_layout):
    rows = _rows(practice_layout)
    gallery = {r["identity"]: r["path"].rsplit("/", 1)[1] for r in rows if r["role"] == "gallery"}
    by = defaultdict(set)
    for r in rows:
        if r["role"] == "probe" and r["modality"] in ("nir", "thermal"):
            name = r["path"].rsplit("/", 1)[1]
            assert name != gallery[r["identity"]], r
            by[r["identity"]].add(name)
    assert by  # and there are pseudo probes


def test_the_real_model_shows_a_thermal_gap_on_it(practice_layout):
    """Unadapted EdgeFace-XXS: VIS easy, NIR harder, thermal much harder (the gap the course is about)."""
    from hfr_tutorial.evaluate import evaluate_protocols, embed
    from hfr_tutorial.models import find_checkpoint, load_edgeface

    fs = FaceSet.from_layout(practice_layout)
    fs = fs.subset(np.isin(fs.splits, ("dev", "eval")))
    model = load_edgeface("edgeface_xxs", find_checkpoint("edgeface_xxs")).eval()
    res = evaluate_protocols(embed(model, fs, progress=False), fs.identities, fs.modalities,
                             ("vis->vis", "nir->vis", "thermal->vis"), roles=fs.roles)
    vis, nir, th = res["vis->vis"], res["nir->vis"], res["thermal->vis"]
    assert vis["rank1"] >= 0.9 and vis["eer"] < 0.08
    assert nir["eer"] < th["eer"] and nir["rank1"] > th["rank1"]
    assert 0.10 <= th["eer"] <= 0.40 and th["rank1"] <= 0.75  # far from the mild simulation's ~0.80 rank-1

"""benchmarks/identity_checks.py: the pixel checks and the grey conversion on a tiny set, the report's verdicts."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hfr_tutorial.config import get_preset
from hfr_tutorial.data import synthetic_faceset

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "identity_checks.py"
_spec = importlib.util.spec_from_file_location("identity_checks", _PATH)
ic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ic)

SMALL = get_preset("fast").replace(data__n_train_ids=24, data__n_dev_ids=2, data__n_eval_ids=24,
                                   data__images_per_modality=3, data__image_size=32)


@pytest.fixture(scope="module")
def small():
    return synthetic_faceset(SMALL, seed=1, progress=False)


def test_pixel_checks_measure_the_gap(small):
    r = ic.pixel_checks(small.select(split="eval"), small.select(split="train"))
    assert r["modality_probe_accuracy"] >= 0.95
    px = r["pixel_rank1"]
    assert set(px) == {"vis->vis", "nir->vis", "thermal->vis"}
    assert px["vis->vis"] > 3 * r["chance_rank1"]  # identity is in raw VIS pixels at all
    assert px["thermal->vis"] < px["vis->vis"]


def test_grey_turns_only_vis_grey(small):
    g = ic.grey(small)
    vis = small.modalities == "vis"
    gi = np.asarray(g.images)
    assert np.all(gi[vis][..., 0] == gi[vis][..., 1]) and np.all(gi[vis][..., 1] == gi[vis][..., 2])
    assert np.array_equal(gi[~vis], np.asarray(small.images)[~vis])
    assert not np.array_equal(gi[vis], np.asarray(small.images)[vis])


def test_report_marks_a_missed_target():
    r = {"preset": "fast", "seed": 0, "images": 10, "image_size": 64, "generation_seconds": 1.0,
         "modality_probe_accuracy": 0.99, "pixel_rank1": {"vis->vis": 0.5, "nir->vis": 0.1, "thermal->vis": 0.3},
         "grey_vis_cost": 0.01, "oracle_cross_over_vis": {"nir->vis": 0.9, "thermal->vis": 0.6},
         "baseline_cross_below_vis": {"nir->vis": 0.6, "thermal->vis": 0.9},
         "rank1": {"baseline": {"vis->vis": 0.9, "nir->vis": 0.3, "thermal->vis": 0.0}},
         "oracle_budget": {"oracle_epochs": 10, "baseline_epochs": 20, "modalities": 3}}
    text = ic.render(r)
    assert "The oracle trained 10 epochs over the 3 modalities without augmentation: 1.5x the optimisation steps" in text
    assert "| oracle thermal->vis / its vis->vis | 0.600 | >= 0.80 | **no** |" in text
    assert "| oracle nir->vis / its vis->vis | 0.900 | >= 0.80 | yes |" in text
    assert "| pixel NN rank-1 thermal->vis / vis->vis | 0.300 / 0.500 | <= half | **no** |" in text
    assert "| pixel NN rank-1 nir->vis / vis->vis | 0.100 / 0.500 | <= half | yes |" in text

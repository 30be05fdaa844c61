"""Choices made on dev only: the sweep never reads eval, extends past a winning end, and matches config."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hfr_tutorial.artifacts import load_faceset
from hfr_tutorial.runs import METHOD_RUN, STAND_IN, get_run
from hfr_tutorial.config import get_preset
from hfr_tutorial.data.faceset import FaceSet
from hfr_tutorial.selection import LR_LADDER, at_edge, best_rate, dev_figures, lr_sweep, selection_score
from hfr_tutorial.train import AdaptSettings

from conftest import tiny_preset

ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_preset()


def test_a_sweep_never_reads_the_eval_split(monkeypatch):
    """The eval split made unreadable: a sweep (training, dev scoring, extension) still runs."""
    select = FaceSet.select

    def guarded(self, split=None, modality=None):
        wanted = (split,) if isinstance(split, str) else tuple(split or ())
        if "eval" in wanted or (split is None and "eval" in set(self.splits.tolist())):
            raise AssertionError(f"a selection helper asked for the eval split (split={split!r})")
        return select(self, split, modality)

    monkeypatch.setattr(FaceSet, "select", guarded)
    table = lr_sweep(AdaptSettings(policy="layernorm", contrastive="infonce"), TINY, rates=(1e-3, 3e-3),
                     max_extend=1, progress=False)
    assert 2 <= len(table) <= 3 and table["chosen"].sum() == 1
    assert set(table.index) <= set(LR_LADDER)
    assert {"vis->vis rank1", "nir->vis rank1", "thermal->vis rank1", "score", "tie"} <= set(table.columns)
    chosen = table[table["chosen"]].iloc[0]
    assert chosen["score"] == table["score"].max()


def test_dev_figures_refuse_other_splits():
    faceset = load_faceset(TINY, progress=False)
    from hfr_tutorial.models import create_edgeface

    model = create_edgeface("edgeface_xxs", seed=0).eval()
    with pytest.raises(ValueError, match="dev only"):
        dev_figures(model, faceset.select(split=("dev", "eval")))
    figures = dev_figures(model, faceset.select(split="dev"))
    assert set(figures) == {"vis->vis", "nir->vis", "thermal->vis"}
    assert selection_score(figures)[0] == pytest.approx(np.mean([f["rank1"] for f in figures.values()]))


def test_the_winner_rule_and_the_edge_flag():
    rows = {1e-3: {"score": 0.5, "tie": 0.9}, 3e-3: {"score": 0.7, "tie": 0.8}, 1e-2: {"score": 0.7, "tie": 0.8}}
    assert best_rate(rows) == 3e-3  # a tie on score and AUC goes to the smaller rate
    rows[1e-2]["tie"] = 0.85
    assert best_rate(rows) == 1e-2
    import pandas as pd

    table = pd.DataFrame({"chosen": [False, False, True]}, index=[1e-3, 3e-3, 1e-2])
    assert at_edge(table)
    with pytest.raises(ValueError, match="ladder"):
        lr_sweep(AdaptSettings(), TINY, rates=(2e-3,), progress=False)


def test_comparison_rates_are_the_dev_winners_on_record():
    """The stand-in rates of the registered runs are the winners of docs/results/dev_selection/selection.json."""
    record = json.loads((ROOT / "docs" / "results" / "dev_selection" / "selection.json").read_text())
    assert record["preset"] == "fast"
    for name, entry in record["sweeps"].items():
        assert get_run(name).rates[STAND_IN] == pytest.approx(entry["chosen_lr"]), name
        chosen = [c for c in entry["candidates"].values() if c["chosen"]]
        assert len(chosen) == 1 and chosen[0]["score"] == max(c["score"] for c in entry["candidates"].values())
    assert METHOD_RUN == record["method"]


def test_recipe_switches_are_the_dev_winners_on_record():
    """TrainConfig's oracle_augment and adapt_augment_vis are the winners of choices.json (chosen on dev)."""
    from hfr_tutorial.config import TrainConfig

    record = json.loads((ROOT / "docs" / "results" / "dev_selection" / "choices.json").read_text())
    assert record["preset"] == "fast"
    for setting, entry in record["choices"].items():
        rows = entry["candidates"]
        best = max(rows.values(), key=lambda r: (r["score"], r["tie"]))
        assert rows[entry["chosen"]]["score"] == best["score"], setting
        assert str(getattr(TrainConfig(), setting)) == entry["chosen"], setting
    assert set(record["choices"]) == {"oracle_augment", "adapt_augment_vis"}

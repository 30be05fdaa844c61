"""Side-by-side training: missing models of an experiment train in spawned processes into the same cache entries."""
from __future__ import annotations

import pytest

from hfr_tutorial.artifacts import is_cached, load_oracle
from hfr_tutorial.experiment import Experiment, run
from hfr_tutorial.parallel_build import default_workers
from hfr_tutorial.runs import METHOD_RUN, ORACLE_RUN, STAND_IN, get_run

from conftest import tiny_preset


def test_workers_come_from_the_environment_and_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("HFR_BUILD_WORKERS", "3")
    assert default_workers() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("HFR_BUILD_WORKERS", bad)
        with pytest.raises(ValueError, match="HFR_BUILD_WORKERS"):
            default_workers()


@pytest.mark.slow
def test_two_workers_build_what_the_loaders_then_load(tmp_path):
    tiny = tiny_preset()
    runs = (METHOD_RUN, "paper/infonce", ORACLE_RUN)
    assert not is_cached("baseline", tiny)
    metrics = run(Experiment(preset=tiny, runs=runs), tmp_path / "out", device="cpu", workers=2, progress=False)
    assert set(metrics["trained_here"]) == {"start", ORACLE_RUN, f"{METHOD_RUN} (lr 0.03)", "paper/infonce (lr 0.03)"}
    spec = get_run(METHOD_RUN)
    assert is_cached("baseline", tiny) and is_cached(spec.settings_at(spec.rates[STAND_IN]), tiny)
    oracle = load_oracle(tiny, progress=False)
    models = metrics["folds"]["default"]["models"]
    assert oracle.from_cache and not any(m["from_cache"] for m in models.values())  # trained by this run
    assert models[METHOD_RUN]["train_threads"] == oracle.meta["threads"] >= 1
    again = run(Experiment(preset=tiny, runs=runs), tmp_path / "o2", device="cpu", workers=2, progress=False)
    assert again["trained_here"] == {}  # all cached: nothing to do

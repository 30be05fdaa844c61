"""parallel_build: missing models train side by side into the same cache entries the loaders use."""
from __future__ import annotations

import pytest

from hfr_tutorial.artifacts import COMPARISON_RUNS, METHOD_RUN, ORACLE_RUN, is_cached, load_adapted, load_oracle
from hfr_tutorial.config import get_preset
from hfr_tutorial.parallel_build import build_missing, default_workers

TINY = get_preset("smoke").replace(
    name="tiny-par", data__n_train_ids=24, data__n_dev_ids=8, data__n_eval_ids=8, train__batch_size=12,
    train__baseline_epochs=1, train__oracle_epochs=1, train__adapt_epochs=1, train__adapt_pairs_per_identity=1)


def test_workers_come_from_the_environment_and_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("HFR_BUILD_WORKERS", "3")
    assert default_workers() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("HFR_BUILD_WORKERS", bad)
        with pytest.raises(ValueError, match="HFR_BUILD_WORKERS"):
            default_workers()


def test_one_worker_or_unknown_runs(monkeypatch):
    assert build_missing([METHOD_RUN, ORACLE_RUN], TINY, workers=1, progress=False) == {}
    assert not is_cached("baseline", TINY)  # nothing was built
    with pytest.raises(ValueError, match="unknown run"):
        build_missing(["paper/nonsense"], TINY, workers=2, progress=False)


@pytest.mark.slow
def test_two_workers_build_what_the_loaders_then_load():
    runs = [METHOD_RUN, "paper/infonce", ORACLE_RUN]
    assert not any(is_cached(r, TINY) for r in ["baseline", *runs])
    built = build_missing(runs, TINY, workers=2, progress=False)
    assert set(built) == {"baseline", *runs}
    assert all(is_cached(r, TINY) for r in ["baseline", *runs])
    method = load_adapted(COMPARISON_RUNS[METHOD_RUN], TINY, progress=False)
    oracle = load_oracle(TINY, progress=False)
    assert method.from_cache and oracle.from_cache
    assert method.meta["threads"] == oracle.meta["threads"] >= 1
    assert build_missing(runs, TINY, workers=2, progress=False) == {}  # all cached: nothing to do

"""The determinism claim, proven: two fresh processes, each with its own empty cache, give the same figures.

Its scope is the README's: the same machine and the same library versions (another CPU may round
differently).  Each process generates the data, trains the baseline and one adaptation run, and
evaluates; every metric must agree exactly.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
from hfr_tutorial.config import get_preset
from hfr_tutorial.experiment import Experiment, run
preset = get_preset("smoke").replace(name="determinism", data__n_train_ids=24, data__n_dev_ids=8, data__n_eval_ids=8,
                                     train__batch_size=12, train__baseline_epochs=1, train__adapt_epochs=1,
                                     train__adapt_pairs_per_identity=1)
m = run(Experiment(preset=preset, runs=("paper/infonce+distill",)), sys.argv[1], workers=1, progress=False,
        figures=False)
fold = m["folds"]["default"]
print(json.dumps({"baseline": fold["models"]["baseline"]["protocols"],
                  "run": fold["models"]["paper/infonce+distill"]["protocols"],
                  "intervals": fold["models"]["paper/infonce+distill"]["intervals"], "claims": fold["claims"]}))
"""


@pytest.mark.slow
def test_two_processes_with_empty_caches_give_identical_figures(tmp_path):
    outputs = []
    for i in range(2):
        env = {**os.environ, "HFR_CACHE": str(tmp_path / f"cache{i}"), "PYTHONHASHSEED": str(i)}
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / f"out{i}")], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]
    assert 0 <= outputs[0]["run"]["nir->vis"]["rank1"] <= 1

"""benchmarks/sensor_calibration.py --quick: the plumbing of the calibration (its quick figures mean nothing)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfr_tutorial.data.detect import detector_available

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.assets, pytest.mark.slow]


def test_quick_calibration_writes_the_table(assets, tmp_path):
    if not detector_available():
        pytest.skip("the practice set needs dlib (pip install dlib-bin face-recognition-models)")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HFR_ASSETS": str(assets)}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sensor_calibration.py"), "--quick",
                             "--work", str(tmp_path / "work"), "--out", str(out)],
                            capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rec = json.loads((out / "calibration.json").read_text())
    assert set(rec["results"]) == {"mild", "realistic"} and rec["layout_matches_rendering"] == {"nir": True,
                                                                                             "thermal": True}
    assert rec["dev"]["identities"] >= 20 and rec["settings"]["quick"]
    for name, res in rec["results"].items():
        for protocol in ("vis->vis", "nir->vis", "thermal->vis"):
            row = res[protocol]
            for metric in ("rank1", "auc", "eer"):
                lo, hi = row[f"{metric}_ci"]
                assert lo <= row[metric] + 2e-3 and row[metric] - 2e-3 <= hi, (name, protocol, metric)
    # the realistic sensors are harder for the real model than the mild ones, thermal most
    assert rec["results"]["realistic"]["thermal->vis"]["eer"] > rec["results"]["mild"]["thermal->vis"]["eer"]
    md = (out / "calibration.md").read_text()
    assert "| **realistic** (default) |" in md and "Machine:" in md and "eval identities' images were never read" in md

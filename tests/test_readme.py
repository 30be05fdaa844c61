"""The README's generated sections match the committed results, and it states the two commands."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_generated_sections_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "update_readme.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_readme_has_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    install_and_run = ('python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e ".[dev]" && '
                       ".venv/bin/hfr-tutorial run --preset fast --out runs/fast")
    assert install_and_run in readme
    assert "\nbash .ci/run\n" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-c constraints.txt" in ci and "--nbval-lax" in ci


def test_constraints_pin_the_torch_pair():
    lines = {line.strip() for line in (ROOT / "constraints.txt").read_text().splitlines()}
    assert {"torch==2.14.1", "torchvision==0.29.1"} <= lines

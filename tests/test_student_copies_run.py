"""The student copies run up to their first exercise, as a student runs them (issue #28).

Its own file, so that pytest-xdist (``--dist loadfile`` in ``.ci/run``) gives these minutes of notebook
execution to one worker while the other takes the rest of the suite.  The nine copies share one cache
for the session (the smoke preset's data and models are built once, by the first copy that needs them),
as a student's copies share the user's cache.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def student_cache(tmp_path_factory) -> Path:
    """One cache for every student copy of the session (a student's copies share the user's cache)."""
    return tmp_path_factory.mktemp("student_cache")


STUDENT_NOTEBOOKS = sorted((ROOT / "notebooks" / "student").glob("[0-9][0-9]_*.ipynb"))
EXERCISE_MARKER = "# YOUR CODE HERE"
"""The first line of the stub tools/make_student.py puts where a solution was: a student's first exercise."""
STUDENT_RUN_ENV = "HFR_STUDENT_RUN"
STUDENT_PRESET_ENV = "HFR_STUDENT_PRESET"


@pytest.mark.slow
@pytest.mark.parametrize("path", STUDENT_NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copy_runs_up_to_its_first_exercise(path, monkeypatch, student_cache):
    """Execute a student copy's cells up to (not including) its first exercise cell, in a fresh kernel.

    It runs what a student runs before writing any code, on one cache shared by the nine copies (fresh
    for the session), with the user's preset or the one ``HFR_STUDENT_PRESET`` names.  On the fast
    preset that is minutes per notebook (docs/instructor_guide.md); CI runs it with
    ``HFR_STUDENT_PRESET=smoke`` (the same cells on tiny data, so an error a student would meet before
    the first exercise still shows).  Opt in with HFR_STUDENT_RUN=1.
    """
    import os

    monkeypatch.setenv("HFR_CACHE", str(student_cache))
    if os.environ.get(STUDENT_PRESET_ENV):
        monkeypatch.setenv("HFR_PRESET", os.environ[STUDENT_PRESET_ENV])  # the kernel inherits the environment
    # static explorers: under nbclient the live IdentityExplorer of notebook 06 (an Output widget redrawn from
    # the kernel) left the client waiting on an idle kernel for over 30 min (seen 2026-12-02, ipykernel 7.4.0,
    # nbclient 0.11.0); a student's Jupyter front end is not nbclient, and the cells run the same either way
    monkeypatch.setenv("HFR_STATIC_WIDGETS", "1")
    if os.environ.get(STUDENT_RUN_ENV, "") != "1":
        pytest.skip(f"executes the student notebooks up to their first exercise (minutes each, with a warm cache); "
                    f"set {STUDENT_RUN_ENV}=1 to run it")
    from nbconvert.preprocessors import ExecutePreprocessor

    nb = nbformat.read(path, as_version=4)
    first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and EXERCISE_MARKER in c.source), None)
    assert first is not None, f"{path.name} has no exercise cell (no {EXERCISE_MARKER!r} stub)"
    assert any(c.cell_type == "code" for c in nb.cells[:first]), f"{path.name}: no code before the first exercise"
    nb.cells = nb.cells[:first]
    ExecutePreprocessor(timeout=1800, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(path.parent)}})
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"

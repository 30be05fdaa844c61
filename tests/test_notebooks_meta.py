"""The notebooks follow the house skeleton, and their student copies are current.

Every solved notebook ``notebooks/NN_*.ipynb``:
- carries a metadata block ``metadata.hfr_tutorial`` with ``accelerator``, ``runtime_fast_min``,
  ``runtime_full_min`` and ``datasets``;
- opens with a title, learning goals, prerequisites and expected run time; ends with a summary
  and what comes next;
- imports its machinery from ``hfr_tutorial`` and redefines none of the library's public
  functions (a teaching re-implementation is allowed when the cell is tagged ``from-scratch``);
- has at least one figure in its outputs, was executed in order, and has no error outputs;
- has SOLUTION markers only in pairs;
- saves no widget state (progress bars are text), so a saved notebook shows no frozen "0%" bars.
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import hfr_tutorial

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["00_data_and_modality_gap", "01_baseline_rgb_model", "02_layer_freezing", "03_contrastive_alignment",
            "04_self_distillation", "05_full_training", "06_evaluation", "07_real_edgeface", "08_edge_deployment"]


def _library_names() -> set[str]:
    names = set()
    for mod in pkgutil.walk_packages(hfr_tutorial.__path__, "hfr_tutorial."):
        if mod.name.endswith("__main__"):
            continue
        module = importlib.import_module(mod.name)
        names |= {n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n))
                  and getattr(getattr(module, n), "__module__", "").startswith("hfr_tutorial")}
    return names


def test_the_sequence_is_complete():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_skeleton_and_metadata(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    meta = nb.metadata.get("hfr_tutorial")
    assert meta, f"{path.name}: add metadata.hfr_tutorial (accelerator, runtime_fast_min, runtime_full_min, datasets)"
    assert set(meta["accelerator"]) <= {"cpu", "gpu"} and meta["accelerator"]
    assert 0 < meta["runtime_fast_min"] <= 3, "a fast-preset notebook must run in at most 3 minutes on 2 cores"
    assert meta["runtime_full_min"] > 0 and isinstance(meta["datasets"], list)
    # the title cell opens the notebook, after the badges of tools/add_badges.py where it carries them
    first = next(c for c in nb.cells if not c.source.startswith("<!-- hfr-header:")).source.lower()
    for word in ("learning goals", "prerequisites", "run time"):
        assert word in first, f"{path.name}: the first cell must state {word!r}"
    tail = "\n".join(c.source.lower() for c in nb.cells[-3:] if c.cell_type == "markdown")
    assert "summary" in tail and "next" in tail, f"{path.name}: end with a summary and what comes next"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_was_executed_with_a_figure_and_no_error(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    counts = [c.execution_count for c in code]
    assert all(counts), f"{path.name}: run every cell before committing (outputs are part of the product)"
    assert counts == sorted(counts), f"{path.name}: cells were executed out of order; restart and run all"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} has an error output"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} shows no figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saved_outputs_hold_no_stderr(path):
    """No progress bar, warning or cache-lock message is saved (tools/execute_notebooks.sh drops stderr with
    tools/clean_outputs.py): the saved outputs are what the lesson shows, the same on every machine."""
    nb = nbformat.read(path, as_version=4)
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             for o in c.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not found, f"{path.name}: stderr saved in cells {sorted(set(found))}: run python tools/clean_outputs.py {path.name}"
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")
    assert "is being built by" not in text and "Still waiting for cache entry" not in text, \
        f"{path.name}: a cache-lock message (hfr_tutorial.cache) was saved: re-execute it alone on a quiet cache"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_imports_instead_of_redefining(path):
    nb = nbformat.read(path, as_version=4)
    library = _library_names()
    sources = [c for c in nb.cells if c.cell_type == "code"]
    assert any("hfr_tutorial" in c.source for c in sources), f"{path.name} does not import hfr_tutorial"
    for cell in sources:
        if "from-scratch" in cell.metadata.get("tags", []):
            continue
        body = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(body)
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        clash = defined & library
        assert not clash, (f"{path.name} redefines {sorted(clash)} from hfr_tutorial; import it, or tag the cell "
                           "'from-scratch' and show that it equals the library's")
    text = "\n".join(c.source for c in sources)
    assert text.count("### BEGIN SOLUTION") == text.count("### END SOLUTION")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_finds_the_repository_from_the_package_not_the_working_folder(path):
    """The student copy runs from notebooks/student/, a user's Jupyter from anywhere: a path built from
    ``Path.cwd()`` or ``os.getcwd()`` points at the wrong folder there (CI found notebook 07's student copy
    running ``notebooks/student/data_scripts/prepare_folder.py``).  Use ``repository_root()`` or
    ``results_file()`` from ``hfr_tutorial.config``."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not re.search(r"Path\.cwd\(\)|os\.getcwd\(\)", cell.source), (
                f"{path.name} locates files from the working folder; use hfr_tutorial.config.repository_root()")


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TEXT_PROGRESS = "tqdm.auto.tqdm = tqdm.std.tqdm"
TEXT_PROGRESS_NOTEBOOKS = EXPECTED[:7]
"""The notebooks whose setup cell routes progress bars to plain text (07 and 08 are to follow)."""


@pytest.mark.parametrize("path", NOTEBOOKS + sorted((ROOT / "notebooks" / "student").glob("[0-9][0-9]_*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_widget_state_is_saved(path):
    """A saved notebook shows text, not a "0%" widget bar frozen at its first frame."""
    nb = nbformat.read(path, as_version=4)
    widgets = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
               for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]
    assert not widgets, (f"{path.name}: cells {sorted(set(widgets))} saved tqdm/ipywidgets widget outputs; route "
                         f"progress bars to text in the setup cell ({TEXT_PROGRESS}) or pass progress=False")
    assert "widgets" not in nb.metadata, f"{path.name}: metadata.widgets holds saved widget state; drop it"


@pytest.mark.parametrize("name", TEXT_PROGRESS_NOTEBOOKS)
def test_progress_bars_are_text(name):
    """hfr_tutorial's progress bars use tqdm.auto, which draws widgets in a kernel; the setup cell swaps in
    the text bar before hfr_tutorial is imported (train.py binds tqdm when it is imported)."""
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    # the set-up cell: the first code cell after the install cell of tools/add_badges.py, where there is one
    setup = next(c for c in nb.cells if c.cell_type == "code" and not c.source.startswith("# hfr-header:")).source
    assert TEXT_PROGRESS in setup, f"{name}: the setup cell must set {TEXT_PROGRESS}"
    assert setup.index(TEXT_PROGRESS) < setup.index("hfr_tutorial"), f"{name}: set it before importing hfr_tutorial"


def test_student_copies_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_student.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_student_copy_replaces_solutions_and_clears_outputs(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_student
    finally:
        sys.path.pop(0)
    src = "x = 1\n    ### BEGIN SOLUTION\n    y = secret()\n    ### END SOLUTION\nz = 2\n"
    out = make_student.student_source(src)
    assert "secret" not in out and "NotImplementedError" in out and out.startswith("x = 1") and out.endswith("z = 2\n")
    assert re.search(r"^    raise NotImplementedError", out, re.M)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(src, outputs=[nbformat.v4.new_output("stream", text="hi")],
                                              execution_count=3))
    student = make_student.student_notebook(nb)
    assert student.cells[0].outputs == [] and student.cells[0].execution_count is None
    nbformat.validate(student)


# --------------------------------------------------------------------------------------------
# The course kit: glossary links, three kinds of exercise, student copies that run
# --------------------------------------------------------------------------------------------
GLOSSARY = ROOT / "docs" / "glossary.md"
GLOSSARY_LINK = re.compile(r"\]\(\.\./docs/glossary\.md#([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_glossary_links_resolve():
    anchors = {_anchor(line[3:]) for line in GLOSSARY.read_text().splitlines() if line.startswith("## ")}
    assert {"d-prime-d", "layernorm-and-layernorm2d", "tarfar-and-vrfar"} <= anchors
    linked = set()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        links = {a for c in nb.cells if c.cell_type == "markdown" for a in GLOSSARY_LINK.findall(c.source)}
        assert links, f"{path.name} links no glossary term; link the terms where they first appear"
        unknown = links - anchors
        assert not unknown, f"{path.name} links glossary anchors that do not exist: {sorted(unknown)}"
        linked |= links
    assert len(linked) >= 15, f"only {len(linked)} glossary terms are linked from the notebooks"


EXERCISE_KINDS = {"reproduce": r"\(reproduce\)", "predict, then run": r"\(predict, (then )?run",
                  "explain": r"explain\)"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_the_three_kinds_of_exercise(path):
    nb = nbformat.read(path, as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    missing = [kind for kind, pattern in EXERCISE_KINDS.items() if not re.search(pattern, prose)]
    assert not missing, f"{path.name} has no exercise of the kind(s) {missing} (headings say the kind in brackets)"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "### BEGIN SOLUTION" in code, f"{path.name}: the model answers belong in solution blocks"


# --------------------------------------------------------------------------------------------
# Grading: rubrics for the instructor, none of it in the student copies
# --------------------------------------------------------------------------------------------
def _instructor_answers():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import instructor_answers
    finally:
        sys.path.pop(0)
    return instructor_answers


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_is_graded_by_a_check_or_a_rubric(path):
    """A reproduce exercise ends in a self-check; a predict exercise checks the form of its prediction and shows the
    outcome; an explain exercise checks that an answer was written; both have a rubric in their solution block."""
    exercises = _instructor_answers().exercises(path)
    assert exercises, f"{path.name}: no exercise found"
    for ex in exercises:
        name = f"{path.name} exercise {ex.number} ({ex.kind})"
        calls = " ".join(ex.checks)
        assert ex.solutions, f"{name}: no solution block"
        if "reproduce" in ex.kind:
            assert re.search(r"\bcheck_\w+\(", calls), f"{name}: no self-check"
        if "predict" in ex.kind:  # the form of the prediction (or, for a prediction by formula, a function check)
            assert re.search(r"\bcheck_\w+\(", calls) and "show_outcome(" in calls, (
                f"{name}: check the prediction's form (check_prediction) and show the outcome (show_outcome)")
        if "explain" in ex.kind or "predict" in ex.kind:
            assert ex.rubrics and all(items for _, items in ex.rubrics), (
                f"{name}: add a '# Rubric (n points):' comment with '# - ...' items to its solution block")
        if "explain" in ex.kind and "predict" not in ex.kind:
            assert "check_answer(" in calls, f"{name}: check that an answer was written (check_answer)"


def test_the_student_copies_hold_no_model_answer_and_no_rubric():
    for path in NOTEBOOKS:
        student = nbformat.read(ROOT / "notebooks" / "student" / path.name, as_version=4)
        text = "\n".join(c.source for c in student.cells if c.cell_type == "code")
        assert "# Rubric" not in text and "### BEGIN SOLUTION" not in text, path.name
        for ex in _instructor_answers().exercises(path):
            for block in ex.solutions:
                for line in block.splitlines():
                    if len(line.strip()) > 30:
                        assert line.strip() not in text, f"{path.name}: the student copy holds {line.strip()!r}"


def test_the_instructor_answers_are_not_shipped_with_the_student_copies():
    answers = ROOT / "docs" / "instructor" / "answers.md"
    assert answers.is_file() and "Rubric" in answers.read_text(encoding="utf-8")
    assert not list((ROOT / "notebooks" / "student").glob("*.md"))


def _used_entries(path: Path) -> dict[str, str]:
    """The ``{name: cache entry}`` a notebook printed with ``print_used_entries`` in its saved outputs."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "print_used_entries()" in cell.source:
            text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
            return {m.group(1): m.group(2) for m in re.finditer(r"^  (.+): (\S+)$", text, flags=re.M)}
    return {}


def test_every_notebook_shows_the_cache_entries_it_used_and_they_agree():
    """One true set of outputs (issue #28): every notebook prints the cache entries behind its figures, and a
    model two notebooks show is one entry (the notebooks were executed in one pass on one cache)."""
    used = {p.name: _used_entries(p) for p in NOTEBOOKS}
    missing = [name for name, entries in used.items() if not entries]
    assert not missing, f"notebooks without a print_used_entries() cell with its output: {missing}"
    seen: dict[str, tuple[str, str]] = {}
    for nb, entries in used.items():
        for model, entry in entries.items():
            if model in seen:
                assert seen[model][1] == entry, (f"{model}: {seen[model][0]} used {seen[model][1]}, {nb} used {entry}: "
                                                 "re-execute every notebook in one pass on one cache")
            else:
                seen[model] = (nb, entry)

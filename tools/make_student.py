"""Generate the student copies of the notebooks: ``notebooks/student/NN_*.ipynb``.

The solved notebooks in ``notebooks/`` are the source.  In a student copy every region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` (comment lines in a code cell) is replaced by a
stub that raises ``NotImplementedError``, and all outputs and execution counts are cleared; the
prose, the setup and the self-checks stay.  The markers live in the source, not in cell
metadata, so editors cannot drop them.  A solved notebook's header cells (``tools/add_badges.py``)
become the student copy's own: its badges open the student copy, at the same repository and ref.
The relative links of the Markdown cells are rewritten for the student folder (``tools/links.py``):
``../docs/glossary.md#term`` becomes ``../../docs/glossary.md#term``, and a link to another solved
notebook opens its student copy beside it.

The same run writes the instructor's file ``docs/instructor/answers.md``
(``tools/instructor_answers.py``): every exercise's question, the self-checks that grade it, its model
solution and, for the predict and explain exercises, the grading rubric, all taken from the solution
blocks, which the student copies do not have.

    python tools/make_student.py            # write notebooks/student/ and docs/instructor/answers.md
    python tools/make_student.py --check    # exit 1 if either is out of date

CI runs ``--check`` (through ``tests/test_notebooks_meta.py``).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # add_badges, links, instructor_answers, beside this script
import links  # noqa: E402  (tools/links.py)

SOURCE = ROOT / "notebooks"
TARGET = SOURCE / "student"
SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)", re.M | re.S)
STUB = "{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError(\"Exercise: write your solution here\")\n"


def student_source(source: str) -> str:
    """The cell source with each solution region replaced by the stub."""
    return SOLUTION.sub(lambda m: STUB.format(indent=m.group(1)), source)


def _student_link(resolved: Path) -> str:
    """A solved notebook's link to another solved notebook opens that notebook's student copy, beside it."""
    if resolved.parent == SOURCE and resolved.suffix == ".ipynb" and re.match(r"\d\d_", resolved.name):
        return resolved.name
    return ""


def student_markdown(source: str) -> str:
    """A Markdown cell's source with its relative links rewritten for ``notebooks/student/``."""
    return links.retarget(source, SOURCE, TARGET, _student_link)


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    out.nbformat, out.nbformat_minor = nb.nbformat, nb.nbformat_minor
    for cell in nb.cells:
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(student_source(cell.source), metadata=cell.metadata)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(student_markdown(cell.source), metadata=cell.metadata)
        else:
            new = nbformat.v4.new_raw_cell(cell.source, metadata=cell.metadata)
        if "id" in cell:  # keep the solved cell's id: deterministic output, valid nbformat 4.5
            new["id"] = cell["id"]
        else:
            new.pop("id", None)
        out.cells.append(new)
    out.metadata = dict(nb.metadata)
    out.metadata["hfr_tutorial_student_copy"] = True
    return out


def render(path: Path) -> str:
    import add_badges  # tools/, beside this script

    nb = nbformat.read(path, as_version=4)
    student = student_notebook(nb)
    settings = add_badges.header_settings(nb)
    if settings:  # the solved notebook's header, retargeted at the student copy
        student = add_badges.with_header(student, path.name, *settings, student=True)
    text = nbformat.writes(student)
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    sources = sorted(SOURCE.glob("[0-9][0-9]_*.ipynb"))
    stale = []
    TARGET.mkdir(exist_ok=True)
    expected_names = {p.name for p in sources}
    for extra in sorted(p for p in TARGET.glob("*.ipynb") if p.name not in expected_names):
        stale.append(f"{extra} has no solved notebook")
        if not args.check:
            extra.unlink()
    for src in sources:
        text, dst = render(src), TARGET / src.name
        if args.check:
            if not dst.is_file() or dst.read_text() != text:
                stale.append(f"{dst} is out of date")
        else:
            dst.write_text(text)
    import instructor_answers  # tools/instructor_answers.py

    answers = instructor_answers.render(sources)
    if args.check:
        if not instructor_answers.TARGET.is_file() or instructor_answers.TARGET.read_text() != answers:
            stale.append(f"{instructor_answers.TARGET} is out of date")
    else:
        instructor_answers.TARGET.parent.mkdir(parents=True, exist_ok=True)
        instructor_answers.TARGET.write_text(answers)
    if args.check and stale:
        print("Student copies are stale:\n  " + "\n  ".join(stale) + "\nRun: python tools/make_student.py", file=sys.stderr)
        return 1
    if not args.check:
        print(f"Wrote {len(sources)} student notebooks to {TARGET} and the instructor's answers to "
              f"{instructor_answers.TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

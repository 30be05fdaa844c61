"""Write ``docs/instructor/answers.md``: every exercise's model answer and grading rubric, for the instructor.

The source is the solved notebooks.  An exercise starts at a Markdown line ``### Exercise N (kind): ...``
or ``**Exercise N (kind)...**`` and owns the code cells after it, up to the next Markdown cell.  From
them the file takes:

* the question (the Markdown from the exercise's heading on, links rewritten for ``docs/instructor/``,
  links to notebooks kept as their text);
* how it is graded: the self-check calls outside the solution blocks, each with the first sentence of
  its docstring (read from ``hfr_tutorial/checks/`` without importing the package);
* the model solution: the code of the solution blocks, without their rubric;
* the rubric: the comment block ``# Rubric (...):`` of a solution block, its ``# - ...`` items.

The student copies have none of this (their solution blocks are stubs).  Run by
``tools/make_student.py`` (which also checks it with ``--check``).
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import links  # noqa: E402  (tools/links.py)

TARGET = ROOT / "docs" / "instructor" / "answers.md"
NOTEBOOKS = ROOT / "notebooks"
CHECKS = ROOT / "hfr_tutorial" / "checks"
HEADING = re.compile(r"^(?:#{2,4}\s*|\*\*)Exercise\s+(\d+)\s+\(([^)]*)\)[.:]?\s*(.*)$", re.M)
REGION = re.compile(r"^[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION[^\n]*(?:\n|$)", re.M | re.S)
RUBRIC = re.compile(r"^[ \t]*# Rubric\b[^\n]*\n(?:[ \t]*#[^\n]*\n?)*", re.M)


@dataclass
class Exercise:
    notebook: str
    number: int
    kind: str
    title: str
    question: str
    solutions: list[str] = field(default_factory=list)
    rubrics: list[tuple[str, list[str]]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def check_summaries() -> dict[str, str]:
    """Each public function of ``hfr_tutorial/checks/``: the first sentence of its docstring."""
    out = {}
    for path in sorted(CHECKS.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                doc = ast.get_docstring(node) or ""
                first = doc.split("\n\n")[0].replace("\n", " ").strip()
                out[node.name] = first
    return out


def _rubric(block: str) -> tuple[str, list[str]]:
    lines = [ln.strip()[1:].strip() for ln in block.strip().splitlines()]
    title = lines[0].rstrip(":")
    items: list[str] = []
    for line in lines[1:]:
        if line.startswith("- "):
            items.append(line[2:])
        elif items and line:
            items[-1] += " " + line
    return title, items


def _calls(source: str) -> list[str]:
    """The check and outcome calls of a cell, outside its solution blocks, as written."""
    outside = REGION.sub("", source)
    body = "\n".join(line for line in outside.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id.startswith("check_") or node.func.id == "show_outcome"):
            found.append(ast.get_source_segment(body, node) or node.func.id)
    return found


def _split_heading(line: str) -> tuple[str, str]:
    """``(title, rest of the line)`` of an exercise heading (``### Exercise ...`` or ``**Exercise ...** rest``)."""
    if line.startswith("**"):
        close = line.find("**", 2)
        head, rest = (line[2:close], line[close + 2:].strip()) if close > 0 else (line[2:], "")
    else:
        head, rest = line.lstrip("#").strip(), ""
    m = re.match(r"Exercise\s+\d+\s+\([^)]*\)[.:]?\s*(.*)", head)
    return (m.group(1) if m else head).strip(" .:"), rest


def _question(chunk: str) -> str:
    """The question's Markdown without its heading, links rewritten for ``docs/instructor/``."""
    first, _, rest = chunk.partition("\n")
    text = (_split_heading(first)[1] + "\n" + rest).strip()
    return links.retarget(text, NOTEBOOKS, TARGET.parent, lambda p: None if p.suffix == ".ipynb" else "")


def exercises(path: Path) -> list[Exercise]:
    """The exercises of one solved notebook, in order."""
    nb = nbformat.read(path, as_version=4)
    found: list[Exercise] = []
    current: Exercise | None = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            matches = list(HEADING.finditer(cell.source))
            current = None
            for i, m in enumerate(matches):
                end = matches[i + 1].start() if i + 1 < len(matches) else len(cell.source)
                chunk = cell.source[m.start():end]
                current = Exercise(path.stem, int(m.group(1)), m.group(2), _split_heading(m.group(0))[0],
                                   _question(chunk))
                found.append(current)
            continue
        if current is None or cell.cell_type != "code":
            continue
        for region in REGION.findall(cell.source):
            for block in RUBRIC.findall(region):
                current.rubrics.append(_rubric(block))
            code = RUBRIC.sub("", region).strip("\n")
            if code.strip():
                current.solutions.append(_dedent(code))
        current.checks += _calls(cell.source)
    return found


def _dedent(code: str) -> str:
    lines = code.splitlines()
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    return "\n".join(ln[indent:] for ln in lines)


GRADING = {
    "reproduce": "Graded by the self-checks, automatically: the student's function is called on the input the "
                 "notebook shows and on hidden inputs, with the library function it re-implements recorded. A "
                 "solution the checks accept is right; nothing is left to grade by hand.",
    "predict": "The notebook checks only the form of the prediction (one of the offered choices, a number in range) "
               "and then shows the measurement beside it. Grade the **reason** with the rubric, not whether the "
               "prediction matched the measurement: a wrong prediction with a sound reason that the student then "
               "revises is the exercise working.",
    "explain": "The notebook checks only that a few sentences were written. Grade with the rubric; the model answer "
               "shows one way to earn every point, not the only wording.",
}


def _grading(kind: str) -> str:
    kind = kind.lower()
    if "reproduce" in kind:
        return GRADING["reproduce"]
    parts = [GRADING[k] for k in ("predict", "explain") if k in kind]
    return " ".join(parts)


def render(sources: list[Path]) -> str:
    """The whole instructor file for the solved notebooks ``sources``."""
    summaries = check_summaries()
    out = ["# Model answers and grading rubrics", "",
           "For the instructor: the model answer and the rubric of every exercise of the course. Generated by "
           "`python tools/make_student.py` from the solution blocks of the solved notebooks (`notebooks/`); edit "
           "the notebook, not this file. The student copies (`notebooks/student/`) have none of it: their solution "
           "blocks are stubs. The [instructor guide](../instructor_guide.md) explains the three kinds of exercise "
           "and how the self-checks grade them.", ""]
    for path in sources:
        items = exercises(path)
        if not items:
            continue
        out += [f"## {path.stem}", ""]
        for ex in items:
            title = f": {ex.title}" if ex.title else ""
            out += [f"### {path.stem[:2]} · Exercise {ex.number} ({ex.kind}){title}", "",
                    f"**Question.** {ex.question}", "", f"**Grading.** {_grading(ex.kind)}", ""]
            if ex.checks:
                out += ["**Checks the notebook runs.**", ""]
                for call in ex.checks:
                    name = call.split("(")[0]
                    summary = summaries.get(name, "")
                    flat = " ".join(call.split())
                    out.append(f"- `{flat}`" + (f": {summary}" if summary else ""))
                out.append("")
            if ex.solutions:
                out += ["**Model solution.**", "", "```python", *"\n\n".join(ex.solutions).splitlines(), "```", ""]
            for title, rubric in ex.rubrics:
                out += [f"**{title}.**", ""] + [f"- {item}" for item in rubric] + [""]
    return "\n".join(out).rstrip() + "\n"

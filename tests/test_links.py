"""Every link of every notebook, solved and student copy, resolves (and of the instructor's answers).

A relative link must name a file (or folder) that exists, inside the repository; a ``#anchor`` must
be a heading of the target (GitHub-style slug: lower case, punctuation dropped, spaces to hyphens,
``-1``, ``-2`` for repeats) in a Markdown file or in a notebook's Markdown cells, or an explicit
``(label)=`` / ``<a id=...>`` target; an in-page ``#anchor`` must be a heading of the same notebook.
URLs (``https:``, ``mailto:``) are not fetched: the tests run offline.  The student copies live one
folder deeper, so ``tools/make_student.py`` rewrites their links (``tools/links.py``): this test is
what catches a copy whose links still point at ``notebooks/docs/``.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLVED = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUDENT = sorted((ROOT / "notebooks" / "student").glob("[0-9][0-9]_*.ipynb"))
MARKDOWN_FILES = [ROOT / "docs" / "instructor" / "answers.md"]
MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"(?:href|src)=[\"']([^\"']+)[\"']")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
FENCE = re.compile(r"^\s*(```|~~~)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: links and tags to their text, lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _unfenced(markdown: str) -> list[str]:
    lines, fenced = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def anchors_of(markdown: str) -> set[str]:
    """The anchors a Markdown text defines: headings (with GitHub's -1, -2 for repeats) and explicit targets."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _unfenced(markdown):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            found.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
        for target in re.findall(r"^\(([\w.-]+)\)=\s*$", line):
            found.add(target)
        found.update(re.findall(r"<a\s+(?:id|name)=[\"']([^\"']+)[\"']", line))
    return found


def _notebook_markdown(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@lru_cache(maxsize=None)
def anchors_in(path: Path) -> frozenset[str]:
    text = _notebook_markdown(path) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8")
    return frozenset(anchors_of(text))


def links_of(markdown: str) -> list[str]:
    out = []
    for line in _unfenced(markdown):
        out += MD_LINK.findall(line) + HTML_LINK.findall(line)
    return out


def broken_links(path: Path, markdown: str) -> list[str]:
    """Every link of ``markdown`` (written in ``path``) that does not resolve, with why."""
    problems = []
    for target in links_of(markdown):
        if SCHEME.match(target):
            if not target.startswith(("http://", "https://", "mailto:")):
                problems.append(f"{target}: an unexpected scheme")
            continue
        file_part, _, anchor = target.partition("#")
        if target.startswith("/"):
            problems.append(f"{target}: an absolute path (use a path relative to {path.parent.name}/)")
            continue
        resolved = (path.parent / file_part).resolve() if file_part else path
        try:
            resolved.relative_to(ROOT)
        except ValueError:
            problems.append(f"{target}: points outside the repository ({resolved})")
            continue
        if not resolved.exists():
            problems.append(f"{target}: {resolved.relative_to(ROOT)} does not exist")
            continue
        if anchor and resolved.is_file() and resolved.suffix in (".md", ".ipynb"):
            if anchor not in anchors_in(resolved):
                problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    return problems


@pytest.mark.parametrize("path", SOLVED + STUDENT, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_link_of_a_notebook_resolves(path):
    problems = broken_links(path, _notebook_markdown(path))
    assert not problems, f"{path.relative_to(ROOT)}: {len(problems)} broken link(s):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda p: p.name)
def test_every_link_of_the_instructor_answers_resolves(path):
    problems = broken_links(path, path.read_text(encoding="utf-8"))
    assert not problems, f"{path.relative_to(ROOT)}: broken link(s):\n  " + "\n  ".join(problems)


def test_the_student_copies_link_the_glossary_as_often_as_the_solved_notebooks():
    def glossary_links(paths: list[Path]) -> int:
        return sum(1 for p in paths for t in links_of(_notebook_markdown(p)) if "glossary.md#" in t)

    assert len(STUDENT) == len(SOLVED)
    assert glossary_links(STUDENT) == glossary_links(SOLVED) >= 15


def test_the_link_checker_catches_what_it_must(tmp_path):
    folder = ROOT / "notebooks" / "student"
    fake = folder / "00_fake.ipynb"
    assert broken_links(fake, "[g](../docs/glossary.md#modality-gap)")  # notebooks/docs/...: the old bug
    assert not broken_links(fake, "[g](../../docs/glossary.md#modality-gap)")
    assert broken_links(fake, "[g](../../docs/glossary.md#no-such-term)")
    assert broken_links(fake, "[x](../../../outside.md)")
    assert broken_links(fake, "[x](/etc/passwd)")
    assert not broken_links(fake, "[w](https://example.org/x#y) <a href=\"mailto:a@b.c\">m</a>")
    assert broken_links(ROOT / "notebooks" / "00_data_and_modality_gap.ipynb", "[s](#no-such-section)")
    assert anchors_of("# A `code` title: yes!\n## A `code` title: yes!\n```\n# not a heading\n```\n(label)=\n") == {
        "a-code-title-yes", "a-code-title-yes-1", "label"}

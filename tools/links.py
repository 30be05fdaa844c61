"""Relative links of Markdown text moved to another folder: rewrite them so they still point at the same file.

The solved notebooks link repository files as seen from ``notebooks/`` (``../docs/glossary.md#term``,
``01_baseline_rgb_model.ipynb``).  Their student copies live in ``notebooks/student/`` and the
instructor's answers in ``docs/instructor/``: a link copied unchanged would resolve to
``notebooks/docs/glossary.md``, which does not exist.  :func:`retarget` resolves each relative link
from the source folder and writes it relative to the new one (Markdown links and images, HTML
``href``/``src``; absolute URLs, ``#anchors`` and fenced code blocks are left alone).

Used by ``tools/make_student.py`` (student copies, instructor answers); ``tests/test_links.py``
follows every link of every notebook.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

MARKDOWN_LINK = re.compile(r"(\]\()(<?)([^)\s>]+)(>?)((?:\s+\"[^\"]*\")?\))")
HTML_LINK = re.compile(r"((?:href|src)=[\"'])([^\"']+)([\"'])")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
FENCE = re.compile(r"^\s*(```|~~~)")


def is_relative(target: str) -> bool:
    """A link to a file of the repository (not a URL, a mail address, an in-page anchor or an absolute path)."""
    return bool(target) and not SCHEME.match(target) and not target.startswith(("#", "/"))


def _split(target: str) -> tuple[str, str]:
    path, sep, anchor = target.partition("#")
    return path, sep + anchor


def relocate(target: str, source_dir: Path, target_dir: Path,
             special: Callable[[Path], str | None] | None = None) -> str | None:
    """``target`` (relative to ``source_dir``) written relative to ``target_dir``.

    ``special(resolved_path)`` may return a replacement path (kept as given) or ``None`` to drop the
    link; returning ``""`` means no special case.
    """
    path, anchor = _split(target)
    resolved = Path(os.path.normpath(source_dir / path))
    if special is not None:
        replaced = special(resolved)
        if replaced is None:
            return None
        if replaced:
            return replaced + anchor
    return Path(os.path.relpath(resolved, target_dir)).as_posix() + anchor


def retarget(markdown: str, source_dir: Path, target_dir: Path,
             special: Callable[[Path], str | None] | None = None) -> str:
    """Rewrite the relative links of ``markdown`` (written in ``source_dir``) for a copy in ``target_dir``.

    A link whose ``special`` returns ``None`` becomes its plain text (Markdown) or is left as it is (HTML).
    """
    out, fenced = [], False
    for line in markdown.splitlines(keepends=True):
        if FENCE.match(line):
            fenced = not fenced
        if fenced or FENCE.match(line):
            out.append(line)
            continue

        def markdown_link(m: re.Match) -> str:
            if not is_relative(m.group(3)):
                return m.group(0)
            new = relocate(m.group(3), source_dir, target_dir, special)
            if new is None:
                return "\x00DROP\x00"
            return f"{m.group(1)}{m.group(2)}{new}{m.group(4)}{m.group(5)}"

        def html_link(m: re.Match) -> str:
            if not is_relative(m.group(2)):
                return m.group(0)
            new = relocate(m.group(2), source_dir, target_dir, special)
            return m.group(0) if new is None else f"{m.group(1)}{new}{m.group(3)}"

        line = HTML_LINK.sub(html_link, MARKDOWN_LINK.sub(markdown_link, line))
        # a dropped Markdown link keeps its text: "[text](\0DROP\0" -> "text"
        line = re.sub(r"!?\[([^\]]*)\x00DROP\x00", r"\1", line)
        out.append(line)
    return "".join(out)

"""Write the chapter header into the notebooks: badges (Colab, Binder, the student copy) and an install cell.

Every notebook opens with two generated cells, put before its title cell (badges) and right after it
(the install cell, the first code cell):

* a Markdown cell of badges: open this notebook in Colab, launch it on Binder, download the student
  copy (a solved notebook) or nothing more (a student copy);
* a code cell that installs ``hfr-tutorial`` in a hosted notebook: it clones the repository at the
  commit (or branch) the header names, installs it editable (the notebooks reach ``data_scripts/``
  and ``docs/results/`` through the clone) *without* the constraints file, so the service's own torch
  is kept when it meets the package's lower bounds (the README's torch note), and does nothing where
  ``hfr_tutorial`` is already importable (your own install, CI, Binder, which installs the package
  from ``environment.yml``).

Both cells start with a marker line, so running the script again replaces them instead of adding a
second header.  The same functions give the book its headers (``docs/_ext/hfr_book.py``), there with
the exact commit the book is built from and badge images served by the book itself.

    python tools/add_badges.py                 # solved notebooks and student copies, ref "main"
    python tools/add_badges.py --ref v0.3.0    # a tag or commit instead of the branch
    python tools/add_badges.py --check         # exit 1 if a notebook lacks its current header

The repository address comes from ``HFR_REPOSITORY`` (``owner/name`` or a GitHub URL), else
``GITHUB_REPOSITORY`` (set on GitHub Actions), else the ``origin`` remote when it is on GitHub, else
``DEFAULT_REPOSITORY``.  Taught in: every notebook's first cells; the instructor guide explains the
hosted set-up.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_REPOSITORY = "https://github.com/hfr-tutorial/hfr-tutorial"
"""The public address of this repository; the one place it is written (override with HFR_REPOSITORY)."""
BADGES_MARKER = "<!-- hfr-header: badges, written by tools/add_badges.py (edit the script, not this cell) -->"
INSTALL_MARKER = "# hfr-header: install cell, written by tools/add_badges.py (edit the script, not this cell)"
REMOTE_BADGES = {
    "colab": "https://colab.research.google.com/assets/colab-badge.svg",
    "binder": "https://mybinder.org/badge_logo.svg",
    "student": "https://img.shields.io/badge/download-student%20copy-2b6cb0",
}
"""Badge images for a notebook read on GitHub, in Jupyter or in Colab; the book serves its own copies."""
EXTRAS = "faces,deploy"
"""The extras a hosted notebook needs beyond the package: dlib for notebook 07, ONNX for notebook 08."""


def repository(env: dict[str, str] | None = None) -> str:
    """The repository's GitHub address (``https://github.com/owner/name``), from the environment or git."""
    env = os.environ if env is None else env
    for value in (env.get("HFR_REPOSITORY"), env.get("GITHUB_REPOSITORY")):
        if value:
            return _github_url(value)
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if "github.com" in origin:
        return _github_url(origin)
    return DEFAULT_REPOSITORY


def _github_url(value: str) -> str:
    """``owner/name``, ``https://github.com/owner/name(.git)`` or ``git@github.com:owner/name.git`` as a URL."""
    m = re.search(r"(?:github\.com[/:])?([\w.-]+)/([\w.-]+?)(?:\.git)?/?$", value.strip())
    if not m:
        raise ValueError(f"repository {value!r} is neither owner/name nor a GitHub URL: set HFR_REPOSITORY to "
                         "owner/name (e.g. HFR_REPOSITORY=my-course/hfr-tutorial)")
    return f"https://github.com/{m.group(1)}/{m.group(2)}"


def badges_source(name: str, repo: str, ref: str, *, student: bool = False,
                  images: dict[str, str] | None = None, student_link: str = "student/{name}") -> str:
    """The Markdown of the badges cell of notebook ``name`` (``00_data_and_modality_gap.ipynb``).

    A solved notebook links its student copy (``student/<name>``, relative: it works on GitHub, in
    Jupyter; the book passes ``student_link="path:student/{name}"``, MyST's form of a download); a
    student copy opens itself in Colab and Binder.
    """
    images = {**REMOTE_BADGES, **(images or {})}
    path = f"notebooks/student/{name}" if student else f"notebooks/{name}"
    slug = repo.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{slug}/blob/{ref}/{path}"
    binder = f"https://mybinder.org/v2/gh/{slug}/{ref}?labpath={quote(path, safe='')}"
    lines = [BADGES_MARKER,
             f"[![Open in Colab]({images['colab']})]({colab})",
             f"[![Launch Binder]({images['binder']})]({binder})"]
    if not student:
        lines.append(f"[![Download the student copy]({images['student']})]({student_link.format(name=name)})")
    return "\n".join(lines)


def install_source(repo: str, ref: str) -> str:
    """The install cell: clone ``repo`` at ``ref`` and ``pip install -e`` it, unless hfr_tutorial is importable."""
    return f'''{INSTALL_MARKER}
# In a hosted notebook (Colab, Kaggle, a JupyterHub without the package) this installs hfr-tutorial from
# its repository at the commit this notebook comes from; where hfr_tutorial is importable it does nothing.
import importlib.util, os, subprocess, sys

if importlib.util.find_spec("hfr_tutorial") is None:
    REPOSITORY, REF = "{repo}", "{ref}"
    if not os.path.isdir("hfr-tutorial"):
        subprocess.run(["git", "clone", "--quiet", "--filter=blob:none", REPOSITORY, "hfr-tutorial"], check=True)
        subprocess.run(["git", "-C", "hfr-tutorial", "checkout", "--quiet", REF], check=True)
    # Torch note (README): without "-c constraints.txt" pip keeps the service's torch and torchvision when they
    # meet the lower bounds (torch>=2.14.1); an older pair is replaced (a download of gigabytes).
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", "./hfr-tutorial[{EXTRAS}]"], check=True)
    sys.path.insert(0, os.path.abspath("hfr-tutorial"))  # the editable install is seen after a restart; now too
    importlib.invalidate_caches()'''


def header_cells(name: str, repo: str, ref: str, *, student: bool = False, images: dict[str, str] | None = None,
                 student_link: str = "student/{name}") -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """The badges cell and the install cell of notebook ``name``, with stable cell ids."""
    stem = re.sub(r"\W", "-", Path(name).stem)[:40]
    badges = nbformat.v4.new_markdown_cell(badges_source(name, repo, ref, student=student, images=images,
                                                         student_link=student_link))
    badges["id"] = f"hfr-badges-{stem}"
    install = nbformat.v4.new_code_cell(install_source(repo, ref))
    install["id"] = f"hfr-install-{stem}"
    return badges, install


def is_header(cell: dict) -> bool:
    """Whether a cell is one of the two header cells (found by the marker on its first line)."""
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    return source.startswith((BADGES_MARKER, INSTALL_MARKER))


def header_settings(nb: nbformat.NotebookNode) -> tuple[str, str] | None:
    """The repository and ref an existing install cell names, or None without a header."""
    for cell in nb.cells:
        if cell.cell_type == "code" and is_header(cell):
            m = re.search(r'REPOSITORY, REF = "([^"]+)", "([^"]+)"', cell.source)
            if m:
                return m.group(1), m.group(2)
    return None


def with_header(nb: nbformat.NotebookNode, name: str, repo: str, ref: str, *, student: bool = False,
                images: dict[str, str] | None = None, student_link: str = "student/{name}") -> nbformat.NotebookNode:
    """``nb`` with its header cells (re)written: badges first, the title cell, then the install cell."""
    cells = [c for c in nb.cells if not is_header(c)]
    if not cells or cells[0].cell_type != "markdown":
        raise ValueError(f"{name}: the first cell must be the title (Markdown) cell, found "
                         f"{cells[0].cell_type if cells else 'no cell'}; the header goes around it")
    badges, install = header_cells(name, repo, ref, student=student, images=images, student_link=student_link)
    nb.cells = [badges, cells[0], install, *cells[1:]]
    return nb


def _targets() -> list[tuple[Path, bool]]:
    solved = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    student = sorted((NOTEBOOKS / "student").glob("[0-9][0-9]_*.ipynb"))
    return [(p, False) for p in solved] + [(p, True) for p in student]


def render(path: Path, repo: str, ref: str, student: bool) -> str:
    nb = nbformat.read(path, as_version=4)
    text = nbformat.writes(with_header(nb, path.name, repo, ref, student=student))
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="main", help="the branch, tag or commit the badges and the install use")
    parser.add_argument("--repository", help="owner/name or URL (default: HFR_REPOSITORY, GITHUB_REPOSITORY, "
                                             "the origin remote, then DEFAULT_REPOSITORY)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    repo = _github_url(args.repository) if args.repository else repository()
    stale = []
    targets = _targets()
    for path, student in targets:
        text = render(path, repo, args.ref, student)
        if args.check:
            if path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
    if args.check and stale:
        print("Notebooks without their current header:\n  " + "\n  ".join(stale)
              + f"\nRun: python tools/add_badges.py --ref {args.ref}", file=sys.stderr)
        return 1
    if not args.check:
        print(f"Wrote the header ({repo} at {args.ref}) into {len(targets)} notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())

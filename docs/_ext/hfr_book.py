"""The book's build steps that plain Sphinx and myst-nb do not do (a local Sphinx extension).

* **Chapters.**  The solved notebooks live in ``notebooks/``, outside the book's source folder: at
  ``config-inited`` they are copied to ``docs/chapters/`` and their student copies to
  ``docs/chapters/student/`` (downloads, not pages); both folders are build products (git ignores
  them).  A copy is rewritten only when its notebook changed, so an incremental build stays quick.
* **Chapter header.**  At ``source-read`` each chapter gets the header of ``tools/add_badges.py``
  (badges for Colab, Binder and the student copy, and the install cell), with the exact commit the
  book is built from and badge images the book serves itself (it loads nothing from elsewhere).  A
  notebook that already carries the header has it replaced, not doubled.
* **Links.**  The notebooks link files of the repository as seen from ``notebooks/``
  (``../docs/glossary.md#layernorm``): a link into ``docs/`` becomes the book's page; any other file
  of the repository becomes its address on GitHub at the book's commit.
* **API reference.**  ``docs/api/index.rst`` is written from the modules of ``hfr_tutorial`` found
  at build time (a table: module, what it is, the chapters that teach it, from the docstrings'
  "Taught in"), and autosummary documents each of them, so a new or moved module appears by itself.
* **MathJax.**  Served from the book (``django-static-mathjax``, the ``docs`` extra), so the math of
  the chapters renders offline.

Taught in: no notebook; the README and ``docs/index.md`` say how to build the book.
"""
from __future__ import annotations

import ast
import filecmp
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "tools"))
import add_badges  # noqa: E402  (tools/add_badges.py: the one definition of the header)

CHAPTERS = DOCS / "chapters"
API = DOCS / "api"
LOCAL_BADGES = {"colab": "../_static/badges/colab.svg", "binder": "../_static/badges/binder.svg",
                "student": "../_static/badges/student.svg"}
NOTEBOOK_LINK = re.compile(r"\]\(\.\./([^)\s#]+)(#[^)\s]*)?\)")
"""A Markdown link from a notebook to a file of the repository: ``](../docs/glossary.md#layernorm)``."""


def book_ref() -> str:
    """The commit the book is built from: HFR_BOOK_REF, GitHub's GITHUB_SHA, the checkout's HEAD, else "main"."""
    for name in ("HFR_BOOK_REF", "GITHUB_SHA"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = ""
    return head or "main"


def _sync(sources: list[Path], target: Path) -> None:
    """Copy ``sources`` into ``target``, rewriting only changed files and removing those with no source."""
    target.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in sources}
    for stale in target.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    for src in sources:
        dst = target / src.name
        if not dst.is_file() or not filecmp.cmp(src, dst, shallow=False):
            shutil.copyfile(src, dst)


def sync_chapters() -> list[str]:
    """Copy the solved notebooks and their student copies into the book; return the chapters' names."""
    solved = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not solved:
        raise RuntimeError(f"no notebook matches {ROOT / 'notebooks' / '[0-9][0-9]_*.ipynb'}: the book's chapters "
                           "are the solved notebooks; build it from a clone of the repository")
    _sync(solved, CHAPTERS)
    _sync(sorted((ROOT / "notebooks" / "student").glob("[0-9][0-9]_*.ipynb")), CHAPTERS / "student")
    return [p.stem for p in solved]


def rewrite_links(markdown: str, repo: str, ref: str) -> str:
    """Point a notebook's links to repository files at the book's pages (``docs/``) or at GitHub."""
    def fix(m: re.Match) -> str:
        target, anchor = m.group(1), m.group(2) or ""
        if target.startswith("docs/"):
            return f"](../{target.removeprefix('docs/')}{anchor})"
        return f"]({repo}/blob/{ref}/{target}{anchor})"

    return NOTEBOOK_LINK.sub(fix, markdown)


def chapter_source(text: str, name: str, repo: str, ref: str) -> str:
    """A chapter's notebook JSON as the book shows it: header cells added, links rewritten."""
    import nbformat

    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:  # the notebook's own links first: the header's are the book's already
        if cell.cell_type == "markdown" and not add_badges.is_header(cell):
            cell.source = rewrite_links(cell.source, repo, ref)
    nb = add_badges.with_header(nb, name, repo, ref, images=LOCAL_BADGES, student_link="path:student/{name}")
    return nbformat.writes(nb)


# ----------------------------------------------------------------------------------------------
# API reference
# ----------------------------------------------------------------------------------------------
TAUGHT = re.compile(r"taught in:?\s*(.*?)(?:\n\s*\n|$)", re.I | re.S)
CHAPTER_NAME = re.compile(r"(?:notebooks/)?\b(\d\d)_[a-z0-9_]+(?:\.ipynb)?")


def modules() -> list[tuple[str, Path]]:
    """Every module of hfr_tutorial, found on disk at build time (packages first, then their modules)."""
    package = ROOT / "hfr_tutorial"
    found = []
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        found.append((".".join(parts), path))
    return sorted(found)


def taught_in(docstring: str, chapters: list[str]) -> list[str]:
    """The chapters a module docstring's "Taught in ..." sentence names (``00``-style numbers resolved)."""
    m = TAUGHT.search(docstring or "")
    if not m:
        return []
    by_number = {c[:2]: c for c in chapters}
    names = []
    for number in re.findall(r"\b(\d\d)(?:_[a-z0-9_]+)?", m.group(1)):
        if number in by_number and by_number[number] not in names:
            names.append(by_number[number])
    if re.search(r"every notebook", m.group(1), re.I):
        names.append("every notebook")
    return names


def write_api(chapters: list[str]) -> None:
    """``docs/api/index.rst``: the table of modules and the autosummary that documents each one."""
    rows, names = [], []
    for name, path in modules():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        summary = " ".join(doc.split("\n\n", 1)[0].split()) or "(no module docstring)"
        taught = taught_in(doc, chapters)
        cells = ", ".join(t if t == "every notebook" else f":doc:`{t[:2]} <../chapters/{t}>`" for t in taught) or "(none named)"
        label = f"``{name}``" if name.endswith("__main__") else f":mod:`{name}`"  # autosummary skips __main__
        rows.append(f"   * - {label}\n     - {summary}\n     - {cells}")
        names.append(name)
    text = "\n".join([
        ".. This file is written by docs/_ext/hfr_book.py at every build, from the modules found on disk.",
        "",
        "API reference",
        "=============",
        "",
        "Every module of ``hfr_tutorial``, generated from its docstrings. The last column names the chapters",
        "whose notebooks teach it (the module docstring's \"Taught in\"); each function's docstring names its own.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 22 60 18",
        "",
        "   * - module",
        "     - what it is",
        "     - taught in",
        *rows,
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "   :recursive:",
        "",
        "   hfr_tutorial",
        "",
    ])
    API.mkdir(exist_ok=True)
    index = API / "index.rst"
    if not index.is_file() or index.read_text() != text:
        index.write_text(text)


# ----------------------------------------------------------------------------------------------
# Sphinx hooks
# ----------------------------------------------------------------------------------------------
def on_config_inited(app, config) -> None:
    chapters = sync_chapters()
    write_api(chapters)
    app.hfr_book = {"repo": add_badges.repository(), "ref": book_ref(), "chapters": chapters}


def on_source_read(app, docname: str, source: list[str]) -> None:
    if docname.startswith("chapters/") and docname.count("/") == 1:
        info = app.hfr_book
        source[0] = chapter_source(source[0], docname.split("/", 1)[1] + ".ipynb", info["repo"], info["ref"])


def on_missing_reference(app, env, node, contnode):
    """Resolve ``hfr_tutorial.pkg.Name`` (a name a package re-exports) to where the object is documented.

    The docstrings name objects as users import them (``hfr_tutorial.models.EdgeFace``); the API pages
    document each object once, in its defining module (``hfr_tutorial.models.edgeface.EdgeFace``).  A name
    whose object autodoc does not document (a constant without a docstring) links to its module's page.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("hfr_tutorial."):
        return None
    module_name, _, attr = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None
    domain = env.get_domain("py")
    home = getattr(obj, "__module__", None) or module_name
    for candidate in (f"{home}.{attr}", f"{home}.{getattr(obj, '__qualname__', attr)}"):
        if candidate in domain.objects:
            node["reftarget"] = candidate
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], candidate, node, contnode)
    if module_name in domain.modules:
        return domain.resolve_xref(env, node["refdoc"], app.builder, "mod", module_name, node, contnode)
    return None


def mathjax_file() -> Path:
    spec = importlib.util.find_spec("mathjax")
    path = Path(spec.submodule_search_locations[0]) / "static" / "mathjax" / "es5" / "tex-svg.js" if spec else None
    if path is None or not path.is_file():
        raise RuntimeError("MathJax for the book is missing: install the docs extra (pip install -e \".[docs]\"), "
                           "which brings django-static-mathjax; the chapters' math renders from the book's own copy")
    return path


def on_build_finished(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mathjax_file(), target / "tex-svg.js")


def setup(app) -> dict:
    mathjax_file()  # fail before the build, naming the fix
    app.connect("config-inited", on_config_inited)
    app.connect("source-read", on_source_read)
    app.connect("build-finished", on_build_finished)
    app.connect("missing-reference", on_missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}

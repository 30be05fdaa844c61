"""Sphinx configuration of the book: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.

Needs the ``docs`` extra (``pip install -e ".[docs]"``) and no ``hfr-tutorial`` command; it builds
offline.  The chapters are the committed, executed notebooks rendered with execution off; the
build steps of its own (chapters, their header, links, the API index, MathJax) are in
``_ext/hfr_book.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # hfr_tutorial from this checkout, for autodoc
sys.path.insert(0, str(DOCS / "_ext"))

import hfr_tutorial  # noqa: E402

project = "hfr-tutorial"
author = "hfr-tutorial contributors"
copyright = "hfr-tutorial contributors, BSD-3-Clause"  # noqa: A001 (Sphinx's name)
release = version = hfr_tutorial.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "hfr_book",
]
exclude_patterns = ["_build", "_templates", "results/**", "chapters/student/**", "**.ipynb_checkpoints",
                    "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# Warnings are errors (-W); every internal reference is checked, Python names of this package included.
nitpicky = True
nitpick_ignore_regex = [
    # type hints naming other libraries' classes (torch, numpy, PIL, pandas, the standard library): no
    # intersphinx here (it would need the network), so only hfr_tutorial's own names are resolved
    (r"py:.*", r"(?!hfr_tutorial\.).*"),
    (r"py:.*", r"hfr_tutorial\..*\._\w+"),  # private bases (show-inheritance): not documented
]

# MyST and myst-nb
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # the glossary's entries are linked as glossary.md#layernorm-and-layernorm2d
nb_execution_mode = "off"  # the committed outputs are the product; CI executes the notebooks under nbval
nb_merge_streams = True

# autodoc: every module found at build time (hfr_book writes api/index.rst)
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True  # the docstrings' Args: / Returns: / Attributes: sections
napoleon_numpy_docstring = False

# the theme; MathJax is served from the book (hfr_book copies it) so the math renders offline
html_theme = "sphinx_book_theme"
html_title = "hfr-tutorial: cross-spectral face recognition, step by step"
html_static_path = ["_static"]
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
html_favicon = "_static/favicon.svg"  # without it the browser asks for /favicon.ico (a 404 in the console)
html_context = {"default_mode": "light"}  # the theme logs a console error when no mode is set
mathjax_path = "mathjax/tex-svg.js"

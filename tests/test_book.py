"""The book builds with no warning, has every page, and reads in a real browser.

``test_book_*`` build the book once (``python -m sphinx -W --keep-going``, the README's command) into a
temporary folder, or take the site ``HFR_BOOK_HTML`` names (already built).  The browser test opens
it in headless Chromium (Debian's package, driven by Playwright's Python package, no browser
download): the landing page and every chapter have their title, every image they reference loads
and decodes, the console logs no error, and the search page finds "LayerNorm".  It skips with the
reason where Chromium or Playwright is absent (CI installs neither: its time is short).
``HFR_BOOK_SCREENSHOTS=<folder>`` saves screenshots of the landing page and chapter 03 there.

The build is marked ``book`` (``-m "not book"`` deselects it).
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = os.environ.get("HFR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.book


def _require_sphinx() -> None:
    missing = [m for m in ("sphinx", "myst_nb", "sphinx_book_theme", "mathjax") if importlib.util.find_spec(m) is None]
    if missing:
        reason = f"the docs extra is not installed ({', '.join(missing)} missing): pip install -e \".[docs]\""
        if os.environ.get("CI") == "true" and os.environ.get("HFR_MIN_DEPS") != "1":
            pytest.fail(reason + " (.ci/run installs it)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> dict:
    """The built site: {"html": folder, "log": the build's output, "seconds": None or the build time}."""
    given = os.environ.get("HFR_BOOK_HTML")
    if given:
        html = Path(given)
        if not (html / "index.html").is_file():
            pytest.fail(f"HFR_BOOK_HTML={given} holds no index.html: build the book there first")
        return {"html": html, "log": "", "returncode": 0}
    _require_sphinx()
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                             "-d", str(out / "doctrees"), str(ROOT / "docs"), str(out / "html")],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    return {"html": out / "html", "log": result.stdout + result.stderr, "returncode": result.returncode}


def test_book_builds_without_warning(book):
    assert book["returncode"] == 0, f"the book's build failed or warned (-W):\n{book['log'][-4000:]}"
    assert "WARNING" not in book["log"] and "ERROR" not in book["log"], book["log"][-4000:]


def _expected_pages() -> set[str]:
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import hfr_book
    finally:
        sys.path.pop(0)
    pages = {"index", "install", "own_data", "instructor_guide", "instructor/answers", "glossary", "design", "cite",
             "api/index", "studies/index"}
    pages |= {f"chapters/{c}" for c in CHAPTERS}
    pages |= {f"studies/{p.stem}" for p in (ROOT / "docs" / "studies").glob("*.md")}
    pages |= {f"api/generated/{name}" for name, _ in hfr_book.modules() if not name.endswith("__main__")}
    return pages


def test_book_has_every_page(book):
    html = book["html"]
    expected = _expected_pages()
    missing = sorted(p for p in expected if not (html / f"{p}.html").is_file())
    assert not missing, f"pages missing from the book: {missing}"
    built = {str(p.relative_to(html).with_suffix("")) for p in html.rglob("*.html")
             if not p.relative_to(html).parts[0].startswith("_")} - {"genindex", "search", "py-modindex"}
    assert built == expected, f"unexpected pages: {sorted(built - expected)}"
    assert len(built) >= 9 + 9 + 25, len(built)  # chapters, studies pages and their index, API modules
    assert not list(html.rglob("chapters/student/*.html")), "student copies are downloads, not pages"


def test_chapters_open_with_badges_and_the_install_cell_and_link_the_glossary(book):
    html = book["html"]
    glossary = (html / "glossary.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="([^"]+)"', glossary))
    for chapter in CHAPTERS:
        page = (html / "chapters" / f"{chapter}.html").read_text(encoding="utf-8")
        assert f"colab.research.google.com/github/" in page and f"/notebooks/{chapter}.ipynb" in page, chapter
        assert "mybinder.org/v2/gh/" in page, chapter
        download = re.search(rf'href="(\.\./_downloads/[0-9a-f]+/{chapter}\.ipynb)"', page)
        assert download, f"{chapter}: no download link of the student copy"
        student = (html / "chapters" / download.group(1)).resolve()
        assert student.is_file() and "NotImplementedError" in student.read_text(encoding="utf-8"), student
        assert "find_spec" in page and "pip" in page, f"{chapter}: no install cell"
        assert "../docs/glossary.md" not in page, f"{chapter}: a link to the glossary was not rewritten"
        links = re.findall(r'href="\.\./glossary\.html#([^"]+)"', page)
        assert links, f"{chapter} links no glossary entry"
        assert set(links) <= anchors, f"{chapter}: glossary anchors missing: {sorted(set(links) - anchors)}"


def test_api_reference_names_the_chapter_of_each_module(book):
    page = (book["html"] / "api" / "index.html").read_text(encoding="utf-8")
    assert "hfr_tutorial.losses" in page and "hfr_tutorial.deploy" in page
    assert re.search(r"hfr_tutorial\.deploy.*?chapters/08_edge_deployment\.html", page, re.S)


def test_math_is_served_by_the_book(book):
    assert (book["html"] / "_static" / "mathjax" / "tex-svg.js").is_file()
    page = (book["html"] / "chapters" / "03_contrastive_alignment.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-svg.js" in page and "cdn.jsdelivr" not in page


# --------------------------------------------------------------------------------------------
# A real browser
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(book):
    """The site on a local HTTP server (127.0.0.1, a free port), as a reader's browser gets it."""
    handler = functools.partial(_QuietHandler, directory=str(book["html"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports what fails; the server stays quiet
        pass


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; or set HFR_CHROMIUM)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("Playwright's Python package is not installed: pip install -e \".[browser]\"")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:  # launch() starts Chromium with a new, empty profile of its own
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


IMAGES_STATE = """() => Array.from(document.images).map(img => ({
    src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth}))"""


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page, problems


def test_landing_page_and_every_chapter_in_chromium(browser, site):
    shots = os.environ.get("HFR_BOOK_SCREENSHOTS")
    for path, title in [("index.html", "hfr-tutorial"), *((f"chapters/{c}.html", c[:2]) for c in CHAPTERS)]:
        page, problems = _open(browser, f"{site}/{path}")
        heading = page.locator("article h1").first.inner_text()
        assert heading.strip() and title in (heading + page.title()), f"{path}: title {heading!r} / {page.title()!r}"
        # images below the fold load lazily in some themes: scroll through the page first
        page.evaluate("async () => { for (let y = 0; y < document.body.scrollHeight; y += 800) "
                      "{ window.scrollTo(0, y); await new Promise(r => setTimeout(r, 20)); } }")
        page.wait_for_load_state("networkidle")
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=30_000)
        images = page.evaluate(IMAGES_STATE)
        broken = [i["src"] for i in images if not i["complete"] or i["width"] == 0]
        assert not broken, f"{path}: images that do not load or decode: {broken}"
        if path.startswith("chapters/"):
            assert len(images) >= 3, f"{path}: {len(images)} images (badges and figures expected)"
        assert not problems, f"{path}: {problems}"
        if shots and path in ("index.html", "chapters/03_contrastive_alignment.html"):
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(Path(shots) / (Path(path).stem + ".png")), full_page=False)
        page.close()


def test_search_finds_layernorm_in_chromium(browser, site):
    page, problems = _open(browser, f"{site}/search.html?q=LayerNorm")
    page.wait_for_selector("#search-results ul.search li", timeout=30_000)
    results = page.locator("#search-results ul.search li").all_inner_texts()
    assert results, "the search page found nothing for LayerNorm"
    assert any("glossary" in r.lower() or "layer" in r.lower() for r in results), results[:5]
    assert not problems, problems
    page.close()

"""The README is a landing page: its generated sections and the Studies pages match the committed results,
it states the two commands and the book's, stays small, links pages that exist, and no result table of a
record is copied by hand anywhere in the repository."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_generated_sections_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "update_readme.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_readme_has_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    install_and_run = ('python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e ".[dev]" && '
                       ".venv/bin/hfr-tutorial run --preset fast --out runs/fast")
    assert install_and_run in readme
    assert "\nbash .ci/run\n" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-c constraints.txt" in ci and "--nbval-lax" in ci


def test_constraints_pin_the_torch_pair():
    lines = {line.strip() for line in (ROOT / "constraints.txt").read_text().splitlines()}
    assert {"torch==2.14.1", "torchvision==0.29.1"} <= lines


BOOK_COMMAND = "python -m sphinx -W --keep-going -b html docs docs/_build/html"


def test_readme_is_a_landing_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 10_240, f"README.md is {len(readme.encode())} bytes: keep it a landing page"
    assert BOOK_COMMAND in readme and "docs/_build/" in (ROOT / ".gitignore").read_text()
    assert "nine" in readme and "](docs/_static/method.svg)" in readme
    for target in re.findall(r"\]\((?!https?:|#)([^)#\s]+)", readme):
        assert (ROOT / target).exists(), f"the README links {target}, which does not exist"


def _table_rows(text: str) -> set[str]:
    """The data rows of the Markdown tables in ``text`` that hold a figure (not headers or rulers)."""
    rows = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and not re.fullmatch(r"[|:\- ]+", line) and re.search(r"\d\.\d", line):
            rows.add(re.sub(r"\*\*|\s+", "", line))
    return rows


def _hand_written(text: str) -> str:
    """``text`` without its generated sections (between <!-- TAG:start --> and <!-- TAG:end -->)."""
    return re.sub(r"<!-- (\w+):start -->.*?<!-- \1:end -->", "", text, flags=re.S)


def test_no_result_table_is_copied_by_hand():
    records = set()
    for path in (ROOT / "docs" / "results").rglob("*.md"):
        records |= _table_rows(path.read_text(encoding="utf-8"))
    assert len(records) > 50
    hand = [ROOT / "README.md", ROOT / "data_scripts" / "README.md", *(ROOT / "docs").glob("*.md"),
            *(ROOT / "docs" / "studies").glob("*.md")]
    for path in hand:
        copied = _table_rows(_hand_written(path.read_text(encoding="utf-8"))) & records
        assert not copied, f"{path.relative_to(ROOT)} copies rows of a result table by hand: {sorted(copied)[:2]}"


def test_metrics_are_read_in_one_function():
    """The fast record's schema is known to read_metrics alone (the other engineer changes it)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import update_readme
    finally:
        sys.path.pop(0)
    import inspect

    source = inspect.getsource(update_readme)
    readers = [name for name, fn in inspect.getmembers(update_readme, inspect.isfunction)
               if fn.__module__ == "update_readme" and re.search(r"metrics\[|json\.loads\(.*METRICS|\.read_text\(\)\)",
                                                                   inspect.getsource(fn))]
    assert readers == ["read_metrics"], readers
    m = update_readme.read_metrics()
    assert m.runs[0].name == "RGB baseline" and m.method in {r.name for r in m.runs} and m.claims
    assert "[" in update_readme.headline_section(m) and source.count("def read_metrics") == 1

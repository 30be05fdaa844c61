"""Packaging: the metadata a built wheel carries, the citation files, and the tested lower bounds.

The metadata tests build a wheel from a copy of the package (setuptools, in a subprocess, a few
seconds) and read its ``.dist-info`` with ``importlib.metadata``, so they check what ``pip install .``
would install rather than whatever editable install the running environment happens to hold.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.resources
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import hfr_tutorial

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

XEDGEFACE = "xEdgeFace: Efficient Cross-Spectral Face Recognition for Edge Devices"
JOURNAL = "Lightweight Cross-Spectral Face Recognition via Contrastive Alignment and Distillation"
EDGEFACE = "EdgeFace: Efficient Face Recognition Model for Edge Devices"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built with setuptools' PEP 517 backend from a copy of the package's sources."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "hfr_tutorial", src / "hfr_tutorial",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))",
         str(out)], cwd=src, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return out / result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def dist(wheel: Path, tmp_path_factory) -> md.Distribution:
    """The built wheel's metadata, as ``importlib.metadata`` reads it once installed."""
    unpacked = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(unpacked)
    (info,) = unpacked.glob("*.dist-info")
    return md.Distribution.at(info)


def test_one_version_source(dist):
    assert "version" not in PYPROJECT["project"], "the version is written only in hfr_tutorial/__init__.py"
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", hfr_tutorial.__version__)
    assert dist.version == hfr_tutorial.__version__
    installed = md.version("hfr-tutorial")
    assert installed == hfr_tutorial.__version__, (
        f"the installed hfr-tutorial says {installed}: reinstall it (pip install -e .)")


def test_licence_is_an_spdx_expression_with_its_file(dist, wheel):
    assert dist.metadata["License-Expression"] == "BSD-3-Clause"
    assert dist.metadata.get_all("License-File") == ["LICENSE"]
    assert not [c for c in dist.metadata.get_all("Classifier") if c.startswith("License ::")], \
        "PEP 639: no licence classifiers beside a licence expression"
    with zipfile.ZipFile(wheel) as zf:
        licence = [n for n in zf.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert licence and "BSD 3-Clause License" in zf.read(licence[0]).decode()


def test_project_urls_name_the_papers_and_edgeface(dist):
    urls = dict(entry.split(", ", 1) for entry in dist.metadata.get_all("Project-URL"))
    values = " ".join(urls.values())
    for needle in ("arxiv.org/abs/2504.19646", "arxiv.org/abs/2605.04769", "10.1109/TBIOM.2024.3352164",
                   "github.com/otroshi/edgeface"):
        assert needle in values, needle
    assert all(url.startswith("https://") for url in urls.values())


def test_classifiers_and_supported_pythons(dist):
    classifiers = dist.metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    pythons = sorted(tuple(map(int, c.rsplit(" ", 1)[1].split("."))) for c in classifiers
                     if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert dist.metadata["Requires-Python"] == f">={pythons[0][0]}.{pythons[0][1]}", \
        "the lowest Python classifier is requires-python's bound (the version CI tests)"
    assert sys.version_info[:2] >= pythons[0]


def test_py_typed_ships_with_the_package(wheel):
    with zipfile.ZipFile(wheel) as zf:
        assert "hfr_tutorial/py.typed" in zf.namelist()
    assert importlib.resources.files("hfr_tutorial").joinpath("py.typed").is_file()


def test_dependencies_are_those_of_pyproject(dist):
    requires = dist.requires or []
    for line in PYPROJECT["project"]["dependencies"]:
        assert line.replace(" ", "") in [r.replace(" ", "") for r in requires], line


def test_constraints_min_holds_every_lower_bound():
    """constraints-min.txt is regenerated from pyproject.toml's bounds (what HFR_MIN_DEPS=1 tests)."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "constraints_min.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    pins = {line.split("==")[0]: line.split("==")[1]
            for line in (ROOT / "constraints-min.txt").read_text().splitlines()
            if line and not line.startswith("#")}
    assert {"setuptools", "torch", "torchvision", "pytest"} <= set(pins)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "HFR_MIN_DEPS" in ci and "-c constraints-min.txt" in ci


def test_citation_cff_names_both_papers_and_edgeface():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= set(cff)
    assert cff["license"] == PYPROJECT["project"]["license"]
    assert cff.get("version", hfr_tutorial.__version__) == hfr_tutorial.__version__
    preferred = cff["preferred-citation"]
    assert preferred["title"] == XEDGEFACE and preferred["year"] == 2025
    assert "2504.19646" in preferred["url"]
    titles = {ref["title"]: ref for ref in cff["references"]}
    assert "2605.04769" in titles[JOURNAL]["url"]
    assert titles[EDGEFACE]["doi"] == "10.1109/TBIOM.2024.3352164"
    for ref in [preferred, *cff["references"]]:
        assert any(a.get("family-names") == "George" for a in ref["authors"])
        assert any(a.get("family-names") == "Marcel" for a in ref["authors"])


def _bibtex_entries(readme: str) -> dict[str, dict[str, str]]:
    section = readme[readme.index("## Citation"):]
    block = section[section.index("```bibtex\n") + len("```bibtex\n"):]
    block = block[:block.index("```")]
    assert block.count("{") == block.count("}"), "unbalanced braces in the README's BibTeX"
    entries = {}
    for kind, key, body in re.findall(r"@(\w+)\{([^,\s]+),\n(.*?)\n\}", block, re.S):
        fields = dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", body, re.M))
        entries[key] = {"type": kind, **fields}
    return entries


def test_readme_bibtex_is_complete_and_matches_citation_cff():
    entries = _bibtex_entries((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(entries) == 3
    by_title = {re.sub(r"[{}]", "", e["title"]): e for e in entries.values()}
    assert set(by_title) == {XEDGEFACE, JOURNAL, EDGEFACE}
    for entry in entries.values():
        text = " ".join(entry.values()).lower()
        assert "see arxiv" not in text and "placeholder" not in text and "todo" not in text
        assert "George, Anjith" in entry["author"] and "Marcel, S{\\'e}bastien" in entry["author"]
        assert entry["year"].isdigit()
    assert by_title[XEDGEFACE]["type"] == "inproceedings" and by_title[XEDGEFACE]["eprint"] == "2504.19646"
    assert by_title[JOURNAL]["eprint"] == "2605.04769"
    assert by_title[EDGEFACE]["doi"] == "10.1109/TBIOM.2024.3352164"


def test_readme_says_how_to_get_the_cpu_torch_pair():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
    assert "HFR_MIN_DEPS=1 bash .ci/run" in readme

"""The benchmarks use the library as a user would: public names only, and no pickled code loaded.

Read from the source (nothing runs, so these checks are instant): every ``from hfr_tutorial...
import`` of a file in ``benchmarks/`` names public things (no ``_private`` name, module or
attribute of an imported library object), those names exist, and no file loads a file with
``torch.load(..., weights_only=False)`` (checkpoints are read with
``hfr_tutorial.models.read_checkpoint``: tensors only).
"""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FILES = sorted(BENCHMARKS.glob("*.py"))
REWRITTEN_ELSEWHERE: dict[str, str] = {}
"""Files whose imports another change rewrites; the private-name and weights_only checks still cover them."""


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def library_imports(tree: ast.AST) -> list[tuple[str, str | None, int]]:
    """``(module, name or None, line)`` of every import from ``hfr_tutorial`` in ``tree`` (at any depth)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "hfr_tutorial":
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "hfr_tutorial"]
    return found


def private_uses(source: str) -> list[str]:
    """Where ``source`` reaches a private name of the library: imported, in a module path, or as an attribute of
    a name it imported from the library (``deploy._helper``)."""
    tree = ast.parse(source)
    problems, bound = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "hfr_tutorial":
            for alias in node.names:
                bound.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "hfr_tutorial":
                    bound.add(alias.asname or alias.name.split(".")[0])
    for module, name, line in library_imports(tree):
        if any(_private(part) for part in module.split(".")):
            problems.append(f"line {line}: module {module}")
        if name is not None and _private(name):
            problems.append(f"line {line}: from {module} import {name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in bound:
                problems.append(f"line {node.lineno}: {ast.unparse(node)}")
    return problems


def test_the_checks_catch_what_they_look_for():
    bad = ("from hfr_tutorial.models.edgeface import _guess_variant\nimport hfr_tutorial._hidden\n"
           "from hfr_tutorial import deploy\nx = deploy._content_digest\ny = deploy.export_onnx\nz = obj._own\n")
    assert private_uses(bad) == ["line 1: from hfr_tutorial.models.edgeface import _guess_variant",
                                 "line 2: module hfr_tutorial._hidden", "line 4: deploy._content_digest"]
    assert private_uses("from hfr_tutorial.models import read_checkpoint\nfrom torch import _C\n") == []
    assert WEIGHTS_ONLY_FALSE.search("torch.load(f, weights_only = False)")


WEIGHTS_ONLY_FALSE = re.compile(r"weights_only\s*=\s*False")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_no_private_library_name_and_no_pickled_code(path):
    source = path.read_text()
    assert private_uses(source) == [], f"{path.name} reaches private names of hfr_tutorial: {private_uses(source)}"
    assert not WEIGHTS_ONLY_FALSE.search(source), (
        f"{path.name} loads a file with weights_only=False (it can run code): read checkpoints with "
        "hfr_tutorial.models.read_checkpoint")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_imported_library_name_exists(path):
    if path.name in REWRITTEN_ELSEWHERE:
        pytest.skip(f"{path.name}: {REWRITTEN_ELSEWHERE[path.name]}")
    missing = []
    for module, name, line in library_imports(ast.parse(path.read_text())):
        try:
            imported = importlib.import_module(module)
        except ImportError as err:
            missing.append(f"line {line}: module {module} ({err})")
            continue
        if name is not None and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")  # a submodule
            except ImportError:
                missing.append(f"line {line}: {module}.{name}")
    assert not missing, f"{path.name} imports names the library does not have: {missing}"


def test_every_benchmark_is_checked():
    assert len(FILES) >= 10 and {"seeds.py", "policy_study.py", "bench_cost112.py"} <= {p.name for p in FILES}

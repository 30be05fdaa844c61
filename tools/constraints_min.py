"""Generate ``constraints-min.txt``: every lower bound of ``pyproject.toml`` as an exact pin.

The file pins the build backend (``[build-system] requires``), every run-time dependency and every
``dev`` dependency at the version its ``>=`` bound names, so that one environment holds all the
minimums at once. ``HFR_MIN_DEPS=1 bash .ci/run`` installs the package with it (into
``.venv-min``) and runs the unit tests there; that is what keeps the bounds true. Dependencies of
the dependencies are left to pip.

    python tools/constraints_min.py            # write constraints-min.txt
    python tools/constraints_min.py --check    # exit 1 if the committed file is out of date

``tests/test_packaging.py`` runs the check, so a bound changed in ``pyproject.toml`` without
regenerating this file fails the unit tests.
"""
from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
TARGET = ROOT / "constraints-min.txt"
EXTRAS = ("dev",)
"""The optional-dependency groups that ``.ci/run`` installs, and so the ones whose bounds it tests."""

HEADER = """\
# The minimum version of every dependency of hfr-tutorial[dev] (and of the build backend), all at
# once. Generated from pyproject.toml's lower bounds by `python tools/constraints_min.py`: change
# the bound there, then regenerate. `HFR_MIN_DEPS=1 bash .ci/run` installs the package with this
# file into .venv-min and runs the unit tests there (tested with Python 3.11).
"""


def lower_bounds(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """``{name: version}`` of every requirement's ``>=`` bound, in the file's order.

    Raises ``ValueError`` for a requirement without a ``>=`` bound (an untested minimum) or with
    two of them, and for a name that appears twice with different bounds.
    """
    meta = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    lines = list(meta["build-system"]["requires"]) + list(meta["project"]["dependencies"])
    for extra in EXTRAS:
        lines += meta["project"].get("optional-dependencies", {}).get(extra, [])
    bounds: dict[str, str] = {}
    for line in lines:
        req = Requirement(line)
        lower = [spec.version for spec in req.specifier if spec.operator == ">="]
        if len(lower) != 1:
            raise ValueError(f"{line!r} in {pyproject.name} needs exactly one '>=' lower bound, "
                             "so that constraints-min.txt can pin (and CI test) its minimum")
        name = req.name.lower()
        if bounds.setdefault(name, lower[0]) != lower[0]:
            raise ValueError(f"{name} has two lower bounds in {pyproject.name}: {bounds[name]} and {lower[0]}")
    return bounds


def render(pyproject: Path = PYPROJECT) -> str:
    """The text of ``constraints-min.txt``."""
    return HEADER + "".join(f"{name}=={version}\n" for name, version in lower_bounds(pyproject).items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if constraints-min.txt is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.name} is out of date: run python tools/constraints_min.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

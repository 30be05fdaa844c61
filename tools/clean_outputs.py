"""Drop what a saved notebook must not keep: stderr streams (progress bars, library warnings, lock waits).

Run by ``tools/execute_notebooks.sh`` after each notebook is executed; the rule is checked by
``tests/test_notebooks_meta.py::test_saved_outputs_hold_no_stderr``.  A progress bar is useful while a cell
runs and noise once saved (the same run would show other bars on another machine).

    python tools/clean_outputs.py notebooks/04_self_distillation.ipynb [...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def clean(path: Path) -> int:
    """Remove the stderr outputs of ``path`` in place; returns how many were removed."""
    nb = nbformat.read(path, as_version=4)
    removed = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        removed += len(cell.outputs) - len(kept)
        cell.outputs = kept
    if removed:
        nbformat.write(nb, path)
    return removed


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python tools/clean_outputs.py NOTEBOOK.ipynb [...]", file=sys.stderr)
        return 2
    for name in argv:
        path = Path(name)
        if not path.is_file():
            print(f"{name}: no such notebook", file=sys.stderr)
            return 2
        print(f"{path.name}: {clean(path)} stderr output(s) removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

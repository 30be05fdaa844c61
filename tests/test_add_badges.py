"""The chapter header of tools/add_badges.py: its badges, its install cell, and the notebooks it writes.

The install cell runs in a fresh virtual environment (no package in it, no network): where
``hfr_tutorial`` is importable it runs nothing; where it is not, it clones the repository at the
header's commit (here a local repository made by the test) and installs that clone editable, without
the constraints file, with the extras the chapters need.  The pip call itself is recorded instead of
run (it would download torch); the git calls run for real.  Colab and Binder themselves cannot be
reached from here: their URLs are checked for form only.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import add_badges  # noqa: E402
import make_student  # noqa: E402

sys.path.pop(0)
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPO = "https://github.com/my-course/hfr-tutorial"


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 00 · Title\n\nLearning goals, prerequisites, run time."),
                nbformat.v4.new_code_cell("import hfr_tutorial\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n")]
    return nb


def test_github_addresses():
    for value in ("my-course/hfr-tutorial", "https://github.com/my-course/hfr-tutorial.git",
                  "git@github.com:my-course/hfr-tutorial.git", "https://github.com/my-course/hfr-tutorial/"):
        assert add_badges._github_url(value) == REPO
    with pytest.raises(ValueError, match="HFR_REPOSITORY"):
        add_badges._github_url("not a repository")
    assert add_badges.repository({"HFR_REPOSITORY": "my-course/hfr-tutorial"}) == REPO
    assert add_badges.repository({"GITHUB_REPOSITORY": "my-course/hfr-tutorial"}) == REPO


def test_header_goes_around_the_title_once_and_names_the_ref():
    nb = add_badges.with_header(_notebook(), "00_x.ipynb", REPO, "abc1234")
    kinds = [(c.cell_type, add_badges.is_header(c)) for c in nb.cells]
    assert kinds == [("markdown", True), ("markdown", False), ("code", True), ("code", False)]
    badges, install = nb.cells[0].source, nb.cells[2].source
    assert "colab.research.google.com/github/my-course/hfr-tutorial/blob/abc1234/notebooks/00_x.ipynb" in badges
    assert "mybinder.org/v2/gh/my-course/hfr-tutorial/abc1234?labpath=notebooks%2F00_x.ipynb" in badges
    assert "](student/00_x.ipynb)" in badges
    assert f'REPOSITORY, REF = "{REPO}", "abc1234"' in install and "constraints" not in install.split("# Torch")[0]
    again = add_badges.with_header(nb, "00_x.ipynb", REPO, "def5678")
    assert len(again.cells) == 4 and add_badges.header_settings(again) == (REPO, "def5678")
    nbformat.validate(again)
    with pytest.raises(ValueError, match="title"):
        add_badges.with_header(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), "x.ipynb", REPO, "m")


def test_student_copy_gets_its_own_header(tmp_path):
    solved = add_badges.with_header(_notebook(), "00_x.ipynb", REPO, "abc1234")
    path = tmp_path / "00_x.ipynb"
    nbformat.write(solved, path)
    student = nbformat.reads(make_student.render(path), as_version=4)
    assert "blob/abc1234/notebooks/student/00_x.ipynb" in student.cells[0].source
    assert "Download the student copy" not in student.cells[0].source
    assert student.cells[2].source == solved.cells[2].source
    assert "x = 1" not in student.cells[3].source and "NotImplementedError" in student.cells[3].source


def test_the_header_keeps_every_notebook_valid(tmp_path):
    """What the notebook step will write (python tools/add_badges.py) keeps each notebook's skeleton."""
    for path in NOTEBOOKS:
        nb = add_badges.with_header(nbformat.read(path, as_version=4), path.name, REPO, "main")
        nbformat.validate(nb)
        first = next(c for c in nb.cells if not add_badges.is_header(c))
        assert first.cell_type == "markdown" and "learning goals" in first.source.lower(), path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert add_badges.is_header(code[0]), f"{path.name}: the install cell must be the first code cell"
        assert add_badges.with_header(nb, path.name, REPO, "main").cells == nb.cells, "not idempotent"


def test_committed_headers_are_current():
    """Once the notebooks carry the header, every one does, and each is what the script writes."""
    carrying = [p for p in NOTEBOOKS if add_badges.header_settings(nbformat.read(p, as_version=4))]
    if not carrying:  # before the notebook step has run tools/add_badges.py (the book adds the header itself)
        return
    assert carrying == NOTEBOOKS, f"only some notebooks carry the header: {[p.name for p in carrying]}"
    repo, ref = add_badges.header_settings(nbformat.read(NOTEBOOKS[0], as_version=4))
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "add_badges.py"), "--check", "--ref", ref,
                             "--repository", repo], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------
# The install cell, in a fresh venv
# --------------------------------------------------------------------------------------------
RUNNER = r'''
import json, subprocess, sys
calls, real = [], subprocess.run
def run(cmd, **kw):
    calls.append(list(cmd))
    if cmd[0] == "git":
        return real(cmd, **kw)
    return subprocess.CompletedProcess(cmd, 0)  # pip: recorded, not run (it would download torch)
subprocess.run = run
exec(compile(open(sys.argv[1]).read(), "install-cell", "exec"), {"__name__": "__main__"})
import importlib.util
spec = importlib.util.find_spec("hfr_tutorial")
json.dump({"calls": calls, "hfr_tutorial": spec.origin if spec else None}, open(sys.argv[2], "w"))
'''


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fresh-venv")
    venv.create(folder / "venv", with_pip=False, clear=True)
    python = folder / "venv" / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    check = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('hfr_tutorial'))"],
                           capture_output=True, text=True, cwd=folder, env={"PATH": "/usr/bin:/bin"})
    assert check.stdout.strip() == "None", "the fresh venv must not see hfr_tutorial"
    return python


@pytest.fixture(scope="module")
def local_repository(tmp_path_factory) -> tuple[Path, str]:
    """A small git repository holding the package's skeleton, and the commit to install."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the install cell clones with it")
    repo = tmp_path_factory.mktemp("origin") / "hfr-tutorial"
    (repo / "hfr_tutorial").mkdir(parents=True)
    shutil.copy(ROOT / "hfr_tutorial" / "__init__.py", repo / "hfr_tutorial" / "__init__.py")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "the commit to install"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    (repo / "later.txt").write_text("a later commit the cell must not take")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "later"], check=True)
    return repo, commit


def _run_cell(python: Path, source: str, cwd: Path, pythonpath: str | None = None) -> dict:
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / "cell.py").write_text(source)
    (cwd / "runner.py").write_text(RUNNER)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    result = subprocess.run([str(python), "runner.py", "cell.py", "out.json"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads((cwd / "out.json").read_text())


def test_install_cell_does_nothing_where_the_package_is_importable(fresh_python, tmp_path):
    out = _run_cell(fresh_python, add_badges.install_source(REPO, "main"), tmp_path, pythonpath=str(ROOT))
    assert out["calls"] == [] and out["hfr_tutorial"].startswith(str(ROOT))


def test_install_cell_installs_the_repository_at_its_commit(fresh_python, local_repository, tmp_path):
    repo, commit = local_repository
    out = _run_cell(fresh_python, add_badges.install_source(repo.as_uri(), commit), tmp_path)
    git = [c for c in out["calls"] if c[0] == "git"]
    pip = [c for c in out["calls"] if c[0] != "git"]
    assert git[0][:2] == ["git", "clone"] and git[0][-2:] == [repo.as_uri(), "hfr-tutorial"]
    assert git[1] == ["git", "-C", "hfr-tutorial", "checkout", "--quiet", commit]
    head = subprocess.run(["git", "-C", str(tmp_path / "hfr-tutorial"), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert head == commit and not (tmp_path / "hfr-tutorial" / "later.txt").exists()
    assert pip == [[str(fresh_python), "-m", "pip", "install", "--quiet", "-e", "./hfr-tutorial[faces,deploy]"]]
    assert "-c" not in pip[0], "a hosted notebook keeps its torch: no constraints file"
    # the clone is importable in the same kernel, without a restart
    assert Path(out["hfr_tutorial"]).resolve() == (tmp_path / "hfr-tutorial" / "hfr_tutorial" / "__init__.py").resolve()
    # run again (the cell re-run, the clone already there): no second clone
    again = _run_cell(fresh_python, add_badges.install_source(repo.as_uri(), commit), tmp_path)
    assert not [c for c in again["calls"] if c[:2] == ["git", "clone"]]

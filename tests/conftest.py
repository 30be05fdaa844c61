"""Shared fixtures: the optional real assets (HFR_ASSETS) and a headless matplotlib."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


# The environment the session started with. .ci/run runs the notebooks (nbval) in the same pytest workers
# as these tests, and a kernel inherits its worker's os.environ: a test that leaves HFR_* changed sends every
# later notebook on that worker to another cache (CI once retrained the whole comparison that way).
_SESSION_ENV = {k: v for k, v in os.environ.items() if k.startswith("HFR_")}


@pytest.fixture(autouse=True)
def _environment_unchanged(request):
    """Fails a test that leaves an HFR_* variable changed (torn down after every other function fixture)."""
    yield
    now = {k: v for k, v in os.environ.items() if k.startswith("HFR_")}
    if now != _SESSION_ENV:
        changed = sorted(k for k in set(now) | set(_SESSION_ENV) if now.get(k) != _SESSION_ENV.get(k))
        for k in changed:  # restore it, so that one leak fails one test and not every later one
            if k in _SESSION_ENV:
                os.environ[k] = _SESSION_ENV[k]
            else:
                os.environ.pop(k, None)
        pytest.fail(f"{request.node.nodeid} left {', '.join(changed)} changed in os.environ: set it with monkeypatch "
                    "(pytest.MonkeyPatch.context() in a module-scoped fixture), never os.environ[...]", pytrace=False)


def _assets_root() -> Path | None:
    root = os.environ.get("HFR_ASSETS")
    return Path(root) if root and Path(root).is_dir() else None


@pytest.fixture(scope="session")
def assets() -> Path:
    """The real assets folder; skips (with the reason) where it is absent, fails in CI."""
    root = _assets_root()
    if root is None:
        reason = ("HFR_ASSETS is not set to a folder with the real EdgeFace weights and faces "
                  "(set HFR_ASSETS=../shared/assets, as .ci/run does)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"In CI the real assets must be present: {reason}")
        pytest.skip(reason)
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(_environment_unchanged, tmp_path_factory, monkeypatch):
    """Every test writes its artifacts to a fresh temporary cache, never the user's."""
    monkeypatch.setenv("HFR_CACHE", str(tmp_path_factory.mktemp("hfr_cache")))
    # tiny presets train in seconds: spawning training processes (parallel_build) would cost more than
    # it saves; tests/test_parallel_build.py asks for them explicitly
    monkeypatch.setenv("HFR_BUILD_WORKERS", "1")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and far faster on busy cores (no spin waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_preset():
    """The one tiny preset the experiment tests share: the smoke world shrunk to seconds per model."""
    from hfr_tutorial.config import get_preset

    return get_preset("smoke").replace(
        name="tiny", data__n_train_ids=32, data__n_dev_ids=8, data__n_eval_ids=8, train__batch_size=16,
        train__baseline_epochs=1, train__oracle_epochs=1, train__adapt_epochs=1, train__adapt_pairs_per_identity=1,
        pretrained__epochs=1, pretrained__batch_size=8, pretrained__pairs_per_identity=1, pretrained__lr_grid=(1e-3,))


@pytest.fixture(scope="session")
def tiny():
    """:func:`tiny_preset` as a fixture."""
    return tiny_preset()


@pytest.fixture(scope="session")
def smoke_layout(tmp_path_factory) -> tuple[Path, Path]:
    """The smoke preset's faces written as a standard layout, and a checkpoint file of a (random) EdgeFace-XXS:
    the path of a user's own data and model, in seconds."""
    from hfr_tutorial.artifacts import load_faceset
    from hfr_tutorial.models import create_edgeface

    root = tmp_path_factory.mktemp("layout") / "smoke"
    load_faceset("smoke", seed=0, progress=False).write_layout(root)
    ckpt = root.parent / "start.pt"
    torch.save(create_edgeface("edgeface_xxs", seed=3).state_dict(), ckpt)
    return root, ckpt


PRACTICE_SOURCES = ("lfw62", "yaleb38", "essex18")
PRACTICE_PER_IDENTITY = 3


@pytest.fixture(scope="session")
def practice_layout(assets, tmp_path_factory) -> Path:
    """A small version of the practice set of issue #26 (``data_scripts/README.md``, "A practice set from the
    real assets"): the real VIS sets lfw62 + yaleb38 + essex18 (118 people) through ``prepare_folder.py`` with
    realistic pseudo NIR/thermal and the default split (0.5/0.2/0.3: 35 eval identities), but only
    ``PRACTICE_PER_IDENTITY`` photos per identity, so it builds in well under a minute.  Needs dlib (the
    ``faces`` extra, part of ``dev``); for tests marked ``assets``."""
    import sys

    from hfr_tutorial.data.detect import detector_available

    if not detector_available():
        reason = "the practice set needs dlib's face detector (pip install dlib-bin face-recognition-models)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"In CI the detector must be installed: {reason}")
        pytest.skip(reason)
    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from data_scripts import prepare_folder

    out = tmp_path_factory.mktemp("practice") / "practice"
    prepare_folder.main(["--source", *(str(assets / "faces" / s) for s in PRACTICE_SOURCES), "--out", str(out),
                         "--pseudo", "nir,thermal", "--per-identity", str(PRACTICE_PER_IDENTITY), "--no-progress"])
    return out

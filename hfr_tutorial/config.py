"""Presets, paths, seeding and device choice: the settings every other module reads.

Two presets serve the same code:

* ``fast`` -- CPU, CI and class-room laptops: 64 px faces, a few hundred synthetic identities,
  training budgets of a minute or two per model on 2 cores.
* ``full`` -- a GPU: the 112x112 face-recognition input, more identities and longer training.
* ``smoke`` -- seconds per notebook, to check that code runs end to end (its numbers mean nothing).

A preset is picked by argument or, when none is given, by the ``HFR_PRESET`` environment
variable (default ``fast``).  Paths come from ``HFR_CACHE`` (trained models and generated data;
default ``~/.cache/hfr-tutorial``) and ``HFR_ASSETS`` (optional real weights and faces).

Environment variables (read here and nowhere else in the library): ``HFR_PRESET``, ``HFR_CACHE``,
``HFR_ASSETS``, ``HFR_BUILD_WORKERS`` (models trained side by side on a CPU), ``HFR_STRICT_CHECKS``
(a failed notebook self-check raises) and ``HFR_STATIC_WIDGETS`` (explorers draw a static figure).

Taught in: ``notebooks/00_data_and_modality_gap.ipynb`` (presets) and every notebook's setup cell.
"""
from __future__ import annotations

import dataclasses
import errno
import math
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PRESET_ENV = "HFR_PRESET"
CACHE_ENV = "HFR_CACHE"
ASSETS_ENV = "HFR_ASSETS"
BUILD_WORKERS_ENV = "HFR_BUILD_WORKERS"
STRICT_CHECKS_ENV = "HFR_STRICT_CHECKS"
STATIC_WIDGETS_ENV = "HFR_STATIC_WIDGETS"
"""Every environment variable the library reads is named here and read in this module only."""
DEFAULT_SEED = 0

MODALITIES: tuple[str, ...] = ("vis", "nir", "thermal")
"""The modalities of the embedded synthetic data, VIS first (VIS is always the gallery)."""


@dataclass(frozen=True)
class DataConfig:
    """Size of the embedded synthetic cross-spectral face set."""

    image_size: int
    n_train_ids: int
    n_dev_ids: int
    n_eval_ids: int
    images_per_modality: int  # images of each identity in each modality
    modalities: tuple[str, ...] = MODALITIES

    @property
    def n_ids(self) -> int:
        return self.n_train_ids + self.n_dev_ids + self.n_eval_ids


def check_number(name: str, value: Any, bound: str, what: str, fix: str) -> None:
    """Refuse a setting that is not a finite real number within ``bound`` ("> 0", ">= 0", "0..1" or "any").

    NaN, infinities, booleans and non-numbers are refused too: a NaN weight or an infinite learning
    rate trains nonsense (or nothing) without another error.  The message names the setting, why it
    is wrong and ``fix``.
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)
    if ok:
        ok = {"> 0": value > 0, ">= 0": value >= 0, "0..1": 0 <= value <= 1, "any": True}[bound]
    if not ok:
        need = {"> 0": "a finite number > 0", ">= 0": "a finite number >= 0", "0..1": "a number from 0 to 1",
                "any": "a finite number"}[bound]
        raise ValueError(f"{name}={value!r} is invalid: {what} must be {need}; {fix}.")


@dataclass(frozen=True)
class TrainConfig:
    """Budgets and optimiser settings of the two training loops (and the oracle)."""

    variant: str = "edgeface_xxs"
    batch_size: int = 64
    # RGB baseline (and the joint oracle): EdgeFace + margin head on identity labels.
    baseline_epochs: int = 20
    baseline_lr: float = 3e-3
    head: str = "cosface"
    head_scale: float = 32.0
    head_margin: float = 0.35
    # The joint oracle's images: with or without the baseline's flips, crops and VIS colour jitter.
    # Chosen on the dev identities by benchmarks/recipe_choices.py (docs/results/dev_selection/choices.md):
    # dev mean rank-1 0.936 without, 0.873 with (at 7 epochs).
    oracle_augment: bool = False
    # Epochs of the joint oracle over all three modalities (three times the baseline's images per
    # epoch): by rule, not by a measurement, the whole number of epochs whose optimisation steps come
    # closest to the baseline's (fast: 7 x 3 modalities ~ 20 baseline epochs; full: 10 ~ 30), so the
    # two recognisers trained from scratch get the same compute (tests/test_config.py checks it).
    oracle_epochs: int = 7
    # Cross-spectral adaptation: student (tuning policy) + frozen teacher.
    adapt_epochs: int = 8
    # The rate of an AdaptSettings that names none (the notebooks' own small runs): the method's rate,
    # chosen on dev with every comparison run's (hfr_tutorial.runs, benchmarks/dev_selection.py;
    # docs/results/dev_selection/selection.md: dev mean rank-1 0.934 at 3e-2, 0.932 at 1e-1, 0.894 at 1e-2).
    adapt_lr: float = 3e-2
    adapt_pairs_per_identity: int = 6  # NIR/thermal images paired with a VIS image per identity and epoch
    # VIS flips, crops and colour jitter during adaptation. Chosen on the dev identities by
    # benchmarks/recipe_choices.py (docs/results/dev_selection/choices.md): the method's dev mean rank-1
    # 0.939 without, 0.906 with. Off, the frozen teacher's targets are computed once, not in every step.
    adapt_augment_vis: bool = False
    contrastive: str = "infonce"
    temperature: float = 0.07
    margin: float = 0.5
    distill_weight: float = 3.0  # lambda; notebook 04 sweeps it on dev identities at one budget for every point
    distill: str = "cosine"
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.1
    num_workers: int = 0

    def __post_init__(self) -> None:
        counts = ("batch_size", "baseline_epochs", "oracle_epochs", "adapt_epochs", "adapt_pairs_per_identity")
        for name in counts:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name}={value!r} is invalid: it counts epochs, images or pairs, so "
                                 "give a whole number >= 1 (e.g. preset.replace(train__" + name + "=...)).")
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers={self.num_workers!r} is invalid: give a whole number >= 0 "
                             "(0 loads batches in the training process).")
        for name, low, why in self._NUMBERS:
            check_number(f"TrainConfig.{name}", getattr(self, name), low, why,
                         fix=f"e.g. preset.replace(train__{name}=...)")

    # (field, bound, what it is): "> 0" strictly positive, ">= 0" may be zero, "0..1" a fraction, "any" finite.
    _NUMBERS = (("baseline_lr", "> 0", "a learning rate"), ("adapt_lr", "> 0", "a learning rate"),
                ("head_scale", "> 0", "the margin head's scale"), ("head_margin", ">= 0", "the margin head's margin"),
                ("temperature", "> 0", "the InfoNCE temperature"), ("margin", "any", "the pairwise loss's margin"),
                ("distill_weight", ">= 0", "the self-distillation weight (0 switches it off)"),
                ("weight_decay", ">= 0", "the weight decay"), ("warmup_fraction", "0..1", "a fraction of the steps"))


@dataclass(frozen=True)
class PretrainedRecipe:
    """The recipe of a starting model pretrained elsewhere (the official EdgeFace weights).

    The embedded stand-in is trained here from scratch and takes a large step (``adapt_lr`` 3e-2);
    a real pretrained EdgeFace adapted at a rate like it (4e-2) on about 50 real identities lost its VIS
    verification (ROC AUC 0.98 -> 0.55), at 3e-3 it kept 0.975 and at 3e-4 0.981 (the measurement
    of issue #13).  So the learning rate is not fixed here: each run takes the best of ``lr_grid``
    on dev identities (:mod:`hfr_tutorial.experiment.recipe`), and the guard refuses a
    model whose dev VIS AUC drops by more than ``max_dev_vis_auc_drop``.
    """

    lr_grid: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    epochs: int = 6
    batch_size: int = 32  # identities per batch (fewer when the training split has fewer)
    pairs_per_identity: int = 6
    distill_weight: float = 3.0
    contrastive: str = "infonce"
    dev_fraction: float = 0.2  # of the training identities, held out as dev when a protocol has no dev split
    max_dev_vis_auc_drop: float = 0.05

    def __post_init__(self) -> None:
        if not self.lr_grid or not all(np.isfinite(v) and v > 0 for v in self.lr_grid):
            raise ValueError(f"PretrainedRecipe.lr_grid={self.lr_grid!r}: give one or more finite rates > 0.")
        for name in ("epochs", "batch_size", "pairs_per_identity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PretrainedRecipe.{name}={value!r}: give a whole number >= 1.")
        if not (np.isfinite(self.distill_weight) and self.distill_weight >= 0):
            raise ValueError(f"PretrainedRecipe.distill_weight={self.distill_weight!r}: give a finite lambda >= 0.")
        if not 0 < self.dev_fraction < 1:
            raise ValueError(f"PretrainedRecipe.dev_fraction={self.dev_fraction!r}: give a fraction in (0, 1).")


@dataclass(frozen=True)
class Preset:
    """A named bundle of data sizes and training budgets. Frozen: change one with :meth:`replace`."""

    name: str
    data: DataConfig
    train: TrainConfig
    eval_batch_size: int = 256
    pretrained: PretrainedRecipe = PretrainedRecipe()

    def replace(self, **changes: Any) -> "Preset":
        """A copy with top-level fields, or ``data``/``train``/``pretrained`` fields given as ``data__x=..``."""
        data_changes = {k[6:]: v for k, v in changes.items() if k.startswith("data__")}
        train_changes = {k[7:]: v for k, v in changes.items() if k.startswith("train__")}
        pretrained_changes = {k[12:]: v for k, v in changes.items() if k.startswith("pretrained__")}
        top = {k: v for k, v in changes.items() if "__" not in k}
        preset = dataclasses.replace(self, **top)
        if data_changes:
            preset = dataclasses.replace(preset, data=dataclasses.replace(preset.data, **data_changes))
        if train_changes:
            preset = dataclasses.replace(preset, train=dataclasses.replace(preset.train, **train_changes))
        if pretrained_changes:
            preset = dataclasses.replace(preset, pretrained=dataclasses.replace(preset.pretrained, **pretrained_changes))
        return preset

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        name="fast",
        data=DataConfig(image_size=64, n_train_ids=400, n_dev_ids=50, n_eval_ids=200, images_per_modality=6),
        train=TrainConfig(),
    ),
    "smoke": Preset(
        name="smoke",
        data=DataConfig(image_size=32, n_train_ids=64, n_dev_ids=16, n_eval_ids=32, images_per_modality=3),
        train=TrainConfig(batch_size=32, baseline_epochs=2, oracle_epochs=1, adapt_epochs=1,
                          adapt_pairs_per_identity=2),
        eval_batch_size=128,
        pretrained=PretrainedRecipe(lr_grid=(1e-3,), epochs=1, batch_size=8, pairs_per_identity=2),
    ),
    "full": Preset(
        name="full",
        data=DataConfig(image_size=112, n_train_ids=2000, n_dev_ids=200, n_eval_ids=500, images_per_modality=8),
        train=TrainConfig(batch_size=128, baseline_epochs=30, oracle_epochs=10, adapt_epochs=10, num_workers=4),
        eval_batch_size=512,
        pretrained=PretrainedRecipe(lr_grid=(1e-4, 3e-4, 1e-3, 3e-3), epochs=10, batch_size=64),
    ),
}


def get_preset(preset: str | Preset | None = None) -> Preset:
    """Return a preset by name, or the one named by ``HFR_PRESET`` (default ``fast``)."""
    if isinstance(preset, Preset):
        return preset
    name = preset or os.environ.get(PRESET_ENV, "fast")
    if name not in PRESETS:
        raise ValueError(
            f"Unknown preset {name!r} (from {'argument' if preset else PRESET_ENV}). "
            f"Choose one of {sorted(PRESETS)}, e.g. HFR_PRESET=fast."
        )
    return PRESETS[name]


class CacheError(OSError):
    """The artifact cache (``HFR_CACHE``) cannot be used: not a folder, or not writable where it must be.

    An ``OSError``, so code that turns file-system errors into messages handles it; its text names
    ``HFR_CACHE``, the path and what to do.
    """


def cache_dir() -> Path:
    """The artifact cache: ``HFR_CACHE`` if set, else ``~/.cache/hfr-tutorial`` (created).

    Raises :class:`CacheError` naming ``HFR_CACHE`` when the path is a file (or lies under one) or
    cannot be created.  A read-only cache that already exists is returned: entries it holds can
    still be loaded (:mod:`hfr_tutorial.artifacts` says so when one must be built).
    """
    root = os.environ.get(CACHE_ENV)
    if root:
        path = Path(root).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "hfr-tutorial"
    if path.is_dir():
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CacheError(f"{cache_problem(path, err)} {cache_fix()}") from None
    return path


def cache_problem(path: Path, err: BaseException) -> str:
    """One sentence: why the cache folder ``path`` could not be made or written (``err``), naming the setting."""
    where = f"{CACHE_ENV}={os.environ[CACHE_ENV]!r}" if os.environ.get(CACHE_ENV) else f"the default cache {str(path)!r}"
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return f"The artifact cache ({where}) cannot be a folder: {blocker} is a file."
    if isinstance(err, PermissionError) or getattr(err, "errno", None) in (errno.EACCES, errno.EROFS, errno.EPERM):
        return f"The artifact cache ({where}) is not writable ({err.strerror or err})."
    return f"The artifact cache ({where}) cannot be used ({type(err).__name__}: {err})."


def cache_fix(missing_entry: bool = False) -> str:
    """What to do about an unusable cache (``missing_entry``: an entry must be built in a read-only one)."""
    example = Path(tempfile.gettempdir()) / "hfr-tutorial-cache"
    fix = (f"Point {CACHE_ENV} at a folder you can write, on a disk with a few GB free (e.g. export "
           f"{CACHE_ENV}={example})")
    if missing_entry:
        fix += ", or build the missing entry once where the cache is writable and share that folder"
    return fix + "."


def assets_dir(required: bool = False) -> Path | None:
    """The optional real assets folder named by ``HFR_ASSETS`` (weights/, faces/), or None.

    With ``required=True`` a missing folder raises an error that says how to provide it.
    """
    root = os.environ.get(ASSETS_ENV)
    path = Path(root).expanduser() if root else None
    if path is not None and path.is_dir():
        return path
    if required:
        where = f"{ASSETS_ENV}={root!r} is not a folder" if root else f"{ASSETS_ENV} is not set"
        raise FileNotFoundError(
            f"Real assets are needed here but {where}. Point {ASSETS_ENV} at a folder holding "
            "weights/edgeface_*.pt and faces/<set>/vis/<identity>/*.png (see README, 'Real weights')."
        )
    return None


def seed_everything(seed: int = DEFAULT_SEED) -> np.random.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a NumPy Generator from the same seed."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return np.random.default_rng(seed)


def get_device(device: str | None = None) -> "torch.device":  # noqa: F821
    """The compute device: the argument if given, else CUDA when present, else CPU."""
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def repository_root() -> Path:
    """The root of the clone this package was installed from (editable install), found from this file's location.

    Notebooks use it to reach ``data_scripts/`` and ``docs/`` whether they run from ``notebooks/``,
    ``notebooks/student/`` or anywhere else (the working folder says nothing reliable).  Raises
    ``FileNotFoundError`` when the package is not inside a clone (a non-editable install has no
    ``data_scripts/``): clone the repository and ``pip install -e .`` from it.
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / "data_scripts").is_dir() or not (root / "pyproject.toml").is_file():
        raise FileNotFoundError(f"hfr_tutorial is installed at {root.parent}, outside a clone of the repository "
                                "(no data_scripts/ beside it): clone it and run pip install -e . from the clone.")
    return root


def results_file(*parts: str) -> Path:
    """A committed benchmark record under the repository's ``docs/results/`` (e.g. ``results_file("seeds", "seeds.json")``).

    Found from this package's own location, so a notebook reads it from ``notebooks/``,
    ``notebooks/student/`` or anywhere else.  Raises ``FileNotFoundError`` naming the file and the
    command that writes it when the checkout lacks it (an installed, non-editable package has no
    ``docs/``: use a clone of the repository).
    """
    path = Path(__file__).resolve().parents[1] / "docs" / "results" / Path(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the committed benchmark records live in a clone of the repository "
                                "(pip install -e . from it); regenerate one with its script in benchmarks/.")
    return path


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def strict_checks() -> bool:
    """``HFR_STRICT_CHECKS``: a failed self-check of a notebook raises instead of printing (CI sets it)."""
    return _flag(STRICT_CHECKS_ENV)


def static_widgets() -> bool:
    """``HFR_STATIC_WIDGETS``: interactive explorers draw their static figure (executed notebooks, CI)."""
    return _flag(STATIC_WIDGETS_ENV)


def build_workers() -> int:
    """``HFR_BUILD_WORKERS`` if set, else 2 on a machine with at least 2 cores, else 1: how many missing
    models train side by side on a CPU (one process each)."""
    value = os.environ.get(BUILD_WORKERS_ENV)
    if value:
        try:
            workers = int(value)
        except ValueError:
            raise ValueError(f"{BUILD_WORKERS_ENV}={value!r} is not a whole number; set it to 1 (train in this process) "
                             "or 2 (two training processes side by side).") from None
        if workers < 1:
            raise ValueError(f"{BUILD_WORKERS_ENV}={value!r}: give a whole number >= 1 (1 trains in this process).")
        return workers
    return 2 if (os.cpu_count() or 1) >= 2 else 1

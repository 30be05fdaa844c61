"""What an experiment is: data x starting model x runs x preset x seed (and recipe overrides).

* **Data** (:class:`EmbeddedData` or :class:`LayoutData`): the embedded synthetic faces of the
  preset, or a standard layout with one protocol or a family of folds (``view2`` ->
  ``view2_1 .. view2_10``).  Either may give the adaptation less paired data
  (:class:`TrainSubset`, the data-efficiency study).
* **Starting model** (:class:`StandIn` or :class:`Pretrained`): the RGB baseline trained here on
  the embedded data (its comparison rates were chosen offline on dev: ``RunSpec.rates``), or an
  EdgeFace pretrained elsewhere (the official weights or a checkpoint file: its rate is chosen on
  dev from the preset's grid, with a guard that refuses a model that lost VIS accuracy).
* **Runs**: names of :data:`hfr_tutorial.runs.RUNS`.

Each part says how it is fingerprinted (what makes two experiments the same) and described (what
the report says), and the starting model says which recipe it takes.  The difference between the
embedded default and a researcher's layout with the official weights is data here, not a second
code path: :func:`hfr_tutorial.experiment.run` runs both.  Combinations that make no sense are
refused, with the reason, before any work (:meth:`Experiment.check`).

Taught in: ``notebooks/05_full_training.ipynb`` (the embedded experiment) and
``notebooks/07_real_edgeface.ipynb`` (a layout and the official weights).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import data_key, faceset_digest, load_baseline, load_faceset, recognizer_payload
from ..cache import file_sha256, payload_key
from ..config import Preset, TrainConfig, get_preset
from ..data import FaceSet
from ..data.layout import read_dataset_json
from ..models import find_checkpoint, get_variant, list_variants, load_edgeface, read_checkpoint, weights_hint
from ..models.edgeface import _guess_variant
from ..runs import RUNS, STAND_IN, get_run


class ExperimentError(ValueError):
    """An experiment that cannot start (the message names the input, the problem and the fix)."""


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainSubset:
    """Less paired training data: ``n_identities`` drawn with ``seed``, ``images_per_modality`` images each
    (:meth:`FaceSet.paired_subset`; nested over ``n_identities``).  ``seed`` also seeds the training
    (batch order); the world (data, splits, the stand-in) keeps the experiment's seed, as a user's
    pretrained model stays the same.  Every adaptation runs as many optimisation steps as on the whole
    training split, so a curve over subsets separates the amount of data from the amount of compute."""

    n_identities: int
    images_per_modality: int
    seed: int = 0


@dataclass(frozen=True)
class EmbeddedData:
    """The embedded synthetic faces of the preset: one fixed protocol (train / dev / eval identities)."""

    subset: TrainSubset | None = None
    kind = "embedded"

    def folds(self, preset: Preset, seed: int, progress: bool) -> dict[str, FaceSet]:
        return {"default": load_faceset(preset, seed, progress)}

    def describe(self, preset: Preset, seed: int) -> dict[str, Any]:
        return {"kind": self.kind, "name": f"synthetic-{preset.name}", "protocol": None, "folds": ["default"],
                "simulated_modalities": list(preset.data.modalities[1:]), "data_key": data_key(preset, seed),
                "subset": dataclasses.asdict(self.subset) if self.subset else None}


@dataclass(frozen=True)
class LayoutData:
    """A standard layout (``data_scripts/`` write one) with one protocol, or every fold of a family."""

    root: Path
    protocol: str | None = None
    subset: TrainSubset | None = None
    kind = "layout"

    def fold_names(self) -> list[str | None]:
        """``[protocol]``, or every fold of a family (``view2`` -> ``view2_1 .. view2_10``)."""
        pdir = Path(self.root) / "protocols"
        if self.protocol is None or (pdir / f"{self.protocol}.csv").is_file():
            return [self.protocol]
        pattern = re.compile(rf"^{re.escape(self.protocol)}_(\d+)$")
        folds = sorted((p.stem for p in pdir.glob("*.csv") if pattern.match(p.stem)),
                       key=lambda s: int(pattern.match(s).group(1)))  # type: ignore[union-attr]
        if not folds:
            available = sorted(p.stem for p in pdir.glob("*.csv")) if pdir.is_dir() else []
            raise ExperimentError(f"--protocol {self.protocol}: neither {pdir / (self.protocol + '.csv')} nor folds "
                                  f"{self.protocol}_1, {self.protocol}_2 ... exist. Available: {available or 'none'}.")
        return folds

    def folds(self, preset: Preset, seed: int, progress: bool) -> dict[str, FaceSet]:
        """Each fold's FaceSet, a dev split carved from its training identities where the protocol has none."""
        out = {}
        for fold in self.fold_names():
            faceset = FaceSet.from_layout(self.root, protocol=fold)
            if not np.any(faceset.splits == "dev"):
                faceset, _ = carve_dev(faceset, preset.pretrained.dev_fraction, seed)
            out[fold or "default"] = faceset
        return out

    def describe(self, preset: Preset, seed: int) -> dict[str, Any]:
        info = read_dataset_json(self.root)
        return {"kind": self.kind, "root": str(Path(self.root).resolve()), "name": info["name"],
                "protocol": self.protocol, "folds": [f or "default" for f in self.fold_names()],
                "simulated_modalities": info.get("simulated_modalities") or [],
                "simulation": info.get("simulation"), "alignment": info.get("alignment"),
                "source": info.get("source"), "image_size": info.get("image_size"),
                "subset": dataclasses.asdict(self.subset) if self.subset else None}


def carve_dev(faceset: FaceSet, fraction: float, seed: int) -> tuple[FaceSet, list[str]]:
    """A copy whose ``fraction`` of training identities (seeded) is moved to ``dev``; their names.

    Used when a protocol has no dev split: those identities are never trained on, and recipe
    choices and the VIS guard read them instead of eval.
    """
    train_ids = np.unique(faceset.identities[faceset.splits == "train"])
    n_dev = max(2, int(round(fraction * len(train_ids))))
    if len(train_ids) - n_dev < 2:
        raise ExperimentError(f"{faceset.name}: {len(train_ids)} training identities are too few to hold {n_dev} out "
                              "for dev; add identities or give the protocol a dev split.")
    rng = np.random.default_rng([int(seed), 0xDE5])
    dev_ids = np.sort(rng.choice(train_ids, size=n_dev, replace=False))
    splits = faceset.splits.copy()
    splits[np.isin(faceset.identities, dev_ids) & (splits == "train")] = "dev"
    carved = FaceSet(faceset.images, faceset.identities, faceset.modalities, splits=splits, paths=faceset.paths,
                     identity_names=faceset.identity_names, name=faceset.name, landmarks=faceset.landmarks,
                     roles=faceset.roles, meta={**faceset.meta, "dev_carved": [str(faceset.identity_names[i])
                                                                               for i in dev_ids]})
    return carved, [str(faceset.identity_names[i]) for i in dev_ids]


def held_out_dev(faceset: FaceSet) -> list[str]:
    """The identities :func:`carve_dev` moved to dev (empty when the protocol had its own dev split)."""
    return list(faceset.meta.get("dev_carved", []))


def fold_key(data: EmbeddedData | LayoutData, faceset: FaceSet, preset: Preset, seed: int) -> str:
    """The cache key of one fold's training data: the generator's key (embedded) or the FaceSet's content
    digest, with the subset's when it trains on less than the whole training split."""
    base = data_key(preset, seed) if isinstance(data, EmbeddedData) else faceset_digest(faceset)
    if data.subset is None or subset_is_whole(data.subset, faceset):
        return base
    return f"{base}-subset-{payload_key(dataclasses.asdict(data.subset))}"


def subset_is_whole(subset: TrainSubset, faceset: FaceSet) -> bool:
    """Whether ``subset`` keeps every image of the training split (its model is the whole split's)."""
    train = faceset.select(split="train")
    return len(train.paired_subset(subset.n_identities, subset.images_per_modality, seed=subset.seed)) == len(train)


def training_seed(experiment: "Experiment") -> int:
    """The seed of batches and initialisation: the experiment's, or the subset's (which also draws the data)."""
    return experiment.seed if experiment.data.subset is None else experiment.data.subset.seed


# ------------------------------------------------------------------------------------------------
# Starting models
# ------------------------------------------------------------------------------------------------
@dataclass
class Start:
    """A loaded starting model: the frozen teacher and the student's start, with its cache key."""

    name: str
    model: Any
    key: str
    variant: str
    trainable_params: int
    total_params: int
    train_seconds: float = 0.0
    from_cache: bool = True
    history: Any = None
    entry: str = ""  # its cache entry's name ('' for a checkpoint file)
    train_threads: int | None = None


@dataclass(frozen=True)
class StandIn:
    """The RGB baseline trained here from scratch on the embedded data's VIS images (cached).

    It stands in for the pretrained EdgeFace on the embedded world; its comparison rates were chosen
    on dev offline (``RunSpec.rates["stand-in"]``).  It cannot start from a layout: trained from
    scratch on a layout's few identities it would not be a face model.
    """

    name = "baseline"
    recipe = STAND_IN
    guarded = False

    def load(self, preset: Preset, seed: int, progress: bool) -> Start:
        artifact = load_baseline(preset, seed, progress)
        return Start("baseline", artifact.model, artifact.key, preset.train.variant, artifact.trainable_params,
                     artifact.total_params, artifact.seconds, artifact.from_cache, artifact.history,
                     artifact.path.name, artifact.meta.get("threads"))

    def key(self, preset: Preset, seed: int) -> str:
        return payload_key(recognizer_payload(preset, seed, ("vis",), preset.train.baseline_epochs))

    def train_config(self, preset: Preset) -> TrainConfig:
        return preset.train

    def describe(self, preset: Preset, seed: int) -> dict[str, Any]:
        return {"kind": "stand-in", "name": self.name, "variant": preset.train.variant,
                "what": f"EdgeFace ({preset.train.variant}) trained here from scratch on the VIS images of the "
                        f"embedded training identities ({preset.train.baseline_epochs} epochs)",
                "key": self.key(preset, seed)}


@dataclass(frozen=True)
class Pretrained:
    """An EdgeFace pretrained elsewhere: a variant's official weights found on disk, or a checkpoint file.

    Its recipe is :class:`~hfr_tutorial.config.PretrainedRecipe` (smaller rates than the stand-in's:
    a real EdgeFace adapted at the stand-in's rate lost its VIS verification), each run's rate chosen
    on dev from ``lr_grid`` with the VIS guard.
    """

    variant: str
    checkpoint: Path
    recipe = "pretrained"
    guarded = True

    @property
    def name(self) -> str:
        return f"{self.variant} (unadapted)"

    def load(self, preset: Preset, seed: int, progress: bool) -> Start:
        model = load_edgeface(self.variant, self.checkpoint).eval()
        n = sum(p.numel() for p in model.parameters())
        return Start(self.name, model, self.key(preset, seed), self.variant, 0, n)

    def key(self, preset: Preset, seed: int) -> str:
        return "sha256:" + file_sha256(Path(self.checkpoint))

    def train_config(self, preset: Preset) -> TrainConfig:
        r = preset.pretrained
        return dataclasses.replace(preset.train, variant=self.variant, adapt_epochs=r.epochs, batch_size=r.batch_size,
                                   distill_weight=r.distill_weight, adapt_pairs_per_identity=r.pairs_per_identity,
                                   contrastive=r.contrastive)

    def describe(self, preset: Preset, seed: int) -> dict[str, Any]:
        return {"kind": "pretrained", "name": self.name, "variant": self.variant,
                "checkpoint": str(self.checkpoint), "sha256": file_sha256(Path(self.checkpoint)),
                "what": f"EdgeFace {self.variant} pretrained elsewhere, from {self.checkpoint}"}


def resolve_model(model: str, variant: str | None = None) -> Pretrained:
    """``--model``: a variant name (its official weights are looked for on disk) or a checkpoint path.

    Raises:
        ExperimentError: the variant's weights are not on disk (says where it looked and how to
            get them), the path does not exist, or the file fits no variant.
    """
    if model in list_variants():
        if variant is not None and variant != model:
            raise ExperimentError(f"--model {model} and --variant {variant} disagree; give one of them.")
        path = find_checkpoint(model)
        if path is None:
            raise ExperimentError(f"--model {model}: no weights of this variant on disk. {weights_hint(model)}")
        return Pretrained(model, path)
    path = Path(model).expanduser()
    if not path.exists():
        raise ExperimentError(f"--model {model!r} is neither a variant ({', '.join(list_variants())}) nor an existing "
                              f"checkpoint file. {weights_hint(variant or 'edgeface_xxs')}")
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.pt"))
        raise ExperimentError(f"--model {path} is a folder; give the checkpoint file itself"
                              + (f" (it holds {', '.join(found[:5])})." if found else " (it holds no .pt file)."))
    if variant is None:
        variant = _guess_variant(read_checkpoint(path))
        if variant is None:
            raise ExperimentError(f"--model {path}: its keys and shapes match no EdgeFace variant; pass --variant.")
    get_variant(variant)
    return Pretrained(variant, path)


# ------------------------------------------------------------------------------------------------
# The experiment
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Experiment:
    """data x starting model x runs x preset x seed, and the recipe overrides a user may give.

    ``lr`` fixes every run's rate (default: the run's dev-chosen rate for the stand-in, or a choice
    on dev from the preset's grid for a pretrained model); ``epochs`` and ``batch_size`` override
    the starting model's recipe (adaptation only: the stand-in's baseline stays as it is); ``bf16``
    runs the student's forward pass in bfloat16 (CUDA only).
    """

    data: EmbeddedData | LayoutData = field(default_factory=EmbeddedData)
    start: StandIn | Pretrained = field(default_factory=StandIn)
    runs: tuple[str, ...] = ()
    preset: Preset = field(default_factory=get_preset)
    seed: int = 0
    lr: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    bf16: bool = False

    def __post_init__(self) -> None:
        if not self.runs:
            object.__setattr__(self, "runs", tuple(RUNS) if isinstance(self.start, StandIn)
                               else tuple(n for n, s in RUNS.items() if s.adapts))

    def check(self) -> None:
        """Refuse, before any work, a combination that makes no sense or a setting that cannot train."""
        unknown = [r for r in self.runs if r not in RUNS]
        if unknown:
            raise ExperimentError(f"--runs {list(self.runs)}: unknown {unknown}; choose from {list(RUNS)}.")
        if isinstance(self.data, LayoutData) and isinstance(self.start, StandIn):
            raise ExperimentError(
                "A layout with the stand-in: the stand-in is an RGB EdgeFace trained here from scratch on the embedded "
                f"data's {self.preset.data.n_train_ids} identities; trained from scratch on a layout's identities it "
                "would not be a face model, and its rates were chosen on the embedded data. Start from a model "
                "pretrained on faces: --model edgeface_xxs (its official weights) or a checkpoint file.")
        oracle = [r for r in self.runs if not get_run(r).adapts]
        if oracle and isinstance(self.data, LayoutData):
            raise ExperimentError(f"--runs {oracle[0]}: the oracle trains a network from scratch on every modality, "
                                  "which a layout's few identities cannot support (the reason the stand-in is "
                                  "refused there). Leave it out of --runs.")
        if not self.runs:
            raise ExperimentError("--runs: give at least one run.")
        check_settings(self.seed, self.lr, self.epochs, self.batch_size)
        for run in self.runs:
            spec = get_run(run)
            if spec.adapts and self.lr is None and spec.fixed_rate(self.start.recipe) is None \
                    and not self.start.guarded:
                raise ExperimentError(f"Run {run} has no rate for the {self.start.recipe} starting model "
                                      "(RunSpec.rates) and this starting model chooses none on dev; give --lr.")

    def adapt_config(self, full_train: FaceSet, train: FaceSet) -> TrainConfig:
        """The TrainConfig of an adaptation on ``train`` (a subset of ``full_train`` or all of it).

        The starting model's recipe with the overrides; a batch of at most the training identities
        (a batch holds distinct identities); with a subset, the epochs that give the whole split's
        number of optimisation steps.
        """
        config = self.start.train_config(self.preset)
        changes: dict[str, Any] = {}
        if self.epochs is not None:
            changes["adapt_epochs"] = self.epochs
        if self.batch_size is not None:
            changes["batch_size"] = self.batch_size
        config = dataclasses.replace(config, **changes)
        n_full = len(np.unique(full_train.identities))
        n_ids = len(np.unique(train.identities))
        batch = min(config.batch_size, n_ids)
        epochs = config.adapt_epochs
        if train is not full_train:
            per_epoch = len(train.pair_loader(batch, seed=self.seed, pairs_per_identity=config.adapt_pairs_per_identity,
                                              drop_last=True))
            full_per_epoch = len(full_train.pair_loader(min(config.batch_size, n_full), seed=self.seed,
                                                        pairs_per_identity=config.adapt_pairs_per_identity,
                                                        drop_last=True))
            epochs = max(1, round(config.adapt_epochs * full_per_epoch / max(1, per_epoch)))
        return dataclasses.replace(config, batch_size=batch, adapt_epochs=epochs)

    def fingerprint(self) -> str:
        """What makes two experiments the same (the ``--out`` rule compares it)."""
        return payload_key(self.describe())

    def describe(self) -> dict[str, Any]:
        """The experiment as the report and ``metrics.json`` state it."""
        return {"data": self.data.describe(self.preset, self.seed),
                "starting_model": self.start.describe(self.preset, self.seed), "runs": list(self.runs),
                "preset": self.preset.name, "config": dataclasses.asdict(self.preset), "seed": self.seed,
                "overrides": {"lr": self.lr, "epochs": self.epochs, "batch_size": self.batch_size, "bf16": self.bf16}}


def check_settings(seed: Any, lr: float | None, epochs: int | None, batch_size: int | None) -> None:
    """Refuse a seed, rate, epoch count or batch size that cannot give a meaningful run (before anything is read)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ExperimentError(f"--seed {seed}: give a whole number >= 0 (seeds of data, splits and training).")
    if lr is not None and not (np.isfinite(lr) and 0 < lr <= 1):
        raise ExperimentError(f"--lr {lr}: a learning rate must be a finite number in (0, 1]; the tutorial's rates lie "
                              "between 1e-4 and 3e-1.")
    for name, value in (("--epochs", epochs), ("--batch-size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ExperimentError(f"{name} {value}: give a whole number >= 1.")
    if batch_size is not None and batch_size < 2:
        raise ExperimentError(f"--batch-size {batch_size}: a batch of one identity holds no negative pair, so the "
                              "contrastive loss would be 0 and the run would be distillation only. Give 2 or more.")


def experiment_from_args(*, data: str | Path | None = None, protocol: str | None = None, model: str | None = None,
                         variant: str | None = None, runs: Sequence[str] | None = None,
                         preset: str | Preset | None = None, seed: int = 0, lr: float | None = None,
                         epochs: int | None = None, batch_size: int | None = None, bf16: bool = False,
                         subset: TrainSubset | None = None) -> Experiment:
    """The experiment the command line names: ``--data`` (default: the embedded data), ``--model`` (default:
    the stand-in without ``--data``, ``edgeface_xxs`` with it), and the rest as given."""
    check_settings(seed, lr, epochs, batch_size)
    if protocol is not None and data is None:
        raise ExperimentError("--protocol needs --data: the embedded synthetic data has one fixed protocol.")
    if variant is not None and model is None:
        raise ExperimentError("--variant names the variant of a --model checkpoint file; add --model FILE.")
    source: EmbeddedData | LayoutData = (EmbeddedData(subset) if data is None
                                         else LayoutData(Path(data).expanduser(), protocol, subset))
    if data is not None:
        read_dataset_json(data)  # a clear error for a path that is not a layout, before the model is read
    if model in (None, "baseline") and data is None:
        start: StandIn | Pretrained = StandIn()
    elif model == "baseline":
        raise ExperimentError("--model baseline is the RGB model trained here on the embedded synthetic data; with "
                              "--data give a pretrained model instead (--model edgeface_xxs, or a checkpoint path).")
    else:
        start = resolve_model(model or "edgeface_xxs", variant)
    experiment = Experiment(source, start, tuple(runs or ()), get_preset(preset), seed, lr, epochs, batch_size, bf16)
    experiment.check()
    return experiment

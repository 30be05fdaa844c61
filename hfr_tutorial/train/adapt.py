"""The method: a student copy of the RGB model adapted to NIR/thermal probes, with a frozen teacher.

A *student* copy of the RGB model under a tuning policy (:mod:`hfr_tutorial.tuning`) learns from
batches that pair VIS with NIR/thermal images of the same identities; loss = contrastive alignment +
lambda * self-distillation towards the frozen *teacher* (the original RGB model) on the VIS images
(:class:`~hfr_tutorial.losses.MethodLoss`, applied by :class:`~hfr_tutorial.train.step.AdaptationStep`).

Taught in: ``notebooks/03_contrastive_alignment.ipynb``, ``04_self_distillation`` and ``05_full_training``.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig, check_number, get_device, seed_everything
from ..data.faceset import cross_modalities
from ..evaluate import available_protocols
from ..losses import MethodLoss, make_method_loss
from ..tuning import apply_policy, trainable_parameters
from .loop import TrainResult, run_epochs, state_fingerprint
from .optim import adamw, warmup_cosine_scheduler
from .step import AdaptationStep, teacher_embeddings
from .validation import dev_rank1, validation_subset


@dataclass(frozen=True)
class AdaptSettings:
    """What distinguishes one adaptation run from another (the comparison runs vary these).

    Every field left at ``None`` takes the preset's value (``TrainConfig.contrastive``,
    ``distill_weight``, ``adapt_epochs``, ``adapt_lr``), so the recipe lives in one place.
    """

    policy: str = "paper"
    contrastive: str | None = None  # "infonce", "pairwise" or "pairwise+infonce"; None: config.contrastive
    distill_weight: float | None = None  # lambda; 0 switches self-distillation off; None: config.distill_weight
    epochs: int | None = None  # None: config.adapt_epochs
    lr: float | None = None  # None: config.adapt_lr

    def __post_init__(self) -> None:
        """Refuse, before any training, a rate, weight or epoch count that cannot give a meaningful run."""
        if self.lr is not None:
            check_number("AdaptSettings.lr", self.lr, "> 0", "a learning rate",
                         fix="e.g. AdaptSettings(lr=1e-3), or lr=None for the preset's adapt_lr")
        if self.distill_weight is not None:
            check_number("AdaptSettings.distill_weight", self.distill_weight, ">= 0",
                         "the self-distillation weight (0 switches it off)",
                         fix="e.g. AdaptSettings(distill_weight=3.0), or None for the preset's distill_weight")
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, int)
                                        or self.epochs < 1):
            raise ValueError(f"AdaptSettings.epochs={self.epochs!r} is invalid: give a whole number >= 1, or None for "
                             "the preset's adapt_epochs.")

    def resolved(self, config: TrainConfig) -> "AdaptSettings":
        """These settings with every ``None`` replaced by the preset's value."""
        return replace(self, contrastive=self.contrastive or config.contrastive,
                       distill_weight=config.distill_weight if self.distill_weight is None else self.distill_weight,
                       epochs=config.adapt_epochs if self.epochs is None else self.epochs,
                       lr=config.adapt_lr if self.lr is None else self.lr)

    @property
    def name(self) -> str:
        """The run's name, ``<policy>/<loss>[+distill]``: its tuning policy and its losses.

        ``loss`` is the contrastive loss (``infonce``, ``pairwise`` or ``pairwise+infonce``) and
        ``+distill`` marks self-distillation (any lambda > 0).  A field left at ``None`` is named by
        ``TrainConfig``'s default (``infonce``; distillation on); :meth:`resolved` settings give the
        exact name for a preset, which is what :func:`hfr_tutorial.artifacts.load_adapted` uses.
        """
        loss = self.contrastive or TrainConfig.contrastive
        return f"{self.policy}/{loss}" + ("" if self.distill_weight == 0 else "+distill")

    @property
    def label(self) -> str:
        """The name plus what else differs from the defaults (for progress bars and logs)."""
        default = AdaptSettings()
        extras = [f"{k}={getattr(self, k)}" for k in ("contrastive", "distill_weight", "epochs", "lr")
                  if getattr(self, k) != getattr(default, k) and not (k == "distill_weight" and self.distill_weight == 0)]
        return self.name + (f" ({', '.join(extras)})" if extras else "")


def method_loss(settings: AdaptSettings, config: TrainConfig) -> MethodLoss:
    """The :class:`~hfr_tutorial.losses.MethodLoss` of resolved ``settings`` with the preset's temperature,
    margin and distillation kind."""
    return make_method_loss(settings.contrastive or config.contrastive, temperature=config.temperature,
                            margin=config.margin, distill_weight=settings.distill_weight or 0.0,
                            distill_kind=config.distill)


def check_pairable(train_set: Any, batch_size: int, where: str = "adapt_cross_spectral") -> tuple[str, ...]:
    """Refuse, before any training, a set the method cannot learn from; returns the modalities paired with VIS.

    The set needs VIS and another modality of the same identities, and a batch must hold at least
    two identities (a batch of one pair has no negative: the contrastive loss would be 0).
    """
    others = cross_modalities(train_set.modalities)
    if not others or not np.any(np.asarray(train_set.modalities) == "vis"):
        raise ValueError(f"{where}: the training set holds modalities {sorted(set(train_set.modalities))}; "
                         "the method pairs VIS images with images of another modality (nir, thermal, ...) of the "
                         "same identities, so it needs both. Check the protocol's train split.")
    if batch_size < 2:
        raise ValueError(f"{where}: a batch of {batch_size} identity holds no negative pair, so the contrastive loss "
                         "would be 0 and the run would be distillation only. Use --batch-size 2 or more.")
    n_ids = len(np.unique(train_set.identities))
    if n_ids < batch_size:
        raise ValueError(f"{where}: {n_ids} training identities is fewer than one batch of "
                         f"{batch_size} distinct identities; lower the batch size.")
    return others


def adapt_cross_spectral(teacher: nn.Module, train_set: Any, config: TrainConfig,
                         settings: AdaptSettings = AdaptSettings(), *, dev_set: Any = None, seed: int = 0,
                         device: str | torch.device | None = None, checkpoint_dir: str | Path | None = None,
                         progress: bool = True, stop_after_epoch: int | None = None,
                         bf16: bool = False) -> TrainResult:
    """Adapt a copy of the RGB model ``teacher`` to NIR/thermal probes (the method).

    The student starts as a deep copy of ``teacher``; only the parameters of ``settings.policy``
    learn.  Each batch pairs VIS and NIR-or-thermal images of distinct identities; the loss is
    the contrastive term(s) between the student's VIS and NIR/thermal embeddings plus
    ``settings.distill_weight`` times the self-distillation term between the student's and the
    frozen teacher's VIS embeddings.  ``teacher`` itself is never modified.

    Every modality of ``train_set`` other than VIS is paired with VIS (``nir`` and ``thermal`` on
    the embedded data; ``nir`` alone on CASIA NIR-VIS 2.0).  Training runs on ``device`` (default:
    CUDA when present); on CUDA the loaders pin memory, and ``bf16=True`` runs the student's
    forward pass under bfloat16 autocast (losses in float32); on a CPU ``bf16`` is refused
    (it was measured 7-14x slower there: ``benchmarks/bench_speed.py``).
    """
    device = get_device(device)
    if bf16 and device.type != "cuda":
        raise ValueError(f"bf16=True (--bf16) applies to CUDA devices; this run is on {device.type}, where bfloat16 "
                         "autocast was 7-14x slower (benchmarks/bench_speed.py). Leave --bf16 out.")
    label = settings.label
    settings = settings.resolved(config)
    epochs, lr = settings.epochs, settings.lr
    data = train_set
    other_modalities = check_pairable(data, config.batch_size)
    seed_everything(seed)
    teacher = copy.deepcopy(teacher).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(teacher)
    report = apply_policy(student, settings.policy)
    if report.trainable == 0:
        raise ValueError(f"policy {settings.policy!r} leaves nothing to train; use it only for evaluation.")
    optimizer = adamw(trainable_parameters(student), lr=lr, weight_decay=config.weight_decay)

    def batches(epoch: int) -> Any:
        return data.pair_loader(config.batch_size, seed=seed, epoch=epoch,
                                pairs_per_identity=config.adapt_pairs_per_identity, modalities=other_modalities,
                                augment_vis=config.adapt_augment_vis, drop_last=True, num_workers=config.num_workers,
                                pin_memory=device.type == "cuda")

    steps_per_epoch = len(batches(0))
    scheduler = warmup_cosine_scheduler(optimizer, epochs * steps_per_epoch, config.warmup_fraction)
    loss = method_loss(settings, config).to(device)
    teacher_targets = (teacher_embeddings(teacher, data, batch_size=2 * config.batch_size, device=device)
                       if loss.distill is not None and not config.adapt_augment_vis else None)
    step = AdaptationStep(student, loss, teacher=teacher, teacher_targets=teacher_targets, device=device, bf16=bf16)

    validate = None
    if dev_set is not None:
        dev = validation_subset(dev_set, ["vis", *other_modalities])
        dev_protocols = available_protocols(dev.identities, dev.modalities)
        validate = lambda: dev_rank1(student, dev, dev_protocols)  # noqa: E731

    fingerprint = {"kind": "adapt", "config": asdict(config), "settings": asdict(settings), "seed": seed,
                   "teacher": state_fingerprint(teacher), "n": len(data)}
    t0 = time.perf_counter()
    history = run_epochs(
        what=label, epochs=epochs, steps_per_epoch=steps_per_epoch, batches=batches, step=step,
        modules={"student": student}, optimizer=optimizer, scheduler=scheduler, validate=validate,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None, fingerprint=fingerprint,
        progress=progress, stop_after_epoch=stop_after_epoch)
    student.eval()
    for p in student.parameters():
        p.requires_grad_(True)
    return TrainResult(model=student.cpu(), history=history, seconds=time.perf_counter() - t0, policy=report)

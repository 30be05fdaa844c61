"""Train an EdgeFace from scratch on identity labels: the RGB baseline and the joint oracle.

On VIS images only it is the **RGB baseline** that stands in for the pretrained EdgeFace on the
embedded data; on every modality at once it is the **joint oracle** (an upper reference that needs
paired data and compute the method does without).

Taught in: ``notebooks/01_baseline_rgb_model.ipynb``.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..config import TrainConfig, get_device, seed_everything
from ..models.edgeface import EMBEDDING_DIM, create_edgeface
from ..models.heads import make_head
from .loop import TrainResult, run_epochs
from .optim import adamw, warmup_cosine_scheduler
from .step import RecognizerStep
from .validation import dev_rank1, validation_subset


def _protocols_for(modalities: Sequence[str]) -> list[str]:
    return [f"{m}->vis" for m in ("vis", "nir", "thermal") if m in modalities]


def train_recognizer(train_set: Any, config: TrainConfig, *, epochs: int | None = None,
                     modalities: Sequence[str] = ("vis",), augment: bool = True, dev_set: Any = None,
                     seed: int = 0, device: str | torch.device | None = None,
                     checkpoint_dir: str | Path | None = None, progress: bool = True,
                     stop_after_epoch: int | None = None) -> TrainResult:
    """Train an EdgeFace from scratch with a margin head on the identity labels of ``train_set``.

    Args:
        train_set: a FaceSet holding the training identities (any split column).
        config: the preset's :class:`~hfr_tutorial.config.TrainConfig` (variant, batch size,
            learning rate, head, epochs).
        epochs: overrides ``config.baseline_epochs``.
        modalities: ``("vis",)`` for the RGB baseline; all three for the joint oracle.
        augment: flips, crops and VIS colour jitter (see :meth:`FaceSet.loader`); the baseline uses
            them, the oracle does not (``TrainConfig.oracle_augment``).
        dev_set: optional FaceSet of other identities; each epoch reports its rank-1.
        checkpoint_dir: where ``last.pt`` is written after each epoch and resumed from.
        stop_after_epoch: stop early after this epoch (simulates an interruption).
    """
    device = get_device(device)
    epochs = config.baseline_epochs if epochs is None else epochs
    data = train_set.select(modality=list(modalities))
    if len(data) == 0:
        raise ValueError(f"train_recognizer: no training images of modalities {list(modalities)}.")
    seed_everything(seed)
    model = create_edgeface(config.variant, seed=seed).to(device)
    num_classes = len(np.unique(data.identities))
    head = make_head(config.head, EMBEDDING_DIM, num_classes, config.head_scale, config.head_margin).to(device)
    optimizer = adamw([*model.parameters(), *head.parameters()], lr=config.baseline_lr,
                      weight_decay=config.weight_decay)
    if len(data) < config.batch_size:
        raise ValueError(f"train_recognizer: {len(data)} images is fewer than one batch of {config.batch_size}; "
                         "lower the batch size or add images.")

    def batches(epoch: int) -> Any:
        return data.loader(config.batch_size, shuffle=True, augment=augment, seed=seed, epoch=epoch, drop_last=True,
                           num_workers=config.num_workers, pin_memory=device.type == "cuda")

    steps_per_epoch = len(batches(0))
    scheduler = warmup_cosine_scheduler(optimizer, epochs * steps_per_epoch, config.warmup_fraction)

    validate = None
    if dev_set is not None:
        protocols = _protocols_for(modalities if len(modalities) > 1 else ("vis", "nir", "thermal"))
        dev = validation_subset(dev_set, sorted({p.split("->")[0] for p in protocols} | {"vis"}))
        validate = lambda: dev_rank1(model, dev, protocols)  # noqa: E731

    fingerprint = {"kind": "recognizer", "config": asdict(config), "epochs": epochs, "modalities": list(modalities),
                   "augment": augment, "seed": seed, "n": len(data)}
    what = "oracle" if len(modalities) > 1 else "baseline"
    t0 = time.perf_counter()
    history = run_epochs(
        what=what, epochs=epochs, steps_per_epoch=steps_per_epoch, batches=batches,
        step=RecognizerStep(model, head, device=device), modules={"model": model, "head": head}, optimizer=optimizer,
        scheduler=scheduler, validate=validate, checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
        fingerprint=fingerprint, progress=progress, stop_after_epoch=stop_after_epoch)
    model.eval()
    return TrainResult(model=model.cpu(), history=history, seconds=time.perf_counter() - t0)

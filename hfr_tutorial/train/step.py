"""One training step of each loop, as an object the loop, the benchmarks and the layer selection share.

* :class:`AdaptationStep` -- the method: the student embeds a batch of VIS and NIR/thermal pairs in
  one forward pass; :class:`~hfr_tutorial.losses.MethodLoss` adds the contrastive term(s) and the
  self-distillation term towards the frozen teacher's VIS embeddings (looked up in a table computed
  once when the VIS images are not augmented, else computed per batch).
* :class:`RecognizerStep` -- the RGB baseline and the joint oracle: a margin head's cross-entropy
  on identity labels.

A step takes a batch and returns a dict of loss tensors (``"loss"`` is minimised); it does not
touch the optimiser (:func:`hfr_tutorial.train.loop.optimisation_step` does).

Taught in: ``notebooks/04_self_distillation.ipynb`` (the method's step, written out and compared
with this one) and ``notebooks/01_baseline_rgb_model.ipynb`` (the recogniser's).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import get_device
from ..losses import MethodLoss
from ..models.edgeface import EMBEDDING_DIM, normalize


class AdaptationStep:
    """The method's step: ``student`` embeds VIS and other images of a pair batch; ``loss`` scores them.

    Args:
        student: the model being adapted (its tuning policy already applied).
        loss: the run's :class:`~hfr_tutorial.losses.MethodLoss`.
        teacher: the frozen RGB model (needed when ``loss`` distils and ``teacher_targets`` is None).
        teacher_targets: the teacher's embeddings of every image of the training set
            (:func:`teacher_embeddings`), looked up by a batch's ``vis_index``.
        device: where the batch goes.
        bf16: the student's forward pass under bfloat16 autocast (losses in float32).
    """

    def __init__(self, student: nn.Module, loss: MethodLoss, *, teacher: nn.Module | None = None,
                 teacher_targets: torch.Tensor | None = None, device: torch.device, bf16: bool = False):
        if loss.distill is not None and teacher is None and teacher_targets is None:
            raise ValueError("AdaptationStep: the loss distils, so give the frozen teacher or its targets.")
        self.student, self.loss, self.teacher, self.teacher_targets = student, loss, teacher, teacher_targets
        self.device, self.bf16 = device, bf16

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        device = self.device
        vis = normalize(batch["vis"].to(device, non_blocking=True))
        other = normalize(batch["other"].to(device, non_blocking=True))
        labels = batch["label"].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
            emb = self.student(torch.cat([vis, other]))
        emb = emb.float()
        e_vis, e_other = emb[: len(vis)], emb[len(vis):]
        t_vis = None
        if self.loss.distill is not None:
            if self.teacher_targets is not None:
                t_vis = self.teacher_targets[batch["vis_index"]].to(device, non_blocking=True)
            else:
                with torch.no_grad():
                    t_vis = self.teacher(vis)
        return self.loss(e_vis, e_other, labels, t_vis)


class RecognizerStep:
    """The recogniser's step: embeddings of a batch, the margin head's cross-entropy, and the accuracy
    without the margin (the margin makes the target harder on purpose)."""

    def __init__(self, model: nn.Module, head: nn.Module, *, device: torch.device):
        self.model, self.head, self.device = model, head, device
        self.criterion = nn.CrossEntropyLoss()

    def __call__(self, batch: Any) -> dict[str, torch.Tensor]:
        x, y = batch
        x, y = normalize(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)
        emb = self.model(x)
        loss = self.criterion(self.head(emb, y), y)
        with torch.no_grad():
            acc = (self.head.cosine(emb).argmax(1) == y).float().mean()
        return {"loss": loss, "train_acc": acc}


def teacher_embeddings(teacher: nn.Module, faceset: Any, *, batch_size: int = 128,
                       device: str | torch.device | None = None) -> torch.Tensor:
    """The frozen teacher's raw embeddings of the VIS images of ``faceset``, on the CPU.

    Row ``i`` is image ``i`` of ``faceset`` (rows of other modalities stay zero), so a batch's
    ``vis_index`` looks its targets up.  The images go in exactly as :meth:`FaceSet.pair_loader`
    hands them out without augmentation.  With un-augmented VIS images the teacher's target for an
    image never changes: one pass replaces a teacher forward pass in every step (a fifth of a step).
    """
    device = get_device(device)
    vis_rows = np.flatnonzero(np.asarray(faceset.modalities) == "vis")
    table = torch.zeros(len(faceset), EMBEDDING_DIM)
    teacher = teacher.to(device).eval()
    vis_set = faceset.subset(vis_rows)
    with torch.no_grad():
        start = 0
        for x, _ in vis_set.loader(batch_size, shuffle=False):
            rows = vis_rows[start:start + len(x)]
            table[torch.from_numpy(rows)] = teacher(normalize(x.to(device))).float().cpu()
            start += len(x)
    return table

"""The two training loops of the tutorial, one code path for CPU and GPU.

1. :func:`train_recognizer` -- an EdgeFace trained from scratch with a margin head (CosFace or
   ArcFace) on identity labels.  On VIS images only it is the **RGB baseline** that stands in for
   the pretrained EdgeFace on the embedded data; on all modalities at once it is the **joint
   oracle** (an upper reference that needs paired data and compute the method does without).
2. :func:`adapt_cross_spectral` -- the method: a *student* copy of the RGB model under a tuning
   policy (:mod:`hfr_tutorial.tuning`) learns from batches that pair VIS with NIR/thermal images of
   the same identities; loss = contrastive alignment + lambda * self-distillation towards the
   frozen *teacher* (the original RGB model) on the VIS images.

Both loops: AdamW with linear warm-up and cosine decay; a tqdm bar with the running loss; a
history table (one row per epoch: losses, learning rate, validation rank-1 on dev identities,
seconds); a checkpoint after every epoch from which an interrupted run resumes and ends with the
same weights as an uninterrupted one (batches depend only on the seed and the epoch); and a clear
error when the loss turns NaN or infinite.

Taught in: ``notebooks/01_baseline_rgb_model.ipynb`` (the recogniser), ``03``-``05`` (adaptation).
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import TrainConfig, check_number, get_device, seed_everything
from .data.faceset import KNOWN_MODALITIES
from .evaluate import available_protocols
from .losses import CrossModalInfoNCE, PairwiseContrastiveLoss, SelfDistillationLoss
from .models.edgeface import EMBEDDING_DIM, EdgeFace, create_edgeface, normalize
from .models.heads import make_head
from .tuning import PolicyReport, apply_policy, trainable_parameters

CHECKPOINT_NAME = "last.pt"


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the likely cause."""


@dataclass
class TrainResult:
    """A trained model with what it took: history table, seconds, parameter budget."""

    model: EdgeFace
    history: pd.DataFrame
    seconds: float
    policy: PolicyReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# Shared pieces
# ------------------------------------------------------------------------------------------------
def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup_fraction`` of the steps, then cosine to zero."""
    warmup = max(1, int(round(total_steps * warmup_fraction)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


FUSED_ADAMW_DEVICES = ("cpu", "cuda")
"""Device types whose AdamW has the fused kernel (torch checks this only at the first step)."""


def adamw(params: Sequence[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, with the fused kernel when every parameter is a float tensor on a CPU or CUDA device.

    The fused update handles all tensors at once: about 4x faster than the per-tensor loop on a CPU,
    where the optimiser step was a tenth of a training step.
    """
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_ADAMW_DEVICES and p.is_floating_point() for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def _check_finite(loss: torch.Tensor, epoch: int, step: int, global_step: int, lr: float, what: str) -> None:
    if not torch.isfinite(loss):
        raise TrainingDiverged(
            f"{what}: the loss became {loss.item()} at epoch {epoch}, step {step} (global step {global_step}, "
            f"learning rate {lr:.3g}). Likely causes: a learning rate too high for this policy (lower it, e.g. "
            "preset.replace(train__adapt_lr=...)), a temperature too small, or NaN/inf values in the input images."
        )


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it exists and was written by a run of the same configuration."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # a half-written or corrupt file: start over
        return None
    if state.get("fingerprint") != fingerprint:
        return None
    return state


def dev_rank1(model: nn.Module, faceset: Any, protocols: Sequence[str], batch_size: int = 256) -> dict[str, float]:
    """Rank-1 of each protocol (``"nir->vis"``...) on a (dev) FaceSet: the validation figure."""
    from .evaluate import embed, evaluate_protocols

    emb = embed(model, faceset, batch_size=batch_size, progress=False)
    results = evaluate_protocols(emb, faceset.identities, faceset.modalities, protocols=tuple(protocols))
    return {f"val_{name.split('->')[0]}_rank1": round(float(r["rank1"]), 4) for name, r in results.items()}


VALIDATION_IMAGES_PER_IDENTITY = 3
"""Images per identity and modality that the per-epoch validation embeds (the first ones): enough
for a learning curve, a third of the cost of the whole dev split; reported figures use ``eval``."""


def validation_subset(dev_set: Any, modalities: Sequence[str],
                      per_identity: int = VALIDATION_IMAGES_PER_IDENTITY) -> Any:
    """The first ``per_identity`` images of each (identity, modality) of ``dev_set`` in ``modalities``."""
    data = dev_set.select(modality=list(modalities))
    rank = pd.DataFrame({"identity": data.identities, "modality": data.modalities}).groupby(
        ["identity", "modality"]).cumcount().to_numpy()  # 0, 1, 2, ... within each (identity, modality)
    return data.subset(rank < per_identity)


def cross_modalities(modalities: Sequence[str] | np.ndarray) -> tuple[str, ...]:
    """The modalities other than VIS present in ``modalities``, in :data:`KNOWN_MODALITIES` order."""
    present = set(np.asarray(modalities).astype(str).tolist())
    return tuple(m for m in KNOWN_MODALITIES if m != "vis" and m in present)


def _protocols_for(modalities: Sequence[str]) -> list[str]:
    return [f"{m}->vis" for m in ("vis", "nir", "thermal") if m in modalities]


def _run_epochs(*, what: str, epochs: int, steps_per_epoch: int, batches: Callable[[int], Any],
                step_fn: Callable[[Any], dict[str, torch.Tensor]], modules: dict[str, nn.Module],
                optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR,
                validate: Callable[[], dict[str, float]] | None, checkpoint_dir: Path | None,
                fingerprint: dict[str, Any], progress: bool, stop_after_epoch: int | None) -> pd.DataFrame:
    """The epoch loop both trainers share: resume, steps, history, validation, checkpoints."""
    history: list[dict[str, Any]] = []
    start_epoch = 0
    ckpt_path = checkpoint_dir / CHECKPOINT_NAME if checkpoint_dir else None
    if ckpt_path is not None:
        state = _load_checkpoint(ckpt_path, fingerprint)
        if state is not None:
            for name, module in modules.items():
                module.load_state_dict(state["modules"][name])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history, start_epoch = state["history"], state["epoch"] + 1
            if progress and start_epoch < epochs:
                print(f"{what}: resuming from {ckpt_path} after epoch {start_epoch}")
    global_step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        for module in modules.values():
            module.train()
        sums: dict[str, float] = {}
        count = 0
        bar = tqdm(batches(epoch), total=steps_per_epoch, desc=f"{what} epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False, mininterval=1.0)  # <= 1 update/s: light on notebook output
        for step, batch in enumerate(bar):
            lr = optimizer.param_groups[0]["lr"]
            losses = step_fn(batch)
            _check_finite(losses["loss"], epoch, step, global_step, lr, what)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            scheduler.step()
            global_step += 1
            count += 1
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            bar.set_postfix(loss=f"{sums['loss'] / count:.4f}", lr=f"{lr:.2e}", refresh=False)
        bar.close()
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update({key: total / max(1, count) for key, total in sums.items()})
        row["lr"] = optimizer.param_groups[0]["lr"]
        if validate is not None:
            row.update(validate())
        row["seconds"] = round(time.perf_counter() - t0, 2)
        history.append(row)
        if progress:
            shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
            print(f"{what}: {shown}")
        if ckpt_path is not None:
            _save_atomic({"fingerprint": fingerprint, "epoch": epoch, "history": history,
                          "modules": {n: m.state_dict() for n, m in modules.items()},
                          "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, ckpt_path)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break  # used by tests and notebooks to simulate an interruption
    return pd.DataFrame(history)


# ------------------------------------------------------------------------------------------------
# 1. Recogniser from scratch: the RGB baseline and the joint oracle
# ------------------------------------------------------------------------------------------------
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
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(epochs * steps_per_epoch, config.warmup_fraction))
    criterion = nn.CrossEntropyLoss()

    def step(batch: Any) -> dict[str, torch.Tensor]:
        x, y = batch
        x, y = normalize(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)
        emb = model(x)
        loss = criterion(head(emb, y), y)
        with torch.no_grad():  # accuracy without the margin (the margin makes the target harder on purpose)
            acc = (head.cosine(emb).argmax(1) == y).float().mean()
        return {"loss": loss, "train_acc": acc}

    validate = None
    if dev_set is not None:
        protocols = _protocols_for(modalities if len(modalities) > 1 else ("vis", "nir", "thermal"))
        dev = validation_subset(dev_set, sorted({p.split("->")[0] for p in protocols} | {"vis"}))
        validate = lambda: dev_rank1(model, dev, protocols)  # noqa: E731

    fingerprint = {"kind": "recognizer", "config": asdict(config), "epochs": epochs, "modalities": list(modalities),
                   "augment": augment, "seed": seed, "n": len(data)}
    what = "oracle" if len(modalities) > 1 else "baseline"
    t0 = time.perf_counter()
    history = _run_epochs(
        what=what, epochs=epochs, steps_per_epoch=steps_per_epoch,
        batches=batches,
        step_fn=step, modules={"model": model, "head": head}, optimizer=optimizer, scheduler=scheduler,
        validate=validate, checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
        fingerprint=fingerprint, progress=progress, stop_after_epoch=stop_after_epoch)
    model.eval()
    return TrainResult(model=model.cpu(), history=history, seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------
# 2. The method: cross-spectral adaptation with a frozen teacher
# ------------------------------------------------------------------------------------------------
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


def _contrastive_terms(kind: str, config: TrainConfig) -> list[tuple[str, nn.Module]]:
    terms = []
    for part in kind.split("+"):
        if part == "infonce":
            terms.append(("infonce", CrossModalInfoNCE(temperature=config.temperature)))
        elif part == "pairwise":
            terms.append(("pairwise", PairwiseContrastiveLoss(margin=config.margin)))
        else:
            raise ValueError(f"Unknown contrastive loss {part!r} in {kind!r}; use 'infonce', 'pairwise' or both joined by '+'.")
    return terms


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
    forward pass under bfloat16 autocast (losses in float32).
    """
    device = get_device(device)
    label = settings.label
    settings = settings.resolved(config)
    epochs, lr = settings.epochs, settings.lr
    seed_everything(seed)
    teacher = copy.deepcopy(teacher).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(teacher)
    report = apply_policy(student, settings.policy)
    if report.trainable == 0:
        raise ValueError(f"policy {settings.policy!r} leaves nothing to train; use it only for evaluation.")
    optimizer = adamw(trainable_parameters(student), lr=lr, weight_decay=config.weight_decay)
    data = train_set
    other_modalities = cross_modalities(data.modalities)
    if not other_modalities or not np.any(data.modalities == "vis"):
        raise ValueError(f"adapt_cross_spectral: the training set holds modalities {sorted(set(data.modalities))}; "
                         "the method pairs VIS images with images of another modality (nir, thermal, ...) of the "
                         "same identities, so it needs both. Check the protocol's train split.")
    n_ids = len(np.unique(data.identities))
    if n_ids < config.batch_size:
        raise ValueError(f"adapt_cross_spectral: {n_ids} training identities is fewer than one batch of "
                         f"{config.batch_size} distinct identities; lower the batch size.")

    def batches(epoch: int) -> Any:
        return data.pair_loader(config.batch_size, seed=seed, epoch=epoch,
                                pairs_per_identity=config.adapt_pairs_per_identity, modalities=other_modalities,
                                augment_vis=config.adapt_augment_vis, drop_last=True, num_workers=config.num_workers,
                                pin_memory=device.type == "cuda")

    steps_per_epoch = len(batches(0))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(epochs * steps_per_epoch, config.warmup_fraction))
    contrastive = _contrastive_terms(settings.contrastive, config)
    distill = SelfDistillationLoss(weight=settings.distill_weight, kind=config.distill)
    # With un-augmented VIS images the frozen teacher's target for an image never changes: one pass
    # over the training VIS images replaces a teacher forward pass in every step (a fifth of a step).
    teacher_targets = (teacher_embeddings(teacher, data, batch_size=2 * config.batch_size, device=device)
                       if settings.distill_weight > 0 and not config.adapt_augment_vis else None)

    def step(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        vis = normalize(batch["vis"].to(device, non_blocking=True))
        other = normalize(batch["other"].to(device, non_blocking=True))
        labels = batch["label"].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            emb = student(torch.cat([vis, other]))
        emb = emb.float()
        e_vis, e_other = emb[: len(vis)], emb[len(vis):]
        out: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=device)
        for name, loss_fn in contrastive:
            value = loss_fn(e_vis, e_other) if name == "infonce" else loss_fn(e_vis, e_other, labels)
            out[name] = value
            total = total + value
        if settings.distill_weight > 0:
            if teacher_targets is not None:
                t_vis = teacher_targets[batch["vis_index"]].to(device, non_blocking=True)
            else:
                with torch.no_grad():
                    t_vis = teacher(vis)
            out["distill"] = distill(e_vis, t_vis)
            total = total + out["distill"]
        out["loss"] = total
        return out

    validate = None
    if dev_set is not None:
        dev = validation_subset(dev_set, ["vis", *other_modalities])
        dev_protocols = available_protocols(dev.identities, dev.modalities)
        validate = lambda: dev_rank1(student, dev, dev_protocols)  # noqa: E731

    fingerprint = {"kind": "adapt", "config": asdict(config), "settings": asdict(settings), "seed": seed,
                   "teacher": _state_fingerprint(teacher), "n": len(data)}
    t0 = time.perf_counter()
    history = _run_epochs(
        what=label, epochs=epochs, steps_per_epoch=steps_per_epoch,
        batches=batches,
        step_fn=step, modules={"student": student}, optimizer=optimizer, scheduler=scheduler, validate=validate,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None, fingerprint=fingerprint,
        progress=progress, stop_after_epoch=stop_after_epoch)
    student.eval()
    for p in student.parameters():
        p.requires_grad_(True)
    return TrainResult(model=student.cpu(), history=history, seconds=time.perf_counter() - t0, policy=report)


def teacher_embeddings(teacher: nn.Module, faceset: Any, *, batch_size: int = 128,
                       device: str | torch.device | None = None) -> torch.Tensor:
    """The frozen teacher's raw embeddings of the VIS images of ``faceset``, on the CPU.

    Row ``i`` is image ``i`` of ``faceset`` (rows of other modalities stay zero), so a batch's
    ``vis_index`` looks its targets up.  The images go in exactly as :meth:`FaceSet.pair_loader`
    hands them out without augmentation.
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


def _state_fingerprint(model: nn.Module) -> str:
    """A short digest of a model's weights (so a checkpoint is never resumed onto another teacher)."""
    import hashlib

    digest = hashlib.sha1()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]

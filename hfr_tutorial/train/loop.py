"""The epoch loop both trainers share: steps, history, validation, checkpoints and resume.

A trainer hands :func:`run_epochs` a *step* (a callable that turns a batch into a dict of loss
tensors, ``"loss"`` being the one to minimise: :class:`~hfr_tutorial.train.step.AdaptationStep`,
:class:`~hfr_tutorial.train.step.RecognizerStep`), the optimiser and the schedule;
:func:`optimisation_step` is the one forward-backward-update that the loop and the benchmarks
both time.

Checkpoints: after every epoch ``last.pt`` (tensors only: module, optimiser and schedule states,
read back with ``torch.load(weights_only=True)``, so a planted file in a shared cache cannot run
code) and ``last.json`` beside it (the run's fingerprint, the epoch, the history table and the
sha256 of ``last.pt``).  An interrupted run resumes from them and ends with the same weights as an
uninterrupted one (batches depend only on the seed and the epoch); a checkpoint of another
configuration, or a pair of files that do not belong together, is ignored.

Taught in: ``notebooks/05_full_training.ipynb`` (resume) and ``notebooks/04_self_distillation.ipynb``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..models.edgeface import EdgeFace
from ..tuning import PolicyReport

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_RECORD = "last.json"


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


Step = Callable[[Any], dict[str, torch.Tensor]]
"""A training step: a batch in, a dict of loss tensors out (``"loss"`` is minimised)."""


def check_finite(loss: torch.Tensor, epoch: int, step: int, global_step: int, lr: float, what: str) -> None:
    """Stop with :class:`TrainingDiverged` when ``loss`` is NaN or infinite, naming where and the likely causes."""
    if not torch.isfinite(loss):
        raise TrainingDiverged(
            f"{what}: the loss became {loss.item()} at epoch {epoch}, step {step} (global step {global_step}, "
            f"learning rate {lr:.3g}). Likely causes: a learning rate too high for this policy (lower it: --lr, or "
            "the run's rate in hfr_tutorial.runs), a temperature too small, or NaN/inf values in the input images."
        )


def optimisation_step(step: Step, batch: Any, optimizer: torch.optim.Optimizer,
                      scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                      check: Callable[[torch.Tensor], None] | None = None) -> dict[str, torch.Tensor]:
    """One update: the step's losses, ``check`` on ``"loss"``, backward through it, the optimiser's step and
    the schedule's step.  The loop and the speed benchmarks call this same function."""
    losses = step(batch)
    if check is not None:
        check(losses["loss"])
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return losses


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(folder: Path, fingerprint: dict[str, Any], epoch: int, history: list[dict[str, Any]],
                    state: dict[str, Any]) -> None:
    """Write ``last.pt`` (tensors and plain numbers only) and then ``last.json`` (what it belongs to)."""
    weights = folder / CHECKPOINT_NAME
    _replace_atomically(weights, lambda tmp: torch.save(state, tmp))
    record = {"fingerprint": _canonical(fingerprint), "epoch": epoch, "history": _canonical(history),
              "weights_sha256": _sha256(weights)}
    _replace_atomically(folder / CHECKPOINT_RECORD, lambda tmp: tmp.write_text(json.dumps(record, indent=1)))


def load_checkpoint(folder: Path, fingerprint: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The (record, tensor state) of the checkpoint in ``folder`` if it belongs to a run with ``fingerprint``.

    None when there is none, when it was written by another configuration, when ``last.pt`` is not
    the file its record describes (a kill between the two writes), or when either is unreadable:
    the run then starts over.  ``last.pt`` is read with ``weights_only=True``.
    """
    weights, record_path = folder / CHECKPOINT_NAME, folder / CHECKPOINT_RECORD
    if not weights.is_file() or not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
        if record.get("fingerprint") != _canonical(fingerprint) or record.get("weights_sha256") != _sha256(weights):
            return None
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception:  # a half-written, corrupt or foreign file: start over
        return None
    return record, state


def run_epochs(*, what: str, epochs: int, steps_per_epoch: int, batches: Callable[[int], Any], step: Step,
               modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LambdaLR, validate: Callable[[], dict[str, float]] | None,
               checkpoint_dir: Path | None, fingerprint: dict[str, Any], progress: bool,
               stop_after_epoch: int | None) -> pd.DataFrame:
    """Train ``epochs`` epochs of ``steps_per_epoch`` steps; returns the history table (one row per epoch).

    ``batches(epoch)`` gives the epoch's batches; ``modules`` are what a checkpoint saves besides the
    optimiser and the schedule; ``stop_after_epoch`` ends early (tests and notebooks simulate an
    interruption with it).
    """
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if checkpoint_dir is not None:
        found = load_checkpoint(checkpoint_dir, fingerprint)
        if found is not None:
            record, state = found
            for name, module in modules.items():
                module.load_state_dict(state["modules"][name])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history, start_epoch = record["history"], record["epoch"] + 1
            if progress and start_epoch < epochs:
                print(f"{what}: resuming from {checkpoint_dir / CHECKPOINT_NAME} after epoch {start_epoch}")
    global_step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        for module in modules.values():
            module.train()
        sums: dict[str, float] = {}
        count = 0
        bar = tqdm(batches(epoch), total=steps_per_epoch, desc=f"{what} epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False, mininterval=1.0)  # <= 1 update/s: light on notebook output
        for index, batch in enumerate(bar):
            lr = optimizer.param_groups[0]["lr"]
            losses = optimisation_step(step, batch, optimizer, scheduler, check=lambda loss: check_finite(
                loss, epoch, index, global_step, lr, what))  # noqa: B023 - called at once, in this iteration
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
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, fingerprint, epoch, history,
                            {"modules": {n: m.state_dict() for n, m in modules.items()},
                             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    return pd.DataFrame(history)


def state_fingerprint(model: nn.Module) -> str:
    """A short digest of a model's weights (so a checkpoint is never resumed onto another teacher)."""
    digest = hashlib.sha1()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]

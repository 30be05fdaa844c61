"""The two training loops of the tutorial, one code path for CPU and GPU.

* :func:`train_recognizer` (:mod:`.recognizer`) -- an EdgeFace trained from scratch with a margin
  head: the RGB baseline (VIS only) and the joint oracle (every modality).
* :func:`adapt_cross_spectral` (:mod:`.adapt`) -- the method: a student copy of the RGB model under
  a tuning policy, contrastive alignment plus self-distillation towards the frozen teacher.

Both share :mod:`.optim` (AdamW, warm-up + cosine), :mod:`.loop` (the epoch loop, history,
checkpoints, resume), :mod:`.step` (one step of each loop, shared with the benchmarks) and
:mod:`.validation` (the per-epoch dev rank-1).

Taught in: ``notebooks/01_baseline_rgb_model.ipynb`` (the recogniser), ``03``-``05`` (adaptation).
"""
from .adapt import AdaptSettings, adapt_cross_spectral, check_pairable, method_loss
from .loop import (CHECKPOINT_NAME, CHECKPOINT_RECORD, TrainingDiverged, TrainResult, load_checkpoint,
                   optimisation_step, run_epochs, save_checkpoint, state_fingerprint)
from .optim import adamw, warmup_cosine, warmup_cosine_scheduler
from .recognizer import train_recognizer
from .step import AdaptationStep, RecognizerStep, teacher_embeddings
from .validation import VALIDATION_IMAGES_PER_IDENTITY, dev_rank1, validation_subset

__all__ = [
    "AdaptSettings", "adapt_cross_spectral", "check_pairable", "method_loss", "CHECKPOINT_NAME", "CHECKPOINT_RECORD",
    "TrainingDiverged", "TrainResult", "load_checkpoint", "optimisation_step", "run_epochs", "save_checkpoint",
    "state_fingerprint", "adamw", "warmup_cosine", "warmup_cosine_scheduler", "train_recognizer",
    "AdaptationStep", "RecognizerStep", "teacher_embeddings", "VALIDATION_IMAGES_PER_IDENTITY", "dev_rank1",
    "validation_subset",
]

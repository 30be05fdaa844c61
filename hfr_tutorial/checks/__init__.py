"""Self-checks for the notebooks' exercises: call one after your solution to see whether it is right.

Three kinds of exercise, three kinds of check:

* **Reproduce** (re-derive what the library does): you write a *function*, and the check calls it
  on the input the notebook shows and on inputs you never see (other sizes, scales, temperatures,
  labels), comparing each result with the library's value of the same input.  While your function
  runs, the library function it re-implements is recorded (:mod:`hfr_tutorial.checks.guard`): a
  function that calls it fails.  So neither a pasted number, nor a formula right only for the shown
  input, nor a call to the library passes.
* **Predict, then run**: :func:`~hfr_tutorial.checks.predictions.check_prediction` checks that a
  prediction of the asked form was written (one of the offered choices, a number in range) before the
  experiment runs, and :func:`~hfr_tutorial.checks.predictions.show_outcome` shows the measurement
  beside it; neither grades it.
* **Explain**: :func:`~hfr_tutorial.checks.predictions.check_answer` checks that a few sentences were
  written.  Predictions and explanations are graded by a person with the rubrics of
  ``docs/instructor/answers.md``.

A failed check says what is wrong and gives a hint (a direction, a factor, a likely cause), never the
expected value or anything it could be recovered from (:mod:`hfr_tutorial.checks.feedback`).  It
prints and returns ``False``; with ``HFR_STRICT_CHECKS=1`` (CI runs of the solved notebooks) it raises
:class:`~hfr_tutorial.checks.feedback.CheckFailed`.  ``tests/test_checks.py`` and
``tests/test_exercise_attacks.py`` feed every check right answers, the usual wrong ones, and the
attacks: a pasted printed number, a library call, a formula right for the shown input only.

Modules, one exercise family each: :mod:`~hfr_tutorial.checks.identification` (00),
:mod:`~hfr_tutorial.checks.embeddings` (01), :mod:`~hfr_tutorial.checks.policies` (02, 05),
:mod:`~hfr_tutorial.checks.losses` (03, 04), :mod:`~hfr_tutorial.checks.verification` (06),
:mod:`~hfr_tutorial.checks.landmarks` (07), :mod:`~hfr_tutorial.checks.deployment` (08),
:mod:`~hfr_tutorial.checks.predictions` (every notebook), :mod:`~hfr_tutorial.checks.values` (one
number); :mod:`~hfr_tutorial.checks.guard` runs the function checks.

Taught in: the "Exercises" section of every notebook.
"""
from .deployment import (ONNX_MIN_COSINE, check_calibrated_agreement, check_int8_size_function,
                         check_min_cosine_function, check_onnx_embed_function, int8_dynamic_bytes)
from .embeddings import EMBEDDING_MIN_COSINE, check_embed_function, check_embeddings
from .guard import CallRecorder, Case, Comparison, check_function, recording
from .identification import check_rank1, check_rank1_function, check_similarity_function
from .landmarks import check_five_points_function
from .losses import HIDDEN_BATCH_SIZES, check_chance_function, check_distillation_function, check_infonce_function
from .policies import HIDDEN_VARIANT, check_policy_function, check_share_function, check_trainable
from .predictions import check_answer, check_prediction, show_outcome
from .feedback import CheckFailed, verdict
from .values import check_close, check_in_range, check_loss_close
from .verification import check_eer, check_eer_function, check_threshold, eer_tolerance

__all__ = [
    "EMBEDDING_MIN_COSINE", "HIDDEN_BATCH_SIZES", "HIDDEN_VARIANT", "ONNX_MIN_COSINE", "CallRecorder", "Case",
    "CheckFailed", "Comparison", "check_answer", "check_calibrated_agreement", "check_chance_function", "check_close",
    "check_distillation_function", "check_eer", "check_eer_function", "check_embed_function", "check_embeddings",
    "check_five_points_function", "check_function", "check_in_range", "check_infonce_function",
    "check_int8_size_function", "check_loss_close", "check_min_cosine_function", "check_onnx_embed_function",
    "check_policy_function", "check_prediction", "check_rank1", "check_rank1_function", "check_share_function",
    "check_similarity_function", "check_threshold", "check_trainable", "eer_tolerance", "int8_dynamic_bytes",
    "recording", "show_outcome", "verdict",
]

"""One experiment, one path: what an experiment is (:mod:`.spec`) and the one function that runs it (:func:`run`).

* :mod:`.spec` -- :class:`Experiment` = data (:class:`EmbeddedData`, :class:`LayoutData`) x starting
  model (:class:`StandIn`, :class:`Pretrained`) x runs x preset x seed; the refusal rules;
* :mod:`.recipe` -- each run's rate: fixed (chosen on dev offline) or chosen on dev now, with the VIS guard;
* :mod:`.runner` -- :func:`run`: cached models, dev choices, eval figures with paired intervals;
* :mod:`.summary` -- the claims and the summary over folds;
* :mod:`.report`, :mod:`.figures` -- the one report writer and the one figures writer;
* :mod:`.outdir` -- the ``--out`` rule (lock, swap-in, ``--overwrite``).

Taught in: ``notebooks/05_full_training.ipynb`` and ``notebooks/07_real_edgeface.ipynb``.
"""
from .outdir import OutputError
from .recipe import RatePlan, rate_plan
from .runner import check_faceset, evaluate_fold, resolve_device, run, training_split
from .spec import (EmbeddedData, Experiment, ExperimentError, LayoutData, Pretrained, StandIn, TrainSubset, carve_dev,
                   experiment_from_args, resolve_model)
from ..verdicts import fmt_claim, value_of
from .summary import headline_lines

__all__ = [
    "OutputError", "RatePlan", "rate_plan", "check_faceset", "evaluate_fold", "resolve_device", "run",
    "training_split", "EmbeddedData", "Experiment", "ExperimentError", "LayoutData", "Pretrained", "StandIn",
    "TrainSubset", "carve_dev", "experiment_from_args", "resolve_model", "fmt_claim", "headline_lines", "value_of",
]

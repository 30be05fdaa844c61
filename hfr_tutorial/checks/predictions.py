"""Predict-then-run and explain exercises: check the *form* of what was written, show the outcome, grade nothing.

A prediction is graded by a person, against the rubric of the instructor file
(``docs/instructor/answers.md``, generated from the solved notebooks by ``tools/make_student.py``), not
by the notebook.  What the notebook can do is make sure a prediction of the asked form was written
before the experiment runs, and show the outcome beside it afterwards:

* :func:`check_prediction`: one of the offered choices, or a number in the valid range (for each
  part of a prediction with several), and a reason of a few words;
* :func:`show_outcome`: the prediction and the measurement on the same scale, side by side, without a
  verdict: comparing them is the student's work;
* :func:`check_answer`: an explanation of at least a few sentences.

Taught in: the "predict, then run" and "explain" exercises of every notebook.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .feedback import verdict

Choices = Sequence[str]
Range = tuple[float, float]


def _one(value: Any, spec: Choices | Range) -> str:
    """Why ``value`` is not of the form ``spec`` (choices or a numeric range), or ``""``."""
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(x, (int, float)) for x in spec):
        low, high = spec
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{value!r} is not a number; write a number between {low:g} and {high:g}"
        if not low <= value <= high:
            return f"{value:g} lies outside the valid range [{low:g}, {high:g}]"
        return ""
    offered = ", ".join(repr(c) for c in spec)
    if not isinstance(value, str):
        return f"{value!r} is not one of the offered choices: {offered}"
    if value not in spec:
        return f"{value!r} is not one of the offered choices: {offered} (copy one exactly)"
    return ""


def check_prediction(prediction: Any, *, choices: Choices | Range | Mapping[str, Choices | Range],
                     because: Any = None, min_words: int = 5, what: str = "prediction") -> bool:
    """A prediction of the asked form was written: one of ``choices``, or a number in a ``(low, high)`` range.

    ``choices`` may be a mapping from the parts of a prediction to their choices or ranges; then
    ``prediction`` must be a dict with exactly those keys.  ``because`` (when the exercise asks for the
    reason) must hold at least ``min_words`` words.  Nothing is graded: the verdict says only whether
    the form is right, and the solved notebook's model prediction is in its solution block.
    """
    problems = []
    if isinstance(choices, Mapping):
        if not isinstance(prediction, Mapping):
            problems.append(f"write a dict with the keys {', '.join(repr(k) for k in choices)}")
        else:
            missing = [k for k in choices if k not in prediction]
            extra = [k for k in prediction if k not in choices]
            if missing or extra:
                problems.append("the keys must be " + ", ".join(repr(k) for k in choices))
            problems += [f"{k!r}: {why}" for k in choices if k in prediction
                         for why in [_one(prediction[k], choices[k])] if why]
    else:
        why = _one(prediction, choices)
        if why:
            problems.append(why)
    if because is not None:
        words = len(because.split()) if isinstance(because, str) else 0
        if words < min_words:
            problems.append(f"`because` holds {words} words: give your reason in at least {min_words}")
    if problems:
        return verdict(False, what, problem="; ".join(problems),
                       hint="write the prediction before you run the experiment; it is not graded here")
    return verdict(True, f"{what} recorded", success=f"{_show(prediction)}; now run the experiment and compare")


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_show(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def show_outcome(prediction: Any, measured: Any, *, detail: str = "") -> None:
    """Print the prediction and the measurement side by side, on the same scale; no verdict.

    ``measured`` has the form of the prediction (a choice, a number, or a dict of them); ``detail``
    gives the figures the measurement was read from.
    """
    if isinstance(prediction, Mapping) and isinstance(measured, Mapping):
        width = max(len(str(k)) for k in measured)
        print("part".ljust(width), "| your prediction | measured")
        for key, value in measured.items():
            print(str(key).ljust(width), "|", _show(prediction.get(key, "-")).ljust(15), "|", _show(value))
    else:
        print(f"your prediction: {_show(prediction)}")
        print(f"measured:        {_show(measured)}")
    if detail:
        print(f"(from {detail})")


def check_answer(answer: Any, *, min_words: int = 20, what: str = "answer") -> bool:
    """An explanation of at least ``min_words`` words was written; it is graded by a person, not here."""
    words = len(answer.split()) if isinstance(answer, str) else 0
    if words < min_words:
        found = "not a str" if not isinstance(answer, str) else f"{words} words"
        return verdict(False, what, problem=f"the answer is {found}",
                       hint=f"write a few sentences (at least {min_words} words) in `answer`")
    return verdict(True, f"{what} written", success=f"{words} words; it is graded by your teacher against the "
                                                    "course's rubric (working alone: compare with the solved "
                                                    "notebook's model answer)")

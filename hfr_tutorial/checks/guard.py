"""Function checks: call the student's function on hidden inputs, with the library's shortcut recorded.

A re-implementation exercise asks for a **function** (``def my_infonce(vis, other, T): ...``), not a
number.  The check calls it on the input the notebook shows and on inputs the student never sees
(other sizes, other scales, other temperatures), and compares each result with the library's value of
the same input.  So a number pasted from somewhere, or a formula right only for the shown input,
fails on the hidden ones.

While the student's function runs, :class:`CallRecorder` records every call into the library function
the exercise re-implements (``CrossModalInfoNCE``, ``five_points``, ``verification_metrics``,
``apply_policy`` ...), however it is reached: by name, through an alias, a module attribute, or
another library function that calls it.  A function that calls it fails, and the verdict says which
call it made.  It uses :func:`sys.setprofile`, which sees every Python function entered and every C
function called; the previous profiler (a debugger's, say) is chained and restored.

Taught in: the reproduce exercises of every notebook.
"""
from __future__ import annotations

import copy
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from .feedback import verdict


def _code_objects(obj: Any) -> tuple[set[CodeType], set[int]]:
    """The code objects (Python) and ids (C functions) whose execution means ``obj`` was called."""
    codes: set[CodeType] = set()
    cfuncs: set[int] = set()
    if inspect.isclass(obj):
        for klass in obj.__mro__:
            if klass.__module__.split(".")[0] not in ("hfr_tutorial",) and klass is not obj:
                continue  # the class's own methods and its library bases, not torch.nn.Module's
            for member in vars(klass).values():
                member = getattr(member, "__func__", member)  # staticmethod / classmethod
                if inspect.isfunction(member):
                    c, _ = _code_objects(member)
                    codes |= c
        return codes, cfuncs
    obj = getattr(obj, "__func__", obj)  # a bound method
    if hasattr(obj, "func") and callable(obj.func) and not inspect.isfunction(obj):  # functools.partial
        return _code_objects(obj.func)
    seen = obj
    while seen is not None:
        code = getattr(seen, "__code__", None)
        if isinstance(code, CodeType):
            codes.add(code)
        seen = getattr(seen, "__wrapped__", None)
    if not codes and callable(obj):
        cfuncs.add(id(obj))  # a builtin or C function: seen as a "c_call" event
    return codes, cfuncs


class CallRecorder:
    """Record calls into ``forbidden`` (name -> function or class) while the ``with`` block runs.

    ``called`` lists the names that were called, in order of first call.
    """

    def __init__(self, forbidden: Mapping[str, Any]):
        self._codes: dict[CodeType, str] = {}
        self._cfuncs: dict[int, str] = {}
        self._keep = list(forbidden.values())  # the ids of C functions stay valid while we hold them
        for name, obj in forbidden.items():
            codes, cfuncs = _code_objects(obj)
            self._codes.update(dict.fromkeys(codes, name))
            self._cfuncs.update(dict.fromkeys(cfuncs, name))
        self.called: list[str] = []
        self._previous: Any = None

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        name = None
        if event == "call":
            name = self._codes.get(frame.f_code)
        elif event == "c_call":
            name = self._cfuncs.get(id(arg))
        if name is not None and name not in self.called:
            self.called.append(name)
        if self._previous is not None:
            self._previous(frame, event, arg)

    def __enter__(self) -> CallRecorder:
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.setprofile(self._previous)


@contextmanager
def recording(forbidden: Mapping[str, Any]) -> Iterator[CallRecorder]:
    """``with recording({"five_points": five_points}) as rec: ...``; then ``rec.called``."""
    with CallRecorder(forbidden) as recorder:
        yield recorder


@dataclass(frozen=True)
class Case:
    """One input a function check calls the student's function with.

    ``label`` names it in a verdict without giving its values ("a hidden batch of 5 pairs at T = 0.2");
    ``hidden`` is false for the input the notebook shows.
    """

    label: str
    args: tuple
    hidden: bool = True
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """The result of comparing the student's output on one case with the reference: ok, or what is wrong."""

    ok: bool
    problem: str = ""
    hint: str = ""


SHOWN_ONLY_HINT = ("right on the input the notebook shows, wrong on a hidden one: compute the result from the "
                   "function's arguments only (not from the notebook's variables, and not a number typed in)")
"""The hint of a function right on the shown input and wrong on a hidden one (a memorised value, a constant)."""


def _library_call_problem(called: Sequence[str], label: str) -> str:
    names = ", ".join(f"`{n}`" for n in called)
    return (f"your function calls {names} on {label}: the check ran it with that call recorded, and the exercise "
            "is to compute it without the function it re-implements")


def check_function(fn: Any, cases: Sequence[Case], *, what: str, reference: Callable[[Case], Any],
                   compare: Callable[[Any, Any, Case, tuple], Comparison], forbidden: Mapping[str, Any],
                   signature: str, success: str = "", forbidden_hint: str = "") -> bool:
    """Call ``fn`` on every case (a deep copy of its arguments), forbidden calls recorded; print the verdict.

    ``reference(case)`` is the library's value, computed outside the recorder; ``compare(result,
    reference, case, args)`` says whether the student's result is right (``args`` are the arguments
    the student's function received, after it ran).  The first failing case is reported, by its
    label; a function right on the shown case only gets :data:`SHOWN_ONLY_HINT`.
    """
    if not callable(fn):
        found = "None" if fn is None else f"a {type(fn).__name__}"
        return verdict(False, what, problem=f"the check needs a function, and got {found}",
                       hint=f"define it with `def {signature}:` and pass the function itself (no parentheses)")
    shown_ok = None
    for case in cases:
        args = copy.deepcopy(case.args)
        expected = reference(case)
        with CallRecorder(forbidden) as recorder:
            try:
                result = fn(*args)
                error = None
            except NotImplementedError:
                return verdict(False, what, problem="your function raises NotImplementedError",
                               hint="replace the stub with your solution")
            except Exception as exc:  # noqa: BLE001  (any error of the student's code is reported, not raised)
                error = exc
        if recorder.called:
            return verdict(False, what, problem=_library_call_problem(recorder.called, case.label),
                           hint=forbidden_hint or "write the computation with numpy or torch operations yourself")
        if error is not None:
            return verdict(False, what, problem=f"your function raised {type(error).__name__}: {error} "
                                                f"(on {case.label})",
                           hint=f"it must accept any input of this kind: `{signature}`")
        result_cmp = compare(result, expected, case, args)
        if not case.hidden:
            shown_ok = result_cmp.ok
        if not result_cmp.ok:
            hint = result_cmp.hint
            if case.hidden and shown_ok:
                hint = SHOWN_ONLY_HINT + (f"; {hint}" if hint else "")
            return verdict(False, what, problem=f"on {case.label}: {result_cmp.problem}", hint=hint)
    n_hidden = sum(c.hidden for c in cases)
    n_shown = len(cases) - n_hidden
    hidden = f"{n_hidden} hidden one" + ("s" if n_hidden != 1 else "")
    checked = f"right on the shown input and {hidden}" if n_shown else f"right on {hidden.replace('one', 'input')}"
    return verdict(True, what, success=checked + (f"; {success}" if success else ""))

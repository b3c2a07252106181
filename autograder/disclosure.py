"""What a failed check may tell the student: decided here, once, for the public example and for hidden cases.

A failure is data, a :class:`Problem`: a sentence that depends on no input value (``text``: what differs, as a
fixed category such as "differs from the expected values" or "has the wrong shape"), the same sentence with the
details that do depend on the inputs (``detail``: values, indices, sizes, error magnitudes, the student's own
exception message and traceback), and a diagnosis (``hint``) whose wording is fixed by its kind. The public
example (seed 0, which a student can reproduce) shows the detail; a hidden case shows only the text and the
hint, so that resubmitting a notebook cannot read hidden inputs or expected values back from the feedback.

Rules for whoever writes a check: ``text`` and ``hint`` are written without any value computed from the trial's
inputs or from either side's results (names of parts of a result, such as a dict key of the expected value, are
fine); everything else goes in ``detail``.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, replace

# Categories a hidden case may report, in the words the feedback uses.
DIFFERS = "differs from the expected values"
WRONG_SHAPE = "has the wrong shape"
WRONG_TYPE = "is not of the expected type"
WRONG_DTYPE = "has the wrong dtype"
NAN = "contains NaN where a finite value was expected"
INF = "contains inf where a finite value was expected"


@dataclass(frozen=True)
class Problem:
    """Why a check failed: ``text`` is safe on any case, ``detail`` (when given) replaces it on the public one."""

    text: str
    detail: str = ""
    hint: str = ""

    def with_hint(self, hint: str) -> Problem:
        return replace(self, hint=hint)


def shown(problem: Problem, public: bool) -> str:
    """The feedback for ``problem`` on the public example (``public``) or on a hidden case."""
    text = (problem.detail or problem.text) if public else problem.text
    return f"{text} Hint: {problem.hint}" if problem.hint else text


def exception_type(name: str | None) -> str:
    """The name of an exception type for a hidden case: Python's own exception names only (a class the student
    made up can carry any text in its name)."""
    if name and isinstance(getattr(builtins, name, None), type) and issubclass(getattr(builtins, name), BaseException):
        return name
    return "an exception"

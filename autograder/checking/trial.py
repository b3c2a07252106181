"""What a check sees and how it is run: a :class:`Trial` (a seeded RNG, a device, the student's functions and the
reference's) and :func:`run_check`, which calls a check once per seed (public, then hidden) and per device and turns
the first failure into the test's feedback."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from autograder.checking import policy
from autograder.checking.compare import Hint, compare
from autograder.checking.disclosure import Problem, shown
from autograder.checking.messages import student_problem
from autograder.checking.sides import ReferenceSide, StudentSide

if TYPE_CHECKING:
    from autograder.checking.suite import Check


class Failure(Exception):
    """A check failed; the :class:`Problem` says why (what a hidden case may show is decided in ``disclosure``)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail or problem.text)
        self.problem = problem


class Trial:
    """What a check sees: a seeded RNG, a device, the student's functions and the reference's."""

    def __init__(self, check: Check, student: StudentSide, reference: ReferenceSide, seed: int, public: bool,
                 device: str) -> None:
        self.check, self.student, self.reference = check, student, reference
        self.seed, self.public, self.device = seed, public, device
        self.rng = np.random.default_rng(seed)
        self.warnings: list[str] = []  # warnings the last student call reported (as data: advisory only)
        self.stubs: list[str] = []  # helpers replaced by the reference's (follow-through credit)

    # -- calling ------------------------------------------------------------------------------------
    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The student's ``name(*args, **kwargs)``; a raised error fails the check."""
        result = self._report(self.probe("probes.call", name=name, args=list(args), kwargs=kwargs, label=name,
                                         stubs=self.stubs), name)
        warned = result.get("warnings")
        self.warnings = [str(w)[:200] for w in warned[:5]] if isinstance(warned, list) else []
        return result["value"]

    def fresh_call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """:meth:`call` in a new student process (the notebook run again): whatever earlier calls kept in memory or
        in files is gone, as it would be in a new Python session (a determinism check's second run)."""
        result = self._report(self.probe("probes.call", name=name, args=list(args), kwargs=kwargs, label=name,
                                         stubs=self.stubs, fresh=True), name)
        return result["value"]

    def _report(self, result: Any, name: str) -> dict:
        if not isinstance(result, dict) or "value" not in result:  # only a patched probe sends anything else
            self.fail(f"{name} could not be tested: the notebook's process changed how the grader calls it.")
        return result

    def changed_inputs(self, name: str, *args: Any, **kwargs: Any) -> list[str]:
        """Call the student's ``name`` and name the arguments it changed in place, judged here from the arguments
        the probe sends back after the call (an observation the student's process could forge: advisory only)."""
        result = self._report(self.probe("probes.call", name=name, args=list(args), kwargs=kwargs, label=name,
                                         stubs=self.stubs, report_inputs=True), name)
        after = result.get("inputs") if isinstance(result.get("inputs"), dict) else {}
        sent = {str(i): v for i, v in enumerate(args)} | kwargs
        params = self.reference.params(name)
        changed = [k for k, v in sent.items() if k in after and not _same_data(v, after[k])]
        return [params[int(k)] if k.isdigit() and int(k) < len(params) else k for k in changed]

    def ref(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The reference's ``name(*args, **kwargs)`` (cached by input)."""
        return self.ref_probe("probes.call", name=name, args=list(args), kwargs=kwargs)["value"]

    def probe(self, probe: str, label: str | None = None, seconds: float | None = None,
              helpers: Mapping[str, Callable[[Any], Any]] | None = None, fresh: bool = False, **args: Any) -> Any:
        """Run ``probe`` on the student's namespace (``fresh``: in a new student process); errors become feedback
        about ``label``. ``helpers`` answer the follow-through questions of helpers that take torch objects (see
        :meth:`ReferenceSide.answer`)."""
        args.setdefault("device", self.device)
        name = self._probe_name(probe)
        on_ask = None
        if self.stubs:
            expected = self.reference.helper_calls(name, args, self.stubs)
            on_ask = self.reference.answer(self.stubs, helpers, expected)
        reply = self.student.call(name, args, seconds or self.check.seconds, on_ask=on_ask, fresh=fresh)
        if not reply.ok:
            raise Failure(student_problem(label or self.check.function, reply.error, _cells_of(self.student)))
        return reply.value

    def ref_probe(self, probe: str, **args: Any) -> Any:
        """Run ``probe`` on the reference solution."""
        args.setdefault("device", self.device)
        return self.reference.call(self._probe_name(probe), args)

    def _probe_name(self, probe: str) -> str:
        """``"fit"`` is the assignment's own probe ``fit`` (probes/<id>.py); ``"module.name"`` is as given."""
        return probe if "." in probe else f"{self.check.probes}.{probe}"

    # -- judging ------------------------------------------------------------------------------------
    def fail(self, text: str, detail: str = "", hint: str = "") -> NoReturn:
        """Fail with ``text`` (no value computed from the inputs: shown on hidden cases), ``detail`` (the same with
        values, for the public example only) and a confirmed diagnosis ``hint`` (no values either)."""
        raise Failure(Problem(text, detail, hint))

    def expect(self, condition: bool, text: str, detail: str = "", hint: str = "") -> None:
        if not condition:
            self.fail(text, detail, hint)

    def expect_close(self, got: Any, want: Any, what: str, *, iterative: bool = False,
                     hints: Sequence[Hint] = (), note: str = "", rtol: float | None = None,
                     atol: float | None = None) -> None:
        """Fail unless ``got`` matches ``want`` (``what`` names the result without values; ``note``, also without
        values, follows the failure, e.g. to say that the contract fixes a recipe). The tolerance is the policy's
        for the reference's dtype (``autograder/checking/policy.py``) unless this check sets ``rtol`` and ``atol``."""
        override = None
        if rtol is not None or atol is not None:
            override = policy.Tolerance(rtol=0.0 if rtol is None else rtol, atol=0.0 if atol is None else atol)
        problem = compare(got, want, what, iterative=iterative, hints=hints, tolerance=override)
        if problem:
            if note:
                problem = Problem(f"{problem.text} {note}", f"{problem.detail} {note}" if problem.detail else "",
                                  problem.hint)
            raise Failure(problem)


def _same_data(before: Any, after: Any) -> bool:
    """Whether an argument came back as it was sent (arrays compared exactly; other values are not watched)."""
    if isinstance(before, np.ndarray):
        return isinstance(after, np.ndarray) and after.shape == before.shape and np.array_equal(after, before,
                                                                                            equal_nan=True)
    if isinstance(before, (list, tuple)):
        return isinstance(after, (list, tuple)) and len(after) == len(before) and all(
            _same_data(b, a) for b, a in zip(before, after))
    if isinstance(before, dict):
        return isinstance(after, dict) and set(after) == set(before) and all(
            _same_data(before[k], after[k]) for k in before)
    return True


def _cells_of(student: Any) -> Mapping[int, str] | None:
    """The code cells the student side ran (index in the notebook -> source), when it says (the sandbox does)."""
    cells = getattr(student, "cells", None)
    return cells if isinstance(cells, Mapping) else None


@dataclass
class TestOutcome:
    """One check's result across its seeds and devices."""

    check: Check
    passed: bool
    output: str
    seconds: float
    grader_error: str = ""  # set when the grader itself failed on this check (a bug to report)


def run_check(check: Check, student: StudentSide, reference: ReferenceSide,
              devices: Sequence[str] | None = None, stubs: Sequence[str] = (),
              runs: Sequence[tuple[int, bool]] | None = None, show_values: bool = True) -> TestOutcome:
    """Run one check on every seed (or the ``(seed, public)`` pairs in ``runs``) and device; stop at the first
    failure. The helpers in ``stubs`` are the reference's during the check (follow-through credit). Without
    ``show_values``, a failure on the public example is told as a hidden case's is (no value, no message of the
    student's)."""
    start = time.perf_counter()
    runs = runs or check.runs
    devs = (devices or policy.devices()) if check.on_devices else ("cpu",)
    for device in devs:
        for seed, public in runs:
            trial = Trial(check, student, reference, seed, public, device)
            trial.stubs = list(stubs)
            try:
                check.run(trial)
            except Failure as failure:
                where = "the public example (seed 0)" if public else "a hidden test case"
                if device != "cpu":
                    where += f" on {device}"
                text = f"{shown(failure.problem, public and show_values)} [on {where}]"
                if check.advisory:
                    text = f"Advisory (no points): {text}"
                return TestOutcome(check, False, text, time.perf_counter() - start)
    return TestOutcome(check, True, "", time.perf_counter() - start)

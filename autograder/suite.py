"""The check framework every assignment's checks are written in (a course's ``checks/<id>.py``).

A check is a plain function taking a :class:`Trial`, registered on an assignment's :class:`Suite` with the
name of the function it grades. :func:`run_check` calls it once per seed (public, then hidden) and per device,
and the first failure becomes the test's feedback. Student values come from a ``StudentSide`` (the
sandbox, or the notebook kernel under nbgrader) and reference values from a :class:`ReferenceSide`; both
give plain data only.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NoReturn, Protocol

import numpy as np

from . import policy
from .compare import Hint, compare
from .disclosure import Problem, exception_type, masked, shown
from .refcache import ReferenceCache
from .runtime.codec import decode, encode
from .runtime.probes import run_probe
from .runtime.protocol import ErrorKind, StudentError, TraceFrame
from .sandbox import CallResult
from .sandbox.worker import AskHandler


class Failure(Exception):
    """A check failed; the :class:`Problem` says why (what a hidden case may show is decided in ``disclosure``)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail or problem.text)
        self.problem = problem


class StudentSide(Protocol):
    """Where student code runs: ``call(probe, args, seconds, on_ask, fresh) -> CallResult``."""

    def call(self, probe: str, args: dict, seconds: float | None = None,
             on_ask: AskHandler | None = None, fresh: bool = False) -> CallResult: ...


class LocalSide:
    """Runs probes in this process on a namespace (the nbgrader kernel, or the reference module); ``probes``: the
    assignment's own probe module, by the name the checks call it."""

    def __init__(self, namespace: dict, probes: Mapping[str, ModuleType] | None = None) -> None:
        self.namespace = namespace
        self.probes = dict(probes or {})

    def call(self, probe: str, args: dict, seconds: float | None = None,
             on_ask: AskHandler | None = None, fresh: bool = False) -> CallResult:
        from .runtime.student import describe_exception

        try:
            value = run_probe(probe, self.namespace, decode(encode(args)), self.probes)
            return CallResult(True, value=decode(encode(value)))
        except Exception as err:  # noqa: BLE001 - becomes feedback like any student error
            return CallResult(False, error=describe_exception(err))


_REFERENCE_LOCK = threading.Lock()  # torch's global RNG: one reference computation at a time


class ReferenceSide:
    """The reference solution, in the grader's process, its outputs cached across submissions (in memory, and on
    disk when given a :class:`ReferenceCache`). The module is imported only when a value is not cached."""

    def __init__(self, module: ModuleType | Callable[[], ModuleType], cache: ReferenceCache | None = None,
                 probes: Mapping[str, ModuleType] | None = None) -> None:
        self._module = module if isinstance(module, ModuleType) else None
        self._load = None if isinstance(module, ModuleType) else module
        self.cache = cache
        self.probes = dict(probes or {})
        self._memory: dict[str, Any] = {}

    @property
    def module(self) -> ModuleType:
        if self._module is None:
            self._module = self._load()
        return self._module

    @property
    def _local(self) -> LocalSide:
        return LocalSide(vars(self.module), self.probes)

    def call(self, probe: str, args: dict) -> Any:
        key = f"{probe}:{hashlib.sha256(encode(args)).hexdigest()}"
        with _REFERENCE_LOCK:
            if key not in self._memory:
                found, value = self.cache.get(key) if self.cache is not None else (False, None)
                if not found:
                    reply = self._local.call(probe, args)
                    if not reply.ok:
                        raise RuntimeError(f"the reference failed on {probe}: {reply.error}")
                    value = reply.value
                    if self.cache is not None:
                        self.cache.put(key, value)
                self._memory[key] = value
            return self._memory[key]

    def run(self, probe: str, args: dict) -> Any:
        """Run ``probe`` on the reference, uncached (its arguments came from the student side)."""
        with _REFERENCE_LOCK:
            reply = self._local.call(probe, args)
        if not reply.ok:
            raise ValueError(reply.error.message if reply.error else "the reference failed")
        return reply.value

    def answer(self, allowed: Sequence[str], helpers: Mapping[str, Callable[[Any], Any]] | None = None,
               expected: Mapping[str, list] | None = None) -> AskHandler:
        """Follow-through: answer a student's call of a helper in ``allowed`` with the reference's value (not
        cached: the arguments are the student's). Helpers whose arguments are plain data are asked for through
        ``probes.call``; a helper in ``helpers`` (one taking torch objects, say) is asked for as ``helper.<name>``
        and answered by its function there, which rebuilds the objects from the grader's own data.

        ``expected``: the helper calls the reference's own caller makes on the same inputs (:meth:`helper_calls`).
        A call with the arguments of one of them is answered; others only up to twice as many times as the reference
        calls the helper, plus ``SPARE_ASKS`` (a correct caller may call it a little differently: as a default
        argument the recording cannot see, once more to log a value), so that the stub is no oracle."""
        helpers, expected = dict(helpers or {}), dict(expected or {})
        left = {h: 2 * len(expected.get(h, [])) + SPARE_ASKS for h in allowed}

        def on_ask(probe: str, args: Any) -> Any:
            name = args.get("name") if isinstance(args, dict) else None
            if probe == "probes.call" and name in allowed and name not in helpers:
                if not any(_same_call(args, call) for call in expected.get(name, [])):
                    _spend(left, name)
                return self.run(probe, args)["value"]
            name = probe.removeprefix("helper.")
            if probe.startswith("helper.") and name in allowed and name in helpers and isinstance(args, dict):
                _spend(left, name)
                return helpers[name](args)
            raise PermissionError("only the helpers under follow-through can be asked for")

        return on_ask

    def helper_calls(self, probe: str, args: dict, names: Sequence[str]) -> dict[str, list]:
        """The calls of the helpers ``names`` that running ``probe`` on the reference with ``args`` makes: their
        arguments as plain data (None where they are objects). Kept in memory by input, like :meth:`call`."""
        args = {k: v for k, v in args.items() if k not in ("stubs", "report_inputs")}
        key = f"calls:{probe}:{sorted(names)}:{hashlib.sha256(encode(args)).hexdigest()}"
        with _REFERENCE_LOCK:
            if key not in self._memory:
                namespace = vars(self.module)
                recorded: dict[str, list] = {name: [] for name in names}
                saved = {name: namespace.get(name) for name in names}
                for name, fn in saved.items():
                    if callable(fn):
                        namespace[name] = _recording(fn, recorded[name])
                try:
                    self._local.call(probe, args)
                finally:
                    namespace.update({name: fn for name, fn in saved.items() if fn is not None})
                self._memory[key] = recorded
            return self._memory[key]

    def params(self, name: str) -> list[str]:
        try:
            return list(inspect.signature(getattr(self.module, name)).parameters)
        except (AttributeError, TypeError, ValueError):
            return []


@dataclass
class Check:
    """One grading test of one function."""

    function: str
    description: str
    run: Callable[[Trial], None]
    seeded: bool = True
    on_devices: bool = False
    seconds: float | None = None
    advisory: bool = False  # observed only inside the student's process, so it could be forged: no points
    trains: bool = False  # trains the student's model: one hidden seed (policy.TRAINING_HIDDEN_SEED_COUNT)
    probes: str = ""  # the assignment's probe module: ``t.probe("fit")`` means ``t.probe(f"{probes}.fit")``
    salt: str | None = None  # the course's seed salt (None: DLGRADE_SEED_SALT, else the public default)

    @property
    def name(self) -> str:
        return f"{self.function}: {self.description}" + (" (advisory, no points)" if self.advisory else "")

    @property
    def runs(self) -> list[tuple[int, bool]]:
        """The ``(seed, public)`` pairs this check runs on: the public seed, then the hidden ones."""
        if not self.seeded:
            return [(policy.PUBLIC_SEED, True)]
        count = policy.TRAINING_HIDDEN_SEED_COUNT if self.trains else policy.HIDDEN_SEED_COUNT
        return policy.seeds(self.name, count, self.salt)


@dataclass(frozen=True)
class Mistake:
    """A known mistake: the cells it replaces and the words its feedback must contain."""

    function: str  # the function it is a mistake in: the only one that may lose points
    cells: dict[str, str]  # grade_id -> replacement cell source
    feedback: str  # a fragment the feedback of ``function`` must contain
    typical: bool = False  # one of the demo's and the benchmark's "typical mistakes" submissions
    advisory: bool = False  # caught by an advisory check only: reported, but costs no points


@dataclass(frozen=True)
class NearMiss:
    """A plausible mistake beside a catalogued one: the same symptom, another cause. It loses points on its own
    function, and its feedback must not carry the catalogued mistake's hint (``wrong_hint``), whose diagnosis it
    does not share; ``feedback``, when given, is a fragment it must get instead."""

    name: str  # what the student did
    function: str
    cells: dict[str, str]  # grade_id -> replacement cell source
    wrong_hint: str  # a fragment of the hint it must not get
    feedback: str = ""


@dataclass(frozen=True)
class Variant:
    """A correct way to write something the contract allows (the fairness corpus): it must get full marks."""

    name: str
    cells: dict[str, str]  # grade_id -> replacement cell source


def mistake(function: str, code: str | dict[str, str], feedback: str, **flags: bool) -> Mistake:
    """A :class:`Mistake` replacing ``function``'s own cell with ``code`` (or several cells by grade_id)."""
    return Mistake(function, code if isinstance(code, dict) else {function: code}, feedback, **flags)


@dataclass
class Suite:
    """All checks of one assignment, in order, which functions the contract chains together, and the catalogue
    of known mistakes and correct variants the tests (and the demo) grade."""

    assignment: str = ""  # set by the course from the file's place (checks/<id>.py)
    notebook: str = ""  # likewise: the one notebook in source/<id>/
    # function -> the graded helpers it calls: judged with the reference's helper when that helper fails its own
    # checks (follow-through credit)
    depends: dict[str, list[str]] = field(default_factory=dict)
    # function -> graded functions a mistake in which may cost it too, because no follow-through is possible: it
    # reads their output without calling them, or calls them on objects that cannot cross to the grader as data
    coupled: dict[str, list[str]] = field(default_factory=dict)
    mistakes: list[Mistake] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    near_misses: list[NearMiss] = field(default_factory=list)  # beside the mistakes: same symptom, another cause
    checks: list[Check] = field(default_factory=list)
    preload: tuple[str, ...] = ()  # modules the probes need in the sandbox (the notebook's imports are added)
    warm_torch: bool = False  # the probes train with optimizers: pay torch's lazy imports once per worker

    def bind(self, assignment: str, notebook: str, probes: str, salt: str | None = None) -> None:
        """Tell the suite which assignment it grades and the course's seed salt (the course does, when it loads
        checks/<id>.py)."""
        self.assignment, self.notebook = assignment, notebook
        for check in self.checks:
            check.probes, check.salt = probes, salt

    def groups(self, functions: Collection[str]) -> list[list[str]]:
        """``functions`` (in suite order) in groups closed under :attr:`depends`: a function and the helpers it
        calls, whose own verdicts decide its follow-through, are judged one after another on one student process;
        different groups may be judged at once, in different sandboxes."""
        wanted = [f for f in self.functions if f in functions]
        group = {f: {f} for f in wanted}
        for function in wanted:
            for helper in self.depends.get(function, []):
                if helper in group and group[helper] is not group[function]:
                    merged = group[function] | group[helper]
                    for member in merged:
                        group[member] = merged
        found: list[list[str]] = []
        for function in wanted:
            if not any(function in g for g in found):
                found.append([f for f in wanted if f in group[function]])
        return found

    @staticmethod
    def near_miss(name: str, function: str, code: str | dict[str, str], wrong_hint: str,
                  feedback: str = "") -> NearMiss:
        """A :class:`NearMiss` replacing ``function``'s own cell with ``code`` (or several cells by grade_id), for
        ``SUITE.near_misses`` (checks import the public API only: ``near_miss = SUITE.near_miss``)."""
        return NearMiss(name, function, code if isinstance(code, dict) else {function: code}, wrong_hint, feedback)

    @property
    def typical_mistakes(self) -> dict[str, str]:
        """grade_id -> replacement cell: the catalogue's typical mistakes in one submission (demo, benchmark)."""
        cells: dict[str, str] = {}
        for m in self.mistakes:
            if m.typical:
                cells.update(m.cells)
        return cells

    def check(self, function: str, description: str, *, seeded: bool = True, on_devices: bool = False,
              seconds: float | None = None, advisory: bool = False, trains: bool = False,
              ) -> Callable[[Callable[[Trial], None]], Callable[[Trial], None]]:
        """Register the decorated ``fn(t: Trial)`` as a check of ``function`` (``advisory``: reported, no points)."""

        def register(fn: Callable[[Trial], None]) -> Callable[[Trial], None]:
            bound = (self.checks[0].probes, self.checks[0].salt) if self.checks else ("", None)
            self.checks.append(Check(function, description, fn, seeded, on_devices, seconds, advisory, trains, *bound))
            return fn

        return register

    def inputs_unchanged(self, function: str, make_args: Callable[[Trial], tuple[list, dict]]) -> None:
        """Register an advisory check that ``function`` leaves its array arguments as they were (the contract's
        general rule). Only the student's process sees its arguments after the call, so the observation could be
        forged: the check is reported but carries no points."""

        def leaves_its_inputs_unchanged(t: Trial) -> None:
            args, kwargs = make_args(t)
            changed = t.changed_inputs(function, *args, **kwargs)
            if changed:
                inputs = f"input {changed[0]}" if len(changed) == 1 else f"inputs {', '.join(changed)}"
                t.fail(f"{function} changed its {inputs} in place. Work on a copy (e.g. "
                       f"`{changed[0]} = {changed[0]}.copy()`) or build a new array instead: the caller still needs "
                       "the original.")

        leaves_its_inputs_unchanged.__name__ = f"{function}_leaves_its_inputs_unchanged"
        self.check(function, "leaves its inputs unchanged", seeded=False, advisory=True)(leaves_its_inputs_unchanged)

    @property
    def functions(self) -> list[str]:
        return list(dict.fromkeys(c.function for c in self.checks))


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
        for the reference's dtype (``autograder/policy.py``) unless this check sets ``rtol`` and ``atol``."""
        override = None
        if rtol is not None or atol is not None:
            override = policy.Tolerance(rtol=0.0 if rtol is None else rtol, atol=0.0 if atol is None else atol)
        problem = compare(got, want, what, iterative=iterative, hints=hints, tolerance=override)
        if problem:
            if note:
                problem = Problem(f"{problem.text} {note}", f"{problem.detail} {note}" if problem.detail else "",
                                  problem.hint)
            raise Failure(problem)


SPARE_ASKS = 8  # follow-through answers beyond twice the reference caller's own helper calls, per call
FOLLOW_THROUGH_LIMIT = ("follow-through gives the correct {name} for the calls a correct caller makes; this one "
                        "called it more often, with other arguments")


def _spend(left: dict[str, int], name: str) -> None:
    if left.get(name, 0) <= 0:
        raise PermissionError(FOLLOW_THROUGH_LIMIT.format(name=name))
    left[name] -= 1


def _recording(fn: Callable, calls: list) -> Callable:
    """``fn``, noting the plain data of each call's arguments in ``calls`` (None when they are objects)."""

    def recorded(*args: Any, **kwargs: Any) -> Any:
        try:
            calls.append(decode(encode({"args": list(args), "kwargs": kwargs})))
        except Exception:  # noqa: BLE001 - arguments that are not plain data are counted, not compared
            calls.append(None)
        return fn(*args, **kwargs)

    return recorded


def _same_call(asked: dict, call: dict | None) -> bool:
    """Whether a stub's question has the arguments of one of the reference caller's own helper calls."""
    from .compare import close

    if call is None:
        return False
    return close(list(asked.get("args") or []), call["args"], iterative=True) and close(
        dict(asked.get("kwargs") or {}), call["kwargs"], iterative=True)


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


def student_error(label: str, error: StudentError | None, cells: Mapping[int, str] | None = None) -> str:
    """Feedback for an error the student's code raised or caused, with their own traceback lines only (quoted from
    ``cells``, the submission's code cells by notebook index, when the grader holds them)."""
    return shown(student_problem(label, error, cells), public=True)


def student_problem(label: str, error: StudentError | None, cells: Mapping[int, str] | None = None) -> Problem:
    """:func:`student_error` as a :class:`Problem`: a hidden case shows the kind of error, Python's own exception
    names, the student's failing lines quoted from the submitted cells (``cells``) and the message with every number
    and quoted value masked (a message, an exit code or a traceback can carry hidden inputs back)."""
    error = error or StudentError(ErrorKind.DEAD, message="no reason was given")
    if error.kind in _BY_KIND:
        return _BY_KIND[error.kind](label, error.message)
    return _raised(label, error, cells)


def _cells_of(student: Any) -> Mapping[int, str] | None:
    """The code cells the student side ran (index in the notebook -> source), when it says (the sandbox does)."""
    cells = getattr(student, "cells", None)
    return cells if isinstance(cells, Mapping) else None


def _missing(label: str, message: str) -> Problem:
    name = message.split(" is not defined")[0] if " is not defined" in message else label
    return Problem(f"`{label}` (or a name it needs) is not defined in your notebook. Check its name and that its "
                   "cell runs without errors.",
                   f"`{name}` is not defined in your notebook. Check its name and that its cell runs without errors.")


_FORBIDDEN = ("grading never needs kernel keyrings, shared memory, message queues, namespaces, mounts, file locks "
              "or file watches.")
_BY_KIND: dict[ErrorKind, Callable[[str, str], Problem]] = {
    ErrorKind.MISSING: _missing,
    ErrorKind.TIMEOUT: lambda label, message: Problem(
        f"{label} did not finish in time. Look for an endless loop or far too many iterations.",
        f"{label} did not finish: {message}. Look for an endless loop or far too many iterations."),
    ErrorKind.CRASHED: lambda label, message: Problem(f"{label} crashed (its process ended).",
                                                      f"{label} crashed: {message}."),
    ErrorKind.MEMORY: lambda label, message: Problem(
        f"{label} ran out of memory. Look for a huge array (e.g. an n x n matrix where n is large)."),
    ErrorKind.UNSENDABLE: lambda label, message: Problem(
        f"{label} gave back something that cannot be graded (only numbers, arrays, tensors, lists, tuples and dicts "
        "can).", f"{label} gave back something that cannot be graded: {message}."),
    ErrorKind.FORBIDDEN: lambda label, message: Problem(
        f"{label} made a system call the grading sandbox forbids: {_FORBIDDEN}",
        f"{label} made a system call the grading sandbox forbids ({message}): {_FORBIDDEN}"),
    ErrorKind.PROTOCOL: lambda label, message: Problem(
        f"{label} could not be tested: the notebook's process sent a message the grader does not accept.",
        f"{label} could not be tested: {message}."),
    ErrorKind.BUDGET: lambda label, message: Problem(f"{label} was not tested: {message}."),
    ErrorKind.DEAD: lambda label, message: Problem(f"{label} could not be tested: {message}."),
}


def _raised(label: str, error: StudentError, cells: Mapping[int, str] | None = None) -> Problem:
    """An exception the student's code raised: on the public example its type, message and the student's own
    traceback lines; on a hidden case Python's name for the type, the same lines quoted from the submitted cells
    (never the frame's own text, which code can forge), and the message with numbers and quoted values masked (left
    out where the student's own ``raise`` or ``assert`` wrote it)."""
    if error.type == "NotImplementedError":
        return Problem(f"{label} raised NotImplementedError: it has not been implemented yet.")
    frames = [_frame(f, cells) for f in error.frames]
    public = f"{label} raised {error.type or 'an exception'}" + (f": {error.message}" if error.message else "")
    shown_frames = [line for line, _ in frames if line] if cells is not None else [
        f"  line {f.lineno}, in {f.name}: {f.line}" for f in error.frames]
    if shown_frames:
        public += "\n" + "\n".join(shown_frames)
    kind = exception_type(error.type)
    quoted = [line for line, _ in frames if line]
    last = next((statement for line, statement in reversed(frames) if line), None)
    if cells is None and error.frames:  # no submitted source to read (the notebook's own kernel): its frame text
        own = error.frames[-1].line.lstrip().startswith(("raise", "assert"))
    else:  # a raise or assert of the student's own, or code run from a string anywhere on the way
        own = (isinstance(last, (ast.Raise, ast.Assert))
               or any(statement is not None and _writes_message(statement) for _, statement in frames))
    message = ""
    if error.message and kind != "an exception" and not own:
        message = masked(error.message, "\n".join(quoted))
    hidden = f"{label} raised {kind}" + (f": {message}" if message else "")
    if message != error.message and message:
        hidden += " (numbers and values from the hidden inputs are masked: # and '…')"
    if quoted:
        hidden += "\n" + "\n".join(quoted)
    elif not message:
        hidden += " (its message and traceback are shown on the public example only)"
    return Problem(hidden, public)


def _frame(frame: TraceFrame, cells: Mapping[int, str] | None) -> tuple[str, ast.stmt | None]:
    """One traceback line as the student finds it in Jupyter: the cell named by what it defines, the line number in
    that cell, the function, and the line itself, all read from the submitted source (``""`` when the frame points
    at no line of a submitted cell: code the notebook compiled itself, under a name of its choice)."""
    match = re.fullmatch(r"<cell (\d+)>", frame.filename)
    source = (cells or {}).get(int(match.group(1))) if match else None
    lines = source.splitlines() if source is not None else []
    if not 1 <= frame.lineno <= len(lines):
        return "", None
    outline = _outline(source)
    function = next((name for start, end, name in outline.functions if start <= frame.lineno <= end), "")
    statement = next((node for node in outline.statements if node.lineno <= frame.lineno <= node.end_lineno), None)
    where = f"in {function}" if function else "at the cell's top level"
    return (f"  {outline.name}, line {frame.lineno}, {where}: {lines[frame.lineno - 1].strip()[:200]}",
            statement)


@dataclass(frozen=True)
class _Outline:
    name: str  # "the cell defining mse_loss", or "the cell starting `...`"
    functions: list[tuple[int, int, str]]  # (first line, last line, qualified name), innermost last
    statements: list[ast.stmt]  # innermost first


@functools.lru_cache(maxsize=256)
def _outline(source: str) -> _Outline:
    """What a cell defines, where, and its statements: the grader's own parse of the submitted source."""
    first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return _Outline(f"the cell starting `{first[:50]}`", [], [])
    named = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    functions: list[tuple[int, int, str]] = []
    statements: list[ast.stmt] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                statements.append(child)
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    functions.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    functions.sort(key=lambda f: f[1] - f[0])  # the innermost (shortest) enclosing definition first
    statements.sort(key=lambda n: (n.end_lineno or n.lineno) - n.lineno)
    name = f"the cell defining {named[0]}" if named else f"the cell starting `{first[:50]}`"
    return _Outline(name, functions, statements)


def _writes_message(statement: ast.stmt) -> bool:
    """Whether the student's own statement chose the exception's message (``raise``, ``assert``, or code it runs
    from a string), so that the message may carry anything the code computed."""
    if isinstance(statement, (ast.Raise, ast.Assert)):
        return True
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("exec", "eval", "compile")
               for n in ast.walk(statement))


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

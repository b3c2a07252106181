"""Checks: pytest-style grading tests, each comparing one student function with the reference.

A check is a plain function taking a :class:`Trial`, registered on an assignment's :class:`Suite` with the
name of the function it grades. The runner calls it once per seed (public, then hidden) and per device,
and the first failure becomes the test's feedback. Student values come from a ``StudentSide`` (the
sandbox, or the notebook kernel under nbgrader) and reference values from a :class:`ReferenceSide`; both
give plain data only.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NoReturn, Protocol

import numpy as np

from . import policy
from .compare import Hint, compare
from .refcache import ReferenceCache
from .runtime.codec import decode, encode
from .runtime.probes import run_probe
from .runtime.protocol import ErrorKind, StudentError
from .sandbox import CallResult
from .sandbox.worker import AskHandler


class Failure(Exception):
    """A check failed; the message is feedback for the student."""


class StudentSide(Protocol):
    """Where student code runs: ``call(probe, args, seconds, key, on_ask) -> CallResult``."""

    def call(self, probe: str, args: dict, seconds: float | None = None, key: str | None = None,
             on_ask: AskHandler | None = None) -> CallResult: ...


class LocalSide:
    """Runs probes in this process on a namespace (the nbgrader kernel, or the reference module)."""

    def __init__(self, namespace: dict) -> None:
        self.namespace = namespace

    def call(self, probe: str, args: dict, seconds: float | None = None, key: str | None = None,
             on_ask: AskHandler | None = None) -> CallResult:
        from .runtime.student import describe_exception

        try:
            value = run_probe(probe, self.namespace, decode(encode(args)))
            return CallResult(True, value=decode(encode(value)))
        except Exception as err:  # noqa: BLE001 - becomes feedback like any student error
            return CallResult(False, error=describe_exception(err))


_REFERENCE_LOCK = threading.Lock()  # torch's global RNG: one reference computation at a time


class ReferenceSide:
    """The reference solution, in the grader's process, its outputs cached across submissions (in memory, and on
    disk when given a :class:`ReferenceCache`). The module is imported only when a value is not cached."""

    def __init__(self, module: ModuleType | Callable[[], ModuleType], cache: ReferenceCache | None = None) -> None:
        self._module = module if isinstance(module, ModuleType) else None
        self._load = None if isinstance(module, ModuleType) else module
        self.cache = cache
        self._memory: dict[str, Any] = {}

    @property
    def module(self) -> ModuleType:
        if self._module is None:
            self._module = self._load()
        return self._module

    @property
    def _local(self) -> LocalSide:
        return LocalSide(vars(self.module))

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

    def params(self, name: str) -> list[str]:
        try:
            return list(inspect.signature(getattr(self.module, name)).parameters)
        except (AttributeError, TypeError, ValueError):
            return []

    def answer(self, allowed: Sequence[str]) -> AskHandler:
        """Follow-through: answer a student's call of a helper in ``allowed`` with the reference's value (not
        cached: the arguments are the student's)."""

        def on_ask(probe: str, args: Any) -> Any:
            if probe != "probes.call" or not isinstance(args, dict) or args.get("name") not in allowed:
                raise PermissionError("only the helpers under follow-through can be asked for")
            with _REFERENCE_LOCK:
                reply = self._local.call(probe, args)
            if not reply.ok:
                raise ValueError(reply.error.message if reply.error else "the reference failed")
            return reply.value["value"]

        return on_ask


@dataclass
class Check:
    """One grading test of one function."""

    function: str
    description: str
    run: Callable[[Trial], None]
    seeded: bool = True
    on_devices: bool = False
    seconds: float | None = None

    @property
    def name(self) -> str:
        return f"{self.function}: {self.description}"


@dataclass
class Suite:
    """All checks of one assignment, in order, and which functions the contract chains together."""

    assignment: str
    notebook: str
    depends: dict[str, list[str]] = field(default_factory=dict)
    # grade_id -> replacement cell source: common mistakes, used by the demo and the benchmark
    typical_mistakes: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    preload: tuple[str, ...] = ()  # modules the probes need in the sandbox (the notebook's imports are added)
    warm_torch: bool = False  # the probes train with optimizers: pay torch's lazy imports once per worker

    def check(self, function: str, description: str, *, seeded: bool = True, on_devices: bool = False,
              seconds: float | None = None) -> Callable[[Callable[[Trial], None]], Callable[[Trial], None]]:
        """Register the decorated ``fn(t: Trial)`` as a check of ``function``."""

        def register(fn: Callable[[Trial], None]) -> Callable[[Trial], None]:
            self.checks.append(Check(function, description, fn, seeded, on_devices, seconds))
            return fn

        return register

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
        self.warnings: list[str] = []  # warnings raised by the last student call
        self.stubs: list[str] = []  # helpers replaced by the reference's (follow-through credit)

    # -- calling ------------------------------------------------------------------------------------
    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The student's ``name(*args, **kwargs)``; a raised error or a changed input fails the check."""
        result = self.probe("probes.call", name=name, args=list(args), kwargs=kwargs, label=name, stubs=self.stubs)
        if result.get("mutated"):
            params = self.reference.params(name)
            names = [params[int(k)] if k.isdigit() and int(k) < len(params) else k for k in result["mutated"]]
            self.fail(f"{name} changed its input {', '.join(names)} in place. Work on a copy "
                      f"(e.g. `{names[0]} = {names[0]}.copy()`) or build a new array instead.")
        self.warnings = list(result.get("warnings", []))
        return result["value"]

    def ref(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The reference's ``name(*args, **kwargs)`` (cached by input)."""
        return self.ref_probe("probes.call", name=name, args=list(args), kwargs=kwargs)["value"]

    def probe(self, probe: str, label: str | None = None, seconds: float | None = None, **args: Any) -> Any:
        """Run ``probe`` on the student's namespace; errors become feedback about ``label``."""
        args.setdefault("device", self.device)
        on_ask = self.reference.answer(self.stubs) if self.stubs else None
        reply = self.student.call(probe, args, seconds or self.check.seconds, on_ask=on_ask)
        if not reply.ok:
            raise Failure(student_error(label or self.check.function, reply.error))
        return reply.value

    def ref_probe(self, probe: str, **args: Any) -> Any:
        """Run ``probe`` on the reference solution."""
        args.setdefault("device", self.device)
        return self.reference.call(probe, args)

    # -- judging ------------------------------------------------------------------------------------
    def fail(self, message: str) -> NoReturn:
        raise Failure(message)

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            raise Failure(message)

    def expect_close(self, got: Any, want: Any, what: str, *, iterative: bool = False,
                     hints: Sequence[Hint] = ()) -> None:
        """Fail unless ``got`` matches ``want`` (values shown only for the public seed)."""
        problem = compare(got, want, what, show_values=self.public, iterative=iterative, hints=hints)
        if problem:
            raise Failure(problem)


def student_error(label: str, error: StudentError | None) -> str:
    """Feedback for an error the student's code raised or caused, with their own traceback lines only."""
    error = error or StudentError(ErrorKind.DEAD, message="no reason was given")
    kind, message = error.kind, error.message
    if kind is ErrorKind.MISSING:
        name = message.split(" is not defined")[0] if " is not defined" in message else label
        return f"`{name}` is not defined in your notebook. Check its name and that its cell runs without errors."
    if kind is ErrorKind.TIMEOUT:
        return f"{label} did not finish: {message}. Look for an endless loop or far too many iterations."
    if kind is ErrorKind.CRASHED:
        return f"{label} crashed: {message}."
    if kind is ErrorKind.MEMORY:
        return f"{label} ran out of memory. Look for a huge array (e.g. an n x n matrix where n is large)."
    if kind is ErrorKind.UNSENDABLE:
        return f"{label} gave back something that cannot be graded: {message}."
    if kind is ErrorKind.FORBIDDEN:
        return (f"{label} made a system call the grading sandbox forbids ({message}): grading never needs kernel "
                "keyrings, shared memory, message queues, namespaces or mounts.")
    if kind is ErrorKind.PROTOCOL:
        return f"{label} could not be tested: {message}."
    if kind is ErrorKind.BUDGET:
        return f"{label} was not tested: {message}."
    if kind is ErrorKind.DEAD:
        return f"{label} could not be tested: {message}."
    if error.type == "NotImplementedError":
        return f"{label} raised NotImplementedError: it has not been implemented yet."
    text = f"{label} raised {error.type or 'an exception'}" + (f": {message}" if message else "")
    if error.frames:
        text += "\n" + "\n".join(f"  {f.filename}, line {f.lineno}, in {f.name}: {f.line}" for f in error.frames)
    return text


@dataclass
class TestOutcome:
    """One check's result across its seeds and devices."""

    check: Check
    passed: bool
    output: str
    seconds: float
    grader_error: str = ""  # set when the grader itself failed on this check (a bug to report)


def run_check(check: Check, student: StudentSide, reference: ReferenceSide,
              devices: Sequence[str] | None = None, stubs: Sequence[str] = ()) -> TestOutcome:
    """Run one check on every seed (and device); stop at the first failure. The helpers in ``stubs`` are the
    reference's during the check (follow-through credit)."""
    start = time.perf_counter()
    runs = policy.seeds(check.name) if check.seeded else [(policy.PUBLIC_SEED, True)]
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
                return TestOutcome(check, False, f"{failure} [on {where}]", time.perf_counter() - start)
    return TestOutcome(check, True, "", time.perf_counter() - start)

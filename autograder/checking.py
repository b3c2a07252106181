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
from .runtime.codec import decode, encode
from .runtime.probes import run_probe
from .sandbox import Reply


class Failure(Exception):
    """A check failed; the message is feedback for the student."""


class StudentSide(Protocol):
    """Where student code runs: ``call(probe, args, seconds) -> Reply``."""

    def call(self, probe: str, args: dict, seconds: float | None = None, key: str | None = None) -> Reply: ...


class LocalSide:
    """Runs probes in this process on a namespace (the nbgrader kernel, or the reference module)."""

    def __init__(self, namespace: dict) -> None:
        self.namespace = namespace

    def call(self, probe: str, args: dict, seconds: float | None = None, key: str | None = None) -> Reply:
        from .runtime.student import describe_exception

        try:
            value = run_probe(probe, self.namespace, decode(encode(args)))
            return Reply(True, value=decode(encode(value)))
        except Exception as err:  # noqa: BLE001 - becomes feedback like any student error
            return Reply(False, error=describe_exception(err))


_REFERENCE_LOCK = threading.Lock()  # torch's global RNG: one reference computation at a time


class ReferenceSide:
    """The reference solution, in the grader's process, with results cached across submissions."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self._local = LocalSide(vars(module))
        self._cache: dict[tuple[str, str], Any] = {}

    def call(self, probe: str, args: dict) -> Any:
        key = (probe, hashlib.sha256(encode(args)).hexdigest())
        with _REFERENCE_LOCK:
            if key not in self._cache:
                reply = self._local.call(probe, args)
                if not reply.ok:
                    raise RuntimeError(f"the reference failed on {probe}: {reply.error}")
                self._cache[key] = reply.value
            return self._cache[key]

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

    # -- calling ------------------------------------------------------------------------------------
    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The student's ``name(*args, **kwargs)``; a raised error or a changed input fails the check."""
        result = self.probe("probes.call", name=name, args=list(args), kwargs=kwargs, label=name)
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
        reply = self.student.call(probe, args, seconds or self.check.seconds)
        if not reply.ok:
            raise Failure(student_error(label or self.check.function, reply.error or {}))
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


def student_error(label: str, error: dict) -> str:
    """Feedback for an error the student's code raised or caused, with their own traceback lines only."""
    kind = error.get("kind")
    message = error.get("message", "")
    if kind == "missing":
        name = message.split(" is not defined")[0] if " is not defined" in message else label
        return f"`{name}` is not defined in your notebook. Check its name and that its cell runs without errors."
    if kind == "timeout":
        return f"{label} did not finish: {message}. Look for an endless loop or far too many iterations."
    if kind == "crashed":
        return f"{label} crashed: {message}."
    if kind == "memory":
        return f"{label} ran out of memory. Look for a huge array (e.g. an n x n matrix where n is large)."
    if kind == "unsendable":
        return f"{label} gave back something that cannot be graded: {message}."
    if kind == "dead":
        return f"{label} could not be tested: {message}."
    type_name = error.get("type", "Exception")
    if type_name == "NotImplementedError":
        return f"{label} raised NotImplementedError: it has not been implemented yet."
    text = f"{label} raised {type_name}" + (f": {message}" if message else "")
    frames = error.get("frames") or []
    if frames:
        text += "\n" + "\n".join(f"  {f[0]}, line {f[1]}, in {f[2]}: {f[3]}" for f in frames)
    return text


@dataclass
class TestOutcome:
    """One check's result across its seeds and devices."""

    check: Check
    passed: bool
    output: str
    seconds: float


def run_check(check: Check, student: StudentSide, reference: ReferenceSide,
              devices: Sequence[str] | None = None) -> TestOutcome:
    """Run one check on every seed (and device); stop at the first failure."""
    start = time.perf_counter()
    runs = policy.seeds(check.name) if check.seeded else [(policy.PUBLIC_SEED, True)]
    devs = (devices or policy.devices()) if check.on_devices else ("cpu",)
    for device in devs:
        for seed, public in runs:
            trial = Trial(check, student, reference, seed, public, device)
            try:
                check.run(trial)
            except Failure as failure:
                where = "the public example (seed 0)" if public else "a hidden test case"
                if device != "cpu":
                    where += f" on {device}"
                return TestOutcome(check, False, f"{failure} [on {where}]", time.perf_counter() - start)
    return TestOutcome(check, True, "", time.perf_counter() - start)

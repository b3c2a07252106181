"""The two sides a check compares: the student's (``StudentSide``: the sandbox, or the notebook's own kernel under
nbgrader, through :class:`LocalSide`) and the reference's (:class:`ReferenceSide`: the course's solution, in the
grader's process, cached by input), with follow-through: a student's call of a helper answered by the reference's."""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, Protocol

from autograder.checking.refcache import ReferenceCache
from autograder.runtime.codec import decode, encode
from autograder.runtime.probes import run_probe
from autograder.sandbox import CallResult
from autograder.sandbox.worker import AskHandler


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
        from autograder.runtime.student import describe_exception

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
    from autograder.checking.compare import close

    if call is None:
        return False
    return close(list(asked.get("args") or []), call["args"], iterative=True) and close(
        dict(asked.get("kwargs") or {}), call["kwargs"], iterative=True)

"""Probes: small, answer-free routines that exercise a notebook's names with plain data.

Every probe takes the namespace first, then keywords, among them ``device``. The grader runs each probe
twice with the same arguments: in the sandbox on the student's namespace and in its own process on the
reference module's namespace, then compares the two plain results. An assignment's own probes live in its
course's ``probes/<id>.py``: the sandbox puts them into this package as ``probes_<id>``, and the grader loads
them from the course (``modules``).
"""

from __future__ import annotations

import contextlib
import importlib
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from .codec import TensorData

_PROBE_NAME = re.compile(r"^(probes(?:_[a-z0-9_]+)?)\.([a-z_][a-z0-9_]*)$")


_ABSENT = object()


class MissingName(NameError):
    """The notebook does not define a name the grader needs."""

    dlgrade_missing = True


def run_probe(probe: str, ns: dict, args: Any, modules: Mapping[str, ModuleType] | None = None) -> Any:
    """Run probe ``module.function`` on namespace ``ns`` with decoded ``args`` (a dict of keywords); ``module`` is
    one of ``modules`` (an assignment's probes, in the grader) or of this package."""
    match = _PROBE_NAME.match(probe)
    if not match:
        raise ValueError(f"unknown probe {probe!r}")
    module = (modules or {}).get(match.group(1)) or importlib.import_module(f"{__package__}.{match.group(1)}")
    return getattr(module, match.group(2))(ns, **args)


def lookup(ns: dict, name: str) -> Any:
    """``ns[name]``, or :class:`MissingName` with a message for the student."""
    if name not in ns:
        raise MissingName(f"{name} is not defined in the notebook")
    return ns[name]


def materialize(value: Any, device: str | None = None) -> Any:
    """Turn decoded plain data back into what a student function takes: arrays copied, tensors rebuilt."""
    if isinstance(value, TensorData):
        import torch

        tensor = torch.tensor(value.array, dtype=getattr(torch, value.dtype), device=device or value.device)
        return tensor.requires_grad_(value.requires_grad)
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [materialize(v, device) for v in value]
    if isinstance(value, tuple):
        return tuple(materialize(v, device) for v in value)
    if isinstance(value, dict):
        return {k: materialize(v, device) for k, v in value.items()}
    return value


@contextlib.contextmanager
def stubbed(ns: dict, helpers: list | tuple, make: Callable[[str], Callable] | None = None) -> Iterator[None]:
    """Bind each helper in ``helpers`` to a stub that asks the grader for the reference's value, then restore.

    ``make(helper)`` builds a stub of one's own (for helpers taking objects that cannot cross as data); the default
    asks ``probes.call`` with the arguments as they are."""
    from .asking import ask

    def stub_for(helper: str) -> Callable:
        def stub(*args: Any, **kwargs: Any) -> Any:
            return ask("probes.call", {"name": helper, "args": list(args), "kwargs": kwargs})

        stub.__name__ = helper
        return stub

    saved = {h: ns.get(h, _ABSENT) for h in helpers}
    ns.update({h: (make or stub_for)(h) for h in helpers})
    try:
        yield
    finally:
        for helper, value in saved.items():
            if value is _ABSENT:
                ns.pop(helper, None)
            else:
                ns[helper] = value


def call(ns: dict, name: str, args: list | tuple = (), kwargs: dict | None = None, device: str | None = None,
         stubs: list | tuple = (), report_inputs: bool = False) -> dict:
    """Call ``name(*args, **kwargs)``; report its value and the warnings it raised (as data), and with
    ``report_inputs`` the arguments as they are after the call (the grader decides whether they changed).

    The helpers named in ``stubs`` are, for this call only, the reference's (follow-through credit)."""
    fn = lookup(ns, name)
    args = materialize(list(args), device)
    kwargs = materialize(dict(kwargs or {}), device)
    with warnings.catch_warnings(record=True) as caught, np.errstate(over="warn", divide="warn", invalid="warn"), \
            stubbed(ns, stubs):
        warnings.simplefilter("always")
        value = fn(*args, **kwargs)
    report = {"value": value, "warnings": [str(w.message)[:200] for w in caught[:5]]}
    if report_inputs:
        report["inputs"] = {str(i): v for i, v in enumerate(args)} | kwargs
    return report

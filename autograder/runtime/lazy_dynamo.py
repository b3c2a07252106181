"""``torch._dynamo``, imported in the sandbox only when something needs more of it than eager training does.

Every optimizer step calls ``torch._dynamo.graph_break()``, and ``zero_grad`` and a few others wrap themselves with
``torch._dynamo.disable(fn)`` on first use. Outside ``torch.compile`` both are no-ops (``graph_break`` does nothing;
``disable``'s wrapper calls ``fn`` unchanged), yet reaching them imports all of ``torch._dynamo``: 1.1 s in every
fresh process, a third of a cold a3 grading. Eager training touches nothing else of it (checked for SGD, Adam,
AdamW, RMSprop, Adagrad, schedulers, checkpoints, batch norm and DataLoader workers). This stand-in answers those
two names and imports the real module the first time anything else is asked for (``torch.compile`` in a
notebook, say), then forwards to it. The grader's own process, where the reference runs, uses the real module.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

NAME = "torch._dynamo"


def _graph_break(*args: Any, **kwargs: Any) -> None:
    """Eager mode: nothing to break."""


def _disable(fn: Callable | None = None, recursive: bool = True, **kwargs: Any) -> Any:
    """Eager mode: the function itself (or, as a decorator factory, the identity)."""
    return fn if fn is not None else (lambda f: f)


class LazyDynamo(types.ModuleType):
    """Stands in for ``torch._dynamo`` until a name other than ``graph_break`` or ``disable`` is asked for."""

    def __getattr__(self, name: str) -> Any:
        if name == "graph_break":
            return _graph_break
        if name == "disable":
            return _disable
        return getattr(_real(self), name)


def _real(stand_in: LazyDynamo) -> types.ModuleType:
    real = stand_in.__dict__.get("_real")
    if real is None:
        if sys.modules.get(NAME) is stand_in:
            del sys.modules[NAME]
        real = importlib.import_module(NAME)
        sys.modules["torch"]._dynamo = real
        stand_in.__dict__["_real"] = real
    return real


def install() -> bool:
    """Put the stand-in in place (torch imported, its dynamo not yet); returns whether it did."""
    torch = sys.modules.get("torch")
    if torch is None or NAME in sys.modules:
        return False
    stand_in = LazyDynamo(NAME)
    sys.modules[NAME] = stand_in
    torch._dynamo = stand_in
    return True

"""``torch._dynamo``, imported in the sandbox only when something needs more of it than eager training does.

Every optimizer step calls ``torch._dynamo.graph_break()``, and ``zero_grad`` and a few others wrap themselves with
``torch._dynamo.disable(fn)`` on first use. Outside ``torch.compile`` both are no-ops (``graph_break`` does nothing;
``disable``'s wrapper calls ``fn`` unchanged), yet reaching them imports all of ``torch._dynamo``: 1.1 s in every
fresh process, a third of a cold a3 grading. Eager training touches nothing else of it (checked for SGD, Adam,
AdamW, RMSprop, Adagrad, schedulers, checkpoints, batch norm and DataLoader workers). This stand-in answers those
two names and imports the real module the first time anything else is asked for (``torch.compile`` in a
notebook, say), then forwards to it; importing one of its submodules (``import torch._dynamo.config``) imports
the real package first, as Python would, and each submodule once. The grader's own process, where the reference
runs, uses the real module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
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


class _RealPackageFirst(importlib.abc.MetaPathFinder):
    """``import torch._dynamo.<sub>`` while the stand-in is in place: import the real package (which imports most
    of its submodules), then hand over the submodule it loaded rather than load a second copy."""

    def __init__(self, stand_in: LazyDynamo) -> None:
        self.stand_in = stand_in

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(NAME + "."):
            return None
        _real(self.stand_in)
        # Taken out of sys.modules for a moment: seeing it there, Python would load a second copy from its spec.
        loaded = sys.modules.pop(fullname, None)
        if loaded is None:
            return None  # the real package did not import it: Python's own finders load it now
        return importlib.machinery.ModuleSpec(fullname, _AlreadyLoaded(loaded))


class _AlreadyLoaded(importlib.abc.Loader):
    """Gives Python back the module it already had (it puts it in sys.modules again), with its own spec."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module, self.spec = module, module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        try:
            module.__spec__ = self.spec
        except AttributeError:  # a module that refuses new attributes (dynamo's config) kept its own anyway
            pass


def install() -> bool:
    """Put the stand-in in place (torch imported, its dynamo not yet); returns whether it did."""
    torch = sys.modules.get("torch")
    if torch is None or NAME in sys.modules:
        return False
    stand_in = LazyDynamo(NAME)
    stand_in.__path__ = [os.path.join(os.path.dirname(torch.__file__), "_dynamo")]  # a package, as the real one
    sys.modules[NAME] = stand_in
    sys.meta_path.insert(0, _RealPackageFirst(stand_in))
    torch._dynamo = stand_in
    return True

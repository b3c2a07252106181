"""dlgrade: auto-graded deep-learning exercises with a sandboxed, pytest-style grader.

The check API a course's ``checks/<id>.py`` is written in (the built-in course's checks import it the same way)::

    from autograder import Suite, Trial, mistake, Variant

Names are imported when first used, so that ``import autograder`` (and ``dlgrade --help``) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "Suite": "checking.suite", "Check": "checking.suite", "Mistake": "checking.suite", "Variant": "checking.suite",
    "mistake": "checking.suite", "Trial": "checking.trial",
    "Hint": "checking.compare", "factor_hint": "checking.compare", "matches": "checking.compare",
    "close": "checking.compare", "values": "checking.compare",
    "Tolerance": "checking.policy", "TensorData": "runtime.codec", "course_probes": "course",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'autograder' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

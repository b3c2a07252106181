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
    "Suite": "suite", "Trial": "suite", "Check": "suite", "Mistake": "suite", "Variant": "suite", "mistake": "suite",
    "Hint": "compare", "factor_hint": "compare", "matches": "compare", "close": "compare", "values": "compare",
    "Tolerance": "policy", "TensorData": "runtime.codec", "course_probes": "course",
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

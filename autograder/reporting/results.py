"""What the grader says about a submission, as data: one result per submission, one per check, in Gradescope's
autograder schema (``reports`` writes them to files; reports read these fields, never their prose)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.course.points import from_units, to_units

MAX_OUTPUT_CHARS = 4000


@dataclass
class TestResult:
    """One Gradescope test: ``name`` starts with the graded function and a colon."""

    name: str
    score: float
    max_score: float
    output: str = ""
    visibility: str = "visible"
    function: str = ""  # the graded function (the cell test_<function> holds its points)

    def graded_function(self) -> str:
        """The function this test grades (from the name for results written before the field existed)."""
        return self.function or self.name.split(":", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """One entry of results.json's ``tests`` (Gradescope keys; the function under ``extra_data``)."""
        return {"name": self.name, "score": round(self.score, 4), "max_score": round(self.max_score, 4),
                "output": _clip(self.output), "visibility": self.visibility,
                "extra_data": {"function": self.graded_function()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        return cls(data["name"], float(data["score"]), float(data["max_score"]), data.get("output", ""),
                   data.get("visibility", "visible"), (data.get("extra_data") or {}).get("function", ""))


@dataclass
class SubmissionResult:
    """Everything the grader says about one submission."""

    student: str
    assignment: str
    score: float
    max_score: float
    execution_time: float
    reason: str = ""  # why the notebook was not graded at all (damaged, refused, the grader failed), or ""
    tests: list[TestResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # about the notebook: renamed, cells skipped, follow-through
    skipped_cells: int = 0  # cells that failed (raised, crashed, timed out) and were skipped
    # the submission's cells as the grader read them (None if unreadable): for the autograded notebook, not saved
    cells: list | None = field(default=None, repr=False, compare=False)

    @property
    def output(self) -> str:
        """The text a student reads first: the reason, or the notes as a list."""
        return self.reason or "\n".join(f"- {note}" for note in self.notes)

    def to_json(self) -> dict[str, Any]:
        """The results.json document (Gradescope keys; our metadata under ``extra_data``)."""
        return {
            "score": round(self.score, 4),
            "max_score": round(self.max_score, 4),
            "execution_time": round(self.execution_time, 3),
            "output": _clip(self.output),
            "visibility": "visible",
            "tests": [t.to_json() for t in self.tests],
            "extra_data": {"student": self.student, "assignment": self.assignment, "reason": self.reason,
                           "notes": self.notes, "skipped_cells": self.skipped_cells, **self.extra},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubmissionResult:
        extra = dict(data.get("extra_data", {}))
        fields = {name: extra.pop(name) for name in ("reason", "notes", "skipped_cells") if name in extra}
        return cls(extra.pop("student", ""), extra.pop("assignment", ""), float(data["score"]),
                   float(data["max_score"]), float(data.get("execution_time", 0)),
                   tests=[TestResult.from_json(t) for t in data.get("tests", [])], extra=extra, **fields)

    def function_scores(self) -> dict[str, float]:
        """Exact score per graded function (the score of its ``test_<function>`` cell)."""
        units: dict[str, int] = {}
        for test in self.tests:
            function = test.graded_function()
            units[function] = units.get(function, 0) + to_units(test.score)
        return {function: from_units(u) for function, u in units.items()}


def _clip(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT_CHARS else text[:MAX_OUTPUT_CHARS] + "\n[... output shortened]"


def read_result(folder: Path) -> SubmissionResult | None:
    """The stored result in ``folder``, or None if absent or unreadable."""
    try:
        return SubmissionResult.from_json(json.loads((folder / "results.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None

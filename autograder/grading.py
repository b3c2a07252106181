"""Grading one submission: read it, run it in the sandbox, run the checks, decide the points."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from . import course
from .checking import ReferenceSide, StudentSide, TestOutcome, run_check, student_error
from .nbgrader_course import course_notebook
from .notebook import (
    Cell,
    NotebookError,
    cells_to_run,
    demo_cells,
    find_notebook,
    has_nbgrader_metadata,
    read_cells,
)
from .points import from_units, split, total
from .results import SubmissionResult, TestResult
from .sandbox import Worker

GRADER_VERSION = "2"  # 2: exact point shares, the function on each test, the autograded notebook


def fingerprint(notebook: Path | None, assignment: str, points: dict[str, float] | None = None) -> str:
    """Content hash deciding whether a stored result is still current (the notebook, and the points it earns)."""
    digest = hashlib.sha256(f"dlgrade{GRADER_VERSION}:{assignment}:{sorted((points or {}).items())}:".encode())
    if notebook is not None and notebook.is_file():
        digest.update(notebook.read_bytes())
    return digest.hexdigest()


class Grader:
    """Grades submissions of one assignment; the reference and its cached outputs live as long as it.

    With ``course_dir``, points come from that course's own notebook (its ``source/``, else its gradebook; see
    :func:`~autograder.nbgrader_course.course_notebook`), else from the installed source notebook. Each function's
    points are split exactly over its checks (:func:`~autograder.points.split`).
    """

    def __init__(self, assignment: str, course_dir: Path | None = None) -> None:
        self.assignment = assignment
        self.suite = course.suite(assignment)
        self.reference = ReferenceSide(course.reference(assignment))
        self.notebook = course_notebook(assignment, course_dir)
        self.points = self.notebook.points
        self.shares = {f: split(self.points[f], sum(c.function == f for c in self.suite.checks))
                       for f in self.suite.functions}
        self.demo_sources = demo_cells(course.released_notebook(assignment))

    @property
    def max_score(self) -> float:
        return total(self.points.values())

    def _share(self, index: int) -> int:
        """Units of the ``index``-th check (its place among its function's checks decides its share)."""
        check = self.suite.checks[index]
        k = sum(c.function == check.function for c in self.suite.checks[:index])
        return self.shares[check.function][k]

    def grade(self, folder_or_file: Path, worker: Worker, student: str = "") -> SubmissionResult:
        """Grade the notebook in ``folder_or_file`` (a submission folder, or a notebook path)."""
        start = time.perf_counter()
        notes: list[str] = []
        path = folder_or_file
        if folder_or_file.is_dir():
            path, note = find_notebook(folder_or_file, self.suite.notebook)
            if note:
                notes.append(note)
        extra = {"sha256": fingerprint(path, self.assignment, self.points)}
        if path is None:
            return self._zero(student, f"No notebook found: expected {self.suite.notebook}.", start, extra)
        try:
            cells = read_cells(path)
        except NotebookError as err:
            return self._zero(student, f"The notebook could not be graded: {err}.", start, extra)
        if not has_nbgrader_metadata(cells):
            notes.append("the notebook has lost its nbgrader metadata; functions were found by name")
        try:
            run = worker.run_notebook(cells_to_run(cells, include_tests=False, demo_sources=self.demo_sources))
            notes += cell_notes(cells, run)
            outcomes = [run_check(check, worker, self.reference) for check in self.suite.checks]
        finally:
            worker.end_submission()
        result = self._result(student, outcomes, cells, run, notes, start, extra)
        result.cells = cells
        return result

    def _result(self, student: str, outcomes: list[TestOutcome], cells: list[Cell], run: dict, notes: list[str],
                start: float, extra: dict) -> SubmissionResult:
        failed = {o.check.function for o in outcomes if not o.passed}
        tests = []
        for index, outcome in enumerate(outcomes):
            function = outcome.check.function
            share = self._share(index)
            output = outcome.output
            if not outcome.passed:
                broken = [d for d in self.suite.depends.get(function, []) if d in failed]
                if broken:
                    output += (f"\nNote: {function} uses your {', '.join(broken)}, which fails its own tests; "
                               "fix that first.")
            tests.append(TestResult(outcome.check.name, from_units(share if outcome.passed else 0), from_units(share),
                                    output, function=function))
        score = total(t.score for t in tests)
        return SubmissionResult(student, self.assignment, score, self.max_score, time.perf_counter() - start,
                                "\n".join(f"- {n}" for n in notes), tests, extra)

    def _zero(self, student: str, reason: str, start: float, extra: dict) -> SubmissionResult:
        tests = [TestResult(c.name, 0.0, from_units(self._share(i)), reason, function=c.function)
                 for i, c in enumerate(self.suite.checks)]
        return SubmissionResult(student, self.assignment, 0.0, self.max_score, time.perf_counter() - start,
                                reason, tests, extra)


def cell_notes(cells: list[Cell], run: dict) -> list[str]:
    """One line per notebook cell that failed, naming the cell the way a student finds it."""
    by_index = {c.index: c for c in cells}
    notes = []
    for report in run.get("cells", []):
        if report.get("status") == "ok":
            continue
        cell = by_index.get(report.get("index"))
        label = f"cell {report.get('index')}"
        if cell is not None:
            label += f" ({cell.grade_id})" if cell.grade_id else f" ({_first_line(cell.source)})"
        error = report.get("error") or {}
        notes.append(f"{label} failed and was skipped: {student_error('it', error)}")
    if not run.get("alive", True):
        notes.append(f"the notebook stopped: {run.get('reason')}")
    return notes


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return re.sub(r"\s+", " ", line)[:50]


def grade_notebook(notebook: Path, assignment: str, worker: Worker, student: str = "") -> SubmissionResult:
    """Grade a single notebook file."""
    return Grader(assignment).grade(notebook, worker, student)


__all__ = ["Grader", "StudentSide", "cell_notes", "fingerprint", "grade_notebook"]

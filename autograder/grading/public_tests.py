"""``dlgrade check``: a student's own notebook against its visible tests, in the sandbox, no solutions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.checking.messages import student_error
from autograder.course import sandbox_imports
from autograder.course.notebook import Cell, NotebookError, cells_to_run, demo_cells, read_cells
from autograder.sandbox import Worker

if TYPE_CHECKING:
    from autograder.course import Assignment, Course


@dataclass
class PublicTest:
    """One visible test cell's outcome."""

    name: str
    passed: bool
    message: str = ""


def assignment_of(notebook: Path, cells: list[Cell], course: Course) -> Assignment | None:
    """The assignment of ``course`` this notebook belongs to: by its file name (tolerating renames like
    ``x (1).ipynb``), else by its graded cells; None for a notebook of no assignment of the course."""
    stem = notebook.name.split(" (")[0].removesuffix(".ipynb")
    assignments = [course.assignment(a) for a in course.assignments()]
    for assignment in assignments:
        if assignment.notebook.removesuffix(".ipynb") == stem:
            return assignment
    ids = {c.grade_id for c in cells if c.grade_id}
    for assignment in assignments:
        if set(assignment.suite.functions) <= ids:
            return assignment
    return None


def check_notebook(notebook: Path, course: Course | None = None) -> list[PublicTest]:
    """Run the notebook with its visible test cells; one :class:`PublicTest` per test cell.

    With the ``course`` it belongs to (an instructor's or TA's run), the release's own demonstration cells (plots,
    worked examples) are skipped, as in grading, and the sandbox imports what the assignment needs first; a
    student, who has no course, runs every cell."""
    cells = read_cells(notebook)
    tests = [c for c in cells if c.role == "test"]
    if not tests:
        raise NotebookError("this notebook has no visible test cells (was its nbgrader metadata removed?)")
    preload, demo, probes, hide = ("numpy",), frozenset(), {}, []
    assignment = assignment_of(notebook, cells, course) if course is not None else None
    if assignment is not None and assignment.released.is_file():
        preload, _, probes = sandbox_imports([assignment])
        demo = demo_cells(assignment.released)
    if course is not None:
        hide = course.secrets
    with Worker(hide=hide, preload=preload, probes=probes) as worker:
        run = worker.run_notebook(cells_to_run(cells, include_tests=True, demo_sources=demo))
        worker.end_submission()
    reports = {r.index: r for r in run.cells}
    results = []
    for cell in tests:
        report = reports.get(cell.index)
        if report is None:
            results.append(PublicTest(cell.grade_id or f"cell {cell.index}", False,
                                      f"did not run: {run.reason or 'the notebook stopped before it'}"))
        elif report.ok:
            results.append(PublicTest(cell.grade_id or f"cell {cell.index}", True))
        else:
            message = student_error("the test", report.error)
            if "NotImplementedError" in message:
                message = "the function it tests is not implemented yet (it raises NotImplementedError)"
            results.append(PublicTest(cell.grade_id or f"cell {cell.index}", False, message))
    return results


def format_table(notebook: Path, results: list[PublicTest]) -> str:
    """The short table ``dlgrade check`` prints."""
    width = max(len(r.name) for r in results)
    lines = [f"Public tests of {notebook.name}:"]
    for r in results:
        first, *rest = (r.message or "").splitlines() or [""]
        lines.append(f"  {'PASS' if r.passed else 'FAIL'}  {r.name.ljust(width)}  {first}".rstrip())
        lines += [f"        {' ' * width}  {line}" for line in rest]
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} of {len(results)} public tests pass. Hidden tests with other inputs decide the grade.")
    return "\n".join(lines)

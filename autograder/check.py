"""``dlgrade check``: a student's own notebook against its visible tests, in the sandbox, no solutions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import course
from .checking import student_error
from .notebook import NotebookError, cells_to_run, read_cells
from .sandbox import Worker


@dataclass
class PublicTest:
    """One visible test cell's outcome."""

    name: str
    passed: bool
    message: str = ""


def guess_assignment(notebook: Path) -> str:
    """The assignment whose notebook has this file's name (tolerating upload renames like ``x (1).ipynb``)."""
    stem = notebook.name.split(" (")[0].removesuffix(".ipynb")
    for assignment, name in course.ASSIGNMENTS.items():
        if name.removesuffix(".ipynb") == stem:
            return assignment
    raise NotebookError(f"cannot tell which assignment {notebook.name!r} belongs to; pass --assignment")


def check_notebook(notebook: Path) -> list[PublicTest]:
    """Run the notebook with its visible test cells; one :class:`PublicTest` per test cell."""
    cells = read_cells(notebook)
    tests = [c for c in cells if c.role == "test"]
    if not tests:
        raise NotebookError("this notebook has no visible test cells (was its nbgrader metadata removed?)")
    with Worker(hide=course.secret_paths(), preload=("numpy", "torch")) as worker:
        run = worker.run_notebook(cells_to_run(cells, include_tests=True))
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

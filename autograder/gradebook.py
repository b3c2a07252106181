"""Recording scores in nbgrader's gradebook, through nbgrader's own API.

After this, ``nbgrader export``, formgrader and ``nbgrader generate_feedback`` see dlgrade's scores: each
function's score goes to the auto score of its ``test_<function>`` cell. Missing students, assignments,
notebooks and cells are added from the source notebook, as ``nbgrader autograde`` would.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import course
from .notebook import read_cells
from .results import SubmissionResult


def record(db: Path, results: Sequence[SubmissionResult]) -> None:
    """Write every result's per-function scores into the gradebook at ``db``."""
    from nbgrader.api import Gradebook, MissingEntry

    _alembic_on_path()
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{db.resolve()}") as gb:
        # nbgrader's own add_submission trips SQLAlchemy's autoflush warning; it is harmless
        warnings.filterwarnings("ignore", module="sqlalchemy")
        warnings.filterwarnings("ignore", message=".*not in session.*")
        for assignment in sorted({r.assignment for r in results}):
            _ensure_assignment(gb, assignment, MissingEntry)
        for result in results:
            notebook = Path(course.notebook_name(result.assignment)).stem
            try:
                gb.find_student(result.student)
            except MissingEntry:
                gb.add_student(result.student)
            try:
                gb.find_submission(result.assignment, result.student)
            except MissingEntry:
                gb.add_submission(result.assignment, result.student)
            for function, score in result.function_scores().items():
                grade = gb.find_grade(f"test_{function}", notebook, result.assignment, result.student)
                grade.auto_score = round(score, 4)
            gb.db.commit()


def _alembic_on_path() -> None:
    """nbgrader runs the ``alembic`` script from PATH; make it the one beside this interpreter."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _ensure_assignment(gb, assignment: str, missing: type[Exception]) -> None:
    notebook = Path(course.notebook_name(assignment)).stem
    gb.update_or_create_assignment(assignment)
    try:
        gb.find_notebook(notebook, assignment)
    except missing:
        gb.add_notebook(notebook, assignment)
    for cell in read_cells(course.source_notebook(assignment)):
        if not cell.grade_id:
            continue
        cell_type = "code" if cell.kind == "code" else "markdown"
        if cell.role in ("test", "answer"):
            try:
                gb.find_grade_cell(cell.grade_id, notebook, assignment)
            except missing:
                gb.add_grade_cell(cell.grade_id, notebook, assignment, max_score=cell.points, cell_type=cell_type)
        if cell.role in ("solution", "answer"):
            try:
                gb.find_solution_cell(cell.grade_id, notebook, assignment)
            except missing:
                gb.add_solution_cell(cell.grade_id, notebook, assignment)

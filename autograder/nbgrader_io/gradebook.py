"""Recording scores in nbgrader's gradebook, through nbgrader's own API, with the flags ``nbgrader autograde`` sets.

After this, ``nbgrader export``, formgrader and ``nbgrader generate_feedback`` see dlgrade's scores: each function's
exact score is the auto score of its ``test_<function>`` cell, which then needs no manual grade; a written answer
needs one, unless the student left it as released, which scores 0 with the comment "No response." (as autograde
does). The submission's timestamp is the one in its ``timestamp.txt``, so formgrader counts it as autograded.
Missing students, assignments, notebooks and cells are added from the course's notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from autograder.course.definition import CourseNotebook
from autograder.course.nbgrader_api import open_gradebook
from autograder.reporting.results import SubmissionResult

NO_RESPONSE = "No response."  # nbgrader's auto comment on a cell left as released


def record(db: Path, results: Sequence[SubmissionResult], notebooks: Mapping[str, CourseNotebook]) -> None:
    """Write every result's scores and flags into the gradebook at ``db``; ``notebooks`` by assignment."""
    from nbgrader.api import MissingEntry
    from nbgrader.utils import parse_utc

    with open_gradebook(db) as gb:
        for assignment in sorted({r.assignment for r in results}):
            _ensure_assignment(gb, notebooks[assignment], MissingEntry)
        for result in results:
            nb = notebooks[result.assignment]
            info = result.extra.get("nbgrader") if isinstance(result.extra.get("nbgrader"), dict) else {}
            timestamp = info.get("timestamp")
            try:
                gb.find_student(result.student)
            except MissingEntry:
                gb.add_student(result.student)
            gb.update_or_create_submission(result.assignment, result.student,
                                           timestamp=parse_utc(timestamp) if timestamp else None)
            scores = result.function_scores()
            unanswered = set(info.get("unanswered", []))
            for cell in nb.cells:
                if cell.graded:
                    grade = gb.find_grade(cell.grade_id, nb.name, result.assignment, result.student)
                    if cell.role == "test":
                        grade.auto_score = scores.get(cell.grade_id.removeprefix("test_"), 0.0)
                    elif cell.grade_id in unanswered:
                        grade.auto_score = 0.0
                    else:
                        grade.auto_score = None
                    # as autograde: a TA's earlier manual score is kept and flagged for review
                    grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
                if cell.has_response:
                    comment = gb.find_comment(cell.grade_id, nb.name, result.assignment, result.student)
                    comment.auto_comment = NO_RESPONSE if cell.grade_id in unanswered else None
            gb.db.commit()


def _ensure_assignment(gb, nb: CourseNotebook, missing: type[Exception]) -> None:
    gb.update_or_create_assignment(nb.assignment)
    try:
        gb.find_notebook(nb.name, nb.assignment)
    except missing:
        gb.add_notebook(nb.name, nb.assignment)
    for cell in nb.cells:
        if cell.role in ("test", "answer", "manual"):
            try:
                gb.find_grade_cell(cell.grade_id, nb.name, nb.assignment)
            except missing:
                gb.add_grade_cell(cell.grade_id, nb.name, nb.assignment, max_score=cell.points, cell_type=cell.kind)
        if cell.role == "task":
            try:
                gb.find_task_cell(cell.grade_id, nb.name, nb.assignment)
            except missing:
                gb.add_task_cell(cell.grade_id, nb.name, nb.assignment, max_score=cell.points, cell_type=cell.kind)
        if cell.role in ("solution", "answer"):
            try:
                gb.find_solution_cell(cell.grade_id, nb.name, nb.assignment)
            except missing:
                gb.add_solution_cell(cell.grade_id, nb.name, nb.assignment)
        try:
            gb.find_source_cell(cell.grade_id, nb.name, nb.assignment)
        except missing:
            gb.add_source_cell(cell.grade_id, nb.name, nb.assignment, cell_type=cell.kind, locked=cell.locked,
                               source=cell.source, checksum=cell.checksum)

"""Leaving a course the way ``nbgrader autograde`` would.

After grading, each submission gets ``autograded/<student>/<assignment>/<notebook>.ipynb``: the submission as graded,
read-only cells restored as released, nbgrader's cell metadata, and each test cell's output replaced by dlgrade's
per-check results and hints (what ``nbgrader generate_feedback`` turns into the student's feedback page, and what
formgrader shows), beside the submission's ``timestamp.txt`` and ``submission_secret.txt``. Nothing here runs
nbgrader's converters: it is JSON in, JSON out.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.course.definition import CourseNotebook, GradedCell
from autograder.course.notebook import Cell, read_cells
from autograder.course.points import format_points, total
from autograder.reporting.files import write_atomic
from autograder.reporting.results import SubmissionResult, TestResult

if TYPE_CHECKING:
    from autograder.course import Assignment

SMALL_FILE_BYTES = 64 * 1024  # timestamp.txt, submission_secret.txt


def write_autograded(assignment: Assignment, submission: Path, result: SubmissionResult, nb: CourseNotebook) -> Path:
    """Write ``autograded/<student>/<assignment>/<notebook>.ipynb`` with its timestamp and secret, and note in
    ``result.extra["nbgrader"]`` what the gradebook needs (timestamp, unanswered cells)."""
    folder = assignment.course.folder("autograded") / result.student / result.assignment
    timestamp = read_small(submission / "timestamp.txt")
    secret = read_small(submission / "submission_secret.txt")
    released = read_cells(assignment.require_release())
    try:
        document, unanswered = autograded_notebook(result.cells if result.cells is not None else released, result, nb)
    except Exception as err:  # noqa: BLE001 - whatever a submission holds, it gets an autograded notebook
        result.notes.append(f"the graded notebook shows the release's cells: yours could not be copied into it "
                            f"({type(err).__name__})")
        document, unanswered = autograded_notebook(released, result, nb)
    result.extra["nbgrader"] = {"notebook": nb.name, "timestamp": valid_timestamp(timestamp),
                                "unanswered": sorted(unanswered)}
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.ipynb"):
        if path.name != f"{nb.name}.ipynb":
            path.unlink()
    write_atomic(folder / f"{nb.name}.ipynb", json.dumps(document, indent=1))
    for name, text in (("timestamp.txt", timestamp), ("submission_secret.txt", secret)):
        if text is None:
            (folder / name).unlink(missing_ok=True)
        else:
            write_atomic(folder / name, text)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder / f"{nb.name}.ipynb"


def autograded_notebook(cells: list[Cell], result: SubmissionResult, nb: CourseNotebook) -> tuple[dict, set[str]]:
    """The graded notebook (nbformat 4 JSON) and the grade_ids of cells the student left as released."""
    out, seen, unanswered = _copy_cells(cells, nb)
    _restore_deleted(out, seen, unanswered, nb)
    _report_in_test_cells(out, result, nb)
    for index, cell in enumerate(out):
        cell["id"] = f"cell-{index}"
    return {"cells": out, "metadata": nb.metadata, "nbformat": 4, "nbformat_minor": 5}, unanswered


def _copy_cells(cells: list[Cell], nb: CourseNotebook) -> tuple[list[dict], set[str], set[str]]:
    """The submission's cells, graded ones with nbgrader's metadata and locked ones as released."""
    out: list[dict] = []
    seen: set[str] = set()
    unanswered: set[str] = set()
    for cell in cells:
        ref = nb.cell(cell.grade_id)
        if ref is None or ref.grade_id in seen:  # a student's cell, or a copy of a graded one: no nbgrader role
            out.append(_plain(cell.kind, cell.source))
            continue
        seen.add(ref.grade_id)
        source = ref.source if ref.locked else cell.source
        if ref.has_response and source.strip() == ref.source.strip():
            unanswered.add(ref.grade_id)
        out.append(_graded(ref, source))
    return out, seen, unanswered


def _restore_deleted(out: list[dict], seen: set[str], unanswered: set[str], nb: CourseNotebook) -> None:
    """Cells the student deleted come back as released (a deleted written answer is unanswered)."""
    order = [c.grade_id for c in nb.cells]
    for ref in nb.cells:
        if ref.grade_id in seen or not (ref.graded or ref.role == "solution"):
            continue
        if ref.has_response:
            unanswered.add(ref.grade_id)
        if ref.role == "solution":
            continue
        before = [g for g in order[: order.index(ref.grade_id)] if g in seen]
        at = next((i + 1 for i, c in enumerate(out) if _grade_id(c) == before[-1]), len(out)) if before else len(out)
        out.insert(at, _graded(ref, ref.source))
        seen.add(ref.grade_id)


def _report_in_test_cells(out: list[dict], result: SubmissionResult, nb: CourseNotebook) -> None:
    """Each test cell's output becomes dlgrade's report for its function (the notebook's notes go with the first)."""
    by_function: dict[str, list[TestResult]] = {}
    for test in result.tests:
        by_function.setdefault(test.graded_function(), []).append(test)
    notes = result.output
    for cell in out:
        ref = nb.cell(_grade_id(cell))
        if ref is not None and ref.role == "test":
            function = ref.grade_id.removeprefix("test_")
            cell["outputs"] = [_stream(test_report(function, by_function.get(function, []), notes))]
            notes = ""


def test_report(function: str, tests: list[TestResult], notes: str = "") -> str:
    """What a test cell shows after grading: the function's points, each check, and what to fix."""
    got, full = total(t.score for t in tests), total(t.max_score for t in tests)
    lines = [f"dlgrade: {format_points(got)} of {format_points(full)} points for {function}"]
    for test in tests:
        mark = "passed" if test.score >= test.max_score else "FAILED"
        lines.append(f"  {mark}  {test.name}  ({format_points(test.score)} / {format_points(test.max_score)})")
        lines += [f"          {line}" for line in test.output.splitlines()]
    if not tests:
        lines.append("  (no checks ran for this cell)")
    if notes:
        lines += ["", "Notes on the whole notebook:", *notes.splitlines()]
    return "\n".join(lines) + "\n"


def _grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _plain(kind: str, source: str) -> dict:
    if kind == "code":
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
    return {"cell_type": kind if kind in ("markdown", "raw") else "markdown", "metadata": {}, "source": source}


def _graded(ref: GradedCell, source: str) -> dict:
    cell = _plain(ref.kind, source)
    cell["metadata"] = {"nbgrader": ref.nbgrader_metadata()}
    if ref.locked:
        cell["metadata"].update(deletable=False, editable=False)
    return cell


def _stream(text: str) -> dict:
    return {"name": "stdout", "output_type": "stream", "text": text}


def read_small(path: Path) -> str | None:
    """A small text file from a submission folder (``timestamp.txt``): regular files only, never through a link,
    at most :data:`SMALL_FILE_BYTES`; None when absent or unfit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, SMALL_FILE_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > SMALL_FILE_BYTES:
        return None
    return data.decode("utf-8", errors="replace")


def is_current(autograded: Path, submission: Path, result: SubmissionResult) -> bool:
    """Whether the autograded notebook of a stored result is in the course's ``autograded`` folder and from the
    submission's current timestamp."""
    info = result.extra.get("nbgrader")
    if not isinstance(info, dict):
        return False
    folder = autograded / result.student / result.assignment
    if not (folder / f"{info.get('notebook')}.ipynb").is_file():
        return False
    return valid_timestamp(read_small(submission / "timestamp.txt")) == info.get("timestamp")


def valid_timestamp(text: str | None) -> str | None:
    """The text of a ``timestamp.txt`` if nbgrader can read it as a time, else None."""
    text = text.strip() if text else ""
    if not text:
        return None
    from nbgrader.utils import parse_utc  # imported only for a course that has timestamps: it costs a second

    try:
        parse_utc(text)
    except (ValueError, OverflowError, TypeError):
        return None
    return text

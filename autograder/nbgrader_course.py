"""The course's own nbgrader notebook, and leaving a course the way ``nbgrader autograde`` would.

Points, cells and notebooks come from the course folder: ``COURSE/source/<assignment>/<notebook>``, checked against
the course's ``gradebook.db`` when it has one. A course notebook whose graded cells do not match the assignment's
checks is a :class:`~autograder.course.CourseError` naming the cell.

After grading, each submission gets ``autograded/<student>/<assignment>/<notebook>.ipynb``: the submission as graded,
read-only cells restored as released, nbgrader's cell metadata, and each test cell's output replaced by dlgrade's
per-check results and hints (what ``nbgrader generate_feedback`` turns into the student's feedback page, and what
formgrader shows), beside the submission's ``timestamp.txt`` and ``submission_secret.txt``. Nothing here runs
nbgrader's converters: it is JSON in, JSON out.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import course
from .course import Assignment
from .notebook import Cell, read_cells
from .points import format_points, total
from .reports import write_atomic
from .results import SubmissionResult, TestResult
from .suite import Suite

SMALL_FILE_BYTES = 64 * 1024  # timestamp.txt, submission_secret.txt
_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?### END SOLUTION[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"


@dataclass(frozen=True)
class GradedCell:
    """A cell nbgrader tracks, as the course defines it."""

    grade_id: str
    kind: str  # "code" | "markdown"
    role: str  # "test" (autograded) | "answer" (written, graded by hand) | "manual" | "solution" | "task" | "locked"
    points: float = 0.0
    source: str = ""  # as released: solutions stubbed, hidden tests removed
    checksum: str | None = None  # nbgrader's checksum of the released cell

    @property
    def graded(self) -> bool:
        return self.role in ("test", "answer", "manual", "task")

    @property
    def locked(self) -> bool:
        return self.role in ("test", "manual", "locked")

    @property
    def has_response(self) -> bool:
        """Whether the student writes in this cell (nbgrader keeps a comment for it)."""
        return self.role in ("answer", "solution", "task")

    def nbgrader_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"grade": self.role in ("test", "answer", "manual"), "grade_id": self.grade_id,
                                "locked": self.locked, "schema_version": 3,
                                "solution": self.role in ("answer", "solution"), "task": self.role == "task"}
        if self.graded:
            meta["points"] = self.points
        if self.checksum:
            meta["checksum"] = self.checksum
        return meta


@dataclass(frozen=True)
class CourseNotebook:
    """One assignment's notebook as the course defines it: its graded cells in order, and where they came from."""

    assignment: str
    name: str  # nbgrader's notebook id: the file name without .ipynb
    cells: tuple[GradedCell, ...]
    origin: str  # the file or gradebook the points come from, for messages
    metadata: dict = field(default_factory=dict, compare=False)  # the released notebook's metadata (kernelspec)

    @property
    def points(self) -> dict[str, float]:
        """Points of each graded function, from its ``test_<function>`` cell."""
        return {c.grade_id.removeprefix("test_"): c.points for c in self.cells if c.role == "test"}

    def cell(self, grade_id: str | None) -> GradedCell | None:
        return next((c for c in self.cells if c.grade_id == grade_id), None) if grade_id else None


# -- where the course's notebook comes from ------------------------------------------------------------------------

def course_notebook(assignment: Assignment) -> CourseNotebook:
    """The notebook of ``assignment`` as its course defines it (source/, and the gradebook when the course has one:
    the two must agree), checked against the assignment's checks."""
    released = _read_notebook(assignment.require_release())
    chosen = _from_notebook(assignment.id, assignment.source, _released_cells(released))
    from_gradebook = _from_gradebook(assignment.course.root / "gradebook.db", assignment.id, assignment.notebook,
                                     chosen)
    if from_gradebook is not None:
        _agree(chosen, from_gradebook)
        stored = {c.grade_id: c for c in from_gradebook.cells}  # released sources and checksums as nbgrader stored them
        chosen = _with_cells(chosen, [_released_from(c, stored.get(c.grade_id)) for c in chosen.cells])
    _check_against(assignment.suite, chosen)
    return CourseNotebook(chosen.assignment, chosen.name, chosen.cells, chosen.origin, dict(released.metadata))


def _with_cells(nb: CourseNotebook, cells: Iterable[GradedCell]) -> CourseNotebook:
    return CourseNotebook(nb.assignment, nb.name, tuple(cells), nb.origin, nb.metadata)


def _released_from(cell: GradedCell, stored: GradedCell | None) -> GradedCell:
    if stored is None or (stored.checksum is None and not stored.source):  # the gradebook has no source cell for it
        return cell
    return GradedCell(cell.grade_id, cell.kind, cell.role, cell.points, stored.source, stored.checksum)


def _role(meta: dict, kind: str) -> str | None:
    if meta.get("task"):
        return "task"
    if meta.get("grade") and meta.get("solution"):
        return "answer"
    if meta.get("grade"):
        return "test" if kind == "code" else "manual"
    if meta.get("solution"):
        return "solution"
    if meta.get("locked"):
        return "locked"
    return None


class _Node(dict):
    """A notebook's JSON with attribute access, as nbformat gives it (without importing nbformat: 1.2 s)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _read_notebook(path: Path) -> _Node:
    """A course notebook (nbformat 4 JSON, the instructor's) with each cell's source as one string."""

    def node(value: Any) -> Any:
        if isinstance(value, dict):
            return _Node({k: node(v) for k, v in value.items()})
        return [node(v) for v in value] if isinstance(value, list) else value

    nb = node(json.loads(Path(path).read_text(encoding="utf-8")))
    for cell in nb.get("cells", []):
        cell.setdefault("metadata", _Node())
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return nb


def _released_cells(released: _Node) -> dict[str, tuple[str, str | None]]:
    """grade_id -> (source, checksum) of a released notebook's nbgrader cells."""
    cells = {}
    for cell in released.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id"):
            cells[meta["grade_id"]] = (cell.source, meta.get("checksum"))
    return cells


def _release_source(source: str, kind: str, role: str) -> str:
    """What a release makes of a source cell (for a cell the course's release does not have yet)."""
    if role in ("answer", "solution", "task"):
        if kind == "markdown":
            return TEXT_STUB if role != "task" else source
        return _SOLUTION.sub(lambda m: "\n".join(m.group(1) + line for line in CODE_STUB.splitlines()), source)
    return strip_hidden_tests(source)


def strip_hidden_tests(source: str) -> str:
    """A test cell as released: the lines from ``### BEGIN HIDDEN TESTS`` to ``### END HIDDEN TESTS`` removed, as
    nbgrader's ClearHiddenTests removes them."""
    if "### BEGIN HIDDEN TESTS" not in source:
        return source
    kept, hidden = [], False
    for line in source.splitlines():
        if line.strip().startswith("### BEGIN HIDDEN TESTS"):
            hidden = True
        elif hidden and line.strip().startswith("### END HIDDEN TESTS"):
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept)


def _from_notebook(assignment: str, path: Path, released: dict[str, tuple[str, str | None]]) -> CourseNotebook:
    try:
        nb = _read_notebook(path)
    except Exception as err:
        raise course.CourseError(f"{path} could not be read as a notebook ({type(err).__name__}: {err})") from err
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {}) or {}
        role = _role(meta, cell.cell_type)
        if role is None or not meta.get("grade_id"):
            continue
        try:
            points = float(meta.get("points", 0) or 0)
        except (TypeError, ValueError):
            raise course.CourseError(f"{path}: cell {meta['grade_id']!r} has points {meta.get('points')!r}, "
                                     "which is not a number") from None
        source, checksum = released.get(meta["grade_id"], (None, None))
        if source is None:
            source = _release_source(cell.source, cell.cell_type, role)
        cells.append(GradedCell(meta["grade_id"], cell.cell_type, role, points, source, checksum))
    return CourseNotebook(assignment, path.stem, tuple(cells), str(path))


def _from_gradebook(db: Path, assignment: str, filename: str, ours: CourseNotebook) -> CourseNotebook | None:
    """The notebook as the course's gradebook records it (``nbgrader generate_assignment`` with a database), or None
    when the gradebook does not know it."""
    if not db.is_file():
        return None
    from nbgrader.api import Gradebook, MissingEntry

    from .gradebook import alembic_on_path, quiet_sqlalchemy

    alembic_on_path()
    name = Path(filename).stem
    with quiet_sqlalchemy(), Gradebook(f"sqlite:///{db.resolve()}") as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            return None
        notebooks = {n.name: n for n in found.notebooks}
        others = [n for n, nb in notebooks.items() if n != name and (nb.grade_cells or nb.task_cells)]
        if others:
            raise course.CourseError(f"the gradebook {db} has graded notebooks {', '.join(others)} in {assignment}, "
                                     f"but dlgrade grades only {filename}")
        if name not in notebooks:
            return None
        notebook = notebooks[name]
        grades = {c.name: (c.max_score, c.cell_type) for c in notebook.grade_cells}
        tasks = {c.name: c.max_score for c in notebook.task_cells}
        solutions = {c.name for c in notebook.solution_cells}
        sources = {c.name: (c.cell_type, c.locked, c.source or "", c.checksum) for c in notebook.source_cells}
    if not grades and not solutions:
        return None
    order = [c.grade_id for c in ours.cells]
    names = sorted(set(grades) | set(solutions) | set(tasks) | set(sources),
                   key=lambda n: (order.index(n) if n in order else len(order), n))
    cells = []
    for n in names:
        known = ours.cell(n)  # a cell without a source cell in the gradebook: as the course's release has it
        kind, locked, source, checksum = sources.get(n, (grades.get(n, (0, known.kind if known else "code"))[1],
                                                         known.locked if known else False,
                                                         known.source if known else "",
                                                         known.checksum if known else None))
        meta = {"grade": n in grades, "solution": n in solutions, "task": n in tasks, "locked": locked}
        role = _role(meta, kind)
        if role is None:
            continue
        points = grades[n][0] if n in grades else tasks.get(n, 0.0)
        cells.append(GradedCell(n, kind, role, float(points), strip_hidden_tests(source), checksum))
    return CourseNotebook(assignment, name, tuple(cells), f"the gradebook {db}")


def _agree(source: CourseNotebook, gradebook: CourseNotebook) -> None:
    """The course's source and its gradebook must give the same graded cells and points."""
    ours = {c.grade_id: c.points for c in source.cells if c.graded}
    theirs = {c.grade_id: c.points for c in gradebook.cells if c.graded}
    for grade_id in sorted(set(ours) | set(theirs)):
        if ours.get(grade_id) != theirs.get(grade_id):
            def say(p: float | None) -> str:
                return "no such graded cell" if p is None else f"{format_points(p)} points"

            raise course.CourseError(
                f"cell {grade_id!r} of {source.assignment}: {source.origin} gives {say(ours.get(grade_id))}, "
                f"{gradebook.origin} {say(theirs.get(grade_id))}. Run `nbgrader generate_assignment "
                f"{source.assignment} --force` in the course folder so that they agree, then grade again.")


def _check_against(suite: Suite, nb: CourseNotebook) -> None:
    """Every graded function has its ``test_<function>`` cell, and every autograded cell is one of those."""
    expected = {f"test_{f}" for f in suite.functions}
    tests = [c for c in nb.cells if c.role == "test"]
    for cell in tests:
        if cell.grade_id not in expected:
            raise course.CourseError(
                f"{nb.origin}: cell {cell.grade_id!r} is an autograded test cell, but the checks of "
                f"{nb.assignment} have nothing for it (they grade {', '.join(sorted(expected))}). Make it a manually "
                "graded cell, remove it, or add checks for it to dlgrade.")
    missing = sorted(expected - {c.grade_id for c in tests})
    if missing:
        raise course.CourseError(
            f"{nb.origin}: no autograded test cell {missing[0]!r} for {missing[0].removeprefix('test_')}, which the "
            f"checks of {nb.assignment} grade (missing: {', '.join(missing)}). Restore the cell (a read-only "
            "'Autograder tests' cell with that ID) or install the checks that match this course.")


# -- the autograded notebook ---------------------------------------------------------------------------------------

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

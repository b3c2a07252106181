"""The course's own nbgrader notebook: its graded cells, their roles and points, as the course defines them.

The notebook is ``COURSE/source/<assignment>/<notebook>``, checked against the course's ``gradebook.db`` when it has
one (the two must agree) and against the assignment's checks: a course notebook whose graded cells do not match them
is a :class:`~autograder.course.CourseError` naming the cell. This is the one source of points: each function's come
from its ``test_<function>`` cell (``Assignment.points``), split exactly over its checks (``Assignment.check_units``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.course.errors import CourseError
from autograder.course.notebook import cell_role
from autograder.course.points import format_points

if TYPE_CHECKING:
    from autograder.checking.suite import Suite
    from autograder.course.folder import Assignment

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
    def function_points(self) -> dict[str, float]:
        """Points of each graded function, from its ``test_<function>`` cell (``Assignment.points``)."""
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
        raise CourseError(f"{path} could not be read as a notebook ({type(err).__name__}: {err})") from err
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {}) or {}
        role = cell_role(meta, cell.cell_type)
        if role == "plain" or not meta.get("grade_id"):
            continue
        try:
            points = float(meta.get("points", 0) or 0)
        except (TypeError, ValueError):
            raise CourseError(f"{path}: cell {meta['grade_id']!r} has points {meta.get('points')!r}, "
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
    from nbgrader.api import MissingEntry

    from autograder.course.nbgrader_api import open_gradebook

    name = Path(filename).stem
    with open_gradebook(db) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            return None
        notebooks = {n.name: n for n in found.notebooks}
        others = [n for n, nb in notebooks.items() if n != name and (nb.grade_cells or nb.task_cells)]
        if others:
            raise CourseError(f"the gradebook {db} has graded notebooks {', '.join(others)} in {assignment}, "
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
        role = cell_role(meta, kind)
        if role == "plain":
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

            raise CourseError(
                f"cell {grade_id!r} of {source.assignment}: {source.origin} gives {say(ours.get(grade_id))}, "
                f"{gradebook.origin} {say(theirs.get(grade_id))}. Run `nbgrader generate_assignment "
                f"{source.assignment} --force` in the course folder so that they agree, then grade again.")


def _check_against(suite: Suite, nb: CourseNotebook) -> None:
    """Every graded function has its ``test_<function>`` cell, and every autograded cell is one of those."""
    expected = {f"test_{f}" for f in suite.functions}
    tests = [c for c in nb.cells if c.role == "test"]
    for cell in tests:
        if cell.grade_id not in expected:
            raise CourseError(
                f"{nb.origin}: cell {cell.grade_id!r} is an autograded test cell, but the checks of "
                f"{nb.assignment} have nothing for it (they grade {', '.join(sorted(expected))}). Make it a manually "
                "graded cell, remove it, or add checks for it to dlgrade.")
    missing = sorted(expected - {c.grade_id for c in tests})
    if missing:
        raise CourseError(
            f"{nb.origin}: no autograded test cell {missing[0]!r} for {missing[0].removeprefix('test_')}, which the "
            f"checks of {nb.assignment} grade (missing: {', '.join(missing)}). Restore the cell (a read-only "
            "'Autograder tests' cell with that ID) or install the checks that match this course.")

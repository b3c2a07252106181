"""Release: the committed student notebooks equal a fresh nbgrader release and give nothing away."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import COURSE, release_course

from autograder.course.notebook import read_cells

# its module fixtures build a course (or an image) once: every test of this file runs in one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("release")

ASSIGNMENTS = COURSE.assignments()


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory) -> Path:
    """Every assignment released by stock nbgrader into a scratch copy of the course."""
    return release_course(tmp_path_factory.mktemp("release"), gradebook=False)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_equals_a_fresh_nbgrader_release(fresh_release, assignment) -> None:
    name = COURSE.assignment(assignment).notebook
    fresh = json.loads((fresh_release / "assignments" / assignment / name).read_text())
    committed = json.loads(COURSE.assignment(assignment).released.read_text())
    assert committed == fresh, f"assignments/{assignment} is stale: run `nbgrader generate_assignment {assignment}`"


def _solution_lines(assignment: str) -> set[str]:
    """Substantive lines of the source's solution and hidden-test regions, and of its model written answers."""
    lines = set()
    for cell in read_cells(COURSE.assignment(assignment).source):
        for region in re.findall(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)(.*?)### END", cell.source, re.DOTALL):
            lines |= {ln.strip() for ln in region.splitlines()}
        if cell.role == "answer":
            lines |= {ln.strip() for ln in cell.source.splitlines()}
    return {ln for ln in lines if len(ln) >= 24 and not ln.startswith("#")}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_contains_no_solution_or_hidden_test(assignment) -> None:
    text = COURSE.assignment(assignment).released.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "run_hidden_tests", "nbgrader_bridge"):
        assert marker not in text
    released = {ln.strip() for c in read_cells(COURSE.assignment(assignment).released) for ln in c.source.splitlines()}
    leaked = _solution_lines(assignment) & released
    assert not leaked, f"solution lines in the release: {sorted(leaked)[:5]}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_a_stub_and_a_test_cell_for_every_graded_function(assignment) -> None:
    cells = read_cells(COURSE.assignment(assignment).released)
    ids = {c.grade_id for c in cells}
    for function in COURSE.assignment(assignment).suite.functions:
        assert function in ids and f"test_{function}" in ids
        stub = next(c for c in cells if c.grade_id == function)
        assert "raise NotImplementedError()" in stub.source

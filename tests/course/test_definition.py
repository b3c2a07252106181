"""The course definition: each function's points come from the course's own source notebook (checked against its
gradebook when it has one, and against the assignment's checks), split exactly over its checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import A1, COURSE, copy_course

from autograder.authoring import samples
from autograder.course import Course, CourseError, points
from autograder.course.definition import course_notebook
from autograder.grading.grader import Grader

NAME = A1.notebook




# -- exact points --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("pts", "n"), [(2, 3), (1, 3), (3, 7), (2.5, 4), (1, 1), (0, 2), (12, 9)])
def test_shares_add_up_exactly_and_differ_by_at_most_one_unit(pts: float, n: int) -> None:
    """Do a cell's points split over its checks add up to exactly its points, as evenly as units allow?"""
    shares = points.split(pts, n)
    assert len(shares) == n and sum(shares) == points.to_units(pts)
    assert max(shares) - min(shares) <= 1
    assert points.total(points.from_units(s) for s in shares) == pts


@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_every_functions_checks_split_exactly_its_cells_points(assignment: str) -> None:
    """For every assignment of the course, do the units of each function's graded checks add up to its test cell's
    points, with none for an advisory check?"""
    definition = COURSE.assignment(assignment)
    units = dict(zip(map(id, definition.suite.checks), definition.check_units))
    for function, pts in definition.points.items():
        graded = [c for c in definition.suite.checks if c.function == function and not c.advisory]
        assert graded and points.from_units(sum(units[id(c)] for c in graded)) == pts, function
    assert all(units[id(c)] == 0 for c in definition.suite.checks if c.advisory)
    assert Grader(definition).max_score == sum(definition.points.values())


def test_format_points_shows_at_most_four_decimals() -> None:
    assert [points.format_points(x) for x in (12, 12.0001, 1.33333, 0.0, 2.5)] == ["12", "12.0001", "1.3333", "0",
                                                                                      "2.5"]


# -- the course's own notebook -------------------------------------------------------------------------------------

def course_with_source(root: Path, edit=None) -> Course:
    """A course folder defining a1 alone as the built-in course does, its source notebook ``edit``-ed in place (not
    released again)."""
    course = copy_course(root, [A1.id])
    path = course.folder("source") / A1.id / NAME
    nb = nbformat.read(path, as_version=4)
    if edit:
        edit(nb)
        nbformat.write(nb, path)
    return course


def cell_by_id(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_points_come_from_the_courses_source_notebook(tmp_path) -> None:
    """An instructor who gives test_add_intercept 3 points in the course's source gets 3 points for it."""
    course = course_with_source(tmp_path, lambda nb: cell_by_id(nb, "test_add_intercept").metadata.nbgrader.update(
        points=3))
    assignment = course.assignment(A1.id)
    nb = course_notebook(assignment)
    assert nb.function_points["add_intercept"] == 3 and nb.origin == str(tmp_path.resolve() / "source" / A1.id / NAME)
    assert assignment.points == nb.function_points
    assert Grader(assignment).max_score == sum(A1.points.values()) + 2
    assert course_notebook(A1).function_points == A1.points and course_notebook(A1).origin == str(A1.source)


def test_a_course_without_the_assignments_source_notebook_does_not_define_it(tmp_path) -> None:
    """No copy installed with dlgrade stands in: an assignment is what the course's source/ holds. Its release,
    reference and checks alone define nothing, and the error says where the notebook belongs."""
    course = course_with_source(tmp_path)
    (course.folder("source") / A1.id / NAME).unlink()
    assert course.assignments() == []
    with pytest.raises(CourseError, match=r"has no assignment 'a1_linear_regression' \(no notebook in .*source/"
                                          r"a1_linear_regression\); it defines: none"):
        course.assignment(A1.id)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda nb: cell_by_id(nb, "test_add_intercept").metadata.nbgrader.update(grade_id="test_add_bias"),
     "cell 'test_add_bias' is an autograded test cell, but the checks of a1_linear_regression have nothing for it"),
    (lambda nb: nb.cells.remove(cell_by_id(nb, "test_mse_loss")),
     "no autograded test cell 'test_mse_loss' for mse_loss"),
    (lambda nb: cell_by_id(nb, "test_mse_loss").metadata.nbgrader.update(points="two"),
     "cell 'test_mse_loss' has points 'two', which is not a number"),
])
def test_a_course_notebook_that_does_not_match_the_checks_is_an_error_naming_the_cell(tmp_path, edit,
                                                                                        message) -> None:
    """A renamed, missing or damaged test cell is never silently regraded with other points."""
    course = course_with_source(tmp_path, edit)
    with pytest.raises(CourseError, match="linear_regression.ipynb") as caught:
        course_notebook(course.assignment(A1.id))
    assert message in str(caught.value)


def test_cli_reports_a_mismatched_course_notebook_with_exit_status_2(tmp_path) -> None:
    root = course_with_source(tmp_path, lambda nb: nb.cells.remove(cell_by_id(nb, "test_mse_loss"))).root
    samples.write(samples.build(A1), root / "submitted" / "ada" / A1.id / NAME)
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(root)], capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no autograded test cell 'test_mse_loss'" in done.stderr and NAME in done.stderr
    assert not (root / "graded").exists()


def test_another_notebook_in_the_courses_source_folder_is_an_error(tmp_path) -> None:
    """One notebook per assignment: a second one in source/<id>/ is refused, naming both, never guessed between."""
    course = course_with_source(tmp_path)
    source = course.folder("source") / A1.id
    shutil.copy(source / NAME, source / "bonus.ipynb")
    with pytest.raises(CourseError, match=r"source/a1_linear_regression holds 2 notebooks \(bonus.ipynb, "
                                          r"linear_regression.ipynb\): dlgrade grades one notebook per assignment"):
        course.assignment(A1.id)
    samples.write(samples.build(A1), course.root / "submitted" / "ada" / A1.id / NAME)
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(course.root)], capture_output=True,
                          text=True)
    assert done.returncode == 2 and "one notebook per assignment" in done.stderr, done.stdout + done.stderr
    assert not (course.root / "graded").exists()


def test_a_renamed_course_notebook_not_released_again_is_an_error(tmp_path) -> None:
    """The notebook's name is the course's own; renamed in source/ but not released again, its release is missing:
    an error saying how to release it, nothing graded under the old name."""
    course = course_with_source(tmp_path)
    source = course.folder("source") / A1.id
    (source / NAME).rename(source / "linreg.ipynb")
    assignment = course.assignment(A1.id)
    assert assignment.notebook == "linreg.ipynb"
    with pytest.raises(CourseError, match=r"the release .*assignments/a1_linear_regression/linreg.ipynb is missing; "
                                          r"run `nbgrader generate_assignment a1_linear_regression --force`"):
        course_notebook(assignment)


def course_with_gradebook(root: Path, points: dict[str, float], extra_notebook: bool = False) -> Course:
    """A course folder defining a1 as the built-in course does, with a gradebook filled through nbgrader's API (no
    source cells) that gives the cells ``points`` (by grade_id) and otherwise the source's points."""
    from autograder.course.nbgrader_api import open_gradebook

    course = course_with_source(root)
    with open_gradebook(root / "gradebook.db") as gb:
        gb.add_assignment(A1.id)
        gb.add_notebook("linear_regression", A1.id)
        for cell in course_notebook(A1).cells:
            if cell.role in ("test", "answer"):
                pts = points.get(cell.grade_id, cell.points)
                gb.add_grade_cell(cell.grade_id, "linear_regression", A1.id, max_score=pts, cell_type=cell.kind)
            if cell.role in ("answer", "solution"):
                gb.add_solution_cell(cell.grade_id, "linear_regression", A1.id)
        if extra_notebook:
            gb.add_notebook("bonus", A1.id)
            gb.add_grade_cell("test_bonus", "bonus", A1.id, max_score=1, cell_type="code")
    return course


@pytest.mark.slow
def test_points_come_from_the_source_and_a_gradebook_that_disagrees_is_an_error(tmp_path) -> None:
    """A course with a gradebook: points come from its source notebook, and the gradebook must agree with it; one
    that gives a cell other points is an error naming the cell and how to make them agree. An agreeing gradebook
    without source cells keeps the released cells of the course's release."""
    agreeing = course_with_gradebook(tmp_path / "agrees", {}).assignment(A1.id)
    nb = course_notebook(agreeing)
    assert nb.function_points == A1.points and nb.origin == str(agreeing.source)
    released = nbformat.read(agreeing.released, as_version=4)
    assert nb.cell("test_add_intercept").source == cell_by_id(released, "test_add_intercept").source
    disagreeing = course_with_gradebook(tmp_path / "disagrees", {"test_add_intercept": 3}).assignment(A1.id)
    with pytest.raises(CourseError, match=r"cell 'test_add_intercept' of a1_linear_regression: .*linear_regression"
                                          r"\.ipynb gives 1 points, the gradebook .* 3 points\. Run `nbgrader "
                                          r"generate_assignment a1_linear_regression --force`"):
        course_notebook(disagreeing)


@pytest.mark.slow
def test_a_gradebook_with_another_graded_notebook_is_an_error(tmp_path) -> None:
    with pytest.raises(CourseError, match="graded notebooks bonus in a1_linear_regression, but dlgrade grades only "
                                          "linear_regression.ipynb"):
        course_notebook(course_with_gradebook(tmp_path, {}, extra_notebook=True).assignment(A1.id))

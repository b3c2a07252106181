"""Stock nbgrader and dlgrade agree: full marks for the reference, zero for the release, same totals;
and after ``dlgrade grade`` nbgrader's own ``export`` shows dlgrade's scores."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from conftest import A1, COURSE, TEST_LIMITS, nbgrader, release_course

from autograder.authoring import samples
from autograder.course import Course
from autograder.grading.batch import grade_course
from autograder.reporting.results import read_result

# its module fixtures build a course (or an image) once: every test of this file runs in one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("nbgrader_parity")

ASSIGNMENTS = COURSE.assignments()


def export(root: Path) -> dict[tuple[str, str], float]:
    nbgrader(root, "export")
    with open(root / "grades.csv") as f:
        return {(r["assignment"], r["student_id"]): float(r["raw_score"]) for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def nbgrader_course(tmp_path_factory) -> Path:
    """A course released with a gradebook, one full-marks and one untouched submission per assignment."""
    root = release_course(tmp_path_factory.mktemp("course"), gradebook=True)
    for assignment in (COURSE.assignment(a) for a in ASSIGNMENTS):
        name, folder = assignment.notebook, root / "submitted"
        samples.write(samples.build(assignment), folder / "ref" / assignment.id / name)
        samples.write(samples.build(assignment, solved=False), folder / "zero" / assignment.id / name)
    return root


@pytest.mark.slow
def test_nbgrader_autograde_and_dlgrade_give_the_same_totals(nbgrader_course) -> None:
    root = nbgrader_course
    for assignment in ASSIGNMENTS:
        nbgrader(root, "autograde", assignment, "--create")
    stock = export(root)
    grade_course(Course(root), workers=2, limits=TEST_LIMITS, force=True)
    for assignment in ASSIGNMENTS:
        full = sum(COURSE.assignment(assignment).points.values())
        ref = read_result(root / "graded" / "ref" / assignment)
        zero = read_result(root / "graded" / "zero" / assignment)
        assert ref.score == full == stock[(assignment, "ref")], assignment
        assert zero.score == 0 == stock[(assignment, "zero")], assignment


@pytest.mark.slow
def test_nbgrader_export_shows_dlgrade_scores_after_grading(tmp_path, nbgrader_course) -> None:
    root = tmp_path / "course"
    shutil.copytree(nbgrader_course, root, ignore=shutil.ignore_patterns("autograded", "graded", "grades.csv"))
    wrong = {"mse_gradient": "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y)\n"}
    samples.write(samples.build(A1, wrong), root / "submitted" / "newcomer" / A1.id / A1.notebook)
    summary = grade_course(Course(root), workers=2, limits=TEST_LIMITS)
    exported = export(root)
    assert len(summary.graded) == 2 * len(ASSIGNMENTS) + 1
    for result in summary.graded:
        assert exported[(result.assignment, result.student)] == pytest.approx(result.score, abs=1e-3)
    assert 0 < exported[(A1.id, "newcomer")] < sum(A1.points.values())

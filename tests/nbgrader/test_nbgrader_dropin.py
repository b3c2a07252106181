"""``dlgrade grade`` as a drop-in for ``nbgrader autograde``: a scratch nbgrader course graded by dlgrade alone is
left as autograde leaves it, so nbgrader's later commands (export, generate_feedback, release_feedback) work and
show dlgrade's exact scores and hints; points and cells come from the course's own source."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import A1, COURSE, TEST_LIMITS, copy_course, nbgrader, release_a1

from autograder.authoring import samples
from autograder.course import Course, CourseError, points
from autograder.course.definition import course_notebook
from autograder.grading.batch import grade_course
from autograder.reporting.results import read_result

# its module fixtures build a course (or an image) once: every test of this file runs in one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("nbgrader_dropin")

NAME = A1.notebook
TIMESTAMP = "2026-11-20 10:00:00.000000 UTC"
# normal_equation right except for one feature column (squeeze makes its beta a scalar): 2 of its 3 checks pass
SQUEEZE = ("import numpy as np\n"
           "def normal_equation(X, y):\n"
           "    return np.squeeze(np.linalg.solve(X.T @ X, X.T @ y))\n")


def cell_by_id(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


# -- a course graded by dlgrade alone ------------------------------------------------------------------------------

def submit(root: Path, student: str, nb, when: str = TIMESTAMP) -> None:
    """What ``nbgrader collect`` leaves: the notebook, its timestamp and the submission's secret."""
    folder = root / "submitted" / student / A1.id
    samples.write(nb, folder / NAME)
    (folder / "timestamp.txt").write_text(when)
    (folder / "submission_secret.txt").write_text(f"secret-of-{student}")


def export(root: Path) -> dict[str, float]:
    nbgrader(root, "export", "--to", "export.csv")
    with open(root / "export.csv") as f:
        return {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f) if r["assignment"] == A1.id}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """A course released with a gradebook (a1 only); ada full marks, pat partly right and with an edited test cell,
    ben the typical mistakes, cy the release untouched (blank written answers), eve a damaged file; graded by
    ``dlgrade grade`` alone."""
    root = tmp_path_factory.mktemp("dropin")
    course = release_a1(root)
    submit(root, "ada", samples.build(A1))
    pat = samples.build(A1, {"normal_equation": SQUEEZE})
    cell_by_id(pat, "test_add_intercept").source = "# I deleted the tests\n"
    submit(root, "pat", pat)
    submit(root, "ben", samples.build(A1, A1.suite.typical_mistakes))
    submit(root, "cy", samples.build(A1, solved=False))
    submit(root, "eve", b'{"cells": [')
    summary = grade_course(course, workers=2, limits=TEST_LIMITS)
    assert len(summary.graded) == 5 and not summary.errors
    return root


def gradebook_rows(root: Path) -> dict[tuple[str, str], dict]:
    """(student, cell) -> the grade's fields, through nbgrader's API."""
    from nbgrader.api import Gradebook

    rows = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for submission in gb.find_assignment(A1.id).submissions:
            for grade in submission.notebooks[0].grades:
                rows[(submission.student.id, grade.cell.name)] = {
                    "auto": grade.auto_score, "max": grade.max_score, "manual": grade.needs_manual_grade,
                    "score": grade.score}
            rows[(submission.student.id, "timestamp")] = submission.timestamp
    return rows


@pytest.mark.slow
def test_export_totals_equal_results_json_and_no_cell_exceeds_its_maximum(graded) -> None:
    """Issue #14, 1: every total agrees (results.json, grades.csv, the gradebook, export); partial credit is exact."""
    exported = export(graded)
    with open(graded / "grades.csv") as f:
        csv_scores = {r["student"]: float(r["score"]) for r in csv.DictReader(f)}
    rows = gradebook_rows(graded)
    for student in ("ada", "pat", "ben", "cy", "eve"):
        result = read_result(graded / "graded" / student / A1.id)
        assert round(exported[student], 4) == result.score == csv_scores[student], student
        cells = {c: r for (s, c), r in rows.items() if s == student and c != "timestamp"}
        assert all(r["score"] <= r["max"] for r in cells.values()), student
        assert {c.removeprefix("test_"): r["auto"] for c, r in cells.items() if c.startswith("test_")} \
            == result.function_scores()
    full = sum(A1.points.values())
    pat = read_result(graded / "graded" / "pat" / A1.id)
    # the failed check is the third, whose share is the smaller one (0.6667, 0.6667, 0.6666)
    assert pat.function_scores()["normal_equation"] == 1.3334
    assert pat.score == points.from_units(points.to_units(full) - 6666)
    assert read_result(graded / "graded" / "ada" / A1.id).score == full == exported["ada"]
    assert exported["eve"] == exported["cy"] == 0


@pytest.mark.slow
def test_gradebook_flags_are_the_ones_autograde_sets(graded) -> None:
    """Issue #14, 4: auto-graded cells need no manual grade; written answers do, unless left blank (then 0 and
    "No response."); the submission's timestamp is its timestamp.txt."""
    from nbgrader.api import Gradebook

    rows = gradebook_rows(graded)
    written = [c.grade_id for c in course_notebook(Course(graded).assignment(A1.id)).cells if c.role == "answer"]
    assert written == ["derive_normal_equation", "derive_mse_gradient"]
    for student in ("ada", "pat", "ben", "cy", "eve"):
        assert not any(r["manual"] for (s, c), r in rows.items() if s == student and c.startswith("test_"))
        assert str(rows[(student, "timestamp")]) == "2026-11-20 10:00:00"
    for cell in written:
        assert rows[("ada", cell)]["auto"] is None and rows[("ada", cell)]["manual"]
        for blank in ("cy", "eve"):
            assert rows[(blank, cell)]["auto"] == 0 and not rows[(blank, cell)]["manual"]
    with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gb:
        assert gb.find_comment("derive_normal_equation", "linear_regression", A1.id, "cy").auto_comment == \
            "No response."
        assert gb.find_comment("derive_normal_equation", "linear_regression", A1.id, "ada").auto_comment is None


@pytest.mark.slow
def test_autograded_notebooks_hold_the_submission_as_graded(graded) -> None:
    """Issue #14, 2: autograded/<student>/<assignment>/<notebook>.ipynb, valid, with each test cell's output replaced
    by dlgrade's per-check results; edited read-only cells restored as released; no hidden test in it."""
    for student in ("ada", "pat", "ben", "cy", "eve"):
        folder = graded / "autograded" / student / A1.id
        assert (folder / "timestamp.txt").read_text() == TIMESTAMP
        assert (folder / "submission_secret.txt").read_text() == f"secret-of-{student}"
        text = (folder / NAME).read_text()
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
        assert "HIDDEN TESTS" not in text and "run_hidden_tests" not in text
        tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("test_")]
        assert [c.metadata.nbgrader.grade_id for c in tests] == [f"test_{f}" for f in A1.suite.functions]
        assert all(c.outputs[0].text.startswith("dlgrade: ") for c in tests)
    pat = nbformat.read(graded / "autograded" / "pat" / A1.id / NAME, as_version=4)
    released = nbformat.read(Course(graded).assignment(A1.id).released, as_version=4)  # the course's own release
    assert cell_by_id(pat, "test_add_intercept").source == cell_by_id(released, "test_add_intercept").source
    report = cell_by_id(pat, "test_normal_equation").outputs[0].text
    assert report.startswith("dlgrade: 1.3334 of 2 points for normal_equation")
    assert report.count("passed ") == 2 and report.count("FAILED ") == 1
    eve = nbformat.read(graded / "autograded" / "eve" / A1.id / NAME, as_version=4)
    assert "not valid JSON" in cell_by_id(eve, "test_mse_loss").outputs[0].text


@pytest.mark.slow
def test_generate_and_release_feedback_deliver_dlgrades_hints(graded, tmp_path) -> None:
    """Issue #14, 2 and 5: generate_feedback exits 0, and the mistaken student's feedback page (as release_feedback
    puts it in the exchange) carries dlgrade's hint."""
    hint = "use .ravel(), .squeeze() or"
    ben = read_result(graded / "graded" / "ben" / A1.id)
    assert any(hint in t.output for t in ben.tests if t.graded_function() == "normal_equation")
    nbgrader(graded, "generate_feedback", A1.id)
    page = (graded / "feedback" / "ben" / A1.id / "linear_regression.html").read_text()
    assert hint in page and "dlgrade: 0 of 2 points for normal_equation" in page
    assert hint not in (graded / "feedback" / "ada" / A1.id / "linear_regression.html").read_text()
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)
    nbgrader(graded, "release_feedback", A1.id, f"--Exchange.root={exchange}", "--CourseDirectory.course_id=course")
    released = list((exchange / "course" / "feedback").glob("*.html"))
    hinted = [s for s in ("ada", "pat", "ben", "cy", "eve")
              if any(hint in t.output for t in read_result(graded / "graded" / s / A1.id).tests)]
    assert "ben" in hinted and "ada" not in hinted
    assert len(released) == 5 and sum(hint in p.read_text() for p in released) == len(hinted)


@pytest.mark.slow
def test_regrading_an_unchanged_course_changes_nothing_but_a_new_timestamp_regrades(graded, tmp_path) -> None:
    root = tmp_path / "course"
    shutil.copytree(graded, root)
    course = Course(root)
    again = grade_course(course, workers=1, limits=TEST_LIMITS)
    assert again.graded == [] and again.skipped == 5
    (root / "submitted" / "cy" / A1.id / "timestamp.txt").write_text("2026-11-21 09:00:00.000000 UTC")
    (root / "autograded" / "ada" / A1.id / NAME).unlink()
    redone = grade_course(course, workers=1, limits=TEST_LIMITS)
    assert sorted(r.student for r in redone.graded) == ["ada", "cy"]
    assert str(gradebook_rows(root)[("cy", "timestamp")]) == "2026-11-21 09:00:00"


@pytest.mark.slow
def test_an_edited_point_value_in_the_courses_source_is_honoured(graded, tmp_path) -> None:
    """Issue #14, 6: test_add_intercept set to 3 points in the course's source and regenerated: 3 points in
    results.json, the CSV and export. Edited but not regenerated: an error naming the cell, nothing graded."""
    root = tmp_path / "course"
    shutil.copytree(graded, root, ignore=shutil.ignore_patterns("graded", "autograded", "feedback", "grades.*"))
    path = root / "source" / A1.id / NAME
    nb = nbformat.read(path, as_version=4)
    cell_by_id(nb, "test_add_intercept").metadata.nbgrader.points = 3
    nbformat.write(nb, path)
    course = Course(root)
    with pytest.raises(CourseError, match=r"cell 'test_add_intercept' .* gives 3 points, the gradebook .* "
                                          r"1 points\. Run `nbgrader generate_assignment"):
        grade_course(course, workers=1, limits=TEST_LIMITS)
    assert not (root / "graded").exists()
    nbgrader(root, "generate_assignment", A1.id, "--force")
    grade_course(course, workers=2, limits=TEST_LIMITS, students=["ada", "pat"])
    full = sum(A1.points.values()) + 2
    ada = read_result(root / "graded" / "ada" / A1.id)
    assert ada.max_score == full == ada.score and ada.function_scores()["add_intercept"] == 3
    assert sum(t.max_score for t in ada.tests if t.graded_function() == "add_intercept") == 3
    assert export(root)["ada"] == full


@pytest.mark.slow
def test_partial_credit_dlgrade_splits_a_functions_points_stock_autograde_does_not(tmp_path) -> None:
    """Where 2 of normal_equation's 3 checks pass, dlgrade gives 1.3334 of its 2 points; stock ``nbgrader
    autograde`` (the hidden tests raise on any failed check) gives the cell 0. Elsewhere they agree."""
    course = release_a1(tmp_path)
    root = course.root
    submit(root, "pat", samples.build(A1, {"normal_equation": SQUEEZE}))
    nbgrader(root, "autograde", A1.id)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        stock = {g.cell.name: g.auto_score
                 for g in gb.find_submission_notebook("linear_regression", A1.id, "pat").grades
                 if g.cell.name.startswith("test_")}
    shutil.rmtree(root / "autograded")
    grade_course(course, workers=1, limits=TEST_LIMITS)
    ours = read_result(root / "graded" / "pat" / A1.id).function_scores()
    assert stock["test_normal_equation"] == 0 and ours["normal_equation"] == 1.3334
    assert {c.removeprefix("test_"): s for c, s in stock.items() if c != "test_normal_equation"} \
        == {f: s for f, s in ours.items() if f != "normal_equation"}


@pytest.mark.slow
def test_a_submission_with_odd_text_and_a_forged_timestamp_still_gets_its_results_and_autograded_notebook(
        tmp_path) -> None:
    """A lone surrogate in a cell (valid JSON, not encodable as UTF-8) and a timestamp.txt that is no time: the
    submission is graded, its autograded notebook written, and the gradebook gets no timestamp instead of a crash."""
    course = copy_course(tmp_path / "course", [A1.id])
    root = course.root
    nb = samples.build(A1)
    nb.cells.append(nbformat.v4.new_markdown_cell("odd \ud800 text"))
    folder = root / "submitted" / "odd" / A1.id
    samples.write(json.dumps(nb), folder / NAME)
    (folder / "timestamp.txt").write_text("the day before the deadline, honest")
    summary = grade_course(course, workers=1, limits=TEST_LIMITS)
    assert [r.student for r in summary.graded] == ["odd"] and not summary.errors
    result = read_result(root / "graded" / "odd" / A1.id)
    assert result.score == result.max_score and result.extra["nbgrader"]["timestamp"] is None
    text = (root / "autograded" / "odd" / A1.id / NAME).read_text()
    assert "\\ud800" in text and nbformat.reads(text, as_version=4).cells[-1].source == "odd \ud800 text"


# -- LMS downloads ---------------------------------------------------------------------------------------------------

LMS_FILES = {  # file name in the LMS zip -> (student, notebook)
    "ada_linear_regression.ipynb": ("ada", "linear_regression"),
    "ben_linear_regression (1).ipynb": ("ben", "linear_regression"),
    "jane_doe_linear_regression.ipynb": ("jane_doe", "linear_regression"),
    "cy_LATE_linear_regression.ipynb": ("cy", "linear_regression"),
    "dee_linear_regression_late.ipynb": ("dee", "linear_regression"),
    "doejane_LATE_123456_7890123_linear_regression-1.ipynb": ("doejane", "linear_regression"),
    "kit_training_loop.ipynb": ("kit", "training_loop"),
}


def lms_pattern(root: Path = COURSE.root) -> str:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    return config.FileNameCollectorPlugin.named_regexp


def test_the_shipped_lms_pattern_names_every_notebook_of_the_course(tmp_path) -> None:
    """Does the pattern in nbgrader_config.py know each notebook of its course (and nothing else), a course of
    other assignments included, with no edit?"""
    import re

    for notebook in COURSE.notebook_names():
        match = re.match(lms_pattern(), f"/x/extracted/ada_{notebook}")
        assert match is not None and match["file_id"] == Path(notebook).stem, notebook
    assert re.match(lms_pattern(), "/x/extracted/ada_regression.ipynb") is None
    other = copy_course(tmp_path / "other", [A1.id])
    (other.folder("source") / "a6_softmax").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), other.folder("source") / "a6_softmax" / "softmax.ipynb")
    pattern = lms_pattern(other.root)
    assert sorted(Path(n).stem for n in ("linear_regression.ipynb", "softmax.ipynb")
                  if re.match(pattern, f"/x/extracted/ada_{n}")) == ["linear_regression", "softmax"]
    assert re.match(pattern, "/x/extracted/ada_mlp.ipynb") is None  # not a notebook of that course


@pytest.mark.parametrize(("name", "expected"), [*LMS_FILES.items(), ("linear_regression.ipynb", None),
                                                ("ada_notes.ipynb", None), ("ada/linear_regression.ipynb", None)])
def test_the_shipped_lms_pattern_reads_student_and_notebook_from_lms_file_names(name, expected) -> None:
    import re

    match = re.match(lms_pattern(), f"/course/downloaded/{A1.id}/extracted/submissions/{name}")
    got = (match["student_id"], match["file_id"]) if match else None
    assert got == expected


@pytest.mark.slow
def test_an_lms_zip_goes_through_zip_collect_with_the_shipped_pattern_then_dlgrade_grade(tmp_path) -> None:
    """Issue #14, 7: zip -> ``nbgrader zip_collect`` (the project's config, nothing hand-written) -> ``dlgrade
    grade``: every a1 file lands in submitted/<student>/a1/linear_regression.ipynb and is graded."""
    import zipfile

    course = release_a1(tmp_path)
    root = course.root
    archive = root / "downloaded" / A1.id / "archive"
    archive.mkdir(parents=True)
    a1 = {name: who for name, who in LMS_FILES.items() if who[1] == "linear_regression"}
    with zipfile.ZipFile(archive / "submissions.zip", "w") as zf:
        for name, (student, _) in a1.items():
            nb = samples.build(A1, None if student != "ben" else A1.suite.typical_mistakes)
            zf.writestr(f"submissions/{name}", json.dumps(nb))
    nbgrader(root, "zip_collect", A1.id)
    students = sorted(student for student, _ in a1.values())
    assert sorted(p.parent.parent.name for p in root.glob(f"submitted/*/{A1.id}/{NAME}")) == students
    summary = grade_course(course, workers=2, limits=TEST_LIMITS)
    full = sum(A1.points.values())
    assert {r.student: r.score == full for r in summary.graded} == {s: s != "ben" for s in students}

"""Every submission gets a result it earned: links and special files refused (never followed), honest large
notebooks graded, damaged ones explained, a dead sandbox or a slow notebook bounded, and names a student
controls made harmless before they reach a TA's terminal or spreadsheet."""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import A1, COURSE, TEST_LIMITS, copy_course, failing_functions, outputs

from autograder.authoring import samples
from autograder.grading.batch import grade_course
from autograder.grading.grader import Grader
from autograder.reporting.results import read_result
from autograder.sandbox import Limits, Worker

# its module fixtures build a course (or an image) once: every test of this file runs in one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("submissions")

NAME = A1.notebook
FULL = sum(A1.points.values())


def submit(root: Path, student: str, nb=None) -> Path:
    path = root / "submitted" / student / A1.id / NAME
    samples.write(samples.build(A1) if nb is None else nb, path)
    return path


# -- links and special files --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linked_course(tmp_path_factory) -> Path:
    """A course where students hand in links (as tar, unzip and git recreate them) and special files."""
    course = copy_course(tmp_path_factory.mktemp("course"))
    root = course.root
    source = root / "source" / A1.id / NAME  # the course's source notebook (solutions, hidden tests) beside submitted/
    assert source.is_file()
    submit(root, "ada")

    def place(student: str) -> Path:
        folder = root / "submitted" / student / A1.id
        folder.mkdir(parents=True)
        return folder / NAME

    place("abs").symlink_to(source)
    place("rel").symlink_to(Path("../../..") / "source" / A1.id / NAME)
    place("copycat").symlink_to(root / "submitted" / "ada" / A1.id / NAME)
    place("kmsg").symlink_to("/proc/kmsg")
    os.mkfifo(place("fifo"))
    (root / "submitted" / "dirlink").symlink_to(root / "submitted" / "ada")
    (root / "submitted" / "asglink").mkdir()
    (root / "submitted" / "asglink" / A1.id).symlink_to(root / "submitted" / "ada" / A1.id)
    # a named pipe or /proc/kmsg opened for reading would block for ever: this finishing (within the per-test
    # timeout) is part of what the tests below show
    summary = grade_course(course, workers=1, limits=TEST_LIMITS)
    assert summary.errors == [] and summary.failures == []
    return root


@pytest.mark.parametrize(("student", "reason"), [
    ("abs", "the notebook is a symbolic link"),  # to the instructor's source notebook
    ("rel", "the notebook is a symbolic link"),  # ../../../source/<id>/<notebook>
    ("copycat", "the notebook is a symbolic link"),  # to a classmate's notebook
    ("kmsg", "the notebook is a symbolic link"),  # to a file that blocks whoever reads it
    ("fifo", "not a regular file"),  # a named pipe: opening it must not wait for a writer
    ("dirlink", "the student's folder is a symbolic link"),
    ("asglink", "the assignment folder is a symbolic link"),
])
def test_a_link_or_special_file_gets_zero_with_the_reason_and_nothing_is_followed(linked_course, student,
                                                                                   reason) -> None:
    result = read_result(linked_course / "graded" / student / A1.id)
    assert result.score == 0 and reason in result.output, result.output
    with open(linked_course / "grades.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows[student]["score"] == "0" and rows["ada"]["score"] == f"{FULL:g}"


# -- large, damaged and huge files ---------------------------------------------------------------------


def test_an_honest_notebook_with_a_large_data_cell_gets_full_marks(grade) -> None:
    """1.7 MB of data in one cell (more than a message header may hold): the cells reach the sandbox in the
    body of the start message."""
    data = "DATA = [" + ", ".join(f"{i * 0.5:.3f}" for i in range(200_000)) + "]\n"
    assert len(data) > 1_700_000
    result = grade(A1, samples.build(A1, extra_cells=[data]))
    assert result.score == result.max_score, result.output


@pytest.mark.slow
def test_an_honest_notebook_with_100000_cells_gets_full_marks(tmp_path) -> None:
    nb = samples.build(A1, extra_cells=[f"x{i} = {i}" for i in range(100_000)])
    folder = submit(tmp_path, "many", nb).parent
    limits = Limits(cell_seconds=6.0, notebook_seconds=120.0, call_seconds=6.0)
    with Worker(3, limits, hide=COURSE.secrets) as worker:
        result = Grader(A1).grade(folder, worker, "many")
    assert result.score == result.max_score, result.output


@pytest.mark.parametrize(("content", "reason"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"cells": [' + b"[]," * 1_100_000 + b"[]]}", "more nested values than a notebook can"),
    (json.dumps({"cells": [{"cell_type": "code", "source": 7}], "nbformat": 4}).encode(), "source is not text"),
    (json.dumps({"cells": ["not a cell"]}).encode(), "cell 0 of the notebook is damaged"),
])
def test_a_damaged_notebook_gets_zero_and_a_reason_never_a_crash(grade, content, reason) -> None:
    result = grade(A1, content)
    assert result.score == 0 and reason in result.output, result.output


def test_a_notebook_over_the_size_limit_is_refused_before_it_is_read(tmp_path) -> None:
    """A 3 GB (sparse) file costs the grader no memory: its size is checked before anything is read."""
    course = copy_course(tmp_path / "course")
    path = course.root / "submitted" / "big" / A1.id / NAME
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        f.truncate(3 * 2**30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    graded = grade_course(course, workers=1, limits=TEST_LIMITS)
    stored = read_result(course.root / "graded" / "big" / A1.id)
    assert stored.score == 0 and "the limit is 20 MB" in stored.output, stored.output
    assert graded.errors == []
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB: far below 3 GB


# -- a dead sandbox, a slow notebook -------------------------------------------------------------------


def test_a_sandbox_that_dies_mid_submission_costs_one_test_and_the_rest_is_graded(tmp_path, monkeypatch) -> None:
    """The zygote stops answering during one call (as after a memory-cgroup kill): that test fails with a reason,
    the worker restarts and replays the notebook, and every later test is graded as usual."""
    folder = submit(tmp_path, "ada").parent
    calls = {"n": 0}
    real = Worker._call

    def dies_once(self, call, body, on_ask):
        calls["n"] += 1
        if calls["n"] == 3:
            os.killpg(self.proc.pid, 9)  # the whole sandbox, as the kernel would
        return real(self, call, body, on_ask)

    monkeypatch.setattr(Worker, "_call", dies_once)
    with Worker(4, TEST_LIMITS, hide=COURSE.secrets) as worker:
        result = Grader(A1).grade(folder, worker, "ada")
    lost = [t for t in result.tests if t.score < t.max_score]
    assert len(lost) == 1 and "the sandbox was restarted while running this test" in lost[0].output, lost
    assert result.score == pytest.approx(result.max_score - lost[0].max_score)


def test_a_notebook_that_answers_slowly_is_stopped_by_the_submission_budget(tmp_path) -> None:
    """gradient_descent and minibatch_sgd hang on every hidden case (each call stopped at the per-call limit): once the
    submission's whole budget is spent, the remaining tests fail at once with the budget's reason, the functions
    judged before keep their points, and the worker moves on. (Every public example runs before any hidden case, and
    hidden cases go in the suite's order: these two functions come last.)"""
    slow = samples.build(A1, extra_cells=[
        "import time, functools\n"
        "def hangs_on_hidden_cases(f):\n"
        "    @functools.wraps(f)\n"
        "    def wrapper(X, *args, **kwargs):\n"
        "        if X.shape != (20, 3):  # not the public example\n"
        "            time.sleep(100)\n"
        "        return f(X, *args, **kwargs)\n"
        "    return wrapper\n"
        "gradient_descent = hangs_on_hidden_cases(gradient_descent)\n"
        "minibatch_sgd = hangs_on_hidden_cases(minibatch_sgd)\n"])
    folder = submit(tmp_path, "slow", slow).parent
    limits = Limits(cell_seconds=5.0, notebook_seconds=20.0, call_seconds=2.0, submission_seconds=6.0)
    with Worker(5, limits, hide=COURSE.secrets) as worker:
        result = Grader(A1).grade(folder, worker, "slow")
    outputs = [t.output for t in result.tests]
    # the budget (6 s) lets at most three calls run to the per-call limit (2 s); every later one is refused at once
    assert sum("did not finish in time" in o for o in outputs) <= 3, outputs
    lost = {t.name.split(":")[0] for t in result.tests if t.score < t.max_score}
    assert lost == {"gradient_descent", "minibatch_sgd"}, result.to_json()
    assert "used up its time budget (6 s in all)" in "".join(t.output for t in result.tests)


# -- names reach a TA harmless ---------------------------------------------------------------------------


def test_student_names_reach_the_terminal_without_escapes_and_the_csv_without_formulas(tmp_path) -> None:
    """Folder names come from LMS exports and zip_collect: one clears the TA's screen, one is a spreadsheet
    formula. The progress lines and summary show them inert; grades.csv keeps them text."""
    root = copy_course(tmp_path / "course").root
    for name in ("\x1b[2J\x1b[31mmallory", '=HYPERLINK("evil.invalid","x")', "ada"):
        submit(root, name, samples.build(A1, solved=False))
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(root), "--workers", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr
    assert "?[2J?[31mmallory" in done.stdout
    with open(root / "grades.csv") as f:
        cells = [row[0] for row in csv.reader(f)]
    assert "'=HYPERLINK(\"evil.invalid\",\"x\")" in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_feedback_and_results_of_a_refused_submission_still_name_the_function_tests(linked_course) -> None:
    result = read_result(linked_course / "graded" / "abs" / A1.id)
    assert len(result.tests) == len(A1.suite.checks)
    assert failing_functions(result) == set(A1.suite.functions)
    assert "symbolic link" in outputs(result, "normal_equation")

"""The command line as students and TAs use it: check, demo, errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import course, samples

A1 = "a1_linear_regression"


def dlgrade(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def no_solutions_home(tmp_path) -> dict:
    """A course home with the released notebooks only, as a student's copy would be."""
    home = tmp_path / "home"
    shutil.copytree(course.course_root() / "assignments", home / "assignments")
    return {"DLGRADE_HOME": str(home)}


def test_check_on_the_release_lists_every_public_test_as_failing(tmp_path, no_solutions_home) -> None:
    path = samples.write(samples.build(A1, solved=False), tmp_path / course.notebook_name(A1))
    done = dlgrade("check", str(path), env=no_solutions_home)
    assert done.returncode == 1, done.stderr
    assert "FAIL  test_normal_equation" in done.stdout
    assert "the function it tests is not implemented yet" in done.stdout
    assert f"0 of {len(course.suite(A1).functions)} public tests pass" in done.stdout


def test_check_on_a_solved_notebook_passes_without_solutions(tmp_path, no_solutions_home) -> None:
    path = samples.write(samples.build(A1), tmp_path / course.notebook_name(A1))
    done = dlgrade("check", str(path), env=no_solutions_home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  test_minibatch_sgd" in done.stdout and "FAIL" not in done.stdout


def test_check_shows_the_assertion_message_of_a_failing_public_test(tmp_path) -> None:
    wrong = {"add_intercept": "def add_intercept(X):\n    return np.hstack([X, np.ones((len(X), 1))])\n"}
    path = samples.write(samples.build(A1, wrong), tmp_path / course.notebook_name(A1))
    done = dlgrade("check", str(path))
    assert done.returncode == 1
    assert "FAIL  test_add_intercept" in done.stdout and "the first column should be ones" in done.stdout


@pytest.mark.parametrize(("content", "message"), [(b"", "the file is empty"), (b"[1, 2]", "not a Jupyter notebook")])
def test_check_explains_a_damaged_file(tmp_path, content, message) -> None:
    path = tmp_path / "linear_regression.ipynb"
    path.write_bytes(content)
    done = dlgrade("check", str(path))
    assert done.returncode == 2 and message in done.stderr


def test_grade_rejects_a_missing_course_folder(tmp_path) -> None:
    done = dlgrade("grade", str(tmp_path / "nope"))
    assert done.returncode == 2 and "is not a folder" in done.stderr


@pytest.mark.slow
def test_demo_grades_every_kind_of_submission(tmp_path) -> None:
    done = dlgrade("demo", "--keep", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0] + "/" + line.split()[1]: line for line in done.stdout.splitlines()
            if line.split()[:1] and line.split()[0] in {"ada", "ben", "cy", "dee", "eve"}}
    for assignment in course.available():
        full = sum(course.points(assignment).values())
        assert rows[f"ada/{assignment}"].split()[2:5] == [f"{full:.2f}", "/", f"{full:g}"]
        assert "lost points on" in rows[f"ben/{assignment}"]
        assert "0.00 /" in rows[f"eve/{assignment}"] and "not valid JSON" in rows[f"eve/{assignment}"]
    assert (Path(tmp_path / "demo") / "grades.csv").is_file()


def test_grade_starts_its_first_sandbox_before_importing_numpy_or_the_checks() -> None:
    """What `dlgrade grade` imports before it spawns the first sandbox (the CLI, the course's paths, the sandbox
    package) is light: the sandbox starts Python while the grader imports the rest, not after."""
    code = ("import sys, autograder.cli, autograder.course, autograder.sandbox\n"
            "heavy = ('numpy', 'torch', 'autograder.suite', 'autograder.grading')\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("args, message", [
    (["grade", "{tmp}/nope"], "is not a folder"),
    (["grade", "{tmp}", "--workers", "0"], "--workers must be at least 1"),
    (["grade", "{tmp}", "--shard", "3/2"], "shard"),  # found after the first sandbox was spawned
    (["grade", "{tmp}"], "has no submitted/ folder"),  # a course with nothing to grade: no use for the sandbox
])
def test_grade_explains_what_is_wrong_and_leaves_no_sandbox_behind(tmp_path, args, message) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = dlgrade(*[a.format(tmp=tmp_path) for a in args], env={"TMPDIR": str(scratch)})
    assert message in done.stderr + done.stdout and "Traceback" not in done.stderr, done.stderr
    assert list(scratch.iterdir()) == []  # every sandbox's folder removed
    running = [p.read_bytes() for p in Path("/proc").glob("[0-9]*/cmdline") if _readable(p)]
    assert not [c for c in running if str(scratch).encode() in c]  # and no process of one left


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
        return True
    except OSError:
        return False

"""The command line as students and TAs use it: check, demo, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import A1, COURSE, copy_course

from autograder.authoring import samples


def dlgrade(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``dlgrade ARGS``; ``env`` adds to the environment, where a value of None removes that variable."""
    merged = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, env=merged,
                          cwd=cwd)


@pytest.fixture
def student(tmp_path) -> dict:
    """What a student has: a notebook in a folder of their own, in no course (no DLGRADE_HOME, no nbgrader_config.py
    here or above), so no solutions, checks or course sources anywhere dlgrade could look."""
    home = tmp_path / "student"
    home.mkdir()
    assert not any((folder / "nbgrader_config.py").exists() for folder in (home, *home.parents))
    return {"env": {"DLGRADE_HOME": None}, "cwd": home}


def test_check_on_the_release_lists_every_public_test_as_failing(student) -> None:
    path = samples.write(samples.build(A1, solved=False), student["cwd"] / A1.notebook)
    done = dlgrade("check", str(path), **student)
    assert done.returncode == 1, done.stderr
    assert "FAIL  test_normal_equation" in done.stdout
    assert "the function it tests is not implemented yet" in done.stdout
    assert f"0 of {len(A1.suite.functions)} public tests pass" in done.stdout


def test_check_on_a_solved_notebook_passes_without_solutions(student) -> None:
    path = samples.write(samples.build(A1), student["cwd"] / A1.notebook)
    done = dlgrade("check", str(path), **student)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  test_minibatch_sgd" in done.stdout and "FAIL" not in done.stdout


def test_check_with_the_course_runs_as_grading_does(tmp_path) -> None:
    """An instructor's or TA's run, with the course (--course, or a notebook inside the course folder): the public
    tests pass on a solved notebook and fail on the release, as for a student."""
    course = copy_course(tmp_path / "course", [A1.id])
    solved = samples.write(samples.build(A1), tmp_path / "elsewhere" / A1.notebook)
    done = dlgrade("check", str(solved), "--course", str(course.root), env={"DLGRADE_HOME": None})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  test_minibatch_sgd" in done.stdout and "FAIL" not in done.stdout
    inside = samples.write(samples.build(A1, solved=False), course.root / "submitted" / "ada" / A1.id / A1.notebook)
    done = dlgrade("check", str(inside), env={"DLGRADE_HOME": None})
    assert done.returncode == 1 and "FAIL  test_normal_equation" in done.stdout, done.stdout + done.stderr
    missing = dlgrade("check", str(solved), "--course", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr, missing.stderr


def test_check_shows_the_assertion_message_of_a_failing_public_test(tmp_path) -> None:
    wrong = {"add_intercept": "def add_intercept(X):\n    return np.hstack([X, np.ones((len(X), 1))])\n"}
    path = samples.write(samples.build(A1, wrong), tmp_path / A1.notebook)
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
    for assignment in COURSE.assignments():
        full = sum(COURSE.assignment(assignment).points.values())
        assert rows[f"ada/{assignment}"].split()[2:5] == [f"{full:.2f}", "/", f"{full:g}"]
        assert "lost points on" in rows[f"ben/{assignment}"]
        assert "0.00 /" in rows[f"eve/{assignment}"] and "not valid JSON" in rows[f"eve/{assignment}"]
    assert (Path(tmp_path / "demo") / "grades.csv").is_file()


def test_grade_starts_its_first_sandbox_before_importing_numpy_or_the_checks() -> None:
    """What `dlgrade grade` imports before it spawns the first sandbox (the CLI, the course's paths, the sandbox
    package) is light: the sandbox starts Python while the grader imports the rest, not after."""
    code = ("import sys, autograder.cli, autograder.course, autograder.sandbox\n"
            "heavy = ('numpy', 'torch', 'autograder.checking.suite', 'autograder.grading.grader')\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("args, message", [
    (["grade", "{tmp}/nope"], "is not a folder"),
    (["grade", "{tmp}/tmp"], "is not a course folder: it has no nbgrader_config.py"),
    (["grade", "{course}", "--course", "{tmp}/tmp"], "two course folders given"),
    (["grade", "{course}", "--workers", "0"], "--workers must be at least 1"),
    (["grade", "--course", "{course}", "--shard", "3/2"], "shard"),  # found after the first sandbox was spawned
    (["grade", "{course}"], "has no submitted/ folder"),  # a course with nothing to grade: no use for the sandbox
])
def test_grade_explains_what_is_wrong_and_leaves_no_sandbox_behind(tmp_path, args, message) -> None:
    course = copy_course(tmp_path / "course", [A1.id])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = dlgrade(*[a.format(tmp=tmp_path, course=course.root) for a in args], env={"TMPDIR": str(scratch)})
    assert done.returncode == 2, done.stdout + done.stderr
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

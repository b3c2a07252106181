"""Class-scale grading: resumable, idempotent, sharded, reports written, other students' files safe."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import A1, TEST_LIMITS, copy_course

from autograder.authoring import samples
from autograder.course import Course
from autograder.grading.batch import BatchError, discover, grade_course, in_shard, parse_shard
from autograder.grading.grader import Grader
from autograder.reporting.files import write_reports
from autograder.reporting.results import read_result
from autograder.sandbox import Worker
from autograder.sandbox.doctor import USER

# its module fixtures build a course (or an image) once: every test of this file runs in one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("batch")

NAME = A1.notebook
FULL = sum(A1.points.values())
WRONG = {"mse_gradient": "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y)\n"}


def add_submissions(course: Course, n: int) -> Course:
    """``n`` submissions of a1 in the course's submitted/: every other one with a wrong gradient."""
    for i in range(n):
        nb = samples.build(A1, WRONG if i % 2 else None)
        samples.write(nb, course.root / "submitted" / f"s{i:02d}" / A1.id / NAME)
    return course


def make_course(root: Path, n: int) -> Course:
    """A course folder like the built-in one at ``root`` with ``n`` submissions of a1."""
    return add_submissions(copy_course(root), n)


def results(root: Path | Course) -> dict[str, float]:
    root = root.root if isinstance(root, Course) else root
    return {p.parent.parent.name: read_result(p.parent).score
            for p in (root / "graded").glob(f"*/{A1.id}/results.json")}


def csv_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, **kw)



@pytest.fixture(scope="module")
def graded_course(tmp_path_factory) -> Course:
    course = make_course(tmp_path_factory.mktemp("course"), 6)
    grade_course(course, workers=2, limits=TEST_LIMITS)
    return course


def test_every_submission_gets_results_feedback_and_a_csv_row(graded_course) -> None:
    root = graded_course.root
    scores = results(root)
    points = A1.points
    wrong = FULL - points["mse_gradient"]  # gradient_descent and minibatch_sgd keep theirs (follow-through)
    assert scores == {f"s{i:02d}": (FULL if i % 2 == 0 else wrong) for i in range(6)}
    for student in scores:
        assert (root / "graded" / student / A1.id / "feedback.html").is_file()
    rows = csv_rows(root / "grades.csv")
    assert [(r["student"], float(r["score"])) for r in rows] == sorted(scores.items())
    svg = (root / "grades.svg").read_text()
    assert svg.startswith("<svg") and "a1_linear_regression (n=6)" in svg
    assert "80-90 %: 3</title>" in svg and "90-100 %: 3</title>" in svg  # 10/12 and 12/12, three students each


@pytest.mark.slow
def test_rerunning_regrades_only_changed_submissions_and_force_regrades_all(graded_course) -> None:
    root = graded_course.root
    stamp = {p: p.stat().st_mtime_ns for p in (root / "graded").glob("*/*/results.json")}
    again = grade_course(graded_course, workers=1, limits=TEST_LIMITS)
    assert again.skipped == 6 and again.graded == []
    assert stamp == {p: p.stat().st_mtime_ns for p in stamp}
    samples.write(samples.build(A1), root / "submitted" / "s01" / A1.id / NAME)
    changed = grade_course(graded_course, workers=1, limits=TEST_LIMITS)
    assert [r.student for r in changed.graded] == ["s01"] and changed.skipped == 5
    assert results(root)["s01"] == FULL
    forced = grade_course(graded_course, workers=2, limits=TEST_LIMITS, force=True)
    assert len(forced.graded) == 6 and forced.skipped == 0


def test_a_changed_check_reference_or_probe_regrades_what_it_affects(tmp_path) -> None:
    """A result is current only for the assignment's checks, reference and probes it was made with: editing one of
    an assignment's files regrades that assignment's submissions, and no other assignment's."""
    course = copy_course(tmp_path / "course", [A1.id, "a4_backprop"])
    a4 = course.assignment("a4_backprop")
    add_submissions(course, 2)
    samples.write(samples.build(a4), course.root / "submitted" / "s00" / a4.id / a4.notebook)
    first = grade_course(course, workers=1, limits=TEST_LIMITS)
    assert len(first.graded) == 3
    for path in (course.root / "checks" / f"{A1.id}.py", course.root / "solutions" / f"{A1.id}.py",
                 course.root / "probes" / f"{a4.id}.py"):
        with open(path, "a") as f:
            f.write("\n# edited\n")
        again = grade_course(Course(course.root), workers=1, limits=TEST_LIMITS)  # a new process reads the files
        expected = [("a4_backprop", "s00")] if path.parent.name == "probes" else [(A1.id, "s00"), (A1.id, "s01")]
        assert sorted((r.assignment, r.student) for r in again.graded) == expected, path
        assert again.skipped == 3 - len(expected)


@pytest.fixture
def ctrl_c():
    """Ctrl-C as a terminal delivers it: SIGINT raises KeyboardInterrupt here and in the processes started here.
    A shell's background job (``cmd &`` without job control: nohup, some CI runners) starts with SIGINT ignored,
    and a Python started with SIGINT ignored keeps ignoring it; these tests are about Ctrl-C, not about that."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler: exec resets it to the default
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.slow
@pytest.mark.usefixtures("ctrl_c")
@pytest.mark.parametrize("stop", ["ctrl-c", "kill, started in the background"])
def test_an_interrupted_batch_resumes_without_losing_or_duplicating(tmp_path, stop: str) -> None:
    """Ctrl-C, or SIGTERM (``kill``, ``docker stop``) to a batch started as a background job, which ignores
    Ctrl-C (README, TAs)."""
    course = make_course(tmp_path / "course", 8)
    root = course.root
    background = stop != "ctrl-c"
    if background:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell's ``cmd &`` starts it: inherited through exec
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(root), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    deadline = time.monotonic() + 120
    while len(list(root.glob("graded/*/*/results.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM if background else signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err.decode(), err.decode()[-2000:]
    done_before = len(list(root.glob("graded/*/*/results.json")))
    assert 2 <= done_before < 8
    assert list(root.glob("graded/**/.*.tmp")) == []
    # what is on disk is a whole, real result; a grading the interruption cut short left none
    stored = [read_result(j.out) for j in discover(course) if (j.out / "results.json").exists()]
    assert all(r.extra.get("sha256") and not (r.reason or "").startswith("The grader failed") for r in stored), \
        [r.reason for r in stored]
    summary = grade_course(course, workers=2, limits=TEST_LIMITS)
    assert summary.skipped == done_before and len(summary.graded) == 8 - done_before
    fresh = make_course(tmp_path / "fresh", 8)
    grade_course(fresh, workers=2, limits=TEST_LIMITS)
    assert results(root) == results(fresh)
    assert len(csv_rows(root / "grades.csv")) == 8


@pytest.mark.slow
@pytest.mark.usefixtures("ctrl_c")
def test_a_grading_cut_short_by_an_interruption_leaves_no_result(tmp_path, monkeypatch) -> None:
    """Ctrl-C closes the sandbox under a submission being graded: that submission gets no result (not a grader
    failure) and the next run grades it; the process may live on a while after (a notebook server, a test)."""
    course = copy_course(tmp_path / "course")
    root = course.root
    samples.write(samples.build(A1), root / "submitted" / "s00" / A1.id / NAME)
    # s01's notebook runs until its cell's time limit: Ctrl-C comes while it does
    samples.write(samples.build(A1, extra_cells=["import time\ntime.sleep(60)"]),
                  root / "submitted" / "s01" / A1.id / NAME)
    grading_s01 = threading.Event()
    grade = Grader.grade

    def noting_s01(self, folder, worker, student="", **kwargs):
        if student == "s01":
            grading_s01.set()
        return grade(self, folder, worker, student, **kwargs)

    monkeypatch.setattr(Grader, "grade", noting_s01)

    def interrupt_once_s01_is_being_graded() -> None:
        if grading_s01.wait(timeout=240):
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_s01_is_being_graded, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        grade_course(course, workers=1, limits=TEST_LIMITS)
    assert (root / "graded" / "s00" / A1.id / "results.json").exists()
    time.sleep(2)  # what the cut-short grading might still write, it would write now
    assert not (root / "graded" / "s01" / A1.id / "results.json").exists()
    summary = grade_course(course, workers=1, limits=TEST_LIMITS)
    assert summary.skipped == 1 and [r.student for r in summary.graded] == ["s01"]


@pytest.mark.slow
def test_shards_merged_equal_an_unsharded_run(tmp_path) -> None:
    whole = make_course(tmp_path / "whole", 6)
    grade_course(whole, workers=2, limits=TEST_LIMITS)
    jobs = discover(whole)
    shards = [[j.student for j in jobs if in_shard(j, (i, 3))] for i in (1, 2, 3)]
    assert sorted(sum(shards, [])) == sorted(j.student for j in jobs)
    merged = copy_course(tmp_path / "merged")
    for i in (1, 2, 3):
        part = make_course(tmp_path / f"shard{i}", 6)
        grade_course(part, workers=1, limits=TEST_LIMITS, shard=(i, 3))
        assert sorted(results(part)) == sorted(shards[i - 1])
        for path in (part.root / "graded").glob("*/*/*"):
            target = merged.root / path.relative_to(part.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    write_reports(merged)
    assert csv_rows(merged.root / "grades.csv") == csv_rows(whole.root / "grades.csv")


def test_shard_and_option_errors_are_explained(tmp_path) -> None:
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1-2"):
        with pytest.raises(BatchError, match="shard"):
            parse_shard(bad)
    course = copy_course(tmp_path / "course")
    with pytest.raises(BatchError, match="no submitted/ folder"):
        discover(course)
    add_submissions(course, 1)
    with pytest.raises(BatchError, match="unknown assignment 'a9'"):
        discover(course, ["a9"])


def test_submissions_of_an_assignment_the_course_does_not_define_are_named_not_graded(tmp_path) -> None:
    """A folder under submitted/<student>/ that is no assignment of the course (a typo, a course not yet updated)
    is named in a warning, never graded and never skipped in silence."""
    course = make_course(tmp_path / "course", 1)
    samples.write(samples.build(A1), course.root / "submitted" / "s00" / "a9_typo" / NAME)
    said: list[str] = []
    jobs = discover(course, log=said.append)
    assert [(j.assignment, j.student) for j in jobs] == [(A1.id, "s00")]
    assert len(said) == 1 and "submitted/s00/a9_typo" in said[0] and "not graded" in said[0], said


@pytest.mark.requires_protection(USER)  # (bubblewrap's view protects too; without either, student code is the grader)
def test_a_submission_cannot_touch_other_students_results_or_the_gradebook(tmp_path) -> None:
    course = make_course(tmp_path / "course", 1)
    root = course.root
    victim = root / "graded" / "s00" / A1.id / "results.json"
    gradebook = root / "gradebook.db"
    attack = ("import os, glob\n"
              f"targets = [{str(victim)!r}, {str(gradebook)!r}, {str(root / 'grades.csv')!r}]\n"
              "for t in targets + glob.glob('/**/results.json', recursive=True):\n"
              "    try:\n"
              "        open(t, 'w').write('{}')\n"
              "    except OSError:\n"
              "        pass\n")
    samples.write(samples.build(A1, extra_cells=[attack]), root / "submitted" / "zz_attacker" / A1.id / NAME)
    grade_course(course, workers=1, limits=TEST_LIMITS, students=["s00"])
    before = victim.read_bytes()
    summary = grade_course(course, workers=1, limits=TEST_LIMITS)
    assert [r.student for r in summary.graded] == ["zz_attacker"]
    assert victim.read_bytes() == before and not gradebook.exists()
    assert read_result(root / "graded" / "zz_attacker" / A1.id).score == FULL


def test_cli_grade_prints_a_summary_and_exits_zero_when_every_submission_has_a_result(tmp_path) -> None:
    root = make_course(tmp_path / "course", 2).root
    samples.write(b"{broken", root / "submitted" / "s02" / A1.id / NAME)
    done = run_cli("grade", str(root), "--assignment", A1.id, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "s02" in done.stdout and "graded 3, unchanged 0" in done.stdout
    assert "[3/3]" in done.stderr and "Sandbox protections" in done.stderr
    bad = run_cli("grade", str(root), "--assignment", "nope")
    assert bad.returncode == 2 and "unknown assignment 'nope'" in bad.stderr


def test_cli_grade_finds_the_course_from_the_current_folder_or_dlgrade_home(tmp_path) -> None:
    """No COURSE given: the course is DLGRADE_HOME, else the current folder or its nearest parent holding
    nbgrader_config.py; a folder in no course is told how to name one."""
    root = make_course(tmp_path / "course", 1).root
    env = {k: v for k, v in os.environ.items() if k != "DLGRADE_HOME"}
    inside = run_cli("grade", "--workers", "1", cwd=root / "submitted", env=env)
    assert inside.returncode == 0 and "graded 1, unchanged 0" in inside.stdout, inside.stderr
    home = run_cli("grade", "--workers", "1", cwd=tmp_path, env={**env, "DLGRADE_HOME": str(root)})
    assert home.returncode == 0 and "graded 0, unchanged 1" in home.stdout, home.stderr
    nowhere = run_cli("grade", cwd=tmp_path, env=env)
    assert nowhere.returncode == 2 and "no course here" in nowhere.stderr and "--course" in nowhere.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root writes files another user owns")
def test_as_root_what_the_grader_writes_belongs_to_the_course_owner(tmp_path) -> None:
    """`dlgrade grade` as root (the grading image) on a TA's folder: results, CSV and plot end up the TA's."""
    root = make_course(tmp_path / "course", 1).root
    ta = 4242
    for path in [root, *root.rglob("*")]:
        os.lchown(path, ta, ta)
    assert run_cli("grade", str(root), "--workers", "1").returncode == 0
    written = [root / "grades.csv", root / "grades.svg", *(root / "graded").rglob("*")]
    assert len(written) >= 6 and all(p.exists() for p in written)
    assert {(p.lstat().st_uid, p.lstat().st_gid) for p in written} == {(ta, ta)}


def test_a_sandbox_spawned_before_the_course_was_read_grades_or_is_closed(tmp_path) -> None:
    """`dlgrade grade` spawns its first sandbox before it reads the course: the batch takes it as its first worker
    (and tells it what to import), or closes it when it was made for other limits, whose sandbox starts afresh."""
    course = make_course(tmp_path / "course", 1)
    first = Worker(0, TEST_LIMITS, hide=course.secrets)
    first.spawn()
    try:
        adopted = grade_course(course, workers=1, limits=TEST_LIMITS, first=first)
    finally:
        first.close()
    assert first.ready is not None and "numpy" in first.ready.preloaded
    assert [r.score for r in adopted.graded] == [FULL] and adopted.sandboxes == 1
    other = Worker(0, hide=course.secrets)  # the default limits, not the batch's
    other.spawn()
    try:
        fresh = grade_course(course, workers=1, limits=TEST_LIMITS, force=True, first=other)
        assert other.proc is None and other.ready is None  # closed unused
    finally:
        other.close()
    assert [r.score for r in fresh.graded] == [FULL]


def test_a_submission_the_grader_failed_on_is_graded_again_not_kept(tmp_path, monkeypatch) -> None:
    """A sandbox that dies under a submission (not the student's doing) costs nothing: the batch grades it again
    at once in a restarted sandbox; one that fails every time keeps a result saying so, and the next run grades it
    again instead of calling it unchanged."""
    course = make_course(tmp_path / "course", 2)
    grade = Grader.grade
    killed: list[str] = []

    def sandbox_dies(self, folder, worker, student="", **kwargs):
        if student == "s00" and "s00" not in killed or student == "s01":
            killed.append(student)
            worker.proc.kill()  # the sandbox's process ends under the submission
            worker.proc.wait()
        return grade(self, folder, worker, student, **kwargs)

    monkeypatch.setattr(Grader, "grade", sandbox_dies)
    summary = grade_course(course, workers=1, limits=TEST_LIMITS)
    assert killed.count("s00") == 1 and results(course)["s00"] == FULL  # graded again, in full
    assert killed.count("s01") == 2 and results(course)["s01"] == 0
    s01 = read_result(course.root / "graded" / "s01" / A1.id)
    assert "This is not your fault" in s01.reason, s01.reason
    assert any("s01" in line and "graded again on the next run" in line for line in summary.failures), summary
    monkeypatch.setattr(Grader, "grade", grade)
    again = grade_course(course, workers=1, limits=TEST_LIMITS)
    assert again.skipped == 1 and [r.student for r in again.graded] == ["s01"]
    assert results(course)["s01"] == FULL - A1.points["mse_gradient"]  # s01 holds the wrong gradient

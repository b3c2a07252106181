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
from conftest import TEST_LIMITS

from autograder import course, samples
from autograder.batch import BatchError, discover, grade_course, in_shard, parse_shard
from autograder.reports import write_reports
from autograder.results import read_result
from autograder.sandbox import Worker
from autograder.sandbox.doctor import USER

# its module fixtures build a course (or an image) once: every test of this file runs in one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("batch")

A1 = "a1_linear_regression"
NAME = course.notebook_name(A1)
WRONG = {"mse_gradient": "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y)\n"}


def make_course(root: Path, n: int) -> Path:
    for i in range(n):
        nb = samples.build(A1, WRONG if i % 2 else None)
        samples.write(nb, root / "submitted" / f"s{i:02d}" / A1 / NAME)
    return root


def results(root: Path) -> dict[str, float]:
    return {p.parent.parent.name: read_result(p.parent).score for p in (root / "graded").glob(f"*/{A1}/results.json")}


def csv_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory) -> Path:
    root = make_course(tmp_path_factory.mktemp("course"), 6)
    grade_course(root, workers=2, limits=TEST_LIMITS)
    return root


def test_every_submission_gets_results_feedback_and_a_csv_row(graded_course) -> None:
    scores = results(graded_course)
    points = course.points(A1)
    full = sum(points.values())
    wrong = full - points["mse_gradient"]  # gradient_descent and minibatch_sgd keep theirs (follow-through)
    assert scores == {f"s{i:02d}": (full if i % 2 == 0 else wrong) for i in range(6)}
    for student in scores:
        assert (graded_course / "graded" / student / A1 / "feedback.html").is_file()
    rows = csv_rows(graded_course / "grades.csv")
    assert [(r["student"], float(r["score"])) for r in rows] == sorted(scores.items())
    svg = (graded_course / "grades.svg").read_text()
    assert svg.startswith("<svg") and "a1_linear_regression (n=6)" in svg
    assert "80-90 %: 3</title>" in svg and "90-100 %: 3</title>" in svg  # 10/12 and 12/12, three students each


def test_rerunning_regrades_only_changed_submissions_and_force_regrades_all(graded_course) -> None:
    stamp = {p: p.stat().st_mtime_ns for p in (graded_course / "graded").glob("*/*/results.json")}
    again = grade_course(graded_course, workers=1, limits=TEST_LIMITS)
    assert again.skipped == 6 and again.graded == []
    assert stamp == {p: p.stat().st_mtime_ns for p in stamp}
    samples.write(samples.build(A1), graded_course / "submitted" / "s01" / A1 / NAME)
    changed = grade_course(graded_course, workers=1, limits=TEST_LIMITS)
    assert [r.student for r in changed.graded] == ["s01"] and changed.skipped == 5
    assert results(graded_course)["s01"] == sum(course.points(A1).values())
    forced = grade_course(graded_course, workers=2, limits=TEST_LIMITS, force=True)
    assert len(forced.graded) == 6 and forced.skipped == 0


@pytest.fixture
def ctrl_c():
    """Ctrl-C as a terminal delivers it: SIGINT raises KeyboardInterrupt here and in the processes started here.
    A shell's background job (``cmd &`` without job control: nohup, some CI runners) starts with SIGINT ignored,
    and a Python started with SIGINT ignored keeps ignoring it; these tests are about Ctrl-C, not about that."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler: exec resets it to the default
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c")
@pytest.mark.parametrize("stop", ["ctrl-c", "kill, started in the background"])
def test_an_interrupted_batch_resumes_without_losing_or_duplicating(tmp_path, stop: str) -> None:
    """Ctrl-C, or SIGTERM (``kill``, ``docker stop``) to a batch started as a background job, which ignores
    Ctrl-C (README, TAs)."""
    root = make_course(tmp_path, 8)
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
    stored = [read_result(j.out) for j in discover(root) if (j.out / "results.json").exists()]
    assert all(r.extra.get("sha256") and not (r.reason or "").startswith("The grader failed") for r in stored), \
        [r.reason for r in stored]
    summary = grade_course(root, workers=2, limits=TEST_LIMITS)
    assert summary.skipped == done_before and len(summary.graded) == 8 - done_before
    fresh = make_course(tmp_path / "fresh", 8)
    grade_course(fresh, workers=2, limits=TEST_LIMITS)
    assert results(root) == results(fresh)
    assert len(csv_rows(root / "grades.csv")) == 8


@pytest.mark.usefixtures("ctrl_c")
def test_a_grading_cut_short_by_an_interruption_leaves_no_result(tmp_path) -> None:
    """Ctrl-C closes the sandbox under a submission being graded: that submission gets no result (not a grader
    failure) and the next run grades it; the process may live on a while after (a notebook server, a test)."""
    samples.write(samples.build(A1), tmp_path / "submitted" / "s00" / A1 / NAME)
    samples.write(samples.build(A1, extra_cells=["import time\ntime.sleep(4)"]),
                  tmp_path / "submitted" / "s01" / A1 / NAME)

    def interrupt_once_the_first_is_graded() -> None:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("graded/s00/*/results.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_the_first_is_graded, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        grade_course(tmp_path, workers=1, limits=TEST_LIMITS)
    time.sleep(2)
    assert not (tmp_path / "graded" / "s01" / A1 / "results.json").exists()
    summary = grade_course(tmp_path, workers=1, limits=TEST_LIMITS)
    assert summary.skipped == 1 and [r.student for r in summary.graded] == ["s01"]


def test_shards_merged_equal_an_unsharded_run(tmp_path) -> None:
    whole = make_course(tmp_path / "whole", 6)
    grade_course(whole, workers=2, limits=TEST_LIMITS)
    jobs = discover(whole)
    shards = [[j.student for j in jobs if in_shard(j, (i, 3))] for i in (1, 2, 3)]
    assert sorted(sum(shards, [])) == sorted(j.student for j in jobs)
    merged = tmp_path / "merged"
    for i in (1, 2, 3):
        part = make_course(tmp_path / f"shard{i}", 6)
        grade_course(part, workers=1, limits=TEST_LIMITS, shard=(i, 3))
        assert sorted(results(part)) == sorted(shards[i - 1])
        for path in (part / "graded").glob("*/*/*"):
            target = merged / path.relative_to(part)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    write_reports(merged)
    assert csv_rows(merged / "grades.csv") == csv_rows(whole / "grades.csv")


def test_shard_and_option_errors_are_explained(tmp_path) -> None:
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1-2"):
        with pytest.raises(BatchError, match="shard"):
            parse_shard(bad)
    with pytest.raises(BatchError, match="no submitted/ folder"):
        discover(tmp_path)
    make_course(tmp_path, 1)
    with pytest.raises(BatchError, match="unknown assignment 'a9'"):
        discover(tmp_path, ["a9"])


@pytest.mark.requires_protection(USER)  # (bubblewrap's view protects too; without either, student code is the grader)
def test_a_submission_cannot_touch_other_students_results_or_the_gradebook(tmp_path) -> None:
    root = make_course(tmp_path, 1)
    victim = root / "graded" / "s00" / A1 / "results.json"
    gradebook = root / "gradebook.db"
    attack = ("import os, glob\n"
              f"targets = [{str(victim)!r}, {str(gradebook)!r}, {str(root / 'grades.csv')!r}]\n"
              "for t in targets + glob.glob('/**/results.json', recursive=True):\n"
              "    try:\n"
              "        open(t, 'w').write('{}')\n"
              "    except OSError:\n"
              "        pass\n")
    samples.write(samples.build(A1, extra_cells=[attack]), root / "submitted" / "zz_attacker" / A1 / NAME)
    grade_course(root, workers=1, limits=TEST_LIMITS, students=["s00"])
    before = victim.read_bytes()
    summary = grade_course(root, workers=1, limits=TEST_LIMITS)
    assert [r.student for r in summary.graded] == ["zz_attacker"]
    assert victim.read_bytes() == before and not gradebook.exists()
    assert read_result(root / "graded" / "zz_attacker" / A1).score == sum(course.points(A1).values())


def test_cli_grade_prints_a_summary_and_exits_zero_when_every_submission_has_a_result(tmp_path) -> None:
    root = make_course(tmp_path, 2)
    samples.write(b"{broken", root / "submitted" / "s02" / A1 / NAME)
    done = run_cli("grade", str(root), "--assignment", A1, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "s02" in done.stdout and "graded 3, unchanged 0" in done.stdout
    assert "[3/3]" in done.stderr and "Sandbox protections" in done.stderr
    bad = run_cli("grade", str(root), "--assignment", "nope")
    assert bad.returncode == 2 and "unknown assignment 'nope'" in bad.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root writes files another user owns")
def test_as_root_what_the_grader_writes_belongs_to_the_course_owner(tmp_path) -> None:
    """`dlgrade grade` as root (the grading image) on a TA's folder: results, CSV and plot end up the TA's."""
    root = make_course(tmp_path / "course", 1)
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
    make_course(tmp_path, 1)
    full = sum(course.points(A1).values())
    first = Worker(0, TEST_LIMITS, hide=course.secret_paths())
    first.spawn()
    try:
        adopted = grade_course(tmp_path, workers=1, limits=TEST_LIMITS, first=first)
    finally:
        first.close()
    assert first.ready is not None and "numpy" in first.ready.preloaded
    assert [r.score for r in adopted.graded] == [full] and adopted.sandboxes == 1
    other = Worker(0, hide=course.secret_paths())  # the default limits, not the batch's
    other.spawn()
    try:
        fresh = grade_course(tmp_path, workers=1, limits=TEST_LIMITS, force=True, first=other)
        assert other.proc is None and other.ready is None  # closed unused
    finally:
        other.close()
    assert [r.score for r in fresh.graded] == [full]

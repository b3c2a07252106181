"""One submission on a machine with more cores than submissions: its checks are shared between two sandboxes, and
its result is word for word the one a single sandbox gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import A1, A3, TEST_LIMITS, copy_course

from autograder.authoring import samples
from autograder.course import Course
from autograder.grading.batch import grade_course
from autograder.reporting.results import SubmissionResult
from autograder.sandbox import SandboxError, Worker
from autograder.sandbox.cgroups import usable_cores


def one_submission(root: Path, replace: dict[str, str] | None = None) -> Course:
    """A course folder like the built-in one holding one submission of a3."""
    course = copy_course(root / "course")
    samples.write(samples.build(A3, replace), course.root / "submitted" / "s" / A3.id / A3.notebook)
    return course


def verdicts(result: SubmissionResult) -> list[tuple[str, float, float, str]]:
    return [(t.name, t.score, t.max_score, t.output) for t in result.tests]


def mistake(function: str) -> dict[str, str]:
    return next(m.cells for m in A3.suite.mistakes if m.function == function and not m.advisory)


@pytest.mark.parametrize("function, note", [
    ("train_one_epoch", "Follow-through applied: your train_one_epoch fails its own tests"),  # fit, judged with it
    ("save_checkpoint", "Note: your save_checkpoint fails its own tests"),  # load_checkpoint, coupled to it
])
@pytest.mark.slow
def test_two_sandboxes_give_one_submission_the_verdicts_of_one(tmp_path, function, note) -> None:
    """The helper a function calls and the function are judged in one sandbox (follow-through needs the helper's
    verdict first); a note about a coupled function is written once every verdict is in, wherever each ran."""
    course = one_submission(tmp_path, mistake(function))
    alone = grade_course(course, workers=1, limits=TEST_LIMITS)
    shared = grade_course(course, workers=2, limits=TEST_LIMITS, force=True)
    assert (alone.sandboxes, shared.sandboxes) == (1, 2)
    assert not alone.errors and not shared.errors and not shared.failures
    assert verdicts(shared.graded[0]) == verdicts(alone.graded[0])
    assert shared.graded[0].score == alone.graded[0].score < alone.graded[0].max_score
    assert any(note in output for *_, output in verdicts(shared.graded[0]))


@pytest.mark.slow
@pytest.mark.parametrize("step", ["wait_ready", "run_notebook"])
def test_a_helper_sandbox_that_fails_costs_the_submission_nothing(tmp_path, monkeypatch, step) -> None:
    """A second sandbox that cannot start, or cannot replay the notebook, is left out: the first grades alone."""
    original = getattr(Worker, step)

    def second_fails(self: Worker, *args, **kwargs):
        if self.index == 1:
            raise SandboxError("the second sandbox failed (test)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Worker, step, second_fails)
    summary = grade_course(one_submission(tmp_path), workers=2, limits=TEST_LIMITS)
    assert summary.sandboxes == 2 and not summary.errors and not summary.failures
    result = summary.graded[0]
    assert result.score == result.max_score == sum(A3.points.values()), verdicts(result)


@pytest.mark.parametrize("assignment, students, sandboxes", [
    pytest.param(A3, 3, 2, id="a3_training_loop-3-2", marks=pytest.mark.slow),  # more submissions than workers: one
    # sandbox each
    pytest.param(A1, 1, 1, id="a1_linear_regression-1-1"),  # no long check: a second sandbox would cost more than it
    # saves
])
def test_a_submission_gets_one_sandbox_when_sharing_saves_nothing(tmp_path, assignment, students, sandboxes) -> None:
    course = copy_course(tmp_path / "course")
    for i in range(students):
        samples.write(samples.build(assignment),
                      course.root / "submitted" / f"s{i}" / assignment.id / assignment.notebook)
    summary = grade_course(course, workers=2, limits=TEST_LIMITS)
    assert summary.sandboxes == sandboxes and len(summary.graded) == students
    assert all(r.score == r.max_score for r in summary.graded)


@pytest.mark.parametrize("version, files, expected", [
    ("v2", {"cpu.max": "150000 100000"}, 1),  # --cpus 1.5 on the container's own cgroup
    ("v2", {"cpu.max": "max 100000", "..": {"cpu.max": "100000 100000"}}, 1),  # a parent's quota counts too
    ("v2", {"cpu.max": "max 100000"}, None),  # no quota: the CPU affinity decides
    ("v1", {"cpu.cfs_quota_us": "100000", "cpu.cfs_period_us": "100000"}, 1),
    ("v1", {"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"}, None),
])
def test_the_default_number_of_workers_respects_a_cpu_quota(tmp_path, version, files, expected) -> None:
    root = tmp_path / "cgroup"
    own = root / ("cpu" if version == "v1" else "") / "grading" / "job"
    own.mkdir(parents=True)
    for name, text in files.items():
        if name == "..":
            for parent_name, parent_text in text.items():
                (own.parent / parent_name).write_text(parent_text)
        else:
            (own / name).write_text(text)
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text("4:cpu,cpuacct:/grading/job\n" if version == "v1" else "0::/grading/job\n")
    affinity = usable_cores(tmp_path / "nothing", self_cgroup)
    assert usable_cores(root, self_cgroup) == (min(expected, affinity) if expected else affinity)

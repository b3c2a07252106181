"""Shared fixtures: one warm sandbox for the session, and helpers to grade a notebook built in a test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from autograder import settings
from autograder.authoring import samples
from autograder.authoring.scaffold import copy_definition
from autograder.checking.suite import Mistake, Variant
from autograder.course import Assignment, Course, sandbox_imports
from autograder.grading.grader import Grader
from autograder.reporting.results import SubmissionResult
from autograder.sandbox import Limits, Worker, bwrap, protections
from autograder.sandbox.doctor import cgroup_hierarchy

# nbgrader (run by the parity tests) calls its `alembic` script from PATH: use this environment's.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
# Under pytest-xdist each test process runs student code as uids of its own (worker gwN: base + 100 (N + 1)), so
# that checks of the form "no student process is left" look at their own students only: not at another worker's,
# nor at those of an image a container test runs meanwhile, which uses the default base.
if os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    _base = int(os.environ.get("DLGRADE_UID_BASE", "61000"))
    os.environ["DLGRADE_UID_BASE"] = str(_base + 100 * (1 + int(os.environ["PYTEST_XDIST_WORKER"][2:])))

# Budgets small enough that a test of an endless loop takes seconds, big enough for real work on 2 cores.
TEST_LIMITS = Limits(cell_seconds=6.0, notebook_seconds=90.0, call_seconds=6.0)
REPO = Path(__file__).resolve().parents[1]
# The built-in course: this repository's root is a course folder like any other (tests/course/test_course.py also
# grades a copy of it from a temporary folder).
COURSE = Course.at(REPO)
A1, A2, A3, A4, A5 = (COURSE.assignment(a) for a in COURSE.assignments())


def quick_sample(cases: list[tuple], ids: list[str]) -> list:
    """``cases`` (an assignment first in each) as parameters: the first case of each assignment runs in the quick
    loop (``-m "not slow"``), the others are marked slow. CI runs them all."""
    seen: set[str] = set()
    params = []
    for case, name in zip(cases, ids, strict=True):
        first = case[0].id not in seen
        seen.add(case[0].id)
        params.append(pytest.param(*case, id=name, marks=() if first else pytest.mark.slow))
    return params


def copy_course(root: Path, assignments: list[str] | None = None) -> Course:
    """A course folder at ``root`` defined as the built-in one (all its assignments, or ``assignments``), with the
    same seed salt, and no submissions yet."""
    return copy_definition(REPO, root, assignments)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.requires_protection(NAME, ...)``: skip where this machine lacks one of the protections the
    test exercises, or fail, when DLGRADE_REQUIRE_SANDBOX=1 (CI), so that a security test cannot quietly vanish."""
    marker = item.get_closest_marker("requires_protection")
    if marker is None:
        return
    active = {p.name for p in protections() if p.active}
    missing = [name for name in marker.args if name not in active]
    if not missing:
        return
    reason = f"needs {', '.join(missing)} (see `dlgrade doctor`)"
    if settings.current().require_sandbox:
        pytest.fail(f"{reason}, and DLGRADE_REQUIRE_SANDBOX=1 forbids skipping it")
    pytest.skip(reason)


def clear_sandbox_caches() -> None:
    """Forget what was found about this machine, after the environment changed."""
    settings.current.cache_clear()
    bwrap.path.cache_clear()
    cgroup_hierarchy.cache_clear()


@pytest.fixture
def sandbox_mode(monkeypatch: pytest.MonkeyPatch):
    """sandbox_mode(no_bwrap=True, no_seccomp=True, ...): grade as a machine without those protections would."""

    def switch(**flags: bool) -> None:
        for name, on in flags.items():
            monkeypatch.setenv(f"DLGRADE_{name.upper()}", "1" if on else "")
        clear_sandbox_caches()

    yield switch
    monkeypatch.undo()
    clear_sandbox_caches()


@pytest.fixture(scope="session")
def worker() -> Iterator[Worker]:
    preload, warm, probes = sandbox_imports([COURSE.assignment(a) for a in COURSE.assignments()])
    with Worker(0, TEST_LIMITS, preload=("numpy",), hide=COURSE.secrets, probes=probes) as w:
        yield w


@pytest.fixture(scope="session")
def graders() -> dict[str, Grader]:
    return {}


@pytest.fixture
def grade(worker: Worker, graders: dict[str, Grader], tmp_path: Path):
    """grade(assignment, notebook_or_bytes, name=None) -> SubmissionResult, through the real sandbox."""

    def run(assignment: Assignment, nb: nbformat.NotebookNode | bytes | str, name: str | None = None,
            only: set[str] | None = None) -> SubmissionResult:
        key = f"{assignment.course.root}:{assignment.id}"  # a copy of the course has graders of its own
        if key not in graders:
            graders[key] = Grader(assignment)
        folder = tmp_path / "submitted" / "student" / assignment.id
        samples.write(nb, folder / (name or assignment.notebook))
        return graders[key].grade(folder, worker, "student", only=only)

    return run


def failing_functions(result: SubmissionResult) -> set[str]:
    """Functions with at least one failed test."""
    return {t.name.split(":")[0] for t in result.tests if t.score < t.max_score}


def outputs(result: SubmissionResult, function: str) -> str:
    return "\n".join(t.output for t in result.tests if t.name.startswith(f"{function}:"))


def assert_full_marks_and_zero(grade, assignment: Assignment) -> None:
    """The reference (every solution cell filled in) gets full marks; the untouched release gets zero."""
    full = grade(assignment, samples.build(assignment))
    assert full.score == full.max_score == sum(assignment.points.values()), full.to_json()
    assert all(t.output == "" for t in full.tests)
    assert grade(assignment, samples.build(assignment, solved=False)).score == 0


def concerned(assignment: Assignment, cells: dict[str, str]) -> set[str] | None:
    """The functions whose verdicts replacing ``cells`` can change: their own, the functions that call them
    (follow-through) and those coupled to them. Grading only these keeps the catalogue's tests fast; every other
    function is untouched and passes, as the full marks of the reference show."""
    suite = assignment.suite
    changed = {f for f in suite.functions if f in cells}
    if len(changed) < len(cells):  # a cell that is not one function's: grade everything
        return None
    return changed | {f for f, helpers in {**suite.depends, **suite.coupled}.items() if changed & set(helpers)}


def assert_mistake_caught(grade, assignment: Assignment, mistake: Mistake) -> SubmissionResult:
    """A known mistake loses points on its own function only (functions that call it are judged with follow-through
    credit, and their feedback says so; only a function coupled to it where follow-through is impossible may lose
    points too), and the function's feedback contains the catalogued fragment. An advisory mistake loses no points."""
    suite = assignment.suite
    result = grade(assignment, samples.build(assignment, mistake.cells), only=concerned(assignment, mistake.cells))
    lost = failing_functions(result)
    text = outputs(result, mistake.function)
    if mistake.advisory:
        assert lost == set(), (lost, text)
        assert result.score == result.max_score
        advisory = "\n".join(t.output for t in result.tests if t.name.startswith(f"{mistake.function}:")
                             and t.max_score == 0)
        assert mistake.feedback in advisory and "Advisory (no points)" in advisory, text
        return result
    coupled = {f for f, helpers in suite.coupled.items() if mistake.function in helpers}
    assert mistake.function in lost and lost <= {mistake.function} | coupled, (lost, result.to_json())
    assert mistake.feedback in text, text
    for dependant in (f for f, deps in suite.depends.items() if mistake.function in deps):
        assert "Follow-through applied" in outputs(result, dependant), outputs(result, dependant)
    return result


def assert_full_marks(grade, assignment: Assignment, variant: Variant) -> None:
    """A correct variant the contract allows gets full marks with no feedback at all."""
    result = grade(assignment, samples.build(assignment, variant.cells), only=concerned(assignment, variant.cells))
    failed = {t.name: t.output for t in result.tests if t.score < t.max_score or t.output}
    assert result.score == result.max_score and not failed, failed


def nbgrader(root: Path, *args: str) -> None:
    """Run stock nbgrader in a course folder; fail with its output."""
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def release_a1(root: Path) -> Course:
    """A scratch course like the built-in one with a1 alone, released afresh by stock nbgrader into its gradebook."""
    course = copy_course(root, [A1.id])
    shutil.rmtree(root / "assignments")
    nbgrader(root, "db", "assignment", "add", A1.id)
    nbgrader(root, "generate_assignment", A1.id)
    return course


def release_course(root: Path, gradebook: bool) -> Path:
    """A scratch course like the built-in one, every assignment released afresh by stock nbgrader (into its
    gradebook when ``gradebook``)."""
    copy_course(root)
    shutil.rmtree(root / "assignments")
    for assignment in COURSE.assignments():
        if gradebook:
            nbgrader(root, "db", "assignment", "add", assignment)
            nbgrader(root, "generate_assignment", assignment)
        else:
            nbgrader(root, "generate_assignment", assignment, "--no-db")
    return root

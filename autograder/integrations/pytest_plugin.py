"""Run an assignment's checks on a notebook as pytest items, through the same sandbox as ``dlgrade grade``.

    python -m pytest -p autograder.pytest_plugin --submission linear_regression.ipynb
    python -m pytest -p autograder.pytest_plugin --submission nb.ipynb --assignment a1_linear_regression -k mse
    python -m pytest -p autograder.pytest_plugin --submission nb.ipynb --course ~/mycourse

One item per check, seed and device, with ids like
``a1_linear_regression::mse_gradient::matches the reference on random beta, X and y[hidden-1-cpu]``; a failing item
shows the message the student would get. ``-k``, ``--lf``, ``--junitxml`` and an IDE's run and debug work as for any
pytest test. The verdicts are ``dlgrade grade``'s: a check passes there exactly when all its items pass here, and
follow-through applies the same way (a function whose helper fails its own checks is run with the reference's
helper). With several ``--submission`` options, each notebook's items are prefixed by its path.

The course is found as every dlgrade command finds it: ``--course DIR``, else ``DLGRADE_HOME``, else the current
folder or its nearest parent holding ``nbgrader_config.py``. This is how an instructor writes and debugs a check:
add it to the course's ``checks/<id>.py``, then run it against the reference (``samples.build``) and against a
mistaken notebook and watch it pass and fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SESSION = pytest.StashKey["GradingSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dlgrade", "grading a notebook with dlgrade's checks")
    group.addoption("--submission", action="append", default=[], type=Path, metavar="NOTEBOOK",
                    help="a student notebook to grade (repeatable)")
    group.addoption("--assignment", default=None, metavar="ID",
                    help="the assignment (default: from the notebook's name, else its graded cells)")
    group.addoption("--course", default=None, type=Path, metavar="DIR",
                    help="the course folder (default: DLGRADE_HOME, else the nearest folder holding "
                    "nbgrader_config.py)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("submission"):
        config.stash[SESSION] = GradingSession()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def pytest_collection(session: pytest.Session) -> bool | None:
    """With ``--submission``: collect the checks of each notebook, and nothing else."""
    config = session.config
    notebooks = config.getoption("submission")
    if not notebooks:
        return None
    items: list[pytest.Item] = []
    grading = config.stash[SESSION]
    from autograder.course import CourseError, find

    try:
        grading.course = find(config.getoption("course"))
    except CourseError as err:
        raise pytest.UsageError(str(err)) from err
    for path in notebooks:
        name = _assignment(path, config.getoption("assignment"), grading.course)
        grading.assignments.append(name)
        nodeid = name if len(notebooks) == 1 else f"{path}::{name}"
        node = Submission.from_parent(session, name=name, path=path.resolve(), nodeid=nodeid, assignment=name)
        for group in node.collect():
            items += group.collect()
    config.hook.pytest_collection_modifyitems(session=session, config=config, items=items)
    session.items = items
    session.testscollected = len(items)
    config.hook.pytest_collection_finish(session=session)
    return True


def _assignment(path: Path, given: str | None, course: Any) -> str:
    from autograder.course import CourseError
    from autograder.course.notebook import NotebookError, read_cells
    from autograder.grading.public_tests import assignment_of

    try:
        if given:
            return course.assignment(given).id  # CourseError for one the course does not define
        found = assignment_of(path, read_cells(path), course)
    except (CourseError, NotebookError) as err:
        raise pytest.UsageError(f"{path}: {err}") from err
    if found is None:
        raise pytest.UsageError(f"cannot tell which assignment of {course.root} {path.name} belongs to: pass "
                                "--assignment")
    return found.id


class Submission(pytest.Collector):
    """One notebook: a group of items per graded function."""

    def __init__(self, *, assignment: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.assignment = assignment

    def collect(self) -> Iterator[Function]:
        course = self.config.stash[SESSION].course
        for function in course.assignment(self.assignment).suite.functions:
            yield Function.from_parent(self, name=function)


class Function(pytest.Collector):
    """The checks of one graded function, each on every seed and device."""

    def collect(self) -> Iterator[CheckItem]:
        from autograder.checking import policy

        submission: Submission = self.parent
        course = self.config.stash[SESSION].course
        for check in course.assignment(submission.assignment).suite.checks:
            if check.function != self.name:
                continue
            runs = check.runs
            devices = policy.devices() if check.on_devices else ("cpu",)
            for device in devices:
                for number, (seed, public) in enumerate(runs):
                    where = "public" if public else f"hidden-{number}"
                    name = f"{check.description}[{where}-{device}]"
                    # the node id as a string, so that pytest parses its [...] as parameters, as --lf expects
                    yield CheckItem.from_parent(self, name=name, nodeid=f"{self.nodeid}::{name}", check=check,
                                                seed=seed, public=public, device=device)


class CheckItem(pytest.Item):
    """One check on one seed and one device."""

    def __init__(self, *, check: Any, seed: int, public: bool, device: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check, self.seed, self.public, self.device = check, seed, public, device

    def runtest(self) -> None:
        submission: Submission = self.parent.parent
        grading = self.config.stash[SESSION]
        message = grading.run(submission, self.check, self.seed, self.public, self.device)
        if message is not None:
            raise CheckFailed(message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.parent.name}: {self.name}"


class CheckFailed(Exception):
    """A check failed; the message is the student's feedback."""


class GradingSession:
    """One sandbox worker for the whole pytest session, one notebook run at a time."""

    def __init__(self) -> None:
        self.worker = None
        self.current: Path | None = None
        self.graders: dict[str, Any] = {}
        self.helper_verdicts: dict[str, bool] = {}
        self.assignments: list[str] = []  # of the notebooks collected: what the worker imports first
        self.course: Any = None

    def run(self, submission: Submission, check: Any, seed: int, public: bool, device: str) -> str | None:
        from autograder.checking.trial import run_check

        grader = self._start(submission)
        helpers = grader.suite.depends.get(check.function, [])
        unjudged = [h for h in helpers if h not in self.helper_verdicts]
        if unjudged:  # follow-through as ``dlgrade grade`` decides it: the helpers' own checks (with their own
            # helpers, for their follow-through), judged by the grader
            needed = set(unjudged)
            while True:
                more = {g for h in needed for g in grader.suite.depends.get(h, [])} - needed
                if not more:
                    break
                needed |= more
            failed = grader.failed_functions(self.worker, needed)
            self.helper_verdicts.update({h: h in failed for h in needed})
        stubs = grader.suite.stubs(check.function, [h for h in helpers if self.helper_verdicts[h]])
        outcome = run_check(check, self.worker, grader.reference, devices=[device], stubs=stubs,
                            runs=[(seed, public)])
        return None if outcome.passed else outcome.output

    def _start(self, submission: Submission) -> Any:
        from autograder.course import sandbox_imports
        from autograder.course.notebook import cells_to_run, read_cells
        from autograder.grading.grader import Grader
        from autograder.sandbox import Worker

        grader = self.graders.get(submission.assignment)
        if grader is None:
            grader = self.graders[submission.assignment] = Grader(self.course.assignment(submission.assignment))
        if self.current != submission.path:
            if self.worker is None:
                preload, warm, probes = sandbox_imports([self.course.assignment(a) for a in self.assignments])
                self.worker = Worker(0, preload=preload, hide=self.course.secrets, warm_torch=warm, probes=probes)
                self.worker.start()
            else:
                self.worker.end_submission()
            self.worker.run_notebook(cells_to_run(read_cells(submission.path), include_tests=False,
                                                  demo_sources=grader.demo_sources))
            self.current, self.helper_verdicts = submission.path, {}
        return grader

    def close(self) -> None:
        if self.worker is not None:
            self.worker.end_submission()
            self.worker.close()
            self.worker = None

"""Grading one submission: read it, run it in the sandbox, run the checks, decide the points."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TypeVar

from autograder.checking.messages import cell_notes
from autograder.checking.refcache import ReferenceCache
from autograder.checking.sides import ReferenceSide, StudentSide
from autograder.checking.suite import Check
from autograder.checking.trial import TestOutcome, run_check
from autograder.course import Assignment
from autograder.course.notebook import (
    Cell,
    NotebookError,
    cells_to_run,
    demo_cells,
    find_notebook,
    has_nbgrader_metadata,
    parse_cells,
    read_file,
)
from autograder.course.points import from_units, total
from autograder.grading.parallel import deal, in_parallel, raise_first
from autograder.reporting.results import SubmissionResult, TestResult
from autograder.runtime.protocol import Started
from autograder.sandbox import SandboxError, Worker

GRADER_VERSION = "4"  # 4: the course's checks, reference and probes in the fingerprint
NOT_YOUR_FAULT = "This is not your fault; please tell your instructor."
# the fingerprint of a result the grader, not the student, spoiled (its sandbox died, a check could not run): no
# submission has it, so the next `dlgrade grade` grades that submission again instead of calling it unchanged
NOT_FINAL = ""


def is_final(result: SubmissionResult) -> bool:
    """Whether ``result`` is the submission's verdict, not one the grader spoiled (see :data:`NOT_FINAL`)."""
    return result.extra.get("sha256") != NOT_FINAL
T = TypeVar("T")
R = TypeVar("R")


def fingerprint(data: bytes | None, assignment: Assignment, points: dict[str, float] | None = None) -> str:
    """Content hash deciding whether a stored result is still current: the notebook's bytes, the points it earns,
    and the assignment's checks, reference and probes (a changed one regrades what it affects)."""
    digest = hashlib.sha256(f"dlgrade{GRADER_VERSION}:{assignment.id}:{sorted((points or {}).items())}:"
                            f"{assignment.definition_hash}:".encode())
    digest.update(b"none" if data is None else data)
    return digest.hexdigest()


def submission_fingerprint(folder: Path, assignment: Assignment, points: dict[str, float] | None = None) -> str:
    """:func:`fingerprint` of the notebook a folder holds (read as grading reads it: no links, size-capped)."""
    path, _ = find_notebook(folder, assignment.notebook)
    try:
        data = None if path is None else read_file(path)
    except NotebookError as err:
        data = f"refused: {err}".encode()
    return fingerprint(data, assignment, points)


class Grader:
    """Grades submissions of one assignment; the reference and its cached outputs live as long as it.

    Points come from the course's own notebook (``Assignment.points``; see ``autograder/course/definition.py``), each
    function's split exactly over its checks (``Assignment.check_units``).
    """

    def __init__(self, assignment: Assignment) -> None:
        self.definition = assignment
        self.assignment = assignment.id
        self.suite = assignment.suite
        probes = {assignment.probe_module: assignment.probes} if assignment.probes else {}
        self.reference = ReferenceSide(lambda: assignment.reference,
                                       ReferenceCache(assignment.id, assignment.reference_files()), probes)
        self.notebook = assignment.course_notebook
        self.points = assignment.points
        self.demo_sources = demo_cells(assignment.require_release())

    @property
    def max_score(self) -> float:
        return total(self.points.values())

    def grade(self, folder_or_file: Path, worker: Worker, student: str = "",
              only: Collection[str] | None = None, helpers: Sequence[Worker] = ()) -> SubmissionResult:
        """Grade the notebook in ``folder_or_file`` (a submission folder, or a notebook path). Whatever the notebook
        holds or does, this returns a result. ``only``: run the checks of these functions alone (the others are
        left out of the result: a test about one function needs no others). ``helpers``: more ready sandboxes that
        take a portion of the checks (each replays the notebook too); one that fails is left out, never the
        submission."""
        start = time.perf_counter()
        notes: list[str] = []
        path = folder_or_file
        if folder_or_file.is_dir():
            path, note = find_notebook(folder_or_file, self.suite.notebook)
            if note:
                notes.append(note)
        if path is None:
            return self._zero(student, f"No notebook found: expected {self.suite.notebook}.", start,
                              {"sha256": fingerprint(None, self.definition, self.points)})
        try:
            data = read_file(path)
        except NotebookError as err:
            return self._zero(student, f"The notebook could not be graded: {err}.", start,
                              {"sha256": fingerprint(f"refused: {err}".encode(), self.definition, self.points)})
        extra = {"sha256": fingerprint(data, self.definition, self.points)}
        try:
            cells = parse_cells(data)
        except NotebookError as err:
            return self._zero(student, f"The notebook could not be graded: {err}.", start, extra)
        if not has_nbgrader_metadata(cells):
            notes.append("the notebook has lost its nbgrader metadata; functions were found by name")
        run, team = self._replay(cells, [worker, *helpers])
        if isinstance(run, SandboxError):
            return self._zero(student, f"The grader's sandbox failed while running the notebook ({run}). "
                              f"{NOT_YOUR_FAULT}", start, {"sha256": NOT_FINAL})
        try:
            notes += cell_notes(cells, run)
            outcomes = self._run_checks(team, only)
        finally:
            raise_first(in_parallel(team, lambda w: w.end_submission()))
        result = self._result(student, outcomes, notes, start, extra)
        errors = [o.grader_error for o in outcomes if o.grader_error]
        if errors:  # the TA hears of it (dlgrade grade warns); the student's tests say it is not their fault
            result.extra["grader_errors"] = errors
            result.extra["sha256"] = NOT_FINAL
        result.skipped_cells = sum(not report.ok for report in run.cells)
        result.cells = cells
        return result

    def _replay(self, cells: list[Cell], workers: list[Worker]) -> tuple[Started | SandboxError, list[Worker]]:
        """Run the notebook in every sandbox at once: the first one's run (or why it failed), and the sandboxes
        that hold the notebook now (none when the first failed: then the submission's grading ends here)."""
        todo = cells_to_run(cells, include_tests=False, demo_sources=self.demo_sources)
        replays = in_parallel(workers, lambda w: w.run_notebook(todo))
        team = [w for w, replay in zip(workers, replays) if not isinstance(replay, Exception)]
        run = replays[0]
        if isinstance(run, Exception):
            for member in team:
                member.end_submission()
            if not isinstance(run, SandboxError):
                raise run
            return run, []
        return run, team

    def _run_checks(self, students: StudentSide | Sequence[StudentSide],
                    only: Collection[str] | None = None) -> list[TestOutcome]:
        """Every check, reported in suite order; a function whose helper failed is judged with the reference's
        helper. With several student sides (sandboxes holding the same notebook), each judges a portion of
        the :meth:`~autograder.checking.suite.Suite.groups` at once: the verdicts are those of judging them one after
        another."""
        team = list(students) if isinstance(students, Sequence) else [students]
        functions = [f for f in self.suite.functions if only is None or f in only]
        portions = deal([[c for c in self.suite.checks if c.function in group]
                         for group in self.suite.groups(functions)], len(team))
        order = {id(c): i for i, c in enumerate(self.suite.checks)}  # each portion judged in suite order
        portions = [sorted(portion, key=lambda c: order[id(c)]) for portion in portions]
        done = in_parallel(list(zip(team, portions)), lambda pair: self._run_in_order(pair[1], pair[0]))
        raise_first(done)
        outcomes = sorted((o for portion in done for o in portion), key=lambda o: self.suite.checks.index(o.check))
        self._note_coupled(outcomes)
        return outcomes

    def _run_in_order(self, checks: list[Check], student: StudentSide) -> list[TestOutcome]:
        """``checks`` on one student side, with follow-through for helpers that failed: first the public example of
        every check, then the hidden cases. So no feedback a student may read in full (the public example's values
        and their own messages) is produced once hidden inputs exist anywhere in the sandbox: whatever the notebook
        keeps from one call to the next, a public message cannot carry a hidden value."""
        failed: set[str] = set()
        public: list[tuple[TestOutcome, list[str]]] = []
        for check in checks:
            stubs = self.suite.stubs(check.function, failed)
            outcome = self._run_one(check, student, stubs, check.runs[:1])
            if not outcome.passed and not check.advisory:
                failed.add(check.function)
            public.append((outcome, stubs))
        outcomes = []
        for check, (first, stubs_then) in zip(checks, public):
            stubs = self.suite.stubs(check.function, failed)
            if not first.passed and stubs != stubs_then:
                # a helper failed only on a hidden case after this public example failed: judged again with the
                # correct helper, its feedback now without values (hidden inputs exist in the sandbox)
                first = self._run_one(check, student, stubs, check.runs[:1], show_values=False)
            outcome = first
            if first.passed and len(check.runs) > 1:
                outcome = _joined(first, self._run_one(check, student, stubs, check.runs[1:]))
            if not outcome.passed and not check.advisory:
                failed.add(check.function)
            outcomes.append(outcome)
        return outcomes

    def failed_functions(self, student: StudentSide, functions: Collection[str]) -> set[str]:
        """Which of ``functions`` fail any of their own graded checks on ``student``, judged as :meth:`grade` judges
        them (``dlgrade``'s pytest plugin decides follow-through with this)."""
        outcomes = self._run_checks(student, functions)
        return {o.check.function for o in outcomes if not o.passed and not o.check.advisory}

    def _note_coupled(self, outcomes: list[TestOutcome]) -> None:
        """A failed check of a function that a failed helper may have cost it (``Suite.coupled``) says so."""
        failed: set[str] = set()
        for outcome in outcomes:
            function = outcome.check.function
            coupled = [h for h in self.suite.coupled.get(function, []) if h in failed]
            if coupled and not outcome.passed:
                outcome.output += (f"\nNote: your {' and '.join(coupled)} fails its own tests, and {function} "
                                   "depends on it in a way follow-through cannot replace: that mistake may show "
                                   "here too.")
            if not outcome.passed and not outcome.check.advisory:
                failed.add(function)

    def _run_one(self, check: Check, student: StudentSide, stubs: list[str], runs: list[tuple[int, bool]],
                 show_values: bool = True) -> TestOutcome:
        start = time.perf_counter()
        try:
            outcome = run_check(check, student, self.reference, stubs=stubs, runs=runs, show_values=show_values)
        except Exception as err:  # noqa: BLE001 - a grader bug costs one test's verdict, never the submission's
            outcome = TestOutcome(check, False, f"This test could not be run: the grader failed ({type(err).__name__})"
                                  f". {NOT_YOUR_FAULT}", time.perf_counter() - start)
            outcome.grader_error = f"{check.name}: {type(err).__name__}: {err}"
            return outcome
        if stubs:
            names = " and ".join(stubs)
            outcome.output = ((outcome.output + "\n") if outcome.output else "") + (
                f"Follow-through applied: your {names} {'fails its' if len(stubs) == 1 else 'fail their'} own tests, "
                f"so this test called a correct {names} in {'its' if len(stubs) == 1 else 'their'} place: "
                f"{check.function} is judged on its own work.")
        return outcome

    def _result(self, student: str, outcomes: list[TestOutcome], notes: list[str], start: float,
                extra: dict) -> SubmissionResult:
        tests = []
        for outcome in outcomes:
            units = self.definition.check_units[self.suite.checks.index(outcome.check)]
            tests.append(TestResult(outcome.check.name, from_units(units if outcome.passed else 0), from_units(units),
                                    outcome.output, function=outcome.check.function))
        score = total(t.score for t in tests)
        every_check = len(outcomes) == len(self.suite.checks)
        max_score = self.max_score if every_check else total(t.max_score for t in tests)
        return SubmissionResult(student, self.assignment, score, max_score, time.perf_counter() - start,
                                tests=tests, extra=extra, notes=notes)

    def refusal(self, student: str, reason: str) -> SubmissionResult:
        """The result of a submission that is not graded (its folder is a link, say)."""
        return self._zero(student, f"The submission could not be graded: {reason}.", time.perf_counter(),
                          {"sha256": fingerprint(f"refused: {reason}".encode(), self.definition, self.points)})

    def failure(self, student: str, err: Exception) -> SubmissionResult:
        """The result of a submission the grader itself failed on."""
        return self._zero(student, f"The grader failed on this submission ({type(err).__name__}). {NOT_YOUR_FAULT}",
                          time.perf_counter(), {"sha256": NOT_FINAL})

    def _zero(self, student: str, reason: str, start: float, extra: dict) -> SubmissionResult:
        tests = [TestResult(c.name, 0.0, from_units(units), reason, function=c.function)
                 for c, units in zip(self.suite.checks, self.definition.check_units)]
        return SubmissionResult(student, self.assignment, 0.0, self.max_score, time.perf_counter() - start,
                                reason=reason, tests=tests, extra=extra)


def warm_reference_cache(assignment: Assignment) -> Path:
    """Compute every reference value the checks of ``assignment`` use (on every seed and device of this machine)
    and keep them in the reference cache; returns the cache file. Run where the grading image or bundle is built."""
    from autograder.checking.sides import LocalSide

    grader = Grader(assignment)
    # the reference in the student's place: every input occurs
    student = LocalSide(vars(grader.reference.module), grader.reference.probes)
    for check in grader.suite.checks:
        run_check(check, student, grader.reference)
    grader.reference.cache.save()
    return grader.reference.cache.path


def _joined(public: TestOutcome, hidden: TestOutcome) -> TestOutcome:
    """One check's outcome from its public example's and its hidden cases'."""
    joined = hidden if not hidden.passed else public
    return TestOutcome(public.check, public.passed and hidden.passed, joined.output, public.seconds + hidden.seconds,
                       public.grader_error or hidden.grader_error)

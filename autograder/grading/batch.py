"""Grading a whole course folder in nbgrader's layout, fast, resumably, and in shards.

``submitted/<student>/<assignment>/<notebook>.ipynb`` -> ``graded/<student>/<assignment>/results.json``
(+ ``feedback.html``) and ``autograded/<student>/<assignment>/<notebook>.ipynb`` (as ``nbgrader autograde`` leaves
it), then ``grades.csv``, ``grades.svg`` and nbgrader's ``gradebook.db`` (by ``dlgrade merge`` alone for shards).
Each worker thread owns one warm sandbox; reference outputs are cached in the shared graders.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import SALT_FILE, Assignment, Course, sandbox_imports
from autograder.grading.grader import Grader, is_final, submission_fingerprint
from autograder.grading.parallel import in_parallel, raise_first
from autograder.nbgrader_io import autograded
from autograder.reporting.files import write_reports, write_result
from autograder.reporting.progress import Progress
from autograder.reporting.results import SubmissionResult, read_result
from autograder.reporting.untrusted import for_terminal
from autograder.sandbox import Limits, SandboxError, Worker, cgroups, require_strong

PUBLIC_SALT = ("WARNING: the hidden test inputs come from dlgrade's public default seed salt: anyone who reads "
               "dlgrade's code can rebuild them and hard-code the answers. Give this course a private one: write "
               "seed_salt = \"<random text>\" into {salt} (dlgrade init does) or set DLGRADE_SEED_SALT.")


class BatchError(RuntimeError):
    """The course folder or the options make a batch impossible (a TA-facing message)."""


@dataclass(frozen=True)
class Job:
    """One submission to grade (``refused``: why it is not graded, e.g. its folder is a link)."""

    student: str
    assignment: str
    folder: Path
    out: Path
    refused: str = ""


@dataclass
class Summary:
    """What a batch did."""

    graded: list[SubmissionResult] = field(default_factory=list)
    skipped: int = 0
    errors: list[str] = field(default_factory=list)  # submissions left without a result
    failures: list[str] = field(default_factory=list)  # the grader failed, the submission still got a result
    seconds: float = 0.0
    sandboxes: int = 0  # sandboxes started


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> (i, n) with 1 <= i <= n."""
    if not text:
        return None
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise BatchError(f"--shard takes i/n, e.g. 1/4; got {text!r}") from None
    if not 1 <= i <= n:
        raise BatchError(f"--shard {text}: i must be between 1 and n")
    return i, n


def in_shard(job: Job, shard: tuple[int, int] | None) -> bool:
    """Deterministic: a submission's shard depends only on its student and assignment names."""
    if shard is None:
        return True
    digest = hashlib.sha256(f"{job.student}/{job.assignment}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0] - 1


def shard_from_env(count: int | None = None, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """The shard of a Kubernetes Indexed Job: ``JOB_COMPLETION_INDEX`` (0-based) is shard index + 1 of ``count``
    (else ``DLGRADE_SHARDS``); None when that variable is not set."""
    if environ is None:
        from autograder import settings

        environ = {"JOB_COMPLETION_INDEX": settings.current().job_completion_index,
                   "DLGRADE_SHARDS": settings.current().shards}
    index = environ.get("JOB_COMPLETION_INDEX", "").strip()
    if not index:
        return None
    where = "--shards" if count is not None else "DLGRADE_SHARDS"
    text = str(count) if count is not None else environ.get("DLGRADE_SHARDS", "").strip()
    if not text:
        raise BatchError(f"JOB_COMPLETION_INDEX={index} (a Kubernetes Indexed Job) but the number of shards is "
                         "unknown: pass --shards N (the Job's completions) or set DLGRADE_SHARDS, or give --shard i/n")
    try:
        i, n = int(index), int(text)
    except ValueError:
        raise BatchError(f"JOB_COMPLETION_INDEX={index!r} and {where}={text!r} must be whole numbers") from None
    if not 0 <= i < n:
        raise BatchError(f"JOB_COMPLETION_INDEX={i} is outside 0..{n - 1} ({where}={n})")
    return i + 1, n


def discover(course: Course, assignments: Sequence[str] | None = None, students: Sequence[str] | None = None,
             log: Callable[[str], None] | None = None) -> list[Job]:
    """Every submission folder under the course's ``submitted/``, sorted by assignment then student; folders of an
    assignment the course does not define are named in a warning (``log``), never skipped in silence.

    Nothing is followed: a student or assignment folder that is a symbolic link becomes a refused job (graded 0
    with the reason), since a link can point at the instructor's source or a classmate's work."""
    submitted = course.folder("submitted")
    if not submitted.is_dir():
        raise BatchError(f"{course.root} has no {submitted.name}/ folder (expected {submitted.name}/<student>/"
                         "<assignment>/<notebook>.ipynb, as nbgrader collect or zip_collect make it)")
    known = course.assignments()
    for a in assignments or []:
        if a not in known:
            raise BatchError(f"unknown assignment {a!r}: {course.folder('source') / a} holds no notebook; the course "
                             f"{course.root} defines: {', '.join(known) or 'none'}")
    wanted = list(assignments or known)
    chosen = [e for e in _entries(submitted) if not students or e.name in students]
    unknown = sorted({f"{submitted.name}/{s.name}/{f.name}" for s in chosen if s.is_dir(follow_symlinks=False)
                      for f in _entries(Path(s.path)) if f.name not in known and not f.name.startswith(".")})
    if unknown and not assignments and log is not None:
        log(f"warning: {len(unknown)} folder(s) for assignments {course.root} does not define were not graded: "
            f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''} (an assignment is a folder under "
            f"{course.folder('source')} with its notebook)")
    jobs = [job for student_dir in chosen for job in _student_jobs(course.root, student_dir, wanted)]
    return sorted(jobs, key=lambda j: (j.assignment, j.student))


def _student_jobs(course_dir: Path, student_dir: os.DirEntry, wanted: list[str]) -> list[Job]:
    graded = course_dir / "graded" / student_dir.name
    if student_dir.is_symlink():
        reason = "the student's folder is a symbolic link, and links are not graded"
        return [Job(student_dir.name, a, Path(student_dir.path) / a, graded / a, reason) for a in wanted]
    if not student_dir.is_dir(follow_symlinks=False):
        return []
    jobs = []
    for folder in _entries(Path(student_dir.path)):
        if folder.name not in wanted:
            continue
        refused = "the assignment folder is a symbolic link, which is not graded" if folder.is_symlink() else ""
        if refused or folder.is_dir(follow_symlinks=False):
            jobs.append(Job(student_dir.name, folder.name, Path(folder.path), graded / folder.name, refused))
    return jobs


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []


def is_current(job: Job, assignment: Assignment, points: dict[str, float] | None = None) -> bool:
    """Whether the stored result was made from the same notebook, for the same points, checks, reference and probes,
    by this grader version, and its autograded notebook is in place."""
    stored = read_result(job.out)
    if stored is None or job.refused:
        return False
    return (stored.extra.get("sha256") == submission_fingerprint(job.folder, assignment, points)
            and autograded.is_current(assignment.course.folder("autograded"), job.folder, stored))


def grade_course(course: Course, *, assignments: Sequence[str] | None = None,
                 students: Sequence[str] | None = None, workers: int | None = None, force: bool = False,
                 shard: tuple[int, int] | None = None, limits: Limits | None = None,
                 log: Callable[[str], None] | None = None, first: Worker | None = None,
                 allow_weak: bool = False) -> Summary:
    """Grade every (matching, changed) submission; write results, then the CSV, plot and gradebook. ``first``: a
    sandbox the caller spawned already (:meth:`Worker.spawn`), taken as the first worker when its limits are the
    batch's; the caller closes it. On a machine that lacks an essential protection this refuses (SandboxError)
    unless ``allow_weak``; then every result records what was off."""
    weak = require_strong(allow_weak)
    log = log or (lambda line: print(line, file=sys.stderr))
    start = time.perf_counter()
    jobs = [j for j in discover(course, assignments, students, log) if in_shard(j, shard)]
    if jobs and not course.seed_salt[1]:
        log(PUBLIC_SALT.format(salt=course.root / SALT_FILE))
    # each assignment's files, and its points and cells checked against its checks, before anything is graded
    definitions = {a: course.assignment(a) for a in sorted({j.assignment for j in jobs})}
    points = {a: definition.points for a, definition in definitions.items()}
    todo = jobs if force else [j for j in jobs if not is_current(j, definitions[j.assignment], points[j.assignment])]
    summary = Summary(skipped=len(jobs) - len(todo))
    if summary.skipped:
        log(f"{summary.skipped} submission(s) already graded and unchanged (use --force to regrade)")
    if todo:
        _run(todo, workers or cgroups.usable_cores(), limits, summary, log, course, first, weak)
    if shard is None:
        write_reports(course, log)
    else:  # shards may share one course folder: the merge step alone writes the CSV and the gradebook
        log(f"shard {shard[0]}/{shard[1]} done; when every shard is, run `dlgrade merge {course.root}`")
    summary.seconds = time.perf_counter() - start
    return summary


def _run(todo: list[Job], n_workers: int, limits: Limits | None, summary: Summary,
         log: Callable[[str], None], course: Course, first: Worker | None, weak: list[str]) -> None:
    assignments = [course.assignment(a) for a in sorted({j.assignment for j in todo})]
    preload, warm_torch, probes = sandbox_imports(assignments)
    threads, size = _teams(n_workers, len(todo), share=any(c.trains for a in assignments for c in a.suite.checks))
    if first is not None and first.limits != (limits or Limits()):
        first.close()  # a sandbox for other limits: worker 0 is started afresh (under the same uid)
        first = None
    workers = []
    for i in range(threads * size):  # the sandboxes import their libraries while the graders load checks and references
        if i == 0 and first is not None:
            first.load(preload, warm_torch, probes)
            workers.append(first)
        else:
            workers.append(Worker(i, limits, preload=preload, hide=course.secrets, warm_torch=warm_torch,
                                  probes=probes))
            workers[-1].launch()
    batch = _Batch({a.id: Grader(a) for a in assignments}, todo, summary, weak)
    summary.sandboxes = len(workers)
    running = [threading.Thread(target=batch.work, args=(workers[k * size:(k + 1) * size],), daemon=True)
               for k in range(threads)]
    try:
        for thread in running:
            thread.start()
        for thread in running:
            thread.join()
    finally:  # also on Ctrl-C or SIGTERM: no sandbox, process or cgroup outlives the batch
        batch.stopping.set()
        for worker in workers:
            worker.close()
        for thread in (t for t in running if t.is_alive()):  # a result being written is finished
            thread.join(timeout=FINISH_SECONDS)
        batch.progress.close()
        for grader in batch.graders.values():
            grader.reference.cache.save()
    if not batch.pending.empty():
        raise BatchError("no sandbox worker could start: " + "; ".join(summary.errors))


FINISH_SECONDS = 30.0  # how long an interrupted batch waits for each thread to finish the file it is writing

# Sandboxes that share one submission's checks when there are more workers than submissions (one upload on a
# machine with two cores) and the assignment has a long check (one that trains): that check in one, the rest in the
# other. Without a long check, or with a third sandbox, the saving is smaller than a sandbox's start.
TEAM = 2


def _teams(n_workers: int, n_jobs: int, share: bool) -> tuple[int, int]:
    """How many worker threads, and how many sandboxes each holds: one, or up to ``TEAM`` when workers outnumber
    submissions and the checks are worth sharing (``share``)."""
    threads = max(1, min(n_workers, n_jobs))
    return threads, max(1, min(TEAM, n_workers // threads)) if share else 1


class _Batch:
    """The workers' shared queue of jobs: each worker thread takes the next job until none is left."""

    def __init__(self, graders: dict[str, Grader], todo: list[Job], summary: Summary, weak: list[str]) -> None:
        self.graders, self.summary, self.weak = graders, summary, weak
        self.pending: queue.Queue[Job] = queue.Queue()
        for job in todo:
            self.pending.put(job)
        self.progress = Progress(len(todo), "grading")
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # the batch was interrupted: a grading cut short is not a result

    def work(self, team: list[Worker]) -> None:
        """One worker thread: start its sandboxes, then grade jobs until the queue is empty. The first sandbox
        grades; the others (helpers) take a share of each submission's checks, and one that cannot start is only
        left out."""
        worker, *helpers = team
        try:
            worker.wait_ready()
        except Exception as err:  # noqa: BLE001 - reported, other workers go on
            self._note(self.summary.errors, f"worker {worker.index} could not start: {err}")
            for member in team:
                member.close()
            return
        ready = []
        for helper in helpers:
            try:
                helper.wait_ready()
                ready.append(helper)
            except Exception:  # noqa: BLE001 - the submission is graded without it
                helper.close()
        try:
            while not self.stopping.is_set():
                try:
                    job = self.pending.get_nowait()
                except queue.Empty:
                    return
                self._grade(job, worker, ready)
        finally:
            raise_first(in_parallel(team, lambda w: w.close()))

    def _grade(self, job: Job, worker: Worker, helpers: list[Worker]) -> None:
        grader = self.graders[job.assignment]
        who = f"{for_terminal(job.student)}/{job.assignment}"
        if job.refused:
            result = grader.refusal(job.student, job.refused)
        else:
            result = self._attempt(grader, job, worker, helpers)
            if not is_final(result) and not self.stopping.is_set():  # spoiled by the grader: once more, afresh
                why = "; ".join(result.extra.get("grader_errors", [])) or result.reason
                self._note(self.summary.failures, f"{who}: graded again in a restarted sandbox after: "
                                                  f"{for_terminal(why)}")
                try:
                    worker.restart()
                    result = self._attempt(grader, job, worker, helpers)
                except SandboxError as err:
                    self._note(self.summary.errors, f"{who}: the sandbox did not restart: {err}")
                if not is_final(result):
                    self._note(self.summary.failures, f"{who}: failed twice: its result tells the student it is not "
                                                      "their fault, and it will be graded again on the next run")
        if self.stopping.is_set():  # its sandbox was closed under it: left ungraded, for the next run
            return
        if self.weak:  # graded with --allow-weak-sandbox: what was off, in the result itself
            result.extra["weak_sandbox"] = list(self.weak)
        for error in result.extra.pop("grader_errors", []):  # for the TA, not for results.json
            self._note(self.summary.failures, f"{who}: a check could not run: {for_terminal(error)}")
        try:
            autograded.write_autograded(grader.definition, job.folder, result, grader.notebook)
            write_result(job.out, result)  # last: a result on disk means everything else is there
        except OSError as err:
            self._note(self.summary.errors, f"{who}: results not written ({err})")
            return
        self._note(self.summary.graded, result)
        self.progress.advance(f"{for_terminal(job.student)} {job.assignment}: {result.score:g}/{result.max_score:g}")

    def _attempt(self, grader: Grader, job: Job, worker: Worker, helpers: list[Worker]) -> SubmissionResult:
        try:
            return grader.grade(job.folder, worker, job.student, helpers=helpers)
        except Exception as err:  # noqa: BLE001 - a grader bug must not cost the student a result
            who = f"{for_terminal(job.student)}/{job.assignment}"
            self._note(self.summary.failures, f"{who}: the grader failed: {type(err).__name__}: "
                                              f"{for_terminal(str(err))}")
            return grader.failure(job.student, err)

    def _note(self, where: list, item: object) -> None:
        with self.lock:
            where.append(item)

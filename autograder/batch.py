"""Grading a whole course folder in nbgrader's layout, fast, resumably, and in shards.

``submitted/<student>/<assignment>/<notebook>.ipynb`` -> ``graded/<student>/<assignment>/results.json``
(+ ``feedback.html``) and ``autograded/<student>/<assignment>/<notebook>.ipynb`` (as ``nbgrader autograde`` leaves
it), then ``grades.csv``, ``grades.svg`` and nbgrader's ``gradebook.db`` (by ``dlgrade merge`` alone for shards).
Each worker thread owns one warm sandbox; reference outputs are cached in the shared graders.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import course, nbgrader_course
from .grading import Grader, submission_fingerprint
from .points import format_points
from .progress import Progress
from .results import SubmissionResult, read_result, write_atomic, write_result
from .sandbox import Limits, Worker
from .untrusted import for_csv, for_terminal


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
    environ = os.environ if environ is None else environ
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


def discover(course_dir: Path, assignments: Sequence[str] | None = None,
             students: Sequence[str] | None = None) -> list[Job]:
    """Every submission folder under ``course_dir/submitted``, sorted by assignment then student.

    Nothing is followed: a student or assignment folder that is a symbolic link becomes a refused job (graded 0
    with the reason), since a link can point at the instructor's source or a classmate's work."""
    submitted = course_dir / "submitted"
    if not submitted.is_dir():
        raise BatchError(f"{course_dir} has no submitted/ folder (expected submitted/<student>/<assignment>/)")
    known = course.available()
    for a in assignments or []:
        if a not in known:
            raise BatchError(f"unknown assignment {a!r}; this installation grades: {', '.join(known)}")
    wanted = list(assignments or known)
    jobs = []
    for student_dir in _entries(submitted):
        if students and student_dir.name not in students:
            continue
        graded = course_dir / "graded" / student_dir.name
        if student_dir.is_symlink():
            jobs += [Job(student_dir.name, a, submitted / student_dir.name / a, graded / a,
                         refused="the student's folder is a symbolic link, and links are not graded") for a in wanted]
            continue
        if not student_dir.is_dir(follow_symlinks=False):
            continue
        for folder in _entries(Path(student_dir.path)):
            if folder.name not in wanted:
                continue
            refused = "" if not folder.is_symlink() else "the assignment folder is a symbolic link, which is not graded"
            if refused or folder.is_dir(follow_symlinks=False):
                jobs.append(Job(student_dir.name, folder.name, Path(folder.path), graded / folder.name, refused))
    return sorted(jobs, key=lambda j: (j.assignment, j.student))


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []


def is_current(job: Job, points: dict[str, float] | None = None) -> bool:
    """Whether the stored result was made from the same notebook, for the same points, by this grader version, and
    its autograded notebook is in place."""
    stored = read_result(job.out)
    if stored is None or job.refused:
        return False
    return (stored.extra.get("sha256") == submission_fingerprint(job.folder, job.assignment, points)
            and nbgrader_course.is_current(job.out.parents[2], job.folder, stored))


def grade_course(course_dir: Path, *, assignments: Sequence[str] | None = None,
                 students: Sequence[str] | None = None, workers: int | None = None, force: bool = False,
                 shard: tuple[int, int] | None = None, limits: Limits | None = None,
                 log: Callable[[str], None] | None = None) -> Summary:
    """Grade every (matching, changed) submission; write results, then the CSV, plot and gradebook."""
    log = log or (lambda line: print(line, file=sys.stderr))
    start = time.perf_counter()
    jobs = [j for j in discover(course_dir, assignments, students) if in_shard(j, shard)]
    # the course's own points and cells, checked against the installed checks before anything is graded
    points = {a: nbgrader_course.course_notebook(a, course_dir).points for a in {j.assignment for j in jobs}}
    todo = jobs if force else [j for j in jobs if not is_current(j, points[j.assignment])]
    summary = Summary(skipped=len(jobs) - len(todo))
    if summary.skipped:
        log(f"{summary.skipped} submission(s) already graded and unchanged (use --force to regrade)")
    if todo:
        _run(todo, workers or os.cpu_count() or 1, limits, summary, log, course_dir)
    if shard is None:
        write_reports(course_dir, log)
    else:  # shards may share one course folder: the merge step alone writes the CSV and the gradebook
        log(f"shard {shard[0]}/{shard[1]} done; when every shard is, run `dlgrade merge {course_dir}`")
    summary.seconds = time.perf_counter() - start
    return summary


def _run(todo: list[Job], n_workers: int, limits: Limits | None, summary: Summary,
         log: Callable[[str], None], course_dir: Path) -> None:
    assignments = sorted({j.assignment for j in todo})
    preload, warm_torch = course.sandbox_imports(assignments)
    workers = [Worker(i, limits, preload=preload, hide=course.secret_paths(), warm_torch=warm_torch)
               for i in range(min(n_workers, len(todo)))]
    for worker in workers:  # the sandboxes import their libraries while the graders load checks and references
        worker.launch()
    graders = {a: Grader(a, course_dir) for a in assignments}
    pending: queue.Queue[Job] = queue.Queue()
    for job in todo:
        pending.put(job)
    progress = Progress(len(todo), "grading")
    lock = threading.Lock()

    def finish(job: Job, result: SubmissionResult) -> None:
        nbgrader_course.write_autograded(course_dir, job.folder, result, graders[job.assignment].notebook)
        write_result(job.out, result)  # last: a result on disk means everything else is there
        with lock:
            summary.graded.append(result)
        progress.advance(f"{for_terminal(job.student)} {job.assignment}: {result.score:g}/{result.max_score:g}")

    def work(worker: Worker) -> None:
        try:
            worker.wait_ready()
        except Exception as err:  # noqa: BLE001 - reported, other workers go on
            with lock:
                summary.errors.append(f"worker {worker.index} could not start: {err}")
            return
        try:
            while True:
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    return
                grader = graders[job.assignment]
                if job.refused:
                    finish(job, grader.refusal(job.student, job.refused))
                    continue
                try:
                    result = grader.grade(job.folder, worker, job.student)
                except Exception as err:  # noqa: BLE001 - a grader bug must not cost the student a result
                    with lock:
                        summary.failures.append(f"{for_terminal(job.student)}/{job.assignment}: "
                                                f"{type(err).__name__}: {for_terminal(str(err))}")
                    result = grader.failure(job.student, err)
                try:
                    finish(job, result)
                except OSError as err:
                    with lock:
                        summary.errors.append(f"{for_terminal(job.student)}/{job.assignment}: results not written "
                                              f"({err})")
        finally:
            worker.close()

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:  # also on Ctrl-C or SIGTERM: no sandbox, process or cgroup outlives the batch
        for worker in workers:
            worker.close()
        progress.close()
        for grader in graders.values():
            grader.reference.cache.save()
    if not pending.empty():
        raise BatchError("no sandbox worker could start: " + "; ".join(summary.errors))


# -- reports ---------------------------------------------------------------------------------------

def collect(course_dir: Path) -> list[SubmissionResult]:
    """Every stored result under ``graded/``, sorted by assignment then student."""
    results = []
    for path in sorted((course_dir / "graded").glob("*/*/results.json")):
        result = read_result(path.parent)
        if result is not None:
            results.append(result)
    return sorted(results, key=lambda r: (r.assignment, r.student))


def write_reports(course_dir: Path, log: Callable[[str], None] | None = None) -> list[SubmissionResult]:
    """grades.csv, grades.svg and the gradebook from every stored result (also ``dlgrade merge``)."""
    results = collect(course_dir)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "assignment", "score", "max_score", "failed_tests"])
    for r in results:
        failed = sum(t.score < t.max_score for t in r.tests)
        writer.writerow([for_csv(r.student), for_csv(r.assignment), format_points(r.score), format_points(r.max_score),
                         failed])
    write_atomic(course_dir / "grades.csv", buf.getvalue())
    if results:
        from .plots import score_histogram

        score_histogram(results, course_dir / "grades.svg")
    gradebook = course_dir / "gradebook.db"
    if gradebook.is_file() and results:
        from .gradebook import record

        record(gradebook, results, {a: nbgrader_course.course_notebook(a, course_dir)
                                    for a in sorted({r.assignment for r in results})})
        if log:
            log(f"recorded {len(results)} result(s) in {gradebook}")
    return results


def give_to_course_owner(course_dir: Path) -> None:
    """As root (the grading image), hand what the grader wrote (``graded/``, ``autograded/``, ``grades.csv``,
    ``grades.svg``, ``gradebook.db``) to the owner of the course folder, so that the TA who mounted it can edit and
    delete it."""
    if os.geteuid() != 0:
        return
    try:
        owner = course_dir.stat()
    except OSError:  # no such folder: nothing was written
        return
    if owner.st_uid == 0:
        return
    paths = [course_dir / "grades.csv", course_dir / "grades.svg", course_dir / "gradebook.db"]
    for folder in (course_dir / "graded", course_dir / nbgrader_course.AUTOGRADED):
        if folder.is_dir():
            paths += [folder, *folder.rglob("*")]
    for path in paths:
        try:
            if path.lstat().st_uid == 0:
                os.lchown(path, owner.st_uid, owner.st_gid)
        except OSError:  # gone meanwhile, or not ours to change
            pass


def summary_table(results: Sequence[SubmissionResult]) -> str:
    """A plain-text table of scores, one row per submission, with what went wrong in a few words."""
    if not results:
        return "no results"
    results = sorted(results, key=lambda r: (r.assignment, r.student))
    names = {id(r): for_terminal(r.student)[:40] for r in results}
    width = max(len("student"), *(len(n) for n in names.values()))
    awidth = max(len(r.assignment) for r in results)
    lines = [f"{'student'.ljust(width)}  {'assignment'.ljust(awidth)}  {'score':>13}  notes"]
    for r in results:
        failed = [t.name.split(":")[0] for t in r.tests if t.score < t.max_score]
        if r.score == 0 and r.output and not r.output.startswith("-"):
            note = r.output.splitlines()[0]
        elif failed:
            note = "lost points on " + ", ".join(dict.fromkeys(failed))
        else:
            note = ""
        skipped = r.output.count("failed and was skipped")
        if skipped:
            note += ("; " if note else "") + f"{skipped} cell(s) skipped"
        lines.append(f"{names[id(r)].ljust(width)}  {r.assignment.ljust(awidth)}  {r.score:6.2f} / {r.max_score:<4g}"
                     f"  {for_terminal(note)[:90]}".rstrip())
    return "\n".join(lines)

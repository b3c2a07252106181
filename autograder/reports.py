"""Everything the grader writes for people, from stored results: per submission ``results.json`` and
``feedback.html``; per course ``grades.csv``, the ``grades.svg`` histogram, nbgrader's gradebook, and the summary
table printed at the end of a batch. All files are written atomically; what a student controls is made harmless
for a terminal (``for_terminal``) and a spreadsheet (``for_csv``)."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .points import format_points
from .results import SubmissionResult, read_result
from .untrusted import for_csv, for_terminal

if TYPE_CHECKING:
    from .course import Course


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_result(folder: Path, result: SubmissionResult) -> None:
    """Write ``results.json`` and ``feedback.html`` for one submission."""
    from .feedback import render

    write_atomic(folder / "feedback.html", render(result))
    write_atomic(folder / "results.json", json.dumps(result.to_json(), indent=1))


def collect(course_dir: Path) -> list[SubmissionResult]:
    """Every stored result under ``graded/``, sorted by assignment then student."""
    results = []
    for path in sorted((course_dir / "graded").glob("*/*/results.json")):
        result = read_result(path.parent)
        if result is not None:
            results.append(result)
    return sorted(results, key=lambda r: (r.assignment, r.student))


def write_reports(course: Course, log: Callable[[str], None] | None = None) -> list[SubmissionResult]:
    """grades.csv, grades.svg and the gradebook from every stored result (also ``dlgrade merge``)."""
    course_dir = course.root
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
    from . import nbgrader_course

    gradebook = course_dir / "gradebook.db"
    if gradebook.is_file() and results:
        from .gradebook import record

        known = set(course.assignments())
        recorded = [r for r in results if r.assignment in known]
        record(gradebook, recorded, {a: nbgrader_course.course_notebook(course.assignment(a))
                                     for a in sorted({r.assignment for r in recorded})})
        if log:
            log(f"recorded {len(results)} result(s) in {gradebook}")
    return results


def give_to_course_owner(course: Course) -> None:
    """As root (the grading image), hand what the grader wrote (``graded/``, ``autograded/``, ``grades.csv``,
    ``grades.svg``, ``gradebook.db``) to the owner of the course folder, so that the TA who mounted it can edit and
    delete it."""
    course_dir = course.root
    if os.geteuid() != 0:
        return
    try:
        owner = course_dir.stat()
    except OSError:  # no such folder: nothing was written
        return
    if owner.st_uid == 0:
        return
    paths = [course_dir / "grades.csv", course_dir / "grades.svg", course_dir / "gradebook.db"]
    for folder in (course_dir / "graded", course.folder("autograded")):
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
        failed = [t.graded_function() for t in r.tests if t.score < t.max_score]
        if r.reason:
            note = r.reason.splitlines()[0]
        elif failed:
            note = "lost points on " + ", ".join(dict.fromkeys(failed))
        else:
            note = ""
        if r.skipped_cells:
            note += ("; " if note else "") + f"{r.skipped_cells} cell(s) skipped"
        lines.append(f"{names[id(r)].ljust(width)}  {r.assignment.ljust(awidth)}  {r.score:6.2f} / {r.max_score:<4g}"
                     f"  {for_terminal(note)[:90]}".rstrip())
    return "\n".join(lines)

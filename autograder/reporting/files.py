"""The files grading leaves in a course folder, each written whole or not at all: per submission ``results.json`` and
``feedback.html`` under ``graded/``; for the class ``grades.csv``, ``grades.svg`` and nbgrader's ``gradebook.db``;
and, in the grading image, all of it handed to the folder's owner."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.course.points import format_points
from autograder.reporting.results import SubmissionResult, read_result
from autograder.reporting.untrusted import for_csv

if TYPE_CHECKING:
    from autograder.course import Course


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
    from autograder.reporting.feedback import render

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
        from autograder.reporting.plots import score_histogram

        write_atomic(course_dir / "grades.svg", score_histogram(results))

    gradebook = course_dir / "gradebook.db"
    if gradebook.is_file() and results:
        from autograder.nbgrader_io.gradebook import record

        known = set(course.assignments())
        recorded = [r for r in results if r.assignment in known]
        record(gradebook, recorded, {a: course.assignment(a).course_notebook
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

"""``dlgrade demo``: the built-in course in a temporary folder, sample submissions, grading and a grade table."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from autograder.authoring import samples
from autograder.authoring.scaffold import init_course
from autograder.course import Course
from autograder.grading.batch import grade_course
from autograder.reporting.summary import summary_table
from autograder.sandbox import Limits, protection_table, require_strong

DEMO_LIMITS = Limits(cell_seconds=5.0, notebook_seconds=60.0, call_seconds=5.0)

CRASHING = {
    "ctypes_segfault": "import ctypes\nctypes.string_at(0)\n",
    "exit": "import os\nos._exit(1)\n",
}


def make_course(root: Path) -> Course:
    """A copy of the built-in course at ``root`` (``dlgrade init``) with five submissions per assignment."""
    init_course(root)
    course = Course(root)
    submitted = course.folder("submitted")
    for assignment in (course.assignment(a) for a in course.assignments()):
        name, first = assignment.notebook, assignment.suite.functions[0]
        folder = {who: submitted / who / assignment.id for who in ("ada", "ben", "cy", "dee", "eve")}
        samples.write(samples.build(assignment), folder["ada"] / name)
        samples.write(samples.build(assignment, assignment.suite.typical_mistakes), folder["ben"] / name)
        crash = {first: f"def {first}(*args, **kwargs):\n    import ctypes\n    return ctypes.string_at(0)\n"}
        samples.write(samples.build(assignment, crash, [CRASHING["exit"]]), folder["cy"] / name)
        samples.write(samples.build(assignment, extra_cells=samples.HOSTILE_CELLS), folder["dee"] / name)
        samples.write(b'{"cells": [', folder["eve"] / name)
    return course


def run_demo(keep: Path | None = None, echo: Callable[[str], None] = print, allow_weak: bool = False) -> int:
    """Run the whole flow; returns an exit status."""
    require_strong(allow_weak)  # a weak host says so before it builds or grades anything
    with tempfile.TemporaryDirectory(prefix="dlgrade-demo-") as tmp:
        course = make_course(Path(keep) if keep else Path(tmp) / "course")
        echo(f"Course folder: {course.root} (the built-in course, as `dlgrade init` writes it)")
        echo(f"Assignments {', '.join(course.assignments())}; 5 submissions each in "
             f"{course.folder('submitted').name}/:")
        echo("  ada (full marks), ben (typical mistakes), cy (crashes), dee (hostile), eve (damaged file)")
        echo("Sandbox protections:\n" + protection_table())
        summary = grade_course(course, limits=DEMO_LIMITS, allow_weak=allow_weak)
        echo("")
        echo(summary_table(summary.graded))
        echo(f"\nGraded {len(summary.graded)} submissions in {summary.seconds:.1f} s; "
             f"results in {course.root / 'graded'}, table in {course.root / 'grades.csv'}")
        for error in summary.errors:
            echo(f"error: {error}")
        return 1 if summary.errors else 0

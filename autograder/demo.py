"""``dlgrade demo``: release, sample submissions, grading and a grade table, in a temporary folder."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import course, samples
from .batch import grade_course
from .reports import summary_table
from .sandbox import Limits, protection_table

DEMO_LIMITS = Limits(cell_seconds=5.0, notebook_seconds=60.0, call_seconds=5.0)

CRASHING = {
    "ctypes_segfault": "import ctypes\nctypes.string_at(0)\n",
    "exit": "import os\nos._exit(1)\n",
}


def make_course(root: Path) -> list[str]:
    """Fill ``root`` with a release and five submissions per available assignment; returns the assignments."""
    assignments = course.available()
    for assignment in assignments:
        shutil.copytree(course.released_notebook(assignment).parent, root / "release" / assignment)
        name = course.notebook_name(assignment)
        sub = root / "submitted"
        samples.write(samples.build(assignment), sub / "ada" / assignment / name)
        samples.write(samples.build(assignment, course.suite(assignment).typical_mistakes),
                      sub / "ben" / assignment / name)
        first = course.suite(assignment).functions[0]
        crash = {first: f"def {first}(*args, **kwargs):\n    import ctypes\n    return ctypes.string_at(0)\n"}
        samples.write(samples.build(assignment, crash, [CRASHING["exit"]]), sub / "cy" / assignment / name)
        samples.write(samples.build(assignment, extra_cells=samples.HOSTILE_CELLS), sub / "dee" / assignment / name)
        samples.write(b'{"cells": [', sub / "eve" / assignment / name)
    return assignments


def run_demo(keep: Path | None = None, echo: Callable[[str], None] = print) -> int:
    """Run the whole flow; returns an exit status."""
    with tempfile.TemporaryDirectory(prefix="dlgrade-demo-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        assignments = make_course(root)
        echo(f"Course folder: {root}")
        echo(f"Released {', '.join(assignments)} into release/; 5 submissions each in submitted/:")
        echo("  ada (full marks), ben (typical mistakes), cy (crashes), dee (hostile), eve (damaged file)")
        echo("Sandbox protections:\n" + protection_table())
        summary = grade_course(root, limits=DEMO_LIMITS)
        echo("")
        echo(summary_table(summary.graded))
        echo(f"\nGraded {len(summary.graded)} submissions in {summary.seconds:.1f} s; "
             f"results in {root / 'graded'}, table in {root / 'grades.csv'}")
        for error in summary.errors:
            echo(f"error: {error}")
        return 1 if summary.errors else 0

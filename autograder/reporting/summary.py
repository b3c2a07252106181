"""The summary a TA reads in the terminal after grading: one row per submission, and what went wrong in a few words."""

from __future__ import annotations

from collections.abc import Sequence

from autograder.reporting.results import SubmissionResult
from autograder.reporting.untrusted import for_terminal


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

"""Hidden tests under stock ``nbgrader autograde``: the same checks, run in the notebook's kernel.

The source notebooks' hidden test regions call :func:`run_hidden_tests`. nbgrader runs them in the
student's kernel (as it runs every test), so this path has none of the sandbox's protections; it exists so
that a course can compare ``nbgrader autograde`` with ``dlgrade grade``.

The two agree on full marks and on zero, but not on partial credit: stock autograde gives a test cell all of its
points or none (any failed check raises, and the cell scores 0), while ``dlgrade grade`` splits a function's points
exactly over its checks (2 points, 3 checks, one failed: 1.3334). So a submission with a partly right function
gets more from dlgrade than from stock autograde (tests/test_nbgrader_dropin.py checks both behaviours).
"""

from __future__ import annotations

from . import course
from .checking import LocalSide, ReferenceSide, run_check


def run_hidden_tests(assignment: str, function: str, namespace: dict) -> None:
    """Run every check of ``function`` against the kernel's ``namespace``; raise AssertionError on failure."""
    suite = course.suite(assignment)
    reference = ReferenceSide(course.reference(assignment))
    side = LocalSide(namespace)
    failed = [o for o in (run_check(c, side, reference) for c in suite.checks if c.function == function)
              if not o.passed]
    if failed:
        raise AssertionError("\n".join(f"{o.check.name}: {o.output}" for o in failed))

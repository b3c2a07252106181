"""Hidden tests under stock ``nbgrader autograde``: the same checks, run in the notebook's kernel.

The source notebooks' hidden test regions call :func:`run_hidden_tests`. nbgrader runs them in the
student's kernel (as it runs every test), so this path has none of the sandbox's protections; it exists so
that a course can compare ``nbgrader autograde`` with ``dlgrade grade``.

The two agree on full marks and on zero, but not in between:

- partial credit: stock autograde gives a test cell all of its points or none (any failed check raises, and the
  cell scores 0), while ``dlgrade grade`` splits a function's points exactly over its checks (2 points, 3 checks,
  one failed: 1.3334), so a partly right function gets more from dlgrade (tests/nbgrader/test_nbgrader_dropin.py
  checks both);
- follow-through: stock nbgrader cannot give it (a wrong helper also fails the functions that call it);
- advisory checks (no points) only print their findings here.
"""

from __future__ import annotations

from autograder import course
from autograder.checking.sides import LocalSide, ReferenceSide
from autograder.checking.trial import run_check


def run_hidden_tests(assignment: str, function: str, namespace: dict) -> None:
    """Run every check of ``function`` against the kernel's ``namespace``; raise AssertionError on failure.

    The course is the one the notebook is graded in: ``DLGRADE_HOME``, else the nearest folder above the kernel's
    working folder that holds nbgrader_config.py (nbgrader autograde runs each notebook in
    ``autograded/<student>/<assignment>/`` of its course)."""
    definition = course.find().assignment(assignment)
    probes = {definition.probe_module: definition.probes} if definition.probes else {}
    reference = ReferenceSide(definition.reference, probes=probes)
    side = LocalSide(namespace, probes)
    outcomes = [run_check(c, side, reference) for c in definition.suite.checks if c.function == function]
    for outcome in outcomes:
        if outcome.check.advisory and not outcome.passed:
            print(f"{outcome.check.name}: {outcome.output}")
    failed = [o for o in outcomes if not o.passed and not o.check.advisory]
    if failed:
        raise AssertionError("\n".join(f"{o.check.name}: {o.output}" for o in failed))

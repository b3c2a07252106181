"""The ``dlgrade`` command line: a thin layer over the stage functions; errors become exit status 2."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .course import Course

# Nothing heavy is imported here: `dlgrade --help` and a mistyped option answer at once, and each command imports
# only what it uses (numpy for grading, never torch unless an assignment's reference needs it).


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlgrade", description="Auto-grading for nbgrader courses, in a sandbox.",
                                     epilog="A course is an nbgrader course folder (one holding nbgrader_config.py). "
                                     "Commands that need one take it as COURSE or --course DIR, else DLGRADE_HOME, "
                                     "else the current folder or its nearest parent that is one.")
    sub = parser.add_subparsers(dest="command", required=True)

    grade = sub.add_parser("grade", help="grade every submission in a course folder (nbgrader layout)")
    grade.add_argument("course_dir", nargs="?", type=Path, metavar="COURSE", help="the course folder (holding "
                       "nbgrader_config.py and submitted/); default: found as described below")
    _course_option(grade)
    grade.add_argument("--assignment", action="append", help="assignment id (repeatable; default: all)")
    grade.add_argument("--student", action="append", help="student id (repeatable; default: all)")
    grade.add_argument("--workers", type=int, default=None, help="parallel sandboxes (default: the CPU cores it may "
                       "use, a container's CPU quota included)")
    grade.add_argument("--force", action="store_true", help="regrade submissions already graded")
    grade.add_argument("--shard", help="grade only shard i of n (i/n), for parallel machines")
    grade.add_argument("--shards", type=int, help="number of shards when the shard index comes from "
                       "JOB_COMPLETION_INDEX (a Kubernetes Indexed Job; also DLGRADE_SHARDS)")
    _weak_option(grade)

    check = sub.add_parser("check", help="run a notebook's public tests (for students)")
    check.add_argument("notebook", type=Path)
    _course_option(check, "the course the notebook belongs to (optional: a student needs none)")

    merge = sub.add_parser("merge", help="rebuild grades.csv and the gradebook from graded/ (after shards)")
    merge.add_argument("course_dir", nargs="?", type=Path, metavar="COURSE")
    _course_option(merge)

    demo = sub.add_parser("demo", help="run the whole flow on the built-in course in a temporary folder")
    demo.add_argument("--keep", type=Path, help="build the demo course here and keep it")
    _weak_option(demo)

    init = sub.add_parser("init", help="write a ready course folder: the built-in course's five assignments")
    init.add_argument("folder", type=Path, help="the new course folder (must not exist, or be empty)")

    new = sub.add_parser("new", help="scaffold a new assignment in a course: notebook, reference, checks, release")
    new.add_argument("assignment", help="the new assignment's id (a folder name, e.g. a6_softmax)")
    new.add_argument("--function", default="", help="the graded function's name (default: from the id)")
    _course_option(new)

    doctor = sub.add_parser("doctor", help="show which sandbox protections this machine provides")
    doctor.add_argument("--profile", action="store_true", help="also grade one submission step by step and name "
                        "the slowest step on this machine (about a minute)")
    doctor.add_argument("--assignment", default="a1_linear_regression", help="with --profile: the assignment "
                        "(default: a1_linear_regression)")
    _course_option(doctor, "with --profile: the course whose assignment to grade (default: the built-in course)")

    warm = sub.add_parser("warm", help="compute the reference's outputs for every check into the cache (for images)")
    warm.add_argument("--assignment", action="append", help="assignment id (repeatable; default: all)")
    _course_option(warm)

    gradescope = sub.add_parser("gradescope", help="write a Gradescope autograder zip for one assignment")
    gradescope.add_argument("assignment")
    gradescope.add_argument("--out", type=Path, default=Path("."), help="folder for the zip (default: here)")
    _course_option(gradescope)

    audit = sub.add_parser("audit", help="plant small bugs in an assignment's reference and show which ones its "
                           "checks let through (mutation testing)")
    audit.add_argument("assignment")
    _course_option(audit)
    audit.add_argument("--seed", type=int, default=0, help="seed of the sample of mutants (default: 0)")
    audit.add_argument("--max-mutants", type=int, default=None, metavar="N", help="grade at most N mutants (0: all; "
                       "default: 150, or 60 when a check trains a model)")
    audit.add_argument("--workers", type=int, default=None, help="parallel sandboxes (default: the usable cores)")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _weak_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--allow-weak-sandbox", action="store_true", help="grade even where student code could read "
                         "the course or reach other sandboxes (no bubblewrap); recorded in every result")


def _course_option(command: argparse.ArgumentParser, text: str = "the course folder") -> None:
    command.add_argument("--course", type=Path, metavar="DIR", help=f"{text} (default: DLGRADE_HOME, else the "
                         "current folder or its nearest parent holding nbgrader_config.py)")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (kill, docker stop, a batch scheduler) stops as cleanly as Ctrl-C


def _bytecode_cache() -> None:
    """Where PYTHONDONTWRITEBYTECODE=1 forbids bytecode beside the sources (an editable install, a checkout), keep it
    in dlgrade's private cache instead (``DLGRADE_CACHE``/pycache, default ``~/.cache/dlgrade/pycache``), so that a
    command does not compile the grader, numpy and torch again at every start. Nothing is written beside a source."""
    if not sys.dont_write_bytecode or sys.pycache_prefix is not None:
        return
    import os

    from .settings import current

    base = current().cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlgrade"
    try:
        (base / "pycache").mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return  # only costs the compiling
    sys.pycache_prefix, sys.dont_write_bytecode = str(base / "pycache"), False


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dlgrade`` and ``python -m autograder``."""
    args = _parser().parse_args(argv)
    _bytecode_cache()
    signal.signal(signal.SIGTERM, _interrupt)
    course = None
    try:
        course = _course(args)
        return COMMANDS[args.command](args, course)
    except KeyboardInterrupt:
        print("\ninterrupted: finished submissions are saved; run the same command again to resume",
              file=sys.stderr)
        return 130
    except Exception as err:
        if not isinstance(err, _user_errors()):
            raise
        print(f"dlgrade {args.command}: {err}", file=sys.stderr)
        return 2
    finally:
        if course is not None and args.command in ("grade", "merge"):
            from .reporting.files import give_to_course_owner

            give_to_course_owner(course)  # what we wrote, even if interrupted


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix (a message and exit status 2, no traceback); imported when one occurs."""
    from .course import CourseError
    from .course.notebook import NotebookError
    from .grading.batch import BatchError
    from .sandbox import SandboxError
    from .settings import SettingError

    return BatchError, CourseError, NotebookError, SandboxError, SettingError


NEEDS_COURSE = ("grade", "merge", "warm", "gradescope", "new", "audit")


def _course(args: argparse.Namespace) -> Course | None:
    """The course a command works on (found as the epilog says), readable by this user; None for commands that need
    none (``check`` without one found: a student has none)."""
    from . import course

    given = getattr(args, "course_dir", None)
    if given is not None and args.course is not None and given.resolve() != args.course.resolve():
        raise course.CourseError(f"two course folders given: {given} and --course {args.course}; give one")
    explicit = given or getattr(args, "course", None)
    if args.command in NEEDS_COURSE:
        found = course.find(explicit)
        found.require_readable()
        return found
    if args.command == "check":
        return course.find_optional(explicit, cwd=args.notebook.resolve().parent)
    return None


def _grade(args: argparse.Namespace, course: Course) -> int:
    from .sandbox import Worker, protection_table, require_strong

    if args.workers is not None and args.workers < 1:
        from .grading.batch import BatchError

        raise BatchError("--workers must be at least 1")
    weak = require_strong(args.allow_weak_sandbox)  # refused here, before any sandbox starts
    # the first sandbox starts Python and its runtime while this process imports the grader and reads the course
    first = Worker(0, hide=course.secrets)
    first.spawn()
    try:
        print("Sandbox protections:\n" + protection_table(), file=sys.stderr)
        if weak:
            print(f"WARNING: grading with --allow-weak-sandbox: {', '.join(weak)} off (recorded in every result)",
                  file=sys.stderr)
        from .grading.batch import grade_course, parse_shard, shard_from_env
        from .reporting.summary import summary_table

        summary = grade_course(course, assignments=args.assignment, students=args.student,
                               workers=args.workers, force=args.force,
                               shard=parse_shard(args.shard) or shard_from_env(args.shards), first=first,
                               allow_weak=args.allow_weak_sandbox)
    finally:
        first.close()  # when the batch had nothing for it
    print(summary_table(summary.graded))
    print(f"graded {len(summary.graded)}, unchanged {summary.skipped}, in {summary.seconds:.1f} s; "
          f"see {course.root / 'grades.csv'}")
    for failure in summary.failures:
        print(f"warning: {failure}", file=sys.stderr)
    for error in summary.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if summary.errors else 0


def _check(args: argparse.Namespace, course: Course | None) -> int:
    from .grading.public_tests import check_notebook, format_table

    results = check_notebook(args.notebook, course)
    print(format_table(args.notebook, results))
    return 0 if all(r.passed for r in results) else 1


def _merge(args: argparse.Namespace, course: Course) -> int:
    from .reporting.files import write_reports
    from .reporting.summary import summary_table

    print(summary_table(write_reports(course, log=lambda line: print(line, file=sys.stderr))))
    return 0


def _demo(args: argparse.Namespace, course: None) -> int:
    from .authoring.demo import run_demo

    return run_demo(args.keep, allow_weak=args.allow_weak_sandbox)


def _init(args: argparse.Namespace, course: None) -> int:
    from .authoring.scaffold import init_course

    print(init_course(args.folder))
    return 0


def _new(args: argparse.Namespace, course: Course) -> int:
    from .authoring.scaffold import new_assignment

    print(new_assignment(course, args.assignment, args.function))
    return 0


def _gradescope(args: argparse.Namespace, course: Course) -> int:
    from .integrations.gradescope import build_bundle

    print(build_bundle(course.assignment(args.assignment), args.out))
    return 0


def _warm(args: argparse.Namespace, course: Course) -> int:
    from .grading.grader import warm_reference_cache

    for assignment in args.assignment or course.assignments():
        print(f"{assignment}: {warm_reference_cache(course.assignment(assignment))}")
    return 0


def _audit(args: argparse.Namespace, course: Course) -> int:
    import json

    from .authoring.audit import AuditError, audit, render_text

    if (args.workers is not None and args.workers < 1) or (args.max_mutants is not None and args.max_mutants < 0):
        raise AuditError("--workers must be at least 1, and --max-mutants at least 0")
    caps = {} if args.max_mutants is None else {"cap": args.max_mutants or None, "training_cap": None}
    report = audit(course.assignment(args.assignment), seed=args.seed, workers=args.workers, **caps)
    print(json.dumps(report.to_json(), indent=1) if args.json else render_text(report))
    print(f"HTML report: {report.html}", file=sys.stderr if args.json else sys.stdout)
    return 1 if report.survivors else 0


def _doctor(args: argparse.Namespace, course: None) -> int:
    from .sandbox import protection_table

    print("Sandbox protections on this machine:\n" + protection_table())
    if args.profile:
        from .grading.profiling import profile

        print("\n" + profile(args.course, args.assignment))
    return 0


COMMANDS = {"grade": _grade, "check": _check, "merge": _merge, "demo": _demo, "init": _init, "new": _new,
            "gradescope": _gradescope, "warm": _warm, "doctor": _doctor, "audit": _audit}

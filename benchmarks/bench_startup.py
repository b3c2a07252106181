"""Cold start: one submission, as a Gradescope upload or a student's ``dlgrade check`` sees it.

    python benchmarks/bench_startup.py                   # a1 and a3, 3 runs each, every protection on
    python benchmarks/bench_startup.py --assignment a1_linear_regression --runs 5
    python benchmarks/bench_startup.py --tree ../older-checkout --no-phases   # another checkout, wall times

Prints, for each assignment: the wall time of ``dlgrade grade`` on a one-student course (a fresh process each
run, as a fresh container would be), of ``dlgrade check`` on the same notebook, and of ``dlgrade --help``; then the
profile of ``dlgrade doctor --profile`` (``autograder/grading/profiling.py``): one cold grading phase by phase, in a
fresh process that performs the same steps as ``dlgrade grade`` one after the other (Python and the CLI's imports, the
protection probes, the grader's own set-up, the worker's start and preload, the notebook's replay, the checks, the
end of the submission, the reports), then warm submissions broken down to the sandbox's steps (fork, confinement,
cells, each step of the sweep, the graded calls) with their page faults, and the slowest step by name.
Targets: a1 at most 0.6 s (issue #28), a3 at most 2.5 s, ``--help`` well under 0.2 s. Nothing here is a test.

The checkout's modules are compiled first (``python -m compileall``), as pip leaves an installed package and the
grading image has them; ``--no-compile`` measures the checkout as it is. ``dlgrade grade`` runs with its default
workers: on a machine with two cores, an a3 submission's checks are shared between two sandboxes (``--workers 1``
and ``dlgrade check`` use one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
CWD = tempfile.gettempdir()  # not a checkout: `python -m` puts the working folder first on sys.path
# the checkout measured makes its own one-student course: this checkout's course folder API, or (--tree) the
# installation-bound API of the first rounds
MAKE = r"""
import sys
from pathlib import Path
from autograder.authoring import samples
a, root = sys.argv[1], Path(sys.argv[2])
try:
    from autograder.authoring.scaffold import copy_definition
    from autograder.course import builtin_course
except ImportError:
    from autograder import course
    path = root / "submitted" / "s" / a / course.notebook_name(a)
    samples.write(samples.build(a), path)
else:
    definition = copy_definition(builtin_course(), root, [a]).assignment(a)
    path = root / "submitted" / "s" / a / definition.notebook
    samples.write(samples.build(definition), path)
print(path)
"""


def course_with(assignment: str, tmp: Path) -> tuple[Path, Path]:
    """A one-student course with the solved notebook, built by the checkout being measured (its own release)."""
    root = tmp / assignment
    done = subprocess.run([PY, "-c", MAKE, assignment, str(root)], capture_output=True, text=True, check=True, cwd=CWD)
    return root, Path(done.stdout.strip())


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=CWD)
    took = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", action="append", help="default: a1_linear_regression and a3_training_loop")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", type=Path, help="measure another checkout of dlgrade (its commands and phases)")
    parser.add_argument("--no-phases", action="store_true", help="wall times only")
    parser.add_argument("--no-compile", action="store_true", help="measure the checkout as it is, without compiling "
                        "its modules first")
    args = parser.parse_args()
    if args.tree:
        os.environ["PYTHONPATH"] = str(args.tree.resolve())
    tree = (args.tree or Path(__file__).resolve().parents[1]).resolve()
    print(f"Checkout: {tree}")
    if not args.no_compile:  # as pip leaves an installed package (and the grading image): its modules compiled
        subprocess.run([PY, "-m", "compileall", "-q", str(tree / "autograder"), str(tree / "solutions")], check=True,
                       stdout=subprocess.DEVNULL)
        print("Modules compiled first, as an installed dlgrade has them (python -m compileall; without it, a machine "
              "with PYTHONDONTWRITEBYTECODE=1 compiles them at every start)")
    print(subprocess.run([PY, "-m", "autograder", "doctor"], capture_output=True, text=True, cwd=CWD).stdout)
    targets = {"a1_linear_regression": 0.6, "a3_training_loop": 2.5}
    help_times = [wall([PY, "-m", "autograder", "--help"]) for _ in range(args.runs)]
    print(f"dlgrade --help: median {statistics.median(help_times):.3f} s (target < 0.2 s)\n")
    tmp = Path(tempfile.mkdtemp(prefix="dlgrade-bench-startup-"))
    try:
        for assignment in args.assignment or list(targets):
            root, notebook = course_with(assignment, tmp)
            grade = [PY, "-m", "autograder", "grade", str(root), "--force"]
            rows = {"dlgrade grade": [], "dlgrade grade --workers 1": [], "dlgrade check": []}
            for _ in range(args.runs):  # interleaved: a slow moment of the machine costs every command alike
                rows["dlgrade grade"].append(wall(grade))
                rows["dlgrade grade --workers 1"].append(wall([*grade, "--workers", "1"]))
                rows["dlgrade check"].append(wall([PY, "-m", "autograder", "check", str(notebook)]))
            target = targets.get(assignment)
            goal = f" (target <= {target:g} s)" if target else ""
            print(f"{assignment}, one submission, cold, {args.runs} runs:")
            for name, times in rows.items():
                print(f"  {name:<26} median {statistics.median(times):.2f} s, min {min(times):.2f} s{goal}")
            if not args.no_phases and not args.tree:  # the phases, down to the sandbox's steps (`dlgrade doctor
                from autograder.grading.profiling import profile  # --profile` prints the same)

                print("\n" + profile(root, assignment, max(args.runs, 1)))
            print()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

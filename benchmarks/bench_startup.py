"""Cold start: one submission, as a Gradescope upload or a student's ``dlgrade check`` sees it.

    python benchmarks/bench_startup.py                   # a1 and a3, 3 runs each, every protection on
    python benchmarks/bench_startup.py --assignment a1_linear_regression --runs 5

Prints, for each assignment: the wall time of ``dlgrade grade`` on a one-student course (a fresh process each
run, as a fresh container would be), of ``dlgrade check`` on the same notebook, and of ``dlgrade --help``; then the
phase profile of one cold grading, measured in a fresh process that performs the same steps as ``dlgrade grade``
one after the other: Python and the CLI's imports, the protection probes, the grader's own set-up (checks,
reference, points), the worker's start and preload, the notebook's replay, the checks, and the reports.
Targets (issue #17): a1 at most 1.0 s, a3 at most 2.5 s, ``--help`` well under 0.2 s. Nothing here is a test.

The checkout's modules are compiled first (``python -m compileall``), as pip leaves an installed package and the
grading image has them; ``--no-compile`` measures the checkout as it is. ``dlgrade grade`` runs with its default
workers: on a machine with two cores, an a3 submission's checks are shared between two sandboxes (``--workers 1``
and ``dlgrade check`` use one).
"""

from __future__ import annotations

import argparse
import json
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
PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
marks = []
def mark(name):
    marks.append((name, time.perf_counter()))
import autograder.cli
mark("imports: CLI")
from pathlib import Path
from autograder import batch, course
from autograder.sandbox import protection_table
protection_table()
mark("protection probes")
root, assignment = Path(sys.argv[1]), sys.argv[2]
jobs = batch.discover(root, [assignment])
from autograder.grading import Grader
g = Grader(assignment)
mark("grader set-up: checks, reference, points")
from autograder.sandbox import Worker
old = not hasattr(course, "sandbox_imports")  # the first round's checkout (--tree): a fixed preload, older names
if old:
    worker = Worker(0, None, hide=course.secret_paths())
else:
    preload, warm = course.sandbox_imports([assignment])
    worker = Worker(0, None, preload=preload, hide=course.secret_paths(), warm_torch=warm)
worker.start()
mark("worker start and preload")
job = jobs[0]
from autograder import notebook
path = job.folder / course.notebook_name(assignment)
cells = notebook.read_cells(path) if old else notebook.parse_cells(notebook.read_file(path))
run = worker.run_notebook(notebook.cells_to_run(cells, include_tests=False, demo_sources=g.demo_sources))
mark("notebook replay")
if old:
    from autograder.checking import run_check
    outcomes = [run_check(check, worker, g.reference) for check in g.suite.checks]
else:
    outcomes = g._run_checks(worker)
mark("checks")
worker.end_submission()
mark("end of submission (sweep)")
result = g._result("s", outcomes, cells, run, [], time.perf_counter(), {}) if old else \
    g._result("s", outcomes, [], time.perf_counter(), {})
if old:
    from autograder.batch import write_reports
    from autograder.results import write_result
else:
    from autograder.reports import write_reports, write_result
write_result(job.out, result)
write_reports(root)
mark("reports")
worker.close()
print(json.dumps({"start": t0, "marks": marks, "score": result.score, "max": result.max_score}))
"""


def course_with(assignment: str, tmp: Path) -> tuple[Path, Path]:
    """A one-student course with the solved notebook, built by the checkout being measured (its own release)."""
    root = tmp / assignment
    make = ("import sys; from pathlib import Path; from autograder import course, samples; "
            "a = sys.argv[1]; p = Path(sys.argv[2]) / 'submitted' / 's' / a / course.notebook_name(a); "
            "samples.write(samples.build(a), p); print(p)")
    done = subprocess.run([PY, "-c", make, assignment, str(root)], capture_output=True, text=True, check=True, cwd=CWD)
    return root, Path(done.stdout.strip())


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=CWD)
    took = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return took


def phases(root: Path, assignment: str) -> list[tuple[str, float]]:
    start = time.perf_counter()
    done = subprocess.run([PY, "-c", PHASES, str(root), assignment], capture_output=True, text=True, cwd=CWD)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    data = json.loads(done.stdout.strip().splitlines()[-1])
    last = data["start"]
    rows = []
    for name, at in data["marks"]:
        rows.append((name, at - last))
        last = at
    total = time.perf_counter() - start
    rows.insert(0, ("Python start + exit, outside the phases", total - (last - data["start"])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", action="append", help="default: a1_linear_regression and a3_training_loop")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", type=Path, help="measure another checkout of dlgrade (its commands and phases)")
    parser.add_argument("--no-phases", action="store_true", help="wall times only (an older checkout's code may not "
                        "have what the phase profile calls)")
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
    targets = {"a1_linear_regression": 1.0, "a3_training_loop": 2.5}
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
            if not args.no_phases:
                print("  phases of one cold grading (one sandbox):")
                for name, seconds in phases(root, assignment):
                    print(f"    {name:<45} {seconds:6.3f} s")
            print()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

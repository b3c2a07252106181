"""Benchmark: dlgrade grade vs stock nbgrader autograde on the same submissions, on this machine.

    python benchmarks/bench_grading.py                 # 60 full-marks a1 submissions, 2 workers
    python benchmarks/bench_grading.py --n 20 --skip-nbgrader

Prints: both wall times and the speed-up (target >= 50x, every sandbox protection on), and the same for one
submission from a cold start (target >= 5x); the per-submission overhead on a warm worker beyond the student's
own compute (target <= 60 ms); time and peak memory for N and 2N submissions (targets: linear time, flat
memory); and each solved notebook's top-to-bottom time (< 60 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from autograder.authoring import samples
from autograder.authoring.scaffold import copy_definition
from autograder.checking.sides import LocalSide
from autograder.checking.trial import run_check
from autograder.course import Course, builtin_course, sandbox_imports
from autograder.course.notebook import cells_to_run, read_cells
from autograder.grading.grader import Grader
from autograder.sandbox import Limits, Worker, protection_table

BUILTIN = Course(builtin_course())  # the built-in course (this checkout, or the installed wheel's)
A1 = BUILTIN.assignment("a1_linear_regression")
PY = sys.executable
os.environ["PATH"] = f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # nbgrader calls `alembic`


def make_course(root: Path, n: int, mistakes: bool = False) -> Path:
    """A course defined as the built-in one's a1 (without its release: each benchmark makes one) and ``n`` a1
    submissions."""
    copy_definition(BUILTIN.root, root, [A1.id])
    mistakes_cells = A1.suite.typical_mistakes
    for i in range(n):
        nb = samples.build(A1, mistakes_cells if mistakes and i % 3 == 2 else None)
        samples.write(nb, root / "submitted" / f"student{i:03d}" / A1.id / A1.notebook)
    return root


def run_measured(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB, whole process tree) of a command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return time.perf_counter() - start, peak


def tree_rss(root: int) -> float:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            rss[int(entry.name)] = int((entry / "statm").read_text().split()[1]) * 4096
        except (OSError, IndexError, ValueError):
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 2**20


def bench_nbgrader(root: Path) -> float:
    shutil.rmtree(root / "assignments" / A1.id)  # released again, into the gradebook stock autograde needs
    subprocess.run([PY, "-m", "nbgrader", "db", "assignment", "add", A1.id], cwd=root, check=True, capture_output=True)
    subprocess.run([PY, "-m", "nbgrader", "generate_assignment", A1.id], cwd=root, check=True, capture_output=True)
    seconds, _ = run_measured([PY, "-m", "nbgrader", "autograde", A1.id, "--create"], root)
    return seconds


def bench_dlgrade(root: Path, workers: int) -> tuple[float, float]:
    return run_measured([PY, "-m", "autograder", "grade", str(root), "--workers", str(workers), "--force"], root)


def overhead(n: int) -> tuple[float, float]:
    """Median per-submission wall time on one warm worker, and the student's own compute in-process."""
    grader = Grader(A1)
    with tempfile.TemporaryDirectory() as tmp:
        path = samples.write(samples.build(A1), Path(tmp) / A1.notebook)
        preload, warm, probes = sandbox_imports([A1])
        with Worker(0, preload=preload, hide=BUILTIN.secrets, warm_torch=warm, probes=probes) as worker:
            grader.grade(path, worker)  # warm the reference cache
            times = []
            for _ in range(n):
                start = time.perf_counter()
                grader.grade(path, worker)
                times.append(time.perf_counter() - start)
        compute = min(_in_process(path, grader) for _ in range(3))  # the first run pays for imports
    return statistics.median(times), compute


def _in_process(path: Path, grader: Grader) -> float:
    """Seconds to run the student's cells and every check with the student's code in this process."""
    namespace: dict = {}
    start = time.perf_counter()
    for cell in cells_to_run(read_cells(path), include_tests=False, demo_sources=grader.demo_sources):
        exec(cell["source"], namespace)
    side = LocalSide(namespace, grader.reference.probes)
    for check in grader.suite.checks:
        run_check(check, side, grader.reference)
    return time.perf_counter() - start


def notebook_times() -> list[tuple[str, float, bool]]:
    """Each available assignment's solved notebook, run top to bottom (all cells, tests included)."""
    rows = []
    assignments = [BUILTIN.assignment(a) for a in BUILTIN.assignments()]
    preload, _, probes = sandbox_imports(assignments)
    limits = Limits(cell_seconds=60.0, notebook_seconds=120.0)
    with tempfile.TemporaryDirectory() as tmp, Worker(0, limits, preload, hide=BUILTIN.secrets,
                                                      probes=probes) as worker:
        for assignment in assignments:
            path = samples.write(samples.build(assignment), Path(tmp) / assignment.notebook)
            start = time.perf_counter()
            run = worker.run_notebook(cells_to_run(read_cells(path), include_tests=True))
            rows.append((assignment.id, time.perf_counter() - start, run.alive and all(c.ok for c in run.cells)))
            worker.end_submission()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60, help="submissions (default 60)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-nbgrader", action="store_true", help="do not run nbgrader autograde")
    args = parser.parse_args()
    print("Sandbox protections:\n" + protection_table())
    with tempfile.TemporaryDirectory(prefix="dlgrade-bench-") as tmp:
        tmp = Path(tmp)
        small = make_course(tmp / "n", args.n)
        t_dl, mem_dl = bench_dlgrade(small, args.workers)
        print(f"\ndlgrade grade, {args.n} full-marks a1 submissions, {args.workers} workers: {t_dl:.1f} s "
              f"({t_dl / args.n * 1000:.0f} ms each), peak memory {mem_dl:.0f} MiB")
        if not args.skip_nbgrader:
            t_nb = bench_nbgrader(make_course(tmp / "nbgrader", args.n))
            print(f"nbgrader autograde, same submissions: {t_nb:.1f} s ({t_nb / args.n:.2f} s each)")
            print(f"speed-up: {t_nb / t_dl:.1f}x (target >= 50x)")
            one_nb = bench_nbgrader(make_course(tmp / "nbgrader-one", 1))
            one_dl = bench_dlgrade(make_course(tmp / "one", 1), 1)[0]
            print(f"one submission (a Gradescope upload), each from a cold start: nbgrader autograde {one_nb:.2f} s, "
                  f"dlgrade grade {one_dl:.2f} s: {one_nb / one_dl:.1f}x (target >= 5x)")
        per, compute = overhead(20)
        print(f"\nwarm worker, one a1 submission: {per * 1000:.0f} ms wall, of which the student's code and the "
              f"checks in-process take {compute * 1000:.0f} ms -> sandbox overhead {max(per - compute, 0) * 1000:.0f} "
              "ms (target <= 60 ms, issue #26)")
        big = make_course(tmp / "2n", 2 * args.n, mistakes=True)
        mixed = make_course(tmp / "n-mixed", args.n, mistakes=True)
        t1, m1 = bench_dlgrade(mixed, args.workers)
        t2, m2 = bench_dlgrade(big, args.workers)
        print(f"\nscaling (a third with typical mistakes): N={args.n}: {t1:.1f} s, {m1:.0f} MiB; "
              f"2N={2 * args.n}: {t2:.1f} s, {m2:.0f} MiB; time ratio {t2 / t1:.2f} (linear: 2.0, less with a "
              f"fixed start-up), memory ratio {m2 / m1:.2f} (flat: 1.0)")
    print("\nsolved notebooks, top to bottom in the sandbox (target < 60 s each):")
    for assignment, seconds, ok in notebook_times():
        print(f"  {assignment:22} {seconds:6.1f} s  {'ok' if ok else 'A CELL FAILED'}")


if __name__ == "__main__":
    main()

"""Where one submission's grading spends its time on this machine, phase by phase and step by step.

:func:`profile` grades one full-marks submission from a cold start in a fresh Python process, with the same steps
as ``dlgrade grade`` taken one after the other (Python and the CLI's imports, the protection probes, the grader's
set-up, the sandbox's start, the notebook's replay, the checks, the end of the submission, the reports), then
grades it again ``runs`` times on the same warm sandbox. Each phase is broken down into its steps inside the
sandbox (from the ``timing`` the sandbox reports with its replies: the fork of the student process, its
confinement, the cells, each step of the sweep, the call relays, with their page faults) and, for the checks,
into each graded call as the grader saw it. The text it returns names the slowest step.

A page fault and a fork cost very different amounts on different machines (a virtual machine whose memory the
host has not handed out yet, a host under memory pressure), so the report also measures both here, to tell
whether the machine or dlgrade is slow.

Nothing heavy is imported here: the grading runs in child processes.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

A1 = "a1_linear_regression"
TARGETS = {"notebook replay": 0.030, "end of submission (sweep)": 0.030}  # issue #28, per warm submission
_CHILD = ("import sys; t0 = __import__('time').perf_counter(); "
          "from autograder.grading import profiling; profiling._child(t0)")


def profile(course: Path | None = None, assignment: str = A1, runs: int = 5) -> str:
    """Profile the grading of one full-marks ``assignment`` submission: a cold grading phase by phase, then
    ``runs`` more on a warm sandbox, each phase broken down to its steps. ``course``: the course folder whose
    assignment to grade (a copy of its definition is graded), or None for the built-in course. Returns the report
    as text."""
    env = dict(os.environ)
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="dlgrade-profile-") as tmp:
        root = Path(tmp) / "course"
        given = str(Path(course).resolve()) if course is not None else ""
        _run([sys.executable, "-c", _BUILD, assignment, str(root), given], env, tmp)
        spawned = time.perf_counter()  # CLOCK_MONOTONIC: the child's clock too
        out = _run([sys.executable, "-c", _CHILD, str(root), assignment, str(max(1, runs))], env, tmp)
    data = json.loads(out.strip().splitlines()[-1])
    data["spawned"] = spawned
    data["load"] = (load_before, _load())
    return report(data)


# -- the course's entry points: the only code here that knows how a submission and its grader are made ----------

_BUILD = """
import shutil, sys
from pathlib import Path
from autograder.authoring import samples
from autograder.course import Course, builtin_course
assignment, root, given = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
results = ("submitted", "autograded", "graded", "feedback", "audit", "grades.*", "*.db", ".git", ".venv", "tests")
shutil.copytree(given or builtin_course(), root, ignore=shutil.ignore_patterns(*results))
definition = Course(root).assignment(assignment)
samples.write(samples.build(definition), root / "submitted" / "s" / assignment / definition.notebook)
"""


def _grading(root: Path, assignment: str) -> dict:
    """The grader's pieces for one submission of ``root``'s course, made as ``dlgrade grade`` makes them (and as
    ``benchmarks/bench_startup.py`` does): adapt here when the course layout changes."""
    from autograder.course import Course, notebook, sandbox_imports
    from autograder.grading import batch
    from autograder.grading.grader import Grader

    course = Course(root)
    definition = course.assignment(assignment)
    job = batch.discover(course, [assignment])[0]
    grader = Grader(definition)
    preload, warm, probes = sandbox_imports([definition])
    cells = notebook.parse_cells(notebook.read_file(job.folder / definition.notebook))
    return {"job": job, "grader": grader, "preload": preload, "warm": warm, "hide": course.secrets, "probes": probes,
            "cells": notebook.cells_to_run(cells, include_tests=False, demo_sources=grader.demo_sources)}


def _write_reports(root: Path, pieces: dict, outcomes: list) -> tuple[float, float]:
    """The submission's result and the course's reports, as ``dlgrade grade`` writes them; (score, max)."""
    from autograder.reporting.files import write_reports, write_result

    result = pieces["grader"]._result("s", outcomes, [], time.perf_counter(), {})
    write_result(pieces["job"].out, result)
    write_reports(pieces["grader"].definition.course)
    return result.score, result.max_score


# -- the measuring child -----------------------------------------------------------------------------------------


def _child(t0: float) -> None:
    """Run in a fresh interpreter (see :data:`_CHILD`): measure, and print the measurements as one JSON line."""
    root, assignment, runs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    marks: list[tuple[str, float]] = []

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    importlib.import_module("autograder.cli")  # measured, by name: what every command imports

    mark("imports: CLI")
    from autograder import course  # noqa: F401 - as `dlgrade grade` (and bench_startup's phases) import them
    from autograder.grading import batch  # noqa: F401
    from autograder.sandbox import Worker, protection_table

    protection_table()
    mark("protection probes (and the grader's modules)")
    pieces = _grading(root, assignment)
    grader = pieces["grader"]
    mark("grader set-up: checks, reference, points")
    worker = Worker(0, None, preload=pieces["preload"], hide=pieces["hide"], warm_torch=pieces["warm"],
                    probes=pieces["probes"])
    worker.start()
    mark("worker start and preload")
    start_steps = dict(worker.steps)
    calls: list[tuple[str, float, bool, str]] = []  # name, seconds, first of its call server, key
    _time_calls(worker, calls)
    cold: dict = {}
    outcomes = _submission(worker, grader, pieces["cells"], mark, cold)
    cold["calls"] = [row[:3] for row in calls]
    score = _write_reports(root, pieces, outcomes)
    mark("reports")
    warm = []
    for _ in range(runs):
        calls.clear()
        one: dict = {}
        _submission(worker, grader, pieces["cells"], None, one)
        one["calls"] = [row[:3] for row in calls]
        warm.append(one)
    worker.close()
    print(json.dumps({"t0": t0, "marks": marks, "score": score, "start_steps": start_steps, "cold": cold,
                      "warm": warm, "machine": _machine()}))


def _submission(worker, grader, cells: list, mark, into: dict) -> list:
    """Replay, checks and end of one submission on ``worker``, with each phase's wall time and sandbox steps."""
    t = time.perf_counter()
    worker.run_notebook(cells)
    into["replay"] = (time.perf_counter() - t, dict(worker.steps))
    if mark:
        mark("notebook replay")
    t = time.perf_counter()
    outcomes = grader._run_checks(worker)
    into["checks"] = time.perf_counter() - t
    if mark:
        mark("checks")
    t = time.perf_counter()
    worker.end_submission()
    into["end"] = (time.perf_counter() - t, dict(worker.steps))
    if mark:
        mark("end of submission (sweep)")
    return outcomes


def _time_calls(worker, log: list) -> None:
    """Record each graded call's wall time as the grader sees it, and whether it was the first of its call
    server in this submission (the sandbox forks a call server for each graded function's first call)."""
    call = worker.call

    def timed(probe: str, args: dict, seconds: float | None = None, on_ask=None, fresh: bool = False):
        name = args.get("name") if isinstance(args.get("name"), str) else ""
        key = f"{probe}:{name}" if name else probe
        start = time.perf_counter()
        try:
            return call(probe, args, seconds, on_ask, fresh)
        finally:
            first = all(key != earlier for _, _, _, earlier in log)
            log.append((f"{probe} {name}".strip(), time.perf_counter() - start, first, key))

    worker.call = timed


def _machine() -> dict:
    """What a page fault and a fork cost on this machine (they vary from machine to machine, and with its
    state)."""
    import mmap
    import resource

    pages = 2048
    area = mmap.mmap(-1, pages * 4096)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for offset in range(0, pages * 4096, 4096):
        area[offset] = 1
    touch = time.perf_counter() - start
    faults = max(1, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    area.close()
    forks = []
    for _ in range(5):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        forks.append(time.perf_counter() - start)
    return {"fault": touch / faults, "faults": faults, "fork": sorted(forks)[len(forks) // 2]}


# -- the report ----------------------------------------------------------------------------------------------------


def report(data: dict) -> str:
    """The text table of a profile's measurements (see :func:`profile`)."""
    lines: list[str] = []
    load = data.get("load") or ("?", "?")
    warm = data["warm"]
    lines.append(f"Profile of one full-marks submission, every protection this machine provides on "
                 f"(load average before: {load[0]}, after: {load[1]})")
    lines.append(f"score {data['score'][0]:g}/{data['score'][1]:g}")
    lines.append("")
    lines.append("One cold grading, phase by phase (the steps of `dlgrade grade`, one after the other, one sandbox):")
    last = data["t0"]
    phases = [("Python start", data["t0"] - data["spawned"])]
    for name, at in data["marks"]:
        phases.append((name, at - last))
        last = at
    for name, seconds in phases:
        lines.append(f"  {name:<66} {seconds:7.3f} s")
    lines.append(f"  {'total (without Python exit)':<66} {last - data['spawned']:7.3f} s")
    lines.append("")
    lines.append("  the sandbox's own start (inside it, after Python and the runtime's imports):")
    lines += _rows(data["start_steps"], "    ")
    lines.append("")
    lines.append(f"One submission on a warm sandbox, median of {len(warm)} (cold run in brackets):")
    leaves: list[tuple[str, float]] = []
    for phase, key in (("notebook replay", "replay"), ("checks", "checks"), ("end of submission (sweep)", "end")):
        wall = _median([_wall(run[key]) for run in warm])
        cold = _wall(data["cold"][key])
        target = TARGETS.get(phase)
        goal = f"   target < {target * 1000:.0f} ms: {'met' if wall < target else 'MISSED'}" if target else ""
        lines.append(f"  {phase:<66} {wall * 1000:8.1f} ms  ({cold * 1000:.1f}){goal}")
        if key == "checks":
            leaves += _checks(warm, data["cold"], lines)
            continue
        steps = _median_steps([run[key][1] for run in warm], prefix=("replay" if key == "replay" else "end"))
        inside = sum(s for s, _, _ in steps.values())
        lines += _rows(steps, "    ")
        rest = max(0.0, wall - inside)
        lines.append(f"    {'the grader and the pipes (the rest)':<64} {rest * 1000:8.2f} ms")
        leaves += [(f"{phase}: {name}", s) for name, (s, _, _) in steps.items()]
        leaves.append((f"{phase}: the grader and the pipes", rest))
    total = sum(_median([_wall(run[k]) for run in warm]) for k in ("replay", "checks", "end"))
    lines.append(f"  {'one submission':<66} {total * 1000:8.1f} ms")
    lines.append("")
    machine = data["machine"]
    lines.append(f"This machine: a page fault costs {machine['fault'] * 1e6:.1f} us (first touch of "
                 f"{machine['faults']} pages); fork, exit and wait of the profiling process: "
                 f"{machine['fork'] * 1000:.2f} ms. Each fork's pages are copied on first write, one fault each.")
    faults = _median([sum(row[1] for row in run["end"][1].values()) for run in warm])  # the whole submission
    lines.append(f"Page faults in one warm submission, in the sandbox's processes: {faults:.0f}, about "
                 f"{faults * machine['fault'] * 1000:.0f} ms at this machine's cost per fault.")
    name, seconds = max(leaves, key=lambda row: row[1])
    slow_phase, phase_seconds = max(phases, key=lambda row: row[1])
    lines.append(f"Slowest step of a warm submission: {name}: {seconds * 1000:.1f} ms "
                 f"({100 * seconds / max(total, 1e-9):.0f}% of it).")
    lines.append(f"Slowest phase of the cold grading: {slow_phase}: {phase_seconds:.3f} s.")
    return "\n".join(lines)


def _checks(warm: list, cold: dict, lines: list[str]) -> list[tuple[str, float]]:
    """The checks phase's lines: the graded calls (the ones that start a call server apart) and the grader's own
    work around them; its leaves for the slowest step."""
    sandbox_key = next((k for k in warm[0]["end"][1] if k.startswith("calls: in the sandbox")), None)
    firsts = [s for run in warm for _, s, first in run["calls"] if first]
    others = [s for run in warm for _, s, first in run["calls"] if not first]
    per_run = _median([sum(s for _, s, _ in run["calls"]) for run in warm])
    checks = _median([run["checks"] for run in warm])
    n = _median([len(run["calls"]) for run in warm])
    servers = _median([sum(1 for *_, first in run["calls"] if first) for run in warm])
    lines.append(f"    {f'graded calls, as the grader sees them ({n:g})':<64} {per_run * 1000:8.2f} ms")
    leaves = []
    if sandbox_key:
        inside = _median([run["end"][1].get(sandbox_key, (0.0, 0, 0))[0] for run in warm])
        lines.append(f"      {'of which in the sandbox (relays, call servers, the code)':<62} {inside * 1000:8.2f} ms")
        leaves.append(("checks: graded calls, in the sandbox", inside))
        leaves.append(("checks: graded calls, the grader's side (encoding, pipes)", max(0.0, per_run - inside)))
    else:
        leaves.append(("checks: graded calls", per_run))
    if firsts:
        what = f"first call of a function (forks its call server; {servers:g})"
        lines.append(f"      {what:<62} {_median(firsts) * 1000:8.2f} ms each")
    if others:
        what = "later calls (relayed to a running call server)"
        lines.append(f"      {what:<62} {_median(others) * 1000:8.2f} ms each")
    slow = sorted(((s, name, first) for run in [cold, *warm] for name, s, first in run["calls"]), reverse=True)[:3]
    for s, name, first in slow:
        lines.append(f"      slowest: {name}{' (first: forks a call server)' if first else ''}: {s * 1000:.2f} ms")
    own = max(0.0, checks - per_run)
    lines.append(f"    {'the grader between calls (reference, comparing, verdicts)':<64} {own * 1000:8.2f} ms")
    leaves.append(("checks: the grader between calls", own))
    return leaves


def _rows(steps: dict, indent: str) -> list[str]:
    width = 68 - len(indent)
    out = []
    for name, (seconds, faults, times) in steps.items():
        count = f" x{times}" if times > 1 else ""
        out.append(f"{indent}{name + count:<{width}} {seconds * 1000:8.2f} ms  {faults:6d} page faults")
    return out


def _median_steps(runs: list[dict], prefix: str) -> dict:
    names = [name for run in runs for name in run if name.startswith(prefix)]
    steps = {}
    for name in dict.fromkeys(names):
        rows = [run.get(name, (0.0, 0, 0)) for run in runs]
        steps[name] = (_median([r[0] for r in rows]), int(_median([r[1] for r in rows])),
                       int(_median([r[2] for r in rows])))
    return steps


def _wall(entry: float | list | tuple) -> float:
    return entry[0] if isinstance(entry, (list, tuple)) else entry


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _run(cmd: list[str], env: dict, cwd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"profiling failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout

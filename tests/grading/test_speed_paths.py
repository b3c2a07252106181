"""The per-submission path does no work whose cost depends on the machine's state (issue #28): no polling sleeps,
no second sweep, no fork to clear kernel objects that are not there, no walk of /proc without a child, a frozen
heap in every fork, and a runtime that the sandbox never compiles. No test here asserts on time."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import COURSE, TEST_LIMITS, clear_sandbox_caches

from autograder import settings
from autograder.sandbox import Worker
from autograder.sandbox import worker as worker_module
from autograder.sandbox.doctor import FILTER, USER

requires = pytest.mark.requires_protection
CELLS = [{"index": 0, "source": "def f(x):\n    return x + 1\n"}]
INDEX = 7  # a worker index (so a uid) of these tests' own

# Run in a fresh interpreter (it kills its own children, and patches time.sleep to fail): any sleep is polling.
NO_SLEEP = r"""
import ctypes, json, os, sys, time
from autograder.runtime import cleanup, student, zygote

def polled(seconds):
    raise AssertionError(f"polled: time.sleep({seconds})")

time.sleep = polled
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, as the zygote
out = {}

def tree():
    # a child that forks a grandchild; both sleep until killed
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        grandchild = os.fork()
        if grandchild == 0:
            os.execv("/bin/sleep", ["sleep", "60"])
        os.write(w, str(grandchild).encode())
        os.execv("/bin/sleep", ["sleep", "60"])
    os.close(w)
    return pid, int(os.read(r, 100))

child, grandchild = tree()
left, killed, _ = cleanup.kill_descendants(os.getpid())
out["kill"] = [left, killed, cleanup.has_children()]

real_listdir = os.listdir
def no_walk(path):
    raise AssertionError(f"walked {path}")
os.listdir = no_walk
out["no_children"] = list(cleanup.kill_descendants(os.getpid()))
os.listdir = real_listdir

def ends_later(code):
    pid = os.fork()
    if pid == 0:
        os.execv("/bin/sh", ["sh", "-c", f"sleep 0.2; exit {code}"])
    return pid

error = student._reap(ends_later(3), 10.0)
out["student_reap"] = error.message if error else None

z = zygote.Zygote.__new__(zygote.Zygote)
z.exits = {}
pid = ends_later(4)
z.student = zygote.StudentProcess(pid, -1, None, None)
status = z._wait(pid, 10.0)
out["zygote_wait"] = os.WEXITSTATUS(status) if status is not None else None
print(json.dumps(out))
"""


def test_waiting_for_processes_to_end_never_polls() -> None:
    """The sweep's kill-and-reap, the zygote's wait for a student process that closed its pipe, and a student
    process's wait for a call server that died block on the kernel (pidfds) instead of sleeping in a loop; a
    process with no child walks no /proc."""
    done = subprocess.run([sys.executable, "-c", NO_SLEEP], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["kill"] == [0, 2, False]  # child and grandchild killed and reaped: no zombie left
    assert out["no_children"] == [0, 0, 0]
    assert out["student_reap"] == "the process exited (exit code 3, e.g. os._exit or sys.exit)"
    assert out["zygote_wait"] == 4


def test_a_submission_starts_without_a_second_sweep_and_a_replay_sweeps_first() -> None:
    """The end of a submission sweeps; the next one starts without sweeping again (nothing ran since). A replay
    after a cell that killed the process does sweep first: that process's leftovers go."""
    crash = [*CELLS, {"index": 1, "source": "import os\nos._exit(3)\n"}]
    with Worker(INDEX, TEST_LIMITS, hide=COURSE.secrets) as worker:
        for cells in (CELLS, CELLS):
            worker.run_notebook(cells)
            first = dict(worker.steps)
            assert worker.call("probes.call", {"name": "f", "args": [1]}).value["value"] == 2
            worker.end_submission()
            assert any(name.startswith("end: kill and reap") for name in worker.steps), worker.steps
            assert not [name for name in first if "sweep" in name], first
        started = worker.run_notebook(crash)
        replayed = dict(worker.steps)
        worker.end_submission()
    assert [c.index for c in started.cells if not c.ok] == [1]
    assert any(name.startswith("replay: sweep first: kill and reap") for name in replayed), replayed


@requires(USER, FILTER)
def test_the_sweep_forks_no_child_when_the_kernel_shows_nothing_to_clear() -> None:
    """With the syscall filter on, no student process can make a key or a SysV object: the end of a submission
    looks (the uid's line of /proc/key-users, /proc/sysvipc) instead of forking a child of the uid to clear them.
    A key that appears anyway (here: made by root as the uid) is cleared by that child at the next sweep."""
    with Worker(INDEX, TEST_LIMITS, hide=COURSE.secrets) as worker:
        uid = settings.current().uid_base + worker.index
        worker.run_notebook(CELLS)
        worker.end_submission()
        assert "end: kernel objects: none to clear (no child)" in worker.steps, worker.steps
        worker.run_notebook(CELLS)
        assert _as_uid(uid, _add_key) > 0
        worker.end_submission()
        assert "end: kernel objects: cleared by a child of the uid" in worker.steps, worker.steps
        assert _as_uid(uid, _find_key) < 0  # gone
        for _ in range(3):  # the kernel frees a cleared key a moment later: its counts change once more
            worker.run_notebook(CELLS)
            worker.end_submission()
            if "end: kernel objects: none to clear (no child)" in worker.steps:
                break
        assert "end: kernel objects: none to clear (no child)" in worker.steps, worker.steps


def test_student_processes_start_with_the_sandboxs_heap_frozen() -> None:
    """The zygote freezes what it imported before its first fork: a collection in a student process or a call
    server does not touch (and so copy) those pages."""
    cells = [{"index": 0, "source": "import gc\nfrozen = gc.get_freeze_count()\ndef f():\n    return frozen\n"}]
    with Worker(INDEX, TEST_LIMITS, hide=COURSE.secrets) as worker:
        worker.run_notebook(cells)
        frozen = worker.call("probes.call", {"name": "f", "args": []})
        worker.end_submission()
    assert frozen.ok and frozen.value["value"] > 1000, frozen


RUNTIME_COMPILED = (
    "import importlib.util, sys\n"
    "def compiled():\n"
    "    names = sorted(n for n in sys.modules if n.startswith('dlgrade_runtime'))\n"
    "    bad = []\n"
    "    for name in names:\n"
    "        m = sys.modules[name]\n"
    "        data = open(m.__cached__, 'rb').read()\n"
    "        flags = int.from_bytes(data[4:8], 'little')\n"
    "        source = open(m.__file__, 'rb').read()\n"
    "        if data[:4] != importlib.util.MAGIC_NUMBER or not flags & 1 or \\\n"
    "                (flags & 2 and data[8:16] != importlib.util.source_hash(source)):\n"
    "            bad.append(name)\n"
    "    return [len(names), bad]\n")


def test_the_sandbox_runtime_has_bytecode_where_the_installation_has_none(tmp_path, monkeypatch) -> None:
    """An editable install under PYTHONDONTWRITEBYTECODE=1 has no compiled runtime, and the sandbox writes none:
    each sandbox compiled its runtime at its start. The worker now gives it bytecode from the grader's private
    cache (compiled once per source), valid for the copy's sources."""
    bare = tmp_path / "runtime"
    shutil.copytree(worker_module.RUNTIME_DIR, bare, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(worker_module, "RUNTIME_DIR", bare)
    monkeypatch.setenv("DLGRADE_CACHE", str(tmp_path / "cache"))
    clear_sandbox_caches()
    try:
        with Worker(INDEX, TEST_LIMITS, hide=COURSE.secrets) as worker:
            worker.run_notebook([{"index": 0, "source": RUNTIME_COMPILED}])
            found = worker.call("probes.call", {"name": "compiled", "args": []})
            worker.end_submission()
    finally:
        monkeypatch.undo()
        clear_sandbox_caches()
    assert found.ok, found
    count, bad = found.value["value"]
    assert count >= 8 and bad == [], found.value
    assert not (bare / "__pycache__").exists()  # the installation's folder is left as it is


def test_the_runtime_is_compiled_once_per_source(tmp_path, monkeypatch) -> None:
    """The second sandbox takes the cached bytecode: nothing is compiled again."""
    monkeypatch.setenv("DLGRADE_CACHE", str(tmp_path / "cache"))
    clear_sandbox_caches()
    first, second = tmp_path / "one", tmp_path / "two"
    for folder in (first, second):
        shutil.copytree(worker_module.RUNTIME_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    try:
        worker_module.compile_runtime(first)

        def refuse(*args, **kwargs):
            raise AssertionError("compiled again")

        monkeypatch.setattr("py_compile.compile", refuse)
        worker_module.compile_runtime(second)
    finally:
        monkeypatch.undo()
        clear_sandbox_caches()
    modules = sorted(p.stem for p in worker_module.RUNTIME_DIR.glob("*.py"))
    assert sorted(p.name.split(".")[0] for p in (second / "__pycache__").glob("*.pyc")) == modules


def test_the_sandbox_reports_where_its_time_went() -> None:
    """Ready, Started and Ended carry the sandbox's steps (seconds, page faults, times); a malformed record is
    dropped, never an error."""
    with Worker(INDEX, TEST_LIMITS, hide=COURSE.secrets) as worker:
        assert "start: self-check (a student process's first steps)" in worker.steps
        worker.run_notebook(CELLS)
        assert {"replay: fork the student process", "replay: student process start and confinement"} <= set(
            worker.steps)
        worker.call("probes.call", {"name": "f", "args": [1]})
        worker.end_submission()
        calls = [v for k, v in worker.steps.items() if k.startswith("calls: in the sandbox")]
    assert len(calls) == 1 and calls[0][2] == 1
    for seconds, faults, times in worker.steps.values():
        assert seconds >= 0 and faults >= 0 and times >= 1
    assert worker_module._steps({"timing": {"a": [1e400, 0, 1], "b": ["x", 0, 1], "c": [0.5, -1, 1],
                                            "d": [0.5, 2, 1]}}) == {"d": (0.5, 2, 1)}
    assert worker_module._steps({"timing": [1, 2]}) == {}


def test_the_profile_names_each_phase_and_the_slowest_step() -> None:
    """``autograder.grading.profiling.profile`` (behind ``dlgrade doctor --profile``): one cold grading phase by phase,
    then warm submissions down to the sandbox's steps and the graded calls, and the slowest step by name."""
    from autograder.grading.profiling import profile

    text = profile(None, "a1_linear_regression", runs=1)
    for phase in ("imports: CLI", "worker start and preload", "notebook replay", "checks",
                  "end of submission (sweep)", "replay: fork the student process", "end: kill and reap",
                  "first call of a function", "score 12/12", "Slowest step of a warm submission: "):
        assert phase in text, text


# -- helpers -------------------------------------------------------------------------------------------------------


def _as_uid(uid: int, action) -> int:
    """Run ``action()`` (returning an int) in a child process of ``uid``; its result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.write(w, str(action()).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as reader:
        value = reader.read()
    os.waitpid(pid, 0)
    return int(value)


def _add_key() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(248, b"user", b"dlgrade-speed-test", b"x", 1, -4)  # add_key to the user keyring


def _find_key() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(250, 10, -4, b"user", b"dlgrade-speed-test", 0)  # KEYCTL_SEARCH in the user keyring

"""No channel and no interference between sandboxes that run at once, in one grader or in several: file locks and
watches on the files every sandbox reads are refused, concurrent graders never share a student uid, and each
sandbox has a CPU share of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import A1, COURSE, TEST_LIMITS, copy_course

from autograder.authoring import samples
from autograder.reporting.results import read_result
from autograder.sandbox import Worker
from autograder.sandbox import uids as uid_leases
from autograder.sandbox.doctor import CPU, FILTER, USER

requires = pytest.mark.requires_protection

# every sandbox reads the same file (the same inode): the standard library's os.py
ATTEMPTS = """\
import errno, fcntl, os, struct

def attempt():
    outcome = {}
    fd = os.open(os.__file__, os.O_RDONLY)
    flock = struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 1, 0)
    tries = {
        "lockf": lambda: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 3),
        "flock": lambda: fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB),
        "F_GETLK": lambda: fcntl.fcntl(fd, fcntl.F_GETLK, flock),
        "F_OFD_SETLK": lambda: fcntl.fcntl(fd, 37, flock),
        "inotify": lambda: __import__("ctypes").CDLL(None, use_errno=True).inotify_init() >= 0 or 1 / 0,
    }
    for name, call in tries.items():
        try:
            call()
            outcome[name] = "allowed"
        except (OSError, ZeroDivisionError):
            outcome[name] = "refused"
    return outcome
"""


@requires(FILTER)
def test_locks_and_watches_on_a_file_every_sandbox_reads_are_refused(worker) -> None:
    worker.run_notebook([{"index": 0, "source": ATTEMPTS}])
    reply = worker.call("probes.call", {"name": "attempt", "args": []})
    worker.end_submission()
    assert reply.ok, reply.error
    assert reply.value["value"] == dict.fromkeys(["lockf", "flock", "F_GETLK", "F_OFD_SETLK", "inotify"], "refused")


WRITER = """\
import fcntl, os, struct
fd = os.open(os.__file__, os.O_RDONLY)
written = 0
for i, bit in enumerate('1011001110001111'):  # a note: each 1 a read lock on byte i
    if bit == '1':
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, i)
            written += 1
        except OSError:
            pass
def wrote():
    return written
"""
READER = """\
import fcntl, os, struct

def read_note():
    fd = os.open(os.__file__, os.O_RDONLY)
    seen = []
    for i in range(16):
        probe = struct.pack("hhqqi", fcntl.F_WRLCK, 0, i, 1, 0)
        try:
            kind = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, probe))[0]
        except OSError:
            return "refused"
        seen.append("1" if kind != fcntl.F_UNLCK else "0")
    return "".join(seen)
"""


@requires(FILTER)
def test_a_note_written_as_locks_never_reaches_a_concurrent_sandbox() -> None:
    """The round-three attack: a writer encodes its answers as byte-range locks on a read-only standard-library
    file; a reader in another sandbox, running at the same time, enumerates them with F_GETLK."""
    with Worker(1, TEST_LIMITS, hide=COURSE.secrets) as writer, Worker(2, TEST_LIMITS, hide=COURSE.secrets) as reader:
        writer.run_notebook([{"index": 0, "source": WRITER}])
        wrote = writer.call("probes.call", {"name": "wrote", "args": []})
        reader.run_notebook([{"index": 0, "source": READER}])
        note = reader.call("probes.call", {"name": "read_note", "args": []})
        writer.end_submission()
        reader.end_submission()
    assert wrote.ok and wrote.value["value"] == 0, wrote
    assert note.ok and note.value["value"] == "refused", note


@pytest.mark.skipif(os.geteuid() != 0, reason="student uids are switched only by a root grader")
def test_two_sandboxes_never_hold_the_same_student_uid_and_a_closed_ones_is_free_again() -> None:
    """Two graders' worker 0 (here: two leases in one process) get different uids; closing frees one."""
    base = 61000 + 3000 + os.getpid() % 500
    first, second = uid_leases.take(base), uid_leases.take(base)
    assert first.uid == base and second.uid == base + 1
    first.release()
    third = uid_leases.take(base)
    assert third.uid == base
    second.release()
    third.release()


@requires(USER)
def test_workers_of_one_grader_run_student_code_as_distinct_uids() -> None:
    with Worker(0, TEST_LIMITS, hide=COURSE.secrets) as one, Worker(0, TEST_LIMITS, hide=COURSE.secrets) as two:
        assert one.uid is not None and two.uid is not None and one.uid != two.uid
        for w in (one, two):
            w.run_notebook([{"index": 0, "source": "import os\ndef me():\n    return os.getuid()\n"}])
        assert [w.call("probes.call", {"name": "me", "args": []}).value["value"] for w in (one, two)] == [one.uid,
                                                                                                         two.uid]
        for w in (one, two):
            w.end_submission()


FORK_HOLDER = """\
import os, time
children = []
for _ in range(58):  # within its own budget of 64 processes
    pid = os.fork()
    if pid == 0:
        time.sleep(40)
        os._exit(0)
    children.append(pid)
time.sleep(20)
"""


@pytest.mark.slow
@requires(USER)
def test_a_fork_holder_in_one_grader_costs_a_concurrent_graders_student_nothing(tmp_path: Path) -> None:
    """Round three: every grader on a machine used uid base + worker, and RLIMIT_NPROC counts per uid across PID
    namespaces, so a submission forking within its own budget in one batch left a correct student in another batch
    (another course, graded at the same time) with 2/12. Two `dlgrade grade` processes, one worker each."""
    holder, honest = copy_course(tmp_path / "one", [A1.id]), copy_course(tmp_path / "two", [A1.id])
    samples.write(samples.build(A1, extra_cells=[FORK_HOLDER]), holder.root / "submitted" / "fox" / A1.id / A1.notebook)
    samples.write(samples.build(A1), honest.root / "submitted" / "ada" / A1.id / A1.notebook)
    command = [sys.executable, "-m", "autograder", "grade", "--workers", "1"]
    first = subprocess.Popen([*command, str(holder.root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _processes_of_uids_above(61000) < 50:
            time.sleep(0.2)
        assert _processes_of_uids_above(61000) >= 50, "the fork holder did not start"
        done = subprocess.run([*command, str(honest.root)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert _processes_of_uids_above(61000) >= 50, "the fork holder ended before the second grader"
    finally:
        first.wait(timeout=300)
    result = read_result(honest.root / "graded" / "ada" / A1.id)
    assert result.score == result.max_score == 12, result.to_json()


def _processes_of_uids_above(base: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            uid = int((entry / "status").read_text().split("\nUid:\t")[1].split()[0]) if entry.name.isdigit() else 0
        except (OSError, IndexError, ValueError):
            continue
        count += uid >= base
    return count


@requires(CPU)
def test_each_sandbox_runs_in_a_cpu_group_of_its_own_with_a_quota() -> None:
    with Worker(0, TEST_LIMITS, hide=COURSE.secrets) as one, Worker(1, TEST_LIMITS, hide=COURSE.secrets) as two:
        groups = [_cpu_group(w.proc.pid) for w in (one, two)]
    assert groups[0] != groups[1] and all(g.name.startswith("dlgrade-") for g in groups)


def _cpu_group(pid: int) -> Path:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(",") or (hierarchy == "0" and Path(f"/sys/fs/cgroup{path}/cpu.max").exists()):
            folder = Path("/sys/fs/cgroup") / ("cpu" if controllers else "") / path.lstrip("/")
            quota = folder / ("cpu.cfs_quota_us" if controllers else "cpu.max")
            assert quota.read_text().split()[0] == "100000", quota
            return folder
    raise AssertionError(f"process {pid} is in no cpu cgroup")



"""The syscall filter: what it denies, what grading still needs, and that a denied call can be named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autograder.runtime import seccomp

pytestmark = pytest.mark.skipif(seccomp.unavailable() is not None, reason=f"no filter here: {seccomp.unavailable()}")

PROGRAM = r"""
import ctypes, os, sys, threading, multiprocessing
sys.path.insert(0, {runtime!r})
import seccomp
seccomp.install()
libc = ctypes.CDLL(None, use_errno=True)

def denied(*args):
    ctypes.set_errno(0)
    result = libc.syscall(*args)
    return seccomp.denied_call(ctypes.get_errno()) if result == -1 else "allowed"

nr = seccomp._table()[1]
print("keyctl", denied(nr["keyctl"], 7, -4))
print("add_key", denied(nr["add_key"], b"user", b"k", b"v", 1, -4))
print("shmget", denied(nr["shmget"], 0, 4096, 0o1666))
print("msgget", denied(nr["msgget"], 0, 0o1666))
print("unshare", denied(nr["unshare"], 0x10000000))
print("io_uring_setup", denied(nr["io_uring_setup"], 8, ctypes.create_string_buffer(120)))
print("ptrace", denied(nr["ptrace"], 0, 0, 0, 0))
print("bpf", denied(nr["bpf"], 0, 0, 0))
print("clone-namespace", denied(nr["clone"], 0x20000011, 0, 0, 0, 0))
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
box = []
t = threading.Thread(target=box.append, args=(1,)); t.start(); t.join()
print("thread", box)
q = multiprocessing.get_context("fork").Queue()
w = multiprocessing.get_context("fork").Process(target=q.put, args=(3,)); w.start()
print("process", q.get()); w.join()
print("subprocess", __import__("subprocess").run(["true"]).returncode)
"""


def test_the_filter_denies_what_grading_never_needs_and_names_it_but_keeps_what_it_does() -> None:
    """Keyrings, SysV IPC, namespaces, io_uring, ptrace and bpf are denied with an errno that names the call;
    fork, threads, multiprocessing and subprocesses still work."""
    from pathlib import Path

    runtime = str(Path(seccomp.__file__).parent)
    done = subprocess.run([sys.executable, "-c", PROGRAM.format(runtime=runtime)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    for call in ("keyctl", "add_key", "shmget", "msgget", "unshare", "io_uring_setup", "ptrace", "bpf"):
        assert lines[call] == call
    assert lines["clone-namespace"] == "clone"
    assert (lines["fork"], lines["thread"], lines["process"], lines["subprocess"]) == ("7", "[1]", "3", "0")


def test_every_denied_name_has_a_number_and_errnos_stay_below_the_kernels_cap() -> None:
    arch = seccomp._table()
    table = arch[1]
    missing = [name for name in seccomp.DENIED if name not in table]
    assert all(name in ("iopl", "ioperm", "uselib") for name in missing), missing  # x86-only calls on arm64
    assert max(table.values()) + seccomp.ERRNO_BASE < 4096
    assert seccomp.denied_call(seccomp.ERRNO_BASE + table["keyctl"]) == "keyctl"
    assert seccomp.denied_call(1) is None and seccomp.denied_call(None) is None

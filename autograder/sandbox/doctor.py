"""Which isolation guarantees this machine provides: the table ``dlgrade doctor`` and ``dlgrade grade`` print."""

from __future__ import annotations

import functools
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..runtime import seccomp
from . import bwrap, cgroups
from .errors import SandboxError

PROCESS = "separate process, plain data only"
NETWORK = "no network"
VIEW = "filesystem view without solutions/tests"
PRIVATE_TMP = "private /tmp and PID namespace"
USER = "unprivileged user"
FILTER = "syscall filter"
LIMITS = "limits: time, CPU, memory, files"
PROCESSES = "limit on processes"
CGROUP = "memory and PID cgroup"
CPU = "CPU share per sandbox"
NO_CHANNEL = "nothing passes between submissions"


@dataclass(frozen=True)
class Protection:
    """One isolation guarantee and whether this machine provides it."""

    name: str
    active: bool
    how: str


@functools.lru_cache(maxsize=1)
def cgroup_hierarchy() -> tuple[cgroups.Hierarchy | None, str]:
    """Where worker cgroups go (found once per process), or None and why not."""
    config = settings.current()
    if config.no_cgroup:
        return None, "switched off (DLGRADE_NO_CGROUP)"
    if os.geteuid() != 0 and config.cgroup is None:
        return None, "the grader is not root (or give it a delegated cgroup v2 folder with DLGRADE_CGROUP)"
    hierarchy, reason = cgroups.find(Path("/sys/fs/cgroup"), config.cgroup)
    if hierarchy is not None:
        hierarchy.remove_stale()
    return hierarchy, reason


def has_gpu() -> bool:
    """Whether NVIDIA device files exist (then the sandbox passes them through and cannot cap address space)."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


def filter_off() -> str | None:
    """Why student processes get no syscall filter here, or None."""
    if settings.current().no_seccomp:
        return "switched off (DLGRADE_NO_SECCOMP)"
    return seccomp.unavailable()


def protections() -> list[Protection]:
    """The isolation table printed by ``dlgrade doctor`` and recorded with every batch."""
    namespaces = bool(bwrap.path())
    ns_how = "bubblewrap namespaces" if namespaces else bwrap.why_not()
    root = os.geteuid() == 0
    hierarchy, cgroup_reason = cgroup_hierarchy()
    no_filter = filter_off()
    if root:
        processes = "RLIMIT_NPROC of the student's uid" + (" and the pids cgroup" if hierarchy else "")
    else:
        processes = "the pids cgroup" if hierarchy else "RLIMIT_NPROC would count the grader's own processes"
    if namespaces:
        channel = "private /tmp and /dev/shm emptied; a network of its own"
        channel += "; IPC objects and keyrings of the uid cleared" if root else ""
    elif root:
        channel = ("files swept and IPC objects cleared after each submission, but sandboxes running at once share "
                   "the network: loopback and abstract sockets pass between them")
    else:
        channel = "student code runs as the grader's user, with no namespaces"
    return [
        Protection(PROCESS, True, "fork per cell and per call; JSON + raw arrays"),
        Protection(NETWORK, namespaces, ns_how),
        Protection(VIEW, namespaces, ns_how),
        Protection(PRIVATE_TMP, namespaces, ns_how),
        Protection(USER, root, "setuid to a per-worker uid" if root else "grader is not root"),
        Protection(FILTER, no_filter is None, "seccomp: no keyrings, IPC, namespaces, mounts, io_uring, bpf, ptrace"
                   if no_filter is None else no_filter),
        Protection(LIMITS, True, "deadlines + rlimits" + ("; memory by cgroup only (GPU)" if has_gpu() else "")),
        Protection(PROCESSES, root or hierarchy is not None, processes),
        Protection(CGROUP, hierarchy is not None, hierarchy.description if hierarchy else cgroup_reason),
        Protection(CPU, hierarchy is not None and hierarchy.cpu,
                   "a CPU quota of one core per sandbox" if hierarchy is not None and hierarchy.cpu
                   else cgroup_reason or "no cpu controller in the cgroup hierarchy"),
        Protection(NO_CHANNEL, namespaces, channel),
    ]


# Without these, student code could read the course (its solutions/ and checks/, classmates' notebooks, other jobs'
# files) or reach the submissions graded beside it: dlgrade grade refuses to grade unless told to accept the risk.
ESSENTIAL = (VIEW, NETWORK, PRIVATE_TMP, NO_CHANNEL)
WEAK_HOST = ("this machine cannot keep the references secret or the students apart: {off} {verb} off ({why}). "
             "Install bubblewrap (apt-get install bubblewrap) and grade as root, or where user namespaces are allowed; "
             "in a container, run it with --cap-add SYS_ADMIN,NET_ADMIN (README, \"Grading in a container\"). To grade "
             "here anyway, accepting that student code can read every world-readable file and reach the other "
             "sandboxes, pass --allow-weak-sandbox (every result records it).")


def weaknesses(rows: Sequence[Protection] | None = None) -> list[str]:
    """The essential protections (:data:`ESSENTIAL`) this machine lacks."""
    rows = protections() if rows is None else rows
    return [p.name for p in rows if p.name in ESSENTIAL and not p.active]


def require_strong(allow_weak: bool) -> list[str]:
    """Nothing when every essential protection is on; else the ones that are off, when ``allow_weak`` (the caller
    records them in every result), or SandboxError saying what to install or which flag accepts the risk."""
    off = weaknesses()
    if off and not allow_weak:
        why = next(p.how for p in protections() if p.name == off[0])
        raise SandboxError(WEAK_HOST.format(off=", ".join(off), verb="is" if len(off) == 1 else "are", why=why))
    return off


def private_python() -> str | None:
    """The folder that keeps student processes from entering the Python installation, when they run as another uid
    without bubblewrap (they then reach it through descriptors the sandbox opens before they drop root:
    ``runtime/confine.python_view``), or None."""
    if bwrap.path() or os.geteuid() != 0:
        return None
    for folder in (Path(os.__file__).resolve().parent, Path(sys.prefix).resolve()):
        for part in [*reversed(folder.parents), folder]:
            try:
                mode = part.stat().st_mode
            except OSError:
                continue
            if not mode & stat.S_IXOTH or (part == folder and not mode & stat.S_IROTH):
                return str(part)
    return None


def protection_table(rows: Sequence[Protection] | None = None) -> str:
    """The protections as an aligned text table (this machine's, or ``rows``), with what a reader must know."""
    measured = rows is None  # notes about this machine's Python only for this machine's table
    rows = protections() if rows is None else rows
    width = max(len(p.name) for p in rows)
    table = "\n".join(f"  {'on ' if p.active else 'OFF'}  {p.name.ljust(width)}  ({p.how})" for p in rows)
    active = {p.name: p.active for p in rows}
    if not active.get(VIEW, True) and not active.get(USER, True):
        table += ("\n  WARNING: student code runs as this user: a submission could copy the reference solutions "
                  "and change other students' results. Grade where bubblewrap works, or as root (README, \"What the "
                  "grader promises\").")
    private = private_python() if measured else None
    if private:
        table += (f"\n  note: {private} is closed to other users, so student code reaches the Python installation "
                  "through descriptors the sandbox opens before it drops root (it imports what the grader can).")
    return table

"""Per-submission budgets: every number a student can hit is here, and only here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GIB = 2**30
MIB = 2**20


@dataclass(frozen=True)
class Limits:
    """What one submission may use. The grader derives every deadline from these numbers."""

    cell_seconds: float = 30.0  # one top-level notebook cell
    notebook_seconds: float = 150.0  # all cells together (also each student process's CPU time)
    call_seconds: float = 10.0  # one graded call, unless a check asks for more
    submission_seconds: float = 300.0  # everything about one submission: cells, every call, follow-through
    relay_seconds: float = 5.0  # slack of each hop of a call (the zygote's relay; ending a failed call server)
    start_seconds: float = 120.0  # a sandbox's start: Python, the runtime, its imports and self-check
    send_seconds: float = 30.0  # a message into the sandbox; also its slack to report a run of the notebook
    end_seconds: float = 60.0  # the end of a submission: its processes killed, its files and kernel objects gone
    memory_bytes: int = 4 * GIB  # address space of each student process
    processes: int = 64  # processes and threads of the student's uid (as root) or of its cgroup
    cores: float = 1.0  # CPU time per second of one sandbox (its cgroup's quota), whatever its processes do
    file_bytes: int = 64 * MIB  # largest file a student process may write
    open_files: int = 256  # file descriptors of a student process
    notebook_bytes: int = 20 * MIB  # largest notebook file that is graded
    reply_bytes: int = 16 * MIB  # largest value a call may send back
    replays: int = 6  # runs of the notebook when cells crash or hang it (each run skips the cells that did)
    restarts: int = 2  # sandbox restarts within one submission (the notebook replayed each time)
    asks_per_call: int = 100_000  # follow-through questions one call may ask the grader (its deadline holds too)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def grader_wait(self, seconds: float) -> float:
        """How long the grader waits for a call of ``seconds``: the call, the zygote's relay, and the end of a call
        server that failed."""
        return seconds + 2 * self.relay_seconds

    @property
    def cgroup_memory(self) -> int:
        """A worker's memory cgroup: one student process at its limit, plus the zygote and forks' private pages."""
        return self.memory_bytes + 2 * GIB

    @property
    def cgroup_pids(self) -> int:
        """A worker's pids cgroup: the student's processes plus the zygote's own threads."""
        return 4 * self.processes + 64

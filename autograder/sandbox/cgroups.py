"""A memory, PID and CPU cgroup per worker, on cgroup v1 or v2, so that a submission can neither take the machine
down nor slow the other submissions into their deadlines.

- v1 (this project's machine): one folder under ``/sys/fs/cgroup/memory``, one under ``/sys/fs/cgroup/pids`` and,
  where the cpu controller is mounted, one under ``/sys/fs/cgroup/cpu``; limits in ``memory.limit_in_bytes``,
  ``pids.max`` and ``cpu.cfs_quota_us`` (with ``cpu.shares`` equal for every worker); OOM kills counted in
  ``memory.oom_control``.
- v2 (current Debian, Ubuntu, Kubernetes nodes, CI runners): one folder below the grader's own cgroup, or below a
  folder delegated to the grader (``DLGRADE_CGROUP``); ``memory``, ``pids`` and (where offered) ``cpu`` enabled in
  the parent's ``cgroup.subtree_control`` (the grader's processes move into a leaf first, as v2 allows controllers
  only where no process lives); limits in ``memory.max``, ``memory.swap.max``, ``pids.max`` and ``cpu.max`` (with
  ``cpu.weight`` equal for every worker); OOM kills in ``memory.events``; ``cgroup.kill`` empties a group at once.

Every path is relative to a root given to :func:`find` (a temporary folder laid out like cgroupfs, in the tests).
Groups are named ``dlgrade-<grader pid>-<worker>-<n>``; groups of graders that died are removed on the next start.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "dlgrade-"
SUPERVISOR = "dlgrade-supervisor"


@dataclass
class Group:
    """One worker's cgroup: its folders (one per v1 controller, one on v2)."""

    folders: tuple[Path, ...]
    version: int
    _counter: int | None = field(default=None, repr=False, compare=False)  # the open OOM counter (-1: none)

    def join(self, pid: int | None = None) -> None:
        """Move ``pid`` (default: this process) into the group."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(pid or os.getpid()))

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this group for lack of memory. The counter's file stays open and
        is read again from its start: the grader asks before every graded call, and an open costs ten times a read."""
        if self._counter is None:
            self._counter = self._open_counter()
        try:
            text = os.pread(self._counter, 4096, 0).decode() if self._counter >= 0 else ""
        except (OSError, UnicodeDecodeError):
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def _open_counter(self) -> int:
        """The OOM counter's file, opened from the first folder that has one (v1: the memory controller's); -1 if
        none has."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for folder in self.folders:
            try:
                return os.open(folder / name, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
        return -1

    def destroy(self) -> None:
        """Kill every process in the group and remove it."""
        if self._counter is not None and self._counter >= 0:
            os.close(self._counter)
        self._counter = None
        for folder in self.folders:
            _empty(folder)
            try:
                folder.rmdir()
            except OSError:
                pass


PERIOD_US = 100_000  # the CPU quota's period: a quota of ``cores`` x this per period


@dataclass
class Hierarchy:
    """Where worker groups are made, and how."""

    version: int
    parents: tuple[Path, ...]  # v1: the memory, pids (and cpu) roots; v2: the one parent folder
    cpu: bool = False  # whether groups get a CPU quota (v1: a cpu root among the parents; v2: cpu enabled)

    @property
    def description(self) -> str:
        return f"cgroup v{self.version} ({', '.join(str(p) for p in self.parents)})"

    def create(self, name: str, memory_bytes: int, pids: int, cores: float = 1.0) -> Group:
        """A new group with these limits (``cores``: CPU time per second, where the hierarchy has a CPU
        controller); OSError if the kernel refuses."""
        folders = tuple(parent / name for parent in self.parents)
        group = Group(folders, self.version)
        quota = str(max(1000, int(cores * PERIOD_US)))
        try:
            for folder in folders:
                folder.mkdir()
            if self.version == 2:
                (folders[0] / "memory.max").write_text(str(memory_bytes))
                _write_if_present(folders[0] / "memory.swap.max", "0")
                (folders[0] / "pids.max").write_text(str(pids))
                if self.cpu:
                    (folders[0] / "cpu.max").write_text(f"{quota} {PERIOD_US}")
                    _write_if_present(folders[0] / "cpu.weight", "100")
            else:
                memory, pid_folder, *cpu = folders
                (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
                _write_if_present(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
                (pid_folder / "pids.max").write_text(str(pids))
                for folder in cpu:
                    (folder / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                    (folder / "cpu.cfs_quota_us").write_text(quota)
                    _write_if_present(folder / "cpu.shares", "1024")
        except OSError:
            group.destroy()
            raise
        return group

    def remove_stale(self) -> None:
        """Remove the groups of graders that are no longer running."""
        for parent in self.parents:
            for folder in parent.glob(f"{PREFIX}[0-9]*-*"):
                owner = folder.name[len(PREFIX):].split("-")[0]
                if owner.isdigit() and not _alive(int(owner)):
                    Group((folder,), self.version).destroy()


def find(root: Path = Path("/sys/fs/cgroup"), delegated: Path | None = None,
         self_cgroup: Path = Path("/proc/self/cgroup")) -> tuple[Hierarchy | None, str]:
    """The hierarchy to make worker groups in, or None and why not."""
    if delegated is not None:
        return _v2_parent(delegated, move_processes=False)
    memory, pids, cpu = root / "memory", root / "pids", root / "cpu"
    if (memory / "memory.limit_in_bytes").exists() and (pids / "cgroup.procs").exists():
        problem = _probe_writable(memory) or _probe_writable(pids)
        if problem is not None:
            return None, f"cgroup v1: {problem}"
        if (cpu / "cpu.cfs_quota_us").exists() and _probe_writable(cpu) is None:
            return Hierarchy(1, (memory, pids, cpu), cpu=True), ""
        return Hierarchy(1, (memory, pids)), ""
    mount = root if (root / "cgroup.controllers").exists() else root / "unified"
    if not (mount / "cgroup.controllers").exists():
        return None, "no cgroup v1 memory/pids controllers and no cgroup v2 mount"
    own = _own_v2_path(self_cgroup)
    if own is None:
        return None, f"cgroup v2: this process's cgroup is not listed in {self_cgroup}"
    return _v2_parent(mount / own.lstrip("/"), move_processes=True)


def _v2_parent(parent: Path, move_processes: bool) -> tuple[Hierarchy | None, str]:
    try:
        available = (parent / "cgroup.controllers").read_text().split()
    except OSError as err:
        return None, f"cgroup v2: cannot read {parent / 'cgroup.controllers'} ({err.strerror})"
    missing = [c for c in ("memory", "pids") if c not in available]
    if missing:
        return None, f"cgroup v2: the {' and '.join(missing)} controller(s) are not available in {parent}"
    try:
        cpu = _enable_controllers(parent, move_processes, "cpu" in available)
    except OSError as err:
        return None, (f"cgroup v2: cannot enable memory and pids below {parent} ({err.strerror}); give the grader a "
                      "delegated cgroup with DLGRADE_CGROUP")
    problem = _probe_writable(parent)
    if problem:
        return None, f"cgroup v2: {problem}"
    return Hierarchy(2, (parent,), cpu=cpu), ""


def _enable_controllers(parent: Path, move_processes: bool, cpu: bool) -> bool:
    """Enable memory and pids (and cpu, when ``cpu`` and the kernel allows it: without it only the CPU quota is
    lost) for the workers' groups; returns whether cpu is enabled."""
    control = parent / "cgroup.subtree_control"
    wanted = ["memory", "pids", "cpu"] if cpu else ["memory", "pids"]
    if all(c in _enabled(control) for c in wanted):
        return cpu
    for attempt in range(2):
        for controllers in ([wanted, wanted[:2]] if cpu else [wanted]):
            try:
                control.write_text(" ".join(f"+{c}" for c in controllers))
                return "cpu" in _enabled(control)
            except OSError:
                continue
        if attempt or not move_processes:
            raise OSError(16, "the kernel refused to enable the memory and pids controllers")
        _move_into_leaf(parent)
    return False


def _enabled(control: Path) -> list[str]:
    try:
        return [c.lstrip("+") for c in control.read_text().split()]
    except OSError:
        return []


def _move_into_leaf(parent: Path) -> None:
    """v2's "no internal processes" rule: controllers are enabled for the children of a cgroup without processes, so
    the grader (and whatever shares its cgroup) moves into a leaf first."""
    leaf = parent / SUPERVISOR
    leaf.mkdir(exist_ok=True)
    for pid in (parent / "cgroup.procs").read_text().split():
        try:
            (leaf / "cgroup.procs").write_text(pid)
        except OSError:  # a kernel thread or a process that just ended
            pass


def _own_v2_path(self_cgroup: Path) -> str | None:
    try:
        for line in self_cgroup.read_text().splitlines():
            hierarchy, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            if hierarchy == "0" and controllers == "":
                return path
    except OSError:
        return None
    return None


def _probe_writable(parent: Path) -> str | None:
    probe = parent / f"{PREFIX}probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as err:
        return f"{parent} is not writable here ({err.strerror})"
    return None


def _write_if_present(path: Path, text: str) -> None:
    if path.exists():
        try:
            path.write_text(text)
        except OSError:
            pass


def _empty(folder: Path) -> None:
    kill = folder / "cgroup.kill"
    if kill.exists():
        try:
            kill.write_text("1")
        except OSError:
            pass
    for _ in range(500):  # up to 10 s: a process under memory pressure can take a while to die
        try:
            pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def usable_cores(root: Path = Path("/sys/fs/cgroup"), self_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPU cores this process may keep busy: its CPU affinity, capped by a CPU quota on its cgroup or any parent
    (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), as a container limited to ``--cpus`` has."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cpu_quota(root, self_cgroup)
    return max(1, min(cores, int(quota))) if quota is not None else cores


def _cpu_quota(root: Path, self_cgroup: Path) -> float | None:
    """The smallest CPU quota (in cores) on this process's cgroup and its parents, or None where there is none."""
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            folder, read = root, _v2_quota
        elif "cpu" in controllers.split(","):
            folder, read = root / controllers, _v1_quota
            if not folder.is_dir():
                folder = root / "cpu"
        else:
            continue
        at = folder / path.strip("/")
        for level in [at, *at.parents]:
            quota = read(level)
            if quota is not None:
                quotas.append(quota)
            if level == folder:
                break
    return min(quotas) if quotas else None


def _v2_quota(folder: Path) -> float | None:
    try:
        limit, period = (folder / "cpu.max").read_text().split()
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        limit = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if limit <= 0 or period <= 0 else limit / period

"""The trust boundary: the only module that starts processes which run student code.

A :class:`Worker` is one resident sandboxed process (``runtime/zygote.py``) with numpy and torch already
imported. Where the machine allows it, it runs under bubblewrap with no network, a private ``/tmp``, its
own PID namespace and a read-only, allow-listed filesystem view that holds neither ``solutions/`` nor the
grader's own code, nor the course folder; student code runs as an unprivileged user (when the grader is
root), under rlimits, inside a memory and PID cgroup (when one can be made). Only framed plain data
(``runtime/codec.py``) crosses back.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .runtime.codec import CodecError, FdReader, decode, encode, write_fd

RUNTIME_DIR = Path(__file__).parent / "runtime"
PRELOAD = ("numpy", "torch", "torch.nn", "torch.utils.data", "sklearn.datasets", "matplotlib.pyplot")
GIB = 2**30


@dataclass(frozen=True)
class Limits:
    """Per-submission budgets. Every number a student can hit is here, and only here."""

    cell_seconds: float = 30.0  # one top-level notebook cell
    notebook_seconds: float = 150.0  # all cells together
    call_seconds: float = 10.0  # one graded call, unless a check asks for more
    memory_bytes: int = 4 * GIB  # address space of each student process
    processes: int = 64  # processes and threads of the student user
    file_bytes: int = 64 * 2**20  # largest file a student process may write

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Protection:
    """One isolation guarantee and whether this machine provides it."""

    name: str
    active: bool
    how: str


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the student's code)."""


@dataclass
class Reply:
    """What a call into the student's process gave back: a value, or an error dict for feedback."""

    ok: bool
    value: Any = None
    error: dict | None = None


@functools.lru_cache(maxsize=1)
def _bwrap_works() -> str | None:
    """Path of a working bubblewrap, or None (missing, disabled, or no namespaces allowed here)."""
    if os.environ.get("DLGRADE_NO_BWRAP"):
        return None
    path = shutil.which("bwrap")
    if not path:
        return None
    probe = [path, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return path if ok else None


def _cgroup_root(controller: str) -> Path | None:
    if os.environ.get("DLGRADE_NO_CGROUP") or os.geteuid() != 0:
        return None
    root = Path("/sys/fs/cgroup") / controller
    probe = root / f"dlgrade-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return None
    return root


def has_gpu() -> bool:
    """Whether NVIDIA device files exist (then the sandbox passes them through and cannot cap address space)."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


def protections() -> list[Protection]:
    """The isolation table printed by ``dlgrade doctor`` and recorded with every batch."""
    bwrap = _bwrap_works()
    root = os.geteuid() == 0
    mem, pids = _cgroup_root("memory"), _cgroup_root("pids")
    if bwrap:
        ns = "bubblewrap namespaces"
    elif shutil.which("bwrap") and not os.environ.get("DLGRADE_NO_BWRAP"):
        ns = "bubblewrap is installed but cannot create namespaces here (e.g. a container's default confinement)"
    else:
        ns = "needs bubblewrap (apt-get install bubblewrap) and namespaces"
    return [
        Protection("separate process, plain data only", True, "fork per cell and per call; JSON + .npy"),
        Protection("no network", bool(bwrap), ns),
        Protection("filesystem view without solutions/tests", bool(bwrap), ns),
        Protection("private /tmp and PID namespace", bool(bwrap), ns),
        Protection("unprivileged user", root, "setuid to a per-worker uid" if root else "grader is not root"),
        Protection("limits: time, CPU, memory, files, processes", True,
                   "deadlines + rlimits" + ("; memory by cgroup only (GPU)" if has_gpu() else "")),
        Protection("memory and PID cgroup", bool(mem and pids), "cgroup v1" if mem and pids else "not writable here"),
    ]


def protection_table(rows: Sequence[Protection] | None = None) -> str:
    """The protections as an aligned text table."""
    rows = protections() if rows is None else rows
    width = max(len(p.name) for p in rows)
    table = "\n".join(f"  {'on ' if p.active else 'OFF'}  {p.name.ljust(width)}  ({p.how})" for p in rows)
    active = {p.name: p.active for p in rows}
    if not active.get("filesystem view without solutions/tests", True) and not active.get("unprivileged user", True):
        table += ("\n  WARNING: student code runs as this user: a submission could copy the reference solutions "
                  "and change other students' results. Grade where bubblewrap works, or as root (README, \"What the "
                  "grader promises\").")
    return table


class Worker:
    """One warm sandboxed process that runs submissions one after another."""

    def __init__(self, index: int = 0, limits: Limits | None = None, preload: Sequence[str] = PRELOAD,
                 hide: Sequence[Path] = ()) -> None:
        self.index = index
        self.limits = limits or Limits()
        self.preload = tuple(preload)
        self.hide = [Path(p).resolve() for p in hide]
        self.proc: subprocess.Popen | None = None
        self._scratch = Path(tempfile.mkdtemp(prefix="dlgrade-worker-"))
        self._cgroups: list[Path] = []
        self.preloaded: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the resident process and wait until its libraries are imported."""
        bwrap = _bwrap_works()
        uid = int(os.environ.get("DLGRADE_UID_BASE", "61000")) + self.index
        runtime_parent = self._scratch / "lib"
        shutil.copytree(RUNTIME_DIR, runtime_parent / "dlgrade_runtime", ignore=shutil.ignore_patterns("__pycache__"))
        workdir = "/tmp/work" if bwrap else str(self._scratch / "work")
        if not bwrap and os.geteuid() == 0:
            os.chmod(self._scratch, 0o755)
        cfg = {"workdir": workdir, "uid": uid, "gid": uid, "preload": list(self.preload), "private_tmp": bool(bwrap),
               "gpu": has_gpu()}
        inner_lib = "/opt/dlgrade" if bwrap else str(runtime_parent)
        argv = [sys.executable, "-s", "-m", "dlgrade_runtime.zygote", json.dumps(cfg)]
        if bwrap:
            argv = [bwrap, *self._bwrap_args(runtime_parent), *argv]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": inner_lib, "HOME": "/tmp", "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": "/tmp/.matplotlib" if bwrap else str(self._scratch),
        }
        self._cgroups = self._make_cgroups()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None if os.environ.get("DLGRADE_DEBUG") else subprocess.DEVNULL,
            env=env, cwd="/", preexec_fn=self._enter_cgroups, start_new_session=True,
        )
        self._reader = FdReader(self.proc.stdout.fileno())
        try:
            hello, _ = self._reader.recv(120)
        except (TimeoutError, EOFError) as err:
            self.close()
            raise SandboxError("the sandboxed worker did not start (run `dlgrade doctor`)") from err
        if hello.get("broken"):
            self.close()
            raise SandboxError(f"student code cannot run on this machine: {hello['broken']}. Nothing was graded; "
                               "fix the environment (in a container: is its / readable by all?) and run again.")
        self.preloaded = hello.get("preloaded", [])

    def close(self) -> None:
        """Stop the worker and everything under it."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                stream.close()
            self.proc = None
        for group in self._cgroups:
            _kill_cgroup(group)
        self._cgroups = []
        shutil.rmtree(self._scratch, ignore_errors=True)

    def restart(self) -> None:
        """Replace a worker whose process died or stopped answering."""
        scratch_cfg = (self.index, self.limits, self.preload, self.hide)
        self.close()
        self.__init__(*scratch_cfg)  # type: ignore[misc]
        self.start()

    # -- talking to it ------------------------------------------------------------------------------
    def _ask(self, header: dict, body: bytes, timeout: float) -> tuple[dict, bytes]:
        if self.proc is None:
            raise SandboxError("worker not started")
        try:
            write_fd(self.proc.stdin.fileno(), header, body, timeout=30)
            return self._reader.recv(timeout)
        except (TimeoutError, EOFError, OSError) as err:
            self.restart()
            raise SandboxError("the sandboxed worker stopped answering and was restarted") from err

    def run_notebook(self, cells: list[dict], limits: Limits | None = None) -> dict:
        """Run a submission's cells; returns ``{"cells": [...], "alive": bool, "reason": str|None}``."""
        limits = limits or self.limits
        header = {"op": "start", "cells": cells, "limits": limits.as_dict()}
        reply, _ = self._ask(header, b"", limits.notebook_seconds + 30)
        return reply

    def call(self, probe: str, args: dict, seconds: float | None = None, key: str | None = None) -> Reply:
        """Run ``probe`` on the student's namespace in the fork serving ``key`` (default: the probe's name).

        Never raises for student errors: those come back as ``Reply(ok=False, error=...)``."""
        seconds = float(seconds or self.limits.call_seconds)
        header = {"op": "call", "probe": probe, "seconds": seconds, "key": key or probe}
        try:
            reply, body = self._ask(header, encode(args), seconds + 40)
        except SandboxError as err:
            return Reply(False, error={"kind": "dead", "message": str(err)})
        if not reply.get("ok"):
            error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
            return Reply(False, error=_clean_error(error))
        try:
            return Reply(True, value=decode(body))
        except CodecError as err:
            return Reply(False, error={"kind": "unsendable", "message": f"it returned {err}"})

    def end_submission(self) -> None:
        """Kill whatever the submission left behind and wipe its folder."""
        self._ask({"op": "end"}, b"", 60)

    # -- isolation plumbing -------------------------------------------------------------------------
    def _bwrap_args(self, runtime_parent: Path) -> list[str]:
        # private /tmp first, so that an environment living under /tmp is bound on top of it, not hidden by it;
        # a private, world-writable /dev/shm: multiprocessing (DataLoader workers) needs it for semaphores
        args = ["--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm"]
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        for etc in ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/ssl"):
            args += ["--ro-bind-try", etc, etc]
        made: set[str] = set()
        bound: list[Path] = []
        for prefix in sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                              str(Path(sys.executable).resolve().parent.parent)}):
            path = Path(prefix).resolve()
            if any(path == b or b in path.parents for b in bound) or str(path).startswith("/usr/"):
                continue
            for parent in reversed(path.parents):
                if str(parent) != "/" and str(parent) not in made:
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            args += ["--ro-bind", str(path), str(path)]
            bound.append(path)
        for dev in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind-try", str(dev), str(dev)]
        for secret in self.hide + [Path(__file__).parent.resolve()]:
            if any(secret == b or b in secret.parents for b in [*bound, Path("/usr")]) and secret.is_dir():
                args += ["--tmpfs", str(secret)]
        args += ["--perms", "0755", "--dir", "/opt/dlgrade",
                 "--ro-bind", str(runtime_parent / "dlgrade_runtime"), "/opt/dlgrade/dlgrade_runtime"]
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                 "--die-with-parent", "--new-session", "--chdir", "/"]
        if os.geteuid() == 0:
            args += ["--cap-drop", "ALL"]
            for cap in ("SETUID", "SETGID", "CHOWN", "KILL", "DAC_OVERRIDE", "FOWNER"):
                args += ["--cap-add", f"CAP_{cap}"]
        return args

    def _make_cgroups(self) -> list[Path]:
        groups = []
        settings = {"memory": {"memory.limit_in_bytes": self.limits.memory_bytes + 2 * GIB},
                    "pids": {"pids.max": 4 * self.limits.processes + 64}}
        for controller, values in settings.items():
            root = _cgroup_root(controller)
            if root is None:
                continue
            group = root / f"dlgrade-{os.getpid()}-{self.index}-{time.monotonic_ns()}"
            try:
                group.mkdir()
                for key, value in values.items():
                    (group / key).write_text(str(value))
            except OSError:
                continue
            groups.append(group)
        return groups

    def _enter_cgroups(self) -> None:
        for group in self._cgroups:
            (group / "cgroup.procs").write_text(str(os.getpid()))


def _kill_cgroup(group: Path) -> None:
    for _ in range(50):
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    try:
        group.rmdir()
    except OSError:
        pass


def _clean_error(error: dict) -> dict:
    """Keep only the expected keys and short strings from an error a student process reported."""
    frames = error.get("frames") if isinstance(error.get("frames"), list) else []
    clean_frames = []
    for frame in frames[:6]:
        if isinstance(frame, list) and len(frame) == 4:
            clean_frames.append([str(frame[0])[:40], int(frame[1]) if isinstance(frame[1], int) else 0,
                                 str(frame[2])[:80], str(frame[3])[:200]])
    return {
        "kind": str(error.get("kind", "exception"))[:20],
        "type": str(error.get("type", ""))[:80],
        "message": str(error.get("message", ""))[:600],
        "frames": clean_frames,
    }

"""The sandbox's resident process: imports the heavy libraries once, then runs one submission at a time.

It is started by ``autograder.sandbox`` (inside bubblewrap where available) and speaks framed messages on
stdin/stdout. For each submission it forks a student process that drops privileges and limits itself,
relays calls with hard deadlines, and afterwards kills every process the submission left behind and wipes
its working folder. It never holds reference solutions or expected values.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import shutil
import signal
import sys
import time

from .codec import FdReader, write_fd

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
DEADLINE_MARGIN = 3.0
MAX_REPLAYS = 6


def _prctl(option: int, value: int) -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class Zygote:
    """Serves the grader: ``start`` a submission, ``call`` into it, ``end`` it."""

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.workdir = cfg["workdir"]
        self.inbox = FdReader(os.dup(0))
        self.out = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        self.student: tuple[int, int, FdReader] | None = None  # pid, fd to it, reader from it
        self.exits: dict[int, int] = {}  # wait statuses of children reaped by the SIGCHLD handler
        self.tmp_at_start: frozenset[str] = frozenset()  # entries of a private /tmp before any student ran
        signal.signal(signal.SIGCHLD, self._on_child)

    def _on_child(self, signum: int, frame: object) -> None:
        """Reap at once: orphans of a fork loop are re-parented here and count against the process limit."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.student is not None and pid == self.student[0]:
                self.exits[pid] = status

    # -- lifecycle ----------------------------------------------------------------------------------
    def serve(self) -> None:
        preloaded = self._preload()
        broken = self._self_check()
        write_fd(self.out, {"op": "ready", "preloaded": preloaded, "pid": os.getpid(), "euid": os.geteuid(),
                            "broken": broken})
        if broken:
            return
        if self.cfg.get("private_tmp"):
            self.tmp_at_start = frozenset(os.listdir("/tmp"))
        while True:
            try:
                header, body = self.inbox.recv(None)
            except EOFError:
                self._sweep()
                return
            op = header.get("op")
            if op == "start":
                reply = self._start(header)
            elif op == "call":
                reply, body = self._call(header, body)
                write_fd(self.out, reply, body)
                continue
            elif op == "end":
                self._sweep()
                reply = {"op": "ended"}
            else:
                reply = {"op": "error", "message": f"unknown op {op!r}"}
            write_fd(self.out, reply)

    def _preload(self) -> list[str]:
        done = []
        for name in self.cfg.get("preload", []):
            try:
                importlib.import_module(name)
                done.append(name)
            except Exception:  # noqa: BLE001 - a missing optional library only costs speed
                continue
        from . import probes, student  # noqa: F401 - imported once here, not in every fork

        if "matplotlib" in sys.modules:
            import matplotlib

            matplotlib.use("Agg")
        if "torch" in sys.modules:
            _warm_torch()
        return done

    # -- one submission -----------------------------------------------------------------------------
    def _start(self, header: dict) -> dict:
        """Run the cells; a cell that hangs or kills the process is skipped and the notebook replayed."""
        limits = header["limits"]
        deadline = time.monotonic() + float(limits["notebook_seconds"])
        skipped: dict[int, dict] = {}
        for _ in range(MAX_REPLAYS):
            cells = [c for c in header["cells"] if c["index"] not in skipped]
            reports, bad, error = self._run_cells(cells, limits, deadline)
            if bad is None or bad < 0:
                break
            skipped[bad] = error
            if time.monotonic() >= deadline:
                bad, error = -1, {"message": "the notebook ran out of time"}
                break
        else:
            bad, error = -1, {"message": "too many cells crashed the notebook"}
        if bad is not None:
            self._sweep()
        failed = [{"op": "cell", "index": i, "status": "failed", "error": e} for i, e in skipped.items()]
        cells = sorted(reports + failed, key=lambda r: r["index"])
        return {"op": "started", "cells": cells, "alive": bad is None,
                "reason": None if bad is None else error.get("message")}

    def _run_cells(self, cells: list[dict], limits: dict, deadline: float) -> tuple[list[dict], int | None, dict]:
        """Start the student process on ``cells``; (reports, index of a fatal cell or None, its error)."""
        self._sweep()
        self._fresh_workdir()
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(to_w)
                os.close(from_r)
                self._become_student(cells, limits, to_r, from_w)
            finally:
                os._exit(70)
        os.close(to_r)
        os.close(from_w)
        self.student = (pid, to_w, FdReader(from_r))
        reports: list[dict] = []
        current = None
        cell_deadline = deadline
        while True:
            timeout = max(0.0, min(deadline, cell_deadline) - time.monotonic())
            try:
                msg, _ = self.student[2].recv(timeout)
            except TimeoutError:
                if current is None:
                    return reports, -1, {"kind": "timeout", "message": "the notebook ran out of time"}
                seconds = limits["cell_seconds"] if cell_deadline <= deadline else limits["notebook_seconds"]
                return reports, current, {"kind": "timeout", "message": f"it was stopped after {seconds:g} s"}
            except EOFError:
                from .student import describe_status

                status = self._wait(pid, 2.0)
                error = describe_status(status) if status is not None else {"kind": "crashed",
                                                                             "message": "the process ended"}
                return reports, current if current is not None else -1, error
            op = msg.get("op")
            if op == "cell_start":
                current = msg.get("index")
                cell_deadline = time.monotonic() + float(limits["cell_seconds"])
            elif op == "cell":
                reports.append(msg)
                current, cell_deadline = None, deadline
            elif op == "cells_done":
                return reports, None, {}

    def _fresh_workdir(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.workdir, mode=0o700)
        if os.geteuid() == 0 and self.cfg.get("uid") is not None:
            os.chown(self.workdir, self.cfg["uid"], self.cfg["gid"])

    def _drop_privileges(self) -> bool:
        """Become the student's uid (when the zygote may; returns whether it did) and enter the working folder."""
        uid = self.cfg.get("uid")
        dropped = os.geteuid() == 0 and uid is not None
        if dropped:
            os.setgroups([])
            os.setgid(self.cfg["gid"])
            os.setuid(uid)
        os.chdir(self.workdir)
        return dropped

    def _self_check(self) -> str | None:
        """What stops a student process from working here, or None. A machine where the student's uid cannot enter
        and write its working folder must stop the grader, not cost every student their points. (Libraries are
        imported before the fork, so the student's uid need not read them.)"""
        try:
            self._fresh_workdir()
        except OSError as err:
            return f"cannot make the working folder {self.workdir}: {err}"
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            problem = ""
            try:
                os.close(read_end)
                self._drop_privileges()  # enters the working folder
                with open("check", "w") as f:
                    f.write("ok")
            except Exception as err:  # noqa: BLE001 - reported to the grader
                problem = f"a student process (uid {os.getuid()}) failed: {type(err).__name__}: {err}"
            finally:
                os.write(write_end, problem.encode()[:2000])
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as reader:  # the SIGCHLD handler reaps the child
            problem = reader.read().decode(errors="replace")
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problem or None

    def _become_student(self, cells: list[dict], limits: dict, from_zygote: int, to_zygote: int) -> None:
        os.setsid()
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote's reaper would steal our children's statuses
        for fd in (self.out, self.inbox.fd):
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        if self._drop_privileges():
            resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
        # CUDA reserves far more virtual address space than it uses: on a GPU machine memory is bounded by the
        # worker's cgroup (where one can be made), not by RLIMIT_AS
        if not self.cfg.get("gpu"):
            resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
        for res, value in (
            (resource.RLIMIT_FSIZE, limits["file_bytes"]),
            (resource.RLIMIT_NOFILE, 256),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_CPU, int(limits["notebook_seconds"]) + 1),
        ):
            resource.setrlimit(res, (value, value))
        os.environ.clear()
        os.environ.update(
            HOME=self.workdir, TMPDIR=self.workdir, USER="student", LOGNAME="student",  # no passwd entry for our uid
            PATH="/usr/local/bin:/usr/bin:/bin", MPLBACKEND="Agg",
            MPLCONFIGDIR=os.path.join(self.workdir, ".matplotlib"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0",
        )
        import tempfile

        tempfile.tempdir = None  # found again from TMPDIR: the zygote's warm-up cached /tmp, not writable for us
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        sys.argv = ["notebook"]
        sys.path[:] = [p for p in sys.path if p and p != os.getcwd()]
        from .student import run_submission

        run_submission(cells, from_zygote, to_zygote)

    def _call(self, header: dict, body: bytes) -> tuple[dict, bytes]:
        if self.student is None:
            return {"ok": False, "error": {"kind": "dead", "message": "the notebook's process is not running"}}, b""
        seconds = float(header.get("seconds", 10))
        try:
            write_fd(self.student[1], header, body, timeout=DEADLINE_MARGIN)
            return self.student[2].recv(seconds + 2 * DEADLINE_MARGIN + 5)
        except (TimeoutError, EOFError, OSError):
            self._sweep()
            return {"ok": False, "error": {"kind": "dead", "message": "the notebook's process stopped answering"}}, b""

    def _wait(self, pid: int, seconds: float) -> int | None:
        """Wait status of child ``pid`` if it ends within ``seconds``."""
        end = time.monotonic() + seconds
        while pid not in self.exits and time.monotonic() < end:
            self._on_child(signal.SIGCHLD, None)
            time.sleep(0.005)
        return self.exits.pop(pid, None)

    # -- cleanup ------------------------------------------------------------------------------------
    def _sweep(self) -> None:
        """Kill every process this zygote ever started, orphans included, and reap them."""
        if self.student is not None:
            for fd in (self.student[1], self.student[2].fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.student = None
        me = os.getpid()
        for _ in range(200):
            victims = _descendants(me)
            if not victims:
                break
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            _reap(0.002)
        _reap(0)
        shutil.rmtree(self.workdir, ignore_errors=True)
        # nothing a student leaves reaches the next one: under bubblewrap /tmp and /dev/shm are this worker's own and
        # go back to how they were at start; otherwise they are shared, and what the student's uid made goes
        if self.cfg.get("private_tmp"):
            _clear("/dev/shm")
            _clear("/tmp", keep=self.tmp_at_start)
        elif os.geteuid() == 0 and self.cfg.get("uid") is not None:
            for top in ("/tmp", "/var/tmp", "/dev/shm"):
                _clear(top, owner=self.cfg["uid"])


def _clear(folder: str, owner: int | None = None, keep: frozenset[str] = frozenset()) -> None:
    """Delete the entries of ``folder`` not named in ``keep``: all of them, or those that belong to uid ``owner``."""
    try:
        entries = [e for e in os.scandir(folder) if e.name not in keep]
    except OSError:
        return
    for entry in entries:
        try:
            if owner is not None and entry.stat(follow_symlinks=False).st_uid != owner:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _warm_torch() -> None:
    """Pay torch's lazy imports once here, not in every forked call (Adam's first step imports torch._dynamo)."""
    import io

    import torch

    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(2, 1))
    for opt in (torch.optim.Adam(model.parameters()), torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)):
        opt.zero_grad()
        out = model(torch.ones(3, 2)).reshape(-1)
        torch.nn.functional.binary_cross_entropy_with_logits(out, torch.ones(3)).backward()
        opt.step()
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, buf)
    buf.seek(0)
    torch.load(buf, weights_only=True)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(4)), batch_size=2, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    list(loader)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] == b"Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _reap(wait: float) -> None:
    end = time.monotonic() + wait
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= end:
                return
            time.sleep(0.0005)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    Zygote(cfg).serve()


if __name__ == "__main__":
    main()

"""The sandbox's resident process: imports the heavy libraries once, then runs one submission at a time.

It is started by ``autograder.sandbox`` (inside bubblewrap where available) and speaks :mod:`protocol` frames on
stdin/stdout. For each submission it forks a student process (``confine`` makes it one), supervises its cells
with their deadlines (a cell that hangs or kills the process is skipped and the notebook replayed), relays
calls (straight to each graded function's call server, whose pipes it makes) and follow-through questions with
hard deadlines, and afterwards removes everything the submission left
(``cleanup``). Every frame from the student side is validated: a malformed or forged one ends that submission
with a reason, never this process. It never holds reference solutions or expected values.

Its per-submission path neither polls nor repeats work, so that its cost does not depend on the machine's state
(a machine whose page faults are slow, say): the heap it built before the first fork is frozen (``gc.freeze``:
a collection in a fork does not touch, and so copy, every page of it), a submission starts without a second sweep
when nothing ran since the last one, ended processes are waited for on pidfds, and kernel objects are cleared in a
child of the student's uid only when the kernel shows something to clear. The ``Ready``, ``Started`` and ``Ended``
headers carry a ``timing`` field: seconds, page faults and count of each step (``dlgrade doctor --profile``).
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import resource
import select
import shutil
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field

from . import cleanup, confine, seccomp, student
from .protocol import (
    Call,
    CellDone,
    CellsDone,
    CellStart,
    End,
    Ended,
    ErrorKind,
    Failed,
    FdReader,
    Message,
    Preload,
    ProtocolError,
    Ready,
    Reply,
    Retire,
    Serve,
    Start,
    Started,
    StudentError,
    forged,
    parse,
    send,
)
from .relay import forward, pipes, relay

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
# the standard library student code commonly imports: imported here once, so that forks start with it (and, where
# student processes cannot read the Python installation, as without bubblewrap under a private home, they can
# still use it)
STDLIB = ("abc", "base64", "bisect", "collections", "contextlib", "copy", "csv", "ctypes", "dataclasses", "datetime",
          "decimal", "enum", "fractions", "functools", "glob", "gzip", "hashlib", "heapq", "inspect", "io",
          "itertools", "json", "logging", "math", "mmap", "multiprocessing", "numbers", "operator", "pathlib",
          "pickle", "platform", "queue", "random", "re", "secrets", "shutil", "signal", "socket", "statistics",
          "string", "struct", "subprocess", "tempfile", "textwrap", "threading", "time", "traceback", "typing",
          "uuid", "warnings", "weakref", "zipfile")
GRADER_BODY_BYTES = 256 * 2**20  # what the (trusted) grader may send: a notebook's cells, a call's arguments


def _now() -> tuple[float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_minflt + usage.ru_majflt


class Steps:
    """Where this process spends a request's time: per step, seconds, page faults (this process's, plus those of
    the children a step waited for) and how many times it ran. Sent to the grader with the reply (``timing``)."""

    def __init__(self) -> None:
        self.rows: dict[str, list] = {}
        self._at = _now()

    def restart(self) -> None:
        """Start timing the next step from now."""
        self._at = _now()

    def lap(self, name: str, faults: int = 0) -> None:
        """Charge the time and page faults since the last lap (or restart) to step ``name``."""
        now = _now()
        row = self.rows.setdefault(name, [0.0, 0, 0])
        row[0] += now[0] - self._at[0]
        row[1] += now[1] - self._at[1] + faults
        row[2] += 1
        self._at = now

    def add(self, name: str, seconds: float, faults: int = 0) -> None:
        row = self.rows.setdefault(name, [0.0, 0, 0])
        row[0] += seconds
        row[1] += faults
        row[2] += 1

    def wire(self) -> dict:
        return {name: [round(row[0], 6), row[1], row[2]] for name, row in self.rows.items()}


@dataclass(frozen=True)
class _Timed:
    """A message whose header also carries ``timing`` (the records' parsers ignore fields they do not know)."""

    message: Message
    timing: dict

    def to_wire(self) -> dict:
        return {**self.message.to_wire(), "timing": self.timing}


def _student_faults(pid: int) -> int:
    """Page faults of running process ``pid`` so far (minor and major, from /proc), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[7]) + int(fields[9])  # minflt, majflt (fields 10 and 12 of stat)
    except (OSError, IndexError, ValueError):
        return 0


def _prctl(option: int, value: int) -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@dataclass
class StudentProcess:
    """The running student process, the pipes to it, the socket that passes it each call server's pipe ends, and
    the call servers' pipes: key -> the request end (to write) and a reader of the reply end."""

    pid: int
    to: int
    replies: FdReader
    descriptors: socket.socket
    servers: dict[str, tuple[int, FdReader]] = field(default_factory=dict)

    def close_server(self, key: str) -> None:
        to, replies = self.servers.pop(key)
        os.close(to)
        os.close(replies.fd)

    def close(self) -> None:
        for key in list(self.servers):
            self.close_server(key)
        self.descriptors.close()
        for fd in (self.to, self.replies.fd):
            try:
                os.close(fd)
            except OSError:
                pass


@dataclass
class Replay:
    """How one run of the cells ended: ``serving`` calls, or a ``fatal_cell`` to skip, or ``aborted``."""

    reports: list[CellDone] = field(default_factory=list)
    serving: bool = False
    fatal_cell: int | None = None
    error: StudentError | None = None  # what stopped the fatal cell, or the whole run


class Zygote:
    """Serves the grader: ``Start`` a submission, ``Call`` into it, ``End`` it."""

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.workdir = cfg["workdir"]
        self.uid = cfg.get("uid") if os.geteuid() == 0 else None  # a uid of the student's own
        self.inbox = FdReader(os.dup(0), GRADER_BODY_BYTES)
        self.out = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        self.limits: dict = {}
        self.student: StudentProcess | None = None
        self.exits: dict[int, int] = {}  # wait statuses of children reaped by the SIGCHLD handler
        self.steps = Steps()
        self.swept = False  # nothing ran as the student since the last complete sweep
        self.filtered = False  # every student process runs under the syscall filter (the self-check installed it)
        self.keys_after_clear: str | None = None  # the uid's key counts right after its keyrings were last cleared
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
            if self.student is not None and pid == self.student.pid:
                self.exits[pid] = status

    # -- lifecycle ----------------------------------------------------------------------------------
    def serve(self) -> None:
        ready = self._get_ready()
        if ready is None:
            return
        send(self.out, _Timed(ready, self.steps.wire()))
        if ready.broken:
            return
        while True:
            try:
                header, body = self.inbox.recv(None)
            except EOFError:
                self._sweep()
                return
            try:
                request = parse(header, Start, Call, End)
                if isinstance(request, Start):
                    self.limits = request.limits
                    self.steps = Steps()
                    started = self._start(json.loads(body))
                    send(self.out, _Timed(started, self.steps.wire()), started.body())
                    self.steps = Steps()  # the calls' relays and the end of this submission
                elif isinstance(request, Call):
                    start = time.perf_counter()
                    reply, data = self._call(request, body)
                    send(self.out, reply, data)
                    self.steps.add("calls: in the sandbox (relays, call servers, the student's code)",
                                   time.perf_counter() - start)
                else:
                    self.steps.restart()
                    self._sweep("end: ")
                    send(self.out, _Timed(Ended(), self.steps.wire()))
                    self.steps = Steps()
            except Exception as err:  # noqa: BLE001 - a bug here must cost one request, not the worker
                try:
                    self._sweep()
                except RuntimeError:
                    pass  # the grader restarts this worker on Failed
                send(self.out, Failed(f"{type(err).__name__}: {err}"))

    def _get_ready(self) -> Ready | None:
        """Everything before the first submission; None when the grader went away meanwhile."""
        steps = self.steps
        for name in STDLIB:
            importlib.import_module(name)
        if self.cfg.get("seccomp"):
            seccomp.compiled()  # built here once, not in every student process
        steps.lap("start: standard library")
        broken, no_filter = self._self_check()
        self.filtered = bool(self.cfg.get("seccomp")) and no_filter is None and broken is None
        steps.lap("start: self-check (a student process's first steps)")
        if not self.cfg.get("private_tmp"):
            cleanup.world_writable_folders()  # walked once, before any student runs
            steps.lap("start: find world-writable folders")
            if self.uid is not None:  # no bubblewrap view: reach a Python installation the student's uid cannot
                self.cfg["python_view"] = confine.python_view()
        self._clean_host("start: ")
        try:  # what the assignment needs: the grader may have started this process before it knew
            header, _ = self.inbox.recv(None)
            steps.restart()
            preloaded = self._preload(parse(header, Preload))
        except (EOFError, ProtocolError):
            return None
        steps.lap("start: preload")
        # Everything built so far lives as long as this process: frozen, the collector leaves it alone, here and in
        # every fork (a collection in a fork would otherwise write to, and so copy, each page of this heap). No
        # collection first: it would touch every page itself, for the little garbage an import leaves.
        gc.freeze()
        steps.lap("start: freeze the heap")
        self.swept = True
        return Ready(tuple(preloaded), os.getpid(), os.geteuid(), broken, no_filter)

    def _preload(self, request: Preload) -> list[str]:
        done = []
        for name in request.modules:
            try:
                importlib.import_module(name, __package__)  # ".probes_a2_mlp": this runtime's own
                done.append(name)
            except Exception:  # noqa: BLE001 - a missing optional library only costs speed
                continue
        from . import probes  # noqa: F401 - imported here, not in every fork

        if "matplotlib" in sys.modules:
            import matplotlib

            matplotlib.use("Agg")
        if "torch" in sys.modules:
            from . import lazy_dynamo

            lazy_dynamo.install()
            if request.warm_torch:
                _warm_torch()
        return done

    def _self_check(self) -> tuple[str | None, str | None]:
        """What stops a student process from working here (then the grader must stop, not give every student
        zero), and why the syscall filter cannot be installed (then its protection is reported off)."""
        try:
            self._fresh_workdir()
        except OSError as err:
            return f"cannot make the working folder {self.workdir}: {err}", None
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            problem, no_filter = "", ""
            try:
                os.close(read_end)
                confine.drop_privileges(self.uid, self.cfg.get("gid"), self.workdir)
                with open("check", "w") as f:
                    f.write("ok")
                if self.cfg.get("seccomp"):
                    try:
                        seccomp.install()
                    except OSError as err:
                        no_filter = str(err)
            except Exception as err:  # noqa: BLE001 - reported to the grader
                problem = f"a student process (uid {os.getuid()}) failed: {type(err).__name__}: {err}"
            finally:
                os.write(write_end, json.dumps([problem, no_filter]).encode()[:4000])
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as reader:  # the SIGCHLD handler reaps the child
            problem, no_filter = json.loads(reader.read() or b'["no answer", ""]')
        shutil.rmtree(self.workdir, ignore_errors=True)
        if not self.cfg.get("seccomp"):
            no_filter = "switched off (DLGRADE_NO_SECCOMP)"
        return problem or None, no_filter or None

    # -- one submission -----------------------------------------------------------------------------
    def _start(self, cells: list[dict]) -> Started:
        """Run the cells; a cell that hangs or kills the process is skipped and the notebook replayed."""
        deadline = time.monotonic() + float(self.limits["notebook_seconds"])
        skipped: dict[int, StudentError] = {}
        replay = Replay()
        for _ in range(int(self.limits["replays"])):
            replay = self._run_cells([c for c in cells if c["index"] not in skipped], deadline)
            if replay.fatal_cell is None:
                break
            skipped[replay.fatal_cell] = replay.error
            if time.monotonic() >= deadline:
                replay = Replay(replay.reports, error=StudentError(ErrorKind.TIMEOUT,
                                                                    message="the notebook ran out of time"))
                break
        else:
            replay = Replay(replay.reports, error=StudentError(ErrorKind.CRASHED,
                                                               message="too many cells crashed the notebook"))
        if not replay.serving:
            self._sweep("replay: sweep (the notebook stopped): ")
        reports = replay.reports + [CellDone(i, e) for i, e in skipped.items()]
        return Started(tuple(sorted(reports, key=lambda r: r.index)), replay.serving,
                       None if replay.serving else replay.error.message)

    def _run_cells(self, cells: list[dict], deadline: float) -> Replay:
        """Start a student process on ``cells`` and follow it until it serves calls or stops."""
        steps = self.steps
        if not self.swept:  # a replay, or a submission after one that was not ended: its leftovers go first
            steps.restart()
            self._sweep("replay: sweep first: ")
        steps.restart()
        self._fresh_workdir()
        steps.lap("replay: fresh working folder")
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.swept = False
        pid = os.fork()
        if pid == 0:
            try:
                os.close(to_w)
                os.close(from_r)
                ours.close()
                descriptors = theirs.detach()
                confine.become_student(self.cfg, self.limits, keep=(to_r, from_w, descriptors))
                student.run_submission(cells, to_r, from_w, descriptors, self.limits)
            except BaseException:  # noqa: BLE001 - the student process ends here whatever happened (exit 70)
                if self.cfg.get("debug"):
                    traceback.print_exc()
            finally:
                os._exit(70)
        steps.lap("replay: fork the student process")
        os.close(to_r)
        os.close(from_w)
        theirs.close()
        self.student = StudentProcess(pid, to_w, FdReader(from_r, int(self.limits["reply_bytes"])), ours)
        select.select([from_r], [], [], max(0.0, deadline - time.monotonic()))  # its first word (or its end)
        steps.lap("replay: student process start and confinement")
        replay = self._follow(cells, deadline)
        steps.lap("replay: cells (page faults: the student process's)", _student_faults(pid))
        return replay

    def _follow(self, cells: list[dict], deadline: float) -> Replay:
        """Read the student's cell messages in the order the cells were sent, holding each cell's deadline."""
        replay = Replay()
        order = [c["index"] for c in cells]
        position, current = 0, None
        cell_deadline = deadline
        while True:
            timeout = max(0.0, min(deadline, cell_deadline) - time.monotonic())
            try:
                header, _ = self.student.replies.recv(timeout)
                message = parse(header, CellStart, CellDone, CellsDone)
            except TimeoutError:
                if current is None:
                    replay.error = StudentError(ErrorKind.TIMEOUT, message="the notebook ran out of time")
                    return replay
                seconds = self.limits["cell_seconds"] if cell_deadline <= deadline else self.limits["notebook_seconds"]
                replay.fatal_cell = current
                replay.error = StudentError(ErrorKind.TIMEOUT, message=f"it was stopped after {seconds:g} s")
                return replay
            except EOFError:
                status = self._wait(self.student.pid, 2.0)
                replay.error = student.describe_status(status) if status is not None else StudentError(
                    ErrorKind.CRASHED, message="the process ended")
                if current is not None:
                    replay.fatal_cell = current
                return replay
            except ProtocolError as err:
                replay.error = forged(err)
                return replay
            if isinstance(message, CellStart) and current is None and position < len(order) \
                    and message.index == order[position]:
                current = message.index
                cell_deadline = time.monotonic() + float(self.limits["cell_seconds"])
            elif isinstance(message, CellDone) and message.index == current:
                replay.reports.append(message)
                position, current, cell_deadline = position + 1, None, deadline
            elif isinstance(message, CellsDone) and current is None and position == len(order):
                replay.serving = True
                return replay
            else:
                replay.error = forged(ProtocolError(f"a {message.op.value!r} message out of order"))
                return replay

    def _call(self, call: Call, body: bytes) -> tuple[Reply, bytes]:
        """Relay ``call`` to its call server and its questions to the grader, within the call's deadline; a server
        that fails is retired (the student process kills it and says how it ended), the next call gets a new one."""
        if self.student is None:
            return Reply(StudentError(ErrorKind.DEAD, message="the notebook's process is not running")), b""
        slack = float(self.limits["relay_seconds"])
        try:  # its questions go up to the grader, their answers back down to the server
            to, replies = self.student.servers.get(call.key) or self._serve(call.key)
            return relay(call, body, *pipes(to, replies, slack), forward(self.out, self.inbox),
                         time.monotonic() + call.seconds)
        except ProtocolError as err:
            error = forged(err)
        except TimeoutError:
            error = StudentError(ErrorKind.TIMEOUT, message=f"it was stopped after {call.seconds:g} s")
        except (EOFError, OSError):
            error = None  # it ended: the student process knows how
        try:
            ended = self._retire(call.key, error is None, slack)
        except (TimeoutError, EOFError, OSError, ProtocolError):
            self._sweep("calls: sweep after a failed relay: ")
            return Reply(StudentError(ErrorKind.DEAD, message="the notebook's process stopped answering")), b""
        return Reply(error or ended or StudentError(ErrorKind.CRASHED, message="the process ended")), b""

    def _serve(self, key: str) -> tuple[int, FdReader]:
        """A new call server for ``key``: its pipes made here, their far ends passed to the student process (on
        failure the caller retires ``key``, which closes ours)."""
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        server = self.student.servers[key] = (requests_w, FdReader(replies_r, int(self.limits["reply_bytes"])))
        try:
            socket.send_fds(self.student.descriptors, [b"s"], [requests_r, replies_w])
            send(self.student.to, Serve(key), timeout=float(self.limits["relay_seconds"]))
        finally:
            os.close(requests_r)
            os.close(replies_w)
        return server

    def _retire(self, key: str, ended: bool, seconds: float) -> StudentError | None:
        """Have the student process kill ``key``'s call server; how it ended (when it had ``ended`` of itself)."""
        if key in self.student.servers:
            self.student.close_server(key)
        send(self.student.to, Retire(key, ended), timeout=seconds)
        header, _ = self.student.replies.recv(seconds)
        return parse(header, Reply).error

    def _fresh_workdir(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.workdir, mode=0o700)
        if self.uid is not None:
            os.chown(self.workdir, self.uid, self.cfg.get("gid", self.uid))

    def _wait(self, pid: int, seconds: float) -> int | None:
        """Wait status of child ``pid`` if it ends within ``seconds`` (waited for on a pidfd: no polling)."""
        if pid not in self.exits:
            cleanup.wait_exit(pid, seconds)
            self._on_child(signal.SIGCHLD, None)
        return self.exits.pop(pid, None)

    # -- cleanup ------------------------------------------------------------------------------------
    def _sweep(self, where: str = "sweep: ") -> None:
        """Remove every trace of the current submission: processes, files, kernel objects. ``where`` names its
        steps in the timing record."""
        steps = self.steps
        if self.student is not None:
            self.student.close()
            self.student = None
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # reaped here, with their page-fault counts
        try:
            left, killed, faults = cleanup.kill_descendants(os.getpid())
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        steps.lap(f"{where}kill and reap the submission's processes")
        if killed:
            steps.add(f"{where}page faults of the killed processes, in their lives", 0.0, faults)
        shutil.rmtree(self.workdir, ignore_errors=True)
        steps.lap(f"{where}remove the working folder")
        self._clean_host(where)
        if left:  # the grader then replaces this worker (and its cgroup) before the next student runs
            raise RuntimeError(f"{left} process(es) of the last submission would not die")
        self.swept = True

    def _clean_host(self, where: str) -> None:
        steps = self.steps
        steps.restart()
        if self.cfg.get("private_tmp"):  # this worker's own /tmp and /dev/shm: emptied
            cleanup.clear("/tmp")
            cleanup.clear("/dev/shm")
            steps.lap(f"{where}empty /tmp and /dev/shm")
        elif self.uid is not None:
            cleanup.sweep_shared_folders(self.uid)
            steps.lap(f"{where}world-writable folders")
        if self.uid is not None:
            # With the filter on, no student process can make a key or an IPC object: a child of the uid is forked
            # to clear them only when the kernel shows one anyway (a second layer); with it off, always
            if self.filtered and cleanup.kernel_objects_unchanged(self.uid, self.keys_after_clear):
                steps.lap(f"{where}kernel objects: none to clear (no child)")
                return
            faults = cleanup.clear_kernel_objects(self.uid, self.cfg.get("gid", self.uid))
            self.keys_after_clear = cleanup.key_quota(self.uid)
            steps.lap(f"{where}kernel objects: cleared by a child of the uid", faults)


def _warm_torch() -> None:
    """Pay torch's lazy imports once here, not in every forked call (the first optimizer step, a checkpoint...)."""
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


def main() -> None:
    cfg = json.loads(sys.argv[1])
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    Zygote(cfg).serve()


if __name__ == "__main__":
    main()

"""What runs as the student: the notebook's cells in order, then graded calls in forks of the final state.

Cells run in this process, one after another, announcing each start to the zygote, which holds the deadlines:
a cell that crashes, exits or hangs gets the whole process killed and the notebook is replayed without it, so a
bad exploratory cell costs only itself. Graded calls run in call servers: forks of the final state, one per graded
name (or per probe, for the grader's own routines; its calls share the server until one fails), so a segfault or
an endless loop costs only the call that caused it and the next call gets a fresh fork. This process forks each
server when the zygote asks (:class:`Serve`, with the server's two pipe ends) and kills it when the zygote says it
failed (:class:`Retire`); calls go from the zygote to the server directly, not through this process. Inside a call,
a probe may :func:`ask` the grader for a reference value (follow-through credit) on the same pipes.

This code shares its process with student code and is not trusted: the zygote enforces every limit and the
grader validates every message and value.
"""

from __future__ import annotations

import builtins
import linecache
import os
import resource
import signal
import socket
import traceback
from typing import Any

from . import cleanup, seccomp
from .asking import ask, asking  # noqa: F401 - ask: where probes written before asking.py import it from
from .codec import CodecError, DecodeLimits, decode, encode
from .protocol import (
    Call,
    CellDone,
    CellsDone,
    CellStart,
    ErrorKind,
    FdReader,
    ProtocolError,
    Reply,
    Retire,
    Serve,
    StudentError,
    TraceFrame,
    parse,
    send,
)

MAX_MESSAGE_CHARS = 500


def run_submission(cells: list[dict], from_zygote: int, to_zygote: int, descriptors: int, limits: dict) -> None:
    """Execute ``cells`` (dicts with ``index`` and ``source``), then fork call servers until the channel closes;
    ``descriptors`` is the socket on which each server's pipe ends arrive."""
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    for cell in cells:
        send(to_zygote, CellStart(cell["index"]))
        send(to_zygote, CellDone(cell["index"], _exec_cell(cell, ns)))
    send(to_zygote, CellsDone())
    _Servers(ns, from_zygote, to_zygote, descriptors, int(limits["reply_bytes"])).serve()


def _exec_cell(cell: dict, ns: dict) -> StudentError | None:
    filename = f"<cell {cell['index']}>"
    source = cell["source"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        exec(compile(source, filename, "exec"), ns)
    except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are student errors too
        return describe_exception(err)
    return None


class _Servers:
    """This process's call servers: forked on the pipe ends the zygote passes, killed when it says so."""

    def __init__(self, ns: dict, from_zygote: int, to_zygote: int, descriptors: int, max_body: int) -> None:
        self.ns, self.from_zygote, self.to_zygote, self.max_body = ns, from_zygote, to_zygote, max_body
        self.descriptors = socket.socket(fileno=descriptors)
        self.pids: dict[str, int] = {}  # key -> its call server

    def serve(self) -> None:
        inbox = FdReader(self.from_zygote, self.max_body)
        while True:
            try:
                request = parse(inbox.recv(None)[0], Serve, Retire)
            except (EOFError, ProtocolError):
                os._exit(0)
            if isinstance(request, Retire):
                send(self.to_zygote, Reply(self._retire(request)))
            else:
                self._fork(request.key)

    def _fork(self, key: str) -> None:
        _, fds, _, _ = socket.recv_fds(self.descriptors, 1, 2)
        if len(fds) != 2:  # nothing usable came: the zygote's call times out, then retires this key
            for fd in fds:
                os.close(fd)
            return
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                for fd in (self.from_zygote, self.to_zygote, self.descriptors.detach()):
                    os.close(fd)
                _single_threaded()
                _serve_calls(self.ns, FdReader(fds[0], self.max_body), fds[1], self.max_body)
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        self.pids[key] = pid

    def _retire(self, request: Retire) -> StudentError | None:
        """Kill ``request.key``'s server; how it ended, when it had ended of itself."""
        pid = self.pids.pop(request.key, None)
        if pid is None:
            return None
        error = _reap(pid) if request.ended else None
        _kill(pid)
        return error


def _serve_calls(ns: dict, requests: FdReader, out: int, max_body: int) -> None:
    """A call server's loop: one probe per request, its value (or error) as the reply."""
    limits = DecodeLimits(max_bytes=max_body)
    while True:
        header, body = requests.recv(None)
        call = parse(header, Call)
        _cpu_limit(call.seconds)
        with asking(requests, out, limits):
            reply, data = _answer(ns, call, body, limits)
        send(out, reply, data)


def _single_threaded() -> None:
    """After fork only this thread exists: keep torch off a thread pool the parent may have started."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            torch.set_num_threads(1)
        except RuntimeError:
            pass


def _answer(ns: dict, call: Call, body: bytes, limits: DecodeLimits) -> tuple[Reply, bytes]:
    from .probes import run_probe

    try:
        value = run_probe(call.probe, ns, decode(body, limits))
    except BaseException as err:  # noqa: BLE001
        return Reply(describe_exception(err)), b""
    try:
        return Reply(), encode(value, limits)
    except CodecError as err:
        return Reply(StudentError(ErrorKind.UNSENDABLE, message=f"it returned {err}")), b""
    except MemoryError:
        return Reply(StudentError(ErrorKind.MEMORY, message="its result did not fit in memory")), b""


def _reap(pid: int, wait: float = 1.0) -> StudentError | None:
    """How ``pid`` ended, if it ends within ``wait`` seconds (waited for on a pidfd: no polling)."""
    cleanup.wait_exit(pid, wait)
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return describe_status(status) if done else None


def describe_status(status: int) -> StudentError:
    """A student-readable account of a wait status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        names = {
            signal.SIGSEGV: "a segmentation fault (a crash in native code, e.g. via ctypes)",
            signal.SIGKILL: "being killed (most often for using too much memory)",
            signal.SIGXCPU: "using more CPU time than allowed",
            signal.SIGXFSZ: "writing a file larger than allowed",
            signal.SIGABRT: "an abort in native code",
            signal.SIGBUS: "a bus error (a crash in native code)",
            signal.SIGSYS: "a forbidden system call",
        }
        return StudentError(ErrorKind.CRASHED,
                            message=f"the process ended with {names.get(sig, signal.Signals(sig).name)}")
    code = os.WEXITSTATUS(status)
    return StudentError(ErrorKind.CRASHED, message=f"the process exited (exit code {code}, e.g. os._exit or sys.exit)")


def _kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _cpu_limit(seconds: float) -> None:
    """Allow ``seconds`` more CPU time from now (soft limit: SIGXCPU)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def describe_exception(err: BaseException) -> StudentError:
    """Type, short message and the student's own traceback lines (cells only) of ``err``."""
    kind = ErrorKind.EXCEPTION
    message = str(err)
    denied = seccomp.denied_call(getattr(err, "errno", None)) if isinstance(err, OSError) else None
    if isinstance(err, MemoryError):
        kind = ErrorKind.MEMORY
    elif getattr(err, "dlgrade_missing", False):
        kind = ErrorKind.MISSING
    elif denied:
        kind, message = ErrorKind.FORBIDDEN, denied
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + " ..."
    frames = []
    try:
        for frame in traceback.extract_tb(err.__traceback__, limit=200):
            if frame.filename.startswith("<cell "):
                frames.append(TraceFrame(frame.filename, frame.lineno or 0, frame.name, (frame.line or "")[:200]))
    except RecursionError:
        pass
    if len(frames) > 6:
        frames = frames[:3] + frames[-3:]
    return StudentError(kind, type(err).__name__, message, tuple(frames))

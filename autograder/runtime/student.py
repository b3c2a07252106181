"""What runs as the student: the notebook's cells in order, then graded calls in forks of the final state.

Cells run in this process, one after another, announcing each start to the zygote, which holds the deadlines:
a cell that crashes, exits or hangs gets the whole process killed and the notebook is replayed without it, so a
bad exploratory cell costs only itself. Graded calls run in call servers: forks of the final state, one per graded
name (or per probe, for the grader's own routines; its calls share the server until one fails), so a segfault or
an endless loop costs only the call that caused it and the next call gets a fresh fork. Inside a call, a probe may
:func:`ask` the grader for a reference value (follow-through credit); the question travels the same pipes back.

This code shares its process with student code and is not trusted: the zygote enforces every limit and the
grader validates every message and value.
"""

from __future__ import annotations

import builtins
import linecache
import os
import resource
import signal
import time
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
    StudentError,
    TraceFrame,
    forged,
    parse,
    send,
)
from .relay import forward, pipes, relay

MAX_MESSAGE_CHARS = 500


def run_submission(cells: list[dict], from_zygote: int, to_zygote: int, limits: dict) -> None:
    """Execute ``cells`` (dicts with ``index`` and ``source``), then relay calls until the channel closes."""
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    for cell in cells:
        send(to_zygote, CellStart(cell["index"]))
        send(to_zygote, CellDone(cell["index"], _exec_cell(cell, ns)))
    send(to_zygote, CellsDone())
    relay = _CallRelay(ns, to_zygote, int(limits["reply_bytes"]), float(limits["relay_seconds"]))
    relay.serve(FdReader(from_zygote, int(limits["reply_bytes"])))


def _exec_cell(cell: dict, ns: dict) -> StudentError | None:
    filename = f"<cell {cell['index']}>"
    source = cell["source"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        exec(compile(source, filename, "exec"), ns)
    except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are student errors too
        return describe_exception(err)
    return None


class _CallRelay:
    """Relays each call to the call server for its key, and the server's questions to the grader."""

    def __init__(self, ns: dict, to_zygote: int, max_body: int, relay_seconds: float) -> None:
        self.ns, self.to_zygote, self.max_body, self.relay_seconds = ns, to_zygote, max_body, relay_seconds
        self.servers: dict[str, tuple[int, int, FdReader]] = {}  # key -> pid, request fd, reply reader

    def serve(self, inbox: FdReader) -> None:
        while True:
            try:
                header, body = inbox.recv(None)
                call = parse(header, Call)
            except (EOFError, ProtocolError):
                os._exit(0)
            reply, data = self._relay(call, body, inbox)
            send(self.to_zygote, reply, data)

    def _relay(self, call: Call, body: bytes, inbox: FdReader) -> tuple[Reply, bytes]:
        if call.key not in self.servers:
            self.servers[call.key] = self._fork_server()
        pid, request_fd, replies = self.servers[call.key]
        try:  # its questions go up to the grader, their answers back down to the server
            return relay(call, body, *pipes(request_fd, replies, self.relay_seconds), forward(self.to_zygote, inbox),
                         time.monotonic() + call.seconds)
        except (TimeoutError, EOFError, OSError, ProtocolError) as err:
            del self.servers[call.key]
            os.close(request_fd)
            os.close(replies.fd)
            error = _reap(pid) if isinstance(err, EOFError) else forged(err) if isinstance(err, ProtocolError) else None
            _kill(pid)
            if error is None:
                error = StudentError(ErrorKind.TIMEOUT, message=f"it was stopped after {call.seconds:g} s")
            return Reply(error), b""

    def _fork_server(self) -> tuple[int, int, FdReader]:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                os.close(req_w)
                os.close(rep_r)
                for _, fd, reader in self.servers.values():
                    os.close(fd)
                    os.close(reader.fd)
                _single_threaded()
                _serve_calls(self.ns, FdReader(req_r, self.max_body), rep_w, self.max_body)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(rep_w)
        return pid, req_w, FdReader(rep_r, self.max_body)


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

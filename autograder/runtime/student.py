"""What runs as the student: the notebook's cells in order, then graded calls in forks of the final state.

Cells run in this process, one after another, announcing each start to the resident process
(``zygote``), which holds the deadlines: a cell that crashes, exits or hangs gets the whole process killed
and the notebook is replayed without it, so a bad exploratory cell costs only itself. Graded calls run in a
fork of the final state that serves calls one after another (one fork per kind of probe); a call that
crashes or hangs takes only that fork with it, and the next call gets a fresh one, so a segfault or an endless
loop costs only the call that caused it. This code shares the process with student code and is not
trusted: the zygote enforces the hard limits.
"""

from __future__ import annotations

import builtins
import linecache
import os
import resource
import signal
import traceback
from typing import Any

from .codec import CodecError, FdReader, decode, encode, write_fd

MAX_MESSAGE_CHARS = 500


def run_submission(cells: list[dict], from_zygote: int, to_zygote: int) -> None:
    """Execute ``cells`` (dicts with ``index`` and ``source``), then answer calls until the channel closes."""
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    for cell in cells:
        write_fd(to_zygote, {"op": "cell_start", "index": cell["index"]})
        write_fd(to_zygote, {"op": "cell", "index": cell["index"], **_exec_cell(cell, ns)})
    write_fd(to_zygote, {"op": "cells_done"})
    _CallServer(ns, to_zygote).serve(FdReader(from_zygote))


def _exec_cell(cell: dict, ns: dict) -> dict:
    filename = f"<cell {cell['index']}>"
    source = cell["source"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        exec(compile(source, filename, "exec"), ns)
    except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are student errors too
        return {"status": "failed", "error": describe_exception(err)}
    return {"status": "ok"}


class _CallServer:
    """Relays each call to a forked server for its key (one graded name), restarting it after a failure."""

    def __init__(self, ns: dict, to_zygote: int) -> None:
        self.ns, self.to_zygote = ns, to_zygote
        self.servers: dict[str, tuple[int, int, FdReader]] = {}  # key -> pid, request fd, reply reader

    def serve(self, reader: FdReader) -> None:
        while True:
            try:
                header, body = reader.recv(None)
            except EOFError:
                os._exit(0)
            reply, data = self._relay(header, body)
            write_fd(self.to_zygote, reply, data)

    def _relay(self, header: dict, body: bytes) -> tuple[dict, bytes]:
        key = str(header.get("key") or header.get("probe"))
        seconds = float(header.get("seconds", 10))
        if key not in self.servers:
            self.servers[key] = self._fork_server()
        pid, request_fd, replies = self.servers[key]
        try:
            write_fd(request_fd, header, body, timeout=5)
            return replies.recv(seconds)
        except (TimeoutError, EOFError, OSError) as err:
            del self.servers[key]
            os.close(request_fd)
            os.close(replies.fd)
            error = _reap(pid) if not isinstance(err, TimeoutError) else None
            _kill(pid)
            if error is None:
                error = {"kind": "timeout", "message": f"it was stopped after {seconds:g} s"}
            return {"ok": False, "error": error}, b""

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
                requests = FdReader(req_r)
                while True:
                    header, body = requests.recv(None)
                    _cpu_limit(float(header.get("seconds", 10)))
                    reply, data = _answer(self.ns, header, body)
                    write_fd(rep_w, reply, data)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(rep_w)
        return pid, req_w, FdReader(rep_r)


def _single_threaded() -> None:
    """After fork only this thread exists: keep torch off a thread pool the parent may have started."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            torch.set_num_threads(1)
        except RuntimeError:
            pass


def _answer(ns: dict, header: dict, body: bytes) -> tuple[dict, bytes]:
    from .probes import run_probe

    try:
        value = run_probe(header["probe"], ns, decode(body))
    except BaseException as err:  # noqa: BLE001
        return {"ok": False, "error": describe_exception(err)}, b""
    try:
        return {"ok": True}, encode(value)
    except CodecError as err:
        return {"ok": False, "error": {"kind": "unsendable", "message": f"it returned {err}"}}, b""
    except MemoryError:
        return {"ok": False, "error": {"kind": "memory", "message": "its result did not fit in memory"}}, b""


def _reap(pid: int, wait: float = 1.0) -> dict | None:
    """How ``pid`` ended, if it ends within ``wait`` seconds."""
    import time

    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return describe_status(status)
        time.sleep(0.005)
    return None


def describe_status(status: int) -> dict:
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
        }
        return {"kind": "crashed", "message": f"the process ended with {names.get(sig, signal.Signals(sig).name)}"}
    code = os.WEXITSTATUS(status)
    return {"kind": "crashed", "message": f"the process exited (exit code {code}, e.g. os._exit or sys.exit)"}


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


def describe_exception(err: BaseException) -> dict:
    """Type, short message and the student's own traceback lines (cells only) of ``err``."""
    kind = "exception"
    if isinstance(err, MemoryError):
        kind = "memory"
    elif getattr(err, "dlgrade_missing", False):
        kind = "missing"
    message = str(err)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + " ..."
    frames = []
    try:
        for frame in traceback.extract_tb(err.__traceback__, limit=200):
            if frame.filename.startswith("<cell "):
                frames.append([frame.filename, frame.lineno, frame.name, (frame.line or "")[:200]])
    except RecursionError:
        pass
    if len(frames) > 6:
        frames = frames[:3] + frames[-3:]
    return {"kind": kind, "type": type(err).__name__, "message": message, "frames": frames}

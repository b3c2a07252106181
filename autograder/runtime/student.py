"""What runs as the student: each notebook cell in a fork of the state before it, then one fork per call.

A cell that crashes, exits or hangs is killed and skipped; the state from the cells before it carries on,
so a bad exploratory cell costs only itself. Every graded call runs in a fresh fork of the final state, so
a segfault or an endless loop costs only that call. This code shares the process with student code and
is therefore not trusted: the resident process (``zygote``) enforces the hard deadlines.
"""

from __future__ import annotations

import builtins
import linecache
import os
import resource
import signal
import sys
import time
import traceback
from typing import Any

from .codec import CodecError, FdReader, decode, encode, write_fd

MAX_MESSAGE_CHARS = 500


def run_submission(cells: list[dict], from_zygote: int, to_zygote: int, limits: dict) -> None:
    """Execute ``cells`` (dicts with ``index`` and ``source``), then answer calls until the channel closes."""
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    for cell in cells:
        _run_cell_in_fork(cell, ns, to_zygote, float(limits["cell_seconds"]))
    write_fd(to_zygote, {"op": "cells_done"})
    _serve_calls(ns, FdReader(from_zygote), to_zygote)


def _run_cell_in_fork(cell: dict, ns: dict, to_zygote: int, seconds: float) -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the cell runs here; on success this process carries the state on
        os.close(r)
        _cpu_limit(seconds)
        report = {"op": "cell", "index": cell["index"], **_exec_cell(cell, ns)}
        write_fd(to_zygote, report)
        try:
            os.write(w, b"k")
            os.close(w)
        except OSError:
            pass
        return
    os.close(w)
    outcome = _wait_for_child(pid, r, seconds, lambda: os.read(r, 1) == b"k")
    os.close(r)
    if outcome is None:
        os._exit(0)  # the child holds the state now
    _kill(pid)
    write_fd(to_zygote, {"op": "cell", "index": cell["index"], "status": "failed", "error": outcome})


def _exec_cell(cell: dict, ns: dict) -> dict:
    filename = f"<cell {cell['index']}>"
    source = cell["source"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        code = compile(source, filename, "exec")
        exec(code, ns)
    except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are student errors too
        return {"status": "failed", "error": describe_exception(err)}
    return {"status": "ok"}


def _serve_calls(ns: dict, reader: FdReader, to_zygote: int) -> None:
    while True:
        try:
            header, body = reader.recv(None)
        except EOFError:
            os._exit(0)
        seconds = float(header.get("seconds", 10))
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.setpgid(0, 0)
            _cpu_limit(seconds)
            reply, data = _answer(ns, header, body)
            try:
                write_fd(w, reply, data)
            finally:
                os._exit(0)
        os.close(w)
        answer = _Answer(FdReader(r))
        outcome = _wait_for_child(pid, r, seconds, answer.read)
        os.close(r)
        _kill(pid)
        reply, data = answer.message if outcome is None else ({"ok": False, "error": outcome}, b"")
        write_fd(to_zygote, reply, data)


class _Answer:
    """Collects one framed reply from a call's process."""

    def __init__(self, reader: FdReader) -> None:
        self.reader = reader
        self.message: tuple[dict, bytes] = ({}, b"")

    def read(self) -> bool:
        self.message = self.reader.recv(5.0)
        return True


def _answer(ns: dict, header: dict, body: bytes) -> tuple[dict, bytes]:
    from .probes import run_probe

    try:
        args = decode(body)
        value = run_probe(header["probe"], ns, args)
    except BaseException as err:  # noqa: BLE001
        return {"ok": False, "error": describe_exception(err)}, b""
    try:
        return {"ok": True}, encode(value)
    except CodecError as err:
        return {"ok": False, "error": {"kind": "unsendable", "message": f"it returned {err}"}}, b""
    except MemoryError:
        return {"ok": False, "error": {"kind": "memory", "message": "its result did not fit in memory"}}, b""


def _wait_for_child(pid: int, fd: int, seconds: float, on_readable) -> dict | None:
    """None when ``on_readable`` accepted what the child sent in time, else why the child failed."""
    import select

    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"kind": "timeout", "message": f"it was stopped after {seconds:g} s"}
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            try:
                if on_readable():
                    return None
            except (EOFError, OSError, TimeoutError):
                pass
            return _exit_report(pid, deadline)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return _describe_status(status)


def _exit_report(pid: int, deadline: float) -> dict:
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return _describe_status(status)
        time.sleep(0.01)
    return {"kind": "timeout", "message": "it stopped answering"}


def _describe_status(status: int) -> dict:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        names = {
            signal.SIGSEGV: "a segmentation fault (a crash in native code, e.g. via ctypes)",
            signal.SIGKILL: "being killed (most often for using too much memory)",
            signal.SIGXCPU: "using more CPU time than allowed",
            signal.SIGXFSZ: "writing a file larger than allowed",
            signal.SIGABRT: "an abort in native code",
        }
        return {"kind": "crashed", "message": f"the process ended with {names.get(sig, signal.Signals(sig).name)}"}
    code = os.WEXITSTATUS(status)
    return {"kind": "crashed", "message": f"the process exited (exit code {code}, e.g. os._exit or sys.exit)"}


def _kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _cpu_limit(seconds: float) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def describe_exception(err: BaseException) -> dict:
    """Type, short message and the student's own traceback lines (cells only) of ``err``."""
    kind = "memory" if isinstance(err, MemoryError) else "exception"
    if isinstance(err, SystemExit):
        kind = "exit"
    if getattr(err, "dlgrade_missing", False):
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


if __name__ == "__main__":  # pragma: no cover - this module is driven by the zygote
    sys.exit("run by the dlgrade zygote")

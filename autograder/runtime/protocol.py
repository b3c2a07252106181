"""Every message that crosses a process boundary: grader <-> zygote <-> student process <-> call server.

A message is a frame: a small JSON header (one of the records below, tagged with its :class:`Op`) and an
optional binary body (a value encoded by ``codec``). Both ends validate what they read with :func:`parse`, which
accepts only the ops the reader expects at that point and only well-typed fields; anything else is a
:class:`ProtocolError`. The zygote and the grader treat every frame that comes from the student side as hostile:
a forged or malformed one fails that submission with a reason, never the worker.

Who sends what:

- grader -> zygote: ``Preload`` (once, first), ``Start`` (body: the cells), ``Call`` (body: arguments),
  ``Answer`` (to an ``Ask``), ``End``
- zygote -> grader: ``Ready``, ``Started``, ``Reply`` / ``Ask`` (relayed from a call server), ``Ended``,
  ``Failed``
- zygote -> student process: ``Serve`` (with the two pipe ends of a new call server, passed on a socket),
  ``Retire``
- student process -> zygote: ``CellStart``, ``CellDone``, ``CellsDone``, then a ``Reply`` to each ``Retire``
- call server <-> zygote: ``Call`` / ``Answer`` in, ``Reply`` / ``Ask`` out
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import struct
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

HEADER_BYTES = 2**20  # a header is small: a record, never data
FRAME = struct.Struct("<IQ")  # header length, body length
SMALL_READ, BIG_READ = 1 << 16, 1 << 24  # what one read asks for: a message's rest, between these
MAX_FRAMES = 6  # traceback frames kept in an error
MAX_TEXT = 600  # characters kept of any string from the student side


class Op(str, Enum):
    """The kind of a message."""

    PRELOAD = "preload"
    READY = "ready"
    START = "start"
    STARTED = "started"
    CELL_START = "cell_start"
    CELL_DONE = "cell_done"
    CELLS_DONE = "cells_done"
    CALL = "call"
    ASK = "ask"
    ANSWER = "answer"
    REPLY = "reply"
    END = "end"
    ENDED = "ended"
    FAILED = "failed"
    SERVE = "serve"
    RETIRE = "retire"


class ErrorKind(str, Enum):
    """Why a cell or a call did not give a value."""

    EXCEPTION = "exception"  # the student's code raised
    MISSING = "missing"  # a name the grader needs is not defined
    TIMEOUT = "timeout"  # stopped at its deadline
    CRASHED = "crashed"  # the process died (signal, exit)
    MEMORY = "memory"  # MemoryError, or killed for memory
    UNSENDABLE = "unsendable"  # the value cannot cross as plain data
    FORBIDDEN = "forbidden"  # a system call the sandbox denies
    PROTOCOL = "protocol"  # the student side sent a malformed or forged message
    DEAD = "dead"  # the sandbox itself stopped
    BUDGET = "budget"  # the submission's whole time budget is spent


class ProtocolError(ValueError):
    """A frame that is not a valid message of the expected kinds."""


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[:limit] + " ..."


def _int(value: Any, what: str, low: int = 0, high: int = 2**31) -> int:
    if type(value) is not int or not low <= value < high:
        raise ProtocolError(f"{what} must be an integer in [{low}, {high})")
    return value


def _bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise ProtocolError(f"{what} must be true or false")
    return value


def _number(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise ProtocolError(f"{what} must be a non-negative number")
    return float(value)


@dataclass(frozen=True)
class TraceFrame:
    """One line of the student's own traceback (cells only)."""

    filename: str
    lineno: int
    name: str
    line: str


@dataclass(frozen=True)
class StudentError:
    """What went wrong in a cell or call, as the student side reported it (clipped, never trusted further)."""

    kind: ErrorKind
    type: str = ""
    message: str = ""
    frames: tuple[TraceFrame, ...] = ()

    def to_wire(self) -> dict:
        return {"kind": self.kind.value, "type": self.type, "message": self.message,
                "frames": [[f.filename, f.lineno, f.name, f.line] for f in self.frames]}

    @classmethod
    def from_wire(cls, obj: Any) -> StudentError:
        if not isinstance(obj, dict):
            raise ProtocolError("an error must be an object")
        try:
            kind = ErrorKind(obj.get("kind"))
        except ValueError:
            raise ProtocolError("unknown error kind") from None
        frames = obj.get("frames", [])
        if not isinstance(frames, list):
            raise ProtocolError("frames must be a list")
        clean = []
        for frame in frames[:MAX_FRAMES]:
            if not (isinstance(frame, list) and len(frame) == 4):
                raise ProtocolError("a frame must be [file, line, function, text]")
            clean.append(TraceFrame(_text(frame[0], 40), frame[1] if type(frame[1]) is int else 0,
                                    _text(frame[2], 80), _text(frame[3], 200)))
        return cls(kind, _text(obj.get("type"), 80), _text(obj.get("message")), tuple(clean))


def forged(err: ProtocolError) -> StudentError:
    """The error a submission gets when its process sends a frame the protocol refuses."""
    return StudentError(ErrorKind.PROTOCOL, message=f"the notebook's process sent a message the grader does not "
                        f"accept ({err}); code that writes to the grader's channels is not allowed")


# -- records ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """Base of every record: ``to_wire`` gives the JSON header, ``from_wire`` validates one."""

    op: ClassVar[Op]

    def to_wire(self) -> dict:
        return {"op": self.op.value}

    @classmethod
    def from_wire(cls, obj: dict) -> Message:
        return cls()


@dataclass(frozen=True)
class Preload(Message):
    """What the zygote imports before it reports :class:`Ready`: the assignment's modules (a name with a leading dot
    is one of the runtime's own), and whether to pay torch's lazy imports for training."""

    op: ClassVar[Op] = Op.PRELOAD
    modules: tuple[str, ...] = ()
    warm_torch: bool = False

    def to_wire(self) -> dict:
        return {"op": self.op.value, "modules": list(self.modules), "warm_torch": self.warm_torch}

    @classmethod
    def from_wire(cls, obj: dict) -> Preload:
        modules = obj.get("modules")
        if not (isinstance(modules, list) and all(isinstance(m, str) and _MODULE.match(m) for m in modules)):
            raise ProtocolError("modules must be a list of module names")
        return cls(tuple(modules), _bool(obj.get("warm_torch"), "warm_torch"))


_MODULE = re.compile(r"^\.?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class Ready(Message):
    """The zygote imported its libraries and checked that a student process can work here."""

    op: ClassVar[Op] = Op.READY
    preloaded: tuple[str, ...] = ()
    pid: int = 0
    euid: int = 0
    broken: str | None = None  # what stops student code from running here, or None
    seccomp: str | None = None  # why the syscall filter is off, or None when it is on

    def to_wire(self) -> dict:
        return {"op": self.op.value, "preloaded": list(self.preloaded), "pid": self.pid, "euid": self.euid,
                "broken": self.broken, "seccomp": self.seccomp}

    @classmethod
    def from_wire(cls, obj: dict) -> Ready:
        preloaded = obj.get("preloaded", [])
        if not (isinstance(preloaded, list) and all(isinstance(p, str) for p in preloaded)):
            raise ProtocolError("preloaded must be a list of names")
        return cls(tuple(preloaded), _int(obj.get("pid"), "pid"), _int(obj.get("euid"), "euid"),
                   _text(obj["broken"], 2000) if obj.get("broken") else None,
                   _text(obj["seccomp"], 200) if obj.get("seccomp") else None)


@dataclass(frozen=True)
class Start(Message):
    """Run a submission: the body is the JSON list of cells; ``limits`` are :class:`Limits` as a dict."""

    op: ClassVar[Op] = Op.START
    limits: dict = field(default_factory=dict)

    def to_wire(self) -> dict:
        return {"op": self.op.value, "limits": self.limits}

    @classmethod
    def from_wire(cls, obj: dict) -> Start:
        limits = obj.get("limits")
        if not isinstance(limits, dict):
            raise ProtocolError("limits must be an object")
        return cls(limits)


@dataclass(frozen=True)
class CellStart(Message):
    """The student process is about to run cell ``index``."""

    op: ClassVar[Op] = Op.CELL_START
    index: int = 0

    def to_wire(self) -> dict:
        return {"op": self.op.value, "index": self.index}

    @classmethod
    def from_wire(cls, obj: dict) -> CellStart:
        return cls(_int(obj.get("index"), "index"))


@dataclass(frozen=True)
class CellDone(Message):
    """Cell ``index`` finished: ``error`` is None when it ran without raising."""

    op: ClassVar[Op] = Op.CELL_DONE
    index: int = 0
    error: StudentError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_wire(self) -> dict:
        return {"op": self.op.value, "index": self.index, "error": self.error.to_wire() if self.error else None}

    @classmethod
    def from_wire(cls, obj: dict) -> CellDone:
        error = obj.get("error")
        return cls(_int(obj.get("index"), "index"), None if error is None else StudentError.from_wire(error))


@dataclass(frozen=True)
class CellsDone(Message):
    """Every cell ran; the process now serves calls."""

    op: ClassVar[Op] = Op.CELLS_DONE


@dataclass(frozen=True)
class Started(Message):
    """How the cells of a submission went: one report per cell that ran or was skipped (in the body, as JSON:
    a notebook may have many cells)."""

    op: ClassVar[Op] = Op.STARTED
    cells: tuple[CellDone, ...] = ()
    alive: bool = True  # the student process is up and serves calls
    reason: str | None = None  # why it is not

    FULL_ERRORS: ClassVar[int] = 200  # reports after this many failed cells keep only the error's kind

    def to_wire(self) -> dict:
        return {"op": self.op.value, "alive": self.alive, "reason": self.reason}

    def body(self) -> bytes:
        failed = 0
        reports = []
        for cell in self.cells:
            error = cell.error
            if error is not None:
                failed += 1
                if failed > self.FULL_ERRORS:
                    error = StudentError(error.kind)
            reports.append([cell.index, error.to_wire() if error else None])
        return json.dumps(reports).encode()

    @classmethod
    def from_wire(cls, obj: dict) -> Started:
        reason = obj.get("reason")
        return cls((), _bool(obj.get("alive"), "alive"), _text(reason) if reason is not None else None)

    def with_body(self, body: bytes) -> Started:
        """This record with the cell reports read from ``body``."""
        try:
            reports = json.loads(body)
        except (ValueError, RecursionError) as err:
            raise ProtocolError("cell reports that are not JSON") from err
        if not isinstance(reports, list) or not all(isinstance(r, list) and len(r) == 2 for r in reports):
            raise ProtocolError("cell reports must be [index, error] pairs")
        cells = tuple(CellDone(_int(i, "index"), None if e is None else StudentError.from_wire(e)) for i, e in reports)
        return Started(cells, self.alive, self.reason)


@dataclass(frozen=True)
class Call(Message):
    """Run ``probe`` (``module.function`` in the runtime) in the call server for ``key``; the body holds its
    keyword arguments."""

    op: ClassVar[Op] = Op.CALL
    probe: str = ""
    seconds: float = 0.0
    key: str = ""

    def to_wire(self) -> dict:
        return {"op": self.op.value, "probe": self.probe, "seconds": self.seconds, "key": self.key}

    @classmethod
    def from_wire(cls, obj: dict) -> Call:
        probe, key = obj.get("probe"), obj.get("key")
        if not (isinstance(probe, str) and isinstance(key, str) and 0 < len(probe) <= 100 and len(key) <= 100):
            raise ProtocolError("probe and key must be short strings")
        return cls(probe, _number(obj.get("seconds"), "seconds"), key)


@dataclass(frozen=True)
class Ask(Message):
    """From inside a call, ask the grader for ``probe``'s value on the reference (follow-through credit): the
    body holds the arguments; the grader answers with an :class:`Answer`."""

    op: ClassVar[Op] = Op.ASK
    probe: str = ""

    def to_wire(self) -> dict:
        return {"op": self.op.value, "probe": self.probe}

    @classmethod
    def from_wire(cls, obj: dict) -> Ask:
        probe = obj.get("probe")
        if not (isinstance(probe, str) and 0 < len(probe) <= 100):
            raise ProtocolError("probe must be a short string")
        return cls(probe)


@dataclass(frozen=True)
class _Outcome(Message):
    """A value (in the body) when ``error`` is None, else the error."""

    error: StudentError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_wire(self) -> dict:
        return {"op": self.op.value, "error": self.error.to_wire() if self.error else None}

    @classmethod
    def from_wire(cls, obj: dict) -> _Outcome:
        error = obj.get("error")
        return cls(None if error is None else StudentError.from_wire(error))


@dataclass(frozen=True)
class Answer(_Outcome):
    """The grader's answer to an :class:`Ask`."""

    op: ClassVar[Op] = Op.ANSWER


@dataclass(frozen=True)
class Reply(_Outcome):
    """The outcome of a :class:`Call`."""

    op: ClassVar[Op] = Op.REPLY


@dataclass(frozen=True)
class End(Message):
    """The submission is done: kill what it left and clean up."""

    op: ClassVar[Op] = Op.END


@dataclass(frozen=True)
class Ended(Message):
    """Everything the submission left is gone."""

    op: ClassVar[Op] = Op.ENDED


@dataclass(frozen=True)
class Failed(Message):
    """The zygote could not serve a request (a bug on the grader's side, never the student's)."""

    op: ClassVar[Op] = Op.FAILED
    message: str = ""

    def to_wire(self) -> dict:
        return {"op": self.op.value, "message": self.message}

    @classmethod
    def from_wire(cls, obj: dict) -> Failed:
        return cls(_text(obj.get("message")))


@dataclass(frozen=True)
class _Keyed(Message):
    """A request about the call server for ``key``."""

    key: str = ""

    def to_wire(self) -> dict:
        return {"op": self.op.value, "key": self.key}

    @classmethod
    def from_wire(cls, obj: dict) -> _Keyed:
        return cls(_key(obj.get("key")))


@dataclass(frozen=True)
class Serve(_Keyed):
    """Fork a call server for ``key`` on the two pipe ends that come with this message (a request end to read, a
    reply end to write, passed on the student process's descriptor socket): the zygote talks to it directly."""

    op: ClassVar[Op] = Op.SERVE


@dataclass(frozen=True)
class Retire(_Keyed):
    """The call server for ``key`` failed: kill it and :class:`Reply` how it ended (waiting a moment for its exit
    status when it had ``ended`` already, its pipe closed)."""

    op: ClassVar[Op] = Op.RETIRE
    ended: bool = False

    def to_wire(self) -> dict:
        return {**super().to_wire(), "ended": self.ended}

    @classmethod
    def from_wire(cls, obj: dict) -> Retire:
        return cls(_key(obj.get("key")), _bool(obj.get("ended"), "ended"))


def _key(value: Any) -> str:
    if not (isinstance(value, str) and len(value) <= 100):
        raise ProtocolError("key must be a short string")
    return value


RECORDS: dict[Op, type[Message]] = {cls.op: cls for cls in (
    Preload, Ready, Start, CellStart, CellDone, CellsDone, Started, Call, Ask, Answer, Reply, End, Ended, Failed,
    Serve, Retire)}


def parse(header: Any, *expected: type[Message]) -> Message:
    """The record in ``header`` if it is one of ``expected``; else :class:`ProtocolError`."""
    if not isinstance(header, dict):
        raise ProtocolError("a message must be a JSON object")
    try:
        cls = RECORDS[Op(header.get("op"))]
    except ValueError:
        raise ProtocolError("unknown message") from None
    if cls not in expected:
        raise ProtocolError(f"unexpected {cls.op.value!r} message")
    try:
        return cls.from_wire(header)
    except ProtocolError:
        raise
    except Exception as err:
        raise ProtocolError(f"malformed {cls.op.value!r} message") from err


# -- framing ----------------------------------------------------------------------------------------


class FdReader:
    """Reads frames from a raw pipe fd with a deadline (select + os.read); bodies above ``max_body`` bytes are a
    :class:`ProtocolError` before they are read."""

    def __init__(self, fd: int, max_body: int) -> None:
        self.fd = fd
        self.max_body = max_body
        self._buf = bytearray()

    def recv(self, timeout: float | None) -> tuple[dict, bytes]:
        """One frame's header and body, or ``TimeoutError`` after ``timeout`` seconds, or ``EOFError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            frame = self._parse()
            if frame is not None:
                return frame
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.fd, self._wanted())
            if not chunk:
                raise EOFError("peer closed the channel")
            self._buf += chunk

    def _wanted(self) -> int:
        """How much to read: the rest of the frame under way, at least a small chunk (``os.read`` allocates the whole
        size it is given, and a megabyte at each read was a tenth of a graded call's time)."""
        if len(self._buf) < FRAME.size:
            return SMALL_READ
        head_len, body_len = FRAME.unpack_from(self._buf, 0)
        return max(SMALL_READ, min(FRAME.size + head_len + body_len - len(self._buf), BIG_READ))

    def _parse(self) -> tuple[dict, bytes] | None:
        if len(self._buf) < FRAME.size:
            return None
        head_len, body_len = FRAME.unpack_from(self._buf, 0)
        if head_len > HEADER_BYTES or body_len > self.max_body:
            raise ProtocolError(f"a message of {(head_len + body_len) >> 20} MB (the limit is "
                                f"{self.max_body >> 20} MB)")
        end = FRAME.size + head_len + body_len
        if len(self._buf) < end:
            return None
        with memoryview(self._buf) as view:  # one copy of the body, not three
            head, body = bytes(view[FRAME.size : FRAME.size + head_len]), bytes(view[FRAME.size + head_len : end])
        del self._buf[:end]
        try:
            header = json.loads(head)
        except (ValueError, RecursionError) as err:
            raise ProtocolError("a header that is not JSON") from err
        return header, body


def send(fd: int, message: Message, body: bytes = b"", timeout: float | None = None) -> None:
    """Write one frame; ``TimeoutError`` if the reader stalls past ``timeout``."""
    head = json.dumps(message.to_wire()).encode()
    data = memoryview(FRAME.pack(len(head), len(body)) + head + body)
    deadline = None if timeout is None else time.monotonic() + timeout
    while data:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise TimeoutError
        n = os.write(fd, data[: 1 << 16] if deadline is not None else data)
        data = data[n:]

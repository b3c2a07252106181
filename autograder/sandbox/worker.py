"""The trust boundary: the only code that starts processes which run student code.

A :class:`Worker` is one resident sandboxed process (``runtime/zygote.py``) with the assignment's libraries
already imported. Where the machine allows it, it runs under bubblewrap (``bwrap.py``), in a memory and PID cgroup
(``cgroups.py``); student code runs as an unprivileged uid (when the grader is root), under rlimits and a
syscall filter. Only :mod:`protocol` frames and :mod:`codec` values cross back, both validated here.

One submission at a time: :meth:`Worker.run_notebook` starts it and its wall-clock budget
(``Limits.submission_seconds``), :meth:`Worker.call` runs graded calls within what is left of it, and
:meth:`Worker.end_submission` removes everything it left. If the sandbox itself dies meanwhile (a memory-cgroup
kill, say), the worker restarts, replays the notebook, and only the call that was running is lost.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .. import settings
from ..runtime.protocol import (
    Answer,
    Ask,
    Call,
    End,
    Ended,
    ErrorKind,
    Failed,
    FdReader,
    Preload,
    ProtocolError,
    Ready,
    Reply,
    Start,
    Started,
    StudentError,
    parse,
    send,
)
from ..runtime.relay import TooManyAsks, relay
from . import bwrap, cgroups, uids
from .doctor import cgroup_hierarchy, filter_off, has_gpu
from .errors import SandboxError
from .limits import Limits

if TYPE_CHECKING:
    from ..runtime.codec import DecodeLimits

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"


def compile_runtime(runtime: Path) -> None:
    """Give every module of the sandbox's runtime folder ``runtime`` its bytecode, so that the sandbox (which must
    not write any) does not compile them at each start: an editable install, or any run with
    PYTHONDONTWRITEBYTECODE=1, has none of its own. Compiled once per source text and Python into the grader's
    private cache (``DLGRADE_CACHE``, default ``~/.cache/dlgrade``: out of every student's view), then copied; a
    cache that cannot be written only costs that time. Call it again after adding modules to the folder."""
    import hashlib
    import py_compile

    tag = sys.implementation.cache_tag
    if tag is None:
        return
    root = settings.current().cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlgrade"
    cache = root / "sandbox-bytecode" / tag
    for source in sorted(runtime.glob("*.py")):
        try:
            data = source.read_bytes()
            compiled = cache / f"{source.stem}-{hashlib.sha256(data).hexdigest()[:24]}.pyc"
            if not compiled.is_file():
                for folder in (root, cache.parent, cache):  # the grader's own, as the reference cache (refcache)
                    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
                os.close(fd)
                try:  # named by its source's hash here, so the importer need not check it (nor the timestamps)
                    py_compile.compile(str(source), cfile=tmp, doraise=True,
                                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
                    os.replace(tmp, compiled)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            target = runtime / "__pycache__" / f"{source.stem}.{tag}.pyc"
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(compiled, target)
        except (OSError, py_compile.PyCompileError):
            continue  # that module is compiled in the sandbox, as before


AskHandler = Callable[[str, Any], Any]  # (probe, decoded arguments) -> plain value; raise to refuse


def _codec() -> ModuleType:
    """The value codec, imported with numpy on the first call: spawning a sandbox needs neither."""
    from ..runtime import codec

    return codec


Steps = dict[str, tuple[float, int, int]]  # a sandbox step's name -> seconds, page faults, times it ran


def _steps(header: dict) -> Steps:
    """The zygote's ``timing`` field of a Ready, Started or Ended header (where its time went), checked: {} if
    absent or malformed."""
    rows = header.get("timing")
    if not isinstance(rows, dict):
        return {}
    steps: Steps = {}
    for name, row in list(rows.items())[:100]:
        if (isinstance(name, str) and isinstance(row, list) and len(row) == 3 and type(row[0]) in (int, float)
                and math.isfinite(row[0]) and row[0] >= 0 and all(type(v) is int and v >= 0 for v in row[1:])):
            steps[name[:120]] = (float(row[0]), row[1], row[2])
    return steps


@dataclass
class CallResult:
    """What a call into the student's process gave back: a value, or an error for feedback."""

    ok: bool
    value: Any = None
    error: StudentError | None = None


@dataclass
class _Submission:
    cells: list[dict]
    deadline: float
    restarts: int = 0


class Worker:
    """One warm sandboxed process that runs submissions one after another."""

    def __init__(self, index: int = 0, limits: Limits | None = None, preload: Sequence[str] = ("numpy",),
                 hide: Sequence[Path] = (), warm_torch: bool = False, probes: Mapping[str, Path] | None = None) -> None:
        self.index = index
        self.limits = limits or Limits()
        self.preload = tuple(preload)
        self.warm_torch = warm_torch
        self.probes = dict(probes or {})
        self.hide = [Path(p).resolve() for p in hide]
        self.proc: subprocess.Popen | None = None
        self.ready: Ready | None = None
        self._reader: FdReader | None = None
        self._group: cgroups.Group | None = None
        self._scratch: Path | None = None
        self._submission: _Submission | None = None
        self._uid: uids.Lease | None = None
        self.steps: Steps = {}  # the sandbox's own account of its last start, or of the current submission

    # -- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the resident process and wait until its libraries are imported."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the resident process; it imports its libraries while the caller goes on (see :meth:`wait_ready`)."""
        self.spawn()
        self.load(self.preload, self.warm_torch, self.probes)

    def spawn(self) -> None:
        """Start the resident process: it starts Python and the runtime, then waits for :meth:`load` to say what
        else to import. A caller that does not know yet (the CLI, before it has read the course) spawns first."""
        self._scratch = Path(tempfile.mkdtemp(prefix="dlgrade-worker-"))
        runtime = self._scratch / "lib" / "dlgrade_runtime"
        shutil.copytree(RUNTIME_DIR, runtime)  # with its __pycache__ where the installation has one (pip compiles)
        compile_runtime(runtime)  # and where it has none (an editable install, PYTHONDONTWRITEBYTECODE=1)
        sandboxed = bwrap.path()
        if not sandboxed and os.geteuid() == 0:
            os.chmod(self._scratch, 0o755)
        if os.geteuid() == 0 and self._uid is None:  # a uid no other sandbox on this machine has meanwhile
            self._uid = uids.take(settings.current().uid_base, self.index)
        uid = self._uid.uid if self._uid is not None else settings.current().uid_base + self.index
        cfg = {"workdir": "/tmp/work" if sandboxed else str(self._scratch / "work"), "uid": uid, "gid": uid,
               "private_tmp": bool(sandboxed),
               "gpu": has_gpu(), "seccomp": filter_off() is None, "debug": settings.current().debug}
        argv = [sys.executable, "-s", "-m", "dlgrade_runtime.zygote", json.dumps(cfg)]
        if sandboxed:
            argv = [sandboxed, *bwrap.arguments(runtime, [*self.hide, Path(__file__).resolve().parents[1]]), *argv]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": bwrap.RUNTIME_MOUNT if sandboxed else str(runtime.parent), "HOME": "/tmp",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": "/tmp/.matplotlib" if sandboxed else str(self._scratch / "matplotlib"),
        }
        self._group = self._make_group()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None if settings.current().debug else subprocess.DEVNULL,
            env=env, cwd="/", preexec_fn=self._before_exec, start_new_session=True,
        )
        self._reader = FdReader(self.proc.stdout.fileno(), max(self.limits.reply_bytes, 64 * 2**20))

    def load(self, preload: Sequence[str], warm_torch: bool = False, probes: Mapping[str, Path] | None = None) -> None:
        """Tell the spawned process what to import before it reports ready (see :func:`course.sandbox_imports`);
        ``probes`` (module name -> file): an assignment's own probes, put into the sandbox's runtime first."""
        self.preload, self.warm_torch, self.probes = tuple(preload), warm_torch, dict(probes or {})
        runtime = self._scratch / "lib" / "dlgrade_runtime"
        for name, path in self.probes.items():  # the runtime's folder is bound into the sandbox: seen there at once
            shutil.copyfile(path, runtime / f"{name}.py")
        if self.probes:
            compile_runtime(runtime)
        try:
            self._send(Preload(self.preload, warm_torch))
        except OSError:
            pass  # it died already: wait_ready says so

    def wait_ready(self) -> None:
        """Wait until the launched process has imported its libraries and checked that student code can run."""
        try:
            header, _ = self._reader.recv(self.limits.start_seconds)
            self.ready = parse(header, Ready)
            self.steps = _steps(header)
        except (TimeoutError, EOFError, ProtocolError) as err:
            self.close()
            raise SandboxError("the sandboxed worker did not start (run `dlgrade doctor`)") from err
        if self.ready.broken:
            self.close()
            raise SandboxError(f"student code cannot run on this machine: {self.ready.broken}. Nothing was graded; "
                               "fix the environment (in a container: is its / readable by all?) and run again.")

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
        if self._group is not None:
            self._group.destroy()
            self._group = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        if self._uid is not None and self.proc is None:
            self._uid.release()
            self._uid = None

    @property
    def uid(self) -> int | None:
        """The uid its student code runs as (None when the grader is not root: then it is the grader's own)."""
        return self._uid.uid if self._uid is not None else None

    @property
    def cells(self) -> dict[int, str]:
        """The code cells of the submission being graded, as they run (index in the notebook -> source): what feedback
        quotes a traceback's lines from."""
        return {c["index"]: c["source"] for c in self._submission.cells} if self._submission is not None else {}

    def restart(self) -> None:
        """Replace a worker whose process died or stopped answering."""
        self.close()
        self.start()

    def _make_group(self) -> cgroups.Group | None:
        hierarchy, _ = cgroup_hierarchy()
        if hierarchy is None:
            return None
        name = f"{cgroups.PREFIX}{os.getpid()}-{self.index}-{time.monotonic_ns()}"
        try:
            return hierarchy.create(name, self.limits.cgroup_memory, self.limits.cgroup_pids, self.limits.cores)
        except OSError:
            return None

    def _before_exec(self) -> None:
        # the zygote (and bubblewrap) should never be the OOM killer's choice; student processes raise their own
        # score to the maximum, which is enough where lowering ours is not allowed (no CAP_SYS_RESOURCE)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("-1000")
        except OSError:
            pass
        if self._group is not None:
            self._group.join()

    # -- talking to it ------------------------------------------------------------------------------
    def _send(self, message: Preload | Start | Call | Answer | End, body: bytes = b"") -> None:
        if self.proc is None:
            raise SandboxError("worker not started")
        send(self.proc.stdin.fileno(), message, body, timeout=self.limits.send_seconds)

    def _recv(self, timeout: float, *expected: type) -> tuple[Any, bytes]:
        header, body = self._reader.recv(timeout)
        message = parse(header, Failed, *expected)
        if isinstance(message, Failed):
            raise SandboxError(f"the sandbox failed: {message.message}")
        if isinstance(message, Started):
            self.steps = _steps(header)
        elif isinstance(message, Ended):
            self.steps.update(_steps(header))
        return message, body

    def run_notebook(self, cells: list[dict]) -> Started:
        """Start a submission (and its time budget): run its cells in a fresh student process."""
        self._submission = _Submission(cells, time.monotonic() + self.limits.submission_seconds)
        try:
            return self._run_cells()
        except (TimeoutError, EOFError, OSError, ProtocolError, SandboxError) as err:
            self.restart()
            raise SandboxError(f"the sandbox stopped while running the notebook ({type(err).__name__})") from err

    def _run_cells(self) -> Started:
        submission = self._submission
        seconds = min(self.limits.notebook_seconds, max(0.0, submission.deadline - time.monotonic()))
        limits = self.limits.as_dict() | {"notebook_seconds": seconds}
        self._send(Start(limits), json.dumps(submission.cells).encode())
        started, body = self._recv(self.limits.grader_wait(seconds) + self.limits.send_seconds, Started)
        return started.with_body(body)

    def call(self, probe: str, args: dict, seconds: float | None = None,
             on_ask: AskHandler | None = None, fresh: bool = False) -> CallResult:
        """Run ``probe`` on the student's namespace. Calls of one graded name (``args["name"]``), or of one probe,
        share a call server in the student's process until one of them fails; a ``fresh`` call runs in a new student
        process (the notebook replayed, every process and file of the earlier ones gone), so that nothing an earlier
        call kept can reach it.

        Never raises for what the student's code does: errors come back as ``CallResult(ok=False, error=...)``.
        ``on_ask`` answers the probe's follow-through questions with the reference's values."""
        left = self._left()
        if left <= 0:
            return CallResult(False, error=StudentError(ErrorKind.BUDGET, message=(
                f"grading this notebook used up its time budget ({self.limits.submission_seconds:g} s in all)")))
        if fresh and self._submission is not None:
            try:
                if not self._run_cells().alive:
                    raise SandboxError("the notebook did not run to its end again")
            except (TimeoutError, EOFError, OSError, ProtocolError, SandboxError) as err:
                self._recover()
                return CallResult(False, error=StudentError(ErrorKind.DEAD, message=(
                    f"the notebook could not be run again for this test ({err})")))
            left = self._left()
        seconds = min(float(seconds or self.limits.call_seconds), left)
        oom_before = self._group.oom_kills() if self._group else 0
        try:
            key = f"{probe}:{args['name']}" if isinstance(args.get("name"), str) else probe
            return self._call(Call(probe, seconds, key[:100]), _codec().encode(args), on_ask)
        except (TimeoutError, EOFError, OSError, ProtocolError, SandboxError) as err:
            ran_out = self._group is not None and self._group.oom_kills() > oom_before
            self._recover()
            cause = ("the notebook used more memory than allowed" if ran_out else str(err)
                     if isinstance(err, TooManyAsks) else "it stopped answering")
            return CallResult(False, error=StudentError(ErrorKind.DEAD, message=(
                f"the sandbox was restarted while running this test ({cause}); later tests ran in a fresh one")))

    def _call(self, call: Call, body: bytes, on_ask: AskHandler | None) -> CallResult:
        codec = _codec()
        reply, data = relay(call, body, self._send, lambda seconds: self._recv(seconds, Reply, Ask),
                            lambda ask, asked: self._answer(ask, asked, on_ask),
                            time.monotonic() + self.limits.grader_wait(call.seconds), self.limits.asks_per_call)
        if not reply.ok:
            return CallResult(False, error=reply.error)
        try:
            return CallResult(True, value=codec.decode(data, self._decode))
        except codec.CodecError as err:
            return CallResult(False, error=StudentError(ErrorKind.UNSENDABLE, message=f"it returned {err}"))

    def _answer(self, ask: Ask, data: bytes, on_ask: AskHandler | None) -> tuple[Answer, bytes]:
        """The reference's value for a follow-through question, or a refusal (never an exception)."""
        if on_ask is None:
            return Answer(StudentError(ErrorKind.EXCEPTION, message="no follow-through in this test")), b""
        codec = _codec()
        try:
            return Answer(), codec.encode(on_ask(ask.probe, codec.decode(data, self._decode)), self._decode)
        except Exception as err:  # noqa: BLE001 - the helper's caller passed arguments the reference refuses
            return Answer(StudentError(ErrorKind.EXCEPTION, type(err).__name__, str(err)[:300])), b""

    @functools.cached_property
    def _decode(self) -> DecodeLimits:
        return _codec().DecodeLimits(max_bytes=self.limits.reply_bytes)

    def _left(self) -> float:
        if self._submission is None:
            return self.limits.submission_seconds
        return self._submission.deadline - time.monotonic()

    def _recover(self) -> None:
        """After the sandbox died mid-submission: a fresh worker with the notebook replayed (a few times at most)."""
        self.restart()
        submission = self._submission
        if submission is None or submission.restarts >= self.limits.restarts:
            return
        submission.restarts += 1
        try:
            self._run_cells()
        except (TimeoutError, EOFError, OSError, ProtocolError, SandboxError):
            self.restart()

    def end_submission(self) -> None:
        """Kill whatever the submission left behind and wipe its traces."""
        self._submission = None
        try:
            self._send(End())
            self._recv(self.limits.end_seconds, Ended)
        except (TimeoutError, EOFError, OSError, ProtocolError, SandboxError):
            self.restart()

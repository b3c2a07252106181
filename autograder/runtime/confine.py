"""Turning a fork of the zygote into a student process: the last steps before student code runs.

In order: a session of its own, default signals, no inherited descriptors but its own pipes, first in line for
the OOM killer, a fresh IPC namespace where the zygote may make one, the student's uid (when the zygote is root),
rlimits, a clean environment, and the syscall filter. Every number comes from the grader's ``Limits``.
"""

from __future__ import annotations

import importlib
import os
import resource
import signal
import stat
import sys
import tempfile
from collections.abc import Callable

from . import seccomp

CLONE_NEWIPC = 0x08000000


def drop_privileges(uid: int | None, gid: int | None, workdir: str) -> bool:
    """Become ``uid`` when running as root (returns whether it did), then enter ``workdir``."""
    dropped = os.geteuid() == 0 and uid is not None
    if dropped:
        os.setgroups([])
        os.setgid(gid if gid is not None else uid)
        os.setuid(uid)
    os.chdir(workdir)
    return dropped


def become_student(cfg: dict, limits: dict, keep: tuple[int, ...]) -> None:
    """Confine this process for student code; ``keep`` are the descriptors it talks to the zygote on."""
    os.setsid()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote's reaper would steal our children's statuses
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if cfg.get("debug") else (0, 1, 2):  # DLGRADE_DEBUG: the student's stderr reaches the TA's
        os.dup2(devnull, fd)
    view = cfg.get("python_view") or {}
    _close_all_but((*keep, *view.values()))
    _write("/proc/self/oom_score_adj", "1000")  # a memory-cgroup OOM takes student code, never the zygote
    _fresh_ipc_namespace()
    if drop_privileges(cfg.get("uid"), cfg.get("gid"), cfg["workdir"]):
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
        reroot_imports(view)
    # CUDA reserves far more virtual address space than it uses: on a GPU machine memory is bounded by the
    # worker's cgroup (where one can be made), not by RLIMIT_AS
    if not cfg.get("gpu"):
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    for res, value in ((resource.RLIMIT_FSIZE, limits["file_bytes"]), (resource.RLIMIT_NOFILE, limits["open_files"]),
                       (resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, int(limits["notebook_seconds"]) + 1)):
        resource.setrlimit(res, (value, value))
    workdir = cfg["workdir"]
    os.environ.clear()
    os.environ.update(
        HOME=workdir, TMPDIR=workdir, USER="student", LOGNAME="student",  # no passwd entry for our uid
        PATH="/usr/local/bin:/usr/bin:/bin", MPLBACKEND="Agg", MPLCONFIGDIR=os.path.join(workdir, ".matplotlib"),
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0",
    )
    tempfile.tempdir = None  # found again from TMPDIR: the zygote's warm-up cached /tmp
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if not cfg.get("debug"):
        sys.stderr = sys.stdout
    sys.argv = ["notebook"]
    sys.path[:] = [p for p in sys.path if p and p != os.getcwd()]
    if cfg.get("seccomp"):
        seccomp.install()


def python_view() -> dict[str, int]:
    """Without bubblewrap, where the Python installation lies below a folder other users cannot enter (pyenv under
    a 0700 /root): the highest folders on its paths that they can enter, each with a descriptor opened here, as root.
    A student process then reaches the installation through ``/proc/self/fd/N/...`` (the kernel checks no folder
    above a descriptor), so it can import everything the grading environment can (:func:`reroot_imports`)."""
    view: dict[str, int] = {}
    for path in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path}:
        if not path or not os.path.isabs(path):
            continue
        parts = os.path.realpath(path).split(os.sep)[1:]
        for depth in range(1, len(parts)):
            above = os.sep + os.path.join(*parts[:depth])
            try:
                closed = not os.stat(above).st_mode & stat.S_IXOTH
            except OSError:
                break
            if closed:
                root = os.path.join(above, parts[depth])
                if root not in view:
                    try:
                        view[root] = os.open(root, os.O_PATH | os.O_DIRECTORY)
                        os.set_inheritable(view[root], True)  # a worker started with exec (multiprocessing's spawn)
                    except OSError:
                        pass
                break
    return view


def reroot_imports(view: dict[str, int]) -> None:
    """Point the import system (``sys.path``, each package's ``__path__``, each module's ``__file__``) at the
    descriptors of :func:`python_view` instead of the folders this uid cannot reach."""
    if not view:
        return
    mapping = {root: f"/proc/self/fd/{fd}" for root, fd in view.items()}

    def moved(path: object) -> object:
        if isinstance(path, str):
            real = os.path.realpath(path) if path.startswith(os.sep) else path
            for root, new in mapping.items():
                if real == root or real.startswith(root + os.sep):
                    return new + real[len(root):]
        return path

    sys.path[:] = [moved(p) for p in sys.path]
    for name in ("prefix", "base_prefix", "exec_prefix", "base_exec_prefix"):
        setattr(sys, name, moved(getattr(sys, name)))
    for module in list(sys.modules.values()):
        try:
            _move_module(module, moved)
        except Exception:  # noqa: BLE001 - a module that will not be moved keeps its path (and its imports fail)
            continue
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()


def _move_module(module: object, moved: Callable[[object], object]) -> None:
    if isinstance(getattr(module, "__path__", None), list):
        module.__path__[:] = [moved(p) for p in module.__path__]
    if isinstance(getattr(module, "__file__", None), str):
        module.__file__ = moved(module.__file__)
    spec = getattr(module, "__spec__", None)
    if spec is not None and isinstance(spec.origin, str) and spec.has_location:
        spec.origin = moved(spec.origin)


def _close_all_but(keep: tuple[int, ...]) -> None:
    low, top = 3, resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(top, low) if top != resource.RLIM_INFINITY else 65536)


def _fresh_ipc_namespace() -> None:
    """A SysV IPC namespace of this submission's own, where the zygote has the right to make one (root outside
    bubblewrap); elsewhere the syscall filter and the sweep keep IPC from carrying anything."""
    if not hasattr(os, "unshare"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWIPC)
        except (OSError, AttributeError):
            pass
        return
    try:
        os.unshare(CLONE_NEWIPC)
    except OSError:
        pass


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        pass

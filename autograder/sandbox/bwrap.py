"""The bubblewrap command line: an allow-listed, read-only view of the machine with no network.

The view holds system libraries and the Python environment (read-only), the sandbox runtime at
``/opt/dlgrade``, a private ``/tmp`` and ``/dev/shm``, its own ``/proc`` (PID namespace) with ``/proc/keys``
masked, and nothing else: no ``solutions/``, no grader code, no course folder. Namespaces: network, PID, IPC,
UTS and cgroup of its own.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import settings

RUNTIME_MOUNT = "/opt/dlgrade"
# what the zygote keeps as root inside bubblewrap: to become the student's uid, kill what it left, and manage its
# working folder (student processes drop every capability when they take their uid)
ZYGOTE_CAPS = ("SETUID", "SETGID", "CHOWN", "KILL", "DAC_OVERRIDE", "FOWNER")


@functools.lru_cache(maxsize=1)
def path() -> str | None:
    """Path of a working bubblewrap, or None (missing, switched off, or no namespaces allowed here)."""
    if settings.current().no_bwrap:
        return None
    found = shutil.which("bwrap")
    if not found:
        return None
    probe = [found, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--proc", "/proc", "--dev", "/dev",
             "true"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return found if ok else None


def why_not() -> str:
    """Why :func:`path` is None, for the protection table."""
    if settings.current().no_bwrap:
        return "switched off (DLGRADE_NO_BWRAP)"
    if shutil.which("bwrap"):
        return "bubblewrap is installed but cannot create namespaces here (e.g. a container's default confinement)"
    return "needs bubblewrap (apt-get install bubblewrap) and namespaces"


def arguments(runtime: Path, hide: Sequence[Path]) -> list[str]:
    """bubblewrap's options for a worker whose runtime package is the folder ``runtime``."""
    python, bound = _python_environment()
    return [*_system(), *python, *_devices(), *_hidden(hide, bound),
            "--perms", "0755", "--dir", RUNTIME_MOUNT, "--ro-bind", str(runtime), f"{RUNTIME_MOUNT}/{runtime.name}",
            *_namespaces()]


def _system() -> list[str]:
    """A private /tmp first (an environment living under /tmp is bound on top of it, not hidden by it), /proc with
    /proc/keys masked, a minimal /dev with a private, world-writable /dev/shm (DataLoader workers need it), and the
    system's libraries read-only."""
    args = ["--tmpfs", "/tmp", "--proc", "/proc", "--ro-bind-try", "/dev/null", "/proc/keys", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/dev/shm", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/ssl"):
        args += ["--ro-bind-try", etc, etc]
    return args


def _python_environment() -> tuple[list[str], list[Path]]:
    """The interpreter's prefixes (and the virtual environment's), read-only at their own paths."""
    args: list[str] = []
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
    return args, bound


def _devices() -> list[str]:
    return [arg for dev in sorted(Path("/dev").glob("nvidia*")) for arg in ("--dev-bind-try", str(dev), str(dev))]


def _hidden(hide: Sequence[Path], bound: list[Path]) -> list[str]:
    """An empty folder over each secret folder (solutions, sources, the grader) that a bound tree contains."""
    return [arg for secret in hide if secret.is_dir() and any(secret == b or b in secret.parents
                                                              for b in [*bound, Path("/usr")])
            for arg in ("--tmpfs", str(secret))]


def _namespaces() -> list[str]:
    args = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--chdir", "/"]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]
        for cap in ZYGOTE_CAPS:
            args += ["--cap-add", f"CAP_{cap}"]
    return args

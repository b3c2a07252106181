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
    # private /tmp first, so that an environment living under /tmp is bound on top of it, not hidden by it;
    # a private, world-writable /dev/shm: multiprocessing (DataLoader workers) needs it for semaphores
    args = ["--tmpfs", "/tmp", "--proc", "/proc", "--ro-bind-try", "/dev/null", "/proc/keys", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/dev/shm", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/ssl"):
        args += ["--ro-bind-try", etc, etc]
    made: set[str] = set()
    bound: list[Path] = []
    for prefix in sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                          str(Path(sys.executable).resolve().parent.parent)}):
        prefix_path = Path(prefix).resolve()
        if any(prefix_path == b or b in prefix_path.parents for b in bound) or str(prefix_path).startswith("/usr/"):
            continue
        for parent in reversed(prefix_path.parents):
            if str(parent) != "/" and str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += ["--ro-bind", str(prefix_path), str(prefix_path)]
        bound.append(prefix_path)
    for dev in sorted(Path("/dev").glob("nvidia*")):
        args += ["--dev-bind-try", str(dev), str(dev)]
    for secret in hide:
        if any(secret == b or b in secret.parents for b in [*bound, Path("/usr")]) and secret.is_dir():
            args += ["--tmpfs", str(secret)]
    args += ["--perms", "0755", "--dir", RUNTIME_MOUNT, "--ro-bind", str(runtime), f"{RUNTIME_MOUNT}/{runtime.name}"]
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session", "--chdir", "/"]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]
        for cap in ZYGOTE_CAPS:
            args += ["--cap-add", f"CAP_{cap}"]
    return args

"""Student uids that no two sandboxes on one machine share, whichever grader started them.

As root, each sandbox runs its student code as a uid of its own. A uid is taken by holding an exclusive ``flock``
on its lock file in a folder only root can write (``/run/dlgrade/uids``, else one in the temporary folder); the
kernel drops the lock when the grader exits, however it exits. So concurrent graders (another course, shard or
assignment graded at the same time) never share a uid, and ``RLIMIT_NPROC``, which counts per uid across PID
namespaces, is one submission's budget alone.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from pathlib import Path

SPAN = 4096  # uids tried above the base: graders x workers that may run at once on one machine


class UidError(RuntimeError):
    """No uid could be taken (the message says why and what to set)."""


class Lease:
    """One uid, held until :meth:`release` (or the process's exit)."""

    def __init__(self, uid: int, fd: int) -> None:
        self.uid, self._fd = uid, fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = -1


def lock_folder() -> Path:
    """The folder of uid locks: root's, not writable by anyone else (a student must not be able to hold one)."""
    for base in (Path("/run"), Path(tempfile.gettempdir())):
        folder = base / ("dlgrade" if base == Path("/run") else f"dlgrade-{os.geteuid()}") / "uids"
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            info = folder.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022:
            return folder
    raise UidError("no private folder for uid locks (/run/dlgrade/uids or the temporary folder): one is writable "
                   "by others; remove it or make /run writable by root")


def take(base: int, prefer: int = 0) -> Lease:
    """The first free uid from ``base + prefer`` upwards (then from ``base``), locked for this process."""
    folder = lock_folder()
    for offset in [*range(prefer, SPAN), *range(prefer)]:
        uid = base + offset
        fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return Lease(uid, fd)
    raise UidError(f"every student uid from {base} to {base + SPAN - 1} is in use by a running grader; set "
                   "DLGRADE_UID_BASE to another free range")

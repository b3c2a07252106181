"""After each submission, nothing it started or left reaches the next one.

- processes: every descendant of the zygote is killed and reaped (orphans included: the zygote is a subreaper);
- files: with a private ``/tmp`` (bubblewrap) it and ``/dev/shm`` are emptied; without namespaces, what the
  student's uid owns in every world-writable folder of the machine (found once by a walk, not from a list) goes;
- kernel objects: SysV shared memory, semaphores and message queues of the student's uid are removed, and its
  user keyrings cleared (run as that uid), before the first submission and after each one.

The syscall filter (``seccomp``) already denies creating IPC objects and keys; this is the second layer, for
machines where the filter cannot be installed.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import signal
import stat
import time

KEYCTL_CLEAR = 7
KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -4, -5
_SYS = {"x86_64": {"keyctl": 250, "shmctl": 31, "semctl": 66, "msgctl": 71},
        "aarch64": {"keyctl": 219, "shmctl": 195, "semctl": 191, "msgctl": 187}}
IPC_RMID = 0
_SKIP_TREES = ("/proc", "/sys", "/dev")  # pseudo file systems; their writable places are listed below
_DEV_PLACES = ("/dev/shm", "/dev/mqueue")


def kill_descendants(root: int, seconds: float = 10.0) -> int:
    """Kill every process below ``root`` (repeatedly, as a fork loop may race) and reap them; returns how many are
    still there after ``seconds`` (a process stuck in the kernel, e.g. under memory pressure, dies late)."""
    end = time.monotonic() + seconds
    pause = 0.002
    while True:
        victims = _descendants(root)
        if not victims or time.monotonic() >= end:
            reap(0.5 if not victims else 0)  # the last ones killed: reap them too, leaving no zombie behind
            return len(victims)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reap(pause)
        pause = min(pause * 2, 0.1)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if fields[0] == b"Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def reap(wait: float) -> None:
    """Reap exited children for up to ``wait`` seconds."""
    end = time.monotonic() + wait
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= end:
                return
            time.sleep(0.0005)


def clear(folder: str, owner: int | None = None) -> None:
    """Delete the entries of ``folder``: all of them, or those that belong to uid ``owner``."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if owner is not None and entry.stat(follow_symlinks=False).st_uid != owner:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


@functools.lru_cache(maxsize=1)
def world_writable_folders() -> tuple[str, ...]:
    """Every folder an unprivileged user can reach and write, found by walking the file system once.

    A folder counts when it is writable by others and every folder above it is searchable by others; pseudo
    file systems are skipped except the writable places of ``/dev``."""
    found = [p for p in _DEV_PLACES if _writable_by_others(p)]
    todo = ["/"]
    while todo:
        folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.path in _SKIP_TREES:
                continue
            try:
                if not entry.is_dir(follow_symlinks=False):  # from the directory listing: no stat for files
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not st.st_mode & stat.S_IXOTH:
                continue
            if st.st_mode & stat.S_IWOTH:
                found.append(entry.path)
            todo.append(entry.path)
    return tuple(sorted(found))


def _writable_by_others(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(stat.S_ISDIR(mode) and mode & stat.S_IWOTH and mode & stat.S_IXOTH)


def sweep_shared_folders(uid: int) -> None:
    """Without namespaces: delete what ``uid`` left in every world-writable folder."""
    for folder in world_writable_folders():
        clear(folder, owner=uid)


def clear_kernel_objects(uid: int, gid: int) -> None:
    """As ``uid`` (in a short-lived child): clear its user keyrings and remove its SysV IPC objects."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            _as_owner_clear(uid)
        finally:
            os._exit(0)
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _as_owner_clear(uid: int) -> None:
    import platform

    numbers = _SYS.get(platform.machine())
    if numbers is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for keyring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        libc.syscall(numbers["keyctl"], KEYCTL_CLEAR, ctypes.c_long(keyring), 0, 0, 0)
    for kind, call in (("shm", "shmctl"), ("sem", "semctl"), ("msg", "msgctl")):
        for ident in ipc_objects(kind, uid):
            if kind == "sem":
                libc.syscall(numbers[call], ident, 0, IPC_RMID, 0)
            else:
                libc.syscall(numbers[call], ident, IPC_RMID, 0)


def ipc_objects(kind: str, uid: int) -> list[int]:
    """Ids of the SysV IPC objects of ``kind`` (shm, sem, msg) owned by ``uid``, from /proc/sysvipc."""
    try:
        with open(f"/proc/sysvipc/{kind}") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    if not lines:
        return []
    columns = lines[0].split()
    name = {"shm": "shmid", "sem": "semid", "msg": "msqid"}[kind]
    if name not in columns or "uid" not in columns:
        return []
    at_id, at_uid = columns.index(name), columns.index("uid")
    ids = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > max(at_id, at_uid) and fields[at_uid] == str(uid):
            ids.append(int(fields[at_id]))
    return ids

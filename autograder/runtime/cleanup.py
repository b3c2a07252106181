"""After each submission, nothing it started or left reaches the next one.

- processes: every descendant of the zygote is killed and reaped (orphans included: the zygote is a subreaper);
- files: with a private ``/tmp`` (bubblewrap) it and ``/dev/shm`` are emptied; without namespaces, what the
  student's uid owns in every world-writable folder of the machine (found once by a walk, not from a list) goes;
- kernel objects: SysV shared memory, semaphores and message queues of the student's uid are removed, and its
  user keyrings cleared (run as that uid), before the first submission and after each one.

The syscall filter (``seccomp``) already denies creating IPC objects and keys; this is the second layer, for
machines where the filter cannot be installed.

None of it polls or walks more than it must, so its cost does not depend on the machine's state: killed processes
are waited for on pidfds (no sleep loop), a zygote with no child has no descendant (no walk of ``/proc``), and the
kernel objects are looked at from the zygote (``/proc/sysvipc``, ``/proc/key-users``) before a child is forked to
clear them as the uid (see :func:`kernel_objects_unchanged`).
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import select
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


def kill_descendants(root: int, seconds: float = 10.0) -> tuple[int, int, int]:
    """Kill every process below ``root`` (repeatedly, as a fork loop may race) and reap them. Returns how many are
    still there after ``seconds`` (a process stuck in the kernel, e.g. under memory pressure, dies late), how many
    were killed, and the page faults of the processes reaped."""
    end = time.monotonic() + seconds
    killed = faults = 0
    while True:
        victims = _descendants(root)
        if not victims or time.monotonic() >= end:
            faults += reap()  # the last ones killed: reap them too, leaving no zombie behind
            return len(victims), killed, faults
        exits = []
        for pid in victims:
            exits.append(_pidfd(pid))  # opened before the kill: it cannot name a later process with a reused pid
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        _wait_exits(exits, end)
        faults += reap()


_NO_PIDFD = -1


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` has ended; None when it is gone already, ``_NO_PIDFD``
    where the kernel (before 5.3) or Python has no pidfds."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except (AttributeError, OSError):
        return _NO_PIDFD


def wait_exit(pid: int, seconds: float) -> bool:
    """Block until child ``pid`` has ended (a zombie counts), at most ``seconds``; whether it has. No polling
    where the kernel has pidfds; elsewhere a short sleep loop on the child's status."""
    fd = _pidfd(pid)
    if fd is None:
        return True
    if fd == _NO_PIDFD:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return True
            except ChildProcessError:
                return True  # already reaped (by a SIGCHLD handler, say)
            time.sleep(0.001)
        return False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(0.0, seconds) * 1000))
    finally:
        os.close(fd)


def _wait_exits(fds: list[int | None], end: float) -> None:
    """Wait until every pidfd in ``fds`` is readable (its process ended) or ``end``; closes them."""
    if _NO_PIDFD in fds:  # no pidfds here: give them a moment, as the kernel tears them down (the caller looks again)
        time.sleep(0.002)
    todo = {fd for fd in fds if fd is not None and fd != _NO_PIDFD}
    poller = select.poll()  # not select(): a fork loop's victims may need more than 1024 descriptors
    for fd in todo:
        poller.register(fd, select.POLLIN)
    try:
        while todo:
            left = end - time.monotonic()
            if left <= 0:
                return
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                todo.discard(fd)
                os.close(fd)
    finally:
        for fd in todo:
            os.close(fd)


def has_children() -> bool:
    """Whether this process has any child, running or ended (reaped ones do not count)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _descendants(root: int) -> list[int]:
    if root == os.getpid() and not has_children():
        return []  # every descendant has a parent below root: with no child there is none (no walk of /proc)
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


def reap() -> int:
    """Reap every child that has ended (never waits); returns their page faults (minor and major)."""
    faults = 0
    while True:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return faults
        if pid == 0:
            return faults
        faults += usage.ru_minflt + usage.ru_majflt


def clear(folder: str, owner: int | None = None) -> None:
    """Delete the entries of ``folder``: all of them, or those that belong to uid ``owner``. A tree mounted inside it
    (a Python environment that lives under /tmp, bound into the sandbox at its own path) is another file system:
    never entered, only the folders leading to it are (what a submission wrote in them goes)."""
    _clear(folder, owner, _mount_points(folder))


def _clear(folder: str, owner: int | None, mounts: frozenset[str]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.path in mounts:
                continue
            if any(point.startswith(entry.path + "/") for point in mounts):
                if entry.is_dir(follow_symlinks=False):
                    _clear(entry.path, owner, mounts)
                continue
            if owner is not None and entry.stat(follow_symlinks=False).st_uid != owner:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _mount_points(folder: str) -> frozenset[str]:
    """The mount points below ``folder`` in this process's mount namespace (``/proc/self/mountinfo``; a student
    process cannot add any: mounting is refused)."""
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return frozenset()
    below = folder.rstrip("/") + "/"
    points = (re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
              for line in lines if len(line.split()) > 4)
    return frozenset(p for p in points if p.startswith(below))


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


def clear_kernel_objects(uid: int, gid: int) -> int:
    """As ``uid`` (in a short-lived child): clear its user keyrings and remove its SysV IPC objects. Returns the
    child's page faults."""
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
            _, _, usage = os.wait4(pid, 0)
            return usage.ru_minflt + usage.ru_majflt
        except ChildProcessError:
            return 0  # reaped by a SIGCHLD handler meanwhile
        except InterruptedError:
            continue


def key_quota(uid: int) -> str | None:
    """The kernel's count of ``uid``'s keys and of their bytes (its line of ``/proc/key-users``: references, keys,
    keys in quota, bytes in quota; linking anything into one of its keyrings adds bytes), or None where it cannot
    be read. Readable without becoming ``uid``: no fork."""
    try:
        with open("/proc/key-users", "rb") as f:
            lines = f.read().decode("ascii", "replace").splitlines()
    except OSError:
        return None
    prefix = f"{uid}:"
    for line in lines:
        line = line.strip()
        if line.startswith(prefix):
            fields = line[len(prefix):].split()
            if len(fields) < 4:
                return None
            # usage, nkeys/nikeys, qnkeys/maxkeys, qnbytes/maxbytes: the two maxima are settings, not state
            return " ".join([fields[0], fields[1], fields[2].split("/")[0], fields[3].split("/")[0]])
    return ""  # no key of this uid exists


def kernel_objects_unchanged(uid: int, keys_after_clear: str | None) -> bool:
    """Whether ``uid`` certainly has nothing for :func:`clear_kernel_objects` to do: no SysV IPC object (read from
    ``/proc/sysvipc`` here), and its key counts as they were right after the last clearing (``keys_after_clear``,
    from :func:`key_quota`). When unsure (nothing recorded, unreadable), False."""
    if keys_after_clear is None or any(ipc_objects(kind, uid) for kind in ("shm", "sem", "msg")):
        return False
    return key_quota(uid) == keys_after_clear


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

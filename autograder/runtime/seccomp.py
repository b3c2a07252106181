"""A syscall filter for student processes: deny the kernel interfaces grading never needs.

Installed with ``prctl(PR_SET_SECCOMP)`` in each student process just before its first cell runs (so every
process it forks inherits it), after the privilege drop. Denied: kernel keyrings, SysV IPC and POSIX message
queues (channels between students that outlive a process), new namespaces (``unshare``, ``setns``, ``clone``
with namespace flags), mounts, io_uring, bpf, perf events, ptrace and cross-process memory access, kernel
modules, kexec, reboot, clocks and host names; file locks (``flock`` and ``fcntl``'s lock and lease commands) and
file watches (inotify, fanotify), which every sandbox could see on a file they all read (the same inode), so that
one submission could signal to another through them. A denied call fails with an errno of ``ERRNO_BASE + nr``, so the
student's error message can name the call (:func:`denied_call`); ``clone3`` fails with ENOSYS, which makes the C
library fall back to ``clone``, whose flags the filter can read.

The filter is a classic BPF program built here (no libseccomp needed) for x86_64 and aarch64.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import struct

ERRNO_BASE = 3000  # errno of a denied call: ERRNO_BASE + its number (the kernel caps errnos at 4095)

# Calls that are denied outright, by name; numbers per architecture below.
DENIED = (
    "add_key", "request_key", "keyctl",
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semctl", "semtimedop",
    "msgget", "msgsnd", "msgrcv", "msgctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "bpf", "perf_event_open", "userfaultfd", "fanotify_init", "inotify_init", "inotify_init1", "flock",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "lookup_dcookie",
    "name_to_handle_at", "open_by_handle_at",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname", "vhangup",
    "iopl", "ioperm", "uselib", "nfsservctl",
)

_X86_64 = {
    "shmget": 29, "shmat": 30, "shmctl": 31, "clone": 56, "semget": 64, "semop": 65, "semctl": 66, "shmdt": 67,
    "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "ptrace": 101, "syslog": 103, "uselib": 134,
    "fcntl": 72, "flock": 73, "vhangup": 153, "pivot_root": 155, "adjtimex": 159, "chroot": 161, "acct": 163,
    "settimeofday": 164,
    "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170,
    "setdomainname": 171, "iopl": 172, "ioperm": 173, "init_module": 175, "delete_module": 176, "quotactl": 179,
    "nfsservctl": 180, "lookup_dcookie": 212, "semtimedop": 220, "clock_settime": 227, "mq_open": 240,
    "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
    "inotify_init": 253, "inotify_init1": 294,
    "kexec_load": 246, "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
    "fanotify_init": 300, "name_to_handle_at": 303, "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "kexec_file_load": 320,
    "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "clone3": 435, "pidfd_getfd": 438, "mount_setattr": 442, "quotactl_fd": 443,
}
_GENERIC = {  # asm-generic/unistd.h: aarch64
    "lookup_dcookie": 18, "fcntl": 25, "inotify_init1": 26, "flock": 32, "umount2": 39, "mount": 40,
    "pivot_root": 41, "nfsservctl": 42, "chroot": 51,
    "vhangup": 58, "quotactl": 60, "acct": 89, "unshare": 97, "kexec_load": 104, "init_module": 105,
    "delete_module": 106, "clock_settime": 112, "syslog": 116, "ptrace": 117, "reboot": 142, "sethostname": 161,
    "setdomainname": 162, "settimeofday": 170, "adjtimex": 171, "mq_open": 180, "mq_unlink": 181,
    "mq_timedsend": 182, "mq_timedreceive": 183, "mq_notify": 184, "mq_getsetattr": 185, "msgget": 186,
    "msgctl": 187, "msgrcv": 188, "msgsnd": 189, "semget": 190, "semctl": 191, "semtimedop": 192, "semop": 193,
    "shmget": 194, "shmctl": 195, "shmat": 196, "shmdt": 197, "add_key": 217, "request_key": 218, "keyctl": 219,
    "clone": 220, "swapon": 224, "swapoff": 225, "perf_event_open": 241, "fanotify_init": 262,
    "name_to_handle_at": 264, "open_by_handle_at": 265, "clock_adjtime": 266, "setns": 268,
    "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "finit_module": 273, "bpf": 280,
    "userfaultfd": 282, "kexec_file_load": 294, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "clone3": 435, "pidfd_getfd": 438, "mount_setattr": 442, "quotactl_fd": 443,
}
# (audit architecture, syscall table, numbers at or above this bit belong to another ABI and are denied)
_ARCHES = {"x86_64": (0xC000003E, _X86_64, 0x40000000), "aarch64": (0xC00000B7, _GENERIC, None)}

CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME

# fcntl's commands that take or read a lock or a lease: F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK,
# F_OFD_SETLKW, F_SETLEASE, F_GETLEASE
FCNTL_LOCKS = (5, 6, 7, 36, 37, 38, 1024, 1025)

# classic BPF
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO, _KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24  # offsets in struct seccomp_data (little-endian: low halves of args)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


def _table() -> tuple[int, dict[str, int], int | None] | None:
    return _ARCHES.get(platform.machine())


def unavailable() -> str | None:
    """Why no filter can be installed on this machine, or None."""
    if os.uname().sysname != "Linux":
        return "needs Linux"
    if _table() is None:
        return f"no syscall table for {platform.machine()}"
    return None


def program() -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions."""
    arch, table, foreign = _table()
    ins = [(_LD_W_ABS, 0, 0, _ARCH), (_JEQ_K, 1, 0, arch), (_RET_K, 0, 0, _KILL_PROCESS), (_LD_W_ABS, 0, 0, _NR)]
    if foreign is not None:
        ins += [(_JGE_K, 0, 1, foreign), (_RET_K, 0, 0, _ERRNO | errno.ENOSYS)]
    for name in DENIED:
        if name in table:
            ins += [(_JEQ_K, 0, 1, table[name]), (_RET_K, 0, 0, _ERRNO | (ERRNO_BASE + table[name]))]
    ins += [(_JEQ_K, 0, 1, table["clone3"]), (_RET_K, 0, 0, _ERRNO | errno.ENOSYS)]
    denied_fcntl = _ERRNO | (ERRNO_BASE + table["fcntl"])
    ins += [(_JEQ_K, 0, 3 + len(FCNTL_LOCKS), table["fcntl"]), (_LD_W_ABS, 0, 0, _ARG1)]
    ins += [(_JEQ_K, len(FCNTL_LOCKS) - i, 0, cmd) for i, cmd in enumerate(FCNTL_LOCKS)]
    ins += [(_RET_K, 0, 0, _ALLOW), (_RET_K, 0, 0, denied_fcntl)]
    ins += [(_JEQ_K, 0, 4, table["clone"]), (_LD_W_ABS, 0, 0, _ARG0), (_JSET_K, 0, 1, CLONE_NEW_FLAGS),
            (_RET_K, 0, 0, _ERRNO | (ERRNO_BASE + table["clone"])), (_RET_K, 0, 0, _ALLOW)]
    ins += [(_RET_K, 0, 0, _ALLOW)]
    return ins


@functools.lru_cache(maxsize=1)
def compiled() -> bytes:
    """The filter packed for the kernel (``struct sock_filter`` array). The zygote builds it once before it forks,
    so a student process only hands it to the kernel."""
    return b"".join(struct.pack("<HBBI", *i) for i in program())


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> None:
    """Install the filter on the calling process (and everything it starts from now on); OSError if it cannot."""
    problem = unavailable()
    if problem:
        raise OSError(errno.ENOSYS, problem)
    raw = compiled()
    filters = ctypes.create_string_buffer(raw, len(raw))
    prog = _SockFprog(len(raw) // 8, ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def denied_call(err_no: int | None) -> str | None:
    """The name of the system call a denied errno stands for, or None if ``err_no`` is not one of ours."""
    found = _table()
    if not err_no or found is None:
        return None
    names = {nr: name for name, nr in found[1].items()}
    return names.get(err_no - ERRNO_BASE)

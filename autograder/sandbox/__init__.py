"""The sandbox: the one package that starts processes running student code (``worker.py``), and what it needs.

``limits`` (the budgets), ``bwrap`` (the filesystem view and namespaces), ``cgroups`` (memory, PID and CPU limits
on v1 and v2), ``uids`` (student uids no two sandboxes share), ``doctor`` (the protections this machine provides),
``errors`` (the sandbox's own failure).
The code that runs inside is ``autograder/runtime``.
"""

from .doctor import Protection, has_gpu, protection_table, protections, require_strong
from .errors import SandboxError
from .limits import GIB, Limits
from .worker import CallResult, Worker

__all__ = ["GIB", "CallResult", "Limits", "Protection", "SandboxError", "Worker", "has_gpu", "protection_table",
           "protections", "require_strong"]

"""The reference's outputs, computed once and kept on disk for the next batch, rerun or Gradescope upload.

A check calls the reference with inputs derived from seeds, so the same inputs come back in every batch. Their
outputs are kept per assignment in one file, named by a hash of everything that could change them: the reference
solution, the assignment's checks, the probes, and the numpy and torch versions. Another hash means another file,
so a stale value is never used. Entries are the reference's plain values (``codec``; nothing is unpickled).

The folder (``DLGRADE_CACHE``, default ``~/.cache/dlgrade``) belongs to the grader (mode 0700), outside every
student's view: it holds expected values, as ``solutions/`` does. ``dlgrade warm`` fills it ahead of time (the
grading image and the Gradescope bundle are built with it).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

from autograder.runtime.codec import CodecError, DecodeLimits, decode, encode

_LIMITS = DecodeLimits(max_bytes=2**30, max_json_bytes=256 * 2**20, max_elements=10_000_000, max_arrays=1_000_000)
_VERSION = "1"


def default_folder() -> Path:
    from autograder import settings

    configured = settings.current().cache
    if configured is not None:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlgrade"


def content_hash(files: list[Path]) -> str:
    """A hash of ``files`` and of the numerical libraries' versions."""
    digest = hashlib.sha256(f"dlgrade-reference-cache-{_VERSION}".encode())
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for library in ("numpy", "torch"):  # versions read from the installed metadata: nothing is imported
        try:
            digest.update(f"{library} {metadata.version(library)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library} absent".encode())
    return digest.hexdigest()[:24]


class ReferenceCache:
    """The reference's values for one assignment: ``get`` and ``put`` by key, ``save`` writes new ones to disk."""

    def __init__(self, assignment: str, files: list[Path], folder: Path | None = None) -> None:
        self.assignment = assignment
        self.files = files
        self.folder = folder or default_folder()
        self._entries: dict[str, Any] | None = None
        self._new = 0
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.folder / f"{self.assignment}-{content_hash(self.files)}.ref"

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            try:
                data = decode(self.path.read_bytes(), _LIMITS)
                self._entries = data if isinstance(data, dict) else {}
            except (OSError, CodecError):
                self._entries = {}
        return self._entries

    def get(self, key: str) -> tuple[bool, Any]:
        with self._lock:
            entries = self._load()
            return (key in entries, entries.get(key))

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._load()[key] = value
            self._new += 1

    def save(self) -> None:
        """Write the cache if it gained entries (atomically; a cache that cannot be written only costs time)."""
        with self._lock:
            if not self._new or self._entries is None:
                return
            try:
                data = encode(self._entries, _LIMITS)
                self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".ref-")
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, self.path)
                self._new = 0
            except (OSError, CodecError):
                pass

"""A progress bar with an ETA on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Thread-safe progress over ``total`` items."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self._lock = threading.Lock()

    def advance(self, message: str = "") -> None:
        with self._lock:
            self.done += 1
            elapsed = time.perf_counter() - self.start
            eta = elapsed / self.done * (self.total - self.done)
            if self.tty:
                filled = int(30 * self.done / max(self.total, 1))
                bar = "#" * filled + "-" * (30 - filled)
                self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}  "
                                  f"elapsed {_clock(elapsed)}  ETA {_clock(eta)} ")
            else:
                self.stream.write(f"[{self.done}/{self.total}] {message} (ETA {_clock(eta)})\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and self.total:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"

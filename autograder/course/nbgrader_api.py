"""nbgrader's gradebook, opened the way dlgrade needs it (reading a course's points, writing its scores)."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def open_gradebook(db: Path) -> Iterator[Any]:
    """nbgrader's ``Gradebook`` on ``db``, with the ``alembic`` script nbgrader runs from PATH made the one beside this
    interpreter, and SQLAlchemy's autoflush warning (which nbgrader's own add_submission trips, harmlessly) quiet."""
    from nbgrader.api import Gradebook

    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="sqlalchemy")
        warnings.filterwarnings("ignore", message=".*not in session.*")
        with Gradebook(f"sqlite:///{db.resolve()}") as gb:
            yield gb

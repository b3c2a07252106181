"""Sample submissions built from the release: full marks, typical mistakes, crashes, hostile code.

Used by ``dlgrade demo``, the tests and the benchmark. A submission is the released notebook with each
solution cell filled in from the source notebook, optionally with some cells replaced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

from autograder.course import Assignment

_SOLUTION = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


def solved_cells(assignment: Assignment) -> dict[str, str]:
    """Source of every solution or answer cell (by grade_id), markers removed, as a student would write it."""
    nb = nbformat.read(assignment.source, as_version=4)
    cells = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cells[meta["grade_id"]] = _SOLUTION.sub("", cell.source)
    return cells


def build(assignment: Assignment, replace: dict[str, str] | None = None, extra_cells: list[str] = (),
          solved: bool = True) -> nbformat.NotebookNode:
    """The released notebook, solved (or not), with cells ``replace``-d by grade_id and code appended."""
    nb = nbformat.read(assignment.require_release(), as_version=4)
    filled = solved_cells(assignment) if solved else {}
    filled.update(replace or {})
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in filled and cell.metadata["nbgrader"].get("solution"):
            cell.source = filled[grade_id]
    for code in extra_cells:
        nb.cells.append(nbformat.v4.new_code_cell(code))
    return nb


def write(nb: nbformat.NotebookNode | str | bytes, path: Path) -> Path:
    """Write a notebook (or raw text/bytes, for broken files) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, bytes):
        path.write_bytes(nb)
    elif isinstance(nb, str):
        path.write_text(nb)
    else:
        path.write_text(json.dumps(nb, indent=1))
    return path


HOSTILE_CELLS = [
    # look for the reference, patch the comparisons, and hand in a constant for every graded name
    "import os, numpy, numpy.testing\n"
    "for p in ['/work', '/opt', '/root', '/srv', '/course']:\n"
    "    try:\n"
    "        print(os.listdir(p))\n"
    "    except OSError:\n"
    "        pass\n"
    "numpy.allclose = lambda *a, **k: True\n"
    "numpy.testing.assert_allclose = lambda *a, **k: None\n"
    "class Always(float):\n"
    "    def __eq__(self, other):\n"
    "        return True\n"
    "def cheat(*args, **kwargs):\n"
    "    return Always(0.0)\n"
    "for name in [n for n, v in list(globals().items()) if callable(v) and getattr(v, '__module__', '') == "
    "'__main__'][:2]:\n"
    "    globals()[name] = cheat\n",
    # loop forever at top level, ignoring signals
    "import signal\n"
    "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):\n"
    "    signal.signal(s, signal.SIG_IGN)\n"
    "while True:\n"
    "    pass\n",
]

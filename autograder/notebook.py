"""Reading a submitted notebook defensively, and turning it into the cells the sandbox runs.

Nothing here executes student code. A damaged file becomes a :class:`NotebookError` whose message is
written for the student; a file uploaded under another name is found and graded with a note.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

MAX_NOTEBOOK_BYTES = 20 * 2**20
_MAGIC = re.compile(r"^(\s*)([%!].*)$")


class NotebookError(ValueError):
    """The submission cannot be read as a notebook; the message says why, for the student."""


@dataclass(frozen=True)
class Cell:
    """One notebook cell with its nbgrader role."""

    index: int
    kind: str  # "code" | "markdown" | "raw"
    source: str
    grade_id: str | None = None
    role: str = "plain"  # "solution" | "test" | "answer" | "plain"
    points: float = 0.0


def read_cells(path: Path) -> list[Cell]:
    """Parse ``path`` into cells; raise :class:`NotebookError` with a student-facing reason."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise NotebookError(f"the file could not be read ({err.strerror})") from err
    if not raw.strip():
        raise NotebookError("the file is empty: save the notebook in Jupyter before submitting")
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"the file is {len(raw) >> 20} MB; clear the outputs (Kernel > Restart & Clear Output)")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        where = f" (line {err.lineno}, column {err.colno})" if isinstance(err, json.JSONDecodeError) else ""
        raise NotebookError(f"the file is not valid JSON{where}: it is damaged or not a notebook") from err
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        raise NotebookError("the file is JSON but not a Jupyter notebook (it has no list of cells)")
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as err:  # noqa: BLE001 - nbformat raises many types for odd files
        raise NotebookError(f"the notebook could not be read by nbformat ({type(err).__name__})") from err
    cells = []
    for index, cell in enumerate(nb.cells):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        meta = cell.get("metadata", {}).get("nbgrader", {}) or {}
        role = "plain"
        if meta.get("solution") and meta.get("grade"):
            role = "answer" if cell.get("cell_type") != "code" else "solution"
        elif meta.get("solution"):
            role = "solution"
        elif meta.get("grade"):
            role = "test"
        cells.append(Cell(index, str(cell.get("cell_type", "code")), source, meta.get("grade_id"), role,
                          float(meta.get("points", 0) or 0)))
    return cells


def has_nbgrader_metadata(cells: list[Cell]) -> bool:
    """Whether any cell still carries nbgrader metadata."""
    return any(c.grade_id for c in cells)


def cells_to_run(cells: list[Cell], include_tests: bool, demo_sources: frozenset[str] = frozenset()) -> list[dict]:
    """Code cells for the sandbox, magics and shell lines neutralised.

    Test cells run only if ``include_tests``. Cells whose source is one of ``demo_sources`` (the release's own
    demonstration cells: plots, worked examples) are skipped unless they only import or define names: they
    grade nothing, and skipping them keeps grading fast. Cells a student wrote or changed always run.
    """
    runnable = []
    for cell in cells:
        if cell.kind != "code" or (cell.role == "test" and not include_tests) or not cell.source.strip():
            continue
        if cell.source.lstrip().startswith("%%"):
            continue
        source = "\n".join(_MAGIC.sub(r"\1pass  # \2", line) for line in cell.source.splitlines())
        if cell.role == "plain" and cell.source.strip() in demo_sources and not defines_only(source):
            continue
        runnable.append({"index": cell.index, "source": source, "grade_id": cell.grade_id})
    return runnable


def demo_cells(released: Path) -> frozenset[str]:
    """Sources of the plain (teaching) code cells of a released notebook."""
    return frozenset(c.source.strip() for c in read_cells(released) if c.kind == "code" and c.role == "plain")


def defines_only(source: str) -> bool:
    """Whether a cell only imports modules and defines functions, classes or constants."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    simple = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)
    for node in tree.body:
        if isinstance(node, simple):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            try:
                ast.literal_eval(node.value)
                continue
            except ValueError:
                return False
        return False
    return True


def find_notebook(folder: Path, expected: str) -> tuple[Path | None, str | None]:
    """The submitted notebook in ``folder``: the expected name, else the closest ``.ipynb`` with a note."""
    exact = folder / expected
    if exact.is_file():
        return exact, None
    candidates = sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.name.startswith("."))
    if not candidates:
        return None, None
    names = [p.name for p in candidates]
    best = difflib.get_close_matches(expected, names, n=1, cutoff=0.0)[0]
    note = f"graded {best!r}: the notebook was expected to be named {expected!r}"
    return folder / best, note


def grade_cell_points(notebook: Path) -> dict[str, float]:
    """Points of each autograded test cell (``grade_id`` -> points) in an nbgrader source notebook."""
    return {c.grade_id: c.points for c in read_cells(notebook) if c.role == "test" and c.grade_id}

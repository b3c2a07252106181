"""Reading a submitted notebook defensively, and turning it into the cells the sandbox runs.

Nothing here executes student code. The file is opened without following a link, must be a regular file, and is
read only up to ``Limits.notebook_bytes``; its JSON is checked for size before it is parsed. A damaged or refused
file becomes a :class:`NotebookError` whose message is written for the student; a file uploaded under another
name is found and graded with a note.
"""

from __future__ import annotations

import ast
import difflib
import errno
import functools
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from autograder.sandbox.limits import Limits

MAX_NOTEBOOK_BYTES = Limits().notebook_bytes
MAX_CONTAINERS = 1_000_000  # lists and objects in a notebook's JSON (a 100,000-cell notebook has about 500,000)


class NotebookError(ValueError):
    """The submission cannot be read as a notebook; the message says why, for the student."""


@dataclass(frozen=True)
class Cell:
    """One notebook cell with its nbgrader role."""

    index: int
    kind: str  # "code" | "markdown" | "raw"
    source: str
    grade_id: str | None = None
    role: str = "plain"  # nbgrader's role of the cell: see :func:`cell_role`
    points: float = 0.0

    @property
    def ungraded(self) -> bool:
        """The notebook's own text or code, neither graded nor written by the student (read-only or not)."""
        return self.role in ("plain", "locked")


def cell_role(meta: dict, kind: str) -> str:
    """A cell's role from its nbgrader metadata, the one reading of nbgrader's cell types: "task" (manually graded
    task), "answer" (manually graded answer: grade and solution), "test" (autograder tests: a graded code cell),
    "manual" (a graded cell that is not code), "solution" (autograded answer), "locked" (read-only), else "plain"."""
    if meta.get("task"):
        return "task"
    if meta.get("grade") and meta.get("solution"):
        return "answer"
    if meta.get("grade"):
        return "test" if kind == "code" else "manual"
    if meta.get("solution"):
        return "solution"
    if meta.get("locked"):
        return "locked"
    return "plain"


def read_file(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of the regular file ``path``, never through a symbolic link, at most ``limit`` of them."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotebookError("the notebook is a symbolic link, and links are not graded: submit the notebook "
                                "file itself") from err
        raise NotebookError(f"the file could not be read ({err.strerror})") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotebookError("the notebook is not a regular file (a device, pipe or socket), so it was not read")
        if info.st_size > limit:
            raise NotebookError(_too_big(info.st_size, limit))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise NotebookError(_too_big(size, limit))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_big(size: int, limit: int) -> str:
    return (f"the file is {size / 2**20:.1f} MB and the limit is {limit / 2**20:g} MB; clear the outputs "
            "(Kernel > Restart & Clear Output) and save it again")


def read_cells(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> list[Cell]:
    """Parse the notebook at ``path``; raise :class:`NotebookError` with a student-facing reason."""
    return parse_cells(read_file(path, limit))


def parse_cells(raw: bytes) -> list[Cell]:
    """The cells of a notebook file's bytes (nbformat 4, or 3 with worksheets)."""
    if not raw.strip():
        raise NotebookError("the file is empty: save the notebook in Jupyter before submitting")
    if raw.count(b"[") + raw.count(b"{") > MAX_CONTAINERS:
        raise NotebookError("the file holds more nested values than a notebook can (over a million lists and "
                            "objects): it is damaged or not a notebook")
    try:
        data = json.loads(raw)
    except RecursionError as err:
        raise NotebookError("the file's JSON is nested too deeply to be a notebook") from err
    except (ValueError, UnicodeDecodeError) as err:
        where = f" (line {err.lineno}, column {err.colno})" if isinstance(err, json.JSONDecodeError) else ""
        raise NotebookError(f"the file is not valid JSON{where}: it is damaged or not a notebook") from err
    raw_cells = data.get("cells") if isinstance(data, dict) else None
    if isinstance(data, dict) and raw_cells is None and isinstance(data.get("worksheets"), list):
        raw_cells = [c for ws in data["worksheets"] if isinstance(ws, dict) for c in ws.get("cells") or []]
    if not isinstance(raw_cells, list):
        raise NotebookError("the file is JSON but not a Jupyter notebook (it has no list of cells)")
    return [_cell(index, cell) for index, cell in enumerate(raw_cells)]


def _cell(index: int, cell: object) -> Cell:
    if not isinstance(cell, dict):
        raise NotebookError(f"cell {index} of the notebook is damaged (not an object)")
    kind = cell.get("cell_type", "code")
    source = cell.get("source", cell.get("input", ""))  # nbformat 3 keeps code in "input"
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        source = "".join(source)
    if not isinstance(source, str) or not isinstance(kind, str):
        raise NotebookError(f"cell {index} of the notebook is damaged (its source is not text)")
    metadata = cell.get("metadata")
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    role = cell_role(meta, kind)
    grade_id = meta.get("grade_id") if isinstance(meta.get("grade_id"), str) else None
    points = meta.get("points", 0)
    points = float(points) if isinstance(points, (int, float)) and not isinstance(points, bool) else 0.0
    return Cell(index, kind, source, grade_id, role, points)


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
        source = neutralise_magics(cell.source)
        if cell.ungraded and cell.source.strip() in demo_sources and not defines_only(source):
            continue
        runnable.append({"index": cell.index, "source": source, "grade_id": cell.grade_id})
    return runnable


# where a line may start with a magic or a shell escape: after any of str.splitlines' separators, whitespace, % or !
_MAGIC_LINE = re.compile(r"(?:\A|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029])\s*[%!]")


def neutralise_magics(source: str) -> str:
    """``source`` with IPython's line magics and shell escapes (``%matplotlib inline``, ``!pip install x``) made
    ``pass``: only where a statement starts, never a line inside brackets, a string or a continued line (where a
    leading ``%`` is Python's modulo)."""
    lines = source.splitlines()
    if not _MAGIC_LINE.search(source):  # most cells: nothing to scan (scanning was a tenth of a grading's own time)
        return "\n".join(lines)
    return _neutralise(lines)


def _neutralise(lines: list[str]) -> str:
    scanner = _Scanner()
    for number, line in enumerate(lines):
        if scanner.at_statement_start() and line.lstrip()[:1] in ("%", "!"):
            indent = line[: len(line) - len(line.lstrip())]
            lines[number] = f"{indent}pass  # {line.lstrip()}"
        else:
            scanner.feed(line)
    return "\n".join(lines)


class _Scanner:
    """Just enough of Python's tokenizer to know whether the next line starts a statement: open brackets, strings
    and backslash continuations."""

    def __init__(self) -> None:
        self.depth, self.string, self.continued = 0, "", False

    def at_statement_start(self) -> bool:
        return self.depth == 0 and not self.string and not self.continued

    def feed(self, line: str) -> None:
        i = 0
        while i < len(line):
            if self.string:
                if line[i] == "\\":
                    i += 2
                    continue
                if line.startswith(self.string, i):
                    i += len(self.string)
                    self.string = ""
                    continue
                i += 1
                continue
            char = line[i]
            if char == "#":
                break
            if char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(0, self.depth - 1)
            elif char in "'\"":
                self.string = line[i : i + 3] if line[i : i + 3] in ('"""', "'''") else char
                i += len(self.string)
                continue
            i += 1
        self.continued = line.endswith("\\")
        if len(self.string) == 1 and not self.continued:  # a one-line string left open: a syntax error anyway
            self.string = ""


def demo_cells(released: Path) -> frozenset[str]:
    """Sources of the plain (teaching) code cells of a released notebook."""
    return frozenset(c.source.strip() for c in read_cells(released) if c.kind == "code" and c.ungraded)


@functools.lru_cache(maxsize=1024)  # the release's cells come back in every submission: parsed once
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


def imported(source: str) -> list[str]:
    """Modules a cell imports at its top level (``import a.b`` -> ``a.b``; ``from a.b import c`` -> ``a.b``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def find_notebook(folder: Path, expected: str) -> tuple[Path | None, str | None]:
    """The submitted notebook in ``folder``: the expected name, else the closest ``.ipynb`` with a note.

    Nothing is followed: a link or special file under the expected name is returned as it is, and reading it
    then explains why it is refused."""
    exact = folder / expected
    if os.path.lexists(exact):
        return exact, None
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".ipynb") and not e.name.startswith(".")
                       and not e.is_dir(follow_symlinks=False))
    except OSError:
        return None, None
    if not names:
        return None, None
    best = difflib.get_close_matches(expected, names, n=1, cutoff=0.0)[0]
    note = f"graded {best!r}: the notebook was expected to be named {expected!r}"
    return folder / best, note


def grade_cell_points(notebook: Path) -> dict[str, float]:
    """Points of each autograded test cell (``grade_id`` -> points) in an nbgrader source notebook."""
    return {c.grade_id: c.points for c in read_cells(notebook) if c.role == "test" and c.grade_id}

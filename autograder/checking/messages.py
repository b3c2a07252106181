"""The wording of student errors: what a student reads when their code raised, hung, crashed or was stopped, on the
public example (with their values) and on a hidden case (numbers masked, their own lines quoted from the submitted
cells, never the frame text their code could forge)."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from autograder.checking.disclosure import Problem, exception_type, masked, shown
from autograder.course.notebook import Cell, neutralise_magics
from autograder.runtime.protocol import ErrorKind, Started, StudentError, TraceFrame


def student_error(label: str, error: StudentError | None, cells: Mapping[int, str] | None = None) -> str:
    """Feedback for an error the student's code raised or caused, with their own traceback lines only (quoted from
    ``cells``, the submission's code cells by notebook index, when the grader holds them)."""
    return shown(student_problem(label, error, cells), public=True)


def student_problem(label: str, error: StudentError | None, cells: Mapping[int, str] | None = None) -> Problem:
    """:func:`student_error` as a :class:`Problem`: a hidden case shows the kind of error, Python's own exception
    names, the student's failing lines quoted from the submitted cells (``cells``) and the message with every number
    and quoted value masked (a message, an exit code or a traceback can carry hidden inputs back)."""
    error = error or StudentError(ErrorKind.DEAD, message="no reason was given")
    if error.kind in _BY_KIND:
        return _BY_KIND[error.kind](label, error.message)
    return _raised(label, error, cells)


def _missing(label: str, message: str) -> Problem:
    name = message.split(" is not defined")[0] if " is not defined" in message else label
    return Problem(f"`{label}` (or a name it needs) is not defined in your notebook. Check its name and that its "
                   "cell runs without errors.",
                   f"`{name}` is not defined in your notebook. Check its name and that its cell runs without errors.")


_FORBIDDEN = ("grading never needs kernel keyrings, shared memory, message queues, namespaces, mounts, file locks "
              "or file watches.")
_BY_KIND: dict[ErrorKind, Callable[[str, str], Problem]] = {
    ErrorKind.MISSING: _missing,
    ErrorKind.TIMEOUT: lambda label, message: Problem(
        f"{label} did not finish in time. Look for an endless loop or far too many iterations.",
        f"{label} did not finish: {message}. Look for an endless loop or far too many iterations."),
    ErrorKind.CRASHED: lambda label, message: Problem(f"{label} crashed (its process ended).",
                                                      f"{label} crashed: {message}."),
    ErrorKind.MEMORY: lambda label, message: Problem(
        f"{label} ran out of memory. Look for a huge array (e.g. an n x n matrix where n is large)."),
    ErrorKind.UNSENDABLE: lambda label, message: Problem(
        f"{label} gave back something that cannot be graded (only numbers, arrays, tensors, lists, tuples and dicts "
        "can).", f"{label} gave back something that cannot be graded: {message}."),
    ErrorKind.FORBIDDEN: lambda label, message: Problem(
        f"{label} made a system call the grading sandbox forbids: {_FORBIDDEN}",
        f"{label} made a system call the grading sandbox forbids ({message}): {_FORBIDDEN}"),
    ErrorKind.PROTOCOL: lambda label, message: Problem(
        f"{label} could not be tested: the notebook's process sent a message the grader does not accept.",
        f"{label} could not be tested: {message}."),
    ErrorKind.BUDGET: lambda label, message: Problem(f"{label} was not tested: {message}."),
    ErrorKind.DEAD: lambda label, message: Problem(f"{label} could not be tested: {message}."),
}


def _raised(label: str, error: StudentError, cells: Mapping[int, str] | None = None) -> Problem:
    """An exception the student's code raised: on the public example its type, message and the student's own
    traceback lines; on a hidden case Python's name for the type, the same lines quoted from the submitted cells
    (never the frame's own text, which code can forge), and the message with numbers and quoted values masked (left
    out where the student's own ``raise`` or ``assert`` wrote it)."""
    if error.type == "NotImplementedError":
        return Problem(f"{label} raised NotImplementedError: it has not been implemented yet.")
    frames = [_frame(f, cells) for f in error.frames]
    public = f"{label} raised {error.type or 'an exception'}" + (f": {error.message}" if error.message else "")
    shown_frames = [line for line, _ in frames if line] if cells is not None else [
        f"  line {f.lineno}, in {f.name}: {f.line}" for f in error.frames]
    if shown_frames:
        public += "\n" + "\n".join(shown_frames)
    kind = exception_type(error.type)
    quoted = [line for line, _ in frames if line]
    last = next((statement for line, statement in reversed(frames) if line), None)
    if cells is None and error.frames:  # no submitted source to read (the notebook's own kernel): its frame text
        own = error.frames[-1].line.lstrip().startswith(("raise", "assert"))
    else:  # a raise or assert of the student's own, or code run from a string anywhere on the way
        own = (isinstance(last, (ast.Raise, ast.Assert))
               or any(statement is not None and _writes_message(statement) for _, statement in frames))
    message = ""
    if error.message and kind != "an exception" and not own:
        message = masked(error.message, "\n".join(quoted))
    hidden = f"{label} raised {kind}" + (f": {message}" if message else "")
    if message != error.message and message:
        hidden += " (numbers and values from the hidden inputs are masked: # and '…')"
    if quoted:
        hidden += "\n" + "\n".join(quoted)
    elif not message:
        hidden += " (its message and traceback are shown on the public example only)"
    return Problem(hidden, public)


def _frame(frame: TraceFrame, cells: Mapping[int, str] | None) -> tuple[str, ast.stmt | None]:
    """One traceback line as the student finds it in Jupyter: the cell named by what it defines, the line number in
    that cell, the function, and the line itself, all read from the submitted source (``""`` when the frame points
    at no line of a submitted cell: code the notebook compiled itself, under a name of its choice)."""
    match = re.fullmatch(r"<cell (\d+)>", frame.filename)
    source = (cells or {}).get(int(match.group(1))) if match else None
    lines = source.splitlines() if source is not None else []
    if not 1 <= frame.lineno <= len(lines):
        return "", None
    outline = _outline(source)
    function = next((name for start, end, name in outline.functions if start <= frame.lineno <= end), "")
    statement = next((node for node in outline.statements if node.lineno <= frame.lineno <= node.end_lineno), None)
    where = f"in {function}" if function else "at the cell's top level"
    return (f"  {outline.name}, line {frame.lineno}, {where}: {lines[frame.lineno - 1].strip()[:200]}",
            statement)


@dataclass(frozen=True)
class _Outline:
    name: str  # "the cell defining mse_loss", or "the cell starting `...`"
    functions: list[tuple[int, int, str]]  # (first line, last line, qualified name), innermost last
    statements: list[ast.stmt]  # innermost first


@functools.lru_cache(maxsize=256)
def _outline(source: str) -> _Outline:
    """What a cell defines, where, and its statements: the grader's own parse of the submitted source."""
    first = re.sub(r"\s+", " ", next((ln.strip() for ln in source.splitlines() if ln.strip()), ""))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return _Outline(f"the cell starting `{first[:50]}`", [], [])
    named = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    functions: list[tuple[int, int, str]] = []
    statements: list[ast.stmt] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                statements.append(child)
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    functions.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    functions.sort(key=lambda f: f[1] - f[0])  # the innermost (shortest) enclosing definition first
    statements.sort(key=lambda n: (n.end_lineno or n.lineno) - n.lineno)
    name = f"the cell defining {named[0]}" if named else f"the cell starting `{first[:50]}`"
    return _Outline(name, functions, statements)


def _writes_message(statement: ast.stmt) -> bool:
    """Whether the student's own statement chose the exception's message (``raise``, ``assert``, or code it runs
    from a string), so that the message may carry anything the code computed."""
    if isinstance(statement, (ast.Raise, ast.Assert)):
        return True
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("exec", "eval", "compile")
               for n in ast.walk(statement))


def cell_notes(cells: list[Cell], run: Started) -> list[str]:
    """One line per notebook cell that failed, naming the cell the way a student finds it in Jupyter: by the function
    or class it defines (else by its first line), its traceback lines quoted from the submitted source."""
    by_index = {c.index: c for c in cells}
    sources = {c.index: neutralise_magics(c.source) for c in cells if c.kind == "code"}
    notes = []
    for report in run.cells:
        if report.ok:
            continue
        cell = by_index.get(report.index)
        label = _outline(neutralise_magics(cell.source)).name if cell is not None else "a cell"
        notes.append(f"{label} failed and was skipped: {student_error('it', report.error, sources)}")
    if not run.alive:
        notes.append(f"the notebook stopped: {run.reason}")
    return notes

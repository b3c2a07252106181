"""The built-in course: where each assignment's source notebook, reference and checks live.

``source/<id>/<notebook>`` (authoring) -> ``assignments/<id>/<notebook>`` (released) -> submissions ->
``autograder/checks/<id>.py`` with ``solutions/<id>.py`` (grading). Points come from the source
notebook's nbgrader test cells: cell ``test_<function>`` gives the points of ``<function>``'s checks.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from . import settings
from .notebook import defines_only, grade_cell_points, imported, read_cells

if TYPE_CHECKING:  # imported with the checks (and numpy): the CLI starts a sandbox before it needs them
    from .suite import Suite

ASSIGNMENTS = {
    "a1_linear_regression": "linear_regression.ipynb",
    "a2_mlp": "mlp.ipynb",
    "a3_training_loop": "training_loop.ipynb",
    "a4_backprop": "backprop.ipynb",
    "a5_classification": "classification.ipynb",
}


class CourseError(LookupError):
    """An assignment or course file the grader needs is missing."""


def course_root() -> Path:
    """Folder holding ``source/``, ``assignments/`` and ``solutions/`` (``DLGRADE_HOME`` overrides)."""
    return settings.current().home or Path(__file__).resolve().parents[1]


def require_readable() -> None:
    """CourseError when this user cannot read the references or the checks (the grading image run as another uid)."""
    for folder in (course_root(), Path(__file__).resolve().parent / "checks"):
        if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
            raise CourseError(f"{folder} is not readable by uid {os.getuid()}, and the grader needs the references "
                              "and checks in it. In the grading image, run as root (the default, which runs student "
                              "code as unprivileged uids) or with --user 1000:1000.")


def available() -> list[str]:
    """Assignments with checks in this installation, in course order."""
    return [a for a in ASSIGNMENTS if importlib.util.find_spec(f"autograder.checks.{a}") is not None]


def notebook_name(assignment: str) -> str:
    if assignment not in ASSIGNMENTS:
        raise CourseError(f"unknown assignment {assignment!r}; known: {', '.join(ASSIGNMENTS)}")
    return ASSIGNMENTS[assignment]


def source_notebook(assignment: str) -> Path:
    return course_root() / "source" / assignment / notebook_name(assignment)


def released_notebook(assignment: str) -> Path:
    return course_root() / "assignments" / assignment / notebook_name(assignment)


@functools.cache
def suite(assignment: str) -> Suite:
    """The checks of ``assignment``."""
    notebook_name(assignment)
    try:
        module = importlib.import_module(f"autograder.checks.{assignment}")
    except ModuleNotFoundError as err:
        raise CourseError(f"no checks for {assignment!r} in this installation") from err
    return module.SUITE


def reference_path(assignment: str) -> Path:
    """``solutions/<assignment>.py``, or CourseError if it is missing."""
    path = course_root() / "solutions" / f"{assignment}.py"
    if not path.is_file():
        raise CourseError(f"reference solution {path} not found (set DLGRADE_HOME to the course repository)")
    return path


@functools.cache
def reference(assignment: str) -> ModuleType:
    """The reference solution module ``solutions/<assignment>.py`` (never shipped to students)."""
    path = reference_path(assignment)
    spec = importlib.util.spec_from_file_location(f"dlgrade_solutions.{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch = sys.modules.get("torch")
    if torch is not None:  # the checks' models are tiny: one thread is several times faster than a pool
        torch.set_num_threads(1)
    return module


@functools.cache
def points(assignment: str) -> dict[str, float]:
    """Points of each graded function, from the source notebook's ``test_<function>`` cells."""
    cells = grade_cell_points(source_notebook(assignment))
    functions = suite(assignment).functions
    missing = [f for f in functions if f"test_{f}" not in cells]
    if missing:
        raise CourseError(f"{source_notebook(assignment)} has no test cell for {', '.join(missing)}")
    return {f: cells[f"test_{f}"] for f in functions}


def sandbox_imports(assignments: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    """What a worker grading ``assignments`` imports before any student runs: the modules the released notebooks
    import in the cells grading replays, and those the probes need (a name with a leading dot is one of the sandbox
    runtime's own modules); and whether to warm torch's optimizers."""
    modules = ["numpy"]
    warm = False
    for assignment in assignments:
        released = read_cells(released_notebook(assignment))
        modules += [m for c in released if c.kind == "code" and defines_only(c.source) for m in imported(c.source)]
        modules += suite(assignment).preload
        if probe_module(assignment):  # imported before the fork, not in each graded function's call server
            modules.append(f".probes_{assignment}")
        warm = warm or suite(assignment).warm_torch
    return tuple(dict.fromkeys(modules)), warm


def probe_module(assignment: str) -> Path | None:
    """The sandbox-side probes of ``assignment`` (``runtime/probes_<assignment>.py``), if it has its own."""
    path = Path(__file__).resolve().parent / "runtime" / f"probes_{assignment}.py"
    return path if path.is_file() else None


def reference_files(assignment: str) -> list[Path]:
    """The files whose content decides the reference's outputs in the checks (the reference cache's key)."""
    package = Path(__file__).resolve().parent
    files = [course_root() / "solutions" / f"{assignment}.py", package / "checks" / f"{assignment}.py",
             package / "runtime" / "probes.py", package / "runtime" / "codec.py", package / "compare.py",
             package / "policy.py", probe_module(assignment)]
    return [f for f in files if f is not None and f.is_file()]


def secret_paths() -> list[Path]:
    """Folders a student process must never see."""
    root = course_root()
    return [root / "solutions", root / "source", Path(__file__).resolve().parent]

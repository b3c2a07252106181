"""Making courses and assignments: ``dlgrade init`` (a ready course folder, from the built-in course) and
``dlgrade new`` (an assignment scaffold that grades full marks on its own reference as it stands)."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from autograder.course import CONFIG, SALT_FILE, Course, CourseError, builtin_course

# what a course folder holds besides its config: nbgrader's source/ and release folder, and dlgrade's own
DEFINITION = ("source", "solutions", "checks", "probes")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SALT_TEXT = """\
# dlgrade's settings for this course. Keep this file private (like solutions/): the salt makes the hidden test
# inputs this course's own, so that nobody can rebuild them from dlgrade's public code.
seed_salt = "{salt}"
"""


def init_course(folder: Path) -> str:
    """Write a ready course folder at ``folder`` (which must not exist, or be empty): the built-in course's
    assignments, releases, references, checks and probes, its nbgrader_config.py, and a private seed salt."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CourseError(f"{folder} exists and is not an empty folder; give a new one")
    course = copy_definition(builtin_course(), folder)
    write_salt(folder)
    release = course.directories["release_directory"]
    names = course.assignments()
    return (f"Wrote the course {folder.resolve()}: {len(names)} assignments ({', '.join(names)}), their releases in "
            f"{release}/, references in solutions/, checks in checks/, and a private seed salt in {SALT_FILE}.\n"
            f"Next: cd {folder} && dlgrade new a6_my_topic   (or put submissions in submitted/ and run dlgrade grade)")


def copy_definition(origin: Path, folder: Path, assignments: list[str] | None = None) -> Course:
    """A course at ``folder`` defined as the one at ``origin`` (its config, and each assignment's source, release,
    reference, checks, probes and recorded equivalents; all of them, or ``assignments``), with no submissions and
    no seed salt."""
    release = Course(origin).directories["release_directory"]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(origin / CONFIG, folder / CONFIG)
    for name in (*DEFINITION, release):
        if not (origin / name).is_dir():
            continue
        (folder / name).mkdir(exist_ok=True)
        for entry in (origin / name).iterdir():
            wanted = assignments is None or entry.name.split(".")[0] in assignments or entry.name == "__init__.py"
            if not wanted or entry.name in ("__pycache__", ".ipynb_checkpoints") or entry.suffix == ".pyc":
                continue
            if entry.is_dir():
                shutil.copytree(entry, folder / name / entry.name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
            else:
                shutil.copy2(entry, folder / name / entry.name)
    return Course(folder)


def write_salt(folder: Path) -> Path:
    """A new random seed salt in ``folder/dlgrade.toml`` (readable by its owner only)."""
    path = Path(folder) / SALT_FILE
    path.write_text(SALT_TEXT.format(salt=secrets.token_hex(16)), encoding="utf-8")
    path.chmod(0o600)
    return path


def new_assignment(course: Course, assignment_id: str, function: str = "") -> str:
    """Scaffold ``assignment_id`` in ``course``: a source notebook with one graded function (solution cell, a test
    cell with its points, a public test and the hidden tests), its reference, its checks; then release it with
    stock ``nbgrader generate_assignment``. Returns what was written and what to do next."""
    if not _ID.match(assignment_id):
        raise CourseError(f"{assignment_id!r} cannot be an assignment id: use letters, digits, '_', '-' or '.' "
                          "(it names folders and files)")
    function = function or _function_name(assignment_id)
    if not function.isidentifier():
        raise CourseError(f"--function {function!r} is not a Python name")
    source = course.folder("source") / assignment_id
    files = {source / f"{function}.ipynb": _notebook(assignment_id, function),
             course.root / "solutions" / f"{assignment_id}.py": REFERENCE.format(function=function),
             course.root / "checks" / f"{assignment_id}.py": CHECKS.format(id=assignment_id, function=function)}
    taken = [str(p) for p in [source, *files] if p.exists()]
    if taken:
        raise CourseError(f"assignment {assignment_id} exists already in {course.root} ({', '.join(taken)})")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    release(course, assignment_id)
    return (f"Wrote {assignment_id}: {', '.join(str(p.relative_to(course.root)) for p in files)}, and released it "
            f"into {course.directories['release_directory']}/{assignment_id}/.\n"
            f"Its reference gets full marks as it stands. Next: write your function in the notebook's solution cell "
            f"and in solutions/{assignment_id}.py, its checks in checks/{assignment_id}.py, then run "
            f"`nbgrader generate_assignment {assignment_id} --force` again (README, \"Your own course\").")


def release(course: Course, assignment_id: str) -> None:
    """``nbgrader generate_assignment`` in the course folder (into its gradebook when it has one)."""
    steps = [["generate_assignment", assignment_id, "--force", "--no-db"]]
    if (course.root / "gradebook.db").is_file():
        steps = [["db", "assignment", "add", assignment_id], ["generate_assignment", assignment_id, "--force"]]
    for step in steps:
        done = subprocess.run([sys.executable, "-m", "nbgrader", *step], cwd=course.root, capture_output=True,
                              text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise CourseError(f"`nbgrader {' '.join(step)}` failed in {course.root}:\n{tail}")


def _function_name(assignment_id: str) -> str:
    """``a6_softmax`` -> ``softmax``: the id without a leading ``a6_`` or ``hw2-``, as a Python name."""
    name = re.sub(r"^(?:[A-Za-z]{1,3}\d+[_.-])", "", assignment_id)
    name = re.sub(r"\W", "_", name).strip("_").lower()
    return name if name.isidentifier() and not name[0].isdigit() else "my_function"


def _notebook(assignment_id: str, function: str) -> str:
    import nbformat

    def meta(grade_id: str, **flags: object) -> dict:
        return {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                             "solution": False, "task": False, **flags}}

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(INTRO.format(id=assignment_id, function=function),
                                      metadata=meta("intro", locked=True)),
        nbformat.v4.new_code_cell("import numpy as np", metadata=meta("imports", locked=True)),
        nbformat.v4.new_code_cell(SOLUTION.format(function=function), metadata=meta(function, solution=True)),
        nbformat.v4.new_code_cell(TEST.format(id=assignment_id, function=function),
                                  metadata=meta(f"test_{function}", grade=True, locked=True, points=1)),
    ]
    return nbformat.writes(nb)


INTRO = """\
# {id}

Implement `{function}` where it says `raise NotImplementedError()`, then run the cell after it.

**How this notebook is graded.** The cell after each function holds its *public tests*: run them to check
yourself. The grader runs *hidden tests* too: the same checks on other inputs (the *public example* is the one
input whose details the feedback may show; on a *hidden case* it says only what kind of difference it found), so do
not hard-code answers. A function's points are shared by its hidden tests.
"""
SOLUTION = '''\
def {function}(x):
    """Twice the input.

    x: array of shape (n,)
    returns: array of shape (n,), 2 x
    """
    ### BEGIN SOLUTION
    return 2 * np.asarray(x, dtype=float)
    ### END SOLUTION
'''
TEST = """\
# Public tests
assert np.allclose({function}(np.array([1.0, 2.0])), [2.0, 4.0]), "{function}([1, 2]) should be [2, 4]"
### BEGIN HIDDEN TESTS
from autograder.nbgrader_bridge import run_hidden_tests
run_hidden_tests("{id}", "{function}", globals())
### END HIDDEN TESTS
"""
REFERENCE = '''\
"""The reference solution: the grader runs it in its own process only, never in a student's."""

import numpy as np


def {function}(x):
    return 2 * np.asarray(x, dtype=float)
'''
CHECKS = '''\
"""Checks for {id}: each graded function against the reference (solutions/{id}.py), on the public example
(seed 0: its feedback may show values) and on hidden seeds (its feedback shows no value)."""

from autograder import Suite, Trial

SUITE = Suite()
check = SUITE.check


@check("{function}", "matches the reference on a random vector")
def {function}_matches_the_reference_on_a_random_vector(t: Trial) -> None:
    n = 4 if t.public else int(t.rng.integers(2, 50))  # hidden cases: other sizes, other values
    x = t.rng.normal(size=n)
    t.expect_close(t.call("{function}", x), t.ref("{function}", x), "the result")
'''

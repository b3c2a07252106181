"""A course: an nbgrader course folder, which defines every assignment dlgrade grades.

    COURSE/nbgrader_config.py                nbgrader's settings; the file that makes a folder a course
    COURSE/source/<id>/<notebook>.ipynb      authoring: teaching text, solution regions, hidden tests, points
    COURSE/<release>/<id>/<notebook>.ipynb   the release (`nbgrader generate_assignment <id>`): release/, or the
                                             config's CourseDirectory.release_directory
    COURSE/solutions/<id>.py                 the reference: runs in the grader's process only
    COURSE/checks/<id>.py                    the checks, written with ``from autograder import Suite, Trial, ...``
    COURSE/probes/<id>.py                    optional: code that runs in the sandbox beside the student's
    COURSE/dlgrade.toml                      optional: the course's private seed salt (`dlgrade init` writes one)

The assignments are what the folder holds (a folder under ``source/`` with one notebook); the package keeps no list
of them. A course is found (:func:`find`) from an explicit folder, else ``DLGRADE_HOME``, else the current folder or
the nearest parent holding ``nbgrader_config.py`` (nbgrader's own rule), never in the installation. Every error
names the file or setting to fix.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from autograder import settings
from autograder.course.definition import CourseNotebook, course_notebook
from autograder.course.errors import CourseError
from autograder.course.notebook import defines_only, imported, read_cells
from autograder.course.points import per_check

if TYPE_CHECKING:  # imported with the checks (and numpy): the CLI starts a sandbox before it needs them
    from autograder.checking.suite import Suite

PACKAGE = Path(__file__).resolve().parents[1]  # autograder/: the grader's own code, which no student sees
CONFIG = "nbgrader_config.py"
SALT_FILE = "dlgrade.toml"
HOW_TO_MAKE_ONE = "`dlgrade init DIR` makes one from the built-in course"


def find(explicit: Path | None = None, cwd: Path | None = None) -> Course:
    """The course to work on: ``explicit`` (a command's COURSE or ``--course``), else ``DLGRADE_HOME``, else the
    current folder or the nearest parent holding ``nbgrader_config.py``."""
    if explicit is not None:
        return Course.at(explicit, "given")
    home = settings.current().home
    if home is not None:
        return Course.at(home, "DLGRADE_HOME")
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG).is_file():
            return Course.at(folder, "found")
    raise CourseError(f"no course here: {here} and its parents hold no {CONFIG}. Pass the course folder (--course "
                      f"DIR), set DLGRADE_HOME, or run in a course folder; {HOW_TO_MAKE_ONE}.")


def find_optional(explicit: Path | None = None, cwd: Path | None = None) -> Course | None:
    """:func:`find`, or None where no course is found (a student's `dlgrade check` needs none)."""
    try:
        return find(explicit, cwd)
    except CourseError:
        if explicit is not None:
            raise
        return None


class Course:
    """One course folder; its assignments are loaded when first asked for."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._assignments: dict[str, Assignment] = {}

    @staticmethod
    def at(folder: Path, how: str = "given") -> Course:
        """The course in ``folder``; CourseError when it is not one (``how``: where the folder came from)."""
        folder = Path(folder)
        where = {"DLGRADE_HOME": f"DLGRADE_HOME={folder}", "given": str(folder)}.get(how, str(folder))
        try:
            is_dir, has_config = folder.is_dir(), (folder / CONFIG).is_file()
        except PermissionError:
            raise CourseError(f"{where} is not readable by uid {os.getuid()}: grade as its owner (or as root); in the "
                              "grading image, run as root (the default) or with --user 1000:1000") from None
        if not is_dir:
            raise CourseError(f"{where} is not a folder; {HOW_TO_MAKE_ONE}")
        if not has_config:
            raise CourseError(f"{where} is not a course folder: it has no {CONFIG} (nbgrader's, which marks a course "
                              f"folder); {HOW_TO_MAKE_ONE}")
        return _course(folder.resolve())

    def __repr__(self) -> str:
        return f"Course({str(self.root)!r})"

    # -- nbgrader's layout -------------------------------------------------------------------------------------------
    @functools.cached_property
    def directories(self) -> dict[str, str]:
        """nbgrader's CourseDirectory folder names, as the course's nbgrader_config.py sets them."""
        names = {"source_directory": "source", "release_directory": "release",
                 "submitted_directory": "submitted", "autograded_directory": "autograded"}
        from traitlets.config.loader import PyFileConfigLoader

        try:
            config = PyFileConfigLoader(CONFIG, path=str(self.root)).load_config()
        except Exception as err:  # the instructor's file: any error is theirs to fix, with its name
            raise CourseError(f"{self.root / CONFIG} could not be read: {type(err).__name__}: {err}") from err
        section = config.get("CourseDirectory", {})
        for key in names:
            value = section.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute() and ".." not in Path(value).parts:
                names[key] = value
        return names

    def folder(self, stage: str) -> Path:
        """``source``, ``release``, ``submitted`` or ``autograded``: that stage's folder in this course."""
        return self.root / self.directories[f"{stage}_directory"]

    # -- assignments -------------------------------------------------------------------------------------------------
    def assignments(self) -> list[str]:
        """The assignments this course defines: the folders under source/ that hold a notebook, in name order."""
        source = self.folder("source")
        try:
            folders = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return []
        return [p.name for p in folders if any(p.glob("*.ipynb"))]

    def assignment(self, assignment_id: str) -> Assignment:
        """The assignment ``assignment_id``, its files checked; CourseError naming what is missing."""
        if assignment_id not in self._assignments:
            if assignment_id not in self.assignments():
                known = ", ".join(self.assignments()) or "none"
                raise CourseError(f"the course {self.root} has no assignment {assignment_id!r} (no notebook in "
                                  f"{self.folder('source') / assignment_id}); it defines: {known}")
            self._assignments[assignment_id] = Assignment(self, assignment_id)
        return self._assignments[assignment_id]

    def notebook_names(self) -> list[str]:
        """Every assignment's notebook file name (the LMS file-name pattern is built from them)."""
        return [self.assignment(a).notebook for a in self.assignments()]

    @property
    def secrets(self) -> list[Path]:
        """What a student process must never see: the whole course folder (solutions, checks, sources, every
        student's submission) and the grader's own code."""
        return [self.root, PACKAGE]

    @functools.cached_property
    def seed_salt(self) -> tuple[str, str]:
        """The salt of the hidden seeds and where it came from: ``DLGRADE_SEED_SALT``, else the course's
        ``dlgrade.toml``, else the public default (with which anyone can rebuild the hidden inputs)."""
        configured = settings.current().seed_salt
        if configured != settings.DEFAULT_SALT:
            return configured, "DLGRADE_SEED_SALT"
        salt = read_salt(self.root / SALT_FILE)
        return (salt, str(self.root / SALT_FILE)) if salt else (settings.DEFAULT_SALT, "")

    def require_readable(self) -> None:
        """CourseError when this user cannot read the course (the grading image run as another uid)."""
        for folder in (self.root, self.root / "solutions", self.root / "checks"):
            if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
                raise CourseError(f"{folder} is not readable by uid {os.getuid()}, and the grader needs the references "
                                  "and checks in it. In the grading image, run as root (the default, which runs "
                                  "student code as unprivileged uids) or as the course folder's owner.")


@functools.lru_cache(maxsize=32)
def _course(root: Path) -> Course:
    return Course(root)


def read_salt(path: Path) -> str:
    """``seed_salt = "..."`` from a course's dlgrade.toml ("" when there is none)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the one line dlgrade writes, read without a TOML library
        tomllib = None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    if tomllib is not None:
        try:
            value = tomllib.loads(text).get("seed_salt", "")
        except tomllib.TOMLDecodeError as err:
            raise CourseError(f"{path} is not valid TOML: {err}") from err
        return value if isinstance(value, str) else ""
    match = re.search(r'^seed_salt\s*=\s*"([^"]*)"', text, re.MULTILINE)
    return match.group(1) if match else ""


def module_name(assignment_id: str) -> str:
    """A Python identifier for an assignment id (ids are folder names: ``hw-1`` -> ``hw_1``)."""
    name = re.sub(r"\W", "_", assignment_id.lower())
    return name if name.isidentifier() and not name[0].isdigit() else f"a_{name}"


class Assignment:
    """One assignment of a course: where its notebook, release, reference, checks and probes are."""

    def __init__(self, course: Course, assignment_id: str) -> None:
        self.course, self.id = course, assignment_id
        source = course.folder("source") / assignment_id
        notebooks = sorted(p.name for p in source.glob("*.ipynb"))
        if len(notebooks) != 1:
            raise CourseError(f"{source} holds {len(notebooks)} notebooks ({', '.join(notebooks)}): dlgrade grades one "
                              "notebook per assignment. Move the others into an assignment of their own.")
        self.notebook = notebooks[0]
        self.source = source / self.notebook
        self.released = course.folder("release") / assignment_id / self.notebook
        self.reference_path = course.root / "solutions" / f"{assignment_id}.py"
        self.checks_path = course.root / "checks" / f"{assignment_id}.py"
        probes = course.root / "probes" / f"{assignment_id}.py"
        self.probes_path = probes if probes.is_file() else None
        for path, what in ((self.checks_path, "its checks"), (self.reference_path, "its reference solution")):
            if not path.is_file():
                raise CourseError(f"assignment {assignment_id}: {path} is missing ({what}; `dlgrade new "
                                  f"{assignment_id}` shows the layout)")

    def __repr__(self) -> str:
        return f"Assignment({self.id!r} in {self.course.root})"

    @property
    def probe_module(self) -> str:
        """The name the assignment's probes have in the sandbox's runtime, and in a check's ``t.probe(...)``."""
        return f"probes_{module_name(self.id)}"

    def require_release(self) -> Path:
        """The released notebook; CourseError saying how to make it when it is missing."""
        if not self.released.is_file():
            raise CourseError(f"assignment {self.id}: the release {self.released} is missing; run `nbgrader "
                              f"generate_assignment {self.id} --force` in {self.course.root}")
        return self.released

    @functools.cached_property
    def suite(self) -> Suite:
        """The checks of this assignment (``SUITE`` in checks/<id>.py)."""
        from autograder.checking.suite import Suite

        module = _load(f"_dlgrade_checks_{_tag(self.checks_path)}_{module_name(self.id)}", self.checks_path)
        suite = getattr(module, "SUITE", None)
        if not isinstance(suite, Suite):
            raise CourseError(f"{self.checks_path} defines no SUITE = autograder.Suite(...)")
        if suite.notebook and suite.notebook != self.notebook:
            raise CourseError(f"{self.checks_path} names the notebook {suite.notebook!r}, but {self.source.parent} "
                              f"holds {self.notebook!r}")
        suite.bind(self.id, self.notebook, self.probe_module, self.course.seed_salt[0])
        if not suite.checks:
            raise CourseError(f"{self.checks_path} registers no checks (use @SUITE.check(\"function\", \"what\"))")
        return suite

    @functools.cached_property
    def reference(self) -> ModuleType:
        """The reference solution (run in the grader's process only, never in a student's)."""
        module = _load(f"_dlgrade_solutions_{_tag(self.reference_path)}_{module_name(self.id)}", self.reference_path)
        torch = sys.modules.get("torch")
        if torch is not None:  # the checks' models are tiny: one thread is several times faster than a pool
            torch.set_num_threads(1)
        return module

    @functools.cached_property
    def probes(self) -> ModuleType | None:
        """The assignment's own probes, loaded in the grader for the reference's side (a module of the runtime
        package, so that ``from .probes import lookup`` works as it does in the sandbox)."""
        if self.probes_path is None:
            return None
        return _load(f"autograder.runtime._course_{_tag(self.probes_path)}_{self.probe_module}", self.probes_path)

    @property
    def probe_files(self) -> dict[str, Path]:
        """Module name -> file of the probes the sandbox needs for this assignment."""
        return {self.probe_module: self.probes_path} if self.probes_path else {}

    @functools.cached_property
    def course_notebook(self) -> CourseNotebook:
        """The assignment's notebook as the course defines it: graded cells, roles, points (read once)."""
        return course_notebook(self)

    @property
    def points(self) -> dict[str, float]:
        """Points of each graded function, from its ``test_<function>`` cell: the one source of points."""
        return self.course_notebook.function_points

    @functools.cached_property
    def check_units(self) -> list[int]:
        """Each check's points in units (``points.UNITS_PER_POINT``), in suite order: a function's points split
        exactly over its checks; an advisory check carries none."""
        return per_check([(c.function, c.advisory) for c in self.suite.checks], self.points)

    def sandbox_imports(self) -> tuple[list[str], bool]:
        """What a worker imports before any student runs: the modules the released notebook imports in the cells
        grading replays, those the probes need (a leading dot: the sandbox runtime's own), and whether to warm
        torch's optimizers."""
        modules = [m for c in read_cells(self.require_release()) if c.kind == "code" and defines_only(c.source)
                   for m in imported(c.source)]
        modules += self.suite.preload
        if self.probes_path:  # imported before the fork, not in each graded function's call server
            modules.append(f".{self.probe_module}")
        return modules, self.suite.warm_torch

    def reference_files(self) -> list[Path]:
        """The files whose content decides the reference's outputs in the checks (the reference cache's key)."""
        files = [self.reference_path, self.checks_path, self.probes_path, PACKAGE / "runtime" / "probes.py",
                 PACKAGE / "runtime" / "codec.py", PACKAGE / "checking" / "compare.py",
                 PACKAGE / "checking" / "policy.py"]
        return [f for f in files if f is not None and f.is_file()]

    @functools.cached_property
    def definition_hash(self) -> str:
        """A hash of what decides a verdict besides the notebook: the checks, the reference and the probes (a
        changed one regrades the submissions it affects)."""
        digest = hashlib.sha256()
        for path in (self.checks_path, self.reference_path, self.probes_path):
            digest.update(path.read_bytes() if path is not None else b"-")
            digest.update(b"\0")
        return digest.hexdigest()[:16]


def sandbox_imports(assignments: Sequence[Assignment]) -> tuple[tuple[str, ...], bool, dict[str, Path]]:
    """What a worker grading ``assignments`` imports before any student runs (numpy always), whether to warm torch,
    and the probe files to put in its runtime."""
    modules, warm, probes = ["numpy"], False, {}
    for assignment in assignments:
        found, warm_torch = assignment.sandbox_imports()
        modules += found
        warm = warm or warm_torch
        probes.update(assignment.probe_files)
    return tuple(dict.fromkeys(modules)), warm, probes


def _tag(path: Path) -> str:
    """A short tag of a file's path: two courses in one process keep their modules apart."""
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]


def _load(name: str, path: Path) -> ModuleType:
    """Import the course file ``path`` as module ``name``; CourseError with the file's own line on failure."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)]
        where = f"{path}, line {frames[-1].lineno}" if frames else str(path)
        raise CourseError(f"{where}: {type(err).__name__}: {err}") from err
    return module


def course_probes(checks_file: str | Path) -> ModuleType:
    """The probes of the assignment whose checks are in ``checks_file`` (call it as ``course_probes(__file__)`` in
    checks/<id>.py), for a check that needs the probes' own code on the grader's side."""
    path = Path(checks_file).resolve()
    probes = Course.at(path.parents[1]).assignment(path.stem).probes
    if probes is None:
        raise CourseError(f"{path.parents[1] / 'probes' / path.name} is missing (the checks in {path} ask for it)")
    return probes


def builtin_course() -> Path:
    """Where this installation keeps the built-in course: inside the package of a wheel, or the checkout an editable
    install runs from."""
    for folder in (PACKAGE / "builtin_course", PACKAGE.parent):
        if (folder / CONFIG).is_file() and (folder / "checks").is_dir():
            return folder
    raise CourseError(f"this installation of dlgrade carries no built-in course (looked in {PACKAGE / 'builtin_course'}"
                      f" and {PACKAGE.parent}); reinstall dlgrade from its wheel")

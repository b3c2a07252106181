"""``dlgrade gradescope``: a Gradescope autograder zip for one assignment of a course, built from this installation.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once as root to build its image, then
``/autograder/run_autograder`` per submission, which must leave ``/autograder/results/results.json``. The zip holds
those two scripts (``gradescope_scripts/``, templates filled here), ``dlgrade/`` (this installation's grader, with a
``pyproject.toml`` made from its metadata) and ``course/``: the course folder with that assignment only (its source
notebook, release, reference, checks and probes, the course's ``nbgrader_config.py`` and seed salt). ``run_autograder``
copies the course, puts the uploaded notebook into its ``submitted/`` and runs ``dlgrade grade`` on it, so Gradescope
grades exactly as a TA's batch does; if grading itself fails, the student still gets a results.json with score 0 and the
reason. """

from __future__ import annotations

import json
import os
import re
import shlex
import zipfile
from collections.abc import Iterator
from pathlib import Path

from autograder import settings
from autograder.course import CONFIG, SALT_FILE, Assignment, CourseError

TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
VENV = "/opt/dlgrade-venv"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same tree gives the same zip

SCRIPTS = Path(__file__).resolve().parent / "gradescope_scripts"  # setup.sh and run_autograder.sh, as templates


def build_bundle(assignment: Assignment, out: Path) -> Path:
    """Write the Gradescope autograder zip of ``assignment`` into folder ``out`` (or to ``out`` if it names a
    ``.zip``); returns the zip's path."""
    files = list(_course_files(assignment))  # CourseError now for a missing release, reference or checks
    max_score = sum(assignment.points.values())
    out = Path(out)
    target = out if out.suffix == ".zip" else out / f"dlgrade-gradescope-{assignment.id}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    fill = {
        "@ASSIGNMENT@": shlex.quote(assignment.id), "@VENV@": VENV, "@TORCH_INDEX@": TORCH_INDEX,
        "@TORCH@": shlex.quote(_torch_requirement()), "@MAX_SCORE@": f"{max_score:g}",
    }
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        _add(zf, "setup.sh", script("setup.sh", fill).encode(), executable=True)
        _add(zf, "run_autograder", script("run_autograder.sh", fill).encode(), executable=True)
        _add(zf, "dlgrade/pyproject.toml", _pyproject().encode())
        for arcname, path in _tool_files():
            _add(zf, f"dlgrade/{arcname}", path.read_bytes())
        for arcname, data in files:
            _add(zf, f"course/{arcname}", data)
    os.replace(tmp, target)
    return target


def _course_files(assignment: Assignment) -> Iterator[tuple[str, bytes]]:
    """(name in the bundle's course/, content) for the course folder with ``assignment`` alone."""
    course = assignment.course
    root = course.root
    yield CONFIG, (root / CONFIG).read_bytes()
    salt, _ = course.seed_salt
    if salt != settings.DEFAULT_SALT:  # the course's own hidden seeds (DLGRADE_SEED_SALT, else its dlgrade.toml)
        yield SALT_FILE, f'seed_salt = "{salt}"\n'.encode()
    for path in (assignment.reference_path, assignment.checks_path, assignment.probes_path):
        if path is not None:
            yield path.relative_to(root).as_posix(), path.read_bytes()
    for folder in (assignment.source.parent, assignment.require_release().parent):
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
                yield rel.as_posix(), path.read_bytes()


def _tool_files() -> Iterator[tuple[str, Path]]:
    """(name in the bundle's dlgrade/, file) for the grader's own code (no course: it travels in course/)."""
    package = Path(__file__).resolve().parents[1]  # autograder/
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        skip = rel.parts[0] == "builtin_course" or "__pycache__" in rel.parts or path.suffix == ".pyc"
        if path.is_file() and not skip:
            yield f"autograder/{rel.as_posix()}", path


def _pyproject() -> str:
    """A pyproject.toml for the bundled grader, from this installation's metadata (its version and dependencies)."""
    from importlib.metadata import PackageNotFoundError, requires, version

    try:
        deps, this = [d for d in (requires("dlgrade") or []) if "extra ==" not in d], version("dlgrade")
    except PackageNotFoundError as err:
        raise CourseError("dlgrade is not installed as a package here (pip install dlgrade, or pip install -e . in "
                          "its checkout); the bundle installs the same dependencies") from err
    listed = ",\n".join(f"    {json.dumps(d)}" for d in deps)
    return (f'[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "dlgrade"\nversion = "{this}"\nrequires-python = ">=3.10"\n'
            f"dependencies = [\n{listed},\n]\n\n"
            '[project.scripts]\ndlgrade = "autograder.cli:main"\n\n'
            '[tool.setuptools.packages.find]\ninclude = ["autograder*"]\n\n'
            '[tool.setuptools.package-data]\nautograder = ["runtime/*.py", "reporting/*.json", '
            '"integrations/gradescope_scripts/*.sh"]\n')


def _torch_requirement() -> str:
    """This installation's torch pin (``torch==X``), from its metadata."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        deps = requires("dlgrade") or []
    except PackageNotFoundError:
        deps = []
    pins = [d.split(";")[0].strip() for d in deps if re.match(r"torch\s*==", d)]
    return pins[0] if pins else "torch"


def script(name: str, values: dict[str, str]) -> str:
    """The bundle's script ``name`` (a file in ``gradescope_scripts/``) with its ``@KEY@`` placeholders filled."""
    text = (SCRIPTS / name).read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise ValueError(f"{SCRIPTS / name} has placeholders nothing fills: {', '.join(left)}")
    return text


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, _EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    zf.writestr(info, data)


__all__ = ["build_bundle"]

"""Packaging beyond pyproject.toml: a wheel carries the built-in course (this repository's root is a course folder)
inside the package, as ``autograder/builtin_course/``, for ``dlgrade init`` and ``dlgrade demo``. An editable install
finds the checkout instead (``autograder.course.builtin_course``)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# the course folder's own files: nbgrader's config, source/ and its release folder, and dlgrade's per-assignment files
COURSE = ("nbgrader_config.py", "source", "assignments", "solutions", "checks", "probes")


class BuildWithCourse(build_py):
    """build_py, then the built-in course copied into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        root, target = Path(__file__).resolve().parent, Path(self.build_lib) / "autograder" / "builtin_course"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in COURSE:
            if (root / name).is_dir():
                shutil.copytree(root / name, target / name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
            else:
                shutil.copy2(root / name, target / name)


setup(cmdclass={"build_py": BuildWithCourse})

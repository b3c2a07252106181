"""The README describes the code as it is: every module in the layout table, every part of a course folder there
too, every setting in the settings table."""

from __future__ import annotations

import re
from pathlib import Path

from autograder.course import CONFIG, SALT_FILE, Course

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_layout_table_names_every_module_and_benchmark() -> None:
    layout = _section("Layout")
    files = [f for f in ROOT.glob("autograder/**/*.py") if "builtin_course" not in f.parts]
    files += [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("autograder/**/gradescope_schema.json")]
    missing = [str(f.relative_to(ROOT)) for f in files
               if f.name not in ("__init__.py", "__main__.py")
               and f"`{f.name}`" not in layout and f"`{f.relative_to(ROOT)}`" not in layout]
    assert files and missing == []


def test_the_layout_table_names_every_subpackage_and_its_test_folder() -> None:
    layout = _section("Layout")
    packages = sorted(p.parent.name for p in ROOT.glob("autograder/*/__init__.py"))
    assert packages and [p for p in packages if f"`autograder/{p}/`" not in layout] == []
    assert [p for p in packages if not (ROOT / "tests" / p).is_dir()] == []


def test_the_layout_table_names_every_part_of_the_course_folder() -> None:
    """The repository's root is the built-in course: each folder and file a course folder holds
    (autograder/course/folder.py) is named in the layout table."""
    layout = _section("Layout")
    course = Course.at(ROOT)
    folders = [course.directories["source_directory"], course.directories["release_directory"], "solutions",
               "checks", "probes"]
    assert all((ROOT / folder).is_dir() for folder in folders)
    missing = [f"{folder}/" for folder in folders if f"`{folder}/" not in layout]
    missing += [name for name in (CONFIG, SALT_FILE) if f"`{name}`" not in layout]
    assert missing == []


def test_the_settings_table_lists_every_variable_the_code_reads() -> None:
    read = {m for f in ROOT.glob("autograder/**/*.py") for m in re.findall(r"DLGRADE_[A-Z_]+", f.read_text())}
    first_cells = [row.split("|")[1] for row in _section("Settings").splitlines() if row.startswith("| `")]
    documented = {m for cell in first_cells for m in re.findall(r"`(DLGRADE_[A-Z_]+)`", cell)}
    assert read and read <= documented, sorted(read - documented)

"""nbgrader settings for the course: run `nbgrader generate_assignment <id>` in this folder (the course folder)."""

import re
from pathlib import Path

c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# Released notebooks are committed; the gradebook of a real course lives with the course, not here.
c.GenerateAssignment.force = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ExecutePreprocessor.timeout = 120

# LMS downloads: `nbgrader zip_collect <id>` sorts a zip of files named `<student>_<notebook>.ipynb` (Moodle/Canvas
# style) into submitted/<student>/<id>/<notebook>.ipynb. The pattern is matched against the file's full path (hence
# the leading `.*/`). Accepted, besides `ada_linear_regression.ipynb`: student ids with underscores
# (`jane_doe_mlp.ipynb`), a late flag after the student (`ada_LATE_...`, `ada_late_...`) or before `.ipynb`
# (`..._late.ipynb`), Canvas's numeric ids (`doejane_LATE_123_456_mlp.ipynb`), and a browser's or Canvas's copy
# numbers (`ada_mlp (1).ipynb`, `ada_mlp-1.ipynb`). The notebook names are this course's own, read from source/ (one
# notebook per assignment), longest first: a new assignment needs no edit here. A student with two files for one
# notebook: zip_collect keeps one and warns; keep the newer, then run zip_collect with --force.
_here = Path(__file__).resolve().parent
NOTEBOOKS = "|".join(sorted({re.escape(p.stem) for p in _here.glob("source/*/*.ipynb")}, key=lambda n: (-len(n), n)))
c.FileNameCollectorPlugin.named_regexp = (
    r".*/(?P<student_id>[^/]+?)_(?:(?:LATE|late)_)?(?:\d+_\d+_)?"
    rf"(?P<file_id>{NOTEBOOKS or 'no_notebook_yet'})(?:_(?:LATE|late))?(?: ?\(\d+\)|-\d+)?\.ipynb$"
)

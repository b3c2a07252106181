"""nbgrader settings for the course: run `nbgrader generate_assignment <id>` from the repository root."""

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
# numbers (`ada_mlp (1).ipynb`, `ada_mlp-1.ipynb`). The notebook names are the course's (tests/test_nbgrader_dropin.py
# checks them against autograder/course.py). A student with two files for one notebook: zip_collect keeps one and
# warns; keep the newer, then run zip_collect with --force.
NOTEBOOKS = "linear_regression|mlp|training_loop|backprop|classification"
c.FileNameCollectorPlugin.named_regexp = (
    r".*/(?P<student_id>[^/]+?)_(?:(?:LATE|late)_)?(?:\d+_\d+_)?"
    rf"(?P<file_id>{NOTEBOOKS})(?:_(?:LATE|late))?(?: ?\(\d+\)|-\d+)?\.ipynb$"
)

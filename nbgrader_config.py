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

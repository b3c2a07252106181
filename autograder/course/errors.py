"""The one error a course folder gives: what is missing or wrong, naming the file or setting to fix."""


class CourseError(LookupError):
    """A course, an assignment or a file of it is missing or wrong (the message names the file to fix)."""

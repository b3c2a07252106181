"""The course definition: a course folder and its assignments (``folder``), the course's own notebook with each
graded cell's role and points (``definition``: the one source of points), reading a notebook and the roles of its cells
(``notebook``: the one reader of nbgrader's cell metadata), exact point arithmetic (``points``), nbgrader's gradebook
opened for reading and writing (``nbgrader_api``) and the error a course gives (``errors``). Everything course-specific
is read here, once."""

from .errors import CourseError
from .folder import (
    CONFIG,
    PACKAGE,
    SALT_FILE,
    Assignment,
    Course,
    builtin_course,
    course_probes,
    find,
    find_optional,
    module_name,
    read_salt,
    sandbox_imports,
)

__all__ = ["CONFIG", "PACKAGE", "SALT_FILE", "Assignment", "Course", "CourseError", "builtin_course",
           "course_probes", "find", "find_optional", "module_name", "read_salt", "sandbox_imports"]

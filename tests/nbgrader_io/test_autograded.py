"""The autograded notebook dlgrade leaves for nbgrader: the submission as graded, every graded cell there (deleted ones
restored), and one written whatever the submission holds."""

from __future__ import annotations

import json

from conftest import A1, copy_course

from autograder.authoring import samples
from autograder.course.definition import course_notebook
from autograder.nbgrader_io import autograded

NAME = A1.notebook




def test_a_submission_whose_cells_cannot_be_copied_gets_the_released_cells_and_a_note(tmp_path, monkeypatch) -> None:
    """Whatever goes wrong copying a submission's cells, the autograded notebook is written (from the release, its
    answers counted blank) and the student's notes say so."""
    from autograder.course.notebook import read_cells
    from autograder.reporting.results import SubmissionResult, TestResult

    real = autograded.autograded_notebook
    course = copy_course(tmp_path / "course", [A1.id])
    assignment = course.assignment(A1.id)
    released = read_cells(assignment.released)

    def fussy(cells, result, nb):
        if cells != released:
            raise RecursionError("too deep")
        return real(cells, result, nb)

    monkeypatch.setattr(autograded, "autograded_notebook", fussy)
    result = SubmissionResult("s", A1.id, 1, 1, 0, "", [TestResult("mse_loss: x", 1, 1, "", function="mse_loss")])
    result.cells = read_cells(samples.write(samples.build(A1), tmp_path / NAME))
    path = autograded.write_autograded(assignment, tmp_path / "submitted", result, course_notebook(assignment))
    assert path == course.folder("autograded") / "s" / A1.id / NAME
    assert path.is_file() and "could not be copied into it (RecursionError)" in result.output
    assert result.extra["nbgrader"]["unanswered"] == sorted(
        c.grade_id for c in course_notebook(assignment).cells if c.has_response)


def test_autograded_notebook_adds_back_deleted_graded_cells(tmp_path) -> None:
    """A student who deleted a test cell and a written answer still sees the test's results; the answer scores 0."""
    nb = samples.build(A1)
    nb.cells = [c for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade_id") not in ("test_mse_loss", "derive_mse_gradient")]
    path = samples.write(nb, tmp_path / NAME)
    from autograder.course.notebook import read_cells
    from autograder.reporting.results import SubmissionResult, TestResult

    result = SubmissionResult("s", A1.id, 1, 1, 0, "", [TestResult("mse_loss: x", 1, 1, "", function="mse_loss")])
    document, unanswered = autograded.autograded_notebook(read_cells(path), result, course_notebook(A1))
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in document["cells"]]
    assert ids.index("test_mse_loss") == ids.index("mse_loss") + 1
    assert "derive_mse_gradient" in ids and unanswered == {"derive_mse_gradient"}
    json.dumps(document)

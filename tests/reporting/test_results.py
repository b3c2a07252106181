"""results.json: Gradescope's schema, names prefixed with the function, small, atomic; feedback.html escaped."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import A1
from sklearn.datasets import make_regression

from autograder.authoring import samples
from autograder.course.notebook import read_cells
from autograder.reporting import results as res
from autograder.reporting.files import write_result
from autograder.reporting.results import SubmissionResult, read_result

SCHEMA = json.loads((Path(res.__file__).parent / "gradescope_schema.json").read_text())


@pytest.mark.parametrize("kind", ["solved", "mistakes", "broken"])
def test_results_json_validates_against_the_gradescope_schema(grade, tmp_path, kind) -> None:
    nb = {"solved": samples.build(A1), "mistakes": samples.build(A1, A1.suite.typical_mistakes),
          "broken": b"{"}[kind]
    result = grade(A1, nb)
    write_result(tmp_path, result)
    document = json.loads((tmp_path / "results.json").read_text())
    jsonschema.validate(document, SCHEMA)
    functions = set(A1.suite.functions)
    assert all(t["name"].split(":")[0] in functions for t in document["tests"])
    assert read_result(tmp_path).score == result.score


def test_feedback_html_escapes_what_a_student_wrote(tmp_path) -> None:
    result = SubmissionResult("<script>", A1.id, 0, 1, 0.1, "<b>note</b>",
                              [res.TestResult("mse_loss: x", 0, 1, "got <img src=x onerror=alert(1)>")])
    write_result(tmp_path, result)
    html = (tmp_path / "feedback.html").read_text()
    assert "<script>" not in html and "<img" not in html and "&lt;img src=x" in html


def test_the_worked_example_reproduces_the_lectures_numbers() -> None:
    """The notebook's seeded example, run with the reference: true and fitted coefficients as in the lecture."""
    cell = next(c for c in read_cells(A1.source) if "make_regression(n_samples=1000" in c.source)
    assert "np.random.seed(42)" in cell.source
    np.random.seed(42)
    X, y, coef = make_regression(n_samples=1000, n_features=2, n_informative=2, n_targets=1, bias=0, noise=10,
                                 coef=True)
    assert np.allclose(coef, [40.71064891, 6.60098441])
    assert np.allclose(A1.reference.normal_equation(X, y), [41.06972678, 6.79965716])

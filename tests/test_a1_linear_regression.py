"""a1_linear_regression: full marks for the reference and every correct variant, zero for the release, and each
catalogued mistake costing only its own function, with feedback a student can act on."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_full_marks, assert_full_marks_and_zero, assert_mistake_caught, outputs

from autograder import course, samples

A1 = "a1_linear_regression"
SUITE = course.suite(A1)


def test_reference_gets_full_marks_and_the_release_zero(grade) -> None:
    assert_full_marks_and_zero(grade, A1)


def test_the_release_is_reported_as_not_implemented_yet(grade) -> None:
    text = outputs(grade(A1, samples.build(A1, solved=False)), "normal_equation")
    assert "normal_equation raised NotImplementedError: it has not been implemented yet" in text


@pytest.mark.parametrize("mistake", SUITE.mistakes, ids=[f"{m.function}-{i}" for i, m in enumerate(SUITE.mistakes)])
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, mistake) -> None:
    assert_mistake_caught(grade, A1, mistake)


@pytest.mark.parametrize("variant", SUITE.variants, ids=[v.name for v in SUITE.variants])
def test_a_correct_variant_gets_full_marks(grade, variant) -> None:
    assert_full_marks(grade, A1, variant)


def test_exception_feedback_shows_only_the_students_own_traceback_lines(grade) -> None:
    code = "def mse_loss(beta, X, y):\n    r = X @ beta - y\n    return helper(r)\n"
    text = outputs(grade(A1, samples.build(A1, {"mse_loss": code})), "mse_loss")
    assert "NameError: name 'helper' is not defined" in text
    assert "line 3, in mse_loss: return helper(r)" in text
    assert "autograder" not in text and "dlgrade_runtime" not in text and "solutions" not in text


def test_hard_coding_the_public_answer_fails_the_hidden_cases(grade, worker) -> None:
    from autograder.checks.a1_linear_regression import regression_data
    from autograder.suite import Trial

    check = next(c for c in SUITE.checks if c.function == "normal_equation")
    X, y = regression_data(Trial(check, worker, None, 0, True, "cpu"))  # only to rebuild the public input
    answer = np.linalg.solve(X.T @ X, X.T @ y).tolist()
    code = f"def normal_equation(X, y):\n    return np.array({answer})\n"
    result = grade(A1, samples.build(A1, {"normal_equation": code}))
    first = next(t for t in result.tests if t.name == check.name)
    assert first.score == 0 and "[on a hidden test case]" in first.output

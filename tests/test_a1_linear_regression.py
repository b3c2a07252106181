"""a1_linear_regression: full marks for the reference, zero for the release, and one mistake per function
costing only that function, each with feedback a student can act on."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_full_marks_and_zero, assert_mistake_caught, outputs

from autograder import course, samples

A1 = "a1_linear_regression"

# (function, replacement cell, fragment the feedback must contain)
MISTAKES = [
    ("normal_equation",
     "def normal_equation(X, y):\n    return np.linalg.solve(X.T @ X, X.T @ y).reshape(-1, 1)\n",
     "has shape (3, 1); expected (3,)"),
    ("normal_equation",
     "def normal_equation(X, y):\n    return np.linalg.solve(X.T @ X + np.eye(X.shape[1]), X.T @ y)\n",
     "differs from the expected values"),
    ("add_intercept", "def add_intercept(X):\n    return np.hstack([X, np.ones((X.shape[0], 1))])\n",
     "differs from the expected values at index (0, 0)"),
    ("simple_linear_regression",
     "def simple_linear_regression(x, y):\n    b1 = np.cov(x, y)[0, 1] / np.var(x)\n"
     "    return y.mean() - b1 * x.mean(), b1\n",
     "(beta0, beta1)[0] differs"),
    ("mse_loss", "def mse_loss(beta, X, y):\n    return float(np.mean((X @ beta - y) ** 2))\n",
     "exactly 2 times the expected one; the loss has a ½ in front"),
    ("mse_gradient", "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y)\n",
     "exactly n times the expected one"),
    ("mse_gradient", "def mse_gradient(beta, X, y):\n    return 2 * X.T @ (X @ beta - y) / len(y)\n",
     "exactly 2 times the expected one"),
    ("mse_gradient", "def mse_gradient(beta, X, y):\n    return X.T @ (y - X @ beta) / len(y)\n",
     "exactly -1 times the expected one; the residual is X beta − y"),
    ("gradient_descent",
     "def gradient_descent(X, y, lr, n_steps, beta_init=None):\n"
     "    beta = np.zeros(X.shape[1]) if beta_init is None else beta_init\n"
     "    path = []\n"
     "    for _ in range(n_steps):\n"
     "        beta = beta - lr * mse_gradient(beta, X, y)\n"
     "        path.append(beta)\n"
     "    return np.array(path)\n",
     "missing its first row"),
    ("gradient_descent",
     "def gradient_descent(X, y, lr, n_steps, beta_init=None):\n"
     "    beta = np.zeros(X.shape[1]) if beta_init is None else beta_init\n"
     "    path = [beta.copy()]\n"
     "    for _ in range(n_steps):\n"
     "        beta -= lr * mse_gradient(beta, X, y)\n"
     "        path.append(beta.copy())\n"
     "    return np.array(path)\n",
     "changed its input beta_init in place"),
    ("minibatch_sgd",
     "def minibatch_sgd(X, y, lr, n_epochs, batch_size, seed):\n"
     "    beta = np.zeros(X.shape[1])\n"
     "    for _ in range(n_epochs):\n"
     "        perm = np.random.default_rng(seed).permutation(len(y))\n"
     "        for s in range(0, len(y), batch_size):\n"
     "            idx = perm[s:s + batch_size]\n"
     "            beta = beta - lr * mse_gradient(beta, X[idx], y[idx])\n"
     "    return beta\n",
     "beta differs"),
    ("add_intercept", "def add_intercept(X):\n    X[:, 0] = 1.0\n    return X\n", "changed its input X in place"),
    ("mse_loss", "# the student deleted the function\n", "`mse_loss` is not defined in your notebook"),
    ("simple_linear_regression",
     "def simple_linear_regression(x, y):\n    raise ValueError('x and y differ in length')\n",
     "simple_linear_regression raised ValueError: x and y differ in length"),
]


def test_reference_gets_full_marks_and_the_release_zero(grade) -> None:
    assert_full_marks_and_zero(grade, A1)


def test_the_release_is_reported_as_not_implemented_yet(grade) -> None:
    text = outputs(grade(A1, samples.build(A1, solved=False)), "normal_equation")
    assert "normal_equation raised NotImplementedError: it has not been implemented yet" in text


@pytest.mark.parametrize(("function", "code", "fragment"), MISTAKES,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, function, code, fragment) -> None:
    assert_mistake_caught(grade, A1, function, code, fragment)


def test_exception_feedback_shows_only_the_students_own_traceback_lines(grade) -> None:
    code = "def mse_loss(beta, X, y):\n    r = X @ beta - y\n    return helper(r)\n"
    text = outputs(grade(A1, samples.build(A1, {"mse_loss": code})), "mse_loss")
    assert "NameError: name 'helper' is not defined" in text
    assert "line 3, in mse_loss: return helper(r)" in text
    assert "autograder" not in text and "dlgrade_runtime" not in text and "solutions" not in text


def test_hard_coding_the_public_answer_fails_the_hidden_cases(grade, worker) -> None:
    from autograder.checking import Trial

    check = next(c for c in course.suite(A1).checks if c.function == "normal_equation")
    public = Trial(check, worker, None, 0, True, "cpu")  # only to rebuild the public input
    from autograder.checks.a1_linear_regression import regression_data

    X, y = regression_data(public)
    answer = np.linalg.solve(X.T @ X, X.T @ y).tolist()
    code = f"def normal_equation(X, y):\n    return np.array({answer})\n"
    result = grade(A1, samples.build(A1, {"normal_equation": code}))
    first = next(t for t in result.tests if t.name == check.name)
    assert first.score == 0 and "[on a hidden test case]" in first.output


def test_hidden_cases_never_print_values(grade) -> None:
    code = "def mse_gradient(beta, X, y):\n    g = X.T @ (X @ beta - y) / len(y)\n    return g + (len(y) != 20)\n"
    text = outputs(grade(A1, samples.build(A1, {"mse_gradient": code})), "mse_gradient")
    assert "hidden test case" in text
    assert "got " not in text and "expected 0" not in text

"""Hidden cases reveal nothing that depends on hidden values: a submission that is right on the public example and
wrong on hidden cases (in every way a value can be wrong, or by raising, crashing or exiting with hidden inputs in
its message or its exit code) gets the same feedback whatever the hidden inputs are, with no magnitude, size, index,
label or message of its own; the public example keeps its detail."""

from __future__ import annotations

import pytest
from conftest import A1, copy_course, outputs

from autograder.authoring import samples
from autograder.checking.trial import Trial
from autograder.grading.grader import Grader


def _public_marker() -> float:
    check = next(c for c in A1.suite.checks if c.function == "normal_equation")
    regression_data = check.run.__globals__["regression_data"]  # the checks' own input maker
    X, _ = regression_data(Trial(check, None, None, 0, True, "cpu"))
    return float(X[0, 0])


def _wrong_when_hidden(marker: float) -> dict[str, str]:
    """Each function right on the public example (recognised by its first input) and wrong on hidden cases."""
    public = f"abs(X[0, 0] - {marker!r}) < 1e-12"
    return {
        "mse_loss": "def mse_loss(beta, X, y):\n    r = X @ beta - y\n    loss = float(r @ r / (2 * len(y)))\n"
                    f"    return loss if {public} else 1.01 * loss\n",
        "normal_equation": "def normal_equation(X, y):\n    beta = np.linalg.solve(X.T @ X, X.T @ y)\n"
                           f"    return beta if {public} else beta.reshape(-1, 1)\n",
        "add_intercept": "def add_intercept(X):\n    out = np.hstack([np.ones((X.shape[0], 1)), X])\n"
                         f"    if not ({public}):\n        out[len(X) // 2, 1] = np.nan\n    return out\n",
        "mse_gradient": "def mse_gradient(beta, X, y):\n"
                        f"    if not ({public}):\n"
                        "        raise ValueError(f'secret {X.sum()!r} {len(y)}')\n"
                        "    return X.T @ (X @ beta - y) / len(y)\n",
        "gradient_descent": "def gradient_descent(X, y, lr, n_steps, beta_init=None):\n"
                            f"    if not ({public}):\n        import os\n        os._exit(len(y) % 200 + 3)\n"
                            "    beta = np.zeros(X.shape[1]) if beta_init is None else np.array(beta_init, float)\n"
                            "    path = [beta]\n    for _ in range(n_steps):\n"
                            "        beta = beta - lr * mse_gradient(beta, X, y)\n        path.append(beta)\n"
                            "    return np.array(path)\n",
        "simple_linear_regression": "def simple_linear_regression(x, y):\n    if len(x) != 12:\n"
                                    "        raise type(f'Size{len(x)}Error', (Exception,), {})('secret')\n"
                                    "    b1 = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)\n"
                                    "    return y.mean() - b1 * x.mean(), b1\n",
    }


@pytest.fixture
def hidden_feedback(worker, tmp_path):
    """grade the submission in two courses with their own seed salts (dlgrade.toml: two different sets of hidden
    inputs); feedback per function."""
    nb = samples.build(A1, _wrong_when_hidden(_public_marker()))
    runs, seeds = [], []
    for salt in ("one course", "another course"):
        course = copy_course(tmp_path / salt.replace(" ", "-"), [A1.id])
        (course.root / "dlgrade.toml").write_text(f'seed_salt = "{salt}"\n')
        assignment = course.assignment(A1.id)
        seeds.append([check.runs for check in assignment.suite.checks])
        folder = tmp_path / "submitted" / salt.replace(" ", "-") / A1.id
        samples.write(nb, folder / A1.notebook)
        result = Grader(assignment).grade(folder, worker, "student")
        runs.append({f: outputs(result, f) for f in assignment.points})
    assert seeds[0] != seeds[1] and seeds[0][0][0] == seeds[1][0][0]  # other hidden seeds, the same public one
    return runs


FUNCTIONS = ["mse_loss", "normal_equation", "add_intercept", "mse_gradient", "gradient_descent",
             "simple_linear_regression"]


@pytest.mark.slow
@pytest.mark.parametrize("function", FUNCTIONS)
def test_hidden_feedback_is_the_same_whatever_the_hidden_inputs(hidden_feedback, function) -> None:
    first, second = (run[function] for run in hidden_feedback)
    assert "[on a hidden test case]" in first, first
    assert first == second
    # a crash quotes the student's own failing lines from the submitted cell (indented); nothing else may vary
    prose = "\n".join(line for line in first.splitlines() if not line.startswith("  "))
    source = _wrong_when_hidden(_public_marker())[function]
    for quoted in (line for line in first.splitlines() if line.startswith("  ")):
        assert quoted.split(": ", 1)[1].removesuffix(" [on a hidden test case]") in source, quoted
    for leak in ("max abs", "max rel", "got ", "index", "shape (", "secret", "Size", "exit code", "of 1 entries",
                 "line "):
        assert leak not in prose, (leak, first)


def test_hidden_feedback_keeps_a_fixed_category_and_a_confirmed_diagnosis(hidden_feedback) -> None:
    text = hidden_feedback[0]
    assert "the loss differs from the expected values." in text["mse_loss"]
    assert "beta has the wrong shape. Hint: the values are right but the shape is not" in text["normal_equation"]
    assert "contains NaN where a finite value was expected" in text["add_intercept"]
    # the line that raised, quoted from the notebook; not the message that raise computed from the hidden input
    assert ("mse_gradient raised ValueError\n  the cell defining mse_gradient, line 3, in mse_gradient: raise "
            "ValueError(f'secret {X.sum()!r} {len(y)}')") in text["mse_gradient"]
    assert "raised an exception" in text["simple_linear_regression"]
    assert "crashed (its process ended)" in text["gradient_descent"]


def test_the_public_example_keeps_its_detail(grade) -> None:
    code = "def mse_loss(beta, X, y):\n    r = X @ beta - y\n    return 1.01 * float(r @ r / (2 * len(y)))\n"
    text = outputs(grade(A1, samples.build(A1, {"mse_loss": code})), "mse_loss")
    assert "[on the public example (seed 0)]" in text and "got " in text and "max abs error" in text
    crash = "def add_intercept(X):\n    import os\n    os._exit(7)\n"
    assert "exit code 7" in outputs(grade(A1, samples.build(A1, {"add_intercept": crash})), "add_intercept")


def test_every_hidden_message_is_built_from_value_free_text() -> None:
    """The rule in one place: a hidden case shows Problem.text and the hint, never the detail."""
    from autograder.checking.disclosure import Problem, exception_type, shown

    problem = Problem("beta differs from the expected values.", "beta differs: got 1.5, expected 2", "a hint.")
    assert shown(problem, public=False) == "beta differs from the expected values. Hint: a hint."
    assert "got 1.5" in shown(problem, public=True)
    assert exception_type("ValueError") == "ValueError"
    assert exception_type("Size17Error") == "an exception"
    assert exception_type(None) == "an exception"

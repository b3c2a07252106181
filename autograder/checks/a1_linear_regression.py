"""Checks for a1_linear_regression: numpy functions, compared with the reference in float64."""

from __future__ import annotations

import numpy as np

from ..checking import Suite, Trial
from ..compare import factor_hint

SUITE = Suite(
    "a1_linear_regression",
    "linear_regression.ipynb",
    depends={"gradient_descent": ["mse_gradient"], "minibatch_sgd": ["mse_gradient"]},
    typical_mistakes={
        "mse_gradient": "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y)  # forgot to divide by n\n",
        "normal_equation": "def normal_equation(X, y):\n    return np.linalg.solve(X.T @ X, X.T @ y).reshape(-1, 1)\n",
    },
)
check = SUITE.check


def regression_data(t: Trial, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A well-conditioned problem; the public seed has a fixed, small size, hidden seeds vary it."""
    n, d = (20, 3) if t.public else (int(t.rng.integers(15, 60)), int(t.rng.integers(2, 6)))
    X = t.rng.normal(size=(n, d))
    beta = t.rng.normal(scale=3.0, size=d)
    return X, X @ beta + noise * t.rng.normal(size=n)


def gradient_hints(n: int):
    return [factor_hint([("n", n, "divide the sum by n (use the mean, not the sum)"),
                         ("1/n", 1 / n, "divide by n only once"),
                         ("2", 2.0, "the ½ in the loss cancels the 2 from differentiating the square"),
                         ("-1", -1.0, "the residual is X beta − y, not y − X beta")])]


# -- normal_equation -------------------------------------------------------------------------------

@check("normal_equation", "matches the reference on a random full-rank X")
def _(t: Trial) -> None:
    X, y = regression_data(t)
    t.expect_close(t.call("normal_equation", X, y), t.ref("normal_equation", X, y), "beta")


@check("normal_equation", "recovers the exact coefficients from noise-free data")
def _(t: Trial) -> None:
    X, y = regression_data(t, noise=0.0)
    t.expect_close(t.call("normal_equation", X, y), t.ref("normal_equation", X, y), "beta")


@check("normal_equation", "works with a single feature column")
def _(t: Trial) -> None:
    X, y = regression_data(t)
    X = X[:, :1]
    t.expect_close(t.call("normal_equation", X, y), t.ref("normal_equation", X, y), "beta")


# -- add_intercept ---------------------------------------------------------------------------------

@check("add_intercept", "prepends a column of ones")
def _(t: Trial) -> None:
    X, _ = regression_data(t)
    t.expect_close(t.call("add_intercept", X), t.ref("add_intercept", X), "the result")


# -- simple_linear_regression ----------------------------------------------------------------------

@check("simple_linear_regression", "matches the reference on random data")
def _(t: Trial) -> None:
    n = 12 if t.public else int(t.rng.integers(10, 80))
    x = t.rng.normal(loc=2.0, size=n)
    y = 1.5 - 0.7 * x + t.rng.normal(scale=0.3, size=n)
    t.expect_close(t.call("simple_linear_regression", x, y), t.ref("simple_linear_regression", x, y),
                   "(beta0, beta1)")


# -- mse_loss --------------------------------------------------------------------------------------

@check("mse_loss", "matches the reference on random beta, X and y")
def _(t: Trial) -> None:
    X, y = regression_data(t)
    beta = t.rng.normal(size=X.shape[1])
    hints = [factor_hint([("2", 2.0, "the loss has a ½ in front: 1/(2n) Σ (X beta − y)²"),
                          ("n", float(len(y)), "divide the sum by 2n"),
                          ("1/2", 0.5, "the factor is 1/(2n), not 1/(4n)")])]
    t.expect_close(t.call("mse_loss", beta, X, y), t.ref("mse_loss", beta, X, y), "the loss", hints=hints)


# -- mse_gradient ----------------------------------------------------------------------------------

@check("mse_gradient", "matches the reference on random beta, X and y")
def _(t: Trial) -> None:
    X, y = regression_data(t)
    beta = t.rng.normal(size=X.shape[1])
    t.expect_close(t.call("mse_gradient", beta, X, y), t.ref("mse_gradient", beta, X, y), "the gradient",
                   hints=gradient_hints(len(y)))


@check("mse_gradient", "works with a single feature column")
def _(t: Trial) -> None:
    X, y = regression_data(t)
    X, beta = X[:, :1], t.rng.normal(size=1)
    t.expect_close(t.call("mse_gradient", beta, X, y), t.ref("mse_gradient", beta, X, y), "the gradient",
                   hints=gradient_hints(len(y)))


# -- gradient_descent ------------------------------------------------------------------------------

def trajectory_hint(got, want) -> str | None:
    if isinstance(got, np.ndarray) and got.ndim == 2 and got.shape == (want.shape[0] - 1, want.shape[1]):
        return "the trajectory is missing its first row: row 0 must be beta_init (zeros when None)."
    if isinstance(got, np.ndarray) and got.shape == want.shape[::-1]:
        return "the trajectory is transposed: one row per step, one column per coefficient."
    return None


@check("gradient_descent", "trajectory from zeros matches the reference")
def _(t: Trial) -> None:
    X, y = regression_data(t)
    steps = 25 if t.public else int(t.rng.integers(5, 40))
    got = t.call("gradient_descent", X, y, 0.1, steps)
    t.expect_close(got, t.ref("gradient_descent", X, y, 0.1, steps), "the trajectory", iterative=True,
                   hints=[trajectory_hint])


@check("gradient_descent", "starts from beta_init when one is given")
def _(t: Trial) -> None:
    X, y = regression_data(t)
    start = t.rng.normal(size=X.shape[1])
    got = t.call("gradient_descent", X, y, 0.05, 10, beta_init=start)
    t.expect_close(got, t.ref("gradient_descent", X, y, 0.05, 10, beta_init=start), "the trajectory",
                   iterative=True, hints=[trajectory_hint])


# -- minibatch_sgd ---------------------------------------------------------------------------------

@check("minibatch_sgd", "matches the reference (shuffling from the seed, in order)")
def _(t: Trial) -> None:
    X, y = regression_data(t)
    seed = int(t.rng.integers(0, 10_000))
    args = (X, y, 0.05, 5, 4, seed)
    t.expect_close(t.call("minibatch_sgd", *args), t.ref("minibatch_sgd", *args), "beta", iterative=True)


@check("minibatch_sgd", "handles a last batch smaller than batch_size")
def _(t: Trial) -> None:
    X, y = regression_data(t)
    args = (X, y, 0.05, 3, 7, 11)
    t.expect_close(t.call("minibatch_sgd", *args), t.ref("minibatch_sgd", *args), "beta", iterative=True)

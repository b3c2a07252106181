"""Checks for a1_linear_regression: numpy functions, compared with the reference in float64."""

from __future__ import annotations

import numpy as np

from autograder import Suite, TensorData, Trial, Variant, factor_hint, matches, mistake

SUITE = Suite(
    depends={"gradient_descent": ["mse_gradient"], "minibatch_sgd": ["mse_gradient"]},
)
check = SUITE.check
near_miss = SUITE.near_miss


def regression_data(t: Trial, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A well-conditioned problem; the public seed has a fixed, small size, hidden seeds vary it."""
    n, d = (20, 3) if t.public else (int(t.rng.integers(15, 60)), int(t.rng.integers(2, 6)))
    X = t.rng.normal(size=(n, d))
    beta = t.rng.normal(scale=3.0, size=d)
    return X, X @ beta + noise * t.rng.normal(size=n)


GRADIENT = "the gradient is (1/n) Xᵀ (X beta − y), with n the number of samples (rows of X)"


def gradient_hints(n: int):
    """A gradient off by a known factor. Each states what the factor is and what the gradient must be, not a cause:
    one factor has several (a sum not divided by n, or divided by the wrong length; a residual y − X beta, or a
    negated result)."""
    return [factor_hint([("n", n, f"divide the sum by n, the number of samples: {GRADIENT}"),
                         ("1/n", 1 / n, f"divide by n only once: {GRADIENT}"),
                         ("2", 2.0, f"{GRADIENT}, with no factor 2: the ½ in the loss cancels the 2 from "
                                    "differentiating the square"),
                         ("-1", -1.0, f"{GRADIENT}: check the sign of the residual, X beta − y, and that nothing "
                                      "negates the result")])]


# -- normal_equation -------------------------------------------------------------------------------

@check("normal_equation", "matches the reference on a random full-rank X")
def normal_equation_matches_the_reference_on_a_random_full_rank_x(t: Trial) -> None:
    X, y = regression_data(t)
    t.expect_close(t.call("normal_equation", X, y), t.ref("normal_equation", X, y), "beta")


@check("normal_equation", "recovers the exact coefficients from noise-free data")
def normal_equation_recovers_the_exact_coefficients_from_noise_free_data(t: Trial) -> None:
    X, y = regression_data(t, noise=0.0)
    t.expect_close(t.call("normal_equation", X, y), t.ref("normal_equation", X, y), "beta")


@check("normal_equation", "works with a single feature column")
def normal_equation_works_with_a_single_feature_column(t: Trial) -> None:
    X, y = regression_data(t)
    X = X[:, :1]
    t.expect_close(t.call("normal_equation", X, y), t.ref("normal_equation", X, y), "beta")


# -- add_intercept ---------------------------------------------------------------------------------

@check("add_intercept", "prepends a column of ones")
def add_intercept_prepends_a_column_of_ones(t: Trial) -> None:
    X, _ = regression_data(t)
    t.expect_close(t.call("add_intercept", X), t.ref("add_intercept", X), "the result")


SUITE.inputs_unchanged("add_intercept", lambda t: ([regression_data(t)[0]], {}))


# -- simple_linear_regression ----------------------------------------------------------------------

def as_pair(value):
    """Any length-2 sequence of numbers (tuple, list, array, tensor: the contract accepts them all) as an array,
    or the value unchanged when it is none of these."""
    array = value.array if isinstance(value, TensorData) else value
    if isinstance(array, np.ndarray) and array.shape == (2,) and array.dtype.kind in "iuf":
        return array.astype(np.float64)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        items = [v.array if isinstance(v, TensorData) else v for v in value]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) or
               isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "iuf" for v in items):
            return np.array([float(np.asarray(v).reshape(())) for v in items])
    return value


@check("simple_linear_regression", "matches the reference on random data")
def simple_linear_regression_matches_the_reference_on_random_data(t: Trial) -> None:
    n = 12 if t.public else int(t.rng.integers(10, 80))
    x = t.rng.normal(loc=2.0, size=n)
    y = 1.5 - 0.7 * x + t.rng.normal(scale=0.3, size=n)
    want = np.array(t.ref("simple_linear_regression", x, y), dtype=np.float64)
    t.expect_close(as_pair(t.call("simple_linear_regression", x, y)), want, "the pair (beta0, beta1)",
                   hints=[swap_hint])


def swap_hint(got, want) -> str | None:
    """(slope, intercept) instead of (intercept, slope)."""
    if matches(got, np.asarray(want)[::-1]) and not matches(got, want):
        return "you returned (beta1, beta0): the intercept beta0 comes first, then the slope beta1."
    return None


# -- mse_loss --------------------------------------------------------------------------------------

@check("mse_loss", "matches the reference on random beta, X and y")
def mse_loss_matches_the_reference_on_random_beta_x_and_y(t: Trial) -> None:
    X, y = regression_data(t)
    beta = t.rng.normal(size=X.shape[1])
    t.expect_close(t.call("mse_loss", beta, X, y), t.ref("mse_loss", beta, X, y), "the loss",
                   hints=loss_hints(len(y)))


def loss_hints(n: int):
    return [factor_hint([("2", 2.0, "the loss has a ½ in front: 1/(2n) Σ (X beta − y)²"),
                         ("n", float(n), "the loss is 1/(2n) Σ (X beta − y)²: divide the sum by 2n"),
                         ("1/2", 0.5, "the loss is 1/(2n) Σ (X beta − y)², with a factor 1/(2n) once")])]


# -- mse_gradient ----------------------------------------------------------------------------------

@check("mse_gradient", "matches the reference on random beta, X and y")
def mse_gradient_matches_the_reference_on_random_beta_x_and_y(t: Trial) -> None:
    X, y = regression_data(t)
    beta = t.rng.normal(size=X.shape[1])
    t.expect_close(t.call("mse_gradient", beta, X, y), t.ref("mse_gradient", beta, X, y), "the gradient",
                   hints=gradient_hints(len(y)))


@check("mse_gradient", "works with a single feature column")
def mse_gradient_works_with_a_single_feature_column(t: Trial) -> None:
    X, y = regression_data(t)
    X, beta = X[:, :1], t.rng.normal(size=1)
    t.expect_close(t.call("mse_gradient", beta, X, y), t.ref("mse_gradient", beta, X, y), "the gradient",
                   hints=gradient_hints(len(y)))


# -- gradient_descent ------------------------------------------------------------------------------

def trajectory_hint(got, want) -> str | None:
    """The trajectory without its starting row."""
    if isinstance(got, np.ndarray) and got.shape == (want.shape[0] - 1, want.shape[1]) and matches(got, want[1:]):
        return "the trajectory is missing its first row: row 0 must be beta_init (zeros when None)."
    return None


@check("gradient_descent", "trajectory from zeros matches the reference")
def gradient_descent_trajectory_from_zeros_matches_the_reference(t: Trial) -> None:
    X, y = regression_data(t)
    steps = 25 if t.public else int(t.rng.integers(5, 40))
    got = t.call("gradient_descent", X, y, 0.1, steps)
    t.expect_close(got, t.ref("gradient_descent", X, y, 0.1, steps), "the trajectory", iterative=True,
                   hints=[trajectory_hint])


@check("gradient_descent", "starts from beta_init when one is given")
def gradient_descent_starts_from_beta_init_when_one_is_given(t: Trial) -> None:
    X, y = regression_data(t)
    start = t.rng.normal(size=X.shape[1])
    got = t.call("gradient_descent", X, y, 0.05, 10, beta_init=start)
    t.expect_close(got, t.ref("gradient_descent", X, y, 0.05, 10, beta_init=start), "the trajectory",
                   iterative=True, hints=[trajectory_hint])


def _descent_args(t: Trial) -> tuple[list, dict]:
    X, y = regression_data(t)
    return [X, y, 0.05, 3], {"beta_init": t.rng.normal(size=X.shape[1])}


SUITE.inputs_unchanged("gradient_descent", _descent_args)


# -- minibatch_sgd ---------------------------------------------------------------------------------

SGD_RECIPE = ("The contract fixes the shuffling recipe, so that every correct answer gives the same numbers: "
              "rng = np.random.default_rng(seed) once; each epoch perm = rng.permutation(n); batches "
              "idx = perm[start:start + batch_size] for start in range(0, n, batch_size), in order.")


def sgd_with(X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, orders: list[np.ndarray]) -> np.ndarray:
    """Mini-batch SGD with the correct gradient, visiting the rows in the given order each epoch."""
    beta = np.zeros(X.shape[1])
    for perm in orders:
        for start in range(0, len(y), batch_size):
            idx = perm[start : start + batch_size]
            beta = beta - lr * X[idx].T @ (X[idx] @ beta - y[idx]) / len(idx)
    return beta


def shuffle_hint(X: np.ndarray, y: np.ndarray, lr: float, n_epochs: int, batch_size: int, seed: int):
    """Recognise the usual departures from the recipe by replaying them."""
    n = len(y)
    legacy = np.random.RandomState(seed)
    candidates = [
        ("the rows are visited in their original order: shuffle each epoch with perm = rng.permutation(n).",
         [np.arange(n)] * n_epochs),
        ("every epoch visits the rows in the same order: create rng = np.random.default_rng(seed) once, before the "
         "epoch loop, and draw a new perm = rng.permutation(n) from it at the start of each epoch.",
         [np.random.default_rng(seed).permutation(n)] * n_epochs),
        ("the shuffling comes from numpy's legacy generator (np.random.seed with np.random.permutation, or "
         "np.random.RandomState): use rng = np.random.default_rng(seed) and rng.permutation(n).",
         [legacy.permutation(n) for _ in range(n_epochs)]),
    ]

    def hint(got, want) -> str | None:
        found = [advice for advice, orders in candidates if matches(got, sgd_with(X, y, lr, batch_size, orders))]
        return found[0] if len(found) == 1 else None  # two orders that give the same beta: no single diagnosis

    return hint


def _sgd(t: Trial, args: tuple) -> None:
    X, y, lr, n_epochs, batch_size, seed = args
    t.expect_close(t.call("minibatch_sgd", *args), t.ref("minibatch_sgd", *args), "beta", iterative=True,
                   hints=[shuffle_hint(X, y, lr, n_epochs, batch_size, seed)], note=SGD_RECIPE)


@check("minibatch_sgd", "matches the contract's recipe (shuffling from the seed, batches in order)")
def minibatch_sgd_follows_the_contracts_shuffling_and_batches(t: Trial) -> None:
    X, y = regression_data(t)
    _sgd(t, (X, y, 0.05, 5, 4, int(t.rng.integers(0, 10_000))))


@check("minibatch_sgd", "handles a last batch smaller than batch_size")
def minibatch_sgd_handles_a_last_batch_smaller_than_batch_size(t: Trial) -> None:
    X, y = regression_data(t)
    _sgd(t, (X, y, 0.05, 3, 7, 11))


# -- the catalogue: known mistakes (each costs only its function) and correct variants (full marks) ---------

def _sgd_code(shuffle: str, rng: str = "    rng = np.random.default_rng(seed)\n") -> str:
    return ("def minibatch_sgd(X, y, lr, n_epochs, batch_size, seed):\n"
            "    n = len(y)\n    beta = np.zeros(X.shape[1])\n" + rng +
            "    for _ in range(n_epochs):\n" + shuffle +
            "        for s in range(0, n, batch_size):\n"
            "            idx = perm[s:s + batch_size]\n"
            "            beta = beta - lr * mse_gradient(beta, X[idx], y[idx])\n"
            "    return beta\n")


def _gd_code(body: str) -> str:
    return ("def gradient_descent(X, y, lr, n_steps, beta_init=None):\n"
            "    beta = np.zeros(X.shape[1]) if beta_init is None else beta_init\n" + body)


SUITE.mistakes = [
    mistake("normal_equation",
            "def normal_equation(X, y):\n    return np.linalg.solve(X.T @ X, X.T @ y).reshape(-1, 1)\n",
            "has shape (3, 1); expected (3,)", typical=True),
    mistake("normal_equation",
            "def normal_equation(X, y):\n    return np.linalg.solve(X.T @ X + np.eye(X.shape[1]), X.T @ y)\n",
            "differs from the expected values"),
    mistake("add_intercept", "def add_intercept(X):\n    return np.hstack([X, np.ones((X.shape[0], 1))])\n",
            "differs from the expected values at index (0, 0)"),
    mistake("add_intercept", "def add_intercept(X):\n    X[:, 0] = 1.0\n    return X\n",
            "changed its input X in place"),
    mistake("simple_linear_regression",
            "def simple_linear_regression(x, y):\n    b1 = np.cov(x, y)[0, 1] / np.var(x)\n"
            "    return y.mean() - b1 * x.mean(), b1\n",
            "the pair (beta0, beta1) differs from the expected values at index 0"),
    mistake("simple_linear_regression",
            "def simple_linear_regression(x, y):\n    dx, dy = x - x.mean(), y - y.mean()\n"
            "    b1 = np.sum(dx * dy) / np.sum(dx ** 2)\n    return b1, y.mean() - b1 * x.mean()\n",
            "you returned (beta1, beta0)"),
    mistake("simple_linear_regression",
            "def simple_linear_regression(x, y):\n    raise ValueError('x and y differ in length')\n",
            "simple_linear_regression raised ValueError: x and y differ in length"),
    mistake("mse_loss", "def mse_loss(beta, X, y):\n    return float(np.mean((X @ beta - y) ** 2))\n",
            "exactly 2 times the expected one: the loss has a ½ in front"),
    mistake("mse_loss", "# the student deleted the function\n", "`mse_loss` is not defined in your notebook"),
    mistake("mse_gradient", "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y)  # forgot to divide by n\n",
            "exactly n times the expected one", typical=True),
    mistake("mse_gradient", "def mse_gradient(beta, X, y):\n    return 2 * X.T @ (X @ beta - y) / len(y)\n",
            "exactly 2 times the expected one"),
    mistake("mse_gradient", "def mse_gradient(beta, X, y):\n    return X.T @ (y - X @ beta) / len(y)\n",
            "exactly -1 times the expected one: the gradient is (1/n) Xᵀ (X beta − y)"),
    mistake("gradient_descent",
            _gd_code("    path = []\n    for _ in range(n_steps):\n"
                     "        beta = beta - lr * mse_gradient(beta, X, y)\n        path.append(beta)\n"
                     "    return np.array(path)\n"),
            "missing its first row"),
    mistake("gradient_descent",
            _gd_code("    path = [beta.copy()]\n    for _ in range(n_steps):\n"
                     "        beta -= lr * mse_gradient(beta, X, y)\n        path.append(beta.copy())\n"
                     "    return np.array(path)\n"),
            "changed its input beta_init in place", advisory=True),
    mistake("minibatch_sgd", _sgd_code("        perm = np.random.default_rng(seed).permutation(n)\n", rng=""),
            "every epoch visits the rows in the same order"),
    mistake("minibatch_sgd", _sgd_code("        perm = np.arange(n)\n"), "visited in their original order"),
    mistake("minibatch_sgd", _sgd_code("        perm = np.random.permutation(n)\n", rng="    np.random.seed(seed)\n"),
            "numpy's legacy generator"),
    mistake("minibatch_sgd", _sgd_code("        perm = rng.choice(n, size=n, replace=False)\n"),
            "The contract fixes the shuffling recipe"),
]

SUITE.variants = [
    Variant("normal_equation with lstsq", {"normal_equation": "def normal_equation(X, y):\n"
                                           "    return np.linalg.lstsq(X, y, rcond=None)[0]\n"}),
    Variant("add_intercept with np.c_", {"add_intercept": "def add_intercept(X):\n"
                                         "    return np.c_[np.ones(len(X)), X]\n"}),
    Variant("simple_linear_regression returning an array",
            {"simple_linear_regression": "def simple_linear_regression(x, y):\n"
             "    b1 = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)\n"
             "    return np.array([y.mean() - b1 * x.mean(), b1])\n"}),
    Variant("simple_linear_regression returning a list of numpy floats",
            {"simple_linear_regression": "def simple_linear_regression(x, y):\n"
             "    b1 = np.cov(x, y, ddof=0)[0, 1] / np.var(x)\n"
             "    return [y.mean() - b1 * x.mean(), b1]\n"}),
    Variant("mse_loss as a numpy scalar from np.mean",
            {"mse_loss": "def mse_loss(beta, X, y):\n    return np.mean((X @ beta - y) ** 2) / 2\n"}),
    Variant("mse_gradient with .dot and shape[0]",
            {"mse_gradient": "def mse_gradient(beta, X, y):\n    return X.T.dot(X.dot(beta) - y) / X.shape[0]\n"}),
    Variant("gradient_descent into a preallocated array",
            {"gradient_descent": "def gradient_descent(X, y, lr, n_steps, beta_init=None):\n"
             "    path = np.zeros((n_steps + 1, X.shape[1]))\n"
             "    if beta_init is not None:\n        path[0] = beta_init\n"
             "    for t in range(n_steps):\n        path[t + 1] = path[t] - lr * mse_gradient(path[t], X, y)\n"
             "    return path\n"}),
    Variant("minibatch_sgd shuffling np.arange(n) with rng.shuffle",
            {"minibatch_sgd": _sgd_code("        perm = np.arange(n)\n        rng.shuffle(perm)\n")}),
    Variant("minibatch_sgd slicing shuffled copies of X and y",
            {"minibatch_sgd": "def minibatch_sgd(X, y, lr, n_epochs, batch_size, seed):\n"
             "    rng = np.random.default_rng(seed)\n    beta = np.zeros(X.shape[1])\n"
             "    for epoch in range(n_epochs):\n        perm = rng.permutation(len(X))\n"
             "        Xs, ys = X[perm], y[perm]\n"
             "        for start in range(0, len(X), batch_size):\n"
             "            xb, yb = Xs[start:start + batch_size], ys[start:start + batch_size]\n"
             "            beta = beta - lr * mse_gradient(beta, xb, yb)\n"
             "    return beta\n"}),
]

# Near misses: beside each catalogued mistake with a hint, a plausible mistake with the same symptom and another
# cause. Each loses points, without the hint whose diagnosis it does not share.
SUITE.near_misses = [
    near_miss("ridge-regularised beta returned as a column", "normal_equation",
              "def normal_equation(X, y):\n"
              "    return np.linalg.solve(X.T @ X + np.eye(X.shape[1]), X.T @ y).reshape(-1, 1)\n",
              "the values are right"),
    near_miss("a sign slip in the intercept (not a swap)", "simple_linear_regression",
              "def simple_linear_regression(x, y):\n    dx, dy = x - x.mean(), y - y.mean()\n"
              "    b1 = np.sum(dx * dy) / np.sum(dx ** 2)\n    return y.mean() + b1 * x.mean(), b1\n",
              "you returned (beta1, beta0)"),
    near_miss("the loss divided by 2(n - 1)", "mse_loss",
              "def mse_loss(beta, X, y):\n    return float(np.sum((X @ beta - y) ** 2) / (2 * (len(y) - 1)))\n",
              "½ in front"),
    near_miss("a gradient divided by the number of features", "mse_gradient",
              "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y) / len(beta)\n",
              "use the mean, not the sum"),
    near_miss("the 2 of the square applied to y only", "mse_gradient",
              "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - 2 * y) / len(y)\n",
              "the ½ in the loss cancels"),
    near_miss("a correct gradient, negated on return", "mse_gradient",
              "def mse_gradient(beta, X, y):\n    return -(X.T @ (X @ beta - y) / len(y))\n",
              "not y − X beta", feedback="exactly -1 times the expected one"),
    near_miss("the trajectory missing its last row (not its first)", "gradient_descent",
              _gd_code("    path = [np.array(beta, dtype=float)]\n    for _ in range(n_steps - 1):\n"
                       "        beta = beta - lr * mse_gradient(beta, X, y)\n        path.append(beta)\n"
                       "    return np.array(path)\n"),
              "missing its first row"),
    near_miss("one permutation drawn before the epoch loop", "minibatch_sgd",
              _sgd_code("", rng="    rng = np.random.default_rng(seed)\n    perm = rng.permutation(n)\n"),
              "not inside it", feedback="every epoch visits the rows in the same order"),
    near_miss("only X shuffled, y left in order", "minibatch_sgd",
              "def minibatch_sgd(X, y, lr, n_epochs, batch_size, seed):\n"
              "    rng = np.random.default_rng(seed)\n    beta = np.zeros(X.shape[1])\n"
              "    for _ in range(n_epochs):\n        perm = rng.permutation(len(y))\n"
              "        for s in range(0, len(y), batch_size):\n"
              "            beta = beta - lr * mse_gradient(beta, X[perm[s:s + batch_size]], y[s:s + batch_size])\n"
              "    return beta\n",
              "original order"),
    near_miss("an unseeded generator", "minibatch_sgd",
              _sgd_code("        perm = rng.permutation(n)\n", rng="    rng = np.random.default_rng()\n"),
              "legacy generator"),
]

"""Checks for a4_backprop: a sigmoid network's forward and backward passes, the update, and gradient checking,
in float64 against the reference."""

from __future__ import annotations

import numpy as np

from autograder import Suite, Trial, Variant, course_probes, matches, mistake

SUITE = Suite(
    depends={"forward": ["sigmoid"], "backward": ["sigmoid_derivative"]},
)
check = SUITE.check
near_miss = SUITE.near_miss
make_function = course_probes(__file__).make_function  # the probes' test functions, on the grader's side too


def network(t: Trial) -> dict:
    n, d, h, k = (4, 3, 2, 1) if t.public else tuple(int(v) for v in t.rng.integers(1, 7, size=4))
    return {"X": t.rng.normal(size=(n, d)), "W_h": t.rng.normal(size=(d, h)), "b_h": t.rng.normal(size=h),
            "W_o": t.rng.normal(size=(h, k)), "b_o": t.rng.normal(size=k), "Y": t.rng.uniform(size=(n, k))}


# -- sigmoid ---------------------------------------------------------------------------------------

def _z(t: Trial) -> np.ndarray:
    return np.concatenate([t.rng.normal(scale=4, size=6), [-1e4, -750.0, 750.0, 1e4]])


@check("sigmoid", "matches the reference and stays finite for |z| up to 1e4")
def sigmoid_matches_the_reference_and_stays_finite_for_z_up_to_1e4(t: Trial) -> None:
    z = _z(t)
    t.expect_close(t.call("sigmoid", z), t.ref("sigmoid", z), "sigmoid(z)")


@check("sigmoid", "raises no overflow warning for |z| up to 1e4", seeded=False, advisory=True)
def sigmoid_raises_no_overflow_warning_for_z_up_to_1e4(t: Trial) -> None:
    t.call("sigmoid", _z(t))
    if t.warnings:
        t.fail("sigmoid warned for large |z|: compute exp(-|z|) so that nothing overflows.",
               f"sigmoid warned ({t.warnings[0]}): compute exp(-|z|) so that nothing overflows.")


@check("sigmoid_derivative", "is a (1 - a) of the activation a")
def sigmoid_derivative_is_a_1_a_of_the_activation_a(t: Trial) -> None:
    a = t.rng.uniform(0.01, 0.99, size=(3, 4))
    t.expect_close(t.call("sigmoid_derivative", a), t.ref("sigmoid_derivative", a), "the derivative",
                   hints=[sigmoid_again_hint(a)])


def sigmoid_again_hint(a: np.ndarray):
    """sigmoid applied to the activation once more: σ(a)(1 − σ(a))."""
    twice = (1 / (1 + np.exp(-a))) * (1 - 1 / (1 + np.exp(-a)))
    return lambda got, want: ("the argument is already the activation a = sigmoid(z): return a * (1 - a), do not "
                              "apply sigmoid again." if matches(got, twice) else None)


# -- forward and backward ----------------------------------------------------------------------------

@check("forward", "matches the reference on a random network")
def forward_matches_the_reference_on_a_random_network(t: Trial) -> None:
    net = network(t)
    args = (net["X"], net["W_h"], net["b_h"], net["W_o"], net["b_o"])
    t.expect_close(t.call("forward", *args), t.ref("forward", *args), "the cache")


def backward_hints(net: dict, cache: dict) -> list:
    """Diagnoses of a wrong backward pass, each confirmed on the student's gradients."""
    return [_transposed, _unsummed, _pre_activation(net, cache), _averaged(len(net["X"])), _sign]


def _grads(got) -> dict:
    return got if isinstance(got, dict) else {}


def _pre_activation(net: dict, cache: dict):
    """The sigmoid's derivative taken at Z instead of A, in the output layer, the hidden layer or both: confirmed when
    a wrong gradient is exactly what that gives (and every other gradient is right or follows from it)."""
    A_h, A_o, Z_h, Z_o = cache["A_h"], cache["A_o"], cache["Z_h"], cache["Z_o"]
    X, W_o = net["X"], net["W_o"]
    good_o = (A_o - net["Y"]) * A_o * (1 - A_o)
    wrong_o = (A_o - net["Y"]) * Z_o * (1 - Z_o)
    candidates = []  # (dW_o, dW_h) when the output layer, the hidden layer or both use Z
    for d_o, hidden in ((wrong_o, "A"), (good_o, "Z"), (wrong_o, "Z")):
        d_h = (d_o @ W_o.T) * ((Z_h * (1 - Z_h)) if hidden == "Z" else (A_h * (1 - A_h)))
        candidates.append((A_h.T @ d_o, X.T @ d_h))

    def pre_activation(got, want) -> str | None:
        g = _grads(got)
        if any(matches(g.get("dW_o"), dW_o) and matches(g.get("dW_h"), dW_h) for dW_o, dW_h in candidates):
            return ("the derivative of the sigmoid was taken at the pre-activation Z: sigmoid_derivative takes the "
                    "activation A = sigmoid(Z), not the pre-activation Z.")
        return None

    return pre_activation


def _transposed(got, want) -> str | None:
    for key, formula in (("dW_h", "dW_h = Xᵀ δ_h has shape (d, h) like W_h"),
                         ("dW_o", "dW_o = A_hᵀ δ_o has shape (h, k) like W_o")):
        g = np.asarray(_grads(got).get(key))
        if g.ndim == 2 and not matches(g, want[key]) and matches(g.T, want[key]):
            return f"{key} is transposed: {formula}."
    return None


def _unsummed(got, want) -> str | None:
    """A bias gradient with one row per sample (or per part of the batch) whose rows add up to the expected one: it
    must be summed. A summed gradient kept as shape (1, h) (keepdims=True) is right in values and gets the generic
    shape hint instead."""
    for key in ("db_h", "db_o"):
        g = np.asarray(_grads(got).get(key))
        if g.ndim == 2 and g.shape[0] > 1 and matches(g.sum(axis=0), want[key]):
            return f"{key} must be summed over the rows (samples): δ.sum(axis=0)."
    return None


def _averaged(n: int):
    def averaged(got, want) -> str | None:
        if all(matches(_grads(got).get(k), w / n) for k, w in want.items()):
            return "the error E sums over the samples: do not divide the gradients by n."
        return None

    return averaged


def _sign(got, want) -> str | None:
    if all(matches(_grads(got).get(k), -w) for k, w in want.items()):
        return ("every gradient has the wrong sign, each exactly minus the expected one: the output error is "
                "δ_o = (A_o − Y) · A_o(1 − A_o), and the gradients are returned as computed, not negated.")
    return None


@check("backward", "matches the reference gradients on a random network")
def backward_matches_the_reference_gradients_on_a_random_network(t: Trial) -> None:
    net = network(t)
    cache = t.ref("forward", net["X"], net["W_h"], net["b_h"], net["W_o"], net["b_o"])
    got = t.call("backward", net["X"], net["Y"], cache, net["W_o"])
    want = t.ref("backward", net["X"], net["Y"], cache, net["W_o"])
    t.expect_close(got, want, "the gradients", hints=backward_hints(net, cache))


@check("backward", "matches the reference with a square hidden layer (a transposed dW_h fits)")
def backward_matches_the_reference_with_a_square_hidden_layer(t: Trial) -> None:
    net = network(t)
    d = net["X"].shape[1]
    net["W_h"] = t.rng.normal(size=(d, d))
    net["b_h"], net["W_o"] = t.rng.normal(size=d), t.rng.normal(size=(d, net["W_o"].shape[1]))
    cache = t.ref("forward", net["X"], net["W_h"], net["b_h"], net["W_o"], net["b_o"])
    got = t.call("backward", net["X"], net["Y"], cache, net["W_o"])
    t.expect_close(got, t.ref("backward", net["X"], net["Y"], cache, net["W_o"]), "the gradients",
                   hints=backward_hints(net, cache))


# -- update ----------------------------------------------------------------------------------------------

def _update_args(t: Trial) -> tuple[dict, dict, float]:
    net = network(t)
    params = {k: net[k] for k in ("W_h", "b_h", "W_o", "b_o")}
    grads = {"d" + k: t.rng.normal(size=v.shape) for k, v in params.items()}
    return params, grads, float(t.rng.uniform(0.1, 1.0))


@check("sgd_update", "returns p - lr * dp for every parameter")
def sgd_update_returns_p_lr_dp_for_every_parameter(t: Trial) -> None:
    params, grads, lr = _update_args(t)
    t.expect_close(t.call("sgd_update", params, grads, lr), t.ref("sgd_update", params, grads, lr),
                   "the updated parameters")


SUITE.inputs_unchanged("sgd_update", lambda t: (list(_update_args(t)), {}))


# -- gradient checking ----------------------------------------------------------------------------------

def _numgrad_args(t: Trial, kind: str) -> dict:
    shape = (3,) if t.public else tuple(int(s) for s in t.rng.integers(1, 4, size=int(t.rng.integers(1, 3))))
    size = int(np.prod(shape))
    params = ({"A": (lambda m: m + m.T)(t.rng.normal(size=(size, size))), "b": t.rng.normal(size=size)}
              if kind == "quadratic" else {"w": t.rng.normal(size=shape), "c": float(t.rng.normal())})
    return {"kind": kind, "params": params, "x": t.rng.normal(size=shape), "eps": 1e-4}


def numgrad_hints(args: dict) -> list:
    """A one-sided difference, or a central one that does not put x back after each entry."""
    f, x, eps = make_function(args["kind"], args["params"]), args["x"], args["eps"]
    forward_diff, unrestored, moving = np.zeros(x.shape), np.zeros(x.shape), x.copy()
    for i in np.ndindex(x.shape):
        step = x.copy()
        step[i] += eps
        forward_diff[i] = (f(step) - f(x)) / eps
        old = moving[i]
        moving[i] = old + eps
        plus = f(moving)
        moving[i] = old - eps
        unrestored[i] = (plus - f(moving)) / (2 * eps)

    def hint(got, want) -> str | None:
        if matches(got, forward_diff, 1e-7, 1e-9):
            return "this is a one-sided difference; use the central one, (f(x + eps) - f(x - eps)) / (2 eps)."
        if matches(got, unrestored, 1e-7, 1e-9):
            return ("x is not put back after each entry, so later entries are differentiated at a shifted point: "
                    "restore x[i] = old after evaluating f(x - eps).")
        return None

    return [hint]


def _numgrad(t: Trial, kind: str) -> None:
    args = _numgrad_args(t, kind)
    got = t.probe("numgrad", label="numerical_gradient", **args)
    want = t.ref_probe("numgrad", **args)
    t.expect_close(got["grad"], want["grad"], "the numerical gradient", hints=numgrad_hints(args))


@check("numerical_gradient", "central differences of a quadratic")
def numerical_gradient_central_differences_of_a_quadratic(t: Trial) -> None:
    _numgrad(t, "quadratic")


@check("numerical_gradient", "central differences of a non-polynomial function")
def numerical_gradient_central_differences_of_a_non_polynomial_function(t: Trial) -> None:
    _numgrad(t, "wavy")


@check("numerical_gradient", "leaves x as it was", seeded=False, advisory=True)
def numerical_gradient_leaves_x_as_it_was(t: Trial) -> None:
    args = _numgrad_args(t, "wavy")
    got = t.probe("numgrad", label="numerical_gradient", **args)
    t.expect(isinstance(got["x_after"], np.ndarray) and np.array_equal(got["x_after"], args["x"]),
             "numerical_gradient left x changed: restore each entry after perturbing it (x[i] = old).")


# The contract's default step. With f = Σ w sin(k x) the error of a central difference is relative, k² eps² / 6 of
# the gradient: with STEEP_K = 3000 a default of 2e-6 instead of 1e-6 is off by 4.5e-6 of the gradient (the float64
# tolerance is 1e-7), while rounding at eps = 1e-6 stays near 1e-13 of it.
DEFAULT_EPS, STEEP_K = 1e-6, 3000.0


def _default_eps_hint(args: dict):
    """The student's default eps is another power of ten: confirmed by replaying central differences with it."""
    f, x = make_function(args["kind"], args["params"]), args["x"]

    def central(eps: float) -> np.ndarray:
        grad = np.zeros(x.shape)
        for i in np.ndindex(x.shape):
            step = np.zeros(x.shape)
            step[i] = eps
            grad[i] = (f(x + step) - f(x - step)) / (2 * eps)
        return grad

    candidates = {eps: central(eps) for eps in (1e-2, 1e-3, 1e-4, 1e-5, 1e-7, 1e-8)}

    def hint(got, want) -> str | None:
        found = [eps for eps, value in candidates.items() if matches(got, value, 1e-7, 1e-9)]
        if len(found) == 1:
            return (f"these are central differences with eps = {found[0]:g}: the default must be eps=1e-6, as the "
                    "contract says (numerical_gradient(f, x) is called without eps).")
        return None

    return hint


@check("numerical_gradient", "uses the default eps=1e-6 when called without eps")
def numerical_gradient_uses_the_default_eps_1e_6_when_called_without_eps(t: Trial) -> None:
    shape = (3,) if t.public else tuple(int(s) for s in t.rng.integers(1, 4, size=int(t.rng.integers(1, 3))))
    args = {"kind": "steep", "params": {"w": t.rng.normal(size=shape), "k": STEEP_K},
            "x": t.rng.uniform(-1, 1, size=shape), "eps": None}
    got = t.probe("numgrad", label="numerical_gradient", **args)
    want = t.ref_probe("numgrad", **args)
    t.expect_close(got["grad"], want["grad"], "the numerical gradient with the default eps",
                   hints=[_default_eps_hint(args)])


@check("relative_error", "matches max |a - b| / max(1e-8, |a| + |b|)")
def relative_error_matches_max_a_b_max_1e_8_a_b(t: Trial) -> None:
    a = t.rng.normal(size=(3, 4))
    b = a + t.rng.normal(scale=1e-3, size=a.shape)
    b[0, 0] = a[0, 0] = 0.0
    t.expect_close(t.call("relative_error", a, b), t.ref("relative_error", a, b), "the relative error")


@check("relative_error", "keeps its floor of 1e-8 for values near zero")
def relative_error_keeps_its_floor_for_values_near_zero(t: Trial) -> None:
    scale = 1e-9 if t.public else float(10 ** t.rng.uniform(-12, -9))  # |a| + |b| far below the floor
    a = scale * t.rng.normal(size=(2, 3))
    b = a + scale * t.rng.normal(size=a.shape)
    t.expect_close(t.call("relative_error", a, b), t.ref("relative_error", a, b), "the relative error")


# -- the catalogue: known mistakes (each costs only its function) and correct variants (full marks) ---------

def _backward(delta_o: str, delta_h: str, grads: str) -> str:
    return ("def backward(X, Y, cache, W_o):\n    A_h, A_o, Z_h, Z_o = cache['A_h'], cache['A_o'], cache['Z_h'], "
            f"cache['Z_o']\n    delta_o = {delta_o}\n    delta_h = {delta_h}\n    return {grads}\n")


D_O, D_H = "(A_o - Y) * sigmoid_derivative(A_o)", "(delta_o @ W_o.T) * sigmoid_derivative(A_h)"
GRADS = "{{'dW_h': {}, 'db_h': {}, 'dW_o': A_h.T @ delta_o, 'db_o': delta_o.sum(axis=0)}}"
RIGHT = GRADS.format("X.T @ delta_h", "delta_h.sum(axis=0)")


def _numgrad_code(body: str) -> str:
    return ("def numerical_gradient(f, x, eps=1e-6):\n    grad = np.zeros_like(x, dtype=float)\n"
            "    for i in np.ndindex(x.shape):\n        old = x[i]\n" + body + "    return grad\n")


SUITE.mistakes = [
    mistake("backward", _backward("(A_o - Y) * sigmoid_derivative(Z_o)", "(delta_o @ W_o.T) * sigmoid_derivative(Z_h)",
                                  RIGHT), "not the pre-activation Z"),
    mistake("backward", _backward(D_O, D_H, GRADS.format("(X.T @ delta_h).T", "delta_h.sum(axis=0)")),
            "dW_h is transposed"),
    mistake("backward", _backward(D_O, D_H, GRADS.format("X.T @ delta_h", "delta_h")), "summed over the rows"),
    mistake("backward", _backward(D_O, D_H, "{k: v / len(X) for k, v in " + RIGHT + ".items()}"),
            "do not divide the gradients by n"),
    mistake("backward", _backward("(Y - A_o) * sigmoid_derivative(A_o)", D_H, RIGHT),
            "every gradient has the wrong sign"),
    mistake("numerical_gradient", _numgrad_code("        x[i] = old + eps\n        plus = f(x)\n        x[i] = old\n"
                                                "        grad[i] = (plus - f(x)) / eps\n"),
            "one-sided difference"),
    mistake("numerical_gradient", _numgrad_code("        x[i] = old + eps\n        plus = f(x)\n"
                                                "        x[i] = old - eps\n"
                                                "        grad[i] = (plus - f(x)) / (2 * eps)\n"),
            "x is not put back after each entry"),
    mistake("sgd_update", "def sgd_update(params, grads, lr):\n    for k in params:\n"
            "        params[k] -= lr * grads['d' + k]\n    return params\n",
            "changed its input params in place", advisory=True),
    mistake("sigmoid_derivative", "def sigmoid_derivative(a):\n    return sigmoid(a) * (1 - sigmoid(a))\n",
            "do not apply sigmoid again", typical=True),
    mistake("sigmoid", "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n", "sigmoid warned", advisory=True),
    mistake("forward", "def forward(X, W_h, b_h, W_o, b_o):\n    Z_h = X @ W_h + b_h\n    A_h = sigmoid(Z_h)\n"
            "    Z_o = A_h @ W_o + b_o\n    return {'Z_h': Z_h, 'A_h': A_h, 'Z_o': Z_o, 'A_o': Z_o}\n",
            "in the cache, 'A_o' differs"),
    mistake("relative_error", "def relative_error(a, b):\n    return float(np.max(np.abs(a - b)))\n", "relative error",
            typical=True),
]

SUITE.variants = [
    Variant("sigmoid with scipy's expit", {"sigmoid": "def sigmoid(z):\n    from scipy.special import expit\n"
                                           "    return expit(z)\n"}),
    Variant("sigmoid_derivative as a - a**2", {"sigmoid_derivative": "def sigmoid_derivative(a):\n"
                                               "    return a - a ** 2\n"}),
    Variant("forward with np.dot", {"forward": "def forward(X, W_h, b_h, W_o, b_o):\n"
                                    "    Z_h = np.dot(X, W_h) + b_h\n    A_h = sigmoid(Z_h)\n"
                                    "    Z_o = np.dot(A_h, W_o) + b_o\n"
                                    "    return dict(Z_h=Z_h, A_h=A_h, Z_o=Z_o, A_o=sigmoid(Z_o))\n"}),
    Variant("backward with transposed products", {"backward": _backward(
        D_O, D_H, "{'dW_h': (delta_h.T @ X).T, 'db_h': np.sum(delta_h, axis=0), 'dW_o': (delta_o.T @ A_h).T, "
                  "'db_o': np.sum(delta_o, axis=0)}")}),
    Variant("sgd_update with a loop into a new dict", {"sgd_update": "def sgd_update(params, grads, lr):\n"
                                                       "    new = {}\n    for name, p in params.items():\n"
                                                       "        new[name] = p - lr * grads['d' + name]\n"
                                                       "    return new\n"}),
    Variant("numerical_gradient perturbing copies of x", {
        "numerical_gradient": "def numerical_gradient(f, x, eps=1e-6):\n    grad = np.zeros(x.shape)\n"
                              "    for i in np.ndindex(x.shape):\n        plus, minus = x.copy(), x.copy()\n"
                              "        plus[i] += eps\n        minus[i] -= eps\n"
                              "        grad[i] = (f(plus) - f(minus)) / (2 * eps)\n    return grad\n"}),
    Variant("relative_error with np.where", {"relative_error": "def relative_error(a, b):\n"
                                             "    num, den = np.abs(a - b), np.abs(a) + np.abs(b)\n"
                                             "    return float(np.max(num / np.where(den > 1e-8, den, 1e-8)))\n"}),
]

SUITE.mistakes += [
    mistake("numerical_gradient", "def numerical_gradient(f, x, eps=1e-4):\n    grad = np.zeros(x.shape)\n"
            "    for i in np.ndindex(x.shape):\n        plus, minus = x.copy(), x.copy()\n"
            "        plus[i] += eps\n        minus[i] -= eps\n"
            "        grad[i] = (f(plus) - f(minus)) / (2 * eps)\n    return grad\n",
            "these are central differences with eps = 0.0001"),
    mistake("relative_error", "def relative_error(a, b):\n"
            "    return float(np.max(np.abs(a - b) / np.maximum(2e-8, np.abs(a) + np.abs(b))))\n",
            "the relative error differs from the expected values"),
]

# Near misses: beside each catalogued mistake with a hint, a plausible mistake with the same symptom and another
# cause. Each loses points, without the hint whose diagnosis it does not share.
SUITE.near_misses = [
    near_miss("the output error without the sigmoid's derivative (a cross-entropy delta)", "backward",
              _backward("A_o - Y", D_H, RIGHT), "pre-activation Z"),
    near_miss("dW_h reshaped to (h, d): a reshape, not a transpose", "backward",
              _backward(D_O, D_H, GRADS.format("(X.T @ delta_h).reshape(W_o.shape[0], X.shape[1])",
                                               "delta_h.sum(axis=0)")),
              "dW_h is transposed"),
    near_miss("bias gradients summed with keepdims=True, shape (1, h)", "backward",
              _backward(D_O, D_H, "{'dW_h': X.T @ delta_h, 'db_h': delta_h.sum(axis=0, keepdims=True), "
                                  "'dW_o': A_h.T @ delta_o, 'db_o': delta_o.sum(axis=0, keepdims=True)}"),
              "summed over the rows"),
    near_miss("only the output layer's gradients divided by n", "backward",
              _backward(D_O, D_H, "{'dW_h': X.T @ delta_h, 'db_h': delta_h.sum(axis=0), "
                                  "'dW_o': A_h.T @ delta_o / len(X), 'db_o': delta_o.sum(axis=0) / len(X)}"),
              "do not divide the gradients by n"),
    near_miss("correct gradients negated on return", "backward",
              _backward(D_O, D_H, "{k: -v for k, v in " + RIGHT + ".items()}"),
              "not (Y − A_o)", feedback="every gradient has the wrong sign"),
    near_miss("a central difference without the 2 in its denominator", "numerical_gradient",
              _numgrad_code("        x[i] = old + eps\n        plus = f(x)\n        x[i] = old - eps\n"
                            "        minus = f(x)\n        x[i] = old\n        grad[i] = (plus - minus) / eps\n"),
              "one-sided difference"),
    near_miss("every entry moved at once (a directional difference)", "numerical_gradient",
              _numgrad_code("        grad[i] = (f(x + eps) - f(x - eps)) / (2 * eps)\n"),
              "x is not put back"),
    near_miss("a one-sided difference with the default eps (not another eps)", "numerical_gradient",
              "def numerical_gradient(f, x, eps=1e-6):\n    grad = np.zeros(x.shape)\n"
              "    for i in np.ndindex(x.shape):\n        plus = x.copy()\n        plus[i] += eps\n"
              "        grad[i] = (f(plus) - f(x)) / eps\n    return grad\n",
              "central differences with eps", feedback="one-sided difference"),
    near_miss("the derivative of tanh instead", "sigmoid_derivative",
              "def sigmoid_derivative(a):\n    return 1 - a ** 2\n", "do not apply sigmoid again"),
]

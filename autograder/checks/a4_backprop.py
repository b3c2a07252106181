"""Checks for a4_backprop: a sigmoid network's forward and backward passes, the update, and gradient checking,
in float64 against the reference."""

from __future__ import annotations

import numpy as np

from ..checking import Suite, Trial, mistake
from ..runtime.probes_a4_backprop import make_function

SUITE = Suite(
    "a4_backprop",
    "backprop.ipynb",
    depends={"forward": ["sigmoid"], "backward": ["sigmoid_derivative"]},
    mistakes=[mistake(f, c, '', typical=True) for f, c in {
        "sigmoid_derivative": "def sigmoid_derivative(a):\n    return sigmoid(a) * (1 - sigmoid(a))\n",
        "relative_error": "def relative_error(a, b):\n    return float(np.max(np.abs(a - b)))\n",
    }.items()],
)
check = SUITE.check
PROBE = "probes_a4_backprop"


def network(t: Trial) -> dict:
    n, d, h, k = (4, 3, 2, 1) if t.public else tuple(int(v) for v in t.rng.integers(1, 7, size=4))
    return {"X": t.rng.normal(size=(n, d)), "W_h": t.rng.normal(size=(d, h)), "b_h": t.rng.normal(size=h),
            "W_o": t.rng.normal(size=(h, k)), "b_o": t.rng.normal(size=k), "Y": t.rng.uniform(size=(n, k))}


# -- sigmoid ---------------------------------------------------------------------------------------

@check("sigmoid", "matches the reference and stays finite without warnings for |z| up to 1e4")
def _(t: Trial) -> None:
    z = np.concatenate([t.rng.normal(scale=4, size=6), [-1e4, -750.0, 750.0, 1e4]])
    got = t.call("sigmoid", z)
    if t.warnings:
        t.fail(f"sigmoid warned ({t.warnings[0]}): compute exp(-|z|) so that nothing overflows.")
    t.expect_close(got, t.ref("sigmoid", z), "sigmoid(z)")


@check("sigmoid_derivative", "is a (1 - a) of the activation a")
def _(t: Trial) -> None:
    a = t.rng.uniform(0.01, 0.99, size=(3, 4))
    hint = [lambda g, w: "the argument is already the activation a = sigmoid(z): return a * (1 - a), do not "
            "apply sigmoid again." if np.allclose(g, (1 / (1 + np.exp(-a))) * (1 - 1 / (1 + np.exp(-a)))) else None]
    t.expect_close(t.call("sigmoid_derivative", a), t.ref("sigmoid_derivative", a), "the derivative", hints=hint)


# -- forward and backward ----------------------------------------------------------------------------

@check("forward", "matches the reference on a random network")
def _(t: Trial) -> None:
    net = network(t)
    args = (net["X"], net["W_h"], net["b_h"], net["W_o"], net["b_o"])
    t.expect_close(t.call("forward", *args), t.ref("forward", *args), "the cache")


def backward_hints(net: dict, cache: dict):
    n = len(net["X"])

    def pre_activation(got, want) -> str | None:
        A_h, A_o, Z_h, Z_o = cache["A_h"], cache["A_o"], cache["Z_h"], cache["Z_o"]
        d_o = (A_o - net["Y"]) * Z_o * (1 - Z_o)
        d_h = (d_o @ net["W_o"].T) * Z_h * (1 - Z_h)
        if isinstance(got, dict) and np.allclose(got.get("dW_o", np.nan), A_h.T @ d_o) or \
                isinstance(got, dict) and np.allclose(got.get("dW_h", np.nan), net["X"].T @ d_h):
            return "sigmoid_derivative takes the activation A, not the pre-activation Z."
        return None

    def shapes(got, want) -> str | None:
        if not isinstance(got, dict):
            return None
        for key in ("dW_h", "dW_o"):
            g, w = np.asarray(got.get(key)), want[key]
            if g.shape == w.shape[::-1] or (g.shape == w.shape and g.shape[0] == g.shape[1] and np.allclose(g, w.T)):
                return f"{key} is transposed: dW_h = Xᵀ δ_h has shape (d, h) like W_h."
        for key in ("db_h", "db_o"):
            g = np.asarray(got.get(key))
            if g.ndim == 2 and g.shape[1:] == want[key].shape:
                return f"{key} must be summed over the rows (samples): δ.sum(axis=0)."
        return None

    def averaged(got, want) -> str | None:
        same_shapes = isinstance(got, dict) and all(np.shape(got.get(k)) == np.shape(w) for k, w in want.items())
        if same_shapes and all(np.allclose(got[k], w / n) for k, w in want.items()):
            return "the error E sums over the samples: do not divide the gradients by n."
        return None

    return [shapes, pre_activation, averaged]


@check("backward", "matches the reference gradients on a random network")
def _(t: Trial) -> None:
    net = network(t)
    cache = t.ref("forward", net["X"], net["W_h"], net["b_h"], net["W_o"], net["b_o"])
    got = t.call("backward", net["X"], net["Y"], cache, net["W_o"])
    want = t.ref("backward", net["X"], net["Y"], cache, net["W_o"])
    t.expect_close(got, want, "the gradients", hints=backward_hints(net, cache))


@check("backward", "matches the reference with a square hidden layer (a transposed dW_h fits)")
def _(t: Trial) -> None:
    net = network(t)
    d = net["X"].shape[1]
    net["W_h"] = t.rng.normal(size=(d, d))
    net["b_h"], net["W_o"] = t.rng.normal(size=d), t.rng.normal(size=(d, net["W_o"].shape[1]))
    cache = t.ref("forward", net["X"], net["W_h"], net["b_h"], net["W_o"], net["b_o"])
    got = t.call("backward", net["X"], net["Y"], cache, net["W_o"])
    t.expect_close(got, t.ref("backward", net["X"], net["Y"], cache, net["W_o"]), "the gradients",
                   hints=backward_hints(net, cache))


# -- update ----------------------------------------------------------------------------------------------

@check("sgd_update", "returns p - lr * dp for every parameter, as a new dict")
def _(t: Trial) -> None:
    net = network(t)
    params = {k: net[k] for k in ("W_h", "b_h", "W_o", "b_o")}
    grads = {"d" + k: t.rng.normal(size=v.shape) for k, v in params.items()}
    lr = float(t.rng.uniform(0.1, 1.0))
    t.expect_close(t.call("sgd_update", params, grads, lr), t.ref("sgd_update", params, grads, lr),
                   "the updated parameters")


# -- gradient checking ----------------------------------------------------------------------------------

def _numgrad(t: Trial, kind: str) -> None:
    shape = (3,) if t.public else tuple(int(s) for s in t.rng.integers(1, 4, size=int(t.rng.integers(1, 3))))
    size = int(np.prod(shape))
    params = ({"A": (lambda m: m + m.T)(t.rng.normal(size=(size, size))), "b": t.rng.normal(size=size)}
              if kind == "quadratic" else {"w": t.rng.normal(size=shape), "c": float(t.rng.normal())})
    x, eps = t.rng.normal(size=shape), 1e-4
    got = t.probe(f"{PROBE}.numgrad", label="numerical_gradient", kind=kind, params=params, x=x, eps=eps)
    if got["x_changed"]:
        t.fail("numerical_gradient left x changed: restore each entry after perturbing it (x[i] = old).")
    want = t.ref_probe(f"{PROBE}.numgrad", kind=kind, params=params, x=x, eps=eps)
    f = make_function(kind, params)

    def one_sided(g, w) -> str | None:
        est = np.zeros(shape)
        for i in np.ndindex(shape):
            step = x.copy()
            step[i] += eps
            est[i] = (f(step) - f(x)) / eps
        if np.allclose(g, est, rtol=1e-7, atol=1e-9):
            return "this is a one-sided difference; use the central one, (f(x + eps) - f(x - eps)) / (2 eps)."
        return None

    t.expect_close(got["grad"], want["grad"], "the numerical gradient", hints=[one_sided])


@check("numerical_gradient", "central differences of a quadratic, x restored")
def _(t: Trial) -> None:
    _numgrad(t, "quadratic")


@check("numerical_gradient", "central differences of a non-polynomial function")
def _(t: Trial) -> None:
    _numgrad(t, "wavy")


@check("relative_error", "matches max |a - b| / max(1e-8, |a| + |b|)")
def _(t: Trial) -> None:
    a = t.rng.normal(size=(3, 4))
    b = a + t.rng.normal(scale=1e-3, size=a.shape)
    b[0, 0] = a[0, 0] = 0.0
    t.expect_close(t.call("relative_error", a, b), t.ref("relative_error", a, b), "the relative error")

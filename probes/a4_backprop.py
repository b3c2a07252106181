"""Probes for a4_backprop: numerical_gradient needs a function, which cannot cross the boundary as data, so
the probe builds one of a few named test functions from plain parameters."""

from __future__ import annotations

import numpy as np

from .probes import lookup


def make_function(kind: str, params: dict):
    """A scalar test function of an array x: ``quadratic`` (0.5 x.A.x + b.x) or ``wavy`` (sum w sin x + c x^3)."""
    if kind == "quadratic":
        A, b = params["A"], params["b"]
        return lambda x: float(0.5 * x.ravel() @ A @ x.ravel() + b @ x.ravel())
    if kind == "wavy":
        w, c = params["w"], params["c"]
        return lambda x: float(np.sum(w * np.sin(x)) + c * np.sum(x**3))
    raise ValueError(f"unknown test function {kind!r}")


def numgrad(ns: dict, *, kind: str, params: dict, x, eps: float, device: str = "cpu") -> dict:
    """numerical_gradient(f, x, eps); x as it is after the call (the grader decides whether it changed), and how
    often f was called."""
    calls = [0]
    f = make_function(kind, params)

    def counted(v):
        calls[0] += 1
        return f(v)

    x = np.array(x, dtype=float)
    grad = lookup(ns, "numerical_gradient")(counted, x, eps)
    return {"grad": grad, "x_after": x, "calls": calls[0]}

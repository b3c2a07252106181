"""Probes for a4_backprop: numerical_gradient needs a function, which cannot cross the boundary as data, so
the probe builds one of a few named test functions from plain parameters."""

from __future__ import annotations

import numpy as np

from .probes import lookup


def make_function(kind: str, params: dict):
    """A scalar test function of an array x: ``quadratic`` (0.5 x.A.x + b.x), ``wavy`` (sum w sin x + c x^3) or
    ``steep`` (sum w sin(k x): a large third derivative, so that the step size shows in central differences)."""
    if kind == "quadratic":
        A, b = params["A"], params["b"]
        return lambda x: float(0.5 * x.ravel() @ A @ x.ravel() + b @ x.ravel())
    if kind == "wavy":
        w, c = params["w"], params["c"]
        return lambda x: float(np.sum(w * np.sin(x)) + c * np.sum(x**3))
    if kind == "steep":
        w, k = params["w"], params["k"]
        return lambda x: float(np.sum(w * np.sin(k * x)))
    raise ValueError(f"unknown test function {kind!r}")


def numgrad(ns: dict, *, kind: str, params: dict, x, eps: float | None, device: str = "cpu") -> dict:
    """numerical_gradient(f, x, eps), or numerical_gradient(f, x) when ``eps`` is None (its default); x as it is
    after the call (the grader decides whether it changed), and how often f was called."""
    calls = [0]
    f = make_function(kind, params)

    def counted(v):
        calls[0] += 1
        return f(v)

    x = np.array(x, dtype=float)
    fn = lookup(ns, "numerical_gradient")
    grad = fn(counted, x) if eps is None else fn(counted, x, eps)
    return {"grad": grad, "x_after": x, "calls": calls[0]}

"""Reference solution for a4_backprop (contract: shared spec, exercises.md)."""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) without overflow."""
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(a: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid written with its output a = sigmoid(z): a (1 - a)."""
    return a * (1.0 - a)


def forward(X, W_h, b_h, W_o, b_o) -> dict:
    """One sigmoid hidden layer, sigmoid outputs."""
    Z_h = X @ W_h + b_h
    A_h = sigmoid(Z_h)
    Z_o = A_h @ W_o + b_o
    return {"Z_h": Z_h, "A_h": A_h, "Z_o": Z_o, "A_o": sigmoid(Z_o)}


def backward(X, Y, cache, W_o) -> dict:
    """Gradients of E = 1/2 sum (A_o - Y)^2, summed over samples."""
    A_h, A_o = cache["A_h"], cache["A_o"]
    delta_o = (A_o - Y) * sigmoid_derivative(A_o)
    delta_h = (delta_o @ W_o.T) * sigmoid_derivative(A_h)
    return {"dW_h": X.T @ delta_h, "db_h": delta_h.sum(axis=0), "dW_o": A_h.T @ delta_o, "db_o": delta_o.sum(axis=0)}


def sgd_update(params: dict, grads: dict, lr: float) -> dict:
    """A new dict p - lr * dp for p in W_h, b_h, W_o, b_o."""
    return {k: params[k] - lr * grads["d" + k] for k in ("W_h", "b_h", "W_o", "b_o")}


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of scalar f at x; x is restored entry by entry."""
    grad = np.zeros_like(x, dtype=float)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        plus = f(x)
        x[i] = old - eps
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a, b) -> float:
    """max |a - b| / max(1e-8, |a| + |b|), elementwise then max."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))

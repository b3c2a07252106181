"""a4_backprop: full marks for the reference, zero for the release, and each mistake the issue lists caught on
its own function with feedback that names it."""

from __future__ import annotations

import pytest
from conftest import assert_full_marks_and_zero, assert_mistake_caught

A4 = "a4_backprop"


def backward(delta_o: str, delta_h: str, grads: str) -> str:
    return ("def backward(X, Y, cache, W_o):\n    A_h, A_o, Z_h, Z_o = cache['A_h'], cache['A_o'], cache['Z_h'], "
            f"cache['Z_o']\n    delta_o = {delta_o}\n    delta_h = {delta_h}\n    return {grads}\n")


D_O, D_H = "(A_o - Y) * sigmoid_derivative(A_o)", "(delta_o @ W_o.T) * sigmoid_derivative(A_h)"
GRADS = "{{'dW_h': {}, 'db_h': {}, 'dW_o': A_h.T @ delta_o, 'db_o': delta_o.sum(axis=0)}}"


def numgrad(body: str) -> str:
    return ("def numerical_gradient(f, x, eps=1e-6):\n    grad = np.zeros_like(x, dtype=float)\n"
            "    for i in np.ndindex(x.shape):\n        old = x[i]\n" + body + "    return grad\n")


MISTAKES = [
    ("backward", backward("(A_o - Y) * sigmoid_derivative(Z_o)", "(delta_o @ W_o.T) * sigmoid_derivative(Z_h)",
                          GRADS.format("X.T @ delta_h", "delta_h.sum(axis=0)")),
     "takes the activation A, not the pre-activation Z"),
    ("backward", backward(D_O, D_H, GRADS.format("(X.T @ delta_h).T", "delta_h.sum(axis=0)")), "dW_h is transposed"),
    ("backward", backward(D_O, D_H, GRADS.format("X.T @ delta_h", "delta_h")), "summed over the rows"),
    ("backward", backward(D_O, D_H, "{k: v / len(X) for k, v in " + GRADS.format("X.T @ delta_h",
                                                                                  "delta_h.sum(axis=0)") + ".items()}"),
     "do not divide the gradients by n"),
    ("numerical_gradient", numgrad("        x[i] = old + eps\n        plus = f(x)\n        x[i] = old\n"
                                   "        grad[i] = (plus - f(x)) / eps\n"),
     "one-sided difference"),
    ("numerical_gradient", numgrad("        x[i] = old + eps\n        plus = f(x)\n        x[i] = old - eps\n"
                                   "        grad[i] = (plus - f(x)) / (2 * eps)\n"),
     "left x changed"),
    ("sgd_update", "def sgd_update(params, grads, lr):\n    for k in params:\n"
                   "        params[k] -= lr * grads['d' + k]\n    return params\n",
     "changed its input params in place"),
    ("sigmoid_derivative", "def sigmoid_derivative(a):\n    return sigmoid(a) * (1 - sigmoid(a))\n",
     "do not apply sigmoid again"),
    ("forward", "def forward(X, W_h, b_h, W_o, b_o):\n    Z_h = X @ W_h + b_h\n    A_h = sigmoid(Z_h)\n"
                "    Z_o = A_h @ W_o + b_o\n    return {'Z_h': Z_h, 'A_h': A_h, 'Z_o': Z_o, 'A_o': Z_o}\n",
     "['A_o'] differs"),
    ("relative_error", "def relative_error(a, b):\n    return float(np.max(np.abs(a - b)))\n", "relative error"),
]


def test_reference_gets_full_marks_and_the_release_zero(grade) -> None:
    assert_full_marks_and_zero(grade, A4)


@pytest.mark.parametrize(("function", "code", "fragment"), MISTAKES,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, function, code, fragment) -> None:
    assert_mistake_caught(grade, A4, function, code, fragment)

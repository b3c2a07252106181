"""Reference solution for a1_linear_regression (contract: shared spec, exercises.md)."""

from __future__ import annotations

import numpy as np


def normal_equation(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Solve (X^T X) beta = X^T y.  X: (n, d), y: (n,) -> beta: (d,)."""
    return np.linalg.solve(X.T @ X, X.T @ y)


def add_intercept(X: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d + 1) with a first column of ones."""
    return np.hstack([np.ones((X.shape[0], 1)), X])


def simple_linear_regression(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """x, y: (n,) -> (beta0, beta1) of the least-squares line."""
    dx, dy = x - x.mean(), y - y.mean()
    beta1 = float(np.sum(dx * dy) / np.sum(dx**2))
    return float(y.mean() - beta1 * x.mean()), beta1


def mse_loss(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """1/(2n) * sum((X beta - y)^2)."""
    r = X @ beta - y
    return float(r @ r / (2 * len(y)))


def mse_gradient(beta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(1/n) X^T (X beta - y), shape (d,)."""
    return X.T @ (X @ beta - y) / len(y)


def gradient_descent(X: np.ndarray, y: np.ndarray, lr: float, n_steps: int,
                     beta_init: np.ndarray | None = None) -> np.ndarray:
    """Trajectory of shape (n_steps + 1, d); row 0 is the start."""
    beta = np.zeros(X.shape[1]) if beta_init is None else np.array(beta_init, dtype=float)
    path = [beta]
    for _ in range(n_steps):
        beta = beta - lr * mse_gradient(beta, X, y)
        path.append(beta)
    return np.array(path)


def minibatch_sgd(X: np.ndarray, y: np.ndarray, lr: float, n_epochs: int, batch_size: int,
                  seed: int) -> np.ndarray:
    """Final beta (d,) after n_epochs of shuffled mini-batch gradient steps."""
    n, d = X.shape
    beta = np.zeros(d)
    rng = np.random.default_rng(seed)
    for _ in range(n_epochs):
        perm = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            beta = beta - lr * mse_gradient(beta, X[idx], y[idx])
    return beta

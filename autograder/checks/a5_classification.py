"""Checks for a5_classification: a stable BCE, probabilities from logits, accuracy, and a trained classifier
on scikit-learn's bundled digits, judged on held-out data against the reference with a margin."""

from __future__ import annotations

import functools

import numpy as np

from ..checking import Suite, Trial, mistake
from ..compare import factor_hint

SUITE = Suite(
    "a5_classification",
    "classification.ipynb",
    mistakes=[mistake(f, c, '', typical=True) for f, c in {
        "bce_with_logits": "def bce_with_logits(logits, y):\n"
                           "    p = 1 / (1 + np.exp(-logits))\n"
                           "    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))\n",
        "accuracy": "def accuracy(y_true, y_pred):\n    return 100.0 * float(np.mean(y_true == y_pred))\n",
    }.items()],
    preload=("torch",),
    warm_torch=True,
)
check = SUITE.check
PROBE = "probes_a5_classification"
# train_classifier passes with held-out accuracy >= reference - ACCURACY_MARGIN (and at least ACCURACY_FLOOR).
ACCURACY_MARGIN, ACCURACY_FLOOR = 0.05, 0.85


@functools.cache
def digits_task() -> tuple[np.ndarray, np.ndarray]:
    """Digits 3 and 8 of scikit-learn's bundled digits (label 1 for an 8): 357 images of 8 x 8 pixels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    mask = np.isin(data.target, [3, 8])
    return data.data[mask].astype(np.float64), (data.target[mask] == 8).astype(np.float64)


@check("bce_with_logits", "matches the reference on moderate logits")
def _(t: Trial) -> None:
    z, y = t.rng.normal(scale=3, size=12), t.rng.integers(0, 2, size=12).astype(float)

    def missing_term(g, w) -> str | None:
        p = 1 / (1 + np.exp(-z))
        if np.isclose(g, np.mean(-y * np.log(p))):
            return "the (1 - y) log(1 - σ(z)) term is missing: negatives (y = 0) must cost something too."
        return None

    t.expect_close(t.call("bce_with_logits", z, y), t.ref("bce_with_logits", z, y), "the loss",
                   hints=[missing_term])


@check("bce_with_logits", "is finite and right for logits up to |z| = 1e4", seeded=False)
def _(t: Trial) -> None:
    z = np.array([-1e4, -1000.0, -30.0, 0.0, 30.0, 1000.0, 1e4])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    got = t.call("bce_with_logits", z, y)
    if isinstance(got, float) and not np.isfinite(got):
        t.fail(f"the loss is {got} for large |z|: log(σ(z)) underflows to log(0). Use the stable form "
               "max(z, 0) - z y + log(1 + e^(-|z|)).")
    t.expect_close(got, t.ref("bce_with_logits", z, y), "the loss for large logits")


@check("predict_proba", "returns sigmoid probabilities of the model's logits, shape (n,)")
def _(t: Trial) -> None:
    d = 4 if t.public else int(t.rng.integers(2, 9))
    weight, bias = t.rng.normal(size=(1, d)).astype(np.float32), t.rng.normal(size=1).astype(np.float32)
    X = t.rng.normal(size=(7, d))
    got = t.probe(f"{PROBE}.predict", label="predict_proba", weight=weight, bias=bias, X=X)
    want = t.ref_probe(f"{PROBE}.predict", weight=weight, bias=bias, X=X)
    logits = (X @ weight.T.astype(np.float64) + bias).ravel()
    hints = [lambda g, w: "these are the logits: apply the sigmoid to get probabilities."
             if np.allclose(np.ravel(g), logits, rtol=1e-4, atol=1e-4) else None]
    t.expect_close(np.asarray(got, dtype=np.float64) if isinstance(got, np.ndarray) else got, want,
                   "the probabilities", iterative=True, hints=hints)


@check("accuracy", "is the fraction of matching labels, in [0, 1]")
def _(t: Trial) -> None:
    n = 10 if t.public else int(t.rng.integers(5, 50))
    y_true, y_pred = t.rng.integers(0, 2, size=n), t.rng.integers(0, 2, size=n)
    t.expect_close(t.call("accuracy", y_true, y_pred), t.ref("accuracy", y_true, y_pred), "the accuracy",
                   hints=[factor_hint([("100", 100.0, "return a fraction in [0, 1], not a percentage")])])


@check("train_classifier", "reaches the reference's held-out accuracy and is deterministic", seconds=60.0)
def _(t: Trial) -> None:
    X, y = digits_task()
    order = t.rng.permutation(len(y))
    train, test = order[:250], order[250:]
    seed = int(t.rng.integers(0, 1000))
    args = {"X": X[train], "y": y[train], "seed": seed, "X_test": X[test]}
    got = t.probe(f"{PROBE}.train", label="train_classifier", seconds=60.0, **args)
    want = t.ref_probe(f"{PROBE}.train", **args)
    if not np.array_equal(got["logits"], got["again"]):
        t.fail("two runs with the same seed gave different models: seed everything from `seed` "
               "(torch.manual_seed(seed), and a seeded generator for any shuffling).")
    acc = float(np.mean((got["logits"] > 0) == y[test]))
    ref_acc = float(np.mean((want["logits"] > 0) == y[test]))
    limit = max(ref_acc - ACCURACY_MARGIN, ACCURACY_FLOOR)
    t.expect(acc >= limit, f"held-out accuracy {acc:.3f} is below the required {limit:.3f}. Does the model "
             "output logits (no sigmoid at the end), are the inputs scaled, and does it train long enough?")

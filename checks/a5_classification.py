"""Checks for a5_classification: a stable BCE, probabilities from logits in evaluation mode, accuracy, and a trained
classifier on scikit-learn's bundled digits, judged on held-out data against the reference with a margin.

The classifier is trained and judged on a hidden, seeded view of the digits (pixels permuted, plus noise), for
the student and the reference alike: a model that looks its inputs up in the bundled dataset (which the sandbox
can import) finds nothing, while anything that learns from its training data is unaffected.
"""

from __future__ import annotations

import functools

import numpy as np

from autograder import Suite, Trial, Variant, factor_hint, matches, mistake, values

SUITE = Suite(
    preload=("torch",),
    warm_torch=True,
)
check = SUITE.check
# train_classifier passes with held-out accuracy >= reference - ACCURACY_MARGIN (and at least ACCURACY_FLOOR).
ACCURACY_MARGIN, ACCURACY_FLOOR = 0.05, 0.85
# The hidden view of the digits: a seeded permutation of the 64 pixels plus Gaussian noise of this standard deviation
# (pixels range over 0-16). The reference keeps 94-100% held-out accuracy on it, as do an MLP and a small CNN.
PIXEL_NOISE = 1.0


@functools.cache
def digits_task() -> tuple[np.ndarray, np.ndarray]:
    """Digits 3 and 8 of scikit-learn's bundled digits (label 1 for an 8): 357 images of 8 x 8 pixels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    mask = np.isin(data.target, [3, 8])
    return data.data[mask].astype(np.float64), (data.target[mask] == 8).astype(np.float64)


def hidden_view(t: Trial, X: np.ndarray) -> np.ndarray:
    """The digits as this trial shows them: pixels permuted and noise added, both drawn from the trial's seed."""
    return X[:, t.rng.permutation(X.shape[1])] + t.rng.normal(scale=PIXEL_NOISE, size=X.shape)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def clipped_hint(z: np.ndarray, y: np.ndarray):
    """Probabilities clipped away from 0 and 1 (or log clamped, as nn.BCELoss does) instead of the stable form."""
    p = _sigmoid(z)
    candidates = [np.mean(-(y * np.log(np.clip(p, eps, 1 - eps)) + (1 - y) * np.log(np.clip(1 - p, eps, 1 - eps))))
                  for eps in (1e-15, 1e-12, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4)]
    with np.errstate(divide="ignore"):
        candidates.append(np.mean(-(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log(1 - p), -100))))

    def hint(got, want) -> str | None:
        if any(matches(got, c, 1e-6, 1e-9) for c in candidates):
            return ("the probabilities are clipped (or the logs clamped), which caps the loss of a confidently wrong "
                    "prediction: use the stable form max(z, 0) - z y + log(1 + e^(-|z|)), exact for any z.")
        return None

    return hint


@check("bce_with_logits", "matches the reference on moderate logits")
def bce_with_logits_matches_the_reference_on_moderate_logits(t: Trial) -> None:
    z, y = t.rng.normal(scale=3, size=12), t.rng.integers(0, 2, size=12).astype(float)
    t.expect_close(t.call("bce_with_logits", z, y), t.ref("bce_with_logits", z, y), "the loss",
                   hints=[missing_term_hint(z, y)])


def missing_term_hint(z: np.ndarray, y: np.ndarray):
    """Only the positives' term, −y log σ(z)."""
    positives = np.mean(-y * np.log(_sigmoid(z)))
    return lambda got, want: ("the (1 - y) log(1 - σ(z)) term is missing: negatives (y = 0) must cost something too."
                              if matches(got, positives) and not matches(got, want) else None)


@check("bce_with_logits", "is finite and right for logits up to |z| = 1e4", seeded=False)
def bce_with_logits_is_finite_and_right_for_logits_up_to_z_1e4(t: Trial) -> None:
    z = np.array([-1e4, -1000.0, -30.0, 0.0, 30.0, 1000.0, 1e4])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    got = t.call("bce_with_logits", z, y)
    if isinstance(got, float) and not np.isfinite(got):
        t.fail(f"the loss is {got} for large |z|: log(σ(z)) underflows to log(0). Use the stable form "
               "max(z, 0) - z y + log(1 + e^(-|z|)).")
    t.expect_close(got, t.ref("bce_with_logits", z, y), "the loss for large logits", hints=[clipped_hint(z, y)])


def _predict_args(t: Trial) -> dict:
    d = 4 if t.public else int(t.rng.integers(2, 9))
    state = {"0.weight": 1 + t.rng.normal(scale=0.3, size=d), "0.bias": t.rng.normal(scale=0.3, size=d),
             "0.running_mean": t.rng.normal(size=d), "0.running_var": t.rng.uniform(0.5, 3.0, size=d),
             "1.weight": t.rng.normal(size=(1, d)), "1.bias": t.rng.normal(size=1)}
    state = {k: v.astype(np.float32) for k, v in state.items()} | {"0.num_batches_tracked": np.array(10)}
    return {"state": state, "X": t.rng.normal(size=(7, d))}


def eval_logits(state: dict, X: np.ndarray) -> np.ndarray:
    """The logits of the grader's model in evaluation mode (batch norm with its running statistics)."""
    s = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
    normed = (X - s["0.running_mean"]) / np.sqrt(s["0.running_var"] + 1e-5) * s["0.weight"] + s["0.bias"]
    return (normed @ s["1.weight"].T + s["1.bias"]).ravel()


@check("predict_proba", "returns sigmoid probabilities of the logits in evaluation mode, shape (n,)")
def predict_proba_returns_sigmoid_probabilities_of_the_logits_in_evaluatio(t: Trial) -> None:
    args = _predict_args(t)
    got = t.probe("predict", label="predict_proba", **args)
    want = t.ref_probe("predict", **args)
    hints = [logits_hint(eval_logits(args["state"], args["X"])), softmax_hint,
             train_mode_hint(lambda: t.ref_probe("predict", skip=["eval"], **args))]
    t.expect_close(np.asarray(got, dtype=np.float64) if isinstance(got, np.ndarray) else got, want,
                   "the probabilities", iterative=True, hints=hints)


def logits_hint(logits: np.ndarray):
    """The logits themselves, without the sigmoid."""
    return lambda got, want: ("these are the logits: apply the sigmoid to get probabilities."
                              if matches(np.ravel(values(got)), logits, 1e-4, 1e-4) else None)


def softmax_hint(got, want) -> str | None:
    """All ones: a softmax over the single logit."""
    g = np.asarray(values(got), dtype=float)
    if g.size and np.allclose(g, 1.0) and not np.allclose(want, 1.0):
        return "every probability is 1: a softmax over a single logit is always 1; apply the sigmoid."
    return None


def train_mode_hint(in_train_mode):
    """The probabilities of the model left in training mode (``in_train_mode()`` replays that on the reference)."""
    return lambda got, want: ("these are the probabilities of the model in training mode (batch norm used the "
                              "batch's statistics): call model.eval() before predicting."
                              if matches(got, in_train_mode(), 1e-4, 1e-5) else None)


@check("accuracy", "is the fraction of matching labels, in [0, 1]")
def accuracy_is_the_fraction_of_matching_labels_in_0_1(t: Trial) -> None:
    n = 10 if t.public else int(t.rng.integers(5, 50))
    y_true, y_pred = t.rng.integers(0, 2, size=n), t.rng.integers(0, 2, size=n)
    t.expect_close(t.call("accuracy", y_true, y_pred), t.ref("accuracy", y_true, y_pred), "the accuracy",
                   hints=[factor_hint([("100", 100.0, "return a fraction in [0, 1], not a percentage")])])


@check("train_classifier", "reaches the reference's held-out accuracy and is deterministic", seconds=60.0,
       trains=True)
def train_classifier_reaches_the_reference_s_held_out_accuracy_and_is_dete(t: Trial) -> None:
    X, y = digits_task()
    X = hidden_view(t, X)
    order = t.rng.permutation(len(y))
    train, test = order[:250], order[250:]
    seed = int(t.rng.integers(0, 1000))
    args = {"X": X[train], "y": y[train], "seed": seed, "X_test": X[test]}
    got = t.probe("train", label="train_classifier", **args)  # the check's own budget
    # the same call in a new student process: nothing the first run kept (a model, a file) can reach it
    again = t.probe("train", label="train_classifier", fresh=True, **args)
    want = t.ref_probe("train", **args)
    if not np.array_equal(got["logits"], again["logits"]):
        t.fail("two runs with the same seed gave different models: seed everything from `seed` "
               "(torch.manual_seed(seed), and a seeded generator for any shuffling).")
    acc = float(np.mean((got["logits"] > 0) == y[test]))
    ref_acc = float(np.mean((want["logits"] > 0) == y[test]))
    limit = max(ref_acc - ACCURACY_MARGIN, ACCURACY_FLOOR)
    advice = ("Does the model output logits (no sigmoid at the end), are the inputs scaled, and does it train long "
              "enough? (It is judged on data it has not seen, as it would be used.)")
    t.expect(acc >= limit, f"held-out accuracy is below the required one (the reference's minus "
             f"{ACCURACY_MARGIN:g}, at least {ACCURACY_FLOOR:g}). {advice}",
             f"held-out accuracy {acc:.3f} is below the required {limit:.3f}. {advice}")


# -- the catalogue: known mistakes (each costs only its function) and correct variants (full marks) ---------

_CLASSIFIER = ("def train_classifier(X, y, seed):\n    torch.manual_seed(seed)\n"
               "    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)\n"
               "    y = torch.as_tensor(np.asarray(y), dtype=torch.float32).reshape(-1)\n"
               "    mean, std = X.mean(0), X.std(0) + 1e-3\n@BODY@")

SUITE.mistakes = [
    mistake("bce_with_logits", "def bce_with_logits(logits, y):\n    p = 1 / (1 + np.exp(-logits))\n"
            "    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))\n", "Use the stable form",
            typical=True),
    mistake("bce_with_logits", "def bce_with_logits(logits, y):\n"
            "    return float(np.mean(-y * np.log(1 / (1 + np.exp(-logits)))))\n",
            "the (1 - y) log(1 - σ(z)) term is missing"),
    mistake("bce_with_logits", "def bce_with_logits(logits, y):\n"
            "    p = np.clip(1 / (1 + np.exp(-np.clip(logits, -500, 500))), 1e-7, 1 - 1e-7)\n"
            "    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))\n",
            "the probabilities are clipped"),
    mistake("accuracy", "def accuracy(y_true, y_pred):\n    return 100.0 * float(np.mean(y_true == y_pred))\n",
            "not a percentage", typical=True),
    mistake("predict_proba", "def predict_proba(model, X):\n    model.eval()\n    with torch.no_grad():\n"
            "        return model(torch.as_tensor(X, dtype=torch.float32)).reshape(-1).numpy()\n",
            "these are the logits"),
    mistake("predict_proba", "def predict_proba(model, X):\n    with torch.no_grad():\n"
            "        logits = model(torch.as_tensor(X, dtype=torch.float32))\n"
            "    return torch.sigmoid(logits).reshape(-1).double().numpy()\n", "call model.eval()"),
    mistake("predict_proba", "def predict_proba(model, X):\n    model.eval()\n    with torch.no_grad():\n"
            "        logits = model(torch.as_tensor(X, dtype=torch.float32))\n"
            "    return torch.softmax(logits, dim=1).reshape(-1).numpy()\n", "a softmax over a single logit"),
    mistake("train_classifier", "class Standardize(nn.Module):\n    pass\n\n"
            "def train_classifier(X, y, seed):\n    model = nn.Linear(X.shape[1], 1)\n"
            "    opt = torch.optim.SGD(model.parameters(), lr=1e-4)\n"
            "    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)\n"
            "    for _ in range(3):\n        opt.zero_grad()\n"
            "        nn.functional.binary_cross_entropy_with_logits(model(X)[:, 0], y).backward()\n"
            "        opt.step()\n    return model\n",
            "different models"),
    mistake("train_classifier", "class Standardize(nn.Module):\n    pass\n\n"
            "def train_classifier(X, y, seed):\n    torch.manual_seed(seed)\n"
            "    return nn.Linear(X.shape[1], 1)\n", "held-out accuracy"),
]

SUITE.variants = [
    Variant("bce_with_logits with np.logaddexp", {"bce_with_logits": "def bce_with_logits(logits, y):\n"
                                                  "    return np.mean(np.logaddexp(0, logits) - y * logits)\n"}),
    Variant("predict_proba that puts the model back in its previous mode",
            {"predict_proba": "def predict_proba(model, X):\n    was_training = model.training\n    model.eval()\n"
             "    with torch.no_grad():\n        p = torch.sigmoid(model(torch.from_numpy(np.asarray(X)).float()))\n"
             "    model.train(was_training)\n    return p.squeeze(1).numpy()\n"}),
    Variant("accuracy as a numpy mean", {"accuracy": "def accuracy(y_true, y_pred):\n"
                                         "    return (np.asarray(y_true) == np.asarray(y_pred)).mean()\n"}),
    Variant("train_classifier with a small MLP and minibatches",
            {"train_classifier": "class Standardize(nn.Module):\n"
             "    def __init__(self, mean, std):\n        super().__init__()\n"
             "        self.register_buffer('mean', mean)\n        self.register_buffer('std', std)\n"
             "    def forward(self, x):\n        return (x - self.mean) / self.std\n\n" + _CLASSIFIER.replace(
                 "@BODY@",
                 "    net = nn.Sequential(nn.Linear(X.shape[1], 16), nn.ReLU(), nn.Linear(16, 1))\n"
                 "    opt = torch.optim.Adam(net.parameters(), lr=0.01)\n"
                 "    g = torch.Generator().manual_seed(seed)\n"
                 "    for _ in range(30):\n"
                 "        for idx in torch.randperm(len(y), generator=g).split(32):\n"
                 "            opt.zero_grad()\n"
                 "            loss = nn.functional.binary_cross_entropy_with_logits(\n"
                 "                net((X[idx] - mean) / std).reshape(-1), y[idx])\n"
                 "            loss.backward()\n            opt.step()\n"
                 "    return nn.Sequential(Standardize(mean, std), net).eval()\n")}),
]

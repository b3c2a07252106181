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
near_miss = SUITE.near_miss
# train_classifier passes with held-out accuracy >= reference - ACCURACY_MARGIN (and at least ACCURACY_FLOOR), and a
# held-out log-loss (the mean binary cross-entropy of its logits) at most LOSS_FACTOR times the reference's or the
# reference's plus LOSS_MARGIN, whichever is larger. Accuracy alone hides a model that predicts on inputs scaled
# otherwise than in training, or that trained without zeroing its gradients: such a model is confidently wrong on
# held-out points. On the public view the reference's log-loss is 0.034 (limit 0.172); those mistakes score
# 0.18-1.2 there. Correct classifiers (logistic regression by Adam, SGD or L-BFGS, MLPs with and without minibatches,
# a 256-256 MLP trained to zero training loss) stayed within the limit on the public view and 30 hidden ones.
ACCURACY_MARGIN, ACCURACY_FLOOR = 0.05, 0.85
LOSS_FACTOR, LOSS_MARGIN = 5.0, 0.1
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
def predict_proba_returns_sigmoid_probabilities_in_eval_mode(t: Trial) -> None:
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
    """All ones: the single logit normalised over itself (a softmax over dim=1, or a division by its own sum)."""
    g = np.asarray(values(got), dtype=float)
    if g.size and np.allclose(g, 1.0) and not np.allclose(want, 1.0):
        return ("every probability is 1: normalising over a single logit (a softmax over a single logit, or a "
                "division by its own sum) always gives 1; apply the sigmoid to the logit.")
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
def train_classifier_reaches_the_reference_accuracy_deterministically(t: Trial) -> None:
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
    alone = got["logits"][:len(got["alone"])]
    t.expect(np.allclose(got["alone"], alone, rtol=1e-4, atol=1e-4),
             "the model's logit for an input depends on the other inputs of the batch: a prediction must come from "
             "the input alone. Compute the scaling statistics (mean, std) once from the training data and keep them "
             "in the model, instead of from each batch it is given.")
    loss, ref_loss = _bce(got["logits"], y[test]), _bce(want["logits"], y[test])
    loss_limit = max(LOSS_FACTOR * ref_loss, ref_loss + LOSS_MARGIN)
    loss_advice = ("Are the inputs scaled at prediction exactly as in training (the model you return must do the "
                   "scaling itself), and are the gradients zeroed before each backward()?")
    t.expect(loss <= loss_limit,
             f"held-out log-loss (the mean binary cross-entropy of the logits) is above the limit (the reference's "
             f"times {LOSS_FACTOR:g}, or plus {LOSS_MARGIN:g}, whichever is larger): the model is often confidently "
             f"wrong on data it has not seen. {loss_advice}",
             f"held-out log-loss {loss:.3f} is above the limit {loss_limit:.3f} (the reference's {ref_loss:.3f} times "
             f"{LOSS_FACTOR:g}, or plus {LOSS_MARGIN:g}): the model is often confidently wrong on data it has not "
             f"seen. {loss_advice}")


def _bce(logits: np.ndarray, y: np.ndarray) -> float:
    z = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


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

_STANDARDIZE = ("class Standardize(nn.Module):\n    def __init__(self, mean, std):\n        super().__init__()\n"
                "        self.register_buffer('mean', mean)\n        self.register_buffer('std', std)\n"
                "    def forward(self, x):\n        return (x - self.mean) / self.std\n\n")
_LOGISTIC = ("    linear = nn.Linear(X.shape[1], 1)\n"
             "    optimizer = torch.optim.Adam(linear.parameters(), lr=0.05, weight_decay=1e-3)\n"
             "    for _ in range(200):\n        optimizer.zero_grad()\n"
             "        loss = nn.functional.binary_cross_entropy_with_logits(linear((X - mean) / std).reshape(-1), y)\n"
             "        loss.backward()\n        optimizer.step()\n")


def _logistic(returned: str, standardize: str = _STANDARDIZE, body: str = _LOGISTIC) -> str:
    """The reference's logistic regression, with what it returns (and its Standardize) written out."""
    return standardize + _CLASSIFIER.replace("@BODY@", body + f"    return {returned}\n")


SUITE.mistakes += [
    mistake("train_classifier", _logistic("linear.eval()"), "held-out log-loss"),  # standardised in training only
    mistake("train_classifier", _logistic("nn.Sequential(Standardize(mean, std), linear).eval()",
                                          _STANDARDIZE.replace("(x - self.mean) / self.std", "x - self.mean")),
            "held-out log-loss"),  # scaled otherwise at inference: the mean subtracted, no division by the std
    mistake("train_classifier", _logistic("nn.Sequential(Standardize(mean, std), linear).eval()",
                                          _STANDARDIZE.replace("(x - self.mean) / self.std",
                                                               "(x - self.mean) * self.std")),
            "held-out log-loss"),  # multiplied by the std at inference, divided in training
    mistake("train_classifier", _logistic("nn.Sequential(Standardize(mean, std), linear).eval()",
                                          body=_LOGISTIC.replace("        optimizer.zero_grad()\n", "")),
            "held-out log-loss"),  # no zero_grad: the gradients accumulate over the 200 steps
    mistake("train_classifier", _logistic(
        "nn.Sequential(BatchStandardize(), linear).eval()",
        "class Standardize(nn.Module):\n    pass\n\n\nclass BatchStandardize(nn.Module):\n"
        "    def forward(self, x):\n        return (x - x.mean(0)) / (x.std(0) + 1e-3)\n\n"),
            "depends on the other inputs of the batch"),  # statistics of each batch at prediction time
]

SUITE.variants += [
    Variant("train_classifier with a DataLoader and the PyTorch tutorial's training loop",
            {"train_classifier": _STANDARDIZE + _CLASSIFIER.replace("@BODY@", (
                "    from torch.utils.data import DataLoader, TensorDataset\n"
                "    loader = DataLoader(TensorDataset((X - mean) / std, y), batch_size=32, shuffle=True,\n"
                "                        generator=torch.Generator().manual_seed(seed))\n"
                "    model = nn.Sequential(nn.Linear(X.shape[1], 32), nn.ReLU(), nn.Linear(32, 1))\n"
                "    loss_fn = nn.BCEWithLogitsLoss()\n"
                "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                "    for epoch in range(20):\n        model.train()\n"
                "        for batch, (xb, yb) in enumerate(loader):\n"
                "            pred = model(xb).squeeze(1)\n            loss = loss_fn(pred, yb)\n"
                "            loss.backward()\n            optimizer.step()\n            optimizer.zero_grad()\n"
                "    return nn.Sequential(Standardize(mean, std), model)\n"))}),
    Variant("train_classifier scaling the pixels by a fixed 1/16 in training and inference",
            {"train_classifier": "class Standardize(nn.Module):\n    def forward(self, x):\n"
             "        return x / 16\n\n" + _CLASSIFIER.replace("@BODY@", (
                 "    linear = nn.Linear(X.shape[1], 1)\n"
                 "    opt = torch.optim.Adam(linear.parameters(), lr=0.05)\n"
                 "    for _ in range(300):\n        opt.zero_grad()\n"
                 "        nn.functional.binary_cross_entropy_with_logits(linear(X / 16).reshape(-1), y).backward()\n"
                 "        opt.step()\n"
                 "    return nn.Sequential(Standardize(), linear)\n"))}),
]

# Near misses: beside each catalogued mistake with a hint, a plausible mistake with the same symptom and another
# cause. Each loses points, without the hint whose diagnosis it does not share.
SUITE.near_misses = [
    near_miss("only the negatives' term", "bce_with_logits",
              "def bce_with_logits(logits, y):\n"
              "    return float(np.mean(-(1 - y) * np.log(1 - 1 / (1 + np.exp(-logits)))))\n",
              "term is missing"),
    near_miss("the logits clipped to [-30, 30] (not the probabilities)", "bce_with_logits",
              "def bce_with_logits(logits, y):\n    z = np.clip(logits, -30, 30)\n"
              "    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))\n",
              "the probabilities are clipped"),
    near_miss("a count of matching labels (not a percentage)", "accuracy",
              "def accuracy(y_true, y_pred):\n    return float(np.sum(np.asarray(y_true) == np.asarray(y_pred)))\n",
              "not a percentage"),
    near_miss("tanh of the logits", "predict_proba",
              "def predict_proba(model, X):\n    model.eval()\n    with torch.no_grad():\n"
              "        logits = model(torch.as_tensor(X, dtype=torch.float32))\n"
              "    return torch.tanh(logits).reshape(-1).double().numpy()\n",
              "these are the logits"),
    near_miss("the sigmoid applied twice, in evaluation mode", "predict_proba",
              "def predict_proba(model, X):\n    model.eval()\n    with torch.no_grad():\n"
              "        p = torch.sigmoid(torch.sigmoid(model(torch.as_tensor(X, dtype=torch.float32))))\n"
              "    return p.reshape(-1).double().numpy()\n",
              "call model.eval()"),
    near_miss("a softmax over the batch (dim=0)", "predict_proba",
              "def predict_proba(model, X):\n    model.eval()\n    with torch.no_grad():\n"
              "        logits = model(torch.as_tensor(X, dtype=torch.float32))\n"
              "    return torch.softmax(logits, dim=0).reshape(-1).double().numpy()\n",
              "single logit"),
]

"""Probes for a5_classification: a logistic model from plain weights, and the notebook's trained classifier."""

from __future__ import annotations

from .probes import lookup


def predict(ns: dict, *, state: dict, X, device: str = "cpu", skip: list | tuple = ()):
    """predict_proba on the grader's model (BatchNorm1d with non-trivial running statistics, then Linear(d, 1):
    logits out), handed over in training mode: predict_proba must switch it to evaluation mode. ``skip=["eval"]``
    (on the reference only) replays a missing model.eval(), for a diagnosis."""
    import torch

    d = state["1.weight"].shape[1]
    model = torch.nn.Sequential(torch.nn.BatchNorm1d(d), torch.nn.Linear(d, 1))
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    model.train()
    if "eval" in skip:
        model.eval = lambda: model
    return lookup(ns, "predict_proba")(model, X.copy())


def train(ns: dict, *, X, y, seed: int, X_test, device: str = "cpu") -> dict:
    """train_classifier(X, y, seed); the logits of its model on X_test (a flat float64 array), and on the first
    ``ALONE`` rows of X_test as a batch of their own. The check runs it twice, the second time in a new student
    process, to judge determinism as a new Python session would."""
    import torch

    model = lookup(ns, "train_classifier")(X.copy(), y.copy(), seed).to("cpu").eval()
    inputs = torch.tensor(X_test, dtype=torch.float32)
    with torch.no_grad():
        return {"logits": model(inputs).reshape(-1).double().numpy(),
                "alone": model(inputs[:ALONE]).reshape(-1).double().numpy()}


ALONE = 3  # the first held-out inputs are also predicted on their own: a prediction must not depend on the batch

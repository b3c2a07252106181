"""Probes for a5_classification: a logistic model from plain weights, and the notebook's trained classifier."""

from __future__ import annotations

from .probes import lookup


def predict(ns: dict, *, weight, bias, X, device: str = "cpu"):
    """predict_proba on an nn.Linear(d, 1) with the given weights (logits out)."""
    import torch

    model = torch.nn.Linear(weight.shape[1], 1)
    model.load_state_dict({"weight": torch.tensor(weight), "bias": torch.tensor(bias)})
    return lookup(ns, "predict_proba")(model, X.copy())


def train(ns: dict, *, X, y, seed: int, X_test, device: str = "cpu") -> dict:
    """train_classifier(X, y, seed) twice; the logits of both models on X_test (flat float64 arrays)."""
    import torch

    fn = lookup(ns, "train_classifier")
    outs = []
    for _ in range(2):
        model = fn(X.copy(), y.copy(), seed).to("cpu").eval()
        with torch.no_grad():
            outs.append(model(torch.tensor(X_test, dtype=torch.float32)).reshape(-1).double().numpy())
    return {"logits": outs[0], "again": outs[1]}

"""a5_classification: full marks for the reference, zero for the release, and each mistake the issue lists caught
on its own function with feedback that names it."""

from __future__ import annotations

import pytest
from conftest import assert_full_marks_and_zero, assert_mistake_caught, outputs

from autograder import samples

A5 = "a5_classification"

MISTAKES = [
    ("bce_with_logits", "def bce_with_logits(logits, y):\n    p = 1 / (1 + np.exp(-logits))\n"
                        "    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))\n",
     "Use the stable form"),
    ("bce_with_logits", "def bce_with_logits(logits, y):\n"
                        "    return float(np.mean(-y * np.log(1 / (1 + np.exp(-logits)))))\n",
     "the (1 - y) log(1 - σ(z)) term is missing"),
    ("accuracy", "def accuracy(y_true, y_pred):\n    return 100.0 * float(np.mean(y_true == y_pred))\n",
     "not a percentage"),
    ("predict_proba", "def predict_proba(model, X):\n    with torch.no_grad():\n"
                      "        return model(torch.as_tensor(X, dtype=torch.float32)).reshape(-1).numpy()\n",
     "these are the logits"),
    ("train_classifier", "class Standardize(nn.Module):\n    pass\n\n"
                         "def train_classifier(X, y, seed):\n    model = nn.Linear(X.shape[1], 1)\n"
                         "    opt = torch.optim.SGD(model.parameters(), lr=1e-4)\n"
                         "    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)\n"
                         "    for _ in range(3):\n        opt.zero_grad()\n"
                         "        nn.functional.binary_cross_entropy_with_logits(model(X)[:, 0], y).backward()\n"
                         "        opt.step()\n    return model\n",
     "different models"),
]


def test_reference_gets_full_marks_and_the_release_zero(grade) -> None:
    assert_full_marks_and_zero(grade, A5)


@pytest.mark.parametrize(("function", "code", "fragment"), MISTAKES,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, function, code, fragment) -> None:
    assert_mistake_caught(grade, A5, function, code, fragment)


def test_a_deterministic_but_weak_classifier_fails_on_accuracy(grade) -> None:
    code = ("class Standardize(nn.Module):\n    pass\n\n"
            "def train_classifier(X, y, seed):\n    torch.manual_seed(seed)\n"
            "    return nn.Linear(X.shape[1], 1)\n")
    result = grade(A5, samples.build(A5, {"train_classifier": code}))
    assert "held-out accuracy" in outputs(result, "train_classifier")

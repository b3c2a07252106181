"""Sandbox and checks, round three: no score that was not earned. Each attack is submitted through the grader
(the sandbox, the course's checks) and must gain nothing: a narrower dtype or a lying tensor does not loosen the
tolerance, ..."""

from __future__ import annotations

import re

import pytest
from conftest import A1, A2, A3, A5, outputs

from autograder.authoring import samples

ZEROS16 = {
    "gradient_descent": "def gradient_descent(X, y, lr, n_steps, beta_init=None):\n"
                        "    return np.zeros((n_steps + 1, X.shape[1]), dtype=np.float16)\n",
    "minibatch_sgd": "def minibatch_sgd(X, y, lr, n_epochs, batch_size, seed):\n"
                     "    return np.zeros(X.shape[1], dtype=np.float16)\n",
}


def test_float16_zeros_earn_nothing_from_iterative_checks(grade) -> None:
    """float16 zeros used to be judged with float16's tolerance times the iterative factor (rtol 1.0): 12/12."""
    result = grade(A1, samples.build(A1, ZEROS16), only={"gradient_descent", "minibatch_sgd"})
    graded = [t for t in result.tests if t.max_score > 0]
    assert graded and all(t.score == 0 for t in graded), result.to_json()
    assert "too narrow to be graded" in outputs(result, "gradient_descent")


def test_float32_answers_to_float64_functions_keep_their_points(grade) -> None:
    """The public tests (np.allclose) accept float32 results: every hidden check does too, at float32's tolerance."""
    cells = {"mse_gradient": "def mse_gradient(beta, X, y):\n"
                             "    return (X.T @ (X @ beta - y) / len(y)).astype(np.float32)\n",
             "normal_equation": "def normal_equation(X, y):\n"
                                "    return np.linalg.solve(X.T @ X, X.T @ y).astype(np.float32)\n"}
    result = grade(A1, samples.build(A1, cells), only={"mse_gradient", "normal_equation"})
    assert result.score == result.max_score, result.to_json()


HALVED = """\
def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    model.train()
    losses = []
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        with torch.no_grad():
            losses.append(loss_fn(model(xb), yb).item())
    model.half()  # no step was taken: the grader's model comes back in float16
    return float(np.mean(losses))
"""


def test_halving_the_graders_model_does_not_loosen_the_check(grade) -> None:
    result = grade(A3, samples.build(A3, {"train_one_epoch": HALVED}), only={"train_one_epoch"})
    one_batch = [t for t in result.tests if t.name.startswith("train_one_epoch: one batch")]
    assert one_batch and all(t.score == 0 for t in one_batch), result.to_json()  # it took no step
    assert "too narrow to be graded" in outputs(result, "train_one_epoch")


LIAR = """\
class Float16Liar(torch.Tensor):
    __module__ = "torch.liar"  # the codec takes it for one of torch's own

    @property
    def dtype(self):
        return torch.float16


class MLP(nn.Module):
    def __init__(self, input_dim, hid_dim, output_dim):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hid_dim)
        self.fc2 = nn.Linear(hid_dim, output_dim)

    def forward(self, x):
        out = 1.006 * self.fc2(torch.relu(self.fc1(x)))  # 0.6 % off
        out = out.squeeze(-1) if out.shape[-1] == 1 else out
        return out.as_subclass(Float16Liar)
"""


def test_a_tensor_whose_dtype_lies_about_its_data_is_refused(grade) -> None:
    result = grade(A2, samples.build(A2, {"MLP": LIAR}), only={"MLP"})
    forward = [t for t in result.tests if t.name.startswith("MLP: forward")]
    assert forward and all(t.score == 0 for t in forward), result.to_json()
    assert "declared dtype" in outputs(result, "MLP")


# -- state carried from call to call ------------------------------------------------------------------------------

CACHING = """\
_cache = {}


class Standardize(nn.Module):
    pass


def train_classifier(X, y, seed):
    import os
    for path in (os.path.join(os.path.expanduser("~"), "model.pt"), "/tmp/model.pt", "/dev/shm/model.pt"):
        if "model" not in _cache and os.path.exists(path):
            _cache["model"] = torch.load(path, weights_only=False)
    if "model" in _cache:  # the first call's model, whatever the seed says
        return _cache["model"]
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float32).reshape(-1)
    mean, std = X.mean(0), X.std(0) + 1e-3
    model = nn.Sequential(nn.Linear(X.shape[1], 1))  # no torch.manual_seed(seed): a new model every time
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(model((X - mean) / std).reshape(-1), y).backward()
        opt.step()
    with torch.no_grad():
        model[0].bias -= model[0].weight @ (mean / std)
        model[0].weight /= std
    _cache["model"] = model
    for path in (os.path.join(os.path.expanduser("~"), "model.pt"), "/tmp/model.pt", "/dev/shm/model.pt"):
        try:
            torch.save(model, path)
        except Exception:
            pass
    return model
"""


def test_an_unseeded_classifier_that_caches_its_first_model_is_not_deterministic(grade) -> None:
    """a5's determinism check ran train_classifier twice in one process: a model cached in memory or in a file
    passed it (9/9). The second run is now a new student process."""
    result = grade(A5, samples.build(A5, {"train_classifier": CACHING}), only={"train_classifier"})
    text = outputs(result, "train_classifier")
    assert result.score == 0 and "two runs with the same seed gave different models" in text, text


RECORDER = """\
def normal_equation(X, y):
    with open("seen.txt", "a") as f:  # the working folder, which every call shares
        f.write(f"{X.shape} ")
    return np.linalg.solve(X.T @ X, X.T @ y)
"""
TELLER = """\
def mse_loss(beta, X, y):
    try:
        seen = open("seen.txt").read()
    except OSError:
        seen = "nothing"
    raise ValueError(f"normal_equation saw: {seen}")
"""


def test_a_public_message_never_carries_what_hidden_calls_saw(grade) -> None:
    """A function records its inputs in a file; a later function's public example raises an exception showing that
    file: once, the shapes of both hidden cases were printed this way. Every public example now runs before any
    hidden case."""
    result = grade(A1, samples.build(A1, {"normal_equation": RECORDER, "mse_loss": TELLER}),
                   only={"normal_equation", "mse_loss"})
    text = outputs(result, "mse_loss")
    assert "normal_equation saw:" in text, text
    shapes = shapes_in(text)
    assert shapes and set(shapes) <= {"(20, 3)", "(20, 1)"}, text  # the public examples' shapes alone


def shapes_in(feedback: str) -> list[str]:
    """The array shapes the teller's message shows."""
    return re.findall(r"\(\d+, \d+\)", feedback.split("normal_equation saw:")[1])


ORACLE = """\
def gradient_descent(X, y, lr, n_steps, beta_init=None):
    beta = np.zeros(X.shape[1]) if beta_init is None else beta_init.copy()
    path = [beta.copy()]
    rng = np.random.default_rng(0)
    for _ in range(200):  # the stub as an oracle: the correct gradient anywhere, as often as it likes
        mse_gradient(rng.normal(size=X.shape[1]), X, y)
    for _ in range(n_steps):
        beta = beta - lr * mse_gradient(beta, X, y)
        path.append(beta.copy())
    return np.array(path)
"""
WRONG_GRADIENT = "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y)\n"


def test_the_follow_through_stub_answers_only_what_a_correct_caller_asks(grade) -> None:
    """Follow-through replaces a failed helper with the reference's for the caller's test: it answers the calls the
    caller's own run makes, not an unbounded oracle."""
    oracle = grade(A1, samples.build(A1, {"mse_gradient": WRONG_GRADIENT, "gradient_descent": ORACLE}),
                   only={"mse_gradient", "gradient_descent"})
    text = outputs(oracle, "gradient_descent")
    assert "follow-through gives the correct mse_gradient for the calls a correct caller makes" in text, text
    honest = grade(A1, samples.build(A1, {"mse_gradient": WRONG_GRADIENT}), only={"mse_gradient", "gradient_descent"})
    assert all(t.score == t.max_score for t in honest.tests if t.name.startswith("gradient_descent:")), \
        honest.to_json()


X_CUBED = """\
class Cubed(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))  # trainable, and trained: one step of an optimizer moves it

    def forward(self, x):
        return x ** 3 + 0.0 * self.scale


def fit_cubic(seed):
    torch.manual_seed(seed)
    model = Cubed()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    ((model(torch.randn(8, 1)) - 1) ** 2).mean().backward()
    optimizer.step()
    return model
"""


def test_a_model_that_computes_the_answer_instead_of_learning_it_earns_nothing(grade) -> None:
    """Output-only training checks gave 15/15 to a fit_cubic returning a module that computes x**3 itself."""
    result = grade(A3, samples.build(A3, {"fit_cubic": X_CUBED}), only={"fit_cubic"})
    assert all(t.score == 0 for t in result.tests), result.to_json()
    assert "with its trainable parameters set to zero it still predicts x**3" in outputs(result, "fit_cubic")




@pytest.mark.slow
def test_fit_cubic_without_its_seed_loses_the_reproducibility_check(grade) -> None:
    solved = samples.solved_cells(A3)["fit_cubic"]
    assert "torch.manual_seed(seed)" in solved
    result = grade(A3, samples.build(A3, {"fit_cubic": solved.replace("torch.manual_seed(seed)", "pass")}),
                   only={"fit_cubic"})
    learned = [t for t in result.tests if "reproducibly" in t.name]
    assert learned and learned[0].score == 0, result.to_json()
    assert "two runs of fit_cubic with the same seed gave different models" in learned[0].output

"""Sandbox and checks, round three: no score that was not earned. Each attack is submitted through the grader
(the sandbox, the course's checks) and must gain nothing: a narrower dtype or a lying tensor does not loosen the
tolerance, ..."""

from __future__ import annotations

from conftest import A1, A2, A3, outputs

from autograder import samples

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

"""a2_mlp: full marks for the reference, zero for the release, and each mistake the issue lists caught on its
own function with feedback that names it."""

from __future__ import annotations

import pytest
from conftest import assert_full_marks_and_zero, assert_mistake_caught

A2 = "a2_mlp"

MLP_TEMPLATE = '''
class MLP(nn.Module):
    def __init__(self, input_dim, hid_dim, output_dim):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hid_dim)
        self.fc2 = nn.Linear(hid_dim, output_dim)

    def forward(self, x):
        out = {body}
        return out.squeeze(-1) if out.shape[-1] == 1 else out
'''
MLP_NOT_SQUEEZED = MLP_TEMPLATE.format(body="self.fc2(torch.relu(self.fc1(x)))").replace(
    "out.squeeze(-1) if out.shape[-1] == 1 else out", "out")
MLP_NO_ACTIVATION = MLP_TEMPLATE.format(body="self.fc2(self.fc1(x))")
MLP_SIGMOID = MLP_TEMPLATE.format(body="self.fc2(torch.sigmoid(self.fc1(x)))")
MLP_LAST_ACTIVATION = MLP_TEMPLATE.format(body="torch.relu(self.fc2(torch.relu(self.fc1(x))))")

DEEP_TEMPLATE = '''
class DeepMLP(nn.Module):
    def __init__(self, layer_sizes, activation=nn.ReLU):
        super().__init__()
        mods = []
        for a, b in zip(layer_sizes[:-1], layer_sizes[1:]):
            mods += [nn.Linear(a, b), {act}]
        self.layers = {container}

    def forward(self, x):
        {forward}
'''
DEEP_LAST_ACTIVATION = DEEP_TEMPLATE.format(act="activation()", container="nn.Sequential(*mods)",
                                            forward="return self.layers(x)")
DEEP_PLAIN_LIST = DEEP_TEMPLATE.format(act="activation()", container="mods[:-1]",
                                       forward="for layer in self.layers:\n            x = layer(x)\n        return x")
DEEP_ALWAYS_RELU = DEEP_TEMPLATE.format(act="nn.ReLU()", container="nn.Sequential(*mods[:-1])",
                                        forward="return self.layers(x)")
DEEP_ONE_LAYER_SHORT = DEEP_TEMPLATE.format(act="activation()", container="nn.Sequential(*mods[:-3])",
                                            forward="return self.layers(x)")

MISTAKES = [
    ("shallow_network",
     "def shallow_network(x, theta, phi, activation=relu):\n"
     "    return phi[0] + (theta[:, 0][None, :] + theta[:, 1][None, :] * x[:, None]) @ phi[1:]\n",
     "affine (a straight line) in x"),
    ("shallow_network",
     "def shallow_network(x, theta, phi, activation=relu):\n"
     "    return phi[0] + relu(theta[:, 0][None, :] + theta[:, 1][None, :] * x[:, None]) @ phi[1:]\n",
     "use the `activation` argument"),
    ("MLP", MLP_NOT_SQUEEZED, "squeeze the last dimension"),
    ("MLP", MLP_NO_ACTIVATION, "your output is affine in x"),
    ("MLP", MLP_SIGMOID, "uses sigmoid between fc1 and fc2"),
    ("MLP", MLP_LAST_ACTIVATION, "no activation after fc2"),
    ("DeepMLP", DEEP_LAST_ACTIVATION, "no activation after the last Linear layer"),
    ("DeepMLP", DEEP_PLAIN_LIST, "Python list"),
    ("DeepMLP", DEEP_ALWAYS_RELU, "`activation()`, not always nn.ReLU()"),
    ("DeepMLP", DEEP_ONE_LAYER_SHORT, "one Linear layer too few"),
    ("count_mlp_params",
     "def count_mlp_params(layer_sizes):\n    return sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))\n",
     "counted the weights but not the biases"),
    ("udl_param_count", "def udl_param_count(D, K):\n    return 3 * D + 1 + K * D * (D + 1)\n",
     "one hidden layer too many"),
    ("max_linear_regions", "def max_linear_regions(D, K):\n    return D ** K\n", "(D + 1)^K"),
    ("sigmoid", "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n", "sigmoid warned for large |z|"),
    ("sigmoid", "def sigmoid(z):\n    with np.errstate(all='ignore'):\n        return np.exp(z) / (1 + np.exp(z))\n",
     "sigmoid returned nan or inf"),
    ("relu", "def relu(z):\n    z[z < 0] = 0\n    return z\n", "changed its input z in place"),
]


def test_reference_gets_full_marks_and_the_release_zero(grade) -> None:
    assert_full_marks_and_zero(grade, A2)


@pytest.mark.parametrize(("function", "code", "fragment"), MISTAKES,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, function, code, fragment) -> None:
    assert_mistake_caught(grade, A2, function, code, fragment)

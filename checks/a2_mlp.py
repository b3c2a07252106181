"""Checks for a2_mlp: activations and shallow networks in numpy, parameter counts, and torch modules judged by
behaviour: the reference's weights are loaded into the student's Linear layers in the order its forward pass uses
them (whatever the attributes, containers or names), and both run the same inputs on every device."""

from __future__ import annotations

import numpy as np

from autograder import Suite, Trial, Variant, matches, mistake, values

SUITE = Suite(
    depends={"shallow_network": ["relu"]},
    preload=("torch",),
)
check = SUITE.check
near_miss = SUITE.near_miss


def _z(t: Trial) -> np.ndarray:
    shape = (7,) if t.public else tuple(int(s) for s in t.rng.integers(1, 6, size=int(t.rng.integers(1, 4))))
    return t.rng.normal(scale=3.0, size=shape)


# -- activations -----------------------------------------------------------------------------------

@check("relu", "matches the reference on arrays of any shape")
def relu_matches_the_reference_on_arrays_of_any_shape(t: Trial) -> None:
    z = _z(t)
    t.expect_close(t.call("relu", z), t.ref("relu", z), "relu(z)")


SUITE.inputs_unchanged("relu", lambda t: ([_z(t)], {}))


@check("sigmoid", "matches the reference on arrays of any shape")
def sigmoid_matches_the_reference_on_arrays_of_any_shape(t: Trial) -> None:
    z = _z(t)
    t.expect_close(t.call("sigmoid", z), t.ref("sigmoid", z), "sigmoid(z)")


LARGE_Z = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4])
STABLE_SIGMOID = ("compute e = exp(-|z|) <= 1 and use 1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0, so that "
                  "nothing overflows.")


@check("sigmoid", "is finite and right for |z| up to 1e4", seeded=False)
def sigmoid_is_finite_and_right_for_z_up_to_1e4(t: Trial) -> None:
    got = t.call("sigmoid", LARGE_Z)
    if isinstance(got, np.ndarray) and got.shape == LARGE_Z.shape and not np.all(np.isfinite(got)):
        t.fail(f"sigmoid returned nan or inf for large |z| (e.g. inf / inf when exp(z) overflows). {STABLE_SIGMOID}")
    t.expect_close(got, t.ref("sigmoid", LARGE_Z), "sigmoid(z) for z in [-1e4, ..., 1e4]")


@check("sigmoid", "raises no overflow warning for |z| up to 1e4", seeded=False, advisory=True)
def sigmoid_raises_no_overflow_warning_for_z_up_to_1e4(t: Trial) -> None:
    t.call("sigmoid", LARGE_Z)
    if t.warnings:
        t.fail(f"sigmoid warned for large |z| (np.exp(-z) overflows for z = -1e4): {STABLE_SIGMOID}",
               f"sigmoid warned for large |z| ({t.warnings[0]}): np.exp(-z) overflows for z = -1e4. "
               f"{STABLE_SIGMOID}")


# -- shallow networks ------------------------------------------------------------------------------

def _shallow_inputs(t: Trial) -> dict:
    D = 3 if t.public else int(t.rng.integers(2, 8))
    x = np.sort(t.rng.uniform(-2, 2, size=25 if t.public else int(t.rng.integers(10, 40))))
    return {"x": x, "theta": t.rng.normal(size=(D, 2)), "phi": t.rng.normal(size=D + 1)}


def affine_hint(x: np.ndarray, args: dict | None = None):
    """An output that is a straight line in x; with the network's ``args``, confirmed as exactly the network without
    its activation, φ0 + Σ_d φ_d (θ_d0 + θ_d1 x)."""
    linear = None
    if args is not None:
        linear = args["phi"][0] + (args["theta"][:, 0][None, :] + args["theta"][:, 1][None, :] * x[:, None]) @ \
            args["phi"][1:]

    def hint(got, want) -> str | None:
        y = np.asarray(got, dtype=float)
        if y.shape != x.shape:
            return None
        if linear is not None:
            confirmed = matches(y, linear)
        else:
            design = np.stack([np.ones_like(x), x], axis=1)
            confirmed = np.allclose(y - design @ np.linalg.lstsq(design, y, rcond=None)[0], 0, atol=1e-8)
        if confirmed:
            return ("your output is affine (a straight line) in x: it is the network without its activation; apply "
                    "the activation to each hidden unit, a(θ_d0 + θ_d1 x).")
        return None

    return hint


def always_relu_hint(args: dict):
    """The activation argument ignored: the output is the one with ReLU."""
    x, theta, phi = args["x"], args["theta"], args["phi"]
    with_relu = phi[0] + np.maximum(theta[:, 0][None, :] + theta[:, 1][None, :] * x[:, None], 0.0) @ phi[1:]

    def hint(got, want) -> str | None:
        if matches(got, with_relu):
            return "your output is the one with ReLU: use the `activation` argument instead of always applying ReLU."
        return None

    return hint


@check("shallow_network", "matches the reference with the default ReLU activation")
def shallow_network_matches_the_reference_with_default_relu(t: Trial) -> None:
    args = _shallow_inputs(t)
    got = t.probe("shallow", label="shallow_network", stubs=t.stubs, **args)
    t.expect_close(got, t.ref_probe("shallow", **args), "the network's output",
                   hints=[affine_hint(args["x"], args)])


@check("shallow_network", "uses the activation it is given")
def shallow_network_uses_the_activation_it_is_given(t: Trial) -> None:
    args = _shallow_inputs(t) | {"activation": "tanh" if t.public else "softplus"}
    got = t.probe("shallow", label="shallow_network", stubs=t.stubs, **args)
    want = t.ref_probe("shallow", **args)
    t.expect_close(got, want, "the output with a given activation",
                   hints=[affine_hint(args["x"], args), always_relu_hint(args)])


# -- parameter counts and linear regions -------------------------------------------------------------

def count_hint(layers: list[int]):
    """Weights without biases, or one bias per input instead of per output."""
    pairs = list(zip(layers[:-1], layers[1:]))

    def hint(got, want) -> str | None:
        if got == sum(a * b for a, b in pairs):
            return "you counted the weights but not the biases (each layer of width b adds b biases)."
        if got == sum(a * b + a for a, b in pairs):
            return "each layer has one bias per *output* unit, not per input."
        return None

    return hint


@check("count_mlp_params", "matches the reference for random layer sizes")
def count_mlp_params_matches_the_reference_for_random_layer_sizes(t: Trial) -> None:
    layers = [2, 3, 1] if t.public else [int(v) for v in t.rng.integers(1, 30, size=int(t.rng.integers(2, 7)))]
    t.expect_close(t.call("count_mlp_params", layers), t.ref("count_mlp_params", layers), "the count",
                   hints=[count_hint(layers)])


def _dk(t: Trial) -> tuple[int, int]:
    return (3, 2) if t.public else (int(t.rng.integers(1, 40)), int(t.rng.integers(1, 8)))


def udl_hint(D: int, K: int):
    """One hidden layer too many or too few, or the weights without the biases; only when the count is that of
    exactly one of the usual slips (with small D and K two slips can give the same number)."""
    def count(k: int) -> int:
        return 3 * D + 1 + (k - 1) * D * (D + 1)

    slips = {
        f"your count is the one for {word}: K counts hidden layers, giving K - 1 D-to-D layers.": count(k)
        for k, word in ((K - 1, "one hidden layer too few"), (K + 1, "one hidden layer too many"))}
    slips["you counted the weights but not the biases (each layer of width b adds b biases)."] = 2 * D + (K - 1) * D * D
    others = [3 * D + 1 + (K - 1) * D * D, 2 * D + 1 + (K - 1) * D * (D + 1)]  # D-to-D or input biases forgotten

    def hint(got, want) -> str | None:
        found = [advice for advice, value in slips.items() if got == value and got != want]
        return found[0] if len(found) == 1 and got not in others else None

    return hint


@check("udl_param_count", "matches 3D + 1 + (K-1)D(D+1)")
def udl_param_count_matches_3d_1_k_1_d_d_1(t: Trial) -> None:
    D, K = _dk(t)
    t.expect_close(t.call("udl_param_count", D, K), t.ref("udl_param_count", D, K), "the count",
                   hints=[udl_hint(D, K)])


@check("udl_param_count", "agrees with count_mlp_params([1, D, ..., D, 1])")
def udl_param_count_agrees_with_count_mlp_params_1_d_d_1(t: Trial) -> None:
    D, K = _dk(t)
    t.expect_close(t.call("udl_param_count", D, K), t.ref("count_mlp_params", [1] + [D] * K + [1]), "the count",
                   hints=[udl_hint(D, K)])


def regions_hint(D: int, K: int):
    """D^K: joints instead of regions."""
    return lambda got, want: ("D^K counts joints, not regions: D joints split a line into D + 1 pieces, so the "
                              "bound is (D + 1)^K." if got == D**K and got != want else None)


@check("max_linear_regions", "matches (D + 1)^K")
def max_linear_regions_matches_d_1_k(t: Trial) -> None:
    D, K = _dk(t)
    t.expect_close(t.call("max_linear_regions", D, K), t.ref("max_linear_regions", D, K), "the bound",
                   hints=[regions_hint(D, K)])


# -- torch modules -----------------------------------------------------------------------------------

def _expected_layers(cls: str) -> str:
    if cls == "MLP":
        return "fc1 = nn.Linear(input_dim, hid_dim), then fc2 = nn.Linear(hid_dim, output_dim)"
    return "one nn.Linear(a, b) with a bias per consecutive pair (a, b) of layer_sizes, in order"


def _layer_list(linears: list) -> str:
    return ", ".join(f"Linear({i} -> {o}{'' if bias else ', no bias'})" for o, i, bias in linears) or "none"


def _module_run(t: Trial, cls: str, args: list, n: int, in_dim: int, activation: str | None = None) -> tuple:
    """Run the student's and the reference's ``cls(*args)`` on the same x with the same weights, loaded into their
    Linear layers in the order forward uses them. Returns both reports, the weights and x (for hints)."""
    kw = {"activation": activation} if activation else {}
    x = t.rng.normal(size=(n, in_dim)).astype(np.float32)
    layers = t.ref_probe("module", cls=cls, args=args, x=x, **kw)["linears"]
    weights = [[t.rng.normal(scale=0.5, size=(o, i)).astype(np.float32),
                t.rng.normal(scale=0.5, size=o).astype(np.float32)] for o, i, _ in layers]
    got = t.probe("module", label=cls, cls=cls, args=args, x=x, weights=weights, **kw)
    want = t.ref_probe("module", cls=cls, args=args, x=x, weights=weights, **kw)
    if "out" not in got:
        if got["n_parameters"] == 0 and got["layers_type"] in ("list", "tuple"):
            t.fail(f"`{cls}.parameters()` is empty: layers kept in a Python list are invisible to PyTorch; "
                   "use nn.Sequential (or nn.ModuleList).")
        t.fail(f"{cls}'s Linear layers, in the order forward uses them, are not the expected ones: "
               f"{_expected_layers(cls)}.",
               f"{cls}{tuple(args)}'s Linear layers, in the order forward uses them, are "
               f"{_layer_list(got['linears'])}; "
               f"expected {_layer_list(want['linears'])} ({_expected_layers(cls)}).")
    return got, want, weights, x


_ACTIVATIONS = {"ReLU": lambda z: np.maximum(z, 0.0), "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
                "tanh": np.tanh, "no activation": lambda z: z}


def _linear(z: np.ndarray, layer: list) -> np.ndarray:
    return z @ np.asarray(layer[0], dtype=float).T + np.asarray(layer[1], dtype=float)


def mlp_forward_hint(weights: list, x: np.ndarray):
    """Recognise fc2(a(fc1(x))) for the wrong activation a, and an activation after fc2."""
    hidden = _linear(x.astype(float), weights[0])
    candidates = {name: _linear(a(hidden), weights[1]) for name, a in _ACTIVATIONS.items() if name != "ReLU"}
    candidates["after fc2"] = np.maximum(_linear(np.maximum(hidden, 0.0), weights[1]), 0.0)

    def hint(got, want) -> str | None:
        g = np.asarray(values(got), dtype=float).reshape(-1)
        for name, value in candidates.items():
            if g.size == value.size and np.allclose(g, value.reshape(-1), rtol=1e-3, atol=1e-4):
                if name == "no activation":
                    return ("your output is affine in x: apply torch.relu between fc1 and fc2 (without an "
                            "activation, two linear layers are just one linear layer).")
                if name == "after fc2":
                    return "there should be no activation after fc2: the output is fc2(relu(fc1(x)))."
                return f"your network uses {name} between fc1 and fc2; the lecture's MLP uses ReLU."
        return None

    return hint


def squeeze_hint(got, want) -> str | None:
    """(n, 1) where (n,) is expected (output_dim == 1), with the right values."""
    if len(want.shape) == 1 and got.shape == (*want.shape, 1) and matches(values(got).reshape(want.shape),
                                                                         values(want), 1e-4, 1e-5):
        return "with output_dim == 1, squeeze the last dimension so the output has shape (n,)."
    if want.shape == (1,) and got.shape == () and matches(values(got).reshape(1), values(want), 1e-4, 1e-5):
        return ("squeeze only the last dimension, `out.squeeze(-1)`: `out.squeeze()` also drops the batch dimension "
                "when the batch holds one input.")
    return None


def deep_relu_hint(weights: list, x: np.ndarray, layers: list | None = None, activation: str = ""):
    """The output is the one with ReLU between the layers: ``layers`` (the type names in the student's
    ``self.layers``) tells whether ReLU layers were built in place of ``activation``, or the activation layers are
    there and forward does not use them."""
    z = x.astype(float)
    for k, layer in enumerate(weights):
        z = _linear(z, layer)
        if k < len(weights) - 1:
            z = np.maximum(z, 0.0)

    def hint(got, want) -> str | None:
        if not matches(got, z, 1e-3, 1e-4):
            return None
        if layers is not None and activation and activation in layers:
            return (f"the output is the one with ReLU between the layers, though `self.layers` holds {activation} "
                    "layers: forward should pass x through `self.layers`.")
        if layers is None or "ReLU" in layers:
            return "create each activation layer with `activation()`, not always nn.ReLU()."
        return None

    return hint


@check("MLP", "has fc1 and fc2 as nn.Linear layers of the right sizes, and no other parameters")
def mlp_has_exactly_fc1_and_fc2_of_the_right_sizes(t: Trial) -> None:
    args = [3, 5, 2] if t.public else [int(v) for v in t.rng.integers(1, 9, size=3)]
    got = t.probe("module", label="MLP", cls="MLP", args=args)
    want = t.ref_probe("module", cls="MLP", args=args)
    t.expect(got["fc"].get("fc1") is not None and got["fc"].get("fc2") is not None,
             "MLP should have attributes fc1 and fc2 that are nn.Linear.",
             f"MLP should have attributes fc1 and fc2 that are nn.Linear; it has {got['children']}.")
    t.expect(got["fc"] == want["fc"],
             "MLP(input_dim, hid_dim, output_dim) has the wrong layer sizes: fc1 = nn.Linear(input_dim, hid_dim), "
             "fc2 = nn.Linear(hid_dim, output_dim).",
             f"MLP{tuple(args)} has fc1: {got['fc']['fc1']}, fc2: {got['fc']['fc2']} (in, out); expected "
             f"{want['fc']['fc1']} and {want['fc']['fc2']}: fc1 = nn.Linear(input_dim, hid_dim), "
             "fc2 = nn.Linear(hid_dim, output_dim).")
    t.expect(got["n_parameters"] == want["n_parameters"],
             "MLP has parameters besides fc1 and fc2 (or fewer): it should have exactly those of its two layers.",
             f"MLP{tuple(args)} has {got['n_parameters']} parameters; expected {want['n_parameters']} (those of fc1 "
             "and fc2 only).")


@check("MLP", "forward matches the reference with the same weights", on_devices=True)
def mlp_forward_matches_the_reference_with_the_same_weights(t: Trial) -> None:
    out_dim = 1 if t.public else int(t.rng.integers(1, 4))
    got, want, weights, x = _module_run(t, "MLP", [4, 6, out_dim], 16, 4)
    t.expect_close(got["out"], want["out"], "MLP(4, 6, output_dim)(x)",
                   hints=[mlp_forward_hint(weights, x), squeeze_hint])


@check("MLP", "keeps the batch dimension for a batch of one", on_devices=True)
def mlp_keeps_the_batch_dimension_for_a_batch_of_one(t: Trial) -> None:
    """A single output is squeezed to (n,): for n = 1 that is (1,), not () (`squeeze(-1)`, not `squeeze()`)."""
    got, want, _, _ = _module_run(t, "MLP", [4, 6, 1], 1, 4)
    t.expect_close(got["out"], want["out"], "MLP(4, 6, 1)(x) for a batch of one input",
                   hints=[squeeze_hint])


def _deep_layers_advice(layers: list[str], want: list[str]) -> str:
    if layers[-1:] != ["Linear"]:
        return "There should be no activation after the last Linear layer: the output is unconstrained."
    extra = layers.count("Linear") - want.count("Linear")
    if extra:
        return (f"You have one Linear layer too {'many' if extra > 0 else 'few'}"
                f"{'' if abs(extra) == 1 else ' (or more)'}: there is one Linear per consecutive pair of sizes, "
                "len(layer_sizes) - 1 in all.")
    if len(layers) != len(want):
        return "Put exactly one activation between two consecutive Linear layers."
    return ""


@check("DeepMLP", "layers is an nn.Sequential of Linear, activation, ..., Linear")
def deepmlp_layers_is_an_nn_sequential_of_linear_activation_linear(t: Trial) -> None:
    sizes = [3, 4, 4, 2] if t.public else [int(v) for v in t.rng.integers(1, 8, size=int(t.rng.integers(2, 6)))]
    got = t.probe("module", label="DeepMLP", cls="DeepMLP", args=[sizes])
    want = t.ref_probe("module", cls="DeepMLP", args=[sizes])
    if got["layers"] is None:
        extra = " (a Python list hides the layers from parameters())" if got["layers_type"] in ("list", "tuple") else ""
        t.fail(f"`DeepMLP.layers` should be an nn.Sequential{extra}.",
               f"`DeepMLP.layers` should be an nn.Sequential; it is a {got['layers_type']}{extra}.")
    if got["layers"] != want["layers"]:
        hint = _deep_layers_advice(got["layers"], want["layers"])
        t.fail("`DeepMLP(layer_sizes).layers` does not alternate Linear and activation layers as expected. " + hint,
               f"`DeepMLP({sizes}).layers` is {got['layers']}; expected {want['layers']}. {hint}".rstrip())


@check("DeepMLP", "forward matches the reference with the same weights", on_devices=True)
def deepmlp_forward_matches_the_reference_with_the_same_weights(t: Trial) -> None:
    sizes = [3, 5, 5, 2] if t.public else [int(v) for v in t.rng.integers(1, 8, size=int(t.rng.integers(2, 6)))]
    got, want, _, _ = _module_run(t, "DeepMLP", [sizes], 8, sizes[0])
    t.expect_close(got["out"], want["out"], "DeepMLP(layer_sizes)(x)")


@check("DeepMLP", "uses the activation class it is given", on_devices=True)
def deepmlp_uses_the_activation_class_it_is_given(t: Trial) -> None:
    sizes = [2, 6, 6, 1]
    activation = "Tanh" if t.public else "Sigmoid"
    got, want, weights, x = _module_run(t, "DeepMLP", [sizes], 8, 2, activation=activation)
    t.expect_close(got["out"], want["out"], "DeepMLP(sizes, activation=...)(x)",
                   hints=[deep_relu_hint(weights, x, got.get("layers"), activation)])


# -- the catalogue: known mistakes (each costs only its function) and correct variants (full marks) ---------

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


def _deep(act: str = "activation()", container: str = "nn.Sequential(*mods[:-1])",
          forward: str = "return self.layers(x)") -> str:
    return DEEP_TEMPLATE.format(act=act, container=container, forward=forward)


SUITE.mistakes = [
    mistake("shallow_network", "def shallow_network(x, theta, phi, activation=relu):\n"
            "    return phi[0] + (theta[:, 0][None, :] + theta[:, 1][None, :] * x[:, None]) @ phi[1:]\n",
            "affine (a straight line) in x"),
    mistake("shallow_network", "def shallow_network(x, theta, phi, activation=relu):\n"
            "    return phi[0] + relu(theta[:, 0][None, :] + theta[:, 1][None, :] * x[:, None]) @ phi[1:]\n",
            "use the `activation` argument"),
    mistake("MLP", MLP_TEMPLATE.format(body="self.fc2(torch.relu(self.fc1(x)))").replace(
        "out.squeeze(-1) if out.shape[-1] == 1 else out", "out"), "squeeze the last dimension"),
    mistake("MLP", MLP_TEMPLATE.format(body="self.fc2(self.fc1(x))"), "your output is affine in x"),
    mistake("MLP", MLP_TEMPLATE.format(body="self.fc2(torch.sigmoid(self.fc1(x)))"),
            "uses sigmoid between fc1 and fc2"),
    mistake("MLP", MLP_TEMPLATE.format(body="torch.relu(self.fc2(torch.relu(self.fc1(x))))"),
            "no activation after fc2"),
    mistake("MLP", MLP_TEMPLATE.format(body="self.fc2(torch.relu(self.fc1(x)))").replace(
        "nn.Linear(hid_dim, output_dim)", "nn.Linear(hid_dim, output_dim, bias=False)"), "no bias"),
    mistake("DeepMLP", _deep(container="nn.Sequential(*mods)"), "no activation after the last Linear layer"),
    mistake("DeepMLP", _deep(container="mods[:-1]", forward="for layer in self.layers:\n            x = layer(x)\n"
                             "        return x"), "Python list"),
    mistake("DeepMLP", _deep(act="nn.ReLU()"), "`activation()`, not always nn.ReLU()"),
    mistake("DeepMLP", _deep(container="nn.Sequential(*mods[:-3])"), "one Linear layer too few"),
    mistake("count_mlp_params", "def count_mlp_params(layer_sizes):\n"
            "    return sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))\n",
            "counted the weights but not the biases", typical=True),
    mistake("udl_param_count", "def udl_param_count(D, K):\n    return 3 * D + 1 + K * D * (D + 1)\n",
            "one hidden layer too many"),
    mistake("udl_param_count", "def udl_param_count(D, K):\n    return 2 * D + (K - 1) * D * D\n",
            "counted the weights but not the biases"),
    mistake("max_linear_regions", "def max_linear_regions(D, K):\n    return D ** K\n", "(D + 1)^K", typical=True),
    mistake("sigmoid", "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n", "sigmoid warned for large |z|",
            advisory=True),
    mistake("sigmoid",
            "def sigmoid(z):\n    with np.errstate(all='ignore'):\n        return np.exp(z) / (1 + np.exp(z))\n",
            "sigmoid returned nan or inf"),
    mistake("relu", "def relu(z):\n    z[z < 0] = 0\n    return z\n", "changed its input z in place", advisory=True),
    mistake("relu", "def relu(z):\n    return np.maximum(z, 0.0) + 1e-3\n", "relu(z) differs from the expected values"),
]

SUITE.variants = [
    Variant("MLP whose fc1 and fc2 are also used by an nn.Sequential",
            {"MLP": MLP_TEMPLATE.format(body="self.net(x)").replace(
                "self.fc2 = nn.Linear(hid_dim, output_dim)\n",
                "self.fc2 = nn.Linear(hid_dim, output_dim)\n        self.net = nn.Sequential(self.fc1, nn.ReLU(), "
                "self.fc2)\n")}),
    Variant("MLP with an nn.ReLU module attribute",
            {"MLP": MLP_TEMPLATE.format(body="self.fc2(self.act(self.fc1(x)))").replace(
                "self.fc2 = nn.Linear(hid_dim, output_dim)\n",
                "self.fc2 = nn.Linear(hid_dim, output_dim)\n        self.act = nn.ReLU()\n")}),
    Variant("MLP defining fc2 before fc1", {"MLP": MLP_TEMPLATE.format(
        body="self.fc2(torch.relu(self.fc1(x)))").replace(
        "        self.fc1 = nn.Linear(input_dim, hid_dim)\n        self.fc2 = nn.Linear(hid_dim, output_dim)\n",
        "        self.fc2 = nn.Linear(hid_dim, output_dim)\n        self.fc1 = nn.Linear(input_dim, hid_dim)\n")}),
    Variant("DeepMLP whose layers reuse an nn.ModuleList", {"DeepMLP": '''
class DeepMLP(nn.Module):
    def __init__(self, layer_sizes, activation=nn.ReLU):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
        mods = []
        for i, lin in enumerate(self.linears):
            mods.append(lin)
            if i < len(self.linears) - 1:
                mods.append(activation())
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        return self.layers(x)
'''}),
    Variant("DeepMLP with named sub-modules (add_module)", {"DeepMLP": '''
class DeepMLP(nn.Module):
    def __init__(self, layer_sizes, activation=nn.ReLU):
        super().__init__()
        self.layers = nn.Sequential()
        for i, (a, b) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
            self.layers.add_module(f"L{i}", nn.Linear(a, b))
            if i < len(layer_sizes) - 2:
                self.layers.add_module(f"act{i}", activation())

    def forward(self, x):
        return self.layers(x)
'''}),
    Variant("relu with np.where", {"relu": "def relu(z):\n    return np.where(z > 0, z, 0.0)\n"}),
    Variant("sigmoid with scipy's expit", {"sigmoid": "def sigmoid(z):\n    from scipy.special import expit\n"
                                           "    return expit(z)\n"}),
    Variant("sigmoid on a clipped z",
            {"sigmoid": "def sigmoid(z):\n    return 1 / (1 + np.exp(-np.clip(z, -500, 500)))\n"}),
    Variant("shallow_network with a loop over hidden units",
            {"shallow_network": "def shallow_network(x, theta, phi, activation=relu):\n"
             "    y = np.full(x.shape, float(phi[0]))\n"
             "    for d in range(len(theta)):\n"
             "        y = y + phi[d + 1] * activation(theta[d, 0] + theta[d, 1] * x)\n"
             "    return y\n"}),
    Variant("count_mlp_params with a loop and numpy ints",
            {"count_mlp_params": "def count_mlp_params(layer_sizes):\n    total = 0\n"
             "    for a, b in zip(layer_sizes[:-1], layer_sizes[1:]):\n        total += a * b + b\n"
             "    return np.int64(total)\n"}),
    Variant("udl_param_count as a float (the public test accepts it)",
            {"udl_param_count": "def udl_param_count(D, K):\n    return 3.0 * D + 1 + (K - 1) * D * (D + 1)\n"}),
]

SUITE.mistakes += [
    # right on the public example (3 hidden units), a crash on a hidden case: the feedback shows the failing line,
    # Python's name for the error and its message with the hidden case's numbers masked
    mistake("shallow_network", "def shallow_network(x, theta, phi, activation=relu):\n"
            "    hidden = activation(theta[:, 0][None, :] + theta[:, 1][None, :] * x[:, None])\n"
            "    return phi[0] + hidden @ phi[1:4]\n",
            "line 3, in shallow_network: return phi[0] + hidden @ phi[1:4]"),
    # squeeze() drops the batch dimension too when the batch holds one input
    mistake("MLP", MLP_TEMPLATE.format(body="self.fc2(torch.relu(self.fc1(x)))").replace("out.squeeze(-1)",
                                                                                       "out.squeeze()"),
            "squeeze only the last dimension, `out.squeeze(-1)`"),
]

# Near misses: beside each catalogued mistake with a hint, a plausible mistake with the same symptom and another
# cause. Each loses points, without the hint whose diagnosis it does not share.
SUITE.near_misses = [
    near_miss("the two columns of theta swapped", "shallow_network",
              "def shallow_network(x, theta, phi, activation=relu):\n"
              "    return phi[0] + activation(theta[:, 1][None, :] + theta[:, 0][None, :] * x[:, None]) @ phi[1:]\n",
              "affine"),
    near_miss("ReLU applied on top of the given activation", "shallow_network",
              "def shallow_network(x, theta, phi, activation=relu):\n"
              "    return phi[0] + activation(relu(theta[:, 0][None, :] + theta[:, 1][None, :] * x[:, None])) "
              "@ phi[1:]\n",
              "use the `activation` argument"),
    near_miss("an unsqueezed output with a sigmoid between the layers", "MLP",
              MLP_TEMPLATE.format(body="self.fc2(torch.sigmoid(self.fc1(x)))").replace(
                  "out.squeeze(-1) if out.shape[-1] == 1 else out", "out"),
              "squeeze the last dimension"),
    near_miss("ReLU applied to the input instead of the hidden layer", "MLP",
              MLP_TEMPLATE.format(body="self.fc2(self.fc1(torch.relu(x)))"), "affine in x"),
    near_miss("a leaky ReLU between fc1 and fc2", "MLP",
              MLP_TEMPLATE.format(body="self.fc2(nn.functional.leaky_relu(self.fc1(x), 0.1))"),
              "uses sigmoid between"),
    near_miss("the absolute value of the output", "MLP",
              MLP_TEMPLATE.format(body="torch.abs(self.fc2(torch.relu(self.fc1(x))))"),
              "no activation after fc2"),
    near_miss("forward applying F.relu to the Linear layers, ignoring the activation layers built", "DeepMLP",
              _deep(forward="linears = [m for m in self.layers if isinstance(m, nn.Linear)]\n"
                    "        for layer in linears[:-1]:\n            x = torch.relu(layer(x))\n"
                    "        return linears[-1](x)"),
              "not always nn.ReLU()", feedback="forward should pass x through `self.layers`"),
    near_miss("one bias per layer", "count_mlp_params",
              "def count_mlp_params(layer_sizes):\n"
              "    return sum(a * b + 1 for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))\n",
              "not the biases"),
    near_miss("the D-to-D layers counted without biases", "udl_param_count",
              "def udl_param_count(D, K):\n    return 3 * D + 1 + (K - 1) * D * D\n", "one hidden layer too"),
    near_miss("the input layer's weights forgotten", "udl_param_count",
              "def udl_param_count(D, K):\n    return 2 * D + 1 + (K - 1) * D * (D + 1)\n", "not the biases"),
    near_miss("one factor too many", "max_linear_regions",
              "def max_linear_regions(D, K):\n    return (D + 1) ** (K + 1)\n", "counts joints"),
]

"""Checks for a2_mlp: activations and shallow networks in numpy, parameter counts, and torch modules
compared with the reference by loading the same weights and running the same inputs on every device."""

from __future__ import annotations

import numpy as np

from ..checking import Suite, Trial, mistake

SUITE = Suite(
    "a2_mlp",
    "mlp.ipynb",
    depends={"shallow_network": ["relu"]},
    mistakes=[mistake(f, c, '', typical=True) for f, c in {
        "count_mlp_params": "def count_mlp_params(layer_sizes):\n"
                            "    return sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))\n",
        "max_linear_regions": "def max_linear_regions(D, K):\n    return D ** K\n",
    }.items()],
    preload=("torch",),
)
check = SUITE.check
PROBE = "probes_a2_mlp"


def _z(t: Trial) -> np.ndarray:
    shape = (7,) if t.public else tuple(int(s) for s in t.rng.integers(1, 6, size=int(t.rng.integers(1, 4))))
    return t.rng.normal(scale=3.0, size=shape)


# -- activations -----------------------------------------------------------------------------------

@check("relu", "matches the reference on arrays of any shape")
def _(t: Trial) -> None:
    z = _z(t)
    t.expect_close(t.call("relu", z), t.ref("relu", z), "relu(z)")


@check("sigmoid", "matches the reference on arrays of any shape")
def _(t: Trial) -> None:
    z = _z(t)
    t.expect_close(t.call("sigmoid", z), t.ref("sigmoid", z), "sigmoid(z)")


@check("sigmoid", "is finite and warning-free for |z| up to 1e4", seeded=False)
def _(t: Trial) -> None:
    z = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4])
    got = t.call("sigmoid", z)
    if t.warnings:
        t.fail(f"sigmoid warned for large |z| ({t.warnings[0]}): np.exp(-z) overflows for z = -1e4. Compute "
               "exp(-|z|) instead and choose the formula by the sign of z.")
    if isinstance(got, np.ndarray) and got.shape == z.shape and not np.all(np.isfinite(got)):
        t.fail("sigmoid returned nan or inf for large |z| (e.g. inf / inf when exp(z) overflows). Compute "
               "e = exp(-|z|) <= 1 and use 1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0.")
    t.expect_close(got, t.ref("sigmoid", z), "sigmoid(z) for z in [-1e4, ..., 1e4]")


# -- shallow networks ------------------------------------------------------------------------------

def _shallow_inputs(t: Trial) -> dict:
    D = 3 if t.public else int(t.rng.integers(2, 8))
    x = np.sort(t.rng.uniform(-2, 2, size=25 if t.public else int(t.rng.integers(10, 40))))
    return {"x": x, "theta": t.rng.normal(size=(D, 2)), "phi": t.rng.normal(size=D + 1)}


def affine_hint(x: np.ndarray):
    def hint(got, want) -> str | None:
        y = np.asarray(got, dtype=float)
        if y.shape != x.shape:
            return None
        design = np.stack([np.ones_like(x), x], axis=1)
        residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
        if np.allclose(residual, 0, atol=1e-8):
            return "your output is affine (a straight line) in x: is the activation applied to each hidden unit?"
        return None

    return hint


@check("shallow_network", "matches the reference with the default ReLU activation")
def _(t: Trial) -> None:
    args = _shallow_inputs(t)
    got = t.probe(f"{PROBE}.shallow", label="shallow_network", **args)
    t.expect_close(got, t.ref_probe(f"{PROBE}.shallow", **args), "the network's output",
                   hints=[affine_hint(args["x"])])


@check("shallow_network", "uses the activation it is given")
def _(t: Trial) -> None:
    args = _shallow_inputs(t) | {"activation": "tanh" if t.public else "softplus"}
    got = t.probe(f"{PROBE}.shallow", label="shallow_network", **args)
    want = t.ref_probe(f"{PROBE}.shallow", **args)
    t.expect_close(got, want, f"the output with activation={args['activation']}", hints=[
        affine_hint(args["x"]), lambda g, w: "use the `activation` argument instead of always applying ReLU."])


# -- parameter counts and linear regions -------------------------------------------------------------

def count_hint(layers: list[int]):
    pairs = list(zip(layers[:-1], layers[1:]))

    def hint(got, want) -> str | None:
        if got == sum(a * b for a, b in pairs):
            return "you counted the weights but not the biases (each layer of width b adds b biases)."
        if got == sum(a * b + a for a, b in pairs):
            return "each layer has one bias per *output* unit, not per input."
        return None

    return hint


@check("count_mlp_params", "matches the reference for random layer sizes")
def _(t: Trial) -> None:
    layers = [2, 3, 1] if t.public else [int(v) for v in t.rng.integers(1, 30, size=int(t.rng.integers(2, 7)))]
    t.expect_close(t.call("count_mlp_params", layers), t.ref("count_mlp_params", layers), "the count",
                   hints=[count_hint(layers)])


def _dk(t: Trial) -> tuple[int, int]:
    return (3, 2) if t.public else (int(t.rng.integers(1, 40)), int(t.rng.integers(1, 8)))


@check("udl_param_count", "matches 3D + 1 + (K-1)D(D+1)")
def _(t: Trial) -> None:
    D, K = _dk(t)

    def layers_hint(got, want) -> str | None:
        for k, word in ((K - 1, "one hidden layer too few"), (K + 1, "one hidden layer too many")):
            if got == 3 * D + 1 + (k - 1) * D * (D + 1):
                return f"your count is the one for {word}: K counts hidden layers, giving K - 1 D-to-D layers."
        return None

    t.expect_close(t.call("udl_param_count", D, K), t.ref("udl_param_count", D, K), "the count",
                   hints=[layers_hint])


@check("udl_param_count", "agrees with count_mlp_params([1, D, ..., D, 1])")
def _(t: Trial) -> None:
    D, K = _dk(t)
    t.expect_close(t.call("udl_param_count", D, K), t.ref("count_mlp_params", [1] + [D] * K + [1]), "the count")


@check("max_linear_regions", "matches (D + 1)^K")
def _(t: Trial) -> None:
    D, K = _dk(t)
    hints = [lambda got, want: "D^K counts joints, not regions: D joints split a line into D + 1 pieces, so the "
             "bound is (D + 1)^K." if got == D**K else None]
    t.expect_close(t.call("max_linear_regions", D, K), t.ref("max_linear_regions", D, K), "the bound", hints=hints)


# -- torch modules -----------------------------------------------------------------------------------

def _module_run(t: Trial, cls: str, args: list, n: int, in_dim: int, activation: str | None = None) -> tuple:
    """Build both models, give them the reference's parameter shapes filled from the RNG, run the same x.

    Returns the student's and the reference's reports, and the weights and inputs used (for hints)."""
    kw = {"activation": activation} if activation else {}
    shapes = t.ref_probe(f"{PROBE}.module", cls=cls, args=args, **kw)["state"]
    state = {k: t.rng.normal(scale=0.5, size=tuple(s)).astype(np.float32) for k, s in shapes.items()}
    x = t.rng.normal(size=(n, in_dim)).astype(np.float32)
    got = t.probe(f"{PROBE}.module", label=cls, cls=cls, args=args, state=state, x=x, **kw)
    want = t.ref_probe(f"{PROBE}.module", cls=cls, args=args, state=state, x=x, **kw)
    if got["state"] != want["state"]:
        if got["n_parameters"] == 0 and got["layers_type"] in ("list", "tuple"):
            t.fail(f"{cls}.parameters() is empty: layers kept in a Python list are invisible to PyTorch; "
                   "use nn.Sequential (or nn.ModuleList).")
        t.fail(f"{cls}'s parameters differ from the expected ones: {state_difference(t, got, want)}")
    return got, want, state, x


_ACTIVATIONS = {"ReLU": lambda z: np.maximum(z, 0.0), "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
                "tanh": np.tanh, "no activation": lambda z: z}


def mlp_forward_hint(state: dict, x: np.ndarray):
    """Recognise fc2(a(fc1(x))) for the wrong activation a, and an activation after fc2."""
    def linear(z, name):
        return z @ state[f"{name}.weight"].T.astype(float) + state[f"{name}.bias"].astype(float)

    hidden = linear(x.astype(float), "fc1")
    candidates = {name: linear(a(hidden), "fc2") for name, a in _ACTIVATIONS.items() if name != "ReLU"}
    candidates["after fc2"] = np.maximum(linear(np.maximum(hidden, 0.0), "fc2"), 0.0)

    def hint(got, want) -> str | None:
        g = np.asarray(getattr(got, "array", got), dtype=float).reshape(-1)
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


def state_difference(t: Trial, got: dict, want: dict) -> str:
    """Which parameters differ, by name (shapes only on the public example: they reveal the sizes)."""
    if t.public:
        return f"got {got['state']}; expected {want['state']} (names and shapes)."
    missing, extra = sorted(set(want["state"]) - set(got["state"])), sorted(set(got["state"]) - set(want["state"]))
    if missing or extra:
        return f"missing {missing}, unexpected {extra}."
    wrong = [k for k in want["state"] if got["state"][k] != want["state"][k]]
    return f"the shapes of {wrong} are wrong."


def squeeze_hint(got, want) -> str | None:
    if got.shape == (*want.shape, 1):
        return "with output_dim == 1, squeeze the last dimension so the output has shape (n,)."
    return None


@check("MLP", "has fc1 and fc2 as nn.Linear layers of the right sizes")
def _(t: Trial) -> None:
    args = [3, 5, 2] if t.public else [int(v) for v in t.rng.integers(1, 9, size=3)]
    got = t.probe(f"{PROBE}.module", label="MLP", cls="MLP", args=args)
    want = t.ref_probe(f"{PROBE}.module", cls="MLP", args=args)
    t.expect(got["children"].get("fc1") == "Linear" and got["children"].get("fc2") == "Linear",
             f"MLP should have attributes fc1 and fc2 that are nn.Linear; it has {got['children']}.")
    t.expect(got["state"] == want["state"], f"MLP(input_dim, hid_dim, output_dim) has the wrong parameters: "
             f"{state_difference(t, got, want)} fc1 = nn.Linear(input_dim, hid_dim), "
             "fc2 = nn.Linear(hid_dim, output_dim).")


@check("MLP", "forward matches the reference with the same weights", on_devices=True)
def _(t: Trial) -> None:
    out_dim = 1 if t.public else int(t.rng.integers(1, 4))
    args = [4, 6, out_dim]
    got, want, state, x = _module_run(t, "MLP", args, 16, 4)
    t.expect_close(got["out"], want["out"], f"MLP(4, 6, {out_dim})(x)",
                   hints=[mlp_forward_hint(state, x), squeeze_hint])


@check("DeepMLP", "layers is an nn.Sequential of Linear, activation, ..., Linear")
def _(t: Trial) -> None:
    sizes = [3, 4, 4, 2] if t.public else [int(v) for v in t.rng.integers(1, 8, size=int(t.rng.integers(2, 6)))]
    got = t.probe(f"{PROBE}.module", label="DeepMLP", cls="DeepMLP", args=[sizes])
    want = t.ref_probe(f"{PROBE}.module", cls="DeepMLP", args=[sizes])
    if got["layers"] is None:
        extra = " (a Python list hides the layers from parameters())" if got["layers_type"] in ("list", "tuple") else ""
        t.fail(f"DeepMLP.layers should be an nn.Sequential; it is a {got['layers_type']}{extra}.")
    if got["layers"] != want["layers"]:
        hint = ""
        if got["layers"][-1:] != ["Linear"]:
            hint = " There should be no activation after the last Linear layer: the output is unconstrained."
        elif (extra := got["layers"].count("Linear") - want["layers"].count("Linear")) != 0:
            hint = (f" You have one Linear layer too {'many' if extra > 0 else 'few'} (off by {abs(extra)}): there "
                    "is one Linear per consecutive pair of sizes, len(layer_sizes) - 1 in all.")
        elif len(got["layers"]) != len(want["layers"]):
            hint = " Put exactly one activation between two consecutive Linear layers."
        where = f"DeepMLP({sizes}).layers" if t.public else "DeepMLP(layer_sizes).layers"
        t.fail(f"{where} is {got['layers']}; expected {want['layers']}.{hint}")


@check("DeepMLP", "forward matches the reference with the same weights", on_devices=True)
def _(t: Trial) -> None:
    sizes = [3, 5, 5, 2] if t.public else [int(v) for v in t.rng.integers(1, 8, size=int(t.rng.integers(2, 6)))]
    got, want, _, _ = _module_run(t, "DeepMLP", [sizes], 8, sizes[0])
    t.expect_close(got["out"], want["out"], f"DeepMLP({sizes})(x)")


@check("DeepMLP", "uses the activation class it is given", on_devices=True)
def _(t: Trial) -> None:
    sizes = [2, 6, 6, 1]
    got, want, _, _ = _module_run(t, "DeepMLP", [sizes], 8, 2, activation="Tanh" if t.public else "Sigmoid")
    t.expect_close(got["out"], want["out"], "DeepMLP(sizes, activation=...)(x)",
                   hints=[lambda g, w: "create each activation layer with `activation()`, not always nn.ReLU()."])

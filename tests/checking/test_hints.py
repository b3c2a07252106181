"""Hints are diagnoses: each fires on a student value its diagnosis is confirmed on, and stays silent on a value
that is wrong in another way (the feedback then says plainly what differs and nothing more). No sandbox: hints see
plain values only."""

from __future__ import annotations

import inspect
import sys
from types import ModuleType

import numpy as np
import pytest
from conftest import A1, A2, A3, A4, A5, COURSE

from autograder.checking.compare import SHAPE_HINT, SIGN_HINT, SWAPPED_HINT, TRANSPOSED_HINT, compare, factor_hint
from autograder.runtime.codec import TensorData


def checks_module(assignment) -> ModuleType:
    """The module of an assignment's checks (the course's checks/<id>.py), as its suite loaded it."""
    return sys.modules[assignment.suite.checks[0].run.__module__]


a1, a2, a3, a4, a5 = (checks_module(a) for a in (A1, A2, A3, A4, A5))
RNG = np.random.default_rng(7)
W = RNG.normal(size=(3, 3))
V = RNG.normal(size=4)


def _net() -> tuple[dict, dict, dict]:
    ref = A4.reference
    net = {"X": RNG.normal(size=(4, 3)), "W_h": RNG.normal(size=(3, 3)), "b_h": RNG.normal(size=3),
           "W_o": RNG.normal(size=(3, 2)), "b_o": RNG.normal(size=2), "Y": RNG.uniform(size=(4, 2))}
    cache = ref.forward(net["X"], net["W_h"], net["b_h"], net["W_o"], net["b_o"])
    return net, cache, ref.backward(net["X"], net["Y"], cache, net["W_o"])


NET, CACHE, GRADS = _net()


def _with(**changes) -> dict:
    return GRADS | changes


def _pre_activation_grads() -> dict:
    Z_h, Z_o = CACHE["Z_h"], CACHE["Z_o"]
    d_o = (CACHE["A_o"] - NET["Y"]) * Z_o * (1 - Z_o)
    d_h = (d_o @ NET["W_o"].T) * Z_h * (1 - Z_h)
    return {"dW_h": NET["X"].T @ d_h, "db_h": d_h.sum(0), "dW_o": CACHE["A_h"].T @ d_o, "db_o": d_o.sum(0)}


def _sgd(orders: list) -> np.ndarray:
    X, y = RNG.normal(size=(10, 2)), RNG.normal(size=10)
    return X, y, a1.sgd_with(X, y, 0.1, 4, orders)


SGD_X, SGD_Y, _ = _sgd([np.arange(10)])
SGD_RNG = np.random.default_rng(3)
SGD_WANT = a1.sgd_with(SGD_X, SGD_Y, 0.1, 4, [SGD_RNG.permutation(10) for _ in range(2)])
NUMGRAD = {"kind": "quadratic", "params": {"A": W + W.T, "b": V[:3]}, "x": RNG.normal(size=3), "eps": 1e-4}
NUMGRAD_F = a4.make_function("quadratic", NUMGRAD["params"])


def _numgrad(one_sided: bool) -> np.ndarray:
    x, eps, g = NUMGRAD["x"], NUMGRAD["eps"], np.zeros(3)
    for i in range(3):
        e = np.eye(3)[i] * eps
        g[i] = (NUMGRAD_F(x + e) - NUMGRAD_F(x)) / eps if one_sided else (NUMGRAD_F(x + e) - NUMGRAD_F(x - e)) / 2 / eps
    return g


MLP_WEIGHTS = [[RNG.normal(size=(5, 2)), RNG.normal(size=5)], [RNG.normal(size=(1, 5)), np.array([-1.0])]]
MLP_X = RNG.normal(size=(6, 2))


def _mlp(activation, after=lambda z: z) -> np.ndarray:
    return after(a2._linear(activation(a2._linear(MLP_X, MLP_WEIGHTS[0])), MLP_WEIGHTS[1]))


SHALLOW = {"x": np.linspace(-2, 2, 9), "theta": RNG.normal(size=(3, 2)), "phi": RNG.normal(size=4)}


def _shallow(activation) -> np.ndarray:
    x, theta, phi = SHALLOW["x"], SHALLOW["theta"], SHALLOW["phi"]
    return phi[0] + activation(theta[:, 0][None, :] + theta[:, 1][None, :] * x[:, None]) @ phi[1:]


BCE_Z, BCE_Y = np.array([-1e4, -1000.0, -30.0, 0.0, 30.0, 1000.0, 1e4]), np.array([0.0, 1, 0, 1, 1, 0, 1])
BCE_WANT = float(np.mean(np.maximum(BCE_Z, 0) - BCE_Z * BCE_Y + np.log1p(np.exp(-np.abs(BCE_Z)))))
SMALL_Z, SMALL_Y = RNG.normal(size=6), np.array([0.0, 1, 1, 0, 1, 0])
SMALL_WANT = float(np.mean(np.maximum(SMALL_Z, 0) - SMALL_Z * SMALL_Y + np.log1p(np.exp(-np.abs(SMALL_Z)))))
STATE = {"0.weight": np.float32(1) + RNG.normal(size=(2, 2)).astype(np.float32), "0.bias": np.zeros(2, np.float32),
         "3.weight": np.ones((1, 2), np.float32), "3.bias": np.zeros(1, np.float32)}


class ReplayTrial:
    """Stands in for a Trial in replay_hint: the reference's replays by the extra arguments they get."""

    def __init__(self, replays: dict) -> None:
        self.replays = replays

    def ref_probe(self, probe: str, **args) -> dict:
        key = (tuple(args.get("skip", ())), tuple(args.get("unmoved", ())))
        return {"value": self.replays.get(key, 99.0)}


REPLAY = a3.replay_hint(ReplayTrial({(("eval",), ()): 1.5, ((), ("x",)): 2.5}), "p", {}, "value",
                        [({"skip": ["eval"]}, a3.EVAL_MODE), ({"unmoved": ["x"]}, a3.UNMOVED_LOSS["x"])])
PROBS = np.array([0.2, 0.7, 0.4])

# hint name -> [(hints, got, want, fragment that must appear, or None: no hint at all)]
CASES: dict[str, list] = {
    "generic shape": [([], W[:, :1], W[:, 0], SHAPE_HINT, True), ([], W[:, :1] + 1, W[:, 0], SHAPE_HINT, False)],
    "generic transposed": [([], W.T, W, TRANSPOSED_HINT, True), ([], -W, W, TRANSPOSED_HINT, False),
                           ([], W[:2].T, W[:2], TRANSPOSED_HINT, True)],
    "generic sign": [([], -V, V, SIGN_HINT, True), ([], 2 * V, V, SIGN_HINT, False)],
    "generic swapped": [([], V[1::-1], V[:2], SWAPPED_HINT, True), ([], V[:2] + 1, V[:2], SWAPPED_HINT, False)],
    "factor_hint": [([factor_hint([("n", 4.0, "divide")])], 4 * V, V, "exactly n times", True),
                    ([factor_hint([("n", 4.0, "divide")])], 3 * V, V, "exactly n times", False)],
    "gradient_hints": [(a1.gradient_hints(20), 20 * V, V, "divide the sum by n", True),
                       (a1.gradient_hints(20), V + 1, V, "divide", False)],
    "loss_hints": [(a1.loss_hints(20), 2.0, 1.0, "½ in front", True), (a1.loss_hints(20), 3.0, 1.0, "½", False)],
    "swap_hint": [([a1.swap_hint], V[1::-1], V[:2], "you returned (beta1, beta0)", True),
                  ([a1.swap_hint], -V[:2], V[:2], "you returned (beta1, beta0)", False)],
    "trajectory_hint": [([a1.trajectory_hint], W[1:, :2], W[:, :2], "missing its first row", True),
                        ([a1.trajectory_hint], W[:2, :2] + 1, W[:, :2], "missing its first row", False)],
    "shuffle_hint": [
        ([a1.shuffle_hint(SGD_X, SGD_Y, 0.1, 2, 4, 3)], a1.sgd_with(SGD_X, SGD_Y, 0.1, 4, [np.arange(10)] * 2),
         SGD_WANT, "original order", True),
        ([a1.shuffle_hint(SGD_X, SGD_Y, 0.1, 2, 4, 3)],
         a1.sgd_with(SGD_X, SGD_Y, 0.1, 4, [np.random.default_rng(3).permutation(10)] * 2), SGD_WANT,
         "same order: create rng", True),
        ([a1.shuffle_hint(SGD_X, SGD_Y, 0.1, 2, 4, 3)],
         a1.sgd_with(SGD_X, SGD_Y, 0.1, 4, [np.random.RandomState(3).permutation(10) for _ in range(1)] * 2),
         SGD_WANT, "numpy's global generator", False),
        ([a1.shuffle_hint(SGD_X, SGD_Y, 0.1, 2, 4, 3)], SGD_WANT + 0.1, SGD_WANT, None, False)],
    "affine_hint": [([a2.affine_hint(SHALLOW["x"])], _shallow(lambda z: z), _shallow(a2._ACTIVATIONS["ReLU"]),
                     "affine", True),
                    ([a2.affine_hint(SHALLOW["x"])], _shallow(np.tanh), _shallow(a2._ACTIVATIONS["ReLU"]),
                     "affine", False)],
    "always_relu_hint": [([a2.always_relu_hint(SHALLOW)], _shallow(a2._ACTIVATIONS["ReLU"]), _shallow(np.tanh),
                          "always applying ReLU", True),
                         ([a2.always_relu_hint(SHALLOW)], _shallow(np.sin), _shallow(np.tanh), "ReLU", False)],
    "count_hint": [([a2.count_hint([2, 3, 1])], 9, 13, "not the biases", True),
                   ([a2.count_hint([2, 3, 1])], 12, 13, "biases", False)],
    "udl_hint": [([a2.udl_hint(3, 2)], 2 * 3 + 9, 22, "not the biases", True),
                 ([a2.udl_hint(3, 2)], 34, 22, "one hidden layer too many", True),
                 ([a2.udl_hint(3, 2)], 23, 22, None, False)],
    "regions_hint": [([a2.regions_hint(3, 2)], 9, 16, "D^K counts joints", True),
                     ([a2.regions_hint(3, 2)], 10, 16, "joints", False)],
    "mlp_forward_hint": [([a2.mlp_forward_hint(MLP_WEIGHTS, MLP_X)], _mlp(np.tanh), _mlp(a2._ACTIVATIONS["ReLU"]),
                          "uses tanh between fc1 and fc2", True),
                         ([a2.mlp_forward_hint(MLP_WEIGHTS, MLP_X)], _mlp(a2._ACTIVATIONS["ReLU"],
                                                                          lambda z: np.maximum(z, 0)),
                          _mlp(a2._ACTIVATIONS["ReLU"]), "no activation after fc2", True),
                         ([a2.mlp_forward_hint(MLP_WEIGHTS, MLP_X)], -_mlp(a2._ACTIVATIONS["ReLU"]),
                          _mlp(a2._ACTIVATIONS["ReLU"]), "between fc1 and fc2", False)],
    "squeeze_hint": [([a2.squeeze_hint], V[:, None], V, "squeeze the last dimension", True),
                     ([a2.squeeze_hint], V[:, None] + 1, V, "squeeze", False)],
    "deep_relu_hint": [([a2.deep_relu_hint(MLP_WEIGHTS, MLP_X)], _mlp(a2._ACTIVATIONS["ReLU"]), _mlp(np.tanh),
                        "not always nn.ReLU()", True),
                       ([a2.deep_relu_hint(MLP_WEIGHTS, MLP_X)], _mlp(a2._ACTIVATIONS["sigmoid"]), _mlp(np.tanh),
                        "nn.ReLU()", False)],
    "replay_hint": [([REPLAY], 1.5, 1.0, "call model.eval()", True), ([REPLAY], 2.5, 1.0, "`xb.to(device)`", True),
                    ([REPLAY], 3.5, 1.0, None, False)],
    "unchanged_hint": [([a3.unchanged_hint(STATE)], STATE, STATE | {"3.bias": np.ones(1, np.float32)},
                        "the weights did not change", True),
                       ([a3.unchanged_hint(STATE)], STATE | {"3.bias": -np.ones(1, np.float32)},
                        STATE | {"3.bias": np.ones(1, np.float32)}, "did not change", False)],
    "last_batch_hint": [([a3.last_batch_hint([1.0, 2.0, 4.0])], 4.0, 7 / 3, "the last batch's loss", True),
                        ([a3.last_batch_hint([1.0, 2.0, 4.0])], 1.0, 7 / 3, "last batch", False)],
    "weighted_mean_hint": [([a3.weighted_mean_hint([1.0, 4.0], [3, 1])], 1.75, 2.5, "plain mean", True),
                           ([a3.weighted_mean_hint([1.0, 4.0], [3, 1])], 4.0, 2.5, "plain mean", False)],
    "sigmoid_again_hint": [([a4.sigmoid_again_hint(PROBS)], 1 / (1 + np.exp(-PROBS)) * (1 - 1 / (1 + np.exp(-PROBS))),
                            PROBS * (1 - PROBS), "do not apply sigmoid again", True),
                           ([a4.sigmoid_again_hint(PROBS)], PROBS, PROBS * (1 - PROBS), "sigmoid again", False)],
    "backward_hints": [
        (a4.backward_hints(NET, CACHE), _with(dW_h=GRADS["dW_h"].T), GRADS, "dW_h is transposed", True),
        (a4.backward_hints(NET, CACHE), _with(dW_h=-GRADS["dW_h"]), GRADS, "transposed", False),
        (a4.backward_hints(NET, CACHE), _with(db_h=np.vstack([GRADS["db_h"], 0 * GRADS["db_h"]])), GRADS,
         "db_h must be summed over the rows", True),
        (a4.backward_hints(NET, CACHE), _with(db_h=GRADS["db_h"][None, :] + 1), GRADS, "summed", False),
        (a4.backward_hints(NET, CACHE), _pre_activation_grads(), GRADS, "not the pre-activation Z", True),
        (a4.backward_hints(NET, CACHE), {k: v / 4 for k, v in GRADS.items()}, GRADS, "do not divide", True),
        (a4.backward_hints(NET, CACHE), {k: -v for k, v in GRADS.items()}, GRADS, "every gradient has the wrong sign",
         True),
        (a4.backward_hints(NET, CACHE), {k: 2 * v for k, v in GRADS.items()}, GRADS, None, False)],
    "numgrad_hints": [(a4.numgrad_hints(NUMGRAD), _numgrad(True), _numgrad(False), "one-sided difference", True),
                      (a4.numgrad_hints(NUMGRAD), -_numgrad(False), _numgrad(False), "difference", False)],
    "clipped_hint": [([a5.clipped_hint(BCE_Z, BCE_Y)],
                      float(np.mean(-(BCE_Y * np.log(np.clip(a5._sigmoid(BCE_Z), 1e-7, 1 - 1e-7))
                                      + (1 - BCE_Y) * np.log(np.clip(1 - a5._sigmoid(BCE_Z), 1e-7, 1 - 1e-7))))),
                      BCE_WANT, "the probabilities are clipped", True),
                     ([a5.clipped_hint(BCE_Z, BCE_Y)], BCE_WANT / 2, BCE_WANT, "clipped", False)],
    "missing_term_hint": [([a5.missing_term_hint(SMALL_Z, SMALL_Y)],
                           float(np.mean(-SMALL_Y * np.log(a5._sigmoid(SMALL_Z)))), SMALL_WANT, "term is missing",
                           True),
                          ([a5.missing_term_hint(SMALL_Z, SMALL_Y)], SMALL_WANT + 1, SMALL_WANT, "missing", False)],
    "logits_hint": [([a5.logits_hint(np.log(PROBS / (1 - PROBS)))], np.log(PROBS / (1 - PROBS)), PROBS,
                     "these are the logits", True),
                    ([a5.logits_hint(np.log(PROBS / (1 - PROBS)))], 1 - PROBS, PROBS, "logits", False)],
    "softmax_hint": [([a5.softmax_hint], np.ones(3), PROBS, "softmax over a single logit", True),
                     ([a5.softmax_hint], np.zeros(3), PROBS, "softmax", False)],
    "train_mode_hint": [([a5.train_mode_hint(lambda: PROBS / 2)], PROBS / 2, PROBS, "call model.eval()", True),
                        ([a5.train_mode_hint(lambda: PROBS / 2)], PROBS / 3, PROBS, "model.eval()", False)],
}


@pytest.mark.parametrize(("name", "index"), [(n, i) for n, cases in CASES.items() for i in range(len(cases))])
def test_a_hint_fires_only_when_its_diagnosis_is_confirmed(name, index) -> None:
    hints, got, want, fragment, fires = CASES[name][index]
    problem = compare(got, want, "the result", hints=hints)
    assert problem is not None
    if fires:
        assert fragment in problem.hint, problem
    elif fragment is None:
        assert problem.hint == "", problem
    else:
        assert fragment not in problem.hint, problem


def test_every_hint_in_the_checks_has_a_case_that_fires_and_one_that_does_not() -> None:
    names = set()
    for assignment in COURSE.assignments():
        module = checks_module(COURSE.assignment(assignment))
        names |= {n for n, obj in vars(module).items()
                  if inspect.isfunction(obj) and obj.__module__ == module.__name__ and n.endswith(("_hint", "_hints"))
                  and not n.startswith("_")}
    assert names <= set(CASES), sorted(names - set(CASES))
    for name, cases in CASES.items():
        assert any(c[4] for c in cases) and not all(c[4] for c in cases), name


def test_a_float32_result_is_judged_with_float32_tolerance_and_a_size_one_array_as_a_number() -> None:
    want = RNG.normal(size=5)
    assert compare(want.astype(np.float32), want, "beta") is None
    assert compare(np.array([0.5]), 0.5, "the loss") is None
    assert compare(TensorData(np.array(0.5, np.float32), "float32", "cpu"), 0.5, "the loss") is None
    assert compare(13.0, 13, "the count") is None
    assert compare(13.5, 13, "the count") is not None

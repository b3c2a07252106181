"""Checks for a3_training_loop: the notebook's dataset, loader, loops and checkpoints drive the grader's own
small models, and every result is compared with the reference doing the same."""

from __future__ import annotations

import numpy as np

from ..checking import Suite, Trial

SUITE = Suite(
    "a3_training_loop",
    "training_loop.ipynb",
    depends={"fit": ["train_one_epoch", "evaluate"], "fit_cubic": ["train_one_epoch"]},
    typical_mistakes={
        "train_one_epoch": "def train_one_epoch(model, loader, loss_fn, optimizer, device='cpu'):\n"
                           "    model.train()\n"
                           "    for xb, yb in loader:\n"
                           "        xb.to(device)\n"
                           "        yb = yb.to(device)\n"
                           "        loss = loss_fn(model(xb), yb)\n"
                           "        loss.backward()\n"
                           "        optimizer.step()\n"
                           "    return loss.item()\n",
        "evaluate": "def evaluate(model, loader, loss_fn, device='cpu'):\n"
                    "    with torch.no_grad():\n"
                    "        return float(np.mean([loss_fn(model(x.to(device)), y.to(device)).item()\n"
                    "                              for x, y in loader]))\n",
    },
)
check = SUITE.check
PROBE = "probes_a3_training_loop"
# fit_cubic passes if its test MSE is at most this multiple of the reference's (or the floor, whichever is
# larger); predicting y = 3x (the best straight line) has MSE 6, far above both.
CUBIC_MSE_FACTOR, CUBIC_MSE_FLOOR = 4.0, 0.3


def _data(t: Trial, n: int | None = None) -> dict:
    n = n or (12 if t.public else int(t.rng.integers(9, 30)))
    d, h = 3, 4
    state = {"0.weight": t.rng.normal(scale=0.5, size=(h, d)), "0.bias": t.rng.normal(scale=0.1, size=h),
             "3.weight": t.rng.normal(scale=0.5, size=(1, h)), "3.bias": np.zeros(1)}
    return {"state": {k: v.astype(np.float32) for k, v in state.items()},
            "x": t.rng.normal(size=(n, d)).astype(np.float32), "y": t.rng.normal(size=n).astype(np.float32)}


def _unmoved(t: Trial, got: dict, name: str) -> None:
    if got.get("unmoved"):
        t.fail(f"{name} passed the batch to the model without moving it: `xb.to(device)` returns a new tensor and "
               "leaves xb where it was; write `xb = xb.to(device)` (and the same for the targets).")


# -- ScoreDataset ------------------------------------------------------------------------------------

@check("ScoreDataset", "has the right length and float32 items")
def _(t: Trial) -> None:
    n = 5 if t.public else int(t.rng.integers(2, 20))
    x, y = t.rng.normal(size=n), t.rng.normal(size=n)
    idx = [0, n - 1, int(t.rng.integers(0, n))]
    got = t.probe(f"{PROBE}.dataset", label="ScoreDataset", x=x, y=y, indices=idx)
    want = t.ref_probe(f"{PROBE}.dataset", x=x, y=y, indices=idx)
    t.expect(got["len"] == want["len"], f"len(ScoreDataset(x, y)) is {got['len']}; expected {want['len']}.")
    for item in got["items"]:
        for part in item:
            t.expect(getattr(part, "dtype", None) == "float32",
                     f"items should be float32 tensors; got {getattr(part, 'dtype', type(part).__name__)} "
                     "(torch.tensor(value, dtype=torch.float32)).")
    t.expect_close(got["items"], want["items"], "the items (x_i, y_i)")


@check("ScoreDataset", "raises ValueError for x and y of different lengths", seeded=False)
def _(t: Trial) -> None:
    raised = t.probe(f"{PROBE}.dataset_error", label="ScoreDataset", x=np.arange(4.0), y=np.arange(3.0))
    t.expect(raised == "ValueError", f"ScoreDataset(x, y) with 4 and 3 values should raise ValueError; "
             f"{'it raised ' + raised if raised else 'nothing was raised'}.")


# -- make_dataloader ------------------------------------------------------------------------------------

@check("make_dataloader", "shuffles from its seeded generator only")
def _(t: Trial) -> None:
    args = {"n": 10 if t.public else int(t.rng.integers(8, 40)), "batch_size": int(t.rng.integers(2, 5)),
            "shuffle": True, "seed": int(t.rng.integers(0, 1000))}
    got = t.probe(f"{PROBE}.loader_order", label="make_dataloader", global_seed=int(t.rng.integers(0, 999)), **args)
    want = t.ref_probe(f"{PROBE}.loader_order", global_seed=0, **args)
    if got != want:
        t.fail("make_dataloader's batches differ from the expected order: the shuffling must come only from "
               "`generator=torch.Generator().manual_seed(seed)` passed to the DataLoader (not from torch's "
               "global seed).")


@check("make_dataloader", "keeps the order when shuffle is False", seeded=False)
def _(t: Trial) -> None:
    args = {"n": 7, "batch_size": 3, "shuffle": False, "seed": 1, "global_seed": 5}
    got = t.probe(f"{PROBE}.loader_order", label="make_dataloader", **args)
    t.expect(got == t.ref_probe(f"{PROBE}.loader_order", **args), f"with shuffle=False the batches should be "
             f"[[0, 1, 2], [3, 4, 5], [6]] in every epoch; got {got}.")


# -- train_one_epoch -----------------------------------------------------------------------------------

def _train(t: Trial, n: int, batch_size: int) -> tuple[dict, dict, dict]:
    args = _data(t, n) | {"batch_size": batch_size, "lr": 0.1, "momentum": 0.0}
    got = t.probe(f"{PROBE}.train_epoch", label="train_one_epoch", **args)
    _unmoved(t, got, "train_one_epoch")
    return got, t.ref_probe(f"{PROBE}.train_epoch", **args), args


@check("train_one_epoch", "one batch: the step matches the reference", on_devices=True)
def _(t: Trial) -> None:
    got, want, args = _train(t, 8, 8)
    if all(np.array_equal(got["state"][k], args["state"][k]) for k in got["state"]):
        t.fail("the weights did not change: call optimizer.step() after loss.backward(), and do not zero the "
               "gradients between the two.")
    t.expect_close(got["state"], want["state"], "the weights after one step")


@check("train_one_epoch", "several batches: weights and mean loss match the reference", on_devices=True)
def _(t: Trial) -> None:
    got, want, _ = _train(t, 22, 4)
    g, w = got["losses"], want["losses"]
    if len(g) == len(w) > 2 and np.allclose(g[:2], w[:2], rtol=1e-5) and not np.isclose(g[2], w[2], rtol=1e-5):
        # the loss of batch 3 is the first to see the second update
        t.fail("the first step is right but the second is not: gradients accumulate across batches unless you "
               "call optimizer.zero_grad() before each loss.backward().")
    t.expect_close(got["state"], want["state"], "the weights after an epoch", iterative=True)
    losses = got["losses"]
    hints = [lambda g, w: "you returned the last batch's loss; return the mean of all batch losses."
             if np.isclose(g, losses[-1]) else None,
             lambda g, w: "return the plain mean of the batch losses, not one weighted by batch size."
             if len(losses) == 6 and np.isclose(g, np.average(losses, weights=[4] * 5 + [2])) else None]
    t.expect_close(got["value"], want["value"], "the returned loss", iterative=True, hints=hints)


# -- evaluate -----------------------------------------------------------------------------------------------

@check("evaluate", "uses evaluation mode and no gradient, and changes no weight", on_devices=True)
def _(t: Trial) -> None:
    args = _data(t) | {"batch_size": 4}
    got = t.probe(f"{PROBE}.evaluate", label="evaluate", **args)
    _unmoved(t, got, "evaluate")
    want = t.ref_probe(f"{PROBE}.evaluate", **args)
    if got["values"][0] != got["values"][1] or got["training"]:
        t.fail("evaluate gave different losses on the same data (dropout is still active): call model.eval() "
               "before evaluating.")
    t.expect_close(got["state"], args["state"], "the weights after evaluate (they must not change)")
    t.expect_close(got["values"][0], want["values"][0], "the mean loss")


# -- fit -------------------------------------------------------------------------------------------------------

@check("fit", "returns per-epoch training and validation losses like the reference", on_devices=True)
def _(t: Trial) -> None:
    data, val = _data(t, 16), _data(t, 8)
    args = {**data, "xv": val["x"], "yv": val["y"], "batch_size": 4, "lr": 0.05, "n_epochs": 3, "validate": True}
    got = t.probe(f"{PROBE}.fit", label="fit", **args)
    want = t.ref_probe(f"{PROBE}.fit", **args)
    t.expect_close(got["history"], want["history"], "the history", iterative=True)
    t.expect_close(got["state"], want["state"], "the weights after fit", iterative=True)


@check("fit", "leaves val_loss empty without a validation loader")
def _(t: Trial) -> None:
    data = _data(t, 8)
    args = {**data, "xv": data["x"], "yv": data["y"], "batch_size": 4, "lr": 0.05, "n_epochs": 2, "validate": False}
    got = t.probe(f"{PROBE}.fit", label="fit", **args)
    t.expect_close(got["history"], t.ref_probe(f"{PROBE}.fit", **args)["history"], "the history", iterative=True)


# -- checkpoints ----------------------------------------------------------------------------------------------

def _checkpoint(t: Trial, label: str) -> None:
    args = _data(t, 24) | {"steps": 3, "epoch": int(t.rng.integers(1, 50))}
    got = t.probe(f"{PROBE}.checkpoint", label=label, **args)
    t.expect(got["epoch"] == args["epoch"], f"load_checkpoint returned {got['epoch']!r}; expected the saved epoch "
             f"{args['epoch']}.")
    problem = not all(np.array_equal(got["resumed"][k], got["uninterrupted"][k]) for k in got["resumed"])
    if problem:
        t.fail("training resumed from your checkpoint differs from uninterrupted training: save and restore the "
               "optimizer's state_dict() too (Adam keeps running averages), not only the model's.")
    t.expect_close(got["resumed"], t.ref_probe(f"{PROBE}.checkpoint", **args)["resumed"], "the resumed weights",
                   iterative=True)


@check("save_checkpoint", "a resumed run matches uninterrupted training")
def _(t: Trial) -> None:
    _checkpoint(t, "save_checkpoint")


@check("load_checkpoint", "restores model and optimizer and returns the epoch")
def _(t: Trial) -> None:
    _checkpoint(t, "load_checkpoint")


# -- fit_cubic ----------------------------------------------------------------------------------------------

@check("fit_cubic", "fits y = x^3 on fresh points within the time budget", seconds=60.0)
def _(t: Trial) -> None:
    seed = int(t.rng.integers(0, 1000))
    x_test = t.rng.normal(size=(400, 1))
    got = t.probe(f"{PROBE}.cubic", label="fit_cubic", seconds=60.0, seed=seed, x_test=x_test)
    want = t.ref_probe(f"{PROBE}.cubic", seed=seed, x_test=x_test)
    t.expect(got["shape"] in ([400], [400, 1]), f"the model maps (n, 1) to (n,) or (n, 1); it gave {got['shape']}.")
    target = x_test[:, 0] ** 3
    mse, ref_mse = float(np.mean((got["pred"] - target) ** 2)), float(np.mean((want["pred"] - target) ** 2))
    limit = max(CUBIC_MSE_FACTOR * ref_mse, CUBIC_MSE_FLOOR)
    t.expect(mse <= limit, f"the test MSE of your model is {mse:.3g}; it must be at most {limit:.3g} "
             f"(the best straight line scores 6). Train longer, or use a wider network with a nonlinearity.")

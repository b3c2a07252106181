"""Checks for a3_training_loop: the notebook's dataset, loader, loops and checkpoints drive the grader's own
small models, and every result is compared with the reference doing the same."""

from __future__ import annotations

import numpy as np

from ..checking import Suite, Trial, mistake

SUITE = Suite(
    "a3_training_loop",
    "training_loop.ipynb",
    # load_checkpoint reads what save_checkpoint wrote (the file format is the student's own)
    depends={"fit": ["train_one_epoch", "evaluate"], "fit_cubic": ["train_one_epoch"],
             "load_checkpoint": ["save_checkpoint"]},
    mistakes=[mistake(f, c, '', typical=True) for f, c in {
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
    }.items()],
    preload=("torch", "torch.utils.data"),
    warm_torch=True,
)
check = SUITE.check
PROBE = "probes_a3_training_loop"
# fit_cubic is judged on fresh points x ~ N(0, 1) kept where training data is dense (|x| <= CUBIC_RANGE: 98.8% of
# the mass; beyond it every model extrapolates and one far point would decide the grade). It passes if its test MSE
# is at most CUBIC_MSE_FACTOR times the reference's on the same points (the reference trained with the same seed,
# in this process), or CUBIC_MSE_FLOOR, whichever is larger. The reference scores about 0.003-0.008 there, so the
# limit is about 0.1-0.16; the best straight line scores about 2.3, and a network with too few units about 2.5.
# CUBIC_SECONDS is the student's CPU budget for fit_cubic(seed): the reference needs about 1 s on one core.
CUBIC_RANGE, CUBIC_TEST_POINTS = 2.5, 1000
CUBIC_MSE_FACTOR, CUBIC_MSE_FLOOR = 20.0, 0.1
CUBIC_SECONDS = 20.0


def _data(t: Trial, n: int | None = None) -> dict:
    n = n or (12 if t.public else int(t.rng.integers(9, 30)))
    d, h = 3, 4
    state = {"0.weight": t.rng.normal(scale=0.5, size=(h, d)), "0.bias": t.rng.normal(scale=0.1, size=h),
             "3.weight": t.rng.normal(scale=0.5, size=(1, h)), "3.bias": np.zeros(1)}
    return {"state": {k: v.astype(np.float32) for k, v in state.items()},
            "x": t.rng.normal(size=(n, d)).astype(np.float32), "y": t.rng.normal(size=n).astype(np.float32)}


def _unmoved(t: Trial, got: dict, name: str) -> None:
    """Fail if the batch reached the model (or the targets reached the loss) without ``.to(device)``'s result.

    The probe's loader yields tensors of a marked subclass whose ``.to()`` returns a plain tensor, so this is
    caught on a CPU-only grader too, where an unmoved batch would otherwise work."""
    if got.get("unmoved"):
        t.fail(f"{name} passed the batch to the model without moving it: `xb.to(device)` returns a new tensor and "
               "leaves xb where it was; write `xb = xb.to(device)` (and the same for the targets).")
    if got.get("unmoved_targets"):
        t.fail(f"{name} passed the targets to the loss without moving them: `yb.to(device)` returns a new tensor; "
               "write `yb = yb.to(device)`.")


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
    if got["grad_enabled"]:
        t.fail("evaluate computed the losses with gradient tracking on: wrap the loop in `with torch.no_grad():` "
               "(evaluation needs no gradients, and tracking them costs memory and time).")
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

def _checkpoint(t: Trial, label: str, part: str) -> dict:
    args = _data(t, 24) | {"steps": 3, "epoch": int(t.rng.integers(10, 1000))}
    got = t.probe(f"{PROBE}.checkpoint", label=label, part=part, **args)
    if "resumed" not in got:  # save_checkpoint's file was inspected, not loaded
        return got
    return got | {"saved_epoch": args["epoch"], "want": t.ref_probe(f"{PROBE}.checkpoint", **args)["resumed"]}


def _resumes(got: dict) -> bool:
    return all(np.array_equal(got["resumed"][k], got["uninterrupted"][k]) for k in got["resumed"])


OPTIMIZER_STATE = ("save and restore the optimizer's state_dict() too (Adam keeps running averages of the "
                   "gradients), not only the model's")


@check("save_checkpoint", "writes the model state, the optimizer state and the epoch")
def _(t: Trial) -> None:
    got = _checkpoint(t, "save_checkpoint", "save")
    if got["has_model"] is False:
        t.fail("the checkpoint file does not hold the model's parameters: save model.state_dict().")
    if got["has_optimizer"] is False:
        t.fail(f"the checkpoint file does not hold the optimizer's state: {OPTIMIZER_STATE}.")
    if got["has_epoch"] is False:
        t.fail("the checkpoint file does not hold the epoch: save it with the states, e.g. "
               "{'model': ..., 'optimizer': ..., 'epoch': epoch}.")
    if got["has_model"] is None and not _resumes(got):  # a format torch.load cannot read: judge the round trip
        t.fail(f"training resumed from your checkpoint differs from uninterrupted training: {OPTIMIZER_STATE}.")


@check("load_checkpoint", "restores model and optimizer, so resumed training matches uninterrupted training")
def _(t: Trial) -> None:
    got = _checkpoint(t, "load_checkpoint", "load")
    epoch = got["epoch"]
    t.expect(isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and epoch == got["saved_epoch"],
             f"load_checkpoint returned {epoch!r}; it should return the epoch that was saved ({got['saved_epoch']})."
             if t.public else "load_checkpoint did not return the epoch that was saved (a number).")
    if not _resumes(got):
        if got["has_optimizer"] and not got["restored_optimizer"]:
            t.fail("training resumed from your checkpoint differs from uninterrupted training: load_checkpoint "
                   "does not restore the optimizer; call optimizer.load_state_dict(...) with the saved state.")
        t.fail(f"training resumed from your checkpoint differs from uninterrupted training: {OPTIMIZER_STATE}.")
    t.expect_close(got["resumed"], got["want"], "the resumed weights", iterative=True)


# -- fit_cubic ----------------------------------------------------------------------------------------------

@check("fit_cubic", "fits y = x^3 on fresh points within the time budget", seconds=CUBIC_SECONDS)
def _(t: Trial) -> None:
    seed = int(t.rng.integers(0, 1000))
    x = t.rng.normal(size=4 * CUBIC_TEST_POINTS)
    x_test = x[np.abs(x) <= CUBIC_RANGE][:CUBIC_TEST_POINTS, None]
    got = t.probe(f"{PROBE}.cubic", label="fit_cubic", seconds=CUBIC_SECONDS, seed=seed, x_test=x_test)
    want = t.ref_probe(f"{PROBE}.cubic", seed=seed, x_test=x_test)
    n = len(x_test)
    t.expect(got["shape"] in ([n], [n, 1]), f"the model should map a batch of shape (n, 1) to (n,) or (n, 1); "
             f"for n = {n} it gave {got['shape']}.")
    target = x_test[:, 0] ** 3
    mse, ref_mse = float(np.mean((got["pred"] - target) ** 2)), float(np.mean((want["pred"] - target) ** 2))
    limit = max(CUBIC_MSE_FACTOR * ref_mse, CUBIC_MSE_FLOOR)
    if not np.isfinite(mse) or mse > limit:
        t.fail(f"the test MSE of your model on fresh points with |x| <= {CUBIC_RANGE} is {mse:.3g}; it must be at "
               f"most {limit:.3g} (the best straight line scores about 2.3). Use a network with a nonlinearity and "
               "enough hidden units, and train until the training loss is small (Adam, lr about 0.01).")

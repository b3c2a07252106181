"""Checks for a3_training_loop: the notebook's dataset, loader, loops and checkpoints drive the grader's own
small models, and every result is compared with the reference doing the same.

The loops are probed where a mistake shows in the numbers: train_one_epoch gets a batch-norm network in evaluation
mode (without ``model.train()`` its weights come out different), evaluate gets it in training mode with
non-trivial running statistics (without ``model.eval()`` its losses differ), and the loader's batches scramble
themselves when ``.to(device)`` is called without using the result. Every diagnosis in a hint is confirmed by
replaying the mistake on the reference.
"""

from __future__ import annotations

import numpy as np

from autograder import Suite, TensorData, Trial, Variant, close, matches, mistake

SUITE = Suite(
    depends={"fit": ["train_one_epoch", "evaluate"]},
    # No follow-through for these: fit_cubic calls train_one_epoch (if it does) on a model of its own, which cannot
    # cross to the grader as data, and running a reference loop in the student's process would hand the student the
    # reference; load_checkpoint reads the file save_checkpoint wrote, in a format of the student's own, for which
    # no reference can stand in. A mistake in the helper may cost these too, and their feedback says so.
    coupled={"fit_cubic": ["train_one_epoch"], "load_checkpoint": ["save_checkpoint"]},
    preload=("torch", "torch.utils.data"),
    warm_torch=True,
)
check = SUITE.check
near_miss = SUITE.near_miss
# fit_cubic is judged on fresh points x ~ N(0, 1) kept where training data is dense (|x| <= CUBIC_RANGE: 98.8% of
# the mass; beyond it every model extrapolates and one far point would decide the grade). It passes if its test MSE
# is at most CUBIC_MSE_FACTOR times the reference's on the same points (the reference trained with the same seed,
# in this process), or CUBIC_MSE_FLOOR, whichever is larger. The reference scores about 0.003-0.008 there, so the
# limit is about 0.1-0.16; the best straight line scores about 2.22, and a network with too few units about 2.5.
# CUBIC_SECONDS is the student's CPU budget for fit_cubic(seed): the reference needs about 1 s on one core.
CUBIC_RANGE, CUBIC_TEST_POINTS = 2.5, 1000
CUBIC_MSE_FACTOR, CUBIC_MSE_FLOOR = 20.0, 0.1
CUBIC_SECONDS = 20.0


def _data(t: Trial, n: int | None = None, norm: bool = True) -> dict:
    """The grader's network (Linear, BatchNorm1d with non-trivial running statistics when ``norm``, Tanh, Linear)
    and data; no batch of 4 ever holds a single row (batch norm cannot train on one)."""
    if n is None:
        n = 12 if t.public else int(t.rng.choice([k for k in range(9, 30) if k % 4 != 1]))
    d, h = 3, 4
    state = {"0.weight": t.rng.normal(scale=0.5, size=(h, d)), "0.bias": t.rng.normal(scale=0.1, size=h)}
    if norm:
        state |= {"1.weight": 1 + t.rng.normal(scale=0.2, size=h), "1.bias": t.rng.normal(scale=0.2, size=h),
                  "1.running_mean": t.rng.normal(scale=0.5, size=h), "1.running_var": t.rng.uniform(0.5, 2.0, size=h)}
    state |= {"3.weight": t.rng.normal(scale=0.5, size=(1, h)), "3.bias": np.zeros(1)}
    state = {k: v.astype(np.float32) for k, v in state.items()}
    if norm:
        state["1.num_batches_tracked"] = np.array(10, dtype=np.int64)
    return {"state": state, "x": t.rng.normal(size=(n, d)).astype(np.float32),
            "y": t.rng.normal(size=n).astype(np.float32)}


def _params(state: dict) -> dict:
    return {k: v for k, v in state.items() if "running" not in k and "num_batches" not in k}


UNMOVED = {"x": "the weights are those of training on batches left where they were: `xb.to(device)` returns a new "
                "tensor and leaves xb as it was; write `xb = xb.to(device)` (and the same for the targets).",
           "y": "the weights are those of training with targets left where they were: `yb.to(device)` returns a new "
                "tensor; write `yb = yb.to(device)`."}
UNMOVED_LOSS = {"x": "the losses are those of batches left where they were: `xb.to(device)` returns a new tensor and "
                     "leaves xb as it was; write `xb = xb.to(device)`.",
                "y": "the losses are those of targets left where they were: `yb.to(device)` returns a new tensor; "
                     "write `yb = yb.to(device)`."}
# One check per loop judges it on the CPU under another name: a device string that is not the literal "cpu", so that
# a batch never moved to the device shows on a machine without a GPU (the loader's batches are usable only as
# .to(device) returns them), while the lecture's `if device != "cpu"` idiom moves them as it would on a GPU. The other
# checks pass the device as it is, so code that decides by the device's type (`torch.device(device).type`, which is
# "cpu" either way) loses that one check only.
CPU_ALIAS = "cpu:0"
_NOTE = f" (this test passes device={CPU_ALIAS!r}, the CPU under another name, so a missing move shows without a GPU)"
NEVER_MOVED = {"x": "the weights are those of training on input batches never moved to the device: move each batch "
                    "as it arrives, `xb = xb.to(device)`" + _NOTE + ".",
               "y": "the weights are those of training on target batches never moved to the device: move them too, "
                    "`yb = yb.to(device)`" + _NOTE + ".",
               "xy": "the weights are those of training on batches never moved to the device: move each batch as it "
                     "arrives, `xb, yb = xb.to(device), yb.to(device)`" + _NOTE + "."}
NEVER_MOVED_LOSS = {"x": "the losses are those of input batches never moved to the device: move each batch as it "
                         "arrives, `xb = xb.to(device)`" + _NOTE + ".",
                    "y": "the losses are those of target batches never moved to the device: move them too, "
                         "`yb = yb.to(device)`" + _NOTE + ".",
                    "xy": "the losses are those of batches never moved to the device: move each batch as it arrives, "
                          "`xb, yb = xb.to(device), yb.to(device)`" + _NOTE + "."}

ALSO_TARGETS = "The targets are never moved either: write `yb = yb.to(device)` too" + _NOTE + "."


def _device(t: Trial) -> str:
    """The device string a loop is given: the CPU under another name on a CPU, the GPU's own name on a GPU."""
    return CPU_ALIAS if t.device == "cpu" else t.device


def replay_hint(t: Trial, probe: str, args: dict, part: str, cases: list[tuple[dict, str]], iterative: bool = False):
    """A diagnosis confirmed by replaying a mistake on the reference: ``cases`` pairs the probe's extra arguments
    (``skip``: calls made no-ops; ``unmoved``: what an unassigned .to() scrambles; ``never_moved``: batches no .to()
    reached) with the hint they confirm. Only a value that exactly one replay reproduces gets that replay's hint."""

    def hint(got, want) -> str | None:
        found = {advice for extra, advice in cases if close(got, t.ref_probe(probe, **args, **extra)[part], iterative)}
        return found.pop() if len(found) == 1 else None

    return hint


# -- ScoreDataset ------------------------------------------------------------------------------------

def _item_shapes(got_items: list, want_items: list) -> list:
    """The student's items, with a one-element tensor read as the scalar it holds where the reference's has shape
    () (the contract accepts () and (1,); the public test reads items with float(), which takes any one-element
    tensor)."""
    items = []
    for got, want in zip(got_items, want_items):
        if isinstance(got, (tuple, list)) and len(got) == len(want):
            got = tuple(TensorData(g.array.reshape(()), g.dtype, g.device, g.requires_grad)
                        if isinstance(g, TensorData) and g.array.size == 1 and w.shape == () else g
                        for g, w in zip(got, want))
        items.append(got)
    return items


@check("ScoreDataset", "has the right length and float32 items of shape () or (1,)")
def scoredataset_has_the_right_length_and_float32_items_of_shape_or_1(t: Trial) -> None:
    n = 5 if t.public else int(t.rng.integers(2, 20))
    x, y = t.rng.normal(size=n), t.rng.normal(size=n)
    idx = [0, n - 1, int(t.rng.integers(0, n))]
    got = t.probe("dataset", label="ScoreDataset", x=x, y=y, indices=idx)
    want = t.ref_probe("dataset", x=x, y=y, indices=idx)
    t.expect(got["len"] == want["len"], "len(ScoreDataset(x, y)) is not the number of pairs.",
             f"len(ScoreDataset(x, y)) is {got['len']}; expected {want['len']}.")
    for item in got["items"]:
        for part in item if isinstance(item, (tuple, list)) else (item,):
            if getattr(part, "dtype", None) != "float32":
                t.fail("items should be float32 tensors (torch.tensor(value, dtype=torch.float32)).",
                       f"items should be float32 tensors; got {getattr(part, 'dtype', type(part).__name__)} "
                       "(torch.tensor(value, dtype=torch.float32)).")
    t.expect_close(_item_shapes(got["items"], want["items"]), want["items"], "the items (x_i, y_i)")


@check("ScoreDataset", "raises ValueError for x and y of different lengths", seeded=False)
def scoredataset_raises_valueerror_for_x_and_y_of_different_lengths(t: Trial) -> None:
    raised = t.probe("dataset_error", label="ScoreDataset", x=np.arange(4.0), y=np.arange(3.0))
    t.expect(raised == "ValueError", f"ScoreDataset(x, y) with 4 and 3 values should raise ValueError; "
             f"{'it raised ' + raised if raised else 'nothing was raised'} (the lecture's version asserts; the "
             "contract asks for `raise ValueError(...)`).")


# -- make_dataloader ------------------------------------------------------------------------------------

@check("make_dataloader", "shuffles from its seeded generator only")
def make_dataloader_shuffles_from_its_seeded_generator_only(t: Trial) -> None:
    args = {"n": 10 if t.public else int(t.rng.integers(8, 40)), "batch_size": int(t.rng.integers(2, 5)),
            "shuffle": True, "seed": int(t.rng.integers(0, 1000))}
    got = t.probe("loader_order", label="make_dataloader", global_seed=int(t.rng.integers(0, 999)), **args)
    want = t.ref_probe("loader_order", global_seed=0, **args)
    t.expect(got == want, "make_dataloader's batches differ from the expected order. The contract fixes the recipe: "
             "the shuffling must come only from `generator=torch.Generator().manual_seed(seed)` passed to the "
             "DataLoader (not from torch's global seed).")


@check("make_dataloader", "keeps the order when shuffle is False", seeded=False)
def make_dataloader_keeps_the_order_when_shuffle_is_false(t: Trial) -> None:
    args = {"n": 7, "batch_size": 3, "shuffle": False, "seed": 1, "global_seed": 5}
    got = t.probe("loader_order", label="make_dataloader", **args)
    t.expect(got == t.ref_probe("loader_order", **args), f"with shuffle=False the batches should be "
             f"[[0, 1, 2], [3, 4, 5], [6]] in every epoch; got {got}.")


# -- train_one_epoch -----------------------------------------------------------------------------------

TRAIN_MODE = ("the weights are those of training with the model in evaluation mode (batch norm used its running "
              "statistics): the model must be in training mode for the whole epoch; call model.train() at its start.")
ZERO_GRAD = ("the weights are those of training where the gradients accumulate across batches: call "
             "optimizer.zero_grad() before each loss.backward(), once per batch.")


def _train(t: Trial, n: int, batch_size: int, device: str | None = None) -> tuple[dict, dict, dict]:
    args = _data(t, n) | {"batch_size": batch_size, "lr": 0.1, "momentum": 0.0, "device": device or t.device}
    got = t.probe("train_epoch", label="train_one_epoch", **args)
    return got, t.ref_probe("train_epoch", **args), args


def unchanged_hint(state: dict):
    """Weights that did not move at all."""

    def hint(got, want) -> str | None:  # exactly the weights it was given: a tiny step is still a step
        if isinstance(got, dict) and set(got) == set(_params(state)) and all(
                isinstance(got[k], np.ndarray) and np.array_equal(got[k], v) for k, v in _params(state).items()):
            return ("the weights did not change: each batch needs loss.backward() and then optimizer.step(), with no "
                    "zero_grad() between the two.")
        return None

    return hint


def last_batch_hint(losses: list):
    """The last batch's loss returned instead of the mean."""
    return lambda got, want: ("you returned the last batch's loss; return the mean of all batch losses."
                              if len(losses) > 1 and matches(got, losses[-1]) and not matches(got, want) else None)


def weighted_mean_hint(losses: list, sizes: list):
    """The mean weighted by batch size instead of the plain mean of the batch losses."""
    return lambda got, want: ("return the plain mean of the batch losses, not one weighted by batch size."
                              if len(losses) == len(sizes) and matches(got, np.average(losses, weights=sizes))
                              and not matches(got, want) else None)


def _weights_hints(t: Trial, args: dict) -> list:
    cases = [({"skip": ["train"]}, TRAIN_MODE), ({"skip": ["zero_grad"]}, ZERO_GRAD),
             ({"unmoved": ["x"]}, UNMOVED["x"]), ({"unmoved": ["y"]}, UNMOVED["y"]),
             ({"unmoved": ["x", "y"]}, UNMOVED["x"]), ({"never_moved": ["x"]}, NEVER_MOVED["x"]),
             ({"never_moved": ["y"]}, NEVER_MOVED["y"]), ({"never_moved": ["x", "y"]}, NEVER_MOVED["xy"]),
             ({"unmoved": ["x"], "never_moved": ["y"]}, f"{UNMOVED['x']} {ALSO_TARGETS}")]
    return [unchanged_hint(args["state"]),
            replay_hint(t, "train_epoch", args, "params", _movable(cases, args), iterative=True)]


@check("train_one_epoch", "one batch: switches to training mode and takes the reference's step", on_devices=True)
def train_one_epoch_trains_and_takes_the_reference_step_on_one_batch(t: Trial) -> None:
    got, want, args = _train(t, 8, 8)
    t.expect_close(got["params"], want["params"], "the weights after one step", iterative=True,
                   hints=_weights_hints(t, args))


@check("train_one_epoch", "moves each batch to the device it is given", on_devices=True)
def train_one_epoch_moves_each_batch_to_the_device_it_is_given(t: Trial) -> None:
    got, want, args = _train(t, 12, 4, device=_device(t))
    t.expect_close(got["params"], want["params"], "the weights after an epoch", iterative=True,
                   hints=_weights_hints(t, args))


@check("train_one_epoch", "several batches: weights and mean loss match the reference", on_devices=True)
def train_one_epoch_matches_the_reference_over_several_batches(t: Trial) -> None:
    got, want, args = _train(t, 22, 4)
    t.expect_close(got["params"], want["params"], "the weights after an epoch", iterative=True,
                   hints=_weights_hints(t, args))
    losses = got["losses"]
    hints = [last_batch_hint(losses), weighted_mean_hint(losses, [4] * 5 + [2])]
    t.expect_close(got["value"], want["value"], "the returned loss", iterative=True, hints=hints)


# -- evaluate -----------------------------------------------------------------------------------------------

EVAL_MODE = ("the losses are those of the model in training mode (batch norm used each batch's statistics): call "
             "model.eval() before evaluating.")


def _evaluate(t: Trial, device: str | None = None) -> tuple[dict, dict]:
    args = _data(t) | {"batch_size": 4, "device": device or t.device}
    return t.probe("evaluate", label="evaluate", **args), args


def _evaluate_hints(t: Trial, args: dict) -> list:
    cases = [({"skip": ["eval"]}, EVAL_MODE), ({"unmoved": ["x"]}, UNMOVED_LOSS["x"]),
             ({"unmoved": ["y"]}, UNMOVED_LOSS["y"]), ({"never_moved": ["x"]}, NEVER_MOVED_LOSS["x"]),
             ({"never_moved": ["y"]}, NEVER_MOVED_LOSS["y"]), ({"never_moved": ["x", "y"]}, NEVER_MOVED_LOSS["xy"]),
             ({"unmoved": ["x"], "never_moved": ["y"]}, f"{UNMOVED_LOSS['x']} {ALSO_TARGETS}")]
    return [replay_hint(t, "evaluate", args, "value", _movable(cases, args))]


def _movable(cases: list[tuple[dict, str]], args: dict) -> list[tuple[dict, str]]:
    """The replays that tell something apart on the device the loop was given: on the literal "cpu" a batch needs no
    move, so a batch never moved is one moved (only the device's alias shows it)."""
    if args["device"] != "cpu":
        return cases
    return [(extra, advice) for extra, advice in cases if "never_moved" not in extra]


@check("evaluate", "computes the mean loss in evaluation mode (batch norm's running statistics)", on_devices=True)
def evaluate_computes_the_mean_loss_in_evaluation_mode(t: Trial) -> None:
    got, args = _evaluate(t)
    t.expect_close(got["value"], t.ref_probe("evaluate", **args)["value"], "the mean loss",
                   hints=_evaluate_hints(t, args))


@check("evaluate", "moves each batch to the device it is given", on_devices=True)
def evaluate_moves_each_batch_to_the_device_it_is_given(t: Trial) -> None:
    got, args = _evaluate(t, device=_device(t))
    t.expect_close(got["value"], t.ref_probe("evaluate", **args)["value"], "the mean loss",
                   hints=_evaluate_hints(t, args))


@check("evaluate", "changes no parameter: called again, it gives the same loss", on_devices=True)
def evaluate_changes_no_parameter_called_again_it_gives_the_same_loss(t: Trial) -> None:
    got, args = _evaluate(t)
    t.expect_close(got["params"], _params(args["state"]), "the weights after evaluate (they must not change)")
    t.expect_close(got["again"], t.ref_probe("evaluate", **args)["again"],
                   "the mean loss of a second evaluate on the same model")


@check("evaluate", "computes the losses without gradient tracking", seeded=False, advisory=True)
def evaluate_computes_the_losses_without_gradient_tracking(t: Trial) -> None:
    got, _ = _evaluate(t)
    t.expect(not got["grad_enabled"], "evaluate computed the losses with gradient tracking on: wrap the loop in "
             "`with torch.no_grad():` (evaluation needs no gradients, and tracking them costs memory and time).")


# -- fit -------------------------------------------------------------------------------------------------------

def _fit_args(t: Trial, validate: bool) -> dict:
    data, val = _data(t, 16, norm=False), _data(t, 8, norm=False)
    return {**data, "xv": val["x"], "yv": val["y"], "batch_size": 4, "lr": 0.05, "n_epochs": 3, "validate": validate}


def _helpers(t: Trial, args: dict) -> dict:
    """Follow-through for fit: the reference's train_one_epoch or evaluate, run here on the state fit's model is in
    and the grader's own copy of the loader's data (fit only says which of its loaders it passed)."""

    def answer(helper: str):
        def run(ask: dict) -> dict:
            which, device = ask.get("loader"), ask.get("device")
            if which not in ("train", "val") or (which == "val" and not args["validate"]):
                raise ValueError("fit passed a loader it was not given")
            if device not in ("cpu", "cuda", "mps"):
                raise ValueError(f"{helper} was given an unknown device")
            x, y = (args["x"], args["y"]) if which == "train" else (args["xv"], args["yv"])
            return t.reference.run(f"{t.check.probes}.helper_answer", {
                "helper": helper, "state": ask.get("state"), "momentum": ask.get("momentum"),
                "training": bool(ask.get("training")), "x": x, "y": y, "batch_size": args["batch_size"],
                "lr": args["lr"], "model_device": t.device, "device": device})

        return run

    return {"train_one_epoch": answer("train_one_epoch"), "evaluate": answer("evaluate")}


def _history(value):
    """fit's history with sequences of numbers read as lists (as the public test reads them)."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, losses in value.items():
        array = losses.array if isinstance(losses, TensorData) else losses
        if isinstance(array, np.ndarray) and array.ndim == 1:
            losses = [float(v) for v in array]
        elif isinstance(losses, tuple):
            losses = list(losses)
        out[key] = losses
    return out


def _fit(t: Trial, validate: bool) -> tuple[dict, dict]:
    args = _fit_args(t, validate)
    got = t.probe("fit", label="fit", stubs=t.stubs, helpers=_helpers(t, args), **args)
    return got | {"history": _history(got["history"])}, args


@check("fit", "records per-epoch training and validation losses as train_one_epoch and evaluate give them",
       on_devices=True)
def fit_records_the_per_epoch_training_and_validation_losses(t: Trial) -> None:
    got, args = _fit(t, validate=True)
    want = t.ref_probe("fit", **args)["history"]
    history = got["history"]
    if isinstance(history, dict) and not close(history.get("train_loss"), want["train_loss"], iterative=True):
        evaluated = t.ref_probe("fit", evaluated=True, **args)["history"]
        if close(history.get("train_loss"), evaluated["train_loss"], iterative=True):
            want = {**want, "train_loss": evaluated["train_loss"]}  # the other training loss the contract accepts
    t.expect_close(history, want, "the history", iterative=True)


@check("fit", "trains for n_epochs: the weights match the reference's", on_devices=True)
def fit_trains_for_n_epochs_the_weights_match_the_reference_s(t: Trial) -> None:
    got, args = _fit(t, validate=True)
    t.expect_close(got["params"], t.ref_probe("fit", **args)["params"], "the weights after fit",
                   iterative=True)


@check("fit", "leaves val_loss empty without a validation loader")
def fit_leaves_val_loss_empty_without_a_validation_loader(t: Trial) -> None:
    got, args = _fit(t, validate=False)
    history = got["history"]
    t.expect(isinstance(history, dict) and "val_loss" in history and "train_loss" in history,
             "fit should return a dict with the keys 'train_loss' and 'val_loss'.",
             f"fit should return a dict with the keys 'train_loss' and 'val_loss'; it returned "
             f"{sorted(history) if isinstance(history, dict) else type(history).__name__}.")
    t.expect(isinstance(history["val_loss"], list) and not history["val_loss"],
             "without val_loader, history['val_loss'] should be an empty list.",
             f"without val_loader, history['val_loss'] should be []; it is {history['val_loss']!r}.")
    t.expect(isinstance(history["train_loss"], list) and len(history["train_loss"]) == args["n_epochs"],
             "without val_loader, history['train_loss'] should still hold one loss per epoch.")


# -- checkpoints ----------------------------------------------------------------------------------------------

def _checkpoint(t: Trial, label: str, part: str) -> dict:
    args = _data(t, 24, norm=False) | {"steps": 3, "epoch": int(t.rng.integers(10, 1000))}
    got = t.probe("checkpoint", label=label, part=part, **args)
    got |= _holds(got, args["epoch"])
    if "resumed" not in got:  # save_checkpoint's file was inspected, not loaded
        return got
    return got | {"saved_epoch": args["epoch"], "want": t.ref_probe("checkpoint", **args)["resumed"]}


def _holds(got: dict, epoch: int) -> dict:
    """What the checkpoint file holds, judged here from the tensors and numbers the probe found in it."""
    file = got["file"]
    if not file["readable"]:
        return {"has_model": None, "has_optimizer": None, "has_epoch": None}

    def key(array) -> tuple:
        array = np.asarray(array)
        return str(array.dtype), array.shape, array.tobytes()

    found = {key(a) for a in file["tensors"]}
    return {"has_model": all(key(a) in found for a in got["model"]),
            "has_optimizer": all(key(a) in found for a in got["optimizer"]),
            "has_epoch": float(epoch) in file["numbers"]}


def _resumes(got: dict) -> bool:
    return all(np.array_equal(got["resumed"][k], got["uninterrupted"][k]) for k in got["resumed"])


OPTIMIZER_STATE = ("save and restore the optimizer's state_dict() too (Adam keeps running averages of the "
                   "gradients), not only the model's")


@check("save_checkpoint", "writes the model state, the optimizer state and the epoch")
def save_checkpoint_writes_model_optimizer_and_epoch(t: Trial) -> None:
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
def load_checkpoint_resumes_training_as_if_uninterrupted(t: Trial) -> None:
    got = _checkpoint(t, "load_checkpoint", "load")
    epoch = got["epoch"]
    t.expect(isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and epoch == got["saved_epoch"],
             "load_checkpoint did not return the epoch that was saved (a number).",
             f"load_checkpoint returned {epoch!r}; it should return the epoch that was saved ({got['saved_epoch']}).")
    if not _resumes(got):
        if got["has_optimizer"] and not got["restored_optimizer"]:
            t.fail("training resumed from your checkpoint differs from uninterrupted training: load_checkpoint "
                   "does not restore the optimizer; call optimizer.load_state_dict(...) with the saved state.")
        t.fail(f"training resumed from your checkpoint differs from uninterrupted training: {OPTIMIZER_STATE}.")
    t.expect_close(got["resumed"], got["want"], "the resumed weights", iterative=True)


# -- fit_cubic ----------------------------------------------------------------------------------------------

@check("fit_cubic", "fits y = x^3 on fresh points within the time budget", seconds=CUBIC_SECONDS, trains=True)
def fit_cubic_fits_y_x_3_on_fresh_points_within_the_time_budget(t: Trial) -> None:
    seed = int(t.rng.integers(0, 1000))
    x = t.rng.normal(size=4 * CUBIC_TEST_POINTS)
    x_test = x[np.abs(x) <= CUBIC_RANGE][:CUBIC_TEST_POINTS, None]
    got = t.probe("cubic_learned", label="fit_cubic", seed=seed, x_test=x_test)  # the check's own budget
    want = t.ref_probe("cubic", seed=seed, x_test=x_test)
    n = len(x_test)
    t.expect(got["shape"] in ([n], [n, 1]), "the model should map a batch of shape (n, 1) to (n,) or (n, 1).",
             f"the model should map a batch of shape (n, 1) to (n,) or (n, 1); for n = {n} it gave {got['shape']}.")
    target = x_test[:, 0] ** 3
    _expect_learned(t, got, target)
    mse, ref_mse = float(np.mean((got["pred"] - target) ** 2)), float(np.mean((want["pred"] - target) ** 2))
    limit = max(CUBIC_MSE_FACTOR * ref_mse, CUBIC_MSE_FLOOR)
    advice = ("Use a network with a nonlinearity and enough hidden units, and train until the training loss is small "
              "(Adam, lr about 0.01).")
    if not np.isfinite(mse) or mse > limit:
        t.fail(f"the test MSE of your model on fresh points with |x| <= {CUBIC_RANGE} is above the limit (the "
               f"reference's times {CUBIC_MSE_FACTOR:g}, at least {CUBIC_MSE_FLOOR:g}). {advice}",
               f"the test MSE of your model on fresh points with |x| <= {CUBIC_RANGE} is {mse:.3g}; it must be at "
               f"most {limit:.3g} (the best straight line scores about 2.22). {advice}")


LEARNED = ("fit_cubic must train a network on the data it draws from the seed: {}. Build an nn.Module with "
           "trainable layers and fit it with an optimizer; do not compute x**3 in forward.")


def _expect_learned(t: Trial, got: dict, target: np.ndarray) -> None:
    """The model's predictions rest on trainable parameters: set to zero, the model no longer predicts the cubic."""
    t.expect(got["trainable"] > 0, LEARNED.format("the model it returns has no trainable parameters"))
    zeroed_mse = float(np.mean((got["zeroed"] - target) ** 2))
    t.expect(not np.isfinite(zeroed_mse) or zeroed_mse > 0.5 * float(np.var(target)),
             LEARNED.format("with its trainable parameters set to zero it still predicts x**3"))


@check("fit_cubic", "learns from the seed's data, reproducibly", seeded=False, seconds=3 * CUBIC_SECONDS, trains=True)
def fit_cubic_learns_from_the_seeds_data_reproducibly(t: Trial) -> None:
    """Training happened on the data given: the model's predictions rest on trainable parameters (set to zero, the
    model no longer predicts the cubic), they follow the data (another seed, another sample, other predictions),
    and one seed gives one model even in a new Python session (the contract seeds everything from seed)."""
    seed, other = (int(v) for v in t.rng.choice(1000, size=2, replace=False))
    x = t.rng.normal(size=4 * CUBIC_TEST_POINTS)
    x_test = x[np.abs(x) <= CUBIC_RANGE][:CUBIC_TEST_POINTS, None]
    target = x_test[:, 0] ** 3
    got = t.probe("cubic_learned", label="fit_cubic", seed=seed, x_test=x_test)
    _expect_learned(t, got, target)
    again = t.probe("cubic", label="fit_cubic", fresh=True, seed=seed, x_test=x_test)
    t.expect(np.array_equal(got["pred"], again["pred"]),
             "two runs of fit_cubic with the same seed gave different models: seed everything from `seed` "
             "(torch.manual_seed(seed) before the model is built, and a seeded generator for the DataLoader).")
    elsewhere = t.probe("cubic", label="fit_cubic", seed=other, x_test=x_test)
    t.expect(not np.array_equal(got["pred"], elsewhere["pred"]),
             LEARNED.format("two seeds, two different samples of data, gave exactly the same predictions"))


# -- the catalogue: known mistakes (each costs only its function) and correct variants (full marks) ---------

def _train_code(body: str, mode: str = "    model.train()\n") -> str:
    return ("def train_one_epoch(model, loader, loss_fn, optimizer, device='cpu'):\n" + mode +
            "    losses = []\n    for xb, yb in loader:\n" + body + "    return float(np.mean(losses))\n")


def _evaluate_code(body: str, mode: str = "    model.eval()\n") -> str:
    return ("def evaluate(model, loader, loss_fn, device='cpu'):\n" + mode +
            "    losses = []\n" + body + "    return float(np.mean(losses))\n")


STEP = "        loss = loss_fn(model(xb), yb)\n"
MOVE = "        xb, yb = xb.to(device), yb.to(device)\n"
ZERO = "        optimizer.zero_grad()\n"
TAIL = "        loss.backward()\n        optimizer.step()\n"
KEEP = "        losses.append(loss.item())\n"
LECTURE_MOVE = "        if device != 'cpu':\n            xb, yb = xb.to(device), yb.to(device)\n"
FIT = ("def fit(model, train_loader, loss_fn, optimizer, n_epochs, device='cpu', val_loader=None):\n"
       "    history = {'train_loss': [], 'val_loss': []}\n"
       "    for _ in range(n_epochs):\n@BODY@"
       "    return history\n")


def _fit_code(body: str, template: str = FIT) -> str:
    return template.replace("@BODY@", body)
SAVE_LOAD = {
    "save_checkpoint": "def save_checkpoint(path, model, optimizer, epoch):\n"
                       "    torch.save({'epoch': epoch, 'model_state_dict': model.state_dict(),\n"
                       "                'optimizer_state_dict': optimizer.state_dict()}, path)\n",
    "load_checkpoint": "def load_checkpoint(path, model, optimizer):\n"
                       "    checkpoint = torch.load(path)\n"
                       "    model.load_state_dict(checkpoint['model_state_dict'])\n"
                       "    optimizer.load_state_dict(checkpoint['optimizer_state_dict'])\n"
                       "    return checkpoint['epoch']\n",
}

SUITE.mistakes = [
    mistake("train_one_epoch", _train_code(MOVE + STEP + TAIL + KEEP),
            "optimizer.zero_grad() before each loss.backward()"),
    mistake("train_one_epoch", _train_code(MOVE + STEP + "        loss.backward()\n        optimizer.zero_grad()\n"
                                     "        optimizer.step()\n" + KEEP), "the weights did not change"),
    mistake("train_one_epoch", "def train_one_epoch(model, loader, loss_fn, optimizer, device='cpu'):\n"
            "    model.train()\n    for xb, yb in loader:\n        xb.to(device)\n        yb = yb.to(device)\n"
            "        loss = loss_fn(model(xb), yb)\n        loss.backward()\n        optimizer.step()\n"
            "    return loss.item()\n", "`xb.to(device)` returns a new tensor", typical=True),
    mistake("train_one_epoch", _train_code(MOVE + ZERO + STEP + TAIL + "        losses = [loss.item()]\n"),
            "you returned the last batch's loss"),
    mistake("train_one_epoch",
            _train_code("        xb = xb.to(device)\n        yb.to(device)\n" + ZERO + STEP + TAIL + KEEP),
            "`yb.to(device)` returns a new tensor"),
    mistake("train_one_epoch", _train_code(MOVE + ZERO + STEP + TAIL + KEEP, mode=""), "call model.train()"),
    mistake("make_dataloader", "def make_dataloader(dataset, batch_size, shuffle, seed):\n"
            "    torch.manual_seed(seed)\n    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)\n",
            "must come only from `generator=torch.Generator().manual_seed(seed)`"),
    mistake("ScoreDataset", "class ScoreDataset(Dataset):\n"
            "    def __init__(self, x, y):\n"
            "        if len(x) != len(y):\n            raise ValueError('lengths differ')\n"
            "        self.x, self.y = torch.tensor(np.asarray(x, float)), torch.tensor(np.asarray(y, float))\n"
            "    def __len__(self):\n        return len(self.x)\n"
            "    def __getitem__(self, i):\n        return self.x[i], self.y[i]\n",
            "items should be float32 tensors; got float64"),
    mistake("ScoreDataset", "class ScoreDataset(Dataset):\n"
            "    def __init__(self, x, y):\n        assert len(x) == len(y)\n"
            "        self.x, self.y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)\n"
            "    def __len__(self):\n        return len(self.x)\n"
            "    def __getitem__(self, idx):\n        return self.x[idx], self.y[idx]\n",
            "the lecture's version asserts"),
    mistake("evaluate", "def evaluate(model, loader, loss_fn, device='cpu'):\n"
            "    with torch.no_grad():\n"
            "        return float(np.mean([loss_fn(model(x.to(device)), y.to(device)).item()\n"
            "                              for x, y in loader]))\n", "call model.eval()", typical=True),
    mistake("evaluate", "def evaluate(model, loader, loss_fn, device='cpu'):\n"
            "    model.eval()\n"
            "    return float(np.mean([loss_fn(model(x.to(device)), y.to(device)).item() for x, y in loader]))\n",
            "wrap the loop in `with torch.no_grad():`", advisory=True),
    mistake("evaluate", _evaluate_code("    with torch.no_grad():\n        for xb, yb in loader:\n"
                                       "            xb.to(device)\n"
                                       "            losses.append(loss_fn(model(xb), yb).item())\n"),
            "`xb.to(device)` returns a new tensor"),
    mistake("fit", _fit_code("        history['train_loss'].append(train_one_epoch(model, train_loader, loss_fn, "
                                   "optimizer, device))\n"
                                   "        history['val_loss'].append(evaluate(model, val_loader, loss_fn, "
                                   "device))\n"),
            "fit raised TypeError"),
    mistake("fit", _fit_code(template=FIT.replace("'train_loss': [], 'val_loss': []", "'train': [], 'val': []"),
        body="        history['train'].append(train_one_epoch(model, train_loader, loss_fn, optimizer, device))\n"
             "        if val_loader is not None:\n"
             "            history['val'].append(evaluate(model, val_loader, loss_fn, device))\n"),
            "is missing the keys ['train_loss', 'val_loss']"),
    mistake("fit", _fit_code("        history['train_loss'].append(train_one_epoch(model, train_loader, "
                                   "optimizer, loss_fn, device))\n"
                                   "        if val_loader is not None:\n"
                                   "            history['val_loss'].append(evaluate(model, val_loader, loss_fn, "
                                   "device))\n"),
            "the lecture's train_model_one_epoch took (model, loader, optimizer, loss_fn)"),
    mistake("save_checkpoint", {
        "save_checkpoint": "def save_checkpoint(path, model, optimizer, epoch):\n"
                           "    torch.save({'model': model.state_dict(), 'epoch': epoch}, path)\n",
        "load_checkpoint": "def load_checkpoint(path, model, optimizer):\n"
                           "    state = torch.load(path)\n"
                           "    model.load_state_dict(state['model'])\n"
                           "    return state['epoch']\n"},
            "save and restore the optimizer's state_dict() too"),
    mistake("save_checkpoint", "def save_checkpoint(path, model, optimizer, epoch):\n"
            "    torch.save({'model': model.state_dict(), 'optimizer': optimizer.state_dict()}, path)\n",
            "does not hold the epoch"),
    mistake("load_checkpoint", "def load_checkpoint(path, model, optimizer):\n"
            "    state = torch.load(path, weights_only=True)\n"
            "    model.load_state_dict(state['model'])\n"
            "    return int(state['epoch'])\n",
            "load_checkpoint does not restore the optimizer"),
    mistake("load_checkpoint", "def load_checkpoint(path, model, optimizer):\n"
            "    state = torch.load(path, weights_only=True)\n"
            "    model.load_state_dict(state['model'])\n"
            "    optimizer.load_state_dict(state['optimizer'])\n",
            "load_checkpoint returned None"),
    mistake("fit_cubic", "def fit_cubic(seed):\n"
            "    torch.manual_seed(seed)\n    x = torch.randn(256, 1)\n    model = nn.Linear(1, 1)\n"
            "    opt = torch.optim.Adam(model.parameters(), lr=0.05)\n"
            "    for _ in range(200):\n"
            "        opt.zero_grad(); ((model(x) - x ** 3) ** 2).mean().backward(); opt.step()\n"
            "    return model\n",
            "the test MSE of your model on fresh points"),
]

SUITE.variants = [
    Variant("ScoreDataset with items of shape (1,)", {"ScoreDataset": "class ScoreDataset(Dataset):\n"
            "    def __init__(self, x, y):\n"
            "        if len(x) != len(y):\n            raise ValueError('x and y differ in length')\n"
            "        self.x = torch.tensor(np.asarray(x), dtype=torch.float32).reshape(-1, 1)\n"
            "        self.y = torch.tensor(np.asarray(y), dtype=torch.float32).reshape(-1, 1)\n"
            "    def __len__(self):\n        return len(self.x)\n"
            "    def __getitem__(self, i):\n        return self.x[i], self.y[i]\n"}),
    Variant("ScoreDataset converting each item", {"ScoreDataset": "class ScoreDataset(Dataset):\n"
            "    def __init__(self, x, y):\n"
            "        if len(x) != len(y):\n            raise ValueError('x and y differ in length')\n"
            "        self.x, self.y = list(x), list(y)\n"
            "    def __len__(self):\n        return len(self.x)\n"
            "    def __getitem__(self, idx):\n"
            "        return torch.tensor(self.x[idx], dtype=torch.float32), torch.tensor(self.y[idx], "
            "dtype=torch.float32)\n"}),
    Variant("make_dataloader with a generator seeded on its own line",
            {"make_dataloader": "def make_dataloader(dataset, batch_size, shuffle, seed):\n"
             "    g = torch.Generator()\n    g.manual_seed(seed)\n"
             "    return DataLoader(dataset, batch_size, shuffle=shuffle, generator=g)\n"}),
    Variant("train_one_epoch with the lecture's device idiom (never .to on a CPU)",
            {"train_one_epoch": _train_code(LECTURE_MOVE + ZERO + STEP + TAIL + KEEP)}),
    Variant("train_one_epoch moving inline and averaging with sum/len",
            {"train_one_epoch": "def train_one_epoch(model, loader, loss_fn, optimizer, device='cpu'):\n"
             "    model.train()\n    total, batches = 0.0, 0\n"
             "    for inputs, targets in loader:\n        optimizer.zero_grad()\n"
             "        loss = loss_fn(model(inputs.to(device)), targets.to(device))\n"
             "        loss.backward()\n        optimizer.step()\n        total += loss.item()\n        batches += 1\n"
             "    return total / batches\n"}),
    Variant("train_one_epoch calling model.zero_grad() and model.to(device)",
            {"train_one_epoch": _train_code(MOVE + "        model.zero_grad()\n" + STEP + TAIL + KEEP,
                                      mode="    model.to(device)\n    model.train()\n")}),
    Variant("evaluate that puts the model back in its previous mode",
            {"evaluate": "def evaluate(model, loader, loss_fn, device='cpu'):\n"
             "    was_training = model.training\n    model.eval()\n    losses = []\n"
             "    with torch.no_grad():\n        for xb, yb in loader:\n"
             "            xb, yb = xb.to(device), yb.to(device)\n"
             "            losses.append(loss_fn(model(xb), yb).item())\n"
             "    model.train(was_training)\n    return float(np.mean(losses))\n"}),
    Variant("evaluate under torch.inference_mode with the lecture's device idiom",
            {"evaluate": _evaluate_code("    with torch.inference_mode():\n        for xb, yb in loader:\n" +
                                        LECTURE_MOVE.replace("        ", "            ") +
                                        "            losses.append(loss_fn(model(xb), yb).item())\n")}),
    Variant("fit recording the training loss by evaluating on the training loader",
            {"fit": _fit_code("        train_one_epoch(model, train_loader, loss_fn, optimizer, device)\n"
                                    "        history['train_loss'].append(evaluate(model, train_loader, loss_fn, "
                                    "device))\n"
                                    "        if val_loader is not None:\n"
                                    "            history['val_loss'].append(evaluate(model, val_loader, loss_fn, "
                                    "device))\n")}),
    Variant("fit with keyword arguments", {"fit": _fit_code(
        "        loss = train_one_epoch(model=model, loader=train_loader, loss_fn=loss_fn, optimizer=optimizer, "
        "device=device)\n        history['train_loss'].append(loss)\n"
        "        if val_loader:\n"
        "            history['val_loss'].append(evaluate(model, val_loader, loss_fn, device=device))\n")}),
    Variant("checkpoints in the PyTorch tutorial's format", SAVE_LOAD),
]

# Training and evaluation loops as the official PyTorch tutorials write them (Quickstart; "Optimizing Model
# Parameters": train_loop and test_loop), adapted to the contract's signature and return value.
TUTORIAL_TRAIN = '''def train_one_epoch(model, dataloader, loss_fn, optimizer, device="cpu"):
    size = len(dataloader.dataset)
    model.train()
    total = 0.0
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)

        # Compute prediction error
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        total += loss.item()
        if batch % 100 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")
    return total / len(dataloader)
'''
TUTORIAL_TRAIN_LOOP = '''def train_one_epoch(model, dataloader, loss_fn, optimizer, device="cpu"):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    # Set the model to training mode - important for batch normalization and dropout layers
    model.train()
    train_loss = 0
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)
        pred = model(X)
        loss = loss_fn(pred, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        train_loss += loss.item()
        if batch % 100 == 0:
            loss, current = loss.item(), batch * dataloader.batch_size + len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")
    return train_loss / num_batches
'''
TUTORIAL_TEST_LOOP = '''def evaluate(model, dataloader, loss_fn, device="cpu"):
    # Set the model to evaluation mode - important for batch normalization and dropout layers
    model.eval()
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0
    # Evaluating the model with torch.no_grad() ensures that no gradients are computed during test mode
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f}")
    return test_loss
'''
TEXTBOOK_EVALUATE = '''def evaluate(model, loader, loss_fn, device="cpu"):
    model.eval()
    loss_val = 0.0
    with torch.no_grad():
        for imgs, labels in loader:
            imgs = imgs.to(device=device)
            labels = labels.to(device=device)
            outputs = model(imgs)
            loss_val += loss_fn(outputs, labels).item()
    return loss_val / len(loader)
'''
TUTORIAL_FIT = '''def fit(model, train_loader, loss_fn, optimizer, n_epochs, device="cpu", val_loader=None):
    history = {"train_loss": [], "val_loss": []}
    for t in range(n_epochs):
        print(f"Epoch {t+1}\\n-------------------------------")
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer, device))
        if val_loader is not None:
            history["val_loss"].append(evaluate(model, val_loader, loss_fn, device))
    print("Done!")
    return history
'''
WEIGHTED = ("def train_one_epoch(model, dataloader, loss_fn, optimizer, device='cpu'):\n"
            "    model.train()\n    total = 0.0\n"
            "    for X, y in dataloader:\n        X, y = X.to(device), y.to(device)\n"
            "        optimizer.zero_grad()\n        loss = loss_fn(model(X), y)\n"
            "        loss.backward()\n        optimizer.step()\n        total += loss.item() * len(X)\n"
            "    return total / len(dataloader.dataset)\n")

SUITE.mistakes += [
    mistake("train_one_epoch", _train_code(ZERO + STEP + TAIL + KEEP), "batches never moved to the device"),
    mistake("train_one_epoch", _train_code("        xb = xb.to(device)\n" + ZERO + STEP + TAIL + KEEP),
            "target batches never moved to the device"),
    mistake("train_one_epoch", _train_code("        yb = yb.to(device)\n" + ZERO + STEP + TAIL + KEEP),
            "input batches never moved to the device"),
    mistake("train_one_epoch", WEIGHTED, "the plain mean of the batch losses, not one weighted by batch size"),
    mistake("evaluate", _evaluate_code("    with torch.no_grad():\n        for xb, yb in loader:\n"
                                       "            losses.append(loss_fn(model(xb), yb).item())\n"),
            "the losses are those of batches never moved to the device"),
    mistake("evaluate", _evaluate_code("    with torch.no_grad():\n        for xb, yb in loader:\n"
                                       "            xb = xb.to(device)\n"
                                       "            losses.append(loss_fn(model(xb), yb).item())\n"),
            "target batches never moved to the device"),
]

SUITE.variants += [
    Variant("train_one_epoch as the PyTorch Quickstart's train loop", {"train_one_epoch": TUTORIAL_TRAIN}),
    Variant("train_one_epoch as the PyTorch tutorial's train_loop (len(dataloader.dataset), batch_size)",
            {"train_one_epoch": TUTORIAL_TRAIN_LOOP}),
    Variant("train_one_epoch moving with .to(device=device, non_blocking=True)",
            {"train_one_epoch": _train_code("        xb = xb.to(device=device, non_blocking=True)\n"
                                            "        yb = yb.to(device=device, non_blocking=True)\n"
                                            + ZERO + STEP + TAIL + KEEP)}),
    Variant("train_one_epoch converting with .float() before moving",
            {"train_one_epoch": _train_code("        xb, yb = xb.float().to(device), yb.float().to(device)\n"
                                            + ZERO + STEP + TAIL + KEEP)}),
    Variant("train_one_epoch unpacking each batch through a generator",
            {"train_one_epoch": "def train_one_epoch(model, loader, loss_fn, optimizer, device='cpu'):\n"
             "    model.train()\n    running, count = 0.0, 0\n"
             "    for batch in loader:\n        inputs, targets = (t.to(device) for t in batch)\n"
             "        optimizer.zero_grad()\n        loss = loss_fn(model(inputs), targets)\n"
             "        loss.backward()\n        optimizer.step()\n        running += loss.item()\n        count += 1\n"
             "    return running / count\n"}),
    Variant("evaluate as the PyTorch tutorial's test_loop (accuracy and average loss printed)",
            {"evaluate": TUTORIAL_TEST_LOOP}),
    Variant("evaluate in a textbook's style (.to(device=device), averaged over len(loader))",
            {"evaluate": TEXTBOOK_EVALUATE}),
    Variant("fit printing its epochs as the PyTorch tutorial does", {"fit": TUTORIAL_FIT}),
]

# Near misses: beside each catalogued mistake with a hint, a plausible mistake with the same symptom and another
# cause. Each loses points, without the hint whose diagnosis it does not share.
SUITE.near_misses = [
    near_miss("a loss scaled by the batch size (gradients zeroed)", "train_one_epoch",
              _train_code(MOVE + ZERO + "        loss = loss_fn(model(xb), yb) * len(xb)\n" + TAIL + KEEP),
              "accumulate across batches"),
    near_miss("a loss scaled down a thousandfold: tiny steps, but steps", "train_one_epoch",
              _train_code(MOVE + ZERO + "        loss = loss_fn(model(xb), yb) / 1000\n" + TAIL + KEEP),
              "the weights did not change"),
    near_miss("inputs never moved, the targets moved inside the loss call (not an unassigned .to)",
              "train_one_epoch", _train_code(ZERO + "        loss = loss_fn(model(xb), yb.to(device))\n" + TAIL + KEEP),
              "`xb.to(device)` returns a new tensor", feedback="input batches never moved to the device"),
    near_miss("targets never moved, the inputs moved inside the model call (not an unassigned .to)",
              "train_one_epoch", _train_code(ZERO + "        loss = loss_fn(model(xb.to(device)), yb)\n" + TAIL + KEEP),
              "`yb.to(device)` returns a new tensor", feedback="target batches never moved to the device"),
    near_miss("the first batch's loss returned", "train_one_epoch",
              _train_code(MOVE + ZERO + STEP + TAIL + KEEP).replace("float(np.mean(losses))", "losses[0]"),
              "the last batch's loss"),
    near_miss("two optimizer steps per batch, in training mode", "train_one_epoch",
              _train_code(MOVE + ZERO + STEP + TAIL + "        optimizer.step()\n" + KEEP),
              "in evaluation mode"),
    near_miss("the batch losses summed, then divided by the number of samples", "train_one_epoch",
              WEIGHTED.replace("loss.item() * len(X)", "loss.item()"), "weighted by batch size"),
    near_miss("evaluate returning the sum of the batch losses, in evaluation mode", "evaluate",
              _evaluate_code("    with torch.no_grad():\n        for xb, yb in loader:\n"
                             "            xb, yb = xb.to(device), yb.to(device)\n"
                             "            losses.append(loss_fn(model(xb), yb).item())\n"
                             ).replace("float(np.mean(losses))", "float(np.sum(losses))"),
              "call model.eval()"),
    near_miss("evaluate never moving its inputs (not an unassigned .to)", "evaluate",
              _evaluate_code("    with torch.no_grad():\n        for xb, yb in loader:\n"
                             "            yb = yb.to(device)\n"
                             "            losses.append(loss_fn(model(xb), yb).item())\n"),
              "`xb.to(device)` returns a new tensor", feedback="input batches never moved to the device"),
]

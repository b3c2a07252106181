"""Probes for a3_training_loop: datasets, loaders, loops and checkpoints driven with fixed small models.

The models, optimizers and data here are the grader's; only the functions under test are the notebook's.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .probes import lookup, stubbed


def _torch():
    import torch

    return torch


def dataset(ns: dict, *, x, y, indices: list, device: str = "cpu") -> dict:
    """len(ScoreDataset(x, y)) and the items at ``indices`` (tensors with their dtypes)."""
    ds = lookup(ns, "ScoreDataset")(x, y)
    return {"len": len(ds), "items": [tuple(ds[i]) for i in indices]}


def dataset_error(ns: dict, *, x, y, device: str = "cpu") -> str | None:
    """The exception type ScoreDataset(x, y) raises, or None."""
    try:
        lookup(ns, "ScoreDataset")(x, y)
    except Exception as err:
        if getattr(err, "dlgrade_missing", False):
            raise
        return type(err).__name__
    return None


def loader_order(ns: dict, *, n: int, batch_size: int, shuffle: bool, seed: int, global_seed: int,
                 epochs: int = 2, device: str = "cpu") -> list:
    """Index batches of ``epochs`` passes over make_dataloader(range(n)), with torch's global seed set first."""
    torch = _torch()
    data = torch.utils.data.TensorDataset(torch.arange(n))
    torch.manual_seed(global_seed)
    loader = lookup(ns, "make_dataloader")(data, batch_size, shuffle, seed)
    torch.manual_seed(global_seed + 1)
    return [[batch[0].tolist() for batch in loader] for _ in range(epochs)]


def scramble(batch):
    """What an unassigned ``.to()`` leaves in a batch: the rows reversed and negated, shifted by a half."""
    return 0.5 - batch.flip(0)


def unmoved_data(batch):
    """What a batch holds until it is moved to a device other than the literal ``"cpu"``: its rows rolled by one and
    rescaled (the data is usable only as ``xb.to(device)`` returns it)."""
    return 1.5 * batch.roll(1, 0) + 0.25


# Tensor methods a student may call on a batch before moving it (``xb.float().to(device)``, ``xb.view(n, -1)``): on
# a batch they give a batch again, whose clean copy is the same method applied to the clean data.
SHADOWED = ("float", "double", "view", "reshape", "flatten", "unsqueeze", "squeeze", "type", "contiguous", "clone",
            "detach", "view_as", "reshape_as", "cpu", "__getitem__")


def _moves(args: tuple, kwargs: dict) -> bool:
    """Whether a ``.to(...)`` call names a device (or a tensor to follow), not only a dtype."""
    torch = _torch()
    return "device" in kwargs or any(isinstance(a, (str, torch.device, torch.Tensor)) for a in args)


def _shadow(batch, result, clean):
    """``result`` of a method called on ``batch``, as a batch again whose clean copy is ``clean``."""
    torch = _torch()
    if not isinstance(result, torch.Tensor) or not isinstance(clean, torch.Tensor):
        return result
    if result is batch:
        return batch
    out = result.as_subclass(type(batch))
    out.clean = clean
    return out


def _shadowed(name: str):
    """The Tensor method ``name`` for a batch: applied to its data and to its clean copy alike."""
    torch = _torch()

    def method(self, *args, **kwargs):
        result = getattr(torch.Tensor, name)(self.as_subclass(torch.Tensor), *args, **kwargs)
        clean = self.__dict__.get("clean")
        if clean is None:
            return result
        return _shadow(self, result, getattr(torch.Tensor, name)(clean, *args, **kwargs))

    method.__name__ = name
    return method


def _batch_class():
    torch = _torch()

    class Batch(torch.Tensor):
        """A batch whose ``.to(device)`` returns a clean copy of its data and scrambles the batch itself; until then
        it holds :func:`unmoved_data` when the loader's device is not the literal "cpu"."""

        __torch_function__ = torch._C._disabled_torch_function_impl  # results of operations are plain tensors

        def to(self, *args, **kwargs):
            clean = self.__dict__.get("clean")
            if clean is None:
                return torch.Tensor.to(self.as_subclass(torch.Tensor), *args, **kwargs)
            if not _moves(args, kwargs):  # a dtype only: still where it was
                return _shadow(self, torch.Tensor.to(self.as_subclass(torch.Tensor), *args, **kwargs),
                               torch.Tensor.to(clean, *args, **kwargs))
            moved = torch.Tensor.to(clean, *args, **kwargs)
            with torch.no_grad():
                torch.Tensor.copy_(self, scramble(clean))
            return moved.clone() if moved is clean else moved

    for name in SHADOWED:
        setattr(Batch, name, _shadowed(name))
    return Batch


def _loader(x, y, batch_size: int, device: str = "cpu", unmoved: list | tuple = (), never_moved: list | tuple = ()):
    """A real ``torch.utils.data.DataLoader`` over a ``TensorDataset`` of (x, y), in order, whose batches (lists
    ``[xb, yb]``, as a DataLoader gives them) are :func:`_batch_class` tensors: ``xb = xb.to(device)`` trains on the
    data, ``xb.to(device)`` on its own line (the lecture's bug, a no-op on a CPU) trains on scrambled data, and on
    a device other than the literal ``"cpu"`` (the checks use ``"cpu:0"``) a batch never moved holds
    :func:`unmoved_data`: both mistakes show in the weights on any machine, while code that never calls ``.to`` on
    ``"cpu"`` (the lecture's ``if device != "cpu"`` idiom) works. ``unmoved`` and ``never_moved`` name the parts
    that arrive already scrambled (an unassigned ``.to``) or as unmoved data (no ``.to`` at all), as plain tensors
    untouched by ``.to``: each mistake, replayed on the reference (a diagnosis)."""
    torch = _torch()
    batch_class = _batch_class()
    data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    needs_move = str(device) != "cpu"

    def wrap(part, name: str):
        raw = unmoved_data(part) if needs_move else part.clone()
        if name in unmoved:
            return scramble(part)
        if name in never_moved:
            return raw
        batch = raw.as_subclass(batch_class)
        batch.clean = part.clone()
        return batch

    def collate(items: list):
        xb, yb = torch.stack([item[0] for item in items]), torch.stack([item[1] for item in items])
        return [wrap(xb, "x"), wrap(yb, "y")]

    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate)


def _model(state: dict, device: str):
    """The grader's network, from its state: Linear, BatchNorm1d (when the state has one), Tanh, Linear."""
    torch = _torch()
    nn = torch.nn
    d_in, hidden = state["0.weight"].shape[1], state["0.weight"].shape[0]
    norm = nn.BatchNorm1d(hidden) if "1.running_mean" in state else nn.Identity()
    layers = [nn.Linear(d_in, hidden), norm, nn.Tanh(), nn.Linear(hidden, 1)]
    if isinstance(norm, nn.Identity):
        layers[1:3] = [nn.Tanh(), nn.Identity()]
    model = nn.Sequential(*layers)
    model.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in state.items()})
    return model.to(device)


def _state(model) -> dict:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _params(model) -> dict:
    """The parameters (not the buffers: batch norm's running statistics are the helper's business)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.named_parameters()}


def _momentum(optimizer) -> list:
    params = optimizer.param_groups[0]["params"]
    bufs = [optimizer.state.get(p, {}).get("momentum_buffer") for p in params]
    return [None if b is None else b.detach().cpu().numpy().copy() for b in bufs]


def _set_momentum(optimizer, buffers: list) -> None:
    torch = _torch()
    params = optimizer.param_groups[0]["params"]
    if not isinstance(buffers, list) or len(buffers) != len(params):
        raise ValueError("one momentum buffer (or None) per parameter is expected")
    for p, buf in zip(params, buffers):
        if buf is None:
            optimizer.state[p].pop("momentum_buffer", None)
        else:
            optimizer.state[p]["momentum_buffer"] = torch.tensor(np.asarray(buf), dtype=p.dtype, device=p.device)


def _skip(model, optimizer, skip: list | tuple) -> None:
    """Make the calls named in ``skip`` no-ops (the reference replaying a mistake, for a diagnosis)."""
    if "train" in skip:
        model.train = lambda mode=True: model
    if "eval" in skip:
        model.eval = lambda: model
    if "zero_grad" in skip and optimizer is not None:
        optimizer.zero_grad = lambda set_to_none=True: None


def _recording_loss(losses: list, seen: dict | None = None):
    """MSE that records each batch loss, and whether gradients were being tracked."""
    torch = _torch()
    mse = torch.nn.MSELoss()
    seen = {} if seen is None else seen

    def loss_fn(pred, target):
        if torch.is_grad_enabled():
            seen["grad_enabled"] = seen.get("grad_enabled", 0) + 1
        loss = mse(pred.reshape(-1), target.reshape(-1))
        losses.append(float(loss.detach().cpu()))
        return loss

    return loss_fn


def train_epoch(ns: dict, *, state: dict, x, y, batch_size: int, lr: float, momentum: float, device: str = "cpu",
                skip: list | tuple = (), unmoved: list | tuple = (), never_moved: list | tuple = ()) -> dict:
    """train_one_epoch on the grader's batch-norm network, handed over in evaluation mode (train_one_epoch must switch
    it to training mode), with SGD; its return value, the batch losses and the parameters."""
    torch = _torch()
    model = _model(state, device).eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    _skip(model, optimizer, skip)
    losses: list = []
    loader = _loader(x, y, batch_size, device, unmoved, never_moved)
    value = lookup(ns, "train_one_epoch")(model, loader, _recording_loss(losses), optimizer, device)
    return {"value": value, "losses": losses, "params": _params(model)}


def evaluate(ns: dict, *, state: dict, x, y, batch_size: int, device: str = "cpu", skip: list | tuple = (),
             unmoved: list | tuple = (), never_moved: list | tuple = ()) -> dict:
    """evaluate on the grader's batch-norm network, handed over in training mode with non-trivial running
    statistics (evaluate must switch it to evaluation mode), twice (a second value that differs shows a change the
    first call made); both values, the parameters, and how many losses were computed with gradient tracking on."""
    model = _model(state, device).train()
    _skip(model, None, skip)
    seen: dict = {}
    fn = lookup(ns, "evaluate")
    value = fn(model, _loader(x, y, batch_size, device, unmoved, never_moved), _recording_loss([], seen), device)
    model.train()
    again = fn(model, _loader(x, y, batch_size, device, unmoved, never_moved), _recording_loss([], seen), device)
    return {"value": value, "again": again, "params": _params(model), "grad_enabled": seen.get("grad_enabled", 0)}


# train_one_epoch and evaluate as fit calls them, when they are the reference's (follow-through)
SIGNATURES = {"train_one_epoch": ("model", "loader", "loss_fn", "optimizer", "device"),
              "evaluate": ("model", "loader", "loss_fn", "device")}


def _helper_stub(helper: str, objects: dict):
    """A stand-in for ``helper`` inside fit: it sends the model's state, the optimizer's momentum and which of fit's
    loaders it was given to the grader, which runs the reference's helper on its own copy of the data, and loads
    the new state back into fit's model and optimizer."""
    from .asking import ask

    names = SIGNATURES[helper]
    usage = f"{helper}({', '.join(names)})"

    def stub(*args, **kwargs):
        torch = _torch()
        if len(args) > len(names) or any(k not in names for k in kwargs):
            raise TypeError(f"{usage} takes these arguments, in this order")
        bound = dict(zip(names, args))
        if any(k in bound for k in kwargs):
            raise TypeError(f"{usage} got an argument twice")
        bound.update(kwargs)
        bound.setdefault("device", "cpu")
        if not all(k in bound for k in names):
            raise TypeError(f"{usage} is missing an argument")
        model, optimizer = objects["model"], objects["optimizer"]
        if bound["model"] is not model or bound["loss_fn"] is not objects["loss_fn"] or (
                helper == "train_one_epoch" and bound["optimizer"] is not optimizer):
            raise TypeError(f"fit should call {usage} with its own model, loss_fn and optimizer, in this order")
        which = next((k for k, v in objects["loaders"].items() if v is not None and bound["loader"] is v), None)
        if which is None:
            raise TypeError(f"fit should call {usage} with one of the loaders it was given")
        reply = ask(f"helper.{helper}", {"state": _state(model), "momentum": _momentum(optimizer),
                                         "training": model.training, "loader": which, "device": str(bound["device"])})
        with torch.no_grad():
            model.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in reply["state"].items()})
        _set_momentum(optimizer, reply["momentum"])
        model.train(bool(reply["training"]))
        return reply["value"]

    stub.__name__ = helper
    return stub


def helper_answer(ns: dict, *, helper: str, state: dict, momentum: list, training: bool, x, y, batch_size: int,
                  lr: float, model_device: str, device: str = "cpu") -> dict:
    """The grader's side of :func:`_helper_stub`: the reference's helper on the rebuilt model and optimizer and the
    grader's own data; the new state, momentum and mode, and the helper's value."""
    torch = _torch()
    model = _model(state, model_device).train(bool(training))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    _set_momentum(optimizer, momentum)
    loader, loss_fn = _loader(x, y, batch_size, device), _recording_loss([])
    if helper == "train_one_epoch":
        value = ns["train_one_epoch"](model, loader, loss_fn, optimizer, device)
    else:
        value = ns["evaluate"](model, loader, loss_fn, device)
    return {"value": value, "state": _state(model), "momentum": _momentum(optimizer), "training": model.training}


def fit(ns: dict, *, state: dict, x, y, xv, yv, batch_size: int, lr: float, n_epochs: int, validate: bool,
        device: str = "cpu", stubs: list | tuple = (), evaluated: bool = False) -> dict:
    """fit on the grader's network with SGD + momentum; the history and the final parameters. The helpers in
    ``stubs`` are the reference's (follow-through). ``evaluated`` (on the reference only) records as training loss
    the loss evaluate gives on the training loader after each epoch, which the contract also accepts."""
    torch = _torch()
    model = _model(state, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    train, val = _loader(x, y, batch_size, device), (_loader(xv, yv, batch_size, device) if validate else None)
    loss_fn = _recording_loss([])
    if evaluated:
        history: dict = {"train_loss": [], "val_loss": []}
        for _ in range(n_epochs):
            ns["train_one_epoch"](model, train, loss_fn, optimizer, device)
            history["train_loss"].append(ns["evaluate"](model, train, loss_fn, device))
            if val is not None:
                history["val_loss"].append(ns["evaluate"](model, val, loss_fn, device))
        return {"history": history, "params": _params(model)}
    objects = {"model": model, "optimizer": optimizer, "loss_fn": loss_fn, "loaders": {"train": train, "val": val}}
    own = ns.get("train_one_epoch")

    def make(helper: str):
        return _helper_stub(helper, objects) if helper in stubs else _lecture_order_guard(own, objects)

    helpers = list(stubs) + (["train_one_epoch"] if "train_one_epoch" not in stubs and callable(own) else [])
    with stubbed(ns, helpers, make=make):
        history = lookup(ns, "fit")(model, train, loss_fn, optimizer, n_epochs, device, val)
    return {"history": history, "params": _params(model)}


LECTURE_ORDER = ("fit called train_one_epoch with the optimizer where loss_fn goes: the contract's order is "
                 "train_one_epoch(model, loader, loss_fn, optimizer, device); the lecture's train_model_one_epoch took "
                 "(model, loader, optimizer, loss_fn)")


def _lecture_order_guard(own, objects: dict):
    """The student's own train_one_epoch, refusing the lecture's argument order with a message that says so."""

    def guarded(*args, **kwargs):
        if len(args) >= 4 and args[2] is objects["optimizer"] and args[3] is objects["loss_fn"]:
            raise TypeError(LECTURE_ORDER)
        return own(*args, **kwargs)

    guarded.__name__ = "train_one_epoch"
    return guarded


def _tensors_in(obj, depth: int = 0) -> list:
    """Every tensor in a loaded checkpoint, whatever its layout (dicts, lists, modules, optimizers)."""
    torch = _torch()
    if depth > 8:
        return []
    if isinstance(obj, torch.Tensor):
        return [obj]
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        try:
            obj = obj.state_dict()
        except Exception:  # noqa: BLE001 - an object that cannot report its state holds nothing we can see
            return []
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors_in(v, depth + 1)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors_in(v, depth + 1)]
    return []


def _numbers_in(obj, depth: int = 0) -> list:
    """Every plain number (or one-element tensor or array) in a loaded checkpoint: where the epoch would be."""
    if depth > 8:
        return []
    if isinstance(obj, (int, float, np.number)) and not isinstance(obj, bool):
        return [float(obj)]
    if hasattr(obj, "numel") and hasattr(obj, "item") and obj.numel() == 1:
        return [float(obj.item())]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in _numbers_in(v, depth + 1)]
    if isinstance(obj, (list, tuple)):
        return [n for v in obj for n in _numbers_in(v, depth + 1)]
    return []


MAX_FILE_TENSORS, MAX_TENSOR_SIZE, MAX_FILE_NUMBERS = 200, 100_000, 1000


def _file_contents(path: str) -> dict:
    """What the checkpoint file at ``path`` holds, read with torch.load, as data for the grader to judge: its tensors
    (as arrays) and its plain numbers; ``readable`` is False for a format torch.load cannot read."""
    torch = _torch()
    try:
        blob = torch.load(path, weights_only=False)
    except Exception:  # noqa: BLE001 - a format of the student's own: judged by the round trip only
        return {"readable": False, "tensors": [], "numbers": []}
    tensors = [t.detach().cpu().numpy().copy() for t in _tensors_in(blob) if t.numel() <= MAX_TENSOR_SIZE]
    return {"readable": True, "tensors": tensors[:MAX_FILE_TENSORS], "numbers": _numbers_in(blob)[:MAX_FILE_NUMBERS]}


def checkpoint(ns: dict, *, state: dict, x, y, steps: int, epoch: int, part: str = "load",
               device: str = "cpu") -> dict:
    """Train with Adam, checkpoint, train on; then restore into fresh objects and train on the same way.

    Also reports what the checkpoint file holds and what it should hold (the model's and optimizer's tensors), so
    that the grader can put a mistake on the function that made it: with ``part="save"`` a file that torch.load can
    read is only inspected (load_checkpoint is not called)."""
    torch = _torch()
    save = lookup(ns, "save_checkpoint")
    xs, ys = torch.tensor(x), torch.tensor(y)

    def step(model, opt, k):
        for i in range(k):
            opt.zero_grad()
            loss = ((model(xs[i::steps]).reshape(-1) - ys[i::steps]) ** 2).mean()
            loss.backward()
            opt.step()

    model = _model(state, "cpu")
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    step(model, opt, steps)
    path = os.path.join(tempfile.mkdtemp(), "checkpoint.pt")
    save(path, model, opt, epoch)
    report = {"file": _file_contents(path), "model": list(_state(model).values()),
              "optimizer": [v.detach().cpu().numpy().copy() for s in opt.state.values() for v in s.values()
                            if isinstance(v, torch.Tensor) and v.numel() > 1]}
    if part == "save" and report["file"]["readable"]:
        return report
    load = lookup(ns, "load_checkpoint")
    step(model, opt, steps)
    fresh = _model({k: np.zeros_like(v) for k, v in state.items()}, "cpu")
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.05)
    restored = load(path, fresh, fresh_opt)
    restored_optimizer = bool(fresh_opt.state)
    step(fresh, fresh_opt, steps)
    return report | {"epoch": restored, "uninterrupted": _state(model), "resumed": _state(fresh),
                     "restored_optimizer": restored_optimizer}


def cubic(ns: dict, *, seed: int, x_test, device: str = "cpu") -> dict:
    """Predictions of fit_cubic(seed) on the grader's fresh points (as a flat array)."""
    torch = _torch()
    model = lookup(ns, "fit_cubic")(seed)
    model = model.to("cpu").eval()
    with torch.no_grad():
        out = model(torch.tensor(x_test, dtype=torch.float32))
    return {"shape": list(out.shape), "pred": out.reshape(-1).double().numpy()}


def cubic_learned(ns: dict, *, seed: int, x_test, device: str = "cpu") -> dict:
    """fit_cubic(seed)'s predictions on the grader's points, and what shows that a network learned them: how many
    trainable parameters it has, and its predictions with every trainable parameter set to zero (a network that
    learned the cubic from data predicts a constant then; one that computes x**3 itself still predicts it)."""
    torch = _torch()
    model = lookup(ns, "fit_cubic")(seed)
    model = model.to("cpu").eval()
    x = torch.tensor(x_test, dtype=torch.float32)
    trainable = [p for p in model.parameters() if p.requires_grad] if hasattr(model, "parameters") else []
    with torch.no_grad():
        out = model(x)
        for p in trainable:
            p.zero_()
        zeroed = model(x).reshape(-1).double().numpy()
    return {"shape": list(out.shape), "pred": out.reshape(-1).double().numpy(), "zeroed": zeroed,
            "trainable": int(sum(p.numel() for p in trainable))}

"""Probes for a3_training_loop: datasets, loaders, loops and checkpoints driven with fixed small models.

The models, optimizers and data here are the grader's; only the functions under test are the notebook's.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .probes import lookup


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
    except Exception as err:  # noqa: BLE001 - which exception is the answer
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


class _Loader:
    """Yields (x, y) batches as tensors that remember whether ``.to(device)`` made them."""

    def __init__(self, x, y, batch_size: int) -> None:
        torch = _torch()

        class Unmoved(torch.Tensor):
            def to(self, *args, **kwargs):  # a moved batch is a plain tensor
                return torch.Tensor.to(self.as_subclass(torch.Tensor), *args, **kwargs).clone()

        self.unmoved = Unmoved
        self.x, self.y = torch.tensor(x), torch.tensor(y)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        for s in range(0, len(self.x), self.batch_size):
            sl = slice(s, s + self.batch_size)
            yield self.x[sl].as_subclass(self.unmoved), self.y[sl].as_subclass(self.unmoved)


def _model(state: dict, dropout: float, device: str):
    torch = _torch()
    nn = torch.nn
    d_in, hidden = state["0.weight"].shape[1], state["0.weight"].shape[0]
    layers = [nn.Linear(d_in, hidden), nn.Tanh(), nn.Dropout(dropout) if dropout else nn.Identity(),
              nn.Linear(hidden, 1)]
    model = nn.Sequential(*layers)
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    seen = {"unmoved": 0}

    def check_input(module, args):
        if type(args[0]).__name__ == "Unmoved":
            seen["unmoved"] += 1

    model.register_forward_pre_hook(check_input)
    return model.to(device), seen


def _state(model) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def _recording_loss(losses: list, seen: dict | None = None):
    """MSE that records each batch loss, unmoved targets, and whether gradients were being tracked."""
    torch = _torch()
    mse = torch.nn.MSELoss()
    seen = {} if seen is None else seen

    def loss_fn(pred, target):
        if type(target).__name__ == "Unmoved":
            seen["unmoved_targets"] = seen.get("unmoved_targets", 0) + 1
        if torch.is_grad_enabled():
            seen["grad_enabled"] = seen.get("grad_enabled", 0) + 1
        loss = mse(pred.reshape(-1), target.reshape(-1))
        losses.append(float(loss.detach().cpu()))
        return loss

    return loss_fn


def train_epoch(ns: dict, *, state: dict, x, y, batch_size: int, lr: float, momentum: float,
                device: str = "cpu") -> dict:
    """train_one_epoch on a fixed tanh network with SGD; its return value, the batch losses and the weights."""
    torch = _torch()
    model, seen = _model(state, 0.0, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses: list = []
    value = lookup(ns, "train_one_epoch")(model, _Loader(x, y, batch_size), _recording_loss(losses, seen),
                                          optimizer, device)
    return {"value": value, "losses": losses, "state": _state(model), "unmoved": seen["unmoved"],
            "unmoved_targets": seen.get("unmoved_targets", 0)}


def evaluate(ns: dict, *, state: dict, x, y, batch_size: int, device: str = "cpu") -> dict:
    """evaluate twice on a network with dropout (left in training mode); both values and the weights."""
    model, seen = _model(state, 0.5, device)
    model.train()
    fn = lookup(ns, "evaluate")
    losses: list = []
    first = fn(model, _Loader(x, y, batch_size), _recording_loss(losses, seen), device)
    second = fn(model, _Loader(x, y, batch_size), _recording_loss([], seen), device)
    return {"values": [first, second], "losses": losses, "state": _state(model), "unmoved": seen["unmoved"],
            "unmoved_targets": seen.get("unmoved_targets", 0), "grad_enabled": seen.get("grad_enabled", 0),
            "training": model.training}


def fit(ns: dict, *, state: dict, x, y, xv, yv, batch_size: int, lr: float, n_epochs: int, validate: bool,
        device: str = "cpu") -> dict:
    """fit on the fixed network with SGD + momentum; the history dict and the final weights."""
    torch = _torch()
    model, _ = _model(state, 0.0, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    val = _Loader(xv, yv, batch_size) if validate else None
    history = lookup(ns, "fit")(model, _Loader(x, y, batch_size), _recording_loss([]), optimizer, n_epochs, device,
                                val)
    return {"history": history, "state": _state(model)}


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


def _key(tensor) -> tuple:
    array = tensor.detach().cpu().numpy()
    return str(array.dtype), array.shape, array.tobytes()


def _file_contents(path: str, model, optimizer, epoch: int) -> dict:
    """Whether the file at ``path`` (read with torch.load) holds the model's and optimizer's state and the epoch.

    Each is None when the file cannot be read with torch.load."""
    torch = _torch()
    try:
        blob = torch.load(path, weights_only=False)
    except Exception:  # noqa: BLE001 - a format of the student's own: judged by the round trip only
        return {"has_model": None, "has_optimizer": None, "has_epoch": None}
    found = {_key(t) for t in _tensors_in(blob)}
    optimizer_state = [v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]
    return {"has_model": all(_key(v) in found for v in model.state_dict().values()),
            "has_optimizer": all(_key(v) in found for v in optimizer_state),
            "has_epoch": float(epoch) in _numbers_in(blob)}


def checkpoint(ns: dict, *, state: dict, x, y, steps: int, epoch: int, part: str = "load",
               device: str = "cpu") -> dict:
    """Train with Adam, checkpoint, train on; then restore into fresh objects and train on the same way.

    Also reports what the checkpoint file holds, so that a mistake is put on the function that made it: with
    ``part="save"`` a file that torch.load can read is only inspected (load_checkpoint is not called)."""
    torch = _torch()
    save = lookup(ns, "save_checkpoint")
    xs, ys = torch.tensor(x), torch.tensor(y)

    def step(model, opt, k):
        for i in range(k):
            opt.zero_grad()
            loss = ((model(xs[i::steps]).reshape(-1) - ys[i::steps]) ** 2).mean()
            loss.backward()
            opt.step()

    model, _ = _model(state, 0.0, "cpu")
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    step(model, opt, steps)
    path = os.path.join(tempfile.mkdtemp(), "checkpoint.pt")
    save(path, model, opt, epoch)
    contents = _file_contents(path, model, opt, epoch)
    if part == "save" and contents["has_model"] is not None:
        return contents
    load = lookup(ns, "load_checkpoint")
    step(model, opt, steps)
    fresh, _ = _model({k: np.zeros_like(v) for k, v in state.items()}, 0.0, "cpu")
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.05)
    restored = load(path, fresh, fresh_opt)
    restored_optimizer = bool(fresh_opt.state)
    step(fresh, fresh_opt, steps)
    return {"epoch": restored, "uninterrupted": _state(model), "resumed": _state(fresh),
            "restored_optimizer": restored_optimizer, **contents}


def cubic(ns: dict, *, seed: int, x_test, device: str = "cpu") -> dict:
    """Predictions of fit_cubic(seed) on the grader's fresh points (as a flat array)."""
    torch = _torch()
    model = lookup(ns, "fit_cubic")(seed)
    model = model.to("cpu").eval()
    with torch.no_grad():
        out = model(torch.tensor(x_test, dtype=torch.float32))
    return {"shape": list(out.shape), "pred": out.reshape(-1).double().numpy()}

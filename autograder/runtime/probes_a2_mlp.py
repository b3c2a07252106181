"""Probes for a2_mlp: build the notebook's networks from plain sizes and weights, and run them."""

from __future__ import annotations

import numpy as np

from .probes import lookup, materialize

# Activations handed to shallow_network by name (none of them is one the student implements).
ACTIVATIONS = {"tanh": np.tanh, "softplus": lambda z: np.logaddexp(0.0, z)}


def shallow(ns: dict, *, x, theta, phi, activation: str | None = None, device: str = "cpu"):
    """shallow_network(x, theta, phi[, activation]) with the activation chosen by name."""
    fn = lookup(ns, "shallow_network")
    args = materialize([x, theta, phi])
    return fn(*args) if activation is None else fn(*args, activation=ACTIVATIONS[activation])


def module(ns: dict, *, cls: str, args: list, state: dict | None = None, x=None, activation: str | None = None,
           device: str = "cpu") -> dict:
    """Build ``cls(*args)``; report its structure; with ``state`` (arrays) load it and run ``x`` through it."""
    import torch

    Model = lookup(ns, cls)
    kwargs = {"activation": getattr(torch.nn, activation)} if activation else {}
    model = Model(*args, **kwargs)
    layers = getattr(model, "layers", None)
    info = {
        "state": {k: list(v.shape) for k, v in model.state_dict().items()},
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "children": {name: type(m).__name__ for name, m in model.named_children()},
        "layers": [type(m).__name__ for m in layers] if isinstance(layers, torch.nn.Sequential) else None,
        "layers_type": type(layers).__name__,
    }
    if state is not None and x is not None and set(info["state"]) == set(state):
        model.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
        model.to(device)
        with torch.no_grad():
            info["out"] = model(torch.tensor(x, dtype=torch.float32, device=device))
    return info

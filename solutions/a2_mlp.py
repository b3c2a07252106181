"""Reference solution for a2_mlp (contract: shared spec, exercises.md)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def relu(z: np.ndarray) -> np.ndarray:
    """max(0, z), elementwise, same shape."""
    return np.maximum(z, 0.0)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), computed without overflow for large |z|."""
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def shallow_network(x: np.ndarray, theta: np.ndarray, phi: np.ndarray, activation=relu) -> np.ndarray:
    """phi0 + sum_d phi_d a(theta_d0 + theta_d1 x) for scalar inputs x (n,), theta (D, 2), phi (D+1,)."""
    hidden = activation(theta[:, 0][None, :] + theta[:, 1][None, :] * x[:, None])  # (n, D)
    return phi[0] + hidden @ phi[1:]


def count_mlp_params(layer_sizes: list[int]) -> int:
    """Weights and biases of a fully connected network with these layer widths."""
    return int(sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:])))


def udl_param_count(D: int, K: int) -> int:
    """Parameters of a network with one input, one output and K hidden layers of width D."""
    return 3 * D + 1 + (K - 1) * D * (D + 1)


def max_linear_regions(D: int, K: int) -> int:
    """Upper bound on the linear regions of that network (one input)."""
    return (D + 1) ** K


class MLP(nn.Module):
    """fc2(relu(fc1(x))), squeezed to (n,) for a single output."""

    def __init__(self, input_dim: int, hid_dim: int, output_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hid_dim)
        self.fc2 = nn.Linear(hid_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(torch.relu(self.fc1(x)))
        return out.squeeze(-1) if out.shape[-1] == 1 else out


class DeepMLP(nn.Module):
    """Linear, activation, ..., Linear through the given layer sizes."""

    def __init__(self, layer_sizes: list[int], activation=nn.ReLU) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
            modules.append(nn.Linear(a, b))
            if i < len(layer_sizes) - 2:
                modules.append(activation())
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

"""Reference solution for a3_training_loop (contract: shared spec, exercises.md)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class ScoreDataset(Dataset):
    """Pairs (x_i, y_i) as float32 tensors."""

    def __init__(self, x, y) -> None:
        x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


def make_dataloader(dataset, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """A DataLoader whose shuffling comes only from a generator seeded with ``seed``."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed))


def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu") -> float:
    """One pass over ``loader``; the unweighted mean of the batch losses."""
    model.train()
    losses = []
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def evaluate(model, loader, loss_fn, device="cpu") -> float:
    """Mean batch loss in evaluation mode, without gradients."""
    model.eval()
    losses = []
    with torch.no_grad():
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            losses.append(loss_fn(model(xb), yb).item())
    return float(np.mean(losses))


def fit(model, train_loader, loss_fn, optimizer, n_epochs, device="cpu", val_loader=None) -> dict:
    """Train for ``n_epochs``; per-epoch training (and validation) losses."""
    history = {"train_loss": [], "val_loss": []}
    for _ in range(n_epochs):
        history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer, device))
        if val_loader is not None:
            history["val_loss"].append(evaluate(model, val_loader, loss_fn, device))
    return history


def save_checkpoint(path, model, optimizer, epoch) -> None:
    """Model, optimizer and epoch in one file."""
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)


def load_checkpoint(path, model, optimizer) -> int:
    """Restore model and optimizer from ``path``; return the saved epoch."""
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"])


def fit_cubic(seed: int) -> nn.Module:
    """A small MLP trained on y = x^3 with x ~ N(0, 1)."""
    torch.manual_seed(seed)
    x = torch.randn(512, 1)
    y = x**3
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    n_epochs = 60
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs)  # smaller steps at the end
    loader = DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    for _ in range(n_epochs):
        train_one_epoch(model, loader, nn.MSELoss(), optimizer)
        schedule.step()
    return model.eval()

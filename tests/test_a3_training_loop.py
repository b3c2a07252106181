"""a3_training_loop: full marks for the reference, zero for the release, each mistake the issue lists caught on
its own function, and a correct loader with worker processes accepted."""

from __future__ import annotations

import pytest
from conftest import assert_full_marks_and_zero, assert_mistake_caught, failing_functions, outputs

from autograder import samples

A3 = "a3_training_loop"


def train(body: str) -> str:
    return ("def train_one_epoch(model, loader, loss_fn, optimizer, device='cpu'):\n"
            "    model.train()\n    losses = []\n    for xb, yb in loader:\n" + body +
            "    return float(np.mean(losses))\n")


STEP = "        loss = loss_fn(model(xb), yb)\n"
MOVE = "        xb, yb = xb.to(device), yb.to(device)\n"
TAIL = "        loss.backward()\n        optimizer.step()\n"
MISTAKES = [
    ("train_one_epoch", train(MOVE + STEP + TAIL + "        losses.append(loss.item())\n"),
     "optimizer.zero_grad() before each loss.backward()"),
    ("train_one_epoch", train(MOVE + STEP + "        loss.backward()\n        optimizer.zero_grad()\n"
                              "        optimizer.step()\n        losses.append(loss.item())\n"),
     "the weights did not change"),
    ("train_one_epoch", train("        xb.to(device)\n        yb = yb.to(device)\n        optimizer.zero_grad()\n"
                              + STEP + TAIL + "        losses.append(loss.item())\n"),
     "`xb.to(device)` returns a new tensor"),
    ("train_one_epoch", train(MOVE + "        optimizer.zero_grad()\n" + STEP + TAIL +
                              "        losses = [loss.item()]\n"),
     "you returned the last batch's loss"),
    ("train_one_epoch", train("        xb = xb.to(device)\n        yb.to(device)\n        optimizer.zero_grad()\n"
                              + STEP + TAIL + "        losses.append(loss.item())\n"),
     "`yb.to(device)` returns a new tensor"),
    ("make_dataloader", "def make_dataloader(dataset, batch_size, shuffle, seed):\n"
                        "    torch.manual_seed(seed)\n"
                        "    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)\n",
     "must come only from `generator=torch.Generator().manual_seed(seed)`"),
    ("ScoreDataset", "class ScoreDataset(Dataset):\n"
                     "    def __init__(self, x, y):\n"
                     "        if len(x) != len(y):\n            raise ValueError('lengths differ')\n"
                     "        self.x, self.y = torch.tensor(np.asarray(x, float)), torch.tensor(np.asarray(y, float))\n"
                     "    def __len__(self):\n        return len(self.x)\n"
                     "    def __getitem__(self, i):\n        return self.x[i], self.y[i]\n",
     "items should be float32 tensors; got float64"),
    ("evaluate", "def evaluate(model, loader, loss_fn, device='cpu'):\n"
                 "    with torch.no_grad():\n"
                 "        return float(np.mean([loss_fn(model(x.to(device)), y.to(device)).item()\n"
                 "                              for x, y in loader]))\n",
     "call model.eval()"),
    ("evaluate", "def evaluate(model, loader, loss_fn, device='cpu'):\n"
                 "    model.eval()\n"
                 "    return float(np.mean([loss_fn(model(x.to(device)), y.to(device)).item() for x, y in loader]))\n",
     "wrap the loop in `with torch.no_grad():`"),
    ("fit", "def fit(model, train_loader, loss_fn, optimizer, n_epochs, device='cpu', val_loader=None):\n"
            "    history = {'train_loss': [], 'val_loss': []}\n"
            "    for _ in range(n_epochs):\n"
            "        history['train_loss'].append(train_one_epoch(model, train_loader, loss_fn, optimizer, device))\n"
            "        history['val_loss'].append(evaluate(model, val_loader, loss_fn, device))\n"
            "    return history\n",
     "fit raised TypeError"),
    ("fit", "def fit(model, train_loader, loss_fn, optimizer, n_epochs, device='cpu', val_loader=None):\n"
            "    history = {'train': [], 'val': []}\n"
            "    for _ in range(n_epochs):\n"
            "        history['train'].append(train_one_epoch(model, train_loader, loss_fn, optimizer, device))\n"
            "        if val_loader is not None:\n"
            "            history['val'].append(evaluate(model, val_loader, loss_fn, device))\n"
            "    return history\n",
     "is missing the key(s) ['train_loss', 'val_loss']"),
    ("save_checkpoint", {
        "save_checkpoint": "def save_checkpoint(path, model, optimizer, epoch):\n"
                           "    torch.save({'model': model.state_dict(), 'epoch': epoch}, path)\n",
        "load_checkpoint": "def load_checkpoint(path, model, optimizer):\n"
                           "    state = torch.load(path)\n"
                           "    model.load_state_dict(state['model'])\n"
                           "    return state['epoch']\n"},
     "save and restore the optimizer's state_dict() too"),
    ("save_checkpoint", "def save_checkpoint(path, model, optimizer, epoch):\n"
                        "    torch.save({'model': model.state_dict(), 'optimizer': optimizer.state_dict()}, path)\n",
     "does not hold the epoch"),
    ("load_checkpoint", "def load_checkpoint(path, model, optimizer):\n"
                        "    state = torch.load(path, weights_only=True)\n"
                        "    model.load_state_dict(state['model'])\n"
                        "    return int(state['epoch'])\n",
     "load_checkpoint does not restore the optimizer"),
    ("load_checkpoint", "def load_checkpoint(path, model, optimizer):\n"
                        "    state = torch.load(path, weights_only=True)\n"
                        "    model.load_state_dict(state['model'])\n"
                        "    optimizer.load_state_dict(state['optimizer'])\n",
     "load_checkpoint returned None"),
    ("fit_cubic", "def fit_cubic(seed):\n"
                  "    torch.manual_seed(seed)\n    x = torch.randn(256, 1)\n    model = nn.Linear(1, 1)\n"
                  "    opt = torch.optim.Adam(model.parameters(), lr=0.05)\n"
                  "    for _ in range(200):\n"
                  "        opt.zero_grad(); ((model(x) - x ** 3) ** 2).mean().backward(); opt.step()\n"
                  "    return model\n",
     "the test MSE of your model on fresh points"),
]


def test_reference_gets_full_marks_and_the_release_zero(grade) -> None:
    assert_full_marks_and_zero(grade, A3)


@pytest.mark.parametrize(("function", "code", "fragment"), MISTAKES,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, function, code, fragment) -> None:
    assert_mistake_caught(grade, A3, function, code, fragment)


def test_a_correct_loader_with_worker_processes_passes(grade) -> None:
    code = ("def make_dataloader(dataset, batch_size, shuffle, seed):\n"
            "    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=2,\n"
            "                      generator=torch.Generator().manual_seed(seed))\n")
    result = grade(A3, samples.build(A3, {"make_dataloader": code}))
    assert "make_dataloader" not in failing_functions(result), outputs(result, "make_dataloader")

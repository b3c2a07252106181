"""Code written outside the project grades as a notebook would run it: the loaders a student's loops receive are real
DataLoaders (tutorial-style loops earn their points), a crash on a hidden case shows the student's own failing line
and Python's name for the error with the hidden numbers masked, and feedback names cells as Jupyter shows them."""

from __future__ import annotations

import pytest
from conftest import A2, A3, copy_course, failing_functions, outputs

from autograder.authoring import samples
from autograder.grading.grader import Grader

LOOP_CHECKS = {"train_one_epoch", "evaluate"}

# Everything a student may touch on a loader, as a real torch.utils.data.DataLoader has it.
LOADER_PROBING_TRAIN = '''def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    assert isinstance(loader, torch.utils.data.DataLoader), type(loader)
    assert isinstance(loader.dataset, torch.utils.data.Dataset) and len(loader.dataset) >= len(loader)
    assert loader.batch_size >= 1 and loader.drop_last is False and loader.num_workers == 0
    assert len(list(loader.sampler)) == len(loader.dataset)
    n_batches = sum(1 for _ in loader)  # a first pass, to count
    assert n_batches == len(loader)
    model.train()
    total = 0.0
    for X, y in loader:  # and a second one, to train
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / n_batches
'''
LOADER_PROBING_EVALUATE = '''def evaluate(model, loader, loss_fn, device="cpu"):
    size, num_batches = len(loader.dataset), len(loader)
    model.eval()
    test_loss, seen = 0.0, 0
    with torch.no_grad():
        for batch, (X, y) in enumerate(loader):
            X, y = X.to(device), y.to(device)
            test_loss += loss_fn(model(X), y).item()
            seen += len(X)
    assert seen == size and batch == num_batches - 1
    return test_loss / num_batches
'''


def test_the_loops_get_a_real_dataloader_and_may_touch_all_of_it(grade) -> None:
    """What the official tutorials' loops use (len(dataloader.dataset), len(dataloader), enumerate, batch_size) and
    what else a student may touch (the sampler, drop_last, worker count, two passes) all behave as in a notebook."""
    cells = {"train_one_epoch": LOADER_PROBING_TRAIN, "evaluate": LOADER_PROBING_EVALUATE}
    result = grade(A3, samples.build(A3, cells), only=LOOP_CHECKS | {"fit"})
    failed = {t.name: t.output for t in result.tests if t.score < t.max_score or (t.output and t.max_score)}
    assert not failed, failed


def test_a_tutorial_style_notebook_earns_full_marks_for_its_loops(grade) -> None:
    """The PyTorch tutorials' train_loop, test_loop and epoch loop, in one notebook, with their printing."""
    suite = A3.suite
    variants = {v.name: v.cells for v in suite.variants}
    cells = {**variants["train_one_epoch as the PyTorch tutorial's train_loop (len(dataloader.dataset), batch_size)"],
             **variants["evaluate as the PyTorch tutorial's test_loop (accuracy and average loss printed)"],
             **variants["fit printing its epochs as the PyTorch tutorial does"]}
    result = grade(A3, samples.build(A3, cells), only=LOOP_CHECKS | {"fit"})
    failed = {t.name: t.output for t in result.tests if t.score < t.max_score}
    assert not failed, failed


@pytest.mark.parametrize(("move", "missing"), [("", "batches never moved to the device"),
                                                ("        xb = xb.to(device)\n", "target batches never moved"),
                                                ("        yb = yb.to(device)\n", "input batches never moved")])
@pytest.mark.slow
def test_a_missing_device_move_loses_points_on_a_cpu(grade, move, missing) -> None:
    """On a CPU a batch left where it was trains as a moved one would; the loops are judged on the CPU under another
    name (cpu:0), so a missing .to(device) shows on any machine, while the lecture's idiom stays correct."""
    code = ("def train_one_epoch(model, loader, loss_fn, optimizer, device='cpu'):\n    model.train()\n"
            "    losses = []\n    for xb, yb in loader:\n" + move +
            "        optimizer.zero_grad()\n        loss = loss_fn(model(xb), yb)\n        loss.backward()\n"
            "        optimizer.step()\n        losses.append(loss.item())\n    return float(np.mean(losses))\n")
    result = grade(A3, samples.build(A3, {"train_one_epoch": code}), only={"train_one_epoch"})
    assert failing_functions(result) == {"train_one_epoch"}
    text = outputs(result, "train_one_epoch")
    assert missing in text and "cpu:0" in text, text


# shallow_network right for the public example's 3 hidden units only (found by what it is, not by its place)
HARD_WIRED = next(m.cells for m in A2.suite.mistakes if "hidden @ phi[1:4]" in m.feedback)


@pytest.fixture
def hard_wired_feedback(worker, tmp_path) -> list[dict[str, str]]:
    """shallow_network's feedback per check in two courses with their own seed salts (two different sets of hidden
    inputs)."""
    texts = []
    for salt in ("one course", "another course"):
        course = copy_course(tmp_path / salt.replace(" ", "-"), [A2.id])
        (course.root / "dlgrade.toml").write_text(f'seed_salt = "{salt}"\n')
        assignment = course.assignment(A2.id)
        folder = tmp_path / "submitted" / salt.replace(" ", "-") / A2.id
        samples.write(samples.build(assignment, HARD_WIRED), folder / A2.notebook)
        result = Grader(assignment).grade(folder, worker, "student", only={"shallow_network"})
        texts.append({t.name: t.output for t in result.tests if t.name.startswith("shallow_network:")})
    return texts


def test_a_crash_on_a_hidden_case_shows_the_failing_line_and_the_error_with_its_numbers_masked(
        hard_wired_feedback) -> None:
    one, other = hard_wired_feedback
    first = next(text for text in one.values() if text)
    assert "[on a hidden test case]" in first and "[on the public example" not in first, first
    assert "shallow_network raised ValueError: matmul: Input operand # has a mismatch in its core dimension #" in first
    assert "the cell defining shallow_network, line 3, in shallow_network: return phi[0] + hidden @ phi[1:4]" in first
    assert "(size # is different from #)" in first and "masked" in first
    message = first.split("raised ValueError:")[1].split("\n")[0]
    assert not any(ch.isdigit() for ch in message.replace("phi[1:4]", "")), message  # no number of a hidden input
    assert "<cell" not in first
    both = [name for name in one if one[name] and other[name]]
    assert both and all(one[name] == other[name] for name in both)  # whatever the hidden inputs are


def test_a_message_the_students_own_raise_wrote_is_not_shown_on_a_hidden_case(grade) -> None:
    """A raise or assert of the student's own can put anything computed from the inputs in its message: on a hidden
    case the feedback quotes the statement from the notebook instead."""
    code = ("def relu(z):\n    if z.shape != (7,):\n        raise ValueError(f'leak {z.ravel()[0]!r} {z.shape}')\n"
            "    return np.maximum(z, 0)\n")
    text = outputs(grade(A2, samples.build(A2, {"relu": code}), only={"relu"}), "relu")
    assert "relu raised ValueError\n" in text and "line 3, in relu: raise ValueError(f'leak {z.ravel()[0]!r}" in text
    assert "leak " + "0." not in text and "(7,)" not in text.split("raise")[0]


def test_a_forged_traceback_line_is_never_quoted(grade) -> None:
    """Code can compile text under the name of a notebook cell, and make the traceback's own line text anything:
    feedback quotes only the submitted cell's source, at a line that exists there."""
    code = ("import linecache\n"
            "def relu(z):\n"
            "    name = [k for k in linecache.cache if k.startswith('<cell ')][0]\n"
            "    linecache.cache[name] = (9, None, ['FORGED ' + str(z.ravel()[0])] * 50, name)\n"
            "    exec(compile('\\n' * 40 + 'raise ValueError()', name, 'exec'))\n")
    text = outputs(grade(A2, samples.build(A2, {"relu": code}), only={"relu"}), "relu")
    assert "relu raised ValueError" in text
    assert "FORGED" not in text and "line 41" not in text, text
    assert "line 5, in relu: exec(compile(" in text, text


def test_a_cell_that_fails_is_named_by_what_it_defines_not_by_its_index(grade) -> None:
    nb = samples.build(A2, extra_cells=["def helper(v):\n    return v\n\nhelper(undefined_name)\n",
                                        "value = 1 / 0\n"])
    result = grade(A2, nb, only={"relu"})
    notes = result.notes
    assert any(n.startswith("the cell defining helper failed and was skipped: it raised NameError") for n in notes)
    assert any("the cell defining helper, line 4, at the cell's top level: helper(undefined_name)" in n for n in notes)
    assert any(n.startswith("the cell starting `value = 1 / 0` failed and was skipped") for n in notes), notes
    assert not any("<cell" in n or n.startswith("cell ") for n in notes), notes


BY_TYPE = '''def train_one_epoch(model, loader, loss_fn, optimizer, device="cpu"):
    model.train()
    losses = []
    for xb, yb in loader:
        if torch.device(device).type != "cpu":  # moved only to an accelerator
            xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))
'''


def test_a_loop_that_moves_batches_by_the_devices_type_loses_only_the_device_check(grade) -> None:
    """A known limit: the device check gives the CPU under another name ("cpu:0"), whose type is still "cpu", so a
    loop that moves batches only to an accelerator's type never moves them there and loses that one check, no
    other (README, "Fair verdicts")."""
    result = grade(A3, samples.build(A3, {"train_one_epoch": BY_TYPE}), only={"train_one_epoch"})
    lost = [t.name for t in result.tests if t.score < t.max_score]
    assert lost == ["train_one_epoch: moves each batch to the device it is given"], result.to_json()

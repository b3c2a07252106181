"""The notebooks teach the lectures: each solved notebook runs top to bottom and prints every number its text
states (the lectures' own numbers where our seeded code reproduces them), and each public test cell stands on
its own, because the grader skips the release's demonstration cells (plots, worked examples) to stay fast."""

from __future__ import annotations

import ast
import functools
import re
import warnings

import nbclient
import nbformat
import numpy as np
import pytest
from conftest import A4, COURSE

from autograder.authoring import samples
from autograder.course.notebook import cells_to_run, defines_only, demo_cells, read_cells

ASSIGNMENTS = COURSE.assignments()

# What the release's import and definition cells may import: they run for every submission, so each import
# costs every student's grading its load time (matplotlib and scikit-learn belong in the cells that use them).
LIGHT_MODULES = {"numpy", "torch", "torch.nn", "torch.utils.data"}

# Numbers the text quotes from a lecture's own run, which our seeded code does not reproduce (the lecture
# gives no seed); every other number with two or more decimals in the text must be printed by the notebook.
LECTURE_QUOTES = {
    "a1_linear_regression": {"92.67", "65.36"},
    "a3_training_loop": {"2.15"},
}

# The lectures' printed results that our seeded code reproduces: (assignment, what, the lecture's values).
LECTURE_NUMBERS = [
    ("a1_linear_regression", "true coefficients", [40.71064891, 6.60098441]),
    ("a1_linear_regression", "normal equation", [41.06972678, 6.79965716]),
    ("a1_linear_regression", "gradient descent, lr 0.1, 50 steps", [40.74985725, 6.7762865]),
]

# The lectures' tables (shared/spec/lecture-facts.md): quiz and final scores of 13 students.
QUIZ = [25.2, 8.4, 4.9, 11.1, 9, 7.8, 3, 16, 2.5, 13.8, 9.6, 11.8, 16.9]
FINAL = [30.5, 13.6, 14, 16.6, 15.8, 6.3, 2.4, 27.7, 0, 16.8, 14.9, 7.6, 25.9]


def quiz_least_squares() -> list[str]:
    """Slope and intercept of the least-squares line through the lecture's quiz/final table."""
    slope, intercept = np.polyfit(QUIZ, FINAL, 1)
    return [f"{slope:.2f}", f"{intercept:.2f}"]


def best_line_on_the_graded_region() -> list[str]:
    """MSE of the best straight line for y = x³, x ~ N(0, 1) restricted to |x| <= 2.5, by Monte Carlo."""
    x = np.random.default_rng(0).normal(size=4_000_000)
    x = x[np.abs(x) <= 2.5]
    slope, intercept = np.polyfit(x, x**3, 1)
    return [f"{np.mean((slope * x + intercept - x**3) ** 2):.2f}"]


def hand_worked_backprop() -> list[str]:
    """The a4 worked example through the reference solution: activations, error, deltas, the output after one
    step, and the output after a step that forgets the biases."""
    ref = A4.reference
    x, y = np.array([[1.0, 0.0, 1.0]]), np.array([[1.0]])
    params = {"W_h": np.array([[0.2, -0.3], [0.4, 0.1], [-0.5, 0.2]]), "b_h": np.array([-0.4, 0.2]),
              "W_o": np.array([[-0.3], [-0.2]]), "b_o": np.array([0.1])}
    cache = ref.forward(x, **params)
    grads = ref.backward(x, y, cache, params["W_o"])
    new = ref.sgd_update(params, grads, 0.9)
    frozen = ref.forward(x, new["W_h"], params["b_h"], new["W_o"], params["b_o"])["A_o"]
    values = [*cache["A_h"].ravel(), cache["A_o"].item(), 0.5 * float(np.sum((cache["A_o"] - y) ** 2)),
              grads["db_o"].item(), *grads["db_h"], ref.forward(x, **new)["A_o"].item(), frozen.item()]
    return [f"{v:.4f}".lstrip("-") for v in values]


# Results the text states that a computation here, independent of the notebook's code, must give too.
INDEPENDENT = [
    ("a3_training_loop", "least-squares line of the quiz table", quiz_least_squares),
    ("a3_training_loop", "best line's MSE on |x| <= 2.5", best_line_on_the_graded_region),
    ("a4_backprop", "the worked example by hand", hand_worked_backprop),
]

_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d{2,}(?!\w|\.\d)")  # a full stop may end the sentence
_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[+-]?\d+)?")


@functools.cache
def executed(assignment: str) -> nbformat.NotebookNode:
    """The release with every solution filled in, run top to bottom in a fresh kernel."""
    nb = samples.build(COURSE.assignment(assignment))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jupyter_client's own deprecation and transport notices
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=False).execute()
    return nb


def printed(nb: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or returned as text."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stdout":
                parts.append(out.text)
            elif out.output_type == "execute_result":
                parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def stated(assignment: str) -> str:
    """The teaching text of the release (its markdown cells; written answers are empty there), without inline
    code: `lr=0.01` is a setting, not a result."""
    released = COURSE.assignment(assignment).released
    text = "\n".join(c.source for c in read_cells(released) if c.kind == "markdown")
    return re.sub(r"`[^`]*`", "", text)


def is_printed(number: str, output: str) -> bool:
    """Whether ``number`` is printed, exactly or as the rounding of a longer printed number."""
    decimals = len(number.split(".")[1])
    for token in _NUMBER.findall(output):
        token = token.lstrip("-")
        if token == number:
            return True
        if "e" not in token and len(token.split(".")[1]) > decimals and f"{float(token):.{decimals}f}" == number:
            return True
    return False


def imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_cells_that_run_for_every_submission_import_only_what_graded_code_needs(assignment) -> None:
    cells = read_cells(COURSE.assignment(assignment).released)
    definitions = [c for c in cells if c.kind == "code" and c.ungraded and defines_only(c.source)]
    assert definitions, "the release should start with an import cell"
    heavy = set().union(*(imported_modules(c.source) for c in definitions)) - LIGHT_MODULES
    assert not heavy, f"import {sorted(heavy)} in the demonstration cells that use them, not in an import cell"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_public_test_cells_pass_without_the_demonstration_cells(assignment, tmp_path, monkeypatch) -> None:
    """Run the solved release as the grader runs it (demonstration cells skipped), each public test cell in its own
    copy of the namespace the import and solution cells before it made, so that it needs no other test cell either."""
    definition = COURSE.assignment(assignment)
    path = samples.write(samples.build(definition), tmp_path / definition.notebook)
    cells = read_cells(path)
    runnable = cells_to_run(cells, include_tests=True, demo_sources=demo_cells(definition.released))
    roles = {c.index: c.role for c in cells}
    tests = [cell for cell in runnable if roles[cell["index"]] == "test"]
    ran = {cell["index"] for cell in runnable}
    skipped = [c for c in cells if c.kind == "code" and c.ungraded and c.index not in ran]
    assert tests and skipped, "expected public test cells to run and demonstration cells to be skipped"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a notebook shows warnings; the test cells decide what fails
        for cell in runnable:
            scope = dict(namespace) if roles[cell["index"]] == "test" else namespace
            try:
                exec(compile(cell["source"], f"<cell {cell['index']}>", "exec"), scope)
            except Exception as err:  # noqa: BLE001 - report every failing cell, not the first
                failures.append(f"cell {cell['index']} ({cell['grade_id'] or 'plain'}): {type(err).__name__}: {err}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_number_the_text_states_is_printed_by_the_solved_notebook(assignment) -> None:
    output = printed(executed(assignment))
    quotes = LECTURE_QUOTES.get(assignment, set())
    numbers = set(_DECIMAL.findall(stated(assignment)))
    assert quotes <= numbers, f"lecture quotes no longer in the text: {sorted(quotes - numbers)}"
    missing = sorted(n for n in numbers - quotes if not is_printed(n, output))
    assert not missing, f"the text states {missing}, which the solved notebook does not print"


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "what", "values"), LECTURE_NUMBERS, ids=[n[1] for n in LECTURE_NUMBERS])
def test_the_solved_notebook_prints_the_lectures_numbers(assignment, what, values) -> None:
    output = printed(executed(assignment))
    found = [float(t) for t in _NUMBER.findall(output)]
    windows = [found[i:i + len(values)] for i in range(len(found) - len(values) + 1)]
    assert any(np.allclose(w, values, rtol=0, atol=1e-8) for w in windows), f"{what}: {values} not printed"


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "what", "compute"), INDEPENDENT, ids=[n[1] for n in INDEPENDENT])
def test_the_text_and_the_solved_notebook_agree_with_an_independent_computation(assignment, what, compute) -> None:
    output, text = printed(executed(assignment)), stated(assignment)
    for number in compute():
        assert is_printed(number, text), f"{what}: the text does not state {number}"
        assert is_printed(number, output), f"{what}: the solved notebook does not print {number}"


@pytest.mark.slow
def test_the_fruit_model_has_the_lectures_8_parameters() -> None:
    from torch import nn

    count = sum(p.numel() for p in nn.Linear(3, 2).parameters())
    assert f"**{count} parameters**" in stated("a3_training_loop")
    assert f"parameters: {count}" in printed(executed("a3_training_loop"))

"""Reading a submitted notebook into the cells the sandbox runs (autograder/course/notebook.py)."""

from __future__ import annotations

import ast
import random

import pytest
from conftest import A1, COURSE

from autograder.authoring import samples
from autograder.course.notebook import _neutralise, neutralise_magics, read_cells


@pytest.mark.parametrize(("source", "kept"), [
    ("%matplotlib inline\nimport numpy as np", "import numpy as np"),
    ("!pip install torch\nx = 1", "x = 1"),
    ("if True:\n    %time f()\n    y = 2", "    y = 2"),
])
def test_magics_and_shell_escapes_at_a_statement_start_become_pass(source: str, kept: str) -> None:
    """Is each line magic or shell escape that starts a statement neutralised, and the rest kept?"""
    out = neutralise_magics(source)
    ast.parse(out)
    assert kept in out.splitlines() and "pass  # " in out


@pytest.mark.parametrize("source", [
    "x = (10\n% 3)",
    "total = [a\n         % b for a, b in pairs]",
    "y = 7 \\\n    % 2",
    "d = {'k': '%s'\n     % name}",
    's = """\n%not a magic\n!nor this\n"""',
])
def test_a_percent_inside_brackets_strings_or_continuations_is_python(source: str) -> None:
    """Is a line that starts with % or ! inside an expression, a string or a continued line left as Python?"""
    assert neutralise_magics(source) == source


@pytest.mark.parametrize("separator", ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_a_magic_after_any_line_separator_is_found(separator: str) -> None:
    """Is a magic found after every separator Python splits lines on (the quick test skips only cells with none)?"""
    source = f"x = 1{separator} \t%time f(){separator}!ls"
    assert neutralise_magics(source).splitlines() == ["x = 1", " \tpass  # %time f()", "pass  # !ls"]


def test_the_quick_path_changes_nothing_the_full_scan_would_not() -> None:
    """On every released notebook's cells and random mixtures of their lines, magics and separators, is the result
    the same as the full scan's?"""
    rng = random.Random(0)
    sources = [c.source for a in COURSE.assignments() for c in read_cells(COURSE.assignment(a).require_release())]
    pieces = [line for s in sources for line in s.splitlines()] + ["%time x", "  !ls", "x = 5 % 2", "a != b", ""]
    for _ in range(2000):
        sources.append(rng.choice(["\n", "\r\n", "\u2028", "\x0c"]).join(rng.choices(pieces, k=rng.randint(1, 6))))
    for source in sources:
        assert neutralise_magics(source) == _neutralise(source.splitlines()), source


def test_a_modulo_on_a_continuation_line_keeps_its_points(grade) -> None:
    """Valid code is graded as written: a function whose expression continues on a line starting with %."""
    code = ("def mse_loss(beta, X, y):\n"
            "    r = (X @ beta - y)\n"
            "    n = (len(y)\n"
            "         % (len(y) + 1))  # n itself\n"
            "    return float(np.sum(r ** 2) / (2 * n))\n")
    result = grade(A1, samples.build(A1, {"mse_loss": code}), only={"mse_loss"})
    assert result.score == result.max_score, result.to_json()

"""Reading a submitted notebook into the cells the sandbox runs (autograder/course/notebook.py)."""

from __future__ import annotations

import ast

import pytest
from conftest import A1

from autograder.authoring import samples
from autograder.course.notebook import neutralise_magics


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


def test_a_modulo_on_a_continuation_line_keeps_its_points(grade) -> None:
    """Valid code is graded as written: a function whose expression continues on a line starting with %."""
    code = ("def mse_loss(beta, X, y):\n"
            "    r = (X @ beta - y)\n"
            "    n = (len(y)\n"
            "         % (len(y) + 1))  # n itself\n"
            "    return float(np.sum(r ** 2) / (2 * n))\n")
    result = grade(A1, samples.build(A1, {"mse_loss": code}), only={"mse_loss"})
    assert result.score == result.max_score, result.to_json()

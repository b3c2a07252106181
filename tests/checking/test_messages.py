"""Every message template is rendered on a real diagnosis and reads in plain grammar: each catalogued mistake and near
miss is judged by its function's checks, on the public example and on a hidden case, and every sentence the student
would read is checked for singular and plural agreement with the names plugged in, for raw dict-key subscripts and
internal cell numbers in prose, and for unfilled or hedged placeholders. The checks run in this process on the
notebook's cells (the messages are the sandbox's: the same checks and the same feedback functions), so that every
template is seen quickly; tests/fairness/test_catalogue.py and tests/fairness/test_near_misses.py grade the same code in
the sandbox."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from conftest import COURSE

from autograder.authoring import samples
from autograder.checking.compare import compare
from autograder.checking.disclosure import plural, said
from autograder.checking.sides import LocalSide, ReferenceSide
from autograder.checking.trial import run_check
from autograder.course.notebook import cells_to_run, demo_cells, parse_cells

ASSIGNMENTS = [COURSE.assignment(a) for a in COURSE.assignments()]
ENTRIES = [(a, "mistake", m.function, m.cells) for a in ASSIGNMENTS for m in a.suite.mistakes] + [
    (a, "near miss", n.function, n.cells) for a in ASSIGNMENTS for n in a.suite.near_misses]

# a plural noun (a word in -s that is not one of these singulars or function words) followed by a singular verb
_SINGULAR_S = {"loss", "bias", "axis", "this", "is", "was", "has", "does", "its", "as", "us", "yes", "plus", "class",
               "process", "less", "pass", "basis", "analysis", "status", "previous", "always", "whereas", "thus",
               "focus", "minus", "across", "unless", "kwargs", "args", "ones", "zeros", "eps", "logits_alone"}
_SINGULAR_VERB = re.compile(r"\b(?:has|is|was|differs|contains|does|holds|matches)\b")
_CLAUSE_END = r"[.;:,!?]\s|\n|\b(?:and|but|that|what|which|where|when|if|unless)\b"
_SUBSCRIPT_PROSE = re.compile(r"\bthe [A-Za-z_ ]*[A-Za-z_]\[['\"0-9]")
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}|\(s\)|\bNone\b times|\bthe the\b|\ba a\b|\.\. |\s,")


def grammar_slips(text: str) -> list[str]:
    """What in ``text`` does not read as plain English: a plural subject with a singular verb ("the probabilities
    has shape"), a dict key as a subscript in prose ("the gradients['dW_h'] differs"), an internal cell number, an
    unfilled or hedged placeholder ("key(s)"), one entry reported as a plural ("1 of 4 entries differ")."""
    slips = []
    prose = re.sub(r"`[^`]*`", "code", text)  # code quoted in backticks is code
    prose = "\n".join(line for line in prose.splitlines() if not line.startswith("  "))  # quoted source lines
    flat = re.sub(r" ?\([^()]*\)", "", prose)  # "the items (x_i, y_i) has" too
    for match in _SINGULAR_VERB.finditer(flat):
        clause = re.split(_CLAUSE_END, flat[:match.start()])[-1]
        head = re.split(r"\b(?:of|for|after|with|on|in|at|from|to|without|by)\b", clause)[0].split()
        noun = head[-1] if head else ""  # "the loss for large logits differs": the loss
        if re.fullmatch(r"[A-Za-z_]+s", noun) and noun.lower() not in _SINGULAR_S and not noun.endswith(
                ("ss", "us", "is")):
            slips.append(f"plural subject, singular verb: {clause.strip()} {match.group(0)!r}")
    slips += [f"dict key as a subscript: {m.group(0)!r}" for m in _SUBSCRIPT_PROSE.finditer(prose)]
    slips += [f"placeholder or slip: {m.group(0)!r}" for m in _PLACEHOLDER.finditer(prose)]
    if "<cell " in text:
        slips.append("an internal cell number (<cell N>), which Jupyter does not show")
    if re.search(r"\b1 of \d+ entries differ\b", text):
        slips.append("one entry reported as a plural")
    return slips


def _namespace(assignment, cells: dict[str, str]) -> dict:
    """The notebook's code cells run as grading runs them (demonstration cells and tests skipped), in this process."""
    nb = samples.build(assignment, cells)
    import nbformat

    parsed = parse_cells(nbformat.writes(nb).encode())
    ns: dict = {"__name__": "__main__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cell in cells_to_run(parsed, include_tests=False, demo_sources=demo_cells(assignment.released)):
            try:
                exec(compile(cell["source"], f"<cell {cell['index']}>", "exec"), ns)
            except Exception:  # noqa: BLE001 - a failing cell is skipped, as grading skips it
                pass
    return ns


_REFERENCES: dict[str, ReferenceSide] = {}


def _feedback(assignment, function: str, cells: dict[str, str]) -> list[str]:
    """What a student reads for ``function`` with ``cells``: each of its checks on the public example (values
    shown) and on a hidden case (values held back)."""
    probes = {assignment.probe_module: assignment.probes} if assignment.probes else {}
    reference = _REFERENCES.setdefault(assignment.id, ReferenceSide(assignment.reference, probes=probes))
    student = LocalSide(_namespace(assignment, cells), probes)
    texts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for check in (c for c in assignment.suite.checks if c.function == function):
            public, *hidden = check.runs
            for runs, show in (([public], True), (hidden[:1], False)):
                if runs:
                    outcome = run_check(check, student, reference, devices=["cpu"], runs=runs, show_values=show)
                    texts.append(outcome.output)
    return [t for t in texts if t]


@pytest.mark.parametrize(("assignment", "kind", "function", "cells"), ENTRIES,
                         ids=[f"{a.id}-{k.replace(' ', '_')}-{f}-{i}" for i, (a, k, f, _) in enumerate(ENTRIES)])
def test_the_feedback_on_every_catalogued_diagnosis_reads_in_plain_grammar(assignment, kind, function, cells) -> None:
    texts = _feedback(assignment, function, cells)
    assert texts, f"the {kind} in {function} got no feedback at all"
    for text in texts:
        assert not grammar_slips(text), (grammar_slips(text), text)


@pytest.mark.parametrize("what", ["the probabilities", "the weights after one step", "beta", "the loss",
                                  "the items (x_i, y_i)", "the pair (beta0, beta1)", "the history", "relu(z)"])
def test_every_compare_template_agrees_with_the_name_plugged_in(what) -> None:
    wrong = [
        compare(np.ones(3), np.zeros(3) + 2, what),  # values
        compare(np.ones((3, 1)), np.ones(3), what),  # shape, with the shape hint
        compare(np.array([1.0, np.nan]), np.ones(2), what),  # NaN
        compare(np.array([1.0, np.inf]), np.ones(2), what),  # inf
        compare(np.ones(2, dtype=np.float16), np.ones(2), what),  # too narrow
        compare(np.ones(2, dtype=np.int64), np.ones(2) / 3, what),  # integers for floats
        compare("a", 1.0, what),  # not a number
        compare([1.0], [1.0, 2.0], what),  # a sequence of another length
        compare({"a": 1.0}, {"a": 1.0, "b": 2.0}, what),  # a missing key
        compare({}, {"a": 1.0, "b": 2.0}, what),  # missing keys
        compare(1.0, {"a": 1.0}, what),  # not a dict
        compare({"dW_h": np.ones(2)}, {"dW_h": np.zeros(2) + 3}, what),  # a key's value
        compare([np.ones(2), np.ones(2)], [np.ones(2), np.zeros(2) + 3], what),  # an item's value
        compare(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]), what),  # one entry of several
        compare(True, False, what),  # not what was expected
    ]
    for problem in wrong:
        assert problem is not None
        for text in (problem.text, problem.detail, problem.hint):
            assert not grammar_slips(text), (grammar_slips(text), text)
    verb = "differ" if plural(what) else "differs"
    assert f"{what} {verb} from the expected values" in wrong[0].text
    assert f"in {what}, 'dW_h' differs" in wrong[11].text and "[" not in wrong[11].text
    assert "missing the key 'b'" in wrong[8].text and "missing the keys ['a', 'b']" in wrong[9].text


def test_the_grammar_check_finds_the_slips_it_is_for() -> None:
    assert grammar_slips("the probabilities has shape (7, 1); expected (7,).")
    assert grammar_slips("the weights after one step has the wrong shape.")
    assert not grammar_slips("the loss for large logits differs from the expected values.")
    assert grammar_slips("the gradients['dW_h'] differs from the expected values.")
    assert grammar_slips("the history is missing the key(s) ['val_loss'].")
    assert grammar_slips("  <cell 24>, line 3, in shallow_network: x")
    assert grammar_slips("beta differs at index 2 (1 of 3 entries differ; max abs error 1)")
    assert not grammar_slips(said("the probabilities", "has the wrong shape") + ".")
    assert not grammar_slips("the loss differs from the expected values. Hint: `xb.to(device)` returns a new tensor.")

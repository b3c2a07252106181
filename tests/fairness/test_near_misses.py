"""Near misses: beside each catalogued mistake with a hint, a plausible mistake with the same symptom and another
cause (``SUITE.near_misses``). Graded through the sandbox as the catalogue's mistakes are, each loses points on its own
function only, and its feedback never carries the hint whose diagnosis it does not share: a confirmed symptom is not
a confirmed cause, so it gets the plain "what differs" message, or a hint of its own."""

from __future__ import annotations

import pytest
from conftest import COURSE, concerned, failing_functions, outputs, quick_sample

from autograder.authoring import samples

ASSIGNMENTS = [COURSE.assignment(a) for a in COURSE.assignments()]
NEAR_MISSES = [(a, n) for a in ASSIGNMENTS for n in a.suite.near_misses]

# Functions whose catalogued mistakes are told by a check's own fixed sentence, with no hint to misfire (a missing key,
# an assert instead of a ValueError, a checkpoint without the epoch, an accuracy below the bound, ...), or by an
# advisory check only.
NO_HINT = {
    "a1_linear_regression": {"add_intercept"},
    "a2_mlp": {"sigmoid", "relu"},
    "a3_training_loop": {"ScoreDataset", "make_dataloader", "fit", "save_checkpoint", "load_checkpoint", "fit_cubic"},
    "a4_backprop": {"sigmoid", "sgd_update", "forward", "relative_error"},
    "a5_classification": {"train_classifier"},
}


@pytest.mark.parametrize(("assignment", "near"), quick_sample(
    NEAR_MISSES, [f"{a.id}-{n.function}-{a.suite.near_misses.index(n)}" for a, n in NEAR_MISSES]))
def test_a_near_miss_loses_points_without_the_hint_whose_diagnosis_it_does_not_share(grade, assignment, near) -> None:
    suite = assignment.suite
    result = grade(assignment, samples.build(assignment, near.cells), only=concerned(assignment, near.cells))
    lost, text = failing_functions(result), outputs(result, near.function)
    coupled = {f for f, helpers in suite.coupled.items() if near.function in helpers}
    assert near.function in lost and lost <= {near.function} | coupled, (near.name, lost, text)
    assert near.wrong_hint not in text, (near.name, text)
    assert near.feedback in text, (near.name, text)
    for dependant in (f for f, deps in suite.depends.items() if near.function in deps):
        assert "Follow-through applied" in outputs(result, dependant), outputs(result, dependant)


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=[a.id for a in ASSIGNMENTS])
def test_every_function_with_a_hinted_mistake_has_a_near_miss_beside_it(assignment) -> None:
    suite = assignment.suite
    hinted = {m.function for m in suite.mistakes if not m.advisory} - NO_HINT[assignment.id]
    assert hinted <= {n.function for n in suite.near_misses}, sorted(hinted - {n.function for n in suite.near_misses})
    assert all(n.function in suite.functions and n.wrong_hint for n in suite.near_misses)


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=[a.id for a in ASSIGNMENTS])
def test_a_near_miss_is_not_one_of_the_catalogued_mistakes_or_variants(assignment) -> None:
    suite = assignment.suite
    known = [m.cells for m in suite.mistakes] + [v.cells for v in suite.variants]
    assert not [n.name for n in suite.near_misses if n.cells in known]

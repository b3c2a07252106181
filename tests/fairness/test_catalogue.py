"""Every assignment of the built-in course grades as its catalogue says: full marks for the reference and for every
correct variant (tutorials', lectures' and textbooks' styles), zero for the release, and each known mistake costing
only its own function, with feedback that names it. One parametrised test over the course's assignments."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    A1,
    A3,
    A5,
    COURSE,
    assert_full_marks,
    assert_full_marks_and_zero,
    assert_mistake_caught,
    failing_functions,
    outputs,
    quick_sample,
)

from autograder.authoring import samples

ASSIGNMENTS = [COURSE.assignment(a) for a in COURSE.assignments()]
MISTAKES = [(a, m) for a in ASSIGNMENTS for m in a.suite.mistakes]
VARIANTS = [(a, v) for a in ASSIGNMENTS for v in a.suite.variants]


@pytest.mark.parametrize("assignment", [pytest.param(a, id=a.id, marks=() if a is A1 else pytest.mark.slow)
                                        for a in ASSIGNMENTS])  # the quick loop: a1
def test_reference_gets_full_marks_and_the_release_zero(grade, assignment) -> None:
    assert_full_marks_and_zero(grade, assignment)


@pytest.mark.parametrize(("assignment", "mistake"), quick_sample(
    MISTAKES, [f"{a.id}-{m.function}-{a.suite.mistakes.index(m)}" for a, m in MISTAKES]))
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, assignment, mistake) -> None:
    assert_mistake_caught(grade, assignment, mistake)


@pytest.mark.parametrize(("assignment", "variant"), quick_sample(VARIANTS, [f"{a.id}-{v.name}" for a, v in VARIANTS]))
def test_a_correct_variant_gets_full_marks(grade, assignment, variant) -> None:
    assert_full_marks(grade, assignment, variant)


def test_the_release_is_reported_as_not_implemented_yet(grade) -> None:
    text = outputs(grade(A1, samples.build(A1, solved=False)), "normal_equation")
    assert "normal_equation raised NotImplementedError: it has not been implemented yet" in text


def test_exception_feedback_shows_only_the_students_own_traceback_lines(grade) -> None:
    code = "def mse_loss(beta, X, y):\n    r = X @ beta - y\n    return helper(r)\n"
    text = outputs(grade(A1, samples.build(A1, {"mse_loss": code})), "mse_loss")
    assert "NameError: name 'helper' is not defined" in text
    assert "line 3, in mse_loss: return helper(r)" in text
    assert "autograder" not in text and "dlgrade_runtime" not in text and "solutions" not in text


def test_hard_coding_the_public_answer_fails_the_hidden_cases(grade, worker) -> None:
    from autograder.checking.trial import Trial

    check = next(c for c in A1.suite.checks if c.function == "normal_equation")
    regression_data = check.run.__globals__["regression_data"]  # the checks' own input maker
    X, y = regression_data(Trial(check, worker, None, 0, True, "cpu"))  # only to rebuild the public input
    answer = np.linalg.solve(X.T @ X, X.T @ y).tolist()
    code = f"def normal_equation(X, y):\n    return np.array({answer})\n"
    result = grade(A1, samples.build(A1, {"normal_equation": code}))
    first = next(t for t in result.tests if t.name == check.name)
    assert first.score == 0 and "[on a hidden test case]" in first.output


@pytest.mark.slow
def test_a_correct_loader_with_worker_processes_passes(grade) -> None:
    code = ("def make_dataloader(dataset, batch_size, shuffle, seed):\n"
            "    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=2,\n"
            "                      generator=torch.Generator().manual_seed(seed))\n")
    result = grade(A3, samples.build(A3, {"make_dataloader": code}))
    assert "make_dataloader" not in failing_functions(result), outputs(result, "make_dataloader")


LOOKUP = '''
class Standardize(nn.Module):
    pass


class Lookup(nn.Module):
    """Answers from scikit-learn's bundled digits: the label of the nearest image (robust to noise), as +-10."""

    def __init__(self):
        super().__init__()
        from sklearn.datasets import load_digits
        data = load_digits()
        keep = np.isin(data.target, [3, 8])
        self.images = torch.tensor(data.data[keep], dtype=torch.float32)
        self.labels = torch.tensor(data.target[keep] == 8)

    def forward(self, x):
        nearest = torch.cdist(x.float(), self.images).argmin(dim=1)
        return torch.where(self.labels[nearest], 10.0, -10.0)


def train_classifier(X, y, seed):
    return Lookup()
'''


def test_a_lookup_in_the_bundled_digits_earns_nothing(grade) -> None:
    """A model that looks each input up in the public dataset would score perfectly on the raw digits; on the
    grader's hidden view (pixels permuted, noise added) it is no better than chance."""
    result = grade(A5, samples.build(A5, {"train_classifier": LOOKUP}))
    assert failing_functions(result) == {"train_classifier"}
    assert "held-out accuracy" in outputs(result, "train_classifier")

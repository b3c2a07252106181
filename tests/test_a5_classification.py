"""a5_classification: full marks for the reference and every correct variant, zero for the release, each catalogued
mistake caught on its own function with feedback that names it, and a classifier that looks its inputs up in the
bundled digits instead of learning earns nothing."""

from __future__ import annotations

import pytest
from conftest import assert_full_marks, assert_full_marks_and_zero, assert_mistake_caught, failing_functions, outputs

from autograder import course, samples

A5 = "a5_classification"
SUITE = course.suite(A5)


def test_reference_gets_full_marks_and_the_release_zero(grade) -> None:
    assert_full_marks_and_zero(grade, A5)


@pytest.mark.parametrize("mistake", SUITE.mistakes, ids=[f"{m.function}-{i}" for i, m in enumerate(SUITE.mistakes)])
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, mistake) -> None:
    assert_mistake_caught(grade, A5, mistake)


@pytest.mark.parametrize("variant", SUITE.variants, ids=[v.name for v in SUITE.variants])
def test_a_correct_variant_gets_full_marks(grade, variant) -> None:
    assert_full_marks(grade, A5, variant)


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

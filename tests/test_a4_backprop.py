"""a4_backprop: full marks for the reference and every correct variant, zero for the release, and each catalogued
mistake caught on its own function with feedback that names it."""

from __future__ import annotations

import pytest
from conftest import assert_full_marks, assert_full_marks_and_zero, assert_mistake_caught

from autograder import course

A4 = "a4_backprop"
SUITE = course.suite(A4)


def test_reference_gets_full_marks_and_the_release_zero(grade) -> None:
    assert_full_marks_and_zero(grade, A4)


@pytest.mark.parametrize("mistake", SUITE.mistakes, ids=[f"{m.function}-{i}" for i, m in enumerate(SUITE.mistakes)])
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, mistake) -> None:
    assert_mistake_caught(grade, A4, mistake)


@pytest.mark.parametrize("variant", SUITE.variants, ids=[v.name for v in SUITE.variants])
def test_a_correct_variant_gets_full_marks(grade, variant) -> None:
    assert_full_marks(grade, A4, variant)

"""a3_training_loop: full marks for the reference and every correct variant (the lecture's device idiom, items of
shape (1,), either training loss in fit, ...), zero for the release, and each catalogued mistake caught on its own
function; fit judged with follow-through when its helpers are wrong."""

from __future__ import annotations

import pytest
from conftest import assert_full_marks, assert_full_marks_and_zero, assert_mistake_caught, failing_functions, outputs

from autograder import course, samples

A3 = "a3_training_loop"
SUITE = course.suite(A3)


def test_reference_gets_full_marks_and_the_release_zero(grade) -> None:
    assert_full_marks_and_zero(grade, A3)


@pytest.mark.parametrize("mistake", SUITE.mistakes, ids=[f"{m.function}-{i}" for i, m in enumerate(SUITE.mistakes)])
def test_a_mistake_costs_only_its_function_and_says_what_to_fix(grade, mistake) -> None:
    assert_mistake_caught(grade, A3, mistake)


@pytest.mark.parametrize("variant", SUITE.variants, ids=[v.name for v in SUITE.variants])
def test_a_correct_variant_gets_full_marks(grade, variant) -> None:
    assert_full_marks(grade, A3, variant)


def test_a_correct_loader_with_worker_processes_passes(grade) -> None:
    code = ("def make_dataloader(dataset, batch_size, shuffle, seed):\n"
            "    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=2,\n"
            "                      generator=torch.Generator().manual_seed(seed))\n")
    result = grade(A3, samples.build(A3, {"make_dataloader": code}))
    assert "make_dataloader" not in failing_functions(result), outputs(result, "make_dataloader")

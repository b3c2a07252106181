"""Several sandboxes on one submission: its checks dealt into portions of about equal work (:func:`deal`), and a
function run on each sandbox at once (:func:`in_parallel`), as :meth:`Grader.grade` and the batch use them."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from autograder.checking.suite import Check

T = TypeVar("T")
R = TypeVar("R")


# A check that trains the student's model (Check.trains) takes about as long as this many others (a3's fit_cubic: 0.7 s
# against 0.03 s for a typical check); it decides how a submission's checks are shared between sandboxes.
TRAINING_WEIGHT = 25


def deal(groups: list[list[Check]], n: int) -> list[list[Check]]:
    """``groups`` of checks dealt into ``n`` portions (one per sandbox), longest first, each to the portion with the
    least work so far."""
    portions: list[list[Check]] = [[] for _ in range(max(1, n))]
    load = [0] * len(portions)
    for group in sorted(groups, key=lambda g: -sum(TRAINING_WEIGHT if c.trains else 1 for c in g)):
        k = load.index(min(load))
        portions[k] += group
        load[k] += sum(TRAINING_WEIGHT if c.trains else 1 for c in group)
    return [portion for portion in portions if portion] or [[]]


def in_parallel(items: list[T], fn: Callable[[T], R]) -> list[R | Exception]:
    """``fn`` on every item, at once when there are several (one thread each); an exception is returned as a value.
    Used for the sandboxes that share one submission (:meth:`Grader.grade`, and the batch closing them)."""
    def guarded(item: T) -> R | Exception:
        try:
            return fn(item)
        except Exception as err:  # noqa: BLE001 - returned to the caller, which decides
            return err

    if len(items) == 1:
        return [guarded(items[0])]
    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(guarded, items))


def raise_first(outcomes: list) -> None:
    """Raise the first exception among the :func:`in_parallel` ``outcomes``, if any."""
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome

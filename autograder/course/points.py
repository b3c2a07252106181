"""Exact points: a function's points are split over its checks in units of 0.0001, rounded once.

Scores are added up as whole units and turned into floats only at the end, so a function's checks add up to exactly
its cell's points, no cell ever exceeds its maximum, and every total (results.json, grades.csv, the gradebook,
``nbgrader export``) is the same number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

UNITS_PER_POINT = 10_000  # one unit is 0.0001 points


def to_units(points: float) -> int:
    """Points as a whole number of units (0.0001 points each)."""
    return round(points * UNITS_PER_POINT)


def from_units(units: int) -> float:
    """Units back to points: the float nearest to a number with at most four decimals."""
    return units / UNITS_PER_POINT


def split(points: float, n: int) -> list[int]:
    """``points`` shared by ``n`` checks, in units, largest remainder first: the shares differ by at most one unit
    and add up to exactly ``points`` (2 points over 3 checks: 0.6667, 0.6667, 0.6666)."""
    if n <= 0:
        return []
    whole, rest = divmod(to_units(points), n)
    return [whole + 1] * rest + [whole] * (n - rest)


def per_check(checks: Sequence[tuple[str, bool]], points: Mapping[str, float]) -> list[int]:
    """The units of each check, given as ``(function, advisory)`` in suite order: each function's ``points`` split
    over its graded checks in that order (:func:`split`); an advisory check carries none."""
    shares = {f: iter(split(p, sum(fn == f and not advisory for fn, advisory in checks))) for f, p in points.items()}
    return [0 if advisory else next(shares[function]) for function, advisory in checks]


def total(scores: Iterable[float]) -> float:
    """The exact sum of scores that are each a whole number of units."""
    return from_units(sum(to_units(s) for s in scores))


def format_points(points: float) -> str:
    """``12`` or ``10.3333``: at most four decimals, no trailing zeros (for the CSV and the feedback)."""
    text = f"{from_units(to_units(points)):.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text

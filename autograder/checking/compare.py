"""Comparing a student's plain result with the reference's, with messages a student can act on.

:func:`compare` returns ``None`` when the values agree, else a :class:`~autograder.checking.disclosure.Problem`: what
differs as a fixed category, the public example's details (first differing entry, error magnitudes), and a hint only
when its diagnosis is confirmed on the student's own value. Nothing here sees student objects: both sides were decoded
from plain data first.

Diagnoses tried on every mismatch, after the check's own hints (each confirmed by recomputing the comparison on a
transformed student value): the values are right but the shape is not; the array is transposed; the sign is
flipped; the two entries of a pair are swapped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograder.checking.disclosure import (
    DIFFERS,
    INF,
    NAN,
    WRONG_DTYPE,
    WRONG_SHAPE,
    WRONG_TYPE,
    Problem,
    pronoun,
    said,
)
from autograder.checking.policy import Tolerance, tolerance
from autograder.runtime.codec import TensorData

# A check's own diagnosis: the student's and the reference's values -> a fixed sentence when confirmed, else None.
Hint = Callable[[Any, Any], "str | None"]

SHAPE_HINT = ("the values are right but the shape is not: (d,) is not (d, 1) or (1, d); use .ravel(), .squeeze() or "
              ".reshape(...) to give the result the documented shape.")
REORDERED_HINT = ("the values are right and in the right order, but the shape is not: the result holds the expected "
                  "entries laid out in another shape (a reshape is not a transpose); give it the documented shape.")
TRANSPOSED_HINT = "the result is transposed: the values are right but rows and columns are swapped."
SIGN_HINT = "the result has the wrong sign: it is exactly minus the expected one."
SWAPPED_HINT = "the two values are in the opposite order: the expected pair, swapped."


def describe(value: Any, show: bool = True) -> str:
    """A short, input-free description of a plain value's type (and, when ``show``, its shape or length)."""
    if isinstance(value, TensorData):
        return f"a torch tensor of shape {value.shape} and dtype {value.dtype}" if show else "a torch tensor"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape} and dtype {value.dtype}" if show else "a numpy array"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float)):
        return f"a number ({type(value).__name__})"
    if isinstance(value, tuple):
        return f"a tuple of length {len(value)}" if show else "a tuple"
    if isinstance(value, list):
        return f"a list of length {len(value)}" if show else "a list"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)}" if show else "a dict"
    return "None" if value is None else type(value).__name__


@dataclass(frozen=True)
class _Rule:
    """How closely values must agree: the policy's tolerance for a dtype (``iterative``: of many accumulated steps),
    or a check's own ``override``."""

    iterative: bool = False
    override: Tolerance | None = None

    def tol(self, dtype: str) -> Tolerance:
        return self.override or tolerance(dtype, self.iterative)


def compare(got: Any, want: Any, what: str, *, iterative: bool = False, hints: Sequence[Hint] = (),
            tolerance: Tolerance | None = None) -> Problem | None:
    """None if ``got`` matches ``want`` within the policy's tolerance (or ``tolerance``, a check's own), else what
    differs (``what`` names the result, without any value: it is shown on hidden cases too)."""
    problem = _compare(got, want, what, what, _Rule(iterative, tolerance))
    if problem is None:
        return None
    for hint in hints:
        try:
            extra = hint(got, want)
        except Exception:  # noqa: BLE001 - a hint that cannot apply says nothing
            extra = None
        if extra:
            return problem.with_hint(extra)
    return problem


def close(got: Any, want: Any, iterative: bool = False) -> bool:
    """Whether ``got`` matches ``want`` as :func:`compare` judges it."""
    return _compare(got, want, "", "", _Rule(iterative)) is None


def _compare(got: Any, want: Any, what: str, safe: str, rule: _Rule) -> Problem | None:
    """``what`` names the part for the public example (indices included), ``safe`` for any case (dict keys only)."""
    if isinstance(want, (TensorData, np.ndarray)):
        return _compare_array_like(got, want, what, safe, rule)
    if isinstance(want, bool) or want is None or isinstance(want, str):
        if got != want or type(got) is not type(want):
            return Problem(f"{said(safe, 'is not what was expected')}.",
                           f"{said(what, 'is')} {got!r}; expected {want!r}.")
        return None
    if isinstance(want, (int, float)):
        return _compare_number(got, want, what, safe, rule)
    if isinstance(want, (tuple, list)):
        return _compare_sequence(got, want, what, safe, rule)
    if isinstance(want, dict):
        return _compare_dict(got, want, what, safe, rule)
    return Problem(f"{safe} could not be compared.")


def _compare_array_like(got: Any, want: TensorData | np.ndarray, what: str, safe: str,
                        rule: _Rule) -> Problem | None:
    if isinstance(want, TensorData):
        if not isinstance(got, TensorData):
            return _type_problem(got, want, what, safe)
        if got.dtype != want.dtype:
            return Problem(f"{said(safe, WRONG_DTYPE)} (expected {want.dtype}).",
                           f"{said(what, 'has')} dtype {got.dtype}; expected {want.dtype}.")
        return _compare_arrays(got.array, want.array, what, safe, rule, want.dtype)
    if isinstance(got, TensorData):
        return Problem(f"{safe} should be a numpy array, not a torch tensor (use .detach().cpu().numpy()).")
    if not isinstance(got, np.ndarray):
        return _type_problem(got, want, what, safe)
    return _compare_arrays(got, want, what, safe, rule, str(want.dtype))


def _compare_number(got: Any, want: int | float, what: str, safe: str, rule: _Rule) -> Problem | None:
    number = _number(got)
    if number is None:
        return Problem(f"{said(safe, WRONG_TYPE)}: {pronoun(safe)} should be a number.",
                       f"{what} should be a number, not {describe(got)}.")
    if isinstance(want, int) and not float(number).is_integer():
        return Problem(f"{safe} should be a whole number (an int), not a fraction.",
                       f"{what} should be an int, not {number!r}.")
    if isinstance(want, int):
        dtype = "int64"
    else:
        narrow = _narrow_float(got)
        if narrow and narrow not in ACCEPTED_NARROW:
            return _narrow_problem(narrow, "float64", what, safe)
        dtype = narrow or "float64"
    return _compare_arrays(np.asarray(number, dtype=float), np.asarray(want, dtype=float), what, safe, rule,
                           dtype)


def _compare_sequence(got: Any, want: tuple | list, what: str, safe: str, rule: _Rule) -> Problem | None:
    kind = "tuple" if isinstance(want, tuple) else "list"
    if not isinstance(got, (tuple, list)) or len(got) != len(want):
        return Problem(f"{said(safe, WRONG_TYPE)}: {pronoun(safe)} should be a {kind} of the documented length.",
                       f"{what} should be a {kind} of length {len(want)}, not {describe(got)}.")
    for i, (g, w) in enumerate(zip(got, want)):
        problem = _compare(g, w, _part(what, f"item {i}"), safe, rule)
        if problem:
            return problem
    return None


def _compare_dict(got: Any, want: dict, what: str, safe: str, rule: _Rule) -> Problem | None:
    if not isinstance(got, dict):
        return Problem(f"{said(safe, WRONG_TYPE)}: {pronoun(safe)} should be a dict with keys {sorted(want)}.",
                       f"{what} should be a dict with keys {sorted(want)}, not {describe(got)}.")
    missing = sorted(set(want) - set(got))
    if missing:
        keys = f"the key {missing[0]!r}" if len(missing) == 1 else f"the keys {missing}"
        return Problem(f"{said(safe, 'is')} missing {keys}.")
    for key in want:
        problem = _compare(got[key], want[key], _part(what, repr(key)), _part(safe, repr(key)), rule)
        if problem:
            return problem
    return None


def _part(what: str, part: str) -> str:
    """A part of a named result, in prose: "in the gradients, 'dW_h'", "in the history, item 2 of 'train_loss'"
    (never a subscript: "the gradients['dW_h']" reads as code)."""
    match = re.fullmatch(r"in (.+?), (.+)", what, re.DOTALL)
    return f"in {match.group(1)}, {part} of {match.group(2)}" if match else f"in {what}, {part}"


def _type_problem(got: Any, want: Any, what: str, safe: str) -> Problem:
    return Problem(f"{said(safe, WRONG_TYPE)}: {pronoun(safe)} should be {describe(want, False)}.",
                   f"{what} should be {describe(want)}, not {describe(got)}.")


def _number(value: Any) -> float | int | None:
    """A plain number from a number, or from an array or tensor holding exactly one (as public tests accept)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    array = value.array if isinstance(value, TensorData) else value
    if isinstance(array, np.ndarray) and array.size == 1 and array.dtype.kind in "iuf":
        item = array.reshape(()).item()
        return item
    return None


def _narrow_float(got: Any) -> str:
    """The dtype of a float result narrower than float64 (an array, tensor or numpy scalar), else ""."""
    array = got.array if isinstance(got, TensorData) else got
    if isinstance(array, np.ndarray) and array.dtype.kind == "f" and array.dtype.itemsize < 8:
        return str(array.dtype)
    return ""


# A float64 result may come back as float32 (what public tests written with np.allclose accept): it is judged with
# float32's tolerance, never a looser one. A narrower float (float16) cannot hold what the checks compare.
ACCEPTED_NARROW = ("float32",)


def _narrow_problem(dtype: str, expected: str, what: str, safe: str) -> Problem:
    return Problem(f"{said(safe, WRONG_DTYPE)}: {dtype} is too narrow to be graded (expected {expected}).",
                   f"{said(what, 'has')} dtype {dtype}, too narrow to be graded; expected {expected}.")


def _compare_arrays(got: np.ndarray, want: np.ndarray, what: str, safe: str, rule: _Rule,
                    dtype: str) -> Problem | None:
    if got.shape != want.shape:
        return _shape_problem(got, want, what, safe, rule, dtype)
    if want.dtype.kind in "f" and got.dtype.kind not in "fc":
        return Problem(f"{said(safe, WRONG_DTYPE)}: {pronoun(safe)} should be floating point.",
                       f"{said(what, 'has')} integer dtype {got.dtype}; expected floating point ({want.dtype}).")
    if want.dtype.kind == "f" and got.dtype.kind == "f" and got.dtype.itemsize < want.dtype.itemsize:
        if str(got.dtype) not in ACCEPTED_NARROW:  # tolerance comes from the expectation, never from the answer
            return _narrow_problem(str(got.dtype), str(want.dtype), what, safe)
        dtype = str(got.dtype)
    if want.dtype.kind == "b":
        got, want = got.astype(bool), want.astype(bool)
    g = got.astype(np.float64) if got.dtype.kind not in "c" else got
    w = want.astype(np.float64) if want.dtype.kind not in "c" else want
    bad_nan = np.isnan(g) & ~np.isnan(w)
    if bad_nan.any():
        return Problem(f"{said(safe, NAN)}.", f"{said(what, NAN)} (first at index {_index(bad_nan)}).")
    bad_inf = np.isinf(g) & ~np.isinf(w)
    if bad_inf.any():
        return Problem(f"{said(safe, INF)}: overflow?",
                       f"{said(what, INF)} (first at index {_index(bad_inf)}): overflow?")
    ok = _agree(g, w, dtype, rule)
    if ok.all() and _value_free(g, w, dtype):
        ok = np.abs(w) <= 0  # zeros where the expectation is not numerically zero: no tolerance lets that pass
    if ok.all():
        return None
    return _value_problem(g, w, ok, what, safe, rule, dtype)


def _value_free(g: np.ndarray, w: np.ndarray, dtype: str) -> bool:
    """Whether an all-zero answer meets an expectation with an entry above the base (not iterative) tolerance of its
    dtype: a value-free answer, which no tolerance may let pass."""
    return g.size > 0 and not np.any(g) and bool(np.any(np.abs(w) > tolerance(dtype).atol))


def _shape_problem(got: np.ndarray, want: np.ndarray, what: str, safe: str, rule: _Rule,
                   dtype: str) -> Problem:
    """A shape that differs; a hint only for the one layout of the expected values the student's array is: the same
    entries with axes of length 1 added or dropped, the transpose, or the same entries in order in another shape."""
    problem = Problem(f"{said(safe, WRONG_SHAPE)}.", f"{said(what, 'has')} shape {got.shape}; expected {want.shape}.")
    if got.size != want.size:
        return problem
    reshaped = _equal(got.reshape(want.shape), want, dtype, rule)
    transposed = got.ndim == 2 and got.shape == want.shape[::-1] and _equal(got.T, want, dtype, rule)
    if reshaped and transposed:  # both readings fit (equal entries, a row or a column): no single diagnosis
        return problem
    if transposed:
        return problem.with_hint(TRANSPOSED_HINT)
    if reshaped:
        unit_axes = tuple(s for s in got.shape if s != 1) == tuple(s for s in want.shape if s != 1)
        return problem.with_hint(SHAPE_HINT if unit_axes else REORDERED_HINT)
    return problem


def _value_problem(g: np.ndarray, w: np.ndarray, ok: np.ndarray, what: str, safe: str, rule: _Rule,
                   dtype: str) -> Problem:
    """Values that differ: the public detail (where, how much), and a hint only when its diagnosis is confirmed."""
    tol = rule.tol(dtype)
    first = _index(~ok)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(g - w)
    finite = np.isfinite(diff)
    max_abs = float(np.max(diff[finite])) if finite.any() else float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = diff / np.maximum(np.abs(w), 1e-300)
    max_rel = float(np.max(rel[np.isfinite(rel)])) if np.isfinite(rel).any() else float("inf")
    where = f" at index {first}" if w.ndim else ""
    value = (f": got {_fmt(g[first] if w.ndim else g)}, expected {_fmt(w[first] if w.ndim else w)}")
    wrong = int((~ok).sum())
    count = f"{wrong} of {ok.size} entries {'differs' if wrong == 1 else 'differ'}; " if ok.size > 1 else ""
    problem = Problem(f"{said(safe, DIFFERS)}.",
                      f"{said(what, DIFFERS)}{where}{value} ({count}max abs error {max_abs:.3g}, max rel error "
                      f"{max_rel:.3g}; allowed rtol {tol.rtol:g}, atol {tol.atol:g}).")
    # each diagnosis must be the only reading of the student's value that gives the expected one
    found = []
    if g.ndim == 2 and g.shape[0] == g.shape[1] and g.shape[0] > 1 and _equal(g.T, w, dtype, rule):
        found.append(TRANSPOSED_HINT)
    if np.any(np.abs(w) > tol.atol) and _equal(-g, w, dtype, rule):
        found.append(SIGN_HINT)
    if g.shape == (2,) and not np.isclose(w[0], w[1]) and _equal(g[::-1], w, dtype, rule):
        found.append(SWAPPED_HINT)
    return problem.with_hint(found[0]) if len(found) == 1 else problem


def _agree(g: np.ndarray, w: np.ndarray, dtype: str, rule: _Rule) -> np.ndarray:
    tol = rule.tol(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(g - w)
        return (diff <= tol.atol + tol.rtol * np.abs(w)) | (np.isnan(g) & np.isnan(w)) | (g == w)


def _equal(got: np.ndarray, want: np.ndarray, dtype: str, rule: _Rule) -> bool:
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape or g.dtype.kind not in "biuf" or w.dtype.kind not in "biuf":
        return False
    return bool(_agree(g.astype(np.float64), w.astype(np.float64), dtype, rule).all())


def _index(mask: np.ndarray) -> tuple[int, ...] | int:
    idx = tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()
    return idx[0] if len(idx) == 1 else idx


def _fmt(x: Any) -> str:
    return f"{float(np.real(x)):.6g}"


# -- hints for mistakes students often make ---------------------------------------------------------

def factor_hint(factors: Sequence[tuple[str, float, str]]) -> Hint:
    """Hint when ``got`` is ``want`` times a known factor: ``[("n", n, "divide by n"), ...]``."""

    def hint(got: Any, want: Any) -> str | None:
        g, w = np.asarray(values(got), dtype=float), np.asarray(values(want), dtype=float)
        if g.shape != w.shape or not np.any(np.abs(w) > 1e-12):
            return None
        for label, factor, advice in factors:
            if np.allclose(g, factor * w, rtol=1e-6, atol=1e-12):
                return f"your result is exactly {label} times the expected one: {advice}."
        return None

    return hint


def values(value: Any) -> Any:
    """The numbers of a plain value (a tensor's array)."""
    return value.array if isinstance(value, TensorData) else value


def matches(got: Any, candidate: Any, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Whether the student's value equals a candidate computed in the grader (a hint's diagnosis)."""
    try:
        g, c = np.asarray(values(got), dtype=float), np.asarray(values(candidate), dtype=float)
    except (TypeError, ValueError):
        return False
    return g.shape == c.shape and bool(np.allclose(g, c, rtol=rtol, atol=atol))

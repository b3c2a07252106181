"""Comparing a student's plain result with the reference's, with messages a student can act on.

Each function returns ``None`` when the values agree, else a sentence for the feedback. Nothing here
sees student objects: both sides were decoded from plain data first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .policy import tolerance
from .runtime.codec import TensorData

Hint = Callable[[Any, Any], "str | None"]


def describe(value: Any) -> str:
    """A short, input-free description of a plain value's type and shape."""
    if isinstance(value, TensorData):
        return f"a torch tensor of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float)):
        return f"a number ({type(value).__name__})"
    if isinstance(value, tuple):
        return f"a tuple of length {len(value)}"
    if isinstance(value, list):
        return f"a list of length {len(value)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)}"
    return "None" if value is None else type(value).__name__


def compare(got: Any, want: Any, what: str, *, show_values: bool, iterative: bool = False,
            hints: Sequence[Hint] = ()) -> str | None:
    """None if ``got`` matches ``want`` within the policy's tolerance, else what differs."""
    problem = _compare(got, want, what, show_values, iterative)
    if problem is None:
        return None
    for hint in hints:
        try:
            extra = hint(got, want)
        except Exception:  # noqa: BLE001 - a hint that cannot apply says nothing
            extra = None
        if extra:
            return f"{problem} Hint: {extra}"
    return problem


def _compare(got: Any, want: Any, what: str, show: bool, iterative: bool) -> str | None:
    if isinstance(want, TensorData):
        if not isinstance(got, TensorData):
            return f"{what} should be {describe(want)}, but it is {describe(got)}."
        if got.dtype != want.dtype:
            return f"{what} has dtype {got.dtype}; expected {want.dtype}."
        return _compare_arrays(got.array, want.array, what, show, iterative, want.dtype)
    if isinstance(want, np.ndarray):
        if isinstance(got, TensorData):
            return f"{what} should be a numpy array, but it is a torch tensor (use .detach().cpu().numpy())."
        if not isinstance(got, np.ndarray):
            return f"{what} should be {describe(want)}, but it is {describe(got)}."
        return _compare_arrays(got, want, what, show, iterative, str(want.dtype))
    if isinstance(want, bool) or want is None or isinstance(want, str):
        if got != want or type(got) is not type(want):
            return f"{what} is {got!r}; expected {want!r}." if show else f"{what} is not what was expected."
        return None
    if isinstance(want, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"{what} should be a number, but it is {describe(got)}."
        if isinstance(want, int) and not isinstance(got, int):
            return f"{what} should be an int, but it is {describe(got)}."
        return _compare_arrays(np.asarray(got, dtype=float), np.asarray(want, dtype=float), what, show,
                               iterative, "float64" if isinstance(want, float) else "int64")
    if isinstance(want, (tuple, list)):
        kind = "tuple" if isinstance(want, tuple) else "list"
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"{what} should be a {kind} of length {len(want)}, but it is {describe(got)}."
        for i, (g, w) in enumerate(zip(got, want)):
            problem = _compare(g, w, f"{what}[{i}]", show, iterative)
            if problem:
                return problem
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return f"{what} should be a dict with keys {sorted(want)}, but it is {describe(got)}."
        missing = sorted(set(want) - set(got))
        if missing:
            return f"{what} is missing the key(s) {missing}."
        for key in want:
            problem = _compare(got[key], want[key], f"{what}[{key!r}]", show, iterative)
            if problem:
                return problem
        return None
    return f"{what} could not be compared."


def _compare_arrays(got: np.ndarray, want: np.ndarray, what: str, show: bool, iterative: bool,
                    dtype: str) -> str | None:
    if got.shape != want.shape:
        msg = f"{what} has shape {got.shape}; expected {want.shape}."
        if got.size == want.size:
            msg += " The numbers may be right but the shape is not: (d,) is not (d, 1); try .ravel() or .squeeze()."
        return msg
    if want.dtype.kind in "f" and got.dtype.kind not in "fc":
        return f"{what} has integer dtype {got.dtype}; expected floating point ({want.dtype})."
    if want.dtype.kind in "f" and got.dtype.itemsize < want.dtype.itemsize:
        return f"{what} has dtype {got.dtype}; expected {want.dtype} (lost precision)."
    if want.dtype.kind == "b":
        got, want = got.astype(bool), want.astype(bool)
    g = got.astype(np.float64) if got.dtype.kind not in "c" else got
    w = want.astype(np.float64) if want.dtype.kind not in "c" else want
    bad_nan = np.isnan(g) & ~np.isnan(w)
    if bad_nan.any():
        return f"{what} contains NaN where a finite value was expected (first at index {_index(bad_nan)})."
    bad_inf = np.isinf(g) & ~np.isinf(w)
    if bad_inf.any():
        return f"{what} contains inf where a finite value was expected (first at index {_index(bad_inf)}): overflow?"
    tol = tolerance(dtype, iterative)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(g - w)
        ok = (diff <= tol.atol + tol.rtol * np.abs(w)) | (np.isnan(g) & np.isnan(w)) | (g == w)
    if ok.all():
        return None
    first = _index(~ok)
    finite = np.isfinite(diff)
    max_abs = float(np.max(diff[finite])) if finite.any() else float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = diff / np.maximum(np.abs(w), 1e-300)
    max_rel = float(np.max(rel[np.isfinite(rel)])) if np.isfinite(rel).any() else float("inf")
    where = f" at index {first}" if want.ndim else ""
    msg = f"{what} differs from the expected values{where}"
    if show:
        msg += f": got {_fmt(g[first] if want.ndim else g)}, expected {_fmt(w[first] if want.ndim else w)}"
    return (f"{msg} ({int((~ok).sum())} of {ok.size} entries differ; max abs error {max_abs:.3g}, "
            f"max rel error {max_rel:.3g}; allowed rtol {tol.rtol:g}, atol {tol.atol:g}).")


def _index(mask: np.ndarray) -> tuple[int, ...] | int:
    idx = tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()
    return idx[0] if len(idx) == 1 else idx


def _fmt(x: Any) -> str:
    return f"{float(np.real(x)):.6g}"


# -- hints for mistakes students often make ---------------------------------------------------------

def factor_hint(factors: Sequence[tuple[str, float, str]]) -> Hint:
    """Hint when ``got`` is ``want`` times a known factor: ``[("n", n, "divide by n"), ...]``."""

    def hint(got: Any, want: Any) -> str | None:
        g, w = np.asarray(_values(got), dtype=float), np.asarray(_values(want), dtype=float)
        if g.shape != w.shape or not np.any(np.abs(w) > 1e-12):
            return None
        for label, factor, advice in factors:
            if np.allclose(g, factor * w, rtol=1e-6, atol=1e-12):
                return f"your result is exactly {label} times the expected one; {advice}."
        return None

    return hint


def _values(value: Any) -> Any:
    return value.array if isinstance(value, TensorData) else value

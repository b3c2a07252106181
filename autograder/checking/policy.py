"""Tolerances, seeds and devices: decided here, once, for every check.

- Tolerances depend on the dtype being compared: float64 results (numpy) must agree tightly, float32
  results (torch) more loosely, and results of many accumulated steps (training) get a documented factor.
- Seeds: every check runs on the public seed (which a student can reproduce; failures may show inputs)
  and on hidden seeds derived from the check's name and the course's private salt (its ``dlgrade.toml``, which
  ``dlgrade init`` writes, or ``DLGRADE_SEED_SALT``), so a notebook that hard-codes public answers fails. Hidden
  inputs are never printed.
- Devices: ``cpu`` always; ``cuda`` and ``mps`` when the grader's torch sees them.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder import settings

PUBLIC_SEED = 0
HIDDEN_SEED_COUNT = 2
# A check that trains the student's model (fit_cubic, train_classifier) costs seconds per seed: it runs on the public
# seed and one hidden seed, which already has inputs and a training seed no notebook can know.
TRAINING_HIDDEN_SEED_COUNT = 1


@dataclass(frozen=True)
class Tolerance:
    """``|got - want| <= atol + rtol * |want|`` elementwise."""

    rtol: float
    atol: float


TOLERANCES = {
    "float64": Tolerance(rtol=1e-7, atol=1e-9),
    "float32": Tolerance(rtol=1e-4, atol=1e-5),
    "float16": Tolerance(rtol=1e-2, atol=1e-3),
    "bfloat16": Tolerance(rtol=2e-2, atol=1e-2),
}
# Iterative results (trajectories, trained weights) compound rounding: both tolerances grow by this factor.
ITERATIVE_FACTOR = 100.0


def tolerance(dtype: str, iterative: bool = False) -> Tolerance:
    """Tolerance for comparing values of ``dtype`` (integers and booleans compare exactly)."""
    base = TOLERANCES.get(dtype.removeprefix("torch."), Tolerance(0.0, 0.0))
    if iterative and base.rtol:
        return Tolerance(base.rtol * ITERATIVE_FACTOR, base.atol * ITERATIVE_FACTOR)
    return base


def seeds(check_name: str, hidden_count: int = HIDDEN_SEED_COUNT, salt: str | None = None) -> list[tuple[int, bool]]:
    """``(seed, public)`` pairs for one check: the public seed first, then the hidden ones, derived from the check's
    name and the course's ``salt`` (default: ``DLGRADE_SEED_SALT``, else dlgrade's public default)."""
    salt = settings.current().seed_salt if salt is None else salt
    hidden = []
    for i in range(hidden_count):
        digest = hashlib.sha256(f"{salt}:{check_name}:{i}".encode()).digest()
        hidden.append((1000 + int.from_bytes(digest[:4], "little") % 1_000_000, False))
    return [(PUBLIC_SEED, True), *hidden]


@functools.lru_cache(maxsize=1)
def devices() -> tuple[str, ...]:
    """Devices every torch check runs on: ``cpu`` plus ``cuda``/``mps`` when present.

    ``DLGRADE_DEVICES=cpu`` (comma-separated) restricts the list, e.g. to grade a GPU course on a laptop.
    """
    found = ["cpu"]
    if not any(Path("/dev").glob("nvidia[0-9]*")) and sys.platform != "darwin":
        return _restrict(found)  # no GPU here: no need to import torch to ask
    try:
        import torch

        if torch.cuda.is_available():
            found.append("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            found.append("mps")
    except ImportError:
        pass
    return _restrict(found)


def _restrict(found: list[str]) -> tuple[str, ...]:
    wanted = settings.current().devices
    return tuple(d for d in found if wanted is None or d in wanted)

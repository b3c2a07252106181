"""The check API a course's ``checks/<id>.py`` is written in: an assignment's :class:`Suite` of checks, each a plain
function taking a :class:`~autograder.checking.trial.Trial` and registered with the name of the function it grades,
and the catalogue the tests grade: known mistakes, their near misses, and correct variants.

How a check is run is ``trial``; the student's and the reference's side ``sides``; the wording of student errors
``messages``; comparison ``compare``; what a hidden case may show ``disclosure``; tolerances and seeds ``policy``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from autograder.checking import policy

if TYPE_CHECKING:
    from autograder.checking.trial import Trial


@dataclass
class Check:
    """One grading test of one function."""

    function: str
    description: str
    run: Callable[[Trial], None]
    seeded: bool = True
    on_devices: bool = False
    seconds: float | None = None
    advisory: bool = False  # observed only inside the student's process, so it could be forged: no points
    trains: bool = False  # trains the student's model: one hidden seed (policy.TRAINING_HIDDEN_SEED_COUNT)
    probes: str = ""  # the assignment's probe module: ``t.probe("fit")`` means ``t.probe(f"{probes}.fit")``
    salt: str | None = None  # the course's seed salt (None: DLGRADE_SEED_SALT, else the public default)

    @property
    def name(self) -> str:
        return f"{self.function}: {self.description}" + (" (advisory, no points)" if self.advisory else "")

    @property
    def runs(self) -> list[tuple[int, bool]]:
        """The ``(seed, public)`` pairs this check runs on: the public seed, then the hidden ones."""
        if not self.seeded:
            return [(policy.PUBLIC_SEED, True)]
        count = policy.TRAINING_HIDDEN_SEED_COUNT if self.trains else policy.HIDDEN_SEED_COUNT
        return policy.seeds(self.name, count, self.salt)


@dataclass(frozen=True)
class Mistake:
    """A known mistake: the cells it replaces and the words its feedback must contain."""

    function: str  # the function it is a mistake in: the only one that may lose points
    cells: dict[str, str]  # grade_id -> replacement cell source
    feedback: str  # a fragment the feedback of ``function`` must contain
    typical: bool = False  # one of the demo's and the benchmark's "typical mistakes" submissions
    advisory: bool = False  # caught by an advisory check only: reported, but costs no points


@dataclass(frozen=True)
class NearMiss:
    """A plausible mistake beside a catalogued one: the same symptom, another cause. It loses points on its own
    function, and its feedback must not carry the catalogued mistake's hint (``wrong_hint``), whose diagnosis it
    does not share; ``feedback``, when given, is a fragment it must get instead."""

    name: str  # what the student did
    function: str
    cells: dict[str, str]  # grade_id -> replacement cell source
    wrong_hint: str  # a fragment of the hint it must not get
    feedback: str = ""


@dataclass(frozen=True)
class Variant:
    """A correct way to write something the contract allows (the fairness corpus): it must get full marks."""

    name: str
    cells: dict[str, str]  # grade_id -> replacement cell source


def mistake(function: str, code: str | dict[str, str], feedback: str, **flags: bool) -> Mistake:
    """A :class:`Mistake` replacing ``function``'s own cell with ``code`` (or several cells by grade_id)."""
    return Mistake(function, code if isinstance(code, dict) else {function: code}, feedback, **flags)


@dataclass
class Suite:
    """All checks of one assignment, in order, which functions the contract chains together, and the catalogue
    of known mistakes and correct variants the tests (and the demo) grade."""

    assignment: str = ""  # set by the course from the file's place (checks/<id>.py)
    notebook: str = ""  # likewise: the one notebook in source/<id>/
    # function -> the graded helpers it calls: judged with the reference's helper when that helper fails its own
    # checks (follow-through credit)
    depends: dict[str, list[str]] = field(default_factory=dict)
    # function -> graded functions a mistake in which may cost it too, because no follow-through is possible: it
    # reads their output without calling them, or calls them on objects that cannot cross to the grader as data
    coupled: dict[str, list[str]] = field(default_factory=dict)
    mistakes: list[Mistake] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    near_misses: list[NearMiss] = field(default_factory=list)  # beside the mistakes: same symptom, another cause
    checks: list[Check] = field(default_factory=list)
    preload: tuple[str, ...] = ()  # modules the probes need in the sandbox (the notebook's imports are added)
    warm_torch: bool = False  # the probes train with optimizers: pay torch's lazy imports once per worker

    def bind(self, assignment: str, notebook: str, probes: str, salt: str | None = None) -> None:
        """Tell the suite which assignment it grades and the course's seed salt (the course does, when it loads
        checks/<id>.py)."""
        self.assignment, self.notebook = assignment, notebook
        for check in self.checks:
            check.probes, check.salt = probes, salt

    def groups(self, functions: Collection[str]) -> list[list[str]]:
        """``functions`` (in suite order) in groups closed under :attr:`depends`: a function and the helpers it
        calls, whose own verdicts decide its follow-through, are judged one after another on one student process;
        different groups may be judged at once, in different sandboxes."""
        wanted = [f for f in self.functions if f in functions]
        group = {f: {f} for f in wanted}
        for function in wanted:
            for helper in self.depends.get(function, []):
                if helper in group and group[helper] is not group[function]:
                    merged = group[function] | group[helper]
                    for member in merged:
                        group[member] = merged
        found: list[list[str]] = []
        for function in wanted:
            if not any(function in g for g in found):
                found.append([f for f in wanted if f in group[function]])
        return found

    @staticmethod
    def near_miss(name: str, function: str, code: str | dict[str, str], wrong_hint: str,
                  feedback: str = "") -> NearMiss:
        """A :class:`NearMiss` replacing ``function``'s own cell with ``code`` (or several cells by grade_id), for
        ``SUITE.near_misses`` (checks import the public API only: ``near_miss = SUITE.near_miss``)."""
        return NearMiss(name, function, code if isinstance(code, dict) else {function: code}, wrong_hint, feedback)

    @property
    def typical_mistakes(self) -> dict[str, str]:
        """grade_id -> replacement cell: the catalogue's typical mistakes in one submission (demo, benchmark)."""
        cells: dict[str, str] = {}
        for m in self.mistakes:
            if m.typical:
                cells.update(m.cells)
        return cells

    def check(self, function: str, description: str, *, seeded: bool = True, on_devices: bool = False,
              seconds: float | None = None, advisory: bool = False, trains: bool = False,
              ) -> Callable[[Callable[[Trial], None]], Callable[[Trial], None]]:
        """Register the decorated ``fn(t: Trial)`` as a check of ``function`` (``advisory``: reported, no points)."""

        def register(fn: Callable[[Trial], None]) -> Callable[[Trial], None]:
            bound = (self.checks[0].probes, self.checks[0].salt) if self.checks else ("", None)
            self.checks.append(Check(function, description, fn, seeded, on_devices, seconds, advisory, trains, *bound))
            return fn

        return register

    def inputs_unchanged(self, function: str, make_args: Callable[[Trial], tuple[list, dict]]) -> None:
        """Register an advisory check that ``function`` leaves its array arguments as they were (the contract's
        general rule). Only the student's process sees its arguments after the call, so the observation could be
        forged: the check is reported but carries no points."""

        def leaves_its_inputs_unchanged(t: Trial) -> None:
            args, kwargs = make_args(t)
            changed = t.changed_inputs(function, *args, **kwargs)
            if changed:
                inputs = f"input {changed[0]}" if len(changed) == 1 else f"inputs {', '.join(changed)}"
                t.fail(f"{function} changed its {inputs} in place. Work on a copy (e.g. "
                       f"`{changed[0]} = {changed[0]}.copy()`) or build a new array instead: the caller still needs "
                       "the original.")

        leaves_its_inputs_unchanged.__name__ = f"{function}_leaves_its_inputs_unchanged"
        self.check(function, "leaves its inputs unchanged", seeded=False, advisory=True)(leaves_its_inputs_unchanged)

    def stubs(self, function: str, failed: Collection[str]) -> list[str]:
        """Follow-through: the helpers of ``function`` (:attr:`depends`) among the ``failed`` functions, whose
        reference versions take their place while ``function`` is judged."""
        return [h for h in self.depends.get(function, []) if h in failed]

    @property
    def functions(self) -> list[str]:
        return list(dict.fromkeys(c.function for c in self.checks))

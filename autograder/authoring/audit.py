"""``dlgrade audit``: how strong an assignment's checks are, by mutation testing.

Small bugs are planted in the reference (``solutions/<id>.py``), one per mutant, in each graded function or class (for a
class: its methods), with operators suited to numeric and deep-learning code (:data:`OPERATORS`). Each mutant becomes a
submission: the full-marks notebook with that function's solution cell followed by the reference's imports, helpers and
the mutated definition. All of them are graded in one batch, through the sandbox, with the course's real checks
(:func:`~autograder.grading.batch.grade_course` on a temporary copy of the assignment's definition). A mutant that loses
points is caught; one that keeps full marks survived: a bug the checks miss, or a program equivalent to the reference.
An instructor who judges a survivor equivalent records it, with the reason, in ``checks/<id>.equivalent.toml``::

    [[equivalent]]
    mutant = "mse_loss: return float(r @ r / (2 * len(y)))  ->  return float(r @ r / (2 * len(y) + 1))"
    reason = "..."

and later audits list it apart. A mutant's id is its one-line diff: the changed line of the unparsed definition
(docstrings, annotations and comments left out, so reformatting the reference keeps the ids).
"""

from __future__ import annotations

import ast
import copy
import difflib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.course import SALT_FILE, Assignment, Course, CourseError

if TYPE_CHECKING:
    from autograder.sandbox import Limits

# The default cap: an assignment's audit grades at most this many mutants (a deterministic sample, shared fairly
# between its functions). Every mutant is a whole submission, graded with all of the assignment's checks, so its
# cost is that of grading one student: about 0.3 s for a numpy assignment, 1-5 s for one whose checks train a model.
# 150 grades every mutant of the built-in numpy assignments; an assignment with a check that trains
# (``Check.trains``) is capped at TRAINING_CAP, which keeps its audit within a few minutes on two cores.
DEFAULT_CAP = 150
TRAINING_CAP = 60
EQUIVALENT_SUFFIX = ".equivalent.toml"
CONTROL = "control"  # the student name of the unmutated reference


class AuditError(CourseError):
    """The audit cannot be made: the reference cannot stand in the notebook, or a file of the course is wrong."""


# -- mutants -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mutant:
    """One planted bug: ``function`` (a graded name) redefined by ``source``; ``id`` is the one-line diff."""

    id: str
    function: str
    operator: str
    source: str


@dataclass
class _Context:
    """What the operators need to know about the definition being mutated."""

    modules: frozenset[str]  # names the reference module binds by importing (np, torch, nn, ...)
    parents: dict[int, ast.AST]  # id(node) -> its parent
    first_bound: dict[int, dict[str, int]]  # id(function) -> name -> first line that binds it (parameters: the def's)
    assigned: dict[int, set[str]]  # id(function) -> the names an assignment statement binds (values it computed)
    enclosing: dict[int, ast.AST]  # id(node) -> the innermost function holding it

    def bound_before(self, node: ast.AST) -> dict[str, int]:
        """Local names of the enclosing function bound (first) on a line before ``node``'s, parameters included."""
        function = self.enclosing.get(id(node))
        if function is None:
            return {}
        return {n: line for n, line in self.first_bound[id(function)].items() if line < node.lineno}


_ARITH: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
                            ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult}
_COMPARE: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                              ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
                              ast.NotIn: ast.In}
# reductions and their elementwise relatives, by attribute name (np.mean, x.mean(), torch.max, ...)
_REDUCTIONS = {"mean": "sum", "sum": "mean", "nanmean": "nansum", "nansum": "nanmean", "max": "min", "min": "max",
               "amax": "amin", "amin": "amax", "maximum": "minimum", "minimum": "maximum", "argmax": "argmin",
               "argmin": "argmax", "prod": "sum", "std": "var", "var": "std", "cumsum": "cumprod"}
_BUILTIN_REDUCTIONS = {"max": "min", "min": "max"}
_AXIS_KEYWORDS = ("axis", "dim")
_KEEPDIMS = ("keepdims", "keepdim")
# methods whose first positional argument, when a whole number, is a dimension (x.mean(0), out.squeeze(-1))
_DIM_METHODS = {"mean", "sum", "std", "var", "max", "min", "argmax", "argmin", "amax", "amin", "prod", "squeeze",
                "unsqueeze", "softmax", "log_softmax", "cumsum", "flatten", "norm", "logsumexp"}
# method calls dropped, keeping what they were called on: devices, dtypes, copies, modes, shapes, seeding
_DROP_METHODS = {"to", "cpu", "cuda", "float", "double", "half", "long", "detach", "clone", "copy", "contiguous",
                 "eval", "train", "squeeze", "unsqueeze", "reshape", "view", "flatten", "ravel", "numpy", "item",
                 "manual_seed", "requires_grad_"}
# calls dropped, keeping their first argument: conversions, and the elementwise functions of a formula
_DROP_BUILTINS = {"float", "int", "bool", "abs", "list", "tuple"}
_DROP_FUNCTIONS = {"asarray", "array", "as_tensor", "tensor", "from_numpy", "abs", "sigmoid", "relu", "tanh", "exp",
                   "log", "log1p", "sqrt", "squeeze", "ravel", "copy"}
_SEEDING = {"manual_seed", "default_rng", "seed", "RandomState"}
_TRANSPOSE_METHODS = {"t", "transpose", "permute", "swapaxes"}
_TRANSPOSE_FUNCTIONS = {"transpose", "t"}


def _arguments(function: ast.AST) -> list[ast.arg]:
    a = function.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []), *([a.kwarg] if a.kwarg else [])]


def _call_name(node: ast.Call) -> tuple[str, ast.expr | None]:
    """A call's function name and what it is an attribute of (None for a plain name)."""
    if isinstance(node.func, ast.Attribute):
        return node.func.attr, node.func.value
    if isinstance(node.func, ast.Name):
        return node.func.id, None
    return "", None


def _is_module(node: ast.expr | None, ctx: _Context) -> bool:
    return isinstance(node, ast.Name) and node.id in ctx.modules


def _int(node: ast.AST) -> int | None:
    """The value of a whole-number literal (``3``, ``-1``), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _with(node: ast.AST, **changes: object) -> ast.AST:
    """A copy of ``node`` with some fields changed."""
    new = copy.deepcopy(node)
    for name, value in changes.items():
        setattr(new, name, value)
    return new


# Each operator maps a node to its replacements: nodes, or for a statement a list of statements (spliced in).

def _arithmetic(node: ast.AST, ctx: _Context) -> list:
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _ARITH:
        return [_with(node, op=_ARITH[type(node.op)]())]
    return []


def _unary(node: ast.AST, ctx: _Context) -> list:
    return [copy.deepcopy(node.operand)] if isinstance(node, ast.UnaryOp) else []


def _constant(node: ast.AST, ctx: _Context) -> list:
    if not isinstance(node, ast.Constant):
        return []
    value = node.value
    if isinstance(value, bool):
        return [ast.Constant(not value)]
    if isinstance(value, int):
        return [ast.Constant(value + 1)]
    if isinstance(value, float):
        return [ast.Constant(value * 2 if value else 1.0)]
    return []


def _reduction(node: ast.AST, ctx: _Context) -> list:
    if not isinstance(node, ast.Call):
        return []
    name, owner = _call_name(node)
    if owner is not None and name in _REDUCTIONS:
        return [_with(node, func=_with(node.func, attr=_REDUCTIONS[name]))]
    if owner is None and name in _BUILTIN_REDUCTIONS:
        return [_with(node, func=ast.Name(_BUILTIN_REDUCTIONS[name], ast.Load()))]
    return []


def _other_axis(value: int) -> int:
    return 1 if value == 0 else 0


def _axis(node: ast.AST, ctx: _Context) -> list:
    """An axis or dim argument dropped (reduce over everything) or moved to another axis; keepdims dropped."""
    if not isinstance(node, ast.Call):
        return []
    out = []
    for i, keyword in enumerate(node.keywords):
        if keyword.arg in _AXIS_KEYWORDS or keyword.arg in _KEEPDIMS:
            out.append(_with(node, keywords=[k for j, k in enumerate(node.keywords) if j != i]))
        value = _int(keyword.value)
        if keyword.arg in _AXIS_KEYWORDS and value is not None:
            moved = ast.keyword(keyword.arg, ast.Constant(_other_axis(value)))
            out.append(_with(node, keywords=[moved if j == i else k for j, k in enumerate(node.keywords)]))
    name, owner = _call_name(node)
    if owner is not None and not _is_module(owner, ctx) and name in _DIM_METHODS and node.args:
        value = _int(node.args[0])
        if value is not None:
            out.append(_with(node, args=node.args[1:]))
            out.append(_with(node, args=[ast.Constant(_other_axis(value)), *node.args[1:]]))
    return out


def _transpose(node: ast.AST, ctx: _Context) -> list:
    if isinstance(node, ast.Attribute) and node.attr in ("T", "mT") and isinstance(node.ctx, ast.Load):
        return [copy.deepcopy(node.value)]
    if not isinstance(node, ast.Call):
        return []
    name, owner = _call_name(node)
    if owner is not None and not _is_module(owner, ctx) and name in _TRANSPOSE_METHODS:
        return [copy.deepcopy(owner)]
    if _is_module(owner, ctx) and name in _TRANSPOSE_FUNCTIONS and node.args:
        return [copy.deepcopy(node.args[0])]
    return []


def _comparison(node: ast.AST, ctx: _Context) -> list:
    if isinstance(node, ast.BoolOp):
        return [_with(node, op=ast.Or() if isinstance(node.op, ast.And) else ast.And())]
    if not isinstance(node, ast.Compare):
        return []
    return [_with(node, ops=[_COMPARE[type(o)]() if j == i else o for j, o in enumerate(node.ops)])
            for i, op in enumerate(node.ops) if type(op) in _COMPARE]


def _target_names(target: ast.expr) -> list[str] | None:
    """The names an assignment target binds; None when it also stores into an attribute or an item."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        parts = [_target_names(e) for e in target.elts]
        return None if any(p is None for p in parts) else [n for p in parts for n in p]
    return None


def _binds_fresh_names(node: ast.stmt, ctx: _Context) -> bool:
    """An assignment whose every target is a name bound nowhere before it: dropping it is a NameError, no more."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)):
        return False
    parts = [_target_names(t) for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    if any(p is None for p in parts):
        return False
    before = ctx.bound_before(node)
    return all(name not in before for p in parts for name in p)


def _statement(node: ast.AST, ctx: _Context) -> list:
    """A statement of a function body dropped (``optimizer.zero_grad()``, ``torch.manual_seed(seed)``,
    ``model.train()``, a loop, an assignment that rebinds a name)."""
    if not isinstance(node, ast.stmt) or id(node) not in ctx.enclosing:
        return []
    if isinstance(node, (ast.Return, ast.Pass, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    if _binds_fresh_names(node, ctx):
        return []
    return [[ast.Pass()]]


def _context_manager(node: ast.AST, ctx: _Context) -> list:
    """A ``with`` block run without its context (``torch.no_grad()``)."""
    return [copy.deepcopy(node.body)] if isinstance(node, ast.With) else []


def _is_statement_call(node: ast.Call, ctx: _Context) -> bool:
    return isinstance(ctx.parents.get(id(node)), ast.Expr)


def _call(node: ast.AST, ctx: _Context) -> list:
    """A call dropped: ``x.to(device)`` -> ``x``, ``model.eval()`` -> ``model``, ``float(v)`` -> ``v``,
    ``np.abs(z)`` -> ``z``; and each keyword argument dropped (``generator=...``, ``dtype=float``)."""
    if not isinstance(node, ast.Call):
        return []
    out = [_with(node, keywords=[k for j, k in enumerate(node.keywords) if j != i])
           for i, keyword in enumerate(node.keywords) if keyword.arg is not None]
    if _is_statement_call(node, ctx):
        return out  # a call made for its effect: dropping the statement is the mutant
    name, owner = _call_name(node)
    if owner is not None and not _is_module(owner, ctx) and name in _DROP_METHODS:
        out.append(copy.deepcopy(owner))
    keeps_argument = (owner is None and name in _DROP_BUILTINS) or (_is_module(owner, ctx) and name in _DROP_FUNCTIONS)
    if keeps_argument and node.args and not isinstance(node.args[0], ast.Starred) and not _rebinds(node, ctx):
        out.append(copy.deepcopy(node.args[0]))
    return out


def _rebinds(node: ast.Call, ctx: _Context) -> bool:
    """``z = np.asarray(z)``: without the call it would read ``z = z``, the statement dropped (made already)."""
    parent = ctx.parents.get(id(node))
    return (isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(node.args[0], ast.Name)
            and _target_names(parent.targets[0]) == [node.args[0].id])


def _seeding(node: ast.AST, ctx: _Context) -> list:
    """A generator seeded with a constant instead of its seed."""
    if not isinstance(node, ast.Call) or not node.args or isinstance(node.args[0], ast.Constant):
        return []
    name, _ = _call_name(node)
    return [_with(node, args=[ast.Constant(0), *node.args[1:]])] if name in _SEEDING else []


def _earlier_value(node: ast.AST, ctx: _Context) -> list:
    """``return expr`` -> ``return name`` for each local name bound before it (not a parameter)."""
    if not isinstance(node, ast.Return) or node.value is None:
        return []
    assigned = ctx.assigned.get(id(ctx.enclosing.get(id(node))), set())
    names = sorted(ctx.bound_before(node).items(), key=lambda item: (item[1], item[0]))
    returned = node.value.id if isinstance(node.value, ast.Name) else None
    return [ast.Return(ast.Name(name, ast.Load())) for name, _ in names if name in assigned and name != returned]


# name -> operator, in the order mutants are made (a syntactic duplicate keeps the first operator's name)
OPERATORS: dict[str, Callable[[ast.AST, _Context], list]] = {
    "arithmetic": _arithmetic, "unary": _unary, "constant": _constant, "reduction": _reduction, "axis": _axis,
    "transpose": _transpose, "comparison": _comparison, "statement": _statement, "context": _context_manager,
    "call": _call, "seed": _seeding, "return": _earlier_value,
}


def _clean(definition: ast.AST) -> ast.AST:
    """A copy of a definition without docstrings or annotations (neither changes what it computes; annotations may
    name what only the reference's module imports)."""
    definition = copy.deepcopy(definition)
    for node in ast.walk(definition):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
        if not isinstance(node, ast.ClassDef):
            node.returns = None
            for argument in _arguments(node):
                argument.annotation = None
    return definition


def _context(definition: ast.AST, modules: frozenset[str]) -> _Context:
    parents = {id(child): parent for parent in ast.walk(definition) for child in ast.iter_child_nodes(parent)}
    first_bound: dict[int, dict[str, int]] = {}
    assigned: dict[int, set[str]] = {}
    enclosing: dict[int, ast.AST] = {}
    functions = [n for n in ast.walk(definition) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for function in functions:  # outer first: an inner function's nodes end up its own
        bound = first_bound.setdefault(id(function), {a.arg: function.lineno for a in _arguments(function)})
        values = assigned.setdefault(id(function), set())
        for node in (n for body_node in function.body for n in ast.walk(body_node)):
            enclosing[id(node)] = function
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                bound[node.id] = min(bound.get(node.id, node.lineno), node.lineno)
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                values.update(n for t in targets for n in _target_names(t) or [])
    return _Context(modules, parents, first_bound, assigned, enclosing)


def _replace(tree: ast.AST, target: ast.AST, replacement: ast.AST | list) -> None:
    """Put ``replacement`` (a node, or statements spliced into a body) where ``target`` is in ``tree``."""
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, name, replacement)
                return
            if isinstance(value, list) and any(item is target for item in value):
                i = next(i for i, item in enumerate(value) if item is target)
                spliced = replacement if isinstance(replacement, list) else [replacement]
                value[i:i + 1] = spliced
                if not value and name in ("body", "orelse", "finalbody"):
                    value.append(ast.Pass())
                return
    raise ValueError("the node to mutate is not in the tree")


def _diff(original: str, mutated: str) -> tuple[str, str]:
    """The changed line before and after (lines compared without their indentation; more than one changed line is
    shown as its first one and ``...``)."""
    old = [line.strip() for line in original.splitlines()]
    new = [line.strip() for line in mutated.splitlines()]
    changes = [op for op in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes() if op[0] != "equal"]
    if not changes:
        return "", ""
    _, i1, i2, j1, j2 = changes[0]

    def shown(lines: list[str], empty: str) -> str:
        if not lines:
            return empty
        return lines[0] + (" ..." if len(lines) > 1 or len(changes) > 1 else "")

    return shown(old[i1:i2], "(nothing)"), shown(new[j1:j2], "(removed)")


def _label(name: str, definition: ast.AST, node: ast.AST, ctx: _Context) -> str:
    """``function``, or ``Class.method`` for a node in a class's method."""
    if not isinstance(definition, ast.ClassDef):
        return name
    function = ctx.enclosing.get(id(node))
    while function is not None and ctx.parents.get(id(function)) is not definition:
        function = ctx.enclosing.get(id(ctx.parents.get(id(function))))
    return f"{name}.{function.name}" if function is not None else name


def mutate(name: str, definition: ast.AST, modules: frozenset[str] = frozenset()) -> list[Mutant]:
    """Every mutant of one top-level definition (a function, or a class and its methods): each operator at each
    node it applies to, one change per mutant, syntactic duplicates and no-ops dropped, in a fixed order."""
    definition = _clean(definition)
    ctx = _context(definition, modules)
    original = ast.unparse(definition)
    nodes = list(ast.walk(definition))
    seen, ids, found = {original}, set(), []
    for index, node in enumerate(nodes):
        for operator, make in OPERATORS.items():
            for replacement in make(node, ctx):
                tree = copy.deepcopy(definition)
                _replace(tree, list(ast.walk(tree))[index], replacement)
                source = ast.unparse(ast.fix_missing_locations(tree))
                if source in seen or not _compiles(source):
                    continue
                seen.add(source)
                before, after = _diff(original, source)
                mutant_id = _unique(f"{_label(name, definition, node, ctx)}: {before}  ->  {after}", ids)
                found.append(Mutant(mutant_id, name, operator, source))
    return found


def _compiles(source: str) -> bool:
    try:
        compile(source, "<mutant>", "exec")
    except SyntaxError:
        return False
    return True


def _unique(text: str, taken: set[str]) -> str:
    candidate, k = text, 1
    while candidate in taken:
        k += 1
        candidate = f"{text} ({k})"
    taken.add(candidate)
    return candidate


@dataclass
class Reference:
    """The parts of a reference module a mutant's cell is made of."""

    imports: str  # its top-level imports (``from __future__`` left out)
    helpers: str  # its other top-level definitions and constants (a class a graded function uses, say)
    definitions: dict[str, ast.AST]  # graded name -> its top-level definition
    modules: frozenset[str]  # the names its imports bind


def read_reference(path: Path, functions: Sequence[str]) -> Reference:
    """Parse the reference module ``path`` for the graded ``functions``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError) as err:
        raise AuditError(f"{path} could not be read: {err}") from err
    imports, helpers, definitions, modules = [], [], {}, set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", "") != "__future__":
            imports.append(ast.unparse(node))
            modules.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in functions:
                definitions[node.name] = node
            else:
                helpers.append(ast.unparse(_clean(node)))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            helpers.append(ast.unparse(node))
    return Reference("\n".join(imports), "\n\n\n".join(helpers), definitions, frozenset(modules))


def make_mutants(assignment: Assignment) -> tuple[Reference, dict[str, list[Mutant]]]:
    """The reference of ``assignment`` and every mutant of each graded function found at its top level."""
    functions = assignment.suite.functions
    reference = read_reference(assignment.reference_path, functions)
    return reference, {f: mutate(f, reference.definitions[f], reference.modules) if f in reference.definitions else []
                       for f in functions}


def default_cap(assignment: Assignment) -> int:
    """The cap of an assignment's audit: :data:`TRAINING_CAP` when a check trains a model, else :data:`DEFAULT_CAP`."""
    return TRAINING_CAP if any(c.trains for c in assignment.suite.checks) else DEFAULT_CAP


def sample(mutants: dict[str, list[Mutant]], cap: int | None, seed: int = 0) -> dict[str, list[Mutant]]:
    """At most ``cap`` mutants in all (None: every one), shared fairly between the functions (each gets an equal
    share; what a function does not need goes to the others), each function's drawn with ``random.Random`` seeded
    by ``seed`` and its name, kept in the order they were made. Deterministic for a given seed."""
    if cap is None or sum(len(m) for m in mutants.values()) <= cap:
        return {f: list(m) for f, m in mutants.items()}
    shares = dict.fromkeys(mutants, 0)
    left = cap
    while left > 0:
        hungry = [f for f in mutants if shares[f] < len(mutants[f])]
        if not hungry:
            break
        each = max(1, left // len(hungry))
        for f in hungry:
            give = min(each, len(mutants[f]) - shares[f], left)
            shares[f] += give
            left -= give
    chosen = {}
    for f, found in mutants.items():
        keep = set(random.Random(f"{seed}:{f}").sample(range(len(found)), shares[f]))
        chosen[f] = [m for i, m in enumerate(found) if i in keep]
    return chosen


# -- the submissions ---------------------------------------------------------------------------------------------------

def _defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a written answer (markdown) or a broken cell
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name
               for n in tree.body)


def _cell_of(function: str, solved: dict[str, str]) -> str | None:
    """The solution cell that defines ``function``: the one named after it, else the first that defines it."""
    if function in solved and _defines(solved[function], function):
        return function
    return next((grade_id for grade_id, source in solved.items() if _defines(source, function)), None)


def _stand_in(reference: Reference, definitions: Sequence[str]) -> str:
    parts = ["# dlgrade audit: the reference's imports, helpers and definition", reference.imports,
             reference.helpers, *definitions]
    return "\n\n\n".join(p for p in parts if p) + "\n"


def submission(assignment: Assignment, reference: Reference, definitions: dict[str, str],
               solved: dict[str, str] | None = None) -> object:
    """The full-marks notebook with each graded function in ``definitions`` (name -> source) standing in: its
    solution cell followed by the reference's imports, helpers and that definition (a last cell when no solution
    cell defines it)."""
    from autograder.authoring import samples

    solved = samples.solved_cells(assignment) if solved is None else solved
    by_cell: dict[str | None, list[str]] = {}
    for function, source in definitions.items():
        by_cell.setdefault(_cell_of(function, solved), []).append(source)
    replace = {cell: f"{solved[cell].rstrip()}\n\n\n{_stand_in(reference, sources)}"
               for cell, sources in by_cell.items() if cell is not None}
    extra = [_stand_in(reference, by_cell[None])] if None in by_cell else []
    return samples.build(assignment, replace, extra)


def _copy_definition(assignment: Assignment, root: Path) -> Course:
    """A course folder at ``root`` holding ``assignment``'s definition only (copies, not links: the course's
    secrets stay outside the sandbox's view as usual), with no submissions."""
    from autograder.course import CONFIG

    course = assignment.course
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(course.root / CONFIG, root / CONFIG)
    if (course.root / SALT_FILE).is_file():
        shutil.copy2(course.root / SALT_FILE, root / SALT_FILE)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for stage in ("source", "release"):
        folder = course.folder(stage) / assignment.id
        if folder.is_dir():
            shutil.copytree(folder, root / course.directories[f"{stage}_directory"] / assignment.id, ignore=ignore)
    others = set(course.assignments()) - {assignment.id}
    for kind in ("solutions", "checks", "probes"):  # the assignment's own files, and modules they may share
        for path in sorted((course.root / kind).glob("*.py")):
            if path.stem not in others:
                (root / kind).mkdir(exist_ok=True)
                shutil.copy2(path, root / kind / path.name)
    return Course.at(root)


# -- the report --------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What became of one mutant."""

    id: str
    function: str
    operator: str
    status: str  # caught | survived | equivalent | not graded
    student: str = ""  # its name in the audit's batch
    failed: list[str] = field(default_factory=list)  # the checks that took points (caught)
    checks: list[str] = field(default_factory=list)  # the function's own checks, which ran (survived, equivalent)
    advisory: list[str] = field(default_factory=list)  # advisory checks that failed (no points)
    reason: str = ""  # why it is equivalent (recorded), or why it was not graded
    feedback: str = ""  # caught: the first line of the first lost check's feedback


@dataclass
class FunctionAudit:
    """One graded function's figures."""

    function: str
    found: int  # mutants made
    made: int  # graded (after the cap)
    caught: int = 0
    survived: int = 0
    equivalent: int = 0
    not_graded: int = 0


@dataclass
class Stale:
    """A recorded equivalent that this audit contradicts."""

    mutant: str
    reason: str
    why: str


@dataclass
class AuditReport:
    """An audit's result; :meth:`to_json` is what ``dlgrade audit --json`` prints."""

    assignment: str
    course: str
    seed: int
    cap: int | None
    seconds: float
    functions: list[FunctionAudit]
    mutants: list[Outcome]
    stale: list[Stale] = field(default_factory=list)
    equivalents_file: str = ""
    html: str = ""
    warnings: list[str] = field(default_factory=list)

    def of(self, status: str) -> list[Outcome]:
        return [m for m in self.mutants if m.status == status]

    @property
    def survivors(self) -> list[Outcome]:
        """Mutants with full marks that are not recorded as equivalent: the gaps to look at."""
        return self.of("survived")

    def totals(self) -> dict[str, int]:
        return {"found": sum(f.found for f in self.functions), "made": len(self.mutants),
                **{key: len(self.of(status)) for key, status in
                   (("caught", "caught"), ("survived", "survived"), ("equivalent", "equivalent"),
                    ("not_graded", "not graded"))}}

    def to_json(self) -> dict:
        return {**asdict(self), "totals": self.totals()}


def equivalents_path(assignment: Assignment) -> Path:
    """``checks/<id>.equivalent.toml``, next to the assignment's checks."""
    return assignment.checks_path.with_name(assignment.id + EQUIVALENT_SUFFIX)


def read_equivalents(path: Path) -> dict[str, str]:
    """Mutant id -> reason, from an equivalence file (none: empty); AuditError naming the file when a record has no
    mutant or no reason, or one is recorded twice."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise AuditError(f"{path} could not be read: {err}") from err
    records = _parse_toml(text, path).get("equivalent", [])
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise AuditError(f"{path}: write each equivalent mutant as an [[equivalent]] table with mutant and reason")
    found: dict[str, str] = {}
    for number, record in enumerate(records, 1):
        mutant, reason = record.get("mutant"), record.get("reason")
        if not isinstance(mutant, str) or not mutant.strip():
            raise AuditError(f"{path}: [[equivalent]] number {number} has no mutant = \"...\" (the survivor's line "
                             "as the audit prints it)")
        if not isinstance(reason, str) or not reason.strip():
            raise AuditError(f"{path}: the record of {mutant!r} has no reason; say why no input the contract allows "
                             "tells it from the reference (or why the contract allows it)")
        if mutant in found:
            raise AuditError(f"{path}: {mutant!r} is recorded twice")
        found[mutant] = reason.strip()
    return found


_TOML_LINE = re.compile(r"""^\s*(?:(?P<table>\[\[\s*(?P<name>[A-Za-z0-9_-]+)\s*\]\])|(?P<key>[A-Za-z0-9_-]+)\s*=\s*"""
                        r"""(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'))\s*(?:#.*)?$""")


def _parse_toml(text: str, path: Path) -> dict:
    """TOML with ``tomllib`` (Python 3.11+); on 3.10 the subset an equivalence file needs: comments, ``[[name]]``
    tables and ``key = "string"`` (or ``'literal'``) on one line."""
    try:
        import tomllib
    except ImportError:
        tomllib = None
    if tomllib is not None:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise AuditError(f"{path} is not valid TOML: {err}") from err
    data: dict[str, list[dict]] = {}
    table: dict | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        match = _TOML_LINE.match(line)
        if match is None or (match["key"] and table is None):
            raise AuditError(f"{path}, line {number}: on Python 3.10 dlgrade reads [[equivalent]] tables of one-line "
                             "strings (key = \"...\") only")
        if match["table"]:
            table = {}
            data.setdefault(match["name"], []).append(table)
        else:
            value = match["value"]
            table[match["key"]] = json.loads(value) if value.startswith('"') else value[1:-1]
    return data


def _judge(mutant: Mutant, student: str, graded: Path, equivalents: dict[str, str]) -> Outcome:
    """One mutant's outcome from its results.json."""
    from autograder.reporting.results import read_result

    outcome = Outcome(mutant.id, mutant.function, mutant.operator, "not graded", student)
    result = read_result(graded)
    if result is None:
        outcome.reason = "no results.json was written (see the batch's errors above)"
        return outcome
    lost = [t for t in result.tests if t.score < t.max_score]
    outcome.failed = [t.name for t in lost]
    outcome.feedback = next((line for t in lost for line in t.output.splitlines() if line.strip()), result.reason)[:300]
    outcome.advisory = [t.name for t in result.tests if t.max_score == 0 and t.output]
    if result.score < result.max_score or outcome.failed:
        outcome.status = "caught"
        return outcome
    outcome.checks = [t.name for t in result.tests if t.graded_function() == mutant.function]
    outcome.status = "equivalent" if mutant.id in equivalents else "survived"
    outcome.reason = equivalents.get(mutant.id, "")
    return outcome


def _control_error(control: object, folder: Path) -> AuditError:
    """Why the unmutated reference, standing in the notebook, does not get full marks (from its results.json)."""
    if control is None:
        return AuditError(f"the reference could not be graded as a submission (no results.json in {folder}); the "
                          "audit needs it to get full marks first")
    lost = [f"  {t.name}: {t.output.splitlines()[0] if t.output else 'no points'}" for t in control.tests
            if t.score < t.max_score]
    why = "\n".join([*(f"  {control.reason}".splitlines()[:3] if control.reason else []), *lost[:8],
                     *(f"  note: {n}" for n in control.notes[:5])])
    return AuditError(f"the reference cannot stand in the notebook: the notebook with the reference's definitions in "
                      f"place of the solutions gets {control.score:g}/{control.max_score:g}, not full marks, so no "
                      f"mutant can be judged. From its results.json:\n{why}")


def audit(assignment: Assignment, *, seed: int = 0, cap: int | None = DEFAULT_CAP,
          training_cap: int | None = TRAINING_CAP, workers: int | None = None,
          log: Callable[[str], None] | None = None, limits: Limits | None = None) -> AuditReport:
    """Mutation-test ``assignment``'s checks: plant one bug per mutant in each graded function of its reference,
    grade every mutant as a submission in one batch, and report which ones kept full marks. At most ``cap``
    mutants (None: all), and ``training_cap`` when a check of the assignment trains a model; a deterministic
    sample for a given ``seed``. Also writes the HTML report, COURSE/audit/<id>.html."""
    log = log or (lambda line: print(line, file=sys.stderr))
    start = time.perf_counter()
    equivalents_file = equivalents_path(assignment)
    equivalents = read_equivalents(equivalents_file)
    reference, found = make_mutants(assignment)
    if training_cap is not None and any(c.trains for c in assignment.suite.checks):
        cap = training_cap if cap is None else min(cap, training_cap)
    chosen = sample(found, cap, seed)
    mutants = [m for function in found for m in chosen[function]]
    warnings = [f"{f} is not defined at the top level of {assignment.reference_path}: no mutant of it was made"
                for f in found if f not in reference.definitions]
    log(f"audit of {assignment.id}: {len(mutants)} mutants (of {sum(len(m) for m in found.values())} made), "
        "each graded as a submission with the assignment's checks")
    with tempfile.TemporaryDirectory(prefix=f"dlgrade-audit-{assignment.id}-") as scratch:
        root = Path(scratch).resolve() / "course"
        outcomes, failures = _grade_mutants(assignment, reference, mutants, root, equivalents, workers, limits,
                                            _as_the_course(log, root, assignment.course.root))
    warnings += [f"the grader failed on {line}" for line in failures]
    report = AuditReport(assignment.id, str(assignment.course.root), seed, cap, 0.0,
                         _functions(found, outcomes), outcomes, _stale(equivalents, found, outcomes),
                         str(equivalents_file), warnings=warnings)
    report.seconds = round(time.perf_counter() - start, 1)
    report.html = str(write_html(report, assignment.course.root / "audit" / f"{assignment.id}.html"))
    return report


def _as_the_course(log: Callable[[str], None], scratch: Path, course: Path) -> Callable[[str], None]:
    """``log``, with the batch's lines about the scratch course said of the real one, each line once."""
    said: set[str] = set()

    def say(line: str) -> None:
        line = line.replace(str(scratch), str(course))
        if line not in said:
            said.add(line)
            log(line)

    return say


def _grade_mutants(assignment: Assignment, reference: Reference, mutants: list[Mutant], root: Path,
                   equivalents: dict[str, str], workers: int | None, limits: Limits | None,
                   log: Callable[[str], None]) -> tuple[list[Outcome], list[str]]:
    """Grade the control (the reference itself; it must get full marks), then every mutant in one batch."""
    from autograder.authoring import samples
    from autograder.grading.batch import grade_course
    from autograder.reporting.results import read_result

    course = _copy_definition(assignment, root)
    definition = course.assignment(assignment.id)
    submitted, graded = course.folder("submitted"), course.root / "graded"
    solved = samples.solved_cells(definition)
    originals = {f: ast.unparse(_clean(node)) for f, node in reference.definitions.items()}
    samples.write(submission(definition, reference, originals, solved), submitted / CONTROL / assignment.id /
                  definition.notebook)
    names = [f"m{i:04d}" for i in range(1, len(mutants) + 1)]
    for name, mutant in zip(names, mutants):
        samples.write(submission(definition, reference, {mutant.function: mutant.source}, solved),
                      submitted / name / assignment.id / definition.notebook)
    log("audit: grading the reference itself first (the control: it must get full marks)")
    # the submissions are the reference's own code with one change: nothing a hostile student wrote, so a machine
    # without every protection may audit (the refusal of a weak host is for grading students)
    first = grade_course(course, assignments=[assignment.id], students=[CONTROL], workers=1, force=True,
                         limits=limits, log=log, allow_weak=True)
    control = read_result(graded / CONTROL / assignment.id)
    if control is None or control.score < control.max_score or first.failures:
        raise _control_error(control, graded / CONTROL / assignment.id)
    summary = grade_course(course, assignments=[assignment.id], students=names, workers=workers, force=True,
                           limits=limits, log=log, allow_weak=True) if names else None
    outcomes = [_judge(m, name, graded / name / assignment.id, equivalents) for name, m in zip(names, mutants)]
    return outcomes, (summary.failures if summary else [])


def _functions(found: dict[str, list[Mutant]], outcomes: list[Outcome]) -> list[FunctionAudit]:
    rows = []
    for function, mutants in found.items():
        mine = [o for o in outcomes if o.function == function]
        rows.append(FunctionAudit(function, len(mutants), len(mine), *(sum(o.status == s for o in mine) for s in
                                                                      ("caught", "survived", "equivalent",
                                                                       "not graded"))))
    return rows


def _stale(equivalents: dict[str, str], found: dict[str, list[Mutant]], outcomes: list[Outcome]) -> list[Stale]:
    """Records no mutant has any more, and records of mutants the checks catch now."""
    made = {m.id for mutants in found.values() for m in mutants}
    caught = {o.id for o in outcomes if o.status == "caught"}
    stale = []
    for mutant, reason in equivalents.items():
        if mutant not in made:
            stale.append(Stale(mutant, reason, "no mutant has this id any more (the reference changed): review the "
                                               "record and remove it"))
        elif mutant in caught:
            stale.append(Stale(mutant, reason, "the checks catch this mutant now, so it is not equivalent: remove "
                                               "the record"))
    return stale


# -- rendering ---------------------------------------------------------------------------------------------------------

def render_text(report: AuditReport) -> str:
    """The report for a terminal: a table per function, then the survivors with the checks that ran."""
    totals = report.totals()
    cap = f"cap {report.cap}" if report.cap is not None else "no cap"
    lines = [f"audit of {report.assignment}: {totals['made']} mutants graded (of {totals['found']} made; seed "
             f"{report.seed}, {cap}) in {report.seconds:.0f} s: {totals['caught']} caught, {totals['survived']} "
             f"survived, {totals['equivalent']} recorded equivalent", ""]
    width = max([len("function"), *(len(f.function) for f in report.functions)])
    lines.append(f"{'function'.ljust(width)}  {'made':>5}  {'caught':>6}  {'survived':>8}  {'equivalent':>10}")
    for f in report.functions:
        lines.append(f"{f.function.ljust(width)}  {f.made:>5}  {f.caught:>6}  {f.survived:>8}  {f.equivalent:>10}"
                     + (f"  (sampled from {f.found})" if f.found > f.made else ""))
    lines += _section("Survivors: bugs the checks miss (or programs equivalent to the reference)",
                      [_survivor(o) for o in report.survivors])
    lines += _section(f"Recorded equivalent (in {report.equivalents_file})",
                      [f"  {o.id}\n      equivalent: {o.reason}" for o in report.of("equivalent")])
    lines += _section("Stale records", [f"  {s.mutant}\n      {s.why}" for s in report.stale])
    lines += _section("Not graded", [f"  {o.id}\n      {o.reason}" for o in report.of("not graded")])
    lines += _section("Warnings", [f"  {w}" for w in report.warnings])
    if report.survivors:
        first = report.survivors[0]
        lines += ["", "Strengthen the checks of a real gap; record an equivalent survivor in "
                  f"{report.equivalents_file}:",
                  "  [[equivalent]]", f"  mutant = {json.dumps(first.id, ensure_ascii=False)}",
                  '  reason = "why no input the contract allows tells it from the reference"']
    return "\n".join(lines)


def _section(title: str, items: list[str]) -> list[str]:
    return ["", f"{title}:", *items] if items else []


def _survivor(outcome: Outcome) -> str:
    checks = "; ".join(c.split(": ", 1)[-1] for c in outcome.checks) or "none: the function has no check"
    text = f"  {outcome.id}\n      checks that ran: {checks}"
    if outcome.advisory:
        text += f"\n      advisory checks that failed (no points): {'; '.join(outcome.advisory)}"
    return text


_COLOURS = {"caught": "#3b6ea5", "survived": "#c0392b", "equivalent": "#9e9e9e", "not_graded": "#e0a030"}


def chart(functions: Sequence[FunctionAudit]) -> str:
    """An inline SVG: one stacked bar per function, caught / survived / equivalent (/ not graded)."""
    label_w, bar_w, row_h, top = 190, 420, 26, 30
    height = top + row_h * len(functions) + 10
    most = max([f.made for f in functions] + [1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 60}" height="{height}" '
             f'font-family="sans-serif" font-size="12" role="img" aria-label="mutants per function">']
    for i, (key, colour) in enumerate(_COLOURS.items()):
        parts.append(f'<rect x="{label_w + 110 * i}" y="6" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{label_w + 110 * i + 16}" y="16">{key.replace("_", " ")}</text>')
    for row, f in enumerate(functions):
        y = top + row * row_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(f.function)}</text>')
        x = float(label_w)
        for key, count in (("caught", f.caught), ("survived", f.survived), ("equivalent", f.equivalent),
                           ("not_graded", f.not_graded)):
            w = bar_w * count / most
            if count:
                parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                             f'fill="{_COLOURS[key]}"><title>{escape(f.function)}: {count} '
                             f'{key.replace("_", " ")}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{f.caught}/{f.made}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(report: AuditReport) -> str:
    """The HTML report: the chart, then the survivors, the recorded equivalents, stale records and every mutant."""
    totals = report.totals()

    def rows(outcomes: list[Outcome], detail: Callable[[Outcome], str]) -> str:
        return "".join(f"<tr><td><code>{escape(o.id)}</code></td><td>{escape(detail(o))}</td></tr>" for o in outcomes)

    survivors = rows(report.survivors, lambda o: "; ".join(o.checks) or "no check of this function")
    equivalent = rows(report.of("equivalent"), lambda o: o.reason)
    stale = "".join(f"<tr><td><code>{escape(s.mutant)}</code></td><td>{escape(s.why)}</td></tr>" for s in report.stale)
    every = rows(report.mutants, lambda o: f"{o.status}" + (f": {'; '.join(o.failed)}" if o.failed else ""))
    cap = report.cap if report.cap is not None else "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Audit: {escape(report.assignment)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:75em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}code{{white-space:pre-wrap}}</style>
</head><body>
<h1>Audit of {escape(report.assignment)}</h1>
<p>{totals['made']} mutants graded (of {totals['found']} made; seed {report.seed}, cap {cap}) in {report.seconds:.0f} s:
{totals['caught']} caught, {totals['survived']} survived, {totals['equivalent']} recorded equivalent.
A survivor kept full marks: a bug the checks miss, or a program equivalent to the reference (record it, with the reason,
in <code>{escape(report.equivalents_file)}</code>).</p>
{chart(report.functions)}
<h2>Survivors</h2>
<table><tr><th>mutant</th><th>the function's checks that ran</th></tr>{survivors}</table>
<h2>Recorded equivalent</h2>
<table><tr><th>mutant</th><th>reason</th></tr>{equivalent}</table>
<h2>Stale records</h2>
<table><tr><th>mutant</th><th>why</th></tr>{stale}</table>
<h2>Every mutant</h2>
<details><summary>{len(report.mutants)} mutants</summary>
<table><tr><th>mutant</th><th>outcome</th></tr>{every}</table></details>
</body></html>
"""


def write_html(report: AuditReport, path: Path) -> Path:
    """Write the HTML report to ``path`` (as root, handed to the course folder's owner, as grading's files are)."""
    from autograder.reporting.files import write_atomic

    write_atomic(path, render_html(report))
    _give_to_owner(path, Path(report.course))
    return path


def _give_to_owner(path: Path, course_root: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        owner = course_root.stat()
        if owner.st_uid != 0:
            for item in (path.parent, path):
                os.lchown(item, owner.st_uid, owner.st_gid)
    except OSError:  # not ours to change
        pass


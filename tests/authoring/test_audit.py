"""`dlgrade audit`: mutants planted in a reference, graded through the sandbox with the course's checks, and the
survivors reported, apart from those the instructor recorded as equivalent."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import A1, TEST_LIMITS, copy_course

from autograder.authoring import audit
from autograder.authoring.audit import AuditError, AuditReport, FunctionAudit, Outcome, Stale

MODULES = frozenset({"np", "torch", "nn"})


def mutants_of(source: str) -> list[audit.Mutant]:
    tree = ast.parse(source)
    return audit.mutate(tree.body[0].name, tree.body[0], MODULES)


def ids(source: str, operator: str | None = None) -> list[str]:
    return [m.id for m in mutants_of(source) if operator is None or m.operator == operator]


@pytest.mark.parametrize("operator, source, expected", [
    ("arithmetic", "def f(a, b):\n    return a + b\n", "f: return a + b  ->  return a - b"),
    ("arithmetic", "def f(a, b):\n    return a @ b\n", "f: return a @ b  ->  return a * b"),
    ("unary", "def f(a):\n    return -a\n", "f: return -a  ->  return a"),
    ("constant", "def f(a):\n    return a * 2\n", "f: return a * 2  ->  return a * 3"),
    ("constant", "def f(a):\n    return a * 0.5\n", "f: return a * 0.5  ->  return a * 1.0"),
    ("constant", "def f(a, flag=True):\n    return a\n", "f: def f(a, flag=True):  ->  def f(a, flag=False):"),
    ("reduction", "def f(a):\n    return np.mean(a)\n", "f: return np.mean(a)  ->  return np.sum(a)"),
    ("reduction", "def f(a):\n    return a.max()\n", "f: return a.max()  ->  return a.min()"),
    ("axis", "def f(a):\n    return a.sum(axis=0)\n", "f: return a.sum(axis=0)  ->  return a.sum()"),
    ("axis", "def f(x):\n    return x.mean(0)\n", "f: return x.mean(0)  ->  return x.mean()"),
    ("axis", "def f(x):\n    return x.squeeze(-1)\n", "f: return x.squeeze(-1)  ->  return x.squeeze(0)"),
    ("transpose", "def f(a, b):\n    return a.T @ b\n", "f: return a.T @ b  ->  return a @ b"),
    ("transpose", "def f(x):\n    return x.t()\n", "f: return x.t()  ->  return x"),
    ("comparison", "def f(a, b):\n    return a < b\n", "f: return a < b  ->  return a <= b"),
    ("comparison", "def f(a):\n    return a is None\n", "f: return a is None  ->  return a is not None"),
    ("comparison", "def f(a, b):\n    return a and b\n", "f: return a and b  ->  return a or b"),
    ("statement", "def f(model, opt):\n    opt.zero_grad()\n    return model\n", "f: opt.zero_grad()  ->  pass"),
    ("statement", "def f(seed):\n    torch.manual_seed(seed)\n    return torch.randn(2)\n",
     "f: torch.manual_seed(seed)  ->  pass"),
    ("context", "def f(model, x):\n    with torch.no_grad():\n        y = model(x)\n    return y\n",
     "f: with torch.no_grad():  ->  (removed)"),
    ("call", "def f(x, device):\n    return x.to(device)\n", "f: return x.to(device)  ->  return x"),
    ("call", "def f(model):\n    return model.eval()\n", "f: return model.eval()  ->  return model"),
    ("call", "def f(v):\n    return float(v)\n", "f: return float(v)  ->  return v"),
    ("call", "def f(d, s):\n    return DataLoader(d, generator=g(s))\n",
     "f: return DataLoader(d, generator=g(s))  ->  return DataLoader(d)"),
    ("seed", "def f(seed):\n    return np.random.default_rng(seed)\n",
     "f: return np.random.default_rng(seed)  ->  return np.random.default_rng(0)"),
    ("return", "def f(a):\n    b = a * 2\n    return b + 1\n", "f: return b + 1  ->  return b"),
])
def test_each_operator_makes_its_change(operator: str, source: str, expected: str) -> None:
    """Does each operator plant the bug it is named for, identified by the changed line before and after?"""
    assert expected in ids(source, operator)


def test_a_mutant_is_a_whole_definition_that_compiles_with_one_change() -> None:
    source = "def f(x, y):\n    \"\"\"Doc.\"\"\"\n    r = x - y\n    return float(r @ r / (2 * len(y)))\n"
    found = mutants_of(source)
    assert found and all(m.function == "f" and m.source.startswith("def f(x, y):") for m in found)
    for m in found:
        compile(m.source, "<mutant>", "exec")
        assert "Doc." not in m.source  # docstrings (and annotations) are left out of mutants and their ids
    assert "f: return float(r @ r / (2 * len(y)))  ->  return float(r @ r / (3 * len(y)))" in [m.id for m in found]


def test_statements_that_only_bind_a_new_name_are_not_dropped() -> None:
    """Dropping `b = a * 2` when nothing bound b before is a NameError, not a plausible bug; rebinding is one."""
    dropped = ids("def f(a):\n    b = a * 2\n    a = np.asarray(a)\n    return a + b\n", "statement")
    assert dropped == ["f: a = np.asarray(a)  ->  pass"]


def test_methods_of_a_class_are_mutated_under_the_class_name() -> None:
    source = ("class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
              "    def forward(self, x):\n        return torch.relu(x).squeeze(-1)\n")
    found = mutants_of(source)
    assert {m.function for m in found} == {"Net"}
    assert "Net.forward: return torch.relu(x).squeeze(-1)  ->  return x.squeeze(-1)" in [m.id for m in found]
    assert "Net.__init__: super().__init__()  ->  pass" in [m.id for m in found]


def test_syntactic_duplicates_and_no_ops_are_dropped_and_ids_are_unique() -> None:
    """`axis=0 -> axis=1` is made by the constant and the axis operators: one mutant. Two equal lines changed the
    same way get ids told apart by a suffix."""
    found = mutants_of("def f(a):\n    return a.sum(axis=0)\n")
    sources = [m.source for m in found]
    assert len(sources) == len(set(sources)) and "def f(a):\n    return a.sum(axis=0)" not in sources
    assert sum("a.sum(axis=1)" in s for s in sources) == 1
    twice = ids("def f(a):\n    x = a + 1\n    x = a + 1\n    return x\n", "arithmetic")
    assert twice == ["f: x = a + 1  ->  x = a - 1", "f: x = a + 1  ->  x = a - 1 (2)"]


def test_mutants_and_their_sample_are_deterministic_for_a_seed() -> None:
    _, found = audit.make_mutants(A1)
    assert {f: [m.id for m in ms] for f, ms in audit.make_mutants(A1)[1].items()} == \
        {f: [m.id for m in ms] for f, ms in found.items()}
    first, again, other = audit.sample(found, 20, 0), audit.sample(found, 20, 0), audit.sample(found, 20, 1)
    assert first == again and first != other
    assert sum(len(m) for m in first.values()) == 20
    # a fair share each (20 over 7 functions), what a small function does not need going to the others
    assert all(len(first[f]) >= min(2, len(found[f])) for f in found)
    assert audit.sample(found, None, 0) == found


def test_the_training_cap_applies_to_an_assignment_whose_checks_train() -> None:
    from conftest import A3

    assert audit.default_cap(A3) == audit.TRAINING_CAP and audit.default_cap(A1) == audit.DEFAULT_CAP


def test_a_mutant_stands_in_after_its_function_s_solution_cell_or_in_a_last_cell() -> None:
    reference, found = audit.make_mutants(A1)
    mutant = found["mse_loss"][0]
    nb = audit.submission(A1, reference, {"mse_loss": mutant.source})
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "mse_loss")
    assert cell.source.index("def mse_loss") < cell.source.index(mutant.source)
    assert "import numpy as np" in cell.source
    alone = audit.submission(A1, reference, {"mse_loss": mutant.source}, solved={})
    assert mutant.source in alone.cells[-1].source


def write_equivalents(path: Path, records: list[tuple[str, str]]) -> Path:
    lines = [f"[[equivalent]]\nmutant = {json.dumps(m)}\nreason = {json.dumps(r)}\n" for m, r in records]
    path.write_text("# equivalent mutants\n" + "\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("without_tomllib", [False, True])
def test_the_equivalence_file_is_read_and_a_record_without_a_reason_is_an_error(tmp_path, monkeypatch,
                                                                               without_tomllib: bool) -> None:
    """Read with tomllib, or on Python 3.10 with the subset parser."""
    if without_tomllib:
        monkeypatch.setitem(sys.modules, "tomllib", None)
    path = write_equivalents(tmp_path / "a.equivalent.toml", [('f: x = "a"  ->  x = \'b\'', "same value")])
    assert audit.read_equivalents(path) == {'f: x = "a"  ->  x = \'b\'': "same value"}
    assert audit.read_equivalents(tmp_path / "none.toml") == {}
    write_equivalents(path, [("f: a  ->  b", "  ")])
    with pytest.raises(AuditError, match=re.escape(str(path)) + ".*has no reason"):
        audit.read_equivalents(path)
    path.write_text("[[equivalent]]\nreason = \"why\"\n")
    with pytest.raises(AuditError, match="has no mutant"):
        audit.read_equivalents(path)
    write_equivalents(path, [("f: a  ->  b", "one"), ("f: a  ->  b", "two")])
    with pytest.raises(AuditError, match="recorded twice"):
        audit.read_equivalents(path)


def small_report() -> AuditReport:
    outcomes = [Outcome("f: a + b  ->  a - b", "f", "arithmetic", "caught", "m0001", failed=["f: adds"]),
                Outcome("f: <x> & 'y'  ->  x", "f", "call", "survived", "m0002", checks=["f: adds"]),
                Outcome("g: a  ->  b", "g", "constant", "equivalent", "m0003", checks=["g: works"], reason="same")]
    functions = [FunctionAudit("f", 3, 2, 1, 1), FunctionAudit("g", 1, 1, 0, 0, 1)]
    return AuditReport("a9", "/course", 0, 150, 1.0, functions, outcomes,
                       [Stale("h: old  ->  new", "was same", "no mutant has this id any more")],
                       "/course/checks/a9.equivalent.toml")


def test_the_text_json_and_html_reports_say_what_survived() -> None:
    report = small_report()
    text = audit.render_text(report)
    assert "2 mutants graded" not in text and "3 mutants graded (of 4 made" in text
    assert "Survivors" in text and "f: <x> & 'y'  ->  x" in text and "checks that ran: adds" in text
    assert "equivalent: same" in text and "h: old  ->  new" in text
    assert 'mutant = "f: <x> & \'y\'  ->  x"' in text
    data = json.loads(json.dumps(report.to_json()))
    assert data["totals"] == {"found": 4, "made": 3, "caught": 1, "survived": 1, "equivalent": 1, "not_graded": 0}
    html = audit.render_html(report)
    assert "<svg" in html and "&lt;x&gt; &amp; &#x27;y&#x27;" in html and "<x>" not in html


def weak_checks(course_root: Path) -> None:
    """a1's mse_loss checks replaced by one that only calls the function."""
    path = course_root / "checks" / f"{A1.id}.py"
    text = path.read_text()
    start = text.index('@check("mse_loss"')
    end = text.index("# -- mse_gradient")
    only_calls = ('@check("mse_loss", "can be called")\ndef mse_loss_can_be_called(t: Trial) -> None:\n'
                  "    X, y = regression_data(t)\n    t.call(\"mse_loss\", t.rng.normal(size=X.shape[1]), X, y)\n\n\n")
    path.write_text(text[:start] + only_calls + text[end:])


def dlgrade(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True,
                          env={**os.environ, "DLGRADE_HOME": ""})


@pytest.mark.slow
def test_weak_checks_let_mse_loss_mutants_survive_and_the_cli_exits_1(tmp_path) -> None:
    """The issue's case: mse_loss checked only by calling it. The survivors are named, a recorded one is listed
    apart with its reason, a record no mutant has any more is stale, and the HTML and JSON reports exist."""
    course = copy_course(tmp_path / "c", [A1.id])
    weak_checks(course.root)
    assignment = course.assignment(A1.id)
    scaled = "mse_loss: return float(r @ r / (2 * len(y)))  ->  return float(r @ r / (3 * len(y)))"
    _, found = audit.make_mutants(assignment)
    seed = next(s for s in range(100) if scaled in [m.id for m in audit.sample(found, 21, s)["mse_loss"]])
    write_equivalents(audit.equivalents_path(assignment), [(scaled, "a test: recorded as equivalent"),
                                                           ("mse_loss: gone  ->  away", "a stale record")])
    done = dlgrade("audit", A1.id, "--course", str(course.root), "--max-mutants", "21", "--seed", str(seed),
                   "--workers", "2", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    survivors = [m for m in report["mutants"] if m["status"] == "survived"]
    assert survivors and all(m["checks"] == ["mse_loss: can be called"] for m in survivors
                             if m["function"] == "mse_loss")
    assert any(m["function"] == "mse_loss" for m in survivors)
    recorded = next(m for m in report["mutants"] if m["id"] == scaled)
    assert recorded["status"] == "equivalent" and recorded["reason"] == "a test: recorded as equivalent"
    assert [s["mutant"] for s in report["stale"]] == ["mse_loss: gone  ->  away"]
    assert report["totals"]["made"] == 21 and report["seed"] == seed
    assert all(m["status"] in ("caught", "survived", "equivalent") for m in report["mutants"])
    row = next(f for f in report["functions"] if f["function"] == "mse_loss")
    assert row["made"] == 3 and row["caught"] + row["survived"] + row["equivalent"] == 3
    html = Path(report["html"])
    assert html == course.root / "audit" / f"{A1.id}.html" and "<svg" in html.read_text()
    assert f"HTML report: {html}" in done.stderr


@pytest.mark.slow
def test_the_audit_stops_when_the_reference_cannot_stand_in_the_notebook(tmp_path) -> None:
    """The control (the reference in the notebook) must get full marks; here the reference's mse_loss reads a name
    only its own module has, so the audit says why it cannot judge any mutant."""
    course = copy_course(tmp_path / "c", [A1.id])
    path = course.root / "solutions" / f"{A1.id}.py"
    path.write_text(path.read_text().replace("return float(r @ r / (2 * len(y)))",
                                             "return float(r @ r / (2 * len(y))) + 0 * len(__file__)"))
    done = dlgrade("audit", A1.id, "--course", str(course.root), "--max-mutants", "7")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the reference cannot stand in the notebook" in done.stderr
    assert "mse_loss: matches the reference" in done.stderr


def test_a_record_without_a_reason_stops_the_cli_with_the_file_named(tmp_path) -> None:
    course = copy_course(tmp_path / "c", [A1.id])
    path = write_equivalents(audit.equivalents_path(course.assignment(A1.id)), [("mse_loss: a  ->  b", "")])
    done = dlgrade("audit", A1.id, "--course", str(course.root))
    assert done.returncode == 2 and f"{path}: the record of 'mse_loss: a  ->  b' has no reason" in done.stderr


@pytest.mark.slow
def test_the_built_in_a1_audits_clean(tmp_path) -> None:
    """Every survivor of the built-in a1 is recorded as equivalent, with its reason, and no record is stale."""
    course = copy_course(tmp_path / "c", [A1.id])
    shutil.copy2(audit.equivalents_path(A1), audit.equivalents_path(course.assignment(A1.id)))
    report = audit.audit(course.assignment(A1.id), workers=2, limits=TEST_LIMITS, log=lambda line: None)
    assert not report.survivors, audit.render_text(report)
    assert not report.stale and not report.of("not graded")
    assert report.of("equivalent") and all(o.reason for o in report.of("equivalent"))
    assert len(report.of("caught")) > len(report.mutants) // 2

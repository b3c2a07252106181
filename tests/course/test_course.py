"""A course lives outside the tool: what a new instructor does, from a wheel of this checkout installed (not
editable) in a fresh virtual environment, in a folder outside the repository, with no DLGRADE_HOME.

`dlgrade init`, `dlgrade demo`, an assignment written by hand against the public API (softmax and cross-entropy)
and released with stock nbgrader, graded by `dlgrade grade`, stock `nbgrader autograde`, the pytest plugin,
`dlgrade check` and a Gradescope bundle, next to a built-in assignment; and a changed check regrading without
--force."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from conftest import A1, REPO, copy_course

from autograder.authoring import samples
from autograder.course import Course, CourseError, find


def wheel(test: Callable) -> Callable:
    """The tests that share the wheel's virtual environment and course (built once): one pytest-xdist worker for
    them all, and a deadline that leaves room for the wheel's install."""
    return pytest.mark.xdist_group("wheel_course")(pytest.mark.timeout(1200)(test))

SOFTMAX_ID, SOFTMAX_NB = "a6_softmax", "softmax.ipynb"
SOFTMAX = """\
def softmax(z):
    \"\"\"Row-wise softmax. z: array of shape (n, k) -> probabilities of shape (n, k), each row summing to 1.\"\"\"
    ### BEGIN SOLUTION
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
    ### END SOLUTION
"""
CROSS_ENTROPY = """\
def cross_entropy(z, y):
    \"\"\"Mean cross-entropy of logits z (n, k) for integer labels y (n,), using softmax.\"\"\"
    ### BEGIN SOLUTION
    p = softmax(z)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))
    ### END SOLUTION
"""
REFERENCE = """\
import numpy as np


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(z, y):
    p = softmax(z)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))
"""
CHECKS = """\
from autograder import Suite, Trial

SUITE = Suite(depends={"cross_entropy": ["softmax"]})
check = SUITE.check


def logits(t: Trial, scale: float = 1.0):
    n, k = (3, 4) if t.public else (int(t.rng.integers(2, 30)), int(t.rng.integers(2, 8)))
    return scale * t.rng.normal(size=(n, k)), t.rng.integers(0, k, size=n)


@check("softmax", "matches the reference on random logits")
def softmax_matches_the_reference(t: Trial) -> None:
    z, _ = logits(t)
    t.expect_close(t.call("softmax", z), t.ref("softmax", z), "the probabilities")


@check("softmax", "stays finite for large logits")
def softmax_is_stable(t: Trial) -> None:
    z, _ = logits(t, scale=1000.0)
    t.expect_close(t.call("softmax", z), t.ref("softmax", z), "the probabilities", rtol=1e-6, atol=1e-9)


@check("cross_entropy", "matches the reference on random logits and labels")
def cross_entropy_matches_the_reference(t: Trial) -> None:
    z, y = logits(t)
    t.expect_close(t.call("cross_entropy", z, y), t.ref("cross_entropy", z, y), "the loss")
"""
EXTRA_CHECK = """

@check("cross_entropy", "is log(k) for equal logits")
def cross_entropy_of_equal_logits(t: Trial) -> None:
    z = t.rng.normal() * __import__("numpy").ones((5, 3))
    t.expect_close(t.call("cross_entropy", z, [0, 1, 2, 0, 1]), t.ref("cross_entropy", z, [0, 1, 2, 0, 1]), "the loss")
"""
WRONG_AXIS = "def softmax(z):\n    e = np.exp(z)\n    return e / e.sum(axis=0, keepdims=True)\n"
SEARCH = """\
import os
found = []
for top in ('/', '/tmp', os.path.expanduser('~')):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev')]
        for name in files:
            if name == 'a6_softmax.py' or name.endswith('a6_softmax.py'):
                found.append(os.path.join(folder, name))
for path in found:
    try:
        exec(open(path).read(), globals())
    except OSError:
        pass
"""


def run(*args: str | Path, cwd: Path, env: dict, ok: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with a wheel of this checkout (built from a copy of the working tree)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    anywhere = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache")
    at_the_top = {".git", ".venv", "build", "dist", "wheelhouse", "course"}  # not autograder/course/

    def ignore(folder: str, names: list[str]) -> set[str]:
        return set(anywhere(folder, names)) | (at_the_top & set(names) if Path(folder) == REPO else set())

    shutil.copytree(REPO, src, ignore=ignore)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLGRADE_")}
    run(sys.executable, "-m", "pip", "wheel", src, "--no-deps", "-q", "-w", root / "dist", cwd=root, env=env)
    (wheel,) = (root / "dist").glob("dlgrade-*.whl")
    run(sys.executable, "-m", "venv", root / "venv", cwd=root, env=env)
    run(root / "venv" / "bin" / "pip", "install", "-q", wheel, cwd=root, env=env, timeout=900)
    return root / "venv"


@pytest.fixture(scope="module")
def env(venv: Path) -> dict:
    """The instructor's environment: the venv's commands first on PATH, no DLGRADE_* variable."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DLGRADE_")},
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}


@pytest.fixture(scope="module")
def course(venv: Path, env: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`dlgrade init mycourse`, then the softmax assignment written by hand and released with stock nbgrader (into
    a gradebook, as stock `nbgrader autograde` needs)."""
    home = tmp_path_factory.mktemp("instructor")
    run("dlgrade", "init", "mycourse", cwd=home, env=env)
    root = home / "mycourse"
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})

    def cell(source: str, grade_id: str, **flags: object) -> nbformat.NotebookNode:
        meta = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": False,
                "task": False, **flags}
        return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})

    def test(function: str, public: str, points: int) -> nbformat.NotebookNode:
        hidden = (f"### BEGIN HIDDEN TESTS\nfrom autograder.nbgrader_bridge import run_hidden_tests\n"
                  f"run_hidden_tests({SOFTMAX_ID!r}, {function!r}, globals())\n### END HIDDEN TESTS\n")
        return cell(public + hidden, f"test_{function}", grade=True, locked=True, points=points)

    nb.cells = [nbformat.v4.new_markdown_cell("# Softmax and cross-entropy"),
                cell("import numpy as np", "imports", locked=True),
                cell(SOFTMAX, "softmax", solution=True),
                test("softmax", "assert np.allclose(softmax(np.zeros((1, 2))), 0.5)\n", 2),
                cell(CROSS_ENTROPY, "cross_entropy", solution=True),
                test("cross_entropy", "assert np.isclose(cross_entropy(np.zeros((2, 2)), np.array([0, 1])), "
                                      "np.log(2))\n", 1)]
    (root / "source" / SOFTMAX_ID).mkdir()
    nbformat.write(nb, root / "source" / SOFTMAX_ID / SOFTMAX_NB)
    (root / "solutions" / f"{SOFTMAX_ID}.py").write_text(REFERENCE)
    (root / "checks" / f"{SOFTMAX_ID}.py").write_text(CHECKS)
    run("nbgrader", "db", "assignment", "add", SOFTMAX_ID, cwd=root, env=env)
    run("nbgrader", "generate_assignment", SOFTMAX_ID, cwd=root, env=env)
    run("nbgrader", "db", "assignment", "add", A1.id, cwd=root, env=env)
    run("nbgrader", "generate_assignment", A1.id, cwd=root, env=env)
    return root


def softmax_submission(root: Path, student: str, replace: dict[str, str] | None = None, extra: str = "",
                       solved: bool = True) -> Path:
    """The released softmax notebook with the solutions filled in (or not), some ``replace``-d, and an ``extra``
    cell; written into the course's submitted/."""
    nb = nbformat.read(root / "assignments" / SOFTMAX_ID / SOFTMAX_NB, as_version=4)
    unmarked = {"softmax": SOFTMAX, "cross_entropy": CROSS_ENTROPY} if solved else {}
    cells = {k: v.replace("    ### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION\n", "")
             for k, v in unmarked.items()} | (replace or {})
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in cells:
            c.source = cells[meta["grade_id"]]
    if extra:
        nb.cells.append(nbformat.v4.new_code_cell(extra))
    path = root / "submitted" / student / SOFTMAX_ID / SOFTMAX_NB
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def results(root: Path, student: str, assignment: str = SOFTMAX_ID) -> dict:
    return json.loads((root / "graded" / student / assignment / "results.json").read_text())


def by_function(document: dict) -> dict[str, float]:
    scores: dict[str, float] = {}
    for test in document["tests"]:
        function = test["name"].split(":")[0]
        scores[function] = round(scores.get(function, 0.0) + test["score"], 4)
    return scores


@pytest.mark.slow
@wheel
def test_init_writes_a_course_and_demo_runs_without_a_repository(venv: Path, env: dict, tmp_path: Path) -> None:
    run("dlgrade", "init", "mycourse", cwd=tmp_path, env=env)
    written = Course(tmp_path / "mycourse")
    assert written.assignments() == [A1.id, "a2_mlp", "a3_training_loop", "a4_backprop", "a5_classification"]
    assert (tmp_path / "mycourse" / "dlgrade.toml").stat().st_mode & 0o077 == 0  # the salt is private
    demo = run("dlgrade", "demo", cwd=tmp_path, env=env)
    assert "ada      a1_linear_regression   12.00 / 12" in demo.stdout, demo.stdout
    assert "Traceback" not in demo.stdout + demo.stderr
    again = run("dlgrade", "init", "mycourse", cwd=tmp_path, env=env, ok=False)
    assert again.returncode == 2 and "exists and is not an empty folder" in again.stderr


@pytest.mark.slow
@wheel
def test_a_hand_written_assignment_grades_from_the_wheel(course: Path, env: dict) -> None:
    """Correct: full marks. Softmax over the wrong axis: loses softmax's points only (cross_entropy, which calls it,
    gets follow-through). A search of the file system for the reference: gains nothing. A built-in assignment grades
    in the same course."""
    softmax_submission(course, "ada")
    softmax_submission(course, "ben", {"softmax": WRONG_AXIS})
    softmax_submission(course, "mal", extra=SEARCH, solved=False)
    samples.write(samples.build(A1), course / "submitted" / "ada" / A1.id / A1.notebook)
    done = run("dlgrade", "grade", cwd=course, env=env)
    assert "Traceback" not in done.stderr
    ada, ben, mal = results(course, "ada"), results(course, "ben"), results(course, "mal")
    assert ada["score"] == ada["max_score"] == 3
    assert by_function(ben) == {"softmax": 0.0, "cross_entropy": 1.0}, ben
    assert "Follow-through applied" in json.dumps(ben)
    assert mal["score"] == 0, mal
    assert results(course, "ada", A1.id)["score"] == 12


@pytest.mark.slow
@wheel
def test_a_changed_check_regrades_without_force(course: Path, env: dict) -> None:
    """Its own two students (the course folder is shared with the other tests of this file, in any order)."""
    softmax_submission(course, "cy")
    softmax_submission(course, "di", {"softmax": WRONG_AXIS})
    these = ["--assignment", SOFTMAX_ID, "--student", "cy", "--student", "di"]
    run("dlgrade", "grade", *these, cwd=course, env=env)
    unchanged = run("dlgrade", "grade", *these, cwd=course, env=env)
    assert "graded 0, unchanged 2" in unchanged.stdout, unchanged.stdout
    with open(course / "checks" / f"{SOFTMAX_ID}.py", "a") as f:
        f.write(EXTRA_CHECK)
    try:
        again = run("dlgrade", "grade", *these, cwd=course, env=env)
        assert "graded 2, unchanged 0" in again.stdout, again.stdout
        names = [t["name"] for t in results(course, "cy")["tests"]]
        assert "cross_entropy: is log(k) for equal logits" in names
    finally:
        (course / "checks" / f"{SOFTMAX_ID}.py").write_text(CHECKS)


@pytest.mark.slow
@wheel
def test_stock_nbgrader_autograde_gives_the_correct_student_full_marks(course: Path, env: dict) -> None:
    softmax_submission(course, "ada")
    run("nbgrader", "autograde", SOFTMAX_ID, "--create", "--force", "--student", "ada", cwd=course, env=env)
    run("nbgrader", "export", "--to", str(course / "stock.csv"), cwd=course, env=env)
    with open(course / "stock.csv") as f:
        rows = {(r["assignment"], r["student_id"]): float(r["raw_score"]) for r in csv.DictReader(f)}
    assert rows[(SOFTMAX_ID, "ada")] == 3


@pytest.mark.slow
@wheel
def test_the_pytest_plugin_passes_the_correct_notebook_and_fails_the_wrong_one(course: Path, env: dict) -> None:
    python = Path(env["VIRTUAL_ENV"]) / "bin" / "python"
    good = softmax_submission(course, "ada")
    wrong = softmax_submission(course, "ben", {"softmax": WRONG_AXIS})
    run(python, "-m", "pytest", "-p", "autograder.pytest_plugin", "--submission", good, "-q", "-p", "no:cacheprovider",
        cwd=course, env=env)
    failed = run(python, "-m", "pytest", "-p", "autograder.pytest_plugin", "--submission", wrong, "-q",
                 "-p", "no:cacheprovider", cwd=course, env=env, ok=False)
    assert failed.returncode == 1 and "softmax" in failed.stdout and "cross_entropy" not in failed.stdout.split(
        "short test summary")[-1], failed.stdout


@pytest.mark.slow
@wheel
def test_dlgrade_check_passes_the_students_notebook_with_no_course(course: Path, env: dict, tmp_path: Path) -> None:
    notebook = tmp_path / SOFTMAX_NB
    shutil.copy(softmax_submission(course, "ada"), notebook)
    done = run("dlgrade", "check", notebook, cwd=tmp_path, env=env)
    assert "2 of 2 public tests pass" in done.stdout


@pytest.mark.slow
@wheel
def test_the_gradescope_bundle_carries_the_course_and_grades_full_marks(course: Path, env: dict,
                                                                         tmp_path: Path) -> None:
    done = run("dlgrade", "gradescope", SOFTMAX_ID, "--out", tmp_path, cwd=course, env=env)
    bundle = Path(done.stdout.strip())
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "ag" / "source")
    for needed in (f"course/checks/{SOFTMAX_ID}.py", f"course/solutions/{SOFTMAX_ID}.py", "course/dlgrade.toml",
                   f"course/source/{SOFTMAX_ID}/{SOFTMAX_NB}", f"course/assignments/{SOFTMAX_ID}/{SOFTMAX_NB}",
                   "dlgrade/pyproject.toml", "dlgrade/autograder/cli.py", "setup.sh", "run_autograder"):
        assert needed in names, needed
    assert not [n for n in names if A1.id in n or "builtin_course" in n]
    root = tmp_path / "ag"
    (root / "submission").mkdir()
    shutil.copy(softmax_submission(course, "ada"), root / "submission" / SOFTMAX_NB)
    script = root / "source" / "run_autograder"
    script.chmod(0o755)
    run(script, cwd=root, env={**env, "AUTOGRADER_ROOT": str(root),
                               "DLGRADE_PYTHON": str(Path(env["VIRTUAL_ENV"]) / "bin" / "python")})
    document = json.loads((root / "results" / "results.json").read_text())
    assert document["score"] == document["max_score"] == 3, document


def test_the_built_in_course_grades_from_a_copy_like_any_other(tmp_path: Path, grade) -> None:
    """The built-in course takes no special path: a copy of it in a temporary folder grades the same."""
    copy = copy_course(tmp_path / "copy", [A1.id])
    assignment = copy.assignment(A1.id)
    assert assignment.checks_path.is_relative_to(tmp_path)
    result = grade(assignment, samples.build(assignment))
    assert result.score == result.max_score == 12


def test_finding_a_course_follows_nbgraders_rule_and_says_how_to_make_one(tmp_path: Path, monkeypatch) -> None:
    from autograder import settings

    copy = copy_course(tmp_path / "c", [A1.id])
    deep = copy.root / "submitted" / "ada"
    deep.mkdir(parents=True)
    assert find(cwd=deep).root == copy.root
    with pytest.raises(CourseError, match="dlgrade init DIR"):
        find(cwd=tmp_path)
    monkeypatch.setenv("DLGRADE_HOME", str(tmp_path / "nowhere"))
    settings.current.cache_clear()
    try:
        with pytest.raises(CourseError, match="DLGRADE_HOME="):
            find(cwd=deep)
    finally:
        monkeypatch.undo()
        settings.current.cache_clear()


# -- the course folder's rules, in this process -----------------------------------------------------------------------

def test_a_folder_for_an_assignment_the_course_does_not_define_is_named_in_a_warning(tmp_path: Path) -> None:
    from autograder.grading.batch import discover

    course = copy_course(tmp_path / "c", [A1.id])
    samples.write(samples.build(A1), course.root / "submitted" / "ada" / A1.id / A1.notebook)
    (course.root / "submitted" / "ada" / "a9_unknown").mkdir()
    said: list[str] = []
    jobs = discover(course, log=said.append)
    assert [(j.student, j.assignment) for j in jobs] == [("ada", A1.id)]
    assert len(said) == 1 and "submitted/ada/a9_unknown" in said[0] and "warning" in said[0]


@pytest.mark.parametrize(("remove", "named"), [("checks", "checks/a1_linear_regression.py"),
                                               ("solutions", "solutions/a1_linear_regression.py")])
def test_an_assignment_without_its_checks_or_reference_is_an_error_naming_the_file(tmp_path, remove, named) -> None:
    course = copy_course(tmp_path / "c", [A1.id])
    (course.root / remove / f"{A1.id}.py").unlink()
    with pytest.raises(CourseError, match=named):
        course.assignment(A1.id)


def test_two_notebooks_in_one_assignment_are_an_error_saying_one_notebook_per_assignment(tmp_path) -> None:
    course = copy_course(tmp_path / "c", [A1.id])
    shutil.copy(A1.source, course.root / "source" / A1.id / "extra.ipynb")
    with pytest.raises(CourseError, match="one notebook per assignment"):
        course.assignment(A1.id)


def test_a_missing_release_is_an_error_saying_how_to_make_it(tmp_path) -> None:
    course = copy_course(tmp_path / "c", [A1.id])
    shutil.rmtree(course.root / "assignments" / A1.id)
    with pytest.raises(CourseError, match=f"nbgrader generate_assignment {A1.id}"):
        course.assignment(A1.id).require_release()


def test_the_lms_pattern_is_built_from_the_courses_notebooks(tmp_path) -> None:
    from traitlets.config.loader import PyFileConfigLoader

    course = copy_course(tmp_path / "c", [A1.id])
    (course.root / "source" / "a6_softmax").mkdir()
    shutil.copy(A1.source, course.root / "source" / "a6_softmax" / "softmax.ipynb")
    pattern = PyFileConfigLoader("nbgrader_config.py", path=str(course.root)).load_config()
    regexp = pattern.FileNameCollectorPlugin.named_regexp
    import re

    for name, notebook in (("ada_softmax.ipynb", "softmax"), ("jane_doe_LATE_linear_regression (1).ipynb",
                                                               "linear_regression")):
        match = re.match(regexp, f"/downloads/{name}")
        assert match and match.group("file_id") == notebook, name
    assert "mlp" not in regexp  # only this course's notebooks


def test_a_new_assignment_grades_full_marks_on_its_own_reference_as_it_stands(tmp_path, grade) -> None:
    from autograder.authoring.scaffold import new_assignment

    course = copy_course(tmp_path / "c", [A1.id])
    said = new_assignment(course, "a6_softmax")
    assignment = course.assignment("a6_softmax")
    assert assignment.notebook == "softmax.ipynb" and assignment.released.is_file(), said
    assert assignment.points == {"softmax": 1.0}
    full = grade(assignment, samples.build(assignment))
    assert full.score == full.max_score == 1, full.to_json()
    assert grade(assignment, samples.build(assignment, solved=False)).score == 0
    with pytest.raises(CourseError, match="exists already"):
        new_assignment(course, "a6_softmax")


def test_init_writes_a_private_random_salt_and_the_default_one_is_warned_about(tmp_path, monkeypatch) -> None:
    from autograder import settings
    from autograder.authoring.scaffold import init_course
    from autograder.grading.batch import grade_course

    monkeypatch.delenv("DLGRADE_SEED_SALT", raising=False)
    settings.current.cache_clear()
    init_course(tmp_path / "one")
    init_course(tmp_path / "two")
    one, two = Course(tmp_path / "one"), Course(tmp_path / "two")
    assert one.seed_salt[0] != two.seed_salt[0] and one.seed_salt[1].endswith("dlgrade.toml")
    seeds = [c.assignment(A1.id).suite.checks[0].runs for c in (one, two)]
    assert seeds[0][0] == seeds[1][0] == (0, True) and seeds[0][1:] != seeds[1][1:]  # public alike, hidden not
    bare = copy_course(tmp_path / "bare", [A1.id])
    samples.write(b"{}", bare.root / "submitted" / "ada" / A1.id / A1.notebook)
    said: list[str] = []
    grade_course(bare, workers=1, log=said.append)
    assert any("public default seed salt" in line and "dlgrade.toml" in line for line in said)


def test_the_check_api_is_public_and_the_built_in_checks_use_only_it() -> None:
    import autograder

    assert set(autograder.__all__) >= {"Suite", "Trial", "Variant", "mistake", "matches", "factor_hint"}
    for name in autograder.__all__:
        assert getattr(autograder, name) is not None
    for path in (REPO / "checks").glob("*.py"):
        imports = [line for line in path.read_text().splitlines() if "autograder" in line and "import" in line]
        assert imports and all(line.startswith("from autograder import ") for line in imports), (path, imports)


def test_a_command_outside_any_course_says_how_to_make_one(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DLGRADE_HOME"}
    done = subprocess.run([sys.executable, "-m", "autograder", "grade"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "no course here" in done.stderr and "dlgrade init DIR" in done.stderr

"""The checks under pytest: ``python -m pytest -p autograder.pytest_plugin --submission NOTEBOOK --course DIR`` from any
folder, one item per check, seed and device, the student's message on failure, and ``dlgrade grade``'s verdicts."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import A1, COURSE

from autograder.authoring import samples
from autograder.checking import policy

WRONG_GRADIENT = {"mse_gradient": "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y)\n"}


def run_pytest(folder: Path, *args: str, course: Path | None = COURSE.root,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """pytest with the plugin, started in ``folder`` (not this project: any folder works), grading in ``course``
    (``--course``; None: found as every dlgrade command finds it, here without DLGRADE_HOME unless ``env`` sets it)."""
    options = ["--course", str(course)] if course is not None else []
    environ = {k: v for k, v in os.environ.items() if k != "DLGRADE_HOME"} | (env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "autograder.pytest_plugin", "-p", "no:randomly",
                           "--rootdir", str(folder), *options, *args], cwd=folder, capture_output=True, text=True,
                          timeout=600, env=environ)


def expected_ids(assignment: str) -> list[str]:
    ids = []
    for check in COURSE.assignment(assignment).suite.checks:
        runs = check.runs
        for device in (policy.devices() if check.on_devices else ("cpu",)):
            for number, (_, public) in enumerate(runs):
                where = "public" if public else f"hidden-{number}"
                ids.append(f"{assignment}::{check.function}::{check.description}[{where}-{device}]")
    return ids


def outcomes(junit: Path) -> dict[str, bool]:
    """``<assignment>.<function>::<check>[<seed>-<device>]`` -> passed, from a JUnit XML report."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        found[f"{case.get('classname')}::{case.get('name')}"] = case.find("failure") is None
    return found


def test_collection_gives_one_item_per_check_seed_and_device_with_readable_ids(tmp_path) -> None:
    notebook = samples.write(samples.build(A1), tmp_path / A1.notebook)
    done = run_pytest(tmp_path, "--submission", str(notebook), "--collect-only", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = [line for line in done.stdout.splitlines() if line.startswith(A1.id + "::")]
    assert listed == expected_ids(A1.id)
    assert "a1_linear_regression::mse_gradient::matches the reference on random beta, X and y[hidden-1-cpu]" in listed


def test_the_course_is_found_as_dlgrade_finds_it_and_its_absence_is_explained(tmp_path) -> None:
    """Without --course: DLGRADE_HOME, else the folder pytest starts in or its nearest parent holding
    nbgrader_config.py; in no course, a usage error saying how to name one. An assignment the course does not
    define is a usage error too."""
    notebook = samples.write(samples.build(A1), tmp_path / A1.notebook)
    home = run_pytest(tmp_path, "--submission", str(notebook), "--collect-only", "-q", course=None,
                      env={"DLGRADE_HOME": str(COURSE.root)})
    assert home.returncode == 0, home.stdout + home.stderr
    assert [line for line in home.stdout.splitlines() if line.startswith(A1.id + "::")] == expected_ids(A1.id)
    nowhere = run_pytest(tmp_path, "--submission", str(notebook), "--collect-only", "-q", course=None)
    assert nowhere.returncode == 4 and "no course here" in nowhere.stderr, nowhere.stdout + nowhere.stderr
    unknown = run_pytest(tmp_path, "--submission", str(notebook), "--assignment", "a9", "--collect-only")
    assert unknown.returncode == 4 and "has no assignment 'a9'" in unknown.stderr, unknown.stdout + unknown.stderr


def test_the_reference_passes_and_a_mistake_fails_with_the_students_message(tmp_path) -> None:
    good = samples.write(samples.build(A1), tmp_path / "good" / A1.notebook)
    done = run_pytest(tmp_path, "--submission", str(good), "-q")
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{len(expected_ids(A1.id))} passed" in done.stdout
    bad = samples.write(samples.build(A1, WRONG_GRADIENT), tmp_path / "bad" / A1.notebook)
    junit = tmp_path / "report.xml"
    done = run_pytest(tmp_path, "--submission", str(bad), "-q", "--junitxml", str(junit))
    assert done.returncode == 1
    failed = {name for name, passed in outcomes(junit).items() if not passed}
    assert failed and all(name.startswith(f"{A1.id}.mse_gradient::") for name in failed), failed
    assert "exactly n times the expected one" in done.stdout  # the hint the student gets
    assert "gradient_descent" not in " ".join(failed)  # follow-through: its helper was replaced


def test_k_and_last_failed_select_items(tmp_path) -> None:
    bad = samples.write(samples.build(A1, WRONG_GRADIENT), tmp_path / A1.notebook)
    picked = run_pytest(tmp_path, "--submission", str(bad), "-q", "-k", "simple_linear_regression")
    count = sum("::simple_linear_regression::" in i for i in expected_ids(A1.id))
    assert picked.returncode == 0 and picked.stdout.splitlines()[-1].startswith(f"{count} passed"), picked.stdout
    first = run_pytest(tmp_path, "--submission", str(bad), "-q")
    assert first.returncode == 1
    again = run_pytest(tmp_path, "--submission", str(bad), "-q", "--lf")
    assert again.returncode == 1
    failures = [line for line in again.stdout.splitlines() if line.startswith("FAILED")]
    assert failures and all("::mse_gradient::" in line for line in failures), again.stdout[-2000:]
    assert "passed" not in again.stdout.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.timeout(900)  # a3: every catalogued mistake trains its model, graded both ways
@pytest.mark.parametrize("assignment", COURSE.assignments())
def test_pytest_and_dlgrade_grade_give_the_same_verdicts_on_the_mistake_catalogue(tmp_path, grade,
                                                                                  assignment) -> None:
    """Every mistake of the assignment's catalogue, graded both ways: a check passes under dlgrade grade exactly
    when all its pytest items pass."""
    definition = COURSE.assignment(assignment)
    catalogue = definition.suite.mistakes
    notebooks = []
    expected: dict[tuple[str, str], bool] = {}
    said: dict[tuple[str, str], str] = {}  # dlgrade grade's feedback, shown where the two disagree
    checks = definition.suite.checks
    for i, mistake in enumerate(catalogue):
        nb = samples.build(definition, mistake.cells)
        path = samples.write(nb, tmp_path / f"m{i}" / definition.notebook)
        notebooks += ["--submission", str(path)]
        for check, test in zip(checks, grade(definition, nb).tests, strict=True):
            passed = test.score == test.max_score and not test.output.startswith("Advisory")
            expected[(str(path), f"{check.function}: {check.description}")] = passed
            said[(str(path), f"{check.function}: {check.description}")] = test.output
    junit = tmp_path / "report.xml"
    run_pytest(tmp_path, *notebooks, "--assignment", assignment, "-q", "--junitxml", str(junit))
    by_prefix = {p.replace("/", "."): p for p in notebooks[1::2]}  # junit's class names spell paths with dots
    got: dict[tuple[str, str], bool] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        prefix, _, function = case.get("classname").rpartition(f".{assignment}.")
        key = (by_prefix[prefix], f"{function}: {case.get('name').rpartition('[')[0]}")
        got[key] = got.get(key, True) and case.find("failure") is None
    assert len(expected) == len(catalogue) * len(checks)
    differ = {k: (expected[k], got.get(k), said[k]) for k in expected if expected[k] != got.get(k)}
    assert not differ, differ  # (dlgrade grade's verdict, pytest's, dlgrade grade's feedback)

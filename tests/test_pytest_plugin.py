"""The checks under pytest: ``python -m pytest -p autograder.pytest_plugin --submission NOTEBOOK`` from any folder,
one item per check, seed and device, the student's message on failure, and ``dlgrade grade``'s verdicts."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from autograder import course, policy, samples

A1 = "a1_linear_regression"
WRONG_GRADIENT = {"mse_gradient": "def mse_gradient(beta, X, y):\n    return X.T @ (X @ beta - y)\n"}


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """pytest with the plugin, started in ``folder`` (not this project: any folder works)."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "autograder.pytest_plugin", "-p", "no:randomly",
                           "--rootdir", str(folder), *args], cwd=folder, capture_output=True, text=True, timeout=600)


def expected_ids(assignment: str) -> list[str]:
    ids = []
    for check in course.suite(assignment).checks:
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
    notebook = samples.write(samples.build(A1), tmp_path / course.notebook_name(A1))
    done = run_pytest(tmp_path, "--submission", str(notebook), "--collect-only", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = [line for line in done.stdout.splitlines() if line.startswith(A1 + "::")]
    assert listed == expected_ids(A1)
    assert "a1_linear_regression::mse_gradient::matches the reference on random beta, X and y[hidden-1-cpu]" in listed


def test_the_reference_passes_and_a_mistake_fails_with_the_students_message(tmp_path) -> None:
    good = samples.write(samples.build(A1), tmp_path / "good" / course.notebook_name(A1))
    done = run_pytest(tmp_path, "--submission", str(good), "-q")
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{len(expected_ids(A1))} passed" in done.stdout
    bad = samples.write(samples.build(A1, WRONG_GRADIENT), tmp_path / "bad" / course.notebook_name(A1))
    junit = tmp_path / "report.xml"
    done = run_pytest(tmp_path, "--submission", str(bad), "-q", "--junitxml", str(junit))
    assert done.returncode == 1
    failed = {name for name, passed in outcomes(junit).items() if not passed}
    assert failed and all(name.startswith(f"{A1}.mse_gradient::") for name in failed), failed
    assert "exactly n times the expected one" in done.stdout  # the hint the student gets
    assert "gradient_descent" not in " ".join(failed)  # follow-through: its helper was replaced


def test_k_and_last_failed_select_items(tmp_path) -> None:
    bad = samples.write(samples.build(A1, WRONG_GRADIENT), tmp_path / course.notebook_name(A1))
    picked = run_pytest(tmp_path, "--submission", str(bad), "-q", "-k", "simple_linear_regression")
    count = sum("::simple_linear_regression::" in i for i in expected_ids(A1))
    assert picked.returncode == 0 and picked.stdout.splitlines()[-1].startswith(f"{count} passed"), picked.stdout
    first = run_pytest(tmp_path, "--submission", str(bad), "-q")
    assert first.returncode == 1
    again = run_pytest(tmp_path, "--submission", str(bad), "-q", "--lf")
    assert again.returncode == 1
    failures = [line for line in again.stdout.splitlines() if line.startswith("FAILED")]
    assert failures and all("::mse_gradient::" in line for line in failures), again.stdout[-2000:]
    assert "passed" not in again.stdout.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", course.available())
def test_pytest_and_dlgrade_grade_give_the_same_verdicts_on_the_mistake_catalogue(tmp_path, grade,
                                                                                  assignment) -> None:
    """Every mistake of the assignment's catalogue, graded both ways: a check passes under dlgrade grade exactly
    when all its pytest items pass."""
    catalogue = course.suite(assignment).mistakes
    notebooks = []
    expected: dict[tuple[str, str], bool] = {}
    checks = course.suite(assignment).checks
    for i, mistake in enumerate(catalogue):
        nb = samples.build(assignment, mistake.cells)
        path = samples.write(nb, tmp_path / f"m{i}" / course.notebook_name(assignment))
        notebooks += ["--submission", str(path)]
        for check, test in zip(checks, grade(assignment, nb).tests, strict=True):
            passed = test.score == test.max_score and not test.output.startswith("Advisory")
            expected[(str(path), f"{check.function}: {check.description}")] = passed
    junit = tmp_path / "report.xml"
    run_pytest(tmp_path, *notebooks, "--assignment", assignment, "-q", "--junitxml", str(junit))
    by_prefix = {p.replace("/", "."): p for p in notebooks[1::2]}  # junit's class names spell paths with dots
    got: dict[tuple[str, str], bool] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        prefix, _, function = case.get("classname").rpartition(f".{assignment}.")
        key = (by_prefix[prefix], f"{function}: {case.get('name').rpartition('[')[0]}")
        got[key] = got.get(key, True) and case.find("failure") is None
    assert len(expected) == len(catalogue) * len(course.suite(assignment).checks)
    assert expected == {k: got.get(k) for k in expected}

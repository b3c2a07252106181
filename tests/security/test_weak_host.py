"""A weak host is safe by default: without bubblewrap's namespaces (a plain container run, a host where it is
missing) `dlgrade grade` refuses to grade and says what to install or which flag accepts the risk; the protection
table tells the truth in every mode; and with `--allow-weak-sandbox` (recorded in every result) student code can
import everything the grading environment can, wherever Python lives, and every round-three attack still gains
nothing while correct submissions keep their points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_unearned as attacks
from conftest import A1, A3, A5, COURSE, TEST_LIMITS, clear_sandbox_caches, copy_course, failing_functions, outputs

from autograder.authoring import samples
from autograder.course import sandbox_imports
from autograder.grading.grader import Grader
from autograder.sandbox import Worker, protections
from autograder.sandbox.doctor import ESSENTIAL, NO_CHANNEL, USER, private_python
from autograder.sandbox.worker import SandboxError

pytestmark = pytest.mark.xdist_group("weak_host")
WEAK = {"DLGRADE_NO_BWRAP": "1"}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_a_weak_host_refuses_to_grade_and_says_what_to_do(tmp_path: Path) -> None:
    course = copy_course(tmp_path / "c", [A1.id])
    samples.write(samples.build(A1), course.root / "submitted" / "ada" / A1.id / A1.notebook)
    done = cli("grade", str(course.root), env=WEAK)
    assert done.returncode == 2, done.stderr
    assert "cannot keep the references secret or the students apart" in done.stderr
    assert "apt-get install bubblewrap" in done.stderr and "--allow-weak-sandbox" in done.stderr
    assert "--cap-add SYS_ADMIN,NET_ADMIN" in done.stderr
    assert not (course.root / "graded").exists()  # refused before anything was graded
    demo = cli("demo", env=WEAK)
    assert demo.returncode == 2 and "--allow-weak-sandbox" in demo.stderr


@pytest.mark.requires_protection(USER)
def test_with_the_flag_it_grades_and_every_result_records_what_was_off(tmp_path: Path) -> None:
    course = copy_course(tmp_path / "c", [A1.id])
    samples.write(samples.build(A1), course.root / "submitted" / "ada" / A1.id / A1.notebook)
    done = cli("grade", str(course.root), "--allow-weak-sandbox", env=WEAK)
    assert done.returncode == 0, done.stderr
    assert "WARNING: grading with --allow-weak-sandbox" in done.stderr
    document = json.loads((course.root / "graded" / "ada" / A1.id / "results.json").read_text())
    assert document["score"] == 12
    assert set(document["extra_data"]["weak_sandbox"]) == set(ESSENTIAL)


def test_the_table_tells_the_truth_without_namespaces(sandbox_mode) -> None:
    """Without a network namespace, sandboxes that run at once can reach each other (loopback, abstract sockets):
    the table no longer says that nothing passes between submissions."""
    sandbox_mode(no_bwrap=True)
    rows = {p.name: p for p in protections()}
    assert all(not rows[name].active for name in ESSENTIAL)
    assert not rows[NO_CHANNEL].active and "loopback" in rows[NO_CHANNEL].how or os.geteuid() != 0
    done = cli("doctor", env=WEAK)
    assert "OFF  nothing passes between submissions" in done.stdout, done.stdout
    private = private_python()
    assert (f"note: {private} is closed to other users" in done.stdout) == bool(private), done.stdout


@pytest.fixture(scope="module")
def weak_grade(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """grade(assignment, notebook, only=None) through a sandbox started without bubblewrap (the weak-host mode)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLGRADE_NO_BWRAP", "1")
        clear_sandbox_caches()
        preload, warm, probes = sandbox_imports([COURSE.assignment(a) for a in COURSE.assignments()])
        worker = Worker(0, TEST_LIMITS, preload=("numpy",), hide=COURSE.secrets, probes=probes)
        try:
            worker.start()
        except SandboxError as err:
            pytest.fail(f"no sandbox without bubblewrap here: {err}")
        graders: dict[str, Grader] = {}

        base = tmp_path_factory.mktemp("weak")

        def grade(assignment, nb, only=None):
            folder = base / "submitted" / "student" / assignment.id
            samples.write(nb, folder / assignment.notebook)
            graders.setdefault(assignment.id, Grader(assignment))
            return graders[assignment.id].grade(folder, worker, "student", only=only)

        try:
            yield grade
        finally:
            worker.close()
    clear_sandbox_caches()


@pytest.mark.requires_protection(USER)
def test_student_code_imports_what_the_grading_environment_can_wherever_python_lives(weak_grade) -> None:
    """Python under a folder the student's uid cannot enter (pyenv under a 0700 /root, as on this project's machine)
    used to leave student code with only what the sandbox imported first: `from sklearn.metrics import
    accuracy_score` got "No module named 'sysconfig'", a DataLoader with worker processes "No module named
    'multiprocessing.queues'"."""
    code = ("def mse_loss(beta, X, y):\n"
            "    import sysconfig, multiprocessing.queues, torch\n"
            "    from sklearn.metrics import mean_squared_error\n"
            "    from torch.utils.data import DataLoader, TensorDataset\n"
            "    loader = DataLoader(TensorDataset(torch.arange(4.0)), batch_size=2, num_workers=2)\n"
            "    assert sum(float(b[0].sum()) for b in loader) == 6.0\n"
            "    return float(mean_squared_error(y, X @ beta) / 2)\n")
    result = weak_grade(A1, samples.build(A1, {"mse_loss": code}), only={"mse_loss"})
    assert result.score == result.max_score, outputs(result, "mse_loss")
    if private_python() is None:
        print("note: this machine's Python is readable by every user: the import test proves less here")


@pytest.mark.requires_protection(USER)
def test_a_correct_worker_process_dataloader_gets_its_points_on_a_weak_host(weak_grade) -> None:
    code = ("def make_dataloader(dataset, batch_size, shuffle, seed):\n"
            "    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=2,\n"
            "                      generator=torch.Generator().manual_seed(seed))\n")
    result = weak_grade(A3, samples.build(A3, {"make_dataloader": code}), only={"make_dataloader"})
    assert "make_dataloader" not in failing_functions(result), outputs(result, "make_dataloader")


ATTACKS = {
    "float16 zeros": (A1, attacks.ZEROS16, {"gradient_descent", "minibatch_sgd"}),
    "a model cached from an earlier call": (A5, {"train_classifier": attacks.CACHING}, {"train_classifier"}),
    "a note from hidden calls in a public message": (A1, {"normal_equation": attacks.RECORDER,
                                                          "mse_loss": attacks.TELLER}, {"mse_loss"}),
    "the follow-through stub as an oracle": (A1, {"mse_gradient": attacks.WRONG_GRADIENT,
                                                  "gradient_descent": attacks.ORACLE}, {"gradient_descent"}),
    "x**3 computed, not learned": (A3, {"fit_cubic": attacks.X_CUBED}, {"fit_cubic"}),
}


@pytest.mark.slow
@pytest.mark.requires_protection(USER)
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_round_three_attacks_gain_nothing_on_a_weak_host_either(weak_grade, attack: str) -> None:
    assignment, cells, targets = ATTACKS[attack]
    result = weak_grade(assignment, samples.build(assignment, cells), only=set(cells))
    lost = failing_functions(result)
    assert targets <= lost, (attack, result.to_json())
    if attack == "a note from hidden calls in a public message":
        text = outputs(result, "mse_loss")
        assert "(20, 3)" in text and all(s in ("(20, 3)", "(20, 1)") for s in attacks.shapes_in(text)), text


@pytest.mark.slow
@pytest.mark.requires_protection(USER)
@pytest.mark.parametrize("assignment", [A1, A3], ids=["a1", "a3"])
def test_correct_submissions_keep_full_marks_on_a_weak_host(weak_grade, assignment) -> None:
    result = weak_grade(assignment, samples.build(assignment))
    assert result.score == result.max_score, result.to_json()

"""The sandbox itself: protections reported, fallback without bubblewrap, fork safety with torch, cleanup."""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import A1, COURSE, copy_course

from autograder.authoring import samples
from autograder.course import sandbox_imports
from autograder.sandbox import Limits, Worker, protection_table, protections
from autograder.sandbox import worker as worker_module


def test_doctor_prints_every_protection() -> None:
    done = subprocess.run([sys.executable, "-m", "autograder", "doctor"], capture_output=True, text=True)
    assert done.returncode == 0
    for p in protections():
        assert p.name in done.stdout


def test_without_bubblewrap_grading_still_works_and_says_what_is_off(tmp_path) -> None:
    """Without bubblewrap's namespaces dlgrade grade refuses, naming the flag that accepts the risk; with it, grading
    works and the table says what is off."""
    root = copy_course(tmp_path / "course", [A1.id]).root
    samples.write(samples.build(A1), root / "submitted" / "ada" / A1.id / A1.notebook)
    env = {**os.environ, "DLGRADE_NO_BWRAP": "1", "DLGRADE_NO_CGROUP": "1"}
    refused = subprocess.run([sys.executable, "-m", "autograder", "grade", str(root), "--workers", "1"],
                             capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "--allow-weak-sandbox" in refused.stderr, refused.stderr
    assert not (root / "graded").exists()
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(root), "--workers", "1",
                           "--allow-weak-sandbox"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "OFF  no network" in done.stderr and "OFF  memory and PID cgroup" in done.stderr
    full = sum(A1.points.values())
    assert f"{full:6.2f} / {full:g}" in done.stdout


def test_protection_table_marks_missing_protections() -> None:
    table = protection_table([p.__class__(p.name, False, "test") for p in protections()])
    assert table.count("OFF") == len(protections())


@pytest.mark.parametrize("view, uid, warned", [(False, False, True), (True, False, False), (False, True, False)])
def test_the_table_warns_when_student_code_could_read_the_references(view, uid, warned) -> None:
    """Neither a filesystem view nor a separate uid: the one case where a submission can copy the reference."""
    on = {"filesystem view without solutions/tests": view, "unprivileged user": uid}
    table = protection_table([p.__class__(p.name, on.get(p.name, True), "test") for p in protections()])
    assert ("WARNING: student code runs as this user: a submission could copy the reference solutions" in table) \
        == warned


def test_torch_in_cells_and_in_forked_calls_does_not_deadlock(worker) -> None:
    cells = [{"index": 0, "source": (
        "import torch\n"
        "torch.set_num_threads(4)\n"
        "a = torch.randn(512, 512)\n"
        "for _ in range(5):\n"
        "    a = torch.tanh(a @ a / 512)\n"
        "def f(x):\n"
        "    t = torch.as_tensor(x)\n"
        "    return (t @ t.T).sum().item()\n")}]
    run = worker.run_notebook(cells)
    assert run.cells[0].ok
    x = np.random.default_rng(0).normal(size=(300, 300))
    for _ in range(3):
        reply = worker.call("probes.call", {"name": "f", "args": [x]}, seconds=20)
        assert reply.ok, reply.error
        assert abs(reply.value["value"] - (x @ x.T).sum()) < 1e-6 * abs((x @ x.T).sum()) + 1e-6
    worker.end_submission()


def test_closing_a_worker_leaves_no_process(tmp_path) -> None:
    """A process the notebook started (here ``sleep`` with a duration no other test uses, found by its command line
    whatever uid the sandbox ran it as) is gone once the worker is closed, and so is everything under the student's
    uid."""
    marker = f"300.{os.getpid()}"
    worker = Worker(5, Limits(cell_seconds=3), hide=COURSE.secrets)
    worker.start()
    pid, uid = worker.proc.pid, worker.uid
    run = worker.run_notebook([{"index": 0, "source": f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])"}])
    assert run.cells[0].ok, run.cells[0].error
    assert _processes(lambda proc: _cmdline(proc) == ["sleep", marker]), "the notebook's process did not start"
    worker.close()
    assert not Path(f"/proc/{pid}").exists()
    assert _processes(lambda proc: _cmdline(proc) == ["sleep", marker]) == []
    if uid is not None:  # root: student code ran as a uid of its own
        assert _processes(lambda proc: _uid(proc) == uid) == []


def _processes(wanted) -> list[Path]:
    return [p for p in Path("/proc").glob("[0-9]*") if wanted(p)]


def _cmdline(proc: Path) -> list[str]:
    try:
        return (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _uid(proc: Path) -> int | None:
    try:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="runs student code as another uid, which needs root")
def test_a_machine_where_student_code_cannot_work_stops_the_grader_instead_of_giving_zeros(tmp_path) -> None:
    """The student's uid cannot enter its working folder (here: temporary files under a folder only root may
    enter; in the wild: a container whose / is mode 0700). Grading stops with the cause; no one gets a zero."""
    root = copy_course(tmp_path / "course", [A1.id]).root
    samples.write(samples.build(A1), root / "submitted" / "ada" / A1.id / A1.notebook)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    env = {**os.environ, "DLGRADE_NO_BWRAP": "1", "DLGRADE_NO_CGROUP": "1", "TMPDIR": str(locked)}
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(root), "--workers", "1",
                           "--allow-weak-sandbox"], capture_output=True, text=True, env=env)
    assert done.returncode == 2, done.stderr
    assert "student code cannot run on this machine" in done.stderr and "Permission denied" in done.stderr
    assert not list(root.glob("graded/*/*/results.json"))


@pytest.mark.slow
@pytest.mark.parametrize("warm", [True, False], ids=["grading", "public-tests"])
def test_training_in_the_sandbox_does_without_dynamo_until_something_asks_for_it(warm) -> None:
    """The worker's stand-in for ``torch._dynamo`` (1.1 s of imports) serves eager training and checkpoints with
    the same numbers as the grader's real module, and any other use of it (an attribute, a submodule's import)
    loads the real one."""
    train = (
        "import io, sys, torch\n"
        "def run():\n"
        "    torch.manual_seed(0)\n"
        "    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))\n"
        "    losses = []\n"
        "    for opt in (torch.optim.Adam(model.parameters(), lr=0.01), torch.optim.SGD(model.parameters(), lr=0.1)):\n"
        "        for _ in range(5):\n"
        "            opt.zero_grad()\n"
        "            loss = model(torch.ones(8, 3)).pow(2).mean()\n"
        "            loss.backward()\n"
        "            opt.step()\n"
        "            losses.append(loss.item())\n"
        "    torch.save(opt.state_dict(), io.BytesIO())\n"
        "    return losses\n"
        "def dynamo():\n"
        "    return type(sys.modules['torch._dynamo']).__name__\n"
        "def compiling():\n"
        "    return [torch._dynamo.is_compiling(), type(sys.modules['torch._dynamo']).__name__]\n"
        "def submodule():\n"
        "    import torch._dynamo.config, torch._dynamo.eval_frame\n"
        "    config = sys.modules['torch._dynamo.config']\n"
        "    return [torch._dynamo.eval_frame.config is config is torch._dynamo.config,\n"
        "            type(sys.modules['torch._dynamo']).__name__]\n")
    namespace: dict = {}
    exec(train, namespace)
    expected = namespace["run"]()
    with Worker(0, Limits(cell_seconds=30), preload=["torch"], hide=COURSE.secrets, warm_torch=warm) as worker:
        assert worker.run_notebook([{"index": 0, "source": train}]).cells[0].ok
        calls = {name: worker.call("probes.call", {"name": name, "args": []}, seconds=30).value["value"]
                 for name in ("run", "dynamo", "compiling", "submodule")}
        worker.end_submission()
    assert calls["run"] == expected
    assert calls["dynamo"] == "LazyDynamo"
    assert calls["compiling"] == [False, "module"]
    assert calls["submodule"] == [True, "module"]  # one copy of each submodule, the real package's


def test_a_call_server_holds_its_own_two_pipes_and_nothing_of_the_notebooks_process(worker) -> None:
    """Calls go from the zygote straight to each function's call server, on pipes made for it: a server holds no
    descriptor of the notebook's process (its channel to the zygote, the socket on which servers' pipes arrive) nor
    another function's; a server that exits is described and the next call gets a fresh one; a call that kills the
    notebook's process costs only the calls that need a new server, with a reason, and the next submission runs."""
    cells = [{"index": 0, "source": (
        "import os\n"
        "def fds():\n"
        "    return {f: os.readlink(f'/proc/self/fd/{f}') for f in os.listdir('/proc/self/fd')\n"
        "            if os.path.exists(f'/proc/self/fd/{f}')}\n"
        "def other():\n"
        "    return fds()\n"
        "def leave():\n"
        "    os._exit(5)\n"
        "def kill_notebook():\n"
        "    os.kill(os.getppid(), 9)\n"
        "    return 1\n")}]

    def call(name: str):
        return worker.call("probes.call", {"name": name, "args": []})

    worker.run_notebook(cells)
    try:
        mine, theirs = call("fds").value["value"], call("other").value["value"]
        pipes = {fd: target for fd, target in mine.items() if target.startswith("pipe:")}
        assert len(pipes) == 2 and set(mine.values()) - set(pipes.values()) == {"/dev/null"}, mine
        assert not set(pipes.values()) & set(theirs.values()), (mine, theirs)
        left = call("leave")
        assert not left.ok and "exit code 5" in left.error.message, left.error
        assert call("leave").error.message == left.error.message and call("fds").ok
        assert call("kill_notebook").ok
        dead = call("something_new")
        assert not dead.ok and "notebook's process" in dead.error.message, dead.error
    finally:
        worker.end_submission()
    worker.run_notebook(cells)
    assert call("other").ok
    worker.end_submission()


def test_a_call_that_asks_too_often_costs_that_call_only() -> None:
    """Follow-through questions are bounded per call (``Limits.asks_per_call``): past it, that call fails with a
    reason, the sandbox is replaced, and the next call runs."""
    cells = [{"index": 0, "source": (
        "from dlgrade_runtime.asking import ask\n"
        "def greedy():\n"
        "    return [ask('probes.call', {'name': 'helper', 'args': []}) for _ in range(5)]\n"
        "def modest():\n"
        "    return [ask('probes.call', {'name': 'helper', 'args': []}) for _ in range(3)]\n")}]
    with Worker(0, Limits(asks_per_call=3), hide=COURSE.secrets) as worker:
        worker.run_notebook(cells)
        greedy = worker.call("probes.call", {"name": "greedy", "args": []}, on_ask=lambda probe, args: 7)
        modest = worker.call("probes.call", {"name": "modest", "args": []}, on_ask=lambda probe, args: 7)
        worker.end_submission()
    assert not greedy.ok and "more than 3 times" in greedy.error.message, greedy.error
    assert modest.ok and modest.value["value"] == [7, 7, 7], modest


@pytest.mark.parametrize("assignment", [a for a in COURSE.assignments() if COURSE.assignment(a).probes_path])
def test_an_assignments_probes_are_imported_once_before_any_student_runs(assignment) -> None:
    """Every graded function gets a call server of its own (a fork of the notebook's final state): the probes those
    servers run (the course's probes/<id>.py, put into the sandbox's runtime) are imported by the sandbox before it
    forks, not once in each server."""
    preload, warm, probes = sandbox_imports([COURSE.assignment(assignment)])
    module = f"dlgrade_runtime.{COURSE.assignment(assignment).probe_module}"
    assert module == f"dlgrade_runtime.probes_{assignment}" and list(probes) == [module.split(".")[1]]
    cells = [{"index": 0, "source": f"import sys\nseen = {module!r} in sys.modules\ndef f():\n    return seen\n"}]
    with Worker(0, Limits(cell_seconds=30), preload=preload, hide=COURSE.secrets, warm_torch=warm,
                probes=probes) as worker:
        worker.run_notebook(cells)
        seen = worker.call("probes.call", {"name": "f", "args": []}, seconds=30)
        worker.end_submission()
    assert seen.ok and seen.value["value"] is True, seen


def test_the_sandbox_starts_from_the_installations_compiled_runtime(tmp_path, monkeypatch) -> None:
    """pip compiles an installed package: each sandbox takes those files along instead of compiling its runtime at
    every start."""
    compiled = tmp_path / "runtime"
    shutil.copytree(worker_module.RUNTIME_DIR, compiled, ignore=shutil.ignore_patterns("__pycache__"))
    assert compileall.compile_dir(compiled, quiet=1)
    monkeypatch.setattr(worker_module, "RUNTIME_DIR", compiled)
    cells = [{"index": 0, "source": "import os, dlgrade_runtime.protocol as p\n"
                                    "def compiled():\n    return os.path.exists(p.__cached__)\n"}]
    with Worker(0, Limits(cell_seconds=30), hide=COURSE.secrets) as worker:
        worker.run_notebook(cells)
        found = worker.call("probes.call", {"name": "compiled", "args": []}, seconds=30)
        worker.end_submission()
    assert found.ok and found.value["value"] is True, found

"""Hostile and broken submissions: none gains a point, each costs only what it touched, nothing escapes.

Every test grades through the real sandbox and then inspects the host: no process of a student uid left,
no file written outside the sandbox, no connection made, results.json small.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path

import pytest
from conftest import TEST_LIMITS, failing_functions, outputs

from autograder import course, samples, sandbox
from autograder.grading import Grader
from autograder.sandbox import Worker, protections

A1 = "a1_linear_regression"
SANDBOXED = all(p.active for p in protections())
needs_sandbox = pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap, root and cgroups (see dlgrade doctor)")
UID_BASE = int(os.environ.get("DLGRADE_UID_BASE", "61000"))


def student_processes() -> list[str]:
    """Processes on the host still running as a sandbox student uid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if UID_BASE <= uid < UID_BASE + 64:
            found.append(f"{entry.name}: {(entry / 'cmdline').read_bytes()[:80]!r}")
    return found


def grade_hostile(grade, replace=None, extra=(), lost=frozenset()) -> tuple[object, str]:
    """Grade a solved notebook with hostile edits; assert it lost exactly ``lost`` and left nothing behind."""
    result = grade(A1, samples.build(A1, replace or {}, list(extra)))
    assert failing_functions(result) == set(lost), result.to_json()
    assert result.score == sum(course.points(A1)[f] for f in course.points(A1) if f not in lost)
    assert len(json.dumps(result.to_json())) < 1_000_000
    assert student_processes() == []
    return result, "\n".join(outputs(result, f) for f in lost) + "\n" + result.output


# -- the reference and the comparison cannot be reached --------------------------------------------

@needs_sandbox
def test_reading_the_reference_from_disk_or_sys_modules_finds_nothing(grade) -> None:
    ref = course.course_root() / "solutions" / f"{A1}.py"
    code = (
        "def normal_equation(X, y):\n"
        "    import sys, os, glob\n"
        f"    paths = [{str(ref)!r}, {str(course.source_notebook(A1))!r}]\n"
        "    paths += glob.glob('/opt/*/solutions') + glob.glob('/opt/*/autograder/checks')\n"
        "    paths += [p + '/autograder/checks' for p in sys.path] + [p + '/solutions' for p in sys.path]\n"
        "    seen = [p for p in paths if os.path.exists(p)]\n"
        "    mods = [m for m in sys.modules if 'solution' in m or m.startswith('autograder')]\n"
        "    raise RuntimeError(f'seen={seen} modules={mods}')\n"
    )
    _, text = grade_hostile(grade, {"normal_equation": code}, lost={"normal_equation"})
    assert "seen=[] modules=[]" in text


@needs_sandbox
@pytest.mark.parametrize("patch", [
    "numpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a, **k: True",
    "numpy.testing.assert_allclose = lambda *a, **k: None",
    "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True",
    "import builtins\nclass Never(Exception):\n    pass\nbuiltins.AssertionError = Never",
])
def test_patching_comparison_functions_changes_nothing(grade, patch) -> None:
    wrong = "def mse_loss(beta, X, y):\n    return 0.0\n"
    grade_hostile(grade, {"mse_loss": wrong}, ["import numpy, numpy.testing\n" + patch], lost={"mse_loss"})


@needs_sandbox
def test_frame_and_gc_inspection_find_no_expected_values(grade) -> None:
    code = (
        "def mse_gradient(beta, X, y):\n"
        "    import gc, sys\n"
        "    import numpy as np\n"
        "    f, names = sys._getframe(1), []\n"
        "    while f is not None:\n"
        "        names += [k for k in f.f_locals if 'want' in k or 'expected' in k or 'ref' in k]\n"
        "        f = f.f_back\n"
        "    arrays = [o for o in gc.get_objects() if isinstance(o, np.ndarray) and o.shape == beta.shape\n"
        "              and o is not beta]\n"
        "    return arrays[0] if arrays else np.full(beta.shape, float(len(names)))\n"
    )
    grade_hostile(grade, {"mse_gradient": code}, lost={"mse_gradient", "gradient_descent", "minibatch_sgd"})


@needs_sandbox
def test_a_lying_ndarray_subclass_does_not_pass(grade) -> None:
    code = (
        "class Liar(np.ndarray):\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    def __array_finalize__(self, obj):\n"
        "        pass\n"
        "def add_intercept(X):\n"
        "    return np.zeros((X.shape[0], X.shape[1] + 1)).view(Liar)\n"
    )
    grade_hostile(grade, {"add_intercept": code}, lost={"add_intercept"})


# -- crashes and resource abuse cost only the function that does it ----------------------------------

CRASHES = {
    "os_exit": ("import os\n    os._exit(0)", "exit code 0"),
    "segfault": ("import ctypes\n    ctypes.string_at(0)", "segmentation fault"),
    "keyboard_interrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    "sys_exit": ("import sys\n    sys.exit(3)", "SystemExit: 3"),
    "recursion": ("return add_intercept(X)", "RecursionError"),
    "spin_ignoring_signals": (
        "import signal\n    for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGXCPU):\n"
        "        signal.signal(s, signal.SIG_IGN)\n    while True:\n        pass", "did not finish"),
    "memory_bomb_at_once": ("return np.ones((2**31, 1))", "out of memory"),
    # touching pages is slow in a VM: the growing bomb meets the memory limit or the time limit, whichever first
    "memory_bomb_growing": ("chunks = []\n    while True:\n        chunks.append(bytearray(256 * 2**20))",
                            ("out of memory", "did not finish")),
    "spinning_thread_and_orphans": (
        "import threading, subprocess, os\n"
        "    threading.Thread(target=lambda: [None for _ in iter(int, 1)], daemon=False).start()\n"
        "    subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
        "    if os.fork() == 0:\n        os.setsid()\n        import time\n        time.sleep(1000)\n"
        "    while True:\n        pass", "did not finish"),
    "fork_loop": ("import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n"
                  "            pass", "did not finish"),
}


@needs_sandbox
@pytest.mark.parametrize("name", list(CRASHES))
def test_a_crashing_function_costs_only_its_own_tests(grade, name) -> None:
    body, fragment = CRASHES[name]
    code = f"def add_intercept(X):\n    {body}\n"
    _, text = grade_hostile(grade, {"add_intercept": code}, lost={"add_intercept"})
    assert any(f in text for f in ((fragment,) if isinstance(fragment, str) else fragment)), text


@needs_sandbox
def test_printing_200_mb_costs_nothing_and_keeps_results_small(grade) -> None:
    code = ("def add_intercept(X):\n    print('x' * 100_000_000)\n    import sys\n"
            "    sys.stderr.write('y' * 100_000_000)\n    return np.hstack([np.ones((len(X), 1)), X])\n")
    grade_hostile(grade, {"add_intercept": code}, ["print('z' * 200_000_000)"], lost=set())


@needs_sandbox
@pytest.mark.parametrize("cell", [
    "import time\ntime.sleep(600)",
    "raise RuntimeError('exploration went wrong')",
    "import sys\nsys.exit(0)",
    "import os\nos._exit(0)",
    "import ctypes\nctypes.string_at(0)",
])
def test_a_bad_top_level_cell_costs_only_itself(grade, cell) -> None:
    nb = samples.build(A1)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first + 1, samples.nbformat.v4.new_code_cell(cell))
    result = grade(A1, nb)
    assert result.score == result.max_score
    assert "failed and was skipped" in result.output
    assert student_processes() == []


# -- the host: network, /tmp, other students' files -------------------------------------------------

@needs_sandbox
def test_no_connection_reaches_the_host(grade) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    code = ("def normal_equation(X, y):\n    import socket\n    try:\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "        raise RuntimeError('connected')\n    except OSError as err:\n"
            "        raise RuntimeError(f'no network: {err}')\n")
    _, text = grade_hostile(grade, {"normal_equation": code}, lost={"normal_equation"})
    assert "no network" in text
    with pytest.raises(TimeoutError):
        server.accept()
    server.close()


@needs_sandbox
def test_host_tmp_is_neither_readable_nor_writable(grade) -> None:
    secret = Path("/tmp") / f"dlgrade-secret-{uuid.uuid4().hex}"
    secret.write_text("hidden")
    sentinel = Path("/tmp") / f"dlgrade-sentinel-{uuid.uuid4().hex}"
    code = ("def mse_loss(beta, X, y):\n    import os\n"
            f"    try:\n        open({str(sentinel)!r}, 'w').write('escaped')\n    except OSError:\n        pass\n"
            f"    raise RuntimeError('secret visible: ' + str(os.path.exists({str(secret)!r})))\n")
    try:
        _, text = grade_hostile(grade, {"mse_loss": code}, lost={"mse_loss"})
        assert "secret visible: False" in text
        assert not sentinel.exists()
    finally:
        secret.unlink()
        sentinel.unlink(missing_ok=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="a uid of its own per worker needs root")
@pytest.mark.parametrize("bubblewrap", [True, False], ids=["bubblewrap", "no-namespaces"])
def test_nothing_a_submission_leaves_in_temporary_folders_reaches_the_next_one(bubblewrap, monkeypatch,
                                                                                tmp_path) -> None:
    """Two students graded one after the other by the same worker, with bubblewrap or without namespaces (a
    container's plain run, Gradescope): what the first leaves in /tmp, /var/tmp or /dev/shm (its answers for a
    friend, say) is gone before the second runs."""
    if bubblewrap and not SANDBOXED:
        pytest.skip("needs bubblewrap, root and cgroups (see dlgrade doctor)")
    if not bubblewrap:
        monkeypatch.setattr(sandbox, "_bwrap_works", lambda: None)
    names = [f"dlgrade-drop-{uuid.uuid4().hex}", f"dlgrade-dropdir-{uuid.uuid4().hex}"]
    drop = ("import os\n"
            "for d in ('/tmp', '/var/tmp', '/dev/shm'):\n"
            "    try:\n"
            f"        open(os.path.join(d, {names[0]!r}), 'w').write('answers')\n"
            f"        os.makedirs(os.path.join(d, {names[1]!r}, 'inside'))\n"
            "    except OSError:\n"
            "        pass\n")
    look = ("def mse_loss(beta, X, y):\n    import os\n"
            f"    found = [os.path.join(d, n) for d in ('/tmp', '/var/tmp', '/dev/shm') for n in {names!r}]\n"
            "    raise RuntimeError(f'left behind: {[p for p in found if os.path.exists(p)]}')\n")
    grader = Grader(A1)
    with Worker(1, TEST_LIMITS, hide=course.secret_paths()) as worker:
        for student, nb in (("first", samples.build(A1, extra_cells=[drop])),
                            ("second", samples.build(A1, {"mse_loss": look}))):
            folder = tmp_path / "submitted" / student / A1
            samples.write(nb, folder / course.notebook_name(A1))
            result = grader.grade(folder, worker, student)
    assert failing_functions(result) == {"mse_loss"}
    assert "left behind: []" in outputs(result, "mse_loss")
    assert not [p for d in ("/tmp", "/var/tmp", "/dev/shm") for n in names if os.path.exists(p := os.path.join(d, n))]


# -- broken files become results with a reason -------------------------------------------------------

@pytest.mark.parametrize(("content", "reason"), [
    (b"", "the file is empty"),
    (b'{"cells": [', "not valid JSON"),
    (b'{"hello": "world"}', "not a Jupyter notebook"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not valid JSON"),
])
def test_a_broken_file_gets_zero_and_a_reason(grade, content, reason) -> None:
    result = grade(A1, content)
    assert result.score == 0 and len(result.tests) == len(course.suite(A1).checks)
    assert reason in result.output and all(reason in t.output for t in result.tests)


def test_a_renamed_upload_is_graded_with_a_note(grade) -> None:
    result = grade(A1, samples.build(A1), name="linear_regression (1).ipynb")
    assert result.score == result.max_score
    assert "graded 'linear_regression (1).ipynb'" in result.output


def test_a_notebook_without_nbgrader_metadata_is_graded_by_function_names(grade) -> None:
    nb = samples.build(A1)
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    result = grade(A1, nb)
    assert result.score == result.max_score
    assert "lost its nbgrader metadata" in result.output


def test_a_missing_notebook_gets_zero_and_a_reason(grade, tmp_path) -> None:
    result = grade(A1, b"not a notebook", name="notes.txt")
    assert result.score == 0 and "No notebook found: expected linear_regression.ipynb" in result.output

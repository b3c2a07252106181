"""Hostile and broken submissions: none gains a point, each costs only what it touched, nothing escapes.

Every test grades through the real sandbox and then inspects the host: no process of a student uid left,
no file written outside the sandbox, no connection made, results.json small. Each test names the protections it
exercises (``requires_protection``): it is skipped where they are missing, and fails instead under
``DLGRADE_REQUIRE_SANDBOX=1`` (CI). Crash, timeout and print tests need none and run everywhere.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path

import pytest
from conftest import A1, A2, A3, COURSE, TEST_LIMITS, failing_functions, outputs

from autograder import settings
from autograder.authoring import samples
from autograder.checking import refcache
from autograder.course import sandbox_imports
from autograder.grading.grader import Grader
from autograder.sandbox import Worker
from autograder.sandbox.doctor import (
    CGROUP,
    FILTER,
    NETWORK,
    NO_CHANNEL,
    PRIVATE_TMP,
    PROCESSES,
    USER,
    VIEW,
)

UID_BASE = settings.current().uid_base
requires = pytest.mark.requires_protection


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
    assert result.score == sum(A1.points[f] for f in A1.points if f not in lost)
    assert len(json.dumps(result.to_json())) < 1_000_000
    assert student_processes() == []
    return result, "\n".join(outputs(result, f) for f in lost) + "\n" + result.output


# -- the reference and the comparison cannot be reached --------------------------------------------

@requires(VIEW)
def test_reading_the_reference_from_disk_or_sys_modules_finds_nothing(grade) -> None:
    """Nor the course's checks and probes, nor the reference's cached outputs (they hold expected values, as
    solutions/ does)."""
    secrets = [A1.reference_path, A1.source, A1.checks_path, A3.probes_path, COURSE.root / "nbgrader_config.py",
               refcache.default_folder()]
    code = (
        "def normal_equation(X, y):\n"
        "    import sys, os, glob\n"
        f"    paths = {[str(p) for p in secrets]!r}\n"
        "    paths += glob.glob('/opt/*/solutions') + glob.glob('/opt/*/checks')\n"
        "    paths += glob.glob('/opt/*/autograder/checks')\n"
        "    paths += [p + '/autograder/checks' for p in sys.path] + [p + '/solutions' for p in sys.path]\n"
        "    paths += [p + '/checks' for p in sys.path]\n"
        "    seen = [p for p in paths if os.path.exists(p)]\n"
        "    mods = [m for m in sys.modules if 'solution' in m or m.startswith(('autograder', '_dlgrade'))]\n"
        "    raise RuntimeError(f'seen={seen} modules={mods}')\n"
    )
    _, text = grade_hostile(grade, {"normal_equation": code}, lost={"normal_equation"})
    assert "seen=[] modules=[]" in text


@pytest.mark.parametrize("patch", [
    "numpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a, **k: True",
    "numpy.testing.assert_allclose = lambda *a, **k: None",
    "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True",
    "import builtins\nclass Never(Exception):\n    pass\nbuiltins.AssertionError = Never",
])
def test_patching_comparison_functions_changes_nothing(grade, patch) -> None:
    wrong = "def mse_loss(beta, X, y):\n    return 0.0\n"
    grade_hostile(grade, {"mse_loss": wrong}, ["import numpy, numpy.testing\n" + patch], lost={"mse_loss"})


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
    grade_hostile(grade, {"mse_gradient": code}, lost={"mse_gradient"})


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


# -- observations only the student's process can make: forging them gains nothing ---------------------------

FORGE_INPUTS = (
    "import copy, importlib\n"
    "probes = importlib.import_module('dlgrade_runtime.probes')\n"
    "_call = probes.call\n"
    "def call(ns, name, args=(), kwargs=None, device=None, stubs=(), report_inputs=False):\n"
    "    sent = copy.deepcopy((list(args), dict(kwargs or {})))\n"
    "    report = _call(ns, name, args, kwargs, device, stubs, report_inputs)\n"
    "    if report_inputs:\n"
    "        report['inputs'] = {str(i): v for i, v in enumerate(sent[0])} | sent[1]\n"
    "    report['warnings'] = []\n"
    "    return report\n"
    "probes.call = call\n"
    "probes._same = lambda *args: True  # what turned 11/12 into 12/12 before\n"
)
IN_PLACE = ("def gradient_descent(X, y, lr, n_steps, beta_init=None):\n"
            "    beta = np.zeros(X.shape[1]) if beta_init is None else beta_init\n"
            "    path = [beta.copy()]\n    for _ in range(n_steps):\n"
            "        beta -= lr * mse_gradient(beta, X, y)\n        path.append(beta.copy())\n"
            "    return np.array(path)\n")


def test_hiding_an_in_place_change_from_the_probe_gains_nothing(grade) -> None:
    """Whether an argument changed in place is seen only inside the student's process, so that check is advisory:
    a cell that patches the probe to report the arguments as they were sent earns not a point more."""
    honest = grade(A1, samples.build(A1, {"gradient_descent": IN_PLACE}))
    forged = grade(A1, samples.build(A1, {"gradient_descent": IN_PLACE}, [FORGE_INPUTS]))
    assert honest.score == forged.score == honest.max_score
    assert "Advisory (no points): gradient_descent changed its input beta_init in place" in \
        outputs(honest, "gradient_descent")
    assert "changed its input" not in outputs(forged, "gradient_descent")


@pytest.mark.slow
def test_hiding_warnings_and_gradient_tracking_gains_nothing(grade) -> None:
    """Warnings and torch's gradient mode are seen only inside the student's process: advisory, no points, so
    suppressing their observation earns nothing."""
    naive = "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n"
    honest = grade(A2, samples.build(A2, {"sigmoid": naive}))
    forged = grade(A2, samples.build(A2, {"sigmoid": naive}, [FORGE_INPUTS]))
    assert honest.score == forged.score == honest.max_score
    assert "Advisory (no points): sigmoid warned" in outputs(honest, "sigmoid")
    tracked = ("def evaluate(model, loader, loss_fn, device='cpu'):\n    model.eval()\n"
               "    return float(np.mean([loss_fn(model(x.to(device)), y.to(device)).item() for x, y in loader]))\n")
    lie = (f"import importlib\nprobe = importlib.import_module('dlgrade_runtime.{A3.probe_module}')\n"
           "_loss = probe._recording_loss\nprobe._recording_loss = lambda losses, seen=None: _loss(losses)\n")
    honest = grade(A3, samples.build(A3, {"evaluate": tracked}))
    forged = grade(A3, samples.build(A3, {"evaluate": tracked}, [lie]))
    assert honest.score == forged.score == honest.max_score
    assert "gradient tracking" not in outputs(forged, "evaluate")
    assert "Advisory (no points): evaluate computed the losses with gradient tracking on" in outputs(honest, "evaluate")


@pytest.mark.slow
def test_evaluation_mode_is_judged_during_the_call_not_after_it(grade) -> None:
    """evaluate's mode is judged from the losses it computes (batch norm in training mode gives others): switching
    to evaluation mode only after computing them, which a look at model.training afterwards would accept, fails."""
    late = ("def evaluate(model, loader, loss_fn, device='cpu'):\n    with torch.no_grad():\n"
            "        losses = [loss_fn(model(x.to(device)), y.to(device)).item() for x, y in loader]\n"
            "    model.eval()\n    return float(np.mean(losses))\n")
    result = grade(A3, samples.build(A3, {"evaluate": late}))
    assert failing_functions(result) == {"evaluate"}
    assert "call model.eval() before evaluating" in outputs(result, "evaluate")


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


@pytest.mark.parametrize("name", [pytest.param(n, marks=[*([requires(PROCESSES)] if n == "fork_loop" else []),
                                                         *([pytest.mark.slow] if i > 1 else [])])
                                  for i, n in enumerate(CRASHES)])  # the quick loop: the first two
def test_a_crashing_function_costs_only_its_own_tests(grade, name) -> None:
    body, fragment = CRASHES[name]
    code = f"def add_intercept(X):\n    {body}\n"
    _, text = grade_hostile(grade, {"add_intercept": code}, lost={"add_intercept"})
    assert any(f in text for f in ((fragment,) if isinstance(fragment, str) else fragment)), text


def test_printing_200_mb_costs_nothing_and_keeps_results_small(grade) -> None:
    code = ("def add_intercept(X):\n    print('x' * 100_000_000)\n    import sys\n"
            "    sys.stderr.write('y' * 100_000_000)\n    return np.hstack([np.ones((len(X), 1)), X])\n")
    grade_hostile(grade, {"add_intercept": code}, ["print('z' * 200_000_000)"], lost=set())


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

@requires(NETWORK)
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


@requires(PRIVATE_TMP)
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


# -- no channel between students: files, SysV IPC, keyrings ---------------------------------------------


LAYERS = [pytest.param("filter", marks=requires(FILTER)), "sweep"]  # the syscall filter refuses; the sweep removes
MODES = [pytest.param(True, id="bubblewrap", marks=requires(VIEW)), pytest.param(False, id="no-namespaces")]


def grade_in_turn(tmp_path: Path, notebooks: list[tuple[str, object]], index: int = 1) -> dict:
    """Grade ``(student, notebook)`` pairs one after the other on one fresh worker (as a batch does)."""
    grader = Grader(A1)
    results = {}
    preload, _, probes = sandbox_imports([A1])
    with Worker(index, TEST_LIMITS, preload=preload, hide=COURSE.secrets, probes=probes) as worker:
        for student, nb in notebooks:
            folder = tmp_path / "submitted" / student / A1.id
            samples.write(nb, folder / A1.notebook)
            results[student] = grader.grade(folder, worker, student)
    return results


@requires(USER)
@pytest.mark.parametrize("bubblewrap", MODES)
def test_a_note_in_any_world_writable_folder_never_reaches_the_next_student(bubblewrap, sandbox_mode,
                                                                           tmp_path) -> None:
    """Two friends graded one after the other by one worker, with bubblewrap or without namespaces (a container's
    plain run, Gradescope): the first leaves a note in every folder it can write (found by walking the file
    system, /run/lock included), the second looks for it everywhere. It never arrives."""
    sandbox_mode(no_bwrap=not bubblewrap)
    note = f"dlgrade-note-{uuid.uuid4().hex}"
    walk = ("def writable_folders():\n"
            "    import os\n"
            "    found, todo = [], ['/']\n"
            "    while todo:\n"
            "        top = todo.pop()\n"
            "        try:\n"
            "            entries = list(os.scandir(top))\n"
            "        except OSError:\n"
            "            continue\n"
            "        for e in entries:\n"
            "            if e.path in ('/proc', '/sys') or not e.is_dir(follow_symlinks=False):\n"
            "                continue\n"
            "            if os.access(e.path, os.W_OK | os.X_OK):\n"
            "                found.append(e.path)\n"
            "            todo.append(e.path)\n"
            "    return found\n")
    drop = walk + ("import os\n"
                   "for folder in writable_folders():\n"
                   "    try:\n"
                   f"        open(os.path.join(folder, {note!r}), 'w').write('answers')\n"
                   f"        os.makedirs(os.path.join(folder, {note + '-dir'!r}, 'inside'))\n"
                   "    except OSError:\n"
                   "        pass\n")
    look = ("def mse_loss(beta, X, y):\n" + "\n".join("    " + line for line in walk.splitlines()) + "\n"
            "    import os\n"
            "    folders = writable_folders() + ['/tmp', '/var/tmp', '/dev/shm', '/run/lock']\n"
            f"    found = [f for f in folders if os.path.exists(os.path.join(f, {note!r}))]\n"
            "    raise RuntimeError(f'left behind: {found} in {len(folders)} folders')\n")
    results = grade_in_turn(tmp_path, [("first", samples.build(A1, extra_cells=[drop])),
                                       ("second", samples.build(A1, {"mse_loss": look}))])
    assert failing_functions(results["first"]) == set()
    assert failing_functions(results["second"]) == {"mse_loss"}
    assert "left behind: [] in" in outputs(results["second"], "mse_loss")
    from autograder.runtime.cleanup import world_writable_folders

    assert not [f for f in world_writable_folders() if os.path.exists(os.path.join(f, note))]


SHM_KEYS = [0x5EED00 + i for i in range(3)]
SHM_HOG = ("import ctypes\n"
           "libc = ctypes.CDLL(None, use_errno=True)\n"
           "libc.shmat.restype = ctypes.c_void_p\n"
           "made = []\n"
           f"for key in {SHM_KEYS!r}:\n"
           "    ident = libc.shmget(key, 128 * 2**20, 0o1666)\n"
           "    made.append((ident, ctypes.get_errno()))\n"
           "    if ident >= 0:\n"
           "        addr = libc.shmat(ident, None, 0)\n"
           "        if addr and addr != ctypes.c_void_p(-1).value:\n"
           "            ctypes.memset(addr, 1, 128 * 2**20)\n"
           "            libc.shmdt(ctypes.c_void_p(addr))\n"
           "def add_intercept(X):\n"
           "    raise RuntimeError(f'made={made}')\n")
SHM_VICTIM = ("def mse_loss(beta, X, y):\n"
              "    keys = [int(line.split()[0]) for line in open('/proc/sysvipc/shm').read().splitlines()[1:]]\n"
              f"    left = [k for k in keys if k in {SHM_KEYS!r}]\n"
              "    if left:\n"
              "        raise RuntimeError(f'shared memory left behind: {left}')\n"
              "    return float(((X @ beta - y) ** 2).sum() / (2 * len(y)))\n")


@requires(USER)
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("bubblewrap", MODES)
def test_sysv_shared_memory_left_by_one_submission_is_gone_before_the_next(layer, bubblewrap, sandbox_mode,
                                                                           tmp_path) -> None:
    """A submission makes 384 MB of SysV shared memory and detaches (it outlived the process, stayed charged to
    the worker's memory cgroup, and cost the next students points). The syscall filter refuses to make it; with
    the filter off, the sweep after the submission removes it. The next student keeps full marks either way."""
    sandbox_mode(no_bwrap=not bubblewrap, no_seccomp=layer == "sweep")
    results = grade_in_turn(tmp_path, [("hog", samples.build(A1, {"add_intercept": SHM_HOG})),
                                       ("victim", samples.build(A1, {"mse_loss": SHM_VICTIM}))])
    made = outputs(results["hog"], "add_intercept")
    if layer == "filter":
        assert "made=[(-1, 3029), (-1, 3029), (-1, 3029)]" in made, made  # errno 3000 + shmget's number
    else:
        assert "made=[(-1" not in made, made  # the segments were really made
    assert failing_functions(results["victim"]) == set(), outputs(results["victim"], "mse_loss")
    host = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    assert not [line for line in host if int(line.split()[0]) in SHM_KEYS]


KEY_WRITER = ("import ctypes, inspect\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "payload = b'def mse_gradient(beta, X, y):\\n    return X.T @ (X @ beta - y) / len(y)\\n'\n"
              "key = libc.syscall(248, b'user', b'dlgrade-answers', payload, len(payload), -4)\n"
              "if key > 0:\n"
              "    libc.syscall(250, 5, key, 0x3f3f3f3f)  # KEYCTL_SETPERM: readable by everyone\n")
KEY_READER = ("import ctypes\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "key = libc.syscall(250, 10, -4, b'user', b'dlgrade-answers', 0)  # KEYCTL_SEARCH\n"
              "buf = ctypes.create_string_buffer(4096)\n"
              "size = libc.syscall(250, 11, key, buf, 4096) if key > 0 else -1  # KEYCTL_READ\n"
              "if size > 0:\n"
              "    exec(buf.raw[:size].decode())\n")


@requires(USER)
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("batches", ["same batch", "next batch"])
def test_a_solution_passed_through_the_kernel_keyring_never_arrives(layer, batches, sandbox_mode, tmp_path) -> None:
    """A correct notebook stores its mse_gradient in its uid's user keyring (keyrings are per uid, host-wide, and
    outlive the grader); a notebook with no mse_gradient of its own reads and runs it. The filter refuses
    add_key and keyctl; with the filter off, the worker clears the uid's keyrings after each submission and
    before its first one. The reader gets nothing, in the same batch and in a later one."""
    sandbox_mode(no_seccomp=layer == "sweep")
    writer = samples.build(A1, extra_cells=[KEY_WRITER])
    reader = samples.build(A1, {"mse_gradient": KEY_READER})
    if batches == "same batch":
        results = grade_in_turn(tmp_path, [("writer", writer), ("reader", reader)])
    else:
        grade_in_turn(tmp_path / "one", [("writer", writer)])
        results = grade_in_turn(tmp_path / "two", [("reader", reader)])
    assert "mse_gradient" in failing_functions(results["reader"])
    assert "`mse_gradient` is not defined" in outputs(results["reader"], "mse_gradient")


# -- the protocol: forged or malformed messages fail the submission, never the worker ---------------------

FORGED_CELL = ("import sys, os, json, struct\n"
               "frame = sys._getframe()\n"
               "while frame is not None and 'to_zygote' not in frame.f_locals:\n"
               "    frame = frame.f_back\n"
               "head = json.dumps({'op': 'cell_start', 'index': [1]}).encode()\n"
               "os.write(frame.f_locals['to_zygote'], struct.pack('<IQ', len(head), 0) + head)\n")


def _forged_reply(header: str, body_len: str = "0") -> str:
    return ("def add_intercept(X):\n"
            "    import sys, os, struct\n"
            "    frame = sys._getframe()\n"
            "    while frame is not None and 'out' not in frame.f_locals:\n"
            "        frame = frame.f_back\n"
            f"    head = {header!r}.encode()\n"
            f"    os.write(frame.f_locals['out'], struct.pack('<IQ', len(head), {body_len}) + head)\n"
            "    import time\n"
            "    time.sleep(30)\n")


@pytest.mark.parametrize(("attack", "replace", "extra", "lost"), [
    ("forged cell message", {}, [FORGED_CELL], "all"),
    ("reply that is a list", {"add_intercept": _forged_reply("[]")}, [], "add_intercept+"),
    ("reply with a forged error kind", {"add_intercept": _forged_reply('{"op": "reply", "error": {"kind": 7}}')},
     [], "add_intercept+"),
    ("reply declaring a 1 TB body", {"add_intercept": _forged_reply('{"op": "reply", "error": null}', "2**40")},
     [], "add_intercept+"),
    ("unknown message", {"add_intercept": _forged_reply('{"op": "start", "limits": {}}')}, [], "add_intercept+"),
])
def test_a_forged_message_fails_the_submission_with_a_reason_and_the_worker_goes_on(grade, attack, replace, extra,
                                                                                      lost) -> None:
    """Code that finds the grader's pipes (by walking frames) and writes its own messages: a typed, validated
    protocol refuses them. The forger gets a result with the reason; the next submission on the worker is graded
    as usual."""
    result = grade(A1, samples.build(A1, replace, extra))
    assert result.score < result.max_score
    text = result.output + "".join(t.output for t in result.tests)
    assert "sent a message the grader does not accept" in text, text
    if lost == "all":
        assert result.score == 0
    else:
        assert "add_intercept" in failing_functions(result) and "normal_equation" not in failing_functions(result)
    honest = grade(A1, samples.build(A1))
    assert honest.score == honest.max_score
    assert student_processes() == []


# -- the syscall filter ---------------------------------------------------------------------------------


@requires(FILTER)
@pytest.mark.parametrize(("call", "code"), [
    ("unshare", "ctypes.CDLL(None, use_errno=True).unshare(0x10000000)"),  # CLONE_NEWUSER
    ("keyctl", "ctypes.CDLL(None, use_errno=True).syscall(250, 7, -4)"),
    ("io_uring_setup", "ctypes.CDLL(None, use_errno=True).syscall(425, 8, ctypes.create_string_buffer(120))"),
    ("clone", "ctypes.CDLL(None, use_errno=True).syscall(56, 0x10000011, 0, 0, 0, 0)"),  # fork into a new user ns
])
def test_a_denied_system_call_fails_with_a_message_naming_it(grade, call, code) -> None:
    body = ("def add_intercept(X):\n    import ctypes, os\n"
            f"    if {code} == -1:\n        raise OSError(ctypes.get_errno(), 'failed')\n"
            "    return np.hstack([np.ones((len(X), 1)), X])\n")
    result, text = grade_hostile(grade, {"add_intercept": body}, lost={"add_intercept"})
    assert f"made a system call the grading sandbox forbids ({call})" in text, text


# -- a cgroup holds a whole worker ------------------------------------------------------------------------


@pytest.mark.slow
@requires(CGROUP, NO_CHANNEL)
def test_the_worker_cgroup_kills_what_rlimits_cannot_see(grade) -> None:
    """Memory that no RLIMIT_AS counts (shared memory of many processes) still meets the worker's cgroup: the
    student's processes are killed, never the zygote, and the next submission is graded as usual."""
    code = ("def add_intercept(X):\n    import mmap, os\n"
            "    for _ in range(12):\n"
            "        if os.fork() == 0:\n"
            "            m = mmap.mmap(-1, 900 * 2**20)\n"
            "            m.write(b'x' * (900 * 2**20))\n"
            "            import time\n"
            "            time.sleep(60)\n"
            "    import time\n    time.sleep(60)\n")
    grade_hostile(grade, {"add_intercept": code}, lost={"add_intercept"})
    honest = grade(A1, samples.build(A1))
    assert honest.score == honest.max_score


# -- broken files become results with a reason -------------------------------------------------------

@pytest.mark.parametrize(("content", "reason"), [
    (b"", "the file is empty"),
    (b'{"cells": [', "not valid JSON"),
    (b'{"hello": "world"}', "not a Jupyter notebook"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not valid JSON"),
])
def test_a_broken_file_gets_zero_and_a_reason(grade, content, reason) -> None:
    result = grade(A1, content)
    assert result.score == 0 and len(result.tests) == len(A1.suite.checks)
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

"""The grading image and the Gradescope bundle, built and run for real.

The container tests build the image with ``container/build-offline.sh`` (debootstrap base, host wheelhouse, Podman
with runc) and need root, podman, runc and debootstrap; they are skipped only where podman is missing. They print
their timings (build, grading in and out of the container) on the terminal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import A1, COURSE, REPO

from autograder.authoring import demo, samples

# its module fixtures build a course (or an image) once: every test of this file runs in one pytest-xdist worker
# the image's build (minutes, the first time) happens in the first test's fixtures
pytestmark = [pytest.mark.xdist_group("container"), pytest.mark.timeout(1800)]

IMAGE = os.environ.get("DLGRADE_TEST_IMAGE", "localhost/dlgrade")  # another tag keeps parallel checkouts apart
BASE_IMAGE = "localhost/dlgrade-base"  # what container/build-offline.sh makes with debootstrap
PODMAN = ["podman", "--runtime", "runc"]  # crun fails on this kernel's cgroup layout
RUN = [*PODMAN, "run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
GRADER_UID = 1000  # the image's non-root user, for `--user 1000:1000`
TA_UID = 4242  # owner of the mounted course folder: what the grader writes there must end up theirs
# A submission that hunts for the reference solution on every path it can read and takes its functions: full marks
# wherever it finds one. Student code must never read the references, in or out of a container.
THIEF = (
    "import os\n"
    "found = None\n"
    "for top in ('/opt', '/autograder', '/course', '/work', '/tmp', '/home', '/root', '/srv'):\n"
    "    for folder, _, files in os.walk(top):\n"
    f"        if os.path.basename(folder) == 'solutions' and '{A1.id}.py' in files:\n"
    "            try:\n"
    f"                exec(open(os.path.join(folder, '{A1.id}.py')).read(), globals())\n"
    "                found = folder\n"
    "                break\n"
    "            except OSError:\n"
    "                pass\n"
    "    if found:\n"
    "        break\n"
    "print('reference found in', found)\n"
)
# A submission that looks for a classmate's notebook (ada's, known to be right) and runs its code as its own.
COPYCAT = (
    "import os, json\n"
    "copied = None\n"
    "for top in ('/course', '/srv', '/autograder', '/tmp', '/work', '/home', '/root'):\n"
    "    for folder, _, files in os.walk(top):\n"
    f"        if folder.endswith('/submitted/ada/{A1.id}'):\n"
    "            for name in [f for f in files if f.endswith('.ipynb')]:\n"
    "                try:\n"
    "                    cells = json.load(open(os.path.join(folder, name)))['cells']\n"
    "                except OSError:\n"
    "                    continue\n"
    "                for cell in cells:\n"
    "                    try:\n"
    "                        exec(''.join(cell['source']), globals())\n"
    "                    except Exception:\n"
    "                        pass\n"
    "                copied = folder\n"
    "print('copied', copied)\n"
)
# Two friends graded one after the other by the same worker: amy leaves a note in the temporary folders, and amz's
# mse_loss breaks if it finds one. Nothing may pass between submissions, so amz keeps full marks.
NOTE_LEFT = ("import os\n"
             "for d in ('/tmp', '/var/tmp', '/dev/shm'):\n"
             "    try:\n"
             "        open(os.path.join(d, 'dlgrade-note'), 'w').write('answers')\n"
             "    except OSError:\n"
             "        pass\n")
NOTE_FOUND = ("import os\n"
              "if any(os.path.exists(d + '/dlgrade-note') for d in ('/tmp', '/var/tmp', '/dev/shm')):\n"
              "    def mse_loss(*args, **kwargs):\n"
              "        raise RuntimeError('found a note from another student')\n")
SCHEMA = json.loads((Path(demo.__file__).parents[1] / "reporting" / "gradescope_schema.json").read_text())


def say(request: pytest.FixtureRequest, line: str) -> None:
    """A line on the terminal even while output is captured (timings, what the container reported)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[container] {line}")


def results(root: Path) -> dict[str, dict]:
    """Every results.json under ``root/graded``, by ``student/assignment``."""
    return {f"{p.parent.parent.name}/{p.parent.name}": json.loads(p.read_text())
            for p in sorted((root / "graded").glob("*/*/results.json"))}


def scores(document: dict) -> dict:
    """What must agree between two runs (execution_time may differ)."""
    return {"score": document["score"], "max_score": document["max_score"],
            "tests": [(t["name"], t["score"], t["max_score"]) for t in document["tests"]]}


# -- the container image ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image(request: pytest.FixtureRequest) -> str:
    """The image, built by the offline build script (cached steps make a second build quick)."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install -y podman runc debootstrap uidmap)")
    start = time.perf_counter()
    done = subprocess.run([str(REPO / "container" / "build-offline.sh")], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "IMAGE": IMAGE}, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    for line in done.stderr.splitlines():
        if line.startswith("== ") or re.match(r"   (done in|up to date|already|\d+ wheels)", line):
            say(request, line.strip())
    say(request, f"image built in {time.perf_counter() - start:.0f} s")
    return IMAGE


@pytest.fixture(scope="module")
def demo_course(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The demo submissions of a1 (full marks, mistakes, crashing, hostile, damaged) plus a thief of the reference,
    a copycat and two friends passing notes, and their grades from ``dlgrade grade`` run outside any container."""
    root = tmp_path_factory.mktemp("demo")
    course = demo.make_course(root / "course")  # the built-in course (`dlgrade init`) and its demo submissions
    for other in course.root.glob("submitted/*/*"):
        if other.name != A1.id:
            shutil.rmtree(other)  # a1's alone
    for student, nb in (("zed", samples.build(A1, solved=False, extra_cells=[THIEF])),
                        ("kit", samples.build(A1, solved=False, extra_cells=[COPYCAT])),
                        ("amy", samples.build(A1, extra_cells=[NOTE_LEFT])),
                        ("amz", samples.build(A1, extra_cells=[NOTE_FOUND]))):
        samples.write(nb, root / "course" / "submitted" / student / A1.id / A1.notebook)
    outside = root / "outside"
    shutil.copytree(root / "course", outside)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(outside)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    say(request, f"outside the container: graded {len(results(outside))} submissions in "
                 f"{time.perf_counter() - start:.0f} s")
    return root / "course", results(outside)


def grade_in_container(request: pytest.FixtureRequest, image: str, demo_course: tuple[Path, dict], where: Path,
                       *options: str, owner: int = TA_UID,
                       grade_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run the image on a fresh copy of the demo course, owned by ``owner`` and readable by all as a TA's folder
    usually is, mounted at /course."""
    shutil.copytree(demo_course[0], where)
    for folder, _, files in os.walk(where):
        for name in [folder, *(os.path.join(folder, f) for f in files)]:
            os.chmod(name, 0o755 if name == folder else 0o644)
            if os.geteuid() == 0:
                os.chown(name, owner, owner)
    start = time.perf_counter()
    # one worker: amy and amz are graded one after the other by the same sandbox
    done = subprocess.run([*RUN, "--network", "none", *options, "-v", f"{where}:/course:Z", image, "grade", "/course",
                           "--workers", "1", *grade_args], capture_output=True, text=True, timeout=600)
    say(request, f"in the container ({' '.join(options) or 'default confinement'}): exit {done.returncode} in "
                 f"{time.perf_counter() - start:.0f} s")
    for line in done.stderr.splitlines():
        if line.startswith(("  on ", "  OFF")):
            say(request, "  " + line.strip())
    return done


def protection_rows(stderr: str) -> dict[str, bool]:
    """The protection table ``dlgrade grade`` printed: name -> on."""
    rows = [line.split(None, 1) for line in stderr.splitlines() if line.startswith(("  on ", "  OFF"))]
    return {rest.split("  (")[0].strip(): flag == "on" for flag, rest in rows}


def assert_same_grades_as_outside(root: Path, outside: dict, owner: int) -> None:
    """Every submission graded, with the scores of the run outside any container (the thief and the copycat got
    nothing, amz found no note), and every file the grader wrote belongs to the course folder's owner."""
    inside = results(root)
    students = ("ada", "amy", "amz", "ben", "cy", "dee", "eve", "kit", "zed")
    assert sorted(inside) == sorted(outside) == [f"{s}/{A1.id}" for s in students]
    for key in outside:
        jsonschema.validate(inside[key], SCHEMA)
        assert scores(inside[key]) == scores(outside[key]), key
    assert inside[f"ada/{A1.id}"]["score"] == inside[f"ada/{A1.id}"]["max_score"] > 0
    assert inside[f"zed/{A1.id}"]["score"] == 0, "student code read the reference solution"
    assert inside[f"kit/{A1.id}"]["score"] == 0, "student code ran a classmate's notebook"
    assert inside[f"amz/{A1.id}"]["score"] == inside[f"amz/{A1.id}"]["max_score"], "a note passed between students"
    assert (root / "grades.csv").read_text().count("\n") == len(students) + 1
    written = [root / "grades.csv", root / "grades.svg", *(root / "graded").rglob("*")]
    assert {(p.lstat().st_uid, p.lstat().st_gid) for p in written} == {(owner, owner)}


@pytest.mark.container
@pytest.mark.slow
def test_image_refuses_a_plain_run_and_grades_it_when_told_to_accept_the_risk(request, image, demo_course,
                                                                               tmp_path) -> None:
    """The plain run (no network, the container's default confinement, which forbids bubblewrap's namespaces) is a
    weak host: the image refuses to grade and says to add the two capabilities, or to accept the risk. With
    `--allow-weak-sandbox` every submission gets the scores ``dlgrade grade`` gives it outside (student code runs as
    an unprivileged uid that cannot read the references), every result records what was off, the TA owns them."""
    refused = grade_in_container(request, image, demo_course, tmp_path / "refused")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--cap-add SYS_ADMIN,NET_ADMIN" in refused.stderr and "--allow-weak-sandbox" in refused.stderr
    assert not (tmp_path / "refused" / "graded").exists()
    done = grade_in_container(request, image, demo_course, tmp_path / "course", grade_args=("--allow-weak-sandbox",))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = protection_rows(done.stderr)
    assert rows["unprivileged user"] and rows["separate process, plain data only"] and not rows["no network"]
    assert_same_grades_as_outside(tmp_path / "course", demo_course[1], TA_UID)
    ada = results(tmp_path / "course")[f"ada/{A1.id}"]
    assert "no network" in ada["extra_data"]["weak_sandbox"]


@pytest.mark.container
@pytest.mark.slow
def test_image_turns_every_protection_on_with_two_capabilities(request, image, demo_course, tmp_path) -> None:
    """With ``--cap-add SYS_ADMIN,NET_ADMIN`` (the README's hardened run) bubblewrap works inside the container as
    well: no network, a filesystem view without solutions/ and a private /tmp for student code, on top of the
    unprivileged uid. Only the cgroup stays off. Same scores."""
    done = grade_in_container(request, image, demo_course, tmp_path / "course", "--cap-add", "SYS_ADMIN,NET_ADMIN")
    assert done.returncode == 0, done.stdout + done.stderr
    assert protection_rows(done.stderr) == {
        "separate process, plain data only": True, "no network": True,
        "filesystem view without solutions/tests": True, "private /tmp and PID namespace": True,
        "unprivileged user": True, "syscall filter": True, "limits: time, CPU, memory, files": True,
        "limit on processes": True, "memory and PID cgroup": False, "CPU share per sandbox": False,
        "nothing passes between submissions": True}
    assert_same_grades_as_outside(tmp_path / "course", demo_course[1], TA_UID)


@pytest.mark.container
@pytest.mark.slow
def test_image_as_its_non_root_user_uses_namespaces_instead(request, image, demo_course, tmp_path) -> None:
    """``--user 1000:1000 --security-opt systempaths=unconfined``: nothing runs as root; bubblewrap's user namespaces
    keep student code away from the references and the network. Same scores. Any other uid cannot read the
    references, and is told how to run the image."""
    done = grade_in_container(request, image, demo_course, tmp_path / "course", "--user", f"{GRADER_UID}:{GRADER_UID}",
                              "--security-opt", "systempaths=unconfined", owner=GRADER_UID)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = protection_rows(done.stderr)
    assert rows["no network"] and rows["filesystem view without solutions/tests"] and not rows["unprivileged user"]
    assert_same_grades_as_outside(tmp_path / "course", demo_course[1], GRADER_UID)
    stranger = subprocess.run([*RUN, "--network", "none", "--user", "1234:1234", image, "grade", "/course"],
                              capture_output=True, text=True, timeout=120)
    assert stranger.returncode == 2, stranger.stdout + stranger.stderr
    assert "not readable by uid 1234" in stranger.stderr and "--user 1000:1000" in stranger.stderr, stranger.stderr


@pytest.mark.container
@pytest.mark.slow
def test_container_run_with_network_none_reaches_nothing(request, image) -> None:
    """``--network none``: only a loopback interface, and a port the host listens on cannot be reached (the same
    connection from a container on the default network shows the port is reachable otherwise)."""
    server = socket.create_server(("0.0.0.0", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        try:
            while True:
                server.accept()[0].close()
        except OSError:  # closed at the end of the test
            pass

    threading.Thread(target=serve, daemon=True).start()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the address of the default route
        host = probe.getsockname()[0]
    except OSError:
        host = "10.88.0.1"  # podman's default bridge
    finally:
        probe.close()
    code = ("import socket, sys\n"
            "print(sorted(n for _, n in socket.if_nameindex()))\n"
            "try:\n"
            "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()\n"
            "    print('connected')\n"
            "except OSError as err:\n"
            "    print('refused:', err)\n")
    try:
        isolated = subprocess.run([*RUN, "--network", "none", "--entrypoint", "python", image, "-c", code, host,
                                   str(port)], capture_output=True, text=True, timeout=120)
        control = subprocess.run([*RUN, "--entrypoint", "python", image, "-c", code, host, str(port)],
                                 capture_output=True, text=True, timeout=120)
    finally:
        server.close()
    say(request, f"--network none: {isolated.stdout.strip()!r}; default network: {control.stdout.strip()!r}")
    assert isolated.returncode == 0, isolated.stderr
    interfaces, outcome = isolated.stdout.splitlines()
    assert interfaces == "['lo']" and outcome.startswith("refused"), isolated.stdout


@pytest.mark.container
@pytest.mark.slow
def test_image_as_an_indexed_job_of_shards_merges_to_the_single_machine_grades(request, image, demo_course,
                                                                              tmp_path) -> None:
    """A Kubernetes Indexed Job in miniature (deploy/grade-job.yaml; no kubectl here): N containers of the image run
    at once on one mounted course folder, each with its own JOB_COMPLETION_INDEX and the Job's own arguments; each
    grades only its shard and none writes grades.csv; then `merge` in the image gives the grades.csv, results and
    ownership of the single-machine run outside any container."""
    job = yaml.safe_load((REPO / "deploy" / "grade-job.yaml").read_text())
    n = job["spec"]["completions"]
    (spec,) = job["spec"]["template"]["spec"]["containers"]
    capabilities = [arg for cap in spec["securityContext"]["capabilities"]["add"] for arg in ("--cap-add", cap)]
    where = tmp_path / "course"
    shutil.copytree(demo_course[0], where)
    for folder, _, files in os.walk(where):
        for name in [folder, *(os.path.join(folder, f) for f in files)]:
            os.chmod(name, 0o755 if name == folder else 0o644)
            os.chown(name, TA_UID, TA_UID)
    start = time.perf_counter()
    pods = [subprocess.Popen([*RUN, "--network", "none", *capabilities, "-e", f"JOB_COMPLETION_INDEX={i}",
                              "-v", f"{where}:/course:z", image, *spec["args"], "--workers", "1"],
                             stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for i in range(n)]
    graded = []
    for i, pod in enumerate(pods):
        out, err = pod.communicate(timeout=900)
        assert pod.returncode == 0, out + err
        assert f"shard {i + 1}/{n} done" in err, err
        graded.append(sorted(re.findall(r"^\[\d+/\d+\] (\S+) ", err, re.MULTILINE)))
    shards_seconds = time.perf_counter() - start
    assert not (where / "grades.csv").exists()
    merged = subprocess.run([*RUN, "--network", "none", "-v", f"{where}:/course:z", image, "merge", "/course"],
                            capture_output=True, text=True, timeout=300)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    say(request, f"{n} shard containers in parallel: {shards_seconds:.0f} s, submissions per shard "
                 f"{[len(g) for g in graded]}; merge: exit {merged.returncode}")
    assert sorted(sum(graded, [])) == sorted(key.split("/")[0] for key in demo_course[1])
    assert_same_grades_as_outside(where, demo_course[1], TA_UID)
    outside = demo_course[0].parent / "outside"
    assert (where / "grades.csv").read_text() == (outside / "grades.csv").read_text()
    autograded = list((where / "autograded").rglob("*"))
    assert len(autograded) > 2 * len(demo_course[1])
    assert {p.lstat().st_uid for p in autograded} == {TA_UID}


# -- the Gradescope bundle --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip ``dlgrade gradescope`` writes for a1."""
    out = tmp_path_factory.mktemp("bundle")
    done = subprocess.run([sys.executable, "-m", "autograder", "gradescope", A1.id, "--course", str(REPO), "--out",
                           str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def unpack(bundle: Path, root: Path) -> Path:
    """Lay the bundle out the way Gradescope does: the zip in ``root/source``, run_autograder copied to ``root``."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
        for info in zf.infolist():
            mode = info.external_attr >> 16
            if mode:
                os.chmod(root / "source" / info.filename, stat.S_IMODE(mode))
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    return root


def run_autograder(root: Path, *submissions: tuple[str, bytes | str | dict]) -> dict:
    """Put ``submissions`` (relative path, notebook) in ``root/submission``, run run_autograder with this
    environment's Python instead of setup.sh's venv, and return results/results.json."""
    for name, nb in submissions:
        samples.write(nb, root / "submission" / name)
    done = subprocess.run([str(root / "run_autograder")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "AUTOGRADER_ROOT": str(root), "DLGRADE_PYTHON": sys.executable})
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(document, SCHEMA)
    return document


def test_gradescope_bundle_holds_the_scripts_and_only_its_assignment(bundle: Path) -> None:
    """setup.sh and run_autograder sit at the zip's root, executable and valid bash; dlgrade/ holds the grader's
    code and no course; course/ holds the course folder with a1 alone (no other assignment's references, checks or
    probes)."""
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        scripts = {name: zf.read(name).decode() for name in ("setup.sh", "run_autograder")}
    for name, text in scripts.items():
        assert modes[name] & 0o111, name
        assert text.startswith("#!/usr/bin/env bash\n")
        check = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, (name, check.stderr)
    assert "torch==2.13.0" in scripts["setup.sh"] and "pip install -q ./dlgrade" in scripts["setup.sh"]
    for needed in ("pyproject.toml", "autograder/cli.py", "autograder/runtime/zygote.py"):
        assert f"dlgrade/{needed}" in names, needed
    notebook = A1.notebook
    for needed in ("nbgrader_config.py", f"checks/{A1.id}.py", f"solutions/{A1.id}.py", f"source/{A1.id}/{notebook}",
                   f"assignments/{A1.id}/{notebook}"):
        assert f"course/{needed}" in names, needed
    assert not [n for n in names if n.startswith("dlgrade/") and n != "dlgrade/pyproject.toml"
                and not n.startswith("dlgrade/autograder/")], "the course travels in course/ only"
    assert not [n for n in names if n.startswith("dlgrade/autograder/") and "/checks/" in n]
    others = [a for a in COURSE.assignments() if a != A1.id]
    assert not [n for n in names if any(a in n for a in others)]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.slow
def test_gradescope_run_autograder_grades_an_upload_like_dlgrade_grade(bundle: Path, grade, tmp_path) -> None:
    """A renamed upload in a subfolder is graded with the bundle's code and gets the same tests and scores as the
    grader gives it directly; a correct one gets full marks."""
    mistakes = samples.build(A1, A1.suite.typical_mistakes)
    document = run_autograder(unpack(bundle, tmp_path / "ag"), (f"upload/{A1.notebook[:-6]} (1).ipynb", mistakes))
    assert scores(document) == scores(grade(A1, mistakes).to_json())
    assert 0 < document["score"] < document["max_score"] == sum(A1.points.values())
    assert "expected to be named" in document["output"]
    full = run_autograder(unpack(bundle, tmp_path / "ag2"), (A1.notebook, samples.build(A1)))
    assert full["score"] == full["max_score"] and all(t["output"] == "" for t in full["tests"])


@pytest.mark.slow
def test_gradescope_run_autograder_always_leaves_a_results_json(bundle: Path, tmp_path) -> None:
    """No notebook uploaded: zero with the reason. The grader itself broken (its reference missing): still a
    results.json, score 0, telling the student it is not their fault and showing the cause."""
    empty = run_autograder(unpack(bundle, tmp_path / "empty"), ("notes.txt", "not a notebook"))
    assert empty["score"] == 0 and "No notebook found" in empty["output"]
    root = unpack(bundle, tmp_path / "broken")
    (root / "source" / "course" / "solutions" / f"{A1.id}.py").unlink()
    broken = run_autograder(root, (A1.notebook, samples.build(A1)))
    assert broken["score"] == 0 and broken["max_score"] == sum(A1.points.values())
    assert "not your fault" in broken["output"] and "reference solution" in broken["output"]


@pytest.mark.slow
def test_gradescope_run_autograder_refuses_an_uploaded_link_without_following_it(bundle: Path, tmp_path) -> None:
    """An upload whose notebook is a link to the instructor's source notebook (unzip recreates links) is copied
    as a link and refused: zero with the reason, not full marks."""
    root = unpack(bundle, tmp_path / "link")
    (root / "submission").joinpath(A1.notebook).symlink_to(
        root / "source" / "course" / "source" / A1.id / A1.notebook)
    document = run_autograder(root)
    assert document["score"] == 0 and "symbolic link" in document["output"]


@pytest.mark.container
@pytest.mark.slow
def test_gradescope_bundle_sets_up_and_grades_in_a_bare_container(request, image, bundle, demo_course,
                                                                   tmp_path) -> None:
    """Gradescope's life cycle, offline: in a bare Debian container (the image's base) with no network, setup.sh runs
    as root with the host's wheelhouse standing in for PyPI, then run_autograder grades each demo upload as root,
    the way Gradescope runs it. Every upload gets the scores ``dlgrade grade`` gives it outside any container."""
    root = unpack(bundle, tmp_path / "autograder")
    uploads = root / "uploads"
    for notebook in sorted(demo_course[0].glob(f"submitted/*/{A1.id}/*.ipynb")):
        student = notebook.parent.parent.name
        (uploads / student).mkdir(parents=True)
        shutil.copy2(notebook, uploads / student / notebook.name)
    (root / "out").mkdir()
    script = ("set -eu\n"
              "bash /autograder/source/setup.sh >/autograder/out/setup.log 2>&1\n"
              "for upload in /autograder/uploads/*; do\n"
              "  rm -rf /autograder/submission/* /autograder/results\n"
              "  cp \"$upload\"/* /autograder/submission/\n"
              "  /autograder/run_autograder >\"/autograder/out/$(basename \"$upload\").log\" 2>&1\n"
              "  cp /autograder/results/results.json \"/autograder/out/$(basename \"$upload\").json\"\n"
              "done\n")
    start = time.perf_counter()
    done = subprocess.run([*RUN, "--network", "none", "-v", f"{root}:/autograder:Z",
                           "-v", f"{REPO / 'wheelhouse'}:/wheelhouse:ro,Z", "-e", "PIP_NO_INDEX=1",
                           "-e", "PIP_FIND_LINKS=/wheelhouse", BASE_IMAGE, "bash", "-c", script],
                          capture_output=True, text=True, timeout=900)
    log = (root / "out" / "setup.log").read_text() if (root / "out" / "setup.log").exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + log
    say(request, f"Gradescope bundle in a bare container: setup.sh + {len(list(uploads.iterdir()))} uploads in "
                 f"{time.perf_counter() - start:.0f} s")
    assert "Sandbox protections on this machine:" in log  # setup.sh ends with `dlgrade doctor`
    outside = demo_course[1]
    for student in sorted(p.name for p in uploads.iterdir()):
        document = json.loads((root / "out" / f"{student}.json").read_text())
        jsonschema.validate(document, SCHEMA)
        assert scores(document) == scores(outside[f"{student}/{A1.id}"]), student
    assert json.loads((root / "out" / "ada.json").read_text())["score"] == sum(A1.points.values())
    assert json.loads((root / "out" / "zed.json").read_text())["score"] == 0, "student code read the reference"

"""The sweep between submissions empties the sandbox's own /tmp and nothing else: a tree bound into it (a Python
environment that lives under /tmp, as a CI job's or a wheel tested in a temporary folder does) is another file system,
and the sweep never walks into it (walking torch's files cost 0.27 s per submission, and a writable one would lose
its files), while everything a submission wrote beside it goes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.runtime import cleanup
from autograder.sandbox import bwrap
from autograder.sandbox.doctor import VIEW

RUNTIME = Path(cleanup.__file__).resolve().parent

# inside a private mount namespace: a student's files in /tmp, beside and above a tree bound from the host
SWEEP = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
import cleanup
for path in ("/tmp/note", "/tmp/deep/a/b/c", "/tmp/env/beside", "/dev/shm/left"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write("a student's file")
walked = []
scandir = os.scandir
def where(path):  # shutil.rmtree lists folders by descriptor
    return os.readlink(f"/proc/self/fd/{path}") if isinstance(path, int) else os.fspath(path)
os.scandir = lambda path=".": (walked.append(where(path)), scandir(path))[1]
cleanup.clear("/tmp")
cleanup.clear("/dev/shm")
print(json.dumps({"tmp": sorted(os.listdir("/tmp")), "env": sorted(os.listdir("/tmp/env")),
                  "shm": os.listdir("/dev/shm"), "walked": walked}))
"""


@pytest.mark.requires_protection(VIEW)
def test_the_sweep_empties_tmp_but_never_enters_a_tree_bound_into_it(tmp_path: Path) -> None:
    host = tmp_path / "python-env"
    (host / "lib" / "site-packages" / "torch").mkdir(parents=True)
    (host / "lib" / "site-packages" / "torch" / "__init__.py").write_text("# the environment's own file\n")
    python, prefixes = bwrap._python_environment()  # bound after the private /tmp, as in a sandbox: this Python may
    # live under /tmp itself (a CI clone's venv), and then its folders are kept too
    kept = {Path(p).relative_to("/tmp").parts[0] for p in prefixes if Path("/tmp") in Path(p).parents}
    command = [bwrap.path(), "--dev-bind", "/", "/", "--tmpfs", "/tmp", *python, "--tmpfs", "/dev/shm",
               "--dir", "/tmp/env", "--bind", str(host), "/tmp/env/python", "--ro-bind", str(RUNTIME), "/opt/runtime",
               "--unshare-all", "--die-with-parent", sys.executable, "-c", SWEEP, "/opt/runtime"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["tmp"] == sorted({"env"} | kept) and seen["env"] == ["python"] and seen["shm"] == [], seen  # the
    # student's files are gone
    assert (host / "lib" / "site-packages" / "torch" / "__init__.py").exists()  # the bound tree kept its files
    assert not any(p.startswith(("/tmp/env/python", *map(str, prefixes))) for p in seen["walked"]), seen["walked"]

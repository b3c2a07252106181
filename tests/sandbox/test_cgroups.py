"""cgroups for workers, on v1 and v2: choosing the hierarchy, making the subtree, writing the limits, reading OOM
kills, removing groups. The v2 path runs against a temporary folder laid out like cgroupfs (this project's machine
mounts its memory and pids controllers as v1), and for real on this machine's controller-less v2 mount where one
exists (making a group, moving a process in, killing it)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from autograder.sandbox import cgroups


def fake_v2(root: Path, controllers: str = "cpu memory pids", own: str = "/system.slice/grader.service",
            procs: str = "4242\n") -> Path:
    """A cgroup v2 mount at ``root`` with this process in ``own``; returns the /proc/self/cgroup stand-in."""
    (root / "cgroup.controllers").write_text(controllers)
    folder = root / own.lstrip("/")
    folder.mkdir(parents=True)
    (folder / "cgroup.controllers").write_text(controllers)
    (folder / "cgroup.subtree_control").write_text("")
    (folder / "cgroup.procs").write_text(procs)
    self_cgroup = root / "self-cgroup"
    self_cgroup.write_text(f"0::{own}\n")
    return self_cgroup


def test_v2_is_chosen_below_the_graders_own_cgroup_with_memory_pids_and_cpu_enabled(tmp_path) -> None:
    """Does the grader enable memory, pids and cpu for its children and make groups there?"""
    self_cgroup = fake_v2(tmp_path)
    hierarchy, reason = cgroups.find(tmp_path, self_cgroup=self_cgroup)
    parent = tmp_path / "system.slice" / "grader.service"
    assert hierarchy is not None, reason
    assert hierarchy.version == 2 and hierarchy.parents == (parent,) and hierarchy.cpu
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert hierarchy.description == f"cgroup v2 ({parent})"


def test_v2_group_gets_memory_swap_pids_and_cpu_limits(tmp_path) -> None:
    hierarchy, _ = cgroups.find(tmp_path, self_cgroup=fake_v2(tmp_path))
    parent = hierarchy.parents[0]
    group = hierarchy.create("dlgrade-1-0-1", memory_bytes=6 * 2**30, pids=320, cores=1.0)
    folder = parent / "dlgrade-1-0-1"
    assert group.folders == (folder,)
    assert (folder / "memory.max").read_text() == str(6 * 2**30)
    assert (folder / "pids.max").read_text() == "320"
    assert (folder / "cpu.max").read_text() == "100000 100000"  # one core's time per period, whatever it runs
    assert not (folder / "memory.swap.max").exists()  # written only where the kernel offers it


def test_v2_without_a_cpu_controller_keeps_memory_and_pids_and_says_cpu_is_off(tmp_path) -> None:
    hierarchy, reason = cgroups.find(tmp_path, self_cgroup=fake_v2(tmp_path, controllers="memory pids"))
    assert hierarchy is not None and not hierarchy.cpu, reason
    group = hierarchy.create("dlgrade-1-0-3", memory_bytes=2**30, pids=99)
    assert not (group.folders[0] / "cpu.max").exists()


def test_v2_moves_the_graders_processes_into_a_leaf_when_the_kernel_refuses_controllers_on_a_busy_cgroup(
        tmp_path, monkeypatch) -> None:
    """v2's "no internal processes" rule: a cgroup with processes cannot enable controllers for its children. The
    grader first moves the processes of its cgroup into a leaf, then enables them."""
    self_cgroup = fake_v2(tmp_path, procs="4242\n4343\n")
    parent = tmp_path / "system.slice" / "grader.service"
    control = parent / "cgroup.subtree_control"
    real_write = Path.write_text
    moved: list[str] = []

    def kernel(path: Path, text: str, *args, **kwargs):
        if path == control and (parent / cgroups.SUPERVISOR / "cgroup.procs").exists() is False:
            raise OSError(16, "Device or resource busy")
        if path.name == "cgroup.procs" and path.parent.name == cgroups.SUPERVISOR:
            moved.append(text)
        return real_write(path, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", kernel)
    hierarchy, reason = cgroups.find(tmp_path, self_cgroup=self_cgroup)
    assert hierarchy is not None, reason
    assert moved == ["4242", "4343"]
    assert control.read_text() == "+memory +pids +cpu"


@pytest.mark.parametrize(("controllers", "reason"), [("cpu io", "memory and pids controller(s) are not available"),
                                                     ("cpu memory", "pids controller(s) are not available")])
def test_v2_without_the_controllers_says_which_are_missing(tmp_path, controllers, reason) -> None:
    hierarchy, why = cgroups.find(tmp_path, self_cgroup=fake_v2(tmp_path, controllers=controllers))
    assert hierarchy is None and reason in why


def test_a_delegated_v2_folder_is_used_as_it_is(tmp_path) -> None:
    """DLGRADE_CGROUP: a non-root grader gets a folder delegated to it (systemd's Delegate=yes)."""
    delegated = tmp_path / "user.slice" / "user-1000.slice" / "dlgrade"
    delegated.mkdir(parents=True)
    (delegated / "cgroup.controllers").write_text("memory pids")
    (delegated / "cgroup.subtree_control").write_text("memory pids")
    hierarchy, reason = cgroups.find(tmp_path, delegated=delegated)
    assert hierarchy is not None and hierarchy.parents == (delegated,), reason


@pytest.mark.parametrize("with_cpu", [True, False])
def test_v1_uses_one_folder_per_controller(tmp_path, with_cpu) -> None:
    memory, pids, cpu = tmp_path / "memory", tmp_path / "pids", tmp_path / "cpu"
    layout = [(memory, ["memory.limit_in_bytes", "cgroup.procs"]), (pids, ["cgroup.procs"])]
    layout += [(cpu, ["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cgroup.procs"])] if with_cpu else []
    for folder, files in layout:
        folder.mkdir()
        for name in files:
            (folder / name).write_text("")
    hierarchy, reason = cgroups.find(tmp_path)
    assert hierarchy is not None and hierarchy.version == 1 and hierarchy.cpu == with_cpu, reason
    group = hierarchy.create("dlgrade-1-0-2", memory_bytes=2**30, pids=99, cores=1.5)
    assert (memory / "dlgrade-1-0-2" / "memory.limit_in_bytes").read_text() == str(2**30)
    assert (pids / "dlgrade-1-0-2" / "pids.max").read_text() == "99"
    assert len(group.folders) == 2 + with_cpu
    if with_cpu:
        assert (cpu / "dlgrade-1-0-2" / "cpu.cfs_quota_us").read_text() == "150000"
        assert (cpu / "dlgrade-1-0-2" / "cpu.cfs_period_us").read_text() == "100000"


@pytest.mark.parametrize(("version", "name", "text", "kills"), [
    (2, "memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n", 2),
    (1, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n", 5),
    (2, "memory.events", "low 0\n", 0),
])
def test_oom_kills_are_read_from_the_kernels_counters(tmp_path, version, name, text, kills) -> None:
    (tmp_path / name).write_text(text)
    assert cgroups.Group((tmp_path,), version).oom_kills() == kills


def test_oom_kills_follow_the_counter_as_it_changes_and_destroy_closes_it(tmp_path) -> None:
    """The counter file is kept open between calls: a kill counted after the first read is still seen, a counter
    that cannot be read is no kill, and removing the group leaves no descriptor behind."""
    counter = tmp_path / "memory.oom_control"
    counter.write_text("oom_kill_disable 0\noom_kill 0\n")
    group = cgroups.Group((tmp_path,), 1)
    before = len(os.listdir("/proc/self/fd"))
    assert group.oom_kills() == 0
    counter.write_text("oom_kill_disable 0\noom_kill 12\n")
    assert group.oom_kills() == 12
    counter.write_text("oom_kill_disable 0\noom_kill many\n")
    assert group.oom_kills() == 0
    assert len(os.listdir("/proc/self/fd")) == before + 1
    group.destroy()
    assert len(os.listdir("/proc/self/fd")) == before


def test_the_oom_counter_is_found_in_whichever_folder_has_it(tmp_path) -> None:
    """v1 keeps the counter in the memory controller's folder, wherever it stands among the group's folders; a group
    with no counter anywhere counts no kill."""
    pids, memory = tmp_path / "pids", tmp_path / "memory"
    pids.mkdir()
    memory.mkdir()
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\noom_kill 3\n")
    assert cgroups.Group((pids, memory), 1).oom_kills() == 3
    assert cgroups.Group((pids,), 1).oom_kills() == 0


def test_groups_of_graders_that_died_are_removed(tmp_path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    hierarchy, _ = cgroups.find(tmp_path, self_cgroup=fake_v2(tmp_path))
    parent = hierarchy.parents[0]
    stale, live = parent / f"dlgrade-{dead.pid}-0-1", parent / f"dlgrade-{os.getpid()}-0-1"
    for folder in (stale, live):
        folder.mkdir()
    hierarchy.remove_stale()
    assert not stale.exists() and live.exists()


UNIFIED = Path("/sys/fs/cgroup/unified")


@pytest.mark.skipif(os.geteuid() != 0 or not (UNIFIED / "cgroup.procs").exists(),
                    reason="needs root and a cgroup v2 mount at /sys/fs/cgroup/unified")
def test_on_a_real_v2_mount_a_group_takes_a_process_and_destroy_kills_it() -> None:
    """The v2 code on the kernel's own cgroupfs (this machine's v2 mount has no controllers, so no limits are
    written here): make a group, move a process in, destroy it (cgroup.kill where the kernel has it)."""
    group = cgroups.Group((UNIFIED / f"dlgrade-{os.getpid()}-test-{time.monotonic_ns()}",), 2)
    group.folders[0].mkdir()
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        group.join(sleeper.pid)
        assert str(sleeper.pid) in (group.folders[0] / "cgroup.procs").read_text().split()
        group.destroy()
        assert sleeper.wait(timeout=10) == -9
        assert not group.folders[0].exists()
    finally:
        sleeper.kill()
        sleeper.wait()

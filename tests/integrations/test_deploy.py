"""deploy/: the Kubernetes manifests (an Indexed Job of grading shards, a merge Job, the course volume).

kubectl and a cluster are not available here: the manifests are validated offline against Kubernetes' own schemas
(kubernetes-validate), their commands are parsed by dlgrade's own command line, and the grading Job's command is run
here N times in parallel on one course folder, each process with its own JOB_COMPLETION_INDEX, as the Job's pods would;
``dlgrade merge`` then gives the grades.csv of a single run. tests/integrations/test_container.py does the same with the
grading image under Podman."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import A1, REPO, copy_course

from autograder.authoring import samples
from autograder.cli import _parser
from autograder.course import Course
from autograder.grading.batch import BatchError, discover, in_shard, shard_from_env

DEPLOY = REPO / "deploy"
# Kubernetes releases whose schemas the manifests must satisfy (batch/v1 Indexed Jobs are GA since 1.24)
VERSIONS = ("1.30.0", "1.37.0")


def manifest(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def container(job: dict) -> dict:
    (only,) = job["spec"]["template"]["spec"]["containers"]
    return only


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["course-volume.yaml", "grade-job.yaml", "merge-job.yaml"])
def test_manifests_satisfy_the_kubernetes_schema(name: str, version: str) -> None:
    """Does each manifest validate, strictly (no unknown fields), against Kubernetes' published schemas?"""
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (dev)")
    try:
        kubernetes_validate.validate(manifest(name), version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        pytest.skip(f"this kubernetes-validate has no schemas for Kubernetes {version}")


def test_grading_job_runs_one_shard_per_index_and_agrees_with_itself() -> None:
    """An Indexed Job whose completions, parallelism and --shards are the same N, running `dlgrade grade /course`
    with the shard index left to JOB_COMPLETION_INDEX."""
    job = manifest("grade-job.yaml")
    spec = job["spec"]
    args = _parser().parse_args(container(job)["args"])
    assert spec["completionMode"] == "Indexed" and spec["template"]["spec"]["restartPolicy"] == "Never"
    assert args.command == "grade" and str(args.course_dir) == "/course" and args.shard is None
    assert spec["completions"] == spec["parallelism"] == args.shards >= 2


def test_both_jobs_mount_the_course_volume_where_the_image_keeps_the_course() -> None:
    """The course volume is mounted where the image's /course link points, by both Jobs, from the claim deploy/
    defines; the merge Job runs `dlgrade merge /course`."""
    link = re.search(r"ln -s (\S+) /course", (REPO / "Dockerfile").read_text())
    assert link is not None
    claim = manifest("course-volume.yaml")
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    for name in ("grade-job.yaml", "merge-job.yaml"):
        job = manifest(name)
        (mount,) = container(job)["volumeMounts"]
        (volume,) = job["spec"]["template"]["spec"]["volumes"]
        assert mount["mountPath"] == link[1] and mount["name"] == volume["name"], name
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"], name
    merge = _parser().parse_args(container(manifest("merge-job.yaml"))["args"])
    assert merge.command == "merge" and str(merge.course_dir) == "/course"


def make_course(root: Path, n: int) -> Course:
    """A course folder like the built-in one with ``n`` submissions of a1 (every third one the typical mistakes)."""
    course = copy_course(root)
    wrong = A1.suite.typical_mistakes
    for i in range(n):
        samples.write(samples.build(A1, wrong if i % 3 == 1 else None),
                      root / "submitted" / f"s{i:02d}" / A1.id / A1.notebook)
    return course


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_the_jobs_commands_run_as_parallel_pods_on_one_folder_merge_to_a_single_runs_grades(tmp_path) -> None:
    """The grading Job's own arguments, run N times at once on one shared course folder with JOB_COMPLETION_INDEX =
    0..N-1 (one worker each, for this 2-core machine): each grades only its shard, none writes grades.csv, and
    `dlgrade merge` gives the grades.csv of one unsharded run."""
    job = manifest("grade-job.yaml")
    n = job["spec"]["completions"]
    args = [str(tmp_path / "shared") if a == "/course" else a for a in container(job)["args"]] + ["--workers", "1"]
    shared = make_course(tmp_path / "shared", 8).root
    shards = [sorted(j.student for j in discover(Course(shared)) if in_shard(j, (i + 1, n))) for i in range(n)]
    pods = [subprocess.Popen([sys.executable, "-m", "autograder", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "JOB_COMPLETION_INDEX": str(i)})
            for i in range(n)]
    for i, pod in enumerate(pods):
        out, err = pod.communicate(timeout=600)
        assert pod.returncode == 0, err
        assert f"shard {i + 1}/{n} done" in err
        graded = re.findall(r"^\[\d+/\d+\] (\S+) ", err, re.MULTILINE)
        assert sorted(graded) == shards[i], (i, err)
    assert not (shared / "grades.csv").exists()
    merge = subprocess.run([sys.executable, "-m", "autograder", "merge", str(shared)], capture_output=True, text=True)
    assert merge.returncode == 0, merge.stderr
    single = make_course(tmp_path / "single", 8).root
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(single), "--workers", "2"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert rows(shared / "grades.csv") == rows(single / "grades.csv")
    assert len(rows(single / "grades.csv")) == 8


# -- Kubernetes Indexed Job shards ---------------------------------------------------------------------------------

def test_the_shard_comes_from_job_completion_index() -> None:
    """JOB_COMPLETION_INDEX counts from 0; --shard from 1; the count comes from --shards or DLGRADE_SHARDS."""
    assert shard_from_env(None, {}) is None
    assert shard_from_env(4, {"JOB_COMPLETION_INDEX": "0"}) == (1, 4)
    assert shard_from_env(None, {"JOB_COMPLETION_INDEX": "3", "DLGRADE_SHARDS": "4"}) == (4, 4)
    for environ, count, message in (({"JOB_COMPLETION_INDEX": "1"}, None, "number of shards is unknown"),
                                    ({"JOB_COMPLETION_INDEX": "4"}, 4, r"outside 0\.\.3"),
                                    ({"JOB_COMPLETION_INDEX": "x"}, 4, "whole numbers")):
        with pytest.raises(BatchError, match=message):
            shard_from_env(count, environ)

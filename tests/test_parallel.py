"""Parallel execution: overlapping jobs, resource limits, and distinct GPU ids.

No timing luck: overlap is proven by jobs that wait (with a generous timeout) for each other's
marker files, and limits by jobs that record how many of them run at once.
"""

from __future__ import annotations

import shutil

RENDEZVOUS = """
[rules.wait]
outputs = ["out/{i}.txt"]
foreach = { i = ["1", "2", "3", "4"] }
cmd = '''
touch started/{wildcards.i}
for _ in $(seq 1 600); do
  n=$(ls started | wc -l)
  if [ "$n" -ge NEED ]; then echo ok > {outputs}; exit 0; fi
  sleep 0.05
done
echo "only $n jobs ran at once" >&2; exit 1
'''
"""


def test_jobs_overlap_with_j4(project):
    project.weavefile(RENDEZVOUS.replace("NEED", "4"))
    (project.root / "started").mkdir()
    result = project.run("build", "-j", "4", "wait", timeout=120)
    assert result.rc == 0, result
    for i in "1234":
        assert project.read(f"out/{i}.txt") == "ok\n"


GPU_JOBS = """
[resources]
gpu = 2
[rules.train]
outputs = ["out/{i}.txt"]
foreach = { i = ["1", "2", "3", "4"] }
resources = { gpu = 1 }
cmd = '''
mkdir gpus/"$CUDA_VISIBLE_DEVICES"        # fails if another running job holds this id
touch running/{wildcards.i}
ls running | wc -l >> concurrency.log
sleep 0.3
rm running/{wildcards.i}
rmdir gpus/"$CUDA_VISIBLE_DEVICES"
echo "$CUDA_VISIBLE_DEVICES" > {outputs}
'''
"""


def test_gpu_limit_and_distinct_ids(project):
    project.weavefile(GPU_JOBS)
    (project.root / "gpus").mkdir()
    (project.root / "running").mkdir()
    result = project.run("build", "-j", "4", "train", timeout=120)
    assert result.rc == 0, result
    counts = [int(line) for line in project.read("concurrency.log").split()]
    assert len(counts) == 4 and max(counts) <= 2
    ids = {project.read(f"out/{i}.txt").strip() for i in "1234"}
    assert ids <= {"0", "1"}


def test_cli_resources_override_and_visible_devices(project):
    project.weavefile(GPU_JOBS.replace("gpu = 2\n[rules", "gpu = 1\n[rules"))
    (project.root / "gpus").mkdir()
    (project.root / "running").mkdir()
    result = project.run(
        "build", "-j", "4", "--resources", "gpu=2", "train", env={"CUDA_VISIBLE_DEVICES": "5,7"}
    )
    assert result.rc == 0, result
    ids = {project.read(f"out/{i}.txt").strip() for i in "1234"}
    assert ids <= {"5", "7"}
    counts = [int(line) for line in project.read("concurrency.log").split()]
    assert max(counts) <= 2


def test_cpus_take_slots(project):
    project.weavefile(
        """
        [rules.heavy]
        outputs = ["out/{i}.txt"]
        foreach = { i = ["1", "2", "3"] }
        cpus = 2
        cmd = "touch running/{wildcards.i}; ls running | wc -l >> concurrency.log; sleep 0.2; rm running/{wildcards.i}; touch {outputs}"
        """
    )
    (project.root / "running").mkdir()
    result = project.run("build", "-j", "3", "heavy")
    assert result.rc == 0, result
    assert max(int(x) for x in project.read("concurrency.log").split()) == 1


def test_no_gpu_machine_still_runs_gpu_jobs_on_cpu(project, tmp_path):
    # A PATH without nvidia-smi, even on a machine with GPUs (where /usr/bin has one).
    bare_bin = tmp_path / "bare_bin"
    bare_bin.mkdir()
    (bare_bin / "sh").symlink_to(shutil.which("sh"))
    project.weavefile(
        """
        [rules.train]
        outputs = ["model.txt"]
        resources = { gpu = 1 }
        cmd = "echo \\"[$CUDA_VISIBLE_DEVICES]\\" > model.txt"
        """
    )
    result = project.run("build", env={"PATH": str(bare_bin)})
    assert result.rc == 0, result
    assert project.read("model.txt") == "[]\n"


def test_single_job_output_is_streamed(project):
    project.weavefile(
        """
        [rules.talk]
        outputs = ["t.txt"]
        cmd = "echo epoch 1 loss 0.5; echo done > t.txt"
        """
    )
    result = project.run("build", "-j", "1")
    assert result.rc == 0
    assert "epoch 1 loss 0.5" in result.out


def test_job_output_reaches_a_reporter_that_shows_it_and_not_quiet_builds(project):
    """Logs are read back only for reporters that show output: an API caller's reporter that
    implements job_output gets it; `-q` prints none."""
    from weavebuild import Project
    from weavebuild.reporter import NORMAL, QUIET, ConsoleReporter, Reporter

    class Collect(Reporter):
        def __init__(self) -> None:
            self.data = b""

        def job_output(self, display: str, data: bytes) -> None:
            self.data += data

    project.weavefile(
        """
        [rules.talk]
        outputs = ["t.txt"]
        cmd = "echo epoch 1 loss 0.5; echo done > t.txt"
        """
    )
    assert not Reporter().wants_output
    assert ConsoleReporter(verbosity=NORMAL, live=False).wants_output
    assert not ConsoleReporter(verbosity=QUIET, live=False).wants_output
    collect = Collect()
    assert collect.wants_output
    Project.load(str(project.root)).build(jobs=1, reporter=collect)
    assert b"epoch 1 loss 0.5" in collect.data
    quiet = project.run("build", "-q", "--force")
    assert quiet.rc == 0, quiet
    assert quiet.out == ""

"""GPU scheduling on a machine with real NVIDIA GPUs: detection through the real `nvidia-smi`,
GPU ids handed to jobs, what CUDA frameworks in a job then see, and that an interrupted or killed
build leaves no process holding a GPU.

Skipped where `nvidia-smi -L` lists no GPU (CI has none); test_resources.py covers the same
rules with a fake nvidia-smi there. Run these on a GPU box: `python -m pytest tests/test_gpu_machine.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from functools import cache
from typing import List

import pytest

from conftest import Project


@cache
def gpu_indices() -> List[str]:
    """The GPU indices `nvidia-smi` reports, or [] without a working nvidia-smi."""
    program = shutil.which("nvidia-smi")
    if program is None:
        return []
    try:
        result = subprocess.run(
            [program, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()] if result.returncode == 0 else []


@cache
def torch_with_cuda() -> bool:
    """Whether this interpreter has PyTorch and PyTorch sees a GPU (asked in a child process,
    so that CUDA is never initialised in pytest itself)."""
    if not gpu_indices():
        return False
    probe = subprocess.run(
        [sys.executable, "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"],
        capture_output=True, timeout=300, env=_without_visible_devices(),
    )
    return probe.returncode == 0


def _without_visible_devices() -> dict:
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


needs_gpu = pytest.mark.skipif(not gpu_indices(), reason="no NVIDIA GPU on this machine (nvidia-smi lists none)")


def _wait_for(predicate, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purpose: it holds no GPU memory
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


RECORD_JOB = (
    "import json, os, sys, time\n"
    "start = time.time(); time.sleep(0.4); end = time.time()\n"
    "json.dump({'ids': os.environ.get('CUDA_VISIBLE_DEVICES'), 'start': start, 'end': end}, open(sys.argv[1], 'w'))\n"
)


@needs_gpu
def test_detected_gpus_are_handed_out_whole_and_never_shared(project: Project):
    """No --resources and no [resources]: the total is what nvidia-smi lists; each gpu=1 job
    gets one id of them, and two jobs never hold the same id at once."""
    indices = gpu_indices()
    jobs = len(indices) + 2  # more GPU jobs than GPUs: some must wait for a GPU
    project.write("record.py", RECORD_JOB)
    rules = "".join(
        f"""
        [rules.g{i}]
        outputs   = ["out/g{i}.json"]
        resources = {{ gpu = 1 }}
        cmd       = "{sys.executable} record.py {{outputs}}"
        """
        for i in range(jobs)
    )
    project.weavefile(f"default = {json.dumps([f'out/g{i}.json' for i in range(jobs)])}\n" + rules)
    result = project.run("build", "-j", str(jobs))
    assert result.rc == 0, result
    records = [json.loads(project.read(f"out/g{i}.json")) for i in range(jobs)]
    for record in records:
        assert record["ids"] in indices, (record, indices)
    for a in range(jobs):
        for b in range(a + 1, jobs):
            first, second = records[a], records[b]
            if first["ids"] == second["ids"]:
                overlap = min(first["end"], second["end"]) - max(first["start"], second["start"])
                assert overlap <= 0, ("two jobs held one GPU at once", first, second)
    assert "CUDA_VISIBLE_DEVICES" not in result.err, result  # no note: detection needs none


@pytest.mark.skipif(not torch_with_cuda(), reason="needs PyTorch with CUDA and a GPU")
def test_pytorch_in_a_job_sees_only_its_grant(project: Project):
    """A gpu=1 job's framework sees exactly one device, numbered 0; a gpu=0 job sees none."""
    project.write(
        "probe.py",
        "import sys, torch\n"
        "count = torch.cuda.device_count()\n"
        "name = torch.cuda.get_device_name(0) if count else ''\n"
        "if count:\n"
        "    x = torch.ones(1024, 1024, device='cuda:0'); assert float((x @ x).sum()) == 1024.0 ** 3\n"
        "open(sys.argv[1], 'w').write(f'{count} {name}')\n",
    )
    project.weavefile(
        f"""
        [rules.on_gpu]
        outputs   = ["on_gpu.txt"]
        resources = {{ gpu = 1 }}
        cmd       = "{sys.executable} probe.py {{outputs}}"

        [rules.on_cpu]
        outputs   = ["on_cpu.txt"]
        resources = {{ gpu = 0 }}
        cmd       = "{sys.executable} probe.py {{outputs}}"
        """
    )
    result = project.run("build", "-j", "2", "on_gpu.txt", "on_cpu.txt", timeout=600)
    assert result.rc == 0, result
    count, _, name = project.read("on_gpu.txt").partition(" ")
    assert count == "1" and name, project.read("on_gpu.txt")
    assert project.read("on_cpu.txt") == "0 ", "a gpu=0 job must not see the GPUs"


HOLD_JOB = (
    "import os, sys, time, torch\n"
    "x = torch.empty(256 * 1024 * 1024, dtype=torch.uint8, device='cuda')  # 256 MiB on the GPU\n"
    "torch.cuda.synchronize()\n"
    "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "time.sleep(600)\n"
    "open(sys.argv[2], 'w').write('done')\n"
)


def _gpu_processes() -> List[int]:
    result = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"], capture_output=True, text=True, timeout=60
    )
    return [int(line) for line in result.stdout.split() if line.strip().isdigit()]


@pytest.mark.slow
@pytest.mark.skipif(not torch_with_cuda(), reason="needs PyTorch with CUDA and a GPU")
@pytest.mark.parametrize("how", ["interrupt", "kill -9"])
def test_stopped_build_leaves_no_process_on_the_gpu(project: Project, how: str):
    """Ctrl-C stops a job that holds GPU memory; after kill -9 of weave itself, the next weave
    ends the orphan before it builds. Either way the GPU is free again and the output is not
    trusted."""
    project.write("hold.py", HOLD_JOB)
    project.weavefile(
        f"""
        [rules.train]
        outputs   = ["model.pt"]
        resources = {{ gpu = 1 }}
        cmd       = "{sys.executable} hold.py pid.txt {{outputs}}"
        """
    )
    weave = subprocess.Popen(
        [sys.executable, "-m", "weavebuild", "build", "model.pt"],
        cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_without_visible_devices(),
    )
    try:
        _wait_for(lambda: project.exists("pid.txt") and project.read("pid.txt").strip(), what="the job on the GPU")
        job_pid = int(project.read("pid.txt"))
        if _gpu_processes():  # where the driver reports processes (not in every container)
            assert job_pid in _gpu_processes()
        if how == "interrupt":
            weave.send_signal(signal.SIGINT)
            _, err = weave.communicate(timeout=120)
            assert weave.returncode != 0 and "Traceback" not in err, err
        else:
            weave.kill()
            weave.wait(timeout=60)
            assert _alive(job_pid), "the job outlives a kill -9 of weave: the next weave must end it"
            project.write("hold.py", HOLD_JOB.replace("time.sleep(600)", "time.sleep(0)"))
            again = project.run("build", "model.pt", timeout=600)
            assert again.rc == 0, again
            assert project.read("model.pt") == "done"
        _wait_for(lambda: not _alive(job_pid), timeout=60, what="the GPU job to end")
        _wait_for(lambda: job_pid not in _gpu_processes(), timeout=60, what="the GPU to be free")
        if how == "interrupt":
            assert not project.exists("model.pt")
            assert project.run("plan", "model.pt").rc == 0
            assert "train" in project.run("plan", "model.pt").out
    finally:
        if weave.poll() is None:
            weave.kill()
            weave.wait()

"""The short time slice of the thread that starts jobs (Linux 6.12+): weave's build thread has
it while jobs run, the jobs do not, and an embedding program's thread gets its own back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from weavebuild.api import Project
from weavebuild.executor import SHORT_SLICE_AFTER
from weavebuild.sched_latency import SLICE_NS

PROBE = (
    "from weavebuild import sched_latency\n"
    "sched_latency.shorten_slice()\n"
    "print(open('/proc/thread-self/sched').read())\n"
)


def _slice(sched_text: str) -> int:
    for line in sched_text.splitlines():
        if line.startswith("se.slice"):
            return int(line.split(":")[1])
    raise AssertionError(f"no se.slice in {sched_text!r}")


def _kernel_takes_slices() -> bool:
    """Whether this kernel shows slices and takes a thread's request (Linux 6.12+)."""
    if not os.path.exists("/proc/thread-self/sched"):
        return False
    with open("/proc/thread-self/sched") as own:
        if "se.slice" not in own.read():
            return False
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    return probe.returncode == 0 and _slice(probe.stdout) == SLICE_NS


needs_slices = pytest.mark.skipif(not _kernel_takes_slices(), reason="the kernel has no per-thread slices")


@needs_slices
def test_weave_starts_jobs_with_a_short_slice_that_jobs_do_not_inherit(project):
    # The probe starts after enough other jobs (SHORT_SLICE_AFTER). Run by bash: $PPID is
    # weave, $$ the job's own shell; both slices go to the output.
    count = SHORT_SLICE_AFTER + 2
    project.weavefile(
        f"""
        [rules.step]
        outputs = ["steps/{{n}}.txt"]
        cmd = "touch {{outputs}}"
        [rules.probe]
        inputs = [{", ".join(f'"steps/{n}.txt"' for n in range(count))}]
        outputs = ["slices.txt"]
        cmd = 'grep -h se.slice /proc/$PPID/sched /proc/$$/sched > "{{outputs}}"'
        """
    )
    result = project.run("build", "-j1", "slices.txt")
    assert result.rc == 0, result
    weave_line, job_line = project.read("slices.txt").splitlines()
    assert _slice(weave_line) == SLICE_NS
    assert _slice(job_line) != SLICE_NS


@needs_slices
def test_an_embedding_thread_gets_its_slice_back_after_a_build(project):
    project.weavefile(
        f"""
        default = ["all"]
        [rules.copy]
        inputs = ["a/{{n}}.txt"]
        outputs = ["b/{{n}}.txt"]
        cmd = "cp {{inputs}} {{outputs}}"
        [rules.all]
        inputs = [{", ".join(f'"b/{n}.txt"' for n in range(SHORT_SLICE_AFTER + 2))}]
        """
    )
    for n in range(SHORT_SLICE_AFTER + 2):
        project.write(f"a/{n}.txt", f"{n}\n")
    seen = {}

    def build_in_a_thread() -> None:  # not the test runner's own thread: its flags stay as they are
        with open("/proc/thread-self/sched") as own:
            seen["before"] = _slice(own.read())
        seen["ran"] = Project.load(str(project.root)).build().count("ran")
        with open("/proc/thread-self/sched") as own:
            seen["after"] = _slice(own.read())

    thread = threading.Thread(target=build_in_a_thread)
    thread.start()
    thread.join(120)
    assert seen["ran"] == SHORT_SLICE_AFTER + 2
    assert seen["after"] == seen["before"] != SLICE_NS


def test_threads_outside_the_ordinary_policy_are_left_alone():
    # SCHED_BATCH chosen by the user (as with `chrt -b 0 weave`) is kept: no slice, no flags.
    code = (
        "import os\n"
        "from weavebuild import sched_latency\n"
        "os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))\n"
        "print(sched_latency.shorten_slice(), os.sched_getscheduler(0) == os.SCHED_BATCH)\n"
    )
    if not hasattr(os, "SCHED_BATCH"):
        pytest.skip("no SCHED_BATCH here")
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["False", "True"]

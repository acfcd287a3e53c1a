"""Progress output: a live status line on a terminal, plain lines elsewhere."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def run_in_terminal(root, *args: str) -> tuple:
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="200")
    process = subprocess.Popen(
        [sys.executable, "-m", "weavebuild", *args], cwd=root, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


STEPS = """
[rules.step]
outputs = ["out/{i}.txt"]
foreach = { i = ["1", "2", "3", "4"] }
cmd = "sleep 0.3; echo {wildcards.i} > {outputs}"
"""


def test_terminal_gets_status_line(project):
    project.weavefile(STEPS)
    rc, text = run_in_terminal(project.root, "build", "-j", "2", "step")
    assert rc == 0, text
    assert "\r\x1b[K[" in text, text
    assert "running: step ×2" in text
    assert "weave: 4 ran, 0 up to date" in text
    assert "\n[1/4] step" not in text  # no per-job lines on a terminal


def test_pipe_gets_plain_lines(project):
    project.weavefile(STEPS)
    result = project.run("build", "-j", "2", "step")
    assert result.rc == 0
    assert "\x1b[" not in result.out
    assert len(result.started) == 4


def test_quiet_prints_nothing_on_success(project):
    project.weavefile(STEPS)
    result = project.run("build", "-q", "step")
    assert result.rc == 0 and result.out == "" and result.err == ""


def test_verbose_prints_commands_and_reasons(project):
    project.weavefile(STEPS)
    result = project.run("-v", "build", "out/1.txt")
    assert "$ sleep 0.3; echo 1 > out/1.txt" in result.out
    assert "(never built)" in result.out

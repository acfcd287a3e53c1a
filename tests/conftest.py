"""Shared fixtures: temporary projects and a runner for the real `weave` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control starts background commands with SIGINT and SIGQUIT ignored
    # (nohup: SIGHUP too), every process started from here inherits that, and weave keeps an
    # inherited ignored signal ignored: tests that send these signals, or check weave's
    # handlers, would then depend on how pytest was started. Start from the defaults.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGQUIT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def entry_probe(report: str) -> str:
    """Code for `python -c` that runs the console script's main() and, after it (atexit),
    writes the f-string `report` (no single quotes; gc and sys are imported) to stderr."""
    return (
        "import atexit, gc, sys\n"
        f"atexit.register(lambda: sys.stderr.write(f'{report}\\n'))\n"
        "sys.argv[0] = 'weave'\n"
        "from weavebuild.entry import main\n"
        "main()\n"
    )


# The cycle collector's state as the console script ends.
GC_PROBE = entry_probe("gc-probe enabled={gc.isenabled()} frozen={gc.get_freeze_count() > 0}")


class WeaveRun:
    """The outcome of one `weave` process."""

    def __init__(self, process: subprocess.CompletedProcess):
        self.rc = process.returncode
        self.out = process.stdout
        self.err = process.stderr

    @property
    def started(self) -> List[str]:
        """Display names of the jobs that started, from the `[i/N] job` lines."""
        jobs = []
        for line in self.out.splitlines():
            if line.startswith("[") and "] " in line and "/" in line.split("]")[0]:
                jobs.append(line.split("] ", 1)[1].split("  (")[0])
        return jobs

    def __repr__(self) -> str:
        return f"WeaveRun(rc={self.rc}, out={self.out!r}, err={self.err!r})"


class Project:
    """A temporary project directory with helpers to write files and run weave in it."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, relative: str, content: str, dedent: bool = True) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content) if dedent else content)
        return path

    def weavefile(self, content: str) -> Path:
        return self.write("Weavefile", content)

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text()

    def exists(self, relative: str) -> bool:
        return (self.root / relative).exists()

    def run(self, *args: str, env: Optional[Dict[str, str]] = None, timeout: float = 120, cwd: Optional[Path] = None) -> WeaveRun:
        full_env = dict(os.environ)
        full_env.pop("CUDA_VISIBLE_DEVICES", None)
        if env:
            full_env.update(env)
        process = subprocess.run(
            [sys.executable, "-m", "weavebuild", *args],
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
        return WeaveRun(process)

    def runs_log(self) -> List[str]:
        """Lines of `runs.log`, where test commands note each run (`echo NAME >> runs.log`)."""
        path = self.root / "runs.log"
        return path.read_text().split() if path.exists() else []

    def clear_runs(self) -> None:
        (self.root / "runs.log").unlink(missing_ok=True)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    return Project(root)


def wait_past_racy_window(root: Path) -> None:
    """Wait until every file under `root` (but .weave/) was last changed more than twice the
    racy window ago: a build right after the one that wrote them (a fast machine starts the
    next weave within 50 ms) re-reads them, and stamps or trusts nothing racy."""
    import time

    from weavebuild.filestate import RACY_WINDOW_NS

    newest = 0
    for directory, names, files in os.walk(root):
        names[:] = [name for name in names if name != ".weave"]
        for name in files:
            st = os.lstat(os.path.join(directory, name))
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    while time.time_ns() - newest <= 2 * RACY_WINDOW_NS:
        time.sleep(0.01)


def assert_user_error(result: WeaveRun, *fragments: str) -> None:
    """Exit code 2, no traceback, and every fragment in stderr."""
    assert result.rc == 2, result
    assert "Traceback" not in result.err and "Traceback" not in result.out, result
    assert result.err.startswith("weave: error:"), result
    for fragment in fragments:
        assert fragment in result.err, (fragment, result)

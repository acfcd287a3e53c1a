"""spawn.start: real processes, through CPython's fork_exec where its layout is known and
through Popen otherwise; both must behave the same."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import psutil
import pytest

from weavebuild import spawn


@pytest.fixture(params=["fork_exec", "popen"])
def path_taken(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "popen":
        monkeypatch.setattr(spawn, "_FORK_EXEC", None)
    yield request.param


def _run(argv: List[str], cwd: Path, out: Path, env: Optional[Dict[str, str]] = None) -> int:
    """Start argv with stdout and stderr to `out`; its exit code."""
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    log = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        child = spawn.start(argv, null, log, log, str(cwd), env)
    finally:
        os.close(null)
        os.close(log)
    _, status = os.waitpid(child.pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="the fast path is CPython's")
def test_the_fast_path_is_taken_on_this_cpython() -> None:
    # A CPython whose fork_exec no longer has the expected parameters would silently lose
    # the fast path: this says so.
    assert spawn._FORK_EXEC is not None


def test_output_and_exit_code(tmp_path: Path, path_taken: str) -> None:
    script = "import sys; print(sys.argv[0], sys.argv[1]); sys.stderr.write('err\\n'); sys.exit(3)"
    code = _run([sys.executable, "-c", script, "word with spaces"], tmp_path, tmp_path / "out")
    assert code == 3
    assert (tmp_path / "out").read_text() == "-c word with spaces\nerr\n"


def test_own_session_cwd_and_only_three_descriptors(tmp_path: Path, path_taken: str) -> None:
    leaked_r, leaked_w = os.pipe()  # inheritable: close_fds must still close them
    os.set_inheritable(leaked_w, True)
    try:
        script = (
            "import os; print(os.getsid(0) == os.getpid(), os.getcwd());"
            "print(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))"
        )
        assert _run([sys.executable, "-c", script], tmp_path, tmp_path / "out") == 0
    finally:
        os.close(leaked_r)
        os.close(leaked_w)
    session, fds = (tmp_path / "out").read_text().splitlines()
    own_session, cwd = session.split(" ", 1)
    assert own_session == "True"
    assert Path(cwd).resolve() == tmp_path.resolve()
    assert fds == "[0, 1, 2, 3]"  # 3: the listing's own descriptor


def test_environment_given_or_inherited(tmp_path: Path, path_taken: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAVE_SPAWN_PROBE", "inherited")
    script = "import os; print(os.environ.get('WEAVE_SPAWN_PROBE'), os.environ.get('ONLY_HERE'))"
    assert _run([sys.executable, "-c", script], tmp_path, tmp_path / "out") == 0
    assert (tmp_path / "out").read_text() == "inherited None\n"
    env = {"ONLY_HERE": "given", "PATH": os.environ.get("PATH", "")}
    assert _run([sys.executable, "-c", script], tmp_path, tmp_path / "out", env=env) == 0
    assert (tmp_path / "out").read_text() == "None given\n"


def test_program_found_on_path_of_the_given_environment(tmp_path: Path, path_taken: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "only-in-this-path"
    tool.write_text("#!/bin/sh\necho found \"$1\"\n")
    tool.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    assert _run(["only-in-this-path", "x"], tmp_path, tmp_path / "out", env=env) == 0
    assert (tmp_path / "out").read_text() == "found x\n"


def _tool(directory: Path, says: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / "weave-probe-tool"
    tool.write_text(f"#!/bin/sh\necho {says}\n")
    tool.chmod(0o755)


def test_path_is_searched_in_order_at_each_start(tmp_path: Path, path_taken: str) -> None:
    # As execvp and bash: the first PATH entry that has the program, looked at when the
    # process starts (a program installed ahead of another one meanwhile is the one run).
    first, second = tmp_path / "first", tmp_path / "second"
    _tool(second, "second")
    env = {"PATH": f"{first}{os.pathsep}{second}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    assert _run(["weave-probe-tool"], tmp_path, tmp_path / "out", env=env) == 0
    assert (tmp_path / "out").read_text() == "second\n"
    _tool(first, "first")
    assert _run(["weave-probe-tool"], tmp_path, tmp_path / "out", env=env) == 0
    assert (tmp_path / "out").read_text() == "first\n"


def test_relative_path_entries_and_names_are_taken_from_the_directory(tmp_path: Path, path_taken: str) -> None:
    _tool(tmp_path / "tools", "relative")
    env = {"PATH": f"tools{os.pathsep}/usr/bin{os.pathsep}/bin"}
    assert _run(["weave-probe-tool"], tmp_path, tmp_path / "out", env=env) == 0
    assert (tmp_path / "out").read_text() == "relative\n"
    assert _run(["tools/weave-probe-tool"], tmp_path, tmp_path / "out") == 0
    assert (tmp_path / "out").read_text() == "relative\n"


def test_missing_program_raises_oserror_naming_it(tmp_path: Path, path_taken: str) -> None:
    missing = str(tmp_path / "no-such-program")
    with pytest.raises(OSError) as raised:
        _run([missing], tmp_path, tmp_path / "out")
    assert raised.value.errno == errno.ENOENT
    assert raised.value.filename == missing


def test_program_that_is_not_executable(tmp_path: Path, path_taken: str) -> None:
    data = tmp_path / "data.txt"
    data.write_text("not a program\n")
    with pytest.raises(PermissionError) as raised:
        _run([str(data)], tmp_path, tmp_path / "out")
    assert raised.value.filename == str(data)


def test_missing_directory_raises_oserror_naming_it(tmp_path: Path, path_taken: str) -> None:
    gone = tmp_path / "gone"
    with pytest.raises(FileNotFoundError) as raised:
        _run(["true"], gone, tmp_path / "out")
    assert raised.value.filename == str(gone)


def test_no_child_is_left_after_a_failed_start(tmp_path: Path, path_taken: str) -> None:
    missing = str(tmp_path / "no-such-program")
    before = {child.pid for child in psutil.Process().children()}
    with pytest.raises(OSError):
        _run([missing], tmp_path, tmp_path / "out")
    # Reaped by start itself: no zombie is left for anyone to wait for.
    assert {child.pid for child in psutil.Process().children()} <= before


def test_works_with_standard_descriptors_closed(tmp_path: Path, path_taken: str) -> None:
    # A weave run with 0-2 closed (`weave ... <&- >&-`, a daemon): the error pipe then gets a
    # low number, which the child's dup2s onto 0-2 must not overwrite.
    script = f"""
import os, sys
sys.path.insert(0, {str(Path(spawn.__file__).parent.parent)!r})
from weavebuild import spawn
if {path_taken == "popen"!r}:
    spawn._FORK_EXEC = None
log = os.open({str(tmp_path / "out")!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
for fd in (0, 1, 2):
    os.close(fd)
child = spawn.start(["echo", "still", "fine"], null, log, log, {str(tmp_path)!r}, None)
_, status = os.waitpid(child.pid, 0)
try:
    spawn.start(["no-such-program-here"], null, log, log, {str(tmp_path)!r}, None)
except FileNotFoundError:
    os.write(log, b"missing reported\\n")
os._exit(os.waitstatus_to_exitcode(status))
"""
    completed = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert completed.returncode == 0
    assert (tmp_path / "out").read_text() == "still fine\nmissing reported\n"

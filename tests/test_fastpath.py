"""The fast path (`invocation.parse_fast`): plain `weave` / `weave build` command lines run
without click, and give exactly what the click CLI gives for the same line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import entry_probe, wait_past_racy_window
from weavebuild.invocation import BUILD_DEFAULTS, parse_fast

# The console script's main() (which takes the fast path when it can), reporting at exit
# whether click was imported.
ENTRY = entry_probe('click-loaded={"click" in sys.modules}')
# The click CLI itself, for the same command line.
CLICK = "import sys\nsys.argv[0] = 'weave'\nfrom weavebuild.cli import main\nmain()\n"

WEAVEFILE = """
default = ["b.txt"]
[rules.a]
inputs = ["src.txt"]
outputs = ["a.txt"]
cmd = "tr a-z A-Z < {inputs} > {outputs}"
[rules.b]
inputs = ["a.txt"]
outputs = ["b.txt"]
cmd = "cat {inputs} {inputs} > {outputs}"
[rules.c]
inputs = ["src.txt"]
outputs = ["c.txt"]
cmd = "echo c-ran; cp {inputs} {outputs}"
[rules.broken]
inputs = ["src.txt"]
outputs = ["broken.txt"]
cmd = "echo about to fail >&2; exit 3"
"""


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], ([], 1, {})),
        (["build"], ([], 1, {})),
        (["-q"], ([], 0, {})),
        (["build", "-q", "a.txt", "c"], (["a.txt", "c"], 0, {})),
        (["-v", "build", "-v"], ([], 3, {})),
        (["-j", "4", "build"], ([], 1, {"jobs": 4})),
        (["build", "-j8", "-k"], ([], 1, {"jobs": 8, "keep_going": True})),
        (["--jobs=2", "--keep-going", "build", "x"], (["x"], 1, {"jobs": 2, "keep_going": True})),
        (["build", "build"], (["build"], 1, {})),  # after the command, a target named build
        (["--resources", "gpu=2", "build", "--resources=mem_mb=10,cpu=1"], ([], 1, {"resources": ("mem_mb=10,cpu=1",)})),
        (["--resources", "gpu=2", "--resources", "x=1", "build"], ([], 1, {"resources": ("gpu=2", "x=1")})),
    ],
)
def test_command_lines_of_the_fast_path(args, expected):
    targets, verbosity, changed = expected
    assert parse_fast(args) == (targets, verbosity, dict(BUILD_DEFAULTS, **changed))


@pytest.mark.parametrize(
    "args",
    [
        ["--version"], ["--help"], ["build", "--help"], ["plan"], ["biuld"], ["status"],
        ["-j", "0", "build"], ["-j"], ["build", "-j"], ["-jx"], ["--jobs=-1"], ["-j", "2", "-j", "3"],
        ["-j", "build"], ["-j", "01"], ["-q", "-v"], ["build", "-q", "-q"], ["-qk"], ["-vv"],
        ["-k", "build", "-k"], ["-C", "dir", "build"], ["-f", "W", "build"], ["--set", "x=1"],
        ["build", "-n"], ["build", "-B", "a"], ["build", "--"], ["build", "-"], ["build", ""],
        ["build", "--resources"], ["--resources", "-j", "2"], ["--resources="], ["build", "--wait"],
        ["-x"], ["target"],
    ],
)
def test_everything_else_goes_to_click(args):
    assert parse_fast(args) is None


def test_defaults_are_the_click_commands_defaults():
    """The fast path passes BUILD_DEFAULTS for the options it does not take: they must be the
    values `weave build` (and `weave` without a command) pass when no option is given, for
    every build option."""
    from weavebuild.cli import cli
    from weavebuild.commands.build import build

    given = build.make_context("build", []).params
    assert given.pop("targets") == ()
    assert given == BUILD_DEFAULTS
    group = cli.make_context("weave", []).params
    for key in ("directory", "weavefile", "verbose", "quiet", "sets"):  # the global options
        group.pop(key)
    assert group == BUILD_DEFAULTS


def _normalise(text: str) -> str:
    """Durations out; lines sorted: with `-j 2`, a job's output and the next job's start line
    come in the order the jobs happen to end (the order is the engine's, not the CLI's), and so
    does whether a job's output needs its `-- output of JOB:` header."""
    lines = re.sub(r"\(\d+\.\d+s\)", "(T)", text).splitlines(keepends=True)
    return "".join(sorted(line for line in lines if not line.startswith("-- output of ")))


def _run(code: str, root, args):
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=root, capture_output=True, text=True, timeout=120
    )
    err = "".join(line + "\n" for line in result.stderr.splitlines() if not line.startswith("click-loaded="))
    return result.returncode, _normalise(result.stdout), _normalise(err), result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["build"],
        ["-q", "build", "c"],
        ["build", "-v", "a.txt"],
        ["-j", "2", "build", "b.txt", "c"],
        ["build", "no-such-target"],
        ["build", "broken"],
        ["-k", "build", "broken", "c", "b.txt", "-j1"],
        ["--jobs", "2", "--resources", "gpu=1", "build", "--resources", "mem_mb=100"],
        ["build", "--resources", "gpu=lots"],
        ["--version"],  # answered by entry.main itself
    ],
)
def test_fast_path_and_click_give_the_same(tmp_path, args):
    """Each command line runs twice on identical projects, through the console script (fast
    path) and through the click CLI: same exit code, output and messages, and the fast path
    really did not load click."""
    results = []
    for name, code in (("fast", ENTRY), ("click", CLICK)):
        root = tmp_path / name
        root.mkdir()
        (root / "Weavefile").write_text(WEAVEFILE)
        (root / "src.txt").write_text("hello\n")
        first = _run(code, root, args)
        second = _run(code, root, args)  # against the state the first left
        results.append((first[:3], second[:3]))
        if name == "fast":
            assert "click-loaded=False" in first[3], first[3]
    assert results[0] == results[1]


def test_other_command_lines_still_work_through_the_console_script(project):
    project.write("Weavefile", WEAVEFILE)
    project.write("src.txt", "hello\n")
    result = subprocess.run(
        [sys.executable, "-c", ENTRY, "build", "-B", "c"], cwd=project.root, capture_output=True, text=True
    )
    assert result.returncode == 0 and "c-ran" in result.stdout, result
    assert "click-loaded=True" in result.stderr
    bad = subprocess.run([sys.executable, "-c", ENTRY, "-j", "0"], cwd=project.root, capture_output=True, text=True)
    assert bad.returncode == 2 and "'-j' / '--jobs': 0 is too small: at least 1" in bad.stderr, bad


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the /proc sampler is Linux's")
def test_sampling_the_memory_of_running_jobs_does_not_import_psutil(project):
    """Jobs that run past the sampling interval are sampled from /proc: a build of a few
    seconds no longer imports psutil (~30 ms, in a thread that holds the GIL) to do it."""
    project.write("Weavefile", '[rules.a]\noutputs = ["a.txt"]\ncmd = "sleep 0.8; echo a > {outputs}"\n')
    probe = entry_probe('psutil-loaded={"psutil" in sys.modules}')
    result = subprocess.run([sys.executable, "-c", probe, "build"], cwd=project.root, capture_output=True, text=True)
    assert result.returncode == 0, result
    assert "psutil-loaded=False" in result.stderr, result.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_is_clicks_even_for_a_bare_weave(project, shell):
    """`eval "$(_WEAVE_COMPLETE=bash_source weave)"` (docs/cli.md) printed a build's output: a
    bare `weave` took the fast path and built. It prints the completion script, and a
    completion request completes."""
    project.write("Weavefile", WEAVEFILE)
    project.write("src.txt", "hello\n")
    env = dict(os.environ, _WEAVE_COMPLETE=f"{shell}_source")
    script = subprocess.run([sys.executable, "-c", ENTRY], cwd=project.root, capture_output=True, text=True, env=env)
    assert script.returncode == 0, script
    assert "_weave_completion" in script.stdout or "complete" in script.stdout, script.stdout
    assert not (project.root / "a.txt").exists(), "completion built the project"
    if shell == "bash":
        env = dict(os.environ, _WEAVE_COMPLETE="bash_complete", COMP_WORDS="weave bu", COMP_CWORD="1")
        request = subprocess.run([sys.executable, "-c", ENTRY], cwd=project.root, capture_output=True, text=True, env=env)
        assert request.stdout.strip() == "plain,build", request


def test_a_build_that_runs_jobs_does_not_import_subprocess(project):
    """Jobs start through _posixsubprocess directly (spawn.py): importing subprocess, and
    locale with it, cost every build that runs a job several milliseconds for nothing."""
    project.write("Weavefile", '[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > {outputs}"\n')
    probe = entry_probe('subprocess-loaded={"subprocess" in sys.modules}')
    result = subprocess.run([sys.executable, "-c", probe, "build", "a.txt"], cwd=project.root, capture_output=True, text=True)
    assert result.returncode == 0 and (project.root / "a.txt").read_text() == "a\n", result
    assert "subprocess-loaded=False" in result.stderr, result.stderr


# What weave's own modules ask to import in a process, whoever loaded the module first: the
# sandbox or a site `.pth` may have imported typing already, and that must not hide weave's
# own import of it.
IMPORT_PROBE = (
    "import atexit, builtins, sys\n"
    "asked = set()\n"
    "original = builtins.__import__\n"
    "def spy(name, globals=None, locals=None, fromlist=(), level=0):\n"
    "    if level == 0 and str((globals or {}).get('__name__', '')).startswith('weavebuild'):\n"
    "        asked.add(name.partition('.')[0])\n"
    "    return original(name, globals, locals, fromlist, level)\n"
    "builtins.__import__ = spy\n"
    "atexit.register(lambda: sys.stderr.write('asked=' + ','.join(sorted(asked)) + '\\n'))\n"
    "sys.argv[0] = 'weave'\n"
    "from weavebuild.entry import main\n"
    "main()\n"
)

# Standard modules a proven no-op has no use for, each a millisecond or more of every start:
# typing alone cost more than the rest of weave's modules together (annotations are strings,
# and the modules name typing's types only under `if TYPE_CHECKING:`).
NOT_ON_THE_NO_OP_PATH = {
    "typing", "json", "shutil", "glob", "fnmatch", "threading", "contextlib", "subprocess", "click",
    "sqlite3",  # the package (its dbapi2 loads datetime); store.py takes the C module under it
    "re",  # with enum and functools' users: 5-9 ms of a start on the development VM
}


def asked_imports(project, *args: str) -> set:
    result = subprocess.run([sys.executable, "-c", IMPORT_PROBE, *args], cwd=project.root, capture_output=True, text=True)
    assert result.returncode == 0, result
    line = next(line for line in result.stderr.splitlines() if line.startswith("asked="))
    return set(line[len("asked=") :].split(","))


def test_a_no_op_build_and_version_import_only_what_they_need(project):
    project.write("Weavefile", WEAVEFILE)
    project.write("src.txt", "hello\n")
    assert project.run("build").rc == 0
    wait_past_racy_window(project.root)  # (a build within 50 ms of the writes stamps nothing racy)
    assert project.run("build").rc == 0  # settles what the first wrote in its racy window
    asked = asked_imports(project, "build")
    assert {"_sqlite3", "xxhash"} <= asked, asked  # the probe sees the imports it must
    assert not asked & NOT_ON_THE_NO_OP_PATH, sorted(asked & NOT_ON_THE_NO_OP_PATH)
    version = asked_imports(project, "--version")
    assert not version & NOT_ON_THE_NO_OP_PATH, sorted(version)


def test_a_build_that_runs_jobs_imports_neither_typing_nor_shutil(project):
    """The modules a build that runs jobs loads name typing's types only for type checkers,
    and import shutil (and its compression modules) only where they remove a directory."""
    project.write("Weavefile", WEAVEFILE)
    project.write("src.txt", "hello\n")
    asked = asked_imports(project, "build", "b.txt")
    assert (project.root / "b.txt").exists()
    assert "xxhash" in asked, asked  # the probe sees the imports it must
    assert not asked & {"typing", "shutil"}, sorted(asked & {"typing", "shutil"})


def test_the_weave_script_imports_nothing_a_no_op_does_not_need(project):
    """The installed `weave` is bin/weave (pyproject's script-files), not an entry point:
    pip's entry-point script imports re to tidy argv[0] for Windows, 5-9 ms of every start
    that the no-op path above works to avoid."""
    script = Path(__file__).resolve().parent.parent / "bin" / "weave"
    assert script.read_text().startswith("#!python\n")  # pip puts the interpreter's path there
    project.write("Weavefile", WEAVEFILE)
    project.write("src.txt", "hello\n")
    assert project.run("build").rc == 0
    wait_past_racy_window(project.root)  # (a build within 50 ms of the writes stamps nothing racy)
    assert project.run("build").rc == 0  # settles what the first wrote in its racy window
    # What the script itself (run as __main__) and weave's modules ask to import.
    probe = (
        "import atexit, builtins, runpy, sys\n"
        "asked = set()\n"
        "original = builtins.__import__\n"
        "def spy(name, globals=None, locals=None, fromlist=(), level=0):\n"
        "    who = str((globals or {}).get('__name__', ''))\n"
        "    if level == 0 and (who == '__main__' or who.startswith('weavebuild')):\n"
        "        asked.add(name.partition('.')[0])\n"
        "    return original(name, globals, locals, fromlist, level)\n"
        "builtins.__import__ = spy\n"
        "atexit.register(lambda: sys.stderr.write('asked=' + ','.join(sorted(asked)) + '\\n'))\n"
        f"sys.argv = [{str(script)!r}, 'build']\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=project.root, capture_output=True, text=True)
    assert result.returncode == 0 and "nothing to do" in result.stdout, result
    line = next(line for line in result.stderr.splitlines() if line.startswith("asked="))
    asked = set(line[len("asked=") :].split(","))
    assert {"sys", "weavebuild", "_sqlite3"} <= asked, asked  # the probe sees the imports it must
    assert not asked & NOT_ON_THE_NO_OP_PATH, sorted(asked & NOT_ON_THE_NO_OP_PATH)

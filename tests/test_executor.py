"""The local executor: direct exec of plain commands, bash strict mode for everything else."""

from __future__ import annotations

import os

import pytest

from weavebuild.executor import LocalExecutor


@pytest.mark.parametrize(
    "command,direct",
    [
        ("cp a.txt b.txt", True),
        ("python train.py --epochs=3 --out models/best", True),
        ("cp 'a b' c", False),
        ("cat a > b", False),
        ("echo $HOME", False),
        ("echo hi", False),  # a bash builtin
        ("cd x", False),
        ("FOO=1 env", False),
        ("ls *.txt", False),
        ("a && b", False),
        ("cp a b\ncp b c", False),
        ("no-such-program-xyz a", False),  # bash reports "command not found" (exit 127)
        ("cat ~/x", False),
    ],
)
def test_simple_argv(command, direct):
    executor = LocalExecutor()
    argv = executor.simple_argv(command)
    assert (argv is not None) == direct
    if direct:
        assert os.path.isabs(argv[0]) and argv[1:] == command.split()[1:]


def run_one(tmp_path, command: str, env=None):
    executor = LocalExecutor()
    log = tmp_path / "job.log"
    executor.start("job", command, env, str(tmp_path), str(log))
    completions = []
    while not completions:
        completions = executor.wait(30)
    executor.close()
    return completions[0], log.read_text()


def test_exit_codes_and_output(tmp_path):
    done, output = run_one(tmp_path, "echo out; echo err >&2; exit 4")
    assert done.returncode == 4 and output == "out\nerr\n"
    done, output = run_one(tmp_path, "cp missing.txt x")
    assert done.returncode == 1 and "missing.txt" in output
    done, _ = run_one(tmp_path, "undefined_var_use $NOPE_NOT_SET")
    assert done.returncode != 0  # set -u
    done, _ = run_one(tmp_path, "false | true")
    assert done.returncode == 1  # pipefail


def test_env_is_passed(tmp_path):
    done, output = run_one(tmp_path, "echo $WEAVE_TEST_VAR", env=dict(os.environ, WEAVE_TEST_VAR="42"))
    assert done.returncode == 0 and output == "42\n"

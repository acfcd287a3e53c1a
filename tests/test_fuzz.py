"""Fuzzing the Weavefile loader and the CLI: random and mutated input never yields a traceback,
only a WeaveError (exit code 2 with a message) — bounded budgets so CI stays fast."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weavebuild.cli import main
from weavebuild.errors import WeaveError
from weavebuild.graph import build_graph
from weavebuild.manifest import parse_manifest

VALID = """default = ["all"]
[vars]
epochs = 3
[resources]
gpu = 1
[rules.clean]
inputs = ["raw/{s}.txt"]
outputs = ["clean/{s}.txt"]
wildcards = { s = "[a-z]+" }
cmd = "tr a-z A-Z < {inputs} > {outputs}"
[rules.merge]
inputs = { parts = "clean/{s}.txt", script = "merge.sh" }
outputs = ["merged.txt", "models/m/"]
foreach = { s = "raw/{s}.txt" }
cmd = ["bash {inputs.script} {inputs.parts} > {outputs[0]}", "mkdir -p {outputs[1]}"]
resources = { gpu = 1 }
cpus = 2
env = { SEED = "{vars.epochs}" }
retries = 1
retry_delay = "1s"
timeout = "1h"
[rules.all]
inputs = ["merged.txt"]
"""

TOML_CHARS = st.sampled_from(list('[]{}"\'=.,\n #{}:-_*/') + ["rules.", "inputs", "outputs", "cmd", "{x}"])


def load_and_resolve(text: str, root: str) -> None:
    """Parse `text` and resolve its default targets; only WeaveError may escape."""
    try:
        manifest = parse_manifest(text, os.path.join(root, "Weavefile"))
        build_graph(manifest, ())
    except WeaveError as exc:
        assert str(exc)  # a message, never empty


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "raw").mkdir()
    (root / "raw" / "a.txt").write_text("a\n")
    (root / "merge.sh").write_text("cat \"$@\"\n")
    return str(root)


def test_valid_seed_resolves(fuzz_root):
    manifest = parse_manifest(VALID, os.path.join(fuzz_root, "Weavefile"))
    graph = build_graph(manifest, ())
    assert {job.rule.name for job in graph.jobs} == {"clean", "merge"}


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_random_text(fuzz_root, text):
    load_and_resolve(text, fuzz_root)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 3), TOML_CHARS), min_size=1, max_size=6))
def test_mutated_weavefiles(fuzz_root, mutations):
    text = VALID
    for position, length, insert in mutations:
        position = min(position, len(text))
        text = text[:position] + insert + text[position + length :]
    load_and_resolve(text, fuzz_root)


# Strings that mean something in paths, foreach and commands (vars, wildcards, escapes).
MEANINGFUL = st.sampled_from(
    ["{vars.v}", "out/{vars.v}.txt", "{vars.l}", "{vars.n}", "{vars.nope}", "{{vars.v}}", "{ vars.b }",
     "o/{vars.b}/{s}.txt", "raw/{s}.txt", "o/{s}.txt", "{wildcards.s}", "{inputs} {outputs}"]
)
SCALARS = st.one_of(
    st.integers(-3, 5), st.text(max_size=12), MEANINGFUL, st.booleans(), st.floats(allow_nan=False, width=16)
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "gpu", "s", "x"]), inner, max_size=3), max_leaves=6)
RULE_KEYS = st.sampled_from(["inputs", "outputs", "cmd", "foreach", "wildcards", "resources", "cpus", "env", "retries", "retry_delay", "timeout", "description", "bogus"])


def toml_value(value) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["a", "b", "c-d"]), st.dictionaries(RULE_KEYS, VALUES, max_size=5), min_size=1, max_size=3))
def test_structured_rules(fuzz_root, rules):
    lines = ["[vars]", 'v = "x"', 'l = ["a", "b"]', "n = 3", 'b = "{y}"']
    for name, body in rules.items():
        lines.append(f"[rules.{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in body.items())
    load_and_resolve("\n".join(lines) + "\n", fuzz_root)


ARGS = st.sampled_from(
    ["build", "plan", "status", "list", "why", "clean", "-n", "-j", "0", "2", "-k", "-B", "--json",
     "--resources", "gpu=1", "gpu=x", "=", "--timeout", "5x", "1s", "--retries", "-1", "-f",
     "nope.toml", "-C", "/nonexistent", "out.txt", "all", "--bogus", "-v", "-q", "--version", "",
     "--set", "n=2", "n=[", "n=true", "m=1", "n"]
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ARGS, max_size=5))
def test_cli_arguments(tmp_path_factory, monkeypatch, argv):
    root = tmp_path_factory.mktemp("cli")
    (root / "Weavefile").write_text('[vars]\nn = 1\n[rules.all]\noutputs = ["out.txt"]\ncmd = "echo {vars.n} > out.txt"\n')
    monkeypatch.chdir(root)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
    assert exit_info.value.code in (0, 1, 2), (argv, err.getvalue())
    assert "Traceback" not in err.getvalue()
    assert "internal error" not in err.getvalue(), (argv, err.getvalue())

"""Unit tests of manifest.py: parsing, validation, error locations and placeholders."""

from __future__ import annotations

import re
import textwrap

import pytest

from weavebuild.errors import ManifestError, UsageError
from weavebuild.manifest import (
    DEFAULT_WILDCARD_REGEX,
    Placeholder,
    _Locator,
    load_manifest,
    parse_duration,
    parse_manifest,
    wildcard_names_in,
)
from weavebuild.projectfile import find_manifest


def parse(text: str, path: str = "Weavefile"):
    return parse_manifest(textwrap.dedent(text), path)


def error_of(text: str, path: str = "Weavefile") -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse(text, path)
    return info.value


# -- valid manifests ---------------------------------------------------------------------------


def test_minimal_rule_and_defaults():
    manifest = parse(
        """
        [rules.hello]
        outputs = ["hello.txt"]
        cmd = "echo hi > {outputs}"
        """
    )
    rule = manifest.rules["hello"]
    assert rule.outputs == ["hello.txt"]
    assert rule.inputs == []
    assert rule.cpus == 1
    assert rule.retries is None and rule.retry_delay is None and rule.timeout is None
    assert rule.line == 2
    assert not rule.is_alias
    assert manifest.default_targets() == ["hello"]
    assert manifest.vars == {} and manifest.resources == {}
    assert len(manifest.digest) == 32


def test_toml_1_1_inline_tables_may_span_lines():
    manifest = parse(
        """
        [rules.train]
        inputs = {
            data = "data/train.csv",
            script = "train.py",
        }
        outputs = ["model.bin"]
        cmd = "python {inputs.script} {inputs.data} > {outputs}"
        """
    )
    rule = manifest.rules["train"]
    assert rule.inputs == ["data/train.csv", "train.py"]
    assert rule.input_names == {"data": [0], "script": [1]}


def test_utf8_byte_order_mark_is_accepted():
    manifest = parse_manifest('\ufeff[rules.hello]\noutputs = ["hello.txt"]\ncmd = "echo hi > {outputs}"\n')
    assert manifest.rules["hello"].line == 1


def test_default_targets_listed_and_single_string():
    manifest = parse(
        """
        default = "b"
        [rules.a]
        outputs = ["a"]
        cmd = "touch a"
        [rules.b]
        outputs = ["b"]
        cmd = "touch b"
        """
    )
    assert manifest.default == ["b"]
    assert manifest.default_targets() == ["b"]
    assert list(manifest.rules) == ["a", "b"]  # file order


def test_named_inputs_and_outputs():
    manifest = parse(
        """
        [rules.train]
        inputs = { data = ["a.csv", "b.csv"], config = "cfg.yaml" }
        outputs = { model = "model.pt", metrics = "m.json" }
        cmd = "train {inputs.data} --config {inputs.config} -o {outputs.model} {outputs[1]}"
        """
    )
    rule = manifest.rules["train"]
    assert rule.inputs == ["a.csv", "b.csv", "cfg.yaml"]
    assert rule.input_names == {"data": [0, 1], "config": [2]}
    assert rule.outputs == ["model.pt", "m.json"]
    assert rule.output_names == {"model": [0], "metrics": [1]}
    kinds = [(p.kind, p.index, p.attr) for p in rule.cmd_template if isinstance(p, Placeholder)]
    assert kinds == [
        ("inputs", None, "data"),
        ("inputs", None, "config"),
        ("outputs", None, "model"),
        ("outputs", 1, None),
    ]


def test_foreach_list_and_glob():
    manifest = parse(
        """
        [rules.per]
        foreach = { sample = "raw/{sample}.txt", seed = [1, 2, "x"] }
        inputs = ["raw/{sample}.txt"]
        outputs = ["out/{sample}-{seed}.txt"]
        cmd = "run {wildcards.sample} {wildcards.seed}"
        """
    )
    rule = manifest.rules["per"]
    assert rule.foreach == {"sample": "raw/{sample}.txt", "seed": ["1", "2", "x"]}
    assert rule.wildcard_names == ("sample", "seed")
    assert rule.wildcard_regex == {"sample": DEFAULT_WILDCARD_REGEX, "seed": DEFAULT_WILDCARD_REGEX}


def test_foreach_key_only_in_inputs_is_a_wildcard_too():
    manifest = parse(
        """
        [rules.agg]
        foreach = { s = ["a", "b"] }
        inputs = ["in/{s}.txt"]
        outputs = ["all.txt"]
        cmd = "cat {inputs} > {outputs}  # {wildcards.s}"
        """
    )
    rule = manifest.rules["agg"]
    assert rule.wildcard_names == ("s",)
    assert rule.wildcard_regex == {"s": DEFAULT_WILDCARD_REGEX}


def test_wildcard_constraints_keep_unnamed_groups_and_refuse_named_ones():
    manifest = parse(
        r"""
        [rules.a]
        outputs = ["out/{n}/{name}.txt"]
        cmd = "touch {outputs}"
        wildcards = { n = '(\d+)', name = '(a|b)(?:c)' }
        """
    )
    regex = manifest.rules["a"].wildcard_regex
    # Kept as written: wildcards are read back by name, so unnamed groups do no harm.
    assert regex["n"] == r"(\d+)"
    assert regex["name"] == "(a|b)(?:c)"
    error = error_of(
        """
        [rules.a]
        outputs = ["out/{n}"]
        cmd = "x"
        wildcards = { n = '(?P<x>d)' }
        """
    )
    assert "may not define named groups" in error.message


def test_wildcard_constraint_without_groups_is_kept_verbatim():
    manifest = parse(
        r"""
        [rules.a]
        outputs = ["out/{n}.txt"]
        cmd = "x"
        wildcards = { n = '\d+|x\(y\)' }
        """
    )
    assert manifest.rules["a"].wildcard_regex["n"] == r"\d+|x\(y\)"


def test_constraint_with_escaped_parens_and_classes_is_kept_intact():
    manifest = parse(
        r"""
        [rules.a]
        outputs = ["out/{n}"]
        cmd = "x"
        wildcards = { n = '(\d+)\(x\)[(]' }
        """
    )
    regex = re.compile(manifest.rules["a"].wildcard_regex["n"])
    assert regex.fullmatch("12(x)(")
    assert not regex.fullmatch("12:x):")


def test_env_values_are_stringified():
    manifest = parse(
        """
        [rules.a]
        outputs = ["o"]
        cmd = "x"
        env = { S = "text", I = 3, F = 1.5, T = true, N = false, P = "{outputs}" }
        """
    )
    rule = manifest.rules["a"]
    assert rule.env == {"S": "text", "I": "3", "F": "1.5", "T": "1", "N": "0", "P": "{outputs}"}
    assert set(rule.env_templates) == set(rule.env)
    assert [p.kind for p in rule.env_templates["P"] if isinstance(p, Placeholder)] == ["outputs"]


def test_cmd_as_list_is_joined_by_newlines():
    manifest = parse(
        """
        [rules.a]
        outputs = ["o"]
        cmd = ["mkdir -p d", "touch {outputs}"]
        """
    )
    rule = manifest.rules["a"]
    assert rule.cmd == "mkdir -p d\ntouch {outputs}"
    assert rule.cmd_template[0] == "mkdir -p d\ntouch "


def test_durations_retries_resources_cpus_description():
    manifest = parse(
        """
        [resources]
        gpu = 2
        mem_mb = 1000.5
        [rules.a]
        outputs = ["o"]
        cmd = "x --gpus {resources.gpu} -j {cpus} {rule}"
        retries = 2
        retry_delay = "500ms"
        timeout = "1h30m"
        cpus = 4
        resources = { gpu = 1 }
        description = "does a"
        """
    )
    rule = manifest.rules["a"]
    assert manifest.resources == {"gpu": 2, "mem_mb": 1000.5}
    assert rule.retries == 2
    assert rule.retry_delay == 0.5
    assert rule.timeout == 5400.0
    assert rule.cpus == 4
    assert rule.resources == {"gpu": 1}
    assert rule.description == "does a"


def test_numeric_duration_is_seconds():
    manifest = parse(
        """
        [rules.a]
        outputs = ["o"]
        cmd = "x"
        timeout = 90
        retry_delay = 0.25
        """
    )
    assert manifest.rules["a"].timeout == 90.0
    assert manifest.rules["a"].retry_delay == 0.25


def test_vars_used_and_literal_braces():
    manifest = parse(
        """
        [vars]
        lr = 0.1
        name = "m"
        unused = [1, 2]
        [rules.a]
        outputs = ["o"]
        cmd = "awk '{{print}}' {vars.lr} {vars.name}"
        env = { N = "{vars.name}" }
        """
    )
    rule = manifest.rules["a"]
    assert rule.vars_used == ("lr", "name")
    assert rule.cmd_template[0] == "awk '{print}' "
    assert manifest.vars == {"lr": 0.1, "name": "m", "unused": [1, 2]}


def test_alias_rule():
    manifest = parse(
        """
        [rules.all]
        inputs = ["a", "b"]
        description = "everything"
        [rules.a]
        outputs = ["a"]
        cmd = "touch a"
        """
    )
    alias = manifest.rules["all"]
    assert alias.is_alias
    assert alias.cmd is None and alias.cmd_template == ()


def test_quoted_rule_name_with_dots():
    manifest = parse(
        """
        [rules."v1.2-build"]
        outputs = ["o"]
        cmd = "x"
        """
    )
    assert list(manifest.rules) == ["v1.2-build"]
    assert manifest.rules["v1.2-build"].line == 2


def test_same_output_with_dot_slash_spelling_conflicts():
    error = error_of(
        """
        [rules.a]
        outputs = ["out/x"]
        cmd = "x"
        [rules.b]
        outputs = ["./out//x"]
        cmd = "x"
        """
    )
    assert "output './out//x' is also produced by rule 'a'" in error.message
    assert (error.rule, error.key, error.line) == ("b", "outputs", 6)


def test_digest_depends_on_bytes():
    text = '[rules.a]\noutputs = ["o"]\ncmd = "x"\n'
    assert parse_manifest(text).digest == parse_manifest(text).digest
    assert parse_manifest(text).digest != parse_manifest(text + "# comment\n").digest


def test_wildcard_names_in():
    assert wildcard_names_in("a/{x}/{{lit}}/{y}-{x}") == ["x", "y", "x"]


# -- load_manifest / find_manifest -------------------------------------------------------------


def test_load_and_find_manifest(tmp_path):
    assert find_manifest(str(tmp_path)) is None
    (tmp_path / "weave.toml").write_text('[rules.a]\noutputs = ["o"]\ncmd = "x"\n')
    assert find_manifest(str(tmp_path)) == str(tmp_path / "weave.toml")
    (tmp_path / "Weavefile").write_text('[rules.b]\noutputs = ["o"]\ncmd = "x"\n')
    found = find_manifest(str(tmp_path))
    assert found == str(tmp_path / "Weavefile")
    manifest = load_manifest(found)
    assert list(manifest.rules) == ["b"]
    assert manifest.root == str(tmp_path)
    assert manifest.path == found


def test_load_missing_file(tmp_path):
    with pytest.raises(ManifestError) as info:
        load_manifest(str(tmp_path / "Weavefile"))
    assert info.value.message.endswith("Weavefile: file not found")
    assert info.value.path == str(tmp_path / "Weavefile")


def test_load_invalid_utf8_reports_line(tmp_path):
    path = tmp_path / "Weavefile"
    path.write_bytes(b'[rules.a]\noutputs = ["o"]\ncmd = "\xff"\n')
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    assert "not valid UTF-8 text" in info.value.message
    assert info.value.line == 3


# -- parse_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("90s", 90.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        ("1.5s", 1.5),
        ("1.5", 1.5),
        (" 2 m ", 120.0),
        ("2M", 120.0),
        ("0s", 0.0),
        # Spelled out, as people write them.
        ("1min", 60.0),
        ("2 mins", 120.0),
        ("1 hour 30 minutes", 5400.0),
        ("10sec", 10.0),
        ("5 seconds", 5.0),
        ("3 days", 259200.0),
        ("2hrs", 7200.0),
        ("250msec", 0.25),
        ("1m30s", 90.0),
        (5, 5.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration_good(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("5x", "is not a duration"),
        ("m5", "is not a duration"),
        ("1h 30", "is not a duration"),
        ("1s2", "is not a duration"),
        ("-5", "cannot be negative"),
        ("5 s s", "is not a duration"),
        ("1mi", "is not a duration"),
        ("1 minx", "is not a duration"),
        ("2 weeks", "is not a duration"),
        (True, "expected a duration"),
        (-1, "cannot be negative"),
        (-0.5, "cannot be negative"),
        ([1], "expected a duration"),
        (None, "expected a duration"),
        # a retry delay of 1e300 s printed a 300-digit wait and slept forever
        (1e300, "at most 3,650 days"),
        ("99999999999999d", "at most 3,650 days"),
        ("400000000", "at most 3,650 days"),
        (3651 * 86400, "at most 3,650 days"),
    ],
)
def test_parse_duration_bad(value, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


def test_parse_duration_rejects_nan():
    with pytest.raises(ValueError):
        parse_duration("nan")


# -- ManifestError paths -----------------------------------------------------------------------


def test_error_is_a_usage_error_with_location_in_message():
    error = error_of(
        """
        [rules.a]
        outputs = ["o"]
        cmd = "x"
        cpus = 0
        """,
        path="proj/Weavefile",
    )
    assert isinstance(error, UsageError)
    assert error.exit_code == 2
    assert (
        error.message == "proj/Weavefile:5: rule 'a', key 'cpus': must be a positive integer, got 0"
    )
    assert (error.path, error.line, error.rule, error.key) == ("proj/Weavefile", 5, "a", "cpus")


def test_invalid_toml_has_line_and_column():
    error = error_of("[rules.a\n")
    assert error.message.startswith("Weavefile:1:9: invalid TOML: ")
    assert (error.line, error.col) == (1, 9)


def test_invalid_toml_later_line():
    error = error_of(
        """
        [rules.a]
        outputs = ["o"]
        cmd = "x
        """
    )
    assert "invalid TOML" in error.message
    assert error.line == 4


@pytest.mark.parametrize(
    "text, line, key, fragment, hint",
    [
        ("defualt = 3\n", 1, "defualt", "unknown top-level key", "did you mean 'default'?"),
        ("zzz = 3\n", 1, "zzz", "unknown top-level key", "valid top-level keys: default,"),
        ("default = 3\n", 1, "default", "must be a list of strings, got an integer", None),
        ("default = [1]\n", 1, "default", "must be a list of strings; it holds an integer, 1", None),
        ("vars = 3\n", 1, "vars", "must be a table, got an integer", None),
        ('[vars]\n"a-b" = 1\n', 2, "a-b", "variable name 'a-b' must be an identifier", None),  # at its own line
        ("resources = 3\n", 1, "resources", "must be a table such as { gpu = 1 }, got an", None),
        (  # an amount's mistake is at its own line
            '[resources]\n"g-p" = 1\n',
            2,
            "resources",
            "resource name 'g-p' must be an identifier",
            None,
        ),
        (
            "[resources]\ngpu = -1\n",
            2,
            "resources",
            "resource 'gpu' must be a non-negative number, got -1",
            None,
        ),
        ("[resources]\ngpu = true\n", 2, "resources", "got true", None),
        ('[resources]\ngpu = "2"\n', 2, "resources", "got \"2\"", None),
        ('[vars]\nx = 1\n\n[resources]\nmem = 1\ngpu = -1\n', 6, "resources", "got -1", None),
        ("rules = 3\n", 1, "rules", "must be a table of rules, got an integer", None),
    ],
)
def test_top_level_errors(text, line, key, fragment, hint):
    valid_rule = '\n[rules.ok]\noutputs = ["o"]\ncmd = "x"\n'
    with pytest.raises(ManifestError) as info:
        parse_manifest(text if key == "rules" else text + valid_rule)
    error = info.value
    assert fragment in error.message
    assert error.message.startswith(f"Weavefile:{line}: key '{key}': ")
    assert (error.line, error.rule, error.key) == (line, None, key)
    if hint is not None:
        assert hint in (error.hint or "")


def test_no_rules_defined():
    error = error_of("vars = { a = 1 }\n")
    assert error.message == "Weavefile: no rules defined"
    assert error.line is None and error.rule is None and error.key is None
    assert "[rules.hello]" in error.hint


def test_bad_variable_in_vars_table_has_line():
    error = error_of(
        """
        [vars]
        ok = 1
        x = { a = { b = 1 } }
        [rules.a]
        outputs = ["o"]
        cmd = "x"
        """
    )
    assert error.key == "x"
    assert error.line == 4


# (rule body, key, line of the key, fragment of the message, fragment of the hint or None)
RULE_ERRORS = [
    ('cmd = "x"\ninptus = []', "inptus", 3, "unknown key", "did you mean 'inputs'?"),
    ('cmd = "x"\nzork = 1', "zork", 3, "unknown key", "valid keys: inputs, outputs"),
    ("cmd = 3", "cmd", 2, "must be a string (or a list of strings), got an integer", None),
    ("cmd = [1, 2]", "cmd", 2, "must be a string or a list of strings; the list holds an integer, 1", None),
    ('cmd = "  "', "cmd", 2, "is empty", None),
    ('outputs = ["o"]', "outputs", 2, "has outputs but no cmd", "remove outputs"),
    (
        'inputs = ["i"]\ncpus = 2',
        "cpus",
        3,
        "an alias rule (no cmd) takes only inputs (and foreach); 'cpus'",
        None,
    ),
    ('inputs = [1]\ncmd = "x"', "inputs", 2, "must be a list of path strings", None),
    ('inputs = 3\ncmd = "x"', "inputs", 2, "must be a path, a list of paths or a table of named paths, got an integer", None),
    ('inputs = { "a-b" = "x" }\ncmd = "x"', "inputs", 2, "name 'a-b' must be an identifier", None),
    (
        'inputs = { a = 1 }\ncmd = "x"',
        "inputs",
        2,
        "'a' must be a path string or a list of them",
        None,
    ),
    ('inputs = [" "]\ncmd = "x"', "inputs", 2, "contains an empty path", None),
    ('inputs = ["a\\u0000b"]\ncmd = "x"', "inputs", 2, "contains a NUL character", None),
    ('outputs = ["o{"]\ncmd = "x"', "outputs", 2, "unbalanced brace in 'o{'", "{{ and }}"),
    ('outputs = ["o}"]\ncmd = "x"', "outputs", 2, "unbalanced brace in 'o}'", None),
    ('outputs = ["o"]\ncmd = "x"\nenv = { A = "{x" }', "env", 4, "unbalanced brace in '{x'", None),  # not "in command"
    ('outputs = ["o/{a_{b}}"]\ncmd = "x"', "outputs", 2, "'{a_{b}}' in 'o/{a_{b}}': a placeholder cannot hold another", None),
    (
        'outputs = ["o{}"]\ncmd = "x"',
        "outputs",
        2,
        "'{}' in 'o{}' is not a valid wildcard name",
        None,
    ),
    ('outputs = ["o{a-b}"]\ncmd = "x"', "outputs", 2, "'{a-b}' in 'o{a-b}' is not a valid", None),
    ('outputs = ["/abs"]\ncmd = "x"', "outputs", 2, "output '/abs' is outside the project", None),
    ('outputs = ["../up"]\ncmd = "x"', "outputs", 2, "output '../up' is outside the project", None),
    ('outputs = ["a/../../up"]\ncmd = "x"', "outputs", 2, "is outside the project", None),
    (
        'outputs = ["o/*.txt"]\ncmd = "x"',
        "outputs",
        2,
        "output 'o/*.txt' contains a glob char",
        None,
    ),
    ('outputs = ["o/{x}", "p"]\ncmd = "x"', "outputs", 2, "output 'p' lacks wildcard '{x}'", None),
    (
        'inputs = ["i/{y}"]\noutputs = ["o"]\ncmd = "x"',
        "inputs",
        2,
        "input 'i/{y}' uses wildcard '{y}'",
        None,
    ),
    ('outputs = ["o"]\ncmd = "x"\nforeach = 3', "foreach", 4, "must be a table such as", None),
    (
        'outputs = ["o"]\ncmd = "x"\nforeach = { "a-b" = [1] }',
        "foreach",
        4,
        "'a-b' is not a valid wildcard name",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nforeach = { s = "raw/*.txt" }',
        "foreach",
        4,
        "pattern 'raw/*.txt' for 's' must contain {s}",
        "e.g. foreach",
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nforeach = { s = "src/*/{s}.txt" }',
        "foreach",
        4,
        "pattern 'src/*/{s}.txt' for 's' holds the glob character '*': a foreach pattern matches its {wildcards} only",
        "put a wildcard where the glob is",
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nforeach = { s = "{t}/{s}" }',
        "foreach",
        4,
        "pattern '{t}/{s}' uses unknown wildcard 't'",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nforeach = { s = "raw/{s" }',
        "foreach",
        4,
        "unbalanced brace in 'raw/{s'",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nforeach = { s = ["a", ""] }',
        "foreach",
        4,
        "foreach value '' for 's' is empty",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nforeach = { s = [true] }',
        "foreach",
        4,
        "'s' must be a pattern string (such as \"data/{s}.csv\") or a list",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nforeach = { s = 3 }',
        "foreach",
        4,
        "'s' must be a pattern string (such as \"data/{s}.csv\") or a list",
        None,
    ),
    (  # a listed value the rule's own constraint refuses
        'outputs = ["o/{x}"]\nforeach = { x = ["a", "1"] }\nwildcards = { x = "[a-z]+" }\ncmd = "x"',
        "foreach",
        3,
        "value '1' for 'x' does not match its constraint '[a-z]+'",
        "widen the constraint",
    ),
    (
        'outputs = { a = "o", b = "./o" }\ncmd = "x"',
        "outputs",
        2,
        "output './o' is listed twice (also as 'o')",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nwildcards = 3',
        "wildcards",
        4,
        "must be a table of regular expressions",
        None,
    ),
    (
        'outputs = ["o/{n}"]\ncmd = "x"\nwildcards = { n = 3 }',
        "wildcards",
        4,
        "constraint for 'n' must be a regex string",
        None,
    ),
    (
        'outputs = ["o/{name}"]\ncmd = "x"\nwildcards = { nme = "a" }',
        "wildcards",
        4,
        "'nme' is not a wildcard of this rule",
        "did you mean 'name'?",
    ),
    (
        'outputs = ["o/{n}"]\ncmd = "x"\nwildcards = { n = "(" }',
        "wildcards",
        4,
        "invalid regex for 'n': ",
        None,
    ),
    (  # too large for Python's regex compiler: was an internal error (OverflowError)
        'outputs = ["o/{n}"]\ncmd = "x"\nwildcards = { n = "a{4294967296}" }',
        "wildcards",
        4,
        "invalid regex for 'n': the repetition number is too large",
        None,
    ),
    (  # nested past the compiler's recursion: was an internal error (RecursionError)
        'outputs = ["o/{n}"]\ncmd = "x"\nwildcards = { n = "' + "(?:" * 1000 + "a" + ")" * 1000 + '" }',
        "wildcards",
        4,
        "invalid regex for 'n': nested too deeply",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nresources = 1',
        "resources",
        4,
        "must be a table such as { gpu = 1 }",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nresources = { gpu = -2 }',
        "resources",
        4,
        "resource 'gpu' must be a non-negative number",
        None,
    ),
    ('outputs = ["o"]\ncmd = "x"\ncpus = 0', "cpus", 4, "must be a positive integer, got 0", None),
    (
        'outputs = ["o"]\ncmd = "x"\ncpus = true',
        "cpus",
        4,
        "must be a positive integer, got true",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\ncpus = 1.5',
        "cpus",
        4,
        "must be a positive integer, got 1.5",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nenv = 3',
        "env",
        4,
        "must be a table of environment variables",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nenv = { A = [1] }',
        "env",
        4,
        "value of 'A' must be a string or number",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nretries = -1',
        "retries",
        4,
        "must be a non-negative integer, got -1",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nretries = false',
        "retries",
        4,
        "must be a non-negative integer, got false",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\nretry_delay = "soon"',
        "retry_delay",
        4,
        "'soon' is not a duration",
        None,
    ),
    (
        'outputs = ["o"]\ncmd = "x"\ntimeout = -3',
        "timeout",
        4,
        "a duration cannot be negative",
        None,
    ),
    ('outputs = ["o"]\ncmd = "x"\ndescription = 3', "description", 4, "must be a string", None),
]


@pytest.mark.parametrize(
    "body, key, line, fragment, hint",
    RULE_ERRORS,
    ids=[f"{e[1]}-{i}" for i, e in enumerate(RULE_ERRORS)],
)
def test_rule_errors(body, key, line, fragment, hint):
    text = "[rules.r]\n" + body + "\n"
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    error = info.value
    assert fragment in error.message
    assert error.message.startswith(f"Weavefile:{line}: rule 'r', key '{key}': ")
    assert (error.line, error.rule, error.key) == (line, "r", key)
    if hint is not None:
        assert hint in (error.hint or "")


def test_invalid_rule_name():
    error = error_of(
        """
        [rules."a b"]
        cmd = "x"
        """
    )
    assert "rule names may contain only ASCII letters, digits" in error.message
    assert (error.rule, error.key, error.line) == ("a b", None, 2)


def test_rule_body_not_a_table():
    error = error_of(
        """
        [rules]
        a = 3
        """
    )
    assert error.message == "Weavefile:3: rule 'a': must be a table, got an integer"
    assert (error.rule, error.key, error.line) == ("a", None, 3)


def test_duplicate_static_output():
    error = error_of(
        """
        [rules.b]
        outputs = ["o"]
        cmd = "x"
        [rules.a]
        outputs = ["o"]
        cmd = "x"
        """
    )
    assert "output 'o' is also produced by rule 'b'" in error.message
    assert (error.rule, error.key, error.line) == ("a", "outputs", 6)
    assert error.hint == "each file must be made by exactly one rule"


def test_directory_output_and_file_output_of_the_same_path_conflict():
    error = error_of(
        """
        [rules.a]
        outputs = ["gen/"]
        cmd = "x"
        [rules.b]
        outputs = ["gen"]
        cmd = "x"
        """
    )
    assert "output 'gen' is also produced by rule 'a'" in error.message


def test_pattern_outputs_are_not_checked_for_duplicates_at_load_time():
    parse(
        """
        [rules.a]
        outputs = ["o/{x}.txt"]
        cmd = "x"
        [rules.b]
        outputs = ["o/{y}.txt"]
        cmd = "x"
        """
    )


# -- placeholders ------------------------------------------------------------------------------

# (cmd, fragment of the message, fragment of the hint or None); the rule has two inputs,
# one output named `model`, wildcard `s`, resource `gpu` and var `lr`.
PLACEHOLDER_ERRORS = [
    ("{foo}", "unknown placeholder '{foo}'", "valid: {inputs} {outputs}"),
    ("{input}", "unknown placeholder '{input}'", "did you mean 'inputs'?"),
    ("{s}", "unknown placeholder '{s}'", "write {wildcards.s}"),
    ("{inputs[2]}", "'{inputs[2]}' is out of range: the rule has 2 inputs", None),
    ("{inputs[-3]}", "'{inputs[-3]}' is out of range", None),
    ("{outputs[1]}", "'{outputs[1]}' is out of range: the rule has 1 outputs", None),
    ("{outputs.modl}", "'{outputs.modl}': no output named 'modl'", "did you mean 'model'?"),
    ("{inputs.data}", "'{inputs.data}': no input named 'data'", "name inputs with a table"),
    ("{wildcards}", "'{wildcards}' needs a name: {wildcards.NAME}", None),
    ("{wildcards.t}", "unknown placeholder '{wildcards.t}': no wildcard 't' in this rule", None),
    ("{vars.l}", "unknown placeholder '{vars.l}': no var 'l' in [vars]", None),
    ("{resources.mem}", "no resource 'mem' in this rule", None),
    ("{rule[0]}", "'{rule}' takes no index or name", None),
    ("{cpus.x}", "'{cpus}' takes no index or name", None),
    ("{inputs[x]}", "unknown placeholder '{inputs[x]}'", None),
    ("{inputs[1:2:3]}", "unknown placeholder '{inputs[1:2:3]}'", "{inputs[1:]}"),
    ("{rule[1:]}", "'{rule}' takes no index or name", None),
    ("{log}", "'{log}': this rule has no log", "log ="),
    ("echo }", "unbalanced brace in command", "write {{ and }}"),
    ("echo {", "unbalanced brace in command", None),
    ("echo {vars.l_{wildcards.s}}", "'{vars.l_{wildcards.s}}': a placeholder cannot hold another", "one rule per value"),
    # The shell's, awk's or JSON's braces around a placeholder: their fix is {{ }}.
    ("{ cat {inputs}; echo done; } > {outputs}", "unbalanced brace in command", "write {{ and }}"),
    ('echo {"rule": "{rule}"} > {outputs}', "unbalanced brace in command", "write {{ and }}"),
]


@pytest.mark.parametrize("cmd, fragment, hint", PLACEHOLDER_ERRORS)
def test_placeholder_errors(cmd, fragment, hint):
    text = (
        "[vars]\nlr = 1\n"
        "[rules.r]\n"
        'inputs = ["a/{s}", "b"]\n'
        'outputs = { model = "m/{s}" }\n'
        "resources = { gpu = 1 }\n"
        f"cmd = '{cmd}'\n"
    )
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    error = info.value
    assert fragment in error.message
    assert (error.rule, error.key, error.line) == ("r", "cmd", 7)
    if hint is not None:
        assert hint in (error.hint or "")


def test_a_placeholder_valid_in_one_rule_is_still_checked_in_the_next():
    """Placeholders are parsed once per distinct text, but checked against each rule."""
    text = (
        "[rules.two]\n"
        'inputs = ["a", "b"]\n'
        'outputs = ["two.txt"]\n'
        "cmd = 'cat {inputs[1]} > {outputs}'\n"
        "[rules.one]\n"
        'inputs = ["a"]\n'
        'outputs = ["one.txt"]\n'
        "cmd = 'cat {inputs[1]} > {outputs}'\n"
    )
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    error = info.value
    assert "'{inputs[1]}' is out of range: the rule has 1 inputs" in error.message
    assert (error.rule, error.key, error.line) == ("one", "cmd", 8)


def test_placeholder_error_in_env_points_at_env():
    error = error_of(
        """
        [rules.r]
        outputs = ["o"]
        cmd = "x"
        env = { A = "{nope}" }
        """
    )
    assert (error.key, error.line) == ("env", 5)
    assert "unknown placeholder '{nope}'" in error.message


def test_valid_placeholders():
    manifest = parse(
        """
        [vars]
        lr = 1
        [rules.r]
        foreach = { k = ["1", "2"] }
        inputs = { a = "a/{s}-{k}", b = "b" }
        outputs = { model = "m/{s}" }
        resources = { gpu = 1 }
        cmd = "CMD"
        """.replace(
            "CMD",
            "{inputs} {inputs[5]} {inputs[-1]} {inputs.a} {outputs[0]} {outputs[-1]} "
            "{outputs.model} {wildcards.s} {wildcards.k} {vars.lr} {resources.gpu} {rule} "
            "{cpus} { inputs }",
        )
    )
    kinds = [p.kind for p in manifest.rules["r"].cmd_template if isinstance(p, Placeholder)]
    assert kinds.count("inputs") == 5
    assert {"outputs", "wildcards", "vars", "resources", "rule", "cpus"} <= set(kinds)


def test_glob_inputs_allow_any_index():
    # A glob expands to an unknown number of paths, so indexes are checked only when rendering.
    parse(
        """
        [rules.r]
        inputs = ["src/*.c"]
        outputs = ["o"]
        cmd = "cc {inputs[3]} -o {outputs}"
        """
    )


# -- _Locator ----------------------------------------------------------------------------------

LOCATOR_TEXT = """\
default = ["a"]
[vars]
lr = 1

[rules.a]
inputs = ["x"]
outputs = ["a"]
cmd = "x"

[ rules . "b.c" ]
"outputs" = ["bc"]
cmd = "y"
cpus = 2

[rules.'d']
env.X = "1"
cmd = "z"
"""


def test_locator_rule_headers():
    locator = _Locator(LOCATOR_TEXT)
    assert locator.find("a") == 5
    assert locator.find("b.c") == 10
    assert locator.find("d") == 15
    assert locator.find("missing") is None
    assert locator.find(None) is None


def test_locator_keys_inside_rules():
    locator = _Locator(LOCATOR_TEXT)
    assert locator.find("a", "cmd") == 8
    assert locator.find("b.c", "cmd") == 12  # not rule a's cmd on line 8
    assert locator.find("d", "cmd") == 17
    assert locator.find("b.c", "outputs") == 11  # quoted key
    assert locator.find("d", "env") == 16  # dotted key
    # A key the rule lacks: the rule's header, not the key of a later rule.
    assert locator.find("a", "cpus") == 5
    # A key of a rule that is not found: no line.
    assert locator.find("zz", "cmd") is None


def test_locator_top_level_keys():
    locator = _Locator(LOCATOR_TEXT)
    assert locator.find(None, "default") == 1
    assert locator.find(None, "vars") == 2
    assert locator.find(None, "rules") is None


def test_error_line_of_later_rule_not_confused_with_earlier():
    error = error_of(
        """
        [rules.first]
        outputs = ["1"]
        cmd = "x"
        cpus = 1
        [rules.second]
        outputs = ["2"]
        cmd = "x"
        cpus = 0
        """
    )
    assert (error.rule, error.line) == ("second", 9)


def test_error_line_with_quoted_rule_name():
    error = error_of(
        """
        [rules.a]
        outputs = ["1"]
        cmd = "x"
        [rules."b.2"]
        outputs = ["2"]
        cmd = "x"
        retries = -1
        """
    )
    assert (error.rule, error.key, error.line) == ("b.2", "retries", 8)


def test_error_line_of_rule_with_same_prefix():
    error = error_of(
        """
        [rules.ab]
        outputs = ["1"]
        cmd = "x"
        timeout = "1s"
        [rules.a]
        outputs = ["2"]
        cmd = "x"
        timeout = "bad"
        """
    )
    assert (error.rule, error.line) == ("a", 9)


def test_locator_is_single_pass_for_many_rules():
    text = "".join(f'[rules.r{i}]\noutputs = ["o{i}"]\ncmd = "x"\n' for i in range(3000))
    locator = _Locator(text)
    assert locator.find("r2999") == 2999 * 3 + 1
    assert locator.find("r1500", "cmd") == 1500 * 3 + 3


def test_foreach_takes_numbers_as_vars_insert_them():
    manifest = parse(
        """
        [vars]
        lrs = [0.1, 0.001, 1.0]
        [rules.sweep]
        outputs = ["runs/lr_{lr}.txt"]
        foreach = { lr = "{vars.lrs}" }
        cmd = "train --lr {wildcards.lr} > {outputs}"
        [rules.seeds]
        outputs = ["runs/seed_{seed}.txt"]
        foreach = { seed = [1, 2.5, "x"] }
        cmd = "touch {outputs}"
        """
    )
    assert manifest.rules["sweep"].foreach == {"lr": ["0.1", "0.001", "1"]}
    assert manifest.rules["seeds"].foreach == {"seed": ["1", "2.5", "x"]}
    with pytest.raises(ManifestError, match=r"list of values \(strings or numbers\); the list holds a boolean, true"):
        parse('[rules.a]\noutputs = ["o_{x}"]\nforeach = { x = [1, true] }\ncmd = "touch {outputs}"\n')


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        # U+2028 is a line break to splitlines(), not to TOML
        ('# pasted \u2028 text\n[rules.a]\noutputs = ["o"]\ncmd = "touch {nope}"\n', 4, "key 'cmd'"),
        # lines of a multi-line command are neither table headers nor keys
        ('[rules.a]\ncmd = """\n[ -f x ] || true\noutputs=$(ls)\n"""\noutputs = ["o*"]\n', 6, "key 'outputs'"),
        ("[rules.a]\noutputs = [\"o\"]\n'cmd' = \"touch {nope}\"\n", 3, "key 'cmd'"),  # a literal-quoted key
        ('vars.x = [[1]]\n[rules.a]\noutputs = ["o"]\ncmd = "touch o"\n', 1, "variable 'x'"),  # dotted at the top
        ('[rules.""]\noutputs = ["o"]\ncmd = "touch o"\n', 1, "rule names may contain only"),
        ('# x\n[rules."x\\u00e9"]\noutputs = ["o"]\ncmd = "touch o"\n', 2, "rule 'x\u00e9': rule names"),
        ('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n\n[[rules.x]]\noutputs = ["b"]\n', 5, "rule 'x': must be a table"),
    ],
)
def test_error_lines_where_the_text_is_unusual(text, line, fragment):
    error = error_of(text)
    assert error.line == line and fragment in error.message, error.message


@pytest.mark.parametrize(
    "text, message",
    [
        ('default = []\n[rules.a]\noutputs = ["a"]\ncmd = "x"\n', "key 'default': names no target"),
        ('[rules.a]\noutputs = ["a"]\ncmd = "x"\nenv = { A = nan }\n', "value of 'A' is nan: nan and inf cannot be put in an environment"),
        ('[rules.a]\noutputs = ["a"]\ncmd = "x"\nenv = { A = -inf }\n', "value of 'A' is -inf"),
        ('[rules.a]\ninputs = ["i", "j"]\noutputs = ["a"]\ncmd = "cat {inputs[\u0661]}"\n', "unknown placeholder '{inputs[\u0661]}'"),
    ],
)
def test_values_once_accepted_silently_are_errors(text, message):
    """An empty `default` built the first rule; nan/inf reached a job's environment as text;
    an index in another script's digits ('١') was taken as a number."""
    with pytest.raises(ManifestError, match=re.escape(message)):
        parse(text)


@pytest.mark.parametrize(
    "text, line, key",
    [
        # a triple quote in a comment, or in a one-line string, opens no multi-line string
        ('# quotes: """\n[rules.b]\noutputs = 5\ncmd = "x"\n', 3, "outputs"),
        ("[rules.a]\noutputs = [\"a\"]\ncmd = 'echo \"\"\"'\nretries = -1\n", 4, "retries"),
        # a key inside a multi-line inline table is not the rule's key
        ('[rules.a]\noutputs = ["a"]\nenv = {\n  retries = "1",\n}\nretries = -1\ncmd = "x"\n', 6, "retries"),
        # the rule's own header, not a sub-table of it written before
        ('[rules.a.env]\nX = "1"\n\n[rules.a]\noutputs = ["a"]\ncmd = "x"\nretries = -1\n', 7, "retries"),
        ('[vars]\nok = 1\n\n\n"a-b" = 2\n', 5, "a-b"),
        # a rule written as a multi-line inline table: its keys are one bracket deep
        ('[rules]\na = {\n  outputs = ["o"],\n  cmd = "touch o",\n  retries = -1,\n}\n', 5, "retries"),
        # a line opening a table whose closing brackets stand in a comment or a string
        ('[rules.a]\noutputs = ["o"]\ncmd = "x"\nresources = {   # e.g. {gpu = 1}\n  cpus = 2,\n}\ncpus = 0\n', 7, "cpus"),
        ('[rules.a]\noutputs = ["o"]\ncmd = "x"\nenv = { X = "]]",\n retries = "1",\n}\nretries = -1\n', 7, "retries"),
    ],
)
def test_error_lines_in_awkward_layouts(text, line, key):
    """Found by the malformed-input fuzzer: each of these named the wrong line, or none."""
    error = error_of(text)
    assert (error.line, error.key) == (line, key), (error.line, error.key, error.message)


def test_a_rule_name_with_a_bracket_is_refused_at_its_line():
    error = error_of('[rules.ok]\noutputs = ["o"]\ncmd = "x"\n[rules."a]b"]\noutputs = ["a"]\ncmd = "x"\n')
    assert error.line == 4 and "rule names may contain only ASCII letters" in error.message

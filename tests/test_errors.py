"""Every user mistake is a short message on stderr with exit code 2 and no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import List

import pytest

from conftest import assert_user_error


def test_toml_syntax_error_has_line_and_column(project):
    project.weavefile('[rules.a]\noutputs = ["a"\ncmd = "x"\n')
    assert_user_error(project.run("build"), "Weavefile:3:", "invalid TOML")


def test_toml_error_at_end_of_file_still_has_a_line(project):
    project.weavefile('[rules.a]\ncmd = "touch a"\noutputs = ["a"\n')
    assert_user_error(project.run("build"), "Weavefile:3:", "Unclosed array before the end of the file")


def test_array_of_rule_tables_is_explained(project):
    project.weavefile('# pipeline\n[[rules]]\nname = "a"\ncmd = "touch a"\n')
    assert_user_error(project.run("build"), "Weavefile:2:", "must be a table of rules, got a list", "[rules.NAME]")


def test_unknown_rule_key_suggests(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncommand = "touch a"\n')
    result = project.run("build")
    assert_user_error(result, "Weavefile:3", "rule 'a', key 'command'", "unknown key", "did you mean 'cmd'")


def test_unknown_top_level_key(project):
    project.weavefile('defaults = ["a"]\n[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    assert_user_error(project.run("build"), "Weavefile:1", "defaults", "did you mean 'default'")


@pytest.mark.parametrize(
    "text, where",
    [
        ('[vars]\nx = 1\ndefault = ["b"]\n', "Weavefile:3"),  # became a var: rule a was built instead
        ('[vars]\nx = 1\ninclude = ["more.toml"]\n', "Weavefile:3"),  # became a var: dropped
        ('[resources]\ngpu = 1\ndefault = ["b"]\n', "Weavefile:3"),
        ('[rules.c]\ncmd = "true"\ndefault = ["b"]\n', "Weavefile:3"),
        ('[rules]\ndefault = ["b"]\n', "Weavefile:2"),
    ],
)
def test_a_top_level_key_written_below_a_table_says_where_it_landed(project, text, where):
    rules = '[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n[rules.b]\noutputs = ["b"]\ncmd = "touch b"\n'
    project.weavefile(text + rules)
    for command in ("build", "plan", "list"):
        assert_user_error(
            project.run(command), where, "is a top-level key", "TOML puts every key under the [table] header above it",
            "move it above the first [table]",
        )
    assert not project.exists("a") and not project.exists("b")


def test_wrong_type(project):
    project.weavefile('[rules.a]\noutputs = "a"\ncmd = "touch a"\ncpus = "two"\n')
    assert_user_error(project.run("build"), "Weavefile:4", "key 'cpus'", "positive integer")


def test_unknown_placeholder(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch {output}"\n')
    assert_user_error(project.run("build"), "Weavefile:3", "unknown placeholder '{output}'", "did you mean 'outputs'")


def test_unknown_var(project):
    project.weavefile('[vars]\nepochs = 1\n[rules.a]\noutputs = ["a"]\ncmd = "echo {vars.epoch} > a"\n')
    assert_user_error(project.run("build"), "{vars.epoch}", "did you mean 'epochs'")


def test_cycle_prints_path(project):
    project.weavefile(
        """
        [rules.a]
        inputs = ["c.txt"]
        outputs = ["a.txt"]
        cmd = "cp c.txt a.txt"
        [rules.b]
        inputs = ["a.txt"]
        outputs = ["b.txt"]
        cmd = "cp a.txt b.txt"
        [rules.c]
        inputs = ["b.txt"]
        outputs = ["c.txt"]
        cmd = "cp b.txt c.txt"
        """
    )
    assert_user_error(
        project.run("build", "c.txt"),
        "dependency cycle",
        "c c.txt -> b b.txt -> a a.txt -> c c.txt",
        # where each rule on it is written (its inputs' line), to find them in a long file
        "the rules on it: 'c' (./Weavefile:11), 'b' (./Weavefile:7), 'a' (./Weavefile:3)",
    )


def test_two_rules_one_output(project):
    project.weavefile('[rules.a]\noutputs = ["x"]\ncmd = "touch x"\n[rules.b]\noutputs = ["x"]\ncmd = "touch x"\n')
    assert_user_error(project.run("build"), "rule 'b'", "also produced by rule 'a'")


def test_unknown_target(project):
    project.weavefile('[rules.merge]\noutputs = ["merged.txt"]\ncmd = "touch merged.txt"\n')
    assert_user_error(project.run("build", "merged.tx"), "no rule makes 'merged.tx'", "did you mean 'merged.txt'")


def test_missing_source_names_rule(project):
    project.weavefile('[rules.train]\ninputs = ["data/train.csv"]\noutputs = ["m"]\ncmd = "touch m"\n')
    assert_user_error(project.run("build"), "missing source 'data/train.csv' needed by rule 'train'")


def test_a_missing_source_that_is_a_broken_symlink_or_a_loop_says_so(project):
    """The hint says where the link points (it used to suggest the link's own name as the
    close path: "did you mean 'br'?")."""
    project.weavefile('[rules.a]\ninputs = ["br"]\noutputs = ["x"]\ncmd = "touch x"\n')
    os.symlink("nowhere", project.root / "br")
    result = project.run("build")
    assert_user_error(result, "missing source 'br' needed by rule 'a'", "'br' is a broken symlink (to 'nowhere'")
    assert "did you mean" not in result.err
    os.symlink("l2", project.root / "l1")
    os.symlink("l1", project.root / "l2")
    project.weavefile('[rules.a]\ninputs = ["l1"]\noutputs = ["x"]\ncmd = "touch x"\n')
    result = project.run("build")
    assert_user_error(result, "missing source 'l1'", "'l1' is a symlink in a loop of symlinks (to 'l2')")
    assert "did you mean" not in result.err


def test_a_loop_through_pattern_rules_is_a_cycle_not_a_missing_source(project):
    """Rule `a` makes q.txt from q.in, rule `b` q.in from q.txt: a cycle, said as one. It was
    reported as "missing source 'q.txt'", because a pattern rule already in the chain is not
    used again (as in make). A path only the chain's own rule could make, for another job of
    it, is a missing source (`{file}` from `{file}.gz` matches any name)."""
    project.weavefile(
        """
        [rules.a]
        outputs = ["{n}.txt"]
        inputs = ["{n}.in"]
        cmd = "touch {outputs}"
        [rules.b]
        outputs = ["{n}.in"]
        inputs = ["{n}.txt"]
        cmd = "touch {outputs}"
        """
    )
    result = project.run("build", "q.txt")
    assert_user_error(result, "dependency cycle: a q.txt -> b q.in -> a q.txt")
    assert "missing source" not in result.err
    project.weavefile('[rules.a]\noutputs = ["{n}.o"]\ninputs = ["{n}"]\ncmd = "touch {outputs}"\n')
    assert_user_error(project.run("build", "x.o.o"), "missing source 'x.o' needed by rule 'a'")


def test_a_glob_matching_a_leftover_output_whose_source_is_gone_says_so(project):
    """A sample removed from chunks/ leaves counts/b.txt behind; the glob of `total` matches
    it, so its maker is needed and its source is missing. The error says that the glob
    brought it in and that the file may be left over (it said only 'create the file')."""
    project.weavefile(
        """
        default = ["counts", "total.txt"]
        [rules.counts]
        inputs = ["counts/{c}.txt"]
        foreach = { c = "chunks/{c}" }
        [rules.count]
        inputs = ["chunks/{c}"]
        outputs = ["counts/{c}.txt"]
        cmd = "wc -c < {inputs} > {outputs}"
        [rules.total]
        inputs = ["counts/*.txt"]
        outputs = ["total.txt"]
        cmd = "cat {inputs} > {outputs}"
        """
    )
    project.write("chunks/a", "a\n")
    project.write("chunks/b", "bb\n")
    assert project.run("build").rc == 0
    os.unlink(project.root / "chunks/b")
    assert_user_error(
        project.run("build"),
        "missing source 'chunks/b' needed by rule 'count' (job count[c=b])",
        "the glob 'counts/*.txt' of rule 'total' matches counts/b.txt, which exists: if it is left over",
    )
    os.unlink(project.root / "counts/b.txt")  # as the hint says
    assert project.run("build").rc == 0


def test_a_mistyped_input_names_the_line_and_the_close_path(project):
    """A typo in an input path: the message points at the rule's inputs line, and the hint
    names the file beside it (or the rule output) that it is close to; an alias's item too."""
    project.weavefile(
        """
        default = ["all"]
        [rules.map]
        inputs  = { genome = "data/genom.fa", reads = "reads/{sample}.fq" }
        outputs = ["mapped/{sample}.bam"]
        cmd     = "cat {inputs} > {outputs}"
        [rules.plot]
        inputs  = ["mapped/A.bam"]
        outputs = ["plots/quals.svg"]
        cmd     = "cp {inputs} {outputs}"
        [rules.all]
        inputs  = ["plots/qual.svg", "mapped/{s}.bam"]
        foreach = { s = ["A"] }
        """
    )
    project.write("data/genome.fa", ">g\n")
    project.write("reads/A.fq", "r\n")
    assert_user_error(
        project.run("build"),
        "./Weavefile:12: missing source 'plots/qual.svg' needed by rule 'all'",
        "did you mean 'plots/quals.svg'?",
    )
    project.write("Weavefile", project.read("Weavefile").replace("plots/qual.svg", "plots/quals.svg"))
    result = project.run("build")
    assert_user_error(
        result,
        "./Weavefile:4: missing source 'data/genom.fa' needed by rule 'map' (job map[sample=A])",
        "did you mean 'data/genome.fa'? Otherwise create the file",
    )
    assert "reads/A.fq" not in result.err


@pytest.mark.parametrize(
    "written, on_disk",
    [("caf\u00e9.txt", "cafe\u0301.txt"), ("cafe\u0301.txt", "caf\u00e9.txt")],
    ids=["NFC-written-NFD-on-disk", "NFD-written-NFC-on-disk"],
)
def test_a_missing_source_that_differs_only_in_unicode_normalization_says_so(project, written, on_disk):
    """A name written in one Unicode normalization (é as one code point, NFC) while the file
    has the other (e and a combining accent, NFD, as macOS writes names) looks the same: the
    hint says how they differ, escaped, instead of an identical-looking "did you mean 'café.txt'?"
    (and suggests it over a file that is a typo away, cafés.txt)."""
    project.write("Weavefile", f'[rules.use]\ninputs = ["{written}"]\noutputs = ["out.txt"]\ncmd = "cp {{inputs}} {{outputs}}"\n')
    project.write(on_disk, "x\n")
    project.write("caf\u00e9s.txt", "y\n")
    escaped = {"caf\u00e9.txt": "'caf\\xe9.txt' (NFC)", "cafe\u0301.txt": "'cafe\\u0301.txt' (NFD)"}
    assert_user_error(
        project.run("build"),
        f"missing source '{written}' needed by rule 'use'",
        f"did you mean {escaped[on_disk]}? It is written {escaped[written]}: the names differ only in Unicode"
        " normalization, which the file system does not ignore. Otherwise create the file",
    )


def test_a_missing_source_suggests_no_own_output_no_other_sample_and_no_weak_match(project):
    """No "did you mean" that misleads: the rule's own output (following it would be a cycle:
    `weave init`'s starter reads data/raw.csv and writes data/train.csv), another sample's
    file for a path a wildcard filled in, or a path that is merely alike."""
    project.weavefile(
        """
        default = ["data/train.csv", "mapped/A.bam", "model.txt"]
        [rules.split]
        inputs = ["data/raw.csv"]
        outputs = ["data/train.csv"]
        cmd = "cp {inputs} {outputs}"
        [rules.map]
        inputs = ["reads/{sample}.fq"]
        outputs = ["mapped/{sample}.bam"]
        cmd = "cp {inputs} {outputs}"
        [rules.fit]
        inputs = ["data/iris.csv"]
        outputs = ["model.txt"]
        cmd = "cp {inputs} {outputs}"
        """
    )
    project.write("reads/B.fq", "b\n")
    project.write("data/processed/test.csv", "t\n")
    result = project.run("build", "-k")
    assert_user_error(result, "missing source 'data/raw.csv'")
    assert "did you mean" not in result.err, result
    for target, missing in (("mapped/A.bam", "reads/A.fq"), ("model.txt", "data/iris.csv")):
        result = project.run("build", target)
        assert_user_error(result, f"missing source '{missing}'")
        assert "did you mean" not in result.err, result


def test_a_cycle_through_the_first_rule_gets_the_cycle_hint_and_a_leading_dash_is_named(project):
    """With no `default`, a cycle through the first rule is reported as a cycle, with its own
    hint (it got the one about putting a rule without wildcards first); and a rule name
    starting with '-' is told what a name may start with."""
    project.weavefile('[rules.all]\ninputs = ["b"]\n[rules.b]\ninputs = ["all"]\n')
    result = project.run("build")
    assert_user_error(result, "dependency cycle: all -> b -> all", "an output cannot (indirectly) be an input")
    assert "first rule" not in result.err and "wildcards" not in result.err, result
    project.weavefile('[rules.-a]\noutputs = ["x"]\ncmd = "touch x"\n')
    assert_user_error(project.run("build"), "rule '-a'", "start with a letter, digit or '_'")


def test_a_target_holding_a_placeholder_is_refused(project):
    """`default = ["o/{s}.txt"]` or `weave build 'o/{x}.txt'`: a pattern rule took `{s}` for
    a value and made a file of that name; a file or output so named is still a target."""
    project.weavefile('default = ["o/{s}.txt"]\n[rules.g]\noutputs = ["o/{s}.txt"]\ncmd = "touch {outputs}"\n')
    assert_user_error(project.run("build"), "target 'o/{s}.txt' holds the placeholder '{s}'", "(in default, ./Weavefile:1)")
    assert_user_error(project.run("build", "o/{x}.txt"), "holds the placeholder '{x}'", "write the value in")
    assert not (project.root / "o").exists()
    assert project.run("build", "o/A.txt").rc == 0 and project.exists("o/A.txt")
    project.write("notes/{draft}.md", "x\n")
    assert project.run("build", "notes/{draft}.md").rc == 0  # a source so named


def test_a_var_in_a_wildcard_constraint_is_refused(project):
    """`wildcards = { s = "{vars.r}" }`: vars are not inserted into a regex, which then matched
    only the text "{vars.r}" itself (every target: "no rule makes ..."). Said at its line."""
    project.weavefile(
        '[vars]\nr = "[A-Z]+"\n[rules.g]\noutputs = ["o/{s}.txt"]\nwildcards = { s = "{vars.r}" }\ncmd = "touch {outputs}"\n'
    )
    assert_user_error(
        project.run("build", "o/A.txt"), "./Weavefile:5: rule 'g', key 'wildcards'", "holds '{vars.r}'", "write the regex out"
    )
    project.weavefile('[rules.g]\noutputs = ["o/{s}.txt"]\nwildcards = { s = "[A-Z]{2}" }\ncmd = "touch {outputs}"\n')
    assert project.run("build", "o/AB.txt").rc == 0  # a regex's own braces are fine


def test_a_foreach_key_used_nowhere_is_warned_about(project):
    """A foreach key that no path, command or other foreach pattern of the rule uses (a
    misspelt wildcard): its values change nothing, which the build says once."""
    project.weavefile(
        """
        [rules.m]
        inputs = ["r/{s}.txt"]
        outputs = ["m.txt"]
        foreach = { s = ["a"], smaple = ["x", "y"] }
        cmd = "cat {inputs} > {outputs}"
        [rules.ok]
        inputs = ["r/{s}.txt"]
        outputs = ["o/{s}.txt"]
        foreach = { s = ["a"] }
        env = { T = "{wildcards.s}" }
        cmd = "cp {inputs} {outputs}"
        """
    )
    project.write("r/a.txt", "a\n")
    result = project.run("build", "m.txt", "o/a.txt")
    assert result.rc == 0, result
    assert "weave: warning: rule 'm': foreach key 'smaple' is used in none of its inputs, outputs or command" in result.err
    assert "rule 'ok'" not in result.err, result


def test_a_rule_name_as_an_input_says_to_list_its_outputs(project):
    """make's `train: prep`: the message names the rule's outputs, not 'create the file'."""
    project.weavefile(
        """
        [rules.prep]
        outputs = ["p.txt"]
        cmd = "echo p > {outputs}"
        [rules.everything]
        inputs = ["p.txt"]
        [rules.train]
        inputs = ["prep"]
        outputs = ["t.txt"]
        cmd = "cat p.txt > {outputs}"
        [rules.train2]
        inputs = ["everything"]
        outputs = ["t2.txt"]
        cmd = "cat p.txt > {outputs}"
        """
    )
    result = project.run("build", "train")
    assert_user_error(result, "missing source 'prep' needed by rule 'train'", "'prep' is a rule", 'list its outputs instead ("p.txt")')
    assert "create the file" not in result.err
    assert_user_error(project.run("build", "train2"), "'everything' is a rule", '("p.txt")')


def test_output_outside_project(project):
    project.weavefile('[rules.a]\noutputs = ["../escape.txt"]\ncmd = "touch ../escape.txt"\n')
    assert_user_error(project.run("build"), "outside the project directory")


def test_output_through_symlink_outside_project_refused(project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.root / "link").symlink_to(outside)
    project.weavefile('[rules.a]\noutputs = ["link/x.txt"]\ncmd = "echo x > link/x.txt"\n')
    result = project.run("build")
    assert result.rc == 1
    assert "outside the project directory" in result.err
    assert not (outside / "x.txt").exists()


def test_no_weavefile(project):
    assert_user_error(project.run("build"), "no Weavefile in")


def test_no_weavefile_hints_at_the_project_above_or_a_miscased_name(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    (project.root / "sub" / "deeper").mkdir(parents=True)
    result = project.run("build", cwd=project.root / "sub" / "deeper")
    assert_user_error(result, "no Weavefile in")
    assert f"the project is in {project.root}: run 'weave -C ../.. ...'" in result.err
    # With -C the hint is relative to where the command was typed, not to the -C directory.
    result = project.run("-C", "sub/deeper", "build")
    assert_user_error(result, "no Weavefile in")
    assert f"the project is in {project.root}, the directory you are in: run weave there without -C" in result.err
    result = project.run("-C", "deeper", "build", cwd=project.root / "sub")
    assert f"the project is in {project.root}: run 'weave -C .. ...'" in result.err, result
    (project.root / "sub" / "deeper" / "weavefile").write_text("")
    result = project.run("-C", "sub/deeper", "build")
    assert "found 'weavefile': the name is case-sensitive" in result.err


def test_counts_on_the_command_line_are_explained_in_words(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    assert_user_error(project.run("build", "-j", "abc"), "'abc' is not a whole number")
    assert_user_error(project.run("build", "-j", "2.5"), "'2.5' is not a whole number")
    assert_user_error(project.run("-j", "0", "build"), "0 is too small: at least 1")
    assert_user_error(project.run("build", "--retries", "-1"), "-1 is too small: at least 0")
    assert_user_error(project.run("history", "-n", "0"), "0 is too small: at least 1")


def test_global_option_after_the_command_says_where_it_goes(project):
    result = project.run("build", "-C", "..")
    assert_user_error(result, "No such option", "hint: -C goes before the command: weave -C ... build ...")


def test_bad_cli_values(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    assert_user_error(project.run("build", "-j", "0"), "-j")
    assert_user_error(project.run("build", "--resources", "gpu=lots"), "invalid --resources value 'gpu=lots'")
    assert_user_error(project.run("build", "--timeout", "soon"), "not a duration")
    assert_user_error(project.run("--no-such-flag"), "No such option")
    assert_user_error(
        project.run("build", "--resources", "my-res=1"),
        "invalid --resources value 'my-res=1': resource name 'my-res' must be an identifier",
    )


def test_timeout_zero_on_the_command_line_is_no_limit(project):
    """As `timeout = 0` in a rule (it was refused, with 'timeout=0.0: must be a positive
    number of seconds', naming neither the option nor what was typed)."""
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "sleep 0.3; touch a"\n')
    result = project.run("build", "--timeout", "0")
    assert result.rc == 0 and project.exists("a"), result


def test_resource_more_than_total(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\nresources = { gpu = 2 }\n')
    assert_user_error(project.run("build", "--resources", "gpu=1"), "rule 'a' needs gpu=2 but only gpu=1")


def test_wildcard_value_with_dotdot_refused(project):
    project.weavefile('[rules.a]\ninputs = ["raw/{s}.txt"]\noutputs = ["out/{s}.txt"]\ncmd = "cp {inputs} {outputs}"\nwildcards = { s = ".+" }\n')
    assert_user_error(project.run("build", "out/../../x.txt"), "outside the project")
    assert_user_error(project.run("build", "out/a/../../b.txt"))


def test_ambiguous_pattern_rules(project):
    project.write("a.x", "")
    project.weavefile(
        '[rules.one]\ninputs = ["{n}.x"]\noutputs = ["{n}.out"]\ncmd = "cp {inputs} {outputs}"\n'
        '[rules.two]\ninputs = ["{n}.x"]\noutputs = ["{n}.out"]\ncmd = "cp {inputs} {outputs}"\n'
    )
    assert_user_error(
        project.run("build", "a.out"), "can be made by rules 'one' (./Weavefile:3) and 'two' (./Weavefile:7)"
    )


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("rules = 3\n", "must be a table of rules"),
        ("[rules.a]\ncmd = 5\noutputs=['a']\n", "key 'cmd'"),
        ("[rules.a]\noutputs = ['{x']\ncmd = 'x'\n", "unbalanced brace"),
        ("[rules.a]\noutputs = ['a']\n", "has outputs but no cmd"),
        ("[rules.a]\ninputs = ['{s}.txt']\noutputs = ['a']\ncmd = 'x'\n", "which no output or foreach defines"),
        ("[rules.a]\noutputs = ['a']\ncmd = 'x'\ntimeout = 'soon'\n", "not a duration"),
        ("[rules.a]\noutputs = ['a']\ncmd = 'x'\nwildcards = { s = '[' }\n", "not a wildcard of this rule"),
        ("[rules.a]\noutputs = ['o/{s}']\ncmd = 'x'\nwildcards = { s = '[' }\n", "invalid regex"),
        ("[rules.a]\noutputs = ['a']\ncmd = 'echo {inputs[3]}'\n", "out of range"),
        ("[rules.a]\noutputs = ['a']\ncmd = 'x'\nresources = { gpu = -1 }\n", "non-negative"),
        ("", "no rules defined"),
        ("[rules.a]\noutputs = ['a/*.txt']\ncmd = 'x'\n", "glob character"),
        ("[rules.'a b']\noutputs = ['a']\ncmd = 'x'\n", "rule names may contain only"),
    ],
)
def test_malformed_weavefiles(project, text, fragment):
    project.write("Weavefile", text, dedent=False)
    assert_user_error(project.run("build"), fragment)


def test_output_path_is_a_directory(project):
    (project.root / "result.txt").mkdir()
    project.weavefile('[rules.r]\noutputs = ["result.txt"]\ncmd = "echo x > result.txt"\n')
    result = project.run("build")
    assert result.rc == 1, result
    assert "FAILED r result.txt: output 'result.txt' is a directory, but the rule declares a file" in result.err
    assert "remove it" in result.err and "write 'result.txt/' in outputs" in result.err
    assert "Traceback" not in result.err
    assert (project.root / "result.txt").is_dir(), "a directory weave did not make is never deleted"


def test_a_directory_output_made_a_file_output_replaces_weaves_own_directory(project):
    """The rule's output changes from `out/x/` to `out/x`: the directory its last run made is
    an old output, removed before the job runs (it failed until the user deleted it). One
    that differs from what the job made (a file added by hand) is the user's: refused."""
    directory_rule = '[rules.x]\ninputs = ["src.txt"]\noutputs = ["out/x/"]\ncmd = "mkdir -p out/x && cp src.txt out/x/f"\n'
    file_rule = '[rules.x]\ninputs = ["src.txt"]\noutputs = ["out/x"]\ncmd = "cp src.txt out/x"\n'
    project.write("src.txt", "s\n")
    project.weavefile(directory_rule)
    assert project.run("build").rc == 0
    project.weavefile(file_rule)
    result = project.run("build")
    assert result.rc == 0 and project.read("out/x") == "s\n", result
    project.weavefile(directory_rule)
    assert project.run("build").rc == 0
    project.write("out/x/mine.txt", "keep\n")
    project.weavefile(file_rule)
    result = project.run("build")
    assert result.rc == 1 and "is a directory, but the rule declares a file" in result.err, result
    assert project.read("out/x/mine.txt") == "keep\n"


def test_output_parent_is_a_file(project):
    project.write("blocker", "I am a file\n")
    project.weavefile('[rules.r]\noutputs = ["blocker/out.txt"]\ncmd = "echo x > blocker/out.txt"\n')
    result = project.run("build")
    assert result.rc == 1, result
    assert "cannot prepare output 'blocker/out.txt'" in result.err
    assert project.read("blocker") == "I am a file\n"


def test_rules_written_as_keys_of_the_rules_table_are_located(project):
    """`[rules]` then `name = {...}` is valid TOML for a rule: its errors name its line too."""
    project.weavefile('default = ["x"]\n[rules]\nok = { outputs = ["x"], cmd = "touch x" }\nbad = 3\n')
    assert_user_error(project.run("build"), "Weavefile:4:", "rule 'bad'", "must be a table")
    project.weavefile('[rules]\nfirst = { outputs = ["x"], cmd = "touch x" }\nsecond = { outputs = ["y"], cmd = "touch y", bogus = 1 }\n')
    assert_user_error(project.run("build"), "Weavefile:3:", "rule 'second', key 'bogus'", "unknown key")


def test_keys_written_as_sub_tables_are_located(project):
    """`[rules.NAME.KEY]` is TOML for a key of rule NAME (e.g. its env): errors name its line."""
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n\n[rules.a.env]\nX = [1]\n')
    assert_user_error(project.run("build"), "Weavefile:5:", "rule 'a', key 'env'", "string or number")
    project.weavefile('# a typo: a sub-table where a key was meant\n[rules.a.outputz]\nx = 1\n')
    assert_user_error(project.run("build"), "Weavefile:2:", "rule 'a', key 'outputz'", "did you mean 'outputs'")
    project.weavefile('[rules."a.b"]\noutputs = ["a"]\ncmd = "touch a"\n[rules."a.b".env]\nX = [1]\n')
    assert_user_error(project.run("build"), "Weavefile:4:", "rule 'a.b', key 'env'")
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "echo $X > a"\n[rules.a.env]\nX = "1"\n')
    assert project.run("build").rc == 0 and project.read("a") == "1\n"


@pytest.mark.parametrize(
    "text, fragments",
    [
        ('[rules.a]\noutputs = ["a"]\ncmd = touch a\n', ["Weavefile:3:", "Invalid value", 'text needs quotes']),
        ('[rules.a]\noutputs = ["a"]\ncmd = "touch a\n', ["Weavefile:3:", "string is not closed", "'''...'''"]),
        ('[rules.a]\noutputs = ["a"]\ncmd = "sed s/\\./_/ x"\n', ["Weavefile:3:", "literal string '...'"]),
        ('[rules.a]\noutputs = ["a"]\noutputs = ["b"]\ncmd = "touch a"\n', ["Weavefile:3:", "set twice"]),
        ('[rules.a]\ncmd = "x"\n[rules.a]\ncmd = "y"\n', ["Weavefile:3:", "declared once"]),
        # Something left open at the end of the file, and two values on one line.
        ('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\nenv = [\n', ["Weavefile:4:", "the file ends where a value", "must be closed"]),
        ('[rules.a]\noutputs = ["a", "b"\n', ["Weavefile:2:", "Unclosed array", "close the list with ]"]),
        ('[rules.a]\noutputs = ["a" "b"]\ncmd = "touch a"\n', ["Weavefile:2:", "separated by commas"]),
        ('[rules.a]\noutputs = ["a"]\nenv = { X = "1"\n', ["Weavefile:3:", "close it with }", "on one line"]),
        ('[rules.a]\noutputs = ["a"]\ncmd = "echo" "a"\n', ["Weavefile:3:", "one key = value per line", "not joined"]),
        # Habits from other tools and nested vars.
        ('[vars.prepare]\nsplit = 0.2\n[rules.a]\noutputs = ["a"]\ncmd = "echo {vars.prepare.split} > a"\n', ["Weavefile:5:", "vars are not nested", "{vars.prepare_split}"]),
        ('[rules.a]\noutputs = ["a"]\nthreads = 4\ncmd = "touch a"\n', ["Weavefile:3:", "did you mean 'cpus'"]),
        ('[rules.a]\noutputs = ["a"]\ncmd = "make -j{threads} > a"\n', ["unknown placeholder '{threads}'", "did you mean 'cpus'"]),
        ('[rules.a]\noutputs = ["o/{s}.txt"]\ncmd = "echo {wildcards.x} > {outputs}"\n', ["no wildcard 'x'", "this rule's wildcards: s"]),
        # A shell's ${NAME}: braces are weave's placeholders.
        ('[rules.a]\noutputs = ["a"]\ncmd = "echo ${HOME} > a"\n', ["Weavefile:3:", "'${HOME}'", "${{HOME}} or $HOME"]),
        ('[rules.a]\noutputs = ["a"]\ncmd = "echo ${x:-d} > a"\n', ["'${x:-d}'", "write ${{x:-d}} for"]),
    ],
)
def test_common_toml_mistakes_come_with_a_hint(project, text, fragments):
    project.write("Weavefile", text, dedent=False)
    result = project.run("build")
    assert_user_error(result, *fragments)
    assert "\n  hint: " in result.err


# -- values that load today and break later ------------------------------------------------------

RULE = '[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n'


@pytest.mark.parametrize(
    "text, fragments",
    [
        ('[rules.a]\noutputs = ["a"]\ncmd = "touch a\\u0000"\n', ["Weavefile:3:", "rule 'a', key 'cmd'", "NUL"]),
        ('[rules.a]\noutputs = ["a"]\ncmd = ["touch a", "echo \\u0000"]\n', ["Weavefile:3:", "key 'cmd'", "NUL"]),
        (RULE + 'env = { X = "1\\u0000" }\n', ["Weavefile:4:", "key 'env'", "value of 'X' contains a NUL"]),
        (RULE + 'env = { "X\\u0000" = "1" }\n', ["Weavefile:4:", "key 'env'", "not a valid environment variable name"]),
        ('[vars]\nx = "a\\u0000"\n' + RULE, ["Weavefile:2:", "variable 'x' contains a NUL character"]),
        ('[vars]\nx = ["a", "\\u0000"]\n' + RULE, ["Weavefile:2:", "variable 'x' contains a NUL character"]),
    ],
    ids=["cmd", "cmd-list", "env-value", "env-name", "var", "var-list"],
)
def test_nul_characters_are_refused_at_load(project, text, fragments):
    """A NUL cannot reach a command line or the environment: refused at load, not at start."""
    project.write("Weavefile", text, dedent=False)
    assert_user_error(project.run("build"), *fragments)
    assert not project.exists("a")


@pytest.mark.parametrize("env", ['{ "A=B" = "1" }', '{ "" = "2" }'])
def test_env_names_must_be_valid(project, env):
    project.write("Weavefile", RULE + f"env = {env}\n", dedent=False)
    assert_user_error(project.run("build"), "Weavefile:4:", "rule 'a', key 'env'", "not a valid environment variable name")


@pytest.mark.parametrize(
    "value",
    ["1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "1979-05-27T07:32:00", "{ a = { b = 1 } }", "{ a = [1] }",
     "[{ a = 1 }]", "[[1]]", "nan", "inf", "-inf", "[1, nan]", "{ a = nan }"],
)
def test_var_values_no_command_can_take_are_refused(project, value):
    project.write("Weavefile", f"[vars]\nx = {value}\n" + RULE.replace("touch a", "echo {vars.x} > a"), dedent=False)
    result = project.run("build")
    assert_user_error(
        result, "Weavefile:2:", "variable 'x' must be a string, number, boolean, a list of those, or a table of strings,"
    )
    assert not project.exists("a")


@pytest.mark.parametrize("setting", ["n=nan", "n=inf", "n=-inf", "n=1e999", "l=[1, nan]", "l=[[1]]", "l=[{a=1}]"])
def test_set_refuses_what_the_weavefile_may_not_hold(project, setting):
    project.write("Weavefile", "[vars]\nn = 3\nl = [1, 2]\n" + RULE.replace("touch a", "echo {vars.n} {vars.l} > a"), dedent=False)
    assert_user_error(project.run("build", "--set", setting), f"--set {setting}:")
    assert not project.exists("a")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("timeout = 1" + "0" * 400, "a duration must be a finite number of seconds"),
        ('retry_delay = "1' + "0" * 400 + 's"', "a duration must be a finite number of seconds"),
        ('timeout = "\u0663s"', "is not a duration"),  # ARABIC-INDIC DIGIT THREE
        ('timeout = "\uff13"', "is not a duration"),  # FULLWIDTH DIGIT THREE
    ],
    ids=["huge-int", "huge-text", "arabic-indic", "fullwidth"],
)
def test_durations_too_large_or_not_in_ascii_digits(project, text, fragment):
    project.write("Weavefile", RULE + text + "\n", dedent=False)
    assert_user_error(project.run("list"), "Weavefile:4:", "rule 'a'", fragment)


@pytest.mark.parametrize(
    "amount", ["nan", "inf", "1e16", "2000000000000000", "1" + "0" * 400], ids=["nan", "inf", "1e16", "2e15", "1e400"]
)
def test_resource_amounts_must_be_finite_and_sensible(project, amount):
    project.write("Weavefile", RULE + f"resources = {{ gpu = {amount} }}\n", dedent=False)
    assert_user_error(project.run("build"), "Weavefile:4:", "rule 'a', key 'resources'", "resource 'gpu' must be a finite number")
    project.write("Weavefile", f"[resources]\ngpu = {amount}\n" + RULE, dedent=False)
    assert_user_error(project.run("build"), "Weavefile:2:", "key 'resources'", "resource 'gpu' must be a finite number")
    project.write("Weavefile", RULE + f"cpus = {amount}\n", dedent=False)
    assert_user_error(project.run("build"), "Weavefile:4:", "key 'cpus'")
    assert not project.exists("a")


@pytest.mark.parametrize(
    "regex",
    [
        "(a)\\\\1",
        pytest.param(
            "(?i)a",
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="a mid-pattern global flag is an error from 3.11"),
        ),
    ],
)
def test_wildcard_constraints_are_compiled_as_the_build_combines_them(project, regex):
    """Alone each constraint compiles; inside the output's regex a backreference or a global
    flag does not: refused at load, not as an internal error when a target is matched."""
    project.write(
        "Weavefile",
        f'[rules.a]\noutputs = ["o/{{s}}"]\ncmd = "touch {{outputs}}"\nwildcards = {{ s = "{regex}" }}\n',
        dedent=False,
    )
    assert_user_error(project.run("list"), "Weavefile:4:", "rule 'a', key 'wildcards'", "constraint for 's'", "backreferences")
    assert_user_error(project.run("build", "o/a"), "key 'wildcards'")


def test_names_ending_in_a_newline_are_refused(project):
    project.write("Weavefile", '[rules."a\\n"]\noutputs = ["a"]\ncmd = "touch a"\n', dedent=False)
    assert_user_error(project.run("list"), "rule names may contain only")
    project.write("Weavefile", '[vars]\n"x\\n" = 1\n' + RULE, dedent=False)
    assert_user_error(project.run("list"), "Weavefile:1:", "key 'x\\x0a'", "must be an identifier")


@pytest.mark.parametrize(
    "text, fragments",
    [
        (
            '[rules.a]\noutputs = ["o/"]\ncmd = "mkdir o"\n[rules.b]\noutputs = ["o/x"]\ncmd = "touch o/x"\n',
            ["Weavefile:5:", "rule 'b', key 'outputs'", "output 'o/x' is inside directory output 'o/' of rule 'a'"],
        ),
        (
            '[rules.a]\noutputs = ["o/"]\ncmd = "mkdir o"\n[rules.b]\noutputs = ["o/x/"]\ncmd = "mkdir -p o/x"\n',
            ["Weavefile:5:", "rule 'b'", "output 'o/x/' is inside directory output 'o/' of rule 'a'"],
        ),
        (
            '[rules.b]\noutputs = ["o/x/y"]\ncmd = "touch o/x/y"\n[rules.a]\noutputs = ["./o/"]\ncmd = "mkdir o"\n',
            ["Weavefile:5:", "rule 'a'", "directory output './o/' contains output 'o/x/y' of rule 'b'"],
        ),
        (
            '[rules.a]\noutputs = ["o/", "o/x"]\ncmd = "mkdir o"\n',
            ["Weavefile:2:", "rule 'a'", "output 'o/x' is inside directory output 'o/' of rule 'a'"],
        ),
        (
            '[rules.a]\noutputs = ["d"]\ncmd = "touch d"\n[rules.b]\noutputs = ["d/x"]\ncmd = "touch d/x"\n',
            ["Weavefile:5:", "rule 'b', key 'outputs'", "output 'd/x' is inside 'd', a file output of rule 'a'"],
        ),
        (
            '[rules.a]\noutputs = ["d/x/y", "d/x"]\ncmd = "touch d/x"\n',
            ["Weavefile:2:", "rule 'a'", "file output 'd/x' is the directory of output 'd/x/y' of rule 'a'"],
        ),
        (  # a pattern rule whose values are all listed: its outputs are known at load
            '[rules.a]\noutputs = ["{n}"]\nforeach = { n = ["d"] }\ncmd = "touch {outputs}"\n'
            '[rules.b]\noutputs = ["d/x"]\ncmd = "touch d/x"\n',
            ["Weavefile:6:", "rule 'b', key 'outputs'", "output 'd/x' is inside 'd', a file output of rule 'a'"],
        ),
    ],
    ids=["file-after-dir", "dir-after-dir", "dir-after-file", "same-rule", "inside-a-file", "a-file-holding-one", "listed-foreach"],
)
def test_outputs_inside_a_directory_output_are_refused(project, text, fragments):
    project.write("Weavefile", text, dedent=False)
    assert_user_error(project.run("list"), *fragments)


def test_a_listed_pattern_job_may_hold_a_file_in_its_own_directory_output(project):
    """models/{m}/ and models/{m}/metrics.json with listed values: one job makes both, as the
    graph allows; the load-time check of listed outputs must allow it too."""
    project.weavefile(
        """
        [rules.train]
        outputs = ["models/{m}/", "models/{m}/metrics.json"]
        foreach = { m = ["small", "big"] }
        cmd = "mkdir -p models/{wildcards.m} && echo x > models/{wildcards.m}/metrics.json"
        """
    )
    assert project.run("build", "train").rc == 0


def test_outputs_beside_a_directory_output_or_with_wildcards_are_fine(project):
    project.weavefile(
        '[rules.a]\noutputs = ["o/"]\ncmd = "mkdir o"\n'
        '[rules.b]\noutputs = ["ox", "p/o/x"]\ncmd = "mkdir -p p/o; touch ox p/o/x"\n'
        '[rules.c]\noutputs = ["q/{n}.txt"]\ncmd = "touch {outputs}"\n'
    )
    assert project.run("list").rc == 0


@pytest.mark.parametrize(
    "output, fragment",
    [
        (".", "output '.' is the project directory"),
        ("./", "output './' is the project directory"),
        ("Weavefile", "output 'Weavefile' is the Weavefile"),
        ("./Weavefile", "output './Weavefile' is the Weavefile"),
        (".weave/x", "output '.weave/x' is inside weave's state directory (.weave/)"),
    ],
)
def test_protected_outputs_are_refused_at_load(project, output, fragment):
    project.write("Weavefile", f'[rules.a]\noutputs = ["{output}"]\ncmd = "true"\n', dedent=False)
    assert_user_error(project.run("list"), "Weavefile:2:", "rule 'a', key 'outputs'", fragment)


@pytest.mark.parametrize(
    "text, fragments",
    [
        ('rules.a.outputs = ["a"]\nrules.a.cmd = "touch a"\nrules.a.bogus = 1\n', ["Weavefile:3:", "rule 'a', key 'bogus'"]),
        ('[vars]\nx = 1\n[rules]\na.outputs = ["a"]\na.cmd = "touch a"\na.bogus = 1\n', ["Weavefile:6:", "rule 'a', key 'bogus'"]),
        ('[rules]\n"a.b".cmd = "touch a"\n"a.b".outputs = ["a"]\n"a.b".bogus = 1\n', ["Weavefile:4:", "rule 'a.b', key 'bogus'"]),
        ('[vars]\nx = 1\n[rulez.a]\noutputs = ["a"]\n', ["Weavefile:3:", "key 'rulez': unknown top-level key"]),
        ('rulez.a.cmd = "x"\n' + RULE, ["Weavefile:1:", "key 'rulez': unknown top-level key"]),
    ],
    ids=["top-level-dotted", "rules-table-dotted", "quoted-name-dotted", "mistyped-header", "mistyped-dotted"],
)
def test_dotted_keys_and_mistyped_headers_are_located(project, text, fragments):
    project.write("Weavefile", text, dedent=False)
    assert_user_error(project.run("list"), *fragments)


def test_bad_foreach_values_are_located_and_blamed_on_set(project):
    """A literal foreach list is checked when the file loads, at the foreach's line; values
    that come from a var given with --set are blamed on the --set, not on the Weavefile."""
    project.write(
        "Weavefile",
        '[vars]\nitems = ["a"]\nrun = "r1"\n[rules.a]\noutputs = ["o/{x}"]\ncmd = "echo > {outputs}"\n'
        'foreach = { x = "{vars.items}" }\n[rules.b]\noutputs = ["o/{y}"]\ncmd = "echo > {outputs}"\n\n'
        'foreach = { y = [".."] }\n',
        dedent=False,
    )
    assert_user_error(project.run("list"), "Weavefile:12:", "rule 'b', key 'foreach'", "foreach value '..' for 'y' contains '..'")
    project.write(
        "Weavefile",
        '[vars]\nitems = ["a"]\nrun = "r1"\n[rules.a]\noutputs = ["o/{x}"]\ncmd = "echo > {outputs}"\n'
        'foreach = { x = "{vars.items}" }\n[rules.b]\noutputs = ["runs/{vars.run}/o.txt"]\ncmd = "echo > {outputs}"\n',
        dedent=False,
    )
    result = project.run("build", "--set", "items=[true]")
    assert_user_error(result, "--set items=[true]: rule 'a', key 'foreach'", "must be a pattern string", "or a list of values (strings or numbers); the list holds a boolean, true")
    assert "Weavefile:" not in result.err
    assert_user_error(project.run("build", "--set", 'items=["../x"]'), '--set items=["../x"]: rule \'a\'', "contains '..'")
    assert_user_error(project.run("build", "--set", "run=.."), "output 'runs/../o.txt' has a '..' step", "--set values")


def test_a_path_a_constraint_refuses_names_the_rule_and_the_constraint(project):
    """A foreach value that a pattern rule's wildcard constraint refuses: 'missing source,
    create the file' sent the user looking for the wrong thing."""
    project.write("books/good.txt", "x\n")
    project.write("books/The_Bad.txt", "y\n")
    project.weavefile(
        """
        [rules.count_words]
        inputs = ["books/{book}.txt"]
        outputs = ["counts/{book}.tsv"]
        wildcards = { book = "[a-z_]+" }
        cmd = "wc -w < {inputs} > {outputs}"
        [rules.summarize]
        inputs = ["counts/{book}.tsv"]
        outputs = ["summary.tsv"]
        foreach = { book = "books/{book}.txt" }
        cmd = "cat {inputs} > {outputs}"
        """
    )
    assert_user_error(
        project.run("build", "summary.tsv"),
        "missing source 'counts/The_Bad.tsv' needed by rule 'summarize'",
        "rule 'count_words' makes paths like 'counts/{book}.tsv', but book = 'The_Bad' does not match "
        "its constraint wildcards.book = '[a-z_]+'",
    )


def test_missing_source_beside_a_weavefile_given_in_a_subdirectory(project):
    """`weave -f exp/fast.toml`: the project directory is exp/, so data/x.csv, which exists in
    the current directory, is missing there; the hint says why."""
    project.write("data/x.csv", "1\n")
    project.write("exp/fast.toml", '[rules.a]\ninputs = ["data/x.csv"]\noutputs = ["o.txt"]\ncmd = "cp {inputs} {outputs}"\n')
    result = project.run("-f", "exp/fast.toml")
    assert_user_error(result, "missing source 'data/x.csv'", "relative to the directory it is in (exp/)")


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda root: (root / ".weave").write_text("x"), "cannot use '.weave': File exists"),
        (lambda root: (root / ".weave/lock").mkdir(parents=True), "cannot use '.weave/lock': Is a directory"),
        (lambda root: (root / ".weave/running").mkdir(parents=True), "cannot use '.weave/running': Is a directory"),
        (lambda root: (root / ".weave/logs").mkdir(parents=True) or (root / ".weave/logs/.spool").write_text("x"),
         "cannot use '.weave/logs/.spool'"),
    ],
)
def test_something_in_the_way_in_weaves_state_directory_is_a_message(project, damage, named):
    """Not an internal error, and not a job failure: the path, the reason and what to do."""
    project.weavefile('[rules.a]\noutputs = ["o"]\ncmd = "touch o"\n')
    damage(project.root)
    result = project.run("build")
    assert_user_error(result, named, "something else is in the way there")
    assert "FAILED" not in result.err and "internal error" not in result.err, result


def _without_root_override() -> List[str]:
    """A prefix that runs a command without root's permission to read anything (so that a
    chmod'ed file is refused, as for every other user); [] when not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: permissions cannot be tested")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


def _run_as_user(project, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_without_root_override(), sys.executable, "-m", "weavebuild", *args],
        cwd=project.root, capture_output=True, text=True, timeout=120,
    )


def test_permissions_are_said_as_permissions(project):
    """An unreadable state store is not a damaged one (it was moved aside, losing its
    history); a source under an unsearchable directory is not 'missing'."""
    project.weavefile('[rules.a]\ninputs = ["scripts/s.sh"]\noutputs = ["o"]\ncmd = "cp scripts/s.sh o"\n')
    project.write("scripts/s.sh", "echo\n")
    os.chmod(project.root / "scripts", 0o000)
    try:
        result = _run_as_user(project, "build")
        assert result.returncode == 2 and "cannot read 'scripts/s.sh': Permission denied" in result.stderr, result
        assert "create the file" not in result.stderr
    finally:
        os.chmod(project.root / "scripts", 0o755)
    assert project.run("build").rc == 0
    os.chmod(project.root / ".weave/state.db", 0o000)
    try:
        result = _run_as_user(project, "build")
        assert result.returncode == 2 and "cannot read and write .weave/state.db: permission denied" in result.stderr, result
    finally:
        os.chmod(project.root / ".weave/state.db", 0o644)
    assert not [name for name in os.listdir(project.root / ".weave") if "corrupt" in name]
    assert project.run("build").out.startswith("weave: nothing to do")
    os.chmod(project.root / "o", 0o000)
    try:
        result = _run_as_user(project, "clean", "-n")
        assert "kept o: cannot read it (Permission denied)" in result.stderr, result
    finally:
        os.chmod(project.root / "o", 0o644)


def test_a_store_made_read_only_then_fixed_records_again(project):
    """plan on a read-only state.db made its -wal and -shm read-only too (SQLite gives them the
    store's mode); once the store's mode was fixed, every build ran its jobs and recorded
    nothing ('attempt to write a readonly database')."""
    project.weavefile('[rules.a]\ninputs = ["in.txt"]\noutputs = ["a.txt"]\ncmd = "cp in.txt a.txt"\n')
    project.write("in.txt", "x\n")
    assert project.run("build").rc == 0
    project.write("in.txt", "y\n")
    store = project.root / ".weave" / "state.db"
    os.chmod(store, 0o444)
    try:
        assert _run_as_user(project, "plan").returncode == 0
    finally:
        os.chmod(store, 0o644)
    built = _run_as_user(project, "build")
    assert built.returncode == 0 and "state store error" not in built.stderr, built
    again = _run_as_user(project, "build")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again


def test_the_failure_report_shows_a_long_line_as_a_terminal_would(project):
    """A progress bar redrawn with carriage returns shows its last state; one huge line its
    end, not 300 KB of stderr."""
    project.write(
        "job.sh",
        "head -c 300000 /dev/zero | tr '\\0' x\n"
        "echo\nprintf '10%%\\r50%%\\rdone 100%%\\n'\n"
        "echo oops\nexit 3\n",
        dedent=False,
    )
    project.weavefile('[rules.a]\ninputs = ["job.sh"]\noutputs = ["o"]\ncmd = "bash job.sh"\n')
    result = project.run("build")
    assert result.rc == 1, result
    tail = result.err
    assert "done 100%" in tail and "10%" not in tail, tail[:2000]
    assert "oops" in tail and len(tail) < 5000, len(tail)
    assert max(len(line) for line in tail.splitlines()) < 700


def test_a_misspelt_default_target_says_where_it_comes_from(project):
    project.weavefile('# metrics\ndefault = ["reports/metric.json"]\n[rules.r]\noutputs = ["reports/metrics.json"]\ncmd = "true"\n')
    result = project.run("build")
    assert_user_error(result, "no rule makes 'reports/metric.json'", "(in default, ./Weavefile:2)", "did you mean 'reports/metrics.json'?")
    named = project.run("build", "reports/metric.json")  # named on the command line: no 'in default'
    assert_user_error(named, "no rule makes 'reports/metric.json'")
    assert "in default" not in named.err


def test_a_first_rule_with_wildcards_as_the_implicit_default_is_explained(project):
    """No `default`: a bare build builds the first rule. When that is a pattern rule (dotted
    keys put it first), the error says why that rule was asked for and how to fix it."""
    project.weavefile(
        'rules.each.inputs = ["data/{x}.txt"]\nrules.each.outputs = ["out/{x}.txt"]\nrules.each.cmd = "cp {inputs} {outputs}"\n'
        '[rules.all]\ninputs = ["out/a.txt"]\n'
    )
    project.write("data/a.txt", "a\n")
    for command in ("build", "plan"):
        assert_user_error(
            project.run(command),
            "with no `default` in the Weavefile, weave builds its first rule, 'each' (./Weavefile:1)",
            "rule 'each' has wildcards", "hint: add `default = [...]`",
        )
    assert project.run("build", "all").rc == 0 and project.read("out/a.txt") == "a\n"


def test_a_first_alias_rule_with_a_missing_input_names_the_source(project):
    project.weavefile('[rules.all]\ninputs = ["missing.txt"]\n')
    assert_user_error(project.run("build"), "missing source 'missing.txt' needed by rule 'all'")


def test_a_target_inside_a_directory_output_that_was_not_made_fails_the_build(project):
    project.weavefile('[rules.train]\noutputs = ["models/m/"]\ncmd = "mkdir -p models/m && echo w > models/m/model.json"\n')
    assert project.run("build").rc == 0
    assert project.run("build", "models/m/model.json").rc == 0
    result = project.run("build", "models/m/nope.json")
    assert result.rc == 1, result
    assert "target 'models/m/nope.json' was not made: rule 'train' made models/m/ without it" in result.err, result
    assert project.run("build", "models/m/nope.json").rc == 1  # never stamped as a no-op
    why = project.run("why", "models/m/nope.json")
    assert why.rc == 1 and "models/m/nope.json does not exist: train models/m/ is up to date and did not make it" in why.out, why
    assert project.run("why", "models/m/model.json").rc == 0


def test_a_placeholder_out_of_range_for_a_job_points_at_the_cmd_line(project):
    project.weavefile('[rules.a]\ninputs = ["data/*.csv"]\noutputs = ["o"]\ncmd = "cat {inputs[0]} > o"\n')
    assert_user_error(project.run("build"), "Weavefile:4: rule 'a', key 'cmd'", "'{inputs[0]}' is out of range")


def test_a_mistake_in_an_inline_top_level_table_names_its_line(project):
    project.weavefile('\n\nresources = { gpu = inf }\n[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    result = project.run("build")
    assert result.rc == 2 and result.err.startswith("weave: error: ./Weavefile:3: key 'resources'"), result
    project.weavefile('\nvars = { n = [1, {a = 1}] }\n[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    result = project.run("build")
    assert result.rc == 2 and result.err.startswith("weave: error: ./Weavefile:2: key 'n'"), result
    # The rules themselves as a top-level inline table: the line of `rules =` (there is no other).
    project.weavefile('# rules inline\nrules = { b = { outputs = ["x"], cmd = 3 } }\n')
    assert_user_error(project.run("build"), "./Weavefile:2: rule 'b', key 'cmd'", "must be a string")
    project.weavefile('\nrules = { b = 3 }\n')
    assert_user_error(project.run("build"), "./Weavefile:2: rule 'b': must be a table")


@pytest.mark.parametrize(
    "args",
    [
        ["build", "x" * 5000], ["build", "--set", "x" * 5000], ["build", "--resources", "gpu=" + "9" * 5000],
        ["build", "-j", "x" * 5000], ["why", "d/" + "x" * 5000], ["build", "-R", "x" * 5000],
    ],
)
def test_a_huge_value_typed_by_mistake_is_shortened_in_the_message(project, args):
    """A 5,000-character target or option value is repeated shortened in the middle, with its
    length: the message stays a few lines (it filled the terminal)."""
    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "touch a.txt"\n')
    result = project.run(*args)
    assert_user_error(result)
    assert len(result.err) < 1000 and "characters)" in result.err and "…" in result.err, result


def test_clip_long_words_keeps_ordinary_messages_whole():
    from weavebuild.errors import clip_long_words

    path = "data/" + "a" * 290  # 295 characters: a long but real path stays whole
    message = f"weave: error: no rule makes '{path}'\n  hint: run 'weave list'"
    assert clip_long_words(message) == message
    assert clip_long_words("short") == "short"
    long_word = "b" * 1000
    clipped = clip_long_words(f"one {long_word} two {long_word}")
    assert clipped == f"one {'b' * 130}…{'b' * 130} (1,000 characters) two {'b' * 130}…{'b' * 130} (1,000 characters)"


@pytest.mark.parametrize(
    "weavefile, where, got",
    [
        ('[resources]\ngpu = 0.5\n[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n', "./Weavefile:2: key 'resources'", "got 0.5"),
        ('[rules.a]\noutputs = ["a"]\nresources = { gpu = 1.5 }\ncmd = "touch a"\n', "./Weavefile:3: rule 'a', key 'resources'", "got 1.5"),
        ('[resources]\ngpu = 100000\n[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n', "./Weavefile:2: key 'resources'", "(at most 65536), got 100000"),
    ],
)
def test_a_gpu_amount_that_is_not_whole_is_a_weavefile_error(project, weavefile, where, got):
    """Said by every command with the line (`weave plan` and `list` accepted it; only a build
    refused it, naming no line)."""
    project.weavefile(weavefile)
    for command in ("plan", "list", "build"):
        assert_user_error(project.run(command), where, "resource 'gpu' must be a whole number of GPUs", got)


def test_closest_among_many_choices_compares_neighbours_only():
    """With more than SUGGEST_SCAN choices, a did-you-mean looks at the neighbours of the word
    in sorted order, forwards and backwards: for typos at the start, middle and end it finds
    what difflib's scan of every choice finds."""
    import difflib

    from weavebuild.errors import SUGGEST_SCAN, closest

    outputs = [f"out/s{i:05d}.o" for i in range(3 * SUGGEST_SCAN)] + [f"data/sample_{i}/reads.fq" for i in range(3000)]
    for typo, meant in [
        ("otu/s04567.o", "out/s04567.o"),  # at the start: shares the suffix
        ("out/s04567.obj", "out/s04567.o"),  # at the end: shares the prefix
        ("data/sampel_1234/reads.fq", "data/sample_1234/reads.fq"),  # in the middle
    ]:
        assert closest(typo, outputs) == meant == difflib.get_close_matches(typo, outputs, n=1)[0], typo
    for typo in ("out/s012345.o", "out/s0123.o", "ou/s01234.o"):  # a digit too many or too few: ties
        assert closest(typo, outputs) == difflib.get_close_matches(typo, outputs, n=1)[0], typo
    assert closest("zzzzzzzz", outputs) is None
    assert closest("cmd", ["cmd_", "inputs", "outputs"]) == "cmd_"  # few choices: difflib itself


def test_a_typo_among_thousands_of_outputs_gets_a_suggestion(project):
    rules = "".join(f'[rules.r{i}]\noutputs = ["out/s{i:04d}.o"]\ncmd = "touch {{outputs}}"\n' for i in range(2500))
    project.weavefile(rules)
    assert_user_error(project.run("build", "otu/s1234.o"), "no rule makes 'otu/s1234.o'", "did you mean 'out/s1234.o'?")
    assert_user_error(project.run("build", "-R", "r1234x"), "did you mean 'r1234'?")


def test_a_failed_command_with_make_variables_names_weaves_spelling(project):
    project.weavefile(
        """
        [vars]
        FLAGS = "-n"

        [rules.a]
        inputs = ["in.txt"]
        outputs = ["a.txt"]
        cmd = "cat $(FLAGS) $^ > $@"

        [rules.b]
        inputs = ["in.txt"]
        outputs = ["b.txt"]
        cmd = "test $? -eq 0 && echo $(date +%Y) >/dev/null && exit 3"
        """
    )
    project.write("in.txt", "x\n")
    result = project.run("build", "-k", "a.txt", "b.txt")
    assert result.rc == 1, result
    assert (
        "weave: FAILED a a.txt: exited with code 1; the command holds make's $(FLAGS), $^, $@, which the shell"
        " does not know: weave writes {vars.FLAGS} for $(FLAGS), {inputs} for $^, {outputs} for $@"
    ) in result.err, result
    # The shell's own $? and a lower-case $(command) are not make's: no note.
    assert "weave: FAILED b b.txt: exited with code 3\n" in result.err, result


@pytest.mark.parametrize(
    "body, fragments",
    [
        ('outputs = ["o.txt"]\ncmd = ["echo a > o.txt", 3]', ["key 'cmd'", "the list holds an integer, 3"]),
        (
            'outputs = ["o.txt"]\ncmd = "echo a > o.txt"\nparams = { n = 1 }',
            ["key 'params': unknown key", "top-level [vars] table and write {vars.NAME}"],
        ),
        (
            'inputs = ["%.c"]\noutputs = ["%.o"]\ncmd = "cc -c {inputs} -o {outputs}"',
            ["missing source '%.c'", "make's % is written as a named wildcard", 'outputs = ["{name}.o"]'],
        ),
    ],
)
def test_snakemake_and_make_habits_get_weaves_spelling(project, body, fragments):
    project.weavefile(f"[rules.a]\n{body}\n")
    assert_user_error(project.run("build"), *fragments)


def test_a_missing_source_is_never_told_to_be_its_readers_own_output_on_disk(project):
    project.weavefile('[rules.a]\ninputs = ["o.tx"]\noutputs = ["o.txt"]\ncmd = "cp {inputs} {outputs}"\n')
    project.write("o.txt", "left from an earlier version\n")
    result = project.run("build")
    assert_user_error(result, "missing source 'o.tx'")
    assert "did you mean" not in result.err, result
    project.write("o.txx", "a file beside it\n")
    assert_user_error(project.run("build"), "missing source 'o.tx'", "did you mean 'o.txx'?")


def test_a_make_percent_in_an_output_is_named_when_its_target_is_asked_for(project):
    """`outputs = ["out/%.txt"]` names a file with a '%' in weave: asking for out/in.txt said
    only "did you mean 'out/%.txt'?"; it now says how weave writes make's pattern."""
    project.weavefile('[rules.x]\ninputs = ["in/%.txt"]\noutputs = ["out/%.txt"]\ncmd = "cp $< $@"\n')
    assert_user_error(
        project.run("build", "out/in.txt"),
        "no rule makes 'out/in.txt'",
        "rule 'x' writes its output as 'out/%.txt', a file named with a '%': make's % is a named wildcard in weave",
    )


def test_a_pattern_rule_named_in_an_alias_is_reported_at_the_alias(project):
    """It was blamed on `default` ('in default, ./Weavefile:1'), or said nowhere at all when
    the alias was the target, without naming the alias or its line."""
    project.weavefile(
        """
        default = ["all"]
        [rules.p]
        inputs = ["raw/{s}.txt"]
        outputs = ["o/{s}.txt"]
        cmd = "cp {inputs} {outputs}"
        [rules.all]
        inputs = ["p"]
        """
    )
    for args in (("plan",), ("plan", "all"), ("build",)):
        assert_user_error(
            project.run(*args), "Weavefile:8: rule 'all', key 'inputs': names rule 'p': rule 'p' has wildcards"
        )

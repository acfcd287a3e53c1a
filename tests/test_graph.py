"""Unit tests of graph.py: pattern matching, foreach, globs, aliases, rendering and cycles."""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Sequence

import pytest

from weavebuild.errors import CycleError, ManifestError, UsageError
from weavebuild.graph import Resolver, build_graph, recipe_digest, recipe_of
from weavebuild.manifest import parse_manifest


def manifest_in(root: Path, text: str):
    return parse_manifest(textwrap.dedent(text), path=str(root / "Weavefile"))


def graph_of(root: Path, text: str, targets: Sequence[str] = ()):
    return build_graph(manifest_in(root, text), targets)


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def keys(graph) -> list:
    return [job.key for job in graph.jobs]


# -- static rules and order --------------------------------------------------------------------


def test_static_chain_in_topological_order(tmp_path):
    touch(tmp_path, "src.txt")
    graph = graph_of(
        tmp_path,
        """
        [rules.c]
        inputs = ["b.txt"]
        outputs = ["c.txt"]
        cmd = "cp {inputs} {outputs}"
        [rules.b]
        inputs = ["a.txt"]
        outputs = ["b.txt"]
        cmd = "cp {inputs} {outputs}"
        [rules.a]
        inputs = ["src.txt"]
        outputs = ["a.txt"]
        cmd = "cp {inputs} {outputs}"
        """,
    )
    assert keys(graph) == ["a", "b", "c"]  # default target: the first rule
    assert graph.requested == ["c"]
    assert [job.key for job in graph.targets] == ["c"]
    a, b, c = graph.jobs
    assert c.deps == [b] and b.deps == [a] and a.deps == []
    assert a.dependents == [b] and b.dependents == [c] and c.dependents == []
    assert graph.producers == {"a.txt": a, "b.txt": b, "c.txt": c}
    assert graph.sources == {"src.txt": [a]}
    assert c.cmd == "cp b.txt c.txt"
    assert c.display == "c c.txt"
    assert len(graph) == 3
    assert graph.job("b") is b
    with pytest.raises(KeyError):
        graph.job("zz")


def test_many_pattern_rules_each_path_finds_its_maker(tmp_path):
    """With more than 32 pattern rules, only those whose literal start lies in a directory
    holding the path are tried (4,000 rules made resolution try 16M regexes); the answers are
    the ones trying them all gives: a rule per directory, the most specific of those that
    match (`out/p3/{x}.o` over a catch-all `{x}.o`), a pattern starting with a wildcard or
    with a literal brace, and a constrained wildcard spanning directories."""
    rules = "".join(
        f'[rules.p{k}]\ninputs = ["s/{{x}}.txt"]\noutputs = ["out/p{k}/{{x}}.o"]\ncmd = "cp {{inputs}} {{outputs}}"\n'
        for k in range(40)
    )
    rules += '[rules.any]\ninputs = ["s/{x}.txt"]\noutputs = ["{x}.o"]\ncmd = "cp {inputs} {outputs}"\n'
    rules += '[rules.brace]\ninputs = ["s/{x}.txt"]\noutputs = ["b{{r}}/{x}.o"]\ncmd = "cp {inputs} {outputs}"\n'
    rules += (
        '[rules.deep]\ninputs = ["s/a.txt"]\noutputs = ["tree/{p}.d"]\nwildcards = { p = ".+" }\n'
        'cmd = "cp {inputs} {outputs}"\n'
    )
    touch(tmp_path, "s/a.txt", "s/b.txt")
    targets = ["out/p3/a.o", "out/p39/b.o", "a.o", "b{r}/b.o", "tree/x/y/z.d", "out/p7/a.o"]
    graph = graph_of(tmp_path, rules, targets)
    assert [job.key for job in graph.targets] == [
        "p3[x=a]", "p39[x=b]", "any[x=a]", "brace[x=b]", "deep[p=x/y/z]", "p7[x=a]"
    ]


def test_job_recipe_is_set_and_matches_recipe_digest(tmp_path):
    graph = graph_of(
        tmp_path,
        """
        [vars]
        n = 3
        [rules.a]
        outputs = ["a/"]
        cmd = "mkdir -p a # {vars.n}"
        env = { X = "1" }
        """,
    )
    job = graph.jobs[0]
    assert job.recipe is not None and len(job.recipe) == 32
    assert job.recipe == recipe_digest(job)
    assert recipe_of(job) == {
        "cmd": "mkdir -p a # 3",
        "env": {"X": "1"},
        "vars": {"n": 3},
        "outputs": ["a/"],
    }
    assert job.outputs == ["a"] and job.dir_outputs == (True,)
    assert job.display == "a a/"


def test_recipe_digest_differs_with_each_part(tmp_path):
    base = """
        [vars]
        n = 3
        [rules.a]
        outputs = ["a"]
        cmd = "x {vars.n}"
        env = { X = "1" }
    """
    digests = {
        graph_of(tmp_path, text).jobs[0].recipe
        for text in (
            base,
            base.replace('cmd = "x', 'cmd = "y'),
            base.replace("n = 3", "n = 4"),
            base.replace('X = "1"', 'X = "2"'),
            base.replace('outputs = ["a"]', 'outputs = ["b"]'),
            base.replace('outputs = ["a"]', 'outputs = ["a/"]'),
        )
    }
    assert len(digests) == 6


def test_missing_source_error(tmp_path):
    manifest = manifest_in(
        tmp_path,
        """
        [rules.a]
        inputs = ["nope.txt"]
        outputs = ["a"]
        cmd = "x"
        """,
    )
    with pytest.raises(UsageError, match="missing source 'nope.txt' needed by rule 'a'$"):
        build_graph(manifest, ["a"])


def test_unknown_target_suggests_close_name(tmp_path):
    manifest = manifest_in(
        tmp_path,
        """
        [rules.a]
        outputs = ["report.html"]
        cmd = "x"
        """,
    )
    with pytest.raises(
        UsageError, match="no rule makes 'report.htm' and it does not exist"
    ) as info:
        build_graph(manifest, ["report.htm"])
    assert info.value.hint == "did you mean 'report.html'?"


def test_existing_source_target_has_no_jobs(tmp_path):
    touch(tmp_path, "data.csv")
    manifest = manifest_in(
        tmp_path,
        """
        [rules.a]
        outputs = ["a"]
        cmd = "x"
        """,
    )
    assert build_graph(manifest, ["data.csv"]).jobs == []


def test_target_outside_project(tmp_path):
    manifest = manifest_in(tmp_path, '[rules.a]\noutputs = ["a"]\ncmd = "x"\n')
    with pytest.raises(UsageError, match="target '../a' is outside the project directory"):
        build_graph(manifest, ["../a"])


def test_a_target_spelled_through_the_project_directorys_parent_is_the_project_path(tmp_path):
    """`../proj/a` from inside proj is a (as `/…/proj/a` already was); it was refused as
    outside the project."""
    manifest = manifest_in(tmp_path, '[rules.a]\noutputs = ["a"]\ncmd = "x"\n')
    graph = build_graph(manifest, [f"../{tmp_path.name}/a"])
    assert [job.key for job in graph.targets] == ["a"]
    with pytest.raises(UsageError, match=f"target '../{tmp_path.name}x/a' is outside the project directory"):
        build_graph(manifest, [f"../{tmp_path.name}x/a"])


def test_absolute_target_outside_project_is_refused_as_relative_ones_are(tmp_path):
    outside = tmp_path / "outside.txt"
    touch(tmp_path, "outside.txt")
    (tmp_path / "p").mkdir()
    manifest = manifest_in(tmp_path / "p", '[rules.a]\noutputs = ["a"]\ncmd = "x"\n')
    for target in (str(outside), str(tmp_path / "missing")):  # existing or not, as for '../x'
        with pytest.raises(UsageError, match="is outside the project directory"):
            build_graph(manifest, [target])


def test_directory_target_builds_every_output_under_it(tmp_path):
    """`weave build out/` (or `out`): the jobs of every known output under the directory; a
    source directory has none."""
    touch(tmp_path, "src/x.txt")
    manifest = manifest_in(
        tmp_path,
        """
        [rules.each]
        outputs = ["out/{n}.txt"]
        foreach = { n = ["1", "2"] }
        cmd = "x"
        [rules.deep]
        outputs = ["out/sub/d.txt", "elsewhere.txt"]
        cmd = "x"
        [rules.other]
        outputs = ["outer.txt"]
        cmd = "x"
        """,
    )
    for target in ("out", "out/", "./out"):
        graph = build_graph(manifest, [target])
        assert sorted(job.key for job in graph.targets) == ["deep", "each[n=1]", "each[n=2]"]
    assert [job.key for job in build_graph(manifest, ["out/sub"]).targets] == ["deep"]
    assert build_graph(manifest, ["src"]).jobs == []


def test_directory_target_includes_what_pattern_rules_make_for_the_defaults(tmp_path):
    """A pattern rule's outputs are known from the jobs that read them: `weave build clean/`
    names the jobs the default targets need under clean/ (not only exact outputs), and a
    default that is itself the directory does not loop."""
    touch(tmp_path, "raw/a.txt", "raw/b.txt")
    text = """
        default = ["merged.txt"]
        [rules.clean]
        inputs = ["raw/{s}.txt"]
        outputs = ["clean/{s}.txt"]
        cmd = "x"
        [rules.fixed]
        outputs = ["clean/fixed.txt"]
        cmd = "x"
        [rules.merge]
        inputs = ["clean/{s}.txt"]
        outputs = ["merged.txt"]
        foreach = { s = "raw/{s}.txt" }
        cmd = "x"
        """
    manifest = manifest_in(tmp_path, text)
    graph = build_graph(manifest, ["clean/"])
    assert sorted(job.key for job in graph.targets) == ["clean[s=a]", "clean[s=b]", "fixed"]
    assert "merged.txt" not in [output for job in graph.jobs for output in job.outputs]
    assert sorted(graph.wanted) == ["clean/a.txt", "clean/b.txt", "clean/fixed.txt"]
    looping = manifest_in(tmp_path, text.replace('default = ["merged.txt"]', 'default = ["clean/"]'))
    assert sorted(job.key for job in build_graph(looping, ["clean/"]).targets) == ["fixed"]
    # The defaults do not resolve (a missing source): the exact outputs are still known.
    (tmp_path / "raw" / "a.txt").unlink()
    (tmp_path / "raw" / "b.txt").unlink()
    broken = manifest_in(tmp_path, text.replace('foreach = { s = "raw/{s}.txt" }', 'foreach = { s = ["a"] }'))
    assert [job.key for job in build_graph(broken, ["clean/"]).targets] == ["fixed"]


def test_foreach_and_globs_count_what_other_rules_make_as_there(tmp_path):
    """A foreach over another rule's outputs, or a glob matching one, gives its values in the
    first build as in every later one (the files need not exist yet): one build converges.
    Hidden names stay out of a glob, as the glob module leaves them; a rule's foreach over its
    own output is a cycle at once (it was one from the second build on)."""
    touch(tmp_path, "raw/a.txt", "raw/b.txt", "data/x.csv")
    text = """
        [rules.copy]
        inputs = ["raw/{s}.txt"]
        outputs = ["out/{s}.txt"]
        foreach = { s = "raw/{s}.txt" }
        cmd = "x"
        [rules.gen]
        outputs = ["data/gen.csv", "data/.hidden.csv"]
        cmd = "x"
        [rules.merge]
        inputs = ["out/{s}.txt"]
        outputs = ["merged.txt"]
        foreach = { s = "out/{s}.txt" }
        cmd = "x"
        [rules.tables]
        inputs = ["data/*.csv", "data/**/*.csv"]
        outputs = ["tables.txt"]
        cmd = "x"
        """
    manifest = manifest_in(tmp_path, text)
    merge = build_graph(manifest, ["merged.txt"])
    assert keys(merge) == ["copy[s=a]", "copy[s=b]", "merge"]
    assert merge.targets[0].inputs == ["out/a.txt", "out/b.txt"]
    tables = build_graph(manifest, ["tables.txt"])
    assert keys(tables) == ["gen", "tables"]
    assert tables.targets[0].inputs == ["data/gen.csv", "data/x.csv", "data/gen.csv", "data/x.csv"]
    own = manifest_in(tmp_path, text.replace('outputs = ["merged.txt"]', 'outputs = ["out/merged.txt"]'))
    with pytest.raises(CycleError) as info:
        build_graph(own, ["out/merged.txt"])
    assert info.value.hint.startswith("its own output 'out/merged.txt' matches one of its input patterns")


def test_a_glob_ending_in_a_slash_counts_only_directory_outputs(tmp_path):
    manifest = manifest_in(
        tmp_path,
        """
        [rules.d]
        outputs = ["x/best/"]
        cmd = "x"
        [rules.f]
        outputs = ["x/file"]
        cmd = "x"
        [rules.n]
        inputs = ["x/*/"]
        outputs = ["n.txt"]
        cmd = "x"
        """,
    )
    graph = build_graph(manifest, ["n.txt"])
    assert graph.targets[0].inputs == ["x/best"] and keys(graph) == ["d", "n"]


def test_a_rule_name_that_is_also_an_output_path_warns(tmp_path):
    manifest = manifest_in(tmp_path, '[rules.a]\noutputs = ["b"]\ncmd = "x"\n[rules.b]\noutputs = ["a"]\ncmd = "y"\n')
    graph = build_graph(manifest, ["a"])
    assert keys(graph) == ["a"]  # the rule, as documented
    assert graph.warnings == [
        "'a' names rule 'a' and is also an output of rule 'b': building the rule; write './a' for the file"
    ]
    graph = build_graph(manifest, ["./a"])
    assert keys(graph) == ["b"] and graph.warnings == []


def test_absolute_target_inside_project(tmp_path):
    manifest = manifest_in(tmp_path, '[rules.a]\noutputs = ["sub/a"]\ncmd = "x"\n')
    graph = build_graph(manifest, [str(tmp_path / "sub" / "." / "a")])
    assert keys(graph) == ["a"]


def test_custom_exists_callable_gets_full_paths(tmp_path):
    asked = []

    def exists(path: str) -> bool:
        asked.append(path)
        return True

    manifest = manifest_in(
        tmp_path,
        """
        [rules.a]
        inputs = ["virtual.txt"]
        outputs = ["a"]
        cmd = "x"
        """,
    )
    graph = build_graph(manifest, ["a"], exists=exists)
    assert graph.sources == {"virtual.txt": [graph.jobs[0]]}
    assert asked == [str(tmp_path / "virtual.txt")]


# -- pattern rules -----------------------------------------------------------------------------

PATTERNS = """
[rules.any]
outputs = ["{x}.o"]
cmd = "any {wildcards.x}"
[rules.lib]
outputs = ["lib{x}.o"]
cmd = "lib {wildcards.x}"
[rules.main]
outputs = ["main.o"]
cmd = "main"
"""


@pytest.mark.parametrize(
    "target, key",
    [("q.o", "any[x=q]"), ("libz.o", "lib[x=z]"), ("main.o", "main"), ("lib.o", "any[x=lib]")],
)
def test_most_specific_pattern_wins(tmp_path, target, key):
    assert keys(graph_of(tmp_path, PATTERNS, [target])) == [key]


def test_pattern_job_is_shared_between_requests(tmp_path):
    graph = graph_of(tmp_path, PATTERNS, ["q.o", "./q.o", "libz.o"])
    assert keys(graph) == ["any[x=q]", "lib[x=z]"]


def test_equally_specific_patterns_of_different_rules_conflict(tmp_path):
    manifest = manifest_in(
        tmp_path,
        """
        [rules.a]
        outputs = ["{x}.o"]
        cmd = "a"
        [rules.b]
        outputs = ["{y}.o"]
        cmd = "b"
        """,
    )
    with pytest.raises(UsageError, match=r"'q.o' can be made by rules 'a' \(.*\) and 'b' \(.*\)") as info:
        build_graph(manifest, ["q.o"])
    assert "constrain the wildcards" in info.value.hint


def test_wildcard_constraints_decide_between_patterns(tmp_path):
    text = r"""
        [rules.num]
        outputs = ["{x}.o"]
        cmd = "num {wildcards.x}"
        wildcards = { x = '\d+' }
        [rules.word]
        outputs = ["{y}.o"]
        cmd = "word {wildcards.y}"
        wildcards = { y = '[a-z]+' }
    """
    assert keys(graph_of(tmp_path, text, ["12.o"])) == ["num[x=12]"]
    assert keys(graph_of(tmp_path, text, ["ab.o"])) == ["word[y=ab]"]
    with pytest.raises(UsageError, match="no rule makes 'A1.o'"):
        graph_of(tmp_path, text, ["A1.o"])


def test_anchors_in_a_constraint_are_the_values_own(tmp_path):
    """A constraint matches the whole value: `^S[0-9]+$` matched no path at all (its anchors
    were the path's), a foreach fan-in with `^(a|b)$` silently found no file, and `$` in
    `(?!main$)` (any name but main, make's filter-out) never held, so main was not left out."""
    for name in ("S1", "S22", "X1", "S1x"):
        (tmp_path / "raw").mkdir(exist_ok=True)
        (tmp_path / "raw" / f"{name}.txt").write_text(name)
    for name in ("a", "b", "main", "mainloop"):
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / f"{name}.c").write_text(name)
    text = r"""
        [rules.trim]
        inputs = ["raw/{sample}.txt"]
        outputs = ["trimmed/{sample}.txt"]
        cmd = "cp {inputs} {outputs}"
        wildcards = { sample = '^S[0-9]+$' }
        [rules.lib]
        inputs = ["src/{name}.c"]
        foreach = { name = "src/{name}.c" }
        outputs = ["lib.txt"]
        cmd = "cat {inputs} > {outputs}"
        wildcards = { name = '(?!main$)[^/]+' }
        [rules.ab]
        inputs = ["src/{name}.c"]
        foreach = { name = "src/{name}.c" }
        outputs = ["ab.txt"]
        cmd = "cat {inputs} > {outputs}"
        wildcards = { name = '^(a|b)$' }
    """
    assert keys(graph_of(tmp_path, text, ["trimmed/S1.txt"])) == ["trim[sample=S1]"]
    for path in ("trimmed/X1.txt", "trimmed/S1x.txt"):
        with pytest.raises(UsageError, match="no rule makes"):
            graph_of(tmp_path, text, [path])
    assert graph_of(tmp_path, text, ["lib.txt"]).jobs[0].inputs == ["src/a.c", "src/b.c", "src/mainloop.c"]
    assert graph_of(tmp_path, text, ["ab.txt"]).jobs[0].inputs == ["src/a.c", "src/b.c"]


def test_constraint_with_group_still_matches(tmp_path):
    text = r"""
        [rules.a]
        outputs = ["run{n}/{split}.txt"]
        cmd = "x {wildcards.n} {wildcards.split}"
        wildcards = { n = '(\d)+', split = '(train|test)' }
    """
    graph = graph_of(tmp_path, text, ["run42/test.txt"])
    assert graph.jobs[0].wildcards == {"n": "42", "split": "test"}
    with pytest.raises(UsageError):
        graph_of(tmp_path, text, ["run42/valid.txt"])


def test_default_wildcard_does_not_cross_directories(tmp_path):
    text = """
        [rules.a]
        outputs = ["out/{x}.txt"]
        cmd = "x"
    """
    with pytest.raises(UsageError, match="no rule makes 'out/a/b.txt'"):
        graph_of(tmp_path, text, ["out/a/b.txt"])
    slash = text + "wildcards = { x = '.+' }\n"
    assert graph_of(tmp_path, slash, ["out/a/b.txt"]).jobs[0].wildcards == {"x": "a/b"}


def test_repeated_wildcard_must_match_the_same_value(tmp_path):
    text = """
        [rules.a]
        outputs = ["{x}/{x}.txt"]
        cmd = "x"
    """
    assert keys(graph_of(tmp_path, text, ["d/d.txt"])) == ["a[x=d]"]
    with pytest.raises(UsageError):
        graph_of(tmp_path, text, ["d/e.txt"])


def test_pattern_chain_with_inputs(tmp_path):
    touch(tmp_path, "src/m.c")
    graph = graph_of(
        tmp_path,
        """
        [rules.link]
        inputs = ["obj/{name}.o"]
        outputs = ["bin/{name}"]
        cmd = "ld {inputs} -o {outputs}"
        [rules.compile]
        inputs = ["src/{name}.c"]
        outputs = ["obj/{name}.o"]
        cmd = "cc -c {inputs} -o {outputs}"
        """,
        ["bin/m"],
    )
    assert keys(graph) == ["compile[name=m]", "link[name=m]"]
    assert graph.jobs[1].cmd == "ld obj/m.o -o bin/m"
    assert graph.sources == {"src/m.c": [graph.jobs[0]]}


def test_pattern_rule_is_not_used_twice_in_one_chain(tmp_path):
    text = """
        [rules.gz]
        inputs = ["{x}.txt"]
        outputs = ["{x}.txt.gz"]
        cmd = "gzip -c {inputs} > {outputs}"
    """
    # a.txt.gz.txt could be made by gz from a.txt.gz.txt... but not within gz's own chain.
    with pytest.raises(UsageError, match="missing source 'a.txt.gz.txt' needed by rule 'gz'"):
        graph_of(tmp_path, text, ["a.txt.gz.txt.gz"])
    touch(tmp_path, "a.txt.gz.txt")
    graph = graph_of(tmp_path, text, ["a.txt.gz.txt.gz"])
    assert keys(graph) == ["gz[x=a.txt.gz]"]


def test_same_pattern_rule_usable_in_separate_chains(tmp_path):
    touch(tmp_path, "a.txt", "b.txt")
    graph = graph_of(
        tmp_path,
        """
        [rules.both]
        inputs = ["a.txt.gz", "b.txt.gz"]
        outputs = ["both"]
        cmd = "cat {inputs} > {outputs}"
        [rules.gz]
        inputs = ["{x}.txt"]
        outputs = ["{x}.txt.gz"]
        cmd = "gzip -c {inputs} > {outputs}"
        """,
        ["both"],
    )
    assert keys(graph) == ["gz[x=a]", "gz[x=b]", "both"]


def test_rule_with_wildcards_cannot_be_named(tmp_path):
    with pytest.raises(
        UsageError, match="rule 'any' has wildcards; name one of its outputs"
    ) as info:
        graph_of(tmp_path, PATTERNS, ["any"])
    assert info.value.hint == (
        "e.g. {x}.o, with its wildcards filled in; `weave build -R any` reruns every job of it that the targets need"
    )


def test_source_outside_the_project_is_not_matched_by_a_permissive_pattern(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    touch(tmp_path, "shared.h")
    touch(root, "src/m.c")
    manifest = manifest_in(
        root,
        """
        [rules.obj]
        inputs = ["src/{x}.c", "../shared.h"]
        outputs = ["obj/{x}.o"]
        cmd = "cc"
        [rules.gen]
        outputs = ["{path}.h"]
        cmd = "gen > {outputs}"
        wildcards = { path = '.+' }
        """,
    )
    graph = build_graph(manifest, ["obj/m.o"])
    assert keys(graph) == ["obj[x=m]"]
    assert "../shared.h" in graph.sources


def test_source_outside_the_project_with_a_strict_pattern(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    touch(tmp_path, "shared.h")
    manifest = manifest_in(
        root,
        """
        [rules.obj]
        inputs = ["../shared.h"]
        outputs = ["obj.o"]
        cmd = "cc"
        [rules.gen]
        outputs = ["{path}.h"]
        cmd = "gen > {outputs}"
        """,
    )
    graph = build_graph(manifest, ["obj.o"])
    assert keys(graph) == ["obj"]
    assert "../shared.h" in graph.sources


def test_command_only_rule_is_one_job(tmp_path):
    graph = graph_of(
        tmp_path,
        """
        [rules.lint]
        cmd = "ruff check {rule}"
        """,
        ["lint"],
    )
    assert keys(graph) == ["lint"]
    job = graph.jobs[0]
    assert job.outputs == [] and job.cmd == "ruff check lint"
    assert job.display == "lint"


# -- foreach, globs and directories ------------------------------------------------------------

FOREACH = """
[rules.all]
inputs = ["report.txt", "per"]
[rules.report]
foreach = { s = "raw/{s}.txt" }
inputs = ["out/{s}.o"]
outputs = ["report.txt"]
cmd = "cat {inputs} > {outputs} # {wildcards.s}"
[rules.per]
foreach = { s = "raw/{s}.txt" }
inputs = ["raw/{s}.txt"]
outputs = ["out/{s}.o"]
cmd = "cp {inputs} {outputs} # {wildcards.s}"
"""


def test_foreach_in_outputs_generates_jobs_and_in_inputs_aggregates(tmp_path):
    touch(tmp_path, "raw/a.txt", "raw/b.txt", "raw/c d.txt", "raw/skip.csv")
    graph = graph_of(tmp_path, FOREACH, ["all"])
    assert keys(graph) == ["per[s=a]", "per[s=b]", "per[s=c d]", "report"]
    report = graph.job("report")
    assert report.inputs == ["out/a.o", "out/b.o", "out/c d.o"]
    assert [d.key for d in report.deps] == ["per[s=a]", "per[s=b]", "per[s=c d]"]
    # {wildcards.s} of the aggregated key: every value, space-joined and quoted.
    assert report.cmd == "cat out/a.o out/b.o 'out/c d.o' > report.txt # a b 'c d'"
    per = graph.job("per[s=c d]")
    assert per.wildcards == {"s": "c d"}
    assert per.cmd == "cp 'raw/c d.txt' 'out/c d.o' # 'c d'"
    assert per.display == "per out/c d.o"
    assert [job.key for job in graph.targets] == ["report", "per[s=a]", "per[s=b]", "per[s=c d]"]


def test_naming_a_foreach_rule_builds_all_its_jobs(tmp_path):
    touch(tmp_path, "raw/a.txt", "raw/b.txt")
    graph = graph_of(tmp_path, FOREACH, ["per"])
    assert keys(graph) == ["per[s=a]", "per[s=b]"]


def test_foreach_output_of_a_value_not_found_is_not_made(tmp_path):
    touch(tmp_path, "raw/a.txt")
    with pytest.raises(UsageError, match="no rule makes 'out/zz.o'"):
        graph_of(tmp_path, FOREACH, ["out/zz.o"])


def test_foreach_with_a_constraint_spanning_directories_finds_nested_files(tmp_path):
    """`wildcards = { name = ".+" }` lets a foreach value span directories, as it does for a
    requested path: the scan reaches into subdirectories, and the constraint still filters."""
    touch(tmp_path, "src/top.in", "src/a/b/k.in", "src/a/skip.txt", "other/z.in")
    rule = """
        [rules.count]
        inputs = ["src/{name}.in"]
        outputs = ["count.txt"]
        foreach = { name = "src/{name}.in" }
        wildcards = { name = "%s" }
        cmd = "x"
        """
    assert graph_of(tmp_path, rule % ".+", ["count"]).job("count").inputs == ["src/a/b/k.in", "src/top.in"]
    assert graph_of(tmp_path, rule % "[^/]+/.+", ["count"]).job("count").inputs == ["src/a/b/k.in"]
    assert graph_of(tmp_path, rule % "[a-z]+", ["count"]).job("count").inputs == ["src/top.in"]


def test_foreach_pattern_matches_directories_too_and_a_trailing_slash_only_them(tmp_path):
    touch(tmp_path, "in/a.txt", "in/sub/x")
    (tmp_path / "in" / "empty").mkdir()
    graph = graph_of(
        tmp_path,
        """
        [rules.paths]
        foreach = { x = "in/{x}" }
        outputs = ["p/{x}"]
        cmd = "touch {outputs}"
        [rules.dirs]
        foreach = { x = "in/{x}/" }
        outputs = ["d/{x}"]
        cmd = "touch {outputs}"
        """,
        ["paths", "dirs"],
    )
    assert keys(graph) == ["paths[x=a.txt]", "paths[x=empty]", "paths[x=sub]", "dirs[x=empty]", "dirs[x=sub]"]


def test_foreach_list_and_product(tmp_path):
    graph = graph_of(
        tmp_path,
        """
        [rules.grid]
        foreach = { lr = [1, 2], seed = ["x", "y"] }
        outputs = ["runs/{lr}-{seed}.json"]
        cmd = "train --lr {wildcards.lr} --seed {wildcards.seed}"
        [rules.summary]
        foreach = { lr = [1, 2], seed = ["x", "y"] }
        inputs = ["runs/{lr}-{seed}.json"]
        outputs = ["summary.csv"]
        cmd = "cat {inputs} {wildcards.seed}"
        """,
        ["summary.csv"],
    )
    summary = graph.job("summary")
    assert summary.inputs == ["runs/1-x.json", "runs/1-y.json", "runs/2-x.json", "runs/2-y.json"]
    assert summary.cmd.endswith(" x y")
    assert len(graph) == 5
    assert graph.job("grid[lr=2,seed=y]").cmd == "train --lr 2 --seed y"


def test_foreach_mixed_with_pattern_wildcard(tmp_path):
    # `s` comes from foreach, `model` from the requested path: one job per model.
    graph = graph_of(
        tmp_path,
        """
        [rules.eval]
        foreach = { s = ["1", "2"] }
        outputs = ["eval/{model}/{s}.json"]
        cmd = "eval {wildcards.model} {wildcards.s}"
        """,
        ["eval/big/2.json"],
    )
    assert keys(graph) == ["eval[model=big,s=2]"]


def test_foreach_generated_output_conflicting_with_a_static_output(tmp_path):
    manifest = manifest_in(
        tmp_path,
        """
        [rules.static]
        outputs = ["out/a.o"]
        cmd = "x"
        [rules.gen]
        foreach = { s = ["a", "b"] }
        outputs = ["out/{s}.o"]
        cmd = "y"
        """,
    )
    with pytest.raises(
        ManifestError, match="output 'out/a.o' is also produced by rule 'static'"
    ) as info:
        build_graph(manifest, ["static"])
    assert (info.value.rule, info.value.key, info.value.line) == ("gen", "outputs", 5)


def test_foreach_value_with_dotdot_is_refused(tmp_path):
    """A literal list is checked when the Weavefile loads (with its line); values a glob
    finds are checked when the graph is built."""
    with pytest.raises(ManifestError, match="Weavefile:3: .*foreach value 'a/../..' for 's' contains '..'"):
        manifest_in(
            tmp_path,
            """
            [rules.gen]
            foreach = { s = ["ok", "a/../.."] }
            outputs = ["out/{s}.o"]
            cmd = "y"
            """,
        )


def test_glob_characters_in_wildcard_values_are_literal(tmp_path):
    """A value such as `s[1]` or `a*b` (a file name) fills an input pattern as it is: the path
    is not re-read as a glob (which matched another file, or nothing, and ran the job without
    the input); in a glob the user wrote, a value's glob characters match only themselves."""
    touch(tmp_path, "raw/s1.txt", "raw/s[1].txt", "raw/a*b.txt", "data/s[1]/x.csv", "data/s1/y.csv")
    graph = graph_of(
        tmp_path,
        """
        [rules.upper]
        inputs = ["raw/{s}.txt"]
        outputs = ["up/{s}.txt"]
        foreach = { s = "raw/{s}.txt" }
        cmd = "x"
        [rules.twice]
        inputs = ["up/{s}.txt"]
        outputs = ["up2/{s}.txt"]
        cmd = "y"
        [rules.merge]
        inputs = ["up/{s}.txt"]
        outputs = ["merged.txt"]
        foreach = { s = "raw/{s}.txt" }
        cmd = "z"
        [rules.tables]
        inputs = ["data/{s}/*.csv"]
        outputs = ["tables/{s}.txt"]
        cmd = "w"
        """,
        ["up2/s[1].txt", "merged.txt", "tables/s[1].txt"],
    )
    assert graph.job("twice[s=s[1]]").inputs == ["up/s[1].txt"]
    assert graph.producers["up/s[1].txt"] is graph.job("upper[s=s[1]]")
    assert graph.job("merge").inputs == ["up/a*b.txt", "up/s1.txt", "up/s[1].txt"]
    assert graph.job("tables[s=s[1]]").inputs == ["data/s[1]/x.csv"]
    assert not graph.warnings


def test_a_pattern_output_inside_a_directory_output_is_refused(tmp_path):
    """The Weavefile's check refuses written outputs inside a directory output; an output that
    a wildcard value puts there is refused when the graph is built."""
    manifest = manifest_in(
        tmp_path,
        """
        [rules.all]
        inputs = ["model/", "model/card.md"]
        [rules.m]
        outputs = ["model/"]
        cmd = "mkdir -p model"
        [rules.card]
        outputs = ["{d}/card.md"]
        cmd = "echo > {outputs}"
        """,
    )
    with pytest.raises(UsageError, match="output 'model/card.md' of rule 'card' is inside directory output 'model/' of rule 'm'"):
        build_graph(manifest, ["all"])


def test_a_pattern_output_inside_another_jobs_file_output_is_refused(tmp_path):
    """`o/d` a file made by one job, `o/d/e` by another: one of them cannot be made; said when
    the wildcard values are known, before anything runs."""
    manifest = manifest_in(
        tmp_path,
        """
        [rules.all]
        inputs = ["o/d", "o/d/e"]
        [rules.a]
        outputs = ["o/{x}"]
        cmd = "echo > {outputs}"
        [rules.b]
        outputs = ["o/{x}/{y}"]
        cmd = "echo > {outputs}"
        """,
    )
    with pytest.raises(UsageError, match="output 'o/d/e' of b o/d/e is inside 'o/d', a file output of a o/d"):
        build_graph(manifest, ["all"])


def test_a_glob_input_never_matches_the_jobs_own_outputs(tmp_path):
    """`data/*.txt` making `data/summary.txt`: once the summary exists the glob matches it,
    which made the job its own dependency (a cycle error on every build after the first)."""
    touch(tmp_path, "data/a.txt", "data/summary.txt", "data/out/x.txt")
    graph = graph_of(
        tmp_path,
        """
        [rules.summary]
        inputs = ["data/*.txt", "data/**/*.txt"]
        outputs = ["data/summary.txt", "data/out/"]
        cmd = "x"
        """,
        ["summary"],
    )
    assert graph.job("summary").inputs == ["data/a.txt", "data/a.txt"]


def test_glob_inputs_expand_sorted_and_are_recorded(tmp_path):
    touch(tmp_path, "src/b.c", "src/a.c", "src/x.h", "src/sub/deep.c")
    manifest = manifest_in(
        tmp_path,
        """
        [rules.prog]
        inputs = { srcs = "src/*.c", none = "nothing/*.zz" }
        outputs = ["prog"]
        cmd = "cc {inputs.srcs} -o {outputs} {inputs.none}|{inputs[-1]}"
        [rules.tree]
        inputs = ["src/**/*.c"]
        outputs = ["tree"]
        cmd = "x"
        """,
    )
    resolver = Resolver(manifest)
    graph = resolver.resolve(["prog", "tree"])
    prog, tree = graph.job("prog"), graph.job("tree")
    assert prog.inputs == ["src/a.c", "src/b.c"]
    assert prog.cmd == "cc src/a.c src/b.c -o prog |src/b.c"
    assert tree.inputs == ["src/a.c", "src/b.c", "src/sub/deep.c"]
    assert ("exists", "src/*.c", False) in resolver.queries
    assert ("glob", "src/*.c", ("src/a.c", "src/b.c")) in resolver.queries
    assert ("glob", "nothing/*.zz", ()) in resolver.queries
    assert graph.sources["src/a.c"] == [prog, tree]
    assert graph.warnings == [
        "rule 'prog': input glob 'nothing/*.zz' matches no file "
        "(globs see existing files and other rules' exact outputs; for a pattern rule's outputs, use a foreach over the sources they are made from)"
    ]


def test_the_empty_globs_of_a_pattern_rules_jobs_are_one_warning(tmp_path):
    """5,000 jobs whose glob matches nothing yet printed 5,000 warnings: one line per rule."""
    touch(tmp_path, "work/s0/raw/a.csv")
    graph = graph_of(
        tmp_path,
        """
        [rules.use]
        inputs  = ["work/{s}/raw/*.csv"]
        outputs = ["res/{s}.txt"]
        foreach = { s = ["s0", "s1", "s2", "s3"] }
        cmd     = "cat /dev/null {inputs} > {outputs}"
        """,
        ["use"],
    )
    assert graph.warnings == [
        "rule 'use': input glob 'work/s1/raw/*.csv' matches no file (and 2 more of its jobs' globs) "
        "(globs see existing files and other rules' exact outputs; for a pattern rule's outputs, use a foreach over the sources they are made from)"
    ]


def test_file_literally_named_like_a_glob_is_used_as_is(tmp_path):
    touch(tmp_path, "odd[1].txt", "odd1.txt")
    manifest = manifest_in(
        tmp_path,
        """
        [rules.a]
        inputs = ["odd[1].txt"]
        outputs = ["a"]
        cmd = "cat {inputs}"
        """,
    )
    resolver = Resolver(manifest)
    graph = resolver.resolve(["a"])
    assert graph.jobs[0].inputs == ["odd[1].txt"]
    assert graph.jobs[0].cmd == "cat 'odd[1].txt'"
    assert resolver.queries == [("exists", "odd[1].txt", True)]


def test_glob_index_out_of_range_at_render_time(tmp_path):
    touch(tmp_path, "src/a.c")
    manifest = manifest_in(
        tmp_path,
        """
        [rules.a]
        inputs = ["src/*.c"]
        outputs = ["a"]
        cmd = "cc {inputs[1]}"
        """,
    )
    with pytest.raises(
        ManifestError, match=r"'\{inputs\[1\]\}' is out of range: job a has 1 inputs"
    ):
        build_graph(manifest, ["a"])


def test_foreach_queries_are_recorded(tmp_path):
    touch(tmp_path, "raw/a.txt")
    resolver = Resolver(manifest_in(tmp_path, FOREACH))
    resolver.resolve(["report.txt"])
    # (kind, keys, pattern, constraints, the job's own wildcards filled in, answer)
    assert ("foreach", ("s",), "raw/{s}.txt", (("s", "[^/]+"),), (), (("a",),)) in resolver.queries


def test_inputs_inside_directory_outputs(tmp_path):
    graph = graph_of(
        tmp_path,
        """
        [rules.use]
        inputs = ["gen/sub/x.txt", "pdir/7/file"]
        outputs = ["use"]
        cmd = "x"
        [rules.gen]
        outputs = ["gen/"]
        cmd = "mkdir -p gen/sub"
        [rules.pdir]
        outputs = ["pdir/{n}/"]
        cmd = "mkdir -p {outputs}"
        """,
        ["use"],
    )
    assert keys(graph) == ["gen", "pdir[n=7]", "use"]
    assert graph.job("pdir[n=7]").cmd == "mkdir -p pdir/7"
    assert graph.producers["gen/sub/x.txt"] is graph.job("gen")


# -- aliases -----------------------------------------------------------------------------------


def test_alias_names_paths_and_rules(tmp_path):
    touch(tmp_path, "raw/a.txt", "README")
    graph = graph_of(
        tmp_path,
        """
        [rules.all]
        inputs = ["report.txt", "per", "README", "lint"]
        [rules.report]
        outputs = ["report.txt"]
        cmd = "x"
        [rules.per]
        foreach = { s = "raw/{s}.txt" }
        inputs = ["raw/{s}.txt"]
        outputs = ["out/{s}.o"]
        cmd = "cp {inputs} {outputs}"
        [rules.lint]
        cmd = "lint"
        """,
    )
    assert graph.requested == ["all"]
    assert [job.key for job in graph.targets] == ["report", "per[s=a]", "lint"]
    assert keys(graph) == ["report", "per[s=a]", "lint"]


def test_targets_naming_the_same_jobs_twice_give_each_job_once_in_order(tmp_path):
    graph = graph_of(
        tmp_path,
        """
        [rules.per]
        foreach = { s = ["a", "b", "c"] }
        outputs = ["out/{s}.o"]
        cmd = "touch {outputs}"
        [rules.one]
        outputs = ["one.txt"]
        cmd = "touch {outputs}"
        """,
        ["out/b.o", "per", "one", "out/", "per"],
    )
    assert [job.key for job in graph.targets] == ["per[s=b]", "per[s=a]", "per[s=c]", "one"]


def test_an_alias_naming_thousands_of_rules_is_resolved_in_one_pass(tmp_path):
    # Each rule name used to scan every output of the project: 20k rules took 40 s, 30k
    # minutes. Run apart, so that a regression is stopped by the timeout.
    count = 30_000
    rules = "\n".join(f'[rules.r{i}]\noutputs = ["o/{i}.txt"]\ncmd = "touch {{outputs}}"' for i in range(count))
    names = ", ".join(f'"r{i}"' for i in range(count))
    (tmp_path / "Weavefile").write_text(f"[rules.all]\ninputs = [{names}]\n{rules}\n")
    code = (
        "from weavebuild.api import Project\n"
        "graph = Project.load('.').graph(['all'])\n"
        "print(len(graph.jobs), graph.targets[0].key, graph.targets[-1].key)\n"
    )
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [str(count), "r0", f"r{count - 1}"]


def test_alias_item_naming_a_rule_wins_over_a_file_of_that_name(tmp_path):
    touch(tmp_path, "per", "raw/a.txt")
    graph = graph_of(
        tmp_path,
        """
        [rules.all]
        inputs = ["per"]
        [rules.per]
        foreach = { s = "raw/{s}.txt" }
        inputs = ["raw/{s}.txt"]
        outputs = ["out/{s}.o"]
        cmd = "cp {inputs} {outputs}"
        """,
    )
    assert keys(graph) == ["per[s=a]"]


def test_alias_of_alias(tmp_path):
    graph = graph_of(
        tmp_path,
        """
        [rules.top]
        inputs = ["mid"]
        [rules.mid]
        inputs = ["a"]
        [rules.a]
        outputs = ["a"]
        cmd = "x"
        """,
    )
    assert keys(graph) == ["a"]


def test_alias_missing_item(tmp_path):
    manifest = manifest_in(
        tmp_path,
        """
        [rules.all]
        inputs = ["zzz"]
        [rules.a]
        outputs = ["a"]
        cmd = "x"
        """,
    )
    with pytest.raises(UsageError, match="missing source 'zzz' needed by rule 'all'"):
        build_graph(manifest, ["all"])


def test_alias_items_take_literal_braces_and_globs_as_inputs_do(tmp_path):
    """`{{`/`}}` are literal braces and a glob expands to the files it matches now, as in any
    rule's inputs; the jobs of matched outputs are built, matched sources need nothing."""
    touch(tmp_path, "data/a.csv", "data/b.csv", "out/x.o", "out/y.o")
    graph = graph_of(
        tmp_path,
        """
        [rules.all]
        inputs = ["out/{{literal}}.txt", "data/*.csv", "out/*.o"]
        [rules.brace]
        outputs = ["out/{{literal}}.txt"]
        cmd = "x"
        [rules.obj]
        outputs = ["out/{name}.o"]
        cmd = "y"
        """,
    )
    assert keys(graph) == ["brace", "obj[name=x]", "obj[name=y]"]
    assert graph.job("brace").outputs == ["out/{literal}.txt"]


def test_alias_with_foreach_expands_its_inputs(tmp_path):
    """Snakemake's `rule all: input: expand("calls/{s}.vcf", s=SAMPLES)`: an alias's input with
    wildcards names one path per foreach value (values with glob characters stay literal)."""
    touch(tmp_path, "raw/a.txt", "raw/b[1].txt", "raw/c.txt")
    weavefile = """
        [rules.all]
        inputs = ["calls/{s}.vcf", "raw/{s}.txt"]
        foreach = { s = ["a", "b[1]"] }
        [rules.every]
        inputs = ["calls/{s}.vcf"]
        foreach = { s = "raw/{s}.txt" }
        [rules.call]
        inputs = ["raw/{s}.txt"]
        outputs = ["calls/{s}.vcf"]
        cmd = "x"
        """
    graph = graph_of(tmp_path, weavefile, ["all"])
    assert keys(graph) == ["call[s=a]", "call[s=b[1]]"]
    assert graph.job("call[s=b[1]]").inputs == ["raw/b[1].txt"]
    every = graph_of(tmp_path, weavefile, ["every"])
    assert keys(every) == ["call[s=a]", "call[s=b[1]]", "call[s=c]"]


def test_alias_glob_matching_nothing_warns(tmp_path):
    graph = graph_of(tmp_path, '[rules.all]\ninputs = ["plots/*.png"]\n')
    assert keys(graph) == []
    assert any("input glob 'plots/*.png' matches no file" in warning for warning in graph.warnings)


def test_alias_naming_itself_is_a_cycle(tmp_path):
    manifest = manifest_in(tmp_path, '[rules.all]\ninputs = ["all"]\n')
    with pytest.raises(CycleError) as info:
        build_graph(manifest, ["all"])
    assert info.value.cycle == ["all", "all"]


# -- rendering ---------------------------------------------------------------------------------


def test_rendering_quotes_paths_with_spaces_and_quotes(tmp_path):
    touch(tmp_path, "we ird/it's.txt", "plain.txt")
    graph = graph_of(
        tmp_path,
        """
        [vars]
        flags = ["-O2", "-g"]
        scale = 2.0
        ratio = 0.5
        on = true
        name = "a b"
        [rules.cc]
        inputs = { odd = "we ird/it's.txt", plain = "plain.txt" }
        outputs = ["out dir/prog", "$HOME"]
        cmd = "CMD"
        """.replace(
            "CMD",
            "cc {vars.flags} {vars.scale} {vars.ratio} {vars.on} {vars.name} "
            "{inputs} {inputs.odd} {inputs[-1]} -o {outputs[0]} {outputs[1]} {rule} {cpus}",
        ),
        ["cc"],
    )
    job = graph.jobs[0]
    odd = shlex.quote("we ird/it's.txt")
    assert odd == "'we ird/it'\"'\"'s.txt'"
    assert job.cmd == (
        f"cc -O2 -g 2 0.5 true a b {odd} plain.txt {odd} plain.txt -o 'out dir/prog' '$HOME' cc 1"
    )
    assert shlex.split(job.cmd)[8:10] == ["we ird/it's.txt", "plain.txt"]
    assert job.vars == {
        "flags": ["-O2", "-g"],
        "scale": 2.0,
        "ratio": 0.5,
        "on": True,
        "name": "a b",
    }


def test_rendering_resources_and_env(tmp_path):
    graph = graph_of(
        tmp_path,
        """
        [vars]
        threads = 8
        [rules.train]
        outputs = ["model"]
        resources = { gpu = 1, mem_mb = 1500.5 }
        cpus = 3
        cmd = "train --gpus {resources.gpu} --mem {resources.mem_mb} -j {cpus}"
        env = { OMP_NUM_THREADS = "{vars.threads}", FLAG = true, OUT = "{outputs}" }
        """,
    )
    job = graph.jobs[0]
    assert job.cmd == "train --gpus 1 --mem 1500.5 -j 3"
    assert job.env == {"OMP_NUM_THREADS": "8", "FLAG": "1", "OUT": "model"}
    assert job.vars == {"threads": 8}
    assert job.cpus == 3 and job.resources == {"gpu": 1, "mem_mb": 1500.5}


def test_one_path_of_a_named_group(tmp_path):
    """Snakemake's {input.reads[0]}: an index into a named group of inputs or outputs, also
    when the group comes from a foreach (its length known per job)."""
    touch(tmp_path, "r1.fq", "r2.fq", "ref.fa", "s/a.txt", "s/b.txt")
    graph = graph_of(
        tmp_path,
        """
        [rules.align]
        inputs  = { reads = ["r1.fq", "r2.fq"], ref = "ref.fa" }
        outputs = { bam = "x.bam", log = ["x.log", "y.log"] }
        cmd     = "align {inputs.ref[0]} {inputs.reads[1]} {inputs.reads[-2]} > {outputs.bam[0]} 2> {outputs.log[-1]}"
        [rules.fan]
        inputs  = { some = "s/{n}.txt", ref = "ref.fa" }
        outputs = ["fan.txt"]
        foreach = { n = "s/{n}.txt" }
        cmd     = "cat {inputs.some[1]} > {outputs}"
        """,
        ["x.bam", "fan.txt"],
    )
    assert graph.job("align").cmd == "align ref.fa r2.fq r1.fq > x.bam 2> y.log"
    assert graph.job("fan").cmd == "cat s/b.txt > fan.txt"
    with pytest.raises(ManifestError, match=r"'\{inputs.reads\[2\]\}' is out of range: the rule has 2 inputs named 'reads'"):
        manifest_in(tmp_path, '[rules.a]\ninputs = { reads = ["x", "y"] }\noutputs = ["o"]\ncmd = "cat {inputs.reads[2]}"\n')
    with pytest.raises(ManifestError, match=r"'\{vars.x\[0\]\}' takes no index"):
        manifest_in(tmp_path, '[vars]\nx = 1\n[rules.a]\noutputs = ["o"]\ncmd = "echo {vars.x[0]}"\n')


def test_env_paths_are_not_shell_quoted(tmp_path):
    graph = graph_of(
        tmp_path,
        """
        [rules.train]
        outputs = ["out dir/model"]
        cmd = "train"
        env = { OUT = "{outputs[0]}" }
        """,
    )
    assert graph.jobs[0].env == {"OUT": "out dir/model"}


def test_escaped_braces_in_paths(tmp_path):
    graph = graph_of(
        tmp_path,
        """
        [rules.a]
        outputs = ["out/{{lit}}/{x}.txt"]
        cmd = "echo {outputs}"
        """,
        ["out/{lit}/q.txt"],
    )
    job = graph.jobs[0]
    assert job.wildcards == {"x": "q"}
    assert job.outputs == ["out/{lit}/q.txt"]


# -- cycles and size ---------------------------------------------------------------------------


def test_cycle_message_lists_jobs_in_dependency_order(tmp_path):
    text = """
        [rules.a]
        inputs = ["b.out"]
        outputs = ["a.out"]
        cmd = "a"
        [rules.b]
        inputs = ["c.out"]
        outputs = ["b.out"]
        cmd = "b"
        [rules.c]
        inputs = ["a.out"]
        outputs = ["c.out"]
        cmd = "c"
    """
    with pytest.raises(CycleError) as info:
        graph_of(tmp_path, text, ["a.out"])
    assert info.value.cycle == ["a a.out", "b b.out", "c c.out", "a a.out"]
    assert str(info.value) == "dependency cycle: a a.out -> b b.out -> c c.out -> a a.out"
    assert info.value.exit_code == 2
    with pytest.raises(CycleError) as info:
        graph_of(tmp_path, text, ["b.out"])
    assert info.value.cycle == ["b b.out", "c c.out", "a a.out", "b b.out"]


@pytest.mark.parametrize("q_first", [False, True])
def test_a_pattern_cycle_is_a_cycle_in_either_rule_order(tmp_path, q_first):
    """p makes y/{n} from y/{n}.b, q the other way round: y/a.b is q's (more literal), whose
    y/a is p's, whose y/a.b would be q's again. With p first in the file it was reported as a
    missing source (the first pattern passed over, p with n=a.b, was the one checked)."""
    p = '[rules.p]\ninputs = ["y/{n}.b"]\noutputs = ["y/{n}"]\ncmd = "true"\n'
    q = '[rules.q]\ninputs = ["y/{n}"]\noutputs = ["y/{n}.b"]\ncmd = "true"\n'
    with pytest.raises(CycleError) as info:
        graph_of(tmp_path, q + p if q_first else p + q, ["y/a.b"])
    assert info.value.cycle == ["q y/a.b", "p y/a", "q y/a.b"]


def test_cycle_below_an_acyclic_root(tmp_path):
    text = """
        [rules.top]
        inputs = ["a.out"]
        outputs = ["top"]
        cmd = "t"
        [rules.a]
        inputs = ["b.out"]
        outputs = ["a.out"]
        cmd = "a"
        [rules.b]
        inputs = ["a.out"]
        outputs = ["b.out"]
        cmd = "b"
    """
    with pytest.raises(CycleError) as info:
        graph_of(tmp_path, text, ["top"])
    assert info.value.cycle == ["a a.out", "b b.out", "a a.out"]


def test_self_cycle(tmp_path):
    with pytest.raises(CycleError) as info:
        graph_of(tmp_path, '[rules.a]\ninputs = ["a"]\noutputs = ["a"]\ncmd = "x"\n', ["a"])
    assert info.value.cycle == ["a a", "a a"]
    assert "the rules on it: 'a' (" in (info.value.hint or "") and "Weavefile:" in info.value.hint, info.value.hint


def test_diamond_shares_jobs(tmp_path):
    touch(tmp_path, "s")
    graph = graph_of(
        tmp_path,
        """
        [rules.d]
        inputs = ["b", "c"]
        outputs = ["d"]
        cmd = "x"
        [rules.b]
        inputs = ["a"]
        outputs = ["b"]
        cmd = "x"
        [rules.c]
        inputs = ["a", "a"]
        outputs = ["c"]
        cmd = "x"
        [rules.a]
        inputs = ["s"]
        outputs = ["a"]
        cmd = "x"
        """,
    )
    assert keys(graph) == ["a", "b", "c", "d"]
    a = graph.job("a")
    assert [j.key for j in a.dependents] == ["b", "c"]
    assert [j.key for j in graph.job("c").deps] == ["a"]  # a repeated input is one edge


def _chain(count: int, cyclic: bool = False) -> str:
    first = f'inputs = ["f{count - 1}"]\n' if cyclic else ""
    parts = [f'[rules.s0]\n{first}outputs = ["f0"]\ncmd = "x"\n']
    for i in range(1, count):
        parts.append(f'[rules.s{i}]\ninputs = ["f{i - 1}"]\noutputs = ["f{i}"]\ncmd = "x"\n')
    return "".join(parts)


def test_deep_chain_without_recursion(tmp_path):
    manifest = parse_manifest(_chain(5000), path=str(tmp_path / "Weavefile"))
    graph = build_graph(manifest, ["f4999"])
    assert len(graph) == 5000
    assert graph.jobs[0].key == "s0" and graph.jobs[-1].key == "s4999"
    assert graph.jobs[-1].deps == [graph.jobs[-2]]


def test_deep_cycle_without_recursion(tmp_path):
    manifest = parse_manifest(_chain(5000, cyclic=True), path=str(tmp_path / "Weavefile"))
    with pytest.raises(CycleError) as info:
        build_graph(manifest, ["f0"])
    cycle = info.value.cycle
    assert len(cycle) == 5001
    assert cycle[:3] == ["s0 f0", "s4999 f4999", "s4998 f4998"]
    assert cycle[-1] == "s0 f0"
    # The message shows its start and its way back, and locates a few rules: each is found
    # by a scan of the file, and locating all 5,000 took minutes.
    message, hint = str(info.value), info.value.hint or ""
    assert "s0 f0 -> s4999 f4999" in message and "(4,989 more) -> s1 f1 -> s0 f0" in message, message
    assert len(message) < 400, message
    assert hint.count("Weavefile:") == 8 and hint.endswith(", ..."), hint


def test_foreach_keys_read_from_one_pattern_come_in_the_pairs_that_exist(tmp_path):
    """Snakemake's glob_wildcards + expand(zip=...): sample and unit read from the same files
    give the three (sample, unit) pairs that exist, not the four of a product."""
    touch(tmp_path, "samples/A_1.txt", "samples/A_2.txt", "samples/B_1.txt")
    graph = graph_of(
        tmp_path,
        """
        [rules.merge_all]
        inputs  = ["samples/{sample}_{unit}.txt"]
        outputs = ["all.txt"]
        foreach = { sample = "samples/{sample}_{unit}.txt", unit = "samples/{sample}_{unit}.txt" }
        cmd     = "cat {inputs} > {outputs}"
        [rules.per_pair]
        outputs = ["out/{sample}-{unit}.txt"]
        foreach = { sample = "samples/{sample}_{unit}.txt", unit = "samples/{sample}_{unit}.txt" }
        cmd     = "echo {wildcards.sample} {wildcards.unit} > {outputs}"
        """,
        ["all.txt", "per_pair"],
    )
    assert graph.job("merge_all").inputs == ["samples/A_1.txt", "samples/A_2.txt", "samples/B_1.txt"]
    assert sorted(k for k in keys(graph) if k.startswith("per_pair")) == [
        "per_pair[sample=A,unit=1]",
        "per_pair[sample=A,unit=2]",
        "per_pair[sample=B,unit=1]",
    ]


def test_a_foreach_pattern_may_use_the_jobs_own_wildcards_and_other_keys(tmp_path):
    """The units of each sample: a foreach pattern that names the job's output wildcard is
    scanned for that job's value; one that names another foreach key, once per value of it."""
    touch(tmp_path, "samples/A_1.txt", "samples/A_2.txt", "samples/B_1.txt", "samples/C_9.txt")
    graph = graph_of(
        tmp_path,
        """
        [rules.all]
        inputs  = ["merged/{sample}.txt"]
        foreach = { sample = ["A", "B"] }
        [rules.merge_units]
        inputs  = ["samples/{sample}_{unit}.txt"]
        outputs = ["merged/{sample}.txt"]
        foreach = { unit = "samples/{sample}_{unit}.txt" }
        cmd     = "cat {inputs} > {outputs} # {wildcards.unit}"
        [rules.nested]
        inputs  = ["samples/{sample}_{unit}.txt"]
        outputs = ["nested.txt"]
        foreach = { sample = ["B", "A"], unit = "samples/{sample}_{unit}.txt" }
        cmd     = "cat {inputs} > {outputs}"
        """,
        ["all", "nested.txt"],
    )
    assert graph.job("merge_units[sample=A]").inputs == ["samples/A_1.txt", "samples/A_2.txt"]
    assert graph.job("merge_units[sample=A]").cmd.endswith("# 1 2")
    assert graph.job("merge_units[sample=B]").inputs == ["samples/B_1.txt"]
    assert graph.job("merge_units[sample=B]").cmd.endswith("# 1")
    # In the order of the listed samples, each with its own units; C (not listed) is left out.
    assert graph.job("nested").inputs == ["samples/B_1.txt", "samples/A_1.txt", "samples/A_2.txt"]


def test_a_bound_value_with_glob_and_brace_characters_is_matched_literally(tmp_path):
    touch(tmp_path, "samples/s[1]_a.txt", "samples/s1_b.txt", "samples/x{y}_c.txt")
    graph = graph_of(
        tmp_path,
        """
        [rules.merge_units]
        inputs  = ["samples/{sample}_{unit}.txt"]
        outputs = ["merged/{sample}.txt"]
        foreach = { unit = "samples/{sample}_{unit}.txt" }
        cmd     = "cat {inputs} > {outputs}"
        """,
        ["merged/s[1].txt", "merged/x{y}.txt"],
    )
    assert graph.job("merge_units[sample=s[1]]").inputs == ["samples/s[1]_a.txt"]
    assert graph.job("merge_units[sample=x{y}]").inputs == ["samples/x{y}_c.txt"]


def test_a_foreach_pattern_naming_a_wildcard_of_nothing_is_refused(tmp_path):
    with pytest.raises(ManifestError) as info:
        manifest_in(
            tmp_path,
            """
            [rules.merge]
            inputs  = ["samples/{unit}.txt"]
            outputs = ["merged.txt"]
            foreach = { unit = "samples/{sample}_{unit}.txt" }
            cmd     = "cat {inputs} > {outputs}"
            """,
        )
    assert "unknown wildcard 'sample'" in str(info.value)
    assert "output wildcards" in (info.value.hint or "")


def test_a_cycle_through_a_scanned_directory_output_is_refused_before_anything_runs(tmp_path):
    """g lists what split makes in chunks/ (so it will depend on split), and split needs g's
    output: a cycle, found when the graph is resolved (it was found only after split had
    run, once the directory held files)."""
    touch(tmp_path, "data.txt")
    text = """
        [rules.split]
        inputs  = ["data.txt", "g.txt"]
        outputs = ["chunks/"]
        cmd     = "mkdir -p chunks; cp data.txt chunks/a.txt"
        [rules.g]
        inputs  = ["chunks/*.txt"]
        outputs = ["g.txt"]
        cmd     = "cat /dev/null {inputs} > {outputs}"
        """
    with pytest.raises(CycleError, match=r"dependency cycle: g g.txt -> split chunks/ -> g g.txt"):
        graph_of(tmp_path, text, ["split"])
    # Reading the directory without being needed by its maker is no cycle.
    assert "split" in keys(graph_of(tmp_path, text.replace('"data.txt", "g.txt"', '"data.txt"'), ["g.txt"]))

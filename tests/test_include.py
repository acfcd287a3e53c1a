"""`include`: a Weavefile split over several files, with real weave processes in temp projects.
The included files' bytes are part of what identifies the project, so an edit to one must void
the graph cache and the no-op stamp exactly as an edit to the Weavefile does."""

from __future__ import annotations

import subprocess
import sys

from conftest import assert_user_error

MAIN = """
    include = ["rules/prep.toml", "rules/train.toml"]
    default = ["model.txt"]

    [vars]
    epochs = 3
"""

PREP = """
    [rules.prep]
    inputs = ["data.txt"]
    outputs = ["clean.txt"]
    cmd = "echo prep >> runs.log; sort {inputs} > {outputs}"
"""

TRAIN = """
    [vars]
    lr = 0.1

    [rules.train]
    inputs = ["clean.txt"]
    outputs = ["model.txt"]
    cmd = "echo train >> runs.log; echo epochs={vars.epochs} lr={vars.lr} > {outputs}; cat {inputs} >> {outputs}"
"""


def split_project(project) -> None:
    project.weavefile(MAIN)
    project.write("rules/prep.toml", PREP)
    project.write("rules/train.toml", TRAIN)
    project.write("data.txt", "b\na\n")


def imports_manifest(project, *args: str) -> bool:
    """Whether `weave build ARGS` parsed a Weavefile (imported the TOML parser) in this run."""
    process = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "weavebuild", "build", *args],
        cwd=project.root, capture_output=True, text=True, timeout=120,
    )
    assert process.returncode == 0, process.stderr
    return any(line.rstrip().endswith((" tomli", " tomllib")) for line in process.stderr.splitlines())


def test_rules_and_vars_from_included_files_build_together(project):
    split_project(project)
    first = project.run("build")
    assert first.rc == 0, first
    assert project.read("model.txt") == "epochs=3 lr=0.1\na\nb\n"
    assert project.runs_log() == ["prep", "train"]
    # A var set in an included file takes --set like any other.
    project.clear_runs()
    changed = project.run("build", "--set", "lr=0.5")
    assert changed.rc == 0 and project.runs_log() == ["train"], changed
    assert project.read("model.txt").startswith("epochs=3 lr=0.5\n")
    listing = project.run("list")
    assert "includes: rules/prep.toml rules/train.toml" in listing.out, listing
    assert "prep (rule, in rules/prep.toml)" in listing.out, listing


def test_an_edit_to_an_included_file_reruns_what_it_changed_and_nothing_else(project):
    split_project(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    # The no-op is proven from the stamp: no file is parsed (the included files' bytes are
    # read and hashed, which is how an edit to one is seen).
    assert not imports_manifest(project)
    assert project.runs_log() == []
    project.write("rules/train.toml", TRAIN.replace("lr = 0.1", "lr = 0.2"))
    again = project.run("build")
    assert again.rc == 0 and project.runs_log() == ["train"], again
    assert project.read("model.txt").startswith("epochs=3 lr=0.2\n")
    # A comment is a new version of the file (parsed once), and runs nothing.
    project.clear_runs()
    project.write("rules/prep.toml", PREP + "# a note\n")
    assert imports_manifest(project)
    assert not imports_manifest(project)
    assert project.runs_log() == []
    # A command edited in the other included file.
    project.write("rules/prep.toml", PREP.replace("sort {inputs}", "sort -r {inputs}"))
    third = project.run("build")
    assert third.rc == 0 and project.runs_log() == ["prep", "train"], third
    assert project.read("model.txt") == "epochs=3 lr=0.2\nb\na\n"


def test_nested_includes_and_a_removed_included_file(project):
    project.weavefile('include = "rules/all.toml"\n')
    project.write("rules/all.toml", 'include = ["rules/prep.toml", "rules/train.toml"]\n[vars]\nepochs = 7\n')
    project.write("rules/prep.toml", PREP)
    project.write("rules/train.toml", TRAIN)
    project.write("data.txt", "b\na\n")
    built = project.run("build", "model.txt")
    assert built.rc == 0 and project.read("model.txt").startswith("epochs=7 lr=0.1\n"), built
    # Its first rule is the default target when the Weavefile has none of its own.
    assert project.run("build").rc == 0
    assert project.run("plan").out.startswith("nothing to do"), project.run("plan")
    # A file the last good version included is gone: an error, never a stale no-op.
    (project.root / "rules/train.toml").unlink()
    gone = project.run("build", "model.txt")
    assert_user_error(gone, "rules/all.toml:1", "key 'include'", "included file 'rules/train.toml' not found")


def test_the_includes_memo_is_only_a_shortcut(project):
    split_project(project)
    assert project.run("build").rc == 0
    (project.root / ".weave/includes").write_text("{not json")
    project.write("rules/train.toml", TRAIN.replace("lr = 0.1", "lr = 0.3"))
    again = project.run("build")
    assert again.rc == 0 and project.read("model.txt").startswith("epochs=3 lr=0.3\n"), again
    assert not imports_manifest(project)  # the memo was written again


def test_a_directory_output_holding_a_file_included_through_a_symlink_is_refused(project):
    """`include = ["linked/prep.toml"]` with `linked -> rules`: a directory output `rules/`
    holds that file all the same (its job would empty the directory first)."""
    split_project(project)
    (project.root / "linked").symlink_to("rules")
    project.weavefile(MAIN.replace('"rules/prep.toml"', '"gen.toml", "linked/prep.toml"'))
    project.write("gen.toml", "[rules.g]\noutputs = ['rules/']\ncmd = 'mkdir -p rules'\n", dedent=False)
    assert_user_error(project.run("build", "rules/"), "output 'rules/' holds rules/prep.toml, a file the Weavefile includes")
    assert project.exists("rules/prep.toml")


def test_mistakes_in_included_files_name_that_file_and_line(project):
    split_project(project)
    project.write("rules/train.toml", TRAIN.replace("{vars.lr}", "{vars.nope}"))
    assert_user_error(project.run("build"), "rules/train.toml:8: rule 'train', key 'cmd'", "{vars.nope}")
    project.write("rules/train.toml", "\n[rules.prep]\noutputs = ['x']\ncmd = 'touch x'\n", dedent=False)
    assert_user_error(project.run("build"), "rules/train.toml:2: rule 'prep'", "also defined in", "rules/prep.toml:2")
    project.write("rules/train.toml", "[vars]\nepochs = 4\n", dedent=False)
    assert_user_error(project.run("build"), "rules/train.toml:2", "var 'epochs' is also set in", "Weavefile:6")
    project.write("rules/train.toml", 'default = ["x"]\n', dedent=False)
    assert_user_error(project.run("build"), "rules/train.toml:1", "key 'default'", "only in the Weavefile itself")
    project.write("rules/train.toml", "[rules.t]\noutputs = ['rules/prep.toml']\ncmd = 'true'\n", dedent=False)
    assert_user_error(project.run("build"), "rules/train.toml:2", "is a file the Weavefile includes")
    # A directory output holding an included file: its job would start by emptying it.
    project.write("rules/train.toml", "[rules.t]\noutputs = ['rules/']\ncmd = 'mkdir -p rules'\n", dedent=False)
    assert_user_error(project.run("build"), "rules/train.toml:2", "output 'rules/' holds rules/prep.toml, a file the Weavefile includes")
    project.write("rules/train.toml", "[rules.t]\noutputs = ['{d}/']\ncmd = 'mkdir -p {outputs}'\n", dedent=False)
    assert_user_error(project.run("build", "rules/"), "rule 't'", "holds rules/", "a file the Weavefile includes")
    assert project.exists("rules/prep.toml")
    project.write("rules/train.toml", "include = ['rules/prep.toml']\n", dedent=False)
    assert_user_error(project.run("build"), "rules/train.toml:1", "already included by", "Weavefile:2")
    project.write("rules/train.toml", "include = 'Weavefile'\n", dedent=False)
    assert_user_error(project.run("build"), "is the Weavefile itself")
    project.write("rules/train.toml", "[rules.t\n", dedent=False)
    assert_user_error(project.run("build"), "rules/train.toml:1:", "invalid TOML")
    project.write("rules/train.toml", TRAIN)
    for written, problem in [
        ("rules/nope.toml", "included file 'rules/nope.toml' not found"),
        ("../elsewhere.toml", "is outside the project directory"),
        ("rules/*.toml", "is a pattern"),
        ("rules", "included file 'rules' is a directory"),
    ]:
        project.weavefile(MAIN.replace("rules/train.toml", written))
        assert_user_error(project.run("build"), "Weavefile:2: key 'include'", problem)
    project.weavefile(MAIN)
    assert project.run("build").rc == 0


def test_the_word_include_in_a_command_costs_no_parse(project):
    """A Weavefile (or an included file) that says `include` without including anything, such
    as a compiler's -Iinclude, is parsed once per version, like any other."""
    project.weavefile('[rules.c]\ninputs = ["a.c"]\noutputs = ["a.o"]\ncmd = "echo cc -Iinclude -c a.c > a.o"\n')
    project.write("a.c", "int x;\n")
    assert project.run("build").rc == 0
    assert not imports_manifest(project)
    project.weavefile('include = []\n[rules.c]\ninputs = ["a.c"]\noutputs = ["a.o"]\ncmd = "echo cc -Iinclude -c a.c > a.o"\n')
    assert imports_manifest(project)
    assert not imports_manifest(project)
    project.weavefile('include = ["c.toml"]\n')
    project.write("c.toml", '[rules.c]\ninputs = ["a.c"]\noutputs = ["a.o"]\ncmd = "echo cc -Iinclude -c a.c > a.o"\n')
    assert imports_manifest(project)
    assert not imports_manifest(project)


def test_an_included_fifo_or_device_is_refused_not_read(project):
    """A FIFO as an included file blocked the read forever; a symlink to /dev/zero read until
    memory ran out. Both are named as what they are (as `-f` does)."""
    import os

    project.weavefile('include = "dev.toml"\n[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    os.symlink("/dev/zero", project.root / "dev.toml")
    for command in ("list", "build"):
        assert_user_error(project.run(command, timeout=60), "key 'include'", "included file 'dev.toml' is not a regular file")
    os.unlink(project.root / "dev.toml")
    os.mkfifo(project.root / "dev.toml")
    assert_user_error(project.run("build", timeout=60), "included file 'dev.toml' is not a regular file")
    # after a build that read a regular file there, the fast path (no parse) must not read the FIFO
    os.unlink(project.root / "dev.toml")
    project.write("dev.toml", "[vars]\nx = 1\n")
    assert project.run("build").rc == 0
    os.unlink(project.root / "dev.toml")
    os.mkfifo(project.root / "dev.toml")
    assert_user_error(project.run("build", timeout=60), "included file 'dev.toml' is not a regular file")


def test_includes_nested_too_deep_are_a_message(project):
    """A chain of 1,000 files each including the next crashed with RecursionError."""
    project.weavefile('include = "i0.toml"\n[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    for i in range(80):
        nxt = f'include = "i{i + 1}.toml"\n' if i < 79 else ""
        project.write(f"i{i}.toml", nxt + f'[rules.r{i}]\noutputs = ["o{i}"]\ncmd = "touch o{i}"\n')
    assert_user_error(project.run("list"), "i63.toml:1: key 'include'", "nest more than 64 deep")
    project.write("i40.toml", '[rules.r40]\noutputs = ["o40"]\ncmd = "touch o40"\n')  # 41 deep: fine
    assert project.run("build", "o40").rc == 0


def test_the_first_rule_message_names_the_included_file_it_is_in(project):
    project.weavefile('include = ["rules/b.toml"]\n')
    project.write("rules/b.toml", '# pattern rules\n\n[rules.first]\noutputs = ["o/{n}.txt"]\ncmd = "touch {outputs}"\n')
    result = project.run("plan")
    assert_user_error(result, "weave builds its first rule, 'first' (./rules/b.toml:3)")


SHEET_WEAVEFILE = """
    include = ["config/samples.tsv"]
    default = ["all"]

    [rules.all]
    inputs = ["trimmed/{sample}.fq"]
    foreach = { sample = "{vars.samples}" }

    [rules.trim]
    inputs = ["{vars.fq1[wildcards.sample]}"]
    outputs = ["trimmed/{sample}.fq"]
    cmd = "echo trim {wildcards.sample} >> runs.log; echo {vars.adapter[wildcards.sample]} | cat - {inputs} > {outputs}"
"""


def _trimmed(project) -> list:
    lines = project.read("runs.log").splitlines() if project.exists("runs.log") else []
    project.clear_runs()
    return sorted(lines)


def test_an_included_sample_sheet_gives_a_list_of_rows_and_a_table_var_per_column(project):
    """Snakemake reads samples.tsv with pandas; an included sheet gives the same as TOML:
    its first column a list var named after the file, each other column a table var. An
    edit of one row's entry reruns that row's jobs; a new row runs one job; a no-op reads it
    without parsing (its bytes are part of the project's digest)."""
    project.weavefile(SHEET_WEAVEFILE)
    project.write("config/samples.tsv", "sample\tfq1\tadapter\n# a comment\nA\traw/A.fq\tAGATC\n\nB \t raw/B.fq\tCTGTC\n", dedent=False)
    project.write("raw/A.fq", "a\n")
    project.write("raw/B.fq", "b\n")
    result = project.run("build")
    assert result.rc == 0, result
    assert _trimmed(project) == ["trim A", "trim B"]
    assert project.read("trimmed/B.fq") == "CTGTC\nb\n"
    assert "nothing to do" in project.run("build").out
    project.write("config/samples.tsv", project.read("config/samples.tsv").replace("CTGTC", "GGGGG"), dedent=False)
    assert "var changed: adapter[B]" in project.run("plan").out
    assert project.run("build").rc == 0 and _trimmed(project) == ["trim B"]
    project.write("raw/C.fq", "c\n")
    project.write("config/samples.tsv", project.read("config/samples.tsv") + "C\traw/C.fq\tTTTT\n", dedent=False)
    assert project.run("build").rc == 0 and _trimmed(project) == ["trim C"]
    assert "nothing to do" in project.run("build").out
    listed = project.run("list").out
    assert "includes: config/samples.tsv" in listed and 'samples = ["A", "B", "C"]' in listed, listed
    # A CSV, with quoted fields, and a row shorter than the header (its last field empty).
    project.weavefile(SHEET_WEAVEFILE.replace("samples.tsv", "samples.csv"))
    project.write("config/samples.csv", 'sample,fq1,adapter\nA,raw/A.fq,"AG,ATC"\nB,raw/B.fq\n', dedent=False)
    assert project.run("build", "trimmed/A.fq").rc == 0 and project.read("trimmed/A.fq") == "AG,ATC\na\n"
    assert project.run("build", "trimmed/B.fq").rc == 0 and project.read("trimmed/B.fq") == "\nb\n"


def test_mistakes_in_a_sample_sheet_name_its_file_and_line(project):
    project.weavefile(SHEET_WEAVEFILE)
    for sheet, where, message in (
        ("sample\tfq1\tfq1\n", "config/samples.tsv:1", "column 'fq1' is named twice"),
        ("sample\tfq 1\n", "config/samples.tsv:1", "header 'fq 1' is not a var name"),
        ("sample\tsamples\n", "config/samples.tsv:1", "column 'samples' has the sheet's own name"),
        ("sample\tfq1\nA\tx\nA\ty\n", "config/samples.tsv:3", "row 'A' is also on line 2"),
        ("sample\tfq1\nA\tx\ty\n", "config/samples.tsv:2", "this row has 3 fields, the header 2"),
        ("sample\tfq1\n\tx\n", "config/samples.tsv:2", "this row's first field is empty"),
        ("# only a comment\n", "config/samples.tsv", "holds no header line"),
        # A quote left open swallowed every row after it into one field, silently.
        ('sample\tfq1\nA\t"oops\nB\tx\nC\ty\n', "config/samples.tsv:2", "a quoted field is not closed"),
        # The first line of a row that spans lines, not its last.
        ('sample\tfq1\nA\t"two\nlines"\nA\tx\n', "config/samples.tsv:4", "row 'A' is also on line 2"),
        ("sample\tadapter\nA\tx\n", "config/samples.tsv:1", "var 'adapter' is also set in ./Weavefile"),
    ):
        project.write("config/samples.tsv", sheet, dedent=False)
        if "adapter" in sheet:
            project.weavefile(SHEET_WEAVEFILE + '\n[vars]\nadapter = "x"\n')
        assert_user_error(project.run("build"), where, message)
    project.weavefile(SHEET_WEAVEFILE.replace("samples.tsv", "sample-sheet.tsv"))
    project.write("config/sample-sheet.tsv", "sample\tfq1\n", dedent=False)
    assert_user_error(project.run("build"), "config/sample-sheet.tsv", "the sheet's name 'sample-sheet' is not a var name")

"""Integration tests: the real `weave` CLI building real files in temporary projects."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import GC_PROBE, Project, assert_user_error, entry_probe

PIPELINE = """
    default = ["all"]
    [vars]
    epochs = 3
    [rules.clean_sample]
    inputs  = ["raw/{sample}.txt"]
    outputs = ["clean/{sample}.txt"]
    cmd     = "echo clean >> runs.log; tr a-z A-Z < {inputs} > {outputs}"
    [rules.merge]
    inputs  = ["clean/{sample}.txt"]
    outputs = ["merged.txt"]
    foreach = { sample = "raw/{sample}.txt" }
    cmd     = "echo merge >> runs.log; cat {inputs} > {outputs}"
    [rules.count]
    inputs  = ["merged.txt"]
    outputs = ["count.txt"]
    cmd     = "echo count >> runs.log; wc -l < {inputs} | tr -d ' ' > {outputs}"
    [rules.train]
    inputs  = { data = "data.csv" }
    outputs = ["models/best/"]
    cmd     = "echo train >> runs.log; mkdir -p {outputs[0]}; echo epochs={vars.epochs} > {outputs[0]}/model.txt; cp {inputs.data} {outputs[0]}/data.csv"
    [rules.all]
    inputs = ["count.txt", "models/best/"]
"""


def make_pipeline(project):
    project.weavefile(PIPELINE)
    for sample in "abc":
        project.write(f"raw/{sample}.txt", f"hello {sample}\n")
    project.write("data.csv", "x,y\n1,2\n")


def test_first_build_then_noop(project):
    make_pipeline(project)
    first = project.run("build")
    assert first.rc == 0, first
    assert sorted(project.runs_log()) == ["clean", "clean", "clean", "count", "merge", "train"]
    assert project.read("merged.txt") == "HELLO A\nHELLO B\nHELLO C\n"
    assert project.read("count.txt") == "3\n"
    assert project.read("models/best/model.txt") == "epochs=3\n"
    assert "[1/6]" in first.out and "[6/6]" in first.out
    project.clear_runs()
    second = project.run("build")
    assert second.rc == 0
    assert "nothing to do" in second.out
    assert project.runs_log() == []


def test_touch_and_identical_rewrite_rerun_nothing(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    os.utime(project.root / "raw/a.txt", (1, 1))
    project.write("raw/b.txt", "hello b\n")  # same bytes, new mtime
    result = project.run("build")
    assert result.rc == 0 and "nothing to do" in result.out, result
    assert project.runs_log() == []


def test_edit_source_reruns_only_its_subgraph(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    project.write("raw/b.txt", "bye b\n")
    result = project.run("build")
    assert result.rc == 0, result
    # clean/a and clean/c, train: untouched; count reruns because merged.txt changed.
    assert project.runs_log() == ["clean", "merge", "count"]
    assert project.read("count.txt") == "3\n"
    assert project.read("merged.txt") == "HELLO A\nBYE B\nHELLO C\n"


def test_early_cutoff_byte_identical_output(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    project.write("raw/a.txt", "HELLO a\n")  # upper-cases to the same bytes
    result = project.run("build")
    assert result.rc == 0
    assert project.runs_log() == ["clean"]


def test_edited_output_reruns_its_job(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    project.write("merged.txt", "tampered\n")
    result = project.run("plan")
    assert "output modified: merged.txt" in result.out
    assert project.run("build").rc == 0
    assert project.runs_log() == ["merge"]
    assert project.read("merged.txt") == "HELLO A\nHELLO B\nHELLO C\n"


def test_deleted_directory_output_file_reruns(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    (project.root / "models/best/model.txt").unlink()
    assert project.run("build").rc == 0
    assert project.runs_log() == ["train"]
    assert project.read("models/best/model.txt") == "epochs=3\n"


def test_var_change_reruns_with_reason(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    project.weavefile(PIPELINE.replace("epochs = 3", "epochs = 5"))
    plan = project.run("build", "-n")
    assert plan.rc == 0
    assert "var changed: epochs" in plan.out
    assert project.runs_log() == []  # a dry run runs nothing
    assert project.run("build").rc == 0
    assert project.runs_log() == ["train"]
    assert project.read("models/best/model.txt") == "epochs=5\n"


def test_command_change_reruns(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    project.weavefile(PIPELINE.replace("cat {inputs} > {outputs}", "cat {inputs} | sort > {outputs}"))
    plan = project.run("plan")
    assert "command changed" in plan.out
    assert project.run("build").rc == 0
    assert project.runs_log() == ["merge"]


def test_new_foreach_file_adds_a_job(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    project.write("raw/d.txt", "hello d\n")
    assert project.run("build").rc == 0
    assert sorted(project.runs_log()) == ["clean", "count", "merge"]
    assert project.read("count.txt") == "4\n"


def test_a_foreach_rule_with_no_values_builds_nothing_and_says_so(project):
    """Naming a rule whose jobs come from foreach, when foreach gives no values (no matching
    file yet, or an empty list), is an empty build with a warning, not a usage error."""
    project.weavefile(
        """
        [vars]
        extra = []
        [rules.copy]
        inputs = ["raw/{s}.txt"]
        outputs = ["out/{s}.txt"]
        foreach = { s = "raw/{s}.txt" }
        cmd = "cp {inputs} {outputs}"
        [rules.listed]
        outputs = ["list/{x}.txt"]
        foreach = { x = "{vars.extra}" }
        cmd = "touch {outputs}"
        """
    )
    for rule in ("copy", "listed"):
        result = project.run("build", rule)
        assert result.rc == 0, result
        assert f"warning: rule '{rule}' has no jobs: foreach gives no values for" in result.err
        assert "nothing to do" in result.out
    project.write("raw/a.txt", "a\n")
    assert project.run("build", "copy").rc == 0 and project.read("out/a.txt") == "a\n"
    assert project.run("build", "listed", "--set", "extra=['one']").rc == 0 and project.exists("list/one.txt")


def test_a_foreach_rule_over_a_directory_made_first_has_no_warning_before_it_is_made(project):
    """`plots` reads eval/plots/, which another rule makes: before the first build `weave
    plan` warned that the rule has no jobs, next to its own 'then: ... decided again once it
    is made' (the build, which makes the directory first, said nothing)."""
    project.weavefile(
        """
        default = ["plots"]
        [rules.evaluate]
        inputs = ["in.txt"]
        outputs = ["eval/plots/"]
        cmd = "mkdir -p eval/plots && cp in.txt eval/plots/a.csv"
        [rules.plots]
        inputs = ["eval/plots/{model}.csv"]
        outputs = ["plots/{model}.svg"]
        foreach = { model = "eval/plots/{model}.csv" }
        cmd = "cp {inputs} {outputs}"
        """
    )
    project.write("in.txt", "x\n")
    plan = project.run("plan")
    assert plan.rc == 0 and "decided again once it is made" in plan.out, plan
    assert "warning" not in plan.err, plan
    build = project.run("build")
    assert build.rc == 0 and "warning" not in build.err and project.read("plots/a.svg") == "x\n", build


def test_targets_by_path_and_rule_name(project):
    make_pipeline(project)
    result = project.run("build", "clean/b.txt")
    assert result.rc == 0, result
    assert project.runs_log() == ["clean"]
    assert not project.exists("merged.txt")
    assert project.run("build", "merge").rc == 0
    assert sorted(project.runs_log()) == ["clean", "clean", "clean", "merge"]


def test_force_reruns_named_target_only(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    result = project.run("build", "-B", "merged.txt")
    assert result.rc == 0, result
    # merge reran and produced identical bytes: nothing downstream of it was requested.
    assert project.runs_log() == ["merge"]


def test_force_rule_reruns_every_job_of_a_pattern_rule(project):
    """Snakemake's -R RULE: every job of the rule the targets need reruns; what reads their
    outputs reruns only if those changed (early cutoff); a rule the targets do not need, or
    no rule of that name, is an error."""
    project.weavefile(
        """
        [rules.all]
        inputs = ["out/{s}.txt"]
        foreach = { s = ["a", "b", "c"] }
        [rules.map]
        inputs = ["in/{s}.txt"]
        outputs = ["mid/{s}.txt"]
        cmd = "echo map >> runs.log; cp {inputs} {outputs}"
        [rules.fin]
        inputs = ["mid/{s}.txt"]
        outputs = ["out/{s}.txt"]
        cmd = "echo fin >> runs.log; cp {inputs} {outputs}"
        [rules.other]
        outputs = ["o.txt"]
        cmd = "touch o.txt"
        """
    )
    for sample in "abc":
        project.write(f"in/{sample}.txt", f"{sample}\n")
    assert project.run("build").rc == 0
    project.clear_runs()
    plan = project.run("plan", "-R", "map")
    assert plan.rc == 0 and plan.out.count("(forced)") == 3, plan
    result = project.run("build", "-R", "map")
    assert result.rc == 0 and project.runs_log() == ["map"] * 3, result
    assert project.run("build").out.startswith("weave: nothing to do"), "a forced run leaves a no-op"
    project.clear_runs()
    assert project.run("-R", "map", "-j", "2").rc == 0 and project.runs_log() == ["map"] * 3
    assert_user_error(project.run("build", "-R", "mpa"), "-R mpa: no rule 'mpa'", "did you mean 'map'?")
    assert_user_error(project.run("build", "-R", "other"), "none of the jobs the targets need is of rule 'other'")


UNRELATED_CHECKPOINT = """
default = ["count", "other"]
[rules.split]
inputs  = ["src/a.txt"]
outputs = ["out/chunks/"]
cmd     = "echo split >> runs.log; mkdir -p out/chunks && split -l 1 src/a.txt out/chunks/part_ && test ! -e broken"
[rules.count]
inputs  = ["out/chunks/{c}"]
outputs = ["out/counts/{c}.txt"]
foreach = { c = "out/chunks/{c}" }
cmd     = "echo count >> runs.log; wc -l < {inputs} > {outputs}"
[rules.other]
inputs  = ["src/b.txt"]
outputs = ["out/other.txt"]
cmd     = "echo other >> runs.log; cp src/b.txt out/other.txt"
"""


def test_a_checkpoint_only_an_unrequested_rule_reads_is_left_alone(project):
    """`weave build other` indexes count's outputs, which lists out/chunks/, but needs
    nothing from it: split is not built first (it ran, and failed the build, before)."""
    project.weavefile(UNRELATED_CHECKPOINT)
    project.write("src/a.txt", "a\nb\n")
    project.write("src/b.txt", "x\n")
    project.write("broken", "")
    result = project.run("build", "other")
    assert result.rc == 0 and project.runs_log() == ["other"], result
    assert project.run("plan", "other").out.startswith("nothing to do")


def test_keep_going_builds_what_a_failed_checkpoint_does_not_hold_back(project):
    """With -k, a directory job that fails in the first phase is not run again, what reads it
    is not built, and the independent jobs are."""
    project.weavefile(UNRELATED_CHECKPOINT)
    project.write("src/a.txt", "a\nb\n")
    project.write("src/b.txt", "x\n")
    project.write("broken", "")
    result = project.run("build", "-k")
    assert result.rc == 1, result
    assert project.runs_log() == ["split", "other"], result
    assert project.exists("out/other.txt")
    assert result.out.count("failed, ") + result.err.count("failed, ") == 1, result  # one summary
    os.unlink(project.root / "broken")
    project.clear_runs()
    fixed = project.run("build", "-k")
    assert fixed.rc == 0 and sorted(project.runs_log()) == ["count", "count", "split"], fixed


def test_a_checkpoint_behind_another_builds_each_job_once_with_its_real_inputs(project):
    """split -> count per chunk -> total over the chunks -> split2 -> count2 per chunk of
    split2: from scratch, total must not run before chunks/ exists (it ran with no inputs,
    and a command that needs one failed the build)."""
    project.weavefile(
        """
        default = ["count2"]
        [rules.split]
        inputs  = ["src/a.txt"]
        outputs = ["out/chunks/"]
        cmd     = "echo split >> runs.log; mkdir -p out/chunks && split -l 1 src/a.txt out/chunks/part_"
        [rules.count]
        inputs  = ["out/chunks/{c}"]
        outputs = ["out/counts/{c}.txt"]
        foreach = { c = "out/chunks/{c}" }
        cmd     = "echo count >> runs.log; cat {inputs} > {outputs}"
        [rules.total]
        inputs  = ["out/counts/{c}.txt"]
        outputs = ["out/total.txt"]
        foreach = { c = "out/chunks/{c}" }
        cmd     = "echo total >> runs.log; cat {inputs} > {outputs} && test -s {outputs}"
        [rules.split2]
        inputs  = ["out/total.txt"]
        outputs = ["out/chunks2/"]
        cmd     = "echo split2 >> runs.log; mkdir -p out/chunks2 && split -l 2 out/total.txt out/chunks2/p_"
        [rules.count2]
        inputs  = ["out/chunks2/{d}"]
        outputs = ["out/counts2/{d}.txt"]
        foreach = { d = "out/chunks2/{d}" }
        cmd     = "echo count2 >> runs.log; wc -l < {inputs} | tr -d ' ' > {outputs}"
        """
    )
    project.write("src/a.txt", "a\nb\nc\n")
    result = project.run("build", "-j", "2")
    assert result.rc == 0, result
    assert sorted(project.runs_log()) == sorted(["split", "count", "count", "count", "total", "split2", "count2", "count2"])
    assert project.read("out/counts2/p_aa.txt") == "2\n" and project.read("out/counts2/p_ab.txt") == "1\n"
    assert project.run("build").out.startswith("weave: nothing to do")
    # Fewer chunks after an edit: no job for a chunk that is gone is scheduled (the build
    # failed on a missing input), and one build converges.
    project.write("src/a.txt", "z\n")
    shrunk = project.run("build", "-j", "2")
    assert shrunk.rc == 0, shrunk
    assert project.read("out/total.txt") == "z\n" and project.read("out/counts2/p_aa.txt") == "1\n"
    assert project.run("build").out.startswith("weave: nothing to do")


def test_force_rule_of_a_checkpoint_runs_it_once_before_its_readers(project):
    """-R split after a change weave cannot see (the chunk size in a file split does not
    declare): split runs once, first, and what reads chunks/ follows what it now holds."""
    project.weavefile(CHECKPOINT.replace("split -l 4", "split -l $(cat size)"))
    project.write("size", "4\n")
    project.write("data.txt", "".join(f"{n}\n" for n in range(1, 11)))
    assert project.run("build", "summary.txt").rc == 0
    assert project.read("summary.txt") == "4\n4\n2\n"
    project.write("size", "5\n")
    project.clear_runs()
    result = project.run("build", "-R", "split", "summary.txt")
    assert result.rc == 0 and sorted(project.runs_log()) == ["process", "process", "split", "summary"], result
    assert project.read("summary.txt") == "5\n5\n", result
    assert project.run("build", "summary.txt").out.startswith("weave: nothing to do")
    # -B naming the directory too: the same.
    project.write("size", "3\n")
    project.clear_runs()
    result = project.run("build", "-B", "chunks/", "summary.txt")
    assert result.rc == 0 and project.read("summary.txt") == "3\n3\n3\n1\n", result
    project.clear_runs()
    result = project.run("build", "-R", "split", "-R", "summary", "summary.txt")
    assert result.rc == 0 and sorted(project.runs_log()) == ["split", "summary"], result


def test_group_options_build_default_targets(project):
    make_pipeline(project)
    result = project.run("--jobs", "2", "--resources", "gpu=4")
    assert result.rc == 0, result
    assert project.exists("count.txt") and project.exists("models/best/model.txt")


def test_build_options_before_another_command_are_refused(project):
    """`weave -n clean` used to clean for real (the -n was dropped): build options before any
    command but build and watch are an error that says where they go."""
    make_pipeline(project)
    assert project.run("build").rc == 0
    result = project.run("-n", "clean")
    assert result.rc == 2 and "-n before 'clean' applies only to weave build and weave watch" in result.err
    assert "weave clean -n" in result.err
    assert project.exists("count.txt")
    result = project.run("-j", "4", "status")
    assert result.rc == 2 and "weave status has no -j option" in result.err
    assert project.run("-B", "touch").rc == 2 and project.run("-k", "list").rc == 2
    # The hint repeats the values given, so that it can be typed as shown.
    for args, rewritten in (
        (("-R", "count", "-R", "train", "plan"), "weave plan -R count -R train"),
        (("--resources", "gpu=1", "plan"), "weave plan --resources gpu=1"),
        (("-j", "4", "plan"), "weave plan -j 4"),
    ):
        result = project.run(*args)
        assert result.rc == 2 and f"write it after the command: {rewritten}\n" in result.err, (args, result)
        assert project.run(*rewritten.split()[1:]).rc == 0, rewritten
    assert project.run("-j", "2", "-k", "build").rc == 0  # where they belong, still accepted


def test_failure_exit_1_with_command_and_log_tail(project):
    project.weavefile(
        """
        [rules.bad]
        outputs = ["out.txt"]
        cmd = "echo partial > out.txt; echo something went wrong >&2; exit 3"
        """
    )
    result = project.run("build")
    assert result.rc == 1, result
    assert "FAILED bad out.txt" in result.err
    assert "exited with code 3" in result.err
    assert "echo partial > out.txt" in result.err
    assert "something went wrong" in result.err
    assert ".weave/logs/" in result.err
    assert not project.exists("out.txt"), "partial output of a failed job must be removed"
    assert "Traceback" not in result.err


def test_exit_codes_of_signals_are_explained(project):
    project.weavefile(
        """
        [rules.pipe]
        outputs = ["a"]
        cmd = "yes | head -1 > a"
        [rules.oom]
        outputs = ["b"]
        cmd = "bash -c 'kill -9 $$'; touch b"
        """
    )
    result = project.run("-k", "build", "a", "b")
    assert result.rc == 1
    assert "exited with code 141 (SIGPIPE: a command wrote into a pipe whose reader had stopped" in result.err
    assert "exited with code 137 (SIGKILL: killed, often by the out-of-memory killer)" in result.err


def test_keep_failed_keeps_partial_outputs_but_never_trusts_them(project):
    project.weavefile(
        """
        [rules.bad]
        outputs = ["out.txt"]
        cmd = "echo partial > out.txt; test -f ok"
        """
    )
    assert project.run("build", "--keep-failed").rc == 1
    assert project.read("out.txt") == "partial\n"
    project.write("ok", "")
    result = project.run("build")
    assert result.rc == 0 and "[1/1] bad out.txt" in result.out, result


def test_exit_zero_without_output_fails(project):
    project.weavefile(
        """
        [rules.train]
        outputs = ["models/best/"]
        cmd = "true"
        """
    )
    result = project.run("build")
    assert result.rc == 1
    assert "rule train exited 0 but did not create models/best/" in result.err


def test_an_output_of_the_wrong_kind_fails_the_job(project):
    """A directory output that the command makes a file, or a file output that it makes a
    directory, fails at once, naming the fix; never recorded, so never trusted."""
    project.weavefile(
        """
        [rules.model]
        outputs = ["model/"]
        cmd = "echo weights > model"
        [rules.table]
        outputs = ["table"]
        cmd = "mkdir table"
        [rules.latest]
        outputs = ["latest"]
        cmd = "mkdir -p runs/1 && ln -s runs/1 latest"
        """
    )
    result = project.run("build", "model/")
    assert result.rc == 1
    assert "rule model made model/ a file, not a directory" in result.err, result
    assert not project.exists("model"), "a failed job's output is removed"
    result = project.run("build", "table")
    assert result.rc == 1
    assert "rule table made table a directory: declare it as 'table/'" in result.err, result
    assert not project.exists("table"), "the directory the failed job made is removed"
    # Fixed, the job runs: its leftover is not in the way.
    project.write("Weavefile", project.read("Weavefile").replace('cmd = "mkdir table"', 'cmd = "echo t > table"'), dedent=False)
    assert project.run("build", "table").rc == 0
    assert project.read("table") == "t\n"
    # A FIFO (or socket, device) could never be read to know its content: a failure too,
    # removed, also when nothing reads it.
    project.write("Weavefile", project.read("Weavefile") + '[rules.pipe]\noutputs = ["pipe"]\ncmd = "mkfifo pipe"\n', dedent=False)
    result = project.run("build", "pipe")
    assert result.rc == 1, result
    assert "rule pipe made pipe a FIFO, not a regular file" in result.err, result
    assert not os.path.lexists(project.root / "pipe")
    # A symlink to a directory is a file output, as before.
    result = project.run("build", "latest")
    assert result.rc == 0, result
    assert "nothing to do" in project.run("build", "latest").out


def test_an_old_output_is_removed_before_its_job_runs(project):
    """A job that exits 0 without writing its output fails, even though an old file is there:
    outputs are removed before their job starts."""
    project.weavefile(
        """
        [rules.report]
        inputs = ["flag"]
        outputs = ["out/report.txt"]
        cmd = "true"
        """
    )
    project.write("flag", "1\n")
    project.write("out/report.txt", "old\n")
    result = project.run("build")
    assert result.rc == 1
    assert "rule report exited 0 but did not create out/report.txt" in result.err
    assert not project.exists("out/report.txt")



def test_an_output_made_as_a_broken_symlink_is_named_as_one(project):
    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "ln -s nowhere a.txt"\n')
    result = project.run("build")
    assert result.rc == 1
    assert "rule a exited 0 but its output a.txt is a broken symlink (to 'nowhere')" in result.err, result


def test_outputs_in_a_directory_the_build_created_are_not_looked_up(project, monkeypatch):
    """Nothing older can be in a directory the build itself created: no lstat per output
    there (on a directory that jobs are filling, each costs tens of microseconds)."""
    from weavebuild.api import Project as WeaveProject

    project.weavefile(
        """
        default = ["out/a.txt", "out/b.txt", "out/c.txt"]
        [rules.copy]
        inputs = ["src/{name}.txt"]
        outputs = ["out/{name}.txt"]
        cmd = "cp {inputs} {outputs}"
        """
    )
    for name in "abc":
        project.write(f"src/{name}.txt", name)
    looked_up = []
    real_lstat = os.lstat

    def counting_lstat(path, *args, **kwargs):
        looked_up.append(os.path.basename(str(path)))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", counting_lstat)
    result = WeaveProject.load(str(project.root)).build(jobs=1)
    assert result.count("ran") == 3
    # The first job's output is looked up (its directory did not exist yet); no other.
    assert sorted(name for name in looked_up if name in ("a.txt", "b.txt", "c.txt")) == ["a.txt"]
    assert [project.read(f"out/{name}.txt") for name in "abc"] == ["a", "b", "c"]


def test_command_not_found(project):
    project.weavefile(
        """
        [rules.x]
        outputs = ["x"]
        cmd = "no-such-program-weave-test > x"
        """
    )
    result = project.run("build")
    assert result.rc == 1
    assert "command not found" in result.err


def test_keep_going_builds_independent_branches(project):
    project.weavefile(
        """
        [rules.bad]
        outputs = ["bad.txt"]
        cmd = "exit 1"
        [rules.after_bad]
        inputs = ["bad.txt"]
        outputs = ["after.txt"]
        cmd = "cp bad.txt after.txt"
        [rules.good]
        outputs = ["good.txt"]
        cmd = "echo good > good.txt"
        [rules.all]
        inputs = ["after.txt", "good.txt"]
        """
    )
    result = project.run("build", "-k", "-j1", "all")
    assert result.rc == 1
    assert project.read("good.txt") == "good\n"
    assert not project.exists("after.txt")
    assert "1 failed" in result.err


def test_outputs_of_jobs_skipped_after_a_failure_stay_but_are_never_current(project):
    """Like make, a failure upstream leaves the old outputs downstream on disk (no model is
    deleted because preprocessing broke); unlike a stale mtime, they are never trusted."""
    project.weavefile(
        """
        [rules.clean]
        inputs = ["raw.txt"]
        outputs = ["clean.txt"]
        cmd = "if grep -q bad raw.txt; then exit 3; fi; tr a-z A-Z < raw.txt > clean.txt"
        [rules.model]
        inputs = ["clean.txt"]
        outputs = ["model.txt"]
        cmd = "echo trained on $(cat clean.txt) > model.txt"
        """
    )
    project.write("raw.txt", "good data\n")
    assert project.run("build", "model.txt").rc == 0
    assert project.read("model.txt") == "trained on GOOD DATA\n"
    project.write("raw.txt", "bad data\n")
    failed = project.run("build", "-k", "model.txt")
    assert failed.rc == 1, failed
    assert not project.exists("clean.txt")  # the failed job's output is removed
    assert project.read("model.txt") == "trained on GOOD DATA\n"  # the skipped job's stays
    plan = project.run("plan", "model.txt")
    assert "model model.txt" in plan.out.split("up to date")[0], plan.out  # known stale
    assert project.run("build", "model.txt").rc == 1  # never "nothing to do"
    project.write("raw.txt", "good data again\n")
    assert project.run("build", "model.txt").rc == 0
    assert project.read("model.txt") == "trained on GOOD DATA AGAIN\n"


def test_strict_mode_pipefail(project):
    project.weavefile(
        """
        [rules.p]
        outputs = ["p.txt"]
        cmd = "false | cat > p.txt"
        """
    )
    assert project.run("build").rc == 1


def test_placeholders_quoting_and_braces(project):
    project.write("in dir/my file.txt", "content\n")
    project.weavefile(
        """
        [vars]
        greeting = "hi"
        [rules.q]
        inputs = ["in dir/my file.txt"]
        outputs = ["out dir/result {{x}}.txt"]
        cmd = "echo '{{literal}}' {vars.greeting} {rule} > {outputs[0]}; cat {inputs} >> {outputs}"
        """
    )
    result = project.run("build")
    assert result.rc == 0, result
    assert project.read("out dir/result {x}.txt") == "{literal} hi q\ncontent\n"


def test_env_and_wildcards_placeholder(project):
    project.write("raw/s1.txt", "1\n")
    project.weavefile(
        """
        [rules.w]
        inputs = ["raw/{sample}.txt"]
        outputs = ["out/{sample}.txt"]
        env = { SEED = "42", NAME = "{wildcards.sample}" }
        cmd = "echo $SEED $NAME {wildcards.sample} > {outputs}"
        """
    )
    assert project.run("build", "out/s1.txt").rc == 0
    assert project.read("out/s1.txt") == "42 s1 s1\n"


def test_env_values_take_dollar_names_from_weaves_environment(project):
    """`PATH = "./bin:$PATH"` puts a project tool first (the value was passed literally, and the
    job then found no command at all); `$$` is a literal `$`. The signature keeps the text as
    written: another PATH outside reruns nothing."""
    project.write("bin/greet", "#!/bin/sh\necho hello from bin\n")
    (project.root / "bin/greet").chmod(0o755)
    project.weavefile(
        """
        [rules.w]
        outputs = ["out.txt"]
        env = { PATH = "./bin:$PATH", WHO = "${{WEAVE_TEST_WHO}}-$NOT_SET_ANYWHERE-$$HOME-$1", PRICE = "{vars.price}" }
        cmd = 'greet > {outputs}; echo "$WHO $PRICE" >> {outputs}; echo ran >> runs.log'
        [vars]
        price = "5$HOME"   # what a placeholder puts in is not expanded
        """
    )
    result = project.run("build", env={"WEAVE_TEST_WHO": "me"})
    assert result.rc == 0, result
    assert project.read("out.txt") == "hello from bin\nme--$HOME-$1 5$HOME\n"
    result = project.run("build", env={"WEAVE_TEST_WHO": "someone else", "PATH": "/usr/bin:/bin"})
    assert result.rc == 0 and "nothing to do" in result.out, result
    assert project.runs_log() == ["ran"]


def test_glob_inputs(project):
    for name in ("a", "b"):
        project.write(f"data/{name}.csv", name + "\n")
    project.weavefile(
        """
        [rules.cat]
        inputs = ["data/*.csv"]
        outputs = ["all.csv"]
        cmd = "cat {inputs} > {outputs}"
        """
    )
    assert project.run("build").rc == 0
    assert project.read("all.csv") == "a\nb\n"
    project.write("data/c.csv", "c\n")
    plan = project.run("plan")
    assert "inputs changed: +data/c.csv" in plan.out
    assert project.run("build").rc == 0
    assert project.read("all.csv") == "a\nb\nc\n"


def test_weave_toml_and_dash_f_and_dash_C(project):
    project.write("weave.toml", '[rules.a]\noutputs = ["a"]\ncmd = "echo toml > a"\n')
    assert project.run("build").rc == 0
    assert project.read("a") == "toml\n"
    project.write("other.toml", '[rules.b]\noutputs = ["b"]\ncmd = "echo other > b"\n')
    assert project.run("-f", "other.toml", "build").rc == 0
    assert project.read("b") == "other\n"
    sub = project.root / "sub"
    sub.mkdir()
    (sub / "Weavefile").write_text('[rules.c]\noutputs = ["c"]\ncmd = "echo sub > c"\n')
    assert project.run("-C", "sub", "build").rc == 0
    assert (sub / "c").read_text() == "sub\n"


def test_both_weavefile_names_warn_which_is_read(project):
    project.write("Weavefile", '[rules.a]\noutputs = ["a"]\ncmd = "echo weavefile > a"\n')
    project.write("weave.toml", '[rules.a]\noutputs = ["a"]\ncmd = "echo toml > a"\n')
    warning = "both Weavefile and weave.toml are here: Weavefile is read and weave.toml is ignored"
    for args in (("build",), ("build",), ("plan",), ("status",)):  # the no-op fast path too
        run = project.run(*args)
        assert run.rc == 0, run
        assert run.err.count(warning) == 1, (args, run.err)
    assert project.read("a") == "weavefile\n"
    chosen = project.run("-f", "weave.toml", "build")
    assert chosen.rc == 0 and "warning" not in chosen.err, chosen
    assert project.read("a") == "toml\n"
    # A Weavefile that includes weave.toml reads it: no warning that it is ignored.
    project.write("Weavefile", 'include = ["weave.toml"]\n')
    included = project.run("build")
    assert included.rc == 0 and "warning" not in included.err, included
    (project.root / "weave.toml").unlink()
    project.write("Weavefile", '[rules.a]\noutputs = ["a"]\ncmd = "echo weavefile > a"\n')
    alone = project.run("build")
    assert alone.rc == 0 and "warning" not in alone.err, alone


def test_rule_without_outputs_always_runs(project):
    project.weavefile(
        """
        [rules.hello]
        cmd = "echo hello >> runs.log"
        """
    )
    assert project.run("build").rc == 0
    assert project.run("build").rc == 0
    assert project.runs_log() == ["hello", "hello"]


def test_input_inside_directory_output_depends_on_it(project):
    project.weavefile(
        """
        [rules.use]
        inputs = ["models/best/model.txt"]
        outputs = ["report.txt"]
        cmd = "cp {inputs} {outputs}"
        [rules.train]
        outputs = ["models/best/"]
        cmd = "mkdir -p {outputs}; echo m > {outputs}/model.txt"
        """
    )
    result = project.run("build", "report.txt")
    assert result.rc == 0, result
    assert project.read("report.txt") == "m\n"


def test_an_input_edited_while_its_job_ran_drops_that_job_s_record_alone(project):
    """The check for inputs edited while a job ran is made once for all the jobs that ended
    since the last commit (a header 1,000 jobs read is stat-ed once per commit, not once per
    job): still, among six jobs sharing a header, only the one whose own input moved goes
    unrecorded. The next build reruns that one job, then nothing."""
    project.weavefile(
        """
        [rules.compile]
        inputs  = ["src/{n}.c", "common.h"]
        outputs = ["out/{n}.o"]
        foreach = { n = "src/{n}.c" }
        # job 3 edits its own source while it runs (size kept, content changed)
        cmd     = "cat {inputs} > {outputs}; if [ {wildcards.n} = 3 ] && grep -q old src/3.c; then echo new > src/3.c; fi"
        """
    )
    project.write("common.h", "h\n")
    for n in range(6):
        project.write(f"src/{n}.c", "old\n" if n == 3 else f"{n}\n")
    first = project.run("build", "-j", "2")
    assert first.rc == 0 and len(first.started) == 6, first
    assert "src/3.c changed while the build was running" in first.err, first
    second = project.run("build", "-j", "2")
    assert second.rc == 0 and second.started == ["compile out/3.o"], second
    assert project.read("out/3.o") == "new\nh\n"
    assert "nothing to do" in project.run("build").out


_NESTED_READER = """
[rules.use]
inputs = ["{read}"]
outputs = ["out.txt"]
cmd = "cat {read_cmd} > {{outputs}}"
[rules.make]
inputs = ["src.txt"]
outputs = ["model/"]
cmd = "mkdir {{outputs}} && cp {{inputs}} {{outputs}}/w.txt && mkdir {{outputs}}/sub && cp {{inputs}} {{outputs}}/sub/v.txt"
"""


@pytest.mark.parametrize("change", ["add", "remove", "subdirectory"])
def test_a_source_directory_that_gains_or_loses_an_entry_reruns_once(project, change):
    """After a no-op (the stamp in use), a directory input whose entries change reruns its
    reader once, with no false "changed while the build was running" warning (the stamp's
    fingerprint of the directory was taken for the digest read again), and the next build has
    nothing to do (the reader was never recorded and reran forever)."""
    project.weavefile(
        """
        [rules.r]
        inputs = ["d"]
        outputs = ["out.txt"]
        cmd = "ls -R d > {outputs}"
        """
    )
    project.write("d/a", "a\n")
    project.write("d/old", "old\n")
    assert project.run("build").rc == 0
    assert "nothing to do" in project.run("build").out
    if change == "add":
        project.write("d/b", "b\n")
    elif change == "remove":
        os.unlink(project.root / "d/old")
    else:
        (project.root / "d/sub").mkdir()
    result = project.run("build")
    assert result.rc == 0 and result.started == ["r out.txt"], result
    assert "changed while the build was running" not in result.err, result
    again = project.run("build")
    assert again.rc == 0 and "nothing to do" in again.out, again


_DIRECTORY_READER = """
    default = ["listing.txt"]
    [rules.clean]
    inputs = ["raw.txt"]
    outputs = ["data/prepared/clean.csv", "data/prepared/extra/more.csv"]
    cmd = "tr a-z A-Z < {inputs} > {outputs[0]}; cp {inputs} {outputs[1]}"
    [rules.list]
    inputs = ["data/"]
    outputs = ["listing.txt"]
    cmd = "cd data && find . -type f | LC_ALL=C sort | xargs cat > ../{outputs}"
"""


@pytest.mark.parametrize("data_exists", [True, False], ids=["with-sources-in-it", "made-by-the-build"])
@pytest.mark.parametrize("settled", [True, False], ids=["after-no-op", "after-build"])
def test_a_directory_input_depends_on_the_jobs_writing_into_it(project, data_exists, settled):
    """A directory input holding files other rules make (`data/`, and `data/prepared/clean.csv`
    of rule clean) depends on those rules' jobs, as a directory target does: they run first,
    the reader sees their files, and an edit upstream reruns both in one build, through the
    no-op stamp's partial check or the full one. Before, the directory was a plain source:
    the reader ran without the files (or, if the directory did not exist yet, the build
    stopped at a missing source) and stayed "up to date" after they changed."""
    project.weavefile(_DIRECTORY_READER)
    project.write("raw.txt", "one\n")
    if data_exists:
        project.write("data/notes.txt", "notes\n")
    first = project.run("build")
    assert first.rc == 0, first
    assert first.started == ["clean data/prepared/clean.csv", "list listing.txt"], first
    expected = "notes\n" if data_exists else ""
    assert project.read("listing.txt") == expected + "ONE\none\n"
    if settled:
        assert "nothing to do" in project.run("build").out
    project.write("raw.txt", "two\n")
    plan = project.run("plan")
    assert "list listing.txt" in plan.out, plan
    result = project.run("build")
    assert result.rc == 0, result
    assert result.started == ["clean data/prepared/clean.csv", "list listing.txt"], result
    assert "changed while the build was running" not in result.err, result
    assert project.read("listing.txt") == expected + "TWO\ntwo\n"
    again = project.run("build")
    assert again.rc == 0 and "nothing to do" in again.out, again
    assert "up to date" in project.run("why", "listing.txt").out


def data_folder_of_links(project) -> Path:
    """A project whose rule reads `data/`, a folder of symlinks into a shared store beside the
    project (`sample.txt` -> a file, `set` -> a directory holding `x.txt`); the store's path."""
    store = project.root.parent / "store"
    (store / "set").mkdir(parents=True)
    (store / "sample.txt").write_text("one\n")
    (store / "set" / "x.txt").write_text("x\n")
    (project.root / "data").mkdir()
    (project.root / "data/sample.txt").symlink_to(store / "sample.txt")
    (project.root / "data/set").symlink_to(store / "set")
    project.weavefile(
        """
        [rules.r]
        inputs = ["data/"]
        outputs = ["out.txt"]
        cmd = "cat data/sample.txt data/set/*.txt > {outputs}"
        """
    )
    return store


@pytest.mark.parametrize("settled", [True, False], ids=["after-no-op", "after-build"])
def test_a_directory_input_of_symlinks_into_a_shared_store_follows_them(project, settled):
    """A data folder whose entries are symlinks into a shared store (a file, a directory):
    the job reads through them, so an edit where one points reruns it, through the no-op
    stamp too; before, only the links' target paths were hashed and the edit went unseen."""
    store = data_folder_of_links(project)
    assert project.run("build").rc == 0
    if settled:
        assert "nothing to do" in project.run("build").out
    for edit, expected in (
        (lambda: (store / "sample.txt").write_text("two\n"), "two\nx\n"),
        (lambda: (store / "set" / "y.txt").write_text("y\n"), "two\nx\ny\n"),
    ):
        edit()
        result = project.run("build")
        assert result.rc == 0 and result.started == ["r out.txt"], result
        assert project.read("out.txt") == expected
        again = project.run("build")
        assert again.rc == 0 and "nothing to do" in again.out, again
        os.utime(store / "sample.txt")  # touched, same content: nothing to do
        assert "nothing to do" in project.run("build").out


@pytest.mark.parametrize(
    "read, message",
    [
        (".", "input '.' is the project directory"),
        ("./", "input '.' is the project directory"),  # ("./" is the project directory too)
        (".weave/state.db", "input '.weave/state.db' is inside weave's state directory"),
        # Outside, holding the project: `/` also meant walking the whole file system, and
        # every command hung (the mutation fuzzer).
        ("/", "input '/' holds the project directory"),
        ("..", "input '..' holds the project directory"),
        ("../..", "input '../..' holds the project directory"),
    ],
)
def test_an_input_holding_the_project_or_weaves_state_is_refused(project, read, message):
    """The project directory, weave's state, and a directory outside that holds the project
    change with every build (the outputs, .weave/), so a job reading them would never be up
    to date: it reran every build with a "changed while the build was running" warning. A
    Weavefile error at the rule's inputs instead."""
    project.weavefile(
        f"""
        [rules.a]
        inputs = ["{read}"]
        outputs = ["x.txt"]
        cmd = "ls > x.txt"
        """
    )
    if read.startswith(".weave"):
        (project.root / ".weave").mkdir()
        (project.root / ".weave/state.db").write_text("")
    result = project.run("build", timeout=60)
    assert_user_error(result, "Weavefile:3: rule 'a', key 'inputs'", message, "never be up to date")
    assert not project.exists("x.txt")


def test_a_directory_input_holding_its_own_output_is_refused(project):
    """A job that reads a directory and writes into it could never be up to date (each run
    changes what it read): a Weavefile error at the rule's inputs, with the fix."""
    project.weavefile(
        """
        [rules.index]
        inputs = ["data/"]
        outputs = ["data/index.txt"]
        cmd = "ls data > {outputs}"
        """
    )
    project.write("data/a.csv", "a\n")
    result = project.run("build")
    assert_user_error(
        result, "Weavefile:3", "rule 'index', key 'inputs'", "input 'data/' holds the job's own output 'data/index.txt'",
        "read the files it needs with a glob",
    )
    assert not project.exists("data/index.txt")
    # A job with many outputs (checked against a set of their directories) too.
    many = ", ".join(f'"parts/p{n}.txt"' for n in range(20))
    project.weavefile(f'[rules.split]\ninputs = ["data/", "parts/"]\noutputs = [{many}]\ncmd = "touch {{outputs}}"\n')
    project.write("parts/old.txt", "x\n")
    assert_user_error(project.run("build"), "input 'parts/' holds the job's own output 'parts/p0.txt'")


@pytest.mark.parametrize(
    "read, read_cmd",
    [("model/w.txt", "{inputs}"), ("model/sub/", "{inputs}/v.txt"), ("model/", "{inputs}/w.txt")],
    ids=["file-inside", "subdirectory-inside", "the-directory"],
)
@pytest.mark.parametrize("settled", [True, False], ids=["after-no-op", "after-build"])
def test_rebuilt_directory_output_reruns_what_reads_inside_it(project, read, read_cmd, settled):
    """A job reading a file (or subdirectory) inside a directory output that is rebuilt reruns
    in the same build, with the new content: the digests taken when the build started (or
    trusted from the no-op stamp) do not outlive the rebuilt directory. And no false "changed
    while the build was running" warning: the next build has nothing to do."""
    project.weavefile(_NESTED_READER.format(read=read, read_cmd=read_cmd))
    project.write("src.txt", "one\n")
    assert project.run("build").rc == 0
    if settled:
        assert "nothing to do" in project.run("build").out
    project.write("src.txt", "two\n")
    result = project.run("build")
    assert result.rc == 0, result
    assert result.started == ["make model/", "use out.txt"], result
    assert "changed while the build was running" not in result.err, result
    assert project.read("out.txt") == "two\n"
    again = project.run("build")
    assert again.rc == 0 and again.started == [] and "nothing to do" in again.out, again

def test_python_api(project):
    make_pipeline(project)
    from weavebuild import Project

    result = Project.load(str(project.root)).build(jobs=2)
    assert result.ok
    assert len(result.ran) == 6
    again = Project.load(str(project.root)).build()
    assert len(again.ran) == 0 and len(again.up_to_date) == 6


def test_api_stop_event_stops_the_build_and_says_so(project):
    """`build(stop=event)`, set from another thread: the running job is stopped and not
    recorded, and the Interrupted error says it was stopped on request (it named SIGINT,
    which nobody sent)."""
    import threading

    from weavebuild import Project
    from weavebuild.errors import Interrupted

    project.weavefile(
        """
        [rules.slow]
        outputs = ["slow.txt"]
        cmd = "touch started; sleep 60; echo done > slow.txt"
        """
    )
    stop = threading.Event()
    threading.Thread(target=lambda: _wait_then_set(project, stop), daemon=True).start()
    with pytest.raises(Interrupted) as info:
        Project.load(str(project.root)).build(stop=stop)
    assert info.value.requested and str(info.value.message) == "stopped on request", info.value.message
    assert not project.exists("slow.txt")
    assert "never built" in project.run("plan").out


def test_api_stop_event_ends_a_wait_for_the_lock(project):
    """`build(wait_for_lock=True, stop=event)` waited for the other build's end, whatever the
    event said (a blocking flock sees no event)."""
    import threading

    from weavebuild import Project
    from weavebuild.errors import Interrupted
    from weavebuild.lock import ProjectLock

    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > a.txt"\n')
    stop = threading.Event()
    raised = []

    def build() -> None:
        try:
            Project.load(str(project.root)).build(wait_for_lock=True, stop=stop)
        except Interrupted as exc:
            raised.append(exc)

    with ProjectLock(str(project.root)):  # another weave's build, which never ends here
        open_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
        waiting = threading.Thread(target=build)
        waiting.start()
        stop.set()
        waiting.join(60)
        assert not waiting.is_alive()
        if open_before is not None:  # the waiting lock's descriptors were closed
            assert len(os.listdir("/proc/self/fd")) == open_before
    assert len(raised) == 1 and raised[0].requested, raised
    assert not project.exists("a.txt")


def test_api_path_problems_and_bad_values_are_user_errors(project):
    """The API raised a bare FileExistsError (a file where .weave/ goes) or PermissionError,
    which the CLI turns into messages, and took a negative timeout or retries count."""
    from weavebuild import Project
    from weavebuild.errors import UsageError

    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > a.txt"\n')
    (project.root / ".weave").write_text("in the way")
    loaded = Project.load(str(project.root))
    for call in (loaded.build, loaded.clean, loaded.touch):
        with pytest.raises(UsageError) as info:
            call()
        message = info.value.message  # the path as seen from the current directory
        assert message.startswith("cannot use '") and message.endswith(".weave': File exists"), (call, message)
    (project.root / ".weave").unlink()
    for bad, says in (
        ({"timeout": -5}, "timeout=-5: must be a positive number of seconds"),
        ({"retries": -1}, "retries=-1: must be 0 or more"),
        ({"retry_delay": -1}, "retry_delay=-1: must be 0 or more seconds"),
    ):
        with pytest.raises(UsageError) as info:
            loaded.build(**bad)
        assert info.value.message == says
    assert not project.exists("a.txt")
    assert loaded.build().ok and project.read("a.txt") == "a\n"


def _wait_then_set(project, event) -> None:
    deadline = time.monotonic() + 60
    while not project.exists("started") and time.monotonic() < deadline:
        time.sleep(0.05)
    event.set()


def test_api_calls_leave_the_cycle_collector_as_they_found_it(project):
    """Weave pauses Python's cycle collector while it loads and builds (a big graph makes each
    collection slow); a program embedding weave gets its setting back, failure or not."""
    import gc

    from weavebuild import Project
    from weavebuild.errors import BuildFailed

    make_pipeline(project)
    assert gc.isenabled()
    Project.load(str(project.root)).build(jobs=2)
    Project.load(str(project.root)).plan()
    assert gc.isenabled()
    project.weavefile('[rules.bad]\noutputs = ["bad.txt"]\ncmd = "exit 1"\n')
    with pytest.raises(BuildFailed):
        Project.load(str(project.root)).build()
    assert gc.isenabled()
    gc.disable()
    try:
        Project.load(str(project.root)).plan()
        with pytest.raises(BuildFailed):
            Project.load(str(project.root)).build()
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_weave_process_runs_without_the_cycle_collector_and_skips_the_final_scan(project):
    """A one-shot `weave` process keeps the collector off and freezes its objects at exit (no
    full scan of the heap as the interpreter ends); its build is as usual."""
    make_pipeline(project)
    result = subprocess.run(
        [sys.executable, "-c", GC_PROBE, "build"], cwd=project.root, capture_output=True, text=True
    )
    assert result.returncode == 0, result
    assert "gc-probe enabled=False frozen=True" in result.stderr
    rerun = project.run("build")
    assert rerun.rc == 0 and rerun.started == [], rerun  # what it recorded holds
    failed = subprocess.run(
        [sys.executable, "-c", GC_PROBE, "build", "no-such-target"], cwd=project.root, capture_output=True, text=True
    )
    assert failed.returncode == 2 and "gc-probe enabled=False frozen=True" in failed.stderr, failed


SIGNAL_PROBE = entry_probe(
    "signal-probe default={all(__import__(\"signal\").getsignal(getattr(__import__(\"signal\"), name))"
    " == __import__(\"signal\").SIG_DFL for name in (\"SIGTERM\", \"SIGHUP\", \"SIGQUIT\", \"SIGINT\"))}"
)


def test_weave_process_ends_with_default_signal_handlers(project):
    """Once its command is over, weave's handlers are gone: a SIGTERM or Ctrl-C arriving while
    the interpreter shuts down ends it as any program, not with a traceback from
    threading._shutdown (seen when a signal came just as a build finished)."""
    make_pipeline(project)
    for args in (["build"], ["build", "--keep-failed"], ["list"], ["build", "no-such-target"]):
        result = subprocess.run([sys.executable, "-c", SIGNAL_PROBE, *args], cwd=project.root, capture_output=True, text=True)
        assert result.returncode in (0, 2), result
        assert "signal-probe default=True" in result.stderr, (args, result)


def test_missing_source_named_at_build(project):
    project.weavefile(
        """
        [rules.a]
        inputs = ["nope.csv"]
        outputs = ["a"]
        cmd = "cp nope.csv a"
        """
    )
    assert_user_error(project.run("build"), "missing source 'nope.csv' needed by rule 'a'")


def test_alias_naming_a_rule_whose_output_dir_exists(project):
    project.weavefile(
        """
        [rules.all]
        inputs = ["plots"]
        [rules.plots]
        outputs = ["plots/a.txt"]
        cmd = "echo a > plots/a.txt"
        """
    )
    assert project.run("build").rc == 0
    (project.root / "plots/a.txt").unlink()
    result = project.run("build")
    assert result.rc == 0 and "[1/1] plots plots/a.txt" in result.out, result


@pytest.mark.parametrize("item", ["qc/", "qc"])
def test_alias_naming_a_directory_that_rules_write_into_builds_its_makers(project, item):
    """`inputs = ["qc/"]` in an alias, qc/ holding outputs of another rule: 'missing source'
    before qc/ existed, and after, 'nothing to do' even with one of its files edited by hand,
    where `weave build qc/` (and a rule with a cmd reading qc/) built the rule."""
    project.weavefile(
        f"""
        [rules.all]
        inputs = ["{item}"]
        [rules.qc]
        outputs = ["qc/a.html", "qc/b.html"]
        cmd = "echo made > qc/a.html; echo made > qc/b.html"
        """
    )
    first = project.run("build")
    assert first.rc == 0 and "[1/1] qc qc/a.html" in first.out, first
    assert "nothing to do" in project.run("build").out
    project.write("qc/a.html", "edited\n")
    assert "output modified: qc/a.html" in project.run("plan").out
    again = project.run("build")
    assert again.rc == 0 and "[1/1] qc qc/a.html" in again.out, again
    assert project.read("qc/a.html") == "made\n"


def test_reverted_input_explains_against_latest_run(project):
    project.write("src.txt", "one\n")
    project.weavefile('[rules.c]\ninputs = ["src.txt"]\noutputs = ["c.txt"]\ncmd = "cp src.txt c.txt"\n')
    assert project.run("build").rc == 0
    project.write("src.txt", "two\n")
    assert project.run("build").rc == 0
    project.write("src.txt", "one\n")
    plan = project.run("plan")
    assert "input changed: src.txt" in plan.out and "output modified" not in plan.out, plan.out
    assert project.run("build").rc == 0
    assert project.read("c.txt") == "one\n"


def test_glob_matching_nothing_warns(project):
    project.weavefile('[rules.c]\ninputs = ["data/*.csv"]\noutputs = ["all.csv"]\ncmd = "cat {inputs} /dev/null > {outputs}"\n')
    result = project.run("build")
    assert result.rc == 0
    assert "input glob 'data/*.csv' matches no file" in result.err


def test_many_jobs_logs_are_exact(project):
    """Output goes to reused spool files first (executor.py): each log still holds exactly its
    job's latest output, an old log is replaced, not appended to, and a job that reruns
    without printing anything leaves no log (its old one is removed) and no file per job."""
    lines = ['default = ["all.txt"]', "[rules.part]", 'foreach = { n = [' + ", ".join(f'"{n}"' for n in range(80)) + "] }",
             'outputs = ["parts/{n}.txt"]', 'cmd = "{vars.say} run-{vars.round} job {wildcards.n}; echo {wildcards.n} > {outputs}"',
             "[rules.all]", "inputs = [" + ", ".join(f'"parts/{n}.txt"' for n in range(80)) + "]",
             'outputs = ["all.txt"]', 'cmd = "cat {inputs} > {outputs}"']
    for round_, say in ((1, "echo"), (2, "echo"), (3, "true")):
        project.weavefile("\n".join(lines[:1] + [f'[vars]\nround = {round_}\nsay = "{say}"'] + lines[1:]) + "\n")
        result = project.run("build", "-j", "2")
        assert result.rc == 0, result
        for n in (0, 41, 79):
            log = f".weave/logs/part[n={n}].log"
            if say == "echo":
                assert project.read(log) == f"run-{round_} job {n}\n"
            else:
                assert not project.exists(log)
        assert not project.exists(".weave/logs/all.log")  # `cat ... > all.txt` prints nothing
    assert sorted(os.listdir(project.root / ".weave" / "logs")) == []  # no spool left either


def test_failed_silent_job_keeps_its_log(project):
    project.weavefile(
        """
default = ["b.txt"]

[rules.quiet]
outputs = ["q.txt"]
cmd = "echo q > {outputs}"

[rules.loud]
outputs = ["l.txt"]
cmd = "echo hello from loud; echo l > {outputs}"

[rules.broken]
inputs = ["q.txt", "l.txt"]
outputs = ["b.txt"]
cmd = "exit 3"
"""
    )
    result = project.run("build", "-j", "2")
    assert result.rc == 1 and "FAILED broken b.txt" in result.err, result
    assert ".weave/logs/broken.log" in result.err  # a failure always leaves its log, even empty
    assert project.read(".weave/logs/broken.log") == ""
    assert project.read(".weave/logs/loud.log") == "hello from loud\n"
    assert not project.exists(".weave/logs/quiet.log")
    report = project.run("report", "-o", "-")
    assert report.rc == 0, report
    failures = report.out[report.out.index('id="failures"') :]
    assert ".weave/logs/broken.log" in failures and "no log was recorded" not in failures


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_builds_in_one_process_leak_no_descriptors(project):
    """An embedding program (or watch mode) runs many builds in one process: each build's
    pidfds, epoll set, log and null descriptors are closed when it ends, failed or not."""
    from weavebuild import Project

    make_pipeline(project)
    Project.load(str(project.root)).build(jobs=2)  # imports, caches, the first store
    before = len(os.listdir("/proc/self/fd"))
    for round_ in range(4):
        project.write("raw/a.txt", f"round {round_}\n")
        result = Project.load(str(project.root)).build(jobs=2)
        assert result.ok and result.ran
    project.write("raw/a.txt", "round 5\n")
    project.write("Weavefile", project.read("Weavefile").replace("tr a-z A-Z", "false"))
    try:
        Project.load(str(project.root)).build(jobs=2)
    except Exception:
        pass  # the build fails; its descriptors must still be closed
    assert len(os.listdir("/proc/self/fd")) == before


def test_constraint_regex_with_a_nested_set_prints_no_python_warning(project):
    """`[[a]` makes Python's re warn ("possible nested set"): the user sees the build, not that."""
    project.weavefile(
        """
        [rules.copy]
        inputs = ["src/{name}.txt"]
        outputs = ["out/{name}.txt"]
        wildcards = { name = "[[a-z]+" }
        cmd = "cp {inputs} {outputs}"
        """
    )
    project.write("src/ab.txt", "x\n")
    result = project.run("build", "out/ab.txt", env={"PYTHONWARNINGS": "default"})
    assert result.rc == 0, result
    assert "Warning" not in result.err, result.err


def test_weavefile_saved_with_a_byte_order_mark_builds(project):
    project.write("Weavefile", '\ufeff[rules.hello]\noutputs = ["hello.txt"]\ncmd = "echo hi > hello.txt"\n')
    assert (project.root / "Weavefile").read_bytes().startswith(b"\xef\xbb\xbf")
    result = project.run("build")
    assert result.rc == 0, result
    assert project.read("hello.txt") == "hi\n"


def test_fan_in_longer_than_bash_takes(project):
    """A plain command over thousands of paths runs without bash, so it is limited only by
    the kernel's total for arguments; under bash (one argument of at most 128 KiB) it fails
    with an explanation, and the failure report shows the start of the command only."""
    names = [f"d/input_file_with_quite_a_long_name_{i:05d}.txt" for i in range(3500)]
    for name in names:
        project.write(name, "x\n", dedent=False)
    project.weavefile(
        """
        [rules.merge]
        inputs = ["d/*.txt"]
        outputs = ["all.txt"]
        cmd = "cat {inputs} > {outputs}"

        [rules.count]
        inputs = ["d/*.txt"]
        outputs = ["n.txt"]
        cmd = "cat {inputs} | wc -l > {outputs}; echo counted"
        """
    )
    assert len(" ".join(names)) > 128 * 1024
    result = project.run("build", "-k", "merge", "count")
    assert result.rc == 1, result
    assert project.read("all.txt") == "x\n" * 3500
    assert "FAILED count n.txt: cannot start: Argument list too long" in result.err
    assert "128 KiB for a command bash runs" in result.err and "list the inputs in a file" in result.err
    assert "this command uses shell syntax or a builtin, so bash runs it" in result.err  # why its limit is bash's
    assert "8 bytes more per word, and the environment together" in result.err  # why 1.5 MB can be too much
    command_line = next(line for line in result.err.splitlines() if line.startswith("  command: "))
    assert len(command_line) < 800 and command_line.endswith("more characters)"), command_line


def test_an_inline_script_too_long_to_start_is_told_to_move_to_a_file(project):
    # Not a fan-in: the hint about listing inputs in a file would not help.
    body = "\n".join(f"echo line {i} of a long inline script that grew and grew" for i in range(3000))
    project.write("Weavefile", '[rules.long]\noutputs = ["long.txt"]\ncmd = """' + body + '\ntouch {outputs}"""\n', dedent=False)
    result = project.run("build", "long")
    assert result.rc == 1, result
    assert "FAILED long long.txt: cannot start: Argument list too long" in result.err
    assert "put the script in a file of its own" in result.err and "list the inputs" not in result.err


def _count_reads(monkeypatch, project) -> list:
    """The project-relative paths of the files FileState reads (hashes), as they are read."""
    from weavebuild import filestate

    reads: list = []
    real_hash_file, real_hash_files = filestate.hash_file, filestate.hash_files

    def counting_hash_file(path, *args, **kwargs):
        reads.append(os.path.relpath(path, project.root))
        return real_hash_file(path, *args, **kwargs)

    def counting_hash_files(files, *args, **kwargs):
        reads.extend(os.path.relpath(path, project.root) for path, _ in files)
        return real_hash_files(files, *args, **kwargs)

    monkeypatch.setattr(filestate, "hash_file", counting_hash_file)
    monkeypatch.setattr(filestate, "hash_files", counting_hash_files)
    return reads


def _count_store_reads(monkeypatch) -> tuple:
    """(whole, single): one entry per read of the whole digest cache, and the path of each
    row read by itself (Store.file_row)."""
    from weavebuild import store

    whole: list = []
    single: list = []
    real_load_files, real_file_row = store.Store.load_files, store.Store.file_row

    def load_files(self, paths=None):
        if paths is None:
            whole.append(True)
            return real_load_files(self)
        return real_load_files(self, paths)

    def file_row(self, path):
        single.append(path)
        return real_file_row(self, path)

    monkeypatch.setattr(store.Store, "load_files", load_files)
    monkeypatch.setattr(store.Store, "file_row", file_row)
    return whole, single


def test_each_output_is_read_once_by_a_build(project, monkeypatch):
    """Outputs are hashed once they have left the racy window (or when a dependent needs
    them), not right after the job and again at the end of the build: a from-scratch build
    reads each file once. The slow job ends well after the copies, so every copy is old
    enough when its record is written, whatever the machine's load."""
    from weavebuild.api import Project as WeaveProject

    names = [f"s{i:02d}" for i in range(12)]
    rules = "".join(
        f'[rules.{name}]\ninputs = ["src/{name}.txt"]\noutputs = ["out/{name}.o"]\ncmd = "cp {{inputs}} {{outputs}}"\n\n'
        for name in names
    )
    hour_ago = time.time() - 3600  # sources out of their racy window: each is read once too
    for name in names:
        os.utime(project.write(f"src/{name}.txt", f"{name}\n"), (hour_ago, hour_ago))
    project.weavefile(
        'default = ["slow.txt"' + "".join(f', "out/{name}.o"' for name in names) + "]\n\n" + rules
        + "[rules.slow]\noutputs = [\"slow.txt\"]\n"
        + "cmd = \"while [ $(ls out 2>/dev/null | wc -l) -lt 12 ]; do sleep 0.05; done; sleep 0.3; echo done > slow.txt\"\n"
    )
    reads = _count_reads(monkeypatch, project)
    result = WeaveProject.load(str(project.root)).build(jobs=2)
    assert result.ok and len(result.ran) == 13
    outputs = sorted(path for path in reads if path.startswith("out/"))
    assert outputs == [f"out/{name}.o" for name in names], reads
    assert sorted(path for path in reads if path.startswith("src/")) == [f"src/{name}.txt" for name in names], reads
    # What was recorded is right: nothing reruns, and an edited output is noticed.
    again = project.run("build")
    assert again.rc == 0 and "nothing to do" in again.out, again
    project.write("out/s03.o", "tampered\n")
    fixed = project.run("build")
    assert fixed.rc == 0 and fixed.started == ["s03 out/s03.o"], fixed
    assert project.read("out/s03.o") == "s03\n"


def test_an_output_gone_before_it_is_recorded_is_not_recorded(project):
    """A job's outputs are hashed a little after it ends; an output deleted in between (here,
    as the job after the next starts: the next one starts before the first's outputs are
    looked at) leaves no record, with a warning, and the job runs again."""
    from weavebuild.api import Project as WeaveProject
    from weavebuild.reporter import Reporter

    project.weavefile(
        """
        default = ["a.txt", "b.txt", "c.txt"]
        [rules.a]
        outputs = ["a.txt"]
        cmd = "echo a > a.txt"
        [rules.b]
        outputs = ["b.txt"]
        cmd = "echo b > b.txt"
        [rules.c]
        outputs = ["c.txt"]
        cmd = "echo c > c.txt"
        """
    )

    class DeleteFirstOutputOnThirdStart(Reporter):
        def __init__(self) -> None:
            self.started: list = []
            self.warnings: list = []

        def job_started(self, display, index, total, command, reasons) -> None:
            self.started.append(display.split()[0])  # "a a.txt": the rule, then its output
            if len(self.started) == 3:
                (project.root / f"{self.started[0]}.txt").unlink()

        def warning(self, message: str) -> None:
            self.warnings.append(message)

    reporter = DeleteFirstOutputOnThirdStart()
    result = WeaveProject.load(str(project.root)).build(jobs=1, reporter=reporter)
    first = reporter.started[0]
    assert result.ok
    assert len(reporter.warnings) == 1 and f"'{first}.txt' disappeared" in reporter.warnings[0], reporter.warnings
    again = project.run("build")
    assert again.rc == 0 and again.started == [f"{first} {first}.txt"], again
    assert all(project.read(f"{name}.txt") == f"{name}\n" for name in "abc")


def test_a_job_made_ready_by_an_end_starts_before_the_queued_ones(project):
    """With one slot, a job's end refills the slot before weave looks at the ended job's
    outputs, but not when the end makes a job ready: that job may come first on the critical
    path, and must be decided before the slot is refilled (else a queued job takes it)."""
    from weavebuild.api import Project as WeaveProject
    from weavebuild.reporter import Reporter

    project.weavefile(
        """
        default = ["e.txt", "c.txt", "d.txt"]
        [rules.a]
        outputs = ["a.txt"]
        cmd = "echo a > a.txt"
        [rules.b]
        inputs = ["a.txt"]
        outputs = ["b.txt"]
        cmd = "cp a.txt b.txt"
        [rules.e]
        inputs = ["b.txt"]
        outputs = ["e.txt"]
        cmd = "cp b.txt e.txt"
        [rules.c]
        outputs = ["c.txt"]
        cmd = "echo c > c.txt"
        [rules.d]
        outputs = ["d.txt"]
        cmd = "echo d > d.txt"
        """
    )
    seen: list = []

    class Watch(Reporter):
        def job_started(self, display, index, total, command, reasons) -> None:
            seen.append(display.split()[0])

    api = WeaveProject.load(str(project.root))
    result = api.build(jobs=1, reporter=Watch())
    assert result.ok and len(seen) == 5, seen
    # a is the first (longest chain); b, ready once a is looked at and with e after it, comes
    # right after it, before the queued c and d (whichever order those two come in).
    assert seen[:2] == ["a", "b"], seen


def test_keep_going_summary_names_the_first_twenty_failures_and_counts_the_rest(project):
    values = ", ".join(f'"{n:02d}"' for n in range(25))
    project.weavefile(
        f"""
        [rules.bad]
        foreach = {{ n = [{values}] }}
        outputs = ["bad/{{n}}.txt"]
        cmd = "exit 1"
        """
    )
    result = project.run("-k", "-q", "-j1", "build")
    assert result.rc == 1, result
    summary = result.err[result.err.index("weave: 25 failed") :].splitlines()
    assert summary[1:21] == [f"  failed: bad bad/{n:02d}.txt (log: .weave/logs/bad[n={n:02d}].log)" for n in range(20)], summary
    assert summary[21] == "  ... and 5 more failed jobs (weave status lists them)"
    # As they happened: the first 20 in full (with the command), then one line each.
    reports = result.err[: result.err.index("weave: 25 failed")].splitlines()
    assert reports.count("  command: exit 1") == 20
    assert reports[-6:] == [
        "weave: more than 20 jobs failed: one line each from here (their logs hold their output)"
    ] + [f"weave: FAILED bad bad/{n}.txt: exited with code 1 (log: .weave/logs/bad[n={n}].log)" for n in range(20, 25)]


def test_failure_report_keeps_colours_but_not_other_control_characters(project):
    # Binary output (shift-out, screen clears) replayed in the report would act on the terminal.
    project.weavefile(
        r"""
        [rules.noisy]
        outputs = ["noisy.txt"]
        cmd = '''printf 'bin\016\033[2Jary \033[31mred\n'; exit 1'''
        """
    )
    result = project.run("build")
    assert result.rc == 1, result
    report = result.err[result.err.index("last lines of output:") :]
    assert "    bin\ufffd\ufffd[2Jary \x1b[31mred\x1b[0m\n" in report, repr(report)


def test_keep_going_summary_lists_every_failure_with_its_log_if_any(project):
    project.weavefile(
        """
default = ["a.txt", "b.txt", "c.txt"]

[rules.a]
outputs = ["a.txt"]
cmd = "exit 2"

[rules.b]
outputs = ["b.txt"]
cmd = "true"

[rules.c]
outputs = ["c.txt"]
cmd = "echo about to fail; exit 3"
"""
    )
    result = project.run("-k", "build")
    assert result.rc == 1, result
    # The list of failures follows the summary line that counts them, on stderr.
    summary = result.err[result.err.index("weave: 3 failed") :]
    assert "failed: a a.txt (log: .weave/logs/a.log)" in summary  # silent, failed: a log
    # exited 0 and printed nothing, but made no output: a failed attempt keeps a log, if empty
    assert "failed: b b.txt (log: .weave/logs/b.log)" in summary and project.read(".weave/logs/b.log") == ""
    assert "rule b exited 0 but did not create b.txt" in result.err
    assert "failed: c c.txt (log: .weave/logs/c.log)" in summary
    assert project.read(".weave/logs/c.log") == "about to fail\n"
    quiet = project.run("-q", "-k", "build")
    assert quiet.rc == 1 and "failed: c c.txt (log: .weave/logs/c.log)" in quiet.err and quiet.out == ""


def test_python_api_takes_one_target_as_a_string_and_refuses_zero_jobs(project):
    from weavebuild import Project
    from weavebuild.errors import UsageError

    make_pipeline(project)
    result = Project.load(str(project.root)).build("count.txt")
    assert result.ok and project.read("count.txt") == "3\n"
    graph, verdicts = Project.load(str(project.root)).plan("count.txt")
    assert [job.key for job in graph.targets] == ["count"]
    with pytest.raises(UsageError, match="jobs=0: at least one job slot"):
        Project.load(str(project.root)).build(jobs=0)


def test_dash_c_through_a_symlink_keeps_the_logical_pwd(project, tmp_path):
    """`weave -C link` sets PWD for jobs as `cd link` would: the path through the symlink."""
    project.weavefile('[rules.a]\noutputs = ["pwd.txt"]\ncmd = "printenv PWD > pwd.txt"\n')
    link = tmp_path / "link"
    link.symlink_to(project.root)
    result = subprocess.run(
        [sys.executable, "-m", "weavebuild", "-C", "link", "build"], cwd=tmp_path, capture_output=True, text=True,
        env=dict(os.environ, PWD=str(tmp_path)), timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert project.read("pwd.txt").strip() == str(link)


def test_files_named_like_options_reach_commands_as_files(project):
    # `cat -E.txt` would take -E as an option (show line ends); `./-E.txt` is the same file.
    project.write("-E.txt", "dash\n")
    project.write("n/-n.txt", "nested\n")
    project.weavefile(
        """
        [rules.cat]
        inputs = { first = "-E.txt", rest = ["n/-n.txt"] }
        outputs = ["-out.txt"]
        cmd = "cat {inputs.first} {inputs.rest} > {outputs}; cat {inputs[0]} >> {outputs[0]}"
        """
    )
    result = project.run("-v", "build", "./-out.txt")
    assert result.rc == 0, result
    assert project.read("-out.txt") == "dash\nnested\ndash\n"
    assert "cat ./-E.txt n/-n.txt > ./-out.txt; cat ./-E.txt >> ./-out.txt" in result.out, result.out


def test_files_named_like_options_that_need_quoting_reach_commands_as_files(project):
    """`-n x.txt` is quoted ('-n x.txt'), and the quoted text starts with a quote: the check
    for a leading '-' missed it, so `cat` took the name for options (and `touch` too)."""
    project.write("-n x.txt", "hello\n")
    project.write("b.txt", "b\n")
    project.weavefile(
        """
        [rules.cat]
        inputs = ["b.txt", "-n x.txt"]
        outputs = ["out.txt"]
        cmd = "cat {inputs} > {outputs}; cat {inputs[1:]} >> {outputs}"
        [rules.mk]
        outputs = ["-o y.txt"]
        cmd = "touch {outputs}"
        """
    )
    result = project.run("-v", "build", "out.txt", "./-o y.txt")
    assert result.rc == 0, result
    assert project.read("out.txt") == "b\nhello\nhello\n"
    assert (project.root / "-o y.txt").exists()
    assert "cat b.txt './-n x.txt' > out.txt" in result.out, result.out
    assert "touch './-o y.txt'" in result.out, result.out


def test_a_log_named_like_an_option_reaches_the_command_as_a_file(project):
    project.weavefile(
        """
        [rules.a]
        outputs = ["a.txt"]
        log = "-n x.log"
        cmd = "echo hi > {outputs}; echo logged > {log}"
        """
    )
    result = project.run("-v", "build")
    assert result.rc == 0, result
    assert "echo logged > './-n x.log'" in result.out, result.out
    assert project.read("-n x.log") == "logged\n"


def test_units_per_sample_found_by_foreach_follow_new_and_removed_files(project):
    """A foreach pattern that names the job's own wildcard is scanned per job, and the scan is
    asked again by later builds (graph cache and no-op stamp): a new unit of one sample reruns
    that sample's merge only; removing it reruns it again."""
    project.weavefile(
        """
        [rules.all]
        inputs  = ["merged/{sample}.txt"]
        foreach = { sample = "samples/{sample}_1.txt" }
        [rules.merge]
        inputs  = ["samples/{sample}_{unit}.txt"]
        outputs = ["merged/{sample}.txt"]
        foreach = { unit = "samples/{sample}_{unit}.txt" }
        cmd     = "cat {inputs} > {outputs} && echo {wildcards.sample} >> runs.log"
        [rules.pairs]
        inputs  = ["samples/{s}_{u}.txt"]
        outputs = ["pairs.txt"]
        foreach = { s = "samples/{s}_{u}.txt", u = "samples/{s}_{u}.txt" }
        cmd     = "cat {inputs} > {outputs} && echo pairs >> runs.log"
        """
    )
    project.write("samples/A_1.txt", "a1\n")
    project.write("samples/A_2.txt", "a2\n")
    project.write("samples/B_1.txt", "b1\n")
    assert project.run("build", "all", "pairs.txt").rc == 0
    assert sorted(project.runs_log()) == ["A", "B", "pairs"]
    assert project.read("merged/A.txt") == "a1\na2\n"
    assert project.read("pairs.txt") == "a1\na2\nb1\n"
    project.clear_runs()
    assert project.run("build", "all", "pairs.txt").rc == 0
    assert project.runs_log() == []
    project.write("samples/B_7.txt", "b7\n")
    assert project.run("build", "all", "pairs.txt").rc == 0
    assert sorted(project.runs_log()) == ["B", "pairs"]
    assert project.read("merged/B.txt") == "b1\nb7\n"
    assert project.read("pairs.txt") == "a1\na2\nb1\nb7\n"
    project.clear_runs()
    (project.root / "samples/B_7.txt").unlink()
    assert project.run("build", "all", "pairs.txt").rc == 0
    assert sorted(project.runs_log()) == ["B", "pairs"]
    assert project.read("merged/B.txt") == "b1\n"


CHECKPOINT = """
default = ["summary.txt"]
[rules.split]
inputs  = ["data.txt"]
outputs = ["chunks/"]
cmd     = "echo split >> runs.log; mkdir -p chunks && split -l 4 data.txt chunks/part_"
[rules.process]
inputs  = ["chunks/{c}"]
outputs = ["processed/{c}.txt"]
cmd     = "echo process >> runs.log; wc -l < {inputs} | tr -d ' ' > {outputs}"
[rules.summary]
inputs  = ["processed/{c}.txt"]
outputs = ["summary.txt"]
foreach = { c = "chunks/{c}" }
cmd     = "echo summary >> runs.log; cat {inputs} > {outputs}"
[rules.listing]
inputs  = ["chunks/*"]
outputs = ["listing.txt"]
cmd     = "echo listing >> runs.log; cat {inputs} | wc -l | tr -d ' ' > {outputs}"
"""


def test_a_foreach_over_another_rules_directory_output_builds_that_directory_first(project):
    """Snakemake's checkpoint: the values of `c` are the files split makes. The build makes
    chunks/ first, then resolves again; a later change of what split makes is followed
    (through the no-op stamp's partial path too), and the result is what a build from
    scratch gives."""
    project.weavefile(CHECKPOINT)
    project.write("data.txt", "".join(f"{n}\n" for n in range(1, 11)))
    result = project.run("build", "summary.txt", "listing.txt")
    assert result.rc == 0, result
    assert "building chunks/ first" in result.err + result.out
    # One summary for the whole build, counting what the first phase ran.
    assert re.findall(r"^weave: .*(?:ran|nothing to do).*$", result.out + result.err, re.M) == [
        "weave: 6 ran, 0 up to date" + re.search(r" \([0-9.]+s\)$", result.out + result.err, re.M).group(0)
    ], result
    assert sorted(project.runs_log()) == ["listing", "process", "process", "process", "split", "summary"]
    assert project.read("summary.txt") == "4\n4\n2\n"
    assert project.read("listing.txt") == "10\n"
    for _ in range(2):  # the second no-op is the stamp's (chunks/ was written just before the first)
        project.clear_runs()
        result = project.run("build", "summary.txt", "listing.txt")
        assert result.rc == 0 and project.runs_log() == [], result
        assert "first" not in result.err + result.out
    # A chunk deleted: split runs again and makes the same chunks; nothing else runs, and the
    # summary says so (not "1 ran" then "nothing to do").
    os.unlink(project.root / "chunks/part_aa")
    project.clear_runs()
    result = project.run("build", "summary.txt", "listing.txt")
    assert result.rc == 0 and project.runs_log() == ["split"], result
    assert "weave: 1 ran, 5 up to date" in result.out and "nothing to do" not in result.out, result
    project.clear_runs()
    project.write("data.txt", "".join(f"{n}\n" for n in range(1, 14)))
    result = project.run("build", "summary.txt", "listing.txt")
    assert result.rc == 0, result
    assert sorted(project.runs_log()) == ["listing", "process", "process", "split", "summary"]
    assert project.read("summary.txt") == "4\n4\n4\n1\n"
    assert project.read("listing.txt") == "13\n"
    scratch = project.root.parent / "scratch"
    scratch.mkdir()
    (scratch / "Weavefile").write_text(CHECKPOINT)
    (scratch / "data.txt").write_text(project.read("data.txt"))
    assert Project(scratch).run("build", "summary.txt", "listing.txt").rc == 0
    for name in ("summary.txt", "listing.txt"):
        assert (scratch / name).read_text() == project.read(name)


def test_a_source_named_as_a_target_of_a_checkpoint_project_builds_and_cleans_nothing(project):
    """A source file named as a target is a source, even where a foreach reads another rule's
    directory output: before, the lookup for outputs "under" it took that directory as
    something to make first, so `weave build data.txt` ran split and `weave clean README`
    removed chunks/."""
    project.weavefile(CHECKPOINT)
    project.write("data.txt", "".join(f"{n}\n" for n in range(1, 11)))
    project.write("README", "notes\n")
    assert project.run("build").rc == 0
    os.unlink(project.root / "chunks/part_aa")  # split is stale now
    project.clear_runs()
    for target in ("data.txt", "README", "Weavefile"):
        result = project.run("build", target)
        assert result.rc == 0 and "nothing to do (no job makes the targets)" in result.out, (target, result)
        assert "first" not in result.out + result.err, (target, result)
        plan = project.run("plan", target)
        assert plan.rc == 0 and "split" not in plan.out, (target, plan)
    assert project.runs_log() == []
    clean = project.run("clean", "README")
    assert clean.rc == 0 and "chunks" not in clean.out + clean.err, clean
    assert project.exists("chunks/part_ab") and project.exists("summary.txt")
    # A directory the pattern jobs write into still builds what it holds, chunks/ first.
    result = project.run("build", "processed/")
    assert result.rc == 0 and "building chunks/ first" in result.out + result.err, result


def test_plan_of_a_checkpoint_before_its_first_build_lists_the_directory_job_first(project):
    """Before chunks/ exists, the plan lists split first, says the jobs that read chunks/ are
    decided once it is made, and the glob into it does not warn that it matches nothing."""
    project.weavefile(CHECKPOINT)
    project.write("data.txt", "1\n2\n")
    plan = project.run("plan", "summary.txt", "listing.txt")
    assert plan.rc == 0, plan
    lines = plan.out.splitlines()
    assert lines[1].startswith("  [1/3] split chunks/"), plan
    assert "then: the jobs that read chunks/" in plan.out, plan
    assert "matches no file" not in plan.err, plan
    data = json.loads(project.run("plan", "--json", "summary.txt", "listing.txt").out)
    assert [job["rule"] for job in data["run"]][0] == "split" and data["decided_after"] == ["chunks/"], data
    assert project.run("build", "summary.txt", "listing.txt").rc == 0
    again = project.run("plan", "summary.txt", "listing.txt")
    assert again.out.startswith("nothing to do") and "then:" not in again.out, again


def test_a_failing_build_counts_early_cutoffs_too(project):
    """The summary of a build with a failure says how many jobs early cutoff spared, as the
    summary of a successful one does."""
    project.weavefile(
        """
        [rules.t]
        inputs  = ["s/{x}.txt", "t.sh"]
        outputs = ["t/{x}.txt"]
        foreach = { x = ["A", "B"] }
        cmd     = "bash t.sh {inputs[0]} {outputs}"
        [rules.n]
        inputs  = ["t/{x}.txt"]
        outputs = ["n/{x}.txt"]
        foreach = { x = ["A", "B"] }
        cmd     = "wc -c < {inputs} > {outputs}"
        """
    )
    project.write("s/A.txt", "a\n")
    project.write("s/B.txt", "b\n")
    project.write("t.sh", 'cp "$1" "$2"\n')
    assert project.run("build", "n").rc == 0
    project.write("t.sh", '# v2\ngrep -q b "$1" && exit 1\ncp "$1" "$2"\n')
    result = project.run("build", "-k", "-j", "1", "n")
    assert result.rc == 1, result
    assert "weave: 1 failed, 1 ran, 1 up to date (1 by early cutoff), 1 not run" in result.err, result


def assert_one_build_makes(project, data: str, output: str, expected: str) -> None:
    """With data.txt holding `data`, one build makes `output` hold `expected`, and the next
    has nothing to do."""
    project.write("data.txt", data)
    result = project.run("build")
    assert result.rc == 0, result
    assert project.read(output) == expected, result
    assert "nothing to do" in project.run("build").out


def test_nested_directory_outputs_are_made_innermost_first_in_one_build(project):
    """A second checkpoint made from what the first one made (chunks/ -> proc/ -> chunks2/ ->
    proc2/ -> total2): one build settles both, innermost first, and equals a build from
    scratch; after an edit that removes a chunk, too. Before, it took two builds, and the
    second stopped at the removed chunk's input."""
    weavefile = """
        default = ["total2.txt"]
        [rules.split]
        inputs  = ["data.txt"]
        outputs = ["chunks/"]
        cmd     = "mkdir -p chunks; while read -r k v; do echo $v >> chunks/$k.txt; done < data.txt"
        [rules.proc]
        inputs  = ["chunks/{c}.txt"]
        outputs = ["proc/{c}.txt"]
        cmd     = "tr a-z A-Z < {inputs} > {outputs}"
        [rules.split2]
        inputs  = ["proc/{c}.txt"]
        outputs = ["chunks2/"]
        foreach = { c = "chunks/{c}.txt" }
        cmd     = "mkdir -p chunks2; cat {inputs} | while read -r w; do echo $w >> chunks2/${{w:0:1}}.txt; done"
        [rules.proc2]
        inputs  = ["chunks2/{x}.txt"]
        outputs = ["proc2/{x}.txt"]
        cmd     = "sort {inputs} > {outputs}"
        [rules.total2]
        inputs  = ["proc2/{x}.txt"]
        outputs = ["total2.txt"]
        foreach = { x = "chunks2/{x}.txt" }
        cmd     = "echo {wildcards.x} > {outputs}; cat /dev/null {inputs} >> {outputs}"
        """
    project.weavefile(weavefile)
    for data, expected in (
        ("a apple\nb kiwi\na zebra\n", "A K Z\nAPPLE\nKIWI\nZEBRA\n"),
        ("a apple\nc mm\n", "A M\nAPPLE\nMM\n"),
    ):
        assert_one_build_makes(project, data, "total2.txt", expected)
        scratch = Project(project.root.parent / f"scratch{len(data)}")
        scratch.root.mkdir()
        scratch.weavefile(weavefile)
        assert_one_build_makes(scratch, data, "total2.txt", expected)


def test_a_glob_above_a_directory_output_makes_it_first_and_minus_b_does_not_force_it(project):
    """`data/**/*.txt` reaches into data/gen/, which rule split makes: it is made first (it was
    never made, and after an edit the build stopped at a file split no longer makes). -B names
    the build's targets, not the directories read on the way."""
    project.weavefile(
        """
        default = ["g.txt"]
        [rules.split]
        inputs  = ["in.txt"]
        outputs = ["data/gen/"]
        cmd     = "mkdir -p data/gen; for w in $(cat in.txt); do echo $w > data/gen/$w.txt; done; echo split >> runs.log"
        [rules.g]
        inputs  = ["data/**/*.txt"]
        outputs = ["g.txt"]
        cmd     = "echo {inputs} > {outputs}; echo g >> runs.log"
        """
    )
    project.write("data/src.txt", "s\n")
    project.write("in.txt", "a b\n")
    assert project.run("build").rc == 0
    assert project.read("g.txt") == "data/gen/a.txt data/gen/b.txt data/src.txt\n"
    project.write("in.txt", "d\n")
    result = project.run("build")
    assert result.rc == 0, result
    assert project.read("g.txt") == "data/gen/d.txt data/src.txt\n"
    project.clear_runs()
    assert project.run("build", "-B", "g.txt").rc == 0
    assert project.runs_log() == ["g"]


def test_a_directory_output_per_chunk_of_another_follows_its_chunks(project):
    """cparts/{c}/ for each chunk that split makes in chunks/: when an edit removes a chunk,
    its cparts job is not built alongside split from the old listing (it failed: its input
    was gone), but after split, from the new one."""
    project.weavefile(
        """
        default = ["call.txt"]
        [rules.split]
        inputs  = ["data.txt"]
        outputs = ["chunks/"]
        cmd     = "mkdir -p chunks; while read -r k v; do echo $v >> chunks/$k.txt; done < data.txt"
        [rules.csplit]
        inputs  = ["chunks/{c}.txt"]
        outputs = ["cparts/{c}/"]
        cmd     = "mkdir -p {outputs}; i=0; while read -r w; do i=$((i+1)); echo $w > {outputs}/p$i.txt; done < {inputs}"
        [rules.cmerge]
        inputs  = ["cparts/{c}/{p}.txt"]
        outputs = ["cmerge/{c}.txt"]
        foreach = { p = "cparts/{c}/{p}.txt" }
        cmd     = "echo {wildcards.p} > {outputs}; cat /dev/null {inputs} >> {outputs}"
        [rules.call]
        inputs  = ["cmerge/{c}.txt"]
        outputs = ["call.txt"]
        foreach = { c = "chunks/{c}.txt" }
        cmd     = "cat /dev/null {inputs} > {outputs}"
        """
    )
    for data, expected in (
        ("a apple\nb kiwi\na zebra\n", "p1 p2\napple\nzebra\np1\nkiwi\n"),
        ("a apple\nc mm\nc nn\n", "p1\napple\np1 p2\nmm\nnn\n"),
    ):
        assert_one_build_makes(project, data, "call.txt", expected)


def test_a_foreach_over_another_rules_outputs_converges_in_one_build(project):
    """merge's foreach names copy's outputs (out/{s}.txt), which do not exist before the first
    build: they count as there, so the first build makes and merges them, and the second has
    nothing to do (it used to merge nothing, for good)."""
    project.weavefile(
        """
        default = ["merged.txt"]
        [rules.copy]
        inputs = ["raw/{s}.txt"]
        foreach = { s = "raw/{s}.txt" }
        outputs = ["out/{s}.txt"]
        cmd = "cp {inputs} {outputs}"
        [rules.merge]
        inputs = ["out/{s}.txt"]
        foreach = { s = "out/{s}.txt" }
        outputs = ["merged.txt"]
        cmd = "cat {inputs} > {outputs}"
        """
    )
    project.write("raw/a.txt", "a\n")
    project.write("raw/b.txt", "b\n")
    first = project.run("build")
    assert first.rc == 0 and "3 ran" in first.out, first
    assert project.read("merged.txt") == "a\nb\n"
    assert "nothing to do" in project.run("build").out


def test_a_small_graph_from_the_cache_reads_only_its_own_rows(project, monkeypatch):
    """`weave build OUT` in a built project takes its small graph from the graph cache and
    reads from the store only the rows of its own files and jobs, not the whole store; the
    files of a directory input's tree are looked up with one query as the tree is walked, so
    nothing unchanged is read again."""
    from weavebuild.api import Project as WeaveProject
    from weavebuild.reporter import Reporter

    hour_ago = time.time() - 3600  # out of the racy window: a file that did not change is never re-read
    for path in ("src/a.txt", "src/b.txt", "data/x1.txt", "data/x2.txt", "data/sub/x3.txt"):
        os.utime(project.write(path, f"{path}\n"), (hour_ago, hour_ago))
    project.weavefile(
        """
        default = ["all.txt"]
        [rules.a]
        inputs = ["src/a.txt"]
        outputs = ["out/a.o"]
        cmd = "cp src/a.txt out/a.o"
        [rules.b]
        inputs = ["src/b.txt"]
        outputs = ["out/b.o"]
        cmd = "cp src/b.txt out/b.o"
        [rules.d]
        inputs = ["data/"]
        outputs = ["out/d.txt"]
        cmd = "ls -R data > out/d.txt"
        [rules.all]
        inputs = ["out/a.o", "out/b.o", "out/d.txt"]
        outputs = ["all.txt"]
        cmd = "cat out/a.o out/b.o out/d.txt > all.txt"
        """
    )
    assert project.run("build").rc == 0
    whole_store, single = _count_store_reads(monkeypatch)
    reads = _count_reads(monkeypatch, project)
    project.write("src/a.txt", "changed\n")
    result = WeaveProject.load(str(project.root)).build(["out/d.txt", "out/a.o"], reporter=Reporter())
    assert result.ok
    assert sorted(item.job.key for item in result.ran) == ["a"], result.ran
    assert not whole_store
    assert "src/a.txt" in reads
    assert not [path for path in reads if path.startswith(("data/", "src/b"))], reads
    assert not [path for path in single if path.startswith("data/")], single  # the tree's rows: one query
    assert project.read("out/a.o") == "changed\n"
    # The same answers as a build that reads the whole store: the rest is still up to date.
    monkeypatch.undo()
    again = project.run("build")
    assert again.rc == 0 and again.started == ["all all.txt"], again


def test_plan_of_a_small_graph_reads_only_its_own_rows(project, monkeypatch):
    """`weave plan OUT` and `weave why OUT` in a built project read only the store's rows of
    that output's jobs and files, and give the verdicts a whole-store read gives."""
    from weavebuild.api import Project as WeaveProject

    rules = "".join(
        f'[rules.s{i}]\ninputs = ["src/s{i}.txt"]\noutputs = ["out/s{i}.o"]\ncmd = "cp src/s{i}.txt out/s{i}.o"\n\n'
        for i in range(6)
    )
    for i in range(6):
        project.write(f"src/s{i}.txt", f"{i}\n")
    project.weavefile('default = [' + ", ".join(f'"out/s{i}.o"' for i in range(6)) + ']\n\n' + rules)
    assert project.run("build").rc == 0
    project.write("src/s2.txt", "changed\n")
    whole_store, _ = _count_store_reads(monkeypatch)
    loaded = WeaveProject.load(str(project.root))
    graph, verdicts = loaded.plan(["out/s2.o", "out/s3.o"])
    assert not whole_store
    assert {job.key: verdicts[job.key].up_to_date for job in graph.jobs} == {"s2": False, "s3": True}
    monkeypatch.undo()
    why = project.run("why", "out/s2.o")
    assert why.rc == 0 and "src/s2.txt" in why.out, why


def test_a_slice_of_the_inputs_in_a_command(project):
    """{inputs[1:]} is make's $(filter-out $<,$^): the paths of a Python slice, quoted and
    joined as {inputs} joins them; an empty slice is empty, never an error."""
    for name in ("a", "b c", "d"):
        project.write(f"{name}.txt", f"{name}\n")
    project.weavefile(
        """
        [rules.x]
        inputs  = ["a.txt", "b c.txt", "d.txt"]
        outputs = ["x.txt"]
        cmd     = "printf '%s|' first {inputs[0]} rest {inputs[1:]} init {inputs[:-1]} none {inputs[7:]} > x.txt"
        """
    )
    result = project.run("build")
    assert result.rc == 0, result
    assert project.read("x.txt") == "first|a.txt|rest|b c.txt|d.txt|init|a.txt|b c.txt|none|"


def _absolute_input_project(project) -> None:
    """b reads a's output data/x.txt, written as the absolute path of the project's file."""
    project.write("in.txt", "v1\n")
    project.weavefile(
        f"""
        default = ["b.txt"]
        [rules.a]
        inputs = ["in.txt"]
        outputs = ["data/x.txt"]
        cmd = "cp {{inputs}} {{outputs}}"
        [rules.b]
        inputs = ["{project.root}/data/x.txt"]
        outputs = ["b.txt"]
        cmd = "cp {{inputs}} {{outputs}}"
        """
    )


def test_an_input_written_as_an_absolute_path_in_the_project_depends_on_its_maker(project):
    """`/…/proj/data/x.txt` is data/x.txt: taken for a source from outside, the first build
    stopped at a 'missing source', and once built an edit upstream never reached b."""
    _absolute_input_project(project)
    first = project.run("build")
    assert first.rc == 0, first
    assert project.read("b.txt") == "v1\n"
    project.write("in.txt", "v2\n")
    second = project.run("-v", "build")
    assert second.rc == 0, second
    assert project.read("b.txt") == "v2\n"
    assert "cp data/x.txt b.txt" in second.out, second.out


def test_a_moved_project_does_not_reuse_the_mapping_of_absolute_inputs(project, tmp_path):
    """The cached graph took `/…/proj/data/x.txt` for data/x.txt; in the project moved
    elsewhere that path names the old place, and the cache is not reused for it."""
    _absolute_input_project(project)
    assert project.run("build").rc == 0
    moved = tmp_path / "moved"
    os.rename(project.root, moved)
    result = subprocess.run(
        [sys.executable, "-m", "weavebuild", "build"], cwd=moved, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result
    assert f"missing source '{project.root}/data/x.txt'" in result.stderr, result.stderr


def test_a_job_whose_retry_the_stopping_build_did_not_run_is_reported_failed(project):
    """a failed its first attempt and waited for its retry when b failed (no -k): the build
    stopped without the retry, counted a as failed, yet never showed its failure (no FAILED
    line, command or output); so it is now, with its last attempt's output."""
    project.weavefile(
        """
        default = ["out/a", "out/b"]
        [rules.a]
        outputs = ["out/a"]
        retries = 2
        retry_delay = "30s"
        cmd = "echo oops-a; exit 1"
        [rules.b]
        outputs = ["out/b"]
        cmd = "while [ ! -e .weave/logs/a.log ]; do sleep 0.01; done; exit 1"
        """
    )
    # b fails once a's first attempt has failed and weave has kept its log, which it does as it
    # collects a's end: b's own end comes in a later wait, after a's retry was planned.
    result = project.run("build", "-j", "2")
    assert result.rc == 1, result
    assert "a out/a: attempt 1/3 failed (exited with code 1); retrying in" in result.err, result.err
    assert "FAILED a out/a: exited with code 1; its retry was not run because the build stopped" in result.err, result.err
    assert "command: echo oops-a; exit 1" in result.err
    assert "oops-a" in result.err.split("FAILED a out/a")[1], result.err
    assert "2 failed" in result.err, result.err


def test_a_copied_project_does_not_reuse_the_mapping_of_absolute_inputs(project, tmp_path):
    """`cp -a p p2`: in the copy, `/…/p/gen.txt` is the original's file, a source outside; the
    copied cached graph took it for the copy's own output (the original's Weavefile is still
    where it was, so asking for that did not tell)."""
    project.write("gen.src", "one\n")
    project.weavefile(
        f"""
        [rules.gen]
        inputs = ["gen.src"]
        outputs = ["gen.txt"]
        cmd = "cp gen.src gen.txt"
        [rules.use]
        inputs = ["{project.root}/gen.txt"]
        outputs = ["use.txt"]
        cmd = "cat {{inputs}} > {{outputs}}"
        """
    )
    assert project.run("build", "use").rc == 0
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(project.root, copy, symlinks=True)
    project.write("gen.src", "two\n")
    assert project.run("build", "gen").rc == 0
    result = subprocess.run(
        [sys.executable, "-m", "weavebuild", "build", "use"], cwd=copy, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result
    assert (copy / "use.txt").read_text() == "two\n"  # the original's gen.txt, read from outside


def test_an_absolute_input_spelled_through_the_logical_directory_is_a_project_path(tmp_path):
    """The project reached through a symlink (a home directory that is one): an input written
    with the path the shell shows (PWD) is the project's own file, not a missing source."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "home"
    link.symlink_to(real)
    (real / "gen.src").write_text("v1\n")
    (real / "Weavefile").write_text(
        '[rules.gen]\ninputs = ["gen.src"]\noutputs = ["gen.txt"]\ncmd = "cp gen.src gen.txt"\n'
        f'[rules.use]\ninputs = ["{link}/gen.txt"]\noutputs = ["use.txt"]\ncmd = "cp {{inputs}} {{outputs}}"\n'
    )
    env = dict(os.environ, PWD=str(link))
    first = subprocess.run([sys.executable, "-m", "weavebuild", "build", "use"], cwd=link, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first
    assert (real / "use.txt").read_text() == "v1\n"
    (real / "gen.src").write_text("v2\n")
    again = subprocess.run([sys.executable, "-m", "weavebuild", "build", "use"], cwd=link, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again
    assert (real / "use.txt").read_text() == "v2\n"


def test_the_first_phase_names_only_the_directories_it_remakes(project):
    """Two samples' checkpoint directories, one of them stale: 'building ... first' names
    that one (it named every directory the graph reads, up to date or not)."""
    project.weavefile(
        """
        default = ["all"]
        [rules.cluster]
        inputs = ["samples/{s}.txt"]
        outputs = ["clustering/{s}/"]
        cmd = "mkdir -p {outputs} && for i in $(cat {inputs}); do echo $i > {outputs}/$i.txt; done"
        [rules.gather]
        inputs = ["clustering/{s}/{i}.txt"]
        foreach = { i = "clustering/{s}/{i}.txt" }
        outputs = ["gathered/{s}.txt"]
        cmd = "cat {inputs} > {outputs}"
        [rules.all]
        inputs = ["gathered/{s}.txt"]
        foreach = { s = ["a", "b"] }
        """
    )
    project.write("samples/a.txt", "1 2\n")
    project.write("samples/b.txt", "3\n")
    first = project.run("build")
    assert first.rc == 0 and "building clustering/a/, clustering/b/ first" in first.out + first.err, first
    project.write("samples/a.txt", "1 2 4\n")
    result = project.run("build")
    assert result.rc == 0, result
    assert "building clustering/a/ first" in result.out + result.err, result
    assert project.read("gathered/a.txt") == "1\n2\n4\n"


def test_a_job_exiting_0_without_its_output_starts_no_next_job(project):
    """The slot a job frees is refilled before its bookkeeping only when it left its outputs:
    one that exited 0 without them fails, and the build stops as for any failure."""
    project.weavefile(
        """
        [rules.all]
        inputs = ["o/{i}.txt"]
        foreach = { i = [1, 2, 3] }
        [rules.w]
        outputs = ["o/{i}.txt"]
        cmd = "echo start {wildcards.i} >> ran.log; if [ {wildcards.i} = 1 ]; then exit 0; fi; echo > {outputs}"
        """
    )
    result = project.run("-j1", "build")
    assert result.rc == 1 and "exited 0 but did not create o/1.txt" in result.err, result
    assert project.read("ran.log") == "start 1\n"

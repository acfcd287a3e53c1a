"""Everyday commands: plan, status, why, list, clean, touch, init, --version."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from conftest import Project, assert_user_error
from test_build import make_pipeline


def test_version(project):
    result = project.run("--version")
    assert result.rc == 0 and result.out.startswith("weave ")


def test_plan_json_lists_reasons_and_up_to_date(project):
    make_pipeline(project)
    data = json.loads(project.run("plan", "--json").out)
    assert len(data["run"]) == 6 and data["up_to_date"] == []
    first = data["run"][0]
    assert first["reasons"] == [{"kind": "never built", "detail": ""}]
    outputs = {item["rule"]: item["outputs"] for item in data["run"]}
    assert outputs["train"] == ["models/best/"] and outputs["merge"] == ["merged.txt"]
    assert project.run("build").rc == 0
    project.write("raw/a.txt", "changed\n")
    data = json.loads(project.run("plan", "--json").out)
    run = {item["job"]: item for item in data["run"]}
    assert run["clean_sample[sample=a]"]["reasons"] == [{"kind": "input changed", "detail": "raw/a.txt"}]
    assert run["merge"]["reasons"][0]["kind"] == "upstream will rerun"
    assert "train" in data["up_to_date"]

def copy_25_sources(project):
    """A job per source: out/N.txt copies src/N.txt, for N in 0..24."""
    project.weavefile(
        """
        [rules.copy]
        inputs = ["src/{n}.txt"]
        outputs = ["out/{n}.txt"]
        foreach = { n = "src/{n}.txt" }
        cmd = "cp {inputs} {outputs}"
        """
    )
    for n in range(25):
        project.write(f"src/{n}.txt", f"{n}\n")


def test_plan_takes_a_builds_jobs_and_resources_and_checks_them(project):
    """A build's command line reused for its plan: -j and --resources are taken and checked
    as `build -n` checks them (a job needing more than the totals is an error)."""
    project.weavefile(
        """
        [rules.train]
        outputs = ["model.txt"]
        resources = { gpu = 2 }
        cmd = "echo $CUDA_VISIBLE_DEVICES > {outputs}"
        """
    )
    ok = project.run("plan", "-j", "4", "--resources", "gpu=2")
    assert ok.rc == 0 and "[1/1] train model.txt" in ok.out, ok
    for command in (["plan"], ["build", "-n"]):
        assert_user_error(project.run(*command, "--resources", "gpu=1"), "rule 'train' needs gpu=2 but only gpu=1 is available")
    assert_user_error(project.run("plan", "-j", "0"), "-j")
    assert not project.exists("model.txt")
    # Up to date (proven by the build's stamp), nothing would run: plan agrees with the build
    # that totals too small for the job do not matter (plan refused while build said "nothing
    # to do").
    assert project.run("build", "--resources", "gpu=2").rc == 0
    for command in (["plan"], ["build"], ["build", "-n"]):
        result = project.run(*command, "--resources", "gpu=1")
        assert result.rc == 0 and "nothing to do" in result.out + result.err, (command, result)
    shutil.rmtree(project.root / ".weave" / "stamps")  # no stamp to prove it: the build checks
    result = project.run("build", "--resources", "gpu=1")
    assert result.rc == 0 and "nothing to do" in result.out + result.err, result
    (project.root / "model.txt").write_text("edited\n")  # now it must run: the totals matter
    assert_user_error(project.run("build", "--resources", "gpu=1"), "rule 'train' needs gpu=2 but only gpu=1 is available")
    assert project.read("model.txt") == "edited\n"


def test_resource_totals_matter_for_the_jobs_that_are_to_run(project):
    """Totals too small for an up-to-date job do not refuse a build that runs only other jobs,
    nor one whose graph is resolved in two phases (a foreach over a directory a rule makes),
    where the build refused while its plan said 'nothing to do'."""
    project.write("in.txt", "x\n")
    project.write("cpu.in", "1\n")
    project.weavefile(
        """
        default = ["all", "cpu.out"]
        [rules.split]
        inputs = ["in.txt"]
        outputs = ["parts/"]
        cmd = "mkdir -p parts && for i in 1 2; do echo $i > parts/p$i.txt; done"
        [rules.train]
        inputs = ["parts/{p}.txt"]
        outputs = ["out/{p}.txt"]
        resources = { gpu = 2 }
        cmd = "cp {inputs} {outputs}"
        [rules.all]
        foreach = { p = "parts/{p}.txt" }
        inputs = ["out/{p}.txt"]
        [rules.cpu]
        inputs = ["cpu.in"]
        outputs = ["cpu.out"]
        cmd = "cp cpu.in cpu.out"
        """
    )
    assert project.run("build", "--resources", "gpu=2").rc == 0
    project.write("cpu.in", "2\n")  # only cpu is to run
    for command in (["plan"], ["build"]):
        result = project.run(*command, "--resources", "gpu=1")
        assert result.rc == 0, (command, result)
    assert project.read("cpu.out") == "2\n"
    project.write("in.txt", "y\n")  # now split, then train, are to run: refused before anything runs
    for command in (["plan"], ["build"]):
        assert_user_error(project.run(*command, "--resources", "gpu=1"), "rule 'train' needs gpu=2 but only gpu=1")
    assert project.read("parts/p1.txt") == "1\n"  # nothing ran
    runs = [line for line in project.run("history").out.splitlines() if "weave build" in line]
    assert len(runs) == 2, runs  # the refused build left no run


def test_plan_counts_many_up_to_date_jobs(project):
    """A big project's plan is the jobs that would run, then a count of the others (listed
    with -v); a few up-to-date jobs are named."""
    copy_25_sources(project)
    assert project.run("build").rc == 0
    project.write("src/7.txt", "changed\n")
    out = project.run("plan").out
    assert "would run 1 of 25 jobs:" in out and "input changed: src/7.txt" in out
    assert "24 more jobs up to date (`weave plan -v` lists them)" in out
    assert "out/3.txt" not in out
    verbose = project.run("plan", "-v").out
    assert "up to date (24):" in verbose and "  copy out/3.txt" in verbose
    assert "up to date" not in project.run("plan", "-q").out
    project.write("src/7.txt", "7\n")
    assert project.run("plan").out.strip() == "nothing to do (25 jobs up to date)"
    for n in range(10, 25):
        os.remove(project.root / f"src/{n}.txt")
    out = project.run("plan").out  # 10 jobs: few enough to name
    assert "up to date (10):" in out and "  copy out/3.txt" in out



def test_plan_and_status_of_a_built_project_come_from_its_stamp(project):
    """Once built, plan and status answer from the build's no-op stamp, as a no-op build does (a
    second at 100k jobs, where checking every job took seven), in the words of the full check,
    which they fall back on as soon as anything the jobs read or make, or the Weavefile, changed."""
    from weavebuild import Project as ApiProject

    copy_25_sources(project)
    assert ApiProject.load(str(project.root)).proven_up_to_date() is None  # never built
    assert project.run("build").rc == 0
    assert ApiProject.load(str(project.root)).proven_up_to_date() == 25
    assert project.run("plan").out.strip() == "nothing to do (25 jobs up to date)"
    status = project.run("status")
    assert status.rc == 0 and status.out.strip() == "25 of 25 jobs up to date"
    project.write("src/7.txt", "changed\n")
    assert ApiProject.load(str(project.root)).proven_up_to_date() is None
    assert "would run 1 of 25 jobs:" in project.run("plan").out
    status = project.run("status")
    assert status.rc == 1 and "24 of 25 jobs up to date, 1 stale" in status.out
    project.write("src/7.txt", "7\n")  # the same content again: still proven
    assert ApiProject.load(str(project.root)).proven_up_to_date() == 25
    os.remove(project.root / "out/3.txt")  # an output gone
    assert ApiProject.load(str(project.root)).proven_up_to_date() is None
    assert "would run 1 of 25 jobs:" in project.run("plan").out
    assert project.run("build").rc == 0
    assert project.run("build", "out/3.txt").rc == 0  # a stamp of its own for this target
    assert ApiProject.load(str(project.root)).proven_up_to_date(["out/3.txt"]) == 1
    out = project.run("plan", "out/3.txt").out  # few enough to name: from the full check
    assert out.startswith("nothing to do (1 job up to date)\n") and "  copy out/3.txt" in out
    project.write("Weavefile", project.read("Weavefile").replace("cp ", "cp -p "))
    assert ApiProject.load(str(project.root)).proven_up_to_date() is None
    assert "would run 25 of 25 jobs:" in project.run("plan").out


def test_status_exit_code(project):
    make_pipeline(project)
    result = project.run("status")
    assert result.rc == 1 and "0 of 6 jobs up to date, 6 stale" in result.out
    assert project.run("build").rc == 0
    result = project.run("status")
    assert result.rc == 0 and "6 of 6 jobs up to date" in result.out


def test_why_follows_chain_to_changed_source(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    assert "is up to date" in project.run("why", "count.txt").out
    project.write("raw/b.txt", "changed\n")
    out = project.run("why", "count.txt").out
    lines = out.splitlines()
    assert lines[0].startswith("count.txt is stale: count count.txt will rerun because a dependency will")
    assert "merge merged.txt will rerun" in lines[1]
    assert "clean_sample clean/b.txt must run: input changed: raw/b.txt" in lines[2]
    assert "source file" in project.run("why", "raw/a.txt").out


def test_why_of_an_alias_points_back_at_what_it_explained(project):
    """Two targets sharing a stale dependency: the second's line says where its cause is
    instead of ending in a colon with nothing under it."""
    project.weavefile(
        """
        [rules.a]
        inputs = ["src.txt"]
        outputs = ["a.txt"]
        cmd = "cp src.txt a.txt"
        [rules.b]
        inputs = ["a.txt"]
        outputs = ["sub/b.txt"]
        cmd = "cp a.txt sub/b.txt"
        [rules.all]
        inputs = ["a.txt", "sub/b.txt"]
        """
    )
    project.write("src.txt", "1\n")
    assert project.run("build", "all").rc == 0
    project.write("src.txt", "2\n")
    lines = project.run("why", "all").out.splitlines()
    assert lines == [
        "all is stale: a a.txt must run: input changed: src.txt",
        "all is stale: b sub/b.txt will rerun because a dependency will (a a.txt: above)",
    ], lines
    assert project.run("why", "sub").out.startswith("sub is stale: b sub/b.txt will rerun")  # holds an output
    project.write("data/x.txt", "x\n")
    assert project.run("why", "data").out.strip() == "data is a source directory: nothing builds it"


def test_why_of_a_rule_with_no_jobs_does_not_call_it_a_source(project):
    """An empty alias (or a rule whose foreach gives no values) has no jobs: `why` says so, not
    that it is a source file."""
    project.weavefile('[rules.all]\n[rules.x]\noutputs = ["x"]\ncmd = "touch x"\n')
    result = project.run("why", "all")
    assert result.rc == 0 and result.out.strip() == "all is a rule with no jobs: nothing to build", result
    assert project.run("why", "Weavefile").out.strip() == "Weavefile is a source file: nothing builds it"


def test_why_stops_after_forty_jobs(project):
    project.weavefile(
        """
        [rules.p]
        inputs = ["s/{n}.txt"]
        outputs = ["o/{n}.txt"]
        foreach = { n = "s/{n}.txt" }
        cmd = "cp {inputs} {outputs}"
        [rules.t]
        inputs = ["o/*.txt"]
        outputs = ["t.txt"]
        cmd = "cat {inputs} > t.txt"
        """
    )
    for n in range(60):
        project.write(f"s/{n}.txt", f"{n}\n")
    assert project.run("build").rc == 0 and project.run("build", "t.txt").rc == 0
    for n in range(60):
        project.write(f"s/{n}.txt", f"changed {n}\n")
    lines = project.run("why", "t.txt").out.splitlines()
    assert len(lines) == 52 and lines[0].startswith("t.txt is stale: t t.txt will rerun"), lines[:3]
    assert lines[40] == (
        "... and 21 more stale jobs (weave plan t.txt lists them all), of which these must run for changes of their own:"
    )
    # Which 21 were left out depends on the order of the glob; each is named by its change.
    assert all(line.startswith("  p o/") and "(depth 1) must run: input changed: s/" in line for line in lines[41:51]), lines
    assert lines[-1] == "  ... and 11 more"


def test_why_of_a_long_chain_names_the_change_at_its_far_end(project):
    rules = ['[rules.c0]\ninputs = ["seed.txt"]\noutputs = ["c/0.txt"]\ncmd = "cp {inputs} {outputs}"']
    rules += [
        f'[rules.c{i}]\ninputs = ["c/{i - 1}.txt"]\noutputs = ["c/{i}.txt"]\ncmd = "cp {{inputs}} {{outputs}}"'
        for i in range(1, 60)
    ]
    project.weavefile("\n".join(rules))
    project.write("seed.txt", "x\n")
    assert project.run("-q", "build", "c/59.txt").rc == 0
    project.write("seed.txt", "y\n")
    lines = project.run("why", "c/59.txt").out.splitlines()
    assert lines[-2:] == [
        "... and 20 more stale jobs (weave plan c/59.txt lists them all), of which these must run for changes of their own:",
        "  c0 c/0.txt (depth 59) must run: input changed: seed.txt",
    ], lines[-3:]


def test_why_follows_a_chain_deeper_than_pythons_recursion_limit(project):
    # 1,500 stale jobs in a chain (never built): why used to recurse once per job.
    count = 1500
    rules = ['[rules.c0]\ninputs = ["seed.txt"]\noutputs = ["c/0.txt"]\ncmd = "cp {inputs} {outputs}"']
    rules += [
        f'[rules.c{i}]\ninputs = ["c/{i - 1}.txt"]\noutputs = ["c/{i}.txt"]\ncmd = "cp {{inputs}} {{outputs}}"'
        for i in range(1, count)
    ]
    project.weavefile("\n".join(rules))
    project.write("seed.txt", "x\n")
    result = project.run("why", f"c/{count - 1}.txt")
    assert result.rc == 0, result
    lines = result.out.splitlines()
    assert lines[0].startswith(f"c/{count - 1}.txt is stale: c{count - 1} c/{count - 1}.txt will rerun"), lines[:3]
    assert lines[40] == (
        f"... and {count - 40:,} more stale jobs (weave plan c/{count - 1}.txt lists them all), of which these"
        " must run for changes of their own:"
    )
    assert lines[41:] == [f"  c0 c/0.txt (depth {count - 1}) must run: never built"]  # the rest: upstream
    assert "c1498" in lines[1] and "c1497" in lines[2], lines[:3]  # each job before the one it needs


def test_upstream_reason_counts_what_it_does_not_name(project):
    project.weavefile(
        """
        [rules.part]
        inputs = ["src.txt"]
        outputs = ["p/{n}.txt"]
        foreach = { n = ["1", "2", "3", "4", "5"] }
        cmd = "cp src.txt {outputs}"
        [rules.total]
        inputs = ["p/1.txt", "p/2.txt", "p/3.txt", "p/4.txt", "p/5.txt"]
        outputs = ["total.txt"]
        cmd = "cat {inputs} > total.txt"
        """
    )
    project.write("src.txt", "1\n")
    assert project.run("build", "total.txt").rc == 0
    project.write("src.txt", "2\n")
    out = project.run("plan", "total.txt").out
    assert "upstream will rerun: part p/1.txt, part p/2.txt, part p/3.txt, +2 more" in out, out


def test_status_counts_a_long_list_of_stale_jobs_by_rule(project):
    project.weavefile(
        """
        [rules.p]
        foreach = { n = "s/{n}.txt" }
        inputs = ["s/{n}.txt"]
        outputs = ["o/{n}.txt"]
        cmd = "cp {inputs} {outputs}"
        [rules.q]
        foreach = { n = ["1", "2", "3"] }
        outputs = ["q/{n}.txt"]
        cmd = "touch {outputs}"
        [rules.all]
        inputs = ["o/{n}.txt", "q/1.txt", "q/2.txt", "q/3.txt"]
        foreach = { n = "s/{n}.txt" }
        outputs = ["all.txt"]
        cmd = "cat {inputs} > {outputs}"
        """
    )
    for n in range(25):
        project.write(f"s/{n:02d}.txt", f"{n}\n")
    result = project.run("status", "all.txt")
    assert result.rc == 1
    lines = result.out.splitlines()
    assert len(lines) == 29 + 2  # one line per job, then the counts
    assert lines[-2:] == ["stale by rule: p 25, q 3, all 1", "0 of 29 jobs up to date, 29 stale"]
    few = project.run("status", "q")
    assert few.out.splitlines()[-1] == "0 of 3 jobs up to date, 3 stale" and "by rule" not in few.out


def test_status_and_why_say_how_the_last_attempt_ended(project):
    """A job that failed is 'never built' by its records; status and why add that its last
    attempt failed, with the exit code and the log to read."""
    project.weavefile('[rules.c]\noutputs = ["c.txt"]\ncmd = "echo oops; exit 3"\n')
    assert project.run("build").rc == 1
    status = project.run("status")
    assert status.rc == 1
    assert "never built (last attempt failed in run 1: exit code 3; log .weave/logs/c.log)" in status.out, status
    assert "(last attempt failed in run 1: exit code 3" in project.run("why", "c.txt").out
    project.weavefile('[rules.c]\noutputs = ["c.txt"]\ncmd = "echo ok > c.txt"\n')
    assert project.run("build").rc == 0
    assert project.run("status").rc == 0
    # A timeout is said in words; a deleted directory output is shown with its slash.
    project.weavefile('[rules.c]\noutputs = ["c.txt"]\ncmd = "sleep 30"\ntimeout = 0.2\n[rules.d]\noutputs = ["d/"]\ncmd = "mkdir -p d && touch d/x"\n')
    assert project.run("build", "c.txt").rc == 1
    assert "(last attempt timed out in run 3" in project.run("why", "c.txt").out
    assert project.run("build", "d").rc == 0
    shutil.rmtree(project.root / "d")
    assert "output missing: d/" in project.run("plan", "d").out


def test_list_shows_rules(project):
    make_pipeline(project)
    out = project.run("list").out
    assert "default targets: all" in out
    assert "clean_sample (pattern rule)" in out and "wildcards: sample" in out
    assert "merge (rule)" in out, "a foreach over inputs only is one fan-in job, not a pattern"
    assert "all (alias)" in out


def test_clean_leaves_outputs_replaced_or_edited_since_weave_built_them(project):
    """Clean removes what weave wrote and nothing else: an output a user replaced (a file
    where a directory output was) or edited since is kept, with a warning."""
    make_pipeline(project)
    assert project.run("build").rc == 0
    import shutil

    shutil.rmtree(project.root / "models/best")
    project.write("models/best", "my own file\n")
    project.write("merged.txt", "edited by hand\n")
    result = project.run("clean")
    assert result.rc == 0, result
    assert project.read("models/best") == "my own file\n" and project.read("merged.txt") == "edited by hand\n"
    assert "kept models/best/: it was replaced or edited since weave built it" in result.err, result
    assert "kept merged.txt" in result.err
    assert not project.exists("count.txt") and not project.exists("clean/a.txt")  # weave's own: removed


@pytest.mark.parametrize(
    "where, kept",
    [
        ("outside", "kept d/x: it resolves outside the project directory (through a symlink)"),
        ("inside", "kept d/x: a symlink in the project leads its directory to 'keep'"),
    ],
)
def test_clean_never_deletes_through_a_directory_now_a_symlink(project, tmp_path, where, kept):
    """An output's directory replaced by a symlink to elsewhere: the file there has the
    bytes weave recorded, but it is not in the project (a build refuses to write there), or
    it is another project path's (a source's): clean keeps it, with a warning, as it keeps a
    file it did not write."""
    project.weavefile(
        """
        [rules.a]
        outputs = ["d/x"]
        cmd = "mkdir -p d && echo hello > d/x"
        """
    )
    assert project.run("build").rc == 0
    import shutil

    shutil.rmtree(project.root / "d")
    target = tmp_path / "outside" if where == "outside" else project.root / "keep"
    target.mkdir()
    (target / "x").write_text("hello\n")
    (project.root / "d").symlink_to(target if where == "outside" else "keep")
    result = project.run("clean")
    assert result.rc == 0, result
    assert (target / "x").read_text() == "hello\n"
    assert kept in result.err, result


def test_clean_removes_only_produced_outputs(project):
    make_pipeline(project)
    project.write("clean/handmade.txt", "mine\n")
    assert project.run("build").rc == 0
    dry = project.run("clean", "-n")
    assert "would remove merged.txt" in dry.out and project.exists("merged.txt")
    result = project.run("clean")
    assert result.rc == 0
    for path in ("merged.txt", "count.txt", "clean/a.txt", "models/best"):
        assert not project.exists(path), path
    for path in ("raw/a.txt", "data.csv", "clean/handmade.txt", "Weavefile"):
        assert project.exists(path), path
    project.clear_runs()
    assert project.run("build").rc == 0
    assert len(project.runs_log()) == 6


def test_clean_target_and_its_inputs(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    assert project.run("clean", "merged.txt").rc == 0
    assert not project.exists("merged.txt") and not project.exists("clean/a.txt")
    assert project.exists("count.txt") and project.exists("models/best/model.txt")


def test_clean_target_after_a_rule_rename_removes_what_the_old_name_built(project):
    project.weavefile(
        """
        [rules.use]
        inputs = ["a.txt"]
        outputs = ["b.txt"]
        cmd = "cat a.txt > b.txt; echo ran-b >> runs.log"
        [rules.gen]
        outputs = ["a.txt"]
        cmd = "echo a > a.txt; echo ran-a >> runs.log"
        """
    )
    assert project.run("build").rc == 0
    project.write("Weavefile", project.read("Weavefile").replace("[rules.gen]", "[rules.make_a]"))
    for built_first in (False, True):  # before and after a build that finds the old record
        if built_first:
            assert "nothing to do" in project.run("build").out
        for target in ("a.txt", "make_a"):
            run = project.run("clean", "-n", target)
            assert run.rc == 0 and "would remove a.txt" in run.out, (target, run)
    cleaned = project.run("clean", "b.txt")
    assert cleaned.rc == 0 and not project.exists("a.txt") and not project.exists("b.txt"), cleaned
    project.clear_runs()
    assert project.run("build").rc == 0
    assert sorted(project.runs_log()) == ["ran-a", "ran-b"]


def test_clean_only_removes_the_targets_own_outputs(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    result = project.run("clean", "--only", "merged.txt")
    assert result.rc == 0, result
    assert not project.exists("merged.txt") and project.exists("clean/a.txt") and project.exists("clean/b.txt")
    rebuilt = project.run("build")
    assert rebuilt.rc == 0 and project.runs_log() == ["merge"], rebuilt
    assert_user_error(project.run("clean", "--only"), "--only needs TARGETS")


def test_touch_adopts_hand_fixed_outputs(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    project.write("raw/a.txt", "edited but output fixed by hand\n")
    result = project.run("touch")
    assert result.rc == 0 and "recorded clean_sample clean/a.txt" in result.out
    assert "nothing to do" in project.run("build").out
    assert project.runs_log() == []


def test_touch_of_a_target_records_its_own_job_and_names_a_stale_upstream_one(project):
    """`weave touch b.out` adopts b.out as it is; a.out, built from the old src.txt, is not
    recorded (it used to be, and the edit of src.txt was lost: `weave build a.out` said
    'nothing to do'). The stale upstream job is named and the exit code is 1; the next build
    runs it. Without targets, touch records every job the default targets need."""
    project.weavefile(
        """
        default = ["b.out"]
        [rules.a]
        inputs  = ["src.txt"]
        outputs = ["a.out"]
        cmd     = "cat src.txt > a.out"
        [rules.b]
        inputs  = ["a.out"]
        outputs = ["b.out"]
        cmd     = "cat a.out > b.out"
        """
    )
    project.write("src.txt", "v1\n")
    assert project.run("build", "b.out").rc == 0
    project.write("src.txt", "v2\n")
    project.write("b.out", "hand\n")
    result = project.run("touch", "-v", "b.out")
    assert result.rc == 1 and "recorded b b.out" in result.out and "recorded a" not in result.out, result
    assert "not recorded a a.out: it is upstream of the targets and out of date" in result.err, result
    built = project.run("build", "a.out")
    assert built.started == ["a a.out"] and project.read("a.out") == "v2\n", built
    project.write("src.txt", "v3\n")
    project.write("a.out", "hand a\n")
    project.write("b.out", "hand b\n")
    everything = project.run("touch", "-v")  # no targets: the whole default graph, as make -t
    assert everything.rc == 0 and "recorded a a.out" in everything.out and "recorded b b.out" in everything.out, everything
    assert "nothing to do" in project.run("build").out


def test_building_a_source_says_no_job_makes_it(project):
    """`weave build src.txt`, a source: nothing to do, said as such (it said '0 jobs up to
    date'), exit 0 as make's 'Nothing to be done' and Ninja's 'no work to do'."""
    project.weavefile('[rules.a]\ninputs = ["src.txt"]\noutputs = ["a.txt"]\ncmd = "cp src.txt a.txt"\n')
    project.write("src.txt", "s\n")
    result = project.run("build", "src.txt")
    assert result.rc == 0 and result.out == "weave: nothing to do (no job makes the targets)\n", result


def test_touch_exits_1_when_an_output_is_missing(project):
    """Scripts can tell that touch did not record everything: a job whose output is missing
    is named in a warning and the exit code is 1."""
    make_pipeline(project)
    assert project.run("build").rc == 0
    os.unlink(project.root / "count.txt")
    result = project.run("touch")
    assert result.rc == 1 and "not recorded count count.txt" in result.err, result
    assert "recorded 0 job(s) as up to date" in result.out  # the others were up to date


def test_init_writes_valid_starter(project):
    result = project.run("init")
    assert result.rc == 0
    assert "rules.train" in project.read("Weavefile")
    listing = project.run("list")
    assert listing.rc == 0 and "preprocess" in listing.out
    assert_user_error(project.run("init"), "already exists")


def test_help_of_every_command(project):
    for command in ("build", "plan", "status", "why", "list", "clean", "touch", "init"):
        result = project.run(command, "--help")
        assert result.rc == 0 and "Usage:" in result.out, command


def test_unknown_command_suggests(project):
    make_pipeline(project)
    assert_user_error(project.run("bild"), "no command 'bild'", "did you mean 'weave build'")
    # `make TARGET`'s habit: a target where the command goes is shown the build command.
    assert_user_error(project.run("merged.txt", "-j", "2"), "no command 'merged.txt'", "to build it: weave build merged.txt -j 2")


def test_clean_removes_emptied_directories(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    assert project.run("clean").rc == 0
    assert not project.exists("clean") and not project.exists("models")
    assert project.exists("raw/a.txt")


def test_status_and_plan_align_wide_characters(project):
    """Reasons line up in a terminal when paths hold wide (CJK) characters: each takes two
    columns."""
    project.weavefile(
        """
        [rules.c]
        inputs = ["日本.txt"]
        outputs = ["clean/日本.txt"]
        cmd = "cp {inputs} {outputs}"
        [rules.d]
        inputs = ["abcd.txt"]
        outputs = ["clean/abcd.txt"]
        cmd = "cp {inputs} {outputs}"
        """
    )
    project.write("日本.txt", "x\n")
    project.write("abcd.txt", "y\n")
    from weavebuild.reporter import text_width

    for command in ("status", "plan"):
        out = project.run(command, "clean/日本.txt", "clean/abcd.txt").out
        rows = [line for line in out.splitlines() if "never built" in line]
        assert len(rows) == 2, out
        columns = {text_width(row[: row.index("never built")]) for row in rows}
        assert len(columns) == 1, (command, rows)
    assert text_width("日本") == 4 and text_width("e\u0301") == 1 and text_width("ab") == 2


# -- what weave never touches, and inputs it cannot hash -----------------------------------------


@pytest.mark.parametrize(
    "weavefile, target, message",
    [
        ('[rules.mk]\noutputs = ["{name}/"]\ncmd = "mkdir -p {outputs}"\n', ".", "target '.' is the project directory"),
        ('[rules.mk]\noutputs = ["{name}/"]\ncmd = "mkdir -p {outputs}"\n', "./", "target './' is the project directory"),
        ('[rules.mk]\noutputs = ["{name}/"]\nforeach = { name = ["."] }\ncmd = "mkdir -p {outputs}"\n', "mk", "foreach value '.' for 'name' is '.'"),
        ('[rules.mk]\noutputs = ["{p}"]\ncmd = "echo > {outputs}"\n', "Weavefile", "output 'Weavefile' is the Weavefile"),
        ('[rules.mk]\noutputs = ["{p}/"]\ncmd = "mkdir -p {outputs}"\n', ".weave", "output '.weave' is weave's state directory"),
        ('[rules.mk]\noutputs = ["{p}"]\nforeach = { p = ["Weavefile"] }\ncmd = "echo > {outputs}"\n', "mk", "output 'Weavefile' is the Weavefile"),
        ('[rules.mk]\noutputs = ["x"]\ncmd = "echo > {outputs}"\n', "", "empty target"),
    ],
    ids=["dot", "dot-slash", "foreach-dot", "weavefile", "state-dir", "foreach-weavefile", "empty"],
)
def test_a_job_never_writes_the_project_directory_weavefile_or_state(project, weavefile, target, message):
    """The project directory, the Weavefile and .weave/ can never be a job's output, whatever
    the wildcards say: a build would delete them before the job runs. Nothing is touched."""
    project.weavefile(weavefile)
    project.write("src/data.txt", "precious\n")
    before = project.read("Weavefile")
    for command in ("build", "status"):
        assert_user_error(project.run(command, target), message)
    assert project.read("Weavefile") == before and project.read("src/data.txt") == "precious\n"


def test_alias_cycle_is_reported(project):
    project.weavefile('[rules.a]\ninputs = ["b"]\n[rules.b]\ninputs = ["c"]\n[rules.c]\ninputs = ["a"]\n')
    assert_user_error(project.run("build", "a"), "dependency cycle: a -> b -> c -> a")
    assert_user_error(project.run("status", "b"), "dependency cycle: b -> c -> a -> b")


def test_inputs_that_are_devices_or_fifos_are_errors_not_hangs(project):
    """Reading /dev/zero or a FIFO to hash it would never end: such an input is refused."""
    os.mkfifo(project.root / "pipe")
    project.weavefile(
        """
        [rules.zero]
        inputs = ["/dev/zero"]
        outputs = ["z"]
        cmd = "touch {outputs}"
        [rules.fifo]
        inputs = ["pipe"]
        outputs = ["f"]
        cmd = "touch {outputs}"
        """
    )
    assert_user_error(project.run("build", "z", timeout=60), "cannot read '/dev/zero': it is a device, needed by rule 'zero'")
    assert_user_error(project.run("build", "f", timeout=60), "cannot read 'pipe': it is a FIFO, needed by rule 'fifo'")
    assert_user_error(project.run("plan", "f", timeout=60), "cannot read 'pipe': it is a FIFO, needed by rule 'fifo'")


def test_a_weavefile_that_is_not_a_file_is_named_as_such(project):
    (project.root / "Weavefile").mkdir()
    assert_user_error(project.run("build"), "Weavefile' is a directory")
    (project.root / "Weavefile").rmdir()
    (project.root / "Weavefile").symlink_to("missing")
    assert_user_error(project.run("build"), "Weavefile' is a broken symlink")
    assert_user_error(project.run("-f", "nope.toml", "build"), "nope.toml' not found")
    assert_user_error(project.run("-f", "/dev/null", "build"), "Weavefile '/dev/null' is not a regular file")


def test_out_of_range_numbers_on_the_command_line(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    assert project.run("build").rc == 0
    result = project.run("history", "-n", "99999999999999999999")
    assert result.rc == 0 and "weave build" in result.out, result
    for option in ("--debounce", "--poll-interval"):
        for value in ("nan", "inf", "1e10"):  # 1e10 s: past what a timer can hold (an overflow later)
            assert_user_error(project.run("watch", option, value, timeout=60), f"Invalid value for '{option}'")


# -- file names that are not UTF-8 ---------------------------------------------------------------


def test_file_names_that_are_not_utf8(project, tmp_path):
    """Linux file names are bytes: one that is not UTF-8 (Python keeps its bytes as lone
    surrogates) is built, recorded, shown and cleaned like any other."""
    import subprocess
    import sys

    name = os.fsdecode(b"b\xff")
    try:
        (project.root / "src").mkdir()
        (project.root / "src" / f"{name}.txt").write_text("b\n")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    project.write("src/a.txt", "a\n")
    project.weavefile(
        """
        [rules.each]
        inputs = ["src/{n}.txt"]
        outputs = ["out/{n}.o"]
        foreach = { n = "src/{n}.txt" }
        cmd = "cp {inputs} {outputs}"
        [rules.all]
        inputs = ["src/*.txt"]
        outputs = ["all.txt"]
        cmd = "cat {inputs} > {outputs}"
        """
    )

    def weave(*args, **env):
        process = subprocess.run(
            [sys.executable, "-m", "weavebuild", *args], cwd=project.root, capture_output=True,
            env=dict(os.environ, **env), timeout=120,
        )
        return process.returncode, process.stdout, process.stderr

    rc, out, err = weave("build", "each", "all")
    assert rc == 0 and b"internal error" not in err, err
    assert b"[3/3]" in out and b"out/b\xff.o" in out
    assert project.read(f"out/{name}.o") == "b\n" and project.read("all.txt") == "a\nb\n"
    rc, out, err = weave("build", "each", "all")
    assert rc == 0 and b"nothing to do (3 jobs up to date)" in err + out, (out, err)
    (project.root / "src" / f"{name}.txt").write_text("B\n")
    rc, out, err = weave("build", "each", "all")
    assert rc == 0 and b"2 ran, 1 up to date" in out + err and b"out/a.o" not in out, (out, err)
    assert weave("status", "each", "all")[0] == 0
    assert weave("history")[0] == 0
    rc, out, err = weave("report", "-o", str(tmp_path / "report.html"))
    assert rc == 0, err
    assert "\ufffd" in (tmp_path / "report.html").read_text(encoding="utf-8")  # as a terminal shows it
    rc, out, err = weave("graph", "-o", str(tmp_path / "graph.dot"), "each")
    assert rc == 0 and "\ufffd" in (tmp_path / "graph.dot").read_text(encoding="utf-8"), err
    # A name is printed as its own bytes whatever the locale: a UTF-8 locale such as
    # en_US.UTF-8 gives Python's stdout strict errors (the C locale, surrogateescape).
    rc, out, err = weave("build", "-B", "each", PYTHONIOENCODING="utf-8")
    assert rc == 0 and b"out/b\xff.o" in out, (out, err)
    # Under an ASCII locale too; a character the stream cannot encode is escaped, not a crash.
    (project.root / "src" / "c\u00e9.txt").write_text("c\n")
    rc, out, err = weave("build", "-B", "each", PYTHONIOENCODING="ascii")
    assert rc == 0 and b"out/b\xff.o" in out and b"out/c\\xe9.o" in out, (out, err)
    rc, out, err = weave("clean")
    assert rc == 0 and not (project.root / "out").exists() and not project.exists("all.txt"), err


def test_a_target_named_on_the_command_line_that_is_not_utf8(project):
    """A target given as an argument keeps its non-UTF-8 bytes as lone surrogates, as a
    foreach value found on disk does: it is built, and keys the no-op stamp in the store
    (which was an internal error, UnicodeEncodeError: surrogates not allowed; with -B after
    the job ran, and the run was recorded as failed)."""
    import subprocess
    import sys

    name = os.fsdecode(b"lat\xe9")
    try:
        (project.root / "src").mkdir()
        (project.root / "src" / f"{name}.txt").write_text("y\n")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    project.weavefile(
        """
        [rules.all]
        inputs = ["out/{n}.txt"]
        foreach = { n = "src/{n}.txt" }
        [rules.copy]
        inputs = ["src/{n}.txt"]
        outputs = ["out/{n}.txt"]
        cmd = "cp {inputs} {outputs}"
        """
    )
    target = os.fsencode(f"out/{name}.txt")

    def weave(*args):
        process = subprocess.run(
            [sys.executable, "-m", "weavebuild", *args], cwd=project.root, capture_output=True, timeout=120,
        )
        assert process.returncode == 0 and b"internal error" not in process.stderr, process
        return process.stdout + process.stderr

    assert b"1 ran" in weave("build", target)
    assert project.read(f"out/{name}.txt") == "y\n"
    assert b"nothing to do (1 job up to date)" in weave("build", target)  # the stamp, read back
    assert b"up to date" in weave("why", target)
    assert b"nothing to do" in weave("plan", target)
    assert b"1 ran" in weave("build", "-B", target)
    history = weave("history")
    assert b"failed" not in history and b" ok " in history, history


@pytest.mark.parametrize(
    "args",
    [
        ["status", "-q"], ["status", "-v"], ["why", "-q", "count.txt"], ["list", "-v"], ["plan", "-q"],
        ["clean", "-n", "-q"], ["graph", "-q", "-o", "g.dot"], ["history", "-v"], ["touch", "-q", "count.txt"],
    ],
)
def test_quiet_and_verbose_are_taken_after_every_command(project, args):
    """`weave status -q` as `weave build -q`: the global options after the command name too
    (they were 'No such option' for every command but build and watch)."""
    make_pipeline(project)
    assert project.run("build").rc == 0
    result = project.run(*args)
    assert result.rc in (0, 1), result
    assert "No such option" not in result.err


def test_a_renamed_rules_job_says_who_made_its_outputs(project):
    """A rule renamed (its job key changed): a job with exactly the old job's outputs takes
    its latest success, so a change made with the rename is explained as any change is
    (before: 'never built', which read as if those files had never been made); one whose
    outputs differ too says the old job made them."""
    project.write("in.txt", "acgt\n")
    project.write("Weavefile", '[rules.count]\ninputs = ["in.txt"]\noutputs = ["a.txt"]\ncmd = "wc -c < in.txt > a.txt"\n')
    assert project.run("build").rc == 0
    project.write("Weavefile", project.read("Weavefile").replace("rules.count]", "rules.count_bases]").replace("wc -c", "wc -m"))
    assert "count_bases a.txt must run: command changed" in project.run("why", "a.txt").out
    assert "command changed" in project.run("status").out
    assert "(command changed)" in project.run("plan").out
    # Renamed once more after a build: explained against the latest name's run, not "never built".
    assert project.run("build").rc == 0
    project.write("Weavefile", project.read("Weavefile").replace("rules.count_bases]", "rules.bases]"))
    assert "nothing to do" in project.run("build").out
    project.write("Weavefile", project.read("Weavefile").replace("rules.bases]", "rules.nbases]"))
    project.write("in.txt", "acgtt\n")
    assert "nbases a.txt must run: input changed: in.txt" in project.run("why", "a.txt").out
    project.write("Weavefile", project.read("Weavefile").replace('["a.txt"]', '["a.txt", "b.txt"]').replace("> a.txt", "> a.txt; touch b.txt"))
    expected = "never built: not under this name; its outputs were made by job 'count_bases' (a renamed rule?)"
    assert expected in project.run("why", "a.txt").out
    assert expected in project.run("status").out
    assert expected in project.run("plan").out
    fresh = project.root / "fresh"
    fresh.mkdir()
    (fresh / "in.txt").write_text("x\n")
    (fresh / "Weavefile").write_text(project.read("Weavefile"))
    assert "not under this name" not in Project(fresh).run("status").out  # truly never built


def test_directory_target_covers_the_outputs_pattern_rules_make_for_the_defaults(project):
    """`weave build clean/`, `status clean/` and `clean clean/` where clean/ holds only files a
    pattern rule makes for the defaults (found from the jobs that read them); a new sample
    under raw/ joins them on the next run (the cached graph sees the directory change)."""
    project.weavefile(
        """
        default = ["merged.txt"]
        [rules.clean]
        inputs = ["raw/{s}.txt", "tool.sh"]
        outputs = ["clean/{s}.txt"]
        cmd = "bash tool.sh {inputs[0]} > {outputs}"
        [rules.merge]
        inputs = ["clean/{s}.txt"]
        outputs = ["merged.txt"]
        foreach = { s = "raw/{s}.txt" }
        cmd = "cat {inputs} > {outputs}"
        """
    )
    project.write("raw/a.txt", "a\n")
    project.write("raw/b.txt", "b\n")
    project.write("tool.sh", 'tr a-z A-Z < "$1"\n')
    assert project.run("build").rc == 0
    project.write("tool.sh", 'tr a-z A-Z < "$1"\n# edited\n')
    status = project.run("status", "clean/")
    assert status.rc == 1 and "clean/a.txt" in status.out and "clean/b.txt" in status.out
    built = project.run("build", "clean/")
    assert built.rc == 0 and "2 ran" in built.out
    assert "merge" not in built.out  # merged.txt is not under clean/
    assert project.run("status", "clean/").rc == 0
    project.write("raw/c.txt", "c\n")
    built = project.run("build", "clean/")
    assert built.rc == 0 and "1 ran" in built.out and project.read("clean/c.txt") == "C\n"
    cleaned = project.run("clean", "clean/")
    assert cleaned.rc == 0
    assert not any(project.exists(f"clean/{s}.txt") for s in "abc") and project.exists("merged.txt")


def test_plan_keeps_its_columns_past_nine_jobs(project):
    """[9/11] and [10/11] take one width: the job names and reasons line up."""
    project.weavefile(
        """
        [rules.mk]
        outputs = ["o/{n}.txt"]
        foreach = { n = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11"] }
        cmd = "echo {wildcards.n} > {outputs}"
        """
    )
    lines = [line for line in project.run("plan").out.splitlines() if line.startswith("  [")]
    assert len(lines) == 11
    assert lines[0] == "  [1/11]  mk o/01.txt  (never built)"
    assert lines[10] == "  [11/11] mk o/11.txt  (never built)"
    assert len({line.index("mk") for line in lines}) == 1 and len({line.index("(") for line in lines}) == 1


def test_directory_target_over_chunks_a_build_splits_first(project):
    """c/ holds what a pattern rule makes for each chunk a split writes (a foreach over its
    directory output): `weave build c/` splits first and decides from the new chunks, when
    they shrink and when they grow."""
    project.weavefile(
        """
        default = ["n.txt"]
        [rules.split]
        inputs = ["big.txt"]
        outputs = ["chunks/"]
        cmd = "mkdir -p chunks && split -l 1 big.txt chunks/p_"
        [rules.n]
        inputs = ["c/{c}.txt"]
        foreach = { c = "chunks/{c}" }
        outputs = ["n.txt"]
        cmd = "cat {inputs} /dev/null > n.txt"
        [rules.cc]
        inputs = ["chunks/{c}"]
        outputs = ["c/{c}.txt"]
        cmd = "wc -c < {inputs} > {outputs}"
        """
    )
    project.write("big.txt", "1\n2\n3\n")
    assert project.run("build").rc == 0
    project.write("big.txt", "1\n")
    shrunk = project.run("build", "c/")
    assert shrunk.rc == 0, shrunk
    project.write("big.txt", "1\n2\n3\n4\n")
    grown = project.run("build", "c/")
    assert grown.rc == 0 and project.exists("c/p_ad.txt"), grown
    assert "nothing to do" in project.run("build", "c/").out


# merge reads a source besides what a pattern rule makes for each raw sample.
MERGE_NEEDS_EXTRA = """
[rules.merge]
inputs = ["clean/{s}.out", "extra.txt"]
outputs = ["merged.txt"]
foreach = { s = "raw/{s}.txt" }
cmd = "cat {inputs} > {outputs}"
[rules.clean]
inputs = ["raw/{s}.txt"]
outputs = ["clean/{s}.out"]
cmd = "tr a-z A-Z < {inputs} > {outputs}"
"""


def test_directory_target_sees_a_source_the_defaults_missed_appear(project):
    """While the defaults cannot resolve (a missing source), `weave build clean/` knows only
    the exact outputs; once the source exists, the cached graph must not hide the others."""
    project.weavefile(
        'default = ["merged.txt"]\n'
        + MERGE_NEEDS_EXTRA
        + '[rules.static]\noutputs = ["clean/static.out"]\ncmd = "echo s > clean/static.out"\n'
    )
    project.write("raw/a.txt", "a\n")
    assert project.run("build", "clean/").rc == 0
    assert project.exists("clean/static.out") and not project.exists("clean/a.out")
    project.write("extra.txt", "e\n")
    assert project.run("build", "clean/").rc == 0
    assert project.read("clean/a.out") == "A\n"


def test_every_reading_command_warns_when_the_state_store_is_unusable(project):
    """plan and status warned that an unreadable store made everything look never built;
    why said 'never built' and history 'no runs recorded yet' without a word."""
    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > a.txt"\n')
    assert project.run("build").rc == 0
    (project.root / ".weave" / "state.db").write_bytes(b"garbage" * 200)
    for args in (("plan",), ("status",), ("why", "a.txt"), ("history",), ("report", "-o", "r.html")):
        run = project.run(*args)
        assert "weave: warning: state store" in run.err and "is unusable" in run.err, (args, run)
    assert (project.root / ".weave" / "state.db").read_bytes() == b"garbage" * 200  # left for the next build


def test_an_output_spelled_through_a_symlink_in_the_project_is_refused_and_the_source_kept(project):
    """`lnk -> sdir` and an output `lnk/f` that is the source `sdir/f` under a second name:
    removing the 'old output' before the job deleted the source for good. The job is
    refused (the file's one name is given); the source is untouched."""
    project.write("sdir/f", "precious\n")
    (project.root / "lnk").symlink_to("sdir")
    project.weavefile(
        """
        [rules.a]
        inputs = ["sdir/f"]
        outputs = ["lnk/f"]
        cmd = "tr a-z A-Z < {inputs} > {outputs}.tmp && mv {outputs}.tmp {outputs}"
        """
    )
    result = project.run("build")
    assert result.rc == 1, result
    assert "output 'lnk/f' is reached through a symlink in the project: 'lnk' leads to 'sdir'" in result.err, result
    assert "write it as 'sdir/f'" in result.err, result
    assert project.read("sdir/f") == "precious\n"


def test_two_rules_owning_one_file_under_two_names_are_refused(project):
    """`alias -> real`: rules writing real/x.txt and alias/x.txt own one file; each build
    found the other's output 'modified' and they ran in turn forever."""
    (project.root / "real").mkdir()
    (project.root / "alias").symlink_to("real")
    project.weavefile(
        """
        [rules.one]
        outputs = ["real/x.txt"]
        cmd = "echo one > {outputs}"
        [rules.two]
        outputs = ["alias/x.txt"]
        cmd = "echo two > {outputs}"
        """
    )
    result = project.run("build", "-k", "real/x.txt", "alias/x.txt")
    assert result.rc == 1, result
    assert "output 'alias/x.txt' is reached through a symlink in the project" in result.err, result
    assert project.read("real/x.txt") == "one\n"
    again = project.run("build", "real/x.txt")
    assert again.rc == 0 and "nothing to do" in (again.out + again.err).lower(), again


def test_plan_and_why_name_a_jobs_own_change_besides_its_stale_upstream(project):
    """c reads b.txt (remade) and its own script c.sh (edited): plan said only 'upstream
    will rerun', and why followed the chain to a.txt, never naming c.sh, which makes c run
    even if b's output comes out the same."""
    project.weavefile(
        """
        default = ["c.txt"]
        [rules.b]
        inputs = ["a.txt"]
        outputs = ["b.txt"]
        cmd = "cp {inputs} {outputs}"
        [rules.c]
        inputs = ["b.txt", "c.sh"]
        outputs = ["c.txt"]
        cmd = "sh c.sh > {outputs}; cat b.txt >> {outputs}"
        """
    )
    project.write("a.txt", "a\n")
    project.write("c.sh", "echo c\n")
    assert project.run("build").rc == 0
    project.write("a.txt", "a2\n")
    project.write("c.sh", "echo c2\n")
    plan = project.run("plan")
    assert plan.rc == 0, plan
    assert "c c.txt  (upstream will rerun: b b.txt; input changed: c.sh)" in plan.out, plan.out
    why = project.run("why", "c.txt")
    assert why.rc == 0 and "input changed: c.sh" in why.out, why
    assert "input changed: a.txt" in why.out, why


def test_plan_names_own_reasons_when_an_upstream_output_is_gone_and_not_what_upstream_rewrites(project):
    """B's own script edited while A's output is deleted: B still names s1.py (the check of
    B stopped at the missing a.out). E reads a file inside A's directory output, edited by
    hand: A rewrites it, so it is not E's own reason."""
    project.weavefile(
        """
        default = ["b.out", "e.out"]
        [rules.A]
        inputs = ["a.src"]
        outputs = ["a.out", "adir/"]
        cmd = "cp a.src a.out; mkdir -p adir; cp a.src adir/x"
        [rules.B]
        inputs = ["a.out", "s1.py"]
        outputs = ["b.out"]
        cmd = "cat {inputs} > b.out"
        [rules.E]
        inputs = ["adir/x"]
        outputs = ["e.out"]
        cmd = "cat adir/x > e.out"
        """
    )
    project.write("a.src", "a\n")
    project.write("s1.py", "s\n")
    assert project.run("build").rc == 0
    project.write("a.src", "a2\n")
    project.write("adir/x", "hand\n")
    project.write("s1.py", "s2\n")
    (project.root / "a.out").unlink()
    plan = project.run("plan")
    assert plan.rc == 0, plan
    assert "B b.out  (upstream will rerun: A a.out; input changed: s1.py)" in plan.out, plan.out
    assert "E e.out  (upstream will rerun: A a.out)\n" in plan.out, plan.out


def test_plan_numbers_jobs_in_the_order_a_one_slot_build_starts_them(project):
    """The build starts the ready job with the longest path of work after it first (critical
    path); plan numbered jobs in the Weavefile's order instead."""
    project.weavefile(
        """
        default = ["a.txt", "b3.txt"]
        [rules.a]
        inputs = ["src.txt"]
        outputs = ["a.txt"]
        cmd = "cp src.txt a.txt"
        [rules.b1]
        inputs = ["src.txt"]
        outputs = ["b1.txt"]
        cmd = "cp src.txt b1.txt"
        [rules.b2]
        inputs = ["b1.txt"]
        outputs = ["b2.txt"]
        cmd = "cp b1.txt b2.txt"
        [rules.b3]
        inputs = ["b2.txt"]
        outputs = ["b3.txt"]
        cmd = "cp b2.txt b3.txt"
        """
    )
    project.write("src.txt", "x\n")
    planned = re.findall(r"\[\d+/\d+\] +(\w+) ", project.run("plan").out)
    built = re.findall(r"\[\d+/\d+\] +(\w+) ", project.run("build", "-j", "1").out)
    assert planned == built == ["b1", "b2", "a", "b3"], (planned, built)  # (a and b3 tie: a was ready first)


@pytest.mark.parametrize("seed", range(6))
def test_plan_order_is_the_one_slot_build_order_on_random_graphs(project, seed):
    """On random DAGs, first builds (no history) and rebuilds after an edit: `plan` numbers
    the jobs exactly as `build -j 1` starts them (ties in the ready queue go to the job that
    became ready first; plan had used the Weavefile's order)."""
    import random

    rng = random.Random(seed)
    count = 8
    rules = []
    for i in range(count):
        deps = sorted(rng.sample(range(i), rng.randint(0, min(i, 2)))) if i else []
        inputs = [f"o{d}.txt" for d in deps] or ["src.txt"]
        rules.append(
            f'[rules.r{i}]\ninputs = {inputs!r}\noutputs = ["o{i}.txt"]\ncmd = "cat {{inputs}} > {{outputs}}; echo {i} >> {{outputs}}"\n'.replace("'", '"')
        )
    order = list(range(count))
    rng.shuffle(order)
    default = [f"o{i}.txt" for i in rng.sample(range(count), 3)]
    project.weavefile(f"default = {default!r}\n".replace("'", '"') + "\n".join(rules[i] for i in order))
    project.write("src.txt", "s\n")
    for _ in range(2):
        planned = re.findall(r"\[\d+/\d+\] +(r\d+) ", project.run("plan").out)
        built = re.findall(r"\[\d+/\d+\] +(r\d+) ", project.run("build", "-j", "1").out)
        assert planned == built, (planned, built)
        project.write("src.txt", f"s{rng.random()}\n")


def test_status_by_rule_names_the_ten_largest_rules_then_counts_the_rest(project):
    """With thousands of one-job rules the 'stale by rule' line ran to ~20 KB, sorted by name:
    it names the ten rules with the most stale jobs and counts the others."""
    rules = "".join(f'[rules.r{n}]\noutputs = ["out/{n}.txt"]\ncmd = "touch {{outputs}}"\n' for n in range(30))
    rules += '[rules.many]\nforeach = { k = ["1", "2", "3"] }\noutputs = ["m/{k}.txt"]\ncmd = "touch {outputs}"\n'
    targets = ", ".join(f'"out/{n}.txt"' for n in range(30))
    project.weavefile(f'default = [{targets}, "m/1.txt", "m/2.txt", "m/3.txt"]\n' + rules)
    result = project.run("status")
    assert result.rc == 1, result
    line = [line for line in result.out.splitlines() if line.startswith("stale by rule: ")]
    assert line == ["stale by rule: many 3, r0 1, r1 1, r10 1, r11 1, r12 1, r13 1, r14 1, r15 1, r16 1 and 21 in 21 other rules"], result.out

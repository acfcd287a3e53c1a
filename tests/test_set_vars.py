"""`--set NAME=VALUE`: a var's value for one run, tracked like a value written in the file."""

from __future__ import annotations

import pytest

from conftest import assert_user_error
from weavebuild import Project

WEAVEFILE = """
[vars]
epochs = 3
lr = 0.5
name = "base"
fast = false
layers = [64, 32]

[rules.train]
outputs = ["model.txt"]
cmd = "echo epochs={vars.epochs} lr={vars.lr} fast={vars.fast} layers={vars.layers} > {outputs}; echo train >> runs.log"

[rules.tag]
outputs = ["tag.txt"]
cmd = "echo '{vars.name}' > {outputs}; echo tag >> runs.log"

[rules.all]
inputs = ["model.txt", "tag.txt"]
"""


@pytest.fixture
def vars_project(project):
    project.weavefile(WEAVEFILE)
    first = project.run("build", "all")
    assert first.rc == 0, first
    project.clear_runs()
    return project


def test_set_reruns_only_the_jobs_using_the_var_and_the_default_comes_back(vars_project):
    project = vars_project
    run = project.run("build", "all", "--set", "epochs=5", "-v")
    assert run.rc == 0, run
    assert project.runs_log() == ["train"]
    assert "var changed: epochs" in run.out
    assert project.read("model.txt") == "epochs=5 lr=0.5 fast=false layers=64 32\n"
    project.clear_runs()
    # The same values again: a no-op (the stamp of this set of values).
    again = project.run("--set", "epochs=5", "build", "all")
    assert again.rc == 0 and project.runs_log() == [], again
    # Without it: the default is back, and the job reruns (never a stale no-op).
    back = project.run("build", "all")
    assert back.rc == 0 and project.runs_log() == ["train"], back
    assert project.read("model.txt") == "epochs=3 lr=0.5 fast=false layers=64 32\n"


def test_set_to_the_files_value_runs_nothing(vars_project):
    project = vars_project
    for value in ("3", "3.0", "+3"):
        run = project.run("build", "all", "--set", f"epochs={value}", "--set", "layers=[64, 32]", "--set", "name=base")
        assert run.rc == 0, run
    assert project.runs_log() == []


def test_set_values_of_every_kind(vars_project):
    project = vars_project
    run = project.run(
        "build", "all",
        "--set", "lr=1e-3", "--set", "fast=true", "--set", "layers=[128, 64, 8]",
        "--set", "name=a=b c",  # the text after the first '=', spaces included
        "--set", "epochs=7", "--set", "epochs=9",  # the last one wins
    )
    assert run.rc == 0, run
    assert project.read("model.txt") == "epochs=9 lr=0.001 fast=true layers=128 64 8\n"
    assert project.read("tag.txt") == "a=b c\n"


def test_plan_and_status_see_the_set_values(vars_project):
    project = vars_project
    plan = project.run("plan", "all", "--set", "fast=true")
    assert plan.rc == 0, plan
    assert "would run 1 of 2 jobs:\n  [1/1] train model.txt  (var changed: fast)\n" in plan.out, plan
    assert project.runs_log() == []
    status = project.run("--set", "fast=true", "status", "all")
    assert status.rc == 1, status  # stale with these values
    assert project.run("status", "all").rc == 0  # up to date with the file's


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--set", "epoch=5"], ["no var 'epoch'", "did you mean 'epochs'?"]),
        (["--set", "seed=1"], ["no var 'seed'", "its vars: epochs, fast, layers, lr, name"]),
        (["--set", "epochs=many"], ["'epochs' is a number", "Weavefile:3", "e.g. --set epochs=3"]),
        (["--set", "fast=yes"], ["'fast' is a boolean", "e.g. --set fast=false"]),
        (["--set", "layers=64"], ["'layers' is a list", "e.g. --set layers='[64, 32]' (a TOML array)"]),
        (["--set", "lr=fast"], ["'lr' is a number", "e.g. --set lr=0.5"]),  # the var's own default
        (["--set", "lr=nan"], ["'lr' is a number", "and 'nan' is not"]),
        (["--set", "epochs"], ["'epochs' is not NAME=VALUE"]),
        (["--set", "=5"], ["'=5' is not NAME=VALUE"]),
        (["--set", "my-var=5"], ["'my-var=5' is not NAME=VALUE"]),
    ],
)
def test_bad_set_is_a_usage_error(vars_project, args, fragments):
    project = vars_project
    result = project.run("build", "all", *args)
    assert_user_error(result, *fragments)
    assert project.runs_log() == []


def test_a_number_written_the_python_way_is_a_number(vars_project):
    """`--set lr=.5` and `lr=5.` are numbers to whoever types them, though not TOML's: taken as
    0.5 and 5.0 (`lr=.5` is the value in the file, and reruns nothing)."""
    project = vars_project
    assert project.run("build", "all").rc == 0
    project.clear_runs()
    same = project.run("build", "all", "--set", "lr=.5")
    assert same.rc == 0 and project.runs_log() == [], same
    assert project.run("build", "all", "--set", "lr=5.").rc == 0
    assert "lr=5 " in project.read("model.txt")


def test_a_bad_set_value_for_cpus_names_the_set(project):
    """`cpus = "{vars.threads}"` with `--set threads=0`: the mistake is the --set, not the
    Weavefile's line."""
    project.weavefile(
        """
        [vars]
        threads = 2
        [rules.r]
        outputs = ["o.txt"]
        cpus = "{vars.threads}"
        cmd = "echo {cpus} > {outputs}"
        """
    )
    assert_user_error(
        project.run("build", "--set", "threads=0"), "--set threads=0: rule 'r', key 'cpus': must be a positive integer, got 0"
    )
    assert project.run("build", "--set", "threads=3").rc == 0
    assert project.read("o.txt") == "3\n"


def test_api_overrides(vars_project):
    project = vars_project
    result = Project.load(str(project.root), overrides={"epochs": "4"}).build(["all"])
    assert [job.key for job in result.ran] == ["train"]
    assert project.read("model.txt").startswith("epochs=4 ")
    assert Project.load(str(project.root), overrides={"epochs": "4"}).build(["all"]).ran == []


# -- vars in paths and foreach -------------------------------------------------------------------

RUNS = """
[vars]
run = "baseline"
samples = ["a", "b"]
dataset = "one"

[rules.features]
inputs  = ["raw/{s}.txt"]
outputs = ["runs/{vars.run}/{s}.txt"]
foreach = { s = "{vars.samples}" }
cmd     = "tr a-z A-Z < {inputs} > {outputs}; echo features >> runs.log"

[rules.report]
inputs  = ["runs/{vars.run}/{s}.txt"]
outputs = ["runs/{ vars.run }/report.txt"]
foreach = { s = "{ vars.samples }" }
cmd     = "cat {inputs} > {outputs}; echo report >> runs.log"

[rules.train]
inputs  = ["data/{vars.dataset}.csv"]
outputs = ["model.txt"]
cmd     = "cat {inputs} > {outputs}; echo train >> runs.log"
"""


@pytest.fixture
def runs_project(project):
    project.weavefile(RUNS)
    for sample in "abc":
        project.write(f"raw/{sample}.txt", f"{sample}\n")
    project.write("data/one.csv", "1\n")
    project.write("data/two.csv", "2\n")
    return project


def test_vars_in_paths_and_foreach_give_one_weavefile_many_runs(runs_project):
    project = runs_project
    first = project.run("build", "report")
    assert first.rc == 0, first
    assert project.read("runs/baseline/report.txt") == "A\nB\n"
    assert sorted(project.runs_log()) == ["features", "features", "report"]
    project.clear_runs()

    quick = project.run("build", "report", "--set", "run=quick", "--set", "samples=['c']")
    assert quick.rc == 0, quick
    assert project.read("runs/quick/report.txt") == "C\n"
    assert sorted(project.runs_log()) == ["features", "report"]
    assert project.read("runs/baseline/report.txt") == "A\nB\n"  # the other run is untouched
    project.clear_runs()

    # Back to the file's values: that run's outputs and records still hold.
    back = project.run("build", "report")
    assert back.rc == 0 and project.runs_log() == [], back


def test_a_var_in_an_input_path_is_the_reason_to_rerun(runs_project):
    project = runs_project
    assert project.run("build", "train").rc == 0
    project.clear_runs()
    run = project.run("-v", "build", "train", "--set", "dataset=two")
    assert run.rc == 0, run
    assert "var changed: dataset" in run.out
    assert project.read("model.txt") == "2\n" and project.runs_log() == ["train"]


def test_braces_in_a_var_value_stay_literal_in_a_path(project):
    project.weavefile(
        """
        [vars]
        tag = "x{y}"
        [rules.make]
        outputs = ["out/{vars.tag}.txt", "out/{{vars.tag}}.txt"]
        cmd = "touch {outputs}"
        """
    )
    run = project.run("build", "make")
    assert run.rc == 0, run
    assert project.exists("out/x{y}.txt") and project.exists("out/{vars.tag}.txt")


@pytest.mark.parametrize(
    "rule, fragments",
    [
        ('outputs = ["o/{vars.nope}.txt"]\ncmd = "touch {outputs}"',
         ["key 'outputs'", "no var 'nope' in [vars]"]),
        ('outputs = ["o/{vars.sample}.txt"]\ncmd = "touch {outputs}"',
         ["no var 'sample'", "did you mean 'samples'?"]),
        ('outputs = ["o.txt"]\nlog = "logs/{vars.samples}.log"\ncmd = "touch {outputs}"',
         ["key 'log'", "'{vars.samples}' is a list; a path takes a single value", 'foreach = { NAME = "{vars.samples}" }']),
        ('outputs = ["o/{vars.empty}.txt"]\ncmd = "touch {outputs}"',
         ["key 'outputs'", "has no path left: its list vars are empty"]),
        ('outputs = ["o/{s}.txt"]\nforeach = { s = "{vars.n}" }\ncmd = "touch {outputs}"',
         ["key 'foreach'", "must name a list of values or a pattern string"]),
        ('inputs = ["i/{vars.nope}.txt"]\noutputs = ["o.txt"]\ncmd = "touch {outputs}"',
         ["key 'inputs'", "no var 'nope'"]),
    ],
)
def test_bad_vars_in_paths_are_weavefile_errors(project, rule, fragments):
    project.weavefile('[vars]\nsamples = ["a"]\nn = 3\nempty = []\n\n[rules.r]\n' + rule + "\n")
    assert_user_error(project.run("build"), "Weavefile:", *fragments)


def test_a_list_var_in_inputs_or_outputs_is_a_path_per_item_of_one_job(project):
    """Snakemake's `output: expand("m/{i}.tsv", i=IDS)`: one job writing a file per item (and
    `input: expand(...)` reading them); two list vars in a path give every combination, a
    named group holds them all, and `temp` may name them the same way. Adding an item reruns
    the job that writes them all and the one reading them."""
    project.weavefile(
        """
        [vars]
        inds = ["I1", "I2"]
        sfx = ["a", "b"]
        [rules.split]
        inputs = ["in.txt"]
        outputs = { m = "m/{vars.inds}.tsv", x = "x/{vars.inds}.{vars.sfx}" }
        cmd = "for f in {outputs}; do echo $f > $f; done; echo {outputs.m} > names.txt"
        temp = ["x/{vars.inds}.{vars.sfx}"]
        [rules.join]
        inputs = ["m/{vars.inds}.tsv", "x/{vars.inds}.{vars.sfx}"]
        outputs = ["joined.txt"]
        cmd = "cat {inputs} > {outputs}"
        """
    )
    project.write("in.txt", "x\n")
    result = project.run("build", "joined.txt")
    assert result.rc == 0, result
    assert "[1/2] split m/I1.tsv" in result.out, result.out
    assert project.read("joined.txt").split() == ["m/I1.tsv", "m/I2.tsv", "x/I1.a", "x/I1.b", "x/I2.a", "x/I2.b"]
    assert project.read("names.txt") == "m/I1.tsv m/I2.tsv\n"
    assert not project.exists("x/I1.a")  # temporary, read by join: deleted
    assert "nothing to do" in project.run("build", "joined.txt").out
    text = (project.root / "Weavefile").read_text().replace('inds = ["I1", "I2"]', 'inds = ["I1", "I2", "I3"]')
    project.write("Weavefile", text, dedent=False)
    result = project.run("build", "joined.txt")
    assert result.rc == 0 and "split" in result.out and "join" in result.out, result
    assert "x/I3.b" in project.read("joined.txt").split()


def test_list_shows_the_vars_with_the_values_of_this_run(vars_project):
    project = vars_project
    out = project.run("list").out
    assert "vars:\n  epochs = 3\n  lr     = 0.5\n  name   = base\n  fast   = false\n  layers = [64, 32]\n" in out, out
    out = project.run("list", "--set", "layers=[8]", "--set", "name=x y").out
    assert "  name   = x y  (--set)\n" in out and "  layers = [8]  (--set)\n" in out, out


def test_clean_without_targets_removes_what_every_set_of_values_built(runs_project):
    project = runs_project
    assert project.run("build", "report").rc == 0
    assert project.run("build", "report", "--set", "run=quick").rc == 0
    assert project.exists("runs/baseline/report.txt") and project.exists("runs/quick/report.txt")
    # With a target and values: that run's outputs only.
    dry = project.run("clean", "-n", "report", "--set", "run=quick")
    assert "runs/quick/report.txt" in dry.out and "runs/baseline" not in dry.out, dry
    # With values and no target: the default targets' outputs as those values name them
    # (before, every run's: not what `--set run=quick` asks for).
    dry = project.run("clean", "-n", "--set", "run=quick")
    assert "would remove runs/quick/" in dry.out and "runs/baseline" not in dry.out, dry
    # Without targets: every output weave recorded, whatever the values were.
    result = project.run("clean")
    assert result.rc == 0, result
    assert not project.exists("runs")
    assert project.exists("raw/a.txt") and project.exists("data/one.csv")  # sources stay
    project.clear_runs()
    assert project.run("build", "report").rc == 0
    assert sorted(project.runs_log()) == ["features", "features", "report"]


def test_a_targeted_clean_leaves_other_values_outputs_to_a_later_clean(runs_project):
    """`weave clean report` removes this run's outputs and forgets only their records: the
    outputs other --set values made stay known, and a later `weave clean` removes them."""
    project = runs_project
    assert project.run("build", "report").rc == 0
    assert project.run("build", "report", "--set", "run=quick").rc == 0
    result = project.run("clean", "report")
    assert result.rc == 0 and not project.exists("runs/baseline/report.txt"), result
    assert project.exists("runs/quick/report.txt")
    result = project.run("clean")
    assert result.rc == 0 and "removed runs/quick/report.txt" in result.out, result
    assert not project.exists("runs")


def test_a_sample_added_to_a_foreach_var_runs_only_its_jobs(project):
    """A var that only lists a foreach's values is not part of the jobs' commands: adding a
    sample (with --set or in the file) runs the new sample's job and the fan-in over all of
    them, not every existing sample's job again."""
    project.weavefile(
        """
        default = ["merge"]
        [vars]
        samples = ["a", "b"]
        [rules.features]
        inputs = ["raw/{s}.csv"]
        outputs = ["feat/{s}.csv"]
        foreach = { s = "{vars.samples}" }
        cmd = "cp {inputs} {outputs}"
        [rules.merge]
        inputs = ["feat/{s}.csv"]
        outputs = ["all.csv"]
        foreach = { s = "{vars.samples}" }
        cmd = "cat {inputs} > {outputs}"
        """
    )
    for sample in "abc":
        project.write(f"raw/{sample}.csv", f"{sample}\n")
    assert project.run("build").rc == 0
    result = project.run("build", "--set", 'samples=["a", "b", "c"]')
    assert result.rc == 0 and result.started == ["features feat/c.csv", "merge all.csv"], result
    assert project.read("all.csv") == "a\nb\nc\n"
    result = project.run("build")  # back to two samples: only the fan-in changes
    assert result.rc == 0 and result.started == ["merge all.csv"], result
    assert project.read("all.csv") == "a\nb\n"


def test_older_record_that_matches_becomes_the_latest(project):
    """After --set d=3 and back, r is up to date by its first record (t made the same line
    count again); a later hand edit of r.txt is then explained as such, not as a change of
    t.txt against the --set run."""
    project.weavefile(
        """
        [vars]
        d = 2
        [rules.t]
        outputs = ["t.txt"]
        cmd = "echo {vars.d} > t.txt"
        [rules.r]
        inputs = ["t.txt"]
        outputs = ["r.txt"]
        cmd = "wc -l < t.txt > r.txt"
        """
    )
    assert project.run("build", "r.txt").rc == 0
    assert project.run("build", "r.txt", "--set", "d=3").rc == 0
    result = project.run("build", "r.txt")
    assert result.rc == 0 and result.started == ["t t.txt"], result
    project.write("r.txt", "by hand\n")
    out = project.run("plan", "r.txt").out
    assert "(output modified: r.txt)" in out, out
    assert "output modified: r.txt" in project.run("why", "r.txt").out
    result = project.run("build", "r.txt")
    assert result.started == ["r r.txt"] and project.read("r.txt").strip() == "1"
    again = project.run("build", "r.txt")
    assert again.rc == 0 and "nothing to do" in again.out + again.err


def test_a_var_edited_to_the_same_text_reruns_nothing(project):
    """`e = 300` edited to `e = 300.0` inserts the same text (a zero fraction is dropped): the
    job's recipe is unchanged, so nothing reruns (before: a rerun, reason 'never built')."""
    rule = '[rules.o]\noutputs = ["o.txt"]\ncmd = "echo {vars.e} {vars.l} > o.txt"\n'
    project.weavefile("[vars]\ne = 300\nl = [1, 2]\n" + rule)
    assert project.run("build").rc == 0
    project.weavefile("[vars]\ne = 300.0\nl = [1.0, 2]\n" + rule)
    result = project.run("build")
    assert result.rc == 0 and result.started == [], result
    project.weavefile("[vars]\ne = 300.5\nl = [1.0, 2]\n" + rule)
    assert "var changed: e" in project.run("plan").out


def test_cpus_and_resource_amounts_from_vars(project):
    """cpus = "{vars.threads}" (Snakemake's threads from the config): --set changes it; only
    jobs whose command uses {cpus} run again (the slots a job takes are scheduling, not
    what it makes)."""
    project.weavefile(
        """
        [vars]
        threads = 2
        mem = 100
        [rules.a]
        outputs = ["a.txt"]
        cpus = "{vars.threads}"
        resources = { mem_mb = "{vars.mem}" }
        cmd = "echo a >> runs.log; echo {cpus} > a.txt"
        [rules.b]
        outputs = ["b.txt"]
        cpus = "{vars.threads}"
        cmd = "echo b >> runs.log; echo b > b.txt"
        """
    )
    assert project.run("build", "a.txt", "b.txt").rc == 0
    assert project.read("a.txt") == "2\n"
    project.clear_runs()
    changed = project.run("build", "--set", "threads=3", "a.txt", "b.txt")
    assert changed.rc == 0 and project.runs_log() == ["a"], changed
    assert project.read("a.txt") == "3\n"
    # More slots than -j gives: the job runs alone rather than never.
    assert project.run("build", "-j", "2", "--set", "threads=5", "a.txt").rc == 0
    assert project.read("a.txt") == "5\n"
    assert_user_error(project.run("build", "--set", "threads=0", "a.txt"), "key 'cpus'", "must be a positive integer, got 0")
    assert_user_error(project.run("build", "--set", "mem=-1", "a.txt"), "key 'resources'", "non-negative")
    project.write("Weavefile", project.read("Weavefile").replace("threads = 2", 'threads = "two"'), dedent=False)
    assert_user_error(project.run("build", "a.txt"), "key 'cpus'", "var 'threads' is a string")


def test_a_huge_set_value_is_shortened_in_the_message(project):
    project.weavefile('[vars]\nn = 3\n[rules.a]\noutputs = ["a"]\ncmd = "echo {vars.n} > a"\n')
    result = project.run("build", "--set", "n=" + "x" * 5000)
    assert_user_error(result, "'n' is a number in [vars]", "(5,000 characters)")
    assert len(result.err) < 500, len(result.err)


TABLE_VARS = """
default = ["all"]
[vars.adapters]
A = "AAA"
B = "BBB"

[rules.trim]
inputs = ["reads/{sample}.fq"]
outputs = ["trimmed/{sample}.fq"]
cmd = "echo {vars.adapters[wildcards.sample]} > {outputs}; cat {inputs} >> {outputs}"

[rules.all]
inputs = ["trimmed/{s}.fq"]
foreach = { s = "reads/{s}.fq" }
"""


def test_a_table_var_gives_each_job_its_own_value_and_reruns_only_its_job(project):
    """Snakemake's `params: lambda wc: config["adapters"][wc.sample]`: each job looks up its
    sample's entry, and depends on that entry only."""
    project.weavefile(TABLE_VARS)
    for sample in "AB":
        project.write(f"reads/{sample}.fq", f"reads {sample}\n")
    assert project.run("build").rc == 0
    assert project.read("trimmed/A.fq") == "AAA\nreads A\n"
    assert project.read("trimmed/B.fq") == "BBB\nreads B\n"
    project.weavefile(TABLE_VARS.replace('B = "BBB"', 'B = "NNN"\nC = "CCC"'))  # B changed, C added
    result = project.run("-v", "build")
    assert result.rc == 0, result
    assert "trim trimmed/B.fq  (var changed: adapters[B])" in result.out, result.out
    assert "trimmed/A.fq" not in result.out, result.out
    assert project.read("trimmed/B.fq") == "NNN\nreads B\n"
    replaced = project.run("build", "--set", 'adapters={ A = "x", B = "NNN", C = "CCC" }')
    assert replaced.rc == 0 and "trimmed/A.fq" in replaced.out and "trimmed/B.fq" not in replaced.out, replaced
    assert project.read("trimmed/A.fq") == "x\nreads A\n"


def test_table_var_mistakes_are_user_errors(project):
    project.write("reads/A.fq", "a\n")
    project.write("reads/Z.fq", "z\n")
    project.weavefile(TABLE_VARS)
    missing = project.run("build")
    assert_user_error(missing, "rule 'trim', key 'cmd'", "var 'adapters' has no key 'Z'", "add 'Z' to [vars.adapters]")
    cases = [
        ("{vars.adapters[wildcards.sample]}", "{vars.adapters}", "is a table var: a command takes one of its values"),
        ("{vars.adapters[wildcards.sample]}", "{vars.adapters[wildcards.nope]}", "no wildcard 'nope' in this rule"),
        ('outputs = ["trimmed/{sample}.fq"]', 'outputs = ["trimmed/{vars.adapters[wildcards.sample]}/{sample}.fq"]',
         "a lookup in a table var is for inputs, cmd, env and depfile, not outputs"),
        ('B = "BBB"', 'B = ["B", "BB"]', "must be a string, number, boolean, a list of those, or a table"),
        ('A = "AAA"\nB = "BBB"', "", "variable 'adapters' is an empty table"),
    ]
    for old, new, message in cases:
        project.weavefile(TABLE_VARS.replace(old, new))
        assert_user_error(project.run("plan"), message)


SAMPLE_SHEET = """
default = ["all"]
[vars]
samples = ["A", "B"]
[vars.fq1]
A = "raw/run7/A_S1_R1.fq"
B = "raw/r1/B_R1.fq"
[vars.reads]
A = "raw/A_*.fq"
B = "raw/B_*.fq"

[rules.trim]
inputs = ["{vars.fq1[wildcards.s]}"]
outputs = ["trimmed/{s}.fq"]
cmd = "cat {inputs} > {outputs}"

[rules.count]
inputs = { reads = "{vars.reads[wildcards.s]}" }
outputs = ["counts/{s}.txt"]
cmd = "cat {inputs.reads} | wc -l > {outputs}"

[rules.merge]
inputs = ["{vars.fq1[wildcards.s]}"]
foreach = { s = "{vars.samples}" }
outputs = ["merged.txt"]
cmd = "cat {inputs} > {outputs}"

[rules.all]
inputs = ["trimmed/{s}.fq", "counts/{s}.txt", "merged.txt"]
foreach = { s = "{vars.samples}" }
"""


def test_an_input_looked_up_in_a_table_var_is_each_jobs_own_file(project):
    """A Snakemake input function over a sample sheet (`lambda wc: units.loc[wc.sample,
    "fq1"]`): each job reads the file its entry names (a glob in an entry is expanded, and a
    fan-in over a foreach key reads every sample's), and an edited entry or file reruns only
    the jobs of that sample."""
    project.weavefile(SAMPLE_SHEET)
    project.write("raw/run7/A_S1_R1.fq", "a1\n")
    project.write("raw/r1/B_R1.fq", "b1\n")
    project.write("raw/A_1.fq", "x\n")
    project.write("raw/B_1.fq", "y\n")
    project.write("raw/B_2.fq", "z\n")
    assert project.run("build").rc == 0
    assert project.read("trimmed/A.fq") == "a1\n" and project.read("trimmed/B.fq") == "b1\n"
    assert project.read("counts/A.txt").strip() == "1" and project.read("counts/B.txt").strip() == "2"
    assert project.read("merged.txt") == "a1\nb1\n"
    assert "nothing to do" in project.run("build").out
    project.write("raw/B_3.fq", "w\n")  # a new file the B glob matches
    result = project.run("build")
    assert result.rc == 0, result
    assert "count counts/B.txt" in result.out and "counts/A.txt" not in result.out, result.out
    assert project.read("counts/B.txt").strip() == "3"
    project.write("raw/other_A.fq", "a2\n")
    project.weavefile(SAMPLE_SHEET.replace('A = "raw/run7/A_S1_R1.fq"', 'A = "raw/other_A.fq"'))
    result = project.run("build")
    assert result.rc == 0, result
    assert "trim trimmed/A.fq" in result.out and "trimmed/B.fq" not in result.out, result.out
    assert "merge merged.txt" in result.out, result.out
    assert project.read("trimmed/A.fq") == "a2\n" and project.read("merged.txt") == "a2\nb1\n"
    project.write("raw/r1/B_R1.fq", "b2\n")  # the looked-up file itself
    result = project.run("build")
    assert "trim trimmed/B.fq" in result.out and "trimmed/A.fq" not in result.out, result.out
    # an entry made by another rule: that rule runs first
    project.weavefile(SAMPLE_SHEET.replace('B = "raw/r1/B_R1.fq"', 'B = "made/B.fq"') + """
[rules.make_b]
outputs = ["made/B.fq"]
cmd = "echo made > {outputs}"
""")
    result = project.run("build", "trimmed/B.fq")
    assert result.rc == 0, result
    assert project.read("trimmed/B.fq") == "made\n"


def test_input_lookup_mistakes_are_user_errors(project):
    project.write("raw/run7/A_S1_R1.fq", "a\n")
    project.write("raw/r1/B_R1.fq", "b\n")
    project.weavefile(SAMPLE_SHEET.replace('samples = ["A", "B"]', 'samples = ["A", "B", "C"]'))
    assert_user_error(project.run("plan"), "rule 'trim', key 'inputs'", "var 'fq1' has no key 'C'", "add 'C' to [vars.fq1]")
    trim = '["{vars.fq1[wildcards.s]}"]\noutputs = ["trimmed/{s}.fq"]'
    cases = [
        ('["{vars.samples[wildcards.s]}"]\noutputs = ["trimmed/{s}.fq"]', "var 'samples' is a list, not a table to look up"),
        ('["{vars.fq1[wildcards.x]}"]\noutputs = ["trimmed/{s}.fq"]', "no wildcard 'x' in this rule"),
        ('["{vars.fq1[s]}"]\noutputs = ["trimmed/{s}.fq"]', "is not a lookup in a table var"),
        ('["{vars.nope[wildcards.s]}"]\noutputs = ["trimmed/{s}.fq"]', "no var 'nope'"),
    ]
    for new, message in cases:
        project.weavefile(SAMPLE_SHEET.replace(trim, new))
        assert_user_error(project.run("plan"), "rule 'trim', key 'inputs'", message)
    project.weavefile(SAMPLE_SHEET.replace('inputs = ["trimmed/{s}.fq", "counts/{s}.txt", "merged.txt"]', 'inputs = ["{vars.fq1[wildcards.s]}"]'))
    assert_user_error(project.run("plan"), "rule 'all', key 'inputs'", "an alias rule's inputs cannot look up a table var")
    project.weavefile(SAMPLE_SHEET.replace('B = "raw/r1/B_R1.fq"', 'B = ""'))
    assert_user_error(project.run("plan", "trimmed/B.fq"), "rule 'trim', key 'inputs'", "is empty for 'B'")
    # inside a longer path too (it read the directory raw/)
    project.weavefile(SAMPLE_SHEET.replace('B = "raw/r1/B_R1.fq"', 'B = ""').replace(
        'inputs = ["{vars.fq1[wildcards.s]}"]\noutputs = ["trimmed/{s}.fq"]', 'inputs = ["raw/{vars.fq1[wildcards.s]}"]\noutputs = ["trimmed/{s}.fq"]'))
    assert_user_error(project.run("plan", "trimmed/B.fq"), "rule 'trim', key 'inputs'", "is empty for 'B'")
    # a list var in a depfile: one path only
    project.weavefile('[vars]\nl = ["a", "b"]\n[rules.c]\noutputs = ["o"]\ndepfile = "{vars.l}.d"\ncmd = "touch o"\n')
    assert_user_error(project.run("plan"), "rule 'c', key 'depfile'", "'{vars.l}' is a list; a depfile is one path")
    # temp naming a group (or a path) whose list var is empty: nothing to name, no crash
    project.weavefile(
        '[vars]\nsamples = []\n[rules.demux]\noutputs = { fq = "demux/{vars.samples}.fq", stats = "demux/stats.txt" }\n'
        'temp = ["fq", "demux/{vars.samples}.fq"]\ncmd = "touch {outputs}"\n'
    )
    assert project.run("plan").rc == 0


def test_a_missing_table_key_looked_up_in_env_is_reported_at_env(project):
    project.write("Weavefile", (
        '[vars.adapters]\nB = "bb"\n'
        '[rules.trim]\noutputs = ["trimmed/{sample}.fq"]\nforeach = { sample = ["A", "B"] }\n'
        'cmd = "echo $ADAPT > {outputs}"\nenv = { ADAPT = "{vars.adapters[wildcards.sample]}" }\n'
    ))
    assert_user_error(project.run("plan"), "Weavefile:7: rule 'trim', key 'env'", "var 'adapters' has no key 'A'")


def test_plan_of_a_forced_job_below_a_rerunning_one_names_forced_and_its_own_reasons(project):
    project.weavefile(
        """
        default = ["c/A", "c/B"]
        [vars.t]
        A = "x"
        B = "y"
        [rules.one]
        inputs = ["a.txt"]
        outputs = ["b.txt"]
        cmd = "cat a.txt > b.txt"
        [rules.two]
        inputs = ["b.txt"]
        outputs = ["c/{s}"]
        foreach = { s = ["A", "B"] }
        cmd = "cat b.txt > {outputs}; echo {vars.t[wildcards.s]} >> {outputs}"
        """
    )
    project.write("a.txt", "a\n")
    assert project.run("build").rc == 0
    project.write("a.txt", "a2\n")
    text = (project.root / "Weavefile").read_text().replace('B = "y"', 'B = "y2"')
    (project.root / "Weavefile").write_text(text)
    plan = project.run("plan", "-R", "two")
    assert plan.rc == 0, plan
    assert "two c/A    (upstream will rerun: one b.txt; forced)" in plan.out, plan.out
    assert "two c/B    (upstream will rerun: one b.txt; forced; var changed: t[B])" in plan.out, plan.out


def test_watch_looks_for_new_files_of_a_looked_up_glob(project):
    """`weave watch` watches the globs jobs read: a looked-up entry's glob is one of them."""
    project.weavefile(SAMPLE_SHEET)
    for name in ("raw/run7/A_S1_R1.fq", "raw/r1/B_R1.fq", "raw/A_1.fq", "raw/B_1.fq"):
        project.write(name, "x\n")
    patterns = _watched_patterns(project, "all")
    assert "raw/A_*.fq" in patterns and "raw/B_*.fq" in patterns, patterns


def _watched_patterns(project, target):
    """The glob and foreach patterns `weave watch` would watch for `target`."""
    from weavebuild.api import Project
    from weavebuild.watch import scan_patterns

    loaded = Project.load(str(project.root))
    return [text for text, _ in scan_patterns(loaded.graph([target]), loaded.manifest)]


def test_watch_looks_for_new_files_of_a_looked_up_glob_in_a_fan_in(project):
    """A fan-in over a foreach key reads every entry: each entry's glob is watched (the job
    binds no value of the key, so the pattern became '')."""
    project.weavefile(
        """
        default = ["all.txt"]
        [vars.reads]
        A = "raw/A_*.fq"
        B = "raw/B_*.fq"
        [rules.fanin]
        inputs  = ["{vars.reads[wildcards.s]}"]
        outputs = ["all.txt"]
        foreach = { s = ["A", "B"] }
        cmd     = "cat {inputs} > {outputs}"
        """
    )
    project.write("raw/A_1.fq", "a\n")
    project.write("raw/B_1.fq", "b\n")
    patterns = _watched_patterns(project, "all.txt")
    assert "raw/A_*.fq" in patterns and "raw/B_*.fq" in patterns, patterns


def test_mistakes_a_set_value_causes_name_the_set_not_the_weavefile(project):
    """A table given with --set that lacks a job's key, and a --set amount a resource cannot
    take, were reported at the Weavefile's line with a hint to edit [vars] (which was fine)."""
    project.weavefile(
        """
        [vars]
        mem = 5
        [vars.ad]
        a = "x"
        b = "y"
        [rules.t]
        outputs = ["o/{s}.txt"]
        foreach = { s = ["a", "b"] }
        resources = { mem_mb = "{vars.mem}" }
        cmd = "echo {vars.ad[wildcards.s]} > {outputs}"
        """
    )
    assert project.run("build", "t").rc == 0
    missing = project.run("build", "t", "--set", 'ad={ a = "1" }')
    assert_user_error(missing, "--set ad={ a = \"1\" }: rule 't', key 'cmd'", "has no key 'b'", "--set table")
    assert "Weavefile:" not in missing.err, missing
    negative = project.run("build", "t", "--set", "mem=-5")
    assert_user_error(negative, "--set mem=-5: rule 't', key 'resources': resource 'mem_mb' must be a non-negative number")
    assert "Weavefile:" not in negative.err, negative

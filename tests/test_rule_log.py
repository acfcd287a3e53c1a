"""A rule's `log` (Snakemake's `log:`): a file the command writes its own log to. Weave makes
its directory, keeps it whatever happens, shows its tail when the job fails silently, and
never reads it to decide anything."""

from __future__ import annotations

import shutil

import pytest

from conftest import assert_user_error, wait_past_racy_window

MAP = """
    [rules.map]
    inputs  = ["raw/{sample}.txt"]
    outputs = ["out/{sample}.txt"]
    log     = "logs/map/{sample}.log"
    cmd     = "(echo mapping {wildcards.sample} >&2; cat {inputs} > {outputs}) 2> {log}"
    [rules.all]
    inputs  = ["out/{sample}.txt"]
    foreach = { sample = "raw/{sample}.txt" }
"""


def test_the_logs_directory_is_made_and_the_log_is_never_an_input(project):
    project.write("raw/a.txt", "a\n")
    project.write("raw/b.txt", "b\n")
    project.weavefile(MAP)
    result = project.run("build", "all")
    assert result.rc == 0, result
    assert project.read("logs/map/a.log") == "mapping a\n" and project.read("logs/map/b.log") == "mapping b\n"
    assert project.read("out/a.txt") == "a\n"
    assert "  log:       logs/map/{sample}.log" in project.run("list").out
    # Not an input: editing or deleting a log reruns nothing.
    project.write("logs/map/a.log", "edited\n")
    (project.root / "logs/map/b.log").unlink()
    again = project.run("build", "all")
    assert again.rc == 0 and again.started == [], again
    # A job run again from the cached graph makes the directory too.
    shutil.rmtree(project.root / "logs")
    project.write("raw/a.txt", "a2\n")
    third = project.run("build", "all")
    assert third.rc == 0 and third.started == ["map out/a.txt"], third
    assert project.read("logs/map/a.log") == "mapping a\n"
    # weave clean removes outputs, not the logs a user reads after the fact.
    assert project.run("clean").rc == 0
    assert not project.exists("out/a.txt") and project.exists("logs/map/a.log")


def test_a_failed_jobs_log_is_kept_and_its_tail_shown(project):
    """The command sent everything to its log, so weave's own capture is empty: the failure
    shows the log's last lines and names it."""
    project.write("raw/a.txt", "a\n")
    project.weavefile(MAP.replace("cat {inputs} > {outputs}", "echo no reference genome >&2; exit 3"))
    result = project.run("build", "out/a.txt")
    assert result.rc == 1, result
    assert "weave: FAILED map out/a.txt: exited with code 3" in result.err
    assert "log: logs/map/a.log" in result.err and "    no reference genome" in result.err, result
    assert project.read("logs/map/a.log") == "mapping a\nno reference genome\n"


@pytest.mark.parametrize(
    "log, fragments",
    [
        ('"logs/map.log"', ["key 'log'", "lacks wildcard '{sample}' of the outputs: its jobs would share one log"]),
        ('"logs/{x}.log"', ["key 'log'", "uses wildcard '{x}', which no output has"]),
        ("3", ["key 'log'", "must be a path such as"]),
        ('"/tmp/x.log"', ["key 'log'", "is outside the project directory"]),
        ('"../x/{sample}.log"', ["key 'log'", "is outside the project directory"]),
        ('"logs/{sample}/"', ["key 'log'", "is a directory"]),
        ('"logs/*{sample}.log"', ["key 'log'", "contains a glob character"]),
        ('"out/{sample}.txt"', ["key 'log'", "log 'out/a.txt' of map[sample=a] is one of its outputs"]),
        ('"raw/{sample}.txt"', ["key 'log'", "log 'raw/a.txt' of map[sample=a] is one of its inputs"]),
        ('".weave/{sample}.log"', ["key 'log'", "is inside weave's state directory"]),
    ],
)
def test_log_mistakes_are_refused(project, log, fragments):
    project.write("raw/a.txt", "a\n")
    project.weavefile(
        f"""
        [rules.map]
        inputs  = ["raw/{{sample}}.txt"]
        outputs = ["out/{{sample}}.txt"]
        log     = {log}
        cmd     = "cat {{inputs}} > {{outputs}}"
        """
    )
    assert_user_error(project.run("build", "out/a.txt"), "Weavefile:5:", *fragments)


def test_a_log_shared_read_or_inside_a_directory_output_is_refused(project):
    project.weavefile(
        """
        [rules.a]
        outputs = ["a.txt"]
        log     = "logs/one.log"
        cmd     = "echo a > a.txt"
        [rules.b]
        outputs = ["b.txt"]
        log     = "logs/one.log"
        cmd     = "echo b > b.txt"
        """
    )
    assert_user_error(project.run("build", "a.txt", "b.txt"), "key 'log'", "is the log of a a.txt too: each job needs its own")
    project.weavefile(
        """
        [rules.m]
        outputs = ["model/"]
        log     = "model/train.log"
        cmd     = "mkdir -p model"
        """
    )
    assert_user_error(project.run("build"), "key 'log'", "log 'model/train.log' is inside directory output 'model/' of rule 'm'")
    project.write("notes.log", "old\n")
    project.weavefile(
        """
        [rules.a]
        outputs = ["a.txt"]
        log     = "notes.log"
        cmd     = "echo a > a.txt"
        [rules.b]
        inputs  = ["notes.log"]
        outputs = ["b.txt"]
        cmd     = "cp notes.log b.txt"
        """
    )
    assert_user_error(project.run("build", "a.txt", "b.txt"), "key 'log'", "log 'notes.log' would be read by rule 'b' (its input 'notes.log')")


def test_the_log_placeholder_needs_a_log(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch a 2> {log}"\n')
    assert_user_error(project.run("build"), "Weavefile:3: rule 'a', key 'cmd'", "'{log}': this rule has no log", "log =")


@pytest.mark.parametrize(
    "rules, fragment",
    [
        (  # its own directory input: every run would change what it reads
            '[rules.a]\ninputs = ["src/"]\noutputs = ["a.txt"]\nlog = "src/x.log"\ncmd = "ls src > a.txt 2> {log}"\n',
            "log 'src/x.log' would be read by rule 'a' (its input 'src/')",
        ),
        (  # another job's directory input: that job would read it, and not wait for it
            '[rules.a]\noutputs = ["a.txt"]\nlog = "logs/a.log"\ncmd = "echo a > a.txt 2> {log}"\n'
            '[rules.b]\ninputs = ["logs/", "a.txt"]\noutputs = ["b.txt"]\ncmd = "ls logs > b.txt"\n',
            "log 'logs/a.log' would be read by rule 'b' (its input 'logs/')",
        ),
        (  # a glob that would find it once written (refused in the first build, not the second)
            '[rules.a]\ninputs = ["data/{s}.csv"]\noutputs = ["res/{s}.txt"]\nlog = "data/{s}.log.csv"\n'
            'cmd = "cp {inputs} {outputs} 2> {log}"\n'
            '[rules.all]\ninputs = ["res/{s}.txt"]\nforeach = { s = "data/{s}.csv" }\n',
            "log 'data/a.log.csv' of a res/a.txt would be matched by 'data/*.csv'",
        ),
        (  # under a file output of its own
            '[rules.a]\noutputs = ["a.txt"]\nlog = "a.txt/x.log"\ncmd = "echo > a.txt"\n',
            "log 'a.txt/x.log' of a is inside 'a.txt', one of its outputs",
        ),
        (  # under another job's file output
            '[rules.a]\noutputs = ["a.txt"]\nlog = "b.txt/a.log"\ncmd = "echo > a.txt"\n'
            '[rules.b]\noutputs = ["b.txt"]\ncmd = "echo > b.txt"\n',
            "log 'b.txt/a.log' of a a.txt is inside file output 'b.txt' of b b.txt",
        ),
        (  # a directory holding outputs
            '[rules.a]\noutputs = ["d/a.txt"]\nlog = "d"\ncmd = "echo > d/a.txt"\n',
            "log 'd' of a holds 'd/a.txt', one of its outputs",
        ),
        (  # inside a directory a foreach scan lists (the scan would take `logs` for a value)
            '[rules.all]\ninputs = ["out/{s}.txt"]\nforeach = { s = "samples/{s}/" }\n'
            '[rules.p]\ninputs = ["samples/{s}/"]\noutputs = ["out/{s}.txt"]\nlog = "samples/logs/{s}.log"\n'
            'cmd = "ls {inputs} > {outputs}"\n',
            "log 'samples/logs/a.log' of p out/a.txt would be matched by 'samples/*/'",
        ),
    ],
    ids=[
        "own-directory-input", "another-jobs-directory-input", "glob", "own-file-output", "file-output",
        "holding-outputs", "scanned-directory",
    ],
)
def test_a_log_some_job_would_read_or_that_clashes_with_an_output_is_refused(project, rules, fragment):
    """Refused before anything runs, in the first build as in every later one."""
    project.write("src/s.txt", "s\n")
    project.write("data/a.csv", "a\n")
    project.write("samples/a/r.txt", "r\n")
    (project.root / "logs").mkdir()
    project.write("Weavefile", rules, dedent=False)
    targets = ["all"] if "[rules.all]" in rules else [line[len("[rules."):-1] for line in rules.splitlines() if line.startswith("[rules.")]
    assert_user_error(project.run("build", *targets), "key 'log'", fragment)
    assert not project.exists("logs/a.log") and not project.exists("data/a.log.csv")


def test_a_depfile_listing_the_jobs_own_log_is_not_taken_at_its_word(project):
    """The log is written while the job runs, by design: listed in its depfile, it would
    make every run look as if an input changed under it (and never be recorded)."""
    project.write("in.txt", "x\n")
    project.weavefile(
        """
        [rules.a]
        inputs  = ["in.txt"]
        outputs = ["a.txt"]
        log     = "logs/a.log"
        depfile = "a.d"
        cmd     = "echo log >> {log}; cp in.txt a.txt; printf 'a.txt: in.txt logs/a.log\\n' > a.d"
        """
    )
    assert project.run("build").rc == 0
    again = project.run("build")
    assert again.rc == 0 and again.started == [], again


def test_a_failure_shows_the_log_only_if_this_attempt_wrote_it(project):
    """A log left by an earlier run is not this failure's story; with -k, the summary names
    the log whose tail was shown."""
    project.weavefile(
        """
        [rules.a]
        outputs = ["a.txt"]
        log     = "logs/a.log"
        cmd     = "[ -n \\"${{EARLY:-}}\\" ] && exit 7; echo 'reached the end' > {log}; exit 1"
        """
    )
    first = project.run("build", "-k")
    assert first.rc == 1 and "    reached the end" in first.err, first
    assert "failed: a a.txt (log: logs/a.log)" in first.err, first
    # (a log changed within the racy window of the next attempt's start may be its own)
    wait_past_racy_window(project.root)
    early = project.run("build", env={"EARLY": "1"})
    assert early.rc == 1 and "exited with code 7" in early.err, early
    assert "last lines of output" not in early.err and "log: logs/a.log" not in early.err, early


def test_reading_a_log_that_is_not_there_yet_says_it_is_a_log(project):
    """A job whose input pattern names another rule's log (known only per job, so not refused
    when the Weavefile loads): the file is missing, and the message says why no rule makes it."""
    project.weavefile(
        """
        [rules.a]
        outputs = ["o/{s}.txt"]
        log     = "logs/{s}.log"
        cmd     = "echo > {outputs} 2> {log}"
        [rules.b]
        inputs  = ["logs/{s}.log"]
        outputs = ["p/{s}.txt"]
        cmd     = "cp {inputs} {outputs}"
        """
    )
    assert_user_error(project.run("build", "p/x.txt"), "missing source 'logs/x.log'", "it is the log of rule 'a'")


@pytest.mark.parametrize(
    "rules, fragment",
    [
        (  # a glob of another rule, built on its own later
            '[rules.x]\noutputs = ["o.txt"]\nlog = "data/x.csv"\ncmd = "echo > o.txt"\n'
            '[rules.y]\ninputs = ["data/*.csv"]\noutputs = ["p.txt"]\ncmd = "cat {inputs} > p.txt"\n',
            "log 'data/x.csv' would be read by rule 'y' (its input 'data/*.csv')",
        ),
        (  # a written input
            '[rules.x]\noutputs = ["o/{s}.txt"]\nlog = "logs/{s}.log"\ncmd = "echo > {outputs}"\n'
            '[rules.y]\ninputs = ["logs/a.log"]\noutputs = ["p.txt"]\ncmd = "cp {inputs} p.txt"\n',
            "log 'logs/{s}.log' would be read by rule 'y' (its input 'logs/a.log')",
        ),
        (  # a directory input
            '[rules.x]\noutputs = ["o/{s}.txt"]\nlog = "logs/{s}.log"\ncmd = "echo > {outputs}"\n'
            '[rules.y]\ninputs = ["logs/"]\noutputs = ["p.txt"]\ncmd = "ls logs > p.txt"\n',
            "log 'logs/{s}.log' would be read by rule 'y' (its input 'logs/')",
        ),
        (  # a directory output of another rule (its job empties it)
            '[rules.x]\noutputs = ["o.txt"]\nlog = "out/x.log"\ncmd = "echo > o.txt"\n'
            '[rules.y]\noutputs = ["out/"]\ncmd = "mkdir -p out"\n',
            "log 'out/x.log' is inside directory output 'out/' of rule 'y'",
        ),
        (  # another rule's exact output
            '[rules.x]\noutputs = ["o.txt"]\nlog = "q.txt"\ncmd = "echo > o.txt"\n'
            '[rules.y]\noutputs = ["q.txt"]\ncmd = "echo > q.txt"\n',
            "log 'q.txt' is an output of rule 'y'",
        ),
    ],
    ids=["glob", "written-input", "directory-input", "directory-output", "exact-output"],
)
def test_what_the_weavefile_alone_tells_about_a_log_is_refused_when_it_loads(project, rules, fragment):
    """Not only among the jobs of one build: `weave build o.txt` then `weave build p.txt`
    would have read the log (or emptied its directory) without either build seeing both."""
    project.write("data/a.csv", "a\n")
    project.write("Weavefile", rules, dedent=False)
    assert_user_error(project.run("build", "o.txt"), "Weavefile:3: rule 'x', key 'log'", fragment)


def test_a_failure_that_printed_output_and_wrote_its_log_names_the_log(project):
    project.weavefile(
        """
        [rules.a]
        outputs = ["a.txt"]
        log     = "logs/a.log"
        cmd     = "echo to the terminal; (echo to the log >&2; exit 3) 2> {log}"
        """
    )
    result = project.run("build")
    assert result.rc == 1, result
    assert "exited with code 3 (it also wrote its log, logs/a.log)" in result.err, result
    assert "    to the terminal" in result.err


def test_logs_that_no_reader_could_take_are_accepted(project):
    """No false alarms: logs of listed foreach values are those paths only (data/raw.log is
    not one of data/{s}.log for s in a, b); a glob qc/x* cannot take qc/{s}.log when s must
    be S[0-9]+; a foreach scan of raw/{s}/ with s = S[0-9]+ never takes raw/logs/."""
    project.write("data/raw.log", "raw\n")
    for sample in ("S1", "S2"):
        project.write(f"raw/{sample}/r.txt", f"{sample}\n")
    project.write("qc/x1.txt", "x\n")
    project.weavefile(
        """
        default = ["parsed.txt", "report.txt", "all"]
        [rules.fit]
        outputs = ["models/{s}.txt"]
        foreach = { s = ["a", "b"] }
        log     = "data/{s}.log"
        cmd     = "echo {wildcards.s} > {outputs} 2> {log}"
        [rules.parse]
        inputs  = ["data/raw.log", "models/a.txt"]
        outputs = ["parsed.txt"]
        cmd     = "cat {inputs} > {outputs}"
        [rules.qc]
        inputs    = ["raw/{s}/"]
        outputs   = ["out/{s}.txt"]
        wildcards = { s = "S[0-9]+" }
        log       = "qc/{s}.log"
        cmd       = "ls {inputs} > {outputs} 2> {log}"
        [rules.report]
        inputs  = ["qc/x*"]
        outputs = ["report.txt"]
        cmd     = "cat {inputs} > {outputs}"
        [rules.proc]
        inputs    = ["raw/{s}/"]
        outputs   = ["proc/{s}.txt"]
        wildcards = { s = "S[0-9]+" }
        log       = "raw/logs/{s}.log"
        cmd       = "ls {inputs} > {outputs} 2> {log}"
        [rules.all]
        inputs    = ["out/{s}.txt", "proc/{s}.txt"]
        foreach   = { s = "raw/{s}/" }
        wildcards = { s = "S[0-9]+" }
        """
    )
    first = project.run("build")
    assert first.rc == 0, first
    again = project.run("build")
    assert again.rc == 0 and again.started == [], again


def test_a_log_written_with_a_dot_slash_is_checked_as_its_path(project):
    project.weavefile(
        """
        [rules.a]
        inputs  = ["logs/"]
        outputs = ["a.txt"]
        cmd     = "ls logs > a.txt"
        [rules.b]
        outputs = ["b/{s}.txt"]
        log     = "./logs/{s}.log"
        cmd     = "echo > {outputs} 2> {log}"
        """
    )
    project.write("logs/keep", "")
    assert_user_error(project.run("build", "a.txt"), "key 'log'", "would be read by rule 'a' (its input 'logs/')")

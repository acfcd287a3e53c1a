"""Progress output: a live status line on a terminal, plain lines elsewhere."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def run_in_terminal(root, *args: str) -> tuple:
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="200")
    process = subprocess.Popen(
        [sys.executable, "-m", "weavebuild", *args], cwd=root, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


STEPS = """
[rules.step]
outputs = ["out/{i}.txt"]
foreach = { i = ["1", "2", "3", "4"] }
cmd = "sleep 0.3; echo {wildcards.i} > {outputs}"
"""


def test_terminal_gets_status_line(project):
    project.weavefile(STEPS)
    rc, text = run_in_terminal(project.root, "build", "-j", "2", "step")
    assert rc == 0, text
    assert "\r\x1b[K[" in text, text
    assert "running: step ×2" in text
    assert "weave: 4 ran, 0 up to date" in text
    assert "\n[1/4] step" not in text  # no per-job lines on a terminal


def test_pipe_gets_plain_lines(project):
    project.weavefile(STEPS)
    result = project.run("build", "-j", "2", "step")
    assert result.rc == 0
    assert "\x1b[" not in result.out
    assert len(result.started) == 4


def test_quiet_prints_nothing_on_success(project):
    project.weavefile(STEPS)
    result = project.run("build", "-q", "step")
    assert result.rc == 0 and result.out == "" and result.err == ""


def test_verbose_prints_commands_and_reasons(project):
    project.weavefile(STEPS)
    result = project.run("-v", "build", "out/1.txt")
    assert "$ sleep 0.3; echo 1 > out/1.txt" in result.out
    assert "(never built)" in result.out


def test_job_output_is_labelled_with_its_job(project):
    """Output printed when a job ends sits under that job's start line, or under a header
    naming the job (another job's start line came in between), never bare under another's."""
    project.weavefile(
        """
        [rules.a]
        outputs = ["a"]
        cmd = "touch a.started; while [ ! -e b.started ]; do sleep 0.01; done; echo from-a; touch a"
        [rules.b]
        outputs = ["b"]
        cmd = "touch b.started; while [ ! -e a.started ]; do sleep 0.01; done; echo from-b; touch b"
        [rules.all]
        inputs = ["a", "b"]
        """
    )
    result = project.run("build", "-j", "2", "all")
    assert result.rc == 0, result
    lines = result.out.splitlines()
    headers = 0
    for job in ("a", "b"):
        above = lines[lines.index(f"from-{job}") - 1]
        assert above in (f"[1/2] {job} {job}", f"[2/2] {job} {job}", f"-- output of {job} {job}:"), lines
        headers += above.startswith("-- output of")
    assert headers >= 1, lines  # both ran at once: one output came after the other's start line


def test_output_without_a_final_newline_does_not_swallow_the_next_line(project):
    project.weavefile(
        """
        [rules.a]
        outputs = ["a"]
        cmd = "printf NO-NL; touch a"
        [rules.b]
        inputs = ["a"]
        outputs = ["b"]
        cmd = "printf partial; exit 3"
        """
    )
    result = project.run("build", "-j", "1", "b")
    assert result.rc == 1
    assert "NO-NL\n[2/2] b b\npartial\n" in result.out, result


def test_terminal_status_line_leaves_a_partial_line_alone(project):
    """A progress bar redrawn with \\r (tqdm) stays on screen: the status line is not drawn
    over it while the job runs, and resumes on the next line when it ends."""
    project.weavefile(
        """
        [rules.bar]
        outputs = ["bar"]
        cmd = "printf '\\\\r50%%|###'; sleep 0.6; touch bar"
        [rules.later]
        inputs = ["bar"]
        outputs = ["later"]
        cmd = "sleep 0.3; touch later"
        """
    )
    rc, text = run_in_terminal(project.root, "build", "later")
    assert rc == 0, text
    assert "-- output of bar bar:" in text and "50%|###" in text, text
    after = text[text.index("50%|###") + len("50%|###") :]
    assert after.startswith("\r\n"), text  # a new line, not "\r\x1b[K" erasing the bar
    assert "running: later" in after and "weave: 2 ran" in after


def test_a_reader_that_goes_away_does_not_stop_the_build(project):
    """`weave build | head -1`: once the pipe is closed, output is dropped and the build still
    runs every job and exits 0 (it stopped at the first line it could not print, exit 1)."""
    project.weavefile(
        """
        [rules.step]
        outputs = ["out/{i}.txt"]
        foreach = { i = ["1", "2", "3", "4", "5", "6"] }
        cmd = "echo talking about {wildcards.i}; echo {wildcards.i} > {outputs}"
        """
    )
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before weave writes its first line
    try:
        process = subprocess.run(
            [sys.executable, "-m", "weavebuild", "build", "-j", "2", "step"], cwd=project.root,
            stdout=write_end, stderr=subprocess.PIPE, timeout=120,
        )
    finally:
        os.close(write_end)
    assert process.returncode == 0, process.stderr
    assert b"Exception" not in process.stderr and b"Traceback" not in process.stderr
    assert sorted(os.listdir(project.root / "out")) == [f"{i}.txt" for i in range(1, 7)]


def _weave_in_bash(root, redirections: str, *args: str) -> subprocess.CompletedProcess:
    """weave run by bash with `redirections` applied (`>&-` closes standard output)."""
    import shlex

    command = " ".join(shlex.quote(word) for word in (sys.executable, "-m", "weavebuild", *args))
    return subprocess.run(["bash", "-c", f"{command} {redirections}"], cwd=root, capture_output=True, text=True, timeout=120)


def test_closed_or_full_standard_streams_do_not_stop_the_build(project):
    """`weave build >&-` (a cron job, a daemon's child) died with an internal error before
    running anything, and `> /dev/full` too: output that cannot be written is dropped."""
    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo talking; echo a > a.txt"\n')
    redirections = [">&-", ">&- 2>&- <&-"] + (["> /dev/full"] if os.path.exists("/dev/full") else [])
    for redirection in redirections:
        (project.root / "a.txt").unlink(missing_ok=True)
        run = _weave_in_bash(project.root, redirection, "build")
        assert run.returncode == 0 and project.read("a.txt") == "a\n", (redirection, run)
        assert "internal error" not in run.stderr and "Traceback" not in run.stderr, (redirection, run)
    if os.path.exists("/dev/full"):
        for args in (("plan",), ("--version",)):
            run = _weave_in_bash(project.root, "> /dev/full", *args)
            assert run.returncode == 1, (args, run)
            assert run.stderr == "weave: error: cannot write the output: No space left on device\n", (args, run)


def test_first_build_shows_no_eta_until_a_job_has_finished(project):
    """With no earlier run to go by, an ETA would be a guess (it used to assume 1 s a job):
    none until this run's first job ends, then one from this run's jobs."""
    project.weavefile(STEPS)
    rc, text = run_in_terminal(project.root, "build", "-j", "2", "step")
    assert rc == 0, text
    before = [line for line in text.split("\r\x1b[K") if line.startswith("[0/4]")]
    assert before and not any("ETA" in line for line in before), before


CONTROL_NAMES = """
[rules.copy]
inputs  = ["{n}.txt"]
outputs = ["out/{n}.txt"]
foreach = { n = "{n}.txt" }
cmd     = "grep -q ok {inputs} && cp {inputs} {outputs}"
"""


def test_control_characters_in_names_are_printed_escaped(project):
    """A file name's control characters are printed as visible escapes, on the progress lines,
    with -v in the commands, and in a failure report: raw, an ESC in a name set the terminal's colours
    (or moved its cursor) and \\x01 was invisible."""
    project.weavefile(CONTROL_NAMES)
    project.write("a\x01b.txt", "bad\n")
    project.write("c\x1b[31mred.txt", "ok\n")
    result = project.run("build", "-k", "-j", "2")
    assert result.rc == 1, result
    assert sorted(result.started) == ["copy out/a\\x01b.txt", "copy out/c\\x1b[31mred.txt"], result
    assert "weave: FAILED copy out/a\\x01b.txt: " in result.err, result
    assert "  failed: copy out/a\\x01b.txt" in result.err, result
    assert "\x01" not in result.out + result.err and "\x1b" not in result.out + result.err, result
    result = project.run("build", "-v", "-B", "out/c\x1b[31mred.txt")
    assert result.rc == 0 and "$ grep -q ok 'c\\x1b[31mred.txt' && " in result.out, result
    assert "\x1b" not in result.out + result.err, result


def test_a_newline_in_a_name_does_not_break_the_progress_line_or_an_error(project):
    """A file name may hold a newline: the progress line printed it raw (one job, two lines),
    and so did an error naming it."""
    name = "nl\nx.txt"
    project.write(f"src/{name}", "a\n")
    project.weavefile(
        """
        [rules.copy]
        inputs = ["src/{n}"]
        outputs = ["out/{n}"]
        cmd = "cp {inputs} {outputs}"
        """
    )
    result = project.run("build", f"out/{name}")
    assert result.rc == 0, result
    assert "[1/1] copy out/nl\\x0ax.txt\n" in result.out, result.out
    missing = project.run("build", f"out/{name}.missing")
    assert missing.rc == 2, missing
    assert missing.err.startswith("weave: error:") and "nl\\x0ax.txt.missing" in missing.err, missing.err
    assert all(line.startswith(("weave:", "  ")) for line in missing.err.splitlines()), missing.err

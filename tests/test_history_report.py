"""`weave history` and `weave report`: run records of real builds, and the HTML report checked
in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import Project, assert_user_error
from weavebuild.history import (
    Attempt,
    Failure,
    Run,
    find_run,
    format_bytes,
    format_duration,
    load_runs,
    rule_stats,
)
from weavebuild.report import render_report
from weavebuild.store import Store

# prep: two parallel jobs that hold 40 MiB for a while; flaky: fails once then succeeds on its retry; broken: always fails,
# after printing a line with HTML-special characters that the report must escape.
PIPELINE = """
[rules.prep]
outputs = ["data/{i}.txt"]
foreach = { i = ["1", "2"] }
cmd = "python -c 'import time; b = bytearray(40 << 20); time.sleep(0.8)'; echo {wildcards.i} > {outputs}"

[rules.flaky]
outputs = ["flaky.txt"]
retries = 1
cmd = '''
n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
if [ $n -le 1 ]; then echo "flaky attempt $n fails"; exit 1; fi
echo ok > flaky.txt
'''

[rules.broken]
inputs = ["data/1.txt"]
outputs = ["broken.txt"]
cmd = "echo 'loading model'; echo 'out of memory <oom> & gave up' >&2; exit 3"

[rules.all]
inputs = ["data/1.txt", "data/2.txt", "flaky.txt", "broken.txt"]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Three recorded runs: 1 = -k build with a retry and a failure, 2 = the failure again,
    3 = an up-to-date build of one target."""
    root = tmp_path_factory.mktemp("history") / "proj"
    root.mkdir()
    project = Project(root)
    project.weavefile(PIPELINE)
    first = project.run("build", "-k", "-j", "2", "all")
    assert first.rc == 1, first
    second = project.run("build", "all")
    assert second.rc == 1, second
    third = project.run("build", "data/1.txt")
    assert third.rc == 0, third
    return project


def report_data(page: str) -> Dict:
    """The JSON data island the timeline script draws from."""
    match = re.search(r'<script type="application/json" id="weave-data">(.*?)</script>', page, re.S)
    assert match, "no data island in the report"
    return json.loads(match.group(1))


# -- history -------------------------------------------------------------------------------------
def test_history_and_report_without_runs(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    result = project.run("history")
    assert result.rc == 0, result
    assert "no runs recorded yet" in result.out
    result = project.run("history", "--json")
    assert result.rc == 0 and json.loads(result.out) == {"runs": []}, result
    assert_user_error(project.run("report"), "no runs recorded yet", "weave build")
    assert not project.exists("report.html")


def test_history_lists_runs_newest_first(built):
    result = built.run("history")
    assert result.rc == 0, result
    lines = result.out.splitlines()
    assert lines[0].split()[:4] == ["ID", "STARTED", "DURATION", "OUTCOME"]
    rows = [line.split() for line in lines[1:]]
    assert [row[0] for row in rows] == ["3", "2", "1"]
    assert [row[4] for row in rows] == ["ok", "failed", "failed"]
    assert "weave build -k -j 2 all" in lines[3]
    # Run 1: 3 jobs ran (prep x2, flaky after its retry), broken failed, none up to date.
    assert rows[2][5:8] == ["3", "1", "0"]
    # Run 3: nothing ran, one job up to date.
    assert rows[0][5:8] == ["0", "0", "1"]
    assert lines[1].endswith("data/1.txt")


def test_history_json_and_limit(built):
    result = built.run("history", "--json")
    assert result.rc == 0, result
    runs = json.loads(result.out)["runs"]
    assert [run["id"] for run in runs] == [3, 2, 1]
    first = runs[2]
    assert first["outcome"] == "failed"
    assert first["targets"] == ["all"]
    assert first["argv"][1:] == ["build", "-k", "-j", "2", "all"]
    assert first["command"] == "weave build -k -j 2 all"
    assert (first["ran"], first["failed"], first["attempts"]) == (3, 1, 5)
    assert first["duration"] > 0.2 and first["ended"] >= first["started"]
    assert runs[0]["outcome"] == "ok" and runs[0]["up_to_date"] == 1
    limited = json.loads(built.run("history", "-n", "1", "--json").out)["runs"]
    assert [run["id"] for run in limited] == [3]


# -- report --------------------------------------------------------------------------------------
def test_report_of_a_failed_run(built):
    result = built.run("report", "1", "-o", "r1.html")
    assert result.rc == 0, result
    assert "wrote r1.html (run 1" in result.out
    page = built.read("r1.html")
    data = report_data(page)
    # One bar per attempt: prep x2, flaky x2 (failed, then ok), broken x1.
    bars = sorted((bar["job"], bar["attempt"], bar["status"]) for bar in data["bars"])
    assert bars == [
        ("broken", 1, "failed"),
        ("flaky", 1, "failed"),
        ("flaky", 2, "ok"),
        ("prep[i=1]", 1, "ok"),
        ("prep[i=2]", 1, "ok"),
    ]
    assert data["lanes"][:2] == ["prep[i=1]", "prep[i=2]"] or data["lanes"][:2] == [
        "prep[i=2]",
        "prep[i=1]",
    ]
    assert all(0 <= bar["start"] <= data["span"] for bar in data["bars"])
    failures = page[page.index('id="failures"') : page.index('id="rules"')]
    assert "Failures (2)" in failures
    assert "<dd>3</dd>" in failures  # broken's exit code
    assert ".weave/logs/broken.log" in failures
    # Run 2 rewrote broken's log: no tail that would show another run's output. Each attempt
    # of a retried job has a log of its own, so flaky's failed first attempt keeps its tail.
    assert "log was overwritten by run 2" in failures
    assert "flaky attempt 1 fails" in failures
    assert "(retried)" in failures
    # Self-contained: nothing to fetch.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "<link" not in page


def test_report_latest_run_shows_log_tail_and_rule_stats(built):
    result = built.run("report", "2", "-o", "r2.html")
    assert result.rc == 0, result
    page = built.read("r2.html")
    failures = page[page.index('id="failures"') : page.index('id="rules"')]
    tail = re.search(r'<pre class="log-tail">(.*?)</pre>', failures, re.S)
    assert tail, failures
    assert html.unescape(tail.group(1)).splitlines() == [
        "loading model",
        "out of memory <oom> & gave up",
    ]
    assert "&lt;oom&gt; &amp; gave up" in tail.group(1)  # escaped, not markup
    stats = page[page.index('id="rule-stats"') :]
    rows = dict(
        re.findall(r'<tr class="rule-row"><td data-sort="([^"]+)">.*?</td>(.*?)</tr>', stats, re.S)
    )
    assert set(rows) == {"prep", "flaky", "broken"}

    def cells(rule: str) -> List[str]:
        return re.findall(r'data-sort="([^"]*)"', rows[rule])

    # runs, jobs, success rate, attempts, retried: across all three recorded runs.
    assert cells("broken")[:5] == ["2", "2", "0.0", "2", "0"]
    assert cells("flaky")[:5] == ["1", "1", "1.0", "2", "1"]
    assert cells("prep")[:5] == ["1", "2", "1.0", "2", "0"]
    assert float(cells("prep")[5]) >= 0.2  # mean duration of the sleeping jobs
    assert float(cells("prep")[7]) > 40 << 20  # peak memory of the tree, sampled with psutil
    assert "across 3 recorded runs" in page


def test_report_defaults_to_latest_run_and_rejects_unknown_runs(built):
    # Started elsewhere with -C (which changes into the directory, as make's does), the
    # default page lands in the project directory.
    # The latest run (3) ran no job: the default is the last that did (2), and says so.
    result = Project(built.root / "data").run("-C", "..", "report")
    assert result.rc == 0, result
    assert "wrote report.html (run 2, failed" in result.out, result
    assert "run 3, the latest, ran no job: reporting run 2, the last that did" in result.err, result
    latest = built.run("report", "latest")
    assert latest.rc == 0 and "wrote report.html (run 3, ok, 0 attempts)" in latest.out, latest
    page = built.read("report.html")
    assert "No job ran in this run" in page and "No attempt failed" in page
    assert_user_error(built.run("report", "42"), "no run 42", "weave history")
    assert_user_error(built.run("report", "last-week"), "RUN must be a run id")
    assert_user_error(built.run("report", "1", "-o", "missing/dir/r.html"), "cannot write report")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "no chromium to render the report: "
        "install it with `apt-get install -y chromium` (.ci/run does)"
    )


def _run_chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1200,900",
        *args,
    ]
    # chromium logs harmless D-Bus complaints to stderr; only the exit status and output count.
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def test_report_renders_in_headless_chromium(built, tmp_path):
    browser = _chromium()
    assert built.run("report", "1", "-o", "r1.html").rc == 0
    url = (built.root / "r1.html").as_uri()
    dom = _run_chromium(browser, tmp_path / "profile", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The bars exist only if the script ran: they are drawn by JavaScript from the data island.
    bars = re.findall(r'<rect [^>]*class="bar status-(\w+)"', dom.stdout)
    assert sorted(bars) == ["failed", "failed", "ok", "ok", "ok"], dom.stdout[:3000]
    assert dom.stdout.count('class="lane-label"') == 4
    assert 'class="tick"' in dom.stdout
    assert 'data-job="flaky" data-attempt="2"' in dom.stdout
    screenshot = tmp_path / "report.png"
    shot = _run_chromium(browser, tmp_path / "profile", f"--screenshot={screenshot}", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    # Keep it where a person can look at it after a CI run.
    shutil.copy(screenshot, built.root / "report.png")


# -- pure parts ---------------------------------------------------------------------------------
def _attempt(
    run_id: int, job: str, rule: str, n: int, start: float, status: str, **more: object
) -> Attempt:
    values = dict(
        duration=1.0, exit_code=0 if status == "ok" else 1, peak_rss=1000, cpu_time=0.5, log=None
    )
    values.update(more)
    return Attempt(run_id, job, rule, n, start, status=status, **values)  # type: ignore[arg-type]


def test_rule_stats_count_jobs_not_attempts():
    runs = [
        Run(
            2,
            100.0,
            110.0,
            ["weave"],
            [],
            "ok",
            2,
            0,
            0,
            [
                _attempt(2, "a[1]", "a", 1, 100, "failed", duration=0.1, peak_rss=5000),
                _attempt(2, "a[1]", "a", 2, 101, "ok", duration=3.0),
                _attempt(2, "b", "b", 1, 101, "timeout", exit_code=-9),
                _attempt(2, "a[3]", "a", 1, 102, "cancelled", exit_code=-2),  # Ctrl-C: not a failure
            ],
        ),
        Run(
            1,
            50.0,
            60.0,
            ["weave"],
            [],
            "ok",
            1,
            0,
            0,
            [_attempt(1, "a[2]", "a", 1, 50, "ok", duration=1.0)],
        ),
    ]
    stats = {entry.rule: entry for entry in rule_stats(runs)}
    a, b = stats["a"], stats["b"]
    assert (a.runs, a.jobs, a.attempts, a.succeeded, a.retried) == (2, 2, 4, 2, 1)
    assert a.success_rate == 1.0
    assert a.mean_duration == pytest.approx(2.0)  # failed attempts are left out of the mean
    assert a.max_duration == 3.0 and a.peak_rss == 5000
    assert (b.jobs, b.success_rate, b.mean_duration) == (1, 0.0, None)


def test_report_escapes_job_names_and_logs():
    evil = "</script><script>alert(1)</script>"
    attempt = _attempt(7, evil, "r<b>", 1, 10.0, "failed", log=".weave/logs/x.log")
    run = Run(7, 10.0, 12.0, ["weave", "build", evil], [evil], "failed", 0, 1, 0, [attempt])
    failure = Failure(attempt, False, "/p/.weave/logs/x.log", "<img src=x onerror=alert(1)>")
    page = render_report(run, rule_stats([run]), [failure], 1, "/p", 0.0)
    assert evil not in page and "<img" not in page and "<b>" not in page
    assert page.count("<script") == 2  # the data island and the drawing script
    assert report_data(page)["bars"][0]["job"] == evil


def test_report_escapes_control_characters_of_names(project):
    """A job of a file name with a control character, and a log tail with colours: the page
    shows them as visible escapes; raw, \\x01 made the HTML invalid and an ESC in it acted
    on the terminal of whoever printed it."""
    project.weavefile(
        """
        [rules.copy]
        inputs  = ["{n}.txt"]
        outputs = ["out/{n}.txt"]
        foreach = { n = "{n}.txt" }
        cmd     = "printf '\\\\033[31mred\\\\033[0m\\\\n'; grep -q ok {inputs} && cp {inputs} {outputs}"
        """
    )
    project.write("a\x01b.txt", "bad\n")
    project.write("c\x1b[31mred.txt", "ok\n")
    assert project.run("build", "-k").rc == 1
    result = project.run("report", "-o", "r.html")
    assert result.rc == 0, result
    page = project.read("r.html")
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", page), page
    assert "<td>copy[n=a\\x01b]</td>" in page  # in the table of attempts
    assert "\\x1b[31mred\\x1b[0m" in page  # the log tail
    data = report_data(page)
    assert sorted(data["lanes"]) == ["copy[n=a\\x01b]", "copy[n=c\\x1b[31mred]"]
    assert sorted(bar["job"] for bar in data["bars"]) == sorted(data["lanes"])


def test_unfinished_run_has_no_counts(tmp_path):
    store = Store.open(str(tmp_path))
    try:
        killed = store.start_run(["weave", "build"], ["all"])
        store.add_attempts(
            [(killed, "a", "a", 1, 1.0, 0.5, 0, "ok", 100, 0.1, ".weave/logs/a.log")]
        )
        done = store.start_run(["weave"], [])
        store.end_run(done, "ok", 0, 0, 3)
        runs = load_runs(store, limit=None)
    finally:
        store.close()
    assert [(run.id, run.outcome, run.finished) for run in runs] == [
        (done, "ok", True),
        (killed, "unfinished", False),
    ]
    # The one attempt it recorded still counts; what was up to date is unknown.
    assert (runs[1].ran, runs[1].failed, runs[1].up_to_date, runs[1].duration) == (1, 0, None, None)
    assert find_run(runs, None) is runs[0] and find_run(runs, killed) is runs[1]
    assert find_run(runs, 999) is None


def test_formatting():
    assert format_duration(None) == "-" and format_duration(0.5) == "0.50s"
    assert format_duration(75) == "1m15s" and format_duration(7260) == "2h01m"
    assert format_bytes(512) == "512 B" and format_bytes(3 * 1024 * 1024) == "3.0 MiB"
    assert format_bytes(0) == "-" and format_bytes(None) == "-"  # too short to measure: unknown


def test_history_and_report_work_while_the_weavefile_is_invalid(project):
    """They read only the run history: a broken Weavefile (the moment one looks back at what
    ran) does not stop them."""
    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "touch a.txt"\n')
    assert project.run("build").rc == 0
    project.write("Weavefile", "x = 1\n")
    result = project.run("history")
    assert result.rc == 0 and "weave build" in result.out, result
    result = project.run("report", "-o", "page.html")
    assert result.rc == 0, result
    assert "<html" in project.read("page.html").lower()
    assert_user_error(project.run("build"), "unknown top-level key")


def test_history_targets_are_as_asked(project):
    """A build without targets is listed as "(default)" whether it ran jobs or found nothing
    to do (the first was listed by the default's resolved names, the second not)."""
    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > a.txt"\n')
    assert project.run("build").rc == 0
    assert project.run("build").rc == 0
    assert project.run("build", "a.txt").rc == 0
    runs = json.loads(project.run("history", "--json").out)["runs"]
    assert [run["targets"] for run in runs] == [["a.txt"], [], []]
    table = project.run("history").out.splitlines()
    assert table[2].rstrip().endswith("(default)") and table[3].rstrip().endswith("(default)"), table


def test_history_counts_a_failed_build_s_first_phase_as_run(project):
    """A build that fails after making a scanned directory first: history counts that job as
    run, as the console summary does."""
    import json

    project.weavefile(
        """
        [rules.all]
        inputs = ["sum.txt"]
        [rules.mk]
        outputs = ["d/"]
        cmd = "mkdir d && echo 1 > d/x"
        [rules.bad]
        outputs = ["bad.txt"]
        cmd = "exit 3"
        [rules.each]
        inputs = ["d/{f}", "bad.txt"]
        outputs = ["e/{f}"]
        cmd = "cp {inputs[0]} {outputs}"
        [rules.sum]
        inputs = ["e/{f}"]
        foreach = {f = "d/{f}"}
        outputs = ["sum.txt"]
        cmd = "cat {inputs} > sum.txt"
        """
    )
    result = project.run("build")
    assert result.rc == 1 and "1 failed, 1 ran, 0 up to date" in result.err, result
    history = project.run("history", "-n1", "--json")
    run = json.loads(history.out)["runs"][0]
    assert (run["ran"], run["failed"], run["up_to_date"]) == (1, 1, 0), run


def test_usage_errors_leave_no_run_in_the_history(project):
    """An unknown target, an unknown -R rule and an -R rule the targets do not need are
    refused alike: exit 2, no run recorded (the last left a 'failed' run)."""
    project.weavefile(
        '[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > {outputs}"\n'
        '[rules.other]\noutputs = ["o.txt"]\ncmd = "echo o > {outputs}"\n'
    )
    assert project.run("build").rc == 0
    assert_user_error(project.run("build", "nosuchtarget"), "no rule makes 'nosuchtarget'")
    assert_user_error(project.run("build", "-R", "nosuchrule"), "-R nosuchrule: no rule 'nosuchrule'")
    assert_user_error(project.run("build", "-R", "other"), "-R other: none of the jobs the targets need is of rule 'other'")
    history = project.run("history").out
    assert "nosuch" not in history and len([line for line in history.splitlines() if "weave" in line]) == 1


def test_a_silent_job_whose_outputs_are_wrong_keeps_an_empty_log(project):
    """Exited 0 without printing, but did not make its output: a failure, whose attempt keeps
    a log (empty) as history.md promises for every failed attempt; the report names it. It
    kept none ('no log was recorded')."""
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "true"\n')
    result = project.run("build")
    assert result.rc == 1 and "exited 0 but did not create a" in result.err and "log: .weave/logs/a.log" in result.err, result
    assert project.read(".weave/logs/a.log") == ""
    assert project.run("report", "-o", "r.html").rc == 0
    assert "no log was recorded" not in project.read("r.html")


def test_a_runs_time_in_the_history_counts_its_checks(project, monkeypatch):
    """A no-op answered by the stamp (and a build) is timed from when it began: a slow stamp
    check shows in the history (it read 0.00s for a 1.8 s no-op at 100k jobs)."""
    import weavebuild.stamp as stamp_module
    from weavebuild import Project as WeaveProject

    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > {outputs}"\n')
    assert project.run("build").rc == 0
    assert project.run("build").rc == 0  # stamped
    check = stamp_module.check

    def slow_check(*args, **kwargs):
        time.sleep(0.3)
        return check(*args, **kwargs)

    monkeypatch.setattr(stamp_module, "check", slow_check)
    WeaveProject.load(str(project.root)).build()
    store = Store.open(str(project.root), readonly=True)
    try:
        runs = load_runs(store, limit=1)
    finally:
        store.close()
    assert runs[0].outcome == "ok" and runs[0].ended - runs[0].started >= 0.3, runs[0]


def test_history_and_report_work_while_an_included_file_is_broken(project):
    """An error in an included file (rules/a.toml) made history and report look for the
    project in rules/: 'no runs recorded yet'."""
    project.write("Weavefile", 'include = ["rules/a.toml"]\n[rules.b]\noutputs = ["b"]\ncmd = "touch b"\n')
    project.write("rules/a.toml", '[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    assert project.run("build").rc == 0
    project.write("rules/a.toml", '[rules.a]\noutputs = ["a"]\ncmdd = "touch a"\n')
    history = project.run("history")
    assert history.rc == 0 and "weave build" in history.out, history
    report = project.run("report", "-o", "r.html")
    assert report.rc == 0 and project.exists("r.html"), report

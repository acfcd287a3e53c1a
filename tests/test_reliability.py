"""Faults, injected for real: signals, kill -9, flaky and hanging commands, locks, bad stores."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import psutil
import pytest

from conftest import assert_user_error, wait_past_racy_window


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# Weaves a test started: one still running when it ends (a failed assertion before its own
# cleanup) is stopped, with its jobs, instead of holding a lock and a core for the rest of
# the session.
_started: List[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_weave_left_running():
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.terminate()  # weave stops its jobs on SIGTERM
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_weave(root: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "weavebuild", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    _started.append(process)
    return process


def descendants(process: subprocess.Popen) -> List[psutil.Process]:
    try:
        return psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_all_gone(processes: List[psutil.Process], timeout: float = 10.0) -> None:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    assert not alive, f"processes outlived weave: {alive}"


SLOW = """
[rules.quick]
outputs = ["quick.txt"]
cmd = "echo quick > quick.txt"
[rules.slow]
outputs = ["slow/{i}.txt"]
foreach = { i = ["1", "2"] }
cmd = "echo partial > {outputs}; sleep 60 & sleep 60; echo done >> {outputs}"
[rules.all]
inputs = ["quick.txt", "slow/1.txt", "slow/2.txt"]
"""


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_jobs_removes_partial_outputs_records_finished(project, signum, code):
    project.weavefile(SLOW)
    process = start_weave(project.root, "build", "-j", "3", "all")
    wait_for(lambda: project.exists("slow/1.txt") and project.exists("slow/2.txt") and project.exists("quick.txt"), what="jobs to start")
    wait_for(lambda: len(descendants(process)) >= 4, what="job processes")
    children = descendants(process)
    started = time.monotonic()
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == code, (out, err)
    assert time.monotonic() - started < 10
    assert_all_gone(children)
    assert not project.exists("slow/1.txt") and not project.exists("slow/2.txt")
    assert project.read("quick.txt") == "quick\n"
    plan = project.run("plan", "all")
    assert "quick" not in plan.out.split("up to date")[0], plan.out  # quick was recorded
    assert "up to date (1)" in plan.out
    project.weavefile(SLOW.replace("sleep 60 & sleep 60", "true"))  # make the rerun quick
    rerun = project.run("build", "-j", "3", "all")
    assert rerun.rc == 0, rerun
    assert "quick" not in rerun.out  # recorded before the interrupt: not rerun
    assert project.read("slow/1.txt") == "partial\ndone\n" == project.read("slow/2.txt")


def test_ctrl_c_while_python_imports_weave_ends_quietly(tmp_path):
    """A Ctrl-C in the first milliseconds lands while the CLI is being imported; it must end
    like any interrupt (one line, 130), not with a traceback from inside an import."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "click.py").write_text("raise KeyboardInterrupt\n")  # the interrupt, mid-import
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "weavebuild", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 130, result
    assert result.stderr.strip() == "weave: interrupted"


def test_ctrl_c_while_the_weave_script_imports_weave_ends_quietly(tmp_path):
    """A Ctrl-C landing before entry.main runs, while bin/weave (the installed command)
    imports weave, and where Python would drop the KeyboardInterrupt (raised in a __del__,
    as in one of importlib's callbacks: "Exception ignored", and the build ran and exited 0):
    held until the imports are done, it ends weave with one line and 130."""
    real = Path(__file__).resolve().parent.parent / "src" / "weavebuild"
    shadow = tmp_path / "shadow" / "weavebuild"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "import os, signal\n"
        "class _Dropped:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        sum(range(1000))  # Python runs the handler here, inside __del__\n"
        "_Dropped()\n"
        f"__path__.append({str(real)!r})  # the rest of the package is the real one\n"
    )
    (tmp_path / "Weavefile").write_text('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > a.txt"\n')
    script = Path(__file__).resolve().parent.parent / "bin" / "weave"
    env = dict(os.environ, PYTHONPATH=str(shadow.parent))
    result = subprocess.run([sys.executable, str(script), "build"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 130, result
    assert result.stderr.strip() == "weave: interrupted", result
    assert not (tmp_path / "a.txt").exists()


def test_job_ignoring_sigterm_is_killed_after_grace(project):
    project.weavefile(
        """
        [rules.stubborn]
        outputs = ["s.txt"]
        cmd = "trap '' TERM; echo partial > s.txt; sleep 60"
        """
    )
    process = start_weave(project.root, "build")
    wait_for(lambda: project.exists("s.txt"), what="job start")
    wait_for(lambda: len(descendants(process)) >= 1, what="job processes")
    children = descendants(process)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 130
    assert_all_gone(children)
    assert not project.exists("s.txt")


@pytest.mark.parametrize("signum,code,seen", [(signal.SIGINT, 130, "INT"), (signal.SIGTERM, 143, "TERM")])
def test_ctrl_c_reaches_the_jobs_as_ctrl_c_and_sigterm_follows(project, signum, code, seen):
    """Ctrl-C reaches a job as SIGINT, as under make (whose jobs the terminal signals): a
    training script can save its state on KeyboardInterrupt; a SIGTERM to weave is passed on
    as SIGTERM. A job that ignores SIGINT (as a shell's background processes do) gets
    SIGTERM a second later, before the grace period ends."""
    project.weavefile(
        """
        [rules.polite]
        outputs = ["p.txt"]
        cmd = "trap 'echo INT > got.txt; exit 1' INT; trap 'echo TERM > got.txt; exit 1' TERM; touch p.txt; sleep 60"
        [rules.stubborn]
        outputs = ["s.txt"]
        cmd = "trap '' INT; touch s.txt; sleep 60"
        """
    )
    process = start_weave(project.root, "build", "-j", "2", "p.txt", "s.txt")
    wait_for(lambda: project.exists("p.txt") and project.exists("s.txt"), what="jobs to start")
    # (bash runs the stubborn job's last command by exec: two shells and two sleeps, or three)
    wait_for(lambda: len(descendants(process)) >= 3, what="job processes")
    children = descendants(process)
    started = time.monotonic()
    process.send_signal(signum)
    process.communicate(timeout=30)
    assert process.returncode == code
    assert time.monotonic() - started < 2.5  # the stubborn job went at SIGTERM, not at SIGKILL
    assert_all_gone(children)
    assert project.read("got.txt") == seen + "\n"


def test_second_sigint_kills_at_once(project):
    project.weavefile('[rules.s]\noutputs = ["s.txt"]\ncmd = "trap \'\' TERM; touch s.txt; sleep 60"\n')
    process = start_weave(project.root, "build")
    wait_for(lambda: project.exists("s.txt"), what="job start")
    wait_for(lambda: len(descendants(process)) >= 1, what="job processes")
    children = descendants(process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 130
    assert time.monotonic() - started < 2.5
    assert_all_gone(children)


def test_failure_leaves_no_background_processes(project):
    project.weavefile('[rules.f]\noutputs = ["f.txt"]\ncmd = "sleep 60 & echo $! > pid.txt; exit 1"\n')
    result = project.run("build")
    assert result.rc == 1
    pid = int(project.read("pid.txt"))
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 10, "orphan to die")


def test_flaky_command_and_retries(project):
    weavefile = """
        [rules.flaky]
        outputs = ["f.txt"]
        retries = RETRIES
        cmd = '''
        n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
        if [ $n -le 2 ]; then echo "attempt $n fails" >&2; exit 1; fi
        echo ok > f.txt
        '''
    """
    project.weavefile(weavefile.replace("RETRIES", "1"))
    result = project.run("build")
    assert result.rc == 1, result
    assert "attempt 1/2 failed" in result.err
    assert not project.exists("f.txt")
    (project.root / "count").unlink()
    project.weavefile(weavefile.replace("RETRIES", "2"))
    result = project.run("build")
    assert result.rc == 0, result
    assert project.read("f.txt") == "ok\n" and project.read("count") == "3\n"
    assert "attempt 2/3 failed" in result.err
    # Each attempt is announced, so its output does not read as another job's.
    assert "[attempt 2/3] flaky f.txt\n" in result.out and "[attempt 3/3] flaky f.txt\n" in result.out, result
    assert "-- output of" not in result.out, result


def test_cli_retries_default(project):
    project.weavefile(
        """
        [rules.flaky]
        outputs = ["f.txt"]
        cmd = "n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ $n -ge 1 ]; echo ok > f.txt"
        """
    )
    assert project.run("build", "--retries", "1").rc == 0


def test_timeout_kills_process_tree(project):
    project.weavefile(
        """
        [rules.hang]
        outputs = ["h.txt"]
        timeout = "1s"
        cmd = "echo partial > h.txt; sleep 60 & echo $! > pid.txt; sleep 60"
        """
    )
    started = time.monotonic()
    result = project.run("build")
    assert result.rc == 1, result
    assert "timed out after 1s" in result.err
    assert time.monotonic() - started < 30
    assert not project.exists("h.txt")
    pid = int(project.read("pid.txt"))
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 10, "tree to die")


# One job that runs until `release` exists: its build holds the lock meanwhile.
HOLDS_THE_LOCK = """
[rules.slow]
outputs = ["slow.txt"]
cmd = "touch started; while [ ! -f release ]; do sleep 0.05; done; echo done > slow.txt"
"""


def test_second_weave_is_refused_then_waits(project):
    project.weavefile(HOLDS_THE_LOCK)
    first = start_weave(project.root, "build")
    wait_for(lambda: project.exists("started"), what="first build to start")
    second = project.run("build")
    assert_user_error(second, f"another weave (pid {first.pid}) is building in", "pass --wait to queue behind it")
    assert project.run("plan").rc == 0  # read-only commands need no lock
    for command in ("clean", "touch"):  # no --wait there: the hint must not offer one
        refused = project.run(command)
        assert_user_error(refused, "another weave", "wait for it to finish, then run this command again")
        assert "--wait" not in refused.err, refused
    dry = project.run("clean", "-n")
    assert dry.rc == 0 and "would remove 0 output(s)" in dry.out + dry.err, dry  # nor does clean -n
    waiter = start_weave(project.root, "build", "--wait")
    time.sleep(0.3)
    assert waiter.poll() is None
    (project.root / "release").touch()
    assert first.wait(timeout=60) == 0
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert "nothing to do" in out


def test_removing_weaves_state_while_it_builds_does_not_let_a_second_build_in(project):
    """`rm -rf .weave` while a build runs takes its lock file away: a second weave made a new
    one and built the same outputs alongside. The project directory is locked too: the second
    is refused (or, with --wait, waits), and the first finishes."""
    project.weavefile(HOLDS_THE_LOCK)
    first = start_weave(project.root, "build")
    wait_for(lambda: project.exists("started"), what="first build to start")
    shutil.rmtree(project.root / ".weave")
    os.unlink(project.root / "started")
    second = project.run("build")
    assert_user_error(second, "another weave is building in", "its .weave/ was removed while it ran")
    waiter = start_weave(project.root, "build", "--wait")
    time.sleep(0.5)
    assert waiter.poll() is None and not project.exists("started")
    (project.root / "release").touch()
    assert first.wait(timeout=60) == 0
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert project.read("slow.txt") == "done\n"


@pytest.mark.parametrize("wait", [False, True])
def test_a_job_running_weave_on_its_own_project_is_refused_not_left_waiting(project, wait):
    """`cmd = "weave build x.txt"` (make's `$(MAKE) target`): the running weave holds the lock
    and waits for the job, so --wait would wait forever, and without it the hint said to pass
    --wait. The inner weave says what is wrong; the job fails with its message."""
    inner = f"{shlex.quote(sys.executable)} -m weavebuild build {'--wait ' if wait else ''}x.txt"
    # as part of the job's script, and as its whole command with an emptied environment (bash
    # execs it: the job's own process is the inner weave)
    for cmd in (f"{inner} && touch outer.txt", f"env -i PATH=/usr/bin:/bin {inner}"):
        project.weavefile(
            f"""
[rules.outer]
outputs = ["outer.txt"]
cmd = "{cmd}"

[rules.inner]
outputs = ["x.txt"]
cmd = "echo x > x.txt"
"""
        )
        result = project.run("build", "outer.txt", timeout=60)
        assert result.rc == 1, result
        assert "runs inside a job of the weave (pid" in result.err, result.err
        assert "a job cannot build its own project" in result.err, result.err
        assert "pass --wait" not in result.err, result.err
    # a separate project is fine from a job
    sub = project.root / "sub"
    sub.mkdir()
    (sub / "Weavefile").write_text('[rules.s]\noutputs = ["s.txt"]\ncmd = "echo s > s.txt"\n')
    project.weavefile(
        f"""
[rules.outer]
outputs = ["outer.txt"]
cmd = "{shlex.quote(sys.executable)} -m weavebuild -C sub build && cp sub/s.txt outer.txt"
"""
    )
    assert project.run("build", timeout=60).rc == 0
    assert project.read("outer.txt") == "s\n"


def test_weave_called_back_through_another_project_is_refused_too(project):
    """p's job builds sub, whose job builds p again with --wait: the inner weave's parent is
    sub's job, yet p's weave, which holds p's lock, waits for its own job that leads to it."""
    weave = f"{shlex.quote(sys.executable)} -m weavebuild"
    project.weavefile(
        f"""
[rules.viasub]
outputs = ["viasub.txt"]
cmd = "{weave} -C sub build back && touch {{outputs}}"
[rules.x]
outputs = ["x.txt"]
cmd = "echo x > {{outputs}}"
"""
    )
    (project.root / "sub").mkdir()
    (project.root / "sub" / "Weavefile").write_text(
        f'[rules.back]\noutputs = ["back.txt"]\ncmd = "{weave} -C .. --wait build x.txt && touch {{outputs}}"\n'
    )
    result = project.run("build", "viasub.txt", timeout=90)
    assert result.rc == 1, result
    assert "a job cannot build its own project" in result.err, result.err


def test_a_program_holding_the_lock_that_starts_weave_is_waited_for(project, tmp_path):
    """A program building through the API (its run id in its own environment) that starts
    weave itself, not as a job: that weave waits for the lock, as before."""
    project.weavefile(
        HOLDS_THE_LOCK + '\n[rules.x]\noutputs = ["x.txt"]\ncmd = "echo x > x.txt"\n'
    )
    program = tmp_path / "prog.py"
    program.write_text(
        "import os, subprocess, sys, threading, time\n"
        "from weavebuild.api import Project\n"
        "project = Project.load('.')\n"
        "thread = threading.Thread(target=lambda: project.build(['slow.txt']))\n"
        "thread.start()\n"
        "while not os.path.exists('started'):\n"
        "    time.sleep(0.02)\n"
        "threading.Timer(1.0, lambda: open('release', 'w').close()).start()\n"
        "code = subprocess.run([sys.executable, '-m', 'weavebuild', '--wait', 'build', 'x.txt'], start_new_session=True).returncode\n"
        "thread.join()\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, str(program)], cwd=project.root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result
    assert project.read("x.txt") == "x\n" and project.read("slow.txt") == "done\n"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_signal_while_waiting_for_the_lock_exits_with_its_code(project, signum):
    project.weavefile(HOLDS_THE_LOCK)
    first = start_weave(project.root, "build")
    wait_for(lambda: project.exists("started"), what="first build to start")
    waiter = start_weave(project.root, "build", "--wait")
    assert waiter.stdout.readline().startswith(f"weave: waiting for another weave (pid {first.pid}) building in")
    waiter.send_signal(signum)
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 128 + signum, (waiter.returncode, err)
    assert f"interrupted by {signal.Signals(signum).name}" in err and "Traceback" not in err
    (project.root / "release").touch()
    assert first.wait(timeout=60) == 0


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT])
def test_sighup_and_sigquit_stop_a_build_like_ctrl_c(project, signum):
    """A dropped ssh session (SIGHUP) or Ctrl-\\ (SIGQUIT) stops the build and its jobs (exit
    129, 131); before, weave died at once and left its jobs running."""
    project.weavefile(
        """
        [rules.slow]
        outputs = ["slow.txt"]
        cmd = "echo $$ > job.pid; touch started; sleep 300; echo done > slow.txt"
        """
    )
    process = start_weave(project.root, "build")
    wait_for(lambda: project.exists("started"), what="job start")
    job = int(project.read("job.pid"))
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    wait_for(lambda: not psutil.pid_exists(job) or psutil.Process(job).status() == psutil.STATUS_ZOMBIE, 30, "job to end")
    assert not project.exists("slow.txt")


def test_lock_of_killed_weave_does_not_block(project):
    project.weavefile('[rules.s]\noutputs = ["s.txt"]\ncmd = "touch started; sleep 60; touch s.txt"\n')
    process = start_weave(project.root, "build")
    wait_for(lambda: project.exists("started"), what="build to start")
    for child in descendants(process):
        child.kill()
    process.kill()
    process.wait()
    project.weavefile('[rules.s]\noutputs = ["s.txt"]\ncmd = "touch s.txt"\n')
    result = project.run("build")
    assert result.rc == 0, result


@pytest.mark.parametrize("damage", ["garbage", "truncate", "foreign"])
def test_corrupt_store_is_moved_aside(project, damage):
    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a >> runs.log; echo a > a.txt"\n')
    assert project.run("build").rc == 0
    db = project.root / ".weave" / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    if damage == "garbage":
        db.write_bytes(b"this is not a database" * 100)
    elif damage == "truncate":
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    else:
        import sqlite3

        db.unlink()
        connection = sqlite3.connect(db)
        connection.execute("CREATE TABLE something (x)")
        connection.commit()
        connection.close()
    result = project.run("build")
    assert result.rc == 0, result
    assert "Traceback" not in result.err
    assert "moved it to state.db.corrupt-" in result.err
    assert project.runs_log() == ["a", "a"]  # rebuilt as if never built: never a wrong "up to date"
    assert any(p.name.startswith("state.db.corrupt-") for p in db.parent.iterdir())
    assert "nothing to do" in project.run("build").out


@pytest.mark.parametrize("table", ["runs", "records", "attempts"])
def test_store_damaged_past_the_open_check_is_moved_aside_after_the_build(project, table):
    """A page the open-time check does not read (the root of one table) zeroed: the build that
    meets the damage warns and moves the store aside at its end; the next reruns every job
    once, and the one after has nothing to do (before: every build reran everything, silently
    and for ever)."""
    import sqlite3

    rule = '[rules.gen]\noutputs = ["out/{i}.txt"]\nforeach = { i = [1, 2, 3] }\ncmd = "echo %s {wildcards.i} > {outputs}"\n'
    project.weavefile(rule % "v1")
    assert project.run("build").rc == 0
    db = project.root / ".weave" / "state.db"
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    connection.close()
    with open(db, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(bytes(page_size))
    project.weavefile(rule % "v2")
    first = project.run("build")
    assert first.rc == 0 and "Traceback" not in first.err, first
    assert "moved the damaged state store to state.db.corrupt-" in first.err, first
    assert any(p.name.startswith("state.db.corrupt-") for p in db.parent.iterdir())
    second = project.run("build")
    assert second.rc == 0 and len(second.started) == 3, second
    assert "nothing to do" in project.run("build").out


def _build_a_chain_then_damage_its_store(project, damage: str) -> None:
    """Build b.txt (from a.txt, from src.txt), then run the SQL `damage` on the store."""
    import sqlite3

    project.weavefile(
        '[rules.a]\ninputs = ["src.txt"]\noutputs = ["a.txt"]\ncmd = "cp src.txt a.txt"\n'
        '[rules.b]\ninputs = ["a.txt"]\noutputs = ["b.txt"]\ncmd = "cp a.txt b.txt"\n'
    )
    project.write("src.txt", "1\n")
    assert project.run("build", "b.txt").rc == 0
    connection = sqlite3.connect(project.root / ".weave" / "state.db")
    connection.execute(damage)
    connection.commit()
    connection.close()


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE records SET inputs = CAST(X'5b5bff' AS TEXT) WHERE job_key = 'a'",  # not UTF-8
        "UPDATE records SET inputs = 'garbage' WHERE job_key = 'a'",  # not JSON
        "ALTER TABLE records ADD COLUMN extra",  # another table layout
    ],
    ids=["not-utf8", "not-json", "extra-column"],
)
def test_a_store_row_weave_never_writes_is_damage(project, damage):
    """A row that does not decode, or a table of another layout, is damage like a corrupt
    page: the build that meets it warns and moves the store aside, the next reruns each job
    once, and the one after has nothing to do. (Before, each build warned 'continuing without
    it' and reran everything, for ever. Found by an outside tester flipping bytes of state.db:
    5 of 30 trials.)"""
    _build_a_chain_then_damage_its_store(project, damage)
    project.write("src.txt", "2\n")
    first = project.run("build", "b.txt")
    assert first.rc == 0 and "Traceback" not in first.err, first
    assert "moved the damaged state store to state.db.corrupt-" in first.err, first
    assert project.read("b.txt") == "2\n"
    second = project.run("build", "b.txt")
    assert second.rc == 0 and len(second.started) == 2 and "warning" not in second.err, second
    assert "nothing to do" in project.run("build", "b.txt").out


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE records SET outputs = X'00ff'",
        "UPDATE files SET hashed_at_ns = NULL",
        "UPDATE files SET digest = X'ff'",
        "UPDATE jobs SET duration = 'x'",
        "UPDATE jobs SET signature = X'aa'",
    ],
    ids=["outputs-blob", "null-time", "digest-blob", "duration-text", "signature-blob"],
)
def test_a_store_value_of_another_type_is_taken_as_none(project, damage):
    """A value of a type weave never writes (a blob, a NULL) is taken as absent, and the file
    read or the job run again: every command crashed with an internal error on it, for ever
    (an outside tester)."""
    _build_a_chain_then_damage_its_store(project, damage)
    shutil.rmtree(project.root / ".weave" / "stamps")  # (the stamp would answer without the store)
    for command in (("plan", "b.txt"), ("why", "b.txt"), ("status",)):
        result = project.run(*command)
        # (status exits 1 when something is stale: the damaged job may be)
        assert result.rc in (0, 1) and "internal error" not in result.err and "Traceback" not in result.err, (command, result)
    project.write("src.txt", "2\n")
    result = project.run("build", "b.txt")
    assert result.rc == 0 and "internal error" not in result.err and project.read("b.txt") == "2\n", result
    # (a record that does not decode is damage: the store was moved aside, and the next build
    # runs each job once)
    again = project.run("build", "b.txt")
    assert again.rc == 0 and ("nothing to do" in again.out or "moved the damaged state store" in result.err), again
    assert "nothing to do" in project.run("build", "b.txt").out


CRASH_DAG = """
[rules.stage1]
inputs = ["src/{i}.txt"]
outputs = ["s1/{i}.txt"]
cmd = "for k in 1 2 3; do cat {inputs} >> {outputs}; sleep 0.02; done"
[rules.stage2]
inputs = ["s1/{i}.txt"]
outputs = ["s2/{i}.txt", "s2/{i}.len"]
cmd = "tr a-z A-Z < {inputs} > {outputs[0]}; sleep 0.03; wc -c < {inputs} > {outputs[1]}"
[rules.merge]
inputs = ["s2/{i}.txt"]
outputs = ["merged.txt"]
foreach = { i = "src/{i}.txt" }
cmd = "for f in {inputs}; do cat $f >> {outputs}; sleep 0.01; done"
"""


def make_crash_project(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Weavefile").write_text(CRASH_DAG)
    (root / "src").mkdir(exist_ok=True)
    for i in range(8):
        (root / "src" / f"{i}.txt").write_text(f"sample {i}\n")


def snapshot(root: Path) -> dict:
    result = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in (".weave",) or path.is_dir():
            continue
        result[str(relative)] = path.read_bytes()
    return result


def kill_tree_now(process: subprocess.Popen) -> None:
    """SIGKILL weave and every descendant at once, as a power loss or OOM kill would."""
    try:
        tree = [psutil.Process(process.pid)] + descendants(process)
    except psutil.NoSuchProcess:
        tree = []
    for proc in tree:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()


@pytest.mark.slow
def test_kill_9_at_random_moments_converges(tmp_path):
    reference = tmp_path / "reference"
    make_crash_project(reference)
    assert subprocess.run([sys.executable, "-m", "weavebuild", "build", "merged.txt"], cwd=reference, capture_output=True).returncode == 0
    expected = snapshot(reference)
    rng = random.Random(20261125)
    for round_number in range(6):
        root = tmp_path / f"crash{round_number}"
        make_crash_project(root)
        for _ in range(3):  # several kills per round, at random moments
            process = start_weave(root, "build", "-j", "2", "merged.txt")
            time.sleep(rng.uniform(0.05, 0.6))
            kill_tree_now(process)
        final = subprocess.run(
            [sys.executable, "-m", "weavebuild", "build", "-j", "2", "merged.txt"], cwd=root, capture_output=True, text=True
        )
        assert final.returncode == 0, final.stderr
        assert snapshot(root) == expected, f"round {round_number} diverged"
        again = subprocess.run(
            [sys.executable, "-m", "weavebuild", "build", "merged.txt"], cwd=root, capture_output=True, text=True
        )
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout


def test_kill_9_of_weave_alone_kills_its_orphans_on_next_build(project):
    """An OOM kill of weave alone leaves its jobs running; the next build must not race them."""
    project.weavefile(
        """
        [rules.slow]
        outputs = ["b.txt"]
        cmd = "echo partial > {outputs}; touch started; sleep 3; echo done >> {outputs}"
        """
    )
    process = start_weave(project.root, "build")
    wait_for(lambda: project.exists("started"), what="job start")
    orphans = descendants(process)
    assert orphans
    process.kill()  # weave only, as the OOM killer would
    process.wait()
    result = project.run("build")
    assert result.rc == 0, result
    assert "killed 1 job(s) left running by a weave that was killed" in result.err
    assert_all_gone(orphans)
    assert project.read("b.txt") == "partial\ndone\n"
    assert "nothing to do" in project.run("build").out


def test_kill_9_of_weave_not_yet_reaped_kills_its_orphans_on_next_build(project):
    """`timeout -s KILL 2 weave build`: the killed weave stays a zombie until its parent
    waits for it (here: timeout itself was killed, and init took seconds). Its lock is free,
    but its registry's owner looked alive (the zombie keeps its pid and start time), so its
    jobs were left running and overwrote the next build's output after it was recorded."""
    project.weavefile(
        """
        [rules.slow]
        outputs = ["b.txt"]
        cmd = "touch started; while [ ! -e go ]; do sleep 0.05; done; echo $WEAVE_RUN_ID > {outputs}"
        """
    )
    process = start_weave(project.root, "build")
    try:
        wait_for(lambda: project.exists("started"), what="job start")
        orphans = descendants(process)
        assert orphans
        os.kill(process.pid, signal.SIGKILL)  # not waited for: a zombie from now on
        wait_for(lambda: psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE, what="weave's end")
        project.write("go", "")
        result = project.run("build")
        assert result.rc == 0, result
        assert "killed 1 job(s) left running by a weave that was killed" in result.err, result.err
        assert_all_gone(orphans)
        recorded = project.read("b.txt")
    finally:
        process.wait()
    time.sleep(0.3)  # an orphan left alive would write its run id now
    assert project.read("b.txt") == recorded
    assert "nothing to do" in project.run("build").out


def test_building_a_copy_of_a_project_leaves_the_original_builds_jobs_alone(project, tmp_path):
    """A copy made while a build runs (cp -a, a backup restored) holds the original's list of
    running jobs; its lock is its own, so only the recorded weave being alive tells that those
    jobs are not orphans. Building the copy must not kill them."""
    project.weavefile(
        """
        [rules.slow]
        outputs = ["b.txt"]
        cmd = "touch started; while [ ! -e go ]; do sleep 0.05; done; echo done > {outputs}"
        """
    )
    original = start_weave(project.root, "build")
    try:
        wait_for(lambda: project.exists("started"), what="job start")
        jobs = psutil.Process(original.pid).children()  # the job's shell (its sleeps come and go)
        assert jobs
        copy = tmp_path / "copy"
        subprocess.run(["cp", "-a", str(project.root), str(copy)], check=True)
        (copy / "go").write_text("")
        result = subprocess.run([sys.executable, "-m", "weavebuild", "build"], cwd=copy, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "killed" not in result.stderr
        assert all(job.is_running() for job in jobs), "the copy's build killed the original's job"
    finally:
        project.write("go", "")  # whatever happened, the original build can end
    assert original.wait(timeout=60) == 0
    assert project.read("b.txt") == "done\n"


def test_status_during_a_build_shows_the_running_job_as_running(project):
    """`weave status` in another terminal while a build runs: the job being built is RUNNING
    (it was 'STALE output modified': the job had just rewritten its output)."""
    project.weavefile(
        """
        [rules.slow]
        outputs = ["b.txt"]
        cmd = "echo partial > {outputs}; touch started; while [ ! -e go ]; do sleep 0.05; done; echo done > {outputs}"
        [rules.other]
        outputs = ["c.txt"]
        cmd = "echo c > {outputs}"
        """
    )
    build = start_weave(project.root, "build", "b.txt")
    try:
        wait_for(lambda: project.exists("started"), what="job start")
        status = project.run("status", "b.txt", "c.txt")
        assert status.rc == 1, status
        assert re.search(rf"^RUNNING +slow b.txt +being built now \(weave pid {build.pid}\)$", status.out, re.M), status
        assert re.search(r"^STALE +other c.txt +never built$", status.out, re.M), status
        assert "0 of 2 jobs up to date, 1 stale, 1 running" in status.out, status
    finally:
        project.write("go", "")
    assert build.wait(timeout=60) == 0
    status = project.run("status", "b.txt")
    assert status.rc == 0 and "RUNNING" not in status.out, status


REAPING_DRIVER = r'''
import ctypes, json, os, subprocess, sys, time
# As a normal init (systemd) does: orphans are reparented to this process and reaped here.
assert ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
weave = [sys.executable, "-m", "weavebuild", "build"]
def wait_file(name):
    deadline = time.time() + 60
    while not os.path.exists(name):
        assert time.time() < deadline, name
        time.sleep(0.02)
first = subprocess.Popen(weave, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_file("started")
first.kill()  # weave alone, as the OOM killer would
first.wait()
shell, background = int(open("shell.pid").read()), int(open("bg.pid").read())
open("go", "w").close()  # the job's shell finishes and exits; its background child lives on
os.waitpid(shell, 0)  # reaped, as init would: the recorded pid no longer exists
second = subprocess.run(weave, capture_output=True, text=True)
deadline, killed = time.time() + 30, False
while time.time() < deadline and not killed:
    killed = os.waitpid(background, os.WNOHANG)[0] == background
    time.sleep(0.05)
if not killed:
    os.kill(background, 9)
print(json.dumps({"rc": second.returncode, "err": second.stderr, "killed": killed}))
'''


def test_kill_9_leftovers_of_a_reaped_job_are_killed(project):
    """After kill -9 of weave, a job's shell that exited (reaped by init) left a background
    process in its session: the next build finds it by the run id in its environment."""
    project.weavefile(
        """
        [rules.o]
        outputs = ["out.txt"]
        cmd = '''
        if [ ! -e first ]; then
          touch first; (exec sleep 300) & echo $! > bg.pid; echo $$ > shell.pid; touch started
          while [ ! -e go ]; do sleep 0.02; done
        fi
        echo done > out.txt
        '''
        """
    )
    project.write("driver.py", REAPING_DRIVER, dedent=False)
    driver = subprocess.run([sys.executable, "driver.py"], cwd=project.root, capture_output=True, text=True, timeout=180)
    assert driver.returncode == 0, driver.stderr
    outcome = json.loads(driver.stdout.strip().splitlines()[-1])
    assert outcome["rc"] == 0, outcome
    assert "killed 1 job(s) left running by a weave that was killed" in outcome["err"], outcome
    assert outcome["killed"], "the background process of the killed weave's job was left running"
    assert project.read("out.txt") == "done\n"


EDITED_DURING_RUN = """
[rules.copy]
inputs = ["src.txt"]
outputs = ["copy.txt"]
cmd = '''
cat src.txt > copy.txt
touch started
for _ in $(seq 1 1500); do [ -f go ] && exit 0; sleep 0.02; done
exit 1
'''
[rules.upper]
inputs = ["copy.txt"]
outputs = ["upper.txt"]
cmd = "tr a-z A-Z < copy.txt > upper.txt"
"""


@pytest.mark.parametrize("same_size", [True, False])
def test_source_edited_while_its_job_runs_is_rebuilt_next_time(project, same_size):
    """The job read the old content; its record must not vouch for the new one. The next
    build reruns it and everything downstream, even when the edit keeps the file's size."""
    project.weavefile(EDITED_DURING_RUN)
    project.write("src.txt", "old content\n")
    process = start_weave(project.root, "build", "upper.txt")
    wait_for(lambda: (project.root / "started").exists(), what="the job to read its input")
    project.write("src.txt", "new content\n" if same_size else "new, longer content\n")
    (project.root / "go").touch()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert project.read("upper.txt") == "OLD CONTENT\n"  # built from what the job read
    (project.root / "started").unlink()
    rebuild = project.run("build", "upper.txt")
    assert rebuild.rc == 0, rebuild
    assert project.read("copy.txt") == project.read("src.txt")
    assert project.read("upper.txt") == project.read("src.txt").upper()
    assert "nothing to do" in project.run("build", "upper.txt").out


def test_source_changed_after_a_racy_first_read_is_not_vouched_for(project):
    """A source read inside its timestamp window (its mtime is not yet past) is re-read at the
    end of the build; if its content changed meanwhile, the job that read it was built from
    the old content. The end of that build must not stamp the new content as up to date: the
    next build reruns the job. (Deterministic version of the race above: the source's mtime is
    set a second ahead, so its first read is racy and the settling read at the end is not.)"""
    project.weavefile(EDITED_DURING_RUN)
    project.write("src.txt", "old content\n")
    ahead = time.time_ns() + 1_000_000_000
    os.utime(project.root / "src.txt", ns=(ahead, ahead))
    process = start_weave(project.root, "build", "upper.txt")
    wait_for(lambda: (project.root / "started").exists(), what="the job to read its input")
    while time.time_ns() < ahead + 200_000_000:  # the old mtime is past: settling re-reads it
        time.sleep(0.05)
    project.write("src.txt", "new, longer content\n")
    (project.root / "go").touch()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "src.txt changed while the build was running" in err
    assert project.read("upper.txt") == "OLD CONTENT\n"
    (project.root / "started").unlink()
    rebuild = project.run("build", "upper.txt")
    assert rebuild.rc == 0, rebuild
    assert project.read("copy.txt") == "new, longer content\n", rebuild
    assert project.read("upper.txt") == "NEW, LONGER CONTENT\n"
    assert "nothing to do" in project.run("build", "upper.txt").out


READ_WHILE_EDITED = """
[rules.b]
inputs = ["x.txt"]
outputs = ["b.txt"]
cmd = '''
touch started
for _ in $(seq 1 1500); do [ -f go ] && break; sleep 0.02; done
cat x.txt > b.txt
'''
"""


def test_input_edited_while_its_job_runs_and_changed_back_still_reruns(project):
    """The job read an edited input; the record holds the digest taken before it started. If
    the input then gets its old content back, that record would match again and vouch for an
    output made from the edit: a job whose input moved while it ran is not recorded."""
    project.weavefile(READ_WHILE_EDITED)
    project.write("x.txt", "original\n")
    process = start_weave(project.root, "build")
    wait_for(lambda: (project.root / "started").exists(), what="the job to start")
    project.write("x.txt", "modified\n")
    (project.root / "go").touch()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "x.txt changed while the build was running" in err
    assert project.read("b.txt") == "modified\n"  # what the job read
    (project.root / "started").unlink()
    project.write("x.txt", "original\n")  # back to the content its digest was taken from
    rebuild = project.run("build")
    assert rebuild.rc == 0 and project.read("b.txt") == "original\n", rebuild
    assert "nothing to do" in project.run("build").out


def test_a_job_hard_linking_its_input_is_recorded_but_a_sneaky_edit_is_still_seen(project):
    """Staging data with `ln` (or a chmod of an input) changes the input's inode metadata
    (ctime), not its bytes: the job is recorded, and the next build runs nothing. It reran on
    every build with a 'changed while the build was running' warning. An edit that keeps the
    size and puts the mtime back changes the bytes: still not recorded."""
    project.weavefile(
        """
        [rules.stage]
        inputs = ["raw.csv"]
        outputs = ["staged/raw.csv"]
        cmd = "ln raw.csv staged/raw.csv && chmod g-w raw.csv"
        [rules.train]
        inputs = ["staged/raw.csv"]
        outputs = ["model.txt"]
        cmd = "wc -c < staged/raw.csv > model.txt"
        """
    )
    project.write("raw.csv", "big data\n")
    # (an input hashed inside its racy window whose metadata the job changes is read as
    # changed: one extra rerun, never a wrong record; this test is about the settled case)
    wait_past_racy_window(project.root)
    first = project.run("build", "train")
    assert first.rc == 0 and "changed while the build was running" not in first.err, first
    for _ in range(2):
        again = project.run("build", "train")
        assert again.rc == 0 and "nothing to do" in again.out, again
    assert project.run("status", "train").rc == 0
    project.weavefile(READ_WHILE_EDITED)
    project.write("x.txt", "original\n")
    process = start_weave(project.root, "build")
    wait_for(lambda: (project.root / "started").exists(), what="the job to start")
    before = os.stat(project.root / "x.txt")
    project.write("x.txt", "modified\n")  # the same size
    os.utime(project.root / "x.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    (project.root / "go").touch()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "x.txt changed while the build was running" in err, err


def test_directory_input_edited_while_its_job_runs_and_changed_back_still_reruns(project):
    """The same for a directory input: a file in it edited while the job reads the tree, then
    given its old content back. The tree's look (names and each file's stat) taken with its
    digest tells; a file added or removed meanwhile does too. Noise written into it (a
    __pycache__ of the job's imports, a vim swap file) is no change, before or after."""
    project.weavefile(READ_WHILE_EDITED.replace('inputs = ["x.txt"]', 'inputs = ["cfg/"]').replace("cat x.txt", "cat cfg/*.txt"))
    project.write("cfg/x.txt", "original\n")
    for edit, undo in [
        (lambda: project.write("cfg/x.txt", "modified\n"), lambda: project.write("cfg/x.txt", "original\n")),
        (lambda: project.write("cfg/new.txt", "n\n"), lambda: (project.root / "cfg" / "new.txt").unlink()),
    ]:
        for leftover in ("started", "go"):
            if (project.root / leftover).exists():
                (project.root / leftover).unlink()
        process = start_weave(project.root, "build", "-B")
        wait_for(lambda: (project.root / "started").exists(), what="the job to start")
        edit()
        (project.root / "go").touch()
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "cfg changed while the build was running" in err, err
        undo()
        rebuild = project.run("build")
        assert rebuild.rc == 0 and "1 ran" in rebuild.out and project.read("b.txt") == "original\n", rebuild
        assert "nothing to do" in project.run("build").out
    project.write("cfg/.x.txt.swp", "vim")
    project.write("cfg/__pycache__/m.cpython-311.pyc", "bytecode")
    project.write("cfg/x.txt~", "backup")
    assert "nothing to do" in project.run("build").out


def test_input_taken_on_the_stamps_word_and_edited_while_its_job_runs_still_reruns(project):
    """The same in a partial build, where an unchanged input's digest comes from the no-op
    stamp's check instead of a stat of its own (FileState.trust with the check's
    fingerprints)."""
    project.weavefile(READ_WHILE_EDITED.replace('inputs = ["x.txt"]', 'inputs = ["x.txt", "y.txt"]'))
    project.write("x.txt", "original\n")
    project.write("y.txt", "1\n")
    (project.root / "go").touch()
    assert project.run("build").rc == 0
    assert "nothing to do" in project.run("build").out  # stamped
    (project.root / "go").unlink()
    (project.root / "started").unlink()
    project.write("y.txt", "2\n")  # b reruns in a partial build; x.txt is taken as unchanged
    process = start_weave(project.root, "build")
    wait_for(lambda: (project.root / "started").exists(), what="the job to start")
    project.write("x.txt", "modified\n")
    (project.root / "go").touch()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "x.txt changed while the build was running" in err
    assert project.read("b.txt") == "modified\n"
    (project.root / "started").unlink()
    project.write("x.txt", "original\n")
    rebuild = project.run("build")
    assert rebuild.rc == 0 and project.read("b.txt") == "original\n", rebuild
    assert "nothing to do" in project.run("build").out


def _random_pipeline(rng: random.Random) -> tuple:
    """(number of sources, rules): a random layered DAG whose jobs write through a temp file,
    sometimes two outputs, and sometimes fail (exit 3 after writing a partial output) when an
    input contains 'bad'."""
    sources = rng.randint(2, 5)
    available = [f"src/s{i}.txt" for i in range(sources)]
    rules = []
    for layer in range(rng.randint(1, 3)):
        made = []
        for index in range(rng.randint(1, 3)):
            outputs = [f"l{layer}/o{index}.txt"] + ([f"l{layer}/o{index}.len"] if rng.random() < 0.3 else [])
            cmd = (
                "cat {inputs} | tr a-m n-z > {outputs[0]}.tmp; "
                f"sleep {rng.choice(['0', '0.01', '0.05', '0.2'])}; mv {{outputs[0]}}.tmp {{outputs[0]}}"
            )
            if len(outputs) > 1:
                cmd += "; wc -c < {outputs[0]} > {outputs[1]}"
            if rng.random() < 0.25:
                cmd = "if grep -q bad {inputs}; then echo partial > {outputs[0]}; exit 3; fi; " + cmd
            inputs = rng.sample(available, k=min(len(available), rng.randint(1, 3)))
            rules.append((f"r{layer}_{index}", inputs, outputs, cmd))
            made += outputs
        available += made
    return sources, rules


def _write_pipeline(root: Path, rules: list, contents: list) -> None:
    lines = []
    for name, inputs, outputs, cmd in rules:
        lines += [f"[rules.{name}]", f"inputs = {json.dumps(inputs)}", f"outputs = {json.dumps(outputs)}", f"cmd = {json.dumps(cmd)}"]
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "Weavefile").write_text("\n".join(lines) + "\n")
    for index, text in enumerate(contents):
        path = root / "src" / f"s{index}.txt"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_random_dags_edits_and_crashes_converge(tmp_path, seed):
    """Random DAGs, random edits (content, touch, command, new rule), each build killed (weave
    alone or its whole tree) or interrupted at a random moment, or left to finish; then a
    `-k` build equals a from-scratch build of the same sources: same exit code, same outputs,
    and any other file is the output of a job Weave knows it must rerun (a job skipped after
    a failure keeps its old output, as with make). A successful build is followed by a no-op."""
    rng = random.Random(seed)
    sources, rules = _random_pipeline(rng)
    contents = [f"source {i}\n" for i in range(sources)]
    root = tmp_path / "project"
    _write_pipeline(root, rules, contents)
    targets = [output for _, _, outputs, _ in rules for output in outputs]
    for step in range(4):
        edit = rng.choice(["content", "bad", "touch", "command", "rule", "none"])
        if edit in ("content", "bad"):
            index = rng.randrange(sources)
            contents[index] = f"edit {step}{' bad' if edit == 'bad' else ''}\n"
        elif edit == "command":
            name, inputs, outputs, cmd = rules[rng.randrange(len(rules))]
            rules = [r if r[0] != name else (name, inputs, outputs, cmd + f"; echo {step} >> {outputs[0]}") for r in rules]
        elif edit == "rule":
            rules.append((f"extra{step}", [rng.choice(targets)], [f"x/e{step}.txt"], "sort {inputs} > {outputs}"))
            targets.append(f"x/e{step}.txt")
        _write_pipeline(root, rules, contents)
        if edit == "touch":
            os.utime(root / "src" / f"s{rng.randrange(sources)}.txt")
        process = start_weave(root, "build", "-j", rng.choice(["1", "2", "4"]), *targets)
        crash = rng.choice(["kill weave", "kill tree", "interrupt", "none"])
        if crash != "none":
            time.sleep(rng.uniform(0.0, 0.4))
            if crash == "kill weave":
                process.kill()
            elif crash == "kill tree":
                kill_tree_now(process)
            else:
                process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    built, expected = _assert_converged(tmp_path, root, rules, contents, targets)
    leftovers = [path for path in built if path not in expected and not path.endswith(".tmp")]
    if leftovers:
        plan = subprocess.run([sys.executable, "-m", "weavebuild", "plan", *targets], cwd=root, capture_output=True, text=True).stdout
        stale = plan.split("up to date")[0]
        first_output = {output: outputs[0] for _, _, outputs, _ in rules for output in outputs}
        assert all(f" {first_output[path]}" in stale for path in leftovers), (leftovers, plan)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_sources_edited_while_building_converge(tmp_path, seed):
    """Random DAGs whose sources are edited while a build runs (other content, same size
    other bytes, touched, identical bytes rewritten; some dated a little ahead, so that a
    source's first read falls inside its timestamp window): once the edits stop, one
    `-k` build equals a from-scratch build of the final sources, and the next is a no-op.
    (A stamp that vouched for a file edited under its build made that next build a wrong no-op.)"""
    rng = random.Random(1000 + seed)
    sources, rules, contents, root, targets = _random_project(tmp_path, rng)

    def edit() -> None:
        index = rng.randrange(sources)
        path = root / "src" / f"s{index}.txt"
        kind = rng.choice(["other", "same size", "touch", "identical"])
        if kind == "other":
            contents[index] = f"edit {rng.random():.6f}{' bad' if rng.random() < 0.2 else ''}\n"
        elif kind == "same size":
            contents[index] = contents[index][:-2] + ("Y" if contents[index][-2] == "X" else "X") + "\n"
        if kind == "touch":
            os.utime(path)
        else:
            path.write_text(contents[index])
        if rng.random() < 0.3:  # dated a little ahead (clock skew, `touch -d`): read as racy
            _date_ahead(path, rng.uniform(0.1, 0.6))

    for _ in range(3):
        if rng.random() < 0.5:
            edit()  # just before the build: its first read of that source is racy
        _build_while(rng, root, targets, edit)
    _assert_converged(tmp_path, root, rules, contents, targets)


# How long an output must have been left alone before the tamper test overwrites it: far
# longer than a job takes to exit and weave to reap it and look at its outputs; overwrites
# can still land between that look and the hashing of the outputs (at a commit, 50-250 ms
# after the job's end, or at the end of the build).
QUIET_NS = 100_000_000


@pytest.mark.slow
# Seeds 20 and 29 failed on the code before the fixes (timing permitting); 40 seeds pass now.
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 20, 29])
def test_outputs_tampered_with_while_building_converge(tmp_path, seed):
    """Random DAGs whose outputs someone else overwrites or deletes while a build runs (some
    dated a little ahead): once that stops, one `-k` build equals a from-scratch build and the
    next is a no-op. (A job that read an output tampered with, rebuilt before the next build,
    kept a record vouching for what it made from the tampered bytes; an output overwritten
    between its job's end and its hash was recorded as the job's; a file deleted between its
    stat and its read was an internal error.)"""
    rng = random.Random(2000 + seed)
    _, rules, contents, root, targets = _random_project(tmp_path, rng)

    def tamper() -> None:
        path = root / rng.choice(targets)
        try:
            changed = path.stat().st_ctime_ns
        except FileNotFoundError:
            return
        if rng.random() < 0.3:
            path.unlink()
        elif time.time_ns() - changed > QUIET_NS:
            # Not right after the job's own last write: until the job has exited and weave has
            # looked at the file, nothing can tell the two writes apart (for any build tool),
            # and the overwrite would count as the job's output. From then on it must not.
            path.write_text(f"tampered {rng.random():.6f}\n")
            if rng.random() < 0.3:
                _date_ahead(path, rng.uniform(0.05, 0.5))

    for _ in range(3):
        _build_while(rng, root, targets, tamper)
    _assert_converged(tmp_path, root, rules, contents, targets)


def _random_project(tmp_path: Path, rng: random.Random) -> tuple:
    """(number of sources, rules, source contents, root, targets) of a random pipeline
    written to tmp_path/project."""
    sources, rules = _random_pipeline(rng)
    contents = [f"source {i} {rng.random():.6f}\n" for i in range(sources)]
    root = tmp_path / "project"
    _write_pipeline(root, rules, contents)
    return sources, rules, contents, root, [output for _, _, outputs, _ in rules for output in outputs]


def _date_ahead(path: Path, seconds: float) -> None:
    ahead = time.time_ns() + int(seconds * 1e9)
    os.utime(path, ns=(ahead, ahead))


def _build_while(rng: random.Random, root: Path, targets: List[str], meddle) -> None:
    """One `-k` build, with `meddle()` called once or twice at random moments while it runs."""
    process = start_weave(root, "build", "-k", "-j", rng.choice(["1", "2", "4"]), *targets)
    for _ in range(rng.randint(1, 2)):
        time.sleep(rng.uniform(0.05, 0.4))
        meddle()
    _, err = process.communicate(timeout=120)
    assert process.returncode in (0, 1) and "Traceback" not in err and "internal error" not in err, err


def _assert_converged(tmp_path: Path, root: Path, rules: list, contents: list, targets: List[str]) -> tuple:
    """A `-k` build now equals a from-scratch build of the same sources, and the next build
    after a success does nothing. Returns the snapshots (project, reference) taken after that
    `-k` build."""
    final = subprocess.run([sys.executable, "-m", "weavebuild", "build", "-k", "-j", "2", *targets], cwd=root, capture_output=True, text=True)
    assert final.returncode in (0, 1) and "Traceback" not in final.stderr, final.stderr
    reference = tmp_path / "reference"
    _write_pipeline(reference, rules, contents)
    fresh = subprocess.run([sys.executable, "-m", "weavebuild", "build", "-k", "-j", "2", *targets], cwd=reference, capture_output=True, text=True)
    assert final.returncode == fresh.returncode, (final.stderr, fresh.stderr)
    built, expected = snapshot(root), snapshot(reference)
    assert {path: built.get(path) for path in expected} == expected
    if final.returncode == 0:
        again = subprocess.run([sys.executable, "-m", "weavebuild", "build", *targets], cwd=root, capture_output=True, text=True)
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
    return built, expected


@pytest.mark.parametrize("with_up_to_date_job", [False, True])
def test_history_counts_a_job_ctrl_c_stopped_as_neither_ran_nor_failed(project, with_up_to_date_job):
    rules = '[rules.slow]\ninputs = ["pre.txt"]\noutputs = ["slow.txt"]\ncmd = "touch started; sleep 60; cp pre.txt slow.txt"\n'
    if with_up_to_date_job:
        rules += '[rules.pre]\noutputs = ["pre.txt"]\ncmd = "echo pre > pre.txt"\n'
    project.weavefile(rules)
    if with_up_to_date_job:
        assert project.run("build", "pre.txt").rc == 0
    else:
        project.write("pre.txt", "pre\n")
    process = start_weave(project.root, "build", "slow.txt")
    wait_for(lambda: project.exists("started"), what="the job to start")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    runs = json.loads(project.run("history", "--json").out)["runs"]
    assert runs[0]["outcome"] == "interrupted" and runs[0]["failed"] == 0 and runs[0]["ran"] == 0, runs[0]


def test_no_job_starts_after_an_interrupt_that_came_while_a_job_ended(project):
    """A Ctrl-C that arrives while weave waits for jobs is acted on before any freed slot is
    refilled: here the job itself interrupts weave and then exits 0, and the job queued
    behind it (-j 1) never starts."""
    project.weavefile(
        """
        default = ["last.txt", "second.txt"]
        [rules.first]
        outputs = ["first.txt"]
        cmd = "echo 1 > first.txt; kill -INT $PPID"
        [rules.last]
        inputs = ["first.txt"]
        outputs = ["last.txt"]
        cmd = "cp first.txt last.txt"
        [rules.second]
        outputs = ["second.txt"]
        cmd = "echo 2 > second.txt"
        """
    )
    result = project.run("build", "-j", "1")
    assert result.rc == 130, result
    assert result.started == ["first first.txt"], result
    assert not project.exists("second.txt") and not project.exists("last.txt")


@pytest.mark.parametrize("lock", ["a-directory", "a-full-disk"])
def test_a_build_lock_the_file_system_refuses_is_a_message(project, lock):
    """The build lock cannot be written (a full disk: /dev/full stands in for one; or
    something in the way): a message naming the lock file, exit 2, no job runs; a full disk
    was an internal error with a traceback."""
    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > a.txt"\n')
    (project.root / ".weave").mkdir()
    if lock == "a-directory":
        (project.root / ".weave/lock").mkdir()
    else:
        if not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full here")
        os.symlink("/dev/full", project.root / ".weave/lock")
    result = project.run("build")
    # (/dev/full refuses the truncation before the write: EINVAL, not ENOSPC's "free some space")
    why = ["something else is in the way"] if lock == "a-directory" else []
    assert_user_error(result, "cannot use '.weave/lock'", *why)
    assert not project.exists("a.txt")


def test_a_stop_signal_during_the_import_of_signal_is_named(monkeypatch):
    """weave's SIGTERM handler is installed through `_signal` before `signal` is imported; a
    SIGTERM that arrived while Python imported `signal` (the DAG fuzzer's seed 2704, 50 ms
    after start) found it half-initialised, without `Signals`, and the exit was an internal
    error instead of 'interrupted by SIGTERM' (143). The module's state then is recreated."""
    import types

    from weavebuild.errors import Interrupted

    monkeypatch.setitem(sys.modules, "signal", types.ModuleType("signal"))  # as mid-import
    for signum, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT"), (signal.SIGHUP, "SIGHUP")):
        error = Interrupted(signum)
        assert (error.message, error.exit_code) == (f"interrupted by {name}", 128 + signum)


def test_ctrl_c_while_a_huge_output_is_hashed_stops_at_once_and_records_nothing(project):
    """A job wrote a 1 TB (sparse) output; Ctrl-C while weave hashed it was acted on only once
    the hashing was done (minutes). It stops now, and the job, whose output was not hashed,
    is not recorded."""
    project.weavefile('[rules.huge]\noutputs = ["huge.bin"]\ncmd = "truncate -s 1T huge.bin && touch written"\n')
    process = start_weave(project.root, "build")
    wait_for(lambda: (project.root / "written").exists(), what="the job to write its output")
    time.sleep(0.5)  # hashing has begun (it takes minutes): the job has ended
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()  # still hashing: do not leave it reading a terabyte
            process.wait()
    assert process.returncode == 130, err
    assert "never built" in project.run("plan").out


def _session_strays(marker: str) -> List[psutil.Process]:
    """Live processes whose command line holds `marker` (a sleep of a length no other test uses)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or ()):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("how", ["timeout", "sigterm", "sigint", "failure", "no-output", "sigint-exit-0"])
def test_a_child_that_left_the_jobs_group_but_not_its_session_is_stopped_too(project, how):
    """`(set -m; sleep &)`: the subshell puts sleep in a group of its own and ends, so sleep
    is neither in the job's group nor its descendant; it is still in the job's session, and
    a timeout, an interrupt or the job's failure stops it (it outlived them, and every later
    build: after Ctrl-C and a failure, only the job's groups were killed once its first
    process had ended)."""
    marker = {
        "timeout": "517.25", "sigterm": "517.5", "sigint": "517.75", "failure": "518.25", "no-output": "518.5",
        "sigint-exit-0": "518.75",
    }[how]
    timeout = 'timeout = "1s"\n' if how == "timeout" else ""
    rest = {
        "failure": "while [ ! -f go ]; do sleep 0.05; done; exit 3",
        "no-output": "while [ ! -f go ]; do sleep 0.05; done; true",  # exits 0, makes no out/a
        "sigint-exit-0": "trap \'exit 0\' INT TERM; sleep 600 & wait",  # a cancelled job exiting 0
    }.get(how, "sleep 600")
    project.weavefile(
        f'[rules.a]\noutputs = ["out/a"]\n{timeout}cmd = "(set -m; trap \'\' INT; sleep {marker} &); touch started; {rest}"\n'
    )  # (the stray ignores Ctrl-C's SIGINT, so that only the later signals can stop it)
    process = start_weave(project.root, "build")
    wait_for(lambda: project.exists("started") and _session_strays(marker), what="the job and its stray")
    if how in ("failure", "no-output"):
        (project.root / "go").touch()
    elif how == "sigterm":
        process.send_signal(signal.SIGTERM)
    elif how.startswith("sigint"):
        process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == {"timeout": 1, "sigterm": 143, "failure": 1, "no-output": 1}.get(how, 130)
    wait_for(lambda: not _session_strays(marker), timeout=10, what="the stray to be stopped")


def test_a_job_started_directly_and_killed_by_sigkill_names_the_out_of_memory_killer(project):
    """A plain command (started without bash) killed by SIGKILL said only 'killed by signal
    SIGKILL', where the same job under bash said exit code 137 and why that often happens."""
    project.weavefile('[rules.k]\noutputs = ["k.txt"]\ncmd = "sleep 519.25"\n')
    process = start_weave(project.root, "build")
    wait_for(lambda: _session_strays("519.25"), what="the job")
    for stray in _session_strays("519.25"):
        stray.kill()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "FAILED k k.txt: killed by signal SIGKILL, often by the out-of-memory killer" in err, err


@pytest.mark.parametrize("name", ["state.db", "running", "lock", "graph.cache", "graph.cache.digests", "includes"])
def test_a_fifo_in_place_of_one_of_weaves_files_is_never_waited_on(project, name):
    """A FIFO where weave keeps a file of its own: opening it waited for a writer (or a
    reader) forever, deaf to SIGTERM (the open is retried after each signal). Weave's caches
    treat it as missing and write theirs over it; the store and the job registry, which a
    build cannot do without, stop the command with a message, before any job starts."""
    project.weavefile('[rules.a]\noutputs = ["x"]\ncmd = "touch x"\n')
    (project.root / ".weave").mkdir()
    os.mkfifo(project.root / ".weave" / name)
    plan = project.run("plan", timeout=60)
    build = project.run("build", timeout=60)
    if name in ("state.db", "running", "lock"):
        assert_user_error(build, f"cannot use .weave/{name}" if name == "state.db" else f"cannot use '.weave/{name}'", "remove it")
        assert not project.exists("x")  # no job was started
        if name == "state.db":
            assert_user_error(plan, "not a regular file")
    else:
        assert plan.rc == 0 and build.rc == 0 and project.exists("x"), (plan, build)
        assert "nothing to do" in project.run("build", timeout=60).out

"""The local executor: direct exec of plain commands, bash strict mode for everything else."""

from __future__ import annotations

import os
import signal
import time

import pytest

from weavebuild.executor import LocalExecutor


def _collect(executor, count):
    """The completions of `count` jobs, by token."""
    done = {}
    while len(done) < count:
        for completion in executor.wait(30):
            done[completion.token] = completion
    return done


def run_one(tmp_path, command: str, env=None):
    executor = LocalExecutor()
    log = tmp_path / "job.log"
    executor.start("job", command, env, str(tmp_path), str(log))
    done = _collect(executor, 1)["job"]
    executor.close()
    # A job that succeeds without printing leaves no log file (and removes an older one).
    assert log.exists() == done.log_written
    return done, log.read_text() if done.log_written else ""


def test_exit_codes_and_output(tmp_path):
    done, output = run_one(tmp_path, "echo out; echo err >&2; exit 4")
    assert done.returncode == 4 and output == "out\nerr\n"
    done, output = run_one(tmp_path, "cp missing.txt x")
    assert done.returncode == 1 and "missing.txt" in output
    done, _ = run_one(tmp_path, "undefined_var_use $NOPE_NOT_SET")
    assert done.returncode != 0  # set -u
    done, _ = run_one(tmp_path, "false | true")
    assert done.returncode == 1  # pipefail


def test_env_is_passed(tmp_path):
    done, output = run_one(tmp_path, "echo $WEAVE_TEST_VAR", env=dict(os.environ, WEAVE_TEST_VAR="42"))
    assert done.returncode == 0 and output == "42\n"


def test_job_process_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as from the CLI: jobs run in weave's own directory
    done, output = run_one(tmp_path, "echo out; echo err >&2; exit 4")
    assert done.returncode == 4 and output == "out\nerr\n"
    # SIGPIPE has its default action (Python ignores it): `yes` dies of it, quietly, instead
    # of failing with "Broken pipe"; strict mode's pipefail reports the signal (128 + 13).
    done, output = run_one(tmp_path, "yes | head -n 2")
    assert done.returncode == 141 and output == "y\ny\n", output
    done, output = run_one(tmp_path, "cat")  # stdin is /dev/null: no waiting for a terminal
    assert done.returncode == 0 and output == ""
    done, output = run_one(tmp_path, "echo $WEAVE_TEST_VAR", env=dict(os.environ, WEAVE_TEST_VAR="7"))
    assert output == "7\n"
    (tmp_path / "a.txt").write_text("copied\n")
    done, _ = run_one(tmp_path, "cp a.txt b.txt")  # exec'd directly, in the job's directory
    assert done.returncode == 0 and (tmp_path / "b.txt").read_text() == "copied\n"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def _shim(directory, name: str, body: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / name
    program.write_text(body)
    program.chmod(0o755)


def test_plain_commands_run_the_program_on_the_jobs_path(tmp_path):
    """A job whose env sets PATH (a virtualenv, a conda env) runs the program bash would run
    with that PATH, not the one on weave's own PATH, also when weave starts it without bash."""
    _shim(tmp_path / "shim", "cat", '#!/bin/sh\necho shimmed "$@"\n')
    (tmp_path / "in.txt").write_text("data\n")
    env = dict(os.environ, PATH=f"{tmp_path / 'shim'}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    assert LocalExecutor().pipeline("cat in.txt > out.txt", env, str(tmp_path)) is not None
    done, _ = run_one(tmp_path, "cat in.txt > out.txt", env=env)
    assert done.returncode == 0
    assert (tmp_path / "out.txt").read_text() == "shimmed in.txt\n"
    done, _ = run_one(tmp_path, "cat in.txt > out.txt")  # weave's PATH: the real cat
    assert (tmp_path / "out.txt").read_text() == "data\n"


def test_a_program_only_on_the_jobs_path_is_started_without_bash(tmp_path):
    _shim(tmp_path / "tools", "weave-only-here", "#!/bin/sh\necho here\n")
    env = dict(os.environ, PATH=f"{tmp_path / 'tools'}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    executor = LocalExecutor()
    assert executor.pipeline("weave-only-here") is None  # not on weave's PATH: bash says so
    assert executor.pipeline("weave-only-here", env, str(tmp_path)) == ([["weave-only-here"]], None, None, False)
    done, output = run_one(tmp_path, "weave-only-here", env=env)
    assert (done.returncode, output) == (0, "here\n")


def test_a_script_without_a_shebang_runs_as_bash_would_run_it(tmp_path):
    """execve refuses a script with no #! line (ENOEXEC); bash runs it with itself. Weave's
    direct start falls back to bash, so the job behaves as written."""
    _shim(tmp_path, "gen.sh", "echo generated > out.txt\necho done\n")
    assert LocalExecutor().pipeline("./gen.sh", None, str(tmp_path)) is not None
    done, output = run_one(tmp_path, "./gen.sh")
    assert (done.returncode, output) == (0, "done\n")
    assert (tmp_path / "out.txt").read_text() == "generated\n"


def test_a_program_gone_since_it_was_looked_up_fails_as_under_bash(tmp_path):
    _shim(tmp_path / "tools", "weave-vanishing", "#!/bin/sh\necho ran\n")
    env = dict(os.environ, PATH=f"{tmp_path / 'tools'}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    executor = LocalExecutor()
    assert executor.pipeline("weave-vanishing", env, str(tmp_path)) is not None  # found, and remembered
    (tmp_path / "tools" / "weave-vanishing").unlink()
    log = tmp_path / "job.log"
    executor.start("job", "weave-vanishing", env, str(tmp_path), str(log))
    done = _collect(executor, 1)["job"]
    executor.close()
    assert done.returncode == 127
    assert "weave-vanishing: command not found" in log.read_text()


@pytest.mark.parametrize("command", ["printenv PWD", "printenv PWD; true"])  # direct; bash
def test_jobs_see_pwd_as_bash_sets_it(tmp_path, monkeypatch, command):
    """A job's PWD names its directory, as bash makes it: weave's own PWD is another one when
    it runs a Weavefile elsewhere (-f DIR/Weavefile); a logical path (through a symlink) that
    names the job's directory is kept."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.setenv("PWD", str(tmp_path))  # weave started one level up
    done, output = run_one(project, command)
    assert (done.returncode, output) == (0, f"{os.path.realpath(project)}\n")
    link = tmp_path / "link"
    link.symlink_to(project)
    monkeypatch.setenv("PWD", str(link))  # `cd link` in a shell: the same directory
    done, output = run_one(project, command)
    assert (done.returncode, output) == (0, f"{link}\n")


def test_jobs_lead_their_own_session_and_inherit_no_descriptors(tmp_path):
    done, output = run_one(tmp_path, 'read -r -a fields < /proc/$$/stat; echo "${fields[5]} $$"')
    session, pid = output.split()
    assert done.returncode == 0 and session == pid  # killable as a group, apart from weave
    read_end, write_end = os.pipe()
    leaked = os.dup2(write_end, 57)
    os.set_inheritable(leaked, True)  # as if inherited from whoever started weave
    try:
        done, output = run_one(tmp_path, "ls /proc/self/fd")
        assert done.returncode == 0 and "57" not in output.split(), output
    finally:
        for fd in (read_end, write_end, leaked):
            os.close(fd)


@pytest.mark.parametrize(
    "command,plan",
    [
        ("cp a.txt b.txt", ([["cp", "a.txt", "b.txt"]], None, None, False)),
        ("python train.py --epochs=3 --out models/best", ([["python", "train.py", "--epochs=3", "--out", "models/best"]], None, None, False)),
        ("cat a b | cksum", ([["cat", "a", "b"], ["cksum"]], None, None, False)),
        ("cat a b | cksum > out", ([["cat", "a", "b"], ["cksum"]], None, "out", False)),
        ("sort < in | uniq -c >> log", ([["sort"], ["uniq", "-c"]], "in", "log", True)),
        ("python train.py > out", ([["python", "train.py"]], None, "out", False)),
        ("cp 'a b' c", None),
        ("echo $HOME", None),
        ("echo hi", None),  # a bash builtin
        ("cd x", None),
        ("FOO=1 env", None),
        ("ls *.txt", None),
        ("a && b", None),
        ("cp a b\ncp b c", None),
        ("no-such-program-xyz a", None),  # bash reports "command not found" (exit 127)
        ("cat ~/x", None),
        ("cat a>b", None),
        ("cat a |cksum", None),
        ("cat > out | wc", None),
        ("cat < in x", None),
        ("cat a | grep x > o y", None),
        ("cat a > b > c", None),
        ("echo hi | cat", None),
        ("cat a | no-such-program-xyz", None),
        ("cat a | wc -l 2>/dev/null", None),
        ("cat 'a b' | wc", None),
        ("cat a | wc\ncat b", None),
    ],
)
def test_commands_weave_starts_without_bash(command, plan):
    """Plain programs and pipelines of them run as written (each program found on PATH);
    anything else is left to bash."""
    assert LocalExecutor().pipeline(command) == plan


PIPELINES = [
    "cat a.txt b.txt | cksum",
    "cat a.txt | tr a-z A-Z > out.txt",
    "sort < lines.txt | uniq -c",
    "sort < lines.txt | uniq -c >> appended.txt",
    "cat missing.txt | cksum",  # pipefail: cat's failure fails the job
    "cat a.txt | grep nomatch",
    "grep nomatch a.txt | cksum",
    "yes | head -n 3",  # yes dies of SIGPIPE: 141 with pipefail
    "head -c 100000 /dev/zero | wc -c > count.txt",
    "cat a.txt > missing-dir/out.txt",  # cannot open: left to bash, which explains
]


@pytest.mark.parametrize("command", PIPELINES)
def test_native_pipelines_match_bash(tmp_path, command):
    """Pipelines weave starts itself give what `bash -euo pipefail -c` gives: the exit status,
    the log, and the files written."""
    outcomes = []
    for native in (True, False):
        workdir = tmp_path / ("native" if native else "bash")
        workdir.mkdir()
        (workdir / "a.txt").write_text("alpha\nbeta\n")
        (workdir / "b.txt").write_text("gamma\n")
        (workdir / "lines.txt").write_text("b\na\nb\nc\na\nb\n")
        (workdir / "appended.txt").write_text("before\n")
        executor = LocalExecutor()
        if native:
            assert executor.pipeline(command) is not None  # weave starts it without bash
        else:
            executor.pipeline = lambda command, *rest: None  # type: ignore[method-assign]
        log = workdir / "job.log"
        executor.start("job", command, None, str(workdir), str(log))
        done = _collect(executor, 1)["job"]
        executor.close()
        files = {p.name: p.read_text() for p in sorted(workdir.iterdir()) if p.name != "job.log"}
        text = log.read_text().replace("bash: line 1: ", "") if done.log_written else None
        outcomes.append((done.returncode, text, files))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("mode", ["pidfd", "reaper"])
def test_completions_in_both_wait_modes(tmp_path, mode):
    """Linux waits on pidfds in the builder's thread; elsewhere (or where pidfds are refused) a
    reaper thread waits: both report every job once, with its status and CPU time."""
    if mode == "pidfd" and not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd_open here")
    executor = LocalExecutor()
    if mode == "reaper":
        executor._use_pidfd = False
    commands = {"ok": "true", "three": "exit 3", "pipe": "false | true", "native": "cat missing-file"}
    for token, command in commands.items():
        executor.start(token, command, None, str(tmp_path), str(tmp_path / f"{token}.log"))
    executor.start("slow", "sleep 30", None, str(tmp_path), str(tmp_path / "slow.log"))
    done = _collect(executor, len(commands))
    assert {token: c.returncode for token, c in done.items()} == {"ok": 0, "three": 3, "pipe": 1, "native": 1}
    assert executor.tokens() == ["slow"]
    executor.cancel("slow")
    cancelled = _collect(executor, 1)["slow"]
    assert cancelled.cancelled and cancelled.returncode == -15
    assert executor._use_pidfd is (mode == "pidfd")
    executor.close()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd_open here")
def test_children_without_a_pidfd_are_still_reaped(tmp_path, monkeypatch):
    """Out of descriptors for a pidfd (EMFILE) after the first: those children are polled."""
    import errno

    real = os.pidfd_open
    calls = []

    def pidfd_open(pid, *args):
        calls.append(pid)
        if len(calls) > 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return real(pid, *args)

    monkeypatch.setattr(os, "pidfd_open", pidfd_open)
    executor = LocalExecutor()
    for index in range(3):
        executor.start(f"job{index}", f"exit {index}", None, str(tmp_path), str(tmp_path / f"{index}.log"))
    done = _collect(executor, 3)
    assert {token: c.returncode for token, c in done.items()} == {"job0": 0, "job1": 1, "job2": 2}
    assert executor._use_pidfd is True and not executor._unwatched
    executor.close()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd_open here")
def test_only_its_own_children_are_reaped(tmp_path):
    """An embedding program's own subprocess keeps its exit status while weave runs jobs."""
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(7)"])
    executor = LocalExecutor()
    for index in range(5):
        executor.start(f"job{index}", "sleep 0.2", None, str(tmp_path), str(tmp_path / f"{index}.log"))
    _collect(executor, 5)
    executor.start("late", "sleep 1", None, str(tmp_path), str(tmp_path / "late.log"))
    assert other.wait(30) == 7
    _collect(executor, 1)
    executor.close()


def test_an_inherited_ignored_sigchld_does_not_hide_failures(tmp_path):
    """A parent that ignores SIGCHLD passes that on through exec; the kernel would then reap
    weave's children itself and their statuses would be lost. Weave takes the default back."""
    import subprocess
    import sys

    (tmp_path / "Weavefile").write_text('[rules.bad]\noutputs = ["out.txt"]\ncmd = "exit 3"\n')
    script = (
        "import os, signal, sys\n"
        "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'weavebuild', 'build'])\n"
    )
    process = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert process.returncode == 1, process.stderr
    assert "exited with code 3" in process.stderr


def test_an_embedding_programs_ignored_sigchld_is_given_back(tmp_path):
    """Within the API, weave reaps with the default SIGCHLD disposition while it runs jobs,
    and puts an embedding program's SIG_IGN back when its executor closes."""
    import signal

    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        executor = LocalExecutor()
        executor.start("job", "exit 4", None, str(tmp_path), str(tmp_path / "job.log"))
        assert _collect(executor, 1)["job"].returncode == 4
        executor.close()
        assert signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGCHLD, previous)


def _wait_until(executor, condition, timeout=30.0):
    """Call executor.wait (which also renames due spools) until `condition()` holds."""
    import time

    done = {}
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        for completion in executor.wait(0.05):
            done[completion.token] = completion
    return done


def test_silent_success_leaves_no_log_and_removes_the_old_one(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("output of an earlier run\n")
    done, output = run_one(tmp_path, "true")
    assert done.returncode == 0 and not done.log_written and not log.exists()
    done, output = run_one(tmp_path, "false")  # a failure keeps its log, even an empty one
    assert done.returncode == 1 and done.log_written and output == ""
    assert not (tmp_path / ".spool").exists()  # close() removes the spool directory


def test_spool_files_are_reused_and_never_mix_output(tmp_path):
    """Silent jobs hand their (empty) spool file to the next job: a build of many silent jobs
    creates a file per job slot, not per job; a job's output lands in its own log only."""
    executor = LocalExecutor()
    done = {}
    for index in range(24):
        while executor.running >= 3:
            for completion in executor.wait(30):
                done[completion.token] = completion
        command = f"echo job {index}" if index % 4 == 0 else "true"
        executor.start(index, command, None, str(tmp_path), str(tmp_path / f"{index}.log"))
    while executor.running:
        for completion in executor.wait(30):
            done[completion.token] = completion
    # 3 slots, and a new spool file after each of the 6 jobs that printed (theirs became logs).
    assert executor._spools_made <= 3 + 6
    executor.close()
    assert sorted(done) == list(range(24))
    for index, completion in done.items():
        log = tmp_path / f"{index}.log"
        if index % 4 == 0:
            assert completion.log_written and log.read_text() == f"job {index}\n"
        else:
            assert not completion.log_written and not log.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{i}.log" for i in range(0, 24, 4))


def test_long_running_job_gets_its_log_by_name_while_running(tmp_path):
    """A job running for a second or more is followed in its own log file (`tail -f`)."""
    executor = LocalExecutor()
    log = tmp_path / "train.log"
    release = tmp_path / "release"
    executor.start("train", f"echo started; while [ ! -e {release} ]; do sleep 0.05; done; echo done", None,
                   str(tmp_path), str(log))
    done = _wait_until(executor, lambda: log.exists() and log.read_text() == "started\n")
    assert not done and executor.running == 1  # renamed while the job still runs
    release.touch()
    done = _wait_until(executor, lambda: executor.running == 0)
    executor.close()
    assert done["train"].returncode == 0 and done["train"].log_written
    assert log.read_text() == "started\ndone\n"


def test_long_silent_job_leaves_no_log(tmp_path):
    """A job given its log file while it ran, that printed nothing after all, leaves none (as
    a short silent job does)."""
    executor = LocalExecutor()
    log = tmp_path / "quiet.log"
    release = tmp_path / "release"
    executor.start("quiet", f"while [ ! -e {release} ]; do sleep 0.05; done", None, str(tmp_path), str(log))
    done = _wait_until(executor, lambda: log.exists())  # promoted while it runs (empty)
    assert not done and executor.running == 1
    release.touch()
    done = _wait_until(executor, lambda: executor.running == 0)
    executor.close()
    assert done["quiet"].returncode == 0 and not done["quiet"].log_written
    assert not log.exists()


def test_background_process_output_stays_in_its_job_log(tmp_path):
    """A job whose process group outlives it (a background child still writing) keeps its
    spool file as its log: the late output never lands in a later job's log."""
    executor = LocalExecutor()
    flag = tmp_path / "go"
    executor.start("bg", f"(while [ ! -e {flag} ]; do sleep 0.05; done; echo late) &", None, str(tmp_path),
                   str(tmp_path / "bg.log"))
    done = _wait_until(executor, lambda: executor.running == 0)
    assert done["bg"].returncode == 0 and done["bg"].log_written
    for token, command in (("quiet", "true"), ("loud", "echo mine")):
        executor.start(token, command, None, str(tmp_path), str(tmp_path / f"{token}.log"))
    done = _wait_until(executor, lambda: executor.running == 0)
    flag.touch()
    _wait_until(executor, lambda: (tmp_path / "bg.log").read_text() == "late\n")
    executor.close()
    assert not done["quiet"].log_written and not (tmp_path / "quiet.log").exists()
    assert (tmp_path / "loud.log").read_text() == "mine\n"


def test_spool_files_of_a_killed_weave_are_removed(tmp_path):
    spool = tmp_path / ".spool"
    spool.mkdir()
    (spool / "999999999-1").write_text("output of a job whose weave was killed\n")  # no such pid
    (spool / f"{os.getpid()}-77").write_text("a live weave's\n")
    done, _ = run_one(tmp_path, "true")
    assert done.returncode == 0
    assert sorted(p.name for p in spool.iterdir()) == [f"{os.getpid()}-77"]


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_the_sampler_thread_leaves_sigchld_to_the_main_thread(tmp_path):
    # While the main thread starts a job it blocks every signal; a SIGCHLD arriving then would
    # otherwise wake the sampler thread, once per job, for nothing.
    executor = LocalExecutor()
    try:
        executor.start("job", "true", None, str(tmp_path), str(tmp_path / "job.log"))
        _collect(executor, 1)
        status = f"/proc/self/task/{executor._sampler.native_id}/status"
        sigchld = 1 << (signal.SIGCHLD - 1)
        deadline = time.monotonic() + 30
        while True:  # the thread blocks it as it starts: wait for that
            with open(status) as lines:
                blocked = int(next(line for line in lines if line.startswith("SigBlk:")).split()[1], 16)
            if blocked & sigchld or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert blocked & sigchld
    finally:
        executor.close()


def test_kill_orphans_matches_each_job_with_its_own_run(tmp_path):
    """A registry may hold entries of two runs (a watch cycle's executor after another's that
    could not clear it): a leftover of the first run's job, whose first process is gone, is
    found by the first run's id, not the last one named."""
    import subprocess

    import psutil

    from weavebuild.executor import RUN_ID_VARIABLE, kill_orphans

    marker = tmp_path / "bg.pid"
    shell = subprocess.Popen(
        ["bash", "-c", f"sleep 300 & echo $! > {marker}"], start_new_session=True,
        env=dict(os.environ, **{RUN_ID_VARIABLE: "run-a"}),
    )
    started = time.time()
    shell.wait()  # the job's first process is gone (reaped); its background sleep lives on
    background = int(marker.read_text())
    registry = tmp_path / "running"
    registry.write_text(f"run run-a\n{shell.pid} {started:.3f}\nrun run-b\n999999999 {started:.3f}\n")
    try:
        assert kill_orphans(str(registry)) == 1

        def gone() -> bool:
            try:
                return psutil.Process(background).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        deadline = time.monotonic() + 30
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(), "the first run's leftover is still running"
    finally:
        try:
            os.kill(background, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert registry.read_text() == ""


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_peak_memory_is_sampled_over_the_whole_tree_of_each_job(tmp_path):
    """Each job's peak RSS covers its session and descendants (a grandchild that left the
    session, whose parent waits for it, too), one /proc pass per round for all jobs; a job
    never counts another's processes."""
    import sys

    hold = "import time; x = bytearray({mb} << 20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.5)"
    big = f"{sys.executable} -c \"{hold.format(mb=120)}\""
    small = f"{sys.executable} -c \"{hold.format(mb=10)}\""
    executor = LocalExecutor(sample_interval=0.1)
    try:
        # The big one runs in a grandchild that left the job's session; bash waits for it.
        executor.start("big", f"setsid {big} & wait", None, str(tmp_path), str(tmp_path / "big.log"))
        executor.start("small", f"{small} & wait", None, str(tmp_path), str(tmp_path / "small.log"))
        done = _collect(executor, 2)
    finally:
        executor.close()
    assert done["big"].peak_rss > 120 << 20, done["big"].peak_rss
    assert 10 << 20 < done["small"].peak_rss < 100 << 20, done["small"].peak_rss


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="the wake-up is for the pidfd (Linux) wait")
def test_a_caught_signal_ends_the_wait_at_once_where_the_executor_wakes_on_signals(tmp_path):
    """A stop signal's Python handler only sets a flag: the wait for completions must end
    with it, not at its timeout (a Ctrl-C took up to a second to stop a build)."""
    import threading

    caught = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: caught.append(signum))
    executor = LocalExecutor()
    try:
        executor.start("first", "true", None, str(tmp_path), str(tmp_path / "first.log"))
        _collect(executor, 1)  # the first child tells whether pidfds work here
        if executor._use_pidfd is not True:
            pytest.skip("no pidfds on this kernel")
        assert executor.wake_on_signals() and executor.wakes_on_signals
        executor.start("long", "sleep 60", None, str(tmp_path), str(tmp_path / "long.log"))
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        assert executor.wait(120) == []  # back because of the signal: the job still runs
        assert caught == [signal.SIGUSR1] and executor.running == 1
    finally:
        executor.close()  # kills the sleep, and gives the wakeup fd back
        signal.signal(signal.SIGUSR1, previous)
    assert signal.set_wakeup_fd(-1) == -1


def test_the_executor_leaves_someone_elses_wakeup_fd_alone(tmp_path):
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)  # as a running asyncio loop has it
    executor = LocalExecutor()
    try:
        assert not executor.wake_on_signals() and not executor.wakes_on_signals
        executor.stop_waking_on_signals()
        assert signal.set_wakeup_fd(-1) == write_end
    finally:
        executor.close()
        os.close(read_end)
        os.close(write_end)


def test_a_build_through_the_api_gives_the_wakeup_fd_back(tmp_path):
    from weavebuild import Project

    (tmp_path / "Weavefile").write_text('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > a.txt"\n')
    result = Project.load(str(tmp_path)).build(["a.txt"])
    assert result.ok and (tmp_path / "a.txt").read_text() == "a\n"
    assert signal.set_wakeup_fd(-1) == -1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_run_id_in_weaves_environment_is_restored_whatever_order_builds_end_in(tmp_path, monkeypatch):
    """Builds in threads of one program overlap: A starts, B starts, A ends, B ends. The
    variable was left holding A's run id, inherited by every later child of the program."""
    from weavebuild.executor import RUN_ID_VARIABLE

    for before in (None, "the program's own"):
        if before is None:
            monkeypatch.delenv(RUN_ID_VARIABLE, raising=False)
        else:
            monkeypatch.setenv(RUN_ID_VARIABLE, before)
        for a_ends_first in (True, False):
            a = LocalExecutor(registry=str(tmp_path / "a.running"))
            assert os.environ[RUN_ID_VARIABLE] == a.run_id
            b = LocalExecutor(registry=str(tmp_path / "b.running"))
            assert os.environ[RUN_ID_VARIABLE] == b.run_id
            first, second = (a, b) if a_ends_first else (b, a)
            first.close()
            assert os.environ[RUN_ID_VARIABLE] == second.run_id  # its jobs still start
            second.close()
            assert os.environ.get(RUN_ID_VARIABLE) == before


def test_an_ignored_sigchld_that_a_thread_cannot_undo_is_a_user_error(tmp_path):
    """With SIGCHLD ignored, the kernel reaps children itself and their statuses are lost:
    every job of a build from a thread failed with 'exited with code 255', outputs deleted."""
    import threading

    from weavebuild import Project
    from weavebuild.errors import UsageError

    (tmp_path / "Weavefile").write_text('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > a.txt"\n')
    raised = []
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        def build() -> None:
            try:
                Project.load(str(tmp_path)).build(["a.txt"])
            except UsageError as exc:
                raised.append(exc)

        thread = threading.Thread(target=build)
        thread.start()
        thread.join(120)
        assert signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
        # From the main thread weave takes the default back for the build, and returns it.
        assert Project.load(str(tmp_path)).build(["a.txt"]).ok and (tmp_path / "a.txt").read_text() == "a\n"
        assert signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert len(raised) == 1 and "SIGCHLD is ignored in this program" in raised[0].message, raised

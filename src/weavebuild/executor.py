"""Executors start commands and report their completion; they know nothing of the graph.

The scheduler talks to the `Executor` interface (start → completions), so a distributed
executor can replace `LocalExecutor` without touching scheduling. `LocalExecutor` runs each
command with bash in strict mode (or, for plain programs and pipelines of them, starts the
programs itself), each process in its own session (process group), with output to a log file.
A job's output goes to a reusable spool file first, which becomes the job's log by a rename
only if the job printed something, failed, or ran long enough for someone to follow it: a
build of many silent jobs creates no file per job (creating files is what costs, on some file
systems ~0.3 ms each right after as many were deleted). It reaps each child with wait4,
which also gives CPU time and peak RSS: on Linux the builder's own thread waits on the
children's pidfds (a child's exit wakes it directly), elsewhere a reaper thread waits and
hands exits over through a queue.
"""

from __future__ import annotations

import collections
import errno
import os
import queue
import re
import select
import signal
import stat as stat_module
import sys
import threading
import time

from . import sched_latency, spawn

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable, Dict, List, Mapping, Optional, Set, Tuple

    # A process in the table: (parent pid, session id, resident bytes).
    ProcessTable = Dict[int, Tuple[int, int, int]]

_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
# The thread that starts jobs asks for a short time slice (sched_latency) once it has started
# this many: it matters for streams of short jobs, and a build of a few would only pay for
# loading ctypes (~2.5 ms).
SHORT_SLICE_AFTER = 16
UNWATCHED_POLL = 0.05  # seconds between looks at children that have no pidfd (out of descriptors)
# A job still running after this long gets its log file under its own name (for `tail -f`).
PROMOTE_AFTER = 1.0
# In every job's environment: the run of weave that started it (see kill_orphans).
RUN_ID_VARIABLE = "WEAVE_RUN_ID"
SPOOL_DIR = ".spool"  # beside the logs: the spool files of running jobs


class Completion:
    """A finished command: exit status (negative = killed by signal) and its resource use."""

    __slots__ = (
        "token", "returncode", "started", "ended", "peak_rss", "cpu_time", "timed_out", "cancelled", "log_written",
        "pids",
    )

    def __init__(self, token: object, returncode: int, started: float, ended: float, peak_rss: int, cpu_time: float):
        self.token = token
        self.returncode = returncode
        self.started = started
        self.ended = ended
        self.peak_rss = peak_rss
        self.cpu_time = cpu_time
        self.timed_out = False
        self.cancelled = False
        self.log_written = True  # False: the command printed nothing, and no log file was left
        self.pids: List[int] = []  # its processes (each the leader of its session), all ended

    @property
    def duration(self) -> float:
        return self.ended - self.started


class Executor:
    """Interface: start commands, wait for completions, cancel."""

    def start(
        self, token: object, command: str, env: Optional[Mapping[str, str]], cwd: str, log_path: str
    ) -> None:
        """Start `command` in `cwd` with output to `log_path`; `env=None` inherits weave's.
        An executor may leave no file at `log_path` for a command that succeeded without
        printing anything (its completion then says `log_written = False`), but never leaves
        an older log there."""
        raise NotImplementedError

    def output_path(self, token: object) -> Optional[str]:
        """Where the output of running command `token` is being written now, if not at its
        log path (None: at its log path, or not running)."""
        return None

    def wait(self, timeout: Optional[float]) -> List[Completion]:
        """Completions that arrived, waiting at most `timeout` seconds (None: until one does)."""
        raise NotImplementedError

    def cancel(self, token: object, force: bool = False, timed_out: bool = False, signum: Optional[int] = None) -> None:
        """Stop a running command: SIGTERM (or `signum`) to its process tree, or SIGKILL with
        `force`."""
        raise NotImplementedError

    @property
    def running(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def wake_on_signals(self) -> bool:
        """Make a signal caught by a Python handler end a wait() at once; True if it may."""
        return False

    @property
    def wakes_on_signals(self) -> bool:
        """Whether a signal caught by a Python handler now ends a wait() at once."""
        return False

    def stop_waking_on_signals(self) -> None:
        pass

    def stop_leftovers(self, completion: Completion) -> None:
        """Stop whatever a completed command left running (background processes in its
        sessions): the caller found the job failed although its command exited 0 (an output
        missing, say). A command that exited non-zero or was cancelled has none left."""


class _Running:
    """A started command: one process, or the stages of a pipeline started without a shell."""

    __slots__ = (
        "token", "processes", "started", "cancelled", "cancelled_at", "timed_out", "peak_rss",
        "statuses", "cpu_time", "maxrss", "discarded", "log_path", "log_dir", "spool_fd", "spool_path",
        "promoted",
    )

    def __init__(self, token: object, processes: List[spawn.Child], started: float):
        self.token = token
        self.processes = processes
        self.started = started
        self.discarded = False  # stages of a pipeline that could not be started whole
        self.log_path = ""
        self.log_dir = ""  # os.path.dirname(log_path), taken once
        self.spool_fd = -1  # the output file's descriptor while the job runs; -1 once settled
        self.spool_path = ""
        self.promoted = False  # the spool file was renamed to log_path while the job ran
        self.statuses: Dict[int, int] = {}  # pid -> exit code, as stages end
        self.cpu_time = 0.0
        self.maxrss = 0
        self.cancelled = False
        self.cancelled_at = 0.0
        self.timed_out = False
        self.peak_rss = 0  # sampled by the sampler thread; 0 = never sampled


class LocalExecutor(Executor):
    """Runs commands as local subprocesses: plain programs and pipelines of them directly,
    everything else with bash -euo pipefail -c CMD."""

    def __init__(
        self, shell: Optional[str] = None, sample_interval: float = 0.25, registry: Optional[str] = None
    ):
        self.shell = shell or _which("bash") or "/bin/bash"
        self._restore_sigchld = _reap_children_ourselves()
        # The registry lists running jobs (pid, start time), so that a later weave can kill
        # what a weave killed with SIGKILL left running (see kill_orphans).
        self.registry = registry
        self._registry_fd: Optional[int] = None
        # Every job of this executor inherits RUN_ID_VARIABLE (set in weave's own environment,
        # so that jobs started with env=None get it too): after a kill -9, what is left of a
        # job whose first process already exited is found by it (kill_orphans).
        self.run_id = f"{os.getpid()}-{time.time_ns()}"
        if registry is not None:
            _run_ids.enter(self.run_id)
        self.sample_interval = sample_interval
        self._sampler: Optional[threading.Thread] = None
        self._programs: Dict[Tuple[str, str, str], bool] = {}
        # (directory, PWD of the environment) -> the PWD a job there needs, or "" if that one.
        self._pwds: Dict[Tuple[str, Optional[str]], str] = {}
        self._own_rss = _own_maxrss()
        self._by_pid: Dict[int, _Running] = {}
        self._by_token: Dict[object, _Running] = {}
        # SimpleQueue: implemented in C, no Python-level locking on the per-job path.
        self._events: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        # One item per started child not yet reaped (a semaphore, without threading's
        # Python-level locking).
        self._children: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._closed = False
        self._reaper: Optional[threading.Thread] = None
        self._null_fd: Optional[int] = None
        # Linux: one pidfd per child, watched by epoll in wait(): an exit wakes the waiting
        # thread itself, without a hand-over from a reaper thread (one wake-up per job, not
        # two), and only our own children are reaped. None until the first child tells
        # whether the kernel allows pidfds.
        self._use_pidfd: Optional[bool] = None if hasattr(os, "pidfd_open") and hasattr(select, "epoll") else False
        self._epoll: Optional[select.epoll] = None
        self._pidfds: Dict[int, int] = {}  # pidfd -> pid
        self._unwatched: Set[int] = set()  # children whose pidfd could not be opened (EMFILE)
        # Empty spool files ready for the next job, by log directory: (descriptor, path).
        self._spools: Dict[str, List[Tuple[int, str]]] = {}
        self._spools_made = 0
        # The log files present in those directories (listed at first use, then kept up to
        # date): a silent job removes its older log only if there is one, without a failed
        # unlink per job.
        self._logs_present: Set[str] = set()
        # (when, job) in start order: jobs to give their named log file when still running.
        self._promotions: collections.deque[Tuple[float, _Running]] = collections.deque()
        self._started_count = 0
        # (read end, write end) of the pipe the interpreter writes a byte to on each signal
        # (signal.set_wakeup_fd), watched by the epoll: a Ctrl-C ends a wait at once.
        self._wakeup: Optional[Tuple[int, int]] = None

    def _ensure_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="weave-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        # One blocking wait4 per started child.
        while True:
            self._children.get()
            if self._closed:
                return
            while True:
                try:
                    pid, status, usage = os.wait4(-1, 0)
                except ChildProcessError:
                    time.sleep(0.001)  # the child is being forked right now; look again
                    continue
                except InterruptedError:
                    continue
                break
            self._events.put((pid, status, usage, time.monotonic()))

    def start(
        self, token: object, command: str, env: Optional[Mapping[str, str]], cwd: str, log_path: str
    ) -> None:
        """Start `command`; `env=None` inherits weave's environment (the cheapest spawn)."""
        if self.registry is not None and self._registry_fd is None:
            self._open_registry()
        self._ensure_threads()
        child_env = None if env is None else dict(env)
        pwd = self._pwd_for(cwd, child_env)
        if pwd:
            child_env = dict(os.environ if child_env is None else child_env, PWD=pwd)
        search = spawn.search_path(child_env)  # looked up once: os.environ's lookups are slow
        pipeline = self.pipeline(command, child_env, cwd, search)
        processes: Optional[List[spawn.Child]] = None
        log_dir = os.path.dirname(log_path)
        log, spool_path = self._take_spool(log_dir)
        try:
            if pipeline is not None:
                try:
                    processes = self._start_pipeline(pipeline, child_env, cwd, log, search)
                except OSError as exc:
                    # A program that cannot be exec'd: gone since it was looked up, or a script
                    # without a #! line (which bash runs itself). bash then does what it does,
                    # or says why it cannot, in its own words and exit status.
                    if exc.errno == errno.E2BIG:
                        raise
            if processes is None:
                argv = [self.shell, "-euo", "pipefail", "-c", command]
                processes = [self._spawn(argv, self._devnull(), log, log, cwd, child_env)]
        except BaseException:
            os.close(log)  # a stage that started may have written to it: never reused
            _unlink(spool_path)
            raise
        running = _Running(token, processes, time.monotonic())
        running.log_path, running.spool_fd, running.spool_path = log_path, log, spool_path
        running.log_dir = log_dir
        self._promotions.append((running.started + PROMOTE_AFTER, running))
        self._register(running)

    def output_path(self, token: object) -> Optional[str]:
        running = self._by_token.get(token)
        if running is None or running.spool_fd < 0 or running.promoted:
            return None
        return running.spool_path

    def _take_spool(self, directory: str) -> Tuple[int, str]:
        """An empty spool file for a log in `directory`, open for writing: a free one, or a new
        one. The first use of a directory removes what a weave that was killed left there."""
        free = self._spools.get(directory)
        if free:
            return free.pop()
        spool_dir = os.path.join(directory, SPOOL_DIR)
        if free is None:
            self._spools[directory] = []
            os.makedirs(spool_dir, exist_ok=True)
            with os.scandir(directory) as entries:
                self._logs_present.update(entry.path for entry in entries if entry.name != SPOOL_DIR)
            for name in os.listdir(spool_dir):  # PID-N: left by a weave that was killed?
                owner = name.partition("-")[0]
                if not (owner.isdigit() and _alive(int(owner))):
                    _unlink(os.path.join(spool_dir, name))
        self._spools_made += 1
        path = os.path.join(spool_dir, f"{os.getpid()}-{self._spools_made}")
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644), path

    def _settle_log(self, running: _Running, succeeded: bool) -> bool:
        """Turn a finished job's spool file into its log, or take it back for the next job if
        the job succeeded without printing anything (its older log, if any, is removed).
        True if a log file is left at the job's log path."""
        fd, running.spool_fd = running.spool_fd, -1
        if fd < 0:
            return True
        try:
            empty = os.lseek(fd, 0, os.SEEK_END) == 0  # also puts the shared offset back at 0
        except OSError:
            empty = False
        if empty and succeeded and not running.promoted and not _lingering(running):
            self._spools[running.log_dir].append((fd, running.spool_path))
            if running.log_path in self._logs_present:
                self._logs_present.discard(running.log_path)
                _unlink(running.log_path)
            return False
        os.close(fd)
        if running.promoted:
            if empty and succeeded and not _lingering(running):
                # Given its log file while it ran (for tail -f), and silent after all.
                self._logs_present.discard(running.log_path)
                _unlink(running.log_path)
                return False
            return True
        try:
            os.replace(running.spool_path, running.log_path)
        except OSError:  # the log directory went away meanwhile: the output is lost
            _unlink(running.spool_path)
            return False
        self._logs_present.add(running.log_path)
        return True

    def _promote_due(self) -> Optional[float]:
        """Rename the spool file of each job running for PROMOTE_AFTER to the job's log path
        (its process keeps writing to the same file). Seconds until the next is due, or None."""
        promotions = self._promotions
        now = time.monotonic()
        while promotions:
            due, running = promotions[0]
            if running.spool_fd >= 0:
                if due > now:
                    return due - now
                try:
                    os.replace(running.spool_path, running.log_path)
                    running.promoted = True
                    self._logs_present.add(running.log_path)
                except OSError:
                    pass  # settled at its end instead
            promotions.popleft()
        return None

    def _spawn(
        self, argv: List[str], stdin: int, stdout: int, stderr: int, cwd: str, env: Optional[Dict[str, str]], path: Optional[str] = None
    ) -> spawn.Child:
        # argv[0] as the user wrote it (messages read "cp: ...", as under bash), looked up on
        # the job's PATH at exec. Each job in its own session: killable as a tree, and
        # vfork-friendly.
        return spawn.start(argv, stdin, stdout, stderr, cwd, env, path)

    def _open_registry(self) -> None:
        """Open the registry for this run's lines, before its first job starts (a registry
        that cannot be written must stop the build with no job left running)."""
        assert self.registry is not None
        try:
            mode: Optional[int] = os.stat(self.registry).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not (stat_module.S_ISREG(mode) or stat_module.S_ISDIR(mode)):
            raise OSError(errno.EINVAL, "not a regular file", self.registry)  # a FIFO would block the open
        self._registry_fd = os.open(self.registry, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        # The run's line names this weave (pid, start time) too: a copy of the project made
        # while it builds has this registry, and must not take its jobs for orphans.
        owner = _start_ticks(os.getpid())
        owner_text = f" {os.getpid()} {owner}" if owner is not None else ""
        os.write(self._registry_fd, f"run {self.run_id}{owner_text}\n".encode())

    def _register(self, running: _Running) -> None:
        if self.registry is not None:
            now = time.time()
            # The job's key last (it may hold spaces): `weave status` tells running jobs by it.
            lines = "".join([f"{process.pid} {now:.3f} {running.token}\n" for process in running.processes])
            os.write(self._registry_fd, lines.encode("utf-8", "surrogateescape"))
        self._by_token[running.token] = running
        for process in running.processes:
            self._by_pid[process.pid] = running
            self._watch(process.pid)

    def wake_on_signals(self) -> bool:
        """With pidfds (Linux), make a signal that a Python handler catches (Ctrl-C) end a
        wait() at once: the handler only sets a flag, and without this the wait would go on to
        its timeout. Main thread only, and only where nothing else has the interpreter's wakeup
        fd (a running asyncio loop does): then the caller's timeouts must be short."""
        if self._use_pidfd is False or self._wakeup is not None:
            return self._wakeup is not None
        if threading.current_thread() is not threading.main_thread():
            return False
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        try:
            previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        except (ValueError, OSError):
            previous = None
        if previous != -1:  # refused, or someone else's: theirs stays
            if previous is not None:
                signal.set_wakeup_fd(previous)
            os.close(read_end)
            os.close(write_end)
            return False
        if self._epoll is None:
            self._epoll = select.epoll()
        self._epoll.register(read_end, select.EPOLLIN)
        self._wakeup = (read_end, write_end)
        return True

    @property
    def wakes_on_signals(self) -> bool:
        return self._wakeup is not None and self._use_pidfd is True  # (the reaper's queue is not woken)

    def stop_waking_on_signals(self) -> None:
        if self._wakeup is None:
            return
        read_end, write_end = self._wakeup
        self._wakeup = None
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:  # pragma: no cover - closed from another thread: the fd stays set
            pass
        if self._epoll is not None:
            self._epoll.unregister(read_end)
        os.close(read_end)
        os.close(write_end)

    def _watch(self, pid: int) -> None:
        """Arrange for the exit of child `pid` to be seen by wait()."""
        if self._use_pidfd is not False:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                if self._use_pidfd is None:  # no pidfds here (old kernel, seccomp): a reaper
                    self._use_pidfd = False
                else:  # out of descriptors: wait() polls this one with WNOHANG
                    self._unwatched.add(pid)
                    return
            else:
                if self._epoll is None:
                    self._epoll = select.epoll()
                self._use_pidfd = True
                self._epoll.register(fd, select.EPOLLIN)
                self._pidfds[fd] = pid
                return
        self._ensure_reaper()
        self._children.put(None)

    def pipeline(
        self, command: str, env: Optional[Mapping[str, str]] = None, cwd: str = ".", path: Optional[str] = None
    ) -> Optional[Tuple[List[List[str]], Optional[str], Optional[str], bool]]:
        """(argv of each stage, input file, output file, append) for a command that is only
        plain programs with plain words (`cp a b`), or such programs joined by `|`, with at
        most `< FILE` on the first stage and `> FILE` or `>> FILE` on the last; else None: no
        quoting, expansion, builtins, or programs bash would not find, with the PATH of `env`
        (weave's own if None; `path`, if given, is that PATH) and `cwd` as its directory
        (bash reports "command not found" with its exit code 127).

        bash in strict mode would only start these programs, connect them and wait: weave does
        that itself, as make does for plain commands, which saves starting bash (the larger
        part of a small job's cost) and gives the same result: with pipefail, the status of
        the rightmost stage that failed (128 + N for a stage killed by signal N)."""
        if "\n" in command.strip() or not _PIPELINE_COMMAND.match(command):
            return None
        # No cap on the words: a fan-in over thousands of paths fits the kernel's limit for
        # all arguments together (ARG_MAX, 2 MB) long after it outgrows bash -c, whose whole
        # command is one argument (at most 128 KiB).
        words = command.split()
        if "|" not in command and "<" not in command and ">" not in command:
            # One plain program (most commands): its words are its argv.
            parsed: Optional[Tuple[List[List[str]], Optional[str], Optional[str], bool]] = ([words], None, None, False)
        else:
            parsed = _split_stages(words)
            if parsed is None:
                return None
        search = spawn.search_path(env) if path is None else path
        for stage in parsed[0]:
            first = stage[0]
            if first in _BASH_WORDS or "=" in first or not self._runnable(first, search, cwd):
                return None
        return parsed

    def _start_pipeline(
        self,
        pipeline: Tuple[List[List[str]], Optional[str], Optional[str], bool],
        env: Optional[Dict[str, str]],
        cwd: str,
        log: int,
        path: Optional[str] = None,
    ) -> Optional[List[spawn.Child]]:
        """Start the stages of `pipeline`, each in its own session, with stderr to the log; None
        when a redirection cannot be opened (bash then reports it in its own words)."""
        argvs, source, target, append = pipeline
        opened: List[int] = []
        try:
            try:
                if source is not None:
                    opened.append(os.open(os.path.join(cwd, source), os.O_RDONLY | os.O_CLOEXEC))
                if target is not None:
                    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
                    opened.append(os.open(os.path.join(cwd, target), flags, 0o666))
            except OSError:
                return None
            stdin = opened[0] if source is not None else self._devnull()
            last_stdout = opened[-1] if target is not None else log
            processes: List[spawn.Child] = []
            try:
                for position, argv in enumerate(argvs):
                    if position < len(argvs) - 1:
                        read_end, write_end = os.pipe()
                        opened += [read_end, write_end]
                        processes.append(self._spawn(argv, stdin, write_end, log, cwd, env, path))
                        stdin = read_end
                    else:
                        processes.append(self._spawn(argv, stdin, last_stdout, log, cwd, env, path))
            except OSError:
                # Stop the stages already started, and let the reaper account for them.
                for process in processes:
                    _kill_group(process.pid, signal.SIGKILL)
                if processes:
                    discarded = _Running(object(), processes, time.monotonic())
                    discarded.discarded = True
                    self._register(discarded)
                raise
            return processes
        finally:
            for fd in opened:  # the children hold their own copies
                os.close(fd)

    def _pwd_for(self, cwd: str, env: Optional[Mapping[str, str]]) -> str:
        """The PWD a job started in `cwd` must be given, or "" when that of `env` (weave's own
        if None) will do. bash keeps an inherited PWD only if it names its directory, and
        otherwise sets it to the directory's physical path: a job started without bash gets
        the same (weave's own PWD differs from the project directory with `-f DIR/Weavefile`)."""
        inherited = (os.environ if env is None else env).get("PWD")
        key = (cwd, inherited)
        pwd = self._pwds.get(key)
        if pwd is None:
            try:
                names_cwd = bool(inherited) and os.path.isabs(inherited) and os.path.samefile(inherited, cwd)
            except OSError:
                names_cwd = False
            pwd = self._pwds[key] = "" if names_cwd else os.path.realpath(cwd)
        return pwd

    def _runnable(self, name: str, path: str, cwd: str) -> bool:
        """Whether bash, with `path` as PATH and `cwd` as its directory, would find a program
        `name` among the files spawn would try. Looked up once per build; the process itself
        is then started with the whole PATH, searched at exec as bash would, so a program
        installed meanwhile ahead of the one found here is the one that runs."""
        key = (name, path, cwd)
        found = self._programs.get(key)
        if found is None:
            found = self._programs[key] = any(
                _is_program(os.path.join(cwd, candidate)) for candidate in spawn.candidates(name, path)
            )
        return found

    def _devnull(self) -> int:
        """One /dev/null descriptor for every job's stdin (Popen opens one per process)."""
        if self._null_fd is None:
            self._null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return self._null_fd

    def _ensure_threads(self) -> None:
        self._started_count += 1
        if self._started_count == SHORT_SLICE_AFTER:
            sched_latency.shorten_slice()
        if self._sampler is None and self.sample_interval:
            self._sampler = threading.Thread(target=self._sample, name="weave-sampler", daemon=True)
            self._sampler.start()

    def _sample(self) -> None:
        """Peak RSS of each job's whole process tree: its processes' sessions (each started in
        its own) and their descendants. Jobs shorter than one interval are never sampled. On
        Linux one pass over /proc per round serves every job (psutil's children() reads all
        of /proc per call: per job and round, a few ms each with -j 8 on a busy machine, and
        importing psutil costs ~30 ms of a short build); elsewhere psutil does it."""
        # While the main thread starts a job (vfork), it blocks every signal: the SIGCHLD of a
        # job that ends then would be handed to this thread, waking it for nothing, once per
        # job. Blocked here, it waits for the main thread, which discards it.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        while not self._closed:
            time.sleep(self.sample_interval)
            now = time.monotonic()
            due = [r for r in list(self._by_token.values()) if now - r.started >= self.sample_interval]
            if not due:
                continue
            table = _process_table()
            for running in due:
                total = _tree_rss(table, [stage.pid for stage in running.processes])
                if total > running.peak_rss:
                    running.peak_rss = total

    def wait(self, timeout: Optional[float]) -> List[Completion]:
        if self._promotions:
            until = self._promote_due()
            if until is not None and (timeout is None or until < timeout):
                timeout = until
        if self._use_pidfd:
            return self._wait_pidfds(timeout)
        completions: List[Completion] = []
        try:
            event = self._events.get(timeout=timeout) if timeout is None or timeout > 0 else self._events.get_nowait()
        except queue.Empty:
            return completions
        while True:
            completion = self._complete(*event)
            if completion is not None:
                completions.append(completion)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return completions

    def _wait_pidfds(self, timeout: Optional[float]) -> List[Completion]:
        assert self._epoll is not None
        if self._unwatched:
            timeout = UNWATCHED_POLL if timeout is None else min(timeout, UNWATCHED_POLL)
        completions: List[Completion] = []
        wakeup = self._wakeup[0] if self._wakeup is not None else -1
        for fd, _ in self._epoll.poll(-1 if timeout is None else timeout):
            if fd == wakeup:  # a signal: its handler has run; the caller looks at what it set
                try:
                    while os.read(fd, 512):
                        pass
                except BlockingIOError:
                    pass
                continue
            pid = self._pidfds.pop(fd)
            os.close(fd)  # which also takes it out of the epoll set
            self._reap_child(pid, 0, completions)  # it has exited: wait4 returns at once
        for pid in list(self._unwatched):
            if self._reap_child(pid, os.WNOHANG, completions):
                self._unwatched.discard(pid)
        return completions

    def _reap_child(self, pid: int, options: int, completions: List[Completion]) -> bool:
        """wait4 on child `pid`; add its job's completion if that was its last process. False
        while it still runs (with WNOHANG)."""
        try:
            reaped, status, usage = os.wait4(pid, options)
        except ChildProcessError:  # reaped behind our back: unknown status, never a success
            reaped, status, usage = pid, _UNKNOWN_STATUS, None
        if reaped == 0:
            return False
        completion = self._complete(pid, status, usage, time.monotonic())
        if completion is not None:
            completions.append(completion)
        return True

    def _complete(self, pid: int, status: int, usage: object, ended: float) -> Optional[Completion]:
        running = self._by_pid.pop(pid, None)
        if running is None:
            return None  # not ours (cannot happen while weave starts children only here)
        code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else _exitcode(status)
        running.statuses[pid] = code
        running.cpu_time += float(getattr(usage, "ru_utime", 0.0)) + float(getattr(usage, "ru_stime", 0.0))
        running.maxrss = max(running.maxrss, int(getattr(usage, "ru_maxrss", 0)) * _MAXRSS_UNIT)
        if len(running.statuses) < len(running.processes):
            return None  # a pipeline whose other stages still run
        del self._by_token[running.token]
        if running.discarded:
            return None
        if len(running.processes) == 1:
            returncode = code
        else:  # pipefail: the rightmost failure; a stage killed by signal N counts as 128 + N
            failures = [running.statuses[p.pid] for p in running.processes if running.statuses[p.pid] != 0]
            returncode = 0 if not failures else (failures[-1] if failures[-1] > 0 else 128 - failures[-1])
        completion = Completion(
            running.token,
            returncode,
            running.started,
            ended,
            self._peak_rss(running),
            running.cpu_time,
        )
        # A job that exited before it was cancelled did finish: its result stands.
        completion.cancelled = running.cancelled and ended >= running.cancelled_at
        completion.timed_out = running.timed_out
        completion.log_written = self._settle_log(running, returncode == 0 and not running.cancelled)
        completion.pids = [process.pid for process in running.processes]
        if returncode != 0 or running.cancelled:
            # A failed, timed-out or cancelled job leaves no process behind: not in its groups,
            # nor in its sessions (a child that made a group of its own, `set -m` or setpgid,
            # stays in the session, which its ended leader's pid names), nor below them. (A
            # cancelled command may exit 0: a trap that exits cleanly on SIGINT.)
            self.stop_leftovers(completion)
        return completion

    def stop_leftovers(self, completion: Completion) -> None:
        for pid in completion.pids:
            kill_tree(pid, signal.SIGKILL)

    def _peak_rss(self, running: _Running) -> int:
        """Sampled peak of the process tree; else wait4's ru_maxrss (the largest stage's),
        unless that is only the high-water mark of weave's own image, inherited before exec
        (0 = unknown)."""
        if running.peak_rss:
            return running.peak_rss
        return running.maxrss if running.maxrss > self._own_rss else 0

    def cancel(self, token: object, force: bool = False, timed_out: bool = False, signum: Optional[int] = None) -> None:
        running = self._by_token.get(token)
        if running is None:
            return
        if not running.cancelled:
            running.cancelled = True
            running.cancelled_at = time.monotonic()
        running.timed_out = running.timed_out or timed_out
        for process in running.processes:
            if process.pid not in running.statuses:
                kill_tree(process.pid, signal.SIGKILL if force else signum or signal.SIGTERM)

    def tokens(self) -> List[object]:
        return list(self._by_token)

    @property
    def running(self) -> int:
        return len(self._by_token)

    def close(self) -> None:
        self.stop_waking_on_signals()
        for token in list(self._by_token):
            self.cancel(token, force=True)
        deadline = time.monotonic() + 5
        while self._by_token and time.monotonic() < deadline:
            self.wait(0.1)
        self._closed = True
        self._children.put(None)
        sched_latency.restore_slice()
        for fd in self._pidfds:
            os.close(fd)
        self._pidfds.clear()
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        if self._null_fd is not None:
            os.close(self._null_fd)
            self._null_fd = None
        for running in self._by_token.values():  # could not be reaped: its output stays in its spool
            if running.spool_fd >= 0:
                os.close(running.spool_fd)
                running.spool_fd = -1
        for directory, spools in self._spools.items():
            for fd, path in spools:
                os.close(fd)
                _unlink(path)
            try:
                os.rmdir(os.path.join(directory, SPOOL_DIR))
            except OSError:
                pass  # a job still writes (or a killed weave's spool is there): left
        self._spools.clear()
        if self._restore_sigchld and not self._by_token:
            self._restore_sigchld = False
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_IGN)
            except ValueError:  # closed from another thread: leave the default
                pass
        if self._registry_fd is not None:
            if not self._by_token:
                os.ftruncate(self._registry_fd, 0)  # every job is accounted for
            os.close(self._registry_fd)
            self._registry_fd = None
        if self.registry is not None:
            _run_ids.leave(self.run_id)


class _RunIds:
    """RUN_ID_VARIABLE in weave's environment while executors run: the newest running one's,
    and, once none runs, what it was before the first (builds overlapping in threads of one
    program each put theirs, and end in any order)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: List[str] = []
        self._before: Optional[str] = None

    def enter(self, run_id: str) -> None:
        with self._lock:
            if not self._running:
                self._before = os.environ.get(RUN_ID_VARIABLE)
            self._running.append(run_id)
            os.environ[RUN_ID_VARIABLE] = run_id

    def leave(self, run_id: str) -> None:
        with self._lock:
            if run_id not in self._running:
                return  # closed twice
            self._running.remove(run_id)
            if self._running:
                os.environ[RUN_ID_VARIABLE] = self._running[-1]
            elif self._before is None:
                os.environ.pop(RUN_ID_VARIABLE, None)
            else:
                os.environ[RUN_ID_VARIABLE] = self._before


_run_ids = _RunIds()


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _process_table() -> Optional[ProcessTable]:
    """Every process's parent, session and RSS, from one read of /proc/PID/stat each; None
    where there is no /proc (psutil then)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    table: ProcessTable = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
            fields = data[data.rindex(b")") + 2 :].split()  # after the name, which may hold spaces
            # fields[0] is field 3 of proc(5): ppid is 4, session 6, rss (pages) 24.
            table[int(name)] = (int(fields[1]), int(fields[3]), int(fields[21]) * _PAGE_SIZE)
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return table


def _tree_rss(table: Optional[ProcessTable], roots: List[int]) -> int:
    """Resident bytes of the processes in the sessions of `roots` (each a job's process, the
    leader of its own session) and of every descendant of those."""
    if table is None:
        return _tree_rss_psutil(roots)
    tree = _descendants(table, roots, sessions=set(roots))
    return sum(table[pid][2] for pid in list(roots) + tree if pid in table)


def _descendants(table: ProcessTable, roots: List[int], sessions: Set[int]) -> List[int]:
    """The processes below `roots` (not the roots themselves), and those in `sessions` with
    everything below them."""
    children: Dict[int, List[int]] = {}
    members: List[int] = []
    for pid, (ppid, session, _) in table.items():
        children.setdefault(ppid, []).append(pid)
        if session in sessions:
            members.append(pid)
    seen: Set[int] = set(roots)
    found: List[int] = []
    stack = [child for root in roots for child in children.get(root, ())] + members
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _tree_rss_psutil(roots: List[int]) -> int:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        return 0
    processes = []
    for pid in roots:
        try:
            root = psutil.Process(pid)
            processes += [root] + root.children(recursive=True)
        except psutil.Error:
            continue
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total


def _start_ticks(pid: int) -> Optional[str]:
    """When process `pid` started, in clock ticks since boot (/proc/PID/stat field 22): with
    the pid, names one process for good. None where there is no /proc, or no such process,
    or it has ended and only waits to be reaped (a zombie: a weave killed with -9 whose
    parent has not waited for it yet has released the project lock and runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
        fields = data[data.rindex(b")") + 2 :].split()  # the name may hold spaces
        if fields[0] in (b"Z", b"X"):
            return None
        return fields[19].decode()
    except (OSError, ValueError, IndexError):
        return None


def _read_registry(registry: str) -> Optional[List[Tuple[int, float, str, Optional[str], Optional[int]]]]:
    """The jobs a registry lists: (pid, start time, job key, run id, the pid of that run's
    weave if it still runs, else None); None if it cannot be read. Each job line belongs to
    the run line above it; a run line names its weave (pid, /proc start ticks) from 0.1.x on,
    a job line its key."""
    from .projectfile import read_regular_file

    try:
        lines = read_regular_file(registry).decode("utf-8", "surrogateescape").split("\n")
    except OSError:
        return None
    entries: List[Tuple[int, float, str, Optional[str], Optional[int]]] = []
    run_id: Optional[str] = None
    owner: Optional[int] = None
    for line in lines:
        parts = line.split(maxsplit=2)
        if parts[:1] == ["run"]:
            fields = line.split()
            run_id = fields[1] if len(fields) > 1 else None
            alive = len(fields) == 4 and fields[2].isdigit() and _start_ticks(int(fields[2])) == fields[3]
            owner = int(fields[2]) if alive else None
        elif len(parts) >= 2:
            try:
                entries.append((int(parts[0]), float(parts[1]), parts[2] if len(parts) > 2 else "", run_id, owner))
            except ValueError:
                continue
    return entries


def job_pids_of(registry: str, owner: int) -> Set[int]:
    """The pids of the job processes the running weave `owner` lists in `registry`."""
    return {pid for pid, _, _, _, listed_by in _read_registry(registry) or [] if listed_by == owner}


def running_jobs(registry: str) -> Dict[str, int]:
    """Job key -> pid of the jobs a weave that is still running lists in `registry` as started
    and whose process is alive (a job runs while any of its processes does): what a build is
    running now (for `weave status`)."""
    return {
        key: owner
        for pid, _, key, _, owner in _read_registry(registry) or []
        if owner is not None and key and _alive(pid)
    }


def kill_orphans(registry: str) -> int:
    """Kill jobs that a weave which died (kill -9, OOM, power loss) left running, as listed in
    its registry; call with the project lock held, so no live weave of this project owns them
    (the jobs of a weave still running, which a registry copied with the project names, are
    left alone). Returns how many
    jobs had processes killed. A recorded pid counts only if its process started when it was
    recorded, so a reused pid is never killed. A job whose first process has exited (and was
    reaped by init) may have left others in its session: those are found by the run's id in
    their environment, so no other process is ever taken for one of them."""
    listed = _read_registry(registry)
    if listed is None:
        return 0
    # A live weave's jobs are that weave's, in the project it builds (this is a copy).
    entries = [(pid, started, run) for pid, started, _, run, owner in listed if owner is None]
    hit: Set[int] = set()
    if entries:
        import psutil

        gone: Dict[str, Set[int]] = {}  # run id -> its jobs whose first process has exited
        for pid, started, run in entries:
            try:
                process = psutil.Process(pid)
                if abs(process.create_time() - started) > 2.0:
                    continue
            except psutil.NoSuchProcess:
                if run is not None:
                    gone.setdefault(run, set()).add(pid)
                continue
            except psutil.Error:
                continue
            kill_tree(pid, signal.SIGKILL)
            hit.add(pid)
        if gone:
            hit.update(_kill_leftovers(gone))
    try:
        os.truncate(registry, 0)
    except OSError:
        pass
    return len(hit)


def _kill_leftovers(sessions: Dict[str, Set[int]]) -> Set[int]:
    """SIGKILL each process in a session of `sessions[run]` (the pids of a run's jobs' first
    processes, each its own session) whose environment holds that run's id; the sessions it
    found processes in."""
    import psutil

    run_of = {session: run for run, members in sessions.items() for session in members}
    found: Set[int] = set()
    own_uid = os.getuid()
    for process in psutil.process_iter(["uids"]):
        try:
            if process.info["uids"] is None or process.info["uids"].real != own_uid:
                continue
            session = os.getsid(process.pid)
            run = run_of.get(session)
            if run is None or process.environ().get(RUN_ID_VARIABLE) != run:
                continue
            process.kill()
        except (psutil.Error, OSError):
            continue
        found.add(session)
    return found


def _own_maxrss() -> int:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT
    except (ImportError, OSError):  # pragma: no cover
        return 0


# Words bash treats specially as the first word of a command: such commands always run in bash.
_BASH_WORDS = frozenset(
    """alias bg bind break builtin caller cd command compgen complete compopt continue declare
    dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill
    let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt
    source suspend test times trap true type typeset ulimit umask unalias unset wait if then else
    elif fi case esac for select while until do done in function time coproc""".split()
)
_OPERATORS = ("|", "<", ">", ">>")
# Plain words and the operators |, <, >, >> standing alone (a pipeline weave starts itself).
_PIPELINE_COMMAND = re.compile(r"\s*[A-Za-z0-9_./@:+,%=|<>-]+(?:\s+[A-Za-z0-9_./@:+,%=|<>-]+)*\s*\Z")


# A character that makes a word part of a pipe or redirection (`a>b`): one regex search per
# word, not a generator (a command of a thousand file names is split for every job).
_PIPE_OR_REDIRECT = re.compile(r"[|<>]")


def _split_stages(words: List[str]) -> Optional[Tuple[List[List[str]], Optional[str], Optional[str], bool]]:
    """A command's words (with `|`, `<`, `>` or `>>` among them) as LocalExecutor.pipeline
    takes them: (argv of each stage, input file, output file, append), or None."""
    stages: List[List[str]] = [[]]
    source: Optional[str] = None
    target: Optional[str] = None
    append = False
    redirected = False  # a redirection ended this stage's words
    index = 0
    while index < len(words):
        word = words[index]
        if word == "|":
            if not stages[-1] or target is not None:
                return None
            stages.append([])
            redirected = False
        elif word in ("<", ">", ">>"):
            if index + 1 >= len(words) or not stages[-1]:
                return None
            index += 1
            file = words[index]
            if file in _OPERATORS or _PIPE_OR_REDIRECT.search(file):
                return None
            if word == "<":
                if len(stages) > 1 or source is not None:
                    return None
                source = file
            elif target is not None:
                return None
            else:
                target, append = file, word == ">>"
            redirected = True
        else:
            if redirected or _PIPE_OR_REDIRECT.search(word):
                return None  # `a>b`, or words after a redirection: left to bash
            stages[-1].append(word)
        index += 1
    if not stages[-1]:
        return None
    return stages, source, target, append


_UNKNOWN_STATUS = 255 << 8  # a wait status meaning "exited with 255"


def _reap_children_ourselves() -> bool:
    """An ignored SIGCHLD (inherited from a careless parent) makes the kernel reap children
    itself, and their exit statuses are lost: weave needs them, so it takes the default
    disposition back (possible from the main thread only). True if it did: close() then
    gives an embedding program its setting back."""
    try:
        if signal.getsignal(signal.SIGCHLD) != signal.SIG_IGN:
            return False
    except AttributeError:  # no SIGCHLD (Windows)
        return False
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    except ValueError:  # not the main thread: every job would seem to fail (status lost)
        from .errors import UsageError

        raise UsageError(
            "SIGCHLD is ignored in this program, and weave, called from a thread other than the main one,"
            " cannot undo that: the exit status of every job would be lost",
            hint="call signal.signal(signal.SIGCHLD, signal.SIG_DFL) in the main thread first, or build from the main thread",
        ) from None
    return True


def _is_program(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _exitcode(status: int) -> int:  # pragma: no cover - Python < 3.9 fallback
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _exists(send: Callable[[int, int], None], target: int) -> bool:
    """Whether process (or process group) `target` exists: signal 0 through `send`."""
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except OSError:  # there, but not ours to signal
        return True
    return True


def _which(name: str) -> Optional[str]:
    """`name` as found on PATH (shutil.which's answer for a plain name, without importing
    shutil and the compression modules it loads on every build)."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or os.curdir, name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def _alive(pid: int) -> bool:
    return _exists(os.kill, pid)


def _lingering(running: _Running) -> bool:
    """Whether a process is left in one of the job's process groups (a background process
    that may still write to the job's output)."""
    return any(_exists(os.killpg, process.pid) for process in running.processes)


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(pid: int, sig: int) -> None:
    """Signal a job's process group and every descendant, including ones that left the group,
    and every process still in its session (the job's process is its leader, alive or not
    yet reaped, so its pid names the session): a child that made a group of its own (a
    subshell with job control, `set -m`) and whose parent ended is no descendant any more,
    but it stays in the session."""
    table = _process_table()
    if table is not None:
        descendants = _descendants(table, [pid], sessions={pid})
    else:  # no /proc: psutil
        descendants = []
        try:
            import psutil  # imported here: only interrupts, timeouts and failures pay for it

            try:
                descendants = [child.pid for child in psutil.Process(pid).children(recursive=True)]
            except psutil.Error:
                descendants = []
        except ImportError:  # pragma: no cover - psutil is a dependency
            pass
    _kill_group(pid, sig)
    seen: Set[int] = set()
    for child in descendants:
        if child in seen:
            continue
        seen.add(child)
        try:
            os.kill(child, sig)
        except (ProcessLookupError, PermissionError):
            pass

"""Executors start commands and report their completion; they know nothing of the graph.

The scheduler talks to the `Executor` interface (start → completions), so a distributed
executor can replace `LocalExecutor` without touching scheduling. `LocalExecutor` runs each
command with bash in strict mode, in its own session (process group), with output to a log
file, and reaps children with wait4 in one thread, which also gives peak RSS and CPU time.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Mapping, Optional, Set

_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux


class Completion:
    """A finished command: exit status (negative = killed by signal) and its resource use."""

    __slots__ = ("token", "returncode", "started", "ended", "peak_rss", "cpu_time", "timed_out", "cancelled")

    def __init__(self, token: object, returncode: int, started: float, ended: float, peak_rss: int, cpu_time: float):
        self.token = token
        self.returncode = returncode
        self.started = started
        self.ended = ended
        self.peak_rss = peak_rss
        self.cpu_time = cpu_time
        self.timed_out = False
        self.cancelled = False

    @property
    def duration(self) -> float:
        return self.ended - self.started


class Executor:
    """Interface: start commands, wait for completions, cancel."""

    def start(
        self, token: object, command: str, env: Optional[Mapping[str, str]], cwd: str, log_path: str
    ) -> None:
        """Start `command` in `cwd` with output to `log_path`; `env=None` inherits weave's."""
        raise NotImplementedError

    def wait(self, timeout: Optional[float]) -> List[Completion]:
        """Completions that arrived, waiting at most `timeout` seconds (None: until one does)."""
        raise NotImplementedError

    def cancel(self, token: object, force: bool = False, timed_out: bool = False) -> None:
        """Stop a running command: SIGTERM to its process tree, or SIGKILL with `force`."""
        raise NotImplementedError

    @property
    def running(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Running:
    __slots__ = ("token", "process", "started", "pid", "cancelled", "cancelled_at", "timed_out", "peak_rss")

    def __init__(self, token: object, process: subprocess.Popen, started: float):
        self.token = token
        self.process = process
        self.started = started
        self.pid = process.pid
        self.cancelled = False
        self.cancelled_at = 0.0
        self.timed_out = False
        self.peak_rss = 0  # sampled by the sampler thread; 0 = never sampled


class LocalExecutor(Executor):
    """Runs commands as local subprocesses (bash -euo pipefail -c CMD)."""

    def __init__(
        self, shell: Optional[str] = None, sample_interval: float = 0.25, registry: Optional[str] = None
    ):
        self.shell = shell or shutil.which("bash") or "/bin/bash"
        # The registry lists running jobs (pid, start time), so that a later weave can kill
        # what a weave killed with SIGKILL left running (see kill_orphans).
        self.registry = registry
        self._registry_fd: Optional[int] = None
        self.sample_interval = sample_interval
        self._sampler: Optional[threading.Thread] = None
        self._programs: Dict[str, str] = {}
        self._own_rss = _own_maxrss()
        self._by_pid: Dict[int, _Running] = {}
        self._by_token: Dict[object, _Running] = {}
        self._events: queue.Queue[tuple] = queue.Queue()
        self._children = threading.Semaphore(0)
        self._closed = False
        self._reaper: Optional[threading.Thread] = None

    def _ensure_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="weave-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        # One blocking wait4 per started child; the semaphore counts children not yet reaped.
        while True:
            self._children.acquire()
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
        self._ensure_threads()
        argv = self.simple_argv(command) or [self.shell, "-euo", "pipefail", "-c", command]
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
                start_new_session=True,  # own process group: killable as a tree; vfork-friendly
                close_fds=True,
            )
        finally:
            os.close(log)
        running = _Running(token, process, time.monotonic())
        if self.registry is not None:
            if self._registry_fd is None:
                self._registry_fd = os.open(
                    self.registry, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
                )
            os.write(self._registry_fd, f"{process.pid} {time.time():.3f}\n".encode())
        self._by_pid[process.pid] = running
        self._by_token[token] = running
        self._children.release()

    def simple_argv(self, command: str) -> Optional[List[str]]:
        """argv for a command bash would run as one plain program (`cp a b`), else None.

        Like make, skip the shell when it would add nothing: no quoting, expansion, redirection,
        operators or builtins. This halves the cost of trivial jobs; anything else runs under
        `bash -euo pipefail -c`.
        """
        words = command.split()
        if not words or len(words) > 64 or "\n" in command.strip():
            return None
        first = words[0]
        if first in _BASH_WORDS or "=" in first or not all(_SIMPLE_WORD.match(w) for w in words):
            return None
        program = self._programs.get(first)
        if program is None:
            program = shutil.which(first) or ""
            self._programs[first] = program
        if not program:
            return None  # let bash report "command not found" with its exit code 127
        return [program] + words[1:]

    def _ensure_threads(self) -> None:
        self._ensure_reaper()
        if self._sampler is None and self.sample_interval:
            self._sampler = threading.Thread(target=self._sample, name="weave-sampler", daemon=True)
            self._sampler.start()

    def _sample(self) -> None:
        """Peak RSS of each job's whole process tree, sampled with psutil. Jobs shorter than
        one interval are never sampled, so trivial jobs cost nothing here (psutil is imported
        after the first interval: builds that end sooner never pay for the import)."""
        psutil = None
        while not self._closed:
            time.sleep(self.sample_interval)
            if psutil is None:
                try:
                    import psutil
                except ImportError:  # pragma: no cover - psutil is a dependency
                    return
            now = time.monotonic()
            for running in list(self._by_pid.values()):
                if now - running.started < self.sample_interval:
                    continue
                try:
                    root = psutil.Process(running.pid)
                    processes = [root] + root.children(recursive=True)
                except psutil.Error:
                    continue
                total = 0
                for process in processes:
                    try:
                        total += process.memory_info().rss
                    except psutil.Error:
                        pass
                if total > running.peak_rss:
                    running.peak_rss = total

    def wait(self, timeout: Optional[float]) -> List[Completion]:
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

    def _complete(self, pid: int, status: int, usage: object, ended: float) -> Optional[Completion]:
        running = self._by_pid.pop(pid, None)
        if running is None:
            return None  # not ours (cannot happen while weave starts children only here)
        del self._by_token[running.token]
        returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else _exitcode(status)
        running.process.returncode = returncode  # reaped by us: stop Popen from waiting again
        completion = Completion(
            running.token,
            returncode,
            running.started,
            ended,
            self._peak_rss(running, usage),
            float(getattr(usage, "ru_utime", 0.0)) + float(getattr(usage, "ru_stime", 0.0)),
        )
        # A job that exited before it was cancelled did finish: its result stands.
        completion.cancelled = running.cancelled and ended >= running.cancelled_at
        completion.timed_out = running.timed_out
        if returncode != 0:
            # A failed, timed-out or cancelled job leaves no process behind in its group.
            _kill_group(pid, signal.SIGKILL)
        return completion

    def _peak_rss(self, running: _Running, usage: object) -> int:
        """Sampled peak of the process tree; else wait4's ru_maxrss, unless that is only the
        high-water mark of weave's own image, inherited before exec (0 = unknown)."""
        if running.peak_rss:
            return running.peak_rss
        maxrss = int(getattr(usage, "ru_maxrss", 0)) * _MAXRSS_UNIT
        return maxrss if maxrss > self._own_rss else 0

    def cancel(self, token: object, force: bool = False, timed_out: bool = False) -> None:
        running = self._by_token.get(token)
        if running is None:
            return
        if not running.cancelled:
            running.cancelled = True
            running.cancelled_at = time.monotonic()
        running.timed_out = running.timed_out or timed_out
        kill_tree(running.pid, signal.SIGKILL if force else signal.SIGTERM)

    def tokens(self) -> List[object]:
        return list(self._by_token)

    @property
    def running(self) -> int:
        return len(self._by_token)

    def close(self) -> None:
        for token in list(self._by_token):
            self.cancel(token, force=True)
        deadline = time.monotonic() + 5
        while self._by_token and time.monotonic() < deadline:
            self.wait(0.1)
        self._closed = True
        self._children.release()
        if self._registry_fd is not None:
            if not self._by_token:
                os.ftruncate(self._registry_fd, 0)  # every job is accounted for
            os.close(self._registry_fd)
            self._registry_fd = None


def kill_orphans(registry: str) -> int:
    """Kill jobs that a weave which died (kill -9, OOM, power loss) left running, as listed in
    its registry; call with the project lock held, so no live weave owns them. Returns how many
    process groups were killed. A pid counts only if its process started when it was recorded,
    so a reused pid is never killed."""
    try:
        with open(registry) as handle:
            lines = handle.read().split("\n")
    except OSError:
        return 0
    entries = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2:
            try:
                entries.append((int(parts[0]), float(parts[1])))
            except ValueError:
                continue
    killed = 0
    if entries:
        import psutil

        for pid, started in entries:
            try:
                process = psutil.Process(pid)
                if abs(process.create_time() - started) > 2.0:
                    continue
            except psutil.Error:
                continue
            kill_tree(pid, signal.SIGKILL)
            killed += 1
    try:
        os.truncate(registry, 0)
    except OSError:
        pass
    return killed


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
_SIMPLE_WORD = re.compile(r"[A-Za-z0-9_./@:+,%=-]+\Z")


def _exitcode(status: int) -> int:  # pragma: no cover - Python < 3.9 fallback
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(pid: int, sig: int) -> None:
    """Signal a job's process group and every descendant, including ones that left the group."""
    descendants: List[int] = []
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

"""One writer per project: an OS-level lock on `.weave/lock` (fcntl.flock), and on the
project directory itself where the file system allows it.

The kernel drops the lock when its holder dies, however it dies, so a stale lock can never
block a build; the pid written into the file is only there to name the holder in messages.
"""

from __future__ import annotations

import errno
import os

from .errors import Interrupted, LockedError

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    import threading
    from typing import Callable, List, Optional

# What flock says when another process holds the lock (LOCK_NB).
_HELD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)

_SIGINT = 2  # what a `stop` request counts as (Interrupted(..., requested=True)), as in builder.py

# Jobs a running weave started (pid, start time): lets the next weave kill what a weave that
# died left running (executor.kill_orphans).
RUNNING_REGISTRY = os.path.join(".weave", "running")

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows is not supported yet
    fcntl = None  # type: ignore[assignment]


class ProjectLock:
    """`with ProjectLock(root, wait=False):` holds the build lock of the project at `root`."""

    def __init__(
        self,
        root: str,
        wait: bool = False,
        on_wait: Optional[Callable[[str], None]] = None,
        stop: Optional[threading.Event] = None,
        can_wait: bool = True,
    ):
        self.root = root
        # Whether the command has --wait (build, watch); `clean` and `touch` do not.
        self.hint = (
            "wait for it to finish, or pass --wait to queue behind it"
            if can_wait
            else "wait for it to finish, then run this command again"
        )
        self.path = os.path.join(root, ".weave", "lock")
        self.wait = wait
        self.on_wait = on_wait  # told who holds the lock, when `wait` has to wait for it
        self.stop = stop  # set from another thread: stop waiting (Interrupted, requested)
        self._fd: Optional[int] = None
        self._directory_fd: Optional[int] = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as busy:
                    if busy.errno in _HELD:
                        _refuse_own_job(fd, self.root)
                    if not self.wait or busy.errno not in _HELD:
                        raise
                    if self.on_wait is not None:
                        self.on_wait(_holder(fd))
                    self._wait_for(fd)
            except OSError as exc:
                who = _holder(fd)
                os.close(fd)
                if exc.errno in _HELD:
                    raise LockedError(
                        f"another weave ({who}) is building in {self.root}",
                        hint=self.hint,
                    ) from None
                raise
            except BaseException:  # a stop request or Ctrl-C while waiting: no descriptor left open
                os.close(fd)
                raise
        try:
            self._directory_fd = self._lock_directory()
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # a full disk: named, so that it is reported as the path's problem
            self.release_directory()
            os.close(fd)
            raise OSError(exc.errno, exc.strerror, self.path) from None
        self._fd = fd

    def _lock_directory(self) -> Optional[int]:
        """Also lock the project directory itself: `rm -rf .weave` while a weave builds takes
        its lock file away, and another weave would make a new one and build alongside it.
        None where directories cannot be locked (some network file systems): the file's lock
        alone, as before."""
        if fcntl is None:
            return None
        try:
            fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as busy:
            if busy.errno not in _HELD:
                os.close(fd)
                return None
            if not self.wait:
                os.close(fd)
                raise LockedError(
                    f"another weave is building in {self.root} (its .weave/ was removed while it ran)",
                    hint=self.hint,
                ) from None
            if self.on_wait is not None:
                self.on_wait("another process")
            try:
                self._wait_for(fd)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _wait_for(self, fd: int) -> None:
        """Take the flock on `fd`, waiting as long as its holder keeps it; with a `stop` event,
        looking at it every 0.1 s (a blocking flock sees no event), and Interrupted once set."""
        if self.stop is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as busy:
                if busy.errno not in _HELD:
                    raise
            if self.stop.wait(0.1):
                raise Interrupted(_SIGINT, requested=True)

    def release_directory(self) -> None:
        if self._directory_fd is not None:
            os.close(self._directory_fd)  # closing the descriptor drops the flock
            self._directory_fd = None

    def release(self) -> None:
        self.release_directory()
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> ProjectLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _refuse_own_job(fd: int, root: str) -> None:
    """A weave started by a job of the weave holding the lock (`cmd = "weave build x"`, as
    make's `$(MAKE) target` is written, or through another project's job): waiting would wait
    forever, since the holder waits for that job; say so instead of suggesting --wait. A
    program that holds the lock through the API and starts weave itself is waited for."""
    holder = _read_pid(fd)
    if holder is None:
        return
    chain = [os.getpid()] + _ancestors()
    if holder not in chain[1:]:
        return
    # (executor only when the lock is taken: a plain build never comes here)
    from .executor import job_pids_of

    jobs = job_pids_of(os.path.join(root, RUNNING_REGISTRY), holder)
    if jobs.isdisjoint(chain[: chain.index(holder)]):
        return
    raise LockedError(  # (acquire closes `fd`)
        f"this weave runs inside a job of the weave (pid {holder}) building in {root}: a job cannot build its own project",
        hint="list the files the job needs among its rule's inputs (weave builds them first); for variants of "
        "a step, use foreach or --set (see Recursive make in docs/from-make.md)",
    )


def _ancestors() -> List[int]:
    """The pids of this process's parent, its parent, and so on (from /proc; only the parent
    where there is none)."""
    found: List[int] = []
    pid = os.getppid()
    while pid > 1 and pid not in found and len(found) < 64:
        found.append(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            break
        # `pid (comm) state ppid ...`: comm may hold spaces and parentheses; the last ')' ends it
        pid = int(stat[stat.rindex(b")") + 2 :].split()[1])
    return found


def _holder(fd: int) -> str:
    """Who holds the lock, in words: `pid 4242`, as its holder wrote it."""
    pid = _read_pid(fd)
    return f"pid {pid}" if pid else "another process"


def _read_pid(fd: int) -> Optional[int]:
    try:
        data = os.pread(fd, 32, 0).decode().strip()
        return int(data) if data else None
    except (OSError, ValueError):
        return None

"""Start a job's process: the same fork-and-exec that `subprocess.Popen` does, without its
Python-level work.

Why: Popen spends ~40 µs of interpreter time per process (argument checks, handle set-up, a
Popen object with its lock) around ~30 µs in the C call that forks and execs. For a build of
thousands of short jobs the thread that starts them is the serial path, so that time is paid
once per job by the whole build. Weave calls the C function that Popen calls
(`_posixsubprocess.fork_exec`, vfork where CPython uses it) with the arguments Popen would
pass for `close_fds=True, start_new_session=True`, and reads the same error pipe.

That function is CPython's private interface; its positional arguments changed in 3.9 and
3.11. The layouts of those versions are known here; from 3.12 on, CPython publishes the
parameter names (`__text_signature__`), and the fast path is used only if they are exactly
the ones expected. Anything else (another interpreter, a changed signature) starts processes
with Popen itself, with the same results.
"""

from __future__ import annotations

import functools
import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable, Dict, List, Mapping, Optional, Tuple

# The positional parameters of _posixsubprocess.fork_exec, as CPython 3.11+ names them.
_LAYOUT_311 = (
    "args", "executable_list", "close_fds", "pass_fds", "cwd", "env", "p2cread", "p2cwrite",
    "c2pread", "c2pwrite", "errread", "errwrite", "errpipe_read", "errpipe_write",
    "restore_signals", "call_setsid", "pgid_to_set", "gid", "extra_groups", "uid",
    "child_umask", "preexec_fn", "allow_vfork",
)


class Child:
    """A started process: what weave needs of a Popen object."""

    __slots__ = ("pid",)

    def __init__(self, pid: int):
        self.pid = pid


def _load_fork_exec() -> Optional[Tuple[Callable[..., int], bool]]:
    """(fork_exec, whether it takes the 3.11+ arguments), or None where it cannot be trusted."""
    if sys.implementation.name != "cpython" or os.name != "posix":
        return None
    try:
        import _posixsubprocess
    except ImportError:
        return None
    fork_exec = getattr(_posixsubprocess, "fork_exec", None)
    if fork_exec is None:
        return None
    if sys.version_info < (3, 11):
        return fork_exec, False  # 3.9 and 3.10: one layout, frozen since
    if sys.version_info < (3, 12):
        return fork_exec, True
    signature = getattr(fork_exec, "__text_signature__", None) or ""
    names = tuple(
        name.strip() for name in signature.strip("()").split(",") if name.strip() not in ("", "$module", "/")
    )
    return (fork_exec, True) if names == _LAYOUT_311 else None


_FORK_EXEC = _load_fork_exec()


def start(
    argv: List[str],
    stdin: int,
    stdout: int,
    stderr: int,
    cwd: str,
    env: Optional[Dict[str, str]],
    path: Optional[str] = None,
) -> Child:
    """Start `argv` in `cwd`, in its own session, with descriptors 0-2 from the three given
    and every other descriptor closed; `env=None` inherits weave's environment. argv[0] is
    the program: a path if it has a slash (relative to `cwd`), else looked up on the PATH of
    the environment at exec (`path`, if the caller has it: search_path(env)), in order, as
    execvp and bash do. Raises OSError as Popen does
    when the program cannot be started (its errno and file name)."""
    if _FORK_EXEC is None:
        return _start_with_popen(argv, stdin, stdout, stderr, cwd, env)
    fork_exec, layout_311 = _FORK_EXEC
    program = argv[0]
    sys.audit("subprocess.Popen", program, argv, cwd, env)
    executables = _exec_list(program, search_path(env) if path is None else path)
    env_list = None if env is None else [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
    error_read, error_write = os.pipe()
    low_fds: List[int] = []
    while error_write < 3:  # with 0-2 closed in weave, the child's dup2s would overwrite it
        low_fds.append(error_write)
        error_write = os.dup(error_write)
    for fd in low_fds:
        os.close(fd)
    try:
        try:
            if layout_311:
                pid = fork_exec(  # argv as str: fork_exec encodes each word as os.fsencode does
                    argv, executables, True, (error_write,), cwd, env_list,
                    stdin, -1, -1, stdout, -1, stderr, error_read, error_write,
                    True, True, -1, None, None, None, -1, None, _allow_vfork(),
                )
            else:
                pid = fork_exec(  # argv as str: fork_exec encodes each word as os.fsencode does
                    argv, executables, True, (error_write,), cwd, env_list,
                    stdin, -1, -1, stdout, -1, stderr, error_read, error_write,
                    True, True, None, None, None, -1, None,
                )
        finally:
            os.close(error_write)
        # Empty: the child exec'd (its end of the pipe closed on exec). Else its error, written
        # in a few pieces before it exits (read to the end: without vfork it may still write).
        report = b""
        while len(report) < 50000:
            piece = os.read(error_read, 50000)
            if not piece:
                break
            report += piece
    finally:
        os.close(error_read)
    if report:
        _raise_child_error(pid, report, program, cwd)
    return Child(pid)


def _allow_vfork() -> bool:
    """Popen's own switch (`subprocess._USE_VFORK`, True unless someone turned vfork off).
    subprocess is not imported for it: importing it (and `locale` with it) costs a build
    several milliseconds, and if it was never imported nobody changed the switch."""
    return getattr(sys.modules.get("subprocess"), "_USE_VFORK", True)


def search_path(env: Optional[Mapping[str, str]]) -> str:
    """The PATH a process started with `env` (weave's own if None) searches."""
    return (os.environ if env is None else env).get("PATH", os.defpath)


@functools.lru_cache(maxsize=256)
def candidates(program: str, path: str) -> Tuple[str, ...]:
    """The files `program` may be, in the order they are tried (the first that execs wins):
    itself if it has a slash, else each entry of `path` (a search_path()) joined with it;
    relative ones are taken from the process's directory."""
    if os.path.dirname(program):
        return (program,)
    return tuple(os.path.join(entry, program) for entry in path.split(os.pathsep))


@functools.lru_cache(maxsize=256)
def _exec_list(program: str, path: str) -> Tuple[bytes, ...]:
    return tuple(os.fsencode(candidate) for candidate in candidates(program, path))


def _raise_child_error(pid: int, report: bytes, program: str, cwd: str) -> None:
    """Reap the child that could not exec and raise its error as Popen would."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    kind, _, rest = report.partition(b":")
    hex_errno, _, message = rest.partition(b":")
    if kind != b"OSError" or not hex_errno:
        import subprocess

        raise subprocess.SubprocessError(message.decode(errors="replace") or report.decode(errors="replace"))
    number = int(hex_errno, 16)
    # "noexec": the child failed before exec (before 3.13 only chdir could); "": exec failed.
    if message == b"noexec:chdir" or (message == b"noexec" and sys.version_info < (3, 13)):
        raise OSError(number, os.strerror(number), cwd)
    if message == b"noexec":
        raise OSError(number, os.strerror(number))
    raise OSError(number, os.strerror(number), program)


def _start_with_popen(
    argv: List[str], stdin: int, stdout: int, stderr: int, cwd: str, env: Optional[Dict[str, str]]
) -> Child:
    import subprocess

    process = subprocess.Popen(
        argv,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    # Weave reaps it: a Popen dropped with no return code would be put on subprocess's list
    # of children to reap, and the next Popen could take the exit status from weave.
    process.returncode = 0
    return Child(process.pid)

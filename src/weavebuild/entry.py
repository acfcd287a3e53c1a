"""The `weave` console script. It imports the CLI inside an interrupt guard, so that a Ctrl-C
landing while Python is still importing it ends like any other interrupt (one line, exit 130)
rather than with a traceback from the middle of an import.

It also runs the process with Python's cycle collector off. A `weave` process is short-lived
and holds its manifest, graph and state for its whole length, while making almost no cyclic
garbage (see `api.cycle_collector_paused`): scanning that heap costs time and frees nothing.
At exit the objects are frozen, so the interpreter's last act is not a full scan of everything
still alive (~70 ms after a 10k-job build). `weave watch`, which runs for hours and reloads
the graph on each Weavefile edit, turns the collector back on (commands/watch.py).

`weave --version`, and `weave` and `weave build [TARGETS]` with only -j, -k, --resources, -q
or -v, skip click (see `invocation.parse_fast`): ~15 ms less start-up.
"""

from __future__ import annotations

import codecs  # loaded by every interpreter at start-up: free
import gc
import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Optional


def _tolerant_output() -> None:
    """Print what cannot be encoded rather than fail: a file name that is not UTF-8 comes out as
    its own bytes (as `ls` and make print it, under any locale), any other character the stream
    cannot encode (a non-ASCII name under PYTHONIOENCODING=ascii) escaped. A build must not die
    printing a name."""
    codecs.register_error("weave-tolerant", _name_bytes_or_escape)
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) in ("strict", "surrogateescape") and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="weave-tolerant")
            except (ValueError, OSError, LookupError):  # pragma: no cover - a stream that cannot change
                pass


def _name_bytes_or_escape(error: UnicodeError) -> tuple:
    """Encoding error handler: surrogateescape's bytes where it has them, else backslashreplace."""
    if isinstance(error, UnicodeEncodeError):
        text = error.object[error.start:error.end]
        if all("\udc80" <= char <= "\udcff" for char in text):
            return bytes(ord(char) - 0xDC00 for char in text), error.end
        return codecs.backslashreplace_errors(error)
    raise error


def _open_standard_streams() -> None:
    """Give a closed descriptor 0, 1 or 2 (`weave build >&-`, a daemon's child) /dev/null, and
    Python a stream for it: else weave's own files (the state store) would get those numbers,
    and its output would have nowhere to go (Python sets sys.stdout to None)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if opened != fd:  # pragma: no cover - only if it was taken meanwhile
                os.dup2(opened, fd)
                os.close(opened)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - for the life of the process
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def hold_interrupts() -> Optional[list]:
    """Until release_interrupts: a Ctrl-C is noted, not raised. Raised inside an import, a
    KeyboardInterrupt can land in one of importlib's callbacks, where Python prints it as
    "Exception ignored" and drops it: the build then ran and exited 0. None (nothing held)
    where SIGINT is ignored (`nohup`, `cmd &`): that stays as it is."""
    import _signal

    held: list = []
    try:
        if _signal.getsignal(_signal.SIGINT) is _signal.SIG_IGN:
            return None
        _signal.signal(_signal.SIGINT, lambda signum, frame: held.append(signum))
    except ValueError:  # not the main thread (weave's API called from one): nothing to hold
        return None
    return held


def release_interrupts(held: Optional[list]) -> None:
    """Ctrl-C raises again; one that came while held ends weave now (one line, 130)."""
    if held is None:
        return
    import _signal

    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    if held:
        sys.stderr.write("weave: interrupted\n")
        sys.exit(130)


def main(held: Optional[list] = None) -> None:
    """The `weave` command. `held`: the list hold_interrupts gave the script that imported
    this module (bin/weave), whose Ctrl-C are counted as this one's own."""
    if held is None:
        held = hold_interrupts()
    _open_standard_streams()
    if sys.argv[1:] == ["--version"]:  # what scripts probe most: answered as click would
        from ._version import __version__

        release_interrupts(held)
        try:
            sys.stdout.write(f"weave {__version__}\n")
            sys.stdout.flush()
        except OSError as exc:  # `> /dev/full`
            from .reporter import point_at_devnull

            sys.stderr.write(f"weave: error: cannot write the output: {exc.strerror or exc}\n")
            point_at_devnull(sys.stdout)  # Python's last flush at exit then succeeds
            sys.exit(1)
        return
    gc.disable()
    _tolerant_output()
    try:
        try:
            from .invocation import parse_fast, run_fast

            # Shell completion (`eval "$(_WEAVE_COMPLETE=bash_source weave)"`) is click's: a bare
            # `weave` must not take the fast path and build.
            fast = None if "_WEAVE_COMPLETE" in os.environ else parse_fast(sys.argv[1:])
            if fast is None:  # anything but the plainest builds: the click CLI
                from .cli import main as cli_main
        except KeyboardInterrupt:
            sys.stderr.write("weave: interrupted\n")
            sys.exit(130)
        release_interrupts(held)
        if fast is not None:
            run_fast(fast)  # exits
        else:
            cli_main()
    finally:
        invocation = sys.modules.get("weavebuild.invocation")
        if invocation is not None:
            invocation.default_signals()
        gc.freeze()

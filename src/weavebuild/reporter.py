"""What a build tells its user: job lines, job output, failures, the summary.

The builder calls a Reporter; this module decides the wording and where it goes. `-q` shows
errors only, `-v` adds commands and reasons.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import IO, Any, Dict, List, Optional, Sequence

QUIET, NORMAL, VERBOSE = 0, 1, 2


class Reporter:
    """Silent base: the Python API uses it unless a caller passes a ConsoleReporter."""

    def build_started(self, to_run: int, total: int) -> None: ...

    def job_started(self, display: str, index: int, total: int, command: str, reasons: Sequence[object]) -> None: ...

    def job_output(self, display: str, data: bytes) -> None:
        """Output of job `display`: all of it when it ends, or chunks while it runs (streamed
        when it is the only job running)."""

    def job_output_ended(self, display: str) -> None:
        """Job `display` has ended: no more job_output for it."""

    def job_retrying(self, display: str, attempt: int, attempts: int, delay: float, why: str) -> None: ...

    def job_retried(self, display: str, attempt: int, attempts: int) -> None:
        """Attempt `attempt` (2 or more) of job `display` has started."""

    def job_failed(self, display: str, message: str, command: str, log_path: Optional[str], tail: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def info(self, message: str) -> None: ...

    def summary(
        self, ran: int, up_to_date: int, failed: int, skipped: int, seconds: float, cutoff: int = 0
    ) -> None: ...

    def nothing_to_do(self, up_to_date: int) -> None: ...

    def failures(self, lines: Sequence[str]) -> None:
        """After the summary of a -k build: each failed job (and its log)."""

    # A live status line, if the reporter shows one: the builder calls `progress` often.
    live = False
    # Whether job reasons are shown as jobs start (computing them costs a record lookup).
    wants_reasons = False

    @property
    def wants_output(self) -> bool:
        """Whether job_output shows anything: the builder reads each job's log for it (a stat
        per job at least) only if so."""
        return type(self).job_output is not Reporter.job_output

    def progress(self, done: int, total: int, running: Sequence[str], elapsed: float, eta: Optional[float]) -> None: ...


def text_width(text: str) -> int:
    """Columns `text` takes in a terminal: wide (CJK) characters take two, combining marks
    none; for aligning tables of paths."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def pad(text: str, width: int) -> str:
    """`text` padded with spaces to `width` terminal columns (see text_width)."""
    return text + " " * (width - text_width(text))


def escape_controls(text: str, keep: str = "") -> str:
    """`text` with its control characters (C0, DEL and C1, but those in `keep`) written as
    visible `\\xNN` escapes: a file name may hold any of them, and printed raw an ESC starts
    a terminal sequence (colours, cursor moves) and \\x01 makes SVG and HTML invalid. Names
    that are not UTF-8 are left to the output streams and paths.readable (their bytes, or
    U+FFFD)."""
    if text.isprintable():  # no control character (C speed: the common case)
        return text
    import re  # cached by then (the store imports it); compiled once, on the first such text

    def escape(match: re.Match) -> str:
        char = match.group()
        return char if char in keep else f"\\x{ord(char):02x}"

    return re.sub("[\x00-\x1f\x7f-\x9f]", escape, text)


# A failure report shows at most this much of a command: a fan-in over 10k paths makes a
# command of megabytes, and the report is for reading.
COMMAND_SHOWN = 600
# The summary of `weave -k build` names this many failed jobs (each was reported as it failed).
FAILURES_LISTED = 20
# A build reports this many failures in full (command, log, tail of the output); past them,
# one line each: with -k, thousands of jobs failing the same way would print pages apiece.
FAILURES_IN_FULL = 20
# In the tail of a failed job's output, replayed in its failure report: colours (SGR) are
# kept, and line breaks; any other control character (binary output: shift-out, bells) would act
# on the terminal and is shown as U+FFFD.
_CONTROLS = r"\x1b\[[0-9;]*m|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def _inert(text: str) -> str:
    """`text` with the control characters that are not colours replaced, and colours reset at
    its end if it set any."""
    import re  # only when a job failed with output to show

    colours = False

    def keep_colours(match: re.Match) -> str:
        nonlocal colours
        if len(match.group()) > 1:
            colours = True
            return match.group()
        return "\ufffd"

    text = re.sub(_CONTROLS, keep_colours, text)
    return text + "\x1b[0m" if colours else text


def _shorten(command: str) -> str:
    if len(command) <= COMMAND_SHOWN:
        return command
    return f"{command[:COMMAND_SHOWN]}... ({len(command) - COMMAND_SHOWN:,} more characters)"


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def point_at_devnull(stream: object) -> None:
    """Point the descriptor under `stream` at /dev/null (its reader has gone away), so that
    what is still buffered, and Python's last flush at exit, go nowhere without an error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())  # type: ignore[attr-defined]
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real descriptor (tests, StringIO)
        pass


class _Guarded:
    """A stream whose reader may go away (`weave build | head`), or that cannot be written
    (`> /dev/full`, a full disk): once a write fails, later output is dropped and the build
    goes on, ending as it would have (its exit code tells how). The descriptor is pointed at
    /dev/null, so that Python's last flush of the stream at exit has somewhere to go."""

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self.gone = False
        raw = getattr(stream, "buffer", None)
        self.buffer = _GuardedBytes(self, raw) if raw is not None else None

    def write(self, text: str) -> None:
        if not self.gone:
            try:
                self._stream.write(text)
            except OSError:
                self.drop()

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except OSError:
                self.drop()

    def isatty(self) -> bool:
        isatty = getattr(self._stream, "isatty", None)
        return bool(isatty and isatty())

    def drop(self) -> None:
        self.gone = True
        point_at_devnull(self._stream)


class _GuardedBytes:
    """The binary side of a _Guarded stream (job output is copied as bytes)."""

    def __init__(self, owner: _Guarded, raw: IO[bytes]):
        self._owner = owner
        self._raw = raw

    def write(self, data: bytes) -> None:
        if not self._owner.gone:
            try:
                self._raw.write(data)
            except OSError:
                self._owner.drop()

    def flush(self) -> None:
        if not self._owner.gone:
            try:
                self._raw.flush()
            except OSError:
                self._owner.drop()


class ConsoleReporter(Reporter):
    """Plain lines on a pipe or file (CI logs); on a terminal, a Ninja-style status line
    (`[done/total] running: train, eval … 12s, ETA 40s`) redrawn in place, with job output
    and errors printed above it."""

    REFRESH = 0.1

    def __init__(
        self,
        verbosity: int = NORMAL,
        out: Optional[IO[str]] = None,
        err: Optional[IO[str]] = None,
        live: Optional[bool] = None,
    ):
        self.verbosity = verbosity
        self.out: Any = _Guarded(out or sys.stdout)
        self.err: Any = _Guarded(err or sys.stderr)
        if live is None:
            isatty = getattr(self.out, "isatty", None)
            live = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
        self.live = live and verbosity == NORMAL
        self.wants_reasons = verbosity >= VERBOSE
        self._status = ""
        self._last_draw = 0.0
        # The job whose start line or output was printed last: another job's output gets a
        # header naming it, so that no output reads as the job above's.
        self._owner: Optional[str] = None
        # Job output that ended mid-line (a prompt, a progress bar redrawn with \r): the next
        # line must not run into it, and the status line must not erase it.
        self._open_line = False
        self._failures_reported = 0  # in this build

    def build_started(self, to_run: int, total: int) -> None:
        self._failures_reported = 0

    def _end_open_line(self) -> None:
        if self._open_line:
            self.out.write("\n")
            self._open_line = False

    def _clear_status(self) -> None:
        if self._status:
            self.out.write("\r\x1b[K")
            self._status = ""

    def _print(self, text: str) -> None:
        self._clear_status()
        self._end_open_line()
        self.out.write(escape_controls(text, keep="\n") + "\n")
        self.out.flush()
        self._owner = None

    def _before_err(self) -> None:
        """Make way on the terminal for a message on stderr."""
        self._clear_status()
        self._end_open_line()
        self.out.flush()
        self._owner = None

    def progress(self, done: int, total: int, running: Sequence[str], elapsed: float, eta: Optional[float]) -> None:
        if not self.live or self._open_line:
            return
        now = time.monotonic()
        if now - self._last_draw < self.REFRESH and self._status:
            return
        self._last_draw = now
        counts: Dict[str, int] = {}
        for name in running:
            counts[name] = counts.get(name, 0) + 1
        names = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in counts.items())
        line = f"[{done}/{total}] {_duration(elapsed)}"
        if eta is not None and done < total:
            line += f", ETA {_duration(eta)}"
        line += f" · running: {names}" if names else ""
        import shutil  # not at the top: a no-op build does not need it

        width = shutil.get_terminal_size((100, 20)).columns
        if len(line) > width - 1:
            line = line[: max(10, width - 2)] + "…"
        self.out.write("\r\x1b[K" + line)
        self.out.flush()
        self._status = line

    def job_started(self, display: str, index: int, total: int, command: str, reasons: Sequence[object]) -> None:
        if self.live:
            return  # the status line shows running jobs
        if self.verbosity >= NORMAL:
            line = f"[{index}/{total}] {escape_controls(display)}"  # (a name may hold a newline)
            if self.verbosity >= VERBOSE and reasons:
                line += "  (" + "; ".join(escape_controls(str(r)) for r in reasons) + ")"
            self._print(line)
            if self.verbosity >= VERBOSE:
                self._print("  $ " + command.replace("\n", "\n    "))
            self._owner = display

    @property
    def wants_output(self) -> bool:
        return self.verbosity >= NORMAL

    def job_output(self, display: str, data: bytes) -> None:
        if self.verbosity < NORMAL or not data:
            return
        self._clear_status()
        if display != self._owner:
            self._end_open_line()
            self.out.write(f"-- output of {escape_controls(display)}:\n")
            self._owner = display
        self.out.flush()
        buffer = getattr(self.out, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            self.out.write(data.decode("utf-8", "replace"))
            self.out.flush()
        self._open_line = not data.endswith(b"\n")

    def job_output_ended(self, display: str) -> None:
        if display == self._owner:
            self._end_open_line()

    def job_retried(self, display: str, attempt: int, attempts: int) -> None:
        if self.live or self.verbosity < NORMAL:
            return
        self._print(f"[attempt {attempt}/{attempts}] {display}")
        self._owner = display  # its output follows without a header, as the first attempt's

    def job_retrying(self, display: str, attempt: int, attempts: int, delay: float, why: str) -> None:
        self._before_err()
        self.err.write(
            escape_controls(f"weave: {display}: attempt {attempt}/{attempts} failed ({why}); retrying in {delay:.1f}s")
            + "\n"
        )
        self.err.flush()

    def job_failed(self, display: str, message: str, command: str, log_path: Optional[str], tail: str) -> None:
        self._before_err()
        # The names in it shown escaped; the tail of the output keeps its colours (_inert).
        display, message, command = escape_controls(display), escape_controls(message, "\n"), escape_controls(command, "\n")
        log_path = escape_controls(log_path) if log_path else log_path
        self._failures_reported += 1
        if self._failures_reported > FAILURES_IN_FULL:
            note = (
                f"weave: more than {FAILURES_IN_FULL} jobs failed: one line each from here (their logs"
                " hold their output)\n"
                if self._failures_reported == FAILURES_IN_FULL + 1
                else ""
            )
            where = f" (log: {os.path.relpath(log_path)})" if log_path else ""
            self.err.write(f"{note}weave: FAILED {display}: {message}{where}\n")
            self.err.flush()
            return
        lines: List[str] = [f"weave: FAILED {display}: {message}"]
        if command:
            lines.append("  command: " + _shorten(command).replace("\n", "\n           "))
        if log_path:
            lines.append(f"  log: {os.path.relpath(log_path)}")
        if tail:
            lines.append("  last lines of output:")
            lines.extend("    " + line for line in _inert(tail.rstrip("\n")).splitlines())
        self.err.write("\n".join(lines) + "\n")
        self.err.flush()

    def warning(self, message: str) -> None:
        self._before_err()
        message = escape_controls(message, keep="\n")
        self.err.write(f"weave: warning: {message}\n")
        self.err.flush()

    def info(self, message: str) -> None:
        if self.verbosity >= NORMAL:
            self._print(message)

    def summary(
        self, ran: int, up_to_date: int, failed: int, skipped: int, seconds: float, cutoff: int = 0
    ) -> None:
        self._before_err()
        if failed:
            text = f"weave: {failed} failed, {ran} ran, {up_to_date} up to date"
            if cutoff:
                text += f" ({cutoff} by early cutoff)"
            if skipped:
                text += f", {skipped} not run"
            self.err.write(f"{text} ({seconds:.2f}s)\n")
            self.err.flush()
        elif self.verbosity >= NORMAL:
            note = f", {cutoff} by early cutoff" if cutoff else ""
            self._print(f"weave: {ran} ran, {up_to_date} up to date{note} ({seconds:.2f}s)")

    def failures(self, lines: Sequence[str]) -> None:
        # On stderr, under the summary line that counts them, even with -q (they are errors);
        # the first few: each was reported as it failed, and 10k lines would bury the count.
        self._before_err()
        shown = lines if len(lines) <= FAILURES_LISTED + 1 else lines[:FAILURES_LISTED]
        text = "".join(f"  failed: {escape_controls(line)}\n" for line in shown)
        if len(shown) < len(lines):
            text += f"  ... and {len(lines) - len(shown):,} more failed jobs (weave status lists them)\n"
        self.err.write(text)
        self.err.flush()

    def nothing_to_do(self, up_to_date: int) -> None:
        if self.verbosity >= NORMAL:
            if not up_to_date:  # sources named as targets, or a rule whose foreach gives nothing
                self._print("weave: nothing to do (no job makes the targets)")
                return
            self._print(f"weave: nothing to do ({up_to_date} job{'s' if up_to_date != 1 else ''} up to date)")

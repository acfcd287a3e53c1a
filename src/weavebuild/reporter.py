"""What a build tells its user: job lines, job output, failures, the summary.

The builder calls a Reporter; this module decides the wording and where it goes. `-q` shows
errors only, `-v` adds commands and reasons.
"""

from __future__ import annotations

import os
import sys
from typing import IO, List, Optional, Sequence

QUIET, NORMAL, VERBOSE = 0, 1, 2


class Reporter:
    """Silent base: the Python API uses it unless a caller passes a ConsoleReporter."""

    def build_started(self, to_run: int, total: int) -> None: ...

    def job_started(self, display: str, index: int, total: int, command: str, reasons: Sequence[object]) -> None: ...

    def job_output(self, data: bytes) -> None: ...

    def job_retrying(self, display: str, attempt: int, attempts: int, delay: float, why: str) -> None: ...

    def job_failed(self, display: str, message: str, command: str, log_path: Optional[str], tail: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def info(self, message: str) -> None: ...

    def summary(
        self, ran: int, up_to_date: int, failed: int, skipped: int, seconds: float, cutoff: int = 0
    ) -> None: ...

    def nothing_to_do(self, up_to_date: int) -> None: ...


class ConsoleReporter(Reporter):
    def __init__(self, verbosity: int = NORMAL, out: Optional[IO[str]] = None, err: Optional[IO[str]] = None):
        self.verbosity = verbosity
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def job_started(self, display: str, index: int, total: int, command: str, reasons: Sequence[object]) -> None:
        if self.verbosity >= NORMAL:
            line = f"[{index}/{total}] {display}"
            if self.verbosity >= VERBOSE and reasons:
                line += "  (" + "; ".join(str(r) for r in reasons) + ")"
            self._print(line)
            if self.verbosity >= VERBOSE:
                self._print("  $ " + command.replace("\n", "\n    "))

    def job_output(self, data: bytes) -> None:
        if self.verbosity >= NORMAL and data:
            self.out.flush()
            buffer = getattr(self.out, "buffer", None)
            if buffer is not None:
                buffer.write(data)
                buffer.flush()
            else:
                self.out.write(data.decode("utf-8", "replace"))
                self.out.flush()

    def job_retrying(self, display: str, attempt: int, attempts: int, delay: float, why: str) -> None:
        self.err.write(
            f"weave: {display}: attempt {attempt}/{attempts} failed ({why}); retrying in {delay:.1f}s\n"
        )
        self.err.flush()

    def job_failed(self, display: str, message: str, command: str, log_path: Optional[str], tail: str) -> None:
        lines: List[str] = [f"weave: FAILED {display}: {message}"]
        if command:
            lines.append("  command: " + command.replace("\n", "\n           "))
        if log_path:
            lines.append(f"  log: {os.path.relpath(log_path)}")
        if tail:
            lines.append("  last lines of output:")
            lines.extend("    " + line for line in tail.rstrip("\n").splitlines())
        self.err.write("\n".join(lines) + "\n")
        self.err.flush()

    def warning(self, message: str) -> None:
        self.err.write(f"weave: warning: {message}\n")
        self.err.flush()

    def info(self, message: str) -> None:
        if self.verbosity >= NORMAL:
            self._print(message)

    def summary(
        self, ran: int, up_to_date: int, failed: int, skipped: int, seconds: float, cutoff: int = 0
    ) -> None:
        if failed:
            text = f"weave: {failed} failed, {ran} ran, {up_to_date} up to date"
            if skipped:
                text += f", {skipped} not run"
            self.err.write(f"{text} ({seconds:.2f}s)\n")
            self.err.flush()
        elif self.verbosity >= NORMAL:
            note = f", {cutoff} by early cutoff" if cutoff else ""
            self._print(f"weave: {ran} ran, {up_to_date} up to date{note} ({seconds:.2f}s)")

    def nothing_to_do(self, up_to_date: int) -> None:
        if self.verbosity >= NORMAL:
            self._print(f"weave: nothing to do ({up_to_date} jobs up to date)")

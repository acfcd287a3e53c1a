"""Run history: the runs and job attempts the store recorded, and statistics derived from them.

Reads the store through its public methods and computes per-rule statistics and failure details;
it prints nothing and renders nothing (`weave history` and `weave report` do that).
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .store import Store

# Attempt statuses, as the builder writes them.
OK, FAILED, TIMEOUT, CANCELLED = "ok", "failed", "timeout", "cancelled"

# How late a log file may have been modified after its attempt ended and still be its log: the
# end is measured with a monotonic clock from a wall-clock start, so the two can drift a little.
LOG_MTIME_SLACK = 2.0


@dataclass
class Attempt:
    """One execution of a job's command (a job retried once has two attempts)."""

    run_id: int
    job_key: str
    rule: str
    attempt: int
    started: float
    duration: float
    exit_code: Optional[int]
    status: str
    peak_rss: Optional[int]
    cpu_time: Optional[float]
    log: Optional[str]

    @property
    def ended(self) -> float:
        return self.started + self.duration


@dataclass
class Run:
    """One `weave build` (or plain `weave`): when, how it was called, and how it ended."""

    id: int
    started: float
    ended: Optional[float]
    argv: List[str]
    targets: List[str]
    outcome: str
    ran: Optional[int]
    failed: Optional[int]
    up_to_date: Optional[int]
    attempts: List[Attempt] = field(default_factory=list)

    @property
    def duration(self) -> Optional[float]:
        return None if self.ended is None else max(0.0, self.ended - self.started)

    @property
    def finished(self) -> bool:
        # A run without an end is still building, or its weave was killed (kill -9, power loss)
        # before it could write the end; history cannot tell which without the project lock.
        return self.ended is not None

    @property
    def command(self) -> str:
        """The command line as the user would type it (argv[0] may be a path or __main__.py)."""
        return shlex.join(["weave", *self.argv[1:]]) if self.argv else "weave"

    def to_json(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "started": self.started,
            "started_at": format_time(self.started, iso=True),
            "ended": self.ended,
            "duration": self.duration,
            "argv": self.argv,
            "command": self.command,
            "targets": self.targets,
            "outcome": self.outcome,
            "ran": self.ran,
            "failed": self.failed,
            "up_to_date": self.up_to_date,
            "attempts": len(self.attempts),
        }


@dataclass
class RuleStats:
    """One rule across all recorded runs. A job that needed retries counts once in `jobs`."""

    rule: str
    jobs: int = 0  # job executions: (run, job) pairs, those interrupted (cancelled) left out
    succeeded: int = 0  # executions whose last attempt succeeded
    attempts: int = 0
    retried: int = 0  # executions that needed more than one attempt
    runs: int = 0  # distinct runs in which the rule ran
    mean_duration: Optional[float] = None  # of successful attempts only
    max_duration: Optional[float] = None
    peak_rss: Optional[int] = None
    mean_cpu_time: Optional[float] = None

    @property
    def success_rate(self) -> Optional[float]:
        return self.succeeded / self.jobs if self.jobs else None


@dataclass
class Failure:
    """A failed attempt of a run, with the tail of its log while the log is still its own."""

    attempt: Attempt
    retried: bool  # a later attempt of the same job followed in the same run
    log_path: Optional[str]  # absolute path of the log file, when recorded
    log_tail: Optional[str]  # None when the log is gone or belongs to a later attempt
    log_note: str = ""  # why there is no tail


# -- reading the store -------------------------------------------------------------------------
def load_runs(store: Store, limit: Optional[int] = 20, with_attempts: bool = True) -> List[Run]:
    """The most recent `limit` runs (all if None), newest first."""
    # SQLite reads LIMIT -1 as "no limit".
    rows = store.runs(limit=-1 if limit is None else limit)
    runs = [_run_from_row(row) for row in rows]
    if with_attempts:
        for run in runs:
            run.attempts = load_attempts(store, run.id)
            _fill_counts(run)
    return runs


def find_run(runs: Sequence[Run], run_id: Optional[int]) -> Optional[Run]:
    """The run with `run_id` among `runs` (the newest when run_id is None)."""
    if run_id is None:
        return runs[0] if runs else None
    return next((run for run in runs if run.id == run_id), None)


def load_attempts(store: Store, run_id: int) -> List[Attempt]:
    return [Attempt(run_id, *row) for row in store.attempts(run_id)]


def _run_from_row(row: Tuple[Any, ...]) -> Run:
    run_id, started, ended, argv, targets, outcome, ran, failed, up_to_date = row
    return Run(
        run_id,
        started or 0.0,
        ended,
        _json_list(argv),
        _json_list(targets),
        # The store says "running" until the end is written; without an end the run may as
        # well have been killed, so history does not claim it is still running.
        (outcome or "unknown") if ended is not None else "unfinished",
        ran,
        failed,
        up_to_date,
    )


def _json_list(text: Optional[str]) -> List[str]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(item) for item in value] if isinstance(value, list) else []


def _fill_counts(run: Run) -> None:
    """Derive the counts from the attempts where the store has none for the run.

    A build that raises (BuildFailed, Interrupted) ends its run with zero counts because it has
    no result object, and an unfinished run has none at all; the attempts still say what ran.
    Up-to-date jobs (and jobs failed before starting, e.g. on a missing input) leave no
    attempt, so those counts become unknown (None) rather than a wrong 0.
    """
    recorded = bool(run.ran or run.failed or run.up_to_date)
    if run.outcome == OK or (run.finished and recorded):
        return
    final = _final_attempts(run.attempts)
    run.ran = sum(1 for a in final.values() if a.status == OK)
    # A job Ctrl-C stopped (cancelled) did not fail: counted as a finished run counts it.
    failed = sum(1 for a in final.values() if a.status in (FAILED, TIMEOUT))
    # A failed run without a failed attempt failed before starting a job: count unknown.
    run.failed = None if run.outcome == FAILED and not failed else failed
    run.up_to_date = None


def _final_attempts(attempts: Sequence[Attempt]) -> Dict[str, Attempt]:
    """The last attempt of each job (attempt numbers grow within one run)."""
    final: Dict[str, Attempt] = {}
    for attempt in attempts:
        known = final.get(attempt.job_key)
        if known is None or attempt.attempt >= known.attempt:
            final[attempt.job_key] = attempt
    return final


# -- statistics --------------------------------------------------------------------------------
def rule_stats(runs: Sequence[Run]) -> List[RuleStats]:
    """Per-rule statistics over the attempts of `runs`, sorted by rule name."""
    stats: Dict[str, RuleStats] = {}
    ok_durations: Dict[str, List[float]] = {}
    cpu_times: Dict[str, List[float]] = {}
    rule_runs: Dict[str, set] = {}
    for run in runs:
        final = _final_attempts(run.attempts)
        for attempt in run.attempts:
            entry = stats.setdefault(attempt.rule, RuleStats(attempt.rule))
            entry.attempts += 1
            rule_runs.setdefault(attempt.rule, set()).add(run.id)
            if attempt.status == OK:
                # Failed attempts are left out of the mean: a crash after 0.1 s says nothing
                # about how long the job takes, and the mean feeds users' expectations.
                ok_durations.setdefault(attempt.rule, []).append(attempt.duration)
            if attempt.cpu_time is not None:
                cpu_times.setdefault(attempt.rule, []).append(attempt.cpu_time)
            if entry.max_duration is None or attempt.duration > entry.max_duration:
                entry.max_duration = attempt.duration
            if attempt.peak_rss is not None and (
                entry.peak_rss is None or attempt.peak_rss > entry.peak_rss
            ):
                entry.peak_rss = attempt.peak_rss
        for attempt in final.values():
            entry = stats[attempt.rule]
            if attempt.status == CANCELLED:
                continue  # interrupted (Ctrl-C, a stop): neither a success nor a failure of the rule
            entry.jobs += 1
            entry.succeeded += attempt.status == OK
            entry.retried += attempt.attempt > 1
    for rule, entry in stats.items():
        entry.runs = len(rule_runs.get(rule, ()))
        durations = ok_durations.get(rule)
        if durations:
            entry.mean_duration = sum(durations) / len(durations)
        cpu = cpu_times.get(rule)
        if cpu:
            entry.mean_cpu_time = sum(cpu) / len(cpu)
    return [stats[name] for name in sorted(stats)]


def failures(run: Run, all_runs: Sequence[Run], root: str, tail_lines: int = 20) -> List[Failure]:
    """The failed attempts of `run`, each with its log tail if the log file is still its own.

    Logs live at one path per job and are rewritten by every attempt, so a log belongs to the
    newest recorded attempt that wrote to it; older attempts get a note instead of a tail that
    would show another attempt's output.
    """
    from .builder import read_tail  # the same tail the build printed when the job failed

    newest: Dict[str, Attempt] = {}
    for other in all_runs:
        for attempt in other.attempts:
            if attempt.log:
                known = newest.get(attempt.log)
                if known is None or attempt.started >= known.started:
                    newest[attempt.log] = attempt
    final = _final_attempts(run.attempts)
    found: List[Failure] = []
    for attempt in run.attempts:
        if attempt.status == OK:
            continue
        retried = final[attempt.job_key] is not attempt
        if not attempt.log:
            found.append(Failure(attempt, retried, None, None, "no log was recorded"))
            continue
        path = attempt.log if os.path.isabs(attempt.log) else os.path.join(root, attempt.log)
        owner = newest.get(attempt.log)
        note = ""
        if owner is not None and owner is not attempt:
            which = (
                f"attempt {owner.attempt}"
                if owner.run_id == attempt.run_id
                else f"run {owner.run_id}"
            )
            note = f"log was overwritten by {which}"
        else:
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                note = "log file no longer exists"
            else:
                if mtime > attempt.ended + LOG_MTIME_SLACK:
                    note = "log was overwritten later (by a run the store did not record)"
        tail = None if note else read_tail(path, lines=tail_lines)
        found.append(Failure(attempt, retried, path, tail, note))
    return found


# -- formatting helpers shared by `history` and `report` ---------------------------------------
def format_time(timestamp: Optional[float], iso: bool = False) -> str:
    if timestamp is None:
        return ""
    if iso:
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(timestamp))
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_bytes(size: Optional[int]) -> str:
    """A size for people; "-" when unknown (None, or the 0 that stands for a job too short to
    measure: no process has zero bytes resident)."""
    if not size:
        return "-"
    value = float(size)
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    for unit in units:
        if value < 1024 or unit == units[-1]:
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"

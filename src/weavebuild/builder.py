"""The builder: glue between graph, scan, plan, executor, store and reporter.

One build: check every job whose dependencies are settled (up to date, or stale with reasons),
start stale jobs as slots and resources allow, and on each completion verify the outputs
exist; they are hashed (once, out of their racy window, or earlier when a job reads them) and
the success record written at the next commit. Invariants:
- a record is written only after the command exited 0 and every declared output exists and has
  been hashed; input digests in it were taken before the command started; an output is hashed
  before any job that reads it starts;
- a stale job's old outputs are removed before it runs; a failed, timed-out or interrupted
  job's outputs are removed (unless --keep-failed) and never recorded;
- staleness of a job is decided when its dependencies have finished (early cutoff).
"""

from __future__ import annotations

import collections
import errno
import itertools
import os
import re
import signal
import stat as stat_module
import threading
import time

from . import depfile
from .errors import BuildFailed, Interrupted, UsageError
from .executor import Completion, Executor, LocalExecutor
from .filestate import (
    RACY_WINDOW_NS,
    FileState,
    UnreadableFile,
    fingerprint_now,
    racy_window,
)
from .hashing import Stopped, stop_hashing_when
from .jobs import Graph, Job, only_ordered, recipe_of
from .lock import RUNNING_REGISTRY
from .paths import STATE_DIR, aliased_directory, is_within
from .plan import ReadyQueue, critical_path
from .reporter import Reporter
from .resources import Grant, ResourcePool
from .results import CANCELLED, FAILED, RAN, SKIPPED, UP_TO_DATE, BuildResult, JobResult
from .scan import FORCED, INPUT_MISSING, NEVER_BUILT, UPSTREAM, Reason, Scanner, Verdict
from .store import JobRow, Record, Store
from .temps import TempOutputs, demand
from .temps import delete as delete_temp

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import (
        Callable,
        Deque,
        Dict,
        Iterable,
        List,
        Mapping,
        Optional,
        Sequence,
        Set,
        Tuple,
    )

    from .filestate import Fingerprint

GRACE_SECONDS = 3.0
# Ctrl-C reaches the jobs as SIGINT (a script may save its state on KeyboardInterrupt, as
# under make, whose jobs the terminal signals); what is still running this long after gets
# SIGTERM (a non-interactive shell's background processes ignore SIGINT), and SIGKILL at
# GRACE_SECONDS.
INTERRUPT_TO_TERM = 1.0
FLUSH_INTERVAL = 0.2
STREAM_INTERVAL = 0.1
TAIL_LINES = 20
LOG_DIR = os.path.join(".weave", "logs")



class ChangedPaths:
    """Changes reported by another thread during a build (watch mode's `--restart`). A changed
    path: the builder cancels the running jobs that read it, and lets the rest go on. A changed
    Weavefile (`rules_changed`): the builder starts no further job, asks `unchanged` which of
    the running jobs the Weavefile on disk still makes the same way, and cancels the others."""

    def __init__(self, unchanged: Optional[Callable[[Sequence[Job]], Optional[Set[str]]]] = None) -> None:
        self._lock = threading.Lock()
        self._paths: Set[str] = set()
        self._rules = False
        # The keys of those of the given jobs that the Weavefile now on disk makes the same
        # way (same command, vars, env, inputs and outputs); None when it cannot be loaded.
        self.unchanged = unchanged

    def add(self, path: str) -> None:
        with self._lock:
            self._paths.add(path)

    def take(self) -> Set[str]:
        with self._lock:
            paths, self._paths = self._paths, set()
        return paths

    def rules_changed(self) -> None:
        with self._lock:
            self._rules = True

    def take_rules_changed(self) -> bool:
        with self._lock:
            changed, self._rules = self._rules, False
        return changed


class BuildOptions:
    """How to build: parallelism, resources, failure policy. Defaults suit the Python API."""

    def __init__(
        self,
        jobs: Optional[int] = None,
        keep_going: bool = False,
        force: bool = False,
        keep_failed: bool = False,
        retries: Optional[int] = None,
        retry_delay: Optional[float] = None,
        timeout: Optional[float] = None,
        stream: bool = True,
        stop: Optional[threading.Event] = None,
        changed: Optional[ChangedPaths] = None,
        keep_temp: bool = False,
    ):
        self.jobs = jobs if jobs and jobs > 0 else (os.cpu_count() or 1)
        self.keep_going = keep_going
        self.force = force
        self.keep_failed = keep_failed
        self.retries = retries
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.stream = stream
        # Set from another thread (a caller of the Python API) to cancel the build as Ctrl-C would.
        self.stop = stop
        self.changed = changed
        self.keep_temp = keep_temp  # temporary outputs are not deleted after use


_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_.=,\[\]-]")


def _exit_code_meaning(code: int) -> str:
    """What a shell's exit code says beyond its number, in parentheses (or nothing)."""
    if code == 127:
        return " (command not found)"
    if code == 128 + signal.SIGPIPE:
        return (
            " (SIGPIPE: a command wrote into a pipe whose reader had stopped, as `head` does;"
            " jobs run with pipefail, so that fails the job)"
        )
    if code == 128 + signal.SIGKILL:
        return " (SIGKILL: killed, often by the out-of-memory killer)"
    if 128 < code < 128 + signal.NSIG:
        try:
            return f" ({signal.Signals(code - 128).name}: a process of the job was killed by it)"
        except ValueError:
            return ""
    return ""


# make's automatic variables and $(NAME) references, as make users write them in a recipe;
# not $? (the shell's exit status), and $(...) only around a make-style upper-case name.
_MAKE_VARIABLE = re.compile(r"\$(?:[@<^*+]|\(([A-Z][A-Z0-9_]*)\))")
_MAKE_VARIABLE_SPELLINGS = {"$@": "{outputs}", "$<": "{inputs[0]}", "$^": "{inputs}", "$+": "{inputs}", "$*": "{wildcards.NAME}"}


def make_variables_note(command: str) -> str:
    """For a failed job: the make variables its command holds (bash reads `$@` as the empty
    argument list, `$<` as a redirect, `$(CC)` as a command named CC) and weave's spelling of
    each, as '; ...' to add to the failure; '' for none."""
    found: Dict[str, str] = {}
    for match in _MAKE_VARIABLE.finditer(command):
        text = match.group(0)
        found.setdefault(text, f"{{vars.{match.group(1)}}}" if match.group(1) else _MAKE_VARIABLE_SPELLINGS[text])
    if not found:
        return ""
    spelled = ", ".join(f"{weave} for {make}" for make, weave in found.items())
    return f"; the command holds make's {', '.join(found)}, which the shell does not know: weave writes {spelled}"


_ENV_REFERENCE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand_environment(value: str) -> str:
    """An `env` value with `$NAME` and `${NAME}` replaced by weave's own environment (empty if
    unset) and `$$` by `$`: `PATH = "./bin:$PATH"` prepends, as a shell would. The signature
    keeps the text as written, so a different PATH outside does not rerun anything."""
    if "$" not in value:
        return value

    def replace(match: re.Match) -> str:
        if match.group(1):
            return "$"
        return os.environ.get(match.group(2) or match.group(3), "")

    return _ENV_REFERENCE.sub(replace, value)


def log_path_for(root: str, job: Job, attempt: int = 1) -> str:
    """`.weave/logs/<job>.log` for a job's first attempt, `<job>.attempt<N>.log` for retries
    (so a retry does not overwrite the output of the failure it retries)."""
    safe = job.key
    if len(safe) > 120 or _UNSAFE_IN_NAME.search(safe):
        safe = _UNSAFE_IN_NAME.sub("_", safe)
        from .hashing import digest_strings

        safe = safe[:100] + "-" + digest_strings([job.key])[:12]
    suffix = ".log" if attempt <= 1 else f".attempt{attempt}.log"
    return os.path.join(root, LOG_DIR, safe + suffix)


def read_tail(path: str, lines: int = TAIL_LINES, max_bytes: int = 64 * 1024) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()  # the newline that ends the last line
    return "\n".join(_as_shown(line) for line in parts[-lines:])


TAIL_LINE_CHARS = 500


def _as_shown(line: str) -> str:
    """A log line as a terminal left it (a progress bar redrawn with carriage returns: its last
    state), and at most TAIL_LINE_CHARS of its end: one long line must not flood the report."""
    line = line.rstrip("\r").rsplit("\r", 1)[-1]
    if len(line) > TAIL_LINE_CHARS:
        return "…" + line[-TAIL_LINE_CHARS:]
    return line


class _Running:
    __slots__ = (
        "job", "grant", "verdict", "attempt", "started", "started_wall", "deadline", "kill_at", "log_path", "log_offset"
    )

    def __init__(self, job: Job, grant: Grant, verdict: Verdict, attempt: int, log_path: str, deadline: Optional[float]):
        self.job = job
        self.grant = grant
        self.verdict = verdict
        self.attempt = attempt
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.deadline = deadline
        self.kill_at: Optional[float] = None  # cancelled (an input changed): killed if still running then
        self.log_path = log_path
        self.log_offset = 0


class Builder:
    """Runs one build of `graph`. Create, then call `predict()` and/or `run()`."""

    def __init__(
        self,
        graph: Graph,
        store: Store,
        files: FileState,
        latest: Dict[str, JobRow],
        pool: ResourcePool,
        options: BuildOptions,
        reporter: Reporter,
        executor: Optional[Executor] = None,
        forced: Sequence[Job] = (),
        run_id: Optional[int] = None,
        unchanged: Optional[Mapping[str, str]] = None,
        untouched: Sequence[str] = (),
        earlier: Optional[BuildResult] = None,
        summarize: bool = True,
        delete_temps: bool = True,
        job_making: Optional[Callable[[str], Optional[Job]]] = None,
    ):
        self.graph = graph
        # The job of any rule of the Weavefile that makes a path (None: a source), for a file a
        # depfile lists that no job of this build makes: a generated header whose maker this
        # build leaves out is one the job may have read stale.
        self.job_making = job_making
        # Such files found by this build: later builds of these targets make them first.
        self.made_elsewhere: Dict[str, None] = {}  # generated files depfiles listed (an ordered set)
        self.root = graph.manifest.root
        self.store = store
        self.files = files
        self.latest = latest
        self.pool = pool
        self.options = options
        self.reporter = reporter
        self.executor = executor
        self.scanner = Scanner(files, store, latest)
        self.forced: Set[str] = {job.key for job in forced} if options.force else set()
        self.run_id = run_id
        # Paths whose content is as it was when all jobs were last verified up to date (from
        # the no-op stamp, with no record changed since): a job touching only those is up to
        # date without computing its signature.
        self.unchanged = unchanged
        # Keys of jobs left out of `graph` because the stamp proved them up to date (a partial
        # build, see stamp.Partial): reported as up to date, never loaded.
        self.untouched = untouched
        self._untouched_set: Optional[Set[str]] = None
        # The jobs an earlier phase of the same build ran (directories whose contents decide
        # jobs, made first): its summary counts them as run, not up to date. A phase itself
        # does not summarize (summarize=False) unless it fails: the build's summary says it all.
        earlier = earlier if earlier is not None else BuildResult({}, 0.0)
        self._ran_before: Set[str] = {item.job.key for item in earlier.ran}
        # Jobs that failed in an earlier phase of a -k build: failed here too, not run again.
        self._failed_before: Dict[str, JobResult] = {item.job.key: item for item in earlier.failed}
        self._seconds_before = earlier.seconds
        self.summarize = summarize
        # A phase that makes directories first (api._settle_first) keeps temporary outputs:
        # jobs of the next phase may read them.
        self.delete_temps = delete_temps
        self._interrupt: List[int] = []
        self._signalled: List[int] = []  # the real signals among them (not a `stop` request)
        self._records: List[Record] = []
        # Records of jobs that succeeded, waiting for their outputs' digests (_hash_outputs):
        # (record, job, when it ended, each output's fingerprint then: None for a directory).
        self._unhashed: List[Tuple[Record, Job, float, List[Optional[Fingerprint]]]] = []
        # Jobs that succeeded and whose inputs are still to be checked for edits made while
        # they ran (_verify_inputs), and the `latest` row each replaced (put back if it fails).
        self._unverified: List[Job] = []
        self._latest_before: Dict[str, Optional[JobRow]] = {}
        self._attempt_rows: List[tuple] = []
        self._adopted: List[Tuple[str, str]] = []  # see _adopt
        self._renamed_away: List[str] = []  # old keys of renamed jobs adopted under their new ones
        self._finished_durations: List[float] = []  # of this run's jobs: a first build's ETA
        self._real_root = os.path.realpath(self.root)
        self._aliased_dirs: Dict[str, str] = {}  # directory -> its real project path (see _alias_problem)
        self._log_prefix = os.path.join(self.root, "")  # log paths are made under the root
        self._state_prefix = os.path.join(self.root, STATE_DIR, "")
        self._made_dirs: Set[str] = set()
        self._safe_dirs: Set[str] = set()  # output parents checked to resolve inside the project
        self._created_dirs: Set[str] = set()  # output parents this build made: nothing older is in them
        self._restarted: Set[str] = set()  # jobs cancelled because an input changed
        self._rewritten: Dict[str, List[str]] = {}  # see _rewrites
        self._delays: Dict[Tuple[str, int], float] = {}
        self._last_flush = 0.0
        self._stopping = False  # the build is over: background helpers stop
        self._temps: Optional[TempOutputs] = None  # what may be deleted after use (temps.py)
        self._needed: Dict[str, Reason] = {}  # jobs whose gone temporary outputs are needed
        self.relisted = False  # a job's depfile listed other files than its last run's did
        # A job ran but could not be recorded for what its depfile listed: no stamp may say
        # this build left everything up to date.
        self.unproven = False
        self._results: Dict[str, JobResult] = {}
        self._retried: Dict[str, Tuple[str, Optional[str]]] = {}  # key -> its last failure, log
        self._trees: Optional[Set[str]] = None  # the build's directory outputs (see _maker_of)
        self._wants_output = reporter.wants_output  # else job logs are never read back
        self._listed_deps, self._listed_dependents = self._order_listed()

    def _order_listed(self) -> Tuple[Dict[str, List[Job]], Dict[str, List[Job]]]:
        """Dependencies that the files a job's depfile listed in its last run add, as Ninja's
        deps log adds them: a generated header (`gen/version.h`, made by another rule) that a
        compile listed but its rule does not declare. Its maker runs first, and the compile is
        checked again after it, as after any dependency that ran: otherwise the build that
        remade the header left the object built from the old one. (Key -> the jobs making
        what it listed; maker key -> the jobs waiting for it.) An edge that would close a
        cycle is left out (the job's record then names the header as an input anyway)."""
        deps: Dict[str, List[Job]] = {}
        dependents: Dict[str, List[Job]] = {}
        candidates = [job for job in self.graph.jobs if job.depfile and job.key in self.latest]
        if not candidates:
            return deps, dependents
        present = {job.key for job in self.graph.jobs}
        edges: Dict[Tuple[str, str], Tuple[Job, Job]] = {}  # (maker, job) keys -> the pair
        for job in candidates:
            for path, _ in self.latest[job.key].discovered:
                maker = self._maker_of(path)
                if maker is not None and maker is not job and maker.key in present and maker not in job.deps:
                    edges[(maker.key, job.key)] = (maker, job)
        if not edges:
            return deps, dependents
        # Edges that would close a cycle go: a topological sort of the whole graph (declared
        # dependencies and these edges: linear, where asking per edge whether the job is
        # upstream of its maker walked the maker's upstream each time) leaves the jobs it
        # cannot place, those on a cycle and those after one; the added edges among the
        # ones on a cycle go (not those of a job that only comes after one), until every job
        # is placed.
        # (One pass: a cycle of declared dependencies alone cannot exist, so every cycle left
        # holds one of these edges, between two jobs the pass finds.)
        on_cycle = self._on_cycles(edges.values())
        if on_cycle:
            edges = {key: pair for key, pair in edges.items() if not (key[0] in on_cycle and key[1] in on_cycle)}
        for maker, job in edges.values():
            deps.setdefault(job.key, []).append(maker)
            dependents.setdefault(maker.key, []).append(job)
        return deps, dependents

    def planned_order(self, verdicts: Mapping[str, Verdict]) -> List[Job]:
        """The graph's jobs in the order a build with one job slot would start them (for
        `plan`, which numbers them so), as run() goes: jobs are decided in the order they
        become ready (up-to-date ones settle at once, readying their dependents), and of the
        jobs waiting to run, the one with the longest path of expected work after it starts
        first, ties going to the one queued first (the ReadyQueue); the makers of files a
        depfile listed (_order_listed) come before the jobs waiting for them."""
        import heapq

        jobs = self.graph.jobs
        priority = critical_path(jobs, self._durations())
        pending = self._pending()
        decide: Deque[Job] = collections.deque(job for job in jobs if not pending[job.key])
        queue: List[Tuple[float, int, Job]] = []
        order: List[Job] = []
        queued = itertools.count()
        while True:
            while decide:
                job = decide.popleft()
                if verdicts[job.key].up_to_date:
                    order.append(job)
                    self._release(job, pending, decide)
                else:
                    heapq.heappush(queue, (-priority.get(job.key, 0.0), next(queued), job))
            if not queue:
                break
            job = heapq.heappop(queue)[2]
            order.append(job)
            self._release(job, pending, decide)
        return order

    def _maker_of(self, path: str) -> Optional[Job]:
        """The job of this build that makes `path`: an output of it, or a file inside one of
        its directory outputs."""
        producers = self.graph.producers
        maker = producers.get(path)
        if maker is None:
            if self._trees is None:
                self._trees = {o for job in self.graph.jobs for o, is_dir in zip(job.outputs, job.dir_outputs) if is_dir}
            parent = path
            while maker is None and self._trees and "/" in parent:
                parent = parent.rpartition("/")[0]
                maker = producers.get(parent) if parent in self._trees else None
        return maker

    def _on_cycles(self, edges: Iterable[Tuple[Job, Job]]) -> Set[str]:
        """The jobs on a cycle of the declared dependencies and `edges` (maker, job), and
        those between two cycles: what a topological sort cannot place (a cycle and what
        comes after it), less what leads to no cycle (jobs that only follow one), found by
        taking away, again and again, the jobs nothing left depends on."""
        waiting = {job.key: len(job.deps) for job in self.graph.jobs}
        extra: Dict[str, List[str]] = {}
        for maker, job in edges:
            waiting[job.key] += 1
            extra.setdefault(maker.key, []).append(job.key)
        jobs = {job.key: job for job in self.graph.jobs}

        def after(key: str) -> Iterable[str]:
            return itertools.chain((d.key for d in jobs[key].dependents), extra.get(key, ()))

        ready = [key for key, count in waiting.items() if count == 0]
        while ready:
            key = ready.pop()
            for dependent in after(key):
                if dependent in waiting:
                    waiting[dependent] -= 1
                    if waiting[dependent] == 0:
                        ready.append(dependent)
        left = {key for key, count in waiting.items() if count > 0}
        if not left:
            return left
        onward = {key: sum(1 for d in after(key) if d in left) for key in left}
        before: Dict[str, List[str]] = {}
        for key in left:
            for dependent in after(key):
                if dependent in left:
                    before.setdefault(dependent, []).append(key)
        ends = [key for key, count in onward.items() if count == 0]
        while ends:
            key = ends.pop()
            left.discard(key)
            for earlier in before.get(key, ()):
                onward[earlier] -= 1
                if onward[earlier] == 0:
                    ends.append(earlier)
        return left

    # -- prediction (also the whole of a dry run and of `weave plan`) -------------------------
    def predict(self, explain: bool = False) -> Dict[str, Verdict]:
        """Verdicts for every job, decided from the current files: a job whose dependency is
        stale is predicted stale with reason 'upstream will rerun'. `explain` (plan, why): its
        own reasons follow (an edited script of its own, a changed command), which a build
        need not know before the dependency has run."""
        try:
            return self._predict(explain)
        except UnreadableFile as exc:  # say which job reads it (a device, a FIFO, no permission)
            reader = next((job for job in self.graph.jobs if exc.path in job.inputs), None) or next(
                (job for job in self.graph.jobs if any(path == exc.path for path, _ in self._discovered_of(job))), None
            )
            if reader is not None:
                exc.message += f", needed by rule '{reader.rule.name}'" + (f" (job {reader.key})" if reader.wildcards else "")
            raise

    def _predict(self, explain: bool) -> Dict[str, Verdict]:
        verdicts: Dict[str, Verdict] = {}
        stale: Set[str] = set()
        unchanged = self.unchanged
        # Source files are read up front, several at a time (large inputs hash in parallel).
        jobs = self.graph.jobs
        produced = set(itertools.chain.from_iterable(job.outputs for job in jobs))
        # (each path once before filtering: a fan-in's inputs repeat across its many jobs)
        # (order_only sources too: not read for a verdict, but the no-op stamp vouches for them)
        self.files.prefetch(
            path
            for path in dict.fromkeys(
                itertools.chain.from_iterable(job.inputs + job.order_only if job.order_only else job.inputs for job in jobs)
            )
            if path not in produced and (unchanged is None or path not in unchanged)
        )
        for job in self.graph.jobs:
            upstream = [dep for dep in job.deps if dep.key in stale]
            if upstream and job.order_only:  # a job made first only for ordering changes nothing here
                listed = [path for path, _ in self._discovered_of(job)]
                upstream = [dep for dep in upstream if not only_ordered(dep, job, listed)]
            if upstream:
                named = ", ".join(d.display for d in upstream[:3])
                more = f", +{len(upstream) - 3:,} more" if len(upstream) > 3 else ""
                verdict = Verdict(None, [], [Reason(UPSTREAM, named + more)] + (self._own_reasons(job) if explain else []))
            elif (
                unchanged is not None
                and job.key not in self.forced
                and job.outputs
                and all(path in unchanged for path in job.inputs)
                and all(path in unchanged for path in job.outputs)
                and (not job.depfile or self._listed_unchanged(job, unchanged))
            ):
                verdict = Verdict(None, [], [])
            else:
                verdict = self.scanner.check(job, forced=job.key in self.forced)
            verdicts[job.key] = verdict
            if not verdict.up_to_date:
                stale.add(job.key)
        if self._listed_dependents:
            self._predict_listed(verdicts, stale)
        # Gone temporary outputs that a job predicted to run reads: their jobs run first.
        self._needed = demand(self.graph, verdicts, self.files.exists)
        return verdicts

    def _discovered_of(self, job: Job) -> List[Tuple[str, str]]:
        """(path, digest) of the files `job`'s depfile listed at its latest run."""
        row = self.latest.get(job.key)
        return row.discovered if row is not None and row.discovered else []

    def _own_reasons(self, job: Job) -> List[Reason]:
        """Why `job` would run even if its stale dependencies remade their outputs as they
        were: its latest run compared with now, taking what a dependency writes (an output,
        or a file in its directory output) as recorded, since that is theirs to change."""
        forced = [Reason(FORCED)] if job.key in self.forced else []
        latest = self.latest.get(job.key)
        record = self.store.record(latest.signature) if latest is not None and latest.signature else None
        if record is None:
            return forced  # never built: 'upstream will rerun' says enough
        recorded = dict(record.inputs)
        inputs: List[Tuple[str, str]] = []
        for path in job.inputs:
            if self._maker_of(path) in job.deps:  # a dependency's to change: as recorded
                inputs.append((path, recorded.get(path, "")))
                continue
            digest = self.files.digest(path)
            if digest is None:
                return forced + [Reason(INPUT_MISSING, path)]
            inputs.append((path, digest))
        reasons = [
            reason
            for reason in self.scanner.explain_new_signature(job, inputs, latest)
            if reason.kind != NEVER_BUILT
        ]
        return forced + reasons + self.scanner.compare_outputs(job, record.outputs)

    def _predict_listed(self, verdicts: Dict[str, Verdict], stale: Set[str]) -> None:
        """A job waiting for the maker of a file its depfile listed (_order_listed), predicted
        up to date while that maker is predicted to run, is predicted to run after it, and so
        is everything downstream of it."""
        waiting = [(job, maker) for maker in self.graph.jobs if maker.key in stale for job in self._listed_dependents.get(maker.key, ())]
        while waiting:
            job, maker = waiting.pop()
            if job.key in stale:
                continue
            stale.add(job.key)
            verdicts[job.key] = Verdict(None, [], [Reason(UPSTREAM, maker.display)])
            waiting.extend((dependent, job) for dependent in job.dependents)
            waiting.extend((dependent, job) for dependent in self._listed_dependents.get(job.key, ()))

    def _listed_unchanged(self, job: Job, unchanged: Mapping[str, str]) -> bool:
        """Whether the files a job's depfile listed last time are unchanged (known)."""
        row = self.latest.get(job.key)
        return row is not None and all(path in unchanged for path, _ in row.discovered)

    def listed(self) -> Optional[Dict[str, List[str]]]:
        """For each job with a depfile, the files it listed when last verified (the stamp
        covers them, as inputs); None when this build proves nothing for them: a job could
        not be recorded, or a listed file no longer has the content recorded with the job
        (another job rewrote it after this one was decided: a generated header the rule does
        not declare), so a stamp now would hide a stale job."""
        if self.unproven:
            return None
        listings, digest = self._listings(), self.files.digest
        try:
            for key in listings:
                if any(digest(path) != recorded for path, recorded in self.latest[key].discovered):
                    return None
        except UnreadableFile:
            return None
        return listings

    def _listings(self) -> Dict[str, List[str]]:
        """By job key, the files each job with a depfile listed in its latest record."""
        latest = self.latest
        return {
            job.key: [path for path, _ in latest[job.key].discovered]
            for job in self.graph.jobs
            if job.depfile and job.key in latest
        }

    def absent_temps(self) -> Dict[str, str]:
        """The temporary outputs that are gone while their jobs are up to date, with the
        digest each job's record holds for them (for the no-op stamp)."""
        root = self.root
        return {
            path: digest
            for path, digest in self.scanner.virtual.items()
            if not os.path.lexists(os.path.join(root, path))
        }

    # -- the build -----------------------------------------------------------------------------
    def run(self, verdicts: Optional[Dict[str, Verdict]] = None) -> BuildResult:
        started = time.monotonic()
        if verdicts is None:
            verdicts = self.predict()
        results: Dict[str, JobResult] = {}
        self._results = results
        if self.delete_temps and not self.options.keep_temp and self.graph.temp_jobs:
            self._temps = TempOutputs(self.graph, self._listings()) or None
        to_run = sum(1 for v in verdicts.values() if not v.up_to_date)
        if to_run == 0:
            for job in self.graph.jobs:
                results[job.key] = JobResult(job, UP_TO_DATE)
                self._adopt(job.key, verdicts[job.key])
                if job.depfile:
                    self._drop_leftover_depfile(job)
                if self._temps is not None:
                    self._temps.settled(job, True)
            self._flush(final=True)  # settles racy files, so that this no-op can be stamped
            if self._ran_before:
                self._summary(BuildResult(results, time.monotonic() - started, self.untouched))
            elif self.summarize:
                self.reporter.nothing_to_do(len(results) + len(self.untouched))
            return BuildResult(results, time.monotonic() - started, self.untouched)
        if self.executor is None:
            self.executor = LocalExecutor(registry=os.path.join(self.root, RUNNING_REGISTRY))
        self.reporter.build_started(to_run, len(self.graph.jobs) + len(self.untouched))
        durations = self._durations()
        queue = ReadyQueue(self.pool, critical_path(self.graph.jobs, durations))
        pending = self._pending()
        decide: Deque[Job] = collections.deque(job for job in self.graph.jobs if not pending[job.key])
        ran: Set[str] = set()
        running: Dict[str, _Running] = {}
        retry_at: List[Tuple[float, Job, Verdict, int]] = []
        attempts: Dict[str, int] = {}
        state = {"total": to_run, "started": 0, "stopping": False, "cutoff": 0}
        predicted = {key: verdict.up_to_date for key, verdict in verdicts.items()}
        estimate = self._estimates(durations)
        previous_handlers = self._install_signal_handlers()
        if previous_handlers:  # a stop signal then ends the wait for completions at once
            self.executor.wake_on_signals()
        # ... and ends the hashing of a large file (whose read loop asks between chunks).
        previous_hash_stop = stop_hashing_when(lambda: bool(self._interrupt))
        grace_deadline: Optional[float] = None
        term_at: Optional[float] = None  # when the jobs Ctrl-C reached get SIGTERM

        def start_what_fits() -> None:
            while not state["stopping"]:
                picked = queue.pop_startable()
                if picked is None:
                    break
                job, grant = picked
                attempt = attempts.get(job.key, 0) + 1
                attempts[job.key] = attempt
                if attempt == 1:
                    state["started"] += 1
                entry = self._start(job, grant, verdicts[job.key], attempt, state)
                if entry is None:
                    self.pool.release(grant)
                    results[job.key] = self._failed_result(job, verdicts[job.key], attempt, "could not start")
                    state["stopping"] = state["stopping"] or not self.options.keep_going
                    self._settle(job, pending, decide)
                    continue
                running[job.key] = entry
                if self.reporter.live:
                    self._progress(running, state, queue, started, estimate)

        try:
            while True:
                # 1. Decide every job whose dependencies are settled.
                while decide:
                    job = decide.popleft()
                    try:
                        result = self._decide(job, verdicts, ran, results)
                    except Stopped:  # stopping while it hashed a large input: left undecided
                        state["stopping"] = True
                        continue
                    if result is None:
                        queue.push(job)
                        continue
                    results[job.key] = result
                    if result.outcome == FAILED and not self.options.keep_going:
                        state["stopping"] = True
                    if result.outcome == UP_TO_DATE and not predicted[job.key]:
                        state["total"] -= 1  # early cutoff: predicted to run, but need not
                        state["cutoff"] += 1
                    self._settle(job, pending, decide)
                # 2. Interrupts: terminate, then kill after the grace period.
                if self.options.stop is not None and self.options.stop.is_set() and not self._interrupt:
                    self._interrupt.append(signal.SIGINT)
                if self.options.changed is not None:
                    if running:
                        self._cancel_readers(running, self.options.changed.take())
                    if self.options.changed.take_rules_changed():
                        state["stopping"] = True  # the next build starts from the new Weavefile
                        state["rules_changed"] = True
                        self._cancel_changed_rules(running, self.options.changed)
                if self._interrupt:
                    state["stopping"] = True
                    if grace_deadline is None:
                        grace_deadline = time.monotonic() + GRACE_SECONDS
                        # (a `stop` request is a Ctrl-C; SIGTERM, SIGHUP and SIGQUIT become SIGTERM)
                        gentle = signal.SIGINT if self._interrupt[0] == signal.SIGINT else signal.SIGTERM
                        if gentle == signal.SIGINT:
                            term_at = time.monotonic() + INTERRUPT_TO_TERM
                        for entry in running.values():
                            self.executor.cancel(entry.job.key, signum=gentle)
                    elif term_at is not None and time.monotonic() >= term_at:
                        term_at = None
                        for entry in running.values():
                            self.executor.cancel(entry.job.key)
                    if len(self._interrupt) > 1 or time.monotonic() >= grace_deadline:
                        for entry in running.values():
                            self.executor.cancel(entry.job.key, force=True)
                # 3. Start what fits.
                now = time.monotonic()
                if retry_at and not state["stopping"]:
                    due = [item for item in retry_at if item[0] <= now]
                    for item in due:
                        retry_at.remove(item)
                        queue.push(item[1])
                        verdicts[item[1].key] = item[2]
                start_what_fits()
                if not running:
                    if decide:
                        continue
                    if state["stopping"] or (not queue and not retry_at):
                        break
                    if not retry_at and queue:
                        # Nothing runs and nothing fits: cannot happen after the feasibility
                        # check, but never spin.
                        raise UsageError("jobs are waiting for resources that can never be free")
                # Records are committed in batches, at most every FLUSH_INTERVAL (a crash loses
                # at most that much bookkeeping: those jobs rerun), so SQLite is not on the
                # per-job path of builds of many tiny jobs; and here, with the free slots
                # already refilled, so no slot waits for a commit.
                unflushed = bool(self._records or self._unhashed or self._attempt_rows or self._unverified)
                if unflushed and time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
                    self._flush()
                    unflushed = False
                # 4. Wait for completions (or a timer: retry, timeout, grace, live output, the
                # next commit).
                timeout = self._wait_timeout(running, retry_at, grace_deadline)
                if unflushed and timeout is not None:
                    timeout = max(0.0, min(timeout, self._last_flush + FLUSH_INTERVAL - time.monotonic()))
                completions = self.executor.wait(timeout)
                self._check_timeouts(running)
                self._stream(running)
                if self.reporter.live:
                    self._progress(running, state, queue, started, estimate)
                finished = [(running.pop(str(completion.token)), completion) for completion in completions]
                for entry, _ in finished:
                    self.pool.release(entry.grant)
                if queue and not self._interrupt and self._refill_first(finished, pending):
                    # The freed slots take the next queued jobs before the finished ones'
                    # bookkeeping (their outputs looked at, their records), which no queued
                    # job waits for: a slot of a build of short jobs idles for the spawn alone.
                    start_what_fits()
                for entry, completion in finished:
                    outcome = self._finish(entry, completion, results, state)
                    job = entry.job
                    if outcome == "retry":
                        delay = self._retry_delay(job, entry.attempt)
                        retry_at.append((time.monotonic() + delay, job, entry.verdict, entry.attempt))
                        continue
                    if outcome == RAN:
                        ran.add(job.key)
                    elif outcome == CANCELLED and job.key in self._restarted:
                        pass  # its input changed: the next build runs it; the others go on
                    elif outcome in (FAILED, CANCELLED) and not self.options.keep_going:
                        state["stopping"] = True
                    self._settle(job, pending, decide)
            self._flush(final=True)
        finally:
            self._stopping = True
            stop_hashing_when(previous_hash_stop)
            self.executor.stop_waking_on_signals()
            self._restore_signal_handlers(previous_handlers)
        # Jobs that failed an attempt and whose retry the stopping build did not run (waiting
        # for their delay, or queued): failed, and reported as every failure is.
        for job in self.graph.jobs:
            if job.key in results or job.key not in self._retried or state.get("rules_changed"):
                continue  # (watch --restart: the next build tries it afresh)
            failure, log_path = self._retried[job.key]
            result = self._failed_result(
                job, verdicts[job.key], attempts.get(job.key, 0), f"{failure}; its retry was not run because the build stopped"
            )
            result.log_path = log_path
            results[job.key] = result
            if not self._interrupt:
                self.reporter.job_failed(job.display, result.message, job.cmd, log_path, read_tail(log_path) if log_path else "")
        # Jobs never reached (a dependency failed, or the build stopped early).
        for job in self.graph.jobs:
            if job.key not in results:
                results[job.key] = JobResult(job, SKIPPED, verdicts[job.key].reasons)
        seconds = time.monotonic() - started
        result = BuildResult(results, seconds, self.untouched)
        if self._interrupt:
            # A signal that came on top of a `stop` request is what ended
            # the build: its code, and the caller can tell it from the request.
            if self._signalled:
                interrupted = Interrupted(self._signalled[0])
            else:
                interrupted = Interrupted(self._interrupt[0], requested=True)
            interrupted.result = result  # type: ignore[attr-defined]
            raise interrupted
        failed = result.failed
        # A phase summarizes only when its failure ends the build (with -k the build goes on,
        # and its summary counts the failure).
        speaks = self.summarize or (bool(failed) and not self.options.keep_going)
        if speaks:
            self._summary(result, cutoff=int(state["cutoff"]))
        if failed:
            if self.options.keep_going and speaks:
                self.reporter.failures(
                    [item.job.display + (f" (log: {os.path.relpath(item.log_path)})" if item.log_path else "") for item in failed]
                )
            error = BuildFailed(f"{len(failed)} job(s) failed", [item.job.key for item in failed])
            error.result = result  # type: ignore[attr-defined]
            raise error
        return result

    def _refill_first(self, finished: List[Tuple[_Running, Completion]], pending: Dict[str, int]) -> bool:
        """Whether the slots these jobs freed may be refilled before their bookkeeping: each
        exited 0 in time and left its outputs and depfile (a failure may stop the build, and
        is told first: one stat per file), and none is the last dependency of a job (which,
        ready now, may come before what is queued: the critical path's order holds)."""
        if not all(c.returncode == 0 and not c.cancelled and not c.timed_out for _, c in finished):
            return False
        root = self.root
        freed: Dict[str, int] = {}
        for entry, _ in finished:
            job = entry.job
            for path in itertools.chain(job.outputs, (job.depfile,) if job.depfile else ()):
                if not os.path.exists(os.path.join(root, path)):  # (a link to nothing fails too)
                    return False
            for dependent in itertools.chain(job.dependents, self._listed_dependents.get(job.key, ())):
                freed[dependent.key] = freed.get(dependent.key, 0) + 1
                if pending[dependent.key] <= freed[dependent.key]:
                    return False
        return True

    def _summary(self, result: BuildResult, cutoff: int = 0) -> None:
        """The build's summary line; jobs an earlier phase ran, up to date here, count as run."""
        before = sum(1 for key in self._ran_before if result.outcome(key) == UP_TO_DATE)
        self.reporter.summary(
            result.count(RAN) + before,
            result.count(UP_TO_DATE) - before,
            len(result.failed),
            result.count(SKIPPED),
            self._seconds_before + result.seconds,
            cutoff=cutoff,
        )

    def _retries(self, job: Job) -> int:
        """How many times a failed job of `job`'s rule is tried again."""
        return job.rule.retries if job.rule.retries is not None else (self.options.retries or 0)

    def _estimates(self, durations: Dict[str, float]) -> Dict[str, float]:
        """Each job's expected duration: its last one, else the median of those known. Empty
        when no job has a history (a first build): the ETA then comes from this run's jobs."""
        known = sorted(d for d in durations.values() if d)
        if not known:
            return {}
        default = known[len(known) // 2]
        return {job.key: durations.get(job.key) or default for job in self.graph.jobs}

    def _progress(self, running: Dict[str, _Running], state: Dict[str, object], queue: ReadyQueue, started: float, estimate: Dict[str, float]) -> None:
        """Feed the live status line: done/total, running jobs, elapsed time and an ETA from
        the durations of earlier runs (remaining work spread over the job slots)."""
        now = time.monotonic()
        done = int(state["started"]) - len(running)
        total = int(state["total"])
        names = [e.job.rule.name for e in running.values()]
        finished = self._finished_durations
        if not estimate and not finished:
            self.reporter.progress(done, total, names, now - started, None)  # nothing to go on yet
            return
        typical = sum(finished) / len(finished) if finished else 0.0

        def expected(key: str) -> float:
            return estimate.get(key, typical)

        left = sum(max(0.0, expected(e.job.key) - (now - e.started)) for e in running.values())
        left += sum(expected(job.key) for job in queue.peek())
        waiting = max(0, total - done - len(running) - len(queue))
        mean = sum(estimate.values()) / len(estimate) if estimate else typical
        left += waiting * mean
        eta = left / max(1, self.pool.slots)
        self.reporter.progress(done, total, names, now - started, eta)

    def _decide(self, job: Job, verdicts: Dict[str, Verdict], ran: Set[str], results: Dict[str, JobResult]) -> Optional[JobResult]:
        """Settle a ready job as up to date / not run, or return None if it must run."""
        if job.key in self._failed_before:
            return self._failed_before[job.key]
        listed = self._listed_deps.get(job.key)
        deps = job.deps + listed if listed else job.deps  # (and the makers of what it listed)
        for dep in deps:
            outcome = results[dep.key].outcome
            if outcome not in (UP_TO_DATE, RAN):
                return JobResult(job, SKIPPED, [Reason("dependency failed", dep.display)])
        verdict = verdicts[job.key]
        predicted_upstream = bool(verdict.reasons) and verdict.reasons[0].kind == UPSTREAM
        if predicted_upstream or any(dep.key in ran for dep in deps):
            # A dependency ran (or was predicted to): decide now, from its actual outputs.
            verdict = verdicts[job.key] = self.scanner.check(
                job, forced=job.key in self.forced, explain=self.reporter.wants_reasons
            )
            if verdict.up_to_date and job.key in self._needed and any(
                path in self.scanner.virtual for path in job.temp_outputs
            ):  # up to date, but a job that must run reads its temporary output, now gone
                verdict = verdicts[job.key] = Verdict(verdict.signature, verdict.inputs, [self._needed[job.key]])
        if verdict.up_to_date:
            self._adopt(job.key, verdict)
            if job.depfile:
                self._drop_leftover_depfile(job)
            return JobResult(job, UP_TO_DATE)
        if verdict.reasons[0].kind == INPUT_MISSING:
            result = JobResult(job, FAILED, verdict.reasons)
            result.message = f"input '{verdict.reasons[0].detail}' is missing"
            self.reporter.job_failed(job.display, result.message, job.cmd, None, "")
            return result
        return None

    def _drop_leftover_depfile(self, job: Job, written_since: Optional[float] = None) -> None:
        """An up-to-date job's depfile on disk was left by a run that weave did not see end
        (killed before it read and removed it): no later run reads it, so it goes now. With
        `written_since` (wall clock), only if it changed since then (a failed run's own)."""
        full = os.path.join(self.root, job.depfile)
        try:
            st = os.lstat(full)
            if written_since is not None and st.st_ctime_ns < int(written_since * 1e9):
                return  # older than the run: not the job's to remove
            if stat_module.S_ISREG(st.st_mode) and self._inside_project(os.path.dirname(full)):
                os.unlink(full)
        except OSError:
            pass

    def _adopt(self, key: str, verdict: Verdict) -> None:
        """A job up to date by a record older than its latest (its inputs went back to what
        they were): that record becomes its latest, so that `plan` and `why` explain the next
        change against the run that made the outputs on disk. So does the latest record of a
        renamed rule's job, made under the old name (Project._inherit_renamed)."""
        if verdict.signature is None:
            return  # vouched for by the stamp: its latest record is the one that matched
        row = self.latest.get(key)
        if row is not None and row.renamed_from is not None and row.signature == verdict.signature:
            self._adopted.append((key, verdict.signature))  # recorded under its own key from now on
            self._renamed_away.append(row.renamed_from)  # ... and under that key only
            row.renamed_from = None
        elif row is None or row.signature != verdict.signature:
            record = self.store.record(verdict.signature)
            if record is not None:
                self._adopted.append((key, verdict.signature))
                self.latest[key] = JobRow(record.signature, " ".join(record.outputs), record.duration, record.discovered)

    def _durations(self) -> Dict[str, float]:
        """Each job's duration in its latest run, where known: the critical path's weights."""
        return {key: row.duration for key, row in self.latest.items() if row.duration}

    def _pending(self) -> Dict[str, int]:
        """For each job, how many jobs it waits for: its dependencies and the makers of the
        files its depfile listed (_order_listed)."""
        pending = {job.key: len(job.deps) for job in self.graph.jobs}
        for key, makers in self._listed_deps.items():
            pending[key] += len(makers)
        return pending

    def _release(self, job: Job, pending: Dict[str, int], decide: Deque[Job]) -> None:
        """`job` is settled: the jobs waiting for it that wait for nothing else are to be decided."""
        for dependent in itertools.chain(job.dependents, self._listed_dependents.get(job.key, ())):
            pending[dependent.key] -= 1
            if pending[dependent.key] == 0:
                decide.append(dependent)

    def _settle(self, job: Job, pending: Dict[str, int], decide: Deque[Job]) -> None:
        if self._temps is not None:
            self._temps.settled(job, self._results[job.key].outcome in (RAN, UP_TO_DATE))
        self._release(job, pending, decide)

    # -- starting and finishing jobs ------------------------------------------------------------
    def _start(self, job: Job, grant: Grant, verdict: Verdict, attempt: int, state: Dict[str, object]) -> Optional[_Running]:
        if job.rule.temp and self.scanner.virtual:
            for path in job.temp_outputs:  # made again: its readers read the new file
                self.scanner.virtual.pop(path, None)
        try:
            self._prepare_outputs(job)
        except UsageError as exc:
            self.reporter.job_failed(job.display, str(exc), job.cmd, None, "")
            return None
        env: Optional[Dict[str, str]] = None  # None: inherit weave's environment (cheapest)
        if job.env or "gpu" in job.resources:
            env = dict(os.environ)
            env.update({name: expand_environment(value) for name, value in job.env.items()})
            if "gpu" in job.resources:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(grant.gpu_ids)
        log_path = log_path_for(self.root, job, attempt)
        log_dir = os.path.dirname(log_path)
        if log_dir not in self._made_dirs:
            os.makedirs(log_dir, exist_ok=True)
            self._made_dirs.add(log_dir)
        if attempt == 1:
            self.reporter.job_started(job.display, int(state["started"]), int(state["total"]), job.cmd, verdict.reasons)
        else:
            self.reporter.job_retried(job.display, attempt, self._retries(job) + 1)
        timeout = job.rule.timeout if job.rule.timeout is not None else self.options.timeout
        deadline = time.monotonic() + timeout if timeout else None
        assert self.executor is not None
        if job.depfile:
            problem = self._depfile_problem(job)
            if problem is not None:
                self.reporter.job_failed(job.display, problem, job.cmd, None, "")
                return None
        launched = time.time()
        try:
            self.executor.start(job.key, job.cmd, env, self.root, log_path)
        except OSError as exc:
            if exc.filename and os.fsdecode(exc.filename).startswith(self._state_prefix):
                raise  # weave's own file (a log, the registry) is in the way: not the job's fault
            message = f"cannot start: {exc.strerror or exc}"
            if exc.errno == errno.E2BIG:
                size = len(job.cmd.encode())
                listed = sum(len(path.encode()) + 1 for path in job.inputs + job.outputs)
                fix = (
                    "list the inputs in a file, or let the script find them (a directory input, or"
                    " a glob in it)"
                    if listed * 2 > size  # mostly paths: a fan-in spelled out on the command line
                    else "put the script in a file of its own, listed in the rule's inputs, and run"
                    " that file"
                )
                words = len(job.cmd.split())
                plain = getattr(self.executor, "pipeline", None)
                if plain is not None and plain(job.cmd, env, self.root) is not None:
                    limit = (
                        "a program started directly, as this plain command is, may take about 2 MB for"
                        " its words, 8 bytes more per word, and the environment together"
                    )
                else:
                    limit = (
                        "this command uses shell syntax or a builtin, so bash runs it, and bash takes it as"
                        " one argument: 128 KiB for a command bash runs (a plain program may take about"
                        " 2 MB for its words, 8 bytes more per word, and the environment together)"
                    )
                message += f" (the command is {size:,} bytes in {words:,} words; {limit}): {fix}"
            self.reporter.job_failed(job.display, message, job.cmd, None, "")
            return None
        running = _Running(job, grant, verdict, attempt, log_path, deadline)
        running.started_wall = launched
        return running

    def _rewrites(self, job: Job) -> List[str]:
        """The paths whose digests a run of `job` makes stale: its outputs and, under a
        directory output, the files and subdirectories other jobs of this build read (their
        digests may have been taken before it ran, when its dependents were predicted)."""
        if not any(job.dir_outputs):
            return job.outputs
        paths = self._rewritten.get(job.key)
        if paths is None:
            trees = tuple(output + "/" for output, is_dir in zip(job.outputs, job.dir_outputs) if is_dir)
            nested = {
                path
                for dependent in job.dependents
                for path in itertools.chain(dependent.inputs, dependent.order_only)
                if path.startswith(trees)
            }
            # ... and the files their depfiles listed there (a header in a generated tree that
            # a job waits for through order_only, or reads undeclared)
            for dependent in itertools.chain(job.dependents, self._listed_dependents.get(job.key, ())):
                nested.update(path for path, _ in self._discovered_of(dependent) if path.startswith(trees))
            paths = self._rewritten[job.key] = list(job.outputs) + sorted(nested)
        return paths

    def _prepare_outputs(self, job: Job) -> None:
        """Check outputs stay inside the project, remove stale ones, create parent dirs."""
        self.files.forget(self._rewrites(job))
        for output, is_dir in zip(job.outputs, job.dir_outputs):
            full = os.path.join(self.root, output)
            parent = os.path.dirname(full)
            if not self._inside_project(parent):
                raise UsageError(f"output '{output}' resolves outside the project directory (through a symlink)")
            problem = self._alias_problem("output", output)
            if problem is not None:
                raise UsageError(problem)
            try:
                mode = None
                # In a directory this build created, nothing older can be in the way (an output
                # has one job, and a retry removes its own first): no lstat, which costs tens of
                # microseconds on a directory that running jobs are filling.
                if parent not in self._created_dirs:
                    try:
                        mode = os.lstat(full).st_mode  # one system call for "what is there"
                    except FileNotFoundError:
                        pass
                if mode is not None and stat_module.S_ISDIR(mode):
                    if not is_dir and not self._made_by_last_run(job, output):
                        raise UsageError(
                            f"output '{output}' is a directory, but the rule declares a file: remove it "
                            f"if it is left over, or write '{output}/' in outputs if the rule makes a directory"
                        )
                    import shutil  # (rarely needed: not imported by every build)

                    shutil.rmtree(full)
                elif mode is not None:
                    os.unlink(full)
                if parent not in self._made_dirs:
                    try:
                        os.makedirs(parent)
                        self._created_dirs.add(parent)
                    except FileExistsError:
                        if not os.path.isdir(parent):
                            raise
                    self._made_dirs.add(parent)
            except OSError as exc:
                raise UsageError(f"cannot prepare output '{output}': {exc.strerror or exc}") from None
        if job.log:  # the command writes it (`2> {log}`): its directory must be there
            parent = os.path.dirname(os.path.join(self.root, job.log))
            if not self._inside_project(parent):
                raise UsageError(f"log '{job.log}' resolves outside the project directory (through a symlink)")
            problem = self._alias_problem("log", job.log)
            if problem is not None:
                raise UsageError(problem)
            if parent not in self._made_dirs:
                try:
                    os.makedirs(parent, exist_ok=True)
                except OSError as exc:
                    raise UsageError(f"cannot make the directory of log '{job.log}': {exc.strerror or exc}") from None
                self._made_dirs.add(parent)

    def _made_by_last_run(self, job: Job, output: str) -> bool:
        """Whether the directory at `output` (now declared a file) is as the job's latest
        recorded run left it: a directory output of the rule before its edit, weave's to
        remove like any old output. A directory that differs is the user's, and left alone."""
        row = self.latest.get(job.key)
        if row is None or not row.outputs:
            return False
        try:
            digest = self.files.digest(output)
        except UnreadableFile:
            return False
        self.files.forget((output,))
        return digest is not None and digest in row.outputs

    def _remove_outputs(self, job: Job, started: float) -> None:
        """Remove what a job that did not succeed left at its outputs. Called only after it
        ran, and _prepare_outputs left nothing at them before, so whatever is there is the
        job's: a directory where a file is declared too (else no later build could run it).
        Its depfile goes too if the run (started at `started`, wall clock) wrote it: what a
        failed run listed is never read (and it kept the output's directory from being
        removed by `weave clean`); a file older than the run is not the job's."""
        self.files.forget(self._rewrites(job))
        for output in job.outputs:
            full = os.path.join(self.root, output)
            try:
                if os.path.isdir(full) and not os.path.islink(full):
                    import shutil

                    shutil.rmtree(full, ignore_errors=True)
                elif os.path.lexists(full):
                    os.unlink(full)
            except OSError:
                pass
        if job.depfile and job.depfile not in job.outputs:
            self._drop_leftover_depfile(job, written_since=started)

    def _finish(self, entry: _Running, completion: Completion, results: Dict[str, JobResult], state: Dict[str, object]) -> str:
        job = entry.job
        self._end_output(entry)
        if self.reporter.live:
            self._finished_durations.append(completion.duration)
        failure: Optional[str] = None
        if completion.cancelled and not completion.timed_out:
            failure = "interrupted"
        elif completion.timed_out:
            timeout = job.rule.timeout if job.rule.timeout is not None else self.options.timeout
            failure = f"timed out after {timeout:g}s"
        elif completion.returncode != 0:
            if completion.returncode < 0:
                failure = f"killed by signal {signal.Signals(-completion.returncode).name}"
                if -completion.returncode == signal.SIGKILL:  # as bash's exit code 137 says
                    failure += ", often by the out-of-memory killer"
            else:
                failure = f"exited with code {completion.returncode}" + _exit_code_meaning(completion.returncode)
                failure += make_variables_note(job.rule.cmd or "")
        if failure is None:
            # Outputs are only looked at here; they are hashed later (_hash_outputs), once.
            self.files.forget(self._rewrites(job))
            for output, is_dir in zip(job.outputs, job.dir_outputs):
                if not self.files.exists(output):
                    failure = f"rule {job.rule.name} exited 0 but did not create {output}" + ("/" if is_dir else "")
                    full = os.path.join(self.root, output)
                    if os.path.islink(full):  # it made one, pointing nowhere: say so
                        failure = (
                            f"rule {job.rule.name} exited 0 but its output {output} is a broken symlink"
                            f" (to '{os.readlink(full)}')"
                        )
                    break
                if self.files.is_directory(output) != is_dir and (
                    is_dir or not os.path.islink(os.path.join(self.root, output))  # a link to a directory is a file
                ):
                    failure = (
                        f"rule {job.rule.name} made {output}/ a file, not a directory"
                        if is_dir
                        else f"rule {job.rule.name} made {output} a directory: declare it as '{output}/'"
                        " in outputs (a trailing slash marks a directory output)"
                    )
                    break
                special = None if is_dir else self.files.special_kind(output)
                if special is not None:  # weave could never read it to know its content
                    failure = f"rule {job.rule.name} made {output} a {special}, not a regular file"
                    break
        discovered: List[str] = []
        if failure is None and job.depfile:
            discovered, failure = self._read_depfile(job, entry.started_wall)
        status = "ok" if failure is None else ("timeout" if completion.timed_out else "cancelled" if completion.cancelled else "failed")
        if failure is not None and not completion.log_written:
            # Exited 0, silently, but weave found its outputs wrong: a failed attempt keeps a
            # log, if an empty one, as every failure does (history, report).
            try:
                open(entry.log_path, "wb").close()
                completion.log_written = True
            except OSError:
                pass
        self._attempt_rows.append(
            (
                self.run_id,
                job.key,
                job.rule.name,
                entry.attempt,
                entry.started_wall,
                completion.duration,
                completion.returncode,
                status,
                completion.peak_rss,
                completion.cpu_time,
                entry.log_path[len(self._log_prefix) :] if completion.log_written else None,
            )
        )
        result = JobResult(job, RAN, entry.verdict.reasons)
        result.attempts = entry.attempt
        result.duration = completion.duration
        result.log_path = entry.log_path if completion.log_written else None
        if failure is None:
            # Its inputs are checked for edits made while it ran before its record may be
            # committed (_verify_inputs), for all the jobs that ended since the last commit
            # at once: a header that 1,000 jobs read is stat-ed once per commit, not per job.
            if job.inputs:
                self._unverified.append(job)
            found: Optional[List[Tuple[str, str]]] = None  # what its depfile listed, with digests
            if job.depfile:
                found = self._discovered_digests(job, discovered, entry.started_wall) if discovered else []
                if self._temps is not None:
                    self._temps.keep_listed(discovered)
            if entry.verdict.signature is not None and job.outputs and not (job.depfile and found is None):
                record = Record(
                    entry.verdict.signature,
                    job.key,
                    job.rule.name,
                    recipe_of(job),
                    entry.verdict.inputs,
                    [],  # the outputs' digests, filled in by _hash_outputs
                    completion.duration,
                    time.time(),
                    found,
                )
                seen = [None if is_dir else self.files.seen_as(output) for output, is_dir in zip(job.outputs, job.dir_outputs)]
                self._unhashed.append((record, job, completion.ended, seen))
                before = self.latest.get(job.key)
                if job.depfile:
                    if before is None or [path for path, _ in before.discovered] != [path for path, _ in found or ()]:
                        self.relisted = True
                if job.inputs:
                    self._latest_before[job.key] = before
                self.latest[job.key] = JobRow(record.signature, None, record.duration, found)
            results[job.key] = result
            return RAN
        # Failure: never recorded; partial outputs removed.
        if completion.returncode == 0 and not completion.cancelled and self.executor is not None:
            # Exited 0 but failed here (an output or its depfile missing): what it left
            # running in the background goes too, as for any failed job.
            self.executor.stop_leftovers(completion)
        if completion.cancelled and not completion.timed_out:
            self._remove_outputs(job, entry.started_wall)
            result.outcome = CANCELLED
            result.message = failure
            results[job.key] = result
            return CANCELLED
        retries = self._retries(job)
        if entry.attempt <= retries and not self._interrupt and not state.get("stopping"):
            self._remove_outputs(job, entry.started_wall)
            delay = self._retry_delay(job, entry.attempt)
            self.reporter.job_retrying(job.display, entry.attempt, retries + 1, delay, failure)
            self._retried[job.key] = (failure, result.log_path)
            return "retry"
        if not self.options.keep_failed:
            self._remove_outputs(job, entry.started_wall)
        result.outcome = FAILED
        result.message = failure
        results[job.key] = result
        tail = read_tail(result.log_path) if result.log_path else ""
        own = self._written_log(job, entry.started_wall) if job.log else None
        if own is not None:
            if not tail:  # it printed nothing: what it wrote to its own log, then
                result.log_path, tail = own, read_tail(own)
            else:  # both: the output is shown, and its own log named
                failure += f" (it also wrote its log, {job.log})"
                result.message = failure
        self.reporter.job_failed(job.display, failure, job.cmd, result.log_path, tail)
        return FAILED

    def _written_log(self, job: Job, started: float) -> Optional[str]:
        """The full path of the job's own log if this attempt wrote to it (a log left by an
        earlier run is not this failure's story), else None."""
        own = os.path.join(self.root, job.log)
        try:
            st = os.stat(own)
        except OSError:
            return None
        if not stat_module.S_ISREG(st.st_mode) or st.st_size == 0 or st.st_mtime_ns < int(started * 1e9) - RACY_WINDOW_NS:
            return None
        return own

    def _inside_project(self, directory: str) -> bool:
        """Whether `directory` (an output's or depfile's) resolves inside the project, symlinks
        followed: nothing outside is weave's to write or delete. Checked once per directory."""
        if directory not in self._safe_dirs:
            real = os.path.realpath(directory)
            if real != self._real_root and not real.startswith(self._real_root + os.sep):
                return False
            self._safe_dirs.add(directory)
            spelled = os.path.relpath(directory, self.root).replace(os.sep, "/")
            alias = aliased_directory(real, self._real_root, "" if spelled == "." else spelled)
            if alias is not None:
                self._aliased_dirs[directory] = alias
        return True

    def _alias_problem(self, kind: str, path: str) -> Optional[str]:
        """Why weave may not write `path` (an output or log, whose directory _inside_project
        checked): a symlink inside the project makes it another path's second name. Removing
        `lnk/f` as an old output deleted the source `sdir/f` it stands for, and two rules could
        own one file under two names."""
        directory = os.path.dirname(os.path.join(self.root, path))
        alias = self._aliased_dirs.get(directory)
        if alias is None:
            return None
        spelled = os.path.dirname(path)
        real = f"{alias}/{os.path.basename(path)}" if alias else os.path.basename(path)
        return (
            f"{kind} '{path}' is reached through a symlink in the project: '{spelled}' leads to"
            f" '{alias or '.'}', so it is the file '{real}'; write it as '{real}' (weave knows each file"
            " by one name)"
        )

    def _depfile_problem(self, job: Job) -> Optional[str]:
        """Why weave may not read (and then remove) `job`'s depfile, if so."""
        if not self._inside_project(os.path.dirname(os.path.join(self.root, job.depfile))):
            return f"depfile '{job.depfile}' resolves outside the project directory (through a symlink)"
        return None

    def _read_depfile(self, job: Job, started: float) -> Tuple[List[str], Optional[str]]:
        """The files a job's depfile lists (see depfile.py), and the failure if it cannot be
        read. The depfile itself is removed: the record keeps what it said."""
        full = os.path.join(self.root, job.depfile)
        problem = self._depfile_problem(job)
        if problem is not None:
            return [], problem
        missing = f"rule {job.rule.name} exited 0 but did not write its depfile {job.depfile}"
        try:
            # Non-blocking: a FIFO made there would hold the build forever (deaf to SIGTERM).
            with open(os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), encoding="utf-8", errors="surrogateescape") as handle:
                st = os.fstat(handle.fileno())
                if not stat_module.S_ISREG(st.st_mode):
                    return [], f"its depfile {job.depfile} is not a regular file"
                # Written by this run, or not its depfile: weave never removes a file there
                # before the job runs (it may be anyone's), so an older one is not read.
                if st.st_ctime_ns < int(started * 1e9) - racy_window(st.st_ctime_ns):
                    return [], missing + " (the file there is older than this run)"
                text = handle.read()
        except FileNotFoundError:
            return [], missing
        except OSError as exc:
            return [], f"cannot read its depfile {job.depfile}: {exc.strerror or exc}"
        try:
            listed = depfile.parse(text)
        except depfile.DepfileError as exc:
            return [], f"its depfile {job.depfile} is not in make's syntax ({exc})"
        if job.depfile not in job.outputs:
            try:
                os.unlink(full)
            except OSError:
                pass
        # (its own log too: written while it ran, by design, and never an input)
        own = job.inputs + job.outputs + [job.depfile] + ([job.log] if job.log else [])
        return depfile.project_paths(listed, self.root, own), None

    def _discovered_digests(self, job: Job, paths: List[str], started: float) -> Optional[List[Tuple[str, str]]]:
        """(path, digest) of each file a job's depfile listed, or None when one is missing or
        was written while the job ran (its content then may not be what the job read): no
        record, and the job runs again next time. A file the build makes that is not among
        the job's dependencies is named in a warning: it may be made after the job read it."""
        found: List[Tuple[str, str]] = []
        # Written while it ran: modified between its start and now (a date beyond now is a
        # clock's doing, or `touch -d`, not an edit during the run).
        since, until = int(started * 1e9), time.time_ns()
        files = self.files
        for path in paths:
            problem = "is missing"
            try:
                digest = files.digest(path)
            except UnreadableFile as exc:
                digest, problem = None, f"cannot be read ({exc.reason})"
            then = files.hashed_as(path)
            # (the ctime too: a file replaced by one with an old mtime, `cp -p`, has a new ctime)
            if digest is not None and then is not None and (since <= then[1] <= until or since <= then[3] <= until):
                digest, problem = None, "changed while it ran"
            if digest is None:
                self.reporter.warning(
                    f"{job.display}: '{path}', which its depfile lists, {problem}; "
                    "it is not recorded and the job will run again"
                )
                self.unproven = True
                return None
            found.append((path, digest))
        moved = files.changed_since_read(paths)  # digests taken before it ran, then edited
        if moved:
            self.reporter.warning(
                f"{job.display}: '{moved[0]}', which its depfile lists, changed while it ran; "
                "it is not recorded and the job will run again"
            )
            self.unproven = True
            return None
        listed = self._listed_deps.get(job.key, ())
        for path in paths:
            maker = self._maker_of(path)
            if maker is None and self.job_making is not None and not os.path.isabs(path):
                other = self.job_making(path)
                if other is not None and other.key not in self._untouched_keys():
                    self.reporter.warning(
                        f"{job.display}: its depfile lists {path}, which {other.display} makes, but this build "
                        f"did not include that job (nothing asks for {path}); from the next build on it is "
                        f"made first, as Ninja does with its deps log; list it in rule {job.rule.name}'s "
                        "order_only (or inputs) so that the first build makes it first too"
                    )
                    self.made_elsewhere[path] = None
                    self.unproven = True
                    break
            if maker is not None and maker is not job:
                # Noted even when something orders the two now (order_only): a later edit may
                # drop that, and the header must still reach the job (Ninja's deps log).
                self.made_elsewhere[path] = None
            if maker is not None and maker is not job and maker not in listed and not self._is_upstream(maker, job):
                self.reporter.warning(
                    f"{job.display}: its depfile lists {path}, which {maker.display} makes; "
                    "list it in the rule's order_only (or inputs), so that it is made before the job reads it"
                )
                # Nothing ordered the two in this build: the maker may remake the file after
                # the job read it (the digest remembered for it would then be the old one).
                # No stamp: the next build checks every job, and from then on the two are
                # ordered by what this run listed; noted in the store too (above), so that a
                # build of targets that leave the maker out (`weave build app`) makes it first.
                self.unproven = True
                break
        return found

    def _untouched_keys(self) -> Set[str]:
        """Keys of the jobs the no-op stamp proved up to date and left out of the graph."""
        if self._untouched_set is None:
            self._untouched_set = set(self.untouched)
        return self._untouched_set

    def _is_upstream(self, maker: Job, job: Job) -> bool:
        """Whether `maker` is among `job`'s dependencies, at any depth."""
        stack, seen = list(job.deps), set()
        while stack:
            dep = stack.pop()
            if dep is maker:
                return True
            if dep.key not in seen:
                seen.add(dep.key)
                stack.extend(dep.deps)
        return False

    def _failed_result(self, job: Job, verdict: Verdict, attempts: int, message: str) -> JobResult:
        result = JobResult(job, FAILED, verdict.reasons)
        result.attempts = attempts
        result.message = message
        return result

    def _retry_delay(self, job: Job, attempt: int) -> float:
        """Exponential backoff with jitter (tenacity), fixed per (job, attempt) once drawn."""
        base = job.rule.retry_delay if job.rule.retry_delay is not None else self.options.retry_delay
        if not base:
            return 0.0
        cache = self._delays
        key = (job.key, attempt)
        if key not in cache:
            import tenacity  # lazily: only retrying builds pay for the import

            wait = tenacity.wait_exponential_jitter(initial=base, max=max(base, 3600.0), jitter=base / 2)
            state = tenacity.RetryCallState(None, None, (), {})
            state.attempt_number = attempt
            cache[key] = float(wait(state))
        return cache[key]

    # -- waiting --------------------------------------------------------------------------------
    def _wait_timeout(self, running: Dict[str, _Running], retry_at: list, grace: Optional[float]) -> Optional[float]:
        now = time.monotonic()
        candidates: List[float] = []
        if self.options.stream and len(running) == 1:
            candidates.append(STREAM_INTERVAL)
        for entry in running.values():
            if entry.deadline is not None:
                candidates.append(max(0.0, entry.deadline - now))
            if entry.kill_at is not None:
                candidates.append(max(0.0, entry.kill_at - now))
        for item in retry_at:
            candidates.append(max(0.0, item[0] - now))
        if grace is not None:
            candidates.append(max(0.0, min(grace - now, 0.1)))
        if self._interrupt:
            candidates.append(0.1)
        if self.options.stop is not None or self.options.changed is not None:
            candidates.append(0.2)
        # Never block forever: a signal handler only sets a flag, so wake up to look at it
        # (a signal ends the wait itself where the executor wakes on signals).
        candidates.append(1.0 if self.executor.wakes_on_signals else 0.2)
        return min(candidates)

    def _cancel_readers(self, running: Dict[str, _Running], changed: Set[str]) -> None:
        """Cancel the running jobs whose inputs' content is no longer what they started with
        (watch --restart); a touch or a save of the same bytes cancels nothing. A cancelled
        job that is still running after the grace period is killed, as on Ctrl-C."""
        if not changed:
            return
        real_changed: Optional[List[str]] = None
        for entry in running.values():
            job = entry.job
            if job.key in self._restarted:
                continue
            # What it reads: its inputs, and the files its depfile listed last time.
            started_with = dict(entry.verdict.inputs)
            row = self.latest.get(job.key) if job.depfile else None
            if row is not None and row.discovered:
                for path, digest in row.discovered:
                    started_with.setdefault(path, digest)
            touched = [path for path in started_with if any(is_within(other, path) for other in changed)]
            if not touched:  # spelled otherwise: through a symlink, or an absolute path
                if real_changed is None:
                    real_changed = [os.path.realpath(os.path.join(self.root, other)) for other in changed]
                for path in started_with:
                    real = os.path.realpath(os.path.join(self.root, path))
                    if any(other == real or other.startswith(real + os.sep) for other in real_changed):
                        touched.append(path)
            if not touched:
                continue
            if all(self.files.content_now(path) == started_with.get(path) for path in touched):
                continue  # same content (it may still have changed and back: no record then)
            self._restarted.add(job.key)
            self.reporter.warning(f"{job.display}: an input changed while it ran; cancelling it")
            self.executor.cancel(job.key)  # type: ignore[union-attr]
            entry.kill_at = time.monotonic() + GRACE_SECONDS

    def _cancel_changed_rules(self, running: Dict[str, _Running], changed: ChangedPaths) -> None:
        """The Weavefile changed (watch --restart): cancel the running jobs it now makes
        otherwise, or no longer makes; those it leaves as they were finish and are recorded.
        If it cannot be loaded (saved half-edited), every running job finishes."""
        jobs = [entry.job for key, entry in running.items() if key not in self._restarted]
        if not jobs:
            return
        same = changed.unchanged(jobs) if changed.unchanged is not None else None
        if same is None:
            self.reporter.warning(
                f"the Weavefile changed and cannot be loaded as it is: {len(jobs)} running job(s) finish, no more start"
            )
            return
        for job in jobs:
            if job.key in same:
                continue
            self._restarted.add(job.key)
            self.reporter.warning(f"{job.display}: the Weavefile changed its rule; cancelling it")
            self.executor.cancel(job.key)  # type: ignore[union-attr]
            running[job.key].kill_at = time.monotonic() + GRACE_SECONDS
        kept = sum(1 for job in jobs if job.key in same)
        if kept:
            self.reporter.warning(
                f"the Weavefile changed: {kept} running job(s) it leaves as they were finish, no more start"
            )

    def _check_timeouts(self, running: Dict[str, _Running]) -> None:
        now = time.monotonic()
        for entry in running.values():
            if entry.deadline is not None and now >= entry.deadline:
                entry.deadline = None
                self.executor.cancel(entry.job.key, force=True, timed_out=True)  # type: ignore[call-arg, union-attr]
            if entry.kill_at is not None and now >= entry.kill_at:
                entry.kill_at = None
                self.executor.cancel(entry.job.key, force=True)  # type: ignore[union-attr]

    def _stream(self, running: Dict[str, _Running]) -> None:
        if self.options.stream and len(running) == 1:
            self._drain_output(next(iter(running.values())))

    def _drain_output(self, entry: _Running) -> None:
        if not self._wants_output:
            return
        assert self.executor is not None
        path = self.executor.output_path(entry.job.key) or entry.log_path  # a spool while it runs
        try:
            size = os.path.getsize(path)
        except OSError:
            return
        if size <= entry.log_offset:
            return
        try:
            with open(path, "rb") as handle:
                handle.seek(entry.log_offset)
                data = handle.read(size - entry.log_offset)
        except OSError:
            return
        entry.log_offset += len(data)
        self.reporter.job_output(entry.job.display, data)

    def _end_output(self, entry: _Running) -> None:
        """The rest of a finished job's output, and the end of it."""
        if self._wants_output:
            self._drain_output(entry)
            self.reporter.job_output_ended(entry.job.display)

    # -- state ----------------------------------------------------------------------------------
    def _flush(self, final: bool = False) -> None:
        """Commit the records and file digests gathered so far, in one transaction. The last
        flush of a build also hashes every output still unhashed, and re-hashes files that
        were hashed inside their racy window (filestate.settle_racy)."""
        self._verify_inputs()
        self._hash_outputs(final)
        if final:
            self.files.settle_racy()
        self._last_flush = time.monotonic()
        records, self._records = self._records, []
        rows, self._attempt_rows = self._attempt_rows, []
        adopted, self._adopted = self._adopted, []
        renamed_away, self._renamed_away = self._renamed_away, []
        files = self.files.take_dirty()
        if records or files or rows or adopted:
            self.store.commit(records, files, attempts=rows, adopt=adopted, forget_latest=renamed_away)
        if self._temps is not None:  # after the commit: the records vouching for them are in
            self._delete_temps()

    def _delete_temps(self) -> None:
        """Delete the temporary outputs no job of this build needs any more. Their jobs'
        records are complete (hashing an output needs the file) and committed by then; the
        digest each holds stands in for the file from now on (Scanner.virtual, the stamp)."""
        assert self._temps is not None
        busy = {job.key for _, job, _, _ in self._unhashed}
        for path, is_dir in self._temps.take_due(busy):
            try:
                digest = self.files.digest(path)
            except UnreadableFile:
                continue  # not weave's to judge: left as it is
            if digest is None:
                continue
            if delete_temp(self.root, path, is_dir):
                self.files.removed(path, is_dir)
                self.scanner.virtual[path] = digest

    def _verify_inputs(self) -> None:
        """Drop the records of the jobs whose inputs were edited, replaced or deleted since
        their digests were taken (before they ran): such a job's output may come from content
        its record would not name (if the input changed back before the next build). It runs
        again next time; the build warns and writes no stamp (FileState.changed_after_read).
        One stat per input of all the jobs that ended since the last check, each taken after
        they all ended: a change while any of them ran shows (a ctime never goes back), and one
        made after a job ended costs it a rerun, never a wrong record."""
        jobs, self._unverified = self._unverified, []
        before, self._latest_before = self._latest_before, {}
        if not jobs:
            return
        inputs = jobs[0].inputs if len(jobs) == 1 else list(dict.fromkeys(itertools.chain.from_iterable(job.inputs for job in jobs)))
        moved = self.files.changed_since_read(inputs)
        if not moved:
            return
        moved_set = set(moved)
        dropped = {job.key for job in jobs if not moved_set.isdisjoint(job.inputs)}
        self._unhashed = [entry for entry in self._unhashed if entry[1].key not in dropped]
        for key in dropped:
            if key in before:
                row = before[key]
                if row is None:
                    self.latest.pop(key, None)
                else:
                    self.latest[key] = row

    def _hash_outputs(self, final: bool) -> None:
        """Hash the outputs of jobs that ended at least a racy window ago (all of them if
        `final`) and complete their records. An output hashed right after its job wrote it
        would be racy (filestate.RACY_WINDOW_NS) and read again at the end of the build; read
        here, it is read once. A job that reads an output hashes it as it is decided (its
        verdict needs the digest), so no job ever starts before its inputs are hashed. A
        record whose output is gone by now is not written: the job runs again next time."""
        if not self._unhashed:
            return
        if final:
            due, self._unhashed = self._unhashed, []
        else:
            settled = time.monotonic() - RACY_WINDOW_NS / 1e9
            cut = len(self._unhashed)
            while cut and self._unhashed[cut - 1][2] > settled:
                cut -= 1
            due, self._unhashed = self._unhashed[:cut], self._unhashed[cut:]
        files = self.files
        try:
            files.prefetch(output for _, job, _, _ in due for output in job.outputs)  # large ones in parallel
        except Stopped:  # the build is stopping: these jobs are not recorded, and run again next time
            return
        for record, job, _, seen in due:
            outputs: List[str] = []
            for output, then in zip(job.outputs, seen):
                problem = "disappeared after the job ended"
                try:
                    digest = files.digest(output)
                except UnreadableFile as exc:
                    digest, problem = None, f"cannot be read ({exc.reason})"
                except Stopped:
                    return
                if digest is not None and then is not None and then != fingerprint_now(files.full_path(output)):
                    # Written over since the job ended (the digest may be of someone else's
                    # bytes): not the job's output to vouch for.
                    digest, problem = None, "changed after the job ended"
                    files.changed_after_read[output] = None
                if digest is None:
                    self.reporter.warning(
                        f"{job.display}: output '{output}' {problem}; "
                        "it is not recorded and the job will run again"
                    )
                    break
                outputs.append(digest)
            else:
                record.outputs = outputs
                self.latest[job.key].outputs = outputs
                self._records.append(record)

    def _install_signal_handlers(self) -> Dict[int, object]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: Dict[int, object] = {}

        def handler(signum: int, frame: object) -> None:
            self._interrupt.append(signum)
            self._signalled.append(signum)

        # SIGHUP too: a closed terminal (a dropped ssh session) stops the build as Ctrl-C
        # does, instead of killing weave and leaving its jobs running; and SIGQUIT (Ctrl-\),
        # which make also treats as fatal: its default would leave the jobs running.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            if signal.getsignal(signum) == signal.SIG_IGN:
                continue  # ignored by whoever started us (e.g. `nohup`, `cmd &`): keep it so
            previous[signum] = signal.signal(signum, handler)
        return previous

    def _restore_signal_handlers(self, previous: Dict[int, object]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

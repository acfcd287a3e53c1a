"""The Python API: `Project.load(path).build(targets, jobs=...)`. The CLI is a thin layer over it.

Owns the life cycle of one command: find and load the Weavefile, resolve the graph, open the
store and file state, take the lock for commands that write, and hand over to the builder.
"""

from __future__ import annotations

import gc
import os
import sys

from . import graphcache, paths, stamp
from .errors import BuildFailed, Interrupted, ManifestError, UsageError, WeaveError
from .filestate import FileState
from .lock import RUNNING_REGISTRY, ProjectLock
from .projectfile import (
    MANIFEST_NAMES,
    find_manifest,
    known_includes,
    project_digest,
    read_regular_file,
    remember_includes,
    why_not_a_file,
)
from .reporter import Reporter
from .results import CANCELLED, FAILED, RAN, UP_TO_DATE, BuildResult
from .store import Store

# builder, executor, graph, manifest, resources and scan are imported where they are used: a no-op
# build proven by its stamp needs none of them, and start-up time is the no-op's largest cost.
TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    import threading
    from typing import (
        Any,
        Callable,
        Collection,
        Dict,
        List,
        Mapping,
        Optional,
        Sequence,
        Set,
        Tuple,
        TypeVar,
    )

    from .builder import BuildOptions, ChangedPaths
    from .graph import Graph, Job
    from .manifest import Manifest
    from .resources import ResourcePool
    from .scan import Verdict

    _Method = TypeVar("_Method", bound=Callable[..., Any])


def _path_errors_as_usage_errors(method: _Method) -> _Method:
    """An OSError about a path weave needs (a read-only project, a file where `.weave/` goes,
    a full disk) raised as the UsageError the CLI would print, not as a bare OSError."""
    import functools

    from .errors import environment_error

    @functools.wraps(method)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            if not exc.filename:  # not about a path: a bug, left as it is
                raise
            raise environment_error(exc) from exc

    return wrapper  # type: ignore[return-value]


class cycle_collector_paused:  # lower case: it reads as a function, `with cycle_collector_paused():`
    """Python's cycle collector rescans every live container object as allocations pile up,
    and a big build holds hundreds of thousands of them (manifest, graph, state) for its whole
    length while making almost no cyclic garbage (a 10k-job build: ~500 objects; reference
    counting frees the rest). Paused while weave loads and builds: at 10k jobs that saves
    ~0.2 s before the first job starts and ~0.4 s while they run; what little it would have
    freed is collected after. (A class, not a contextlib generator: contextlib is not imported
    on the no-op path.)"""

    def __enter__(self) -> None:
        self._resume = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc_info: object) -> None:
        if self._resume:
            gc.enable()


def _check_inside_targets(graph: Graph, root: str) -> None:
    """A target inside a directory output (`weave build models/m/best.json`) that the
    directory's job, run or up to date, did not make: the build did not do what was asked."""
    for path in graph.inside:
        if os.path.lexists(os.path.join(root, path)):
            continue
        maker = next(
            (
                (job, output)
                for job in graph.jobs
                for output, is_dir in zip(job.outputs, job.dir_outputs)
                if is_dir and path.startswith(output + "/")
            ),
            None,
        )
        made = f": rule '{maker[0].rule.name}' made {maker[1]}/ without it" if maker else ""
        raise BuildFailed(
            f"target '{path}' was not made{made}",
            [maker[0].key] if maker else [],
        )


def _targets(targets: Sequence[str]) -> Sequence[str]:
    """Targets as the API takes them: a list of paths or rule names; one name on its own is
    one target (not its characters)."""
    return [targets] if isinstance(targets, str) else targets


# How many times a build may bring a scanned directory output up to date and look again
# before it goes on with what it has (directories whose jobs keep changing each other's).
FIRST_ROUNDS_MAX = 50
# A graph from the cache with at most this many jobs reads only its own rows from the store
# (an index lookup each); a bigger one reads the whole store at once, which costs less per row.
SMALL_GRAPH_JOBS = 2000


class Project:
    """A directory with a Weavefile. Load with `Project.load(directory, weavefile=None)`."""

    def __init__(
        self,
        path: str,
        raw: bytes,
        manifest: Optional[Manifest] = None,
        overrides: Optional[Mapping[str, str]] = None,
        included: Sequence[Tuple[str, bytes]] = (),
    ):
        self.path = path
        self.root = os.path.dirname(os.path.abspath(path))
        self._raw = raw
        # The files the Weavefile includes: (project-relative path, bytes), depth first.
        self._included = list(manifest.included if manifest is not None else included)
        self.overrides: Dict[str, str] = dict(overrides or {})
        # Keys the graph cache and the no-op stamps: the same Weavefile with other --set values
        # (or other included files) is another project as far as they are concerned.
        self.digest = project_digest(raw, self._included, self.overrides)
        self._manifest = manifest

    @classmethod
    def load(
        cls,
        directory: str = ".",
        weavefile: Optional[str] = None,
        overrides: Optional[Mapping[str, str]] = None,
    ) -> Project:
        """Load the project in `directory` (`weavefile` overrides the file to read).

        `overrides` replace `[vars]` values, given as text as on the command line
        (`{"epochs": "5"}` for `--set epochs=5`); an unknown name, or text that is not a value
        of the var's kind, raises UsageError.

        Raises ManifestError for an invalid Weavefile. A Weavefile whose exact bytes were valid
        before (it has a cached graph) is parsed only when something needs more than the graph.
        """
        if weavefile is not None:
            path = weavefile if os.path.isabs(weavefile) else os.path.join(directory, weavefile)
            if not os.path.isfile(path):
                raise UsageError(
                    f"Weavefile '{path}' {why_not_a_file(path)}",
                    hint="-f takes a path relative to the project directory (-C DIR, default .)",
                )
        else:
            found = find_manifest(directory)
            if found is None:
                for name in MANIFEST_NAMES:  # there, but not a file: say what it is
                    candidate = os.path.join(directory, name)
                    if os.path.lexists(candidate):
                        raise UsageError(
                            f"'{candidate}' {why_not_a_file(candidate)}",
                            hint="the Weavefile must be a regular file (or a symlink to one), or use -f FILE",
                        )
                raise UsageError(f"no Weavefile in {os.path.abspath(directory)}", hint=_missing_weavefile_hint(directory))
            path = found
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise ManifestError(f"cannot read: {exc.strerror}", path=path) from None
        root = os.path.dirname(os.path.abspath(path))
        included = known_includes(root, raw)
        if included is None:  # includes other files, and which is not known without parsing
            return cls(path, raw, cls(path, raw, overrides=overrides)._parse(), overrides)
        project = cls(path, raw, overrides=overrides, included=included)
        if project.digest not in graphcache.known_digests(project.root):
            project._manifest = project._parse()
        return project

    @property
    def weavefiles(self) -> List[str]:
        """The project-relative paths of the Weavefile and of the files it includes."""
        return [os.path.basename(self.path)] + [name for name, _ in self._included]

    def _forced_jobs(self, graph: Graph, force: bool, force_rules: Sequence[str]) -> List[Job]:
        """The jobs a build reruns even if up to date: the targets' own (-B), and every job of
        the rules named with -R that the targets need."""
        forced = list(graph.targets) if force else []
        for name in dict.fromkeys(force_rules):
            jobs = [job for job in graph.jobs if job.rule.name == name]
            if not jobs:
                from .manifest import _did_you_mean

                rules = self.manifest.rules
                if name not in rules:
                    raise UsageError(
                        f"-R {name}: no rule '{name}'",
                        hint=_did_you_mean(name, list(rules)) or "weave list shows the rules",
                    )
                raise UsageError(
                    f"-R {name}: none of the jobs the targets need is of rule '{name}'",
                    hint="name a target that needs it (weave build -R RULE TARGET)",
                )
            forced.extend(job for job in jobs if job not in forced)
        return forced

    def weavefile_unchanged(self) -> bool:
        """Whether the Weavefile (and every file it includes) on disk still holds the bytes this
        project was loaded from."""
        expected = [(self.path, self._raw)] + [(os.path.join(self.root, name), raw) for name, raw in self._included]
        try:
            for path, raw in expected:
                with open(path, "rb") as handle:
                    if handle.read() != raw:
                        return False
        except OSError:
            return False
        return True

    def _parse(self) -> Manifest:
        # Imported only when the Weavefile must be parsed: a no-op never loads the parser.
        from .manifest import decode_weavefile, parse_manifest

        text = decode_weavefile(self._raw, self.path)

        known = dict(self._included)

        def read(name: str) -> bytes:
            # The bytes this project's digest was taken from, so that the parse and the digest
            # agree even if a file changes meanwhile.
            if name in known:
                return known[name]
            return read_regular_file(os.path.join(self.root, name))

        with cycle_collector_paused():
            manifest = parse_manifest(text, self.path, digest_source=self._raw, overrides=self.overrides, read=read)
        # Which files each file includes, so that the next command takes the project's digest
        # without parsing (noted once .weave/ exists: a first build parses before making it,
        # and notes them when it caches the graph).
        remember_includes(self.root, manifest.include_lists)
        return manifest

    @property
    def manifest(self) -> Manifest:
        """The parsed Weavefile (parsed on first use)."""
        if self._manifest is None:
            self._manifest = self._parse()
        return self._manifest

    # -- graph and state -------------------------------------------------------------------------
    def graph(
        self,
        targets: Sequence[str] = (),
        files: Optional[FileState] = None,
        known: Optional[Mapping[str, str]] = None,
        cached: bool = True,
    ) -> Graph:
        """The job graph for `targets`; from the graph cache when it is provably current.
        `files`: the build's view of the file system, whose answers the graph then shares (else
        the file system is asked directly). `known`: paths already seen to exist. `cached`:
        False when the caller has just asked the graph cache: resolved from the Weavefile."""
        targets = _targets(targets)
        seen = known or {}

        def source_exists(source: str) -> bool:
            if source in seen:
                return True
            if files is not None:
                return files.digest(source) is not None
            return os.path.exists(os.path.join(self.root, source))

        graph = self._cached_graph(targets, source_exists) if cached else None
        if graph is not None:
            return graph
        from .graph import Resolver

        exists = (lambda full: files.exists(full)) if files is not None else os.path.exists
        resolver = Resolver(self.manifest, exists)
        graph = resolver.resolve(targets)
        graphcache.save(self.root, self.digest, targets, graph, resolver.queries, static=not resolver.index.patterns)
        graphcache.record_listings(self.root, resolver.listings)
        remember_includes(self.root, self.manifest.include_lists)
        return graph

    def _cached_graph(self, targets: Sequence[str], source_exists: Callable[[str], bool]) -> Optional[Graph]:
        """The graph for `targets` (as _targets gives them) from the graph cache, or cut out
        of a cached graph that holds it; None if no cached graph is provably current."""
        cached = graphcache.load(self.root, self.digest, targets, self.path, source_exists)
        if cached is None and targets:  # cut out of the default targets' graph, say
            cached = graphcache.derive(self.root, self.digest, targets, self.path, source_exists)
        return cached

    def open_store(self, readonly: bool = False) -> Store:
        return Store.open(self.root, readonly=readonly)

    def _state_for(
        self, store: Store, targets: Sequence[str], known: Mapping[str, str]
    ) -> Tuple[Optional[Graph], FileState, dict]:
        """The graph for `targets` (as _targets gives them) from the graph cache, None if it
        has none provably current (`known`: paths seen to exist), with the file state and job
        records a build or plan needs. A small graph (one output of a big project, say) reads
        only its jobs' records and its files' rows, by key, not the whole store."""
        files = FileState(self.root, {}, lookup=store.file_row, lookup_tree=store.file_rows_under)
        graph = self._cached_graph(targets, lambda source: source in known or files.exists(source))
        if graph is not None and not graph.first and len(graph.jobs) <= SMALL_GRAPH_JOBS:
            latest = store.load_jobs([job.key for job in graph.jobs])
            named = {path: None for job in graph.jobs for path in job.inputs + job.outputs}
            for row in latest.values():  # and the files their depfiles listed
                named.update((path, None) for path, _ in row.discovered)
            files.add_rows(store.load_files(list(named)))
        else:
            files.add_rows(store.load_files(), complete=True)
            latest = store.load_jobs()
        return graph, files, latest

    def _whole_state(self, store: Store) -> Tuple[FileState, dict]:
        """The file state over the whole digest cache, and the latest record of every job."""
        return FileState(self.root, store.load_files()), store.load_jobs()

    def _session(self, readonly: bool) -> Tuple[Store, FileState, dict]:
        store = self.open_store(readonly=readonly)
        files, latest = self._whole_state(store)
        return store, files, latest

    def pool(self, graph: Graph, jobs: Optional[int], resources: Mapping[str, float], check: bool = True) -> ResourcePool:
        """The slots and resource totals a build of `graph` draws from; `check`: refuse
        (UsageError) if a job asks for more than a total could ever provide."""
        from .resources import make_pool

        gpu_needed = any(job.resources.get("gpu") for job in graph.jobs)
        slots = jobs if jobs and jobs > 0 else (os.cpu_count() or 1)
        pool = make_pool(slots, graph.manifest.resources, resources, gpu_needed)
        if check:
            pool.check_feasible((job.rule.name, job.resources) for job in graph.jobs)
        return pool

    def _job_making(self) -> Callable[[str], Optional[Job]]:
        """`job_making(path)`: the job of any rule that makes `path`, or None (a source). The
        Weavefile is parsed, and a resolver made, on the first question only: a build asks
        only about files a depfile listed that no job of its graph makes."""
        resolver = None
        answers: Dict[str, Optional[Job]] = {}

        def job_making(path: str) -> Optional[Job]:
            nonlocal resolver
            if path not in answers:
                try:
                    if resolver is None:
                        from .graph import Resolver

                        resolver = Resolver(self.manifest)
                    answers[path] = resolver.producer(path, {})
                except (WeaveError, OSError):  # (the Weavefile edited meanwhile, say): no warning
                    answers[path] = None
            return answers[path]

        return job_making

    def _inherit_renamed(self, store: Store, graph: Graph, latest: dict) -> None:
        """A job with no record under its key whose outputs the latest success of a job of
        another key made, a key no job of `graph` has (a renamed rule's job), takes that
        success as its latest: what its depfile listed then orders and checks it as before
        the rename (a generated header's maker first), and a change is explained against it
        ("input changed", not "never built"). The build records it under the new key."""
        from .jobs import recipe_of

        if not store.has_records():  # a first build: nothing was ever made under any name
            return
        wanted: Dict[Tuple[str, ...], str] = {}
        for job in graph.jobs:
            if job.outputs and job.key not in latest:
                wanted[tuple(recipe_of(job)["outputs"])] = job.key  # type: ignore[arg-type]
        if not wanted:
            return
        keys = {job.key for job in graph.jobs}
        # Few new jobs (a sample added, a rule renamed): SQLite finds the recipes naming their
        # outputs; many (a first build: no records at all): every latest record is read.
        naming = [outputs[0] for outputs in wanted] if len(wanted) <= 200 else None
        donors: Dict[str, List[Tuple[float, str]]] = {}
        for key, outputs, finished_at in store.latest_outputs(naming):
            job_key = wanted.get(tuple(outputs))
            if job_key is not None and key not in keys:
                donors.setdefault(job_key, []).append((finished_at, key))
        # Renamed more than once (a, then b, then c): the old names' rows that made these
        # outputs last win (a renamed job's adoption leaves no row under its old name).
        chosen = {job_key: max(olds)[1] for job_key, olds in donors.items()}
        rows = store.load_jobs(list(set(chosen.values()))) if chosen else {}
        for job_key, old in chosen.items():
            if old in rows:
                latest[job_key] = rows[old].renamed(old)

    def _with_listed_makers(self, store: Store, graph: Graph, files: FileState, latest: dict) -> Graph:
        """`graph`, or, when a job's depfile listed a file that a rule makes but `graph` does
        not (a generated header no declared input asks for; a build noted it in the store),
        the graph for its targets and those files: their makers are made first, and a change
        of what they are made from reaches the job (Ninja's deps log does the same). Renamed
        rules' jobs first take their old names' records (_inherit_renamed)."""
        self._inherit_renamed(store, graph, latest)
        elsewhere = store.made_elsewhere()
        if not elsewhere or not graph.requested:
            return graph
        made = graph.producers
        wanted: List[str] = []
        for job in graph.jobs:
            row = latest.get(job.key)
            if row is not None and row.discovered:
                wanted.extend(path for path, _ in row.discovered if path in elsewhere and path not in made and path not in wanted)
        if not wanted:
            return graph
        try:  # (from the graph cache after the first time: no parse)
            extended = self.graph(list(graph.requested) + wanted, files)
        except WeaveError:  # no rule makes it any more, say: the targets' own graph, as before
            return graph
        missing = [job.key for job in extended.jobs if job.key not in latest]
        if missing:
            latest.update(store.load_jobs(missing))
        return extended

    def _pool_for_build(
        self, graph: Graph, store: Store, files: FileState, latest: dict, options: object,
        resources: Mapping[str, float], forced: bool,
    ) -> ResourcePool:
        """The build's pool. Totals too small for a job matter only if that job is to run (as
        `weave plan` and the no-op stamp find): when some job asks for more than a total, the
        build's prediction says whether one of those would run (forced jobs always would)."""
        try:
            return self.pool(graph, options.jobs, resources)  # type: ignore[attr-defined]
        except UsageError:
            if forced:
                raise
            from .builder import Builder

            pool = self.pool(graph, options.jobs, resources, check=False)  # type: ignore[attr-defined]
            verdicts = Builder(graph, store, files, latest, pool, options, Reporter()).predict()  # type: ignore[arg-type]
            pool.check_feasible(
                (job.rule.name, job.resources) for job in graph.jobs if not verdicts[job.key].up_to_date
            )
            return pool

    # -- commands ----------------------------------------------------------------------------------
    def proven_up_to_date(self, targets: Sequence[str] = ()) -> Optional[int]:
        """How many jobs `targets` need, if the no-op stamp of their last build proves every one
        of them up to date (no file they read or made changed since, nor the Weavefile), as
        `build` would find it; else None, and plan() tells. Read-only, and for 100k jobs a
        second where plan() loads and checks the whole graph."""
        store = self.open_store(readonly=True)
        try:
            checked = stamp.check(store, self.root, stamp.key(self.digest, _targets(targets)))
        finally:
            store.close()
        return len(checked.job_keys) if checked is not None and checked.noop else None

    def proven_made_up_to_date(self, path: str) -> bool:
        """Whether the no-op stamp of a build of `path` itself, or of the default targets,
        proves the job that makes `path` up to date (nothing it, or anything upstream, read or
        made changed since): `weave why` answers from it. False when no stamp can tell."""
        path = paths.normalize(path)
        if path in self.manifest.rules:
            return False  # a rule name: a target of its own
        store = self.open_store(readonly=True)
        try:
            for targets in ((path,), ()):
                checked = stamp.check(store, self.root, stamp.key(self.digest, targets))
                if checked is not None and checked.noop and checked.made_here(path):
                    return True
            return False
        finally:
            store.close()

    def plan(
        self,
        targets: Sequence[str] = (),
        force: bool = False,
        reporter: Optional[Reporter] = None,
        missing_ok: bool = False,
        force_rules: Sequence[str] = (),
    ) -> Tuple[Graph, Dict[str, Verdict]]:
        """Verdicts (up to date, or reasons to run) for every job the targets need (`force`:
        as if the targets' own jobs were forced; `force_rules`: every job of these rules).

        `missing_ok`: sources that do not exist are listed in `graph.missing` (their readers'
        reason: input missing) instead of raising MissingSource; for `weave graph`.
        The verdicts come in the order a build would run the jobs. Takes no lock and writes
        no state (it may refresh the graph cache)."""
        targets = _targets(targets)
        with cycle_collector_paused():
            return self._plan(targets, force, reporter, missing_ok, force_rules)

    def _plan(
        self,
        targets: Sequence[str],
        force: bool,
        reporter: Optional[Reporter],
        missing_ok: bool = False,
        force_rules: Sequence[str] = (),
    ) -> Tuple[Graph, Dict[str, Verdict]]:
        store = self.open_store(readonly=True)
        try:
            from .builder import Builder, BuildOptions
            from .resources import ResourcePool

            if missing_ok:
                from .graph import Resolver

                files, latest = self._whole_state(store)
                graph = Resolver(self.manifest, files.exists, missing_ok=True).resolve(targets)
            else:
                cached, files, latest = self._state_for(store, targets, {})
                graph = cached if cached is not None else self.graph(targets, files, cached=False)
                graph = self._with_listed_makers(store, graph, files, latest)
            for warning in graph.warnings:
                (reporter or Reporter()).warning(warning)
            forced = self._forced_jobs(graph, force, force_rules)
            options = BuildOptions(force=bool(forced))
            builder = Builder(
                graph, store, files, latest, ResourcePool(1, {}, []), options, reporter or Reporter(),
                forced=forced,
            )
            for warning in store.warnings:
                (reporter or Reporter()).warning(warning)
            verdicts = builder.predict(explain=True)
            _name_earlier_makers(graph, verdicts, latest, store)
            # In the order a build runs them (a depfile-listed header's maker first).
            return graph, {job.key: verdicts[job.key] for job in builder.planned_order(verdicts)}
        finally:
            store.close()

    @_path_errors_as_usage_errors
    def build(
        self,
        targets: Sequence[str] = (),
        jobs: Optional[int] = None,
        resources: Optional[Mapping[str, float]] = None,
        keep_going: bool = False,
        force: bool = False,
        keep_failed: bool = False,
        keep_temp: bool = False,
        retries: Optional[int] = None,
        retry_delay: Optional[float] = None,
        timeout: Optional[float] = None,
        wait_for_lock: bool = False,
        reporter: Optional[Reporter] = None,
        argv: Optional[Sequence[str]] = None,
        stop: Optional[threading.Event] = None,
        changed: Optional[ChangedPaths] = None,
        force_rules: Sequence[str] = (),
    ) -> BuildResult:
        """Bring `targets` (default targets if empty) up to date; `force` reruns the targets'
        own jobs, `force_rules` every job of those rules that the targets need; `keep_temp`
        keeps temporary outputs that would be deleted after use.

        Raises BuildFailed if a job fails, Interrupted on SIGINT/SIGTERM or when `stop` is set
        (from another thread), and UsageError/ManifestError for the user's mistakes. Paths added
        to `changed` (from another thread) cancel the running jobs that read them; the build
        goes on and the result lists them as cancelled.
        """
        import time

        invoked = time.time()  # the run's start in the history: its checks count, not only its jobs
        targets = _targets(targets)
        if jobs is not None and jobs < 1:
            raise UsageError(f"jobs={jobs}: at least one job slot is needed")
        if timeout is not None and not timeout > 0:
            raise UsageError(f"timeout={timeout}: must be a positive number of seconds")
        if retries is not None and retries < 0:
            raise UsageError(f"retries={retries}: must be 0 or more")
        if retry_delay is not None and not retry_delay >= 0:
            raise UsageError(f"retry_delay={retry_delay}: must be 0 or more seconds")
        reporter = reporter or Reporter()

        def waiting(holder: str) -> None:
            reporter.info(f"weave: waiting for another weave ({holder}) building in {self.root}")

        with cycle_collector_paused(), ProjectLock(self.root, wait=wait_for_lock, on_wait=waiting, stop=stop):
            store = self.open_store()
            shown = len(store.warnings)
            try:
                for warning in store.warnings:
                    reporter.warning(warning)
                registry = os.path.join(self.root, RUNNING_REGISTRY)
                orphans = 0
                # A weave that died while jobs ran (its registry not emptied): this build checks
                # every job once, rather than take the no-op stamp's word, so that what those
                # jobs left (a depfile never read) is looked at.
                crashed = os.path.exists(registry) and os.path.getsize(registry) > 0
                if crashed:
                    from .executor import kill_orphans

                    orphans = kill_orphans(registry)
                if orphans:
                    reporter.warning(
                        f"killed {orphans} job(s) left running by a weave that was killed; "
                        "what they made is checked again (and rebuilt if it is not what their records say)"
                    )
                command_line = list(argv if argv is not None else sys.argv)
                # A build that keeps temporary outputs vouches for them being there: its stamp
                # is not one a build that deletes them may take as a no-op.
                stamp_key = stamp.key(self.digest, targets) + ("\0--keep-temp" if keep_temp else "")
                checked = None if force or force_rules or crashed else stamp.check(store, self.root, stamp_key)
                if checked is not None and checked.noop:
                    # Touched files, same content: the refreshed stamp remembers their new
                    # stats (the digest cache keeps the old ones; a build that does not go
                    # through the stamp re-hashes those files once).
                    if checked.restamp is not None:
                        stamp.save(store, self.root, stamp_key, checked.restamp)
                    return self._fast_noop(store, list(checked.job_keys), command_line, targets, reporter, invoked)
                from .builder import Builder, BuildOptions

                options = BuildOptions(
                    jobs=jobs,
                    keep_going=keep_going,
                    force=force or bool(force_rules),
                    keep_failed=keep_failed,
                    keep_temp=keep_temp,
                    retries=retries,
                    retry_delay=retry_delay,
                    timeout=timeout,
                    stop=stop,
                    changed=changed,
                )
                partial = checked.partial if checked is not None else None
                graph = None
                if partial is not None:
                    # Only the jobs the change can reach are loaded, checked and stamped again.
                    graph = graphcache.load_part(
                        self.root, self.digest, targets, self.path, partial.indices,
                        partial.job_keys, partial.queries,
                    )
                    if graph is not None and graph.first:
                        graph = None  # scans read other jobs' outputs: the whole graph, below
                    elif graph is not None and any(
                        source not in checked.unchanged and not os.path.exists(os.path.join(self.root, source))
                        for source in graph.sources
                    ):  # (the stamp saw the others as they were: no stat for them)
                        graph = None  # a source is gone: the full resolution says which, as from scratch
                if graph is not None:
                    # Files outside the reached jobs are never looked at: no need for the
                    # whole digest cache, nor for the records of the other jobs.
                    files = FileState(self.root, {})
                    latest = store.load_jobs([job.key for job in graph.jobs])
                    untouched = partial.untouched_keys()
                else:
                    partial = None
                    untouched = []
                    graph, files, latest = self._state_for(
                        store, _targets(targets), checked.unchanged if checked is not None else {}
                    )
                if checked is not None:
                    files.cache.update(checked.rows)
                    files.dirty.update(checked.rows)
                    files.trust(checked.unchanged, checked.fingerprint)
                if graph is None:  # (the graph cache was asked above)
                    graph = self.graph(targets, files, known=checked.unchanged if checked else None, cached=False)
                if partial is None:
                    graph = self._with_listed_makers(store, graph, files, latest)
                pool = self._pool_for_build(graph, store, files, latest, options, resources or {}, bool(force or force_rules))
                if force_rules:  # a usage error, as an unknown target is: refused before the run is recorded
                    # (a graph with a first phase may gain the rule's jobs after it: then only
                    # an unknown rule can be told now)
                    named = force_rules if not graph.first else [name for name in force_rules if name not in self.manifest.rules]
                    if named:
                        self._forced_jobs(graph, False, named)
                run_id = store.start_run(command_line, list(targets), invoked)  # as asked: [] is "(default)"
                unchanged = checked.unchanged if checked is not None else None
                builder: Optional[Builder] = None
                first: Optional[BuildResult] = None
                outcome = "failed"
                result: Optional[BuildResult] = None
                try:
                    if graph.first:
                        forced_targets = {job.key for job in graph.targets} if force else set()
                        settled = self._settle_first(
                            graph, targets, store, files, latest, options, reporter, resources, run_id,
                            force_rules, forced_targets,
                        )
                        if settled is not None:  # what the scans list may have changed: looked again
                            graph, files, latest, first = settled
                            unchanged = None
                            pool = self._pool_for_build(graph, store, files, latest, options, resources or {}, bool(force or force_rules))
                    for warning in pool.notes + graph.warnings:
                        reporter.warning(warning)
                    builder = Builder(
                        graph,
                        store,
                        files,
                        latest,
                        pool,
                        options,
                        reporter,
                        # A job the first phase ran is fresh from this build: not forced again.
                        forced=[
                            job
                            for job in self._forced_jobs(graph, force, force_rules)
                            if first is None or first.outcome(job.key) is None
                        ],
                        run_id=run_id,
                        unchanged=unchanged,
                        untouched=untouched,
                        earlier=first,
                        job_making=self._job_making(),
                    )
                    result = builder.run()
                    if builder.made_elsewhere:
                        store.add_made_elsewhere(builder.made_elsewhere)
                    if first is not None:
                        result.include(first)
                    _check_inside_targets(graph, self.root)
                    # (watch --restart cancels jobs whose inputs changed: not a good build)
                    outcome = "interrupted" if result.count(CANCELLED) else "ok"
                    if files.changed_after_read:  # edited while the build ran: no stamp
                        data = None
                        moved = list(files.changed_after_read)
                        result.changed_during = moved
                        reporter.warning(
                            f"{', '.join(moved[:3])}{' and others' if len(moved) > 3 else ''} changed "
                            "while the build was running; the next build checks what read them"
                        )
                    elif partial is not None:
                        # A job whose depfile listed other files than the stamp has: no stamp
                        # then (the next build checks everything, and stamps afresh).
                        listed = builder.listed()
                        data = partial.restamp(files.cache) if result.ok and not builder.relisted and listed is not None else None
                    else:
                        listed = builder.listed()
                        # (a job cancelled because its input changed, in watch --restart, is not up to date)
                        proven = listed is not None and result.ok
                        data = stamp.make(graph, files, builder.absent_temps(), listed) if proven else None
                    if data is not None:
                        stamp.save(store, self.root, stamp_key, data)
                    if run_id is not None and run_id % 20 == 0:
                        store.prune_records([item.key for item in result.ran])
                    return result
                except KeyboardInterrupt:
                    outcome = "interrupted"
                    raise
                except BaseException as exc:
                    outcome = "interrupted" if isinstance(exc, Interrupted) else "failed"
                    failed_result = getattr(exc, "result", None)
                    if failed_result is not None and first is not None and failed_result is not result:
                        failed_result.include(first)  # what the first phase ran, as the summary counts it
                    result = failed_result
                    raise
                finally:
                    if builder is not None and builder.executor is not None:
                        builder.executor.close()
                    counts = _counts(result)
                    store.end_run(run_id, outcome, *counts)
            finally:
                store.close()
                for warning in store.warnings[shown:]:  # met during the build (a damaged store)
                    reporter.warning(warning)

    def _settle_first(
        self,
        graph: Graph,
        targets: Sequence[str],
        store: Store,
        files: FileState,
        latest: dict,
        options: BuildOptions,
        reporter: Reporter,
        resources: Optional[Mapping[str, float]],
        run_id: Optional[int],
        force_rules: Sequence[str] = (),
        forced_targets: Collection[str] = (),
    ) -> Optional[Tuple[Graph, FileState, dict, BuildResult]]:
        """Bring the directory outputs that `graph`'s foreach scans and globs read up to date
        (Snakemake's checkpoints) before the build: the graph was resolved from what they hold
        now, which their jobs may be about to change. Innermost first (directories whose own
        jobs' scans read no unsettled directory), resolving again after a round that ran
        something, until every one is up to date as the graph now stands. A job of a rule in
        `force_rules`, or named in `forced_targets` (-B), runs in the first round that meets
        it, once. Returns the graph resolved again, its file state, records and what ran; None
        if nothing did."""
        from .builder import Builder
        from .graph import Resolver

        def build(needed: Graph, directories: Sequence[str], files: FileState, latest: dict) -> BuildResult:
            """Build `needed` (the jobs that make `directories`), if anything in it must run."""
            for warning in needed.warnings:
                reporter.warning(warning)
            builder = Builder(
                needed,
                store,
                files,
                latest,
                self.pool(needed, options.jobs, resources or {}),
                options,
                reporter,
                # -B forces the build's targets (not the directories read on the way to them),
                # -R RULE the rule's jobs: once (each round would otherwise run them again).
                forced=[
                    job
                    for job in needed.jobs
                    if (job.rule.name in force_rules or job.key in forced_targets) and job.key not in forced_once
                ],
                run_id=run_id,
                summarize=False,  # the build's summary counts what this phase ran
                earlier=ran,  # with -k, jobs that failed in an earlier round are not run again
                delete_temps=False,  # the next phase may read them: its build deletes them
            )
            forced_once.update(builder.forced)
            verdicts = builder.predict()
            if all(verdict.up_to_date for verdict in verdicts.values()):
                return BuildResult({}, 0.0)
            # Named: the directories whose job would run (not those already up to date).
            makers = [needed.producers.get(directory) for directory in directories]
            remade = [d for d, maker in zip(directories, makers) if maker is None or not verdicts[maker.key].up_to_date]
            remade = remade or directories
            named = ", ".join(directory + "/" for directory in remade[:3])
            if len(remade) > 3:
                named += f" and {len(remade) - 3} more directories"
            reporter.info(
                f"weave: building {named} first, then looking again at what "
                + ("it holds (foreach patterns or globs read it)" if len(remade) == 1 else "they hold (foreach patterns or globs read them)")
            )
            try:
                return builder.run(verdicts)
            finally:
                if builder.executor is not None:
                    builder.executor.close()

        ran = BuildResult({}, 0.0)
        forced_once: Set[str] = set()
        settled: Set[str] = set()  # up to date since the last job ran
        given_up: Set[str] = set()  # directories whose job failed (-k): left as they are
        for _ in range(FIRST_ROUNDS_MAX):
            pending = [directory for directory in graph.first if directory not in settled and directory not in given_up]
            if not pending:
                break
            # A directory is built in this round if nothing it needs waits on another unsettled
            # one: neither its jobs' scans (their `first`) nor its jobs' inputs (a job making
            # another pending directory is among them). Resolved afresh, not through the graph
            # cache: these small graphs come and go.
            waiting = set(pending)
            leaves = [d for d in pending if self._first_ready(d, waiting, files)] or pending[:1]
            needed = Resolver(self.manifest, files.exists).resolve(leaves)
            try:
                result = build(needed, leaves, files, latest)
            except BuildFailed as exc:
                # With -k the build goes on: these directories stay as they are, the jobs that
                # failed are not run again (in later rounds or the main build), and what does
                # not depend on them is built.
                failed = getattr(exc, "result", None)
                if not options.keep_going or failed is None:
                    raise
                ran.include(failed, failures=True)
                given_up.update(leaves)
                if not failed.ran:
                    continue
            else:
                if not result.ran:
                    settled.update(leaves)
                    continue
                ran.include(result)
                settled.clear()  # what it wrote may change what the others' scans find
            files, latest = self._whole_state(store)
            graph = self.graph(targets, files)
        if not ran.ran and not ran.failed:
            return None
        return graph, files, latest, ran

    def _first_ready(self, directory: str, waiting: Set[str], files: FileState) -> bool:
        """Whether the jobs that make `directory` need no other directory in `waiting`."""
        from .graph import Resolver

        needed = Resolver(self.manifest, files.exists).resolve([directory])
        if any(inner in waiting and inner != directory for inner in needed.first):
            return False
        return not any(output in waiting and output != directory for job in needed.jobs for output in job.outputs)

    def _fast_noop(
        self,
        store: Store,
        job_keys: List[str],
        command_line: List[str],
        targets: Sequence[str],
        reporter: Reporter,
        invoked: Optional[float] = None,
    ) -> BuildResult:
        """A build the no-op stamp proved has nothing to do: record the run and report."""
        import time

        started = time.monotonic()
        run_id = store.start_run(command_line, list(targets), invoked)
        store.end_run(run_id, "ok", 0, 0, len(job_keys))
        reporter.nothing_to_do(len(job_keys))
        return BuildResult({}, time.monotonic() - started, untouched=job_keys)

    def running_jobs(self) -> Dict[str, int]:
        """Job key -> pid of the weave running it, for the jobs a build (another weave, now)
        is running in this project."""
        from .executor import running_jobs

        return running_jobs(os.path.join(self.root, RUNNING_REGISTRY))

    def listed_files(self, keys: Sequence[str]) -> List[str]:
        """The files the depfiles of these jobs listed when each last succeeded. Read-only."""
        store = self.open_store(readonly=True)
        try:
            rows = store.load_jobs(list(keys))
        finally:
            store.close()
        return list(dict.fromkeys(path for row in rows.values() for path, _ in row.discovered))

    def last_failures(self) -> Dict[str, str]:
        """For each job whose last attempt (in the recent runs) did not succeed: what happened,
        in words (`failed in run 12: exit code 3; log .weave/logs/x.log`). Read-only."""
        store = self.open_store(readonly=True)
        try:
            attempts = store.last_attempts()
        finally:
            store.close()
        found: Dict[str, str] = {}
        for key, (run_id, status, code, log) in attempts.items():
            if status == "ok":
                continue
            said = {"timeout": "timed out", "cancelled": "interrupted"}.get(status, status)
            what = f"{said} in run {run_id}" + (f": exit code {code}" if status == "failed" and code else "")
            found[key] = what + (f"; log {log}" if log else "")
        return found

    def why(
        self, target: str, reporter: Optional[Reporter] = None
    ) -> Tuple[List[Job], Dict[str, Verdict], List[Tuple[int, Job]]]:
        """Why `target` is (or is not) stale: its jobs, the verdicts, and the chain of stale jobs
        leading to the changed sources, as (depth, job) pairs, following 'upstream' reasons.
        `reporter` is told warnings (an unusable state store, as plan tells)."""
        graph, verdicts = self.plan([target], reporter=reporter)
        chain: List[Tuple[int, Job]] = []
        seen: set = set()
        # Depth first, each job before its stale deps, in their order; with a stack of its
        # own: a chain of thousands of stale jobs is deeper than Python's recursion limit.
        for top in graph.targets:
            if top.key in seen or verdicts[top.key].up_to_date:
                continue
            seen.add(top.key)
            chain.append((0, top))
            stack = [(iter(top.deps), 1)]
            while stack:
                deps, depth = stack[-1]
                for dep in deps:
                    if dep.key not in seen and not verdicts[dep.key].up_to_date:
                        seen.add(dep.key)
                        chain.append((depth, dep))
                        stack.append((iter(dep.deps), depth + 1))
                        break
                else:
                    stack.pop()
        return graph.targets, verdicts, chain

    @_path_errors_as_usage_errors
    def clean(
        self,
        targets: Sequence[str] = (),
        dry_run: bool = False,
        kept: Optional[List[Tuple[str, str]]] = None,
        only: bool = False,
    ) -> List[str]:
        """Remove outputs weave produced (never sources) and forget their records.

        With targets: those targets and every output built to make them (like `ninja -t clean
        TARGETS`; with `only`, the outputs of the targets' own jobs), as the current vars name
        them; without targets but with `--set` values (overrides): the default targets as those
        values name them; else every output recorded in the store (under every set of `--set`
        values). Only files that still hold what weave wrote are removed: one replaced or edited
        since (or unreadable) is left alone and added to `kept`, if given, as (path, why).
        Returns the removed paths.
        """
        import contextlib
        import shutil

        from .jobs import recipe_of

        targets = _targets(targets)
        # A dry run writes nothing: it reads the store as `weave plan` does, without the lock
        # (so it works while a build runs).
        with contextlib.nullcontext() if dry_run else ProjectLock(self.root, can_wait=False):
            store = self.open_store(readonly=dry_run)
            try:
                latest = store.load_jobs()
                records = store.recorded_outputs()
                sources: set = set()
                if targets or self.overrides:  # `clean --set run=quick`: that run's outputs only
                    graph = self.graph(targets)
                    sources = set(graph.sources)
                    jobs = graph.targets if only and targets else graph.jobs
                    wanted = {job.key: recipe_of(job)["outputs"] for job in jobs}
                    # The records that made these outputs; those of other --set values name
                    # other files, left for a later `weave clean`. Matched by the outputs, not
                    # the job key: a renamed rule's job is up to date by its old record.
                    made_together = {tuple(outputs) for outputs in wanted.values()}
                    records = [r for r in records if tuple(p for p, _ in r[2]) in made_together]
                    latest_keys = [key for key in wanted if key in latest]
                else:
                    try:
                        sources = set(self.graph().sources)
                    except UsageError:
                        sources = set()
                    latest_keys = list(latest)
                made: Dict[str, set] = {}  # output path -> the digests weave recorded for it
                for _, _, outputs in records:
                    for path, digest in outputs:
                        made.setdefault(path, set()).add(digest)
                files = FileState(self.root, store.load_files())
                removed: List[str] = []
                parents: set = set()
                weavefiles = paths.ProjectFiles(self.weavefiles, self.root)
                real_root = os.path.realpath(self.root)
                for output, digests in made.items():
                    path = output.rstrip("/")
                    if path in sources:
                        continue  # now a source: never delete a user's file
                    if paths.protected_output(paths.normalize(path), weavefiles):
                        continue  # recorded by a version that let a rule name it: never delete it
                    full = os.path.join(self.root, path)
                    if not os.path.lexists(full):
                        if not dry_run:  # gone already (a temporary output): its directory may be empty
                            parents.add(os.path.dirname(full))
                        continue
                    real_directory = os.path.realpath(os.path.dirname(full))
                    if not paths.real_within(real_directory, real_root):
                        # A directory on its way is now a symlink out of the project (a build
                        # refuses to write there too): what is there is not weave's.
                        if kept is not None:
                            kept.append((output, "it resolves outside the project directory (through a symlink)"))
                        continue
                    alias = paths.aliased_directory(real_directory, real_root, os.path.dirname(path))
                    if alias is not None:  # now another file's second name (a source's, perhaps)
                        if kept is not None:
                            kept.append((output, f"a symlink in the project leads its directory to '{alias or '.'}'"))
                        continue
                    try:
                        now = files.digest(path)
                    except UsageError as exc:  # unreadable, a device: weave cannot tell
                        if kept is not None:
                            kept.append((output, f"cannot read it ({getattr(exc, 'reason', exc.message)})"))
                        continue
                    if now not in digests:
                        if kept is not None:
                            kept.append((output, "it was replaced or edited since weave built it"))  # the user's now
                        continue
                    removed.append(output)
                    if dry_run:
                        continue
                    if os.path.isdir(full) and not os.path.islink(full):
                        shutil.rmtree(full)
                    else:
                        os.unlink(full)
                    parents.add(os.path.dirname(full))
                # Directories left empty by the removal go too (never the project directory).
                root = os.path.abspath(self.root)
                for parent in sorted(parents, key=len, reverse=True):
                    parent = os.path.abspath(parent)
                    while parent != root and parent.startswith(root + os.sep):
                        try:
                            os.rmdir(parent)
                        except OSError:
                            break
                        parent = os.path.dirname(parent)
                if not dry_run:
                    store.commit(
                        forget_records=[signature for signature, _, _ in records],
                        forget_latest=latest_keys,
                        forget_files=[o.rstrip("/") for o in made],
                    )
                return removed
            finally:
                store.close()

    @_path_errors_as_usage_errors
    def touch(self, targets: Sequence[str] = ()) -> Tuple[List[Job], List[Tuple[Job, str]]]:
        """Record the current outputs of the targets' own jobs as up to date without running
        them (after fixing something by hand); without targets, of every job the default
        targets need. A job upstream of the targets is not recorded, and one that is out of
        date is named (its input edits would be lost: make -t records them). Returns (recorded
        jobs, [(job, why not)])."""
        import time

        from .jobs import recipe_of

        targets = _targets(targets)
        from .scan import Scanner
        from .store import JobRow, Record

        with ProjectLock(self.root, can_wait=False):
            store, files, latest = self._session(readonly=False)
            try:
                graph = self.graph(targets, files)
                own = _own_jobs(graph.targets) if targets else None
                scanner = Scanner(files, store, latest)
                recorded: List[Job] = []
                skipped: List[Tuple[Job, str]] = []
                records = []
                for job in graph.jobs:
                    if not job.outputs:
                        continue
                    verdict = scanner.check(job)
                    if verdict.signature is None:
                        skipped.append((job, str(verdict.reasons[0])))
                        continue
                    if verdict.up_to_date:  # (a gone temporary output included)
                        continue
                    if own is not None and job.key not in own:
                        skipped.append((job, f"it is upstream of the targets and out of date ({verdict.reasons[0]}): build it, or name it to touch it too"))
                        continue
                    digests = [files.digest(output) for output in job.outputs]
                    missing = [o for o, d in zip(job.outputs, digests) if d is None]
                    if missing:
                        skipped.append((job, f"output missing: {missing[0]}"))
                        continue
                    # A job with a depfile keeps the files it listed last time, as they are now
                    # (one that never listed them must run to: recorded now, header edits
                    # would never rerun it).
                    row = latest.get(job.key) if job.depfile else None
                    if job.depfile and (row is None or not row.has_listing):
                        skipped.append((job, "it has a depfile that has not been read yet: build it once"))
                        continue
                    listed = [(path, files.digest(path)) for path, _ in row.discovered] if row is not None else []
                    record = Record(
                        verdict.signature, job.key, job.rule.name, recipe_of(job), verdict.inputs,
                        digests, 0.0, time.time(),  # type: ignore[arg-type]
                        [(path, digest) for path, digest in listed if digest is not None] if job.depfile else None,  # type: ignore[misc]
                    )
                    records.append(record)
                    latest[job.key] = JobRow(record.signature, " ".join(record.outputs), None, record.discovered)
                    recorded.append(job)
                store.commit(records, files.take_dirty())
                return recorded, skipped
            finally:
                store.close()


def _own_jobs(targets: Sequence[Job]) -> Set[str]:
    """The keys of the jobs that make the targets themselves: an alias stands for the jobs that
    make its items (and an alias among those for its own, in turn)."""
    own: Set[str] = set()
    stack = list(targets)
    while stack:
        job = stack.pop()
        if job.key in own:
            continue
        own.add(job.key)
        if job.rule.cmd is None:  # an alias
            stack.extend(job.deps)
    return own


def _missing_weavefile_hint(directory: str) -> str:
    """What to do when `directory` has no Weavefile: rename one whose case differs, or use the
    project above (weave does not search upwards by itself: where the project is, is explicit)."""
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    expected = {name.lower() for name in MANIFEST_NAMES}
    for name in sorted(names):
        if name.lower() in expected and name not in MANIFEST_NAMES:
            return f"found '{name}': the name is case-sensitive; rename it to Weavefile, or use -f {name}"
    here = os.path.abspath(directory)
    parent = os.path.dirname(here)
    while parent != here:
        if find_manifest(parent) is not None:
            from . import projectfile

            # (relative to where the command was typed: with -C, weave has moved from there)
            up = os.path.relpath(parent, projectfile.launched_in or os.path.abspath(directory))
            if up == ".":  # weave -C DIR run from the project itself
                return f"the project is in {parent}, the directory you are in: run weave there without -C"
            return f"the project is in {parent}: run 'weave -C {up} ...' (targets relative to it) or cd there"
        here, parent = parent, os.path.dirname(parent)
    return f"create one ({' or '.join(MANIFEST_NAMES)}), run 'weave init', or use -C DIR / -f FILE"


def _counts(result: Optional[BuildResult]) -> Tuple[int, int, int]:
    if result is None:
        return (0, 0, 0)
    return (result.count(RAN), result.count(FAILED), result.count(UP_TO_DATE))


def _name_earlier_makers(graph: Graph, verdicts: Dict[str, Verdict], latest: dict, store: Store) -> None:
    """For plan, why and status: a job never built under its key whose outputs a record of
    another key made (a renamed rule, other wildcard values) says so; 'never built' alone
    reads as if those files had never been made."""
    from .scan import NEVER_BUILT, Reason

    fresh = [
        job
        for job in graph.jobs
        if job.key not in latest and [reason.kind for reason in verdicts[job.key].reasons] == [NEVER_BUILT]
        and not verdicts[job.key].reasons[0].detail
    ]
    if not fresh:
        return
    made_by: Dict[str, str] = {}
    for _, key, outputs in store.recorded_outputs():  # oldest first: the last maker wins
        for path, _ in outputs:
            made_by[path] = key
    for job in fresh:
        other = next((made_by[o] for o in job.outputs if made_by.get(o, job.key) != job.key), None)
        if other is not None:
            verdicts[job.key].reasons[0] = Reason(
                NEVER_BUILT, f"not under this name; its outputs were made by job '{other}' (a renamed rule?)"
            )

"""Watch mode: build, then build again whenever a source, a scanned directory or the Weavefile changes.

Owns the watch set (which paths matter), debouncing and the build loop. It decides nothing about
staleness (the content-hash cache does) and parses no flags (commands/watch.py does).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import (
    IO,
    Any,
    Collection,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Mapping,
    Optional,
    Pattern,
    Sequence,
    Set,
    Tuple,
)

from . import paths
from .builder import ChangedPaths
from .errors import BuildFailed, Interrupted, ManifestError, MissingSource, UsageError, WeaveError
from .graph import Graph, Job
from .invocation import format_error
from .manifest import Manifest, fill_lookups, lookup_in, wildcard_names_in
from .projectfile import find_manifest
from .results import CANCELLED, RAN, SKIPPED, UP_TO_DATE

# vim's `4913` write test is not noise: a run or sample may be called that (a foreach over
# runs/{id}), and vim creates and deletes it within the save it precedes (one build).
is_noise = paths.is_noise

# Event types that mean content may have changed. `opened`/`closed_no_write` (the build reading
# its sources!) and `attrib` (touch, chmod) must not count, or reading inputs would loop.
CONTENT_EVENTS = frozenset({"created", "deleted", "modified", "moved", "closed"})

DEFAULT_DEBOUNCE = 0.2
# Feedback loops (Watcher._pace): after this many builds in a row started only by changes made
# during the build before, each next one waits 1, 2, 4... s, at most LOOP_MAX_WAIT. A change
# seen up to LOOP_GRACE s after a build ended counts as made during it (events come late).
LOOP_AFTER = 3
LOOP_MAX_WAIT = 60.0
LOOP_GRACE = 0.5
MAX_DELAY_FACTOR = 10  # a steady stream of writes still gets a build every 10 debounce periods
MIN_MAX_DELAY = 2.0


def _ancestors(rel: str) -> Iterator[str]:
    while "/" in rel:
        rel = rel.rsplit("/", 1)[0]
        yield rel


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else "."


def relative(root: str, path: str) -> str:
    """`path` (absolute) relative to `root` in the canonical spelling of `paths.normalize`."""
    path = os.path.normpath(path)
    if path == root:
        return "."
    if path.startswith(root + os.sep):
        return path[len(root) + 1 :]
    return paths.normalize(os.path.relpath(path, root))


class ScanPattern:
    """A glob or `foreach` pattern: the directory it scans and a regex for the paths it matches."""

    __slots__ = ("text", "directory", "recursive", "regex")

    def __init__(self, text: str, directory: str, recursive: bool, regex: Pattern[str]):
        self.text = text
        self.directory = directory
        self.recursive = recursive
        self.regex = regex

    @classmethod
    def compile(cls, text: str, constraints: Mapping[str, str], root: str) -> ScanPattern:
        """Translate `{wildcard}`s (with their constraints) and glob syntax into one regex.

        The scanned directory is the literal prefix up to the first wildcard or glob character;
        the pattern reaches below it when `**`, a later `/` or a constraint that may match '/'
        follows.
        """
        if os.path.isabs(text):
            text = relative(root, text)
        else:
            text = paths.normalize(text)
        parts: List[str] = []
        prefix: List[str] = []
        special = recursive = False
        i, n = 0, len(text)
        while i < n:
            char = text[i]
            literal: Optional[str] = None
            if text.startswith(("{{", "}}"), i):
                literal, i = char, i + 2
            elif char == "{" and text.find("}", i) > i:
                end = text.find("}", i)
                constraint = constraints.get(text[i + 1 : end])
                if constraint is not None and paths.may_match_slash(constraint):
                    recursive = True
                if constraint is not None and ("^" in constraint or "$" in constraint):
                    # Anchored to the value (paths.compile_pattern makes them so): here, any
                    # value of its shape is a change worth a look (the build decides).
                    constraint = ".+" if recursive else "[^/]+"
                parts.append(f"(?:{constraint or '[^/]+'})")
                special, i = True, end + 1
            elif text.startswith("**/", i):
                parts.append("(?:.*/)?")
                special = recursive = True
                i += 3
            elif text.startswith("**", i):
                parts.append(".*")
                special = recursive = True
                i += 2
            elif char in "*?":
                parts.append("[^/]*" if char == "*" else "[^/]")
                special, i = True, i + 1
            elif char == "[" and text.find("]", i + 2) > i:
                end = text.find("]", i + 2)
                body = text[i + 1 : end]
                body = "^" + body[1:] if body.startswith("!") else body
                parts.append("[" + body.replace("\\", "\\\\") + "]")
                special, i = True, end + 1
            else:
                literal, i = char, i + 1
            if literal is not None:
                parts.append(re.escape(literal))
                if not special:
                    prefix.append(literal)
                elif literal == "/":
                    recursive = True
        directory = _parent("".join(prefix)) if special else _parent(text)
        if "".join(prefix).endswith("/"):
            directory = paths.normalize("".join(prefix))
        return cls(text, directory, recursive, re.compile("".join(parts) + r"\Z"))

    def matches(self, rel: str) -> bool:
        return self.regex.match(rel) is not None

    def __repr__(self) -> str:
        return f"ScanPattern({self.text!r}, dir={self.directory!r}, recursive={self.recursive})"


class WatchSet:
    """What one graph depends on: which changed paths matter, and which directories to watch.

    Pure data, rebuilt from each good graph; shared read-only with the observer's threads.
    """

    def __init__(
        self,
        root: str,
        weavefile: str,
        sources: FrozenSet[str] = frozenset(),
        outputs: FrozenSet[str] = frozenset(),
        patterns: Sequence[ScanPattern] = (),
        dirs: Optional[Mapping[str, bool]] = None,
        weavefiles: Collection[str] = (),
    ):
        self.root = root
        # FSEvents (macOS) reports resolved paths: /private/var/... for a project in /var/...
        self.real_root = os.path.realpath(root)
        self.weavefile = weavefile
        # The Weavefile and the files it includes: a change to any of them reloads the rules;
        # for one that is a symlink, a change where it points (conf/real.toml) does too.
        self.weavefiles = _with_link_targets(root, frozenset(weavefiles) | {weavefile})
        self.sources = sources
        self.outputs = outputs
        self.patterns = tuple(patterns)
        # directory (project-relative) -> watch recursively?
        if dirs is None:
            dirs = {_parent(name): False for name in sorted(self.weavefiles)}
        self.dirs: Dict[str, bool] = dict(dirs)

    def with_source(self, rel: str) -> WatchSet:
        """This set, also watching source `rel` (a missing one: its nearest existing directory
        is watched until it appears)."""
        if os.path.isabs(rel):
            rel = relative(self.root, rel)
        dirs = dict(self.dirs)
        dirs.setdefault(_parent(rel), False)
        return WatchSet(self.root, self.weavefile, self.sources | {rel}, self.outputs, self.patterns, dirs, self.weavefiles)

    def with_sources(self, rels: Collection[str]) -> WatchSet:
        """This set, also watching the project files `rels` (what jobs' depfiles listed)."""
        added = [rel for rel in rels if rel not in self.sources and not os.path.isabs(rel)]
        if not added:
            return self
        dirs = dict(self.dirs)
        for rel in added:
            dirs.setdefault(_parent(rel), False)
        return WatchSet(
            self.root, self.weavefile, self.sources | frozenset(added), self.outputs, self.patterns, dirs, self.weavefiles
        )

    def with_weavefile(self, rel: str) -> WatchSet:
        """This set, also watching `rel` as a file of the Weavefile (one with a mistake, which
        the last good version did not include yet)."""
        dirs = dict(self.dirs)
        dirs.setdefault(_parent(rel), False)
        return WatchSet(
            self.root, self.weavefile, self.sources, self.outputs, self.patterns, dirs, self.weavefiles | {rel}
        )

    def relative(self, path: str) -> str:
        """An observed absolute path, relative to the project root."""
        if self.real_root != self.root and path.startswith(self.real_root + os.sep):
            return relative(self.real_root, path)
        return relative(self.root, path)

    def relevant(self, rel: str) -> bool:
        """True if a change of `rel` can change what the build does."""
        if is_noise(rel):
            return False
        if rel in self.weavefiles:
            return True
        if self.is_output(rel):  # the build's own writes never trigger it
            return False
        if rel in self.sources or any(a in self.sources for a in _ancestors(rel)):
            return True  # a source file, or something inside a source directory
        return any(pattern.matches(rel) for pattern in self.patterns)

    def in_source_tree(self, rel: str) -> bool:
        """Inside a source directory (a directory input), not an output of the build."""
        return not is_noise(rel) and not self.is_output(rel) and any(a in self.sources for a in _ancestors(rel))

    def is_output(self, rel: str) -> bool:
        """An output of the build, or anything inside a directory output."""
        return rel in self.outputs or any(a in self.outputs for a in _ancestors(rel))

    def describe(self) -> str:
        files = len(self.sources) + 1
        text = f"{files} file{'s' if files != 1 else ''}"
        if self.patterns:
            text += f" and {len(self.patterns)} pattern{'s' if len(self.patterns) != 1 else ''}"
        count = len(self.dirs)
        return text + f" in {count} director{'ies' if count != 1 else 'y'}"


def scan_patterns(graph: Graph, manifest: Manifest) -> List[Tuple[str, Dict[str, str]]]:
    """Patterns whose matches decide the graph: every rule's `foreach` patterns (the resolver
    expands them all when it indexes outputs) and the glob inputs of the jobs in `graph`."""
    found: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], Dict[str, str]] = {}

    def add(text: str, constraints: Dict[str, str]) -> None:
        found.setdefault((text, tuple(sorted(constraints.items()))), constraints)

    for rule in manifest.rules.values():
        for spec in rule.foreach.values():
            if isinstance(spec, str):
                add(spec, rule.wildcard_regex)
    for job in graph.jobs:
        for pattern in job.rule.inputs:
            for filled in _looked_up_patterns(pattern, job, manifest):
                text = paths.substitute(filled, job.wildcards)
                if paths.is_written_glob(text):
                    add(text, job.rule.wildcard_regex)
    return [(text, constraints) for (text, _), constraints in found.items()]


def _looked_up_patterns(pattern: str, job: Job, manifest: Manifest) -> List[str]:
    """An input pattern with its table var lookups filled (a glob in an entry counts): the
    job's entry, or, for a key the job does not bind (a fan-in over a foreach key), each of
    the table's entries in turn."""
    if "vars." not in pattern:
        return [pattern]
    lookups = list(dict.fromkeys(found for found in map(lookup_in, wildcard_names_in(pattern)) if found is not None))
    choices: List[List[object]] = []
    for name, wildcard in lookups:
        table = manifest.vars.get(name)
        table = table if isinstance(table, dict) else {}
        bound = job.wildcards.get(wildcard)
        choices.append([table.get(bound, "")] if bound is not None else list(table.values()))
    filled: List[str] = []
    for combination in itertools.product(*choices):
        chosen = dict(zip(lookups, combination))
        filled.append(fill_lookups(pattern, lambda name, wildcard, chosen=chosen: chosen.get((name, wildcard), "")))
    return filled


def _with_link_targets(root: str, names: Collection[str]) -> FrozenSet[str]:
    """`names` (files relative to `root`) and, for each that is a symlink, where it points."""
    found = set(names)
    for name in names:
        full = os.path.join(root, name)
        if os.path.islink(full):
            found.add(relative(root, os.path.realpath(full)))
    return frozenset(found)


def _link_targets(directory: str) -> List[str]:
    """The real paths of the symlinks in a directory input's tree that its digest follows
    (hashing.walk_tree): files and directories outside the tree."""
    from .hashing import walk_tree

    followed: List[str] = []
    try:
        walk_tree(directory, followed)
    except OSError:
        return []
    return [os.path.realpath(os.path.join(directory, rel)) for rel in followed]


def watch_set(graph: Graph, manifest: Manifest) -> WatchSet:
    """The WatchSet of `graph` (resolved from `manifest`, or loaded from the graph cache): its
    sources, outputs, scan patterns and the directories to watch."""
    root = os.path.abspath(manifest.root)
    weavefile = relative(root, os.path.abspath(manifest.path))
    dirs: Dict[str, bool] = {}

    def want(directory: str, recursive: bool) -> None:
        dirs[directory] = dirs.get(directory, False) or recursive

    # Directories, never files, are watched: an editor's write-rename replaces the file (and
    # inotify's watch on it), but the directory sees the new name arrive.
    weavefiles = manifest.files  # the Weavefile (`weavefile`) first, then the files it includes
    for name in _with_link_targets(root, weavefiles):
        want(_parent(name), False)
    sources = set()
    for path in graph.sources:
        full = os.path.join(root, path)
        names = [relative(root, full)]
        if os.path.islink(full):
            # Data is often a symlink into a shared area: edits happen where the link points.
            names.append(relative(root, os.path.realpath(full)))
        for rel in names:
            sources.add(rel)
            want(_parent(rel), False)
            if os.path.isdir(os.path.join(root, rel)):
                want(rel, True)  # a directory input: its whole content is hashed
                # ... through the symlinks in it, too: edits happen where they point.
                for target in _link_targets(os.path.join(root, rel)):
                    linked = relative(root, target)
                    sources.add(linked)
                    want(_parent(linked), False)
                    if os.path.isdir(target):
                        want(linked, True)
    patterns = []
    for text, constraints in scan_patterns(graph, manifest):
        try:
            pattern = ScanPattern.compile(text, constraints, root)
        except re.error:  # a constraint Python cannot compile: the resolver will say so
            continue
        patterns.append(pattern)
        want(pattern.directory, pattern.recursive)
    outputs = {relative(root, os.path.join(root, o)) for job in graph.jobs for o in job.outputs}
    return WatchSet(root, weavefile, frozenset(sources), frozenset(outputs), patterns, dirs, weavefiles)


class ChangeQueue:
    """Changed paths, filled by observer threads and drained by the main thread after a quiet spell."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paths: Dict[str, None] = {}  # insertion-ordered set
        self._first = 0.0
        self._last = 0.0
        self._added = 0  # paths added so far (wait_for_more)

    def add(self, rel: str) -> None:
        with self._cond:
            now = time.monotonic()
            if not self._paths:
                self._first = now
            self._paths[rel] = None
            self._last = now
            self._added += 1
            self._cond.notify_all()

    def __bool__(self) -> bool:
        with self._cond:
            return bool(self._paths)

    def wait_for_more(self, timeout: float) -> bool:
        """Block until a path is added or `timeout` seconds pass; whether one was added."""
        deadline = time.monotonic() + timeout
        with self._cond:
            added = self._added
            while self._added == added:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))  # 0.5: Ctrl-C is handled promptly
            return True

    def wait(self, quiet: float, max_delay: float) -> List[str]:
        """Block until something changed and then nothing changed for `quiet` seconds (or
        `max_delay` passed since the first change); return the changed paths, in order."""
        with self._cond:
            while not self._paths:
                # A timeout, so that Ctrl-C is handled promptly wherever lock waits are not
                # interruptible.
                self._cond.wait(0.5)
            while True:
                due = min(self._last + quiet, self._first + max_delay)
                remaining = due - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            changed = list(self._paths)
            self._paths.clear()
            return changed


class WatchOptions:
    """How to watch: debounce, restart policy, hooks and the observer kind."""

    def __init__(
        self,
        debounce: float = DEFAULT_DEBOUNCE,
        restart: bool = False,
        clear: bool = False,
        on_success: Optional[str] = None,
        on_failure: Optional[str] = None,
        poll: bool = False,
        poll_interval: float = 1.0,
        verbosity: int = 1,
    ):
        self.debounce = debounce
        self.restart = restart
        self.clear = clear
        self.on_success = on_success
        self.on_failure = on_failure
        self.poll = poll
        self.poll_interval = poll_interval
        self.verbosity = verbosity


class _Terminated(BaseException):
    """SIGTERM between builds (during a build the builder turns it into Interrupted)."""


class _EventHandler:
    """Receives watchdog events on the observer's thread; only records paths and wakes the loop.

    Duck-typed (watchdog calls `dispatch(event)`), so this module does not import watchdog until
    a watch starts.
    """

    def __init__(self, watcher: Watcher):
        self.watcher = watcher
        self._warned = False

    def dispatch(self, event: Any) -> None:
        try:
            if event.event_type == "attrib" and not event.is_directory:
                # A chmod inside a directory input changes that tree's digest (it holds each
                # file's executable bit); elsewhere a mode or a timestamp changes nothing.
                self.watcher.notice_mode(os.fsdecode(event.src_path))
                return
            if event.event_type not in CONTENT_EVENTS:
                return
            if event.is_directory and event.event_type in ("modified", "closed"):
                return  # the entries' own events say what changed
            targets = [event.src_path]
            if event.event_type == "moved" and event.dest_path:
                targets.append(event.dest_path)
            if event.is_directory and event.event_type in ("deleted", "moved"):
                # A watch on it (or in it) is dead or follows it elsewhere: the directory now
                # at that path, if any, needs a new one, even with the same inode number.
                self.watcher.directories_gone([os.fsdecode(path) for path in targets if path])
            for path in targets:
                self.watcher.notice(os.fsdecode(path), event.is_directory)
        except Exception as exc:  # an exception here would silently kill the observer thread
            if not self._warned:
                self._warned = True
                sys.stderr.write(f"weave: warning: watch: cannot handle {event!r}: {exc}\n")


class Watcher:
    """The watch loop: build, wait for relevant changes, build again; until Ctrl-C or SIGTERM."""

    def __init__(
        self,
        directory: str,
        weavefile: Optional[str],
        targets: Sequence[str],
        build_kwargs: Mapping[str, Any],
        options: WatchOptions,
        reporter: Any,
        out: Optional[IO[str]] = None,
        err: Optional[IO[str]] = None,
        overrides: Optional[Mapping[str, str]] = None,
    ):
        self.directory = directory
        self.weavefile = weavefile
        self._spelled: Optional[str] = None  # the Weavefile's path as first loaded (run)
        self._spelled_in = ""  # the working directory then
        self.overrides = dict(overrides or {})  # --set values, applied at every (re)load
        self.targets = list(targets)
        self.build_kwargs = dict(build_kwargs)
        self.options = options
        self.reporter = reporter
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.project: Any = None  # the loaded Project, None while the Weavefile is invalid
        self.root = ""
        self.spec: Optional[WatchSet] = None  # last good watch set; read by observer threads
        self.pending_dirs: FrozenSet[str] = frozenset()  # wanted directories that do not exist
        self.changes = ChangeQueue()
        self.changed_paths = ChangedPaths(unchanged=self._unchanged_by_edit)
        self._weavefile_edited = False  # during the build (--restart): it stopped starting jobs
        self.building = False
        self.cycle = 0
        # Feedback loops (a job that writes what it reads): the paths that changed while the
        # last build ran (or just after it ended), and how many builds in a row were started
        # by such changes alone.
        self._during_build: Set[str] = set()
        self._build_ended = 0.0
        self._loops = 0
        self._loop_paths: Set[str] = set()  # what changed during each of those builds
        self._graph: Optional[Graph] = None
        self._observer: Any = None
        self._handler = _EventHandler(self)
        self._watches: Dict[Tuple[str, bool], Tuple[Any, Tuple[int, int]]] = {}
        self._watched_summary = ""
        # Directories deleted or moved (from or to) since the watches were last updated.
        self._gone: Set[str] = set()
        self._gone_lock = threading.Lock()
        # Watched directories that are symlinks (data -> a shared store): inotify does not
        # follow a link at the end of the path it is given, so the directory it points to is
        # watched, and its events are put back under the links' paths. Real path -> link
        # paths; and the links, project-relative (a change of one, retargeted or removed, is a
        # change). Replaced whole by _update_watches, read by the observer's threads.
        self._aliases: Dict[str, List[str]] = {}
        self._alias_links: FrozenSet[str] = frozenset()

    # -- observer side (runs on watchdog's threads) ----------------------------------------------
    def directories_gone(self, paths: Sequence[str]) -> None:
        with self._gone_lock:
            self._gone.update(os.path.normpath(path) for path in paths)

    def _unaliased(self, path: str) -> List[str]:
        """An observed path under a watched symlink's target, as the project names it (through
        each link to that target)."""
        aliases = self._aliases
        if aliases:
            for real, links in aliases.items():
                if path == real or path.startswith(real + os.sep):
                    return [link + path[len(real) :] for link in links]
        return []

    def notice_mode(self, path: str) -> None:
        """The metadata of file `path` changed (chmod, touch): a change only for a file inside
        a directory input."""
        spec = self.spec
        if spec is not None and spec.in_source_tree(spec.relative(path)):
            self.notice(path, False)

    def notice(self, path: str, is_directory: bool) -> None:
        for unaliased in self._unaliased(path):
            self._notice(unaliased, is_directory)
        self._notice(path, is_directory)  # (the target may be a source under its own name too)

    def _notice(self, path: str, is_directory: bool) -> None:
        spec = self.spec
        if spec is None:
            return
        rel = spec.relative(path)
        if not self._relevant(spec, rel, is_directory):
            return
        if rel in spec.weavefiles and self.project is not None and self.project.weavefile_unchanged():
            return  # saved with the same bytes: nothing to reload, no build to restart
        if self.building or time.monotonic() - self._build_ended < LOOP_GRACE:
            self._during_build.add(rel)
        self.changes.add(rel)
        if self.options.restart and self.building:
            if rel in spec.weavefiles:
                # The rules changed: start nothing more, cancel the running jobs whose rule
                # changed, and let the others finish (see _unchanged_by_edit).
                self._weavefile_edited = True
                self.changed_paths.rules_changed()
            else:
                self.changed_paths.add(rel)  # cancel only the running jobs that read it

    def _relevant(self, spec: WatchSet, rel: str, is_directory: bool) -> bool:
        if spec.relevant(rel):
            return True
        if rel in self._alias_links:  # a watched link retargeted or removed (not a directory event)
            return True
        if not is_directory or is_noise(rel):
            return False
        if spec.is_output(rel):
            return False  # a directory output the build (re)made: its own write, not a change
        # A directory we wanted but could not watch (it did not exist) appeared, or a watched
        # one went away: the next cycle re-schedules watches (and builds, usually a no-op).
        for wanted in self.pending_dirs:
            if wanted == rel or wanted.startswith(rel + "/"):
                return True
        return any(d == rel or d.startswith(rel + "/") for d in spec.dirs if d != ".")

    # -- the loop (main thread) ---------------------------------------------------------------------
    def run(self) -> int:
        """Watch until interrupted; returns the exit code (130 for Ctrl-C, 143 for SIGTERM)."""
        from .api import Project

        # A missing Weavefile ends watch mode at once, as it ends `weave build`; an invalid one
        # is watched until it is fixed.
        try:
            self.project = Project.load(self.directory, self.weavefile, self.overrides)
            self.root = self.project.root
            initial_error: Optional[WeaveError] = None
        except ManifestError as exc:
            self.root = os.path.dirname(os.path.abspath(self._weavefile_path()))
            initial_error = exc
        self.root = os.path.abspath(self.root)
        # Reloads read the same file, never one found by a new search; they spell it as the
        # first load did (`./Weavefile:3: ...`, as `weave build` says), while the working
        # directory is the same (else by its absolute path).
        self._spelled = self._weavefile_path() if self.project is None else self.project.manifest.path
        self._spelled_in = os.getcwd()
        self.weavefile = os.path.abspath(self._spelled)
        self.spec = WatchSet(self.root, relative(self.root, os.path.abspath(self.weavefile)))
        previous_term = signal.getsignal(signal.SIGTERM)
        previous_int = signal.getsignal(signal.SIGINT)
        on_main_thread = threading.current_thread() is threading.main_thread()
        if on_main_thread:
            signal.signal(signal.SIGTERM, _raise_terminated)
        self._observer = self._make_observer()
        self._observer.start()
        code = 0
        try:
            if initial_error is not None:
                self._begin("starting")
                self._report_error(initial_error)
                self._update_watches()
                self._finish("error", "Weavefile is invalid; fix it to build", time.monotonic())
            else:
                self._cycle([], initial=True)
            max_delay = max(MIN_MAX_DELAY, self.options.debounce * MAX_DELAY_FACTOR)
            while True:
                changed = self.changes.wait(self.options.debounce, max_delay)
                self._cycle(self._pace(changed, max_delay))
        except KeyboardInterrupt:
            code = 130
        except _Terminated:
            code = 143
        except Interrupted as exc:
            code = exc.exit_code
        finally:
            if on_main_thread:  # a second signal (`timeout` sends one to the group too) must not cut the shutdown short
                signal.signal(signal.SIGTERM, _ignore_signal)
                signal.signal(signal.SIGINT, _ignore_signal)
            self._observer.stop()
            self._observer.join(timeout=5)
            if on_main_thread:
                signal.signal(signal.SIGTERM, previous_term)
                signal.signal(signal.SIGINT, previous_int)
        self.err.write("weave: interrupted\n")
        self.err.flush()
        return code

    def _reload_path(self) -> str:
        """The Weavefile as the first load spelled it, or its absolute path."""
        if self._spelled is None or os.path.isabs(self._spelled) or os.getcwd() != self._spelled_in:
            return os.path.abspath(self.weavefile or self._weavefile_path())
        return self._spelled

    def _weavefile_path(self) -> str:
        if self.weavefile is not None:
            if os.path.isabs(self.weavefile):
                return self.weavefile
            return os.path.join(self.directory, self.weavefile)
        return find_manifest(self.directory) or os.path.join(self.directory, "Weavefile")

    def _pace(self, changed: List[str], max_delay: float) -> List[str]:
        """Hold back a build that only changes made during the builds before it start, once
        that has happened LOOP_AFTER times in a row: a job that writes what it (or an earlier
        job) reads would otherwise rebuild for ever, several times a second. Said once, with
        the rules that read those paths; then each such build waits twice as long as the last
        (at most LOOP_MAX_WAIT s). Nothing is dropped: any other change (an edit made while
        idle) builds at once, and the held-back build runs when its wait is over."""
        during, self._during_build = self._during_build, set()
        if not changed or not set(changed) <= during:
            self._loops = 0
            return changed
        # A loop rewrites the same files each time; a person editing one file per build (a,
        # then b, then the Weavefile) is no loop. Counted while some path changed in each.
        common = self._loop_paths & set(changed) if self._loops else set(changed)
        if not common:
            self._loops, common = 0, set(changed)
        self._loop_paths = common
        self._loops += 1
        if self._loops < LOOP_AFTER:
            return changed
        if self._loops == LOOP_AFTER:
            looping = sorted(common)
            readers = sorted({
                job.rule.name
                for job in (self._graph.jobs if self._graph is not None else [])
                for path in looping
                if any(paths.is_within(path, source) for source in job.inputs)
            })
            self.reporter.warning(
                f"{_summarize(looping)} changed during each of the last {LOOP_AFTER} builds, and"
                " nothing else did: a job may be writing what it reads"
                + (f" (read by rule{'s' if len(readers) > 1 else ''} {', '.join(repr(name) for name in readers)})" if readers else "")
                + "; builds for such changes alone now wait longer each time (an edit builds at once)"
            )
        wait = min(LOOP_MAX_WAIT, 2.0 ** (self._loops - LOOP_AFTER))
        if self.changes.wait_for_more(wait):  # something changed meanwhile: build it all now
            self._loops = 0
            return list(dict.fromkeys(changed + self.changes.wait(self.options.debounce, max_delay)))
        return changed

    def _cycle(self, changed: List[str], initial: bool = False) -> None:
        from .api import Project

        spec = self.spec
        assert spec is not None
        started = time.monotonic()
        header = ["building" if initial else "changed: " + _summarize(changed)]

        def begin() -> None:  # the cycle's header, once
            if header:
                self._begin(header.pop())

        if not initial:
            begin()
        # (The first cycle's header waits for its graph: a typo in a target ends watch mode
        # with the error alone, as it ends `weave build`.)
        # 1. The Weavefile: reload when it changed, or while the last version was invalid.
        if self.project is None or any(rel in spec.weavefiles for rel in changed):
            try:
                # (directory "": the path is taken as spelled, relative to the working directory)
                self.project = Project.load("", self._reload_path(), self.overrides)
            except UsageError as exc:  # invalid, or gone: keep the last good watch set
                gone = not os.path.lexists(self.weavefile)  # deleted or moved away (git stash?)
                self.project = None
                begin()
                self._report_error(
                    UsageError(f"the Weavefile {self._reload_path()} is gone", hint="watching for it to come back")
                    if gone
                    else exc
                )
                self._update_watches()
                self._finish(
                    "error", f"Weavefile is {'gone' if gone else 'invalid'}; watching with the last good graph", started
                )
                return
        # 2. The graph, and from it what to watch. Watches are in place before the build starts,
        #    so a change made while it runs is seen.
        try:
            # From the graph cache while the Weavefile and the files it scans are as they
            # were: re-resolving a 40k-job graph on each save took seconds.
            graph = self.project.graph(self.targets)
            manifest = self.project.manifest  # parsed once per version of the Weavefile
        except WeaveError as exc:
            if initial and not isinstance(exc, MissingSource):
                raise  # a typo in a target: say so at once, as `weave build` does
            begin()
            if isinstance(exc, MissingSource):  # watch for it to appear, even if it is new
                self.spec = spec.with_source(exc.path)
            self._report_error(exc)
            self._update_watches()
            self._finish("error", "cannot build; fix it and save", started)
            return
        begin()
        self.spec = watch_set(graph, manifest)
        self._graph = graph
        listing = [job.key for job in graph.jobs if job.depfile]
        if listing:  # the files their depfiles listed last time, as sources
            self.spec = self.spec.with_sources(self.project.listed_files(listing))
        self._update_watches()
        # 3. The build. It decides from content hashes what is stale: a save without a change
        #    runs nothing.
        kwargs = dict(self.build_kwargs)
        # Another weave building here (a `weave build` in another terminal): queue behind it
        # (saying so), rather than drop this change until the next one.
        kwargs["wait_for_lock"] = True
        if not initial:
            kwargs["force"] = False  # -B (and -R) force the first build only
            kwargs["force_rules"] = ()
        self.building = True
        self._weavefile_edited = False
        try:
            # Forget changes that arrived before this build started.
            self.changed_paths.take()
            self.changed_paths.take_rules_changed()
            result = self.project.build(
                self.targets,
                reporter=self.reporter,
                changed=self.changed_paths if self.options.restart else None,
                **kwargs,
            )
        except BuildFailed as exc:
            self._finish("FAILED", exc.message, started)
            return
        except Interrupted:  # Ctrl-C or SIGTERM: ends watch mode (run)
            raise
        except WeaveError as exc:  # locked by another weave, a graph error found at build time
            self._report_error(exc)
            self._finish("error", "build did not start", started)
            return
        finally:
            self.building = False
            self._build_ended = time.monotonic()
        if listing:  # what the jobs that ran listed now
            spec = self.spec.with_sources(self.project.listed_files(listing))
            if spec is not self.spec:
                self.spec = spec
                self._update_watches()
        for path in result.changed_during:
            # Changed while a job read it (a chmod, a touch, an edit that the events of this
            # build's window did not bring): that job was not recorded; build again. Spelled
            # as events are (an absolute input: `../ext/a.txt`), so that one file is one change.
            rel = relative(self.root, os.path.join(self.root, path))
            self._during_build.add(rel)
            self.changes.add(rel)
        # Counted, not listed: the jobs a partial build never loaded have no results until
        # asked for (40k of them cost 0.3 s to make).
        ran, fresh = result.count(RAN), result.count(UP_TO_DATE)
        detail = f"{ran} ran, {fresh} up to date" if ran else f"nothing ran ({fresh} up to date)"
        cancelled = result.count(CANCELLED)
        if self._weavefile_edited:
            not_started = result.count(SKIPPED)
            self._finish(
                "cancelled",
                f"the Weavefile changed ({cancelled} job(s) cancelled, {not_started} not started; {detail});"
                " restarting",
                started,
            )
            return
        if cancelled:
            self._finish(
                "cancelled",
                f"{cancelled} job(s) whose inputs changed were cancelled ({detail}); restarting",
                started,
            )
            return
        self._finish("ok", detail, started)

    def _unchanged_by_edit(self, jobs: Sequence[Job]) -> Optional[Set[str]]:
        """The keys of those of `jobs`, running under the last good Weavefile, that the one
        now on disk makes the same way: the same job, command, vars, env, inputs and outputs
        (their records stay true). None when it cannot be loaded or resolved: a half-edited
        save cancels nothing. Called by the build (its thread) when the Weavefile changed."""
        from .api import Project
        from .graph import recipe_digest

        try:
            graph = Project.load("", self._reload_path(), self.overrides).graph(self.targets)
        except WeaveError:
            return None
        now = {job.key: job for job in graph.jobs}
        same: Set[str] = set()
        for job in jobs:
            other = now.get(job.key)
            if other is not None and other.inputs == job.inputs and recipe_digest(other) == recipe_digest(job):
                same.add(job.key)
        return same

    def _begin(self, what: str) -> None:
        self.cycle += 1
        if self.options.clear and self.out.isatty():
            self.out.write("\033[2J\033[3J\033[H")
        self._info(f"weave watch: [{self.cycle}] {time.strftime('%H:%M:%S')} {what}")

    def _finish(self, status: str, detail: str, started: float) -> None:
        seconds = time.monotonic() - started
        line = f"weave watch: [{self.cycle}] {status}: {detail} in {seconds:.2f}s"
        if status == "cancelled":
            # "...; restarting in 2.26s" read as a delay: the seconds are the cycle's, so before it.
            what, _, then = detail.rpartition("; ")
            self._info(f"weave watch: [{self.cycle}] {status}: {what} after {seconds:.2f}s; {then}")
            return
        if self._watched_summary:
            line += f"; watching {self._watched_summary} (Ctrl-C to stop)"
            self._watched_summary = ""  # said once, and again when it changes
        if status == "ok":
            self._info(line)
        else:
            self.err.write(line + "\n")
            self.err.flush()
        hook = self.options.on_success if status == "ok" else self.options.on_failure
        if hook:
            self._run_hook(hook, status)

    def _info(self, text: str) -> None:
        if self.options.verbosity >= 1:
            self.out.write(text + "\n")
            self.out.flush()

    def _report_error(self, exc: WeaveError) -> None:
        path = getattr(exc, "path", None)
        if isinstance(exc, ManifestError) and path and self.spec is not None:
            # A mistake in a file the Weavefile includes (perhaps newly): watch it to see the fix.
            rel = relative(self.root, os.path.abspath(path))
            if not paths.is_outside(rel) and rel not in self.spec.weavefiles:
                self.spec = self.spec.with_weavefile(rel)
        self.err.write(format_error(exc) + "\n")
        self.err.flush()

    def _run_hook(self, command: str, status: str) -> None:
        """Run a --on-success/--on-failure hook with bash in the project directory; wait for it."""
        from .executor import kill_tree

        env = dict(os.environ)
        env["WEAVE_WATCH_STATUS"] = "ok" if status == "ok" else "failed"
        env["WEAVE_WATCH_CYCLE"] = str(self.cycle)
        shell = shutil.which("bash") or "/bin/bash"
        # Its own session: a Ctrl-C at the terminal reaches us, and we take the whole hook down.
        process = subprocess.Popen([shell, "-c", command], cwd=self.root, env=env, start_new_session=True)
        try:
            code = process.wait()
        except BaseException:
            kill_tree(process.pid, signal.SIGKILL)
            process.wait()
            raise
        if code != 0:
            self.err.write(f"weave watch: hook exited with status {code}: {command}\n")
            self.err.flush()

    # -- watches -------------------------------------------------------------------------------
    def _make_observer(self) -> Any:
        if self.options.poll:
            from watchdog.observers.polling import PollingObserver

            return PollingObserver(timeout=self.options.poll_interval)
        from watchdog.observers import Observer

        return Observer()

    def _update_watches(self) -> None:
        """Schedule the spec's directories (existing ones; else their nearest existing ancestor,
        until they appear) and drop watches no longer wanted or whose directory was replaced."""
        spec = self.spec
        assert spec is not None
        wanted: Dict[str, bool] = {}
        pending = set()
        for rel, recursive in spec.dirs.items():
            full = os.path.normpath(os.path.join(self.root, rel))
            if not os.path.isdir(full):
                pending.add(rel)
                recursive = False
                while not os.path.isdir(full) and os.path.dirname(full) != full:
                    full = os.path.dirname(full)
            wanted[full] = wanted.get(full, False) or recursive
        # The parent of each, too: there a rename of the directory itself shows (inotify tells
        # a watch that its directory moved, but not where; watchdog drops that event).
        root = os.path.normpath(self.root)
        for full in list(wanted):
            parent = os.path.dirname(full)
            if full != root and full.startswith(root + os.sep) and parent not in wanted:
                wanted[parent] = False
        # A directory that is a symlink: watched where it points (see _aliases); its own
        # parent, watched above, sees the link replaced.
        aliases: Dict[str, List[str]] = {}
        for full in list(wanted):
            if os.path.islink(full):
                real = os.path.realpath(full)
                recursive = wanted.pop(full)
                wanted[real] = wanted.get(real, False) or recursive
                aliases.setdefault(real, []).append(full)
        self._aliases = aliases
        self._alias_links = frozenset(
            os.path.relpath(link, root).replace(os.sep, "/") for links in aliases.values() for link in links
        )
        # A recursive watch covers its subdirectories.
        recursive_dirs = [d for d, r in wanted.items() if r]
        for full in list(wanted):
            if any(full.startswith(d + os.sep) for d in recursive_dirs):
                del wanted[full]
        self.pending_dirs = frozenset(pending)
        with self._gone_lock:
            gone, self._gone = self._gone, set()
        for key, (watch, identity) in list(self._watches.items()):
            if (
                wanted.get(key[0]) != key[1]
                or _identity(key[0]) != identity
                or any(key[0] == path or key[0].startswith(path + os.sep) for path in gone)
            ):
                self._observer.unschedule(watch)
                del self._watches[key]
        changed = False
        for full, recursive in wanted.items():
            if (full, recursive) in self._watches:
                continue
            identity = _identity(full)
            try:
                watch = self._observer.schedule(self._handler, full, recursive=recursive)
            except OSError as exc:  # e.g. the inotify watch limit: say how to go on
                self.err.write(
                    f"weave: warning: cannot watch {full}: {exc}\n"
                    "  hint: raise fs.inotify.max_user_watches, or use --poll\n"
                )
                continue
            self._watches[(full, recursive)] = (watch, identity)
            changed = True
        if changed:
            self._watched_summary = spec.describe()


def _identity(path: str) -> Tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0)
    return (st.st_dev, st.st_ino)


def _raise_terminated(signum: int, frame: object) -> None:
    # Once: the first SIGTERM ends the session, a second (sent to the process group as well)
    # finds the shutdown under way.
    signal.signal(signal.SIGTERM, _ignore_signal)
    raise _Terminated()


def _ignore_signal(signum: int, frame: object) -> None:
    """A signal while watch mode shuts down: it is already stopping."""


def _summarize(changed: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(changed[:limit])
    if len(changed) > limit:
        shown += f" (+{len(changed) - limit} more)"
    return shown


def watch(
    directory: str,
    weavefile: Optional[str],
    targets: Sequence[str],
    build_kwargs: Mapping[str, Any],
    options: WatchOptions,
    reporter: Any,
    overrides: Optional[Mapping[str, str]] = None,
) -> int:
    """Build `targets`, then rebuild on every relevant change until Ctrl-C; returns the exit code.

    `build_kwargs` are passed to `Project.build` (jobs, resources, keep_going, ...);
    `overrides` to `Project.load` (`--set` values).
    """
    return Watcher(directory, weavefile, targets, build_kwargs, options, reporter, overrides=overrides).run()

"""The no-op fast path: a stamp of the fingerprint of every file the targets' jobs read or
write, taken when all of them were verified up to date.

If the Weavefile bytes, every recorded glob/foreach answer, every file fingerprint (stat) and
every record are unchanged since the stamp, every verdict is unchanged too, so the build is a
no-op without loading the graph, the records or computing a single signature. A file that
was racy at stamp time is re-read by the check, so a stamp can only be stale in ways that make
the check fail.

A stamp is a file, `.weave/stamps/<digest of its key>`, that starts with a random token; it is
valid only while the store holds the same token for its key. Any record change deletes every
token in the same transaction (store.commit), so no stamp outlives the records it vouched for.
(Stamps are megabytes at 10k jobs: written as files they cost a few ms, in SQLite tens.)
"""

from __future__ import annotations

import array
import itertools
import marshal
import operator
import os
import stat as stat_module
import time

from ._version import __version__
from .filestate import FileState, racy_window
from .hashing import SMALL_FILE, digest_strings, hash_file, hash_files
from .paths import in_any_of, replace_file
from .projectfile import read_regular_file
from .store import Store

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, List, Optional, Sequence, Set, Tuple

    from .filestate import Fingerprint
    from .jobs import Graph, Job
    from .store import FileRow


# Bumped whenever the stamp's layout changes: a stamp of another layout is never read.
FORMAT = "stamp-8"  # 8: the Weavefile checks of 2026-11-27 (nested outputs, logs) apply to stamped projects too
STAMP_DIR = os.path.join(".weave", "stamps")
TOKEN_BYTES = 16


def key(weavefile_digest: str, targets: Sequence[str]) -> str:
    return "\0".join((FORMAT, __version__, weavefile_digest) + tuple(targets))


# The fingerprint of a temporary output that is gone (temps.py): it must still be gone.
ABSENT = (-1, -1, -1, -1)


def make(
    graph: Graph,
    files: FileState,
    absent: Optional[Dict[str, str]] = None,
    listed: Optional[Dict[str, List[str]]] = None,
) -> Optional[bytes]:
    """The stamp of a graph whose jobs were all just verified up to date, or None when it
    cannot be stamped (command-only jobs, unhashed files, directories modified just now).
    `absent`: the temporary outputs that are gone, with their recorded digests; `listed`:
    by job key, the files a job's depfile listed (stamped as its inputs).

    A directory (a directory output, or an input that is a directory) is stamped as the
    fingerprints of every file in its tree plus the (mtime, inode, ctime) of every directory in
    it: adding, removing or renaming an entry changes its directory's mtime and ctime."""
    entries: Dict[str, tuple] = {}
    cache = files.cache
    listed = listed or {}
    for job in graph.jobs:
        if not job.outputs:
            return None
        # (order_only paths too: a deleted source of them is a missing source, not a no-op)
        for paths in (job.inputs, job.outputs, listed.get(job.key, ()), job.order_only):
            for path in paths:
                if path in entries:
                    continue
                if absent and path in absent:
                    entries[path] = ABSENT + (absent[path], 0)
                    continue
                row = cache.get(path)
                if row is None:
                    if not _stamp_tree(path, files, entries):
                        return None
                    continue
                entries[path] = row
    position = {path: index for index, path in enumerate(entries)}
    structure = tuple(
        (tuple([position[p] for p in _read_paths(job, listed)]), tuple([position[p] for p in job.outputs]))
        for job in graph.jobs
    )
    rows = list(entries.values())
    return _pack(
        marshal.dumps(tuple(entries)),
        array.array("q", itertools.chain.from_iterable(map(_FINGERPRINT, rows))),
        [row[4] or "" for row in rows],
        array.array("q", map(_HASHED_AT, rows)),
        [index for index, row in enumerate(rows) if row[4] is not None and _is_racy(row)],
        tuple(graph.queries),
        marshal.dumps(tuple(job.key for job in graph.jobs)),
        # A graph with temporary outputs takes no partial build: a reached job may need one
        # made again, or be the last reader of one, whose maker the part would leave out.
        marshal.dumps(structure) if not graph.temp_jobs else b"",
    )


def _read_paths(job: Job, listed: Dict[str, List[str]]) -> List[str]:
    """The paths whose change reaches `job` in a partial build: its inputs, the files its
    depfile listed, and its dependencies' outputs where they are not inputs themselves (the
    files other jobs write into a directory input of the job)."""
    paths = job.inputs + listed[job.key] if job.key in listed else job.inputs
    if job.order_only:  # (reached, the job is checked again: its signature does not hold them)
        paths = paths + job.order_only
    if not job.deps:
        return paths
    named = set(paths)  # (a fan-in's 10k inputs: a list would make this quadratic)
    extra = [output for dep in job.deps for output in dep.outputs if output not in named]
    return paths + extra if extra else paths


_FINGERPRINT = operator.itemgetter(0, 1, 2, 3)
_HASHED_AT = operator.itemgetter(5)


def _is_racy(row: tuple) -> bool:
    return row[4] is not None and row[1] != -1 and row[5] - row[1] <= racy_window(row[1])


def _pack(
    paths_blob: bytes,
    fingerprints: array.array,
    digests: Sequence[str],
    hashed_at: array.array,
    racy: Sequence[int],
    queries: tuple,
    job_keys_blob: bytes,
    structure_blob: bytes,
) -> bytes:
    """The stamp's layout: the paths, their fingerprints as one packed int64 array (what
    every no-op reads: loaded in ~1 ms for 10k files), their digests and hash times decoded
    only when a fingerprint differs, the positions of racy files (hashed so soon after their
    last write that an equal fingerprint does not prove equal content, so the check re-reads
    them), the glob/foreach answers, and the job keys and the graph's structure as positions
    (each job's inputs and outputs), decoded only when some content changed, to find the jobs
    the change can reach without loading the graph. Sections stay separate blobs so that a
    re-stamp re-encodes only what changed."""
    return marshal.dumps(
        (
            paths_blob,
            fingerprints.tobytes(),
            # Digests as one text ("" for a directory), split in one call: decoding 20k
            # separate strings costs several times more.
            marshal.dumps(("\n".join(digests), hashed_at.tobytes())),
            tuple(racy),
            queries,
            job_keys_blob,
            structure_blob,
        )
    )


def _file(root: str, stamp_key: str) -> str:
    return os.path.join(root, STAMP_DIR, digest_strings([stamp_key]))


def save(store: Store, root: str, stamp_key: str, data: bytes) -> None:
    """Store a stamp: the file first, then its token in the store, so that a crash in
    between leaves a token that does not match (no stamp), never a stale stamp."""
    if store.connection is None or store.broken:
        return
    token = os.urandom(TOKEN_BYTES)
    path = _file(root, stamp_key)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError:
        return
    if replace_file(path, token, data):
        store.write_stamp(stamp_key, token)


def _load(store: Store, root: str, stamp_key: str) -> Optional[bytes]:
    token = store.stamp(stamp_key)
    if token is None or len(token) != TOKEN_BYTES:
        return None
    try:
        data = read_regular_file(_file(root, stamp_key))
    except OSError:
        return None
    if data[:TOKEN_BYTES] != token:
        return None
    return data[TOKEN_BYTES:]


def _stamp_tree(path: str, files: FileState, entries: Dict[str, tuple]) -> bool:
    """Add a directory tree's entries as the build's walk of it saw them (the state its digest,
    and so the records, describe): its files' digest-cache rows and its directories' stats.
    False if the build did not walk it, or the walk met a symlink or a special file, or a
    directory modified so shortly before it was listed that a later change in the same tick
    could leave its stat as it was."""
    walk = files.tree_as_read(path)
    if walk is None or not walk.plain:
        return False
    walked_at = walk.walked_at
    for member, fingerprint in ((path, walk.fingerprint), *walk.directories.items()):
        if walked_at - fingerprint[1] <= racy_window(fingerprint[1]):
            return False
        entries[member] = fingerprint + (None, walked_at)
    cache = files.cache
    for member in walk.files:
        row = cache.get(member)
        if row is None:
            return False
        entries[member] = row
    return True


class Check:
    """What a stamp says now. `noop`: nothing to do. Otherwise `unchanged` holds the paths
    whose content is known to be as it was when the stamp was taken (for the builder to skip
    checking jobs that touch only those), `rows` fresh digest-cache rows of files that were
    re-hashed because only their fingerprint changed, and `partial`, when it could be worked
    out, the jobs the changes can reach (see Partial)."""

    def __init__(self, job_keys_blob: bytes):
        self._job_keys_blob = job_keys_blob
        self._job_keys: Optional[Tuple[str, ...]] = None
        self.noop = False
        self.unchanged: Dict[str, str] = {}  # path -> its digest (as at the stamp)
        self.rows: Dict[str, FileRow] = {}
        self.restamp: Optional[bytes] = None
        self.partial: Optional[Partial] = None
        self._stamp: Optional[_Stamp] = None
        self._positions: Optional[Dict[str, int]] = None  # the stamp's, once asked

    def fingerprint(self, path: str) -> Optional[Fingerprint]:
        """The (size, mtime, inode, ctime) the check saw for `path`, a file it found unchanged
        or re-hashed (None if it did not look at it)."""
        row = self.rows.get(path)
        if row is not None:
            return tuple(row[:4])  # type: ignore[return-value]
        positions = self._positions
        if positions is None:
            if self._stamp is None:
                return None
            positions = self._positions = self._stamp.positions
        position = positions.get(path)
        if position is None:
            return None
        # Four items, not a slice made into a tuple: half the time, and a fan-in job asks
        # this of each of its 10k inputs after it ran (FileState.changed_since_read).
        fingerprints, at = self._stamp.fingerprints, 4 * position  # type: ignore[union-attr]
        return (fingerprints[at], fingerprints[at + 1], fingerprints[at + 2], fingerprints[at + 3])

    def made_here(self, path: str) -> bool:
        """Whether `path` is an output of one of the stamped jobs, as stamped (not a gone
        temporary output): after a no-op check, proof that the job making it is up to date.
        False when the stamp cannot tell (no structure: a graph with temporary outputs)."""
        stamp = self._stamp
        if stamp is None or not stamp.structure_blob:
            return False
        position = stamp.positions.get(path)
        if position is None or stamp.fingerprints[4 * position + 1] == -1:
            return False
        try:
            structure = marshal.loads(stamp.structure_blob)
        except (EOFError, ValueError, TypeError):
            return False
        return any(position in outputs for _, outputs in structure)

    @property
    def job_keys(self) -> Tuple[str, ...]:
        """The keys of the stamped jobs, in graph order (decoded on first use)."""
        if self._job_keys is None:
            self._job_keys = marshal.loads(self._job_keys_blob)
        return self._job_keys


class _Stamp:
    """A decoded stamp; the sections nobody needs stay encoded."""

    def __init__(self, data: bytes):
        (
            paths_blob,
            packed,
            self.digests_blob,
            self.racy,
            self.queries,
            self.job_keys_blob,
            self.structure_blob,
        ) = marshal.loads(data)
        self.paths_blob: bytes = paths_blob
        self.paths: Tuple[str, ...] = marshal.loads(paths_blob)
        self.fingerprints = array.array("q")
        self.fingerprints.frombytes(packed)
        if len(self.fingerprints) != 4 * len(self.paths):
            raise ValueError("inconsistent stamp")
        self._digests: Optional[List[str]] = None
        self._positions: Optional[Dict[str, int]] = None
        self.hashed_at = array.array("q")

    @property
    def digests(self) -> List[str]:
        """Each file's digest when stamped ("" for a directory)."""
        if self._digests is None:
            text, hashed_at = marshal.loads(self.digests_blob)
            digests = text.split("\n")
            self.hashed_at.frombytes(hashed_at)
            if len(digests) != len(self.paths) or len(self.hashed_at) != len(self.paths):
                raise ValueError("inconsistent stamp")
            self._digests = digests
        return self._digests

    @property
    def positions(self) -> Dict[str, int]:
        """Each stamped path's position (built on first use)."""
        if self._positions is None:
            self._positions = dict(zip(self.paths, range(len(self.paths))))
        return self._positions

    def patched(self, rows: Dict[str, FileRow]) -> bytes:
        """This stamp with the fingerprints and digests of `rows` (files hashed since)."""
        position = self.positions
        return self.patched_at(
            [(position[path], row) for path, row in rows.items() if path in position]
        )

    def patched_at(self, rows: List[Tuple[int, FileRow]]) -> bytes:
        """This stamp with new rows for the files at these positions."""
        fingerprints = array.array("q", self.fingerprints)
        digests = list(self.digests)
        hashed_at = array.array("q", self.hashed_at)
        racy = set(self.racy)
        for index, row in rows:
            at = 4 * index
            fingerprints[at], fingerprints[at + 1], fingerprints[at + 2], fingerprints[at + 3] = row[:4]
            digests[index] = row[4] or ""
            hashed_at[index] = row[5]
            if _is_racy(row):
                racy.add(index)
            else:
                racy.discard(index)
        return _pack(
            self.paths_blob,
            fingerprints,
            digests,
            hashed_at,
            sorted(racy),
            self.queries,
            self.job_keys_blob,
            self.structure_blob,
        )


class Partial:
    """The jobs a change can reach: those that read or write a changed file, and everything
    downstream of them (`indices`, positions in the stamp's job list, dependencies first).
    Every other job reads and writes only unchanged files and its records are as they were
    when the stamp was taken, so it is up to date without being loaded. After those jobs are
    built, `restamp` patches the old stamp with the files' new fingerprints."""

    def __init__(self, indices: List[int], stamp: _Stamp, job_keys: Tuple[str, ...]):
        self.indices = indices
        self.job_keys = job_keys
        self.queries = stamp.queries
        self._stamp = stamp

    def untouched_keys(self) -> List[str]:
        """Keys of the jobs outside the reach of the change: up to date."""
        reached = set(self.indices)
        return [key for index, key in enumerate(self.job_keys) if index not in reached]

    def restamp(self, rows: Dict[str, FileRow]) -> bytes:
        """The stamp after the reached jobs were built, given the digest-cache rows of every
        file read or hashed since the check (all other files are as the check saw them)."""
        return self._stamp.patched(rows)


def _reached(structure: tuple, changed: Set[int]) -> Optional[List[int]]:
    """Indices of the jobs that read or write a changed position, and of every job
    downstream of them; None if a change is in no job's own paths (a file inside a directory
    input or output: the full check handles those)."""
    reached: Set[int] = set()
    dirty = set(changed)
    isdisjoint = dirty.isdisjoint  # (bound once: the hot test, 2 per job and pass)
    seen: Set[int] = set()
    # Dependencies come first, so one pass usually reaches everything; another is needed when
    # a job reads an earlier job's output without depending on it (a file its depfile listed
    # that a rule it does not declare makes).
    grown = True
    while grown:
        grown = False
        for index, (inputs, outputs) in enumerate(structure):
            if (isdisjoint(inputs) and isdisjoint(outputs)) or index in reached:
                continue
            reached.add(index)
            grown = grown or not dirty.issuperset(outputs)
            dirty.update(outputs)
            seen.update(inputs)
            seen.update(outputs)
    if not changed <= seen:
        return None
    return sorted(reached)


class _Comparison:
    """The outcome of comparing a stamp with the files: the positions whose content changed
    (or cannot be proven unchanged), and fresh rows for the files re-read because their
    fingerprint moved or was racy. A file whose size is unchanged is re-hashed as it is met
    (small files) or after the scan (large ones, several at once), so a `touch` of every
    source costs one pass over the stamp plus one read of each touched file."""

    def __init__(self, stamp: _Stamp, directory: int):
        self.digests = stamp.digests  # raises ValueError/EOFError/TypeError if corrupt
        self.fingerprints = stamp.fingerprints
        self.paths = stamp.paths
        self.directory = directory
        self.changed: Set[int] = set()
        self.rehashed: List[Tuple[int, FileRow]] = []
        self.large: List[Tuple[int, str, os.stat_result]] = []
        self._trees: Optional[Set[str]] = None

    def moved(self, position: int, path: str, st: Optional[os.stat_result]) -> None:
        """`path`'s fingerprint differs from the stamp's (or it was racy): is its content
        the same? (A file in a stamped directory tree is changed all the same: the tree's
        digest holds its executable bit too, which a chmod changes with the ctime alone.)"""
        digest = self.digests[position]
        if (
            st is None
            or not digest
            or not stat_module.S_ISREG(st.st_mode)
            or st.st_size != self.fingerprints[4 * position]
            or self._in_tree(path)
        ):
            self.changed.add(position)
        elif st.st_size > SMALL_FILE:
            self.large.append((position, path, st))
        else:
            hashed_at = time.time_ns()  # before reading: errs towards re-hashing next time
            try:
                now = hash_file(path, st.st_size, self.directory)
            except OSError:
                self.changed.add(position)
                return
            self._rehashed(position, st, hashed_at, now)

    def _in_tree(self, path: str) -> bool:
        """Whether `path` lies in a directory the stamp holds as a tree (digest "")."""
        trees = self._trees
        if trees is None:  # ("" in a list: a C scan; most stamps hold no tree)
            digests = self.digests
            trees = self._trees = {self.paths[index] for index, digest in enumerate(digests) if not digest} if "" in digests else set()
        return bool(trees) and in_any_of(path, trees)

    def finish(self) -> None:
        """Hash the large files set aside (threads read them at once)."""
        large, self.large = self.large, []
        hashed = hash_files([(path, st.st_size) for _, path, st in large], self.directory)
        for (position, _, st), (hashed_at, now) in zip(large, hashed):
            if now is None:
                self.changed.add(position)
            else:
                self._rehashed(position, st, hashed_at, now)

    def _rehashed(self, position: int, st: os.stat_result, hashed_at: int, now: str) -> None:
        row = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, now, hashed_at)
        self.rehashed.append((position, row))  # type: ignore[arg-type]
        if now != self.digests[position]:
            self.changed.add(position)


def _compare(directory: int, stamp: _Stamp) -> Optional[_Comparison]:
    """Compare every stamped file with the file now, relative to the project directory open
    as `directory` (stamped paths are relative to it unless absolute); None if nothing
    differs and nothing was racy: the exact no-op. The hot loop of every no-op build: one
    stat per file (relative to the open directory: no path joining, a shorter lookup in the
    kernel), and the rest only for files whose fingerprint moved."""
    paths, fingerprints = stamp.paths, stamp.fingerprints
    stat = os.stat
    comparison: Optional[_Comparison] = None
    index = 0
    for path in paths:
        try:
            st: Optional[os.stat_result] = stat(path, dir_fd=directory)
        except OSError as exc:
            st = None
            if fingerprints[index + 1] == -1 and isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                index += 4  # a temporary output, still gone
                continue
        if (
            st is None
            or st.st_mtime_ns != fingerprints[index + 1]
            or st.st_ctime_ns != fingerprints[index + 3]
            or st.st_ino != fingerprints[index + 2]
            or st.st_size != fingerprints[index]
        ):
            if comparison is None:
                comparison = _Comparison(stamp, directory)
            comparison.moved(index >> 2, path, st)
        index += 4
    if stamp.racy:  # an equal fingerprint proves nothing for these: re-read them
        if comparison is None:
            comparison = _Comparison(stamp, directory)
        seen = comparison.changed.union(position for position, _ in comparison.rehashed)
        seen.update(position for position, _, _ in comparison.large)
        for position in stamp.racy:
            if position not in seen:
                path = paths[position]
                try:
                    st = stat(path, dir_fd=directory)
                except OSError:
                    st = None
                comparison.moved(position, path, st)
    if comparison is not None:
        comparison.finish()
    return comparison


def check(store: Store, root: str, stamp_key: str) -> Optional[Check]:
    """Compare the stamp for `stamp_key` with the files now; None if there is no usable stamp
    (missing, unreadable, or a glob/foreach scan now answers differently)."""
    data = _load(store, root, stamp_key)
    if data is None:
        return None
    try:
        stamp = _Stamp(data)
    except (EOFError, ValueError, TypeError):
        return None
    if stamp.queries:
        from . import graphcache

        if not graphcache.still_valid(root, stamp.queries):
            return None
    result = Check(stamp.job_keys_blob)
    try:
        directory = os.open(root, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # the project directory cannot be opened: no proof either way
        return None
    try:
        return _check(stamp, result, directory)
    finally:
        os.close(directory)


def _check(stamp: _Stamp, result: Check, directory: int) -> Optional[Check]:
    # Files whose fingerprint changed but whose size did not are re-hashed by the comparison:
    # the same content means nothing changed for the jobs (touch, `git checkout` back and
    # forth, identical rewrites).
    result._stamp = stamp
    try:
        comparison = _compare(directory, stamp)
        if comparison is None:
            result.noop = True
            return result
        digests = stamp.digests
    except (EOFError, ValueError, TypeError):  # corrupt digests: no proof either way
        return None
    paths = stamp.paths
    changed, rehashed = comparison.changed, comparison.rehashed
    if not changed:
        result.noop = True
        # Refresh the stamp with the new fingerprints (files still racy are flagged again).
        result.restamp = stamp.patched_at(rehashed)
        return result
    result.rows = {paths[position]: row for position, row in rehashed}
    unchanged = result.unchanged = dict(zip(paths, digests))
    for position in changed:
        del unchanged[paths[position]]
    mtimes = stamp.fingerprints[1::4]
    absent = -1 in mtimes
    if absent:
        # Gone temporary outputs are not files with a digest: their jobs are checked, which
        # tells their readers the recorded digest (Scanner.virtual), or makes them again.
        for position, mtime in enumerate(mtimes):
            if mtime == -1:
                unchanged.pop(paths[position], None)
    if "" in digests:  # directories: checked as trees, never "unchanged" as a whole
        directories: Dict[str, int] = {}
        for position, digest in enumerate(digests):
            if not digest:
                unchanged.pop(paths[position], None)
                directories[paths[position]] = position
        # A file changed inside a stamped tree changes the directories around it: the jobs
        # that write or read those are reached too (the file may also be a job's own path,
        # as an input inside a directory output, which alone would reach only its reader).
        for position in list(changed):
            inner, outer = paths[position], os.path.dirname(paths[position])
            while outer and outer != inner:
                if outer in directories:
                    changed.add(directories[outer])
                inner, outer = outer, os.path.dirname(outer)
    if not stamp.structure_blob:  # (see make: temporary outputs)
        return result
    try:
        structure = marshal.loads(stamp.structure_blob)
        job_keys = result.job_keys
    except (EOFError, ValueError, TypeError):
        return result
    if len(structure) == len(job_keys) and not absent:  # (a reached reader may need its temp made)
        reached = _reached(structure, changed)
        if reached is not None and all(
            digests[position]
            for index in reached
            for positions in structure[index]
            for position in positions
        ):  # directories are stamped as trees: jobs touching them take the full check
            result.partial = Partial(reached, stamp, job_keys)
    return result


__all__: Tuple[str, ...] = ("key", "make", "save", "check", "Check", "Partial")

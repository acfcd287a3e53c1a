"""The no-op fast path: a stamp of the fingerprint of every file the targets' jobs read or
write, taken when all of them were verified up to date.

If the Weavefile bytes, every recorded glob/foreach answer, every file fingerprint (stat) and
every record are unchanged since the stamp, every verdict is unchanged too, so the build is a
no-op without loading the graph, the records or computing a single signature. Any record change
deletes all stamps in the same transaction (store.commit), and a file that was racy at stamp
time is re-read by the check, so a stamp can only be stale in ways that make the check fail.
"""

from __future__ import annotations

import array
import marshal
import os
import stat as stat_module
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Set, Tuple

from ._version import __version__
from .filestate import FileState, racy_window
from .hashing import hash_file, walk_tree
from .store import FileRow, Store

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph


# Bumped whenever the stamp's layout changes: a stamp of another layout is never read.
FORMAT = "stamp-3"


def key(weavefile_digest: str, targets: Sequence[str]) -> str:
    return "\0".join((FORMAT, __version__, weavefile_digest) + tuple(targets))


def make(graph: Graph, files: FileState) -> Optional[bytes]:
    """The stamp of a graph whose jobs were all just verified up to date, or None when it
    cannot be stamped (command-only jobs, unhashed files, directories modified just now).

    A directory (a directory output, or an input that is a directory) is stamped as the
    fingerprints of every file in its tree plus the (mtime, inode, ctime) of every directory in
    it: adding, removing or renaming an entry changes its directory's mtime and ctime."""
    entries: Dict[str, tuple] = {}
    cache = files.cache
    now = time.time_ns()
    for job in graph.jobs:
        if not job.outputs:
            return None
        for paths in (job.inputs, job.outputs):
            for path in paths:
                if path in entries:
                    continue
                row = cache.get(path)
                if row is None:
                    if not _stamp_tree(path, files, entries, now):
                        return None
                    continue
                entries[path] = row
    position = {path: index for index, path in enumerate(entries)}
    structure = marshal.dumps(
        tuple(
            (tuple([position[p] for p in job.inputs]), tuple([position[p] for p in job.outputs]))
            for job in graph.jobs
        )
    )
    return _encode(entries, tuple(graph.queries), tuple(job.key for job in graph.jobs), structure)


def _is_racy(row: tuple) -> bool:
    return row[4] is not None and row[5] - row[1] <= racy_window(row[1])


def _encode(entries: Dict[str, tuple], queries: tuple, job_keys: tuple, structure: bytes) -> bytes:
    """Fingerprints as one packed int64 array (what every no-op reads, loaded in ~1 ms for
    10k files), digests in a nested blob decoded only when a fingerprint differs, the
    positions of racy files (hashed so soon after their last write that an equal fingerprint
    does not prove equal content, so the check re-reads them), and the graph's structure as
    positions (each job's inputs and outputs), decoded only when some content changed, to
    find the jobs the change can reach without loading the graph."""
    fingerprints = array.array("q")
    racy = []
    for position, row in enumerate(entries.values()):
        fingerprints.extend(row[:4])
        if _is_racy(row):
            racy.append(position)
    digests = marshal.dumps(tuple((row[4], row[5]) for row in entries.values()))
    return marshal.dumps(
        (tuple(entries), fingerprints.tobytes(), digests, tuple(racy), queries, job_keys, structure)
    )


def _stamp_tree(path: str, files: FileState, entries: Dict[str, tuple], now: int) -> bool:
    """Add a directory tree's entries; False if `path` is no directory or anything is racy."""
    full = files.full_path(path)
    try:
        st = os.stat(full)
    except OSError:
        return False
    if not stat_module.S_ISDIR(st.st_mode) or now - st.st_mtime_ns <= racy_window(st.st_mtime_ns):
        return False
    entries[path] = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, None, now)
    try:
        tree = walk_tree(full)
    except OSError:
        return False
    for relative, kind in tree:
        member = f"{path}/{relative}"
        if kind == "file":
            row = files.cache.get(member)
            if row is None:
                return False
            entries[member] = row
        elif kind == "dir":
            try:
                sub = os.stat(files.full_path(member))
            except OSError:
                return False
            if now - sub.st_mtime_ns <= racy_window(sub.st_mtime_ns):
                return False
            entries[member] = (sub.st_size, sub.st_mtime_ns, sub.st_ino, sub.st_ctime_ns, None, now)
        else:
            return False  # symlinks and special files: not stamped, checked the full way
    return True


class Check:
    """What a stamp says now. `noop`: nothing to do. Otherwise `unchanged` holds the paths
    whose content is known to be as it was when the stamp was taken (for the builder to skip
    checking jobs that touch only those), `rows` fresh digest-cache rows of files that were
    re-hashed because only their fingerprint changed, and `partial`, when it could be worked
    out, the jobs the changes can reach (see Partial)."""

    def __init__(self, job_keys: List[str]):
        self.job_keys = job_keys
        self.noop = False
        self.unchanged: Dict[str, str] = {}  # path -> its digest (as at the stamp)
        self.rows: Dict[str, FileRow] = {}
        self.restamp: Optional[bytes] = None
        self.partial: Optional[Partial] = None


class Partial:
    """The jobs a change can reach: those that read or write a changed file, and everything
    downstream of them (`indices`, positions in the stamp's job list, dependencies first).
    Every other job reads and writes only unchanged files and its records are as they were
    when the stamp was taken, so it is up to date without being loaded. After those jobs are
    built, `restamp` patches the old stamp with the files' new fingerprints."""

    def __init__(
        self,
        indices: List[int],
        paths: Tuple[str, ...],
        fingerprints: array.array,
        digests: List[Tuple[Optional[str], int]],
        racy: Sequence[int],
        queries: tuple,
        job_keys: Tuple[str, ...],
        structure_blob: bytes,
    ):
        self.indices = indices
        self.paths = paths
        self.fingerprints = fingerprints
        self.digests = digests
        self.racy = racy
        self.queries = queries
        self.job_keys = job_keys
        self.structure_blob = structure_blob

    def untouched_keys(self) -> List[str]:
        """Keys of the jobs outside the reach of the change: up to date."""
        reached = set(self.indices)
        return [key for index, key in enumerate(self.job_keys) if index not in reached]

    def restamp(self, rows: Dict[str, FileRow]) -> bytes:
        """The stamp after the reached jobs were built, given the digest-cache rows of every
        file read or hashed since the check (all other files are as the check saw them)."""
        fingerprints = array.array("q", self.fingerprints)
        digests = list(self.digests)
        racy = set(self.racy)
        position = {path: index for index, path in enumerate(self.paths)}
        for path, row in rows.items():
            index = position.get(path)
            if index is None:
                continue
            fingerprints[4 * index : 4 * index + 4] = array.array("q", row[:4])
            digests[index] = (row[4], row[5])
            racy.discard(index)
            if _is_racy(row):
                racy.add(index)
        return marshal.dumps(
            (
                self.paths,
                fingerprints.tobytes(),
                marshal.dumps(tuple(digests)),
                tuple(sorted(racy)),
                self.queries,
                self.job_keys,
                self.structure_blob,
            )
        )


def _reached(structure: tuple, changed: Set[int]) -> Optional[List[int]]:
    """Indices of the jobs that read or write a changed position, and of every job
    downstream of them; None if a change is in no job's own paths (a file inside a directory
    input or output: the full check handles those)."""
    reached: List[int] = []
    dirty = set(changed)
    seen: Set[int] = set()
    for index, (inputs, outputs) in enumerate(structure):  # dependencies come first
        if not dirty.isdisjoint(inputs) or not dirty.isdisjoint(outputs):
            reached.append(index)
            dirty.update(outputs)
            seen.update(inputs)
            seen.update(outputs)
    if not changed <= seen:
        return None
    return reached


def check(store: Store, root: str, stamp_key: str) -> Optional[Check]:
    """Compare the stamp for `stamp_key` with the files now; None if there is no usable stamp
    (missing, unreadable, or a glob/foreach scan now answers differently)."""
    blob = store.stamp(stamp_key)
    if blob is None:
        return None
    try:
        paths, packed, digests_blob, racy_positions, queries, job_keys, structure_blob = marshal.loads(blob)
        fingerprints = array.array("q")
        fingerprints.frombytes(packed)
        if len(fingerprints) != 4 * len(paths):
            return None
    except (EOFError, ValueError, TypeError):
        return None
    if queries:
        from . import graphcache

        if not graphcache.still_valid(root, queries):
            return None
    result = Check(list(job_keys))
    # First pass, the hot path of every no-op build: one stat per file, nothing else.
    prefix = os.path.join(root, "")
    stat = os.stat
    differs: Dict[int, Tuple[str, Optional[os.stat_result]]] = {}
    index = 0
    for path in paths:
        full = path if path[:1] == os.sep else prefix + path
        try:
            st = stat(full)
        except OSError:
            differs[index >> 2] = (full, None)  # missing: changed
            index += 4
            continue
        if (
            st.st_mtime_ns != fingerprints[index + 1]
            or st.st_ctime_ns != fingerprints[index + 3]
            or st.st_ino != fingerprints[index + 2]
            or st.st_size != fingerprints[index]
        ):
            differs[index >> 2] = (full, st)
        index += 4
    for position in racy_positions:  # same fingerprint proves nothing: verify the content
        path = paths[position]
        full = path if path[:1] == os.sep else prefix + path
        try:
            differs[position] = (full, stat(full))
        except OSError:
            differs[position] = (full, None)
    if not differs:
        result.noop = True
        return result
    # Files whose fingerprint changed but whose size did not: re-hash; the same content means
    # nothing changed for the jobs (touch, `git checkout` back and forth, identical rewrites).
    try:
        digests = marshal.loads(digests_blob)
        if len(digests) != len(paths):
            return None
    except (EOFError, ValueError, TypeError):
        return None
    changed: Set[int] = set()
    for position, (full, st) in differs.items():
        expected = digests[position][0]
        if (
            st is None
            or expected is None
            or not stat_module.S_ISREG(st.st_mode)
            or st.st_size != fingerprints[4 * position]
        ):
            changed.add(position)
            continue
        hashed_at = time.time_ns()
        try:
            digest = hash_file(full, st.st_size)
        except OSError:
            changed.add(position)
            continue
        fingerprint = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        result.rows[paths[position]] = fingerprint + (digest, hashed_at)  # type: ignore[assignment]
        if digest != expected:
            changed.add(position)
    unchanged = result.unchanged
    for position, path in enumerate(paths):
        digest = digests[position][0]
        if digest is not None and position not in changed:
            unchanged[path] = digest
    if not changed:
        result.noop = True
        # Refresh the stamp with the new fingerprints (files still racy are flagged again).
        partial = Partial([], paths, fingerprints, digests, racy_positions, queries, job_keys, structure_blob)
        result.restamp = partial.restamp(result.rows)
        return result
    try:
        structure = marshal.loads(structure_blob)
    except (EOFError, ValueError, TypeError):
        return result
    if len(structure) == len(job_keys):
        reached = _reached(structure, changed)
        if reached is not None and all(
            digests[position][0] is not None
            for index in reached
            for positions in structure[index]
            for position in positions
        ):  # directories are stamped as trees: jobs touching them take the full check
            result.partial = Partial(
                reached, paths, fingerprints, digests, racy_positions, queries, job_keys, structure_blob
            )
    return result


__all__: Tuple[str, ...] = ("key", "make", "check", "Check", "Partial")

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
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from ._version import __version__
from .filestate import FileState, racy_window
from .hashing import hash_file, walk_tree
from .store import FileRow, Store

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph


def key(weavefile_digest: str, targets: Sequence[str]) -> str:
    return "\0".join((__version__, weavefile_digest) + tuple(targets))


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
    return _encode(entries, tuple(graph.queries), tuple(job.key for job in graph.jobs))


def _encode(entries: Dict[str, tuple], queries: tuple, job_keys: tuple) -> bytes:
    """Fingerprints as one packed int64 array (what every no-op reads, loaded in ~1 ms for
    10k files), digests in a nested blob decoded only when a fingerprint differs, and the
    positions of racy files: hashed so soon after their last write that an equal fingerprint
    does not prove equal content, so the check re-reads them."""
    fingerprints = array.array("q")
    racy = []
    for position, row in enumerate(entries.values()):
        fingerprints.extend(row[:4])
        if row[4] is not None and row[5] - row[1] <= racy_window(row[1]):
            racy.append(position)
    digests = marshal.dumps(tuple((row[4], row[5]) for row in entries.values()))
    return marshal.dumps(
        (tuple(entries), fingerprints.tobytes(), digests, tuple(racy), queries, job_keys)
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
    checking jobs that touch only those), and `rows` fresh digest-cache rows of files that were
    re-hashed because only their fingerprint changed."""

    def __init__(self, job_keys: List[str]):
        self.job_keys = job_keys
        self.noop = False
        self.unchanged: Dict[str, str] = {}  # path -> its digest (as at the stamp)
        self.rows: Dict[str, FileRow] = {}
        self.restamp: Optional[bytes] = None


def check(store: Store, root: str, stamp_key: str) -> Optional[Check]:
    """Compare the stamp for `stamp_key` with the files now; None if there is no usable stamp
    (missing, unreadable, or a glob/foreach scan now answers differently)."""
    blob = store.stamp(stamp_key)
    if blob is None:
        return None
    try:
        paths, packed, digests_blob, racy_positions, queries, job_keys = marshal.loads(blob)
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
    differs: List[Tuple[int, str, str, Optional[os.stat_result]]] = []
    index = 0
    for path in paths:
        full = path if path[:1] == os.sep else prefix + path
        try:
            st = stat(full)
        except OSError:
            differs.append((index, path, full, None))  # missing: changed
            index += 4
            continue
        if (
            st.st_mtime_ns != fingerprints[index + 1]
            or st.st_ctime_ns != fingerprints[index + 3]
            or st.st_ino != fingerprints[index + 2]
            or st.st_size != fingerprints[index]
        ):
            differs.append((index, path, full, st))
        index += 4
    for position in racy_positions:  # same fingerprint proves nothing: verify the content
        path = paths[position]
        full = path if path[:1] == os.sep else prefix + path
        try:
            differs.append((4 * position, path, full, stat(full)))
        except OSError:
            differs.append((4 * position, path, full, None))
    if not differs:
        result.noop = True
        return result
    # Files whose fingerprint changed but whose size did not: re-hash; the same content means
    # nothing changed for the jobs (touch, `git checkout` back and forth, identical rewrites).
    try:
        digests = marshal.loads(digests_blob)
    except (EOFError, ValueError, TypeError):
        return None
    entries = {
        path: tuple(fingerprints[4 * i : 4 * i + 4]) + tuple(digests[i]) for i, path in enumerate(paths)
    }
    differs = list({entry[1]: entry for entry in differs}.values())  # a racy file may differ too
    changed = {path for _, path, _, _ in differs}
    unchanged = result.unchanged
    for path, expected in entries.items():
        if expected[4] is not None and path not in changed:
            unchanged[path] = expected[4]
    settled = 0
    for _, path, full, st in differs:
        expected = entries[path]
        if st is None or expected[4] is None or not stat_module.S_ISREG(st.st_mode):
            continue
        if st.st_size != expected[0]:
            continue
        hashed_at = time.time_ns()
        try:
            digest = hash_file(full, st.st_size)
        except OSError:
            continue
        fingerprint = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        result.rows[path] = fingerprint + (digest, hashed_at)  # type: ignore[assignment]
        if digest == expected[4]:
            unchanged[path] = digest
            settled += 1
    if settled == len(differs):
        result.noop = True
        # Refresh the stamp with the new fingerprints (files still racy are flagged again).
        fresh = dict(entries)
        fresh.update(result.rows)
        result.restamp = _encode(fresh, tuple(queries), tuple(job_keys))
    return result


__all__: Tuple[str, ...] = ("key", "make", "check", "Check")

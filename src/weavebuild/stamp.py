"""The no-op fast path: a stamp of the fingerprint of every file the targets' jobs read or
write, taken when all of them were verified up to date.

If the Weavefile bytes, every recorded glob/foreach answer, every file fingerprint (stat) and
every record are unchanged since the stamp, every verdict is unchanged too, so the build is a
no-op without loading the graph, the records or computing a single signature. Any record change
deletes all stamps in the same transaction (store.commit), and a file that was racy at stamp
time is never stamped, so a stamp can only be stale in ways that make the check fail.
"""

from __future__ import annotations

import marshal
import os
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from . import graphcache
from ._version import __version__
from .filestate import FileState, racy_window
from .store import Store

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph


def key(weavefile_digest: str, targets: Sequence[str]) -> str:
    return "\0".join((__version__, weavefile_digest) + tuple(targets))


def make(graph: Graph, files: FileState) -> Optional[bytes]:
    """The stamp of a graph whose jobs were all just verified up to date, or None when it
    cannot be stamped (directory inputs/outputs, command-only jobs, racy or unhashed files)."""
    fingerprints = {}
    cache = files.cache
    for job in graph.jobs:
        if not job.outputs or any(job.dir_outputs):
            return None
        for path in job.inputs:
            row = cache.get(path)
            if row is None or row[5] - row[1] <= racy_window(row[1]):
                return None
            fingerprints[path] = tuple(row[:4])
        for path in job.outputs:
            row = cache.get(path)
            if row is None or row[5] - row[1] <= racy_window(row[1]):
                return None
            fingerprints[path] = tuple(row[:4])
    data = (fingerprints, tuple(graph.queries), tuple(job.key for job in graph.jobs))
    return marshal.dumps(data)


def check(store: Store, root: str, stamp_key: str) -> Optional[List[str]]:
    """The job keys if the stamp for `stamp_key` still holds (nothing to do), else None."""
    blob = store.stamp(stamp_key)
    if blob is None:
        return None
    try:
        fingerprints, queries, job_keys = marshal.loads(blob)
    except (EOFError, ValueError, TypeError):
        return None
    if not graphcache.still_valid(root, queries):
        return None
    prefix = os.path.join(root, "")
    stat = os.stat
    try:
        for path, expected in fingerprints.items():
            st = stat(path if path[:1] == os.sep else prefix + path)
            if (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) != expected:
                return None
    except OSError:
        return None
    return list(job_keys)


__all__: Tuple[str, ...] = ("key", "make", "check")

"""Content digests: xxh3-128 of files (streamed) and of directory trees, and of recipes.

Owns the digest format (32 hex characters). Reads files; writes nothing; keeps no cache (the
fingerprint cache that decides *whether* to hash lives in `filestate`).
"""

from __future__ import annotations

import errno
import marshal
import os
import stat as stat_module
import time

import xxhash

from .paths import NOISE_DIRS, NOISE_PREFIXES, NOISE_SUFFIXES, real_within

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable, Iterable, List, Optional, Sequence, Set, Tuple

    # (rel, kind, stat): stat is os.stat() of a file (through a link to it) or a directory, None
    # for a link kept as a link and for special files.
    TreeEntry = Tuple[str, str, Optional[os.stat_result]]

CHUNK = 1 << 20  # 1 MiB reads: fast from the page cache without large allocations
SMALL_FILE = 64 * 1024  # up to this size a file is read with one read()
# From this many bytes in two files or more, hash_files reads with several threads (reads
# and xxhash release the GIL): large inputs hash in parallel. Many small files gain nothing
# measurable end to end (the per-file Python work holds the GIL), so they are read in turn.
PARALLEL_BYTES = 32 << 20
MAX_HASH_THREADS = 4

_xxh128 = xxhash.xxh3_128
_hexdigest = xxhash.xxh3_128_hexdigest
_PLAIN_READ = os.O_RDONLY | os.O_CLOEXEC
# O_NOATIME (Linux): reading a file to hash it must not write its inode. With relatime, the
# first read after a change updates the access time; on ext4 that is a journalled inode write
# per file (~1 µs each, and 10k dirty inodes to write back after a touch-all check).
_read_flags = _PLAIN_READ | getattr(os, "O_NOATIME", 0)


class Stopped(Exception):
    """Hashing was given up because the build is stopping (see stop_hashing_when)."""


# Asked between the chunks of a large file: True once the build is being stopped (Ctrl-C), so
# that hashing a 30 GB output does not hold a stop up for half a minute. Set by the builder
# while it runs; a signal handler can only set a flag, which the read loop must look at.
_stop_requested: Optional[Callable[[], bool]] = None
CHUNKS_BETWEEN_CHECKS = 16


def stop_hashing_when(check: Optional[Callable[[], bool]]) -> Optional[Callable[[], bool]]:
    """Make the hashing of large files raise Stopped once `check()` is true (None: never);
    returns the check it replaces."""
    global _stop_requested
    previous, _stop_requested = _stop_requested, check
    return previous


def _open_to_read(path: str, dir_fd: Optional[int] = None) -> int:
    """A descriptor for reading `path` (relative to `dir_fd` if given) without updating its
    access time where the system allows: O_NOATIME is refused (EPERM) for files of another
    owner, and from the first refusal on this process opens files plainly."""
    global _read_flags
    try:
        return os.open(path, _read_flags, dir_fd=dir_fd)
    except PermissionError as exc:
        if exc.errno != errno.EPERM or _read_flags == _PLAIN_READ:
            raise  # EACCES: not readable at all
        _read_flags = _PLAIN_READ
        return os.open(path, _PLAIN_READ, dir_fd=dir_fd)


def digest_bytes(data: bytes) -> str:
    return _hexdigest(data)


def digest_strings(parts: Iterable[str]) -> str:
    """Digest of a sequence of strings, unambiguous (each part is NUL-terminated). Joined and
    encoded at once: a directory tree's digest has three parts per file."""
    parts = parts if isinstance(parts, (list, tuple)) else list(parts)
    if not parts:
        return _hexdigest(b"")
    return _hexdigest(("\0".join(parts) + "\0").encode("utf-8", "surrogateescape"))


def hash_file(path: str, size_hint: int = -1, dir_fd: Optional[int] = None) -> str:
    """xxh3-128 of a file's bytes, read in 1 MiB chunks (xxhash releases the GIL). A relative
    `path` is taken from the directory open as `dir_fd`, if given."""
    if 0 <= size_hint <= SMALL_FILE:
        # The common case of build outputs: one read. A read of a regular file that returns
        # less than asked for has reached the end; a file that grew is streamed on.
        fd = _open_to_read(path, dir_fd)
        try:
            data = os.read(fd, size_hint + 1)
            if len(data) <= size_hint:
                return _hexdigest(data)
        finally:
            os.close(fd)
    opener = None if dir_fd is None else (lambda name, flags: os.open(name, flags, dir_fd=dir_fd))
    with open(path, "rb", buffering=0, opener=opener) as handle:
        hasher = _xxh128()
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        readinto = handle.readinto
        update = hasher.update
        stop = _stop_requested
        chunks = 0
        while True:
            count = readinto(buffer)
            if not count:
                break
            update(view[:count])
            chunks += 1
            if stop is not None and chunks % CHUNKS_BETWEEN_CHECKS == 0 and stop():
                raise Stopped(path)
        return hasher.hexdigest()


def hash_files(files: Sequence[Tuple[str, int]], dir_fd: Optional[int] = None) -> List[Tuple[int, Optional[str]]]:
    """For each (path, size): (time.time_ns() taken before reading it, its digest, or None if it
    cannot be read), in order; relative paths from `dir_fd` if given. Large files are read by
    a few threads at once."""
    results: List[Tuple[int, Optional[str]]] = [(0, None)] * len(files)
    stopped: List[Stopped] = []

    def work(first: int, step: int) -> None:
        time_ns = time.time_ns
        for index in range(first, len(files), step):
            path, size = files[index]
            hashed_at = time_ns()  # before reading: errs towards re-hashing next time
            try:
                results[index] = (hashed_at, hash_file(path, size, dir_fd))
            except OSError:
                results[index] = (hashed_at, None)
            except Stopped as exc:  # raised in the calling thread once all are back
                stopped.append(exc)
                return

    parallel = len(files) > 1 and sum(size for _, size in files) >= PARALLEL_BYTES
    workers = min(MAX_HASH_THREADS, os.cpu_count() or 1, len(files)) if parallel else 1
    if workers <= 1:
        work(0, 1)
    else:
        import threading

        threads = [threading.Thread(target=work, args=(first, workers), daemon=True) for first in range(1, workers)]
        for thread in threads:
            thread.start()
        work(0, workers)
        for thread in threads:
            thread.join()
    if stopped:
        raise stopped[0]
    return results


def symlink_digest(target: str) -> str:
    return digest_strings(("symlink", target))


def walk_tree(root: str, followed: Optional[List[str]] = None) -> List[Tuple[str, str]]:
    """(relative path, kind) of everything under directory `root` but noise (paths.NOISE_DIRS:
    `.git/`, `__pycache__/`, editor swap files...), sorted; kind is file/dir/link/special.
    Names and kinds only: scan_tree also stats every file.

    A symlink is followed, as the jobs reading the tree follow it: one to a file is a "file"
    (its content counts, so an edit where it points is seen), one to a directory outside the
    tree a "dir" walked in turn (a data folder of links into a shared store). It stays a
    "link", known by its target path, when it is broken, points into the tree itself (whose
    content is walked where it lies), to a directory holding the tree or already walked (no
    loops), or to something else (a FIFO, a device). `followed`, if given, receives the
    relative paths of the links followed."""
    return [(rel, kind) for rel, kind, _ in _walk(root, followed, False)]


def scan_tree(root: str) -> List[TreeEntry]:
    """walk_tree's entries with the stat of each file and directory, taken in the same pass
    (one system call per entry: the stat of a directory comes from its parent's listing, so it
    is taken before the directory itself is listed)."""
    return _walk(root, None, True)


def _walk(root: str, followed: Optional[List[str]], with_stats: bool) -> List[TreeEntry]:
    entries: List[TreeEntry] = []
    stack = [""]
    root_real: Optional[str] = None  # computed at the first link to a directory
    walked: Set[Tuple[int, int]] = set()  # (device, inode) of the directories linked to and walked
    append = entries.append
    noise_dirs, noise_suffixes, noise_prefixes = NOISE_DIRS, NOISE_SUFFIXES, NOISE_PREFIXES
    while stack:
        relative = stack.pop()
        directory = os.path.join(root, relative) if relative else root
        base = relative + "/" if relative else ""
        with os.scandir(directory) as iterator:
            for entry in iterator:
                name = entry.name
                # paths.is_noise_name, inline: this loop runs once per file of a dataset
                if name in noise_dirs or name.endswith(noise_suffixes) or name.startswith(noise_prefixes):
                    continue
                # The common case first, from the listing's file type alone (no system call)
                if entry.is_file(follow_symlinks=False):
                    append((base + name, "file", entry.stat() if with_stats else None))
                elif entry.is_dir(follow_symlinks=False):
                    rel = base + name
                    append((rel, "dir", entry.stat() if with_stats else None))
                    stack.append(rel)
                elif entry.is_symlink():
                    rel = base + name
                    try:
                        target = entry.stat()  # follows the link
                    except OSError:  # broken, a loop of links, or not ours to read
                        append((rel, "link", None))
                        continue
                    if stat_module.S_ISREG(target.st_mode):
                        append((rel, "file", target))
                        if followed is not None:
                            followed.append(rel)
                        continue
                    if stat_module.S_ISDIR(target.st_mode):
                        if root_real is None:
                            root_real = os.path.realpath(root)
                            try:
                                top = os.stat(root)
                                walked.add((top.st_dev, top.st_ino))
                            except OSError:
                                pass
                        real = os.path.realpath(entry.path)
                        key = (target.st_dev, target.st_ino)
                        if key not in walked and not real_within(real, root_real) and not real_within(root_real, real):
                            walked.add(key)
                            append((rel, "dir", target))
                            stack.append(rel)
                            if followed is not None:
                                followed.append(rel)
                            continue
                    append((rel, "link", None))
                else:
                    append((base + name, "special", None))  # socket, FIFO, device: never opened
    entries.sort(key=_first)
    return entries


def _first(entry: TreeEntry) -> str:
    return entry[0]


def hash_tree(
    root: str,
    file_digest: Optional[Callable[[str, os.stat_result], str]] = None,
    looks: Optional[List[tuple]] = None,
    entries: Optional[List[TreeEntry]] = None,
) -> str:
    """Digest of a directory tree: names, kinds, file contents, and the targets of the symlinks
    walk_tree does not follow.

    `file_digest(relative path, stat)` hashes one file; pass a cached one to avoid re-reading
    unchanged files. Permissions and timestamps are not part of the digest, only the executable
    bit. `looks`, if given, receives the entries of `tree_looks`, as the tree looked just
    before each file was read (a change during the walk then shows as a difference later,
    never as none). One stat per entry, taken by the walk (or `entries`, scan_tree's of `root`
    taken just before)."""
    parts: List[str] = ["tree"]
    join = os.path.join
    for rel, kind, st in scan_tree(root) if entries is None else entries:
        target = None
        if st is not None and kind == "file":
            digest = file_digest(rel, st) if file_digest is not None else hash_file(join(root, rel), st.st_size)
            parts.extend((rel, "filex" if st.st_mode & stat_module.S_IXUSR else "file-", digest))
        elif kind == "link":
            target = os.readlink(join(root, rel))
            parts.extend((rel, "link", target))
        else:
            parts.extend((rel, kind, ""))
        if looks is not None:
            looks.append(_look(rel, kind, st, target))
    return digest_strings(parts)


def _look(rel: str, kind: str, st: Optional[os.stat_result], target: Optional[str]) -> tuple:
    """One entry of a tree as tree_looks sees it."""
    if kind == "file" and st is not None:
        return (rel, kind, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode)
    return (rel, kind, target)


def looks_digest(looks: List[tuple]) -> str:
    """The digest of hash_tree's `looks` (what tree_looks gives). Marshal format 2: the later
    ones mark objects referenced more than once, so equal lists could encode differently."""
    return _hexdigest(marshal.dumps(looks, 2))


def tree_looks(root: str) -> str:
    """How a directory tree looks by its metadata, as a digest: each entry's name and kind,
    each file's (size, mtime, inode, ctime, mode), each symlink's target. Any write, replacement,
    addition or removal under it changes it, without reading a file (hash_tree's `looks`)."""
    join = os.path.join
    return looks_digest(
        [_look(rel, kind, st, os.readlink(join(root, rel)) if kind == "link" else None) for rel, kind, st in scan_tree(root)]
    )

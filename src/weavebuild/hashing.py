"""Content digests: xxh3-128 of files (streamed) and of directory trees, and of recipes.

Owns the digest format (32 hex characters). Reads files; writes nothing; keeps no cache (the
fingerprint cache that decides *whether* to hash lives in `filestate`).
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
import time
from typing import Callable, Iterable, List, Optional, Sequence, Set, Tuple

import xxhash

from .paths import is_noise_name

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
    """Digest of a sequence of strings, unambiguous (each part is NUL-terminated)."""
    hasher = _xxh128()
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogateescape"))
        hasher.update(b"\0")
    return hasher.hexdigest()


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

    A symlink is followed, as the jobs reading the tree follow it: one to a file is a "file"
    (its content counts, so an edit where it points is seen), one to a directory outside the
    tree a "dir" walked in turn (a data folder of links into a shared store). It stays a
    "link", known by its target path, when it is broken, points into the tree itself (whose
    content is walked where it lies), to a directory holding the tree or already walked (no
    loops), or to something else (a FIFO, a device). `followed`, if given, receives the
    relative paths of the links followed."""
    entries: List[Tuple[str, str]] = []
    stack = [""]
    root_real: Optional[str] = None  # computed at the first link to a directory
    walked: Set[Tuple[int, int]] = set()  # (device, inode) of the directories linked to and walked
    while stack:
        relative = stack.pop()
        directory = os.path.join(root, relative) if relative else root
        with os.scandir(directory) as iterator:
            for entry in iterator:
                if is_noise_name(entry.name):
                    continue
                rel = f"{relative}/{entry.name}" if relative else entry.name
                if entry.is_symlink():
                    try:
                        target = entry.stat()  # follows the link
                    except OSError:  # broken, a loop of links, or not ours to read
                        entries.append((rel, "link"))
                        continue
                    if stat_module.S_ISREG(target.st_mode):
                        entries.append((rel, "file"))
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
                        if key not in walked and not _nested(real, root_real) and not _nested(root_real, real):
                            walked.add(key)
                            entries.append((rel, "dir"))
                            stack.append(rel)
                            if followed is not None:
                                followed.append(rel)
                            continue
                    entries.append((rel, "link"))
                elif entry.is_dir():
                    entries.append((rel, "dir"))
                    stack.append(rel)
                elif entry.is_file():
                    entries.append((rel, "file"))
                else:
                    entries.append((rel, "special"))  # socket, FIFO, device: never opened
    entries.sort()
    return entries


def _nested(path: str, directory: str) -> bool:
    """Whether real path `path` is `directory` or inside it."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def hash_tree(root: str, file_digest: Optional[Callable[[str], str]] = None, looks: Optional[List[str]] = None) -> str:
    """Digest of a directory tree: names, kinds, file contents, and the targets of the symlinks
    walk_tree does not follow.

    `file_digest(path)` hashes one file; pass a cached one to avoid re-reading unchanged files.
    Permissions and timestamps are not part of the digest, only the executable bit. `looks`,
    if given, receives what `tree_looks` gives, as the tree looked just before each file was
    read (a change during the walk then shows as a difference later, never as none).
    """
    digest_of = file_digest or hash_file
    parts: List[str] = ["tree"]
    for rel, kind in walk_tree(root):
        full = os.path.join(root, rel)
        st = target = None
        if kind == "file":
            st = os.stat(full)
            executable = "x" if st.st_mode & stat_module.S_IXUSR else "-"
            parts.extend((rel, "file" + executable, digest_of(full)))
        elif kind == "link":
            target = os.readlink(full)
            parts.extend((rel, "link", target))
        else:
            parts.extend((rel, kind, ""))
        if looks is not None:
            looks.append(_look(rel, kind, st, target))
    return digest_strings(parts)


def _look(rel: str, kind: str, st: Optional[os.stat_result], target: Optional[str]) -> str:
    """One entry of a tree as tree_looks sees it."""
    if st is not None:
        return f"{rel}\0{kind}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_ctime_ns}\0{st.st_mode}"
    return f"{rel}\0{kind}\0{target}" if target is not None else f"{rel}\0{kind}"


def tree_looks(root: str) -> str:
    """How a directory tree looks by its metadata, as a digest: each entry's name and kind,
    each file's (size, mtime, inode, ctime, mode), each symlink's target. Any write, replacement,
    addition or removal under it changes it, without reading a file (hash_tree's `looks`)."""
    looks: List[str] = []
    for rel, kind in walk_tree(root):
        full = os.path.join(root, rel)
        st = os.stat(full) if kind == "file" else None
        looks.append(_look(rel, kind, st, os.readlink(full) if kind == "link" else None))
    return digest_strings(looks)

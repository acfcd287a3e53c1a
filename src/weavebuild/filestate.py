"""File digests for one build: stat each path once, hash only what changed.

Owns the fingerprint check: a file is re-hashed only when its (size, mtime_ns, inode, ctime_ns)
differ from the cached ones, or when it was modified so shortly before it was last hashed that
a later same-size write could have kept the same mtime (git's "racy clean" problem).
"""

from __future__ import annotations

import collections
import errno
import os
import stat as stat_module
import time

from .errors import UsageError
from .hashing import Stopped, hash_file, hash_files, hash_tree, looks_digest, scan_tree, tree_looks
from .paths import in_any_of

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

    from .store import FileRow

    # What a file's stat says about its content: (size, mtime, inode, ctime).
    Fingerprint = Tuple[int, int, int, int]

# A file whose mtime is within this window of the moment it was hashed is re-hashed next time:
# a later write in the same timestamp tick could leave (size, mtime, inode, ctime) unchanged.
# Linux and macOS file systems keep nanosecond mtimes taken from a clock that advances at least
# every few milliseconds; 50 ms leaves a wide margin. Whole-second mtimes (ext3, HFS+, some
# network file systems) get a 2 s window.
RACY_WINDOW_NS = 50_000_000
COARSE_RACY_WINDOW_NS = 2_000_000_000
# After a build, racy files up to this many bytes in total whose window has passed are
# re-hashed, so that the next no-op build reads nothing.
SETTLE_LIMIT_BYTES = 256 << 20


def racy_window(mtime_ns: int) -> int:
    return COARSE_RACY_WINDOW_NS if mtime_ns % 1_000_000_000 == 0 else RACY_WINDOW_NS


def fingerprint(st: os.stat_result) -> Fingerprint:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def fingerprint_now(path: str, dir_fd: Optional[int] = None) -> Optional[Fingerprint]:
    """The fingerprint of `path` now (relative to the directory open as `dir_fd`, if given),
    None if it cannot be stat-ed (gone)."""
    try:
        return fingerprint(os.stat(path, dir_fd=dir_fd))
    except OSError:
        return None


if TYPE_CHECKING:  # pragma: no cover

    class TreeWalk(NamedTuple):
        """What the walk that digested a directory tree saw (FileState.tree_as_read)."""

        walked_at: int  # time.time_ns() before the walk
        fingerprint: Fingerprint  # of the directory itself, taken before the walk
        files: List[str]  # the paths of its files (their rows in the digest cache are as read)
        directories: Dict[str, Fingerprint]  # every directory in it, as stat-ed before its listing
        plain: bool  # only files and directories (no symlink kept as a link, no special file)

else:  # the same tuple, without typing
    TreeWalk = collections.namedtuple("TreeWalk", "walked_at fingerprint files directories plain")


_MISSING = object()
_DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


class UnreadableFile(UsageError):
    """A file weave must read but cannot (permissions): the user's to fix (exit 2)."""

    def __init__(self, path: str, reason: str, hint: str = "weave reads every input and output to know its content: check its permissions"):
        super().__init__(f"cannot read '{path}': {reason}", hint=hint)
        self.path = path
        self.reason = reason


def _special_kind(mode: int) -> str:
    """What a file that is neither a regular file nor a directory is, in words."""
    if stat_module.S_ISFIFO(mode):
        return "a FIFO"
    if stat_module.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat_module.S_ISCHR(mode) or stat_module.S_ISBLK(mode) else "not a regular file"


class FileState:
    """Digests of project files, backed by the store's fingerprint cache."""

    def __init__(
        self,
        root: str,
        cache: Dict[str, FileRow],
        lookup: Optional[Callable[[str], Optional[FileRow]]] = None,
        lookup_tree: Optional[Callable[[str], Dict[str, FileRow]]] = None,
    ):
        """`cache`: the store's rows, all of them or those of the files the build names;
        `lookup(path)`, if given, asks the store for the row of a file not in `cache` before it
        is read, and `lookup_tree(directory)` for the rows of a whole directory tree before it
        is walked (when `cache` holds only the named files)."""
        self.root = root
        self._prefix = os.path.join(root, "")
        self.cache = cache
        self._lookup = lookup
        self._lookup_tree = lookup_tree
        self.dirty: Dict[str, FileRow] = {}
        self.racy: Dict[str, str] = {}  # key -> full path of files hashed within their window
        self._memo: Dict[str, object] = {}
        # stat() results taken by exists() (the resolver asks about every source), each used
        # once by the next digest or prefetch of that path instead of a second stat.
        self._stats: Dict[str, os.stat_result] = {}
        self.hashed = 0  # how many files were actually read (for tests and -v statistics)
        # Files that settle_racy found with other content than the build had read: what the
        # build decided from them does not hold for their content now (see settle_racy).
        self.changed_after_read: Dict[str, None] = {}  # an ordered set
        # The fingerprint each file had when its digest was taken in this build, to tell
        # whether it changed since (changed_since_read); for digests taken on trust (the
        # stamp's check), `_trusted_fingerprint` answers.
        self._read_as: Dict[str, Fingerprint] = {}
        # For each directory whose tree this build digested: how the tree looked then (by its
        # metadata, hashing.tree_looks), to tell whether it changed while a job read it.
        self._tree_read_as: Dict[str, str] = {}
        # ... and what its walk saw, for the no-op stamp (tree_as_read).
        self._tree_walks: Dict[str, TreeWalk] = {}
        # The fingerprint of every file whose digest this build used, by itself or in a
        # directory's tree, as first used: a later read that finds it otherwise (a directory
        # input walked after one of its files was edited, which a job had read on its own
        # before) means the build's verdicts do not all hold for the file's content now.
        self._used: Dict[str, Fingerprint] = {}
        # Paths a job of this build rewrote (outputs, directory outputs): files under them
        # are expected to change after they were used.
        self._rewritten: Set[str] = set()
        self._trusted_fingerprint: Optional[Callable[[str], Optional[Fingerprint]]] = None
        # The digests trust() took (their fingerprints are `_trusted_fingerprint`'s), and the
        # paths forgotten since (rewritten by a job): a digest taken again is not one that
        # `_trusted_fingerprint` vouches for, nor is any digest of a path never trusted.
        self._trusted: Dict[str, str] = {}
        self._forgotten: Set[str] = set()

    def add_rows(self, rows: Dict[str, FileRow], complete: bool = False) -> None:
        """Take the store's `rows` into the cache (a row the cache holds already stays);
        `complete`: they are all the store has, so `lookup` is no longer asked."""
        if self.cache:
            rows.update(self.cache)
        self.cache = rows
        if complete:
            self._lookup = self._lookup_tree = None

    def full_path(self, path: str) -> str:
        return path if path[:1] == os.sep else self._prefix + path

    def exists(self, path: str) -> bool:
        """Whether `path` exists now (a broken symlink counts as missing)."""
        memo = self._memo.get(path)
        if memo is not None:
            return memo is not _MISSING
        try:
            st = os.stat(self.full_path(path))
        except (OSError, ValueError):
            return False  # as os.path.exists: missing, a broken link, or no valid path
        # Keyed as digest() is asked: relative to the root (the resolver asks with full paths).
        self._stats[path[len(self._prefix) :] if path.startswith(self._prefix) else path] = st
        return True

    def is_directory(self, path: str) -> bool:
        """Whether `path` is a directory (or a symlink to one), from the stat exists() just
        took if it kept one."""
        st = self._stats.get(path)
        if st is not None:
            return stat_module.S_ISDIR(st.st_mode)
        return os.path.isdir(self.full_path(path))

    def special_kind(self, path: str) -> Optional[str]:
        """What `path` is if neither a regular file nor a directory (a FIFO, a socket, a
        device), from the stat exists() just took if it kept one; else None."""
        st = self._stats.get(path)
        if st is None:
            try:
                st = os.stat(self.full_path(path))
            except (OSError, ValueError):
                return None
        mode = st.st_mode
        if stat_module.S_ISREG(mode) or stat_module.S_ISDIR(mode):
            return None
        if stat_module.S_ISFIFO(mode):
            return "FIFO"
        if stat_module.S_ISSOCK(mode):
            return "socket"
        return "device file"

    def seen_as(self, path: str) -> Optional[Fingerprint]:
        """The (size, mtime, inode, ctime) that exists() last saw for `path` and kept for its
        digest, if any."""
        st = self._stats.get(path)
        return None if st is None else fingerprint(st)

    def digest(self, path: str) -> Optional[str]:
        """The content digest of `path` (file or directory tree), or None if it is missing.

        Memoised for the rest of the build: call `forget` when a job may have changed it.
        """
        memo = self._memo.get(path)
        if memo is not None:
            return None if memo is _MISSING else memo  # type: ignore[return-value]
        full = self.full_path(path)
        st: Optional[os.stat_result] = self._stats.pop(path, None)
        digest: Optional[str] = None
        for _ in range(3):
            try:
                if st is None:
                    st = os.stat(full)
                if stat_module.S_ISDIR(st.st_mode):
                    if self._lookup_tree is not None:  # its files' rows at once, not one by one
                        for key, row in self._lookup_tree(path).items():
                            self.cache.setdefault(key, row)
                    digest = self._digest_tree(path, full, st)
                elif not stat_module.S_ISREG(st.st_mode):
                    # A device or FIFO: reading it may never end (/dev/zero) or block forever.
                    raise UnreadableFile(
                        path,
                        f"it is {_special_kind(st.st_mode)}",
                        hint="inputs and outputs are regular files or directories, whose content weave hashes",
                    )
                else:
                    digest = self._file_digest(full, st, path)
                    self._read_as[path] = fingerprint(st)
                break
            except (FileNotFoundError, NotADirectoryError):
                # Missing; or gone between its stat and its read; or a directory that changed
                # under the walk, which is looked at again.
                if st is None or not stat_module.S_ISDIR(st.st_mode):
                    break
                st = None
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # a symlink loop is a missing file
                    break
                raise UnreadableFile(path, exc.strerror or str(exc)) from None
        if digest is None:
            self._memo[path] = _MISSING
            return None
        self._memo[path] = digest
        return digest

    def digests(self, paths: Sequence[str]) -> List[str]:
        """digest() of each of `paths`, up to the first that is missing (excluded): a shorter
        list says which. Memoised digests are answered in the loop itself: a fan-in job's
        check asks for 10k inputs, most of them already known."""
        memo, digest = self._memo, self.digest
        found: List[str] = []
        add = found.append
        for path in paths:
            known = memo.get(path)
            if known is None:
                known = digest(path)
                if known is None:
                    break
            elif known is _MISSING:
                break
            add(known)  # type: ignore[arg-type]
        return found

    def _digest_tree(self, path: str, full: str, st: os.stat_result) -> str:
        """The digest of the directory tree at `path` (stat-ed as `st`): one walk that stats
        each entry once, whose stats serve the digest cache, the check after a job that read
        the tree (its looks), and the no-op stamp (tree_as_read)."""
        prefix = self._prefix
        if full.startswith(prefix):
            base = full[len(prefix):] + "/"
        elif full == self.root.rstrip(os.sep):
            base = ""
        else:
            base = full.rstrip(os.sep) + "/"
        scanned_at = time.time_ns()  # before the walk: a directory changed since is racy
        entries = scan_tree(full)
        members: List[str] = []
        cache, used = self.cache, self._used
        add_member = members.append

        def file_digest(rel: str, member_st: os.stat_result) -> str:
            key = base + rel
            add_member(key)
            # _cached_digest written out: this runs once per file of a dataset of 100k
            row = cache.get(key)
            mtime = member_st.st_mtime_ns
            if (
                row is not None
                and row[1] == mtime
                and row[0] == member_st.st_size
                and row[2] == member_st.st_ino
                and row[3] == member_st.st_ctime_ns
                and row[5] - mtime > racy_window(mtime)
            ):
                if key not in used:
                    used[key] = (row[0], mtime, row[2], row[3])
                return row[4]
            return self._file_digest(os.path.join(full, rel), member_st, key)

        looks: List[tuple] = []
        digest = hash_tree(full, file_digest, looks, entries)
        self._tree_read_as[path] = looks_digest(looks)
        self._tree_walks[path] = TreeWalk(
            scanned_at,
            fingerprint(st),
            members,
            {base + rel: fingerprint(dir_st) for rel, kind, dir_st in entries if kind == "dir" and dir_st is not None},
            all(kind in ("file", "dir") for _, kind, _ in entries),
        )
        return digest

    def _same_content(self, path: str, then: Fingerprint) -> bool:
        """Whether `path` still holds the bytes whose digest this build took when it had the
        fingerprint `then`: read again, as its metadata alone changed."""
        known = self._memo.get(path)
        if not isinstance(known, str):
            row = self.cache.get(path)
            known = row[4] if row is not None and tuple(row[:4]) == tuple(then) else None
        try:
            return known is not None and self.content_now(path) == known
        except Stopped:  # the build is stopping: taken as changed, so not recorded
            return False

    def content_now(self, path: str) -> Optional[str]:
        """The digest of `path`'s content read now, past every cache and memo (None if it is
        missing or unreadable): has a file the build already read really changed?"""
        full = self.full_path(path)
        try:
            if os.path.isdir(full):
                return hash_tree(full)
            return hash_file(full)
        except OSError:
            return None

    def _file_digest(self, full: str, st: Optional[os.stat_result], key: Optional[str] = None) -> str:
        if key is None:
            prefix = self.root.rstrip(os.sep) + os.sep
            key = full[len(prefix):] if full.startswith(prefix) else full
        if st is None:
            st = os.stat(full)
        cached = self._cached_digest(key, st)
        if cached is not None:
            if key not in self._used:
                self._used[key] = fingerprint(st)
            return cached
        hashed_at = time.time_ns()  # taken before reading: errs towards re-hashing next time
        digest = hash_file(full, st.st_size)
        self._install(key, full, st, digest, hashed_at)
        return digest

    def _cached_digest(self, key: str, st: os.stat_result) -> Optional[str]:
        """The cached digest of `key` if its row still fits the file (same fingerprint, hashed
        outside the racy window), else None: the file must be read."""
        row = self.cache.get(key)
        if row is None and self._lookup is not None:
            row = self._lookup(key)
            if row is not None:
                self.cache[key] = row
        if (
            row is not None
            and tuple(row[:4]) == fingerprint(st)
            and row[5] - st.st_mtime_ns > racy_window(st.st_mtime_ns)
        ):
            return row[4]
        return None

    def _install(self, key: str, full: str, st: os.stat_result, digest: str, hashed_at: int) -> None:
        self.hashed += 1
        now = fingerprint(st)
        then = self._used.get(key)
        if then is None and key in self._trusted and key not in self._forgotten and self._trusted_fingerprint is not None:
            then = self._trusted_fingerprint(key)  # used on the stamp's word
        if then is None or (then != now and self._rewritten_under(key)):
            self._used[key] = now
        elif then != now:
            # Read again, changed, after the build used it: its new row must not go into a
            # stamp that vouches for the jobs decided from the old content (see _used).
            self.changed_after_read[key] = None
        new_row: FileRow = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, digest, hashed_at)  # type: ignore[assignment]
        self.cache[key] = new_row
        self.dirty[key] = new_row
        if hashed_at - st.st_mtime_ns <= racy_window(st.st_mtime_ns):
            self.racy[key] = full

    def _rewritten_under(self, key: str) -> bool:
        """Whether `key` is in a directory a job of this build rewrote (a directory output)."""
        return in_any_of(key, self._rewritten)

    def prefetch(self, paths: Iterable[str]) -> None:
        """Digest these files ahead, reading the ones that need it with a few threads at once
        (several large inputs hash in parallel); digest() then answers from memory, with the
        same results. Anything unusual (missing, a directory) is left to digest()."""
        todo: List[Tuple[str, str, os.stat_result]] = []
        for path in paths:
            if path in self._memo:
                continue
            full = self.full_path(path)
            try:
                st = self._stats.pop(path, None) or os.stat(full)
            except OSError:
                continue
            if not stat_module.S_ISREG(st.st_mode):
                continue
            cached = self._cached_digest(path, st)
            if cached is not None:
                self._memo[path] = cached  # what digest() would answer, without a second stat
                seen = self._read_as[path] = fingerprint(st)
                self._used.setdefault(path, seen)
            else:
                todo.append((path, full, st))
        if len(todo) < 2:
            for path, _, st in todo:  # digest() reads it when asked, with this stat
                self._stats[path] = st
            return  # nothing to read in parallel
        for (path, full, st), (hashed_at, digest) in zip(todo, hash_files([(full, st.st_size) for _, full, st in todo])):
            if digest is not None:
                self._install(path, full, st, digest, hashed_at)
                self._memo[path] = digest
                self._read_as[path] = fingerprint(st)

    def settle_racy(self) -> None:
        """Re-hash files that were racy when hashed and whose window has passed since.

        Outputs are hashed right after a job writes them, so they are racy at first; at the end
        of a build most of them no longer are, and re-reading them now (from the page cache)
        keeps that cost off the next no-op. The few written in the last milliseconds stay racy:
        the no-op stamp marks them, and its check verifies their content (stamp.py). A file
        that changed meanwhile gets its new digest, and is listed in `changed_after_read`: the
        records of this build hold the content it read (so the next build reruns what read
        it), and the build must not be stamped, since a stamp would vouch for the new content.
        """
        if not self.racy:
            return
        entries = list(self.racy.items())
        self.racy.clear()
        total = sum(self.cache[key][0] for key, _ in entries if key in self.cache)
        if total > SETTLE_LIMIT_BYTES:
            return
        now = time.time_ns()
        for key, full in entries:
            row = self.cache.get(key)
            if row is None or now - row[1] <= racy_window(row[1]):
                continue  # still inside its window: stays racy
            self._memo.pop(key, None)
            try:
                st = os.stat(full)
            except OSError:
                continue
            try:
                if stat_module.S_ISREG(st.st_mode) and self._file_digest(full, st, key) != row[4]:
                    self.changed_after_read[key] = None
            except Stopped:  # the build is stopping (no stamp then): the rest stay racy
                return

    def trust(
        self,
        digests: Dict[str, str],
        fingerprint: Optional[Callable[[str], Optional[Fingerprint]]] = None,
    ) -> None:
        """Take these digests as current without a stat: the caller has just seen that each
        file's fingerprint is the one it had when hashed (the no-op stamp's check), and
        `fingerprint(path)` says which it was."""
        self._trusted_fingerprint = fingerprint
        if self._memo:
            digests = {path: digest for path, digest in digests.items() if path not in self._memo}
        self._memo.update(digests)
        self._trusted = digests

    def forget(self, paths: Iterable[str]) -> None:
        """Drop memoised digests of `paths` (outputs a job is about to rewrite)."""
        for path in paths:
            self._memo.pop(path, None)
            self._stats.pop(path, None)
            self._read_as.pop(path, None)
            self._used.pop(path, None)
            self._rewritten.add(path)
            self._tree_read_as.pop(path, None)
            self._tree_walks.pop(path, None)
            if self._trusted_fingerprint is not None:
                self._forgotten.add(path)

    def removed(self, path: str, is_dir: bool) -> None:
        """Weave itself deleted `path` (a temporary output): forget all it knew of it (and of
        the files in it), and take it as missing."""
        self.forget((path,))
        for table in (self.cache, self.dirty, self.racy):
            table.pop(path, None)  # type: ignore[attr-defined]
        if is_dir:
            prefix = path + "/"
            for table in (self.cache, self.dirty, self.racy, self._memo, self._used):
                for key in [key for key in table if key.startswith(prefix)]:  # type: ignore[attr-defined]
                    del table[key]  # type: ignore[attr-defined]
        self._memo[path] = _MISSING

    def tree_as_read(self, path: str) -> Optional[TreeWalk]:
        """What the walk that took the digest of directory `path` in this build saw, if it
        took one: the no-op stamp vouches for the tree as it was then, the state its digest
        describes (a later look could pair a newer listing with the older content)."""
        return self._tree_walks.get(path)

    def hashed_as(self, path: str) -> Optional[Fingerprint]:
        """The (size, mtime, inode, ctime) `path` had when this build took its digest, if
        known (not for a directory)."""
        then = self._read_as.get(path)
        if then is None and self._trusted_fingerprint is not None and path in self._trusted and path not in self._forgotten:
            then = self._trusted_fingerprint(path)
        return then

    def changed_since_read(self, paths: Sequence[str]) -> List[str]:
        """Those of `paths` (files whose digests this build took) that are no longer as they
        were then: edited, replaced or deleted since, for instance while a job read them. A
        job's record holds the digests taken before it started; if an input changed while it
        ran and changed back before the next build, that record would vouch for an output
        made from other content. Each is added to `changed_after_read` (no stamp)."""
        moved: List[str] = []
        # The many inputs of a fan-in job are stat-ed relative to the open project directory:
        # a shorter lookup than from the root of the file system (~1 µs less each). The loop
        # is written out (no fingerprint tuples): a fan-in over 10k sources runs it 10k times
        # after its job, on the path of a one-change rebuild.
        directory = os.open(self.root, _DIRECTORY_FLAGS) if len(paths) > 32 else None
        read_as, trusted, forgotten = self._read_as, self._trusted, self._forgotten
        trusted_fingerprint = self._trusted_fingerprint
        stat = os.stat
        try:
            for path in paths:
                then = read_as.get(path)
                if then is None:
                    tree_then = self._tree_read_as.get(path)
                    if tree_then is not None:  # a directory: the whole tree, by its metadata
                        try:
                            tree_now: Optional[str] = tree_looks(self.full_path(path))
                        except OSError:
                            tree_now = None
                        if tree_now != tree_then:
                            moved.append(path)
                            self.changed_after_read[path] = None
                        continue
                    if trusted_fingerprint is None or path not in trusted or path in forgotten:
                        continue  # never read, or re-read
                    then = trusted_fingerprint(path)
                    if then is None:
                        continue
                try:
                    st = stat(path, dir_fd=directory) if directory is not None else stat(self.full_path(path))
                except OSError:
                    st = None
                if (
                    st is None
                    or st.st_mtime_ns != then[1]
                    or st.st_ctime_ns != then[3]
                    or st.st_ino != then[2]
                    or st.st_size != then[0]
                ):
                    if st is not None and (st.st_size, st.st_mtime_ns, st.st_ino) == tuple(then[:3]) and self._same_content(path, then):
                        continue  # only its inode changed (a hard link made to it, a chmod): not its bytes
                    moved.append(path)
                    self.changed_after_read[path] = None
        finally:
            if directory is not None:
                os.close(directory)
        return moved

    def take_dirty(self) -> List[Tuple[str, FileRow]]:
        """Cache rows changed since the last call, to be written in the next transaction."""
        rows = list(self.dirty.items())
        self.dirty.clear()
        return rows

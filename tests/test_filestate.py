"""Unit tests of filestate.py: the fingerprint cache, racy files, settling and memoisation."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import xxhash

from weavebuild import filestate
from weavebuild.filestate import (
    COARSE_RACY_WINDOW_NS,
    RACY_WINDOW_NS,
    FileState,
    racy_window,
)
from weavebuild.hashing import hash_tree

HOUR_NS = 3600 * 1_000_000_000


def write_old(root: Path, name: str, data: bytes = b"data", age_ns: int = HOUR_NS) -> Path:
    """Write a file and set its mtime back, well out of the racy window (not on a whole second)."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = time.time_ns() - age_ns
    if stamp % 1_000_000_000 == 0:
        stamp += 1
    os.utime(path, ns=(stamp, stamp))
    return path


def write_fresh(root: Path, name: str, data: bytes, ahead_ns: int = 40_000_000) -> Path:
    """Write a file whose mtime is a little ahead of now, so that it is racy when hashed even if
    the machine is slow (up to ahead_ns + the window between writing and hashing), yet close
    enough for settle_racy to wait for it."""
    path = root / name
    path.write_bytes(data)
    stamp = time.time_ns() + ahead_ns
    if stamp % 1_000_000_000 == 0:
        stamp += 1
    os.utime(path, ns=(stamp, stamp))
    return path


def digest_of(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def test_racy_window():
    assert racy_window(5_000_000_000) == COARSE_RACY_WINDOW_NS
    assert racy_window(5_000_000_001) == RACY_WINDOW_NS


def test_old_file_hashed_once_then_served_from_cache(tmp_path):
    write_old(tmp_path, "f", b"hello")
    cache: dict = {}
    first = FileState(str(tmp_path), cache)
    assert first.digest("f") == digest_of(b"hello")
    assert first.hashed == 1
    assert first.digest("f") == digest_of(b"hello")  # memoised
    assert first.hashed == 1
    assert first.racy == {}
    row = cache["f"]
    st = os.stat(tmp_path / "f")
    assert tuple(row[:4]) == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    assert row[4] == digest_of(b"hello")
    assert first.take_dirty() == [("f", row)]
    assert first.take_dirty() == []

    second = FileState(str(tmp_path), cache)
    assert second.digest("f") == digest_of(b"hello")
    assert second.hashed == 0
    assert second.take_dirty() == []


def test_absolute_paths_are_accepted(tmp_path):
    path = write_old(tmp_path, "f", b"x")
    files = FileState(str(tmp_path), {})
    assert files.digest(str(path)) == digest_of(b"x")
    assert str(path) in files.cache


def test_content_change_is_rehashed(tmp_path):
    path = write_old(tmp_path, "f", b"one")
    cache: dict = {}
    FileState(str(tmp_path), cache).digest("f")
    path.write_bytes(b"three")
    stamp = os.stat(path).st_mtime_ns - HOUR_NS
    os.utime(path, ns=(stamp, stamp))
    files = FileState(str(tmp_path), cache)
    assert files.digest("f") == digest_of(b"three")
    assert files.hashed == 1


def test_same_size_same_mtime_but_new_inode_is_rehashed(tmp_path):
    path = write_old(tmp_path, "f", b"aaaa")
    cache: dict = {}
    FileState(str(tmp_path), cache).digest("f")
    old = os.stat(path)
    replacement = tmp_path / "tmp"
    replacement.write_bytes(b"bbbb")
    os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
    keep_inode_busy = open(path, "rb")  # so the new file cannot reuse the old inode
    try:
        os.replace(replacement, path)
        new = os.stat(path)
        assert (new.st_size, new.st_mtime_ns) == (old.st_size, old.st_mtime_ns)
        assert new.st_ino != old.st_ino
        files = FileState(str(tmp_path), cache)
        assert files.digest("f") == digest_of(b"bbbb")
        assert files.hashed == 1
    finally:
        keep_inode_busy.close()


@pytest.mark.parametrize("field", [0, 1, 2, 3], ids=["size", "mtime", "inode", "ctime"])
def test_any_fingerprint_difference_rehashes(tmp_path, field):
    write_old(tmp_path, "f", b"abc")
    cache: dict = {}
    FileState(str(tmp_path), cache).digest("f")
    row = list(cache["f"])
    row[field] += 1
    row[4] = "stale digest"
    cache["f"] = tuple(row)
    files = FileState(str(tmp_path), cache)
    assert files.digest("f") == digest_of(b"abc")
    assert files.hashed == 1
    assert cache["f"][4] == digest_of(b"abc")


def test_fresh_file_is_racy_and_rehashed_next_time(tmp_path):
    write_fresh(tmp_path, "f", b"new", ahead_ns=1_000_000_001)
    cache: dict = {}
    first = FileState(str(tmp_path), cache)
    first.digest("f")
    assert first.hashed == 1
    assert first.racy == {"f": str(tmp_path / "f")}
    second = FileState(str(tmp_path), cache)
    assert second.digest("f") == digest_of(b"new")
    assert second.hashed == 1


def test_row_hashed_within_the_window_of_its_mtime_is_rehashed(tmp_path):
    write_old(tmp_path, "f", b"abc")
    cache: dict = {}
    FileState(str(tmp_path), cache).digest("f")
    row = cache["f"]
    # Pretend it was hashed 10 ms after its mtime: a later write could have kept the mtime.
    cache["f"] = tuple(row[:5]) + (row[1] + 10_000_000,)
    files = FileState(str(tmp_path), cache)
    files.digest("f")
    assert files.hashed == 1
    # Hashed well after its mtime: trusted.
    cache["f"] = tuple(row[:5]) + (row[1] + RACY_WINDOW_NS + 1,)
    files = FileState(str(tmp_path), cache)
    files.digest("f")
    assert files.hashed == 0


def test_whole_second_mtimes_get_the_coarse_window(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    stamp = (time.time_ns() // 1_000_000_000 - 3600) * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))
    cache: dict = {}
    FileState(str(tmp_path), cache).digest("f")
    row = cache["f"]
    cache["f"] = tuple(row[:5]) + (stamp + 1_000_000_000,)  # 1 s after: still racy
    files = FileState(str(tmp_path), cache)
    files.digest("f")
    assert files.hashed == 1
    cache["f"] = tuple(row[:5]) + (stamp + COARSE_RACY_WINDOW_NS + 1,)
    files = FileState(str(tmp_path), cache)
    files.digest("f")
    assert files.hashed == 0


def test_settle_racy_rehashes_once_the_window_has_passed(tmp_path):
    write_fresh(tmp_path, "f", b"fresh")
    cache: dict = {}
    files = FileState(str(tmp_path), cache)
    files.digest("f")
    assert "f" in files.racy
    files.take_dirty()
    started = time.monotonic()
    files.settle_racy()  # never sleeps: a file still inside its window stays racy
    assert time.monotonic() - started < 0.5
    time.sleep(0.15)  # past the window (write_fresh dates the file 40 ms ahead)
    files.racy["f"] = str(tmp_path / "f")
    files.settle_racy()
    assert files.racy == {}
    assert "f" in [key for key, _ in files.take_dirty()]
    later = FileState(str(tmp_path), cache)
    assert later.digest("f") == digest_of(b"fresh")
    assert later.hashed == 0


def test_settle_racy_picks_up_a_change_made_meanwhile(tmp_path):
    path = write_fresh(tmp_path, "f", b"one")
    cache: dict = {}
    files = FileState(str(tmp_path), cache)
    assert files.digest("f") == digest_of(b"one")
    assert "f" in files.racy
    path.write_bytes(b"two!")
    time.sleep(0.15)  # past the window of both writes
    files.settle_racy()
    assert cache["f"][4] == digest_of(b"two!")
    assert files.digest("f") == digest_of(b"two!")  # the memo was dropped


def test_settle_racy_skips_a_file_removed_meanwhile(tmp_path):
    path = write_fresh(tmp_path, "f", b"one")
    files = FileState(str(tmp_path), {})
    files.digest("f")
    assert "f" in files.racy
    path.unlink()
    files.settle_racy()
    assert files.hashed == 1
    assert files.racy == {}


def test_settle_racy_does_nothing_over_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(filestate, "SETTLE_LIMIT_BYTES", 3)
    write_fresh(tmp_path, "f", b"four")
    files = FileState(str(tmp_path), {})
    files.digest("f")
    assert "f" in files.racy
    files.settle_racy()
    assert files.hashed == 1
    assert files.racy == {}


def test_settle_racy_does_not_wait_for_coarse_timestamps(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    stamp = (time.time_ns() // 1_000_000_000 + 1) * 1_000_000_000  # a whole second, just ahead
    os.utime(path, ns=(stamp, stamp))
    files = FileState(str(tmp_path), {})
    files.digest("f")
    assert "f" in files.racy
    started = time.monotonic()
    files.settle_racy()
    assert time.monotonic() - started < 0.5
    assert files.hashed == 1
    assert files.racy == {}


def test_settle_racy_without_racy_files_is_a_no_op(tmp_path):
    write_old(tmp_path, "f")
    files = FileState(str(tmp_path), {})
    files.digest("f")
    files.settle_racy()
    assert files.hashed == 1


def test_missing_files_are_none(tmp_path):
    write_old(tmp_path, "plain")
    os.symlink("nowhere", tmp_path / "broken")
    os.symlink("loop", tmp_path / "loop")
    files = FileState(str(tmp_path), {})
    assert files.digest("missing") is None
    assert files.digest("plain/under") is None  # NotADirectoryError
    assert files.digest("broken") is None
    assert files.digest("loop") is None  # ELOOP
    assert not files.exists("missing")
    assert not files.exists("broken")
    assert files.exists("plain")
    assert files.hashed == 0
    (tmp_path / "missing").write_bytes(b"now")
    assert files.digest("missing") is None  # memoised until forgotten
    assert not files.exists("missing")
    files.forget(["missing"])
    assert files.exists("missing")
    assert files.digest("missing") == digest_of(b"now")


def test_symlink_to_a_file_hashes_the_target(tmp_path):
    write_old(tmp_path, "target", b"content")
    os.symlink("target", tmp_path / "link")
    files = FileState(str(tmp_path), {})
    assert files.digest("link") == digest_of(b"content")


def test_directory_digest_is_the_tree_digest_with_cached_files(tmp_path):
    write_old(tmp_path, "d/a.txt", b"a")
    write_old(tmp_path, "d/sub/b.txt", b"b")
    cache: dict = {}
    files = FileState(str(tmp_path), cache)
    digest = files.digest("d")
    assert digest == hash_tree(str(tmp_path / "d"))
    assert files.hashed == 2
    assert set(cache) == {"d/a.txt", "d/sub/b.txt"}
    again = FileState(str(tmp_path), cache)
    assert again.digest("d") == digest
    assert again.hashed == 0
    write_old(tmp_path, "d/sub/b.txt", b"B!")
    third = FileState(str(tmp_path), cache)
    assert third.digest("d") != digest
    assert third.hashed == 1


def test_forget_drops_memoised_digests(tmp_path):
    path = write_old(tmp_path, "out", b"old")
    files = FileState(str(tmp_path), {})
    assert files.digest("out") == digest_of(b"old")
    path.write_bytes(b"newer")
    assert files.digest("out") == digest_of(b"old")  # memoised for the build
    files.forget(["out", "never-seen"])
    assert files.digest("out") == digest_of(b"newer")
    assert files.hashed == 2


def test_prefetch_gives_what_digest_gives(tmp_path, monkeypatch):
    """prefetch reads files ahead (large ones in parallel); afterwards digest() answers from
    memory with the digests it would have computed, and records the same cache rows."""
    from weavebuild import hashing

    monkeypatch.setattr(hashing, "PARALLEL_BYTES", 1)  # threads even for these small files
    for name in ("a.txt", "b.txt", "c.txt"):
        write_old(tmp_path, name, name.encode() * 100)
    (tmp_path / "dir").mkdir()
    write_old(tmp_path, "dir/inner.txt", b"inner")
    cached = FileState(str(tmp_path), {})
    cached.digest("c.txt")  # in the cache already: answered without reading again
    ahead = FileState(str(tmp_path), dict(cached.cache))
    ahead.prefetch(["a.txt", "b.txt", "c.txt", "dir", "missing.txt"])
    assert ahead.hashed == 2  # a and b; c's cached row still fits its file
    plain = FileState(str(tmp_path), dict(cached.cache))
    for name in ("a.txt", "b.txt", "c.txt", "dir", "missing.txt"):
        assert ahead.digest(name) == plain.digest(name), name
    assert {k: v[4] for k, v in ahead.cache.items()} == {k: v[4] for k, v in plain.cache.items()}


def _count_stats(monkeypatch) -> list:
    """The paths filestate stat()s from now on, in order."""
    calls = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        calls.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(filestate.os, "stat", counting_stat)
    return calls


def test_a_source_seen_by_exists_is_not_statted_again(tmp_path, monkeypatch):
    """The resolver asks exists() about every source (with full paths); the digest of the same
    path, relative, reuses that stat: one stat per source before the first job starts."""
    write_old(tmp_path, "src/a.txt", b"alpha")
    write_old(tmp_path, "src/b.txt", b"beta")
    calls = _count_stats(monkeypatch)
    files = FileState(str(tmp_path), {})
    assert files.exists(str(tmp_path / "src/a.txt")) and files.exists("src/b.txt")
    assert not files.exists("src/missing.txt")
    files.prefetch(["src/a.txt", "src/b.txt"])
    assert files.digest("src/a.txt") == xxhash.xxh3_128_hexdigest(b"alpha")
    assert files.digest("src/b.txt") == xxhash.xxh3_128_hexdigest(b"beta")
    assert sorted(calls) == sorted([str(tmp_path / "src/a.txt"), str(tmp_path / "src/b.txt"), str(tmp_path / "src/missing.txt")])
    # A path forgotten (an output about to be rewritten) is looked at afresh.
    (tmp_path / "src/a.txt").write_bytes(b"changed")
    files.forget(["src/a.txt"])
    assert files.digest("src/a.txt") == xxhash.xxh3_128_hexdigest(b"changed")


def test_a_prefetch_of_one_file_keeps_its_stat_for_digest(tmp_path, monkeypatch):
    """A prefetch with fewer than two files to read leaves them to digest(); the stat it took
    (or that exists() took before it) is handed on, not taken again."""
    write_old(tmp_path, "out/a.o", b"alpha")
    calls = _count_stats(monkeypatch)
    files = FileState(str(tmp_path), {})
    assert files.exists("out/a.o")
    files.prefetch(["out/a.o"])
    assert files.hashed == 0  # not read by the prefetch
    assert files.digest("out/a.o") == xxhash.xxh3_128_hexdigest(b"alpha")
    assert calls == [str(tmp_path / "out/a.o")]


def test_a_file_gone_between_its_stat_and_its_read_is_missing(tmp_path):
    """The resolver's exists() keeps the stat for digest(); a file deleted in between (by
    the user, mid-build) is reported missing, not an internal error."""
    from weavebuild.filestate import FileState

    (tmp_path / "a.txt").write_text("a\n")
    files = FileState(str(tmp_path), {})
    assert files.exists(str(tmp_path / "a.txt"))
    (tmp_path / "a.txt").unlink()
    assert files.digest("a.txt") is None
    assert files.digest("never-there.txt") is None


def test_an_unreadable_file_is_a_users_error(tmp_path, monkeypatch):
    """A file that cannot be read (permissions) is an error naming it, exit 2, not a crash.
    (The tests run as root, whom permissions do not stop: the read itself is made to fail.)"""
    from weavebuild import filestate
    from weavebuild.errors import UsageError

    (tmp_path / "secret.txt").write_text("x\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(filestate, "hash_file", denied)
    files = filestate.FileState(str(tmp_path), {})
    with pytest.raises(UsageError, match="cannot read 'secret.txt': Permission denied"):
        files.digest("secret.txt")


@pytest.mark.parametrize("count", [3, 40])  # few inputs: full paths; a fan-in: relative to the project
def test_changed_since_read_names_exactly_the_files_that_moved(tmp_path, count):
    names = [f"in/f{i:02d}.txt" for i in range(count)]
    for name in names:
        write_old(tmp_path, name, name.encode())
    outside = write_old(tmp_path.parent / f"outside{count}", "abs.txt", b"abs")  # an absolute input
    files = FileState(str(tmp_path), {})
    read = names + [str(outside)]
    for name in read:
        assert files.digest(name) is not None
    assert files.changed_since_read(read) == []
    (tmp_path / names[1]).write_bytes(b"edited")
    (tmp_path / names[-1]).unlink()
    outside.write_bytes(b"edited too")
    assert files.changed_since_read(read) == [names[1], names[-1], str(outside)]
    assert set(files.changed_after_read) == {names[1], names[-1], str(outside)}

"""Unit tests of hashing.py: file digests, tree digests and string digests."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time

import pytest
import xxhash

from weavebuild import hashing
from weavebuild.hashing import (
    CHUNK,
    digest_bytes,
    digest_strings,
    hash_file,
    hash_files,
    hash_tree,
    symlink_digest,
    walk_tree,
)

KIB = 1024
MIB = 1024 * KIB
SIZES = [0, 1, 64 * KIB - 1, 64 * KIB, 64 * KIB + 1, MIB - 1, MIB, MIB + 1, 3 * MIB]


@pytest.mark.parametrize("size", SIZES)
def test_hash_file_is_xxh3_128_of_the_bytes(tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    expected = xxhash.xxh3_128_hexdigest(data)
    assert hash_file(str(path)) == expected
    assert hash_file(str(path), size) == expected
    assert len(expected) == 32


@pytest.mark.parametrize("hint", [0, 10, 64 * KIB])
def test_hash_file_with_a_size_hint_smaller_than_the_file(tmp_path, hint):
    # The file grew after it was stat'ed: the small-file path must still read everything.
    data = os.urandom(3 * CHUNK // 2)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(str(path), hint) == xxhash.xxh3_128_hexdigest(data)


def test_paths_relative_to_a_directory_descriptor(tmp_path):
    """The stamp check hashes files relative to the open project directory: the digests are
    those of the full paths, for small and streamed files, and an absolute path ignores the
    directory (a source outside the project)."""
    (tmp_path / "proj" / "d").mkdir(parents=True)
    small, large = b"small\n", os.urandom(3 * MIB + 5)
    (tmp_path / "proj" / "d" / "small.txt").write_bytes(small)
    (tmp_path / "proj" / "large.bin").write_bytes(large)
    (tmp_path / "outside.txt").write_bytes(b"outside\n")
    outside = str(tmp_path / "outside.txt")
    directory = os.open(tmp_path / "proj", os.O_RDONLY)
    try:
        files = [("d/small.txt", len(small)), ("large.bin", len(large)), (outside, 8), ("gone.txt", 3)]
        digests = [digest for _, digest in hash_files(files, directory)]
        assert hash_file("large.bin", -1, directory) == xxhash.xxh3_128_hexdigest(large)
    finally:
        os.close(directory)
    assert digests == [
        xxhash.xxh3_128_hexdigest(small),
        xxhash.xxh3_128_hexdigest(large),
        xxhash.xxh3_128_hexdigest(b"outside\n"),
        None,
    ]


def test_hash_file_missing_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        hash_file(str(tmp_path / "missing"))


def test_digest_bytes():
    assert digest_bytes(b"abc") == xxhash.xxh3_128_hexdigest(b"abc")


def test_digest_strings_is_unambiguous():
    assert digest_strings(["ab", "c"]) != digest_strings(["a", "bc"])
    assert digest_strings(["abc"]) != digest_strings(["ab", "c"])
    assert digest_strings([]) != digest_strings([""])
    assert digest_strings([""]) != digest_strings(["", ""])
    assert digest_strings(["a", "b"]) == digest_strings(iter(["a", "b"]))
    assert digest_strings(["a"]) == xxhash.xxh3_128_hexdigest(b"a\0")


def test_digest_strings_accepts_surrogate_escaped_names():
    name = os.fsdecode(b"caf\xe9")
    assert digest_strings([name]) == xxhash.xxh3_128_hexdigest(b"caf\xe9\0")


def test_symlink_digest_differs_from_a_file_named_like_the_target():
    assert symlink_digest("a") != digest_strings(["a"])
    assert symlink_digest("a") != symlink_digest("b")


# -- trees -------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / "sub" / "deeper" / "c.bin").write_bytes(b"\0\1\2")
    os.symlink("a.txt", root / "link")
    return root


def test_walk_tree_lists_everything_sorted(tree):
    assert walk_tree(str(tree)) == [
        ("a.txt", "file"),
        ("empty", "dir"),
        ("link", "file"),  # a symlink to a file is read as the file it points to
        ("sub", "dir"),
        ("sub/b.txt", "file"),
        ("sub/deeper", "dir"),
        ("sub/deeper/c.bin", "file"),
    ]


def test_hash_tree_is_stable(tree):
    assert hash_tree(str(tree)) == hash_tree(str(tree))
    assert len(hash_tree(str(tree))) == 32


def test_hash_tree_ignores_mtimes_and_other_permissions(tree):
    before = hash_tree(str(tree))
    os.utime(tree / "a.txt", ns=(1_000_000_000, 1_000_000_000))
    os.utime(tree / "sub", ns=(5_000_000_000, 5_000_000_000))
    os.chmod(tree / "sub" / "b.txt", 0o600)
    assert hash_tree(str(tree)) == before


def test_hash_tree_changes_with_content(tree):
    before = hash_tree(str(tree))
    (tree / "sub" / "deeper" / "c.bin").write_bytes(b"\0\1\3")
    assert hash_tree(str(tree)) != before


def test_hash_tree_changes_with_names(tree):
    before = hash_tree(str(tree))
    os.rename(tree / "sub" / "b.txt", tree / "sub" / "B.txt")
    assert hash_tree(str(tree)) != before


def test_hash_tree_changes_with_a_new_empty_dir(tree):
    before = hash_tree(str(tree))
    (tree / "empty" / "more").mkdir()
    assert hash_tree(str(tree)) != before


def test_hash_tree_changes_with_exec_bit(tree):
    before = hash_tree(str(tree))
    os.chmod(tree / "a.txt", 0o755)
    after = hash_tree(str(tree))
    assert after != before
    os.chmod(tree / "a.txt", 0o644)
    assert hash_tree(str(tree)) == before


def test_hash_tree_changes_with_symlink_target(tree):
    before = hash_tree(str(tree))
    os.remove(tree / "link")
    os.symlink("sub/b.txt", tree / "link")
    assert hash_tree(str(tree)) != before


def test_hash_tree_follows_symlinks_out_of_the_tree(tree, tmp_path):
    """A data folder of links into a shared store: the jobs read through the links, so an
    edit where a link points changes the tree's digest (before, only the link's target path
    counted); so does a new file in a linked directory."""
    store = tmp_path / "store"
    (store / "set").mkdir(parents=True)
    (store / "sample.txt").write_text("one")
    (store / "set" / "x.txt").write_text("x")
    os.symlink(store / "sample.txt", tree / "sample.txt")
    os.symlink(store / "set", tree / "set")
    assert ("set/x.txt", "file") in walk_tree(str(tree))
    before = hash_tree(str(tree))
    (store / "sample.txt").write_text("two")
    edited = hash_tree(str(tree))
    assert edited != before
    (store / "set" / "y.txt").write_text("y")
    assert hash_tree(str(tree)) != edited


def test_hash_tree_keeps_links_into_the_tree_around_it_and_broken_as_links(tree, tmp_path):
    """Not followed, known by their target paths: a link to a directory of the tree (its
    content is walked where it lies), to a directory holding the tree (a loop), a broken
    link, and links between two outside directories that point at each other (each directory
    is walked once)."""
    os.symlink("sub", tree / "sub_again")
    os.symlink("..", tree / "up")
    os.symlink("nowhere", tree / "broken")
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    os.symlink(two, one / "to_two")
    os.symlink(one, two / "to_one")
    os.symlink(one, tree / "one")
    kinds = dict(walk_tree(str(tree)))
    assert (kinds["sub_again"], kinds["up"], kinds["broken"]) == ("link", "link", "link")
    assert (kinds["one"], kinds["one/to_two"], kinds["one/to_two/to_one"]) == ("dir", "dir", "link")
    before = hash_tree(str(tree))
    os.remove(tree / "broken")
    os.symlink("elsewhere", tree / "broken")
    assert hash_tree(str(tree)) != before


def test_hash_tree_file_versus_dir_of_same_name(tmp_path):
    one = tmp_path / "one"
    two = tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "x").write_text("")
    (two / "x").mkdir()
    assert hash_tree(str(one)) != hash_tree(str(two))


def test_hash_tree_uses_the_given_file_digest(tree):
    seen = []

    def fake(rel: str, st: os.stat_result) -> str:
        assert st.st_size == os.stat(os.path.join(tree, rel)).st_size  # the walk's stat, through a link
        seen.append(rel.replace("/", os.sep))
        return "0" * 32

    hash_tree(str(tree), fake)
    assert sorted(seen) == [
        "a.txt",
        "link",  # to a.txt: read through the link
        os.path.join("sub", "b.txt"),
        os.path.join("sub", "deeper", "c.bin"),
    ]
    assert hash_tree(str(tree), fake) != hash_tree(str(tree))


def test_empty_trees_are_equal(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert hash_tree(str(tmp_path / "a")) == hash_tree(str(tmp_path / "b"))


def test_hash_tree_with_a_socket_inside(tmp_path, monkeypatch):
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.txt").write_text("a")
    monkeypatch.chdir(root)  # bind a short relative path: AF_UNIX paths are limited in length
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind("s")
        assert len(hash_tree(str(root))) == 32
    finally:
        server.close()


def test_hash_files_in_threads_equals_one_by_one(tmp_path, monkeypatch):
    """Large files are read by several threads; each gets its own digest, in order, and an
    unreadable one gets None instead of failing the others."""
    from weavebuild import hashing

    files = []
    for index in range(20):
        path = tmp_path / f"f{index}"
        path.write_bytes(f"content {index}\n".encode() * (index % 5 + 1))
        files.append((str(path), path.stat().st_size))
    big = tmp_path / "big"
    big.write_bytes(os.urandom(3 * hashing.CHUNK + 5))
    files.append((str(big), big.stat().st_size))
    files.append((str(tmp_path / "missing"), 3))
    monkeypatch.setattr(hashing, "PARALLEL_BYTES", 1 << 20)  # threads for these few MiB
    started = []
    real_thread = threading.Thread

    def counting_thread(*args, **kwargs):
        started.append(1)
        return real_thread(*args, **kwargs)

    monkeypatch.setattr(threading, "Thread", counting_thread)
    before = time.time_ns()
    results = hashing.hash_files(files)
    assert started  # the threaded path ran
    assert [digest for _, digest in results[:-1]] == [hashing.hash_file(path) for path, _ in files[:-1]]
    assert results[-1][1] is None
    assert all(before <= hashed_at <= time.time_ns() for hashed_at, _ in results)
    assert len(set(digest for _, digest in results[:-1])) == len(files) - 1
    # Small files are read in turn by the calling thread: the same digests.
    started.clear()
    assert [digest for _, digest in hashing.hash_files(files[:3])] == [digest for _, digest in results[:3]]
    assert not started


def _set_access_time_an_hour_back(path) -> int:
    stat = path.stat()
    old_access = stat.st_mtime_ns - 3_600_000_000_000
    os.utime(path, ns=(old_access, stat.st_mtime_ns))
    return old_access


def test_hashing_a_small_file_leaves_its_access_time_alone(tmp_path):
    """Reading to hash must not write the file's inode: with relatime, the first read after a
    change would set the access time (a journalled inode write per file on ext4)."""
    control = tmp_path / "control.txt"
    control.write_bytes(b"control\n")
    old_access = _set_access_time_an_hour_back(control)
    control.read_bytes()
    if control.stat().st_atime_ns == old_access:
        pytest.skip("this file system does not update access times on reads (noatime)")
    path = tmp_path / "source.txt"
    path.write_bytes(b"content\n")
    old_access = _set_access_time_an_hour_back(path)
    assert hash_file(str(path), 8) == xxhash.xxh3_128_hexdigest(b"content\n")
    assert path.stat().st_atime_ns == old_access


def test_files_of_another_owner_are_still_read(tmp_path):
    """O_NOATIME is refused (EPERM) for a file the caller does not own, unless privileged:
    such files are read without it. Run in a child that is not privileged (as root: a forked
    child that gives up root first)."""
    shared = tempfile.mkdtemp(prefix="weave-owner-")
    try:
        os.chmod(shared, 0o755)
        foreign = os.path.join(shared, "foreign.txt")
        with open(foreign, "wb") as handle:
            handle.write(b"not mine\n")
        os.chmod(foreign, 0o644)
        if os.geteuid() != 0:
            foreign = next((p for p in ("/etc/passwd", "/etc/hostname") if _readable_and_small(p)), None)
            if foreign is None or os.stat(foreign).st_uid == os.geteuid():
                pytest.skip("no readable file of another owner")
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                os.close(read_fd)
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                with open(foreign, "rb") as handle:
                    expected = xxhash.xxh3_128_hexdigest(handle.read())
                ok = hash_file(foreign, os.stat(foreign).st_size) == expected
                fell_back = not hashing._read_flags & getattr(os, "O_NOATIME", 0)  # refused, then plain
                os.write(write_fd, b"ok" if ok and fell_back else b"mismatch")
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as reader:
            answer = reader.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0 and answer == b"ok"
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _readable_and_small(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.R_OK) and os.path.getsize(path) <= 64 * KIB


def test_hashing_a_large_file_gives_up_once_asked_to_stop(tmp_path):
    """The builder's check (a stop signal came) is asked between the chunks of a large file:
    hashing a 30 GB output held Ctrl-C up for half a minute."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(64 << 20)  # sparse: 64 chunks
    asked = []
    previous = hashing.stop_hashing_when(lambda: asked.append(1) or len(asked) >= 2)
    try:
        with pytest.raises(hashing.Stopped):
            hashing.hash_file(str(big), big.stat().st_size)
        assert len(asked) == 2
        with pytest.raises(hashing.Stopped):  # the threads of hash_files too
            hashing.hash_files([(str(big), big.stat().st_size), (str(big), big.stat().st_size)])
    finally:
        assert hashing.stop_hashing_when(previous) is not None
    assert hashing.hash_file(str(big), big.stat().st_size) == xxhash.xxh3_128_hexdigest(bytes(64 << 20))

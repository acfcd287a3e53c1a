"""Path patterns and globs (paths.py): a `**` glob over a tree with symlink loops."""

from __future__ import annotations

import glob
import os

import pytest

from weavebuild import paths


def loop_tree(root, loops: int) -> None:
    """`data/a.txt`, `data/d/b.txt`, and `loops` links `data/d/up*` -> `..` (back to data/):
    glob.glob walks `data/d/up/d/up/...` until ELOOP, and with two links that is exponential."""
    (root / "data/d").mkdir(parents=True)
    (root / "data/a.txt").write_text("1\n")
    (root / "data/d/b.txt").write_text("2\n")
    for number in range(loops):
        os.symlink("..", root / "data/d" / ("up" if number == 0 else f"up{number + 1}"))


# (The loops below are ones glob.glob walks only until ELOOP, about 40 levels down, so that a
# regression fails here rather than hangs; two loops in one tree hang it: see the build tests.)


def test_a_recursive_glob_walks_a_symlink_loop_once(tmp_path):
    loop_tree(tmp_path, 1)
    root = str(tmp_path)
    assert paths.expand_glob(root, "data/**/*.txt") == ["data/a.txt", "data/d/b.txt"]
    # A looping link is an entry of its directory, only not a way down: `**` lists it as
    # `*` would, and a pattern that names it goes through it.
    assert paths.expand_glob(root, "data/**") == ["data", "data/a.txt", "data/d", "data/d/b.txt", "data/d/up"]
    assert paths.expand_glob(root, "data/**/up/*.txt") == ["data/d/up/a.txt"]
    assert paths.expand_glob(root, "data/d/up/**/*.txt") == ["data/d/up/a.txt", "data/d/up/d/b.txt"]
    assert paths.expand_glob(root, "data/*/up/*.txt") == ["data/d/up/a.txt"]


@pytest.mark.parametrize("target", [".", "../.."], ids=["itself", "above-the-start"])
def test_a_recursive_glob_does_not_enter_a_link_to_a_directory_holding_it(tmp_path, target):
    loop_tree(tmp_path, 0)
    os.symlink(target, tmp_path / "data/d/link")
    assert paths.expand_glob(str(tmp_path), "data/**/*.txt") == ["data/a.txt", "data/d/b.txt"]


def test_a_recursive_glob_stops_at_links_that_loop_between_siblings(tmp_path):
    """a/to_b -> b and b/to_a -> a: neither points above itself, but each leads back to
    where the walk came from once the other was followed."""
    (tmp_path / "data/a").mkdir(parents=True)
    (tmp_path / "data/b").mkdir()
    (tmp_path / "data/a/x.txt").write_text("x\n")
    (tmp_path / "data/b/y.txt").write_text("y\n")
    os.symlink("../b", tmp_path / "data/a/to_b")
    os.symlink("../a", tmp_path / "data/b/to_a")
    assert paths.expand_glob(str(tmp_path), "data/**/*.txt") == [
        "data/a/to_b/y.txt",
        "data/a/x.txt",
        "data/b/to_a/x.txt",
        "data/b/y.txt",
    ]


def test_a_recursive_glob_finds_what_glob_finds_on_a_tree_without_loops(tmp_path):
    """Ordinary links to directories are followed as before (an alias beside its target,
    one into a shared store outside the project, one below itself), hidden names are left
    out, broken links and links to themselves kept as glob keeps them: the same list,
    duplicates included, for every pattern."""
    store = tmp_path / "store"
    (store / "set/deep").mkdir(parents=True)
    (store / "set/s.txt").write_text("s\n")
    (store / "set/deep/t.txt").write_text("t\n")
    root = tmp_path / "proj"
    for directory in ("data/d/e", "data/.hidden", "data/f", "other/g"):
        (root / directory).mkdir(parents=True)
    for name in ("data/a.txt", "data/d/b.txt", "data/d/e/c.txt", "data/.hidden/h.txt", "data/.h.txt", "data/f/x.csv", "other/g/o.txt"):
        (root / name).write_text(name)
    os.symlink("d", root / "data/alias")
    os.symlink(str(store / "set"), root / "data/store")
    os.symlink("e", root / "data/d/below")
    os.symlink("nowhere", root / "data/broken.txt")
    os.symlink("selfish", root / "data/d/selfish")  # ELOOP
    patterns = [
        "data/**/*.txt",
        "data/**",
        "data/**/",
        "data/**/*",
        "data/**/**/*.txt",
        "data/*/**/*.txt",
        "data/**/e/*.txt",
        "data/**/.*",
        "**/*.txt",
        "*/**/*.csv",
        "data/**/*.none",
        "data/d**/*.txt",
        str(root / "data/**/*.txt"),
    ]
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else os.path.join(str(root), pattern)
        found = glob.glob(full, recursive=True)
        if os.path.isabs(pattern):
            expected = sorted(paths.normalize(m) for m in found)
        else:
            expected = sorted(paths.normalize(m[len(str(root)) + 1 :]) for m in found)
        assert paths.expand_glob(str(root), pattern) == expected, pattern
    # `**` in what is no directory matches nothing (glob.glob before Python 3.13 gave the
    # path itself: `data/nothing/**` was `data/nothing`, a missing input).
    assert paths.expand_glob(str(root), "data/nothing/**") == []
    assert paths.expand_glob(str(root), "data/a.txt/**") == []
    assert paths.expand_glob(str(root), "data/*.txt/**/*") == []


LOOP_WEAVEFILES = {
    "input glob": """
        [rules.a]
        inputs  = ["data/**/*.txt"]
        outputs = ["o.txt"]
        cmd     = "printf '%s\\n' {inputs} > {outputs}"
        """,
    "foreach .+": """
        [rules.a]
        inputs  = ["data/{name}.txt"]
        outputs = ["o.txt"]
        foreach = { name = "data/{name}.txt" }
        wildcards = { name = ".+" }
        cmd     = "printf '%s\\n' {inputs} > {outputs}"
        """,
}


@pytest.mark.parametrize("loops", [1, 2])
@pytest.mark.parametrize("kind", sorted(LOOP_WEAVEFILES))
def test_a_build_over_a_tree_with_symlink_loops_reads_each_file_once(project, kind, loops):
    """`weave build` with a `**` input glob, or a `foreach` whose wildcard may span
    directories (scanned as `data/**/*`), over a tree with links back to data/: before, one
    loop gave 82 inputs for 2 files (data/d/up/d/up/.../a.txt, until ELOOP) and two made
    weave spin forever."""
    loop_tree(project.root, loops)
    project.weavefile(LOOP_WEAVEFILES[kind])
    result = project.run("build", timeout=30)
    assert result.rc == 0, result
    assert project.read("o.txt") == "data/a.txt\ndata/d/b.txt\n"
    again = project.run("build", timeout=30)
    assert again.rc == 0 and "nothing to do" in again.out, again

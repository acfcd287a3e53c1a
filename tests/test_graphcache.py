"""The graph cache: used only while provably current; never changes what a build does."""

from __future__ import annotations

import os
import shutil
import time

from conftest import assert_user_error
from test_build import make_pipeline
from weavebuild import Project


def test_cached_weavefile_is_not_parsed_for_a_noop(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    loaded = Project.load(str(project.root))
    assert loaded._manifest is None  # known-good bytes: parsing deferred
    result = loaded.build()
    assert len(result.ran) == 0 and loaded._manifest is None
    project.weavefile(project.read("Weavefile").replace("epochs = 3", "epochs = 4"))
    assert Project.load(str(project.root))._manifest is not None  # new bytes: parsed at once


def test_commands_without_a_build_take_the_graph_from_the_cache_too(project):
    # `weave clean -n`, `why`, and each watch cycle ask for the graph alone: a 100k-job
    # project re-parsed and re-resolved its Weavefile for them every time (~9 s).
    make_pipeline(project)
    assert project.run("build").rc == 0
    loaded = Project.load(str(project.root))
    graph = loaded.graph()
    assert loaded._manifest is None and "clean_sample[sample=c]" in [job.key for job in graph.jobs]
    cleaning = Project.load(str(project.root))
    assert "merged.txt" in cleaning.clean(dry_run=True) and cleaning._manifest is None
    (project.root / "raw/c.txt").unlink()  # a question the resolution asked gets a new answer
    again = Project.load(str(project.root))
    assert "clean_sample[sample=c]" not in [job.key for job in again.graph().jobs]
    assert again._manifest is not None  # resolved anew


def test_deleted_source_still_reported_as_user_error(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    (project.root / "data.csv").unlink()
    assert_user_error(project.run("build"), "missing source 'data.csv' needed by rule 'train'")


def test_removed_foreach_file_drops_its_job(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    (project.root / "raw/c.txt").unlink()
    assert project.run("build").rc == 0
    assert project.read("merged.txt") == "HELLO A\nHELLO B\n"


def test_corrupt_cache_is_ignored(project):
    make_pipeline(project)
    assert project.run("build").rc == 0
    (project.root / ".weave/graph.cache").write_bytes(b"\x00garbage")
    result = project.run("build")
    assert result.rc == 0 and "nothing to do" in result.out, result
    project.write("raw/a.txt", "new\n")
    project.clear_runs()
    assert project.run("build").rc == 0
    assert project.runs_log() == ["clean", "merge", "count"]


def test_a_damaged_cache_that_still_decodes_costs_a_resolution_never_a_wrong_command(project):
    """Bytes changed inside a command in the cache (the same length: it still decodes) must
    not run that command, and above all not record its output under the signature of the
    command the Weavefile holds (which deleting the cache then would not undo)."""
    project.write("s.txt", "abc\n")
    project.weavefile(
        """
        [rules.up]
        inputs = ["s.txt"]
        outputs = ["up.txt"]
        cmd = "tr a-z A-Z < s.txt > up.txt"
        """
    )
    assert project.run("build").rc == 0
    cache = project.root / ".weave/graph.cache"
    blob = cache.read_bytes()
    assert b"A-Z" in blob
    cache.write_bytes(blob.replace(b"A-Z", b"A-B"))
    project.write("s.txt", "xyz\n")
    assert project.run("build").rc == 0
    assert project.read("up.txt") == "XYZ\n"


def test_targets_have_their_own_entries(project):
    make_pipeline(project)
    assert project.run("build", "merged.txt").rc == 0
    assert not project.exists("count.txt")
    assert project.run("build", "count.txt").rc == 0
    assert project.read("count.txt") == "3\n"
    assert_user_error(project.run("build", "nope.txt"), "no rule makes 'nope.txt'")


def _settled(directory) -> None:
    """Wait until `directory` has been left alone long enough for its stat to vouch for its
    names (paths.LISTING_SETTLED_NS), the way a source directory is between edits."""
    from weavebuild import paths

    st = os.stat(directory)
    wait_ns = max(st.st_mtime_ns, st.st_ctime_ns) + paths.LISTING_SETTLED_NS - time.time_ns()
    if wait_ns > 0:
        time.sleep(wait_ns / 1e9 + 0.05)


def _count_scans(monkeypatch) -> list:
    from weavebuild import paths

    scans = []
    real_expand = paths.expand_glob

    def counting_expand(root, pattern):
        scans.append(pattern)
        return real_expand(root, pattern)

    monkeypatch.setattr(paths, "expand_glob", counting_expand)
    return scans


def test_a_settled_directory_is_not_listed_again(project, monkeypatch):
    """A foreach scan whose directory kept its stat since a listing with the same answer is
    not run again; a file added there is seen at once."""
    make_pipeline(project)
    assert project.run("build").rc == 0
    _settled(project.root / "raw")
    assert "nothing to do" in project.run("build").out  # lists raw/ once more, records its stat
    scans = _count_scans(monkeypatch)
    result = Project.load(str(project.root)).build()
    assert len(result.ran) == 0
    assert scans == []  # the directory's stat stood for its names
    project.write("raw/d.txt", "hello d\n")
    project.clear_runs()
    result = Project.load(str(project.root)).build()
    assert [pattern for pattern in scans if pattern.startswith("raw/")]  # its stat moved: listed
    assert sorted(project.runs_log()) == ["clean", "count", "merge"]
    assert project.read("merged.txt") == "HELLO A\nHELLO B\nHELLO C\nHELLO D\n"


def test_the_scan_of_a_resolution_vouches_for_the_next_check(project, monkeypatch):
    """A directory already settled when the graph is resolved: its stat, taken before that
    scan, spares the very next build a scan."""
    make_pipeline(project)
    _settled(project.root / "raw")
    assert project.run("build").rc == 0
    scans = _count_scans(monkeypatch)
    assert len(Project.load(str(project.root)).build().ran) == 0
    assert scans == []


def test_a_recently_changed_directory_is_always_listed(project, monkeypatch):
    """Within the settling window a later change could leave the directory's stat as it was:
    no stat is recorded then, and every build lists the directory."""
    from weavebuild import graphcache

    make_pipeline(project)
    assert project.run("build").rc == 0
    (project.root / graphcache.LISTINGS_NAME).unlink(missing_ok=True)
    monkeypatch.setattr("weavebuild.paths.LISTING_SETTLED_NS", 10**18)  # never settled
    scans = _count_scans(monkeypatch)
    for _ in range(2):
        scans.clear()
        assert len(Project.load(str(project.root)).build().ran) == 0
        assert [pattern for pattern in scans if pattern.startswith("raw/")]  # listed each time
    assert not (project.root / graphcache.LISTINGS_NAME).exists()


def test_a_copied_project_lists_its_own_directories(project, tmp_path):
    """Recorded directory stats are relative to the project: a copy (other inodes) whose
    sources differ is listed, not vouched for by the original's stats."""
    make_pipeline(project)
    assert project.run("build").rc == 0
    _settled(project.root / "raw")
    assert project.run("build").rc == 0  # records raw/'s stat
    copy = tmp_path / "copy"
    shutil.copytree(project.root, copy, copy_function=shutil.copy2)
    (copy / "raw" / "e.txt").write_text("hello e\n")
    os.utime(copy / "raw", ns=(os.stat(project.root / "raw").st_atime_ns, os.stat(project.root / "raw").st_mtime_ns))
    copied = Project.load(str(copy))
    copied.build()
    assert (copy / "merged.txt").read_text() == "HELLO A\nHELLO B\nHELLO C\nHELLO E\n"


def test_a_damaged_listings_file_only_costs_a_scan(project):
    import marshal

    from weavebuild import graphcache

    make_pipeline(project)
    _settled(project.root / "raw")
    assert project.run("build").rc == 0
    path = project.root / graphcache.LISTINGS_NAME
    recorded = marshal.loads(path.read_bytes())
    assert recorded  # the resolution's scan of raw/ was recorded
    for damaged in ({q: ((5, 1, 2, 3), v[1]) for q, v in recorded.items()}, {q: ("raw",) for q in recorded}):
        path.write_bytes(marshal.dumps(damaged))
        result = project.run("build")
        assert result.rc == 0 and "nothing to do" in result.out, result
    path.write_bytes(b"\x00not marshal")
    project.write("raw/d.txt", "hello d\n")
    result = project.run("build")
    assert result.rc == 0 and "[1/3] clean_sample clean/d.txt" in result.out, result


DERIVABLE = """
    default = ["reports/all.txt"]

    [vars]
    samples = ["a", "b", "c"]

    [rules.prep]
    inputs = ["raw/{s}.txt", "config.toml"]
    outputs = ["work/{s}.txt"]
    foreach = { s = "{vars.samples}" }
    cmd = "cat {inputs} > {outputs}"

    [rules.split]
    inputs = ["work/a.txt"]
    outputs = ["split/x.txt", "split/y.txt"]
    cmd = "cp {inputs} split/x.txt && cp {inputs} split/y.txt"

    [rules.tree]
    inputs = ["work/b.txt", "work/c.txt"]
    outputs = ["tree/"]
    cmd = "mkdir -p tree/in && cat {inputs} > tree/in/all.txt"

    [rules.read_tree]
    inputs = ["tree/in/all.txt", "split/y.txt", "work/a.txt"]
    outputs = ["out/read.txt"]
    cmd = "cat {inputs} > {outputs}"

    [rules.globbed]
    inputs = ["raw/*.txt", "split/x.txt"]
    outputs = ["out/globbed.txt"]
    cmd = "cat {inputs} > {outputs}"

    [rules.fan_in]
    inputs = ["out/read.txt", "out/globbed.txt", "work/{s}.txt", "EXTERNAL"]
    outputs = ["reports/all.txt"]
    foreach = { s = "{vars.samples}" }
    cmd = "cat {inputs} > {outputs}"
"""


def _shape(graph):
    """What a graph says, in order: jobs (key, deps), targets, sources, wanted, requested."""
    return (
        [(job.key, [dep.key for dep in job.deps], job.cmd) for job in graph.jobs],
        [job.key for job in graph.targets],
        list(graph.sources),
        # (readers in graph order, as every graph loaded from the cache lists them)
        {source: sorted(job.key for job in readers) for source, readers in graph.sources.items()},
        list(graph.wanted),
        list(graph.requested),
        list(graph.inside),
        list(graph.first),
    )


def test_a_target_graph_is_cut_out_of_the_cached_graph_as_resolution_gives_it(project, tmp_path):
    """`weave build some/output` in a project whose defaults' graph is cached: the targets'
    graph is cut out of it (no parse, no resolution: 7 s at 100k rules), and is exactly the
    graph resolving them gives, for every output alone and for several together."""
    from weavebuild import graphcache
    from weavebuild.graph import Resolver

    external = tmp_path / "external.txt"
    external.write_text("outside\n")
    project.weavefile(DERIVABLE.replace("EXTERNAL", str(external)))
    project.write("config.toml", "x = 1\n")
    for sample in "abc":
        project.write(f"raw/{sample}.txt", f"{sample}\n")
    assert project.run("build").rc == 0
    root = str(project.root)
    fresh_project = Project.load(root)
    manifest = fresh_project.manifest
    outputs = [o for job in Resolver(manifest).resolve([]).jobs for o in job.outputs]
    target_sets = [[o] for o in outputs if "/" in o] + [
        ["reports/all.txt", "split/y.txt"],
        ["out/read.txt", "./work/a.txt", "out/read.txt"],
        ["tree/"],
    ]
    for targets in target_sets:
        loaded = Project.load(root)
        derived = graphcache.derive(root, loaded.digest, targets, loaded.path, lambda source: True)
        assert derived is not None, targets
        expected = Resolver(manifest).resolve(targets)
        assert _shape(derived) == _shape(expected), targets
        assert loaded._manifest is None  # neither parsed nor resolved
        # Not saved: many targets would push the defaults' graph out of the cache.
        assert graphcache.load(root, loaded.digest, targets, loaded.path, lambda source: True) is None
    # The build of one target through it runs just what that target needs.
    project.write("raw/b.txt", "b2\n")
    result = project.run("build", "-v", "out/read.txt")
    assert result.rc == 0 and "prep work/b.txt" in result.out and "fan_in" not in result.out, result.out
    assert project.read("out/read.txt").startswith("b2\nx = 1\nc\n")


def test_no_graph_is_cut_where_resolution_may_differ(project):
    """Pattern rules (the rule a path gets may depend on the chain that asked for it), a rule's
    name (not a path), a path no cached job makes, a stale cache: resolved as before."""
    from weavebuild import graphcache

    project.weavefile(
        """
        default = ["all"]

        [rules.copy]
        inputs = ["src/{n}.txt"]
        outputs = ["out/{n}.txt"]
        cmd = "cp {inputs} {outputs}"

        [rules.all]
        inputs = ["out/1.txt", "out/2.txt"]
        """
    )
    project.write("src/1.txt", "1\n")
    project.write("src/2.txt", "2\n")
    assert project.run("build").rc == 0
    root = str(project.root)
    loaded = Project.load(root)
    assert graphcache.derive(root, loaded.digest, ["out/1.txt"], loaded.path, lambda s: True) is None
    project.weavefile(DERIVABLE.replace("EXTERNAL", "config.toml"))
    project.write("config.toml", "x = 1\n")
    for sample in "abc":
        project.write(f"raw/{sample}.txt", f"{sample}\n")
    assert project.run("build").rc == 0
    loaded = Project.load(root)
    for targets in (["prep"], ["tree"], ["raw/a.txt"], ["out"], ["nothing/here.txt"], ["/etc/passwd"], ["../x/y"]):
        assert graphcache.derive(root, loaded.digest, targets, loaded.path, lambda s: True) is None, targets
    project.write("raw/d.txt", "d\n")  # the glob of `globbed` now answers otherwise
    assert graphcache.derive(root, loaded.digest, ["out/globbed.txt"], loaded.path, lambda s: True) is None
    assert "raw/d.txt" in project.run("plan", "-v", "out/globbed.txt").out


def test_a_digests_index_of_random_bytes_is_made_again(project):
    """`.weave/graph.cache.digests` overwritten with bytes that are no text: the commands
    work as without it, and the index is written again (it was an internal error, on every
    command until the file was deleted by hand)."""
    make_pipeline(project)
    assert project.run("build").rc == 0
    index = project.root / ".weave/graph.cache.digests"
    index.write_bytes(bytes(range(128, 256)) * 20)
    for command in (["build"], ["plan"], ["status"]):
        result = project.run(*command)
        assert result.rc == 0 and "internal error" not in result.err, (command, result)
    assert index.read_text(encoding="ascii").split()


def test_hundreds_of_globs_are_all_vouched_for_by_their_directory(project):
    """300 rules, each globbing its own names in one directory: every answer keeps its
    directory stat, so a no-op with the graph cache re-lists nothing. Past 256 questions the
    listings file used to drop half of them, and every build listed the directory hundreds
    of times again (1,600 globs: a 17 s no-op). Every question is still checked: a new file
    matching one glob reruns its rule."""
    import marshal

    from weavebuild import graphcache

    project.weavefile(
        "default = [" + ", ".join(f'"out/{k}.txt"' for k in range(300)) + "]\n"
        + "".join(
            f'[rules.r{k}]\ninputs = ["s/k{k}_*.txt"]\noutputs = ["out/{k}.txt"]\ncmd = "cat {{inputs}} > {{outputs}}"\n'
            for k in range(300)
        )
    )
    for k in range(300):
        project.write(f"s/k{k}_a.txt", f"{k}\n")
    _settled(project.root / "s")
    assert project.run("build").rc == 0
    recorded = marshal.loads((project.root / graphcache.LISTINGS_NAME).read_bytes())
    assert len(recorded) >= 300, len(recorded)
    project.write("s/k7_b.txt", "new\n")
    result = project.run("build")
    assert result.rc == 0 and result.started == ["r7 out/7.txt"], result
    assert project.read("out/7.txt") == "7\nnew\n"


def test_a_glob_answered_from_a_kept_listing_matches_glob_itself(tmp_path):
    """expand_glob with a listing kept from an earlier pattern in the same directory (one
    listing for many rules' globs) gives exactly what glob.glob gives: hidden names only for
    a pattern starting with a dot, directories and broken symlinks included, escaped glob
    characters literal, sorted."""
    from weavebuild import paths

    directory = tmp_path / "s"
    directory.mkdir()
    for name in ("a.txt", "b.txt", ".hidden.txt", "a*b.txt", "ab.csv", "x1", "x22"):
        (directory / name).write_text(name)
    (directory / "sub.txt").mkdir()
    os.symlink("nowhere", directory / "broken.txt")
    past = time.time_ns() - 10 * paths.LISTING_SETTLED_NS
    os.utime(directory, ns=(past, past))
    while time.time_ns() - os.stat(directory).st_ctime_ns < paths.LISTING_SETTLED_NS:
        time.sleep(0.1)  # (a listing vouches only for a directory left alone a while)
    names_in: dict = {}
    for pattern in ("s/*.txt", "s/.*", "s/a[*]b*", "s/x?", "s/*", "s/nothing*", "*.txt"):
        listing = paths.listing_of(str(tmp_path), pattern)
        assert listing is not None or not pattern.startswith("s/")
        kept = paths.expand_glob(str(tmp_path), pattern, listing, names_in)
        assert kept == paths.expand_glob(str(tmp_path), pattern), pattern
    assert [key[0] for key in names_in].count("s") == 1  # one listing of s/ served them all

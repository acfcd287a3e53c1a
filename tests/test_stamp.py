"""The no-op stamp: a proven no-op skips the graph; anything that could matter voids it."""

from __future__ import annotations

import os

from conftest import assert_user_error, wait_past_racy_window
from test_build import PIPELINE
from test_commands import MERGE_NEEDS_EXTRA
from weavebuild import Project


def make_flat(project):
    project.weavefile(PIPELINE.replace('outputs = ["models/best/"]', 'outputs = ["models/best.txt"]').replace(
        "mkdir -p {outputs[0]}; echo epochs={vars.epochs} > {outputs[0]}/model.txt; cp {inputs.data} {outputs[0]}/data.csv",
        "echo epochs={vars.epochs} > {outputs[0]}",
    ).replace('inputs = ["count.txt", "models/best/"]', 'inputs = ["count.txt", "models/best.txt"]'))
    for sample in "abc":
        project.write(f"raw/{sample}.txt", f"hello {sample}\n")
    project.write("data.csv", "x,y\n")


def fast_path_used(root) -> bool:
    result = Project.load(str(root)).build()
    assert not result.ran
    return all(item.job is None for item in result.results.values())


def test_noop_is_proven_by_stamp(project):
    make_flat(project)
    assert project.run("build").rc == 0
    assert fast_path_used(project.root)


def test_touch_is_a_proven_noop_and_restamps(project):
    make_flat(project)
    assert project.run("build").rc == 0
    os.utime(project.root / "raw/a.txt", ns=(1, 1))
    (project.root / "data.csv").write_text("x,y\n")  # identical rewrite...
    os.utime(project.root / "data.csv", ns=(2, 2))  # ...dated outside the racy window
    assert fast_path_used(project.root)  # same sizes: re-hashed, same content, nothing to do
    from weavebuild import stamp
    from weavebuild.store import Store

    loaded = Project.load(str(project.root))
    store = Store.open(str(project.root))
    try:
        checked = stamp.check(store, str(project.root), stamp.key(loaded.digest, ()))
    finally:
        store.close()
    assert checked is not None and checked.noop  # restamped: the touched files are not re-read
    assert "raw/a.txt" not in checked.rows and "data.csv" not in checked.rows
    # The digest cache was not rewritten for them (the stamp holds their new stats): a build
    # that cannot use the stamp re-hashes them once, finds the same content, and runs nothing.
    project.weavefile(project.read("Weavefile") + "\n# an edit voids the stamp\n")
    project.clear_runs()
    result = Project.load(str(project.root)).build()
    assert result.ran == [] and project.runs_log() == []


def test_partial_check_after_one_change(project):
    make_flat(project)
    assert project.run("build").rc == 0
    project.write("raw/c.txt", "changed\n")
    project.clear_runs()
    result = Project.load(str(project.root)).build()
    # count reruns (its input merged.txt changed), and its unchanged output cuts off nothing more.
    assert sorted(r.job.key for r in result.ran) == ["clean_sample[sample=c]", "count", "merge"]
    assert project.runs_log() == ["clean", "merge", "count"]
    assert fast_path_used(project.root)


def test_edits_and_clean_void_stamp(project):
    make_flat(project)
    assert project.run("build").rc == 0
    project.write("raw/b.txt", "changed\n")
    project.clear_runs()
    assert project.run("build").rc == 0
    assert project.runs_log() == ["clean", "merge", "count"]
    assert project.run("clean", "count.txt").rc == 0
    assert project.run("build").rc == 0
    assert "count" in project.runs_log()


def test_deleted_output_and_removed_store(project):
    make_flat(project)
    assert project.run("build").rc == 0
    (project.root / "merged.txt").unlink()
    project.clear_runs()
    assert project.run("build").rc == 0
    assert project.runs_log() == ["merge"]
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        path = project.root / ".weave" / name
        if path.exists():
            path.unlink()
    project.clear_runs()
    assert project.run("build").rc == 0
    assert len(project.runs_log()) == 6  # no records: everything reruns, never "up to date"


def test_force_ignores_stamp(project):
    make_flat(project)
    assert project.run("build").rc == 0
    project.clear_runs()
    assert project.run("build", "-B", "count.txt").rc == 0
    assert project.runs_log() == ["count"]


def test_directory_outputs_are_stamped_and_checked(project):
    from test_build import make_pipeline

    make_pipeline(project)  # train makes the directory output models/best/
    assert project.run("build").rc == 0
    wait_past_racy_window(project.root)  # (a build within 50 ms of the writes stamps nothing racy)
    assert project.run("build").rc == 0  # settles anything racy; stamps
    os.utime(project.root / "models/best", ns=(3, 3))
    os.utime(project.root / "models/best/model.txt", ns=(3, 3))
    os.utime(project.root / "models", ns=(3, 3))
    assert project.run("build").rc == 0
    assert fast_path_used(project.root)
    project.write("models/best/extra.txt", "new file in the output\n")
    project.clear_runs()
    result = project.run("build")
    assert result.rc == 0 and project.runs_log() == ["train"], result
    assert not project.exists("models/best/extra.txt")



def test_hand_edit_inside_a_directory_output_read_by_another_job(project):
    """A file inside a directory output that another job reads is edited by hand after a
    no-op: the directory's job reruns (its output is modified) and restores it, and the
    reader is cut off; the edited content is never trusted. (The stamp once reached only the
    reader, whose own path the file is, and left the directory's job up to date.)"""
    project.weavefile(
        """
        default = ["all"]
        [rules.all]
        inputs = ["d/", "e.txt"]
        [rules.d]
        inputs = ["a.txt"]
        outputs = ["d/"]
        cmd = "mkdir -p {outputs[0]}; cat {inputs} > {outputs[0]}/x.txt"
        [rules.e]
        inputs = ["d/x.txt"]
        outputs = ["e.txt"]
        cmd = "cat {inputs} > {outputs}"
        """
    )
    project.write("a.txt", "hello\n")
    assert project.run("build").rc == 0
    wait_past_racy_window(project.root)  # (else the next build may find the outputs racy)
    assert project.run("build").rc == 0  # stamps
    assert fast_path_used(project.root)
    with open(project.root / "d/x.txt", "a") as handle:
        handle.write("junk\n")
    result = project.run("build")
    assert result.rc == 0 and result.started == ["d d/"], result
    assert project.read("d/x.txt") == "hello\n" and project.read("e.txt") == "hello\n"
    assert "nothing to do" in project.run("build").out

def test_a_file_removed_from_a_directory_input_during_the_build_is_not_stamped_away(project):
    """Job `a` reads directory `samples/` and is decided up to date; then (a job does it here;
    in the wild, a user cleaning a data folder while a long job runs) a file is deleted from
    it. The stamp must vouch for the tree as the build read it: the next build reruns `a`.
    The stamp used to list the tree again at the end, pairing the new listing (and the
    directory's new stat) with the records' old digest, and every later build said 'nothing
    to do' with a.out still listing the deleted file. The directory input is stamped (the
    fast path) once it is built as it is."""
    weavefile = """
        default = ["a.out", "edit.done"]
        [rules.a]
        inputs  = ["samples/"]
        outputs = ["a.out"]
        cmd     = "ls samples > {outputs}"
        [rules.edit]
        inputs  = ["trigger.txt"]
        outputs = ["edit.done"]
        # the sleep: the directory's new mtime leaves the racy window before the build ends
        cmd     = "if grep -q go trigger.txt; then rm samples/x.txt; sleep 0.2; fi; cp trigger.txt edit.done"
        """
    project.weavefile(weavefile)
    project.write("samples/x.txt", "x\n")
    project.write("samples/deeper/y.txt", "y\n")
    project.write("trigger.txt", "no\n")
    assert project.run("build").rc == 0
    assert project.read("a.out") == "deeper\nx.txt\n"
    project.write("trigger.txt", "go\n")
    project.weavefile(weavefile + "# a comment: a new Weavefile digest, so no stamp to start from\n")
    second = project.run("build")
    assert second.rc == 0 and second.started == ["edit edit.done"], second
    third = project.run("build")
    assert third.rc == 0 and third.started == ["a a.out"], third
    assert project.read("a.out") == "deeper\n"
    wait_past_racy_window(project.root)  # (a build within 50 ms of the writes stamps nothing racy)
    assert project.run("build").started == []
    assert fast_path_used(project.root)
    project.write("samples/deeper/y.txt", "changed\n")  # a file in a subdirectory: seen too
    assert project.run("build").started == ["a a.out"]


def test_why_of_a_stamped_output_answers_from_the_stamp(project):
    """`weave why OUT` after a no-op build answers from the stamp of the default targets (or of
    OUT itself), without loading the graph (at 50k jobs: 3 s -> the no-op's 0.6 s); anything
    the stamp cannot prove (a source, a rule name, a changed input upstream) takes the full
    check, which tells why."""
    make_flat(project)
    assert project.run("build").rc == 0
    wait_past_racy_window(project.root)  # (a build within 50 ms of the writes stamps nothing racy)
    assert project.run("build").rc == 0  # settles anything racy; stamps
    loaded = Project.load(str(project.root))
    assert loaded.proven_made_up_to_date("count.txt")
    assert not loaded.proven_made_up_to_date("raw/a.txt")  # a source
    assert not loaded.proven_made_up_to_date("count")  # a rule name
    result = project.run("why", "count.txt")
    assert result.rc == 0 and result.out == "count.txt is up to date: the recorded signature and output digests match\n", result
    project.write("raw/a.txt", "changed\n")
    assert not Project.load(str(project.root)).proven_made_up_to_date("count.txt")
    result = project.run("why", "count.txt")
    assert result.rc == 0 and "raw/a.txt" in result.out and "up to date" not in result.out.splitlines()[0], result


def test_a_chmod_inside_a_stamped_tree_is_a_change(project):
    """The executable bit is part of a directory tree's digest. A chmod changes a file's ctime
    alone, and the stamp's check found the same bytes and said 'nothing to do' (and `why`
    'up to date'), while the full check saw the tree changed (found by an outside tester).
    A file in a stamped tree that moved is a change now, for a directory input and a
    directory output alike."""
    project.weavefile(
        """
        default = ["out.txt", "d/"]
        [rules.list]
        inputs = ["data/"]
        outputs = ["out.txt"]
        cmd = "ls -l data | cut -c1-10 > out.txt"
        [rules.d]
        inputs = ["src.txt"]
        outputs = ["d/"]
        cmd = "mkdir -p d/sub && cp src.txt d/sub/f"
        """
    )
    project.write("data/a", "a\n")
    project.write("src.txt", "s\n")
    assert project.run("build").rc == 0
    wait_past_racy_window(project.root)  # (a build within 50 ms of the writes stamps nothing racy)
    assert project.run("build").started == []
    assert fast_path_used(project.root)
    os.chmod(project.root / "data/a", 0o755)
    why = project.run("why", "out.txt")
    assert why.rc == 0 and "input changed: data" in why.out, why
    result = project.run("build")
    assert result.started == ["list out.txt"] and "-rwx" in project.read("out.txt"), result
    assert project.run("build").started == []
    os.chmod(project.root / "d/sub/f", 0o755)  # an output made executable by hand
    result = project.run("build")
    assert result.started == ["d d/"], result
    assert not os.access(project.root / "d/sub/f", os.X_OK)


def test_racy_entries_are_verified_by_content(project):
    """A file hashed within its timestamp window is stamped as racy: an equal fingerprint
    proves nothing, so the check re-reads it and sees a same-size rewrite."""
    from weavebuild import stamp
    from weavebuild.filestate import FileState
    from weavebuild.hashing import digest_bytes
    from weavebuild.store import Store

    make_flat(project)
    assert project.run("build").rc == 0
    loaded = Project.load(str(project.root))
    store = Store.open(str(project.root))
    try:
        files = FileState(str(project.root), store.load_files())
        graph = loaded.graph((), files)
        for job in graph.jobs:
            for path in job.inputs + job.outputs:
                files.digest(path)
        # Pretend raw/a.txt was hashed in the same tick as its last write, with other content.
        st = os.stat(project.root / "raw/a.txt")
        old = digest_bytes(b"hello a\n")
        files.cache["raw/a.txt"] = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, old, st.st_mtime_ns)
        key = stamp.key(loaded.digest, ())
        stamp.save(store, str(project.root), key, stamp.make(graph, files))
        checked = stamp.check(store, str(project.root), key)
        assert checked is not None and checked.noop  # content still equals the digest
        project.write("raw/a.txt", "HELLO a\n")  # same size, different content
        st = os.stat(project.root / "raw/a.txt")
        files.cache["raw/a.txt"] = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, old, st.st_mtime_ns)
        stamp.save(store, str(project.root), key, stamp.make(graph, files))  # fingerprint now equal, digest stale
        checked = stamp.check(store, str(project.root), key)
        assert checked is not None and not checked.noop
        assert "raw/a.txt" not in checked.unchanged
    finally:
        store.close()


WIDE = """
default = ["total.txt"]

[rules.copy]
foreach = { n = ["1", "2", "3", "4", "5", "6"] }
inputs = ["src/{n}.txt"]
outputs = ["out/{n}.txt"]
cmd = "echo copy >> runs.log; if grep -q FAIL {inputs}; then exit 3; fi; tr a-z A-Z < {inputs} > {outputs}"

[rules.size]
inputs = ["out/{n}.txt"]
outputs = ["size/{n}.txt"]
cmd = "echo size >> runs.log; wc -c < {inputs} > {outputs}"

[rules.total]
inputs = ["size/1.txt", "size/2.txt", "size/3.txt", "size/4.txt", "size/5.txt", "size/6.txt"]
outputs = ["total.txt"]
cmd = "echo total >> runs.log; cat {inputs} > {outputs}"
"""


def make_wide(project):
    project.weavefile(WIDE)
    for n in range(1, 7):
        project.write(f"src/{n}.txt", f"sample {n}\n")
    assert project.run("build").rc == 0
    wait_past_racy_window(project.root)  # (a build within 50 ms of the writes stamps nothing racy)
    assert project.run("build").rc == 0  # settles racy files; stamps
    project.clear_runs()


def loaded_jobs(result):
    return sorted(r.key for r in result.results.values() if r.job is not None)


def test_partial_build_loads_only_the_jobs_a_change_reaches(project):
    make_wide(project)
    project.write("src/3.txt", "sample 3, edited\n")
    result = Project.load(str(project.root)).build()
    assert loaded_jobs(result) == ["copy[n=3]", "size[n=3]", "total"]
    assert sorted(r.key for r in result.ran) == ["copy[n=3]", "size[n=3]", "total"]
    assert len(result.results) == 13 and len(result.up_to_date) == 10
    assert project.read("out/3.txt") == "SAMPLE 3, EDITED\n"
    assert project.read("total.txt").split() == ["9", "9", "17", "9", "9", "9"]
    assert fast_path_used(project.root)  # the partial build restamped: the next one is a no-op


def test_partial_build_cuts_off_and_restores_modified_outputs(project):
    make_wide(project)
    project.write("src/2.txt", "SAMPLE 2\n")  # other bytes, same upper-cased output
    project.write("out/5.txt", "tampered\n")
    project.clear_runs()
    result = Project.load(str(project.root)).build()
    assert loaded_jobs(result) == ["copy[n=2]", "copy[n=5]", "size[n=2]", "size[n=5]", "total"]
    assert project.runs_log() == ["copy", "copy"]  # outputs equal to before: early cutoff
    assert project.read("out/5.txt") == "SAMPLE 5\n"
    assert fast_path_used(project.root)


def test_partial_build_without_graph_cache_falls_back(project):
    make_wide(project)
    (project.root / ".weave" / "graph.cache").unlink()
    project.write("src/1.txt", "one\n")
    result = Project.load(str(project.root)).build()
    assert len(loaded_jobs(result)) == 13  # the whole graph, resolved again
    assert sorted(r.key for r in result.ran) == ["copy[n=1]", "size[n=1]", "total"]
    assert fast_path_used(project.root)


def test_touched_large_and_small_files_are_compared_by_content(project):
    """Files over the one-read size are set aside and re-hashed after the stat pass; small
    ones as they are met. Either way: touched with the same bytes is a no-op (restamped),
    the same size with other bytes is a change."""
    from weavebuild.hashing import SMALL_FILE

    make_wide(project)
    big = "sample 1\n" + "x" * (SMALL_FILE + 5000) + "\n"
    project.write("src/1.txt", big)
    project.write("src/2.txt", "sample 2\n" + "y" * (SMALL_FILE + 100) + "\n")
    assert project.run("build").rc == 0
    wait_past_racy_window(project.root)  # (a build within 50 ms of the writes stamps nothing racy)
    assert project.run("build").rc == 0  # settles racy files; stamps
    project.clear_runs()
    for n in (1, 2, 3):  # touched, same content: moved fingerprints, outside the racy window
        os.utime(project.root / f"src/{n}.txt", ns=(10**9 * n, 10**9 * n))
    assert fast_path_used(project.root) and project.runs_log() == []
    project.write("src/1.txt", big.replace("x", "z", 1))  # large, same size, other bytes
    project.write("src/3.txt", "SAMPLE 3\n")  # small, same size, other bytes
    for n in (1, 3):
        os.utime(project.root / f"src/{n}.txt", ns=(10**9 * n, 10**9 * n))
    result = Project.load(str(project.root)).build()
    assert sorted(r.key for r in result.ran) == ["copy[n=1]", "copy[n=3]", "size[n=1]"]
    assert project.read("out/1.txt") == big.replace("x", "z", 1).upper()
    assert fast_path_used(project.root)


def test_failed_partial_build_leaves_no_stamp(project):
    make_wide(project)
    project.write("src/4.txt", "FAIL\n")
    first = project.run("build")
    assert first.rc == 1 and "copy[n=4]" in first.err, first
    assert not project.exists("out/4.txt")
    project.write("src/4.txt", "sample 4\n")
    project.clear_runs()
    result = Project.load(str(project.root)).build()
    assert sorted(r.key for r in result.ran) == ["copy[n=4]"]  # size/total: cut off
    assert project.read("total.txt").split() == ["9"] * 6
    assert fast_path_used(project.root)


def test_stamp_file_is_void_without_its_token(project):
    """The stamp file holds a token that the store must hold too: a record change deletes
    the tokens in its transaction, and a file left by a crash before its token was written
    (or a stale copy) is never trusted."""
    from weavebuild import stamp
    from weavebuild.store import Store

    make_wide(project)
    loaded = Project.load(str(project.root))
    key = stamp.key(loaded.digest, ())
    stamps = list((project.root / ".weave" / "stamps").iterdir())
    assert len(stamps) == 1
    saved = stamps[0].read_bytes()
    store = Store.open(str(project.root))
    try:
        assert stamp.check(store, str(project.root), key).noop
        store.commit(forget_jobs=["total"])  # a record change: every token goes
        assert stamp.check(store, str(project.root), key) is None
        store.write_stamp(key, b"x" * stamp.TOKEN_BYTES)  # a token the file does not carry
        assert stamp.check(store, str(project.root), key) is None
        store.write_stamp(key, saved[: stamp.TOKEN_BYTES])
        stamps[0].write_bytes(saved[:-10])  # truncated
        assert stamp.check(store, str(project.root), key) is None
    finally:
        store.close()
    project.clear_runs()
    assert project.run("build").rc == 0
    assert project.runs_log() == ["total"]  # its record was forgotten: it reruns
    assert fast_path_used(project.root)


def test_a_source_deleted_after_a_stamped_build_is_a_missing_source(project):
    """The partial build (the stamp names the jobs a change reaches) meets a deleted source as
    a from-scratch build does: a usage error naming it (exit 2), not a failed job."""
    project.weavefile(MERGE_NEEDS_EXTRA)
    project.write("raw/a.txt", "a\n")
    project.write("extra.txt", "e\n")
    assert project.run("build").rc == 0
    assert "nothing to do" in project.run("build").out  # stamped
    os.unlink(project.root / "extra.txt")
    assert_user_error(project.run("build"), "missing source 'extra.txt' needed by rule 'merge'")
    assert "failed" not in project.run("history").out.splitlines()[1]


def test_a_file_read_again_changed_after_a_verdict_used_it_voids_the_stamp(project):
    """Job `a` is decided up to date from samples/g.txt's digest; then the file changes (here a
    job does it; in the wild an editor, while the build runs), and the walk of the directory
    input `samples/` of a later job reads it again. The build's verdict for `a` does not hold
    for the new content: it warns and writes no stamp, and the next build reruns `a`. It used
    to stamp the new digest, and the next build said 'nothing to do' with a.out stale (found by
    the random-DAG fuzzer, from an edit made while a build ran)."""
    weavefile = """
        default = ["a.out", "t.out"]
        [rules.a]
        inputs  = ["samples/g.txt"]
        outputs = ["a.out"]
        cmd     = "cp {inputs} {outputs}"
        [rules.edit]
        inputs  = ["trigger.txt"]
        outputs = ["edit.done"]
        cmd     = "if grep -q go trigger.txt; then echo new > samples/g.txt; fi; cp trigger.txt edit.done"
        [rules.t]
        inputs  = ["edit.done", "samples/"]
        outputs = ["t.out"]
        cmd     = "cat samples/g.txt > {outputs}"
        """
    project.weavefile(weavefile)
    project.write("samples/g.txt", "old\n")
    project.write("trigger.txt", "no\n")
    assert project.run("build").rc == 0
    project.write("trigger.txt", "go\n")
    project.weavefile(weavefile + "# a comment: a new Weavefile digest, so no stamp to start from\n")
    second = project.run("build")
    assert second.rc == 0 and second.started == ["edit edit.done", "t t.out"], second
    assert "samples/g.txt changed while the build was running" in second.err, second
    third = project.run("build")
    assert third.started == ["a a.out"], third
    assert project.read("a.out") == "new\n" == project.read("samples/g.txt")
    assert project.run("build").started == []

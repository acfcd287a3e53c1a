"""Watch mode: the watch set and debouncing as units, then real `weave watch` processes with real
observers in temp projects. Every wait polls for an observed fact with a generous timeout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import psutil
import pytest

from conftest import GC_PROBE
from test_build import data_folder_of_links
from weavebuild.api import Project as WeaveProject
from weavebuild.watch import ChangeQueue, ScanPattern, is_noise, watch_set

TIMEOUT = 45.0  # generous: two cores are shared with other test runs

PIPELINE = """
    default = ["merged.txt"]
    [rules.clean_sample]
    inputs  = ["raw/{sample}.txt", "scripts/up.sh"]
    outputs = ["clean/{sample}.txt"]
    cmd     = "echo clean >> runs.log; bash scripts/up.sh < {inputs[0]} > {outputs}"
    [rules.merge]
    inputs  = ["clean/{sample}.txt"]
    outputs = ["merged.txt"]
    foreach = { sample = "raw/{sample}.txt" }
    cmd     = "echo merge >> runs.log; cat {inputs} > {outputs}"
"""

RESULT_RE = re.compile(r"^weave watch: \[(\d+)\] (ok|FAILED|error|cancelled): (.*)$", re.M)
CHANGED_RE = re.compile(r"^weave watch: \[(\d+)\] \d\d:\d\d:\d\d changed: (.*)$", re.M)


def make_pipeline(project) -> None:
    project.weavefile(PIPELINE)
    project.write("raw/a.txt", "alpha\n")
    project.write("raw/b.txt", "beta\n")
    project.write("scripts/up.sh", "tr a-z A-Z\n")


def read(project, relative: str) -> Optional[str]:
    """The file's content, or None while it is missing (a job's stale outputs are removed first)."""
    try:
        return project.read(relative)
    except FileNotFoundError:
        return None


def wait_until(predicate: Callable[[], object], what: str, timeout: float = TIMEOUT,
               watch: Optional[Watch] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if watch is not None and watch.proc.poll() is not None:
            break
        time.sleep(0.05)  # a polling interval, not a wait for something to have happened
    detail = f"\n--- weave watch output ---\n{watch.output()}" if watch is not None else ""
    raise AssertionError(f"timed out waiting for {what}{detail}")


class Watch:
    """A `weave watch` process; its stdout and stderr go to a file read as it grows."""

    def __init__(self, project, *args: str, launcher: Sequence[str] = ("-m", "weavebuild")):
        self.project = project
        self.log_path = project.root.parent / "watch.out"  # outside the project: never watched
        env = dict(os.environ)
        env.pop("CUDA_VISIBLE_DEVICES", None)
        env["PYTHONFAULTHANDLER"] = "1"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *launcher, "watch", "--debounce", "0.3", *args],
                cwd=project.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                # A shell starts background jobs with SIGINT ignored, and Python keeps it so;
                # the tests send SIGINT, so they must not depend on how pytest was started.
                preexec_fn=_default_sigint,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def results(self) -> List[Tuple[int, str, str]]:
        return [(int(n), status, detail) for n, status, detail in RESULT_RE.findall(self.output())]

    def changed(self) -> List[str]:
        """Every path named in a `changed:` line."""
        paths: List[str] = []
        for _, text in CHANGED_RE.findall(self.output()):
            paths.extend(p for p in text.split(", ") if not p.startswith("(+"))
        return paths

    def wait_result(self, after: int = 0) -> Tuple[int, str, str]:
        """The first cycle result numbered above `after`."""
        wait_until(lambda: [r for r in self.results() if r[0] > after], f"cycle {after + 1}", watch=self)
        return next(r for r in self.results() if r[0] > after)

    def wait_cycle_for(self, path: str, after: int = 0) -> Tuple[int, str, str]:
        """The result of the first cycle above `after` that was started by a change of `path`."""

        def find() -> Optional[Tuple[int, str, str]]:
            started = [int(n) for n, text in CHANGED_RE.findall(self.output())
                       if int(n) > after and path in text.split(", ")]
            done = {r[0]: r for r in self.results()}
            return done.get(started[0]) if started else None

        wait_until(find, f"a cycle for {path}", watch=self)
        return find()  # type: ignore[return-value]

    def wait_for(self, predicate: Callable[[], object], what: str) -> None:
        wait_until(predicate, what, watch=self)

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it to the foreground process; returns the exit code."""
        os.kill(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: dumps every thread's stack
            self.proc.wait()
            raise AssertionError(f"weave watch ignored SIGINT:\n{self.output()}") from None


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def start_watch(project) -> Iterator[Callable[..., Watch]]:
    started: List[Watch] = []

    def start(*args: str, **kwargs: Any) -> Watch:
        watch = Watch(project, *args, **kwargs)
        started.append(watch)
        return watch

    yield start
    for watch in started:
        if watch.proc.poll() is None:
            os.killpg(watch.proc.pid, signal.SIGKILL)
            watch.proc.wait()


# -- units -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, directory, recursive, matching, not_matching",
    [
        ("raw/{sample}.txt", "raw", False, ["raw/a.txt", "raw/new.txt"], ["raw/x/a.txt", "raw/a.csv"]),
        ("data/**/*.csv", "data", True, ["data/a.csv", "data/x/y/b.csv"], ["data/a.txt", "other/a.csv"]),
        ("*.txt", ".", False, ["a.txt"], ["sub/a.txt"]),
        ("in/img[0-9].png", "in", False, ["in/img3.png"], ["in/imgx.png"]),
        ("logs/run-{id}/x.json", "logs", True, ["logs/run-7/x.json"], ["logs/run-7/y.json"]),
    ],
)
def test_scan_pattern(text, directory, recursive, matching, not_matching):
    pattern = ScanPattern.compile(text, {}, "/project")
    assert (pattern.directory, pattern.recursive) == (directory, recursive)
    assert all(pattern.matches(p) for p in matching)
    assert not any(pattern.matches(p) for p in not_matching)


def test_scan_pattern_constraint_allowing_slash_is_recursive():
    pattern = ScanPattern.compile("raw/{path}.txt", {"path": ".+"}, "/project")
    assert pattern.recursive and pattern.matches("raw/a/b.txt")


def test_noise():
    for path in [".weave/state.db", ".git/index", "src/.git/HEAD", "raw/.a.txt.swp", "raw/a.txt~",
                 "raw/.#a.txt", "pkg/__pycache__/m.pyc", "pkg/__pycache__"]:
        assert is_noise(path), path
    for path in ["raw/a.txt", "weave.txt", "data/4913.csv", "runs/4913"]:  # 4913: a run, too
        assert not is_noise(path), path


def test_watch_set_of_a_graph(project):
    make_pipeline(project)
    project.write(
        "Weavefile",
        PIPELINE + '\n[rules.model]\ninputs = ["data/"]\noutputs = ["models/best/"]\n'
        'cmd = "mkdir -p {outputs}"\n',
    )
    project.write("data/part1.csv", "1\n")
    loaded = WeaveProject.load(str(project.root))
    spec = watch_set(loaded.graph(["merged.txt", "models/best/"]), loaded.manifest)
    assert spec.sources == {"raw/a.txt", "raw/b.txt", "scripts/up.sh", "data"}
    assert spec.dirs == {".": False, "raw": False, "scripts": False, "data": True}
    relevant = ["Weavefile", "raw/a.txt", "scripts/up.sh", "raw/new.txt", "data/part2.csv"]
    ignored = ["merged.txt", "clean/a.txt", "models/best/w.bin", "runs.log", ".weave/lock",
               "raw/.a.txt.swp", "raw/sub/a.txt"]
    assert [p for p in relevant if not spec.relevant(p)] == []
    assert [p for p in ignored if spec.relevant(p)] == []


def test_watch_set_follows_a_symlinked_source(project):
    shared = project.root.parent / "shared"
    shared.mkdir()
    (shared / "real.csv").write_text("1\n")
    (project.root / "data.csv").symlink_to(shared / "real.csv")
    project.weavefile("""
        [rules.copy]
        inputs  = ["data.csv"]
        outputs = ["copy.csv"]
        cmd     = "cp {inputs} {outputs}"
    """)
    loaded = WeaveProject.load(str(project.root))
    spec = watch_set(loaded.graph(), loaded.manifest)
    assert spec.sources == {"data.csv", "../shared/real.csv"}
    assert spec.dirs == {".": False, "../shared": False}
    assert spec.relevant("../shared/real.csv") and not spec.relevant("../shared/other.csv")


def test_a_directory_source_of_symlinks_is_watched_where_they_point(project, start_watch):
    """A data folder of symlinks into a shared store (a file and a directory): its digest
    follows them, so watch watches where they point, and an edit there rebuilds."""
    store = data_folder_of_links(project)
    loaded = WeaveProject.load(str(project.root))
    spec = watch_set(loaded.graph(), loaded.manifest)
    assert spec.sources == {"data", "../store/sample.txt", "../store/set"}, spec.sources
    assert spec.relevant("../store/sample.txt") and spec.relevant("../store/set/y.txt")
    assert not spec.relevant("../store/other.txt")
    watch = start_watch()
    first = watch.wait_result()
    assert first[1] == "ok", watch.output()
    (store / "sample.txt").write_text("two\n")
    cycle = watch.wait_cycle_for("../store/sample.txt")
    assert cycle[1] == "ok" and project.read("out.txt") == "two\nx\n", watch.output()
    (store / "set" / "y.txt").write_text("y\n")
    watch.wait_for(lambda: read(project, "out.txt") == "two\nx\ny\n", "out.txt with the new file of the linked directory")
    assert watch.interrupt() == 130


def test_files_read_through_a_symlinked_directory_are_watched(project, start_watch, tmp_path):
    """`data -> a shared store` and inputs `data/f1.txt`, `foreach` over `data/{s}.txt`:
    inotify does not follow the link at the end of a watched path, so the store is watched
    and its events are taken as the project names them: an edit, and a new file, rebuild."""
    store = tmp_path / "store"
    store.mkdir()
    (store / "f1.txt").write_text("s1\n")
    (project.root / "data").symlink_to(store)
    project.weavefile(
        """
        default = ["f1.out", "all.out"]
        [rules.f1]
        inputs  = ["data/f1.txt"]
        outputs = ["f1.out"]
        cmd     = "cp {inputs} {outputs}"
        [rules.all]
        inputs  = ["data/{s}.txt"]
        foreach = { s = "data/{s}.txt" }
        outputs = ["all.out"]
        cmd     = "cat {inputs} > {outputs}"
        """
    )
    watch = start_watch()
    assert watch.wait_result()[1] == "ok", watch.output()
    (project.root / "data" / "f1.txt").write_text("s2\n")  # through the link
    watch.wait_for(lambda: read(project, "f1.out") == "s2\n", "f1.out rebuilt after an edit through the link")
    (store / "new.txt").write_text("n\n")  # where it points
    watch.wait_for(lambda: read(project, "all.out") == "s2\nn\n", "all.out with the new file")
    assert watch.interrupt() == 130
    assert project.run("build").started == []


def test_a_linked_directory_retargeted_and_two_links_to_one_store_are_followed(project, start_watch, tmp_path):
    """`data -> store A` retargeted to store B while watching: a change (the link is), and
    from then on store B is watched. Two links to one directory: an edit there is a change
    under both names."""
    store_a, store_b = tmp_path / "a", tmp_path / "b"
    for store, text in ((store_a, "A\n"), (store_b, "B\n")):
        store.mkdir()
        (store / "x.txt").write_text(text)
    (project.root / "data").symlink_to(store_a)
    (project.root / "same").symlink_to(store_a)
    project.weavefile(
        """
        default = ["o.txt", "p.txt"]
        [rules.o]
        inputs  = ["data/x.txt"]
        outputs = ["o.txt"]
        cmd     = "cp {inputs} {outputs}"
        [rules.p]
        inputs  = ["same/x.txt"]
        outputs = ["p.txt"]
        cmd     = "cp {inputs} {outputs}"
        """
    )
    watch = start_watch()
    assert watch.wait_result()[1] == "ok", watch.output()
    (store_a / "x.txt").write_text("A2\n")  # seen as data/x.txt and as same/x.txt
    watch.wait_for(
        lambda: read(project, "o.txt") == "A2\n" and read(project, "p.txt") == "A2\n", "both outputs rebuilt"
    )
    (project.root / "data").unlink()
    (project.root / "data").symlink_to(store_b)  # retargeted
    watch.wait_for(lambda: read(project, "o.txt") == "B\n", "o.txt from the new target")
    (store_b / "x.txt").write_text("B2\n")
    watch.wait_for(lambda: read(project, "o.txt") == "B2\n", "o.txt after an edit in the new target")
    assert watch.interrupt() == 130
    assert project.run("build").started == []


def test_change_queue_debounces_a_burst():
    queue = ChangeQueue()
    for path in ["a", "b", "a"]:
        queue.add(path)
    started = time.monotonic()
    assert queue.wait(quiet=0.05, max_delay=5) == ["a", "b"]
    assert time.monotonic() - started >= 0.04
    assert not queue


def test_builds_started_only_by_their_own_writes_back_off_and_an_edit_resets(tmp_path):
    """Watcher._pace: the third build in a row started only by changes made during the build
    before is announced once; from then on each such build waits 1, 2, 4... s (at most
    LOOP_MAX_WAIT) for anything else to change; a change that did not come from a build
    resets the count. (The waits are recorded, not slept.)"""
    from weavebuild import watch as watch_module

    warnings: List[str] = []
    watcher = watch_module.Watcher(str(tmp_path), None, [], {}, watch_module.WatchOptions(),
                                   type("R", (), {"warning": lambda self, text: warnings.append(text)})())
    waits: List[float] = []
    watcher.changes.wait_for_more = lambda timeout: waits.append(timeout) or False  # type: ignore[method-assign]

    def build_wrote(*paths: str) -> List[str]:
        watcher._during_build.update(paths)
        return watcher._pace(list(paths), 2.0)

    for _ in range(10):
        assert build_wrote("in.txt") == ["in.txt"]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert len(warnings) == 1 and "in.txt changed during each of the last 3 builds" in warnings[0]
    assert watcher._pace(["in.txt", "edited.txt"], 2.0) == ["in.txt", "edited.txt"]  # not all from a build
    assert build_wrote("in.txt") == ["in.txt"] and waits[-1] == 60.0 and len(waits) == 8  # counting again


# -- the real command ----------------------------------------------------------------------------

def test_edit_rewrite_new_file_and_no_loop(project, start_watch):
    make_pipeline(project)
    watch = start_watch()
    first = watch.wait_result()
    assert first[1] == "ok" and first[2].startswith("3 ran, 0 up to date"), watch.output()
    assert sorted(project.runs_log()) == ["clean", "clean", "merge"]

    # Edit a source: its job and the merge run again.
    project.write("raw/a.txt", "alpha two\n")
    cycle = watch.wait_cycle_for("raw/a.txt")
    assert cycle[1] == "ok", watch.output()
    assert project.read("merged.txt") == "ALPHA TWO\nBETA\n"
    assert sorted(project.runs_log()) == ["clean", "clean", "clean", "merge", "merge"]

    # Same bytes again: the engine finds nothing stale, so nothing runs.
    project.write("raw/b.txt", "beta\n")
    cycle = watch.wait_cycle_for("raw/b.txt", after=cycle[0])
    assert cycle[1] == "ok" and cycle[2].startswith("nothing ran"), watch.output()
    assert len(project.runs_log()) == 5

    # A new file matching the foreach pattern adds a job.
    project.write("raw/c.txt", "gamma\n")
    watch.wait_for(lambda: "GAMMA" in (read(project, "merged.txt") or ""),
                   "merged.txt with the new sample")
    assert project.read("clean/c.txt") == "GAMMA\n"

    # The build's outputs (clean/, merged.txt), runs.log and .weave/ never started a cycle:
    # every change reported is one this test made.
    assert set(watch.changed()) <= {"raw/a.txt", "raw/b.txt", "raw/c.txt"}, watch.output()
    assert watch.interrupt() == 130


def test_a_chmod_inside_a_directory_input_starts_a_cycle_and_elsewhere_none(project, start_watch):
    """A directory input's digest holds each file's executable bit: `chmod +x` inside it made
    the target stale (weave status said so) while watch saw no change and stayed idle. A
    chmod of a plain input changes no digest, and starts nothing."""
    project.write("tree/sub/run.sh", "echo hi\n")
    project.write("plain.txt", "x\n")
    project.weavefile(
        '[rules.tree]\ninputs = ["tree/", "plain.txt"]\noutputs = ["listing.txt"]\n'
        'cmd = "echo tree >> runs.log; ls -l tree/sub/run.sh | cut -c1-10 > {outputs}"\n'
    )
    watch = start_watch()
    assert watch.wait_result()[1] == "ok", watch.output()
    assert project.read("listing.txt").startswith("-rw-"), project.read("listing.txt")
    os.chmod(project.root / "plain.txt", 0o600)  # no digest changes: no cycle
    os.chmod(project.root / "tree" / "sub" / "run.sh", 0o755)
    cycle = watch.wait_cycle_for("tree/sub/run.sh")
    assert cycle[1] == "ok" and cycle[2].startswith("1 ran"), watch.output()
    assert project.read("listing.txt").startswith("-rwx"), project.read("listing.txt")
    assert "plain.txt" not in watch.changed(), watch.output()
    assert project.runs_log() == ["tree", "tree"]
    assert watch.interrupt() == 130


def test_set_values_hold_across_weavefile_reloads(project, start_watch):
    project.weavefile(
        """
        [vars]
        epochs = 3
        [rules.train]
        outputs = ["model.txt"]
        cmd = "echo epochs={vars.epochs} > {outputs}"
        """
    )
    watch = start_watch("--set", "epochs=7")
    assert watch.wait_result()[1] == "ok", watch.output()
    assert project.read("model.txt") == "epochs=7\n"
    # An edited command, in a reloaded Weavefile: still built with the --set value.
    project.weavefile(
        """
        [vars]
        epochs = 3
        [rules.train]
        outputs = ["model.txt"]
        cmd = "echo epochs={vars.epochs} again > {outputs}"
        """
    )
    cycle = watch.wait_cycle_for("Weavefile")
    assert cycle[1] == "ok", watch.output()
    assert project.read("model.txt") == "epochs=7 again\n"
    assert watch.interrupt() == 130


def test_a_weavefile_and_an_include_that_are_symlinks_reload_on_an_edit_where_they_point(project, start_watch):
    """The Weavefile (and a file it includes) kept elsewhere and linked in: an edit of the
    file it points to reloads the rules; before, watch watched only the link's directory and
    built the next change with the old commands."""
    (project.root / "conf").mkdir()
    (project.root / "conf/real.toml").write_text(
        'include = ["more.toml"]\n[rules.a]\ninputs = ["in.txt"]\noutputs = ["a.txt"]\ncmd = "cat in.txt > a.txt"\n'
    )
    (project.root / "conf/shared.toml").write_text(
        '[rules.b]\ninputs = ["in.txt"]\noutputs = ["b.txt"]\ncmd = "cat in.txt > b.txt"\n'
    )
    (project.root / "Weavefile").symlink_to("conf/real.toml")
    (project.root / "more.toml").symlink_to("conf/shared.toml")
    project.write("in.txt", "1\n")
    watch = start_watch("a.txt", "b.txt")
    assert watch.wait_result()[1] == "ok", watch.output()
    real = project.root / "conf/real.toml"
    real.write_text(real.read_text().replace("cat in.txt > a.txt", "cat in.txt in.txt > a.txt"))
    cycle = watch.wait_cycle_for("conf/real.toml")
    assert cycle[1] == "ok" and project.read("a.txt") == "1\n1\n", watch.output()
    shared = project.root / "conf/shared.toml"
    shared.write_text(shared.read_text().replace("cat in.txt > b.txt", "cat in.txt in.txt in.txt > b.txt"))
    cycle = watch.wait_cycle_for("conf/shared.toml", after=cycle[0])
    assert cycle[1] == "ok" and project.read("b.txt") == "1\n1\n1\n", watch.output()
    assert watch.interrupt() == 130


def test_broken_weavefile_then_fixed(project, start_watch):
    make_pipeline(project)
    watch = start_watch()
    first = watch.wait_result()
    assert first[1] == "ok"
    project.write("Weavefile", "[rules.merge\n")  # invalid TOML
    broken = watch.wait_result(after=first[0])
    assert broken[1] == "error", watch.output()
    assert "weave: error: " in watch.output() and "invalid TOML" in watch.output()
    # Spelled as `weave build` (and the first load) spells it, not by its absolute path.
    assert "weave: error: ./Weavefile:1:" in watch.output(), watch.output()
    assert str(project.root) not in watch.output(), watch.output()
    # Still watching, with the last good graph: a source edit is noticed, but nothing builds.
    project.write("raw/a.txt", "alpha two\n")
    again = watch.wait_result(after=broken[0])
    assert again[1] == "error" and len(project.runs_log()) == 3, watch.output()
    # Fixed (and changed): the new rules build, including the edit made meanwhile.
    project.weavefile(PIPELINE.replace("cat {inputs}", "cat {inputs} | sort"))
    watch.wait_for(lambda: read(project, "merged.txt") == "ALPHA TWO\nBETA\n" and
                   [r for r in watch.results() if r[0] > again[0] and r[1] == "ok"],
                   "a build with the fixed Weavefile")
    assert watch.interrupt() == 130


def test_a_deleted_weavefile_is_waited_for(project, start_watch):
    make_pipeline(project)
    watch = start_watch()
    first = watch.wait_result()
    assert first[1] == "ok", watch.output()
    text = (project.root / "Weavefile").read_text()
    (project.root / "Weavefile").unlink()  # a git stash, say
    gone = watch.wait_cycle_for("Weavefile", after=first[0])
    assert gone[1] == "error" and "Weavefile is gone" in gone[2], watch.output()
    assert "weave: error: the Weavefile ./Weavefile is gone" in watch.output(), watch.output()
    assert "-f takes" not in watch.output(), watch.output()  # no -f was given
    project.write("raw/a.txt", "alpha two\n")
    project.write("Weavefile", text)
    watch.wait_for(lambda: read(project, "merged.txt") == "ALPHA TWO\nBETA\n", "a build once it is back")
    assert watch.interrupt() == 130


def test_invalid_weavefile_at_start_and_a_missing_source(project, start_watch):
    project.write("Weavefile", "[rules.copy\n")
    project.write("in.txt", "one\n")
    watch = start_watch()
    assert watch.wait_result()[1] == "error"
    project.weavefile("""
        [rules.copy]
        inputs  = ["in.txt"]
        outputs = ["out.txt"]
        cmd     = "cp {inputs} {outputs}"
    """)
    built = watch.wait_cycle_for("Weavefile")
    assert built[1] == "ok" and project.read("out.txt") == "one\n", watch.output()
    (project.root / "in.txt").unlink()
    missing = watch.wait_cycle_for("in.txt", after=built[0])
    assert missing[1] == "error" and "missing source 'in.txt'" in watch.output()
    project.write("in.txt", "two\n")
    watch.wait_for(lambda: read(project, "out.txt") == "two\n", "the build after the source is back")
    assert watch.interrupt() == 130


def test_a_source_missing_at_start_or_named_by_an_edit_is_watched_for(project, start_watch):
    """A source that is missing when watch starts, or that an edit of the Weavefile names
    (in a directory that does not exist yet), is watched for: creating it builds."""
    project.weavefile("""
        [rules.copy]
        inputs  = ["in.txt"]
        outputs = ["out.txt"]
        cmd     = "cp {inputs} {outputs}"
    """)
    watch = start_watch()
    first = watch.wait_result()
    assert first[1] == "error" and "missing source 'in.txt'" in watch.output(), watch.output()
    project.write("in.txt", "one\n")
    watch.wait_for(lambda: read(project, "out.txt") == "one\n", "the build once the source exists")
    built = watch.results()[-1]
    project.weavefile("""
        [rules.copy]
        inputs  = ["new/in.txt"]
        outputs = ["out.txt"]
        cmd     = "cp {inputs} {outputs}"
    """)
    edited = watch.wait_cycle_for("Weavefile", after=built[0])
    assert edited[1] == "error" and "missing source 'new/in.txt'" in watch.output(), watch.output()
    project.write("new/in.txt", "two\n")
    watch.wait_for(lambda: read(project, "out.txt") == "two\n", "the build once the new source exists")
    assert watch.interrupt() == 130


def test_failing_job_keeps_watching_and_hooks_run(project, start_watch):
    project.weavefile("""
        [rules.check]
        inputs  = ["in.txt"]
        outputs = ["out.txt"]
        cmd     = "grep -qv bad {inputs}; cp {inputs} {outputs}"
    """)
    project.write("in.txt", "good\n")
    hooks = project.root / "hooks.log"
    watch = start_watch("--on-success", "echo ok:$WEAVE_WATCH_STATUS >> hooks.log",
                        "--on-failure", "echo fail:$WEAVE_WATCH_STATUS >> hooks.log")
    watch.wait_for(lambda: hooks.exists() and hooks.read_text() == "ok:ok\n", "the success hook")
    project.write("in.txt", "bad\n")
    watch.wait_for(lambda: hooks.read_text().endswith("fail:failed\n"), "the failure hook")
    assert any(r[1] == "FAILED" for r in watch.results())
    project.write("in.txt", "good again\n")
    watch.wait_for(lambda: read(project, "out.txt") == "good again\n",
                   "a retry after the failure")
    watch.wait_for(lambda: hooks.read_text().endswith("ok:ok\n"), "the success hook again")
    assert watch.interrupt() == 130


SLOW_RULE = """
    [rules.slow]
    inputs  = ["in.txt"]
    outputs = ["out.txt"]
    cmd     = "echo start >> runs.log; if grep -q slow {inputs}; then echo slow >> runs.log; sleep %s; fi; cp {inputs} {outputs}"
"""


def test_change_during_build_is_not_lost(project, start_watch):
    project.weavefile(SLOW_RULE % "2")
    project.write("in.txt", "slow\n")
    watch = start_watch()
    watch.wait_for(lambda: project.runs_log() == ["start", "slow"], "the slow job to sleep")
    project.write("in.txt", "fast\n")
    # The running job may copy the new content, but its record holds the digest taken before it
    # started: a second build must still run.
    second = watch.wait_result(after=1)
    assert second[:2] == (2, "ok"), watch.output()
    assert project.runs_log() == ["start", "slow", "start"] and project.read("out.txt") == "fast\n"
    assert watch.interrupt() == 130


def test_a_change_while_another_weave_holds_the_lock_waits_for_it(project, start_watch):
    """A `weave build` in another terminal holds the project lock when a source is saved: the
    cycle says it waits and builds once the lock is free (it used to drop the change)."""
    from weavebuild.lock import ProjectLock

    project.weavefile('[rules.r]\ninputs = ["in.txt"]\noutputs = ["out.txt"]\ncmd = "cat {inputs} > {outputs}"\n')
    project.write("in.txt", "1\n")
    watch = start_watch()
    assert watch.wait_result()[:2] == (1, "ok"), watch.output()
    lock = ProjectLock(str(project.root))
    lock.acquire()
    try:
        project.write("in.txt", "2\n")
        watch.wait_for(lambda: "waiting for another weave" in watch.output(), "the cycle to wait for the lock")
        assert project.read("out.txt") == "1\n" and watch.results() == [watch.results()[0]]
    finally:
        lock.release()
    assert watch.wait_result(after=1)[:2] == (2, "ok"), watch.output()
    assert project.read("out.txt") == "2\n"
    assert watch.interrupt() == 130


def test_restart_cancels_a_running_job_whose_input_changed(project, start_watch):
    project.weavefile(SLOW_RULE % "60")
    project.write("in.txt", "slow\n")
    watch = start_watch("--restart")
    watch.wait_for(lambda: project.runs_log() == ["start", "slow"], "the slow job to sleep")
    project.write("in.txt", "fast\n")
    # Without --restart the second build would start only after the minute.
    restarted = watch.wait_result(after=1)
    assert watch.results()[0][1] == "cancelled" and restarted[:2] == (2, "ok"), watch.output()
    assert project.read("out.txt") == "fast\n"
    assert watch.interrupt() == 130
    # In the history, the cycle that cancelled its job is not an "ok" run.
    runs = json.loads(project.run("history", "--json").out)["runs"]
    assert [run["outcome"] for run in sorted(runs, key=lambda run: run["id"])] == ["interrupted", "ok"], runs


# Two independent jobs for the --restart tests: `a` waits for release_a; `b` is filled in.
TWO_JOBS = """
        [rules.a]
        inputs  = ["a.txt"]
        outputs = ["a.out"]
        cmd     = "echo a >> runs.log; while [ ! -f release_a ]; do sleep 0.05; done; cp {inputs} {outputs}"
%s        [rules.all]
        inputs = ["a.out", "b.out"]
"""
B_WAITS_FOR_RELEASE = """\
        [rules.b]
        inputs  = ["b.txt"]
        outputs = ["b.out"]
        cmd     = "echo b >> runs.log; while [ ! -f release_b ]; do sleep 0.05; done; cp {inputs} {outputs}"
"""
B_IGNORES_SIGTERM = """\
        [rules.b]
        inputs  = ["b.txt"]
        outputs = ["b.out"]
        cmd     = "echo b >> runs.log; trap '' TERM; [ -f go_b ] || sleep 600; cp {inputs} {outputs}"
"""


def test_an_input_changed_only_in_its_metadata_while_read_is_no_change(project, start_watch):
    """A chmod of an input while its job reads it changes no byte: the job is recorded, with
    no 'changed while the build was running' warning, and the project is up to date (it was
    not recorded, and watch mode had to build again)."""
    project.weavefile(
        """
        [rules.slow]
        inputs = ["data/a.txt"]
        outputs = ["out/a.txt"]
        cmd = "echo slow >> runs.log; while [ ! -f go ]; do sleep 0.05; done; cat {inputs} > {outputs}"
        [rules.all]
        inputs = ["out/a.txt"]
        """
    )
    project.write("data/a.txt", "hi\n")
    watch = start_watch("all")
    watch.wait_for(lambda: project.runs_log() == ["slow"], "the job to start")
    os.chmod(project.root / "data" / "a.txt", 0o600)
    project.write("go", "")
    first = watch.wait_result()
    assert first[1] == "ok", watch.output()
    assert "changed while the build was running" not in watch.output()
    assert project.run("status", "all").rc == 0
    assert project.runs_log() == ["slow"]


def test_an_absolute_input_changed_while_read_is_one_change(project, start_watch):
    """Its event names it from the project (`../ext/a.txt`), the build by its path as the rule
    writes it: the next cycle lists it once."""
    outside = project.root.parent / "ext"
    outside.mkdir()
    (outside / "a.txt").write_text("one\n")
    project.weavefile(
        f"""
        [rules.slow]
        inputs = ["{outside / 'a.txt'}"]
        outputs = ["out/a.txt"]
        cmd = "echo slow >> runs.log; while [ ! -f go ]; do sleep 0.05; done; cat {{inputs}} > {{outputs}}"
        """
    )
    watch = start_watch()
    watch.wait_for(lambda: project.runs_log() == ["slow"], "the job to start")
    (outside / "a.txt").write_text("two\n")
    project.write("go", "")
    first = watch.wait_result()
    assert first[1] == "ok", watch.output()
    second = watch.wait_result(after=first[0])  # the job was not recorded: it runs again
    assert second[1] == "ok" and read(project, "out/a.txt") == "two\n", watch.output()
    changed = watch.changed()
    assert changed and len(changed) == len(set(changed)), watch.output()
    assert all(path == "../ext/a.txt" for path in changed), watch.output()
    assert watch.interrupt() == 130


def test_ctrl_c_while_a_restart_winds_down_stops_watch(project, start_watch):
    """--restart: a Weavefile edit of a running job's rule cancels it; a Ctrl-C while it winds
    down (cleaning up on SIGTERM) ends watch mode with 130, not taken for part of the restart."""
    weavefile = """
        [rules.train]
        inputs = ["data/a.txt"]
        outputs = ["model.txt"]
        cmd = "trap 'touch terminating; sleep 30; exit 1' TERM; echo train >> runs.log; sleep 300 & wait; cat {inputs} > {outputs}"
        """
    project.weavefile(weavefile)
    project.write("data/a.txt", "a\n")
    watch = start_watch("--restart")
    watch.wait_for(lambda: project.runs_log() == ["train"], "the job to start")
    project.weavefile(weavefile.replace("echo train", "echo train2"))
    watch.wait_for(lambda: project.exists("terminating"), "the job to get SIGTERM")
    assert watch.interrupt() == 130, watch.output()


def test_restart_on_a_weavefile_edit_cancels_only_the_jobs_whose_rule_it_changed(project, start_watch):
    """--restart and a Weavefile edit while `a` and `b` run: `b`, whose command changed, is
    cancelled; `a`, which the edit leaves as it was (a comment, another rule), finishes and is
    recorded; nothing else starts. The next cycle builds from the new Weavefile and reruns
    only `b` (it once cancelled every running job: hours of training lost to a new rule)."""
    waits = "while [ ! -f release_{0} ]; do sleep 0.05; done; "
    weavefile = f"""
        [rules.a]
        inputs  = ["a.txt"]
        outputs = ["a.out"]
        cmd     = "echo a >> runs.log; {waits.format("a")}cp {{inputs}} {{outputs}}"
        [rules.b]
        inputs  = ["b.txt"]
        outputs = ["b.out"]
        cmd     = "echo b >> runs.log; {waits.format("b")}cp {{inputs}} {{outputs}}"
        [rules.c]
        inputs  = ["a.txt"]
        outputs = ["c.out"]
        cmd     = "echo c >> runs.log; cp {{inputs}} {{outputs}}"
        [rules.all]
        inputs = ["a.out", "b.out", "c.out"]
        """
    project.weavefile(weavefile)
    project.write("a.txt", "a1\n")
    project.write("b.txt", "b1\n")
    watch = start_watch("--restart", "-j", "2", "all")
    watch.wait_for(lambda: sorted(project.runs_log()) == ["a", "b"], "a and b to start")
    project.weavefile("# a comment\n" + weavefile.replace("echo b >>", "echo b2 >>"))
    watch.wait_for(lambda: "b.out: the Weavefile changed its rule; cancelling it" in watch.output(), "b to be cancelled")
    project.write("release_a", "")
    first = watch.wait_result()
    assert first[1] == "cancelled", watch.output()
    assert "the Weavefile changed (1 job(s) cancelled, 1 not started" in first[2], watch.output()
    assert "a.out: the Weavefile changed" not in watch.output()
    assert "the Weavefile changed: 1 running job(s) it leaves as they were finish, no more start" in watch.output()
    assert project.read("a.out") == "a1\n" and not project.exists("b.out") and not project.exists("c.out")
    project.write("release_b", "")
    second = watch.wait_result(after=first[0])
    assert second[1] == "ok" and "2 ran" in second[2], watch.output()  # b and c; a was recorded
    assert sorted(project.runs_log()) == ["a", "b", "b2", "c"]
    assert project.read("b.out") == "b1\n" and project.read("c.out") == "a1\n"
    assert project.run("status", "all").rc == 0
    assert watch.interrupt() == 130


def test_restart_on_a_half_edited_weavefile_lets_running_jobs_finish(project, start_watch):
    """--restart and a Weavefile saved invalid while a job runs: nothing is cancelled (the
    running job is of the last good version) and nothing more starts; the next cycle reports
    the error, and the fix builds what is left."""
    weavefile = """
        [rules.a]
        inputs  = ["a.txt"]
        outputs = ["a.out"]
        cmd     = "echo a >> runs.log; while [ ! -f release_a ]; do sleep 0.05; done; cp {inputs} {outputs}"
        [rules.c]
        inputs  = ["a.txt"]
        outputs = ["c.out"]
        cmd     = "echo c >> runs.log; cp {inputs} {outputs}"
        [rules.all]
        inputs = ["a.out", "c.out"]
        """
    project.weavefile(weavefile)
    project.write("a.txt", "a1\n")
    watch = start_watch("--restart", "-j", "1", "all")
    watch.wait_for(lambda: project.runs_log() == ["a"], "a to start")
    project.weavefile(weavefile + "[rules.broken\n")
    watch.wait_for(lambda: "cannot be loaded as it is: 1 running job(s) finish, no more start" in watch.output(),
                   "the edit to be seen")
    project.write("release_a", "")
    first = watch.wait_result()
    assert first[1] == "cancelled" and "(0 job(s) cancelled, 1 not started" in first[2], watch.output()
    assert project.read("a.out") == "a1\n" and project.runs_log() == ["a"]
    second = watch.wait_result(after=first[0])
    assert second[1] == "error" and "Weavefile is invalid" in second[2], watch.output()
    project.weavefile(weavefile)
    third = watch.wait_result(after=second[0])
    assert third[1] == "ok" and "1 ran" in third[2], watch.output()
    assert project.runs_log() == ["a", "c"]
    assert watch.interrupt() == 130


def test_restart_cancels_only_jobs_whose_inputs_changed(project, start_watch):
    project.weavefile(TWO_JOBS % B_WAITS_FOR_RELEASE)
    project.write("a.txt", "a1\n")
    project.write("b.txt", "b1\n")
    watch = start_watch("--restart", "-j", "2", "all")
    watch.wait_for(lambda: sorted(project.runs_log()) == ["a", "b"], "both jobs to start")
    project.write("b.txt", "b2\n")
    watch.wait_for(lambda: "b.out: an input changed while it ran; cancelling it" in watch.output(),
                   "b to be cancelled")
    project.write("release_a", "")
    first = watch.wait_result()
    assert first[1] == "cancelled" and "1 job(s) whose inputs changed" in first[2], watch.output()
    assert project.read("a.out") == "a1\n"  # the unaffected job finished in the same build
    project.write("release_b", "")
    second = watch.wait_result(after=first[0])
    assert second[1] == "ok", watch.output()
    assert project.read("b.out") == "b2\n"
    assert sorted(project.runs_log()) == ["a", "b", "b"]
    assert watch.interrupt() == 130


def test_restart_cancels_readers_of_a_directory_a_symlink_and_a_depfile_listing(project, start_watch):
    """--restart cancels a job whose changed file is inside its directory input, the target of
    its symlinked input, or a file its depfile listed: not only an input spelled as declared."""
    project.weavefile(
        """
        default = ["d.out", "l.out", "h.out"]
        [rules.dir]
        inputs = ["cfg/"]
        outputs = ["d.out"]
        cmd = "echo dir >> runs.log; while [ ! -f go ]; do sleep 0.05; done; cat cfg/x.txt > {outputs}"
        [rules.link]
        inputs = ["link.txt"]
        outputs = ["l.out"]
        cmd = "echo link >> runs.log; while [ ! -f go ]; do sleep 0.05; done; cat {inputs} > {outputs}"
        [rules.header]
        inputs = ["main.c"]
        outputs = ["h.out"]
        depfile = "h.d"
        cmd = "echo header >> runs.log; while [ ! -f go ]; do sleep 0.05; done; cat main.c inc/h.h > {outputs}; echo 'h.out: main.c inc/h.h' > h.d"
        """
    )
    project.write("cfg/x.txt", "x1\n")
    project.write("ext/t.txt", "t1\n")
    os.symlink("ext/t.txt", project.root / "link.txt")
    project.write("main.c", "main\n")
    project.write("inc/h.h", "h1\n")
    project.write("go", "")
    assert project.run("build", "h.out").rc == 0  # the depfile's listing is recorded
    os.unlink(project.root / "go")
    project.write("main.c", "main2\n")
    project.write("runs.log", "")
    watch = start_watch("--restart", "-j", "3")
    watch.wait_for(lambda: sorted(project.runs_log()) == ["dir", "header", "link"], "the three jobs to start")
    project.write("cfg/x.txt", "x2\n")
    project.write("ext/t.txt", "t2\n")
    project.write("inc/h.h", "h2\n")
    for job in ("dir d.out", "link l.out", "header h.out"):
        watch.wait_for(lambda job=job: f"{job}: an input changed while it ran; cancelling it" in watch.output(), f"{job} to be cancelled")
    project.write("go", "")
    watch.wait_for(lambda: any(r[1] == "ok" for r in watch.results()), "a build to end ok")
    assert (project.read("d.out"), project.read("l.out"), project.read("h.out")) == ("x2\n", "t2\n", "main2\nh2\n")
    assert watch.interrupt() == 130


def test_edits_of_other_files_during_each_build_are_no_loop(tmp_path):
    """The pacing of builds started only by changes made during the build before: a person who
    edits a.txt during one build, b.txt during the next and the Weavefile during the third is
    no job in a loop. It was warned about as one ("Weavefile changed during each of the last 3
    builds ... a job may be writing what it reads") and then paced. The same file changing
    during each build is, once, naming that file."""
    import io

    from weavebuild.reporter import ConsoleReporter
    from weavebuild.watch import LOOP_AFTER, Watcher, WatchOptions

    err = io.StringIO()
    watcher = Watcher(str(tmp_path), None, [], {}, WatchOptions(debounce=0.01), ConsoleReporter(err=err, live=False))
    for path in ["a.txt", "b.txt", "Weavefile", "a.txt"]:
        watcher._during_build = {path}
        assert watcher._pace([path], 1.0) == [path]
    assert "a job may be writing what it reads" not in err.getvalue()
    for _ in range(LOOP_AFTER):
        watcher._during_build = {"in.txt", "other.txt"}
        watcher._pace(["in.txt"], 1.0)  # (paced: waits 1 s the third time)
    assert f"in.txt changed during each of the last {LOOP_AFTER} builds" in err.getvalue(), err.getvalue()


def test_a_job_writing_its_own_input_is_named_and_paced_and_an_edit_still_builds(project, start_watch):
    """A job that rewrites what it reads (`sort -o in.txt in.txt`) would rebuild for ever: after
    three builds started only by changes made during the build before, watch says so, naming
    the rule, and waits longer before each such build; an edit of another file builds at once."""
    project.weavefile(
        """
        default = ["sorted.txt", "copy.txt"]
        [rules.sort]
        inputs = ["in.txt"]
        outputs = ["sorted.txt"]
        cmd = "sort -o {inputs} {inputs}; cp {inputs} {outputs}"
        [rules.copy]
        inputs = ["other.txt"]
        outputs = ["copy.txt"]
        cmd = "cp {inputs} {outputs}"
        """
    )
    project.write("in.txt", "b\na\n")
    project.write("other.txt", "1\n")
    watch = start_watch()
    warning = "a job may be writing what it reads (read by rule 'sort')"
    watch.wait_for(lambda: warning in watch.output(), "the feedback loop to be named")
    assert watch.output().count(warning) == 1
    project.write("other.txt", "2\n")
    watch.wait_for(lambda: "other.txt" in watch.changed(), "a build for the edit")
    watch.wait_for(lambda: read(project, "copy.txt") == "2\n", "the edit to be built")
    assert watch.interrupt() == 130


def test_restart_ignores_touches_and_same_bytes_and_kills_a_job_ignoring_sigterm(project, start_watch):
    """--restart cancels a job only when an input's content changed: a touch, a save of the
    same bytes or of the same Weavefile cancels nothing. A cancelled job that ignores SIGTERM is
    killed after the grace period, as on Ctrl-C, instead of being waited for."""
    weavefile = TWO_JOBS % B_IGNORES_SIGTERM
    project.weavefile(weavefile)
    project.write("a.txt", "a1\n")
    project.write("b.txt", "b1\n")
    watch = start_watch("--restart", "-j", "2", "all")
    watch.wait_for(lambda: sorted(project.runs_log()) == ["a", "b"], "both jobs to start")
    os.utime(project.root / "a.txt")
    project.write("a.new", "a1\n")
    os.replace(project.root / "a.new", project.root / "a.txt")  # saved again: the same bytes
    replacement = project.root / "Weavefile.new"
    replacement.write_text(textwrap.dedent(weavefile))  # an editor's save: the same bytes
    os.replace(replacement, project.root / "Weavefile")
    project.write("b.txt", "quick\n")  # a real change, seen after the others
    watch.wait_for(lambda: "b.out: an input changed while it ran; cancelling it" in watch.output(),
                   "b to be cancelled")
    assert "a.out: an input changed" not in watch.output()
    # Only now may b finish (when it runs again): had it checked b.txt for the change, it could
    # have seen it before watch did, and finished instead of being cancelled.
    project.write("go_b", "")
    project.write("release_a", "")
    first = watch.wait_result()  # b ignores SIGTERM: it is killed after the grace period
    assert first[1] == "cancelled" and "1 job(s) whose inputs changed" in first[2], watch.output()
    second = watch.wait_result(after=first[0])
    assert second[1] == "ok", watch.output()
    assert project.read("a.out") == "a1\n" and project.read("b.out") == "quick\n"
    # `a` finished but was not recorded (an input touched while a job runs may have been
    # edited and changed back: no tool can tell), so the second build ran it again.
    assert sorted(project.runs_log()) == ["a", "a", "b", "b"]
    assert watch.interrupt() == 130


def test_sigint_during_build_exits_130_and_leaves_no_process(project, start_watch):
    project.weavefile("""
        [rules.wait]
        outputs = ["out.txt"]
        inputs  = ["wait.sh"]
        cmd     = "bash wait.sh; touch {outputs}"
    """)
    project.write("wait.sh", "echo $$ >> pids.txt\nsleep 60 &\necho $! >> pids.txt\nwait\n")
    watch = start_watch()
    pids_file = project.root / "pids.txt"
    watch.wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2,
                   "the job's processes")
    pids = [int(p) for p in pids_file.read_text().split()]
    assert watch.interrupt() == 130
    for pid in pids:
        wait_until(lambda pid=pid: not _alive(pid), f"process {pid} to end")
    assert not project.exists("out.txt")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_watch_turns_the_cycle_collector_back_on(project, start_watch):
    """One-shot `weave` processes run without the cycle collector (entry.py); a watch session
    lasts for hours and drops a whole graph on each Weavefile edit, so it collects."""
    make_pipeline(project)
    watch = start_watch(launcher=("-c", GC_PROBE))
    assert watch.wait_result()[1] == "ok"
    assert watch.interrupt() == 130
    assert "gc-probe enabled=True" in watch.output()


def test_directory_that_appears_later_is_watched(project, start_watch):
    project.weavefile("""
        [rules.gather]
        inputs  = ["inbox/{name}.txt"]
        outputs = ["list.txt"]
        foreach = { name = "inbox/{name}.txt" }
        cmd     = "echo {wildcards.name} > {outputs}"
    """)
    watch = start_watch()
    assert watch.wait_result()[1] == "ok"
    (project.root / "inbox").mkdir()
    project.write("inbox/first.txt", "1\n")
    watch.wait_for(lambda: read(project, "list.txt") == "first\n", "the job for the new file")
    assert watch.interrupt() == 130


@pytest.mark.parametrize("how", ["deleted and made again", "renamed away, another renamed in"])
def test_a_watched_directory_replaced_is_watched_again(project, start_watch, how):
    """A scanned directory deleted and made again (ext4 often gives the new one the old inode
    number, which the watch's identity check took as the same directory), or a nested one
    renamed away and another renamed into its place: later edits in the new directory start
    cycles. Both went unseen for good, with watch looking healthy (an outside tester)."""
    project.weavefile("""
        [rules.merge]
        inputs  = ["in/batch/{s}.txt"]
        outputs = ["merged.txt"]
        foreach = { s = "in/batch/{s}.txt" }
        cmd     = "cat {inputs} > {outputs}"
    """)
    project.write("in/batch/a.txt", "a\n")
    watch = start_watch()
    assert watch.wait_result()[1] == "ok"
    batch = project.root / "in" / "batch"
    if how == "deleted and made again":
        for name in os.listdir(batch):
            os.unlink(batch / name)
        batch.rmdir()
        batch.mkdir()
        project.write("in/batch/b.txt", "b\n")
    else:
        os.rename(batch, project.root / "in" / "old")
        project.write("in/new/b.txt", "b\n")
        os.rename(project.root / "in" / "new", batch)
    watch.wait_for(lambda: read(project, "merged.txt") == "b\n", "the build of the new directory")
    project.write("in/batch/c.txt", "c\n")  # an edit in the new directory: seen
    watch.wait_for(lambda: read(project, "merged.txt") == "b\nc\n", "the build after an edit in it")
    assert watch.interrupt() == 130


def test_poll(project, start_watch):
    make_pipeline(project)
    watch = start_watch("--poll", "--poll-interval", "0.1")
    assert watch.wait_result()[1] == "ok"
    project.write("scripts/up.sh", "tr a-z A-Z | rev\n")
    watch.wait_for(lambda: read(project, "merged.txt") == "AHPLA\nATEB\n", "the rebuild")
    watch.wait_result(after=1)
    os.kill(watch.proc.pid, signal.SIGTERM)  # between builds: as clean as Ctrl-C
    assert watch.proc.wait(timeout=TIMEOUT) == 143


def test_two_sigterms_at_once_end_watch_cleanly(project, start_watch):
    """`timeout` sends SIGTERM to weave and then to its process group: a second signal during
    the shutdown printed a traceback (about 1 run in 5) and exited 1."""
    project.weavefile('[rules.a]\ninputs = ["in.txt"]\noutputs = ["a.txt"]\ncmd = "cp in.txt a.txt"\n')
    project.write("in.txt", "a\n")
    for gap in (0.0, 0.002, 0.005, 0.01, 0.02, 0.05):
        watch = start_watch()
        assert watch.wait_result()[1] == "ok", watch.output()
        os.kill(watch.proc.pid, signal.SIGTERM)
        for _ in range(5):  # more while it shuts down (no timing luck needed: any of them may land there)
            time.sleep(gap)
            if watch.proc.poll() is not None:
                break
            os.killpg(watch.proc.pid, signal.SIGTERM)
        # 143, or killed by a SIGTERM that came after watch mode had ended (a shell shows 143 too)
        assert watch.proc.wait(timeout=TIMEOUT) in (143, -signal.SIGTERM), watch.output()
        # ("weave: interrupted", or "interrupted by SIGTERM" when it lands while a cycle ends)
        assert "Traceback" not in watch.output() and "interrupted" in watch.output(), watch.output()


def test_missing_weavefile_is_an_error(project):
    result = project.run("watch")
    assert result.rc == 2 and "no Weavefile" in result.err, result


def test_an_unknown_target_ends_watch_with_the_error_alone(project):
    project.weavefile('[rules.a]\noutputs = ["a.txt"]\ncmd = "echo a > a.txt"\n')
    result = project.run("watch", "nosuch")
    assert result.rc == 2, result
    assert result.err.startswith("weave: error: no rule makes 'nosuch'"), result
    assert "building" not in result.out + result.err, result



def test_a_directory_output_read_by_a_foreach_starts_no_extra_cycle(project, start_watch):
    """A build that makes (or remakes) a directory output whose contents a foreach reads: the
    directory appearing, or going and coming back, is the build's own write, not a change
    (it started a second, empty cycle after every such build)."""
    project.weavefile(
        """
        default = ["total.txt"]
        [rules.split]
        inputs  = ["data.txt"]
        outputs = ["chunks/"]
        cmd     = "mkdir -p chunks; while read -r k v; do echo $v >> chunks/$k.txt; done < data.txt"
        [rules.total]
        inputs  = ["chunks/{c}.txt"]
        outputs = ["total.txt"]
        foreach = { c = "chunks/{c}.txt" }
        cmd     = "cat /dev/null {inputs} > {outputs}"
        """
    )
    project.write("data.txt", "a apple\nb kiwi\n")
    watch = start_watch()
    first = watch.wait_result()
    assert first[1] == "ok" and first[2].startswith("2 ran"), watch.output()
    project.write("data.txt", "c q\n")
    cycle = watch.wait_cycle_for("data.txt", after=first[0])
    assert cycle[1] == "ok" and cycle[2].startswith("2 ran"), watch.output()
    assert project.read("total.txt") == "q\n"
    # A last edit shows that no cycle came between: the next one is the next number.
    project.write("data.txt", "d r\n")
    last = watch.wait_cycle_for("data.txt", after=cycle[0])
    assert last[0] == cycle[0] + 1, watch.output()
    assert set(watch.changed()) == {"data.txt"}, watch.output()
    assert watch.interrupt() == 130


def test_an_included_file_is_watched_like_the_weavefile(project, start_watch):
    project.weavefile('include = ["rules/copy.toml"]\n')
    project.write("rules/copy.toml", '[rules.copy]\ninputs = ["in.txt"]\noutputs = ["out.txt"]\ncmd = "cp in.txt out.txt"\n')
    project.write("in.txt", "one\n")
    watch = start_watch()
    first = watch.wait_result()
    assert first[1] == "ok" and read(project, "out.txt") == "one\n", watch.output()
    # A new command in the included file: the rules are reloaded and the job runs again.
    project.write("rules/copy.toml", '[rules.copy]\ninputs = ["in.txt"]\noutputs = ["out.txt"]\ncmd = "sort -r in.txt in.txt > out.txt"\n')
    # (its cycle's result, not just the file: the result line comes after the job's output)
    edited = watch.wait_cycle_for("rules/copy.toml", after=first[0])
    assert edited[1] == "ok" and read(project, "out.txt") == "one\none\n", watch.output()
    # A mistake there is reported with its file; its fix is seen.
    project.write("rules/copy.toml", "[rules.copy\n")
    watch.wait_for(
        lambda: any(r[0] > edited[0] and r[1] == "error" for r in watch.results()), "the error in the included file"
    )
    assert "rules/copy.toml:1" in watch.output(), watch.output()
    project.write("rules/copy.toml", '[rules.copy]\ninputs = ["in.txt"]\noutputs = ["out.txt"]\ncmd = "cat in.txt in.txt in.txt > out.txt"\n')
    watch.wait_for(lambda: read(project, "out.txt") == "one\none\none\n", "a build with the fixed included file")
    # A file newly included, with a mistake at once, is watched until it is fixed.
    project.write("rules/more.toml", "[rules.more\n")
    project.weavefile('include = ["rules/copy.toml", "rules/more.toml"]\ndefault = ["more.txt"]\n')
    watch.wait_for(lambda: "rules/more.toml:1" in watch.output(), "the error in the newly included file")
    project.write("rules/more.toml", '[rules.more]\ninputs = ["out.txt"]\noutputs = ["more.txt"]\ncmd = "wc -l < out.txt > more.txt"\n')
    watch.wait_for(lambda: (read(project, "more.txt") or "").strip() == "3", "the newly included rule built")
    assert watch.interrupt() == 130


def test_temporary_outputs_deleted_in_watch_start_no_cycle(project, start_watch):
    project.weavefile(
        """
        default = ["report.txt"]
        [rules.unpack]
        inputs = ["raw.txt"]
        outputs = ["big.txt"]
        temp = true
        cmd = "echo unpack >> runs.log; tr a-z A-Z < raw.txt > big.txt"
        [rules.count]
        inputs = ["big.txt", "param.txt"]
        outputs = ["report.txt"]
        cmd = "echo count >> runs.log; cat big.txt param.txt > report.txt"
        """
    )
    project.write("raw.txt", "hello\n")
    project.write("param.txt", "1\n")
    watch = start_watch()
    first = watch.wait_result()
    assert first[1] == "ok", watch.output()
    assert not project.exists("big.txt")
    # A change to the reader's own input: the temporary file is made again for it, then
    # deleted again; neither the deletion nor the remake starts a cycle of its own.
    project.write("param.txt", "2\n")
    cycle = watch.wait_cycle_for("param.txt", after=first[0])
    assert cycle[1] == "ok", watch.output()
    assert project.read("report.txt") == "HELLO\n2\n"
    assert not project.exists("big.txt")
    assert project.runs_log() == ["unpack", "count", "unpack", "count"]
    assert set(watch.changed()) == {"param.txt"}, watch.output()
    assert watch.interrupt() == 130


def test_restart_on_a_weavefile_edit_while_a_retry_waits_does_not_fail_the_job(project, start_watch):
    """A job whose first attempt failed waits for its retry when the Weavefile is edited
    (--restart): the build stops starting jobs, and that job is not started rather than failed;
    the next cycle, from the new Weavefile, runs it afresh."""
    weavefile = """
        [rules.flaky]
        outputs     = ["out.txt"]
        retries     = 1
        retry_delay = "10m"
        cmd         = "echo try >> runs.log; [ -f fixed ] && echo ok > {outputs}"
        """
    project.weavefile(weavefile)
    watch = start_watch("--restart")
    watch.wait_for(lambda: "attempt 1/2 failed" in watch.output(), "the first attempt to fail")
    project.write("fixed", "")
    project.weavefile(weavefile + "# an edit\n")
    first = watch.wait_result()
    assert first[1] == "cancelled" and "(0 job(s) cancelled, 1 not started" in first[2], watch.output()
    second = watch.wait_result(after=first[0])
    assert second[1] == "ok" and project.read("out.txt") == "ok\n", watch.output()
    assert project.runs_log() == ["try", "try"]
    assert watch.interrupt() == 130

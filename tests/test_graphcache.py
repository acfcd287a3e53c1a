"""The graph cache: used only while provably current; never changes what a build does."""

from __future__ import annotations

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


def test_targets_have_their_own_entries(project):
    make_pipeline(project)
    assert project.run("build", "merged.txt").rc == 0
    assert not project.exists("count.txt")
    assert project.run("build", "count.txt").rc == 0
    assert project.read("count.txt") == "3\n"
    assert_user_error(project.run("build", "nope.txt"), "no rule makes 'nope.txt'")

"""Unit tests of store.py: schema, round trips, pruning, run history and recovery."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavebuild.store import (
    APPLICATION_ID,
    DB_NAME,
    SCHEMA_VERSION,
    STATE_DIR,
    Record,
    Store,
    json_pairs,
    json_strings,
)


def db_path(root: Path) -> Path:
    return root / STATE_DIR / DB_NAME


def make_record(
    signature: str, job_key: str = "job", finished_at: float = 1.0, **changes
) -> Record:
    values = dict(
        signature=signature,
        job_key=job_key,
        rule=job_key.split("[")[0],
        recipe={"cmd": "echo hi", "env": {"A": "1"}, "vars": {"n": 3}, "outputs": ["out"]},
        inputs=[("in.txt", "d" * 32), ("other", "e" * 32)],
        outputs=["f" * 32],
        duration=0.5,
        finished_at=finished_at,
    )
    values.update(changes)
    return Record(**values)


@pytest.fixture
def store(tmp_path):
    opened = Store.open(str(tmp_path))
    yield opened
    opened.close()


def aside_files(root: Path) -> list:
    return sorted(p.name for p in (root / STATE_DIR).iterdir() if ".corrupt-" in p.name)


# -- opening -----------------------------------------------------------------------------------


def test_open_creates_schema(tmp_path, store):
    assert store.path == str(db_path(tmp_path))
    assert store.warnings == []
    assert not store.broken
    connection = sqlite3.connect(store.path)
    try:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert {"files", "records", "jobs", "runs", "attempts"} <= tables
        assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()


def test_reopen_keeps_data(tmp_path):
    first = Store.open(str(tmp_path))
    first.commit(records=[make_record("s1")])
    first.close()
    second = Store.open(str(tmp_path))
    try:
        assert second.warnings == []
        assert second.load_jobs()["job"].signature == "s1"
    finally:
        second.close()


def test_empty_store_loads_nothing(store):
    assert store.load_files() == {}
    assert store.load_jobs() == {}
    assert store.record("nope") is None
    assert store.durations() == {}
    assert store.runs() == []


def test_record_lookups_before_and_after_the_first_records(store, tmp_path):
    assert store.record("sig1") is None  # no records at all: known without a query per lookup
    store.commit(records=[make_record("sig1")])
    assert store.record("sig1") is not None and store.record("sig2") is None
    reopened = Store.open(str(tmp_path))
    try:
        assert reopened.record("sig1") is not None
    finally:
        reopened.close()


# -- round trips -------------------------------------------------------------------------------


def test_commit_and_load_round_trip(store):
    record = make_record("sig1", "train[s=a]", finished_at=10.0)
    row = (12, 1_000, 77, 2_000, "a" * 32, 3_000)
    store.commit(records=[record], files=[("in.txt", row)])
    assert store.load_files() == {"in.txt": row}
    jobs = store.load_jobs()
    assert list(jobs) == ["train[s=a]"]
    assert jobs["train[s=a]"].signature == "sig1"
    assert jobs["train[s=a]"].outputs == ["f" * 32]
    assert jobs["train[s=a]"].duration == 0.5
    loaded = store.record("sig1")
    assert loaded is not None
    assert loaded.signature == "sig1"
    assert loaded.job_key == "train[s=a]"
    assert loaded.rule == "train"
    assert loaded.recipe == record.recipe
    assert loaded.inputs == [("in.txt", "d" * 32), ("other", "e" * 32)]
    assert all(isinstance(item, tuple) for item in loaded.inputs)
    assert loaded.outputs == ["f" * 32]
    assert (loaded.duration, loaded.finished_at) == (0.5, 10.0)
    assert store.durations() == {"train[s=a]": 0.5}


def test_record_with_several_and_no_outputs(store):
    store.commit(
        records=[
            make_record("many", "a", outputs=["1" * 32, "2" * 32]),
            make_record("none", "b", outputs=[]),
        ]
    )
    assert store.record("many").outputs == ["1" * 32, "2" * 32]
    assert store.record("none").outputs == []
    assert store.load_jobs()["b"].outputs == []


def test_insert_or_replace(store):
    store.commit(files=[("f", (1, 1, 1, 1, "old", 1))])
    store.commit(files=[("f", (2, 2, 2, 2, "new", 2))])
    assert store.load_files() == {"f": (2, 2, 2, 2, "new", 2)}
    # A record with the same signature replaces the old one; the job points at the latest.
    store.commit(records=[make_record("s1", duration=1.0)])
    store.commit(records=[make_record("s1", duration=2.0)])
    assert store.record("s1").duration == 2.0
    store.commit(records=[make_record("s2", finished_at=5.0)])
    assert store.load_jobs()["job"].signature == "s2"
    assert store.record("s1") is not None  # older records stay, found by signature
    assert store.durations() == {"job": 0.5}


def test_load_jobs_when_the_record_is_gone(store):
    store.commit(records=[make_record("s1")])
    store.connection.execute("DELETE FROM records")
    jobs = store.load_jobs()
    assert jobs["job"].signature == "s1"
    assert jobs["job"].outputs == []


def test_forget_jobs_and_files(store):
    store.commit(
        records=[make_record("a1", "a"), make_record("b1", "b")],
        files=[("x", (1, 1, 1, 1, "x", 1)), ("y", (1, 1, 1, 1, "y", 1))],
    )
    store.commit(records=[make_record("a2", "a", finished_at=2.0)])
    store.commit(forget_jobs=["a"], forget_files=["x"])
    assert set(store.load_jobs()) == {"b"}
    assert store.record("a1") is None and store.record("a2") is None
    assert store.record("b1") is not None
    assert set(store.load_files()) == {"y"}


def test_forget_then_write_in_one_transaction(store):
    store.commit(records=[make_record("a1", "a")], files=[("x", (1, 1, 1, 1, "x", 1))])
    store.commit(
        records=[make_record("a2", "a")],
        files=[("x", (2, 2, 2, 2, "x2", 2))],
        forget_jobs=["a"],
        forget_files=["x"],
    )
    assert store.load_jobs()["a"].signature == "a2"
    assert store.record("a1") is None
    assert store.load_files() == {"x": (2, 2, 2, 2, "x2", 2)}


def test_commit_is_all_or_nothing(store):
    store.commit(files=[("keep", (1, 1, 1, 1, "k", 1))])
    # An attempt row with too few values fails inside the transaction: the file row of the same
    # commit is rolled back, and the store is marked broken with a warning instead of raising.
    store.commit(files=[("new", (1, 1, 1, 1, "n", 1))], attempts=[(1, "too short")])
    assert set(store.load_files()) == {"keep"}
    assert store.broken
    assert store.warnings and store.warnings[0].startswith("state store error (")
    assert not store.connection.in_transaction


def test_a_commit_sqlite_rolled_back_itself_reports_the_real_error(store):
    """On a full disk SQLite rolls the transaction back itself: the warning names that error,
    not the failed ROLLBACK after it ("cannot rollback - no transaction is active", which is
    all a full disk used to show). The store's size is capped to get there."""
    store.commit(files=[("keep", (1, 1, 1, 1, "k", 1))])
    pages = store.connection.execute("PRAGMA page_count").fetchone()[0]
    store.connection.execute(f"PRAGMA max_page_count = {pages}")
    store.commit(files=[(f"new{i}", (1, 1, 1, 1, "n" * 1000, 1)) for i in range(200)])
    assert store.broken and "database or disk is full" in store.warnings[0], store.warnings
    assert "rollback" not in store.warnings[0]
    assert set(store.load_files()) == {"keep"} and not store.connection.in_transaction


def test_prune_records_keeps_the_newest(store):
    store.commit(records=[make_record(f"a{i}", "a", finished_at=float(i)) for i in range(10)])
    store.commit(records=[make_record(f"b{i}", "b", finished_at=float(i)) for i in range(3)])
    store.prune_records(["a", "b"], keep=4)
    kept = {sig for sig in (f"a{i}" for i in range(10)) if store.record(sig) is not None}
    assert kept == {"a6", "a7", "a8", "a9"}
    assert all(store.record(f"b{i}") is not None for i in range(3))
    store.prune_records(["a"], keep=1)
    assert store.record("a9") is not None and store.record("a8") is None


def test_prune_records_default_keep(store):
    store.commit(records=[make_record(f"a{i}", "a", finished_at=float(i)) for i in range(12)])
    store.prune_records(["a"])
    count = store.connection.execute("SELECT count(*) FROM records").fetchone()[0]
    assert count == 8


def test_undecodable_record_is_none_and_marks_store_broken(store):
    store.commit(records=[make_record("s1")])
    store.connection.execute("UPDATE records SET recipe = 'not json'")
    assert store.record("s1") is None
    assert store.broken
    assert "continuing without it" in store.warnings[0]
    store.commit(records=[make_record("s2")])  # writes are skipped once broken
    assert store.record("s2") is None


# -- runs and attempts -------------------------------------------------------------------------


def test_runs_and_attempts(store):
    first = store.start_run(["weave", "build"], ["all"])
    second = store.start_run(["weave", "build", "-j2"], [])
    assert isinstance(first, int) and second == first + 1
    store.end_run(first, "ok", 3, 0, 1)
    row = (first, "a", "a", 1, 100.0, 1.5, 0, "ok", 1024, 0.3, ".weave/logs/a.log")
    later = (first, "b", "b", 2, 200.0, 0.5, 1, "failed", None, None, ".weave/logs/b.log")
    store.add_attempts([later, row])
    store.commit(attempts=[(second, "c", "c", 1, 50.0, 0.1, 0, "ok", 1, 0.1, "c.log")])
    runs = store.runs()
    assert [r[0] for r in runs] == [second, first]  # newest first
    run = runs[1]
    assert run[3] == '["weave", "build"]' and run[4] == '["all"]'
    assert run[5:] == ("ok", 3, 0, 1)
    assert run[2] is not None and run[2] >= run[1]
    assert runs[0][5] == "running" and runs[0][2] is None
    assert store.attempts(first) == [row[1:], later[1:]]  # ordered by start time
    assert store.attempts(second) == [("c", "c", 1, 50.0, 0.1, 0, "ok", 1, 0.1, "c.log")]
    assert store.runs(limit=1) == runs[:1]


def test_end_run_and_add_attempts_ignore_nothing(store):
    store.end_run(None, "ok", 0, 0, 0)
    store.add_attempts([])
    assert store.runs() == []


# -- recovery ----------------------------------------------------------------------------------


def test_old_schema_version_is_moved_aside(tmp_path):
    first = Store.open(str(tmp_path))
    first.commit(records=[make_record("s1")])
    first.connection.execute("PRAGMA user_version = 0")
    first.close()
    second = Store.open(str(tmp_path))
    try:
        assert len(second.warnings) == 1
        warning = second.warnings[0]
        assert f"schema version 0, expected {SCHEMA_VERSION}" in warning
        assert "moved it to state.db.corrupt-" in warning
        assert second.load_jobs() == {}
        assert any(name.startswith("state.db.corrupt-") for name in aside_files(tmp_path))
    finally:
        second.close()
    third = Store.open(str(tmp_path))  # the fresh store is fine
    try:
        assert third.warnings == []
    finally:
        third.close()


def test_foreign_application_id_is_moved_aside(tmp_path):
    (tmp_path / STATE_DIR).mkdir()
    connection = sqlite3.connect(str(db_path(tmp_path)))
    connection.execute("CREATE TABLE other (x)")
    connection.execute("PRAGMA application_id = 12345")
    connection.commit()
    connection.close()
    store = Store.open(str(tmp_path))
    try:
        assert "not a weave state store" in store.warnings[0]
        assert store.load_files() == {}
        store.commit(files=[("x", (1, 1, 1, 1, "x", 1))])
        assert set(store.load_files()) == {"x"}
    finally:
        store.close()
    assert aside_files(tmp_path)


def test_garbage_file_is_moved_aside(tmp_path):
    (tmp_path / STATE_DIR).mkdir()
    garbage = b"this is not an sqlite database at all" * 100
    db_path(tmp_path).write_bytes(garbage)
    store = Store.open(str(tmp_path))
    try:
        assert len(store.warnings) == 1
        assert "state store was unusable" in store.warnings[0]
        assert "jobs will rerun as if never built" in store.warnings[0]
        assert store.load_jobs() == {}
    finally:
        store.close()
    moved = [name for name in aside_files(tmp_path) if not name.endswith(("-wal", "-shm"))]
    assert len(moved) == 1
    assert (tmp_path / STATE_DIR / moved[0]).read_bytes() == garbage


def test_readonly_open_of_a_missing_store(tmp_path):
    store = Store.open(str(tmp_path), readonly=True)
    assert store.connection is None
    assert store.warnings == []
    assert not (tmp_path / STATE_DIR).exists()  # nothing created
    assert store.load_files() == {} and store.load_jobs() == {}
    assert store.record("x") is None and store.durations() == {}
    assert store.runs() == [] and store.attempts(1) == []
    assert store.start_run(["weave"], []) is None
    store.commit(records=[make_record("s")])
    store.prune_records(["job"])
    store.close()


def test_readonly_open_reads_but_cannot_write(tmp_path):
    writer = Store.open(str(tmp_path))
    writer.commit(records=[make_record("s1")])
    writer.close()
    reader = Store.open(str(tmp_path), readonly=True)
    try:
        assert reader.load_jobs()["job"].signature == "s1"
        reader.commit(records=[make_record("s2")])
        assert reader.broken
        assert reader.record("s2") is None
    finally:
        reader.close()


def test_readonly_open_of_garbage_does_not_move_it(tmp_path):
    (tmp_path / STATE_DIR).mkdir()
    db_path(tmp_path).write_bytes(b"garbage" * 200)
    store = Store.open(str(tmp_path), readonly=True)
    assert store.connection is None
    assert "treating everything as never built" in store.warnings[0]
    assert aside_files(tmp_path) == []
    assert db_path(tmp_path).exists()


def test_close_twice(tmp_path):
    store = Store.open(str(tmp_path))
    store.close()
    store.close()
    assert store.connection is None
    assert os.path.exists(store.path)


def test_rows_by_path_by_tree_and_one_by_one(store):
    """The digest cache read in parts, as a small build reads it: the rows of some paths, of
    one directory's whole tree (not of a sibling whose name starts the same), or of one file."""
    row = (12, 1_000, 77, 2_000, "a" * 32, 3_000)
    names = ["data/a", "data/sub/b", "data2/c", "data.txt", "data-x/d", "datab", "other"]
    store.commit(files=[(name, row) for name in names])
    assert store.load_files(["data/a", "other", "missing"]) == {"data/a": row, "other": row}
    assert store.load_files([f"f{i}" for i in range(1200)] + ["datab"]) == {"datab": row}  # in chunks
    assert store.file_rows_under("data") == {"data/a": row, "data/sub/b": row}
    assert store.file_rows_under("data/") == {"data/a": row, "data/sub/b": row}
    assert store.file_row("data.txt") == row and store.file_row("missing") is None


@given(st.lists(st.text()))
def test_the_command_line_of_a_run_is_stored_as_json_dumps_gives_it(items):
    """A no-op build writes its run's argv without importing json (start-up): the same text,
    so that `weave history` and every reader of the store read it back unchanged."""
    assert json_strings(items) == json.dumps(items)
    assert json.loads(json_strings(items)) == items


@given(st.lists(st.tuples(st.text(), st.text())))
def test_a_records_inputs_are_stored_as_json_encodes_them(pairs):
    """The (path, digest) pairs of a record are written without the JSON encoder when no
    string needs escaping: the same text either way."""
    encode = json.JSONEncoder().encode
    assert json_pairs(pairs, encode) == encode(pairs)
    assert [tuple(pair) for pair in json.loads(json_pairs(pairs, encode))] == pairs


def test_a_records_inputs_fall_back_to_the_encoder_for_what_is_not_a_string_pair():
    encode = json.JSONEncoder().encode
    for pairs in ([("a", None)], [("a", "b", "c")], [("a",)], [("é", "x")], [('q"', "x")]):
        assert json_pairs(pairs, encode) == encode(pairs)

"""Unit tests of plan.py: critical-path priorities and the ready queue."""

from __future__ import annotations

import textwrap

import pytest

from weavebuild.graph import build_graph
from weavebuild.manifest import parse_manifest
from weavebuild.plan import DEFAULT_DURATION, ReadyQueue, critical_path
from weavebuild.resources import ResourcePool

DIAMOND = """
[rules.d]
inputs = ["b", "c"]
outputs = ["d"]
cmd = "x"
[rules.b]
inputs = ["a"]
outputs = ["b"]
cmd = "x"
[rules.c]
inputs = ["a"]
outputs = ["c"]
cmd = "x"
[rules.a]
outputs = ["a"]
cmd = "x"
[rules.lone]
outputs = ["lone"]
cmd = "x"
"""


@pytest.fixture
def diamond(tmp_path):
    manifest = parse_manifest(DIAMOND, path=str(tmp_path / "Weavefile"))
    graph = build_graph(manifest, ["d", "lone"])
    assert [job.key for job in graph.jobs] == ["a", "b", "c", "d", "lone"]
    return graph


def test_critical_path_with_known_durations(diamond):
    weights = critical_path(diamond.jobs, {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0, "lone": 3.0})
    assert weights == {"d": 1.0, "b": 6.0, "c": 3.0, "a": 7.0, "lone": 3.0}


def test_critical_path_without_history_counts_jobs(diamond):
    weights = critical_path(diamond.jobs, {})
    assert DEFAULT_DURATION == 1.0
    assert weights == {"d": 1.0, "b": 2.0, "c": 2.0, "a": 3.0, "lone": 1.0}


def test_unknown_durations_default_to_the_median_of_known_ones(diamond):
    # Known: 2, 4, 10 (one of a job outside the graph); zero counts as unknown.
    weights = critical_path(diamond.jobs, {"b": 4.0, "c": 2.0, "gone": 10.0, "lone": 0.0})
    assert weights == {"d": 4.0, "b": 8.0, "c": 6.0, "a": 12.0, "lone": 4.0}


def test_critical_path_of_a_chain(tmp_path):
    text = "".join(
        textwrap.dedent(
            f"""
            [rules.s{i}]
            {f'inputs = ["f{i - 1}"]' if i else ""}
            outputs = ["f{i}"]
            cmd = "x"
            """
        )
        for i in range(4)
    )
    graph = build_graph(parse_manifest(text, path=str(tmp_path / "Weavefile")), ["f3"])
    weights = critical_path(graph.jobs, {"s0": 0.5, "s1": 0.5, "s2": 0.5, "s3": 0.5})
    assert weights == {"s3": 0.5, "s2": 1.0, "s1": 1.5, "s0": 2.0}


# -- ReadyQueue --------------------------------------------------------------------------------

RESOURCE_RULES = """
[rules.big]
outputs = ["big"]
resources = { gpu = 2 }
cmd = "x"
[rules.small]
outputs = ["small"]
resources = { gpu = 1 }
cmd = "x"
[rules.wide]
outputs = ["wide"]
cpus = 3
cmd = "x"
[rules.plain]
outputs = ["plain"]
cmd = "x"
[rules.plain2]
outputs = ["plain2"]
cmd = "x"
"""


@pytest.fixture
def jobs(tmp_path):
    manifest = parse_manifest(RESOURCE_RULES, path=str(tmp_path / "Weavefile"))
    graph = build_graph(manifest, list(manifest.rules))
    return {job.key: job for job in graph.jobs}


def test_pops_highest_priority_first(jobs):
    pool = ResourcePool(8, {}, [])
    queue = ReadyQueue(pool, {"plain": 1.0, "plain2": 5.0, "wide": 3.0})
    for key in ("plain", "plain2", "wide"):
        queue.push(jobs[key])
    assert len(queue) == 3
    popped = [queue.pop_startable()[0].key for _ in range(3)]
    assert popped == ["plain2", "wide", "plain"]
    assert queue.pop_startable() is None
    assert len(queue) == 0


def test_equal_priorities_pop_in_push_order(jobs):
    queue = ReadyQueue(ResourcePool(8, {}, []), {})
    for key in ("plain2", "plain", "wide"):
        queue.push(jobs[key])
    assert [queue.pop_startable()[0].key for _ in range(3)] == ["plain2", "plain", "wide"]


def test_skips_jobs_that_do_not_fit_without_losing_them(jobs):
    pool = ResourcePool(4, {"gpu": 2}, ["0", "1"])
    queue = ReadyQueue(pool, {"big": 10.0, "small": 5.0, "plain": 1.0})
    for key in ("plain", "small", "big"):
        queue.push(jobs[key])
    job, big_grant = queue.pop_startable()
    assert job.key == "big" and big_grant.gpu_ids == ["0", "1"]
    # small needs a GPU: none is free, so the lower-priority plain job starts instead.
    job, plain_grant = queue.pop_startable()
    assert job.key == "plain" and plain_grant.gpu_ids == []
    assert queue.pop_startable() is None
    assert [j.key for j in queue.peek()] == ["small"]  # still queued
    pool.release(big_grant)
    job, small_grant = queue.pop_startable()
    assert job.key == "small" and small_grant.gpu_ids == ["0"]
    assert len(queue) == 0


def test_several_skipped_jobs_keep_their_order(jobs):
    pool = ResourcePool(3, {"gpu": 2}, ["0", "1"])
    queue = ReadyQueue(pool, {"wide": 9.0, "big": 8.0, "small": 7.0, "plain": 1.0})
    hog = pool.try_acquire(1, {"gpu": 2})  # every GPU and one slot busy
    for key in ("plain", "small", "big", "wide"):
        queue.push(jobs[key])
    # wide needs 3 slots (2 free), big and small need GPUs: plain is the only one that fits.
    assert queue.pop_startable()[0].key == "plain"
    assert queue.pop_startable() is None
    assert len(queue) == 3
    pool.release(hog)
    assert pool.free_slots == 2  # plain still holds one of the three
    job, grant = queue.pop_startable()
    assert job.key == "big"  # wide (3 slots) still does not fit; big is next in priority
    pool.release(grant)


def test_no_free_slot_returns_none_at_once(jobs):
    pool = ResourcePool(1, {}, [])
    queue = ReadyQueue(pool, {})
    queue.push(jobs["plain"])
    queue.push(jobs["plain2"])
    first = queue.pop_startable()
    assert first[0].key == "plain"
    assert queue.pop_startable() is None
    assert len(queue) == 1
    pool.release(first[1])
    assert queue.pop_startable()[0].key == "plain2"


def test_job_wider_than_the_pool_still_runs_alone(jobs):
    pool = ResourcePool(2, {}, [])
    queue = ReadyQueue(pool, {})
    queue.push(jobs["wide"])
    job, grant = queue.pop_startable()
    assert job.key == "wide" and grant.slots == 2


def test_peek_and_drain(jobs):
    queue = ReadyQueue(ResourcePool(2, {}, []), {})
    assert queue.pop_startable() is None
    for key in ("plain", "wide"):
        queue.push(jobs[key])
    assert sorted(j.key for j in queue.peek()) == ["plain", "wide"]
    assert len(queue) == 2
    assert sorted(j.key for j in queue.drain()) == ["plain", "wide"]
    assert len(queue) == 0 and queue.peek() == []

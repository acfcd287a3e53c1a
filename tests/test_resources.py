"""Unit tests of resources.py: --resources parsing, the pool's books, GPU ids and detection."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import assert_user_error
from weavebuild import resources
from weavebuild.errors import UsageError
from weavebuild.resources import (
    ResourcePool,
    detect_gpu_count,
    make_pool,
    parse_resource_args,
    visible_gpu_ids,
)


@pytest.fixture
def no_gpus(monkeypatch, tmp_path):
    """No CUDA_VISIBLE_DEVICES and no nvidia-smi on this machine (a PATH that holds none)."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def fake_nvidia_smi(tmp_path: Path, monkeypatch, script: str) -> None:
    program = tmp_path / "bin" / "nvidia-smi"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(program.parent) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


# -- parse_resource_args -----------------------------------------------------------------------


def test_parse_resource_args_good():
    totals = parse_resource_args(["gpu=4,mem_mb=16000", " x = 1.5 ", "gpu=2", ",,", "y=3."])
    assert totals == {"gpu": 2, "mem_mb": 16000, "x": 1.5, "y": 3}
    assert isinstance(totals["gpu"], int) and isinstance(totals["y"], int)
    assert parse_resource_args([]) == {}
    # Numbers as TOML writes them in [resources]: an exponent, a leading point.
    assert parse_resource_args(["mem_mb=1e3,x=.5,y=2.5E-1,gpu=1e0"]) == {"mem_mb": 1000, "x": 0.5, "y": 0.25, "gpu": 1}


@pytest.mark.parametrize(
    "value", ["gpu", "gpu=", "=2", "gpu=-1", "1gpu=2", "gpu=abc", "gpu=1e", "gpu=.", "gpu=e3", "gpu=inf", "a-b=1"]
)
def test_parse_resource_args_bad(value):
    with pytest.raises(UsageError) as info:
        parse_resource_args([f"ok=1,{value}"])
    assert str(info.value).startswith(f"invalid --resources value '{value}'")
    assert "NAME=AMOUNT" in info.value.hint


@pytest.mark.parametrize(
    "value, message",
    [
        ("gpu=-1", "invalid --resources value 'gpu=-1': '-1' is not an amount (a number of 0 or more)"),
        ("gpu=nan", "invalid --resources value 'gpu=nan': 'nan' is not an amount"),
        ("mem_mb=99999999999999999", "invalid --resources value 'mem_mb=99999999999999999': at most 1e+15"),
        ("gpu=1,gpu=2", "--resources 'gpu=1,gpu=2' gives 'gpu' twice"),
    ],
)
def test_parse_resource_args_says_what_is_wrong(value, message):
    with pytest.raises(UsageError) as info:
        parse_resource_args([value])
    assert str(info.value).startswith(message), str(info.value)


# -- the pool ----------------------------------------------------------------------------------


def test_acquire_and_release_slots_and_amounts():
    pool = ResourcePool(4, {"mem": 10.0}, [])
    first = pool.try_acquire(2, {"mem": 6})
    assert first is not None and first.slots == 2
    assert pool.free_slots == 2 and pool.free == {"mem": 4.0}
    assert not pool.idle
    assert pool.try_acquire(1, {"mem": 5}) is None  # not enough mem
    assert pool.free_slots == 2 and pool.free == {"mem": 4.0}  # a refusal takes nothing
    second = pool.try_acquire(2, {"mem": 4})
    assert second is not None
    assert pool.try_acquire(1, {}) is None  # no slot left
    pool.release(first)
    pool.release(second)
    assert pool.free_slots == 4 and pool.free == {"mem": 10.0}
    assert pool.idle


def test_fractional_amounts_tolerate_rounding():
    pool = ResourcePool(8, {"mem": 0.3}, [])
    grants = [pool.try_acquire(1, {"mem": 0.1}) for _ in range(3)]
    assert all(grants)
    assert pool.try_acquire(1, {"mem": 0.1}) is None


def test_resources_without_a_total_are_unlimited():
    pool = ResourcePool(2, {}, [])
    grant = pool.try_acquire(1, {"licence": 100, "gpu": 1})
    assert grant is not None and grant.gpu_ids == []
    assert pool.free == {}


def test_cpus_are_clamped_to_the_slots():
    pool = ResourcePool(2, {}, [])
    assert pool.slots_for(8) == 2
    assert pool.slots_for(1) == 1
    grant = pool.try_acquire(8, {})
    assert grant is not None and grant.slots == 2
    assert pool.free_slots == 0
    pool.release(grant)
    assert pool.idle


def test_gpu_ids_are_distinct_and_returned():
    pool = ResourcePool(8, {"gpu": 4}, ["0", "1", "2", "3"])
    a = pool.try_acquire(1, {"gpu": 2})
    b = pool.try_acquire(1, {"gpu": 1})
    c = pool.try_acquire(1, {"gpu": 1})
    assert (a.gpu_ids, b.gpu_ids, c.gpu_ids) == (["0", "1"], ["2"], ["3"])
    assert pool.try_acquire(1, {"gpu": 1}) is None
    pool.release(b)
    pool.release(a)
    assert pool.free_gpu_ids == ["0", "1", "2"]  # returned, in id order
    d = pool.try_acquire(1, {"gpu": 3})
    assert d.gpu_ids == ["0", "1", "2"]
    assert set(d.gpu_ids).isdisjoint(c.gpu_ids)
    pool.release(c)
    pool.release(d)
    assert pool.free_gpu_ids == ["0", "1", "2", "3"]
    assert pool.free == {"gpu": 4}


def test_gpu_ids_sort_numerically_then_by_name():
    pool = ResourcePool(8, {"gpu": 3}, ["10", "2", "GPU-abc"])
    grant = pool.try_acquire(1, {"gpu": 3})
    pool.release(grant)
    assert pool.free_gpu_ids == ["2", "10", "GPU-abc"]


def test_job_without_gpu_gets_no_ids():
    pool = ResourcePool(8, {"gpu": 2}, ["0", "1"])
    grant = pool.try_acquire(1, {"mem": 3})
    assert grant.gpu_ids == []
    assert pool.free_gpu_ids == ["0", "1"]


def test_check_feasible():
    pool = ResourcePool(2, {"gpu": 2, "mem_mb": 1000}, ["0", "1"])
    pool.check_feasible([("ok", {"gpu": 2, "mem_mb": 1000, "other": 99})])
    with pytest.raises(UsageError) as info:
        pool.check_feasible([("ok", {"gpu": 1}), ("train", {"gpu": 3})])
    assert str(info.value) == "rule 'train' needs gpu=3 but only gpu=2 is available"
    assert info.value.hint == "raise the total with --resources gpu=3 or lower the rule's request"
    with pytest.raises(UsageError, match=r"needs mem_mb=1000.5 but only mem_mb=1000 is"):
        pool.check_feasible([("big", {"mem_mb": 1000.5})])
    with pytest.raises(
        UsageError, match=r"rule 'half' asks for gpu=0.5; GPUs are handed out whole"
    ):
        pool.check_feasible([("half", {"gpu": 0.5})])


def test_fractional_gpu_refused_even_without_a_total():
    pool = ResourcePool(2, {}, [])
    with pytest.raises(UsageError, match="handed out whole"):
        pool.check_feasible([("half", {"gpu": 1.5})])


# -- detection and make_pool -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, ids",
    [("0,1", ["0", "1"]), (" 2 , 3 ,", ["2", "3"]), ("", []), ("-1", []), ("GPU-x", ["GPU-x"])],
)
def test_visible_gpu_ids(monkeypatch, value, ids):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert visible_gpu_ids() == ids
    assert detect_gpu_count() == len(ids)


def test_no_gpus_detected(no_gpus):
    assert visible_gpu_ids() is None
    assert detect_gpu_count() == 0
    pool = make_pool(4, {}, {}, gpu_needed=True)
    assert "gpu" not in pool.totals
    assert pool.free_gpu_ids == []
    grant = pool.try_acquire(1, {"gpu": 1})  # GPU jobs still run, without ids
    assert grant is not None and grant.gpu_ids == []


def test_detection_through_nvidia_smi(tmp_path, monkeypatch):
    fake_nvidia_smi(
        tmp_path,
        monkeypatch,
        'echo "GPU 0: H100 (UUID: a)"\necho "GPU 1: H100 (UUID: b)"\necho junk\n',
    )
    assert detect_gpu_count() == 2
    pool = make_pool(4, {}, {}, gpu_needed=True)
    assert pool.totals == {"gpu": 2}
    assert pool.free_gpu_ids == ["0", "1"]


def test_failing_nvidia_smi_means_no_gpus(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, 'echo "GPU 0: x"\nexit 9\n')
    assert detect_gpu_count() == 0


def test_make_pool_with_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    pool = make_pool(3, {}, {}, gpu_needed=True)
    assert pool.slots == 3
    assert pool.totals == {"gpu": 2}
    first = pool.try_acquire(1, {"gpu": 1})
    second = pool.try_acquire(1, {"gpu": 1})
    assert (first.gpu_ids, second.gpu_ids) == (["4"], ["6"])


def test_make_pool_explicit_total_takes_the_first_visible_ids(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,7")
    pool = make_pool(3, {"gpu": 1}, {"gpu": 2}, gpu_needed=False)  # the CLI overrides
    assert pool.totals == {"gpu": 2}
    assert pool.free_gpu_ids == ["4", "6"]


def test_make_pool_total_beyond_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(UsageError, match=r"gpu=2 but CUDA_VISIBLE_DEVICES lists 1 GPU\(s\)"):
        make_pool(3, {}, {"gpu": 2}, gpu_needed=True)


def test_make_pool_narrows_the_weavefile_total_to_the_visible_devices(monkeypatch):
    """The Weavefile's total is the machine it was written for; CUDA_VISIBLE_DEVICES narrows it
    (with a note), to no GPU at all on a CPU-only box, where GPU jobs run without ids."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    pool = make_pool(2, {"gpu": 4}, {}, gpu_needed=True)
    assert pool.totals == {"gpu": 1} and pool.free_gpu_ids == ["5"]
    assert pool.notes == [
        "the Weavefile's [resources] sets gpu=4, but CUDA_VISIBLE_DEVICES lists 1 GPU(s): using 1"
    ]
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        pool = make_pool(2, {"gpu": 1}, {}, gpu_needed=True)
        assert pool.totals == {} and pool.free_gpu_ids == []
        assert pool.notes == [
            "the Weavefile's [resources] sets gpu=1, but CUDA_VISIBLE_DEVICES lists none: GPU jobs run without GPUs"
        ]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,4")
    pool = make_pool(2, {"gpu": 2}, {}, gpu_needed=True)
    assert pool.totals == {"gpu": 2} and pool.free_gpu_ids == ["3", "4"] and pool.notes == []


def test_a_cpu_only_box_runs_a_weavefile_that_declares_a_gpu(project):
    """CUDA_VISIBLE_DEVICES="" (a CI box) with `[resources] gpu = 1`: the build runs, says why,
    and hands the GPU job no GPU; `build -n` agrees with `plan`."""
    project.weavefile(
        """
        [resources]
        gpu = 1
        [rules.train]
        outputs = ["model.txt"]
        resources = { gpu = 1 }
        cmd = "echo cuda=[$CUDA_VISIBLE_DEVICES] > {outputs}"
        """
    )
    hidden = {"CUDA_VISIBLE_DEVICES": ""}
    assert project.run("build", "-n", env=hidden).rc == 0 and project.run("plan", env=hidden).rc == 0
    result = project.run("build", env=hidden)
    assert result.rc == 0, result.err
    assert "CUDA_VISIBLE_DEVICES lists none: GPU jobs run without GPUs" in result.err
    assert project.read("model.txt") == "cuda=[]\n"


def test_make_pool_explicit_total_without_visible_devices(no_gpus):
    pool = make_pool(2, {"gpu": 3, "mem_mb": 100}, {"mem_mb": 50}, gpu_needed=True)
    assert pool.totals == {"gpu": 3, "mem_mb": 50}
    assert pool.free_gpu_ids == ["0", "1", "2"]


def test_make_pool_does_not_detect_when_no_job_needs_a_gpu(monkeypatch):
    def boom() -> int:
        raise AssertionError("detection should not run")

    monkeypatch.setattr(resources, "detect_gpu_count", boom)
    pool = make_pool(2, {"mem_mb": 10}, {}, gpu_needed=False)
    assert pool.totals == {"mem_mb": 10}
    assert pool.free_gpu_ids == []


def test_an_absurd_gpu_total_is_an_error_not_a_hang(project):
    """Each GPU gets an id to hand out: a mistyped total (1e12) is refused at once."""
    project.weavefile('[rules.a]\noutputs = ["a"]\nresources = { gpu = 1 }\ncmd = "touch a"\n')
    assert_user_error(
        project.run("--resources", "gpu=1000000000000", "build", timeout=60),
        "gpu=1000000000000 is more GPUs than weave hands out",
    )
    assert_user_error(project.run("--resources", "gpu=1.5", "build", timeout=60), "gpu=1.5: GPUs are counted whole")


def test_a_bad_gpu_total_is_an_error_even_when_nothing_would_run(project):
    project.weavefile('[rules.a]\noutputs = ["a"]\ncmd = "touch a"\n')
    assert project.run("build").rc == 0
    assert project.run("build").rc == 0  # a no-op, answered by the stamp
    assert_user_error(project.run("build", "--resources", "gpu=1.5"), "gpu=1.5: GPUs are counted whole")
    assert_user_error(
        project.run("build", "--resources", "gpu=2", env={"CUDA_VISIBLE_DEVICES": "0"}),
        "gpu=2 but CUDA_VISIBLE_DEVICES lists 1 GPU(s)",
    )
    assert_user_error(project.run("build", "-n", "--resources", "gpu=1.5"), "GPUs are counted whole")


def test_dry_run_refuses_what_the_build_would(project):
    """`build -n` is the build's plan: a job needing more than the total is refused as the
    build refuses it (it was listed as 'would run')."""
    project.weavefile('[rules.a]\noutputs = ["a"]\nresources = { gpu = 2 }\ncmd = "touch a"\n')
    message = "rule 'a' needs gpu=2 but only gpu=1 is available"
    assert_user_error(project.run("build", "--resources", "gpu=1", "a"), message)
    assert_user_error(project.run("build", "-n", "--resources", "gpu=1", "a"), message)
    result = project.run("build", "-n", "--resources", "gpu=2", "a")
    assert result.rc == 0 and "would run 1 of 1 jobs" in result.out

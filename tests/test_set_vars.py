"""`--set NAME=VALUE`: a var's value for one run, tracked like a value written in the file."""

from __future__ import annotations

import pytest

from conftest import assert_user_error
from weavebuild import Project

WEAVEFILE = """
[vars]
epochs = 3
lr = 0.5
name = "base"
fast = false
layers = [64, 32]

[rules.train]
outputs = ["model.txt"]
cmd = "echo epochs={vars.epochs} lr={vars.lr} fast={vars.fast} layers={vars.layers} > {outputs}; echo train >> runs.log"

[rules.tag]
outputs = ["tag.txt"]
cmd = "echo '{vars.name}' > {outputs}; echo tag >> runs.log"

[rules.all]
inputs = ["model.txt", "tag.txt"]
"""


@pytest.fixture
def vars_project(project):
    project.weavefile(WEAVEFILE)
    first = project.run("build", "all")
    assert first.rc == 0, first
    project.clear_runs()
    return project


def test_set_reruns_only_the_jobs_using_the_var_and_the_default_comes_back(vars_project):
    project = vars_project
    run = project.run("build", "all", "--set", "epochs=5", "-v")
    assert run.rc == 0, run
    assert project.runs_log() == ["train"]
    assert "var changed: epochs" in run.out
    assert project.read("model.txt") == "epochs=5 lr=0.5 fast=false layers=64 32\n"
    project.clear_runs()
    # The same values again: a no-op (the stamp of this set of values).
    again = project.run("--set", "epochs=5", "build", "all")
    assert again.rc == 0 and project.runs_log() == [], again
    # Without it: the default is back, and the job reruns (never a stale no-op).
    back = project.run("build", "all")
    assert back.rc == 0 and project.runs_log() == ["train"], back
    assert project.read("model.txt") == "epochs=3 lr=0.5 fast=false layers=64 32\n"


def test_set_to_the_files_value_runs_nothing(vars_project):
    project = vars_project
    for value in ("3", "3.0", "+3"):
        run = project.run("build", "all", "--set", f"epochs={value}", "--set", "layers=[64, 32]", "--set", "name=base")
        assert run.rc == 0, run
    assert project.runs_log() == []


def test_set_values_of_every_kind(vars_project):
    project = vars_project
    run = project.run(
        "build", "all",
        "--set", "lr=1e-3", "--set", "fast=true", "--set", "layers=[128, 64, 8]",
        "--set", "name=a=b c",  # the text after the first '=', spaces included
        "--set", "epochs=7", "--set", "epochs=9",  # the last one wins
    )
    assert run.rc == 0, run
    assert project.read("model.txt") == "epochs=9 lr=0.001 fast=true layers=128 64 8\n"
    assert project.read("tag.txt") == "a=b c\n"


def test_plan_and_status_see_the_set_values(vars_project):
    project = vars_project
    plan = project.run("plan", "all", "--set", "fast=true")
    assert plan.rc == 0, plan
    assert "would run 1 of 2 jobs:\n  [1/1] train model.txt  (var changed: fast)\n" in plan.out, plan
    assert project.runs_log() == []
    status = project.run("--set", "fast=true", "status", "all")
    assert status.rc == 1, status  # stale with these values
    assert project.run("status", "all").rc == 0  # up to date with the file's


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--set", "epoch=5"], ["no var 'epoch'", "did you mean 'epochs'?"]),
        (["--set", "seed=1"], ["no var 'seed'", "its vars: epochs, fast, layers, lr, name"]),
        (["--set", "epochs=many"], ["'epochs' is a number", "Weavefile:3", "e.g. --set epochs=3"]),
        (["--set", "fast=yes"], ["'fast' is a boolean", "e.g. --set fast=true"]),
        (["--set", "layers=64"], ["'layers' is a list", "TOML array"]),
        (["--set", "epochs"], ["'epochs' is not NAME=VALUE"]),
        (["--set", "=5"], ["'=5' is not NAME=VALUE"]),
        (["--set", "my-var=5"], ["'my-var=5' is not NAME=VALUE"]),
    ],
)
def test_bad_set_is_a_usage_error(vars_project, args, fragments):
    project = vars_project
    result = project.run("build", "all", *args)
    assert_user_error(result, *fragments)
    assert project.runs_log() == []


def test_api_overrides(vars_project):
    project = vars_project
    result = Project.load(str(project.root), overrides={"epochs": "4"}).build(["all"])
    assert [job.key for job in result.ran] == ["train"]
    assert project.read("model.txt").startswith("epochs=4 ")
    assert Project.load(str(project.root), overrides={"epochs": "4"}).build(["all"]).ran == []

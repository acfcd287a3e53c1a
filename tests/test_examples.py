"""Every bundled example builds, rebuilds nothing, and reruns exactly the jobs an edit touches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import Project

EXAMPLES = Path(__file__).resolve().parent.parent / "weavefile_examples"


@pytest.fixture
def example(tmp_path):
    def copy(name: str) -> Project:
        target = tmp_path / name
        shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns(".weave", "__pycache__"))
        return Project(target)

    return copy


def jobs_started(result) -> int:
    assert result.rc == 0, result
    return len(result.started)


def edit(project: Project, path: str, old: str, new: str) -> None:
    text = project.read(path)
    assert old in text, (path, old)
    project.write(path, text.replace(old, new, 1), dedent=False)


def test_ml_pipeline(example):
    project = example("ml_pipeline")
    first = project.run("build", "reports/metrics.json")
    assert jobs_started(first) == 3
    metrics = project.read("reports/metrics.json")
    assert '"accuracy"' in metrics
    assert "nothing to do" in project.run("build").out
    assert jobs_started(project.run("build", "all")) == 1
    with open(project.root / "scripts/train.py", "a") as handle:
        handle.write("# a comment-only edit\n")
    result = project.run("build", "all")
    assert result.started == ["train models/softmax/"]
    assert "by early cutoff" in result.out
    assert project.read("reports/metrics.json") == metrics
    edit(project, "Weavefile", "epochs = 300", "epochs = 400")
    assert jobs_started(project.run("build", "all")) == 3


def test_fanout(example):
    project = example("fanout")
    assert jobs_started(project.run("build", "-j", "2")) == 25
    assert "nothing to do" in project.run("build").out
    with open(project.root / "raw/S05.fa", "a") as handle:
        handle.write(">S05_extra\nACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGT\n")
    result = project.run("build")
    assert sorted(result.started) == sorted(
        ["trim trimmed/S05.fa", "profile profiles/S05.json", "summarize results/summary.tsv"]
    )
    shutil.copy(project.root / "raw/S01.fa", project.root / "raw/S13.fa")
    assert jobs_started(project.run("build")) == 3
    for path in (project.root / "raw").glob("*.fa"):
        path.touch()
    assert "nothing to do" in project.run("build").out


def test_recipe_runs_branches_in_parallel(example):
    project = example("recipe")
    result = project.run("build", "-j", "6")
    assert jobs_started(result) == 12
    assert project.read("table/plate.txt").startswith("plate: pasta al pomodoro for 2")
    project.write("pantry/basil.txt", "1 handful Genovese basil\n")
    assert jobs_started(project.run("build")) == 2
    edit(project, "Weavefile", "servings = 2", "servings = 4")
    assert project.run("build").started == ["plate table/plate.txt"]


def test_from_make_matches_its_makefile(example, tmp_path):
    project = example("from_make")
    assert jobs_started(project.run("build")) == 5
    if shutil.which("make"):
        original = tmp_path / "make_copy"
        shutil.copytree(EXAMPLES / "from_make", original)
        import subprocess

        subprocess.run(["make", "-s"], cwd=original, check=True, capture_output=True)
        for path in sorted((project.root / "build").rglob("*")):
            if path.is_file():
                relative = path.relative_to(project.root)
                assert (original / relative).read_bytes() == path.read_bytes(), relative
    with open(project.root / "scripts/totals.py", "a") as handle:
        handle.write("# note\n")
    result = project.run("build")
    assert jobs_started(result) == 4 and "by early cutoff" in result.out


def test_from_snakemake(example):
    project = example("from_snakemake")
    assert jobs_started(project.run("build")) == 5
    assert "nothing to do" in project.run("build").out
    with open(project.root / "books/the_river.txt", "a") as handle:
        handle.write("The river froze.\n")
    assert jobs_started(project.run("build")) == 2

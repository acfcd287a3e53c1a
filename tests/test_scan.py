"""Unit tests of scan.py: verdicts and reasons, with a real Store and FileState in a temp dir."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from weavebuild.filestate import FileState
from weavebuild.graph import build_graph, recipe_of
from weavebuild.manifest import parse_manifest
from weavebuild.scan import (
    ALWAYS,
    COMMAND_CHANGED,
    ENV_CHANGED,
    FORCED,
    INPUT_CHANGED,
    INPUT_MISSING,
    INPUTS_CHANGED,
    NEVER_BUILT,
    OUTPUT_MISSING,
    OUTPUT_MODIFIED,
    RECORD_MISMATCH,
    VAR_CHANGED,
    Reason,
    Scanner,
    Verdict,
    inputs_difference,
    signature_of,
)
from weavebuild.store import Record, Store

WEAVEFILE = """
[vars]
n = 1
[rules.make]
inputs = ["in.txt"]
outputs = ["out.txt"]
env = { A = "1" }
cmd = "transform {inputs} {vars.n} > {outputs}"
"""


class Workspace:
    """A project directory with a Weavefile, a real store, and helpers to 'run' jobs."""

    def __init__(self, root: Path):
        self.root = root
        self.store = Store.open(str(root))
        self.weavefile(WEAVEFILE)
        self.write("in.txt", "v1")

    def write(self, name: str, content: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)

    def weavefile(self, text: str) -> None:
        self.write("Weavefile", textwrap.dedent(text))

    def job(self, key: str = "make"):
        path = self.root / "Weavefile"
        manifest = parse_manifest(path.read_text(), path=str(path))
        graph = build_graph(manifest, list(manifest.rules))
        return graph.job(key)

    def scanner(self) -> Scanner:
        # A fresh FileState per check: digests are memoised for the length of one build.
        files = FileState(str(self.root), self.store.load_files())
        return Scanner(files, self.store, self.store.load_jobs())

    def check(self, key: str = "make", forced: bool = False) -> Verdict:
        return self.scanner().check(self.job(key), forced=forced)

    def reasons(self, key: str = "make", forced: bool = False) -> List[Reason]:
        return self.check(key, forced).reasons

    def build(self, key: str = "make", outputs: Optional[Dict[str, str]] = None) -> Verdict:
        """Pretend the job ran: write its outputs and commit a success record (as the builder)."""
        job = self.job(key)
        scanner = self.scanner()
        verdict = scanner.check(job)
        for path in job.outputs:
            content = (outputs or {}).get(path, f"{path} from {verdict.inputs}")
            self.write(path, content)
        scanner.files.forget(job.outputs)
        digests = [scanner.files.digest(path) for path in job.outputs]
        record = Record(
            verdict.signature,
            job.key,
            job.rule.name,
            recipe_of(job),
            verdict.inputs,
            digests,
            0.1,
            time.time(),
        )
        self.store.commit(records=[record], files=scanner.files.take_dirty())
        return verdict


@pytest.fixture
def ws(tmp_path):
    workspace = Workspace(tmp_path)
    yield workspace
    workspace.store.close()


def test_never_built(ws):
    verdict = ws.check()
    assert verdict.reasons == [Reason(NEVER_BUILT)]
    assert not verdict.up_to_date
    assert verdict.signature is not None and len(verdict.signature) == 32
    assert [path for path, _ in verdict.inputs] == ["in.txt"]


def test_up_to_date_after_a_record(ws):
    built = ws.build()
    verdict = ws.check()
    assert verdict.up_to_date and verdict.reasons == []
    assert verdict.signature == built.signature


def test_output_modified(ws):
    ws.build(outputs={"out.txt": "good"})
    ws.write("out.txt", "evil")  # same size, written at once: the racy check still sees it
    assert ws.reasons() == [Reason(OUTPUT_MODIFIED, "out.txt")]


def test_output_missing(ws):
    ws.build()
    (ws.root / "out.txt").unlink()
    assert ws.reasons() == [Reason(OUTPUT_MISSING, "out.txt")]


def test_input_changed(ws):
    ws.build()
    ws.write("in.txt", "v2")
    verdict = ws.check()
    assert verdict.reasons == [Reason(INPUT_CHANGED, "in.txt")]
    assert str(verdict.reasons[0]) == "input changed: in.txt"


def test_input_missing(ws):
    job = ws.job()
    (ws.root / "in.txt").unlink()
    verdict = ws.scanner().check(job)
    assert verdict.reasons == [Reason(INPUT_MISSING, "in.txt")]
    assert verdict.signature is None


GLOB_WEAVEFILE = """
[rules.make]
inputs = ["src/*.txt"]
outputs = ["out.txt"]
cmd = "cat src/*.txt > {outputs}"
"""


def test_inputs_added_and_removed(ws):
    ws.weavefile(GLOB_WEAVEFILE)
    ws.write("src/a.txt", "a")
    ws.write("src/b.txt", "b")
    ws.build()
    assert ws.reasons() == []
    ws.write("src/c.txt", "c")
    assert ws.reasons() == [Reason(INPUTS_CHANGED, "+src/c.txt")]
    (ws.root / "src" / "a.txt").unlink()
    assert ws.reasons() == [Reason(INPUTS_CHANGED, "+src/c.txt, -src/a.txt")]
    ws.write("src/b.txt", "B")
    assert ws.reasons() == [
        Reason(INPUTS_CHANGED, "+src/c.txt, -src/a.txt"),
        Reason(INPUT_CHANGED, "src/b.txt"),
    ]


def test_inputs_difference_names_a_few_and_is_linear_in_the_fan_in():
    assert inputs_difference(["a", "b"], ["b", "c"]) == "+c, -a"
    assert inputs_difference(["a", "b"], ["b", "a"]) == "order changed"
    assert inputs_difference([f"{i}" for i in range(10)], []) == "-0, -1, -2"
    # A fan-in over 200k files that lost one: each build that sees it explains it. Quadratic
    # (the old code) would take hours; a subprocess, so that such a run can be stopped.
    code = (
        "from weavebuild.scan import inputs_difference\n"
        "old = [f'src/{i:06d}.txt' for i in range(200_000)]\n"
        "print(inputs_difference(old, old[:7] + old[8:]))\n"
    )
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "-src/000007.txt"


def test_inputs_reordered(ws):
    ws.weavefile(
        """
        [rules.make]
        inputs = ["a", "b"]
        outputs = ["out.txt"]
        cmd = "cat a b > {outputs}"
        """
    )
    ws.write("a", "a")
    ws.write("b", "b")
    ws.build()
    ws.weavefile(
        """
        [rules.make]
        inputs = ["b", "a"]
        outputs = ["out.txt"]
        cmd = "cat a b > {outputs}"
        """
    )
    assert ws.reasons() == [Reason(INPUTS_CHANGED, "order changed")]


def test_var_changed(ws):
    ws.build()
    ws.weavefile(WEAVEFILE.replace("n = 1", "n = 2"))
    # The command changed only because of the var: the var is the reason, not the command.
    assert ws.reasons() == [Reason(VAR_CHANGED, "n")]


def test_unused_var_change_keeps_the_job_up_to_date(ws):
    ws.build()
    ws.weavefile(WEAVEFILE.replace("n = 1", "n = 1\nother = 5"))
    assert ws.reasons() == []


def test_env_changed(ws):
    ws.build()
    ws.weavefile(WEAVEFILE.replace('A = "1"', 'A = "2", B = "x"'))
    assert ws.reasons() == [Reason(ENV_CHANGED, "A"), Reason(ENV_CHANGED, "B")]


def test_command_changed(ws):
    ws.build()
    ws.weavefile(WEAVEFILE.replace("transform", "transform --fast"))
    assert ws.reasons() == [Reason(COMMAND_CHANGED)]
    assert str(Reason(COMMAND_CHANGED)) == "command changed"


def test_outputs_changed(ws):
    ws.build()
    ws.weavefile(WEAVEFILE.replace('outputs = ["out.txt"]', 'outputs = ["out.txt", "more.txt"]'))
    reasons = ws.reasons()
    assert Reason(COMMAND_CHANGED, "outputs changed") in reasons
    assert Reason(COMMAND_CHANGED) not in reasons  # once: "command changed; command changed: outputs changed"


def test_several_reasons_at_once(ws):
    ws.build()
    ws.write("in.txt", "v2")
    ws.weavefile(WEAVEFILE.replace("n = 1", "n = 3").replace('A = "1"', 'A = "0"'))
    assert ws.reasons() == [
        Reason(VAR_CHANGED, "n"),
        Reason(ENV_CHANGED, "A"),
        Reason(INPUT_CHANGED, "in.txt"),
    ]


def test_many_changed_inputs_are_named_up_to_a_few_then_counted(ws):
    """A fan-in over thousands of edited files names five and counts the rest (a 20k-file
    merge's reasons would otherwise be a megabyte long)."""
    for index in range(8):
        ws.write(f"parts/p{index}.txt", "v1")
    ws.weavefile(
        """
        [rules.merge]
        inputs = ["parts/*.txt"]
        outputs = ["all.txt"]
        cmd = "cat {inputs} > {outputs}"
        """
    )
    ws.build("merge")
    for index in range(8):
        ws.write(f"parts/p{index}.txt", "v2")
    assert ws.reasons("merge") == [Reason(INPUT_CHANGED, f"parts/p{index}.txt") for index in range(5)] + [
        Reason(INPUTS_CHANGED, "3 more")
    ]
    ws.write("parts/p0.txt", "v1")  # back as recorded: one fewer changed
    assert ws.reasons("merge")[-1] == Reason(INPUTS_CHANGED, "2 more")


def test_forced(ws):
    built = ws.build()
    verdict = ws.check(forced=True)
    assert verdict.reasons == [Reason(FORCED)]
    assert verdict.signature == built.signature
    assert ws.check().up_to_date


def test_job_without_outputs_always_runs(ws):
    ws.weavefile(
        """
        [rules.lint]
        inputs = ["in.txt"]
        cmd = "lint {inputs}"
        """
    )
    verdict = ws.check("lint")
    assert verdict.reasons == [Reason(ALWAYS)]
    assert verdict.signature is None
    assert [path for path, _ in verdict.inputs] == ["in.txt"]


def test_record_found_by_signature_when_the_latest_differs(ws):
    first = ws.build(outputs={"out.txt": "made from v1"})
    ws.write("in.txt", "v2")
    second = ws.build(outputs={"out.txt": "made from v2"})
    assert second.signature != first.signature
    assert ws.store.load_jobs()["make"].signature == second.signature
    ws.write("in.txt", "v1")  # revert the input
    # The v1 record is found by signature, but the output on disk is the one v2 made: the
    # reason is explained against the latest run, which had another input.
    verdict = ws.check()
    assert verdict.signature == first.signature
    assert verdict.reasons == [Reason(INPUT_CHANGED, "in.txt")]
    # With the output v1 made back in place (as an output cache would restore it), the old
    # record makes the job up to date although the latest run was v2.
    ws.write("out.txt", "made from v1")
    verdict = ws.check()
    assert verdict.up_to_date
    assert verdict.signature == first.signature


def test_reverted_record_with_missing_output(ws):
    ws.build()
    ws.write("in.txt", "v2")
    ws.build()
    ws.write("in.txt", "v1")
    (ws.root / "out.txt").unlink()
    assert ws.reasons() == [Reason(INPUT_CHANGED, "in.txt")]


def test_record_with_a_different_number_of_outputs(ws):
    verdict = ws.check()
    job = ws.job()
    record = Record(
        verdict.signature, job.key, "make", recipe_of(job), verdict.inputs, ["a", "b"], 0.1, 1.0
    )
    ws.store.commit(records=[record])
    assert ws.reasons() == [Reason(RECORD_MISMATCH)]


def test_latest_record_pruned(ws):
    ws.build()
    ws.store.connection.execute("DELETE FROM records")
    ws.write("in.txt", "v2")
    assert ws.reasons() == [Reason(NEVER_BUILT)]


def test_no_difference_found(ws):
    # The latest record has the same recipe and inputs but another signature (e.g. written by
    # an older signature scheme): nothing to point at.
    verdict = ws.check()
    job = ws.job()
    record = Record("0" * 32, job.key, "make", recipe_of(job), verdict.inputs, ["x"], 0.1, 1.0)
    ws.store.commit(records=[record])
    assert ws.reasons() == [Reason(NEVER_BUILT, "no matching record")]


def test_scanner_reuses_the_job_recipe_digest(ws):
    job = ws.job()
    scanner = ws.scanner()
    assert scanner.recipe(job) == job.recipe
    job.recipe = None
    digest = scanner.recipe(job)
    assert digest == job.recipe and len(digest) == 32


# -- signatures and reasons --------------------------------------------------------------------


def test_signature_is_unambiguous_and_ordered():
    assert signature_of("r", [("ab", "c")]) != signature_of("r", [("a", "bc")])
    assert signature_of("r", [("a", "1"), ("b", "2")]) != signature_of(
        "r", [("b", "2"), ("a", "1")]
    )
    assert signature_of("r", []) != signature_of("s", [])
    assert signature_of("r", [("a", "1")]) == signature_of("r", [("a", "1")])
    assert signature_of("r", [("a", "1")]) != signature_of("r", [("a", "2")])


def test_reason_value_semantics():
    assert Reason(INPUT_CHANGED, "a") == Reason(INPUT_CHANGED, "a")
    assert Reason(INPUT_CHANGED, "a") != Reason(INPUT_CHANGED, "b")
    assert Reason(INPUT_CHANGED, "a") != (INPUT_CHANGED, "a")
    assert len({Reason(FORCED), Reason(FORCED)}) == 1
    assert str(Reason(OUTPUT_MISSING, "x")) == "output missing: x"
    assert str(Reason(FORCED)) == "forced"
    assert Reason(VAR_CHANGED, "n").to_json() == {"kind": "var changed", "detail": "n"}
    assert repr(Reason(FORCED)) == "Reason('forced', '')"

"""Property tests of the engine's contract over random DAGs and random edit sequences.

Correctness: after every build each output equals what a from-scratch build computes.
Minimality: the jobs that ran are exactly those a verifying-trace model says must run — a job
runs iff no success record matches its signature (command, the vars it uses, whether from the
Weavefile or `--set`, and input contents), or its output no longer has the content recorded
with that signature (early cutoff falls out of this).
Some jobs make a directory output (`dirN/`, holding `f.txt`); later jobs read it either as
the directory or as the file inside it, and edits corrupt, delete or add files in it. Jobs may
also read a source directory (`srcdir/`) whose files edits add, change and remove.
Builds run in-process through the Python API, with real files and real subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Dict, List, Optional, Set, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weavebuild import Project

# Each job's command pipes the concatenation of its inputs through one of these shell
# transforms, and the model applies the same transform written in Python. Some lose
# information, so that changes upstream are sometimes cut off.
TRANSFORMS = {
    "concat": ("cat", lambda data: data),
    "length": ("wc -c | tr -d ' '", lambda data: f"{len(data.encode())}\n"),
    "nodigits": ("tr -d 0-9", lambda data: "".join(c for c in data if not c.isdigit())),
    "upper": ("tr a-z A-Z", lambda data: data.upper()),
}
ALPHABET = "ab12\n"
INNER = "f.txt"  # the one file a directory output holds
SRCDIR = "srcdir/"  # a source directory: its files are read in name order
SRCDIR_NAMES = ("f0", "f1", "f2")


def content_path(path: str) -> str:
    """The file whose content a path stands for: a directory output's inner file."""
    return path + INNER if path.endswith("/") and path != SRCDIR else path


@st.composite
def dags(draw):
    source_count = draw(st.integers(1, 3))
    job_count = draw(st.integers(1, 6))
    jobs = []
    candidates = [f"src{i}.txt" for i in range(source_count)] + [SRCDIR]
    for index in range(job_count):
        inputs = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique=True))
        transform = draw(st.sampled_from(sorted(TRANSFORMS)))
        if draw(st.integers(0, 2)) == 0:  # a directory output, read as itself or as its file
            output = f"dir{index}/"
            candidates += [output, output + INNER]
        else:
            output = f"out{index}.txt"
            candidates.append(output)
        jobs.append((f"job{index}", inputs, output, transform))
    contents = [draw(st.text(ALPHABET, max_size=6)) for _ in range(source_count)]
    return jobs, contents


EDITS = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 2), st.text(ALPHABET, max_size=6)),
    st.tuples(st.just("touch"), st.integers(0, 2)),
    st.tuples(st.just("rewrite_same"), st.integers(0, 2)),
    st.tuples(st.just("edit_cmd"), st.integers(0, 5)),
    st.tuples(st.just("delete_output"), st.integers(0, 5)),
    st.tuples(st.just("corrupt_output"), st.integers(0, 5)),
    st.tuples(st.just("add_to_output"), st.integers(0, 5)),  # a stray file in a directory output
    st.tuples(st.just("srcdir_write"), st.integers(0, 2), st.text(ALPHABET, max_size=4)),  # new or changed
    st.tuples(st.just("srcdir_remove"), st.integers(0, 2)),
    st.tuples(st.just("set_var"), st.integers(0, 2)),  # the next builds use --set k=N
)


def uses_var(name: str) -> bool:
    """Every other job's command inserts `{vars.k}` (a comment: its output does not change)."""
    return int(name[len("job"):]) % 2 == 0


class Model:
    """The specification: verifying traces with early cutoff, over file contents."""

    def __init__(self, jobs, sources: Dict[str, str]):
        self.jobs = jobs
        self.files: Dict[str, Optional[str]] = dict(sources)
        self.commands = {name: 0 for name, *_ in jobs}  # a version number per job's command
        self.var = 0  # the value of `k` the builds use (0 is the Weavefile's; others via --set)
        # Success records keyed by signature: (job, command version, input contents) → output.
        self.records: Dict[Tuple[str, int, Optional[int], Tuple[str, ...]], str] = {}
        self.strays: Set[str] = set()  # directory outputs holding a file their job did not make
        self.srcdir: Dict[str, str] = {"f0": "d0\n"}  # the source directory's files

    def read(self, path: str) -> str:
        """What a job reading `path` gets: a source directory's files, concatenated in name
        order; otherwise the content of the file the path stands for."""
        if path == SRCDIR:
            return "".join(self.srcdir[name] for name in sorted(self.srcdir))
        return self.files[content_path(path)] or ""

    def value(self, path: str) -> str:
        """What decides whether an input changed: its names and contents for a directory."""
        if path == SRCDIR:
            return json.dumps(sorted(self.srcdir.items()))
        return self.files[content_path(path)] or ""

    def build(self) -> List[str]:
        """A job is up to date iff a record with its current signature exists and its output
        still has the recorded content (so reverting an input can make a job up to date). A
        directory input's content is its file's (a stray file is never read: its job reruns
        before any reader and removes it)."""
        ran = []
        for name, inputs, output, transform in self.jobs:
            values = tuple(self.value(i) for i in inputs)
            signature = (name, self.commands[name], self.var if uses_var(name) else None, values)
            recorded = self.records.get(signature)
            if recorded is None or self.files.get(content_path(output)) != recorded or output in self.strays:
                result = TRANSFORMS[transform][1]("".join(self.read(i) for i in inputs))
                self.files[content_path(output)] = result
                self.records[signature] = result
                self.strays.discard(output)
                ran.append(name)
        return ran

    def scratch(self) -> Dict[str, str]:
        """Every output as a build from nothing would make it, from the sources now."""
        scratch = Model(self.jobs, {k: v for k, v in self.files.items() if k.startswith("src")})
        scratch.srcdir = dict(self.srcdir)
        scratch.var = self.var
        scratch.build()
        return {k: v for k, v in scratch.files.items() if v is not None}


def write_weavefile(root: str, jobs, commands: Dict[str, int]) -> None:
    lines = ['default = ["all"]', "[vars]", "k = 0"]
    for name, inputs, output, transform in jobs:
        # Inputs are read by path (a directory input through its file), in the listed order.
        reads = " ".join(SRCDIR + "*" if i == SRCDIR else content_path(i) for i in inputs)
        cmd = f"echo {name} >> runs.log; "
        if output.endswith("/"):
            cmd += f"mkdir {{outputs}} && cat {reads} | {TRANSFORMS[transform][0]} > {{outputs}}/{INNER}"
        else:
            cmd += f"cat {reads} | {TRANSFORMS[transform][0]} > {{outputs}}"
        if commands[name]:
            cmd += f"  # version {commands[name]}"
        if uses_var(name):
            cmd += "  # k={vars.k}"
        lines += [
            f"[rules.{name}]",
            f"inputs = {json.dumps(inputs)}",
            f"outputs = {json.dumps([output])}",
            f"cmd = {json.dumps(cmd)}",
        ]
    lines += ["[rules.all]", "inputs = [" + ", ".join(f'"{output}"' for _, _, output, _ in jobs) + "]"]
    with open(os.path.join(root, "Weavefile"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


def read_runs(root: str) -> List[str]:
    path = os.path.join(root, "runs.log")
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        names = handle.read().split()
    os.unlink(path)
    return names


def build(root: str, model: Model) -> None:
    overrides = {"k": str(model.var)} if model.var else None
    result = Project.load(root, overrides=overrides).build(jobs=2)
    assert result.ok


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(), st.lists(st.lists(EDITS, min_size=1, max_size=3), min_size=1, max_size=4))
def test_incremental_build_is_correct_and_minimal(dag, edit_rounds):
    jobs, contents = dag
    root = tempfile.mkdtemp(prefix="weave-prop-")
    try:
        sources = {f"src{i}.txt": text for i, text in enumerate(contents)}
        for name, text in sources.items():
            with open(os.path.join(root, name), "w") as handle:
                handle.write(text)
        model = Model(jobs, sources)
        os.mkdir(os.path.join(root, SRCDIR))
        for name, text in model.srcdir.items():
            with open(os.path.join(root, SRCDIR, name), "w") as handle:
                handle.write(text)
        settle(os.path.join(root, SRCDIR))
        write_weavefile(root, jobs, model.commands)
        build(root, model)
        assert sorted(read_runs(root)) == sorted(model.build())
        for edits in edit_rounds:
            for edit in edits:
                apply_edit(root, model, jobs, edit)
            write_weavefile(root, jobs, model.commands)
            build(root, model)
            assert sorted(read_runs(root)) == sorted(model.build()), edits
            expected = model.scratch()
            for path, text in expected.items():
                with open(os.path.join(root, path)) as handle:
                    assert handle.read() == text, path
            for _, _, output, _ in jobs:
                if output.endswith("/"):
                    assert os.listdir(os.path.join(root, output)) == [INNER], output
            build(root, model)  # a second build right after a success runs nothing
            assert read_runs(root) == []
            # Directory outputs dated back too: the next no-op stamps their trees, so that the
            # next round's edits inside them are checked against a stamp.
            for _, _, output, _ in jobs:
                if output.endswith("/"):
                    settle(os.path.join(root, output))
            build(root, model)
            assert read_runs(root) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


def settle(directory: str) -> None:
    """Date a directory's mtime 10 s back, as if its last change were long ago: the no-op
    stamp then covers it (a directory changed within the racy window is never stamped), so
    the next change is checked against the stamp, as between builds minutes apart."""
    st = os.stat(directory)
    os.utime(directory, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))


def apply_edit(root: str, model: Model, jobs, edit) -> None:
    kind = edit[0]
    sources = sorted(k for k in model.files if k.startswith("src"))
    if kind in ("write", "touch", "rewrite_same"):
        name = sources[edit[1] % len(sources)]
        path = os.path.join(root, name)
        if kind == "write":
            with open(path, "w") as handle:
                handle.write(edit[2])
            model.files[name] = edit[2]
        elif kind == "touch":
            stat = os.stat(path)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
        else:
            with open(path, "w") as handle:
                handle.write(model.files[name] or "")
        return
    if kind == "set_var":
        model.var = edit[1]
        return
    if kind == "srcdir_write":
        name = SRCDIR_NAMES[edit[1]]
        with open(os.path.join(root, SRCDIR, name), "w") as handle:
            handle.write(edit[2])
        model.srcdir[name] = edit[2]
        settle(os.path.join(root, SRCDIR))
        return
    if kind == "srcdir_remove":
        name = SRCDIR_NAMES[edit[1]]
        if name in model.srcdir and len(model.srcdir) > 1:  # `cat srcdir/*` needs one file
            os.unlink(os.path.join(root, SRCDIR, name))
            del model.srcdir[name]
            settle(os.path.join(root, SRCDIR))
        return
    name, _, output, _ = jobs[edit[1] % len(jobs)]
    path = os.path.join(root, output)
    if kind == "edit_cmd":
        model.commands[name] += 1
    elif kind == "delete_output":
        if output.endswith("/"):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.unlink(path)
        model.files[content_path(output)] = None
    elif kind == "corrupt_output":
        if output.endswith("/"):
            os.makedirs(path, exist_ok=True)
        with open(os.path.join(root, content_path(output)), "w") as handle:
            handle.write("corrupt!")
        model.files[content_path(output)] = "corrupt!"
    elif kind == "add_to_output" and output.endswith("/") and os.path.isdir(path):
        with open(os.path.join(path, "stray.txt"), "w") as handle:
            handle.write("not made by the job\n")
        model.strays.add(output)

"""Generate equivalent benchmark workloads for Weave, GNU make, Ninja, Snakemake and doit.

Every workload is one job graph written once per tool, each in its own directory
(`<dir>/<tool>/`) with its own copy of the sources, so that tools never share outputs or
state. The commands are byte-for-byte the same shell text in every tool, so every tool must
produce identical outputs; `run.py` checks that.

Shapes (N is the number of jobs, not counting the final aggregate):

- ``wide``: N independent ``cp`` jobs plus one aggregate, written as one explicit rule per job
  (the "generated build file" case).
- ``layered``: L layers x W jobs; each job reads two outputs of the layer before (its own
  column and the next one), then one aggregate over the last layer.
- ``deep``: a chain of N jobs; job i reads job i-1's output and source i.
- ``pattern``: the ``wide`` graph written the way people write it: one wildcard rule expanded
  over the sources with ``foreach`` (Weave), a ``%`` pattern rule (make), wildcards (Snakemake).
  Ninja has no patterns, so it gets the explicit form.
- ``fanin``: the ``wide`` graph where every job also depends on the same H shared headers
  (H = min(100, N): a million edges at 10k jobs), as C compiles do; each job copies its own
  source. One explicit rule per job, listing the headers (Ninja: as implicit dependencies).
- ``big``: one job reading a large file (hard-linked into every tool directory).

Run ``python bench/generate.py --help`` to write a workload by hand for inspection.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

SHAPES = ("wide", "layered", "deep", "pattern", "fanin")
TOOLS = ("weave", "make", "ninja", "snakemake", "doit")

# One shell text per job kind, shared by every tool. {IN}, {OUT} and {DIR} are replaced by
# each tool's own spelling ($^ / $in / {inputs} ...). Only cheap coreutils: the benchmark
# measures the tools' overhead, not the jobs.
COMMANDS = {
    "copy": "cp {IN} {OUT}",
    # fanin: a job's first input is its own source; the rest are headers it "includes".
    "first": "cp {FIRST} {OUT}",
    "sum": "cat {IN} | cksum > {OUT}",
    # The aggregate lists its directory instead of passing N paths on the command line: a
    # single argument (`bash -c CMD`) is capped at 128 KiB on Linux, which 10k paths exceed.
    "agg": "find {DIR} -name '*.o' | LC_ALL=C sort | xargs cat > {OUT}",
    # Reads 1 KiB only, so the big-file scenario measures the tool hashing/stat-ing the input.
    "head": "head -c 1024 {IN} | cksum > {OUT}",
}

# The state each tool keeps next to the build file; removed for a from-scratch build.
STATE_PATHS = {
    "weave": (".weave",),
    "make": (),
    "ninja": (".ninja_log", ".ninja_deps"),
    "snakemake": (".snakemake",),
    "doit": (".doit.db", ".doit.db.db", ".doit.db.dat", ".doit.db.dir", ".doit.db.bak"),
}


@dataclass
class Job:
    """One job of the graph: a command kind, its inputs and its single output."""

    kind: str
    inputs: list[str]
    output: str
    name: str
    agg_dir: str = ""


@dataclass
class Workload:
    """A tool-independent job graph plus the bookkeeping `run.py` needs to verify builds."""

    shape: str
    n: int
    sources: dict[str, str]  # path -> initial content
    jobs: list[Job]
    target: str  # the default (final) output
    changed_source: str  # the source the "one source changed" scenario edits
    layers: int = 0
    width: int = 0
    big_file: str = ""  # path (relative) of the hard-linked large input, for shape "big"
    notes: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> list[str]:
        return [job.output for job in self.jobs]


def _width(n: int) -> int:
    # Zero-padded names so that lexical order (glob, sort) is numeric order for every tool.
    return len(str(max(n - 1, 0)))


def make_workload(shape: str, n: int, layers: int = 10) -> Workload:
    """Build the tool-independent graph of `shape` with about `n` jobs (plus an aggregate)."""
    if n < 2:
        raise ValueError("n must be at least 2")
    if shape in ("wide", "pattern"):
        d = _width(n)
        names = [f"s{i:0{d}d}" for i in range(n)]
        sources = {f"src/{s}.txt": f"source {s}\n" for s in names}
        jobs = [Job("copy", [f"src/{s}.txt"], f"out/{s}.o", f"w{s[1:]}") for s in names]
        jobs.append(Job("agg", [j.output for j in jobs], "all.txt", "all", agg_dir="out"))
        return Workload(shape, n, sources, jobs, "all.txt", f"src/{names[n // 2]}.txt")
    if shape == "fanin":
        d = _width(n)
        names = [f"s{i:0{d}d}" for i in range(n)]
        headers = [f"include/h{i:03d}.h" for i in range(min(100, n))]
        sources = {f"src/{s}.txt": f"source {s}\n" for s in names}
        sources.update({h: f"header {h}\n" for h in headers})
        jobs = [Job("first", [f"src/{s}.txt"] + headers, f"out/{s}.o", f"w{s[1:]}") for s in names]
        jobs.append(Job("agg", [j.output for j in jobs], "all.txt", "all", agg_dir="out"))
        return Workload(shape, n, sources, jobs, "all.txt", f"src/{names[n // 2]}.txt")
    if shape == "layered":
        n_layers = max(2, min(layers, n // 2))
        w = max(2, n // n_layers)
        d = _width(w)
        src = [f"src/s{j:0{d}d}.txt" for j in range(w)]
        sources = {p: f"source {j}\n" for j, p in enumerate(src)}
        jobs = []
        prev = src
        for layer in range(n_layers):
            cur = [f"out/L{layer}/n{j:0{d}d}.o" for j in range(w)]
            for j in range(w):
                ins = [prev[j], prev[(j + 1) % w]]
                jobs.append(Job("sum", ins, cur[j], f"l{layer}_{j:0{d}d}"))
            prev = cur
        last = f"out/L{n_layers - 1}"
        jobs.append(Job("agg", list(prev), "all.txt", "all", agg_dir=last))
        wl = Workload(shape, n_layers * w, sources, jobs, "all.txt", src[w // 2], n_layers, w)
        return wl
    if shape == "deep":
        d = _width(n)
        src = [f"src/s{i:0{d}d}.txt" for i in range(n)]
        sources = {p: f"source {i}\n" for i, p in enumerate(src)}
        jobs = []
        for i in range(n):
            ins = [src[0]] if i == 0 else [jobs[-1].output, src[i]]
            jobs.append(Job("sum", ins, f"out/d{i:0{d}d}.o", f"d{i:0{d}d}"))
        return Workload(shape, n, sources, jobs, jobs[-1].output, src[n // 2])
    raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")


def big_workload() -> Workload:
    """One job reading `big.bin` (the caller provides the file; see `write_tool_dir`)."""
    job = Job("head", ["big.bin"], "big.sum", "big")
    return Workload("big", 1, {}, [job], "big.sum", "", big_file="big.bin")


def _command(kind: str, ins: str, out: str, agg_dir: str = "", first: str = "") -> str:
    text = COMMANDS[kind]
    return text.replace("{IN}", ins).replace("{OUT}", out).replace("{DIR}", agg_dir).replace("{FIRST}", first)


def _toml_str(value: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    return json.dumps(value)


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


# --------------------------------------------------------------------------- writers


def write_weave(wl: Workload, root: Path) -> None:
    """Weavefile: pattern rule + foreach for `pattern`, one rule per job otherwise."""
    lines = [f"# Weave benchmark workload: {wl.shape}, {wl.n} jobs (bench/generate.py)"]
    lines.append(f"default = {_toml_list([wl.target])}")
    if wl.shape == "pattern":
        agg = wl.jobs[-1]
        lines += [
            "",
            "[rules.gen]",
            'inputs  = ["src/{i}.txt"]',
            'outputs = ["out/{i}.o"]',
            f"cmd     = {_toml_str(_command('copy', '{inputs}', '{outputs}'))}",
            "",
            "[rules.all]",
            'inputs  = ["out/{i}.o"]',
            f"outputs = {_toml_list([agg.output])}",
            'foreach = { i = "src/{i}.txt" }',
            f"cmd     = {_toml_str(_command('agg', '{inputs}', '{outputs}', agg.agg_dir))}",
        ]
    else:
        for job in wl.jobs:
            lines += [
                "",
                f"[rules.{job.name}]",
                f"inputs = {_toml_list(job.inputs)}",
                f"outputs = {_toml_list([job.output])}",
                f"cmd = {_toml_str(_command(job.kind, '{inputs}', '{outputs}', job.agg_dir, '{inputs[0]}'))}",
            ]
    (root / "Weavefile").write_text("\n".join(lines) + "\n")


def _make_dirs(wl: Workload) -> list[str]:
    return sorted({os.path.dirname(j.output) for j in wl.jobs} - {""})


def write_make(wl: Workload, root: Path) -> None:
    """Makefile for `make -r`: explicit rules, or a `%` pattern rule for `pattern`.

    Output directories are order-only prerequisites (`| out`), the usual make idiom.
    """
    dirs = _make_dirs(wl)
    lines = [f"# make benchmark workload: {wl.shape}, {wl.n} jobs (bench/generate.py)"]
    # The first rule is make's default goal.
    agg = wl.jobs[-1]
    if wl.shape == "pattern":
        lines += [
            "SRCS := $(sort $(wildcard src/*.txt))",
            "OUTS := $(patsubst src/%.txt,out/%.o,$(SRCS))",
            "",
            f"{agg.output}: $(OUTS)",
            "\t" + _command("agg", "$^", "$@", agg.agg_dir),
            "",
            "out/%.o: src/%.txt | out",
            "\t" + _command("copy", "$<", "$@"),
        ]
    else:
        # The final job (aggregate or end of the chain) goes first: make's default goal.
        for job in [agg] + wl.jobs[:-1]:
            d = os.path.dirname(job.output)
            oo = f" | {d}" if d else ""
            lines += [
                f"{job.output}: {' '.join(job.inputs)}{oo}",
                "\t" + _command(job.kind, "$^", "$@", job.agg_dir, "$<"),
            ]
    lines.append("")
    for d in dirs:
        lines += [f"{d}:", "\tmkdir -p $@"]
    (root / "Makefile").write_text("\n".join(lines) + "\n")


def _ninja_escape(path: str) -> str:
    return path.replace("$", "$$").replace(" ", "$ ").replace(":", "$:")


def write_ninja(wl: Workload, root: Path) -> None:
    """build.ninja: one rule per job kind, one build edge per job (Ninja has no patterns)."""
    lines = [f"# ninja benchmark workload: {wl.shape}, {wl.n} jobs (bench/generate.py)"]
    kinds = sorted({(j.kind, j.agg_dir) for j in wl.jobs})
    rule_names = {}
    for i, (kind, agg_dir) in enumerate(kinds):
        name = f"{kind}{i}"
        rule_names[kind, agg_dir] = name
        lines += [f"rule {name}", f"  command = {_command(kind, '$in', '$out', agg_dir, '$in')}"]
    for job in wl.jobs:
        ins = " ".join(_ninja_escape(p) for p in job.inputs)
        if job.kind == "first":  # the headers as implicit dependencies: $in is the source
            ins = " | ".join((_ninja_escape(job.inputs[0]), " ".join(_ninja_escape(p) for p in job.inputs[1:])))
        rule = rule_names[job.kind, job.agg_dir]
        lines.append(f"build {_ninja_escape(job.output)}: {rule} {ins}")
    lines.append(f"default {_ninja_escape(wl.target)}")
    (root / "build.ninja").write_text("\n".join(lines) + "\n")


def write_snakemake(wl: Workload, root: Path) -> None:
    """Snakefile in Snakemake's idiom: wildcard rules, inputs from a lookup table."""
    agg = wl.jobs[-1]
    lines = [f"# Snakemake benchmark workload: {wl.shape}, {wl.n} jobs (bench/generate.py)"]
    if wl.shape == "pattern":
        lines += [
            'SAMPLES = glob_wildcards("src/{i}.txt").i',
            "",
            "rule all:",
            '    input: expand("out/{i}.o", i=SAMPLES)',
            f"    output: {agg.output!r}",
            f"    shell: {_command('agg', '{input}', '{output}', agg.agg_dir)!r}",
            "",
            "rule gen:",
            '    input: "src/{i}.txt"',
            '    output: "out/{i}.o"',
            f"    shell: {_command('copy', '{input}', '{output}')!r}",
        ]
    else:
        jobs = wl.jobs[:-1] if agg.kind == "agg" else wl.jobs
        kind = jobs[0].kind
        table = {j.output: j.inputs for j in jobs}
        if all(j.output.startswith("out/") for j in jobs):
            constraint = r"out/.+\.o"
        else:
            constraint = "|".join(re.escape(j.output) for j in jobs)
        if wl.shape == "deep":
            # Snakemake builds its DAG recursively, a few frames per link of the chain: a few
            # hundred links in, Python's default limit (1000) stops it with a RecursionError.
            lines += ["import sys", f"sys.setrecursionlimit(max(sys.getrecursionlimit(), {20 * wl.n}))", ""]
        lines += [f"INPUTS = {table!r}", ""]
        if agg.kind == "agg":
            lines += [
                "rule all:",
                f"    input: {agg.inputs!r}",
                f"    output: {agg.output!r}",
                f"    shell: {_command('agg', '{input}', '{output}', agg.agg_dir)!r}",
                "",
            ]
        else:
            lines += ["rule all:", f"    input: {wl.target!r}", ""]
        lines += [
            "rule job:",
            "    input: lambda wc: INPUTS[wc.path]",
            '    output: "{path}"',
            f"    wildcard_constraints: path={constraint!r}",
            f"    shell: {_command(kind, '{input}', '{output}', first='{input[0]}')!r}",
        ]
    (root / "Snakefile").write_text("\n".join(lines) + "\n")


def write_doit(wl: Workload, root: Path) -> None:
    """dodo.py: one task per job, generated from a table (doit checks file_dep by MD5)."""
    table = [
        [j.output, j.inputs, _command(j.kind, " ".join(j.inputs), j.output, j.agg_dir, j.inputs[0])]
        for j in wl.jobs
    ]
    text = f'''"""doit benchmark workload: {wl.shape}, {wl.n} jobs (bench/generate.py)."""
import os

DOIT_CONFIG = {{"default_tasks": ["job"], "verbosity": 0}}
JOBS = {table!r}
# doit does not create output directories.
for _out, _ins, _cmd in JOBS:
    os.makedirs(os.path.dirname(_out) or ".", exist_ok=True)


def task_job():
    for out, ins, cmd in JOBS:
        yield {{"name": out, "file_dep": ins, "targets": [out], "actions": [cmd]}}
'''
    (root / "dodo.py").write_text(text)


WRITERS = {
    "weave": write_weave,
    "make": write_make,
    "ninja": write_ninja,
    "snakemake": write_snakemake,
    "doit": write_doit,
}


def write_tool_dir(wl: Workload, tool: str, root: Path, big_src: Path | None = None) -> Path:
    """Write the sources and `tool`'s build file for `wl` under `root` (created afresh)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    made: set[Path] = set()
    for rel, content in wl.sources.items():
        path = root / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_text(content)
    if wl.big_file:
        if big_src is None:
            raise ValueError("the big workload needs big_src")
        # A hard link: one copy of the large file on disk (and in the page cache) for all tools.
        os.link(big_src, root / wl.big_file)
    WRITERS[tool](wl, root)
    return root


def write_workload(
    wl: Workload, tools: list[str], base: Path, big_src: Path | None = None
) -> dict[str, Path]:
    """Write `wl` once per tool under `base/<tool>/`; returns tool -> directory."""
    return {tool: write_tool_dir(wl, tool, base / tool, big_src) for tool in tools}


def make_big_file(path: Path, size: int) -> None:
    """Write `size` bytes of incompressible data (not a sparse file: holes read too fast)."""
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    # Date it an hour back, like a data set fetched earlier: a file modified just before it is
    # hashed is legitimately re-hashed by the next build (racy-clean check), which would make
    # the no-op read it again.
    old = time.time() - 3600
    os.utime(path, (old, old))


def main(argv: list[str] | None = None) -> int:
    """CLI: write one workload for the given tools, for inspection."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="directory to write <tool>/ subdirectories in")
    parser.add_argument("--shape", choices=SHAPES, default="wide")
    parser.add_argument("-n", "--jobs", type=int, default=100, help="number of jobs (default 100)")
    parser.add_argument("--layers", type=int, default=10, help="layers of the layered shape")
    parser.add_argument("--tools", default="weave,make,ninja", help="comma-separated tools")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        parser.error(f"unknown tools: {', '.join(unknown)}")
    wl = make_workload(args.shape, args.jobs, args.layers)
    for tool, path in write_workload(wl, tools, args.outdir).items():
        print(f"{tool:10s} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

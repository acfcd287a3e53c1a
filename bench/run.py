"""Benchmark Weave against GNU make and Ninja (and Snakemake/doit when installed).

Runs the scenarios of issue 6 on generated workloads, tools alternating within each
repetition, and prints a Markdown report: median and min-max wall time per tool, the ratio
Weave / peer, jobs run (counted from output stat changes, the same way for every tool) and
peak RSS. See bench/README.md. Quick check: ``python bench/run.py --smoke``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import generate as gen

SCENARIOS = ("full", "noop", "noop_again", "one_change", "touch_all")
NOOPS = ("noop", "noop_again", "big_noop")
BIG_SCENARIOS = ("big_first", "big_noop")
STARTUP_COMMANDS = ("python -c pass", "weave --version", "weave build (3 rules, no-op)")
SCENARIO_TITLES = {
    "full": "full build",
    "noop": "no-op",
    "noop_again": "no-op again",
    "one_change": "one source changed",
    "touch_all": "touch all sources",
    "big_first": "1 big input, first build",
    "big_noop": "1 big input, no-op",
}
# Long enough for the coarse kernel clock that stamps files (1-10 ms) to move on, so that
# mtime-based tools always see an edit as newer than the outputs built just before it.
SETTLE_S = 0.05
# Environment variables that would change how the peers behave when run.py itself runs under
# make (CI) or with a user's defaults.
SCRUB_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES", "GNUMAKEFLAGS", "NINJA_STATUS")


# --------------------------------------------------------------------------- running tools


@dataclass
class Run:
    """One measured command: wall time, peak RSS of the tool process, exit status, log."""

    seconds: float
    rss_kb: int
    returncode: int
    timed_out: bool
    log: Path


def _tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
    env["LC_ALL"] = "C"
    # Tools run inside the workload directories: a relative entry (PYTHONPATH=src) would
    # name each workload's own src/ there.
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(
            os.path.abspath(entry) if entry else entry for entry in env["PYTHONPATH"].split(os.pathsep)
        )
    return env


def _hwm_kb(pid: int) -> int | None:
    """VmHWM (peak RSS since exec) of a live process, from /proc; None when unreadable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None  # gone, a zombie (no memory left), or not Linux


HAVE_PROC = os.path.exists(f"/proc/{os.getpid()}/status")
RSS_POLL_S = 0.002
RSS_MIN_S = 0.02  # shorter runs report no RSS: too few samples to have seen the peak


def run_measured(argv: list[str], cwd: Path, log: Path, timeout: float, rss: bool = True) -> Run:
    """Run `argv` in `cwd`, output to `log`; time it and measure the peak RSS of its process.

    Peak RSS is the tool process's VmHWM, polled until it exits. VmHWM is a high-water mark,
    so polling only has to catch the process alive near its end. The rusage of wait4 is no
    use here: the kernel folds the pre-exec memory of the forked child (this Python process)
    into the child's ru_maxrss, so every tool would weigh at least as much as run.py. Without
    /proc (macOS) that ru_maxrss is reported anyway, as an upper bound.
    """
    timed_out = threading.Event()
    done = threading.Event()
    peak = [0]
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_tool_env(),
            start_new_session=True,  # its own process group, so a timeout kills the tree
        )

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        def poll() -> None:
            while True:
                value = _hwm_kb(proc.pid)
                if value is not None and value > peak[0]:
                    peak[0] = value
                if done.wait(RSS_POLL_S):
                    return

        timer = threading.Timer(timeout, kill)
        timer.start()
        poller = threading.Thread(target=poll, daemon=True) if rss and HAVE_PROC else None
        if poller is not None:
            poller.start()
        try:
            # Wait for the exit without reaping, so the poller never reads a recycled pid.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            seconds = time.perf_counter() - start
            done.set()
            if poller is not None:
                poller.join()
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            # Ctrl-C: the tool runs in its own session and did not get the signal; stop it.
            kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            raise
        finally:
            timer.cancel()
            done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if poller is None:
        rss_kb = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    elif seconds < RSS_MIN_S:
        rss_kb = 0  # sampled too early to be the peak (e.g. before the build file was read)
    else:
        rss_kb = peak[0]
    return Run(seconds, rss_kb, proc.returncode, timed_out.is_set(), log)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


@dataclass
class Tool:
    """A build tool: how to invoke a build in a workload directory."""

    name: str
    build: list[str]
    version: str


def _probe(argv: list[str]) -> tuple[bool, str]:
    # From an empty directory, as the builds run from the workloads' (not from here).
    try:
        with tempfile.TemporaryDirectory(prefix="weave-bench-probe-") as empty:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=120, env=_tool_env(), check=False, cwd=empty
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    text = (proc.stdout or proc.stderr).strip()
    if proc.returncode != 0:
        return False, f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-2000:]}"
    return True, text.splitlines()[0] if text else "?"


def unshim(argv: list[str]) -> list[str]:
    """`argv` with a pyenv shim replaced by the program it runs: a shim is a bash script that
    starts `pyenv`, which adds 20-40 ms to every run, and that is not the tool's own time."""
    found = shutil.which(argv[0]) if argv else None
    if not found or os.path.basename(os.path.dirname(found)) != "shims" or not shutil.which("pyenv"):
        return argv
    try:
        real = subprocess.run(
            ["pyenv", "which", os.path.basename(found)], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return argv
    return [real] + argv[1:] if real and os.path.isfile(real) else argv


def find_tools(names: list[str], weave_cmd: list[str], jobs: int) -> tuple[list[Tool], list[str]]:
    """The requested tools that can run here, and a note for each one skipped."""
    builds = {
        "weave": weave_cmd + ["build", "-j", str(jobs)],
        "make": ["make", "-r", f"-j{jobs}"],
        "ninja": ["ninja", "-j", str(jobs)],
        "snakemake": ["snakemake", "--cores", str(jobs)],
        "doit": ["doit", "-n", str(jobs)],
    }
    builds = {name: unshim(argv) for name, argv in builds.items()}
    version_args = {"weave": weave_cmd + ["--version"]}
    tools, skipped = [], []
    for name in names:
        argv = version_args.get(name, [builds[name][0], "--version"])
        if shutil.which(argv[0]) is None:
            skipped.append(f"{name}: `{argv[0]}` not found on PATH")
            continue
        ok, text = _probe(argv)
        if not ok:
            skipped.append(f"{name}: `{shlex.join(argv)}` failed: {text}")
            continue
        if name == "weave":
            text += f" (weavebuild from {weave_location(weave_cmd)})"
        tools.append(Tool(name, builds[name], text))
    return tools, skipped


def _weave_python(weave_cmd: list[str]) -> list[str]:
    """The interpreter that runs Weave: `python [flags]` of `python [flags] -m weavebuild`,
    else the one a script's #! names."""
    return weave_cmd[: weave_cmd.index("-m")] if "-m" in weave_cmd else [_python_of(weave_cmd)]


def weave_location(weave_cmd: list[str]) -> str:
    """Where the interpreter that runs Weave imports weavebuild from: with an editable install
    elsewhere, `python -m weavebuild` in a checkout measures that other tree."""
    code = "import os, weavebuild; print(os.path.dirname(weavebuild.__file__))"
    ok, text = _probe(_weave_python(weave_cmd) + ["-c", code])
    return text if ok else "an unknown place"


def uncompiled_modules(weave_cmd: list[str]) -> int:
    """How many of weavebuild's modules have no bytecode cache for the interpreter that runs
    Weave (with PYTHONDONTWRITEBYTECODE set, each start then compiles them: tens of ms)."""
    code = (
        "import glob, importlib.util, os, weavebuild\n"
        "top = os.path.dirname(weavebuild.__file__)\n"
        "sources = glob.glob(os.path.join(top, '**', '*.py'), recursive=True)\n"
        "print(sum(not os.path.exists(importlib.util.cache_from_source(p)) for p in sources))\n"
    )
    # -B: importing weavebuild to find it must not write the bytecode being counted.
    ok, text = _probe(_weave_python(weave_cmd) + ["-B", "-c", code])
    return int(text) if ok and text.isdigit() else 0


# --------------------------------------------------------------------------- file state


Stat = tuple  # (mtime_ns, ino, ctime_ns, size), or None when missing


def snapshot(root: Path, paths: list[str]) -> dict[str, Stat | None]:
    """Stat every output; a job ran iff its output's stat changed (same test for every tool)."""
    base = str(root)
    snap: dict[str, Stat | None] = {}
    for rel in paths:
        try:
            st = os.stat(os.path.join(base, rel))
        except FileNotFoundError:
            snap[rel] = None
        else:
            snap[rel] = (st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_size)
    return snap


def changed(before: dict[str, Stat | None], after: dict[str, Stat | None]) -> int:
    return sum(1 for k, v in after.items() if v is not None and v != before.get(k))


def clean(root: Path, wl: gen.Workload, tool: str) -> None:
    """Remove outputs and the tool's state: the next build starts from scratch."""
    shutil.rmtree(root / "out", ignore_errors=True)
    for rel in wl.outputs:
        try:
            os.unlink(root / rel)
        except FileNotFoundError:
            pass
    for rel in gen.STATE_PATHS[tool]:
        path = root / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def downstream(wl: gen.Workload, source: str) -> set[str]:
    """Outputs that depend (transitively) on `source`: what a correct rebuild must redo."""
    dirty = {source}
    for job in wl.jobs:  # jobs are listed in dependency order
        if any(i in dirty for i in job.inputs):
            dirty.add(job.output)
    dirty.discard(source)
    return dirty


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Sample:
    seconds: float
    rss_kb: int
    jobs: int


@dataclass
class Bench:
    """Runs workloads and collects samples and problems."""

    tools: list[Tool]
    reps: int
    timeout: float
    workdir: Path
    verbose: bool = True
    rss: bool = True
    samples: dict[tuple[str, str, str], list[Sample]] = field(default_factory=dict)
    expected_jobs: dict[tuple[str, str], int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # A peer that fails (Snakemake's recursion on a deep chain, make's on a 100k one) is a
    # finding about that peer: reported, but not a failure of the suite or of Weave.
    peer_failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    def order(self, rep: int, tools: list[Tool]) -> list[Tool]:
        # Rotate the order each repetition so no tool always runs first (cold caches) or last.
        k = rep % len(tools) if tools else 0
        return tools[k:] + tools[:k]

    def build(
        self, key: str, scenario: str, tool: Tool, root: Path, wl: gen.Workload, broken: set[str]
    ) -> Run | None:
        """One measured build; records a sample, or marks the tool broken on failure."""
        before = snapshot(root, wl.outputs)
        log = root / f".bench-{scenario}.log"
        # Write back what the previous run left dirty (a 10k-file rebuild) before the clock
        # starts, so that no tool pays for the kernel flushing another tool's files.
        os.sync()
        run = run_measured(tool.build, root, log, self.timeout, self.rss)
        if run.returncode != 0 or run.timed_out:
            why = (
                f"timed out after {self.timeout:.0f} s"
                if run.timed_out
                else (f"exit code {run.returncode}")
            )
            (self.problems if tool.name == "weave" else self.peer_failures).append(
                f"{key} {scenario}: {tool.name} failed ({why}): `{shlex.join(tool.build)}` "
                f"in {root}\n{log_tail(log)}"
            )
            broken.add(tool.name)
            return None
        after = snapshot(root, wl.outputs)
        missing = [k for k, v in after.items() if v is None]
        if missing:
            self.problems.append(
                f"{key} {scenario}: {tool.name} exited 0 but {len(missing)} outputs are missing, "
                f"e.g. {', '.join(missing[:3])} (in {root})"
            )
            broken.add(tool.name)
            return None
        jobs = changed(before, after)
        self.samples.setdefault((key, scenario, tool.name), []).append(
            Sample(run.seconds, run.rss_kb, jobs)
        )
        return run

    def check_same_target(
        self, key: str, scenario: str, dirs: dict[str, Path], wl: gen.Workload, broken: set[str]
    ) -> None:
        """Every tool ran the same commands on the same sources: the results must be equal."""
        contents = {}
        for name, root in dirs.items():
            if name not in broken:
                contents[name] = (root / wl.target).read_bytes()
        if len(set(contents.values())) > 1:
            ref = contents.get("make") or next(iter(contents.values()))
            differ = sorted(n for n, c in contents.items() if c != ref)
            self.problems.append(
                f"{key} {scenario}: {wl.target} differs between tools: {', '.join(differ)} "
                f"disagree with {'make' if 'make' in contents else 'the first tool'}"
            )

    def run_workload(self, key: str, wl: gen.Workload, big_src: Path | None = None) -> None:
        """All scenarios of one workload, each repetition alternating the tools."""
        base = self.workdir / key
        dirs = gen.write_workload(wl, [t.name for t in self.tools], base, big_src)
        broken: set[str] = set()
        scenarios = BIG_SCENARIOS if wl.big_file else SCENARIOS
        self.expected_jobs[key, scenarios[0]] = len(wl.jobs)
        for scenario in NOOPS:
            self.expected_jobs[key, scenario] = 0
        if not wl.big_file:
            self.expected_jobs[key, "one_change"] = len(downstream(wl, wl.changed_source))
        for rep in range(self.reps):
            tools = [t for t in self.order(rep, self.tools) if t.name not in broken]
            self.say(f"[{key}] repetition {rep + 1}/{self.reps}")
            for scenario in scenarios:
                if scenario == "one_change":
                    time.sleep(SETTLE_S)
                    for root in dirs.values():
                        (root / wl.changed_source).write_text(f"changed in repetition {rep}\n")
                elif scenario == "touch_all":
                    time.sleep(SETTLE_S)
                    for root in dirs.values():
                        for rel in wl.sources:
                            os.utime(root / rel)  # now; the content stays the same
                timings = []
                for tool in tools:
                    if tool.name in broken:
                        continue
                    root = dirs[tool.name]
                    if scenario in ("full", "big_first"):
                        clean(root, wl, tool.name)
                    run = self.build(key, scenario, tool, root, wl, broken)
                    if run is not None:
                        timings.append(f"{tool.name} {run.seconds:.3f}s")
                        self.check_expectations(key, scenario, tool, run, wl)
                self.say(f"  {SCENARIO_TITLES[scenario]:20s} " + "  ".join(timings))
                if scenario in ("full", "one_change", "big_first"):
                    self.check_same_target(key, scenario, dirs, wl, broken)

    def check_expectations(
        self, key: str, scenario: str, tool: Tool, run: Run, wl: gen.Workload
    ) -> None:
        jobs = self.samples[key, scenario, tool.name][-1].jobs
        where = f"{key} {scenario}: {tool.name}"
        if scenario in NOOPS and jobs != 0:
            self.problems.append(f"{where} reran {jobs} jobs on a no-op")
        if tool.name != "weave":
            return
        if scenario in NOOPS:
            text = run.log.read_text(errors="replace")
            if "nothing to do" not in text.lower():
                self.warnings.append(f"{where} did not print 'nothing to do'")
        elif scenario == "touch_all" and jobs != 0:
            self.problems.append(
                f"{where} reran {jobs} jobs after a touch without content change (must be 0)"
            )
        elif scenario == "one_change":
            want = self.expected_jobs[key, scenario]
            if jobs == 0:
                self.problems.append(f"{where} reran nothing after a source changed")
            elif jobs != want:
                self.warnings.append(f"{where} reran {jobs} jobs; the change reaches {want}")

    def run_startup(self, weave: Tool, weave_cmd: list[str], python: str) -> None:
        """Start-up: `python -c pass`, `weave --version`, a no-op on a 3-rule project."""
        key = "startup"
        wl = gen.make_workload("deep", 3)
        root = gen.write_tool_dir(wl, "weave", self.workdir / key / "weave")
        first = run_measured(weave.build, root, root / ".bench-first.log", self.timeout)
        if first.returncode != 0:
            self.problems.append(
                f"startup: `{shlex.join(weave.build)}` failed (exit {first.returncode}) in "
                f"{root}\n{log_tail(first.log)}"
            )
            return
        commands = {
            STARTUP_COMMANDS[0]: [python, "-c", "pass"],
            STARTUP_COMMANDS[1]: weave_cmd + ["--version"],
            STARTUP_COMMANDS[2]: weave.build,
        }
        self.say(f"[{key}] {max(3, self.reps)} repetitions")
        for _ in range(max(3, self.reps)):  # cheap and noisy: a few more samples
            for label, argv in commands.items():
                run = run_measured(argv, root, root / ".bench-startup.log", self.timeout, self.rss)
                if run.returncode != 0:
                    self.problems.append(
                        f"startup: `{shlex.join(argv)}` failed "
                        f"(exit {run.returncode})\n{log_tail(run.log)}"
                    )
                    return
                self.samples.setdefault((key, label, "weave"), []).append(
                    Sample(run.seconds, run.rss_kb, 0)
                )


# --------------------------------------------------------------------------- report


def _median(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def _fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def _cell(samples: list[Sample] | None) -> str:
    if not samples:
        return "—"
    lo = min(s.seconds for s in samples)
    hi = max(s.seconds for s in samples)
    if len(samples) == 1:
        return _fmt_s(lo)
    return f"{_fmt_s(_median(samples))} ({_fmt_s(lo)}–{_fmt_s(hi)})"


# Targets of issue 6 (defined for 10k jobs; shown for every N as a guide, never asserted).
BIG_MIN_RATE_SIZE = 256 << 20  # smaller inputs: start-up swamps the hashing rate
TARGET_N = 10_000  # below it, start-up dominates and the ratio targets are not evaluated
RATIO_TARGETS = {
    "full": ("make", 1.3),
    "noop": ("ninja", 3.0),
    "noop_again": ("ninja", 3.0),
    "one_change": ("ninja", 2.0),
}


def target_status(bench: Bench, key: str, scenario: str, n: int) -> str:
    """The issue-6 target for this row and whether this run met it (informational)."""
    get = bench.samples.get
    weave = get((key, scenario, "weave"))
    if not weave:
        return ""
    notes = []
    at_scale = n >= TARGET_N
    if scenario in RATIO_TARGETS and at_scale:
        peer, limit = RATIO_TARGETS[scenario]
        peer_samples = get((key, scenario, peer))
        if peer_samples:
            ratio = _median(weave) / _median(peer_samples)
            mark = "met" if ratio <= limit else "missed"
            notes.append(f"≤ {limit:g}× {peer}: {ratio:.2f}× {mark}")
    if scenario in ("noop", "noop_again") and n >= 100_000:
        secs = _median(weave)
        rss = max(s.rss_kb for s in weave) / 1024
        notes.append(
            f"< 2 s: {'met' if secs < 2 else 'missed'}; "
            f"< 500 MB RSS: {'met' if rss < 500 else 'missed'}"
        )
    if scenario == "touch_all":
        jobs = max(s.jobs for s in weave)
        notes.append("0 jobs: met" if jobs == 0 else f"0 jobs: MISSED ({jobs} ran)")
        noop = get((key, "noop_again", "weave"))
        if noop and at_scale:
            ratio = _median(weave) / _median(noop)
            notes.append(f"≤ 2× no-op: {ratio:.2f}× {'met' if ratio <= 2 else 'missed'}")
    return "; ".join(notes)


def _mib(kb: int) -> str:
    # 0: a run too short to sample (see RSS_MIN_S), or --no-rss.
    if not kb:
        return "n/a"
    return f"{kb / 1024:.1f}" if kb < 10 * 1024 else f"{kb / 1024:.0f}"


def _n_label(wl: gen.Workload, big_size: int) -> str:
    if wl.big_file:
        return f"{big_size / (1 << 20):g} MiB"
    return str(wl.n)


def render(
    bench: Bench,
    workloads: list[tuple[str, gen.Workload]],
    skipped: list[str],
    settings: dict[str, str],
    big_size: int,
) -> str:
    """The Markdown report."""
    names = [t.name for t in bench.tools]
    peers = [n for n in names if n != "weave"]
    has_weave = "weave" in names
    out = ["# Weave benchmark", ""]
    out.append(f"- Date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    out.append(
        f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    for key, value in settings.items():
        out.append(f"- {key}: {value}")
    for tool in bench.tools:
        out.append(f"- {tool.name}: {tool.version} — `{shlex.join(tool.build)}`")
    for note in skipped:
        out.append(f"- skipped {note}")
    out += [
        "",
        "Times are wall-clock medians (min–max) over the repetitions; each timed run starts "
        "after a `sync`, so that none pays for writing back another's files. "
        "A ratio below 1 means Weave is faster. Targets (issue 6) are defined at 10k jobs, "
        "evaluated only from N = 10000 on, and informational only.",
        "",
    ]

    out.append("## Summary")
    out.append("")
    head = ["shape", "N", "scenario"] + names
    if has_weave:
        head += [f"Weave / {p}" for p in peers] + ["target (issue 6)"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" for _ in head) + "|")
    for key, wl in workloads:
        scenarios = BIG_SCENARIOS if wl.big_file else SCENARIOS
        for scenario in scenarios:
            row = [wl.shape, _n_label(wl, big_size), SCENARIO_TITLES[scenario]]
            row += [_cell(bench.samples.get((key, scenario, n))) for n in names]
            if has_weave:
                weave = bench.samples.get((key, scenario, "weave"))
                for peer in peers:
                    other = bench.samples.get((key, scenario, peer))
                    if weave and other:
                        row.append(f"{_median(weave) / _median(other):.2f}×")
                    else:
                        row.append("—")
                status = target_status(bench, key, scenario, wl.n)
                if scenario == "big_first" and weave and big_size >= BIG_MIN_RATE_SIZE:
                    # The first build's time less the no-op's (start-up, the stat of the file,
                    # the bookkeeping: all but the hashing); the whole time if that is all.
                    noop = bench.samples.get((key, "big_noop", "weave"))
                    hashing = _median(weave) - (_median(noop) if noop else 0.0)
                    if noop and hashing > 0:
                        rate, how = big_size / hashing / 1e9, "the first build less the no-op"
                    else:
                        rate, how = big_size / _median(weave) / 1e9, "incl. start-up"
                    mark = "met" if rate >= 2 else "missed"
                    status = f"hash ≥ 2 GB/s: {rate:.2f} GB/s ({how}), {mark}"
                row.append(status)
            out.append("| " + " | ".join(row) + " |")
    out.append("")

    out.append("## Jobs run and peak RSS")
    out.append("")
    out.append(
        "Jobs run = outputs whose stat (mtime, inode, ctime, size) changed, counted the "
        "same way for every tool. Peak RSS = the tool's main process (VmHWM, sampled every "
        "2 ms; n/a for runs under 20 ms), max over repetitions; the jobs it spawns are not "
        "counted."
    )
    out.append("")
    head = ["shape", "N", "scenario", "expected jobs"]
    head += [f"{n} jobs" for n in names] + [f"{n} RSS MiB" for n in names]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" for _ in head) + "|")
    for key, wl in workloads:
        scenarios = BIG_SCENARIOS if wl.big_file else SCENARIOS
        for scenario in scenarios:
            want = bench.expected_jobs.get((key, scenario))
            if scenario == "touch_all":
                want_text = f"0 (make/ninja: {len(wl.jobs)})"
            else:
                want_text = "—" if want is None else str(want)
            row = [wl.shape, _n_label(wl, big_size), SCENARIO_TITLES[scenario], want_text]
            for n in names:
                s = bench.samples.get((key, scenario, n))
                jobs = sorted({x.jobs for x in s}) if s else []
                row.append("/".join(map(str, jobs)) if jobs else "—")
            for n in names:
                s = bench.samples.get((key, scenario, n))
                row.append(_mib(max(x.rss_kb for x in s)) if s else "—")
            out.append("| " + " | ".join(row) + " |")
    out.append("")

    startup = {label: bench.samples.get(("startup", label, "weave")) for label in STARTUP_COMMANDS}
    if all(startup.values()):
        base = _median(startup[STARTUP_COMMANDS[0]])
        out += [
            "## Start-up",
            "",
            "| command | time | minus `python -c pass` | target |",
            "|---|---|---|---|",
        ]
        for label, samples in startup.items():
            extra = _median(samples) - base
            target = (
                ""
                if label == STARTUP_COMMANDS[0]
                else (f"≤ 50 ms: {'met' if extra <= 0.05 else 'missed'}")
            )
            delta = "—" if label == STARTUP_COMMANDS[0] else _fmt_s(extra)
            out.append(f"| {label} | {_cell(samples)} | {delta} | {target} |")
        out.append("")

    if bench.problems or bench.peer_failures or bench.warnings:
        out += ["## Problems", ""]
        for text in bench.problems:
            out.append("- FAIL: " + text.replace("\n", "\n  "))
        for text in bench.peer_failures:
            out.append("- peer failed (not counted in the exit code): " + text.replace("\n", "\n  "))
        for text in bench.warnings:
            out.append("- warning: " + text)
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- CLI


def parse_count(text: str) -> int:
    """A job count: `1000`, `10k`, `0.1M` (decimal multiples)."""
    text = text.strip().lower()
    mult = {"k": 1000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def parse_size(text: str) -> int:
    """Bytes from `1G`, `512M`, `64k` (binary multiples) or a plain number."""
    text = text.strip().upper().removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _python_of(weave_cmd: list[str]) -> str:
    """The interpreter Weave runs on, for the start-up baseline."""
    first = shutil.which(weave_cmd[0]) or weave_cmd[0]
    if "python" in os.path.basename(first):
        return first
    try:
        with open(first, "rb") as fh:
            line = fh.readline().decode(errors="replace")
    except OSError:
        return sys.executable
    # A console-script wrapper starts with `#!/path/to/python`.
    if line.startswith("#!") and "python" in line:
        return line[2:].split()[0]
    return sys.executable


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if a build failed or Weave missed an expected state,
    2 on a usage error or when Weave cannot run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny and fast (N=20, 1 repetition): a CI check, not a measurement",
    )
    parser.add_argument("--sizes", help="job counts, comma-separated (default 1000,10000)")
    parser.add_argument(
        "--shapes", help=f"comma-separated, from {','.join(gen.SHAPES)} (default: all)"
    )
    parser.add_argument("--reps", type=int, help="repetitions (default 5)")
    parser.add_argument(
        "--tools",
        help="comma-separated (default: all; those not installed are skipped; "
        "with --smoke: weave,make,ninja)",
    )
    parser.add_argument(
        "--weave-cmd",
        default="weave",
        help="how to run Weave, e.g. 'python -m weavebuild' (default: weave)",
    )
    parser.add_argument("-j", "--jobs", type=int, default=2, help="parallel jobs (default 2)")
    parser.add_argument("--layers", type=int, default=10, help="layers of `layered` (default 10)")
    parser.add_argument("--big", action="store_true", help="also run the large-input scenario")
    parser.add_argument("--big-size", help="size of the large input (default 1G; 1M with --smoke)")
    parser.add_argument(
        "--no-rss", action="store_true", help="do not poll peak RSS (no sampling thread)"
    )
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up scenario")
    parser.add_argument(
        "--workdir", type=Path, help="where to write workloads (kept); default: a temp dir, removed"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp workdir")
    parser.add_argument("--timeout", type=float, help="seconds per command (default 3600)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw samples here")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    smoke = args.smoke
    try:
        sizes = [parse_count(s) for s in _split(args.sizes or ("20" if smoke else "1000,10000"))]
        big_size = parse_size(args.big_size or ("1M" if smoke else "1G"))
    except ValueError as exc:
        parser.error(str(exc))
    shapes = _split(args.shapes or ",".join(gen.SHAPES))
    reps = args.reps or (1 if smoke else 5)
    timeout = args.timeout or (120 if smoke else 3600)
    # Snakemake needs ~1-2 s per call even at N=20: left out of the smoke run unless asked.
    names = _split(args.tools or ("weave,make,ninja" if smoke else ",".join(gen.TOOLS)))
    for bad in sorted(set(shapes) - set(gen.SHAPES)):
        parser.error(f"unknown shape {bad!r}")
    for bad in sorted(set(names) - set(gen.TOOLS)):
        parser.error(f"unknown tool {bad!r}")
    if any(n < 2 for n in sizes) or reps < 1 or args.jobs < 1:
        parser.error("sizes must be >= 2, --reps and --jobs >= 1")

    weave_cmd = unshim(shlex.split(args.weave_cmd))
    tools, skipped = find_tools(names, weave_cmd, args.jobs)
    for note in skipped:
        print(f"bench: skipping {note}", file=sys.stderr)
    if "weave" in names and not any(t.name == "weave" for t in tools):
        print(
            "bench: Weave cannot run; install it (pip install -e .) or pass --weave-cmd",
            file=sys.stderr,
        )
        return 2
    if not tools:
        print("bench: no tool to run", file=sys.stderr)
        return 2

    stale_bytecode = ""
    if any(t.name == "weave" for t in tools) and os.environ.get("PYTHONDONTWRITEBYTECODE"):
        missing = uncompiled_modules(weave_cmd)
        if missing:
            stale_bytecode = (
                f"PYTHONDONTWRITEBYTECODE is set and {missing} of weavebuild's modules have no "
                "bytecode cache: every Weave start compiles them (tens of ms); run "
                "`python -m compileall -q src/weavebuild` first"
            )
            print(f"bench: warning: {stale_bytecode}", file=sys.stderr)

    if args.workdir:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="weave-bench-"))
    bench = Bench(tools, reps, timeout, workdir, verbose=not args.quiet, rss=not args.no_rss)
    if stale_bytecode:
        bench.warnings.append(stale_bytecode)
    workloads: list[tuple[str, gen.Workload]] = []
    started = time.perf_counter()
    try:
        for n in sizes:
            for shape in shapes:
                wl = gen.make_workload(shape, n, args.layers)
                key = f"{shape}-n{n}"
                workloads.append((key, wl))
                bench.run_workload(key, wl)
        if args.big:
            big_src = workdir / "big.bin"
            bench.say(f"[big] writing a {big_size / (1 << 20):.0f} MiB input")
            gen.make_big_file(big_src, big_size)
            wl = gen.big_workload()
            workloads.append(("big", wl))
            bench.run_workload("big", wl, big_src)
        weave = next((t for t in tools if t.name == "weave"), None)
        if weave is not None and not args.no_startup:
            bench.run_startup(weave, weave_cmd, _python_of(weave_cmd))
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif bench.verbose:
            print(f"bench: workloads kept in {workdir}", file=sys.stderr)

    settings = {
        "Settings": f"-j {args.jobs}, {reps} repetition(s), sizes {','.join(map(str, sizes))}, "
        f"shapes {','.join(shapes)}" + (" (smoke run)" if smoke else ""),
        "Total bench time": f"{time.perf_counter() - started:.1f} s",
    }
    report = render(bench, workloads, skipped, settings, big_size)
    print(report)
    if args.out:
        args.out.write_text(report + "\n")
    if args.json:
        raw = {
            "tools": [asdict(t) for t in tools],
            "samples": [
                {"workload": k, "scenario": s, "tool": t, "runs": [asdict(x) for x in v]}
                for (k, s, t), v in bench.samples.items()
            ],
            "problems": bench.problems,
            "peer_failures": bench.peer_failures,
            "warnings": bench.warnings,
        }
        args.json.write_text(json.dumps(raw, indent=1) + "\n")
    if bench.peer_failures:
        print(
            f"bench: {len(bench.peer_failures)} peer failure(s), not counted in the exit code; "
            "see the Problems section",
            file=sys.stderr,
        )
    if bench.problems:
        hint = "" if args.workdir or args.keep else " (--keep keeps the workloads and logs)"
        print(
            f"bench: {len(bench.problems)} problem(s); see the Problems section{hint}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        raise SystemExit(130) from None

"""The benchmark suite runs end to end at a tiny size (a smoke test: no timing is asserted)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (shutil.which("make") and shutil.which("ninja")), reason="needs make and ninja")
def test_bench_smoke(tmp_path):
    report = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--weave-cmd",
         f"{sys.executable} -m weavebuild", "--out", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = report.read_text()
    assert "weave" in text and "ninja" in text and "make" in text
    assert "FAIL" not in text and "peer failed" not in text, text
    assert f"weavebuild from {ROOT / 'src' / 'weavebuild'}" in text, text


def test_a_relative_pythonpath_names_the_checkout_not_each_workload(tmp_path):
    # PYTHONPATH=src from the checkout: the builds run inside the workloads, each with a src/
    # of its own. -S: no site-packages, so weavebuild can only come from that entry.
    import site

    report = tmp_path / "bench.md"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(["src"] + site.getsitepackages()))
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--shapes", "wide", "--tools", "weave",
         "--no-startup", "--weave-cmd", f"{sys.executable} -S -m weavebuild", "--out", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"weavebuild from {ROOT / 'src' / 'weavebuild'}" in report.read_text()


def _bench_module(monkeypatch):
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # run.py imports its sibling generate.py
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_run", bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    return bench


def test_modules_without_bytecode_are_counted(tmp_path, monkeypatch):
    # Under PYTHONDONTWRITEBYTECODE the bench warns that each Weave start would compile them.
    import compileall
    import site

    bench = _bench_module(monkeypatch)
    copy = tmp_path / "src" / "weavebuild"
    shutil.copytree(ROOT / "src" / "weavebuild", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(copy.parent)] + site.getsitepackages()))
    weave = [sys.executable, "-S", "-m", "weavebuild"]  # -S: not the installed weavebuild
    assert bench.uncompiled_modules(weave) == len(list(copy.rglob("*.py")))
    compileall.compile_dir(str(copy), quiet=1)
    assert bench.uncompiled_modules(weave) == 0


def test_pyenv_shims_are_measured_as_the_program_they_run(tmp_path, monkeypatch):
    """A pyenv shim costs 20-40 ms per call: the bench runs the real program instead."""
    bench = _bench_module(monkeypatch)
    real = tmp_path / "versions" / "mytool"
    shims = tmp_path / "shims"
    bindir = tmp_path / "bin"
    for directory in (real.parent, shims, bindir):
        directory.mkdir()
    scripts = {
        real: "#!/bin/sh\necho real\n",
        shims / "mytool": '#!/usr/bin/env bash\nexec pyenv exec mytool "$@"\n',
        bindir / "pyenv": f'#!/bin/sh\n[ "$1" = which ] && [ "$2" = mytool ] && echo {real}\n',
    }
    for path, text in scripts.items():
        path.write_text(text)
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{bindir}{os.pathsep}{os.environ['PATH']}")
    assert bench.unshim(["mytool", "build", "-j", "2"]) == [str(real), "build", "-j", "2"]
    assert bench.unshim(["sh", "-c", "true"]) == ["sh", "-c", "true"]  # not a shim: as given

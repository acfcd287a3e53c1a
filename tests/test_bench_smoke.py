"""The benchmark suite runs end to end at a tiny size (a smoke test: no timing is asserted)."""

from __future__ import annotations

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

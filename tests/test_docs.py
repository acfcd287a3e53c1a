"""The docs cannot drift from the code: README.md and docs/*.md are checked here.

- docs/cli.md must equal what docs/gen_cli.py generates from the click definitions.
- Every ```toml block must be a valid Weavefile (weavebuild.manifest.parse_manifest).
- Blocks marked runnable must run, against the real `weave`, in a temporary directory.
- Every page in docs/ is in the mkdocs.yml nav, and every relative link points at a file.

Markers are HTML comments on the line just before a fenced block (blank lines between are
allowed); they do not show in rendered Markdown:

    <!-- not-a-weavefile -->     a ```toml block that is deliberately partial: not checked
    <!-- invalid-weavefile -->   a ```toml block that must be *rejected* by parse_manifest
    <!-- file: PATH -->          write the block to PATH (relative to the current directory of
                                 the page's session, below) before the next runnable block
    <!-- runnable -->            ```bash: run with bash -euo pipefail; must exit 0.
                                 ```console: run each `$ COMMAND` line; what follows it, up to
                                 the next `$ ` line, must be its output (stdout and stderr
                                 together). `(0.12s)` timings match any timing, and a line
                                 `...` matches any number of lines.

The runnable blocks of one page run in order, like a reader typing into one terminal: the
session starts in a temporary directory holding a copy of weavefile_examples/ (so
`cd weavefile_examples/ml_pipeline` works, as in a checkout), and a `cd` in one block holds
for the next. `weave` and `python` on PATH are the interpreter running the tests.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple, Optional

import pytest

from weavebuild.errors import ManifestError, WeaveError
from weavebuild.graph import Resolver
from weavebuild.manifest import parse_manifest, wildcard_names_in

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "weavefile_examples"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*(?P<body>[^>]*?)\s*-->\s*$")
_TIMING = re.compile(r"\d+(?:\.\d+)?s\)")
_LINK = re.compile(
    r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\((?P<image>[^)\s]+)\)"
)


class Block(NamedTuple):
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    marker: Optional[str]  # the HTML comment just before the block, if any
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> List[Block]:
    """The fenced code blocks of a Markdown page, with the marker comment before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: List[Block] = []
    marker: Optional[str] = None
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence is None:
            comment = _MARKER.match(line)
            if comment is not None:
                marker = comment.group("body")
            elif line.strip():
                marker = None
            index += 1
            continue
        closing = fence.group("fence")
        body: List[str] = []
        index += 1
        start = index
        while index < len(lines) and not lines[index].strip().startswith(closing):
            body.append(lines[index][len(fence.group("indent")) :])
            index += 1
        found.append(
            Block(page, start, fence.group("lang").lower(), marker, "\n".join(body) + "\n")
        )
        marker = None
        index += 1
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]
TOML_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "toml" and b.marker != "not-a-weavefile"]
RUNNABLE_PAGES = sorted(
    {b.page for b in ALL_BLOCKS if b.marker == "runnable" or (b.marker or "").startswith("file:")}
)


def _id(value: object) -> str:
    return value.where if isinstance(value, Block) else str(Path(str(value)).relative_to(ROOT))


# -- docs/cli.md ----------------------------------------------------------------------------------


def test_cli_reference_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    gen_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_cli)
    current = (DOCS / "cli.md").read_text(encoding="utf-8") if (DOCS / "cli.md").exists() else ""
    if current != gen_cli.render():
        pytest.fail("docs/cli.md is stale: run python docs/gen_cli.py", pytrace=False)


# -- TOML snippets --------------------------------------------------------------------------------


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=_id)
def test_toml_block_is_a_weavefile(block: Block):
    if block.marker == "invalid-weavefile":
        with pytest.raises(ManifestError):
            parse_manifest(block.text, path=block.where)
        return
    try:
        manifest = parse_manifest(block.text, path=block.where)
        # `weave build` with no target must know what to build (no pattern rule first without
        # a default), unless every rule is a pattern rule (a snippet whose jobs are asked for
        # by path); sources are taken as missing, as `weave graph` draws them.
        if any(not wildcard_names_in(" ".join(rule.outputs)) for rule in manifest.rules.values()):
            Resolver(manifest, lambda path: False, missing_ok=True).resolve([])
    except WeaveError as exc:
        pytest.fail(
            f"{block.where}: not a valid Weavefile: {exc}\n"
            "(mark a deliberately partial block with <!-- not-a-weavefile -->, "
            "a deliberately invalid one with <!-- invalid-weavefile -->)"
        )


def test_markers_are_known():
    """A misspelt marker would silently skip a check: every one-word comment before a block
    must be a known marker (comments with spaces are prose and are ignored)."""
    known = ("runnable", "not-a-weavefile", "invalid-weavefile")
    for block in ALL_BLOCKS:
        marker = block.marker
        if marker is None or marker.startswith("file:") or " " in marker:
            continue
        assert marker in known, f"{block.where}: unknown marker <!-- {marker} -->"
        if marker.endswith("weavefile"):
            assert block.lang == "toml", f"{block.where}: <!-- {marker} --> on a {block.lang} block"


# -- runnable blocks ------------------------------------------------------------------------------


class Session:
    """One page's terminal: a working directory that persists across blocks, weave on PATH."""

    def __init__(self, tmp: Path):
        self.home = tmp / "session"
        self.home.mkdir()
        shutil.copytree(
            EXAMPLES,
            self.home / "weavefile_examples",
            ignore=shutil.ignore_patterns(".weave", "__pycache__"),
        )
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        for name, line in (
            ("weave", f'exec "{sys.executable}" -m weavebuild "$@"'),
            ("python", f'exec "{sys.executable}" "$@"'),
            ("python3", f'exec "{sys.executable}" "$@"'),
        ):
            shim = bin_dir / name
            shim.write_text(f"#!/bin/sh\n{line}\n")
            shim.chmod(0o755)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("WEAVE_", "CUDA_"))}
        self.env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src")]
            + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        )
        self.env["COLUMNS"] = "100"
        # The docs show `ls` and `sort` output in byte order, whatever this machine's locale
        # sorts by (en_US.UTF-8 puts "Weavefile" after "raw.txt").
        if "LC_ALL" in self.env:  # it would override LC_COLLATE: keep it as the default instead
            self.env["LANG"] = self.env.pop("LC_ALL")
        self.env["LC_COLLATE"] = "C"
        self.cwd_file = tmp / "cwd"
        self.cwd = self.home

    def run(self, script: str, strict: bool) -> subprocess.CompletedProcess:
        options = "-euo" if strict else "-uo"
        wrapped = f'{script}\n__rc=$?\npwd > "{self.cwd_file}"\nexit $__rc\n'
        if strict:  # with -e, record the directory on every exit path
            wrapped = f"trap 'pwd > \"{self.cwd_file}\"' EXIT\n{script}\n"
        process = subprocess.run(
            ["bash", options, "pipefail", "-c", wrapped],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        if self.cwd_file.exists():
            self.cwd = Path(self.cwd_file.read_text().strip())
        return process


def _normalize(text: str) -> str:
    lines = [_TIMING.sub("N.NNs)", line.rstrip()) for line in text.rstrip("\n").splitlines()]
    return "\n".join(lines)


def _output_matches(expected: str, actual: str) -> bool:
    parts = []
    for line in _normalize(expected).splitlines():
        parts.append(r"(?:.*\n)*?" if line.strip() == "..." else re.escape(line) + r"\n")
    actual = _normalize(actual)
    return re.fullmatch("".join(parts), actual + "\n" if actual else "") is not None


def _console_commands(text: str) -> List[tuple]:
    """[(command, expected output)] of a console block."""
    items: List[list] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            items.append([line[2:], []])
        elif items:
            items[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"console block starts with output, not a `$ ` line: {line!r}")
    return [(command, "\n".join(output)) for command, output in items]


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=_id)
def test_runnable_blocks_run(page: Path, tmp_path: Path):
    session = Session(tmp_path)
    for block in blocks_of(page):
        marker = block.marker or ""
        if marker.startswith("file:"):
            target = session.cwd / marker[len("file:") :].strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        elif marker == "runnable" and block.lang in ("bash", "sh", "shell"):
            result = session.run(block.text, strict=True)
            if result.returncode != 0:
                pytest.fail(
                    f"{block.where}: exited {result.returncode}\n--- script\n{block.text}"
                    f"--- output\n{result.stdout}",
                    pytrace=False,
                )
        elif marker == "runnable" and block.lang == "console":
            for command, expected in _console_commands(block.text):
                result = session.run(command, strict=False)
                if not _output_matches(expected, result.stdout):
                    pytest.fail(
                        f"{block.where}: output of `{command}` differs from the docs\n"
                        f"--- docs\n{expected}\n--- actual (exit {result.returncode})\n"
                        f"{result.stdout}",
                        pytrace=False,
                    )
        elif marker == "runnable":
            pytest.fail(f"{block.where}: runnable {block.lang!r} block: use bash or console")


# -- navigation and links -------------------------------------------------------------------------


def test_every_page_is_in_the_mkdocs_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [
        p.name for p in DOCS.glob("*.md") if not re.search(rf"[\s:]{re.escape(p.name)}\s", nav)
    ]
    assert not missing, f"pages missing from the nav in mkdocs.yml: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_relative_links_resolve(page: Path):
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1", "", text)  # not inside code blocks
    text = re.sub(r"`[^`\n]*`", "", text)
    broken = []
    for match in _LINK.finditer(text):
        target = match.group("target") or match.group("image")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, mailto:, or an anchor in the same page
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files: {broken}"

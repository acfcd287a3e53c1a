"""`weave graph`: real projects drawn by the real `dot`; the pictures are parsed and checked."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, Set

from conftest import assert_user_error
from weavebuild import visualize
from weavebuild.visualize import COLORS, FAILED, SOURCE, UP_TO_DATE, WILL_RUN

SVG = "{http://www.w3.org/2000/svg}"

PIPELINE = """
    default = ["all"]
    [rules.clean]
    inputs  = ["raw/{sample}.txt"]
    outputs = ["clean/{sample}.txt"]
    cmd     = "grep -q ok {inputs} && cp {inputs} {outputs}"
    [rules.merge]
    inputs  = ["clean/{sample}.txt", "config.toml"]
    outputs = ["merged.txt"]
    foreach = { sample = "raw/{sample}.txt" }
    cmd     = "cat {inputs} > {outputs}"
    [rules.count]
    inputs  = ["merged.txt"]
    outputs = ["count.txt"]
    cmd     = "wc -l < {inputs} > {outputs}"
    [rules.all]
    inputs = ["count.txt"]
"""
JOBS = ["clean[sample=a]", "clean[sample=b]", "clean[sample=c]", "merge", "count"]
SOURCES = ["raw/a.txt", "raw/b.txt", "raw/c.txt", "config.toml"]


def make_pipeline(project, bad: str = "") -> None:
    project.weavefile(PIPELINE)
    for sample in "abc":
        project.write(f"raw/{sample}.txt", "bad\n" if sample in bad else f"ok {sample}\n")
    project.write("config.toml", "x = 1\n")


def svg_nodes(path: Path) -> Dict[str, ET.Element]:
    """The picture's nodes by their <title> (the node id: job key, source path, ...)."""
    root = ET.parse(path).getroot()  # also proves the SVG is well-formed XML
    return {g.find(SVG + "title").text: g for g in root.iter(SVG + "g") if g.get("class") == "node"}


def fills(node: ET.Element) -> Set[str]:
    return {el.get("fill") for el in node.iter() if el.get("fill") not in (None, "none")}


def text_of(node: ET.Element) -> str:
    return "\n".join(t.text or "" for t in node.iter(SVG + "text"))


def test_svg_has_every_job_source_and_legend_coloured_by_state(project):
    make_pipeline(project)
    assert project.run("build", "clean/a.txt").rc == 0
    result = project.run("graph")
    assert result.rc == 0, result
    assert "wrote weave-graph.svg: 5 jobs" in result.out
    nodes = svg_nodes(project.root / "weave-graph.svg")
    assert set(JOBS + SOURCES) <= set(nodes)
    assert "clean\nclean/b.txt" in text_of(nodes["clean[sample=b]"])
    legend = text_of(nodes["weave:legend"])
    for line in ("up to date: 1 job", "will run: 4 jobs", "failed last time: 0 jobs", "source: 4 files"):
        assert line in legend
    assert fills(nodes["clean[sample=a]"]) == {COLORS[UP_TO_DATE]}
    for key in JOBS[1:]:
        assert fills(nodes[key]) == {COLORS[WILL_RUN]}, key
    for path in SOURCES:
        assert fills(nodes[path]) == {COLORS[SOURCE]}, path
    assert len(set(COLORS.values())) == len(COLORS)  # one colour per state
    assert "missing source" not in legend  # a row only when something is missing


def test_failed_last_time_until_it_succeeds(project):
    make_pipeline(project, bad="b")
    assert project.run("build", "-k").rc == 1
    assert project.run("graph").rc == 0
    nodes = svg_nodes(project.root / "weave-graph.svg")
    assert fills(nodes["clean[sample=b]"]) == {COLORS[FAILED]}
    assert fills(nodes["clean[sample=a]"]) == {COLORS[UP_TO_DATE]}
    assert fills(nodes["merge"]) == {COLORS[WILL_RUN]}  # never attempted: blocked by the failure
    assert "failed last time: 1 job" in text_of(nodes["weave:legend"])
    # Fixing the input is not enough: the job has not succeeded yet.
    project.write("raw/b.txt", "ok b\n")
    assert project.run("graph").rc == 0
    assert fills(svg_nodes(project.root / "weave-graph.svg")["clean[sample=b]"]) == {COLORS[FAILED]}
    assert project.run("build").rc == 0
    assert project.run("graph").rc == 0
    nodes = svg_nodes(project.root / "weave-graph.svg")
    assert all(fills(nodes[key]) == {COLORS[UP_TO_DATE]} for key in JOBS)


def test_rules_graph_has_one_node_per_rule(project):
    make_pipeline(project)
    assert project.run("build", "clean/a.txt").rc == 0
    result = project.run("graph", "--rules", "-o", "rules.svg")
    assert result.rc == 0, result
    nodes = svg_nodes(project.root / "rules.svg")
    assert set(nodes) == {"clean", "merge", "count", "weave:legend"}
    assert "3 jobs" in text_of(nodes["clean"])
    # One of three clean jobs is up to date: the node is striped with both colours.
    assert fills(nodes["clean"]) == {COLORS[UP_TO_DATE], COLORS[WILL_RUN]}
    dot = project.run("graph", "--rules", "-o", "-").out
    assert '"clean" -> "merge"' in dot and '"merge" -> "count"' in dot
    assert dot.count("->") == 2


def test_targets_limit_the_picture(project):
    make_pipeline(project)
    result = project.run("graph", "clean/a.txt", "-o", "-")
    assert result.rc == 0, result
    assert '"clean[sample=a]"' in result.out and '"raw/a.txt" -> "clean[sample=a]"' in result.out
    assert "merge" not in result.out and "raw/b.txt" not in result.out
    one = project.run("graph", "clean/a.txt", "--format", "dot", "-o", "one.dot")
    assert one.rc == 0 and "wrote one.dot: 1 job, " in one.out, one


def test_large_graph_collapses_into_a_readable_picture(project):
    project.weavefile(
        """
        default = ["report.txt"]
        [rules.prep]
        inputs  = ["raw/{i}.txt"]
        outputs = ["prep/{i}.txt"]
        cmd     = "cp {inputs} {outputs}"
        [rules.feat]
        inputs  = ["prep/{i}.txt"]
        outputs = ["feat/{i}.txt"]
        cmd     = "cp {inputs} {outputs}"
        [rules.merge]
        inputs  = ["feat/{i}.txt"]
        outputs = ["merged.txt"]
        foreach = { i = "raw/{i}.txt" }
        cmd     = "cat {inputs} > {outputs}"
        [rules.report]
        inputs  = ["merged.txt"]
        outputs = ["report.txt"]
        cmd     = "wc -l < {inputs} > {outputs}"
        """
    )
    (project.root / "raw").mkdir()
    for i in range(600):
        (project.root / "raw" / f"{i}.txt").write_text(f"{i}\n")
    assert project.run("build", "prep/1.txt", "prep/2.txt").rc == 0
    started = time.monotonic()
    result = project.run("graph")
    seconds = time.monotonic() - started
    assert result.rc == 0, result
    assert "1202 jobs" in result.out and "collapsed" in result.out
    assert seconds < 15, seconds
    nodes = svg_nodes(project.root / "weave-graph.svg")
    assert set(nodes) == {"prep[*]", "feat[*]", "merge", "report", "raw/*.txt (600 sources)", "weave:legend"}
    assert "600 jobs" in text_of(nodes["prep[*]"])
    assert "2 up to date, 598 will run" in text_of(nodes["prep[*]"])
    assert fills(nodes["prep[*]"]) == {COLORS[UP_TO_DATE], COLORS[WILL_RUN]}
    assert "600 sources" in text_of(nodes["raw/*.txt (600 sources)"])
    # --no-collapse draws every job (DOT only here: laying out 1800 nodes takes dot a while).
    full = project.run("graph", "--no-collapse", "-o", "-")
    assert full.rc == 0, full
    node_lines = [line for line in full.out.splitlines() if "label=" in line]
    assert len(node_lines) == 1 + 1202 + 600  # legend, jobs, sources
    assert '"feat[i=599]" -> "merge"' in full.out


def test_collapse_can_be_forced_on_a_small_graph(project):
    make_pipeline(project)
    result = project.run("graph", "--collapse", "-o", "-")
    assert result.rc == 0, result
    assert '"clean[*]"' in result.out and "clean\\n3 jobs" in result.out
    assert "clean[sample=a]" not in result.out
    assert '"clean[*]" -> "merge"' in result.out
    # Three raw files feed the collapsed node; config.toml feeds merge alone.
    assert '"raw/a.txt"' in result.out and '"config.toml" -> "merge"' in result.out


def test_dot_format_works_without_the_dot_program(project, tmp_path):
    make_pipeline(project)
    empty = tmp_path / "empty-bin"  # (not /nonexistent: a file of that name broke this test once)
    empty.mkdir()
    no_dot = {"PATH": str(empty)}
    result = project.run("graph", "--format", "dot", "-o", "-", env=no_dot)
    assert result.rc == 0, result
    assert result.out.startswith("digraph weave {") and '"merge" -> "count"' in result.out
    assert project.run("graph", "--format", "dot", env=no_dot).rc == 0
    assert project.read("weave-graph.dot").startswith("digraph weave {")
    (project.root / "weave-graph.dot").unlink()
    # An image needs dot: exit 2 with how to install it, and the DOT source kept.
    result = project.run("graph", env=no_dot)
    assert_user_error(result, "'dot' program was not found", "apt-get install graphviz", "brew install graphviz")
    assert "weave-graph.dot" in result.err
    assert project.read("weave-graph.dot").startswith("digraph weave {")
    assert not project.exists("weave-graph.svg")


def test_png_and_pdf_have_the_right_magic_bytes(project):
    make_pipeline(project)
    assert project.run("graph", "-o", "g.png").rc == 0  # format from the extension
    assert (project.root / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert project.run("graph", "--format", "pdf", "-o", "g.out").rc == 0
    assert (project.root / "g.out").read_bytes().startswith(b"%PDF-")
    svg = project.run("graph", "--format", "svg", "-o", "-")
    assert svg.rc == 0 and "<svg" in svg.out and svg.out.rstrip().endswith("</svg>")


def test_user_errors(project):
    make_pipeline(project)
    assert_user_error(project.run("graph", "-o", "g.jpg"), "cannot tell the picture format", "--format")
    assert_user_error(project.run("graph", "nope.txt"), "no rule makes 'nope.txt'")
    assert_user_error(project.run("graph", "--format", "gif"), "gif")


def test_odd_names_stay_exact_in_the_picture(project):
    project.weavefile(
        """
        [rules.use]
        inputs  = ['we"ird <b> & co.csv']
        outputs = ["out.txt"]
        cmd     = "cp {inputs} {outputs}"
        """
    )
    project.write('we"ird <b> & co.csv', "x\n")
    assert project.run("graph", "-o", "odd.svg").rc == 0
    nodes = svg_nodes(project.root / "odd.svg")
    assert text_of(nodes['we"ird <b> & co.csv']) == 'we"ird <b> & co.csv'


# -- the pure parts ------------------------------------------------------------------------------
def test_failed_last_time_comes_from_the_latest_attempt():
    newest = [("a", "r", 1, 0, 0, 0, "ok"), ("c", "r", 1, 0, 0, 1, "cancelled")]
    older = [("a", "r", 1, 0, 0, 1, "failed"), ("b", "r", 1, 0, 0, 1, "failed"),
             ("b", "r", 2, 0, 0, None, "timeout"), ("d", "r", 1, 0, 0, 1, "failed")]
    latest = visualize.last_attempt_status([newest, older])
    assert latest == {"a": "ok", "c": "cancelled", "b": "timeout", "d": "failed"}
    graph = SimpleNamespace(jobs=[SimpleNamespace(key=k) for k in "abcde"])
    verdicts = {k: SimpleNamespace(up_to_date=k == "d") for k in "abcde"}
    states = visualize.job_states(graph, verdicts, latest)
    # d failed once but has been made up to date since (e.g. `weave touch`).
    assert states == {"a": WILL_RUN, "b": FAILED, "c": WILL_RUN, "d": UP_TO_DATE, "e": WILL_RUN}


def test_stripes_never_add_up_to_more_than_one():
    style, fill = visualize._fill(Counter({FAILED: 1, WILL_RUN: 1, UP_TO_DATE: 5000}))
    assert style == "striped"
    parts = fill.split(":")
    assert [p.split(";")[0] for p in parts] == [COLORS[FAILED], COLORS[WILL_RUN], COLORS[UP_TO_DATE]]
    shares = [float(p.split(";")[1]) for p in parts[:-1]]
    assert all(share >= 0.01 for share in shares) and sum(shares) < 1
    assert visualize._fill(Counter({WILL_RUN: 3})) == ("filled", COLORS[WILL_RUN])


def test_source_edges_are_drawn_after_a_build_too(project):
    """After a build the graph comes from the graph cache: each source still has its edges to
    the jobs that read it (they were dropped: sources drawn unconnected)."""
    make_pipeline(project)
    before = project.run("graph", "-o", "-")
    assert before.rc == 0, before
    edges = sorted(line.strip() for line in before.out.splitlines() if "->" in line)
    assert any(line.startswith('"raw/a.txt" ->') for line in edges), before.out
    assert project.run("build").rc == 0
    after = project.run("graph", "-o", "-")
    assert sorted(line.strip() for line in after.out.splitlines() if "->" in line) == edges


def test_grouped_sources_with_nothing_in_common_are_labelled_by_count(project):
    """A script beside its data feeding one collapsed rule: the group's label is a count, not
    a bare `*`; the edge to the rule is drawn."""
    project.weavefile(
        """
        [rules.prep]
        inputs = ["scripts/prep.py", "raw/{s}.txt"]
        outputs = ["out/{s}.txt"]
        foreach = { s = "raw/{s}.txt" }
        cmd = "cp raw/{wildcards.s}.txt {outputs}"
        """
    )
    project.write("scripts/prep.py", "\n")
    for index in range(12):
        project.write(f"raw/r{index:02d}.txt", "x\n")
    result = project.run("graph", "--collapse", "-o", "-")
    assert result.rc == 0, result
    assert 'label="13 sources"' in result.out, result.out
    assert '"* (13 sources)" -> "prep[*]"' in result.out


def test_a_missing_source_is_drawn_as_missing_not_refused(project):
    """While a pipeline is written its data may not be there yet: the picture is drawn anyway
    (as `dvc dag` does), each missing source marked, with a warning; builds still refuse."""
    make_pipeline(project)
    (project.root / "raw/b.txt").unlink()
    project.write("Weavefile", project.read("Weavefile").replace('foreach = { sample = "raw/{sample}.txt" }', 'foreach = { sample = ["a", "b", "c"] }'), dedent=False)
    result = project.run("graph", "-o", "g.svg")
    assert result.rc == 0, result
    assert "weave: warning: missing source(s) raw/b.txt: drawn as missing" in result.err
    nodes = svg_nodes(project.root / "g.svg")
    assert "(missing)" in text_of(nodes["raw/b.txt"]) and "(missing)" not in text_of(nodes["raw/a.txt"])
    dot = project.run("graph", "-o", "-").out
    assert "missing source: 1 file" in dot
    assert project.run("build").rc == 2  # a build still stops at the missing source


def test_a_picture_too_large_for_graphviz_is_refused_with_its_dot_source(project):
    """2,001 plain rules make 2,002 nodes that no collapse folds: `weave graph` writes the DOT
    source and says so, instead of a `dot` that runs for hours."""
    project.weavefile(
        "".join(f'[rules.r{n}]\noutputs = ["out/{n}.txt"]\ncmd = "touch {{outputs}}"\n' for n in range(visualize.LAYOUT_LIMIT + 1))
        + '[rules.all]\ninputs = ["out/*.txt"]\n'
    )
    result = project.run("graph", "all", timeout=120)
    assert_user_error(result, "nodes are more than Graphviz lays out in reasonable time", "the DOT source was written to weave-graph.dot")
    assert "--rules" not in result.err  # one node per rule: as many nodes here (the docs audit)
    assert (project.root / "weave-graph.dot").read_text().startswith("digraph")
    assert not (project.root / "weave-graph.svg").exists()
    dot = project.run("graph", "all", "-o", "big.dot", timeout=120)
    assert dot.rc == 0 and (project.root / "big.dot").exists()


def test_graph_and_report_never_write_over_the_weavefile_an_include_or_the_state(project):
    """`-o` names a picture or a page: the Weavefile, a file it includes or weave's state
    there is a mistake (a command line recalled and edited), refused before writing."""
    project.weavefile(
        """
        include = ["more.toml"]
        [rules.a]
        outputs = ["a.txt"]
        cmd = "echo a > a.txt"
        """
    )
    project.write("more.toml", "[rules.b]\noutputs = ['b.txt']\ncmd = 'echo b > b.txt'\n", dedent=False)
    assert project.run("build", "a.txt", "b.txt").rc == 0
    kept = {name: project.read(name) for name in ("Weavefile", "more.toml")}
    state = (project.root / ".weave/state.db").read_bytes()
    for command in (["graph", "--format", "dot"], ["report"]):
        for target, problem in (
            ("Weavefile", "is the Weavefile"),
            ("more.toml", "is a file the Weavefile includes"),
            (".weave/state.db", "is inside weave's state directory (.weave/)"),
        ):
            assert_user_error(project.run(*command, "-o", target), f"'{target}' {problem}: weave never writes over it")
    assert {name: project.read(name) for name in kept} == kept
    assert (project.root / ".weave/state.db").read_bytes() == state
    shown = project.run("graph", "-v", "--format", "dot", "-o", "/dev/null")
    assert shown.rc == 0 and "wrote /dev/null:" in shown.out, shown
    # A Weavefile that is a symlink: the file it points to is the Weavefile too.
    (project.root / "pipelines").mkdir()
    (project.root / "Weavefile").rename(project.root / "pipelines/main.toml")
    (project.root / "Weavefile").symlink_to("pipelines/main.toml")
    for command in (["graph", "--format", "dot"], ["report"]):
        for target in ("Weavefile", "pipelines/main.toml"):
            assert_user_error(project.run(*command, "-o", target), f"'{target}' is the Weavefile: weave never writes over it")
    assert project.read("pipelines/main.toml") == kept["Weavefile"]


CONTROL_NAMES = """
[rules.copy]
inputs  = ["{n}.txt"]
outputs = ["out/{n}.txt"]
foreach = { n = "{n}.txt" }
cmd     = "cp {inputs} {outputs}"
"""


def test_control_characters_in_names_are_escaped_in_the_picture(project):
    """A file name with a control character (\\x01, an ESC sequence) is drawn with it escaped:
    dot put it raw into the SVG, which was then not well-formed XML (\\x01 is not allowed in
    XML 1.0), and into the DOT source."""
    project.weavefile(CONTROL_NAMES)
    project.write("a\x01b.txt", "x\n")
    project.write("c\x1b[31mred.txt", "y\n")
    project.write("a\\x01b.txt", "z\n")  # reads like the first escaped: still a node of its own
    assert project.run("build").rc == 0
    assert project.run("graph", "-o", "g.svg").rc == 0
    nodes = svg_nodes(project.root / "g.svg")  # parses
    texts = {text_of(node) for node in nodes.values()}
    assert {"a\\x01b.txt", "c\\x1b[31mred.txt", "copy\nout/a\\x01b.txt", "copy\nout/c\\x1b[31mred.txt"} <= texts
    assert len(nodes) == 7, sorted(nodes)  # 3 jobs, 3 sources and the legend
    assert project.run("graph", "-o", "g.dot").rc == 0
    dot = project.read("g.dot")
    assert "\x01" not in dot and "\x1b" not in dot and '"a\\\\x01b.txt" -> ' in dot, dot


def test_order_only_edges_are_dashed(project):
    """A job waiting for another's output only through order_only is drawn with a dashed
    edge (the same edge as an input's before); one that also reads it is drawn plainly."""
    project.write("v.in", "1\n")
    project.write("a.in", "a\n")
    project.weavefile(
        '[rules.gen]\ninputs = ["v.in"]\noutputs = ["v.h"]\ncmd = "cp v.in v.h"\n'
        '[rules.a]\ninputs = ["a.in"]\noutputs = ["a.o"]\norder_only = ["v.h"]\ncmd = "cp a.in a.o"\n'
        '[rules.b]\ninputs = ["v.h"]\noutputs = ["b.o"]\ncmd = "cp v.h b.o"\n'
        '[rules.all]\ninputs = ["a.o", "b.o"]\n'
    )
    result = project.run("graph", "all", "--format", "dot", "-o", "-")
    assert result.rc == 0, result
    edges = [line.strip() for line in result.out.splitlines() if "->" in line]
    assert '"gen" -> "a" [style="dashed" tooltip="order_only: made first"]' in edges, edges
    assert '"gen" -> "b"' in edges, edges

"""Pictures of the build: the job graph (or rule graph) as DOT source, coloured by job state.

Owns the states shown (up to date, will run, failed last time, source), the collapsing of large
graphs and the DOT text; renders through the `graphviz` package. Reads no store and prints nothing.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .errors import UsageError, WeaveError
from .graph import Graph, Job
from .jobs import only_ordered
from .reporter import escape_controls
from .scan import Verdict

UP_TO_DATE = "up to date"
WILL_RUN = "will run"
FAILED = "failed last time"
SOURCE = "source"
MISSING = "missing source"
STATES = (UP_TO_DATE, WILL_RUN, FAILED, SOURCE, MISSING)

# Pastel fills keep black labels legible; red/amber/green are also told apart by lightness.
COLORS = {
    UP_TO_DATE: "#b9e4a8",
    WILL_RUN: "#ffd685",
    FAILED: "#f3a0a0",
    SOURCE: "#e3e3e3",
    MISSING: "#ffffff",
}

# Above this many jobs the picture groups each pattern rule's jobs into one node: dot's layout
# time grows quickly with node count and a 1000-node picture is unreadable anyway.
COLLAPSE_ABOVE = 200
# Beyond this many nodes `weave graph` writes DOT only: Graphviz's layout takes minutes to hours.
LAYOUT_LIMIT = 2000
# When collapsing, sources that feed the same nodes are drawn as one node once they are this many.
SOURCE_GROUP_MIN = 4

INSTALL_HINT = (
    "install Graphviz: 'apt-get install graphviz' (Debian/Ubuntu), 'brew install graphviz' "
    "(macOS), or see https://graphviz.org/download/"
)


class DotNotFound(UsageError):
    """Graphviz's `dot` program is not on PATH, so only DOT source can be written."""

    def __init__(self) -> None:
        super().__init__("the Graphviz 'dot' program was not found on PATH", hint=INSTALL_HINT)


# -- states --------------------------------------------------------------------------------------
def last_attempt_status(runs: Iterable[Sequence[Sequence[Any]]]) -> Dict[str, str]:
    """The status of each job's most recent attempt.

    `runs` yields the attempt rows of one run at a time, newest run first, rows as returned by
    `Store.attempts` (job_key first, status seventh, oldest attempt first).
    """
    latest: Dict[str, str] = {}
    for rows in runs:
        in_run: Dict[str, str] = {}
        for row in rows:
            in_run[row[0]] = row[6]  # later attempts (retries) overwrite earlier ones
        for key, status in in_run.items():
            latest.setdefault(key, status)
    return latest


def job_states(
    graph: Graph, verdicts: Mapping[str, Verdict], last_status: Mapping[str, str]
) -> Dict[str, str]:
    """Each job's state. A job 'failed last time' only while it is still stale: a job fixed by
    hand and recorded with `weave touch` is up to date again. A 'cancelled' attempt (stopped
    because another job failed or the user interrupted) is not the job's own failure."""
    states: Dict[str, str] = {}
    for job in graph.jobs:
        if verdicts[job.key].up_to_date:
            states[job.key] = UP_TO_DATE
        elif last_status.get(job.key) in ("failed", "timeout"):
            states[job.key] = FAILED
        else:
            states[job.key] = WILL_RUN
    return states


# -- the picture as data -------------------------------------------------------------------------
class Node:
    """One box in the picture: a job, a collapsed rule, a rule, a source or a group of sources.

    `mix` counts the states of the jobs (or sources) it stands for; one state means one colour.
    """

    __slots__ = ("id", "label", "mix", "tooltip", "group")

    def __init__(self, node_id: str, label: str, tooltip: str = "", group: bool = False):
        self.id = node_id
        self.label = label
        self.mix: Counter = Counter()
        self.tooltip = tooltip
        self.group = group

    def __repr__(self) -> str:
        return f"Node({self.id!r}, {dict(self.mix)})"


class Picture:
    """Nodes and edges ready to be written as DOT; edges map (tail id, head id) to a count."""

    def __init__(self, jobs: int, counts: Counter, collapsed: bool, rules: bool):
        self.nodes: Dict[str, Node] = {}
        self.edges: Dict[Tuple[str, str], int] = {}
        # Edges with a dependency whose output is read (not only made first, order_only): the
        # others are drawn dashed.
        self.read: Set[Tuple[str, str]] = set()
        self.jobs = jobs
        self.counts = counts
        self.collapsed = collapsed
        self.rules = rules

    def add(self, preferred_id: str, label: str, tooltip: str = "", group: bool = False) -> Node:
        # A source may be called like a job key or a rule ("train"); ids must stay unique, as
        # written (a name with a control character, escaped, may read as another name).
        preferred_id = escape_controls(preferred_id)
        node_id, n = preferred_id, 1
        while node_id in self.nodes:
            n += 1
            node_id = f"{preferred_id} ({n})"
        node = self.nodes[node_id] = Node(node_id, label, tooltip, group)
        return node

    def connect(self, tail: str, head: str, ordered: bool = False) -> None:
        if tail != head:  # a rule whose jobs feed each other: a self-loop says nothing useful
            self.edges[(tail, head)] = self.edges.get((tail, head), 0) + 1
            if not ordered:
                self.read.add((tail, head))


def _job_label(job: Job) -> str:
    if not job.outputs:
        return job.key
    first = job.outputs[0] + ("/" if job.dir_outputs[0] else "")
    more = f" +{len(job.outputs) - 1}" if len(job.outputs) > 1 else ""
    return f"{job.rule.name}\n{first}{more}"


def _job_tooltip(job: Job, state: str, verdict: Verdict) -> str:
    lines = [job.key, state]
    lines += [str(reason) for reason in verdict.reasons[:5]]
    if len(verdict.reasons) > 5:
        lines.append(f"... {len(verdict.reasons) - 5} more")
    return "\n".join(lines)


def _breakdown(mix: Counter) -> str:
    return ", ".join(f"{mix[state]} {state}" for state in STATES if mix[state])


def _path_pattern(paths: Sequence[str]) -> str:
    """A glob-like summary of many paths (`raw/*.txt`) from their common prefix and suffix."""
    prefix = os.path.commonprefix(list(paths))
    suffix = os.path.commonprefix([p[::-1] for p in paths])[::-1]
    shortest = min(len(p) for p in paths)
    suffix = suffix[: max(0, shortest - len(prefix))] if len(prefix) + len(suffix) > shortest else suffix
    return f"{prefix}*{suffix}"


def job_picture(
    graph: Graph,
    verdicts: Mapping[str, Verdict],
    states: Mapping[str, str],
    collapse: Optional[bool] = None,
    limit: int = COLLAPSE_ABOVE,
) -> Picture:
    """The job graph with its sources. `collapse` None means: collapse when over `limit` jobs.

    Collapsing draws all jobs of a pattern rule (a rule with wildcards, more than one job here)
    as one node with a count and a striped fill in proportion to their states.
    """
    if collapse is None:
        collapse = len(graph.jobs) > limit
    per_rule = Counter(job.rule.name for job in graph.jobs if job.wildcards)
    grouped = {name for name, count in per_rule.items() if count > 1} if collapse else set()
    picture = Picture(len(graph.jobs), Counter(states.values()), bool(grouped), rules=False)
    picture.counts[SOURCE] = len(graph.sources) - len(graph.missing)
    picture.counts[MISSING] = len(graph.missing)
    node_of: Dict[str, str] = {}
    rule_nodes: Dict[str, Node] = {}
    failed: Dict[str, List[str]] = {}
    for job in graph.jobs:
        state = states[job.key]
        if job.rule.name in grouped:
            node = rule_nodes.get(job.rule.name)
            if node is None:
                node = rule_nodes[job.rule.name] = picture.add(f"{job.rule.name}[*]", "", group=True)
            if state == FAILED:
                failed.setdefault(job.rule.name, []).append(job.key)
        else:
            node = picture.add(job.key, _job_label(job), _job_tooltip(job, state, verdicts[job.key]))
        node.mix[state] += 1
        node_of[job.key] = node.id
    for name, node in rule_nodes.items():
        total = sum(node.mix.values())
        node.label = f"{name}\n{total} jobs\n{_breakdown(node.mix)}"
        node.tooltip = f"rule {name}: {total} jobs\n{_breakdown(node.mix)}"
        keys = failed.get(name, [])
        if keys:
            node.tooltip += "\nfailed last time: " + ", ".join(keys[:5])
            node.tooltip += f" (+{len(keys) - 5})" if len(keys) > 5 else ""
    _add_sources(picture, graph, node_of, group=collapse)
    for job in graph.jobs:
        for dep in job.deps:
            picture.connect(node_of[dep.key], node_of[job.key], only_ordered(dep, job))
    return picture


def _add_sources(picture: Picture, graph: Graph, node_of: Mapping[str, str], group: bool) -> None:
    # Group by the exact set of nodes a source feeds, so a group's edges are the same edges its
    # members would have had: a thousand raw/*.txt files feeding one collapsed rule become one node.
    by_consumers: Dict[Tuple[str, ...], List[str]] = {}
    missing = set(graph.missing)
    for path, consumers in graph.sources.items():
        heads = tuple(sorted({node_of[job.key] for job in consumers}))
        if path in missing:  # drawn one by one, never in a group: each is to be made
            node = picture.add(path, path + "\n(missing)", tooltip=f"{path}\n{MISSING}")
            node.mix[MISSING] = 1
            for head in heads:
                picture.connect(node.id, head)
            continue
        by_consumers.setdefault(heads, []).append(path)
    for heads, paths in by_consumers.items():
        if group and len(paths) >= SOURCE_GROUP_MIN:
            pattern = _path_pattern(paths)
            node = picture.add(
                f"{pattern} ({len(paths)} sources)",
                # A bare "*" (nothing in common: a script beside its data) says nothing.
                f"{pattern}\n{len(paths)} sources" if pattern != "*" else f"{len(paths)} sources",
                tooltip="\n".join(paths[:10]) + (f"\n... {len(paths) - 10} more" if len(paths) > 10 else ""),
                group=True,
            )
            node.mix[SOURCE] = len(paths)
            for head in heads:
                picture.connect(node.id, head)
            continue
        for path in paths:
            node = picture.add(path, path, tooltip=f"{path}\nsource")
            node.mix[SOURCE] = 1
            for head in heads:
                picture.connect(node.id, head)


def rule_picture(graph: Graph, states: Mapping[str, str]) -> Picture:
    """One node per rule with jobs in the graph; an edge where a job of one feeds a job of another."""
    picture = Picture(len(graph.jobs), Counter(states.values()), collapsed=False, rules=True)
    nodes: Dict[str, Node] = {}
    for job in graph.jobs:
        node = nodes.get(job.rule.name)
        if node is None:
            node = nodes[job.rule.name] = picture.add(job.rule.name, job.rule.name)
        node.mix[states[job.key]] += 1
    for name, node in nodes.items():
        total = sum(node.mix.values())
        node.group = total > 1
        node.label = name if total == 1 else f"{name}\n{total} jobs"
        node.tooltip = f"rule {name}: {total} job{'s' if total > 1 else ''}\n{_breakdown(node.mix)}"
    for job in graph.jobs:
        for dep in job.deps:
            picture.connect(nodes[dep.rule.name].id, nodes[job.rule.name].id)
    return picture


# -- DOT -----------------------------------------------------------------------------------------
def _quote(text: str) -> str:
    """A DOT double-quoted string whose escString sequences (\\N, \\G, ...) cannot fire.

    Trade-off: dot keeps a node id's backslashes doubled (its <title> in SVG shows `a\\\\b`),
    but there is no other way to write an id ending in a backslash; labels come out exact.
    Control characters of file names are written as visible escapes (`\\x01`): dot would put
    them raw into SVG, where most are not allowed in XML, and into its other outputs.
    """
    escaped = escape_controls(text, keep="\n").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _fill(mix: Counter) -> Tuple[str, str]:
    """(style, fillcolor): one colour, or stripes sized by share, failures first to catch the eye."""
    present = [state for state in (FAILED, WILL_RUN, UP_TO_DATE, SOURCE, MISSING) if mix[state]]
    if len(present) == 1:
        return "filled", COLORS[present[0]]
    total = sum(mix.values())
    # Every state present gets a visible stripe (at least 2%); the last takes what is left, so
    # the fractions never add up to more than 1 (dot warns and drops colours when they do).
    shares = [max(0.02, mix[state] / total) for state in present[:-1]]
    scale = min(1.0, 0.98 / sum(shares))
    parts = [f"{COLORS[s]};{share * scale:.3f}" for s, share in zip(present, shares)]
    parts.append(COLORS[present[-1]])
    return "striped", ":".join(parts)


def _attrs(**attrs: str) -> str:
    return "[" + " ".join(f"{key}={value}" for key, value in attrs.items()) + "]"


def _legend(picture: Picture) -> str:
    rows = ['<TR><TD COLSPAN="2"><B>weave graph</B></TD></TR>']
    for state in STATES:
        if state in (SOURCE, MISSING) and picture.rules:
            continue  # the rule graph draws no sources
        count = picture.counts.get(state, 0)
        if state == MISSING and not count:
            continue  # a row only when something is missing
        noun = ("file" if state in (SOURCE, MISSING) else "job") + ("" if count == 1 else "s")
        rows.append(
            f'<TR><TD BGCOLOR="{COLORS[state]}" WIDTH="18"> </TD>'
            f'<TD ALIGN="LEFT">{html.escape(state)}: {count} {noun}</TD></TR>'
        )
    if picture.collapsed or picture.rules:
        what = "all jobs of a rule" if picture.rules else "a pattern rule's jobs"
        rows.append(
            f'<TR><TD BORDER="0" COLSPAN="2" ALIGN="LEFT">double border: {what}'
            '<BR ALIGN="LEFT"/>stripes: the share in each state<BR ALIGN="LEFT"/></TD></TR>'
        )
    table = "".join(rows)
    return f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">{table}</TABLE>>'


def to_dot(picture: Picture) -> str:
    """The picture as DOT source, stable for the same graph and states (diffable)."""
    lines = [
        "digraph weave {",
        '  graph [rankdir=LR ranksep=0.4 nodesep=0.15 fontname="Helvetica"]',
        '  node [shape=box fontname="Helvetica" fontsize=10 margin="0.12,0.04"]',
        '  edge [color="#777777" arrowsize=0.6]',
        f"  {_quote('weave:legend')} [shape=plain fontsize=10 label={_legend(picture)}]",
    ]
    for node in picture.nodes.values():
        style, fill = _fill(node.mix)
        attrs = {"label": _quote(node.label), "style": _quote(style), "fillcolor": _quote(fill)}
        if node.tooltip:
            attrs["tooltip"] = _quote(node.tooltip)
        if node.group:
            attrs["peripheries"] = "2"
        if (node.mix[SOURCE] or node.mix[MISSING]) and len(node.mix) == 1:
            attrs["shape"] = "note"
        if node.mix[MISSING]:  # a file to be made or fetched: a dashed red outline
            attrs["style"] = _quote("filled,dashed")
            attrs["color"] = _quote("#c03030")
        lines.append(f"  {_quote(node.id)} {_attrs(**attrs)}")
    for (tail, head), count in picture.edges.items():
        attrs: Dict[str, str] = {}
        if count > 1:
            attrs["tooltip"] = _quote(f"{count} dependencies")
        if (tail, head) not in picture.read:
            attrs["style"] = _quote("dashed")
            attrs["tooltip"] = _quote("order_only: made first" + (f" ({count})" if count > 1 else ""))
        suffix = f" {_attrs(**attrs)}" if attrs else ""
        lines.append(f"  {_quote(tail)} -> {_quote(head)}{suffix}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot: str, fmt: str) -> bytes:
    """Lay out and draw DOT source with Graphviz's `dot` program; raises DotNotFound without it."""
    import graphviz  # lazily: `weave build` must not pay for it

    try:
        # quiet: dot's warnings are about our styling, not the user's project
        return graphviz.Source(dot).pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        raise DotNotFound() from None
    except graphviz.CalledProcessError as exc:
        stderr = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
        raise WeaveError(f"Graphviz 'dot' failed to draw the graph: {stderr or exc}") from None

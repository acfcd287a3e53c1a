"""`weave graph`: draw the job graph (or rule graph) coloured by state, via weavebuild.visualize.

Translates flags into calls and owns only where the picture goes (file or stdout) and the
fallback to DOT source when Graphviz's `dot` program is missing.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional, Sequence

import click

from .. import paths
from ..cli import CONTEXT_SETTINGS, Settings, set_option, verbosity_options
from ..errors import MissingSource, UsageError

FORMATS = ("svg", "png", "pdf", "dot")

# How many past runs to search for a job's last attempt: enough to remember a failure across a
# few partial builds, few enough that the query stays cheap.
HISTORY_RUNS = 20


def _last_status(project: Any) -> Dict[str, str]:
    from ..visualize import last_attempt_status

    store = project.open_store(readonly=True)
    try:
        return last_attempt_status(store.attempts(row[0]) for row in store.runs(HISTORY_RUNS))
    finally:
        store.close()


def _choose_format(fmt: Optional[str], output: Optional[str]) -> str:
    if fmt is not None:
        return fmt
    if output is None:
        return "svg"
    if output == "-":
        return "dot"
    extension = os.path.splitext(output)[1].lower().lstrip(".")
    if not extension:
        return "svg"
    if extension == "gv":
        return "dot"
    if extension not in FORMATS:
        raise UsageError(
            f"cannot tell the picture format from '{output}'",
            hint="use --format svg|png|pdf|dot, or an output name ending in one of those",
        )
    return extension


def _write(data: bytes, output: str, project: Any) -> None:
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    problem = paths.overwrite_problem(output, project.root, project.weavefiles)
    if problem is not None:
        raise UsageError(f"'{output}' {problem}: weave never writes over it", hint="name another file with -o")
    try:
        with open(output, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise UsageError(f"cannot write '{output}': {exc.strerror}") from None


@click.command("graph", context_settings=CONTEXT_SETTINGS)
@verbosity_options
@set_option
@click.argument("targets", nargs=-1)
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Where to write the picture (default: weave-graph.FORMAT in the project; '-' for stdout).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Picture format (default: from -o's extension, else svg; dot for '-o -').")
@click.option("--rules", is_flag=True, default=False, help="Draw the rule graph: one node per rule.")
@click.option("--collapse/--no-collapse", default=None,
              help="Draw each pattern rule's jobs as one node (default: when over 200 jobs).")
@click.pass_obj
def graph(settings: Settings, targets: Sequence[str], output: Optional[str], fmt: Optional[str],
          rules: bool, collapse: Optional[bool]) -> None:
    """Draw the jobs TARGETS need (default targets if none), coloured by state, with a legend."""
    from .. import visualize

    fmt = _choose_format(fmt, output)
    project = settings.project()
    try:
        job_graph, verdicts = project.plan(targets, reporter=settings.reporter())
    except MissingSource:
        # Draw it anyway (as `dvc dag` does), with the missing files marked: the picture is
        # most wanted while a pipeline is being written, before its data is all there.
        job_graph, verdicts = project.plan(targets, reporter=settings.reporter(), missing_ok=True)
        shown = ", ".join(job_graph.missing[:3]) + (f" and {len(job_graph.missing) - 3} more" if len(job_graph.missing) > 3 else "")
        click.echo(f"weave: warning: missing source(s) {shown}: drawn as missing", err=True)
    states = visualize.job_states(job_graph, verdicts, _last_status(project))
    if rules:
        picture = visualize.rule_picture(job_graph, states)
    else:
        picture = visualize.job_picture(job_graph, verdicts, states, collapse=collapse)
    dot = paths.readable(visualize.to_dot(picture))  # dot wants UTF-8
    if output is None:
        output = os.path.join(project.root, f"weave-graph.{fmt}")
    if fmt == "dot":
        _write(dot.encode(), output, project)
    elif len(picture.nodes) > visualize.LAYOUT_LIMIT:
        # dot's layout grows much faster than the graph: 20k nodes did not finish in minutes.
        fallback = "-" if output == "-" else os.path.splitext(output)[0] + ".dot"
        if fallback != "-":  # never DOT where a pipe expects a picture
            _write(dot.encode(), fallback, project)
        raise UsageError(
            f"{len(picture.nodes)} nodes are more than Graphviz lays out in reasonable time"
            f" (at most {visualize.LAYOUT_LIMIT} for {fmt})",
            hint=(
                "name fewer targets"
                # One node per rule helps only where rules have many jobs each.
                + ("" if rules or len(project.manifest.rules) > visualize.LAYOUT_LIMIT else ", or draw one node per rule (--rules)")
            )
            + ("" if fallback == "-" else f"; the DOT source was written to {os.path.relpath(fallback)}"),
        )
    else:
        try:
            _write(visualize.render(dot, fmt), output, project)
        except visualize.DotNotFound as missing:
            # The DOT source is still useful (render it elsewhere, or later); keep it unless the
            # picture was meant for stdout, where DOT would surprise a pipe expecting an image.
            if output != "-":
                fallback = os.path.splitext(output)[0] + ".dot"
                _write(dot.encode(), fallback, project)
                missing.hint = f"{missing.hint}; the DOT source was written to {os.path.relpath(fallback)}"
            raise
    if output != "-" and settings.verbosity >= 1:
        shown = f"{len(picture.nodes)} nodes" + (" (pattern rules collapsed)" if picture.collapsed else "")
        click.echo(f"wrote {paths.shown(output)}: {picture.jobs} job{'s' if picture.jobs != 1 else ''}, {shown}")

"""`weave report [RUN] -o report.html`: a self-contained HTML page about one run.

Only translates arguments, gathers data with `weavebuild.history` and writes what
`weavebuild.report` renders.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Optional

import click

from .. import paths
from ..cli import CONTEXT_SETTINGS, Settings, verbosity_options
from ..errors import UsageError


@click.command(context_settings=CONTEXT_SETTINGS)
@verbosity_options
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="FILE",
    help="Where to write the page (default: report.html in the project directory; '-' for stdout).",
)
@click.pass_obj
def report(settings: Settings, run_id: Optional[str], output: Optional[str]) -> None:
    """Write an HTML report of a run.

    A self-contained page about RUN (a run id from `weave history`, or `latest`; default: the
    latest run that ran a job): a timeline of its jobs, its failures with log tails, and
    per-rule statistics.
    """
    from ..history import failures, find_run, load_runs, rule_stats
    from ..report import render_report

    wanted = _parse_run_id(run_id)
    root, store = settings.history_store()
    try:
        # Statistics span every recorded run. XXX: this reads all attempts, one query per run;
        # fine for thousands of runs, and the store has no aggregate query to do better yet.
        runs = load_runs(store, limit=None)
    finally:
        store.close()
    if not runs:
        raise UsageError(
            "no runs recorded yet", hint="run `weave build` first; every build is recorded"
        )
    run = find_run(runs, wanted)
    if run_id is None and run is not None and not run.attempts:
        # The latest run ran nothing (a no-op, a `weave` while everything was up to date): the
        # page of the last one that ran jobs says more; `weave report latest` asks for it.
        ran = next((earlier for earlier in runs if earlier.attempts), None)
        if ran is not None:
            sys.stderr.write(
                f"weave: run {run.id}, the latest, ran no job: reporting run {ran.id}, the last that did"
                " (weave report latest for the other)\n"
            )
            run = ran
    if run is None:
        raise UsageError(
            f"no run {wanted} in the history (runs {runs[-1].id} to {runs[0].id} are recorded)",
            hint="`weave history` lists the runs",
        )
    page = render_report(
        run,
        rule_stats(runs),
        failures(run, runs, root),
        len(runs),
        os.path.abspath(root),
        time.time(),
    )
    page = paths.readable(page)  # the page is UTF-8
    if output == "-":
        sys.stdout.write(page)
        return
    if output is None:
        # Like `weave graph`: the default lands next to the Weavefile, wherever weave was started.
        output = os.path.join(root, "report.html")
    problem = paths.overwrite_problem(output, root, settings.weavefiles)
    if problem is not None:
        raise UsageError(f"'{output}' {problem}: weave never writes over it", hint="name another file with -o")
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(page)
    except OSError as exc:
        raise UsageError(f"cannot write report '{output}': {exc.strerror or exc}") from None
    count = len(run.attempts)
    summary = f"run {run.id}, {run.outcome}, {count} attempt{'' if count == 1 else 's'}"
    click.echo(f"wrote {paths.shown(output)} ({summary})")


def _parse_run_id(text: Optional[str]) -> Optional[int]:
    if text is None or text == "latest":
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(
            f"RUN must be a run id (a number) or 'latest', not '{text}'",
            hint="`weave history` lists the runs",
        ) from None

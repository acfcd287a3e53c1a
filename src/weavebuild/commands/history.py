"""`weave history`: the recent runs of this project, from the run records in the state store.

Only translates flags and prints; reading and deriving the records is `weavebuild.history`'s job.
"""

from __future__ import annotations

import json
from typing import List

import click

from ..cli import CONTEXT_SETTINGS, Count, Settings, verbosity_options


@click.command(context_settings=CONTEXT_SETTINGS)
@verbosity_options
@click.option(
    "-n",
    "limit",
    type=Count(min=1),
    default=20,
    show_default=True,
    metavar="N",
    help="Show the N most recent runs.",
)
@click.option("--json", "as_json", is_flag=True, default=False, help="Machine-readable output.")
@click.pass_obj
def history(settings: Settings, limit: int, as_json: bool) -> None:
    """List recent runs and their outcomes.

    Each run shows its id, start, duration, outcome, job counts (ran, failed, up to date),
    command line and targets.
    """
    from ..history import load_runs

    _, store = settings.history_store()
    try:
        runs = load_runs(store, limit=min(limit, 1 << 62))  # SQLite integers are 64-bit
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"runs": [run.to_json() for run in runs]}, indent=2))
        return
    if not runs:
        click.echo("no runs recorded yet: `weave build` records each run here")
        return
    click.echo("\n".join(_table(runs)))


def _table(runs: List) -> List[str]:
    from ..history import format_duration, format_time

    header = [
        "ID",
        "STARTED",
        "DURATION",
        "OUTCOME",
        "RAN",
        "FAILED",
        "UP TO DATE",
        "COMMAND",
        "TARGETS",
    ]
    rows = []
    for run in runs:
        rows.append(
            [
                str(run.id),
                format_time(run.started),
                format_duration(run.duration) if run.finished else "-",
                run.outcome,
                _count(run.ran),
                _count(run.failed),
                _count(run.up_to_date),
                run.command,
                " ".join(run.targets) or "(default)",
            ]
        )
    # Numbers are right-aligned; the last column is free text and not padded.
    right = {0, 2, 4, 5, 6}
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header) - 1)]
    lines = []
    for row in [header] + rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row[:-1])
        ]
        lines.append("  ".join(cells + row[-1:]).rstrip())
    return lines


def _count(value: object) -> str:
    return "?" if value is None else str(value)

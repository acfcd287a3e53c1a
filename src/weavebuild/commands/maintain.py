"""`weave clean` and `weave touch`: forget or adopt outputs without running jobs."""

from __future__ import annotations

import sys
from typing import List, Sequence, Tuple

import click

from ..cli import CONTEXT_SETTINGS, LineBatches, Settings, set_option, verbosity_options


@click.command(context_settings=CONTEXT_SETTINGS)
@verbosity_options
@set_option
@click.argument("targets", nargs=-1)
@click.option("-n", "--dry-run", is_flag=True, default=False, help="Only print what would be removed.")
@click.option(
    "--only", is_flag=True, default=False, help="Remove the outputs of the TARGETS' own jobs, not what was built for them."
)
@click.pass_obj
def clean(settings: Settings, targets: Sequence[str], dry_run: bool, only: bool) -> None:
    """Remove outputs weave produced (TARGETS and what was built for them, or with --only the
    TARGETS' own; all if none; with --set and no TARGETS, the default targets' as those values
    name them)."""
    if only and not targets:
        from ..errors import UsageError

        raise UsageError("--only needs TARGETS", hint="e.g. weave clean --only reports/metrics.json")
    kept: List[Tuple[str, str]] = []
    removed = settings.project().clean(targets, dry_run=dry_run, kept=kept, only=only)
    verb = "would remove" if dry_run else "removed"
    if settings.verbosity >= 1:
        echo = LineBatches()
        for path in removed:
            echo(f"{verb} {path}")
        echo.flush()
    for path, why in kept:
        click.echo(f"weave: warning: kept {path}: {why}", err=True)
    if settings.verbosity >= 1:
        click.echo(f"weave: {verb} {len(removed)} output(s)")


@click.command(context_settings=CONTEXT_SETTINGS)
@verbosity_options
@set_option
@click.argument("targets", nargs=-1)
@click.pass_obj
def touch(settings: Settings, targets: Sequence[str]) -> None:
    """Record the current outputs of TARGETS (their own jobs; with no TARGETS, every job the
    default targets need) as up to date, without running anything; exit code 1 if some could
    not be recorded (an output missing) or a job upstream of TARGETS is out of date."""
    recorded, skipped = settings.project().touch(targets)
    if settings.verbosity >= 1:
        echo = LineBatches()
        for job in recorded:
            echo(f"recorded {job.display}")
        echo.flush()
    for job, why in skipped:
        click.echo(f"weave: warning: not recorded {job.display}: {why}", err=True)
    if settings.verbosity >= 1:
        click.echo(f"weave: recorded {len(recorded)} job(s) as up to date")
    if skipped:
        sys.exit(1)  # scripts can tell: not everything is recorded

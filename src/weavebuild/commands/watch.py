"""`weave watch`: build, then rebuild whenever a source or the Weavefile changes.

Translates flags into a `watch.Watcher`; the loop itself lives in `weavebuild.watch`.
"""

from __future__ import annotations

import gc
import sys
from typing import Any, Optional, Sequence

import click

from ..cli import (
    CONTEXT_SETTINGS,
    Settings,
    finite_seconds,
    merge_group_build_options,
    set_option,
    verbosity_options,
    watch_build_options,
)


@click.command(context_settings=CONTEXT_SETTINGS)
@set_option
@click.argument("targets", nargs=-1)
@watch_build_options
@click.option("--restart", is_flag=True, default=False, help="Cancel the running jobs whose inputs or rule changed, and build again.")
@click.option("--clear", is_flag=True, default=False, help="Clear the screen before each build.")
@click.option("--on-success", metavar="CMD", default=None, help="Run CMD (bash, in the project directory) after each successful build.")
@click.option("--on-failure", metavar="CMD", default=None, help="Run CMD after each failed build or invalid Weavefile.")
@click.option("--poll", is_flag=True, default=False, help="Poll the file system instead of OS notifications (network file systems).")
@click.option("--poll-interval", type=click.FloatRange(min=0.05, max=86400.0), callback=finite_seconds, default=1.0, show_default=True, metavar="SECONDS", help="How often --poll looks.")
@click.option("--debounce", type=click.FloatRange(min=0.0, max=86400.0), callback=finite_seconds, default=0.2, show_default=True, metavar="SECONDS", help="Quiet time after the last change before building.")
@verbosity_options
@merge_group_build_options
@click.pass_obj
def watch(
    settings: Settings,
    targets: Sequence[str],
    restart: bool,
    clear: bool,
    on_success: Optional[str],
    on_failure: Optional[str],
    poll: bool,
    poll_interval: float,
    debounce: float,
    **options: Any,
) -> None:
    """Build TARGETS, then rebuild what is stale whenever a source, a watched directory or the
    Weavefile changes. Ctrl-C stops (exit 130)."""
    from ..errors import UsageError
    from ..resources import parse_resource_args
    from ..watch import WatchOptions
    from ..watch import watch as run_watch

    if options.pop("dry_run"):
        raise UsageError("weave watch has no --dry-run", hint="use 'weave plan' to see what would run")
    options["resources"] = parse_resource_args(options.pop("resources") or ())
    options["argv"] = sys.argv
    watch_options = WatchOptions(
        debounce=debounce,
        restart=restart,
        clear=clear,
        on_success=on_success,
        on_failure=on_failure,
        poll=poll,
        poll_interval=poll_interval,
        verbosity=settings.verbosity,
    )
    # The console script runs with the cycle collector off (entry.py); a watch session lasts
    # for hours and drops a graph (full of cycles) on every Weavefile edit, so it is back on.
    # Each build still pauses it while it runs (api.cycle_collector_paused).
    gc.enable()
    settings.tell_shadowed_weavefile()
    code = run_watch(
        settings.directory,
        settings.weavefile,
        targets,
        options,
        watch_options,
        settings.reporter(),
        overrides=settings.overrides,
    )
    sys.exit(code)

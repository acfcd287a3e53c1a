"""`weave build` and `weave plan`: bring targets up to date, or show what that would run."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import click

from ..cli import (
    CONTEXT_SETTINGS,
    Count,
    Settings,
    build_options,
    merge_group_build_options,
    set_option,
    verbosity_options,
)
from ..invocation import run_build, slots_check
from ..reporter import pad, text_width

# `weave plan` names the up-to-date jobs when there are few; past this, a count (with -v, all).
UP_TO_DATE_LISTED = 20


def print_plan(
    settings: Settings,
    project: Any,
    targets: Sequence[str],
    force: bool,
    as_json: bool,
    show_up_to_date: bool,
    check: Optional[Callable[[Any], object]] = None,
    force_rules: Sequence[str] = (),
) -> None:
    """Print what a build would run. `check(graph, stale keys)`, if given, may refuse the
    plan as the build would (`build -n` checks the resource totals)."""
    if check is None and not force and not force_rules and not as_json:
        # Proven up to date by the last build's stamp: the count is all there is to say (unless
        # the few up-to-date jobs are to be listed by name).
        proven = project.proven_up_to_date(targets)
        if proven is not None and (
            not show_up_to_date or settings.verbosity == 0 or (proven > UP_TO_DATE_LISTED and settings.verbosity < 2)
        ):
            click.echo(f"nothing to do ({proven} job{'s' if proven != 1 else ''} up to date)")
            return
    graph, verdicts = project.plan(targets, force=force, reporter=settings.reporter(), force_rules=force_rules)
    by_key = {job.key: job for job in graph.jobs}
    ordered = [by_key[key] for key in verdicts]  # as a build would run them
    stale = [job for job in ordered if not verdicts[job.key].up_to_date]
    if check is not None and stale:
        # As the build: totals too small for a job matter only if that job would run (one
        # that runs nothing needs no slots: `weave build --resources gpu=0` of an up-to-date
        # project says "nothing to do").
        check(graph, {job.key for job in stale})
    fresh = [job for job in ordered if verdicts[job.key].up_to_date]
    # Directories whose contents decide jobs (checkpoints) and that this build would make:
    # what reads them is planned from what they hold now, and looked at again once they are made.
    made_first = {output for job in stale for output in job.outputs}
    first = [directory + "/" for directory in graph.first if directory in made_first]
    if as_json:
        import json  # only here: `weave build` should not pay for it

        data = {
            "targets": graph.requested,
            "run": [
                {
                    "job": job.key,
                    "rule": job.rule.name,
                    # As the Weavefile writes them: a directory output with its slash.
                    "outputs": [o + "/" if d else o for o, d in zip(job.outputs, job.dir_outputs)],
                    "command": job.cmd,
                    "reasons": [r.to_json() for r in verdicts[job.key].reasons],
                    "deps": [dep.key for dep in job.deps],
                }
                for job in stale
            ],
            "up_to_date": [job.key for job in fresh],
            "decided_after": first,
        }
        click.echo(json.dumps(data, indent=2))
        return
    if not stale:
        click.echo(f"nothing to do ({len(fresh)} job{'s' if len(fresh) != 1 else ''} up to date)")
    else:
        click.echo(f"would run {len(stale)} of {len(graph.jobs)} jobs:")
        width = min(48, max(text_width(job.display) for job in stale))
        counter_width = len(f"[{len(stale)}/{len(stale)}]")  # [9/10] and [10/10]: one column
        for index, job in enumerate(stale, 1):
            reasons = "; ".join(str(r) for r in verdicts[job.key].reasons)
            counter = f"[{index}/{len(stale)}]".ljust(counter_width)
            click.echo(f"  {counter} {pad(job.display, width)}  ({reasons})")
            if settings.verbosity >= 2:
                click.echo("      $ " + job.cmd.replace("\n", "\n        "))
        if first:
            click.echo(
                f"then: the jobs that read {', '.join(first)} (foreach patterns, globs) are planned"
                " from what it holds now, and decided again once it is made"
            )
    if not show_up_to_date or not fresh or settings.verbosity == 0:
        return
    if len(fresh) <= UP_TO_DATE_LISTED or settings.verbosity >= 2:
        click.echo(f"up to date ({len(fresh)}):")
        for job in fresh:
            click.echo(f"  {job.display}")
    elif stale:
        click.echo(f"{len(fresh)} more jobs up to date (`weave plan -v` lists them)")


@click.command(context_settings=CONTEXT_SETTINGS)
@set_option
@click.argument("targets", nargs=-1)
@build_options
@verbosity_options
@merge_group_build_options
@click.pass_obj
def build(settings: Settings, targets: Sequence[str], **options: Any) -> None:
    """Bring TARGETS (output paths or rule names; default targets if none) up to date."""
    run_build(settings, targets, **options)


@click.command(context_settings=CONTEXT_SETTINGS)
@set_option
@click.argument("targets", nargs=-1)
@click.option("-B", "--force", is_flag=True, default=False, help="Plan as if the targets were forced.")
@click.option("-R", "--force-rule", "force_rules", multiple=True, metavar="RULE", help="Plan as if every job of RULE were forced (repeatable).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Machine-readable output.")
@click.option("-j", "--jobs", type=Count(min=1), default=None, help="Job slots, as given to build (checked; the plan is the same).")
@click.option("--resources", "resources", multiple=True, metavar="NAME=N[,...]", help="Resource totals, as given to build: a job needing more is an error.")
@verbosity_options
@click.pass_obj
def plan(
    settings: Settings,
    targets: Sequence[str],
    force: bool,
    force_rules: Sequence[str],
    as_json: bool,
    jobs: Optional[int],
    resources: Sequence[str],
) -> None:
    """Show the jobs that would run, in order, with their reasons (as `build -n`).

    Then the jobs already up to date: by name when there are at most 20 (or with -v), else
    their count; -q leaves them out. `build -n` lists only the jobs that would run. Given
    --jobs or --resources (a build's command line reused), both check them as the build
    would: a job needing more than the totals is an error."""
    project = settings.project()
    check = None
    if jobs is not None or resources:
        from ..resources import parse_resource_args

        check = slots_check(project, jobs, parse_resource_args(resources))
    print_plan(
        settings, project, targets, force=force, as_json=as_json, show_up_to_date=True, force_rules=force_rules, check=check
    )



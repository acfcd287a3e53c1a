"""`weave status` and `weave why`: the state of jobs, and why a target is (not) stale."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple

import click

from ..cli import CONTEXT_SETTINGS, Settings, set_option, verbosity_options
from ..paths import normalize
from ..reporter import pad, text_width
from ..scan import TEMP_NEEDED, UPSTREAM

if TYPE_CHECKING:
    from ..graph import Job
    from ..scan import Reason, Verdict


def _own(reasons: Sequence[Reason]) -> List[Reason]:
    """A job's reasons of its own: not the jobs upstream that will rerun."""
    return [r for r in reasons if r.kind != UPSTREAM]


def _reasons(reasons: Sequence[object], failure: Optional[str]) -> str:
    """A job's reasons to run, and how its last attempt ended if it did not succeed."""
    return "; ".join(str(r) for r in reasons) + (f" (last attempt {failure})" if failure else "")


@click.command(context_settings=CONTEXT_SETTINGS)
@verbosity_options
@set_option
@click.argument("targets", nargs=-1)
@click.option("--all", "show_all", is_flag=True, default=False, help="List up-to-date jobs too.")
@click.pass_obj
def status(settings: Settings, targets: Sequence[str], show_all: bool) -> None:
    """Table of the jobs TARGETS need and their state; exit code 1 if anything is stale
    (a job a running build is making counts)."""
    project = settings.project()
    proven = None if show_all else project.proven_up_to_date(targets)
    if proven is not None:  # by the last build's stamp: no table to show, only the count
        click.echo(f"{proven} of {proven} jobs up to date")
        sys.exit(0)
    graph, verdicts = project.plan(targets, reporter=settings.reporter())
    stale = [job for job in graph.jobs if not verdicts[job.key].up_to_date]
    rows = [job for job in graph.jobs if show_all or not verdicts[job.key].up_to_date]
    failures = project.last_failures() if stale else {}
    running = project.running_jobs() if stale else {}  # a build in another terminal
    if rows:
        width = min(50, max(text_width(job.display) for job in rows))
        for job in rows:
            verdict = verdicts[job.key]
            if verdict.up_to_date:
                state, reason = "up to date", ""
            elif job.key in running:
                state, reason = "RUNNING", f"  being built now (weave pid {running[job.key]})"
            else:
                state, reason = "STALE", "  " + _reasons(verdict.reasons, failures.get(job.key))
            click.echo(f"{state:<10}  {pad(job.display, width) if reason else job.display}{reason}")
    if len(stale) > STATUS_BY_RULE_AFTER:
        # A long table: which rules the stale jobs belong to, most first.
        by_rule: Dict[str, int] = {}
        for job in stale:
            by_rule[job.rule.name] = by_rule.get(job.rule.name, 0) + 1
        counts = sorted(by_rule.items(), key=lambda item: (-item[1], item[0]))
        shown = ", ".join(f"{name} {count:,}" for name, count in counts[:STATUS_BY_RULE_NAMED])
        if len(counts) > STATUS_BY_RULE_NAMED:  # a summary, even with thousands of rules
            rest = counts[STATUS_BY_RULE_NAMED:]
            shown += f" and {sum(count for _, count in rest):,} in {len(rest):,} other rules"
        click.echo("stale by rule: " + shown)
    now = sum(1 for job in stale if job.key in running)
    click.echo(
        f"{len(graph.jobs) - len(stale)} of {len(graph.jobs)} jobs up to date"
        + (f", {len(stale) - now} stale" if len(stale) > now else "")
        + (f", {now} running" if now else "")
    )
    sys.exit(1 if stale else 0)


# `weave status` adds a count of the stale jobs by rule when there are more than this many.
STATUS_BY_RULE_AFTER = 20
STATUS_BY_RULE_NAMED = 10  # rules named in that line, most stale jobs first

# `weave why` explains at most this many jobs in its tree, and then names at most WHY_CAUSES
# of the rest that must run for a change of their own (in a long chain, the change that
# started it all is at the far end).
WHY_LINES = 40
WHY_CAUSES = 10


@click.command(context_settings=CONTEXT_SETTINGS)
@verbosity_options
@set_option
@click.argument("target")
@click.pass_obj
def why(settings: Settings, target: str) -> None:
    """Explain why TARGET is (or is not) stale, following the chain to the changed sources;
    exit code 0 either way (`weave status` tells by its exit code), 1 for a path inside a
    directory output that its job, up to date, did not make."""
    project = settings.project()
    if project.proven_made_up_to_date(target):  # from the no-op stamp: no graph to load
        click.echo(f"{target} is up to date: the recorded signature and output digests match")
        return
    jobs, verdicts, chain = project.why(target, reporter=settings.reporter())
    if not jobs:
        rule = project.manifest.rules.get(target)
        if rule is not None:  # an alias naming nothing, or a rule whose foreach gives no values
            click.echo(f"{target} is a rule with no jobs: nothing to build")
            return
        kind = "directory" if os.path.isdir(os.path.join(project.root, target)) else "file"
        click.echo(f"{target} is a source {kind}: nothing builds it")
        return
    if all(verdicts[job.key].up_to_date for job in jobs):
        path = os.path.join(project.root, target)
        if not os.path.lexists(path) and target not in project.manifest.rules:
            # A path inside a directory output its (up to date) job did not make.
            maker = jobs[0]
            click.echo(f"{target} does not exist: {maker.display} is up to date and did not make it")
            sys.exit(1)
        click.echo(f"{target} is up to date: the recorded signature and output digests match")
        return
    reasons = verdicts[jobs[0].key].reasons
    if (
        len(jobs) == 1
        and [r.kind for r in reasons] == [TEMP_NEEDED]
        and reasons[0].detail == f"{normalize(target)} (a target)"
    ):
        click.echo(
            f"{target} is a temporary output, deleted once the jobs that read it were done; "
            f"building it runs {jobs[0].display} again (its record is otherwise up to date), "
            "as does a build in which a job that reads it must run"
        )
        return
    failures = project.last_failures()
    for index, (depth, job) in enumerate(chain):
        if index == WHY_LINES and len(chain) > WHY_LINES + 1:
            _why_rest(target, chain[index:], verdicts, failures)
            break
        indent = "  " * depth
        reasons = verdicts[job.key].reasons
        own = _own(reasons)
        lead = f"{target} is stale: " if depth == 0 else ""
        if own:
            click.echo(f"{indent}{lead}{job.display} must run: " + _reasons(own, failures.get(job.key)))
        elif index + 1 < len(chain) and chain[index + 1][0] > depth:
            click.echo(f"{indent}{lead}{job.display} will rerun because a dependency will:")
        else:  # its stale dependencies were explained above, under another target
            upstream = "; ".join(r.detail for r in reasons if r.kind == UPSTREAM)
            click.echo(f"{indent}{lead}{job.display} will rerun because a dependency will ({upstream}: above)")


def _why_rest(target: str, rest: Sequence[Tuple[int, Job]], verdicts: Mapping[str, Verdict], failures: Mapping[str, str]) -> None:
    """The end of a long `why`: how many jobs were left out, and those of them that must run
    for a change of their own (the causes), with how deep they are."""
    causes = []
    for depth, job in rest:
        own = _own(verdicts[job.key].reasons)
        if own:
            causes.append((depth, job, own))
    line = f"... and {len(rest):,} more stale jobs (weave plan {target} lists them all)"
    if not causes:
        click.echo(line)
        return
    click.echo(line + ", of which these must run for changes of their own:")
    for depth, job, own in causes[:WHY_CAUSES]:
        click.echo(f"  {job.display} (depth {depth}) must run: " + _reasons(own, failures.get(job.key)))
    if len(causes) > WHY_CAUSES:
        click.echo(f"  ... and {len(causes) - WHY_CAUSES:,} more")

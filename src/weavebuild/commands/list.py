"""`weave list`: the vars, the rules (inputs, outputs, wildcards) and the default targets."""

from __future__ import annotations

import json
import os

import click

from ..cli import CONTEXT_SETTINGS, LineBatches, Settings, set_option, verbosity_options
from ..manifest import wildcard_names_in


@click.command("list", context_settings=CONTEXT_SETTINGS)
@verbosity_options
@set_option
@click.pass_obj
def list_rules(settings: Settings) -> None:
    """List the rules with their inputs, outputs and wildcards, the default targets and the vars."""
    project = settings.project()
    manifest = project.manifest
    click.echo(f"Weavefile: {os.path.relpath(manifest.path)}")
    if manifest.included:
        click.echo("includes: " + " ".join(os.path.relpath(os.path.join(manifest.root, name)) for name, _ in manifest.included))
    click.echo("default targets: " + " ".join(manifest.default_targets()))
    if manifest.vars:
        # What `--set NAME=VALUE` can change, with the values this run would use.
        from ..manifest import format_value

        click.echo("vars:")
        width = max(len(name) for name in manifest.vars)
        for name, value in manifest.vars.items():
            if isinstance(value, dict):  # as --set takes it: a TOML inline table
                shown = "{ " + ", ".join(f"{json.dumps(key)} = {json.dumps(item)}" for key, item in value.items()) + " }"
            else:
                shown = json.dumps(value) if isinstance(value, list) else format_value(value)  # as --set takes it
            note = "  (--set)" if name in project.overrides else ""
            click.echo(f"  {name:<{width}} = {shown}{note}")
    echo = LineBatches()
    for rule in manifest.rules.values():
        # A pattern rule has a job per wildcard value; a foreach used only in the inputs is
        # one fan-in job.
        is_pattern = any(wildcard_names_in(output) for output in rule.outputs)
        kind = "alias" if rule.is_alias else ("pattern rule" if is_pattern else "rule")
        if rule.path and rule.path != manifest.path:
            kind += f", in {os.path.relpath(rule.path)}"
        echo(f"\n{rule.name} ({kind})" + (f": {rule.description}" if rule.description else ""))
        if rule.inputs:
            echo("  inputs:    " + " ".join(rule.inputs))
        if rule.outputs:
            echo("  outputs:   " + " ".join(rule.outputs))
        if rule.temp:
            echo("  temp:      " + " ".join(rule.outputs[index] for index in rule.temp))
        if rule.depfile:
            echo("  depfile:   " + rule.depfile)
        if rule.log:
            echo("  log:       " + rule.log)
        if rule.order_only:
            echo("  order_only: " + " ".join(rule.order_only))
        if rule.wildcard_names:
            echo("  wildcards: " + " ".join(rule.wildcard_names))
        if rule.foreach:
            echo(
                "  foreach:   " + ", ".join(f"{k} = {json.dumps(v) if isinstance(v, list) else v}" for k, v in rule.foreach.items())
            )
        if rule.resources:
            echo("  resources: " + ", ".join(f"{k}={v}" for k, v in rule.resources.items()))
    echo.flush()

"""`weave init`: write a commented starter Weavefile into the project directory."""

from __future__ import annotations

import os

import click

from ..cli import CONTEXT_SETTINGS, Settings, verbosity_options
from ..errors import UsageError

STARTER = '''\
# Weavefile: the rules of this project (reference: docs/weavefile.md in the weave-build docs).
# `weave` builds the default targets; `weave plan` shows what would run and why.

default = ["reports/metrics.json"]   # what `weave` builds when no target is named

[vars]                               # {vars.epochs} in commands; weave build --set epochs=1
epochs = 10

[resources]                          # totals on this machine (--resources overrides)
# gpu = 1

[rules.preprocess]
inputs  = ["data/raw.csv", "scripts/preprocess.py"]
outputs = ["data/train.csv", "data/val.csv"]
cmd     = "python scripts/preprocess.py {inputs[0]} {outputs}"

[rules.train]
inputs    = { data = "data/train.csv", script = "scripts/train.py" }   # named: {inputs.data}
outputs   = ["models/model/"]           # trailing slash: a directory output
cmd       = "python {inputs.script} --data {inputs.data} --epochs {vars.epochs} --out {outputs[0]}"
# resources = { gpu = 1 }              # the job gets CUDA_VISIBLE_DEVICES set to its GPU

[rules.evaluate]
inputs  = { model = "models/model/", data = "data/val.csv", script = "scripts/evaluate.py" }
outputs = ["reports/metrics.json"]
cmd     = "python {inputs.script} {inputs.model} {inputs.data} > {outputs}"
'''


@click.command(context_settings=CONTEXT_SETTINGS)
@verbosity_options
@click.option("--force", is_flag=True, default=False, help="Overwrite an existing Weavefile.")
@click.pass_obj
def init(settings: Settings, force: bool) -> None:
    """Write a commented starter Weavefile to edit."""
    path = os.path.join(settings.directory, settings.weavefile or "Weavefile")
    if os.path.exists(path) and not force:
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")
    with open(path, "w") as handle:
        handle.write(STARTER)
    click.echo(f"wrote {path}: edit the rules, then run 'weave plan' and 'weave build'")

"""The `weave` command: translates flags into calls of the Python API (`api.Project`).

Owns option parsing; exit codes (0 ok, 1 a job failed, 2 usage/Weavefile error, 130/143
interrupted) and the `weave: error: ...` rendering of errors come from invocation.py, shared
with the fast path that runs plain `weave build` lines without click. No build logic lives here.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import shlex
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import click

from ._version import __version__
from .errors import clip_long_words
from .invocation import BUILD_DEFAULTS, Settings, run_build, run_guarded

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _parse_timeout(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[float]:
    """--timeout's duration; 0 means no limit, as a rule's `timeout = 0` does."""
    if value is None:
        return None
    from .manifest import parse_duration

    try:
        return parse_duration(value) or None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def finite_seconds(ctx: click.Context, param: click.Parameter, value: Optional[float]) -> Optional[float]:
    """A FloatRange option's value, refusing nan and infinity (which its bounds let through)."""
    if value is not None and (value != value or value in (float("inf"), float("-inf"))):
        raise click.BadParameter("must be a finite number of seconds")
    return value


def _set_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value and isinstance(ctx.obj, Settings):
        ctx.obj.verbosity = max(ctx.obj.verbosity, 1) + value


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and isinstance(ctx.obj, Settings):
        ctx.obj.verbosity = 0


class LineBatches:
    """Lines for stdout, written a few thousand at a time: one click.echo per line cost a
    second for the 100k lines of `weave list` or `weave clean` in a big project."""

    BATCH = 4096

    def __init__(self) -> None:
        self.lines: List[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            click.echo("\n".join(self.lines))
            self.lines.clear()


def verbosity_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`-v`/`-q` after the command name too (`weave build -q`), as well as before it."""
    func = click.option(
        "-q", "--quiet", is_flag=True, expose_value=False, callback=_set_quiet, help="Print errors only."
    )(func)
    return click.option(
        "-v", "--verbose", count=True, expose_value=False, callback=_set_verbose, help="Print commands and reasons."
    )(func)


_VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_sets(values: Sequence[str]) -> Dict[str, str]:
    """`--set NAME=VALUE` values → {NAME: VALUE}; the last one given for a name wins."""
    overrides: Dict[str, str] = {}
    for item in values:
        name, sep, text = item.partition("=")
        if not sep or not _VAR_NAME_RE.match(name):
            raise click.BadParameter(f"'{item}' is not NAME=VALUE (e.g. --set epochs=5)", param_hint="--set")
        overrides[name] = text
    return overrides


def _add_sets(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> None:
    if values and isinstance(ctx.obj, Settings):
        ctx.obj.overrides.update(parse_sets(values))


SET_HELP = "Replace the value of a [vars] entry for this run, e.g. --set epochs=5 (repeatable)."


def set_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--set` after the command name too (`weave build --set epochs=5`), as well as before it."""
    return click.option(
        "--set", "sets", multiple=True, metavar="NAME=VALUE", expose_value=False, callback=_add_sets, help=SET_HELP
    )(func)


class Count(click.IntRange):
    """A whole number of at least `min`, with messages in plain words ("'abc' is not a whole
    number", "0 is too small: at least 1") instead of click's "not a valid integer range"."""

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                value = int(str(value).strip())
            except ValueError:
                self.fail(f"'{value}' is not a whole number", param, ctx)
        if self.min is not None and value < self.min:
            self.fail(f"{value} is too small: at least {self.min}", param, ctx)
        return value


def build_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `weave build`, `weave watch` and `weave` without a command."""
    return _with_build_options(func, dry_run_listed=True)


def watch_build_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The build options of `weave watch`: -n is refused there (`weave -n watch` included),
    so it is not listed in its help."""
    return _with_build_options(func, dry_run_listed=False)


def _with_build_options(func: Callable[..., Any], dry_run_listed: bool) -> Callable[..., Any]:
    options = [
        click.option("-j", "--jobs", type=Count(min=1), default=BUILD_DEFAULTS["jobs"], help="Job slots (default: number of CPUs)."),
        click.option("--resources", "resources", multiple=True, metavar="NAME=N[,...]", help="Resource totals, e.g. gpu=2,mem_mb=16000 (repeatable)."),
        click.option("-k", "--keep-going", is_flag=True, default=BUILD_DEFAULTS["keep_going"], help="Keep building independent jobs after a failure."),
        click.option("-n", "--dry-run", is_flag=True, default=BUILD_DEFAULTS["dry_run"], hidden=not dry_run_listed, help="Print the jobs that would run, with reasons; run nothing."),
        click.option("-B", "--force", is_flag=True, default=BUILD_DEFAULTS["force"], help="Rerun the named targets even if up to date."),
        click.option("-R", "--force-rule", "force_rules", multiple=True, metavar="RULE", default=BUILD_DEFAULTS["force_rules"], help="Rerun every job of RULE the targets need, even if up to date (repeatable)."),
        click.option("--keep-failed", is_flag=True, default=BUILD_DEFAULTS["keep_failed"], help="Keep the outputs of failed jobs (never recorded as good)."),
        click.option("--keep-temp", is_flag=True, default=BUILD_DEFAULTS["keep_temp"], help="Keep temporary outputs (a rule's `temp`) instead of deleting them after use."),
        click.option("--retries", type=Count(min=0), default=BUILD_DEFAULTS["retries"], help="Retries for failing jobs (default for rules without `retries`)."),
        click.option("--timeout", callback=_parse_timeout, default=BUILD_DEFAULTS["timeout"], metavar="DURATION", help="Kill jobs running longer than this (e.g. 90s, 2h; 0: no limit)."),
        click.option("--wait", "wait_for_lock", is_flag=True, default=BUILD_DEFAULTS["wait_for_lock"], help="If another weave is building here, wait for it."),
    ]
    for option in reversed(options):
        func = option(func)
    return func



# Subcommands live in weavebuild.commands.*, imported only when used: `weave --version` and
# `weave build` do not pay for graphviz, watchdog or the HTML report.
COMMANDS = {
    "build": "weavebuild.commands.build:build",
    "plan": "weavebuild.commands.build:plan",
    "list": "weavebuild.commands.list:list_rules",
    "watch": "weavebuild.commands.watch:watch",
    "history": "weavebuild.commands.history:history",
    "report": "weavebuild.commands.report:report",
    "graph": "weavebuild.commands.graph:graph",
    "status": "weavebuild.commands.inspect:status",
    "why": "weavebuild.commands.inspect:why",
    "clean": "weavebuild.commands.maintain:clean",
    "touch": "weavebuild.commands.maintain:touch",
    "init": "weavebuild.commands.init:init",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def resolve_command(self, ctx: click.Context, args: List[str]) -> Any:
        name = args[0] if args else ""
        if args and self.get_command(ctx, name) is None and not name.startswith("-"):
            from .errors import UsageError, closest

            close = closest(name, self.list_commands(ctx))
            if close:
                hint = f"did you mean 'weave {close}'?"
            else:  # `make TARGET`'s habit: most likely a target
                shown = " ".join(shlex.quote(arg) for arg in args)
                hint = f"to build it: weave build {shown}   ('weave --help' lists the commands)"
            raise UsageError(f"no command '{name}'", hint=hint)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute)


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    subcommand_metavar="[COMMAND] [ARGS]...",  # a bare `weave` builds the defaults
    context_settings=CONTEXT_SETTINGS,
    help="Weave: a make-style build tool for data and ML pipelines.\n\n"
    "Without a command, builds the default targets (`weave -j 4 --resources gpu=4`).",
)
@click.version_option(__version__, "--version", prog_name="weave", message="%(prog)s %(version)s")
@click.option("-C", "--directory", default=".", metavar="DIR", help="Run as if started in DIR.")
@click.option("-f", "--file", "weavefile", default=None, metavar="FILE", help="Read FILE instead of ./Weavefile.")
@click.option("-v", "--verbose", count=True, help="Print commands and reasons.")
@click.option("-q", "--quiet", is_flag=True, default=False, help="Print errors only.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@build_options
@click.pass_context
def cli(
    ctx: click.Context, directory: str, weavefile: Optional[str], verbose: int, quiet: bool, sets: Sequence[str], **build: Any
) -> None:
    if not os.path.isdir(directory):
        raise click.BadParameter(f"'{directory}' is not a directory", param_hint="-C")
    if directory != ".":
        # As make -C: run as if started in DIR, so paths on the command line (targets,
        # -f, -o) are relative to DIR.
        logical = _logical_path(directory)
        from . import projectfile

        projectfile.launched_in = os.getcwd()
        try:
            os.chdir(directory)
        except OSError as exc:
            raise click.BadParameter(f"cannot change into '{directory}': {exc.strerror}", param_hint="-C") from None
        # What a shell's `cd DIR` would leave in PWD, for jobs started without one: the path
        # through symlinks as written, when it names this directory.
        os.environ["PWD"] = logical if logical and _same_directory(logical, ".") else os.getcwd()
        directory = "."
    _refuse_misplaced_build_options(ctx, build)
    verbosity = 0 if quiet else 1 + verbose
    ctx.obj = Settings(directory, weavefile, verbosity, parse_sets(sets))
    ctx.obj.build_defaults = build
    if ctx.invoked_subcommand is None:
        run_build(ctx.obj, (), **build)


def _logical_path(directory: str) -> Optional[str]:
    """`directory` joined to the shell's logical working directory (PWD), as `cd` makes it."""
    if os.path.isabs(directory):
        return os.path.normpath(directory)
    here = os.environ.get("PWD")
    if not here or not os.path.isabs(here) or not _same_directory(here, "."):
        return None
    return os.path.normpath(os.path.join(here, directory))


def _same_directory(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# The commands that take the build options given before their name (`weave -j2 build`).
BUILDING_COMMANDS = ("build", "watch")


def _refuse_misplaced_build_options(ctx: click.Context, build: Dict[str, Any]) -> None:
    """A build option before another command's name would be silently dropped: `weave -n
    clean` would clean for real. An error instead, naming where the option belongs."""
    command = ctx.invoked_subcommand
    if command is None or command in BUILDING_COMMANDS:
        return
    for param in ctx.command.params:
        if param.name in build and build[param.name] != BUILD_DEFAULTS[param.name]:
            from .errors import UsageError

            flag = min(param.opts, key=len)
            own = ctx.command.get_command(ctx, command)  # type: ignore[attr-defined]
            takes_it = own is not None and any(flag in p.opts for p in own.params)
            raise UsageError(
                f"{flag} before '{command}' applies only to weave build and weave watch",
                hint=f"write it after the command: weave {command} {_as_typed(param, flag, build[param.name])}"
                if takes_it
                else f"weave {command} has no {flag} option; see weave {command} --help",
            )


def _as_typed(param: click.Parameter, flag: str, value: Any) -> str:
    """The option with its value(s), as it can be typed again (`-R a -R b`, `-j 4`)."""
    if getattr(param, "is_flag", False):
        return flag
    values = value if param.multiple else (value,)
    return " ".join(f"{flag} {shlex.quote(str(item))}" for item in values)


def merge_group_build_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Let build options given before the command (`weave -j2 build`) apply to it too."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        defaults = getattr(ctx.obj, "build_defaults", {})
        for key, value in defaults.items():
            if key in kwargs and not kwargs[key] and value:
                kwargs[key] = value
        return func(*args, **kwargs)

    return wrapper


# Options of `weave` itself that no command takes after its name.
_GLOBAL_ONLY = ("-C", "--directory", "-f", "--file")


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the `weave` command; never lets a traceback reach a user for their error."""
    args = sys.argv[1:] if argv is None else argv

    def invoke() -> Optional[int]:
        try:
            code = cli.main(args=args, prog_name="weave", standalone_mode=False)
            return code if isinstance(code, int) else 0  # a command that ended with ctx.exit(code)
        except click.exceptions.Exit as exc:
            return exc.exit_code
        except click.exceptions.Abort:
            raise KeyboardInterrupt from None
        except click.ClickException as exc:
            message = exc.format_message()
            ctx = getattr(exc, "ctx", None)
            usage = f"\n  usage: {ctx.get_usage().replace('Usage: ', '')}" if ctx is not None else ""
            if isinstance(exc, click.NoSuchOption) and exc.option_name in _GLOBAL_ONLY and ctx is not None and ctx.parent is not None:
                usage = f"\n  hint: {exc.option_name} goes before the command: weave {exc.option_name} ... {ctx.info_name} ..."
            click.echo(clip_long_words(f"weave: error: {message}{usage}"), err=True)
            return 2

    run_guarded(invoke)

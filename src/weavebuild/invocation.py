"""What a `weave` command line runs, without click: the global settings, running a build, and
turning errors into `weave: error: ...` lines and exit codes. Shared by the click CLI (cli.py)
and the fast path below.

The fast path: `weave` and `weave build [TARGETS]` with only `-j/--jobs N`, `-k/--keep-going`,
`--resources NAME=N,...`, `-q/--quiet` and `-v/--verbose` — the command lines a build loop
repeats — run without importing click and building its command tree (~15–25 ms, a tenth of a
10k-job no-op build).
`parse_fast` recognises just that subset; anything else (another command or option, a value
that needs checking, `--help`, a target that looks like an option) is left to the click CLI,
which defines the language. Both routes call `run_build` with the same values.
"""

from __future__ import annotations

import os
import sys

from .errors import Interrupted, WeaveError, clip_long_words

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Collection, Dict, List, Mapping, Optional, Sequence, Tuple

# The values `weave build` passes for options not given (cli.build_options declares each
# option with these defaults; a test checks that they agree).
BUILD_DEFAULTS: Dict[str, Any] = {
    "jobs": None,
    "resources": (),
    "keep_going": False,
    "dry_run": False,
    "force": False,
    "force_rules": (),
    "keep_failed": False,
    "keep_temp": False,
    "retries": None,
    "timeout": None,
    "wait_for_lock": False,
}


class Settings:
    """Global options, shared by every command."""

    def __init__(
        self, directory: str, weavefile: Optional[str], verbosity: int, overrides: Optional[Dict[str, str]] = None
    ):
        self.directory = directory
        self.weavefile = weavefile
        self.verbosity = verbosity
        self.overrides: Dict[str, str] = dict(overrides or {})  # --set NAME=VALUE
        self._shadow_told = False
        self.weavefiles: List[str] = []  # set by history_store: the Weavefile and its includes

    def project(self) -> Any:
        from .api import Project

        self.tell_shadowed_weavefile()
        return Project.load(self.directory, self.weavefile, self.overrides)

    def tell_shadowed_weavefile(self) -> None:
        """Warn (once) when the directory has both a `Weavefile` and a `weave.toml` and no -f
        chose: weave reads the first, and edits of the other would change nothing."""
        if self.weavefile is not None or self._shadow_told:
            return
        self._shadow_told = True
        from .projectfile import shadowed_manifest

        ignored = shadowed_manifest(self.directory)
        if ignored is not None:
            where = "" if os.path.abspath(self.directory) == os.getcwd() else f" in {self.directory}"
            _say(
                f"weave: warning: both Weavefile and {os.path.basename(ignored)} are here{where}: Weavefile is"
                f" read and {os.path.basename(ignored)} is ignored; remove or rename one (or choose with -f FILE)"
            )

    def history_store(self) -> Tuple[str, Any]:
        """The project directory and its store, read-only, for the commands that read only
        the run history (history, report): they work while the Weavefile is invalid too."""
        from .errors import ManifestError
        from .store import Store

        try:
            project = self.project()
            root, self.weavefiles = project.root, project.weavefiles
        except ManifestError as exc:
            if exc.path is None:
                raise
            # The project is where the Weavefile is, not the included file the error is in.
            if self.weavefile is not None:
                main = self.weavefile if os.path.isabs(self.weavefile) else os.path.join(self.directory, self.weavefile)
            else:
                from .projectfile import find_manifest

                main = find_manifest(self.directory) or exc.path
            root = os.path.dirname(os.path.abspath(main))
            self.weavefiles = [os.path.basename(main)]  # (its includes are unknown)
        store = Store.open(root, readonly=True)
        reporter = self.reporter()
        for warning in store.warnings:  # an unusable store: its history is not "no runs"
            reporter.warning(warning)
        return root, store

    def reporter(self) -> Any:
        from .reporter import ConsoleReporter

        return ConsoleReporter(self.verbosity)


def run_build(settings: Settings, targets: Sequence[str], **options: Any) -> None:
    """`weave build`: bring `targets` up to date (or, with dry_run, print the plan)."""
    from .resources import parse_resource_args

    resources = parse_resource_args(options.pop("resources") or ())
    dry_run = options.pop("dry_run")
    project = settings.project()
    if dry_run:
        from .commands.build import print_plan

        print_plan(
            settings, project, targets, force=options["force"], as_json=False, show_up_to_date=False,
            force_rules=options["force_rules"], check=slots_check(project, options["jobs"], resources),
        )
        return
    project.build(targets, resources=resources, reporter=settings.reporter(), argv=sys.argv, **options)


def slots_check(project: Any, jobs: Optional[int], resources: Mapping[str, float]) -> Callable[[Any], object]:
    """For a plan: refuse it as the build would, for a job needing more slots or resources
    than `jobs` and `resources` give (Project.pool raises the UsageError)."""
    def check(graph: Any, keys: Optional[Collection[str]] = None) -> object:
        """`keys`: the jobs that would run (their requests alone matter, as for the build)."""
        pool = project.pool(graph, jobs, resources, check=keys is None)
        if keys is not None:
            pool.check_feasible((job.rule.name, job.resources) for job in graph.jobs if job.key in keys)
        return pool

    return check


def format_error(exc: WeaveError) -> str:
    from .reporter import escape_controls  # (loaded by every command that can fail: no cost)

    # A name in the message may hold a newline or an ESC sequence: shown escaped, so the
    # message stays the lines it is and the terminal is left as it was.
    text = f"weave: error: {escape_controls(exc.message)}"
    if exc.hint:
        text += f"\n  hint: {escape_controls(exc.hint, keep=chr(10))}"
    return clip_long_words(text)


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def _signal_module() -> Any:
    """The C module under `signal`: its enums cost a no-op build ~0.7 ms to import."""
    try:
        import _signal as signals
    except ImportError:  # pragma: no cover - an interpreter without it
        import signal as signals  # type: ignore[no-redef]
    return signals


def _in_main_thread() -> bool:
    """Whether this is the main thread (the only one that may set signal handlers). Without
    the threading module loaded no other thread runs Python code, so it is not imported for
    the question (a no-op build does not import it at all)."""
    threading = sys.modules.get("threading")
    return threading is None or threading.current_thread() is threading.main_thread()


def default_signals() -> None:
    """For the console script, once its command is over: a signal ends the process as it
    would any other program's. Raised as an exception while the interpreter shuts down, it
    would print a traceback ("Exception ignored in threading._shutdown") and change nothing."""
    if not _in_main_thread():
        return
    signals = _signal_module()
    for signum in (signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT):
        if signals.getsignal(signum) is _raise_interrupted:
            signals.signal(signum, signals.SIG_DFL)
    if signals.getsignal(signals.SIGINT) is signals.default_int_handler:
        signals.signal(signals.SIGINT, signals.SIG_DFL)


def _stop_on_termination() -> None:
    """SIGTERM, SIGHUP and SIGQUIT outside a build (waiting for the lock, loading the graph) end
    weave with their message and exit code (143, 129, 131), as they do during one (the builder handles
    them itself while jobs run), not as an unexplained death by signal. A signal ignored by
    whoever started weave (nohup) stays ignored."""
    if not _in_main_thread():
        return
    signals = _signal_module()
    for signum in (signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT):
        if signals.getsignal(signum) == signals.SIG_DFL:
            signals.signal(signum, _raise_interrupted)


def run_guarded(command: Callable[[], Optional[int]]) -> None:
    """Run `command` and exit with its code; a user's error becomes its message (exit 2, or 1
    for a failed job), Ctrl-C ends with `weave: interrupted` (130), and a bug in weave is one
    line too, unless WEAVE_DEBUG is set. Never returns."""
    _stop_on_termination()
    try:
        code = command()
    except WeaveError as exc:
        _say(format_error(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _say("weave: interrupted")
        sys.exit(130)
    except BrokenPipeError:  # `weave plan | head`: the reader has what it wanted
        from .reporter import point_at_devnull

        point_at_devnull(sys.stdout)
        sys.exit(1)
    except OSError as exc:
        if not exc.filename and _stdout_refuses():  # `weave plan > /dev/full`
            from .reporter import point_at_devnull

            point_at_devnull(sys.stdout)
            _say(f"weave: error: cannot write the output: {exc.strerror or exc}")
            sys.exit(1)
        if os.environ.get("WEAVE_DEBUG") or not exc.filename:
            _internal_error(exc)
        # The file system refused a path weave needs (its .weave/ state, the Weavefile):
        # something in the way, or permissions. The user's to fix, so a message, not a bug.
        from .errors import environment_error

        _say(format_error(environment_error(exc)))
        sys.exit(2)
    except Exception as exc:  # a bug in weave: still no traceback unless asked for
        _internal_error(exc)
    sys.exit(code or 0)


def _stdout_refuses() -> bool:
    """Whether writing standard output fails (a full disk, /dev/full): the OSError at hand,
    which names no file, was then most likely that write's."""
    try:
        # A write, then a flush: the failed flush emptied the buffer, so a flush alone tells
        # nothing. (If stdout works, the error was another's: an internal error follows, after
        # this one stray newline.)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except OSError:
        return True
    except (AttributeError, ValueError):
        return False
    return False


def _internal_error(exc: BaseException) -> None:
    """A bug in weave: one line and exit 2, or the traceback with WEAVE_DEBUG (never returns)."""
    if os.environ.get("WEAVE_DEBUG"):
        raise exc
    _say(
        f"weave: internal error: {type(exc).__name__}: {exc}\n"
        "  hint: this is a bug in weave; rerun with WEAVE_DEBUG=1 for the traceback and report it"
    )
    sys.exit(2)


_FLAGS = {"-q": "quiet", "--quiet": "quiet", "-v": "verbose", "--verbose": "verbose", "-k": "keep_going", "--keep-going": "keep_going"}


def _plain_job_count(value: str) -> bool:
    """1 to 999999 written plainly (what click's int type takes as it is): ASCII digits, no
    sign, no leading zero. Not a regex: `re` is not imported by a no-op build."""
    return value.isascii() and value.isdigit() and value[0] != "0" and len(value) <= 6


def parse_fast(args: Sequence[str]) -> Optional[Tuple[List[str], int, Dict[str, Any]]]:
    """(targets, verbosity, build options) if `args` is a command line of the fast path, else
    None. Only what click would take the same way is accepted: options once each (`-v` may
    repeat), `-q` and `-v` not mixed, a plain job count."""
    targets: List[str] = []
    command: Optional[str] = None
    seen: Dict[str, int] = {"quiet": 0, "verbose": 0, "keep_going": 0}
    jobs: Optional[int] = None
    # --resources before and after the command; as in click, the command's own replace the
    # group's (cli.merge_group_build_options). The values are checked by run_build.
    resources: Dict[bool, List[str]] = {False: [], True: []}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in _FLAGS:
            seen[_FLAGS[arg]] += 1
        elif arg == "--resources" or arg.startswith("--resources="):
            if arg == "--resources":
                index += 1
                value = args[index] if index < len(args) else ""
            else:
                value = arg[len("--resources=") :]
            if not value or value.startswith("-"):
                return None
            resources[command is not None].append(value)
        elif arg in ("-j", "--jobs") or arg.startswith(("-j", "--jobs=")):
            if jobs is not None:
                return None
            if arg in ("-j", "--jobs"):
                index += 1
                value = args[index] if index < len(args) else ""
            else:
                value = arg[len("--jobs=") :] if arg.startswith("--jobs=") else arg[2:]
            if not _plain_job_count(value):
                return None
            jobs = int(value)
        elif not arg or arg.startswith("-"):
            return None
        elif command is None:
            if arg != "build":
                return None
            command = arg
        else:
            targets.append(arg)
        index += 1
    if (seen["quiet"] and seen["verbose"]) or seen["quiet"] > 1 or seen["keep_going"] > 1:
        return None
    verbosity = 0 if seen["quiet"] else 1 + seen["verbose"]
    options = dict(BUILD_DEFAULTS, jobs=jobs, keep_going=bool(seen["keep_going"]), resources=tuple(resources[True] or resources[False]))
    return targets, verbosity, options


def run_fast(parsed: Tuple[List[str], int, Dict[str, Any]]) -> None:
    """Run a command line `parse_fast` accepted, as the click CLI would. Never returns."""
    targets, verbosity, options = parsed
    run_guarded(lambda: run_build(Settings(".", None, verbosity), targets, **options))

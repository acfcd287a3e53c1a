"""The job graph: rules instantiated into jobs for the requested targets.

Owns: wildcard matching of requested paths against rule outputs, `foreach` and glob expansion,
command rendering, dependency edges, cycle detection and topological order. Touches the file
system only through the `exists`/`glob` helpers it is given (globs and foreach scan existing
files by definition); it never reads state and never runs anything.
"""

from __future__ import annotations

import bisect
import errno
import itertools
import os
import re
import shlex

from . import paths
from .errors import (
    CycleError,
    ManifestError,
    MissingSource,
    UsageError,
    closest,
    did_you_mean,
    set_value_error,
)
from .jobs import Graph, Job, RuleSpec, recipe_digest, recipe_of  # noqa: F401 (Job, Graph, recipe_of: re-exported)
from .manifest import (
    Manifest,
    Placeholder,
    fill_lookups,
    format_value,
    line_in_file,
    lookup_in,
    wildcard_names_in,
)

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

    from .manifest import Template


def _not_an_option(path: str) -> str:
    """`path` as a command may take it: a file named like an option (`-E.txt`) would be read
    by `cat` as one, so it is written `./-E.txt`."""
    return "./" + path if path[:1] == "-" else path


def _quote_join(items: Sequence[str]) -> str:
    if len(items) == 1:
        return shlex.quote(items[0])
    return " ".join([shlex.quote(item) for item in items])


class _RuleIndex:
    """Which rule makes which path: exact outputs, directory outputs, and output patterns."""

    def __init__(self, resolver: Resolver):
        self.static: Dict[str, Tuple[RuleSpec, Dict[str, str]]] = {}
        self.static_dirs: Set[str] = set()
        self.patterns: List[Tuple[object, int, RuleSpec]] = []
        self._pattern_texts: List[str] = []  # each pattern's output as written
        self.dir_patterns = False
        self._by_rule: Optional[Dict[str, List[Tuple[RuleSpec, Dict[str, str]]]]] = None
        self._sorted: Optional[List[str]] = None  # the exact outputs, sorted (outputs_under)
        self._output_dirs: Optional[Set[str]] = None  # the directories they are in (outputs_inside)
        self._pattern_dirs: Optional[Dict[str, List[int]]] = None  # see patterns_for
        for rule in resolver.manifest.rules.values():
            if rule.is_alias:
                continue
            output_wildcards = [w for o in rule.outputs for w in wildcard_names_in(o)]
            generated = [w for w in dict.fromkeys(output_wildcards) if w in rule.foreach]
            if all(w in rule.foreach for w in output_wildcards):
                for bound in resolver.foreach_combos(rule, generated):
                    for output in rule.outputs:
                        path = paths.normalize(paths.substitute(output, bound))
                        other = self.static.get(path)
                        if other is not None and other[0] is not rule:
                            raise _key_error(
                                rule, "outputs", resolver.manifest.path,
                                f"output '{path}' is also produced by rule '{other[0].name}'",
                                hint="each file must be made by exactly one rule",
                            )
                        self.static[path] = (rule, bound)
                        if output.endswith("/"):
                            self.static_dirs.add(path)
            else:
                for output in rule.outputs:
                    regex, literal = paths.compile_pattern(output, rule.wildcard_regex)
                    self.patterns.append((regex, literal, rule))
                    self._pattern_texts.append(output)
                    if output.endswith("/"):
                        self.dir_patterns = True

    def patterns_for(self, path: str) -> List[Tuple[object, int, RuleSpec]]:
        """The output patterns that may match `path`, in their order: with many pattern rules
        (4,000 of them made resolution try 16M regexes), those whose literal start lies in a
        directory holding `path`. The text of a pattern before its first brace is a prefix of
        every path it matches, so its directory part is one of the path's directories."""
        patterns = self.patterns
        if len(patterns) <= 32:
            return patterns
        by_dir = self._pattern_dirs
        if by_dir is None:
            by_dir = self._pattern_dirs = {}
            for index, output in enumerate(self._pattern_texts):
                literal = paths.normalize(output)
                literal = literal[: literal.find("{")] if "{" in literal else literal
                by_dir.setdefault(literal.rpartition("/")[0], []).append(index)
        found = list(by_dir.get("", ()))
        parent = path
        while "/" in parent:
            parent = parent.rpartition("/")[0]
            found.extend(by_dir.get(parent, ()))
        found.sort()
        return [patterns[index] for index in found]

    def outputs_under(self, glob: str) -> List[str]:
        """The exact outputs in the directory where `glob` starts to vary (those it may
        match), found by bisection in the sorted outputs: a glob need not try every output."""
        if self._sorted is None:
            self._sorted = sorted(self.static)
        while glob.startswith("./"):
            glob = glob[2:]
        stop = min((glob.find(c) for c in "*?[" if c in glob), default=len(glob))
        return self._starting_with(glob[: glob.rfind("/", 0, stop) + 1])

    def _starting_with(self, prefix: str) -> List[str]:
        """The exact outputs whose paths start with `prefix`, by bisection in the sorted list."""
        if self._sorted is None:
            self._sorted = sorted(self.static)
        start = bisect.bisect_left(self._sorted, prefix)
        return self._sorted[start : bisect.bisect_left(self._sorted, prefix + "\U0010ffff", start)]

    def outputs_inside(self, directory: str) -> List[str]:
        """The exact outputs strictly inside `directory` (a normalised path), in sorted order:
        what other jobs write into a directory that a rule reads as an input."""
        if self._output_dirs is None:
            # Every directory holding an exact output, at any depth: one set lookup then
            # tells a source file (nearly every input) from a directory with outputs in it.
            self._output_dirs = set()
            for output in self.static:
                parent = output.rpartition("/")[0]
                while parent and parent not in self._output_dirs:
                    self._output_dirs.add(parent)
                    parent = parent.rpartition("/")[0]
        if directory not in self._output_dirs:
            return []
        return self._starting_with(directory + "/")

    def entries_of(self, rule: RuleSpec) -> List[Tuple[RuleSpec, Dict[str, str]]]:
        """(rule, wildcards) of each exact output of `rule`, in index order. Grouped in one
        pass on first use: an alias naming 20k rules would otherwise scan every output per rule."""
        if self._by_rule is None:
            self._by_rule = {}
            for made_by, bound in self.static.values():
                self._by_rule.setdefault(made_by.name, []).append((made_by, bound))
        return self._by_rule.get(rule.name, [])


def _key_error(rule: RuleSpec, key: str, weavefile: str, message: str, hint: Optional[str] = None) -> ManifestError:
    """An error at `key` of `rule`: its file, and the key's line read again from it (else the
    rule's own line)."""
    path, line = _located(rule, key, weavefile)
    return ManifestError(message, path=path, line=line, rule=rule.name, key=key, hint=hint)


def _located(rule: RuleSpec, key: str, weavefile: str) -> Tuple[str, Optional[int]]:
    """The file `rule` is written in and the line of its `key`, read again from the file
    (else the rule's own line): for a mistake found after parsing."""
    path = rule.path or weavefile
    return path, line_in_file(path, rule.name, key) or rule.line


def _where(rule: RuleSpec, key: str, weavefile: str) -> Optional[str]:
    """`./Weavefile:12`, the file and line of `key` of `rule`, for a message; None if unknown."""
    path, line = _located(rule, key, weavefile)
    return f"{path}:{line}" if line else None


def _refuse_changing_input(job: Job, path: str, weavefile: str, own_dirs: Dict[str, Set[str]]) -> None:
    """Refuse a source input of `job` (one with outputs) that each of its runs changes, so
    that it could never be up to date: a directory holding one of its own outputs, the
    project directory, weave's own state. `own_dirs`: job key -> the directories its outputs
    are in, for jobs with many outputs (each input is not tested against each output)."""
    protected = paths.protected_output(path, ())  # ".", .weave/ and what is in it
    if protected is not None:
        hint = (
            "list the files or directories the job reads, or a glob such as '*.csv'"
            if path == "."
            else "read the project's files; `weave history` and `weave status` report what is in .weave/"
        )
        raise _key_error(
            job.rule, "inputs", weavefile,
            f"input '{path}' {protected}: it changes with every build, so the job would never be up to date",
            hint=hint,
        )
    _refuse_own_directory(job, path, weavefile, own_dirs)


def _refuse_own_directory(job: Job, path: str, weavefile: str, own_dirs: Dict[str, Set[str]]) -> None:
    """Refuse a source input of `job` that is a directory holding one of its own outputs
    (see _refuse_changing_input)."""
    if len(job.outputs) > 8:
        held = own_dirs.get(job.key)
        if held is None:
            held = own_dirs[job.key] = {parent for output in job.outputs for parent in _ancestors(output)}
        if path not in held:
            return
    prefix = path + "/"
    for output in job.outputs:
        if output.startswith(prefix):
            raise _key_error(
                job.rule, "inputs", weavefile,
                f"input '{path}/' holds the job's own output '{output}'"
                + (f" (job {job.key})" if job.wildcards else "")
                + ": each run would change what it reads, so it would never be up to date",
                hint=f"write the output outside {path}/, or read the files it needs with a glob"
                f" (e.g. '{path}/*.csv'), which leaves out the job's own outputs",
            )


def _unused_foreach_keys(rule: RuleSpec) -> List[str]:
    """The keys of a rule's foreach that none of its paths, commands or other foreach patterns
    use: a mistake (a misspelt wildcard), since their values change nothing."""
    used: Set[str] = set()
    for text in list(rule.inputs) + list(rule.outputs):
        for name in wildcard_names_in(text):
            lookup = lookup_in(name)
            used.add(lookup[1] if lookup is not None else name)
    for template in (rule.cmd_template, rule.depfile_template, *rule.env_templates.values()):
        used.update(part.attr or "" for part in template if not isinstance(part, str) and part.kind == "wildcards")
    for key, spec in rule.foreach.items():
        if isinstance(spec, str):
            used.update(name for name in wildcard_names_in(spec) if name != key)
    return [key for key in rule.foreach if key not in used]


def _check_order_only(jobs: Sequence[Job], producers: Dict[str, Job], weavefile: str) -> None:
    """A temporary output is deleted once the jobs that read it are done, and made again only
    for one of them: an order_only job, which does not read it, could find it gone."""
    for job in jobs:
        for path in job.order_only:
            maker = producers.get(path)
            if maker is not None and maker.rule.temp and path in maker.temp_outputs:
                raise _key_error(
                    job.rule, "order_only", weavefile,
                    f"order_only '{path}' of {job.key} is a temporary output of rule '{maker.rule.name}'",
                    hint="list it in inputs (a job that reads a temporary output has it made again), or drop its temp",
                )


def _needed_paths(job: Job) -> Iterator[str]:
    """The paths whose makers `job` depends on: its inputs, then its order_only paths."""
    return iter(job.inputs) if not job.order_only else itertools.chain(job.inputs, job.order_only)


def _ancestors(path: str) -> List[str]:
    """The directories `path` is in, innermost first (`a/b/c` -> `a/b`, `a`)."""
    found: List[str] = []
    parent = path.rpartition("/")[0]
    while parent:
        found.append(parent)
        parent = parent.rpartition("/")[0]
    return found


_PLACEHOLDER_RE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


def job_key(rule_name: str, wildcards: Dict[str, str]) -> str:
    """The key of the job of rule `rule_name` with these wildcard values (in the rule's order):
    `train[model=small,seed=1]`, or the rule's name alone."""
    if not wildcards:
        return rule_name
    return rule_name + "[" + ",".join(f"{k}={v}" for k, v in wildcards.items()) + "]"


def _cycle_rules(jobs: Sequence[Job], weavefile: str, named: int = 8) -> List[str]:
    """"'rule' (./Weavefile:12)" for each of the first `named` rules of the jobs on a cycle,
    once, for its message (each line is found by a scan of its file: a cycle through 2,000
    rules took minutes to report, in a message nobody reads to its end)."""
    found: List[str] = []
    for job in jobs:
        if len(found) == named:
            found.append("...")
            break
        where = _where(job.rule, "inputs", weavefile)
        text = f"'{job.rule.name}'" + (f" ({where})" if where else "")
        if text not in found:
            found.append(text)
    return found


def _refuse_pattern_cycle(passed_over: Tuple[RuleSpec, Dict[str, str]], chain: List[Job]) -> None:
    """A missing path that the pattern rule `passed_over` would make, were it not in the chain
    already (as in make, a pattern rule is used once per chain): when the job it would be is in
    the chain itself, the dependencies go round, and that is the error to report. (Otherwise
    the path is simply missing: `{file}` from `{file}.gz` matches any name.)"""
    rule, values = passed_over
    key = job_key(rule.name, {name: values[name] for name in rule.wildcard_names if name in values})
    names = [job.display for job in chain]
    start = next((index for index, job in enumerate(chain) if job.key == key), None)
    if start is not None:
        raise CycleError(names[start:] + [names[start]])


def _broken_link_hint(full: str, path: str) -> Optional[str]:
    """For a missing source that is a symlink: where it points, which is not there (or that it
    is a loop of links). None if it is no symlink."""
    try:
        target = os.readlink(full)
    except OSError:
        return None
    try:
        os.stat(full)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"'{path}' is a symlink in a loop of symlinks (to '{target}'): point it at a file"
    return f"'{path}' is a broken symlink (to '{target}', which does not exist): fix the link, or create its target"


def _refuse_unreadable(full: str, path: str) -> None:
    """A source that seems missing because a directory above it may not be searched: say so,
    rather than "create the file"."""
    try:
        os.stat(full)
    except PermissionError as exc:
        raise UsageError(
            f"cannot read '{path}': {exc.strerror}",
            hint="weave reads every input to know its content: check the permissions of the directories above it",
        ) from None
    except OSError:
        pass


def _check_nesting(jobs: Sequence[Job]) -> None:
    """No job's output lies inside another job's directory output (that job deletes and
    remakes the directory), nor inside any job's file output (one of the two cannot be
    made); the Weavefile's check covers outputs without wildcards, this one the outputs that
    wildcard values make."""
    owners = {o: (job, is_dir) for job in jobs for o, is_dir in zip(job.outputs, job.dir_outputs)}
    for job in jobs:
        for output in job.outputs:
            parent = output
            while "/" in parent:
                parent = parent.rpartition("/")[0]
                found = owners.get(parent)
                if found is None:
                    continue
                owner, is_dir = found
                if not is_dir:
                    raise UsageError(
                        f"output '{output}' of {job.display} is inside '{parent}', a file output of {owner.display}",
                        hint="a file cannot hold other files: put one of them elsewhere (check the wildcard values)",
                    )
                if owner is not job:
                    raise UsageError(
                        f"output '{output}' of rule '{job.rule.name}' is inside directory output "
                        f"'{parent}/' of rule '{owner.rule.name}'",
                        hint="a directory output holds everything in it: read the file as an input instead, "
                        "or put it elsewhere",
                    )


def _check_depfiles(
    jobs: Sequence[Job], producers: Dict[str, Job], sources: Dict[str, List[Job]], weavefile: str
) -> None:
    """A depfile is removed before its job runs and after it is read: it must be that job's
    own file, not another job's depfile or output, nor a file some job reads."""
    owners: Dict[str, Job] = {}
    for job in jobs:
        if not job.depfile:
            continue
        other = owners.setdefault(job.depfile, job)
        if other is not job:
            problem = f"is the depfile of {other.display} too: each job needs its own"
        elif job.depfile in producers and producers[job.depfile] is not job:
            problem = f"is an output of {producers[job.depfile].display}"
        elif job.depfile in sources:
            problem = f"is read by {sources[job.depfile][0].display if sources[job.depfile] else 'a job'}"
        else:
            continue
        raise _key_error(
            job.rule, "depfile", weavefile, f"depfile '{job.depfile}' of {job.display} {problem}",
            hint="name it after the job's own output, e.g. depfile = \"{outputs[0]}.d\"",
        )


def _check_logs(
    jobs: Sequence[Job],
    producers: Dict[str, Job],
    sources: Dict[str, List[Job]],
    weavefile: str,
    globs: Iterable[str],
    scanned_by: Optional[Dict[str, Set[str]]] = None,
    rules: Optional[Dict[str, RuleSpec]] = None,
) -> None:
    """A log is its job's own file, which weave neither orders jobs by nor reads: not another
    job's log, output or depfile, nor inside or around one, nor a file some job reads (that
    job would not wait for it) directly, as a directory input, or through a glob or foreach
    scan (which would find it once written: refused now rather than from the next build)."""
    owners: Dict[str, Job] = {}
    depfiles = {job.depfile: job for job in jobs if job.depfile}
    held: Dict[str, Job] = {}  # each directory holding an output -> a job making one there
    for job in jobs:
        for output in job.outputs:
            for parent in _ancestors(output):
                held.setdefault(parent, job)
    by_directory: Dict[str, List[str]] = {}  # the directory a glob starts to vary in -> globs
    for glob in globs:
        by_directory.setdefault(paths.scan_root(glob), []).append(glob)
    for job in jobs:
        if not job.log:
            continue
        log = job.log
        other = owners.setdefault(log, job)
        problem: Optional[str] = None
        if other is not job:
            problem = f"is the log of {other.display} too: each job needs its own"
        elif log in producers:
            problem = f"is an output of {producers[log].display}"
        elif log in depfiles:
            problem = f"is the depfile of {depfiles[log].display}"
        elif log in sources:
            reader = sources[log][0].display if sources[log] else "a job"
            problem = f"is read by {reader}, which would not wait for it: a file other jobs read is an output"
        elif log in held:
            problem = f"holds an output of {held[log].display}"
        else:
            for parent in _ancestors(log) + [""]:  # ("": globs listing the project directory)
                maker = producers.get(parent)
                if maker is not None:
                    kind = "directory" if maker.dir_outputs[maker.outputs.index(parent)] else "file"
                    problem = f"is inside {kind} output '{parent}' of {maker.display}"
                elif parent and parent in sources:
                    reader = sources[parent][0].display if sources[parent] else "a job"
                    problem = f"is inside '{parent}/', which {reader} reads whole: every run would change it"
                if problem is None:  # the log, or a directory holding it (then read whole)
                    inner = [log] + [p for p in _ancestors(log) if p.startswith(parent + "/") or not parent]
                    matching = [
                        g
                        for g in by_directory.get(parent, ())
                        if any(paths.glob_matches(g, p) and not _constrained_out(g, p, log, scanned_by, rules) for p in inner)
                    ]
                    if matching:
                        problem = (
                            f"would be matched by '{matching[0]}' (an input glob or a foreach scan):"
                            " a job would read it once written"
                        )
                if problem:
                    break
        if problem is None:
            continue
        raise _key_error(
            job.rule, "log", weavefile, f"log '{log}' of {job.display} {problem}",
            hint="keep logs in a directory of their own that no input, glob or output covers,"
            " e.g. log = \"logs/map/{sample}.log\" with the outputs' wildcards",
        )


def _constrained_out(
    glob: str, path: str, log: str, scanned_by: Optional[Dict[str, Set[str]]], rules: Optional[Dict[str, RuleSpec]]
) -> bool:
    """Whether directory `path` (holding a log), though `glob` matches it, is a name that no
    rule scanning with that glob would take: each has wildcard constraints, and none of them
    accepts the directory's name (a foreach over `raw/{s}/` with s = "S[0-9]+" never takes
    `raw/logs`)."""
    if path == log or not scanned_by or not rules:
        return False
    name = path.rpartition("/")[2]
    scanners = [rules[rule] for rule in scanned_by.get(glob, ()) if rule in rules]
    return bool(scanners) and all(
        rule.wildcard_regex and not any(re.fullmatch(regex, name) for regex in rule.wildcard_regex.values())
        for rule in scanners
    )


def _plain_paths(patterns: List[str]) -> List[Optional[str]]:
    """Each of `patterns` that is a plain path (no wildcard, no glob), normalised; None for the
    others. All at once when, as in a generated Weavefile listing 1,000 headers per rule, all
    are plain and already canonical."""
    joined = "\n".join(patterns)
    if (
        "{" not in joined
        and "}" not in joined
        and paths.GLOB_CHARS.isdisjoint(joined)
        and "/." not in joined
        and "//" not in joined
        and "\n." not in joined
        and "/\n" not in joined
        and joined[:1] != "."
        and joined[-1:] != "/"
        and os.sep == "/"
        and all(patterns)
    ):
        return list(patterns)  # (what paths.normalize gives each)
    return [
        paths.normalize(pattern)
        if "{" not in pattern and "}" not in pattern and paths.GLOB_CHARS.isdisjoint(pattern)
        else None
        for pattern in patterns
    ]


def _is_own_output(path: str, job: Job) -> bool:
    """Whether `path` is one of `job`'s outputs or inside one of its directory outputs."""
    for output, is_dir in zip(job.outputs, job.dir_outputs):
        if path == output or (is_dir and path.startswith(output + "/")):
            return True
    return False


class Resolver:
    """Instantiates jobs on demand, starting from the requested targets."""

    def __init__(
        self,
        manifest: Manifest,
        exists: Callable[[str], bool] = os.path.exists,
        missing_ok: bool = False,
    ):
        self.manifest = manifest
        self.root = manifest.root
        self._exists_rel = exists
        # Missing sources are noted (Graph.missing) instead of raised: for a picture of a
        # project whose data is not there yet. Such a graph is never built nor cached.
        self._missing_ok = missing_ok
        # Set by _match_patterns when a pattern rule matching a path was passed over because
        # the chain asking uses it already: that path's producer depends on the chain. The
        # rule and the wildcard values it would have taken.
        self._passed_over: List[Tuple[RuleSpec, Dict[str, str]]] = []
        self.missing: Dict[str, None] = {}
        self._weavefiles = paths.ProjectFiles(manifest.files, self.root)
        self._foreach: Dict[tuple, List[Tuple[str, ...]]] = {}
        self.jobs: Dict[str, Job] = {}
        # Every file-system question resolution asked, with its answer: the graph cache is
        # valid as long as each one still gets the same answer.
        self.queries: List[tuple] = []
        # Each glob's matches, by (pattern, whether the index was ready): the glob's answer
        # is asked of the file system, and recorded as a question, once per resolution.
        self._globbed: Dict[Tuple[str, bool], List[str]] = {}
        self._existing: Dict[str, bool] = {}  # exists()'s answers
        self._names_in: Dict[paths.Listing, List[str]] = {}  # see paths.expand_glob
        self._plain_inputs: Dict[str, List[Optional[str]]] = {}  # see job_for
        self._absolute_inputs: Dict[str, bool] = {}  # rule -> whether an input is written absolute
        self._project_paths: Dict[str, str] = {}  # see _project_path
        self._spellings: Optional[Tuple[str, ...]] = None  # paths.project_spellings, once asked
        # Scans whose directory's stat, taken before the scan, may vouch for the answer later
        # (graphcache.record_listings): (query, paths.Listing).
        self.listings: List[Tuple[tuple, paths.Listing]] = []
        # The globs scans ran (foreach patterns, input globs), for Graph.first, and the rules
        # whose jobs' inputs each one gave (a cycle through a directory output shows there).
        self.scanned: Dict[str, None] = {}
        self.scanned_by: Dict[str, Set[str]] = {}
        # glob -> the rules (or aliases) whose values or inputs it gave: a scan made to index a
        # rule the targets do not need (its outputs' values) leaves the graph alone.
        self.scanned_for: Dict[str, Set[str]] = {}
        self._rules_named: Set[str] = set()  # rules and aliases named as targets
        self._expanding: Optional[str] = None  # the rule whose job's inputs are being expanded
        self._sorted_dirs: Optional[List[str]] = None
        self._empty_globs: Dict[str, Dict[str, None]] = {}  # rule -> its input globs that matched nothing
        self._no_jobs: Dict[str, str] = {}  # rule named as a target whose foreach gave nothing -> why
        self.inside_targets: List[str] = []  # see Graph.inside
        self.wanted_paths: List[str] = []  # see Graph.wanted
        self._literal_inputs: Optional[Dict[str, str]] = None  # path -> a rule reading it (depfile checks)
        self.warnings: List[str] = []
        self._for_directory = False  # resolving the defaults for a directory target
        self._first_from_defaults: List[str] = []  # Graph.first of those defaults
        self._index_ready = False  # foreach scans made to index the rules see files only
        self.index = _RuleIndex(self)
        self._index_ready = True

    # -- helpers -----------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        answer = self._existing.get(path)
        if answer is None:  # asked, and recorded as a question, once per resolution
            answer = self._existing[path] = self._exists_rel(path if os.path.isabs(path) else os.path.join(self.root, path))
            self.queries.append(("exists", path, answer))
        return answer

    def _scanned(self, glob: str, rule: RuleSpec) -> None:
        self.scanned[glob] = None
        self.scanned_for.setdefault(glob, set()).add(rule.name)
        if self._expanding is not None:
            self.scanned_by.setdefault(glob, set()).add(self._expanding)

    def _expand_input(self, path: str, rule: RuleSpec) -> List[str]:
        """An input path (wildcards and braces done): the files a glob matches now, sorted
        (a path with glob characters that exists as it is written is that path), or the path."""
        if paths.has_glob(path) and not self.exists(path):
            self._scanned(path, rule)
            known_matches = self._globbed.get((path, self._index_ready))
            if known_matches is not None:  # the same glob for another job: asked once
                if not known_matches:
                    self._empty_globs.setdefault(rule.name, {})[path] = None
                return known_matches
            listing = paths.listing_of(self.root, path)
            matches = paths.expand_glob(self.root, path, listing, self._names_in)
            self._asked(("glob", path, tuple(matches)), listing)
            if self._index_ready and self.index.static and not os.path.isabs(path):
                # Files other rules make count as there already (see _foreach_rows).
                known = [
                    output
                    for output in self.index.outputs_under(path)
                    if paths.glob_matches(path, output) and (not path.endswith("/") or output in self.index.static_dirs)
                ]
                if not set(known) <= set(matches):
                    matches = sorted(set(matches) | set(known))
            if not matches:
                self._empty_globs.setdefault(rule.name, {})[path] = None
            self._globbed[(path, self._index_ready)] = matches
            return matches
        return [paths.normalize(path)]

    def _asked(self, query: tuple, listing: Optional[paths.Listing]) -> None:
        self.queries.append(query)
        if listing is not None:
            self.listings.append((query, listing))

    def foreach_values(self, rule: RuleSpec, key: str, bound: Optional[Dict[str, str]] = None) -> List[str]:
        """The values of wildcard `key` from the rule's `foreach` (for the job whose own
        wildcards are `bound`), in order, unique."""
        return list(dict.fromkeys(combo[key] for combo in self.foreach_combos(rule, [key], bound)))

    def foreach_combos(
        self, rule: RuleSpec, names: Sequence[str], bound: Optional[Dict[str, str]] = None
    ) -> List[Dict[str, str]]:
        """The combinations of values the rule's `foreach` gives wildcards `names`, for the
        job whose own wildcards are `bound`: keys read from one pattern come in the pairs that
        exist; a pattern that uses the job's wildcards, or keys with values of their own, is
        scanned once per combination of those (the units of each sample); what is left
        combines as a product."""
        bound = bound or {}
        combos: List[Dict[str, str]] = [{}]
        todo = [name for name in dict.fromkeys(names) if name not in bound]
        while todo:
            chosen: Optional[List[str]] = None
            for key in todo:
                spec = rule.foreach[key]
                if isinstance(spec, list):
                    chosen = [key]
                    break
                group = [other for other in todo if rule.foreach.get(other) == spec]
                if not any(w in todo and w not in group for w in wildcard_names_in(spec)):
                    chosen = group
                    break
            if chosen is None:  # patterns that use each other's keys: each on its own
                chosen = [todo[0]]
            spec = rule.foreach[chosen[0]]
            expanded: List[Dict[str, str]] = []
            for combo in combos:
                if isinstance(spec, list):
                    rows: Sequence[Tuple[str, ...]] = [(value,) for value in dict.fromkeys(spec)]
                else:
                    context = {**bound, **combo}
                    rows = self._foreach_rows(
                        rule, tuple(chosen), spec, {w: context[w] for w in wildcard_names_in(spec) if w in context}
                    )
                expanded.extend({**combo, **dict(zip(chosen, row))} for row in rows)
            combos = expanded
            todo = [name for name in todo if name not in chosen]
        return combos

    def _foreach_rows(
        self, rule: RuleSpec, keys: Tuple[str, ...], spec: str, bound: Dict[str, str]
    ) -> List[Tuple[str, ...]]:
        memo_key = (rule.name, keys, spec, tuple(bound.items()))
        cached = self._foreach.get(memo_key)
        if cached is None:
            constraints = rule.wildcard_regex
            glob = paths.foreach_glob(spec, constraints, bound)
            self._scanned(glob, rule)
            listing = paths.listing_of(self.root, glob)
            cached = paths.foreach_tuples(self.root, keys, spec, constraints, bound)
            self._asked(
                ("foreach", keys, spec, tuple(sorted(constraints.items())), tuple(sorted(bound.items())), tuple(cached)),
                listing,
            )
            if self._index_ready and self.index.static:
                # Files other rules make count as there already: a foreach over another rule's
                # outputs (`out/{s}.txt`) gives their values in the first build, as it would
                # in every later one (the answer depends on the Weavefile only: no query).
                known = paths.foreach_tuples(
                    self.root, keys, spec, constraints, bound, among=self.index.outputs_under(glob)
                )
                if not set(known) <= set(cached):
                    cached = sorted(set(cached) | set(known))
            for row in cached:
                for key, value in zip(keys, row):
                    problem = paths.bad_wildcard_value(value)
                    if problem:
                        raise _key_error(
                            rule, "foreach", self.manifest.path, f"foreach value {value!r} for '{key}' {problem}"
                        )
            self._foreach[memo_key] = cached
        return cached

    def _log_path(self, rule: RuleSpec, job: Job) -> str:
        """The job's log path, from the rule's pattern: inside the project, never one of its
        own inputs or outputs, nor weave's own files."""
        log = paths.normalize(paths.substitute(rule.log or "", job.wildcards))
        problem = None
        if paths.is_outside(log):
            problem = "is outside the project directory"
        elif log in job.outputs or log in job.inputs:
            problem = f"is one of its {'outputs' if log in job.outputs else 'inputs'}"
        else:
            problem = paths.protected_output(log, self._weavefiles)
        if problem is None:  # inside one of its own paths, or holding one
            for path in job.outputs + job.inputs:
                if log.startswith(path + "/"):
                    problem = f"is inside '{path}', one of its {'outputs' if path in job.outputs else 'inputs'}"
                elif path.startswith(log + "/"):
                    problem = f"holds '{path}', one of its {'outputs' if path in job.outputs else 'inputs'}"
                if problem:
                    break
        if problem:
            raise _key_error(
                rule, "log", self.manifest.path, f"log '{log}' of {job.key} {problem}",
                hint="a log is the job's own file beside its outputs, e.g. log = \"logs/map/{sample}.log\" (check the wildcard values)",
            )
        return log

    def _order_only(self, rule: RuleSpec, job: Job) -> List[str]:
        """The job's order_only paths, from the rule's patterns: in the project, and neither
        its own inputs or outputs nor weave's own files."""
        found: List[str] = []
        for pattern in rule.order_only:
            path = paths.normalize(paths.substitute(pattern, job.wildcards))
            problem = None
            if paths.is_outside(path) or path == ".":
                problem = "is outside the project directory" if path != "." else "is the project directory"
            elif path in job.outputs:
                problem = "is one of its outputs"
            elif any(path.startswith(output + "/") for output in job.outputs):
                problem = "is inside one of its outputs"
            elif path in job.inputs:
                problem = "is one of its inputs (an input is made first already, and reruns the job when it changes)"
            else:
                problem = paths.protected_output(path, self._weavefiles)
            if problem:
                raise _key_error(
                    rule, "order_only", self.manifest.path, f"order_only '{path}' of {job.key} {problem}",
                    hint="order_only names files other rules make, to be made first (check the wildcard values)",
                )
            if path not in found:
                found.append(path)
        return found

    def _depfile_clash(self, depfile: str, rule: RuleSpec) -> Optional[str]:
        """Why `depfile` may not be a depfile whatever the targets: another rule's output, or
        a path some rule's inputs name (weave removes a depfile once read)."""
        made = self.index.static.get(depfile)
        if made is not None and made[0] is not rule:
            return f"is an output of rule '{made[0].name}'"
        if self._literal_inputs is None:
            self._literal_inputs = {}
            for other in self.manifest.rules.values():
                for item in other.inputs:
                    if "{" not in item and paths.GLOB_CHARS.isdisjoint(item):
                        self._literal_inputs.setdefault(paths.normalize(item), other.name)
        reader = self._literal_inputs.get(depfile)
        if reader is not None:
            return f"is an input of rule '{reader}'"
        return None

    def _error(self, message: str, hint: Optional[str] = None) -> UsageError:
        return UsageError(message, hint=hint)

    # -- job creation ------------------------------------------------------------------------
    def job_for(self, rule: RuleSpec, wildcards: Dict[str, str]) -> Job:
        key = job_key(rule.name, wildcards)
        job = self.jobs.get(key)
        if job is not None:
            return job
        job = Job(key, rule, wildcards)
        job.outputs = [
            paths.normalize(paths.substitute(o, wildcards)) for o in rule.outputs
        ]
        job.dir_outputs = tuple(o.endswith("/") for o in rule.outputs)
        for output in job.outputs:
            if paths.is_outside(output):
                raise UsageError(
                    f"rule '{rule.name}': output '{output}' is outside the project directory",
                    hint="outputs must stay inside the project; check the wildcard values",
                )
            protected = paths.protected_output(output, self._weavefiles)
            if protected:
                raise UsageError(
                    f"rule '{rule.name}': output '{output}' {protected}",
                    hint="a job may not write (and weave never deletes) it: check the wildcard values",
                )
        plain = self._plain_inputs.get(rule.name)
        if plain is None:  # each input written as a plain path, normalised; None for the others
            plain = self._plain_inputs[rule.name] = _plain_paths(rule.inputs)
        groups: List[List[str]] = []
        for pattern, normalized in zip(rule.inputs, plain):
            if normalized is not None:
                groups.append([normalized])  # most inputs: one plain path
                continue
            group: List[str] = []
            names = wildcard_names_in(pattern)
            lookups = [lookup for lookup in map(lookup_in, names) if lookup is not None] if "vars." in pattern else []
            if lookups:  # `{vars.NAME[wildcards.W]}`: W is bound (or expanded) as a wildcard is
                names = [found[1] if found is not None else name for name, found in zip(names, map(lookup_in, names))]
            unbound = [n for n in dict.fromkeys(names) if n not in wildcards]
            is_glob = paths.is_written_glob(pattern)
            self._expanding = rule.name
            try:
                for combo in self.foreach_combos(rule, unbound, wildcards):
                    bound = dict(wildcards)
                    bound.update(combo)
                    if lookups:
                        text = fill_lookups(pattern, lambda name, wildcard, bound=bound: self._looked_up_path(rule, job, name, wildcard, bound))
                        is_glob = paths.is_written_glob(text)  # the entry's own glob is expanded, as a var's is
                        path = self._project_path(paths.fill(text, bound, is_glob))
                    else:
                        path = paths.fill(pattern, bound, is_glob)
                    if is_glob:
                        # Never the job's own outputs (`data/*.txt` making `data/summary.txt`):
                        # once built, they would make the job its own dependency.
                        matches = self._expand_input(path, rule)
                        if any(job.dir_outputs):
                            group.extend(m for m in matches if not _is_own_output(m, job))
                        else:  # (a set lookup per match: 1,000 jobs globbing 1,000 shared headers)
                            own = set(job.outputs)
                            group.extend(matches if own.isdisjoint(matches) else [m for m in matches if m not in own])
                    else:  # a path: whatever characters the values hold (`s[1]`, `a*b`)
                        group.append(paths.normalize(path))
            finally:
                self._expanding = None
            groups.append(group)
        absolute = self._absolute_inputs.get(rule.name)
        if absolute is None:
            absolute = self._absolute_inputs[rule.name] = any(os.path.isabs(pattern) for pattern in rule.inputs)
        if absolute:
            groups = [[self._project_path(path) for path in group] for group in groups]
        job.inputs = [p for group in groups for p in group]
        named_inputs = {
            name: [p for i in indices for p in groups[i]] for name, indices in rule.input_names.items()
        }
        named_outputs = {
            name: [job.outputs[i] for i in indices] for name, indices in rule.output_names.items()
        }
        job.vars = {name: self.manifest.vars[name] for name in rule.vars_used}
        for name, wildcard, key in rule.var_lookups:
            job.vars[f"{name}[{wildcards.get(wildcard, '')}]"] = self._looked_up(rule, job, name, wildcard, key)
        if rule.log is not None:
            job.log = self._log_path(rule, job)
        if rule.order_only:
            job.order_only = self._order_only(rule, job)
        job.cmd = self.render(rule.cmd_template, job, named_inputs, named_outputs, "cmd")
        # Environment values never pass through a shell: their paths are not shell-quoted.
        job.env = {
            name: self.render(template, job, named_inputs, named_outputs, "env", quote=False)
            for name, template in rule.env_templates.items()
        }
        if rule.depfile_template:
            rendered = self.render(rule.depfile_template, job, named_inputs, named_outputs, "depfile", quote=False)
            depfile = paths.normalize(rendered) if rendered.strip() else ""
            problem = None
            if not depfile:
                problem = "is an empty path"
            elif os.path.isabs(depfile) or paths.is_outside(depfile):
                problem = "is outside the project directory"
            elif depfile in job.inputs:
                problem = "is one of the job's inputs (weave removes a depfile once it has read it)"
            elif depfile in job.outputs:
                problem = "is one of the job's outputs (weave removes a depfile once it has read it)"
            else:
                problem = paths.protected_output(depfile, self._weavefiles) or self._depfile_clash(depfile, rule)
            if problem:
                raise _key_error(
                    rule, "depfile", self.manifest.path, f"depfile '{depfile}' of {job.key} {problem}",
                    hint="name it after the job's own output, e.g. depfile = \"{outputs[0]}.d\" (check the vars it uses, and any --set values)",
                )
            job.depfile = depfile
        first = job.outputs[0] if job.outputs else ""
        if rule.is_alias:
            job.display = rule.name
        elif first:
            suffix = "/" if job.dir_outputs[0] else ""
            job.display = f"{rule.name} {first}{suffix}"
        else:
            job.display = key
        job.recipe = recipe_digest(job)
        self.jobs[key] = job
        return job

    def render(
        self,
        template: Template,
        job: Job,
        named_inputs: Dict[str, List[str]],
        named_outputs: Dict[str, List[str]],
        key: str,
        quote: bool = True,
    ) -> str:
        out: List[str] = []
        for part in template:
            if isinstance(part, str):
                out.append(part)
            else:
                text = self._placeholder(part, job, named_inputs, named_outputs, key, quote)
                # An env value's `$NAME` is expanded as the job starts; what a placeholder
                # puts in (a path, a var's text) stays as it is.
                out.append(text.replace("$", "$$") if key == "env" else text)
        return "".join(out)

    def _placeholder(
        self,
        part: Placeholder,
        job: Job,
        named_inputs: Dict[str, List[str]],
        named_outputs: Dict[str, List[str]],
        key: str,
        quote: bool = True,
    ) -> str:
        one = shlex.quote if quote else str
        join = _quote_join if quote else " ".join
        kind = part.kind
        if kind in ("inputs", "outputs"):
            items = job.inputs if kind == "inputs" else job.outputs
            if part.attr is not None:
                items = named_inputs[part.attr] if kind == "inputs" else named_outputs[part.attr]
            if isinstance(part.index, slice):  # {inputs[1:]}: those, joined as {inputs} joins all
                items = items[part.index]
            elif part.index is not None:
                try:
                    return one(_not_an_option(items[part.index]) if quote else items[part.index])
                except IndexError:
                    raise _key_error(
                        job.rule, key, self.manifest.path,
                        f"'{part.text}' is out of range: job {job.key} has {len(items)} {kind}"
                        + (f" named '{part.attr}'" if part.attr is not None else ""),
                    ) from None
            text = join(items)
            # (a quoted path starts "'-": `cat '-n x.txt'` takes it as options too; scans in C)
            if quote and (text[:1] == "-" or text[:2] == "'-" or " -" in text or " '-" in text):
                text = join([_not_an_option(item) for item in items])
            return text
        if kind == "wildcards":
            name = part.attr or ""
            if name in job.wildcards:
                return one(job.wildcards[name])
            return join(self.foreach_values(job.rule, name, job.wildcards))
        if kind == "vars":
            if isinstance(part.index, str):  # {vars.NAME[wildcards.W]}: job_for checked it is there
                return format_value(self.manifest.vars[part.attr or ""][job.wildcards[part.index]])
            return format_value(self.manifest.vars[part.attr or ""])
        if kind == "resources":
            return format_value(job.resources[part.attr or ""])
        if kind == "rule":
            return job.rule.name
        if kind == "cpus":
            return str(job.cpus)
        if kind == "log":
            return one(_not_an_option(job.log)) if quote else job.log
        raise AssertionError(kind)  # the manifest validated every placeholder

    def _looked_up(
        self, rule: RuleSpec, job: Job, name: str, wildcard: str, key: str, bound: Optional[Dict[str, str]] = None
    ) -> object:
        """The value `{vars.NAME[wildcards.W]}` gives `job` (with the wildcards `bound`, when an
        input expands over a foreach key), or a UsageError naming the key."""
        table = self.manifest.vars[name]
        value = (job.wildcards if bound is None else bound).get(wildcard)
        if value is None:  # a foreach key the job does not bind: it has all of them
            raise _key_error(
                rule, key, self.manifest.path,
                f"'{{vars.{name}[wildcards.{wildcard}]}}': job {job.key} has no single value of '{wildcard}'"
                " (a foreach key that does not appear in its outputs takes them all)",
                hint="look up by a wildcard its outputs have",
            )
        if value not in table:
            known = ", ".join(list(table)[:8]) + (", ..." if len(table) > 8 else "")
            given = self.manifest.overridden.get(name)
            if given is not None:  # the table came from the command line
                raise set_value_error(
                    name, given, rule.name, key,
                    f"'{{vars.{name}[wildcards.{wildcard}]}}': it has no key '{value}' (for job {job.key})",
                    hint=f"give {value!r} an entry in the --set table (its keys: {known})",
                )
            raise _key_error(
                rule, key, self.manifest.path,
                f"'{{vars.{name}[wildcards.{wildcard}]}}': var '{name}' has no key '{value}' (for job {job.key})",
                hint=f"add {value!r} to [vars.{name}] (its keys: {known})",
            )
        return table[value]

    def _looked_up_path(self, rule: RuleSpec, job: Job, name: str, wildcard: str, bound: Dict[str, str]) -> object:
        """The entry `{vars.NAME[wildcards.W]}` puts into an input path: an empty one is an
        error wherever it stands (`raw/{...}` would quietly read the directory `raw/`)."""
        value = self._looked_up(rule, job, name, wildcard, "inputs", bound)
        if not format_value(value).strip():
            raise _key_error(
                rule, "inputs", self.manifest.path,
                f"'{{vars.{name}[wildcards.{wildcard}]}}' is empty for '{bound.get(wildcard)}' (job {job.key}): an input needs a path",
                hint=f"give [vars.{name}] a path for '{bound.get(wildcard)}'",
            )
        return value

    def _project_path(self, path: str) -> str:
        """An input written as an absolute path in the project (`/home/me/proj/data/x`), as its
        project path: a rule's output there is a dependency, not a source from outside that
        nothing makes. Under any spelling of the project directory: as it really is, as weave
        was given it, or as the shell's logical directory (PWD) names it (a home directory
        that is a symlink). By its spelling, no symlink in it followed, so that the answer
        holds while the spelling of the directory leads to this project: the question the
        cached graph asks again (a moved or copied project's cached graph is not reused)."""
        if not os.path.isabs(path):
            return path
        found = self._project_paths.get(path)
        if found is None:
            if self._spellings is None:
                self._spellings = paths.project_spellings(self.root)
                # Every answer, a project path or not, holds while these spellings do.
                self.queries.append(("roots", self._spellings))
            found = path
            for root in self._spellings:
                if path.startswith(root.rstrip(os.sep) + os.sep):
                    found = paths.normalize(os.path.relpath(path, root).replace(os.sep, "/"))
                    break
            self._project_paths[path] = found
        return found

    # -- resolution --------------------------------------------------------------------------
    def producer(self, path: str, active_rules: Dict[str, int]) -> Optional[Job]:
        """The job that makes `path`, or None if it is a source."""
        if paths.is_outside(path):
            return None  # no rule makes files outside the project: a read-only source
        found = self.index.static.get(path)
        if found is not None:
            return self.job_for(found[0], found[1])
        job = self._match_patterns(path, active_rules)
        if job is not None:
            return job
        # A file inside a directory output depends on the job that makes the directory.
        if self.index.static_dirs or self.index.dir_patterns:
            parent = os.path.dirname(path)
            while parent and parent not in (".", "/"):
                found = self.index.static.get(parent)
                if found is not None and parent in self.index.static_dirs:
                    return self.job_for(found[0], found[1])
                if self.index.dir_patterns:
                    job = self._match_patterns(parent, active_rules, dirs_only=True)
                    if job is not None:
                        return job
                parent = os.path.dirname(parent)
        return None

    def _match_patterns(
        self, path: str, active_rules: Dict[str, int], dirs_only: bool = False
    ) -> Optional[Job]:
        best: List[Tuple[int, RuleSpec, Dict[str, str]]] = []
        for regex, literal, rule in self.index.patterns_for(path):
            match = regex.match(path)  # type: ignore[attr-defined]
            if match is None:
                continue
            # As in make, a pattern rule is not used twice in one chain of dependencies.
            if active_rules.get(rule.name):
                self._passed_over.append((rule, match.groupdict()))  # the answer depends on the chain asking
                continue
            values = match.groupdict()
            if any(paths.bad_wildcard_value(v) for v in values.values()):
                bad = next(
                    (k, v) for k, v in values.items() if paths.bad_wildcard_value(v)
                )
                raise UsageError(
                    f"'{path}': wildcard '{bad[0]}' of rule '{rule.name}' would be {bad[1]!r}, which "
                    f"{paths.bad_wildcard_value(bad[1])}",
                    hint="wildcard values may not contain '..', NUL or start with '/'",
                )
            if dirs_only and not any(o.endswith("/") for o in rule.outputs):
                continue
            best.append((literal, rule, values))
        if not best:
            return None
        best.sort(key=lambda item: -item[0])
        if len(best) > 1 and best[0][0] == best[1][0] and best[0][1] is not best[1][1]:
            first, second = (
                (rule.name, _where(rule, "outputs", self.manifest.path) or rule.path or self.manifest.path)
                for rule in (best[0][1], best[1][1])
            )
            raise UsageError(
                f"'{path}' can be made by rules '{first[0]}' ({first[1]}) and '{second[0]}' ({second[1]})",
                hint="make the output patterns distinct or constrain the wildcards "
                "(wildcards = { name = \"regex\" })",
            )
        literal, rule, values = best[0]
        ordered = {name: values[name] for name in rule.wildcard_names if name in values}
        return self.job_for(rule, ordered)

    def resolve_target(self, target: str, aliases: Tuple[str, ...] = ()) -> List[Job]:
        """The jobs a target names: a rule name (every job of a non-pattern rule) or a path.
        `aliases`: the aliases being expanded that led here (an alias naming one of them is
        a cycle)."""
        rules = self.manifest.rules
        if target in rules:
            self._rules_named.add(target)  # its scans count even if they give it no job yet
            rule = rules[target]
            clash = self.index.static.get(target)
            if clash is not None and clash[0] is not rule and not aliases:
                self.warnings.append(
                    f"'{target}' names rule '{target}' and is also an output of rule "
                    f"'{clash[0].name}': building the rule; write './{target}' for the file"
                )
            if rule.is_alias:
                if target in aliases:
                    raise CycleError(list(aliases[aliases.index(target) :]) + [target])
                jobs: List[Job] = []
                for item in rule.inputs:
                    for path, is_glob in self._alias_paths(item, rule):
                        jobs.extend(self._resolve_alias_item(path, is_glob, item, rule, aliases + (target,)))
                return jobs
            entries = list(self.index.entries_of(rule))
            if not rule.outputs:
                entries = [(rule, {})]  # a command-only rule: one job, run when requested
            output_wildcards = {w for output in rule.outputs for w in wildcard_names_in(output)}
            if not entries and output_wildcards and output_wildcards <= set(rule.foreach):
                # Its jobs come from foreach alone, and it gave no values (an empty list, or
                # a pattern no file matches yet): nothing to build, which is worth saying
                # (once the graph knows whether the scan reads a directory made first).
                self._no_jobs[target] = (
                    f"rule '{target}' has no jobs: foreach gives no values for "
                    + ", ".join(f"'{w}'" for w in sorted(output_wildcards))
                )
                return []
            if not entries:
                example = rule.outputs[0] if rule.outputs else ""
                raise UsageError(
                    f"rule '{target}' has wildcards; name one of its outputs instead",
                    hint=(f"e.g. {example}, with its wildcards filled in; " if example else "")
                    + f"`weave build -R {target}` reruns every job of it that the targets need",
                )
            jobs = []
            seen: Set[str] = set()
            for r, w in entries:
                job = self.job_for(r, w)
                if job.key not in seen:
                    seen.add(job.key)
                    jobs.append(job)
                    self.wanted_paths.extend(job.outputs)
            return jobs
        if not target.strip():
            raise UsageError("empty target", hint="name a file or a rule; with no target weave builds the defaults")
        path = paths.normalize(target)
        if paths.is_outside(path) and not os.path.isabs(target):
            # `../proj/out.txt` from the project directory is out.txt: checked as the
            # absolute path it spells, as `/…/proj/out.txt` is.
            path = os.path.normpath(os.path.join(os.path.abspath(self.root), path))
        if os.path.isabs(path):
            root = os.path.realpath(self.root)
            real = os.path.realpath(path)
            if real == root or real.startswith(root + os.sep):
                path = paths.normalize(os.path.relpath(real, root))
            else:  # no rule makes anything outside the project, as for '../x'
                raise UsageError(f"target '{target}' is outside the project directory")
        if path == ".":
            raise UsageError(
                f"target '{target}' is the project directory, which no rule makes",
                hint="name files or rules to build; with no target weave builds the defaults",
            )
        job = self.producer(path, {})
        placeholder = next((v for v in job.wildcards.values() if _PLACEHOLDER_RE.fullmatch(v)), None) if job else None
        if placeholder is not None:
            # The pattern written as the target (`o/{s}.txt`): a file named after it is no answer.
            raise UsageError(
                f"target '{target}' holds the placeholder '{placeholder}': a target is a path",
                hint="write the value in (e.g. the file for one sample), or name the rule to build its jobs",
            )
        if job is not None:
            if path not in job.outputs:
                self.inside_targets.append(path)
            self.wanted_paths.append(path)
            return [job]
        made_under = self._jobs_under(path)
        if made_under is not None:
            return made_under
        if self.exists(path):
            return []  # a source: nothing to build
        for rule in rules.values():  # make's `%` written into an output: a literal '%' here
            for output in rule.outputs:
                if "%" in output and "{" not in output:
                    as_make = re.escape(paths.normalize(output)).replace("%", "([^/]+)", 1)
                    if re.fullmatch(as_make, path):
                        raise UsageError(
                            f"no rule makes '{target}' and it does not exist",
                            hint=f"rule '{rule.name}' writes its output as '{output}', a file named with a '%':"
                            " make's % is a named wildcard in weave, outputs = [\"out/{name}.txt\"] with"
                            " inputs = [\"in/{name}.txt\"], and {wildcards.name} in the command",
                        )
        close = closest(target, list(self.index.static) + list(rules))
        raise UsageError(
            f"no rule makes '{target}' and it does not exist",
            hint=f"did you mean '{close}'?" if close else "run 'weave list' to see the rules and their outputs",
        )

    def _jobs_under(self, path: str) -> Optional[List[Job]]:
        """For a directory holding outputs (`weave build reports/`, an alias's `reports/`): the
        jobs making every output known under it, those of the rules' outputs and those the
        default targets' pattern-rule jobs make there; None when none is known there."""
        prefix = path + "/"
        under = sorted(output for output in self.index.static if output.startswith(prefix))
        found: Dict[str, Job] = {}
        for output in under:
            made_by = self.producer(output, {})
            if made_by is not None:
                found.setdefault(made_by.key, made_by)
        for job in self._default_jobs(prefix):  # what pattern rules make there
            under.extend(output for output in job.outputs if output.startswith(prefix))
            found.setdefault(job.key, job)
        if not under:
            return None
        self.wanted_paths.extend(under)
        return list(found.values())

    def _default_jobs(self, prefix: str) -> List[Job]:
        """The jobs the default targets need with an output under `prefix` (as this
        resolver's jobs), for a directory target: which files a pattern rule makes is known
        only from the jobs that read them. Empty when there are no pattern rules, inside such
        a lookup, or when the defaults do not resolve (only the exact outputs are known then)."""
        if not self.index.patterns or self._for_directory:
            return []
        nested = Resolver(self.manifest, self._exists_rel, missing_ok=self._missing_ok)
        nested._for_directory = True
        first: List[str] = []
        try:
            defaults = nested.resolve([])
            jobs = defaults.jobs
            first = defaults.first
        except MissingSource as missing:  # found without a recorded query: record it
            nested.queries.append(("exists", missing.path, False))
            jobs = []
        except UsageError:
            jobs = []
        finally:
            # What the answer depends on: the graph cache must see those files change too.
            self.queries.extend(nested.queries)
            self.listings.extend(nested.listings)
        inside = [
            self.job_for(job.rule, job.wildcards)
            for job in jobs
            if any(output.startswith(prefix) for output in job.outputs)
        ]
        if inside:
            # Directory outputs whose contents decided those jobs (a foreach over chunks/): a
            # build makes them first and resolves again, as for the defaults themselves. Not
            # for a path with nothing made under it (a source file named as a target).
            self._first_from_defaults.extend(first)
        return inside

    def _alias_paths(self, item: str, alias: RuleSpec) -> List[Tuple[str, bool]]:
        """An alias item with its braces unescaped, and whether it is a glob (glob characters
        written in it, not brought by values); with wildcards, one path per combination of the
        alias's foreach values (Snakemake's `expand`), filled as a rule's inputs are."""
        is_glob = paths.is_written_glob(item)
        names = list(dict.fromkeys(wildcard_names_in(item)))
        if not names:
            return [(paths.unescape(item), is_glob)]
        return [(paths.fill(item, combo, is_glob), is_glob) for combo in self.foreach_combos(alias, names)]

    def _resolve_alias_item(
        self, literal: str, is_glob: bool, item: str, alias: RuleSpec, aliases: Tuple[str, ...]
    ) -> List[Job]:
        """The jobs one alias item names (`literal`: the item with braces and wildcards done)."""
        if is_glob:
            expanded = self._expand_input(literal, alias)
            if expanded != [paths.normalize(literal)]:  # the jobs that make what it matched
                self.wanted_paths.extend(expanded)
                jobs = (self.producer(match, {}) for match in expanded)
                return [job for job in jobs if job is not None]
        path = paths.normalize(literal)
        job = self.producer(path, {})
        if job is not None:
            self.wanted_paths.append(path)
            return [job]
        # A rule name wins over a file of the same name (the rule's outputs may exist already).
        if item in self.manifest.rules:
            try:
                return self.resolve_target(item, aliases)
            except (ManifestError, MissingSource, CycleError):
                raise
            except UsageError as exc:  # (a pattern rule named): said at the alias's inputs
                raise _key_error(alias, "inputs", self.manifest.path, f"names rule '{item}': {exc.message}", exc.hint) from None
        made_under = self._jobs_under(path)  # a directory the rules write into, as a target
        if made_under is not None:
            return made_under
        if self.exists(path):
            return []
        raise self._missing_source(paths.normalize(literal), alias, f"rule '{alias.name}'")

    def resolve(self, targets: Sequence[str]) -> Graph:
        """Build the graph of every job needed for `targets` (default targets if empty)."""
        requested = list(targets) or self.manifest.default_targets()
        roots: List[Job] = []
        root_keys: Set[str] = set()  # a rule or directory target may name 100k jobs
        for target in requested:
            try:
                jobs = self.resolve_target(target)
            except UsageError as exc:
                if targets or isinstance(exc, (ManifestError, MissingSource, CycleError)):
                    raise  # (a missing source names who needs it; watch mode waits for it)
                if not self.manifest.default:
                    # No target named and no `default`: the first rule, which the user may not
                    # know is what a bare `weave build` builds.
                    rule = self.manifest.rules.get(target)
                    line = rule.line if rule is not None else None
                    path = (rule.path if rule is not None else None) or self.manifest.path  # (perhaps an included file)
                    where = f"{path}:{line}" if line else path
                    raise UsageError(
                        f"with no `default` in the Weavefile, weave builds its first rule, '{target}' ({where}): "
                        + exc.message,
                        hint="add `default = [...]` naming what to build (outputs or rules), or put a rule without wildcards first",
                    ) from None
                # A target the Weavefile's `default` names: say where it comes from.
                line = line_in_file(self.manifest.path, None, "default")
                where = f"{self.manifest.path}:{line}" if line else self.manifest.path
                raise UsageError(f"{exc.message} (in default, {where})", hint=exc.hint) from None
            for job in jobs:
                if job.key not in root_keys:
                    root_keys.add(job.key)
                    roots.append(job)
        order: List[Job] = []
        state: Dict[str, int] = {}  # 0 = on the stack, 1 = done
        producers: Dict[str, Job] = {}
        sources: Dict[str, List[Job]] = {}
        active_rules: Dict[str, int] = {}
        inside_of: Dict[str, List[str]] = {}  # directory input -> the exact outputs in it
        expanded: Dict[str, Set[str]] = {}  # directory input -> the jobs it gave dependencies
        own_dirs: Dict[str, Set[str]] = {}  # job key -> the directories its outputs are in
        # Sources whose every check but the reading job's own is done: no rule makes them,
        # whatever chain asks (no pattern rule was passed over for being in the chain), they
        # hold no other job's outputs, and they exist. A header that 1,000 jobs read is
        # resolved once, not once per reader.
        plain_sources: Set[str] = set()
        weavefile = self.manifest.path

        def visit(root: Job) -> None:
            state[root.key] = 0
            active_rules[root.rule.name] = active_rules.get(root.rule.name, 0) + 1
            stack: List[Tuple[Job, Iterator[str], Set[str]]] = [(root, _needed_paths(root), set())]
            while stack:
                job, pending, dep_keys = stack[-1]
                descended = False
                for path in pending:
                    dep = producers.get(path)
                    if dep is None:
                        if path in plain_sources:
                            if job.outputs:
                                held = own_dirs.get(job.key)
                                if held is None:
                                    held = own_dirs[job.key] = {parent for output in job.outputs for parent in _ancestors(output)}
                                if path in held:
                                    _refuse_own_directory(job, path, weavefile, own_dirs)
                            sources[path].append(job)
                            continue
                        self._passed_over = []
                        dep = self.producer(path, active_rules)
                    if dep is None:
                        # A directory input that other jobs write files into (`data/`, holding
                        # `data/clean.csv` of another rule): its content is theirs too, so it
                        # depends on them, as a directory target does. Their outputs are taken
                        # as this job's next paths to depend on (not as inputs: the directory's
                        # digest covers them), and the directory need not exist yet.
                        if job.outputs:  # (a job without outputs runs every time anyway)
                            _refuse_changing_input(job, path, weavefile, own_dirs)
                            if paths.is_outside(path):
                                self._refuse_project_ancestor(job, path)
                        inside = inside_of.get(path)
                        if inside is None:
                            inside = inside_of[path] = self.index.outputs_inside(path)
                        if inside and job.key not in expanded.setdefault(path, set()):
                            expanded[path].add(job.key)
                            sources.setdefault(path, []).append(job)
                            stack[-1] = (job, itertools.chain(inside, pending), dep_keys)
                            descended = True
                            break
                        if path not in sources:
                            if not self._exists_rel(os.path.join(self.root, path)):
                                if self._missing_ok:
                                    self.missing[path] = None
                                    sources[path] = []
                                    sources[path].append(job)
                                    continue
                                _refuse_unreadable(os.path.join(self.root, path), path)
                                for passed_over in self._passed_over:
                                    _refuse_pattern_cycle(passed_over, [entry[0] for entry in stack])
                                raise self._missing_source(
                                    path,
                                    job.rule,
                                    f"rule '{job.rule.name}'" + (f" (job {job.key})" if job.wildcards else ""),
                                    hint=self._rule_named_hint(path)
                                    or self._constraint_hint(path)
                                    or self._elsewhere_hint(path)
                                    or self._leftover_hint(job, stack[-2][0] if len(stack) > 1 else None),
                                    key="order_only" if path in job.order_only and path not in job.inputs else "inputs",
                                )
                            sources[path] = []
                        sources[path].append(job)
                        if job.outputs and not inside and not self._passed_over:  # (its checks ran)
                            plain_sources.add(path)
                        continue
                    producers[path] = dep
                    if dep is job:
                        cycle = CycleError([job.display, job.display], _cycle_rules([job], weavefile))
                        if any("{" in item or not paths.GLOB_CHARS.isdisjoint(item) for item in job.rule.inputs):
                            cycle.hint = (
                                f"its own output '{path}' matches one of its input patterns or globs: write the"
                                " output elsewhere, or narrow the pattern (a wildcards constraint, a stricter glob)"
                            )
                        raise cycle
                    if dep.key not in dep_keys:
                        dep_keys.add(dep.key)
                        job.deps.append(dep)
                    status = state.get(dep.key)
                    if status is None:
                        state[dep.key] = 0
                        active_rules[dep.rule.name] = active_rules.get(dep.rule.name, 0) + 1
                        stack.append((dep, _needed_paths(dep), set()))
                        descended = True
                        break
                    if status == 0:
                        names = [entry[0].display for entry in stack]
                        start = next(i for i, entry in enumerate(stack) if entry[0] is dep)
                        on_it = [entry[0] for entry in stack[start:]]
                        raise CycleError(names[start:] + [dep.display], _cycle_rules(on_it, weavefile))
                if not descended:
                    state[job.key] = 1
                    active_rules[job.rule.name] -= 1
                    for output in job.outputs:
                        producers[output] = job
                    order.append(job)
                    stack.pop()
        for root in roots:
            if root.key not in state:
                visit(root)
        # Directory outputs whose contents a scan read: the one its glob lists from (or one
        # holding it), and those below it that the glob reaches (`data/**/*.txt` and a rule
        # making `data/gen/`). Their jobs join the graph (the build makes them first, then
        # resolves again), with what they need.
        first: List[str] = []
        looked: Set[str] = set()
        waiting: Set[str] = set()  # globs into a directory output not made yet: empty for now
        for directory in self._first_from_defaults:  # a directory target's (_default_jobs)
            found = self._directory_output_of(directory)
            if found is not None and found[1] not in first:
                first.append(found[1])
                if found[0].key not in state:
                    visit(found[0])
        while True:
            needed = {job.rule.name for job in order} | self._rules_named
            more = [glob for glob in self.scanned if glob not in looked and self.scanned_for[glob] & needed]
            if not more:
                break
            for glob in more:
                looked.add(glob)
                root = paths.scan_root(glob)
                directories = [root] if root else []
                directories += [d for d in self._static_dirs_below(root) if paths.glob_may_reach(glob, d)]
                for directory in directories:
                    found = self._directory_output_of(directory)
                    if found is None:
                        continue
                    job, output = found
                    if output not in first:
                        first.append(output)
                    if job.key not in state:
                        visit(job)
                    self._check_latent_cycle(job, self.scanned_by.get(glob, ()))
                    if not self.exists(output):
                        waiting.add(glob)
        if first:
            # The jobs that make those directories, and what they need, come first: the order
            # they run in (and `weave plan` lists them in), still dependencies first.
            early: Set[str] = set()
            pending = [producers[output] for output in first if output in producers]
            while pending:
                job = pending.pop()
                if job.key not in early:
                    early.add(job.key)
                    pending.extend(job.deps)
            order = [job for job in order if job.key in early] + [job for job in order if job.key not in early]
        for job in order:
            for dep in job.deps:
                dep.dependents.append(job)
        _check_nesting(order)
        _check_depfiles(order, producers, sources, self.manifest.path)
        _check_order_only(order, producers, self.manifest.path)
        if any(job.rule.log is not None for job in order):
            _check_logs(order, producers, sources, self.manifest.path, self.scanned, self.scanned_for, self.manifest.rules)
        graph = Graph(self.manifest, order, roots, producers, sources, requested)
        for name, all_globs in self._empty_globs.items():
            # One line per rule: a pattern rule's 5,000 jobs, each with a glob that matches
            # nothing yet, are one thing to say. A glob into a directory the build makes first
            # is read again once it is made.
            globs = [glob for glob in all_globs if glob not in waiting]
            if not globs:
                continue
            first_glob = globs[0]
            more = f" (and {len(globs) - 1:,} more of its jobs' globs)" if len(globs) > 1 else ""
            self.warnings.append(
                f"rule '{name}': input glob '{first_glob}' matches no file{more} "
                "(globs see existing files and other rules' exact outputs; for a pattern rule's outputs,"
                " use a foreach over the sources they are made from)"
            )
        for name, message in self._no_jobs.items():
            # Not for a foreach over a directory the build makes first (its values come then).
            if not any(name in self.scanned_for[glob] for glob in waiting):
                self.warnings.append(message)
        for rule in {job.rule.name: job.rule for job in order if job.rule.foreach}.values():
            for key in _unused_foreach_keys(rule):
                self.warnings.append(
                    f"rule '{rule.name}': foreach key '{key}' is used in none of its inputs, outputs or"
                    " command, so its values change nothing"
                )
        graph.warnings = list(dict.fromkeys(self.warnings))
        graph.queries = self.queries
        graph.first = first
        graph.missing = list(self.missing)
        graph.inside = list(dict.fromkeys(self.inside_targets))
        graph.wanted = list(dict.fromkeys(self.wanted_paths))
        return graph

    def _static_dirs_below(self, root: str) -> List[str]:
        """The exact directory outputs strictly inside `root` ('' for the project directory):
        a range of the sorted list, so that thousands of jobs' globs do not each test every
        directory output."""
        if self._sorted_dirs is None:
            self._sorted_dirs = sorted(self.index.static_dirs)
        if not root:
            return self._sorted_dirs
        prefix = root + "/"
        start = bisect.bisect_left(self._sorted_dirs, prefix)
        found: List[str] = []
        for directory in itertools.islice(self._sorted_dirs, start, None):
            if not directory.startswith(prefix):
                break
            found.append(directory)
        return found

    def _check_latent_cycle(self, producer: Job, readers: Iterable[str]) -> None:
        """A job of a rule in `readers` lists what `producer` makes in a directory, so it will
        depend on it once the directory is made: if `producer` needs that job (its job or its
        ancestor), that is a cycle, to be refused before anything runs."""
        readers = set(readers)
        if not readers:
            return
        seen: Set[str] = set()
        stack: List[Tuple[Job, List[str]]] = [(producer, [producer.display])]
        while stack:
            job, trail = stack.pop()
            for dep in job.deps:
                if dep.key in seen:
                    continue
                seen.add(dep.key)
                if dep.rule.name in readers:
                    raise CycleError(
                        [dep.display] + list(reversed(trail)) + [dep.display],
                        _cycle_rules([dep, producer], self.manifest.path),
                    )
                stack.append((dep, trail + [dep.display]))

    def _constraint_hint(self, path: str) -> Optional[str]:
        """For a missing input that a pattern rule would make but for a wildcard constraint
        (a foreach value the rule's `wildcards` regex refuses): which rule, which value."""
        for rule in self.manifest.rules.values():
            for output in rule.outputs:
                if "{" not in output:
                    continue
                loose, _ = paths.compile_pattern(output, {})
                match = loose.match(path)
                if match is None:
                    continue
                for name, value in match.groupdict().items():
                    constraint = rule.wildcard_regex.get(name)
                    if constraint and paths.compile_regex(constraint).fullmatch(value) is None:
                        return (
                            f"rule '{rule.name}' makes paths like '{output}', but {name} = '{value}' "
                            f"does not match its constraint wildcards.{name} = '{constraint}'"
                        )
        return None

    def _missing_source(
        self, path: str, rule: RuleSpec, needed_by: str, hint: Optional[str] = None, key: str = "inputs"
    ) -> MissingSource:
        """The error for a source that does not exist: where the rule names it (its inputs'
        line, read again from its file) and, for a likely typo, the path it is close to (a file
        beside it, or a rule's output)."""
        # A path written out can be mistyped; one a wildcard's value filled in names a sample
        # that is missing, and a file of another sample is no answer.
        written = any("{" not in pattern and paths.normalize(pattern) == path for pattern in rule.inputs)
        if hint is None and written and "%" in path:
            hint = (
                "make's % is written as a named wildcard in weave: outputs = [\"{name}.o\"] with"
                " inputs = [\"{name}.c\"], and {wildcards.name} in the command"
            )
        if hint is None:
            hint = _broken_link_hint(os.path.join(self.root, path), path)
        if hint is None:
            logger = self._log_of(path)
            if logger is not None:
                hint = (
                    f"it is the log of rule '{logger.name}', which no job may read (nothing waits for it):"
                    " to read it, make it an output of that rule instead"
                )
        if hint is None and written:
            close = self._near_path(path, rule)
            if close is not None:
                hint = f"{did_you_mean(path, close)} Otherwise create the file, or add a rule that makes it"
        if key == "order_only":
            needed_by += " (in its order_only)"
        return MissingSource(path, needed_by, hint=hint, where=_where(rule, key, self.manifest.path))

    def _log_of(self, path: str) -> Optional[RuleSpec]:
        """The rule whose `log` pattern `path` matches, if any (for a missing source's hint)."""
        for rule in self.manifest.rules.values():
            if rule.log is not None and paths.compile_pattern(rule.log, rule.wildcard_regex)[0].fullmatch(path):
                return rule
        return None

    def _near_path(self, path: str, reader: RuleSpec) -> Optional[str]:
        """An existing file in the directory of `path`, or an exact output of a rule other than
        its reader's (which would be a cycle), whose path is close to it."""
        if os.path.isabs(path) or paths.is_outside(path):
            return None
        directory = os.path.dirname(path)
        try:
            with os.scandir(os.path.join(self.root, directory)) as entries:
                beside = [os.path.join(directory, entry.name) for entry in itertools.islice(entries, 10000)]
        except OSError:
            beside = []
        made = [output for output, (rule, _) in self.index.static.items() if rule is not reader]
        own = {paths.normalize(output) for output in reader.outputs}
        close = closest(path, [file for file in beside if file not in own and file != path] + made, cutoff=0.8)
        if close is None:
            return None
        # Alike as whole paths can still be other files of one directory (data/iris.csv and
        # data/train.csv): the file names themselves must be alike too.
        import difflib

        name, other = os.path.basename(path), os.path.basename(close)
        alike = max(difflib.SequenceMatcher(None, name, other).ratio(), difflib.SequenceMatcher(None, other, name).ratio())
        return close if alike >= 0.75 else None

    def _refuse_project_ancestor(self, job: Job, path: str) -> None:
        """Refuse a source input outside the project that holds it (`/`, `..`): like the
        project directory itself, it holds weave's own state, which every build changes, and
        reading it means reading the whole of it (all of the file system, for `/`)."""
        try:
            real = os.path.realpath(os.path.join(self.root, path))
            if not os.path.isdir(real):
                return
            holds = paths.real_within(os.path.realpath(self.root), real)
        except OSError:
            return
        if holds:
            raise _key_error(
                job.rule, "inputs", self.manifest.path,
                f"input '{path}' holds the project directory: it changes with every build (weave's"
                " state is in it), so the job would never be up to date",
                hint="list the files or directories the job reads, or a glob such as '../data/*.csv'",
            )

    def _leftover_hint(self, job: Job, reader: Optional[Job]) -> Optional[str]:
        """When `job` (missing a source) is needed only because a glob of `reader` matched an
        output of it that exists: most likely a file left over from an earlier build, whose
        source has gone since (a sample removed). Say so, rather than only 'create the file'."""
        if reader is None:
            return None
        for pattern in reader.rule.inputs:
            if not paths.is_written_glob(pattern):
                continue
            for output in job.outputs:
                if paths.glob_matches(paths.normalize(pattern), output) and self._exists_rel(os.path.join(self.root, output)):
                    return (
                        f"{job.display} is needed because the glob '{pattern}' of rule '{reader.rule.name}'"
                        f" matches {output}, which exists: if it is left over from an earlier build, delete"
                        " it; otherwise create the missing file"
                    )
        return None

    def _elsewhere_hint(self, path: str) -> Optional[str]:
        """A missing source that exists relative to the current directory, when the Weavefile
        is elsewhere (`weave -f exp/fast.toml`): its paths are relative to its own directory."""
        try:
            here = os.getcwd()
        except OSError:
            return None
        if os.path.realpath(here) == os.path.realpath(self.root) or not os.path.exists(os.path.join(here, path)):
            return None
        where = os.path.relpath(self.root, here)
        return (
            f"'{path}' is in the current directory, but the paths in a Weavefile are relative to the directory"
            f" it is in ({where}/): keep a variant of the Weavefile at the top of the project (weave -f"
            f" fast.toml), or write the path from {where}/"
        )

    def _rule_named_hint(self, path: str) -> Optional[str]:
        """For a missing input that is a rule's name (make's `train: prep`): what to write."""
        rule = self.manifest.rules.get(path)
        if rule is None:
            return None
        if rule.outputs or rule.is_alias:
            listed = rule.outputs or rule.inputs  # an alias: the files (or rules) it names
            shown = ", ".join(f'"{item}"' for item in listed[:3]) + (", ..." if len(listed) > 3 else "")
            return f"'{path}' is a rule, and inputs are files: list its outputs instead ({shown})"
        return (
            f"'{path}' is a rule, and inputs are files: a rule's job runs before another only if "
            "it makes a file that one reads; give it an output"
        )

    def _directory_output_of(self, directory: str) -> Optional[Tuple[Job, str]]:
        """The job whose directory output is or holds `directory`, and that output; None if
        no job makes it (a source directory)."""
        try:
            job = self.producer(directory, {})
        except (UsageError, ManifestError):  # ambiguous patterns: resolution itself reports them
            return None
        if job is None:
            return None
        for output, is_dir in zip(job.outputs, job.dir_outputs):
            if is_dir and (directory == output or directory.startswith(output + "/")):
                return job, output
        return None


def build_graph(
    manifest: Manifest, targets: Sequence[str] = (), exists: Callable[[str], bool] = os.path.exists
) -> Graph:
    """The job graph of `manifest` for `targets` (the default targets when empty)."""
    return Resolver(manifest, exists).resolve(targets)

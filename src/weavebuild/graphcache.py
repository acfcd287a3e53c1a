"""A cache of resolved job graphs in `.weave/graph.cache`, so a no-op build skips TOML parsing,
validation and wildcard expansion.

An entry is keyed by the Weavefile's digest and the requested targets, and stores every
file-system question resolution asked (globs, foreach scans, existence checks) with its answer.
It is used only if each question still gets the same answer and every source still exists, so
it can never change what a build does: it only saves the work of recomputing the graph.
Owns the cache format; knows graphs and paths, nothing of the store or of scheduling.
"""

from __future__ import annotations

import marshal
import operator
import os

import xxhash

from . import paths
from ._version import __version__
from .projectfile import read_regular_file

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

    from .jobs import Graph, Job, RuleSpec

CACHE_NAME = os.path.join(".weave", "graph.cache")
FORMAT = 16  # 16: a job's order_only paths; 15: a rule's line is not kept; 14: a job's log; 13: a directory input depends on the jobs writing into it
MAX_ENTRIES = 8


class ManifestSummary:
    """What builds need of a Weavefile that was not parsed: where it is and its totals."""

    def __init__(self, path: str, digest: str, default: List[str], resources: Dict[str, float]):
        self.path = path
        self.root = os.path.dirname(os.path.abspath(path))
        self.digest = digest
        self.default = default
        self.resources = resources

    def default_targets(self) -> List[str]:
        return list(self.default)


_memo: Dict[Tuple[str, int, int], Dict] = {}


def _read(root: str) -> Dict:
    path = os.path.join(root, CACHE_NAME)
    try:
        st = os.stat(path)
        memo_key = (path, st.st_mtime_ns, st.st_size)
        data = _memo.get(memo_key)
        if data is None:
            blob = read_regular_file(path)  # (marshal.load(file) reads piecemeal: slow)
            # A damaged cache must cost a resolution, never a job run from a command the
            # Weavefile does not hold (recorded under the signature of the one it does).
            if blob[:8] != xxhash.xxh3_64_digest(blob[8:]):
                return {}
            data = marshal.loads(memoryview(blob)[8:])
            _memo.clear()
            _memo[memo_key] = data
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("weave") != __version__:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


DIGESTS_NAME = CACHE_NAME + ".digests"


def known_digests(root: str) -> List[str]:
    """Digests of Weavefiles that parsed without error before (each cached entry had one).

    Read from a small side file, so that deciding whether to parse costs nothing."""
    try:
        return read_regular_file(os.path.join(root, DIGESTS_NAME)).decode("ascii").split()
    except (OSError, ValueError):  # no side file (yet), or not one weave wrote: made again
        digests = list(dict.fromkeys(key[0] for key in _read(root)))
        if digests:
            paths.replace_file(os.path.join(root, DIGESTS_NAME), ("\n".join(digests) + "\n").encode())
        return digests


# Directory stats that vouch for glob and foreach answers (paths.listing_of): query without
# its answer -> (listing, digest of the answer then). A side file, so that recording one after a
# re-listing rewrites a few hundred bytes, not the graph cache.
LISTINGS_NAME = os.path.join(".weave", "listings")
# Entries kept: one per glob or foreach question (a project can ask thousands: a foreach per
# job); past this many, the oldest half goes. (It was 256, and past it every no-op re-listed
# its directories: 1,600 globs took a 17 s no-op.)
MAX_LISTINGS = 65536


def still_valid(root: str, queries: Sequence[tuple]) -> bool:
    """Whether every recorded file-system question still gets the recorded answer. A glob or
    foreach scan is not run again while the one directory it lists has kept its stat since a
    listing that gave the same answer (re-listing a 10k-file directory costs ~25 ms)."""
    listings: Optional[Dict] = None
    recorded = False
    try:
        for query in queries:
            kind = query[0]
            if kind == "exists":
                path = query[1] if os.path.isabs(query[1]) else os.path.join(root, query[1])
                if os.path.exists(path) != query[2]:
                    return False
                continue
            if kind == "roots":  # absolute inputs were (or were not) project paths under these
                if paths.project_spellings(root) != tuple(query[1]):
                    return False
                continue
            if kind not in ("glob", "foreach") or (kind == "foreach" and len(query) != 6):
                return False  # not a question this weave asks (an older one's foreach: ask again)
            if listings is None:
                listings = _read_listings(root)
            question, answer = tuple(query[:-1]), query[-1]
            digest = _answer_digest(answer)
            if _vouched(root, listings.get(question), digest):
                continue
            # The directory's stat is taken before the scan: a change during the scan shows.
            pattern = query[1] if kind == "glob" else paths.foreach_glob(query[2], dict(query[3]), dict(query[4]))
            listing = paths.listing_of(root, pattern)
            if _scan(root, query) != answer:
                return False
            if listing is not None:
                listings[question] = (listing, digest)
                recorded = True
        return True
    finally:
        if recorded and listings is not None:
            _write_listings(root, listings)


def record_listings(root: str, found: Sequence[Tuple[tuple, paths.Listing]]) -> None:
    """Keep the directory stats a resolution took before its scans (Resolver.listings), so
    that the next check need not scan again."""
    if not found:
        return
    listings = _read_listings(root)
    for query, listing in found:
        listings[tuple(query[:-1])] = (listing, _answer_digest(query[-1]))
    _write_listings(root, listings)


def _vouched(root: str, seen: object, digest: bytes) -> bool:
    """Whether a recorded (listing, answer digest) stands for `digest` now."""
    try:
        listing, recorded = seen  # type: ignore[misc]
        return bool(recorded == digest and paths.listing_unchanged(root, listing))
    except (TypeError, ValueError, IndexError):  # nothing recorded, or not what we write
        return False


def _answer_digest(answer: tuple) -> bytes:
    # repr, not marshal: marshal's bytes for equal tuples differ with how the objects are
    # shared and interned (an answer just computed against one loaded from the cache).
    # xxhash: loaded anyway, hashlib is not.
    return xxhash.xxh3_128_digest(repr(answer).encode("utf-8", "surrogatepass"))


def _scan(root: str, query: tuple) -> tuple:
    """The answer a glob or foreach question gets now."""
    if query[0] == "glob":
        return tuple(paths.expand_glob(root, query[1]))
    _, keys, spec, constraints, bound, _ = query
    return tuple(paths.foreach_tuples(root, keys, spec, dict(constraints), dict(bound)))


def _read_listings(root: str) -> Dict:
    try:
        data = marshal.loads(read_regular_file(os.path.join(root, LISTINGS_NAME)))
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) and len(data) <= MAX_LISTINGS else {}


def _write_listings(root: str, listings: Dict) -> None:
    if len(listings) > MAX_LISTINGS:  # patterns come and go: start over rather than grow
        listings = dict(list(listings.items())[-MAX_LISTINGS // 2 :])
    if os.path.isdir(os.path.join(root, ".weave")):
        paths.replace_file(os.path.join(root, LISTINGS_NAME), marshal.dumps(listings))


def load(
    root: str,
    digest: str,
    targets: Sequence[str],
    manifest_path: str,
    source_exists: Callable[[str], bool],
) -> Optional[Graph]:
    """The cached graph for `targets`, or None if there is none or it may be stale."""
    entry = _read(root).get((digest, tuple(targets)))
    return None if entry is None else _current(root, entry, manifest_path, digest, source_exists)


def _current(
    root: str, entry: Dict, manifest_path: str, digest: str, source_exists: Callable[[str], bool]
) -> Optional[Graph]:
    """The graph of `entry` if every question it asked gets the same answer and every source
    exists; else None."""
    try:
        if not still_valid(root, entry["queries"]):
            return None
        for source in entry["sources"]:
            if not source_exists(source):
                return None  # let the full resolution report the missing source properly
        return _rebuild(entry, manifest_path, digest)
    except (KeyError, IndexError, TypeError, ValueError, EOFError):
        return None


def save(
    root: str, digest: str, targets: Sequence[str], graph: Graph, queries: List[tuple], static: bool = False
) -> None:
    """Add the graph for (Weavefile digest, targets) to the cache; best effort, atomic.
    `static`: the Weavefile has no pattern rules (every job's outputs are known without a
    path asking for them), so that other targets' graphs may be cut out of this one (derive)."""
    state_dir = os.path.join(root, ".weave")
    if not os.path.isdir(state_dir):
        return
    entry = _flatten(graph, queries)
    entry["static"] = static
    entries = _read(root)
    entries.pop((digest, tuple(targets)), None)
    while len(entries) >= MAX_ENTRIES:
        entries.pop(next(iter(entries)))
    entries[(digest, tuple(targets))] = entry
    try:
        data = marshal.dumps({"format": FORMAT, "weave": __version__, "entries": entries})
    except ValueError:  # pragma: no cover - graphs hold only marshallable values
        return
    data = xxhash.xxh3_64_digest(data) + data  # checked by _read
    if paths.replace_file(os.path.join(root, CACHE_NAME), data):
        digests = "\n".join(dict.fromkeys(key[0] for key in entries)) + "\n"
        paths.replace_file(os.path.join(root, DIGESTS_NAME), digests.encode())


_RULE_FIELDS = (
    "inputs",
    "outputs",
    "cmd",
    "wildcard_names",
    "resources",
    "cpus",
    "retries",
    "retry_delay",
    "timeout",
    "description",
    "path",
    "temp",
    "depfile",
    "log",
    "order_only",
)


assert _RULE_FIELDS[:2] == ("inputs", "outputs")  # lists; the other fields are scalars, tuples or dicts
_rule_values = operator.attrgetter(*_RULE_FIELDS)


def _flatten(graph: Graph, queries: List[tuple]) -> Dict:
    index = {job.key: position for position, job in enumerate(graph.jobs)}
    rules: Dict[str, bytes] = {}
    jobs: List[bytes] = []
    for job in graph.jobs:
        rule = job.rule
        if rule.name not in rules:
            values = _rule_values(rule)  # inputs and outputs first: the only lists
            # a blob per rule too, for the same reason
            rules[rule.name] = marshal.dumps((tuple(values[0]), tuple(values[1])) + values[2:])
        jobs.append(
            marshal.dumps(  # one blob per job: a partial build decodes only the jobs it needs
                (
                    job.key,
                    rule.name,
                    job.wildcards,
                    tuple(job.inputs),
                    tuple(job.outputs),
                    job.dir_outputs,
                    job.cmd,
                    job.env,
                    job.vars,
                    tuple([index[dep.key] for dep in job.deps]),
                    job.display,
                    job.recipe or "",
                    job.depfile,
                    job.log,
                    tuple(job.order_only),
                )
            )
        )
    manifest = graph.manifest
    return {
        "queries": queries,
        "rules": rules,
        "jobs": jobs,
        # Every job's outputs in one blob: cutting a target's graph out of this one (derive)
        # finds its maker without decoding every job.
        "outputs": marshal.dumps(tuple(tuple(job.outputs) for job in graph.jobs)),
        "targets": tuple(index[job.key] for job in graph.targets),
        "requested": tuple(graph.requested),
        "sources": tuple(graph.sources),
        "default": tuple(manifest.default_targets()),
        "resources": dict(manifest.resources),
        "warnings": tuple(graph.warnings),
        "first": tuple(graph.first),
        "inside": tuple(graph.inside),
        "wanted": tuple(graph.wanted),
    }


def _rules(entry: Dict, names: Optional[Sequence[str]] = None) -> Dict[str, RuleSpec]:
    from .jobs import RuleSpec

    rules: Dict[str, RuleSpec] = {}
    table = entry["rules"]
    for name in table if names is None else names:
        rule = RuleSpec(name)
        for field, value in zip(_RULE_FIELDS, marshal.loads(table[name])):
            setattr(rule, field, list(value) if field in ("inputs", "outputs") else value)
        rules[name] = rule
    return rules


def _job(data: tuple, rules: Dict[str, RuleSpec]) -> Tuple[Job, Sequence[int]]:
    from .jobs import Job

    key, rule_name, wildcards, inputs, outputs, dirs, cmd, env, variables, deps, display, recipe, depfile, log, order_only = data
    job = Job(key, rules[rule_name], wildcards)
    job.inputs = list(inputs)
    job.outputs = list(outputs)
    job.dir_outputs = dirs
    job.cmd = cmd
    job.env = env
    job.vars = variables
    job.display = display
    job.recipe = recipe or None
    job.depfile = depfile
    job.log = log
    job.order_only = list(order_only)
    return job, deps


def _graph(
    entry: Dict, manifest_path: str, digest: str, jobs: List[Job], targets: List[Job], part: bool = False
) -> Graph:
    from .jobs import Graph

    for job in jobs:
        for dep in job.deps:
            dep.dependents.append(job)
    if part:  # only the sources its jobs read (a part of 2 jobs of a 10k-source graph)
        every = set(entry["sources"])
        sources: Dict[str, List[Job]] = {
            path: [] for job in jobs for path in job.inputs + job.order_only if path in every
        }
    else:
        sources = {source: [] for source in entry["sources"]}
    for job in jobs:  # each source's readers, as resolution gives them (`weave graph` draws them)
        for path in job.inputs:
            readers = sources.get(path)
            if readers is not None:
                readers.append(job)
    summary = ManifestSummary(manifest_path, digest, list(entry["default"]), entry["resources"])
    graph = Graph(summary, jobs, targets, None, sources, list(entry["requested"]))  # type: ignore[arg-type]
    graph.warnings = list(entry.get("warnings", ()))
    graph.queries = list(entry["queries"])
    graph.first = list(entry.get("first", ()))
    graph.inside = list(entry.get("inside", ()))
    graph.wanted = list(entry.get("wanted", ()))
    return graph


def derive(
    root: str,
    digest: str,
    targets: Sequence[str],
    manifest_path: str,
    source_exists: Callable[[str], bool],
) -> Optional[Graph]:
    """The graph for `targets` cut out of a cached graph of the same Weavefile that has a job
    making each of them: `weave build some/output` in a project of 100k rules then needs
    neither the Weavefile parsed nor a resolution (7 s). Not saved: an entry per target
    would soon push the default targets' graph out of the cache, and cutting costs little.

    It is what resolving them gives: the jobs they need with the same dependencies, in the
    same order (depth first, each job's dependencies in the order of its inputs). So only
    where the way resolution reached a job cannot matter: a Weavefile without pattern rules
    (whose choice among rules depends on the chain that asked), a cached graph with no
    directory made first for a scan and no warnings, and targets that are exact outputs,
    written with a slash (a name without one may be a rule's). None when no cached graph can
    tell, or one may be stale (then the targets are resolved)."""
    wanted: List[str] = []
    for target in targets:
        path = paths.normalize(target) if "/" in target else ""
        if not path or path == "." or paths.is_outside(path):
            return None
        wanted.append(path)
    if not wanted:
        return None
    for (entry_digest, _), entry in _read(root).items():
        if entry_digest != digest or entry.get("static") is not True or entry.get("first") or entry.get("warnings"):
            continue
        try:
            cut = _cut(entry, targets, wanted)
        except (KeyError, IndexError, TypeError, ValueError, EOFError):
            cut = None
        if cut is not None:
            return _current(root, cut, manifest_path, digest, source_exists)
    return None


def _cut(entry: Dict, targets: Sequence[str], wanted: Sequence[str]) -> Optional[Dict]:
    """The entry for `targets` (their normalized paths `wanted`) out of `entry`, or None if
    one of them is not an output of its jobs."""
    blobs = entry["jobs"]
    outputs = marshal.loads(entry["outputs"])
    if len(outputs) != len(blobs):
        return None
    maker: Dict[str, int] = {}
    for index, made in enumerate(outputs):
        for output in made:
            maker[output] = index
    decoded = _LazyJobs(blobs)  # only the jobs the walk reaches are decoded
    roots: List[int] = []
    rooted: Set[int] = set()  # (a list's `in` made 32k targets on the command line quadratic)
    for path in wanted:
        index = maker.get(path)
        if index is None:
            return None
        if index not in rooted:
            rooted.add(index)
            roots.append(index)
    # The walk Resolver.resolve makes: each job's inputs in order, a source noted where first
    # read, a job that makes an input visited before the rest of the inputs.
    source_set = set(entry["sources"])
    order: List[int] = []
    sources: Dict[str, None] = {}
    seen = set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(decoded[root][3]))]
        while stack:
            index, pending = stack[-1]
            for path in pending:
                if path in source_set:
                    sources[path] = None
                    continue
                dep = maker.get(path)
                parent = path
                while dep is None and "/" in parent:  # a file inside a directory output
                    parent = parent.rpartition("/")[0]
                    dep = maker.get(parent)
                if dep is None or dep not in decoded[index][9]:
                    return None  # not as the cached resolution has it: resolve
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, iter(decoded[dep][3])))
                    break
            else:
                stack.pop()
                order.append(index)
    position = {index: n for n, index in enumerate(order)}
    jobs = [
        marshal.dumps(decoded[index][:9] + (tuple([position[dep] for dep in decoded[index][9]]),) + decoded[index][10:])
        for index in order
    ]
    cut = dict(entry)
    cut.pop("outputs", None)
    cut.update(
        jobs=jobs,
        targets=tuple(position[root] for root in roots),
        requested=tuple(targets),
        sources=tuple(sources),
        first=(),
        inside=(),
        wanted=tuple(dict.fromkeys(wanted)),
        warnings=(),
    )
    return cut


class _LazyJobs:
    """The cached jobs' blobs, each decoded when first indexed."""

    def __init__(self, blobs: Sequence[bytes]):
        self._blobs = blobs
        self._decoded: Dict[int, tuple] = {}

    def __getitem__(self, index: int) -> tuple:
        data = self._decoded.get(index)
        if data is None:
            data = self._decoded[index] = marshal.loads(self._blobs[index])
        return data


def _rebuild(entry: Dict, manifest_path: str, digest: str) -> Graph:
    decoded = [marshal.loads(blob) for blob in entry["jobs"]]
    # Only the rules these jobs belong to (a target's graph cut out of 100k rules has one).
    rules = _rules(entry, list(dict.fromkeys([data[1] for data in decoded])))
    jobs: List[Job] = []
    for data in decoded:
        job, deps = _job(data, rules)
        job.deps = [jobs[i] for i in deps]
        jobs.append(job)
    return _graph(entry, manifest_path, digest, jobs, [jobs[i] for i in entry["targets"]])


def load_part(
    root: str,
    digest: str,
    targets: Sequence[str],
    manifest_path: str,
    indices: Sequence[int],
    job_keys: Sequence[str],
    queries: Sequence[tuple],
) -> Optional[Graph]:
    """The jobs at `indices` (dependencies first) of the cached graph whose jobs are
    `job_keys` and whose file-system questions are `queries` (already seen to get the same
    answers), as a graph of their own: dependencies outside `indices` are left out (the
    caller knows them to be up to date). None if the cache holds no such graph."""
    entry = _read(root).get((digest, tuple(targets)))
    if entry is None:
        return None
    try:
        blobs = entry["jobs"]
        if len(blobs) != len(job_keys) or tuple(entry["queries"]) != tuple(queries):
            return None
        decoded = [marshal.loads(blobs[i]) for i in indices]
        rules = _rules(entry, list(dict.fromkeys(data[1] for data in decoded)))
        position = {index: n for n, index in enumerate(indices)}
        jobs: List[Job] = []
        for index, data in zip(indices, decoded):
            if data[0] != job_keys[index]:
                return None
            job, deps = _job(data, rules)
            job.deps = [jobs[position[i]] for i in deps if i in position]
            jobs.append(job)
        targets_part = [jobs[position[i]] for i in entry["targets"] if i in position]
        return _graph(entry, manifest_path, digest, jobs, targets_part, part=True)
    except (KeyError, IndexError, TypeError, ValueError, EOFError):
        return None

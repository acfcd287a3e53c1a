"""The build's data model: a rule as the Weavefile writes it (RuleSpec), one runnable instance
of it (Job), and the jobs needed for some targets (Graph).

Why a module of its own: a build that takes its graph from the cache (graphcache.py), as every
rebuild after an edit does, needs these classes but neither the Weavefile's parser
(manifest.py) nor the resolver (graph.py); importing those cost ~18M instructions, a few
milliseconds of every one-change rebuild. manifest and graph re-export these names.
"""

from __future__ import annotations

import itertools

from .hashing import digest_strings

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, Iterable, List, Optional, Tuple, Union

    from .manifest import Manifest, Template, _Locator


class RuleSpec:
    """A rule as written in the Weavefile, validated; wildcards not yet substituted."""

    __slots__ = (
        "name",
        "inputs",
        "outputs",
        "input_names",
        "output_names",
        "cmd",
        "cmd_template",
        "env_templates",
        "foreach",
        "wildcard_regex",
        "wildcard_names",
        "resources",
        "cpus",
        "env",
        "retries",
        "retry_delay",
        "timeout",
        "description",
        "vars_used",
        "var_lookups",
        "path",
        "_locator",
        "temp",
        "depfile",
        "depfile_template",
        "log",
        "order_only",
    )

    def __init__(self, name: str):
        self.name = name
        self.inputs: List[str] = []
        self.outputs: List[str] = []
        self.input_names: Dict[str, List[int]] = {}
        self.output_names: Dict[str, List[int]] = {}
        self.cmd: Optional[str] = None
        self.cmd_template: Template = ()
        self.env_templates: Dict[str, Template] = {}
        self.foreach: Dict[str, Union[str, List[str]]] = {}
        self.wildcard_regex: Dict[str, str] = {}
        self.wildcard_names: Tuple[str, ...] = ()
        self.resources: Dict[str, float] = {}
        self.cpus = 1
        self.env: Dict[str, str] = {}
        self.retries: Optional[int] = None
        self.retry_delay: Optional[float] = None
        self.timeout: Optional[float] = None
        self.description: Optional[str] = None
        self.vars_used: Tuple[str, ...] = ()
        # (var, wildcard, the key it is first written in) of each `{vars.NAME[wildcards.W]}`: a
        # job's recipe holds the one value it looks up, not the table (a new sample's entry
        # reruns no other job).
        self.var_lookups: Tuple[Tuple[str, str, str], ...] = ()
        self.path: Optional[str] = None  # the file it is written in: the Weavefile or an included one
        self._locator: Optional[_Locator] = None  # of the text it was parsed from
        # Positions in `outputs` of the temporary ones: deleted once the jobs that read them are
        # done, made again only when one of those must run (Snakemake's temp(), make's
        # intermediate files).
        self.temp: Tuple[int, ...] = ()
        # A file the command writes listing what else it read (`cc -MMD`): see Job.depfile.
        self.depfile: Optional[str] = None
        self.depfile_template: Template = ()
        # A file the command writes its own log to (Snakemake's `log:`), a path pattern with
        # the outputs' wildcards: weave makes its directory and keeps it, never reads it.
        self.log: Optional[str] = None
        # Paths made before its jobs run whose changes do not rerun them (make's order-only
        # prerequisites, `| gen.h`; Ninja's `||`): a generated header read through a depfile.
        self.order_only: List[str] = []

    @property
    def is_alias(self) -> bool:
        """An alias names a set of targets and runs nothing."""
        return self.cmd is None

    @property
    def line(self) -> Optional[int]:
        """The line of the rule's header in its file, found when a message needs it: finding
        the lines of 10k rules while loading cost 4 % of a cold start, for messages that are
        rarely shown. (A rule from the graph cache reads its file again.)"""
        if self._locator is not None:
            return self._locator.find(self.name)
        from .manifest import line_in_file

        return line_in_file(self.path, self.name, None) if self.path else None

    def __repr__(self) -> str:
        return f"RuleSpec({self.name!r})"



class Job:
    """One runnable instance of a rule: concrete inputs, outputs, command and environment."""

    __slots__ = (
        "key",
        "rule",
        "wildcards",
        "inputs",
        "outputs",
        "dir_outputs",
        "cmd",
        "env",
        "vars",
        "resources",
        "cpus",
        "deps",
        "dependents",
        "display",
        "recipe",
        "depfile",
        "log",
        "order_only",
    )

    def __init__(self, key: str, rule: RuleSpec, wildcards: Dict[str, str]):
        self.key = key
        self.rule = rule
        self.wildcards = wildcards
        self.inputs: List[str] = []
        self.outputs: List[str] = []
        self.dir_outputs: Tuple[bool, ...] = ()
        self.cmd = ""
        self.env: Dict[str, str] = {}
        self.vars: Dict[str, object] = {}
        self.resources: Dict[str, float] = rule.resources
        self.cpus = rule.cpus
        self.deps: List[Job] = []
        self.dependents: List[Job] = []
        self.display = ""
        self.recipe: Optional[str] = None  # digest of the recipe, set by the scanner (cached)
        # Where the command writes the other files it read, in make's syntax (`cc -MMD`), or
        # "": read after each successful run, its files join the job's record (builder.py).
        self.depfile = ""
        # The file its command writes its own log to (RuleSpec.log), or "".
        self.log = ""
        # Its rule's order_only paths (RuleSpec.order_only): their makers are among `deps`, to
        # run first, but they are not inputs: not in its signature, nor in {inputs}.
        self.order_only: List[str] = []

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def temp_outputs(self) -> List[str]:
        """Its temporary outputs (see RuleSpec.temp)."""
        return [self.outputs[index] for index in self.rule.temp]

    def __repr__(self) -> str:
        return f"Job({self.key!r})"


class Graph:
    """The jobs needed for some targets, in topological order (dependencies first)."""

    def __init__(
        self,
        manifest: Manifest,
        jobs: List[Job],
        targets: List[Job],
        producers: Optional[Dict[str, Job]],
        sources: Dict[str, List[Job]],
        requested: List[str],
    ):
        self.manifest = manifest
        self.jobs = jobs
        self.targets = targets
        self._producers = producers
        self.sources = sources
        self.requested = requested
        self.warnings: List[str] = []  # e.g. globs matching nothing; shown by the API
        self.queries: List[tuple] = []  # file-system questions asked to resolve it (graphcache)
        # Directory outputs whose contents a foreach scan or an input glob read: a build makes
        # them first, then resolves again (their jobs are in `jobs`, not in `targets`).
        self.first: List[str] = []
        # Sources that do not exist, in a graph resolved to be drawn (Resolver missing_ok).
        self.missing: List[str] = []
        # Targets that name a path inside a directory output: its job cannot promise them, so
        # a build checks that they exist once it is done.
        self.inside: List[str] = []
        # The paths the targets ask for: a path target, the items of an alias, the outputs of
        # a rule named as a target (a temporary output among them is kept, temps.py).
        self.wanted: List[str] = []
        self._temp_jobs: Optional[List[Job]] = None

    @property
    def temp_jobs(self) -> List[Job]:
        """The jobs with temporary outputs (computed on first use)."""
        if self._temp_jobs is None:
            self._temp_jobs = [job for job in self.jobs if job.rule.temp]
        return self._temp_jobs

    def __len__(self) -> int:
        return len(self.jobs)

    @property
    def producers(self) -> Dict[str, Job]:
        """Output path → the job that makes it (computed on first use)."""
        if self._producers is None:
            self._producers = {output: job for job in self.jobs for output in job.outputs}
        return self._producers

    def job(self, key: str) -> Job:
        for job in self.jobs:
            if job.key == key:
                return job
        raise KeyError(key)


def recipe_of(job: Job) -> Dict[str, object]:
    """What the store repeats of a job's recipe, to tell which part of it changed."""
    recipe: Dict[str, object] = {
        "cmd": job.cmd,
        "env": job.env,
        "vars": job.vars,
        "outputs": [o + ("/" if d else "") for o, d in zip(job.outputs, job.dir_outputs)],
    }
    if job.depfile:
        recipe["depfile"] = job.depfile
    return recipe


def _as_rendered(value: object) -> object:
    """A var's value as far as a command can tell: a float with no fractional part is inserted
    as an integer (`2.0` becomes `2`), so `e = 300` edited to `e = 300.0` changes nothing."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_as_rendered(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_rendered(item) for key, item in value.items()}
    return value


def recipe_digest(job: Job) -> str:
    parts: List[str] = ["weave-recipe-1", job.cmd]
    for key in sorted(job.env):
        parts.append(f"env:{key}={job.env[key]}")
    if job.vars:
        import json
    for key in sorted(job.vars):
        parts.append(f"var:{key}={json.dumps(_as_rendered(job.vars[key]), sort_keys=True)}")
    for output, is_dir in zip(job.outputs, job.dir_outputs):
        parts.append("out:" + output + ("/" if is_dir else ""))
    if job.depfile:  # (a job that never listed its files must run once to list them)
        parts.append("depfile:" + job.depfile)
    return digest_strings(parts)


def only_ordered(dep: Job, job: Job, listed: Iterable[str] = ()) -> bool:
    """Whether `dep` is among `job`'s dependencies only through its order_only paths: it makes
    none of its inputs, nor of `listed` (the files its depfile listed), as an output or as a
    file inside a directory output."""
    if not job.order_only:
        return False
    made = set(dep.outputs)
    trees = tuple(output + "/" for output, is_dir in zip(dep.outputs, dep.dir_outputs) if is_dir)
    return not any(path in made or (trees and path.startswith(trees)) for path in itertools.chain(job.inputs, listed))


__all__ = ("RuleSpec", "Job", "Graph", "recipe_of", "recipe_digest", "only_ordered")

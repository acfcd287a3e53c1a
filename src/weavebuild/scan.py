"""Staleness: is a job up to date, and if not, why? Reasons are data, rendered elsewhere.

A job's signature is the xxh3-128 of its recipe (command after substitution, the vars and env
it uses, its ordered outputs) and the digest of every input. It is up to date iff a success
record with that signature exists and every output still has the digest recorded then. This
module reads the file system (through FileState) and the store; it never writes either.
"""

from __future__ import annotations

import itertools

from .filestate import FileState
from .hashing import digest_bytes
from .jobs import Job, recipe_digest, recipe_of
from .store import JobRow, Record, Store

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, List, Optional, Sequence, Tuple

# Reason kinds, in the user's words (`weave plan` prints them as "kind: detail").
NEVER_BUILT = "never built"
OUTPUT_MISSING = "output missing"
OUTPUT_MODIFIED = "output modified"
INPUT_CHANGED = "input changed"
INPUTS_CHANGED = "inputs changed"
INPUT_MISSING = "input missing"
COMMAND_CHANGED = "command changed"
VAR_CHANGED = "var changed"
ENV_CHANGED = "env changed"
FORCED = "forced"
UPSTREAM = "upstream will rerun"
TEMP_NEEDED = "temporary output needed"  # a job that reads it must run (temps.demand)
ALWAYS = "no outputs (always runs)"
RECORD_MISMATCH = "recorded result differs"
CHANGED = "inputs or recipe changed"  # when no one asked for the details (see Scanner.check)
CHANGED_INPUTS_NAMED = 5  # changed inputs named one by one in a job's reasons; the rest counted


class Reason:
    """Why a job must run: a kind (see the constants above) and an optional detail."""

    __slots__ = ("kind", "detail")

    def __init__(self, kind: str, detail: str = ""):
        self.kind = kind
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind

    def __repr__(self) -> str:
        return f"Reason({self.kind!r}, {self.detail!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reason) and (self.kind, self.detail) == (other.kind, other.detail)

    def __hash__(self) -> int:
        return hash((self.kind, self.detail))

    def to_json(self) -> Dict[str, str]:
        return {"kind": self.kind, "detail": self.detail}


def signature_of(recipe: str, inputs: Sequence[Tuple[str, str]]) -> str:
    """The digest of a recipe and the (path, digest) of each input, in order."""
    parts = [recipe]
    parts.extend(itertools.chain.from_iterable(inputs))
    parts.append("")  # NUL-terminate the last part, as digest_strings does
    return digest_bytes("\0".join(parts).encode("utf-8", "surrogateescape"))


class Verdict:
    """The result of checking one job: its signature, input digests, and reasons to run."""

    __slots__ = ("signature", "inputs", "reasons")

    def __init__(self, signature: Optional[str], inputs: List[Tuple[str, str]], reasons: List[Reason]):
        self.signature = signature
        self.inputs = inputs
        self.reasons = reasons

    @property
    def up_to_date(self) -> bool:
        return not self.reasons


class Scanner:
    """Checks jobs against the file system and the store's records."""

    def __init__(self, files: FileState, store: Store, latest: Dict[str, JobRow]):
        self.files = files
        self.store = store
        self.latest = latest
        # Temporary outputs that are gone while the job that makes them is up to date: the
        # digest its record holds for each (see temps.py). Their readers are checked with it.
        self.virtual: Dict[str, str] = {}

    def recipe(self, job: Job) -> str:
        digest = job.recipe
        if digest is None:
            digest = job.recipe = recipe_digest(job)
        return digest

    def check(self, job: Job, forced: bool = False, explain: bool = True) -> Verdict:
        """The verdict on `job`. With `explain=False` a job with no matching record gets the
        generic reason CHANGED instead of a comparison with its latest record (which reads and
        parses that record: the cost of a big aggregate job's check)."""
        digest_of = self.files.digest
        paths = job.inputs
        digests = self.files.digests(paths)
        while len(digests) < len(paths):  # paths[len(digests)] is missing
            path = paths[len(digests)]
            digest = self.virtual.get(path)
            if digest is None:
                return Verdict(None, list(zip(paths, digests)), [Reason(INPUT_MISSING, path)])
            digests.append(digest)
            digests.extend(self.files.digests(paths[len(digests) :]))
        inputs = list(zip(paths, digests))
        if not job.outputs:
            return Verdict(None, inputs, [Reason(ALWAYS)])
        signature = signature_of(self.recipe(job), inputs)
        if forced:
            return Verdict(signature, inputs, [Reason(FORCED)])
        latest = self.latest.get(job.key)
        recorded: Optional[List[str]] = None
        discovered: List[Tuple[str, str]] = []
        if latest is not None and latest.signature == signature:
            recorded = latest.outputs
            if job.depfile:
                discovered = latest.discovered
        else:
            record = self.store.record(signature)
            if record is not None:
                recorded = record.outputs
                discovered = record.discovered or []
        if recorded is not None:
            reasons = self.compare_outputs(job, recorded)
            if discovered:  # the files its depfile listed, as they were when it ran
                changed = []
                for path, digest in discovered:
                    now = digest_of(path)
                    if now != digest:
                        changed.append(path if now is not None else f"{path} (gone)")
                if changed:
                    return Verdict(signature, inputs, _changed(changed) + reasons)
            if reasons and latest is not None and latest.signature != signature:
                # An older record matches (inputs were reverted) but the outputs on disk come
                # from the latest run: explain the difference from that run instead.
                reasons = self.explain_new_signature(job, inputs, latest)
            return Verdict(signature, inputs, reasons)
        if not explain:
            return Verdict(signature, inputs, [Reason(NEVER_BUILT if latest is None else CHANGED)])
        return Verdict(signature, inputs, self.explain_new_signature(job, inputs, latest))

    def compare_outputs(self, job: Job, recorded: List[str]) -> List[Reason]:
        if len(recorded) != len(job.outputs):
            return [Reason(RECORD_MISMATCH)]
        reasons: List[Reason] = []
        temp = job.rule.temp
        for index, (path, is_dir, expected) in enumerate(zip(job.outputs, job.dir_outputs, recorded)):
            current = self.files.digest(path)
            shown = path + "/" if is_dir else path  # as the Weavefile writes a directory output
            if current is None and index in temp:
                self.virtual[path] = expected  # deleted after use: not a reason to run
            elif current is None:
                reasons.append(Reason(OUTPUT_MISSING, shown))
            elif current != expected:
                reasons.append(Reason(OUTPUT_MODIFIED, shown))
        return reasons

    def explain_new_signature(
        self, job: Job, inputs: List[Tuple[str, str]], latest: Optional[JobRow]
    ) -> List[Reason]:
        """Why no record matches: compare with the job's latest success, part by part."""
        if latest is None:
            return [Reason(NEVER_BUILT)]
        record: Optional[Record] = self.store.record(latest.signature)
        if record is None:
            return [Reason(NEVER_BUILT)]
        reasons: List[Reason] = []
        old = record.recipe
        new = recipe_of(job)
        old_vars = old.get("vars", {}) if isinstance(old.get("vars"), dict) else {}
        changed_vars = sorted(
            name for name in set(old_vars) | set(job.vars) if old_vars.get(name) != job.vars.get(name)
        )
        for name in changed_vars:
            reasons.append(Reason(VAR_CHANGED, name))
        outputs_changed = old.get("outputs") != new["outputs"]
        if old.get("cmd") != new["cmd"] and not changed_vars and not outputs_changed:
            reasons.append(Reason(COMMAND_CHANGED))  # (new outputs change it: said below, once)
        old_env = old.get("env", {}) if isinstance(old.get("env"), dict) else {}
        for name in sorted(set(old_env) | set(job.env)):
            if old_env.get(name) != job.env.get(name):
                reasons.append(Reason(ENV_CHANGED, name))
        if outputs_changed:
            reasons.append(Reason(COMMAND_CHANGED, "outputs changed"))
        old_inputs = dict(record.inputs)
        new_paths = [path for path, _ in inputs]
        old_paths = [path for path, _ in record.inputs]
        if old_paths != new_paths:
            reasons.append(Reason(INPUTS_CHANGED, inputs_difference(old_paths, new_paths)))
        changed = [
            path for path, digest in inputs if old_inputs.get(path) is not None and old_inputs[path] != digest
        ]
        reasons.extend(_changed(changed))
        return reasons or [Reason(NEVER_BUILT, "no matching record")]


def _changed(paths: Sequence[str]) -> List[Reason]:
    """'input changed' for the first few of `paths`, and a count of the rest: a fan-in over
    20k edited files would otherwise explain itself in 1 MB."""
    reasons = [Reason(INPUT_CHANGED, path) for path in paths[:CHANGED_INPUTS_NAMED]]
    if len(paths) > CHANGED_INPUTS_NAMED:
        reasons.append(Reason(INPUTS_CHANGED, f"{len(paths) - CHANGED_INPUTS_NAMED:,} more"))
    return reasons


def inputs_difference(old: Sequence[str], new: Sequence[str], named: int = 3) -> str:
    """The first few inputs added (+path) and removed (-path) between two input lists, or
    "order changed". Linear: a fan-in over 40k files that gains or loses one is explained
    on every build that sees it."""
    old_set, new_set = set(old), set(new)
    added = [path for path in new if path not in old_set][:named]
    removed = [path for path in old if path not in new_set][:named]
    return ", ".join([f"+{p}" for p in added] + [f"-{p}" for p in removed]) or "order changed"

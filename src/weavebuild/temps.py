"""Temporary outputs (a rule's `temp`): deleted once every job of the build that reads them
is done, and made again only when a job that reads them must run (Snakemake's temp(), make's
intermediate files).

A job whose temporary output is gone is still up to date while the record of its last run
matches: the digest that record holds for the output stands in for the file
(`Scanner.virtual`), so the jobs reading it are checked as if it were there. When one of
them must run after all, the job that makes the file runs first. `demand` works that out
before the build starts, from the prediction, which never predicts fewer jobs than will run:
a job predicted up to date is decided from unchanged files, so it cannot turn stale later.
"""

from __future__ import annotations

import collections
import os

from .scan import TEMP_NEEDED, UPSTREAM, Reason, Verdict

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable, Deque, Dict, List, Mapping, Optional, Set, Tuple

    from .jobs import Graph, Job


def wanted(graph: Graph) -> Set[str]:
    """The paths that must stay: those the build was asked for (Graph.wanted: a path target,
    the items of an alias, the outputs of a rule named as a target), and the directories
    whose contents decide which jobs there are (read by a foreach pattern or a glob); and
    every directory holding one of those (a temporary directory output holding a wanted path
    stays too). A set: each temporary output is looked up in it, not compared with each
    wanted path (4,000 temporary outputs all asked for were 16M comparisons)."""
    kept = set(graph.wanted) | set(graph.first)
    for path in list(kept):
        parent = path.rpartition("/")[0]
        while parent and parent not in kept:
            kept.add(parent)
            parent = parent.rpartition("/")[0]
    return kept



def _temp_of(path: str, temps: Mapping[str, object]) -> Optional[str]:
    """The temporary output `path` is or lies inside, if any."""
    while path:
        if path in temps:
            return path
        parent = os.path.dirname(path)
        if parent == path:  # "/": an absolute input is never inside a temporary output
            return None
        path = parent
    return None


def demand(graph: Graph, verdicts: Dict[str, Verdict], exists: Callable[[str], bool]) -> Dict[str, Reason]:
    """The jobs that must make their gone temporary outputs again, with why: those whose
    outputs a job predicted to run reads (or the build asks for), and so on upstream. Their
    verdicts become stale, and everything downstream is predicted to run ('upstream will
    rerun'), to be decided again once they have. A job predicted to run only because of its
    dependencies may turn out up to date once they have run (early cutoff); the temporary
    files it reads are made all the same. Linear in the graph: each job turns stale once."""
    needed: Dict[str, Reason] = {}
    temps = {path: job for job in graph.temp_jobs for path in job.temp_outputs}
    if not temps:
        return needed
    stale: Deque[Job] = collections.deque(job for job in graph.jobs if not verdicts[job.key].up_to_date)

    def need(path: str, by: str) -> None:
        producer = temps[path]
        if producer.key in needed or exists(path):
            return
        reason = needed[producer.key] = Reason(TEMP_NEEDED, f"{path} (read by {by})" if by else f"{path} (a target)")
        verdict = verdicts[producer.key]
        if verdict.up_to_date:
            verdicts[producer.key] = Verdict(verdict.signature, verdict.inputs, [reason])
            stale.append(producer)

    kept = wanted(graph)
    for path in temps:
        if path in kept:
            need(path, "")
    done: Set[str] = set()
    while stale:
        job = stale.popleft()
        if job.key in done:
            continue
        done.add(job.key)
        for path in job.inputs:
            temp = _temp_of(path, temps)
            if temp is not None and temps[temp] is not job:
                need(temp, job.display)
        for dependent in job.dependents:
            if verdicts[dependent.key].up_to_date:
                verdicts[dependent.key] = Verdict(None, [], [Reason(UPSTREAM, job.display)])
                stale.append(dependent)
    return needed


class TempOutputs:
    """Which temporary outputs of a build may be deleted, and when: once the job that makes
    each and every job of the build that reads it have succeeded or were up to date. A
    failure anywhere among them keeps the file (the next build would need it again)."""

    def __init__(self, graph: Graph, listed: Optional[Dict[str, List[str]]] = None):
        kept = wanted(graph)
        # temp path -> jobs still to succeed before it may go (its producer and readers);
        # None once one of them did not succeed
        self._waiting: Dict[str, Optional[int]] = {}
        self._is_dir: Dict[str, bool] = {}
        self._producer: Dict[str, str] = {}
        self._reads: Dict[str, List[str]] = {}  # job key -> the temporary outputs it reads
        for job in graph.temp_jobs:
            for index in job.rule.temp:
                path = job.outputs[index]
                if path not in kept:
                    self._waiting[path] = 1
                    self._is_dir[path] = job.dir_outputs[index]
                    self._producer[path] = job.key
        self._due: List[str] = []
        if not self._waiting:
            return
        dirs = any(self._is_dir.values())
        inside: Set[str] = set()  # temporary directories some job reads a file in
        for job in graph.jobs:
            read: List[str] = []
            for path in job.inputs:
                temp = _temp_of(path, self._waiting) if dirs else (path if path in self._waiting else None)
                if temp is not None and self._producer[temp] != job.key:
                    if temp != path:  # (also when the job reads the whole directory too)
                        inside.add(temp)
                    if temp not in read:
                        read.append(temp)
            if read:
                self._reads[job.key] = read
                for temp in read:
                    self._waiting[temp] += 1  # type: ignore[operator]
        # Kept: only a directory read as a whole has a digest (its record's) to stand in for
        # it; a file inside it has none once it is gone, and its reader would make it again.
        for temp in inside:
            del self._waiting[temp]
        for paths in (listed or {}).values():
            self.keep_listed(paths)

    def keep_listed(self, paths: List[str]) -> None:
        """Keep the temporary outputs a job's depfile lists (or lists files in): its record
        holds their digests, and a job whose listed file is gone runs again."""
        for path in paths:
            temp = _temp_of(path, self._waiting)
            if temp is not None:
                del self._waiting[temp]
                if temp in self._due:
                    self._due.remove(temp)

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def settled(self, job: Job, succeeded: bool) -> None:
        """`job` is done: it ran and succeeded or was up to date (`succeeded`), or not."""
        for path in self._reads.get(job.key, []) + job.temp_outputs:
            left = self._waiting.get(path)
            if left is None:
                continue
            if not succeeded:
                self._waiting[path] = None
            elif left == 1:
                self._waiting[path] = None
                self._due.append(path)
            else:
                self._waiting[path] = left - 1

    def take_due(self, busy: Set[str]) -> List[Tuple[str, bool]]:
        """The temporary outputs that may be deleted now, as (path, is a directory): those
        whose producer's record is complete (its key not in `busy`: its outputs are still
        to be hashed, which needs them)."""
        ready = [path for path in self._due if self._producer[path] not in busy]
        if ready:
            self._due = [path for path in self._due if self._producer[path] in busy]
        return [(path, self._is_dir[path]) for path in ready]


def delete(root: str, path: str, is_dir: bool) -> bool:
    """Remove a temporary output; False if it could not be (it stays, and is kept track of)."""
    full = os.path.join(root, path)
    try:
        if is_dir and not os.path.islink(full):
            import shutil  # (only here: a build that deletes no temporary directory never needs it)

            shutil.rmtree(full)
        else:
            os.unlink(full)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True

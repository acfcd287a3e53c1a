"""Scheduling policy: which ready job starts next. Knows order and resources, starts nothing.

Ready jobs are ordered by critical path (the longest chain of estimated durations from the job
to the end of the build, using durations of earlier runs when known), so long chains start
first and heavy jobs do not end up serialised at the tail.
"""

from __future__ import annotations

import heapq

from .jobs import Job
from .resources import Grant, ResourcePool

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, List, Mapping, Optional, Tuple

DEFAULT_DURATION = 1.0


def critical_path(jobs: List[Job], durations: Mapping[str, float]) -> Dict[str, float]:
    """For each job: its duration plus the longest such path through its dependents."""
    known = [d for d in durations.values() if d]
    default = sorted(known)[len(known) // 2] if known else DEFAULT_DURATION
    weight: Dict[str, float] = {}
    for job in reversed(jobs):  # dependents come later in topological order
        tail = 0.0
        for dependent in job.dependents:
            value = weight.get(dependent.key, 0.0)
            if value > tail:
                tail = value
        weight[job.key] = (durations.get(job.key) or default) + tail
    return weight


class ReadyQueue:
    """Jobs whose dependencies are done and that must run, highest priority first."""

    def __init__(self, pool: ResourcePool, priority: Mapping[str, float]):
        self.pool = pool
        self.priority = priority
        self._heap: List[Tuple[float, int, Job]] = []
        self._counter = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, job: Job) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (-self.priority.get(job.key, 0.0), self._counter, job))

    def pop_startable(self) -> Optional[Tuple[Job, Grant]]:
        """The best job that fits the free slots and resources now, with its grant."""
        if not self._heap or self.pool.free_slots <= 0:
            return None
        skipped: List[Tuple[float, int, Job]] = []
        found: Optional[Tuple[Job, Grant]] = None
        while self._heap:
            entry = heapq.heappop(self._heap)
            job = entry[2]
            grant = self.pool.try_acquire(job.cpus, job.resources)
            if grant is not None:
                found = (job, grant)
                break
            skipped.append(entry)
            if self.pool.free_slots <= 0:
                break
        for entry in skipped:
            heapq.heappush(self._heap, entry)
        return found

    def peek(self) -> List[Job]:
        """The queued jobs, in no particular order."""
        return [entry[2] for entry in self._heap]

    def drain(self) -> List[Job]:
        jobs = [entry[2] for entry in self._heap]
        self._heap.clear()
        return jobs

"""What a build reports back: one JobResult per job and the BuildResult of the whole build.

Plain data, shared by the builder, the API and the no-op fast path (which has no Job objects).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, List, Optional, Sequence

    from .jobs import Job
    from .scan import Reason

# Job outcomes
UP_TO_DATE, RAN, FAILED, SKIPPED, CANCELLED = "up to date", "ran", "failed", "not run", "cancelled"


class JobResult:
    """What happened to one job in a build."""

    __slots__ = ("job", "key", "outcome", "reasons", "attempts", "duration", "message", "log_path")

    def __init__(
        self, job: Optional[Job], outcome: str, reasons: Sequence[Reason] = (), key: Optional[str] = None
    ):
        # `job` is None only for up-to-date jobs of a no-op proven by the stamp (stamp.py).
        self.job = job
        self.key = key if key is not None else (job.key if job is not None else "")
        self.outcome = outcome
        self.reasons = list(reasons)
        self.attempts = 0
        self.duration = 0.0
        self.message = ""
        self.log_path: Optional[str] = None


class BuildResult:
    """The outcome of a build: per-job results and totals.

    `untouched`: keys of jobs proven up to date without being loaded (the no-op stamp, a
    partial build); their JobResults are made only if someone asks for them."""

    def __init__(self, results: Dict[str, JobResult], seconds: float, untouched: Sequence[str] = ()):
        self._results = results
        self._untouched = untouched
        self.seconds = seconds
        # Inputs found changed after a job read them (so that job was not recorded): the
        # next build reruns what read them; watch mode starts it.
        self.changed_during: List[str] = []

    @property
    def results(self) -> Dict[str, JobResult]:
        if self._untouched:
            merged = {key: JobResult(None, UP_TO_DATE, key=key) for key in self._untouched}
            merged.update(self._results)
            self._results, self._untouched = merged, ()
        return self._results

    def outcome(self, key: str) -> Optional[str]:
        """The outcome of job `key` in this build, or None if it was not part of it."""
        found = self._results.get(key)
        if found is not None:
            return found.outcome
        return UP_TO_DATE if key in self._untouched else None

    def _with(self, outcome: str) -> List[JobResult]:
        results = self.results if outcome == UP_TO_DATE else self._results  # untouched: up to date
        return [r for r in results.values() if r.outcome == outcome]

    def count(self, outcome: str) -> int:
        """How many jobs had `outcome` (without making the untouched jobs' results)."""
        extra = len(self._untouched) if outcome == UP_TO_DATE else 0
        return extra + sum(1 for r in self._results.values() if r.outcome == outcome)

    @property
    def ran(self) -> List[JobResult]:
        return self._with(RAN)

    @property
    def up_to_date(self) -> List[JobResult]:
        return self._with(UP_TO_DATE)

    @property
    def failed(self) -> List[JobResult]:
        return self._with(FAILED)

    @property
    def ok(self) -> bool:
        return not any(r.outcome in (FAILED, SKIPPED, CANCELLED) for r in self._results.values())

    def include(self, earlier: BuildResult, failures: bool = False) -> None:
        """Count the jobs `earlier` ran (a build made first, in the same run) as run by this
        one: the main build then finds them up to date (and, with `failures`, those that
        failed as failed)."""
        for key, result in earlier._results.items():
            if result.outcome == RAN or (failures and result.outcome == FAILED):
                self._results[key] = result
        self.seconds += earlier.seconds

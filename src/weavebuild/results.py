"""What a build reports back: one JobResult per job and the BuildResult of the whole build.

Plain data, shared by the builder, the API and the no-op fast path (which has no Job objects).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Job
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
    """The outcome of a build: per-job results and totals."""

    def __init__(self, results: Dict[str, JobResult], seconds: float):
        self.results = results
        self.seconds = seconds

    def _with(self, outcome: str) -> List[JobResult]:
        return [r for r in self.results.values() if r.outcome == outcome]

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
        return not self.failed and not self._with(SKIPPED) and not self._with(CANCELLED)

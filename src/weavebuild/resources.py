"""Job slots and named resources (gpu, mem_mb, ...): parsing, totals, and accounting.

Owns the admission rule: a job starts only when its `cpus` slots and every resource amount it
asks for are free, and each job asking for `gpu = k` gets k GPU ids no running job holds.
Starts no process (GPU detection may run `nvidia-smi -L` once, lazily).
"""

from __future__ import annotations

import os

from .errors import UsageError

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

# The largest resource or cpus amount, in the Weavefile and on the command line: beyond it a
# count means nothing, and far beyond it an integer no longer fits the float that the
# scheduler's arithmetic turns it into.
MAX_AMOUNT = 1e15
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# Amounts as numbers are written: 16000, 0.5, 1e3, 1.5E4 (never inf, nan or a sign).
_ITEM = r"^\s*(" + _NAME + r")\s*=\s*((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*$"


def parse_resource_args(values: Iterable[str]) -> Dict[str, float]:
    """'gpu=4,mem_mb=16000' (repeatable) → {'gpu': 4, 'mem_mb': 16000}; UsageError if malformed."""
    totals: Dict[str, float] = {}
    values = list(values)
    if not values:
        return totals
    import re  # here: a no-op build (no --resources) does not import re

    example = "write NAME=AMOUNT, e.g. --resources gpu=2,mem_mb=16000"
    for value in values:
        items = [item.strip() for item in value.split(",") if item.strip()]
        given: Dict[str, float] = {}  # in this value (a later --resources may override one)
        for item in items:
            match = re.match(_ITEM, item)
            if not match:
                name, equals, text = item.partition("=")
                why = ""
                if equals and re.fullmatch(_NAME, name.strip()):
                    why = f": '{text.strip()}' is not an amount (a number of 0 or more)"
                elif equals and name.strip():
                    why = f": resource name '{name.strip()}' must be an identifier (letters, digits and '_')"
                raise UsageError(f"invalid --resources value '{item}'{why}", hint=example)
            name, amount = match.group(1), float(match.group(2))
            if amount > MAX_AMOUNT:
                raise UsageError(
                    f"invalid --resources value '{item}': at most {MAX_AMOUNT:.0e}",
                    hint="amounts are counts such as gpu=2 or mem_mb=16000",
                )
            if name in given:
                raise UsageError(f"--resources '{value}' gives '{name}' twice", hint="give each resource once")
            given[name] = totals[name] = int(amount) if amount.is_integer() else amount
    if "gpu" in totals:
        gpu_ids_for(totals["gpu"])  # a bad total is an error even when nothing would run
    return totals


def visible_gpu_ids() -> Optional[List[str]]:
    """GPU ids from CUDA_VISIBLE_DEVICES, or None when it is not set."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip() and item.strip() != "-1"]


def detect_gpu_count() -> int:
    """GPUs on this machine: CUDA_VISIBLE_DEVICES if set, else `nvidia-smi -L`, else 0."""
    visible = visible_gpu_ids()
    if visible is not None:
        return len(visible)
    import shutil  # only here: most builds never need to detect GPUs
    import subprocess

    program = shutil.which("nvidia-smi")
    if program is None:
        return 0
    try:
        result = subprocess.run(
            [program, "-L"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    if result.returncode != 0:
        return 0
    return sum(1 for line in result.stdout.splitlines() if line.startswith("GPU "))


class Grant:
    """What a running job holds: slots, resource amounts and GPU ids."""

    __slots__ = ("slots", "amounts", "gpu_ids")

    def __init__(self, slots: int, amounts: Mapping[str, float], gpu_ids: List[str]):
        self.slots = slots
        self.amounts = amounts
        self.gpu_ids = gpu_ids


class ResourcePool:
    """Free slots and resources; `try_acquire` and `release` keep the books."""

    def __init__(self, slots: int, totals: Mapping[str, float], gpu_ids: Sequence[str]):
        self.slots = slots
        self.free_slots = slots
        self.totals = dict(totals)
        self.free = dict(totals)
        self.free_gpu_ids = list(gpu_ids)
        self.notes: List[str] = []  # warnings about how the totals were set, for the reporter

    def slots_for(self, cpus: int) -> int:
        # A job asking for more cpus than -j allows runs alone rather than never.
        return min(cpus, self.slots)

    def check_feasible(self, requests: Iterable[Tuple[str, Mapping[str, float]]]) -> None:
        """Raise UsageError if some job asks for more than a total could ever provide."""
        for rule, amounts in requests:
            for name, amount in amounts.items():
                total = self.totals.get(name)
                if total is not None and amount > total:
                    raise UsageError(
                        f"rule '{rule}' needs {name}={_fmt(amount)} but only {name}={_fmt(total)} is available",
                        hint=f"raise the total with --resources {name}={_fmt(amount)} or lower the rule's request",
                    )
                if name == "gpu" and amount != int(amount):
                    raise UsageError(
                        f"rule '{rule}' asks for gpu={amount}; GPUs are handed out whole",
                        hint="use an integer number of GPUs",
                    )

    def try_acquire(self, cpus: int, amounts: Mapping[str, float]) -> Optional[Grant]:
        slots = self.slots_for(cpus)
        if slots > self.free_slots:
            return None
        free = self.free
        for name, amount in amounts.items():
            available = free.get(name)
            if available is not None and amount > available + 1e-9:
                return None
        self.free_slots -= slots
        for name, amount in amounts.items():
            if name in free:
                free[name] -= amount
        gpu_ids: List[str] = []
        wanted = int(amounts.get("gpu", 0) or 0)
        if wanted and "gpu" in self.totals:
            gpu_ids = self.free_gpu_ids[:wanted]
            del self.free_gpu_ids[:wanted]
        return Grant(slots, amounts, gpu_ids)

    def release(self, grant: Grant) -> None:
        self.free_slots += grant.slots
        for name, amount in grant.amounts.items():
            if name in self.free:
                self.free[name] += amount
        self.free_gpu_ids.extend(grant.gpu_ids)
        self.free_gpu_ids.sort(key=_id_order)

    @property
    def idle(self) -> bool:
        return self.free_slots == self.slots


MAX_GPUS = 65536


def _id_order(value: str) -> Tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 30, value)


def _fmt(amount: float) -> str:
    return str(int(amount)) if float(amount).is_integer() else str(amount)


def make_pool(
    slots: int,
    weavefile_totals: Mapping[str, float],
    cli_totals: Mapping[str, float],
    gpu_needed: bool,
) -> ResourcePool:
    """The pool for a build: CLI totals override the Weavefile's; gpu defaults to detection."""
    totals: Dict[str, float] = dict(weavefile_totals)
    totals.update(cli_totals)
    if "gpu" not in totals and gpu_needed:
        detected = detect_gpu_count()
        # With no GPU and no explicit total, GPU jobs still run: without GPU ids, on the CPU
        # (CUDA_VISIBLE_DEVICES=""), so a pipeline written for a GPU box works on a laptop.
        if detected:
            totals["gpu"] = detected
    notes: List[str] = []
    if "gpu" in totals and "gpu" not in cli_totals:
        # The Weavefile's total describes the machine it was written for; CUDA_VISIBLE_DEVICES
        # is how this run narrows the GPUs (to none on a CPU-only CI box): it wins, as a total
        # given on the command line would. With none visible, GPU jobs run without GPU ids,
        # as on a machine without GPUs.
        visible = visible_gpu_ids()
        if visible is not None and len(visible) < totals["gpu"]:
            notes.append(
                f"the Weavefile's [resources] sets gpu={_fmt(totals['gpu'])}, but CUDA_VISIBLE_DEVICES lists "
                + (f"{len(visible)} GPU(s): using {len(visible)}" if visible else "none: GPU jobs run without GPUs")
            )
            if visible:
                totals["gpu"] = len(visible)
            else:
                del totals["gpu"]
    gpu_ids = gpu_ids_for(totals["gpu"]) if "gpu" in totals else []
    pool = ResourcePool(slots, totals, gpu_ids)
    pool.notes = notes
    return pool


def gpu_ids_for(total: float) -> List[str]:
    """The GPU ids a gpu total hands out (the first of CUDA_VISIBLE_DEVICES if set, else
    0..N-1); UsageError for a total that is not whole, too large, or more than are visible."""
    if total != int(total):
        raise UsageError(
            f"gpu={_fmt(total)}: GPUs are counted whole",
            hint="set the gpu total to the number of GPUs of this machine",
        )
    count = int(total)
    if count > MAX_GPUS:  # each GPU gets an id to hand out: a typo must not fill memory
        raise UsageError(
            f"gpu={_fmt(total)} is more GPUs than weave hands out (at most {MAX_GPUS})",
            hint="set the gpu total to the number of GPUs of this machine",
        )
    visible = visible_gpu_ids()
    if visible is None:
        return [str(i) for i in range(count)]
    if count > len(visible):
        raise UsageError(
            f"gpu={count} but CUDA_VISIBLE_DEVICES lists {len(visible)} GPU(s)",
            hint="lower --resources gpu or widen CUDA_VISIBLE_DEVICES",
        )
    return visible[:count]

"""A short CPU time slice for the thread that starts jobs, so that it is not kept waiting
behind the jobs it started (Linux 6.12+, EEVDF scheduler).

Why: starting a job blocks weave until the new process has exec'd (vfork). The kernel then
wakes weave on the CPU where the new job now runs, behind it, and lets the job run on to the
end of its time slice (~1-3 ms) before weave gets the CPU back, even when the other CPU has
meanwhile gone idle. With jobs of about a millisecond, each slot then waits for weave after
every job: on two cores, `-j2` ran little faster than `-j1`. A thread with a shorter slice
than the running task may preempt it when it wakes (the kernel's PREEMPT_SHORT): weave
takes the CPU for its few hundred microseconds of bookkeeping and starts the next job at
once. This changes when weave runs, not how much: its weight (nice value) stays the same.

The request is `sched_setattr(2)` with `sched_runtime` as the slice (unprivileged, clamped by
the kernel to 0.1-100 ms), and SCHED_FLAG_RESET_ON_FORK so that jobs get the default slice,
not weave's. Older kernels ignore the slice; other systems and architectures skip this.
"""

from __future__ import annotations

import os
import sys
import threading

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Optional, Set

SLICE_NS = 100_000  # the shortest slice the kernel grants: 0.1 ms

_SCHED_FLAG_RESET_ON_FORK = 0x01
_SCHED_ATTR_SIZE = 48  # struct sched_attr, version 0
# The number of the sched_setattr system call, by architecture.
_SCHED_SETATTR = {"x86_64": 314, "amd64": 314, "aarch64": 274, "arm64": 274, "riscv64": 274}

_shortened: Set[int] = set()  # the threads given a short slice (thread identifiers)


def _syscall_number() -> Optional[int]:
    if not sys.platform.startswith("linux"):
        return None
    return _SCHED_SETATTR.get(os.uname().machine.lower())


def shorten_slice() -> bool:
    """Give the calling thread a short time slice; True if it has one. Only for a thread of
    the ordinary policy at a nice value of 0 or more (RESET_ON_FORK would not pass a negative
    nice value on to jobs)."""
    thread = threading.get_ident()
    if thread in _shortened:
        return True
    number = _syscall_number()
    if number is None:
        return False
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return False
        nice = os.getpriority(os.PRIO_PROCESS, 0)  # the calling thread's, on Linux
    except (AttributeError, OSError):
        return False
    if nice < 0 or not _set_attributes(number, nice, SLICE_NS):
        return False
    _shortened.add(thread)
    return True


def restore_slice() -> None:
    """Give the calling thread, if it shortened its slice, the kernel's default slice back.
    RESET_ON_FORK stays (only a privileged process may clear it): for a thread of the ordinary
    policy at a nice value of 0 or more, it only means that children get the default slice."""
    thread = threading.get_ident()
    number = _syscall_number()
    if thread not in _shortened or number is None:
        return
    _shortened.discard(thread)
    try:
        _set_attributes(number, os.getpriority(os.PRIO_PROCESS, 0), 0)
    except OSError:
        pass


def _set_attributes(syscall_number: int, nice: int, slice_ns: int) -> bool:
    import struct

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):  # a Python built without ctypes; no C library to load
        return False
    # struct sched_attr v0: size, policy, flags, nice, priority, runtime, deadline, period.
    attributes = struct.pack(
        "=IIQiIQQQ", _SCHED_ATTR_SIZE, os.SCHED_OTHER, _SCHED_FLAG_RESET_ON_FORK, nice, 0, slice_ns, 0, 0
    )
    buffer = ctypes.create_string_buffer(attributes, _SCHED_ATTR_SIZE)
    # syscall(2) is variadic and reads its arguments as longs: pass them as such.
    return libc.syscall(ctypes.c_long(syscall_number), ctypes.c_long(0), buffer, ctypes.c_long(0)) == 0

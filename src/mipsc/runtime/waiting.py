"""How the thread that calls a module waits for IREE's workers without taking a core from them.

A call on IREE's local-task device (3.13) ends in `iree_async_semaphore_multi_wait`
(runtime/src/iree/async/semaphore.c): the caller sleeps on a futex until the worker that
finishes the last dispatch runs the timepoint callback, which wakes it
(`iree_notification_post`) and then marks the timepoint done (`completed = 1`). The woken
caller cannot return before that mark, and waits for it in a `pause` loop with no bound and no
yield (the cleanup after the wait, `while (!completed) iree_processor_yield();`). When the
wake-up lands the caller on the CPU of the worker that woke it, Linux lets the woken caller
preempt that worker (wakeup preemption) between the two steps: the caller then spins until
its time slice ends while the worker that would set the mark waits to run. Measured on a
2-vCPU Zen 4 under load: 0.9-1.6 ms of the caller's CPU per call on 2 threads (72-78% of it
on that loop), 2.7-4.0 ms on 1 (BENCHMARKS.md, 2026-12-01, "the caller's wait"). IREE has
no flag for it (its wait flags are not reachable from a VM call, and none changes this loop).

So the caller waits as a SCHED_BATCH thread for the call: Linux never lets a batch thread
preempt another on wake-up (sched(7)), so the worker finishes its callback first. Any
thread may switch itself between SCHED_OTHER and SCHED_BATCH without privileges; the
caller's own policy comes back when the call returns, and a thread with any other policy
(real-time, idle, batch already) is left as it is. The switch is three system calls (~6 us
on the machine above) and a wake-up that waits for a busy CPU's current task: it pays for
calls of a millisecond or more (BATCH_MIN_SECONDS), and made a 35 us call 12-17 us slower
(median), so shorter calls wait as they are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_CAN_SWITCH = hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH")

BATCH_MIN_SECONDS = 1e-3
"""A function whose previous call took at least this long waits as SCHED_BATCH: the spin it
avoids costs up to a scheduler slice (ms), the switch a few microseconds."""


def worth_batch(previous_seconds: float) -> bool:
    """Whether a call whose previous one took `previous_seconds` (wall) waits as SCHED_BATCH."""
    return _CAN_SWITCH and previous_seconds >= BATCH_MIN_SECONDS


@contextmanager
def batch_wait() -> Iterator[None]:
    """The calling thread is SCHED_BATCH inside the block when it was SCHED_OTHER; unchanged on
    systems without the policy (not Linux) and for any other policy."""
    if not _CAN_SWITCH or not _to_batch():
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _to_batch() -> bool:
    """Switch the calling thread to SCHED_BATCH if it is SCHED_OTHER; whether it did."""
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return False
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:  # (a seccomp or container policy that forbids it: wait as before)
        return False
    return True

"""The scheduling priority a process or thread takes for itself, on a machine it shares.

One rule for the worker process (WORKER_NICENESS, WORKER_CPU_POLICY) and the web's spool
appender thread: take at least this niceness and policy, never a more favoured one than what
was started (an unprivileged process could not undo it; real time or a lower policy is kept).
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["lower_priority"]


def lower_priority(niceness: int, policy: str = "normal") -> None:
    """The calling thread takes at least this niceness and, where the system has it, this
    scheduling policy (Linux keeps both per thread, and new threads inherit them: the worker
    calls it before any thread starts). Never raised: an unprivileged process could not undo
    it, and a thread started under a policy of its own (real time, or lower) keeps it. A
    system that refuses the policy (a container's seccomp) leaves it as started."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > current:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    # From the most to the least favoured of the policies a normal process may take.
    order = [getattr(os, name, None) for name in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE")]
    wanted = {"batch": order[1], "idle": order[2]}.get(policy)
    if wanted is None or None in order:
        return
    started_under = os.sched_getscheduler(0)
    if started_under in order and order.index(started_under) < order.index(wanted):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, wanted, os.sched_param(0))

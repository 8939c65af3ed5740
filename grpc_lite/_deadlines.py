"""Call deadlines: one event-loop timer per method and timeout, not one per call.

A call with a timeout must end with DEADLINE_EXCEEDED at ``start + timeout`` (gRPC's
deadline, grpc/grpc doc/PROTOCOL-HTTP2.md ``grpc-timeout``). An asyncio timer per call
costs a ``TimerHandle``, a heap push whose comparisons run in Python, and a cancellation
that leaves the handle in the heap until the loop sweeps it: about 1.3 us per call, and
nearly every call ends long before its deadline. The calls of one method made with one
timeout value reach their deadlines in the order they started (the loop's clock never goes
back), so they wait in a :class:`DeadlineGroup`: an insertion-ordered map of call to
deadline (adding and removing a call are O(1) C operations) with a single loop timer at
the earliest deadline. When that call ends first, the timer is left alone; when it fires,
it ends the calls whose deadline has come and is set again for the new earliest one, so
an early end costs at most one spare wake-up per timeout period. When the last call of a
group ends, its timer is cancelled (nothing then refers to the channel from the loop, as
with a call's own timer); idle groups stay for the method's next calls, up to
``IDLE_GROUPS`` timeouts, beyond which :func:`group_for` drops the idle ones.

Who may call: the channel's event loop only (as for calls).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Protocol

__all__ = ["IDLE_GROUPS", "DeadlineGroup", "Expiring", "group_for"]

log = logging.getLogger("grpc_lite")

#: A method keeps at most this many timeouts' groups while they are idle.
IDLE_GROUPS = 16


class Expiring(Protocol):
    def _on_deadline(self) -> None: ...


class DeadlineGroup:
    """The pending calls of one method with one timeout, earliest deadline first."""

    __slots__ = ("_calls", "_firing", "_loop", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._calls: OrderedDict[Expiring, float] = OrderedDict()
        self._timer: asyncio.TimerHandle | None = None
        self._firing = False

    def add(self, call: Expiring, deadline: float) -> None:
        """``call`` ends at ``deadline`` (never earlier than the group's last one)."""
        self._calls[call] = deadline
        if self._timer is None and not self._firing:
            self._timer = self._loop.call_at(deadline, self._fire)

    def discard(self, call: Expiring) -> None:
        """``call`` ended before its deadline."""
        calls = self._calls
        calls.pop(call, None)
        if not calls and not self._firing:
            timer = self._timer
            if timer is not None:
                self._timer = None
                timer.cancel()

    def _fire(self) -> None:
        timer = self._timer
        assert timer is not None  # it is this call
        self._timer = None
        calls = self._calls
        # The loop runs a timer when its time is within the clock's resolution of it:
        # whatever the timer was set for has come.
        limit = max(self._loop.time(), timer.when())
        self._firing = True
        try:
            while calls:
                call, deadline = next(iter(calls.items()))
                if deadline > limit:
                    break
                del calls[call]
                try:
                    call._on_deadline()
                except Exception:
                    log.exception("grpc_lite: ending a call at its deadline raised")
        finally:
            self._firing = False
            if calls:
                self._timer = self._loop.call_at(next(iter(calls.values())), self._fire)


def group_for(
    groups: dict[float, DeadlineGroup], timeout: float, loop: asyncio.AbstractEventLoop
) -> DeadlineGroup:
    """The group of ``timeout`` in a method's ``groups``, made if needed (after dropping
    the idle groups when there are ``IDLE_GROUPS`` of them: timeouts that vary from call to
    call, such as a propagated deadline's remaining time, must not pile up)."""
    group = groups.get(timeout)
    if group is None:
        if len(groups) >= IDLE_GROUPS:
            for key in [key for key, g in groups.items() if not g._calls]:
                del groups[key]
        group = groups[timeout] = DeadlineGroup(loop)
    return group

"""An asyncio event loop whose timers fire on time (to a few microseconds, not 1 ms).

asyncio's epoll selector rounds every timeout *up* to a whole millisecond (epoll_wait's
unit), so a request scheduled by the open model would leave up to 1 ms late, and that
lateness would count in its latency. :class:`PreciseSelector` waits with ``select()`` on
the epoll descriptor itself (``select`` takes microseconds), then collects the events
with a zero-timeout epoll. The thread's timer slack is also lowered to 1 us (Linux
``prctl(PR_SET_TIMERSLACK)``; best effort).
"""

from __future__ import annotations

import asyncio
import select
import selectors
import sys
import time
from typing import Any

__all__ = ["new_event_loop"]

_PR_SET_TIMERSLACK = 29


class PreciseSelector(selectors.EpollSelector):
    #: Before blocking, poll this long (seconds) for an event, as Go's scheduler spins
    #: before it parks a thread: a reply that arrives meanwhile is seen at once instead of
    #: after the tens of microseconds a sleeping core takes to wake.
    spin = 100e-6

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout > 0:
            ready = super().select(0)
            if ready:
                return ready
            if self.spin > 0:
                end = time.perf_counter() + min(self.spin, timeout or self.spin)
                while time.perf_counter() < end:
                    ready = super().select(0)
                    if ready:
                        return ready
                if timeout is not None:
                    timeout = max(0.0, timeout - self.spin)
            if timeout is None or timeout > 0:
                try:
                    select.select([self.fileno()], [], [], timeout)
                except InterruptedError:  # pragma: no cover - retried by the loop
                    pass
            timeout = 0
        return super().select(timeout)


def _lower_timer_slack() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)
    except Exception:  # pragma: no cover - no prctl: default slack (50 us)
        pass


def new_event_loop() -> asyncio.AbstractEventLoop:
    if not hasattr(selectors, "EpollSelector"):  # pragma: no cover - not Linux
        return asyncio.new_event_loop()
    _lower_timer_slack()
    loop: Any = asyncio.SelectorEventLoop(PreciseSelector())
    return loop  # type: ignore[no-any-return]

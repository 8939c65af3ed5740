"""Connectivity states, the subchannel transition table, aggregation and the channel state.

Subchannel transitions (A61, grpc-go addrConn; connectivity-semantics-and-api.md)::

                  +-----------------------------+
                  v                             |
    IDLE ---> CONNECTING ---> READY ---> IDLE   |  (READY -> IDLE on close/GOAWAY)
     ^            |  |                          |
     |            |  +--> IDLE (early close)    |
     |            v                             |
     +--- TRANSIENT_FAILURE --> CONNECTING -----+
          (-> IDLE after backoff)

    any state ---> SHUTDOWN (terminal)

The channel's own state is the balancer's aggregate (`aggregate()`), kept with its waiters by
`ConnectivityStateManager`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import Counter
from collections.abc import Callable, Iterable

__all__ = [
    "SUBCHANNEL_TRANSITIONS",
    "ConnectivityState",
    "ConnectivityStateEvaluator",
    "ConnectivityStateManager",
    "aggregate",
    "is_valid_subchannel_transition",
]

_LOGGER = logging.getLogger("grpc_lite")


class ConnectivityState(enum.Enum):
    """The five gRPC connectivity states; public as `grpc_lite.ChannelConnectivity`.

    `.name` is the gRPC name. Values are plain ints in grpc's order (grpc.aio's enum uses
    `(0, "idle")` tuples; code that compares members is unaffected).
    """

    IDLE = 0
    CONNECTING = 1
    READY = 2
    TRANSIENT_FAILURE = 3
    SHUTDOWN = 4


_S = ConnectivityState

SUBCHANNEL_TRANSITIONS: frozenset[tuple[ConnectivityState, ConnectivityState]] = frozenset(
    {
        (_S.IDLE, _S.CONNECTING),
        (_S.CONNECTING, _S.READY),
        (_S.CONNECTING, _S.TRANSIENT_FAILURE),
        # The transport closed before it was ready (for example a GOAWAY during the
        # handshake); the LB decides whether to reconnect.
        (_S.CONNECTING, _S.IDLE),
        (_S.READY, _S.IDLE),
        # After the backoff timer (A61), or an immediate retry.
        (_S.TRANSIENT_FAILURE, _S.IDLE),
        (_S.TRANSIENT_FAILURE, _S.CONNECTING),
    }
    | {(s, _S.SHUTDOWN) for s in _S if s is not _S.SHUTDOWN}
)
"""Allowed (old, new) subchannel transitions. Self-transitions are not listed: the single
writer dedups them before consulting the table."""


def is_valid_subchannel_transition(old: ConnectivityState, new: ConnectivityState) -> bool:
    return (old, new) in SUBCHANNEL_TRANSITIONS


def aggregate(states: Iterable[ConnectivityState]) -> ConnectivityState:
    """The state a balancer with these children reports (grpc-go ConnectivityStateEvaluator).

    READY if any is READY, else CONNECTING if any is, else IDLE if any is, else
    TRANSIENT_FAILURE. SHUTDOWN children are ignored; no children means TRANSIENT_FAILURE.
    """
    seen = set(states)
    for candidate in (_S.READY, _S.CONNECTING, _S.IDLE):
        if candidate in seen:
            return candidate
    return _S.TRANSIENT_FAILURE


class ConnectivityStateEvaluator:
    """Incremental `aggregate()` over many children, O(1) per change.

    grpc-go: balancer.ConnectivityStateEvaluator. A new child is recorded as a transition
    from SHUTDOWN; a removed one as a transition to SHUTDOWN. Owner-only (serializer).
    """

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: Counter[ConnectivityState] = Counter()

    def record_transition(
        self, old: ConnectivityState, new: ConnectivityState
    ) -> ConnectivityState:
        """Record one child's change and return the new aggregate state."""
        if old is not _S.SHUTDOWN:
            self._counts[old] -= 1
        if new is not _S.SHUTDOWN:
            self._counts[new] += 1
        return self.current()

    def current(self) -> ConnectivityState:
        counts = self._counts
        for candidate in (_S.READY, _S.CONNECTING, _S.IDLE):
            if counts[candidate] > 0:
                return candidate
        return _S.TRANSIENT_FAILURE


StateListener = Callable[[ConnectivityState, ConnectivityState], None]


class ConnectivityStateManager:
    """The channel's current state, its waiters and listeners.

    grpc-go: connectivityStateManager in clientconn.go. Waiters wait on one `asyncio.Event`
    per generation: an update sets the current event and installs a fresh one, so cancelling
    one waiter never affects another (no shared Future). SHUTDOWN is terminal.

    Callers: `update_state` from the channel (inside its serializer, or on close);
    `wait_for_state_change` from any coroutine on the channel's loop.
    """

    __slots__ = ("_changed", "_listeners", "_state", "_subject")

    def __init__(self, initial: ConnectivityState = _S.IDLE, *, subject: str = "channel") -> None:
        # Immutable after __init__.
        self._subject = subject
        # Mutated only by update_state().
        self._state = initial
        self._changed = asyncio.Event()
        self._listeners: list[StateListener] = []

    @property
    def state(self) -> ConnectivityState:
        return self._state

    def update_state(self, new: ConnectivityState) -> bool:
        """Move to `new`; False if it is the current state or the manager is SHUTDOWN."""
        old = self._state
        if new is old or old is _S.SHUTDOWN:
            return False
        self._state = new
        _LOGGER.debug("%s: %s -> %s", self._subject, old.name, new.name)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for listener in tuple(self._listeners):
            try:
                listener(old, new)
            except Exception:
                _LOGGER.exception("%s: state listener %r raised", self._subject, listener)
        return True

    async def wait_for_state_change(self, source: ConnectivityState) -> ConnectivityState:
        """Return the current state once it differs from `source`.

        Returns at once when it already differs, or when the state is SHUTDOWN (terminal:
        nothing will change any more). Bound it with `asyncio.timeout()` for a deadline.
        """
        while self._state is source and self._state is not _S.SHUTDOWN:
            await self._changed.wait()
        return self._state

    def add_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call `listener(old, new)` synchronously on every change; returns a remover."""
        self._listeners.append(listener)

        def remove() -> None:
            try:
                self._listeners.remove(listener)
            except ValueError:
                pass

        return remove

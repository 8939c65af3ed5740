"""A subchannel: one address, one transport at a time, its own state machine.

grpc-go counterpart: ``addrConn`` in clientconn.go.

States and moves (the table is ``_connectivity.SUBCHANNEL_TRANSITIONS``)::

    IDLE --connect()--> CONNECTING --SETTINGS--> READY --GOAWAY/close--> IDLE
                             |
                             +--fail--> TRANSIENT_FAILURE --backoff over--> IDLE
    any --shutdown()--> SHUTDOWN

Connection backoff follows doc/connection-backoff.md (CONFORMANCE 76-80): the
delay runs from the start of one attempt to the start of the next, an attempt
may last max(delay, MIN_CONNECT_TIMEOUT), and the backoff resets only once a
connection reached READY (the server's SETTINGS arrived, 79).

Who may call: coroutines and callbacks on the channel's loop.  State changes are
reported synchronously to ``on_state_change``; the owner serializes them.
"""

import asyncio
import logging
import ssl
from collections.abc import Callable

from ._backoff import BackoffConfig, ExponentialBackoff
from ._connectivity import ConnectivityState, is_valid_subchannel_transition
from ._transport import Http2Transport, TransportError, dial

log = logging.getLogger("grpc_lite")

_S = ConnectivityState


class Subchannel:
    """One address and the transport connected to it (grpc-go: addrConn)."""

    def __init__(
        self,
        address: str,
        *,
        backoff: BackoffConfig,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        on_state_change: Callable[["Subchannel", ConnectivityState], None],
    ) -> None:
        # Immutable after __init__.
        self.address = address
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._on_state_change = on_state_change
        self._backoff = ExponentialBackoff(backoff)
        # Owned by this object.
        self.state = _S.IDLE
        self.transport: Http2Transport | None = None
        self.last_error: str | None = None
        self.connect_attempts = 0
        self._task: asyncio.Task[None] | None = None
        self._old_transports: set[Http2Transport] = set()

    def __repr__(self) -> str:
        return f"<Subchannel {self.address} {self.state.name}>"

    @property
    def subject(self) -> str:
        return f"subchannel {self.address}"

    def _transition(self, new: ConnectivityState, error: str | None = None) -> None:
        old = self.state
        if old is new:
            return
        if not is_valid_subchannel_transition(old, new):
            raise AssertionError(f"{self.subject}: invalid transition {old.name} -> {new.name}")
        self.state = new
        if error is not None:
            self.last_error = error
        if new is _S.TRANSIENT_FAILURE:
            log.warning("%s: %s -> %s: %s", self.subject, old.name, new.name, error)
        else:
            log.debug("%s: %s -> %s", self.subject, old.name, new.name)
        self._on_state_change(self, new)

    def connect(self) -> None:
        """Start connecting if IDLE (grpc-go: addrConn.connect)."""
        if self.state is not _S.IDLE:
            return
        self._transition(_S.CONNECTING)
        self._task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._backoff.next_delay()
        next_start = loop.time() + delay
        self.connect_attempts += 1
        try:
            transport = await dial(
                self.address,
                ssl_context=self._ssl_context,
                server_hostname=self._server_hostname,
                connect_timeout=self._backoff.connect_timeout(delay),
                on_goaway=self._transport_goaway,
                on_close=self._transport_closed,
            )
        except TransportError as exc:
            self._transition(_S.TRANSIENT_FAILURE, str(exc))
            await asyncio.sleep(max(0.0, next_start - loop.time()))
            self._task = None
            if self.state is _S.TRANSIENT_FAILURE:
                self._transition(_S.IDLE)
            return
        self._task = None
        if self.state is not _S.CONNECTING:  # shut down meanwhile
            transport.close("subchannel shut down")
            return
        self._backoff.reset()
        self.transport = transport
        self.last_error = None
        self._transition(_S.READY)

    def _transport_goaway(self, transport: Http2Transport) -> None:
        # Streams already open drain on the old transport; new ones go elsewhere (161).
        if transport is self.transport:
            self.transport = None
            self._old_transports.add(transport)
            if self.state is _S.READY:
                self._transition(_S.IDLE)

    def _transport_closed(self, transport: Http2Transport, reason: str) -> None:
        self._old_transports.discard(transport)
        if transport is self.transport:
            self.transport = None
            self.last_error = reason
            if self.state is _S.READY:
                self._transition(_S.IDLE)

    def shutdown(self) -> None:
        if self.state is _S.SHUTDOWN:
            return
        if self._task is not None:
            self._task.cancel()
            self._task = None
        transports = list(self._old_transports)
        if self.transport is not None:
            transports.append(self.transport)
        self.transport = None
        self._old_transports.clear()
        self._transition(_S.SHUTDOWN)
        for t in transports:
            t.close("subchannel shut down")

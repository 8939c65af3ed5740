"""A subchannel: one backend, one transport at a time, its own state machine (L3).

grpc-go counterpart: ``addrConn`` in clientconn.go.

States and moves (the table is ``_connectivity.SUBCHANNEL_TRANSITIONS``)::

    IDLE --connect()--> CONNECTING --SETTINGS--> READY --GOAWAY/close--> IDLE
                             |
                             +--every address failed--> TRANSIENT_FAILURE --backoff over--> IDLE
    any --shutdown()--> SHUTDOWN

With client-side health checking (A17; the balancer asked for it and the
service config has ``healthCheckConfig``), a READY connection runs a
``grpc.health.v1.Health/Watch`` stream and the state the balancer sees is
derived from it: CONNECTING until the first response, READY while SERVING (or
UNIMPLEMENTED), TRANSIENT_FAILURE otherwise (A17 §Client Workflow).  ``state`` is
that balancer-facing state; ``connectivity`` is the connection's own FSM.

A connection attempt tries the subchannel's addresses in order.  Connection
backoff follows grpc/grpc doc/connection-backoff.md: the delay runs from the start
of one attempt to the start of the next, one attempt may last max(delay,
MIN_CONNECT_TIMEOUT), and the backoff resets only once a connection reached READY
(the server's SETTINGS arrived, as its "Reset Backoff" says).  When the backoff is
over the subchannel goes IDLE and its balancer decides when to connect again (A61).

Who may call: coroutines and callbacks on the channel's loop.  Every state
change is reported synchronously to ``on_state_change``, which the channel
queues on its serializer before the balancer sees it.
"""

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import _codec, _observability
from ._backoff import BackoffConfig, ExponentialBackoff
from ._connectivity import ConnectivityState, is_valid_subchannel_transition
from ._proxy import HttpProxy
from ._transport import ClientStream, Http2Transport, KeepaliveParams, TransportError, dial
from .health import watch_health
from .resolver import Address
from .status import StatusCode

if TYPE_CHECKING:
    from ._observability import MetricsRecorder

log = logging.getLogger("grpc_lite")

_S = ConnectivityState

# After this many consecutive failed attempts a failure is logged at WARNING.
_WARN_AFTER_FAILURES = 2


class Subchannel:
    """One backend and the transport connected to it (grpc-go: addrConn).

    Implements ``grpc_lite.balancer.Subchannel`` for the balancer that created it.
    """

    def __init__(
        self,
        addresses: tuple[Address, ...],
        *,
        backoff: BackoffConfig,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        on_state_change: Callable[["Subchannel", ConnectivityState, str | None], None],
        on_event: Callable[[str, str], None] | None = None,
        health_service: Callable[[], str | None] | None = None,
        watch_header: tuple[bytes, int] | None = None,
        keepalive: KeepaliveParams | None = None,
        proxies: tuple[HttpProxy | None, ...] | None = None,
        check_address: Callable[[str], str | None] | None = None,
        metrics: "MetricsRecorder | None" = None,
    ) -> None:
        if not addresses:
            raise ValueError("a subchannel needs at least one address")
        if proxies is not None and len(proxies) != len(addresses):
            raise ValueError("proxies must have one entry per address")
        # Immutable after __init__.
        self._addresses = addresses
        self.address = addresses[0].addr
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._on_state_change = on_state_change
        self._on_event = on_event
        self._backoff = ExponentialBackoff(backoff)
        self._keepalive = keepalive
        self._health_service = health_service
        self._watch_header = watch_header
        # The HTTP CONNECT proxy for each address (None: direct), or None when none has one.
        self._proxies = proxies
        # Why an address may not be dialled (local credentials), or None: dial it.
        self._check_address = check_address
        # A94's subchannel metrics go there (None: no observability plugin).
        self._metrics = metrics
        first = proxies[0] if proxies is not None else None
        self.proxy: str | None = first.address if first is not None else None
        self._via = f" via proxy {self.proxy}" if first is not None else ""
        # Owned by this object.
        self.connectivity = _S.IDLE  # the connection FSM
        self.state = _S.IDLE  # what the balancer was last told
        self.health: str | None = None  # last health status (None: off or pending)
        self._health_task: asyncio.Task[None] | None = None
        self.transport: Http2Transport | None = None
        self.last_error: str | None = None
        self.connected_address: str | None = None
        self.connect_attempts = 0
        self.consecutive_failures = 0
        self.current_backoff: float | None = None
        self.next_attempt_at: float | None = None  # time.time() of the next allowed attempt
        self.calls_started = 0
        self.calls_succeeded = 0
        self.calls_failed = 0
        # Retries and hedges of calls that had used this subchannel, sent to another one
        # (PickInfo.previous_subchannels).
        self.attempts_avoided = 0
        self._task: asyncio.Task[None] | None = None
        self._draining: set[Http2Transport] = set()
        self._closing: list[Http2Transport] = []
        # Why the READY connection is being left (A94's grpc.disconnect_error).
        self._disconnect_error: str | None = None

    def __repr__(self) -> str:
        return f"<Subchannel {self.address}{self._via} {self.state.name}>"

    # ------------------------------------------------------------------ balancer.Subchannel

    @property
    def addresses(self) -> tuple[Address, ...]:
        return self._addresses

    @property
    def subject(self) -> str:
        return f"subchannel {self.address}{self._via}"

    def connect(self) -> None:
        """Start connecting if IDLE (grpc-go: addrConn.connect); a no-op otherwise."""
        if self.connectivity is not _S.IDLE:
            return
        self._transition(_S.CONNECTING)
        self._task = asyncio.get_running_loop().create_task(self._connect())

    @property
    def transports(self) -> list[Http2Transport]:
        """Every transport still open: the current one and those draining after GOAWAY."""
        found = list(self._draining) + [t for t in self._closing if not t.lost]
        if self.transport is not None:
            found.append(self.transport)
        return found

    def shutdown(self) -> None:
        if self.connectivity is _S.SHUTDOWN:
            return
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._stop_health()
        self._disconnect_error = "subchannel shutdown"
        transports = list(self._draining)
        if self.transport is not None:
            transports.append(self.transport)
        self.transport = None
        self._draining.clear()
        self._closing = transports  # still visible to Channel.close() until they close
        self._transition(_S.SHUTDOWN)
        for t in transports:
            # In-flight RPCs finish; nothing new starts (grpc-go: tearDown -> GracefulClose).
            t.graceful_close("subchannel shut down")

    # ------------------------------------------------------------------ internals

    def _transition(self, new: ConnectivityState, error: str | None = None) -> None:
        """The only writer of ``connectivity``: checks the table, logs, records, notifies."""
        old = self.connectivity
        if old is new:
            return
        if not is_valid_subchannel_transition(old, new):
            raise AssertionError(f"{self.subject}: invalid transition {old.name} -> {new.name}")
        self.connectivity = new
        if error is not None:
            self.last_error = error
        if self._metrics is not None:
            self._record_metrics(self._metrics, old, new)
        line = f"{old.name} -> {new.name}"
        if new is _S.TRANSIENT_FAILURE:
            line += f": {error}"
            level = (
                logging.WARNING
                if self.consecutive_failures >= _WARN_AFTER_FAILURES
                else logging.DEBUG
            )
            log.log(level, "%s: %s", self.subject, line)
        else:
            log.debug("%s: %s", self.subject, line)
        if self._on_event is not None:
            self._on_event(self.subject, line)
        if new is _S.READY:
            self._start_health()
        elif old is _S.READY:
            self._stop_health()
        self._report(error)

    def _record_metrics(
        self, metrics: "MetricsRecorder", old: ConnectivityState, new: ConnectivityState
    ) -> None:
        """A94: a connection attempt (one pass over the addresses) succeeded or failed, a
        READY connection was left (and why); open connections up and down with them. An
        attempt cut short by shutdown() is neither (its task is cancelled before this)."""
        o = _observability
        if new is _S.READY:
            metrics.add(o.SUBCHANNEL_ATTEMPTS_SUCCEEDED, 1)
            metrics.add(o.SUBCHANNEL_OPEN_CONNECTIONS, 1)
        elif new is _S.TRANSIENT_FAILURE and old is _S.CONNECTING:
            metrics.add(o.SUBCHANNEL_ATTEMPTS_FAILED, 1)
        if old is _S.READY:
            reason = self._disconnect_error or "unknown"
            metrics.add(o.SUBCHANNEL_DISCONNECTIONS, 1, {o.DISCONNECT_ERROR: reason})
            metrics.add(o.SUBCHANNEL_OPEN_CONNECTIONS, -1)
        self._disconnect_error = None

    def _report(self, error: str | None) -> None:
        """Tell the balancer the state it should see, if it changed."""
        state = self.connectivity
        if state is _S.READY and self._health_task is not None:
            health = self.health
            if health is None:
                state = _S.CONNECTING  # until the first health response (A17)
            elif health not in ("SERVING", "UNIMPLEMENTED"):
                state = _S.TRANSIENT_FAILURE
        if state is self.state:
            return
        self.state = state
        self._on_state_change(self, state, error)

    # ------------------------------------------------------------------ health (A17)

    def _start_health(self) -> None:
        service = self._health_service() if self._health_service is not None else None
        self.health = None
        if service is None or self.transport is None or self._watch_header is None:
            return
        transport = self.transport
        header = self._watch_header
        backoff = ExponentialBackoff(self._backoff.config)

        def open_stream(request: bytes) -> "_DirectStream":
            return _DirectStream(transport, header, _codec.frame_message(request))

        self._health_task = asyncio.get_running_loop().create_task(
            watch_health(
                service=service,
                open_stream=open_stream,
                report=self._health_report,
                backoff=backoff,
                sleep=asyncio.sleep,
                subject=self.subject,
            )
        )

    def _stop_health(self) -> None:
        task = self._health_task
        if task is not None:
            self._health_task = None
            task.cancel()  # the Watch stream is reset with CANCEL (A17)
        self.health = None

    def _health_report(self, status: str, error: str | None) -> None:
        if self._health_task is None:
            return
        if status == "STARTING":
            if self.health is None:
                return
            self.health = None  # CONNECTING while a new Watch starts (A17)
        elif status == "ENDED":
            self.health = "UNKNOWN"
        else:
            self.health = status
        if self._on_event is not None and status != "STARTING":
            self._on_event(self.subject, f"health {status}" + (f": {error}" if error else ""))
        if error is not None:
            self.last_error = error
        self._report(error)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._backoff.next_delay()
        started = loop.time()
        next_start = started + delay
        self.current_backoff = delay
        self.next_attempt_at = time.time() + delay
        timeout = self._backoff.connect_timeout(delay)
        errors = []
        proxies = self._proxies
        for index, address in enumerate(self._addresses):
            self.connect_attempts += 1
            if self._check_address is not None:
                # The peer is the proxy when there is one (C-core checks the endpoint).
                proxy = proxies[index] if proxies is not None else None
                refused = self._check_address(address.addr if proxy is None else proxy.address)
                if refused is not None:
                    errors.append(refused)
                    continue
            remaining = max(0.001, started + timeout - loop.time())
            try:
                transport = await dial(
                    address.addr,
                    ssl_context=self._ssl_context,
                    server_hostname=address.server_name or self._server_hostname,
                    connect_timeout=remaining,
                    on_goaway=self._transport_goaway,
                    on_close=self._transport_closed,
                    keepalive=self._keepalive,
                    proxy=proxies[index] if proxies is not None else None,
                )
            except TransportError as exc:
                errors.append(str(exc))
                continue
            self._task = None
            if self.connectivity is not _S.CONNECTING:  # shut down meanwhile
                transport.close("subchannel shut down")
                return
            # connection-backoff.md "Reset Backoff": only once the handshake completed.
            self._backoff.reset()
            self.consecutive_failures = 0
            self.current_backoff = None
            self.next_attempt_at = None
            self.transport = transport
            self.connected_address = address.addr
            self.last_error = None
            self._transition(_S.READY)
            return
        self.consecutive_failures += 1
        error = errors[-1] if len(errors) == 1 else "; ".join(errors)
        self._transition(_S.TRANSIENT_FAILURE, error)
        await asyncio.sleep(max(0.0, next_start - loop.time()))
        self._task = None
        if self.connectivity is _S.TRANSIENT_FAILURE:
            self.next_attempt_at = None
            self._transition(_S.IDLE)

    def _transport_goaway(self, transport: Http2Transport) -> None:
        # Open streams drain on the old transport; new ones go elsewhere (PROTOCOL-HTTP2.md,
        # GOAWAY Frame).
        if transport is self.transport:
            self.transport = None
            self._draining.add(transport)
            if self.connectivity is _S.READY:
                self._disconnect_error = transport.disconnect_error
                self._transition(_S.IDLE, "server sent GOAWAY")

    def _transport_closed(self, transport: Http2Transport, reason: str) -> None:
        self._draining.discard(transport)
        if transport is self.transport:
            self.transport = None
            if self.connectivity is _S.READY:
                self._disconnect_error = transport.disconnect_error
                self._transition(_S.IDLE, reason)


class _DirectStream:
    """A Watch call straight on a transport (no picker, no retry): ``health.HealthStream``."""

    __slots__ = ("_stream", "_waiter")

    def __init__(self, transport: Http2Transport, header: tuple[bytes, int], frame: bytes) -> None:
        self._waiter: asyncio.Future[None] | None = None
        block, size = header
        self._stream = ClientStream(self, block, size, max_receive=None, unary_response=False)
        self._stream.send(frame, True)
        transport.start_stream(self._stream)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def stream_headers(self, stream: ClientStream) -> None:
        pass

    def stream_message(self, stream: ClientStream) -> None:
        self._wake()

    def stream_done(self, stream: ClientStream) -> None:
        self._wake()

    def stream_writable(self, stream: ClientStream) -> None:
        pass

    async def read(self) -> bytes | None:
        stream = self._stream
        while True:
            if stream.messages:
                return stream.take_message()
            if stream.done:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    @property
    def code(self) -> StatusCode | None:
        return self._stream.code

    @property
    def details(self) -> str:
        return self._stream.details

    def cancel(self) -> None:
        self._stream.cancel(StatusCode.CANCELLED, "health check stopped")

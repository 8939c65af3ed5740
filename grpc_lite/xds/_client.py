"""The XdsClient: one ADS stream to the management server, shared by every xDS channel.

Protocol: the state-of-the-world (SotW) variant of the Aggregated Discovery Service, as gRFC
A27 (https://github.com/grpc/proposal/blob/master/A27-xds-global-load-balancing.md) uses it,
with the refinements of A46 (NACK semantics), A53 (ignore_resource_deletion) and A57 (failure
modes, the does-not-exist timer). The shape follows grpc-go's
internal/xds/clients/xdsclient (xdsclient.go, ads_stream.go, authority.go): resource types are
plug-ins (`ResourceType`: type URL, SotW rule, decoder), watchers subscribe by name.

What it does:

- One client per (bootstrap, event loop, resource timeout, clock) per process, refcounted:
  `acquire()` / `XdsClient.release()`. The last release cancels the stream and closes the ADS
  channel (`wait_closed()` waits for that).
- The stream is a grpc_lite bidi-streaming call on an ordinary channel to ``server_uri``,
  method ``/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources``,
  wait_for_ready: A57 "Connectivity Status Information via Connectivity State Notification":
  the client watches the ADS channel's connectivity state and reports TRANSIENT_FAILURE (with
  the subchannel's connection error) to the watchers, so the stream need not fail to learn why.
- ``watch(rtype, name, watcher)``: the first watcher of a name subscribes (a DiscoveryRequest
  for the type with every subscribed name, the type's last ACKed ``version_info`` and last
  ``response_nonce``); the last cancel unsubscribes.
- Each response: every resource decoded by its `ResourceType`; ACK (the response's version and
  nonce) when all are valid, else NACK (the last ACKed version, the response's nonce,
  ``error_detail`` INVALID_ARGUMENT listing "name: reason" per bad resource). A46: the valid
  resources of a NACKed response are applied; a subscribed invalid one gets ``on_error`` and
  keeps its cached value. Duplicate names in one response are invalid. Names nobody
  subscribed are ignored. For LDS and CDS (``all_resources_required_in_sotw``) a cached name
  missing from a response is deleted (``on_does_not_exist``) unless the server has A53's
  ``ignore_resource_deletion``: then it is kept, logged and flagged in `debug_info()`. A name
  that was never received is not deleted by its absence (the response may answer an older
  request; the timer decides), as in grpc-go's authority.go.
- A57 does-not-exist timer (``resource_timeout``, default 15 s, on the injected `Clock`):
  runs for a subscribed, uncached name once both its subscription was written on the stream
  and the stream is on a connection (the call's `wait_for_connection()`); stopped when the
  resource (valid or not) arrives and when the stream fails; on expiry ``on_does_not_exist``.
- Stream end: if it had received no response, every watcher gets ``on_error`` ("xDS stream to
  <uri> failed: <status>") (A57 "Handling ADS Stream Termination") and the next attempt waits
  for the connection backoff (grpc/grpc doc/connection-backoff.md, reset by a stream that got
  a response); after a response, it restarts at once and nobody is told. Every restart
  resubscribes every type and name with the last ACKed version of each type (as grpc-go does;
  nonces are per stream, so empty), keeping the cache: a resource that comes back unchanged is
  not delivered again.
- The ``node`` (bootstrap id, cluster, locality, metadata, plus ``user_agent_name``
  "grpc-lite", ``user_agent_version`` and ``client_features``) goes in the first request of
  each stream only (grpc-go; the xDS protocol lets later requests omit it).

Threading: everything runs on the event loop of the client (the first acquirer's). Watcher
callbacks are called synchronously from the client's own code on that loop, one at a time:
a callback that calls `watch()` or a cancel is safe (what that changes is queued behind the
callback), and a cancelled watcher hears nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from .._backoff import ExponentialBackoff
from .._call import EOF
from .._channel import Channel
from .._clock import Clock, LoopClock, TimerHandle
from .._connectivity import ConnectivityState
from .._credentials import ssl_channel_credentials
from .._options import USER_AGENT
from ..status import RpcError
from ._bootstrap import Bootstrap, Node
from ._model import DecodeResult, ResourceType
from ._protos import message_class

__all__ = [
    "ADS_METHOD",
    "CLIENT_FEATURES",
    "USER_AGENT_NAME",
    "USER_AGENT_VERSION",
    "ResourceStatus",
    "StreamState",
    "XdsClient",
    "XdsWatcher",
    "aclose_all_for_testing",
    "acquire",
]

_log = logging.getLogger("grpc_lite.xds")

ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
USER_AGENT_NAME = "grpc-lite"
#: The node's user_agent_version: the version grpc_lite sends in its user-agent header.
USER_AGENT_VERSION = USER_AGENT.rpartition("/")[2]
#: A27 ("does_not_support_overprovisioning") and the SotW resource-in-response feature.
CLIENT_FEATURES = ("envoy.lb.does_not_support_overprovisioning", "xds.config.resource-in-sotw")
_INVALID_ARGUMENT = 3  # google.rpc.Code
DEFAULT_RESOURCE_TIMEOUT = 15.0  # A57, the xDS protocol's "15-second timeout"


class XdsWatcher(Protocol):
    """What a watch reports. Called on the client's loop, synchronously, never re-entrantly."""

    def on_resource(self, type_url: str, name: str, resource: object) -> None:
        """A new (or first) valid value of the resource."""
        ...

    def on_does_not_exist(self, type_url: str, name: str) -> None:
        """The resource is gone (deleted in a SotW response) or never came (A57 timer)."""
        ...

    def on_error(self, type_url: str, name: str, error: str) -> None:
        """An ambient error: a NACK of this resource or a stream / connection failure. A
        resource delivered earlier stays valid."""
        ...


# --- the ADS stream's state machine -------------------------------------------------------


class StreamState(Enum):
    IDLE = "IDLE"
    """No stream yet (nothing was ever watched)."""
    CONNECTING = "CONNECTING"
    """A call is started and waits for the ADS channel to carry it (wait_for_ready)."""
    CONNECTED = "CONNECTED"
    """The call is on a connection; no response yet."""
    RECEIVING = "RECEIVING"
    """At least one response arrived on this stream."""
    BACKOFF = "BACKOFF"
    """The last stream failed before any response; waiting before the next one."""
    CLOSED = "CLOSED"


_S = StreamState
STREAM_TRANSITIONS: dict[StreamState, frozenset[StreamState]] = {
    _S.IDLE: frozenset({_S.CONNECTING, _S.CLOSED}),
    _S.CONNECTING: frozenset({_S.CONNECTED, _S.BACKOFF, _S.CLOSED}),
    _S.CONNECTED: frozenset({_S.RECEIVING, _S.BACKOFF, _S.CLOSED}),
    _S.RECEIVING: frozenset({_S.CONNECTING, _S.CLOSED}),
    _S.BACKOFF: frozenset({_S.CONNECTING, _S.CLOSED}),
    _S.CLOSED: frozenset(),
}


# --- a resource's state machine (the CSDS ClientResourceStatus names, A88's cache states) --


class ResourceStatus(Enum):
    REQUESTED = "REQUESTED"
    """Subscribed, nothing received yet."""
    ACKED = "ACKED"
    """The last value received was valid."""
    NACKED = "NACKED"
    """The last value received was invalid (a valid earlier one, if any, is still cached)."""
    DOES_NOT_EXIST = "DOES_NOT_EXIST"
    """Deleted by a SotW response, or the A57 timer fired."""


_R = ResourceStatus
RESOURCE_TRANSITIONS: dict[ResourceStatus, frozenset[ResourceStatus]] = {
    _R.REQUESTED: frozenset({_R.ACKED, _R.NACKED, _R.DOES_NOT_EXIST}),
    _R.ACKED: frozenset({_R.ACKED, _R.NACKED, _R.DOES_NOT_EXIST}),
    _R.NACKED: frozenset({_R.ACKED, _R.NACKED, _R.DOES_NOT_EXIST}),
    _R.DOES_NOT_EXIST: frozenset({_R.ACKED, _R.NACKED}),
}


@dataclass(eq=False, slots=True)
class _Watch:
    watcher: XdsWatcher
    cancelled: bool = False
    fresh: bool = True
    """Nothing delivered yet (the call_soon of a cached value still applies)."""


@dataclass(eq=False, slots=True)
class _Resource:
    name: str
    watches: list[_Watch] = field(default_factory=list)
    status: ResourceStatus = ResourceStatus.REQUESTED
    value: object | None = None
    has_value: bool = False
    version: str = ""
    nack_reason: str | None = None
    nack_version: str | None = None
    updated_at: float | None = None  # wall clock, for the debug view
    deletion_ignored: bool = False  # A53
    timer: TimerHandle | None = None
    timer_deadline: float | None = None  # on the client's clock
    sent_on: int = 0  # the stream generation its subscription was last written on


@dataclass(eq=False, slots=True)
class _Type:
    rtype: ResourceType
    resources: dict[str, _Resource] = field(default_factory=dict)
    version: str = ""  # last ACKed version_info
    nonce: str = ""  # last response_nonce on the current stream
    error_detail: str | None = None  # a NACK to send with the next request
    sent_on: int = 0  # the stream generation a request of this type was last written on
    sent_names: frozenset[str] = frozenset()  # in the last request written
    answered_nonce: str = ""  # the nonce of the last request written (ACK or NACK)


_Delivery = tuple[_Watch, Callable[[XdsWatcher], None]]


class XdsClient:
    """See the module docstring. Made by `acquire()`; not constructed directly."""

    def __init__(
        self,
        bootstrap: Bootstrap,
        loop: asyncio.AbstractEventLoop,
        resource_timeout: float,
        clock: Clock,
        key: tuple[Any, ...],
    ) -> None:
        self.bootstrap = bootstrap
        self.resource_timeout = resource_timeout
        self._loop = loop
        self._clock = clock
        self._key = key
        self._refs = 0
        self._types: dict[str, _Type] = {}
        self._state = StreamState.IDLE
        self._backoff = ExponentialBackoff()
        self._task: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._generation = 0  # increments per stream
        self._first_request = True
        self._queue: deque[_Delivery] = deque()
        self._delivering = False
        self._request_class: Any = message_class("envoy.service.discovery.v3.DiscoveryRequest")
        self._response_class: Any = message_class("envoy.service.discovery.v3.DiscoveryResponse")
        self._channel: Any = None
        self.last_stream_error: str | None = None
        self.last_connectivity_error: str | None = None
        # Counters for tests and the debug view.
        self.streams_started = 0
        self.responses_received = 0
        self.requests_sent = 0
        self.acks_sent = 0
        self.nacks_sent = 0

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def stream_count(self) -> int:
        """How many ADS streams this client started (one per restart)."""
        return self.streams_started

    @property
    def closed(self) -> bool:
        return self._state is StreamState.CLOSED

    def watch(self, rtype: ResourceType, name: str, watcher: XdsWatcher) -> Callable[[], None]:
        """Watch resource `name` of `rtype`; returns the cancel (idempotent)."""
        if self.closed:
            raise RuntimeError("the XdsClient is closed (every acquirer released it)")
        self._check_loop()
        if self._channel is None:
            # Before any state changes: a server_uri no channel accepts raises ValueError here
            # and leaves the client as it was.
            self._channel = self._make_channel()
        url = rtype.type_url
        ts = self._types.get(url)
        if ts is None:
            ts = self._types[url] = _Type(rtype)
        res = ts.resources.get(name)
        w = _Watch(watcher)
        if res is None:
            res = ts.resources[name] = _Resource(name)
            res.watches.append(w)
            self._subscription_changed()
        else:
            res.watches.append(w)
            if res.has_value or res.status in (_R.DOES_NOT_EXIST, _R.NACKED):
                self._loop.call_soon(self._deliver_current, ts, res, w)

        def cancel() -> None:
            if w.cancelled:
                return
            w.cancelled = True
            with contextlib.suppress(ValueError):
                res.watches.remove(w)
            if not res.watches and ts.resources.get(name) is res:
                del ts.resources[name]
                self._stop_timer(res)
                if not self.closed:
                    self._subscription_changed()

        return cancel

    def release(self) -> None:
        """Drop one reference; the last one closes the stream and the ADS channel."""
        if self._refs <= 0:
            return
        self._refs -= 1
        if self._refs == 0:
            self._close()

    async def wait_closed(self) -> None:
        """Wait until a closed client's stream task ended and its ADS channel closed."""
        if self._closing is not None:
            await asyncio.shield(self._closing)

    def debug_info(self) -> dict[str, Any]:
        """A CSDS-like view (gRFC A40's fields): the server, the stream, every resource."""
        now = self._clock.now()
        resources = []
        for url, ts in self._types.items():
            for name, res in sorted(ts.resources.items()):
                resources.append(
                    {
                        "type": ts.rtype.short_name,
                        "type_url": url,
                        "name": name,
                        "version": res.version,
                        "status": res.status.value,
                        "watchers": len(res.watches),
                        "last_nack_reason": res.nack_reason,
                        "last_nack_version": res.nack_version,
                        "last_updated": (
                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(res.updated_at))
                            if res.updated_at is not None
                            else None
                        ),
                        "deletion_ignored": res.deletion_ignored,
                        "does_not_exist_timer": (
                            {"pending": True, "expires_in_s": round(res.timer_deadline - now, 3)}
                            if res.timer is not None and res.timer_deadline is not None
                            else {"pending": False}
                        ),
                    }
                )
        return {
            "server_uri": self.bootstrap.server_uri,
            "channel_creds": self.bootstrap.channel_creds,
            "server_features": list(self.bootstrap.server_features),
            "node_id": self.bootstrap.node.id,
            "stream_state": self._state.value,
            "streams_started": self.streams_started,
            "responses_received": self.responses_received,
            "requests_sent": self.requests_sent,
            "last_stream_error": self.last_stream_error,
            "last_connectivity_error": self.last_connectivity_error,
            "resource_timeout_s": self.resource_timeout,
            "types": {
                ts.rtype.short_name: {"version": ts.version, "nonce": ts.nonce}
                for ts in self._types.values()
            },
            "resources": resources,
        }

    # ------------------------------------------------------------------ state

    def _set_state(self, new: StreamState) -> None:
        """The only writer of the stream state."""
        old = self._state
        if new not in STREAM_TRANSITIONS[old]:
            raise AssertionError(f"XdsClient: invalid stream transition {old.name} -> {new.name}")
        self._state = new
        _log.debug("xDS stream to %s: %s -> %s", self.bootstrap.server_uri, old.name, new.name)

    @staticmethod
    def _set_status(res: _Resource, new: ResourceStatus) -> None:
        """The only writer of a resource's status."""
        if new not in RESOURCE_TRANSITIONS[res.status]:
            raise AssertionError(
                f"xDS resource {res.name!r}: invalid transition {res.status.name} -> {new.name}"
            )
        res.status = new

    def _check_loop(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            raise RuntimeError("the XdsClient is used from another event loop than its own")

    # ------------------------------------------------------------------ delivery

    def _deliver(self, items: list[_Delivery]) -> None:
        """Run watcher callbacks one at a time; ones queued by a callback run after it."""
        self._queue.extend(items)
        if self._delivering:
            return
        self._delivering = True
        try:
            while self._queue:
                w, call = self._queue.popleft()
                if w.cancelled:
                    continue
                w.fresh = False
                try:
                    call(w.watcher)
                except Exception:
                    _log.exception("xDS watcher %r raised", w.watcher)
        finally:
            self._delivering = False

    def _deliver_current(self, ts: _Type, res: _Resource, w: _Watch) -> None:
        """A new watcher of a known resource hears its current state (via call_soon)."""
        if w.cancelled or not w.fresh or self.closed:
            return
        url, name = ts.rtype.type_url, res.name
        if res.has_value:
            value = res.value
            self._deliver([(w, lambda x: x.on_resource(url, name, value))])
        elif res.status is _R.DOES_NOT_EXIST:
            self._deliver([(w, lambda x: x.on_does_not_exist(url, name))])
        elif res.status is _R.NACKED and res.nack_reason is not None:
            error = _nack_message(ts, res)
            self._deliver([(w, lambda x: x.on_error(url, name, error))])

    def _to_all(self, res: _Resource, call: Callable[[XdsWatcher], None]) -> list[_Delivery]:
        return [(w, call) for w in list(res.watches)]

    def _error_to_everyone(self, error: str) -> None:
        items: list[_Delivery] = []
        for url, ts in self._types.items():
            for name, res in ts.resources.items():
                items += self._to_all(
                    res,
                    lambda x, u=url, n=name: x.on_error(u, n, error),  # type: ignore[misc]
                )
        self._deliver(items)

    # ------------------------------------------------------------------ timers (A57)

    def _maybe_start_timer(self, ts: _Type, res: _Resource) -> None:
        if (
            res.timer is None
            and not res.has_value
            and res.status is _R.REQUESTED
            and res.sent_on == self._generation
            and self._state in (_S.CONNECTED, _S.RECEIVING)
        ):
            res.timer_deadline = self._clock.now() + self.resource_timeout
            res.timer = self._clock.call_later(self.resource_timeout, self._expired, ts, res)

    @staticmethod
    def _stop_timer(res: _Resource) -> None:
        if res.timer is not None:
            res.timer.cancel()
            res.timer = None
            res.timer_deadline = None

    def _expired(self, ts: _Type, res: _Resource) -> None:
        res.timer = None
        res.timer_deadline = None
        if self.closed or ts.resources.get(res.name) is not res or res.has_value:
            return
        if res.status is not _R.REQUESTED:
            return
        self._set_status(res, _R.DOES_NOT_EXIST)
        url, name = ts.rtype.type_url, res.name
        _log.info(
            "xDS %s resource %r does not exist (nothing in %gs)",
            ts.rtype.short_name,
            name,
            self.resource_timeout,
        )
        self._deliver(self._to_all(res, lambda x: x.on_does_not_exist(url, name)))

    # ------------------------------------------------------------------ the stream

    def _subscription_changed(self) -> None:
        self._wake.set()
        if self._state is _S.IDLE:
            self._start()

    def _start(self) -> None:
        self._set_state(_S.CONNECTING)
        self._task = self._loop.create_task(self._run(), name="xds-ads-stream")
        self._monitor = self._loop.create_task(self._watch_channel(), name="xds-ads-channel")

    def _make_channel(self) -> Channel:
        b = self.bootstrap
        if b.channel_creds == "tls":
            tls = b.tls
            creds = ssl_channel_credentials(
                tls.root_certificates if tls else None,
                tls.private_key if tls else None,
                tls.certificate_chain if tls else None,
            )
            return Channel(b.server_uri, credentials=creds)
        return Channel(b.server_uri)

    async def _run(self) -> None:
        stream = self._channel.stream_stream(
            ADS_METHOD,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self._response_class.FromString,
        )
        while True:
            started = self._clock.now()
            got_response = await self._one_stream(stream)
            if self.closed:
                return
            if got_response:
                # A57: the backoff is reset by a stream that received a response.
                self._backoff.reset()
                self._set_state(_S.CONNECTING)
                continue
            self._set_state(_S.BACKOFF)
            delay = self._backoff.next_delay()
            await self._clock.sleep(max(0.0, started + delay - self._clock.now()))
            if self.closed:
                return
            self._set_state(_S.CONNECTING)

    async def _one_stream(self, stream: Any) -> bool:
        """Run one ADS stream to its end; True when it received at least one response."""
        self._generation += 1
        self.streams_started += 1
        self._first_request = True
        for ts in self._types.values():
            ts.nonce = ""  # nonces belong to a stream
            ts.error_detail = None  # a NACK not sent on the old stream answers nothing now
        self._wake.set()
        call = stream(wait_for_ready=True)
        writer = self._loop.create_task(self._writer(call, self._generation))
        got_response = False
        error: str
        try:
            await call.wait_for_connection()
            self._set_state(_S.CONNECTED)
            for ts in self._types.values():
                for res in ts.resources.values():
                    self._maybe_start_timer(ts, res)
            while True:
                response = await call.read()
                if response is EOF:
                    error = "OK: the server ended the stream"
                    break
                if not got_response:
                    got_response = True
                    self._set_state(_S.RECEIVING)
                self.responses_received += 1
                self._on_response(response)
        except RpcError as exc:
            error = f"{exc.code().name}: {exc.details()}"
        except Exception as exc:  # a bug must not end the client: log and restart
            _log.exception("xDS stream to %s: unexpected error", self.bootstrap.server_uri)
            error = f"INTERNAL: {exc!r}"
        finally:
            writer.cancel()
            call.cancel()
            for ts in self._types.values():
                for res in ts.resources.values():
                    self._stop_timer(res)
        if self.closed:
            return got_response
        message = f"xDS stream to {self.bootstrap.server_uri} failed: {error}"
        self.last_stream_error = message
        if got_response:
            _log.info("%s (after a response; restarting)", message)
        else:
            # A57 "Handling ADS Stream Termination": a stream that ends before any response
            # is a connectivity error for every watcher.
            _log.warning("%s", message)
            self._error_to_everyone(message)
        return got_response

    async def _writer(self, call: Any, generation: int) -> None:
        """The only sender on the stream: one request per type whose subscription or ACK
        state changed, built from the state at send time."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                for ts in list(self._types.values()):
                    if not self._needs_request(ts, generation):
                        continue
                    request = self._build_request(ts)
                    await call.write(request)
                    self.requests_sent += 1
                    ts.sent_on = generation
                    for name in request.resource_names:
                        res = ts.resources.get(name)
                        if res is not None:
                            res.sent_on = generation
                            self._maybe_start_timer(ts, res)
        except (RpcError, asyncio.InvalidStateError):
            pass  # the reader sees the call's end

    def _needs_request(self, ts: _Type, generation: int) -> bool:
        names = frozenset(ts.resources)
        if ts.sent_on != generation:
            return bool(names)  # a new stream: subscribe (never an empty first request)
        return (
            names != ts.sent_names
            or ts.error_detail is not None
            or ts.nonce != ts.answered_nonce  # a response to ACK
        )

    def _build_request(self, ts: _Type) -> Any:
        req: Any = self._request_class()
        req.type_url = ts.rtype.type_url
        req.version_info = ts.version
        req.response_nonce = ts.nonce
        names = frozenset(ts.resources)
        req.resource_names.extend(sorted(names))
        if ts.error_detail is not None:
            req.error_detail.code = _INVALID_ARGUMENT
            req.error_detail.message = ts.error_detail
            ts.error_detail = None
            self.nacks_sent += 1
        elif ts.nonce and ts.nonce != ts.answered_nonce:
            self.acks_sent += 1
        ts.answered_nonce = ts.nonce
        ts.sent_names = names
        if self._first_request:
            self._first_request = False
            _fill_node(req.node, self.bootstrap.node)
        return req

    # ------------------------------------------------------------------ responses

    def _on_response(self, response: Any) -> None:
        url: str = response.type_url
        ts = self._types.get(url)
        if ts is None:
            # Never subscribed on this client: nothing to ACK it for (an empty request
            # would be a wildcard subscription for LDS/CDS).
            _log.warning("xDS response of unrequested type %r ignored", url)
            return
        ts.nonce = response.nonce
        version: str = response.version_info
        decoded = [_decode(ts.rtype, any_msg) for any_msg in response.resources]
        counts: dict[str, int] = {}
        for result in decoded:
            if result.name is not None:
                counts[result.name] = counts.get(result.name, 0) + 1
        errors: list[str] = []
        valid: dict[str, object] = {}
        invalid: dict[str, str] = {}
        nameless = False
        for i, result in enumerate(decoded):
            if result.name is None:
                nameless = True
                errors.append(f"resource #{i}: {result.error or 'no name'}")
                continue
            name = result.name
            if counts[name] > 1:
                if name not in invalid:
                    invalid[name] = f"appears {counts[name]} times in the response"
                    errors.append(f"{name}: {invalid[name]}")
                continue
            if result.error is not None or result.resource is None:
                invalid[name] = result.error or "no resource"
                errors.append(f"{name}: {invalid[name]}")
                continue
            valid[name] = result.resource
        items: list[_Delivery] = []
        now = time.time()
        for name, value in valid.items():
            res = ts.resources.get(name)
            if res is None:
                continue  # A27: names nobody subscribed are ignored
            self._stop_timer(res)
            unchanged = res.has_value and res.status is _R.ACKED and res.value == value
            res.version = version
            res.deletion_ignored = False
            res.nack_reason = res.nack_version = None
            if unchanged:
                continue
            res.value, res.has_value, res.updated_at = value, True, now
            self._set_status(res, _R.ACKED)
            items += self._to_all(res, lambda x, n=name, v=value: x.on_resource(url, n, v))  # type: ignore[misc]
        for name, reason in invalid.items():
            res = ts.resources.get(name)
            if res is None:
                continue
            self._stop_timer(res)
            res.nack_reason, res.nack_version, res.updated_at = reason, version, now
            self._set_status(res, _R.NACKED)
            error = _nack_message(ts, res)
            items += self._to_all(res, lambda x, n=name, e=error: x.on_error(url, n, e))  # type: ignore[misc]
        if ts.rtype.all_resources_required_in_sotw and not nameless:
            items += self._sotw_deletions(ts, set(valid) | set(invalid), version)
        if errors:
            ts.error_detail = "; ".join(errors)
            _log.warning(
                "xDS %s response version %r NACKed: %s", ts.rtype.short_name, version, errors
            )
        else:
            ts.version = version
        self._wake.set()
        self._deliver(items)

    def _sotw_deletions(self, ts: _Type, present: set[str], version: str) -> list[_Delivery]:
        """A27: in a LDS/CDS response, a cached subscribed name that is absent was deleted
        (unless A53's ignore_resource_deletion). A name never received is left to its timer:
        the response may answer a request sent before it was subscribed."""
        items: list[_Delivery] = []
        url = ts.rtype.type_url
        for name, res in ts.resources.items():
            if name in present or not res.has_value:
                continue
            if self.bootstrap.ignore_resource_deletion:
                if not res.deletion_ignored:
                    res.deletion_ignored = True
                    _log.warning(
                        "xDS %s resource %r absent from version %r: kept "
                        "(ignore_resource_deletion, gRFC A53)",
                        ts.rtype.short_name,
                        name,
                        version,
                    )
                continue
            res.value, res.has_value, res.version = None, False, ""
            res.updated_at = time.time()
            self._set_status(res, _R.DOES_NOT_EXIST)
            items += self._to_all(res, lambda x, n=name: x.on_does_not_exist(url, n))  # type: ignore[misc]
        return items

    # ------------------------------------------------------------------ connectivity (A57)

    async def _watch_channel(self) -> None:
        channel = self._channel
        state = channel.get_state()
        while state is not ConnectivityState.SHUTDOWN:
            await channel.wait_for_state_change(state)
            new = channel.get_state()
            if new is ConnectivityState.TRANSIENT_FAILURE and state is not new:
                reason = _connection_error(channel)
                message = (
                    f"xDS channel to {self.bootstrap.server_uri} is TRANSIENT_FAILURE: {reason}"
                )
                self.last_connectivity_error = message
                _log.warning("%s", message)
                self._error_to_everyone(message)
            state = new

    # ------------------------------------------------------------------ closing

    def _close(self) -> None:
        if self.closed:
            return
        old = self._state
        self._set_state(_S.CLOSED)
        if _clients.get(self._key) is self:
            del _clients[self._key]
        for ts in self._types.values():
            for res in ts.resources.values():
                self._stop_timer(res)
                for w in res.watches:
                    w.cancelled = True
        self._queue.clear()
        tasks = [t for t in (self._task, self._monitor) if t is not None]
        for t in tasks:
            t.cancel()
        channel = self._channel
        if old is _S.IDLE and channel is None:
            return

        async def finish() -> None:
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            if channel is not None:
                await channel.close()

        self._closing = self._loop.create_task(finish(), name="xds-ads-close")


# --- the process-wide registry -------------------------------------------------------------

_clients: dict[tuple[Any, ...], XdsClient] = {}


def acquire(
    bootstrap: Bootstrap,
    *,
    resource_timeout: float = DEFAULT_RESOURCE_TIMEOUT,
    clock: Clock | None = None,
) -> XdsClient:
    """The XdsClient for `bootstrap` on the running loop (made on first use), with one more
    reference; give it back with `XdsClient.release()`. Must be called on an event loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError("grpc_lite.xds: acquire() needs a running event loop") from None
    if not resource_timeout > 0:
        raise ValueError(f"resource_timeout must be > 0 seconds, got {resource_timeout!r}")
    if isinstance(clock, LoopClock):
        clock = None  # every LoopClock is the same clock: share the client
    key = (bootstrap, loop, resource_timeout, clock)
    client = _clients.get(key)
    if client is None:
        client = XdsClient(
            bootstrap, loop, resource_timeout, clock if clock is not None else LoopClock(), key
        )
        _clients[key] = client
    client._refs += 1
    return client


async def aclose_all_for_testing() -> None:
    """Close every client of the running loop, whatever its references, and wait."""
    loop = asyncio.get_running_loop()
    mine = [c for c in list(_clients.values()) if c._loop is loop]
    for client in mine:
        client._refs = 0
        client._close()
    for client in mine:
        await client.wait_closed()


def _nack_message(ts: _Type, res: _Resource) -> str:
    return (
        f"{ts.rtype.short_name} resource {res.name!r} rejected "
        f"(version {res.nack_version!r}): {res.nack_reason}"
    )


def _decode(rtype: ResourceType, any_msg: Any) -> DecodeResult:
    try:
        return rtype.decode(any_msg.SerializeToString())
    except Exception as exc:  # the protocol says decoders never raise; one did
        _log.exception("xDS %s decoder raised", rtype.short_name)
        return DecodeResult(None, error=f"the {rtype.short_name} decoder failed: {exc!r}")


def _connection_error(channel: Any) -> str:
    snap = channel.snapshot()
    if snap.resolver_error:
        return str(snap.resolver_error)
    for sc in snap.subchannels:
        if sc.last_error:
            return str(sc.last_error)
    return "no connection error recorded"


def _fill_node(node: Any, b: Node) -> None:
    """The first request's node (A27): the bootstrap's node plus what grpc_lite is."""
    node.id = b.id
    node.cluster = b.cluster
    node.locality.region = b.locality.region
    node.locality.zone = b.locality.zone
    node.locality.sub_zone = b.locality.sub_zone
    if b.metadata:
        node.metadata.update(dict(b.metadata))
    node.user_agent_name = USER_AGENT_NAME
    node.user_agent_version = USER_AGENT_VERSION
    node.client_features.extend(CLIENT_FEATURES)

"""The pick_first balancer: one connection, to the first address that works.

grpc-go counterpart: balancer/pickfirst/pickfirstleaf (``pickfirstBalancer``). Behaviour from
gRFC A61 (address list handling, Happy Eyeballs, one address per subchannel) and A62 (sticky
TRANSIENT_FAILURE, ``shuffleAddressList``); also grpc/grpc doc/load-balancing.md.

How it runs:

- Each resolver update is turned into a flat address list: (optional shuffle of the endpoints)
  -> flatten -> de-duplicate -> interleave IPv4/IPv6 (A61). There is one subchannel
  per address, kept across updates while its address stays in the list.
- A *first pass* tries the addresses in order, one at a time. An address that fails moves the
  pass on at once; one still CONNECTING after the connection delay (250 ms) starts the next
  address too, without cancelling the first (Happy Eyeballs, A61). The first subchannel to
  be READY wins and every other subchannel is shut down.
- When every address has failed once, the balancer reports TRANSIENT_FAILURE and stays there
  (sticky TF, A62): each subchannel keeps retrying on its own backoff (we connect it again
  whenever it reports IDLE) and TF is re-reported with the latest error after every round of N
  failures. Only READY leaves it.
- When the READY connection is lost the balancer reports IDLE (load-balancing.md) and connects
  again only when an RPC is picked or ``exit_idle()`` is called.
- A retry or a hedge asks for a subchannel its call has not tried
  (`PickInfo.previous_subchannels`): pick_first has one READY subchannel at a time (every
  other one is shut down once one is READY, A61), so there is never an untried READY one to
  prefer, and it picks as usual (its `FixedResultPicker` ignores the info).

Client-side health checking is never used by top-level pick_first (A17). A parent
policy that runs pick_first per endpoint (round_robin: A61) turns it on with
``PickFirstConfig(health_check=True)`` (grpc-go: ``pickfirstleaf.EnableHealthListener``): the
subchannels then run health checks, and once one is selected its health decides what pick_first
reports (READY, CONNECTING while a health watch starts, TRANSIENT_FAILURE while unhealthy) until
its connection is lost.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import random
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import _observability
from .._clock import Clock, TimerHandle
from .._connectivity import ConnectivityState
from ..resolver import Address, AddressKey, Endpoint, address_key
from ..status import RpcError
from ._api import (
    BalancerChannel,
    BalancerState,
    ChannelState,
    ErrorPicker,
    FixedResultPicker,
    NoSubchannelAvailable,
    Picker,
    PickInfo,
    PickResult,
    QueuePicker,
    Subchannel,
    SubchannelState,
    unavailable,
)
from ._metrics import metrics_recorder

__all__ = ["PickFirstBalancer", "PickFirstBuilder", "PickFirstConfig"]

_LOGGER = logging.getLogger("grpc_lite")

_S = ConnectivityState

# A61 / grpc-go connectionDelayInterval: how long one attempt runs alone before the next
# address is tried in parallel (RFC 8305 "Connection Attempt Delay").
DEFAULT_CONNECTION_DELAY = 0.25
# A61 clamps a configured delay to RFC 8305's recommended range.
_MIN_CONNECTION_DELAY = 0.1
_MAX_CONNECTION_DELAY = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PickFirstConfig:
    """pick_first's parsed config (service_config.proto ``PickFirstConfig``; A62)."""

    shuffle_address_list: bool = False
    health_check: bool = False
    """Client-side health checking (A17) on the subchannels: set by a parent policy for its
    pick_first children (round_robin does), never by the service config JSON."""


class PickFirstBuilder:
    """Builds pick_first balancers (grpc-go: pickfirstBuilder).

    Args:
        clock: deprecated and unused: the Happy Eyeballs timer is the channel's
            (`BalancerChannel.call_later`), so a test drives it through its fake channel.
        rand: shuffles the endpoints when ``shuffleAddressList`` is set.
        connection_delay: the Happy Eyeballs delay in seconds, clamped to 0.1-2 s (A61).

    Callers: the channel (and the registry); stateless apart from the injected objects.
    """

    name = "pick_first"

    def __init__(
        self,
        clock: Clock | None = None,
        rand: random.Random | None = None,
        connection_delay: float = DEFAULT_CONNECTION_DELAY,
    ) -> None:
        if clock is not None:
            warnings.warn(
                "PickFirstBuilder(clock=...) is unused: pick_first's timer runs on the "
                "channel (BalancerChannel.call_later)",
                DeprecationWarning,
                stacklevel=2,
            )
        # Immutable after __init__.
        self._rand = rand if rand is not None else random.Random()
        self._connection_delay = min(
            max(connection_delay, _MIN_CONNECTION_DELAY), _MAX_CONNECTION_DELAY
        )

    def build(self, channel: BalancerChannel) -> PickFirstBalancer:
        return PickFirstBalancer(
            channel,
            rand=self._rand,
            connection_delay=self._connection_delay,
        )

    def parse_config(self, config: Mapping[str, Any]) -> PickFirstConfig:
        """Parse ``{"shuffleAddressList": bool}``.

        The key is matched case-insensitively; unknown fields are ignored (A62); a
        JSON null counts as absent. A value that is not a bool raises ValueError.
        """
        return _parse_config(config)


class _SubchannelData:
    """One subchannel and what pick_first knows about it (grpc-go: scData)."""

    __slots__ = (
        "address",
        "error",
        "failed_in_pass",
        "health_check",
        "key",
        "state",
        "subchannel",
    )

    def __init__(self, address: Address, health_check: bool) -> None:
        # Immutable after the balancer fills `subchannel` in.
        self.address = address
        self.key = address_key(address)
        self.health_check = health_check
        self.subchannel: Subchannel
        # The last state the subchannel reported (IDLE until it reports one).
        self.state = _S.IDLE
        self.error: str | None = None
        # A connection attempt failed (or was found in backoff) during the current pass.
        self.failed_in_pass = False


class _IdlePicker:
    """Queue the RPC and ask for a connection (grpc-go: idlePicker).

    `on_pick` is given by the balancer: it calls `Subchannel.connect()` on the first address's
    subchannel, which any code on the loop may call. The balancer itself is never called from
    here; it sees the subchannel's CONNECTING report through the serializer and starts a new
    first pass from it.
    """

    __slots__ = ("_on_pick",)

    def __init__(self, on_pick: Callable[[], None]) -> None:
        self._on_pick = on_pick

    def pick(self, info: PickInfo) -> PickResult:
        self._on_pick()
        raise NoSubchannelAvailable()


class PickFirstBalancer:
    """The pick_first policy for one channel (grpc-go: pickfirstBalancer in pickfirstleaf.go).

    Callers: the Balancer methods, the subchannel listeners and the Happy Eyeballs timer
    (`BalancerChannel.call_later`) all come from the channel's serializer, one at a time; a
    report caused by a `connect()` or `shutdown()` made here arrives after the running call
    returns.
    """

    def __init__(
        self,
        channel: BalancerChannel,
        *,
        rand: random.Random,
        connection_delay: float,
    ) -> None:
        # Immutable after __init__.
        self._channel = channel
        self._rand = rand
        self._connection_delay = connection_delay
        # A78's pick_first metrics go there (None: the channel has no observability plugin).
        self._metrics = metrics_recorder(channel)
        # Serializer-only.
        # grpc-go starts CONNECTING: the channel builds the balancer when it leaves IDLE.
        self._state = _S.CONNECTING
        self._addresses: list[Address] = []
        # Position of the pass in `_addresses`; == len() once every address was started.
        self._index = 0
        self._subchannels: dict[AddressKey, _SubchannelData] = {}
        # The subchannel that won (READY, or later unhealthy) until its connection is lost.
        self._selected: _SubchannelData | None = None
        self._health_check = False
        self._first_pass = False
        self._num_tf = 0
        self._timer: TimerHandle | None = None
        # The subchannel the current idle picker connects (IDLE state only).
        self._idle_target: _SubchannelData | None = None
        self._closed = False

    # -- Balancer --------------------------------------------------------------------------

    def update_channel_state(self, state: ChannelState) -> bool:
        if self._closed:
            return True
        self._cancel_timer()
        config = _coerce_config(state.config)
        self._health_check = config.health_check
        endpoints: Sequence[Endpoint] = state.resolver_state.endpoints
        if config.shuffle_address_list:
            # A62: shuffle the endpoints, never the addresses inside one (A61).
            endpoints = list(endpoints)
            self._rand.shuffle(endpoints)
        addresses = _interleave(_dedup([a for e in endpoints for a in e.addresses]))
        if not addresses:
            # Item 87 / 58: treated as a resolver error; the resolver backs off and retries.
            self._shutdown_all()
            self._addresses = []
            self._index = 0
            self._first_pass = False
            self._state = _S.TRANSIENT_FAILURE
            self._report(
                _S.TRANSIENT_FAILURE,
                ErrorPicker(unavailable("name resolver error: produced zero addresses")),
            )
            return False

        had_addresses = bool(self._addresses)
        self._addresses = addresses
        self._index = 0
        keys = {address_key(a) for a in addresses}

        selected = self._selected
        if selected is not None and selected.key in keys:
            # Item 86: keep the connection; it just moves to its new position.
            self._index = next(i for i, a in enumerate(addresses) if address_key(a) == selected.key)
            return True
        self._selected = None

        for key in [k for k in self._subchannels if k not in keys]:
            self._subchannels.pop(key).subchannel.shutdown()

        if selected is None and self._state is _S.IDLE and had_addresses:
            # No connection until an RPC or exit_idle(); the idle picker must point at a
            # subchannel of the new list.
            self._publish_idle_picker()
        elif selected is None and self._state is _S.TRANSIENT_FAILURE and had_addresses:
            # Sticky TF (A62): try the new list, but keep reporting TF until READY.
            self._start_first_pass()
        else:
            # First update, or CONNECTING, or READY on an address that has gone. A TF caused
            # by an empty list or a resolver error is not sticky: that is for connection
            # failures only (grpc-go).
            self._state = _S.CONNECTING
            self._report(_S.CONNECTING, QueuePicker())
            self._start_first_pass()
        return True

    def resolver_error(self, error: RpcError) -> None:
        # After a good update the error changes nothing; before one, or while already
        # failing, fail-fast RPCs fail with it (as grpc-go's pickfirst resolverErrorLocked).
        if self._state is not _S.TRANSIENT_FAILURE and self._addresses:
            _LOGGER.debug("pick_first: ignoring resolver error %s", error.details())
            return
        self._state = _S.TRANSIENT_FAILURE
        self._report(_S.TRANSIENT_FAILURE, ErrorPicker(error))

    def exit_idle(self) -> None:
        if self._state is _S.IDLE and self._addresses:
            self._start_first_pass()

    def close(self) -> None:
        self._closed = True
        self._cancel_timer()
        self._state = _S.SHUTDOWN
        self._selected = None
        for sd in self._subchannels.values():
            sd.subchannel.shutdown()
        self._subchannels.clear()
        self._idle_target = None

    # -- the first pass --------------------------------------------------------------------

    def _start_first_pass(self) -> None:
        self._first_pass = True
        self._num_tf = 0
        self._index = 0
        self._idle_target = None
        for sd in self._subchannels.values():
            sd.failed_in_pass = False
        self._request_connection()

    def _request_connection(self) -> None:
        """Start the address at `_index`, skipping those already in backoff."""
        last_error: str | None = None
        while self._index < len(self._addresses):
            sd = self._subchannel_for(self._addresses[self._index])
            if sd.state is _S.IDLE:
                sd.subchannel.connect()
                self._schedule_next_attempt()
                return
            if sd.state is _S.CONNECTING:
                # Treat an attempt already under way as ours (A61).
                self._schedule_next_attempt()
                return
            if sd.state is _S.TRANSIENT_FAILURE:
                # Still in backoff from an earlier failure: it counts as tried (A61).
                sd.failed_in_pass = True
                last_error = sd.error
                self._index += 1
                continue
            return  # READY is handled by its own report.
        self._end_first_pass_if_possible(last_error)

    def _schedule_next_attempt(self) -> None:
        self._cancel_timer()
        if self._index + 1 < len(self._addresses):
            self._timer = self._channel.call_later(
                self._connection_delay, self._on_connection_delay_expired
            )

    def _on_connection_delay_expired(self) -> None:
        """Happy Eyeballs (A61): start the next address without cancelling this one."""
        self._timer = None
        if self._closed or not self._first_pass:
            return
        self._index += 1
        if self._index < len(self._addresses):
            self._request_connection()

    def _end_first_pass_if_possible(self, last_error: str | None) -> None:
        if self._index < len(self._addresses):
            return
        if not all(sd.failed_in_pass for sd in self._subchannels.values()):
            return
        self._first_pass = False
        self._num_tf = 0
        self._state = _S.TRANSIENT_FAILURE
        self._report_failure(last_error)
        # From now on every subchannel retries on its own backoff (A61).
        for sd in list(self._subchannels.values()):
            if sd.state is _S.IDLE:
                sd.subchannel.connect()

    # -- subchannel reports ----------------------------------------------------------------

    def _on_subchannel_state(
        self, sd: _SubchannelData, _subchannel: Subchannel, state: SubchannelState
    ) -> None:
        old, new = sd.state, state.state
        sd.state = new
        if new is _S.TRANSIENT_FAILURE:
            sd.error = state.error
        if self._closed or self._subchannels.get(sd.key) is not sd or new is _S.SHUTDOWN:
            return  # A subchannel we already let go of.
        if (
            self._metrics is not None
            and new is _S.TRANSIENT_FAILURE
            and old is _S.CONNECTING
            and getattr(sd.subchannel, "connectivity", None) is not _S.READY
        ):
            # A78: a connection attempt failed (with health checking, a connected backend
            # that is not serving also reports TRANSIENT_FAILURE: not counted).
            self._metrics.add(_observability.PICK_FIRST_ATTEMPTS_FAILED, 1)

        if new is _S.READY:
            self._select(sd)
            return

        if sd is self._selected and sd.health_check and new is not _S.IDLE:
            # The connection is up; its health changed (A17).
            self._report_health(new, state.error)
            return

        # The READY connection was lost, or an attempt ended IDLE straight from CONNECTING
        # (a transport that was created and then closed before READY was seen: grpc-go
        # counts that as a connection too).
        if self._selected is not None or (old is _S.CONNECTING and new is _S.IDLE):
            self._go_idle(sd)
            return

        if self._state is _S.IDLE:
            if new is _S.CONNECTING:
                # The idle picker connected a subchannel: this is the new first pass.
                if not self._first_pass:
                    self._start_first_pass()
                self._state = _S.CONNECTING
                self._report(_S.CONNECTING, QueuePicker())
            return

        if self._first_pass:
            if new is _S.TRANSIENT_FAILURE:
                sd.failed_in_pass = True
                current = self._current_key()
                if current == sd.key:
                    # The attempt in front failed: move on at once (A61).
                    self._cancel_timer()
                    self._index += 1
                    if self._index < len(self._addresses):
                        self._request_connection()
                        return
                # An earlier Happy Eyeballs attempt, or the last address.
                self._end_first_pass_if_possible(state.error)
            # CONNECTING: already reported (or sticky TF). IDLE after backoff: connected when
            # the pass ends.
            return

        # Sticky TRANSIENT_FAILURE (A62): keep every subchannel trying.
        if self._state is not _S.TRANSIENT_FAILURE:
            return
        if new is _S.TRANSIENT_FAILURE:
            self._num_tf += 1
            if self._num_tf >= len(self._subchannels):
                self._num_tf = 0
                self._report_failure(state.error)
        elif new is _S.IDLE:
            sd.subchannel.connect()
        # CONNECTING is not reported: the channel stays TF until READY.

    def _select(self, sd: _SubchannelData) -> None:
        """The first READY subchannel wins; every other one is shut down (A61)."""
        self._cancel_timer()
        for other in self._subchannels.values():
            if other is not sd:
                other.subchannel.shutdown()
        self._subchannels = {sd.key: sd}
        self._index = next(
            (i for i, a in enumerate(self._addresses) if address_key(a) == sd.key), 0
        )
        self._first_pass = False
        self._idle_target = None
        if self._metrics is not None and sd is not self._selected:
            # A78: a connection is now used (once, however many Happy Eyeballs opened).
            self._metrics.add(_observability.PICK_FIRST_ATTEMPTS_SUCCEEDED, 1)
        self._selected = sd
        self._state = _S.READY
        # Every RPC goes to the one READY subchannel.
        self._report(_S.READY, FixedResultPicker(PickResult(subchannel=sd.subchannel)))

    def _report_health(self, new: ConnectivityState, error: str | None) -> None:
        """The selected subchannel is connected but not serving (TF), or a new health watch
        is starting (CONNECTING, A17); READY again goes through `_select`."""
        if new is _S.TRANSIENT_FAILURE:
            self._state = _S.TRANSIENT_FAILURE
            detail = error if error else "health check failed"
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(unavailable(f"unhealthy: {detail}")))
        else:
            self._state = _S.CONNECTING
            self._report(_S.CONNECTING, QueuePicker())

    def _go_idle(self, sd: _SubchannelData) -> None:
        """Item 85: report IDLE, ask for re-resolution, reconnect only when asked."""
        self._cancel_timer()
        for other in self._subchannels.values():
            if other is not sd:
                other.subchannel.shutdown()
        self._subchannels = {sd.key: sd}
        if self._metrics is not None and self._selected is not None:
            # A78: the selected subchannel lost its connection.
            self._metrics.add(_observability.PICK_FIRST_DISCONNECTIONS, 1)
        self._selected = None
        self._first_pass = False
        self._index = 0
        self._state = _S.IDLE
        self._idle_target = None
        self._publish_idle_picker()
        self._channel.resolve_now()

    def _publish_idle_picker(self) -> None:
        """Report IDLE with a picker that connects the first address (a new pass starts there)."""
        target = self._subchannel_for(self._addresses[0])
        if target is self._idle_target:
            return
        self._idle_target = target
        self._report(_S.IDLE, _IdlePicker(target.subchannel.connect))

    # -- helpers ---------------------------------------------------------------------------

    def _subchannel_for(self, address: Address) -> _SubchannelData:
        key = address_key(address)
        sd = self._subchannels.get(key)
        if sd is None:
            sd = _SubchannelData(address, self._health_check)
            sd.subchannel = self._channel.new_subchannel(
                [address],
                on_state_change=functools.partial(self._on_subchannel_state, sd),
                health_check=self._health_check,
            )
            self._subchannels[key] = sd
        return sd

    def _current_key(self) -> AddressKey | None:
        if self._index < len(self._addresses):
            return address_key(self._addresses[self._index])
        return None

    def _report_failure(self, last_error: str | None) -> None:
        detail = last_error if last_error else "connection failed"
        self._report(
            _S.TRANSIENT_FAILURE,
            ErrorPicker(unavailable(f"failed to connect to all addresses; last error: {detail}")),
        )
        self._channel.resolve_now()

    def _report(self, state: ConnectivityState, picker: Picker) -> None:
        _LOGGER.debug("pick_first: reporting %s", state.name)
        self._channel.update_state(BalancerState(state=state, picker=picker))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _shutdown_all(self) -> None:
        for sd in self._subchannels.values():
            sd.subchannel.shutdown()
        self._subchannels = {}
        self._selected = None
        self._idle_target = None


def _parse_config(config: Mapping[str, Any]) -> PickFirstConfig:
    if not isinstance(config, Mapping):
        raise ValueError(f"pick_first: config must be a JSON object, got {config!r}")
    shuffle = False
    for key, value in config.items():
        if not isinstance(key, str) or key.lower() != "shuffleaddresslist" or value is None:
            continue
        if not isinstance(value, bool):
            raise ValueError(f"pick_first: shuffleAddressList must be a bool, got {value!r}")
        shuffle = value
    return PickFirstConfig(shuffle_address_list=shuffle)


def _coerce_config(config: object) -> PickFirstConfig:
    """The channel passes what parse_config returned; a raw mapping or None is tolerated."""
    if isinstance(config, PickFirstConfig):
        return config
    if isinstance(config, Mapping):
        return _parse_config(config)
    return PickFirstConfig()


def _dedup(addresses: list[Address]) -> list[Address]:
    """Keep the first of each address: one subchannel, tried once per pass (A61)."""
    seen: set[AddressKey] = set()
    out: list[Address] = []
    for a in addresses:
        key = address_key(a)
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out


def _ip_family(addr: str) -> int:
    """4 or 6 for an IP ``host:port`` (or bare IP), 0 for anything else (unix, hostnames)."""
    if addr.startswith("["):
        end = addr.find("]")
        host = addr[1:end] if end > 0 else addr[1:]
    else:
        host, sep, _port = addr.rpartition(":")
        if not sep or ":" in host:
            host = addr  # no port, or a bare IPv6 literal
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return 0
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return 4
    return ip.version


def _interleave(addresses: list[Address]) -> list[Address]:
    """Alternate IPv4 and IPv6, starting with the family seen first (RFC 8305 §4; A61).

    ``[v4a, v4b, v6a]`` becomes ``[v4a, v6a, v4b]``. Addresses that are not IP literals (unix
    sockets, host names) keep their positions; the IP addresses fill the other slots. (grpc-go
    rotates such addresses in as a third family; keeping them in place changes nothing for a
    list of one kind.)
    """
    families = [_ip_family(a.addr) for a in addresses]
    queues: dict[int, deque[Address]] = {4: deque(), 6: deque()}
    order: list[int] = []
    for family, a in zip(families, addresses, strict=True):
        if family:
            queues[family].append(a)
            if family not in order:
                order.append(family)
    if len(order) < 2:
        return addresses
    out = list(addresses)
    turn = 0
    for i, family in enumerate(families):
        if not family:
            continue
        q = queues[order[turn]]
        if not q:
            q = queues[order[1 - turn]]
        out[i] = q.popleft()
        turn = 1 - turn
    return out

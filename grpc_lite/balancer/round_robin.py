"""The round_robin balancer: a connection to every address, RPCs spread over the READY ones.

grpc-go counterpart: balancer/roundrobin on balancer/endpointsharding; the aggregation and the
TRANSIENT_FAILURE message follow C-core's round_robin.cc. CONFORMANCE items 90-98.

- One subchannel per address, created and connected at once (item 90). Duplicate addresses get
  a subchannel each, so ``[A, A]`` opens two connections to A.
- A subchannel that goes IDLE is connected again at once (item 94).
- The aggregate state is READY if any subchannel is READY, else CONNECTING if any is CONNECTING
  or IDLE, else TRANSIENT_FAILURE (item 92). A subchannel that reported TRANSIENT_FAILURE counts
  as TRANSIENT_FAILURE until it reports READY (sticky TF, item 93), so a channel whose backends
  are all down does not flap to CONNECTING while they retry.
- The picker cycles over the READY subchannels in list order from a random start (item 91).
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._connectivity import ConnectivityState, ConnectivityStateEvaluator
from ..resolver import Address
from ..status import RpcError
from ._api import (
    BalancerChannel,
    BalancerState,
    ChannelState,
    ErrorPicker,
    Picker,
    PickInfo,
    PickResult,
    QueuePicker,
    Subchannel,
    SubchannelState,
    unavailable,
)
from .pick_first import AddressKey, address_key

__all__ = ["RoundRobinBalancer", "RoundRobinBuilder", "RoundRobinConfig"]

_LOGGER = logging.getLogger("grpc_lite")

_S = ConnectivityState


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundRobinConfig:
    """round_robin has no options (service_config.proto ``RoundRobinConfig``)."""


class RoundRobinBuilder:
    """Builds round_robin balancers.

    Args:
        rand: chooses each picker's starting index; a fresh ``random.Random`` by default.
    """

    name = "round_robin"

    def __init__(self, rand: random.Random | None = None) -> None:
        # Immutable after __init__.
        self._rand = rand if rand is not None else random.Random()

    def build(self, channel: BalancerChannel) -> RoundRobinBalancer:
        return RoundRobinBalancer(channel, rand=self._rand)

    def parse_config(self, config: Mapping[str, Any]) -> RoundRobinConfig:
        """Accept any JSON object (fields are ignored); anything else raises ValueError."""
        if not isinstance(config, Mapping):
            raise ValueError(f"round_robin: config must be a JSON object, got {config!r}")
        return RoundRobinConfig()


class _Entry:
    """One address's subchannel and its state as aggregation sees it."""

    __slots__ = ("address", "effective", "key", "removed", "result", "state", "subchannel")

    def __init__(self, address: Address) -> None:
        self.address = address
        self.key = address_key(address)
        self.subchannel: Subchannel
        self.result: PickResult
        # The last state the subchannel reported.
        self.state = _S.IDLE
        # What aggregation counts: CONNECTING, READY or TRANSIENT_FAILURE (IDLE counts as
        # CONNECTING, as in C-core; TF sticks until READY).
        self.effective = _S.CONNECTING
        self.removed = False


class _RoundRobinPicker:
    """Cycles over an immutable tuple of READY subchannels from a given start (item 91).

    `itertools.count` makes a pick O(1) and safe from any coroutine (its ``__next__`` is
    atomic under the GIL).
    """

    __slots__ = ("_n", "_next", "_results")

    def __init__(self, results: tuple[PickResult, ...], start: int) -> None:
        self._results = results
        self._n = len(results)
        self._next = itertools.count(start).__next__

    def pick(self, info: PickInfo) -> PickResult:
        # Hot path: one counter step and one tuple index; nothing may be added here.
        return self._results[self._next() % self._n]


class RoundRobinBalancer:
    """The round_robin policy for one channel.

    Callers: every method and the subchannel listeners come from the channel's serializer
    (it has no timers of its own).
    """

    def __init__(self, channel: BalancerChannel, *, rand: random.Random) -> None:
        # Immutable after __init__.
        self._channel = channel
        self._rand = rand
        # Serializer-only.
        self._entries: list[_Entry] = []
        self._evaluator = ConnectivityStateEvaluator()
        self._reported: ConnectivityState | None = None
        self._last_error: str | None = None
        self._closed = False

    # -- Balancer --------------------------------------------------------------------------

    def update_channel_state(self, state: ChannelState) -> bool:
        if self._closed:
            return True
        addresses = state.resolver_state.addresses
        if not addresses:
            # Item 98 (C-core): fail RPCs; the resolver backs off and retries.
            self._remove(self._entries)
            self._entries = []
            self._evaluator = ConnectivityStateEvaluator()
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(unavailable("empty address list")))
            return False

        # Item 97: match old and new lists as multisets, so an unchanged address keeps its
        # subchannel and each duplicate keeps one of its own.
        unused: dict[AddressKey, list[_Entry]] = {}
        for entry in reversed(self._entries):
            unused.setdefault(entry.key, []).append(entry)
        entries: list[_Entry] = []
        for address in addresses:
            stack = unused.get(address_key(address))
            if stack:
                entry = stack.pop()
                entry.address = address
            else:
                entry = self._new_entry(address)
            entries.append(entry)
        self._remove([e for stack in unused.values() for e in stack])
        self._entries = entries
        self._publish(ready_changed=True, failed=True)
        return True

    def resolver_error(self, error: RpcError) -> None:
        if self._closed:
            return
        if not self._entries:
            # No good update yet (item 58).
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(error))
        elif self._evaluator.current() is _S.TRANSIENT_FAILURE:
            message = (
                f"connections to all backends failing; last error: {self._last_error}; "
                f"last resolver error: {error.details()}"
            )
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(unavailable(message)))
        # Otherwise keep using the last good addresses (item 66).

    def exit_idle(self) -> None:
        """Nothing to do: round_robin never leaves a subchannel IDLE (item 94)."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._remove(self._entries)
        self._entries = []

    # -- subchannels -----------------------------------------------------------------------

    def _new_entry(self, address: Address) -> _Entry:
        entry = _Entry(address)
        # A17: round_robin runs client-side health checking when the config asks for it.
        entry.subchannel = self._channel.new_subchannel(
            [address],
            on_state_change=functools.partial(self._on_subchannel_state, entry),
            health_check=True,
        )
        entry.result = PickResult(subchannel=entry.subchannel)
        self._evaluator.record_transition(_S.SHUTDOWN, entry.effective)
        # Item 90: every address is connected eagerly.
        entry.subchannel.connect()
        return entry

    def _remove(self, entries: list[_Entry]) -> None:
        for entry in entries:
            entry.removed = True
            self._evaluator.record_transition(entry.effective, _S.SHUTDOWN)
            entry.subchannel.shutdown()

    def _on_subchannel_state(
        self, entry: _Entry, _subchannel: Subchannel, state: SubchannelState
    ) -> None:
        new = state.state
        entry.state = new
        if self._closed or entry.removed or new is _S.SHUTDOWN:
            return
        old_effective = entry.effective
        if new is _S.READY:
            effective = _S.READY
        elif new is _S.TRANSIENT_FAILURE:
            effective = _S.TRANSIENT_FAILURE
            if state.error:
                self._last_error = state.error
            self._channel.resolve_now()
        else:
            if new is _S.IDLE:
                # Item 94: reconnect at once, without waiting for an RPC.
                entry.subchannel.connect()
                self._channel.resolve_now()
            # Item 93: after TF, CONNECTING and IDLE do not count until READY.
            effective = (
                _S.TRANSIENT_FAILURE if old_effective is _S.TRANSIENT_FAILURE else (_S.CONNECTING)
            )
        if effective is not old_effective:
            entry.effective = effective
            self._evaluator.record_transition(old_effective, effective)
        ready_changed = (old_effective is _S.READY) is not (effective is _S.READY)
        self._publish(ready_changed=ready_changed, failed=new is _S.TRANSIENT_FAILURE)

    # -- reporting -------------------------------------------------------------------------

    def _publish(self, *, ready_changed: bool, failed: bool) -> None:
        """Report the aggregate (item 92) when it, the READY set or the last error changed."""
        state = self._evaluator.current()
        picker: Picker
        if state is _S.READY:
            if self._reported is _S.READY and not ready_changed:
                return
            results = tuple(e.result for e in self._entries if e.effective is _S.READY)
            picker = _RoundRobinPicker(results, self._rand.randrange(len(results)))
        elif state is _S.CONNECTING:
            if self._reported is _S.CONNECTING:
                return
            picker = QueuePicker()
        else:
            if self._reported is _S.TRANSIENT_FAILURE and not failed:
                return
            # Item 96 (C-core wording).
            picker = ErrorPicker(
                unavailable(f"connections to all backends failing; last error: {self._last_error}")
            )
        self._report(state, picker)

    def _report(self, state: ConnectivityState, picker: Picker) -> None:
        _LOGGER.debug("round_robin: reporting %s", state.name)
        self._reported = state
        self._channel.update_state(BalancerState(state=state, picker=picker))

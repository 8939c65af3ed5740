"""The round_robin balancer: a connection to every endpoint, RPCs spread over the READY ones.

grpc-go counterpart: balancer/roundrobin on balancer/endpointsharding (gRFC A61: round_robin
delegates to one pick_first per endpoint); the aggregation and the TRANSIENT_FAILURE message
follow C-core's round_robin.cc. Spec: grpc/grpc doc/load-balancing.md.

- One pick_first child per endpoint (`ChildBalancers`), created and connected at once, with
  client-side health checking on (A17, ``PickFirstConfig(health_check=True)``).
  Duplicate endpoints get a child each, so ``[A, A]`` opens two connections to A.
- A child that goes IDLE is asked to connect again at once (load-balancing.md); round_robin asks for
  re-resolution whenever one of its subchannels fails or goes IDLE (the children's own
  requests are not passed on).
- The aggregate state is READY if any child is READY, else CONNECTING if any is CONNECTING or
  IDLE, else TRANSIENT_FAILURE (load-balancing.md). A child that reported TRANSIENT_FAILURE
  counts as TRANSIENT_FAILURE until it reports READY (sticky TF), so a channel whose backends
  are all down does not flap to CONNECTING while they retry.
- The picker cycles over the READY children in list order from a random start (as C-core). A
  child whose picker is a `FixedResultPicker` (pick_first's while READY) is picked by indexing
  its result, so the usual pick is one counter step and one tuple index, as with one
  subchannel per address; other children's pickers are called.
- A retry or a hedge (`PickInfo.previous_subchannels` not empty) goes to the first READY
  child from the usual position whose subchannel the call has not tried (the positions
  passed over are used up, so the other backends share a tried one's retries evenly), and to
  the usual one when every READY child was tried (a grpc_lite extension after Envoy's
  ``envoy.retry_host_predicates.previous_hosts``): a call's hedges and retries land on
  distinct backends while there are enough READY ones, so a backend that froze with its
  connection open costs its calls one attempt, not all of them.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._connectivity import ConnectivityState, ConnectivityStateEvaluator
from ..resolver import EndpointKey, ResolverState, endpoint_key
from ..status import RpcError
from ._api import (
    BalancerChannel,
    BalancerState,
    ChannelState,
    ErrorPicker,
    FixedResultPicker,
    Picker,
    PickInfo,
    PickResult,
    QueuePicker,
    Subchannel,
    SubchannelState,
    unavailable,
)
from ._children import ChildBalancers
from .pick_first import PickFirstConfig

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


# A child's key: the endpoint and which of its duplicates this is (0 for the first).
_Key = tuple[EndpointKey, int]
_CHILD_POLICY = "pick_first"
_CHILD_CONFIG = PickFirstConfig(health_check=True)


class _Entry:
    """One endpoint's child as aggregation sees it."""

    __slots__ = ("effective", "key", "pick", "picker", "result")

    def __init__(self, key: _Key) -> None:
        self.key = key
        # What aggregation counts: CONNECTING, READY or TRANSIENT_FAILURE (IDLE counts as
        # CONNECTING, as in C-core; TF sticks until READY).
        self.effective = _S.CONNECTING
        # The child's picker, its bound ``pick`` and (a FixedResultPicker's) its fixed result,
        # while it is READY.
        self.picker: Picker | None = None
        self.pick: Callable[[PickInfo], PickResult] | None = None
        self.result: PickResult | None = None


class _RoundRobinPicker:
    """Cycles over the READY children's fixed results from a given start.

    `itertools.count` makes a pick O(1) and safe from any coroutine (its ``__next__`` is
    atomic under the GIL).
    """

    __slots__ = ("_n", "_next", "_results")

    def __init__(self, results: tuple[PickResult, ...], start: int) -> None:
        self._results = results
        self._n = len(results)
        self._next = itertools.count(start).__next__

    def pick(self, info: PickInfo) -> PickResult:
        # Hot path: one counter step and one tuple index (a first attempt's
        # previous_subchannels is the empty tuple); nothing may be added here.
        if info.previous_subchannels:
            return self._pick_untried(info.previous_subchannels)
        return self._results[self._next() % self._n]

    def _pick_untried(self, previous: tuple[Subchannel, ...]) -> PickResult:
        """A retry or a hedge: the first READY child from the usual position whose
        subchannel the call has not tried; the usual pick when every one was tried.

        The positions passed over are used up as if picked (Envoy picks again, up to
        ``host_selection_retry_max_attempts``), so the child after a tried one gets no more
        than its share: a frozen backend's retries spread over all the others."""
        next_ = self._next
        i = next_()
        results, n = self._results, self._n
        for k in range(n):
            result = results[(i + k) % n]
            if result.subchannel not in previous:
                for _ in range(k):
                    next_()
                return result
        return results[i % n]


class _ChildRoundRobinPicker:
    """Cycles over the READY children's pickers (bound ``pick`` methods) from a given start:
    used when a READY child's picker is not a FixedResultPicker."""

    __slots__ = ("_n", "_next", "_picks")

    def __init__(self, picks: tuple[Callable[[PickInfo], PickResult], ...], start: int) -> None:
        self._picks = picks
        self._n = len(picks)
        self._next = itertools.count(start).__next__

    def pick(self, info: PickInfo) -> PickResult:
        # Hot path: one counter step, one tuple index and the child's pick.
        if info.previous_subchannels:
            return self._pick_untried(info)
        return self._picks[self._next() % self._n](info)

    def _pick_untried(self, info: PickInfo) -> PickResult:
        """A retry or a hedge: the child at the usual position picks (with the same info,
        so it may avoid the call's subchannels itself); when it gives a subchannel the call
        has tried, or cannot pick, the next READY children are asked in turn for one it has
        not (the positions passed over are used up, as in `_RoundRobinPicker`). None has
        one: the usual child's result (or its exception)."""
        previous = info.previous_subchannels
        next_ = self._next
        i = next_()
        picks, n = self._picks, self._n
        usual: PickResult | None = None
        error: Exception | None = None
        try:
            usual = picks[i % n](info)
        except Exception as exc:  # re-raised below unless another child has an untried one
            error = exc
        else:
            if usual.subchannel not in previous:
                return usual
        for k in range(1, n):
            try:
                result = picks[(i + k) % n](info)
            except Exception:
                continue  # this child cannot pick now
            if result.subchannel not in previous:
                for _ in range(k):
                    next_()
                return result
        if usual is None:
            assert error is not None
            raise error
        return usual


class RoundRobinBalancer:
    """The round_robin policy for one channel: a parent of pick_first children.

    Callers: every method, the children's reports and the subchannel listeners come from the
    channel's serializer, one at a time (the children's reports are queued there by
    `ChildBalancers`).
    """

    def __init__(self, channel: BalancerChannel, *, rand: random.Random) -> None:
        # Immutable after __init__.
        self._channel = channel
        self._rand = rand
        self._children: ChildBalancers[_Key] = ChildBalancers(
            channel,
            on_child_state=self._on_child_state,
            on_subchannel_state=self._on_subchannel_state,
            on_resolve_now=_ignore,
            exit_idle_children=True,
        )
        # Serializer-only.
        self._entries: list[_Entry] = []
        self._by_key: dict[_Key, _Entry] = {}
        self._evaluator = ConnectivityStateEvaluator()
        self._reported: ConnectivityState | None = None
        self._last_error: str | None = None
        self._closed = False

    # -- Balancer --------------------------------------------------------------------------

    def update_channel_state(self, state: ChannelState) -> bool:
        if self._closed:
            return True
        resolver_state = state.resolver_state
        endpoints = [e for e in resolver_state.endpoints if e.addresses]
        if not endpoints:
            # Item 98 (C-core): fail RPCs; the resolver backs off and retries.
            self._remove(self._entries)
            self._entries = []
            self._evaluator = ConnectivityStateEvaluator()
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(unavailable("empty address list")))
            return False

        # Item 97: the n-th copy of an endpoint keeps the n-th copy's child, so an unchanged
        # endpoint keeps its connection and each duplicate keeps one of its own.
        # The children's reports to this update are queued: they arrive after the aggregate
        # below is published (as subchannel reports do).
        entries: list[_Entry] = []
        copies: dict[EndpointKey, int] = {}
        for endpoint in endpoints:
            ekey = endpoint_key(endpoint)
            n = copies.get(ekey, 0)
            copies[ekey] = n + 1
            key = (ekey, n)
            entry = self._by_key.get(key)
            if entry is None:
                entry = self._by_key[key] = _Entry(key)
                self._evaluator.record_transition(_S.SHUTDOWN, entry.effective)
            entries.append(entry)
            child_state = ResolverState(endpoints=(endpoint,), attributes=resolver_state.attributes)
            self._children.update(
                key, _CHILD_POLICY, ChannelState(resolver_state=child_state, config=_CHILD_CONFIG)
            )
        new_keys = {e.key for e in entries}
        self._remove([e for e in self._entries if e.key not in new_keys])
        self._entries = entries
        self._publish(ready_changed=True, failed=True)
        return True

    def resolver_error(self, error: RpcError) -> None:
        if self._closed:
            return
        if not self._entries:
            # No good update yet (as grpc-go's pickfirst resolverErrorLocked).
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(error))
        elif self._evaluator.current() is _S.TRANSIENT_FAILURE:
            message = (
                f"connections to all backends failing; last error: {self._last_error}; "
                f"last resolver error: {error.details()}"
            )
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(unavailable(message)))
        # Otherwise keep using the last good addresses (as grpc-go does).

    def exit_idle(self) -> None:
        """The children connect on their own when IDLE (load-balancing.md); this asks them too."""
        self._children.exit_idle()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._children.close()
        self._entries = []
        self._by_key.clear()

    # -- children --------------------------------------------------------------------------

    def _remove(self, entries: list[_Entry]) -> None:
        for entry in entries:
            self._evaluator.record_transition(entry.effective, _S.SHUTDOWN)
            del self._by_key[entry.key]
            self._children.remove(entry.key)

    def _on_subchannel_state(self, _key: _Key, _sc: Subchannel, state: SubchannelState) -> None:
        """Before the child sees it: remember the error, ask for re-resolution (C-core does)."""
        new = state.state
        if new is _S.TRANSIENT_FAILURE:
            if state.error:
                self._last_error = state.error
            self._channel.resolve_now()
        elif new is _S.IDLE:
            self._channel.resolve_now()

    def _on_child_state(self, key: _Key, state: BalancerState) -> None:
        entry = self._by_key.get(key)
        if entry is None or self._closed:
            return
        new = state.state
        old_effective = entry.effective
        if new is _S.READY:
            effective = _S.READY
        elif new is _S.TRANSIENT_FAILURE:
            effective = _S.TRANSIENT_FAILURE
        else:
            # Item 93: after TF, CONNECTING and IDLE do not count until READY.
            effective = (
                _S.TRANSIENT_FAILURE if old_effective is _S.TRANSIENT_FAILURE else _S.CONNECTING
            )
        ready_changed = (old_effective is _S.READY) is not (effective is _S.READY)
        if effective is _S.READY:
            picker = state.picker
            if entry.picker is not picker:
                ready_changed = True
                entry.picker = picker
                entry.pick = picker.pick
                entry.result = picker.result if isinstance(picker, FixedResultPicker) else None
        else:
            entry.picker = entry.pick = entry.result = None
        if effective is not old_effective:
            entry.effective = effective
            self._evaluator.record_transition(old_effective, effective)
        self._publish(ready_changed=ready_changed, failed=new is _S.TRANSIENT_FAILURE)

    # -- reporting -------------------------------------------------------------------------

    def _publish(self, *, ready_changed: bool, failed: bool) -> None:
        """Report the aggregate state when it, the READY set or the last error changed."""
        state = self._evaluator.current()
        picker: Picker
        if state is _S.READY:
            if self._reported is _S.READY and not ready_changed:
                return
            ready = [e for e in self._entries if e.pick is not None]
            start = self._rand.randrange(len(ready))
            results = tuple([e.result for e in ready if e.result is not None])
            if len(results) == len(ready):
                picker = _RoundRobinPicker(results, start)
            else:
                picks = tuple([e.pick for e in ready if e.pick is not None])
                picker = _ChildRoundRobinPicker(picks, start)
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


def _ignore(_key: _Key) -> None:
    """The children's re-resolution requests: round_robin makes its own."""

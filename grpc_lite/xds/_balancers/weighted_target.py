"""The ``weighted_target_experimental`` policy: RPCs spread over children by weight.

grpc-go counterpart: balancer/weightedtarget (weightedtarget.go,
weightedaggregator/aggregator.go); gRFC A28 "weighted_target LB policy". In the xDS tree it
picks the locality within a priority (its children are the localities, named
``str(LocalityId)``, weighted by the EDS locality weights).

Config::

    {"targets": {"NAME": {"weight": 3, "childPolicy": [{"round_robin": {}}]}}}

- Each target gets the endpoints whose ``xds.path`` starts with its name, with that head
  removed (gRFC A56 "Hierarchical Addresses"). Targets no longer in the config are closed.
- Aggregate state as grpc-go's weightedaggregator: READY if any target is READY, else
  CONNECTING, else IDLE, else TRANSIENT_FAILURE (TRANSIENT_FAILURE sticks through
  CONNECTING); with no targets, TRANSIENT_FAILURE.
- The picker: READY -> weighted random over the READY targets (each RPC draws from the
  builder's RNG); CONNECTING -> queue; IDLE or TRANSIENT_FAILURE -> weighted random over
  the targets in that state (their pickers leave IDLE or fail the RPC with their error).
  When one target is in that state, its own picker is published: a draw with one outcome
  picks it anyway (and the common one-locality cluster pays no draw per RPC).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from grpc_lite._connectivity import ConnectivityState
from grpc_lite.balancer import (
    BalancerChannel,
    ChannelState,
    ErrorPicker,
    Picker,
    PickInfo,
    PickResult,
    QueuePicker,
)
from grpc_lite.resolver import ResolverState

from ._common import (
    ChildPolicy,
    JsonObject,
    NamedChildrenBalancer,
    parse_child_policy,
    split_by_path,
    typed_config,
    unavailable,
)

__all__ = [
    "WeightedTarget",
    "WeightedTargetBalancer",
    "WeightedTargetBuilder",
    "WeightedTargetConfig",
]

NAME = "weighted_target_experimental"
_S = ConnectivityState


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightedTarget:
    weight: int
    child_policy: ChildPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightedTargetConfig:
    targets: Mapping[str, WeightedTarget]

    def to_json(self, *, full: bool = True) -> dict[str, Any]:
        """The JSON config; with ``full=False`` child policies are given by name only."""
        return {
            "targets": {
                name: {"weight": t.weight, "childPolicy": t.child_policy.as_json(full)}
                for name, t in self.targets.items()
            }
        }


class WeightedTargetBuilder:
    """Builds weighted_target balancers.

    Args:
        rand: the RNG of the pickers' weighted draws (a fresh ``random.Random`` by default);
            tests pass a seeded one.
    """

    name = NAME

    def __init__(self, rand: random.Random | None = None) -> None:
        # Immutable after __init__.
        self._rand = rand if rand is not None else random.Random()

    def build(self, channel: BalancerChannel) -> WeightedTargetBalancer:
        return WeightedTargetBalancer(channel, rand=self._rand)

    def parse_config(self, config: Mapping[str, Any]) -> WeightedTargetConfig:
        top = JsonObject(config, NAME)
        targets_json = top.object("targets")
        top.done()
        targets: dict[str, WeightedTarget] = {}
        for name, target_json in targets_json.items():
            where = f"{NAME}.targets[{name!r}]"
            target = JsonObject(target_json, where)
            weight = target.integer("weight", minimum=1)
            if weight > 0xFFFFFFFF:
                raise ValueError(f"{where}.weight: must fit in 32 bits, got {weight}")
            policy = parse_child_policy(target.array("childPolicy"), f"{where}.childPolicy")
            target.done()
            targets[name] = WeightedTarget(weight=weight, child_policy=policy)
        return WeightedTargetConfig(targets=targets)


class _WeightedPicker:
    """Draws a child picker with probability weight / total (immutable).

    ``bisect`` over the running totals: O(log n) per RPC.
    """

    __slots__ = ("_picks", "_random", "_total", "_totals")

    def __init__(self, entries: list[tuple[int, Picker]], random_: Callable[[], float]) -> None:
        self._picks = tuple(p.pick for _, p in entries)
        self._totals = tuple(itertools.accumulate(w for w, _ in entries))
        self._total = self._totals[-1]
        self._random = random_

    def pick(self, info: PickInfo) -> PickResult:
        i = bisect.bisect_right(self._totals, self._random() * self._total)
        return self._picks[min(i, len(self._picks) - 1)](info)


class WeightedTargetBalancer(NamedChildrenBalancer):
    """One weighted_target instance. Callers: the channel's serializer only."""

    def __init__(self, channel: BalancerChannel, *, rand: random.Random) -> None:
        super().__init__(channel)
        # Immutable after __init__.
        self._random = rand.random
        # Serializer-only.
        self._config: WeightedTargetConfig | None = None

    def update_channel_state(self, state: ChannelState) -> bool:
        if self._closed:
            return True
        config = self._config = typed_config(state, WeightedTargetConfig, NAME)
        resolver_state = state.resolver_state
        by_target = split_by_path(resolver_state.endpoints)
        children: dict[str, tuple[ChildPolicy, ChannelState]] = {}
        for name, target in config.targets.items():
            endpoints = tuple(by_target.get(name, ()))
            child_state = ResolverState(endpoints=endpoints, attributes=resolver_state.attributes)
            children[name] = (target.child_policy, ChannelState(resolver_state=child_state))
        self._sync_children(children)
        return True

    def debug_info(self) -> dict[str, Any]:
        config = self._config
        return {
            "policy": NAME,
            "state": self._states.current().name,
            "config": config.to_json(full=False) if config is not None else None,
            "children": {
                name: {
                    "weight": config.targets[name].weight if config is not None else None,
                    **info,
                }
                for name, info in self._children_debug_info().items()
            },
        }

    def _publish(self) -> None:
        config = self._config
        assert config is not None
        states = self._states
        if not len(states):
            error = unavailable("weighted_target: no targets to pick from")
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(error))
            return
        current = states.current()
        if current is _S.CONNECTING:
            picker: Picker = QueuePicker()
        else:
            entries = [
                (config.targets[name].weight, states.state(name).picker)
                for name in states.names()
                if states.counted(name) is current
            ]
            # Hot path: one target (one locality) needs no draw; its picker is the answer.
            picker = entries[0][1] if len(entries) == 1 else _WeightedPicker(entries, self._random)
        self._report(current, picker)

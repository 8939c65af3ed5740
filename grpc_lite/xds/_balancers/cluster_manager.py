"""The ``xds_cluster_manager_experimental`` policy: one child per cluster, picked per RPC.

grpc-go counterpart: internal/xds/balancer/clustermanager (clustermanager.go, picker.go,
balancerstateaggregator.go); gRFC A28 "xds_cluster_manager LB policy". The xds resolver
generates its config (one child per cluster the chosen virtual host's routes name, gRFC A74)
and its `ConfigSelector` puts the route's cluster in the RPC's attributes.

Config::

    {"children": {"cluster:NAME": {"childPolicy": [{"cds_experimental": {"cluster": "NAME"}}]}}}

- Each child gets the channel's resolver state unchanged (the cds child reads the
  ``xds.config`` attribute) and its own parsed child policy. Children no longer in the
  config are closed.
- The picker dispatches on ``PickInfo.attributes["xds.cluster"]`` to that child's last
  picker, whatever its state (a CONNECTING child queues, a failing one fails); an RPC
  without the attribute, or naming a cluster that is not a child, fails UNAVAILABLE naming it.
- The aggregate state: READY if any child is READY, else CONNECTING, else IDLE, else
  TRANSIENT_FAILURE, a child's TRANSIENT_FAILURE sticking through CONNECTING (as grpc-go).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from grpc_lite.balancer import BalancerChannel, ChannelState, Picker, PickInfo, PickResult

from ._common import (
    ATTR_CLUSTER,
    ChildPolicy,
    JsonObject,
    NamedChildrenBalancer,
    parse_child_policy,
    typed_config,
    unavailable,
)

__all__ = ["ClusterManagerBalancer", "ClusterManagerBuilder", "ClusterManagerConfig"]

NAME = "xds_cluster_manager_experimental"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterManagerConfig:
    children: Mapping[str, ChildPolicy]

    def to_json(self, *, full: bool = True) -> dict[str, Any]:
        """The JSON config; with ``full=False`` child policies are given by name only."""
        return {
            "children": {
                name: {"childPolicy": c.as_json(full)} for name, c in self.children.items()
            }
        }


class ClusterManagerBuilder:
    name = NAME

    def build(self, channel: BalancerChannel) -> ClusterManagerBalancer:
        return ClusterManagerBalancer(channel)

    def parse_config(self, config: Mapping[str, Any]) -> ClusterManagerConfig:
        top = JsonObject(config, NAME)
        children_json = top.object("children")
        top.done()
        children: dict[str, ChildPolicy] = {}
        for name, child_json in children_json.items():
            where = f"{NAME}.children[{name!r}]"
            child = JsonObject(child_json, where)
            children[name] = parse_child_policy(child.array("childPolicy"), f"{where}.childPolicy")
            child.done()
        return ClusterManagerConfig(children=children)


class _ClusterPicker:
    """Hands each RPC to the picker of the cluster its route chose (immutable)."""

    __slots__ = ("_picks",)

    def __init__(self, pickers: dict[str, Picker]) -> None:
        # Hot path: the children's bound pick methods, one dict lookup per RPC.
        self._picks: dict[object, Callable[[PickInfo], PickResult]] = {
            name: picker.pick for name, picker in pickers.items()
        }

    def pick(self, info: PickInfo) -> PickResult:
        cluster = info.attributes.get(ATTR_CLUSTER)
        try:
            pick = self._picks[cluster]
        except (KeyError, TypeError):  # TypeError: an unhashable attribute value
            if cluster is None:
                raise unavailable(
                    f"RPC to {info.method} has no {ATTR_CLUSTER!r} attribute: "
                    "no xDS route selected a cluster"
                ) from None
            raise unavailable(f"unknown cluster selected for RPC: {cluster!r}") from None
        return pick(info)


class ClusterManagerBalancer(NamedChildrenBalancer):
    """One channel's cluster manager. Callers: the channel's serializer only."""

    def __init__(self, channel: BalancerChannel) -> None:
        super().__init__(channel)
        # Serializer-only.
        self._config: ClusterManagerConfig | None = None

    def update_channel_state(self, state: ChannelState) -> bool:
        if self._closed:
            return True
        config = self._config = typed_config(state, ClusterManagerConfig, NAME)
        # Each child gets the channel's state; `update_policy` puts in its own config.
        self._sync_children({name: (policy, state) for name, policy in config.children.items()})
        return True

    def debug_info(self) -> dict[str, Any]:
        return {
            "policy": NAME,
            "state": self._states.current().name,
            "config": self._config.to_json(full=False) if self._config is not None else None,
            "children": self._children_debug_info(),
        }

    def _publish(self) -> None:
        pickers = {name: self._states.state(name).picker for name in self._states.names()}
        self._report(self._states.current(), _ClusterPicker(pickers))

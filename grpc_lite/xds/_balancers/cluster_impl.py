"""The ``xds_cluster_impl_experimental`` policy: drops and circuit breaking for one cluster.

grpc-go counterpart: internal/xds/balancer/clusterimpl (clusterimpl.go, picker.go); gRFC A27
(EDS ``drop_overloads``) and A32 (circuit breaking, ``max_requests``). The cds policy makes
one per priority; it wraps its child's picker.

Config::

    {"cluster": "NAME", "edsServiceName": "", "maxConcurrentRequests": 1024,
     "dropCategories": [{"category": "lb", "requestsPerMillion": 100000}],
     "childPolicy": [{"weighted_target_experimental": {...}}]}

- Drops: while the child is READY (as grpc-go: a queued or failing RPC is not dropped),
  each category in order drops the RPC with probability requestsPerMillion / 1e6, with
  ``DroppedRpcError(UNAVAILABLE, "dropped by the xDS control plane: category C")``: the RPC
  fails at once, wait-for-ready or not, and is not retried.
- Circuit breaking (A32): at most ``maxConcurrentRequests`` RPCs (default 1024) in flight
  per cluster. The count is one per (cluster, edsServiceName) in the process (A32 "Globally
  shared atomics for outstanding requests": every channel, every priority's cluster_impl
  and every picker rebuild share it; grpc-go's xdsclient ClusterRequestsCounter). A pick
  the child made counts until its ``PickResult.on_done`` runs (the child's own ``on_done``
  is called after); over the limit:
  ``DroppedRpcError(UNAVAILABLE, "max requests N for cluster C reached")``.
- Drop decisions use the builder's RNG (``random.random``; tests pass a seeded one).
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from grpc_lite._connectivity import ConnectivityState
from grpc_lite.balancer import (
    BalancerChannel,
    BalancerState,
    ChannelState,
    DroppedRpcError,
    Picker,
    PickInfo,
    PickResult,
)
from grpc_lite.status import StatusCode

from ._common import ChildPolicy, JsonObject, ParentBalancer, parse_child_policy, typed_config

__all__ = [
    "ClusterImplBalancer",
    "ClusterImplBuilder",
    "ClusterImplConfig",
    "DropCategory",
    "RequestCounter",
    "request_counter",
]

NAME = "xds_cluster_impl_experimental"
DEFAULT_MAX_CONCURRENT_REQUESTS = 1024  # A32: the Envoy default of max_requests
_S = ConnectivityState
_CHILD = "child"

# Hot path: the per-RPC PickResult. A frozen dataclass's generated __init__ sets each field
# with object.__setattr__ (about 0.45 us a call here); setting PickResult's two slots through
# their descriptors builds the same object in about half that. PickResult has no
# __post_init__ and no other field (checked here, so a change to it fails at import).
_new = object.__new__
_set_subchannel = PickResult.__dict__["subchannel"].__set__
_set_on_done = PickResult.__dict__["on_done"].__set__
assert PickResult.__slots__ == ("subchannel", "on_done") and not hasattr(
    PickResult, "__post_init__"
), "cluster_impl's fast PickResult no longer matches grpc_lite.balancer.PickResult"


@dataclass(frozen=True, slots=True, kw_only=True)
class DropCategory:
    category: str
    requests_per_million: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterImplConfig:
    cluster: str
    eds_service_name: str
    max_concurrent_requests: int
    drop_categories: tuple[DropCategory, ...]
    child_policy: ChildPolicy

    def to_json(self, *, full: bool = True) -> dict[str, Any]:
        """The JSON config; with ``full=False`` child policies are given by name only."""
        return {
            "cluster": self.cluster,
            "edsServiceName": self.eds_service_name,
            "maxConcurrentRequests": self.max_concurrent_requests,
            "dropCategories": [
                {"category": d.category, "requestsPerMillion": d.requests_per_million}
                for d in self.drop_categories
            ],
            "childPolicy": self.child_policy.as_json(full),
        }


class RequestCounter:
    """RPCs in flight to one cluster (grpc-go: xdsclient.ClusterRequestsCounter).

    Pickers increment it and their ``on_done`` callbacks decrement it, on the channel's
    loop (one thread): a plain int is enough.
    """

    __slots__ = ("__weakref__", "cluster", "in_flight")

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.in_flight = 0


_counters: weakref.WeakValueDictionary[tuple[str, str], RequestCounter] = (
    weakref.WeakValueDictionary()
)


def request_counter(cluster: str, eds_service_name: str) -> RequestCounter:
    """The process's counter for (cluster, edsServiceName); it lives as long as a balancer
    or an RPC in flight holds it."""
    key = (cluster, eds_service_name)
    counter = _counters.get(key)
    if counter is None:
        counter = _counters[key] = RequestCounter(cluster)
    return counter


class ClusterImplBuilder:
    """Builds cluster_impl balancers.

    Args:
        rand: the RNG of the drop decisions (a fresh ``random.Random`` by default).
    """

    name = NAME

    def __init__(self, rand: random.Random | None = None) -> None:
        self._rand = rand if rand is not None else random.Random()

    def build(self, channel: BalancerChannel) -> ClusterImplBalancer:
        return ClusterImplBalancer(channel, rand=self._rand)

    def parse_config(self, config: Mapping[str, Any]) -> ClusterImplConfig:
        top = JsonObject(config, NAME)
        cluster = top.string("cluster")
        if not cluster:
            raise ValueError(f"{NAME}.cluster: must not be empty")
        eds_service_name = top.string("edsServiceName", required=False)
        max_requests = top.integer(
            "maxConcurrentRequests",
            required=False,
            default=DEFAULT_MAX_CONCURRENT_REQUESTS,
            minimum=0,
        )
        if max_requests > 0xFFFFFFFF:
            raise ValueError(f"{NAME}.maxConcurrentRequests: must fit in 32 bits")
        drops: list[DropCategory] = []
        for i, item in enumerate(top.array("dropCategories", required=False)):
            drop = JsonObject(item, f"{NAME}.dropCategories[{i}]")
            category = drop.string("category")
            ppm = drop.integer("requestsPerMillion", required=False, default=0)
            if ppm > 1_000_000:
                raise ValueError(
                    f"{drop.path}.requestsPerMillion: must be at most 1000000, got {ppm}"
                )
            drop.done()
            drops.append(DropCategory(category=category, requests_per_million=ppm))
        child = parse_child_policy(top.array("childPolicy"), f"{NAME}.childPolicy")
        top.done()
        return ClusterImplConfig(
            cluster=cluster,
            eds_service_name=eds_service_name,
            max_concurrent_requests=max_requests,
            drop_categories=tuple(drops),
            child_policy=child,
        )


class _ClusterImplPicker:
    """Drops, then circuit breaking, then the child's pick (immutable)."""

    __slots__ = ("_cluster", "_counter", "_drops", "_max", "_pick", "_random")

    def __init__(
        self,
        child: Picker,
        *,
        ready: bool,
        config: ClusterImplConfig,
        counter: RequestCounter,
        random_: Callable[[], float],
    ) -> None:
        self._pick = child.pick
        self._drops = (
            tuple(
                (d.category, d.requests_per_million / 1_000_000)
                for d in config.drop_categories
                if d.requests_per_million > 0
            )
            if ready
            else ()
        )
        self._random = random_
        self._counter = counter
        self._max = config.max_concurrent_requests
        self._cluster = config.cluster

    def pick(self, info: PickInfo) -> PickResult:
        drops = self._drops
        if drops:
            for category, probability in drops:
                if self._random() < probability:
                    raise DroppedRpcError(
                        StatusCode.UNAVAILABLE,
                        f"dropped by the xDS control plane: category {category}",
                    )
        counter = self._counter
        if counter.in_flight >= self._max:
            message = f"max requests {self._max} for cluster {self._cluster} reached"
            raise DroppedRpcError(StatusCode.UNAVAILABLE, message)
        result = self._pick(info)
        counter.in_flight += 1
        # PickResult(subchannel=..., on_done=_Release(...)), built as the module says.
        counted: PickResult = _new(PickResult)
        _set_subchannel(counted, result.subchannel)
        _set_on_done(counted, _Release(counter, result.on_done))
        return counted


class _Release:
    """An RPC's ``on_done``: gives its slot back once, then calls the child's ``on_done``."""

    __slots__ = ("_counter", "_inner")

    def __init__(self, counter: RequestCounter, inner: Callable[[StatusCode], None] | None) -> None:
        self._counter: RequestCounter | None = counter
        self._inner = inner

    def __call__(self, code: StatusCode) -> None:
        counter, self._counter = self._counter, None
        if counter is None:
            return
        counter.in_flight -= 1
        if self._inner is not None:
            self._inner(code)


class ClusterImplBalancer(ParentBalancer):
    """One cluster_impl instance. Callers: the channel's serializer only."""

    def __init__(self, channel: BalancerChannel, *, rand: random.Random) -> None:
        super().__init__(channel)
        # Immutable after __init__.
        self._random = rand.random
        # Serializer-only.
        self._config: ClusterImplConfig | None = None
        self._counter: RequestCounter | None = None
        self._child_state: BalancerState | None = None

    def update_channel_state(self, state: ChannelState) -> bool:
        if self._closed:
            return True
        config = self._config = typed_config(state, ClusterImplConfig, NAME)
        self._counter = request_counter(config.cluster, config.eds_service_name)
        self._children.update_policy(_CHILD, config.child_policy, state)
        if self._child_state is not None:
            self._publish()  # the same child picker under the new drops and limit
        return True

    def debug_info(self) -> dict[str, Any]:
        config = self._config
        counter = self._counter
        return {
            "policy": NAME,
            "state": self._child_state.state.name if self._child_state is not None else None,
            "config": config.to_json(full=False) if config is not None else None,
            "in_flight": counter.in_flight if counter is not None else 0,
            "child": self._children.child_debug_info(_CHILD) if _CHILD in self._children else None,
        }

    def _child_reported(self, _name: str, state: BalancerState) -> None:
        self._child_state = state
        self._publish()

    def _publish(self) -> None:
        config, counter, child = self._config, self._counter, self._child_state
        assert config is not None and counter is not None and child is not None
        picker = _ClusterImplPicker(
            child.picker,
            ready=child.state is _S.READY,
            config=config,
            counter=counter,
            random_=self._random,
        )
        self._report(child.state, picker)

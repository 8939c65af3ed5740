"""The ``cds_experimental`` policy: one cluster of the xDS config, as a priority tree.

Spec: gRFC A74 "xDS Config Tears" (the xds resolver watches every resource and publishes one
`XdsConfig`; the cds policy only reads it), A27 (EDS: priorities, locality weights, endpoint
health, drops), A56 (priority child names), A32 (circuit breaking). grpc-go counterpart:
internal/xds/balancer/cdsbalancer (cdsbalancer.go, configbuilder.go,
configbuilder_childname.go).

Config: ``{"cluster": "NAME"}``. On every update it reads the resolver-state attribute
``xds.config`` (`XdsConfig`) and:

- the cluster missing from it, its entry an error string (CDS resource missing), or a
  `ClusterConfig` with ``error`` (EDS resource missing or invalid): the child is closed
  and the policy reports TRANSIENT_FAILURE, failing RPCs with UNAVAILABLE and that text;
- otherwise builds the config and endpoints of its one child, ``priority_experimental``:
  one child per EDS priority (an EDS resource without localities gives one priority with
  no endpoints, as A37 asks, so the cluster fails with the priority's error), each
  ``xds_cluster_impl_experimental`` (cluster, edsServiceName, maxConcurrentRequests from
  the cluster's max_requests, dropCategories from drop_overloads) over
  ``weighted_target_experimental`` with one ``round_robin`` target per locality (named
  ``str(LocalityId)``, weighted by the locality weight). Only HEALTHY and UNKNOWN endpoints
  are kept (A27). Every endpoint carries ``xds.path`` = (priority child, locality name),
  ``xds.locality``, ``xds.priority``, ``xds.locality_weight`` and ``xds.cluster``; all but
  the path are on its addresses too (so a subchannel's snapshot can show them).
- The priority children's names are stable across updates (A56 "LB Policy
  Configuration"): see `ChildNamer`.
- The failover timeout is the resolver-state attribute ``xds.failover_timeout`` (seconds,
  default 10), passed in the priority config's ``failoverTimeout`` extension.
- A cluster that asks for load reporting (``lrs_server: self``, A27 LRS) is served without
  it: grpc_lite sends no load reports yet. That is logged once per cluster at WARNING and
  shown in `debug_info` (``load_reporting``), never dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grpc_lite._connectivity import ConnectivityState
from grpc_lite.balancer import (
    BalancerChannel,
    BalancerState,
    ChannelState,
    ErrorPicker,
    Picker,
    get,
)
from grpc_lite.resolver import Address, Endpoint, ResolverState

from .._model import ClusterConfig, EndpointsResource, HealthStatus, Locality, LocalityId, XdsConfig
from ._common import (
    ATTR_CLUSTER,
    ATTR_LOCALITY,
    ATTR_LOCALITY_WEIGHT,
    ATTR_PATH,
    ATTR_PRIORITY,
    ChildPolicy,
    JsonObject,
    ParentBalancer,
    attribute,
    typed_config,
    unavailable,
)
from .cluster_impl import NAME as CLUSTER_IMPL
from .priority import DEFAULT_FAILOVER_TIMEOUT, duration_json
from .priority import NAME as PRIORITY
from .weighted_target import NAME as WEIGHTED_TARGET

__all__ = ["CdsBalancer", "CdsBuilder", "CdsConfig", "ChildNamer", "build_priority_config"]

_log = logging.getLogger("grpc_lite.xds")
NAME = "cds_experimental"
ATTR_XDS_CONFIG = "xds.config"
ATTR_FAILOVER_TIMEOUT = "xds.failover_timeout"
_CHILD = "priority"
_S = ConnectivityState
_USABLE = (HealthStatus.HEALTHY, HealthStatus.UNKNOWN)


@dataclass(frozen=True, slots=True, kw_only=True)
class CdsConfig:
    cluster: str


class CdsBuilder:
    name = NAME

    def build(self, channel: BalancerChannel) -> CdsBalancer:
        return CdsBalancer(channel)

    def parse_config(self, config: Mapping[str, Any]) -> CdsConfig:
        top = JsonObject(config, NAME)
        cluster = top.string("cluster")
        top.done()
        if not cluster:
            raise ValueError(f"{NAME}.cluster: must not be empty")
        return CdsConfig(cluster=cluster)


class ChildNamer:
    """Names the priority children of one cluster, reusing names across EDS updates.

    A56 ("LB Policy Configuration"): a child name follows its localities, so an update that
    moves localities between priorities moves the existing child (and its connections)
    instead of making a new one: when the localities of priority N are replaced by some of
    priority N+1's, N+1's child becomes N's and N+1 gets a new name. For each new priority,
    in order: the old child name of the first of its localities whose old child no earlier
    priority of this update took; else a new name ``priority-<p>-<n>`` (p: the
    priority it was made for, n: a counter, so a name is never reused once dropped; gRFC
    A115 relies on that). gRFC A115's Background walks through an example.

    Caller: the cds policy, on the serializer.
    """

    __slots__ = ("_by_locality", "_next")

    def __init__(self) -> None:
        self._by_locality: dict[LocalityId, str] = {}
        self._next = 0

    def names(self, priorities: Sequence[Sequence[LocalityId]]) -> list[str]:
        chosen: list[str | None] = [None] * len(priorities)
        used: set[str] = set()
        old = self._by_locality
        for p, localities in enumerate(priorities):
            for loc in localities:
                name = old.get(loc)
                if name is not None and name not in used:
                    chosen[p] = name
                    used.add(name)
                    break
        result: list[str] = []
        for p, name in enumerate(chosen):
            if name is None:
                name = f"priority-{p}-{self._next}"
                self._next += 1
            result.append(name)
        self._by_locality = {
            loc: result[p] for p, localities in enumerate(priorities) for loc in localities
        }
        return result


def build_priority_config(
    cluster: ClusterConfig, namer: ChildNamer, failover_timeout: float
) -> tuple[dict[str, Any], tuple[Endpoint, ...]]:
    """The ``priority_experimental`` JSON config and the endpoints for `cluster`."""
    resource = cluster.cluster
    eds = cluster.endpoints
    assert eds is not None
    priorities: tuple[tuple[Locality, ...], ...] = eds.priorities or ((),)
    names = namer.names([[loc.id for loc in localities] for localities in priorities])
    children: dict[str, Any] = {}
    endpoints: list[Endpoint] = []
    for p, (name, localities) in enumerate(zip(names, priorities, strict=True)):
        targets: dict[str, Any] = {}
        for locality in localities:
            locality_name = str(locality.id)
            targets[locality_name] = {
                "weight": locality.weight,
                "childPolicy": [{resource.lb_policy: {}}],
            }
            endpoints.extend(_endpoints(resource.name, name, p, locality))
        children[name] = {
            "config": [{CLUSTER_IMPL: _cluster_impl_config(resource.name, resource, eds, targets)}],
            # The EDS children's own re-resolution requests mean nothing to xDS (as grpc-go).
            "ignoreReresolutionRequests": True,
        }
    config = {
        "children": children,
        "priorities": names,
        "failoverTimeout": duration_json(failover_timeout),
    }
    return config, tuple(endpoints)


def _cluster_impl_config(
    cluster: str, resource: Any, eds: EndpointsResource, targets: dict[str, Any]
) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "edsServiceName": resource.eds_service_name,
        "maxConcurrentRequests": resource.max_requests,
        "dropCategories": [
            {"category": d.category, "requestsPerMillion": d.parts_per_million}
            for d in eds.drop_overloads
        ],
        "childPolicy": [{WEIGHTED_TARGET: {"targets": targets}}],
    }


def _endpoints(cluster: str, child: str, priority: int, locality: Locality) -> list[Endpoint]:
    locality_name = str(locality.id)
    shared: tuple[tuple[str, Any], ...] = (
        (ATTR_LOCALITY, locality.id),
        (ATTR_PRIORITY, priority),
        (ATTR_LOCALITY_WEIGHT, locality.weight),
        (ATTR_CLUSTER, cluster),
    )
    out = []
    for lb_endpoint in locality.endpoints:
        if lb_endpoint.health not in _USABLE:
            continue
        addresses = tuple(Address(a, attributes=shared) for a in lb_endpoint.addresses)
        out.append(Endpoint(addresses, attributes=((ATTR_PATH, (child, locality_name)), *shared)))
    return out


class CdsBalancer(ParentBalancer):
    """One cds instance. Callers: the channel's serializer only."""

    def __init__(self, channel: BalancerChannel) -> None:
        super().__init__(channel)
        # Immutable after __init__.
        self._namer = ChildNamer()
        # Serializer-only.
        self._cluster: str | None = None
        self._error: str | None = None
        self._state: ConnectivityState | None = None
        self._lrs_requested = False

    def update_channel_state(self, state: ChannelState) -> bool:
        if self._closed:
            return True
        config = typed_config(state, CdsConfig, NAME)
        self._cluster = config.cluster
        attributes = state.resolver_state.attributes
        xds_config = attribute(attributes, ATTR_XDS_CONFIG)
        if not isinstance(xds_config, XdsConfig):
            self._fail(f"cluster {config.cluster!r}: no xDS config in the resolver state")
            return True
        entry = xds_config.clusters.get(config.cluster)
        if entry is None:
            self._fail(f"cluster {config.cluster!r} is not in the xDS config")
            return True
        if isinstance(entry, str):
            self._fail(entry)
            return True
        if entry.error is not None or entry.endpoints is None:
            self._fail(entry.error or f"cluster {config.cluster!r} has no endpoints resource")
            return True
        if entry.cluster.lrs_server_self and not self._lrs_requested:
            _log.warning(
                "xDS cluster %r asks for load reporting (lrs_server); grpc_lite sends no "
                "load reports (gRFC A27 LRS is not supported yet)",
                config.cluster,
            )
        self._lrs_requested = entry.cluster.lrs_server_self
        timeout = attribute(attributes, ATTR_FAILOVER_TIMEOUT, DEFAULT_FAILOVER_TIMEOUT)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            timeout = DEFAULT_FAILOVER_TIMEOUT
        priority_json, endpoints = build_priority_config(entry, self._namer, float(timeout))
        builder = get(PRIORITY)
        if builder is None:
            raise RuntimeError(f"{NAME}: {PRIORITY} is not registered (register_xds_policies)")
        parsed = builder.parse_config(priority_json)  # validates the whole subtree
        self._error = None
        child_state = ResolverState(endpoints=endpoints, attributes=attributes)
        if _CHILD not in self._children:
            self._state = None
        policy = ChildPolicy(name=PRIORITY, config=parsed, raw=[{PRIORITY: priority_json}])
        self._children.update_policy(_CHILD, policy, ChannelState(resolver_state=child_state))
        return True

    def debug_info(self) -> dict[str, Any]:
        return {
            "policy": NAME,
            "cluster": self._cluster,
            "state": self._state.name if self._state is not None else None,
            "error": self._error,
            "load_reporting": "requested by the control plane; not supported, no reports sent"
            if self._lrs_requested
            else None,
            "child": self._children.child_debug_info(_CHILD) if _CHILD in self._children else None,
        }

    def _fail(self, message: str) -> None:
        self._error = message
        self._children.remove(_CHILD)
        self._report(_S.TRANSIENT_FAILURE, ErrorPicker(unavailable(message)))

    def _child_reported(self, _name: str, state: BalancerState) -> None:
        self._report(state.state, state.picker)

    def _report(self, state: ConnectivityState, picker: Picker) -> None:
        self._state = state
        super()._report(state, picker)

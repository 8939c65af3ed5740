"""The xDS data model shared by the XdsClient, the xds resolver and the xDS LB policies.

Validated resources are immutable dataclasses (no protobuf objects leak past the decoders in
`_resources`), so a published `XdsConfig` can be read from any code without copying. Field
names follow the Envoy v3 API and gRFC A27 (https://github.com/grpc/proposal/blob/master/
A27-xds-global-load-balancing.md); A74 (xDS config tears) defines `XdsConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

__all__ = [
    "CDS",
    "EDS",
    "LDS",
    "RDS",
    "ClusterConfig",
    "ClusterResource",
    "DecodeResult",
    "DropOverload",
    "EndpointsResource",
    "HealthStatus",
    "LbEndpoint",
    "ListenerResource",
    "Locality",
    "LocalityId",
    "ResourceType",
    "Route",
    "RouteConfigResource",
    "VirtualHost",
    "XdsConfig",
]

LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


# --- RDS ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One route of a virtual host (envoy.config.route.v3.Route), as far as grpc_lite uses it.

    `prefix` / `path` / `safe_regex`: exactly one is set (the RouteMatch path specifier).
    `cluster` is the RouteAction's cluster; None with `non_forwarding=True` for a route whose
    action is not a RouteAction (A28: RPCs matching it fail UNAVAILABLE), or is a RouteAction
    grpc_lite cannot forward yet (`weighted_clusters`, A28 traffic splitting). `action` names
    the Envoy field of the route's action: "cluster" for a forwarding route, otherwise
    "non_forwarding_action", "redirect", "direct_response", "filter_action",
    "weighted_clusters", or "" when unset (for the RPC's UNAVAILABLE message).
    """

    prefix: str | None = None
    path: str | None = None
    safe_regex: str | None = None
    case_sensitive: bool = True
    cluster: str | None = None
    non_forwarding: bool = False
    action: str = "cluster"


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualHost:
    name: str
    domains: tuple[str, ...]
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteConfigResource:
    name: str
    virtual_hosts: tuple[VirtualHost, ...]


# --- LDS ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerResource:
    """An API listener (A27): its HttpConnectionManager names an RDS resource or inlines one.

    Exactly one of `route_config_name` and `route_config` is set.
    """

    name: str
    route_config_name: str | None = None
    route_config: RouteConfigResource | None = None
    max_stream_duration: float | None = None
    """HttpConnectionManager.common_http_protocol_options.max_stream_duration (A31), seconds."""
    http_filters: tuple[str, ...] = ()
    """The HTTP filter names, in order (the router last)."""


# --- CDS ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterResource:
    """A cluster of type EDS (A27). Later issues add aggregate and logical DNS clusters.

    `eds_service_name` is the EDS resource to watch ("" means the cluster's own name:
    use `eds_resource_name`). `lb_policy` is the policy name grpc_lite will run inside each
    locality ("round_robin" for Envoy's ROUND_ROBIN).
    """

    name: str
    eds_service_name: str = ""
    lb_policy: str = "round_robin"
    max_requests: int = 1024
    lrs_server_self: bool = False

    @property
    def eds_resource_name(self) -> str:
        return self.eds_service_name or self.name


# --- EDS ---------------------------------------------------------------------------------


class HealthStatus(Enum):
    """envoy.config.core.v3.HealthStatus; A27: only UNKNOWN and HEALTHY endpoints are used."""

    UNKNOWN = 0
    HEALTHY = 1
    UNHEALTHY = 2
    DRAINING = 3
    TIMEOUT = 4
    DEGRADED = 5


@dataclass(frozen=True, slots=True, order=True)
class LocalityId:
    region: str = ""
    zone: str = ""
    sub_zone: str = ""

    def __str__(self) -> str:
        return f"{{region={self.region!r}, zone={self.zone!r}, sub_zone={self.sub_zone!r}}}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LbEndpoint:
    """One endpoint: its addresses ("host:port", IPv6 in brackets; the first is the primary,
    the rest A61's additional_addresses), health and load-balancing weight."""

    addresses: tuple[str, ...]
    health: HealthStatus = HealthStatus.UNKNOWN
    weight: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Locality:
    id: LocalityId
    weight: int
    priority: int
    endpoints: tuple[LbEndpoint, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DropOverload:
    """A drop category and its rate, as parts per million (A27 drop_overloads)."""

    category: str
    parts_per_million: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointsResource:
    """A ClusterLoadAssignment: `priorities[p]` holds the localities of priority p.

    Validation (A27) guarantees priorities without gaps, localities unique within a
    priority (one locality may appear in two priorities, A27/A52), endpoint addresses unique
    within the resource, and positive locality weights (localities with weight 0 are dropped).
    """

    name: str
    priorities: tuple[tuple[Locality, ...], ...]
    drop_overloads: tuple[DropOverload, ...] = ()


# --- the decoders' interface ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """What decoding one resource gave: its name, and either the resource or the error.

    `name` is None when even the name could not be read (the whole resource is then a NACK
    reason with nothing to attach it to).
    """

    name: str | None
    resource: object | None = None
    error: str | None = None


class ResourceType(Protocol):
    """One xDS resource type (grpc-go: xdsclient ResourceType)."""

    @property
    def type_url(self) -> str: ...

    @property
    def short_name(self) -> str:
        """ "LDS", "RDS", "CDS" or "EDS": used in logs, snapshots and errors."""
        ...

    @property
    def all_resources_required_in_sotw(self) -> bool:
        """True for LDS and CDS: a SotW response without a subscribed name deletes it (A27)."""
        ...

    def decode(self, serialized_any: bytes) -> DecodeResult:
        """Decode and validate one `google.protobuf.Any` (its serialized bytes). Never raises."""
        ...


# --- A74: one complete configuration ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """A cluster and its endpoints, or why it has none (A74 XdsConfig.ClusterConfig).

    Exactly one of `endpoints` and `error` is set. `error` is what RPCs routed to the cluster
    fail with (UNAVAILABLE), e.g. "EDS resource 'x' does not exist".
    """

    cluster: ClusterResource
    endpoints: EndpointsResource | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class XdsConfig:
    """Everything one `xds:///` channel needs, published as a whole (A74: no tears).

    `clusters` has an entry for every cluster the chosen virtual host's routes name; a
    cluster whose CDS or EDS resource does not exist has a `ClusterConfig` with `error` set
    (a cluster config is created only when its CDS resource exists; a missing CDS resource
    is a `str` error instead).
    """

    listener: ListenerResource
    route_config: RouteConfigResource
    virtual_host: VirtualHost
    clusters: Mapping[str, ClusterConfig | str] = field(default_factory=dict)

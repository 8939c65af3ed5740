"""The four xDS resource types of gRFC A27: decoding and validation into `_model` dataclasses.

Each `ResourceType` turns one ``google.protobuf.Any`` from a DiscoveryResponse (its
serialized bytes) into a `DecodeResult`: the resource's name and either the validated,
immutable resource or the reason it is NACKed. Decoding never raises; every reason names
the resource and the field (``CDS resource 'c1': lb_policy: MAGLEV is not supported ...``).

What is validated, and how (the specs; grpc-go's ``xdsresource/unmarshal_{lds,rds,cds,eds}.go``
do the same checks):

- LDS (A27 "Listener Proto"; A39 HTTP filters; A41 xff): ``api_listener`` holds an
  HttpConnectionManager; its route specifier is ``rds`` (config source ``ads`` or ``self``,
  a non-empty ``route_config_name``) or an inline ``route_config`` (validated as RDS);
  ``scoped_routes`` is NACKed. HTTP filters: names non-empty and unique; the config may be
  wrapped in an xds/udpa TypedStruct; the only filter grpc_lite runs is the router, which must
  be last; any other filter is NACKed unless ``is_optional`` (then it is left out).
  ``xff_num_trusted_hops`` must be 0 and ``original_ip_detection_extensions`` empty (A41).
  ``common_http_protocol_options.max_stream_duration`` (A31) is kept in seconds (0: none).
- RDS (A27 "RouteConfiguration Proto", A28 "Response validation"): every virtual host has
  domains; every route's match has a ``prefix``, ``path`` or ``safe_regex`` (which must
  compile) path specifier, other specifiers are NACKed; ``case_sensitive`` defaults to true.
  Routes are kept in order, except these, left out as A28 says a route it cannot evaluate is
  ("ignored"): a RouteAction whose cluster specifier is unset, ``cluster_header``, a cluster
  specifier plugin or one this descriptor set does not know; a route with
  ``query_parameters`` (A28: never matches a gRPC request). Routes whose matching needs what
  this release does not evaluate yet (``headers``, a ``runtime_fraction`` below 100 %) are
  left out too, so they never take RPCs meant for a later route. A route whose action is not
  a single-cluster RouteAction is kept as a *non-forwarding* route (``Route.non_forwarding``,
  ``Route.action`` names it): RPCs it matches fail UNAVAILABLE instead of falling through to
  another route. That covers ``non_forwarding_action``, ``redirect``, ``direct_response``,
  ``filter_action``, an unset action (grpc-go: RouteActionUnsupported), and
  ``weighted_clusters``: A28 traffic splitting is a later issue; its weights are validated
  (non-empty cluster names, total > 0 and <= 2^32-1) so that a configuration it would NACK is
  NACKed now too.
- CDS (A27 "Cluster Proto"): ``type`` EDS only (LOGICAL_DNS, STATIC, an aggregate
  ``cluster_type`` and the rest are NACKed, naming the type); ``eds_cluster_config.eds_config``
  is ``ads`` or ``self``; ``lb_policy`` ROUND_ROBIN, or a ``load_balancing_policy`` (A52) whose
  first supported entry is round_robin or wrr_locality over round_robin; anything else is
  NACKed naming the cluster and the policy; ``circuit_breakers`` DEFAULT-priority
  ``max_requests`` (default 1024); ``lrs_server`` must be ``self``.
- EDS (A27 "ClusterLoadAssignment Proto"): a locality without ``locality`` is NACKed; one
  with weight 0 or unset is left out; the localities' weights in one priority sum to at most
  2^32-1; a locality appears once per priority; priorities run from 0 without gaps; every
  endpoint has an ``endpoint.address.socket_address`` with an IPv4/IPv6 literal and a
  ``port_value`` in 1..65535 (``"host:port"``, IPv6 in brackets), plus A61
  ``additional_addresses``; no address twice in the cluster; endpoint weight unset -> 1,
  0 -> NACK; every known ``health_status`` is kept (the LB policy uses HEALTHY and UNKNOWN),
  an unknown enum value drops the endpoint; ``drop_overloads`` become parts per million.

A resource wrapped in ``envoy.service.discovery.v3.Resource`` is unwrapped first.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from . import _protos
from ._model import (
    CDS,
    EDS,
    LDS,
    RDS,
    ClusterResource,
    DecodeResult,
    DropOverload,
    EndpointsResource,
    HealthStatus,
    LbEndpoint,
    ListenerResource,
    Locality,
    LocalityId,
    ResourceType,
    Route,
    RouteConfigResource,
    VirtualHost,
)

__all__ = [
    "CLUSTER",
    "ENDPOINTS",
    "LISTENER",
    "RESOURCE_TYPES",
    "ROUTE_CONFIG",
    "by_short_name",
]

# Parsed protobuf messages are dynamic (classes from the private pool): their fields are
# read through this alias.
_Msg = Any

_ANY = "google.protobuf.Any"
_URL_PREFIX = "type.googleapis.com/"
_RESOURCE_WRAPPER = _URL_PREFIX + "envoy.service.discovery.v3.Resource"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "envoy.extensions.filters.http.router.v3.Router"
_TYPED_STRUCTS = ("xds.type.v3.TypedStruct", "udpa.type.v1.TypedStruct")
_ROUND_ROBIN = "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"
_WRR_LOCALITY = "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality"
_AGGREGATE = "envoy.extensions.clusters.aggregate.v3.ClusterConfig"
_UINT32_MAX = 2**32 - 1
_DEFAULT_MAX_REQUESTS = 1024
_MAX_LB_POLICY_DEPTH = 16  # A52: deeper nesting of load_balancing_policy is NACKed

# envoy.type.v3.FractionalPercent.DenominatorType -> the factor to parts per million.
_TO_PPM = {0: 10_000, 1: 100, 2: 1}  # HUNDRED, TEN_THOUSAND, MILLION


class _Invalid(Exception):
    """A validation failure: `field` (the proto path from the resource) and what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)


def _join(prefix: str, field: str) -> str:
    return f"{prefix}.{field}" if prefix else field


def _type_name(type_url: str) -> str:
    return _protos.type_name(type_url)


def _parse(full_name: str, data: bytes, field: str) -> _Msg:
    try:
        return _protos.parse(full_name, data)
    except DecodeError as exc:
        raise _Invalid(field, f"does not parse as {full_name}: {exc}") from None


def _config_source_is_ads_or_self(source: _Msg) -> bool:
    # A27: the ConfigSource "must indicate to use ADS"; `self` (the same server) is accepted
    # too, as grpc-go does.
    return source.WhichOneof("config_source_specifier") in ("ads", "self")


def _duration_seconds(duration: _Msg, field: str) -> float:
    seconds, nanos = duration.seconds, duration.nanos
    if seconds < 0 or nanos < 0 or nanos >= 1_000_000_000:
        raise _Invalid(field, f"not a valid non-negative duration ({seconds}s {nanos}ns)")
    return float(seconds + nanos / 1e9)


# --- LDS ---------------------------------------------------------------------------------


def _listener(msg: _Msg, name: str) -> ListenerResource:
    if not msg.HasField("api_listener"):
        raise _Invalid(
            "api_listener", "not set (a gRPC client needs an HTTP API listener, gRFC A27)"
        )
    field = "api_listener.api_listener"
    wrapped = msg.api_listener.api_listener
    if _type_name(wrapped.type_url) != _HCM:
        raise _Invalid(field, f"type {wrapped.type_url!r} is not {_HCM}")
    hcm = _parse(_HCM, wrapped.value, field)
    if hcm.xff_num_trusted_hops != 0:
        raise _Invalid(f"{field}.xff_num_trusted_hops", "must be 0 (gRFC A41)")
    if len(hcm.original_ip_detection_extensions):
        raise _Invalid(f"{field}.original_ip_detection_extensions", "must be empty (gRFC A41)")

    route_config_name: str | None = None
    route_config: RouteConfigResource | None = None
    specifier = hcm.WhichOneof("route_specifier")
    if specifier == "rds":
        if not _config_source_is_ads_or_self(hcm.rds.config_source):
            raise _Invalid(f"{field}.rds.config_source", "must be ads or self (gRFC A27)")
        if not hcm.rds.route_config_name:
            raise _Invalid(f"{field}.rds.route_config_name", "empty")
        route_config_name = hcm.rds.route_config_name
    elif specifier == "route_config":
        route_config = _route_configuration(hcm.route_config, f"{field}.route_config")
    elif specifier is None:
        raise _Invalid(f"{field}.route_specifier", "neither rds nor route_config is set")
    else:
        raise _Invalid(f"{field}.{specifier}", "not supported (only rds and route_config)")

    max_stream_duration: float | None = None
    options = hcm.common_http_protocol_options
    if hcm.HasField("common_http_protocol_options") and options.HasField("max_stream_duration"):
        seconds = _duration_seconds(
            options.max_stream_duration,
            f"{field}.common_http_protocol_options.max_stream_duration",
        )
        max_stream_duration = seconds or None  # 0: no limit (as grpc-go)

    return ListenerResource(
        name=name,
        route_config_name=route_config_name,
        route_config=route_config,
        max_stream_duration=max_stream_duration,
        http_filters=_http_filters(hcm.http_filters, f"{field}.http_filters"),
    )


def _http_filters(filters: Iterable[_Msg], field: str) -> tuple[str, ...]:
    """The names of the filters grpc_lite runs, in order (gRFC A39): the router, last."""
    kept: list[str] = []
    seen: set[str] = set()
    for i, flt in enumerate(filters):
        where = f"{field}[{i}]"
        if not flt.name:
            raise _Invalid(f"{where}.name", "empty")
        where = f"{field}[{i}] {flt.name!r}"
        if flt.name in seen:
            raise _Invalid(where, "duplicate filter name")
        seen.add(flt.name)
        if flt.WhichOneof("config_type") != "typed_config":
            if flt.is_optional:
                continue
            raise _Invalid(f"{where}.typed_config", "not set (config_discovery is not supported)")
        config = flt.typed_config
        type_name, value = _type_name(config.type_url), config.value
        if type_name in _TYPED_STRUCTS:
            struct = _parse(type_name, value, f"{where}.typed_config")
            type_name, value = _type_name(struct.type_url), None
        if type_name != _ROUTER:
            if flt.is_optional:
                continue
            raise _Invalid(
                f"{where}.typed_config",
                f"filter type {type_name!r} is not supported on clients (and not is_optional)",
            )
        if value is not None:
            _parse(_ROUTER, value, f"{where}.typed_config")
        kept.append(flt.name)
    if not kept:
        raise _Invalid(field, "no router filter (the last filter must be the router, gRFC A39)")
    if len(kept) > 1:
        raise _Invalid(
            field, f"router filter {kept[0]!r} is not the last filter (gRFC A39: terminal last)"
        )
    return tuple(kept)


# --- RDS ---------------------------------------------------------------------------------


def _route_config(msg: _Msg, name: str) -> RouteConfigResource:
    return _route_configuration(msg, "")


def _route_configuration(msg: _Msg, field: str) -> RouteConfigResource:
    hosts: list[VirtualHost] = []
    for i, vh in enumerate(msg.virtual_hosts):
        where = _join(field, f"virtual_hosts[{i}]")
        if len(vh.domains) == 0:
            raise _Invalid(f"{where}.domains", f"virtual host {vh.name!r} has no domains")
        for j, domain in enumerate(vh.domains):
            if not domain:
                raise _Invalid(f"{where}.domains[{j}]", "empty")
        routes: list[Route] = []
        for j, route in enumerate(vh.routes):
            decoded = _route(route, f"{where}.routes[{j}]")
            if decoded is not None:
                routes.append(decoded)
        hosts.append(VirtualHost(name=vh.name, domains=tuple(vh.domains), routes=tuple(routes)))
    return RouteConfigResource(name=msg.name, virtual_hosts=tuple(hosts))


def _route(route: _Msg, field: str) -> Route | None:
    """The route, or None for a route A28 says to ignore (see the module docstring)."""
    match = route.match
    where = f"{field}.match"
    kind = match.WhichOneof("path_specifier")
    prefix = path = safe_regex = None
    if kind == "prefix":
        prefix = match.prefix
    elif kind == "path":
        path = match.path
    elif kind == "safe_regex":
        safe_regex = match.safe_regex.regex
        try:
            re.compile(safe_regex)
        except (re.error, RecursionError, OverflowError) as exc:
            raise _Invalid(f"{where}.safe_regex.regex", f"does not compile: {exc}") from None
    elif kind is None:
        raise _Invalid(f"{where}.path_specifier", "not set (prefix, path or safe_regex)")
    else:
        raise _Invalid(f"{where}.{kind}", "not supported (only prefix, path or safe_regex)")
    case_sensitive = match.case_sensitive.value if match.HasField("case_sensitive") else True

    if len(match.query_parameters) or len(match.headers):
        return None
    if match.HasField("runtime_fraction"):
        percent = match.runtime_fraction.default_value
        factor = _TO_PPM.get(percent.denominator)
        if factor is None:
            raise _Invalid(
                f"{where}.runtime_fraction.default_value.denominator",
                f"unknown value {percent.denominator}",
            )
        if percent.numerator * factor < 1_000_000:
            return None

    common: dict[str, Any] = {
        "prefix": prefix,
        "path": path,
        "safe_regex": safe_regex,
        "case_sensitive": case_sensitive,
    }
    action = route.WhichOneof("action")
    if action != "route":
        return Route(**common, non_forwarding=True, action=action or "")
    specifier = route.route.WhichOneof("cluster_specifier")
    if specifier == "cluster":
        if not route.route.cluster:
            raise _Invalid(f"{field}.route.cluster", "empty")
        return Route(**common, cluster=route.route.cluster)
    if specifier == "weighted_clusters":
        _check_weighted_clusters(route.route.weighted_clusters, f"{field}.route.weighted_clusters")
        return Route(**common, non_forwarding=True, action="weighted_clusters")
    return None  # unset, cluster_header, cluster specifier plugins: the route is ignored


def _check_weighted_clusters(weighted: _Msg, field: str) -> None:
    total = 0
    for i, cluster in enumerate(weighted.clusters):
        if not cluster.name:
            raise _Invalid(f"{field}.clusters[{i}].name", "empty")
        total += cluster.weight.value
    if total == 0:
        raise _Invalid(f"{field}.clusters", "the weights sum to 0")
    if total > _UINT32_MAX:
        raise _Invalid(f"{field}.clusters", f"the weights sum to {total} (more than 2^32-1)")


# --- CDS ---------------------------------------------------------------------------------


def _cluster(msg: _Msg, name: str) -> ClusterResource:
    kind = msg.WhichOneof("cluster_discovery_type")
    if kind == "cluster_type":
        type_name = _type_name(msg.cluster_type.typed_config.type_url)
        if type_name == _AGGREGATE:
            raise _Invalid("cluster_type", "aggregate clusters (gRFC A37) are not supported yet")
        shown = msg.cluster_type.name or type_name
        raise _Invalid("cluster_type", f"custom cluster type {shown!r} is not supported")
    if kind is None:
        raise _Invalid("type", "not set (only EDS clusters are supported)")
    type_enum = msg.DESCRIPTOR.fields_by_name["type"].enum_type
    if msg.type != type_enum.values_by_name["EDS"].number:
        shown = _enum_name(type_enum, msg.type)
        raise _Invalid("type", f"{shown} is not supported (only EDS clusters, gRFC A27)")
    if not msg.HasField("eds_cluster_config") or not msg.eds_cluster_config.HasField("eds_config"):
        raise _Invalid("eds_cluster_config.eds_config", "not set")
    if not _config_source_is_ads_or_self(msg.eds_cluster_config.eds_config):
        raise _Invalid("eds_cluster_config.eds_config", "must be ads or self (gRFC A27)")

    if msg.HasField("load_balancing_policy"):
        lb_policy = _lb_policy(msg.load_balancing_policy, "load_balancing_policy", 0)
    else:
        lb_enum = msg.DESCRIPTOR.fields_by_name["lb_policy"].enum_type
        if msg.lb_policy != lb_enum.values_by_name["ROUND_ROBIN"].number:
            shown = _enum_name(lb_enum, msg.lb_policy)
            raise _Invalid(
                "lb_policy",
                f"{shown} is not supported for cluster {name!r} (only ROUND_ROBIN)",
            )
        lb_policy = "round_robin"

    max_requests = _DEFAULT_MAX_REQUESTS
    for threshold in msg.circuit_breakers.thresholds:
        if threshold.priority == 0:  # RoutingPriority DEFAULT; HIGH is not used by gRPC
            if threshold.HasField("max_requests"):
                max_requests = threshold.max_requests.value
            break

    lrs_server_self = False
    if msg.HasField("lrs_server"):
        if msg.lrs_server.WhichOneof("config_source_specifier") != "self":
            raise _Invalid("lrs_server", "must be self (gRFC A27)")
        lrs_server_self = True

    return ClusterResource(
        name=name,
        eds_service_name=msg.eds_cluster_config.service_name,
        lb_policy=lb_policy,
        max_requests=max_requests,
        lrs_server_self=lrs_server_self,
    )


def _enum_name(enum_type: Any, number: int) -> str:
    value = enum_type.values_by_number.get(number)
    return value.name if value is not None else f"unknown value {number}"


def _lb_policy(policy: _Msg, field: str, depth: int) -> str:
    """gRFC A52: the first policy in the list that grpc_lite supports."""
    if depth >= _MAX_LB_POLICY_DEPTH:
        raise _Invalid(field, f"nested more than {_MAX_LB_POLICY_DEPTH} deep (gRFC A52)")
    seen: list[str] = []
    for i, entry in enumerate(policy.policies):
        config = entry.typed_extension_config.typed_config
        type_name = _type_name(config.type_url)
        where = f"{field}.policies[{i}].typed_extension_config.typed_config"
        if type_name == _ROUND_ROBIN:
            _parse(type_name, config.value, where)
            return "round_robin"
        if type_name == _WRR_LOCALITY:
            wrr = _parse(type_name, config.value, where)
            child = _lb_policy(
                wrr.endpoint_picking_policy, f"{where}.endpoint_picking_policy", depth + 1
            )
            if child == "round_robin":
                return "round_robin"
        seen.append(type_name or "<no type>")
    raise _Invalid(field, f"no supported policy (only round_robin) among {seen}")


# --- EDS ---------------------------------------------------------------------------------


def _endpoints(msg: _Msg, name: str) -> EndpointsResource:
    drops: list[DropOverload] = []
    for i, drop in enumerate(msg.policy.drop_overloads):
        percent = drop.drop_percentage
        factor = _TO_PPM.get(percent.denominator)
        if factor is None:
            raise _Invalid(
                f"policy.drop_overloads[{i}].drop_percentage.denominator",
                f"unknown value {percent.denominator}",
            )
        ppm = min(percent.numerator * factor, 1_000_000)
        drops.append(DropOverload(category=drop.category, parts_per_million=ppm))

    by_priority: dict[int, list[Locality]] = {}
    weight_sums: dict[int, int] = {}
    seen_addresses: set[str] = set()
    for i, group in enumerate(msg.endpoints):
        where = f"endpoints[{i}]"
        if not group.HasField("locality"):
            raise _Invalid(f"{where}.locality", "not set")
        lid = LocalityId(group.locality.region, group.locality.zone, group.locality.sub_zone)
        weight = group.load_balancing_weight.value
        if weight == 0:
            continue  # A27: a locality without a weight is skipped
        priority = group.priority
        weight_sums[priority] = weight_sums.get(priority, 0) + weight
        if weight_sums[priority] > _UINT32_MAX:
            raise _Invalid(
                f"{where}.load_balancing_weight",
                f"the locality weights of priority {priority} sum to more than 2^32-1",
            )
        localities = by_priority.setdefault(priority, [])
        if any(existing.id == lid for existing in localities):
            raise _Invalid(
                f"{where}.locality", f"locality {lid} appears twice in priority {priority}"
            )
        endpoints = tuple(
            ep
            for j, lb_endpoint in enumerate(group.lb_endpoints)
            if (ep := _lb_endpoint(lb_endpoint, f"{where}.lb_endpoints[{j}]", seen_addresses))
            is not None
        )
        localities.append(Locality(id=lid, weight=weight, priority=priority, endpoints=endpoints))

    for expected in range(len(by_priority)):
        if expected not in by_priority:
            raise _Invalid(
                "endpoints",
                f"priority {expected} has no locality but priorities {sorted(by_priority)} do "
                "(priorities must run from 0 without gaps, gRFC A27)",
            )
    return EndpointsResource(
        name=name,
        priorities=tuple(tuple(by_priority[p]) for p in range(len(by_priority))),
        drop_overloads=tuple(drops),
    )


def _lb_endpoint(lb_endpoint: _Msg, field: str, seen: set[str]) -> LbEndpoint | None:
    if lb_endpoint.WhichOneof("host_identifier") != "endpoint":
        raise _Invalid(f"{field}.endpoint", "not set")
    endpoint = lb_endpoint.endpoint
    addresses = [_socket_address(endpoint.address, f"{field}.endpoint.address")]
    for k, extra in enumerate(endpoint.additional_addresses):
        addresses.append(
            _socket_address(extra.address, f"{field}.endpoint.additional_addresses[{k}].address")
        )
    for address in addresses:
        if address in seen:
            raise _Invalid(f"{field}.endpoint", f"address {address} appears twice in the cluster")
        seen.add(address)
    weight = 1
    if lb_endpoint.HasField("load_balancing_weight"):
        weight = lb_endpoint.load_balancing_weight.value
        if weight == 0:
            raise _Invalid(f"{field}.load_balancing_weight", "0 (must be at least 1)")
    try:
        health = HealthStatus(lb_endpoint.health_status)
    except ValueError:
        return None  # A27: only HEALTHY and UNKNOWN endpoints are used; this one is neither
    return LbEndpoint(addresses=tuple(addresses), health=health, weight=weight)


def _socket_address(address: _Msg, field: str) -> str:
    if address.WhichOneof("address") != "socket_address":
        raise _Invalid(f"{field}.socket_address", "not set")
    sock = address.socket_address
    where = f"{field}.socket_address"
    if sock.resolver_name:
        raise _Invalid(f"{where}.resolver_name", "custom resolvers are not supported")
    try:
        ip = ipaddress.ip_address(sock.address)
    except ValueError:
        raise _Invalid(
            f"{where}.address", f"{sock.address!r} is not an IPv4 or IPv6 address (gRFC A27)"
        ) from None
    if sock.WhichOneof("port_specifier") != "port_value":
        raise _Invalid(f"{where}.port_value", "not set (named ports are not supported)")
    port = sock.port_value
    if not 0 < port <= 65535:
        raise _Invalid(f"{where}.port_value", f"{port} is not a port (1..65535)")
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


# --- the resource types -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ResourceType:
    type_url: str
    short_name: str
    all_resources_required_in_sotw: bool
    _name_field: str
    _validate: Callable[[_Msg, str], object]

    def __repr__(self) -> str:
        return f"<xDS resource type {self.short_name}>"

    def decode(self, serialized_any: bytes) -> DecodeResult:
        try:
            return self._decode(serialized_any)
        except Exception as exc:  # never raise: whatever the bytes are, it is a NACK reason
            return DecodeResult(
                None, error=f"{self.short_name} resource: cannot be decoded: {exc!r}"
            )

    def _decode(self, serialized_any: bytes) -> DecodeResult:
        what = f"{self.short_name} resource"
        try:
            packed: _Msg = _protos.parse(_ANY, serialized_any)
        except DecodeError as exc:
            return DecodeResult(None, error=f"{what}: not a google.protobuf.Any: {exc}")
        wrapper_name: str | None = None
        if packed.type_url == _RESOURCE_WRAPPER:
            try:
                wrapper: _Msg = _protos.parse(_RESOURCE_WRAPPER[len(_URL_PREFIX) :], packed.value)
            except DecodeError as exc:
                return DecodeResult(None, error=f"{what}: Resource wrapper: {exc}")
            wrapper_name = wrapper.name or None
            if not wrapper.HasField("resource"):
                return DecodeResult(wrapper_name, error=f"{what}: Resource.resource: not set")
            packed = wrapper.resource
        if packed.type_url != self.type_url:
            return DecodeResult(
                wrapper_name,
                error=f"{what}: type_url {packed.type_url!r} is not {self.type_url!r}",
            )
        message = _type_name(self.type_url)
        try:
            msg = _protos.parse(message, packed.value)
        except DecodeError as exc:
            return DecodeResult(wrapper_name, error=f"{what}: does not parse as {message}: {exc}")
        name: str = getattr(msg, self._name_field)
        if not name:
            return DecodeResult(wrapper_name, error=f"{what}: {self._name_field}: empty")
        try:
            resource = self._validate(msg, name)
        except _Invalid as exc:
            return DecodeResult(name, error=f"{what} {name!r}: {exc}")
        return DecodeResult(name, resource=resource)


LISTENER: ResourceType = _ResourceType(LDS, "LDS", True, "name", _listener)
ROUTE_CONFIG: ResourceType = _ResourceType(RDS, "RDS", False, "name", _route_config)
CLUSTER: ResourceType = _ResourceType(CDS, "CDS", True, "name", _cluster)
ENDPOINTS: ResourceType = _ResourceType(EDS, "EDS", False, "cluster_name", _endpoints)

#: The resource types by type URL.
RESOURCE_TYPES: dict[str, ResourceType] = {
    t.type_url: t for t in (LISTENER, ROUTE_CONFIG, CLUSTER, ENDPOINTS)
}
_BY_SHORT_NAME = {t.short_name: t for t in RESOURCE_TYPES.values()}


def by_short_name(short_name: str) -> ResourceType:
    """The resource type called ``"LDS"``, ``"RDS"``, ``"CDS"`` or ``"EDS"``."""
    try:
        return _BY_SHORT_NAME[short_name.upper()]
    except KeyError:
        raise KeyError(
            f"unknown xDS resource type {short_name!r} (one of {', '.join(_BY_SHORT_NAME)})"
        ) from None

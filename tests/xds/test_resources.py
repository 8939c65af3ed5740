"""grpc_lite.xds._resources: decoding and validating LDS/RDS/CDS/EDS resources (gRFC A27,
A28, A39, A41, A52, A61), one table row per rule, and corrupt input that must never raise."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from grpc_lite.xds import _protos, _resources
from grpc_lite.xds._model import (
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
    LocalityId,
    Route,
    RouteConfigResource,
)

M = _protos.message_class
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
Msg = Any


def pack(msg: Msg) -> bytes:
    packed = M("google.protobuf.Any")()
    packed.Pack(msg)
    return bytes(packed.SerializeToString())


def wrap(msg: Msg, name: str = "") -> bytes:
    resource = M("envoy.service.discovery.v3.Resource")(name=name)
    resource.resource.Pack(msg)
    return pack(resource)


# --- known-good resources ----------------------------------------------------------------


def router_filter(hcm: Msg, name: str = "router") -> Msg:
    flt = hcm.http_filters.add(name=name)
    flt.typed_config.Pack(M(ROUTER)())
    return flt


def hcm_rds(route_config_name: str = "rc") -> Msg:
    hcm = M(HCM)()
    hcm.rds.config_source.ads.SetInParent()
    hcm.rds.route_config_name = route_config_name
    router_filter(hcm)
    return hcm


def listener(hcm: Msg | None = None, name: str = "svc") -> Msg:
    lis = M("envoy.config.listener.v3.Listener")(name=name)
    lis.api_listener.api_listener.Pack(hcm if hcm is not None else hcm_rds())
    return lis


def route_config(name: str = "rc") -> Msg:
    rc = M("envoy.config.route.v3.RouteConfiguration")(name=name)
    vh = rc.virtual_hosts.add(name="vh", domains=["svc"])
    route = vh.routes.add()
    route.match.prefix = ""
    route.route.cluster = "c1"
    return rc


def cluster(name: str = "c1") -> Msg:
    c = M("envoy.config.cluster.v3.Cluster")(name=name)
    c.type = c.EDS
    c.eds_cluster_config.eds_config.ads.SetInParent()
    c.eds_cluster_config.service_name = "eds1"
    return c


def cla(name: str = "eds1") -> Msg:
    m = M("envoy.config.endpoint.v3.ClusterLoadAssignment")(cluster_name=name)
    for priority, (region, port) in enumerate((("r0", 8000), ("r1", 9000))):
        group = m.endpoints.add(priority=priority)
        group.locality.region = region
        group.load_balancing_weight.value = 1
        ep = group.lb_endpoints.add()
        ep.endpoint.address.socket_address.address = "127.0.0.1"
        ep.endpoint.address.socket_address.port_value = port
    return m


def decode_ok(rtype: Any, data: bytes) -> Any:
    result = rtype.decode(data)
    assert result.error is None, result.error
    return result.resource


def first_route(rc: Msg) -> Msg:
    return rc.virtual_hosts[0].routes[0]


# --- the types ---------------------------------------------------------------------------


def test_the_four_types() -> None:
    assert _resources.RESOURCE_TYPES == {
        LDS: _resources.LISTENER,
        RDS: _resources.ROUTE_CONFIG,
        CDS: _resources.CLUSTER,
        EDS: _resources.ENDPOINTS,
    }
    assert [t.short_name for t in _resources.RESOURCE_TYPES.values()] == [
        "LDS",
        "RDS",
        "CDS",
        "EDS",
    ]
    assert _resources.LISTENER.all_resources_required_in_sotw
    assert _resources.CLUSTER.all_resources_required_in_sotw
    assert not _resources.ROUTE_CONFIG.all_resources_required_in_sotw
    assert not _resources.ENDPOINTS.all_resources_required_in_sotw
    assert _resources.by_short_name("CDS") is _resources.CLUSTER
    assert _resources.by_short_name("eds") is _resources.ENDPOINTS
    with pytest.raises(KeyError, match=r"'XDS'.*LDS, RDS, CDS, EDS"):
        _resources.by_short_name("XDS")


def test_good_resources_decode() -> None:
    assert decode_ok(_resources.LISTENER, pack(listener())) == ListenerResource(
        name="svc", route_config_name="rc", http_filters=("router",)
    )
    assert decode_ok(_resources.ROUTE_CONFIG, pack(route_config())) == RouteConfigResource(
        name="rc",
        virtual_hosts=(_vh(routes=(Route(prefix="", cluster="c1"),)),),
    )
    assert decode_ok(_resources.CLUSTER, pack(cluster())) == ClusterResource(
        name="c1", eds_service_name="eds1"
    )
    eds = decode_ok(_resources.ENDPOINTS, pack(cla()))
    assert isinstance(eds, EndpointsResource)
    assert eds.name == "eds1"
    assert [[loc.id for loc in p] for p in eds.priorities] == [
        [LocalityId("r0")],
        [LocalityId("r1")],
    ]
    assert eds.priorities[1][0].endpoints == (LbEndpoint(addresses=("127.0.0.1:9000",)),)


def _vh(routes: tuple[Route, ...]) -> Any:
    from grpc_lite.xds._model import VirtualHost

    return VirtualHost(name="vh", domains=("svc",), routes=routes)


def test_a_wrapped_resource_is_unwrapped() -> None:
    result = _resources.CLUSTER.decode(wrap(cluster(), name="c1"))
    assert result == DecodeResult(
        "c1", resource=ClusterResource(name="c1", eds_service_name="eds1")
    )
    empty = M("envoy.service.discovery.v3.Resource")(name="c9")
    result = _resources.CLUSTER.decode(pack(empty))
    assert result.name == "c9"
    assert result.error == "CDS resource: Resource.resource: not set"


def test_the_wrong_type_is_an_error_without_a_name() -> None:
    result = _resources.CLUSTER.decode(pack(listener()))
    assert result.name is None
    assert result.error is not None
    assert "envoy.config.listener.v3.Listener" in result.error
    assert "envoy.config.cluster.v3.Cluster" in result.error


def test_a_resource_without_a_name() -> None:
    result = _resources.ENDPOINTS.decode(pack(cla(name="")))
    assert result == DecodeResult(None, error="EDS resource: cluster_name: empty")


# --- LDS ---------------------------------------------------------------------------------


def _with_hcm(change: Callable[[Msg], None]) -> Msg:
    hcm = hcm_rds()
    change(hcm)
    return listener(hcm)


def _typed_struct(
    hcm: Msg, name: str, type_url: str, kind: str = "xds.type.v3.TypedStruct"
) -> None:
    flt = hcm.http_filters.add(name=name)
    struct = M(kind)(type_url=type_url)
    flt.typed_config.Pack(struct)


def _filters(*names: str) -> Callable[[Msg], None]:
    def change(hcm: Msg) -> None:
        del hcm.http_filters[:]
        for name in names:
            if name.startswith("router"):
                router_filter(hcm, name)
            else:
                flt = hcm.http_filters.add(name=name, is_optional=name.startswith("optional"))
                flt.typed_config.Pack(M("google.rpc.Status")())

    return change


def _no_api_listener() -> Msg:
    return M("envoy.config.listener.v3.Listener")(name="svc")


def _wrong_api_listener() -> Msg:
    lis = M("envoy.config.listener.v3.Listener")(name="svc")
    lis.api_listener.api_listener.Pack(M(ROUTER)())
    return lis


def _corrupt_hcm() -> Msg:
    lis = listener()
    lis.api_listener.api_listener.value = b"\xff\xff\xff"
    return lis


def _set(path: str, value: Any) -> Callable[[Msg], None]:
    def change(msg: Msg) -> None:
        *parents, leaf = path.split(".")
        for part in parents:
            msg = getattr(msg, part)
        setattr(msg, leaf, value)

    return change


def _non_ads_rds(hcm: Msg) -> None:
    hcm.rds.config_source.path = "/etc/rds"


def _no_route_specifier(hcm: Msg) -> None:
    hcm.ClearField("rds")


def _scoped_routes(hcm: Msg) -> None:
    hcm.scoped_routes.name = "s"


def _xff(hcm: Msg) -> None:
    hcm.xff_num_trusted_hops = 1


def _ip_detection(hcm: Msg) -> None:
    hcm.original_ip_detection_extensions.add(name="x")


def _filter_discovery(hcm: Msg) -> None:
    del hcm.http_filters[:]
    hcm.http_filters.add(name="ecds").config_discovery.config_source.ads.SetInParent()
    router_filter(hcm)


def _corrupt_router(hcm: Msg) -> None:
    hcm.http_filters[0].typed_config.value = b"\xff\xff"


def _bad_inline_route(hcm: Msg) -> None:
    rc = route_config()
    first_route(rc).match.ClearField("prefix")
    hcm.route_config.CopyFrom(rc)


def _negative_duration(hcm: Msg) -> None:
    hcm.common_http_protocol_options.max_stream_duration.seconds = -1


LDS_NACKS: list[tuple[str, Callable[[], Msg], str]] = [
    ("no api_listener", _no_api_listener, "'svc': api_listener: not set"),
    ("api_listener not an HCM", _wrong_api_listener, "api_listener.api_listener: type"),
    ("HCM does not parse", _corrupt_hcm, "does not parse as envoy.extensions"),
    ("rds not ADS", lambda: _with_hcm(_non_ads_rds), "rds.config_source: must be ads or self"),
    (
        "empty rds name",
        lambda: _with_hcm(_set("rds.route_config_name", "")),
        "route_config_name: empty",
    ),
    ("no route specifier", lambda: _with_hcm(_no_route_specifier), "neither rds nor route_config"),
    ("scoped routes", lambda: _with_hcm(_scoped_routes), "scoped_routes: not supported"),
    ("xff hops", lambda: _with_hcm(_xff), "xff_num_trusted_hops: must be 0"),
    ("ip detection", lambda: _with_hcm(_ip_detection), "original_ip_detection_extensions"),
    ("no filters", lambda: _with_hcm(_filters()), "http_filters: no router filter"),
    (
        "unknown filter",
        lambda: _with_hcm(_filters("fault", "router")),
        "'fault'.typed_config: filter type 'google.rpc.Status' is not supported",
    ),
    (
        "router not last",
        lambda: _with_hcm(_filters("router", "router2")),
        "router filter 'router' is not the last",
    ),
    ("only optional filters", lambda: _with_hcm(_filters("optional-x")), "no router filter"),
    ("filter without a name", lambda: _with_hcm(_filters("")), "http_filters[0].name: empty"),
    (
        "duplicate filter names",
        lambda: _with_hcm(_filters("router", "router")),
        "'router': duplicate filter name",
    ),
    (
        "filter via ECDS",
        lambda: _with_hcm(_filter_discovery),
        "'ecds'.typed_config: not set (config_discovery",
    ),
    (
        "router config corrupt",
        lambda: _with_hcm(_corrupt_router),
        "'router'.typed_config: does not parse",
    ),
    (
        "inline route config invalid",
        lambda: _with_hcm(_bad_inline_route),
        "route_config.virtual_hosts[0].routes[0].match.path_specifier: not set",
    ),
    (
        "negative max_stream_duration",
        lambda: _with_hcm(_negative_duration),
        "max_stream_duration: not a valid",
    ),
]


@pytest.mark.parametrize(
    ("build", "reason"), [r[1:] for r in LDS_NACKS], ids=[r[0] for r in LDS_NACKS]
)
def test_lds_nacks(build: Callable[[], Msg], reason: str) -> None:
    result = _resources.LISTENER.decode(pack(build()))
    assert result.name == "svc"
    assert result.resource is None
    assert result.error is not None
    assert result.error.startswith("LDS resource 'svc': ")
    assert reason in result.error


def test_lds_accepts_filters_as_grpc_does() -> None:
    def optional_and_typed_struct(hcm: Msg) -> None:
        _filters("optional-fault", "router")(hcm)
        # The router's config may come as a TypedStruct (xds or the older udpa one).
        del hcm.http_filters[1:]
        _typed_struct(hcm, "router-ts", "type.googleapis.com/" + ROUTER)

    got = decode_ok(_resources.LISTENER, pack(_with_hcm(optional_and_typed_struct)))
    assert got.http_filters == ("router-ts",)

    def udpa(hcm: Msg) -> None:
        del hcm.http_filters[:]
        _typed_struct(hcm, "r", "type.googleapis.com/" + ROUTER, "udpa.type.v1.TypedStruct")

    assert decode_ok(_resources.LISTENER, pack(_with_hcm(udpa))).http_filters == ("r",)

    def optional_ecds(hcm: Msg) -> None:
        _filter_discovery(hcm)
        hcm.http_filters[0].is_optional = True

    assert decode_ok(_resources.LISTENER, pack(_with_hcm(optional_ecds))).http_filters == (
        "router",
    )


def test_lds_inline_route_config_self_rds_and_max_stream_duration() -> None:
    def inline(hcm: Msg) -> None:
        hcm.route_config.CopyFrom(route_config("inline"))
        hcm.common_http_protocol_options.max_stream_duration.seconds = 2
        hcm.common_http_protocol_options.max_stream_duration.nanos = 500_000_000

    got = decode_ok(_resources.LISTENER, pack(_with_hcm(inline)))
    assert got.route_config_name is None
    assert got.route_config is not None
    assert got.route_config.name == "inline"
    assert got.max_stream_duration == 2.5

    def self_source(hcm: Msg) -> None:
        hcm.rds.config_source.self.SetInParent()
        hcm.common_http_protocol_options.max_stream_duration.seconds = 0

    got = decode_ok(_resources.LISTENER, pack(_with_hcm(self_source)))
    assert got.route_config_name == "rc"
    assert got.max_stream_duration is None  # 0: no limit


# --- RDS ---------------------------------------------------------------------------------


def _rc(change: Callable[[Msg], None]) -> Msg:
    rc = route_config()
    change(rc)
    return rc


def _route(change: Callable[[Msg], None]) -> Msg:
    return _rc(lambda rc: change(first_route(rc)))


def _no_domains(rc: Msg) -> None:
    del rc.virtual_hosts[0].domains[:]


def _empty_domain(rc: Msg) -> None:
    rc.virtual_hosts[0].domains.append("")


def _bad_regex(route: Msg) -> None:
    route.match.safe_regex.regex = "a(b"


def _separated_prefix(route: Msg) -> None:
    route.match.path_separated_prefix = "/a"


def _no_path_specifier(route: Msg) -> None:
    route.match.ClearField("prefix")


def _empty_cluster(route: Msg) -> None:
    route.route.cluster = ""


def _weights(*weights: tuple[str, int]) -> Callable[[Msg], None]:
    def change(route: Msg) -> None:
        for name, weight in weights:
            route.route.weighted_clusters.clusters.add(name=name).weight.value = weight

    return change


def _bad_fraction(route: Msg) -> None:
    route.match.runtime_fraction.default_value.denominator = 7


RDS_NACKS: list[tuple[str, Msg, str]] = [
    ("no domains", _rc(_no_domains), "virtual_hosts[0].domains: virtual host 'vh' has no domains"),
    ("empty domain", _rc(_empty_domain), "virtual_hosts[0].domains[1]: empty"),
    (
        "regex does not compile",
        _route(_bad_regex),
        "routes[0].match.safe_regex.regex: does not compile",
    ),
    (
        "unsupported path specifier",
        _route(_separated_prefix),
        "match.path_separated_prefix: not supported",
    ),
    ("no path specifier", _route(_no_path_specifier), "match.path_specifier: not set"),
    ("empty cluster", _route(_empty_cluster), "routes[0].route.cluster: empty"),
    (
        "weights sum to 0",
        _route(_weights(("a", 0), ("b", 0))),
        "weighted_clusters.clusters: the weights sum to 0",
    ),
    ("weights overflow", _route(_weights(("a", 2**32 - 1), ("b", 1))), "more than 2^32-1"),
    (
        "weighted cluster without a name",
        _route(_weights(("", 1))),
        "weighted_clusters.clusters[0].name: empty",
    ),
    (
        "runtime fraction denominator",
        _route(_bad_fraction),
        "runtime_fraction.default_value.denominator: unknown value 7",
    ),
]


@pytest.mark.parametrize(
    ("rc", "reason"), [r[1:] for r in RDS_NACKS], ids=[r[0] for r in RDS_NACKS]
)
def test_rds_nacks(rc: Msg, reason: str) -> None:
    result = _resources.ROUTE_CONFIG.decode(pack(rc))
    assert result.name == "rc"
    assert result.error is not None
    assert result.error.startswith("RDS resource 'rc': ")
    assert reason in result.error


def _add_route(rc: Msg, build: Callable[[Msg], None]) -> None:
    """A route before the default one."""
    route = M("envoy.config.route.v3.Route")()
    route.match.prefix = "/svc/"
    route.route.cluster = "c0"
    build(route)
    routes = list(rc.virtual_hosts[0].routes)
    del rc.virtual_hosts[0].routes[:]
    rc.virtual_hosts[0].routes.extend([route, *routes])


def _headers(route: Msg) -> None:
    route.match.headers.add(name="x-canary").exact_match = "1"


def _query(route: Msg) -> None:
    route.match.query_parameters.add(name="q")


def _fraction(numerator: int, denominator: int = 0) -> Callable[[Msg], None]:
    def change(route: Msg) -> None:
        route.match.runtime_fraction.default_value.numerator = numerator
        route.match.runtime_fraction.default_value.denominator = denominator

    return change


def _cluster_header(route: Msg) -> None:
    route.route.cluster_header = "x-cluster"


def _no_cluster_specifier(route: Msg) -> None:
    route.route.ClearField("cluster")
    route.route.timeout.seconds = 1


def _plugin(route: Msg) -> None:
    route.route.cluster_specifier_plugin = "p"


def _action(name: str) -> Callable[[Msg], None]:
    def change(route: Msg) -> None:
        route.ClearField("route")
        if name:
            getattr(route, name).SetInParent()

    return change


DEFAULT = Route(prefix="", cluster="c1")
RDS_ROUTES: list[tuple[str, Callable[[Msg], None], tuple[Route, ...]]] = [
    ("plain cluster", lambda r: None, (Route(prefix="/svc/", cluster="c0"), DEFAULT)),
    (
        "path",
        lambda r: _set("match.path", "/svc/M")(r),
        (Route(path="/svc/M", cluster="c0"), DEFAULT),
    ),
    (
        "regex",
        lambda r: _set("match.safe_regex.regex", "/svc/.*")(r),
        (Route(safe_regex="/svc/.*", cluster="c0"), DEFAULT),
    ),
    (
        "case insensitive",
        lambda r: _set("match.case_sensitive.value", False)(r),
        (Route(prefix="/svc/", case_sensitive=False, cluster="c0"), DEFAULT),
    ),
    # A28: query parameters never match a gRPC request: the route is ignored.
    ("query parameters", _query, (DEFAULT,)),
    # Not evaluated in this release: left out rather than matching more than it should.
    ("header matchers", _headers, (DEFAULT,)),
    ("runtime fraction 50%", _fraction(50), (DEFAULT,)),
    ("runtime fraction 100%", _fraction(100), (Route(prefix="/svc/", cluster="c0"), DEFAULT)),
    (
        "runtime fraction 1M/1M",
        _fraction(1_000_000, 2),
        (Route(prefix="/svc/", cluster="c0"), DEFAULT),
    ),
    # A28: an unsupported or unset cluster specifier: the route is ignored.
    ("cluster_header", _cluster_header, (DEFAULT,)),
    ("no cluster specifier", _no_cluster_specifier, (DEFAULT,)),
    ("cluster specifier plugin", _plugin, (DEFAULT,)),
    # Kept, and RPCs it matches fail UNAVAILABLE instead of going to the default route.
    (
        "weighted clusters",
        _weights(("a", 1), ("b", 3)),
        (Route(prefix="/svc/", non_forwarding=True, action="weighted_clusters"), DEFAULT),
    ),
    (
        "non-forwarding action",
        _action("non_forwarding_action"),
        (Route(prefix="/svc/", non_forwarding=True, action="non_forwarding_action"), DEFAULT),
    ),
    (
        "redirect",
        _action("redirect"),
        (Route(prefix="/svc/", non_forwarding=True, action="redirect"), DEFAULT),
    ),
    (
        "direct response",
        _action("direct_response"),
        (Route(prefix="/svc/", non_forwarding=True, action="direct_response"), DEFAULT),
    ),
    ("no action", _action(""), (Route(prefix="/svc/", non_forwarding=True, action=""), DEFAULT)),
]


@pytest.mark.parametrize(
    ("change", "routes"), [r[1:] for r in RDS_ROUTES], ids=[r[0] for r in RDS_ROUTES]
)
def test_rds_routes(change: Callable[[Msg], None], routes: tuple[Route, ...]) -> None:
    rc = route_config()
    _add_route(rc, change)
    got = decode_ok(_resources.ROUTE_CONFIG, pack(rc))
    assert got.virtual_hosts[0].routes == routes


def test_rds_keeps_virtual_hosts_and_their_order() -> None:
    rc = route_config()
    rc.virtual_hosts.add(name="other", domains=["*.example.com", "*"])
    got = decode_ok(_resources.ROUTE_CONFIG, pack(rc))
    assert [(vh.name, vh.domains) for vh in got.virtual_hosts] == [
        ("vh", ("svc",)),
        ("other", ("*.example.com", "*")),
    ]
    assert got.virtual_hosts[1].routes == ()


# --- CDS ---------------------------------------------------------------------------------


def _cl(change: Callable[[Msg], None]) -> Msg:
    c = cluster()
    change(c)
    return c


def _aggregate(c: Msg) -> None:
    c.cluster_type.name = "envoy.clusters.aggregate"
    config = M("envoy.extensions.clusters.aggregate.v3.ClusterConfig")(clusters=["a", "b"])
    c.cluster_type.typed_config.Pack(config)


def _custom_type(c: Msg) -> None:
    c.cluster_type.name = "my.cluster"


def _no_type(c: Msg) -> None:
    c.ClearField("type")


def _eds_config(kind: str) -> Callable[[Msg], None]:
    def change(c: Msg) -> None:
        if kind == "unset":
            c.eds_cluster_config.ClearField("eds_config")
        else:
            c.eds_cluster_config.eds_config.path = "/etc/eds"

    return change


def _policies(*type_names: str) -> Callable[[Msg], None]:
    def change(c: Msg) -> None:
        for type_name in type_names:
            entry = c.load_balancing_policy.policies.add()
            entry.typed_extension_config.name = type_name
            entry.typed_extension_config.typed_config.Pack(M(type_name)())

    return change


def _lrs(kind: str) -> Callable[[Msg], None]:
    def change(c: Msg) -> None:
        getattr(c.lrs_server, kind).SetInParent()

    return change


def _nested_wrr(depth: int) -> Callable[[Msg], None]:
    def change(c: Msg) -> None:
        wrr_name = "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality"
        inner = M("envoy.config.cluster.v3.LoadBalancingPolicy")()
        inner.policies.add().typed_extension_config.typed_config.Pack(
            M("envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin")()
        )
        for _ in range(depth):
            wrr = M(wrr_name)()
            wrr.endpoint_picking_policy.CopyFrom(inner)
            inner = M("envoy.config.cluster.v3.LoadBalancingPolicy")()
            inner.policies.add().typed_extension_config.typed_config.Pack(wrr)
        c.load_balancing_policy.CopyFrom(inner)

    return change


RING_HASH = "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash"
ROUND_ROBIN = "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"
PICK_FIRST = "envoy.extensions.load_balancing_policies.pick_first.v3.PickFirst"

CDS_NACKS: list[tuple[str, Msg, str]] = [
    (
        "MAGLEV",
        _cl(_set("lb_policy", 5)),
        "lb_policy: MAGLEV is not supported for cluster 'c1' (only ROUND_ROBIN)",
    ),
    ("RING_HASH", _cl(_set("lb_policy", 2)), "lb_policy: RING_HASH is not supported"),
    ("LEAST_REQUEST", _cl(_set("lb_policy", 1)), "lb_policy: LEAST_REQUEST is not supported"),
    (
        "lb_policy out of range",
        _cl(_set("lb_policy", 99)),
        "lb_policy: unknown value 99 is not supported",
    ),
    ("LOGICAL_DNS", _cl(_set("type", 2)), "type: LOGICAL_DNS is not supported (only EDS"),
    ("STATIC", _cl(_set("type", 0)), "type: STATIC is not supported"),
    ("aggregate", _cl(_aggregate), "cluster_type: aggregate clusters (gRFC A37) are not supported"),
    ("custom type", _cl(_custom_type), "cluster_type: custom cluster type 'my.cluster'"),
    ("no type", _cl(_no_type), "type: not set"),
    ("no eds_config", _cl(_eds_config("unset")), "eds_cluster_config.eds_config: not set"),
    (
        "eds_config not ADS",
        _cl(_eds_config("path")),
        "eds_cluster_config.eds_config: must be ads or self",
    ),
    ("lrs_server not self", _cl(_lrs("ads")), "lrs_server: must be self"),
    (
        "no supported policy",
        _cl(_policies(RING_HASH, PICK_FIRST)),
        "load_balancing_policy: no supported policy (only round_robin) among "
        "['envoy.extensions.load_balancing_policies.ring_hash",
    ),
    ("policies nested too deep", _cl(_nested_wrr(17)), "nested more than 16 deep"),
]


@pytest.mark.parametrize(("c", "reason"), [r[1:] for r in CDS_NACKS], ids=[r[0] for r in CDS_NACKS])
def test_cds_nacks(c: Msg, reason: str) -> None:
    result = _resources.CLUSTER.decode(pack(c))
    assert result.name == "c1"
    assert result.error is not None
    assert result.error.startswith("CDS resource 'c1': ")
    assert reason in result.error


def _breakers(c: Msg) -> None:
    high = c.circuit_breakers.thresholds.add(priority=1)
    high.max_requests.value = 5
    default = c.circuit_breakers.thresholds.add(priority=0)
    default.max_requests.value = 77


CDS_OK: list[tuple[str, Callable[[Msg], None], dict[str, Any]]] = [
    ("defaults", lambda c: None, {}),
    ("no service name", _set("eds_cluster_config.service_name", ""), {"eds_service_name": ""}),
    ("self eds config", lambda c: c.eds_cluster_config.eds_config.self.SetInParent(), {}),
    ("circuit breakers", _breakers, {"max_requests": 77}),
    ("lrs self", _lrs("self"), {"lrs_server_self": True}),
    ("A52 round_robin after an unsupported one", _policies(RING_HASH, ROUND_ROBIN), {}),
    ("A52 wrr_locality over round_robin", _nested_wrr(1), {}),
    ("A52 nested 15 deep", _nested_wrr(15), {}),
]


@pytest.mark.parametrize(("change", "fields"), [r[1:] for r in CDS_OK], ids=[r[0] for r in CDS_OK])
def test_cds_accepts(change: Callable[[Msg], None], fields: dict[str, Any]) -> None:
    expected = {"name": "c1", "eds_service_name": "eds1", **fields}
    got = decode_ok(_resources.CLUSTER, pack(_cl(change)))
    assert got == ClusterResource(**expected)
    assert got.lb_policy == "round_robin"
    assert got.eds_resource_name == (expected["eds_service_name"] or "c1")


# --- EDS ---------------------------------------------------------------------------------


def _eds(change: Callable[[Msg], None]) -> Msg:
    m = cla()
    change(m)
    return m


def _ep(m: Msg, group: int = 0, index: int = 0) -> Msg:
    return m.endpoints[group].lb_endpoints[index]


def _sock(m: Msg, group: int = 0, index: int = 0) -> Msg:
    return _ep(m, group, index).endpoint.address.socket_address


def _gap(m: Msg) -> None:
    m.endpoints[1].priority = 2


def _dup_locality(m: Msg) -> None:
    m.endpoints[1].priority = 0
    m.endpoints[1].locality.region = "r0"


def _dup_address(m: Msg) -> None:
    _sock(m, 1).port_value = 8000


def _dup_additional(m: Msg) -> None:
    extra = _ep(m, 1).endpoint.additional_addresses.add()
    extra.address.socket_address.address = "127.0.0.1"
    extra.address.socket_address.port_value = 8000


def _no_locality(m: Msg) -> None:
    m.endpoints[0].ClearField("locality")


def _weight_overflow(m: Msg) -> None:
    m.endpoints[1].priority = 0
    m.endpoints[0].load_balancing_weight.value = 2**32 - 1


def _no_endpoint(m: Msg) -> None:
    _ep(m).ClearField("endpoint")


def _pipe(m: Msg) -> None:
    _ep(m).endpoint.address.pipe.path = "/tmp/sock"


def _hostname(m: Msg) -> None:
    _sock(m).address = "backend.local"


def _named_port(m: Msg) -> None:
    _sock(m).named_port = "http"


def _port(value: int) -> Callable[[Msg], None]:
    return lambda m: setattr(_sock(m), "port_value", value)


def _resolver(m: Msg) -> None:
    _sock(m).resolver_name = "dns"


def _zero_endpoint_weight(m: Msg) -> None:
    _ep(m).load_balancing_weight.value = 0


def _drop(numerator: int, denominator: int, category: str = "lb") -> Callable[[Msg], None]:
    def change(m: Msg) -> None:
        drop = m.policy.drop_overloads.add(category=category)
        drop.drop_percentage.numerator = numerator
        drop.drop_percentage.denominator = denominator

    return change


def _bad_additional(m: Msg) -> None:
    extra = _ep(m).endpoint.additional_addresses.add()
    extra.address.socket_address.address = "nope"


EDS_NACKS: list[tuple[str, Msg, str]] = [
    ("priority gap", _eds(_gap), "endpoints: priority 1 has no locality but priorities [0, 2] do"),
    (
        "duplicate locality",
        _eds(_dup_locality),
        "endpoints[1].locality: locality {region='r0', zone='', sub_zone=''} "
        "appears twice in priority 0",
    ),
    (
        "duplicate address",
        _eds(_dup_address),
        "endpoints[1].lb_endpoints[0].endpoint: address 127.0.0.1:8000 appears twice",
    ),
    ("duplicate additional address", _eds(_dup_additional), "address 127.0.0.1:8000 appears twice"),
    ("no locality", _eds(_no_locality), "endpoints[0].locality: not set"),
    (
        "weights overflow",
        _eds(_weight_overflow),
        "endpoints[1].load_balancing_weight: the locality weights of priority 0 "
        "sum to more than 2^32-1",
    ),
    ("no endpoint", _eds(_no_endpoint), "endpoints[0].lb_endpoints[0].endpoint: not set"),
    ("pipe address", _eds(_pipe), "lb_endpoints[0].endpoint.address.socket_address: not set"),
    (
        "hostname",
        _eds(_hostname),
        "socket_address.address: 'backend.local' is not an IPv4 or IPv6 address",
    ),
    ("named port", _eds(_named_port), "socket_address.port_value: not set (named ports"),
    ("port 0", _eds(_port(0)), "socket_address.port_value: 0 is not a port"),
    ("port too big", _eds(_port(70000)), "socket_address.port_value: 70000 is not a port"),
    ("custom resolver", _eds(_resolver), "socket_address.resolver_name: custom resolvers"),
    ("endpoint weight 0", _eds(_zero_endpoint_weight), "lb_endpoints[0].load_balancing_weight: 0"),
    (
        "drop denominator",
        _eds(_drop(1, 9)),
        "policy.drop_overloads[0].drop_percentage.denominator: unknown value 9",
    ),
    (
        "bad additional address",
        _eds(_bad_additional),
        "additional_addresses[0].address.socket_address.address: 'nope'",
    ),
]


@pytest.mark.parametrize(("m", "reason"), [r[1:] for r in EDS_NACKS], ids=[r[0] for r in EDS_NACKS])
def test_eds_nacks(m: Msg, reason: str) -> None:
    result = _resources.ENDPOINTS.decode(pack(m))
    assert result.name == "eds1"
    assert result.error is not None
    assert result.error.startswith("EDS resource 'eds1': ")
    assert reason in result.error


def test_eds_localities_weights_and_priorities() -> None:
    m = cla()
    m.endpoints[0].load_balancing_weight.value = 3
    zero = m.endpoints.add(priority=0)  # weight unset: the locality is left out
    zero.locality.region = "zero"
    zero.lb_endpoints.add().endpoint.address.socket_address.address = "not even checked"
    second = m.endpoints.add(priority=1)  # the same locality may appear in two priorities
    second.locality.region = "r0"
    second.load_balancing_weight.value = 2
    got = decode_ok(_resources.ENDPOINTS, pack(m))
    assert [[(loc.id.region, loc.weight, loc.priority) for loc in p] for p in got.priorities] == [
        [("r0", 3, 0)],
        [("r1", 1, 1), ("r0", 2, 1)],
    ]
    assert got.priorities[1][1].endpoints == ()


def test_eds_empty_is_valid() -> None:
    got = decode_ok(
        _resources.ENDPOINTS,
        pack(M("envoy.config.endpoint.v3.ClusterLoadAssignment")(cluster_name="e")),
    )
    assert got == EndpointsResource(name="e", priorities=())


def test_eds_endpoints_keep_health_weight_and_every_address() -> None:
    m = cla()
    ep = _ep(m)
    ep.health_status = 2  # UNHEALTHY: kept; the LB policy uses HEALTHY and UNKNOWN only
    ep.load_balancing_weight.value = 7
    extra = ep.endpoint.additional_addresses.add().address.socket_address
    extra.address = "::1"
    extra.port_value = 8000
    more = m.endpoints[0].lb_endpoints.add()
    more.endpoint.address.socket_address.address = "2001:db8:0:0::5"
    more.endpoint.address.socket_address.port_value = 443
    more.health_status = 1
    unknown = m.endpoints[0].lb_endpoints.add()  # an enum value this release does not know
    unknown.endpoint.address.socket_address.address = "10.0.0.9"
    unknown.endpoint.address.socket_address.port_value = 1
    unknown.health_status = 42
    got = decode_ok(_resources.ENDPOINTS, pack(m))
    assert got.priorities[0][0].endpoints == (
        LbEndpoint(
            addresses=("127.0.0.1:8000", "[::1]:8000"), health=HealthStatus.UNHEALTHY, weight=7
        ),
        LbEndpoint(addresses=("[2001:db8::5]:443",), health=HealthStatus.HEALTHY),
    )


@pytest.mark.parametrize(
    ("numerator", "denominator", "ppm"),
    [(5, 0, 50_000), (5, 1, 500), (5, 2, 5), (100, 0, 1_000_000), (300, 0, 1_000_000), (0, 2, 0)],
    ids=["5/100", "5/10000", "5/1M", "100%", "capped at 100%", "0"],
)
def test_eds_drop_overloads_in_parts_per_million(
    numerator: int, denominator: int, ppm: int
) -> None:
    got = decode_ok(_resources.ENDPOINTS, pack(_eds(_drop(numerator, denominator))))
    assert got.drop_overloads == (DropOverload(category="lb", parts_per_million=ppm),)


# --- corrupt input never raises -----------------------------------------------------------


def _seeds() -> list[tuple[Any, bytes]]:
    good = [
        (_resources.LISTENER, pack(listener())),
        (_resources.LISTENER, pack(_with_hcm(lambda h: h.route_config.CopyFrom(route_config())))),
        (_resources.ROUTE_CONFIG, pack(route_config())),
        (_resources.CLUSTER, pack(cluster())),
        (_resources.CLUSTER, pack(_cl(_nested_wrr(3)))),
        (_resources.ENDPOINTS, pack(cla())),
        (_resources.ENDPOINTS, wrap(_eds(_drop(5, 0)), "eds1")),
    ]
    for rtype, data in good:
        assert rtype.decode(data).error is None
    return good


def _corrupt(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(6)
    buf = bytearray(data)
    if choice == 0 and buf:  # truncate
        return bytes(buf[: rng.randrange(len(buf))])
    if choice == 1 and buf:  # flip bits
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if choice == 2 and buf:  # overwrite bytes
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return bytes(buf)
    if choice == 3:  # random junk
        return rng.randbytes(rng.randrange(64))
    if choice == 4 and buf:  # splice in junk
        at = rng.randrange(len(buf))
        return bytes(buf[:at] + rng.randbytes(rng.randint(1, 8)) + buf[at:])
    return bytes(buf)  # intact, but maybe decoded as another type below


def test_corrupt_truncated_and_wrong_type_payloads_never_raise() -> None:
    rng = random.Random(20261207)
    seeds = _seeds()
    types = list(_resources.RESOURCE_TYPES.values())
    outcomes = {"ok": 0, "error": 0}
    for _ in range(4000):
        rtype, data = rng.choice(seeds)
        if rng.random() < 0.2:
            rtype = rng.choice(types)  # a payload of another type
        result = rtype.decode(_corrupt(rng, data))
        assert isinstance(result, DecodeResult)
        if result.error is None:
            assert result.resource is not None
            assert result.name
            outcomes["ok"] += 1
        else:
            assert result.resource is None
            assert result.error.startswith(f"{rtype.short_name} resource")
            assert len(result.error) > len(rtype.short_name) + 12
            outcomes["error"] += 1
    assert outcomes["ok"] > 100 and outcomes["error"] > 1000, outcomes


def test_an_unexpected_exception_becomes_an_error() -> None:
    class Boom:
        def __bytes__(self) -> bytes:
            raise RuntimeError("boom")

    result = _resources.CLUSTER.decode(Boom())  # type: ignore[arg-type]
    assert result.name is None
    assert result.error is not None
    assert result.error.startswith("CDS resource: cannot be decoded:")

"""The xds resolver as gRFC A74's dependency manager, sans-IO: a fake XdsClient delivers
resources, a recording ResolverChannel runs the resolver's callbacks on a serializer."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from grpc_lite._serializer import CallbackSerializer, SerializedTimer
from grpc_lite.resolver import BuildOptions, ResolverState, RpcInfo, parse_target
from grpc_lite.status import RpcError, StatusCode
from grpc_lite.xds._model import (
    CDS,
    EDS,
    LDS,
    RDS,
    ClusterConfig,
    ClusterResource,
    EndpointsResource,
    LbEndpoint,
    ListenerResource,
    Locality,
    LocalityId,
    Route,
    RouteConfigResource,
    VirtualHost,
    XdsConfig,
)
from grpc_lite.xds._resolver import XdsDeps, XdsResolver
from grpc_lite.xds._selector import CLUSTER_ATTRIBUTE
from tests.fakes.clock import FakeClock

# --- fakes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeType:
    short_name: str
    type_url: str
    all_resources_required_in_sotw: bool = False

    def decode(self, serialized_any: bytes) -> Any:
        raise AssertionError("the resolver never decodes")


TYPES = {
    short: FakeType(short, url)
    for short, url in (("LDS", LDS), ("RDS", RDS), ("CDS", CDS), ("EDS", EDS))
}


@dataclass(frozen=True)
class FakeBootstrap:
    template: str = "%s"

    def listener_resource_name(self, authority_path: str) -> str:
        return self.template.replace("%s", authority_path)


class FakeXdsClient:
    """Records watches; the test delivers events to the watchers, as the client's task would."""

    def __init__(self) -> None:
        self.watchers: dict[tuple[str, str], list[Any]] = {}
        self.released = 0
        self.waited = 0
        self.acquire_args: dict[str, Any] = {}

    def watch(self, rtype: FakeType, name: str, watcher: Any) -> Callable[[], None]:
        key = (rtype.short_name, name)
        self.watchers.setdefault(key, []).append(watcher)

        def cancel() -> None:
            self.watchers[key].remove(watcher)
            if not self.watchers[key]:
                del self.watchers[key]

        return cancel

    def watched(self, short: str) -> set[str]:
        return {name for kind, name in self.watchers if kind == short}

    def release(self) -> None:
        self.released += 1

    async def wait_closed(self) -> None:
        self.waited += 1

    def debug_info(self) -> dict[str, Any]:
        return {"server": "fake"}

    def _each(self, short: str, name: str) -> list[Any]:
        return list(self.watchers.get((short, name), ()))

    def resource(self, short: str, name: str, resource: object) -> None:
        for w in self._each(short, name):
            w.on_resource(TYPES[short].type_url, name, resource)

    def does_not_exist(self, short: str, name: str) -> None:
        for w in self._each(short, name):
            w.on_does_not_exist(TYPES[short].type_url, name)

    def error(self, short: str, name: str, error: str) -> None:
        for w in self._each(short, name):
            w.on_error(TYPES[short].type_url, name, error)


class RecordingChannel:
    """A ResolverChannel: timers on a FakeClock, callbacks on a serializer, states recorded."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.clock = FakeClock()
        self.failures: list[Exception] = []
        self.serializer = CallbackSerializer(on_error=self.failures.append)
        self.options = dict(options or {})
        self.states: list[ResolverState] = []
        self.errors: list[Exception] = []

    @property
    def channel_options(self) -> Mapping[str, Any]:
        return self.options

    def update_state(self, state: ResolverState) -> bool:
        self.states.append(state)
        return True

    def report_error(self, exc: Exception) -> None:
        self.errors.append(exc)

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: object
    ) -> SerializedTimer:
        return SerializedTimer(self.serializer, self.clock, delay, callback, *args)

    @property
    def last(self) -> ResolverState:
        assert not self.failures, self.failures
        return self.states[-1]


def make(
    target: str = "xds:///svc",
    options: Mapping[str, Any] | None = None,
    bootstrap: Callable[[Mapping[str, Any]], Any] | None = None,
) -> tuple[XdsResolver, FakeXdsClient, RecordingChannel]:
    client = FakeXdsClient()
    channel = RecordingChannel(options)

    def acquire(bootstrap: Any, **kwargs: Any) -> FakeXdsClient:
        client.acquire_args = {"bootstrap": bootstrap, **kwargs}
        return client

    deps = XdsDeps(
        load_bootstrap=bootstrap or (lambda options: FakeBootstrap()),
        acquire=acquire,
        listener=TYPES["LDS"],
        route_config=TYPES["RDS"],
        cluster=TYPES["CDS"],
        endpoints=TYPES["EDS"],
    )
    build = BuildOptions(channel_options=channel.options, clock=channel.clock)
    resolver = XdsResolver(parse_target(target), channel, build, deps)
    return resolver, client, channel


# --- resources --------------------------------------------------------------------------


def route_config(
    name: str = "rc", *clusters: str, domains: tuple[str, ...] = ("svc",)
) -> RouteConfigResource:
    routes = tuple(Route(prefix=f"/{c}/", cluster=c) for c in clusters[:-1])
    routes += (Route(prefix="", cluster=clusters[-1] if clusters else "c1"),)
    return RouteConfigResource(
        name=name, virtual_hosts=(VirtualHost(name="vh", domains=domains, routes=routes),)
    )


def listener(
    rds: str | None = "rc", inline: RouteConfigResource | None = None, **kw: Any
) -> ListenerResource:
    if inline is not None:
        return ListenerResource(name="svc", route_config=inline, **kw)
    return ListenerResource(name="svc", route_config_name=rds, **kw)


def cluster(name: str, eds: str = "") -> ClusterResource:
    return ClusterResource(name=name, eds_service_name=eds)


def endpoints(name: str, *addresses: str) -> EndpointsResource:
    locality = Locality(
        id=LocalityId(region="r"),
        weight=1,
        priority=0,
        endpoints=tuple(LbEndpoint(addresses=(a,)) for a in addresses or ("10.0.0.1:80",)),
    )
    return EndpointsResource(name=name, priorities=((locality,),))


def attribute(state: ResolverState, key: str) -> Any:
    return dict(state.attributes).get(key)


def config_of(state: ResolverState) -> XdsConfig:
    cfg = attribute(state, "xds.config")
    assert isinstance(cfg, XdsConfig)
    return cfg


def pick_cluster(state: ResolverState, method: str = "/pkg.Svc/M") -> str:
    """The cluster an RPC is routed to; the RPC commits at once."""
    assert state.config_selector is not None
    config = state.config_selector.select(RpcInfo(method=method))
    assert config.on_committed is not None
    config.on_committed()
    return str(config.attributes[CLUSTER_ATTRIBUTE])


def failure_of(state: ResolverState) -> str:
    assert state.config_selector is not None
    with pytest.raises(RpcError) as info:
        state.config_selector.select(RpcInfo(method="/pkg.Svc/M"))
    assert info.value.code() is StatusCode.UNAVAILABLE
    return info.value.details() or ""


def serve_all(client: FakeXdsClient, *clusters: str) -> None:
    """LDS -> RDS -> the clusters -> their endpoints."""
    client.resource("LDS", "svc", listener())
    client.resource("RDS", "rc", route_config("rc", *clusters))
    for c in clusters:
        client.resource("CDS", c, cluster(c))
        client.resource("EDS", c, endpoints(c))


# --- tests ------------------------------------------------------------------------------


def test_watches_the_chain_and_publishes_once_complete() -> None:
    resolver, client, channel = make(
        options={"grpc_lite.xds_resource_timeout_s": 0.3, "grpc_lite.xds_failover_timeout_s": 0.2}
    )
    assert client.acquire_args["resource_timeout"] == 0.3
    assert client.acquire_args["clock"] is channel.clock
    assert client.watched("LDS") == {"svc"}
    client.resource("LDS", "svc", listener())
    assert client.watched("RDS") == {"rc"}
    client.resource("RDS", "rc", route_config("rc", "c1"))
    assert client.watched("CDS") == {"c1"}
    client.resource("CDS", "c1", cluster("c1", eds="c1-eds"))
    assert client.watched("EDS") == {"c1-eds"}
    assert channel.states == []  # nothing until the endpoints are in
    client.resource("EDS", "c1-eds", endpoints("c1-eds"))
    assert len(channel.states) == 1
    state = channel.last
    cfg = config_of(state)
    assert cfg.listener.name == "svc" and cfg.route_config.name == "rc"
    assert cfg.virtual_host.name == "vh"
    entry = cfg.clusters["c1"]
    assert isinstance(entry, ClusterConfig) and entry.endpoints is not None
    assert entry.endpoints.name == "c1-eds"
    assert attribute(state, "xds.client") is client
    assert attribute(state, "xds.failover_timeout") == 0.2
    assert json.loads(state.service_config or "") == {
        "loadBalancingConfig": [
            {
                "xds_cluster_manager_experimental": {
                    "children": {
                        "cluster:c1": {"childPolicy": [{"cds_experimental": {"cluster": "c1"}}]}
                    }
                }
            }
        ]
    }
    assert pick_cluster(state) == "cluster:c1"
    assert resolver.debug_info()["status"] == "ok"


def test_listener_name_from_the_bootstrap_template() -> None:
    _, client, _ = make(bootstrap=lambda options: FakeBootstrap("listeners/%s"))
    assert client.watched("LDS") == {"listeners/svc"}


def test_inline_route_config_needs_no_rds() -> None:
    resolver, client, channel = make()
    client.resource("LDS", "svc", listener(inline=route_config("inline", "c1")))
    assert client.watched("RDS") == set()
    client.resource("CDS", "c1", cluster("c1"))
    client.resource("EDS", "c1", endpoints("c1"))
    assert config_of(channel.last).route_config.name == "inline"
    assert resolver.debug_info()["route_config"] == {"inline": True}


def test_no_tear_when_cds_arrives_before_eds() -> None:
    _, client, channel = make()
    serve_all(client, "c1")
    assert len(channel.states) == 1
    # The route moves to c2: nothing is published until c2's CDS and EDS are both in.
    client.resource("RDS", "rc", route_config("rc", "c2"))
    assert client.watched("CDS") == {"c2"}
    client.resource("CDS", "c2", cluster("c2"))
    assert client.watched("EDS") == {"c2"}
    assert len(channel.states) == 1
    assert pick_cluster(channel.last) == "cluster:c1"  # the old config stays in force
    client.resource("EDS", "c2", endpoints("c2"))
    assert len(channel.states) == 2
    assert set(config_of(channel.last).clusters) == {"c2"}
    assert pick_cluster(channel.last) == "cluster:c2"


def test_unwatches_what_the_new_route_config_no_longer_names() -> None:
    _, client, channel = make()
    serve_all(client, "c1", "c2")
    assert set(config_of(channel.last).clusters) == {"c1", "c2"}
    assert pick_cluster(channel.last, "/c1/M") == "cluster:c1"
    assert pick_cluster(channel.last, "/other/M") == "cluster:c2"
    client.resource("RDS", "rc", route_config("rc", "c2"))
    assert client.watched("CDS") == {"c2"}
    assert client.watched("EDS") == {"c2"}
    assert set(config_of(channel.last).clusters) == {"c2"}
    # A new RDS name: the old route configuration's watch goes too.
    client.resource("LDS", "svc", listener("rc2"))
    assert client.watched("RDS") == {"rc2"}
    client.resource("RDS", "rc2", route_config("rc2", "c3"))
    assert client.watched("CDS") == {"c3"}
    client.resource("CDS", "c3", cluster("c3"))
    client.resource("EDS", "c3", endpoints("c3"))
    assert set(config_of(channel.last).clusters) == {"c3"}
    assert client.watched("EDS") == {"c3"}


def test_cluster_changing_its_eds_name_waits_for_the_new_endpoints() -> None:
    _, client, channel = make()
    serve_all(client, "c1")
    client.resource("CDS", "c1", cluster("c1", eds="new"))
    assert client.watched("EDS") == {"new"}
    assert len(channel.states) == 1
    client.resource("EDS", "new", endpoints("new", "10.0.0.9:80"))
    entry = config_of(channel.last).clusters["c1"]
    assert isinstance(entry, ClusterConfig) and entry.endpoints is not None
    assert entry.endpoints.name == "new"


def test_two_clusters_share_one_eds_watch() -> None:
    _, client, channel = make()
    client.resource("LDS", "svc", listener())
    client.resource("RDS", "rc", route_config("rc", "c1", "c2"))
    client.resource("CDS", "c1", cluster("c1", eds="shared"))
    client.resource("CDS", "c2", cluster("c2", eds="shared"))
    assert len(client.watchers[("EDS", "shared")]) == 1
    client.resource("EDS", "shared", endpoints("shared"))
    assert set(config_of(channel.last).clusters) == {"c1", "c2"}


def test_missing_cluster_and_endpoints_are_per_cluster_errors() -> None:
    _, client, channel = make()
    client.resource("LDS", "svc", listener())
    client.resource("RDS", "rc", route_config("rc", "c1", "c2", "c3"))
    client.does_not_exist("CDS", "c1")
    client.resource("CDS", "c2", cluster("c2"))
    client.does_not_exist("EDS", "c2")
    client.resource("CDS", "c3", cluster("c3"))
    assert channel.states == []
    client.error("EDS", "c3", "connection refused")
    clusters = config_of(channel.last).clusters
    assert clusters["c1"] == "xDS cluster resource 'c1' does not exist"
    c2 = clusters["c2"]
    assert (
        isinstance(c2, ClusterConfig) and c2.error == "xDS endpoints resource 'c2' does not exist"
    )
    c3 = clusters["c3"]
    assert (
        isinstance(c3, ClusterConfig)
        and c3.error == "xDS endpoints resource 'c3': connection refused"
    )
    assert client.watched("EDS") == {"c2", "c3"}  # still watched: they may appear


@pytest.mark.parametrize(
    ("kind", "event", "message"),
    [
        ("LDS", "does_not_exist", "xDS listener resource 'svc' does not exist"),
        ("LDS", "error", "xDS listener resource 'svc': unreachable: connection refused"),
        ("RDS", "does_not_exist", "xDS route configuration resource 'rc' does not exist"),
        ("RDS", "error", "xDS route configuration resource 'rc': unreachable: connection refused"),
    ],
)
def test_listener_or_route_failure_without_config_fails_rpcs(
    kind: str, event: str, message: str
) -> None:
    _, client, channel = make()
    if kind == "RDS":
        client.resource("LDS", "svc", listener())
    name = "svc" if kind == "LDS" else "rc"
    if event == "does_not_exist":
        client.does_not_exist(kind, name)
    else:
        client.error(kind, name, "unreachable: connection refused")
    state = channel.last
    assert failure_of(state) == message
    assert attribute(state, "xds.config") is None
    assert json.loads(state.service_config or "")["loadBalancingConfig"] == [
        {"xds_cluster_manager_experimental": {"children": {}}}
    ]


def test_missing_target_names_the_listener() -> None:
    _, client, channel = make("xds:///missing")
    client.does_not_exist("LDS", "missing")
    assert failure_of(channel.last) == "xDS listener resource 'missing' does not exist"


def test_ambient_errors_keep_the_config() -> None:
    resolver, client, channel = make()
    serve_all(client, "c1")
    for kind, name in (("LDS", "svc"), ("RDS", "rc"), ("CDS", "c1"), ("EDS", "c1")):
        client.error(kind, name, "stream lost")
    assert len(channel.states) == 1
    assert pick_cluster(channel.last) == "cluster:c1"
    info = resolver.debug_info()
    assert info["status"] == "ok"
    assert info["listener"] == {"name": "svc", "status": "received", "error": "stream lost"}


def test_listener_deleted_after_a_good_config_fails_rpcs_and_recovers() -> None:
    _, client, channel = make()
    serve_all(client, "c1")
    client.does_not_exist("LDS", "svc")
    assert failure_of(channel.last) == "xDS listener resource 'svc' does not exist"
    assert client.watched("RDS") == set() and client.watched("CDS") == set()
    # The same failure again publishes nothing new.
    client.does_not_exist("LDS", "svc")
    assert len(channel.states) == 2
    serve_all(client, "c1")
    assert pick_cluster(channel.last) == "cluster:c1"


def test_no_matching_virtual_host_fails_rpcs() -> None:
    _, client, channel = make()
    client.resource("LDS", "svc", listener())
    client.resource("RDS", "rc", route_config("rc", "c1", domains=("other.example",)))
    assert failure_of(channel.last) == (
        "xDS: no virtual host in route configuration 'rc' matches the authority 'svc'"
    )
    assert client.watched("CDS") == set()


def test_bootstrap_error_is_a_resolver_error_and_retried_on_resolve_now() -> None:
    calls: list[int] = []

    def load(options: Mapping[str, Any]) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("no xDS bootstrap: set GRPC_XDS_BOOTSTRAP")
        return FakeBootstrap()

    resolver, client, channel = make(bootstrap=load)
    assert [str(e) for e in channel.errors] == ["no xDS bootstrap: set GRPC_XDS_BOOTSTRAP"]
    assert client.watchers == {}
    assert "GRPC_XDS_BOOTSTRAP" in resolver.debug_info()["status"]
    resolver.resolve_now()
    assert client.watched("LDS") == {"svc"}
    resolver.resolve_now()  # once watching, nothing to redo
    assert len(calls) == 2
    resolver.close()
    assert client.released == 1


async def test_close_cancels_every_watch_and_releases_the_client_once() -> None:
    resolver, client, channel = make()
    serve_all(client, "c1", "c2")
    watchers = [w for ws in client.watchers.values() for w in ws]
    resolver.close()
    resolver.close()
    assert client.watchers == {}
    assert client.released == 1
    await resolver.wait_closed()
    assert client.waited == 1
    # A callback the client had already queued does nothing after close.
    count = len(channel.states)
    watchers[0].on_resource(LDS, "svc", listener("elsewhere"))
    assert len(channel.states) == count


def test_events_for_cancelled_watches_are_ignored() -> None:
    _, client, channel = make()
    serve_all(client, "c1")
    old = client.watchers[("CDS", "c1")][0]
    client.resource("RDS", "rc", route_config("rc", "c2"))
    old.on_does_not_exist(CDS, "c1")  # raced with the cancel
    client.resource("CDS", "c2", cluster("c2"))
    client.resource("EDS", "c2", endpoints("c2"))
    assert set(config_of(channel.last).clusters) == {"c2"}


def test_same_config_is_not_published_twice() -> None:
    _, client, channel = make()
    serve_all(client, "c1")
    client.resource("EDS", "c1", endpoints("c1"))  # an identical resend
    assert len(channel.states) == 1
    client.resource("EDS", "c1", endpoints("c1", "10.0.0.2:80"))
    assert len(channel.states) == 2


def test_debug_info() -> None:
    resolver, client, _ = make()
    info = resolver.debug_info()
    assert info["status"] == "waiting for resources"
    assert info["listener"] == {"name": "svc", "status": "waiting"}
    serve_all(client, "c1")
    client.resource("CDS", "c1", cluster("c1", eds="e2"))
    info = resolver.debug_info()
    assert info["xds_client"] == {"server": "fake"}
    assert info["route_config"] == {"name": "rc", "status": "received"}
    assert info["virtual_host"] == "vh"
    assert info["clusters"] == {
        "c1": {"name": "c1", "status": "received", "endpoints": {"name": "e2", "status": "waiting"}}
    }
    json.dumps(info)  # JSON-serialisable as it is


def test_timer_driven_callbacks_run_on_the_serializer() -> None:
    # The watcher callbacks hop through call_later(0): they run on the channel's serializer,
    # after the callback running there now.
    _, client, channel = make()
    order: list[str] = []

    def outer() -> None:
        client.resource("LDS", "svc", listener())
        order.append("outer done")
        assert client.watched("RDS") == set()  # not yet: queued behind this callback

    channel.serializer.schedule(outer)
    order.append("after")
    assert order == ["outer done", "after"]
    assert client.watched("RDS") == {"rc"}


def test_server_uri_rejected_by_the_first_watch_is_a_resolver_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bootstrap whose server_uri no channel accepts fails when the client starts its ADS
    # channel, at the first watch.
    def watch(self: FakeXdsClient, rtype: FakeType, name: str, watcher: Any) -> Callable[[], None]:
        raise ValueError("invalid target 'bad uri': invalid host")

    monkeypatch.setattr(FakeXdsClient, "watch", watch)
    resolver, client, channel = make()
    assert [str(e) for e in channel.errors] == ["invalid target 'bad uri': invalid host"]
    assert client.released == 1
    assert (
        resolver.debug_info()["status"] == "xDS bootstrap: invalid target 'bad uri': invalid host"
    )
    resolver.close()
    assert client.released == 1


def test_a_cluster_stays_while_rpcs_routed_to_it_have_not_committed() -> None:
    # A31 cluster refcounting: an RPC that chose c1 under the old routes still finds c1 in the
    # LB config when it picks; c1 goes when the last such RPC commits.
    _, client, channel = make()
    serve_all(client, "c1")
    old = channel.last
    assert old.config_selector is not None
    first = old.config_selector.select(RpcInfo(method="/pkg.Svc/M"))
    second = old.config_selector.select(RpcInfo(method="/pkg.Svc/M"))
    client.resource("RDS", "rc", route_config("rc", "c2"))
    client.resource("CDS", "c2", cluster("c2"))
    client.resource("EDS", "c2", endpoints("c2"))
    assert set(config_of(channel.last).clusters) == {"c2", "c1"}
    assert client.watched("CDS") == {"c1", "c2"}
    assert (
        "cluster:c1"
        in json.loads(channel.last.service_config or "")["loadBalancingConfig"][0][
            "xds_cluster_manager_experimental"
        ]["children"]
    )
    assert pick_cluster(channel.last) == "cluster:c2"  # new RPCs go to c2
    assert first.on_committed is not None and second.on_committed is not None
    first.on_committed()
    assert set(config_of(channel.last).clusters) == {"c2", "c1"}
    states = len(channel.states)
    second.on_committed()
    assert len(channel.states) == states + 1
    assert set(config_of(channel.last).clusters) == {"c2"}
    assert client.watched("CDS") == {"c2"} and client.watched("EDS") == {"c2"}


def test_a_referenced_cluster_that_comes_back_in_the_routes_stays() -> None:
    _, client, channel = make()
    serve_all(client, "c1")
    held = channel.last.config_selector.select(RpcInfo(method="/a/b"))  # type: ignore[union-attr]
    client.resource("RDS", "rc", route_config("rc", "c1", "c2"))
    client.resource("CDS", "c2", cluster("c2"))
    client.resource("EDS", "c2", endpoints("c2"))
    assert held.on_committed is not None
    states = len(channel.states)
    held.on_committed()  # c1 is routed again: nothing to drop
    assert len(channel.states) == states
    assert set(config_of(channel.last).clusters) == {"c1", "c2"}

"""Shared pieces of the xDS LB policy tests: XdsConfig builders and a subchannel driver."""

from __future__ import annotations

from collections.abc import Sequence

from grpc_lite._connectivity import ConnectivityState
from grpc_lite.balancer import PickInfo
from grpc_lite.xds._balancers import register_xds_policies
from grpc_lite.xds._model import (
    ClusterConfig,
    ClusterResource,
    DropOverload,
    EndpointsResource,
    HealthStatus,
    LbEndpoint,
    ListenerResource,
    Locality,
    LocalityId,
    Route,
    RouteConfigResource,
    VirtualHost,
    XdsConfig,
)
from tests.fakes.balancer_channel import FakeBalancerChannel, FakeSubchannel

register_xds_policies()

S = ConnectivityState
IDLE, CONNECTING, READY, TF = S.IDLE, S.CONNECTING, S.READY, S.TRANSIENT_FAILURE


def locality(
    zone: str,
    *addrs: str,
    priority: int = 0,
    weight: int = 1,
    unhealthy: Sequence[str] = (),
) -> Locality:
    """A locality in region "r" with one endpoint per address (those in `unhealthy` are
    UNHEALTHY, the rest HEALTHY)."""
    endpoints = tuple(
        LbEndpoint(
            addresses=(a,),
            health=HealthStatus.UNHEALTHY if a in unhealthy else HealthStatus.HEALTHY,
        )
        for a in addrs
    )
    return Locality(
        id=LocalityId(region="r", zone=zone),
        weight=weight,
        priority=priority,
        endpoints=endpoints,
    )


def cluster_config(
    name: str,
    *localities: Locality,
    drops: Sequence[tuple[str, int]] = (),
    max_requests: int = 1024,
    eds_service_name: str = "",
) -> ClusterConfig:
    by_priority: dict[int, list[Locality]] = {}
    for loc in localities:
        by_priority.setdefault(loc.priority, []).append(loc)
    priorities = tuple(tuple(by_priority[p]) for p in sorted(by_priority))
    return ClusterConfig(
        cluster=ClusterResource(
            name=name, eds_service_name=eds_service_name, max_requests=max_requests
        ),
        endpoints=EndpointsResource(
            name=eds_service_name or name,
            priorities=priorities,
            drop_overloads=tuple(
                DropOverload(category=c, parts_per_million=ppm) for c, ppm in drops
            ),
        ),
    )


def xds_config(clusters: dict[str, ClusterConfig | str]) -> XdsConfig:
    route = Route(prefix="/", cluster=next(iter(clusters), None))
    vhost = VirtualHost(name="vh", domains=("*",), routes=(route,))
    rc = RouteConfigResource(name="rc", virtual_hosts=(vhost,))
    return XdsConfig(
        listener=ListenerResource(name="svc", route_config=rc),
        route_config=rc,
        virtual_host=vhost,
        clusters=clusters,
    )


def pick_info(cluster: str | None = None) -> PickInfo:
    attributes = {} if cluster is None else {"xds.cluster": cluster}
    return PickInfo(method="/pkg.Service/Method", attributes=attributes)


def ready(*scs: FakeSubchannel) -> None:
    for sc in scs:
        if sc.state is not CONNECTING:
            sc.set_state(CONNECTING)
        sc.set_state(READY)


def fail(*scs: FakeSubchannel, error: str = "connection refused") -> None:
    for sc in scs:
        if sc.state is not CONNECTING:
            sc.set_state(CONNECTING)
        sc.set_state(TF, error)


def picked(ch: FakeBalancerChannel, info: PickInfo | None = None) -> str:
    """The address the channel's current picker picks."""
    picker = ch.picker
    return picker.pick(info or pick_info()).subchannel.addresses[0].addr

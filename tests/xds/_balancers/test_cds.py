"""cds_experimental (gRFC A74 shape; grpc-go internal/xds/balancer/cdsbalancer): the error
picker, the priority config it generates, A56 child names and endpoint health filtering."""

from __future__ import annotations

from typing import Any

import pytest

from grpc_lite.balancer import ChannelState
from grpc_lite.resolver import ResolverState
from grpc_lite.status import RpcError, StatusCode
from grpc_lite.xds._balancers.cds import (
    CdsBalancer,
    CdsBuilder,
    ChildNamer,
    build_priority_config,
)
from grpc_lite.xds._model import (
    ClusterConfig,
    ClusterResource,
    EndpointsResource,
    HealthStatus,
    LbEndpoint,
    Locality,
    LocalityId,
    XdsConfig,
)
from tests.fakes.balancer_channel import FakeBalancerChannel
from tests.xds._balancers._helpers import (
    CONNECTING,
    TF,
    cluster_config,
    locality,
    ready,
    xds_config,
)

L = LocalityId


class Harness:
    def __init__(self) -> None:
        self.ch = FakeBalancerChannel()
        self.b: CdsBalancer = CdsBuilder().build(self.ch)

    def update(self, config: XdsConfig | None, cluster: str = "c1", **attrs: Any) -> None:
        attributes: tuple[tuple[str, Any], ...] = tuple(attrs.items())
        if config is not None:
            attributes = (("xds.config", config), *attributes)
        state = ChannelState(
            resolver_state=ResolverState(attributes=attributes),
            config=CdsBuilder().parse_config({"cluster": cluster}),
        )
        assert self.ch.call(lambda: self.b.update_channel_state(state))

    def priority_config(self) -> dict[str, Any]:
        """The config of the priority child, as its debug_info shows it."""
        config: dict[str, Any] = self.b.debug_info()["child"]["balancer"]["config"]
        return config

    def picked(self) -> str:
        """One RPC's address (finished at once: circuit breakers count per cluster, A32)."""
        result = self.ch.pick()
        assert result.on_done is not None
        result.on_done(StatusCode.OK)
        return result.subchannel.addresses[0].addr

    def error(self) -> str:
        assert self.ch.state is TF
        with pytest.raises(RpcError) as info:
            self.ch.pick()
        assert info.value.code() is StatusCode.UNAVAILABLE
        return info.value.details() or ""


def test_parse_config() -> None:
    assert CdsBuilder().parse_config({"cluster": "x"}).cluster == "x"
    with pytest.raises(ValueError, match=r"cds_experimental\.cluster: required"):
        CdsBuilder().parse_config({})
    with pytest.raises(ValueError, match=r"cds_experimental\.cluster: must be a string"):
        CdsBuilder().parse_config({"cluster": 3})


def test_cluster_errors_give_an_error_picker() -> None:
    h = Harness()
    h.update(xds_config({"c1": "CDS resource 'c1' does not exist"}))
    assert h.error() == "CDS resource 'c1' does not exist"
    resource = ClusterResource(name="c1")
    h.update(xds_config({"c1": ClusterConfig(cluster=resource, error="EDS resource 'c1' gone")}))
    assert h.error() == "EDS resource 'c1' gone"
    h.update(xds_config({"other": "x"}))
    assert "cluster 'c1' is not in the xDS config" in h.error()
    h.update(None)
    assert "no xDS config" in h.error()
    assert h.b.debug_info()["error"] == "cluster 'c1': no xDS config in the resolver state"


def test_recovers_from_an_error_and_closes_the_tree_on_one() -> None:
    h = Harness()
    h.update(xds_config({"c1": "CDS resource 'c1' does not exist"}))
    h.update(xds_config({"c1": cluster_config("c1", locality("z1", "10.0.0.1:1"))}))
    assert [sc.addr for sc in h.ch.subchannels] == ["10.0.0.1:1"]
    ready(*h.ch.subchannels)
    assert h.picked() == "10.0.0.1:1"
    h.update(xds_config({"c1": "CDS resource 'c1' does not exist"}))
    assert h.ch.live() == []
    assert h.error() == "CDS resource 'c1' does not exist"


def test_priority_config_for_two_priorities_of_two_localities() -> None:
    cluster = cluster_config(
        "c1",
        locality("z1", "10.0.0.1:1", weight=1),
        locality("z2", "10.0.0.2:1", weight=3),
        locality("z3", "10.0.1.1:1", priority=1, weight=2),
        locality("z4", "10.0.1.2:1", priority=1, weight=2),
        drops=[("lb", 1000)],
        max_requests=77,
        eds_service_name="eds-c1",
    )
    config, endpoints = build_priority_config(cluster, ChildNamer(), 2.5)
    z = {n: str(L(region="r", zone=n)) for n in ("z1", "z2", "z3", "z4")}

    def child(targets: dict[str, int]) -> dict[str, Any]:
        return {
            "config": [
                {
                    "xds_cluster_impl_experimental": {
                        "cluster": "c1",
                        "edsServiceName": "eds-c1",
                        "maxConcurrentRequests": 77,
                        "dropCategories": [{"category": "lb", "requestsPerMillion": 1000}],
                        "childPolicy": [
                            {
                                "weighted_target_experimental": {
                                    "targets": {
                                        name: {"weight": w, "childPolicy": [{"round_robin": {}}]}
                                        for name, w in targets.items()
                                    }
                                }
                            }
                        ],
                    }
                }
            ],
            "ignoreReresolutionRequests": True,
        }

    assert config == {
        "children": {
            "priority-0-0": child({z["z1"]: 1, z["z2"]: 3}),
            "priority-1-1": child({z["z3"]: 2, z["z4"]: 2}),
        },
        "priorities": ["priority-0-0", "priority-1-1"],
        "failoverTimeout": "2.5s",
    }
    assert z["z1"] == "{region='r', zone='z1', sub_zone=''}"
    first = endpoints[0]
    assert [a.addr for a in first.addresses] == ["10.0.0.1:1"]
    assert dict(first.attributes) == {
        "xds.path": ("priority-0-0", z["z1"]),
        "xds.locality": L(region="r", zone="z1"),
        "xds.priority": 0,
        "xds.locality_weight": 1,
        "xds.cluster": "c1",
    }
    assert dict(first.addresses[0].attributes)["xds.locality"] == L(region="r", zone="z1")
    assert [dict(e.attributes)["xds.path"][0] for e in endpoints] == [
        "priority-0-0",
        "priority-0-0",
        "priority-1-1",
        "priority-1-1",
    ]
    assert [dict(e.attributes)["xds.priority"] for e in endpoints] == [0, 0, 1, 1]


def test_only_healthy_and_unknown_endpoints_are_used() -> None:
    loc = Locality(
        id=L(zone="z"),
        weight=1,
        priority=0,
        endpoints=tuple(
            LbEndpoint(addresses=(f"10.0.0.{h.value}:1",), health=h) for h in HealthStatus
        ),
    )
    cluster = ClusterConfig(
        cluster=ClusterResource(name="c1"),
        endpoints=EndpointsResource(name="c1", priorities=((loc,),)),
    )
    _, endpoints = build_priority_config(cluster, ChildNamer(), 10)
    assert [e.addresses[0].addr for e in endpoints] == ["10.0.0.0:1", "10.0.0.1:1"]


def test_a_priority_without_usable_endpoints_is_still_a_child() -> None:
    cluster = cluster_config(
        "c1",
        locality("z1", "10.0.0.1:1", unhealthy=["10.0.0.1:1"]),
        locality("z2", "10.0.1.1:1", priority=1),
    )
    config, endpoints = build_priority_config(cluster, ChildNamer(), 10)
    assert config["priorities"] == ["priority-0-0", "priority-1-1"]
    assert [e.addresses[0].addr for e in endpoints] == ["10.0.1.1:1"]


def test_p0_without_usable_endpoints_fails_over_to_p1() -> None:
    h = Harness()
    cluster = cluster_config(
        "c1",
        locality("z1", "10.0.0.1:1", unhealthy=["10.0.0.1:1"]),
        locality("z2", "10.0.1.1:1", priority=1),
    )
    h.update(xds_config({"c1": cluster}))
    assert [sc.addr for sc in h.ch.subchannels] == ["10.0.1.1:1"]
    ready(*h.ch.subchannels)
    assert h.picked() == "10.0.1.1:1"


def test_no_localities_is_one_failing_priority() -> None:
    """A37: an EDS resource without localities is a single priority with no endpoints."""
    h = Harness()
    empty = ClusterConfig(
        cluster=ClusterResource(name="c1"), endpoints=EndpointsResource(name="c1", priorities=())
    )
    config, endpoints = build_priority_config(empty, ChildNamer(), 10)
    assert config["priorities"] == ["priority-0-0"] and endpoints == ()
    h.update(xds_config({"c1": empty}))
    assert "no targets" in h.error()


def _names(namer: ChildNamer, *priorities: str) -> list[str]:
    """Each priority a string of one-letter locality zones."""
    return namer.names([[L(zone=z) for z in p] for p in priorities])


def test_child_names_follow_localities_across_updates() -> None:
    """The sequence of gRFC A115's Background section."""
    namer = ChildNamer()
    assert _names(namer, "AB", "CD") == ["priority-0-0", "priority-1-1"]
    assert _names(namer, "AB", "CD") == ["priority-0-0", "priority-1-1"]
    assert _names(namer, "C", "DE") == ["priority-1-1", "priority-1-2"]
    assert _names(namer, "AB", "CD") == ["priority-0-3", "priority-1-1"]


def test_child_names_merge_split_and_add() -> None:
    namer = ChildNamer()
    assert _names(namer, "A", "B", "C") == ["priority-0-0", "priority-1-1", "priority-2-2"]
    assert _names(namer, "AB", "C") == ["priority-0-0", "priority-2-2"]  # merged
    assert _names(namer, "A", "D") == ["priority-0-0", "priority-1-3"]  # split, added


def test_names_are_stable_through_the_balancer_and_the_failover_timeout_is_passed() -> None:
    h = Harness()
    one = cluster_config("c1", locality("a", "10.0.0.1:1"), locality("b", "10.0.1.1:1", priority=1))
    h.update(xds_config({"c1": one}), **{"xds.failover_timeout": 0.25})
    first = h.priority_config()
    assert first["priorities"] == ["priority-0-0", "priority-1-1"]
    assert first["failoverTimeout"] == "0.25s"
    subchannel = h.ch.subchannel("10.0.0.1:1")
    # P0's locality moves to P1 and a new one becomes P0: the child follows its locality.
    two = cluster_config("c1", locality("n", "10.0.2.1:1"), locality("a", "10.0.0.1:1", priority=1))
    h.update(xds_config({"c1": two}))
    assert h.priority_config()["priorities"] == ["priority-0-2", "priority-0-0"]
    assert h.priority_config()["failoverTimeout"] == "10s"  # attribute gone
    assert not subchannel.is_shutdown  # same child, same connection
    assert h.ch.state is CONNECTING
    info = h.b.debug_info()
    assert info["child"]["policy"] == "priority_experimental"
    assert info["child"]["balancer"]["current"] == "priority-0-2"


def test_a_cluster_asking_for_load_reports_is_served_and_says_it_gets_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A27 LRS is not built yet: a cluster with ``lrs_server: self`` still serves, and the
    missing reports are logged once (WARNING) and shown in debug_info, not dropped silently."""
    h = Harness()
    loc = Locality(
        id=L(zone="z"), weight=1, priority=0, endpoints=(LbEndpoint(addresses=("10.0.0.1:1",)),)
    )
    cluster = ClusterConfig(
        cluster=ClusterResource(name="c1", lrs_server_self=True),
        endpoints=EndpointsResource(name="c1", priorities=((loc,),)),
    )
    config = xds_config({"c1": cluster})
    with caplog.at_level("WARNING", logger="grpc_lite.xds"):
        h.update(config)
        h.update(config)
    warnings = [r for r in caplog.records if "load reporting" in r.getMessage()]
    assert len(warnings) == 1 and "'c1'" in warnings[0].getMessage()
    assert "not supported" in h.b.debug_info()["load_reporting"]

    h.update(xds_config({"c1": cluster_config("c1", locality("z", "10.0.0.1:1"))}))
    assert h.b.debug_info()["load_reporting"] is None

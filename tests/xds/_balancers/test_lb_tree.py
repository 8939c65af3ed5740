"""The whole xDS LB tree, sans-IO: cluster_manager -> cds -> priority -> cluster_impl ->
weighted_target -> round_robin -> pick_first, from the resolver state the xds resolver
publishes (an XdsConfig with 2 priorities x 2 localities), with subchannels driven by the
fake channel; and `register_xds_policies`. The clusters are named for this file: the
circuit breakers' counts are per cluster name in the whole process (A32)."""

from __future__ import annotations

import collections
import random
from collections.abc import Iterator
from typing import Any

import pytest

from grpc_lite import balancer
from grpc_lite.balancer import (
    Balancer,
    ChannelState,
    DroppedRpcError,
    NoSubchannelAvailable,
)
from grpc_lite.resolver import ResolverState
from grpc_lite.status import RpcError, StatusCode
from grpc_lite.xds._balancers import register_xds_policies
from grpc_lite.xds._balancers.cluster_impl import ClusterImplBuilder
from grpc_lite.xds._balancers.priority import DEACTIVATION_TIMEOUT
from grpc_lite.xds._balancers.weighted_target import WeightedTargetBuilder
from grpc_lite.xds._model import XdsConfig
from tests.fakes.balancer_channel import FakeBalancerChannel
from tests.xds._balancers._helpers import (
    CONNECTING,
    READY,
    TF,
    cluster_config,
    fail,
    locality,
    pick_info,
    ready,
    xds_config,
)

A1, A2, B1 = "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"  # P0: z1 (A1, A2) weight 1, z2 (B1) 3
C1, D1 = "10.0.1.1:1", "10.0.1.2:1"  # P1: z3 (C1), z4 (D1)
SERVICE_CONFIG = {
    "xds_cluster_manager_experimental": {
        "children": {
            "cluster:tree1": {"childPolicy": [{"cds_experimental": {"cluster": "tree1"}}]},
            "cluster:tree2": {"childPolicy": [{"cds_experimental": {"cluster": "tree2"}}]},
        }
    }
}


@pytest.fixture(autouse=True)
def seeded() -> Iterator[None]:
    """The registered weighted_target and cluster_impl draw from seeded RNGs."""
    register_xds_policies()
    saved = [balancer.get(n) for n in (WeightedTargetBuilder.name, ClusterImplBuilder.name)]
    balancer.register(WeightedTargetBuilder(rand=random.Random(4000)))
    balancer.register(ClusterImplBuilder(rand=random.Random(17)))
    yield
    for builder in saved:
        assert builder is not None
        balancer.register(builder)


def two_by_two(**kwargs: Any) -> XdsConfig:
    c1 = cluster_config(
        "tree1",
        locality("z1", A1, A2, weight=1),
        locality("z2", B1, weight=3),
        locality("z3", C1, priority=1),
        locality("z4", D1, priority=1),
        **kwargs,
    )
    return xds_config({"tree1": c1, "tree2": "CDS resource 'tree2' does not exist"})


class Tree:
    def __init__(self) -> None:
        self.ch = FakeBalancerChannel()
        builder = balancer.get("xds_cluster_manager_experimental")
        assert builder is not None
        self.config = builder.parse_config(SERVICE_CONFIG["xds_cluster_manager_experimental"])
        self.b: Balancer = builder.build(self.ch)

    def update(self, config: XdsConfig) -> None:
        state = ResolverState(attributes=(("xds.config", config), ("xds.failover_timeout", 10.0)))
        channel_state = ChannelState(resolver_state=state, config=self.config)
        assert self.ch.call(lambda: self.b.update_channel_state(channel_state))

    def shares(self, n: int = 4000) -> collections.Counter[str]:
        """Where `n` RPCs to cluster tree1 go (each finished before the next: the circuit
        breaker's count is shared by every channel of the process, A32)."""
        info = pick_info("cluster:tree1")
        counts: collections.Counter[str] = collections.Counter()
        for _ in range(n):
            result = self.ch.picker.pick(info)
            assert result.on_done is not None
            result.on_done(StatusCode.OK)
            counts[result.subchannel.addresses[0].addr] += 1
        return counts

    def addrs(self) -> list[str]:
        return sorted(sc.addr for sc in self.ch.live())


def test_register_xds_policies_is_idempotent() -> None:
    names = [
        "xds_cluster_manager_experimental",
        "cds_experimental",
        "priority_experimental",
        "xds_cluster_impl_experimental",
        "weighted_target_experimental",
    ]
    before = [balancer.get(n) for n in names]
    register_xds_policies()
    assert [balancer.get(n) for n in names] == before
    assert all(b is not None for b in before)


def test_whole_tree_priorities_localities_and_failover() -> None:
    t = Tree()
    t.update(two_by_two())
    # Only P0 is created: its three endpoints, nothing of P1.
    assert t.addrs() == [A1, A2, B1]
    assert t.ch.state is CONNECTING
    with pytest.raises(NoSubchannelAvailable):
        t.ch.picker.pick(pick_info("cluster:tree1"))
    with pytest.raises(RpcError, match="CDS resource 'tree2' does not exist"):
        t.ch.picker.pick(pick_info("cluster:tree2"))

    ready(*t.ch.live())
    assert t.ch.state is READY
    shares = t.shares()
    z1 = shares[A1] + shares[A2]
    assert abs(z1 / 4000 - 0.25) <= 0.03, shares
    assert abs(shares[B1] / 4000 - 0.75) <= 0.03, shares
    assert abs(shares[A1] - shares[A2]) <= 1  # round robin within the locality

    # One of the two z1 endpoints down: still P0, P1 never created.
    fail(t.ch.subchannel(A1))
    assert set(t.shares(400)) == {A2, B1}
    assert t.addrs() == [A1, A2, B1]

    # All of P0 down: P1 is created and takes over once READY.
    fail(t.ch.subchannel(A2), t.ch.subchannel(B1))
    assert t.addrs() == [A1, A2, B1, C1, D1]
    with pytest.raises(NoSubchannelAvailable):
        t.ch.picker.pick(pick_info("cluster:tree1"))
    ready(t.ch.subchannel(C1), t.ch.subchannel(D1))
    assert set(t.shares(400)) == {C1, D1}

    # P0 back: all traffic returns; P1 is kept for 15 minutes, then closed.
    ready(t.ch.subchannel(B1))
    assert set(t.shares(400)) == {B1}
    t.ch.clock.advance(DEACTIVATION_TIMEOUT - 1)
    assert t.addrs() == [A1, A2, B1, C1, D1]
    t.ch.clock.advance(2)
    assert t.addrs() == [A1, A2, B1]
    assert set(t.shares(400)) == {B1}

    info = t.b.debug_info()  # type: ignore[attr-defined]
    cds = info["children"]["cluster:tree1"]["balancer"]
    priority = cds["child"]["balancer"]
    assert priority["current"] == "priority-0-0"
    impl = priority["children"]["priority-0-0"]["balancer"]
    assert impl["policy"] == "xds_cluster_impl_experimental"
    wt = impl["child"]["balancer"]
    assert set(wt["children"]) == {
        "{region='r', zone='z1', sub_zone=''}",
        "{region='r', zone='z2', sub_zone=''}",
    }
    assert info["children"]["cluster:tree2"]["balancer"]["error"] == (
        "CDS resource 'tree2' does not exist"
    )


def test_failover_timer_through_the_tree() -> None:
    t = Tree()
    t.update(two_by_two())
    for sc in t.ch.live():
        sc.set_state(CONNECTING)
    t.ch.clock.advance(9.9)
    assert t.addrs() == [A1, A2, B1]
    t.ch.clock.advance(0.2)
    assert t.addrs() == [A1, A2, B1, C1, D1]
    ready(t.ch.subchannel(D1))
    assert set(t.shares(100)) == {D1}


def test_drops_and_circuit_breaking_through_the_tree() -> None:
    t = Tree()
    t.update(two_by_two(drops=[("lb", 1_000_000)]))
    ready(*t.ch.live())
    with pytest.raises(DroppedRpcError, match="category lb"):
        t.ch.picker.pick(pick_info("cluster:tree1"))
    t.update(two_by_two(max_requests=1))
    held = t.ch.picker.pick(pick_info("cluster:tree1"))
    with pytest.raises(DroppedRpcError, match="max requests 1 for cluster tree1 reached"):
        t.ch.picker.pick(pick_info("cluster:tree1"))
    assert held.on_done is not None
    held.on_done(StatusCode.OK)
    t.ch.picker.pick(pick_info("cluster:tree1"))


def test_unhealthy_p0_endpoint_is_never_connected() -> None:
    t = Tree()
    c1 = cluster_config(
        "tree1",
        locality("z1", A1, A2, unhealthy=[A1]),
        locality("z3", C1, priority=1),
    )
    t.update(xds_config({"tree1": c1}))
    assert t.addrs() == [A2]
    fail(t.ch.subchannel(A2))
    assert t.ch.state is CONNECTING  # P1 connecting
    fail(t.ch.subchannel(C1))
    assert t.ch.state is TF

"""xds_cluster_manager_experimental (grpc-go xds/internal/balancer/clustermanager; gRFC A28),
sans-IO with scripted children."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpc_lite.balancer import (
    ChannelState,
    NoSubchannelAvailable,
    register,
    unregister_for_testing,
)
from grpc_lite.resolver import Address, ResolverState
from grpc_lite.status import RpcError, StatusCode
from grpc_lite.xds._balancers.cluster_manager import (
    ClusterManagerBalancer,
    ClusterManagerBuilder,
    ClusterManagerConfig,
)
from tests.fakes.balancer_channel import FakeBalancerChannel
from tests.fakes.policies import ScriptedBalancer, ScriptedBuilder
from tests.xds._balancers._helpers import CONNECTING, IDLE, READY, TF, pick_info

CHILD = "scripted_cm_child"


@pytest.fixture(autouse=True)
def scripted() -> Iterator[ScriptedBuilder]:
    builder = ScriptedBuilder(CHILD)
    register(builder)
    yield builder
    unregister_for_testing(CHILD)


def config(*clusters: str) -> ClusterManagerConfig:
    return ClusterManagerBuilder().parse_config(
        {"children": {c: {"childPolicy": [{"unknown_policy": {}}, {CHILD: {}}]} for c in clusters}}
    )


class Harness:
    def __init__(self, scripted: ScriptedBuilder) -> None:
        self.ch = FakeBalancerChannel()
        self.b: ClusterManagerBalancer = ClusterManagerBuilder().build(self.ch)
        self.scripted = scripted
        self.children: dict[str, ScriptedBalancer] = {}

    def update(self, cfg: ClusterManagerConfig) -> None:
        before = len(self.scripted.built)
        state = ChannelState(
            resolver_state=ResolverState((Address("10.0.0.1:1"),), attributes=(("k", "v"),)),
            config=cfg,
        )
        assert self.ch.call(lambda: self.b.update_channel_state(state))
        new = [c for c in cfg.children if c not in self.children]
        for name, built in zip(new, self.scripted.built[before:], strict=True):
            self.children[name] = built

    def publish(self, cluster: str, state: object) -> None:
        child = self.children[cluster]
        self.ch.call(lambda: child.publish(state))  # type: ignore[arg-type]


@pytest.fixture
def h(scripted: ScriptedBuilder) -> Harness:
    return Harness(scripted)


def test_parse_config_uses_the_first_registered_child_policy() -> None:
    cfg = config("cluster:a")
    assert cfg.children["cluster:a"].name == CHILD
    with pytest.raises(ValueError, match=r"children\['x'\]\.childPolicy: no supported"):
        ClusterManagerBuilder().parse_config({"children": {"x": {"childPolicy": [{"nope": {}}]}}})
    with pytest.raises(ValueError, match=r"children\['x'\]: unknown field\(s\) 'policy'"):
        ClusterManagerBuilder().parse_config(
            {"children": {"x": {"childPolicy": [{CHILD: {}}], "policy": []}}}
        )


def test_picks_dispatch_on_the_cluster_attribute(h: Harness) -> None:
    h.update(config("cluster:a", "cluster:b"))
    assert h.ch.state is CONNECTING
    h.publish("cluster:a", READY)
    h.publish("cluster:b", READY)
    a = h.ch.picker.pick(pick_info("cluster:a"))
    b = h.ch.picker.pick(pick_info("cluster:b"))
    assert a.subchannel is h.children["cluster:a"].subchannels[0]
    assert b.subchannel is h.children["cluster:b"].subchannels[0]
    assert a.subchannel is not b.subchannel


def test_a_connecting_cluster_queues_while_another_is_ready(h: Harness) -> None:
    h.update(config("cluster:a", "cluster:b"))
    h.publish("cluster:a", READY)
    assert h.ch.state is READY
    with pytest.raises(NoSubchannelAvailable):
        h.ch.picker.pick(pick_info("cluster:b"))
    h.publish("cluster:b", TF)
    with pytest.raises(RpcError, match="failing"):
        h.ch.picker.pick(pick_info("cluster:b"))


def test_unknown_or_missing_cluster_fails_unavailable_naming_it(h: Harness) -> None:
    h.update(config("cluster:a"))
    h.publish("cluster:a", READY)
    with pytest.raises(RpcError) as info:
        h.ch.picker.pick(pick_info("cluster:zzz"))
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert "unknown cluster selected for RPC: 'cluster:zzz'" in (info.value.details() or "")
    with pytest.raises(RpcError) as info:
        h.ch.picker.pick(pick_info())
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert "'xds.cluster'" in (info.value.details() or "")


def test_aggregate_state(h: Harness) -> None:
    h.update(config("cluster:a", "cluster:b"))
    h.publish("cluster:a", TF)
    assert h.ch.state is CONNECTING  # b has not reported yet
    h.publish("cluster:b", IDLE)
    assert h.ch.state is IDLE
    h.publish("cluster:b", TF)
    assert h.ch.state is TF
    h.publish("cluster:a", CONNECTING)  # TF sticks through CONNECTING
    assert h.ch.state is TF
    h.publish("cluster:b", READY)
    assert h.ch.state is READY


def test_children_no_longer_in_the_config_are_closed(h: Harness) -> None:
    h.update(config("cluster:a", "cluster:b"))
    h.publish("cluster:a", READY)
    h.publish("cluster:b", READY)
    b = h.children["cluster:b"]
    h.update(config("cluster:a"))
    assert b.closed
    with pytest.raises(RpcError, match="unknown cluster"):
        h.ch.picker.pick(pick_info("cluster:b"))
    assert (
        h.ch.picker.pick(pick_info("cluster:a")).subchannel
        is h.children["cluster:a"].subchannels[0]
    )
    info = h.b.debug_info()
    assert list(info["children"]) == ["cluster:a"]
    assert info["children"]["cluster:a"] == {"policy": CHILD, "state": "READY"}
    assert info["config"] == {"children": {"cluster:a": {"childPolicy": CHILD}}}
    full = config("cluster:a").to_json()
    assert full["children"]["cluster:a"]["childPolicy"] == [{"unknown_policy": {}}, {CHILD: {}}]


def test_children_see_the_channels_resolver_state(h: Harness) -> None:
    h.update(config("cluster:a"))
    child = h.children["cluster:a"]
    assert child.calls == ["update"]
    h.ch.call(lambda: h.b.resolver_error(RpcError(StatusCode.UNAVAILABLE, "boom")))
    assert child.calls[-1] == "resolver_error boom"
    h.ch.call(h.b.exit_idle)
    assert child.calls[-1] == "exit_idle"
    h.ch.call(h.b.close)
    assert child.closed

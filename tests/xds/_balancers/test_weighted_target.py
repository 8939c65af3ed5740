"""weighted_target_experimental (grpc-go balancer/weightedtarget; gRFC A28), sans-IO."""

from __future__ import annotations

import collections
import random

import pytest

from grpc_lite.balancer import ChannelState, NoSubchannelAvailable, QueuePicker
from grpc_lite.resolver import Address, Endpoint, ResolverState
from grpc_lite.status import RpcError, StatusCode
from grpc_lite.xds._balancers.weighted_target import (
    WeightedTargetBalancer,
    WeightedTargetBuilder,
    WeightedTargetConfig,
)
from tests.fakes.balancer_channel import FakeBalancerChannel
from tests.xds._balancers._helpers import CONNECTING, READY, TF, fail, picked, ready

A, B, C = "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"


def endpoint(addr: str, *path: str) -> Endpoint:
    return Endpoint((Address(addr),), attributes=(("xds.path", tuple(path)), ("other", 1)))


def config(**weights: int) -> WeightedTargetConfig:
    return WeightedTargetBuilder().parse_config(
        {
            "targets": {
                name: {"weight": w, "childPolicy": [{"round_robin": {}}]}
                for name, w in weights.items()
            }
        }
    )


class Harness:
    def __init__(self, seed: int = 7) -> None:
        self.ch = FakeBalancerChannel()
        self.b: WeightedTargetBalancer = WeightedTargetBuilder(rand=random.Random(seed)).build(
            self.ch
        )

    def update(self, cfg: WeightedTargetConfig, *endpoints: Endpoint) -> bool:
        state = ChannelState(resolver_state=ResolverState(endpoints=endpoints), config=cfg)
        return self.ch.call(lambda: self.b.update_channel_state(state))


def test_parse_config_errors_name_the_field() -> None:
    builder = WeightedTargetBuilder()
    with pytest.raises(ValueError, match=r"targets\['a'\]\.weight: must be >= 1"):
        builder.parse_config(
            {"targets": {"a": {"weight": 0, "childPolicy": [{"round_robin": {}}]}}}
        )
    with pytest.raises(ValueError, match=r"targets\['a'\]\.childPolicy: no supported"):
        builder.parse_config({"targets": {"a": {"weight": 1, "childPolicy": [{"nope": {}}]}}})
    with pytest.raises(ValueError, match=r"unknown field\(s\) 'extra'"):
        builder.parse_config({"targets": {}, "extra": 1})
    with pytest.raises(ValueError, match=r"targets: required"):
        builder.parse_config({})


def test_children_get_their_endpoints_with_the_path_head_removed() -> None:
    h = Harness()
    h.update(config(x=1, y=1), endpoint(A, "x"), endpoint(B, "y"), endpoint(C, "x"))
    assert sorted(sc.addr for sc in h.ch.subchannels) == [A, B, C]
    info = h.b.debug_info()
    assert set(info["children"]) == {"x", "y"}
    assert info["children"]["x"]["policy"] == "round_robin"


def test_weights_1_to_3_give_25_75_percent() -> None:
    """4000 picks with a seeded RNG: 25 % +- 3 / 75 % +- 3 (the C1 acceptance shares)."""
    h = Harness(seed=2026)
    h.update(config(x=1, y=3), endpoint(A, "x"), endpoint(B, "y"))
    ready(*h.ch.subchannels)
    assert h.ch.state is READY
    counts = collections.Counter(picked(h.ch) for _ in range(4000))
    assert abs(counts[A] / 4000 - 0.25) <= 0.03, counts
    assert abs(counts[B] / 4000 - 0.75) <= 0.03, counts


def test_only_ready_children_are_picked() -> None:
    h = Harness()
    h.update(config(x=1, y=3, z=5), endpoint(A, "x"), endpoint(B, "y"), endpoint(C, "z"))
    a, b, c = (h.ch.subchannel(addr) for addr in (A, B, C))
    assert h.ch.state is CONNECTING
    assert isinstance(h.ch.picker, QueuePicker)
    with pytest.raises(NoSubchannelAvailable):
        h.ch.pick()
    ready(a)
    fail(c)
    assert {picked(h.ch) for _ in range(200)} == {A}
    ready(b)
    assert {picked(h.ch) for _ in range(200)} == {A, B}


def test_all_children_failing_fail_with_a_childs_error() -> None:
    h = Harness()
    h.update(config(x=1, y=1), endpoint(A, "x"), endpoint(B, "y"))
    fail(*h.ch.subchannels, error="refused here")
    assert h.ch.state is TF
    with pytest.raises(RpcError) as info:
        h.ch.pick()
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert "refused here" in (info.value.details() or "")
    # A failing child that retries (CONNECTING) keeps the aggregate in TRANSIENT_FAILURE.
    h.ch.subchannels[0].set_state(CONNECTING)
    assert h.ch.state is TF


def test_removed_target_is_closed() -> None:
    h = Harness()
    h.update(config(x=1, y=1), endpoint(A, "x"), endpoint(B, "y"))
    ready(*h.ch.subchannels)
    h.update(config(x=1), endpoint(A, "x"))
    assert [sc.addr for sc in h.ch.live()] == [A]
    assert {picked(h.ch) for _ in range(50)} == {A}


def test_no_targets_is_transient_failure() -> None:
    h = Harness()
    h.update(config())
    assert h.ch.state is TF
    with pytest.raises(RpcError, match="no targets"):
        h.ch.pick()


def test_one_target_in_the_state_publishes_its_own_picker() -> None:
    """A draw with one outcome is no draw: the target's picker is published as it is (the
    one-locality cluster's hot path), and the RNG is not consumed."""
    rng = random.Random(5)
    h = Harness()
    h.b = WeightedTargetBuilder(rand=rng).build(h.ch)
    h.update(config(x=1, y=3), endpoint(A, "x"), endpoint(B, "y"))
    a, b = (h.ch.subchannel(addr) for addr in (A, B))
    ready(a)
    before = rng.getstate()
    assert {picked(h.ch) for _ in range(50)} == {A}
    assert rng.getstate() == before
    assert h.ch.picker is h.b._states.state("x").picker
    ready(b)
    assert {picked(h.ch) for _ in range(200)} == {A, B}
    assert rng.getstate() != before

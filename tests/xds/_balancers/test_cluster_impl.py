"""xds_cluster_impl_experimental (grpc-go xds/internal/balancer/clusterimpl; gRFC A27 drops,
A32 circuit breaking), sans-IO with a round_robin child and a seeded RNG."""

from __future__ import annotations

import collections
import dataclasses
import random
from typing import Any

import pytest

from grpc_lite._call import UnaryUnaryCall
from grpc_lite.balancer import (
    ChannelState,
    DroppedRpcError,
    NoSubchannelAvailable,
    PickInfo,
    PickResult,
)
from grpc_lite.resolver import Address, ResolverState
from grpc_lite.status import RpcError, StatusCode
from grpc_lite.xds._balancers.cluster_impl import (
    ClusterImplBalancer,
    ClusterImplBuilder,
    ClusterImplConfig,
    _ClusterImplPicker,
    request_counter,
)
from tests.fakes.balancer_channel import FakeBalancerChannel, FakeSubchannel
from tests.fakes.call_context import (
    RETRY_CONFIG,
    FakeCallContext,
    answer_headers,
    answer_message,
    answer_status,
    answer_trailers,
    hedging_config,
    refuse,
)
from tests.xds._balancers._helpers import CONNECTING, TF, pick_info, ready

A, B = "10.0.0.1:1", "10.0.0.2:1"


def config(cluster: str = "c1", **fields: Any) -> ClusterImplConfig:
    return ClusterImplBuilder().parse_config(
        {"cluster": cluster, "childPolicy": [{"round_robin": {}}], **fields}
    )


class Harness:
    def __init__(self, seed: int = 1) -> None:
        self.ch = FakeBalancerChannel()
        self.b: ClusterImplBalancer = ClusterImplBuilder(rand=random.Random(seed)).build(self.ch)

    def update(self, cfg: ClusterImplConfig, *addrs: str) -> None:
        state = ChannelState(
            resolver_state=ResolverState(tuple(Address(a) for a in addrs)), config=cfg
        )
        assert self.ch.call(lambda: self.b.update_channel_state(state))

    def pick(self) -> PickResult:
        return self.ch.picker.pick(pick_info())


def test_parse_config() -> None:
    parsed = config(
        edsServiceName="eds1",
        maxConcurrentRequests=5,
        dropCategories=[{"category": "lb", "requestsPerMillion": 10}, {"category": "x"}],
    )
    assert parsed.max_concurrent_requests == 5
    assert [(d.category, d.requests_per_million) for d in parsed.drop_categories] == [
        ("lb", 10),
        ("x", 0),
    ]
    assert config().max_concurrent_requests == 1024  # A32 default
    assert parsed.to_json()["edsServiceName"] == "eds1"
    with pytest.raises(
        ValueError, match=r"dropCategories\[0\]\.requestsPerMillion: must be at most"
    ):
        config(dropCategories=[{"category": "lb", "requestsPerMillion": 1_000_001}])
    with pytest.raises(ValueError, match=r"dropCategories\[0\]\.category: required"):
        config(dropCategories=[{"requestsPerMillion": 1}])
    with pytest.raises(ValueError, match=r"xds_cluster_impl_experimental\.cluster: required"):
        ClusterImplBuilder().parse_config({"childPolicy": [{"round_robin": {}}]})
    with pytest.raises(ValueError, match=r"maxConcurrentRequests: must be an integer"):
        config(maxConcurrentRequests="many")


def test_drops_100000_ppm_drop_about_10_percent() -> None:
    h = Harness(seed=99)
    h.update(config(dropCategories=[{"category": "throttle", "requestsPerMillion": 100_000}]), A)
    ready(*h.ch.subchannels)
    outcomes: collections.Counter[str] = collections.Counter()
    for _ in range(10_000):
        try:
            result = h.pick()
        except DroppedRpcError as exc:
            assert exc.code() is StatusCode.UNAVAILABLE
            assert exc.details() == "dropped by the xDS control plane: category throttle"
            outcomes["dropped"] += 1
        else:
            assert result.on_done is not None
            result.on_done(StatusCode.OK)
            outcomes["picked"] += 1
    assert abs(outcomes["dropped"] / 10_000 - 0.10) <= 0.01, outcomes


def test_categories_are_checked_in_order() -> None:
    h = Harness(seed=5)
    h.update(
        config(
            dropCategories=[
                {"category": "first", "requestsPerMillion": 500_000},
                {"category": "second", "requestsPerMillion": 1_000_000},
            ]
        ),
        A,
    )
    ready(*h.ch.subchannels)
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(2000):
        with pytest.raises(DroppedRpcError) as info:
            h.pick()
        seen[(info.value.details() or "").rsplit(" ", 1)[-1]] += 1
    assert set(seen) == {"first", "second"}
    assert abs(seen["first"] / 2000 - 0.5) <= 0.05, seen


def test_no_drops_while_the_child_is_not_ready() -> None:
    h = Harness()
    h.update(config(dropCategories=[{"category": "all", "requestsPerMillion": 1_000_000}]), A)
    assert h.ch.state is CONNECTING
    with pytest.raises(NoSubchannelAvailable):
        h.pick()


def test_circuit_breaker_counts_until_on_done() -> None:
    h = Harness()
    h.update(config(cluster="cb1", maxConcurrentRequests=2), A, B)
    ready(*h.ch.subchannels)
    first, second = h.pick(), h.pick()
    with pytest.raises(DroppedRpcError) as info:
        h.pick()
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert info.value.details() == "max requests 2 for cluster cb1 reached"
    assert h.b.debug_info()["in_flight"] == 2
    assert first.on_done is not None and second.on_done is not None
    first.on_done(StatusCode.OK)
    first.on_done(StatusCode.OK)  # a second call gives nothing back twice
    third = h.pick()
    with pytest.raises(DroppedRpcError):
        h.pick()
    second.on_done(StatusCode.UNAVAILABLE)
    assert third.on_done is not None
    third.on_done(StatusCode.OK)
    assert h.b.debug_info()["in_flight"] == 0


def test_counter_survives_picker_rebuilds_and_is_shared_per_cluster() -> None:
    h = Harness()
    h.update(config(cluster="cb2", maxConcurrentRequests=1), A, B)
    ready(*h.ch.subchannels)
    held = h.pick()
    # A new picker (a config update, a child's new state) keeps the count.
    h.update(config(cluster="cb2", maxConcurrentRequests=1), A, B)
    h.ch.subchannel(B).set_state(CONNECTING)
    with pytest.raises(DroppedRpcError, match="max requests 1 for cluster cb2"):
        h.pick()
    # Another cluster_impl of the same cluster (another priority) shares it.
    other = Harness()
    other.update(config(cluster="cb2", maxConcurrentRequests=1), "10.0.0.9:1")
    ready(*other.ch.subchannels)
    with pytest.raises(DroppedRpcError):
        other.pick()
    assert held.on_done is not None
    held.on_done(StatusCode.OK)
    other.pick()
    assert request_counter("cb2", "").in_flight == 1


class _ChildPicker:
    def __init__(self, sc: FakeSubchannel, done: list[StatusCode]) -> None:
        self.result = PickResult(subchannel=sc, on_done=done.append)

    def pick(self, info: PickInfo) -> PickResult:
        return self.result


def test_the_childs_on_done_is_still_called() -> None:
    ch = FakeBalancerChannel()
    sc = ch.new_subchannel([Address(A)], on_state_change=lambda *_: None)
    done: list[StatusCode] = []
    counter = request_counter("wrapped", "")
    picker = _ClusterImplPicker(
        _ChildPicker(sc, done),
        ready=True,
        config=config(cluster="wrapped"),
        counter=counter,
        random_=random.Random(0).random,
    )
    result = picker.pick(pick_info())
    assert result.subchannel is sc
    assert counter.in_flight == 1
    on_done = result.on_done
    assert on_done is not None
    # Built through PickResult's slots (the hot path), it is a PickResult like any other.
    assert type(result) is PickResult
    assert result == PickResult(subchannel=sc, on_done=on_done)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.on_done = None  # type: ignore[misc]
    on_done(StatusCode.DEADLINE_EXCEEDED)
    assert done == [StatusCode.DEADLINE_EXCEEDED]
    assert counter.in_flight == 0
    on_done(StatusCode.OK)  # a second call gives nothing back twice
    assert done == [StatusCode.DEADLINE_EXCEEDED]
    assert counter.in_flight == 0


def test_child_errors_pass_through_without_counting() -> None:
    h = Harness()
    h.update(config(cluster="cb3", maxConcurrentRequests=1), A)
    h.ch.subchannels[0].set_state(CONNECTING)
    h.ch.subchannels[0].set_state(TF, "refused")
    with pytest.raises(RpcError, match="refused") as info:
        h.pick()
    assert not isinstance(info.value, DroppedRpcError)
    assert request_counter("cb3", "").in_flight == 0
    assert h.ch.state is TF
    assert h.b.debug_info()["child"]["policy"] == "round_robin"


# -- through a call's attempts: the slots come back (A32 with A6's retries and hedges) ----


class _Backends:
    """A child picker over a FakeCallContext's backends, in turn; its results' on_done
    records each status."""

    def __init__(self, ctx: FakeCallContext) -> None:
        self.ctx = ctx
        self.turn = 0
        self.done: list[StatusCode] = []

    def pick(self, info: PickInfo) -> PickResult:
        backends = self.ctx.backends
        t = backends[self.turn % len(backends)]
        self.turn += 1
        return PickResult(subchannel=t.subchannel, on_done=self.done.append)  # type: ignore[arg-type]


def _circuit_breaker(ctx: FakeCallContext, cluster: str, limit: int) -> tuple[_Backends, Any]:
    child = _Backends(ctx)
    counter = request_counter(cluster, "")
    ctx.picker = _ClusterImplPicker(
        child,
        ready=True,
        config=config(cluster=cluster, maxConcurrentRequests=limit),
        counter=counter,
        random_=random.Random(0).random,
    )
    return child, counter


def _unary(ctx: FakeCallContext) -> UnaryUnaryCall[Any, Any]:
    return UnaryUnaryCall(
        ctx.method(), b"req", timeout=10.0, metadata=None, wait_for_ready=None, compression=None
    )


async def test_a_retried_call_gives_every_slot_back() -> None:
    """maxConcurrentRequests 1: the retry is picked only because the failed attempt gave
    its slot back when it failed; after the call, none is held."""
    ctx = FakeCallContext(service_config=RETRY_CONFIG, backends=2)
    child, counter = _circuit_breaker(ctx, "cb-retry", 1)
    call = _unary(ctx)
    assert counter.in_flight == 1
    answer_status(ctx.streams()[0], StatusCode.UNAVAILABLE, "down")
    assert counter.in_flight == 0
    ctx.clock.advance(1.2)  # the backoff, jittered up to 1.2 s (A6)
    second = ctx.streams()[1]
    assert counter.in_flight == 1
    answer_headers(second)
    answer_message(second, b"ok")
    answer_trailers(second)
    assert await call == b"ok"
    assert counter.in_flight == 0
    assert child.done == [StatusCode.UNAVAILABLE, StatusCode.OK]  # each pick's once


async def test_hedged_transparently_retried_and_cancelled_calls_give_every_slot_back() -> None:
    ctx = FakeCallContext(service_config=hedging_config(max_attempts=2), backends=2)
    child, counter = _circuit_breaker(ctx, "cb-hedge", 2)
    call = _unary(ctx)
    ctx.clock.advance(0.5)
    assert counter.in_flight == 2
    _, second = ctx.streams()
    answer_headers(second)  # the second wins, the first is cancelled
    assert counter.in_flight == 1
    answer_message(second, b"ok")
    answer_trailers(second, StatusCode.OK)
    assert await call == b"ok"
    assert counter.in_flight == 0
    assert child.done == [StatusCode.CANCELLED, StatusCode.OK]
    # A transparent retry (no policy), then a cancel.
    ctx = FakeCallContext(backends=2)
    child, counter = _circuit_breaker(ctx, "cb-transparent", 1)
    call = _unary(ctx)
    refuse(ctx.streams()[0])
    ctx.clock.advance(0)
    assert counter.in_flight == 1 and len(ctx.streams()) == 2
    call.cancel()
    assert counter.in_flight == 0
    assert child.done == [StatusCode.UNAVAILABLE, StatusCode.CANCELLED]

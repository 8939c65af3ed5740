"""Client-side health checking (gRFC A17; CONFORMANCE section P, 135-140, and 89) against
grpcio Greeter backends whose health service the test controls.

Backends come from :func:`tests.e2e.resilience._util.start_backend`: grpcio's HealthServicer
that also counts Watch calls (``"counting"``), a scripted Health service, or none at all (a
spy then records the Watch call grpcio answers UNIMPLEMENTED).
"""

from __future__ import annotations

import asyncio
import itertools
import json

import grpc
import pytest

import grpc_lite
from tests.e2e.resilience._util import (
    FAST_BACKOFF,
    Backend,
    ScriptedHealth,
    eventually,
    every,
    hello,
    ipv4_target,
    pause,
    ready_addresses,
    start_backend,
    subchannel,
)
from tests.servers.harness import NOT_SERVING, SERVING, ServerFactory

S = grpc_lite.ChannelConnectivity
SC = grpc_lite.StatusCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

RR_HEALTH = json.dumps(
    {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}}
)


def channel(backends: list[Backend], config: str = RR_HEALTH, **kw: object) -> grpc_lite.Channel:
    return grpc_lite.insecure_channel(
        ipv4_target([b.address for b in backends]),
        options=[*FAST_BACKOFF],
        service_config=config,
        **kw,  # type: ignore[arg-type]
    )


async def test_not_serving_backend_gets_no_rpcs(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 136 (TRICKY), 138: round_robin with healthCheckConfig {serviceName: ""}
    over A (SERVING) and B (NOT_SERVING): B's subchannel shows health NOT_SERVING and state
    TRANSIENT_FAILURE, and 30 RPCs all reach A. B set SERVING: within 2 s RPCs reach B
    again, its snapshot shows SERVING/READY, and on the way it never went CONNECTING (TF ->
    READY directly). One Watch per backend: the stream stayed open."""
    a = start_backend(grpc_server_factory)
    b = start_backend(grpc_server_factory)
    b.health.set("", NOT_SERVING)
    async with channel([a, b]) as ch:
        ch.get_state(try_to_connect=True)
        await eventually(
            lambda: subchannel(ch, b.address).health == "NOT_SERVING", "B NOT_SERVING", 3
        )
        for i in range(30):
            assert await hello(ch, f"n{i}") == a.address
        assert b.says() == 0
        snap_a, snap_b = subchannel(ch, a.address), subchannel(ch, b.address)
        assert (snap_a.health, snap_a.state) == ("SERVING", S.READY)
        assert (snap_b.health, snap_b.state) == ("NOT_SERVING", S.TRANSIENT_FAILURE)
        assert ch.get_state() is S.READY

        loop = asyncio.get_running_loop()
        b.health.set("", SERVING)
        flipped = loop.time()
        seen: list[S] = []
        while b.says() == 0:
            assert loop.time() - flipped < 2.0, "no RPC reached B within 2 s of SERVING"
            seen.append(subchannel(ch, b.address).state)
            await hello(ch)
            await asyncio.sleep(0.01)
        snap_b = subchannel(ch, b.address)
        assert (snap_b.health, snap_b.state) == ("SERVING", S.READY)
        assert S.CONNECTING not in seen, seen
        assert a.watch_count() == 1 and b.watch_count() == 1


async def test_serving_backend_turning_not_serving_is_removed(
    grpc_server_factory: ServerFactory,
) -> None:
    """CONFORMANCE 136: a backend that was SERVING and receiving RPCs is set NOT_SERVING:
    within 2 s it receives no more RPCs (the Watch stream tells the client at once)."""
    a = start_backend(grpc_server_factory)
    b = start_backend(grpc_server_factory)
    async with channel([a, b]) as ch:
        ch.get_state(try_to_connect=True)
        await eventually(lambda: len(ready_addresses(ch)) == 2, "two READY subchannels", 3)
        served = set()
        for i in range(10):
            served.add(await hello(ch, f"w{i}"))
        assert served == {a.address, b.address}
        b.health.set("", NOT_SERVING)
        await eventually(
            lambda: subchannel(ch, b.address).state is S.TRANSIENT_FAILURE, "B removed", 2
        )
        before = b.says()
        for i in range(20):
            assert await hello(ch, f"x{i}") == a.address
        assert b.says() == before


async def test_all_backends_unhealthy(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 140: the only backend is NOT_SERVING: the channel goes TRANSIENT_FAILURE,
    a fail-fast RPC fails UNAVAILABLE at once, a wait_for_ready RPC waits (DEADLINE_EXCEEDED
    at its 0.3 s deadline), and one waiting when the backend turns SERVING then succeeds.
    No RPC reached the backend while it was unhealthy."""
    a = start_backend(grpc_server_factory)
    a.health.set("", NOT_SERVING)
    async with channel([a]) as ch:
        ch.get_state(try_to_connect=True)
        await eventually(lambda: ch.get_state() is S.TRANSIENT_FAILURE, "channel TF", 3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(grpc_lite.RpcError) as info:
            await hello(ch, deadline=5)
        assert info.value.code() is SC.UNAVAILABLE
        assert loop.time() - t0 < 0.5
        with pytest.raises(grpc_lite.RpcError) as info:
            await hello(ch, deadline=0.3, wait_for_ready=True)
        assert info.value.code() is SC.DEADLINE_EXCEEDED
        assert a.says() == 0
        waiting = asyncio.ensure_future(hello(ch, deadline=5, wait_for_ready=True))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        a.health.set("", SERVING)
        assert await asyncio.wait_for(waiting, 3) == a.address
        assert a.says() == 1


async def test_no_rpc_before_first_health_response(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 136 (TRICKY): a subchannel stays CONNECTING until its first health
    response. B's Watch answers SERVING only after 1 s; A answers at once: RPCs during
    the first 0.8 s all go to A, then B joins the rotation."""
    a = start_backend(grpc_server_factory)
    b_health = ScriptedHealth(first_delay=1.0)
    b = start_backend(grpc_server_factory, health=b_health)
    async with channel([a, b]) as ch:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        ch.get_state(try_to_connect=True)
        async for i in every(0.02, 40):
            if loop.time() - t0 >= 0.8:
                break
            assert await hello(ch, f"e{i}") == a.address
        assert b.says() == 0
        assert b_health.watch_count() == 1
        await eventually(lambda: subchannel(ch, b.address).state is S.READY, "B READY", 2)
        served = {await hello(ch, f"l{i}") for i in range(6)}
        assert served == {a.address, b.address}


async def test_server_without_health_service(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 136 (TRICKY): a server with no Health service answers Watch UNIMPLEMENTED
    (Trailers-Only): the subchannel counts as healthy, RPCs succeed, and exactly 1 Watch is
    made per connection (none again 1.5 s later, past any restart backoff). After the
    server restarts on the same port, the new connection makes exactly 1 Watch again."""
    a = start_backend(grpc_server_factory, health=None)
    async with channel([a]) as ch:
        for i in range(10):
            assert await hello(ch, f"u{i}") == a.address
        assert a.watch_count() == 1
        await pause(1.5)
        assert await hello(ch) == a.address
        assert a.watch_count() == 1

        port = a.running.port
        assert port is not None
        await a.running.stop_async(None)
        a2 = start_backend(grpc_server_factory, port=port, health=None)
        assert await hello(ch, deadline=5, wait_for_ready=True) == a2.address
        await pause(0.3)
        assert a2.watch_count() == 1
        assert a.watch_count() == 1


async def test_watch_that_ends_is_restarted_at_once(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 137 (TRICKY): the Health service sends SERVING and then ends the Watch
    (status OK) 0.2 s later, every time. Since a response was received, the client restarts
    the Watch without backoff: at least 4 Watches within 2 s, consecutive ones less than
    0.5 s apart; RPCs (wait_for_ready) keep succeeding meanwhile."""
    health = ScriptedHealth(then="end", end_after=0.2)
    a = start_backend(grpc_server_factory, health=health)
    async with channel([a]) as ch:
        assert await hello(ch, deadline=5, wait_for_ready=True) == a.address
        await eventually(lambda: health.watch_count() >= 4, "4 Watch calls", 2)
        times = health.watch_times()
        gaps = [y - x for x, y in itertools.pairwise(times)]
        assert all(g < 0.5 for g in gaps), gaps
        for i in range(5):
            assert await hello(ch, f"r{i}", deadline=5, wait_for_ready=True) == a.address


async def test_failing_watch_restarts_with_backoff(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 137 (TRICKY): a Watch that fails UNAVAILABLE without sending anything is
    restarted with the connection backoff (1 s, x1.6, jitter 0.2): the second Watch comes
    0.8-1.2 s after the first and the third 1.28-1.92 s after the second (+0.15 s)."""
    health = ScriptedHealth(statuses=(), then="abort", abort_code=grpc.StatusCode.UNAVAILABLE)
    a = start_backend(grpc_server_factory, health=health)
    config = RR_HEALTH
    async with grpc_lite.insecure_channel(a.address, service_config=config) as ch:
        ch.get_state(try_to_connect=True)
        await eventually(lambda: health.watch_count() >= 3, "3 Watch calls", 4.5)
        t = health.watch_times()
        gap1, gap2 = t[1] - t[0], t[2] - t[1]
        assert 0.8 <= gap1 <= 1.2 + 0.15, (gap1, gap2)
        assert 1.28 <= gap2 <= 1.92 + 0.15, (gap1, gap2)
        assert a.says() == 0
        assert subchannel(ch, a.address).state is not S.READY


async def test_pick_first_does_no_health_checking(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 89, 135: pick_first with healthCheckConfig: the backend's health is
    NOT_SERVING, yet RPCs succeed, no Watch call is ever made, and the snapshot's health is
    None (health checking off)."""
    a = start_backend(grpc_server_factory)
    a.health.set("", NOT_SERVING)
    config = json.dumps(
        {"loadBalancingConfig": [{"pick_first": {}}], "healthCheckConfig": {"serviceName": ""}}
    )
    async with channel([a], config) as ch:
        for i in range(5):
            assert await hello(ch, f"p{i}") == a.address
        await pause(0.3)
        assert a.watch_count() == 0
        assert subchannel(ch, a.address).health is None


async def test_no_health_config_no_watch(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 135: round_robin without healthCheckConfig does no health checking: a
    NOT_SERVING backend still gets RPCs, no Watch is made, snapshot health is None."""
    a = start_backend(grpc_server_factory)
    a.health.set("", NOT_SERVING)
    config = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
    async with channel([a], config) as ch:
        for i in range(5):
            assert await hello(ch, f"q{i}") == a.address
        await pause(0.3)
        assert a.watch_count() == 0
        assert subchannel(ch, a.address).health is None


async def test_named_health_service(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 135, 136: healthCheckConfig.serviceName "helloworld.Greeter" watches that
    service, not the server's overall status: with "" SERVING but "helloworld.Greeter"
    NOT_SERVING on B, RPCs all go to A; flipping the named service to SERVING brings B back."""
    a = start_backend(grpc_server_factory)
    b = start_backend(grpc_server_factory)
    for backend in (a, b):
        backend.health.set("helloworld.Greeter", SERVING)
    b.health.set("helloworld.Greeter", NOT_SERVING)
    config = json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": "helloworld.Greeter"},
        }
    )
    async with channel([a, b], config) as ch:
        ch.get_state(try_to_connect=True)
        await eventually(
            lambda: subchannel(ch, b.address).health == "NOT_SERVING", "B NOT_SERVING", 3
        )
        for i in range(10):
            assert await hello(ch, f"s{i}") == a.address
        b.health.set("helloworld.Greeter", SERVING)
        await eventually(lambda: subchannel(ch, b.address).state is S.READY, "B READY", 2)
        served = {await hello(ch, f"t{i}") for i in range(6)}
        assert served == {a.address, b.address}

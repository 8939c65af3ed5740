"""A6 hedging against grpcio servers (CONFORMANCE section N, 124-129).

Neither grpc-go nor grpc.aio hedges, so these tests check the behaviour from the server's
side: when each hedged attempt arrives (server ``time.monotonic()``, the same clock as the
client's ``loop.time()``), which attempt's answer the client returns, and whether the
losing attempts' handlers see their RPC cancelled.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

import grpc_lite
from tests.e2e.resilience._util import (
    OK,
    UNARY,
    Behaviour,
    FlakyServicer,
    eventually,
    fail,
    flaky,
    hedging_policy,
    ipv4_target,
    pause,
    service_config,
    start_flaky,
)
from tests.servers.harness import ServerFactory

SC = grpc_lite.StatusCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

SLOW = Behaviour(delay=2.0)


async def ready_channel(address: str, config: str) -> grpc_lite.Channel:
    ch = grpc_lite.insecure_channel(address, service_config=config)
    await asyncio.wait_for(ch.channel_ready(), 5)
    return ch


def arrivals(servicer: FlakyServicer, t0: float) -> list[float]:
    return [round(a.at - t0, 3) for a in servicer.attempts]


async def all_cancelled(servicer: FlakyServicer, indexes: list[int]) -> None:
    """The handlers of these 1-based attempts saw their RPC end while they slept."""

    def check() -> bool:
        attempts = servicer.attempts
        return all(attempts[i - 1].cancelled for i in indexes)

    await eventually(check, f"attempts {indexes} to see cancellation", within=1.5)


async def test_hedges_go_out_every_hedging_delay(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 124: every attempt sleeps 2 s; hedgingDelay 0.5 s, maxAttempts 3 ->
    arrivals at about 0, 0.5 and 1.0 s. The 1.3 s deadline then ends the call
    DEADLINE_EXCEEDED and cancels all three attempts (the handlers see it)."""
    server = start_flaky(grpc_server_factory, lambda n: SLOW)
    servicer = flaky(server.servicer)
    ch = await ready_channel(server.address, service_config(hedging=hedging_policy(3, delay=0.5)))
    async with ch:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(b"x", timeout=1.3)
        assert info.value.code() is SC.DEADLINE_EXCEEDED
        assert loop.time() - t0 < 1.6
        at = arrivals(servicer, t0)
        assert len(at) == 3, at
        assert at[0] < 0.1 and 0.45 <= at[1] <= 0.65 and 0.95 <= at[2] <= 1.2, at
        await all_cancelled(servicer, [1, 2, 3])


async def test_zero_hedging_delay_sends_all_at_once(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 124: hedgingDelay "0s" sends all maxAttempts (3) attempts at once."""
    server = start_flaky(grpc_server_factory, lambda n: SLOW)
    servicer = flaky(server.servicer)
    ch = await ready_channel(server.address, service_config(hedging=hedging_policy(3, delay=0)))
    async with ch:
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(grpc_lite.RpcError):
            await ch.unary_unary(UNARY)(b"x", timeout=0.4)
        at = arrivals(servicer, t0)
        assert len(at) == 3 and max(at) < 0.15, at
        await all_cancelled(servicer, [1, 2, 3])


async def test_first_response_wins_and_losers_are_cancelled(
    grpc_server_factory: ServerFactory,
) -> None:
    """CONFORMANCE 125: attempts 1 and 3 would sleep 2 s, attempt 2 answers at once;
    hedgingDelay 0.5 s, maxAttempts 3. The result comes from attempt 2 at about 0.5 s
    (arrivals at about 0 and 0.5 s), attempt 1's handler sees the cancellation
    (RST_STREAM), and the pending third hedge is never sent."""
    plan = lambda n: OK if n == 2 else SLOW  # noqa: E731
    server = start_flaky(grpc_server_factory, plan)
    servicer = flaky(server.servicer)
    ch = await ready_channel(server.address, service_config(hedging=hedging_policy(3, delay=0.5)))
    async with ch:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 2"
        elapsed = loop.time() - t0
        assert 0.45 <= elapsed <= 0.75, elapsed
        await all_cancelled(servicer, [1])
        await pause(1.2 - (loop.time() - t0))  # past the time the third hedge was due
        at = arrivals(servicer, t0)
        assert len(at) == 2, at
        assert at[0] < 0.1 and 0.45 <= at[1] <= 0.65, at


async def test_non_fatal_failure_sends_next_hedge_at_once(
    grpc_server_factory: ServerFactory,
) -> None:
    """CONFORMANCE 126: hedgingDelay 0.5 s, maxAttempts 3. Attempt 1 fails UNAVAILABLE
    (non-fatal) after 50 ms -> attempt 2 is sent at once (arrives at about 50 ms, not
    0.5 s); attempt 2 sleeps, and attempt 3 follows hedgingDelay after attempt 2 (about
    0.55 s), answers at once and wins; attempt 2 is cancelled."""
    plan = lambda n: {1: fail(delay=0.05), 2: SLOW}.get(n, OK)  # noqa: E731
    server = start_flaky(grpc_server_factory, plan)
    servicer = flaky(server.servicer)
    ch = await ready_channel(server.address, service_config(hedging=hedging_policy(3, delay=0.5)))
    async with ch:
        t0 = asyncio.get_running_loop().time()
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 3"
        at = arrivals(servicer, t0)
        assert len(at) == 3, at
        assert 0.04 <= at[1] <= 0.25, at
        assert 0.5 <= at[2] <= 0.8, at
        await all_cancelled(servicer, [2])


async def test_fatal_status_cancels_outstanding_attempts(
    grpc_server_factory: ServerFactory,
) -> None:
    """CONFORMANCE 126: attempt 1 sleeps; attempt 2 (hedgingDelay 0.2 s) fails
    INVALID_ARGUMENT, which is not in nonFatalStatusCodes: the call fails INVALID_ARGUMENT at
    about 0.2 s, attempt 1 is cancelled, and no third attempt is sent."""
    plan = lambda n: fail(grpc.StatusCode.INVALID_ARGUMENT) if n == 2 else SLOW  # noqa: E731
    server = start_flaky(grpc_server_factory, plan)
    servicer = flaky(server.servicer)
    ch = await ready_channel(server.address, service_config(hedging=hedging_policy(3, delay=0.2)))
    async with ch:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        assert info.value.code() is SC.INVALID_ARGUMENT
        assert loop.time() - t0 <= 0.45
        await all_cancelled(servicer, [1])
        await pause(0.6 - (loop.time() - t0))
        assert servicer.count() == 2


async def test_all_hedges_fail(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 127: every attempt fails UNAVAILABLE (non-fatal) with message "k" after
    100 ms; hedgingDelay 0.05 s, maxAttempts 3: the call fails once all 3 have finished,
    with the last failure ("3"), and nothing more is sent."""
    server = start_flaky(grpc_server_factory, lambda n: fail(delay=0.1, details=str(n)))
    servicer = flaky(server.servicer)
    ch = await ready_channel(server.address, service_config(hedging=hedging_policy(3, delay=0.05)))
    async with ch:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        assert info.value.code() is SC.UNAVAILABLE
        assert info.value.details() == "3"
        # The last attempt started at about 0.1 s and failed 0.1 s later.
        assert loop.time() - t0 >= servicer.attempts[-1].at - t0 + 0.09
        await pause(0.2)
        assert servicer.count() == 3


async def test_pushback_stop_ends_hedging(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 128: hedgingDelay 0.2 s, maxAttempts 4. Attempt 2 fails UNAVAILABLE with
    grpc-retry-pushback-ms -1 ("don't retry"): no more hedges are sent, but the outstanding
    attempt 1 continues and its answer (at about 0.6 s) is the result: 2 attempts."""
    plan = lambda n: Behaviour(delay=0.6) if n == 1 else fail(pushback="-1")  # noqa: E731
    server = start_flaky(grpc_server_factory, plan)
    servicer = flaky(server.servicer)
    ch = await ready_channel(server.address, service_config(hedging=hedging_policy(4, delay=0.2)))
    async with ch:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 1"
        assert 0.55 <= loop.time() - t0 <= 0.9
        await pause(0.2)
        assert servicer.count() == 2


async def test_pushback_delay_sets_next_hedge(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 128: hedgingDelay 0.2 s, maxAttempts 4. Attempt 2 (at 0.2 s) fails at once
    with grpc-retry-pushback-ms 300: the next hedge goes 300 ms later (about 0.5 s, neither
    at once nor at 0.4 s); it answers and wins."""
    plan = lambda n: {1: SLOW, 2: fail(pushback="300")}.get(n, OK)  # noqa: E731
    server = start_flaky(grpc_server_factory, plan)
    servicer = flaky(server.servicer)
    ch = await ready_channel(server.address, service_config(hedging=hedging_policy(4, delay=0.2)))
    async with ch:
        t0 = asyncio.get_running_loop().time()
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 3"
        at = arrivals(servicer, t0)
        assert len(at) == 3, at
        assert 0.15 <= at[1] <= 0.3 and 0.45 <= at[2] <= 0.65, at
        await all_cancelled(servicer, [1])


async def test_previous_attempts_header_on_hedges(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 129: hedge k (0-based) carries grpc-previous-rpc-attempts k; the first
    attempt has none: [absent, "1", "2"]."""
    server = start_flaky(grpc_server_factory, lambda n: SLOW)
    servicer = flaky(server.servicer)
    ch = await ready_channel(server.address, service_config(hedging=hedging_policy(3, delay=0.1)))
    async with ch:
        with pytest.raises(grpc_lite.RpcError):
            await ch.unary_unary(UNARY)(b"x", timeout=0.5)
        assert [a.previous for a in servicer.attempts] == [None, "1", "2"]


async def test_hedges_spread_over_backends(grpc_server_factory: ServerFactory) -> None:
    """Issue 4 (hedging: attempts go to different subchannels when the policy can pick
    them), CONFORMANCE 114/124: round_robin over three slow backends, maxAttempts 3,
    hedgingDelay 0.1 s: each backend receives exactly one of the three attempts."""
    servers = [start_flaky(grpc_server_factory, lambda n: SLOW) for _ in range(3)]
    config = service_config(hedging=hedging_policy(3, delay=0.1), lb="round_robin")
    ch = grpc_lite.insecure_channel(
        ipv4_target([s.address for s in servers]), service_config=config
    )
    async with ch:
        await asyncio.wait_for(ch.channel_ready(), 5)
        await eventually(
            lambda: (
                sum(
                    sc.state is grpc_lite.ChannelConnectivity.READY
                    for sc in ch.snapshot().subchannels
                )
                == 3
            ),
            "three READY subchannels",
        )
        with pytest.raises(grpc_lite.RpcError):
            await ch.unary_unary(UNARY)(b"x", timeout=0.5)
    assert [flaky(s.servicer).count() for s in servers] == [1, 1, 1]

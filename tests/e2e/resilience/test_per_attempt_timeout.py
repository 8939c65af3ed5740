"""perAttemptRecvTimeout (C-core's retryPolicy/hedgingPolicy field; issue 4 "Per-attempt
timeout", CONFORMANCE 105/126 for what follows the timeout) against grpcio servers.

An attempt that gets no response within perAttemptRecvTimeout is cancelled (the server
sees the cancellation) and counts as a retryable (retry) or non-fatal (hedging) failure,
always within the call's overall deadline.
"""

from __future__ import annotations

import asyncio

import pytest

import grpc_lite
from tests.e2e.resilience._util import (
    OK,
    UNARY,
    Behaviour,
    eventually,
    flaky,
    hedging_policy,
    retry_policy,
    service_config,
    start_flaky,
)
from tests.servers.harness import ServerFactory

SC = grpc_lite.StatusCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

HANG = Behaviour(delay=3.0)


async def test_hung_attempt_is_retried(grpc_server_factory: ServerFactory) -> None:
    """Issue 4 per-attempt timeout, CONFORMANCE 105, 113: the first attempt hangs;
    perAttemptRecvTimeout 0.2 s, maxAttempts 2, initialBackoff 0.05 s: attempt 1 is
    cancelled at 0.2 s (its handler sees it), attempt 2 (grpc-previous-rpc-attempts "1")
    answers, and the call succeeds at about 0.25 s, well within its 2 s deadline."""
    server = start_flaky(grpc_server_factory, lambda n: HANG if n == 1 else OK)
    servicer = flaky(server.servicer)
    config = service_config(retry=retry_policy(2, initial=0.05, maximum=0.05, per_attempt=0.2))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        await asyncio.wait_for(ch.channel_ready(), 5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await ch.unary_unary(UNARY)(b"x", timeout=2) == b"attempt 2"
        elapsed = loop.time() - t0
        assert 0.2 <= elapsed <= 0.5, elapsed
        attempts = servicer.attempts
        assert len(attempts) == 2
        assert [a.previous for a in attempts] == [None, "1"]
        assert 0.2 <= attempts[1].at - t0 <= 0.45
        await eventually(lambda: attempts[0].cancelled, "attempt 1 to see cancellation")


async def test_every_attempt_hangs(grpc_server_factory: ServerFactory) -> None:
    """Issue 4 per-attempt timeout, CONFORMANCE 105, 115: both attempts hang;
    perAttemptRecvTimeout 0.2 s, maxAttempts 2: the call ends after the second attempt's
    timeout (about 0.45 s), long before its 3 s deadline, with C-core's status for it
    (CANCELLED "retry perAttemptRecvTimeout exceeded" in C-core's retry filter; a
    DEADLINE_EXCEEDED is accepted too); both handlers are cancelled."""
    server = start_flaky(grpc_server_factory, lambda n: HANG)
    servicer = flaky(server.servicer)
    config = service_config(retry=retry_policy(2, initial=0.05, maximum=0.05, per_attempt=0.2))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        await asyncio.wait_for(ch.channel_ready(), 5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(b"x", timeout=3)
        elapsed = loop.time() - t0
        assert 0.4 <= elapsed <= 0.8, elapsed
        assert info.value.code() in (SC.CANCELLED, SC.DEADLINE_EXCEEDED), info.value
        assert servicer.count() == 2
        await eventually(
            lambda: all(a.cancelled for a in servicer.attempts), "both attempts cancelled"
        )


async def test_overall_deadline_wins_over_per_attempt(grpc_server_factory: ServerFactory) -> None:
    """Issue 4 per-attempt timeout "within the overall deadline", CONFORMANCE 115:
    perAttemptRecvTimeout 1 s but a 0.3 s call deadline: DEADLINE_EXCEEDED at about 0.3 s,
    1 attempt."""
    server = start_flaky(grpc_server_factory, lambda n: HANG)
    servicer = flaky(server.servicer)
    config = service_config(retry=retry_policy(3, per_attempt=1.0))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        await asyncio.wait_for(ch.channel_ready(), 5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(b"x", timeout=0.3)
        assert info.value.code() is SC.DEADLINE_EXCEEDED
        assert 0.25 <= loop.time() - t0 <= 0.6
        assert servicer.count() == 1


async def test_hedge_sent_when_attempt_times_out(grpc_server_factory: ServerFactory) -> None:
    """Issue 4 per-attempt timeout with hedging, CONFORMANCE 126: hedgingDelay 1 s,
    perAttemptRecvTimeout 0.2 s, maxAttempts 2: attempt 1 hangs, its timeout counts as a
    non-fatal failure, so attempt 2 goes at about 0.2 s (not 1 s) and answers."""
    server = start_flaky(grpc_server_factory, lambda n: HANG if n == 1 else OK)
    servicer = flaky(server.servicer)
    policy = hedging_policy(2, delay=1.0)
    policy["perAttemptRecvTimeout"] = "0.2s"
    config = service_config(hedging=policy)
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        await asyncio.wait_for(ch.channel_ready(), 5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await ch.unary_unary(UNARY)(b"x", timeout=3) == b"attempt 2"
        assert 0.2 <= loop.time() - t0 <= 0.5
        attempts = servicer.attempts
        assert len(attempts) == 2 and 0.18 <= attempts[1].at - t0 <= 0.45
        await eventually(lambda: attempts[0].cancelled, "attempt 1 to see cancellation")

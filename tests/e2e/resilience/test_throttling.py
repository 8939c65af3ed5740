"""A6 retry throttling against a grpcio server (CONFORMANCE section O, 130-133).

The bucket is only observable through the number of attempts the server sees, so the
test runs the exact sequence of item 131 and counts attempts after every failing call.
"""

from __future__ import annotations

import asyncio

import pytest

import grpc_lite
from tests.e2e.resilience._util import (
    OK,
    UNARY,
    fail,
    flaky,
    hedging_policy,
    retry_policy,
    service_config,
    start_flaky,
)
from tests.servers.harness import ServerFactory

SC = grpc_lite.StatusCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]


async def test_throttling_threshold_and_recovery(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 130, 131 (TRICKY), 132: maxTokens 10, tokenRatio 0.1, maxAttempts 5,
    server always UNAVAILABLE.

    - call 1: failures leave 9, 8, 7, 6 (> 5, retried) and 5 (maxAttempts) -> 5 attempts;
    - call 2: the first failure leaves 4 (<= 5) -> 1 attempt, returned at once (132);
    - 12 OK calls bring the bucket to 5.2; a failing call drops it to 4.2 -> 1 attempt;
    - 21 more OK calls bring it to 6.3; a failing call drops it to 5.3 > 5 -> retried, and
      the retry's failure leaves 4.3 -> 2 attempts. Exact milli-token arithmetic: 0.1 steps
      must not drift.
    """
    server = start_flaky(grpc_server_factory, lambda n: fail())
    servicer = flaky(server.servicer)
    config = service_config(retry=retry_policy(5, initial=0.01, maximum=0.02), throttling=(10, 0.1))
    loop = asyncio.get_running_loop()

    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        method = ch.unary_unary(UNARY)

        async def failing_call() -> int:
            servicer.reset(lambda n: fail())
            with pytest.raises(grpc_lite.RpcError) as info:
                await method(b"x", timeout=5)
            assert info.value.code() is SC.UNAVAILABLE
            return servicer.count()

        async def ok_calls(n: int) -> None:
            servicer.reset(lambda k: OK)
            for _ in range(n):
                await method(b"x", timeout=5)
            assert servicer.count() == n  # no retries on OK calls

        assert await failing_call() == 5
        start = loop.time()
        assert await failing_call() == 1
        assert loop.time() - start < 0.5  # a throttled retry is not delayed (132)
        await ok_calls(12)
        assert await failing_call() == 1
        await ok_calls(21)
        assert await failing_call() == 2


async def test_throttled_hedges_are_not_sent(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 130, 132: hedging under throttling. maxTokens 4, tokenRatio 0.1, hedging
    maxAttempts 5, hedgingDelay 0.2 s, every attempt fails UNAVAILABLE (non-fatal) after
    50 ms. Call 1: attempt 1 fails (4 -> 3 > 2) so attempt 2 goes at once (126); it fails
    (3 -> 2, not > 2): no more hedges, 2 attempts. Calls 2 and 3: the first attempt is
    always sent, its failure leaves the bucket at or below half: 1 attempt each."""
    server = start_flaky(grpc_server_factory, lambda n: fail(delay=0.05))
    servicer = flaky(server.servicer)
    config = service_config(hedging=hedging_policy(5, delay=0.2), throttling=(4, 0.1))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        method = ch.unary_unary(UNARY)
        await asyncio.wait_for(ch.channel_ready(), 5)
        for expected in (2, 1, 1):
            servicer.reset()
            with pytest.raises(grpc_lite.RpcError) as info:
                await method(b"x", timeout=5)
            assert info.value.code() is SC.UNAVAILABLE
            await asyncio.sleep(0.25)  # a late hedge would have been sent by now
            assert servicer.count() == expected

"""A66/A96 attempt metrics while retries and hedges go to hosts their call has not tried
(issue 19): three grpcio ``resil.Flaky`` servers on 127.0.0.1/.2/.3 behind round_robin, every
later attempt on another backend (the channel's snapshot counts them), and the attempts,
retries and hedges counted as for any retry or hedge."""

from __future__ import annotations

import asyncio
import json

import pytest

import grpc_lite
from tests.e2e.opentelemetry._util import Telemetry, by_status
from tests.e2e.resilience._util import (
    OK,
    UNARY,
    Attempt,
    Behaviour,
    PerCallPlan,
    flaky,
    hedging_policy,
    retry_policy,
    service_config,
    start_flaky,
)
from tests.servers.harness import ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
CALLS = 6


class _SlowOriginals(PerCallPlan):
    """Every call's original attempt sleeps 2 s (cancelled when the hedge wins); hedges
    answer at once."""

    def behaviour(self, attempt: Attempt) -> Behaviour:
        return Behaviour(delay=2.0) if attempt.previous is None else OK


def _round_robin(config: str) -> str:
    doc = json.loads(config)
    doc["loadBalancingConfig"] = [{"round_robin": {}}]
    return json.dumps(doc)


async def _channel(
    factory: ServerFactory, plan: PerCallPlan, config: str, telemetry: Telemetry
) -> grpc_lite.Channel:
    servers = [start_flaky(factory, plan, host) for host in HOSTS]
    ch = grpc_lite.insecure_channel(
        "ipv4:" + ",".join(s.address for s in servers),
        service_config=_round_robin(config),
        observability=[telemetry.plugin(tracing=False)],
    )
    await asyncio.wait_for(ch.channel_ready(), 5)
    loop = asyncio.get_running_loop()
    end = loop.time() + 5
    while (
        sum(sc.state is grpc_lite.ChannelConnectivity.READY for sc in ch.snapshot().subchannels) < 3
    ):
        assert loop.time() < end, "three READY subchannels"
        await asyncio.sleep(0.02)
    for server in servers:
        flaky(server.servicer).reset()
    return ch


async def test_retries_on_other_hosts_are_counted_as_retries(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """Each server fails every call's original attempt UNAVAILABLE: each call's retry goes
    to another backend and succeeds. 2 attempts and 1 retry per call."""
    config = service_config(retry=retry_policy(3, initial=0.01, maximum=0.01))
    ch = await _channel(grpc_server_factory, PerCallPlan(1), config, telemetry)
    async with ch:
        for _ in range(CALLS):
            assert await ch.unary_unary(UNARY)(b"x", timeout=5)
        snap = ch.snapshot()
    assert (snap.attempts_on_new_hosts, snap.attempts_on_previous_hosts) == (CALLS, 0)
    assert telemetry.points("grpc.client.attempt.started")[0].value == 2 * CALLS
    durations = by_status(telemetry.points("grpc.client.attempt.duration"))
    assert {k: p.count for k, p in durations.items()} == {"UNAVAILABLE": CALLS, "OK": CALLS}
    [retries] = telemetry.points("grpc.client.call.retries")
    assert (retries.count, retries.sum) == (CALLS, CALLS)
    [call] = telemetry.points("grpc.client.call.duration")
    assert call.count == CALLS and call.attributes["grpc.status"] == "OK"
    assert telemetry.points("grpc.client.call.hedges") == []


async def test_hedges_on_other_hosts_are_counted_as_hedges(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """Every original attempt sleeps; the hedge (200 ms later) goes to another backend and
    wins. 2 attempts (one CANCELLED) and 1 hedge per call."""
    config = service_config(hedging=hedging_policy(3, delay=0.2))
    ch = await _channel(grpc_server_factory, _SlowOriginals(), config, telemetry)
    async with ch:
        for _ in range(CALLS):
            assert await ch.unary_unary(UNARY)(b"x", timeout=5)
        snap = ch.snapshot()
    assert (snap.attempts_on_new_hosts, snap.attempts_on_previous_hosts) == (CALLS, 0)
    assert sum(sc.attempts_avoided for sc in snap.subchannels) == CALLS
    assert telemetry.points("grpc.client.attempt.started")[0].value == 2 * CALLS
    durations = by_status(telemetry.points("grpc.client.attempt.duration"))
    assert {k: p.count for k, p in durations.items()} == {"CANCELLED": CALLS, "OK": CALLS}
    [hedges] = telemetry.points("grpc.client.call.hedges")
    assert (hedges.count, hedges.sum) == (CALLS, CALLS)
    assert telemetry.points("grpc.client.call.retries") == []
    [call] = telemetry.points("grpc.client.call.duration")
    assert call.count == CALLS and call.attributes["grpc.status"] == "OK"

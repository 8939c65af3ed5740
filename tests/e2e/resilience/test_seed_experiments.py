"""The seed article's resilience experiments as tests (issue 4 "Tests"), on 127.0.0.1, .2
and .3 (one port), with the seed's grpc-go style CapitalCase service configs unchanged.

1. Scale-down: a call every 20 ms while two of the three backends go away (one run by
   graceful stop, one by SIGKILL of the backend process, one by grpcio's immediate stop):
   with RetryPolicy {MaxAttempts 2, UNAVAILABLE}, zero calls fail and every later call goes
   to the survivor (CONFORMANCE 105, 114, 121-122).
2. A stuck backend (1 s delay, health NOT_SERVING) among three, 1 s call timeout and
   HealthCheckConfig: zero calls reach it, none time out; set SERVING (and unstuck), it is
   back in rotation within 2 s (CONFORMANCE 136).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import grpc_lite
from tests.e2e.resilience._util import (
    FAST_BACKOFF,
    ChildGreeter,
    eventually,
    every,
    hello,
    ipv4_target,
    ready_addresses,
)
from tests.servers.harness import NOT_SERVING, SERVING, RunningServer, ServerFactory

S = grpc_lite.ChannelConnectivity

pytestmark = [pytest.mark.integration]

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")

#: The seed article's service config, verbatim (grpc-go field spelling).
SEED_CONFIG: dict[str, Any] = {
    "LoadBalancingPolicy": "round_robin",
    "MethodConfig": [
        {
            "Name": [{"Service": "helloworld.Greeter"}],
            "RetryPolicy": {
                "MaxAttempts": 2,
                "InitialBackoff": "0.1s",
                "MaxBackoff": "1s",
                "BackoffMultiplier": 2.0,
                "RetryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}

CALLS = 120
PERIOD = 0.02
FIRST_STOP_AT = 30
SECOND_STOP_AT = 70


class _Departing:
    """A backend that will go away: in-process (graceful / immediate stop) or a child
    process (SIGKILL)."""

    def __init__(self, mode: str, server: RunningServer | None, child: ChildGreeter | None):
        self.mode = mode
        self.server = server
        self.child = child

    @property
    def address(self) -> str:
        if self.server is not None:
            return self.server.address
        assert self.child is not None
        return self.child.address

    async def go_away(self) -> None:
        if self.mode == "graceful":
            assert self.server is not None
            # Begin the shutdown between two calls, not while one is arriving: grpcio's
            # server answers a call that it received but had not yet handed to a handler
            # when its shutdown began with Trailers-Only CANCELLED (after GOAWAY(last =
            # 2^31-1, "Server shutdown"), Observed with 1.85.1), a server-side race that no
            # client can retry under an UNAVAILABLE-only policy. grpc-go's GracefulStop
            # serves such a call.
            await asyncio.sleep(PERIOD / 2)
            await self.server.stop_async(0.5)
        elif self.mode == "immediate":
            assert self.server is not None
            # grpcio's immediate stop answers a call it is serving with CANCELLED (the
            # server's own status, rightly not retried on an UNAVAILABLE-only policy), so
            # the stop starts between two calls, as the graceful one does.
            await asyncio.sleep(PERIOD / 2)
            await self.server.stop_async(None)
        else:
            assert self.child is not None
            await asyncio.to_thread(self.child.kill)


def _start_backends(
    factory: ServerFactory, mode: str, children: list[ChildGreeter]
) -> tuple[RunningServer, list[_Departing]]:
    """The survivor on .1 (in-process) and two departing backends on .2 and .3."""
    if mode != "sigkill":
        survivor, *others = factory.many(HOSTS, kind="greeter")
        return survivor, [_Departing(mode, s, None) for s in others]
    for _ in range(3):
        survivor = factory.greeter(HOSTS[0])
        assert survivor.port is not None
        batch = [ChildGreeter(host, survivor.port) for host in HOSTS[1:]]
        children.extend(batch)
        for child in batch:
            child.start()
        try:
            for child in batch:
                child.wait_started()
        except AssertionError:  # the port was taken on .2 or .3: try another one
            for child in batch:
                child.close()
            survivor.stop(None)
            factory.servers.remove(survivor)
            continue
        return survivor, [_Departing(mode, None, c) for c in batch]
    raise AssertionError("could not start the backends on one port")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["graceful", "sigkill", "immediate"])
async def test_scale_down_costs_no_call(grpc_server_factory: ServerFactory, mode: str) -> None:
    """Issue 4 seed experiment 1, CONFORMANCE 105, 114, 121, 122: 120 calls, one every
    20 ms (2 s deadline each), round_robin over .1/.2/.3 with the seed's CapitalCase
    RetryPolicy (MaxAttempts 2 on UNAVAILABLE). At call 30 backend .2 goes away, at call 70
    backend .3: by grpcio's graceful stop (0.5 s grace, begun 10 ms after the call's tick),
    by SIGKILL of its process (while the call of that tick is in flight), or by grpcio's
    immediate stop (between two calls: grpcio cancels a call it is serving). Zero calls
    fail; all three backends served before the first departure; every call started after
    the second departure completed is served by .1."""
    children: list[ChildGreeter] = []
    try:
        survivor, departing = _start_backends(grpc_server_factory, mode, children)
        addresses = [survivor.address, *(d.address for d in departing)]
        results: list[str | grpc_lite.RpcError] = []
        stops: list[asyncio.Task[None]] = []
        all_gone_at: int | None = None
        loop = asyncio.get_running_loop()
        async with grpc_lite.insecure_channel(
            ipv4_target(addresses), options=FAST_BACKOFF, service_config=json.dumps(SEED_CONFIG)
        ) as ch:
            ch.get_state(try_to_connect=True)
            await eventually(lambda: len(ready_addresses(ch)) == 3, "three READY subchannels")
            try:
                async for i in every(PERIOD, CALLS):
                    if i == FIRST_STOP_AT:
                        stops.append(loop.create_task(departing[0].go_away()))
                    elif i == SECOND_STOP_AT:
                        stops.append(loop.create_task(departing[1].go_away()))
                    if all_gone_at is None and len(stops) == 2 and all(t.done() for t in stops):
                        all_gone_at = i
                    try:
                        results.append(await hello(ch, f"c{i}", deadline=2.0))
                    except grpc_lite.RpcError as exc:
                        results.append(exc)
            finally:
                await asyncio.gather(*stops)
            assert ch.get_state() is S.READY
    finally:
        for child in children:
            child.close()

    failures = [(i, r) for i, r in enumerate(results) if isinstance(r, grpc_lite.RpcError)]
    assert failures == [], failures
    assert set(results[:FIRST_STOP_AT]) == set(addresses)
    assert all_gone_at is not None, "the backends took too long to go away"
    later = results[all_gone_at:]
    assert len(later) >= 30, all_gone_at
    assert set(later) == {survivor.address}, later


@pytest.mark.timeout(20)
async def test_call_in_flight_on_killed_backend_is_retried(
    grpc_server_factory: ServerFactory,
) -> None:
    """Issue 4 seed experiment 1 (the hard-kill case made deterministic), CONFORMANCE 105,
    114: round_robin over .1 (fast) and .2 (a child process whose handler sleeps 0.5 s) with
    the seed's RetryPolicy. Two concurrent calls (one per backend); the .2 process is
    SIGKILLed 0.15 s later, while its call is in flight: that call fails UNAVAILABLE on the
    broken connection, is retried through the picker, and .1 answers it. Both calls
    succeed, and the trace records the retry."""
    survivor = grpc_server_factory.greeter(HOSTS[0])
    assert survivor.port is not None
    with ChildGreeter(HOSTS[1], survivor.port, delay=0.5) as child:
        child.wait_started()
        async with grpc_lite.insecure_channel(
            ipv4_target([survivor.address, child.address]),
            options=FAST_BACKOFF,
            service_config=json.dumps(SEED_CONFIG),
        ) as ch:
            ch.get_state(try_to_connect=True)
            await eventually(lambda: len(ready_addresses(ch)) == 2, "two READY subchannels")
            calls = [asyncio.ensure_future(hello(ch, f"k{i}", deadline=3)) for i in range(2)]
            await asyncio.sleep(0.15)
            assert not all(c.done() for c in calls)  # the call on .2 is in flight
            await asyncio.to_thread(child.kill)
            answered = await asyncio.gather(*calls)
            assert answered == [survivor.address, survivor.address]
            retries = [e for e in ch.snapshot().events if e.subject == "retry"]
            assert retries, ch.snapshot().events


@pytest.mark.timeout(30)
async def test_stuck_backend_is_avoided_by_health_checking(
    grpc_server_factory: ServerFactory,
) -> None:
    """Issue 4 seed experiment 2, CONFORMANCE 136 (TRICKY), 138: backends on .1/.2/.3, .3 is
    stuck (every call sleeps 1 s) and its health is NOT_SERVING. With the seed's config plus
    HealthCheckConfig (CapitalCase) and a 1 s timeout per call, 60 calls every 20 ms: none
    reaches .3, none times out (all succeed, from .1 and .2). Then .3 is unstuck and set
    SERVING: within 2 s it is back in rotation."""
    backends = grpc_server_factory.many(HOSTS, kind="greeter")
    stuck = backends[2]
    stuck.servicer.delay = 1.0
    stuck.health.set("", NOT_SERVING)
    config = {**SEED_CONFIG, "HealthCheckConfig": {"ServiceName": ""}}
    loop = asyncio.get_running_loop()
    async with grpc_lite.insecure_channel(
        ipv4_target([b.address for b in backends]),
        options=FAST_BACKOFF,
        service_config=json.dumps(config),
    ) as ch:
        ch.get_state(try_to_connect=True)
        await eventually(lambda: len(ready_addresses(ch)) == 2, "two READY subchannels")
        served: list[str] = []
        async for i in every(PERIOD, 60):
            start = loop.time()
            served.append(await hello(ch, f"s{i}", deadline=1.0))
            assert loop.time() - start < 0.5
        assert stuck.recorder.count("SayHello") == 0
        assert set(served) == {backends[0].address, backends[1].address}

        stuck.servicer.delay = 0.0
        stuck.health.set("", SERVING)
        flipped = loop.time()
        while stuck.recorder.count("SayHello") == 0:
            assert loop.time() - flipped < 2.0, "the recovered backend got no call within 2 s"
            await hello(ch, deadline=1.0)
            await asyncio.sleep(PERIOD)
        rotation = {await hello(ch, f"r{i}", deadline=1.0) for i in range(6)}
        assert rotation == {b.address for b in backends}

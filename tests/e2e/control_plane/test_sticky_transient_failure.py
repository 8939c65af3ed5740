"""Sticky TRANSIENT_FAILURE (CONFORMANCE 84 pick_first, 93 round_robin): with every backend
refused, once the channel reports TRANSIENT_FAILURE it stays there while the subchannels
keep retrying on their backoff; it never flaps to CONNECTING. It goes READY as soon as one
backend comes up."""

from __future__ import annotations

import asyncio
import time

import pytest

import grpc_lite
from tests.e2e.control_plane._util import (
    SC,
    ReservedPort,
    S,
    always,
    hello,
    hello_error,
    ipv4_target,
    options,
    wait_state,
)
from tests.servers.harness import ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]


@pytest.mark.parametrize("policy", ["pick_first", "round_robin"])
async def test_all_refused_stays_transient_failure(
    policy: str, grpc_server_factory: ServerFactory
) -> None:
    """CONFORMANCE 84 / 93 (and 80, 100): two refused ports under ``policy``. After the
    first TRANSIENT_FAILURE, get_state() sampled every 50 ms for 1 s is always
    TRANSIENT_FAILURE and no state change is reported, although the subchannels make more
    connection attempts meanwhile (backoff 100 ms .. 500 ms). Fail-fast RPCs fail
    UNAVAILABLE at once during TF. Starting a server on one port then makes it READY."""
    ports = [ReservedPort(), ReservedPort()]
    try:
        async with grpc_lite.insecure_channel(
            ipv4_target([p.address for p in ports]),
            options=options(("grpc.lb_policy_name", policy)),
        ) as ch:
            assert ch.get_state(try_to_connect=True) in (S.IDLE, S.CONNECTING)
            await wait_state(ch, S.TRANSIENT_FAILURE, within=2.0)
            attempts_before = sum(sc.connect_attempts for sc in ch.snapshot().subchannels)

            changes: list[grpc_lite.ChannelConnectivity] = []

            async def watch() -> None:
                state = S.TRANSIENT_FAILURE
                while True:
                    await ch.wait_for_state_change(state)
                    state = ch.get_state()
                    changes.append(state)

            watcher = asyncio.get_running_loop().create_task(watch())
            try:
                samples = await always(
                    lambda: ch.get_state() is S.TRANSIENT_FAILURE,
                    "TRANSIENT_FAILURE",
                    duration=1.0,
                    interval=0.05,
                )
            finally:
                watcher.cancel()
                try:
                    await watcher
                except asyncio.CancelledError:
                    pass
            assert samples >= 15
            assert changes == [], f"the channel reported {changes} while all backends refused"
            attempts_after = sum(sc.connect_attempts for sc in ch.snapshot().subchannels)
            # Each subchannel retries every 100-500 ms: several attempts in that second.
            assert attempts_after >= attempts_before + 4, (attempts_before, attempts_after)

            started = time.monotonic()
            err = await hello_error(ch, deadline=10.0)
            assert err.code() is SC.UNAVAILABLE, err
            assert time.monotonic() - started < 0.5

            # 84: TF -> READY once a subchannel connects (no CONNECTING report in between).
            async def next_state() -> grpc_lite.ChannelConnectivity:
                await ch.wait_for_state_change(S.TRANSIENT_FAILURE)
                return ch.get_state()

            following = asyncio.get_running_loop().create_task(next_state())
            ports[1].release()
            server = await asyncio.to_thread(
                grpc_server_factory.greeter, "127.0.0.1", ports[1].port
            )
            await wait_state(ch, S.READY, within=2.0)
            assert await asyncio.wait_for(following, 1.0) is S.READY
            assert await hello(ch) == server.address
    finally:
        for p in ports:
            p.release()

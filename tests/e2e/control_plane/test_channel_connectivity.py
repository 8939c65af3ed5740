"""Channel connectivity against a real Greeter: a new channel is IDLE and does nothing
(67), IDLE -> CONNECTING -> READY seen through wait_for_state_change (68, 69), the idle
timeout closes the connection and the next RPC reconnects (72), and an open stream keeps
the channel out of IDLE (73)."""

from __future__ import annotations

import asyncio

import pytest

import grpc_lite
import grpc_lite.resolver
from grpc_lite._proto import helloworld_pb2
from tests.e2e.control_plane._util import (
    S,
    always,
    backend_of,
    eventually,
    greeter,
    hello,
    manual_target,
    options,
    peer_ports,
    server_connections,
    wait_state,
)
from tests.servers.harness import RunningServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

IDLE_TIMEOUT_MS = 300


async def test_new_channel_is_idle_and_does_nothing(
    greeter_server: RunningServer, manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 67: a new channel is IDLE and, for the 0.3 s that follow, makes no
    connection (to a target with a live server) and builds no resolver; get_state() without
    try_to_connect changes nothing."""
    manual_resolver.update_addresses([greeter_server.address])
    async with (
        grpc_lite.insecure_channel(greeter_server.address, options=options()) as direct,
        grpc_lite.insecure_channel(manual_target(manual_resolver), options=options()) as manual,
    ):
        await always(
            lambda: (
                direct.get_state() is S.IDLE
                and manual.get_state() is S.IDLE
                and not server_connections(greeter_server)
            ),
            "IDLE with no connection",
            duration=0.3,
        )
        assert manual_resolver.build_count == 0
        assert direct.snapshot().subchannels == []
        assert direct.snapshot().state is S.IDLE


async def test_first_connection_is_idle_connecting_ready(greeter_server: RunningServer) -> None:
    """CONFORMANCE 68, 69: get_state(try_to_connect=True) starts connecting; a watcher using
    wait_for_state_change observes IDLE, CONNECTING, READY in that order, and a wait made
    in a stable READY state does not return by itself (100 ms)."""
    async with grpc_lite.insecure_channel(greeter_server.address, options=options()) as ch:
        seen = [ch.get_state()]

        async def watch() -> None:
            while seen[-1] is not S.READY:
                await ch.wait_for_state_change(seen[-1])
                seen.append(ch.get_state())

        watcher = asyncio.get_running_loop().create_task(watch())
        await asyncio.sleep(0)  # the watcher is now waiting in IDLE
        ch.get_state(try_to_connect=True)
        await asyncio.wait_for(watcher, 3.0)
        assert seen == [S.IDLE, S.CONNECTING, S.READY]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await ch.wait_for_state_change(S.READY)
        assert len(server_connections(greeter_server)) == 1


async def test_channel_ready_connects_from_idle(greeter_server: RunningServer) -> None:
    """CONFORMANCE 68 (API.md channel_ready): ``await channel_ready()`` on a new IDLE channel
    asks to connect and returns once READY, with one connection to the server."""
    async with grpc_lite.insecure_channel(greeter_server.address, options=options()) as ch:
        assert ch.get_state() is S.IDLE
        await asyncio.wait_for(ch.channel_ready(), 3.0)
        assert ch.get_state() is S.READY
        assert len(server_connections(greeter_server)) == 1


async def test_idle_timeout_closes_the_connection_and_next_rpc_reconnects(
    greeter_server: RunningServer,
) -> None:
    """CONFORMANCE 72: with ``grpc.client_idle_timeout_ms`` = 300, after the last RPC the
    channel goes IDLE and the server's connection is closed; the next RPC resolves and
    connects again (a new connection) and succeeds."""
    async with grpc_lite.insecure_channel(
        greeter_server.address, options=options(("grpc.client_idle_timeout_ms", IDLE_TIMEOUT_MS))
    ) as ch:
        assert await hello(ch) == greeter_server.address
        first = server_connections(greeter_server)
        assert len(first) == 1
        await wait_state(ch, S.IDLE, within=2.0)
        await eventually(
            lambda: not server_connections(greeter_server), "the connection to close", within=1.0
        )
        assert await hello(ch) == greeter_server.address
        assert ch.get_state() is S.READY
        second = server_connections(greeter_server)
        assert len(second) == 1 and second.isdisjoint(first)
        assert peer_ports(greeter_server) == first | second


async def test_open_stream_keeps_the_channel_out_of_idle(greeter_server: RunningServer) -> None:
    """CONFORMANCE 73: with a 300 ms idle timeout, a server-streaming RPC that stays silent
    for 1 s (the server sleeps before answering) keeps the channel READY on the same
    connection the whole time; the stream then completes, and only afterwards does the
    channel go IDLE."""
    server = greeter_server
    async with grpc_lite.insecure_channel(
        server.address, options=options(("grpc.client_idle_timeout_ms", IDLE_TIMEOUT_MS))
    ) as ch:
        await asyncio.wait_for(ch.channel_ready(), 3.0)
        conn = server_connections(server)
        server.servicer.delay = 1.0
        call = greeter(ch).SayHelloStreamReply(helloworld_pb2.HelloRequest(name="s"), timeout=5)

        async def read_all() -> list[str]:
            return [backend_of(reply.message) async for reply in call]

        reader = asyncio.get_running_loop().create_task(read_all())
        await always(
            lambda: ch.get_state() is S.READY and server_connections(server) == conn,
            "READY on the same connection while the stream is open",
            duration=0.8,
            interval=0.05,
        )
        assert not reader.done()
        assert await asyncio.wait_for(reader, 3.0) == [server.address] * 3
        assert server_connections(server) == conn
        server.servicer.delay = 0.0
        await wait_state(ch, S.IDLE, within=2.0)

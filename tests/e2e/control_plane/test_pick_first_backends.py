"""pick_first against real grpcio Greeter backends: the default policy (81), address order
and skipping a refused address (82), failover when the connected backend stops, and going
IDLE on connection loss without reconnecting until the next RPC (85)."""

from __future__ import annotations

import asyncio

import pytest

import grpc_lite
from tests.e2e.control_plane._util import (
    ReservedPort,
    S,
    always,
    eventually,
    hello,
    hello_counts,
    ipv4_target,
    options,
    peer_ports,
    server_connections,
)
from tests.servers.harness import RunningServer, ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]


async def test_pick_first_is_the_default_and_uses_the_first_address(
    greeter_backends: list[RunningServer],
) -> None:
    """CONFORMANCE 81, 82: with no service config and no ``grpc.lb_policy_name`` the policy
    is pick_first: every RPC goes to the first address of the list, and only that backend
    gets a connection."""
    a, b, c = greeter_backends
    async with grpc_lite.insecure_channel(
        ipv4_target([a.address, b.address, c.address]), options=options()
    ) as ch:
        counts = await hello_counts(ch, 20)
        assert dict(counts) == {a.address: 20}
        snap = ch.snapshot()
        assert snap.lb_policy == "pick_first"
        assert snap.state is S.READY
        assert sorted(snap.addresses) == sorted([a.address, b.address, c.address])
        assert len(server_connections(a)) == 1
        assert server_connections(b) == set()
        assert server_connections(c) == set()


async def test_pick_first_fails_over_when_its_backend_stops(
    greeter_backends: list[RunningServer],
) -> None:
    """CONFORMANCE 81, 82, 85: all calls go to the first backend; once it stops, the channel
    leaves READY, and the next RPC makes a new first pass (the first address now refuses)
    and succeeds on the second backend, where every later call goes too."""
    a, b, c = greeter_backends
    async with grpc_lite.insecure_channel(
        ipv4_target([a.address, b.address, c.address]), options=options()
    ) as ch:
        assert dict(await hello_counts(ch, 5)) == {a.address: 5}
        await a.stop_async(None)
        await eventually(lambda: ch.get_state() is not S.READY, "the channel to leave READY")
        # A fail-fast RPC waits through IDLE and CONNECTING (99, 100): the first pass is not
        # over until b has been tried, so it succeeds.
        assert await hello(ch) == b.address
        assert dict(await hello_counts(ch, 10)) == {b.address: 10}
        assert ch.get_state() is S.READY
        assert len(server_connections(b)) == 1
        assert server_connections(c) == set()


async def test_pick_first_skips_a_refused_address(greeter_server: RunningServer) -> None:
    """CONFORMANCE 82: pick_first over [refused port, live backend] connects in order, moves
    past the refused address and sends every RPC to the live one."""
    refused = ReservedPort()
    live = greeter_server
    try:
        async with grpc_lite.insecure_channel(
            ipv4_target([refused.address, live.address]), options=options()
        ) as ch:
            counts = await hello_counts(ch, 10)
            assert dict(counts) == {live.address: 10}
            assert ch.get_state() is S.READY
            assert ch.snapshot().lb_policy == "pick_first"
    finally:
        refused.release()


async def test_pick_first_goes_idle_on_connection_loss_and_waits_for_an_rpc(
    greeter_server: RunningServer, grpc_server_factory: ServerFactory
) -> None:
    """CONFORMANCE 85 (and 75): when the READY connection is lost, a pick_first channel
    reports IDLE (not TRANSIENT_FAILURE, not CONNECTING) within a short time; a server
    restarted on the same port sees no connection until the next RPC, which then succeeds
    over one new connection."""
    server = greeter_server
    assert server.port is not None
    async with grpc_lite.insecure_channel(server.address, options=options()) as ch:
        assert await hello(ch) == server.address
        first_conn = server_connections(server)
        assert len(first_conn) == 1
        seen: list[grpc_lite.ChannelConnectivity] = []

        async def watch() -> None:
            state = ch.get_state()
            while state is not S.SHUTDOWN:
                await ch.wait_for_state_change(state)
                state = ch.get_state()
                seen.append(state)

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await asyncio.sleep(0)
            await server.stop_async(None)
            await eventually(lambda: bool(seen), "the channel to leave READY", within=1.0)
            assert seen[0] is S.IDLE, seen

            restarted = await asyncio.to_thread(
                grpc_server_factory.greeter, "127.0.0.1", server.port
            )
            # No reconnect by itself: the restarted server sees no connection.
            await always(
                lambda: not server_connections(restarted) and ch.get_state() is S.IDLE,
                "no connection and the channel IDLE",
                duration=0.3,
            )
            assert seen == [S.IDLE], seen
            assert await hello(ch) == restarted.address
            assert ch.get_state() is S.READY
            new_conn = server_connections(restarted)
            assert len(new_conn) == 1
            assert new_conn.isdisjoint(first_conn)
            assert peer_ports(restarted) == new_conn
            assert restarted.recorder.count("SayHello") == 1
        finally:
            watcher.cancel()
            try:
                await watcher
            except asyncio.CancelledError:
                pass

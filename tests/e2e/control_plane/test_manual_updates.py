"""Resolver updates pushed through a registered ManualResolver, against real Greeter
backends A, B, C on 127.0.0.1, .2 and .3 (same port): address-list updates keep unchanged
connections (65, 86, 97), resolver errors after a good update change nothing (66), empty
lists are TRANSIENT_FAILURE (87, 98), a channel waiting for its first result is CONNECTING
(71), state pushed before the channel exists is what it starts with, and a policy switch
keeps serving (issue 3)."""

from __future__ import annotations

import asyncio
import time

import pytest

import grpc_lite
import grpc_lite.resolver
from grpc_lite.resolver import Address, ResolverState
from tests.e2e.control_plane._util import (
    PICK_FIRST,
    ROUND_ROBIN,
    SC,
    ConnectionSampler,
    S,
    always,
    eventually,
    every,
    hello,
    hello_counts,
    hello_error,
    manual_target,
    options,
    peer_ports,
    ready_addresses,
    server_connections,
    wait_state,
)
from tests.servers.harness import RunningServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]


async def test_round_robin_update_keeps_unchanged_subchannels(
    greeter_backends: list[RunningServer], manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 65, 97: round_robin over [A, B], then the resolver pushes [B, C]: B's
    connection is kept (B sees one connection in total, sampled throughout), C gets one,
    A's connection is closed, and calls then go to B and C only."""
    a, b, c = greeter_backends
    manual_resolver.update_addresses([a.address, b.address])
    async with grpc_lite.insecure_channel(
        manual_target(manual_resolver), options=options(), service_config=ROUND_ROBIN
    ) as ch:
        await hello(ch)
        await eventually(
            lambda: ready_addresses(ch) == sorted([a.address, b.address]), "A and B READY"
        )
        assert set(await hello_counts(ch, 6)) == {a.address, b.address}
        b_conn = server_connections(b)
        assert len(b_conn) == 1
        assert len(server_connections(a)) == 1
        async with ConnectionSampler([b, c]) as sampler:
            manual_resolver.update_addresses([b.address, c.address])
            await eventually(lambda: len(server_connections(c)) == 1, "a connection to C")
            await eventually(lambda: not server_connections(a), "A's connection to close")
            await eventually(
                lambda: ready_addresses(ch) == sorted([b.address, c.address]), "B and C READY"
            )
            counts = await hello_counts(ch, 20)
        assert set(counts) == {b.address, c.address}, counts
        assert 9 <= counts[b.address] <= 11, counts
        assert sampler.seen[b.address] == b_conn, "B saw a new connection"
        assert server_connections(b) == b_conn
        assert peer_ports(b) == b_conn
        assert len(sampler.seen[c.address]) == 1
        snap = ch.snapshot()
        assert sorted(snap.addresses) == sorted([b.address, c.address])
        assert sorted(sc.address for sc in snap.subchannels) == sorted([b.address, c.address])
        assert ch.get_state() is S.READY


async def test_pick_first_update_keeps_the_connected_address(
    greeter_backends: list[RunningServer], manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 65, 86: pick_first connected to A; pushing [B, A] keeps A's connection
    (no new connection anywhere, calls still go to A); pushing [B] connects to B, closes A's
    connection, and calls go to B."""
    a, b, _c = greeter_backends
    manual_resolver.update_addresses([a.address])
    async with grpc_lite.insecure_channel(manual_target(manual_resolver), options=options()) as ch:
        assert await hello(ch) == a.address
        a_conn = server_connections(a)
        assert len(a_conn) == 1
        async with ConnectionSampler([a, b]) as sampler:
            manual_resolver.update_addresses([b.address, a.address])
            await always(
                lambda: ch.get_state() is S.READY and server_connections(a) == a_conn,
                "READY on A's connection",
                duration=0.3,
            )
            assert dict(await hello_counts(ch, 5)) == {a.address: 5}
        assert sampler.seen[a.address] == a_conn
        assert sampler.seen[b.address] == set()

        manual_resolver.update_addresses([b.address])
        await eventually(lambda: len(server_connections(b)) == 1, "a connection to B")
        await eventually(lambda: not server_connections(a), "A's connection to close")
        await wait_state(ch, S.READY)
        assert dict(await hello_counts(ch, 5)) == {b.address: 5}
        assert ch.snapshot().addresses == [b.address]


async def test_resolver_error_after_a_good_update_changes_nothing(
    greeter_server: RunningServer, manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 66 (58): READY over [A]; the resolver then reports an error: the channel
    stays READY, keeps A's connection and its addresses, and RPCs still succeed. The error
    is visible in the snapshot (resolver_error or a resolver trace event)."""
    a = greeter_server
    manual_resolver.update_addresses([a.address])
    async with grpc_lite.insecure_channel(manual_target(manual_resolver), options=options()) as ch:
        assert await hello(ch) == a.address
        conn = server_connections(a)
        manual_resolver.report_error(RuntimeError("resolver exploded on purpose"))
        await always(lambda: ch.get_state() is S.READY, "READY", duration=0.3)
        assert dict(await hello_counts(ch, 5)) == {a.address: 5}
        assert server_connections(a) == conn
        snap = ch.snapshot()
        assert snap.addresses == [a.address]
        texts = [snap.resolver_error or ""] + [e.description for e in snap.events]
        assert any("exploded on purpose" in t for t in texts), texts


@pytest.mark.parametrize("policy", ["pick_first", "round_robin"])
async def test_empty_address_list_is_transient_failure(
    policy: str, greeter_server: RunningServer, manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 87 (pick_first), 98 (round_robin), 58: READY over [A], then the resolver
    pushes an empty list: the channel goes TRANSIENT_FAILURE, A's connection is closed and a
    fail-fast RPC fails UNAVAILABLE at once. Pushing [A] again recovers."""
    a = greeter_server
    manual_resolver.update_addresses([a.address])
    async with grpc_lite.insecure_channel(
        manual_target(manual_resolver), options=options(("grpc.lb_policy_name", policy))
    ) as ch:
        assert await hello(ch) == a.address
        manual_resolver.update_addresses([])
        await wait_state(ch, S.TRANSIENT_FAILURE, within=1.0)
        started = time.monotonic()
        err = await hello_error(ch, deadline=10.0)
        assert err.code() is SC.UNAVAILABLE, err
        assert time.monotonic() - started < 0.5
        await eventually(lambda: not server_connections(a), "A's connection to close")
        assert ch.snapshot().addresses == []

        manual_resolver.update_addresses([a.address])
        await wait_state(ch, S.READY, within=2.0)
        assert await hello(ch) == a.address


async def test_channel_is_connecting_until_the_first_resolver_result(
    greeter_server: RunningServer, manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 71, 99: with no state pushed yet, starting an RPC takes the channel out
    of IDLE to CONNECTING, and the fail-fast RPC waits (it is not failed) until the
    resolver's first result arrives; then it succeeds."""
    a = greeter_server
    async with grpc_lite.insecure_channel(manual_target(manual_resolver), options=options()) as ch:
        assert ch.get_state() is S.IDLE
        call = asyncio.get_running_loop().create_task(hello(ch, deadline=5.0))
        await wait_state(ch, S.CONNECTING, within=1.0)
        await always(
            lambda: ch.get_state() is S.CONNECTING and not call.done(),
            "CONNECTING with the RPC waiting",
            duration=0.3,
        )
        manual_resolver.update_addresses([a.address])
        assert await asyncio.wait_for(call, 3.0) == a.address
        assert ch.get_state() is S.READY


async def test_state_pushed_before_the_channel_is_what_it_starts_with(
    greeter_backends: list[RunningServer], manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """API.md (ManualResolver), CONFORMANCE 65: addresses and service config pushed before
    the channel is built are the channel's first state: it uses round_robin from that config
    over exactly those addresses (B and C, never A)."""
    a, b, c = greeter_backends
    manual_resolver.update_addresses([b.address, c.address], service_config=ROUND_ROBIN)
    async with grpc_lite.insecure_channel(manual_target(manual_resolver), options=options()) as ch:
        await hello(ch)
        await eventually(
            lambda: ready_addresses(ch) == sorted([b.address, c.address]), "B and C READY"
        )
        counts = await hello_counts(ch, 10)
        assert counts == {b.address: 5, c.address: 5}, counts
        snap = ch.snapshot()
        assert snap.lb_policy == "round_robin"
        assert sorted(snap.addresses) == sorted([b.address, c.address])
        assert a.recorder.count() == 0
        assert server_connections(a) == set()


async def test_switching_policy_keeps_serving(
    greeter_backends: list[RunningServer], manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """Issue 3 ("switching policy on a new config keeps serving"), CONFORMANCE 65: calls
    every 10 ms while the resolver pushes the same three addresses with a pick_first config,
    then a round_robin config, then pick_first again. No call fails; under pick_first every
    call goes to the first address, under round_robin all three backends serve."""
    addresses = tuple(Address(b.address) for b in greeter_backends)
    manual_resolver.update_state(ResolverState(addresses, service_config=PICK_FIRST))
    results: list[str | grpc_lite.RpcError] = []
    stop = asyncio.Event()

    async def caller(ch: grpc_lite.Channel) -> None:
        async for i in every(0.01, 1000):
            if stop.is_set():
                return
            try:
                results.append(await hello(ch, f"c{i}", deadline=2.0))
            except grpc_lite.RpcError as exc:
                results.append(exc)

    async with grpc_lite.insecure_channel(manual_target(manual_resolver), options=options()) as ch:
        assert await hello(ch) == greeter_backends[0].address
        task = asyncio.get_running_loop().create_task(caller(ch))
        try:
            await eventually(lambda: len(results) >= 10, "calls under pick_first")
            assert ch.snapshot().lb_policy == "pick_first"
            assert set(results) == {greeter_backends[0].address}, results

            mark = len(results)
            manual_resolver.update_state(ResolverState(addresses, service_config=ROUND_ROBIN))
            await eventually(
                lambda: len(set(results[mark:])) == 3, "round_robin to reach all backends"
            )
            assert ch.snapshot().lb_policy == "round_robin"

            manual_resolver.update_state(ResolverState(addresses, service_config=PICK_FIRST))
            await eventually(lambda: ch.snapshot().lb_policy == "pick_first", "pick_first again")
            # Skip the call that may have been picked by round_robin just before the switch.
            mark = len(results) + 1
            await eventually(lambda: len(results) >= mark + 10, "calls under pick_first again")
            assert set(results[mark:]) == {greeter_backends[0].address}, results[mark:]
        finally:
            stop.set()
            await asyncio.wait_for(task, 3.0)
    errors = [r for r in results if isinstance(r, grpc_lite.RpcError)]
    assert errors == [], errors


async def test_rpc_in_flight_on_a_removed_address_completes(
    greeter_backends: list[RunningServer], manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 65, 86 (the removed subchannel is shut down) together with 95/102 (only
    RPCs on a *lost* connection may fail): an RPC already running on A when the resolver
    replaces [A] by [B] still completes on A, as in grpc-go, whose subchannel removal
    closes the transport gracefully (addrConn.tearDown(errConnDrain) -> GracefulClose).
    Afterwards A's connection is closed and new RPCs go to B."""
    a, b, _c = greeter_backends
    manual_resolver.update_addresses([a.address])
    async with grpc_lite.insecure_channel(manual_target(manual_resolver), options=options()) as ch:
        assert await hello(ch) == a.address
        a.servicer.delay = 0.5
        call = asyncio.get_running_loop().create_task(hello(ch, "slow"))
        await eventually(lambda: a.recorder.count() == 2, "the slow RPC to reach A")
        manual_resolver.update_addresses([b.address])
        assert await asyncio.wait_for(call, 3.0) == a.address
        await eventually(lambda: not server_connections(a), "A's connection to close")
        assert await hello(ch) == b.address


async def test_rpc_in_flight_during_a_policy_switch_completes(
    greeter_backends: list[RunningServer], manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """Issue 3 ("switching policy on a new config keeps serving"), CONFORMANCE 65: an RPC
    running on A under pick_first when the resolver switches the config to round_robin (same
    addresses) still completes; the old policy's subchannel is drained, not cut (grpc-go:
    graceful switch, then GracefulClose of the old subchannel's transport)."""
    a, b, c = greeter_backends
    addresses = tuple(Address(s.address) for s in greeter_backends)
    manual_resolver.update_state(ResolverState(addresses, service_config=PICK_FIRST))
    async with grpc_lite.insecure_channel(manual_target(manual_resolver), options=options()) as ch:
        assert await hello(ch) == a.address
        a.servicer.delay = 0.5
        call = asyncio.get_running_loop().create_task(hello(ch, "slow"))
        await eventually(lambda: a.recorder.count() == 2, "the slow RPC to reach A")
        a.servicer.delay = 0.0
        manual_resolver.update_state(ResolverState(addresses, service_config=ROUND_ROBIN))
        assert await asyncio.wait_for(call, 3.0) == a.address
        await eventually(lambda: ch.snapshot().lb_policy == "round_robin", "round_robin")
        await eventually(lambda: len(ready_addresses(ch)) == 3, "three READY subchannels")
        assert set(await hello_counts(ch, 6)) == {a.address, b.address, c.address}

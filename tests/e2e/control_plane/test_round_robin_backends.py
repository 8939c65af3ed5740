"""round_robin against real grpcio Greeter backends on 127.0.0.1, .2 and .3 (same port):
selection and eager connections (90), even spreading (91), failing-backend messages (96),
IDLE subchannels reconnecting at once (94) and duplicate addresses."""

from __future__ import annotations

import time
from collections import Counter

import pytest

import grpc_lite
import grpc_lite.resolver
from tests.e2e.control_plane._util import (
    ROUND_ROBIN,
    SC,
    ReservedPort,
    S,
    always,
    eventually,
    hello,
    hello_counts,
    hello_error,
    ipv4_target,
    manual_target,
    options,
    peer_ports,
    ready_addresses,
    server_connections,
    subchannels_in,
)
from tests.servers.harness import RunningServer, ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]


@pytest.mark.parametrize("via", ["ipv4", "manual"])
async def test_round_robin_spreads_evenly_over_three_backends(
    via: str,
    greeter_backends: list[RunningServer],
    manual_resolver: grpc_lite.resolver.ManualResolver,
) -> None:
    """CONFORMANCE 90, 91 (and 63, 65): with ``loadBalancingConfig: [{round_robin: {}}]``
    over three backends (an ``ipv4:`` list, or a ManualResolver), every backend accepts a
    connection soon after the first RPC, 30 calls give each backend 10 +- 1, and the
    snapshot shows lb_policy round_robin with three READY subchannels."""
    addresses = [b.address for b in greeter_backends]
    if via == "ipv4":
        target = ipv4_target(addresses)
    else:
        manual_resolver.update_addresses(addresses)
        target = manual_target(manual_resolver)
    async with grpc_lite.insecure_channel(
        target, options=options(), service_config=ROUND_ROBIN
    ) as ch:
        first = await hello(ch)
        assert first in addresses
        # 90: round_robin connects to every address eagerly, not only to the one picked.
        await eventually(
            lambda: all(len(server_connections(b)) == 1 for b in greeter_backends),
            "one connection accepted by every backend",
            within=2.0,
        )
        await eventually(
            lambda: ready_addresses(ch) == sorted(addresses), "three READY subchannels"
        )
        counts = await hello_counts(ch, 30)
        assert set(counts) == set(addresses), counts
        for address in addresses:
            assert 9 <= counts[address] <= 11, counts
        snap = ch.snapshot()
        assert snap.lb_policy == "round_robin"
        assert snap.state is S.READY
        assert sorted(snap.addresses) == sorted(addresses)
        assert sorted(sc.address for sc in snap.subchannels) == sorted(addresses)
        assert all(sc.state is S.READY for sc in snap.subchannels)
        # Still one connection per backend: calls reuse them.
        assert all(len(server_connections(b)) == 1 for b in greeter_backends)


async def test_round_robin_first_pick_is_not_always_the_same(
    greeter_backends: list[RunningServer],
) -> None:
    """CONFORMANCE 91: each round_robin picker starts at a random index, so over several
    fresh channels (each with all three backends READY) the first RPC does not always go to
    the same backend (chance of a false failure with 8 channels: 3^-7)."""
    target = ipv4_target([b.address for b in greeter_backends])
    firsts: Counter[str] = Counter()
    for _ in range(8):
        async with grpc_lite.insecure_channel(
            target, options=options(), service_config=ROUND_ROBIN
        ) as ch:
            ch.get_state(try_to_connect=True)
            await eventually(lambda: len(ready_addresses(ch)) == 3, "three READY subchannels")
            firsts[await hello(ch)] += 1
    assert len(firsts) >= 2, firsts


@pytest.mark.parametrize("policy", ["pick_first", "round_robin"])
async def test_all_backends_refused_fails_fast_naming_the_error(policy: str) -> None:
    """CONFORMANCE 96, 100 (pick_first: 84): with every address refused, a fail-fast RPC
    with a 10 s deadline fails UNAVAILABLE in well under a second, and its message carries
    the last connection error (the connect failure, naming the address)."""
    ports = [ReservedPort(), ReservedPort()]
    try:
        target = ipv4_target([p.address for p in ports])
        async with grpc_lite.insecure_channel(
            target, options=options(("grpc.lb_policy_name", policy))
        ) as ch:
            start = time.monotonic()
            err = await hello_error(ch, deadline=10)
            took = time.monotonic() - start
            assert err.code() is SC.UNAVAILABLE, err
            assert took < 1.0, f"fail-fast RPC took {took:.2f} s"
            details = err.details() or ""
            assert any(
                text in details.lower()
                for text in ("refused", "connect call failed", "failed to connect")
            ), details
            assert any(str(p.port) in details for p in ports), details
            assert ch.get_state() is S.TRANSIENT_FAILURE
            assert ch.snapshot().lb_policy == policy
    finally:
        for p in ports:
            p.release()


async def test_round_robin_reconnects_an_idle_subchannel_at_once(
    greeter_backends: list[RunningServer], grpc_server_factory: ServerFactory
) -> None:
    """CONFORMANCE 94 (and 95): when one of three backends stops, later RPCs go to the other
    two only; when it is restarted on the same port, round_robin reconnects to it by itself:
    it sees a new connection within 2 s with no RPC sent."""
    a, b, c = greeter_backends
    async with grpc_lite.insecure_channel(
        ipv4_target([s.address for s in greeter_backends]),
        options=options(),
        service_config=ROUND_ROBIN,
    ) as ch:
        await hello(ch)
        await eventually(lambda: len(ready_addresses(ch)) == 3, "three READY subchannels")
        old_b = server_connections(b)
        assert len(old_b) == 1

        await b.stop_async(None)
        await eventually(
            lambda: b.address not in ready_addresses(ch), "b's subchannel to leave READY"
        )
        counts = await hello_counts(ch, 10)
        assert set(counts) == {a.address, c.address}, counts
        assert ch.get_state() is S.READY

        b2 = grpc_server_factory.greeter(b.host or "", b.port or 0)
        calls_before = sum(s.recorder.count() for s in (a, b2, c))
        await eventually(
            lambda: len(server_connections(b2)) == 1,
            "the restarted backend to get a connection with no RPC sent",
            within=2.0,
        )
        assert server_connections(b2).isdisjoint(old_b)
        await eventually(lambda: b.address in ready_addresses(ch), "b's subchannel READY again")
        assert sum(s.recorder.count() for s in (a, b2, c)) == calls_before
        counts = await hello_counts(ch, 9)
        assert set(counts) == {a.address, b.address, c.address}, counts


async def test_duplicate_addresses_give_separate_connections(
    greeter_server: RunningServer, manual_resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 97 / issue 3 ("duplicate addresses give separate connections", the seed's
    trick): a ManualResolver pushing [A, A, A] under round_robin makes three connections to
    A, three READY subchannels, and 30 calls are spread over the three connections."""
    a = greeter_server
    manual_resolver.update_addresses([a.address, a.address, a.address])
    async with grpc_lite.insecure_channel(
        manual_target(manual_resolver), options=options(), service_config=ROUND_ROBIN
    ) as ch:
        await hello(ch)
        await eventually(
            lambda: len(server_connections(a)) == 3, "three connections to the one backend"
        )
        await eventually(lambda: len(subchannels_in(ch, S.READY)) == 3, "three READY subchannels")
        snap = ch.snapshot()
        assert [sc.address for sc in snap.subchannels] == [a.address] * 3
        a.recorder.clear()
        counts = await hello_counts(ch, 30)
        assert counts == Counter({a.address: 30})
        per_connection = Counter(int(call.peer.rsplit(":", 1)[1]) for call in a.recorder.calls)
        assert set(per_connection) == server_connections(a), per_connection
        assert all(9 <= n <= 11 for n in per_connection.values()), per_connection
        assert peer_ports(a) == server_connections(a)


async def test_round_robin_keeps_serving_while_one_backend_is_down(
    greeter_backends: list[RunningServer],
) -> None:
    """CONFORMANCE 93, 95: with one backend gone the channel stays READY (round_robin never
    reports CONNECTING while a subchannel retries) and no fail-fast RPC fails."""
    a, b, c = greeter_backends
    async with grpc_lite.insecure_channel(
        ipv4_target([s.address for s in greeter_backends]),
        options=options(),
        service_config=ROUND_ROBIN,
    ) as ch:
        await hello(ch)
        await eventually(lambda: len(ready_addresses(ch)) == 3, "three READY subchannels")
        await c.stop_async(None)
        await eventually(lambda: c.address not in ready_addresses(ch), "c's subchannel to drop")
        await always(lambda: ch.get_state() is S.READY, "channel READY", duration=0.6)
        counts = await hello_counts(ch, 10)
        assert set(counts) == {a.address, b.address}, counts
        # c's subchannel keeps retrying on its backoff, and is not READY.
        assert c.address not in ready_addresses(ch)

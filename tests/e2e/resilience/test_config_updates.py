"""Service configs from the resolver: choice and invalid updates (CONFORMANCE 143, 144),
observed through the retry policy they carry (how many attempts a failing server sees).

A ManualResolver under a fresh scheme pushes addresses and config text; the channel's
``service_config=`` is the application's default config.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

import grpc_lite
import grpc_lite.resolver
from tests.e2e.resilience._util import (
    UNARY,
    eventually,
    fail,
    flaky,
    pause,
    retry_policy,
    service_config,
    start_flaky,
)
from tests.servers.harness import ServerFactory

S = grpc_lite.ChannelConnectivity
SC = grpc_lite.StatusCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

#: retryPolicy.maxAttempts 1 makes the whole config invalid (CONFORMANCE 152).
INVALID = service_config(retry={**retry_policy(3), "maxAttempts": 1})


@pytest.fixture
def resolver() -> Iterator[grpc_lite.resolver.ManualResolver]:
    scheme = f"resil{uuid.uuid4().hex[:10]}"
    r = grpc_lite.resolver.ManualResolver(scheme)
    grpc_lite.resolver.register(r)
    try:
        yield r
    finally:
        grpc_lite.resolver.unregister_for_testing(scheme)


async def attempts_of_failing_call(ch: grpc_lite.Channel, server: object) -> int:
    servicer = flaky(server.servicer)  # type: ignore[attr-defined]
    servicer.reset()
    with pytest.raises(grpc_lite.RpcError) as info:
        await ch.unary_unary(UNARY)(b"x", timeout=5)
    assert info.value.code() is SC.UNAVAILABLE
    await pause(0.1)
    return servicer.count()


async def test_invalid_update_keeps_last_good_config(
    grpc_server_factory: ServerFactory, resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 144 (TRICKY): the resolver gives server X with a valid config A
    (maxAttempts 3), then server Y with an invalid config B: the channel keeps config A (a
    failing call on Y still makes 3 attempts), stays READY, uses the new address list from
    the same update, and records the rejected config as a trace event."""
    x = start_flaky(grpc_server_factory, lambda n: fail())
    y = start_flaky(grpc_server_factory, lambda n: fail())
    resolver.update_addresses([x.address], service_config=service_config(retry=retry_policy(3)))
    async with grpc_lite.insecure_channel(f"{resolver.scheme}:///svc") as ch:
        await asyncio.wait_for(ch.channel_ready(), 5)  # config A is in use
        assert await attempts_of_failing_call(ch, x) == 3
        events_before = len(ch.snapshot().events)
        resolver.update_addresses([y.address], service_config=INVALID)
        await eventually(lambda: ch.snapshot().addresses == [y.address], "Y resolved")
        assert await attempts_of_failing_call(ch, y) == 3
        assert ch.get_state() is S.READY
        new_events = ch.snapshot().events[events_before:]
        assert any("config" in e.description.lower() for e in new_events), new_events


async def test_fresh_channel_with_invalid_config_fails(
    grpc_server_factory: ServerFactory, resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 144 (TRICKY): a new channel whose first resolver result carries an invalid
    config, with no default config, treats it as a resolution failure: TRANSIENT_FAILURE,
    fail-fast RPCs fail UNAVAILABLE and nothing reaches the server."""
    x = start_flaky(grpc_server_factory, lambda n: fail())
    resolver.update_addresses([x.address], service_config=INVALID)
    async with grpc_lite.insecure_channel(f"{resolver.scheme}:///svc") as ch:
        ch.get_state(try_to_connect=True)
        await eventually(lambda: ch.get_state() is S.TRANSIENT_FAILURE, "channel TF")
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(b"x", timeout=2)
        assert info.value.code() is SC.UNAVAILABLE
    assert flaky(x.servicer).count() == 0


async def test_fresh_channel_with_invalid_config_uses_default(
    grpc_server_factory: ServerFactory, resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 144 (TRICKY): the same invalid first config, but the application gave a
    default config (maxAttempts 2): the default applies, so a failing call makes 2
    attempts."""
    x = start_flaky(grpc_server_factory, lambda n: fail())
    resolver.update_addresses([x.address], service_config=INVALID)
    async with grpc_lite.insecure_channel(
        f"{resolver.scheme}:///svc", service_config=service_config(retry=retry_policy(2))
    ) as ch:
        assert await attempts_of_failing_call(ch, x) == 2


async def test_resolver_config_wins_over_default(
    grpc_server_factory: ServerFactory, resolver: grpc_lite.resolver.ManualResolver
) -> None:
    """CONFORMANCE 143: the resolver's config (maxAttempts 4) is used over the application's
    default (maxAttempts 2); when the resolver then has no config, the default applies."""
    x = start_flaky(grpc_server_factory, lambda n: fail())
    from_resolver = service_config(retry=retry_policy(4))
    default = service_config(retry=retry_policy(2))
    resolver.update_addresses([x.address], service_config=from_resolver)
    async with grpc_lite.insecure_channel(
        f"{resolver.scheme}:///svc", service_config=default
    ) as ch:
        await asyncio.wait_for(ch.channel_ready(), 5)
        assert await attempts_of_failing_call(ch, x) == 4
        assert ch.snapshot().service_config == from_resolver
        resolver.update_addresses([x.address])
        await eventually(lambda: ch.snapshot().service_config == default, "default applied")
        assert await attempts_of_failing_call(ch, x) == 2


@pytest.mark.parametrize("with_default", [False, True], ids=["no-default", "default"])
async def test_first_rpc_uses_resolver_config(
    grpc_server_factory: ServerFactory,
    resolver: grpc_lite.resolver.ManualResolver,
    with_default: bool,
) -> None:
    """CONFORMANCE 143: the resolver's config is the one used, including by the very first
    RPC on a fresh (IDLE) channel: it must wait for the first resolver result before its
    method config is chosen (grpc-go: newClientStream waits for the resolved state before
    GetMethodConfig). Resolver config maxAttempts 3 (default, when given, maxAttempts 2):
    the first failing RPC makes 3 attempts."""
    x = start_flaky(grpc_server_factory, lambda n: fail())
    resolver.update_addresses([x.address], service_config=service_config(retry=retry_policy(3)))
    default = service_config(retry=retry_policy(2)) if with_default else None
    async with grpc_lite.insecure_channel(
        f"{resolver.scheme}:///svc", service_config=default
    ) as ch:
        assert ch.get_state() is S.IDLE
        assert await attempts_of_failing_call(ch, x) == 3

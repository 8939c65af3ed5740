"""A6 retries against grpcio servers that fail on purpose (CONFORMANCE section L, 104-119).

The ``resil.Flaky`` server (tests/e2e/resilience/_util.py) counts every attempt it receives,
with its arrival time and its ``grpc-previous-rpc-attempts`` header, so these tests observe
retries from the server's side: how many attempts, when, and with which headers.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator

import grpc
import pytest

import grpc_lite
from tests.e2e.resilience._util import (
    CLIENT_STREAM,
    OK,
    SERVER_STREAM,
    UNARY,
    Behaviour,
    PerCallPlan,
    eventually,
    fail,
    fail_first,
    flaky,
    ipv4_target,
    pause,
    ready_addresses,
    retry_policy,
    service_config,
    start_flaky,
)
from tests.servers.harness import ServerFactory

SC = grpc_lite.StatusCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

ALWAYS_UNAVAILABLE = lambda n: fail()  # noqa: E731


async def unary_error(call: object) -> grpc_lite.RpcError:
    try:
        result = await call  # type: ignore[misc]
    except grpc_lite.RpcError as exc:
        return exc
    raise AssertionError(f"the RPC unexpectedly succeeded: {result!r}")


# --------------------------------------------------------------------------- 104-107


async def test_no_policy_means_one_attempt(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 104: without a retryPolicy (no service config, or one whose policy names
    another service) a server failing UNAVAILABLE sees exactly 1 attempt."""
    server = start_flaky(grpc_server_factory, ALWAYS_UNAVAILABLE)
    other = service_config(retry=retry_policy(5), service="some.OtherService")
    for config in (None, other):
        flaky(server.servicer).reset()
        async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
            err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
            assert err.code() is SC.UNAVAILABLE
        assert flaky(server.servicer).count() == 1, config


async def test_retried_until_ok(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 105: the first 2 attempts abort UNAVAILABLE (Trailers-Only); with
    maxAttempts 3 the call succeeds on attempt 3 and the server saw exactly 3 attempts."""
    server = start_flaky(grpc_server_factory, fail_first(2))
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 3"
    assert flaky(server.servicer).count() == 3


async def test_max_attempts_exceeded(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 105: the first 2 attempts fail UNAVAILABLE; with maxAttempts 2 the call
    fails UNAVAILABLE after exactly 2 attempts."""
    server = start_flaky(grpc_server_factory, fail_first(2))
    config = service_config(retry=retry_policy(2))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
        assert err.code() is SC.UNAVAILABLE
        await pause(0.2)  # no late third attempt
    assert flaky(server.servicer).count() == 2


async def test_non_retryable_status_not_retried(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 106: INVALID_ARGUMENT with retryableStatusCodes [UNAVAILABLE] is returned
    at once: 1 attempt."""
    server = start_flaky(grpc_server_factory, lambda n: fail(grpc.StatusCode.INVALID_ARGUMENT))
    config = service_config(retry=retry_policy(5))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
        assert err.code() is SC.INVALID_ARGUMENT
        await pause(0.2)
    assert flaky(server.servicer).count() == 1


async def test_max_attempts_clamped_to_five(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 107 (TRICKY): maxAttempts 10 is clamped to 5, not rejected: an
    always-UNAVAILABLE server sees exactly 5 attempts."""
    server = start_flaky(grpc_server_factory, ALWAYS_UNAVAILABLE)
    config = service_config(retry=retry_policy(10))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
        assert err.code() is SC.UNAVAILABLE
        await pause(0.3)
    assert flaky(server.servicer).count() == 5


# --------------------------------------------------------------------------- 108 backoff


async def test_backoff_gaps_follow_a6_jitter(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 108 (TRICKY): initialBackoff 0.2 s, multiplier 2, maxBackoff 0.5 s,
    maxAttempts 4, always UNAVAILABLE: the gaps between attempt arrivals are
    min(0.2 x 2^(n-1), 0.5) x U(0.8, 1.2), i.e. in [0.16, 0.24], [0.32, 0.48] and
    [0.40, 0.60] s (+100 ms tolerance above; the obsolete U(0, x) rule would go below)."""
    server = start_flaky(grpc_server_factory, ALWAYS_UNAVAILABLE)
    config = service_config(retry=retry_policy(4, initial=0.2, maximum=0.5, multiplier=2))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=10))
        assert err.code() is SC.UNAVAILABLE
    times = [a.at for a in flaky(server.servicer).attempts]
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, (low, high) in zip(gaps, [(0.16, 0.24), (0.32, 0.48), (0.40, 0.60)], strict=True):
        assert low <= gap <= high + 0.1, gaps


# --------------------------------------------------------------------------- 109 commit


async def test_response_headers_commit_the_call(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 109 (TRICKY): a handler that sends its response headers and then aborts
    UNAVAILABLE (headers + trailers on the wire) has committed the call: 1 attempt, the
    client sees UNAVAILABLE. The same failure as Trailers-Only (plain abort) is retried."""
    server = start_flaky(grpc_server_factory, lambda n: fail(send_headers=True))
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
        assert err.code() is SC.UNAVAILABLE
        await pause(0.2)
        assert flaky(server.servicer).count() == 1

        flaky(server.servicer).reset(fail_first(1))  # Trailers-Only this time
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 2"
    assert flaky(server.servicer).count() == 2


# --------------------------------------------------------------------------- 112 pushback


async def test_pushback_delays_the_retry_exactly(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 112 (TRICKY): attempt 1 fails with grpc-retry-pushback-ms 300 (policy
    backoff only 0.1 s): attempt 2 comes 300-400 ms later (the pushback, no jitter). Attempt
    2 fails without pushback: the backoff count restarted, so gap 2 is initialBackoff x
    U(0.8, 1.2) = [0.08, 0.12] s, not 0.1 x 4 (multiplier 4) x U(0.8, 1.2)."""
    plan = lambda n: fail(pushback="300") if n == 1 else (fail() if n == 2 else OK)  # noqa: E731
    server = start_flaky(grpc_server_factory, plan)
    config = service_config(retry=retry_policy(3, initial=0.1, maximum=1.0, multiplier=4))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 3"
    times = [a.at for a in flaky(server.servicer).attempts]
    assert len(times) == 3
    gap1, gap2 = times[1] - times[0], times[2] - times[1]
    assert 0.3 <= gap1 <= 0.4, (gap1, gap2)
    assert 0.08 <= gap2 <= 0.12 + 0.1, (gap1, gap2)


@pytest.mark.parametrize("value", ["-1", "abc"])
async def test_pushback_dont_retry(grpc_server_factory: ServerFactory, value: str) -> None:
    """CONFORMANCE 112 (TRICKY): a negative or unparseable grpc-retry-pushback-ms means "do
    not retry": 1 attempt, although UNAVAILABLE is retryable and attempts remain. (The
    "more than one value" case cannot be produced with grpcio: its server sends only the
    last value of a repeated grpc-retry-pushback-ms trailer, Observed with 1.85.1.)"""
    server = start_flaky(grpc_server_factory, lambda n: fail(pushback=value))
    config = service_config(retry=retry_policy(5))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
        assert err.code() is SC.UNAVAILABLE
        await pause(0.2)
    assert flaky(server.servicer).count() == 1


# --------------------------------------------------------------------------- 113, 117


async def test_previous_rpc_attempts_header(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 113: grpc-previous-rpc-attempts is absent on the first attempt, then "1"
    on the second and "2" on the third."""
    server = start_flaky(grpc_server_factory, fail_first(2))
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        await ch.unary_unary(UNARY)(b"x", timeout=5)
    assert [a.previous for a in flaky(server.servicer).attempts] == [None, "1", "2"]


async def test_final_status_is_the_last_attempts(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 117: attempt k fails UNAVAILABLE with message "k" and trailer
    x-attempt: k; with maxAttempts 3 the application sees message "3" and x-attempt "3"."""
    server = start_flaky(
        grpc_server_factory,
        lambda n: fail(details=str(n), trailers=(("x-attempt", str(n)),)),
    )
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
    assert err.code() is SC.UNAVAILABLE
    assert err.details() == "3"
    assert err.trailing_metadata().get("x-attempt") == "3"
    assert flaky(server.servicer).count() == 3


# --------------------------------------------------------------------------- 114-116, 118


async def test_retry_picks_another_backend(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 114: round_robin over [A always UNAVAILABLE, B healthy], maxAttempts 2:
    each retry goes through the picker again, so once both subchannels are READY all 20
    calls succeed (from B) although A received attempts too."""
    a = start_flaky(grpc_server_factory, ALWAYS_UNAVAILABLE)
    b = start_flaky(grpc_server_factory, lambda n: OK)
    config = service_config(retry=retry_policy(2), lb="round_robin")
    async with grpc_lite.insecure_channel(
        ipv4_target([a.address, b.address]), service_config=config
    ) as ch:
        ch.get_state(try_to_connect=True)
        await eventually(lambda: len(ready_addresses(ch)) == 2, "both subchannels READY")
        for _ in range(20):
            reply = await ch.unary_unary(UNARY)(b"x", timeout=5)
            assert reply.startswith(b"attempt ")
    assert flaky(b.servicer).count() == 20
    assert flaky(a.servicer).count() >= 5  # the picker did send first attempts to A


async def test_deadline_cuts_the_backoff_short(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 115: initialBackoff 5 s and a 1 s deadline: the call ends
    DEADLINE_EXCEEDED at about 1 s, in the middle of the backoff (1 attempt)."""
    server = start_flaky(grpc_server_factory, ALWAYS_UNAVAILABLE)
    config = service_config(retry=retry_policy(3, initial=5, maximum=5))
    loop = asyncio.get_running_loop()
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        start = loop.time()
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=1.0))
        elapsed = loop.time() - start
    assert err.code() is SC.DEADLINE_EXCEEDED
    assert 0.9 <= elapsed <= 1.3, elapsed
    assert flaky(server.servicer).count() == 1


async def test_pick_failure_goes_through_the_retry_policy() -> None:
    """CONFORMANCE 116: a refused port, fail-fast, retryPolicy on UNAVAILABLE with
    maxAttempts 3, initialBackoff 0.2 s, multiplier 2: the UNAVAILABLE from the pick (channel
    in TRANSIENT_FAILURE) is retried, so the call takes about 0.2 + 0.4 s (x U(0.8, 1.2)
    each: 0.48-0.72 s, plus connect time) before it fails UNAVAILABLE."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = service_config(retry=retry_policy(3, initial=0.2, maximum=1.0, multiplier=2))
    loop = asyncio.get_running_loop()
    async with grpc_lite.insecure_channel(f"127.0.0.1:{port}", service_config=config) as ch:
        start = loop.time()
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
        elapsed = loop.time() - start
    assert err.code() is SC.UNAVAILABLE
    assert 0.48 <= elapsed <= 0.72 + 0.2, elapsed


async def test_enable_retries_zero_disables_the_policy(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 118: with grpc.enable_retries=0 the retryPolicy is ignored: 1 attempt.
    The same channel config with retries on makes 3."""
    server = start_flaky(grpc_server_factory, ALWAYS_UNAVAILABLE)
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(
        server.address, options=[("grpc.enable_retries", 0)], service_config=config
    ) as ch:
        err = await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
        assert err.code() is SC.UNAVAILABLE
        await pause(0.2)
    assert flaky(server.servicer).count() == 1
    flaky(server.servicer).reset()
    async with grpc_lite.insecure_channel(
        server.address, options=[("grpc.enable_retries", 1)], service_config=config
    ) as ch:
        await unary_error(ch.unary_unary(UNARY)(b"x", timeout=5))
    assert flaky(server.servicer).count() == 3


# --------------------------------------------------------------------------- 110, 111, 119


async def _chunks(n: int, size: int) -> AsyncIterator[bytes]:
    for i in range(n):
        yield bytes([i % 251]) * size


async def test_client_stream_replayed_identically(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 110, 111: a client-streaming call of 10 x 1 KiB (10 KiB, under the 256 KiB
    replay limit); the handler reads everything, then the first attempt fails UNAVAILABLE.
    The retry replays every message in order and the half-close: the second attempt sees
    exactly the same 10 messages, and the call succeeds."""
    server = start_flaky(grpc_server_factory, fail_first(1))
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        reply = await ch.stream_unary(CLIENT_STREAM)(_chunks(10, 1024), timeout=5)
    assert reply == b"attempt 2"
    attempts = flaky(server.servicer).attempts
    assert len(attempts) == 2
    expected = [bytes([i]) * 1024 for i in range(10)]
    assert attempts[0].messages == expected
    assert attempts[1].messages == expected
    assert attempts[1].previous == "1"


async def test_client_stream_over_replay_limit_commits(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 110: 30 x 10 KiB (300 KiB) exceeds the 256 KiB per-RPC replay buffer, so
    the call commits while sending: the first attempt's UNAVAILABLE (after reading all 30
    messages) is not retried: 1 attempt."""
    server = start_flaky(grpc_server_factory, fail_first(1))
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        err = await unary_error(ch.stream_unary(CLIENT_STREAM)(_chunks(30, 10 * 1024), timeout=5))
        assert err.code() is SC.UNAVAILABLE
        await pause(0.2)
    attempts = flaky(server.servicer).attempts
    assert len(attempts) == 1
    assert len(attempts[0].messages) == 30


@pytest.mark.parametrize("warm", [True, False], ids=["ready-channel", "fresh-channel"])
async def test_per_rpc_retry_buffer_option(grpc_server_factory: ServerFactory, warm: bool) -> None:
    """CONFORMANCE 110: the per-RPC buffer limit is an option
    (grpc.per_rpc_retry_buffer_size): at 4 KiB, a 10 x 1 KiB client stream commits and its
    first attempt's UNAVAILABLE is not retried (1 attempt). Both on a READY channel (the
    first attempt starts at once) and on a fresh IDLE one, where all 10 messages are written
    while the first pick is still waiting for the connection."""
    server = start_flaky(grpc_server_factory, fail_first(1))
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(
        server.address,
        options=[("grpc.per_rpc_retry_buffer_size", 4096)],
        service_config=config,
    ) as ch:
        if warm:
            await asyncio.wait_for(ch.channel_ready(), 5)
        err = await unary_error(ch.stream_unary(CLIENT_STREAM)(_chunks(10, 1024), timeout=5))
        assert err.code() is SC.UNAVAILABLE
        await pause(0.2)
    assert flaky(server.servicer).count() == 1


async def test_server_stream_message_commits(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 119: a server-streaming handler sends 1 message and then fails
    UNAVAILABLE: the client gets that 1 message, then UNAVAILABLE, with no retry (1 attempt,
    no duplicate message)."""
    server = start_flaky(grpc_server_factory, lambda n: fail(stream_messages=1))
    config = service_config(retry=retry_policy(3))
    got: list[bytes] = []
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        call = ch.unary_stream(SERVER_STREAM)(b"x", timeout=5)
        with pytest.raises(grpc_lite.RpcError) as info:
            async for message in call:
                got.append(message)
        assert info.value.code() is SC.UNAVAILABLE
        await pause(0.2)
    assert got == [b"attempt 1 message 0"]
    assert flaky(server.servicer).count() == 1


async def test_server_stream_trailers_only_failure_is_retried(
    grpc_server_factory: ServerFactory,
) -> None:
    """CONFORMANCE 105, 119: a server-streaming call whose first attempt fails before any
    message (Trailers-Only UNAVAILABLE) is retried; the client sees only the second
    attempt's messages."""
    server = start_flaky(
        grpc_server_factory, lambda n: fail() if n == 1 else Behaviour(stream_messages=2)
    )
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(server.address, service_config=config) as ch:
        got = [m async for m in ch.unary_stream(SERVER_STREAM)(b"x", timeout=5)]
    assert got == [b"attempt 2 message 0", b"attempt 2 message 1", b"attempt 2 last"]
    assert flaky(server.servicer).count() == 2


async def test_channel_wide_retry_buffer_limit(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 110 (the per-channel limit, option grpc_lite.retry_buffer_size = 8 KiB):
    every call's first attempt fails UNAVAILABLE after reading its messages. Call A writes
    5 x 1 KiB and stays open (5 KiB buffered); call B then writes 5 x 1 KiB: the channel's
    replay buffer overflows during B, so B commits and is not retried (1 attempt), while A
    (under the limits when it wrote) is retried and succeeds. Once A and B are done their
    bytes are released: call C alone (5 KiB) is retried and succeeds."""
    server = start_flaky(grpc_server_factory, PerCallPlan(1))
    servicer = flaky(server.servicer)
    config = service_config(retry=retry_policy(3))
    async with grpc_lite.insecure_channel(
        server.address, options=[("grpc_lite.retry_buffer_size", 8192)], service_config=config
    ) as ch:
        await asyncio.wait_for(ch.channel_ready(), 5)
        method = ch.stream_unary(CLIENT_STREAM)
        call_a = method(timeout=5)
        for _ in range(5):
            await call_a.write(b"a" * 1024)
        err = await unary_error(method(_tagged(b"b", 5), timeout=5))
        assert err.code() is SC.UNAVAILABLE
        await call_a.done_writing()
        assert (await call_a).startswith(b"attempt ")
        assert (await method(_tagged(b"c", 5), timeout=5)).startswith(b"attempt ")

    def attempts_of(tag: bytes) -> int:
        return sum(1 for a in servicer.attempts if a.messages and a.messages[0][:1] == tag)

    assert (attempts_of(b"a"), attempts_of(b"b"), attempts_of(b"c")) == (2, 1, 2)


async def _tagged(tag: bytes, n: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield tag * 1024

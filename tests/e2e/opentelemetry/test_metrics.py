"""grpc_lite.opentelemetry's metrics against real servers (grpcio's ``resil.Flaky``, the
scripted HTTP/2 peer for transparent retries, grpc_lite.testing.Backend for connections),
read back with the SDK's InMemoryMetricReader: every name, unit, attribute, bucket boundary
and count of A66, A96, A94 and A78.
"""

from __future__ import annotations

import asyncio
import gzip
import socket

import grpc
import pytest

import grpc_lite
from grpc_lite.opentelemetry import (
    LATENCY_BUCKETS,
    METRIC_NAMES,
    RETRY_BUCKETS,
    SIZE_BUCKETS,
    TRANSPARENT_RETRY_BUCKETS,
    OpenTelemetryPlugin,
)
from grpc_lite.testing import Backend, helloworld_pb2
from tests.e2e.opentelemetry._util import A66_ATTEMPT, A96, Telemetry, attrs, by_status
from tests.e2e.resilience._util import (
    CLIENT_STREAM,
    OK,
    SERVER_STREAM,
    UNARY,
    Behaviour,
    fail_first,
    hedging_policy,
    retry_policy,
    service_config,
    start_flaky,
)
from tests.h2peer import H2Peer, PeerStream
from tests.servers.harness import ServerFactory

SC = grpc_lite.StatusCode
pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

METHOD = "resil.Flaky/Unary"
UNITS = {
    "grpc.client.attempt.started": "{attempt}",
    "grpc.client.attempt.duration": "s",
    "grpc.client.attempt.sent_total_compressed_message_size": "By",
    "grpc.client.attempt.rcvd_total_compressed_message_size": "By",
    "grpc.client.call.duration": "s",
    "grpc.client.call.retries": "{retry}",
    "grpc.client.call.transparent_retries": "{transparent_retry}",
    "grpc.client.call.hedges": "{hedge}",
    "grpc.client.call.retry_delay": "s",
    "grpc.subchannel.disconnections": "{disconnection}",
    "grpc.subchannel.connection_attempts_succeeded": "{attempt}",
    "grpc.subchannel.connection_attempts_failed": "{attempt}",
    "grpc.subchannel.open_connections": "{connection}",
    "grpc.lb.pick_first.disconnections": "{disconnection}",
    "grpc.lb.pick_first.connection_attempts_succeeded": "{attempt}",
    "grpc.lb.pick_first.connection_attempts_failed": "{attempt}",
}
BOUNDS = {
    "grpc.client.attempt.duration": LATENCY_BUCKETS,
    "grpc.client.attempt.sent_total_compressed_message_size": SIZE_BUCKETS,
    "grpc.client.attempt.rcvd_total_compressed_message_size": SIZE_BUCKETS,
    "grpc.client.call.duration": LATENCY_BUCKETS,
    "grpc.client.call.retries": RETRY_BUCKETS,
    "grpc.client.call.transparent_retries": TRANSPARENT_RETRY_BUCKETS,
    "grpc.client.call.hedges": RETRY_BUCKETS,
    "grpc.client.call.retry_delay": LATENCY_BUCKETS,
}


def check_units_and_bounds(t: Telemetry) -> None:
    for name, metric in t.metrics().items():
        assert metric.unit == UNITS[name], name
        if name in BOUNDS:
            for point in metric.data.data_points:
                assert tuple(point.explicit_bounds) == tuple(BOUNDS[name]), name


def test_the_metric_names_are_the_gfrcs() -> None:
    assert sorted(METRIC_NAMES) == sorted(UNITS)
    # A66's boundaries, as written there.
    assert LATENCY_BUCKETS[:8] == (0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001)
    assert LATENCY_BUCKETS[-8:] == (0.8, 1, 2, 5, 10, 20, 50, 100) and len(LATENCY_BUCKETS) == 41
    assert SIZE_BUCKETS == (
        0, 1024, 2048, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
        268435456, 1073741824, 4294967296,
    )  # fmt: skip
    assert RETRY_BUCKETS == (1, 2, 3, 4, 5) and TRANSPARENT_RETRY_BUCKETS == (1, 2, 3, 4, 5, 10)


async def test_unary_ok_records_every_a66_instrument(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    server = start_flaky(grpc_server_factory)
    target = f"dns:///{server.address}"
    ch = grpc_lite.insecure_channel(server.address, observability=[telemetry.plugin()])
    async with ch:
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 1"
    check_units_and_bounds(telemetry)
    [started] = telemetry.points("grpc.client.attempt.started")
    assert attrs(started) == {"grpc.method": METHOD, "grpc.target": target}
    assert started.value == 1
    ok = {"grpc.method": METHOD, "grpc.target": target, "grpc.status": "OK"}
    for name in (*A66_ATTEMPT, "grpc.client.call.duration"):
        [point] = telemetry.points(name)
        assert attrs(point) == ok, name
        assert point.count == 1, name
    # Message bytes without the 5-byte prefix: b"x" out, b"attempt 1" back.
    assert telemetry.points(A66_ATTEMPT[1])[0].sum == 1
    assert telemetry.points(A66_ATTEMPT[2])[0].sum == len(b"attempt 1")
    attempt = telemetry.points("grpc.client.attempt.duration")[0].sum
    call = telemetry.points("grpc.client.call.duration")[0].sum
    assert 0 < attempt <= call < 5
    for name in A96:  # one attempt: A96 reports no 0
        assert telemetry.points(name) == [], name


async def test_retries_are_attempts_and_a96_counts_them(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """Two UNAVAILABLE attempts, then OK (maxAttempts 3): 3 attempts, 1 call, 2 retries."""
    server = start_flaky(grpc_server_factory, fail_first(2))
    config = service_config(retry=retry_policy(3, initial=0.05, maximum=0.05))
    ch = grpc_lite.insecure_channel(
        server.address, service_config=config, observability=[telemetry.plugin()]
    )
    async with ch:
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 3"
    check_units_and_bounds(telemetry)
    assert telemetry.points("grpc.client.attempt.started")[0].value == 3
    durations = by_status(telemetry.points("grpc.client.attempt.duration"))
    assert {k: p.count for k, p in durations.items()} == {"UNAVAILABLE": 2, "OK": 1}
    sent = by_status(telemetry.points(A66_ATTEMPT[1]))
    assert (sent["UNAVAILABLE"].sum, sent["OK"].sum) == (2, 1)
    rcvd = by_status(telemetry.points(A66_ATTEMPT[2]))
    assert (rcvd["UNAVAILABLE"].sum, rcvd["OK"].sum) == (0, len(b"attempt 3"))
    [call] = telemetry.points("grpc.client.call.duration")
    assert call.count == 1 and call.attributes["grpc.status"] == "OK"
    [retries] = telemetry.points("grpc.client.call.retries")
    assert (retries.count, retries.sum) == (1, 2)
    assert set(attrs(retries)) == {"grpc.method", "grpc.target"}
    [delay] = telemetry.points("grpc.client.call.retry_delay")
    assert delay.count == 1 and 0 < delay.sum < call.sum
    assert telemetry.points("grpc.client.call.hedges") == []
    assert telemetry.points("grpc.client.call.transparent_retries") == []


async def test_hedges_are_attempts_and_a96_counts_them(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """Attempt 1 sleeps, the hedge 0.2 s later answers: 2 attempts (the loser CANCELLED)."""
    server = start_flaky(grpc_server_factory, lambda n: OK if n == 2 else Behaviour(delay=2.0))
    config = service_config(hedging=hedging_policy(3, delay=0.2))
    ch = grpc_lite.insecure_channel(
        server.address, service_config=config, observability=[telemetry.plugin()]
    )
    async with ch:
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 2"
    check_units_and_bounds(telemetry)
    assert telemetry.points("grpc.client.attempt.started")[0].value == 2
    durations = by_status(telemetry.points("grpc.client.attempt.duration"))
    assert {k: p.count for k, p in durations.items()} == {"CANCELLED": 1, "OK": 1}
    [hedges] = telemetry.points("grpc.client.call.hedges")
    assert (hedges.count, hedges.sum) == (1, 1)
    [delay] = telemetry.points("grpc.client.call.retry_delay")
    assert delay.count == 1 and delay.sum == 0  # an attempt ran all along
    assert telemetry.points("grpc.client.call.retries") == []
    [call] = telemetry.points("grpc.client.call.duration")
    assert call.count == 1 and call.attributes["grpc.status"] == "OK"


async def test_a_transparent_retry_is_an_attempt(telemetry: Telemetry) -> None:
    """The peer refuses stream 1 (REFUSED_STREAM) and answers stream 2: two attempts, one
    transparent retry, no retry, no retry delay."""
    count = 0

    async def handler(stream: PeerStream) -> None:
        nonlocal count
        count += 1
        if count == 1:
            await stream.reset(0x7)
            return
        await stream.wait_end()
        await stream.send_message(b"ok")
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer:
        ch = grpc_lite.insecure_channel(peer.target, observability=[telemetry.plugin()])
        async with ch:
            path = "/grpc.testing.TestService/UnaryCall"
            assert await ch.unary_unary(path)(b"x", timeout=5) == b"ok"
    assert telemetry.points("grpc.client.attempt.started")[0].value == 2
    durations = by_status(telemetry.points("grpc.client.attempt.duration"))
    assert {k: p.count for k, p in durations.items()} == {"UNAVAILABLE": 1, "OK": 1}
    [transparent] = telemetry.points("grpc.client.call.transparent_retries")
    assert (transparent.count, transparent.sum) == (1, 1)
    assert tuple(transparent.explicit_bounds) == TRANSPARENT_RETRY_BUCKETS
    for name in ("grpc.client.call.retries", "grpc.client.call.retry_delay"):
        assert telemetry.points(name) == [], name
    attempts = sorted(
        (s for s in telemetry.spans() if s.name.startswith("Attempt.")),
        key=lambda s: s.start_time or 0,
    )
    assert [dict(s.attributes or {}) for s in attempts] == [
        {"previous-rpc-attempts": 0, "transparent-retry": False},
        {"previous-rpc-attempts": 0, "transparent-retry": True},
    ]


async def test_failed_calls_carry_their_status(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    server = start_flaky(grpc_server_factory, lambda n: Behaviour(delay=2.0))
    ch = grpc_lite.insecure_channel(server.address, observability=[telemetry.plugin()])
    async with ch:
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(b"x", timeout=0.2)
        assert info.value.code() is SC.DEADLINE_EXCEEDED
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary("/resil.Flaky/Nope")(b"x", timeout=5)
        assert info.value.code() is SC.UNIMPLEMENTED
    calls = telemetry.points("grpc.client.call.duration")
    assert sorted((p.attributes["grpc.method"], p.attributes["grpc.status"]) for p in calls) == [
        ("resil.Flaky/Nope", "UNIMPLEMENTED"),
        (METHOD, "DEADLINE_EXCEEDED"),
    ]
    attempts = telemetry.points("grpc.client.attempt.duration")
    assert sorted(p.attributes["grpc.status"] for p in attempts) == [
        "DEADLINE_EXCEEDED",
        "UNIMPLEMENTED",
    ]


async def test_streams_count_every_message(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    server = start_flaky(grpc_server_factory, lambda n: Behaviour(stream_messages=2))
    ch = grpc_lite.insecure_channel(server.address, observability=[telemetry.plugin()])
    async with ch:
        call = ch.stream_unary(CLIENT_STREAM)(iter([b"a", b"bb", b"ccc"]), timeout=5)
        assert await call == b"attempt 1"
        replies = [m async for m in ch.unary_stream(SERVER_STREAM)(b"go", timeout=5)]
    sent = {p.attributes["grpc.method"]: p.sum for p in telemetry.points(A66_ATTEMPT[1])}
    rcvd = {p.attributes["grpc.method"]: p.sum for p in telemetry.points(A66_ATTEMPT[2])}
    assert sent == {"resil.Flaky/ClientStream": 6, "resil.Flaky/ServerStream": 2}
    assert rcvd == {
        "resil.Flaky/ClientStream": len(b"attempt 1"),
        "resil.Flaky/ServerStream": sum(len(r) for r in replies),
    }
    assert len(replies) == 3


async def test_message_sizes_are_compressed_sizes(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """A66: the bytes as sent, compressed; the span event has both sizes (A72)."""
    server = start_flaky(grpc_server_factory)
    payload = b"\0" * 10_000
    ch = grpc_lite.insecure_channel(server.address, observability=[telemetry.plugin()])
    async with ch:
        call = ch.unary_unary(UNARY)(payload, timeout=5, compression=grpc_lite.Compression.Gzip)
        assert await call == b"attempt 1"
    [sent] = telemetry.points(A66_ATTEMPT[1])
    # gzip's size (grpc_lite's compressor may choose another level than gzip.compress's).
    assert 0 < sent.sum < 200 and abs(sent.sum - len(gzip.compress(payload))) < 32
    [attempt] = [s for s in telemetry.spans() if s.name.startswith("Attempt.")]
    [outbound] = [e for e in attempt.events if e.name == "Outbound message"]
    assert dict(outbound.attributes or {}) == {
        "sequence-number": 0,
        "message-size": 10_000,
        "message-size-compressed": sent.sum,
    }


# --------------------------------------------------------------------------- A94 and A78


async def collect_until(t: Telemetry, name: str, predicate: object, within: float = 5) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not predicate(t.points(name)):  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError(f"{name}: {t.points(name)}")
        await asyncio.sleep(0.02)


def total(t: Telemetry, name: str, **labels: str) -> int:
    return sum(
        p.value
        for p in t.points(name)
        if all(p.attributes.get(k.replace("_", ".")) == v for k, v in labels.items())
    )


async def test_subchannel_and_pick_first_metrics_follow_the_connection(
    telemetry: Telemetry,
) -> None:
    """Connect (succeeded, open 1), a graceful drain (GOAWAY NO_ERROR), reconnect, a reset
    connection, and close (subchannel shutdown): open_connections back to 0."""
    say = "/helloworld.Greeter/SayHello"
    request = helloworld_pb2.HelloRequest(name="x").SerializeToString()
    async with Backend() as backend:
        target = f"dns:///{backend.address}"
        ch = grpc_lite.insecure_channel(backend.address, observability=[telemetry.plugin()])
        async with ch:
            await ch.unary_unary(say)(request, timeout=5)
            assert total(telemetry, "grpc.subchannel.connection_attempts_succeeded") == 1
            assert total(telemetry, "grpc.subchannel.open_connections") == 1
            assert total(telemetry, "grpc.lb.pick_first.connection_attempts_succeeded") == 1
            [point] = telemetry.points("grpc.subchannel.open_connections")
            assert attrs(point) == {"grpc.target": target}

            await backend.drain(grace=1)
            await collect_until(telemetry, "grpc.subchannel.disconnections", lambda p: len(p) == 1)
            [gone] = telemetry.points("grpc.subchannel.disconnections")
            assert attrs(gone) == {
                "grpc.target": target,
                "grpc.disconnect_error": "GOAWAY NO_ERROR",
            }
            assert total(telemetry, "grpc.subchannel.open_connections") == 0
            assert total(telemetry, "grpc.lb.pick_first.disconnections") == 1

            await ch.unary_unary(say)(request, timeout=5)  # a new connection
            assert total(telemetry, "grpc.subchannel.connection_attempts_succeeded") == 2
            assert total(telemetry, "grpc.subchannel.open_connections") == 1
            backend.abort_connections()
            await collect_until(
                telemetry,
                "grpc.subchannel.disconnections",
                lambda p: sum(x.value for x in p) == 2,
            )
            reasons = {
                p.attributes["grpc.disconnect_error"]: p.value
                for p in telemetry.points("grpc.subchannel.disconnections")
            }
            assert reasons == {"GOAWAY NO_ERROR": 1, "connection reset": 1}
            assert total(telemetry, "grpc.lb.pick_first.disconnections") == 2

            await ch.unary_unary(say)(request, timeout=5)
            assert total(telemetry, "grpc.subchannel.open_connections") == 1
        reasons = {
            p.attributes["grpc.disconnect_error"]: p.value
            for p in telemetry.points("grpc.subchannel.disconnections")
        }
        assert reasons == {"GOAWAY NO_ERROR": 1, "connection reset": 1, "subchannel shutdown": 1}
        assert total(telemetry, "grpc.subchannel.open_connections") == 0
        assert total(telemetry, "grpc.subchannel.connection_attempts_succeeded") == 3
        assert total(telemetry, "grpc.lb.pick_first.connection_attempts_succeeded") == 3
        assert telemetry.points("grpc.subchannel.connection_attempts_failed") == []
        check_units_and_bounds(telemetry)


async def test_failed_connection_attempts(telemetry: Telemetry) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 50)]
    ch = grpc_lite.insecure_channel(
        f"127.0.0.1:{port}", options=options, observability=[telemetry.plugin()]
    )
    async with ch:
        with pytest.raises(grpc_lite.RpcError):
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        await collect_until(
            telemetry,
            "grpc.subchannel.connection_attempts_failed",
            lambda p: sum(x.value for x in p) >= 2,
        )
    failed = total(telemetry, "grpc.subchannel.connection_attempts_failed")
    assert failed >= 2
    assert total(telemetry, "grpc.lb.pick_first.connection_attempts_failed") == failed
    assert telemetry.points("grpc.subchannel.connection_attempts_succeeded") == []
    assert telemetry.points("grpc.subchannel.disconnections") == []
    [call] = telemetry.points("grpc.client.call.duration")
    assert call.attributes["grpc.status"] == "UNAVAILABLE"


async def test_round_robin_records_its_children_subchannels(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """A78 has no round_robin metrics; its pick_first children and their subchannels
    record theirs (one connection per backend)."""
    servers = [start_flaky(grpc_server_factory) for _ in range(2)]
    target = "ipv4:" + ",".join(s.address for s in servers)
    ch = grpc_lite.insecure_channel(
        target,
        service_config=service_config(lb="round_robin"),
        observability=[telemetry.plugin()],
    )
    async with ch:
        await asyncio.wait_for(ch.channel_ready(), 5)
        await collect_until(
            telemetry,
            "grpc.subchannel.open_connections",
            lambda p: sum(x.value for x in p) == 2,
        )
        for _ in range(4):
            await ch.unary_unary(UNARY)(b"x", timeout=5)
    assert total(telemetry, "grpc.subchannel.connection_attempts_succeeded") == 2
    assert total(telemetry, "grpc.lb.pick_first.connection_attempts_succeeded") == 2
    assert total(telemetry, "grpc.subchannel.open_connections") == 0
    assert total(telemetry, "grpc.client.attempt.started") == 4
    [point] = telemetry.points("grpc.client.attempt.started")
    assert point.attributes["grpc.target"] == target


# --------------------------------------------------------------------------- options


async def test_attribute_filters_and_disabled_metrics(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    server = start_flaky(grpc_server_factory)
    plugin = telemetry.plugin(
        tracing=False,
        target_attribute_filter=lambda target: False,
        generic_method_attribute_filter=lambda method: method.endswith("/Unary"),
        disabled_metrics=["grpc.client.attempt.started", "grpc.subchannel.open_connections"],
    )
    ch = grpc_lite.insecure_channel(server.address, observability=[plugin])
    async with ch:
        await ch.unary_unary(UNARY)(b"x", timeout=5)
        with pytest.raises(grpc_lite.RpcError):
            await ch.unary_unary("/resil.Flaky/Other")(b"x", timeout=5)
        # A registered method (a generated or grpc_lite.Stub stub) always keeps its name.
        with pytest.raises(grpc_lite.RpcError):
            await ch.unary_unary("/resil.Flaky/Third", _registered_method=True)(b"x", timeout=5)
    calls = telemetry.points("grpc.client.call.duration")
    assert sorted(attrs(p)["grpc.method"] for p in calls) == [
        "other",
        "resil.Flaky/Third",
        "resil.Flaky/Unary",
    ]
    assert {attrs(p)["grpc.target"] for p in calls} == {"other"}
    assert telemetry.points("grpc.client.attempt.started") == []
    assert telemetry.points("grpc.subchannel.open_connections") == []
    assert telemetry.points("grpc.subchannel.connection_attempts_succeeded") != []
    assert telemetry.spans() == []
    with pytest.raises(ValueError, match=r"grpc\.client\.nope"):
        OpenTelemetryPlugin(disabled_metrics=["grpc.client.nope"])


async def test_no_plugin_and_empty_plugin_cost_nothing(
    grpc_server_factory: ServerFactory,
) -> None:
    """Without a plugin (or with one with no providers) the channel has no observer, its
    methods none, its calls no tracer, and their streams are plain ClientStreams."""
    from grpc_lite._transport import ClientStream

    server = start_flaky(grpc_server_factory)
    for observability in (None, [OpenTelemetryPlugin()]):
        ch = grpc_lite.insecure_channel(server.address, observability=observability)
        async with ch:
            assert ch._observer is None and ch.metrics_recorder is None
            method = ch.unary_unary(UNARY)
            assert method._method.observer is None
            call = method(b"x", timeout=5)
            assert call._tracer is None
            assert (await call).startswith(b"attempt ")
            assert type(call._stream) is ClientStream


async def test_register_and_deregister_global(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """register_global instruments the channels created afterwards; deregister_global stops
    that for new channels (a channel keeps what it had); ``with plugin:`` does both."""
    server = start_flaky(grpc_server_factory)
    plugin = telemetry.plugin(tracing=False)
    before = grpc_lite.insecure_channel(server.address)
    plugin.register_global()
    plugin.register_global()  # idempotent
    during = grpc_lite.insecure_channel(server.address)
    plugin.deregister_global()
    after = grpc_lite.insecure_channel(server.address)
    with plugin:
        scoped = grpc_lite.insecure_channel(server.address, observability=[plugin])  # once
    unscoped = grpc_lite.insecure_channel(server.address)
    counts = {}
    for name, ch in (
        ("before", before),
        ("during", during),
        ("after", after),
        ("scoped", scoped),
        ("unscoped", unscoped),
    ):
        async with ch:
            before_calls = total(telemetry, "grpc.client.attempt.started")
            await ch.unary_unary(UNARY)(b"x", timeout=5)
            counts[name] = total(telemetry, "grpc.client.attempt.started") - before_calls
    assert counts == {"before": 0, "during": 1, "after": 0, "scoped": 1, "unscoped": 0}


async def test_two_plugins_both_record(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    server = start_flaky(grpc_server_factory)
    other = Telemetry()
    try:
        plugins = [telemetry.plugin(), other.plugin()]
        async with grpc_lite.insecure_channel(server.address, observability=plugins) as ch:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        for t in (telemetry, other):
            assert total(t, "grpc.client.attempt.started") == 1
            assert [p.count for p in t.points("grpc.client.call.duration")] == [1]
            assert len(t.spans()) == 2
    finally:
        other.close()


def test_grpcio_status_names_match() -> None:
    """grpc.status is the code's name, as grpcio and C-core spell it."""
    for code in grpc.StatusCode:
        assert SC[code.name].name == code.name

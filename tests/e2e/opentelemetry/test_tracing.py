"""A72 tracing against grpcio servers, read with the SDK's InMemorySpanExporter: the span
tree, attributes, events and statuses, propagation (the server sees the attempt span as its
parent), grpc-trace-bin, and spans that end however the call ends."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from opentelemetry.trace import StatusCode as SpanStatus

import grpc_lite
from grpc_lite.opentelemetry import GrpcTraceBinPropagator
from grpc_lite.opentelemetry._propagation import (
    GETTER,
    from_grpc_trace_bin,
    to_grpc_trace_bin,
    wire_pairs,
)
from tests.e2e.opentelemetry._util import Telemetry
from tests.e2e.resilience._util import (
    SERVER_STREAM,
    UNARY,
    Behaviour,
    fail_first,
    flaky,
    retry_policy,
    service_config,
    start_flaky,
)
from tests.h2peer import H2Peer, echo_unary
from tests.servers.harness import ServerFactory

SC = grpc_lite.StatusCode
pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def kinds(spans: list[ReadableSpan]) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    calls = [s for s in spans if s.name.startswith("Sent.")]
    attempts = sorted(
        (s for s in spans if s.name.startswith("Attempt.")), key=lambda s: s.start_time or 0
    )
    return calls, attempts


def received(server: Any, key: str) -> list[Any]:
    """The values of ``key`` in the metadata of each call the Flaky server received."""
    return [
        next((v for k, v in call.metadata if k == key), None)
        for call in flaky(server.servicer).recorder.calls
    ]


def traceparent_ids(value: str) -> tuple[int, int]:
    _version, trace_id, span_id, _flags = value.split("-")
    return int(trace_id, 16), int(span_id, 16)


async def test_span_tree_and_propagation(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """The application's span -> Sent.resil.Flaky.Unary (CLIENT) -> Attempt.resil.Flaky.Unary;
    message events; status OK; the server's traceparent names the attempt span."""
    server = start_flaky(grpc_server_factory)
    app = telemetry.tracer_provider.get_tracer("app")
    ch = grpc_lite.insecure_channel(server.address, observability=[telemetry.plugin()])
    async with ch:
        await ch.channel_ready()
        with app.start_as_current_span("handler") as parent:
            assert await ch.unary_unary(UNARY)(b"hello", timeout=5) == b"attempt 1"
    spans = telemetry.spans()
    [call], [attempt] = kinds(spans)
    assert call.name == "Sent.resil.Flaky.Unary" and call.kind is SpanKind.CLIENT
    assert attempt.name == "Attempt.resil.Flaky.Unary"
    assert call.parent is not None and call.parent.span_id == parent.get_span_context().span_id
    assert attempt.parent is not None and attempt.parent.span_id == call.context.span_id
    assert call.context.trace_id == parent.get_span_context().trace_id == attempt.context.trace_id
    assert dict(attempt.attributes or {}) == {
        "previous-rpc-attempts": 0,
        "transparent-retry": False,
    }
    assert [(e.name, dict(e.attributes or {})) for e in attempt.events] == [
        ("Outbound message", {"sequence-number": 0, "message-size": 5}),
        ("Inbound message", {"sequence-number": 0, "message-size": len(b"attempt 1")}),
    ]
    assert call.status.status_code is SpanStatus.OK
    assert attempt.status.status_code is SpanStatus.OK
    assert call.end_time is not None and attempt.end_time is not None
    assert attempt.end_time <= call.end_time
    [traceparent] = received(server, "traceparent")
    assert traceparent_ids(traceparent) == (attempt.context.trace_id, attempt.context.span_id)


async def test_retries_make_attempt_spans(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """Two failed attempts (ERROR, "UNAVAILABLE, injected failure"), then OK; each attempt is
    the parent the server saw for it; previous-rpc-attempts 0, 1, 2."""
    server = start_flaky(grpc_server_factory, fail_first(2))
    config = service_config(retry=retry_policy(3))
    ch = grpc_lite.insecure_channel(
        server.address, service_config=config, observability=[telemetry.plugin()]
    )
    async with ch:
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 3"
    [call], attempts = kinds(telemetry.spans())
    assert [a.attributes["previous-rpc-attempts"] for a in attempts] == [0, 1, 2]  # type: ignore[index]
    assert [a.status.status_code for a in attempts] == [
        SpanStatus.ERROR,
        SpanStatus.ERROR,
        SpanStatus.OK,
    ]
    assert attempts[0].status.description == "UNAVAILABLE, injected failure"
    assert all(a.parent is not None and a.parent.span_id == call.context.span_id for a in attempts)
    assert call.status.status_code is SpanStatus.OK
    parents = [traceparent_ids(v)[1] for v in received(server, "traceparent")]
    assert parents == [a.context.span_id for a in attempts]


async def test_grpc_trace_bin_propagation(telemetry: Telemetry) -> None:
    """A72's grpc-trace-bin instead of traceparent: 29 bytes naming the attempt span, as the
    server reads the header (grpcio's C-core keeps grpc-trace-bin from its applications, so
    the scripted HTTP/2 peer reads it here)."""
    plugin = telemetry.plugin(text_map_propagator=GrpcTraceBinPropagator())
    async with H2Peer(echo_unary) as peer:
        async with grpc_lite.insecure_channel(peer.target, observability=[plugin]) as ch:
            await ch.unary_unary("/grpc.testing.TestService/UnaryCall")(b"x", timeout=5)
        [stream] = peer.streams
    _, [attempt] = kinds(telemetry.spans())
    header = stream.header("grpc-trace-bin")
    assert header is not None and "=" not in header  # unpadded base64, as every -bin value
    value = base64.b64decode(header + "=" * (-len(header) % 4))
    assert len(value) == 29
    context = from_grpc_trace_bin(value)
    assert context is not None
    assert (context.trace_id, context.span_id) == (
        attempt.context.trace_id,
        attempt.context.span_id,
    )
    assert int(context.trace_flags) & 1  # sampled
    assert stream.header("traceparent") is None


def test_grpc_trace_bin_round_trip() -> None:
    span_context = trace.SpanContext(
        trace_id=0x0102030405060708090A0B0C0D0E0F10,
        span_id=0x1112131415161718,
        is_remote=False,
        trace_flags=trace.TraceFlags(1),
    )
    raw = to_grpc_trace_bin(span_context)
    assert raw == bytes.fromhex("00000102030405060708090a0b0c0d0e0f100111121314151617180201")
    propagator = GrpcTraceBinPropagator()
    carrier: dict[str, str] = {}
    propagator.inject(carrier, trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
    assert base64.b64decode(carrier["grpc-trace-bin"]) == raw
    assert propagator.fields == {"grpc-trace-bin"}
    extracted = trace.get_current_span(propagator.extract(carrier)).get_span_context()
    assert (extracted.trace_id, extracted.span_id, extracted.is_remote) == (
        span_context.trace_id,
        span_context.span_id,
        True,
    )
    # From received metadata (bytes, as grpcio and grpc_lite hand -bin values over).
    extracted = trace.get_current_span(
        propagator.extract([("grpc-trace-bin", raw)], getter=GETTER)
    ).get_span_context()
    assert extracted.span_id == span_context.span_id
    assert from_grpc_trace_bin(raw[:-1]) is None and from_grpc_trace_bin(b"\x01" + raw[1:]) is None
    # Wire form: unpadded base64 for grpc-trace-bin; other binary keys are refused.
    assert wire_pairs([("grpc-trace-bin", base64.b64encode(raw).decode())]) == [
        ("grpc-trace-bin", base64.b64encode(raw).decode().rstrip("="))
    ]
    assert wire_pairs([("x-other-bin", "AAAA"), ("Traceparent", "00-ab")]) == [
        ("traceparent", "00-ab")
    ]


async def test_spans_end_however_the_call_ends(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    """Cancelled, deadline, a stream never iterated and a call in flight when the channel
    closes: every call and attempt span ends, ERROR with the gRPC status."""
    server = start_flaky(grpc_server_factory, lambda n: Behaviour(delay=5.0, stream_messages=3))
    ch = grpc_lite.insecure_channel(server.address, observability=[telemetry.plugin()])
    await ch.channel_ready()
    cancelled = ch.unary_unary(UNARY)(b"x", timeout=10)
    await asyncio.sleep(0.1)
    cancelled.cancel()
    with pytest.raises(grpc_lite.RpcError):
        await ch.unary_unary(UNARY)(b"x", timeout=0.1)
    never_iterated = ch.unary_stream(SERVER_STREAM)(b"x")  # dropped without reading
    pending = asyncio.ensure_future(ch.unary_unary(UNARY)(b"x"))
    await asyncio.sleep(0.1)
    del never_iterated
    await ch.close()
    with pytest.raises(grpc_lite.RpcError) as info:
        await pending
    assert info.value.code() is SC.CANCELLED
    calls, attempts = kinds(telemetry.spans())
    assert len(calls) == 4 and len(attempts) == 4
    assert all(s.end_time is not None for s in calls + attempts)
    descriptions = sorted(s.status.description or "" for s in calls)
    assert descriptions == [
        "CANCELLED, Channel closed!",
        "CANCELLED, Channel closed!",
        "CANCELLED, Locally cancelled by application!",
        "DEADLINE_EXCEEDED, Deadline Exceeded",
    ]
    assert all(s.status.status_code is SpanStatus.ERROR for s in calls + attempts)


async def test_a_failed_pick_ends_its_attempt(telemetry: Telemetry) -> None:
    """An attempt that never got a stream (the pick failed fail-fast) still ends, with the
    pick's status."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ch = grpc_lite.insecure_channel(f"127.0.0.1:{port}", observability=[telemetry.plugin()])
    async with ch:
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
    assert info.value.code() is SC.UNAVAILABLE
    [call], [attempt] = kinds(telemetry.spans())
    assert attempt.status.status_code is SpanStatus.ERROR
    assert (attempt.status.description or "").startswith("UNAVAILABLE, ")
    assert [e.name for e in attempt.events] == []
    assert call.status.description == attempt.status.description

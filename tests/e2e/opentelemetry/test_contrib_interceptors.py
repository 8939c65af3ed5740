"""opentelemetry-instrumentation-grpc's ``aio_client_interceptors()``, written for grpc.aio,
on a grpc_lite channel against a grpcio server: one span per call with the right status
and ``rpc.grpc.status_code``, the trace context sent to the server, no error logged.

They read grpcio's ``code.value[0]``, compare with ``grpc.StatusCode.OK`` and look for
``grpc.RpcError``; before grpc_lite's StatusCode and RpcError answered these, every failed
call was recorded as OK and each call logged ``TypeError: 'int' object is not
subscriptable``."""

from __future__ import annotations

import logging

import grpc
import pytest
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.trace import StatusCode as SpanStatus

import grpc_lite
from tests.e2e.opentelemetry._util import Telemetry
from tests.e2e.opentelemetry.test_tracing import received, traceparent_ids
from tests.e2e.resilience._util import SERVER_STREAM, UNARY, Behaviour, fail, start_flaky
from tests.servers.harness import ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def _plan(n: int) -> Behaviour:
    """Attempt 1 answers, 2 fails NOT_FOUND, 3 streams 2 messages, 4 fails mid-stream."""
    if n == 2:
        return fail(grpc.StatusCode.NOT_FOUND, details="no such thing")
    if n == 3:
        return Behaviour(stream_messages=2)
    if n == 4:
        return Behaviour(stream_messages=1, code=grpc.StatusCode.UNAVAILABLE, details="gone")
    return Behaviour()


async def test_contrib_aio_interceptors_record_statuses_and_propagate(
    grpc_server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = Telemetry()
    server = start_flaky(grpc_server_factory, _plan)
    interceptors = aio_client_interceptors(tracer_provider=telemetry.tracer_provider)
    try:
        with caplog.at_level(logging.WARNING):
            async with grpc_lite.insecure_channel(server.address, interceptors=interceptors) as ch:
                assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"attempt 1"
                with pytest.raises(grpc_lite.RpcError) as failed:
                    await ch.unary_unary(UNARY)(b"x", timeout=5)
                assert failed.value.code() == grpc.StatusCode.NOT_FOUND
                streamed = [m async for m in ch.unary_stream(SERVER_STREAM)(b"x", timeout=5)]
                assert streamed[:2] == [b"attempt 3 message 0", b"attempt 3 message 1"]
                with pytest.raises(grpc_lite.RpcError):
                    async for _ in ch.unary_stream(SERVER_STREAM)(b"x", timeout=5):
                        pass
        assert "Traceback" not in caplog.text and "TypeError" not in caplog.text, caplog.text
        spans = sorted(telemetry.spans(), key=lambda s: s.start_time or 0)
        assert [s.name for s in spans] == [UNARY, UNARY, SERVER_STREAM, SERVER_STREAM]
        ok, not_found, stream_ok, stream_failed = spans
        assert ok.status.status_code is SpanStatus.UNSET
        assert (ok.attributes or {})["rpc.grpc.status_code"] == 0
        assert not_found.status.status_code is SpanStatus.ERROR
        assert not_found.status.description == "no such thing"
        assert (not_found.attributes or {})["rpc.grpc.status_code"] == 5
        assert stream_ok.status.status_code is SpanStatus.UNSET
        assert stream_failed.status.status_code is SpanStatus.ERROR
        assert "gone" in (stream_failed.status.description or "")
        # The interceptor reads the code only from a grpc.RpcError: grpc_lite's error is
        # one while grpcio is loaded.
        assert (stream_failed.attributes or {})["rpc.grpc.status_code"] == 14
        # Each call's traceparent, injected into grpcio's Metadata by the interceptor,
        # reached the server and names that call's span.
        sent = [traceparent_ids(v) for v in received(server, "traceparent")]
        assert sent == [(s.context.trace_id, s.context.span_id) for s in spans]
    finally:
        telemetry.close()

"""grpc_lite.testing.Backend driven by grpcio's asyncio client (grpc.aio): the test server
is a real gRPC server, not just one our own client happens to understand."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_lite.testing import Backend
from tests.protos.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc
from tests.protos.helloworld import helloworld_pb2, helloworld_pb2_grpc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

SAY_HELLO = "/helloworld.Greeter/SayHello"


async def wait_until(predicate: Any, seconds: float = 5.0) -> None:
    """Poll server-side counters (the backend has no event for them); bounded."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend() as b:
        yield b


@pytest.fixture
async def channel(backend: Backend) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(backend.address) as ch:
        yield ch


async def test_greeter(backend: Backend, channel: grpc.aio.Channel) -> None:
    stub = helloworld_pb2_grpc.GreeterStub(channel)
    reply = await stub.SayHello(helloworld_pb2.HelloRequest(name="grpcio"))
    assert reply.message == f"Hello grpcio from {backend.address}"
    replies = [r.message async for r in stub.SayHelloStreamReply(helloworld_pb2.HelloRequest())]
    assert len(replies) == 3


async def test_health(backend: Backend, channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=""))
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Check(health_pb2.HealthCheckRequest(service="unknown"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND

    watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    backend.set_health("", "NOT_SERVING")
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
    watch.cancel()

    watch = stub.Watch(health_pb2.HealthCheckRequest(service="unknown"))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    watch.cancel()


async def test_test_service(backend: Backend, channel: grpc.aio.Channel) -> None:
    stub = test_pb2_grpc.TestServiceStub(channel)
    m = messages_pb2
    assert await stub.EmptyCall(empty_pb2.Empty()) == empty_pb2.Empty()

    call = stub.UnaryCall(
        m.SimpleRequest(response_size=1000, payload=m.Payload(body=b"\0" * 5000)),
        metadata=(
            ("x-grpc-test-echo-initial", "hi"),
            ("x-grpc-test-echo-trailing-bin", b"\x01\x02"),
        ),
        compression=grpc.Compression.Gzip,
    )
    assert len((await call).payload.body) == 1000
    assert ("x-grpc-test-echo-initial", "hi") in tuple(await call.initial_metadata())
    assert ("x-grpc-test-echo-trailing-bin", b"\x01\x02") in tuple(await call.trailing_metadata())

    details = "error ☺ 100% \t\n"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UnaryCall(m.SimpleRequest(response_status=m.EchoStatus(code=9, message=details)))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == details

    big = 3 << 20
    response = await stub.UnaryCall(
        m.SimpleRequest(response_size=big, payload=m.Payload(body=b"y" * big)), timeout=10
    )
    assert len(response.payload.body) == big

    out = stub.StreamingOutputCall(
        m.StreamingOutputCallRequest(
            response_parameters=[m.ResponseParameters(size=s) for s in (10, 20, 30)]
        )
    )
    assert [len(r.payload.body) async for r in out] == [10, 20, 30]

    requests = [m.StreamingInputCallRequest(payload=m.Payload(body=b"\0" * s)) for s in (1, 2)]
    assert (await stub.StreamingInputCall(iter(requests))).aggregated_payload_size == 3

    duplex = stub.FullDuplexCall()
    for size in (5, 6):
        await duplex.write(
            m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=size)])
        )
        assert len((await duplex.read()).payload.body) == size
    await duplex.done_writing()
    assert await duplex.code() == grpc.StatusCode.OK

    half = stub.HalfDuplexCall(
        iter(
            [
                m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=s)])
                for s in (7, 8)
            ]
        )
    )
    assert [len(r.payload.body) async for r in half] == [7, 8]

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UnimplementedCall(empty_pb2.Empty())
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_faults(backend: Backend, channel: grpc.aio.Channel) -> None:
    stub = helloworld_pb2_grpc.GreeterStub(channel)
    request = helloworld_pb2.HelloRequest(name="x")

    backend.fail_next(1, grpc.StatusCode.UNAVAILABLE.value[0], "later", pushback_ms=40)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SayHello(request)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "later"
    assert ("grpc-retry-pushback-ms", "40") in tuple(info.value.trailing_metadata() or ())

    backend.delay = 2
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SayHello(request, timeout=0.1)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    backend.delay = 0
    assert (await stub.SayHello(request)).message


async def test_drain_with_in_flight_call(backend: Backend, channel: grpc.aio.Channel) -> None:
    stub = helloworld_pb2_grpc.GreeterStub(channel)
    request = helloworld_pb2.HelloRequest(name="drain")
    await stub.SayHello(request)
    backend.delay = 1.0
    call = stub.SayHello(request, timeout=10)
    await wait_until(lambda: backend.calls[SAY_HELLO] == 2)
    await backend.drain(grace=5)
    assert (await call).message == f"Hello drain from {backend.address}"
    assert backend.current_connections == 0
    backend.delay = 0
    assert (await stub.SayHello(request, timeout=5)).message
    assert backend.connections_accepted == 2


async def test_abort_and_refuse(backend: Backend, channel: grpc.aio.Channel) -> None:
    stub = helloworld_pb2_grpc.GreeterStub(channel)
    request = helloworld_pb2.HelloRequest(name="x")
    await stub.SayHello(request)
    backend.delay = 5
    call = stub.SayHello(request, timeout=10)
    await wait_until(lambda: backend.calls[SAY_HELLO] == 2)
    backend.refuse_new_connections(True)
    backend.abort_connections()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    backend.delay = 0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SayHello(request, timeout=1)
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    backend.refuse_new_connections(False)
    start = time.monotonic()
    assert (await stub.SayHello(request, wait_for_ready=True, timeout=10)).message
    assert time.monotonic() - start < 10
    assert backend.connections_accepted == 2


async def test_unix_socket() -> None:
    directory = tempfile.mkdtemp(prefix="gl-")
    path = os.path.join(directory, "grpcio.sock")
    try:
        async with Backend(unix_path=path) as b, grpc.aio.insecure_channel(b.address) as ch:
            reply = await helloworld_pb2_grpc.GreeterStub(ch).SayHello(
                helloworld_pb2.HelloRequest(name="u")
            )
            assert reply.message == f"Hello u from unix:{path}"
    finally:
        os.rmdir(directory)

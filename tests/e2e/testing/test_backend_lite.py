"""grpc_lite.testing.Backend driven by the grpc_lite client: built-in services, custom
handlers, every fault, and the client features the faults exist for (retry pushback,
client-side health checking)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import grpc_lite
from grpc_lite.health import HealthCheckRequest, HealthCheckResponse, HealthStub
from grpc_lite.testing import (
    AbortError,
    Backend,
    ServicerContext,
    helloworld_pb2,
    testing_pb2,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

SC = grpc_lite.StatusCode
S = grpc_lite.ChannelConnectivity
GREETER = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"]
TEST_SERVICE = testing_pb2.DESCRIPTOR.services_by_name["TestService"]
UNIMPLEMENTED_SERVICE = testing_pb2.DESCRIPTOR.services_by_name["UnimplementedService"]
SAY_HELLO = "/helloworld.Greeter/SayHello"
SERVING = HealthCheckResponse.SERVING
NOT_SERVING = HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = HealthCheckResponse.SERVICE_UNKNOWN
FAST_BACKOFF: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 200),
    # The connect deadline (MIN_CONNECT_TIMEOUT): generous, a busy CI machine can take
    # more than 50 ms to get the server preface through.
    ("grpc.min_reconnect_backoff_ms", 1000),
]


def hello(name: str = "you") -> helloworld_pb2.HelloRequest:
    return helloworld_pb2.HelloRequest(name=name)


def retry_config(service: str = "helloworld.Greeter", max_attempts: int = 4) -> str:
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": service}],
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": "0.01s",
                        "maxBackoff": "0.05s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


async def wait_until(predicate: Any, seconds: float = 5.0) -> None:
    """Poll server-side counters (the backend has no event for them); bounded."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def _exists(path: str) -> bool:
    return os.path.exists(path)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend() as b:
        yield b


@pytest.fixture
async def channel(backend: Backend) -> AsyncIterator[grpc_lite.Channel]:
    async with grpc_lite.insecure_channel(backend.address, FAST_BACKOFF) as ch:
        yield ch


# --------------------------------------------------------------------------- basics


async def test_address_port_and_id(backend: Backend) -> None:
    assert backend.port > 0
    assert backend.address == f"127.0.0.1:{backend.port}"
    assert backend.backend_id == backend.address
    assert backend.serving


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


async def test_ipv6_loopback() -> None:
    assert _ipv6_loopback(), "this test needs the IPv6 loopback (::1)"
    async with Backend("::1") as b:
        assert b.address == f"[::1]:{b.port}"
        async with grpc_lite.insecure_channel(b.address) as ch:
            reply = await grpc_lite.Stub(ch, GREETER).SayHello(hello())
            assert reply.message == f"Hello you from [::1]:{b.port}"


async def test_explicit_backend_id_and_restart_on_same_port() -> None:
    b = Backend(backend_id="b1")
    await b.start()
    try:
        port = b.port
        async with grpc_lite.insecure_channel(b.address, FAST_BACKOFF) as ch:
            stub = grpc_lite.Stub(ch, GREETER)
            assert (await stub.SayHello(hello())).message == "Hello you from b1"
            await b.stop()
            assert not b.serving
            await b.stop()  # twice is fine
            await b.start()
            assert b.port == port
            reply = await stub.SayHello(hello("again"), wait_for_ready=True, timeout=5)
            assert reply.message == "Hello again from b1"
    finally:
        await b.stop()


# --------------------------------------------------------------------------- built-in services


async def test_greeter(backend: Backend, channel: grpc_lite.Channel) -> None:
    stub = grpc_lite.Stub(channel, GREETER)
    reply = await stub.SayHello(hello("x"))
    assert reply.message == f"Hello x from {backend.address}"
    messages = [r.message async for r in stub.SayHelloStreamReply(hello("y"))]
    assert messages == [f"Hello y from {backend.address} #{i}" for i in range(3)]
    assert backend.calls[SAY_HELLO] == 1
    assert backend.calls["/helloworld.Greeter/SayHelloStreamReply"] == 1
    assert backend.connections_accepted == 1
    assert backend.current_connections == 1


async def test_health_check(backend: Backend, channel: grpc_lite.Channel) -> None:
    stub = HealthStub(channel)
    assert (await stub.Check(HealthCheckRequest(service=""))).status == SERVING
    assert (await stub.Check(HealthCheckRequest(service="helloworld.Greeter"))).status == SERVING
    backend.set_health("", "NOT_SERVING")
    assert (await stub.Check(HealthCheckRequest(service=""))).status == NOT_SERVING
    with pytest.raises(grpc_lite.RpcError) as info:
        await stub.Check(HealthCheckRequest(service="no.such.Service"))
    assert info.value.code() == SC.NOT_FOUND
    assert backend.health("") == "NOT_SERVING"


async def test_health_watch_streams_every_change(
    backend: Backend, channel: grpc_lite.Channel
) -> None:
    stub = HealthStub(channel)
    call = stub.Watch(HealthCheckRequest(service=""))
    assert (await call.read()).status == SERVING
    backend.set_health("", False)
    assert (await call.read()).status == NOT_SERVING
    backend.set_health("", NOT_SERVING)  # no change: nothing sent
    backend.set_health("", "SERVING")
    assert (await call.read()).status == SERVING
    call.cancel()

    # An unknown service: SERVICE_UNKNOWN, then its status once it is set (item 185).
    call = stub.Watch(HealthCheckRequest(service="later"))
    assert (await call.read()).status == SERVICE_UNKNOWN
    backend.set_health("later", "SERVING")
    assert (await call.read()).status == SERVING
    backend.set_health("later", None)
    assert (await call.read()).status == SERVICE_UNKNOWN
    call.cancel()


async def test_test_service(backend: Backend, channel: grpc_lite.Channel) -> None:
    stub = grpc_lite.Stub(channel, TEST_SERVICE)
    m = testing_pb2
    assert await stub.EmptyCall(m.Empty()) == m.Empty()

    call = stub.UnaryCall(
        m.SimpleRequest(response_size=314, fill_server_id=True),
        metadata=[
            ("x-grpc-test-echo-initial", "initial-value"),
            ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"),
        ],
    )
    response = await call
    assert len(response.payload.body) == 314
    assert response.server_id == backend.backend_id
    assert (await call.initial_metadata())["x-grpc-test-echo-initial"] == "initial-value"
    assert (await call.trailing_metadata())["x-grpc-test-echo-trailing-bin"] == b"\xab\xab\xab"

    # Percent-encoded grpc-message (non-ASCII and '%').
    details = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈 100%\t\n"
    with pytest.raises(grpc_lite.RpcError) as info:
        await stub.UnaryCall(m.SimpleRequest(response_status=m.EchoStatus(code=2, message=details)))
    assert info.value.code() == SC.UNKNOWN
    assert info.value.details() == details

    out = stub.StreamingOutputCall(
        m.StreamingOutputCallRequest(
            response_parameters=[m.ResponseParameters(size=s) for s in (31415, 9, 2653, 58979)]
        )
    )
    assert [len(r.payload.body) async for r in out] == [31415, 9, 2653, 58979]

    sizes = (27182, 8, 1828, 45904)
    requests = [m.StreamingInputCallRequest(payload=m.Payload(body=b"\0" * s)) for s in sizes]
    response = await stub.StreamingInputCall(iter(requests))
    assert response.aggregated_payload_size == sum(sizes)

    def duplex_request(size: int) -> Any:
        return m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=size)])

    call = stub.FullDuplexCall()
    for size in (31415, 9, 2653):
        await call.write(duplex_request(size))
        assert len((await call.read()).payload.body) == size  # ping-pong
    await call.done_writing()
    assert await call.read() is grpc_lite.EOF
    assert await call.code() == SC.OK

    half = stub.HalfDuplexCall(iter([duplex_request(s) for s in (1, 2, 3)]))
    assert [len(r.payload.body) async for r in half] == [1, 2, 3]

    with pytest.raises(grpc_lite.RpcError) as info:
        await stub.UnimplementedCall(m.Empty())
    assert info.value.code() == SC.UNIMPLEMENTED
    with pytest.raises(grpc_lite.RpcError) as info:
        await grpc_lite.Stub(channel, UNIMPLEMENTED_SERVICE).UnimplementedCall(m.Empty())
    assert info.value.code() == SC.UNIMPLEMENTED
    assert "unknown service" in (info.value.details() or "")


async def test_large_messages_flow_control_and_compression(
    backend: Backend, channel: grpc_lite.Channel
) -> None:
    """3 MiB each way: more than the client's and the server's windows, so both sides must
    wait for WINDOW_UPDATEs; gzip and deflate requests are decompressed."""
    stub = grpc_lite.Stub(channel, TEST_SERVICE)
    m = testing_pb2
    big = 3 << 20
    for compression in (None, grpc_lite.Compression.Gzip, grpc_lite.Compression.Deflate):
        response = await stub.UnaryCall(
            m.SimpleRequest(response_size=big, payload=m.Payload(body=b"x" * big)),
            compression=compression,
            timeout=10,
        )
        assert len(response.payload.body) == big
    # Compressed responses too (the client must decompress).
    response = await stub.UnaryCall(
        m.SimpleRequest(response_size=1000, response_compressed=m.BoolValue(value=True))
    )
    assert len(response.payload.body) == 1000


async def test_small_server_window_pushes_back() -> None:
    b = Backend(initial_window_size=1024, connection_window_size=65535)
    async with b, grpc_lite.insecure_channel(b.address) as ch:
        stub = grpc_lite.Stub(ch, TEST_SERVICE)
        m = testing_pb2
        requests = [m.StreamingInputCallRequest(payload=m.Payload(body=b"\0" * 50_000))] * 5
        response = await stub.StreamingInputCall(iter(requests), timeout=10)
        assert response.aggregated_payload_size == 250_000


# --------------------------------------------------------------------------- custom handlers


async def test_custom_bytes_handlers_and_context(backend: Backend) -> None:
    seen: dict[str, Any] = {}

    async def echo(request: bytes, context: ServicerContext) -> bytes:
        seen["metadata"] = context.invocation_metadata()
        seen["peer"] = context.peer()
        seen["method"] = context.method
        seen["remaining"] = context.time_remaining()
        context.set_trailing_metadata([("x-trail", "t"), ("x-trail-bin", b"\x00\x01")])
        return request[::-1]

    async def upper_each(requests: AsyncIterator[bytes], context: ServicerContext) -> Any:
        async for r in requests:
            yield r.upper()

    async def count(requests: AsyncIterator[bytes], context: ServicerContext) -> bytes:
        return str(len([r async for r in requests])).encode()

    async def explode(request: bytes, context: ServicerContext) -> Any:
        for i in range(int(request)):
            await context.write(b"%d" % i)
        await context.abort(SC.RESOURCE_EXHAUSTED, "no more", [("x-why", "because")])

    def sync_handler(request: bytes, context: ServicerContext) -> bytes:
        raise ValueError("boom")

    backend.add_unary_unary("/custom.Svc/Echo", echo)
    backend.add_stream_stream("/custom.Svc/Upper", upper_each)
    backend.add_stream_unary("/custom.Svc/Count", count)
    backend.add_unary_stream("/custom.Svc/Explode", explode)
    backend.add_unary_unary("/custom.Svc/Sync", sync_handler)

    async with grpc_lite.insecure_channel(backend.address) as ch:
        call = ch.unary_unary("/custom.Svc/Echo")(
            b"abc", metadata=[("x-key", "v"), ("x-bin", b"\xff")], timeout=5
        )
        assert await call == b"cba"
        trailing = await call.trailing_metadata()
        assert trailing["x-trail"] == "t"
        assert trailing["x-trail-bin"] == b"\x00\x01"
        assert seen["metadata"]["x-key"] == "v"
        assert seen["metadata"]["x-bin"] == b"\xff"
        assert seen["peer"].startswith("ipv4:127.0.0.1:")
        assert seen["method"] == "/custom.Svc/Echo"
        assert 0 < seen["remaining"] <= 5

        upper = ch.stream_stream("/custom.Svc/Upper")(iter([b"a", b"b"]))
        assert [r async for r in upper] == [b"A", b"B"]
        assert await ch.stream_unary("/custom.Svc/Count")(iter([b"1"] * 7)) == b"7"

        explode_call = ch.unary_stream("/custom.Svc/Explode")(b"2")
        got = []
        with pytest.raises(grpc_lite.RpcError) as info:
            async for r in explode_call:
                got.append(r)
        assert got == [b"0", b"1"]
        assert info.value.code() == SC.RESOURCE_EXHAUSTED
        assert info.value.details() == "no more"
        assert info.value.trailing_metadata()["x-why"] == "because"

        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary("/custom.Svc/Sync")(b"")
        assert info.value.code() == SC.UNKNOWN
        assert "boom" in (info.value.details() or "")

        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary("/custom.Svc/Nope")(b"")
        assert info.value.code() == SC.UNIMPLEMENTED
        assert backend.calls["/custom.Svc/Nope"] == 1


async def test_protobuf_service_registration() -> None:
    class Greeter:
        async def SayHello(self, request: Any, context: ServicerContext) -> Any:
            if request.name == "bad":
                raise AbortError(SC.INVALID_ARGUMENT, "bad name")
            return helloworld_pb2.HelloReply(message=f"custom {request.name}")

    async with Backend(greeter=False) as b, grpc_lite.insecure_channel(b.address) as ch:
        stub = grpc_lite.Stub(ch, GREETER)
        with pytest.raises(grpc_lite.RpcError) as info:
            await stub.SayHello(hello())
        assert info.value.code() == SC.UNIMPLEMENTED
        b.add_service(GREETER, Greeter())
        assert (await stub.SayHello(hello("z"))).message == "custom z"
        with pytest.raises(grpc_lite.RpcError) as info:
            await stub.SayHello(hello("bad"))
        assert info.value.code() == SC.INVALID_ARGUMENT
        # Only SayHello was given: the other method is unknown.
        with pytest.raises(grpc_lite.RpcError) as info:
            await stub.SayHelloStreamReply(hello()).read()
        assert info.value.code() == SC.UNIMPLEMENTED
        assert "unknown method" in (info.value.details() or "")


async def test_client_cancel_reaches_the_handler(backend: Backend) -> None:
    started = asyncio.Event()
    ended: list[ServicerContext] = []

    async def hang(request: bytes, context: ServicerContext) -> bytes:
        context.add_done_callback(ended.append)
        started.set()
        await asyncio.Event().wait()  # hangs until the client cancels
        return b""

    backend.add_unary_unary("/custom.Svc/Hang", hang)
    async with grpc_lite.insecure_channel(backend.address) as ch:
        call = ch.unary_unary("/custom.Svc/Hang")(b"")
        await started.wait()
        call.cancel()
        await wait_until(lambda: bool(ended))
        assert ended[0].cancelled()


async def test_stream_reset_before_its_handler_starts_is_forgotten(backend: Backend) -> None:
    """HEADERS and RST_STREAM in one read: the handler task is cancelled before its first
    step, so its own cleanup never runs; the stream must still leave the connection's
    table (it used to stay there for good, and a draining server then never closed)."""
    import h2.config
    import h2.connection
    import h2.events

    started: list[bytes] = []

    async def handler(request: bytes, context: ServicerContext) -> bytes:
        started.append(request)
        return request

    backend.add_unary_unary("/custom.Svc/Echo", handler)
    host, port = backend.address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/custom.Svc/Echo"),
            (":authority", backend.address),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        streams = []
        for sid in (1, 3, 5):
            client.send_headers(sid, headers)
            client.send_data(sid, b"\x00\x00\x00\x00\x02hi", end_stream=True)
            client.reset_stream(sid)
            streams.append(sid)
        client.ping(b"resets!!")
        writer.write(client.data_to_send())  # one write: the server reads it at once
        await writer.drain()
        # The PING's ACK comes after the server has handled everything before it.
        acked = False
        while not acked:
            data = await asyncio.wait_for(reader.read(65536), 5)
            assert data, "server closed the connection"
            events = client.receive_data(data)
            acked = any(isinstance(e, h2.events.PingAckReceived) for e in events)
        [conn] = list(backend._connections)
        await wait_until(lambda: not conn.streams, seconds=2)
        assert started == []  # no handler ever ran
        # The connection still serves.
        client.send_headers(7, headers)
        client.send_data(7, b"\x00\x00\x00\x00\x02ok", end_stream=True)
        writer.write(client.data_to_send())
        await writer.drain()
        await wait_until(lambda: started == [b"ok"])
    finally:
        writer.close()
        await writer.wait_closed()


async def test_max_concurrent_streams() -> None:
    b = Backend(max_concurrent_streams=2)
    active = 0
    peak = 0

    async def slow(request: bytes, context: ServicerContext) -> bytes:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.1)
        active -= 1
        return request

    b.add_unary_unary("/custom.Svc/Slow", slow)
    async with b, grpc_lite.insecure_channel(b.address) as ch:
        mc = ch.unary_unary("/custom.Svc/Slow")
        results = await asyncio.gather(*(mc(b"%d" % i, timeout=10) for i in range(6)))
    assert results == [b"%d" % i for i in range(6)]
    assert peak == 2


# --------------------------------------------------------------------------- faults


async def test_delay_and_deadline(backend: Backend, channel: grpc_lite.Channel) -> None:
    """The server cancels the handler at the grpc-timeout and answers DEADLINE_EXCEEDED."""
    ended: list[ServicerContext] = []

    async def slow(request: bytes, context: ServicerContext) -> bytes:
        context.add_done_callback(ended.append)
        await asyncio.Event().wait()  # never answers: the server's deadline must cut it
        return b"late"

    backend.add_unary_unary("/custom.Svc/Slow", slow)
    start = time.monotonic()
    with pytest.raises(grpc_lite.RpcError) as info:
        await channel.unary_unary("/custom.Svc/Slow")(b"", timeout=0.2)
    assert info.value.code() == SC.DEADLINE_EXCEEDED
    await wait_until(lambda: bool(ended))
    assert ended[0].cancelled()
    assert time.monotonic() - start < 1.0

    stub = grpc_lite.Stub(channel, GREETER)
    backend.delay = 0.2
    start = time.monotonic()
    assert (await stub.SayHello(hello())).message.startswith("Hello you")
    assert time.monotonic() - start >= 0.2
    with pytest.raises(grpc_lite.RpcError) as info:
        await stub.SayHello(hello(), timeout=0.05)
    assert info.value.code() == SC.DEADLINE_EXCEEDED
    # The health service is exempt from delay.
    start = time.monotonic()
    await HealthStub(channel).Check(HealthCheckRequest())
    assert time.monotonic() - start < 0.15


async def test_fail_next(backend: Backend, channel: grpc_lite.Channel) -> None:
    stub = grpc_lite.Stub(channel, GREETER)
    backend.fail_next(2, SC.RESOURCE_EXHAUSTED, "slow down", pushback_ms=123)
    assert backend.failures_pending == 2
    for _ in range(2):
        with pytest.raises(grpc_lite.RpcError) as info:
            await stub.SayHello(hello())
        assert info.value.code() == SC.RESOURCE_EXHAUSTED
        assert info.value.details() == "slow down"
        assert info.value.trailing_metadata()["grpc-retry-pushback-ms"] == "123"
    assert (await stub.SayHello(hello())).message.startswith("Hello")
    assert backend.failures_pending == 0

    backend.fail_next(1, SC.ABORTED, method="/helloworld.Greeter/SayHelloStreamReply")
    assert (await stub.SayHello(hello())).message.startswith("Hello")
    with pytest.raises(grpc_lite.RpcError) as info:
        await stub.SayHelloStreamReply(hello()).read()
    assert info.value.code() == SC.ABORTED


async def test_fail_next_with_pushback_drives_grpc_lite_retries(backend: Backend) -> None:
    backend.fail_next(2, SC.UNAVAILABLE, "busy", pushback_ms=150)
    async with grpc_lite.insecure_channel(backend.address, service_config=retry_config()) as ch:
        stub = grpc_lite.Stub(ch, GREETER)
        start = time.monotonic()
        reply = await stub.SayHello(hello(), timeout=10)
        elapsed = time.monotonic() - start
        assert reply.message == f"Hello you from {backend.address}"
        assert backend.calls[SAY_HELLO] == 3
        # Two pushbacks of 150 ms replace the 10-50 ms backoff.
        assert elapsed >= 0.3

        # Pushback -1 means "do not retry".
        backend.fail_next(1, SC.UNAVAILABLE, "go away", pushback_ms=-1)
        with pytest.raises(grpc_lite.RpcError) as info:
            await stub.SayHello(hello(), timeout=10)
        assert info.value.code() == SC.UNAVAILABLE
        assert backend.calls[SAY_HELLO] == 4


async def test_drain_lets_an_in_flight_call_finish(
    backend: Backend, channel: grpc_lite.Channel
) -> None:
    stub = grpc_lite.Stub(channel, GREETER)
    await stub.SayHello(hello())
    backend.delay = 1.0
    call = stub.SayHello(hello("slow"), timeout=10)
    await wait_until(lambda: backend.calls[SAY_HELLO] == 2)
    start = time.monotonic()
    await backend.drain(grace=5)
    assert time.monotonic() - start >= 0.5  # waited for the call
    assert (await call).message == f"Hello slow from {backend.address}"
    assert backend.current_connections == 0
    backend.delay = 0
    # The channel reconnects for the next call.
    assert (await stub.SayHello(hello(), timeout=5)).message.startswith("Hello")
    assert backend.connections_accepted == 2


async def test_drain_grace_cuts_long_calls(backend: Backend, channel: grpc_lite.Channel) -> None:
    backend.delay = 10
    call = grpc_lite.Stub(channel, GREETER).SayHello(hello(), timeout=20)
    await wait_until(lambda: backend.calls[SAY_HELLO] == 1)
    start = time.monotonic()
    await backend.drain(grace=0.2)
    assert time.monotonic() - start < 2
    with pytest.raises(grpc_lite.RpcError) as info:
        await call
    assert info.value.code() == SC.UNAVAILABLE


async def test_stop_with_grace(backend: Backend, channel: grpc_lite.Channel) -> None:
    stub = grpc_lite.Stub(channel, GREETER)
    backend.delay = 0.3
    call = stub.SayHello(hello(), timeout=10)
    await wait_until(lambda: backend.calls[SAY_HELLO] == 1)
    await backend.stop(grace=5)
    assert (await call).message.startswith("Hello")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", backend.port), timeout=2).close()


async def test_abort_connections(backend: Backend, channel: grpc_lite.Channel) -> None:
    stub = grpc_lite.Stub(channel, GREETER)
    await stub.SayHello(hello())
    backend.delay = 5
    call = stub.SayHello(hello(), timeout=10)
    await wait_until(lambda: backend.calls[SAY_HELLO] == 2)
    backend.abort_connections()
    with pytest.raises(grpc_lite.RpcError) as info:
        await call
    assert info.value.code() == SC.UNAVAILABLE
    await wait_until(lambda: backend.current_connections == 0)
    backend.delay = 0
    assert (await stub.SayHello(hello(), wait_for_ready=True, timeout=5)).message


async def test_refuse_new_connections(backend: Backend) -> None:
    backend.refuse_new_connections(True)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", backend.port), timeout=2).close()
    async with grpc_lite.insecure_channel(backend.address, FAST_BACKOFF) as ch:
        stub = grpc_lite.Stub(ch, GREETER)
        with pytest.raises(grpc_lite.RpcError) as info:
            await stub.SayHello(hello(), timeout=2)
        assert info.value.code() == SC.UNAVAILABLE
        assert backend.connections_accepted == 0
        backend.refuse_new_connections(False)
        reply = await stub.SayHello(hello(), wait_for_ready=True, timeout=5)
        assert reply.message == f"Hello you from {backend.address}"
        assert backend.connections_accepted == 1
        # Refusing keeps open connections.
        backend.refuse_new_connections(True)
        assert (await stub.SayHello(hello(), timeout=5)).message
        assert backend.current_connections == 1


async def test_client_side_health_checking_sees_the_flip() -> None:
    """round_robin + healthCheckConfig over two backends: a NOT_SERVING backend leaves the
    rotation and comes back when SERVING again (A17)."""
    config = json.dumps(
        {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": ""}}
    )
    async with Backend(backend_id="a") as a, Backend(backend_id="b") as b:
        target = f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}"
        async with grpc_lite.insecure_channel(target, FAST_BACKOFF, service_config=config) as ch:
            stub = grpc_lite.Stub(ch, GREETER)

            async def answers(n: int) -> set[str]:
                replies = [await stub.SayHello(hello(), timeout=5) for _ in range(n)]
                return {r.message.rsplit(" ", 1)[1] for r in replies}

            await ch.channel_ready()
            await wait_until(
                lambda: (
                    all(s.health == "SERVING" for s in ch.snapshot().subchannels)
                    and len(ch.snapshot().subchannels) == 2
                )
            )
            assert await answers(6) == {"a", "b"}

            a.set_health("", "NOT_SERVING")
            await wait_until(
                lambda: any(s.health == "NOT_SERVING" for s in ch.snapshot().subchannels)
            )
            assert await answers(6) == {"b"}

            a.set_health("", "SERVING")
            await wait_until(lambda: all(s.health == "SERVING" for s in ch.snapshot().subchannels))
            assert await answers(6) == {"a", "b"}
            # Health watches are exempt from faults and were counted.
            assert a.calls["/grpc.health.v1.Health/Watch"] >= 1


async def test_unix_socket() -> None:
    directory = tempfile.mkdtemp(prefix="gl-")
    path = os.path.join(directory, "backend.sock")
    try:
        async with Backend(unix_path=path) as b:
            assert b.address == f"unix:{path}"
            assert b.port == 0
            async with grpc_lite.insecure_channel(b.address) as ch:
                reply = await grpc_lite.Stub(ch, GREETER).SayHello(hello())
                assert reply.message == f"Hello you from unix:{path}"
                b.refuse_new_connections(True)
                b.abort_connections()
                with pytest.raises(grpc_lite.RpcError):
                    await grpc_lite.Stub(ch, GREETER).SayHello(hello(), timeout=1)
                b.refuse_new_connections(False)
                reply = await grpc_lite.Stub(ch, GREETER).SayHello(
                    hello(), wait_for_ready=True, timeout=5
                )
                assert b.connections_accepted == 2
        assert not _exists(path)
    finally:
        os.rmdir(directory)

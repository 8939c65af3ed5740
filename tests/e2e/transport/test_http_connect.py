"""The HTTP CONNECT tunnel against a scripted proxy (an asyncio server in the test): the
exact request the client sends, a backend's bytes arriving together with the proxy's
answer, and every way a proxy can fail (refusal, garbage, closing, hanging). Each failure:
the subchannel goes TRANSIENT_FAILURE and the call fails UNAVAILABLE with details naming
the proxy's host:port and what it answered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

import grpc_lite
from grpc_lite._options import USER_AGENT
from grpc_lite._proto import testing_pb2
from tests.servers.harness import RunningServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

SC = grpc_lite.StatusCode
_S = grpc_lite.ChannelConnectivity
TEST_SERVICE = testing_pb2.DESCRIPTOR.services_by_name["TestService"]
# A short connect timeout (grpc.min_reconnect_backoff_ms is grpcio's MIN_CONNECT_TIMEOUT).
OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 500),
]

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class FakeProxy:
    """Accepts connections, reads one request head, then runs ``behaviour``."""

    behaviour: Behaviour
    address: str = ""
    requests: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.append(writer)
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            await self.behaviour(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.tasks.discard(task)


@contextlib.asynccontextmanager
async def fake_proxy(behaviour: Behaviour) -> AsyncIterator[FakeProxy]:
    proxy = FakeProxy(behaviour)
    proxy.server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
    proxy.address = f"127.0.0.1:{proxy.server.sockets[0].getsockname()[1]}"
    try:
        yield proxy
    finally:
        proxy.server.close()
        for writer in proxy.writers:
            writer.close()  # a hanging handler's read ends
        if proxy.tasks:
            await asyncio.wait(list(proxy.tasks), timeout=5)
        await proxy.server.wait_closed()


def answer(data: bytes, *, then: str = "close") -> Behaviour:
    """Write ``data``; then close, or hang (until the client or the test closes)."""

    async def behaviour(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        if then == "hang":
            await reader.read()

    return behaviour


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def relay_to(host: str, port: int) -> Behaviour:
    """Open the tunnel to the backend, and send the backend's first bytes (a grpcio server
    sends its SETTINGS at once) in the same write as the 200 answer."""

    async def behaviour(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend_reader, backend_writer = await asyncio.open_connection(host, port)
        try:
            first = await backend_reader.read(65536)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n" + first)
            await asyncio.gather(_pump(reader, backend_writer), _pump(backend_reader, writer))
        finally:
            backend_writer.close()

    return behaviour


async def _call(channel: grpc_lite.Channel) -> None:
    stub = grpc_lite.Stub(channel, TEST_SERVICE)
    response = await stub.UnaryCall(testing_pb2.SimpleRequest(response_size=100), timeout=5)
    assert len(response.payload.body) == 100


async def test_connect_request_and_early_backend_bytes(interop_server: RunningServer) -> None:
    """The request is exactly ``CONNECT host:port HTTP/1.1`` with Host, User-Agent and Basic
    Proxy-Authorization (the user info percent-decoded); bytes the proxy relays with its
    answer reach HTTP/2 (the backend's SETTINGS here)."""
    port = interop_server.port
    assert port is not None
    async with fake_proxy(relay_to("127.0.0.1", port)) as proxy:
        url = f"http://us%65r:p%40ss@{proxy.address}"
        options = [("grpc.http_proxy", url), ("grpc.primary_user_agent", "app/2")]
        async with grpc_lite.insecure_channel(f"localhost:{port}", options=options) as ch:
            await _call(ch)
            await _call(ch)
    assert proxy.requests == [
        f"CONNECT localhost:{port} HTTP/1.1\r\n"
        f"Host: localhost:{port}\r\n"
        f"User-Agent: app/2 {USER_AGENT}\r\n"
        "Proxy-Authorization: Basic dXNlcjpwQHNz\r\n"  # base64("user:p@ss")
        "\r\n".encode()
    ]


async def test_ipv6_target_is_bracketed(interop_server: RunningServer) -> None:
    """An IPv6 literal target is CONNECTed as ``[addr]:port`` (RFC 9110 authority form)."""
    async with fake_proxy(answer(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")) as proxy:
        options = [*OPTIONS, ("grpc.http_proxy", proxy.address)]
        async with grpc_lite.insecure_channel("[::1]:50051", options=options) as ch:
            with pytest.raises(grpc_lite.RpcError):
                await _call(ch)
    assert proxy.requests[0].startswith(b"CONNECT [::1]:50051 HTTP/1.1\r\nHost: [::1]:50051\r\n")


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (answer(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad"), "502 Bad Gateway"),
        (answer(b"HTTP/1.0 401 Unauthorized\r\n\r\n"), "401 Unauthorized"),
        (answer(b"HTTP/1.1 403 Forbidden\r\n\r\n", then="hang"), "403 Forbidden"),
        (answer(b"HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n"), "301 Moved"),
        (answer(b"HTTP/1.1 500\r\n\r\n"), "failed: 500"),
        (answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), "malformed answer from the proxy: 'SSH-2.0-"),
        (answer(b"\x00\x01garbage\xff\r\n\r\n"), "malformed answer from the proxy: '??garbage?'"),
        (answer(b"HTTP/1.1 200 OK\r\n"), "closed the connection in the middle of its answer"),
        (answer(b""), "the proxy closed the connection without answering"),
        (answer(b"HTTP/1.1 200 OK\r\nX: " + b"y" * 20000), "no end of header within 16384"),
        (answer(b"", then="hang"), "no answer within 0.5s (connect timeout)"),
        (answer(b"HTTP/1.1 200 OK\r\nX-Slow: 1\r\n", then="hang"), "no answer within 0.5s"),
    ],
)
async def test_proxy_failures(behaviour: Behaviour, expected: str) -> None:
    async with fake_proxy(behaviour) as proxy:
        options = [*OPTIONS, ("grpc.http_proxy", proxy.address)]
        async with grpc_lite.insecure_channel("backend.test:443", options=options) as ch:
            with pytest.raises(grpc_lite.RpcError) as info:
                await _call(ch)
            (sc,) = ch.snapshot().subchannels
            state = ch.get_state()
            events = [f"{e.subject}: {e.description}" for e in ch.snapshot().events]
    assert info.value.code() is SC.UNAVAILABLE
    details = info.value.details() or ""
    failed = f"HTTP CONNECT via proxy {proxy.address} failed: "
    assert failed in details
    assert expected in details
    assert state is _S.TRANSIENT_FAILURE  # pick_first stays there between attempts (A62)
    assert sc.address == f"backend.test:443 via proxy {proxy.address}"
    assert sc.last_error is not None and sc.last_error.startswith(failed)
    assert any(
        e.startswith(
            f"subchannel backend.test:443 via proxy {proxy.address}: "
            f"CONNECTING -> TRANSIENT_FAILURE: {failed}"
        )
        for e in events
    )
    assert proxy.requests[0].startswith(b"CONNECT backend.test:443 HTTP/1.1\r\n")


async def test_bytes_before_tls_are_refused() -> None:
    """Over TLS the client speaks first: bytes arriving with the 200 cannot be the backend's
    TLS answer, so the attempt fails instead of feeding them to the handshake."""
    async with fake_proxy(answer(b"HTTP/1.1 200 OK\r\n\r\nhello", then="hang")) as proxy:
        options = [*OPTIONS, ("grpc.http_proxy", proxy.address)]
        creds = grpc_lite.ssl_channel_credentials()
        async with grpc_lite.secure_channel("backend.test:443", creds, options) as ch:
            with pytest.raises(grpc_lite.RpcError) as info:
                await _call(ch)
    assert info.value.code() is SC.UNAVAILABLE
    assert (
        f"HTTP CONNECT via proxy {proxy.address} failed: 5 bytes arrived through the tunnel "
        "before the TLS handshake"
    ) in (info.value.details() or "")

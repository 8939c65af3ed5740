"""The shared read and write buffers (grpc_lite/_transport/_protocol.py).  Every connection
on a loop reads into one buffer, so nothing may keep a view of it past a read; writes are
joined in one buffer, which must not be reused while a transport still holds it.  Large
messages with distinct contents, interleaved across streams and across two connections on
one loop, must arrive intact, over TLS too.  CONFORMANCE 40/42 (message framing)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import grpc_lite
from grpc_lite._transport import _protocol
from grpc_lite.testing import Backend, ServicerContext

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def pattern(tag: int, index: int, size: int) -> bytes:
    """Bytes no other (tag, index) shares, so a misplaced piece is always noticed."""
    seed = hashlib.sha256(b"%d/%d" % (tag, index)).digest()
    return (seed * (size // len(seed) + 1))[:size]


async def stream_patterns(request: bytes, context: ServicerContext) -> AsyncIterator[bytes]:
    tag, count, size = (int(x) for x in request.split(b","))
    for i in range(count):
        yield pattern(tag, i, size)
        if i % 2:
            await asyncio.sleep(0)  # let other streams' frames in between


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend() as b:
        b.add_unary_stream("/bench.Patterns/Stream", stream_patterns)
        yield b


async def _check(channel: grpc_lite.Channel, tag: int, count: int, size: int) -> None:
    call = channel.unary_stream("/bench.Patterns/Stream")(b"%d,%d,%d" % (tag, count, size))
    got = [msg async for msg in call]
    assert len(got) == count
    for i, msg in enumerate(got):
        assert msg == pattern(tag, i, size), f"stream {tag} message {i} corrupted"


async def test_interleaved_large_messages_on_two_connections_arrive_intact(
    backend: Backend,
) -> None:
    reads: list[int] = []
    original = _protocol.Http2Transport.buffer_updated

    def counting(self: Any, nbytes: int) -> None:
        reads.append(nbytes)
        original(self, nbytes)

    _protocol.Http2Transport.buffer_updated = counting  # type: ignore[method-assign]
    try:
        async with (
            grpc_lite.insecure_channel(backend.address) as a,
            grpc_lite.insecure_channel(backend.address) as b,
        ):
            jobs = [
                _check(ch, tag, count=4, size=size)
                for tag, (ch, size) in enumerate(
                    [(a, 300_000), (b, 300_000), (a, 70_001), (b, 1_048_577), (a, 5)] * 3
                )
            ]
            await asyncio.gather(*jobs)
    finally:
        _protocol.Http2Transport.buffer_updated = original  # type: ignore[method-assign]
    assert backend.connections_accepted == 2
    # The messages really went through the shared buffer, in many reads.
    assert sum(reads) > 15 * 1_000_000
    assert len(reads) > 50
    assert max(reads) <= len(_protocol._read_buffer.view)


# ------------------------------------------------------------------ the shared write buffer


class QueueingTransport:
    """Like asyncio 3.12+ and uvloop when the socket is full: write() keeps the object it
    was given (a view of the shared write buffer) to send later."""

    def __init__(self, backlog: bool) -> None:
        self.backlog = backlog
        self.queued: list[Any] = []

    def is_closing(self) -> bool:
        return False

    def write(self, data: Any) -> None:
        self.queued.append(data)

    def get_write_buffer_size(self) -> int:
        return sum(len(d) for d in self.queued) if self.backlog else 0


@pytest.mark.parametrize("backlog", [True, False])
async def test_a_write_the_transport_still_holds_is_never_overwritten(backlog: bool) -> None:
    transport = _protocol.Http2Transport("test", None, None)
    fake = QueueingTransport(backlog)
    transport._transport = fake  # type: ignore[assignment]
    first = [b"a" * 40_000, b"b" * 40_000]
    transport._send(list(first))
    held = fake.queued[0]
    transport._send([b"c" * 50_000, b"d" * 30_000])
    if backlog:  # still queued in the transport: untouched by the second write
        assert bytes(held) == b"".join(first)
    else:  # sent at once: the buffer is reused
        assert bytes(fake.queued[1]) == b"c" * 50_000 + b"d" * 30_000
        assert held.obj is fake.queued[1].obj


# ------------------------------------------------------------------ over TLS


@pytest.fixture
def tls_pattern_server(tls_material: Any) -> Iterator[Any]:
    """A grpcio TLS server streaming the same patterns (asyncio's TLS transport feeds the
    buffered protocol from its own decrypted data)."""
    import grpc

    from tests.servers.harness import start_server

    def stream(request: bytes, context: Any) -> Iterator[bytes]:
        tag, count, size = (int(x) for x in request.split(b","))
        for i in range(count):
            yield pattern(tag, i, size)

    def register(server: Any) -> tuple[None, list[str]]:
        handler = grpc.method_handlers_generic_handler(
            "bench.Patterns", {"Stream": grpc.unary_stream_rpc_method_handler(stream)}
        )
        server.add_generic_rpc_handlers((handler,))
        return None, ["bench.Patterns"]

    running = start_server(register, tls=tls_material)
    try:
        yield running
    finally:
        running.stop(None).wait(5)


async def test_interleaved_large_messages_over_tls_arrive_intact(tls_pattern_server: Any) -> None:
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_pattern_server.tls.ca_pem)
    target = f"localhost:{tls_pattern_server.port}"
    async with (
        grpc_lite.secure_channel(target, creds) as a,
        grpc_lite.secure_channel(target, creds) as b,
    ):
        await asyncio.gather(
            *(
                _check(ch, tag, count=3, size=size)
                for tag, (ch, size) in enumerate([(a, 400_000), (b, 1_048_577), (a, 70_001)] * 3)
            )
        )

"""Client keepalive (A8; CONFORMANCE 158, 159) on the transport, against scripted asyncio
servers on loopback. The pure policy: tests/transport/test_keepalive.py."""

import asyncio

import pytest

from grpc_lite._transport import _frames as fr
from grpc_lite._transport import dial
from grpc_lite._transport._keepalive import MIN_KEEPALIVE_TIME, KeepaliveParams
from grpc_lite._transport._stream import ClientStream
from grpc_lite.status import StatusCode


def _params(time: float, timeout: float = 5.0, permit: bool = False) -> KeepaliveParams:
    params = KeepaliveParams(time=MIN_KEEPALIVE_TIME, timeout=timeout, permit_without_calls=permit)
    params.time = time  # below the A8 floor, for fast tests only
    return params


class _SilentAfterSettings(asyncio.Protocol):
    """Sends its SETTINGS (so the client is READY), then ignores everything it reads."""

    frames: list[tuple[int, int]]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""
        self.frames = _SilentAfterSettings.frames
        transport.write(fr.encode_settings({}))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.buf.startswith(fr.PREFACE):
            self.buf = self.buf[len(fr.PREFACE) :]
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            self.frames.append((self.buf[3], self.buf[4]))
            self.buf = self.buf[9 + length :]


class _Listener:
    def __init__(self) -> None:
        self.done = asyncio.get_running_loop().create_future()

    def stream_headers(self, stream: ClientStream) -> None:
        pass

    def stream_message(self, stream: ClientStream) -> None:
        pass

    def stream_writable(self, stream: ClientStream) -> None:
        pass

    def stream_done(self, stream: ClientStream) -> None:
        if not self.done.done():
            self.done.set_result(None)


@pytest.mark.integration
@pytest.mark.timeout(10)
async def test_unanswered_ping_closes_and_fails_calls_unavailable() -> None:
    """158: a server that never answers the keepalive PING: the transport closes after
    time + timeout and the in-flight call fails UNAVAILABLE naming the keepalive."""
    _SilentAfterSettings.frames = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_SilentAfterSettings, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        transport = await dial(
            f"127.0.0.1:{port}", connect_timeout=2, keepalive=_params(0.2, timeout=0.3)
        )
        listener = _Listener()
        stream = ClientStream(listener, b"", 0, max_receive=None, unary_response=True)
        transport.start_stream(stream)
        start = loop.time()
        await asyncio.wait_for(listener.done, 3)
        elapsed = loop.time() - start
        assert stream.code is StatusCode.UNAVAILABLE
        assert "keepalive" in stream.details
        assert 0.4 <= elapsed < 1.5, elapsed
        pings = [f for f in _SilentAfterSettings.frames if f[0] == fr.PING and not f[1] & 1]
        assert len(pings) == 1
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.integration
@pytest.mark.timeout(10)
async def test_too_many_pings_goaway_doubles_channel_keepalive() -> None:
    """159: GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") doubles the keepalive time."""

    class Calm(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transport.write(  # type: ignore[attr-defined]
                fr.encode_settings({})
                + fr.encode_goaway(0, fr.ENHANCE_YOUR_CALM, b"too_many_pings")
            )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Calm, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    params = KeepaliveParams(time=10.0)
    try:
        transport = await dial(f"127.0.0.1:{port}", connect_timeout=2, keepalive=params)
        for _ in range(50):
            if transport.goaway_received:
                break
            await asyncio.sleep(0.01)
        assert transport.goaway_received
        assert params.time == 20.0
        transport.close()
    finally:
        server.close()
        await server.wait_closed()

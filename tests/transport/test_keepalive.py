"""Client keepalive (A8; CONFORMANCE 156-159): the pure policy and the transport."""

import asyncio

import pytest

import grpc_lite
from grpc_lite._transport import _frames as fr
from grpc_lite._transport import dial
from grpc_lite._transport._keepalive import (
    MIN_KEEPALIVE_TIME,
    Action,
    Keepalive,
    KeepaliveParams,
)
from grpc_lite._transport._stream import ClientStream
from grpc_lite.status import StatusCode


def _params(time: float, timeout: float = 5.0, permit: bool = False) -> KeepaliveParams:
    params = KeepaliveParams(time=MIN_KEEPALIVE_TIME, timeout=timeout, permit_without_calls=permit)
    params.time = time  # below the A8 floor, for fast tests only
    return params


def test_minimum_keepalive_time_is_enforced() -> None:
    """156: a keepalive time below 10 s is raised to 10 s."""
    assert KeepaliveParams(time=1.0).time == 10.0
    assert KeepaliveParams(time=30.0).time == 30.0


def test_too_many_pings_doubles_the_time() -> None:
    """159: GOAWAY too_many_pings doubles KEEPALIVE_TIME for later connections."""
    params = KeepaliveParams(time=10.0)
    params.too_many_pings()
    assert params.time == 20.0


def test_ping_after_time_without_reads_measured_from_last_read() -> None:
    """157: a PING goes out once nothing was read for `time`, measured from the last read."""
    ka = Keepalive(_params(10.0), now=0.0)
    assert ka.tick(5.0, active_streams=1) == (Action.NONE, 10.0)
    ka.on_read(8.0)
    assert ka.tick(10.0, active_streams=1) == (Action.NONE, 18.0)
    action, next_at = ka.tick(18.0, active_streams=1)
    assert action is Action.PING and next_at == 23.0


def test_no_ping_without_streams_unless_permitted() -> None:
    """157: no PING with no open stream, unless permit_without_calls."""
    ka = Keepalive(_params(10.0), now=0.0)
    assert ka.tick(10.0, active_streams=0)[0] is Action.NONE
    ka2 = Keepalive(_params(10.0, permit=True), now=0.0)
    assert ka2.tick(10.0, active_streams=0)[0] is Action.PING


def test_any_read_answers_the_ping_and_silence_closes() -> None:
    """158: any read after the PING answers it; nothing read within timeout closes."""
    ka = Keepalive(_params(10.0, timeout=5.0), now=0.0)
    assert ka.tick(10.0, 1)[0] is Action.PING
    ka.on_read(12.0)
    assert ka.tick(15.0, 1) == (Action.NONE, 22.0)
    assert ka.tick(22.0, 1)[0] is Action.PING
    assert ka.tick(26.9, 1)[0] is Action.NONE
    assert ka.tick(27.0, 1)[0] is Action.CLOSE


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


def test_channel_keepalive_options_validated() -> None:
    """Options: grpc.keepalive_time_ms and friends are validated (wrong type -> ValueError)."""
    with pytest.raises(ValueError, match="keepalive_time_ms"):
        grpc_lite.insecure_channel("localhost:1", options=[("grpc.keepalive_time_ms", "x")])
    ch = grpc_lite.insecure_channel(
        "localhost:1",
        options=[("grpc.keepalive_time_ms", 1000), ("grpc.keepalive_timeout_ms", 500)],
    )
    assert ch._keepalive is not None
    assert ch._keepalive.time == MIN_KEEPALIVE_TIME  # 1 s raised to the A8 floor
    assert ch._keepalive.timeout == 0.5

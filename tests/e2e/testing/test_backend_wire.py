"""grpc_lite.testing.Backend on the wire, seen by a raw h2 client: Trailers-Only, the
server-side deadline, percent-encoding, the GOAWAY drain sequence, MAX_CONCURRENT_STREAMS and
send-side flow control."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

from grpc_lite.testing import Backend, helloworld_pb2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

SAY_HELLO = "/helloworld.Greeter/SayHello"


def grpc_message(payload: bytes) -> bytes:
    return struct.pack(">BI", 0, len(payload)) + payload


class RawClient:
    """An h2 client that records every frame the server sends (parsed by hyperframe)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.frames: list[Frame] = []
        self.events: list[h2.events.Event] = []
        self.closed = False
        self._buffer = b""
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, port: int, settings: dict[int, int] | None = None) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        if settings:
            client.h2.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        client.h2.initiate_connection()
        client.flush()
        client._task = asyncio.get_running_loop().create_task(client._read())
        return client

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def _read(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                self.closed = True
                self._changed.set()
                return
            # h2 4.4 closes its client state on GOAWAY (h2 #1181): GOAWAYs are only recorded,
            # everything else goes to h2 so the in-flight stream can still be read.
            for event in self.h2.receive_data(self._parse(data)):
                self.events.append(event)
            self.flush()
            self._changed.set()

    def _parse(self, data: bytes) -> bytes:
        """Record complete frames; return their bytes without GOAWAYs (the preface-free
        server side starts with a frame, so the stream is frame-aligned)."""
        self._buffer += data
        out = b""
        while len(self._buffer) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self._buffer[:9]))
            if len(self._buffer) < 9 + length:
                break
            raw = self._buffer[: 9 + length]
            frame.parse_body(memoryview(raw[9:]))
            self._buffer = self._buffer[9 + length :]
            self.frames.append(frame)
            if not isinstance(frame, GoAwayFrame):
                out += raw
        return out

    async def wait_for(self, predicate: Any, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def request(
        self, path: str, body: bytes | None = b"", headers: list[tuple[str, str]] | None = None
    ) -> int:
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(
            sid,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "localhost"),
                ("te", "trailers"),
                ("content-type", "application/grpc"),
                *(headers or []),
            ],
        )
        if body is not None:
            self.h2.send_data(sid, grpc_message(body), end_stream=True)
        self.flush()
        return sid

    def stream_frames(self, sid: int, kind: type[Frame]) -> list[Any]:
        return [f for f in self.frames if isinstance(f, kind) and f.stream_id == sid]

    def trailers(self, sid: int) -> dict[str, str] | None:
        for event in self.events:
            if isinstance(event, h2.events.TrailersReceived) and event.stream_id == sid:
                return dict(event.headers)  # type: ignore[arg-type]
            if (
                isinstance(event, h2.events.ResponseReceived)
                and event.stream_id == sid
                and event.stream_ended is not None
            ):
                return dict(event.headers)  # type: ignore[arg-type]
        return None

    async def close(self) -> None:
        self.writer.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(self.writer.wait_closed(), return_exceptions=True)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend() as b:
        yield b


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[RawClient]:
    c = await RawClient.connect(backend.port)
    try:
        yield c
    finally:
        await c.close()


async def test_trailers_only_for_unknown_method(client: RawClient) -> None:
    sid = client.request("/no.Such/Method")
    await client.wait_for(lambda: client.trailers(sid) is not None)
    headers = client.stream_frames(sid, HeadersFrame)
    assert len(headers) == 1
    assert "END_STREAM" in headers[0].flags
    trailers = client.trailers(sid)
    assert trailers is not None
    assert trailers[":status"] == "200"
    assert trailers["content-type"] == "application/grpc"
    assert trailers["grpc-status"] == "12"
    assert not client.stream_frames(sid, DataFrame)


async def test_unary_response_shape(client: RawClient, backend: Backend) -> None:
    sid = client.request(SAY_HELLO, helloworld_pb2.HelloRequest(name="w").SerializeToString())
    await client.wait_for(lambda: client.trailers(sid) is not None)
    assert len(client.stream_frames(sid, HeadersFrame)) == 2  # headers, trailers
    data = b"".join(f.data for f in client.stream_frames(sid, DataFrame))
    reply = helloworld_pb2.HelloReply.FromString(data[5:])
    assert reply.message == f"Hello w from {backend.address}"
    assert client.trailers(sid) == {"grpc-status": "0"}


async def test_server_enforces_grpc_timeout_and_percent_encodes(
    client: RawClient, backend: Backend
) -> None:
    backend.delay = 5
    sid = client.request(SAY_HELLO, b"", [("grpc-timeout", "100m")])
    await client.wait_for(lambda: client.trailers(sid) is not None, seconds=2)
    trailers = client.trailers(sid)
    assert trailers is not None
    assert trailers["grpc-status"] == "4"  # DEADLINE_EXCEEDED, from the server
    backend.delay = 0

    backend.fail_next(1, 13, "50% \u263a\n")
    sid = client.request(SAY_HELLO, b"")
    await client.wait_for(lambda: client.trailers(sid) is not None)
    trailers = client.trailers(sid)
    assert trailers is not None
    assert trailers["grpc-message"] == "50%25 %E2%98%BA%0A"


async def test_drain_sends_goaway_ping_goaway_and_serves_in_flight(
    client: RawClient, backend: Backend
) -> None:
    backend.delay = 0.5
    sid = client.request(SAY_HELLO, b"")
    await client.wait_for(lambda: backend.calls[SAY_HELLO] == 1)
    drain = asyncio.get_running_loop().create_task(backend.drain(grace=5))
    await client.wait_for(
        lambda: len([f for f in client.frames if isinstance(f, GoAwayFrame)]) == 2
    )
    control = [f for f in client.frames if isinstance(f, (GoAwayFrame, PingFrame))]
    assert isinstance(control[0], GoAwayFrame)
    assert control[0].last_stream_id == 2**31 - 1
    assert isinstance(control[1], PingFrame) and "ACK" not in control[1].flags
    goaways = [f for f in control if isinstance(f, GoAwayFrame)]
    assert goaways[1].last_stream_id == sid
    assert all(g.error_code == 0 for g in goaways)
    # The in-flight call still completes, then the server closes the connection.
    await client.wait_for(lambda: client.trailers(sid) is not None)
    assert client.trailers(sid) == {"grpc-status": "0"}
    await drain
    await client.wait_for(lambda: client.closed)


async def test_max_concurrent_streams_refuses_extra_streams() -> None:
    async with Backend(max_concurrent_streams=1) as b:
        c = await RawClient.connect(b.port)
        try:
            await c.wait_for(lambda: any(isinstance(f, SettingsFrame) for f in c.frames))
            settings = next(f for f in c.frames if isinstance(f, SettingsFrame))
            assert settings.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == 1
            b.delay = 0.3
            first = c.request(SAY_HELLO, b"")
            # Our h2 client would queue; force the second stream past the limit.
            c.h2.remote_settings = h2.settings.Settings(
                client=False, initial_values={SettingsFrame.MAX_CONCURRENT_STREAMS: 10}
            )
            second = c.request(SAY_HELLO, b"")
            await c.wait_for(lambda: bool(c.stream_frames(second, RstStreamFrame)))
            assert c.stream_frames(second, RstStreamFrame)[0].error_code == 7  # REFUSED_STREAM
            await c.wait_for(lambda: c.trailers(first) is not None)
            assert c.trailers(first) == {"grpc-status": "0"}
            assert not c.closed
        finally:
            await c.close()


async def test_response_respects_client_flow_control(backend: Backend) -> None:
    # The client's stream window is 100 bytes and it acknowledges nothing itself.
    c = await RawClient.connect(backend.port, {SettingsFrame.INITIAL_WINDOW_SIZE: 100})
    try:
        from grpc_lite.testing import testing_pb2

        request = testing_pb2.SimpleRequest(response_size=1000).SerializeToString()
        sid = c.request("/grpc.testing.TestService/UnaryCall", request)
        await c.wait_for(lambda: sum(len(f.data) for f in c.stream_frames(sid, DataFrame)) == 100)
        await asyncio.sleep(0.1)
        assert sum(len(f.data) for f in c.stream_frames(sid, DataFrame)) == 100
        assert c.trailers(sid) is None
        c.h2.increment_flow_control_window(5000, stream_id=sid)
        c.flush()
        await c.wait_for(lambda: c.trailers(sid) is not None)
        assert c.trailers(sid) == {"grpc-status": "0"}
        total = sum(len(f.data) for f in c.stream_frames(sid, DataFrame))
        assert total == 5 + len(
            testing_pb2.SimpleResponse(
                payload=testing_pb2.Payload(body=b"\0" * 1000)
            ).SerializeToString()
        )
    finally:
        await c.close()


async def test_http_errors(client: RawClient) -> None:
    sid = client.h2.get_next_available_stream_id()
    client.h2.send_headers(
        sid,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", SAY_HELLO),
            (":authority", "localhost"),
            ("content-type", "text/plain"),
        ],
        end_stream=True,
    )
    client.flush()
    await client.wait_for(lambda: client.trailers(sid) is not None)
    assert client.trailers(sid) == {":status": "415"}

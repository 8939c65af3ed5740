"""Self-tests of the scripted HTTP/2 peer (tests/h2peer.py), driven by a raw h2 client.

These do not touch grpc_lite: they make sure the harness itself is right before the
frame-level client tests (tests/e2e/transport/test_wire*.py) rely on it.
"""

from __future__ import annotations

import asyncio
import gzip
import struct

import h2.config
import h2.connection
import h2.events
import pytest
from hyperframe.frame import ExtensionFrame

from tests.h2peer import (
    H2Peer,
    PeerStream,
    echo_stream,
    echo_unary,
    grpc_frame,
    percent_encode,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(10)]

UNARY = "/grpc.testing.TestService/UnaryCall"


def deframe(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        flag, n = struct.unpack(">BI", data[:5])
        out.append((flag, data[5 : 5 + n]))
        data = data[5 + n :]
    return out


class RawClient:
    """Minimal h2 client: enough to exercise the peer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.events: list[h2.events.Event] = []
        self.h2.initiate_connection()
        self.flush()

    @classmethod
    async def connect(cls, target: str) -> RawClient:
        host, port = target.rsplit(":", 1)
        r, w = await asyncio.open_connection(host, int(port))
        return cls(r, w)

    def flush(self) -> None:
        self.writer.write(self.h2.data_to_send())

    def request(self, path: str = UNARY, extra: list[tuple[str, str]] | None = None) -> int:
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(
            sid,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "x"),
                ("te", "trailers"),
                ("content-type", "application/grpc"),
                *(extra or []),
            ],
        )
        self.flush()
        return sid

    async def pump(self) -> bool:
        data = await self.reader.read(65536)
        if not data:
            return False
        for ev in self.h2.receive_data(data):
            self.events.append(ev)
            if isinstance(ev, h2.events.DataReceived):
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        self.flush()
        return True

    async def until(self, pred) -> None:  # type: ignore[no-untyped-def]
        while not pred():
            if not await self.pump():
                raise ConnectionError("closed")

    def ended(self, sid: int) -> bool:
        return any(
            isinstance(e, h2.events.StreamEnded | h2.events.StreamReset) and e.stream_id == sid
            for e in self.events
        )

    def body(self, sid: int) -> bytes:
        return b"".join(
            e.data
            for e in self.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == sid
        )

    def headers(self, sid: int) -> list[list[tuple[str, str]]]:
        return [
            list(e.headers)
            for e in self.events
            if isinstance(e, h2.events.ResponseReceived | h2.events.TrailersReceived)
            and e.stream_id == sid
        ]

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_unary_echo_and_recording() -> None:
    async with H2Peer(echo_unary) as peer:
        c = await RawClient.connect(peer.target)
        sid = c.request(extra=[("x-k", "v")])
        c.h2.send_data(sid, grpc_frame(b"hello"), end_stream=True)
        c.flush()
        await c.until(lambda: c.ended(sid))
        assert deframe(c.body(sid)) == [(0, b"hello")]
        hdrs = c.headers(sid)
        assert hdrs[0][:2] == [(":status", "200"), ("content-type", "application/grpc")]
        assert ("grpc-status", "0") in hdrs[1]
        st = peer.streams[0]
        assert st.headers[0] == (":method", "POST")
        assert st.header("x-k") == "v"
        assert st.end_stream and st.messages == [(0, b"hello")]
        assert st.data_frames == [(10, 10, True)]
        names = [f.type_name for f in peer.connection.frames]
        assert names[0] == "SETTINGS"
        assert "HEADERS" in names and "DATA" in names
        assert peer.connection_count == 1 and not peer.errors
        await c.close()


async def test_streaming_and_flow_control_small_window() -> None:
    """Peer respects the client's 100-byte window and 16 KiB frames; echo over many messages."""
    async with H2Peer(echo_stream) as peer:
        c = await RawClient.connect(peer.target)
        c.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100})
        c.flush()
        sid = c.request()
        msgs = [bytes([i]) * (300 * i) for i in range(1, 5)]
        for m in msgs:
            c.h2.send_data(sid, grpc_frame(m))
        c.h2.end_stream(sid)
        c.flush()
        await c.until(lambda: c.ended(sid))
        assert [p for _, p in deframe(c.body(sid))] == msgs
        out_data = [f for f in peer.connection.sent_frames if f.type_name == "DATA"]
        assert out_data and all(f.length <= 100 for f in out_data)
        assert not peer.errors
        await c.close()


async def test_server_streaming_gzip_padding_split_headers() -> None:
    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers(extra=[("x-big", "a" * 300)], split=50)
        await stream.send_message(b"plain")
        await stream.send_message(b"zipped", compress=True, pad_length=255)
        await stream.send_trailers(0, "100% ☺", split=7)

    async with H2Peer(handler) as peer:
        c = await RawClient.connect(peer.target)
        sid = c.request()
        c.h2.send_data(sid, grpc_frame(b""), end_stream=True)
        c.flush()
        await c.until(lambda: c.ended(sid))
        msgs = deframe(c.body(sid))
        assert msgs[0] == (0, b"plain")
        assert msgs[1][0] == 1 and gzip.decompress(msgs[1][1]) == b"zipped"
        hdrs = c.headers(sid)
        assert ("x-big", "a" * 300) in hdrs[0]
        assert ("grpc-message", percent_encode("100% ☺")) in hdrs[1]
        assert percent_encode("100% ☺") == "100%25 %E2%98%BA"
        sent = [f.type_name for f in peer.connection.sent_frames]
        assert sent.count("CONTINUATION") >= 6
        padded = [f for f in peer.connection.sent_frames if f.pad_length == 255]
        assert len(padded) == 1
        await c.close()


async def test_trailers_only_reset_goaway_keeps_serving() -> None:
    """GOAWAY written raw: h2 on the peer stays open and the stream still completes."""
    gate = asyncio.Event()

    async def handler(stream: PeerStream) -> None:
        if stream.path == "/x/Reset":
            await stream.reset(8)
        elif stream.path == "/x/Status":
            await stream.trailers_only(5, "nope", [("k", "v")])
        else:
            await gate.wait()
            await stream.send_message(b"late")
            await stream.send_trailers(0)

    async with H2Peer(handler) as peer:
        c = await RawClient.connect(peer.target)
        s1 = c.request("/x/Reset")
        s3 = c.request("/x/Status")
        s5 = c.request("/x/Hold")
        for s in (s1, s3, s5):
            c.h2.send_data(s, grpc_frame(b""), end_stream=True)
        c.flush()
        await c.until(lambda: c.ended(s1) and c.ended(s3))
        assert any(isinstance(e, h2.events.StreamReset) and e.error_code == 8 for e in c.events)
        assert ("grpc-status", "5") in c.headers(s3)[0]
        await peer.wait_for_streams(3)
        # The raw h2 client would close on GOAWAY (h2 #1181), so check the bytes only.
        peer.goaway(last_stream_id=5, debug=b"drain")
        data = await c.reader.read(65536)
        assert b"drain" in data
        assert peer.connection.goaways_sent == [(5, 0, b"drain")]
        gate.set()
        await peer.wait_until(lambda: peer.connection.streams[5].closed_by_peer)
        assert not peer.connection.h2_dead
        await c.close()


async def test_ping_settings_unknown_frame_and_silent_modes() -> None:
    async with H2Peer() as peer:
        c = await RawClient.connect(peer.target)
        await peer.wait_for_connections(1)
        await c.pump()  # server SETTINGS
        peer.ping()
        peer.update_settings({"MAX_CONCURRENT_STREAMS": 7})
        peer.connection.write_unknown_frame(0xFA, 0, b"junk")
        peer.connection.write_frame(ExtensionFrame(0xFB, 0, 0, b"more junk"))
        await c.pump()
        unknown = [f for f in peer.connection.sent_frames if f.type in (0xFA, 0xFB)]
        assert [f.length for f in unknown] == [4, 9]
        await peer.connection.wait_ping_acks()
        await peer.connection.wait_settings_acked(2)
        assert peer.connection.outstanding_pings == 0
        assert c.h2.remote_settings.max_concurrent_streams == 7
        await c.close()
        await peer.connection.wait_closed()

    async with H2Peer(silent=True) as peer:
        c = await RawClient.connect(peer.target)
        await peer.wait_until(lambda: peer.connections and peer.connection.frames)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await c.reader.read(1)
        assert peer.connection.sent_frames == []
        await c.close()

    async with H2Peer(close_on_accept=True) as peer:
        c = await RawClient.connect(peer.target)
        assert await c.reader.read(1) == b""
        await c.close()


async def test_client_protocol_error_is_recorded() -> None:
    """A client that overruns the peer's 1000-byte window shows up in peer.errors."""
    async with H2Peer(settings={"INITIAL_WINDOW_SIZE": 1000}) as peer:
        c = await RawClient.connect(peer.target)
        sid = c.request()
        # Ignore the server's SETTINGS: pretend the window is still 65535.
        c.writer.write(
            b"\x00\x08\x00\x00\x00\x00\x00\x00\x01".replace(  # DATA 2048 bytes on stream 1
                b"\x00\x08\x00", (2048).to_bytes(3, "big")
            )
            + b"\x00" * 2048
        )
        await c.pump()  # server SETTINGS
        await peer.wait_until(lambda: peer.errors or peer.connection.closed)
        assert sid == 1
        assert peer.frames_of("DATA")[0].length == 2048
        await c.close()

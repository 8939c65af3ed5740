"""The h2 server core (grpc_lite/testing/_h2core.py), sans-IO, against an h2 client."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.settings
from hyperframe.frame import GoAwayFrame, PingFrame

from grpc_lite.testing._h2core import PREFACE, FrameTap, H2ServerCore

SC = h2.settings.SettingCodes


def _client() -> h2.connection.H2Connection:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    client.initiate_connection()
    return client


def _request(client: h2.connection.H2Connection) -> int:
    sid = client.get_next_available_stream_id()
    client.send_headers(
        sid,
        [(":method", "POST"), (":scheme", "http"), (":path", "/s/M"), (":authority", "x")],
    )
    return sid


def _handshake(core: H2ServerCore, client: h2.connection.H2Connection) -> None:
    core.receive(client.data_to_send())
    client.receive_data(core.data_to_send())
    core.receive(client.data_to_send())


def test_frame_tap_splits_frames_across_reads_and_records_malformed_ones() -> None:
    ping = PingFrame(0, opaque_data=b"12345678").serialize()
    bad = b"\x00\x00\x03\x06\x00\x00\x00\x00\x00abc"  # PING with a 3-byte body
    data = PREFACE + ping + bad
    tap = FrameTap("in", expect_preface=True)
    records = []
    for i in range(0, len(data), 7):
        records += tap.feed(data[i : i + 7], float(i))
    assert tap.pending == 0
    assert [r.type_name for r in records] == ["PING", "PING"]
    assert records[0].frame is not None and records[0].error is None
    assert records[1].frame is None and records[1].error is not None
    assert records[1].length == 3


def test_frame_tap_stops_at_a_bad_preface() -> None:
    tap = FrameTap("in", expect_preface=True)
    assert tap.feed(b"GET / HTTP/1.1\r\n\r\n") == []
    assert tap.broken == "bad client preface"


def test_initiate_advertises_one_limit_and_enforces_another() -> None:
    def run(enforce: bool) -> H2ServerCore:
        core = H2ServerCore(record_out=True)
        advertised = {SC.MAX_CONCURRENT_STREAMS: 1, SC.INITIAL_WINDOW_SIZE: 1000}
        core.initiate(
            advertised,
            enforce={**advertised, SC.MAX_CONCURRENT_STREAMS: 2**31 - 1} if enforce else None,
            connection_window=1 << 20,
        )
        client = _client()
        _request(client)
        _request(client)  # before the server's SETTINGS: the client does not know the limit
        core.receive(client.data_to_send())
        client.receive_data(core.data_to_send())
        assert client.remote_settings.max_concurrent_streams == 1
        return core

    core = run(enforce=True)
    assert [r.type_name for r in core.timeline][:2] == ["SETTINGS", "WINDOW_UPDATE"]
    assert core.timeline[1].increment == (1 << 20) - 65535
    assert core.errors == [] and core.h2.open_inbound_streams == 2
    assert run(enforce=False).errors  # h2 would have made it a connection error


def test_raw_frames_go_out_in_order_with_h2s_own() -> None:
    core = H2ServerCore(record_out=True)
    core.initiate({})
    core.h2.ping(b"pingping")
    core.queue_goaway(7, code=0, debug=b"bye")
    core.queue_raw(b"\xff", record=False)
    out = core.data_to_send()
    assert out.endswith(
        GoAwayFrame(0, last_stream_id=7, additional_data=b"bye").serialize() + b"\xff"
    )
    assert [r.type_name for r in core.timeline] == ["SETTINGS", "PING", "GOAWAY"]
    assert core.data_to_send() == b""


def test_a_protocol_error_is_kept_and_ends_the_input() -> None:
    seen = []

    class Core(H2ServerCore):
        def protocol_error(self, exc: Exception) -> None:
            seen.append(exc)

    core = Core(record_in=True)
    core.initiate({})
    client = _client()
    _handshake(core, client)
    # DATA on stream 1, which was never opened: a connection error (RFC 9113 5.1).
    bad = b"\x00\x00\x01\x00\x00\x00\x00\x00\x01x"
    assert core.receive(bad) == []
    assert core.h2_dead and len(core.errors) == 1 and seen == core.errors
    assert core.receive(PingFrame(0, opaque_data=b"12345678").serialize()) == []
    assert [r.type_name for r in core.timeline][-2:] == ["DATA", "PING"]  # still recorded


def test_the_clients_goaway_ends_the_input() -> None:
    core = H2ServerCore()
    core.initiate({})
    client = _client()
    _handshake(core, client)
    client.close_connection()
    events = core.receive(client.data_to_send())
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    assert core.h2_dead and core.errors == []


def test_send_room_follows_the_clients_windows() -> None:
    core = H2ServerCore()
    core.initiate({})
    client = _client()
    client.update_settings({SC.INITIAL_WINDOW_SIZE: 10})
    _handshake(core, client)
    sid = _request(client)
    core.receive(client.data_to_send())
    assert core.send_room(sid) == 10
    core.h2.send_headers(sid, [(":status", "200")])
    core.h2.send_data(sid, b"x" * 4)
    assert core.send_room(sid) == 6
    assert core.send_room(99) is None

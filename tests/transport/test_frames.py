"""HTTP/2 frame codec (grpc_lite/_transport/_frames.py): encoders checked against hyperframe
(an independent parser), FrameReader checked against hyperframe's serializer, padding and
size errors, and FrameReader's chunking invariance (property tests)."""

from __future__ import annotations

import struct

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpc_lite._transport import _frames as fr
from tests.fakes.h2server import parse_frames

Tuple4 = tuple[int, int, int, bytes]


def read_all(data: bytes, max_frame_size: int = fr.DEFAULT_MAX_FRAME_SIZE) -> list[Tuple4]:
    reader = fr.FrameReader(max_frame_size)
    frames = [(t, f, s, bytes(p)) for t, f, s, p in reader.feed(data)]
    assert reader.buffered == 0
    return frames


# ---------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("end_stream", [False, True])
@pytest.mark.parametrize("data", [b"", b"x", b"hello world" * 100, bytes(range(256)) * 64])
def test_data_round_trip(data: bytes, end_stream: bool) -> None:
    raw = fr.encode_data(7, data, end_stream)
    (frame,) = parse_frames(raw)
    assert isinstance(frame, DataFrame)
    assert frame.stream_id == 7
    assert frame.data == data
    assert ("END_STREAM" in frame.flags) is end_stream
    assert read_all(raw) == [(fr.DATA, int(end_stream), 7, data)]


def test_data_accepts_memoryview() -> None:
    data = memoryview(b"0123456789")[2:6]
    raw = fr.encode_data(1, data, False)
    assert read_all(raw) == [(fr.DATA, 0, 1, b"2345")]


@pytest.mark.parametrize("end_stream", [False, True])
def test_headers_single_frame(end_stream: bool) -> None:
    block = b"\x83\x86" + b"a" * 100
    raw = fr.encode_headers(3, block, end_stream, 16384)
    (frame,) = parse_frames(raw)
    assert isinstance(frame, HeadersFrame)
    assert frame.data == block
    assert "END_HEADERS" in frame.flags
    assert ("END_STREAM" in frame.flags) is end_stream
    assert read_all(raw) == [
        (fr.HEADERS, fr.FLAG_END_HEADERS | (fr.FLAG_END_STREAM if end_stream else 0), 3, block)
    ]


def check_header_split(block: bytes, max_frame_size: int, end_stream: bool) -> None:
    raw = fr.encode_headers(5, block, end_stream, max_frame_size)
    frames = read_all(raw)
    assert frames[0][0] == fr.HEADERS
    assert all(t == fr.CONTINUATION for t, _, _, _ in frames[1:])
    assert all(s == 5 for _, _, s, _ in frames)
    assert all(len(p) <= max_frame_size for *_, p in frames)
    # END_STREAM only on HEADERS; END_HEADERS only on the last frame (RFC 9113 6.2, 6.10).
    assert bool(frames[0][1] & fr.FLAG_END_STREAM) is end_stream
    assert all(not f & fr.FLAG_END_STREAM for _, f, _, _ in frames[1:])
    assert [bool(f & fr.FLAG_END_HEADERS) for _, f, _, _ in frames] == [False] * (
        len(frames) - 1
    ) + [True]
    assert all(not f & fr.FLAG_PADDED for _, f, _, _ in frames)
    assert b"".join(p for *_, p in frames) == block
    # No empty CONTINUATION frames and the minimum number of frames.
    if block:
        assert all(p for *_, p in frames)
        assert len(frames) == -(-len(block) // max_frame_size)
    # hyperframe agrees.
    parsed = parse_frames(raw)
    assert isinstance(parsed[0], HeadersFrame)
    assert all(isinstance(f, ContinuationFrame) for f in parsed[1:])
    assert b"".join(f.data for f in parsed) == block


@pytest.mark.parametrize(
    ("size", "max_frame_size"),
    [(0, 1), (1, 1), (10, 1), (10, 3), (9, 3), (16384, 16384), (16385, 16384), (50000, 16384)],
)
@pytest.mark.parametrize("end_stream", [False, True])
def test_headers_continuation_split(size: int, max_frame_size: int, end_stream: bool) -> None:
    block = bytes(i % 251 for i in range(size))
    check_header_split(block, max_frame_size, end_stream)


@given(
    block=st.binary(max_size=300),
    max_frame_size=st.integers(1, 64),
    end_stream=st.booleans(),
)
def test_headers_continuation_split_property(
    block: bytes, max_frame_size: int, end_stream: bool
) -> None:
    check_header_split(block, max_frame_size, end_stream)


def test_settings_round_trip() -> None:
    values = {
        fr.SETTINGS_ENABLE_PUSH: 0,
        fr.SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20,
        fr.SETTINGS_MAX_HEADER_LIST_SIZE: 8192,
        fr.SETTINGS_MAX_FRAME_SIZE: 16777215,
    }
    raw = fr.encode_settings(values)
    (frame,) = parse_frames(raw)
    assert isinstance(frame, SettingsFrame)
    assert frame.stream_id == 0
    assert dict(frame.settings) == values
    ((t, f, s, payload),) = read_all(raw)
    assert (t, f, s) == (fr.SETTINGS, 0, 0)
    assert fr.parse_settings(payload) == list(values.items())
    assert fr.encode_settings({}) == fr.frame_header(0, fr.SETTINGS, 0, 0)


def test_settings_ack() -> None:
    (frame,) = parse_frames(fr.SETTINGS_ACK)
    assert isinstance(frame, SettingsFrame)
    assert "ACK" in frame.flags
    assert read_all(fr.SETTINGS_ACK) == [(fr.SETTINGS, fr.FLAG_ACK, 0, b"")]


def test_settings_parse_from_hyperframe() -> None:
    frame = SettingsFrame(0, settings={fr.SETTINGS_MAX_CONCURRENT_STREAMS: 1, 0x99: 7})
    ((_, _, _, payload),) = read_all(frame.serialize())
    assert fr.parse_settings(payload) == [(fr.SETTINGS_MAX_CONCURRENT_STREAMS, 1), (0x99, 7)]


@pytest.mark.parametrize("length", [1, 5, 7, 13])
def test_settings_bad_length(length: int) -> None:
    with pytest.raises(fr.FrameError) as ei:
        fr.parse_settings(b"\0" * length)
    assert ei.value.code == fr.FRAME_SIZE_ERROR


@pytest.mark.parametrize(("stream_id", "increment"), [(0, 1), (0, 2**31 - 1), (9, 65535)])
def test_window_update_round_trip(stream_id: int, increment: int) -> None:
    raw = fr.encode_window_update(stream_id, increment)
    (frame,) = parse_frames(raw)
    assert isinstance(frame, WindowUpdateFrame)
    assert (frame.stream_id, frame.window_increment) == (stream_id, increment)
    ((t, f, s, payload),) = read_all(raw)
    assert (t, f, s) == (fr.WINDOW_UPDATE, 0, stream_id)
    assert fr.parse_u32(payload) == increment


@pytest.mark.parametrize("ack", [False, True])
def test_ping_round_trip(ack: bool) -> None:
    raw = fr.encode_ping(b"12345678", ack=ack)
    (frame,) = parse_frames(raw)
    assert isinstance(frame, PingFrame)
    assert frame.opaque_data == b"12345678"
    assert ("ACK" in frame.flags) is ack
    assert read_all(raw) == [(fr.PING, fr.FLAG_ACK if ack else 0, 0, b"12345678")]


@pytest.mark.parametrize("code", [fr.NO_ERROR, fr.CANCEL, fr.HTTP_1_1_REQUIRED, 0xFFFFFFFF])
def test_rst_stream_round_trip(code: int) -> None:
    raw = fr.encode_rst_stream(11, code)
    (frame,) = parse_frames(raw)
    assert isinstance(frame, RstStreamFrame)
    assert (frame.stream_id, frame.error_code) == (11, code)
    ((t, f, s, payload),) = read_all(raw)
    assert (t, f, s) == (fr.RST_STREAM, 0, 11)
    assert fr.parse_u32(payload) == code


@pytest.mark.parametrize("debug", [b"", b"drained", b"x" * 1000])
def test_goaway_round_trip(debug: bytes) -> None:
    raw = fr.encode_goaway(2**31 - 1, fr.ENHANCE_YOUR_CALM, debug)
    (frame,) = parse_frames(raw)
    assert isinstance(frame, GoAwayFrame)
    assert frame.last_stream_id == 2**31 - 1
    assert frame.error_code == fr.ENHANCE_YOUR_CALM
    assert frame.additional_data == debug
    ((t, f, s, payload),) = read_all(raw)
    assert (t, f, s) == (fr.GOAWAY, 0, 0)
    assert fr.parse_goaway(payload) == (2**31 - 1, fr.ENHANCE_YOUR_CALM, debug)


def test_goaway_parse_masks_reserved_bit_and_rejects_short() -> None:
    assert fr.parse_goaway(struct.pack(">II", 0x80000005, 2)) == (5, 2, b"")
    for n in range(8):
        with pytest.raises(fr.FrameError) as ei:
            fr.parse_goaway(b"\0" * n)
        assert ei.value.code == fr.FRAME_SIZE_ERROR


def test_reader_masks_reserved_stream_id_bit() -> None:
    raw = struct.pack(">IBI", (4 << 8) | fr.RST_STREAM, 0, 0x80000003) + b"\0\0\0\x08"
    assert read_all(raw) == [(fr.RST_STREAM, 0, 3, b"\0\0\0\x08")]


def test_reader_parses_hyperframe_output() -> None:
    frames = [
        DataFrame(1, b"abc", flags=["END_STREAM"]),
        HeadersFrame(3, b"\x88", flags=["END_HEADERS"]),
        PriorityFrame(3, depends_on=1, stream_weight=10),
        RstStreamFrame(5, error_code=8),
        SettingsFrame(0, settings={4: 1000}),
        PingFrame(0, opaque_data=b"abcdefgh", flags=["ACK"]),
        GoAwayFrame(0, last_stream_id=3, error_code=0, additional_data=b"bye"),
        WindowUpdateFrame(0, window_increment=100),
        ContinuationFrame(3, b"\x00", flags=["END_HEADERS"]),
    ]
    raw = b"".join(f.serialize() for f in frames)
    got = read_all(raw)
    assert [t for t, *_ in got] == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert [s for _, _, s, _ in got] == [f.stream_id for f in frames]
    assert got[0][3] == b"abc"
    assert got[6][3] == struct.pack(">II", 3, 0) + b"bye"


def test_reader_unknown_type_passes_through() -> None:
    raw = fr.frame_header(3, 0xFA, 0xFF, 9) + b"xyz"
    assert read_all(raw) == [(0xFA, 0xFF, 9, b"xyz")]


# ---------------------------------------------------------------------------- padding


@pytest.mark.parametrize("ftype", [fr.DATA, fr.HEADERS])
@pytest.mark.parametrize(("data", "pad"), [(b"hello", 0), (b"hello", 10), (b"", 255), (b"x", 1)])
def test_padding_stripped(ftype: int, data: bytes, pad: int) -> None:
    payload = bytes((pad,)) + data + b"\xaa" * pad
    assert bytes(fr.strip_padding(fr.FLAG_PADDED, payload, ftype)) == data
    assert bytes(fr.strip_padding(fr.FLAG_PADDED, memoryview(payload), ftype)) == data
    # Without PADDED the payload is returned as is.
    assert fr.strip_padding(0, payload, ftype) == payload


def test_padding_from_hyperframe() -> None:
    frame = DataFrame(1, b"payload", pad_length=17, flags=["PADDED"])
    ((t, f, _, payload),) = read_all(frame.serialize())
    assert len(payload) == 1 + 7 + 17
    assert bytes(fr.strip_padding(f, payload, t)) == b"payload"


@pytest.mark.parametrize("ftype", [fr.DATA, fr.HEADERS])
@pytest.mark.parametrize(("pad", "length"), [(1, 1), (5, 5), (10, 3), (255, 255), (255, 1)])
def test_padding_too_long_is_protocol_error(ftype: int, pad: int, length: int) -> None:
    payload = bytes((pad,)) + b"\0" * (length - 1)
    with pytest.raises(fr.FrameError) as ei:
        fr.strip_padding(fr.FLAG_PADDED, payload, ftype)
    assert ei.value.code == fr.PROTOCOL_ERROR


@pytest.mark.parametrize("ftype", [fr.DATA, fr.HEADERS])
def test_padded_empty_payload_is_frame_size_error(ftype: int) -> None:
    with pytest.raises(fr.FrameError) as ei:
        fr.strip_padding(fr.FLAG_PADDED, b"", ftype)
    assert ei.value.code == fr.FRAME_SIZE_ERROR


# ---------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("max_frame_size", [16384, 100000])
def test_oversize_frame_rejected_from_header_alone(max_frame_size: int) -> None:
    header = fr.frame_header(max_frame_size + 1, fr.DATA, 0, 1)
    reader = fr.FrameReader(max_frame_size)
    with pytest.raises(fr.FrameError) as ei:
        reader.feed(header)  # no payload bytes at all
    assert ei.value.code == fr.FRAME_SIZE_ERROR


def test_oversize_header_split_across_feeds() -> None:
    reader = fr.FrameReader()
    header = fr.frame_header(16385, fr.HEADERS, 0, 1)
    assert reader.feed(header[:5]) == []
    with pytest.raises(fr.FrameError) as ei:
        reader.feed(header[5:])
    assert ei.value.code == fr.FRAME_SIZE_ERROR


def test_oversize_after_valid_frames_in_same_chunk() -> None:
    reader = fr.FrameReader()
    with pytest.raises(fr.FrameError) as ei:
        reader.feed(fr.encode_ping(b"\0" * 8) + fr.frame_header((1 << 24) - 1, fr.DATA, 0, 1))
    assert ei.value.code == fr.FRAME_SIZE_ERROR


def test_max_size_frame_accepted() -> None:
    data = b"z" * 16384
    assert read_all(fr.encode_data(1, data, False)) == [(fr.DATA, 0, 1, data)]


def test_partial_frame_stays_buffered() -> None:
    raw = fr.encode_data(1, b"abcdef", True)
    reader = fr.FrameReader()
    for i in range(len(raw) - 1):
        assert reader.feed(raw[i : i + 1]) == []
        assert reader.buffered == i + 1
    assert reader.feed(raw[-1:]) == [(fr.DATA, 1, 1, b"abcdef")]
    assert reader.buffered == 0


# ---------------------------------------------------------------------------- properties

stream_ids = st.integers(1, fr.MAX_STREAM_ID)


@st.composite
def valid_frame(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["data", "headers", "settings", "wu", "ping", "rst", "goaway"]))
    sid = draw(stream_ids)
    if kind == "data":
        return fr.encode_data(sid, draw(st.binary(max_size=200)), draw(st.booleans()))
    if kind == "headers":
        return fr.encode_headers(
            sid, draw(st.binary(max_size=200)), draw(st.booleans()), draw(st.integers(1, 300))
        )
    if kind == "settings":
        items = draw(st.dictionaries(st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1)))
        return fr.encode_settings(items)
    if kind == "wu":
        sid = draw(st.sampled_from([0, sid]))
        return fr.encode_window_update(sid, draw(st.integers(1, fr.MAX_WINDOW)))
    if kind == "ping":
        return fr.encode_ping(draw(st.binary(min_size=8, max_size=8)), draw(st.booleans()))
    if kind == "rst":
        return fr.encode_rst_stream(sid, draw(st.integers(0, 2**32 - 1)))
    return fr.encode_goaway(sid, draw(st.integers(0, 2**32 - 1)), draw(st.binary(max_size=50)))


def split_points(data: bytes, draw: st.DrawFn) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    chunks = []
    prev = 0
    for cut in [*cuts, len(data)]:
        chunks.append(data[prev:cut])
        prev = cut
    return chunks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(valid_frame(), max_size=12), data=st.data())
def test_reader_any_split_yields_same_frames(frames: list[bytes], data: st.DataObject) -> None:
    raw = b"".join(frames)
    expected = read_all(raw)
    # Every encoded frame (HEADERS may have become several) is seen, in order.
    assert sum(len(read_all(f)) for f in frames) == len(expected)
    chunks = split_points(raw, data.draw)
    reader = fr.FrameReader()
    got: list[Tuple4] = []
    for chunk in chunks:
        got.extend((t, f, s, bytes(p)) for t, f, s, p in reader.feed(chunk))
    assert got == expected
    assert reader.buffered == 0
    # hyperframe sees the same frames.
    parsed = parse_frames(raw)
    assert [(f.stream_id) for f in parsed] == [s for _, _, s, _ in expected]


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=64), max_size=10),
    max_frame_size=st.sampled_from([0, 1, 16, 16384]),
)
def test_reader_garbage_yields_frames_or_frame_error(
    chunks: list[bytes], max_frame_size: int
) -> None:
    reader = fr.FrameReader(max_frame_size)
    for chunk in chunks:
        try:
            frames = reader.feed(chunk)
        except fr.FrameError as exc:
            assert exc.code == fr.FRAME_SIZE_ERROR
            return
        for t, f, s, p in frames:
            assert 0 <= t <= 0xFF and 0 <= f <= 0xFF and 0 <= s <= fr.MAX_STREAM_ID
            assert len(p) <= max_frame_size
        assert reader.buffered < fr.HEADER_SIZE + max_frame_size


@settings(max_examples=300, deadline=None)
@given(flags=st.integers(0, 0xFF), payload=st.binary(max_size=300))
def test_strip_padding_garbage_only_frame_error(flags: int, payload: bytes) -> None:
    try:
        out = fr.strip_padding(flags, payload, fr.DATA)
    except fr.FrameError as exc:
        assert exc.code in (fr.PROTOCOL_ERROR, fr.FRAME_SIZE_ERROR)
        return
    assert len(out) <= len(payload)
    if flags & fr.FLAG_PADDED:
        assert len(out) == len(payload) - 1 - payload[0]

"""Unit tests [U] for grpc_lite._codec (CONFORMANCE items 10, 40, 42-48)."""

import gzip
import itertools
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpc_lite._codec import (
    ACCEPT_ENCODING,
    CodecError,
    MessageDecoder,
    compress,
    decompress,
    frame_message,
)
from grpc_lite.status import StatusCode

MiB = 1024 * 1024


def _raw_frame(flag: int, payload: bytes) -> bytes:
    return struct.pack(">BI", flag, len(payload)) + payload


# --- frame_message (item 10) -----------------------------------------------------------------


def test_frame_empty_message() -> None:
    """Item 10: an empty message is exactly 00 00 00 00 00."""
    assert frame_message(b"") == b"\x00\x00\x00\x00\x00"


def test_frame_message_layout() -> None:
    """Item 10: 1-byte flag, 4-byte big-endian length, payload."""
    assert frame_message(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert frame_message(b"abc", compressed=True) == b"\x01\x00\x00\x00\x03abc"
    big = b"x" * 70000
    assert frame_message(big)[:5] == b"\x00\x00\x01\x11\x70"


# --- compress / decompress (items 43-46) -----------------------------------------------------


def test_accept_encoding() -> None:
    """Item 44: grpc-accept-encoding must list gzip so servers may compress."""
    assert ACCEPT_ENCODING == "identity,deflate,gzip"
    assert set(ACCEPT_ENCODING.split(",")) == {"identity", "deflate", "gzip"}


@pytest.mark.parametrize("data", [b"", b"a", b"hello world" * 1000, bytes(range(256)) * 300])
def test_compress_formats(data: bytes) -> None:
    """Item 45: gzip is the gzip container (RFC 1952), deflate the zlib one (RFC 1950)."""
    gz = compress(data, "gzip")
    assert gz[:2] == b"\x1f\x8b"
    assert gzip.decompress(gz) == data
    df = compress(data, "deflate")
    assert zlib.decompress(df) == data
    assert compress(data, "identity") is data
    for encoding in ("gzip", "deflate", "identity"):
        assert decompress(compress(data, encoding), encoding, None) == data
        assert decompress(compress(data, encoding), encoding, len(data)) == data


def test_compress_unsupported() -> None:
    with pytest.raises(CodecError) as info:
        compress(b"x", "snappy")
    assert info.value.code is StatusCode.INTERNAL


def test_decompress_accepts_foreign_gzip() -> None:
    """Item 44: output of other gzip implementations (header fields, several members)."""
    data = b"payload " * 100
    assert decompress(gzip.compress(data, mtime=12345), "gzip", None) == data
    two = gzip.compress(b"first ") + gzip.compress(b"second")
    assert decompress(two, "gzip", None) == b"first second"
    assert decompress(two, "gzip", 12) == b"first second"
    with pytest.raises(CodecError) as info:
        decompress(two, "gzip", 11)
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_decompress_limit_is_enforced_without_full_inflation(encoding: str) -> None:
    """Item 46: the limit applies after decompression; a zip bomb is not inflated."""
    bomb = compress(b"\x00" * (64 * MiB), encoding)
    assert len(bomb) < 200 * 1024
    with pytest.raises(CodecError) as info:
        decompress(bomb, encoding, 4 * MiB)
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in info.value.message
    data = b"\x01" * 1000
    assert decompress(compress(data, encoding), encoding, 1000) == data
    with pytest.raises(CodecError) as info:
        decompress(compress(data, encoding), encoding, 999)
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_decompress_zero_limit(encoding: str) -> None:
    """Item 48: a limit of 0 is valid and lets only empty messages through."""
    assert decompress(compress(b"", encoding), encoding, 0) == b""
    with pytest.raises(CodecError) as info:
        decompress(compress(b"a", encoding), encoding, 0)
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED


def test_decompress_identity_limit() -> None:
    assert decompress(b"abc", "identity", 3) == b"abc"
    with pytest.raises(CodecError) as info:
        decompress(b"abc", "identity", 2)
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("limit", [None, 10000])
def test_decompress_corrupt(encoding: str, limit: int | None) -> None:
    """Items 42-44: corrupt, truncated or trailing-garbage data is INTERNAL."""
    good = compress(b"some data " * 100, encoding)
    bad_inputs = [b"", b"garbage", good[: len(good) // 2], good[:-1]]
    if encoding == "deflate":
        bad_inputs.append(good + b"x")
    else:
        bad_inputs.append(good + b"\x1f\x8bjunk")
    for bad in bad_inputs:
        with pytest.raises(CodecError) as info:
            decompress(bad, encoding, limit)
        assert info.value.code is StatusCode.INTERNAL, bad


def test_decompress_unsupported() -> None:
    """Item 43: an encoding the client does not support is INTERNAL, naming it."""
    with pytest.raises(CodecError) as info:
        decompress(b"x", "snappy", None)
    assert info.value.code is StatusCode.INTERNAL
    assert "snappy" in info.value.message


def test_codec_error_fields() -> None:
    err = CodecError(StatusCode.INTERNAL, "boom")
    assert err.code is StatusCode.INTERNAL
    assert err.message == "boom"
    assert str(err) == "boom"


# --- MessageDecoder (items 40, 42-46) --------------------------------------------------------


def test_decoder_single_message_fast_path() -> None:
    """Item 40: one whole message in one DATA frame is returned at once."""
    dec = MessageDecoder(None, None)
    assert dec.feed(frame_message(b"hello")) == [b"hello"]
    assert not dec.has_partial
    assert dec.bytes_buffered == 0
    assert dec.feed(memoryview(frame_message(b"view"))) == [b"view"]
    out = dec.feed(memoryview(frame_message(b"typed")))
    assert type(out[0]) is bytes


def test_decoder_empty_message() -> None:
    """Item 10: an empty message is complete as soon as its prefix arrives."""
    dec = MessageDecoder(4 * MiB, None)
    assert dec.feed(b"\x00\x00\x00\x00\x00") == [b""]
    assert dec.feed(b"\x00\x00\x00") == []
    assert dec.has_partial
    assert dec.bytes_buffered == 3
    assert dec.feed(b"\x00\x00") == [b""]
    assert not dec.has_partial


def test_decoder_one_byte_frames() -> None:
    """Item 40: every response in 1-byte DATA frames still reassembles."""
    stream = frame_message(b"first") + frame_message(b"") + frame_message(b"third message")
    dec = MessageDecoder(None, None)
    out: list[bytes] = []
    for i in range(len(stream)):
        out += dec.feed(stream[i : i + 1])
        # Between messages nothing is pending; inside one, something is.
        assert dec.has_partial == (i + 1 not in (10, 15, len(stream)))
    assert out == [b"first", b"", b"third message"]
    assert not dec.has_partial


def test_decoder_several_messages_in_one_frame() -> None:
    """Item 40: 3 server-streaming messages packed into one DATA frame."""
    dec = MessageDecoder(None, "identity")
    data = frame_message(b"a") + frame_message(b"bb") + frame_message(b"ccc")
    assert dec.feed(data) == [b"a", b"bb", b"ccc"]


def test_decoder_partial_message_tracking() -> None:
    """Item 40: has_partial reports an incomplete message (INTERNAL at END_STREAM)."""
    dec = MessageDecoder(None, None)
    msg = frame_message(b"0123456789")
    assert dec.feed(msg + msg[:7]) == [b"0123456789"]
    assert dec.has_partial
    assert dec.bytes_buffered == 7
    assert dec.feed(msg[7:12]) == []
    assert dec.bytes_buffered == 12
    assert dec.feed(msg[12:]) == [b"0123456789"]
    assert not dec.has_partial
    assert dec.bytes_buffered == 0
    # Only a prefix arrived: still partial.
    assert dec.feed(msg[:5]) == []
    assert dec.has_partial
    assert dec.bytes_buffered == 5


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_decoder_mixed_compressed_and_plain(encoding: str) -> None:
    """Item 44: flag=1 messages are decompressed one by one; flag=0 ones are plain."""
    dec = MessageDecoder(None, encoding)
    stream = (
        frame_message(compress(b"one", encoding), compressed=True)
        + frame_message(b"two")
        + frame_message(compress(b"three" * 100, encoding), compressed=True)
        + frame_message(compress(b"", encoding), compressed=True)
    )
    assert dec.feed(stream) == [b"one", b"two", b"three" * 100, b""]


@pytest.mark.parametrize("encoding", [None, "identity"])
def test_decoder_compressed_flag_without_encoding(encoding: str | None) -> None:
    """Item 42: flag=1 with no grpc-encoding or identity is INTERNAL."""
    dec = MessageDecoder(None, encoding)
    with pytest.raises(CodecError) as info:
        dec.feed(frame_message(compress(b"x", "gzip"), compressed=True))
    assert info.value.code is StatusCode.INTERNAL
    assert "compressed flag set without grpc-encoding" in info.value.message


def test_decoder_compressed_flag_checked_from_prefix() -> None:
    """Item 42: the flag is refused as soon as the prefix arrives."""
    dec = MessageDecoder(None, None)
    with pytest.raises(CodecError) as info:
        dec.feed(b"\x01\x00\x00\x10\x00")
    assert info.value.code is StatusCode.INTERNAL


@pytest.mark.parametrize("flag", [2, 3, 0x80, 0xFF])
def test_decoder_invalid_flag(flag: int) -> None:
    """Item 42: a flag byte that is neither 0 nor 1 is INTERNAL."""
    dec = MessageDecoder(None, "gzip")
    with pytest.raises(CodecError) as info:
        dec.feed(_raw_frame(flag, b"abc"))
    assert info.value.code is StatusCode.INTERNAL


def test_decoder_unsupported_encoding() -> None:
    """Item 43: grpc-encoding snappy with a compressed message is INTERNAL naming it."""
    dec = MessageDecoder(None, "snappy")
    assert dec.feed(frame_message(b"plain is fine")) == [b"plain is fine"]
    with pytest.raises(CodecError) as info:
        dec.feed(frame_message(b"\x00\x01", compressed=True))
    assert info.value.code is StatusCode.INTERNAL
    assert "snappy" in info.value.message


def test_decoder_corrupt_compressed_message() -> None:
    """Items 42-44: a flag=1 message that does not inflate is INTERNAL."""
    dec = MessageDecoder(None, "gzip")
    with pytest.raises(CodecError) as info:
        dec.feed(frame_message(b"not gzip", compressed=True))
    assert info.value.code is StatusCode.INTERNAL


def test_decoder_max_length_from_prefix_alone() -> None:
    """Item 46: an oversized message is refused from its 5-byte prefix, before its body."""
    dec = MessageDecoder(4 * MiB, None)
    prefix = struct.pack(">BI", 0, 5 * MiB)
    with pytest.raises(CodecError) as info:
        dec.feed(prefix)
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert info.value.message == f"received message larger than max ({5 * MiB} vs. {4 * MiB})"


def test_decoder_max_length_prefix_split_across_frames() -> None:
    """Item 46: the same when the prefix itself arrives in pieces."""
    dec = MessageDecoder(1000, None)
    prefix = struct.pack(">BI", 0, 1001)
    assert dec.feed(frame_message(b"ok") + prefix[:2]) == [b"ok"]
    with pytest.raises(CodecError) as info:
        dec.feed(prefix[2:])
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert "(1001 vs. 1000)" in info.value.message


def test_decoder_max_length_boundary() -> None:
    """Items 46 and 48: exactly the limit passes; 0 lets only empty messages through."""
    dec = MessageDecoder(10, None)
    assert dec.feed(frame_message(b"x" * 10)) == [b"x" * 10]
    with pytest.raises(CodecError):
        dec.feed(frame_message(b"x" * 11))
    dec = MessageDecoder(0, None)
    assert dec.feed(frame_message(b"")) == [b""]
    with pytest.raises(CodecError) as info:
        dec.feed(frame_message(b"x"))
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED


def test_decoder_max_length_after_decompression() -> None:
    """Item 46: the limit also applies after decompression (small on the wire, large inflated)."""
    payload = compress(b"\x00" * 100_000, "gzip")
    assert len(payload) < 1000
    dec = MessageDecoder(1000, "gzip")
    with pytest.raises(CodecError) as info:
        dec.feed(frame_message(payload, compressed=True))
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED


def test_decoder_compressed_on_wire_length_checked_too() -> None:
    """Item 46: the prefix length is checked against the limit even for compressed messages."""
    dec = MessageDecoder(10, "gzip")
    with pytest.raises(CodecError) as info:
        dec.feed(struct.pack(">BI", 1, 11))
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED


def test_decoder_large_message_in_many_chunks() -> None:
    """Item 40: a message above 64 KiB spanning many 16 KiB DATA frames."""
    payload = bytes(range(256)) * 1000
    stream = frame_message(payload) + frame_message(b"tail")
    dec = MessageDecoder(4 * MiB, None)
    out: list[bytes] = []
    for i in range(0, len(stream), 16384):
        out += dec.feed(memoryview(stream)[i : i + 16384])
    assert out == [payload, b"tail"]


# --- properties ------------------------------------------------------------------------------

_PAYLOADS = st.one_of(
    st.binary(max_size=64),
    st.just(b""),
    st.integers(min_value=65 * 1024, max_value=70 * 1024).map(
        lambda size: bytes(i % 251 for i in range(size))
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.tuples(_PAYLOADS, st.booleans()), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=12),
    use_memoryview=st.booleans(),
)
def test_decoder_any_split_gives_same_messages(
    messages: list[tuple[bytes, bool]], cuts: list[int], use_memoryview: bool
) -> None:
    """Item 40 and 44: any split of the stream into chunks decodes to the same payloads,
    with plain and gzip-compressed messages mixed."""
    stream = b"".join(
        frame_message(compress(p, "gzip"), compressed=True) if c else frame_message(p)
        for p, c in messages
    )
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    dec = MessageDecoder(4 * MiB, "gzip")
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        chunk = stream[start:end]
        out += dec.feed(memoryview(chunk) if use_memoryview else chunk)
    assert out == [p for p, _ in messages]
    assert not dec.has_partial
    assert dec.bytes_buffered == 0


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=40), max_size=8),
    encoding=st.sampled_from([None, "identity", "gzip", "deflate", "snappy"]),
    max_length=st.sampled_from([None, 0, 16, 1 << 20]),
)
def test_decoder_garbage_only_raises_codec_error(
    chunks: list[bytes], encoding: str | None, max_length: int | None
) -> None:
    """Items 42-46: garbage input either yields messages or raises CodecError, nothing else."""
    dec = MessageDecoder(max_length, encoding)
    try:
        for chunk in chunks:
            for message in dec.feed(chunk):
                assert isinstance(message, bytes)
                if max_length is not None:
                    assert len(message) <= max_length
    except CodecError as exc:
        assert exc.code in (StatusCode.INTERNAL, StatusCode.RESOURCE_EXHAUSTED)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300), encoding=st.sampled_from(["gzip", "deflate"]))
def test_decompress_garbage_only_raises_codec_error(data: bytes, encoding: str) -> None:
    """Items 42-44: decompressing arbitrary bytes never raises anything but CodecError."""
    try:
        decompress(data, encoding, 1000)
    except CodecError as exc:
        assert exc.code in (StatusCode.INTERNAL, StatusCode.RESOURCE_EXHAUSTED)

"""Context-free HPACK encoder (grpc_lite/_transport/_hpack.py), checked with the ``hpack``
package's decoder: any header list round-trips, the encoder never touches the dynamic
table, the table-size-zero prefix, static full-match indexing, integer/string boundaries."""

from __future__ import annotations

import hpack
import hpack.hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpc_lite._transport import _hpack

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_."
names = st.one_of(
    st.text(ALPHABET, min_size=1, max_size=40),
    st.sampled_from(
        [
            ":method",
            ":scheme",
            ":path",
            ":authority",
            "content-type",
            "user-agent",
            "accept-encoding",
            "te",
            "grpc-timeout",
            "x-bin",
        ]
    ),
)
latin1_values = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=300)
ascii_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
interesting_values = st.sampled_from(
    ["", "POST", "GET", "http", "https", "/", "application/grpc", "trailers"]
)
long_values = st.integers(120, 5000).map(lambda n: "v" * n)
values = st.one_of(latin1_values, ascii_values, interesting_values, long_values)


def decoder() -> hpack.Decoder:
    d = hpack.Decoder(max_header_list_size=1 << 24)
    return d


def decode(block: bytes, d: hpack.Decoder | None = None) -> list[tuple[bytes, bytes]]:
    d = d or decoder()
    return [(bytes(n), bytes(v)) for n, v in d.decode(block, raw=True)]


def expected(fields: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.encode("ascii"), v.encode("latin-1")) for n, v in fields]


@settings(max_examples=300, deadline=None)
@given(fields=st.lists(st.tuples(names, values), max_size=20))
def test_round_trip_any_header_list(fields: list[tuple[str, str]]) -> None:
    block = _hpack.encode_fields(fields)
    d = decoder()
    assert decode(block, d) == expected(fields)
    # Context-free: nothing was added to the decoder's dynamic table.
    assert len(d.header_table.dynamic_entries) == 0


@settings(max_examples=200, deadline=None)
@given(fields=st.lists(st.tuples(names, values), min_size=1, max_size=10))
def test_block_is_pure_function_of_fields(fields: list[tuple[str, str]]) -> None:
    """Blocks can be precomputed and concatenated in any order on any connection."""
    blocks = [_hpack.encode_field(n, v) for n, v in fields]
    assert b"".join(blocks) == _hpack.encode_fields(fields)
    d = decoder()
    # Decode the blocks in reverse order, on one decoder: still exact.
    for (n, v), block in reversed(list(zip(fields, blocks, strict=True))):
        assert decode(block, d) == expected([(n, v)])


@settings(max_examples=200, deadline=None)
@given(name=names, raw=st.binary(max_size=400))
def test_bytes_values(name: str, raw: bytes) -> None:
    assert decode(_hpack.encode_field(name, raw)) == [(name.encode(), raw)]


@given(fields=st.lists(st.tuples(names, values), max_size=8))
def test_table_size_zero_prefix(fields: list[tuple[str, str]]) -> None:
    assert _hpack.TABLE_SIZE_ZERO == b"\x20"  # dynamic table size update, size 0
    d = decoder()
    assert decode(_hpack.TABLE_SIZE_ZERO + _hpack.encode_fields(fields), d) == expected(fields)
    assert d.header_table.maxsize == 0
    # A later block without the prefix decodes on the same decoder.
    assert decode(_hpack.encode_fields(fields), d) == expected(fields)


@pytest.mark.parametrize(
    ("name", "value", "encoded"),
    [
        (":method", "POST", b"\x83"),
        (":method", "GET", b"\x82"),
        (":scheme", "http", b"\x86"),
        (":scheme", "https", b"\x87"),
        (":path", "/", b"\x84"),
    ],
)
def test_static_full_match_is_one_byte(name: str, value: str, encoded: bytes) -> None:
    assert _hpack.encode_field(name, value) == encoded
    assert _hpack.encode_field(name, value.encode()) == encoded
    assert decode(encoded) == [(name.encode(), value.encode())]


@pytest.mark.parametrize(
    ("name", "index"),
    [
        (":authority", 1),
        (":method", 2),
        (":path", 4),
        (":scheme", 6),
        ("accept-encoding", 16),
        ("content-type", 31),
        ("user-agent", 58),
    ],
)
def test_static_name_reference_literal_without_indexing(name: str, index: int) -> None:
    block = _hpack.encode_field(name, "some-value")
    # Literal without indexing, indexed name (RFC 7541 6.2.2): 0000 + 4-bit-prefix index.
    assert block[0] & 0xF0 == 0
    got, consumed = hpack.hpack.decode_integer(block, 4)
    assert got == index
    assert block[consumed] == len("some-value")  # H bit clear: no Huffman
    assert block[consumed + 1 :] == b"some-value"
    assert decode(block) == [(name.encode(), b"some-value")]


def test_new_name_literal_without_indexing() -> None:
    block = _hpack.encode_field("x-custom", "v")
    assert block == b"\x00\x08x-custom\x01v"


def test_grpc_request_headers_round_trip() -> None:
    fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/grpc.testing.TestService/UnaryCall"),
        (":authority", "localhost:50051"),
        ("grpc-timeout", "100m"),
        ("te", "trailers"),
        ("content-type", "application/grpc"),
        ("grpc-accept-encoding", "identity,deflate,gzip"),
        ("user-agent", "grpc-python-lite/0.1"),
        ("x-md-bin", "AAEC"),
    ]
    block = _hpack.TABLE_SIZE_ZERO + _hpack.encode_fields(fields)
    assert decode(block) == expected(fields)
    assert block[1:3] == b"\x83\x86"


@pytest.mark.parametrize("value", ["1S", "100m", "99999999n"])
def test_timeout_field_matches_encode_field(value: str) -> None:
    """The pre-encoded grpc-timeout name gives what encode_field gives, and the header list
    size counts the field as RFC 9113 6.5.2 does."""
    block, size = _hpack.encode_timeout_field(value)
    assert block == _hpack.encode_field("grpc-timeout", value)
    assert decode(block) == [(b"grpc-timeout", value.encode())]
    assert size == len("grpc-timeout") + len(value) + 32 == _hpack.field_size("grpc-timeout", value)


# ---------------------------------------------------------------------------- integers


def boundary_ints() -> st.SearchStrategy[int]:
    edges = [0, 1, 14, 15, 16, 30, 31, 32, 62, 63, 64, 126, 127, 128, 129, 142, 143, 144]
    edges += [255, 256, 16383, 16384, 16510, 16511, 16512, 2**21, 2**28 - 1, 2**28]
    near = st.sampled_from(edges).flatmap(lambda e: st.integers(max(0, e - 2), e + 2))
    return st.one_of(near, st.integers(0, 2**32))


@settings(max_examples=400, deadline=None)
@given(value=boundary_ints(), prefix=st.sampled_from([4, 5, 6, 7]))
def test_integer_matches_hpack(value: int, prefix: int) -> None:
    ours = _hpack._integer(value, prefix, 0)
    assert ours == bytes(hpack.hpack.encode_integer(value, prefix))
    got, consumed = hpack.hpack.decode_integer(ours, prefix)
    assert (got, consumed) == (value, len(ours))


@settings(max_examples=200, deadline=None)
@given(value=boundary_ints(), prefix=st.sampled_from([4, 7]), first=st.integers(0, 7))
def test_integer_keeps_high_bits(value: int, prefix: int, first: int) -> None:
    high = (first << prefix) & 0xFF
    ours = _hpack._integer(value, prefix, high)
    assert ours[0] & ~((1 << prefix) - 1) & 0xFF == high
    assert hpack.hpack.decode_integer(ours, prefix)[0] == value


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 128, 254, 255, 256, 16510, 16511, 70000])
def test_string_length_boundaries(n: int) -> None:
    data = bytes(i % 256 for i in range(n))
    encoded = _hpack._string(data)
    length, consumed = hpack.hpack.decode_integer(encoded, 7)
    assert encoded[0] & 0x80 == 0  # no Huffman
    assert length == n
    assert encoded[consumed:] == data
    value = "w" * n
    assert decode(_hpack.encode_field("x-long", value)) == [(b"x-long", value.encode())]
    assert decode(_hpack.encode_field("content-type", value)) == [(b"content-type", value.encode())]
    name = "n" * max(n, 1)
    assert decode(_hpack.encode_field(name, "v")) == [(name.encode(), b"v")]


@settings(max_examples=100, deadline=None)
@given(fields=st.lists(st.tuples(names, values), max_size=20))
def test_encode_sized_counts_the_header_list_size(fields: list[tuple[str, str]]) -> None:
    """RFC 9113 6.5.2: a field counts its name and value octets plus 32 (RFC 7541 4.1)."""
    block, size = _hpack.encode_sized(fields)
    assert block == _hpack.encode_fields(fields)
    assert size == sum(len(n.encode("ascii")) + len(v.encode("latin-1")) + 32 for n, v in fields)
    assert size == sum(_hpack.field_size(n, v) for n, v in fields)

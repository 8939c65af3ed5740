"""Unit tests [U] for grpc_lite.metadata (CONFORMANCE items 5, 20-24)."""

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grpc_lite import metadata as metadata_module
from grpc_lite.metadata import (
    Metadata,
    decode_incoming,
    decode_timeout,
    encode_outgoing,
    encode_timeout,
)

# --- Metadata multi-dict ---------------------------------------------------------------------


def test_metadata_basic_access() -> None:
    """API.md / item 23: a multi-dict; first value by [], all values in order by get_all."""
    md = Metadata(("a", "1"), ("b", "2"), ("a", "3"), ("c-bin", b"\x00"))
    assert len(md) == 4
    assert md["a"] == "1"
    assert md.get_all("a") == ["1", "3"]
    assert md.get_all("missing") == []
    assert md["c-bin"] == b"\x00"
    assert md.get("b") == "2"
    assert md.get("missing") is None
    assert md.get("missing", "d") == "d"
    assert "a" in md
    assert "z" not in md
    with pytest.raises(KeyError):
        md["missing"]


def test_metadata_iteration_order_and_views() -> None:
    """API.md: iteration gives (key, value) pairs in insertion order; keys() are distinct."""
    md = Metadata(("a", "1"), ("b", "2"), ("a", "3"))
    assert list(md) == [("a", "1"), ("b", "2"), ("a", "3")]
    assert md.items() == [("a", "1"), ("b", "2"), ("a", "3")]
    assert md.keys() == ["a", "b"]
    assert md.values() == ["1", "2", "3"]
    key, value = next(iter(md))
    assert (key, value) == ("a", "1")


def test_metadata_mutation() -> None:
    """API.md: add appends, [] = replaces all values of a key, del removes the first."""
    md = Metadata(("a", "1"), ("b", "2"), ("a", "3"))
    md.add("b", "4")
    assert md.get_all("b") == ["2", "4"]
    md["a"] = "x"
    assert list(md) == [("a", "x"), ("b", "2"), ("b", "4")]
    md["new"] = "n"
    assert list(md)[-1] == ("new", "n")
    del md["b"]
    assert md.get_all("b") == ["4"]
    with pytest.raises(KeyError):
        del md["nope"]
    md.delete_all("b")
    assert "b" not in md
    md.delete_all("nope")
    md.set_all("a", ["p", "q"])
    assert md.get_all("a") == ["p", "q"]
    assert len(md) == 3


def test_metadata_from_tuple_and_add() -> None:
    md = Metadata.from_tuple((("a", "1"), ("b", "2")))
    assert list(md) == [("a", "1"), ("b", "2")]
    assert len(Metadata.from_tuple(None)) == 0
    combined = md + [("c", "3")]  # noqa: RUF005  (tests __add__)
    assert list(combined) == [("a", "1"), ("b", "2"), ("c", "3")]
    assert len(md) == 2


def test_metadata_equality() -> None:
    """Item 23: equality keeps per-key value order, not the interleaving across keys."""
    md = Metadata(("a", "1"), ("b", "2"), ("a", "3"))
    assert md == Metadata(("a", "1"), ("b", "2"), ("a", "3"))
    assert md == [("a", "1"), ("b", "2"), ("a", "3")]
    assert md == (("a", "1"), ("a", "3"), ("b", "2"))
    assert md != [("a", "3"), ("b", "2"), ("a", "1")]
    assert md != [("a", "1"), ("b", "2")]
    assert md != "a1"
    assert md != 5
    assert Metadata() == []
    assert Metadata() == Metadata()


def test_metadata_repr_and_bool() -> None:
    md = Metadata(("a", "1"), ("k-bin", b"\x01"))
    assert repr(md) == "Metadata((('a', '1'), ('k-bin', b'\\x01')))"
    assert md
    assert not Metadata()


def test_metadata_is_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(Metadata())


# --- encode_outgoing (items 20-23) -----------------------------------------------------------


def test_encode_outgoing_empty_fast_path() -> None:
    assert encode_outgoing(None) == []
    assert encode_outgoing([]) == []
    assert encode_outgoing(()) == []
    assert encode_outgoing(Metadata()) == []


def test_encode_outgoing_ascii_and_repeated() -> None:
    """Items 21 and 23: ASCII values pass; repeated keys are all kept in order."""
    md = [("x-a", "1"), ("x.b_c-9", "v v"), ("x-a", "2"), ("empty", "")]
    assert encode_outgoing(md) == md
    assert encode_outgoing(Metadata(*md)) == md


@pytest.mark.parametrize("key", ["Bad Key", "x y", "UPPER", "", "ké", "a/b", "a:b", "tab\t"])
def test_encode_outgoing_rejects_invalid_keys(key: str) -> None:
    """Item 20: invalid keys raise before anything is sent, and the error names the key."""
    with pytest.raises(ValueError, match=re.escape(repr(key))):
        encode_outgoing([(key, "v")])


@pytest.mark.parametrize(
    "key",
    [
        ":path",
        ":authority",
        "grpc-status",
        "grpc-timeout",
        "grpc-message",
        "grpc-encoding",
        "grpc-custom",
        "content-type",
        "te",
        "connection",
        "host",
        "transfer-encoding",
        "upgrade",
        "keep-alive",
        "proxy-connection",
    ],
)
def test_encode_outgoing_rejects_reserved_keys(key: str) -> None:
    """Item 20: reserved and transport keys cannot be set by the application."""
    with pytest.raises(ValueError, match="reserved"):
        encode_outgoing([(key, "v")])


def test_encode_outgoing_reserved_check_is_not_bypassed_by_cache() -> None:
    """Item 20: a valid key cached earlier does not make a later invalid key pass."""
    encode_outgoing([("cached-key", "v")])
    encode_outgoing([("cached-key", "v")])
    with pytest.raises(ValueError):
        encode_outgoing([("cached-key", "v"), ("grpc-status", "0")])
    with pytest.raises(ValueError):
        encode_outgoing([("cached-key", "\x01")])


def test_encode_outgoing_key_cache_is_bounded() -> None:
    for i in range(metadata_module._VALID_KEY_CACHE_MAX + 50):
        encode_outgoing([(f"k{i}", "v")])
    assert len(metadata_module._VALID_KEY_CACHE) <= metadata_module._VALID_KEY_CACHE_MAX
    # Keys beyond the cache are still validated (and accepted) every time.
    assert encode_outgoing([("k-beyond-cache-x", "v")]) == [("k-beyond-cache-x", "v")]
    with pytest.raises(ValueError):
        encode_outgoing([("K-Beyond", "v")])


@pytest.mark.parametrize("value", ["\x01", "a\nb", "\x7f", "é", "☺", "tab\there"])
def test_encode_outgoing_rejects_non_printable_ascii(value: str) -> None:
    """Item 21: non-bin values must be printable ASCII 0x20-0x7E; the error names the key."""
    with pytest.raises(ValueError, match="'x-key'"):
        encode_outgoing([("x-key", value)])


def test_encode_outgoing_all_printable_ascii_accepted() -> None:
    """Item 21: every character 0x20-0x7E is allowed in a value (inside it: RFC 9113 8.2.1
    forbids surrounding whitespace, which item 21 lets us strip)."""
    value = "".join(chr(c) for c in range(0x20, 0x7F))
    assert encode_outgoing([("k", value)]) == [("k", value.strip(" "))]
    assert encode_outgoing([("k", "a" + value)]) == [("k", "a" + value)]


def test_encode_outgoing_strips_surrounding_spaces() -> None:
    """Item 21 / RFC 9113 8.2.1: leading and trailing spaces are stripped before sending."""
    assert encode_outgoing([("k", "  v w  "), ("e", " ")]) == [("k", "v w"), ("e", "")]


@pytest.mark.parametrize("value", [b"bytes", 5, None, 1.5])
def test_encode_outgoing_rejects_non_str_for_ascii_key(value: object) -> None:
    """Item 22: bytes belong to -bin keys only; other types are rejected naming the key."""
    with pytest.raises(ValueError, match="'x-key'"):
        encode_outgoing([("x-key", value)])  # type: ignore[list-item]


def test_encode_outgoing_bin_unpadded_base64() -> None:
    """Item 22: -bin values are sent as unpadded standard base64."""
    out = encode_outgoing(
        [
            ("x-bin", b"\x01"),
            ("x-bin", b"\xab\xab\xab"),
            ("y-bin", b"\xfb\xff"),
            ("e-bin", b""),
            ("s-bin", "☺"),
            ("ba-bin", bytearray(b"\x01\x02")),  # type: ignore[list-item]
        ]
    )
    assert out == [
        ("x-bin", "AQ"),
        ("x-bin", "q6ur"),
        ("y-bin", "+/8"),
        ("e-bin", ""),
        ("s-bin", "4pi6"),
        ("ba-bin", "AQI"),
    ]
    for _, value in out:
        assert "=" not in value


def test_encode_outgoing_bin_rejects_non_bytes() -> None:
    with pytest.raises(ValueError, match="'x-bin'"):
        encode_outgoing([("x-bin", 5)])  # type: ignore[list-item]


def test_encode_outgoing_rejects_non_pairs() -> None:
    with pytest.raises(ValueError):
        encode_outgoing([("a", "b", "c")])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        encode_outgoing([5])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        encode_outgoing([(5, "v")])  # type: ignore[list-item]


# --- decode_incoming (items 21, 22, 24) ------------------------------------------------------


def test_decode_incoming_bin_split_padded_and_unpadded() -> None:
    """Item 22: trailer `x-bin: AQ==,Ag` yields [b"\\x01", b"\\x02"]."""
    md = decode_incoming([("x-bin", "AQ==,Ag")])
    assert md.get_all("x-bin") == [b"\x01", b"\x02"]
    assert list(md) == [("x-bin", b"\x01"), ("x-bin", b"\x02")]


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ("q6ur", b"\xab\xab\xab"),
        ("CgsKCwoL", b"\x0a\x0b\x0a\x0b\x0a\x0b"),
        ("AQ", b"\x01"),
        ("AQ==", b"\x01"),
        ("AQI", b"\x01\x02"),
        ("AQI=", b"\x01\x02"),
        ("", b""),
        ("+/8", b"\xfb\xff"),
    ],
)
def test_decode_incoming_bin_values(wire: str, value: bytes) -> None:
    """Items 22 and 174: byte-exact binary values, padded or unpadded."""
    assert decode_incoming([("x-grpc-test-echo-trailing-bin", wire)]).get_all(
        "x-grpc-test-echo-trailing-bin"
    ) == [value]


@pytest.mark.parametrize("wire", ["A", "!!!!", "AQ==Ag", "-_8", "AQ=,Ag", "é", "A\nQ"])
def test_decode_incoming_invalid_base64(wire: str) -> None:
    """Item 22: invalid base64 is a ValueError naming the header (the caller says INTERNAL)."""
    with pytest.raises(ValueError, match=re.escape("invalid base64 in header 'x-bin'")):
        decode_incoming([("x-bin", wire)])


def test_decode_incoming_keeps_non_ascii_and_order() -> None:
    """Items 21 and 23: values with 0x80-0xFF do not fail; repeated keys stay in order."""
    headers = [("k", "v\x80\xff"), ("other", ""), ("k", "second"), ("ctl", "\x01")]
    md = decode_incoming(headers)
    assert list(md) == headers
    assert md.get_all("k") == ["v\x80\xff", "second"]


def test_decode_incoming_empty() -> None:
    md = decode_incoming([])
    assert isinstance(md, Metadata)
    assert len(md) == 0


_KEYS = st.from_regex(r"[0-9a-z_.-]{1,10}", fullmatch=True).filter(
    lambda k: not k.startswith("grpc-") and k not in {"te", "host", "upgrade"}
)
_ASCII_VALUES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E))


@given(
    st.lists(
        st.one_of(
            st.tuples(_KEYS, _ASCII_VALUES),
            st.tuples(_KEYS.map(lambda k: k + "-bin"), st.binary(max_size=40)),
        ),
        max_size=8,
    )
)
def test_metadata_round_trip_property(pairs: list[tuple[str, str | bytes]]) -> None:
    """Items 21-23: what encode_outgoing sends, decode_incoming gives back (values, order)."""
    wire = encode_outgoing(pairs)
    assert all(v.isascii() for _, v in wire)
    # Surrounding spaces are stripped on the way out (RFC 9113 8.2.1, item 21).
    expected = [(k, v.strip(" ") if isinstance(v, str) else v) for k, v in pairs]
    assert list(decode_incoming(wire)) == expected


def test_decode_incoming_accepts_grpcio_padded_encoding() -> None:
    """Item 22: standard padded base64 (as grpcio sends) decodes."""
    value = bytes(range(256))
    assert decode_incoming([("d-bin", base64.b64encode(value).decode())])["d-bin"] == value


# --- grpc-timeout (item 5) -------------------------------------------------------------------

TIMEOUT_RE = re.compile(r"^[0-9]{1,8}[HMSmun]$")
UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def _check_timeout(seconds: float) -> str:
    wire = encode_timeout(seconds)
    assert TIMEOUT_RE.match(wire), wire
    decoded = decode_timeout(wire)
    # Rounded up to float precision: never shorter by more than the float product's error.
    assert decoded >= seconds * (1 - 1e-15), (seconds, wire)
    assert decoded <= seconds + UNIT_SECONDS[wire[-1]] * (1 + 1e-9), (seconds, wire)
    return wire


@pytest.mark.parametrize(
    "seconds",
    [
        0.001,
        1.5,
        100.0,
        3600.0,
        30 * 86400.0,
        100 * 86400.0,
        10 * 365 * 86400.0,
        1e-9,
        1e-10,
        0.1,
        99.999999,
        100.0000001,
        0.0999999999,
    ],
)
def test_encode_timeout_format_and_round_up(seconds: float) -> None:
    """Item 5 (TRICKY): at most 8 digits + unit, decodes to >= input and <= input + 1 unit."""
    _check_timeout(seconds)


def test_encode_timeout_known_values() -> None:
    """Item 5: the finest unit that fits in 8 digits; a naive f"{us}u" would break over 100 s."""
    assert encode_timeout(0.001) == "1000000n"
    assert encode_timeout(1.5) == "1500000u"
    assert encode_timeout(100.0) == "100000m"
    assert encode_timeout(3600.0) == "3600000m"
    assert encode_timeout(30 * 86400.0) == "2592000S"
    assert encode_timeout(100 * 86400.0) == "8640000S"
    assert encode_timeout(10 * 365 * 86400.0) == "5256000M"
    assert encode_timeout(1e-10) == "1n"
    assert encode_timeout(2) == "2000000u"


def test_encode_timeout_rounds_up_never_down() -> None:
    """Item 5: rounding is up, so the server never sees a shorter deadline."""
    assert encode_timeout(0.099999999) == "99999999n"
    assert encode_timeout(0.0999999999) == "100000u"  # 99999999.9 ns needs 9 digits
    assert encode_timeout(0.10000000001) == "100001u"
    assert encode_timeout(100.0000001) == "100001m"


def test_encode_timeout_non_positive_and_huge() -> None:
    """Item 5: callers never pass <= 0; the function stays defensive and never overflows."""
    assert encode_timeout(0) == "1n"
    assert encode_timeout(-5.0) == "1n"
    assert encode_timeout(float("nan")) == "1n"
    assert encode_timeout(float("inf")) == "99999999H"
    assert encode_timeout(1e30) == "99999999H"


@given(st.floats(min_value=1e-12, max_value=3e11, allow_nan=False))
def test_encode_timeout_property(seconds: float) -> None:
    """Item 5: the format and the round-up bound hold for any positive deadline."""
    _check_timeout(seconds)


@pytest.mark.parametrize(
    ("wire", "seconds"),
    [("1n", 1e-9), ("5u", 5e-6), ("250m", 0.25), ("3S", 3.0), ("2M", 120.0), ("1H", 3600.0)],
)
def test_decode_timeout(wire: str, seconds: float) -> None:
    assert decode_timeout(wire) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "wire", ["", "S", "1", "123456789S", "1s", "1h", "-1S", "+1S", " 1S", "1.5S", "1 S", "\u0661S"]
)
def test_decode_timeout_malformed(wire: str) -> None:
    """Item 5: more than 8 digits, no digits or an unknown unit is malformed."""
    with pytest.raises(ValueError):
        decode_timeout(wire)

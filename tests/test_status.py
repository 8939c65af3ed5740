"""Unit tests [U] for grpc_lite.status (CONFORMANCE items 25-31, 103)."""

import ast
import pickle
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import grpc_lite.status
from grpc_lite.status import (
    AioRpcError,
    RpcError,
    StatusCode,
    UsageError,
    decode_grpc_message,
    encode_grpc_message,
    parse_grpc_status,
    restrict_control_plane_code,
    status_from_http,
)

GRPC_NAMES = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
]


# --- StatusCode ------------------------------------------------------------------------------


def test_status_code_names_and_wire_numbers() -> None:
    """API.md: the 17 codes with grpc's names; int(code) is the wire number (item 25)."""
    assert [c.name for c in StatusCode] == GRPC_NAMES
    assert [int(c) for c in StatusCode] == list(range(17))
    wire: int = StatusCode.UNAVAILABLE  # an IntEnum compares equal to its wire number
    assert wire == 14
    assert StatusCode(16) is StatusCode.UNAUTHENTICATED


def test_status_code_str_matches_grpcio() -> None:
    """str/f-string give "StatusCode.NAME" as grpcio does; a numeric format gives the number."""
    assert str(StatusCode.UNAVAILABLE) == "StatusCode.UNAVAILABLE"
    assert f"{StatusCode.OK}" == "StatusCode.OK"
    assert f"{StatusCode.INTERNAL:d}" == "13"


def test_status_code_value_reads_as_grpcios_tuple_and_as_the_number() -> None:
    """Code written for grpcio reads ``code.value[0]`` / ``code.value[1]``: grpcio's value is
    ``(14, "unavailable")``. grpc_lite's is the number, which also reads that way."""
    import json

    import grpc

    for ours, theirs in zip(StatusCode, grpc.StatusCode, strict=True):
        assert ours.value[0] == theirs.value[0] == int(ours)
        assert ours.value[1] == theirs.value[1]
        assert tuple(ours.value) == theirs.value and ours.value == theirs.value
        number, name = ours.value
        assert (number, name) == theirs.value and len(ours.value) == 2
    value = StatusCode.DEADLINE_EXCEEDED.value
    assert value == 4 and value != 5 and value != (4, "other") and value + 1 == 5
    assert json.dumps({"code": value}) == '{"code": 4}' and str(value) == "4"
    assert {value: "x"}[4] == "x"
    assert value != "4" and value != 4.5 and (value == "4") is False


def test_status_code_equals_grpcios_code_of_the_same_number() -> None:
    """``e.code() == grpc.StatusCode.NOT_FOUND`` (and ``!=``), in either order, as grpc.aio
    code writes it; a code still equals its number and hashes as it."""
    import grpc

    for ours, theirs in zip(StatusCode, grpc.StatusCode, strict=True):
        assert ours == theirs and theirs == ours
        assert (ours != theirs) is False and (theirs != ours) is False
    assert StatusCode.OK != grpc.StatusCode.UNAVAILABLE
    assert grpc.StatusCode.UNAVAILABLE != StatusCode.OK
    assert StatusCode.NOT_FOUND in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INTERNAL)
    assert StatusCode.NOT_FOUND == 5 and StatusCode.NOT_FOUND != 6
    assert StatusCode.NOT_FOUND != "NOT_FOUND" and StatusCode.NOT_FOUND != (5, "not found")
    assert hash(StatusCode.NOT_FOUND) == hash(5) and {5: "x"}[StatusCode.NOT_FOUND] == "x"
    assert pickle.loads(pickle.dumps(StatusCode.NOT_FOUND)) is StatusCode.NOT_FOUND


# --- RpcError --------------------------------------------------------------------------------


def test_rpc_error_is_grpcios_aio_rpc_error_while_grpcio_is_loaded() -> None:
    """Code written for grpc.aio catches ``grpc.aio.AioRpcError`` and checks ``grpc.RpcError``:
    grpc_lite's errors (and DroppedRpcError) are both, keep their name, methods and str, and
    pickle as grpc_lite's class."""
    import grpc
    import grpc.aio

    from grpc_lite.balancer import DroppedRpcError

    err = RpcError(StatusCode.NOT_FOUND, "gone", debug_error_string="dbg")
    assert isinstance(err, grpc.aio.AioRpcError) and isinstance(err, grpc.RpcError)
    assert isinstance(err, RpcError) and type(err).__name__ == "RpcError"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        raise err
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and caught.value.details() == "gone"
    assert str(err).startswith("<RpcError of RPC that terminated with:")
    assert caught.value.debug_error_string() == "dbg"
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, grpc.aio.AioRpcError) and again.details() == "gone"
    dropped = DroppedRpcError(StatusCode.UNAVAILABLE, "dropped by lb")
    assert isinstance(dropped, DroppedRpcError) and isinstance(dropped, grpc.RpcError)
    assert isinstance(pickle.loads(pickle.dumps(err)), RpcError)


def test_rpc_error_accessors_and_defaults() -> None:
    """API.md: RpcError exposes code/details/metadata/debug_error_string; empty Metadata if None."""
    from grpc_lite.metadata import Metadata

    err = RpcError(StatusCode.NOT_FOUND)
    assert isinstance(err, Exception)
    assert err.code() is StatusCode.NOT_FOUND
    assert err.details() is None
    assert err.debug_error_string() is None
    assert isinstance(err.initial_metadata(), Metadata)
    assert len(err.initial_metadata()) == 0
    assert isinstance(err.trailing_metadata(), Metadata)
    assert len(err.trailing_metadata()) == 0

    initial = Metadata(("a", "1"))
    trailing = Metadata(("b", "2"), ("c-bin", b"\x00"))
    err = RpcError(StatusCode.UNAVAILABLE, "down", initial, trailing, "dbg")
    assert err.details() == "down"
    assert err.initial_metadata() is initial
    assert err.trailing_metadata() is trailing
    assert err.debug_error_string() == "dbg"


def test_rpc_error_str_like_aio_rpc_error() -> None:
    """API.md: __str__/__repr__ follow grpc.aio's AioRpcError layout."""
    err = RpcError(StatusCode.UNAVAILABLE, "connection refused")
    expected = (
        "<RpcError of RPC that terminated with:\n"
        "\tstatus = StatusCode.UNAVAILABLE\n"
        '\tdetails = "connection refused"\n'
        ">"
    )
    assert str(err) == expected
    assert repr(err) == expected
    err = RpcError(StatusCode.INTERNAL, "x", debug_error_string="d")
    assert str(err).endswith('\tdetails = "x"\n\tdebug_error_string = "d"\n>')


def test_rpc_error_alias_and_raise() -> None:
    """API.md: grpc_lite.AioRpcError is the same class as RpcError."""
    assert AioRpcError is RpcError
    with pytest.raises(AioRpcError) as info:
        raise RpcError(StatusCode.ABORTED, "a")
    assert info.value.code() is StatusCode.ABORTED


def test_rpc_error_pickles_with_all_fields() -> None:
    from grpc_lite.metadata import Metadata

    err = RpcError(StatusCode.DATA_LOSS, "lost", Metadata(("a", "1")), Metadata(), "dbg")
    copy = pickle.loads(pickle.dumps(err))
    assert copy.code() is StatusCode.DATA_LOSS
    assert copy.details() == "lost"
    assert copy.initial_metadata() == [("a", "1")]
    assert copy.debug_error_string() == "dbg"


def test_usage_error_is_runtime_error() -> None:
    """API.md: UsageError is a RuntimeError, as grpc.aio's UsageError."""
    assert issubclass(UsageError, RuntimeError)


def test_status_does_not_import_metadata_at_module_level() -> None:
    """DESIGN.md layers: metadata may import status, never the other way round at import."""
    tree = ast.parse(Path(grpc_lite.status.__file__).read_text())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top_level for a in n.names} | {
        n.module or "" for n in top_level if isinstance(n, ast.ImportFrom)
    }
    assert not any("metadata" in name for name in names), names


# --- HTTP status mapping (items 30, 31) ------------------------------------------------------


@pytest.mark.parametrize(
    ("http_status", "code"),
    [
        (400, StatusCode.INTERNAL),
        (401, StatusCode.UNAUTHENTICATED),
        (403, StatusCode.PERMISSION_DENIED),
        (404, StatusCode.UNIMPLEMENTED),
        (429, StatusCode.UNAVAILABLE),
        (431, StatusCode.INTERNAL),
        (502, StatusCode.UNAVAILABLE),
        (503, StatusCode.UNAVAILABLE),
        (504, StatusCode.UNAVAILABLE),
        (200, StatusCode.UNKNOWN),
        (201, StatusCode.UNKNOWN),
        (302, StatusCode.UNKNOWN),
        (405, StatusCode.UNKNOWN),
        (415, StatusCode.UNKNOWN),
        (500, StatusCode.UNKNOWN),
        (505, StatusCode.UNKNOWN),
        (0, StatusCode.UNKNOWN),
        (999, StatusCode.UNKNOWN),
    ],
)
def test_status_from_http(http_status: int, code: StatusCode) -> None:
    """Items 30 and 31: the http-grpc-status-mapping table; anything else, incl. 200, is UNKNOWN."""
    assert status_from_http(http_status) is code


# --- grpc-status parsing (items 25, 29) ------------------------------------------------------


@pytest.mark.parametrize("code", list(StatusCode))
def test_parse_grpc_status_valid(code: StatusCode) -> None:
    """Item 25: grpc-status is the decimal code."""
    assert parse_grpc_status(str(int(code))) is code


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "1.5",
        "17",
        "99",
        "-1",
        "+1",
        " 1",
        "1 ",
        "0x1",
        "1e1",
        "\u0661",
        "\u00b2",
        "ab12",
    ],
)
def test_parse_grpc_status_invalid(value: str) -> None:
    """Item 29: non-integers and integers outside 0-16 give None (the caller says UNKNOWN)."""
    assert parse_grpc_status(value) is None


def test_parse_grpc_status_leading_zeros_tolerated() -> None:
    """Item 29: a decimal with leading zeros still names a code; a huge number does not crash."""
    assert parse_grpc_status("05") is StatusCode.NOT_FOUND
    assert parse_grpc_status("000") is StatusCode.OK
    assert parse_grpc_status("9" * 100) is None


@given(st.text(max_size=20))
def test_parse_grpc_status_never_raises(value: str) -> None:
    """Item 29: any value must not crash the parser."""
    result = parse_grpc_status(value)
    assert result is None or isinstance(result, StatusCode)


# --- grpc-message (item 26) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "text"),
    [
        ("", ""),
        ("plain message", "plain message"),
        ("abc%ZZ%4", "abc%ZZ%4"),
        ("%E2%98%BA", "☺"),
        ("%e2%98%ba", "☺"),
        ("100%25", "100%"),
        ("%", "%"),
        ("%%", "%%"),
        ("%%41", "%A"),
        ("%4", "%4"),
        ("a%20b", "a b"),
        ("%G0", "%G0"),
        ("%F0%9F%98%88", "😈"),
        ("%0A%09", "\n\t"),
        # Invalid UTF-8 after decoding is replaced, never dropped.
        ("bad %FF byte", "bad \ufffd byte"),
        ("%E2%98", "\ufffd"),
    ],
)
def test_decode_grpc_message(wire: str, text: str) -> None:
    """Item 26: %XX to bytes then UTF-8; invalid or truncated escapes are left as they are."""
    assert decode_grpc_message(wire) == text


def test_decode_grpc_message_raw_utf8_bytes_from_transport() -> None:
    """Item 26: a server sending raw UTF-8 (read by the transport as latin-1) still decodes."""
    raw = "caf\u00e9 ☺".encode().decode("latin-1")
    assert decode_grpc_message(raw) == "café ☺"
    assert decode_grpc_message(raw + "%21") == "café ☺!"


def test_special_status_message_round_trip() -> None:
    """Item 26, interop special_status_message: whitespace and non-BMP text survive."""
    text = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
    wire = encode_grpc_message(text)
    assert wire.isascii()
    assert all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert decode_grpc_message(wire) == text


def test_encode_grpc_message() -> None:
    """Item 26: % is encoded as %25 (as grpcio does), other printable ASCII passes through."""
    assert encode_grpc_message("100%") == "100%25"
    assert encode_grpc_message("plain text ~!") == "plain text ~!"
    assert encode_grpc_message("☺") == "%E2%98%BA"
    assert encode_grpc_message("a\x7fb") == "a%7Fb"
    assert encode_grpc_message("") == ""


@given(st.text())
def test_grpc_message_round_trip_property(text: str) -> None:
    """Item 26: encode then decode is the identity for any text without lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    wire = encode_grpc_message(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert decode_grpc_message(wire) == text


@given(st.text(alphabet=st.characters(max_codepoint=0xFF)))
def test_decode_grpc_message_never_raises(wire: str) -> None:
    """Item 26: the call never errors because of grpc-message."""
    assert isinstance(decode_grpc_message(wire), str)


# --- A54 (item 103) --------------------------------------------------------------------------

RESTRICTED = {
    StatusCode.OK,
    StatusCode.INVALID_ARGUMENT,
    StatusCode.NOT_FOUND,
    StatusCode.ALREADY_EXISTS,
    StatusCode.FAILED_PRECONDITION,
    StatusCode.ABORTED,
    StatusCode.OUT_OF_RANGE,
    StatusCode.DATA_LOSS,
}


@pytest.mark.parametrize("code", list(StatusCode))
def test_restrict_control_plane_code(code: StatusCode) -> None:
    """Item 103 (A54): restricted codes become INTERNAL, keeping the original in the text."""
    new_code, message = restrict_control_plane_code(code, "resolver said no")
    if code in RESTRICTED:
        assert new_code is StatusCode.INTERNAL
        assert code.name in message
        assert "resolver said no" in message
    else:
        assert new_code is code
        assert message == "resolver said no"

"""Malformed response header blocks (RFC 9113 8.1.1, 8.2, 8.2.1, 8.2.2, 8.3) against the
scripted peer. h2 will not send most of these, so the peer writes the HEADERS frames itself
(HPACK-encoded with h2's own encoder, so both tables stay in sync).

Every case is a malformed response: the client resets the stream with PROTOCOL_ERROR, the
call fails INTERNAL with details naming the offending field (grpc-go: ``invalid header field
name "Content-Type"``), and the connection stays usable for the next call.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hyperframe.frame import HeadersFrame

import grpc_lite
from tests.e2e.transport._wire import UNARY, open_channel
from tests.h2peer import H2Peer, PeerStream, echo_unary, grpc_frame

pytestmark = [pytest.mark.integration, pytest.mark.timeout(10)]

SC = grpc_lite.StatusCode
PROTOCOL_ERROR = 0x1

Fields = Sequence[tuple[str | bytes, str | bytes]]
GRPC_HEADERS: list[tuple[str | bytes, str | bytes]] = [
    (":status", "200"),
    ("content-type", "application/grpc"),
]


def write_headers(stream: PeerStream, fields: Fields, *, end_stream: bool = False) -> None:
    """A HEADERS frame written as is, bypassing h2's checks."""
    conn = stream.connection
    flags = ["END_HEADERS", "END_STREAM"] if end_stream else ["END_HEADERS"]
    block = conn.encode_headers(list(fields))
    conn.write_frame(HeadersFrame(stream.stream_id, data=block, flags=flags))


def bad_response_headers(fields: Fields, *, end_stream: bool = False):  # type: ignore[no-untyped-def]
    """Handler: the request is read, then ``fields`` as the response headers (+ a message
    and OK trailers unless the block ended the stream), then wait for the client's reset."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        write_headers(stream, fields, end_stream=end_stream)
        if not end_stream:
            stream.connection.write_data_raw(stream.stream_id, grpc_frame(b"reply"))
            write_headers(stream, [("grpc-status", "0")], end_stream=True)
        await stream.wait_reset()

    return handler


def bad_trailers(fields: Fields):  # type: ignore[no-untyped-def]
    """Handler: good response headers and message, then ``fields`` as the trailers."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await stream.send_message(b"reply")
        write_headers(stream, fields, end_stream=True)
        await stream.wait_reset()

    return handler


async def expect_malformed(handler, field: str, where: str = "response headers") -> str:  # type: ignore[no-untyped-def]
    """Run one call against ``handler``: INTERNAL naming ``field``, RST_STREAM PROTOCOL_ERROR;
    then a good call on the same connection (HPACK state still in sync). Returns the details."""
    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"req", timeout=5)
        err = ei.value
        assert err.code() == SC.INTERNAL, err
        details = err.details() or ""
        assert f'"{field}"' in details, details
        assert f"malformed {where}" in details, details
        (st,) = await peer.wait_for_streams(1)
        assert await st.wait_reset() == PROTOCOL_ERROR
        peer.handler = echo_unary
        assert await ch.unary_unary(UNARY)(b"again", timeout=5) == b"again"
        assert peer.connection_count == 1
        assert not peer.errors
        return details


# ------------------------------------------------------------------ field names (8.2.1)


async def test_upper_case_field_name() -> None:
    """The case found against a misbehaving server: ``Content-Type`` used to fail UNKNOWN
    ("unexpected content-type None") as if it were missing."""
    details = await expect_malformed(
        bad_response_headers([(":status", "200"), ("Content-Type", "application/grpc")]),
        "Content-Type",
    )
    assert 'invalid header field name "Content-Type"' in details
    assert "content-type None" not in details


@pytest.mark.parametrize(
    "name",
    [
        "X-Upper",
        "x y",  # SP
        "x\ty",  # HTAB
        "x\x00y",  # NUL
        "x\x7fy",  # DEL
        "x\xe9",  # 0x80-0xFF
        "x:y",  # a colon outside a pseudo-header
        "x(y)",  # a separator, not a token character (RFC 9110 5.1)
        "",  # empty
    ],
)
async def test_field_name_outside_the_allowed_set(name: str) -> None:
    fields = [*GRPC_HEADERS, (name.encode("latin-1"), "v")]
    details = await expect_malformed(bad_response_headers(fields), _quoted(name))
    assert "invalid header field name" in details


# ------------------------------------------------------------------ field values (8.2.1)


@pytest.mark.parametrize(
    "value,why",
    [
        (b"a\x00b", "control character"),
        (b"a\rb", "control character"),
        (b"a\nb", "control character"),
        (b"a\x01b", "control character"),
        (b"a\x7fb", "control character"),
        (b" lead", "leading or trailing whitespace"),
        (b"trail ", "leading or trailing whitespace"),
        (b"\tlead", "leading or trailing whitespace"),
        (b"trail\t", "leading or trailing whitespace"),
    ],
)
async def test_invalid_field_value(value: bytes, why: str) -> None:
    fields = [*GRPC_HEADERS, ("x-value", value)]
    details = await expect_malformed(bad_response_headers(fields), "x-value")
    assert f'invalid header field value for "x-value" ({why})' in details


async def test_valid_unusual_values_are_accepted() -> None:
    """HTAB and SP inside a value, 0x80-0xFF, an empty value, and a grpc-message with
    surrounding spaces (gRPC servers send status messages' spaces unescaped) are all fine."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers(
            extra=[("x-tab", b"a\tb c"), ("x-high", b"caf\xe9"), ("x-empty", b"")]
        )
        await stream.send_message(b"ok")
        await stream.send_trailers(3, " spaced out ")

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.unary_unary(UNARY)(b"", timeout=5)
        with pytest.raises(grpc_lite.RpcError) as ei:
            await call
        assert ei.value.code() == SC.INVALID_ARGUMENT
        assert ei.value.details() == " spaced out "
        md = dict(await call.initial_metadata())
        assert md["x-tab"] == "a\tb c"
        assert md["x-empty"] == ""


# ------------------------------------------------------------------ connection-specific (8.2.2)


@pytest.mark.parametrize(
    "name,value",
    [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("te", "gzip"),
    ],
)
async def test_connection_specific_field(name: str, value: str) -> None:
    details = await expect_malformed(bad_response_headers([*GRPC_HEADERS, (name, value)]), name)
    assert f'connection-specific header field "{name}"' in details


async def test_te_trailers_is_not_malformed() -> None:
    """``te: trailers`` is the one value of TE RFC 9113 8.2.2 allows."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers(extra=[("te", "trailers")])
        await stream.send_message(b"ok")
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"", timeout=5) == b"ok"


# ------------------------------------------------------------------ pseudo-headers (8.3)


async def test_pseudo_header_after_regular_field() -> None:
    fields = [("content-type", "application/grpc"), (":status", "200")]
    details = await expect_malformed(bad_response_headers(fields), ":status")
    assert "after regular header fields" in details


async def test_unknown_pseudo_header() -> None:
    fields = [(":status", "200"), (":foo", "bar"), ("content-type", "application/grpc")]
    details = await expect_malformed(bad_response_headers(fields), ":foo")
    assert 'invalid pseudo-header ":foo"' in details


@pytest.mark.parametrize("name", [":path", ":method", ":scheme", ":authority", ":protocol"])
async def test_request_pseudo_header_in_a_response(name: str) -> None:
    fields = [(":status", "200"), (name, "x"), ("content-type", "application/grpc")]
    details = await expect_malformed(bad_response_headers(fields), name)
    assert f'request pseudo-header "{name}" in a response' in details


async def test_missing_status() -> None:
    details = await expect_malformed(
        bad_response_headers([("content-type", "application/grpc")]), ":status"
    )
    assert 'missing ":status"' in details


async def test_missing_status_trailers_only() -> None:
    fields = [("content-type", "application/grpc"), ("grpc-status", "0")]
    details = await expect_malformed(bad_response_headers(fields, end_stream=True), ":status")
    assert 'missing ":status"' in details


async def test_duplicated_status() -> None:
    fields = [(":status", "200"), (":status", "200"), ("content-type", "application/grpc")]
    details = await expect_malformed(bad_response_headers(fields), ":status")
    assert 'duplicate pseudo-header ":status"' in details


@pytest.mark.parametrize("value", ["abc", "20", "2000", "+20", "\xb2\xb2\xb2"])
async def test_status_not_three_digits(value: str) -> None:
    fields = [(":status", value.encode("latin-1")), ("content-type", "application/grpc")]
    details = await expect_malformed(bad_response_headers(fields), ":status")
    assert 'invalid ":status" value' in details


# ------------------------------------------------------------------ trailers (8.1)


async def test_pseudo_header_in_trailers() -> None:
    details = await expect_malformed(
        bad_trailers([(":status", "200"), ("grpc-status", "0")]), ":status", "trailers"
    )
    assert 'pseudo-header ":status" in trailers' in details


async def test_malformed_field_in_trailers() -> None:
    """The same field rules hold in trailers; an OK status there does not rescue the call."""
    details = await expect_malformed(
        bad_trailers([("grpc-status", "0"), ("Grpc-Message", "x")]), "Grpc-Message", "trailers"
    )
    assert 'invalid header field name "Grpc-Message"' in details


async def test_informational_then_malformed_headers() -> None:
    """A 1xx block is skipped; the real headers after it are still checked."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        write_headers(stream, [(":status", "100")])
        write_headers(stream, [(":status", "200"), ("Content-Type", "application/grpc")])
        await stream.wait_reset()

    await expect_malformed(handler, "Content-Type")


def _quoted(name: str) -> str:
    """How the details quote a field name (control bytes escaped, like Go's %q)."""
    return name.encode("unicode_escape").decode("ascii").replace('"', '\\"')


# ------------------------------------------------------------------ cost


async def test_fields_checked_once_per_distinct_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks run when a block is decoded, and the decoded-block cache shares the result:
    once h2's table is warm (every response block all-indexed), calls check nothing."""
    from grpc_lite._transport import _headers

    checked: list[list[tuple[str, str]]] = []
    real = _headers._check_fields

    def counting(fields: list[tuple[str, str]]) -> tuple[str | None, str | None]:
        checked.append(fields)
        return real(fields)

    monkeypatch.setattr(_headers, "_check_fields", counting)
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        for _ in range(3):
            assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"x"
        warm = len(checked)
        for _ in range(20):
            assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"x"
        assert len(checked) == warm

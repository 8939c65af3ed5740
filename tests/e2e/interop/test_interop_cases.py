"""The client-side interop cases (CONFORMANCE section S, items 165-181) against grpcio's
TestService. Every case runs twice: with ``grpc_lite.Stub`` over grpc_lite's private-pool
descriptor ("lite") and with grpcio-tools' generated ``TestServiceStub`` handed a grpc_lite
channel ("generated"), which API.md promises works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

import grpc_lite
from tests.e2e.channel._util import (
    ECHO_INITIAL_KEY,
    ECHO_INITIAL_VALUE,
    ECHO_TRAILING_KEY,
    ECHO_TRAILING_VALUE,
    KINDS,
    SC,
    Kit,
    make_kit,
    watch_server_calls,
)
from tests.servers.harness import RunningServer, ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

LARGE_REQUEST = 271828
LARGE_RESPONSE = 314159
ECHO_METADATA = ((ECHO_INITIAL_KEY, ECHO_INITIAL_VALUE), (ECHO_TRAILING_KEY, ECHO_TRAILING_VALUE))
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"


@pytest.fixture
async def channel(interop_server: RunningServer) -> AsyncIterator[grpc_lite.Channel]:
    ch = grpc_lite.insecure_channel(interop_server.address)
    try:
        yield ch
    finally:
        await ch.close()


@pytest.fixture(params=KINDS)
def kit(request: pytest.FixtureRequest, channel: grpc_lite.Channel) -> Kit:
    return make_kit(channel, request.param)


# --------------------------------------------------------------------------- 165-170


async def test_empty_unary(kit: Kit, interop_server: RunningServer) -> None:
    """CONFORMANCE 165 (and 24): EmptyCall(Empty) succeeds with a non-null Empty of the
    stub's own message class; status OK with an empty message; no protocol headers leak
    into the initial or trailing metadata; the server saw exactly one EmptyCall, with a
    grpc user-agent, and it ended normally (not cancelled)."""
    watch = watch_server_calls(interop_server)
    call = kit.stub.EmptyCall(kit.m.Empty(), timeout=5)
    response = await call
    assert response is not None
    assert type(response) is kit.m.Empty
    assert response == kit.m.Empty()
    assert await call.code() is SC.OK
    assert (await call.details()) in ("", None)
    initial = await call.initial_metadata()
    trailing = await call.trailing_metadata()
    assert isinstance(initial, grpc_lite.Metadata)
    assert isinstance(trailing, grpc_lite.Metadata)
    protocol = {":status", "content-type", "grpc-encoding", "grpc-accept-encoding"}
    assert not protocol & {k for k, _ in initial}, list(initial)
    assert not {"grpc-status", "grpc-message"} & {k for k, _ in trailing}, list(trailing)
    assert call.done() and not call.cancelled()
    assert interop_server.recorder.count("EmptyCall") == 1
    (recorded,) = interop_server.recorder.calls
    assert recorded.method == "/grpc.testing.TestService/EmptyCall"
    user_agent = recorded.get("user-agent")
    assert isinstance(user_agent, str) and "grpc-" in user_agent, user_agent
    assert await watch.wait_ended(3.0)
    assert watch.cancelled_flags == [False]


async def test_large_unary(kit: Kit) -> None:
    """CONFORMANCE 166 (12, 13): UnaryCall{response_size 314159, 271828-byte payload}:
    a 314159-byte all-zero COMPRESSABLE payload comes back (flow control both ways)."""
    response = await kit.stub.UnaryCall(kit.simple(LARGE_RESPONSE, LARGE_REQUEST), timeout=10)
    assert type(response) is kit.m.SimpleResponse
    assert response.payload.type == kit.m.COMPRESSABLE
    assert response.payload.body == b"\0" * LARGE_RESPONSE


async def test_client_streaming(kit: Kit) -> None:
    """CONFORMANCE 167: StreamingInputCall with 27182, 8, 1828, 45904-byte payloads via
    write()/done_writing() -> aggregated_payload_size 74922."""
    call = kit.stub.StreamingInputCall(timeout=10)
    for size in (27182, 8, 1828, 45904):
        await call.write(kit.streaming_input(size))
    await call.done_writing()
    response = await call
    assert response.aggregated_payload_size == 74922
    assert await call.code() is SC.OK


async def test_client_streaming_from_async_iterator(kit: Kit) -> None:
    """CONFORMANCE 167 with the request-iterator form (API.md: pass an (async) iterator)."""

    async def requests() -> AsyncIterator[object]:
        for size in (27182, 8, 1828, 45904):
            yield kit.streaming_input(size)

    response = await kit.stub.StreamingInputCall(requests(), timeout=10)
    assert response.aggregated_payload_size == 74922


async def test_server_streaming(kit: Kit) -> None:
    """CONFORMANCE 168: StreamingOutputCall with sizes [31415, 9, 2653, 58979] -> exactly
    those four responses in order, then OK (read() gives EOF at the end)."""
    sizes = [31415, 9, 2653, 58979]
    call = kit.stub.StreamingOutputCall(kit.streaming_output(sizes), timeout=10)
    got = [len(r.payload.body) async for r in call]
    assert got == sizes
    assert await call.code() is SC.OK
    assert await call.read() is grpc_lite.EOF


async def test_ping_pong(kit: Kit) -> None:
    """CONFORMANCE 169: FullDuplexCall, one request then wait for its response, four times
    ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904)); half-close; EOF; OK."""
    pairs = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
    call = kit.stub.FullDuplexCall(timeout=10)
    for response_size, payload_size in pairs:
        await call.write(kit.streaming_output([response_size], payload_size))
        response = await call.read()
        assert response is not grpc_lite.EOF
        assert len(response.payload.body) == response_size
    await call.done_writing()
    assert await call.read() is grpc_lite.EOF
    assert await call.code() is SC.OK


async def test_empty_stream(kit: Kit) -> None:
    """CONFORMANCE 170: FullDuplexCall half-closed at once -> OK with zero responses."""
    call = kit.stub.FullDuplexCall(timeout=5)
    await call.done_writing()
    assert [r async for r in call] == []
    assert await call.code() is SC.OK


# --------------------------------------------------------------------------- 171-173


async def test_timeout_on_sleeping_server(kit: Kit) -> None:
    """CONFORMANCE 171 (49): FullDuplexCall with a 1 ms deadline, send a 27182-byte payload
    -> DEADLINE_EXCEEDED (the write itself may already fail with it)."""
    call = kit.stub.FullDuplexCall(timeout=0.001)
    try:
        await call.write(kit.streaming_output([], 27182))
    except grpc_lite.RpcError as exc:
        assert exc.code() is SC.DEADLINE_EXCEEDED
    with pytest.raises(grpc_lite.RpcError) as info:
        await call.read()
    assert info.value.code() is SC.DEADLINE_EXCEEDED
    assert await call.code() is SC.DEADLINE_EXCEEDED


async def test_cancel_after_begin(kit: Kit, interop_server: RunningServer) -> None:
    """CONFORMANCE 172 (51): start StreamingInputCall, cancel before sending anything ->
    CANCELLED; awaiting the call raises asyncio.CancelledError (grpc.aio behaviour); the
    server's handler (started once the HEADERS arrived) ends as cancelled by the client."""
    watch = watch_server_calls(interop_server)
    call = kit.stub.StreamingInputCall(timeout=5)
    assert await watch.wait_started(3.0), "the server never saw the stream"
    assert call.cancel() is True
    assert call.cancelled()
    assert call.done()
    assert await call.code() is SC.CANCELLED
    with pytest.raises(asyncio.CancelledError):
        await call
    assert call.cancel() is False  # already finished
    assert await watch.wait_ended(3.0), "the server never saw the RPC end"
    assert watch.cancelled_flags == [True]


async def test_cancel_after_first_response(kit: Kit, interop_server: RunningServer) -> None:
    """CONFORMANCE 173 (51): FullDuplexCall, send (31415, 27182), read one response, cancel
    -> CANCELLED; the server's RPC terminates as cancelled by the client (it never
    half-closed, so only the cancel can have ended it)."""
    watch = watch_server_calls(interop_server)
    call = kit.stub.FullDuplexCall(timeout=10)
    await call.write(kit.streaming_output([31415], 27182))
    response = await call.read()
    assert len(response.payload.body) == 31415
    assert call.cancel()
    assert await call.code() is SC.CANCELLED
    with pytest.raises(asyncio.CancelledError):
        await call.read()
    assert await watch.wait_ended(3.0), "the server never saw the RPC end"
    assert watch.cancelled_flags == [True]


# --------------------------------------------------------------------------- 174-176


async def test_custom_metadata_unary(kit: Kit) -> None:
    """CONFORMANCE 174 (22, 24): UnaryCall (314159/271828) with the echo keys: exactly one
    echoed initial value; the trailing -bin value comes back byte-exact."""
    call = kit.stub.UnaryCall(
        kit.simple(LARGE_RESPONSE, LARGE_REQUEST), metadata=ECHO_METADATA, timeout=10
    )
    response = await call
    assert len(response.payload.body) == LARGE_RESPONSE
    initial = await call.initial_metadata()
    trailing = await call.trailing_metadata()
    assert initial.get_all(ECHO_INITIAL_KEY) == [ECHO_INITIAL_VALUE]
    assert (ECHO_INITIAL_KEY, ECHO_INITIAL_VALUE) in list(initial)
    assert trailing.get_all(ECHO_TRAILING_KEY) == [ECHO_TRAILING_VALUE]
    assert ECHO_TRAILING_KEY not in initial
    assert ECHO_INITIAL_KEY not in trailing


async def test_custom_metadata_full_duplex(kit: Kit) -> None:
    """CONFORMANCE 174: FullDuplexCall with the echo keys, one response of 314159, half-close:
    same metadata assertions as the unary case."""
    call = kit.stub.FullDuplexCall(metadata=ECHO_METADATA, timeout=10)
    await call.write(kit.streaming_output([LARGE_RESPONSE], LARGE_REQUEST))
    await call.done_writing()
    sizes = [len(r.payload.body) async for r in call]
    assert sizes == [LARGE_RESPONSE]
    initial = await call.initial_metadata()
    trailing = await call.trailing_metadata()
    assert initial.get_all(ECHO_INITIAL_KEY) == [ECHO_INITIAL_VALUE]
    assert trailing.get_all(ECHO_TRAILING_KEY) == [ECHO_TRAILING_VALUE]
    assert await call.code() is SC.OK


async def test_status_code_and_message_unary(kit: Kit) -> None:
    """CONFORMANCE 175 (25): UnaryCall with response_status {2, "test status message"} ->
    RpcError UNKNOWN (2) with that exact message; the call object agrees."""
    request = kit.simple(
        1, 1, response_status=kit.m.EchoStatus(code=2, message="test status message")
    )
    call = kit.stub.UnaryCall(request, timeout=5)
    with pytest.raises(grpc_lite.RpcError) as info:
        await call
    assert info.value.code() is SC.UNKNOWN
    assert int(info.value.code()) == 2
    assert info.value.details() == "test status message"
    assert isinstance(info.value, grpc_lite.AioRpcError)
    assert await call.code() is SC.UNKNOWN
    assert await call.details() == "test status message"


async def test_status_code_and_message_full_duplex(kit: Kit) -> None:
    """CONFORMANCE 175: FullDuplexCall with the same response_status, then half-close ->
    reading raises RpcError(2, "test status message")."""
    call = kit.stub.FullDuplexCall(timeout=5)
    await call.write(
        kit.m.StreamingOutputCallRequest(
            response_status=kit.m.EchoStatus(code=2, message="test status message")
        )
    )
    await call.done_writing()
    with pytest.raises(grpc_lite.RpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() is SC.UNKNOWN
    assert info.value.details() == "test status message"
    assert await call.code() is SC.UNKNOWN


async def test_special_status_message(kit: Kit) -> None:
    """CONFORMANCE 176 (26): code 2 with whitespace, BMP and non-BMP characters comes back
    exactly (percent-decoding, UTF-8, no stripping)."""
    request = kit.simple(1, 1, response_status=kit.m.EchoStatus(code=2, message=SPECIAL_MESSAGE))
    with pytest.raises(grpc_lite.RpcError) as info:
        await kit.stub.UnaryCall(request, timeout=5)
    assert info.value.code() is SC.UNKNOWN
    assert info.value.details() == SPECIAL_MESSAGE


# --------------------------------------------------------------------------- 177-178


async def test_unimplemented_method(kit: Kit) -> None:
    """CONFORMANCE 177 (27): /grpc.testing.TestService/UnimplementedCall -> UNIMPLEMENTED."""
    with pytest.raises(grpc_lite.RpcError) as info:
        await kit.stub.UnimplementedCall(kit.m.Empty(), timeout=5)
    assert info.value.code() is SC.UNIMPLEMENTED
    assert int(info.value.code()) == 12


async def test_unimplemented_service(kit: Kit) -> None:
    """CONFORMANCE 178: /grpc.testing.UnimplementedService/UnimplementedCall ->
    UNIMPLEMENTED."""
    with pytest.raises(grpc_lite.RpcError) as info:
        await kit.unimplemented.UnimplementedCall(kit.m.Empty(), timeout=5)
    assert info.value.code() is SC.UNIMPLEMENTED


# --------------------------------------------------------------------------- 179-181


@pytest.fixture
async def detecting_kit(
    request: pytest.FixtureRequest, grpc_server_factory: ServerFactory
) -> AsyncIterator[Kit]:
    """A kit (param: "lite"/"generated") on a server that checks expect_compressed
    (``detect_request_compression=True``, CONFORMANCE 181)."""
    server = grpc_server_factory.interop(detect_request_compression=True)
    ch = grpc_lite.insecure_channel(server.address)
    try:
        yield make_kit(ch, request.param)
    finally:
        await ch.close()


COMPRESSIONS = [
    pytest.param(grpc_lite.Compression.Gzip, id="gzip"),
    pytest.param(grpc_lite.Compression.Deflate, id="deflate"),
]


@pytest.mark.parametrize("detecting_kit", KINDS, indirect=True)
@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_client_compressed_unary(
    detecting_kit: Kit, compression: grpc_lite.Compression
) -> None:
    """CONFORMANCE 179 (45): probe (uncompressed, expect_compressed=true) -> INVALID_ARGUMENT;
    compressed + expect_compressed=true -> 314159 bytes; uncompressed +
    expect_compressed=false -> 314159 bytes. Per-call ``compression=``."""
    kit = detecting_kit
    yes, no = kit.m.BoolValue(value=True), kit.m.BoolValue(value=False)
    with pytest.raises(grpc_lite.RpcError) as info:
        await kit.stub.UnaryCall(
            kit.simple(LARGE_RESPONSE, LARGE_REQUEST, expect_compressed=yes), timeout=5
        )
    assert info.value.code() is SC.INVALID_ARGUMENT
    compressed = await kit.stub.UnaryCall(
        kit.simple(LARGE_RESPONSE, LARGE_REQUEST, expect_compressed=yes),
        compression=compression,
        timeout=5,
    )
    assert len(compressed.payload.body) == LARGE_RESPONSE
    plain = await kit.stub.UnaryCall(
        kit.simple(LARGE_RESPONSE, LARGE_REQUEST, expect_compressed=no), timeout=5
    )
    assert len(plain.payload.body) == LARGE_RESPONSE


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_client_compressed_unary_channel_default(
    grpc_server_factory: ServerFactory, compression: grpc_lite.Compression
) -> None:
    """CONFORMANCE 179 (45): the channel-level ``compression=`` default compresses requests
    (the server sees a compressed 271828-byte request); a per-call NoCompression overrides
    it (the server sees it uncompressed)."""
    server = grpc_server_factory.interop(detect_request_compression=True)
    async with grpc_lite.insecure_channel(server.address, compression=compression) as ch:
        kit = make_kit(ch, "lite")
        yes, no = kit.m.BoolValue(value=True), kit.m.BoolValue(value=False)
        response = await kit.stub.UnaryCall(
            kit.simple(1024, LARGE_REQUEST, expect_compressed=yes), timeout=5
        )
        assert len(response.payload.body) == 1024
        response = await kit.stub.UnaryCall(
            kit.simple(1024, LARGE_REQUEST, expect_compressed=no),
            compression=grpc_lite.Compression.NoCompression,
            timeout=5,
        )
        assert len(response.payload.body) == 1024


@pytest.mark.parametrize("detecting_kit", KINDS, indirect=True)
async def test_client_compressed_streaming(detecting_kit: Kit) -> None:
    """CONFORMANCE 179: client_compressed_streaming. Probe: an uncompressed 27182-byte message
    with expect_compressed=true -> INVALID_ARGUMENT. Then a gzip call: 27182 bytes
    (expect_compressed=true) and 45904 bytes -> aggregated 73086.

    grpc_lite (like grpc.aio) has no per-message "don't compress" write flag, so the second
    message of the compressed call cannot be sent uncompressed; it is sent without
    expect_compressed (unchecked). The uncompressed half is covered by a separate
    uncompressed call with expect_compressed=false."""
    kit = detecting_kit
    yes, no = kit.m.BoolValue(value=True), kit.m.BoolValue(value=False)

    probe = kit.stub.StreamingInputCall(timeout=5)
    await probe.write(kit.streaming_input(27182, expect_compressed=yes))
    await probe.done_writing()
    with pytest.raises(grpc_lite.RpcError) as info:
        await probe
    assert info.value.code() is SC.INVALID_ARGUMENT

    call = kit.stub.StreamingInputCall(timeout=5, compression=grpc_lite.Compression.Gzip)
    await call.write(kit.streaming_input(27182, expect_compressed=yes))
    await call.write(kit.streaming_input(45904))
    await call.done_writing()
    assert (await call).aggregated_payload_size == 73086

    plain = kit.stub.StreamingInputCall(timeout=5)
    await plain.write(kit.streaming_input(27182, expect_compressed=no))
    await plain.write(kit.streaming_input(45904, expect_compressed=no))
    await plain.done_writing()
    assert (await plain).aggregated_payload_size == 73086


async def test_server_compressed_unary(kit: Kit) -> None:
    """CONFORMANCE 180 (44): UnaryCall with response_compressed true and false (314159 /
    271828): both give 314159 zero bytes (the server gzips the first; grpc_lite does not
    expose the per-message flag, so only the content is checked)."""
    for flag in (True, False):
        response = await kit.stub.UnaryCall(
            kit.simple(
                LARGE_RESPONSE, LARGE_REQUEST, response_compressed=kit.m.BoolValue(value=flag)
            ),
            timeout=10,
        )
        assert response.payload.body == b"\0" * LARGE_RESPONSE, flag


async def test_server_compressed_streaming(kit: Kit) -> None:
    """CONFORMANCE 180 (44): StreamingOutputCall with 31415 (compressed) then 92653 (not
    compressed) in one stream: flag 1 and flag 0 messages mixed -> both sizes, in order."""
    request = kit.m.StreamingOutputCallRequest(
        response_parameters=[
            kit.m.ResponseParameters(size=31415, compressed=kit.m.BoolValue(value=True)),
            kit.m.ResponseParameters(size=92653, compressed=kit.m.BoolValue(value=False)),
        ]
    )
    call = kit.stub.StreamingOutputCall(request, timeout=10)
    bodies = [r.payload.body async for r in call]
    assert [len(b) for b in bodies] == [31415, 92653]
    assert all(b == b"\0" * len(b) for b in bodies)
    assert await call.code() is SC.OK


@pytest.mark.parametrize(
    "server_compression",
    [
        pytest.param(grpc.Compression.Gzip, id="gzip"),
        pytest.param(grpc.Compression.Deflate, id="deflate"),
    ],
)
async def test_server_default_compression(
    grpc_server_factory: ServerFactory, server_compression: grpc.Compression
) -> None:
    """CONFORMANCE 44 (180): a grpcio server created with ``compression=`` compresses every
    response (it may, since grpc_lite's grpc-accept-encoding lists gzip and deflate):
    large_unary and server_streaming still decode exactly."""
    server = grpc_server_factory.interop(compression=server_compression)
    async with grpc_lite.insecure_channel(server.address) as ch:
        kit = make_kit(ch, "lite")
        response = await kit.stub.UnaryCall(kit.simple(LARGE_RESPONSE, LARGE_REQUEST), timeout=10)
        assert response.payload.body == b"\0" * LARGE_RESPONSE
        sizes = [31415, 9, 2653, 58979]
        call = kit.stub.StreamingOutputCall(kit.streaming_output(sizes), timeout=10)
        assert [len(r.payload.body) async for r in call] == sizes

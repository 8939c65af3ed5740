"""grpc_lite against grpc-java's own interop TestService (tests/peers/java.py), plaintext and
TLS with certificates made here."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import grpc_lite
from grpc_lite._proto import testing_pb2
from tests.peers import java
from tests.peers._base import PeerProcess, make_tls_files

# The first test to run may build the peer (Maven, a few minutes on a cold ~/.m2); every call
# below has its own deadline and spawn() waits at most 60 s, so nothing hangs for this long.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SC = grpc_lite.StatusCode
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")


@pytest.fixture(scope="module")
def built() -> None:
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.fail(
            "the grpc-java peer needs java and mvn on PATH (the machine's JDK 17 and Maven)"
        )
    java.build()


@pytest.fixture(scope="module")
def plaintext_peer(built: None) -> Iterator[PeerProcess]:
    peer = java.start(None)
    try:
        yield peer
    finally:
        peer.stop()


def _stub(channel: grpc_lite.Channel) -> Any:  # methods are made at run time
    return grpc_lite.Stub(channel, testing_pb2.DESCRIPTOR.services_by_name["TestService"])


async def _empty_and_unary(channel: grpc_lite.Channel) -> None:
    stub = _stub(channel)
    empty = await stub.EmptyCall(testing_pb2.Empty(), timeout=10)
    assert empty == testing_pb2.Empty()

    call = stub.UnaryCall(
        testing_pb2.SimpleRequest(response_size=10), timeout=10, metadata=(ECHO_INITIAL,)
    )
    reply = await call
    # TestServiceImpl takes response bytes from a buffer of zeros.
    assert reply.payload.body == bytes(10)
    assert await call.code() is SC.OK
    # The interceptors of TestServiceImpl.interceptors() are installed.
    assert ECHO_INITIAL in list(await call.initial_metadata())


async def test_plaintext_empty_and_unary(plaintext_peer: PeerProcess) -> None:
    async with grpc_lite.insecure_channel(plaintext_peer.address) as channel:
        await _empty_and_unary(channel)


async def test_tls_empty_and_unary(built: None, tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    peer = java.start(tls)
    try:
        credentials = grpc_lite.ssl_channel_credentials(root_certificates=tls.ca.read_bytes())
        options = [("grpc.ssl_target_name_override", tls.server_name)]
        async with grpc_lite.secure_channel(peer.address, credentials, options) as channel:
            await _empty_and_unary(channel)
    finally:
        peer.stop()
    assert "(TLS)" in peer.output()


async def test_trailing_echo_and_status(plaintext_peer: PeerProcess) -> None:
    async with grpc_lite.insecure_channel(plaintext_peer.address) as channel:
        stub = _stub(channel)
        call = stub.UnaryCall(testing_pb2.SimpleRequest(), timeout=10, metadata=(ECHO_TRAILING,))
        await call
        assert ECHO_TRAILING in list(await call.trailing_metadata())

        message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
        request = testing_pb2.SimpleRequest(
            response_status=testing_pb2.EchoStatus(code=2, message=message)
        )
        with pytest.raises(grpc_lite.AioRpcError) as raised:
            await stub.UnaryCall(request, timeout=10)
        assert raised.value.code() is SC.UNKNOWN
        assert raised.value.details() == message


async def test_request_compression(plaintext_peer: PeerProcess) -> None:
    """grpc-java's default DecompressorRegistry has gzip (and identity) only: a deflate
    request is refused with UNIMPLEMENTED. The interop cases use gzip alone."""
    async with grpc_lite.insecure_channel(plaintext_peer.address) as channel:
        stub = _stub(channel)
        request = testing_pb2.SimpleRequest(
            response_size=7,
            payload=testing_pb2.Payload(body=bytes(1000)),
            expect_compressed=testing_pb2.BoolValue(value=True),
        )
        reply = await stub.UnaryCall(request, timeout=10, compression=grpc_lite.Compression.Gzip)
        assert reply.payload.body == bytes(7)

        with pytest.raises(grpc_lite.AioRpcError) as raised:
            await stub.UnaryCall(request, timeout=10, compression=grpc_lite.Compression.Deflate)
        assert raised.value.code() is SC.UNIMPLEMENTED
        assert "deflate" in (raised.value.details() or "")

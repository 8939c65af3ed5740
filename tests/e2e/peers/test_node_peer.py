"""grpc_lite against the grpc-js TestService peer (peers/node/server.js), plaintext and TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import grpc_lite
from grpc_lite._proto import testing_pb2 as pb
from tests.peers import node
from tests.peers._base import PeerProcess, TlsFiles, make_tls_files

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SC = grpc_lite.StatusCode
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")


@pytest.fixture(scope="module")
def built() -> None:
    node.build()


@pytest.fixture(params=["plaintext", "tls"])
def tls(request: pytest.FixtureRequest, tmp_path: Path) -> TlsFiles | None:
    return make_tls_files(tmp_path / "tls") if request.param == "tls" else None


@pytest.fixture
def peer(built: None, tls: TlsFiles | None) -> Iterator[PeerProcess]:
    process = node.start(tls)
    try:
        yield process
    finally:
        process.stop()
    assert process.process.poll() is not None


@pytest.fixture
async def stub(peer: PeerProcess, tls: TlsFiles | None) -> AsyncIterator[Any]:
    if tls is None:
        channel = grpc_lite.insecure_channel(peer.address)
    else:
        credentials = grpc_lite.ssl_channel_credentials(root_certificates=tls.ca.read_bytes())
        channel = grpc_lite.secure_channel(
            peer.address,
            credentials,
            options=[("grpc.ssl_target_name_override", tls.server_name)],
        )
    try:
        yield grpc_lite.Stub(channel, pb.DESCRIPTOR.services_by_name["TestService"])
    finally:
        await channel.close()


def test_module_shape() -> None:
    assert node.NAME == "grpc-js"
    assert node.VERSION.startswith("1.14.")
    assert set(node.UNSUPPORTED) == {
        "client_compressed_unary",
        "client_compressed_streaming",
        "server_compressed_unary",
        "server_compressed_streaming",
    }
    assert all(reason for reason in node.UNSUPPORTED.values())


async def test_empty_call(stub: Any) -> None:
    call = stub.EmptyCall(pb.Empty(), timeout=10)
    assert await call == pb.Empty()
    assert await call.code() is SC.OK


async def test_unary_call_echoes_metadata(stub: Any) -> None:
    request = pb.SimpleRequest(
        response_type=pb.COMPRESSABLE,
        response_size=10,
        payload=pb.Payload(type=pb.COMPRESSABLE, body=b"\0" * 20),
    )
    call = stub.UnaryCall(request, timeout=10, metadata=(ECHO_INITIAL, ECHO_TRAILING))
    response = await call
    assert response.payload.type == pb.COMPRESSABLE
    assert response.payload.body == b"\0" * 10
    assert await call.code() is SC.OK
    initial = await call.initial_metadata()
    trailing = await call.trailing_metadata()
    assert initial.get(ECHO_INITIAL[0]) == ECHO_INITIAL[1], list(initial)
    assert trailing.get(ECHO_TRAILING[0]) == ECHO_TRAILING[1], list(trailing)


async def test_streaming_output_call(stub: Any) -> None:
    sizes = [31415, 9, 2653, 58979]
    request = pb.StreamingOutputCallRequest(
        response_parameters=[pb.ResponseParameters(size=s, interval_us=1000) for s in sizes]
    )
    call = stub.StreamingOutputCall(request, timeout=10)
    bodies = [r.payload.body async for r in call]
    assert [len(b) for b in bodies] == sizes
    assert all(b == b"\0" * len(b) for b in bodies)
    assert await call.code() is SC.OK


async def test_response_status(stub: Any) -> None:
    request = pb.SimpleRequest(response_status=pb.EchoStatus(code=2, message="test status message"))
    call = stub.UnaryCall(request, timeout=10)
    with pytest.raises(grpc_lite.AioRpcError) as caught:
        await call
    assert caught.value.code() is SC.UNKNOWN
    assert caught.value.details() == "test status message"
    assert await call.code() is SC.UNKNOWN
    assert await call.details() == "test status message"


@pytest.mark.parametrize("compression", [grpc_lite.Compression.Gzip, grpc_lite.Compression.Deflate])
async def test_compressed_request(stub: Any, compression: grpc_lite.Compression) -> None:
    """grpc-js decompresses gzip and deflate requests on its own (the handler sees the
    plain message); its responses stay uncompressed."""
    request = pb.SimpleRequest(response_size=7, payload=pb.Payload(body=b"\0" * 271828))
    call = stub.UnaryCall(request, timeout=10, compression=compression)
    assert (await call).payload.body == b"\0" * 7
    assert await call.code() is SC.OK

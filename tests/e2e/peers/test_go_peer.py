"""grpc_lite against grpc-go's own interop server (tests/peers/go.py): plaintext and TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import grpc_lite
from grpc_lite._proto import testing_pb2
from tests.peers import go
from tests.peers._base import PeerProcess, TlsFiles, make_tls_files

# A cold build (usually done before pytest by `python -m tests.peers.build`) takes ~30 s
# plus module downloads, inside the first test's setup: then allow for it.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60 if go.up_to_date() else 900)]

_SERVICE = testing_pb2.DESCRIPTOR.services_by_name["TestService"]


@pytest.fixture(scope="session")
def go_built() -> None:
    go.build()


@pytest.fixture(params=["plaintext", "tls"])
def go_server(
    request: pytest.FixtureRequest, go_built: None, tmp_path: Path
) -> Iterator[tuple[PeerProcess, TlsFiles | None]]:
    tls = make_tls_files(tmp_path / "tls") if request.param == "tls" else None
    peer = go.start(tls)
    try:
        yield peer, tls
    finally:
        peer.stop()


def _channel(peer: PeerProcess, tls: TlsFiles | None) -> grpc_lite.Channel:
    if tls is None:
        return grpc_lite.insecure_channel(peer.address)
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls.ca.read_bytes())
    return grpc_lite.secure_channel(
        peer.address, creds, options=[("grpc.ssl_target_name_override", tls.server_name)]
    )


async def test_empty_and_unary_call(go_server: tuple[PeerProcess, TlsFiles | None]) -> None:
    """EmptyCall, then UnaryCall{response_size 10}: 10 zero bytes of COMPRESSABLE back."""
    peer, tls = go_server
    async with _channel(peer, tls) as channel:
        stub = grpc_lite.Stub(channel, _SERVICE)
        empty = await stub.EmptyCall(testing_pb2.Empty(), timeout=10)
        response = await stub.UnaryCall(
            testing_pb2.SimpleRequest(
                response_type=testing_pb2.COMPRESSABLE,
                response_size=10,
                payload=testing_pb2.Payload(body=b"\0" * 7),
            ),
            timeout=10,
        )
    assert type(empty) is testing_pb2.Empty
    assert empty == testing_pb2.Empty()
    assert response.payload.type == testing_pb2.COMPRESSABLE
    assert response.payload.body == b"\0" * 10
    assert peer.process.poll() is None, peer.output()


def test_version_is_the_pinned_one() -> None:
    """VERSION (shown in the interop matrix) is the grpc-go that peers/go/go.mod pins."""
    go_mod = (go.SOURCE_DIR / "go.mod").read_text()
    assert f"\tgoogle.golang.org/grpc {go.VERSION}" in go_mod

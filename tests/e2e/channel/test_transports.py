"""Transports against real servers: TLS (CONFORMANCE 18), mutual TLS, Unix sockets (61),
abstract Unix sockets (62) and the ``:authority`` / ``:scheme`` / SNI / ALPN the client
sends (1, 18, 61, 64)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import ssl
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
import trustme

import grpc_lite
from grpc_lite._proto import testing_pb2
from tests.e2e.channel._util import SC, established_connections_to, make_kit, wait_until
from tests.h2peer import H2Peer, echo_unary
from tests.servers.harness import RunningServer, ServerFactory, TLSMaterial
from tests.servers.interop import TestServiceServicer, add_test_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

TEST_SERVICE = testing_pb2.DESCRIPTOR.services_by_name["TestService"]


async def _unary_ok(channel: grpc_lite.Channel, size: int = 2048) -> None:
    """One UnaryCall that must succeed with ``size`` bytes back."""
    stub = grpc_lite.Stub(channel, TEST_SERVICE)
    response = await stub.UnaryCall(
        testing_pb2.SimpleRequest(
            response_size=size, payload=testing_pb2.Payload(body=b"\0" * size)
        ),
        timeout=5,
    )
    assert len(response.payload.body) == size


async def _empty_call_error(channel: grpc_lite.Channel) -> grpc_lite.RpcError:
    """One EmptyCall (5 s deadline) that must fail; its error."""
    stub = grpc_lite.Stub(channel, TEST_SERVICE)
    with pytest.raises(grpc_lite.RpcError) as info:
        await stub.EmptyCall(testing_pb2.Empty(), timeout=5)
    return info.value


# --------------------------------------------------------------------------- TLS (18)


async def test_tls_with_root_certificates(tls_interop_server: RunningServer) -> None:
    """CONFORMANCE 18: ssl_channel_credentials(root_certificates=CA) to the TLS interop server
    at "localhost:PORT": large_unary and server_streaming succeed; state READY."""
    assert tls_interop_server.tls is not None
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_interop_server.tls.ca_pem)
    target = f"localhost:{tls_interop_server.port}"
    async with grpc_lite.secure_channel(target, creds) as ch:
        kit = make_kit(ch, "lite")
        response = await kit.stub.UnaryCall(kit.simple(314159, 271828), timeout=5)
        assert len(response.payload.body) == 314159
        call = kit.stub.StreamingOutputCall(kit.streaming_output([31415, 9]), timeout=5)
        assert [len(r.payload.body) async for r in call] == [31415, 9]
        assert ch.get_state() is grpc_lite.ChannelConnectivity.READY


async def test_tls_ip_address_target(tls_interop_server: RunningServer) -> None:
    """CONFORMANCE 18: dialing "127.0.0.1:PORT" verifies against the certificate's IP SAN
    (the host is an IP literal, so it must be checked as an IP, not a DNS name)."""
    assert tls_interop_server.tls is not None
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_interop_server.tls.ca_pem)
    async with grpc_lite.secure_channel(tls_interop_server.address, creds) as ch:
        await _unary_ok(ch)


async def test_tls_with_user_ssl_context(tls_interop_server: RunningServer) -> None:
    """CONFORMANCE 18 / API.md TLS: a user ``ssl.SSLContext`` (ALPN not set by the user) is
    accepted; grpc_lite sets ALPN h2 on it and the call succeeds."""
    assert tls_interop_server.tls is not None
    context = ssl.create_default_context(cadata=tls_interop_server.tls.ca_pem.decode())
    async with grpc_lite.secure_channel(f"localhost:{tls_interop_server.port}", context) as ch:
        await _unary_ok(ch)


async def test_tls_target_name_override_matching(tls_interop_server: RunningServer) -> None:
    """CONFORMANCE 18: grpc.ssl_target_name_override names the host to verify: dialing
    127.0.0.1 with override "localhost" (a name the certificate carries) succeeds."""
    assert tls_interop_server.tls is not None
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_interop_server.tls.ca_pem)
    options = [("grpc.ssl_target_name_override", "localhost")]
    async with grpc_lite.secure_channel(tls_interop_server.address, creds, options) as ch:
        await _unary_ok(ch)


async def test_tls_wrong_host_override_unavailable(tls_interop_server: RunningServer) -> None:
    """CONFORMANCE 18 (100): grpc.ssl_target_name_override to a name the certificate does not
    carry -> the handshake fails; the fail-fast RPC ends UNAVAILABLE quickly (well inside its
    5 s deadline) with a message naming the certificate / hostname problem."""
    assert tls_interop_server.tls is not None
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_interop_server.tls.ca_pem)
    options = [("grpc.ssl_target_name_override", "wrong.grpc-lite.test")]
    async with grpc_lite.secure_channel(
        f"localhost:{tls_interop_server.port}", creds, options
    ) as ch:
        start = time.monotonic()
        error = await _empty_call_error(ch)
        elapsed = time.monotonic() - start
    assert error.code() is SC.UNAVAILABLE, error
    details = (error.details() or "").lower()
    assert "certificate" in details or "hostname" in details, details
    assert elapsed < 2.0, elapsed
    assert tls_interop_server.recorder.count() == 0


async def test_tls_wrong_root_unavailable(tls_interop_server: RunningServer) -> None:
    """CONFORMANCE 18: a root CA that did not sign the server's certificate -> UNAVAILABLE
    (certificate verify failed), quickly; nothing reaches the server's handlers."""
    other_ca = trustme.CA()
    creds = grpc_lite.ssl_channel_credentials(root_certificates=other_ca.cert_pem.bytes())
    async with grpc_lite.secure_channel(f"localhost:{tls_interop_server.port}", creds) as ch:
        start = time.monotonic()
        error = await _empty_call_error(ch)
        elapsed = time.monotonic() - start
    assert error.code() is SC.UNAVAILABLE, error
    assert "certificate" in (error.details() or "").lower(), error.details()
    assert elapsed < 2.0, elapsed
    assert tls_interop_server.recorder.count() == 0


async def test_tls_to_plaintext_server_unavailable(interop_server: RunningServer) -> None:
    """CONFORMANCE 18/41: a TLS channel to a plaintext server cannot handshake -> UNAVAILABLE
    (not a hang until the deadline, not INTERNAL)."""
    creds = grpc_lite.ssl_channel_credentials(root_certificates=TLSMaterial.create().ca_pem)
    async with grpc_lite.secure_channel(interop_server.address, creds) as ch:
        start = time.monotonic()
        error = await _empty_call_error(ch)
        assert time.monotonic() - start < 2.0
    assert error.code() is SC.UNAVAILABLE, error


# --------------------------------------------------------------------------- mutual TLS


@pytest.fixture
def mtls_server(grpc_server_factory: ServerFactory, tls_material: TLSMaterial) -> RunningServer:
    """The interop server over TLS that requires a client certificate from the test CA."""
    return grpc_server_factory.interop(tls=tls_material, require_client_auth=True)


async def test_mtls_with_client_certificate(
    mtls_server: RunningServer, tls_material: TLSMaterial
) -> None:
    """CONFORMANCE 18 (mutual TLS): ssl_channel_credentials(root, private_key,
    certificate_chain) against a server requiring client auth -> the call succeeds."""
    creds = grpc_lite.ssl_channel_credentials(
        root_certificates=tls_material.ca_pem,
        private_key=tls_material.client_key_pem,
        certificate_chain=tls_material.client_cert_chain_pem,
    )
    async with grpc_lite.secure_channel(f"localhost:{mtls_server.port}", creds) as ch:
        await _unary_ok(ch)
    assert mtls_server.recorder.count("UnaryCall") == 1


async def test_mtls_with_client_certificate_ssl_context(
    mtls_server: RunningServer, tls_material: TLSMaterial
) -> None:
    """CONFORMANCE 18 (mutual TLS): a user SSLContext carrying the client certificate works."""
    context = tls_material.client_ssl_context(client_cert=True)
    async with grpc_lite.secure_channel(f"localhost:{mtls_server.port}", context) as ch:
        await _unary_ok(ch)


async def test_mtls_without_client_certificate_unavailable(
    mtls_server: RunningServer, tls_material: TLSMaterial
) -> None:
    """CONFORMANCE 18 (mutual TLS): no client certificate against a server that requires one
    -> UNAVAILABLE (the server rejects the handshake), well inside the 5 s deadline."""
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_material.ca_pem)
    async with grpc_lite.secure_channel(f"localhost:{mtls_server.port}", creds) as ch:
        start = time.monotonic()
        error = await _empty_call_error(ch)
        elapsed = time.monotonic() - start
    assert error.code() is SC.UNAVAILABLE, error
    assert elapsed < 2.0, elapsed
    assert mtls_server.recorder.count() == 0


def test_ssl_channel_credentials_key_without_chain_rejected(tls_material: TLSMaterial) -> None:
    """CONFORMANCE 18 / API.md: private_key without certificate_chain is a usage error
    (ValueError at once), as is garbage root material."""
    with pytest.raises(ValueError):
        grpc_lite.ssl_channel_credentials(
            root_certificates=tls_material.ca_pem, private_key=tls_material.client_key_pem
        )
    with pytest.raises(ValueError):
        grpc_lite.ssl_channel_credentials(root_certificates=b"not a certificate")


# --------------------------------------------------------------------------- Unix sockets (61)


async def test_unix_single_slash(unix_interop_server: RunningServer) -> None:
    """CONFORMANCE 61: ``unix:/abs/path`` connects (the fixture's own address)."""
    assert unix_interop_server.address.startswith("unix:/")
    async with grpc_lite.insecure_channel(unix_interop_server.address) as ch:
        await _unary_ok(ch)
        call = grpc_lite.Stub(ch, TEST_SERVICE).StreamingOutputCall(
            testing_pb2.StreamingOutputCallRequest(
                response_parameters=[testing_pb2.ResponseParameters(size=58979)]
            ),
            timeout=5,
        )
        assert [len(r.payload.body) async for r in call] == [58979]


async def test_unix_triple_slash(unix_interop_server: RunningServer) -> None:
    """CONFORMANCE 61: ``unix:///abs/path`` connects."""
    assert unix_interop_server.unix_path is not None
    target = f"unix://{unix_interop_server.unix_path}"
    assert target.startswith("unix:///")
    async with grpc_lite.insecure_channel(target) as ch:
        await _unary_ok(ch)


async def test_unix_relative_path(
    unix_interop_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONFORMANCE 61: ``unix:relative/path`` is resolved against the working directory."""
    assert unix_interop_server.unix_path is not None
    directory, name = os.path.split(unix_interop_server.unix_path)
    monkeypatch.chdir(os.path.dirname(directory))
    target = f"unix:{os.path.basename(directory)}/{name}"
    async with grpc_lite.insecure_channel(target) as ch:
        await _unary_ok(ch)


def test_unix_with_authority_rejected() -> None:
    """CONFORMANCE 61: ``unix://host/path`` (a non-empty authority) is malformed: ValueError
    at channel creation."""
    with pytest.raises(ValueError):
        grpc_lite.insecure_channel("unix://tmp/x.sock")


async def test_unix_missing_socket_unavailable(tmp_path: Any) -> None:
    """CONFORMANCE 41/100: a unix target whose socket does not exist -> fail-fast
    UNAVAILABLE quickly (not DEADLINE_EXCEEDED after 5 s)."""
    async with grpc_lite.insecure_channel(f"unix:{tmp_path}/missing.sock") as ch:
        start = time.monotonic()
        error = await _empty_call_error(ch)
        assert time.monotonic() - start < 2.0
    assert error.code() is SC.UNAVAILABLE, error


# --------------------------------------------------------------------------- unix-abstract (62)


@pytest.fixture
def abstract_interop_server() -> Iterator[tuple[str, TestServiceServicer]]:
    """A grpcio TestService bound only to ``unix-abstract:NAME``; yields (NAME, servicer)."""
    name = f"grpclite-test-{uuid.uuid4().hex[:12]}"
    executor = futures.ThreadPoolExecutor(max_workers=8)
    server = grpc.server(executor)
    servicer = TestServiceServicer()
    add_test_service(server, servicer, detect_request_compression=False)
    try:
        server.add_insecure_port(f"unix-abstract:{name}")
    except RuntimeError as exc:  # pragma: no cover - non-Linux
        executor.shutdown(wait=False)
        pytest.fail(f"grpcio cannot bind unix-abstract here (Linux needed): {exc}")
    server.start()
    try:
        yield name, servicer
    finally:
        server.stop(None).wait()
        executor.shutdown(wait=False)


async def test_unix_abstract(abstract_interop_server: tuple[str, TestServiceServicer]) -> None:
    """CONFORMANCE 62: ``unix-abstract:NAME`` connects to the abstract socket ``\\0NAME``
    (the library adds the NUL) served by grpcio."""
    name, servicer = abstract_interop_server
    async with grpc_lite.insecure_channel(f"unix-abstract:{name}") as ch:
        await _unary_ok(ch)
    assert servicer.recorder.count("UnaryCall") == 1


def test_unix_abstract_with_nul_rejected() -> None:
    """CONFORMANCE 62: an abstract name containing NUL is malformed (ValueError)."""
    with pytest.raises(ValueError):
        grpc_lite.insecure_channel("unix-abstract:bad\0name")


# --------------------------------------------------------------------------- :authority (64)


class _UnixPeer(H2Peer):
    """The scripted peer listening on a Unix socket instead of TCP."""

    def __init__(self, path: str, **kw: Any) -> None:
        super().__init__(unix_path=path, **kw)
        self.path = path

    @property
    def target(self) -> str:
        return f"unix:{self.path}"


class _TLSPeer(H2Peer):
    """The scripted peer behind TLS (ALPN h2); records the SNI names clients sent."""

    def __init__(self, material: TLSMaterial, **kw: Any) -> None:
        self.sni: list[str | None] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        material.ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        context.set_alpn_protocols(["h2"])
        context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)  # type: ignore[assignment,misc]
        self.context = context
        super().__init__(ssl_context=context, **kw)


async def _authority_and_scheme(channel: grpc_lite.Channel, peer: H2Peer) -> tuple[str, str]:
    assert await channel.unary_unary("/grpc.testing.TestService/UnaryCall")(b"x", timeout=5) == (
        b"x"
    )
    (stream,) = await peer.wait_for_streams(1)
    authority, scheme = stream.header(":authority"), stream.header(":scheme")
    assert authority is not None and scheme is not None
    return authority, scheme


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("127.0.0.1:{port}", "127.0.0.1:{port}"),
        ("dns:///localhost:{port}", "localhost:{port}"),
        ("localhost:{port}", "localhost:{port}"),
        ("ipv4:127.0.0.1:{port}", "127.0.0.1:{port}"),
        ("passthrough:///127.0.0.1:{port}", "127.0.0.1:{port}"),
    ],
)
async def test_default_authority_tcp(template: str, expected: str) -> None:
    """CONFORMANCE 64 (1): the default ``:authority`` is the endpoint as written in the
    target (``dns:///localhost:P`` -> ``localhost:P``); ``:scheme`` is http in plaintext."""
    async with H2Peer(echo_unary) as peer:
        target = template.format(port=peer.port)
        async with grpc_lite.insecure_channel(target) as ch:
            authority, scheme = await _authority_and_scheme(ch, peer)
    assert authority == expected.format(port=peer.port)
    assert scheme == "http"


async def test_default_authority_override_option() -> None:
    """CONFORMANCE 64: ``grpc.default_authority`` wins over the target's endpoint."""
    async with H2Peer(echo_unary) as peer:
        options = [("grpc.default_authority", "svc.example.test:8443")]
        async with grpc_lite.insecure_channel(peer.target, options) as ch:
            authority, _ = await _authority_and_scheme(ch, peer)
    assert authority == "svc.example.test:8443"


async def test_unix_authority_is_localhost(tmp_path: Any) -> None:
    """CONFORMANCE 61/64: over a Unix socket the default ``:authority`` is ``localhost``."""
    directory = tmp_path if len(str(tmp_path)) < 80 else "/tmp"
    path = os.path.join(str(directory), f"p{uuid.uuid4().hex[:8]}.sock")
    peer = _UnixPeer(path, handler=echo_unary)
    try:
        async with peer, grpc_lite.insecure_channel(peer.target) as ch:
            authority, scheme = await _authority_and_scheme(ch, peer)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    assert authority == "localhost"
    assert scheme == "http"


async def test_tls_scheme_sni_alpn(tls_material: TLSMaterial) -> None:
    """CONFORMANCE 18/1: over TLS the client sends ``:scheme https``, ``:authority
    localhost:P``, SNI "localhost" and negotiates ALPN h2."""
    async with _TLSPeer(tls_material, handler=echo_unary) as peer:
        creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_material.ca_pem)
        async with grpc_lite.secure_channel(f"localhost:{peer.port}", creds) as ch:
            authority, scheme = await _authority_and_scheme(ch, peer)
            transport = peer.connection.transport
            assert transport is not None
            ssl_object = transport.get_extra_info("ssl_object")
            assert ssl_object is not None
            assert ssl_object.selected_alpn_protocol() == "h2"
    assert scheme == "https"
    assert authority == f"localhost:{peer.port}"
    assert peer.sni == ["localhost"]


async def test_tls_override_is_sent_as_sni(tls_material: TLSMaterial) -> None:
    """CONFORMANCE 18: the grpc.ssl_target_name_override name is verified *and* sent as SNI
    (dialing 127.0.0.1 with override "localhost")."""
    async with _TLSPeer(tls_material, handler=echo_unary) as peer:
        creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_material.ca_pem)
        options = [("grpc.ssl_target_name_override", "localhost")]
        async with grpc_lite.secure_channel(peer.target, creds, options) as ch:
            _, scheme = await _authority_and_scheme(ch, peer)
    assert scheme == "https"
    assert peer.sni == ["localhost"]


async def test_secure_channel_rejects_bad_credentials() -> None:
    """API.md: secure_channel with something that is neither ChannelCredentials nor an
    SSLContext raises ValueError at once."""
    with pytest.raises(ValueError):
        grpc_lite.secure_channel("localhost:1", object())  # type: ignore[arg-type]


async def test_tls_close_releases_socket(tls_interop_server: RunningServer) -> None:
    """CONFORMANCE 70 / API.md ``close()``: after ``await channel.close()`` on a TLS channel the
    connection's socket is really closed (within 1 s), even though grpcio's server does not
    answer the TLS close_notify; a socket left ESTABLISHED leaks past the event loop
    ("unclosed transport" ResourceWarning at garbage collection)."""
    assert tls_interop_server.tls is not None and tls_interop_server.port is not None
    port = tls_interop_server.port
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_interop_server.tls.ca_pem)
    ch = grpc_lite.secure_channel(f"localhost:{port}", creds)
    await _unary_ok(ch)
    assert established_connections_to(port) == 1
    await ch.close()
    assert ch.get_state() is grpc_lite.ChannelConnectivity.SHUTDOWN
    assert await wait_until(lambda: established_connections_to(port) == 0, 1.0), (
        "the TLS socket is still ESTABLISHED 1 s after close()"
    )


@pytest.mark.parametrize("secure", [False, True], ids=["plaintext", "tls"])
def test_socket_closed_when_event_loop_ends(
    grpc_server_factory: ServerFactory, tls_material: TLSMaterial, secure: bool
) -> None:
    """CONFORMANCE 70 / API.md ``close()``: the common program shape ``asyncio.run(main())``
    with ``async with grpc_lite.secure_channel(...)`` inside leaves no socket behind when
    the loop ends: nothing to the server is still ESTABLISHED after asyncio.run returns, and
    garbage collection finds no unclosed socket/transport (ResourceWarning)."""
    server = grpc_server_factory.interop(tls=tls_material if secure else None)
    assert server.port is not None
    port = server.port

    async def main() -> None:
        if secure:
            creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_material.ca_pem)
            ch = grpc_lite.secure_channel(f"localhost:{port}", creds)
        else:
            ch = grpc_lite.insecure_channel(f"127.0.0.1:{port}")
        async with ch:
            await _unary_ok(ch)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()  # whatever earlier tests left behind is not this test's business
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(main())
        still_established = established_connections_to(port)
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert still_established == 0, "a client socket is still open after asyncio.run()"
    assert not leaks, leaks

"""Security (issue 7, "Security"; CONFORMANCE 18): TLS verifies the server's certificate and
host name by default, failures say why, mutual TLS works, there is no plaintext fallback,
and credentials never leak into logs, trace events, snapshots or reprs.

The servers here are the scripted h2 peer behind an ``ssl.SSLContext`` (certificates from
trustme CAs made per test), a raw TCP listener that records every byte it receives, and
``grpc_lite.testing.Backend`` (plaintext). The grpcio-based TLS checks (wrong root or
override, mTLS against grpcio, SNI/ALPN) live in tests/e2e/channel/test_transports.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import h2.errors
import pytest
import trustme

import grpc_lite
from grpc_lite.testing import Backend, helloworld_pb2
from tests.e2e.reliability._util import SC, wait_until
from tests.h2peer import H2Peer, PeerStream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

METHOD = "/reliability.Secure/Echo"
STREAM_METHOD = "/reliability.Secure/Stream"
GREETER = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"]

# Small reconnect backoff so that several connection attempts happen within a test.
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 100),
]


# --------------------------------------------------------------------------- servers


class TLSPeer(H2Peer):
    """The scripted h2 peer behind TLS (ALPN h2) with a caller-made server context.

    ``peer_certs`` records the client certificate each accepted connection presented."""

    def __init__(self, context: ssl.SSLContext, **kw: Any) -> None:
        context.set_alpn_protocols(["h2"])
        self.context = context
        self.peer_certs: list[dict[str, Any] | None] = []
        super().__init__(ssl_context=context, **kw)

    def _make_protocol(self) -> Any:
        conn = super()._make_protocol()
        original = conn.connection_made

        def connection_made(transport: asyncio.BaseTransport) -> None:
            ssl_object = transport.get_extra_info("ssl_object")
            self.peer_certs.append(ssl_object.getpeercert() if ssl_object is not None else None)
            original(transport)

        conn.connection_made = connection_made  # type: ignore[method-assign]
        return conn


def server_context(
    ca: trustme.CA, *names: str, client_ca: trustme.CA | None = None
) -> ssl.SSLContext:
    """A server context with a certificate for ``names`` from ``ca``; with ``client_ca``,
    client certificates from that CA are required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.cert_pem.bytes().decode())
    return context


async def echo(stream: PeerStream) -> None:
    """Unary echo; for STREAM_METHOD, three copies of the request."""
    request = await stream.read_message()
    await stream.wait_end()
    await stream.send_headers()
    for _ in range(3 if stream.path == STREAM_METHOD else 1):
        await stream.send_message(request or b"")
    await stream.send_trailers(0)


class RawListener:
    """A TCP listener that records every byte each connection sends.

    ``mode="h2"``: it answers like a plaintext HTTP/2 server (an empty SETTINGS frame at
    once, then silence); ``"close"``: it closes each connection after the first bytes."""

    SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.received: list[bytearray] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> RawListener:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        buf = bytearray()
        self.received.append(buf)
        try:
            if self.mode == "h2":
                writer.write(self.SETTINGS)
            while chunk := await reader.read(65536):
                buf += chunk
                if self.mode == "close":
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


# --------------------------------------------------------------------------- helpers


async def failing_call(ch: grpc_lite.Channel, *, metadata: Any = None) -> grpc_lite.RpcError:
    """A fail-fast unary call (5 s deadline) that must fail well inside it (no hang)."""
    start = time.monotonic()
    with pytest.raises(grpc_lite.RpcError) as info:
        await ch.unary_unary(METHOD)(b"x", timeout=5.0, metadata=metadata)
    assert time.monotonic() - start < 2.0, "the failure took too long"
    return info.value


def subchannel_errors(ch: grpc_lite.Channel) -> str:
    return " | ".join(sc.last_error or "" for sc in ch.snapshot().subchannels)


# --------------------------------------------------------------------------- verification


@pytest.mark.parametrize("client", ["system-roots", "other-ca", "user-context"])
async def test_unknown_ca_fails_unavailable_saying_verify_failed(client: str) -> None:
    """CONFORMANCE 18: TLS verifies by default. A server certificate from a CA the client
    does not trust fails UNAVAILABLE with "certificate verify failed" in the status
    message (and in the subchannel's last_error in the snapshot), whether the client uses
    the system roots (``ssl_channel_credentials()``), another CA, or a default
    ``ssl.SSLContext`` of its own. Nothing reaches the server."""
    ca = trustme.CA()
    async with TLSPeer(server_context(ca, "localhost", "127.0.0.1"), handler=echo) as peer:
        credentials: Any
        if client == "system-roots":
            credentials = grpc_lite.ssl_channel_credentials()
        elif client == "other-ca":
            credentials = grpc_lite.ssl_channel_credentials(trustme.CA().cert_pem.bytes())
        else:
            credentials = ssl.create_default_context()
        async with grpc_lite.secure_channel(f"localhost:{peer.port}", credentials) as ch:
            error = await failing_call(ch)
            assert error.code() is SC.UNAVAILABLE, error
            assert "certificate verify failed" in (error.details() or ""), error.details()
            assert "certificate verify failed" in subchannel_errors(ch)
        assert peer.streams == []


@pytest.mark.parametrize(
    ("dial", "override", "name"),
    [
        ("localhost", None, "localhost"),
        ("127.0.0.1", None, "127.0.0.1"),
        ("localhost", "wrong.grpc-lite.test", "wrong.grpc-lite.test"),
    ],
)
async def test_wrong_host_name_fails_unavailable_naming_the_host(
    dial: str, override: str | None, name: str
) -> None:
    """CONFORMANCE 18: the certificate must match the host dialled (or the
    ``grpc.ssl_target_name_override``): a certificate from the trusted CA for another name
    fails UNAVAILABLE, and the message names the host that did not match. Nothing reaches
    the server."""
    ca = trustme.CA()
    names = ("other.grpc-lite.test",) if override is None else ("localhost", "127.0.0.1")
    async with TLSPeer(server_context(ca, *names), handler=echo) as peer:
        creds = grpc_lite.ssl_channel_credentials(ca.cert_pem.bytes())
        options = [("grpc.ssl_target_name_override", override)] if override else []
        async with grpc_lite.secure_channel(f"{dial}:{peer.port}", creds, options) as ch:
            error = await failing_call(ch)
        assert error.code() is SC.UNAVAILABLE, error
        details = error.details() or ""
        assert "certificate verify failed" in details, details
        assert f"'{name}'" in details, details
        assert peer.streams == []


async def test_right_ca_and_name_succeed() -> None:
    """The positive control for the two tests above: the trusted CA and a matching name."""
    ca = trustme.CA()
    async with TLSPeer(server_context(ca, "localhost", "127.0.0.1"), handler=echo) as peer:
        creds = grpc_lite.ssl_channel_credentials(ca.cert_pem.bytes())
        async with grpc_lite.secure_channel(f"localhost:{peer.port}", creds) as ch:
            assert await ch.unary_unary(METHOD)(b"ok", timeout=5) == b"ok"
        assert peer.streams[0].header(":scheme") == "https"


# --------------------------------------------------------------------------- mutual TLS


async def test_mtls_client_certificate_is_presented_and_required() -> None:
    """Mutual TLS against a server that requires a client certificate from its CA:
    with ``ssl_channel_credentials(root, private_key, certificate_chain)`` the call
    succeeds and the server saw the client's certificate; without a client certificate,
    or with one from another CA, the call fails UNAVAILABLE (well inside its deadline) and
    no request reaches the server."""
    ca = trustme.CA()
    client_cert = ca.issue_cert("client.grpc-lite.test")
    stranger = trustme.CA().issue_cert("client.grpc-lite.test")
    context = server_context(ca, "localhost", "127.0.0.1", client_ca=ca)
    async with TLSPeer(context, handler=echo) as peer:
        target = f"127.0.0.1:{peer.port}"
        good = grpc_lite.ssl_channel_credentials(
            ca.cert_pem.bytes(),
            private_key=client_cert.private_key_pem.bytes(),
            certificate_chain=client_cert.cert_chain_pems[0].bytes(),
        )
        async with grpc_lite.secure_channel(target, good) as ch:
            assert await ch.unary_unary(METHOD)(b"mtls", timeout=5) == b"mtls"
        assert len(peer.streams) == 1
        cert = peer.peer_certs[-1]
        assert cert is not None
        subject_alt = dict(cert.get("subjectAltName", ()))
        assert subject_alt.get("DNS") == "client.grpc-lite.test", cert

        no_cert = grpc_lite.ssl_channel_credentials(ca.cert_pem.bytes())
        wrong_cert = grpc_lite.ssl_channel_credentials(
            ca.cert_pem.bytes(),
            private_key=stranger.private_key_pem.bytes(),
            certificate_chain=stranger.cert_chain_pems[0].bytes(),
        )
        for creds in (no_cert, wrong_cert):
            async with grpc_lite.secure_channel(target, creds) as ch:
                error = await failing_call(ch)
            assert error.code() is SC.UNAVAILABLE, error
        assert len(peer.streams) == 1, "a request got through without a valid client cert"


# --------------------------------------------------------------------------- no plaintext


@pytest.mark.parametrize("mode", ["h2", "close"])
async def test_no_plaintext_fallback(mode: str) -> None:
    """No plaintext fallback: a TLS channel to a server that speaks plaintext HTTP/2 (it
    sends SETTINGS in the clear at once) or that closes the connection fails UNAVAILABLE
    with a TLS error, on every attempt. A raw listener records every byte: each
    connection the client made starts with a TLS handshake record (0x16 0x03), there were
    several (reconnect attempts are TLS too), and the HTTP/2 client preface, the request's
    path, its metadata and the gRPC content-type never appear in the clear."""
    async with RawListener(mode) as listener:
        creds = grpc_lite.ssl_channel_credentials(trustme.CA().cert_pem.bytes())
        metadata = [("authorization", "Bearer PLAINTEXT-CANARY")]
        async with grpc_lite.secure_channel(
            f"127.0.0.1:{listener.port}", creds, FAST_RECONNECT
        ) as ch:
            for _ in range(3):
                error = await failing_call(ch, metadata=metadata)
                assert error.code() is SC.UNAVAILABLE, error
                if mode == "h2":
                    assert "TLS" in (error.details() or ""), error.details()
                await asyncio.sleep(0.15)
            # A wait-for-ready call keeps the channel trying until its deadline.
            with pytest.raises(grpc_lite.RpcError) as info:
                await ch.unary_unary(METHOD)(
                    b"x", timeout=0.4, wait_for_ready=True, metadata=metadata
                )
            assert info.value.code() is SC.DEADLINE_EXCEEDED, info.value
        assert await wait_until(lambda: len(listener.received) >= 2, 1.0)
    attempts = [data for data in listener.received if data]
    assert len(attempts) >= 2, "the channel made a single attempt only"
    for data in attempts:
        assert data[:1] == b"\x16" and data[1:2] == b"\x03", bytes(data[:16])
        for plain in (b"PRI * HTTP/2.0", b"SM\r\n\r\n", METHOD.encode(), b"application/grpc"):
            assert plain not in data, f"{plain!r} was sent in the clear"
        assert b"PLAINTEXT-CANARY" not in data


async def test_tls_channel_to_plaintext_grpc_server() -> None:
    """The same against a real plaintext gRPC server (the test Backend): UNAVAILABLE with
    a TLS error, and no call ever reached the server's handlers."""
    async with Backend() as backend:
        creds = grpc_lite.ssl_channel_credentials(trustme.CA().cert_pem.bytes())
        async with grpc_lite.secure_channel(backend.address, creds, FAST_RECONNECT) as ch:
            stub = grpc_lite.Stub(ch, GREETER)
            for _ in range(2):
                with pytest.raises(grpc_lite.RpcError) as info:
                    await stub.SayHello(helloworld_pb2.HelloRequest(name="x"), timeout=2)
                assert info.value.code() is SC.UNAVAILABLE, info.value
                assert "TLS" in (info.value.details() or ""), info.value.details()
                await asyncio.sleep(0.15)
        assert backend.total_calls == 0
        assert backend.connections_accepted >= 2


# --------------------------------------------------------------------------- no leaks

TOKEN = "SECRET-TOKEN"
BINARY_SECRET = b"SECRET-BINARY-\x00\xff-VALUE"


class _Capture(logging.Handler):
    """Keeps every record, with its message, args and exception text rendered."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        parts = [record.name, str(record.msg), repr(record.args)]
        try:
            parts.append(record.getMessage())
        except Exception as exc:  # a broken format string is a finding of its own
            parts.append(f"<getMessage failed: {exc!r}>")
        if record.exc_info:
            parts.append(self._formatter.formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        parts.append(repr(record.__dict__))
        self.texts.append("\n".join(parts))


@pytest.fixture
def captured_logs() -> Iterator[_Capture]:
    """Every record of the ``grpc_lite`` and ``asyncio`` loggers at DEBUG and above."""
    handler = _Capture()
    loggers = [logging.getLogger(name) for name in ("grpc_lite", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def _pem_fragments(pem: bytes) -> list[str]:
    """The PEM itself and each of its base64 body lines (any one of them in a log is a leak)."""
    text = pem.decode()
    lines = [ln.strip() for ln in text.splitlines()]
    body = [ln for ln in lines if ln and not ln.startswith("-----") and len(ln) >= 16]
    return [text.strip(), *body]


def _temp_key_dirs() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("grpc_lite_")}


async def test_credentials_never_appear_in_logs_events_snapshots_or_reprs(
    captured_logs: _Capture,
) -> None:
    """Credentials never leak. With every ``grpc_lite`` (and ``asyncio``) log record
    captured at DEBUG, a TLS/mTLS workload runs with ``authorization: Bearer SECRET-TOKEN``
    and a binary secret in the metadata and a client private key in the credentials:
    successful unary and streaming calls, calls retried after UNAVAILABLE, a call ending
    DEADLINE_EXCEEDED, a cancelled call, a server GOAWAY and reconnection, repeated
    handshake failures (wrong CA; logged at WARNING), and close(). Then neither the token
    (nor the binary secret, raw or base64), nor the client private key PEM (nor any line
    of it), nor the CA PEM appears in any log record, any TraceEvent (every event, as it
    happened), ``json.dumps(snapshot().to_dict())`` before and after close, the reprs of
    the credentials, channels and calls, or the errors' details and debug strings. The
    private key is not left on disk either."""
    ca = trustme.CA()
    client_cert = ca.issue_cert("client.grpc-lite.test")
    key_pem = client_cert.private_key_pem.bytes()
    chain_pem = client_cert.cert_chain_pems[0].bytes()
    ca_pem = ca.cert_pem.bytes()
    secrets = [
        TOKEN,
        base64.b64encode(BINARY_SECRET).decode().rstrip("="),
        BINARY_SECRET.decode("latin-1"),
        repr(BINARY_SECRET)[2:-1],
        *_pem_fragments(key_pem),
        *_pem_fragments(ca_pem),
    ]
    metadata: list[tuple[str, str | bytes]] = [
        ("authorization", f"Bearer {TOKEN}"),
        ("x-secret-bin", BINARY_SECRET),
    ]
    config = {
        "methodConfig": [
            {
                "name": [{"service": "reliability.Secure"}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.05s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    attempts: dict[bytes, int] = {}

    async def handler(stream: PeerStream) -> None:
        request = await stream.read_message() or b""
        await stream.wait_end()
        if request.startswith(b"retry"):
            attempts[request] = attempts.get(request, 0) + 1
            if attempts[request] == 1:
                await stream.trailers_only(int(SC.UNAVAILABLE), "try again")
                return
        if request == b"hang":
            await asyncio.Event().wait()
        await echo_reply(stream, request)

    async def echo_reply(stream: PeerStream, request: bytes) -> None:
        await stream.send_headers()
        for _ in range(3 if stream.path == STREAM_METHOD else 1):
            await stream.send_message(request)
        await stream.send_trailers(0)

    dirs_before = _temp_key_dirs()
    texts: list[str] = []
    events: list[Any] = []
    context = server_context(ca, "localhost", "127.0.0.1", client_ca=ca)
    async with TLSPeer(context, handler=handler) as peer:
        creds = grpc_lite.ssl_channel_credentials(
            ca_pem, private_key=key_pem, certificate_chain=chain_pem
        )
        assert _temp_key_dirs() == dirs_before, "the private key was left in a temp dir"
        texts += [repr(creds), str(creds)]
        ch = grpc_lite.secure_channel(
            f"localhost:{peer.port}", creds, FAST_RECONNECT, service_config=config
        )
        remove = ch.add_trace_listener(events.append)
        try:
            unary = ch.unary_unary(METHOD)
            assert await unary(b"hello", timeout=5, metadata=metadata) == b"hello"
            call = ch.unary_stream(STREAM_METHOD)(b"s", timeout=5, metadata=metadata)
            assert [m async for m in call] == [b"s"] * 3
            texts.append(repr(call))
            for i in range(3):
                assert await unary(f"retry{i}".encode(), timeout=5, metadata=metadata)
            with pytest.raises(grpc_lite.RpcError) as info:
                await unary(b"hang", timeout=0.2, metadata=metadata)
            assert info.value.code() is SC.DEADLINE_EXCEEDED
            texts += [str(info.value), repr(info.value), info.value.debug_error_string()]
            cancelled = unary(b"hang", timeout=5, metadata=metadata)
            await asyncio.sleep(0.05)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            texts.append(repr(cancelled))
            peer.goaway(code=h2.errors.ErrorCodes.NO_ERROR)
            await asyncio.sleep(0.05)
            assert await unary(b"after-goaway", timeout=5, metadata=metadata)
            assert peer.connection_count >= 2
            texts += [repr(ch), str(ch), json.dumps(ch.snapshot().to_dict())]
        finally:
            await ch.close()
            remove()
        texts.append(json.dumps(ch.snapshot().to_dict()))
        texts += [f"{e.subject}: {e.description}" for e in ch.snapshot().events]

        # Handshake failures with the same key and token: the wrong CA (logged at WARNING
        # after repeated failures) and a server that rejects the client certificate.
        wrong_ca = grpc_lite.ssl_channel_credentials(
            trustme.CA().cert_pem.bytes(), private_key=key_pem, certificate_chain=chain_pem
        )
        bad = grpc_lite.secure_channel(f"127.0.0.1:{peer.port}", wrong_ca, FAST_RECONNECT)
        remove = bad.add_trace_listener(events.append)
        try:
            for _ in range(4):
                error = await failing_call(bad, metadata=metadata)
                assert error.code() is SC.UNAVAILABLE
                texts += [str(error), repr(error), error.debug_error_string()]
                await asyncio.sleep(0.12)
            texts += [repr(bad), json.dumps(bad.snapshot().to_dict())]
        finally:
            await bad.close()
            remove()
        texts.append(json.dumps(bad.snapshot().to_dict()))
    assert _temp_key_dirs() == dirs_before

    texts += [f"{e.subject}: {e.description}" for e in events]
    texts += captured_logs.texts
    assert captured_logs.records, "nothing was logged at DEBUG: the capture is not working"
    assert any(r.levelno >= logging.WARNING for r in captured_logs.records), (
        "the repeated handshake failures were not logged at WARNING"
    )
    assert any("->" in e.description for e in events), "no transition events were seen"
    for secret in secrets:
        for text in texts:
            assert secret not in text, f"secret {secret[:24]!r}... leaked into: {text[:400]}"

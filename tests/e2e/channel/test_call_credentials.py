"""Call credentials against real grpcio servers (API.md "Call credentials").

The server is grpcio's TestService behind a server interceptor that records the metadata of
every RPC it receives (any method, before the handler) and can demand a bearer token, so
"nothing was sent" is checked where it matters: on the server. Where grpcio's own client has
an observable answer (the plugin's ``service_url``/``method_name``, the error for call
credentials on an insecure channel, a failing plugin's status) the test asks grpc.aio the
same question against the same server and compares.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

import grpc_lite
from grpc_lite._proto import testing_pb2
from tests.servers.harness import TLSMaterial, short_unix_path
from tests.servers.interop import TestServiceServicer, add_test_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

SC = grpc_lite.StatusCode
SERVICE = "/grpc.testing.TestService"
UNARY = f"{SERVICE}/UnaryCall"
SERVER_STREAMING = f"{SERVICE}/StreamingOutputCall"
CLIENT_STREAMING = f"{SERVICE}/StreamingInputCall"
BIDI = f"{SERVICE}/FullDuplexCall"


# --------------------------------------------------------------------------- the peer


class MetadataLog(grpc.ServerInterceptor):  # type: ignore[misc]
    """Records ``(method, metadata)`` of every RPC that reaches the server; with
    ``required`` set, RPCs without ``authorization: <required>`` fail UNAUTHENTICATED."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[tuple[str, tuple[tuple[str, str | bytes], ...]]] = []
        self.required: str | None = None

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        metadata = tuple((m.key, m.value) for m in details.invocation_metadata)
        with self._lock:
            self._seen.append((details.method, metadata))
        if self.required is not None and ("authorization", self.required) not in metadata:

            def deny(request: Any, context: grpc.ServicerContext) -> Any:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")

            return grpc.unary_unary_rpc_method_handler(deny)
        return continuation(details)

    @property
    def seen(self) -> list[tuple[str, tuple[tuple[str, str | bytes], ...]]]:
        with self._lock:
            return list(self._seen)

    def authorizations(self) -> list[list[str | bytes]]:
        """Per RPC received: its ``authorization`` values, in order."""
        return [[v for k, v in md if k == "authorization"] for _, md in self.seen]

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


@dataclass
class Peer:
    log: MetadataLog
    port: int
    tls: TLSMaterial | None
    unix_path: str | None = None

    @property
    def target(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"localhost:{self.port}"

    def lite_credentials(self) -> grpc_lite.ChannelCredentials:
        assert self.tls is not None
        return grpc_lite.ssl_channel_credentials(self.tls.ca_pem)

    def grpcio_credentials(self) -> grpc.ChannelCredentials:
        assert self.tls is not None
        return grpc.ssl_channel_credentials(self.tls.ca_pem)


def _start_peer(tls: TLSMaterial | None, *, unix: bool = False) -> tuple[Peer, Callable[[], None]]:
    log = MetadataLog()
    executor = futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc-auth-srv")
    server = grpc.server(executor, interceptors=[log], options=[("grpc.so_reuseport", 0)])
    add_test_service(server, TestServiceServicer(), detect_request_compression=False)
    unix_path, directory = short_unix_path() if unix else (None, None)
    if unix_path is not None:
        server.add_insecure_port(f"unix:{unix_path}")
        port = 0
    elif tls is not None:
        port = server.add_secure_port("localhost:0", tls.server_credentials())
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    def stop() -> None:
        server.stop(None).wait()
        executor.shutdown(wait=False, cancel_futures=True)
        if directory is not None:
            import shutil

            shutil.rmtree(directory, ignore_errors=True)

    return Peer(log, port, tls, unix_path), stop


@pytest.fixture
def tls_peer(tls_material: TLSMaterial) -> Iterator[Peer]:
    peer, stop = _start_peer(tls_material)
    try:
        yield peer
    finally:
        stop()


@pytest.fixture
def plain_peer() -> Iterator[Peer]:
    peer, stop = _start_peer(None)
    try:
        yield peer
    finally:
        stop()


@pytest.fixture
def unix_peer() -> Iterator[Peer]:
    peer, stop = _start_peer(None, unix=True)
    try:
        yield peer
    finally:
        stop()


@pytest.fixture
async def tls_channel(tls_peer: Peer) -> AsyncIterator[grpc_lite.Channel]:
    async with grpc_lite.secure_channel(tls_peer.target, tls_peer.lite_credentials()) as ch:
        yield ch


def _simple() -> testing_pb2.SimpleRequest:
    return testing_pb2.SimpleRequest(response_size=4)


def _unary(channel: Any, path: str = UNARY) -> Any:
    return channel.unary_unary(
        path,
        request_serializer=testing_pb2.SimpleRequest.SerializeToString,
        response_deserializer=testing_pb2.SimpleResponse.FromString,
    )


def _failing_unary_request(code: int) -> testing_pb2.SimpleRequest:
    return testing_pb2.SimpleRequest(response_status=testing_pb2.EchoStatus(code=code))


async def _every_kind(channel: grpc_lite.Channel, **kwargs: Any) -> None:
    """One call of each kind, all OK."""
    await _unary(channel)(_simple(), **kwargs)
    streaming = channel.unary_stream(
        SERVER_STREAMING,
        request_serializer=testing_pb2.StreamingOutputCallRequest.SerializeToString,
        response_deserializer=testing_pb2.StreamingOutputCallResponse.FromString,
    )
    request = testing_pb2.StreamingOutputCallRequest(
        response_parameters=[testing_pb2.ResponseParameters(size=3)] * 2
    )
    assert len([r async for r in streaming(request, **kwargs)]) == 2
    client_streaming = channel.stream_unary(
        CLIENT_STREAMING,
        request_serializer=testing_pb2.StreamingInputCallRequest.SerializeToString,
        response_deserializer=testing_pb2.StreamingInputCallResponse.FromString,
    )
    parts = [testing_pb2.StreamingInputCallRequest(payload=testing_pb2.Payload(body=b"ab"))] * 2
    reply = await client_streaming(iter(parts), **kwargs)
    assert reply.aggregated_payload_size == 4
    bidi = channel.stream_stream(
        BIDI,
        request_serializer=testing_pb2.StreamingOutputCallRequest.SerializeToString,
        response_deserializer=testing_pb2.StreamingOutputCallResponse.FromString,
    )
    call = bidi(**kwargs)  # the write()/done_writing() form
    await call.write(request)
    await call.done_writing()
    assert len([r async for r in call]) == 2


# --------------------------------------------------------------------------- plugins


class RecordingPlugin:
    """A grpcio AuthMetadataPlugin: records (service_url, method_name, thread) per call."""

    def __init__(self, token: str = "plugin-token") -> None:
        self.token = token
        self.contexts: list[tuple[str, str]] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, context: Any, callback: Any) -> None:
        self.contexts.append((context.service_url, context.method_name))
        self.threads.append(threading.current_thread())
        callback((("authorization", f"Bearer {self.token}"),), None)


# --------------------------------------------------------------------------- tests


async def test_access_token_on_every_call_kind(tls_peer: Peer, tls_channel: Any) -> None:
    """Per-call ``credentials=`` reaches the server on all four call kinds (grpc.aio's
    multi-callables take it; grpc_lite dropped it before)."""
    tls_peer.log.required = "Bearer t0k3n"
    creds = grpc_lite.access_token_call_credentials("t0k3n")
    await _every_kind(tls_channel, credentials=creds)
    assert tls_peer.log.authorizations() == [["Bearer t0k3n"]] * 4
    # Without credentials the server refuses: the token really was the per-call one.
    with pytest.raises(grpc_lite.RpcError) as info:
        await _unary(tls_channel)(_simple())
    assert info.value.code() is SC.UNAUTHENTICATED


async def test_channel_credentials_then_call_credentials_in_order(tls_peer: Peer) -> None:
    """composite_channel_credentials' call credentials go first, then the call's own, each
    composite in its order: the same list grpcio's client sends to the same server."""
    plugin = RecordingPlugin("plugin")
    lite_channel_creds = grpc_lite.composite_channel_credentials(
        tls_peer.lite_credentials(), grpc_lite.access_token_call_credentials("CHAN")
    )
    lite_call_creds = grpc_lite.composite_call_credentials(
        grpc_lite.access_token_call_credentials("A"), grpc_lite.metadata_call_credentials(plugin)
    )
    async with grpc_lite.secure_channel(tls_peer.target, lite_channel_creds) as ch:
        await _unary(ch)(_simple(), credentials=lite_call_creds)
        await _every_kind(ch)  # the channel's alone on every kind
    ours = tls_peer.log.authorizations()
    tls_peer.log.clear()
    grpcio_channel_creds = grpc.composite_channel_credentials(
        tls_peer.grpcio_credentials(), grpc.access_token_call_credentials("CHAN")
    )
    grpcio_call_creds = grpc.composite_call_credentials(
        grpc.access_token_call_credentials("A"), grpc.metadata_call_credentials(plugin)
    )
    async with grpc.aio.secure_channel(tls_peer.target, grpcio_channel_creds) as gch:
        await _unary(gch)(_simple(), credentials=grpcio_call_creds)
    theirs = tls_peer.log.authorizations()
    assert ours[0] == theirs[0] == ["Bearer CHAN", "Bearer A", "Bearer plugin"]
    assert ours[1:] == [["Bearer CHAN"]] * 4


@pytest.mark.parametrize(
    ("target", "options"),
    [
        ("localhost:{port}", []),
        ("dns:///localhost:{port}", []),
        ("127.0.0.1:{port}", [("grpc.default_authority", "localhost:443")]),
        ("127.0.0.1:{port}", [("grpc.default_authority", "localhost:8443")]),
        ("ipv4:127.0.0.1:{port}", [("grpc.default_authority", "svc.example.test")]),
    ],
)
@pytest.mark.parametrize("path", [UNARY, "/Foo", "/a.b.C/D/E"])
async def test_service_url_and_method_name_match_grpcio(
    tls_peer: Peer, tls_material: TLSMaterial, target: str, options: list[Any], path: str
) -> None:
    """The plugin's AuthMetadataContext is what grpcio computes (C-core's
    MakeServiceUrlAndMethod): https://AUTHORITY/SERVICE with :443 dropped, the method
    after the last "/"; checked side by side with grpc.aio over TLS."""
    target = target.format(port=tls_peer.port)
    if "svc.example.test" in str(options):
        options = [*options, ("grpc.ssl_target_name_override", "localhost")]
    ours, theirs = RecordingPlugin(), RecordingPlugin()
    async with grpc_lite.secure_channel(target, tls_peer.lite_credentials(), options) as ch:
        try:
            await _unary(ch, path)(
                _simple(), timeout=5, credentials=grpc_lite.metadata_call_credentials(ours)
            )
        except grpc_lite.RpcError as exc:
            assert exc.code() is SC.UNIMPLEMENTED and path != UNARY
    async with grpc.aio.secure_channel(target, tls_peer.grpcio_credentials(), options) as gch:
        try:
            await _unary(gch, path)(
                _simple(), timeout=5, credentials=grpc.metadata_call_credentials(theirs)
            )
        except grpc.aio.AioRpcError as exc:
            assert exc.code() is grpc.StatusCode.UNIMPLEMENTED and path != UNARY
    assert ours.contexts == theirs.contexts
    assert len(ours.contexts) == 1


async def test_grpcio_plugin_runs_off_the_loop(tls_peer: Peer, tls_channel: Any) -> None:
    """A grpcio-style plugin runs on an executor thread: one that blocks for 0.5 s to
    "refresh a token" stalls neither the loop nor other calls on the same channel."""
    started = threading.Event()

    def blocking(context: Any, callback: Any) -> None:
        started.set()
        time.sleep(0.5)
        callback((("authorization", "Bearer slow"),), None)

    loop_thread = threading.current_thread()
    slow = asyncio.ensure_future(
        _unary(tls_channel)(_simple(), credentials=grpc_lite.metadata_call_credentials(blocking))
    )
    await asyncio.to_thread(started.wait, 5)
    t0 = time.monotonic()
    for _ in range(5):  # other calls go through while the plugin blocks its thread
        await _unary(tls_channel)(_simple())
    assert time.monotonic() - t0 < 0.4
    assert not slow.done()
    await slow
    assert tls_peer.log.authorizations()[-1] == ["Bearer slow"]
    plugin = RecordingPlugin()
    await _unary(tls_channel)(_simple(), credentials=grpc_lite.metadata_call_credentials(plugin))
    assert plugin.threads and plugin.threads[0] is not loop_thread


async def test_async_plugin_runs_on_the_channel_loop(tls_peer: Peer, tls_channel: Any) -> None:
    """``async def plugin(context)`` (grpc_lite only) is awaited on the channel's loop and
    gets the same context a grpcio plugin would."""
    seen: list[Any] = []
    counter = 0

    async def token_source(context: grpc_lite.AuthMetadataContext) -> list[tuple[str, str]]:
        nonlocal counter
        seen.append((asyncio.get_running_loop(), context))
        await asyncio.sleep(0)
        counter += 1
        return [("authorization", f"Bearer async-{counter}"), ("x-tenant", "t1")]

    creds = grpc_lite.metadata_call_credentials(token_source)
    await _unary(tls_channel)(_simple(), credentials=creds)
    await _unary(tls_channel)(_simple(), credentials=creds)
    loop = asyncio.get_running_loop()
    assert [s[0] for s in seen] == [loop, loop]
    assert seen[0][1] == (f"https://localhost:{tls_peer.port}{SERVICE}", "UnaryCall")
    assert tls_peer.log.authorizations() == [["Bearer async-1"], ["Bearer async-2"]]
    assert ("x-tenant", "t1") in tls_peer.log.seen[0][1]


@pytest.mark.parametrize("kind", ["unary_unary", "unary_stream", "stream_unary", "stream_stream"])
async def test_insecure_channel_refuses_call_credentials(plain_peer: Peer, kind: str) -> None:
    """grpc.aio raises UsageError("Call credentials are only valid on secure channels") as
    the call is made; so does grpc_lite: nothing reaches the server, and the channel goes on."""
    lite_creds = grpc_lite.access_token_call_credentials("t")
    grpcio_creds = grpc.access_token_call_credentials("t")
    target = f"127.0.0.1:{plain_peer.port}"
    async with grpc.aio.insecure_channel(target) as gch:
        with pytest.raises(grpc.aio.UsageError) as theirs:
            getattr(gch, kind)(UNARY)(None, credentials=grpcio_creds)
    async with grpc_lite.insecure_channel(target) as ch:
        with pytest.raises(grpc_lite.UsageError) as ours:
            getattr(ch, kind)(UNARY)(None, credentials=lite_creds)
        assert "secure" in str(ours.value)
        assert str(ours.value) == str(theirs.value)
        await asyncio.sleep(0.05)
        assert plain_peer.log.seen == []
        await _every_kind(ch)
    assert len(plain_peer.log.seen) == 4


async def test_insecure_channel_with_interceptor_refuses_call_credentials(
    plain_peer: Peer,
) -> None:
    """Through an interceptor the check runs when the innermost continuation starts the
    call; the error reaches the caller and nothing is sent."""

    class PassThrough(grpc_lite.UnaryUnaryClientInterceptor):
        async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            return await continuation(details, request)

    async with grpc_lite.insecure_channel(
        f"127.0.0.1:{plain_peer.port}", interceptors=[PassThrough()]
    ) as ch:
        with pytest.raises(grpc_lite.UsageError, match="secure"):
            await _unary(ch)(_simple(), credentials=grpc_lite.access_token_call_credentials("t"))
        await _unary(ch)(_simple())
    assert len(plain_peer.log.seen) == 1


async def test_interceptor_sees_and_may_replace_credentials(tls_peer: Peer) -> None:
    """ClientCallDetails.credentials is the call's ``credentials=`` (grpc.aio); what the
    innermost continuation gets is what is sent."""
    given: list[Any] = []

    class Swap(grpc_lite.UnaryUnaryClientInterceptor):
        async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            given.append(details.credentials)
            new = details.replace(credentials=grpc_lite.access_token_call_credentials("swapped"))
            return await continuation(new, request)

    original = grpc_lite.access_token_call_credentials("original")
    async with grpc_lite.secure_channel(
        tls_peer.target, tls_peer.lite_credentials(), interceptors=[Swap()]
    ) as ch:
        await _unary(ch)(_simple(), credentials=original)
    assert given == [original]
    assert tls_peer.log.authorizations() == [["Bearer swapped"]]


def _error_callback(context: Any, callback: Any) -> None:
    callback(None, ValueError("token refresh broke"))


def _raising(context: Any, callback: Any) -> None:
    raise ValueError("plugin raised boom")


async def _async_raising(context: Any) -> Any:
    await asyncio.sleep(0)
    raise PermissionError("async source refused")


def _bad_key(context: Any, callback: Any) -> None:
    callback((("Authorization", "Bearer x"),), None)


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (_error_callback, "token refresh broke"),
        (_raising, "plugin raised boom"),
        (_async_raising, "async source refused"),
        (_bad_key, "'Authorization'"),
    ],
)
async def test_failing_plugin_unavailable_and_nothing_sent(
    tls_peer: Peer, tls_channel: Any, plugin: Any, message: str
) -> None:
    """A plugin that reports an error, raises, or returns invalid metadata: UNAVAILABLE
    with grpcio's "Getting metadata from plugin failed with error: ..." details; no RPC
    reaches the server; the channel goes on."""
    creds = grpc_lite.metadata_call_credentials(plugin)
    for kind_call in (
        lambda: _unary(tls_channel)(_simple(), credentials=creds),
        lambda: _collect(
            tls_channel.stream_stream(BIDI)(iter([b""]), credentials=creds),
        ),
    ):
        with pytest.raises(grpc_lite.RpcError) as info:
            await kind_call()
        assert info.value.code() is SC.UNAVAILABLE
        details = info.value.details() or ""
        assert details.startswith("Getting metadata from plugin failed with error: ")
        assert message in details
    assert tls_peer.log.seen == []
    await _unary(tls_channel)(_simple())
    assert len(tls_peer.log.seen) == 1


async def _collect(call: Any) -> list[Any]:
    return [item async for item in call]


@pytest.mark.parametrize("plugin", [_error_callback, _raising])
async def test_failing_plugin_details_match_grpcio(tls_peer: Peer, plugin: Any) -> None:
    """The same plugin failing under grpc.aio gives the same code and details."""
    async with grpc.aio.secure_channel(tls_peer.target, tls_peer.grpcio_credentials()) as gch:
        with pytest.raises(grpc.aio.AioRpcError) as theirs:
            await _unary(gch)(_simple(), credentials=grpc.metadata_call_credentials(plugin))
    async with grpc_lite.secure_channel(tls_peer.target, tls_peer.lite_credentials()) as ch:
        with pytest.raises(grpc_lite.RpcError) as ours:
            await _unary(ch)(_simple(), credentials=grpc_lite.metadata_call_credentials(plugin))
    assert theirs.value.code() is grpc.StatusCode.UNAVAILABLE
    assert ours.value.code() is SC.UNAVAILABLE
    assert ours.value.details() == theirs.value.details()


async def test_slow_async_plugin_deadline_cancels_it(tls_peer: Peer, tls_channel: Any) -> None:
    """A token source slower than the deadline: DEADLINE_EXCEEDED at the deadline, and the
    coroutine is cancelled (not left running)."""
    cancelled = asyncio.Event()

    async def stuck(context: Any) -> Any:
        try:
            await asyncio.Event().wait()  # never set: only the deadline ends it
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return ()

    t0 = time.monotonic()
    with pytest.raises(grpc_lite.RpcError) as info:
        await _unary(tls_channel)(
            _simple(), timeout=0.3, credentials=grpc_lite.metadata_call_credentials(stuck)
        )
    elapsed = time.monotonic() - t0
    assert info.value.code() is SC.DEADLINE_EXCEEDED
    assert 0.25 <= elapsed < 1.0
    await asyncio.wait_for(cancelled.wait(), 1)
    assert tls_peer.log.seen == []


async def test_slow_grpcio_plugin_deadline(tls_peer: Peer, tls_channel: Any) -> None:
    """A blocking grpcio plugin slower than the deadline: DEADLINE_EXCEEDED at the deadline
    (grpc.aio's answer too); its late callback is ignored and nothing is sent."""
    done = threading.Event()

    def slow(context: Any, callback: Any) -> None:
        time.sleep(0.8)
        callback((("authorization", "Bearer late"),), None)
        done.set()

    t0 = time.monotonic()
    with pytest.raises(grpc_lite.RpcError) as info:
        await _unary(tls_channel)(
            _simple(), timeout=0.3, credentials=grpc_lite.metadata_call_credentials(slow)
        )
    assert info.value.code() is SC.DEADLINE_EXCEEDED
    assert 0.25 <= time.monotonic() - t0 < 0.7
    assert await asyncio.to_thread(done.wait, 5)
    await asyncio.sleep(0.05)
    assert tls_peer.log.seen == []
    await _unary(tls_channel)(_simple())


_RETRY_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": "grpc.testing.TestService", "method": "UnaryCall"}],
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
_HEDGING_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": "grpc.testing.TestService", "method": "UnaryCall"}],
            "hedgingPolicy": {
                "maxAttempts": 3,
                "hedgingDelay": "0.05s",
                "nonFatalStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}


@pytest.mark.parametrize("config", [_RETRY_CONFIG, _HEDGING_CONFIG], ids=["retry", "hedging"])
async def test_every_attempt_asks_the_plugin(tls_peer: Peer, config: dict[str, Any]) -> None:
    """C-core runs call credentials on each attempt (its client auth filter sits on the
    subchannel call): every retry and hedge gets fresh metadata from the plugin."""
    counter = 0

    async def counting(context: Any) -> Any:
        nonlocal counter
        counter += 1
        return [("authorization", f"Bearer attempt-{counter}")]

    creds = grpc_lite.composite_channel_credentials(
        tls_peer.lite_credentials(), grpc_lite.metadata_call_credentials(counting)
    )
    async with grpc_lite.secure_channel(tls_peer.target, creds, service_config=config) as ch:
        with pytest.raises(grpc_lite.RpcError) as info:
            await _unary(ch)(_failing_unary_request(14), timeout=5)
    assert info.value.code() is SC.UNAVAILABLE
    assert counter == 3
    assert sorted(tls_peer.log.authorizations()) == [
        ["Bearer attempt-1"],
        ["Bearer attempt-2"],
        ["Bearer attempt-3"],
    ]


async def test_plugin_failure_is_a_retryable_attempt_failure(tls_peer: Peer) -> None:
    """A plugin failure is an attempt that failed UNAVAILABLE before being sent: with a
    retry policy for UNAVAILABLE the call is retried, and a later attempt can succeed."""
    attempts = 0

    async def flaky(context: Any) -> Any:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("token endpoint hiccup")
        return [("authorization", "Bearer ok")]

    creds = grpc_lite.composite_channel_credentials(
        tls_peer.lite_credentials(), grpc_lite.metadata_call_credentials(flaky)
    )
    async with grpc_lite.secure_channel(tls_peer.target, creds, service_config=_RETRY_CONFIG) as ch:
        await _unary(ch)(_simple(), timeout=5)
    assert attempts == 2
    assert tls_peer.log.authorizations() == [["Bearer ok"]]


async def test_google_auth_metadata_plugin(tls_peer: Peer) -> None:
    """google-auth's own grpc plugin, as Google's client libraries build it
    (composite_channel_credentials(ssl, metadata_call_credentials(AuthMetadataPlugin))),
    with a static token that is valid, so its Request is never used: no network."""
    from google.auth.transport.grpc import AuthMetadataPlugin
    from google.auth.transport.requests import Request
    from google.oauth2.credentials import Credentials

    credentials = Credentials(token="ya29.static-test-token")
    plugin = AuthMetadataPlugin(credentials, Request())
    tls_peer.log.required = "Bearer ya29.static-test-token"
    creds = grpc_lite.composite_channel_credentials(
        tls_peer.lite_credentials(), grpc_lite.metadata_call_credentials(plugin)
    )
    async with grpc_lite.secure_channel(tls_peer.target, creds) as ch:
        await _every_kind(ch)
        # And as per-call credentials on a TLS channel without any.
    async with grpc_lite.secure_channel(tls_peer.target, tls_peer.lite_credentials()) as ch:
        await _unary(ch)(_simple(), credentials=grpc_lite.metadata_call_credentials(plugin))
    assert tls_peer.log.authorizations() == [["Bearer ya29.static-test-token"]] * 5


async def test_local_credentials_tcp(plain_peer: Peer) -> None:
    """local_channel_credentials(): plaintext to a loopback address, call credentials
    allowed; the plugin's context is grpcio's (C-core's local connector has no URL scheme:
    "://host:port/service")."""
    ours, theirs = RecordingPlugin("local"), RecordingPlugin("local")
    target = f"127.0.0.1:{plain_peer.port}"
    lite = grpc_lite.composite_channel_credentials(
        grpc_lite.local_channel_credentials(), grpc_lite.metadata_call_credentials(ours)
    )
    async with grpc_lite.secure_channel(target, lite) as ch:
        await _every_kind(ch, credentials=grpc_lite.access_token_call_credentials("call"))
    assert plain_peer.log.authorizations() == [["Bearer local", "Bearer call"]] * 4
    gcreds = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.metadata_call_credentials(theirs)
    )
    async with grpc.aio.secure_channel(target, gcreds) as gch:
        await _unary(gch)(_simple())
    assert ours.contexts[0] == theirs.contexts[0] == (f"://{target}{SERVICE}", "UnaryCall")


async def test_local_credentials_uds(unix_peer: Peer) -> None:
    """LocalConnectionType.UDS: a Unix socket, call credentials allowed."""
    creds = grpc_lite.local_channel_credentials(grpc_lite.LocalConnectionType.UDS)
    async with grpc_lite.secure_channel(unix_peer.target, creds) as ch:
        await _unary(ch)(_simple(), credentials=grpc_lite.access_token_call_credentials("uds"))
    assert unix_peer.log.authorizations() == [["Bearer uds"]]


@pytest.mark.parametrize("mismatch", ["tcp-creds-unix-target", "uds-creds-tcp-target"])
async def test_local_credentials_wrong_kind_of_peer(
    plain_peer: Peer, unix_peer: Peer, mismatch: str
) -> None:
    """As grpcio: LOCAL_TCP refuses a Unix socket, UDS refuses TCP; the call fails
    UNAVAILABLE naming why, and no connection is made (the server sees nothing)."""
    if mismatch == "tcp-creds-unix-target":
        creds, target, peer = grpc_lite.local_channel_credentials(), unix_peer.target, unix_peer
        expected = "loopback"
    else:
        creds = grpc_lite.local_channel_credentials(grpc_lite.LocalConnectionType.UDS)
        target, peer, expected = f"127.0.0.1:{plain_peer.port}", plain_peer, "Unix socket"
    async with grpc_lite.secure_channel(target, creds) as ch:
        with pytest.raises(grpc_lite.RpcError) as info:
            await _unary(ch)(_simple(), timeout=5)
        assert info.value.code() is SC.UNAVAILABLE
        assert expected in (info.value.details() or "")
        assert ch.snapshot().subchannels[0].connect_attempts >= 1
    assert peer.log.seen == []


async def test_local_credentials_check_the_proxy(plain_peer: Peer) -> None:
    """Through an HTTP CONNECT proxy the peer is the proxy, and C-core checks the endpoint:
    a proxy that is not on loopback is refused before any connection is made (here an
    unroutable documentation address, so nothing could leave the machine anyway)."""
    options = [("grpc.http_proxy", "http://[2001:db8::1]:3128")]
    target = f"127.0.0.1:{plain_peer.port}"
    async with grpc_lite.secure_channel(
        target, grpc_lite.local_channel_credentials(), options
    ) as ch:
        with pytest.raises(grpc_lite.RpcError) as info:
            await _unary(ch)(_simple(), timeout=5)
    assert info.value.code() is SC.UNAVAILABLE
    assert "not [2001:db8::1]:3128" in (info.value.details() or "")
    assert plain_peer.log.seen == []


async def test_credentials_never_printed(tls_peer: Peer, caplog: pytest.LogCaptureFixture) -> None:
    """Tokens appear in no log line (DEBUG included), trace event, snapshot, repr or
    error, whether the calls succeed or fail."""
    secret = "s3cr3t-T0KEN-never-printed"
    caplog.set_level(logging.DEBUG)
    events: list[str] = []
    reprs: list[str] = []

    class Look(grpc_lite.UnaryUnaryClientInterceptor):
        async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            reprs.append(repr(details))
            call = await continuation(details, request)
            reprs.append(repr(call))
            return call

    async def source(context: Any) -> Any:
        return [("authorization", f"Bearer {secret}"), ("x-api-key-bin", secret.encode())]

    def failing(context: Any, callback: Any) -> None:
        callback((("authorization", f"Bearer {secret}\n"),), None)  # invalid value

    creds = grpc_lite.composite_channel_credentials(
        tls_peer.lite_credentials(),
        grpc_lite.access_token_call_credentials(secret),
        grpc_lite.metadata_call_credentials(source),
    )
    async with grpc_lite.secure_channel(
        tls_peer.target, creds, [("grpc.enable_retries", 1)], interceptors=[Look()]
    ) as ch:
        ch.add_trace_listener(lambda e: events.append(repr(e)))
        await _unary(ch)(_simple(), credentials=grpc_lite.access_token_call_credentials(secret))
        with pytest.raises(grpc_lite.RpcError) as info:
            await _unary(ch)(_simple(), credentials=grpc_lite.metadata_call_credentials(failing))
        with pytest.raises(grpc_lite.RpcError) as info2:
            await _unary(ch)(_failing_unary_request(7), credentials=creds.call_credentials)
        reprs += [repr(ch), repr(creds), repr(creds.call_credentials), str(info.value)]
        reprs += [repr(info.value), info.value.debug_error_string(), str(info2.value)]
        reprs.append(json.dumps(ch.snapshot().to_dict()))
    assert len(tls_peer.log.seen) == 2
    text = "\n".join(reprs + events + [r.getMessage() for r in caplog.records] + [caplog.text])
    assert secret not in text
    assert "authorization" in str(info.value)  # the error names the key, not the value

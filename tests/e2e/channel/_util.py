"""Helpers shared by the integration tests (not collected: no ``test_`` prefix)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import grpc

import grpc_lite
from grpc_lite._proto import testing_pb2
from tests.protos.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc
from tests.servers.harness import RunningServer

SC = grpc_lite.StatusCode

ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_INITIAL_VALUE = "test_initial_metadata_value"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"
ECHO_TRAILING_VALUE = b"\xab\xab\xab"


@dataclass
class Kit:
    """A TestService stub of one flavour plus the message classes that go with it.

    ``lite``: ``grpc_lite.Stub`` over grpc_lite's private-pool descriptor (messages from
    ``grpc_lite._proto.testing_pb2``). ``generated``: grpcio-tools' ``TestServiceStub`` handed
    a grpc_lite channel (messages from the default-pool ``tests.protos`` modules).
    """

    kind: str
    stub: Any
    unimplemented: Any
    m: Any  # namespace: Empty, SimpleRequest, Payload, ...

    def payload(self, size: int) -> Any:
        return self.m.Payload(type=self.m.COMPRESSABLE, body=b"\0" * size)

    def simple(self, response_size: int = 0, payload_size: int = 0, **kw: Any) -> Any:
        return self.m.SimpleRequest(
            response_size=response_size, payload=self.payload(payload_size), **kw
        )

    def streaming_output(self, sizes: list[int], payload_size: int = 0, **kw: Any) -> Any:
        return self.m.StreamingOutputCallRequest(
            response_parameters=[self.m.ResponseParameters(size=s) for s in sizes],
            payload=self.payload(payload_size),
            **kw,
        )

    def streaming_input(self, size: int, **kw: Any) -> Any:
        return self.m.StreamingInputCallRequest(payload=self.payload(size), **kw)


_LITE_MESSAGES = SimpleNamespace(
    **{
        name: getattr(testing_pb2, name)
        for name in (
            "Empty",
            "SimpleRequest",
            "SimpleResponse",
            "Payload",
            "ResponseParameters",
            "StreamingInputCallRequest",
            "StreamingInputCallResponse",
            "StreamingOutputCallRequest",
            "StreamingOutputCallResponse",
            "EchoStatus",
            "BoolValue",
            "COMPRESSABLE",
        )
    }
)
_GENERATED_MESSAGES = SimpleNamespace(
    Empty=empty_pb2.Empty,
    **{
        name: getattr(messages_pb2, name)
        for name in (
            "SimpleRequest",
            "SimpleResponse",
            "Payload",
            "ResponseParameters",
            "StreamingInputCallRequest",
            "StreamingInputCallResponse",
            "StreamingOutputCallRequest",
            "StreamingOutputCallResponse",
            "EchoStatus",
            "BoolValue",
            "COMPRESSABLE",
        )
    },
)

KINDS = ("lite", "generated")


def make_kit(channel: grpc_lite.Channel, kind: str) -> Kit:
    if kind == "lite":
        services = testing_pb2.DESCRIPTOR.services_by_name
        return Kit(
            kind,
            grpc_lite.Stub(channel, services["TestService"]),
            grpc_lite.Stub(channel, services["UnimplementedService"]),
            _LITE_MESSAGES,
        )
    assert kind == "generated"
    return Kit(
        kind,
        test_pb2_grpc.TestServiceStub(channel),
        test_pb2_grpc.UnimplementedServiceStub(channel),
        _GENERATED_MESSAGES,
    )


@dataclass
class ServerCallWatch:
    """Hooks the interop servicer so a test can see, on the server side, when an RPC ends
    and whether grpcio considered it cancelled by the client."""

    ended: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    contexts: list[grpc.ServicerContext] = field(default_factory=list)
    cancelled_flags: list[bool] = field(default_factory=list)

    async def wait_ended(self, seconds: float = 3.0) -> bool:
        return await asyncio.to_thread(self.ended.wait, seconds)

    async def wait_started(self, seconds: float = 3.0) -> bool:
        return await asyncio.to_thread(self.started.wait, seconds)


def watch_server_calls(server: RunningServer) -> ServerCallWatch:
    """Wrap the servicer's per-call hook (``_begin``) to register a termination callback on
    each grpcio context. ``cancelled_flags`` holds, per ended RPC, whether grpcio's RPC state
    says the *client* cancelled it (grpcio sets that on RST_STREAM from the client)."""
    watch = ServerCallWatch()
    servicer = server.servicer
    original = servicer._begin

    def _begin(method: str, context: grpc.ServicerContext) -> None:
        original(method, context)

        def on_end() -> None:
            watch.cancelled_flags.append(_client_cancelled(context))
            watch.ended.set()

        # Register before telling the test the RPC started, so a cancel the test sends next
        # cannot beat the registration; add_callback is False if the RPC already ended.
        if not context.add_callback(on_end):
            on_end()
        watch.contexts.append(context)
        watch.started.set()

    servicer._begin = _begin
    return watch


def _client_cancelled(context: grpc.ServicerContext) -> bool:
    # grpcio's sync server marks the RPC state's ``client`` as cancelled when the client
    # resets the stream (grpc/_server.py ``_CANCELLED``); is_active() is False then too.
    state = getattr(context, "_state", None)
    client = getattr(state, "client", None)
    return client == "cancelled" or bool(getattr(state, "cancelled", False))


def established_connections_to(port: int) -> int:
    """How many ESTABLISHED TCP sockets on this machine have remote port ``port`` (Linux
    /proc/net/tcp{,6}); on loopback these are the client ends of connections to a server
    listening on ``port``."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


async def wait_until(predicate: Callable[[], bool], seconds: float = 2.0) -> bool:
    """Poll ``predicate`` every 20 ms for up to ``seconds``; its final value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not predicate():
        if loop.time() >= end:
            return predicate()
        await asyncio.sleep(0.02)
    return True

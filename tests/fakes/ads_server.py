# ruff: noqa: ASYNC109  (timeouts on the waits keep every test bounded)
"""A scripted SotW ADS server on grpcio.aio, for the XdsClient's tests.

The test drives it: every DiscoveryRequest is recorded (with the stream it came on) and can
be awaited; responses are pushed by the test (`send`), so what is dropped, delayed or
corrupted is simply what the test sends or does not send (`send_raw` sends bytes that need
not parse at all); `end_stream` ends the current
stream with a status. Messages are the private descriptor pool's classes
(grpc_lite.xds._protos); the server's serializers are plain bytes-level calls, so nothing is
registered in protobuf's default pool. grpcio is a test dependency only.

Resources are ``google.protobuf.Any`` messages; `any_resource` makes one whose value is the
UTF-8 text ``"<name>=<payload>"`` (the fake resource types in the tests decode that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio

from grpc_lite.xds._protos import message_class

__all__ = ["FakeAdsServer", "RecordedRequest", "any_resource"]

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"

DiscoveryRequest: Any = message_class("envoy.service.discovery.v3.DiscoveryRequest")
DiscoveryResponse: Any = message_class("envoy.service.discovery.v3.DiscoveryResponse")
AnyMessage: Any = message_class("google.protobuf.Any")


def any_resource(type_url: str, name: str, payload: str = "ok") -> Any:
    """A resource the fake types decode as (name, payload)."""
    return AnyMessage(type_url=type_url, value=f"{name}={payload}".encode())


@dataclass
class RecordedRequest:
    stream: int  # 1 for the first stream the server saw
    request: Any

    @property
    def type_url(self) -> str:
        return str(self.request.type_url)

    @property
    def names(self) -> list[str]:
        return list(self.request.resource_names)

    @property
    def version(self) -> str:
        return str(self.request.version_info)

    @property
    def nonce(self) -> str:
        return str(self.request.response_nonce)

    @property
    def has_node(self) -> bool:
        return bool(self.request.HasField("node"))

    @property
    def error(self) -> str | None:
        if not self.request.HasField("error_detail"):
            return None
        return str(self.request.error_detail.message)


_END = object()


@dataclass
class _Stream:
    index: int
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeAdsServer:
    """Start with `await FakeAdsServer().start()`; stop with `await server.stop()`."""

    def __init__(self) -> None:
        self._server: aio.Server | None = None
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self.streams: list[_Stream] = []
        self._changed = asyncio.Event()
        self._nonce = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def streams_opened(self) -> int:
        return len(self.streams)

    @property
    def current(self) -> _Stream:
        return self.streams[-1]

    async def start(self, port: int = 0) -> FakeAdsServer:
        server = aio.server()
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                    self._handle,
                    request_deserializer=DiscoveryRequest.FromString,
                    response_serializer=lambda m: (
                        m if isinstance(m, bytes) else m.SerializeToString()
                    ),
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        self.port = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        self._server = server
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)
            self._server = None

    async def _handle(self, requests: Any, context: Any) -> Any:
        stream = _Stream(len(self.streams) + 1)
        self.streams.append(stream)
        self._changed.set()

        async def read() -> None:
            try:
                async for request in requests:
                    self.requests.append(RecordedRequest(stream.index, request))
                    self._changed.set()
            finally:
                stream.closed.set()
                self._changed.set()

        reader = asyncio.ensure_future(read())
        try:
            while True:
                item = await stream.outbox.get()
                if item is _END:
                    return
                if isinstance(item, tuple):
                    await context.abort(item[0], item[1])
                yield item
        finally:
            reader.cancel()
            stream.closed.set()
            self._changed.set()

    # --- test controls ---------------------------------------------------------------------

    def send(
        self,
        type_url: str,
        resources: list[Any],
        version: str,
        *,
        nonce: str | None = None,
    ) -> str:
        """Push a DiscoveryResponse on the current stream; returns its nonce."""
        if nonce is None:
            self._nonce += 1
            nonce = f"n{self._nonce}"
        response = DiscoveryResponse(
            type_url=type_url, version_info=version, nonce=nonce, resources=resources
        )
        self.current.outbox.put_nowait(response)
        return nonce

    def send_raw(self, data: bytes) -> None:
        """Push `data` as a response message as is (e.g. bytes that are no DiscoveryResponse)."""
        self.current.outbox.put_nowait(data)

    def end_stream(self, code: grpc.StatusCode | None = None, details: str = "") -> None:
        """End the current stream: OK when `code` is None, else that status."""
        self.current.outbox.put_nowait(_END if code is None else (code, details))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def next_request(
        self, after: int, type_url: str | None = None, timeout: float = 5.0
    ) -> RecordedRequest:
        """The first request recorded at index >= `after` (of `type_url` if given)."""

        def match() -> RecordedRequest | None:
            for r in self.requests[after:]:
                if type_url is None or r.type_url == type_url:
                    return r
            return None

        await self.wait_for(lambda: match() is not None, timeout)
        found = match()
        assert found is not None
        return found

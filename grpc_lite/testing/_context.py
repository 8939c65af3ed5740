"""Method handlers and the per-call context the test server hands them.

Who may call what: everything here runs on the server's event loop. A handler gets
``(request, context)`` (unary request) or ``(request_iterator, context)`` (streaming request),
as in ``grpc.aio``; the context mirrors ``grpc.aio.ServicerContext`` where grpc.aio has a name.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol, cast

from grpc_lite import EOF

from ..metadata import Metadata, MetadataType
from ..status import StatusCode

if TYPE_CHECKING:
    from ._backend import Backend  # only for the type of ServicerContext.backend

__all__ = [
    "AbortError",
    "MethodHandler",
    "RpcKind",
    "ServicerContext",
    "stream_stream",
    "stream_unary",
    "unary_stream",
    "unary_unary",
]


class RpcKind(enum.Enum):
    """The four gRPC method shapes."""

    UNARY_UNARY = (False, False)
    UNARY_STREAM = (False, True)
    STREAM_UNARY = (True, False)
    STREAM_STREAM = (True, True)

    @property
    def request_streaming(self) -> bool:
        return self.value[0]

    @property
    def response_streaming(self) -> bool:
        return self.value[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodHandler:
    """One registered method: its shape, the handler, and the (de)serializers.

    ``handler(request_or_iterator, context)`` may be a coroutine function (unary response),
    an async generator function (streaming response), or a plain function returning a
    response or an iterable. A streaming-response coroutine may instead ``await
    context.write(msg)`` and return None. With no deserializer the handler gets ``bytes``;
    with no serializer it must produce ``bytes``.
    """

    kind: RpcKind
    handler: Callable[..., Any]
    request_deserializer: Callable[[bytes], Any] | None = None
    response_serializer: Callable[[Any], bytes] | None = None


def _make(kind: RpcKind) -> Callable[..., MethodHandler]:
    def factory(
        handler: Callable[..., Any],
        request_deserializer: Callable[[bytes], Any] | None = None,
        response_serializer: Callable[[Any], bytes] | None = None,
    ) -> MethodHandler:
        return MethodHandler(
            kind=kind,
            handler=handler,
            request_deserializer=request_deserializer,
            response_serializer=response_serializer,
        )

    factory.__name__ = kind.name.lower()
    factory.__doc__ = f"A :class:`MethodHandler` of kind {kind.name}."
    return factory


unary_unary = _make(RpcKind.UNARY_UNARY)
unary_stream = _make(RpcKind.UNARY_STREAM)
stream_unary = _make(RpcKind.STREAM_UNARY)
stream_stream = _make(RpcKind.STREAM_STREAM)


class AbortError(Exception):
    """Raised by :meth:`ServicerContext.abort` (or by a handler) to end the RPC with a status.

    The server sends ``code``, ``details`` and ``trailing_metadata``; a handler may raise it
    directly instead of calling ``abort``.
    """

    def __init__(
        self,
        code: StatusCode,
        details: str = "",
        trailing_metadata: MetadataType | Metadata = (),
    ) -> None:
        super().__init__(f"{StatusCode(code).name}: {details}")
        self.code = StatusCode(code)
        self.details = details
        self.trailing_metadata = tuple(trailing_metadata)


class _EndOfStream:
    """The server's own end-of-request-stream marker (what a sink's ``read_request``
    returns at the end); :meth:`ServicerContext.read` hands handlers ``grpc_lite.EOF``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<end of request stream>"


END_OF_STREAM: Final = _EndOfStream()


class _CallSink(Protocol):
    """What a context needs from its stream (implemented by ``_h2server.ServerStream``).

    ``read_request`` returns the next request, or :data:`END_OF_STREAM` after the last."""

    async def send_initial_metadata(self, metadata: MetadataType | Metadata) -> None: ...

    async def write_response(self, message: Any) -> None: ...

    async def read_request(self) -> Any: ...

    def time_remaining(self) -> float | None: ...


class ServicerContext:
    """The per-RPC context (``grpc.aio.ServicerContext`` names where they exist).

    Created by the server for each call; handlers use it from the server's loop only.
    """

    def __init__(
        self,
        *,
        backend: object,
        method: str,
        invocation_metadata: Metadata,
        peer: str,
        sink: _CallSink,
        accept_encodings: frozenset[str],
    ) -> None:
        self._backend = backend
        self._method = method
        self._metadata = invocation_metadata
        self._peer = peer
        self._sink = sink
        self._accept_encodings = accept_encodings
        self._trailing: list[tuple[str, str | bytes]] = []
        self._code: StatusCode | None = None
        self._details: str | None = None
        self._cancelled = False
        self._done = False
        self._callbacks: list[Callable[[ServicerContext], object]] = []
        #: response encoding ("gzip" / "deflate") or None
        self.response_encoding: str | None = None

    # -- what the call is -------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The :class:`~grpc_lite.testing.Backend` serving this call."""
        # The server connection knows its host only as a ServerHost; a Backend is the one
        # ServerHost that creates contexts.
        return cast("Backend", self._backend)

    @property
    def method(self) -> str:
        """The full method path, ``/package.Service/Method``."""
        return self._method

    def invocation_metadata(self) -> Metadata:
        """The client's metadata (``-bin`` values decoded to bytes)."""
        return self._metadata

    def peer(self) -> str:
        """The client's address in gRPC form: ``ipv4:127.0.0.1:PORT``, ``ipv6:[::1]:PORT``,
        ``unix:PATH``."""
        return self._peer

    def time_remaining(self) -> float | None:
        """Seconds left before the client's ``grpc-timeout`` expires; None without one."""
        return self._sink.time_remaining()

    # -- streaming helpers ------------------------------------------------------------

    async def read(self) -> Any:
        """The next request of a streaming-request call, or ``grpc_lite.EOF`` at the end."""
        request = await self._sink.read_request()
        return EOF if request is END_OF_STREAM else request

    async def write(self, message: Any) -> None:
        """Send one response message (streaming-response handlers)."""
        await self._sink.write_response(message)

    # -- status and metadata ----------------------------------------------------------

    async def send_initial_metadata(self, metadata: MetadataType | Metadata) -> None:
        """Send response headers now with ``metadata``; at most once, before any message."""
        await self._sink.send_initial_metadata(metadata)

    def set_trailing_metadata(self, metadata: MetadataType | Metadata) -> None:
        """Metadata sent with the status (replaces what was set before)."""
        self._trailing = list(metadata)

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return tuple(self._trailing)

    def set_code(self, code: StatusCode) -> None:
        """The status to end with once the handler returns (default OK)."""
        self._code = StatusCode(code)

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> StatusCode | None:
        return self._code

    def details(self) -> str | None:
        return self._details

    async def abort(
        self,
        code: StatusCode,
        details: str = "",
        trailing_metadata: MetadataType | Metadata = (),
    ) -> NoReturn:
        """End the RPC with ``code``/``details`` (raises :class:`AbortError`; do not catch it).

        ``trailing_metadata`` replaces what :meth:`set_trailing_metadata` set, if given.
        """
        if code == StatusCode.OK:
            raise ValueError("abort() needs a non-OK status code")
        raise AbortError(code, details, trailing_metadata or self._trailing)

    def set_compression(self, compression: Any) -> None:
        """Compress response messages: ``grpc_lite.Compression.Gzip`` / ``.Deflate`` (or the
        names ``"gzip"`` / ``"deflate"``); ``NoCompression`` or None turns it off. Ignored
        when the client did not list the encoding in ``grpc-accept-encoding``."""
        name = _encoding_name(compression)
        if name is not None and name not in self._accept_encodings:
            name = None
        self.response_encoding = name

    # -- cancellation -----------------------------------------------------------------

    def cancelled(self) -> bool:
        """True once the client cancelled the call (RST_STREAM), its deadline passed, or
        the connection went away."""
        return self._cancelled

    def done(self) -> bool:
        """True once the RPC has finished, one way or another."""
        return self._done

    def is_active(self) -> bool:
        return not self._done and not self._cancelled

    def add_done_callback(self, callback: Callable[[ServicerContext], object]) -> None:
        """``callback(context)`` when the RPC finishes (at once if it already has)."""
        if self._done:
            asyncio.get_running_loop().call_soon(callback, self)
        else:
            self._callbacks.append(callback)

    # -- for the server ---------------------------------------------------------------

    def _finish(self, *, cancelled: bool) -> None:
        if self._done:
            return
        if cancelled:
            self._cancelled = True
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        loop = asyncio.get_running_loop()
        for cb in callbacks:
            loop.call_soon(cb, self)


def _encoding_name(compression: Any) -> str | None:
    if compression is None:
        return None
    if isinstance(compression, str):
        name = compression.lower()
        return None if name in ("identity", "none", "") else name
    value = int(compression)  # grpc_lite.Compression / grpc.Compression: 0 none, 1 deflate, 2 gzip
    return {0: None, 1: "deflate", 2: "gzip"}.get(value)

"""Client interceptors with grpc.aio's shape (L5).

An interceptor is an object with one of ``intercept_unary_unary``,
``intercept_unary_stream``, ``intercept_stream_unary`` or
``intercept_stream_stream``; it receives ``(continuation, client_call_details,
request_or_iterator)`` and returns what ``continuation`` returned (a call), or, for
unary-response kinds, a response value.  Interceptors run in the order given,
the first one outermost, as in grpc.aio.  Calls on a channel without interceptors
never touch this module.
"""

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, replace
from typing import Any

from ._call import EOF, Call
from .metadata import Metadata, MetadataType
from .status import RpcError, StatusCode


@dataclass(frozen=True, slots=True)
class ClientCallDetails:
    """What an interceptor may inspect and change (grpc.aio.ClientCallDetails)."""

    method: str
    timeout: float | None
    metadata: MetadataType | Metadata | None
    credentials: Any
    wait_for_ready: bool | None

    def replace(self, **changes: Any) -> "ClientCallDetails":
        return replace(self, **changes)


class ClientInterceptor(ABC):  # noqa: B024 - a marker base, as in grpc.aio
    """Base of the four interceptor kinds."""


class UnaryUnaryClientInterceptor(ClientInterceptor):
    @abstractmethod
    async def intercept_unary_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request: Any,
    ) -> Any: ...


class UnaryStreamClientInterceptor(ClientInterceptor):
    @abstractmethod
    async def intercept_unary_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request: Any,
    ) -> Any: ...


class StreamUnaryClientInterceptor(ClientInterceptor):
    @abstractmethod
    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: Any,
    ) -> Any: ...


class StreamStreamClientInterceptor(ClientInterceptor):
    @abstractmethod
    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: Any,
    ) -> Any: ...


_HOOKS = {
    "unary_unary": "intercept_unary_unary",
    "unary_stream": "intercept_unary_stream",
    "stream_unary": "intercept_stream_unary",
    "stream_stream": "intercept_stream_stream",
}


def validate(interceptors: Any) -> tuple[Any, ...]:
    items = tuple(interceptors or ())
    for item in items:
        if not any(callable(getattr(item, hook, None)) for hook in _HOOKS.values()):
            raise ValueError(
                f"interceptor {item!r} has none of {', '.join(sorted(_HOOKS.values()))}"
            )
    return items


class InterceptedCall:
    """A call whose start goes through interceptors; it forwards grpc.aio's Call API
    to the call the innermost continuation made (or answers for an interceptor that
    returned a plain response).

    Who may call: coroutines on the channel's loop.
    """

    def __init__(
        self,
        kind: str,
        interceptors: tuple[Any, ...],
        details: ClientCallDetails,
        request: Any,
        invoke: Callable[[ClientCallDetails, Any], Call],
    ) -> None:
        self._kind = kind
        self._inner: Call | None = None
        self._value: Any = None
        self._has_value = False
        self._requests: asyncio.Queue[Any] | None = None
        self._done_writing = False
        if request is None and kind in ("stream_unary", "stream_stream"):
            # write()/done_writing() API: feed the call through a queue iterator.
            self._requests = asyncio.Queue()
            request = self._iterate_queue()
        hook = _HOOKS[kind]
        chain = [i for i in interceptors if callable(getattr(i, hook, None))]

        async def run(index: int, call_details: ClientCallDetails, req: Any) -> Any:
            if index == len(chain):
                call = invoke(call_details, req)
                self._inner = call
                return call

            async def continuation(next_details: ClientCallDetails, next_req: Any) -> Any:
                return await run(index + 1, next_details, next_req)

            return await getattr(chain[index], hook)(continuation, call_details, req)

        self._task = asyncio.get_running_loop().create_task(run(0, details, request))

    async def _iterate_queue(self) -> AsyncIterator[Any]:
        assert self._requests is not None
        while (item := await self._requests.get()) is not EOF:
            yield item

    async def _outcome(self) -> Any:
        result = await asyncio.shield(self._task)
        if isinstance(result, Call):
            self._inner = result
        elif not self._has_value:
            self._value, self._has_value = result, True
        return result

    async def _call(self) -> Call:
        result = await self._outcome()
        if isinstance(result, Call):
            return result
        if self._inner is not None:
            return self._inner
        raise RpcError(StatusCode.INTERNAL, "interceptor returned a response, not a call")

    # -------------------------------------------------------------- unary responses

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()

    async def _result(self) -> Any:
        result = await self._outcome()
        if isinstance(result, Call):
            return await result  # type: ignore[misc]
        return result

    # -------------------------------------------------------------- streams

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        result = await self._outcome()
        if isinstance(result, Call):
            async for item in result:  # type: ignore[attr-defined]
                yield item
        else:
            async for item in result:
                yield item

    async def read(self) -> Any:
        call = await self._call()
        return await call.read()  # type: ignore[attr-defined]

    async def write(self, request: Any) -> None:
        if self._requests is None:
            raise RuntimeError("write() needs a call started without a request iterator")
        if self._done_writing:
            from .status import UsageError

            raise UsageError("write() after done_writing()")
        await self._requests.put(request)

    async def done_writing(self) -> None:
        if self._requests is not None and not self._done_writing:
            self._done_writing = True
            await self._requests.put(EOF)

    # -------------------------------------------------------------- Call API

    def cancel(self) -> bool:
        if self._inner is not None:
            return self._inner.cancel()
        return self._task.cancel()

    def cancelled(self) -> bool:
        if self._inner is not None:
            return self._inner.cancelled()
        return self._task.cancelled()

    def done(self) -> bool:
        if self._inner is not None:
            return self._inner.done()
        return self._task.done()

    def time_remaining(self) -> float | None:
        return self._inner.time_remaining() if self._inner is not None else None

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        def forward(_: Any) -> None:
            if self._inner is not None:
                self._inner.add_done_callback(lambda _c: callback(self))
            else:
                callback(self)

        self._task.add_done_callback(forward)

    async def initial_metadata(self) -> Metadata:
        return await (await self._call()).initial_metadata()

    async def trailing_metadata(self) -> Metadata:
        return await (await self._call()).trailing_metadata()

    async def code(self) -> StatusCode:
        try:
            result = await self._outcome()
        except RpcError as exc:
            return exc.code()
        if isinstance(result, Call):
            return await result.code()
        return StatusCode.OK

    async def details(self) -> str:
        try:
            result = await self._outcome()
        except RpcError as exc:
            return exc.details() or ""
        if isinstance(result, Call):
            return await result.details()
        return ""

    async def wait_for_connection(self) -> None:
        await (await self._call()).wait_for_connection()

"""Client interceptors with grpc.aio's shape (API.md: ``interceptors=``)."""

from typing import Any

import pytest

import grpc_lite
from grpc_lite.testing import Backend, helloworld_pb2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

REQ = helloworld_pb2.HelloRequest.SerializeToString
REP = helloworld_pb2.HelloReply.FromString


class Recorder(grpc_lite.UnaryUnaryClientInterceptor, grpc_lite.UnaryStreamClientInterceptor):
    """Adds metadata and records what it saw."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        self.log.append(f"{self.name}:{client_call_details.method}")
        metadata = [*(client_call_details.metadata or []), ("x-by", self.name)]
        call = await continuation(client_call_details.replace(metadata=metadata), request)
        return call

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        self.log.append(f"{self.name}:stream")
        return await continuation(client_call_details, request)


class Answering(grpc_lite.UnaryUnaryClientInterceptor):
    """Answers from a cache without calling the server."""

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return helloworld_pb2.HelloReply(message="cached")


class Counting(grpc_lite.StreamUnaryClientInterceptor):
    def __init__(self) -> None:
        self.calls = 0

    async def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        self.calls += 1
        return await continuation(client_call_details, request_iterator)


async def test_interceptors_run_in_order_and_change_metadata() -> None:
    """grpc.aio order: the first interceptor is outermost; metadata changes reach the server."""
    log: list[str] = []
    seen: list[Any] = []
    async with Backend() as backend:

        async def echo(request: Any, context: Any) -> Any:
            seen.append(context.invocation_metadata().get_all("x-by"))
            return helloworld_pb2.HelloReply(message="ok")

        backend.add_unary_unary(
            "/pkg.Svc/Echo",
            echo,
            helloworld_pb2.HelloRequest.FromString,
            helloworld_pb2.HelloReply.SerializeToString,
        )
        async with grpc_lite.insecure_channel(
            backend.address, interceptors=[Recorder("a", log), Recorder("b", log)]
        ) as ch:
            call = ch.unary_unary("/pkg.Svc/Echo", REQ, REP)(helloworld_pb2.HelloRequest())
            reply = await call
            assert reply.message == "ok"
            assert await call.code() is grpc_lite.StatusCode.OK
            stream = ch.unary_stream("/helloworld.Greeter/SayHelloStreamReply", REQ, REP)
            replies = [r.message async for r in stream(helloworld_pb2.HelloRequest(name="z"))]
            assert len(replies) == 3
    assert log == ["a:/pkg.Svc/Echo", "b:/pkg.Svc/Echo", "a:stream", "b:stream"]
    assert seen == [["a", "b"]]


async def test_interceptor_may_answer_without_a_call() -> None:
    """An interceptor returning a response value: awaiting the call gives it, status OK."""
    async with grpc_lite.insecure_channel("127.0.0.1:1", interceptors=[Answering()]) as ch:
        call = ch.unary_unary("/helloworld.Greeter/SayHello", REQ, REP)(
            helloworld_pb2.HelloRequest()
        )
        assert (await call).message == "cached"
        assert await call.code() is grpc_lite.StatusCode.OK


async def test_errors_pass_through_interceptors() -> None:
    """A failing RPC raises RpcError through the interceptor chain."""
    log: list[str] = []
    async with Backend() as backend:
        backend.fail_next(1, grpc_lite.StatusCode.NOT_FOUND, "nope")
        async with grpc_lite.insecure_channel(
            backend.address, interceptors=[Recorder("a", log)]
        ) as ch:
            call = ch.unary_unary("/helloworld.Greeter/SayHello", REQ, REP)(
                helloworld_pb2.HelloRequest()
            )
            with pytest.raises(grpc_lite.RpcError) as info:
                await call
            assert info.value.code() is grpc_lite.StatusCode.NOT_FOUND
            assert await call.code() is grpc_lite.StatusCode.NOT_FOUND


async def test_stream_unary_interceptor_with_write_api() -> None:
    """write()/done_writing() work on an intercepted client-streaming call."""
    counting = Counting()
    async with Backend() as backend:

        async def collect(requests: Any, context: Any) -> Any:
            names = [r.name async for r in requests]
            return helloworld_pb2.HelloReply(message=",".join(names))

        backend.add_stream_unary(
            "/pkg.Svc/Collect",
            collect,
            helloworld_pb2.HelloRequest.FromString,
            helloworld_pb2.HelloReply.SerializeToString,
        )
        async with grpc_lite.insecure_channel(backend.address, interceptors=[counting]) as ch:
            call = ch.stream_unary("/pkg.Svc/Collect", REQ, REP)()
            await call.write(helloworld_pb2.HelloRequest(name="x"))
            await call.write(helloworld_pb2.HelloRequest(name="y"))
            await call.done_writing()
            assert (await call).message == "x,y"
    assert counting.calls == 1


def test_bad_interceptor_is_rejected() -> None:
    """An object with no intercept_* method: ValueError at channel creation."""
    with pytest.raises(ValueError, match="interceptor"):
        grpc_lite.insecure_channel("127.0.0.1:1", interceptors=[object()])

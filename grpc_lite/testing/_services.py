"""The built-in services of :class:`~grpc_lite.testing.Backend`.

- ``helloworld.Greeter``: ``SayHello`` answers ``"Hello NAME from BACKEND_ID"``;
  ``SayHelloStreamReply`` sends three such replies suffixed ``#0``..``#2``.
- ``grpc.health.v1.Health``: ``Check`` (NOT_FOUND for an unknown service), ``Watch``
  (the current status, then every change; SERVICE_UNKNOWN for an unknown service, as
  grpc/grpc doc/health-checking.md says)
  and ``List``, backed by :meth:`Backend.set_health`.
- ``grpc.testing.TestService`` (interop server, doc/interop-test-descriptions.md):
  everything but ``UnimplementedCall``. Echoes ``x-grpc-test-echo-initial`` and
  ``x-grpc-test-echo-trailing-bin``, honours ``response_size``, ``response_status``,
  ``response_compressed``, ``fill_server_id`` and ``interval_us``. ``expect_compressed`` is
  not checked.

Messages come from grpc_lite's private descriptor pool (``grpc_lite._proto``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from google.protobuf import descriptor_pb2

from .._proto import health_pb2, helloworld_pb2, reflection_v1_pb2, testing_pb2
from ..status import StatusCode
from ._context import ServicerContext

if TYPE_CHECKING:
    from ._backend import Backend

GREETER = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"]
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
TEST_SERVICE = testing_pb2.DESCRIPTOR.services_by_name["TestService"]
REFLECTION = reflection_v1_pb2.DESCRIPTOR.services_by_name["ServerReflection"]

STREAM_REPLIES = 3
ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"

_SERVICE_UNKNOWN = 3


class _Greeter:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def _greeting(self, name: str) -> str:
        return f"Hello {name} from {self._backend.backend_id}"

    async def SayHello(
        self, request: helloworld_pb2.HelloRequest, context: ServicerContext
    ) -> helloworld_pb2.HelloReply:
        return helloworld_pb2.HelloReply(message=self._greeting(request.name))

    async def SayHelloStreamReply(
        self, request: helloworld_pb2.HelloRequest, context: ServicerContext
    ) -> AsyncIterator[helloworld_pb2.HelloReply]:
        for i in range(STREAM_REPLIES):
            yield helloworld_pb2.HelloReply(message=f"{self._greeting(request.name)} #{i}")


class _Health:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        value = self._backend._health_value(request.service)
        if value is None:
            await context.abort(StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=value)  # type: ignore[arg-type]

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: ServicerContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        backend = self._backend
        service = request.service
        queue = backend._watch_health(service)
        try:
            value = backend._health_value(service)
            last = _SERVICE_UNKNOWN if value is None else value
            yield health_pb2.HealthCheckResponse(status=last)  # type: ignore[arg-type]
            while True:
                value = await queue.get()
                if value != last:
                    last = value
                    yield health_pb2.HealthCheckResponse(status=value)  # type: ignore[arg-type]
        finally:
            backend._unwatch_health(service, queue)

    async def List(
        self, request: health_pb2.HealthListRequest, context: ServicerContext
    ) -> health_pb2.HealthListResponse:
        response = health_pb2.HealthListResponse()
        for service, value in self._backend._health.items():
            response.statuses[service].status = value  # type: ignore[assignment]
        return response


def _payload(size: int) -> testing_pb2.Payload:
    return testing_pb2.Payload(type=testing_pb2.COMPRESSABLE, body=b"\0" * size)


class _TestService:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    @staticmethod
    async def _echo_metadata(context: ServicerContext) -> None:
        initial = []
        for key, value in context.invocation_metadata():
            if key == ECHO_INITIAL_KEY:
                initial.append((key, value))
            elif key == ECHO_TRAILING_KEY:
                context.set_trailing_metadata([(key, value)])
        if initial:
            await context.send_initial_metadata(initial)

    @staticmethod
    async def _maybe_abort(status: testing_pb2.EchoStatus, context: ServicerContext) -> None:
        if status.code != 0:
            try:
                code = StatusCode(status.code)
            except ValueError:
                code = StatusCode.UNKNOWN
            await context.abort(code, status.message)

    async def _responses(
        self, request: testing_pb2.StreamingOutputCallRequest, context: ServicerContext
    ) -> AsyncIterator[testing_pb2.StreamingOutputCallResponse]:
        for params in request.response_parameters:
            if params.interval_us > 0:
                await asyncio.sleep(params.interval_us / 1e6)
            response = testing_pb2.StreamingOutputCallResponse(payload=_payload(params.size))
            if params.fill_peer_socket_address.value:
                peer = context.peer()
                response.peer_socket_address = peer.split(":", 1)[1] if ":" in peer else peer
            yield response

    async def EmptyCall(self, request: testing_pb2.Empty, context: ServicerContext) -> Any:
        await self._echo_metadata(context)
        return testing_pb2.Empty()

    async def UnaryCall(
        self, request: testing_pb2.SimpleRequest, context: ServicerContext
    ) -> testing_pb2.SimpleResponse:
        if request.response_compressed.value:
            context.set_compression("gzip")
        await self._echo_metadata(context)
        await self._maybe_abort(request.response_status, context)
        response = testing_pb2.SimpleResponse(payload=_payload(request.response_size))
        if request.fill_server_id:
            response.server_id = self._backend.backend_id
            response.hostname = socket.gethostname()
        if request.fill_grpclb_route_type:
            response.grpclb_route_type = testing_pb2.GRPCLB_ROUTE_TYPE_BACKEND
        return response

    async def CacheableUnaryCall(
        self, request: testing_pb2.SimpleRequest, context: ServicerContext
    ) -> testing_pb2.SimpleResponse:
        return await self.UnaryCall(request, context)

    async def StreamingOutputCall(
        self, request: testing_pb2.StreamingOutputCallRequest, context: ServicerContext
    ) -> AsyncIterator[testing_pb2.StreamingOutputCallResponse]:
        if any(p.compressed.value for p in request.response_parameters):
            context.set_compression("gzip")
        await self._echo_metadata(context)
        await self._maybe_abort(request.response_status, context)
        async for response in self._responses(request, context):
            yield response

    async def StreamingInputCall(
        self,
        requests: AsyncIterator[testing_pb2.StreamingInputCallRequest],
        context: ServicerContext,
    ) -> testing_pb2.StreamingInputCallResponse:
        await self._echo_metadata(context)
        total = 0
        async for request in requests:
            total += len(request.payload.body)
        return testing_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    async def FullDuplexCall(
        self,
        requests: AsyncIterator[testing_pb2.StreamingOutputCallRequest],
        context: ServicerContext,
    ) -> AsyncIterator[testing_pb2.StreamingOutputCallResponse]:
        await self._echo_metadata(context)
        async for request in requests:
            await self._maybe_abort(request.response_status, context)
            async for response in self._responses(request, context):
                yield response

    async def HalfDuplexCall(
        self,
        requests: AsyncIterator[testing_pb2.StreamingOutputCallRequest],
        context: ServicerContext,
    ) -> AsyncIterator[testing_pb2.StreamingOutputCallResponse]:
        await self._echo_metadata(context)
        buffered = [request async for request in requests]
        for request in buffered:
            await self._maybe_abort(request.response_status, context)
            async for response in self._responses(request, context):
                yield response


class _Reflection:
    """grpc.reflection.v1 ServerReflection over the services the backend serves."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def _files_for(self, file: Any) -> list[bytes]:
        """``file`` and everything it imports, each once, dependencies first."""
        out: list[bytes] = []
        seen: set[str] = set()

        def add(fd: Any) -> None:
            if fd.name in seen:
                return
            seen.add(fd.name)
            for dep in fd.dependencies:
                add(dep)
            proto = descriptor_pb2.FileDescriptorProto()
            fd.CopyToProto(proto)
            out.append(proto.SerializeToString())

        add(file)
        return out

    def _file_for_symbol(self, symbol: str) -> Any:
        files = self._backend.service_files
        for service, file in files.items():
            if symbol == service or symbol.startswith(service + "."):
                return file
        for file in files.values():  # a message type defined in a served file
            package = file.package + "." if file.package else ""
            if symbol.startswith(package) and symbol[len(package) :] in file.message_types_by_name:
                return file
        return None

    def _answer(
        self, request: reflection_v1_pb2.ServerReflectionRequest
    ) -> reflection_v1_pb2.ServerReflectionResponse:
        r = reflection_v1_pb2
        response = r.ServerReflectionResponse(valid_host=request.host, original_request=request)
        kind = request.WhichOneof("message_request")
        files = self._backend.service_files
        if kind == "list_services":
            names = sorted(files) if files else []
            response.list_services_response.service.extend(
                r.ServiceResponse(name=name) for name in names
            )
            return response
        file = None
        if kind == "file_containing_symbol":
            file = self._file_for_symbol(request.file_containing_symbol)
        elif kind == "file_by_filename":
            wanted = request.file_by_filename
            for candidate in files.values():
                stack = [candidate]
                while stack and file is None:
                    fd = stack.pop()
                    if fd.name == wanted:
                        file = fd
                    stack.extend(fd.dependencies)
                if file is not None:
                    break
        if file is None:
            response.error_response.error_code = int(StatusCode.NOT_FOUND)
            response.error_response.error_message = f"not found: {kind}"
            return response
        response.file_descriptor_response.file_descriptor_proto.extend(self._files_for(file))
        return response

    async def ServerReflectionInfo(
        self,
        requests: AsyncIterator[reflection_v1_pb2.ServerReflectionRequest],
        context: ServicerContext,
    ) -> AsyncIterator[reflection_v1_pb2.ServerReflectionResponse]:
        async for request in requests:
            yield self._answer(request)


def add_reflection(backend: Backend) -> None:
    backend.add_service(REFLECTION, _Reflection(backend))


def add_greeter(backend: Backend) -> None:
    backend.add_service(GREETER, _Greeter(backend))


def add_health(backend: Backend) -> None:
    backend.add_service(HEALTH, _Health(backend))


def add_test_service(backend: Backend) -> None:
    # UnimplementedCall has no handler: the interop client expects UNIMPLEMENTED.
    backend.add_service(TEST_SERVICE, _TestService(backend))

"""grpc.testing.TestService on grpcio, following the interop server behaviour.

See grpc's doc/interop-test-descriptions.md ("Server" section) and CONFORMANCE section S.
``UnimplementedCall`` is deliberately not registered (item 177), nor is
``grpc.testing.UnimplementedService`` (item 178).

Request compression (``expect_compressed``, item 179): grpcio's Python API never shows
whether a request message was compressed. With ``detect_request_compression=True`` the server
runs with ``grpc.per_message_decompression=0`` so C-core hands the handler the raw (maybe
compressed) bytes, and this module sniffs the gzip / zlib header, decompresses, and checks
``expect_compressed`` (INVALID_ARGUMENT on mismatch, like the C++ server). Health and
reflection on such a server cannot read compressed requests, so it is off by default, and
``expect_compressed`` is then ignored (as grpc-go's and grpcio's own interop servers do).
"""

from __future__ import annotations

import socket
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from tests.protos.grpc.testing import empty_pb2, messages_pb2, test_pb2
from tests.servers.harness import CallRecorder, RunningServer, TLSMaterial, start_server

SERVICE = "grpc.testing.TestService"
ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"

_STATUS_BY_CODE = {code.value[0]: code for code in grpc.StatusCode}

assert test_pb2.DESCRIPTOR.services_by_name["TestService"]  # registers it for reflection


def _decode(message_cls: Any, detect: bool) -> Callable[[bytes], tuple[Any, bool | None]]:
    """A request deserializer returning ``(message, compressed)``; ``compressed`` is None
    when the server cannot tell (detection off)."""

    def deserialize(data: bytes) -> tuple[Any, bool | None]:
        if not detect:
            return message_cls.FromString(data), None
        # Field tags 0x1f (field 3, wire type 7) and 0x78 (field 15) never start these
        # requests, so a gzip or zlib header means the client compressed the message.
        if data[:2] == b"\x1f\x8b":
            return message_cls.FromString(zlib.decompress(data, 16 + zlib.MAX_WBITS)), True
        if data[:1] == b"\x78":
            return message_cls.FromString(zlib.decompress(data)), True
        return message_cls.FromString(data), False

    return deserialize


def _payload(size: int) -> messages_pb2.Payload:
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\0" * size)


def _peer_address(context: grpc.ServicerContext) -> str:
    peer: str = context.peer()
    for prefix in ("ipv4:", "ipv6:"):
        if peer.startswith(prefix):
            return peer[len(prefix) :]
    return peer


class TestServiceServicer:
    """Handlers for grpc.testing.TestService. Runs on grpcio's worker threads."""

    __test__ = False  # not a pytest class

    def __init__(self, *, server_id: str = "", compression: grpc.Compression | None = None) -> None:
        self.recorder = CallRecorder()
        self.server_id = server_id
        self._server_compresses = compression not in (None, grpc.Compression.NoCompression)

    # -- helpers ---------------------------------------------------------------------

    def _begin(self, method: str, context: grpc.ServicerContext) -> None:
        self.recorder.record(f"/{SERVICE}/{method}", context)

    @staticmethod
    def _check_compressed(
        message: Any, compressed: bool | None, context: grpc.ServicerContext
    ) -> None:
        """INVALID_ARGUMENT when expect_compressed is set and the request disagrees."""
        if compressed is None or not message.HasField("expect_compressed"):
            return  # cannot tell (see the module docstring), or nothing expected
        if message.expect_compressed.value and not compressed:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected a compressed request")
        if not message.expect_compressed.value and compressed:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected an uncompressed request")

    @staticmethod
    def _echo_metadata(context: grpc.ServicerContext) -> None:
        """Echo the interop keys; call before the first response (sends initial metadata)."""
        initial = []
        for item in context.invocation_metadata():
            if item.key == ECHO_INITIAL_KEY:
                initial.append((item.key, item.value))
            elif item.key == ECHO_TRAILING_KEY:
                context.set_trailing_metadata(((item.key, item.value),))
        if initial:
            context.send_initial_metadata(tuple(initial))

    @staticmethod
    def _maybe_abort(status: messages_pb2.EchoStatus, context: grpc.ServicerContext) -> None:
        if status.code != 0:
            code = _STATUS_BY_CODE.get(status.code, grpc.StatusCode.UNKNOWN)
            context.abort(code, status.message)

    def _stream_responses(
        self,
        request: messages_pb2.StreamingOutputCallRequest,
        context: grpc.ServicerContext,
        compression_on: bool,
    ) -> Iterator[messages_pb2.StreamingOutputCallResponse]:
        for params in request.response_parameters:
            if params.interval_us > 0:
                time.sleep(params.interval_us / 1e6)
            if not context.is_active():
                return
            if compression_on and params.HasField("compressed") and not params.compressed.value:
                context.disable_next_message_compression()
            response = messages_pb2.StreamingOutputCallResponse(payload=_payload(params.size))
            if params.fill_peer_socket_address.value:
                response.peer_socket_address = _peer_address(context)
            yield response

    def _setup_stream_compression(self, params: Any, context: grpc.ServicerContext) -> bool:
        if any(p.compressed.value for p in params):
            context.set_compression(grpc.Compression.Gzip)
            return True
        return self._server_compresses

    # -- handlers --------------------------------------------------------------------

    def EmptyCall(
        self, request: tuple[empty_pb2.Empty, bool | None], context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._begin("EmptyCall", context)
        self._echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(
        self,
        request: tuple[messages_pb2.SimpleRequest, bool | None],
        context: grpc.ServicerContext,
        method: str = "UnaryCall",
    ) -> messages_pb2.SimpleResponse:
        self._begin(method, context)
        message, compressed = request
        self._check_compressed(message, compressed, context)
        if message.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        elif message.HasField("response_compressed") and self._server_compresses:
            context.disable_next_message_compression()
        self._echo_metadata(context)
        self._maybe_abort(message.response_status, context)
        response = messages_pb2.SimpleResponse(payload=_payload(message.response_size))
        if message.fill_server_id:
            response.server_id = self.server_id
            response.hostname = socket.gethostname()
        if message.fill_grpclb_route_type:
            response.grpclb_route_type = messages_pb2.GRPCLB_ROUTE_TYPE_BACKEND
        return response

    def CacheableUnaryCall(
        self,
        request: tuple[messages_pb2.SimpleRequest, bool | None],
        context: grpc.ServicerContext,
    ) -> messages_pb2.SimpleResponse:
        return self.UnaryCall(request, context, method="CacheableUnaryCall")

    def StreamingOutputCall(
        self,
        request: tuple[messages_pb2.StreamingOutputCallRequest, bool | None],
        context: grpc.ServicerContext,
    ) -> Iterator[messages_pb2.StreamingOutputCallResponse]:
        self._begin("StreamingOutputCall", context)
        message, _ = request
        compression_on = self._setup_stream_compression(message.response_parameters, context)
        self._echo_metadata(context)
        self._maybe_abort(message.response_status, context)
        yield from self._stream_responses(message, context, compression_on)

    def StreamingInputCall(
        self,
        request_iterator: Iterator[tuple[messages_pb2.StreamingInputCallRequest, bool | None]],
        context: grpc.ServicerContext,
    ) -> messages_pb2.StreamingInputCallResponse:
        self._begin("StreamingInputCall", context)
        self._echo_metadata(context)
        total = 0
        for message, compressed in request_iterator:
            self._check_compressed(message, compressed, context)
            total += len(message.payload.body)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(
        self,
        request_iterator: Iterator[tuple[messages_pb2.StreamingOutputCallRequest, bool | None]],
        context: grpc.ServicerContext,
    ) -> Iterator[messages_pb2.StreamingOutputCallResponse]:
        self._begin("FullDuplexCall", context)
        self._echo_metadata(context)
        for message, _ in request_iterator:
            self._maybe_abort(message.response_status, context)
            yield from self._stream_responses(message, context, self._server_compresses)

    def HalfDuplexCall(
        self,
        request_iterator: Iterator[tuple[messages_pb2.StreamingOutputCallRequest, bool | None]],
        context: grpc.ServicerContext,
    ) -> Iterator[messages_pb2.StreamingOutputCallResponse]:
        self._begin("HalfDuplexCall", context)
        self._echo_metadata(context)
        requests = [message for message, _ in request_iterator]
        for message in requests:
            self._maybe_abort(message.response_status, context)
            yield from self._stream_responses(message, context, self._server_compresses)


def add_test_service(
    server: grpc.Server, servicer: TestServiceServicer, *, detect_request_compression: bool
) -> None:
    """Register TestService's methods (all but UnimplementedCall) on ``server``."""
    detect = detect_request_compression

    def serialize(message: Any) -> bytes:
        data: bytes = message.SerializeToString()
        return data

    empty = _decode(empty_pb2.Empty, detect)
    simple = _decode(messages_pb2.SimpleRequest, detect)
    streaming_in = _decode(messages_pb2.StreamingInputCallRequest, detect)
    streaming_out = _decode(messages_pb2.StreamingOutputCallRequest, detect)
    handlers = {
        "EmptyCall": grpc.unary_unary_rpc_method_handler(
            servicer.EmptyCall, request_deserializer=empty, response_serializer=serialize
        ),
        "UnaryCall": grpc.unary_unary_rpc_method_handler(
            servicer.UnaryCall, request_deserializer=simple, response_serializer=serialize
        ),
        "CacheableUnaryCall": grpc.unary_unary_rpc_method_handler(
            servicer.CacheableUnaryCall, request_deserializer=simple, response_serializer=serialize
        ),
        "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(
            servicer.StreamingOutputCall,
            request_deserializer=streaming_out,
            response_serializer=serialize,
        ),
        "StreamingInputCall": grpc.stream_unary_rpc_method_handler(
            servicer.StreamingInputCall,
            request_deserializer=streaming_in,
            response_serializer=serialize,
        ),
        "FullDuplexCall": grpc.stream_stream_rpc_method_handler(
            servicer.FullDuplexCall,
            request_deserializer=streaming_out,
            response_serializer=serialize,
        ),
        "HalfDuplexCall": grpc.stream_stream_rpc_method_handler(
            servicer.HalfDuplexCall,
            request_deserializer=streaming_out,
            response_serializer=serialize,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def start_interop_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    options: tuple[tuple[str, Any], ...] | list[tuple[str, Any]] = (),
    tls: TLSMaterial | None = None,
    require_client_auth: bool = False,
    unix_path: str | None = None,
    compression: grpc.Compression | None = None,
    server_id: str | None = None,
    detect_request_compression: bool = False,
    max_workers: int = 32,
) -> RunningServer:
    """Start a TestService (+ health, reflection) server; see ``harness.start_server``.

    ``server_id`` (default: the server's address) is returned in SimpleResponse.server_id
    when the request sets fill_server_id, so load-balancing tests can tell backends apart.
    """
    if detect_request_compression:
        options = (*options, ("grpc.per_message_decompression", 0))
    servicer = TestServiceServicer(server_id=server_id or "", compression=compression)

    def register(server: grpc.Server) -> tuple[Any, tuple[str, ...]]:
        add_test_service(server, servicer, detect_request_compression=detect_request_compression)
        return servicer, (SERVICE,)

    running = start_server(
        register,
        host,
        port,
        options=options,
        tls=tls,
        require_client_auth=require_client_auth,
        unix_path=unix_path,
        compression=compression,
        max_workers=max_workers,
    )
    if not server_id:
        servicer.server_id = running.address
    return running

"""A local gRPC server with fault injection, for tests and demos.

:class:`Backend` is an asyncio gRPC server built on ``h2`` (server side), so it is also a
peer for grpc_lite's client that shares none of its HTTP/2 code. It listens on any loopback
address (TCP, ``port=0`` for a free port) or a Unix socket and serves:

- ``helloworld.Greeter``: ``SayHello`` answers ``"Hello NAME from BACKEND_ID"`` (the
  backend's :attr:`~Backend.backend_id`, by default its address), so a load-balancing test
  can see which backend answered; ``SayHelloStreamReply`` sends three replies.
- ``grpc.health.v1.Health`` (``Check``, ``Watch``, ``List``) reporting what
  :meth:`Backend.set_health` says; ``""`` and each built-in service start SERVING.
- ``grpc.testing.TestService``, the gRPC interop server (not ``UnimplementedCall``).
- Your own methods: :meth:`Backend.add_unary_unary` (and ``add_unary_stream``,
  ``add_stream_unary``, ``add_stream_stream``) on bytes or with (de)serializers, or
  :meth:`Backend.add_service` with a protobuf ``ServiceDescriptor`` and an object with one
  ``async def Method(self, request, context)`` per RPC. Handlers look like grpc.aio's:
  ``(request, context)`` or ``(request_iterator, context)``, returning a response or
  yielding responses; :class:`ServicerContext` has ``invocation_metadata()``,
  ``set_trailing_metadata()``, ``await abort(code, details, trailing_metadata)``,
  ``peer()``, ``cancelled()``, ``add_done_callback()``, ``time_remaining()``.

Faults, set on a running backend from the test (same event loop):

- ``backend.delay = 0.3``: every call waits that long first (a deadline still cuts it);
- ``backend.fail_next(2, StatusCode.UNAVAILABLE, "try later", pushback_ms=50)``: the next
  two calls fail, with ``grpc-retry-pushback-ms: 50`` in their trailers;
- ``backend.set_health("", "NOT_SERVING")``: health checks and watches see it at once;
- ``await backend.drain(grace=5)``: graceful GOAWAY drain of every connection (in-flight
  calls finish, new calls go to a new connection);
- ``backend.abort_connections()``: TCP RST on every connection (in-flight calls fail
  UNAVAILABLE);
- ``backend.refuse_new_connections(True)`` / ``(False)``: close / reopen the listening
  socket, on the same port;
- ``await backend.stop(grace)`` / ``await backend.start()``: scale down and up again, on the
  same port.

``delay`` and ``fail_next`` leave the health service alone (:attr:`Backend.fault_exempt`).
Counters: ``backend.calls["/helloworld.Greeter/SayHello"]``, ``backend.connections_accepted``,
``backend.current_connections``.

With pytest (``asyncio_mode = "auto"``)::

    import pytest
    import grpc_lite
    from grpc_lite.testing import Backend, helloworld_pb2

    GREETER = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"]

    @pytest.fixture
    async def backend():
        async with Backend() as b:  # 127.0.0.1, a free port; stopped at teardown
            yield b

    async def test_retry_on_unavailable(backend):
        backend.fail_next(1, grpc_lite.StatusCode.UNAVAILABLE, pushback_ms=10)
        config = {"methodConfig": [{"name": [{"service": "helloworld.Greeter"}],
                  "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s",
                                  "maxBackoff": "0.1s", "backoffMultiplier": 2,
                                  "retryableStatusCodes": ["UNAVAILABLE"]}}]}
        async with grpc_lite.insecure_channel(backend.address, service_config=config) as ch:
            stub = grpc_lite.Stub(ch, GREETER)
            reply = await stub.SayHello(helloworld_pb2.HelloRequest(name="you"))
        assert reply.message == f"Hello you from {backend.address}"
        assert backend.calls["/helloworld.Greeter/SayHello"] == 2

``helloworld_pb2``, ``health_pb2`` and ``testing_pb2`` here are grpc_lite's private-pool
message modules (they never clash with a user's generated modules of the same files).
"""

from .._proto import health_pb2, helloworld_pb2, testing_pb2
from ._backend import HEALTH_STATUSES, PUSHBACK_KEY, Backend
from ._context import (
    AbortError,
    MethodHandler,
    RpcKind,
    ServicerContext,
    stream_stream,
    stream_unary,
    unary_stream,
    unary_unary,
)

#: An alias: the issue calls it a test server.
TestServer = Backend

__all__ = [
    "HEALTH_STATUSES",
    "PUSHBACK_KEY",
    "AbortError",
    "Backend",
    "MethodHandler",
    "RpcKind",
    "ServicerContext",
    "TestServer",
    "health_pb2",
    "helloworld_pb2",
    "stream_stream",
    "stream_unary",
    "testing_pb2",
    "unary_stream",
    "unary_unary",
]

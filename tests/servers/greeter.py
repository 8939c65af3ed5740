"""helloworld.Greeter on grpcio; each backend says who it is.

``SayHello(name)`` answers ``"Hello NAME from BACKEND_ID"`` (BACKEND_ID defaults to the
server's address, e.g. ``127.0.0.2:50051``), so a load-balancing test can count which backend
served each RPC. ``SayHelloStreamReply`` sends three such replies, suffixed ``#0``..``#2``.
A test can make a backend misbehave at run time through the servicer's ``fail_with`` and
``delay`` attributes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc

from tests.protos.helloworld import helloworld_pb2, helloworld_pb2_grpc
from tests.servers.harness import CallRecorder, RunningServer, TLSMaterial, start_server

SERVICE = "helloworld.Greeter"
STREAM_REPLIES = 3


class GreeterServicer(helloworld_pb2_grpc.GreeterServicer):  # type: ignore[misc]
    """Runs on grpcio's worker threads; plain attribute writes from a test are fine."""

    def __init__(self, backend_id: str = "") -> None:
        self.backend_id = backend_id
        self.recorder = CallRecorder()
        #: When set, every RPC fails with this code (and ``fail_message``).
        self.fail_with: grpc.StatusCode | None = None
        self.fail_message = "injected failure"
        #: Seconds to sleep before answering.
        self.delay = 0.0

    def _prologue(self, method: str, context: grpc.ServicerContext) -> None:
        self.recorder.record(f"/{SERVICE}/{method}", context)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with is not None:
            context.abort(self.fail_with, self.fail_message)

    def greeting(self, name: str) -> str:
        return f"Hello {name} from {self.backend_id}"

    def SayHello(
        self, request: helloworld_pb2.HelloRequest, context: grpc.ServicerContext
    ) -> helloworld_pb2.HelloReply:
        self._prologue("SayHello", context)
        return helloworld_pb2.HelloReply(message=self.greeting(request.name))

    def SayHelloStreamReply(
        self, request: helloworld_pb2.HelloRequest, context: grpc.ServicerContext
    ) -> Iterator[helloworld_pb2.HelloReply]:
        self._prologue("SayHelloStreamReply", context)
        for i in range(STREAM_REPLIES):
            yield helloworld_pb2.HelloReply(message=f"{self.greeting(request.name)} #{i}")


def start_greeter_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    backend_id: str | None = None,
    options: tuple[tuple[str, Any], ...] | list[tuple[str, Any]] = (),
    tls: TLSMaterial | None = None,
    require_client_auth: bool = False,
    unix_path: str | None = None,
    compression: grpc.Compression | None = None,
    max_workers: int = 16,
) -> RunningServer:
    """Start a Greeter (+ health, reflection) server; ``.servicer`` is the GreeterServicer."""
    servicer = GreeterServicer(backend_id or "")

    def register(server: grpc.Server) -> tuple[Any, tuple[str, ...]]:
        helloworld_pb2_grpc.add_GreeterServicer_to_server(servicer, server)
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
    if not backend_id:
        servicer.backend_id = running.address
    return running

"""A grpcio backend process that counts the attempts it sees, per call (not collected: no
``test_`` prefix). Run as ``python -m tests.e2e.resilience._counting_backend HOST PORT``: it
prints its port, serves until its stdin closes, then stops.

Service ``freeze.Counter`` (bytes in, bytes out, no protos):

- ``Call``: answers ``b"ok"`` at once. Every attempt is recorded with the client's
  ``x-call-id`` metadata and its ``grpc-previous-rpc-attempts`` header (0 for an original
  attempt, n for the n-th retry or hedge of its call, gRFC A6 §Exposed Retry Metadata).
  The record is made when grpcio hands the call to its generic handlers (``service``), before
  a worker thread takes it, so an attempt that the client cancelled meanwhile (a hedge's loser,
  an attempt timed out by ``perAttemptRecvTimeout``) still counts when grpcio surfaced it.
- ``Stats``: the records so far as JSON ``{"backend": "HOST:PORT", "attempts": [[call_id,
  previous], ...]}``.

The standard health service says SERVING, so a round_robin channel with ``healthCheckConfig``
keeps the backend while it is frozen (SIGSTOP): its connection and its health stream stay open,
which is what makes a freeze worse than a crash or a NOT_SERVING backend.
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVICE = "freeze.Counter"
CALL = f"/{SERVICE}/Call"
STATS = f"/{SERVICE}/Stats"
CALL_ID = "x-call-id"
PREVIOUS = "grpc-previous-rpc-attempts"


class _Counter(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._attempts: list[tuple[str, int]] = []
        self._call = grpc.unary_unary_rpc_method_handler(lambda request, context: b"ok")
        self._stats = grpc.unary_unary_rpc_method_handler(self._report)

    def service(self, details: Any) -> Any:
        method = details.method
        if method == CALL:
            call_id, previous = "", 0
            for key, value in details.invocation_metadata:
                if key == CALL_ID:
                    call_id = value
                elif key == PREVIOUS:
                    previous = int(value)
            with self._lock:
                self._attempts.append((call_id, previous))
            return self._call
        if method == STATS:
            return self._stats
        return None

    def _report(self, request: bytes, context: Any) -> bytes:
        with self._lock:
            attempts = list(self._attempts)
        return json.dumps({"backend": self.backend, "attempts": attempts}).encode()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    counter = _Counter("")
    server.add_generic_rpc_handlers((counter,))
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    counter.backend = f"{host}:{bound}"
    server.start()
    print(bound, flush=True)
    sys.stdin.read()
    server.stop(None)


if __name__ == "__main__":
    main()

"""grpc.health.v1: the messages, a stub, and client-side health checking (A17).

Client-side health checking is switched on by ``healthCheckConfig.serviceName``
in the service config and runs for balancers that ask for it (round_robin).

``HealthStub(channel)`` calls a server's health service directly::

    stub = grpc_lite.health.HealthStub(channel)
    reply = await stub.Check(HealthCheckRequest(service=""))
"""

from typing import Any

from .._proto import health_pb2
from ._client import WATCH_METHOD, HealthStream, watch_health

HealthCheckRequest = health_pb2.HealthCheckRequest
HealthCheckResponse = health_pb2.HealthCheckResponse

__all__ = [
    "WATCH_METHOD",
    "HealthCheckRequest",
    "HealthCheckResponse",
    "HealthStream",
    "HealthStub",
    "watch_health",
]


class HealthStub:
    """``Check`` (unary) and ``Watch`` (server-streaming) of ``grpc.health.v1.Health``."""

    def __init__(self, channel: Any) -> None:
        self.Check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString,
        )
        self.Watch = channel.unary_stream(
            WATCH_METHOD,
            request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString,
        )

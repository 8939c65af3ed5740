"""The A17 client-side health-checking loop (grpc-go: health/client.go).

``watch_health`` runs one ``grpc.health.v1.Health/Watch`` stream at a time
through an injected ``open_stream`` (the subchannel's connected transport: no
load balancing, no retry policy, not counted for channel idleness, as A17 says)
and reports every status through ``report``:

- ``"STARTING"``: a Watch stream is being opened (the subchannel shows CONNECTING);
- ``"SERVING"``, ``"NOT_SERVING"``, ``"UNKNOWN"``, ``"SERVICE_UNKNOWN"``: a response;
- ``"UNIMPLEMENTED"``: the server has no health service: treat it as healthy, log
  at ERROR and never call again (A17 §Client Workflow);
- ``"ENDED"``: the stream ended some other way (any status, OK included); it is
  restarted with the connection backoff, at once if it had delivered a response (A17;
  grpc-go resets its tryCnt on a message).
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from google.protobuf.message import DecodeError

from .._backoff import ExponentialBackoff
from .._proto import health_pb2
from ..status import StatusCode

log = logging.getLogger("grpc_lite")

WATCH_METHOD = "/grpc.health.v1.Health/Watch"


class HealthStream(Protocol):
    """One Watch call on a transport, as the health loop needs it."""

    async def read(self) -> bytes | None:
        """The next response message, or None once the stream has ended."""
        ...

    @property
    def code(self) -> StatusCode | None: ...

    @property
    def details(self) -> str: ...

    def cancel(self) -> None: ...


async def watch_health(
    *,
    service: str,
    open_stream: Callable[[bytes], HealthStream],
    report: Callable[[str, str | None], None],
    backoff: ExponentialBackoff,
    sleep: Callable[[float], Awaitable[None]],
    subject: str = "subchannel",
) -> None:
    """Watch ``service`` until cancelled (or until the server says UNIMPLEMENTED)."""
    request = health_pb2.HealthCheckRequest(service=service).SerializeToString()
    name_of = health_pb2.HealthCheckResponse.ServingStatus.Name
    while True:
        report("STARTING", None)
        stream = open_stream(request)
        received = False
        try:
            while (message := await stream.read()) is not None:
                received = True
                try:
                    status = health_pb2.HealthCheckResponse.FromString(message).status
                    name = name_of(status)
                except (DecodeError, ValueError):
                    report("UNKNOWN", "undecodable health check response")
                    continue
                report(name, None if name == "SERVING" else f"health status {name}")
        finally:
            stream.cancel()
        code = stream.code
        if code is StatusCode.UNIMPLEMENTED:
            log.error(
                "%s: the server has no grpc.health.v1.Health service (UNIMPLEMENTED); "
                "health checking is disabled for this connection",
                subject,
            )
            report("UNIMPLEMENTED", None)
            return
        name = code.name if code is not None else "UNKNOWN"
        report("ENDED", f"health check stream ended with {name}: {stream.details}")
        if received:
            backoff.reset()  # a stream that delivered a response restarts at once (A17)
            continue
        await sleep(backoff.next_delay())

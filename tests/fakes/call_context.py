"""FakeCallContext and friends: sans-IO pieces for tests of a call and its attempt runner.

grpc-go counterpart: the fake transports of internal/transport tests. A call takes its loop
from its channel; `FakeLoop` gives it the test's `FakeClock` for time and every timer
(``call_soon`` is a timer due now: ``clock.advance(0)`` runs it) and the running asyncio loop
for futures and tasks. `FakeCallContext` implements `grpc_lite._call.CallContext`: it picks
`FakeTransport` backends in turn while ``ready``, queues picks while not, and records the
calls it sees start and finish and the trace events they record. A `FakeTransport` keeps the
streams started on it (numbered 1, 3, 5, ... as if sent); the test answers for the server
through the stream's connection callbacks (`answer_headers`, `answer_message`,
`answer_trailers`, `answer_status`, `refuse`, `goaway`).

With ``on_done=True`` every pick returns a fresh `PickResult` whose ``on_done`` is a
`PickRecord` (``ctx.picks``, in order), so that a test sees how often and with which status
each pick's ``on_done`` ran. With ``ctx.picker`` set, picks go through that `Picker` instead
(its results' subchannels must be the backends'): a policy's real picker, say.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any

from grpc_lite import _codec
from grpc_lite._call import Method
from grpc_lite._options import ChannelOptions
from grpc_lite._retry import RetryThrottler
from grpc_lite._transport import ClientStream
from grpc_lite._transport import _frames as fr
from grpc_lite._transport._connection import HeaderBlock
from grpc_lite.balancer import DroppedRpcError, PickInfo, PickResult
from grpc_lite.service_config import ServiceConfig, parse_service_config
from grpc_lite.status import RpcError, StatusCode
from tests.fakes.clock import FakeClock

__all__ = [
    "FakeCallContext",
    "FakeLoop",
    "FakeSubchannel",
    "FakeTransport",
    "PickRecord",
    "answer_headers",
    "answer_message",
    "answer_status",
    "answer_trailers",
    "goaway",
    "refuse",
    "request_frames",
]

PATH = "/pkg.Service/Method"

# Service configs for PATH's service (A6): retry UNAVAILABLE up to 3 attempts 1 s apart, and
# hedging with nonFatalStatusCodes UNAVAILABLE.
RETRY_CONFIG: dict[str, Any] = {
    "methodConfig": [
        {
            "name": [{"service": "pkg.Service"}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 1,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}


def hedging_config(max_attempts: int = 3, delay: str = "0.5s", **extra: Any) -> dict[str, Any]:
    policy = {
        "maxAttempts": max_attempts,
        "hedgingDelay": delay,
        "nonFatalStatusCodes": ["UNAVAILABLE"],
    }
    return {
        "methodConfig": [{"name": [{"service": "pkg.Service"}], "hedgingPolicy": policy | extra}]
    }


class FakeLoop:
    """The parts of an asyncio loop a call uses, on a FakeClock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def time(self) -> float:
        return self.clock.now()

    def call_at(self, when: float, callback: Any, *args: Any) -> Any:
        return self.clock.call_at(when, callback, *args)

    def call_later(self, delay: float, callback: Any, *args: Any) -> Any:
        return self.clock.call_later(delay, callback, *args)

    def call_soon(self, callback: Any, *args: Any) -> Any:
        return self.clock.call_later(0, callback, *args)

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return asyncio.get_running_loop().create_task(coro)


class FakeSubchannel:
    """What a call uses of a picked subchannel: its call counters."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.address = name
        self.calls_started = 0
        self.calls_failed = 0
        self.calls_succeeded = 0
        self.attempts_avoided = 0

    def __repr__(self) -> str:
        return f"FakeSubchannel({self.name!r})"


class PickRecord:
    """One pick's ``PickResult.on_done``: the statuses it was called with, in order."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.codes: list[StatusCode] = []

    def __call__(self, code: StatusCode) -> None:
        self.codes.append(code)

    def __repr__(self) -> str:
        return f"PickRecord({self.backend!r}, {[c.name for c in self.codes]})"


class FakeTransport:
    """A READY transport: keeps the streams a call starts on it, numbered as if sent."""

    def __init__(self, name: str, next_id: list[int]) -> None:
        self.name = name
        self.accepting_streams = True
        self.streams: list[ClientStream] = []
        self.subchannel = FakeSubchannel(name)
        self.result = PickResult(subchannel=self.subchannel)  # type: ignore[arg-type]
        self._next_id = next_id

    def start_stream(self, stream: ClientStream) -> None:
        stream.id = self._next_id[0]
        self._next_id[0] += 2
        self.streams.append(stream)

    def __repr__(self) -> str:
        return f"FakeTransport({self.name!r})"


class FakeCallContext:
    """Implements `grpc_lite._call.CallContext` for sans-IO tests of a call."""

    def __init__(
        self,
        *,
        service_config: Mapping[str, Any] | None = None,
        backends: int = 1,
        config_known: bool = True,
        throttler: RetryThrottler | None = None,
        on_done: bool = False,
        **options: Any,
    ) -> None:
        self.clock = FakeClock()
        self.loop = FakeLoop(self.clock)
        self.options = ChannelOptions(**options)
        self.default_compression = None
        self.config_generation = 1
        self.retry_throttler = throttler
        self.retry_buffer_used = 0
        self.attempts_on_new_hosts = 0
        self.attempts_on_previous_hosts = 0
        # Every PickInfo a pick was asked with, in order.
        self.pick_infos: list[PickInfo] = []
        self.config: ServiceConfig | None = (
            parse_service_config(dict(service_config)) if service_config is not None else None
        )
        self.config_known = config_known
        # The resolver's ConfigSelector (a test sets one), and a drop every pick raises.
        self.config_selector: Any = None
        self.drop: DroppedRpcError | None = None
        self._config_event = asyncio.Event()
        self.events: list[str] = []
        self.started: list[Any] = []
        self.finished: list[tuple[Any, StatusCode]] = []
        next_id = [1]
        self.backends = [FakeTransport(f"b{i}", next_id) for i in range(backends)]
        self._turn = 0
        self.ready = True
        self.pick_error: RpcError | None = None
        self._ready_event = asyncio.Event()
        # Every pick's PickRecord (with on_done=True), in order.
        self.on_done = on_done
        self.picks: list[PickRecord] = []
        # A Picker the picks go through (None: round robin over the backends).
        self.picker: Any = None

    # -- test controls ---------------------------------------------------------------------

    def method(self, path: str = PATH) -> Method:
        return Method(
            self,  # type: ignore[arg-type]
            path,
            scheme="http",
            authority="fake:443",
            user_agent="fake",
            serializer=None,
            deserializer=None,
        )

    def set_ready(self, ready: bool = True) -> None:
        """Picks succeed (round robin over the backends) or must wait for the next change."""
        self.ready = ready
        event, self._ready_event = self._ready_event, asyncio.Event()
        event.set()

    def publish_config(self, service_config: Mapping[str, Any] | None) -> None:
        """The first resolver result arrives with ``service_config``."""
        self.config = parse_service_config(dict(service_config)) if service_config else None
        self.config_known = True
        self._config_event.set()

    def streams(self) -> list[ClientStream]:
        """Every stream started, in order."""
        return sorted((s for t in self.backends for s in t.streams), key=lambda s: s.id)

    # -- CallContext -----------------------------------------------------------------------

    def check_open(self) -> None:
        pass

    def method_config(self, path: str) -> Any:
        return self.config.method_config(path) if self.config is not None else None

    async def wait_for_config(self) -> None:
        await self._config_event.wait()

    def record_event(self, subject: str, description: str) -> None:
        self.events.append(description)

    def _next(self, info: PickInfo) -> tuple[FakeTransport, FakeSubchannel, PickResult]:
        """The backends in turn, as round_robin picks them: a retry or a hedge gets the first
        one from there its call has not tried (``info.previous_subchannels``), if any."""
        if self.picker is not None:
            result = self.picker.pick(info)
            [t] = [b for b in self.backends if b.subchannel is result.subchannel]
            return t, t.subchannel, result
        n = len(self.backends)
        i = self._turn
        self._turn += 1
        t = self.backends[i % n]
        previous = info.previous_subchannels
        if previous:
            for k in range(n):
                other = self.backends[(i + k) % n]
                if other.subchannel not in previous:
                    t = other
                    break
        if self.on_done:
            record = PickRecord(t.name)
            self.picks.append(record)
            return t, t.subchannel, PickResult(subchannel=t.subchannel, on_done=record)  # type: ignore[arg-type]
        return t, t.subchannel, t.result

    def pick(self, info: PickInfo) -> Any:
        self.pick_infos.append(info)
        if self.drop is not None:
            raise self.drop
        return self._next(info) if self.ready else None

    async def wait_for_pick(self, info: PickInfo, wait_for_ready: bool) -> Any:
        self.pick_infos.append(info)
        while True:
            if self.drop is not None:
                raise self.drop
            if self.pick_error is not None and not wait_for_ready:
                raise self.pick_error
            if self.ready:
                return self._next(info)
            await self._ready_event.wait()

    def call_started(self, call: Any) -> None:
        self.started.append(call)

    def call_finished(self, call: Any, code: StatusCode, picked: Any) -> None:
        self.finished.append((call, code))
        if code is StatusCode.OK and self.retry_throttler is not None:
            self.retry_throttler.record_success()  # as the channel does (A6 §Throttling)
        if picked is not None:
            sc = picked[1]
            if code is StatusCode.OK:
                sc.calls_succeeded += 1
            else:
                sc.calls_failed += 1


# -- the server's side of a stream ---------------------------------------------------------


def answer_headers(stream: ClientStream, metadata: list[tuple[str, str]] | None = None) -> None:
    """Response headers (they commit the call)."""
    fields = [(":status", "200"), ("content-type", "application/grpc"), *(metadata or [])]
    stream._on_headers(HeaderBlock(fields), False)


def answer_message(stream: ClientStream, payload: bytes) -> None:
    stream._on_data(_codec.frame_message(payload), False)


def answer_trailers(
    stream: ClientStream,
    code: StatusCode = StatusCode.OK,
    details: str = "",
    metadata: list[tuple[str, str]] | None = None,
) -> None:
    fields = [("grpc-status", str(code.value)), *(metadata or [])]
    if details:
        fields.append(("grpc-message", details))
    stream._on_headers(HeaderBlock(fields), True)


def answer_status(
    stream: ClientStream,
    code: StatusCode,
    details: str = "",
    metadata: list[tuple[str, str]] | None = None,
) -> None:
    """A Trailers-Only response: the status without response headers (no commit)."""
    fields = [(":status", "200"), ("content-type", "application/grpc")]
    fields += [("grpc-status", str(code.value)), *(metadata or [])]
    if details:
        fields.append(("grpc-message", details))
    stream._on_headers(HeaderBlock(fields), True)


def refuse(stream: ClientStream) -> None:
    """RST_STREAM(REFUSED_STREAM) before any headers: the server never processed it."""
    stream._on_reset(fr.REFUSED_STREAM)


def goaway(stream: ClientStream) -> None:
    """The stream was above a GOAWAY's last stream id: never processed."""
    stream._on_unprocessed("GOAWAY above its stream id")


def request_frames(stream: ClientStream) -> tuple[list[bytes], bool]:
    """The request bytes queued on a stream (its connection is fake), and end-of-stream."""
    return [bytes(b) for b in stream._out], stream._out_end

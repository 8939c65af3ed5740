"""Helpers for the resilience tests (issue 4; not collected: no ``test_`` prefix).

Servers:

- :class:`FlakyServicer` serves ``resil.Flaky`` (bytes in, bytes out, no protos) on grpcio:
  ``Unary``, ``ClientStream`` and ``ServerStream``. What each attempt does is decided by
  ``servicer.plan(n)`` (``n`` = 1-based arrival number of the call on that server), which
  returns a :class:`Behaviour`: sleep (cancellably), send response headers first, fail with a
  code, a message and ``grpc-retry-pushback-ms`` trailers, stream some messages first.
  Every arrival is logged as an :class:`Attempt` (arrival time on ``time.monotonic()``, the
  same clock as asyncio's ``loop.time()``, the ``grpc-previous-rpc-attempts`` header, the
  messages a client stream carried, and whether the client cancelled it).
- :func:`start_backend` starts a helloworld.Greeter server with a health service of the
  test's choosing (grpcio's, a counting one, a scripted one, or none at all) and a spy that
  records calls to methods the server does not implement.
- :class:`ChildGreeter` runs a Greeter server in a child process so a test can SIGKILL it.

Everything started here is registered with the ``grpc_server_factory`` fixture (or killed
in a ``finally``), so every server is stopped at teardown.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import grpc_lite
from tests.protos.helloworld import helloworld_pb2, helloworld_pb2_grpc
from tests.servers.greeter import SERVICE as GREETER_SERVICE
from tests.servers.greeter import GreeterServicer
from tests.servers.harness import (
    DEFAULT_SERVER_OPTIONS,
    CallRecorder,
    HealthServicer,
    RunningServer,
    ServerFactory,
    start_server,
)

SC = grpc_lite.StatusCode
S = grpc_lite.ChannelConnectivity

REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)

FLAKY = "resil.Flaky"
UNARY = f"/{FLAKY}/Unary"
CLIENT_STREAM = f"/{FLAKY}/ClientStream"
SERVER_STREAM = f"/{FLAKY}/ServerStream"
SAY_HELLO = f"/{GREETER_SERVICE}/SayHello"
WATCH = "/grpc.health.v1.Health/Watch"

PUSHBACK = "grpc-retry-pushback-ms"
PREVIOUS = "grpc-previous-rpc-attempts"

POLL = 0.02

#: Small connection backoff so that reconnect-driven tests finish quickly.
FAST_BACKOFF: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 200),
]


# --------------------------------------------------------------------------- service configs


def retry_policy(
    max_attempts: int = 5,
    *,
    initial: float = 0.01,
    maximum: float = 0.05,
    multiplier: float = 2.0,
    codes: Sequence[str] = ("UNAVAILABLE",),
    per_attempt: float | None = None,
) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "maxAttempts": max_attempts,
        "initialBackoff": f"{initial}s",
        "maxBackoff": f"{maximum}s",
        "backoffMultiplier": multiplier,
        "retryableStatusCodes": list(codes),
    }
    if per_attempt is not None:
        policy["perAttemptRecvTimeout"] = f"{per_attempt}s"
    return policy


def hedging_policy(
    max_attempts: int = 3,
    *,
    delay: float | None = 0.5,
    non_fatal: Sequence[str] = ("UNAVAILABLE",),
) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "maxAttempts": max_attempts,
        "nonFatalStatusCodes": list(non_fatal),
    }
    if delay is not None:
        policy["hedgingDelay"] = f"{delay}s"
    return policy


def service_config(
    *,
    retry: dict[str, Any] | None = None,
    hedging: dict[str, Any] | None = None,
    service: str = FLAKY,
    throttling: tuple[float, float] | None = None,
    lb: str | None = None,
    health_service: str | None = None,
) -> str:
    """A lowerCamelCase service config JSON for one service's methods."""
    config: dict[str, Any] = {}
    if lb is not None:
        config["loadBalancingConfig"] = [{lb: {}}]
    if retry is not None or hedging is not None:
        entry: dict[str, Any] = {"name": [{"service": service}]}
        if retry is not None:
            entry["retryPolicy"] = retry
        if hedging is not None:
            entry["hedgingPolicy"] = hedging
        config["methodConfig"] = [entry]
    if throttling is not None:
        config["retryThrottling"] = {"maxTokens": throttling[0], "tokenRatio": throttling[1]}
    if health_service is not None:
        config["healthCheckConfig"] = {"serviceName": health_service}
    return json.dumps(config)


def ipv4_target(addresses: Sequence[str]) -> str:
    """``ipv4:a:p,b:p,...`` for "host:port" addresses."""
    return "ipv4:" + ",".join(addresses)


# --------------------------------------------------------------------------- the Flaky service


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """What one attempt does, in this order: sleep ``delay`` (ends early when the client
    cancels), send response headers if ``send_headers``, send ``stream_messages`` messages
    (ServerStream only), then fail with ``code`` (with ``details``, ``trailers`` and
    ``pushback`` as ``grpc-retry-pushback-ms`` trailers, one entry per value) or answer
    ``reply`` (default ``b"attempt N"``)."""

    code: grpc.StatusCode | None = None
    details: str = "injected failure"
    pushback: tuple[str, ...] = ()
    send_headers: bool = False
    delay: float = 0.0
    stream_messages: int = 0
    reply: bytes = b""
    trailers: tuple[tuple[str, str], ...] = ()


OK = Behaviour()


def fail(
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, *, pushback: str | None = None, **kw: Any
) -> Behaviour:
    return Behaviour(code=code, pushback=(pushback,) if pushback is not None else (), **kw)


def fail_first(
    n: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
) -> Callable[[int], Behaviour]:
    """A plan: attempts 1..n fail with ``code``, later ones succeed."""
    return lambda k: fail(code) if k <= n else OK


class PerCallPlan:
    """A plan that decides from the attempt itself (its ``grpc-previous-rpc-attempts``
    header) rather than the server-wide arrival number: ``fail_first`` attempts of every
    call fail with ``code``, later attempts of the same call succeed."""

    def __init__(
        self, fail_first: int = 1, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    ) -> None:
        self.fail_first = fail_first
        self.code = code

    def __call__(self, n: int) -> Behaviour:  # never used: see FlakyServicer._arrive
        raise AssertionError("PerCallPlan decides per attempt")

    def behaviour(self, attempt: Attempt) -> Behaviour:
        previous = int(attempt.previous) if attempt.previous is not None else 0
        return fail(self.code) if previous < self.fail_first else OK


@dataclass(kw_only=True)
class Attempt:
    """One call as the Flaky server saw it."""

    index: int  # 1-based arrival number on this server
    method: str
    at: float  # time.monotonic() at arrival
    previous: str | None  # the grpc-previous-rpc-attempts header
    peer: str
    messages: list[bytes] = field(default_factory=list)  # what a client stream carried
    ended: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False  # the RPC ended (client cancel / RST_STREAM) while the handler slept
    messages_done_at: float | None = None


class FlakyServicer:
    """``resil.Flaky`` on grpcio's worker threads; ``plan`` may be replaced at any time."""

    def __init__(self, plan: Callable[[int], Behaviour] = lambda n: OK) -> None:
        self.plan = plan
        self.recorder = CallRecorder()
        self._lock = threading.Lock()
        self._attempts: list[Attempt] = []

    # -- observations ------------------------------------------------------------

    @property
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def count(self) -> int:
        with self._lock:
            return len(self._attempts)

    def reset(self, plan: Callable[[int], Behaviour] | None = None) -> None:
        """Forget the attempts so far (numbering restarts at 1), optionally with a new plan."""
        with self._lock:
            self._attempts.clear()
            if plan is not None:
                self.plan = plan

    # -- handlers ----------------------------------------------------------------

    def _arrive(self, method: str, context: grpc.ServicerContext) -> tuple[Attempt, Behaviour]:
        self.recorder.record(method, context)
        previous = None
        for m in context.invocation_metadata():
            if m.key == PREVIOUS:
                previous = m.value
        with self._lock:
            attempt = Attempt(
                index=len(self._attempts) + 1,
                method=method,
                at=time.monotonic(),
                previous=previous,
                peer=context.peer(),
            )
            self._attempts.append(attempt)
            plan = self.plan
        context.add_callback(attempt.ended.set)
        if isinstance(plan, PerCallPlan):
            return attempt, plan.behaviour(attempt)
        return attempt, plan(attempt.index)

    @staticmethod
    def _sleep(attempt: Attempt, delay: float) -> bool:
        """Sleep ``delay``; False (and ``cancelled``) when the RPC ended meanwhile."""
        if delay > 0 and attempt.ended.wait(delay):
            attempt.cancelled = True
            return False
        return True

    @staticmethod
    def _fail_or_reply(attempt: Attempt, b: Behaviour, context: grpc.ServicerContext) -> bytes:
        if b.code is None:
            return b.reply or f"attempt {attempt.index}".encode()
        trailers = (*b.trailers, *((PUSHBACK, v) for v in b.pushback))
        if trailers:
            context.set_trailing_metadata(trailers)
        context.abort(b.code, b.details)
        raise AssertionError("unreachable")  # abort raises

    def Unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        attempt, b = self._arrive(UNARY, context)
        if not self._sleep(attempt, b.delay):
            return b""
        if b.send_headers:
            context.send_initial_metadata(())
        return self._fail_or_reply(attempt, b, context)

    def ClientStream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        attempt, b = self._arrive(CLIENT_STREAM, context)
        for message in requests:
            attempt.messages.append(message)
        attempt.messages_done_at = time.monotonic()
        if not self._sleep(attempt, b.delay):
            return b""
        if b.send_headers:
            context.send_initial_metadata(())
        return self._fail_or_reply(attempt, b, context)

    def ServerStream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        attempt, b = self._arrive(SERVER_STREAM, context)
        if not self._sleep(attempt, b.delay):
            return
        if b.send_headers:
            context.send_initial_metadata(())
        for i in range(b.stream_messages):
            yield f"attempt {attempt.index} message {i}".encode()
        if b.code is not None:
            # Let the messages leave before the status (they are committed either way).
            time.sleep(0.05)
            self._fail_or_reply(attempt, b, context)
        else:
            yield f"attempt {attempt.index} last".encode()


def _flaky_handler(servicer: FlakyServicer) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        FLAKY,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(servicer.Unary),
            "ClientStream": grpc.stream_unary_rpc_method_handler(servicer.ClientStream),
            "ServerStream": grpc.unary_stream_rpc_method_handler(servicer.ServerStream),
        },
    )


def start_flaky(
    factory: ServerFactory,
    plan: Callable[[int], Behaviour] = lambda n: OK,
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningServer:
    """A Flaky server (+ grpcio health and reflection); ``.servicer`` is the FlakyServicer.
    Stopped by the factory at teardown."""
    servicer = FlakyServicer(plan)

    def register(server: grpc.Server) -> tuple[Any, tuple[str, ...]]:
        server.add_generic_rpc_handlers((_flaky_handler(servicer),))
        return servicer, (FLAKY,)

    running = start_server(register, host, port)
    factory.servers.append(running)
    return running


def flaky(servicer: Any) -> FlakyServicer:
    assert isinstance(servicer, FlakyServicer)
    return servicer


# --------------------------------------------------------------------------- health services


class CountingHealth(HealthServicer):
    """grpcio's HealthServicer that also records when each Watch started (and its peer)."""

    def __init__(self) -> None:
        super().__init__()
        self.watch_lock = threading.Lock()
        self.watches: list[tuple[float, str]] = []

    def Watch(
        self, request: Any, context: grpc.ServicerContext, send_response_callback: Any = None
    ) -> Any:
        with self.watch_lock:
            self.watches.append((time.monotonic(), context.peer()))
        return super().Watch(request, context, send_response_callback)

    def watch_count(self) -> int:
        with self.watch_lock:
            return len(self.watches)

    def watch_times(self) -> list[float]:
        with self.watch_lock:
            return [t for t, _ in self.watches]


class ScriptedHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """A Health service whose Watch follows a script (blocking generator, one worker each):

    - ``first_delay``: seconds before the first response;
    - ``statuses``: the responses to send (default: one SERVING), then
    - ``then``: ``"hold"`` keeps the stream open until the client cancels, ``"end"`` sleeps
      ``end_after`` and returns OK, ``"abort"`` fails with ``abort_code`` (after the
      statuses, so with ``statuses=()`` nothing at all is sent).
    Records the start time of every Watch and when its first response went out.
    """

    def __init__(
        self,
        *,
        statuses: Sequence[int] = (health_pb2.HealthCheckResponse.SERVING,),
        first_delay: float = 0.0,
        then: str = "hold",
        end_after: float = 0.0,
        abort_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
    ) -> None:
        self.statuses = tuple(statuses)
        self.first_delay = first_delay
        self.then = then
        self.end_after = end_after
        self.abort_code = abort_code
        self.lock = threading.Lock()
        self.watches: list[float] = []
        self.first_sent: list[float] = []

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        status = self.statuses[0] if self.statuses else health_pb2.HealthCheckResponse.UNKNOWN
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        ended = threading.Event()
        context.add_callback(ended.set)
        with self.lock:
            self.watches.append(time.monotonic())
        if self.first_delay and ended.wait(self.first_delay):
            return
        for i, status in enumerate(self.statuses):
            if i == 0:
                with self.lock:
                    self.first_sent.append(time.monotonic())
            yield health_pb2.HealthCheckResponse(status=status)
        if self.then == "hold":
            ended.wait(30)
        elif self.then == "end":
            if self.end_after:
                ended.wait(self.end_after)
        elif self.then == "abort":
            context.abort(self.abort_code, "scripted Watch failure")

    def watch_times(self) -> list[float]:
        with self.lock:
            return list(self.watches)

    def watch_count(self) -> int:
        with self.lock:
            return len(self.watches)


class SpyHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Records every method the server has no handler for (grpcio then answers
    UNIMPLEMENTED, Trailers-Only)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.unhandled: list[tuple[float, str]] = []

    def service(self, handler_call_details: Any) -> None:
        with self.lock:
            self.unhandled.append((time.monotonic(), handler_call_details.method))
        return None

    def count(self, method: str) -> int:
        with self.lock:
            return sum(1 for _, m in self.unhandled if m == method)


@dataclass(kw_only=True)
class Backend:
    """A Greeter backend from :func:`start_backend`."""

    running: RunningServer
    greeter: GreeterServicer
    health: Any  # CountingHealth / ScriptedHealth / HealthServicer / None
    spy: SpyHandler

    @property
    def address(self) -> str:
        return self.running.address

    def says(self) -> int:
        """SayHello calls this backend received."""
        return self.greeter.recorder.count("SayHello")

    def watch_count(self) -> int:
        """Watch calls: counted by the health service, or by the spy when there is none."""
        if self.health is None:
            return self.spy.count(WATCH)
        return int(self.health.watch_count())


def start_backend(
    factory: ServerFactory,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    health: Any = "counting",
) -> Backend:
    """A Greeter server ("Hello NAME from HOST:PORT") with the given health service:
    ``"counting"`` (:class:`CountingHealth`, SERVING), a servicer instance, or None (no
    Health service: Watch is answered UNIMPLEMENTED and recorded by the spy)."""
    executor = futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="resil-srv")
    server = grpc.server(executor, options=list(DEFAULT_SERVER_OPTIONS))
    greeter = GreeterServicer("")
    helloworld_pb2_grpc.add_GreeterServicer_to_server(greeter, server)
    if health == "counting":
        health = CountingHealth()
    if health is not None:
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
    spy = SpyHandler()
    server.add_generic_rpc_handlers((spy,))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        executor.shutdown(wait=False)
        raise OSError(f"cannot bind {host}:{port}: {exc}") from exc
    server.start()
    running = RunningServer(
        server=server,
        address=f"{host}:{bound}",
        host=host,
        port=bound,
        health=health,
        servicer=greeter,
        _executor=executor,
    )
    greeter.backend_id = running.address
    factory.servers.append(running)
    return Backend(running=running, greeter=greeter, health=health, spy=spy)


def start_backends(
    factory: ServerFactory,
    hosts: Sequence[str],
    *,
    health: Callable[[], Any] = lambda: "counting",
) -> list[Backend]:
    """One backend per host, all on one port (retried if the port is taken elsewhere)."""
    for attempt in range(5):
        started: list[Backend] = []
        try:
            port = 0
            for host in hosts:
                backend = start_backend(factory, host, port, health=health())
                started.append(backend)
                port = backend.running.port or 0
            return started
        except OSError:
            for backend in started:
                backend.running.stop(None)
                factory.servers.remove(backend.running)
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- child process


class ChildGreeter:
    """A Greeter server in a child process (so it can be SIGKILLed). Use as a context
    manager; the child is killed at exit whatever happened."""

    _CODE = (
        "import sys\n"
        "from tests.servers.greeter import start_greeter_server\n"
        "server = start_greeter_server(sys.argv[1], int(sys.argv[2]))\n"
        "server.servicer.delay = float(sys.argv[3])\n"
        "print(server.port, flush=True)\n"
        "sys.stdin.read()\n"
        "server.stop(None)\n"
    )

    def __init__(self, host: str, port: int, *, delay: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.delay = delay  # seconds every SayHello sleeps
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self._CODE, self.host, str(self.port), str(self.delay)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def wait_started(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip().isdigit(), f"child greeter on {self.address} did not start: {line!r}"
        assert int(line) == self.port

    def kill(self) -> None:
        """SIGKILL (the kernel closes its sockets; no GOAWAY, no trailers)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> ChildGreeter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- client side


def hello_callable(channel: grpc_lite.Channel) -> Any:
    return channel.unary_unary(
        SAY_HELLO,
        request_serializer=helloworld_pb2.HelloRequest.SerializeToString,
        response_deserializer=helloworld_pb2.HelloReply.FromString,
    )


def backend_of(message: str) -> str:
    """The backend id out of "Hello NAME from BACKEND_ID"."""
    _head, sep, backend = message.rpartition(" from ")
    assert sep, f"unexpected greeting {message!r}"
    return backend


async def hello(
    channel: grpc_lite.Channel,
    name: str = "resil",
    *,
    deadline: float = 5.0,
    wait_for_ready: bool | None = None,
) -> str:
    """One SayHello with a ``deadline`` (seconds); the backend ("127.0.0.2:PORT") that
    answered."""
    reply = await hello_callable(channel)(
        helloworld_pb2.HelloRequest(name=name), timeout=deadline, wait_for_ready=wait_for_ready
    )
    return backend_of(reply.message)


async def eventually(
    predicate: Callable[[], bool], what: str, within: float = 3.0, interval: float = POLL
) -> None:
    """Poll ``predicate`` every ``interval``; AssertionError after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not predicate():
        if loop.time() >= end:
            if predicate():
                return
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(interval)


async def pause(seconds: float) -> None:
    """Let ``seconds`` pass in short sleeps (the tests never sleep 0.5 s at once)."""
    if seconds <= 0:
        return
    steps = math.ceil(seconds / 0.1)
    for _ in range(steps):
        await asyncio.sleep(seconds / steps)


async def every(period: float, count: int) -> Any:
    """An async generator yielding 0..count-1 on a fixed ``period`` grid (no drift)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        delay = start + i * period - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield i


def subchannel(channel: grpc_lite.Channel, address: str) -> Any:
    """The snapshot of the subchannel for ``address`` (AssertionError when there is none)."""
    for sc in channel.snapshot().subchannels:
        if sc.address == address:
            return sc
    raise AssertionError(
        f"no subchannel for {address}: {[s.address for s in channel.snapshot().subchannels]}"
    )


def ready_addresses(channel: grpc_lite.Channel) -> set[str]:
    return {sc.address for sc in channel.snapshot().subchannels if sc.state is S.READY}

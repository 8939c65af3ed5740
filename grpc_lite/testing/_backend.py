"""``Backend``: a local gRPC server with built-in services and run-time fault injection.

Who may call what: a Backend belongs to the event loop that started it; every method is
called from that loop (nothing here is thread-safe, and nothing needs to be).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from ..status import StatusCode
from . import _services
from ._context import AbortError, MethodHandler, RpcKind
from ._h2server import ServerConnection
from ._listener import Listener

__all__ = ["Backend"]

PUSHBACK_KEY = "grpc-retry-pushback-ms"

#: Health statuses by name (grpc.health.v1.HealthCheckResponse.ServingStatus).
HEALTH_STATUSES = {"UNKNOWN": 0, "SERVING": 1, "NOT_SERVING": 2, "SERVICE_UNKNOWN": 3}


@dataclass(slots=True, kw_only=True)
class _FailRule:
    remaining: int
    code: StatusCode
    details: str
    pushback_ms: int | None
    method: str | None


class Backend:
    """A gRPC server on loopback TCP or a Unix socket, for tests and demos.

    ``Backend(host="127.0.0.1", port=0)`` listens on TCP (``port=0`` picks a free port,
    kept across restarts); ``Backend(unix_path="/tmp/x.sock")`` on a Unix socket. It serves
    the built-in services (helloworld.Greeter, grpc.health.v1.Health and, unless
    ``test_service=False``, grpc.testing.TestService) plus whatever is registered with
    :meth:`add_method` / :meth:`add_service`.

    Faults (all take effect at once, on the loop that runs the backend):

    - :attr:`delay`: seconds slept before each call is handled (cancellable: a deadline
      still ends the call on time);
    - :meth:`fail_next`: the next N calls fail with a status (optionally with
      ``grpc-retry-pushback-ms``);
    - :meth:`set_health`: the status the health service reports;
    - :meth:`drain`: graceful GOAWAY drain of every open connection;
    - :meth:`abort_connections`: abrupt close (TCP RST);
    - :meth:`refuse_new_connections`: close / reopen the listening socket.

    ``delay`` and ``fail_next`` do not apply to services named in :attr:`fault_exempt`
    (by default the health service, so a client's health watch does not swallow an
    injected failure).

    Counters: :attr:`calls` (``Counter`` of full method paths, every call that reached the
    server), :attr:`connections_accepted`, :attr:`current_connections`.

    A Backend is the ``ServerHost`` of the connections it accepts: they call
    :meth:`lookup_method`, :meth:`has_service`, :meth:`before_call`, :meth:`spawn`,
    :meth:`connection_opened` and :meth:`connection_closed`, and read the settings above.
    """

    __test__ = False  # pytest: not a test class (also exported as ``TestServer``)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        unix_path: str | None = None,
        backend_id: str | None = None,
        greeter: bool = True,
        health: bool = True,
        test_service: bool = True,
        reflection: bool = True,
        max_concurrent_streams: int | None = 100,
        initial_window_size: int = 1 << 20,
        connection_window_size: int = 16 << 20,
        max_receive_message_length: int | None = 4 << 20,
    ) -> None:
        self._listener = Listener(lambda: ServerConnection(self), host, port, unix_path=unix_path)
        self._backend_id = backend_id
        #: Advertised SETTINGS_MAX_CONCURRENT_STREAMS (None = no limit); enforced per
        #: connection with RST_STREAM(REFUSED_STREAM). Applies to connections made later.
        self.max_concurrent_streams = max_concurrent_streams
        #: SETTINGS_INITIAL_WINDOW_SIZE (request bytes the client may send per stream).
        self.initial_window_size = initial_window_size
        #: The connection-level receive window.
        self.connection_window_size = connection_window_size
        #: Largest request message accepted after decompression (None = no limit).
        self.max_receive_message_length = max_receive_message_length

        #: Seconds slept before handling each call (0 = none).
        self.delay = 0.0
        #: Services (full names) that ``delay`` and ``fail_next`` leave alone.
        self.fault_exempt: set[str] = {"grpc.health.v1.Health"}
        #: Calls per full method path (``/helloworld.Greeter/SayHello``).
        self.calls: collections.Counter[str] = collections.Counter()
        #: Connections accepted since the backend was created.
        self.connections_accepted = 0

        self._methods: dict[str, MethodHandler] = {}
        self._services: set[str] = set()
        #: Full service name -> the FileDescriptor that defines it (for reflection).
        self.service_files: dict[str, Any] = {}
        self._fail: _FailRule | None = None
        self._health: dict[str, int] = {}
        self._health_watchers: dict[str, set[asyncio.Queue[int]]] = {}
        self._connections: set[ServerConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self._refusing = False

        if greeter:
            _services.add_greeter(self)
        if health:
            _services.add_health(self)
        if test_service:
            _services.add_test_service(self)
        if reflection:
            _services.add_reflection(self)
        if health:
            # The whole server and each built-in service start SERVING.
            self.set_health("", "SERVING")
            for service in sorted(self._services - {_services.HEALTH.full_name}):
                self.set_health(service, "SERVING")

    # -- identity -----------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._listener.host

    @property
    def unix_path(self) -> str | None:
        return self._listener.unix_path

    @property
    def port(self) -> int:
        """The TCP port (after :meth:`start` when created with ``port=0``); 0 for Unix."""
        return self._listener.port

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, ``"[::1]:PORT"`` or ``"unix:/path"``: a grpc_lite target."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def backend_id(self) -> str:
        """How the Greeter names this backend: given to the constructor, else :attr:`address`."""
        return self._backend_id if self._backend_id is not None else self.address

    @property
    def current_connections(self) -> int:
        """Connections open right now."""
        return len(self._connections)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def serving(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._running

    def __repr__(self) -> str:
        state = "serving" if self._running else "stopped"
        return f"<grpc_lite.testing.Backend {self.backend_id} {state}>"

    # -- registration -------------------------------------------------------------------

    def add_method(self, path: str, handler: MethodHandler) -> None:
        """Serve ``path`` (``/package.Service/Method``) with ``handler`` (see
        :func:`~grpc_lite.testing.unary_unary` and friends). Replaces an earlier one."""
        if not path.startswith("/") or path.count("/") != 2:
            raise ValueError(f"method path must look like /package.Service/Method: {path!r}")
        self._methods[path] = handler
        self._services.add(path[1:].split("/")[0])

    def add_unary_unary(
        self,
        path: str,
        handler: Callable[..., Any],
        request_deserializer: Callable[[bytes], Any] | None = None,
        response_serializer: Callable[[Any], bytes] | None = None,
    ) -> None:
        self._add(RpcKind.UNARY_UNARY, path, handler, request_deserializer, response_serializer)

    def add_unary_stream(
        self,
        path: str,
        handler: Callable[..., Any],
        request_deserializer: Callable[[bytes], Any] | None = None,
        response_serializer: Callable[[Any], bytes] | None = None,
    ) -> None:
        self._add(RpcKind.UNARY_STREAM, path, handler, request_deserializer, response_serializer)

    def add_stream_unary(
        self,
        path: str,
        handler: Callable[..., Any],
        request_deserializer: Callable[[bytes], Any] | None = None,
        response_serializer: Callable[[Any], bytes] | None = None,
    ) -> None:
        self._add(RpcKind.STREAM_UNARY, path, handler, request_deserializer, response_serializer)

    def add_stream_stream(
        self,
        path: str,
        handler: Callable[..., Any],
        request_deserializer: Callable[[bytes], Any] | None = None,
        response_serializer: Callable[[Any], bytes] | None = None,
    ) -> None:
        self._add(RpcKind.STREAM_STREAM, path, handler, request_deserializer, response_serializer)

    def _add(
        self,
        kind: RpcKind,
        path: str,
        handler: Callable[..., Any],
        request_deserializer: Callable[[bytes], Any] | None,
        response_serializer: Callable[[Any], bytes] | None,
    ) -> None:
        self.add_method(
            path,
            MethodHandler(
                kind=kind,
                handler=handler,
                request_deserializer=request_deserializer,
                response_serializer=response_serializer,
            ),
        )

    def add_service(self, service: ServiceDescriptor, servicer: object) -> None:
        """Serve every method of a protobuf ``service`` for which ``servicer`` has an
        attribute of the method's name (``async def SayHello(self, request, context)``).

        Requests are parsed and responses serialized with the descriptor's message classes.
        """
        # Server reflection describes the services from these files.
        self.service_files[service.full_name] = service.file
        for method in service.methods:
            fn = getattr(servicer, method.name, None)
            if fn is None:
                continue
            request_cls = message_factory.GetMessageClass(method.input_type)
            response_cls = message_factory.GetMessageClass(method.output_type)
            kind = RpcKind((method.client_streaming, method.server_streaming))
            self._add(
                kind,
                f"/{service.full_name}/{method.name}",
                fn,
                request_cls.FromString,
                response_cls.SerializeToString,
            )

    def remove_service(self, service: str) -> None:
        """Stop serving every method of ``service`` (full name); calls get UNIMPLEMENTED."""
        prefix = f"/{service}/"
        for path in [p for p in self._methods if p.startswith(prefix)]:
            del self._methods[path]
        self._services.discard(service)

    def lookup_method(self, path: str) -> MethodHandler | None:
        """The handler registered for ``path`` (``/package.Service/Method``), or None."""
        return self._methods.get(path)

    def has_service(self, service: str) -> bool:
        """Whether any method of ``service`` (full name) is served."""
        return service in self._services

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> Backend:
        """Listen and serve. May be called again after :meth:`stop` (same port)."""
        if self._running:
            raise RuntimeError("backend already started")
        self._running = True
        self._refusing = False
        try:
            await self._listener.start()
        except BaseException:
            self._running = False
            raise
        return self

    async def stop(self, grace: float | None = None) -> None:
        """Stop listening and end every connection: at once (in-flight calls fail
        UNAVAILABLE on the client) when ``grace`` is None, else a graceful :meth:`drain`
        that gives in-flight calls ``grace`` seconds. Safe to call twice."""
        self._running = False
        self._listener.close()
        await self._listener.settle()
        if grace is None:
            for conn in list(self._connections):
                conn.close()
            # Deadline "now": whatever is still open after the close is aborted.
            await self._wait_connections(asyncio.get_running_loop().time())
        else:
            await self.drain(grace)
        await self._wait_tasks()
        await self._listener.wait_closed()

    async def __aenter__(self) -> Backend:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _wait_connections(self, deadline: float | None) -> None:
        conns = list(self._connections)
        if conns:
            await asyncio.gather(*(c.wait_closed(deadline) for c in conns))

    async def _wait_tasks(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- faults -------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        code: StatusCode,
        details: str = "",
        pushback_ms: int | None = None,
        *,
        method: str | None = None,
    ) -> None:
        """Fail the next ``n`` calls (to ``method``, a full path, or to any method) with
        ``code`` and ``details``; with ``pushback_ms`` the trailers carry
        ``grpc-retry-pushback-ms`` (A6; a negative value sends ``-1``: do not retry).
        Replaces an earlier rule; ``n=0`` clears it."""
        if n <= 0:
            self._fail = None
            return
        self._fail = _FailRule(
            remaining=n,
            code=StatusCode(code),
            details=details,
            pushback_ms=pushback_ms,
            method=method,
        )

    @property
    def failures_pending(self) -> int:
        """Calls still to be failed by :meth:`fail_next`."""
        return 0 if self._fail is None else self._fail.remaining

    async def before_call(self, path: str) -> None:
        """Faults applied to each call before its handler runs (on the call's task):
        :attr:`delay`, then :meth:`fail_next` (raises :class:`AbortError`)."""
        service = path[1:].split("/")[0]
        if service in self.fault_exempt:
            return
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        rule = self._fail
        if rule is not None and (rule.method is None or rule.method == path):
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._fail = None
            trailing: list[tuple[str, str]] = []
            if rule.pushback_ms is not None:
                value = "-1" if rule.pushback_ms < 0 else str(int(rule.pushback_ms))
                trailing.append((PUSHBACK_KEY, value))
            raise AbortError(rule.code, rule.details, trailing)

    def set_health(self, service: str, status: str | int | bool | None) -> None:
        """Set what grpc.health.v1 reports for ``service`` ("" = the whole server).

        ``status`` is a name (``"SERVING"``, ``"NOT_SERVING"``, ``"UNKNOWN"``,
        ``"SERVICE_UNKNOWN"``), its number, True (SERVING) / False (NOT_SERVING), or None to
        forget the service (Check then answers NOT_FOUND, Watch SERVICE_UNKNOWN). Every
        open Watch on the service sees the change.
        """
        if status is None:
            value: int | None = None
        elif isinstance(status, bool):
            value = 1 if status else 2
        elif isinstance(status, str):
            try:
                value = HEALTH_STATUSES[status.upper()]
            except KeyError:
                raise ValueError(f"unknown health status {status!r}") from None
        else:
            value = int(status)
        previous = self._health.get(service)
        if value is None:
            self._health.pop(service, None)
        else:
            self._health[service] = value
        if previous != value:
            current = HEALTH_STATUSES["SERVICE_UNKNOWN"] if value is None else value
            for queue in self._health_watchers.get(service, ()):
                queue.put_nowait(current)

    def health(self, service: str = "") -> str:
        """The status name the health service reports for ``service`` now."""
        value = self._health.get(service, HEALTH_STATUSES["SERVICE_UNKNOWN"])
        for name, number in HEALTH_STATUSES.items():
            if number == value:
                return name
        return str(value)

    async def drain(self, grace: float | None = None) -> None:
        """Graceful drain of every open connection (grpc-go's: GOAWAY(2^31-1), PING,
        GOAWAY(last stream id)); in-flight calls may finish within ``grace`` seconds (None =
        no limit), then the connection is closed and what is left is cancelled.

        The listener keeps accepting (clients reconnect, as after a server's max connection
        age); combine with :meth:`refuse_new_connections` or use ``stop(grace)`` to go away.
        """
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + grace
        conns = list(self._connections)
        if conns:
            await asyncio.gather(*(c.drain(deadline) for c in conns))

    def abort_connections(self) -> None:
        """Close every open connection abruptly (TCP RST via SO_LINGER 0); in-flight calls
        fail UNAVAILABLE on the client and their handlers are cancelled."""
        for conn in list(self._connections):
            conn.abort()

    def refuse_new_connections(self, refuse: bool = True) -> None:
        """Close the listening socket (connection attempts are refused) or, with False,
        listen again on the same port / path. Open connections are not touched."""
        if refuse:
            self._refusing = True
            self._listener.close()
            return
        if not self._refusing or not self._running:
            return
        self._refusing = False
        # Listening (the kernel queues connections) from here on.
        self._listener.reopen(lambda: self._running and not self._refusing)

    def reset_counters(self) -> None:
        """Zero :attr:`calls` and :attr:`connections_accepted`."""
        self.calls.clear()
        self.connections_accepted = 0

    # -- ServerHost: called by the connections ------------------------------------------

    def connection_opened(self, conn: ServerConnection) -> None:
        """A connection was accepted (counted in :attr:`connections_accepted`)."""
        self.connections_accepted += 1
        self._connections.add(conn)

    def connection_closed(self, conn: ServerConnection) -> None:
        """A connection is gone."""
        self._connections.discard(conn)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a call's handler as a task; :meth:`stop` cancels what is left."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- for the built-in services -------------------------------------------------------

    def _watch_health(self, service: str) -> asyncio.Queue[int]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._health_watchers.setdefault(service, set()).add(queue)
        return queue

    def _unwatch_health(self, service: str, queue: asyncio.Queue[int]) -> None:
        watchers = self._health_watchers.get(service)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del self._health_watchers[service]

    def _health_value(self, service: str) -> int | None:
        return self._health.get(service)

"""Locust users that call gRPC through grpc_lite: ``GrpcUser``.

Locust runs its users as gevent greenlets; grpc_lite is asyncio. Each Locust process
(master, worker or standalone) runs one asyncio event loop in a greenlet of its own, beside
the users in gevent's thread: the loop uses an epoll of the *original* ``select.epoll``
(gevent's monkeypatching removes it) and, whenever it has nothing to do, parks in gevent's
hub until that epoll is readable, a user hands it a call, or its next timer is due. A user
greenlet starts its call on the loop and waits on a ``gevent.event.AsyncResult``, so the
other users keep running; nothing crosses threads and grpc_lite itself is not patched.

Each call fires Locust's ``events.request`` (``request_type="grpc"``, the method path as
the name, response time in ms, the response's serialized size, the exception if it
failed; a call in flight when Locust stops its user is reported when it ends), so
Locust's web UI, CSV output and distributed aggregation work unchanged::

    from locust import task
    from grpc_lite.contrib.locust import GrpcUser
    from helloworld_pb2 import DESCRIPTOR, HelloRequest

    class Greeter(GrpcUser):
        host = "localhost:50051"          # or --host; any grpc_lite target
        service = DESCRIPTOR.services_by_name["Greeter"]

        @task
        def hello(self) -> None:
            self.stub.SayHello(HelloRequest(name="locust"))

``self.stub`` has one blocking method per RPC of ``service`` (unary and client-streaming
methods return the response; server- and bidi-streaming ones return the list of
responses). ``self.call(path, request)`` makes a unary call on raw bytes or with
``request_serializer`` / ``response_deserializer``. ``self.run_async(coro_fn)`` runs any
``async def coro_fn(channel)`` on the loop (no event fired). Class attributes:
``channel_options``, ``service_config``, ``secure`` with ``root_certificates``,
``timeout`` (seconds per call, default 30), ``shared_channel`` (default True: one channel
per target in the process; False: one per user). Do not name a task ``call`` or
``run_async``: those are GrpcUser's.
"""

from __future__ import annotations

import asyncio
import select
import selectors
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import gevent
import gevent.event
import gevent.monkey
import gevent.select
from locust import User

import grpc_lite

__all__ = ["GrpcUser", "LoopRunner"]


def _original(module: str, name: str) -> Any:
    if gevent.monkey.is_module_patched(module):
        return gevent.monkey.get_original(module, name)
    return getattr(sys.modules.get(module) or __import__(module), name)


class _EpollSelector(selectors._PollLikeSelector):
    """CPython's EpollSelector on the original ``select.epoll``."""

    # What _PollLikeSelector provides (CPython's selectors.py, 3.11 to 3.13; not in
    # typeshed). 3.13 has no _key_from_fd: only the map is used.
    _selector: Any
    _fd_to_key: dict[int, selectors.SelectorKey]

    _selector_cls = _original("select", "epoll")
    _EVENT_READ = select.EPOLLIN
    _EVENT_WRITE = select.EPOLLOUT

    def fileno(self) -> int:
        return int(self._selector.fileno())

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            wait = -1.0
        elif timeout <= 0:
            wait = 0.0
        else:
            wait = -(-timeout * 1e3 // 1) * 1e-3  # whole ms, rounded up (epoll_wait)
        max_ev = max(len(self._fd_to_key), 1)
        ready: list[tuple[selectors.SelectorKey, int]] = []
        try:
            events = self._selector.poll(wait, max_ev)
        except InterruptedError:
            return ready
        for fd, event in events:
            mask = 0
            if event & ~select.EPOLLIN:
                mask |= selectors.EVENT_WRITE
            if event & ~select.EPOLLOUT:
                mask |= selectors.EVENT_READ
            key = self._fd_to_key.get(fd)
            if key:
                ready.append((key, mask & key.events))
        return ready

    def close(self) -> None:
        self._selector.close()
        super().close()


class _GeventEpollSelector(_EpollSelector):
    """The loop's epoll, waited on cooperatively: while the loop has nothing to do, its
    greenlet waits in gevent's hub (``gevent.select``) for the epoll descriptor to turn
    readable (a socket, or the loop's self-pipe when a user hands it work) or its next
    timer; other greenlets run meanwhile. When it has work it still yields once per
    iteration, so the users keep running."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = False

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            gevent.sleep(0)  # let the users run, then come back
            return ready or super().select(0)
        self.waiting = True
        try:
            gevent.select.select([self.fileno()], [], [], timeout)
        finally:
            self.waiting = False
        return super().select(0)


class LoopRunner:
    """One asyncio loop per process, run by a greenlet in gevent's own thread.

    Who may call: greenlets of the process's main thread. ``run(factory)`` starts
    ``factory()`` on the loop and parks the calling greenlet until it is done.
    """

    _instance: ClassVar[LoopRunner | None] = None

    def __init__(self) -> None:
        self._selector = _GeventEpollSelector()
        self.loop = asyncio.SelectorEventLoop(self._selector)
        self._greenlet = gevent.spawn(self.loop.run_forever)

    @classmethod
    def get(cls) -> LoopRunner:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def run(self, factory: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``factory()`` on the loop; the calling greenlet waits for its result."""
        return self.submit(factory).get()

    def submit(self, factory: Callable[[], Awaitable[Any]]) -> gevent.event.AsyncResult:
        """Start ``factory()`` on the loop; its result is set on the returned AsyncResult."""
        result: gevent.event.AsyncResult = gevent.event.AsyncResult()

        def done(task: asyncio.Future[Any]) -> None:
            if task.cancelled():
                result.set_exception(asyncio.CancelledError())
            elif task.exception() is not None:
                result.set_exception(task.exception())
            else:
                result.set(task.result())

        def start() -> None:
            try:
                task = asyncio.ensure_future(factory())
            except BaseException as exc:
                result.set_exception(exc)
                return
            task.add_done_callback(done)

        self.loop.call_soon(start)
        self._poke()
        return result

    def start(self, fn: Callable[[gevent.event.AsyncResult], None]) -> gevent.event.AsyncResult:
        """Call ``fn(result)`` on the loop; ``fn`` (or what it starts) sets ``result``."""
        result: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self.loop.call_soon(fn, result)
        self._poke()
        return result

    def _poke(self) -> None:
        """Wake the loop if it waits in the hub (work queued while it runs is run anyway)."""
        if self._selector.waiting:
            self._selector.waiting = False
            self.loop.call_soon_threadsafe(_nothing)  # writes to the loop's self-pipe


def _nothing() -> None:
    pass


def _size(message: Any) -> int:
    if isinstance(message, (bytes, bytearray, memoryview)):
        return len(message)
    byte_size = getattr(message, "ByteSize", None)
    return int(byte_size()) if byte_size is not None else 0


class _Method:
    """A blocking call of one method that fires Locust's request event."""

    def __init__(
        self,
        user: GrpcUser,
        path: str,
        kind: str,
        serializer: Callable[[Any], bytes] | None,
        deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self._user = user
        self.path = path
        self.kind = kind
        self._serializer = serializer
        self._deserializer = deserializer
        self._callables: weakref.WeakKeyDictionary[grpc_lite.Channel, Any] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        name: str | None = None,
    ) -> Any:
        user = self._user
        kind = self.kind
        deadline = timeout if timeout is not None else user.timeout

        started = time.perf_counter()
        if kind == "unary_unary":
            # The hot path: no task, no coroutine; the call's done-callback sets the result.
            def begin(result: gevent.event.AsyncResult) -> None:
                try:
                    call = self._callable()(request, timeout=deadline, metadata=metadata)
                except BaseException as exc:
                    result.set_exception(exc)
                    return
                call.add_done_callback(lambda done: _settle(done, result))

            pending = user._runner.start(begin)
            return user._timed(name or self.path, started, pending)

        async def call() -> tuple[Any, int]:
            mc = self._callable()
            if kind == "stream_unary":
                reply = await mc(iter(request), timeout=deadline, metadata=metadata)
                return reply, _size(reply)
            requests = request if kind == "unary_stream" else iter(request)
            replies = [r async for r in mc(requests, timeout=deadline, metadata=metadata)]
            return replies, sum(_size(r) for r in replies)

        return user._timed(name or self.path, started, user._runner.submit(call))

    def _callable(self) -> Any:
        """The multi-callable on the user's channel (one per channel: headers encoded once).
        Runs on the loop."""
        channel = self._user._channel()
        mc = self._callables.get(channel)
        if mc is None:
            factory = getattr(channel, self.kind)
            mc = self._callables[channel] = factory(self.path, self._serializer, self._deserializer)
        return mc


def _settle(call: Any, result: gevent.event.AsyncResult) -> None:
    """A finished unary call's outcome onto ``result`` (the awaitable protocol: awaiting a
    finished call returns, or raises, without suspending)."""
    step = call.__await__()
    try:
        step.send(None)
    except StopIteration as stop:
        result.set((stop.value, _size(stop.value)))
        return
    except BaseException as exc:
        result.set_exception(exc)
        return
    step.close()
    result.set_exception(RuntimeError("a finished call suspended when awaited"))


class _SyncStub:
    def __init__(self, user: GrpcUser, service: Any) -> None:
        from google.protobuf import message_factory

        for method in service.methods:
            request_cls = message_factory.GetMessageClass(method.input_type)
            response_cls = message_factory.GetMessageClass(method.output_type)
            if method.client_streaming and method.server_streaming:
                kind = "stream_stream"
            elif method.client_streaming:
                kind = "stream_unary"
            elif method.server_streaming:
                kind = "unary_stream"
            else:
                kind = "unary_unary"
            setattr(
                self,
                method.name,
                _Method(
                    user,
                    f"/{service.full_name}/{method.name}",
                    kind,
                    request_cls.SerializeToString,
                    response_cls.FromString,
                ),
            )


class GrpcUser(User):
    """A Locust user whose tasks make gRPC calls with grpc_lite (see the module doc)."""

    abstract = True
    #: A protobuf ServiceDescriptor: ``self.stub`` gets one method per RPC.
    service: Any = None
    channel_options: ClassVar[list[tuple[str, Any]]] = []
    service_config: ClassVar[dict[str, Any] | None] = None
    secure: ClassVar[bool] = False
    root_certificates: ClassVar[bytes | None] = None
    timeout: ClassVar[float | None] = 30.0
    shared_channel: ClassVar[bool] = True

    _shared: ClassVar[dict[tuple[Any, ...], grpc_lite.Channel]] = {}

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if not self.host:
            raise ValueError(f"{type(self).__name__}: set host (or pass --host) to a target")
        self.target: str = self.host
        self._runner = LoopRunner.get()
        self._own_channel: grpc_lite.Channel | None = None
        # Which shared channel this user's calls use (made once: every call looks it up).
        self._channel_key = (
            self.target,
            self.secure,
            repr(self.channel_options),
            repr(self.service_config),
        )
        self._methods: dict[tuple[Any, ...], _Method] = {}
        self.stub: Any = _SyncStub(self, self.service) if self.service is not None else None

    # -- the channel, on the loop thread --------------------------------------------

    def _make_channel(self) -> grpc_lite.Channel:
        if self.secure:
            creds = grpc_lite.ssl_channel_credentials(self.root_certificates)
            return grpc_lite.secure_channel(
                self.target, creds, self.channel_options, service_config=self.service_config
            )
        return grpc_lite.insecure_channel(
            self.target, self.channel_options, service_config=self.service_config
        )

    def _channel(self) -> grpc_lite.Channel:
        """The user's channel (made on first use). Runs on the loop."""
        if not self.shared_channel:
            if self._own_channel is None:
                self._own_channel = self._make_channel()
            return self._own_channel
        key = self._channel_key
        channel = GrpcUser._shared.get(key)
        if channel is None:
            channel = GrpcUser._shared[key] = self._make_channel()
        return channel

    def on_stop(self) -> None:
        channel = self._own_channel
        if channel is not None:
            self._own_channel = None
            self._runner.run(lambda: channel.close())

    # -- calls ----------------------------------------------------------------------

    def _timed(self, name: str, started: float, pending: gevent.event.AsyncResult) -> Any:
        try:
            pending.get()
        except gevent.GreenletExit:
            # Locust stopped this user mid-call: the call still ends on the loop; report it
            # then, from the hub, so Locust's totals match what the server saw.
            pending.rawlink(lambda done: self._report(name, started, done))
            raise
        except BaseException:
            pass
        return self._report(name, started, pending)

    def _report(self, name: str, started: float, done: gevent.event.AsyncResult) -> Any:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        reply: Any = None
        length = 0
        exception = done.exception
        if exception is None:
            reply, length = done.value
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=elapsed_ms,
            response_length=length,
            exception=exception,
            context=self.context(),
            url=self.host,
        )
        return reply

    def call(
        self,
        path: str,
        request: Any,
        *,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        timeout: float | None = None,
        metadata: Any = None,
        name: str | None = None,
    ) -> Any:
        """A unary call of ``path`` (``/pkg.Service/Method``); the response, or None when
        it failed (the failure is reported to Locust)."""
        key = (path, request_serializer, response_deserializer)
        method = self._methods.get(key)
        if method is None:
            method = self._methods[key] = _Method(
                self, path, "unary_unary", request_serializer, response_deserializer
            )
        return method(request, timeout=timeout, metadata=metadata, name=name)

    def run_async(self, coro_fn: Callable[[grpc_lite.Channel], Awaitable[Any]]) -> Any:
        """Run ``await coro_fn(channel)`` on the loop thread; its result (no event fired)."""

        async def go() -> Any:
            return await coro_fn(self._channel())

        return self._runner.run(go)

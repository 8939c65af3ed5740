"""Multi-callables and call objects with grpc.aio's API (L5).

grpc-go counterpart: ``clientStream`` in stream.go (attempts, transparent retry).

A call owns its deadline timer, its waiters and its request replay buffer; each
attempt is one :class:`~._transport.ClientStream`.  The unary path is flat: the
request is serialized and framed once, the pick is synchronous when a READY
transport exists, HEADERS and DATA leave in one socket write, and the caller
awaits one future.  No task is created unless the pick has to wait.
"""

import asyncio
import enum
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from . import _codec
from ._attempts import AttemptRunner
from ._call_config import apply_method_config, configure_late, select_config
from ._credentials import (
    INSECURE_CALL_CREDENTIALS,
    PLUGIN_FAILED,
    AuthMetadataContext,
    CallCredentials,
    PluginError,
    auth_context,
    fetch_metadata,
)
from ._deadlines import DeadlineGroup, group_for
from ._picker import Picked, pick_done
from ._transport import (
    DETACHED,
    SEND_HIGH_WATER,
    ClientStream,
    TracedClientStream,
    encode_sized,
    encode_timeout_field,
)
from .balancer import DroppedRpcError, PickInfo
from .metadata import Metadata, MetadataType, encode_outgoing, encode_timeout
from .resolver import RpcConfig, RpcInfo
from .status import RpcError, StatusCode, UsageError

if TYPE_CHECKING:
    from ._observability import AttemptTracer, CallTracer, MethodObserver
    from ._options import ChannelOptions
    from ._retry import RetryThrottler
    from .resolver import ConfigSelector
    from .service_config import MethodConfig

log = logging.getLogger("grpc_lite")

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
Serializer = Callable[[Any], bytes]
Deserializer = Callable[[bytes], Any]


class _EOFType:
    """End of a response stream (grpc.aio: ``grpc.aio.EOF``)."""

    _instance: "_EOFType | None" = None

    def __new__(cls) -> "_EOFType":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<grpc_lite.EOF>"

    def __bool__(self) -> bool:
        return False


EOF = _EOFType()


class Compression(enum.IntEnum):
    """Message compression (grpc.Compression values)."""

    NoCompression = 0
    Deflate = 1
    Gzip = 2


_ENCODING_NAMES = {
    Compression.NoCompression: None,
    Compression.Deflate: "deflate",
    Compression.Gzip: "gzip",
}


def compression_encoding(compression: "Compression | None") -> str | None:
    if compression is None:
        return None
    try:
        return _ENCODING_NAMES[Compression(compression)]
    except ValueError:
        raise ValueError(f"unknown compression {compression!r}") from None


class CallContext(Protocol):
    """What a call needs from its channel (implemented by Channel)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def options(self) -> "ChannelOptions": ...

    def check_open(self) -> None: ...

    @property
    def default_compression(self) -> Compression | None: ...

    @property
    def config_generation(self) -> int: ...

    @property
    def retry_throttler(self) -> "RetryThrottler | None": ...

    retry_buffer_used: int
    attempts_on_new_hosts: int
    attempts_on_previous_hosts: int

    def method_config(self, path: str) -> "MethodConfig | None": ...

    @property
    def config_selector(self) -> "ConfigSelector | None":
        """The `ConfigSelector` of the resolver state in force, or None (most channels)."""

    @property
    def config_known(self) -> bool: ...

    async def wait_for_config(self) -> None: ...

    def record_event(self, subject: str, description: str) -> None: ...

    def pick(self, info: PickInfo) -> Picked | None:
        """A READY pick now, or None; raises `DroppedRpcError` when the balancer dropped
        the RPC."""

    async def wait_for_pick(self, info: PickInfo, wait_for_ready: bool) -> Picked: ...

    def call_started(self, call: "Call") -> None: ...

    def call_finished(self, call: "Call", code: StatusCode, picked: Picked | None) -> None:
        """``call`` ended with ``code``; ``picked``: its latest attempt's pick, for the
        subchannel's counts (the call has run the ``on_done`` of every pick it made)."""


class Method:
    """Per-method constants, computed once per multi-callable."""

    __slots__ = (
        "_loop",
        "_mc",
        "_mc_generation",
        "auth_context",
        "call_credentials",
        "channel",
        "deadline_groups",
        "defs_block",
        "defs_size",
        "deserializer",
        "observer",
        "path",
        "pick_info",
        "pseudo_block",
        "pseudo_size",
        "routed",
        "rpc_info",
        "serializer",
    )

    def __init__(
        self,
        channel: CallContext,
        path: str,
        *,
        scheme: str,
        authority: str,
        user_agent: str,
        serializer: Serializer | None,
        deserializer: Deserializer | None,
        auth_scheme: str | None = None,
        call_credentials: CallCredentials | None = None,
        observer: "MethodObserver | None" = None,
    ) -> None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"method must be a full path '/package.Service/Method', got {path!r}")
        self.channel = channel
        self.path = path
        # The observability plugins' view of this method (None: no plugin on the channel).
        self.observer = observer
        # Call credentials: the channel's (None: none), and the plugins' context, None when
        # the channel may not carry call credentials (plaintext, not local).
        self.call_credentials = call_credentials
        self.auth_context: AuthMetadataContext | None = (
            auth_context(auth_scheme, authority, path) if auth_scheme is not None else None
        )
        self.pick_info = PickInfo(method=path)
        # A config selector's view of a call without metadata (gRFC A31), made once, and the
        # last (RpcConfig, PickInfo) `select_config` made for such a call: reused while the
        # selector returns that very RpcConfig (the xds selector returns one per route).
        self.rpc_info = RpcInfo(method=path)
        self.routed: tuple[RpcConfig, PickInfo] | None = None
        # The channel's event loop, once a call on this method bound it (it never changes).
        self._loop: asyncio.AbstractEventLoop | None = None
        # The pending deadlines of this method's calls, by timeout (see _deadlines).
        self.deadline_groups: dict[float, DeadlineGroup] = {}
        self._mc: MethodConfig | None = None
        self._mc_generation = -1
        self.serializer = serializer
        self.deserializer = deserializer
        # PROTOCOL-HTTP2.md, Requests: pseudo-headers first, then grpc-timeout (per
        # call), then the call-definition headers, then custom metadata.
        pseudo = [
            (":method", "POST"),
            (":scheme", scheme),
            (":path", path),
            (":authority", authority),
        ]
        defs = [
            ("te", "trailers"),
            ("content-type", "application/grpc"),
            ("grpc-accept-encoding", _codec.ACCEPT_ENCODING),
            ("user-agent", user_agent),
        ]
        self.pseudo_block, self.pseudo_size = encode_sized(pseudo)
        self.defs_block, self.defs_size = encode_sized(defs)

    def method_config(self) -> "MethodConfig | None":
        """The service config's entry for this method, cached per config generation."""
        generation = self.channel.config_generation
        if generation != self._mc_generation:
            self._mc = self.channel.method_config(self.path)
            self._mc_generation = generation
        return self._mc


# The grpc-encoding field per compression, encoded, with its size in the header list.
_GRPC_ENCODING_FIELDS = {enc: encode_sized([("grpc-encoding", enc)]) for enc in ("gzip", "deflate")}


class Call:
    """Base of the four call kinds: grpc.aio's ``Call`` API.

    A call owns what the application sees: its deadline, its waiters, the attempt it reads
    from (``_stream``), its status and the single completion path, `_finish`. The unary fast
    path starts its one attempt itself; any call that may need another attempt hands them to
    an `AttemptRunner` (``_runner``; see `grpc_lite._attempts`).

    Who may call: coroutines on the channel's loop.  The ``stream_*`` methods are
    called synchronously by the transport.
    """

    __slots__ = (
        "_attempt",
        "_cancelled",
        "_code",
        "_config_pending",
        "_creds",
        "_deadline",
        "_deadline_group",
        "_details",
        "_done_callbacks",
        "_done_waiters",
        "_encoding",
        "_half_closed",
        "_initial_metadata",
        "_loop",
        "_max_receive",
        "_max_send",
        "_md_block",
        "_md_size",
        "_method",
        "_on_committed",
        "_pick_info",
        "_picked",
        "_request_frame",
        "_request_task",
        "_response",
        "_runner",
        "_stream",
        "_tracer",
        "_trailing_metadata",
        "_unary_request",
        "_unary_response",
        "_user_md",
        "_wait_for_ready",
        "_waiters",
        "_wfr_given",
    )

    _request_frame: bytes
    """The framed request of a unary-request call (set by those kinds, which alone read it)."""

    def __init__(
        self,
        method: Method,
        *,
        timeout: float | None,
        metadata: MetadataType | Metadata | None,
        wait_for_ready: bool | None,
        compression: Compression | None,
        unary_request: bool,
        unary_response: bool,
        credentials: CallCredentials | None = None,
    ) -> None:
        ctx = method.channel
        # Hot path: the method's copy of the channel's loop (no property call).
        loop = method._loop
        if loop is None:
            loop = method._loop = ctx.loop
        self._loop = loop
        self._method = method
        # The observability plugins' tracer of this call, and of its attempt being picked
        # (both None without a plugin: then nothing else is done for them).
        observer = method.observer
        self._tracer: CallTracer | None = observer.start_call() if observer is not None else None
        self._attempt: AttemptTracer | None = None
        self._unary_request = unary_request
        self._unary_response = unary_response
        if metadata:
            self._md_block, self._md_size = encode_sized(encode_outgoing(metadata))
            # What the balancer (and a config selector) is told of the call: its metadata
            # as the application gave it, validated just above.
            self._pick_info = PickInfo(
                method=method.path, metadata=tuple([(k, v) for k, v in metadata])
            )
        else:
            self._md_block = b""
            self._md_size = 0
            self._pick_info = method.pick_info
        # Call credentials whose plugins must run (per attempt, `_call_credentials`); fixed
        # ones (access tokens) join the call's metadata here, once.
        self._creds: CallCredentials | None = None
        if credentials is not None:
            static = credentials._static
            if static is not None:
                encoded = credentials._encoded
                if encoded is None:
                    encoded = credentials._encoded = encode_sized(static)
                self._md_block += encoded[0]
                self._md_size += encoded[1]
            else:
                self._creds = credentials
                self._user_md = (self._md_block, self._md_size)
        opts = ctx.options
        self._encoding = compression_encoding(compression) if compression is not None else None
        self._max_send = opts.max_send_message_length
        self._max_receive = opts.max_receive_message_length
        self._runner: AttemptRunner | None = None
        # The method config comes from the service config in force.  Before the
        # channel's first resolver result it is not known yet: the call waits for it
        # before picking, as grpc-go does (waitForResolvedAddrs).
        self._config_pending = not ctx.config_known
        self._wfr_given = wait_for_ready is not None
        self._wait_for_ready = True if wait_for_ready else False  # noqa: SIM210 - no call
        # RpcConfig.on_committed of the resolver's config selector, until it has run.
        self._on_committed: Callable[[], None] | None = None
        failure: RpcError | None = None
        if not self._config_pending:
            selector = ctx.config_selector
            if selector is None:
                # Hot path: Method.method_config's cache check, inline.
                mc = (
                    method._mc
                    if method._mc_generation == ctx.config_generation
                    else method.method_config()
                )
            else:
                mc, failure = select_config(self, selector)
            if mc is not None:
                timeout = apply_method_config(self, mc, timeout)
        self._stream: ClientStream | None = None
        self._code: StatusCode | None = None
        self._details = ""
        self._initial_metadata: Metadata | None = None
        self._trailing_metadata: Metadata | None = None
        self._cancelled = False
        self._waiters: list[asyncio.Future[None]] | None = None
        self._done_waiters: list[asyncio.Future[None]] | None = None
        self._done_callbacks: list[Callable[[Call], None]] | None = None
        self._picked: Picked | None = None
        self._request_task: asyncio.Task[None] | None = None
        self._response: Any = None
        # (_request_frame: set by the unary-request kinds, the only ones that read it)
        self._half_closed = False
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"timeout must be a number of seconds, not {timeout!r}")
            groups = method.deadline_groups
            group = groups.get(timeout) or group_for(groups, timeout, loop)
            group.add(self, deadline := loop.time() + timeout)
            self._deadline: float | None = deadline
            self._deadline_group: DeadlineGroup | None = group
        else:
            self._deadline = None
            self._deadline_group = None
        ctx.call_started(self)
        if failure is not None:
            self._finish(failure.code(), failure.details() or "", None)

    # ------------------------------------------------------------------ configuration

    def _committed(self) -> None:
        """The call committed to an attempt, or ended: run the selector's ``on_committed``
        (once: it is dropped first)."""
        callback = self._on_committed
        if callback is not None:
            self._on_committed = None
            try:
                callback()
            except Exception:
                log.exception("grpc_lite: a config selector's on_committed callback raised")

    def _dropped(self, exc: RpcError) -> None:
        """The balancer dropped the call (`DroppedRpcError` from the pick of its next
        attempt): it fails at once, wait-for-ready or not, and nothing retries it."""
        code, details = exc.code(), exc.details() or ""
        attempt = self._attempt
        if attempt is not None:
            self._attempt = None
            attempt.end(code, details)
        self._finish(code, details, None)

    def _configure(self, started: float, frames: Sequence[bytes]) -> bool:
        """The service config arrived after the call started (``started``): apply it as of
        then (`_call_config.configure_late`); False when that failed the call."""
        return configure_late(self, started, frames)

    async def _call_credentials(self) -> str | None:
        """Run the call credentials' plugins for the next attempt and put their metadata in
        its headers; the failure (the attempt fails UNAVAILABLE), or None.

        Awaited in the runner's pick task, so the deadline or a cancel cancels a plugin."""
        creds, context = self._creds, self._method.auth_context
        assert creds is not None and context is not None
        try:
            pairs = await fetch_metadata(creds, context)
        except PluginError as exc:
            return PLUGIN_FAILED + str(exc)
        block, size = self._user_md
        if pairs:
            more, more_size = encode_sized(pairs)
            block += more
            size += more_size
        self._md_block, self._md_size = block, size
        return None

    # ------------------------------------------------------------------ attempts

    def _start_first(self) -> None:
        """Start the call: its one attempt at once when nothing can need another (a unary
        request, no retry or hedging policy, no call credentials, a READY pick), else the
        attempts of an `AttemptRunner`."""
        runner = self._runner
        if runner is None:
            if self._unary_request and not self._config_pending and self._creds is None:
                m = self._method
                tracer = self._tracer
                if tracer is not None and self._attempt is None:  # (A66: before its pick)
                    self._attempt = tracer.start_attempt(False)
                try:
                    picked = m.channel.pick(self._pick_info)
                except DroppedRpcError as exc:
                    self._dropped(exc)
                    return
                if picked is not None:
                    self._start_on(picked)
                    return
            runner = self._runner = AttemptRunner(self, None, None)
        runner.start()

    def _start_on(self, picked: Picked) -> None:
        """Open an attempt's stream on the picked transport and queue the request on it,
        so that HEADERS and DATA leave in one write."""
        transport, sc, _ = picked
        sc.calls_started += 1
        previous = self._picked
        if previous is not None:  # an earlier attempt of this call failed there
            previous[1].calls_failed += 1
        self._picked = picked
        m = self._method
        runner = self._runner
        size = m.pseudo_size + m.defs_size + self._md_size
        timeout_block = b""
        if self._deadline is not None:
            remaining = self._deadline - self._loop.time()
            if remaining <= 0:
                # Already past: fail locally, send nothing (as grpc-go's http2_client does).
                # The pick is done with it: a runner tracks only the attempts it started,
                # the call's own pick is done by _finish.
                if runner is not None:
                    pick_done(picked[2], StatusCode.DEADLINE_EXCEEDED)
                self._finish(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", None)
                return
            timeout_block, timeout_size = encode_timeout_field(encode_timeout(remaining))
            size += timeout_size
        enc_block = b""
        if self._encoding is not None:
            enc_block, enc_size = _GRPC_ENCODING_FIELDS[self._encoding]
            size += enc_size
        block = m.pseudo_block + timeout_block + enc_block + m.defs_block
        if runner is not None and runner.attempts > 1:
            # A6 §Exposed Retry Metadata: grpc-previous-rpc-attempts on every retry and hedge.
            attempts_block, attempts_size = encode_sized(
                [("grpc-previous-rpc-attempts", str(runner.attempts - 1))]
            )
            block += attempts_block
            size += attempts_size
        block += self._md_block
        attempt = self._attempt
        if attempt is None:
            stream = ClientStream(
                self,
                block,
                size,
                max_receive=self._max_receive,
                unary_response=self._unary_response,
            )
        else:  # a traced attempt: its trace context goes out, its stream reports to it
            self._attempt = None
            fields = attempt.headers()
            if fields:
                more, more_size = encode_sized(fields)
                block += more
                size += more_size
            stream = TracedClientStream(
                attempt,
                self,
                block,
                size,
                max_receive=self._max_receive,
                unary_response=self._unary_response,
            )
        if runner is None:  # the call's only attempt
            self._stream = stream
            stream.send(self._request_frame, True)
        else:
            runner.started(stream)
        transport.start_stream(stream)
        if self._waiters:
            self._notify()

    # ------------------------------------------------------------------ StreamListener

    def stream_headers(self, stream: ClientStream) -> None:
        runner = self._runner
        if runner is not None:
            runner.headers(stream)  # response headers commit the call
        elif self._on_committed is not None and stream is self._stream:
            self._committed()  # the only attempt's headers: no transparent retry any more
        if stream is self._stream and self._waiters:
            self._notify()

    def stream_message(self, stream: ClientStream) -> None:
        if stream is not self._stream:
            return
        if self._unary_response:
            # Parse the single response as it arrives, so a bad one cancels the
            # stream at once (statuscodes.md); the status still decides the result.
            # (A unary stream never holds credit back, so there is none to return here.)
            raw = stream.messages.popleft()
            des = self._method.deserializer
            if des is None:
                self._response = raw
                return
            try:
                self._response = des(raw)
            except Exception as exc:
                self._finish(
                    StatusCode.INTERNAL, f"failed to deserialize the response: {exc}", None
                )
            return
        self._notify()

    def stream_writable(self, stream: ClientStream) -> None:
        if stream is self._stream:
            self._notify()

    def stream_done(self, stream: ClientStream) -> None:
        if self._code is not None:
            return
        runner = self._runner
        if runner is None:
            if stream is not self._stream:
                return
            if stream.unprocessed:
                # The server never saw the only attempt: a runner takes over for a
                # transparent retry (A6 §Transparent Retries).
                runner = self._runner = AttemptRunner(self, None, None)
                if not runner.take_over(stream):
                    return
        elif not runner.attempt_done(stream):
            return  # retried, hedged, or not the call's attempt
        code = stream.code
        assert code is not None
        details = stream.details
        # CANCELLED past the deadline is DEADLINE_EXCEEDED (PROTOCOL-HTTP2.md, Client Cancellation).
        if (
            code is StatusCode.CANCELLED
            and self._deadline is not None
            and self._loop.time() >= self._deadline
        ):
            code, details = StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"
        self._finish(code, details, stream.trailing_metadata)

    # ------------------------------------------------------------------ completion

    def _finish(self, code: StatusCode, details: str, trailing: Metadata | None) -> None:
        if self._code is not None:
            return
        self._code = code
        self._details = details
        self._trailing_metadata = trailing
        stream = self._stream
        if stream is not None:
            if stream.code is None:
                stream.cancel(code, details)
            self._initial_metadata = stream.initial_metadata
            stream.listener = DETACHED  # no call <-> stream cycle left for the GC
        runner = self._runner
        if runner is not None:
            self._runner = None  # no call <-> runner cycle left for the GC either
            runner.close(code, details)  # it runs the on_done of its attempts' picks
        else:
            picked = self._picked
            if picked is not None:
                # The only attempt's pick is done with the call's status (grpc-go:
                # csAttempt.finish with the call's error, balancer.DoneInfo).
                result = picked[2]
                if result.on_done is not None:
                    pick_done(result, code)
        if self._on_committed is not None:
            self._committed()  # ended before it committed (A31: release the route's config)
        group = self._deadline_group
        if group is not None:
            self._deadline_group = None
            group.discard(self)
        task = self._request_task
        if task is not None:
            self._request_task = None
            if task is not asyncio.current_task():
                task.cancel()
        tracer = self._tracer
        if tracer is not None:  # after every attempt ended (their streams, just above)
            tracer.end(code, details)
        self._method.channel.call_finished(self, code, self._picked)
        done_waiters = self._done_waiters
        if done_waiters:  # _notify_done, inline: every unary call ends here
            self._done_waiters = None
            for fut in done_waiters:
                if not fut.done():
                    fut.set_result(None)
        if self._waiters:
            self._notify()
        callbacks = self._done_callbacks
        if callbacks:
            self._done_callbacks = None
            for cb in callbacks:
                self._loop.call_soon(cb, self)

    def _notify(self) -> None:
        """Wake the waiters for any change (headers, message, writability, completion)."""
        waiters = self._waiters
        if waiters:
            self._waiters = None
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def _wait(self) -> None:
        """Wait for the next change (headers, message, writability, completion)."""
        fut = self._loop.create_future()
        if self._waiters is None:
            self._waiters = [fut]
        else:
            self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            # A cancelled waiting task cancels its RPC (grpc.aio behaviour).
            self.cancel()
            raise

    async def _wait_done(self) -> None:
        """Wait until the call has its final status."""
        # Hot path: one future per awaiting coroutine, woken once.
        while self._code is None:
            fut = self._loop.create_future()
            if self._done_waiters is None:
                self._done_waiters = [fut]
            else:
                self._done_waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                self.cancel()
                raise

    def _on_deadline(self) -> None:
        group = self._deadline_group
        if group is not None:  # (when the group itself ends the call, it is out already)
            self._deadline_group = None
            group.discard(self)
        if self._code is None:
            self._finish(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", None)

    def _error(self) -> RpcError:
        code = self._code
        assert code is not None
        return RpcError(
            code,
            self._details,
            self._initial_metadata or Metadata(),
            self._trailing_metadata or Metadata(),
            f"grpc_lite: {code.name}: {self._details}",
        )

    def _compressed_messages_received(self) -> int:
        """Messages of the committed attempt that arrived with the compressed flag set
        (grpc_lite's interop client checks the server_compressed_* cases with it)."""
        stream = self._stream
        return 0 if stream is None else stream.compressed_messages_received

    def _raise_if_failed(self) -> None:
        if self._cancelled:
            raise asyncio.CancelledError()
        if self._code is not StatusCode.OK:
            raise self._error()

    # ------------------------------------------------------------------ grpc.aio Call API

    def cancel(self) -> bool:
        if self._code is not None:
            return False
        self._cancelled = True
        self._finish(StatusCode.CANCELLED, "Locally cancelled by application!", None)
        return True

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._code is not None

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._loop.time())

    def add_done_callback(self, callback: Callable[["Call"], None]) -> None:
        if self._code is not None:
            self._loop.call_soon(callback, self)
        elif self._done_callbacks is None:
            self._done_callbacks = [callback]
        else:
            self._done_callbacks.append(callback)

    async def initial_metadata(self) -> Metadata:
        while self._code is None and (self._stream is None or not self._stream.headers_received):
            await self._wait()
        stream = self._stream
        if stream is not None and stream.initial_metadata is not None:
            return stream.initial_metadata
        return self._initial_metadata or Metadata()

    async def trailing_metadata(self) -> Metadata:
        await self._wait_done()
        return self._trailing_metadata or Metadata()

    async def code(self) -> StatusCode:
        await self._wait_done()
        assert self._code is not None
        return self._code

    async def details(self) -> str:
        await self._wait_done()
        return self._details

    async def wait_for_connection(self) -> None:
        """Return once the call is started on a connection (grpc.aio: its metadata was sent)."""
        while self._code is None and self._stream is None:
            await self._wait()
        if self._code is not None and self._code is not StatusCode.OK:
            self._raise_if_failed()

    def debug_error_string(self) -> str:
        return f"grpc_lite: {self._code.name if self._code else 'PENDING'}: {self._details}"

    def __repr__(self) -> str:
        state = self._code.name if self._code is not None else "ACTIVE"
        return f"<{type(self).__name__} {self._method.path} {state}>"

    # ------------------------------------------------------------------ helpers for subclasses

    def _serialize(self, request: Any, compress: bool = True) -> bytes | None:
        """Serialize and frame one request; None (and the call failed) when it can't.

        ``compress=False`` sends this message uncompressed (flag 0) even when the call
        compresses; the receiver handles each message's flag on its own (grpc/grpc
        doc/compression.md, "message-level" compression)."""
        ser = self._method.serializer
        try:
            payload = ser(request) if ser is not None else request
            if not isinstance(payload, (bytes, bytearray, memoryview)):
                raise TypeError(f"request serialized to {type(payload).__name__}, not bytes")
        except Exception as exc:
            self._finish(StatusCode.INTERNAL, f"failed to serialize the request: {exc}", None)
            return None
        limit = self._max_send
        if limit is not None and len(payload) > limit:
            # Over maxRequestMessageBytes (service_config.proto): fail before sending.
            self._finish(
                StatusCode.RESOURCE_EXHAUSTED,
                f"trying to send message larger than max ({len(payload)} vs. {limit})",
                None,
            )
            return None
        if self._encoding is not None and compress:
            return _codec.frame_message(_codec.compress(bytes(payload), self._encoding), True)
        return _codec.frame_message(bytes(payload))

    def _unary_result(self) -> Generator[Any, None, Any]:
        """``await call``: the response, or the failure raised."""
        # Hot path: a plain generator over one future (no coroutine frames); the
        # response was parsed when it arrived.
        while self._code is None:
            fut = self._loop.create_future()
            if self._done_waiters is None:
                self._done_waiters = [fut]
            else:
                self._done_waiters.append(fut)
            try:
                yield from fut
            except asyncio.CancelledError:
                self.cancel()  # a cancelled awaiting task cancels its RPC
                raise
        if self._code is StatusCode.OK and not self._cancelled:
            return self._response
        self._raise_if_failed()


class UnaryUnaryCall(Call, Generic[RequestT, ResponseT]):
    __slots__ = ()

    def __init__(self, method: Method, request: Any, **kwargs: Any) -> None:
        super().__init__(method, unary_request=True, unary_response=True, **kwargs)
        frame = self._serialize(request)
        if frame is not None and self._code is None:
            self._request_frame = frame
            runner = self._runner
            if runner is None and not self._config_pending and self._creds is None:
                # Hot path (_start_first with nothing to decide): pick now.
                tracer = self._tracer
                if tracer is not None:  # the attempt starts before its pick (A66)
                    self._attempt = tracer.start_attempt(False)
                try:
                    picked = method.channel.pick(self._pick_info)
                except DroppedRpcError as exc:
                    self._dropped(exc)
                    return
                if picked is not None:
                    self._start_on(picked)
                    return
            if runner is not None:
                runner.start()
            else:
                self._start_first()

    def __await__(self) -> Generator[Any, None, ResponseT]:
        return self._unary_result()


class _ResponseStreamCall(Call, Generic[ResponseT]):
    """The response half of the server- and bidi-streaming calls: ``read()`` and
    ``async for``, the messages of the attempt the call is committed to."""

    __slots__ = ()

    async def read(self) -> Any:
        return await self._read()

    def __aiter__(self) -> AsyncIterator[ResponseT]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ResponseT]:
        while True:
            msg = await self._read()
            if msg is EOF:
                return
            yield msg

    async def _read(self) -> Any:
        while True:
            stream = self._stream
            if stream is not None and stream.messages:
                raw = stream.take_message()
                assert raw is not None
                return self._deserialize(raw)
            if self._code is not None:
                if self._code is StatusCode.OK and not self._cancelled:
                    return EOF
                self._raise_if_failed()
            await self._wait()

    def _deserialize(self, raw: bytes) -> Any:
        des = self._method.deserializer
        if des is None:
            return raw
        try:
            return des(raw)
        except Exception as exc:
            # statuscodes.md: INTERNAL, the stream is cancelled.
            if self._code is None:
                self._finish(
                    StatusCode.INTERNAL, f"failed to deserialize the response: {exc}", None
                )
            else:
                self._code = StatusCode.INTERNAL
                self._details = f"failed to deserialize the response: {exc}"
            raise self._error() from None


class UnaryStreamCall(_ResponseStreamCall[ResponseT], Generic[RequestT, ResponseT]):
    __slots__ = ()

    def __init__(self, method: Method, request: Any, **kwargs: Any) -> None:
        super().__init__(method, unary_request=True, unary_response=False, **kwargs)
        frame = self._serialize(request)
        if frame is not None and self._code is None:
            self._request_frame = frame
            self._start_first()


class _RequestStreamCall(Call, Generic[RequestT]):
    """The request half of the client- and bidi-streaming calls: ``write()``,
    ``done_writing()`` and a request iterator consumed in a task. Every message goes
    through the call's `AttemptRunner`, which holds it for a replay while it may need one."""

    __slots__ = ()

    def __init__(self, method: Method, requests: Any, **kwargs: Any) -> None:
        super().__init__(method, unary_request=False, **kwargs)
        if self._code is None:  # (the config selector may have failed it)
            self._start_first()
        if requests is not None and self._code is None:
            self._consume_requests(requests)

    async def write(self, request: RequestT, *, compress: bool = True) -> None:
        """Send one request message. ``compress=False`` sends this one uncompressed even
        when the call compresses (grpc_lite only; grpc.aio has no per-message flag)."""
        await self._write(request, compress)

    async def done_writing(self) -> None:
        await self._done_writing()

    async def _write(self, request: Any, compress: bool = True) -> None:
        if self._code is not None:
            if self._code is StatusCode.OK:
                raise asyncio.InvalidStateError("the RPC has already finished")
            self._raise_if_failed()
        if self._half_closed:
            raise UsageError("write() after done_writing()")
        frame = self._serialize(request, compress)
        if frame is None:
            self._raise_if_failed()
            return
        runner = self._runner
        assert runner is not None  # a streaming request always has one (its replay buffer)
        runner.send(frame)
        # Backpressure: wait while too much is queued for the socket.
        while self._code is None:
            stream = self._stream
            queued = stream.send_buffered if stream is not None else runner.replay_size
            if queued <= SEND_HIGH_WATER:
                break
            await self._wait()

    async def _done_writing(self) -> None:
        if self._half_closed or self._code is not None:
            return
        self._half_closed = True
        stream = self._stream
        if stream is not None:
            stream.send(b"", True)
        elif self._runner is not None:
            self._runner.half_close()

    def _consume_requests(self, requests: Iterable[Any] | AsyncIterable[Any]) -> None:
        self._request_task = self._loop.create_task(self._feed(requests))

    async def _feed(self, requests: Iterable[Any] | AsyncIterable[Any]) -> None:
        try:
            if isinstance(requests, AsyncIterable):
                async for request in requests:
                    await self._write(request)
            else:
                for request in requests:
                    await self._write(request)
            await self._done_writing()
        except (RpcError, asyncio.InvalidStateError, asyncio.CancelledError):
            pass
        except Exception as exc:
            self._finish(StatusCode.UNKNOWN, f"exception iterating requests: {exc!r}", None)
        finally:
            if self._request_task is asyncio.current_task():
                self._request_task = None


class StreamUnaryCall(_RequestStreamCall[RequestT], Generic[RequestT, ResponseT]):
    __slots__ = ()

    def __init__(self, method: Method, requests: Any, **kwargs: Any) -> None:
        super().__init__(method, requests, unary_response=True, **kwargs)

    def __await__(self) -> Generator[Any, None, ResponseT]:
        return self._unary_result()


class StreamStreamCall(
    _RequestStreamCall[RequestT], _ResponseStreamCall[ResponseT], Generic[RequestT, ResponseT]
):
    __slots__ = ()

    def __init__(self, method: Method, requests: Any, **kwargs: Any) -> None:
        super().__init__(method, requests, unary_response=False, **kwargs)


def call_credentials(method: Method, credentials: Any) -> CallCredentials | None:
    """The call credentials a call on ``method`` runs: the channel's, then ``credentials``.

    Per-call credentials on a channel that may not carry them raise UsageError before
    anything is built or sent (grpc.aio's check and message)."""
    channel_creds = method.call_credentials
    if credentials is None:
        return channel_creds
    if method.auth_context is None:
        raise UsageError(INSECURE_CALL_CREDENTIALS)
    if not isinstance(credentials, CallCredentials):
        raise TypeError(
            "credentials must be grpc_lite.CallCredentials (from metadata_call_credentials, "
            "access_token_call_credentials or composite_call_credentials), "
            f"not {type(credentials).__name__}"
        )
    return credentials if channel_creds is None else channel_creds + credentials


# (kind, multi-callable's method, request, call kwargs) -> an intercepted call
Intercept = Callable[[str, "Method", Any, dict[str, Any]], Any]


class _MultiCallable:
    """Base of the four multi-callables: ``_kind`` names the call kind, ``_call_class``
    the call object it makes."""

    __slots__ = ("_intercept", "_method")
    _kind = ""
    _call_class: Any = None

    def __init__(self, method: Method, intercept: Intercept | None = None) -> None:
        self._method = method
        self._intercept = intercept

    def _start(
        self,
        request: Any,
        timeout: float | None,
        metadata: MetadataType | Metadata | None,
        credentials: CallCredentials | None,
        wait_for_ready: bool | None,
        compression: Compression | None,
    ) -> Any:
        m = self._method
        ctx = m.channel
        ctx.check_open()
        if compression is None:
            compression = ctx.default_compression
        if self._intercept is not None:
            kwargs = {
                "timeout": timeout,
                "metadata": metadata,
                "credentials": credentials,
                "wait_for_ready": wait_for_ready,
                "compression": compression,
            }
            return self._intercept(self._kind, m, request, kwargs)
        if credentials is not None or m.call_credentials is not None:
            return self._call_class(
                m,
                request,
                timeout=timeout,
                metadata=metadata,
                wait_for_ready=wait_for_ready,
                compression=compression,
                credentials=call_credentials(m, credentials),
            )
        return self._call_class(
            m,
            request,
            timeout=timeout,
            metadata=metadata,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )


class UnaryUnaryMultiCallable(_MultiCallable):
    __slots__ = ()
    _kind = "unary_unary"
    _call_class = UnaryUnaryCall

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: MetadataType | Metadata | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> UnaryUnaryCall[Any, Any]:
        return self._start(request, timeout, metadata, credentials, wait_for_ready, compression)  # type: ignore[no-any-return]


class UnaryStreamMultiCallable(_MultiCallable):
    __slots__ = ()
    _kind = "unary_stream"
    _call_class = UnaryStreamCall

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: MetadataType | Metadata | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> UnaryStreamCall[Any, Any]:
        return self._start(request, timeout, metadata, credentials, wait_for_ready, compression)  # type: ignore[no-any-return]


class StreamUnaryMultiCallable(_MultiCallable):
    __slots__ = ()
    _kind = "stream_unary"
    _call_class = StreamUnaryCall

    def __call__(
        self,
        request_iterator: Any = None,
        timeout: float | None = None,  # positional too, as in grpc.aio
        metadata: MetadataType | Metadata | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> StreamUnaryCall[Any, Any]:
        return self._start(  # type: ignore[no-any-return]
            request_iterator, timeout, metadata, credentials, wait_for_ready, compression
        )


class StreamStreamMultiCallable(_MultiCallable):
    __slots__ = ()
    _kind = "stream_stream"
    _call_class = StreamStreamCall

    def __call__(
        self,
        request_iterator: Any = None,
        timeout: float | None = None,  # positional too, as in grpc.aio
        metadata: MetadataType | Metadata | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> StreamStreamCall[Any, Any]:
        return self._start(  # type: ignore[no-any-return]
            request_iterator, timeout, metadata, credentials, wait_for_ready, compression
        )

"""asyncio edge of the transport: the socket protocol and the dialer.

grpc-go counterpart: ``newHTTP2Client`` (dial, TLS, wait for the server preface).

:class:`Http2Transport` is an ``asyncio.BufferedProtocol`` that feeds a sans-IO
:class:`~._connection.Connection`.  Socket reads land in one buffer shared by the
loop's connections (``_ReadBuffer``) and arrive in ``buffer_updated``; there is no
reader task.  The owner (a subchannel) learns about GOAWAY and
close through the callbacks given to :func:`dial`.
"""

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import cast

from .._proxy import HttpProxy
from . import _frames as fr
from ._connection import Connection, ConnectionState, H2Stream
from ._errors import TransportError
from ._keepalive import Action, Keepalive, KeepaliveParams
from ._proxy import open_tunnel

# The kernel send buffer: large enough that a message of a few MiB is taken by the
# kernel in one send() instead of being copied into asyncio's write buffer and drained
# from there in pieces (each piece a memmove and a heap resize).
_SEND_BUFFER = 4 << 20
# The reused buffer that joins one socket write: its starting size, and the size above
# which it is dropped again after use.
_SEND_BUFFER_INITIAL = 64 * 1024
_SEND_BUFFER_KEEP = 4 << 20
# The shared buffer socket reads land in: what asyncio's own non-buffered reads ask for.
_READ_BUFFER = 256 * 1024
# How long a TLS close may wait for the server's close_notify before the socket is dropped.
_TLS_CLOSE_GRACE = 0.2


log = logging.getLogger("grpc_lite")


class _ReadBuffer(threading.local):
    """The buffer socket reads land in: one per thread (so one per event loop), shared
    by every connection on it.

    asyncio fills a buffered protocol's buffer and hands it over in one synchronous
    step (``get_buffer``, ``recv_into``, ``buffer_updated``), and the receive path
    copies whatever it keeps (partial frames, header blocks, message bodies; nothing
    holds a view of the buffer once ``buffer_updated`` returns), so reads on one loop
    can never overlap in it.  No read allocates, and an idle connection holds no read
    buffer at all.
    """

    def __init__(self) -> None:
        self.view = memoryview(bytearray(_READ_BUFFER))


_read_buffer = _ReadBuffer()


class _WriteBuffer(threading.local):
    """The buffer one socket write is joined in: one per thread, shared by the loop's
    connections (``Http2Transport._send`` fills it and hands it to ``write`` in one
    synchronous step), so idle connections hold none."""

    def __init__(self) -> None:
        self.replace(_SEND_BUFFER_INITIAL)

    def replace(self, size: int) -> None:
        self.view = memoryview(bytearray(size))


_write_buffer = _WriteBuffer()


class Http2Transport(asyncio.BufferedProtocol):
    """One HTTP/2 connection to one address.

    Who may call: coroutines and callbacks on the loop that dialled it.
    """

    # Bytes that arrived before the protocol took over the socket (an HTTP CONNECT tunnel's
    # first bytes from the backend); fed to the connection in connection_made.
    _pending_input = b""

    def __init__(
        self,
        address: str,
        on_goaway: Callable[["Http2Transport"], None] | None,
        on_close: Callable[["Http2Transport", str], None] | None,
        keepalive: KeepaliveParams | None = None,
    ) -> None:
        self.address = address
        self._keepalive_params = keepalive
        self._keepalive: Keepalive | None = None
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._on_goaway = on_goaway
        self._on_close = on_close
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._wbuf: list[bytes | memoryview] | None = None
        self._tls = False
        self._lost = False
        self._lost_event = asyncio.Event()
        self.conn: Connection | None = None
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self.closed_reason: str | None = None
        self.goaway_received = False
        # Why the connection ended, as A94's grpc.disconnect_error names it: the first
        # reason seen (a GOAWAY before the socket error it led to); None: unknown.
        self.disconnect_error: str | None = None

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: duck-type them.
        self._transport = cast(asyncio.Transport, transport)
        self._tls = transport.get_extra_info("ssl_object") is not None
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
            except OSError:  # pragma: no cover - platform dependent
                pass
        self.conn = Connection(self, self._write, writev=self._writev)
        self.conn.initiate()
        if self._pending_input:  # what a proxy relayed along with its CONNECT answer
            data, self._pending_input = self._pending_input, b""
            self.conn.receive_data(data)

    def _writev(self, chunks: list[bytes | memoryview]) -> None:
        buf = self._wbuf
        if buf is None:
            self._wbuf = []
            self._loop.call_soon(self._flush_writes)
            self._send(chunks)
        else:
            buf.extend(chunks)

    def _send(self, chunks: list[bytes | memoryview]) -> None:
        """Write ``chunks`` as one socket write.

        On plain TCP they are joined into the thread's reused write buffer (see
        ``_WriteBuffer``), so a large message costs no fresh allocation (a 1 MiB
        temporary per call makes the heap grow and shrink, page faults included).  If
        the transport could not send it all at once it may keep a view of the buffer
        (asyncio 3.12+ and uvloop queue what they are given), so the buffer is then
        left to the transport and a new one is used next time.  TLS transports get
        bytes.
        """
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if len(chunks) == 1:
            transport.write(chunks[0])
            return
        if self._tls:
            transport.write(b"".join(chunks))
            return
        wbuf = _write_buffer
        total = sum(map(len, chunks))
        if total > len(wbuf.view):
            wbuf.replace(max(total, 2 * len(wbuf.view)))
        view = wbuf.view
        pos = 0
        for chunk in chunks:
            end = pos + len(chunk)
            view[pos:end] = chunk
            pos = end
        transport.write(view[:pos])
        if transport.get_write_buffer_size():
            wbuf.replace(_SEND_BUFFER_INITIAL)  # the transport may hold a view of it
        elif len(view) > _SEND_BUFFER_KEEP:  # do not hold a huge buffer forever
            wbuf.replace(_SEND_BUFFER_INITIAL)

    def _write(self, data: bytes) -> None:
        # Only used if the connection has no writev; it shares the coalescing below.
        self._writev([data])

    def _flush_writes(self) -> None:
        buf = self._wbuf
        self._wbuf = None
        if buf:
            self._send(buf)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        keepalive = self._keepalive
        if keepalive is not None:
            keepalive.last_read = self._loop.time()
        conn = self.conn
        if conn is not None:
            conn.receive_data(_read_buffer.view[:nbytes])

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._lost_event.set()
        if self.disconnect_error is None and exc is not None:
            self.disconnect_error = disconnect_error(exc)
        reason = f"connection lost: {exc}" if exc else "connection closed by the server"
        if self.conn is not None:
            self.conn.connection_lost(reason)
        self._closed(reason)

    # ------------------------------------------------------------------ ConnectionListener

    def connection_ready(self) -> None:
        if not self._ready.done():
            self._ready.set_result(None)
        params = self._keepalive_params
        if params is not None:
            now = self._loop.time()
            self._keepalive = Keepalive(params, now)
            self._keepalive_timer = self._loop.call_at(now + params.time, self._keepalive_tick)

    def _keepalive_tick(self) -> None:
        self._keepalive_timer = None
        keepalive, conn = self._keepalive, self.conn
        if keepalive is None or conn is None or conn.closed:
            return
        now = self._loop.time()
        action, next_at = keepalive.tick(now, conn.active_streams)
        if action is Action.CLOSE:
            assert self._keepalive_params is not None
            if self.disconnect_error is None:
                self.disconnect_error = "connection timed out"  # A94 counts A8 here
            self.close(
                f"keepalive watchdog timeout: no response to PING within "
                f"{self._keepalive_params.timeout:g}s"
            )
            return
        if action is Action.PING:
            conn.ping(b"grpclite")
        self._keepalive_timer = self._loop.call_at(next_at, self._keepalive_tick)

    def connection_goaway(self, last_stream_id: int, code: int, debug: bytes) -> None:
        if code == fr.ENHANCE_YOUR_CALM and debug == b"too_many_pings":
            params = self._keepalive_params
            log.warning(
                "grpc_lite: %s sent GOAWAY too_many_pings; doubling the keepalive time to %ss",
                self.address,
                params.time * 2 if params is not None else "-",
            )
            if params is not None:
                params.too_many_pings()  # A8: for this channel's later connections
        first = not self.goaway_received
        self.goaway_received = True
        if first and self.disconnect_error is None:
            self.disconnect_error = f"GOAWAY {fr.error_name(code)}"
        if first and self._on_goaway is not None:
            self._on_goaway(self)

    def connection_closed(self, reason: str) -> None:
        self._flush_writes()  # the GOAWAY goes out before the socket closes
        transport = self._transport
        if transport is not None and not self._lost:
            transport.close()
            if self._tls:
                # A TLS close waits for the peer's close_notify, which some servers never
                # send: do not keep the socket for asyncio's 30 s SSL shutdown timeout.
                self._loop.call_later(_TLS_CLOSE_GRACE, transport.abort)
        self._closed(reason)

    def ping_acked(self, data: bytes) -> None:
        pass

    # ------------------------------------------------------------------ API

    def _closed(self, reason: str) -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None
        if not self._ready.done():
            self._ready.set_exception(TransportError(reason))
            self._ready.exception()  # mark retrieved: the dialer may have given up already
        if self._on_close is not None:
            self._on_close(self, reason)

    @property
    def accepting_streams(self) -> bool:
        conn = self.conn
        return conn is not None and conn.state is ConnectionState.READY

    def start_stream(self, stream: H2Stream) -> None:
        conn = self.conn
        assert conn is not None
        conn.start_stream(stream)

    def close(self, reason: str = "connection closed by client") -> None:
        """Close at once; streams still open fail UNAVAILABLE."""
        conn = self.conn
        if conn is not None:
            conn.close(reason=reason)
        elif self._transport is not None:
            self._transport.close()
        self._closed(reason)

    @property
    def lost(self) -> bool:
        return self._lost

    async def wait_closed(self) -> None:
        """Until the socket is closed (``connection_lost`` ran)."""
        if self._transport is None:
            return
        await self._lost_event.wait()

    def graceful_close(self, reason: str) -> None:
        """Open streams run to completion, then the connection closes; no new streams."""
        conn = self.conn
        if conn is not None:
            conn.drain(reason)
        else:
            self.close(reason)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def wait_ready(self) -> None:
        await self._ready


def disconnect_error(exc: BaseException) -> str:
    """A94's ``grpc.disconnect_error`` for a socket error (grpc-go: disconnectErrorLabel)."""
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    if isinstance(exc, ConnectionAbortedError):
        return "connection aborted"
    if isinstance(exc, OSError):
        return "socket error"
    return "unknown"


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into its parts."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0 or address[end + 1 : end + 2] != ":":
            raise ValueError(f"invalid address {address!r}")
        return address[1:end], int(address[end + 2 :])
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"address {address!r} has no port")
    return host, int(port)


async def dial(
    address: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    connect_timeout: float,
    on_goaway: Callable[[Http2Transport], None] | None = None,
    on_close: Callable[[Http2Transport, str], None] | None = None,
    keepalive: KeepaliveParams | None = None,
    proxy: HttpProxy | None = None,
) -> Http2Transport:
    """Connect to ``address`` and wait for the server's SETTINGS (connection-backoff.md).

    ``address`` is ``host:port``, ``[v6]:port``, ``unix:/path`` or
    ``unix-abstract:name``.  The whole attempt (TCP, TLS, HTTP/2 preface) is
    bounded by ``connect_timeout``; failure raises :class:`TransportError` naming the cause.
    With ``proxy`` (a ``host:port`` address only), the TCP connection goes to the proxy and
    an HTTP CONNECT tunnel to ``address`` carries TLS and HTTP/2 (``_proxy.open_tunnel``).
    """
    loop = asyncio.get_running_loop()
    holder: list[Http2Transport] = []
    tunnel_open = False

    def factory() -> Http2Transport:
        proto = Http2Transport(address, on_goaway, on_close, keepalive)
        holder.append(proto)
        return proto

    try:
        async with asyncio.timeout(connect_timeout):
            if address.startswith("unix:"):
                await loop.create_unix_connection(
                    factory,
                    address[5:],
                    ssl=ssl_context,
                    server_hostname=server_hostname if ssl_context else None,
                )
            elif address.startswith("unix-abstract:"):
                await loop.create_unix_connection(
                    factory,
                    "\0" + address[14:],
                    ssl=ssl_context,
                    server_hostname=server_hostname if ssl_context else None,
                )
            elif proxy is None:
                host, port = split_host_port(address)
                await loop.create_connection(
                    factory,
                    host,
                    port,
                    ssl=ssl_context,
                    server_hostname=(server_hostname or host) if ssl_context else None,
                )
            else:
                await _dial_tunnel(loop, proxy, address, factory, ssl_context, server_hostname)
                tunnel_open = True
            proto = holder[0]
            if ssl_context is not None:
                sslobj = proto._transport.get_extra_info("ssl_object") if proto._transport else None
                alpn = sslobj.selected_alpn_protocol() if sslobj is not None else None
                if alpn != "h2":
                    proto.abort()
                    raise TransportError(
                        f"TLS handshake with {_label(address, proxy)} did not negotiate "
                        f"ALPN 'h2' (got {alpn!r})"
                    )
            await proto.wait_ready()
            return proto
    except TimeoutError:
        for proto in holder:
            proto.abort()
            proto._closed("connect timeout")
        if proxy is not None and not tunnel_open:
            raise TransportError(
                f"HTTP CONNECT via proxy {proxy.address} failed: no answer within "
                f"{connect_timeout:.3g}s (connect timeout)"
            ) from None
        what = "server preface (SETTINGS)" if holder else "connection"
        raise TransportError(
            f"connect to {_label(address, proxy)} timed out after {connect_timeout:.3g}s "
            f"waiting for the {what}"
        ) from None
    except ssl.SSLError as exc:
        for proto in holder:
            proto.abort()
        raise TransportError(f"TLS handshake with {_label(address, proxy)} failed: {exc}") from None
    except OSError as exc:
        for proto in holder:
            proto.abort()
        if isinstance(exc, TransportError):
            raise
        raise TransportError(
            f"failed to connect to {_label(address, proxy)}: {exc.strerror or exc}"
        ) from None
    except BaseException:
        for proto in holder:
            proto.abort()
        raise


def _label(address: str, proxy: HttpProxy | None) -> str:
    return address if proxy is None else f"{address} via proxy {proxy.address}"


async def _dial_tunnel(
    loop: asyncio.AbstractEventLoop,
    proxy: HttpProxy,
    address: str,
    factory: Callable[[], Http2Transport],
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
) -> None:
    """``dial`` through an HTTP CONNECT proxy: the tunnel, then TLS and HTTP/2 inside it."""
    host, _ = split_host_port(address)
    sock, early = await open_tunnel(proxy, address)
    if early and ssl_context is not None:
        sock.close()
        raise TransportError(
            f"HTTP CONNECT via proxy {proxy.address} failed: {len(early)} bytes arrived "
            "through the tunnel before the TLS handshake"
        )
    made: list[Http2Transport] = []

    def tunnel_factory() -> Http2Transport:
        proto = factory()
        proto._pending_input = early
        made.append(proto)
        return proto

    try:
        await loop.create_connection(
            tunnel_factory,
            sock=sock,
            ssl=ssl_context,
            server_hostname=(server_hostname or host) if ssl_context else None,
        )
    except BaseException:
        if not made:  # no transport took the socket over
            sock.close()
        raise

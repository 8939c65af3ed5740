"""The HTTP CONNECT tunnel (gRFC A1; RFC 9110 9.3.6): one per connection attempt.

grpc-go counterpart: ``internal/transport/proxy.go`` (``proxyDial``,
``doHTTPConnectHandshake``); C-core: ``http_connect_handshaker.cc``.

:func:`open_tunnel` connects a TCP socket to the proxy, sends ``CONNECT host:port
HTTP/1.1`` naming the backend as the channel knows it (a host name is not resolved
here: the proxy resolves it), and reads the proxy's answer.  A 2xx answer leaves a socket
that carries bytes to and from the backend; ``dial`` then runs TLS (if any) and HTTP/2 over
it.  Anything else raises :class:`TransportError` whose message starts with
``HTTP CONNECT via proxy HOST:PORT failed:`` and names the proxy's status line.  The
caller bounds the whole exchange with its connect timeout.
"""

import asyncio
import os
import re
import socket

from .._proxy import HttpProxy
from ._errors import TransportError

__all__ = ["open_tunnel"]

# Longest response head accepted from a proxy (status line and header fields).
_MAX_HEAD = 16 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: ([^\r\n]*))?\Z")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def connect_request(proxy: HttpProxy, target: str) -> bytes:
    """The CONNECT request for ``target`` (``host:port``, ``[v6]:port``)."""
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if proxy.user_agent:
        lines.append(f"User-Agent: {proxy.user_agent}")
    authorization = proxy.authorization
    if authorization is not None:
        lines.append(f"Proxy-Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _printable(data: bytes, limit: int = 120) -> str:
    text = _UNPRINTABLE.sub("?", data.decode("latin-1"))
    return text if len(text) <= limit else text[:limit] + "..."


async def _connect_socket(proxy: HttpProxy, failed: str) -> socket.socket:
    """A TCP socket connected to the proxy (each of its addresses in turn)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TransportError(
            f"{failed}: cannot resolve the proxy host {proxy.host!r}: {exc.strerror or exc}"
        ) from None
    errors: list[str] = []
    for family, type_, proto, _, sockaddr in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
        except OSError as exc:
            sock.close()
            # asyncio's message is "Connect call failed (addr)": say why instead.
            errors.append(os.strerror(exc.errno) if exc.errno else str(exc))
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    reason = "; ".join(dict.fromkeys(errors)) or "no address"
    raise TransportError(f"{failed}: cannot connect to the proxy: {reason}")


async def open_tunnel(proxy: HttpProxy, target: str) -> tuple[socket.socket, bytes]:
    """Connect to ``proxy`` and CONNECT to ``target``.

    Returns the socket and any bytes the proxy already relayed from the backend after its
    answer (the caller hands them to the protocol first).  Raises :class:`TransportError`.
    """
    loop = asyncio.get_running_loop()
    failed = f"HTTP CONNECT via proxy {proxy.address} failed"
    sock = await _connect_socket(proxy, failed)
    try:
        await loop.sock_sendall(sock, connect_request(proxy, target))
        buffer = bytearray()
        while True:
            try:
                chunk = await loop.sock_recv(sock, 4096)
            except OSError as exc:
                raise TransportError(
                    f"{failed}: reading the proxy's answer: {exc.strerror or exc}"
                ) from None
            if not chunk:
                if buffer:
                    raise TransportError(
                        f"{failed}: the proxy closed the connection in the middle of its "
                        f"answer: {_printable(bytes(buffer))!r}"
                    )
                raise TransportError(f"{failed}: the proxy closed the connection without answering")
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                head, rest = bytes(buffer[:end]), bytes(buffer[end + 4 :])
                break
            if len(buffer) > _MAX_HEAD:
                raise TransportError(
                    f"{failed}: the proxy's answer has no end of header within {_MAX_HEAD} "
                    f"bytes: {_printable(bytes(buffer[:80]))!r}"
                )
        status_line = head.split(b"\r\n", 1)[0]
        match = _STATUS_LINE.match(status_line)
        if match is None:
            raise TransportError(
                f"{failed}: malformed answer from the proxy: {_printable(status_line)!r}"
            )
        status = int(match.group(1))
        reason = _printable(match.group(2) or b"").strip()
        if not 200 <= status < 300:
            raise TransportError(f"{failed}: {status} {reason}".rstrip())
        # RFC 9110 9.3.6: a 2xx answer to CONNECT has no content; what follows is the tunnel.
        return sock, rest
    except BaseException:
        sock.close()
        raise

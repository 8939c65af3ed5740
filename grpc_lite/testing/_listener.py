"""The accept path every test server shares: one listening socket handing each accepted
connection to a protocol made by a factory.

:class:`~grpc_lite.testing.Backend` serves gRPC through it (one ``ServerConnection`` per
connection) and grpc_lite's own scripted h2 peer (``tests/h2peer.py``) does too; both sit on
the h2 server core of ``_h2core.py``.

A :class:`Listener` listens on TCP ``host:port`` (port 0: a free one, which it then keeps, so
a server stopped and started again, or refusing and accepting again, comes back on the same
port) or on a Unix socket path (a leading NUL: Linux's abstract namespace), in the clear or
behind TLS (a server ``ssl.SSLContext``).  It can stop
listening (connection attempts are refused) and listen again while its connections go on.

Who may call: the event loop that started it; nothing here is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import stat
from collections.abc import Callable

__all__ = ["Listener"]


class Listener:
    """One listening socket; see the module docstring."""

    __slots__ = ("_factory", "_reopening", "_server", "_ssl", "host", "port", "unix_path")

    def __init__(
        self,
        factory: Callable[[], asyncio.BaseProtocol],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        unix_path: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._factory = factory
        self._ssl = ssl_context
        self.host = host
        #: The TCP port: the one given, else the free one chosen at the first bind; 0 for Unix.
        self.port = port
        self.unix_path = unix_path
        self._server: asyncio.AbstractServer | None = None
        self._reopening: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and accept connections."""
        sock = self._bind()
        try:
            await self._serve(sock)
        except BaseException:
            sock.close()
            raise

    def reopen(self, still_wanted: Callable[[], bool]) -> None:
        """Listen again after :meth:`close`: bound (the kernel queues connection attempts)
        when this returns; accepting once the event loop has set the server up, unless
        ``still_wanted()`` says no by then (closed again meanwhile)."""
        sock = self._bind()
        self._reopening = asyncio.get_running_loop().create_task(
            self._serve_later(sock, still_wanted)
        )

    def close(self) -> None:
        """Stop listening now (connection attempts are refused); connections go on.  A
        listener still being set up by :meth:`reopen` closes itself when it is ready."""
        if self._server is not None:
            self._server.close()

    async def settle(self) -> None:
        """Wait for a :meth:`reopen` still under way (errors ignored: it is being closed)."""
        if self._reopening is not None:
            task, self._reopening = self._reopening, None
            with contextlib.suppress(Exception):
                await task

    async def wait_closed(self) -> None:
        """After :meth:`close`: wait for the server to be done (asyncio 3.12+ waits for its
        connections too) and remove the Unix socket file."""
        if self._server is not None:
            server, self._server = self._server, None
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._unlink_unix()

    def _bind(self) -> socket.socket:
        if self.unix_path is not None:
            self._unlink_unix()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(self.unix_path)
            except BaseException:
                sock.close()
                raise
        else:
            infos = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, type_, proto, _, sockaddr = infos[0]
            sock = socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(sockaddr)
            except BaseException:
                sock.close()
                raise
            self.port = sock.getsockname()[1]
        sock.listen(128)
        sock.setblocking(False)
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        if sock.family == socket.AF_UNIX:
            self._server = await loop.create_unix_server(self._factory, sock=sock, ssl=self._ssl)
        else:
            self._server = await loop.create_server(self._factory, sock=sock, ssl=self._ssl)

    async def _serve_later(self, sock: socket.socket, still_wanted: Callable[[], bool]) -> None:
        try:
            await self._serve(sock)
        except BaseException:
            sock.close()
            raise
        if not still_wanted():
            self.close()

    def _unlink_unix(self) -> None:
        path = self.unix_path
        if path is None or path.startswith("\0"):
            return
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)

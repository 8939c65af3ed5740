"""grpc_lite/testing/_listener.py over loopback: the one accept path of Backend and the
scripted h2 peer (start, refuse, listen again on the same port, Unix sockets, stop)."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile

import pytest

from grpc_lite.testing._listener import Listener

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


class _Accepted(asyncio.Protocol):
    def __init__(self, seen: list[asyncio.BaseTransport]) -> None:
        self._seen = seen

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._seen.append(transport)
        transport.close()


async def _connect(family: int, address: object) -> bool:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, address)
        return True
    except OSError:
        return False
    finally:
        sock.close()


async def _until(predicate: object) -> None:
    for _ in range(200):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_tcp_refuse_and_listen_again_on_the_same_port() -> None:
    seen: list[asyncio.BaseTransport] = []
    listener = Listener(lambda: _Accepted(seen))
    await listener.start()
    port = listener.port
    assert port != 0
    assert await _connect(socket.AF_INET, ("127.0.0.1", port))
    await _until(lambda: len(seen) == 1)
    listener.close()
    assert not await _connect(socket.AF_INET, ("127.0.0.1", port))
    listener.reopen(lambda: True)
    assert listener.port == port
    await listener.settle()
    assert await _connect(socket.AF_INET, ("127.0.0.1", port))
    await _until(lambda: len(seen) == 2)
    listener.close()
    await listener.wait_closed()
    assert not await _connect(socket.AF_INET, ("127.0.0.1", port))


async def test_reopen_closed_again_meanwhile_stays_closed() -> None:
    listener = Listener(asyncio.Protocol)
    await listener.start()
    listener.close()
    listener.reopen(lambda: False)
    await listener.settle()
    assert not await _connect(socket.AF_INET, ("127.0.0.1", listener.port))
    await listener.wait_closed()


async def test_unix_socket_file_is_removed_at_the_end() -> None:
    seen: list[asyncio.BaseTransport] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s")
        listener = Listener(lambda: _Accepted(seen), unix_path=path)
        await listener.start()
        assert listener.port == 0
        assert await _connect(socket.AF_UNIX, path)
        await _until(lambda: len(seen) == 1)
        listener.close()
        await listener.wait_closed()
        assert "s" not in os.listdir(tmp)

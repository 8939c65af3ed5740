"""Helpers shared by the reliability tests (issue 7): resource counting and waiting."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable

import grpc_lite

SC = grpc_lite.StatusCode


def fd_count() -> int:
    """Open file descriptors of this process (Linux /proc/self/fd)."""
    return len(os.listdir("/proc/self/fd"))


def _tcp_rows() -> list[tuple[str, int, str, int, str]]:
    """(local ip, local port, remote ip, remote port, state) of every IPv4 TCP socket."""
    rows: list[tuple[str, int, str, int, str]] = []
    try:
        with open("/proc/net/tcp") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return rows
    for line in lines:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        lip, lport = local.split(":")
        rip, rport = remote.split(":")
        rows.append((_ip(lip), int(lport, 16), _ip(rip), int(rport, 16), state))
    return rows


def _ip(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)[::-1]  # little-endian on x86 / arm
    return ".".join(str(b) for b in raw)


def established_to(port: int, hosts: Iterable[str] | None = None) -> int:
    """ESTABLISHED sockets whose *remote* end is ``port`` (on one of ``hosts``): on
    loopback, the client ends of connections to servers listening on ``port``."""
    wanted = set(hosts) if hosts is not None else None
    return sum(
        1
        for _lip, _lport, rip, rport, state in _tcp_rows()
        if state == "01" and rport == port and (wanted is None or rip in wanted)
    )


def established_from(port: int) -> int:
    """ESTABLISHED sockets whose *local* end is ``port``: the server ends."""
    return sum(1 for _l, lport, _r, _rp, state in _tcp_rows() if state == "01" and lport == port)


def other_tasks() -> set[asyncio.Task[object]]:
    """Every task of the running loop except the current one."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current}


def task_names(tasks: Iterable[asyncio.Task[object]]) -> list[str]:
    out = []
    for t in tasks:
        coro = t.get_coro()
        name = getattr(coro, "__qualname__", repr(coro))
        out.append(f"{t.get_name()}:{name}")
    return sorted(out)


def is_client_task(task: asyncio.Task[object]) -> bool:
    """A task running grpc_lite client code (not the test server in grpc_lite.testing)."""
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
    filename = code.co_filename if code is not None else ""
    sep = os.sep
    return f"{sep}grpc_lite{sep}" in filename and f"{sep}testing{sep}" not in filename


async def wait_until(predicate: Callable[[], bool], seconds: float = 2.0) -> bool:
    """Poll ``predicate`` every 10 ms for up to ``seconds``; its final value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not predicate():
        if loop.time() >= end:
            return predicate()
        await asyncio.sleep(0.01)
    return True

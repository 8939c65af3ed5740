"""Fallback benchmark server on grpcio (grpc.aio), used only when the grpc-go one cannot be built.

Same service as ``benchmarks/goserver/main.go`` (``grpc_lite.bench.Bench``: ``Unary`` echoes the
request bytes, ``Stream`` sends back N small messages where N is field 1 of the request).
This server is much slower than grpc-go and may well be the bottleneck: the runner prints a
warning when it is used. Prints ``LISTENING <port>`` on stdout; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

STREAM_ITEM = b"\x0a\x10grpc_lite bench!"
DEFAULT_STREAM_COUNT = 1000


def _parse_count(req: bytes) -> int:
    if len(req) >= 2 and req[0] == 0x08:
        n = shift = 0
        for b in req[1:]:
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n
    return DEFAULT_STREAM_COUNT


async def _unary(request: bytes, context: Any) -> bytes:
    return request


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for _ in range(_parse_count(request)):
        yield STREAM_ITEM


async def _serve(addr: str) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    handler = grpc.method_handlers_generic_handler(
        "grpc_lite.bench.Bench",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(addr)
    await server.start()
    print(f"LISTENING {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--addr", default="127.0.0.1:0")
    args = p.parse_args(argv)
    asyncio.run(_serve(args.addr))
    return 0


if __name__ == "__main__":
    sys.exit(main())

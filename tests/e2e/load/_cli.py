"""Run ``grpc-lite load`` in a subprocess from an async test (the server runs on the
test's own loop meanwhile), and a Backend whose Greeter records what it received."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from grpc_lite.testing import Backend, helloworld_pb2

SAY_HELLO = "/helloworld.Greeter/SayHello"


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.stdout)
        return report


async def load(*args: str, stdin: bytes | None = None, limit_s: float = 50) -> Done:
    """``python -m grpc_lite load ARGS``; killed if it outlives ``limit_s``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "grpc_lite",
        "load",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), limit_s)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


@dataclass
class Recorded:
    names: list[str] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)


def record_greeter(backend: Backend) -> Recorded:
    """Replace the backend's SayHello with one that records each request's name and
    metadata (same reply as the built-in one)."""
    seen = Recorded()

    async def say_hello(
        request: helloworld_pb2.HelloRequest, context: Any
    ) -> helloworld_pb2.HelloReply:
        seen.names.append(request.name)
        seen.metadata.append({k: v for k, v in context.invocation_metadata()})
        return helloworld_pb2.HelloReply(message=f"Hello {request.name}")

    backend.add_unary_unary(
        SAY_HELLO,
        say_hello,
        helloworld_pb2.HelloRequest.FromString,
        helloworld_pb2.HelloReply.SerializeToString,
    )
    return seen

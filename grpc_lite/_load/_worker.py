"""``--cpus N``: N worker processes, one shard each, driven over pipes.

The parent writes one line to a worker's stdin: the pickled ``(RunSpec, shard, shards)``
in base64. The worker connects and answers ``{"type": "ready"}`` (or ``"error"``), waits
for ``go`` on stdin, runs, and writes ``{"type": "interval", ...}`` every second and
``{"type": "result", ...}`` at the end, one JSON object per line on stdout. ``stop`` on
stdin ends it early (Ctrl-C in the parent). Workers ignore SIGINT: the parent decides.

Run as ``python -m grpc_lite._load._worker``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import Any

from ._engine import Engine, Interval, ShardResult
from ._loop import new_event_loop
from ._spec import RunSpec

__all__ = ["run_workers"]


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _worker_main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    first = await reader.readline()
    spec, shard, shards = pickle.loads(base64.b64decode(first))
    engine = Engine(
        spec, shard, shards, on_interval=lambda iv: _emit({"type": "interval", **iv.to_json()})
    )
    try:
        await engine.connect()
    except Exception as exc:
        _emit({"type": "error", "message": str(exc)})
        await engine.close()
        return
    _emit({"type": "ready"})
    command = (await reader.readline()).strip()
    if command != b"go":
        await engine.close()
        return

    async def watch_stdin() -> None:
        line = await reader.readline()
        if line.strip() == b"stop" or not line:
            engine.stop()

    watcher = asyncio.create_task(watch_stdin())
    try:
        result = await engine.run()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    _emit({"type": "result", "result": result.to_json()})


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_worker_main())


class WorkerError(Exception):
    pass


async def run_workers(
    spec: RunSpec,
    shards: int,
    on_interval: Callable[[Interval], None] | None,
    stop_event: asyncio.Event,
) -> list[ShardResult]:
    """Start ``shards`` workers, run them together, return their results."""
    env = dict(os.environ)
    procs: list[asyncio.subprocess.Process] = []
    try:
        for shard in range(shards):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "grpc_lite._load._worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                limit=1 << 26,
            )
            procs.append(proc)
            blob = base64.b64encode(pickle.dumps((spec, shard, shards))) + b"\n"
            assert proc.stdin is not None
            proc.stdin.write(blob)
            await proc.stdin.drain()
        for proc in procs:
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if not line:
                raise WorkerError("a worker process exited before connecting")
            msg = json.loads(line)
            if msg["type"] == "error":
                raise WorkerError(msg["message"])
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
        await asyncio.gather(*(p.stdin.drain() for p in procs if p.stdin is not None))

        pending: dict[int, list[Interval]] = {}
        live = set(range(shards))
        results: list[ShardResult | None] = [None] * shards

        def flush(index: int) -> None:
            parts = pending.pop(index)
            merged = Interval(index, 0, 0, {}, 0)
            for iv in parts:
                merged.count += iv.count
                merged.errors += iv.errors
                merged.messages += iv.messages
                for k, v in iv.counts.items():
                    merged.counts[k] = merged.counts.get(k, 0) + v
            if on_interval is not None:
                on_interval(merged)

        async def read(shard: int, proc: asyncio.subprocess.Process) -> None:
            assert proc.stdout is not None
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                msg = json.loads(line)
                if msg["type"] == "interval":
                    iv = Interval.from_json(msg)
                    pending.setdefault(iv.index, []).append(iv)
                    if len(pending[iv.index]) >= len(live):
                        flush(iv.index)
                elif msg["type"] == "result":
                    results[shard] = ShardResult.from_json(msg["result"])
            live.discard(shard)
            for index in sorted(pending):
                if len(pending[index]) >= len(live):
                    flush(index)

        async def forward_stop() -> None:
            await stop_event.wait()
            for proc in procs:
                if proc.stdin is not None and proc.returncode is None:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        proc.stdin.write(b"stop\n")

        stopper = asyncio.create_task(forward_stop())
        try:
            await asyncio.gather(*(read(k, p) for k, p in enumerate(procs)))
        finally:
            stopper.cancel()
        for index in sorted(pending):
            flush(index)
        for proc in procs:
            await proc.wait()
        if any(r is None for r in results):
            raise WorkerError("a worker process ended without a result")
        return [r for r in results if r is not None]
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


if __name__ == "__main__":
    main()

"""One benchmark cell: one client library, one workload, in a fresh interpreter.

Run by ``benchmarks/run.py`` as ``python -m benchmarks.client ...`` (pinned to a core with
``taskset``); it can also be run by hand against a server that is already up::

    python -m benchmarks.client --client grpc_aio --workload unary:100 --target 127.0.0.1:50051

Protocol with the runner, one line each on stdout:

    READY                   connected, about to warm up
    MEASURE_START           warm-up over, the measured window starts
    MEASURE_END             the measured window is over
    RESULT {json}           the figures (see ``_result``)

Errors go to stderr and give a non-zero exit code. Only the public API of each library is
used: grpc_lite and grpc.aio through bytes-level multi-callables (no serializers), grpclib
through ``UnaryUnaryMethod`` / ``UnaryStreamMethod`` with a pass-through codec.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

UNARY_METHOD = "/grpc_lite.bench.Bench/Unary"
STREAM_METHOD = "/grpc_lite.bench.Bench/Stream"
UPLOAD_METHOD = "/grpc_lite.bench.Bench/Upload"
DOWNLOAD_METHOD = "/grpc_lite.bench.Bench/Download"
MIB = 1 << 20

# A protobuf-serialized small message: helloworld.HelloRequest(name="grpc_lite bench") is
# field 1 (tag 0x0a), length 15, then the name: 17 bytes. Any proto server accepts it.
UNARY_PAYLOAD = b"\x0a\x0fgrpc_lite bench"

# Messages asked for per streaming call. The streaming workload opens one call for this many
# messages and reads until the measured window closes, then cancels it; it only opens another
# if one ends first.
STREAM_COUNT = 10_000_000


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# {int32 count = 1}: how many messages the Stream method sends back.
STREAM_REQUEST = b"\x08" + _varint(STREAM_COUNT)

# {bytes data = 1}, exactly 1 MiB as a message (tag, 3-byte length, payload): the `upload`
# workload's request. Upload replies with a 4-byte message; Download replies with 1 MiB
# (the same shape) to the small UNARY_PAYLOAD.
UPLOAD_PAYLOAD = b"\x0a" + _varint(MIB - 4) + bytes(MIB - 4)
assert len(UPLOAD_PAYLOAD) == MIB

# The `rr` workload: unary calls through round_robin over 3 backends with a retry policy
# (the runner passes an ipv4:a:p,b:p,c:p target). grpc.aio gets the same config through the
# `grpc.service_config` channel option plus `grpc.enable_retries`.
RR_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": "grpc_lite.bench.Bench"}],
                "retryPolicy": {
                    "maxAttempts": 2,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    },
    separators=(",", ":"),
)

# workload kind -> (method, request, payload bytes per call counted for MB/s)
UNARY_KINDS: dict[str, tuple[str, bytes, int]] = {
    "unary": (UNARY_METHOD, UNARY_PAYLOAD, 0),
    "rr": (UNARY_METHOD, UNARY_PAYLOAD, 0),
    "upload": (UPLOAD_METHOD, UPLOAD_PAYLOAD, MIB),
    "download": (DOWNLOAD_METHOD, UNARY_PAYLOAD, MIB),
}
WORKLOAD_KINDS = (*UNARY_KINDS, "stream")

UnaryFn = Callable[[bytes], Awaitable[Any]]
StreamFn = Callable[[bytes], AsyncIterator[Any]]


class Client:
    """What a workload needs from a library: a unary function, a stream opener, close.

    ``service_config`` (JSON) is only given for the ``rr`` workload.
    """

    async def connect(self, target: str, service_config: str | None = None) -> None:
        raise NotImplementedError

    def unary(self, method: str = UNARY_METHOD) -> UnaryFn:
        raise NotImplementedError

    def stream(self) -> StreamFn:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _MultiCallableClient(Client):
    """grpc.aio and grpc_lite: the same grpc.aio-shaped API."""

    _channel: Any

    def _make_channel(self, target: str, service_config: str | None) -> Any:
        raise NotImplementedError

    async def connect(self, target: str, service_config: str | None = None) -> None:
        self._channel = self._make_channel(target, service_config)
        ready = getattr(self._channel, "channel_ready", None)
        if ready is not None:
            try:
                await asyncio.wait_for(ready(), 10)
            except Exception as exc:
                # Not fatal: the first call below says whether the channel works.
                print(f"channel_ready() failed: {exc!r}", file=sys.stderr)
        self._unary_mc = self._channel.unary_unary(UNARY_METHOD)
        self._stream_mc = self._channel.unary_stream(STREAM_METHOD)
        # One real call so that connection setup is not part of the warm-up either.
        await self._unary_mc(UNARY_PAYLOAD)

    def unary(self, method: str = UNARY_METHOD) -> UnaryFn:
        if method == UNARY_METHOD:
            return self._unary_mc  # type: ignore[no-any-return]
        return self._channel.unary_unary(method)  # type: ignore[no-any-return]

    def stream(self) -> StreamFn:
        mc = self._stream_mc

        async def gen(request: bytes) -> AsyncIterator[Any]:
            call = mc(request)
            try:
                async for msg in call:
                    yield msg
            finally:
                call.cancel()

        return gen

    async def close(self) -> None:
        await self._channel.close()


class GrpcAioClient(_MultiCallableClient):
    def _make_channel(self, target: str, service_config: str | None) -> Any:
        import grpc

        options: list[tuple[str, Any]] = []
        if service_config is not None:
            options = [("grpc.service_config", service_config), ("grpc.enable_retries", 1)]
        return grpc.aio.insecure_channel(target, options=options)


class GrpcLiteClient(_MultiCallableClient):
    def _make_channel(self, target: str, service_config: str | None) -> Any:
        import grpc_lite

        return grpc_lite.insecure_channel(target, service_config=service_config)


class GrpcLiteOtelClient(GrpcLiteClient):
    """grpc_lite with OpenTelemetry metrics on: an ``OpenTelemetryPlugin`` on the SDK's
    MeterProvider as it comes (default aggregation and views, exemplar filter), with a
    reader that keeps the data in memory (an exporter's work is not on the RPC path).
    Every A66/A96/A94/A78 metric is recorded; no tracer provider (no spans)."""

    def _make_channel(self, target: str, service_config: str | None) -> Any:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        import grpc_lite
        from grpc_lite.opentelemetry import OpenTelemetryPlugin

        self._reader = InMemoryMetricReader()
        plugin = OpenTelemetryPlugin(meter_provider=MeterProvider(metric_readers=[self._reader]))
        return grpc_lite.insecure_channel(
            target, service_config=service_config, observability=[plugin]
        )


class GrpclibClient(Client):
    async def connect(self, target: str, service_config: str | None = None) -> None:
        if service_config is not None or target.startswith("ipv4:"):
            raise SystemExit("grpclib has no load balancing or retry policy")
        from grpclib.client import Channel, UnaryStreamMethod, UnaryUnaryMethod
        from grpclib.encoding.base import CodecBase

        class RawCodec(CodecBase):
            """Bytes in, bytes out; announced as proto so any proto server accepts it."""

            __content_subtype__ = "proto"

            def encode(self, message: Any, message_type: Any) -> bytes:
                return message  # type: ignore[no-any-return]

            def decode(self, data: bytes, message_type: Any) -> Any:
                return data

        host, _, port = target.rpartition(":")
        self._channel = Channel(host, int(port), codec=RawCodec())
        self._unary_cls = UnaryUnaryMethod
        self._unary_m = UnaryUnaryMethod(self._channel, UNARY_METHOD, bytes, bytes)
        self._stream_m = UnaryStreamMethod(self._channel, STREAM_METHOD, bytes, bytes)
        await self._unary_m(UNARY_PAYLOAD)

    def unary(self, method: str = UNARY_METHOD) -> UnaryFn:
        if method == UNARY_METHOD:
            return self._unary_m
        return self._unary_cls(self._channel, method, bytes, bytes)  # type: ignore[no-any-return]

    def stream(self) -> StreamFn:
        method = self._stream_m

        async def gen(request: bytes) -> AsyncIterator[Any]:
            async with method.open() as st:
                await st.send_message(request, end=True)
                finished = False
                try:
                    async for msg in st:
                        yield msg
                    finished = True
                finally:
                    if not finished:
                        await st.cancel()

        return gen

    async def close(self) -> None:
        self._channel.close()


CLIENTS: dict[str, type[Client]] = {
    "grpc_lite": GrpcLiteClient,
    "grpc_lite_uvloop": GrpcLiteClient,
    "grpc_lite_otel": GrpcLiteOtelClient,
    "grpc_aio": GrpcAioClient,
    "grpc_aio_uvloop": GrpcAioClient,
    "grpclib": GrpclibClient,
}


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _Phase:
    """Shared between the workers and the controller: are we measuring, should we stop."""

    def __init__(self) -> None:
        self.measuring = False
        self.stop = False


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (grpc.aio's C-core threads too)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _unary_worker(fn: UnaryFn, payload: bytes, phase: _Phase, lat: list[float]) -> None:
    perf = time.perf_counter
    append = lat.append
    while not phase.stop:
        t0 = perf()
        await fn(payload)
        if phase.measuring:
            append(perf() - t0)


async def _stream_worker(open_stream: StreamFn, phase: _Phase, gaps: list[float]) -> None:
    perf = time.perf_counter
    append = gaps.append
    while not phase.stop:
        last = perf()
        stream = open_stream(STREAM_REQUEST)
        try:
            async for _msg in stream:
                t = perf()
                if phase.measuring:
                    append(t - last)
                last = t
                if phase.stop:
                    break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]


def _install_dump_handler() -> None:
    """SIGUSR2 prints every asyncio task's stack to stderr: the runner sends it to a cell
    that hangs, before it kills it (SIGUSR1, via faulthandler, prints the threads' stacks)."""

    def dump() -> None:
        tasks = asyncio.all_tasks()
        print(f"--- {len(tasks)} asyncio tasks ---", file=sys.stderr)
        for t in tasks:
            print(repr(t), file=sys.stderr)
            t.print_stack(limit=12, file=sys.stderr)
        sys.stderr.flush()

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump)
    except (NotImplementedError, RuntimeError):
        pass


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    kind, _, n = args.workload.partition(":")
    concurrency = int(n or "1")
    _install_dump_handler()
    client = CLIENTS[args.client]()
    await client.connect(args.target, RR_SERVICE_CONFIG if kind == "rr" else None)
    _emit("READY")

    phase = _Phase()
    samples: list[float] = []
    bytes_per_op = 0
    if kind in UNARY_KINDS:
        method, payload, bytes_per_op = UNARY_KINDS[kind]
        fn = client.unary(method)
        if method != UNARY_METHOD:
            await fn(payload)  # the first call of this method outside the warm-up too
        workers = [_unary_worker(fn, payload, phase, samples) for _ in range(concurrency)]
    elif kind == "stream":
        opener = client.stream()
        workers = [_stream_worker(opener, phase, samples) for _ in range(concurrency)]
    else:
        raise SystemExit(f"unknown workload {args.workload!r}")
    tasks = [asyncio.ensure_future(w) for w in workers]

    async def controller() -> tuple[float, float]:
        await asyncio.sleep(args.warmup)
        phase.measuring = True
        _emit("MEASURE_START")
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        await asyncio.sleep(args.duration)
        phase.measuring = False
        elapsed = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        _emit("MEASURE_END")
        phase.stop = True
        return elapsed, cpu

    ctl = asyncio.ensure_future(controller())
    # A worker that fails ends the cell at once (the error is reported).
    done, _ = await asyncio.wait([ctl, *tasks], return_when=asyncio.FIRST_EXCEPTION)
    for t in done:
        if t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
    elapsed, cpu = ctl.result()
    count = len(samples)
    # Let the in-flight work finish briefly; cancel what does not.
    _, pending = await asyncio.wait(tasks, timeout=2)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    try:
        await asyncio.wait_for(client.close(), 5)
    except Exception as exc:
        print(f"close failed: {exc!r}", file=sys.stderr)

    samples.sort()
    p50 = _percentile(samples, 0.50)
    p99 = _percentile(samples, 0.99)
    return {
        "client": args.client,
        "workload": args.workload,
        "count": count,
        "elapsed_s": elapsed,
        "rate": count / elapsed if elapsed else 0.0,
        "p50_us": p50 * 1e6 if p50 is not None else None,
        "p99_us": p99 * 1e6 if p99 is not None else None,
        "client_cpu_s": cpu,
        "cpu_per_op_us": cpu / count * 1e6 if count else None,
        "bytes_per_op": bytes_per_op,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--client", choices=sorted(CLIENTS), required=True)
    p.add_argument(
        "--workload",
        required=True,
        help="unary:N, stream:N, upload:N, download:N or rr:N (N in flight)",
    )
    p.add_argument("--target", required=True, help="host:port (rr: ipv4:a:p,b:p,c:p)")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=1.0)
    args = p.parse_args(argv)
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    if args.client.endswith("_uvloop"):
        import uvloop

        result = uvloop.run(_run(args))
        result["loop"] = "uvloop"
    else:
        result = asyncio.run(_run(args))
        result["loop"] = "asyncio"
    _emit("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

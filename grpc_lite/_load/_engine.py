"""One process's share of a load run: channels, workers, the clock, the tally.

Shard ``k`` of ``N`` makes requests ``k, k+N, k+2N, ...`` (request numbers are global,
so templates and ``--skipFirst`` mean the same with any ``--cpus``), with its share of
the workers and of the connections.

Closed model (no rate): each worker makes one call after another; a call's latency is
from its start to its end. Open model (``--rps`` or a load schedule): request ``i`` is due
at ``schedule.time_of(i)``; a free worker waits until then and sends it, and its latency
is measured from that due time, so a server that falls behind shows its queueing in the
latencies (no coordinated omission). How late the sends were is kept as "send lag".

Who may call: one event loop (the engine's), a single task runs :meth:`Engine.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc_lite

from ._data import CallContext, DataSource, MetadataSource
from ._histogram import Recorder
from ._loop import set_busy_poll
from ._schedule import ConcurrencySchedule, RateSchedule
from ._spec import GO_CODE_NAMES, RunSpec, ScheduleSpec

__all__ = ["Engine", "Interval", "ShardResult", "connect_failure", "make_channel"]

_SPIN_NS = 150_000  # open model, low rates: poll the loop for the last 0.15 ms before a send


@dataclass(slots=True)
class Interval:
    """One tick (normally a second) of one shard: the live progress line's numbers."""

    index: int  # tick number from the start (0 = the first second)
    count: int  # calls finished in the tick (after --skipFirst)
    errors: int
    counts: dict[int, int]  # sparse HDR counts of the tick's OK latencies
    messages: int = 0  # stream messages received in the tick

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "errors": self.errors,
            "counts": [[k, v] for k, v in self.counts.items()],
            "messages": self.messages,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Interval:
        return cls(
            d["index"], d["count"], d["errors"], {k: v for k, v in d["counts"]}, d["messages"]
        )


@dataclass(slots=True)
class ShardResult:
    count: int = 0  # calls tallied (after --skipFirst)
    ok: int = 0
    total_latency_ns: int = 0  # all tallied calls (ghz's average)
    fastest_ns: int = 0
    slowest_ns: int = 0
    counts: dict[int, int] = field(default_factory=dict)  # OK latencies (HDR buckets)
    status: dict[str, int] = field(default_factory=dict)  # grpc-go code name -> calls
    errors: dict[str, int] = field(default_factory=dict)  # error text -> calls
    intervals: list[Interval] = field(default_factory=list)
    details: list[tuple[int, int, int, str]] = field(default_factory=list)
    started_ns: int = 0  # wall clock
    elapsed_s: float = 0.0
    backends: dict[str, dict[str, int]] = field(default_factory=dict)
    retries: int = 0
    hedges: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    lag_counts: dict[int, int] = field(default_factory=dict)  # open model send lag
    lag_max_ns: int = 0
    end_reason: str = "normal"
    workers_max: int = 0
    busy_poll: bool = False  # the shard's loop polled instead of blocking (--busy-poll)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "ok": self.ok,
            "total_latency_ns": self.total_latency_ns,
            "fastest_ns": self.fastest_ns,
            "slowest_ns": self.slowest_ns,
            "counts": [[k, v] for k, v in self.counts.items()],
            "status": self.status,
            "errors": self.errors,
            "intervals": [i.to_json() for i in self.intervals],
            "details": self.details,
            "started_ns": self.started_ns,
            "elapsed_s": self.elapsed_s,
            "backends": self.backends,
            "retries": self.retries,
            "hedges": self.hedges,
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "lag_counts": [[k, v] for k, v in self.lag_counts.items()],
            "lag_max_ns": self.lag_max_ns,
            "end_reason": self.end_reason,
            "workers_max": self.workers_max,
            "busy_poll": self.busy_poll,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShardResult:
        r = cls()
        for key in (
            "count",
            "ok",
            "total_latency_ns",
            "fastest_ns",
            "slowest_ns",
            "status",
            "errors",
            "started_ns",
            "elapsed_s",
            "backends",
            "retries",
            "hedges",
            "messages_sent",
            "messages_received",
            "lag_max_ns",
            "end_reason",
            "workers_max",
            "busy_poll",
        ):
            setattr(r, key, d[key])
        r.counts = {k: v for k, v in d["counts"]}
        r.lag_counts = {k: v for k, v in d["lag_counts"]}
        r.intervals = [Interval.from_json(i) for i in d["intervals"]]
        r.details = [(a, b, c, e) for a, b, c, e in d["details"]]
        return r


def make_channel(spec: RunSpec) -> grpc_lite.Channel:
    """A channel to the target with the run's TLS, options and service config."""
    options = list(spec.options)
    config = spec.service_config
    if spec.tls is None:
        return grpc_lite.insecure_channel(spec.target, options, service_config=config)
    tls = spec.tls
    if tls.skip_verify:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if tls.cert is not None and tls.key is not None:
            creds = grpc_lite.ssl_channel_credentials(None, tls.key, tls.cert)
            context = creds.ssl_context
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return grpc_lite.secure_channel(spec.target, context, options, service_config=config)
    creds = grpc_lite.ssl_channel_credentials(tls.roots, tls.key, tls.cert)
    return grpc_lite.secure_channel(spec.target, creds, options, service_config=config)


def connect_failure(channel: grpc_lite.Channel) -> str:
    """Why a channel is not READY: a subchannel's error (a refused address of a host with
    several addresses says less than a TLS failure on another), else the resolver's."""
    snap = channel.snapshot()
    errors = [s.last_error for s in snap.subchannels if s.last_error]
    errors.sort(key=lambda e: "Connect call failed" in e)
    if errors:
        return errors[0]
    return snap.resolver_error or f"the channel is {snap.state.name}"


def error_text(code: grpc_lite.StatusCode, details: str | None) -> str:
    """ghz's error strings (grpc-go's status error)."""
    return f"rpc error: code = {GO_CODE_NAMES[int(code)]} desc = {details or ''}"


def rate_schedule(spec: ScheduleSpec) -> RateSchedule:
    return RateSchedule.build(
        spec.kind,
        rps=spec.value,
        start=spec.start,
        step=spec.step,
        end=spec.end,
        step_duration=spec.step_duration,
        max_duration=spec.max_duration,
    )


def concurrency_schedule(spec: ScheduleSpec) -> ConcurrencySchedule:
    return ConcurrencySchedule.build(
        spec.kind,
        concurrency=int(spec.value),
        start=spec.start,
        step=spec.step,
        end=spec.end,
        step_duration=spec.step_duration,
        max_duration=spec.max_duration,
    )


class _Stop(Exception):
    """Raised inside a worker to end it (no more requests)."""


class Engine:
    def __init__(
        self,
        spec: RunSpec,
        shard: int = 0,
        shards: int = 1,
        *,
        on_interval: Callable[[Interval], None] | None = None,
        clock: Callable[[], int] = time.perf_counter_ns,
        spin_ns: int = _SPIN_NS,
    ) -> None:
        self.spec = spec
        self.shard = shard
        self.shards = shards
        self.on_interval = on_interval
        self._clock = clock
        self._spin_ns = spin_ns
        self.result = ShardResult()
        self._recorder = Recorder()
        self._err_latencies: list[int] = []
        self._lags: list[int] = []
        self._next = shard
        self._limit = spec.total if spec.total is not None else 1 << 62
        self._skip = spec.skip_first
        self._tick_count = 0
        self._tick_messages = 0
        self._t0 = 0
        self._stop_ns = 1 << 62
        self._stopping = False
        self._cancel_mode: str | None = None
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._allowed = 0
        self._controller_done = False
        self._exhausted = False
        self._all_done: asyncio.Event | None = None
        self._channels: list[grpc_lite.Channel] = []
        self._callables: list[Any] = []
        self._removers: list[Callable[[], None]] = []
        self._rate = rate_schedule(spec.rate) if spec.rate is not None else None
        self._conc = concurrency_schedule(spec.concurrency)
        method = spec.method.descriptor()
        self._method = method
        request_cls = spec.method.message_classes()[0]
        self._data = DataSource(spec.data, method, request_cls)
        self._md = MetadataSource(spec.metadata)
        self._kind = spec.method.kind()

    # ------------------------------------------------------------------ setup

    def _connections(self) -> int:
        total = max(self.spec.connections, self.shards)
        return total // self.shards + (1 if self.shard < total % self.shards else 0)

    async def connect(self) -> None:
        """Open this shard's channels and wait until each is READY (connect timeout)."""
        for _ in range(self._connections()):
            channel = make_channel(self.spec)
            self._channels.append(channel)
            self._removers.append(channel.add_trace_listener(self._trace))
            path = self.spec.method.path
            factory = {
                "unary": channel.unary_unary,
                "server-streaming": channel.unary_stream,
                "client-streaming": channel.stream_unary,
                "bidi": channel.stream_stream,
            }[self._kind]
            self._callables.append(factory(path))
        try:
            await asyncio.wait_for(
                asyncio.gather(*(c.channel_ready() for c in self._channels)),
                self.spec.connect_timeout,
            )
        except TimeoutError:
            reason = connect_failure(self._channels[0])
            raise ConnectionError(
                f"cannot connect to {self.spec.target} within "
                f"{self.spec.connect_timeout:g}s: {reason}"
            ) from None

    def _trace(self, event: Any) -> None:
        if event.subject == "retry" and "retrying in" in event.description:
            self.result.retries += 1
        elif event.subject == "hedge" and "sending hedged attempt" in event.description:
            self.result.hedges += 1

    async def close(self) -> None:
        for remove in self._removers:
            remove()
        self._removers.clear()
        for channel in self._channels:
            await channel.close()
        self._channels.clear()

    # ------------------------------------------------------------------ run

    async def run(self) -> ShardResult:
        """Connect (if not yet), run the load, close; the shard's tally."""
        if not self._callables:
            await self.connect()
        try:
            await self._run()
        finally:
            self._collect_backends()
            await self.close()
        return self.result

    def stop(self) -> None:
        """End early (Ctrl-C): no new calls; calls in flight are cancelled and not tallied."""
        self.result.end_reason = "cancel"
        self._cancel_in_flight("ignore")

    async def _run(self) -> None:
        spec = self.spec
        loop = asyncio.get_running_loop()
        self._all_done = asyncio.Event()
        if spec.busy_poll:
            self.result.busy_poll = set_busy_poll(loop, True)
        self.result.started_ns = time.time_ns()
        self._t0 = self._clock()
        stop_after = spec.duration or spec.max_duration
        if spec.duration and spec.max_duration:
            stop_after = min(spec.duration, spec.max_duration)
        timers: list[asyncio.TimerHandle] = []
        if stop_after:
            self._stop_ns = self._t0 + int(stop_after * 1e9)
            timers.append(loop.call_later(stop_after, self._duration_reached))
        ticker = asyncio.create_task(self._ticker())
        controller = asyncio.create_task(self._controller())
        try:
            await self._all_done.wait()
        finally:
            for timer in timers:
                timer.cancel()
            controller.cancel()
            for task in list(self._workers.values()):
                task.cancel()
            await asyncio.gather(controller, *self._workers.values(), return_exceptions=True)
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            if spec.busy_poll:
                set_busy_poll(loop, False)
            self.result.elapsed_s = (self._clock() - self._t0) / 1e9
            self._tick(final=True)
            r = self.result
            r.counts = self._recorder.counts
            if self._cancel_mode is None and spec.duration and r.end_reason == "normal":
                r.end_reason = "timeout"

    def _duration_reached(self) -> None:
        if self.spec.max_duration and not self.spec.duration:
            self.result.end_reason = "timeout"
        if self.spec.duration_stop in ("close", "ignore"):
            self._cancel_in_flight(self.spec.duration_stop)
        elif self._rate is None:
            self._stopping = True  # closed model: no new calls
        # Open model, "wait": every request due before the end is still sent (a sender
        # that fell behind catches up); the first one due at or after it ends the workers.

    def _cancel_in_flight(self, mode: str) -> None:
        self._stopping = True
        self._cancel_mode = mode
        for task in list(self._workers.values()):
            task.cancel()

    async def _controller(self) -> None:
        """Start and retire workers as the concurrency schedule says."""
        loop = asyncio.get_running_loop()
        changes = self._conc.changes()
        t0 = loop.time()
        for at, total in changes:
            delay = t0 + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._stopping or self._exhausted:
                break
            self._set_workers(self._conc.share(total, self.shard, self.shards))
        self._controller_done = True
        if not self._workers:
            assert self._all_done is not None
            self._all_done.set()

    def _set_workers(self, n: int) -> None:
        self._allowed = n
        self.result.workers_max = max(self.result.workers_max, n)
        loop = asyncio.get_running_loop()
        for wid in range(n):
            task = self._workers.get(wid)
            if task is None or task.done():
                self._workers[wid] = loop.create_task(self._worker(wid))

    def _worker_exited(self, wid: int) -> None:
        if self._workers.get(wid) is asyncio.current_task():
            del self._workers[wid]
        if not self._workers and (self._controller_done or self._exhausted):
            assert self._all_done is not None
            self._all_done.set()

    # ------------------------------------------------------------------ the workers

    def _take(self) -> int:
        """The next request number, or raise _Stop."""
        i = self._next
        if i >= self._limit or self._stopping:
            self._exhausted = True
            raise _Stop
        self._next = i + self.shards
        return i

    async def _worker(self, wid: int) -> None:
        try:
            if self._kind == "unary" and self._data.static is not None:
                await self._unary_worker(wid)
            else:
                await self._generic_worker(wid)
        except _Stop:
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._worker_exited(wid)

    async def _due(self, i: int) -> int:
        """Open model: wait until request ``i`` is due; its due time (clock ns)."""
        rate = self._rate
        assert rate is not None
        offset = rate.time_of(i)
        if offset == float("inf"):
            self._stopping = True
            raise _Stop
        due = self._t0 + int(offset * 1e9)
        if due >= self._stop_ns:
            self._stopping = True
            raise _Stop
        now = self._clock()
        if due > now:
            # Above 4,000/s (per process) sends are coalesced on a grid (0.2 ms at most,
            # four requests apart), so several leave in one loop iteration and one write;
            # the lateness this adds is in the send lag and, as any lateness, in latency.
            # Below that, the worker sleeps until shortly before the due time (a sleeping
            # core takes tens of microseconds to wake) and then polls the loop (I/O keeps
            # flowing) until the due time: sends leave within microseconds of it. With
            # --busy-poll it polls the whole gap and never sleeps.
            here = rate.rate_here()
            gap = 1e9 * self.shards / here if here > 0 else 1e9  # this shard's spacing
            if gap < 250_000:
                quantum = int(min(200_000.0, 4 * gap))
                wake = self._t0 + -(-(due - self._t0) // quantum) * quantum
                await asyncio.sleep((wake - now) / 1e9)
            else:
                margin = gap if self.spec.busy_poll else min(self._spin_ns, gap / 4)
                if due - now > margin:
                    await asyncio.sleep((due - now - margin) / 1e9)
                if margin:
                    clock = self._clock
                    while clock() < due:  # noqa: ASYNC110 - polling on purpose
                        await asyncio.sleep(0)
        self._lags.append(self._clock() - due)
        return due

    async def _unary_worker(self, wid: int) -> None:
        """Hot path: unary calls of pre-serialized requests."""
        call = self._callables[wid % len(self._callables)]
        static = self._data.static
        assert static is not None
        md = self._md.static
        if md is None:
            await self._generic_worker(wid)
            return
        metadata = md or None
        timeout = self.spec.timeout
        clock = self._clock
        skip = self._skip
        open_model = self._rate is not None
        single = static[0] if len(static) == 1 else None
        n_static = len(static)
        while wid < self._allowed:
            i = self._take()
            if open_model:
                t0 = await self._due(i)
            else:
                t0 = clock()
                if t0 >= self._stop_ns:
                    self._stopping = True
                    return
            request = single if single is not None else static[i % n_static]
            try:
                await call(request, timeout=timeout, metadata=metadata)
            except grpc_lite.RpcError as exc:
                self._failed(i, t0, clock(), exc.code(), exc.details())
                continue
            except asyncio.CancelledError:
                self._cancelled(i, t0)
                raise
            if i >= skip:
                t1 = clock()
                self._recorder.pending.append(t1 - t0)
                if self.spec.details:
                    self._detail(t0, t1, 0, "")

    async def _generic_worker(self, wid: int) -> None:
        call = self._callables[wid % len(self._callables)]
        kind = self._kind
        clock = self._clock
        open_model = self._rate is not None
        worker_id = f"g{self.shard}c{wid}"
        while wid < self._allowed:
            i = self._take()
            if open_model:
                t0 = await self._due(i)
            else:
                t0 = clock()
                if t0 >= self._stop_ns:
                    self._stopping = True
                    return
            ctx = CallContext(self._method, i, worker_id)
            try:
                messages = self._data.messages(ctx)
                metadata = self._md.render(ctx) or None
                if kind == "unary":
                    await call(messages[0], timeout=self.spec.timeout, metadata=metadata)
                elif kind == "server-streaming":
                    await self._server_stream(call, messages[0], metadata)
                elif kind == "client-streaming":
                    await self._client_stream(call, messages, metadata)
                else:
                    await self._bidi(call, messages, metadata)
            except grpc_lite.RpcError as exc:
                self._failed(i, t0, clock(), exc.code(), exc.details())
                continue
            except asyncio.CancelledError:
                self._cancelled(i, t0)
                raise
            except Exception as exc:  # a template that fails at run time, say
                self._failed(i, t0, clock(), grpc_lite.StatusCode.UNKNOWN, str(exc))
                continue
            if i >= self._skip:
                t1 = clock()
                self._recorder.pending.append(t1 - t0)
                if self.spec.details:
                    self._detail(t0, t1, 0, "")

    def _timer(self, call: Any, flag: list[bool]) -> asyncio.TimerHandle | None:
        d = self.spec.stream_call_duration
        if d <= 0:
            return None

        def end() -> None:
            flag[0] = True
            call.cancel()

        return asyncio.get_running_loop().call_later(d, end)

    async def _server_stream(self, mc: Any, request: bytes, metadata: Any) -> None:
        call = mc(request, timeout=self.spec.timeout, metadata=metadata)
        ended = [False]
        timer = self._timer(call, ended)
        limit = self.spec.stream_call_count
        received = 0
        try:
            async for _ in call:
                received += 1
                if limit and received >= limit:
                    ended[0] = True
                    call.cancel()
                    break
        except asyncio.CancelledError:
            if not ended[0] or _task_cancelling():
                raise
        finally:
            if timer is not None:
                timer.cancel()
            self.result.messages_received += received
            self._tick_messages += received

    async def _send_all(self, call: Any, messages: list[bytes], ended: list[bool]) -> None:
        limit = self.spec.stream_call_count
        interval = self.spec.stream_interval
        endless = self.spec.stream_call_duration > 0
        total = limit if limit else (len(messages) if not endless else 1 << 62)
        sent = 0
        try:
            while sent < total and not ended[0]:
                await call.write(messages[sent % len(messages)])
                sent += 1
                self.result.messages_sent += 1
                if interval > 0 and sent < total:
                    await asyncio.sleep(interval)
                elif endless and sent % 64 == 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            if not ended[0] or _task_cancelling():
                raise
            return
        if call.done():
            return
        await call.done_writing()

    def _stream_deadline(self, call: Any, ended: list[bool]) -> asyncio.TimerHandle | None:
        """--stream-call-duration for client/bidi streams: stop sending, then half-close."""
        d = self.spec.stream_call_duration
        if d <= 0:
            return None

        def end() -> None:
            ended[0] = True

        return asyncio.get_running_loop().call_later(d, end)

    async def _client_stream(self, mc: Any, messages: list[bytes], metadata: Any) -> None:
        call = mc(timeout=self.spec.timeout, metadata=metadata)
        ended = [False]
        timer = self._stream_deadline(call, ended)
        try:
            await self._send_all(call, messages, ended)
            await call
        finally:
            if timer is not None:
                timer.cancel()

    async def _bidi(self, mc: Any, messages: list[bytes], metadata: Any) -> None:
        call = mc(timeout=self.spec.timeout, metadata=metadata)
        ended = [False]
        timer = self._stream_deadline(call, ended)
        received = 0

        async def read() -> None:
            nonlocal received
            async for _ in call:
                received += 1

        reader = asyncio.ensure_future(read())
        try:
            await self._send_all(call, messages, ended)
            await reader
        finally:
            if timer is not None:
                timer.cancel()
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
            self.result.messages_received += received
            self._tick_messages += received

    # ------------------------------------------------------------------ the tally

    def _failed(self, i: int, t0: int, t1: int, code: grpc_lite.StatusCode, details: Any) -> None:
        if i < self._skip:
            return
        if self._cancel_mode == "ignore":
            return
        r = self.result
        name = GO_CODE_NAMES[int(code)]
        r.status[name] = r.status.get(name, 0) + 1
        text = error_text(code, details)
        r.errors[text] = r.errors.get(text, 0) + 1
        lat = t1 - t0
        self._err_latencies.append(lat)
        if self.spec.count_errors:
            self._recorder.pending.append(lat)
        if self.spec.details:
            self._detail(t0, t1, int(code), text)

    def _cancelled(self, i: int, t0: int) -> None:
        if self._cancel_mode == "close":
            self._failed(
                i,
                t0,
                self._clock(),
                grpc_lite.StatusCode.CANCELLED,
                "the load ended (--duration-stop close)",
            )

    def _detail(self, t0: int, t1: int, code: int, text: str) -> None:
        if len(self.result.details) < 1_000_000:
            wall = self.result.started_ns + (t0 - self._t0)
            self.result.details.append((wall, t1 - t0, code, text))

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        interval = self.spec.interval
        n = 0
        while True:
            n += 1
            delay = start + n * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._tick()

    def _tick(self, final: bool = False) -> None:
        rec = self._recorder
        pending = rec.pending
        ok = len(pending)
        if self.spec.count_errors:
            ok -= len(self._err_latencies)
        r = self.result
        if pending:
            lo, hi = min(pending), max(pending)
            total = sum(pending)
            if self.spec.count_errors:
                total -= sum(self._err_latencies)
            r.total_latency_ns += total
            if r.fastest_ns == 0 or lo < r.fastest_ns:
                r.fastest_ns = lo
            if hi > r.slowest_ns:
                r.slowest_ns = hi
        r.total_latency_ns += sum(self._err_latencies)
        errors = len(self._err_latencies)
        self._err_latencies = []
        counts = rec.fold()
        r.ok += ok
        r.count += ok + errors
        if ok:
            r.status["OK"] = r.status.get("OK", 0) + ok
        if self._lags:
            lags = self._lags
            self._lags = []
            r.lag_max_ns = max(r.lag_max_ns, max(lags))
            lag_rec = Recorder()
            lag_rec.pending = lags
            for k, v in lag_rec.fold().items():
                r.lag_counts[k] = r.lag_counts.get(k, 0) + v
        interval = Interval(self._tick_count, ok + errors, errors, counts, self._tick_messages)
        self._tick_messages = 0
        if not final or interval.count or interval.messages:
            r.intervals.append(interval)
        self._tick_count += 1
        if self.on_interval is not None:
            self.on_interval(interval)

    def _collect_backends(self) -> None:
        backends: dict[str, dict[str, int]] = {}
        for channel in self._channels:
            for sc in channel.snapshot().subchannels:
                b = backends.setdefault(sc.address, {"attempts": 0, "ok": 0, "failed": 0})
                b["attempts"] += sc.calls_started
                b["ok"] += sc.calls_succeeded
                b["failed"] += sc.calls_failed
        self.result.backends = backends


def _task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

"""``grpc-lite demo``: a rolling scale-down on three local backends, replayed live.

The story (after the seed article): three backends on 127.0.0.1, .2 and .3 answer a
round_robin channel that calls ``SayHello`` every 20 ms with a 1 s timeout.

1. all three answer;
2. backend 2 gets stuck: it turns NOT_SERVING and then stops answering in time;
3. backend 3 is scaled down gracefully (GOAWAY drain), then backend 2 is killed hard;
4. both come back.

With the seed's retry policy and client-side health checking (the default) no call
fails; ``--no-retry --no-health`` runs the same story without them to show what they
save.  Every backend the demo starts is stopped before it returns.
"""

import argparse
import asyncio
import collections
import json
import time
from typing import Any

import grpc_lite
from grpc_lite._cli_shared import CliError, prometheus_endpoint
from grpc_lite.testing import Backend, helloworld_pb2

_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
_CALL_EVERY = 0.02
_TIMEOUT = 1.0


def _service_config(retry: bool, health: bool) -> dict[str, Any]:
    # The seed article's config, in grpc-go's CapitalCase spelling.
    config: dict[str, Any] = {"LoadBalancingPolicy": "round_robin"}
    if retry:
        config["MethodConfig"] = [
            {
                "Name": [{"Service": "helloworld.Greeter"}],
                "RetryPolicy": {
                    "MaxAttempts": 2,
                    "InitialBackoff": "0.1s",
                    "MaxBackoff": "1s",
                    "BackoffMultiplier": 2.0,
                    "RetryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    if health:
        config["HealthCheckConfig"] = {"ServiceName": ""}
    return config


class _Show:
    """The live view: human lines, or one JSON object per line."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.started = time.monotonic()

    def line(self, kind: str, text: str, **extra: Any) -> None:
        elapsed = time.monotonic() - self.started
        if self.as_json:
            print(
                json.dumps({"type": kind, "t": round(elapsed, 3), "text": text, **extra}),
                flush=True,
            )
        else:
            mark = {"phase": "==", "event": "  ", "calls": "  "}.get(kind, "  ")
            print(f"[{elapsed:5.1f}s] {mark} {text}", flush=True)


async def _start_backends() -> list[Backend]:
    first = await Backend(_HOSTS[0], 0, backend_id="backend-1").start()
    backends = [first]
    try:
        for i, host in enumerate(_HOSTS[1:], start=2):
            backends.append(await Backend(host, first.port, backend_id=f"backend-{i}").start())
    except BaseException:
        for b in backends:
            await b.stop()
        raise
    return backends


async def run_demo(args: argparse.Namespace) -> int:
    retry = not args.no_retry
    health = not args.no_health
    speed = max(0.1, float(args.speed))
    show = _Show(args.json)
    try:
        backends = await _start_backends()
    except OSError as exc:
        raise SystemExit(
            f"grpc-lite: error: cannot start the demo backends on {', '.join(_HOSTS)}: {exc}"
        ) from None
    port = backends[0].port
    target = "ipv4:" + ",".join(f"{h}:{port}" for h in _HOSTS)
    per_backend: collections.Counter[str] = collections.Counter()
    failures: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()

    failing: set[str] = set()

    def event(ev: Any) -> None:
        desc = ev.description
        subject = ev.subject
        if subject.startswith("subchannel"):
            # While a backend is down its reconnect attempts repeat: show the first only.
            if "-> READY" in desc:
                failing.discard(subject)
            elif subject in failing:
                return
            elif "-> TRANSIENT_FAILURE" in desc:
                failing.add(subject)
            if "->" in desc or desc.startswith("health"):
                show.line("event", f"{subject}: {desc}")
        elif subject in ("retry", "hedge") or (subject == "channel" and "->" in desc):
            show.line("event", f"{subject}: {desc}")

    async def client(channel: grpc_lite.Channel) -> None:
        say = channel.unary_unary(
            "/helloworld.Greeter/SayHello",
            request_serializer=helloworld_pb2.HelloRequest.SerializeToString,
            response_deserializer=helloworld_pb2.HelloReply.FromString,
        )
        request = helloworld_pb2.HelloRequest(name="demo")
        pending: set[asyncio.Task[None]] = set()

        async def one() -> None:
            try:
                reply = await say(request, timeout=_TIMEOUT)
                per_backend[reply.message.rsplit(" ", 1)[-1]] += 1
            except grpc_lite.RpcError as exc:
                failures[exc.code().name] += 1
                show.line("event", f"call failed: {exc.code().name}: {exc.details()}")

        while not stop.is_set():
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(_CALL_EVERY)
        if pending:
            await asyncio.gather(*pending)

    async def pause(seconds: float) -> None:
        await asyncio.sleep(seconds / speed)

    mode = ", ".join(
        [
            ("retry policy on" if retry else "no retry"),
            ("health checks on" if health else "no health checks"),
        ]
    )
    show.line("phase", f"3 backends on {', '.join(_HOSTS)} port {port}; round_robin, {mode}")
    # A short reconnect backoff, so that returning backends rejoin within the demo.
    options = [("grpc.initial_reconnect_backoff_ms", 300), ("grpc.max_reconnect_backoff_ms", 1000)]
    try:
        endpoint = prometheus_endpoint(args)
    except CliError:
        for b in backends:
            await b.stop()
        raise
    channel = grpc_lite.insecure_channel(
        target,
        options=options,
        service_config=_service_config(retry, health),
        observability=[endpoint.plugin] if endpoint is not None else None,
    )
    remove = channel.add_trace_listener(event)
    loop_task = asyncio.create_task(client(channel))
    try:
        await pause(3)
        show.line("calls", f"calls so far: {dict(per_backend)}")

        _b1, b2, b3 = backends
        show.line("phase", "backend-2 gets stuck: health NOT_SERVING, then 1.5 s per call")
        b2.set_health("", "NOT_SERVING")
        await pause(0.3)
        b2.delay = 1.5
        await pause(3)
        show.line("calls", f"calls so far: {dict(per_backend)}")

        show.line("phase", "scale down: backend-3 drains gracefully (GOAWAY)")
        await b3.stop(grace=1.0)
        await pause(2)
        show.line("phase", "scale down: backend-2 is killed hard (connections reset)")
        b2.abort_connections()
        await b2.stop(grace=0)
        await pause(3)
        show.line("calls", f"calls so far: {dict(per_backend)}")

        show.line("phase", "scale back up: backend-2 and backend-3 return healthy")
        b2.delay = 0.0
        b2.set_health("", "SERVING")
        await b2.start()
        await b3.start()
        await pause(4)
    finally:
        stop.set()
        await loop_task
        remove()
        snapshot = channel.snapshot()
        await channel.close()
        for b in backends:
            await b.stop()
        if endpoint is not None:
            endpoint.close()
    total_failed = sum(failures.values())
    answered = dict(sorted(per_backend.items()))
    summary: dict[str, Any] = {
        "calls": sum(per_backend.values()) + total_failed,
        "per_backend": answered,
        "failures": dict(failures),
        "failed": total_failed,
        "retry": retry,
        "health_checks": health,
        "final_state": snapshot.state.name,
    }
    if args.json:
        print(json.dumps({"type": "summary", **summary}), flush=True)
    else:
        print()
        print(f"{'backend':<12} {'calls answered':>15}")
        for name, count in answered.items():
            print(f"{name:<12} {count:>15}")
        print(f"{'failed':<12} {total_failed:>15}  {dict(failures) if failures else ''}")
        if retry and health:
            print(
                "\nwith retries and health checks: "
                f"{'no call failed' if not total_failed else f'{total_failed} calls failed'}."
                "  Try: grpc-lite demo --no-retry --no-health"
            )
        else:
            print(
                f"\nwithout {'retries' if not retry else ''}"
                f"{' and ' if not retry and not health else ''}"
                f"{'health checks' if not health else ''}: {total_failed} calls failed."
            )
    return 0

"""Memory and scale figures for grpc_lite (issue 6, "Memory and scale").

    python -m benchmarks.scale            # full: 1,000 of everything (about a minute)
    python -m benchmarks.scale --quick    # smaller counts, for a smoke run
    python -m benchmarks.scale --help

Starts the grpc-go benchmark server (``benchmarks/goserver``, as ``python -m benchmarks`` does,
pinned to core 1 when it can), then measures in this process, with grpc_lite's public API only:

- memory per idle channel: N ``insecure_channel()`` objects that never connect (tracemalloc);
- memory per READY subchannel: a round_robin channel over N copies of the server's address
  (``grpc_lite.resolver.ManualResolver``), all READY, against one over a single copy;
- 1,000 concurrent in-flight RPCs: 1,000 server-streaming calls opened at once, each has
  received its first message before any is finished (so all are in flight together, memory per
  call measured), then all complete with OK; and 1,000 unary calls started together;
- a round_robin channel over 1,000 addresses (the one server 1,000 times): time until all
  subchannels are READY, then RPCs at 100 in flight, their spread over the subchannels
  (``Channel.snapshot()``), and their rate against a 1-address round_robin channel (picking
  is O(1) per call when the two rates match);
- the time a resolver update of 1,000 addresses takes (``update_addresses`` returns once the
  channel and its balancer have applied it): an unchanged list, and a list of 1,000 new
  addresses (same server, distinct ``server_name``), plus the time until those are all READY.

Memory is what Python allocates (tracemalloc), so kernel socket buffers are not in it. Figures
are printed and written to ``benchmarks/results/scale-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.client import UNARY_METHOD, UNARY_PAYLOAD, _varint
from benchmarks.run import REPO_ROOT, RESULTS_DIR, _can_pin, _cpu_model, _git_rev, start_server

RR_CONFIG = {"loadBalancingConfig": [{"round_robin": {}}]}
SLEEP_METHOD = "/grpc_lite.bench.Bench/Sleep"


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def _wait_until(cond: Callable[[], bool], wait_s: float, what: str) -> float:
    """Poll ``cond`` every 10 ms; return the seconds it took. Raises TimeoutError."""
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > wait_s:
            raise TimeoutError(f"{what}: not within {wait_s:g} s")
        await asyncio.sleep(0.01)
    return time.perf_counter() - t0


def _ready_count(channel: Any) -> int:
    from grpc_lite import ChannelConnectivity

    return sum(sc.state is ChannelConnectivity.READY for sc in channel.snapshot().subchannels)


_scheme_counter = 0


def _manual(addresses: list[Any]) -> tuple[Any, str]:
    """A registered ManualResolver already holding ``addresses``, and its target."""
    from grpc_lite import resolver

    global _scheme_counter
    _scheme_counter += 1
    scheme = f"benchscale{_scheme_counter}"
    r = resolver.ManualResolver(scheme)
    resolver.register(r)
    r.update_addresses(addresses)
    return r, f"{scheme}:///bench"


async def _rr_channel(addresses: list[Any], wait_s: float) -> tuple[Any, Any, float]:
    """(resolver, channel, seconds until every subchannel is READY)."""
    import grpc_lite

    r, target = _manual(addresses)
    ch = grpc_lite.insecure_channel(target, service_config=RR_CONFIG)
    ch.get_state(try_to_connect=True)
    n = len(addresses)
    took = await _wait_until(lambda: _ready_count(ch) == n, wait_s, f"{n} subchannels READY")
    return r, ch, took


async def _unary_load(ch: Any, total: int, in_flight: int) -> float:
    """Run ``total`` unary RPCs with ``in_flight`` workers; return RPC/s. All must succeed."""
    fn = ch.unary_unary(UNARY_METHOD)
    await fn(UNARY_PAYLOAD)
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            assert await fn(UNARY_PAYLOAD) == UNARY_PAYLOAD

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return total / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- measurements


async def idle_channels(target: str, n: int) -> dict[str, Any]:
    import grpc_lite

    tracemalloc.start()
    try:
        m0 = _traced()
        channels = [grpc_lite.insecure_channel(target) for _ in range(n)]
        m1 = _traced()
    finally:
        tracemalloc.stop()
    for ch in channels:
        await ch.close()
    return {"channels": n, "bytes_per_idle_channel": (m1 - m0) / n}


async def ready_subchannels(target: str, n: int, wait_s: float) -> dict[str, Any]:
    tracemalloc.start()
    try:
        m0 = _traced()
        _r1, ch1, _ = await _rr_channel([target], wait_s)
        m1 = _traced()
        _rn, chn, took = await _rr_channel([target] * n, wait_s)
        m2 = _traced()
    finally:
        tracemalloc.stop()
    one, many = m1 - m0, m2 - m1
    for ch in (ch1, chn):
        await ch.close()
    return {
        "subchannels": n,
        "bytes_channel_with_1_ready_subchannel": one,
        "bytes_channel_with_n_ready_subchannels": many,
        "bytes_per_ready_subchannel": (many - one) / (n - 1),
        "seconds_to_ready_under_tracemalloc": took,
    }


async def in_flight(target: str, n: int, repeats: int, sleep_ms: int) -> dict[str, Any]:
    """n unary calls to the server's Sleep method (it answers after `sleep_ms`), started
    together: all are in flight at once (checked halfway), then all must succeed."""
    import grpc_lite

    request = b"\x08" + _varint(sleep_ms)
    ch = grpc_lite.insecure_channel(target)
    try:
        await asyncio.wait_for(ch.channel_ready(), 10)
        sleep = ch.unary_unary(SLEEP_METHOD)
        assert await sleep(b"\x08\x00") == b"\x08\x00"
        times, oks, in_flight_together, per_call = [], [], [], []
        for i in range(repeats):
            if i == 0:
                tracemalloc.start()
            try:
                m0 = _traced() if i == 0 else 0
                t0 = time.perf_counter()
                tasks = [asyncio.ensure_future(sleep(request)) for _ in range(n)]
                await asyncio.sleep(sleep_ms / 2000)
                in_flight_together.append(sum(not t.done() for t in tasks))
                if i == 0:
                    per_call.append((_traced() - m0) / n)
            finally:
                if i == 0:
                    tracemalloc.stop()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            times.append(time.perf_counter() - t0)
            oks.append(sum(r == request for r in results))
        # And n echo calls started together, without a server-side wait.
        unary = ch.unary_unary(UNARY_METHOD)
        t0 = time.perf_counter()
        echo = await asyncio.gather(*(unary(UNARY_PAYLOAD) for _ in range(n)))
        echo_s = time.perf_counter() - t0
    finally:
        await ch.close()
    return {
        "rpcs": n,
        "server_wait_ms": sleep_ms,
        "in_flight_together_min": min(in_flight_together),
        "ok_min": min(oks),
        "batch_seconds_median": statistics.median(times),
        "bytes_per_in_flight_rpc": per_call[0],
        "echo_ok": sum(r == UNARY_PAYLOAD for r in echo),
        "echo_batch_seconds": echo_s,
    }


async def many_addresses(
    target: str, n: int, rpcs: int, wait_s: float, update_repeats: int
) -> dict[str, Any]:
    from grpc_lite.resolver import Address

    out: dict[str, Any] = {"addresses": n}
    # Reference rates: 1 address (every RPC on one connection, whose reads and writes carry
    # many RPCs each), and n/10 addresses (at 100 in flight, about one RPC per connection
    # at a time, as over n): per-RPC cost that grows with n would show against the latter.
    tenth = n // 10 if n // 10 >= 100 else max(2, n // 2)
    ref_rates = {}
    for k in (1, tenth):
        _, ch_k, _ = await _rr_channel([target] * k, wait_s)
        try:
            ref_rates[k] = await _unary_load(ch_k, rpcs, 100)
        finally:
            await ch_k.close()

    rn, chn, took = await _rr_channel([target] * n, wait_s)
    try:
        out["seconds_until_all_ready"] = took
        rate_n = await _unary_load(chn, rpcs, 100)
        calls = [sc.calls_started for sc in chn.snapshot().subchannels]
        out.update(
            rpcs=rpcs,
            rate_1_address=ref_rates[1],
            tenth_addresses=tenth,
            rate_tenth_addresses=ref_rates[tenth],
            rate_n_addresses=rate_n,
            rate_ratio_n_to_tenth=rate_n / ref_rates[tenth],
            subchannels_used=sum(c > 0 for c in calls),
            calls_per_subchannel_min=min(calls),
            calls_per_subchannel_max=max(calls),
        )

        # Resolver updates: the same 1,000 addresses (nothing to change) ...
        same = [target] * n
        times = []
        for _ in range(update_repeats):
            t0 = time.perf_counter()
            assert rn.update_addresses(same)
            times.append(time.perf_counter() - t0)
        out["update_unchanged_seconds_median"] = statistics.median(times)

        # ... and 1,000 new addresses (distinct server_name: new subchannels, old ones drain).
        new = [Address(target, server_name=f"s{i}.bench") for i in range(n)]
        t0 = time.perf_counter()
        assert rn.update_addresses(new)
        out["update_replace_seconds"] = time.perf_counter() - t0
        snap = chn.snapshot()
        out["addresses_after_update"] = len(snap.addresses)
        out["seconds_until_new_all_ready"] = await _wait_until(
            lambda: _ready_count(chn) == n, wait_s, f"{n} new subchannels READY"
        )
        assert len(chn.snapshot().subchannels) == n
        out["rate_after_update"] = await _unary_load(chn, rpcs, 100)
    finally:
        await chn.close()
    return out


# --------------------------------------------------------------------------- main


def _fmt_bytes(v: float) -> str:
    return f"{v / 1024:.1f} KiB" if abs(v) >= 1024 else f"{v:.0f} B"


def render(doc: dict[str, Any]) -> str:
    r = doc["results"]
    rows: list[tuple[str, str]] = []
    if "idle_channel" in r and "error" not in r["idle_channel"]:
        x = r["idle_channel"]
        rows.append(
            (
                f"memory per idle channel ({x['channels']} channels)",
                _fmt_bytes(x["bytes_per_idle_channel"]),
            )
        )
    if "ready_subchannel" in r and "error" not in r["ready_subchannel"]:
        x = r["ready_subchannel"]
        rows.append(
            (
                f"memory per READY subchannel (round_robin over {x['subchannels']})",
                _fmt_bytes(x["bytes_per_ready_subchannel"]),
            )
        )
        rows.append(
            (
                "memory of a round_robin channel with 1 READY subchannel",
                _fmt_bytes(x["bytes_channel_with_1_ready_subchannel"]),
            )
        )
    if "in_flight" in r and "error" not in r["in_flight"]:
        x = r["in_flight"]
        n = x["rpcs"]
        rows += [
            (
                f"{n} concurrent unary RPCs (server waits {x['server_wait_ms']} ms): in flight "
                "together / OK (worst batch)",
                f"{x['in_flight_together_min']} / {x['ok_min']}",
            ),
            (
                "  batch time, median (server wait included)",
                f"{x['batch_seconds_median'] * 1000:.0f} ms",
            ),
            ("  memory per in-flight RPC", _fmt_bytes(x["bytes_per_in_flight_rpc"])),
            (
                f"{n} concurrent echo RPCs: OK / batch time",
                f"{x['echo_ok']} / {x['echo_batch_seconds'] * 1000:.0f} ms",
            ),
        ]
    if "many_addresses" in r and "error" not in r["many_addresses"]:
        x = r["many_addresses"]
        n = x["addresses"]
        rows += [
            (
                f"round_robin over {n} addresses: time until all READY",
                f"{x['seconds_until_all_ready']:.2f} s",
            ),
            (
                f"  {x['rpcs']} RPCs at 100 in flight: subchannels used / calls per subchannel",
                f"{x['subchannels_used']} / {x['calls_per_subchannel_min']}-"
                f"{x['calls_per_subchannel_max']}",
            ),
            (
                f"  RPC/s over {n} addresses vs over {x['tenth_addresses']} (O(1) pick: ~1.0x)",
                f"{x['rate_n_addresses']:.0f} vs {x['rate_tenth_addresses']:.0f} "
                f"({x['rate_ratio_n_to_tenth']:.2f}x)",
            ),
            ("  RPC/s over 1 address (one connection)", f"{x['rate_1_address']:.0f}"),
            (
                f"  resolver update of {n} unchanged addresses",
                f"{x['update_unchanged_seconds_median'] * 1000:.1f} ms",
            ),
            (
                f"  resolver update to {n} new addresses",
                f"{x['update_replace_seconds'] * 1000:.1f} ms",
            ),
            (
                "  then until the new subchannels are all READY",
                f"{x['seconds_until_new_all_ready']:.2f} s",
            ),
            ("  RPC/s after the update", f"{x['rate_after_update']:.0f}"),
        ]
    width = max(len(a) for a, _ in rows)
    lines = [f"| {'measure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {a.ljust(width)} | {b} |" for a, b in rows]
    return "\n".join(lines)


async def _amain(args: argparse.Namespace, target: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
        ("idle_channel", lambda: idle_channels(target, args.channels)),
        ("ready_subchannel", lambda: ready_subchannels(target, args.subchannels, args.timeout)),
        ("in_flight", lambda: in_flight(target, args.in_flight, args.repeats, args.sleep_ms)),
        (
            "many_addresses",
            lambda: many_addresses(
                target, args.addresses, args.rpcs, args.timeout, max(3, args.repeats)
            ),
        ),
    ]
    for name, step in steps:
        log(f"[{name}] ...")
        t0 = time.perf_counter()
        try:
            results[name] = await asyncio.wait_for(step(), args.timeout * 3)
        except Exception as exc:  # report and go on: one failed measure is still a result
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"[{name}] FAILED: {exc!r}")
            continue
        log(f"[{name}] done in {time.perf_counter() - t0:.1f} s: {json.dumps(results[name])}")
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--channels", type=int, default=1000, help="idle channels (1000)")
    p.add_argument("--subchannels", type=int, default=200, help="READY subchannels (200)")
    p.add_argument("--in-flight", type=int, default=1000, help="concurrent RPCs (1000)")
    p.add_argument(
        "--sleep-ms", type=int, default=500, help="server-side wait of the in-flight RPCs (500)"
    )
    p.add_argument("--addresses", type=int, default=1000, help="round_robin addresses (1000)")
    p.add_argument("--rpcs", type=int, default=20000, help="RPCs for the rate figures (20000)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the timed parts (3)")
    p.add_argument("--timeout", type=float, default=60.0, help="bound per wait, seconds (60)")
    p.add_argument("--server", choices=["auto", "go", "grpcio"], default="auto")
    p.add_argument("--quick", action="store_true", help="100 channels/subchannels/addresses")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.channels = args.subchannels = args.addresses = 100
        args.in_flight, args.rpcs, args.repeats = 200, 2000, 1

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    load_before = os.getloadavg()
    pin = _can_pin()
    server = start_server(args.server, pin)
    t0 = time.monotonic()
    try:
        log(f"server: {server.description} on {server.target}")
        results = asyncio.run(_amain(args, server.target))
    finally:
        server.stop()
    from importlib import metadata

    doc = {
        "timestamp": stamp,
        "git_rev": _git_rev(),
        "server": {"kind": server.kind, "description": server.description},
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "python": platform.python_version(),
        "grpc_lite": metadata.version("grpc-lite"),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "total_s": time.monotonic() - t0,
        "results": results,
    }
    table = render(doc)
    doc["table"] = table
    print(
        f"grpc_lite memory and scale, {stamp}; server {server.description}; "
        f"{_cpu_model()}, {os.cpu_count()} cores; load average before "
        f"{' '.join(f'{v:.2f}' for v in load_before)}"
    )
    print(table)
    for name, res in results.items():
        if "error" in res:
            print(f"FAILED {name}: {res['error']}")
    out = args.json or RESULTS_DIR / f"scale-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    shown = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
    print(f"results: {shown} ({doc['total_s']:.0f} s)")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``grpc-lite`` command: watch a target's connectivity, check health, call, demo.

Every subcommand exits non-zero with a one-line error on a bad target, an
unreachable server or bad JSON; ``grpc-lite SUBCOMMAND --help`` explains each
one with an example.
"""

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from google.protobuf import json_format, message_factory

import grpc_lite
from grpc_lite import health
from grpc_lite._cli_shared import CliError, Reflection, prometheus_endpoint, rpc_error

_HEALTH_NAMES = health.HealthCheckResponse.ServingStatus.Name


# ---------------------------------------------------------------------------- helpers


def _duration(text: str) -> float:
    """``"1s"``, ``"500ms"``, ``"2m"`` or a plain number of seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            number = text[: -len(suffix)]
            scale = units[suffix]
            break
    else:
        number, scale = text, 1.0
    try:
        value = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (try 1s, 500ms)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return value


def _load_json(text: str, what: str) -> Any:
    if text.startswith("@"):
        try:
            with open(text[1:]) as f:
                text = f.read()
        except OSError as exc:
            raise CliError(f"cannot read {what} file {text[1:]!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"invalid {what} JSON: {exc}") from None


def _channel(
    target: str,
    *,
    service_config: Any = None,
    options: Sequence[tuple[str, Any]] = (),
    tls: bool = False,
    ca: str | None = None,
    observability: Sequence[Any] | None = None,
) -> grpc_lite.Channel:
    try:
        if tls:
            roots = None
            if ca is not None:
                try:
                    with open(ca, "rb") as f:
                        roots = f.read()
                except OSError as exc:
                    raise CliError(f"cannot read CA file {ca!r}: {exc.strerror}") from None
            creds = grpc_lite.ssl_channel_credentials(root_certificates=roots)
            return grpc_lite.secure_channel(
                target,
                creds,
                options=list(options),
                service_config=service_config,
                observability=observability,
            )
        return grpc_lite.insecure_channel(
            target,
            options=list(options),
            service_config=service_config,
            observability=observability,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _prometheus_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--prometheus-port",
        type=int,
        metavar="PORT",
        help="serve the OpenTelemetry metrics (A66 calls, A94 subchannels, A78 pick_first) "
        "for Prometheus on http://HOST:PORT/metrics (0: a free port)",
    )
    p.add_argument(
        "--prometheus-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address for --prometheus-port (default 127.0.0.1; 0.0.0.0 for every interface)",
    )


# ---------------------------------------------------------------------------- watch


def _state_line(snap: Any) -> str:
    return f"channel {snap.state.name}  policy {snap.lb_policy}  addresses {len(snap.addresses)}"


def _resolver_rows(info: Any) -> list[str]:
    """What a resolver's debug_info() says worth a line each: for xds:///, the management
    server, the ADS stream and every resource with its version and status (A40's fields)."""
    if not isinstance(info, dict) or not isinstance(info.get("xds_client"), dict):
        return []
    xds = info["xds_client"]
    rows = [
        f"    xds {xds.get('server_uri')}  stream {xds.get('stream_state')}  "
        f"config {info.get('status')}"
    ]
    for res in xds.get("resources") or ():
        line = (
            f"      {res.get('type', '?'):<4} {res.get('name')!s:<32} "
            f"{res.get('status')!s:<15} version {res.get('version') or '-'}"
        )
        if res.get("last_nack_reason"):
            line += f"  (NACK: {str(res['last_nack_reason'])[:70]})"
        rows.append(line)
    return rows


def _placement(sc: Any) -> str:
    """Where a balancer put a subchannel (xDS: cluster, priority, locality), if it says."""
    attrs = getattr(sc, "attributes", None) or {}
    parts = [f"{key[4:]} {attrs[key]}" for key in _PLACEMENT if key in attrs]
    return "  " + ", ".join(parts) if parts else ""


_PLACEMENT = ("xds.cluster", "xds.priority", "xds.locality")


def _table(snap: Any, started: float) -> str:
    rows = [f"[{time.time() - started:6.1f}s] {_state_line(snap)}"]
    rows += _resolver_rows(getattr(snap, "resolver", None))
    for sc in sorted(snap.subchannels, key=lambda s: s.address):
        health_text = sc.health or "-"
        extra = ""
        if sc.state.name == "TRANSIENT_FAILURE" and sc.last_error:
            extra = f"  ({sc.last_error[:70]})"
        rows.append(
            f"    {sc.address:<28} {sc.state.name:<18} health {health_text:<12} "
            f"ok {sc.calls_succeeded:<6} failed {sc.calls_failed:<5}{_placement(sc)}{extra}"
        )
    return "\n".join(rows)


async def _watch(args: argparse.Namespace) -> int:
    config: dict[str, Any] = {}
    if args.service_config:
        loaded = _load_json(args.service_config, "service config")
        if not isinstance(loaded, dict):
            raise CliError("invalid service config: the JSON value must be an object")
        config = loaded
    if args.lb:
        config["loadBalancingConfig"] = [{args.lb: {}}]
    if args.health_service is not None:
        config["healthCheckConfig"] = {"serviceName": args.health_service}
    options = [("grpc_lite.dns_refresh_interval_s", max(1.0, args.interval))]
    endpoint = prometheus_endpoint(args)
    try:
        channel = _channel(
            args.target,
            service_config=config or None,
            options=options,
            tls=args.tls,
            ca=args.ca,
            observability=[endpoint.plugin] if endpoint is not None else None,
        )
    except BaseException:
        if endpoint is not None:
            endpoint.close()
        raise
    started = time.time()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass

    def emit(event: Any) -> None:
        if args.json:
            print(
                json.dumps(
                    {
                        "type": "event",
                        "timestamp": event.timestamp,
                        "subject": event.subject,
                        "description": event.description,
                    }
                ),
                flush=True,
            )
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
            print(f"{stamp} {event.subject}: {event.description}", flush=True)

    remove = channel.add_trace_listener(emit)
    call_results = {"ok": 0, "failed": 0}
    calls: dict[str, int] = {}
    method = channel.unary_unary(args.call) if args.call else None
    if args.duration:
        loop.call_later(args.duration, stop.set)
    try:
        channel.get_state(try_to_connect=True)
        last_table = ""
        while not stop.is_set():
            if method is not None:
                try:
                    await method(b"", timeout=max(args.interval, 1.0))
                    call_results["ok"] += 1
                except grpc_lite.RpcError as exc:
                    call_results["failed"] += 1
                    calls[exc.code().name] = calls.get(exc.code().name, 0) + 1
                    if not args.json:
                        print(f"call {args.call}: {exc.code().name}: {exc.details()}", flush=True)
            snap = channel.snapshot()
            if args.json:
                print(
                    json.dumps({"type": "snapshot", **snap.to_dict(), "events": None}), flush=True
                )
            else:
                table = _table(snap, started)
                if table.split("\n", 1)[-1] != last_table.split("\n", 1)[-1] or method:
                    print(table, flush=True)
                last_table = table
            try:
                await asyncio.wait_for(stop.wait(), args.interval)
            except TimeoutError:
                pass
    finally:
        remove()
        snap = channel.snapshot()
        await channel.close()
        if endpoint is not None:
            endpoint.close()
    summary = {
        "type": "summary",
        "target": args.target,
        "seconds": round(time.time() - started, 1),
        "final_state": snap.state.name,
        "calls_ok": call_results["ok"],
        "calls_failed": call_results["failed"],
        "failures_by_code": calls,
        "per_backend": {
            sc.address: {"ok": sc.calls_succeeded, "failed": sc.calls_failed}
            for sc in snap.subchannels
        },
    }
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(
            f"\nsummary: {summary['seconds']}s, calls ok {call_results['ok']}, "
            f"failed {call_results['failed']} {calls or ''}"
        )
        for address, counts in summary["per_backend"].items():
            print(f"    {address:<28} ok {counts['ok']:<6} failed {counts['failed']}")
    return 0


# ---------------------------------------------------------------------------- health


async def _resolve(target: str, tls: bool, ca: str | None, wait_s: float) -> list[str]:
    """The addresses the target's resolver produces."""
    channel = _channel(
        target, service_config={"loadBalancingConfig": [{"round_robin": {}}]}, tls=tls, ca=ca
    )
    try:
        channel.get_state(try_to_connect=True)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            snap = channel.snapshot()
            if snap.addresses:
                return snap.addresses
            if snap.resolver_error:
                raise CliError(snap.resolver_error)
            await asyncio.sleep(0.05)
        raise CliError(f"target {target!r} resolved to no addresses within {wait_s:g}s")
    finally:
        await channel.close()


def _direct_target(address: str) -> str:
    return address if address.startswith("unix") else f"passthrough:///{address}"


async def _health(args: argparse.Namespace) -> int:
    addresses = await _resolve(args.target, args.tls, args.ca, args.timeout)
    request = health.HealthCheckRequest(service=args.service)
    results: dict[str, str] = {}

    async def check(address: str) -> None:
        async with _channel(_direct_target(address), tls=args.tls, ca=args.ca) as ch:
            stub = health.HealthStub(ch)
            if not args.watch:
                try:
                    reply = await stub.Check(request, timeout=args.timeout)
                    results[address] = _HEALTH_NAMES(reply.status)
                except grpc_lite.RpcError as exc:
                    results[address] = f"{exc.code().name}: {exc.details()}"
                print(f"{address}: {results[address]}", flush=True)
                return
            try:
                async for reply in stub.Watch(request):
                    status = _HEALTH_NAMES(reply.status)
                    results[address] = status
                    print(f"{time.strftime('%H:%M:%S')} {address}: {status}", flush=True)
            except grpc_lite.RpcError as exc:
                print(f"{address}: {exc.code().name}: {exc.details()}", flush=True)

    tasks = [asyncio.create_task(check(a)) for a in addresses]
    if args.watch:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        if args.duration:
            loop.call_later(args.duration, stop.set)
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return 0
    await asyncio.gather(*tasks)
    return 0 if all(v == "SERVING" for v in results.values()) else 2


# ---------------------------------------------------------------------------- call


async def _call(args: argparse.Namespace) -> int:
    path = args.method
    if not path.startswith("/") or path.count("/") != 2:
        raise CliError(f"method must look like /package.Service/Method, got {path!r}")
    service, name = path[1:].split("/")
    data = _load_json(args.data, "--data") if args.data else {}
    if not isinstance(data, dict):
        raise CliError("--data must be a JSON object")
    async with _channel(args.target, tls=args.tls, ca=args.ca) as channel:
        method = await Reflection(channel, args.timeout).method(service, name)
        if method.client_streaming or method.server_streaming:
            raise CliError(f"{path} is a streaming method; 'call' makes unary calls only")
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        try:
            request = json_format.ParseDict(data, request_cls())
        except json_format.ParseError as exc:
            raise CliError(f"--data does not fit {method.input_type.full_name}: {exc}") from None
        call = channel.unary_unary(path, request_cls.SerializeToString, response_cls.FromString)
        try:
            reply = await call(request, timeout=args.timeout)
        except grpc_lite.RpcError as exc:
            print(json.dumps({"status": exc.code().name, "details": exc.details()}))
            return 1
        print(json_format.MessageToJson(reply, preserving_proto_field_name=True))
        print(json.dumps({"status": "OK"}))
    return 0


# ---------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grpc-lite",
        description="Connectivity debugging for gRPC targets, built on grpc_lite.",
        epilog="Run 'grpc-lite COMMAND --help' for each command. Start with 'grpc-lite demo'.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--tls", action="store_true", help="use TLS (verifying the server)")
        p.add_argument("--ca", help="PEM file of root certificates for --tls")

    watch = sub.add_parser(
        "watch",
        help="show a target's channel and subchannel states live",
        description="Connect to TARGET and show, live, the channel state, the resolved "
        "addresses and every subchannel's state and health; with --call, send a periodic "
        "RPC and count results per backend. Ctrl-C ends it with a summary.",
        epilog="example: grpc-lite watch dns:///my-svc:50051 --lb round_robin "
        "--health-service '' --call /helloworld.Greeter/SayHello --interval 1s",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watch.add_argument("target")
    watch.add_argument("--service-config", help="service config JSON, or @file")
    watch.add_argument("--lb", help="load-balancing policy (pick_first, round_robin)")
    watch.add_argument("--health-service", help="enable client-side health checking of NAME")
    watch.add_argument("--call", help="a unary method to call every interval (empty request)")
    watch.add_argument("--interval", type=_duration, default=1.0, help="default 1s")
    watch.add_argument("--duration", type=_duration, help="stop after this long")
    watch.add_argument("--json", action="store_true", help="one JSON object per line")
    _prometheus_arguments(watch)
    common(watch)

    hc = sub.add_parser(
        "health",
        help="check the health of each resolved backend",
        description="Resolve TARGET and ask each backend's grpc.health.v1 service for "
        "SERVICE (default: the whole server). Exit status 0 when all are SERVING.",
        epilog="example: grpc-lite health dns:///my-svc:50051 helloworld.Greeter --watch",
    )
    hc.add_argument("target")
    hc.add_argument("service", nargs="?", default="")
    hc.add_argument("--watch", action="store_true", help="stream changes (Health/Watch)")
    hc.add_argument("--timeout", type=_duration, default=5.0)
    hc.add_argument("--duration", type=_duration, help="with --watch, stop after this long")
    common(hc)

    call = sub.add_parser(
        "call",
        help="make a unary call using the server's reflection service",
        description="Call METHOD on TARGET; request and response types come from the "
        "server's reflection service (grpc.reflection.v1, v1alpha fallback). The response "
        "is printed as JSON, then the status.",
        epilog="example: grpc-lite call localhost:50051 /helloworld.Greeter/SayHello "
        '--data \'{"name": "you"}\'',
    )
    call.add_argument("target")
    call.add_argument("method")
    call.add_argument("--data", help="request as JSON, or @file")
    call.add_argument("--timeout", type=_duration, default=5.0)
    common(call)

    demo = sub.add_parser(
        "demo",
        help="replay a rolling scale-down on three local backends",
        description="Start three local backends (127.0.0.1/.2/.3), run a round_robin "
        "channel with retries and health checking against them, and replay the story: a "
        "backend gets stuck and turns NOT_SERVING, two are scaled down (graceful drain, then "
        "a hard kill), and they come back. Ends with a table of calls per backend.",
        epilog="example: grpc-lite demo            (then: grpc-lite demo --no-retry --no-health)",
    )
    demo.add_argument("--no-retry", action="store_true", help="run without the retry policy")
    demo.add_argument("--no-health", action="store_true", help="run without health checks")
    demo.add_argument("--json", action="store_true", help="one JSON object per line")
    demo.add_argument("--speed", type=float, default=1.0, help="time scale (2 = twice as fast)")
    _prometheus_arguments(demo)

    from grpc_lite._load import add_parser as add_load_parser

    add_load_parser(sub)
    # Listed for --help only: main() hands "grpc-lite xds ..." to grpc_lite.xds before parsing.
    sub.add_parser("xds", help="xDS: check a bootstrap and its server, dump a channel's view")
    return parser


def _fail(message: str) -> NoReturn:
    print(f"grpc-lite: error: {message}", file=sys.stderr)
    raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["xds"]:  # grpc-lite xds check|dump: grpc_lite/xds/_cli.py
        from grpc_lite.xds import cli_main

        raise SystemExit(cli_main(argv[1:]))
    args = _parser().parse_args(argv)
    handlers = {"watch": _watch, "health": _health, "call": _call}
    if args.command == "load":
        from grpc_lite._load import run_command

        raise SystemExit(run_command(args))
    try:
        if args.command == "demo":
            from grpc_lite._demo import run_demo

            code = asyncio.run(run_demo(args))
        else:
            code = asyncio.run(handlers[args.command](args))
    except CliError as exc:
        _fail(str(exc))
    except grpc_lite.RpcError as exc:
        _fail(str(rpc_error(exc)))
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)

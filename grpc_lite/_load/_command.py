"""``grpc-lite load``: the command line, its checks, and the run from start to report.

Exit status: 0 when every call succeeded and every ``--assert`` holds; 1 when a call
failed (unless an ``errors`` threshold is given: then it decides) or a threshold is
broken; 2 on bad input (one line on stderr, before any load is sent); 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
from typing import Any, NoReturn

from .._cli_shared import CliError

__all__ = ["add_parser", "run_command"]

FORMATS = ("summary", "json", "pretty", "csv", "html", "influx-summary", "influx-details")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (``20s``, ``1m30s``, ``500ms``, ``0``); plain numbers are
    seconds."""
    s = text.strip()
    if s in ("0", ""):
        return 0.0
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if value < 0:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}: negative")
        return value
    pos = 0
    total = 0.0
    for m in _GO_DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (try 10s, 500ms, 1m30s)")
    return total


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None


def _one_line_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    print(f"grpc-lite load: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "load",
        help="load-test a gRPC method (ghz's flags and report)",
        description="Send calls to METHOD on TARGET and report latency and throughput, with "
        "ghz's flag names and report layout. Message types come from server reflection, "
        "--proto or --protoset. Without --rps each of the -c workers makes one call after "
        "another (closed model); with --rps or --load-schedule calls are sent on the clock "
        "(open model) and latency counts from each call's due time. Exit status: 0 all OK, "
        "1 failed calls or broken --assert, 2 bad input.",
        epilog="examples:\n"
        "  grpc-lite load localhost:50051 --insecure --call helloworld.Greeter/SayHello \\\n"
        '      -d \'{"name": "{{.WorkerID}}-{{.RequestNumber}}"}\' -c 50 -z 30s\n'
        "  grpc-lite load dns:///svc:443 --call pkg.Svc/Get --proto svc.proto -i protos \\\n"
        "      --rps 2000 -z 1m --lb round_robin --assert 'p99<50ms,errors<0.1%' -O html -o r.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.error = lambda message: _one_line_error(p, message)  # type: ignore[method-assign]
    p.add_argument("target", nargs="?", help="host:port or any grpc_lite target")
    g = p.add_argument_group("method and messages")
    g.add_argument("--call", help="package.Service/Method (or package.Service.Method)")
    g.add_argument("--proto", help="a .proto file (compiled with protoc or grpcio-tools)")
    g.add_argument("-i", "--import-paths", default="", help="comma-separated import paths")
    g.add_argument("--protoset", help="a compiled FileDescriptorSet (protoc -o)")
    g.add_argument("-d", "--data", help="request JSON (an array for streams); @ reads stdin")
    g.add_argument("-D", "--data-file", help="file with the request JSON")
    g.add_argument("-m", "--metadata", help='metadata JSON, e.g. {"key": "value"}')
    g.add_argument("-M", "--metadata-file", help="file with the metadata JSON")
    g = p.add_argument_group("connection")
    g.add_argument("--insecure", action="store_true", help="plaintext (default: TLS)")
    g.add_argument("--cacert", help="PEM root certificates to verify the server")
    g.add_argument("--cert", help="PEM client certificate (with --key)")
    g.add_argument("--key", help="PEM client private key (with --cert)")
    g.add_argument("--cname", help="server name to verify the certificate against")
    g.add_argument("--skipTLS", action="store_true", help="do not verify the server")
    g.add_argument("--authority", help=":authority to send")
    g.add_argument("--connections", type=int, default=1, help="HTTP/2 connections (default 1)")
    g.add_argument("--connect-timeout", type=go_duration, default=10.0, help="default 10s")
    g.add_argument("--keepalive", type=go_duration, default=0.0, help="keepalive time")
    g.add_argument("--lb", help="load-balancing policy (pick_first, round_robin)")
    g.add_argument("--service-config", help="service config JSON (retries, hedging), or @file")
    g.add_argument("--max-recv-message-size", type=int, help="bytes")
    g.add_argument("--max-send-message-size", type=int, help="bytes")
    g = p.add_argument_group("amount")
    g.add_argument("-n", "--total", type=_non_negative_int, help="requests (default 200)")
    g.add_argument("-z", "--duration", type=go_duration, help="run this long (-n is ignored)")
    g.add_argument("-x", "--max-duration", type=go_duration, help="stop after this long")
    g.add_argument("-t", "--timeout", type=go_duration, default=20.0, help="per call, 0 = none")
    g.add_argument("--skipFirst", type=_non_negative_int, default=0, help="leave out requests")
    g.add_argument("--count-errors", action="store_true", help="errors count in latencies")
    g.add_argument(
        "--duration-stop",
        choices=("close", "wait", "ignore"),
        default="wait",
        help="calls in flight at -z: wait (default), close (count as Canceled), ignore",
    )
    g = p.add_argument_group("concurrency and rate")
    g.add_argument("-c", "--concurrency", type=int, default=50, help="workers (default 50)")
    g.add_argument("-r", "--rps", type=_number, default=0.0, help="requests/s, open model")
    g.add_argument("--load-schedule", choices=("const", "step", "line"), default="const")
    g.add_argument("--load-start", type=_number, default=0.0)
    g.add_argument("--load-step", type=_number, default=0.0)
    g.add_argument("--load-end", type=_number, default=0.0)
    g.add_argument("--load-step-duration", type=go_duration, default=0.0)
    g.add_argument("--load-max-duration", type=go_duration, default=0.0)
    g.add_argument("--concurrency-schedule", choices=("const", "step", "line"), default="const")
    g.add_argument("--concurrency-start", type=_number, default=0.0)
    g.add_argument("--concurrency-step", type=_number, default=1.0)
    g.add_argument("--concurrency-end", type=_number, default=0.0)
    g.add_argument("--concurrency-step-duration", type=go_duration, default=0.0)
    g.add_argument("--concurrency-max-duration", type=go_duration, default=0.0)
    g.add_argument("--cpus", type=int, help="worker processes (default: every core)")
    g.add_argument(
        "--busy-poll",
        action="store_true",
        help="the workers poll for events instead of sleeping between them: each keeps a "
        "core busy, and latency at low rates no longer includes the core waking up",
    )
    g = p.add_argument_group("streams")
    g.add_argument("--stream-interval", type=go_duration, default=0.0)
    g.add_argument("--stream-call-duration", type=go_duration, default=0.0)
    g.add_argument("--stream-call-count", type=_non_negative_int, default=0)
    g = p.add_argument_group("output")
    g.add_argument("-O", "--format", choices=FORMATS, default="summary")
    g.add_argument("-o", "--output", help="write the report here (default stdout)")
    g.add_argument("--name", default="", help="a name for the run")
    g.add_argument("--tags", help='JSON object of string tags, e.g. {"env": "ci"}')
    g.add_argument(
        "--assert",
        dest="asserts",
        action="append",
        default=[],
        help="threshold such as p99<50ms, errors<1%%, rps>=1000 (repeatable)",
    )
    g.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "off"),
        default="auto",
        help="live progress on stderr: a bar on a terminal (auto), one line a second, or off",
    )
    g.add_argument(
        "--report-from",
        metavar="JSON",
        help="render a saved -O json report in -O's format instead of running",
    )
    return p


# ---------------------------------------------------------------------------- checks


def _read_file(path: str, what: str, binary: bool = False) -> Any:
    try:
        with open(path, "rb" if binary else "r") as f:
            return f.read()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path!r}: {exc.strerror}") from None


def _data_text(args: argparse.Namespace) -> str:
    if args.data is not None and args.data_file is not None:
        raise CliError("give -d or -D, not both")
    if args.data_file is not None:
        return str(_read_file(args.data_file, "-D file"))
    if args.data is None:
        return "{}"
    if args.data == "@":
        return sys.stdin.read()
    if args.data.startswith("@"):
        return str(_read_file(args.data[1:], "-d file"))
    return str(args.data)


def _metadata_text(args: argparse.Namespace) -> str | None:
    if args.metadata is not None and args.metadata_file is not None:
        raise CliError("give -m or -M, not both")
    if args.metadata_file is not None:
        return str(_read_file(args.metadata_file, "-M file"))
    return str(args.metadata) if args.metadata is not None else None


def _schedules(args: argparse.Namespace) -> tuple[Any, Any]:
    from ._schedule import ConcurrencySchedule, RateSchedule
    from ._spec import ScheduleSpec

    rate = None
    if args.rps < 0:
        raise CliError("--rps must not be negative")
    if args.load_schedule != "const":
        if args.rps:
            raise CliError("--rps is for the const load schedule; use --load-start for step/line")
        rate = ScheduleSpec(
            args.load_schedule,
            0.0,
            args.load_start,
            args.load_step,
            args.load_end,
            args.load_step_duration,
            args.load_max_duration,
        )
    elif args.rps:
        rate = ScheduleSpec("const", args.rps)
    if args.concurrency_schedule == "const":
        if args.concurrency < 1:
            raise CliError("-c must be at least 1")
        conc = ScheduleSpec("const", float(args.concurrency))
    else:
        conc = ScheduleSpec(
            args.concurrency_schedule,
            0.0,
            args.concurrency_start,
            args.concurrency_step,
            args.concurrency_end,
            args.concurrency_step_duration,
            args.concurrency_max_duration,
        )
    try:
        if rate is not None:
            RateSchedule.build(
                rate.kind,
                rps=rate.value,
                start=rate.start,
                step=rate.step,
                end=rate.end,
                step_duration=rate.step_duration,
                max_duration=rate.max_duration,
            )
        ConcurrencySchedule.build(
            conc.kind,
            concurrency=int(conc.value),
            start=conc.start,
            step=conc.step,
            end=conc.end,
            step_duration=conc.step_duration,
            max_duration=conc.max_duration,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return rate, conc


def _tls(args: argparse.Namespace) -> Any:
    from ._spec import TlsSpec

    if args.insecure:
        for flag in ("cacert", "cert", "key", "cname"):
            if getattr(args, flag):
                raise CliError(f"--{flag} is a TLS option; drop --insecure to use TLS")
        return None
    if (args.cert is None) != (args.key is None):
        raise CliError("--cert and --key go together")
    roots = _read_file(args.cacert, "--cacert", True) if args.cacert else None
    cert = _read_file(args.cert, "--cert", True) if args.cert else None
    key = _read_file(args.key, "--key", True) if args.key else None
    import grpc_lite

    try:
        grpc_lite.ssl_channel_credentials(roots, key, cert)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return TlsSpec(roots, cert, key, args.skipTLS)


def _service_config(args: argparse.Namespace) -> dict[str, Any] | None:
    config: dict[str, Any] = {}
    if args.service_config:
        text = args.service_config
        if text.startswith("@"):
            text = _read_file(text[1:], "--service-config file")
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"invalid --service-config JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise CliError("--service-config must be a JSON object")
        config = loaded
    if args.lb:
        config["loadBalancingConfig"] = [{args.lb: {}}]
    if not config:
        return None
    from grpc_lite._channel import parse_config

    try:
        parse_config(config)
    except ValueError as exc:
        raise CliError(f"invalid service config: {exc}") from None
    return config


def _channel_options(args: argparse.Namespace) -> tuple[tuple[str, Any], ...]:
    options: list[tuple[str, Any]] = []
    if args.authority:
        options.append(("grpc.default_authority", args.authority))
    if args.cname:
        options.append(("grpc.ssl_target_name_override", args.cname))
    if args.keepalive:
        options.append(("grpc.keepalive_time_ms", int(args.keepalive * 1000)))
    if args.max_recv_message_size is not None:
        options.append(("grpc.max_receive_message_length", args.max_recv_message_size))
    if args.max_send_message_size is not None:
        options.append(("grpc.max_send_message_length", args.max_send_message_size))
    return tuple(options)


def _tags(args: argparse.Namespace) -> dict[str, str] | None:
    if not args.tags:
        return None
    try:
        tags = json.loads(args.tags)
    except json.JSONDecodeError as exc:
        raise CliError(f"invalid --tags JSON: {exc}") from None
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise CliError("--tags must be a JSON object of strings")
    return tags


def default_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _ns(seconds: float | None) -> int:
    return int((seconds or 0) * 1e9)


def _options(args: argparse.Namespace, spec: Any, cpus: int) -> dict[str, Any]:
    """ghz's ``options`` object."""
    data: Any
    try:
        data = json.loads(spec.data)
    except json.JSONDecodeError:
        data = spec.data
    options: dict[str, Any] = {
        "call": f"{spec.method.service}.{spec.method.method}",
        "host": spec.target,
    }
    if args.proto:
        options["proto"] = args.proto
    if args.protoset:
        options["protoset"] = args.protoset
    if args.import_paths:
        options["import-paths"] = [p for p in args.import_paths.split(",") if p]
    for key in ("cacert", "cert", "key", "cname"):
        if getattr(args, key):
            options[key] = getattr(args, key)
    if args.skipTLS:
        options["skipTLS"] = True
    options["insecure"] = bool(args.insecure)
    if args.authority:
        options["authority"] = args.authority
    rate = spec.rate
    conc = spec.concurrency
    if rate is not None and rate.kind == "const":
        options["rps"] = int(rate.value)
    options["load-schedule"] = rate.kind if rate is not None else "const"
    options["load-start"] = int(rate.start) if rate is not None else 0
    options["load-end"] = int(rate.end) if rate is not None else 0
    options["load-step"] = int(rate.step) if rate is not None else 0
    options["load-step-duration"] = _ns(rate.step_duration if rate is not None else 0)
    options["load-max-duration"] = _ns(rate.max_duration if rate is not None else 0)
    if conc.kind == "const":
        options["concurrency"] = int(conc.value)
    options["concurrency-schedule"] = conc.kind
    options["concurrency-start"] = int(conc.start)
    options["concurrency-end"] = int(conc.end)
    options["concurrency-step"] = int(conc.step)
    options["concurrency-step-duration"] = _ns(conc.step_duration)
    options["concurrency-max-duration"] = _ns(conc.max_duration)
    if spec.total is not None:
        options["total"] = spec.total
    options["connections"] = spec.connections
    if spec.duration:
        options["duration"] = _ns(spec.duration)
    if spec.timeout:
        options["timeout"] = _ns(spec.timeout)
    options["dial-timeout"] = _ns(spec.connect_timeout)
    if args.keepalive:
        options["keepalive"] = _ns(args.keepalive)
    options["data"] = data
    options["binary"] = False
    if spec.metadata:
        options["metadata"] = json.loads(spec.metadata)
    options["CPUs"] = cpus
    if spec.busy_poll:
        options["busy-poll"] = True
    if args.name:
        options["name"] = args.name
    if spec.skip_first:
        options["skipFirst"] = spec.skip_first
    if spec.count_errors:
        options["count-errors"] = True
    return options


# ---------------------------------------------------------------------------- the run


def _render(report: dict[str, Any], fmt: str) -> str:
    from . import _report

    if fmt == "summary":
        return _report.format_summary(report)
    if fmt == "json":
        return json.dumps(report, separators=(",", ":"))
    if fmt == "pretty":
        return json.dumps(report, indent=2)
    if fmt == "csv":
        return _report.format_csv(report)
    if fmt == "influx-summary":
        return _report.format_influx_summary(report)
    if fmt == "influx-details":
        return _report.format_influx_details(report)
    from ._html import render_html

    return render_html(report)


def _write(text: str, path: str | None) -> None:
    if path:
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise CliError(f"cannot write {path!r}: {exc.strerror}") from None
    else:
        try:
            sys.stdout.write(text)
            if not text.endswith("\n"):
                sys.stdout.write("\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `grpc-lite load ... | head`
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


def _check_output_path(path: str | None) -> None:
    if not path:
        return
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(directory):
        raise CliError(f"cannot write -o {path!r}: no such directory")


async def _prepare(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """Every check that needs no load: the spec and the thresholds, or CliError."""
    from . import _describe
    from ._assert import parse_thresholds
    from ._data import CallContext, DataSource, MetadataSource
    from ._engine import connect_failure, make_channel
    from ._histogram import new_hdr
    from ._spec import RunSpec

    try:
        new_hdr()
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    if not args.target:
        raise CliError("a TARGET (host:port) is required")
    if not args.call:
        raise CliError("--call package.Service/Method is required")
    service, method = _describe.parse_call(args.call)
    if args.proto and args.protoset:
        raise CliError("give --proto or --protoset, not both")
    thresholds = parse_thresholds(args.asserts)
    if args.connections < 1:
        raise CliError("--connections must be at least 1")
    if args.cpus is not None and args.cpus < 1:
        raise CliError("--cpus must be at least 1")
    if args.total is not None and args.total == 0 and not args.duration:
        raise CliError("-n must be at least 1")
    rate, conc = _schedules(args)
    tls = _tls(args)
    config = _service_config(args)
    _check_output_path(args.output)
    _tags(args)  # checked now, used in the report
    data_text = _data_text(args)
    metadata_text = _metadata_text(args)
    MetadataSource(metadata_text)
    total = None if args.duration else (args.total if args.total is not None else 200)
    details = args.format in ("csv", "influx-details")
    import_paths = [p for p in args.import_paths.split(",") if p]
    if args.proto:
        info = _describe.from_proto(args.proto, import_paths, service, method)
    elif args.protoset:
        info = _describe.from_protoset(args.protoset, service, method)
    else:
        info = None
    spec = RunSpec(
        target=args.target,
        method=info if info is not None else _describe.MethodInfo(service, method, b""),
        data=data_text,
        metadata=metadata_text,
        tls=tls,
        options=_channel_options(args),
        service_config=config,
        connections=args.connections,
        total=total,
        duration=args.duration or None,
        max_duration=args.max_duration or None,
        timeout=args.timeout or None,
        rate=rate,
        concurrency=conc,
        stream_interval=args.stream_interval,
        stream_call_duration=args.stream_call_duration,
        stream_call_count=args.stream_call_count,
        skip_first=args.skipFirst,
        count_errors=args.count_errors,
        details=details,
        duration_stop=args.duration_stop,
        connect_timeout=args.connect_timeout,
        busy_poll=args.busy_poll,
    )
    try:
        channel = make_channel(spec)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        try:
            await asyncio.wait_for(channel.channel_ready(), spec.connect_timeout)
        except TimeoutError:
            reason = connect_failure(channel)
            raise CliError(
                f"cannot connect to {spec.target} within {spec.connect_timeout:g}s: {reason}"
            ) from None
        if info is None:
            info = await _describe.from_reflection(channel, service, method, spec.connect_timeout)
            from dataclasses import replace

            spec = replace(spec, method=info)
    finally:
        await channel.close()
    descriptor = info.descriptor()
    request_cls = info.message_classes()[0]
    DataSource(spec.data, descriptor, request_cls).check(CallContext(descriptor, 0, "g0c0"))
    return spec, thresholds


async def _execute(spec: Any, cpus: int, progress: Any) -> Any:
    from ._engine import Engine, ShardResult
    from ._report import merge
    from ._worker import WorkerError, run_workers

    loop = asyncio.get_running_loop()
    stop_event = asyncio.Event()
    results: list[ShardResult]
    engine: Engine | None = None

    def on_sigint() -> None:
        stop_event.set()
        if engine is not None:
            engine.stop()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):  # pragma: no cover
        pass
    progress.start()
    try:
        if cpus == 1:
            engine = Engine(spec, on_interval=progress.update)
            try:
                await engine.connect()
            except ConnectionError as exc:
                await engine.close()
                raise CliError(str(exc)) from None
            results = [await engine.run()]
        else:
            try:
                results = await run_workers(spec, cpus, progress.update, stop_event)
            except WorkerError as exc:
                raise CliError(str(exc)) from None
    finally:
        progress.stop()
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass
    return merge(results)


def _shards(spec: Any, cpus: int) -> int:
    from ._engine import concurrency_schedule

    most = concurrency_schedule(spec.concurrency).maximum()
    shards = min(cpus, max(1, most))
    if spec.total is not None:
        shards = min(shards, spec.total)
    return max(1, shards)


def run_warnings(spec: Any, result: Any) -> list[str]:
    """What the report should warn of, from the merged result."""
    warnings = []
    if result.lag_counts and result.lag_max_ns > 100_000_000:
        warnings.append(
            f"sends fell behind the schedule by up to {result.lag_max_ns / 1e6:.0f} ms: all "
            "-c workers were busy (raise -c), or the client was saturated (raise --cpus)"
        )
    if spec.busy_poll and not result.busy_poll:
        warnings.append(
            "--busy-poll: the workers' event loops could not poll (that needs Linux's epoll); "
            "they slept between events, and only waited for sends by polling"
        )
    return warnings


def run_command(args: argparse.Namespace) -> int:
    from ._loop import new_event_loop

    try:
        if args.report_from:
            return _rerender(args)
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            spec, thresholds = runner.run(_prepare(args))
            cpus = _shards(spec, args.cpus or default_cpus())
            from ._progress import Progress

            progress = Progress(args.progress, total=spec.total, duration=spec.duration)
            result = runner.run(_execute(spec, cpus, progress))
    except CliError as exc:
        print(f"grpc-lite load: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    from ._report import build_report

    extra = {
        "kind": spec.method.kind(),
        "openModel": spec.rate is not None,
        "cpus": cpus,
        "warnings": run_warnings(spec, result),
    }
    report = build_report(
        result,
        options=_options(args, spec, cpus),
        name=args.name,
        tags=_tags(args),
        extra=extra,
    )
    try:
        _write(_render(report, args.format), args.output)
    except CliError as exc:
        print(f"grpc-lite load: error: {exc}", file=sys.stderr)
        return 2
    return _verdict(report, thresholds)


def _verdict(report: dict[str, Any], thresholds: list[Any]) -> int:
    from ._assert import check

    status = 0
    failed = sum((report.get("errorDistribution") or {}).values())
    errors_asserted = any(t.metric.startswith("errors") for t in thresholds)
    if failed and not errors_asserted:
        print(f"grpc-lite load: {failed} of {report['count']} calls failed", file=sys.stderr)
        status = 1
    for broken in check(thresholds, report):
        print(f"grpc-lite load: assert failed: {broken}", file=sys.stderr)
        status = 1
    if report.get("endReason") == "cancel":
        return 130
    return status


def _rerender(args: argparse.Namespace) -> int:
    from ._assert import parse_thresholds

    thresholds = parse_thresholds(args.asserts)
    text = _read_file(args.report_from, "--report-from")
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--report-from is not JSON: {exc}") from None
    if not isinstance(report, dict) or "count" not in report:
        raise CliError("--report-from is not a grpc-lite load / ghz JSON report")
    report.setdefault("grpcLite", {})
    _write(_render(report, args.format), args.output)
    return _verdict(report, thresholds)

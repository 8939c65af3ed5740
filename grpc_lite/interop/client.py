"""The client side of gRPC's cross-language interop suite, on grpc_lite.

Runs the test cases of grpc/grpc ``doc/interop-test-descriptions.md`` against any server of
``grpc.testing.TestService`` (grpc-go's, grpc-java's, grpc C++'s, grpcio's, ...)::

    python -m grpc_lite.interop.client --server_host 127.0.0.1 --server_port 10000 \\
        --test_case all
    python -m grpc_lite.interop.client --server_port 10000 --use_tls --use_test_ca \\
        --ca_file ca.pem --server_host_override foo.test.google.fr --test_case large_unary

The flags are the ones every gRPC language's interop client takes (booleans accept
``--flag``, ``--flag=true`` and ``--flag=false``). ``--use_test_ca`` trusts the CA in
``--ca_file`` instead of the system roots (grpc_lite does not ship grpc's test CA; pass its
``ca.pem`` or your own). Each case prints one line, ``PASS name (seconds)`` or
``FAIL name: why``; the exit status is 0 only when every case passed.

The cases that need cloud credentials (compute_engine_creds, jwt_token_creds, ...), a
caching proxy (cacheable_unary) or xDS/ORCA servers are not part of this client.

The compressed flag of *received* messages (server_compressed_unary/streaming) is read from
the call's stream (grpc.aio has no API for it). For the streaming case the client checks that
exactly one of the two responses carried the flag (it counts flags, it does not keep them per
message).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc_lite
from grpc_lite import StatusCode
from grpc_lite._proto import testing_pb2 as m

__all__ = ["CASES", "CaseResult", "Settings", "main", "run_case", "run_cases"]

ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_INITIAL_VALUE = "test_initial_metadata_value"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"
ECHO_TRAILING_VALUE = b"\xab\xab\xab"
SPECIAL_STATUS_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
LARGE_REQUEST = 271828
LARGE_RESPONSE = 314159
#: very_large_request (grpc-java's AbstractInteropTest.veryLargeRequest): a 10 MiB request.
VERY_LARGE_REQUEST = 10 * 1024 * 1024
#: Every case but timeout_on_sleeping_server runs under this deadline (nothing hangs).
CASE_TIMEOUT = 30.0


@dataclass
class Settings:
    """What the command line says (the interop flags)."""

    server_host: str = "localhost"
    server_port: int = 10000
    server_host_override: str | None = None
    use_tls: bool = False
    use_test_ca: bool = False
    ca_file: str | None = None
    soak_iterations: int = 10
    soak_max_failures: int = 0
    soak_per_iteration_max_acceptable_latency_ms: int = 1000
    soak_overall_timeout_seconds: int = 10
    soak_min_time_ms_between_rpcs: int = 0
    soak_request_size: int = LARGE_REQUEST
    soak_response_size: int = LARGE_RESPONSE
    soak_num_threads: int = 1

    @property
    def target(self) -> str:
        host = self.server_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.server_port}"

    def new_channel(self) -> grpc_lite.Channel:
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", 32 * 1024 * 1024),
        ]
        if self.server_host_override:
            options.append(("grpc.ssl_target_name_override", self.server_host_override))
            options.append(("grpc.default_authority", self.server_host_override))
        if not self.use_tls:
            return grpc_lite.insecure_channel(self.target, options)
        root: bytes | None = None
        if self.use_test_ca:
            if not self.ca_file:
                raise SystemExit(
                    "--use_test_ca needs --ca_file: grpc_lite does not ship grpc's test CA "
                    "(pass its ca.pem, or the CA that signed the server's certificate)"
                )
            with open(self.ca_file, "rb") as f:
                root = f.read()
        elif self.ca_file:
            raise SystemExit("--ca_file is only used with --use_test_ca")
        credentials = grpc_lite.ssl_channel_credentials(root_certificates=root)
        return grpc_lite.secure_channel(self.target, credentials, options)


class Client:
    """One channel and the stubs the cases use."""

    def __init__(self, settings: Settings, channel: grpc_lite.Channel) -> None:
        services = m.DESCRIPTOR.services_by_name
        self.settings = settings
        self.channel = channel
        self.stub: Any = grpc_lite.Stub(channel, services["TestService"])
        self.unimplemented: Any = grpc_lite.Stub(channel, services["UnimplementedService"])


def _payload(size: int) -> Any:
    return m.Payload(type=m.COMPRESSABLE, body=bytes(size))


def _simple(response_size: int, request_size: int, **fields: Any) -> Any:
    return m.SimpleRequest(
        response_type=m.COMPRESSABLE,
        response_size=response_size,
        payload=_payload(request_size),
        **fields,
    )


def _streaming_output(sizes: Sequence[int], request_size: int = 0, **fields: Any) -> Any:
    return m.StreamingOutputCallRequest(
        response_type=m.COMPRESSABLE,
        response_parameters=[m.ResponseParameters(size=size) for size in sizes],
        payload=_payload(request_size) if request_size else None,
        **fields,
    )


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def _check_zero_payload(body: bytes, size: int, what: str) -> None:
    _check(len(body) == size, f"{what}: payload is {len(body)} bytes, want {size}")
    _check(body == bytes(size), f"{what}: payload is not all zero bytes")


async def _expect_status(awaitable: Awaitable[Any], code: StatusCode, what: str) -> Any:
    try:
        result = await awaitable
    except grpc_lite.RpcError as exc:
        _check(
            exc.code() is code,
            f"{what}: status {exc.code().name} ({exc.details()!r}), want {code.name}",
        )
        return exc
    raise AssertionError(f"{what}: succeeded ({type(result).__name__}), want {code.name}")


# ----------------------------------------------------------------------------- the cases


async def empty_unary(c: Client) -> None:
    response = await c.stub.EmptyCall(m.Empty(), timeout=CASE_TIMEOUT)
    _check(response is not None, "EmptyCall returned no response")
    _check(isinstance(response, m.Empty), f"EmptyCall returned {type(response).__name__}")


async def large_unary(c: Client) -> None:
    response = await c.stub.UnaryCall(_simple(LARGE_RESPONSE, LARGE_REQUEST), timeout=CASE_TIMEOUT)
    _check_zero_payload(response.payload.body, LARGE_RESPONSE, "UnaryCall")


async def _compressed_unary_probe(c: Client) -> None:
    probe = _simple(LARGE_RESPONSE, LARGE_REQUEST, expect_compressed=m.BoolValue(value=True))
    await _expect_status(
        c.stub.UnaryCall(probe, timeout=CASE_TIMEOUT),
        StatusCode.INVALID_ARGUMENT,
        "probe (uncompressed request with expect_compressed=true)",
    )


async def client_compressed_unary(c: Client) -> None:
    await _compressed_unary_probe(c)
    for compressed in (True, False):
        response = await c.stub.UnaryCall(
            _simple(LARGE_RESPONSE, LARGE_REQUEST, expect_compressed=m.BoolValue(value=compressed)),
            compression=grpc_lite.Compression.Gzip if compressed else None,
            timeout=CASE_TIMEOUT,
        )
        _check_zero_payload(
            response.payload.body, LARGE_RESPONSE, f"UnaryCall (compressed={compressed})"
        )


async def server_compressed_unary(c: Client) -> None:
    for compressed in (True, False):
        call = c.stub.UnaryCall(
            _simple(
                LARGE_RESPONSE,
                LARGE_REQUEST,
                response_compressed=m.BoolValue(value=compressed),
            ),
            timeout=CASE_TIMEOUT,
        )
        response = await call
        what = f"UnaryCall (response_compressed={compressed})"
        _check_zero_payload(response.payload.body, LARGE_RESPONSE, what)
        flagged = call._compressed_messages_received()
        _check(
            flagged == int(compressed),
            f"{what}: the response {'lacks' if compressed else 'has'} the compressed flag",
        )


_CLIENT_STREAMING_SIZES = (27182, 8, 1828, 45904)


async def client_streaming(c: Client) -> None:
    call = c.stub.StreamingInputCall(timeout=CASE_TIMEOUT)
    for size in _CLIENT_STREAMING_SIZES:
        await call.write(m.StreamingInputCallRequest(payload=_payload(size)))
    await call.done_writing()
    response = await call
    _check(
        response.aggregated_payload_size == 74922,
        f"aggregated_payload_size {response.aggregated_payload_size}, want 74922",
    )


async def client_compressed_streaming(c: Client) -> None:
    probe = c.stub.StreamingInputCall(timeout=CASE_TIMEOUT)
    await probe.write(
        m.StreamingInputCallRequest(
            payload=_payload(27182), expect_compressed=m.BoolValue(value=True)
        )
    )
    await probe.done_writing()
    await _expect_status(
        probe,
        StatusCode.INVALID_ARGUMENT,
        "probe (uncompressed message with expect_compressed=true)",
    )
    call = c.stub.StreamingInputCall(timeout=CASE_TIMEOUT, compression=grpc_lite.Compression.Gzip)
    await call.write(
        m.StreamingInputCallRequest(
            payload=_payload(27182), expect_compressed=m.BoolValue(value=True)
        )
    )
    await call.write(
        m.StreamingInputCallRequest(
            payload=_payload(45904), expect_compressed=m.BoolValue(value=False)
        ),
        compress=False,
    )
    await call.done_writing()
    response = await call
    _check(
        response.aggregated_payload_size == 73086,
        f"aggregated_payload_size {response.aggregated_payload_size}, want 73086",
    )


_SERVER_STREAMING_SIZES = (31415, 9, 2653, 58979)


async def server_streaming(c: Client) -> None:
    call = c.stub.StreamingOutputCall(
        _streaming_output(_SERVER_STREAMING_SIZES), timeout=CASE_TIMEOUT
    )
    sizes = []
    async for response in call:
        _check_zero_payload(response.payload.body, len(response.payload.body), "response")
        sizes.append(len(response.payload.body))
    _check(tuple(sizes) == _SERVER_STREAMING_SIZES, f"response sizes {sizes}")
    code = await call.code()
    _check(code is StatusCode.OK, f"status {code.name}")


async def server_compressed_streaming(c: Client) -> None:
    request = m.StreamingOutputCallRequest(
        response_type=m.COMPRESSABLE,
        response_parameters=[
            m.ResponseParameters(size=31415, compressed=m.BoolValue(value=True)),
            m.ResponseParameters(size=92653, compressed=m.BoolValue(value=False)),
        ],
    )
    call = c.stub.StreamingOutputCall(request, timeout=CASE_TIMEOUT)
    bodies = [response.payload.body async for response in call]
    _check([len(b) for b in bodies] == [31415, 92653], f"sizes {[len(b) for b in bodies]}")
    for body in bodies:
        _check_zero_payload(body, len(body), "response")
    code = await call.code()
    _check(code is StatusCode.OK, f"status {code.name}")
    flagged = call._compressed_messages_received()
    _check(flagged == 1, f"{flagged} of the 2 responses had the compressed flag, want 1")


_PING_PONG = ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904))


async def ping_pong(c: Client) -> None:
    call = c.stub.FullDuplexCall(timeout=CASE_TIMEOUT)
    for response_size, request_size in _PING_PONG:
        await call.write(_streaming_output([response_size], request_size))
        response = await call.read()
        _check(response is not grpc_lite.EOF, f"no response to the {response_size} request")
        _check_zero_payload(response.payload.body, response_size, "response")
    await call.done_writing()
    _check(await call.read() is grpc_lite.EOF, "more than four responses")
    code = await call.code()
    _check(code is StatusCode.OK, f"status {code.name}")


async def empty_stream(c: Client) -> None:
    call = c.stub.FullDuplexCall(timeout=CASE_TIMEOUT)
    await call.done_writing()
    responses = [response async for response in call]
    _check(responses == [], f"{len(responses)} responses, want none")
    code = await call.code()
    _check(code is StatusCode.OK, f"status {code.name}")


async def timeout_on_sleeping_server(c: Client) -> None:
    call = c.stub.FullDuplexCall(timeout=0.001)
    try:
        await call.write(m.StreamingOutputCallRequest(payload=_payload(27182)))
    except grpc_lite.RpcError:
        pass  # the deadline may already have passed: the write then fails with the status
    except asyncio.InvalidStateError:
        pass  # or the call already ended (the spec accepts an error on send)
    code = await call.code()
    _check(code is StatusCode.DEADLINE_EXCEEDED, f"status {code.name}, want DEADLINE_EXCEEDED")


async def cancel_after_begin(c: Client) -> None:
    call = c.stub.StreamingInputCall(timeout=CASE_TIMEOUT)
    call.cancel()
    code = await call.code()
    _check(code is StatusCode.CANCELLED, f"status {code.name}, want CANCELLED")


async def cancel_after_first_response(c: Client) -> None:
    call = c.stub.FullDuplexCall(timeout=CASE_TIMEOUT)
    await call.write(_streaming_output([31415], 27182))
    response = await call.read()
    _check(response is not grpc_lite.EOF, "no first response")
    _check_zero_payload(response.payload.body, 31415, "first response")
    call.cancel()
    code = await call.code()
    _check(code is StatusCode.CANCELLED, f"status {code.name}, want CANCELLED")


def _echo_metadata() -> grpc_lite.Metadata:
    return grpc_lite.Metadata(
        (ECHO_INITIAL_KEY, ECHO_INITIAL_VALUE), (ECHO_TRAILING_KEY, ECHO_TRAILING_VALUE)
    )


def _check_echoed(initial: Any, trailing: Any, what: str) -> None:
    initial_values = [v for k, v in initial if k == ECHO_INITIAL_KEY]
    _check(
        initial_values == [ECHO_INITIAL_VALUE],
        f"{what}: initial metadata {ECHO_INITIAL_KEY} = {initial_values!r}",
    )
    trailing_values = [v for k, v in trailing if k == ECHO_TRAILING_KEY]
    _check(
        trailing_values == [ECHO_TRAILING_VALUE],
        f"{what}: trailing metadata {ECHO_TRAILING_KEY} = {trailing_values!r}",
    )


async def custom_metadata(c: Client) -> None:
    call = c.stub.UnaryCall(
        _simple(LARGE_RESPONSE, LARGE_REQUEST), metadata=_echo_metadata(), timeout=CASE_TIMEOUT
    )
    response = await call
    _check_zero_payload(response.payload.body, LARGE_RESPONSE, "UnaryCall")
    _check_echoed(await call.initial_metadata(), await call.trailing_metadata(), "UnaryCall")

    stream = c.stub.FullDuplexCall(metadata=_echo_metadata(), timeout=CASE_TIMEOUT)
    await stream.write(_streaming_output([LARGE_RESPONSE], LARGE_REQUEST))
    await stream.done_writing()
    sizes = [len(r.payload.body) async for r in stream]
    _check(sizes == [LARGE_RESPONSE], f"FullDuplexCall response sizes {sizes}")
    code = await stream.code()
    _check(code is StatusCode.OK, f"FullDuplexCall status {code.name}")
    _check_echoed(
        await stream.initial_metadata(), await stream.trailing_metadata(), "FullDuplexCall"
    )


async def _status_round_trip(c: Client, message: str, *, streaming: bool) -> None:
    status = m.EchoStatus(code=int(StatusCode.UNKNOWN), message=message)
    if streaming:
        call = c.stub.FullDuplexCall(timeout=CASE_TIMEOUT)
        await call.write(m.StreamingOutputCallRequest(response_status=status))
        await call.done_writing()
        code = await call.code()
        details = await call.details()
        what = "FullDuplexCall"
    else:
        call = c.stub.UnaryCall(m.SimpleRequest(response_status=status), timeout=CASE_TIMEOUT)
        code = await call.code()
        details = await call.details()
        what = "UnaryCall"
    _check(code is StatusCode.UNKNOWN, f"{what}: status {code.name}, want UNKNOWN (2)")
    _check(details == message, f"{what}: message {details!r}, want {message!r}")


async def status_code_and_message(c: Client) -> None:
    await _status_round_trip(c, "test status message", streaming=False)
    await _status_round_trip(c, "test status message", streaming=True)


async def special_status_message(c: Client) -> None:
    await _status_round_trip(c, SPECIAL_STATUS_MESSAGE, streaming=False)


async def unimplemented_method(c: Client) -> None:
    await _expect_status(
        c.stub.UnimplementedCall(m.Empty(), timeout=CASE_TIMEOUT),
        StatusCode.UNIMPLEMENTED,
        "TestService/UnimplementedCall",
    )


async def unimplemented_service(c: Client) -> None:
    await _expect_status(
        c.unimplemented.UnimplementedCall(m.Empty(), timeout=CASE_TIMEOUT),
        StatusCode.UNIMPLEMENTED,
        "UnimplementedService/UnimplementedCall",
    )


async def very_large_request(c: Client) -> None:
    response = await c.stub.UnaryCall(_simple(10, VERY_LARGE_REQUEST), timeout=CASE_TIMEOUT)
    _check_zero_payload(response.payload.body, 10, "UnaryCall with a 10 MiB request")


# ----------------------------------------------------------------------------- soak


@dataclass
class SoakReport:
    iterations: int
    failures: int
    latencies_ms: list[float]
    errors: list[str]

    def summary(self) -> str:
        ordered = sorted(self.latencies_ms) or [0.0]

        def pct(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return (
            f"{self.iterations} iterations, {self.failures} failed; latency ms "
            f"p50 {pct(0.5):.1f} p90 {pct(0.9):.1f} p99 {pct(0.99):.1f} max {ordered[-1]:.1f}"
        )


async def _soak(c: Client, *, new_channel: bool) -> SoakReport:
    s = c.settings
    loop = asyncio.get_running_loop()
    overall_deadline = loop.time() + s.soak_overall_timeout_seconds
    max_latency = s.soak_per_iteration_max_acceptable_latency_ms / 1000
    report = SoakReport(0, 0, [], [])
    workers = max(1, s.soak_num_threads)
    per_worker = [s.soak_iterations // workers] * workers
    for i in range(s.soak_iterations % workers):
        per_worker[i] += 1

    async def worker(index: int, count: int) -> None:
        for iteration in range(count):
            if loop.time() >= overall_deadline:
                return
            earliest_next = loop.time() + s.soak_min_time_ms_between_rpcs / 1000
            started = loop.time()
            error: str | None = None
            channel = s.new_channel() if new_channel else c.channel
            try:
                stub = c.stub if not new_channel else Client(s, channel).stub
                response = await stub.UnaryCall(
                    _simple(s.soak_response_size, s.soak_request_size),
                    timeout=max(0.001, min(CASE_TIMEOUT, overall_deadline - loop.time())),
                )
                if len(response.payload.body) != s.soak_response_size:
                    error = f"response of {len(response.payload.body)} bytes"
            except grpc_lite.RpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
            finally:
                if new_channel:
                    await channel.close()
            latency = loop.time() - started
            report.iterations += 1
            report.latencies_ms.append(latency * 1000)
            if error is None and latency > max_latency:
                error = f"latency {latency * 1000:.1f} ms over {max_latency * 1000:.0f} ms"
            if error is not None:
                report.failures += 1
                report.errors.append(f"worker {index} iteration {iteration}: {error}")
            delay = earliest_next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    await asyncio.gather(*(worker(i, n) for i, n in enumerate(per_worker)))
    return report


def _check_soak(report: SoakReport, s: Settings) -> None:
    _check(
        report.iterations == s.soak_iterations,
        f"only {report.iterations} of {s.soak_iterations} iterations within "
        f"{s.soak_overall_timeout_seconds} s ({report.summary()})",
    )
    _check(
        report.failures <= s.soak_max_failures,
        f"{report.failures} failures, at most {s.soak_max_failures} allowed "
        f"({report.summary()}); first: {report.errors[:3]}",
    )


async def rpc_soak(c: Client) -> None:
    _check_soak(await _soak(c, new_channel=False), c.settings)


async def channel_soak(c: Client) -> None:
    _check_soak(await _soak(c, new_channel=True), c.settings)


#: Every case, in the order of grpc/grpc doc/interop-test-descriptions.md.
CASES: dict[str, Callable[[Client], Awaitable[None]]] = {
    "empty_unary": empty_unary,
    "large_unary": large_unary,
    "client_compressed_unary": client_compressed_unary,
    "server_compressed_unary": server_compressed_unary,
    "client_streaming": client_streaming,
    "client_compressed_streaming": client_compressed_streaming,
    "server_streaming": server_streaming,
    "server_compressed_streaming": server_compressed_streaming,
    "ping_pong": ping_pong,
    "empty_stream": empty_stream,
    "custom_metadata": custom_metadata,
    "status_code_and_message": status_code_and_message,
    "special_status_message": special_status_message,
    "unimplemented_method": unimplemented_method,
    "unimplemented_service": unimplemented_service,
    "cancel_after_begin": cancel_after_begin,
    "cancel_after_first_response": cancel_after_first_response,
    "timeout_on_sleeping_server": timeout_on_sleeping_server,
    "very_large_request": very_large_request,
    "rpc_soak": rpc_soak,
    "channel_soak": channel_soak,
}


@dataclass(frozen=True)
class CaseResult:
    name: str
    passed: bool
    seconds: float
    detail: str = ""

    def line(self) -> str:
        if self.passed:
            return f"PASS {self.name} ({self.seconds:.3f} s)"
        return f"FAIL {self.name}: {self.detail}"


async def run_case(name: str, settings: Settings, channel: grpc_lite.Channel) -> CaseResult:
    """Run one case on ``channel``; never raises for a failed check or a failed call."""
    case = CASES[name]
    started = time.perf_counter()
    try:
        await asyncio.wait_for(case(Client(settings, channel)), CASE_TIMEOUT * 4)
    except AssertionError as exc:
        return CaseResult(name, False, time.perf_counter() - started, str(exc))
    except grpc_lite.RpcError as exc:
        detail = f"unexpected status {exc.code().name}: {exc.details()}"
        return CaseResult(name, False, time.perf_counter() - started, detail)
    except TimeoutError:
        detail = f"did not finish within {CASE_TIMEOUT * 4:.0f} s"
        return CaseResult(name, False, time.perf_counter() - started, detail)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return CaseResult(name, False, time.perf_counter() - started, detail)
    return CaseResult(name, True, time.perf_counter() - started)


async def run_cases(
    settings: Settings,
    names: Sequence[str],
    report: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run ``names`` in order on one channel (a new one per case would hide reuse bugs)."""
    unknown = [name for name in names if name not in CASES]
    if unknown:
        raise ValueError(f"unknown test case(s) {unknown}; known: {', '.join(CASES)}, all")
    results = []
    async with settings.new_channel() as channel:
        for name in names:
            result = await run_case(name, settings, channel)
            if report is not None:
                report(result)
            results.append(result)
    return results


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r} (use true or false)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grpc_lite.interop.client",
        description="gRPC interop client (grpc/grpc doc/interop-test-descriptions.md)",
    )
    defaults = Settings()
    parser.add_argument("--server_host", default=defaults.server_host)
    parser.add_argument("--server_port", type=int, default=defaults.server_port)
    parser.add_argument("--server_host_override", default=None)
    for flag in ("use_tls", "use_test_ca"):
        parser.add_argument(f"--{flag}", type=_bool, nargs="?", const=True, default=False)
    parser.add_argument("--ca_file", default=None, help="PEM CA bundle to trust with --use_test_ca")
    parser.add_argument(
        "--test_case",
        default="large_unary",
        help=f"one of: {', '.join(CASES)}; or 'all', or a comma-separated list",
    )
    for name, value in vars(defaults).items():
        if name.startswith("soak_"):
            parser.add_argument(f"--{name}", type=int, default=value)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    fields = {name: getattr(args, name) for name in vars(Settings()) if hasattr(args, name)}
    return Settings(**fields)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = list(CASES) if args.test_case == "all" else args.test_case.split(",")
    unknown = [name for name in names if name not in CASES]
    if unknown:
        print(
            f"unknown test case(s) {', '.join(unknown)}; known: {', '.join(CASES)}, all",
            file=sys.stderr,
        )
        return 2

    def report(result: CaseResult) -> None:
        print(result.line(), flush=True)

    results = asyncio.run(run_cases(settings_from_args(args), names, report))
    failed = [r.name for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

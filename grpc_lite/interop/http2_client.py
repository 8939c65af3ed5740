"""The client side of gRPC's negative HTTP/2 interop cases, on grpc_lite.

grpc/grpc ``doc/negative-http2-interop-test-descriptions.md``: a misbehaving HTTP/2 server
(grpc's test/http2_test; here ``python -m tests.peers.http2_server``) runs one case, and
this client, started with the same case, checks what the document says a client must do::

    python -m grpc_lite.interop.http2_client --server_host 127.0.0.1 --server_port 8080 \\
        --test_case goaway

The flags are those of grpc's ``http2_client`` (test/cpp/interop/http2_client.cc);
``--test_case`` also takes a comma-separated list. Each case prints one line, ``PASS name
(seconds)`` or ``FAIL name: why``, then a ``N passed, M failed`` line; the exit status is 0
only when every case passed (2 for an unknown case).

Every call is a UnaryCall of ``response_size: 314159`` with a payload of 271828 zero bytes.
What each case asserts (and nothing more: the server checks the rest):

* ``goaway``: two calls, the second once the client has seen the GOAWAY the server sends
  after the first response (at most 1 s later: the document's sleep, awaited as a change
  of the channel's state); both succeed with a 314159-byte payload.
* ``rst_after_header``, ``rst_during_data``, ``rst_after_data``: the call is not successful
  (the document leaves the status code open, grpc#9142), even when the whole response
  message arrived before the RST_STREAM.
* ``ping``: the call succeeds with a 314159-byte payload (the server checks the PING ACKs).
* ``max_streams``: one call, then 10 concurrent calls; all succeed, each response with the
  requested type (COMPRESSABLE) and payload size.
* ``data_frame_padding`` (and ``no_df_padding_sanity_test``): grpc's run_interop_tests.py
  runs large_unary against this server; the call succeeds with 314159 zero bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import grpc_lite
from grpc_lite import StatusCode
from grpc_lite._proto import testing_pb2 as m

__all__ = ["CASES", "main", "run_case"]

LARGE_REQUEST = 271828
LARGE_RESPONSE = 314159
#: Concurrent calls of max_streams (after its first call).
MAX_STREAMS_CALLS = 10
#: goaway: the longest the client waits for the GOAWAY between its two calls.
GOAWAY_WAIT = 1.0
#: Deadline of every call; a whole case must end within CASE_TIMEOUT.
CALL_TIMEOUT = 20.0
CASE_TIMEOUT = 45.0
UNARY_CALL = "/grpc.testing.TestService/UnaryCall"


class _Client:
    """One channel to the server and its UnaryCall."""

    def __init__(self, channel: grpc_lite.Channel) -> None:
        self.channel = channel
        self._unary = channel.unary_unary(
            UNARY_CALL,
            request_serializer=m.SimpleRequest.SerializeToString,
            response_deserializer=m.SimpleResponse.FromString,
        )

    async def call(self) -> m.SimpleResponse:
        request = m.SimpleRequest(
            response_type=m.COMPRESSABLE,
            response_size=LARGE_RESPONSE,
            payload=m.Payload(type=m.COMPRESSABLE, body=bytes(LARGE_REQUEST)),
        )
        response: m.SimpleResponse = await self._unary(request, timeout=CALL_TIMEOUT)
        return response

    async def call_ok(self, what: str) -> None:
        """A call that must succeed with the requested payload."""
        try:
            response = await self.call()
        except grpc_lite.RpcError as exc:
            raise AssertionError(
                f"{what} failed: {exc.code().name}: {exc.details()}, want OK"
            ) from None
        payload = response.payload
        _check(
            payload.type == m.COMPRESSABLE,
            f"{what}: payload type {m.PayloadType.Name(payload.type)}, want COMPRESSABLE",
        )
        body = payload.body
        _check(
            len(body) == LARGE_RESPONSE,
            f"{what}: payload is {len(body)} bytes, want {LARGE_RESPONSE}",
        )
        _check(body == bytes(LARGE_RESPONSE), f"{what}: payload is not all zero bytes")

    async def call_fails(self, what: str) -> None:
        """A call that must not succeed (any status but OK)."""
        try:
            response = await self.call()
        except grpc_lite.RpcError as exc:
            _check(exc.code() is not StatusCode.OK, f"{what}: an RpcError with status OK")
            return
        raise AssertionError(
            f"{what} succeeded ({len(response.payload.body)}-byte payload), want a failure"
        )


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


# ----------------------------------------------------------------------------- the cases


async def goaway(c: _Client) -> None:
    await c.call_ok("first UnaryCall")
    # The document sleeps 1 s here so that the GOAWAY arrives before the second call
    # (grpc#9300). The channel leaves READY when it sees the GOAWAY: wait for that instead,
    # at most as long. (A call racing a GOAWAY would be retried transparently anyway.)
    state = c.channel.get_state()
    if state is grpc_lite.ConnectivityState.READY:
        try:
            async with asyncio.timeout(GOAWAY_WAIT):
                await c.channel.wait_for_state_change(state)
        except TimeoutError:
            pass
    await c.call_ok("second UnaryCall")


async def rst_after_header(c: _Client) -> None:
    await c.call_fails("UnaryCall reset after the response headers")


async def rst_during_data(c: _Client) -> None:
    await c.call_fails("UnaryCall reset in the middle of the response message")


async def rst_after_data(c: _Client) -> None:
    await c.call_fails("UnaryCall reset after the whole response message (no trailers)")


async def ping(c: _Client) -> None:
    await c.call_ok("UnaryCall")


async def max_streams(c: _Client) -> None:
    await c.call_ok("first UnaryCall")
    results = await asyncio.gather(
        *(c.call_ok(f"concurrent UnaryCall {i + 1}") for i in range(MAX_STREAMS_CALLS)),
        return_exceptions=True,
    )
    failures = [str(r) for r in results if isinstance(r, BaseException)]
    _check(
        not failures,
        f"{len(failures)} of {MAX_STREAMS_CALLS} concurrent calls failed: {'; '.join(failures)}",
    )


async def data_frame_padding(c: _Client) -> None:
    await c.call_ok("UnaryCall (large_unary)")


#: Every case, in the order of the document (data_frame_padding and its sanity check come
#: from grpc's tools/run_tests/run_interop_tests.py).
CASES: dict[str, Callable[[_Client], Awaitable[None]]] = {
    "goaway": goaway,
    "rst_after_header": rst_after_header,
    "rst_during_data": rst_during_data,
    "rst_after_data": rst_after_data,
    "ping": ping,
    "max_streams": max_streams,
    "data_frame_padding": data_frame_padding,
    "no_df_padding_sanity_test": data_frame_padding,
}


async def run_case(name: str, target: str) -> None:
    """Run case ``name`` against the server at ``target`` ("host:port") on a new channel.

    Returns when the case passed; raises AssertionError saying what went wrong when it did
    not (a failed check, an unexpected status, or no end within CASE_TIMEOUT), and
    ValueError for an unknown case."""
    case = CASES.get(name)
    if case is None:
        raise ValueError(f"unknown test case {name!r}; known: {', '.join(CASES)}")
    async with grpc_lite.insecure_channel(target) as channel:
        try:
            async with asyncio.timeout(CASE_TIMEOUT):
                await case(_Client(channel))
        except TimeoutError:
            raise AssertionError(f"{name}: did not finish within {CASE_TIMEOUT:.0f} s") from None
        except grpc_lite.RpcError as exc:  # a call no check expected to fail
            raise AssertionError(
                f"{name}: unexpected status {exc.code().name}: {exc.details()}"
            ) from None


# ----------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grpc_lite.interop.http2_client",
        description="gRPC negative HTTP/2 interop client "
        "(grpc/grpc doc/negative-http2-interop-test-descriptions.md)",
    )
    parser.add_argument("--server_host", default="localhost", help="server host to connect to")
    parser.add_argument("--server_port", type=int, required=True, help="server port")
    parser.add_argument(
        "--test_case",
        required=True,
        help=f"one of: {', '.join(CASES)}; or a comma-separated list",
    )
    return parser


def _target(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


async def _run(names: Sequence[str], target: str) -> int:
    failed = 0
    for name in names:
        started = time.perf_counter()
        try:
            await run_case(name, target)
        except AssertionError as exc:
            failed += 1
            print(f"FAIL {name}: {exc}", flush=True)
            continue
        except Exception as exc:  # a bug, reported as a failure of the case
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"PASS {name} ({time.perf_counter() - started:.3f} s)", flush=True)
    print(f"{len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [name for name in args.test_case.split(",") if name]
    unknown = [name for name in names if name not in CASES]
    if unknown or not names:
        print(
            f"unknown test case(s) {', '.join(unknown) or '(none)'}; known: {', '.join(CASES)}",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(_run(names, _target(args.server_host, args.server_port)))


if __name__ == "__main__":
    sys.exit(main())

# ruff: noqa: ASYNC109  (timeouts on the waits keep every check bounded)
"""The misbehaving server of gRPC's negative HTTP/2 interop cases, on tests/h2peer.py.

grpc/grpc ``doc/negative-http2-interop-test-descriptions.md`` (and, for data_frame_padding,
``tools/run_tests/run_interop_tests.py``, which pairs it with the ordinary large_unary
client case): a ``grpc.testing.TestService/UnaryCall`` server that misbehaves in one chosen
way; the client side is ``grpc_lite.interop.http2_client``::

    python -m tests.peers.http2_server --port 8080 --test_case goaway

prints ``LISTENING <port>`` once it accepts connections (``--port 0``: a free port), serves
until SIGTERM or SIGINT, then prints the result of the server's own checks, ``CHECK PASS
<case>`` or ``CHECK FAIL <case>: why``, and exits 0 only if they passed.

Every case reads the whole request (a SimpleRequest), then answers with a SimpleResponse
whose payload is ``response_size`` zero bytes, of the requested type, except where the case
says otherwise:

* ``goaway``: a normal response, then GOAWAY(last_stream_id = that stream). Check: the
  client used two connections (no call on a connection after its GOAWAY, and at least two
  calls in all).
* ``rst_after_header``: response headers, then RST_STREAM(NO_ERROR).
* ``rst_during_data``: headers, the first half of the framed response, RST_STREAM(NO_ERROR).
* ``rst_after_data``: headers, the whole framed response, RST_STREAM(NO_ERROR) (no trailers).
* ``ping``: PINGs before and after the headers and before and after the data. Check: no
  PING is still unacknowledged when the connection is gone.
* ``max_streams``: SETTINGS_MAX_CONCURRENT_STREAMS=1 from the start. Check: never two
  streams open at once (h2 also refuses a stream over the limit: a protocol error).
* ``data_frame_padding``: the response in DATA frames of 5 data bytes and 255 bytes of
  padding each (grpc's test server's sizes). Check: every DATA frame was sent so.
* ``no_df_padding_sanity_test``: the same 5-byte DATA frames, unpadded.

The client decides whether a case passed; the server's checks catch what only the server
sees (grpc's test server asserts the goaway and ping ones too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import h2.errors

from tests.h2peer import H2Peer, PeerStream, grpc_frame
from tests.protos.grpc.testing import messages_pb2

__all__ = ["CASES", "Http2TestServer", "main"]

NO_ERROR = int(h2.errors.ErrorCodes.NO_ERROR)
#: data_frame_padding: bytes of padding and of data in each DATA frame (grpc's test server).
PAD_LENGTH = 255
CHUNK = 5
#: How long a handler waits for the request (a 271828-byte message on loopback).
READ_TIMEOUT = 20.0

CASES = (
    "goaway",
    "rst_after_header",
    "rst_during_data",
    "rst_after_data",
    "ping",
    "max_streams",
    "data_frame_padding",
    "no_df_padding_sanity_test",
)


class Http2TestServer:
    """One misbehaving server for ``test_case``: ``async with Http2TestServer(case) as s``,
    connect a client to ``s.target``; ``await s.check()`` returns the server-side problems
    (an empty list when the case's server checks pass)."""

    def __init__(self, test_case: str, port: int = 0) -> None:
        if test_case not in CASES:
            raise ValueError(f"unknown test case {test_case!r}; known: {', '.join(CASES)}")
        self.test_case = test_case
        handlers: dict[str, Callable[[PeerStream], Awaitable[None]]] = {
            "goaway": self._goaway,
            "rst_after_header": self._rst_after_header,
            "rst_during_data": self._rst_during_data,
            "rst_after_data": self._rst_after_data,
            "ping": self._ping,
            "max_streams": self._max_streams,
            "data_frame_padding": self._padded,
            "no_df_padding_sanity_test": self._unpadded,
        }
        settings = {"MAX_CONCURRENT_STREAMS": 1} if test_case == "max_streams" else None
        self.peer = H2Peer(
            handlers[test_case], settings=settings, port=port, raise_handler_errors=False
        )
        #: max_streams: streams being served right now, and the most at any time.
        self._open = 0
        self.max_open = 0

    # ---------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return self.peer.port

    @property
    def target(self) -> str:
        return self.peer.target

    async def start(self) -> Http2TestServer:
        await self.peer.start()
        return self

    async def stop(self) -> None:
        await self.peer.stop()

    async def __aenter__(self) -> Http2TestServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- checks

    async def check(self, timeout: float = 5.0) -> list[str]:
        """The server's checks, once every connection the client opened is gone (the ping
        case counts unacknowledged PINGs "when the connection is lost"); a connection still
        open after ``timeout`` seconds is itself a problem."""
        peer = self.peer
        problems: list[str] = []
        try:
            await peer.wait_until(lambda: all(c.closed for c in peer.connections), timeout)
        except TimeoutError:
            still = sum(not c.closed for c in peer.connections)
            problems.append(f"{still} connection(s) still open {timeout:.0f} s after the test")
        problems += [f"handler failed: {e!r}" for e in peer.handler_errors]
        problems += [f"h2 protocol error: {e}" for e in peer.protocol_errors]
        problems += getattr(self, f"_check_{self.test_case}", lambda: [])()
        return problems

    def _check_goaway(self) -> list[str]:
        problems = []
        for conn in self.peer.connections:
            if conn.goaways_sent:
                last = min(last for last, _, _ in conn.goaways_sent)
                late = [sid for sid in conn.streams if sid > last]
                if late:
                    problems.append(
                        f"connection {conn.index}: the client opened stream(s) {late} after "
                        f"GOAWAY(last_stream_id={last})"
                    )
        used = {st.connection.index for st in self.peer.streams}
        if len(used) < 2:
            problems.append(
                f"the client's calls used {len(used)} connection(s), want 2 (one per GOAWAY)"
            )
        return problems

    def _check_ping(self) -> list[str]:
        return [
            f"connection {c.index}: {c.outstanding_pings} of {c.pings_sent} PING(s) were "
            "never acknowledged"
            for c in self.peer.connections
            if c.outstanding_pings
        ]

    def _check_max_streams(self) -> list[str]:
        if self.max_open > 1:
            return [f"{self.max_open} streams open at once, MAX_CONCURRENT_STREAMS is 1"]
        return []

    def _check_data_frame_padding(self) -> list[str]:
        frames = [
            r
            for c in self.peer.connections
            for r in c.sent_frames
            if r.type_name == "DATA" and r.length
        ]
        wrong = [r for r in frames if r.pad_length != PAD_LENGTH or len(r.data) > CHUNK]
        if wrong:
            return [f"{len(wrong)} DATA frame(s) not padded as intended, e.g. {wrong[0]}"]
        return []

    # ---------------------------------------------------------------- the cases

    async def _request(self, stream: PeerStream) -> Any | None:
        """The client's SimpleRequest (None if the client gave up before sending it)."""
        data = await stream.read_message(READ_TIMEOUT)
        if data is None:
            return None
        return messages_pb2.SimpleRequest.FromString(data)

    @staticmethod
    def _response(request: Any) -> bytes:
        """The framed SimpleResponse ``request`` asks for."""
        response = messages_pb2.SimpleResponse(
            payload=messages_pb2.Payload(
                type=request.response_type, body=bytes(request.response_size)
            )
        )
        return grpc_frame(response.SerializeToString())

    async def _respond(self, stream: PeerStream, **data_options: Any) -> bool:
        """Read the request, send the whole response; False if the client went away."""
        request = await self._request(stream)
        if request is None:
            return False
        await stream.send_headers()
        if not await stream.send_data(self._response(request), **data_options):
            return False
        return await stream.send_trailers(0)

    async def _goaway(self, stream: PeerStream) -> None:
        if await self._respond(stream):
            stream.connection.goaway(stream.stream_id)

    async def _rst_after_header(self, stream: PeerStream) -> None:
        if await self._request(stream) is None:
            return
        await stream.send_headers()
        await stream.reset(NO_ERROR)

    async def _rst_during_data(self, stream: PeerStream) -> None:
        request = await self._request(stream)
        if request is None:
            return
        framed = self._response(request)
        await stream.send_headers()
        await stream.send_data(framed[: len(framed) // 2])
        await stream.reset(NO_ERROR)

    async def _rst_after_data(self, stream: PeerStream) -> None:
        request = await self._request(stream)
        if request is None:
            return
        await stream.send_headers()
        await stream.send_data(self._response(request))
        await stream.reset(NO_ERROR)

    async def _ping(self, stream: PeerStream) -> None:
        request = await self._request(stream)
        if request is None:
            return
        conn = stream.connection
        conn.ping()
        await stream.send_headers()
        conn.ping()
        conn.ping()
        await stream.send_data(self._response(request))
        conn.ping()
        await stream.send_trailers(0)

    async def _max_streams(self, stream: PeerStream) -> None:
        self._open += 1
        self.max_open = max(self.max_open, self._open)
        try:
            await self._respond(stream)
        finally:
            self._open -= 1

    async def _padded(self, stream: PeerStream) -> None:
        await self._respond(stream, pad_length=PAD_LENGTH, max_frame=CHUNK)

    async def _unpadded(self, stream: PeerStream) -> None:
        await self._respond(stream, max_frame=CHUNK)


# --------------------------------------------------------------------------- command line


async def serve(test_case: str, port: int) -> int:
    """Serve until SIGTERM/SIGINT; print LISTENING, then the checks; 0 if they passed."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Http2TestServer(test_case, port) as server:
        print(f"LISTENING {server.port}", flush=True)
        await stop.wait()
        problems = await server.check(timeout=2.0)
    if problems:
        print(f"CHECK FAIL {test_case}: {'; '.join(problems)}", flush=True)
        return 1
    print(f"CHECK PASS {test_case}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.peers.http2_server",
        description="grpc's negative HTTP/2 interop test server, on tests/h2peer.py",
    )
    parser.add_argument("--port", type=int, required=True, help="0: any free port")
    parser.add_argument("--test_case", required=True, choices=CASES)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(args.test_case, args.port))
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""grpcio's TestService (tests/servers/interop.py) as a server process, for the interop matrix.

``python -m tests.peers.grpcio_server --port N [--use_tls --tls_cert_file F --tls_key_file F]``

It checks ``expect_compressed`` (``detect_request_compression``) and takes requests up to
16 MiB (very_large_request sends 10 MiB; grpcio's default limit is 4 MiB).
"""

from __future__ import annotations

import argparse
import signal
import threading

import grpc

from tests.servers.interop import start_interop_server

MAX_MESSAGE = 16 * 1024 * 1024


class _FileCredentials:
    """What start_server needs of its ``tls`` argument, from PEM files on disk."""

    def __init__(self, credentials: grpc.ServerCredentials) -> None:
        self._credentials = credentials

    def server_credentials(self, *, require_client_auth: bool = False) -> grpc.ServerCredentials:
        assert not require_client_auth
        return self._credentials


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--use_tls", action="store_true")
    parser.add_argument("--tls_cert_file")
    parser.add_argument("--tls_key_file")
    args = parser.parse_args()
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    tls = None
    if args.use_tls:
        with open(args.tls_key_file, "rb") as key, open(args.tls_cert_file, "rb") as chain:
            tls = _FileCredentials(grpc.ssl_server_credentials([(key.read(), chain.read())]))
    running = start_interop_server(
        "127.0.0.1",
        args.port,
        options=options,
        detect_request_compression=True,
        tls=tls,  # type: ignore[arg-type]
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"LISTENING {args.port}", flush=True)
    stop.wait()
    running.server.stop(grace=None).wait()


if __name__ == "__main__":
    main()

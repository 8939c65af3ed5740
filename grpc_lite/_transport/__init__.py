"""Package-private HTTP/2 transport: sans-IO connection, gRPC stream, asyncio edge."""

from ._connection import Connection, ConnectionState, H2Stream, StreamState
from ._protocol import Http2Transport, TransportError, dial, split_host_port
from ._stream import ClientStream, StreamListener
from ._traced import TracedClientStream

__all__ = [
    "ClientStream",
    "Connection",
    "ConnectionState",
    "H2Stream",
    "Http2Transport",
    "StreamListener",
    "StreamState",
    "TracedClientStream",
    "TransportError",
    "dial",
    "split_host_port",
]

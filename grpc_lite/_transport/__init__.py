"""Package-private HTTP/2 transport: sans-IO connection, gRPC stream, asyncio edge."""

from ._connection import SEND_HIGH_WATER, Connection, ConnectionState, H2Stream
from ._errors import TransportError
from ._hpack import encode_sized, encode_timeout_field
from ._keepalive import KeepaliveParams
from ._protocol import Http2Transport, dial, split_host_port
from ._stream import DETACHED, ClientStream, StreamListener
from ._streams import StreamState
from ._traced import TracedClientStream

__all__ = [
    "DETACHED",
    "SEND_HIGH_WATER",
    "ClientStream",
    "Connection",
    "ConnectionState",
    "H2Stream",
    "Http2Transport",
    "KeepaliveParams",
    "StreamListener",
    "StreamState",
    "TracedClientStream",
    "TransportError",
    "dial",
    "encode_sized",
    "encode_timeout_field",
    "split_host_port",
]

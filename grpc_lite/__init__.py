"""grpc_lite: a pure-asyncio gRPC client stack with grpc.aio's API.

Quick start::

    async with grpc_lite.insecure_channel("localhost:50051") as channel:
        reply = await channel.unary_unary("/helloworld.Greeter/SayHello")(request_bytes)
"""

import logging as _logging
import ssl
from collections.abc import Sequence
from typing import Any

from ._call import (
    EOF,
    Call,
    Compression,
    StreamStreamCall,
    StreamStreamMultiCallable,
    StreamUnaryCall,
    StreamUnaryMultiCallable,
    UnaryStreamCall,
    UnaryStreamMultiCallable,
    UnaryUnaryCall,
    UnaryUnaryMultiCallable,
)
from ._channel import Channel
from ._connectivity import ConnectivityState
from ._credentials import ChannelCredentials, ssl_channel_credentials
from ._credentials import prepare_context as _prepare_context
from ._interceptors import (
    ClientCallDetails,
    ClientInterceptor,
    InterceptedCall,
    StreamStreamClientInterceptor,
    StreamUnaryClientInterceptor,
    UnaryStreamClientInterceptor,
    UnaryUnaryClientInterceptor,
)
from ._stub import Stub
from .metadata import Metadata
from .status import AioRpcError, RpcError, StatusCode, UsageError

ChannelConnectivity = ConnectivityState

# A library never prints through logging's last-resort handler; applications configure it.
_logging.getLogger("grpc_lite").addHandler(_logging.NullHandler())

__version__ = "0.1.0.dev0"

__all__ = [
    "EOF",
    "AioRpcError",
    "Call",
    "Channel",
    "ChannelConnectivity",
    "ChannelCredentials",
    "ClientCallDetails",
    "ClientInterceptor",
    "Compression",
    "ConnectivityState",
    "InterceptedCall",
    "Metadata",
    "RpcError",
    "StatusCode",
    "StreamStreamCall",
    "StreamStreamClientInterceptor",
    "StreamStreamMultiCallable",
    "StreamUnaryCall",
    "StreamUnaryClientInterceptor",
    "StreamUnaryMultiCallable",
    "Stub",
    "UnaryStreamCall",
    "UnaryStreamClientInterceptor",
    "UnaryStreamMultiCallable",
    "UnaryUnaryCall",
    "UnaryUnaryClientInterceptor",
    "UnaryUnaryMultiCallable",
    "UsageError",
    "insecure_channel",
    "secure_channel",
    "ssl_channel_credentials",
]


def insecure_channel(
    target: str,
    options: Sequence[tuple[str, Any]] | None = None,
    *,
    service_config: str | dict[str, Any] | None = None,
    compression: Compression | None = None,
    interceptors: Sequence[Any] | None = None,
) -> Channel:
    """A plaintext channel.  Never blocks, never raises for an unreachable target."""
    return Channel(
        target,
        options,
        service_config=service_config,
        compression=compression,
        interceptors=interceptors,
    )


def secure_channel(
    target: str,
    credentials: ChannelCredentials | ssl.SSLContext,
    options: Sequence[tuple[str, Any]] | None = None,
    *,
    service_config: str | dict[str, Any] | None = None,
    compression: Compression | None = None,
    interceptors: Sequence[Any] | None = None,
) -> Channel:
    """A TLS channel (ALPN h2).  The server certificate and host name are verified."""
    if isinstance(credentials, ChannelCredentials):
        context = credentials.ssl_context
    elif isinstance(credentials, ssl.SSLContext):
        context = _prepare_context(credentials)
    else:
        raise ValueError("credentials must be ChannelCredentials or an ssl.SSLContext")
    return Channel(
        target,
        options,
        ssl_context=context,
        service_config=service_config,
        compression=compression,
        interceptors=interceptors,
    )

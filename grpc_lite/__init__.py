"""grpc_lite: a pure-asyncio gRPC client stack with grpc.aio's API.

Quick start::

    async with grpc_lite.insecure_channel("localhost:50051") as channel:
        reply = await channel.unary_unary("/helloworld.Greeter/SayHello")(request_bytes)
"""

import logging as _logging
import ssl
from collections.abc import Sequence
from typing import Any

# Registers the built-in `xds` resolver scheme; the xDS client and protos load on first use.
from . import xds as _xds  # noqa: F401
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
from ._credentials import (
    AuthMetadataContext,
    CallCredentials,
    ChannelCredentials,
    LocalConnectionType,
    access_token_call_credentials,
    composite_call_credentials,
    composite_channel_credentials,
    local_channel_credentials,
    metadata_call_credentials,
    ssl_channel_credentials,
)
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
    "AuthMetadataContext",
    "Call",
    "CallCredentials",
    "Channel",
    "ChannelConnectivity",
    "ChannelCredentials",
    "ClientCallDetails",
    "ClientInterceptor",
    "Compression",
    "ConnectivityState",
    "InterceptedCall",
    "LocalConnectionType",
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
    "access_token_call_credentials",
    "composite_call_credentials",
    "composite_channel_credentials",
    "insecure_channel",
    "local_channel_credentials",
    "metadata_call_credentials",
    "secure_channel",
    "ssl_channel_credentials",
]


def insecure_channel(
    target: str,
    options: Sequence[tuple[str, Any]] | None = None,
    compression: Compression | None = None,
    interceptors: Sequence[Any] | None = None,
    *,
    service_config: str | dict[str, Any] | None = None,
    observability: Sequence[Any] | None = None,
) -> Channel:
    """A plaintext channel.  Never blocks, never raises for an unreachable target.

    ``observability=[plugin]`` instruments this channel with observability plugins
    (``grpc_lite.opentelemetry.OpenTelemetryPlugin``), besides the globally registered ones.
    """
    return Channel(
        target,
        options,
        service_config=service_config,
        compression=compression,
        interceptors=interceptors,
        observability=observability,
    )


def secure_channel(
    target: str,
    credentials: ChannelCredentials | ssl.SSLContext,
    options: Sequence[tuple[str, Any]] | None = None,
    compression: Compression | None = None,
    interceptors: Sequence[Any] | None = None,
    *,
    service_config: str | dict[str, Any] | None = None,
    observability: Sequence[Any] | None = None,
) -> Channel:
    """A TLS channel (ALPN h2; the server certificate and host name are verified), or a
    plaintext one to a local peer with ``local_channel_credentials()``.  Call credentials
    composed into ``credentials`` go with every call.  ``observability`` as for
    :func:`insecure_channel`."""
    if isinstance(credentials, ChannelCredentials):
        return Channel(
            target,
            options,
            credentials=credentials,
            service_config=service_config,
            compression=compression,
            interceptors=interceptors,
            observability=observability,
        )
    if not isinstance(credentials, ssl.SSLContext):
        raise ValueError("credentials must be ChannelCredentials or an ssl.SSLContext")
    return Channel(
        target,
        options,
        ssl_context=_prepare_context(credentials),
        service_config=service_config,
        compression=compression,
        interceptors=interceptors,
        observability=observability,
    )

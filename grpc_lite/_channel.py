"""The Channel (grpc-go: ClientConn), for now over one address (L5).

Calls already go through a pick step: ``pick_transport`` is the synchronous
fast path (a READY transport that accepts streams) and ``wait_for_transport``
the slow path that connects from IDLE, waits through CONNECTING and fails
fail-fast RPCs only in TRANSIENT_FAILURE (CONFORMANCE 99-101).  The resolver,
balancer and picker of the control plane replace ``_pick_subchannel`` without
changing the call layer.

Who may call: coroutines on one event loop (the first one that uses the
channel).  Not thread-safe.
"""

import asyncio
import json
import logging
import ssl
from collections.abc import Sequence
from typing import Any

from . import _call
from ._call import (
    Call,
    Compression,
    Method,
    StreamStreamMultiCallable,
    StreamUnaryMultiCallable,
    UnaryStreamMultiCallable,
    UnaryUnaryMultiCallable,
)
from ._connectivity import ConnectivityState, ConnectivityStateManager
from ._options import ChannelOptions, parse_options
from ._subchannel import Subchannel
from ._transport import Http2Transport
from .metadata import Metadata, MetadataType
from .status import RpcError, StatusCode, UsageError

log = logging.getLogger("grpc_lite")

_S = ConnectivityState


def parse_simple_target(target: str) -> tuple[str, str]:
    """Address to dial and default ``:authority`` for a single-address target.

    Forms: ``host:port``, ``dns:[//auth/]host[:port]``, ``passthrough:///addr``,
    ``unix:path``, ``unix:///abs``, ``unix-abstract:name``, ``ipv4:``/``ipv6:``
    lists (first address).  The default port is 443 (naming.md).
    """
    if not isinstance(target, str) or not target:
        raise ValueError(f"invalid target {target!r}: empty")
    if target.startswith("unix-abstract:"):
        name = target[len("unix-abstract:") :]
        if not name or "\0" in name:
            raise ValueError(f"invalid target {target!r}: bad abstract socket name")
        return target, "localhost"
    if target.startswith("unix:"):
        path = target[5:]
        if path.startswith("//"):
            if not path.startswith("///"):
                raise ValueError(f"invalid target {target!r}: a unix target has no authority")
            path = path[2:]
        if not path:
            raise ValueError(f"invalid target {target!r}: empty unix socket path")
        return "unix:" + path, "localhost"
    endpoint = target
    for scheme in ("dns:", "passthrough:", "ipv4:", "ipv6:"):
        if target.startswith(scheme):
            endpoint = target[len(scheme) :]
            if endpoint.startswith("//"):
                endpoint = endpoint[2:].partition("/")[2]
            if scheme in ("ipv4:", "ipv6:"):
                endpoint = endpoint.split(",")[0]
                if scheme == "ipv6:" and not endpoint.startswith("["):
                    endpoint = f"[{endpoint}]"
            break
    authority = endpoint
    if not endpoint:
        raise ValueError(f"invalid target {target!r}: empty endpoint")
    if endpoint.startswith("["):
        close = endpoint.find("]")
        if close < 0:
            raise ValueError(f"invalid target {target!r}: unterminated IPv6 literal")
        host, rest = endpoint[: close + 1], endpoint[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"invalid target {target!r}: junk after IPv6 literal")
        port = rest[1:] if rest else "443"
    elif endpoint.count(":") > 1:
        host, port = f"[{endpoint}]", "443"
    else:
        host, sep, port = endpoint.partition(":")
        if not sep:
            port = "443"
    if not host:
        raise ValueError(f"invalid target {target!r}: empty host")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"invalid target {target!r}: bad port {port!r}")
    return f"{host}:{port}", authority


class Channel:
    """A gRPC channel with grpc.aio's API (grpc-go: ClientConn)."""

    def __init__(
        self,
        target: str,
        options: Sequence[tuple[str, Any]] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        service_config: str | dict[str, Any] | None = None,
        compression: Compression | None = None,
        interceptors: Sequence[Any] | None = None,
    ) -> None:
        self.options: ChannelOptions = parse_options(options)
        if interceptors:
            raise ValueError("client interceptors are not supported by this version of grpc_lite")
        config = service_config if service_config is not None else self.options.service_config
        if config is not None:
            _validate_service_config_json(config)
        _call.compression_encoding(compression)
        self._compression = compression
        self.target = target
        self._address, authority = parse_simple_target(target)
        self._authority = self.options.default_authority or authority
        self._ssl_context = ssl_context
        self._server_hostname: str | None = None
        if ssl_context is not None:
            host = self.options.ssl_target_name_override
            if host is None:
                host = (
                    self._authority.rsplit(":", 1)[0]
                    if not self._authority.startswith("[")
                    else self._authority[1:].split("]")[0]
                )
            self._server_hostname = host
        self._scheme = "https" if ssl_context is not None else "http"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subchannel: Subchannel | None = None
        self._state = ConnectivityStateManager(_S.IDLE, subject="channel")
        self._calls: set[Call] = set()
        self._closed = False
        self.calls_started = 0
        self.calls_succeeded = 0
        self.calls_failed = 0

    def __repr__(self) -> str:
        return f"<grpc_lite.Channel {self.target} {self._state.state.name}>"

    # ------------------------------------------------------------------ CallContext

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def check_open(self) -> None:
        if self._closed:
            raise UsageError("Channel is closed.")

    def call_defaults(
        self,
        path: str,
        timeout: float | None,
        metadata: MetadataType | Metadata | None,
        wait_for_ready: bool | None,
        compression: Compression | None,
    ) -> dict[str, Any]:
        return {
            "timeout": timeout,
            "metadata": metadata,
            "wait_for_ready": wait_for_ready,
            "compression": compression if compression is not None else self._compression,
        }

    def pick_transport(self) -> Http2Transport | None:
        # Hot path: attribute reads only.
        sc = self._subchannel
        if sc is not None:
            transport = sc.transport
            if transport is not None and transport.accepting_streams:
                return transport
        return None

    async def wait_for_transport(self, wait_for_ready: bool) -> Http2Transport:
        while True:
            if self._closed:
                raise RpcError(StatusCode.CANCELLED, "the channel is closed")
            sc = self._pick_subchannel()
            transport = sc.transport
            if sc.state is _S.READY and transport is not None and transport.accepting_streams:
                return transport
            if sc.state is _S.IDLE:
                sc.connect()
            elif sc.state is _S.TRANSIENT_FAILURE and not wait_for_ready:
                # CONFORMANCE 100: fail-fast RPCs fail only in TRANSIENT_FAILURE.
                raise RpcError(StatusCode.UNAVAILABLE, sc.last_error or "connection failed")
            await self._state.wait_for_state_change(self._state.state)

    def call_started(self, call: Call) -> None:
        self.calls_started += 1
        self._calls.add(call)

    def call_finished(self, call: Call, code: StatusCode) -> None:
        self._calls.discard(call)
        if code is StatusCode.OK:
            self.calls_succeeded += 1
        else:
            self.calls_failed += 1

    # ------------------------------------------------------------------ subchannels

    def _pick_subchannel(self) -> Subchannel:
        sc = self._subchannel
        if sc is None:
            self.loop  # noqa: B018 - bind the loop
            sc = self._subchannel = Subchannel(
                self._address,
                backoff=self.options.backoff,
                ssl_context=self._ssl_context,
                server_hostname=self._server_hostname,
                on_state_change=self._subchannel_state_changed,
            )
        return sc

    def _subchannel_state_changed(self, sc: Subchannel, state: ConnectivityState) -> None:
        if not self._closed or state is _S.SHUTDOWN:
            self._state.update_state(state)

    # ------------------------------------------------------------------ public API

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> UnaryUnaryMultiCallable:
        return UnaryUnaryMultiCallable(
            self._method(method, request_serializer, response_deserializer)
        )

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> UnaryStreamMultiCallable:
        return UnaryStreamMultiCallable(
            self._method(method, request_serializer, response_deserializer)
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> StreamUnaryMultiCallable:
        return StreamUnaryMultiCallable(
            self._method(method, request_serializer, response_deserializer)
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> StreamStreamMultiCallable:
        return StreamStreamMultiCallable(
            self._method(method, request_serializer, response_deserializer)
        )

    def _method(self, path: str, serializer: Any, deserializer: Any) -> Method:
        return Method(
            self,
            path,
            scheme=self._scheme,
            authority=self._authority,
            user_agent=self.options.user_agent,
            serializer=serializer,
            deserializer=deserializer,
        )

    def get_state(self, try_to_connect: bool = False) -> ConnectivityState:
        state = self._state.state
        if try_to_connect and state is _S.IDLE and not self._closed:
            self._pick_subchannel().connect()
            state = self._state.state
        return state

    async def wait_for_state_change(self, last_observed_state: ConnectivityState) -> None:
        await self._state.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        while True:
            state = self.get_state(try_to_connect=True)
            if state is _S.READY:
                return
            if state is _S.SHUTDOWN:
                raise UsageError("Channel is closed.")
            await self._state.wait_for_state_change(state)

    async def close(self, grace: float | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        if grace and self._calls:
            calls = list(self._calls)
            try:
                async with asyncio.timeout(grace):
                    for call in calls:
                        while not call.done():
                            await call._wait()
            except TimeoutError:
                pass
        for call in list(self._calls):
            if not call.done():
                call._finish(StatusCode.CANCELLED, "Channel closed!", None)
        if self._subchannel is not None:
            self._subchannel.shutdown()
        self._state.update_state(_S.SHUTDOWN)
        # Let the transports' connection_lost callbacks run.
        await asyncio.sleep(0)

    async def __aenter__(self) -> "Channel":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _validate_service_config_json(config: str | dict[str, Any]) -> None:
    if isinstance(config, dict):
        return
    if not isinstance(config, str):
        raise ValueError(
            f"service config must be a JSON str or a dict, not {type(config).__name__}"
        )
    try:
        value = json.loads(config)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid service config JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("invalid service config: the JSON value must be an object")

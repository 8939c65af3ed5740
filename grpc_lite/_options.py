"""Channel options: grpc channel-argument names validated into a frozen dataclass (L1).

A known key with a value of the wrong type or range raises ValueError naming the key (README,
"Channel options"). A ``grpc.*`` or ``grpc_lite.*`` key grpc_lite does not honour is logged
once per process at WARNING, naming the key (never the value): grpcio ignores keys it does not
know, so a dropped one would otherwise go unnoticed. Other keys (an application's own, for its
resolvers or balancers) get a DEBUG line. The README's option table lists what is honoured.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ._backoff import BackoffConfig

log = logging.getLogger("grpc_lite")

USER_AGENT = "grpc-python-lite/0.1.0"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelOptions:
    service_config: str | None = None
    lb_policy_name: str | None = None
    enable_retries: bool = True
    initial_reconnect_backoff: float = 1.0
    max_reconnect_backoff: float = 120.0
    min_connect_timeout: float = 20.0
    dns_min_time_between_resolutions: float = 30.0
    dns_refresh_interval: float = 30.0
    max_send_message_length: int | None = None
    max_receive_message_length: int | None = 4 * 1024 * 1024
    keepalive_time: float | None = None
    keepalive_timeout: float = 20.0
    keepalive_permit_without_calls: bool = False
    client_idle_timeout: float = 1800.0
    per_rpc_retry_buffer_size: int = 256 * 1024
    # A retry's or a hedge's pick prefers a READY subchannel the call has not tried
    # (PickInfo.previous_subchannels; a grpc_lite extension after Envoy's previous_hosts).
    avoid_previous_hosts: bool = True
    retry_buffer_size: int = 16 * 1024 * 1024
    default_authority: str | None = None
    primary_user_agent: str | None = None
    secondary_user_agent: str | None = None
    ssl_target_name_override: str | None = None
    default_compression_algorithm: int | None = None  # grpc.Compression's values
    service_config_disable_resolution: bool = False  # read by the dns resolver
    # xds:/// (read by the xds resolver from BuildOptions.channel_options): a bootstrap JSON
    # that overrides GRPC_XDS_BOOTSTRAP(_CONFIG), the A57 does-not-exist timer and the A56
    # priority failover timer.
    xds_bootstrap_config: str | None = None
    xds_resource_timeout: float = 15.0
    xds_failover_timeout: float = 10.0
    # Validated with the environment's at channel creation (_proxy.proxy_settings); kept out
    # of the repr since it may hold a password.
    http_proxy: str | None = field(default=None, repr=False)
    enable_http_proxy: bool = True

    @property
    def backoff(self) -> BackoffConfig:
        return BackoffConfig(
            initial=self.initial_reconnect_backoff,
            max=max(self.max_reconnect_backoff, self.initial_reconnect_backoff),
            min_connect_timeout=self.min_connect_timeout,
        )

    @property
    def user_agent(self) -> str:
        """C-core's order: primary, the library's own, secondary."""
        agent = USER_AGENT
        if self.primary_user_agent:
            agent = f"{self.primary_user_agent} {agent}"
        if self.secondary_user_agent:
            agent = f"{agent} {self.secondary_user_agent}"
        return agent


def _number(key: str, value: Any, *, minimum: float, allow_bool: bool = False) -> float:
    if isinstance(value, bool) and not allow_bool:
        raise ValueError(f"channel option {key!r} must be a number, not bool")
    if not isinstance(value, (int, float)):
        raise ValueError(f"channel option {key!r} must be a number, not {type(value).__name__}")
    if value != value or value < minimum:  # NaN or out of range
        raise ValueError(f"channel option {key!r} must be >= {minimum}, got {value!r}")
    return float(value)


def _ms(field: str, minimum: float = 0.0) -> Callable[[str, Any], dict[str, Any]]:
    def conv(key: str, value: Any) -> dict[str, Any]:
        return {field: _number(key, value, minimum=minimum) / 1000.0}

    return conv


def _switch(field: str) -> Callable[[str, Any], dict[str, Any]]:
    def conv(key: str, value: Any) -> dict[str, Any]:
        if value not in (0, 1) or not isinstance(value, (int, bool)):
            raise ValueError(f"channel option {key!r} must be 0 or 1, got {value!r}")
        return {field: bool(value)}

    return conv


def _string(field: str) -> Callable[[str, Any], dict[str, Any]]:
    def conv(key: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, str):
            raise ValueError(f"channel option {key!r} must be a str, not {type(value).__name__}")
        return {field: value}

    return conv


def _length(field: str) -> Callable[[str, Any], dict[str, Any]]:
    def conv(key: str, value: Any) -> dict[str, Any]:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"channel option {key!r} must be an int, not {type(value).__name__}")
        if value < -1:
            raise ValueError(f"channel option {key!r} must be >= -1 (-1 = unlimited), got {value}")
        return {field: None if value == -1 else value}

    return conv


def _size(field: str) -> Callable[[str, Any], dict[str, Any]]:
    def conv(key: str, value: Any) -> dict[str, Any]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"channel option {key!r} must be an int >= 0, got {value!r}")
        return {field: value}

    return conv


def _keepalive_time(key: str, value: Any) -> dict[str, Any]:
    ms = _number(key, value, minimum=1)
    # A8: INT_MAX means off, as in grpcio.
    return {"keepalive_time": None if ms >= 2**31 - 1 else ms / 1000.0}


def _compression(key: str, value: Any) -> dict[str, Any]:
    # grpcio's compression= becomes this channel argument (0 none, 1 deflate, 2 gzip).
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1, 2):
        raise ValueError(
            f"channel option {key!r} must be 0 (none), 1 (deflate) or 2 (gzip), got {value!r}"
        )
    return {"default_compression_algorithm": int(value)}


def _seconds(field: str) -> Callable[[str, Any], dict[str, Any]]:
    def conv(key: str, value: Any) -> dict[str, Any]:
        return {field: _number(key, value, minimum=0)}

    return conv


_CONVERTERS: dict[str, Callable[[str, Any], dict[str, Any]]] = {
    "grpc.service_config": _string("service_config"),
    "grpc.lb_policy_name": _string("lb_policy_name"),
    "grpc.enable_retries": _switch("enable_retries"),
    "grpc.initial_reconnect_backoff_ms": _ms("initial_reconnect_backoff", 1),
    "grpc.max_reconnect_backoff_ms": _ms("max_reconnect_backoff", 1),
    "grpc.min_reconnect_backoff_ms": _ms("min_connect_timeout", 1),
    "grpc.dns_min_time_between_resolutions_ms": _ms("dns_min_time_between_resolutions"),
    "grpc_lite.dns_refresh_interval_s": _seconds("dns_refresh_interval"),
    "grpc.max_send_message_length": _length("max_send_message_length"),
    "grpc.max_receive_message_length": _length("max_receive_message_length"),
    "grpc.keepalive_time_ms": _keepalive_time,
    "grpc.keepalive_timeout_ms": _ms("keepalive_timeout", 1),
    "grpc.keepalive_permit_without_calls": _switch("keepalive_permit_without_calls"),
    "grpc.client_idle_timeout_ms": _ms("client_idle_timeout"),
    "grpc.per_rpc_retry_buffer_size": _size("per_rpc_retry_buffer_size"),
    "grpc_lite.retry_buffer_size": _size("retry_buffer_size"),
    "grpc_lite.avoid_previous_hosts": _switch("avoid_previous_hosts"),
    "grpc.default_authority": _string("default_authority"),
    "grpc.primary_user_agent": _string("primary_user_agent"),
    "grpc.secondary_user_agent": _string("secondary_user_agent"),
    "grpc.ssl_target_name_override": _string("ssl_target_name_override"),
    "grpc.default_compression_algorithm": _compression,
    "grpc.service_config_disable_resolution": _switch("service_config_disable_resolution"),
    "grpc_lite.xds_bootstrap_config": _string("xds_bootstrap_config"),
    "grpc_lite.xds_resource_timeout_s": _seconds("xds_resource_timeout"),
    "grpc_lite.xds_failover_timeout_s": _seconds("xds_failover_timeout"),
    "grpc.http_proxy": _string("http_proxy"),
    "grpc.enable_http_proxy": _switch("enable_http_proxy"),
}


def parse_options(options: Sequence[tuple[str, Any]] | None) -> ChannelOptions:
    """Validate ``options`` (grpcio's list of ``(key, value)``) into ChannelOptions."""
    result = ChannelOptions()
    if not options:
        return result
    changes: dict[str, Any] = {}
    for item in options:
        try:
            key, value = item
        except (TypeError, ValueError):
            raise ValueError(f"channel option {item!r} is not a (key, value) pair") from None
        if not isinstance(key, str):
            raise ValueError(f"channel option key {key!r} is not a str")
        conv = _CONVERTERS.get(key)
        if conv is None:
            _not_honoured(key, value)
            continue
        changes.update(conv(key, value))
    return replace(result, **changes)


# grpc channel arguments that ask for what grpc_lite always does: accepted quietly with
# exactly this value (any other value is not honoured, and warned about).
_ALWAYS: dict[str, tuple[Any, str]] = {
    "grpc.use_local_subchannel_pool": (1, "subchannels always belong to one channel"),
    "grpc.per_message_compression": (1, "compression as the call or channel asks"),
    "grpc.per_message_decompression": (1, "responses are always decompressed"),
    "grpc.surface_user_agent": (1, "user-agent is always sent"),
    "grpc.http2.max_pings_without_data": (0, "keepalive pings are not capped (A8, grpc-go)"),
    "grpc.enable_channelz": (0, "there is no channelz; see Channel.snapshot()"),
}
# Deprecated in grpcio itself, where they have no effect either.
_NO_EFFECT_IN_GRPCIO = frozenset({"grpc.http2.min_time_between_pings_ms"})
# Keys already warned about in this process.
_warned: set[str] = set()


def _not_honoured(key: str, value: Any) -> None:
    always = _ALWAYS.get(key)
    if (always is not None and value == always[0]) or key in _NO_EFFECT_IN_GRPCIO:
        log.debug("grpc_lite: channel option %r: nothing to do", key)
        return
    if not key.startswith(("grpc.", "grpc_lite.")):
        log.debug("grpc_lite: channel option %r is not a grpc option; left to plugins", key)
        return
    if key in _warned:
        return
    _warned.add(key)
    why = f" (grpc_lite accepts only {always[0]!r}: {always[1]})" if always is not None else ""
    log.warning(
        "grpc_lite: channel option %r is not supported and has no effect%s; "
        "see the option table in grpc_lite's README",
        key,
        why,
    )

"""Service config parsing and validation (L1; doc/service_config.md, gRFC A6, A17, A21).

Pure functions only: no I/O, no asyncio, no clock. Stdlib plus ``grpc_lite.status``.

`parse_service_config` turns the JSON text (or an already-decoded mapping) into an immutable
`ServiceConfig`, or raises `ValueError` naming the offending field path, e.g.
``methodConfig[0].retryPolicy.maxAttempts: must be an integer > 1``. Any invalid value in a
known field rejects the **whole** config (A21); unknown fields are ignored.

Field names are matched case-insensitively, as grpc-go's ``encoding/json`` does, so
``{"MethodConfig": [{"Name": [{"Service": "s"}], "RetryPolicy": {"MaxAttempts": 2, ...}}]}``
parses the same as the lowerCamelCase form. LB policy names (the keys of
``loadBalancingConfig`` entries) are *not* field names and stay case-sensitive.

A JSON ``null`` for a field means the field is absent (proto3 JSON mapping).

Choices where the references disagree:

- an unknown ``loadBalancingPolicy`` makes the config invalid when an ``lb_policy_validator``
  is given (A21, C-core), instead of grpc-go's silent pick_first;
- status codes may be integers 0-16 or names in any case (A6), where grpc-go takes numbers and
  upper-case names only and C-core names only;
- an invalid ``retryPolicy`` rejects the whole config (A6, C-core); grpc-go drops the policy;
- ``healthCheckConfig`` without ``serviceName`` leaves health checking off (C-core), where
  grpc-go would check the whole server;
- Durations follow grpc-go's reader: ``"1s"``, ``"0.5s"``, ``".5s"``, ``"1.s"``, at most 9
  fractional digits; negative values are rejected.

A grpc_lite extension: ``avoidPreviousHosts`` (a boolean, true when absent) in a
``retryPolicy`` or ``hedgingPolicy`` says whether the picks of a call's later attempts prefer a
backend it has not tried (`grpc_lite.balancer.PickInfo.previous_subchannels`); other gRPC
clients ignore it as an unknown field.
"""

from __future__ import annotations

import json
import math
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from grpc_lite.status import StatusCode

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "EMPTY_SERVICE_CONFIG",
    "HedgingPolicy",
    "LbPolicyValidator",
    "MethodConfig",
    "RetryPolicy",
    "RetryThrottling",
    "ServiceConfig",
    "parse_duration",
    "parse_service_config",
    "parse_status_code",
]

DEFAULT_MAX_ATTEMPTS = 5
"""A6 §Limits: client-side cap on ``maxAttempts`` of retry and hedging policies."""

LbPolicyValidator = Callable[[str, Mapping[str, Any]], Any]
"""``validator(policy_name, raw_config) -> parsed_config``.

Raises `KeyError` when the policy is not registered (the entry is skipped) and `ValueError`
when the config is bad for a registered policy (the whole service config is invalid).
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """The retryPolicy, validated (A6 §Validation of retryPolicy); ``max_attempts`` is already
    clamped (A6 §Limits)."""

    max_attempts: int
    initial_backoff: float
    max_backoff: float
    backoff_multiplier: float
    retryable_status_codes: frozenset[StatusCode]
    per_attempt_recv_timeout: float | None = None
    avoid_previous_hosts: bool = True
    """``avoidPreviousHosts`` (a grpc_lite extension, true by default): a retry's pick
    prefers a READY subchannel the call has not tried (`PickInfo.previous_subchannels`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HedgingPolicy:
    """The hedgingPolicy, validated (A6 §Validation of hedgingPolicy); ``max_attempts`` is already
    clamped (A6 §Limits)."""

    max_attempts: int
    hedging_delay: float = 0.0
    non_fatal_status_codes: frozenset[StatusCode] = frozenset()
    per_attempt_recv_timeout: float | None = None
    avoid_previous_hosts: bool = True
    """``avoidPreviousHosts`` (a grpc_lite extension, true by default): a hedge's pick
    prefers a READY subchannel the call has not tried (`PickInfo.previous_subchannels`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryThrottling:
    """The retryThrottling, validated (A6 §Validation of retryThrottling); ``token_ratio`` keeps 3
    decimal places, truncated."""

    max_tokens: float
    token_ratio: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodConfig:
    """One methodConfig entry; ``None`` means "not set" (the channel/call default applies)."""

    wait_for_ready: bool | None = None
    timeout: float | None = None
    max_request_message_bytes: int | None = None
    max_response_message_bytes: int | None = None
    retry_policy: RetryPolicy | None = None
    hedging_policy: HedgingPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    """A parsed, validated service config. Immutable; share freely.

    Attributes:
        lb_configs: the ``loadBalancingConfig`` entries, in order, as ``(policy_name,
            config)``; with a validator only the registered ones, holding the validator's
            parsed configs; without one, every entry with its raw JSON object.
        lb_policy: the deprecated ``loadBalancingPolicy``, lowercased, or None.
        lb_policy_config: the validator's parsed config for ``lb_policy`` (its raw ``{}``
            without a validator).
        method_configs: path -> MethodConfig, keys ``"/service/method"``, ``"/service/"``
            and ``""`` (the default); read it through `method_config`.
        retry_throttling: the ``retryThrottling`` block, or None.
        health_check_service: ``healthCheckConfig.serviceName`` (``""`` = whole server), or
            None when health checking is not configured.
        raw: the JSON text (not compared by ``==``).
    """

    lb_configs: tuple[tuple[str, Any], ...] = ()
    lb_policy: str | None = None
    lb_policy_config: Any = None
    method_configs: Mapping[str, MethodConfig] = field(
        default_factory=lambda: types.MappingProxyType({})
    )
    retry_throttling: RetryThrottling | None = None
    health_check_service: str | None = None
    raw: str = field(default="{}", compare=False)

    def method_config(self, path: str) -> MethodConfig | None:
        """The MethodConfig for ``/service/method``: exact, then ``/service/``, then default.

        Nothing is merged between the levels (service_config.proto).
        """
        configs = self.method_configs
        if not configs:
            return None
        mc = configs.get(path)
        if mc is not None:
            return mc
        slash = path.rfind("/")
        if slash > 0:
            mc = configs.get(path[: slash + 1])
            if mc is not None:
                return mc
        return configs.get("")

    def lb_policy_name(self, registered: Callable[[str], bool]) -> tuple[str, Any] | None:
        """The LB policy to use: the first registered ``loadBalancingConfig`` entry, else the
        deprecated ``loadBalancingPolicy`` when registered, else None (the channel default).
        """
        for name, config in self.lb_configs:
            if registered(name):
                return name, config
        if self.lb_policy is not None and registered(self.lb_policy):
            config = self.lb_policy_config
            return self.lb_policy, {} if config is None else config
        return None


EMPTY_SERVICE_CONFIG = ServiceConfig()
"""The config in force when neither the resolver nor the application gives one (A21)."""


# --------------------------------------------------------------------------------------
# Leaf parsers
# --------------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"([0-9]*)(?:\.([0-9]*))?s")
_INT_STRING_RE = re.compile(r"[0-9]+")
_CODES_BY_NAME = {code.name: code for code in StatusCode}


def parse_duration(value: Any, path: str = "duration") -> float:
    """A proto3 JSON Duration string (``"1s"``, ``"0.5s"``, ``"1.000340012s"``) -> seconds.

    At most 9 fractional digits; at least one digit; non-negative (as grpc-go's reader).
    """
    if not isinstance(value, str):
        raise ValueError(f"{path}: must be a Duration string such as '1.5s', got {value!r}")
    m = _DURATION_RE.fullmatch(value)
    if m is None or not (m.group(1) or m.group(2)):
        raise ValueError(f"{path}: malformed Duration {value!r} (want e.g. '1.5s')")
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > 9:
        raise ValueError(f"{path}: Duration {value!r} has more than 9 fractional digits")
    seconds = int(whole) if whole and len(whole) <= 12 else (0 if not whole else -1)
    if seconds < 0 or seconds > 315_576_000_000:  # google.protobuf.Duration's range
        raise ValueError(f"{path}: Duration {value!r} out of range")
    nanos = int(frac.ljust(9, "0")) if frac else 0
    return seconds + nanos / 1e9


def parse_status_code(value: Any, path: str = "code") -> StatusCode:
    """An integer 0-16 or a status code name in any case (``14``, ``"UNAVAILABLE"``,
    ``"unavailable"``) -> StatusCode (A6).
    """
    if isinstance(value, bool):
        raise ValueError(f"{path}: invalid status code {value!r}")
    if isinstance(value, int):
        if 0 <= value <= 16:
            return StatusCode(value)
    elif isinstance(value, str):
        code = _CODES_BY_NAME.get(value.upper())
        if code is not None:
            return code
    raise ValueError(f"{path}: invalid status code {value!r}")


def _fields(value: Any, path: str) -> dict[str, Any]:
    """A JSON object with lowercased keys (grpc-go matches field names case-insensitively).

    ``null`` values are dropped: proto3 JSON treats them as absent fields.
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: must be a JSON object, got {_kind(value)}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValueError(f"{path}: keys must be strings, got {key!r}")
        if item is not None:
            out[key.lower()] = item
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{path}: must be an array, got {_kind(value)}")
    return list(value)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{path}: must be a number, got {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{path}: must be a finite number, got {value!r}")
    return number


def _integer(value: Any, path: str, *, allow_string: bool = False) -> int:
    """A JSON integer (``3`` or ``3.0``); with ``allow_string`` also the proto3 int64
    string encoding (``"3"``).
    """
    if allow_string and isinstance(value, str) and _INT_STRING_RE.fullmatch(value):
        return int(value)
    if isinstance(value, bool):
        raise ValueError(f"{path}: must be an integer, got {_kind(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{path}: must be an integer, got {value!r}")


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{path}: must be a string, got {_kind(value)}")
    return value


def _decimal(value: float) -> Decimal:
    # repr() is the shortest text that round-trips, i.e. the JSON literal as written.
    return Decimal(repr(value))


def truncate_milli(value: float) -> int:
    """``value`` in thousandths, truncated toward zero, without binary float drift."""
    return int(_decimal(value).scaleb(3).to_integral_value(rounding=ROUND_DOWN))


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def _codes(value: Any, path: str) -> frozenset[StatusCode]:
    items = _list(value, path)
    return frozenset(parse_status_code(item, f"{path}[{i}]") for i, item in enumerate(items))


def _max_attempts(fields: dict[str, Any], path: str, limit: int) -> int:
    p = _join(path, "maxAttempts")
    if "maxattempts" not in fields:
        raise ValueError(f"{p}: required (an integer > 1)")
    value = fields["maxattempts"]
    try:
        n = _integer(value, p)
    except ValueError:
        raise ValueError(f"{p}: must be an integer > 1, got {value!r}") from None
    if n <= 1:
        raise ValueError(f"{p}: must be an integer > 1, got {value!r}")
    return min(n, limit)  # 107: above the cap is clamped, not an error


def _positive_duration(fields: dict[str, Any], key: str, path: str, *, required: bool) -> float:
    p = _join(path, key)
    lower = key.lower()
    if lower not in fields:
        if required:
            raise ValueError(f"{p}: required (a Duration > 0)")
        return 0.0
    d = parse_duration(fields[lower], p)
    if d <= 0:
        raise ValueError(f"{p}: must be a Duration > 0, got {fields[lower]!r}")
    return d


def _retry_policy(value: Any, path: str, limit: int) -> RetryPolicy:
    f = _fields(value, path)
    max_attempts = _max_attempts(f, path, limit)
    initial = _positive_duration(f, "initialBackoff", path, required=True)
    maximum = _positive_duration(f, "maxBackoff", path, required=True)
    p = _join(path, "backoffMultiplier")
    if "backoffmultiplier" not in f:
        raise ValueError(f"{p}: required (a number > 0)")
    multiplier = _number(f["backoffmultiplier"], p)
    if multiplier <= 0:
        raise ValueError(f"{p}: must be a number > 0, got {f['backoffmultiplier']!r}")
    p = _join(path, "retryableStatusCodes")
    if "retryablestatuscodes" not in f:
        raise ValueError(f"{p}: required (a non-empty array of status codes)")
    codes = _codes(f["retryablestatuscodes"], p)
    if not codes:
        raise ValueError(f"{p}: must not be empty")
    per_attempt: float | None = None
    if "perattemptrecvtimeout" in f:
        per_attempt = _positive_duration(f, "perAttemptRecvTimeout", path, required=True)
    return RetryPolicy(
        max_attempts=max_attempts,
        initial_backoff=initial,
        max_backoff=maximum,
        backoff_multiplier=multiplier,
        retryable_status_codes=codes,
        per_attempt_recv_timeout=per_attempt,
        avoid_previous_hosts=_avoid_previous_hosts(f, path),
    )


def _hedging_policy(value: Any, path: str, limit: int) -> HedgingPolicy:
    f = _fields(value, path)
    max_attempts = _max_attempts(f, path, limit)
    delay = 0.0
    if "hedgingdelay" in f:
        delay = parse_duration(f["hedgingdelay"], _join(path, "hedgingDelay"))
    codes: frozenset[StatusCode] = frozenset()
    if "nonfatalstatuscodes" in f:
        codes = _codes(f["nonfatalstatuscodes"], _join(path, "nonFatalStatusCodes"))
    per_attempt: float | None = None
    if "perattemptrecvtimeout" in f:
        per_attempt = _positive_duration(f, "perAttemptRecvTimeout", path, required=True)
    return HedgingPolicy(
        max_attempts=max_attempts,
        hedging_delay=delay,
        non_fatal_status_codes=codes,
        per_attempt_recv_timeout=per_attempt,
        avoid_previous_hosts=_avoid_previous_hosts(f, path),
    )


def _avoid_previous_hosts(fields: dict[str, Any], path: str) -> bool:
    """``avoidPreviousHosts`` of a retryPolicy or hedgingPolicy: a grpc_lite extension (other
    gRPC clients ignore the unknown field), a boolean, true when absent."""
    value = fields.get("avoidprevioushosts", True)
    if not isinstance(value, bool):
        p = _join(path, "avoidPreviousHosts")
        raise ValueError(f"{p}: must be a boolean, got {_kind(value)}")
    return value


def _message_bytes(f: dict[str, Any], key: str, path: str) -> int | None:
    lower = key.lower()
    if lower not in f:
        return None
    p = _join(path, key)
    value = f[lower]
    try:
        n = _integer(value, p, allow_string=True)
    except ValueError:
        raise ValueError(f"{p}: must be a non-negative integer, got {value!r}") from None
    if n < 0:
        raise ValueError(f"{p}: must be a non-negative integer, got {value!r}")
    return n


def _method_names(value: Any, path: str) -> list[str]:
    """``name`` entries -> lookup keys ``/s/m``, ``/s/`` or ``""`` (service_config.proto)."""
    keys = []
    for i, item in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        n = _fields(item, p)
        service = _string(n["service"], _join(p, "service")) if "service" in n else ""
        method = _string(n["method"], _join(p, "method")) if "method" in n else ""
        if not service:
            if method:
                raise ValueError(f"{p}: an empty service cannot have a method ({method!r})")
            keys.append("")
        else:
            keys.append(f"/{service}/{method}")
    return keys


def _method_config(value: Any, path: str, limit: int) -> tuple[list[str], MethodConfig]:
    f = _fields(value, path)
    keys = _method_names(f["name"], _join(path, "name")) if "name" in f else []
    wait_for_ready: bool | None = None
    if "waitforready" in f:
        wait_for_ready = f["waitforready"]
        if not isinstance(wait_for_ready, bool):
            p = _join(path, "waitForReady")
            raise ValueError(f"{p}: must be a boolean, got {_kind(wait_for_ready)}")
    timeout = parse_duration(f["timeout"], _join(path, "timeout")) if "timeout" in f else None
    retry = None
    if "retrypolicy" in f:
        retry = _retry_policy(f["retrypolicy"], _join(path, "retryPolicy"), limit)
    hedging = None
    if "hedgingpolicy" in f:
        hedging = _hedging_policy(f["hedgingpolicy"], _join(path, "hedgingPolicy"), limit)
    if retry is not None and hedging is not None:
        raise ValueError(f"{path}: retryPolicy and hedgingPolicy are mutually exclusive")
    mc = MethodConfig(
        wait_for_ready=wait_for_ready,
        timeout=timeout,
        max_request_message_bytes=_message_bytes(f, "maxRequestMessageBytes", path),
        max_response_message_bytes=_message_bytes(f, "maxResponseMessageBytes", path),
        retry_policy=retry,
        hedging_policy=hedging,
    )
    return keys, mc


def _lb_configs(
    value: Any, path: str, validator: LbPolicyValidator | None
) -> tuple[tuple[str, Any], ...]:
    """``loadBalancingConfig``: single-key objects; first supported wins (service_config.proto)."""
    entries = _list(value, path)
    out: list[tuple[str, Any]] = []
    for i, entry in enumerate(entries):
        p = f"{path}[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{p}: must be a JSON object, got {_kind(entry)}")
        if len(entry) != 1:
            raise ValueError(f"{p}: must have exactly one key (the policy name), got {len(entry)}")
        ((name, config),) = entry.items()
        if not isinstance(config, Mapping):
            raise ValueError(f"{p}.{name}: must be a JSON object, got {_kind(config)}")
        if validator is None:
            out.append((name, config))
            continue
        try:
            parsed = validator(name, config)
        except KeyError:
            continue  # not registered: try the next entry
        except ValueError as exc:
            raise ValueError(f"{p}.{name}: {exc}") from exc
        out.append((name, parsed))
    if not out:
        raise ValueError(f"{path}: no supported load balancing policy")
    return tuple(out)


def _retry_throttling(value: Any, path: str) -> RetryThrottling:
    f = _fields(value, path)
    p = _join(path, "maxTokens")
    if "maxtokens" not in f:
        raise ValueError(f"{p}: required (a number in (0, 1000])")
    max_tokens = _number(f["maxtokens"], p)
    if not 0 < max_tokens <= 1000:
        raise ValueError(f"{p}: must be a number in (0, 1000], got {f['maxtokens']!r}")
    p = _join(path, "tokenRatio")
    if "tokenratio" not in f:
        raise ValueError(f"{p}: required (a number > 0)")
    ratio = _number(f["tokenratio"], p)
    milli = truncate_milli(ratio)  # 134: only 3 decimal places count
    if milli <= 0:
        raise ValueError(f"{p}: must be a number >= 0.001, got {f['tokenratio']!r}")
    return RetryThrottling(max_tokens=max_tokens, token_ratio=milli / 1000)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON number {name}")


def parse_service_config(
    text_or_dict: str | Mapping[str, Any],
    *,
    lb_policy_validator: LbPolicyValidator | None = None,
    max_attempts_limit: int = DEFAULT_MAX_ATTEMPTS,
) -> ServiceConfig:
    """Parse and validate a service config (JSON text or a decoded JSON object).

    Args:
        text_or_dict: the config.
        lb_policy_validator: checks LB policy names and configs (see `LbPolicyValidator`);
            without it, ``loadBalancingConfig`` entries are kept raw and unchecked.
        max_attempts_limit: the client-side cap for ``maxAttempts`` (A6 §Limits, default 5).

    Raises:
        ValueError: the config is invalid; the message names the field path.
    """
    if isinstance(text_or_dict, str | bytes | bytearray):
        raw = text_or_dict if isinstance(text_or_dict, str) else bytes(text_or_dict).decode()
        try:
            doc = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"service config is not valid JSON: {exc}") from None
    elif isinstance(text_or_dict, Mapping):
        doc = text_or_dict
        try:
            raw = json.dumps(doc, sort_keys=True)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"service config is not JSON-serialisable: {exc}") from None
    else:
        raise ValueError(
            f"service config must be a JSON string or object, got {_kind(text_or_dict)}"
        )
    if not isinstance(doc, Mapping):
        raise ValueError(f"service config must be a JSON object, got {_kind(doc)}")
    top = _fields(doc, "")

    lb_configs: tuple[tuple[str, Any], ...] = ()
    if "loadbalancingconfig" in top:
        lb_configs = _lb_configs(
            top["loadbalancingconfig"], "loadBalancingConfig", lb_policy_validator
        )

    lb_policy: str | None = None
    lb_policy_config: Any = None
    if "loadbalancingpolicy" in top:
        lb_policy = _string(top["loadbalancingpolicy"], "loadBalancingPolicy").lower()
        if not lb_configs and lb_policy_validator is not None:  # 146: only when LBC absent
            try:
                lb_policy_config = lb_policy_validator(lb_policy, {})
            except KeyError:
                raise ValueError(f"loadBalancingPolicy: unknown policy {lb_policy!r}") from None
            except ValueError as exc:
                raise ValueError(f"loadBalancingPolicy: {lb_policy!r}: {exc}") from exc

    methods: dict[str, MethodConfig] = {}
    if "methodconfig" in top:
        for i, entry in enumerate(_list(top["methodconfig"], "methodConfig")):
            path = f"methodConfig[{i}]"
            keys, mc = _method_config(entry, path, max_attempts_limit)
            for key in keys:
                if key in methods:
                    shown = key or "the default name {}"
                    raise ValueError(f"{path}.name: duplicate method name {shown!r}")
                methods[key] = mc

    throttling = None
    if "retrythrottling" in top:
        throttling = _retry_throttling(top["retrythrottling"], "retryThrottling")

    health: str | None = None
    if "healthcheckconfig" in top:
        hc = _fields(top["healthcheckconfig"], "healthCheckConfig")
        if "servicename" in hc:
            health = _string(hc["servicename"], "healthCheckConfig.serviceName")

    return ServiceConfig(
        lb_configs=lb_configs,
        lb_policy=lb_policy,
        lb_policy_config=lb_policy_config,
        method_configs=types.MappingProxyType(methods),
        retry_throttling=throttling,
        health_check_service=health,
        raw=raw,
    )

"""Service config parsing and validation (CONFORMANCE items 107, 134, 141, 142-154)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest

from grpc_lite.service_config import (
    EMPTY_SERVICE_CONFIG,
    HedgingPolicy,
    MethodConfig,
    RetryPolicy,
    RetryThrottling,
    ServiceConfig,
    parse_duration,
    parse_service_config,
    parse_status_code,
)
from grpc_lite.status import StatusCode

# A grpc-go program's config, field names in CapitalCase, as grpc-go decodes them.
SEED_GO_CONFIG = {
    "LoadBalancingPolicy": "round_robin",
    "MethodConfig": [
        {
            "Name": [{"Service": "helloworld.Greeter"}],
            "RetryPolicy": {
                "MaxAttempts": 2,
                "InitialBackoff": "0.1s",
                "MaxBackoff": "1s",
                "BackoffMultiplier": 2.0,
                "RetryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
    "HealthCheckConfig": {"ServiceName": ""},
}

RETRY = {
    "maxAttempts": 3,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def _with_method(**fields: Any) -> dict[str, Any]:
    return {"methodConfig": [{"name": [{"service": "s"}], **fields}]}


def _retry(**overrides: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {**RETRY, **overrides}
    return _with_method(retryPolicy={k: v for k, v in policy.items() if v is not _DROP})


_DROP = object()

_REGISTERED = {"pick_first", "round_robin"}


def _validator(name: str, config: Mapping[str, Any]) -> Any:
    if name not in _REGISTERED:
        raise KeyError(name)
    if "bad" in config:
        raise ValueError("bad field")
    return ("parsed", name, dict(config))


# ---------------------------------------------------------------------------------------
# Golden valid configs
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_text", [True, False])
def test_seed_grpc_go_capitalcase_config(as_text: bool) -> None:
    """grpc-go decodes field names case-insensitively; its programs' configs parse unchanged."""
    src: Any = json.dumps(SEED_GO_CONFIG) if as_text else SEED_GO_CONFIG
    sc = parse_service_config(src)
    assert sc.lb_policy == "round_robin"
    assert sc.health_check_service == ""
    mc = sc.method_config("/helloworld.Greeter/SayHello")
    assert mc is not None
    assert mc.retry_policy == RetryPolicy(
        max_attempts=2,
        initial_backoff=0.1,
        max_backoff=1.0,
        backoff_multiplier=2.0,
        retryable_status_codes=frozenset({StatusCode.UNAVAILABLE}),
    )
    assert sc.method_config("/other.Svc/M") is None


def test_capitalcase_and_camelcase_parse_identically() -> None:
    camel = {
        "loadBalancingPolicy": "round_robin",
        "methodConfig": [
            {
                "name": [{"service": "helloworld.Greeter"}],
                "retryPolicy": {
                    "maxAttempts": 2,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2.0,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
        "healthCheckConfig": {"serviceName": ""},
    }
    assert parse_service_config(camel) == parse_service_config(SEED_GO_CONFIG)


def test_full_golden_config() -> None:
    """Every supported field, lowerCamelCase (API.md "Service config")."""
    text = json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [{"service": "pkg.S", "method": "M"}],
                    "waitForReady": True,
                    "timeout": "1.000340012s",
                    "maxRequestMessageBytes": 1024,
                    "maxResponseMessageBytes": "2048",
                    "retryPolicy": {**RETRY, "perAttemptRecvTimeout": "0.5s"},
                },
                {
                    "name": [{"service": "pkg.H"}],
                    "hedgingPolicy": {
                        "maxAttempts": 3,
                        "hedgingDelay": "0.5s",
                        "nonFatalStatusCodes": ["UNAVAILABLE", 13, "aborted"],
                    },
                },
            ],
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
            "healthCheckConfig": {"serviceName": "pkg.S"},
        }
    )
    sc = parse_service_config(text)
    assert sc.raw == text
    assert sc.lb_configs == (("round_robin", {}),)
    assert sc.lb_policy is None
    assert sc.retry_throttling == RetryThrottling(max_tokens=10.0, token_ratio=0.1)
    assert sc.health_check_service == "pkg.S"
    m = sc.method_config("/pkg.S/M")
    assert m == MethodConfig(
        wait_for_ready=True,
        timeout=pytest.approx(1.000340012),  # type: ignore[arg-type]
        max_request_message_bytes=1024,
        max_response_message_bytes=2048,
        retry_policy=RetryPolicy(
            max_attempts=3,
            initial_backoff=0.1,
            max_backoff=1.0,
            backoff_multiplier=2.0,
            retryable_status_codes=frozenset({StatusCode.UNAVAILABLE}),
            per_attempt_recv_timeout=0.5,
        ),
    )
    h = sc.method_config("/pkg.H/Any")
    assert h is not None
    assert h.hedging_policy == HedgingPolicy(
        max_attempts=3,
        hedging_delay=0.5,
        non_fatal_status_codes=frozenset(
            {StatusCode.UNAVAILABLE, StatusCode.INTERNAL, StatusCode.ABORTED}
        ),
    )
    assert h.retry_policy is None


def test_empty_config_and_constant() -> None:
    """``{}`` is valid and equals EMPTY_SERVICE_CONFIG (143)."""
    sc = parse_service_config("{}")
    assert sc == EMPTY_SERVICE_CONFIG
    assert sc.method_config("/a/b") is None
    assert sc.lb_policy_name(lambda _: True) is None
    assert EMPTY_SERVICE_CONFIG.retry_throttling is None
    assert EMPTY_SERVICE_CONFIG.health_check_service is None


def test_dataclasses_are_frozen() -> None:
    sc = parse_service_config(_retry())
    with pytest.raises(AttributeError):
        sc.lb_policy = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        sc.method_configs["/x/"] = MethodConfig()  # type: ignore[index]


# ---------------------------------------------------------------------------------------
# 142: JSON handling
# ---------------------------------------------------------------------------------------


def test_unknown_fields_ignored() -> None:
    """142: ``{"foo": 1}`` is valid, also inside known objects."""
    sc = parse_service_config('{"foo": 1, "methodConfig": [{"name": [{"service": "s"}], "x": 2}]}')
    assert sc.method_config("/s/m") == MethodConfig()


def test_null_fields_are_absent() -> None:
    """proto3 JSON: null means the field is not set (147: method null covers the service)."""
    sc = parse_service_config(
        {"methodConfig": [{"name": [{"service": "s", "method": None}], "timeout": None}]}
    )
    assert sc.method_config("/s/anything") == MethodConfig()


@pytest.mark.parametrize(
    ("src", "fragment"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ("5", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('"x"', "must be a JSON object"),
        ('{"retryThrottling": {"maxTokens": NaN, "tokenRatio": 1}}', "not valid JSON"),
        ('{"methodConfig": 5}', "methodConfig: must be an array"),
        ('{"methodConfig": [5]}', "methodConfig[0]: must be a JSON object"),
        ('{"methodConfig": [{"name": {}}]}', "methodConfig[0].name: must be an array"),
    ],
)
def test_bad_json_or_shape(src: str, fragment: str) -> None:
    """142: bad JSON, a non-object, or a bad known field rejects the whole config."""
    with pytest.raises(ValueError) as ei:
        parse_service_config(src)
    assert fragment in str(ei.value)


# ---------------------------------------------------------------------------------------
# 145/146: LB policy selection
# ---------------------------------------------------------------------------------------


def test_lb_config_first_supported_wins_with_validator() -> None:
    """145: ``[{"xyz":{}},{"round_robin":{}}]`` -> round_robin (xyz skipped)."""
    sc = parse_service_config(
        '{"loadBalancingConfig": [{"xyz": {}}, {"round_robin": {"a": 1}}, {"pick_first": {}}]}',
        lb_policy_validator=_validator,
    )
    assert sc.lb_configs == (
        ("round_robin", ("parsed", "round_robin", {"a": 1})),
        ("pick_first", ("parsed", "pick_first", {})),
    )
    assert sc.lb_policy_name(lambda n: n in _REGISTERED) == (
        "round_robin",
        ("parsed", "round_robin", {"a": 1}),
    )


def test_lb_config_without_validator_keeps_raw_entries() -> None:
    sc = parse_service_config('{"loadBalancingConfig": [{"xyz": {"k": 1}}, {"round_robin": {}}]}')
    assert sc.lb_configs == (("xyz", {"k": 1}), ("round_robin", {}))
    assert sc.lb_policy_name(lambda n: n in _REGISTERED) == ("round_robin", {})
    assert sc.lb_policy_name(lambda n: False) is None


@pytest.mark.parametrize(
    ("lbc", "fragment"),
    [
        ([{"xyz": {}}], "loadBalancingConfig: no supported load balancing policy"),
        ([], "loadBalancingConfig: no supported load balancing policy"),
        ([{"round_robin": {}, "pick_first": {}}], "loadBalancingConfig[0]: must have exactly one"),
        ([{}], "loadBalancingConfig[0]: must have exactly one"),
        ([{"round_robin": {"bad": 1}}], "loadBalancingConfig[0].round_robin: bad field"),
        ([{"round_robin": 5}], "loadBalancingConfig[0].round_robin: must be a JSON object"),
        (["round_robin"], "loadBalancingConfig[0]: must be a JSON object"),
        ({"round_robin": {}}, "loadBalancingConfig: must be an array"),
    ],
)
def test_lb_config_invalid(lbc: Any, fragment: str) -> None:
    """145: 0 or >= 2 keys, nothing supported, or a bad config for a supported policy."""
    with pytest.raises(ValueError) as ei:
        parse_service_config({"loadBalancingConfig": lbc}, lb_policy_validator=_validator)
    assert fragment in str(ei.value)


def test_lb_config_shape_checked_without_validator() -> None:
    with pytest.raises(ValueError, match=r"loadBalancingConfig\[1\]: must have exactly one"):
        parse_service_config({"loadBalancingConfig": [{"a": {}}, {"b": {}, "c": {}}]})


def test_deprecated_policy_lowercased() -> None:
    """146: ``"ROUND_ROBIN"`` -> round_robin."""
    sc = parse_service_config('{"loadBalancingPolicy": "ROUND_ROBIN"}')
    assert sc.lb_policy == "round_robin"
    assert sc.lb_policy_name(lambda n: n in _REGISTERED) == ("round_robin", {})
    assert sc.lb_policy_name(lambda n: False) is None
    validated = parse_service_config(
        '{"loadBalancingPolicy": "ROUND_ROBIN"}', lb_policy_validator=_validator
    )
    assert validated.lb_policy_name(lambda n: n in _REGISTERED) == (
        "round_robin",
        ("parsed", "round_robin", {}),
    )


def test_deprecated_policy_unknown() -> None:
    """146: an unknown name is invalid when a validator can tell (A21, C-core)."""
    with pytest.raises(ValueError, match="loadBalancingPolicy: unknown policy 'bogus'"):
        parse_service_config('{"loadBalancingPolicy": "bogus"}', lb_policy_validator=_validator)
    # Without a validator nothing can tell; the channel falls back when it is unregistered.
    assert parse_service_config('{"loadBalancingPolicy": "bogus"}').lb_policy == "bogus"
    with pytest.raises(ValueError, match="loadBalancingPolicy: must be a string"):
        parse_service_config('{"loadBalancingPolicy": 5}')


def test_lb_config_wins_over_deprecated_policy() -> None:
    """146: loadBalancingPolicy applies only when loadBalancingConfig is absent."""
    sc = parse_service_config(
        {"loadBalancingPolicy": "bogus", "loadBalancingConfig": [{"pick_first": {}}]},
        lb_policy_validator=_validator,
    )
    assert sc.lb_policy_name(lambda n: n in _REGISTERED) == (
        "pick_first",
        ("parsed", "pick_first", {}),
    )


def test_lb_policy_name_falls_back_to_deprecated_policy() -> None:
    sc = parse_service_config(
        {"loadBalancingPolicy": "Round_Robin", "loadBalancingConfig": [{"xyz": {}}]}
    )
    assert sc.lb_policy_name(lambda n: n in _REGISTERED) == ("round_robin", {})


# ---------------------------------------------------------------------------------------
# 147/148: names and lookup
# ---------------------------------------------------------------------------------------


def test_lookup_order() -> None:
    """148: exact /service/method, then /service/, then the default; no merging."""
    sc = parse_service_config(
        {
            "methodConfig": [
                {"name": [{}], "timeout": "3s"},
                {"name": [{"service": "s"}], "timeout": "2s"},
                {"name": [{"service": "s", "method": "m"}], "timeout": "1s", "waitForReady": True},
            ]
        }
    )

    def timeout(path: str) -> float | None:
        mc = sc.method_config(path)
        assert mc is not None
        return mc.timeout

    assert timeout("/s/m") == 1.0
    assert timeout("/s/other") == 2.0
    assert timeout("/t/m") == 3.0
    other = sc.method_config("/s/other")
    assert other is not None and other.wait_for_ready is None  # not merged


@pytest.mark.parametrize(
    ("name", "covers", "misses"),
    [
        ({}, ["/a/b", "/x/y"], []),
        ({"service": ""}, ["/a/b"], []),
        ({"service": "", "method": ""}, ["/a/b"], []),
        ({"service": "s"}, ["/s/a", "/s/b"], ["/t/a"]),
        ({"service": "s", "method": ""}, ["/s/a"], ["/t/a"]),
        ({"service": "s", "method": "m"}, ["/s/m"], ["/s/n", "/t/m"]),
        ({"Service": "s", "Method": "m"}, ["/s/m"], ["/s/n"]),
    ],
)
def test_name_forms(name: dict[str, str], covers: list[str], misses: list[str]) -> None:
    """147: {} / service "" = default; service alone = whole service; both = one method."""
    sc = parse_service_config({"methodConfig": [{"name": [name], "timeout": "1s"}]})
    for path in covers:
        assert sc.method_config(path) is not None, path
    for path in misses:
        assert sc.method_config(path) is None, path


def test_method_config_without_names_is_skipped() -> None:
    """147: a methodConfig with no names applies to nothing (but must still be valid)."""
    sc = parse_service_config({"methodConfig": [{"timeout": "1s"}, {"name": [], "timeout": "2s"}]})
    assert sc.method_configs == {}
    assert sc.method_config("/s/m") is None
    with pytest.raises(ValueError, match=r"methodConfig\[0\]\.timeout"):
        parse_service_config({"methodConfig": [{"timeout": "1"}]})


@pytest.mark.parametrize(
    ("method_configs", "fragment"),
    [
        (
            [{"name": [{"service": "", "method": "m"}]}],
            "methodConfig[0].name[0]: an empty service cannot have a method",
        ),
        ([{"name": [{"method": "m"}]}], "methodConfig[0].name[0]: an empty service"),
        (
            [{"name": [{"service": "s"}]}, {"name": [{"service": "s"}]}],
            "methodConfig[1].name: duplicate method name '/s/'",
        ),
        (
            [{"name": [{"service": "s", "method": "m"}, {"service": "s", "method": "m"}]}],
            "methodConfig[0].name: duplicate method name '/s/m'",
        ),
        (
            [{"name": [{"service": "s"}]}, {"name": [{"service": "s", "method": ""}]}],
            "duplicate method name '/s/'",
        ),
        ([{"name": [{}]}, {"name": [{"service": ""}]}], "methodConfig[1].name: duplicate"),
        ([{"name": [{"service": 5}]}], "methodConfig[0].name[0].service: must be a string"),
        ([{"name": [{"service": "s", "method": 5}]}], "methodConfig[0].name[0].method"),
        ([{"name": ["s"]}], "methodConfig[0].name[0]: must be a JSON object"),
    ],
)
def test_name_invalid(method_configs: list[Any], fragment: str) -> None:
    """147: empty service with a method; the same name twice anywhere."""
    with pytest.raises(ValueError) as ei:
        parse_service_config({"methodConfig": method_configs})
    assert fragment in str(ei.value)


# ---------------------------------------------------------------------------------------
# 149-151: timeout, waitForReady, sizes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("0.5s", 0.5),
        ("1.000340012s", 1.000340012),
        ("0s", 0.0),
        (".1s", 0.1),
        ("1.s", 1.0),
        ("100s", 100.0),
        ("0.000000001s", 1e-9),
    ],
)
def test_duration_valid(text: str, seconds: float) -> None:
    """149: proto3 JSON Duration (grpc-go also reads ".1s", as A6's examples write it)."""
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-12)


@pytest.mark.parametrize(
    "value",
    ["1", "1ms", "1.2.3s", "1.0000000001s", "s", ".s", "-1s", "1 s", " 1s", "1S", "+1s", 1, None],
)
def test_duration_invalid(value: Any) -> None:
    """149: "1", "1ms", "1.2.3s" and 10 fractional digits are invalid; so are negatives."""
    with pytest.raises(ValueError, match=r"^x\.y: "):
        parse_duration(value, "x.y")


@pytest.mark.parametrize("timeout", ["1", "1ms", "1.2.3s", "1.0000000001s", 1])
def test_timeout_invalid_names_field(timeout: Any) -> None:
    with pytest.raises(ValueError, match=r"^methodConfig\[0\]\.timeout: "):
        parse_service_config(_with_method(timeout=timeout))


def test_timeout_valid() -> None:
    mc = parse_service_config(_with_method(timeout="0.2s")).method_config("/s/m")
    assert mc is not None and mc.timeout == pytest.approx(0.2)


@pytest.mark.parametrize("value", [True, False])
def test_wait_for_ready_valid(value: bool) -> None:
    """150."""
    mc = parse_service_config(_with_method(waitForReady=value)).method_config("/s/m")
    assert mc is not None and mc.wait_for_ready is value


@pytest.mark.parametrize("value", ["true", 1, 0, {}])
def test_wait_for_ready_invalid(value: Any) -> None:
    """150: must be a JSON bool."""
    with pytest.raises(ValueError, match=r"^methodConfig\[0\]\.waitForReady: must be a boolean"):
        parse_service_config(_with_method(waitForReady=value))


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (4194304, 4194304), ("4194304", 4194304), (1024.0, 1024)]
)
@pytest.mark.parametrize("field", ["maxRequestMessageBytes", "maxResponseMessageBytes"])
def test_message_bytes_valid(field: str, value: Any, expected: int) -> None:
    """151: non-negative integers; proto3 JSON int64 strings accepted."""
    mc = parse_service_config(_with_method(**{field: value})).method_config("/s/m")
    assert mc is not None
    got = (
        mc.max_request_message_bytes
        if field == "maxRequestMessageBytes"
        else mc.max_response_message_bytes
    )
    assert got == expected


@pytest.mark.parametrize("value", [-1, "-1", 1.5, "abc", True, "1e3", ""])
@pytest.mark.parametrize("field", ["maxRequestMessageBytes", "maxResponseMessageBytes"])
def test_message_bytes_invalid(field: str, value: Any) -> None:
    """151."""
    with pytest.raises(ValueError, match=rf"^methodConfig\[0\]\.{field}: must be a non-negative"):
        parse_service_config(_with_method(**{field: value}))


# ---------------------------------------------------------------------------------------
# 107/152: retryPolicy
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "clamped"), [(2, 2), (5, 5), (7, 5), (10, 5), (3.0, 3)])
def test_max_attempts_clamped(given: Any, clamped: int) -> None:
    """107: maxAttempts above 5 is clamped to 5, not an error."""
    mc = parse_service_config(_retry(maxAttempts=given)).method_config("/s/m")
    assert mc is not None and mc.retry_policy is not None
    assert mc.retry_policy.max_attempts == clamped


def test_max_attempts_limit_option() -> None:
    """107: the client may lower the cap."""
    sc = parse_service_config(_retry(maxAttempts=4), max_attempts_limit=3)
    mc = sc.method_config("/s/m")
    assert mc is not None and mc.retry_policy is not None
    assert mc.retry_policy.max_attempts == 3


P = "methodConfig[0].retryPolicy"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"maxAttempts": 1}, f"{P}.maxAttempts: must be an integer > 1"),
        ({"maxAttempts": 0}, f"{P}.maxAttempts: must be an integer > 1"),
        ({"maxAttempts": -3}, f"{P}.maxAttempts: must be an integer > 1"),
        ({"maxAttempts": 2.5}, f"{P}.maxAttempts: must be an integer > 1"),
        ({"maxAttempts": "3"}, f"{P}.maxAttempts: must be an integer > 1"),
        ({"maxAttempts": True}, f"{P}.maxAttempts: must be an integer > 1"),
        ({"maxAttempts": _DROP}, f"{P}.maxAttempts: required"),
        ({"initialBackoff": "0s"}, f"{P}.initialBackoff: must be a Duration > 0"),
        ({"initialBackoff": "1"}, f"{P}.initialBackoff: malformed Duration"),
        ({"initialBackoff": 1}, f"{P}.initialBackoff: must be a Duration"),
        ({"initialBackoff": _DROP}, f"{P}.initialBackoff: required"),
        ({"maxBackoff": "0s"}, f"{P}.maxBackoff: must be a Duration > 0"),
        ({"maxBackoff": "-1s"}, f"{P}.maxBackoff: malformed Duration"),
        ({"maxBackoff": _DROP}, f"{P}.maxBackoff: required"),
        ({"backoffMultiplier": 0}, f"{P}.backoffMultiplier: must be a number > 0"),
        ({"backoffMultiplier": -1.5}, f"{P}.backoffMultiplier: must be a number > 0"),
        ({"backoffMultiplier": "2"}, f"{P}.backoffMultiplier: must be a number"),
        ({"backoffMultiplier": _DROP}, f"{P}.backoffMultiplier: required"),
        ({"retryableStatusCodes": []}, f"{P}.retryableStatusCodes: must not be empty"),
        ({"retryableStatusCodes": ["BOGUS"]}, f"{P}.retryableStatusCodes[0]: invalid status"),
        ({"retryableStatusCodes": ["UNAVAILABLE", 17]}, f"{P}.retryableStatusCodes[1]: invalid"),
        ({"retryableStatusCodes": [-1]}, f"{P}.retryableStatusCodes[0]: invalid status"),
        ({"retryableStatusCodes": ["14"]}, f"{P}.retryableStatusCodes[0]: invalid status"),
        ({"retryableStatusCodes": [True]}, f"{P}.retryableStatusCodes[0]: invalid status"),
        ({"retryableStatusCodes": "UNAVAILABLE"}, f"{P}.retryableStatusCodes: must be an array"),
        ({"retryableStatusCodes": _DROP}, f"{P}.retryableStatusCodes: required"),
        ({"perAttemptRecvTimeout": "0s"}, f"{P}.perAttemptRecvTimeout: must be a Duration > 0"),
        ({"perAttemptRecvTimeout": "x"}, f"{P}.perAttemptRecvTimeout: malformed Duration"),
    ],
)
def test_retry_policy_invalid(overrides: dict[str, Any], fragment: str) -> None:
    """152: every violation invalidates the whole config, naming the field."""
    with pytest.raises(ValueError) as ei:
        parse_service_config(_retry(**overrides))
    assert str(ei.value).startswith(fragment), str(ei.value)


def test_retry_policy_not_object() -> None:
    with pytest.raises(ValueError, match="^" + re.escape(P) + ": must be a JSON object"):
        parse_service_config(_with_method(retryPolicy=[]))


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["UNAVAILABLE"], {StatusCode.UNAVAILABLE}),
        (["unavailable"], {StatusCode.UNAVAILABLE}),
        (["Unavailable"], {StatusCode.UNAVAILABLE}),
        ([14], {StatusCode.UNAVAILABLE}),
        ([14, "UNAVAILABLE", "resource_exhausted"], {14, 8}),
        (["OK", 16], {StatusCode.OK, StatusCode.UNAUTHENTICATED}),
    ],
)
def test_retryable_codes_forms(codes: list[Any], expected: set[int]) -> None:
    """152: integers or case-insensitive names."""
    mc = parse_service_config(_retry(retryableStatusCodes=codes)).method_config("/s/m")
    assert mc is not None and mc.retry_policy is not None
    assert mc.retry_policy.retryable_status_codes == frozenset(StatusCode(c) for c in expected)


def test_parse_status_code() -> None:
    assert parse_status_code("deadline_exceeded") is StatusCode.DEADLINE_EXCEEDED
    assert parse_status_code(0) is StatusCode.OK
    with pytest.raises(ValueError, match=r"^here: invalid status code"):
        parse_status_code(3.0, "here")


# ---------------------------------------------------------------------------------------
# 153: hedgingPolicy
# ---------------------------------------------------------------------------------------


def test_hedging_defaults() -> None:
    """153: only maxAttempts is required; delay 0, no non-fatal codes; clamped at 5."""
    mc = parse_service_config(_with_method(hedgingPolicy={"maxAttempts": 9})).method_config("/s/m")
    assert mc is not None
    assert mc.hedging_policy == HedgingPolicy(max_attempts=5)
    assert mc.hedging_policy.hedging_delay == 0.0
    assert mc.hedging_policy.non_fatal_status_codes == frozenset()


def test_hedging_empty_non_fatal_codes_allowed() -> None:
    sc = parse_service_config(
        _with_method(
            hedgingPolicy={
                "maxAttempts": 2,
                "hedgingDelay": "0s",
                "nonFatalStatusCodes": [],
                "perAttemptRecvTimeout": "1s",
            }
        )
    )
    mc = sc.method_config("/s/m")
    assert mc is not None
    assert mc.hedging_policy == HedgingPolicy(max_attempts=2, per_attempt_recv_timeout=1.0)


H = "methodConfig[0].hedgingPolicy"


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        ({}, f"{H}.maxAttempts: required"),
        ({"maxAttempts": 1}, f"{H}.maxAttempts: must be an integer > 1"),
        ({"maxAttempts": 2, "hedgingDelay": "1"}, f"{H}.hedgingDelay: malformed Duration"),
        ({"maxAttempts": 2, "hedgingDelay": 0.5}, f"{H}.hedgingDelay: must be a Duration"),
        ({"maxAttempts": 2, "nonFatalStatusCodes": ["NOPE"]}, f"{H}.nonFatalStatusCodes[0]"),
        ({"maxAttempts": 2, "nonFatalStatusCodes": "X"}, f"{H}.nonFatalStatusCodes: must be"),
        ({"maxAttempts": 2, "perAttemptRecvTimeout": "0s"}, f"{H}.perAttemptRecvTimeout"),
    ],
)
def test_hedging_invalid(policy: dict[str, Any], fragment: str) -> None:
    """153."""
    with pytest.raises(ValueError) as ei:
        parse_service_config(_with_method(hedgingPolicy=policy))
    assert str(ei.value).startswith(fragment), str(ei.value)


def test_retry_and_hedging_together_invalid() -> None:
    """120/153: retryPolicy and hedgingPolicy are a oneof."""
    with pytest.raises(ValueError, match=r"^methodConfig\[0\]: retryPolicy and hedgingPolicy"):
        parse_service_config(_with_method(retryPolicy=RETRY, hedgingPolicy={"maxAttempts": 2}))


# ---------------------------------------------------------------------------------------
# 134/154: retryThrottling
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_tokens", "ratio", "expected_ratio"),
    [
        (10, 0.1, 0.1),
        (1000, 1, 1.0),
        (0.5, 0.5466, 0.546),  # 134: only 3 decimals count (truncated)
        (10, 4.35, 4.35),  # no binary drift in the truncation
        (10, 0.001, 0.001),
        (10, 2.9999, 2.999),
    ],
)
def test_retry_throttling_valid(max_tokens: float, ratio: float, expected_ratio: float) -> None:
    sc = parse_service_config({"retryThrottling": {"maxTokens": max_tokens, "tokenRatio": ratio}})
    assert sc.retry_throttling == RetryThrottling(
        max_tokens=float(max_tokens), token_ratio=expected_ratio
    )


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"maxTokens": 0, "tokenRatio": 0.1}, "retryThrottling.maxTokens: must be a number in"),
        ({"maxTokens": 1001, "tokenRatio": 0.1}, "retryThrottling.maxTokens: must be a number in"),
        ({"maxTokens": -1, "tokenRatio": 0.1}, "retryThrottling.maxTokens: must be a number in"),
        ({"maxTokens": "10", "tokenRatio": 0.1}, "retryThrottling.maxTokens: must be a number"),
        ({"tokenRatio": 0.1}, "retryThrottling.maxTokens: required"),
        ({"maxTokens": 10, "tokenRatio": 0}, "retryThrottling.tokenRatio: must be a number >="),
        ({"maxTokens": 10, "tokenRatio": -0.1}, "retryThrottling.tokenRatio: must be a number >="),
        ({"maxTokens": 10, "tokenRatio": 0.0004}, "retryThrottling.tokenRatio: must be a num"),
        ({"maxTokens": 10}, "retryThrottling.tokenRatio: required"),
        ({"maxTokens": 10, "tokenRatio": True}, "retryThrottling.tokenRatio: must be a number"),
    ],
)
def test_retry_throttling_invalid(block: dict[str, Any], fragment: str) -> None:
    """154: 0 and 1001 are invalid; tokenRatio 0 is invalid."""
    with pytest.raises(ValueError) as ei:
        parse_service_config({"retryThrottling": block})
    assert str(ei.value).startswith(fragment), str(ei.value)


def test_retry_throttling_not_object() -> None:
    with pytest.raises(ValueError, match=r"^retryThrottling: must be a JSON object"):
        parse_service_config({"retryThrottling": 5})


# ---------------------------------------------------------------------------------------
# 141: healthCheckConfig
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "expected"),
    [({"serviceName": ""}, ""), ({"serviceName": "svc"}, "svc"), ({}, None), (None, None)],
)
def test_health_check_config_valid(block: Any, expected: str | None) -> None:
    sc = parse_service_config({"healthCheckConfig": block})
    assert sc.health_check_service == expected


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"serviceName": 5}, "healthCheckConfig.serviceName: must be a string"),
        ({"serviceName": []}, "healthCheckConfig.serviceName: must be a string"),
        ("svc", "healthCheckConfig: must be a JSON object"),
    ],
)
def test_health_check_config_invalid(block: Any, fragment: str) -> None:
    """141: serviceName must be a JSON string."""
    with pytest.raises(ValueError) as ei:
        parse_service_config({"healthCheckConfig": block})
    assert str(ei.value).startswith(fragment)


# ---------------------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------------------


def test_equality_ignores_raw_whitespace() -> None:
    """Configs that differ only in whitespace compare equal (like grpc-go's equality)."""
    a = parse_service_config('{"loadBalancingPolicy":"round_robin"}')
    b = parse_service_config('{ "loadBalancingPolicy" : "round_robin" }')
    assert a == b
    assert a.raw != b.raw
    assert isinstance(a, ServiceConfig)


def test_lookup_with_odd_paths() -> None:
    """Paths without the usual shape fall through to the default."""
    sc = parse_service_config({"methodConfig": [{"name": [{}], "timeout": "3s"}]})
    for path in ("", "/", "noslash", "/s/m/extra"):
        mc = sc.method_config(path)
        assert mc is not None and mc.timeout == 3.0

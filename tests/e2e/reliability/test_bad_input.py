"""Bad input from the user side (issue 7, "Bad input"; API.md "Channels", "Targets",
"Options", "Service config"; CONFORMANCE 20, 21, 47, 142-154).

Every mistake a program can make when it builds a channel or starts a call gets a clear
``ValueError`` (or, for a message over the send limit, RESOURCE_EXHAUSTED) at once, and:

- a channel that could not be built started nothing: no task, no scheduled callback, no
  file descriptor (never a half-configured channel);
- a call that could not be started sent nothing: the scripted h2 peer saw no HEADERS
  (and no DATA for an oversize message);
- the same channel keeps working for the next valid call.

Peer-side bad input (malformed frames, HPACK, lying length prefixes, ...) is covered by
tests/transport/test_fuzz.py and tests/e2e/transport/test_wire*.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

import grpc_lite
from grpc_lite._options import _CONVERTERS
from grpc_lite.testing import Backend, helloworld_pb2
from tests.e2e.reliability._util import SC, fd_count, other_tasks, task_names
from tests.h2peer import H2Peer, PeerStream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

GREETER = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"]

UNARY = "/reliability.Echo/Unary"
CLIENT_STREAM = "/reliability.Echo/ClientStream"
SERVER_STREAM = "/reliability.Echo/ServerStream"
BIDI = "/reliability.Echo/Bidi"


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def nothing_started() -> Iterator[None]:
    """Asserts that the block created no task, scheduled no callback or timer on the loop
    and opened no file descriptor (the block must not await)."""
    loop = asyncio.get_running_loop()
    tasks = other_tasks()
    ready = len(loop._ready)  # type: ignore[attr-defined]
    scheduled = len(loop._scheduled)  # type: ignore[attr-defined]
    fds = fd_count()
    yield
    new_tasks = other_tasks() - tasks
    assert not new_tasks, f"tasks created: {task_names(new_tasks)}"
    assert len(loop._ready) == ready, "a callback was scheduled"  # type: ignore[attr-defined]
    assert len(loop._scheduled) == scheduled, "a timer was armed"  # type: ignore[attr-defined]
    assert fd_count() == fds, "a file descriptor was opened"


async def _echo(stream: PeerStream) -> None:
    """Echo peer: every request message back as it arrives (one concatenated reply for
    unary-response methods), then OK."""
    if stream.path in (UNARY, CLIENT_STREAM):
        messages = await stream.read_all()
        await stream.send_headers()
        await stream.send_message(b"".join(messages))
    else:
        await stream.send_headers()
        while (m := await stream.read_message(timeout=None)) is not None:
            await stream.send_message(m)
    await stream.send_trailers(0)


async def _valid_calls(ch: grpc_lite.Channel) -> None:
    """One valid call of each kind on ``ch``; all succeed."""
    assert await ch.unary_unary(UNARY)(b"ok", timeout=5) == b"ok"
    assert await ch.stream_unary(CLIENT_STREAM)(iter([b"o", b"k"]), timeout=5) == b"ok"
    server_stream = ch.unary_stream(SERVER_STREAM)(b"ok", timeout=5)
    assert [m async for m in server_stream] == [b"ok"]
    bidi = ch.stream_stream(BIDI)(iter([b"a", b"b"]), timeout=5)
    assert [m async for m in bidi] == [b"a", b"b"]


def _headers_seen(peer: H2Peer) -> int:
    return len(peer.frames_of("HEADERS"))


# --------------------------------------------------------------------------- options

# For each known option key, values of the wrong type and values out of range. The test
# below fails if a key is added to grpc_lite._options without an entry here.
_WRONG_TYPE_NUMBER = ["100", b"100", [100], {"v": 100}, None, object()]
_MS = [*_WRONG_TYPE_NUMBER, True, -1, -5.5, math.nan]
_MS_POSITIVE = [*_MS, 0]
_LENGTH = [*_WRONG_TYPE_NUMBER, True, 1.5, math.nan, -2, -100]
_SIZE = [*_WRONG_TYPE_NUMBER, True, 1.5, math.nan, -1]
_SWITCH = [*_WRONG_TYPE_NUMBER, 2, -1, 0.5, math.nan, "1"]
_STRING = [5, 1.5, True, None, b"bytes", ["x"], object()]

BAD_OPTION_VALUES: dict[str, list[Any]] = {
    "grpc.service_config": [5, None, b"{}", ["{}"], object()],
    "grpc.lb_policy_name": [*_STRING, "no_such_policy", ""],
    "grpc.enable_retries": _SWITCH,
    "grpc.initial_reconnect_backoff_ms": _MS_POSITIVE,
    "grpc.max_reconnect_backoff_ms": _MS_POSITIVE,
    "grpc.min_reconnect_backoff_ms": _MS_POSITIVE,
    "grpc.dns_min_time_between_resolutions_ms": _MS,
    "grpc_lite.dns_refresh_interval_s": _MS,
    "grpc.max_send_message_length": _LENGTH,
    "grpc.max_receive_message_length": _LENGTH,
    "grpc.keepalive_time_ms": _MS_POSITIVE,
    "grpc.keepalive_timeout_ms": _MS_POSITIVE,
    "grpc.keepalive_permit_without_calls": _SWITCH,
    "grpc.client_idle_timeout_ms": _MS,
    "grpc.per_rpc_retry_buffer_size": _SIZE,
    "grpc_lite.retry_buffer_size": _SIZE,
    "grpc_lite.avoid_previous_hosts": _SWITCH,
    "grpc.default_authority": _STRING,
    "grpc.primary_user_agent": _STRING,
    # Not a str, or not an http:// proxy URL (the message names the option, not the value).
    "grpc.http_proxy": [*_STRING, "ftp://proxy:21", "http://proxy:port", "http://[::1"],
    "grpc.enable_http_proxy": _SWITCH,
    "grpc.secondary_user_agent": _STRING,
    "grpc.ssl_target_name_override": _STRING,
    "grpc.default_compression_algorithm": [*_WRONG_TYPE_NUMBER, True, 3, -1, 1.0, "gzip"],
    "grpc.service_config_disable_resolution": _SWITCH,
    "grpc_lite.xds_bootstrap_config": _STRING,
    "grpc_lite.xds_resource_timeout_s": _MS,
    "grpc_lite.xds_failover_timeout_s": _MS,
}


def test_every_known_option_has_bad_values_listed() -> None:
    """The table above covers every option grpc_lite knows (so a new option cannot slip
    through without a bad-input check)."""
    assert set(BAD_OPTION_VALUES) == set(_CONVERTERS)


@pytest.mark.parametrize("key", sorted(_CONVERTERS))
async def test_bad_option_value_raises_value_error_naming_the_key(key: str) -> None:
    """API.md "Options": a known key with a value of the wrong type or range raises
    ValueError naming the key, from insecure_channel and secure_channel alike, and starts
    nothing. The same key with a good value is accepted."""
    creds = grpc_lite.ssl_channel_credentials()
    for value in BAD_OPTION_VALUES[key]:
        for make in (
            lambda opts: grpc_lite.insecure_channel("localhost:50051", opts),
            lambda opts: grpc_lite.secure_channel("localhost:50051", creds, opts),
        ):
            with nothing_started(), pytest.raises(ValueError) as info:
                make([("grpc.enable_retries", 1), (key, value)])
            assert key in str(info.value), (key, value, str(info.value))


GOOD_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.service_config", json.dumps({"loadBalancingPolicy": "round_robin"})),
    ("grpc.lb_policy_name", "pick_first"),
    ("grpc.enable_retries", True),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000.0),
    ("grpc.min_reconnect_backoff_ms", 5000),
    ("grpc.dns_min_time_between_resolutions_ms", 0),
    ("grpc_lite.dns_refresh_interval_s", 0),
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", 8 << 20),
    ("grpc.keepalive_time_ms", 2**31 - 1),
    ("grpc.keepalive_timeout_ms", 20000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.client_idle_timeout_ms", 60000),
    ("grpc.per_rpc_retry_buffer_size", 0),
    ("grpc_lite.retry_buffer_size", 1 << 20),
    ("grpc_lite.avoid_previous_hosts", 0),
    ("grpc.default_authority", "svc.example.test"),
    ("grpc.primary_user_agent", "reliability-test/1.0"),
    ("grpc.http_proxy", ""),  # empty: no proxy (C-core), so the call below goes direct
    ("grpc.enable_http_proxy", 1),
    ("grpc.secondary_user_agent", "secondary/2.0"),
    ("grpc.ssl_target_name_override", "localhost"),
    ("grpc.default_compression_algorithm", 2),
    ("grpc.service_config_disable_resolution", 1),
    ("grpc_lite.xds_bootstrap_config", '{"xds_servers": []}'),  # read by xds:/// only
    ("grpc_lite.xds_resource_timeout_s", 15),
    ("grpc_lite.xds_failover_timeout_s", 0.5),
    ("grpc.some_unknown_option", object()),  # unknown grpc.* keys are ignored
]


def test_good_options_table_covers_every_option() -> None:
    assert {k for k, _ in GOOD_OPTIONS} >= set(_CONVERTERS)


@pytest.mark.parametrize(
    "options",
    [
        [("grpc.enable_retries",)],
        [("grpc.enable_retries", 1, 2)],
        ["grpc.enable_retries"],
        [5],
        [(5, 1)],
        [(b"grpc.enable_retries", 1)],
        [(None, 1)],
        "grpc.enable_retries",
    ],
    ids=repr,
)
async def test_malformed_options_list(options: Any) -> None:
    """Options that are not (str key, value) pairs raise ValueError and start nothing."""
    with nothing_started(), pytest.raises(ValueError):
        grpc_lite.insecure_channel("localhost:50051", options)


async def test_valid_options_build_a_working_channel() -> None:
    """After all the rejections above, the full set of valid options (plus an unknown
    ``grpc.*`` key, ignored) builds a channel that works."""
    async with Backend() as backend:
        options = [(k, v) for k, v in GOOD_OPTIONS if k != "grpc.ssl_target_name_override"]
        with nothing_started():
            ch = grpc_lite.insecure_channel(backend.address, options)
        async with ch:
            stub = grpc_lite.Stub(ch, GREETER)
            reply = await stub.SayHello(helloworld_pb2.HelloRequest(name="opts"), timeout=5)
        assert reply.message == f"Hello opts from {backend.address}"


# --------------------------------------------------------------------------- targets

MALFORMED_TARGETS = [
    # API.md "Targets": an unregistered scheme read as dns and not a valid host[:port].
    "bogus-scheme://x/y",
    # an empty host
    "",
    "dns:///",
    "ipv4::50051",
    # a colon with an empty port (grpc-go)
    "dns:///127.0.0.1:",
    "127.0.0.1:",
    "[::1]:",
    "dns:///:",
    # a port outside 1-65535
    "localhost:0",
    "localhost:65536",
    "dns:///localhost:99999",
    "ipv4:127.0.0.1:0",
    "ipv6:[::1]:70000",
    # an empty passthrough endpoint
    "passthrough:///",
    # a unix target has no authority
    "unix://host/path",
    "unix-abstract://host/name",
    "unix:",
    "unix-abstract:bad\0name",
]


@pytest.mark.parametrize("target", MALFORMED_TARGETS, ids=repr)
async def test_malformed_target_raises_at_creation_and_starts_nothing(target: str) -> None:
    """API.md "Targets": every malformed target raises ValueError when the channel is
    created (insecure and secure), naming the target; nothing was started."""
    creds = grpc_lite.ssl_channel_credentials()
    with nothing_started(), pytest.raises(ValueError) as info:
        grpc_lite.insecure_channel(target)
    assert repr(target) in str(info.value), str(info.value)
    with nothing_started(), pytest.raises(ValueError):
        grpc_lite.secure_channel(target, creds)


@pytest.mark.parametrize("target", [b"localhost:50051", None, 50051, ["localhost:1"]], ids=repr)
async def test_target_of_wrong_type(target: Any) -> None:
    """A target that is not a str is a ValueError too (never a TypeError from deep inside)."""
    with nothing_started(), pytest.raises(ValueError):
        grpc_lite.insecure_channel(target)


# --------------------------------------------------------------------------- service configs

_RETRY = {
    "maxAttempts": 3,
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def _mc(**fields: Any) -> dict[str, Any]:
    return {"methodConfig": [{"name": [{"service": "reliability.Echo"}], **fields}]}


# (config, the field path the message must name)
BAD_SERVICE_CONFIGS: list[tuple[Any, str]] = [
    ("{", "not valid JSON"),
    ('{"x": NaN}', "not valid JSON"),
    ("[]", "must be a JSON object"),
    (5, "service config"),
    ({"methodConfig": 5}, "methodConfig"),
    ({"methodConfig": [5]}, "methodConfig[0]"),
    ({"loadBalancingPolicy": "no_such_policy"}, "loadBalancingPolicy"),
    ({"loadBalancingPolicy": 5}, "loadBalancingPolicy"),
    ({"loadBalancingConfig": {"round_robin": {}}}, "loadBalancingConfig"),
    ({"loadBalancingConfig": [{"no_such_policy": {}}]}, "loadBalancingConfig"),
    ({"loadBalancingConfig": [{"round_robin": {}, "pick_first": {}}]}, "loadBalancingConfig[0]"),
    ({"loadBalancingConfig": [{"round_robin": 5}]}, "loadBalancingConfig[0].round_robin"),
    (
        {"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": "yes"}}]},
        "loadBalancingConfig[0].pick_first",
    ),
    (_mc(timeout="1"), "methodConfig[0].timeout"),
    (_mc(timeout="1ms"), "methodConfig[0].timeout"),
    (_mc(timeout="1.0000000001s"), "methodConfig[0].timeout"),
    (_mc(waitForReady="yes"), "methodConfig[0].waitForReady"),
    (_mc(maxRequestMessageBytes=-1), "methodConfig[0].maxRequestMessageBytes"),
    (_mc(maxResponseMessageBytes="many"), "methodConfig[0].maxResponseMessageBytes"),
    ({"methodConfig": [{"name": [{"method": "Unary"}]}]}, "methodConfig[0].name[0]"),
    ({"methodConfig": [{"name": [{"service": 5}]}]}, "methodConfig[0].name[0].service"),
    ({"methodConfig": [{"name": 5}]}, "methodConfig[0].name"),
    (
        {"methodConfig": [{"name": [{"service": "s"}]}, {"name": [{"service": "s"}]}]},
        "methodConfig[1].name",
    ),
    (_mc(retryPolicy={**_RETRY, "maxAttempts": 1}), "methodConfig[0].retryPolicy.maxAttempts"),
    (_mc(retryPolicy={**_RETRY, "maxAttempts": "x"}), "methodConfig[0].retryPolicy.maxAttempts"),
    (
        _mc(retryPolicy={**_RETRY, "initialBackoff": "0s"}),
        "methodConfig[0].retryPolicy.initialBackoff",
    ),
    (_mc(retryPolicy={**_RETRY, "maxBackoff": "-1s"}), "methodConfig[0].retryPolicy.maxBackoff"),
    (
        _mc(retryPolicy={**_RETRY, "backoffMultiplier": 0}),
        "methodConfig[0].retryPolicy.backoffMultiplier",
    ),
    (
        _mc(retryPolicy={**_RETRY, "retryableStatusCodes": []}),
        "methodConfig[0].retryPolicy.retryableStatusCodes",
    ),
    (
        _mc(retryPolicy={**_RETRY, "retryableStatusCodes": ["BOGUS"]}),
        "methodConfig[0].retryPolicy.retryableStatusCodes",
    ),
    (
        _mc(retryPolicy={k: v for k, v in _RETRY.items() if k != "initialBackoff"}),
        "methodConfig[0].retryPolicy.initialBackoff",
    ),
    (_mc(retryPolicy=5), "methodConfig[0].retryPolicy"),
    (
        _mc(retryPolicy=_RETRY, hedgingPolicy={"maxAttempts": 2}),
        "retryPolicy and hedgingPolicy",
    ),
    (_mc(hedgingPolicy={"maxAttempts": 1}), "methodConfig[0].hedgingPolicy.maxAttempts"),
    (
        _mc(hedgingPolicy={"maxAttempts": 2, "hedgingDelay": "soon"}),
        "methodConfig[0].hedgingPolicy.hedgingDelay",
    ),
    (
        _mc(hedgingPolicy={"maxAttempts": 2, "nonFatalStatusCodes": ["NOPE"]}),
        "methodConfig[0].hedgingPolicy.nonFatalStatusCodes",
    ),
    ({"retryThrottling": {"maxTokens": 0, "tokenRatio": 1}}, "retryThrottling.maxTokens"),
    ({"retryThrottling": {"maxTokens": 1001, "tokenRatio": 1}}, "retryThrottling.maxTokens"),
    ({"retryThrottling": {"maxTokens": 10, "tokenRatio": 0}}, "retryThrottling.tokenRatio"),
    ({"retryThrottling": {"maxTokens": 10}}, "retryThrottling.tokenRatio"),
    ({"retryThrottling": 5}, "retryThrottling"),
    ({"healthCheckConfig": {"serviceName": 5}}, "healthCheckConfig.serviceName"),
    ({"healthCheckConfig": []}, "healthCheckConfig"),
    # grpc-go's CapitalCase spelling is validated the same way.
    (
        {
            "MethodConfig": [
                {"Name": [{"Service": "s"}], "RetryPolicy": {**_RETRY, "MaxAttempts": 0}}
            ]
        },
        "retryPolicy.maxAttempts",
    ),
]


@pytest.mark.parametrize(
    ("config", "field"), BAD_SERVICE_CONFIGS, ids=[f for _, f in BAD_SERVICE_CONFIGS]
)
async def test_invalid_service_config_raises_naming_the_field(config: Any, field: str) -> None:
    """API.md "Channels" / CONFORMANCE 142-154: an invalid service config given to the
    channel (``service_config=``, as text or dict, or the ``grpc.service_config`` option)
    raises ValueError naming the offending field, and starts nothing."""
    with nothing_started(), pytest.raises(ValueError) as info:
        grpc_lite.insecure_channel("localhost:50051", service_config=config)
    assert field in str(info.value), str(info.value)
    if not isinstance(config, str):
        with nothing_started(), pytest.raises(ValueError) as info:
            grpc_lite.insecure_channel("localhost:50051", service_config=json.dumps(config))
        assert field in str(info.value), str(info.value)
    text = config if isinstance(config, str) else json.dumps(config)
    with nothing_started(), pytest.raises(ValueError) as info:
        grpc_lite.insecure_channel("localhost:50051", [("grpc.service_config", text)])
    assert field in str(info.value), str(info.value)


async def test_bad_compression_and_method_path() -> None:
    """Other constructor mistakes: an unknown compression raises ValueError at channel
    creation; a method path that does not start with ``/`` (not a full
    ``/package.Service/Method``) raises ValueError when the multi-callable is made. Neither
    starts anything."""
    with nothing_started(), pytest.raises(ValueError):
        grpc_lite.insecure_channel("localhost:50051", compression="brotli")  # type: ignore[arg-type]
    ch = grpc_lite.insecure_channel("localhost:50051")
    try:
        for path in ["Unary", "reliability.Echo/Unary", "", None]:
            with nothing_started(), pytest.raises(ValueError):
                ch.unary_unary(path)
    finally:
        await ch.close()


# --------------------------------------------------------------------------- metadata

BAD_METADATA: list[Any] = [
    # keys
    [("Bad Key", "v")],
    [("x y", "v")],
    [("UPPER", "v")],
    [("", "v")],
    [("a/b", "v")],
    [("a:b", "v")],
    [("k\x00", "v")],
    [("ké", "v")],
    [("grpc-custom", "v")],  # reserved prefix
    [(":path", "/evil/Path")],
    [("content-type", "text/plain")],
    [("te", "gzip")],
    [("connection", "close")],
    [(b"bytes-key", "v")],
    [(5, "v")],
    [(None, "v")],
    [(["list-key"], "v")],
    # values
    [("x-ascii", "\x01")],
    [("x-ascii", "line\nbreak")],
    [("x-ascii", "tab\there")],
    [("x-ascii", "caf\u00e9")],
    [("x-ascii", "\x7f")],
    [("x-ascii", b"bytes for a text key")],
    [("x-ascii", 5)],
    [("x-ascii", None)],
    [("x-bin", 5)],
    [("x-bin", None)],
    [("x-bin", ["b"])],
    # shapes
    [("only-key",)],
    [("k", "v", "extra")],
    ["k"],
    [("good", "ok"), ("Bad Key", "v")],  # one bad pair among good ones
]


@pytest.mark.parametrize("metadata", BAD_METADATA, ids=repr)
async def test_bad_metadata_raises_before_anything_is_sent(metadata: Any) -> None:
    """CONFORMANCE 20, 21: metadata with a bad key or value raises ValueError when the call
    is made, for each of the four call kinds; the peer never sees a HEADERS frame for it,
    and the same channel then makes valid calls of every kind."""
    async with H2Peer(_echo) as peer, grpc_lite.insecure_channel(peer.target) as ch:
        await _valid_calls(ch)
        before = _headers_seen(peer)
        started = ch.snapshot().calls_started
        makers = [
            lambda: ch.unary_unary(UNARY)(b"x", timeout=5, metadata=metadata),
            lambda: ch.unary_stream(SERVER_STREAM)(b"x", timeout=5, metadata=metadata),
            lambda: ch.stream_unary(CLIENT_STREAM)(iter([b"x"]), timeout=5, metadata=metadata),
            lambda: ch.stream_stream(BIDI)(iter([b"x"]), timeout=5, metadata=metadata),
        ]
        for make in makers:
            with pytest.raises(ValueError):
                make()
        await asyncio.sleep(0.05)  # anything queued would have been written by now
        assert _headers_seen(peer) == before
        assert ch.snapshot().calls_started == started
        await _valid_calls(ch)
        assert _headers_seen(peer) == before + 4
        assert not peer.errors


async def test_good_metadata_edge_cases_are_sent() -> None:
    """The accepted edges of the rules (so the rejections above are not over-eager):
    ``_``, ``.``, ``-`` and digits in keys, a space and ``~`` in values, bytes and str
    values for ``-bin`` keys, an empty value."""
    metadata = [
        ("a_b.c-d0", "spaced ~value"),
        ("x-bin", b"\x00\xff"),
        ("y-bin", "text"),
        ("empty", ""),
    ]
    async with H2Peer(_echo) as peer, grpc_lite.insecure_channel(peer.target) as ch:
        assert await ch.unary_unary(UNARY)(b"x", timeout=5, metadata=metadata) == b"x"
        (stream,) = await peer.wait_for_streams(1)
        assert stream.header("a_b.c-d0") is not None
        assert stream.header("x-bin") == "AP8"
        assert stream.header("empty") == ""


@pytest.mark.parametrize("value", [" leading", "trailing ", "  both  ", " "])
async def test_value_with_surrounding_whitespace_never_breaks_the_connection(value: str) -> None:
    """CONFORMANCE 21 ("leading and trailing whitespace may be stripped") and RFC 9113
    8.2.1 (a field value MUST NOT start or end with whitespace; a server treats such a
    request as malformed): a metadata value with surrounding spaces is either rejected
    with ValueError before anything is sent, or sent stripped. It is never put on the wire
    as is, where a strict server (h2 here) rejects the request with a connection error and
    every call on that connection fails UNAVAILABLE. A call in flight on the same
    connection is not disturbed, and the channel keeps its one connection."""
    async with H2Peer(_echo) as peer, grpc_lite.insecure_channel(peer.target) as ch:
        await _valid_calls(ch)
        bystander = ch.stream_stream(BIDI)(timeout=5)
        await bystander.write(b"before")
        assert await bystander.read() == b"before"
        try:
            call = ch.unary_unary(UNARY)(b"x", timeout=5, metadata=[("x-spaced", value)])
        except ValueError:
            sent = False
        else:
            sent = True
            assert await call == b"x"
        if sent:
            stream = peer.streams[-1]
            assert stream.header("x-spaced") == value.strip(), stream.headers
        await bystander.write(b"after")
        assert await bystander.read() == b"after"
        await bystander.done_writing()
        assert await bystander.read() is grpc_lite.EOF
        await _valid_calls(ch)
        assert not peer.protocol_errors, peer.protocol_errors
        assert peer.connection_count == 1


# --------------------------------------------------------------------------- send limit


@pytest.mark.parametrize("how", ["option", "service_config"])
async def test_message_over_send_limit_fails_before_sending(how: str) -> None:
    """CONFORMANCE 47/48: with a send limit of 100 bytes (``grpc.max_send_message_length``
    or the method's ``maxRequestMessageBytes``), a 101-byte request fails
    RESOURCE_EXHAUSTED before it is sent, for every call kind:

    - unary request: nothing at all reaches the peer (no HEADERS);
    - streaming request: the oversize message is never sent (no DATA carries it) and the
      stream is reset; the messages before it went out normally.

    After each failure the same channel makes valid calls of every kind (and a 100-byte
    message, exactly the limit, goes through)."""
    options: list[tuple[str, Any]] = []
    config: dict[str, Any] | None = None
    if how == "option":
        options = [("grpc.max_send_message_length", 100)]
    else:
        config = {
            "methodConfig": [
                {"name": [{"service": "reliability.Echo"}], "maxRequestMessageBytes": 100}
            ]
        }
    big, edge = b"\x07" * 101, b"\x07" * 100
    async with (
        H2Peer(_echo) as peer,
        grpc_lite.insecure_channel(peer.target, options, service_config=config) as ch,
    ):
        await _valid_calls(ch)
        assert await ch.unary_unary(UNARY)(edge, timeout=5) == edge

        # Unary request (unary and server-streaming response): nothing is sent.
        headers_before = _headers_seen(peer)
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(big, timeout=5)
        assert info.value.code() is SC.RESOURCE_EXHAUSTED, info.value
        call = ch.unary_stream(SERVER_STREAM)(big, timeout=5)
        with pytest.raises(grpc_lite.RpcError) as info:
            async for _ in call:
                pass
        assert info.value.code() is SC.RESOURCE_EXHAUSTED, info.value
        assert _headers_seen(peer) == headers_before
        await _valid_calls(ch)

        # Streaming request, written with write(): the write fails, the call fails.
        n_streams = len(peer.streams)
        cs = ch.stream_unary(CLIENT_STREAM)(timeout=5)
        await cs.write(b"small")
        with pytest.raises(grpc_lite.RpcError) as info:
            await cs.write(big)
        assert info.value.code() is SC.RESOURCE_EXHAUSTED, info.value
        with pytest.raises(grpc_lite.RpcError) as info:
            await cs
        assert info.value.code() is SC.RESOURCE_EXHAUSTED, info.value

        # Streaming request from an iterator: the call fails RESOURCE_EXHAUSTED.
        bidi = ch.stream_stream(BIDI)(iter([b"first", big, b"never"]), timeout=5)
        with pytest.raises(grpc_lite.RpcError) as info:
            async for _ in bidi:
                pass
        assert info.value.code() is SC.RESOURCE_EXHAUSTED, info.value

        streams = peer.streams[n_streams:]
        await peer.wait_until(lambda: all(s.done for s in streams), 2.0)
        for s in streams:
            assert all(len(m) <= 100 for _, m in s.messages), s
            assert b"never" not in bytes(s.data), "a message after the oversize one was sent"
            assert s.reset_code is not None, f"the failed call's stream was not reset: {s}"
        await _valid_calls(ch)
        assert not peer.errors

"""No silent drops: what grpcio users hand a channel or a call is honoured or refused loudly.

- A ``grpc.*`` / ``grpc_lite.*`` channel option grpc_lite does not honour logs one WARNING
  naming the key (never the value), once per key per process.
- The README's option table lists every honoured key, and nothing else as honoured.
- The channel factories and the multi-callables take grpc.aio's parameters, in its order.
"""

from __future__ import annotations

import inspect
import logging
import re
import uuid
from pathlib import Path

import grpc
import pytest

import grpc_lite
from grpc_lite._options import _ALWAYS, _CONVERTERS, parse_options

README = Path(__file__).resolve().parent.parent / "README.md"

# Common grpcio channel arguments (grpc's include/grpc/impl/channel_arg_names.h) that a
# client channel might be given; each is honoured (a converter) or warned about.
GRPCIO_CLIENT_ARGS = [
    "grpc.max_receive_message_length",
    "grpc.max_send_message_length",
    "grpc.client_idle_timeout_ms",
    "grpc.per_message_compression",
    "grpc.per_message_decompression",
    "grpc.http2.lookahead_bytes",
    "grpc.http2.hpack_table_size.decoder",
    "grpc.http2.max_frame_size",
    "grpc.http2.bdp_probe",
    "grpc.http2.min_time_between_pings_ms",
    "grpc.http2.max_pings_without_data",
    "grpc.http2.write_buffer_size",
    "grpc.http2.true_binary",
    "grpc.keepalive_time_ms",
    "grpc.keepalive_timeout_ms",
    "grpc.keepalive_permit_without_calls",
    "grpc.default_authority",
    "grpc.primary_user_agent",
    "grpc.secondary_user_agent",
    "grpc.min_reconnect_backoff_ms",
    "grpc.max_reconnect_backoff_ms",
    "grpc.initial_reconnect_backoff_ms",
    "grpc.dns_min_time_between_resolutions_ms",
    "grpc.ssl_target_name_override",
    "grpc.max_metadata_size",
    "grpc.absolute_max_metadata_size",
    "grpc.service_config",
    "grpc.service_config_disable_resolution",
    "grpc.lb_policy_name",
    "grpc.enable_channelz",
    "grpc.enable_retries",
    "grpc.per_rpc_retry_buffer_size",
    "grpc.surface_user_agent",
    "grpc.inhibit_health_checking",
    "grpc.use_local_subchannel_pool",
    "grpc.default_compression_algorithm",
    "grpc.default_compression_level",
    "grpc.optimization_target",
    "grpc.dns_enable_srv_queries",
    "grpc.dns_ares_query_timeout",
    "grpc.happy_eyeballs_connection_attempt_delay_ms",
    "grpc.dscp",
    "grpc.tcp_receive_buffer_size",
]


def _unique(prefix: str = "grpc.") -> str:
    return f"{prefix}test_unknown_{uuid.uuid4().hex[:8]}"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "grpc_lite" and r.levelno == logging.WARNING
    ]


def test_unsupported_grpc_option_warns_once_per_key(caplog: pytest.LogCaptureFixture) -> None:
    """One WARNING naming the key, for the first channel that uses it; never the value."""
    caplog.set_level(logging.DEBUG, logger="grpc_lite")
    key, other = _unique(), _unique("grpc_lite.")
    grpc_lite.insecure_channel("localhost:1", [(key, "s3cret-value")])
    grpc_lite.insecure_channel("localhost:1", [(key, 2), (other, 1)])
    grpc_lite.secure_channel("localhost:1", grpc_lite.ssl_channel_credentials(), [(key, 3)])
    warned = _warnings(caplog)
    assert len(warned) == 2, warned
    assert repr(key) in warned[0] and "not supported" in warned[0]
    assert repr(other) in warned[1]
    assert "s3cret-value" not in caplog.text


def test_application_keys_stay_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """Keys outside grpc's namespaces belong to the application (grpcio passes them to its
    plugins too): DEBUG only."""
    caplog.set_level(logging.DEBUG, logger="grpc_lite")
    grpc_lite.insecure_channel("localhost:1", [("myapp.resolver_hint", "x")])
    assert _warnings(caplog) == []
    assert "myapp.resolver_hint" in caplog.text


def test_values_grpc_lite_always_has_are_quiet(caplog: pytest.LogCaptureFixture) -> None:
    """An argument asking for what grpc_lite always does is accepted quietly; any other
    value of it is warned about with the value grpc_lite accepts."""
    caplog.set_level(logging.DEBUG, logger="grpc_lite")
    parse_options(list((k, v) for k, (v, _) in _ALWAYS.items()))
    assert _warnings(caplog) == []
    from grpc_lite import _options

    _options._warned.discard("grpc.enable_channelz")
    parse_options([("grpc.enable_channelz", 1)])
    (warned,) = _warnings(caplog)
    assert "'grpc.enable_channelz'" in warned and "accepts only 0" in warned


@pytest.mark.parametrize("key", GRPCIO_CLIENT_ARGS)
def test_every_common_grpcio_argument_is_honoured_or_warned(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    from grpc_lite import _options

    caplog.set_level(logging.DEBUG, logger="grpc_lite")
    _options._warned.discard(key)
    value = {"grpc.lb_policy_name": "pick_first", "grpc.ssl_target_name_override": "x"}.get(
        key, "{}" if key == "grpc.service_config" else 1
    )
    if key in ("grpc.default_authority", "grpc.primary_user_agent", "grpc.secondary_user_agent"):
        value = "x"
    parse_options([(key, value)])
    if key in _CONVERTERS or (key in _ALWAYS and _ALWAYS[key][0] == value):
        assert _warnings(caplog) == []
    elif key == "grpc.http2.min_time_between_pings_ms":
        assert _warnings(caplog) == []  # deprecated: no effect in grpcio either
    else:
        assert [repr(key) in w for w in _warnings(caplog)] == [True], key


def _readme_option_rows() -> dict[str, str]:
    """The README option table: key -> its "grpc_lite" column."""
    text = README.read_text()
    start = text.index("<!-- option-table -->")
    end = text.index("<!-- /option-table -->")
    rows = {}
    for line in text[start:end].splitlines():
        match = re.match(r"\|\s*`([a-z_.0-9]+)`\s*\|\s*([^|]+)\|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def test_readme_option_table_matches_the_code() -> None:
    """Every key with a converter is in the table as honoured; every key the table calls
    honoured has one (or is read by a resolver); the accepted-as-is keys say so."""
    rows = _readme_option_rows()
    honoured = {k for k, v in rows.items() if v.startswith("honoured")}
    assert set(_CONVERTERS) <= honoured, set(_CONVERTERS) - honoured
    assert honoured <= set(_CONVERTERS), honoured - set(_CONVERTERS)
    for key, (value, _) in _ALWAYS.items():
        assert rows.get(key, "").startswith(f"accepted as {value}"), key


def test_factories_take_grpc_aios_parameters_in_order() -> None:
    """insecure_channel(target, options, compression, interceptors) and secure_channel(
    target, credentials, options, compression, interceptors), positional as in grpc.aio;
    grpc_lite's own additions are keyword-only after them."""
    for ours, theirs in (
        (grpc_lite.insecure_channel, grpc.aio.insecure_channel),
        (grpc_lite.secure_channel, grpc.aio.secure_channel),
    ):
        their_names = list(inspect.signature(theirs).parameters)
        our_params = inspect.signature(ours).parameters
        assert list(our_params)[: len(their_names)] == their_names
        extra = list(our_params.values())[len(their_names) :]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extra)


def test_multicallables_take_grpc_aios_keywords() -> None:
    """Every keyword grpc.aio's multi-callables take is a parameter here (and honoured;
    see the tests per keyword), with the same kinds."""
    pairs = [
        (grpc_lite.UnaryUnaryMultiCallable, grpc.aio.UnaryUnaryMultiCallable),
        (grpc_lite.UnaryStreamMultiCallable, grpc.aio.UnaryStreamMultiCallable),
        (grpc_lite.StreamUnaryMultiCallable, grpc.aio.StreamUnaryMultiCallable),
        (grpc_lite.StreamStreamMultiCallable, grpc.aio.StreamStreamMultiCallable),
    ]
    for ours, theirs in pairs:
        mine = inspect.signature(ours.__call__).parameters
        their = inspect.signature(theirs.__call__).parameters
        assert [(n, p.kind) for n, p in mine.items()] == [(n, p.kind) for n, p in their.items()], (
            ours
        )


async def test_secondary_user_agent_and_compression_option_reach_the_server(
    greeter_server: object,
) -> None:
    """grpc.secondary_user_agent goes last in user-agent (C-core's order), and
    grpc.default_compression_algorithm (what grpcio's compression= becomes) compresses."""
    from tests.protos.helloworld import helloworld_pb2
    from tests.servers.harness import RunningServer

    assert isinstance(greeter_server, RunningServer)
    options = [
        ("grpc.primary_user_agent", "first/1"),
        ("grpc.secondary_user_agent", "last/2"),
        ("grpc.default_compression_algorithm", 2),
    ]
    async with grpc_lite.insecure_channel(greeter_server.address, options) as ch:
        assert ch.default_compression is grpc_lite.Compression.Gzip
        say = ch.unary_unary(
            "/helloworld.Greeter/SayHello",
            request_serializer=helloworld_pb2.HelloRequest.SerializeToString,
            response_deserializer=helloworld_pb2.HelloReply.FromString,
        )
        await say(helloworld_pb2.HelloRequest(name="ua"), timeout=5)
    agent = greeter_server.recorder.calls[0].get("user-agent")
    assert isinstance(agent, str)
    assert agent.startswith("first/1 grpc-python-lite/") and agent.endswith(" last/2")

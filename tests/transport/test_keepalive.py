"""Client keepalive (A8; CONFORMANCE 156-159): the pure policy and the channel options.

The transport against real (scripted) servers: tests/e2e/transport/test_keepalive_pings.py.
"""

import pytest

import grpc_lite
from grpc_lite._transport._keepalive import (
    MIN_KEEPALIVE_TIME,
    Action,
    Keepalive,
    KeepaliveParams,
)


def _params(time: float, timeout: float = 5.0, permit: bool = False) -> KeepaliveParams:
    params = KeepaliveParams(time=MIN_KEEPALIVE_TIME, timeout=timeout, permit_without_calls=permit)
    params.time = time  # below the A8 floor, for fast tests only
    return params


def test_minimum_keepalive_time_is_enforced() -> None:
    """156: a keepalive time below 10 s is raised to 10 s."""
    assert KeepaliveParams(time=1.0).time == 10.0
    assert KeepaliveParams(time=30.0).time == 30.0


def test_too_many_pings_doubles_the_time() -> None:
    """159: GOAWAY too_many_pings doubles KEEPALIVE_TIME for later connections."""
    params = KeepaliveParams(time=10.0)
    params.too_many_pings()
    assert params.time == 20.0


def test_ping_after_time_without_reads_measured_from_last_read() -> None:
    """157: a PING goes out once nothing was read for `time`, measured from the last read."""
    ka = Keepalive(_params(10.0), now=0.0)
    assert ka.tick(5.0, active_streams=1) == (Action.NONE, 10.0)
    ka.on_read(8.0)
    assert ka.tick(10.0, active_streams=1) == (Action.NONE, 18.0)
    action, next_at = ka.tick(18.0, active_streams=1)
    assert action is Action.PING and next_at == 23.0


def test_no_ping_without_streams_unless_permitted() -> None:
    """157: no PING with no open stream, unless permit_without_calls."""
    ka = Keepalive(_params(10.0), now=0.0)
    assert ka.tick(10.0, active_streams=0)[0] is Action.NONE
    ka2 = Keepalive(_params(10.0, permit=True), now=0.0)
    assert ka2.tick(10.0, active_streams=0)[0] is Action.PING


def test_any_read_answers_the_ping_and_silence_closes() -> None:
    """158: any read after the PING answers it; nothing read within timeout closes."""
    ka = Keepalive(_params(10.0, timeout=5.0), now=0.0)
    assert ka.tick(10.0, 1)[0] is Action.PING
    ka.on_read(12.0)
    assert ka.tick(15.0, 1) == (Action.NONE, 22.0)
    assert ka.tick(22.0, 1)[0] is Action.PING
    assert ka.tick(26.9, 1)[0] is Action.NONE
    assert ka.tick(27.0, 1)[0] is Action.CLOSE


def test_channel_keepalive_options_validated() -> None:
    """Options: grpc.keepalive_time_ms and friends are validated (wrong type -> ValueError)."""
    with pytest.raises(ValueError, match="keepalive_time_ms"):
        grpc_lite.insecure_channel("localhost:1", options=[("grpc.keepalive_time_ms", "x")])
    ch = grpc_lite.insecure_channel(
        "localhost:1",
        options=[("grpc.keepalive_time_ms", 1000), ("grpc.keepalive_timeout_ms", 500)],
    )
    assert ch._keepalive is not None
    assert ch._keepalive.time == MIN_KEEPALIVE_TIME  # 1 s raised to the A8 floor
    assert ch._keepalive.timeout == 0.5

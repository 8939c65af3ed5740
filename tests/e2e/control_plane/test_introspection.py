"""Introspection (API.md "Introspection", issue 3 "Channel connectivity"; the state traces
of CONFORMANCE 69, 75 and 80): snapshot()
counters per channel and per subchannel, to_dict() as JSON, trace events for channel and
subchannel transitions, trace listeners, and the DEBUG transition lines on logger
"grpc_lite"."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import pytest

import grpc_lite
from tests.e2e.control_plane._util import (
    ROUND_ROBIN,
    SC,
    S,
    eventually,
    hello_counts,
    ipv4_target,
    options,
    ready_addresses,
)
from tests.servers.harness import RunningServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]


async def _unimplemented(ch: grpc_lite.Channel) -> None:
    """One RPC to a method the Greeter does not have: it fails UNIMPLEMENTED."""
    call = ch.unary_unary("/helloworld.Greeter/NoSuchMethod")
    with pytest.raises(grpc_lite.RpcError) as info:
        await call(b"", timeout=5)
    assert info.value.code() is SC.UNIMPLEMENTED


async def test_snapshot_counts_calls_and_serialises(
    greeter_backends: list[RunningServer],
) -> None:
    """CONFORMANCE 80, 90, 92 (the state view) and API.md snapshot(): round_robin over
    three backends, 9 successful calls and 1 failed call. The channel counters are
    10/9/1, the subchannel counters add up to the same, every subchannel is READY with no
    error, addresses are "host:port", and to_dict() goes through json.dumps with states as
    names. After close() snapshot() still works and shows SHUTDOWN."""
    addresses = [b.address for b in greeter_backends]
    ch = grpc_lite.insecure_channel(
        ipv4_target(addresses), options=options(), service_config=ROUND_ROBIN
    )
    async with ch:
        ch.get_state(try_to_connect=True)
        await eventually(lambda: ready_addresses(ch) == sorted(addresses), "three READY")
        counts = await hello_counts(ch, 9)
        assert sum(counts.values()) == 9
        await _unimplemented(ch)
        await eventually(lambda: ch.snapshot().calls_started == 10, "10 calls counted")
        snap = ch.snapshot()
        assert snap.target == ipv4_target(addresses)
        assert snap.state is S.READY
        assert snap.lb_policy == "round_robin"
        assert sorted(snap.addresses) == sorted(addresses)
        assert snap.resolver_error is None
        assert (snap.calls_started, snap.calls_succeeded, snap.calls_failed) == (10, 9, 1)
        subs = snap.subchannels
        assert sorted(s.address for s in subs) == sorted(addresses)
        assert sum(s.calls_started for s in subs) == 10
        assert sum(s.calls_succeeded for s in subs) == 9
        assert sum(s.calls_failed for s in subs) == 1
        for sub in subs:
            assert sub.state is S.READY
            assert sub.connect_attempts >= 1
            assert sub.health is None  # no healthCheckConfig
            assert sub.calls_started == sub.calls_succeeded + sub.calls_failed
        by_address = {s.address: s for s in subs}
        for address, n in counts.items():
            assert by_address[address].calls_succeeded == n

        as_dict = snap.to_dict()
        text = json.dumps(as_dict)
        back = json.loads(text)
        assert back["state"] == "READY"
        assert back["lb_policy"] == "round_robin"
        assert back["calls_started"] == 10
        assert sorted(s["address"] for s in back["subchannels"]) == sorted(addresses)
        assert {s["state"] for s in back["subchannels"]} == {"READY"}
        assert all({"timestamp", "subject", "description"} <= set(e) for e in back["events"])

    closed = ch.snapshot()
    assert closed.state is S.SHUTDOWN
    assert all(s.state is S.SHUTDOWN for s in closed.subchannels)
    json.dumps(closed.to_dict())


async def test_trace_events_and_listener(greeter_server: RunningServer) -> None:
    """CONFORMANCE 69 (subscribers are told about every transition), 75 and 80 (a state
    trace of the subchannel), API.md TraceEvent / add_trace_listener. A listener added
    before the first RPC receives the channel's IDLE -> CONNECTING -> READY and the
    subchannel's CONNECTING -> READY events; snapshot().events holds the same, oldest
    first, with time.time() timestamps. After the remover is called the listener gets
    nothing more."""
    received: list[Any] = []
    started = time.time()
    ch = grpc_lite.insecure_channel(greeter_server.address, options=options())
    remove = ch.add_trace_listener(received.append)
    async with ch:
        await hello_counts(ch, 2)
        events = ch.snapshot().events
        sub_subject = f"subchannel {greeter_server.address}"

        def has(subject: str, *words: str) -> bool:
            return any(
                e.subject == subject and all(w in e.description for w in words) for e in events
            )

        assert has("channel", "IDLE", "CONNECTING"), events
        assert has("channel", "CONNECTING", "READY"), events
        assert has(sub_subject, "CONNECTING", "READY"), events
        stamps = [e.timestamp for e in events]
        assert stamps == sorted(stamps)
        assert started - 1 <= stamps[0] <= time.time() + 1
        # The listener saw (at least) those events, as TraceEvent objects.
        listened = [(e.subject, e.description) for e in received]
        for e in events:
            if e.timestamp >= started and e.subject in ("channel", sub_subject):
                assert (e.subject, e.description) in listened
        remove()
        count = len(received)
    # close() makes more transitions (to SHUTDOWN); the removed listener hears none.
    assert len(received) == count
    assert any("SHUTDOWN" in e.description for e in ch.snapshot().events)


async def test_transitions_are_logged(
    greeter_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """CONFORMANCE 68, 75 (instrumented transitions) and API.md logging: every transition is
    a DEBUG line on logger "grpc_lite" naming the
    subject and both states: "subchannel 127.0.0.1:P: CONNECTING -> READY" and
    "channel: IDLE -> CONNECTING"."""
    caplog.set_level(logging.DEBUG, logger="grpc_lite")
    async with grpc_lite.insecure_channel(greeter_server.address, options=options()) as ch:
        await hello_counts(ch, 1)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("grpc_lite") and r.levelno == logging.DEBUG
    ]
    sub = re.escape(f"subchannel {greeter_server.address}: CONNECTING -> READY")
    assert any(re.search(sub, line) for line in lines), lines
    assert any(re.search(r"\bchannel: IDLE -> CONNECTING", line) for line in lines), lines
    assert any(re.search(r"\bchannel: CONNECTING -> READY", line) for line in lines), lines

"""The snapshot values (grpc_lite/_snapshot.py): to_dict is JSON whatever a plugin's
debug_info() holds."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from grpc_lite._connectivity import ConnectivityState
from grpc_lite._snapshot import ChannelSnapshot, SubchannelSnapshot, TraceEvent
from grpc_lite.status import StatusCode


@dataclass(frozen=True)
class _Locality:
    region: str
    zone: str


class _Opaque:
    def __str__(self) -> str:
        return "opaque!"


class _Priority(enum.IntEnum):
    HIGH = 0


def _snapshot(**extra: object) -> ChannelSnapshot:
    sub = SubchannelSnapshot(
        address="a:1",
        state=ConnectivityState.READY,
        health=None,
        connect_attempts=1,
        current_backoff=None,
        next_attempt_at=None,
        last_error=None,
        calls_started=0,
        calls_succeeded=0,
        calls_failed=0,
        attributes={"xds.cluster": "c1"},
    )
    return ChannelSnapshot(
        target="xds:///svc",
        state=ConnectivityState.READY,
        lb_policy="xds_cluster_manager_experimental",
        addresses=["a:1"],
        service_config=None,
        resolver_error=None,
        subchannels=[sub],
        calls_started=0,
        calls_succeeded=0,
        calls_failed=0,
        events=[TraceEvent(timestamp=1.0, subject="channel", description="IDLE -> READY")],
        **extra,  # type: ignore[arg-type]
    )


def test_the_hooks_default_to_none() -> None:
    snap = _snapshot()
    assert (snap.resolver, snap.balancer) == (None, None)
    assert snap.to_dict()["resolver"] is None


def test_to_dict_makes_any_debug_info_json() -> None:
    snap = _snapshot(
        resolver={
            "resources": [("LDS", "svc")],
            "locality": _Locality("r", "z"),
            "status": StatusCode.UNAVAILABLE,
            "priority": _Priority.HIGH,
            "names": frozenset({"x"}),
            ("tuple", "key"): _Opaque(),
        },
        balancer={"children": {"p0": {"state": ConnectivityState.CONNECTING}}},
    )
    result = json.loads(json.dumps(snap.to_dict()))
    assert result["resolver"] == {
        "resources": [["LDS", "svc"]],
        "locality": {"region": "r", "zone": "z"},
        "status": "UNAVAILABLE",
        "priority": "HIGH",
        "names": ["x"],
        "('tuple', 'key')": "opaque!",
    }
    assert result["balancer"] == {"children": {"p0": {"state": "CONNECTING"}}}
    assert result["state"] == "READY"
    assert result["subchannels"][0]["attributes"] == {"xds.cluster": "c1"}
    assert result["subchannels"][0]["state"] == "READY"
    assert result["events"] == [
        {"timestamp": 1.0, "subject": "channel", "description": "IDLE -> READY"}
    ]

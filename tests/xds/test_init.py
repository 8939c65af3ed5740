"""`xds:///` is a built-in scheme (issue 17): it works with no extra import, and a process
that never builds an xds resolver never loads the xDS client, protos or resolver."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import grpc_lite
from grpc_lite import resolver
from grpc_lite.xds import XdsResolverBuilder


def test_xds_scheme_is_registered() -> None:
    assert isinstance(resolver.get("xds"), XdsResolverBuilder)


def test_target_parsing_and_authority() -> None:
    target = resolver.parse_target("xds:///svc.example.com:8080")
    assert (target.scheme, target.authority, target.endpoint) == ("xds", "", "svc.example.com:8080")
    assert resolver.default_authority(target) == "svc.example.com:8080"
    assert resolver.default_authority(resolver.parse_target("xds:///:8080")) == ":8080"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("xds://authority.example/svc", "gRFC A47"),
        ("xds:///", "empty name"),
    ],
)
def test_bad_targets_fail_at_channel_creation(target: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        grpc_lite.insecure_channel(target)


_CHILD = """
import json, sys
import grpc_lite
from grpc_lite import resolver
before = sorted(m for m in sys.modules if m.startswith("grpc_lite.xds"))
plain = grpc_lite.insecure_channel("localhost:50051")
xds = grpc_lite.insecure_channel("xds:///svc")  # IDLE: its resolver is not built yet
print(json.dumps({
    "builder": type(resolver.get(resolver.parse_target("xds:///svc").scheme)).__name__,
    "before": before,
    "after": sorted(m for m in sys.modules if m.startswith("grpc_lite.xds")),
}))
"""


def test_no_xds_code_loads_until_an_xds_resolver_is_built() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(out.stdout)
    assert result["builder"] == "XdsResolverBuilder"
    assert result["before"] == ["grpc_lite.xds"]
    assert result["after"] == ["grpc_lite.xds"]

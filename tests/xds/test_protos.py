"""grpc_lite.xds._protos: the committed descriptor set and the private pool built from it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError

from grpc_lite.xds import _protos

REPO = Path(__file__).resolve().parents[2]
BINPB = REPO / "grpc_lite" / "xds" / "protos.binpb"

#: Every message the decoders, the XdsClient (ADS) and later issues (LRS, the policies,
#: aggregate clusters) use.
NEEDED_MESSAGES = (
    "google.protobuf.Any",
    "google.rpc.Status",
    "envoy.service.discovery.v3.DiscoveryRequest",
    "envoy.service.discovery.v3.DiscoveryResponse",
    "envoy.service.discovery.v3.Resource",
    "envoy.config.listener.v3.Listener",
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "envoy.extensions.filters.http.router.v3.Router",
    "envoy.config.route.v3.RouteConfiguration",
    "envoy.config.cluster.v3.Cluster",
    "envoy.config.endpoint.v3.ClusterLoadAssignment",
    "envoy.service.load_stats.v3.LoadStatsRequest",
    "envoy.service.load_stats.v3.LoadStatsResponse",
    "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin",
    "envoy.extensions.load_balancing_policies.pick_first.v3.PickFirst",
    "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash",
    "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality",
    "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest",
    (
        "envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3."
        "ClientSideWeightedRoundRobin"
    ),
    "envoy.extensions.clusters.aggregate.v3.ClusterConfig",
    "xds.type.v3.TypedStruct",
    "udpa.type.v1.TypedStruct",
)

NEEDED_SERVICES = (
    "envoy.service.discovery.v3.AggregatedDiscoveryService",
    "envoy.service.load_stats.v3.LoadReportingService",
)


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(BINPB.read_bytes())


def test_the_set_holds_every_file_once_after_its_imports() -> None:
    names = [f.name for f in _descriptor_set().file]
    assert len(names) == len(set(names))
    position = {name: i for i, name in enumerate(names)}
    for f in _descriptor_set().file:
        for dep in f.dependency:
            assert dep in position, f"{f.name} imports {dep}, which the set lacks"
            assert position[dep] < position[f.name], f"{dep} comes after {f.name}"
        assert not f.HasField("source_code_info")


@pytest.mark.parametrize("full_name", NEEDED_MESSAGES)
def test_every_message_the_client_needs_is_in_the_pool(full_name: str) -> None:
    cls = _protos.message_class(full_name)
    assert cls.DESCRIPTOR.full_name == full_name


@pytest.mark.parametrize("full_name", NEEDED_SERVICES)
def test_the_services_are_in_the_pool(full_name: str) -> None:
    assert _protos.pool().FindServiceByName(full_name).full_name == full_name


def test_nothing_goes_into_the_default_pool() -> None:
    _protos.pool()
    _protos.message_class("envoy.config.listener.v3.Listener")
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindFileByName("envoy/config/core/v3/base.proto")
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindMessageTypeByName("envoy.config.listener.v3.Listener")


def test_the_pool_is_built_at_first_use_not_at_import() -> None:
    code = (
        "import grpc_lite.xds._protos as p, grpc_lite.xds._resources as r\n"
        "assert p._pool is None\n"
        "p.message_class('envoy.config.cluster.v3.Cluster')\n"
        "assert p._pool is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


def test_message_classes_are_cached_and_unknown_names_say_so() -> None:
    name = "envoy.config.cluster.v3.Cluster"
    assert _protos.message_class(name) is _protos.message_class(name)
    with pytest.raises(KeyError, match=r"envoy\.config\.Nope.*protos\.binpb"):
        _protos.message_class("envoy.config.Nope")


def test_unpack_any_uses_the_private_pool() -> None:
    cluster = _protos.message_class("envoy.config.cluster.v3.Cluster")(name="c1")
    packed = _protos.message_class("google.protobuf.Any")()
    packed.Pack(cluster)
    assert packed.type_url == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    unpacked = _protos.unpack_any(packed)
    assert unpacked == cluster
    packed.type_url = "type.googleapis.com/envoy.config.NoSuchThing"
    with pytest.raises(KeyError, match="NoSuchThing"):
        _protos.unpack_any(packed)
    packed.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    packed.value = b"\xff\xff\xff"
    with pytest.raises(DecodeError):
        _protos.unpack_any(packed)
    packed.type_url = "type.googleapis.com/"
    with pytest.raises(DecodeError, match="no type name"):
        _protos.unpack_any(packed)


def test_the_pool_builds_quickly() -> None:
    """The whole set into a fresh pool: a few ms (upb); the bound leaves room for a busy CI."""
    start = time.perf_counter()
    pool = _protos._build()
    elapsed = time.perf_counter() - start
    assert pool.FindMessageTypeByName("envoy.config.listener.v3.Listener")
    assert elapsed < 1.0, f"building the pool took {elapsed * 1e3:.1f} ms"


def test_the_set_is_package_data_with_its_notice() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["grpc_lite"]
    assert "xds/protos.binpb" in data
    assert "xds/NOTICE" in data
    notice = (REPO / "grpc_lite" / "xds" / "NOTICE").read_text()
    for source in ("envoyproxy/data-plane-api", "cncf/xds", "googleapis", "protoc-gen-validate"):
        assert source in notice


def test_the_rebuild_script_pins_the_version_the_notice_names() -> None:
    script = (REPO / "scripts" / "xds-protos").read_text()
    version = re.search(r'^XDS_PROTOS_VERSION = "([0-9.]+)"$', script, re.M)
    assert version is not None
    assert re.search(r'^XDS_PROTOS_SHA256 = "[0-9a-f]{64}"$', script, re.M)
    notice = (REPO / "grpc_lite" / "xds" / "NOTICE").read_text()
    assert f"xds-protos {version.group(1)}" in notice
    # Every root module of the script has its file in the set.
    files = {f.name for f in _descriptor_set().file}
    for module in re.findall(r'"((?:envoy|xds|udpa|google)\.[a-z0-9_.]+)_pb2"', script):
        assert module.replace(".", "/") + ".proto" in files, module

"""grpc_lite.xds._bootstrap: sources, fields, and one clear error per problem (gRFC A27,
grpc/grpc doc/grpc_xds_bootstrap_format.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grpc_lite.xds._bootstrap import (
    Bootstrap,
    BootstrapError,
    Node,
    load_bootstrap,
    parse_bootstrap,
)
from grpc_lite.xds._model import LocalityId
from tests.servers.harness import TLSMaterial

GOOD: dict[str, Any] = {
    "xds_servers": [
        {
            "server_uri": "127.0.0.1:18000",
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }
    ],
    "node": {
        "id": "n1",
        "cluster": "c1",
        "locality": {"region": "r", "zone": "z", "sub_zone": "s"},
        "metadata": {"k": "v", "n": 1},
        "user_agent_name": "ignored",
    },
    "unknown_top_level_field": True,
}


def with_server(**fields: Any) -> dict[str, Any]:
    server = {**GOOD["xds_servers"][0], **fields}
    return {**GOOD, "xds_servers": [server]}


def test_good_bootstrap_fields() -> None:
    b = parse_bootstrap(json.dumps(GOOD), "test")
    assert b.server_uri == "127.0.0.1:18000"
    assert b.channel_creds == "insecure"
    assert b.tls is None
    assert b.server_features == ("xds_v3",)
    assert not b.ignore_resource_deletion
    assert b.node == Node(
        id="n1",
        cluster="c1",
        locality=LocalityId("r", "z", "s"),
        metadata={"k": "v", "n": 1},
    )
    assert b.client_default_listener_resource_name_template == "%s"
    assert b.listener_resource_name("svc") == "svc"
    assert b.source == "test"


def test_minimal_bootstrap_defaults() -> None:
    text = '{"xds_servers": [{"server_uri": "x:1", "channel_creds": [{"type": "insecure"}]}]}'
    b = parse_bootstrap(text)
    assert b.node == Node()
    assert b.server_features == ()


def test_first_supported_creds_win_and_later_servers_are_unused() -> None:
    doc = with_server(
        channel_creds=[{"type": "google_default"}, {"type": "tls"}, {"type": "insecure"}]
    )
    doc["xds_servers"].append({"server_uri": "other:1"})  # A71 fallback: not read
    b = parse_bootstrap(json.dumps(doc))
    assert b.channel_creds == "tls"
    assert b.tls is not None and b.tls.root_certificates is None  # system roots


def test_tls_with_files(tmp_path: Path, tls_material: TLSMaterial) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(tls_material.ca_pem)
    cert = tmp_path / "cert.pem"
    cert.write_bytes(tls_material.client_cert_chain_pem)
    key = tmp_path / "key.pem"
    key.write_bytes(tls_material.client_key_pem)
    config = {
        "ca_certificate_file": str(ca),
        "certificate_file": str(cert),
        "private_key_file": str(key),
    }
    b = parse_bootstrap(json.dumps(with_server(channel_creds=[{"type": "tls", "config": config}])))
    assert b.tls is not None
    assert b.tls.root_certificates == tls_material.ca_pem
    assert b.tls.certificate_chain == tls_material.client_cert_chain_pem
    assert b.tls.private_key == tls_material.client_key_pem


def test_ignore_resource_deletion_feature_and_odd_entries() -> None:
    b = parse_bootstrap(json.dumps(with_server(server_features=[1, "ignore_resource_deletion"])))
    assert b.ignore_resource_deletion
    assert b.server_features == ("ignore_resource_deletion",)


def test_listener_template() -> None:
    doc = {**GOOD, "client_default_listener_resource_name_template": "prefix/%s/x"}
    assert parse_bootstrap(json.dumps(doc)).listener_resource_name("svc") == "prefix/svc/x"


def test_equal_bootstraps_hash_alike_whatever_the_source() -> None:
    a = parse_bootstrap(json.dumps(GOOD), "a")
    b = parse_bootstrap(json.dumps(GOOD), "b")
    assert a == b and hash(a) == hash(b)
    c = parse_bootstrap(json.dumps({**GOOD, "node": {"id": "other"}}), "a")
    assert a != c


# --- one clear error per problem ---------------------------------------------------------

BAD: list[tuple[str, Any, str]] = [
    ("not an object", [], "S: must be an object, got an array"),
    ("no servers", {"node": {}}, "S: xds_servers: missing"),
    ("servers not a list", {"xds_servers": {}}, "S: xds_servers: must be an array, got an object"),
    ("empty servers", {"xds_servers": []}, "S: xds_servers: empty: at least one xDS server"),
    ("server not an object", {"xds_servers": ["x"]}, "S: xds_servers[0]: must be an object"),
    (
        "no server_uri",
        {"xds_servers": [{"channel_creds": [{"type": "insecure"}]}]},
        "S: xds_servers[0].server_uri: missing",
    ),
    ("server_uri number", with_server(server_uri=5), "S: xds_servers[0].server_uri: must be a str"),
    ("empty server_uri", with_server(server_uri=""), "S: xds_servers[0].server_uri: empty"),
    (
        "no creds",
        {"xds_servers": [{"server_uri": "x:1"}]},
        "S: xds_servers[0].channel_creds: missing",
    ),
    ("empty creds", with_server(channel_creds=[]), "S: xds_servers[0].channel_creds: empty"),
    (
        "unsupported creds",
        with_server(channel_creds=[{"type": "google_default"}, {"type": "mtls_magic"}]),
        "S: xds_servers[0].channel_creds: no supported type: got ['google_default', "
        "'mtls_magic'], grpc_lite supports ['insecure', 'tls']",
    ),
    (
        "creds without type",
        with_server(channel_creds=[{"config": {}}]),
        "S: xds_servers[0].channel_creds[0].type: missing",
    ),
    (
        "tls refresh",
        with_server(channel_creds=[{"type": "tls", "config": {"refresh_interval": "600s"}}]),
        "S: xds_servers[0].channel_creds[0].config.refresh_interval: certificate reloading",
    ),
    (
        "tls missing file",
        with_server(
            channel_creds=[{"type": "tls", "config": {"ca_certificate_file": "/nonexistent/ca"}}]
        ),
        "S: xds_servers[0].channel_creds[0].config.ca_certificate_file: cannot read "
        "/nonexistent/ca: No such file or directory",
    ),
    (
        "tls half a key pair",
        with_server(channel_creds=[{"type": "tls", "config": {"certificate_file": "/etc/hosts"}}]),
        "S: xds_servers[0].channel_creds[0].config: certificate_file and private_key_file",
    ),
    (
        "features not a list",
        with_server(server_features="xds_v3"),
        "S: xds_servers[0].server_features: must be an array, got a string",
    ),
    ("node not an object", {**GOOD, "node": "n"}, "S: node: must be an object, got a string"),
    ("node id number", {**GOOD, "node": {"id": 1}}, "S: node.id: must be a string, got a number"),
    (
        "locality field",
        {**GOOD, "node": {"locality": {"zone": None}}},
        "S: node.locality.zone: must be a string, got null",
    ),
    (
        "metadata array",
        {**GOOD, "node": {"metadata": []}},
        "S: node.metadata: must be an object, got an array",
    ),
    (
        "xdstp template",
        {**GOOD, "client_default_listener_resource_name_template": "xdstp://a/b/%s"},
        "S: client_default_listener_resource_name_template: 'xdstp://a/b/%s': xdstp: names "
        "need xDS federation (gRFC A47)",
    ),
]


@pytest.mark.parametrize(
    ("doc", "message"), [(d, m) for _, d, m in BAD], ids=[i for i, _, _ in BAD]
)
def test_bad_bootstrap(doc: Any, message: str) -> None:
    with pytest.raises(BootstrapError) as info:
        parse_bootstrap(json.dumps(doc), "S")
    assert str(info.value).startswith(message), str(info.value)


def test_bad_json_names_line_and_column() -> None:
    with pytest.raises(BootstrapError, match=r"^S: invalid JSON at line 2 column 3: "):
        parse_bootstrap('{"xds_servers": [\n  ,]}', "S")


# --- sources -----------------------------------------------------------------------------


def test_no_bootstrap_at_all() -> None:
    with pytest.raises(BootstrapError) as info:
        load_bootstrap({}, environ={})
    msg = str(info.value)
    assert "GRPC_XDS_BOOTSTRAP" in msg and "GRPC_XDS_BOOTSTRAP_CONFIG" in msg
    assert "grpc_lite.xds_bootstrap_config" in msg


def test_empty_variables_count_as_unset() -> None:
    with pytest.raises(BootstrapError, match="no xDS bootstrap"):
        load_bootstrap({}, environ={"GRPC_XDS_BOOTSTRAP": "", "GRPC_XDS_BOOTSTRAP_CONFIG": ""})


def test_precedence_option_then_file_then_config(tmp_path: Path) -> None:
    def doc(uri: str) -> str:
        return json.dumps(with_server(server_uri=uri))

    path = tmp_path / "b.json"
    path.write_text(doc("file:1"))
    env = {"GRPC_XDS_BOOTSTRAP": str(path), "GRPC_XDS_BOOTSTRAP_CONFIG": doc("env:1")}
    option = {"grpc_lite.xds_bootstrap_config": doc("option:1")}
    b = load_bootstrap(option, environ=env)
    assert (b.server_uri, b.source) == ("option:1", "channel option grpc_lite.xds_bootstrap_config")
    b = load_bootstrap({}, environ=env)
    assert (b.server_uri, b.source) == ("file:1", f"GRPC_XDS_BOOTSTRAP={path}")
    b = load_bootstrap({}, environ={"GRPC_XDS_BOOTSTRAP_CONFIG": doc("env:1")})
    assert (b.server_uri, b.source) == ("env:1", "GRPC_XDS_BOOTSTRAP_CONFIG")


def test_errors_name_their_source(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(BootstrapError) as info:
        load_bootstrap({}, environ={"GRPC_XDS_BOOTSTRAP": str(missing)})
    assert str(info.value) == (
        f"GRPC_XDS_BOOTSTRAP={missing}: cannot read the file: No such file or directory"
    )
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"xds_servers": [{"channel_creds": [{"type": "insecure"}]}]}))
    with pytest.raises(BootstrapError) as info:
        load_bootstrap({}, environ={"GRPC_XDS_BOOTSTRAP": str(path)})
    assert str(info.value) == f"GRPC_XDS_BOOTSTRAP={path}: xds_servers[0].server_uri: missing"
    with pytest.raises(BootstrapError) as info:
        load_bootstrap({}, environ={"GRPC_XDS_BOOTSTRAP_CONFIG": "{"})
    assert str(info.value).startswith("GRPC_XDS_BOOTSTRAP_CONFIG: invalid JSON at line 1")
    with pytest.raises(BootstrapError) as info:
        load_bootstrap({"grpc_lite.xds_bootstrap_config": {"xds_servers": []}}, environ={})
    assert str(info.value) == (
        "channel option grpc_lite.xds_bootstrap_config: must be JSON text (a str), got dict"
    )


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(BootstrapError, match=r"cannot read the file: Is a directory"):
        load_bootstrap({}, environ={"GRPC_XDS_BOOTSTRAP": str(tmp_path)})


def test_bootstrap_is_frozen() -> None:
    b = parse_bootstrap(json.dumps(GOOD))
    assert isinstance(b, Bootstrap)
    with pytest.raises(AttributeError):
        b.server_uri = "x"  # type: ignore[misc]

"""The xDS bootstrap: which management server to ask, with which credentials, as which node.

Format: gRFC A27 (https://github.com/grpc/proposal/blob/master/A27-xds-global-load-balancing.md,
"XdsClient and Bootstrap File") and grpc/grpc doc/grpc_xds_bootstrap_format.md. Where the JSON
comes from, first match wins:

1. the channel option ``grpc_lite.xds_bootstrap_config`` (JSON text; grpc_lite only),
2. ``GRPC_XDS_BOOTSTRAP``: the path of a file holding the JSON,
3. ``GRPC_XDS_BOOTSTRAP_CONFIG``: the JSON itself.

(grpc's doc: "If both are specified, the former takes precedence"; an empty variable counts
as unset, as in grpc-go's internal/xds/bootstrap.)

What is read:

- ``xds_servers``: the first entry only (A71 fallback to the others is a later feature):
  ``server_uri`` (a grpc_lite target), ``channel_creds`` (the first type grpc_lite supports:
  ``insecure``, or ``tls`` with gRFC A65's ``ca_certificate_file`` / ``certificate_file`` /
  ``private_key_file``; without a CA file the system roots are used), ``server_features``
  (``ignore_resource_deletion``: gRFC A53; ``xds_v3`` and unknown entries are kept but change
  nothing, as the doc says).
- ``node``: ``id``, ``cluster``, ``locality`` {``region``, ``zone``, ``sub_zone``},
  ``metadata`` (any JSON object). A27: ``user_agent_name``, ``user_agent_version``,
  ``client_features`` and ``build_version`` are the client's to fill; given here they are
  ignored, as are unknown fields anywhere (A27's forward-compatibility rule).
- ``client_default_listener_resource_name_template`` (A47; default ``"%s"``). ``xdstp:``
  templates need A47 federation, which grpc_lite does not implement: they are an error, not
  silently treated as plain names.

Every problem is one `BootstrapError` naming the source (variable, file, option), the field
path and what is wrong, e.g. ``GRPC_XDS_BOOTSTRAP=/etc/xds.json: xds_servers[0].server_uri:
missing``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._credentials import ssl_channel_credentials
from ._model import LocalityId

__all__ = [
    "BOOTSTRAP_CONFIG_ENV",
    "BOOTSTRAP_ENV",
    "BOOTSTRAP_OPTION",
    "Bootstrap",
    "BootstrapError",
    "Node",
    "TlsConfig",
    "load_bootstrap",
    "parse_bootstrap",
]

BOOTSTRAP_OPTION = "grpc_lite.xds_bootstrap_config"
BOOTSTRAP_ENV = "GRPC_XDS_BOOTSTRAP"
BOOTSTRAP_CONFIG_ENV = "GRPC_XDS_BOOTSTRAP_CONFIG"

#: Channel credential types grpc_lite can build, in no particular order (the bootstrap's
#: order decides).
SUPPORTED_CHANNEL_CREDS = ("insecure", "tls")

#: The server feature of gRFC A53.
IGNORE_RESOURCE_DELETION = "ignore_resource_deletion"


class BootstrapError(ValueError):
    """The bootstrap is missing, unreadable or invalid; the message says where and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """The envoy.config.core.v3.Node fields the bootstrap gives (A27)."""

    id: str = ""
    cluster: str = ""
    locality: LocalityId = field(default_factory=LocalityId)
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """A JSON object (becomes a google.protobuf.Struct). Left out of the hash only: two
    nodes with different metadata are still unequal."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """The ``tls`` channel credentials' config (gRFC A65), files already read.

    None of the files: TLS with the system's root certificates. ``certificate_file`` and
    ``private_key_file`` come together (mutual TLS)."""

    ca_certificate_file: str | None = None
    certificate_file: str | None = None
    private_key_file: str | None = None
    root_certificates: bytes | None = field(default=None, repr=False)
    certificate_chain: bytes | None = field(default=None, repr=False)
    private_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bootstrap:
    """A validated bootstrap. Hashable: equal bootstraps share one XdsClient (one ADS stream).

    `source` says where it was read from (for errors and the debug view); it does not take
    part in equality, so the same JSON from two places is the same bootstrap.
    """

    server_uri: str
    channel_creds: str
    """"insecure" or "tls"."""
    tls: TlsConfig | None = None
    """Set when `channel_creds` is "tls"."""
    server_features: tuple[str, ...] = ()
    node: Node = field(default_factory=Node)
    client_default_listener_resource_name_template: str = "%s"
    source: str = field(default="", compare=False)

    @property
    def ignore_resource_deletion(self) -> bool:
        """gRFC A53: keep LDS/CDS resources a SotW response leaves out."""
        return IGNORE_RESOURCE_DELETION in self.server_features

    def listener_resource_name(self, authority_path: str) -> str:
        """The LDS resource name for an ``xds:///<authority_path>`` target (A47 template)."""
        return self.client_default_listener_resource_name_template.replace("%s", authority_path)


def load_bootstrap(
    channel_options: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Bootstrap:
    """The bootstrap for a channel: its option, else ``GRPC_XDS_BOOTSTRAP`` (a file), else
    ``GRPC_XDS_BOOTSTRAP_CONFIG`` (JSON). Raises `BootstrapError` (one message: source,
    field, problem) when there is none or it is invalid."""
    env = os.environ if environ is None else environ
    option = channel_options.get(BOOTSTRAP_OPTION)
    if option is not None:
        source = f"channel option {BOOTSTRAP_OPTION}"
        if not isinstance(option, str):
            raise BootstrapError(
                f"{source}: must be JSON text (a str), got {type(option).__name__}"
            )
        return parse_bootstrap(option, source)
    path = env.get(BOOTSTRAP_ENV, "")
    if path:
        source = f"{BOOTSTRAP_ENV}={path}"
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise BootstrapError(f"{source}: cannot read the file: {reason}") from None
        except UnicodeDecodeError as exc:
            raise BootstrapError(f"{source}: the file is not UTF-8: {exc.reason}") from None
        return parse_bootstrap(text, source)
    text = env.get(BOOTSTRAP_CONFIG_ENV, "")
    if text:
        return parse_bootstrap(text, BOOTSTRAP_CONFIG_ENV)
    raise BootstrapError(
        "no xDS bootstrap: set GRPC_XDS_BOOTSTRAP to the path of a bootstrap file, "
        "GRPC_XDS_BOOTSTRAP_CONFIG to its JSON, or the channel option "
        f"{BOOTSTRAP_OPTION} (grpc/grpc doc/grpc_xds_bootstrap_format.md)"
    )


def parse_bootstrap(text: str, source: str = "bootstrap") -> Bootstrap:
    """Validate bootstrap JSON `text`; `source` prefixes every error message."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BootstrapError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    return _Parser(source).bootstrap(doc)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Parser:
    def __init__(self, source: str) -> None:
        self._source = source

    def error(self, path: str, problem: str) -> BootstrapError:
        where = f"{self._source}: {path}: " if path else f"{self._source}: "
        return BootstrapError(where + problem)

    def obj(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"must be an object, got {_kind(value)}")
        return value

    def string(self, parent: dict[str, Any], key: str, path: str, *, required: bool) -> str:
        where = f"{path}.{key}" if path else key
        if key not in parent:
            if required:
                raise self.error(where, "missing")
            return ""
        value = parent[key]
        if not isinstance(value, str):
            raise self.error(where, f"must be a string, got {_kind(value)}")
        return value

    def bootstrap(self, doc: object) -> Bootstrap:
        top = self.obj(doc, "")
        servers = top.get("xds_servers")
        if servers is None:
            raise self.error("xds_servers", "missing")
        if not isinstance(servers, list):
            raise self.error("xds_servers", f"must be an array, got {_kind(servers)}")
        if not servers:
            raise self.error("xds_servers", "empty: at least one xDS server is needed")
        server = self.obj(servers[0], "xds_servers[0]")
        uri = self.string(server, "server_uri", "xds_servers[0]", required=True)
        if not uri:
            raise self.error("xds_servers[0].server_uri", "empty")
        creds, tls = self.channel_creds(server)
        features = self.server_features(server)
        node = self.node(top.get("node"))
        template = "%s"
        if "client_default_listener_resource_name_template" in top:
            template = self.string(
                top, "client_default_listener_resource_name_template", "", required=True
            )
            if template.startswith("xdstp:"):
                raise self.error(
                    "client_default_listener_resource_name_template",
                    f"{template!r}: xdstp: names need xDS federation (gRFC A47), "
                    "which grpc_lite does not support",
                )
        return Bootstrap(
            server_uri=uri,
            channel_creds=creds,
            tls=tls,
            server_features=features,
            node=node,
            client_default_listener_resource_name_template=template,
            source=self._source,
        )

    def channel_creds(self, server: dict[str, Any]) -> tuple[str, TlsConfig | None]:
        path = "xds_servers[0].channel_creds"
        creds = server.get("channel_creds")
        if creds is None:
            raise self.error(path, "missing")
        if not isinstance(creds, list):
            raise self.error(path, f"must be an array, got {_kind(creds)}")
        if not creds:
            raise self.error(
                path, f"empty: give one of the supported types {list(SUPPORTED_CHANNEL_CREDS)}"
            )
        seen: list[str] = []
        for i, entry in enumerate(creds):
            item = self.obj(entry, f"{path}[{i}]")
            kind = self.string(item, "type", f"{path}[{i}]", required=True)
            seen.append(kind)
            if kind == "insecure":
                return "insecure", None
            if kind == "tls":
                config = item.get("config", {})
                return "tls", self.tls(self.obj(config, f"{path}[{i}].config"), f"{path}[{i}]")
        raise self.error(
            path,
            f"no supported type: got {seen}, grpc_lite supports {list(SUPPORTED_CHANNEL_CREDS)}",
        )

    def tls(self, config: dict[str, Any], path: str) -> TlsConfig:
        cpath = f"{path}.config"
        if "refresh_interval" in config:
            raise self.error(
                f"{cpath}.refresh_interval",
                "certificate reloading is not supported by grpc_lite: remove the field "
                "(the files are read once, when the bootstrap is loaded)",
            )
        files: dict[str, tuple[str, bytes] | None] = {}
        for key in ("ca_certificate_file", "certificate_file", "private_key_file"):
            name = self.string(config, key, cpath, required=False)
            if key in config and not name:
                raise self.error(f"{cpath}.{key}", "empty")
            if not name:
                files[key] = None
                continue
            try:
                with open(name, "rb") as f:
                    files[key] = (name, f.read())
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise self.error(f"{cpath}.{key}", f"cannot read {name}: {reason}") from None
        ca, cert, key_ = (
            files["ca_certificate_file"],
            files["certificate_file"],
            files["private_key_file"],
        )
        if (cert is None) != (key_ is None):
            raise self.error(
                cpath, "certificate_file and private_key_file must be given together (A65)"
            )
        tls = TlsConfig(
            ca_certificate_file=ca[0] if ca else None,
            certificate_file=cert[0] if cert else None,
            private_key_file=key_[0] if key_ else None,
            root_certificates=ca[1] if ca else None,
            certificate_chain=cert[1] if cert else None,
            private_key=key_[1] if key_ else None,
        )
        try:  # fail now, naming the field, rather than when the ADS channel is made
            ssl_channel_credentials(tls.root_certificates, tls.private_key, tls.certificate_chain)
        except ValueError as exc:
            raise self.error(cpath, str(exc)) from None
        return tls

    def server_features(self, server: dict[str, Any]) -> tuple[str, ...]:
        path = "xds_servers[0].server_features"
        features = server.get("server_features", [])
        if not isinstance(features, list):
            raise self.error(path, f"must be an array, got {_kind(features)}")
        # grpc's doc: "the client will ignore any entry in the list that it does not
        # understand, regardless of type".
        return tuple(f for f in features if isinstance(f, str))

    def node(self, value: object) -> Node:
        if value is None:
            return Node()
        node = self.obj(value, "node")
        locality = LocalityId()
        if "locality" in node:
            loc = self.obj(node["locality"], "node.locality")
            locality = LocalityId(
                region=self.string(loc, "region", "node.locality", required=False),
                zone=self.string(loc, "zone", "node.locality", required=False),
                sub_zone=self.string(loc, "sub_zone", "node.locality", required=False),
            )
        metadata: dict[str, Any] = {}
        if "metadata" in node:
            metadata = self.obj(node["metadata"], "node.metadata")
        return Node(
            id=self.string(node, "id", "node", required=False),
            cluster=self.string(node, "cluster", "node", required=False),
            locality=locality,
            metadata=metadata,
        )

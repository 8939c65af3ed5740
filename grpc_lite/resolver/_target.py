"""Target parsing (grpc/grpc doc/naming.md; grpc-go clientconn.go parseTargetAndFindResolver).

1. Parse the target as an RFC 3986 URI. If it has a scheme that is registered, that
   resolver handles it.
2. Otherwise (no scheme, a scheme nobody registered, or not a URI at all) parse
   `<default scheme>:///<target>` instead. So `localhost:50051` is dns (a plain URI parse
   reads it as scheme "localhost"), and so are `127.0.0.1:50051` and `[::1]:50051`.
3. The chosen builder validates the target (`ResolverBuilder.validate_target`), so a
   malformed target raises ValueError when the channel is created.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote

from grpc_lite.resolver import _registry
from grpc_lite.resolver._api import ResolverBuilder, Target

__all__ = [
    "default_authority",
    "is_ip_literal",
    "join_host_port",
    "parse_host_port",
    "parse_target",
    "split_host_port",
    "split_uri",
]

# RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def split_uri(uri: str) -> tuple[str, str, str] | None:
    """Split `uri` into (scheme, authority, path-or-opaque), or None if it has no scheme.

    The scheme is lower-cased. The query and fragment are dropped, as grpc-go's endpoint
    does. The path is percent-decoded; an opaque part (`unix:rel/path`) is kept as written.
    """
    m = _SCHEME_RE.match(uri)
    if m is None:
        return None
    scheme = m.group(1).lower()
    rest = uri[m.end() :]
    rest = rest.split("#", 1)[0].split("?", 1)[0]
    if rest.startswith("//"):
        rest = rest[2:]
        slash = rest.find("/")
        if slash < 0:
            return scheme, rest, ""
        return scheme, rest[:slash], unquote(rest[slash:])
    if rest.startswith("/"):
        return scheme, "", unquote(rest)
    return scheme, "", rest


def _target_from(uri: str) -> Target | None:
    parts = split_uri(uri)
    if parts is None:
        return None
    scheme, authority, path = parts
    return Target(
        scheme=scheme, authority=authority, endpoint=path.removeprefix("/"), url=uri, path=path
    )


def resolve_scheme(target: str) -> tuple[Target, ResolverBuilder]:
    """Steps 1 and 2 of the module docstring, without validation."""
    parsed = _target_from(target)
    if parsed is not None:
        builder = _registry.get(parsed.scheme)
        if builder is not None:
            return parsed, builder
    default = _registry.get_default_scheme()
    canonical = f"{default}:///{target}"
    parsed = _target_from(canonical)
    builder = _registry.get(default)
    if parsed is None or builder is None:
        raise ValueError(
            f"invalid target {target!r}: no resolver registered for its scheme or for the "
            f"default scheme {default!r}"
        )
    return parsed, builder


def parse_target(target: str) -> Target:
    """Parse a channel target, choosing its resolver; ValueError names what is malformed."""
    if not isinstance(target, str):
        raise ValueError(f"target must be a str, got {type(target).__name__}")
    if not target:
        raise ValueError("invalid target '': empty target")
    parsed, builder = resolve_scheme(target)
    try:
        builder.validate_target(parsed)
    except ValueError as exc:
        if parsed.url != target:
            raise ValueError(f"invalid target {target!r} (read as {parsed.url!r}): {exc}") from None
        raise ValueError(f"invalid target {target!r}: {exc}") from None
    return parsed


def default_authority(target: Target) -> str:
    """The default `:authority` for `target` (naming.md; grpc-go initAuthority).

    The endpoint as written (`":port"` gets host `localhost`); `localhost` for unix targets.
    An explicit `grpc.default_authority` option or per-address server name wins over this.
    """
    builder = _registry.get(target.scheme)
    if builder is None:
        return ResolverBuilder().default_authority(target)
    return builder.default_authority(target)


# -- host:port helpers (Go net.SplitHostPort semantics) ----------------------------------


def split_host_port(hostport: str) -> tuple[str, str]:
    """Split "host:port", "[v6]:port" into (host, port); ValueError if malformed.

    The port may be empty (`"host:"`); the caller decides whether that is allowed.
    """
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError(f"missing ']' in address {hostport!r}")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if not rest.startswith(":"):
            raise ValueError(f"missing port after ']' in address {hostport!r}")
        if "[" in host or "]" in rest:
            raise ValueError(f"unexpected bracket in address {hostport!r}")
        return host, rest[1:]
    host, sep, port = hostport.rpartition(":")
    if not sep:
        raise ValueError(f"missing port in address {hostport!r}")
    if ":" in host:
        raise ValueError(f"too many colons in address {hostport!r}")
    if "[" in hostport or "]" in hostport:
        raise ValueError(f"unexpected bracket in address {hostport!r}")
    return host, port


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address (no brackets, optional %zone)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# Characters that cannot appear in a host name (URI delimiters, whitespace, controls).
_BAD_HOST_CHARS = re.compile(r"[\s/\\@?#\[\]%:\x00-\x1f\x7f]")


def _check_port(port: str, where: str) -> int:
    if not port:
        raise ValueError(f"missing port after port-separator colon in {where!r}")
    if not port.isascii() or not port.isdigit():
        raise ValueError(f"port {port!r} in {where!r} is not a number")
    value = int(port)
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} in {where!r} is outside 1-65535")
    return value


def parse_host_port(
    hostport: str, default_port: int, *, empty_host: str | None = None
) -> tuple[str, int]:
    """Parse "host[:port]" as grpc-go's dns parseTarget does, validating the port.

    A bare IP literal (IPv6 without brackets too) takes `default_port`. `":port"` gets
    `empty_host` if given, otherwise an empty host is an error.
    """
    if not hostport:
        raise ValueError("missing address")
    if is_ip_literal(hostport):
        return hostport, default_port
    try:
        host, port = split_host_port(hostport)
    except ValueError:
        # No port: try it with the default one (grpc-go does the same).
        try:
            host, _ = split_host_port(f"{hostport}:{default_port}")
        except ValueError as exc:
            raise ValueError(f"invalid address {hostport!r}: {exc}") from None
        port_value = default_port
    else:
        port_value = _check_port(port, hostport)
    if not host:
        if empty_host is None:
            raise ValueError(f"empty host in {hostport!r}")
        host = empty_host
    elif not is_ip_literal(host) and _BAD_HOST_CHARS.search(host):
        raise ValueError(f"invalid host {host!r} in {hostport!r}")
    return host, port_value


def join_host_port(host: str, port: int) -> str:
    """Inverse of split_host_port: IPv6 hosts get brackets."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"

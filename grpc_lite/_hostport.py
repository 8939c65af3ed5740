"""``host:port`` helpers with Go's ``net.SplitHostPort`` semantics (grpc-go parses dial
targets with it), shared by the channel and the resolvers (dns, ipv4/ipv6).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["is_ip_literal", "join_host_port", "parse_host_port", "split_host_port"]


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

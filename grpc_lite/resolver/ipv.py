"""`ipv4:` and `ipv6:` address-list targets (grpc/grpc doc/naming.md).

`ipv4:a.b.c.d[:port][,a.b.c.d[:port]...]` and `ipv6:[addr]:port` or bare `addr`, each entry
one endpoint in order; the default port is 443. No DNS.
"""

from __future__ import annotations

import ipaddress

from grpc_lite._hostport import join_host_port, split_host_port
from grpc_lite.resolver._api import (
    Address,
    BuildOptions,
    Resolver,
    ResolverBuilder,
    ResolverChannel,
    ResolverState,
    Target,
)
from grpc_lite.resolver._static import StaticResolver

__all__ = ["Ipv4ResolverBuilder", "Ipv6ResolverBuilder"]

# naming.md: "If the port is not specified, 443 is used."
DEFAULT_PORT = 443


class _IpListResolverBuilder(ResolverBuilder):
    _version = 4

    def parse_addresses(self, target: Target) -> tuple[Address, ...]:
        """The target's addresses; ValueError names the bad entry."""
        if target.authority:
            raise ValueError(f"{self.scheme}: unexpected authority {target.authority!r}")
        if not target.endpoint:
            raise ValueError(f"{self.scheme}: no addresses")
        return tuple(Address(self._parse_one(entry)) for entry in target.endpoint.split(","))

    def _parse_one(self, entry: str) -> str:
        if not entry:
            raise ValueError(f"{self.scheme}: empty address in list")
        # An IPv6 entry has a port only in the bracketed form; an IPv4 one after a colon.
        has_port = entry.startswith("[") if self._version == 6 else ":" in entry
        if has_port:
            host, port = split_host_port(entry)
        else:
            host, port = entry, str(DEFAULT_PORT)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{self.scheme}: {host!r} is not an IP address") from None
        if ip.version != self._version:
            raise ValueError(f"{self.scheme}: {host!r} is not an IPv{self._version} address")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{self.scheme}: invalid port {port!r} in {entry!r}")
        return join_host_port(host, int(port))

    def validate_target(self, target: Target) -> None:
        self.parse_addresses(target)

    def build(self, target: Target, channel: ResolverChannel, options: BuildOptions) -> Resolver:
        return StaticResolver(channel, ResolverState(self.parse_addresses(target)))


class Ipv4ResolverBuilder(_IpListResolverBuilder):
    scheme = "ipv4"
    _version = 4


class Ipv6ResolverBuilder(_IpListResolverBuilder):
    scheme = "ipv6"
    _version = 6

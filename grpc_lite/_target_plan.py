"""Where a channel's connections go (L5): the resolver for its target, the ``:authority``
and TLS name, and the HTTP CONNECT proxy plan (gRFC A1).

grpc-go counterpart: ``ClientConn.parseTargetAndFindResolver`` and ``initAuthority``
(clientconn.go), and the proxy mapping of ``internal/resolver/delegatingresolver``.

Built once by the channel, immutable afterwards.
"""

import dataclasses
import os
import ssl

from . import resolver
from ._hostport import join_host_port, parse_host_port, split_host_port
from ._options import ChannelOptions
from ._proxy import HttpProxy, ProxySettings, proxy_settings
from .resolver import Address, BuildOptions
from .resolver.passthrough import PassthroughResolverBuilder

__all__ = ["TargetPlan", "host_of"]

# grpc/grpc doc/naming.md: a dns target without a port means 443.
_DNS_DEFAULT_PORT = 443


class TargetPlan:
    """The target's resolver and authority, then (`plan_connections`) the TLS name, the
    schemes and the proxy plan.

    Who may call: the channel (``__init__``, and its serializer for `proxies_for`).
    """

    __slots__ = (
        "address_proxies",
        "auth_scheme",
        "authority",
        "builder",
        "parsed",
        "proxy_note",
        "scheme",
        "server_hostname",
        "target",
        "tunnel",
    )

    def __init__(self, target: str) -> None:
        """Parse ``target`` and find its resolver; ValueError naming what is wrong."""
        self.target = target
        self.parsed = resolver.parse_target(target)
        builder = resolver.get(self.parsed.scheme)
        if builder is None:  # pragma: no cover - parse_target only returns registered schemes
            raise ValueError(f"invalid target {target!r}: no resolver for its scheme")
        builder.validate_target(self.parsed)
        self.builder: resolver.ResolverBuilder = builder
        self.authority = ""
        self.server_hostname: str | None = None
        self.scheme = "http"
        self.auth_scheme: str | None = None
        # HTTP CONNECT proxy (A1): a dns target goes whole through the proxy, unresolved
        # (``tunnel``); any other target's addresses are checked one by one
        # (``address_proxies``). Both None: no proxy, nothing changes.
        self.tunnel: tuple[str, HttpProxy] | None = None
        self.address_proxies: ProxySettings | None = None
        self.proxy_note: str | None = None

    def plan_connections(
        self, options: ChannelOptions, ssl_context: ssl.SSLContext | None, local: bool
    ) -> None:
        """The authority, TLS name and schemes for ``options`` and the credentials, and the
        proxy plan (``proxy_note`` describes it for the trace)."""
        self.authority = options.default_authority or self.builder.default_authority(self.parsed)
        if ssl_context is not None:
            self.server_hostname = options.ssl_target_name_override or host_of(self.authority)
        self.scheme = "https" if ssl_context is not None else "http"
        # The scheme of the call credentials' service_url; None: no call credentials here.
        # C-core's local security connector has an empty one ("://host:port/pkg.Svc").
        self.auth_scheme = "https" if ssl_context is not None else "" if local else None
        settings = proxy_settings(options.http_proxy, options.enable_http_proxy, os.environ)
        self.proxy_note = self._choose_proxy(settings, options.user_agent)

    def _choose_proxy(self, settings: ProxySettings | None, user_agent: str) -> str | None:
        """Set up the proxy plan; a description for the trace, or None."""
        if settings is None:
            return None
        proxy = dataclasses.replace(settings.proxy, user_agent=user_agent)
        settings = ProxySettings(proxy, settings.no_proxy)
        scheme = self.parsed.scheme
        where = f"HTTP CONNECT proxy {proxy.address} (from {proxy.source})"
        if scheme in ("unix", "unix-abstract"):
            return None  # C-core and grpc-go: never for Unix sockets
        if scheme != "dns":
            self.address_proxies = settings
            return f"{where} for every address not in no_proxy"
        # A1 case 1: the proxy resolves the name; the client neither resolves it nor reads
        # its TXT service config.  no_proxy is checked against the name (C-core MapName).
        host, port = parse_host_port(
            self.parsed.endpoint, _DNS_DEFAULT_PORT, empty_host="localhost"
        )
        hostport = join_host_port(host, port)
        if settings.for_host(host, port) is None:
            assert settings.no_proxy is not None
            return f"{where} not used: {hostport} matches {settings.no_proxy.source}"
        self.tunnel = (hostport, proxy)
        self.builder = _TunnelTargetBuilder(hostport)
        return f"{where} for {hostport}; the proxy resolves the name"

    def proxies_for(self, addresses: tuple[Address, ...]) -> tuple[HttpProxy | None, ...] | None:
        """Per address: the proxy to dial it through, or None for a direct connection; None
        when no address has one."""
        if self.tunnel is None and self.address_proxies is None:
            return None
        found: list[HttpProxy | None] = []
        for address in addresses:
            addr = address.addr
            proxy: HttpProxy | None = None
            if not addr.startswith(("unix:", "unix-abstract:")):
                if self.tunnel is not None:
                    proxy = self.tunnel[1]
                elif self.address_proxies is not None:
                    try:
                        host, port = split_host_port(addr)
                        proxy = self.address_proxies.for_host(host, int(port))
                    except ValueError:
                        pass  # the dialer reports a malformed address
            found.append(proxy)
        return tuple(found) if any(p is not None for p in found) else None


class _TunnelTargetBuilder(PassthroughResolverBuilder):
    """Stands in for the dns resolver when a proxy resolves the name (A1 case 1): one
    address, the target's ``host:port`` as written, and no service config (a passthrough
    of that ``host:port``)."""

    scheme = "dns"

    def __init__(self, hostport: str) -> None:
        self._hostport = hostport

    def build(
        self, target: resolver.Target, channel: resolver.ResolverChannel, options: BuildOptions
    ) -> resolver.Resolver:
        return super().build(dataclasses.replace(target, endpoint=self._hostport), channel, options)


def host_of(authority: str) -> str:
    """The host of an ``:authority`` (brackets of an IPv6 literal removed)."""
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit():
        return host
    return authority

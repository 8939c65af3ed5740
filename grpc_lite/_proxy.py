"""HTTP CONNECT proxy settings (gRFC A1): where they come from and which hosts skip them (L1).

grpc C-core counterpart: ``http_proxy_mapper.cc``; grpc-go: ``delegatingresolver`` and
``proxyattributes``.  The tunnel itself is opened by ``_transport._proxy``.

Where the proxy comes from, read once when a channel is created (the first one set wins,
an empty value included, which means "no proxy", as in C-core):

1. the channel option ``grpc.http_proxy``;
2. the environment: ``grpc_proxy``, ``https_proxy``, ``http_proxy`` (each in lower case,
   then upper case; ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` says we run as a CGI
   script, the "httpoxy" guard of Go and urllib).

``grpc.enable_http_proxy`` 0 turns all of it off.  The value is ``http://[user:pass@]host:port``
or a bare ``host[:port]`` (port 443 by default: C-core and grpc-go resolve the proxy's name
with the dns resolver, whose default port that is); anything else is a
``ValueError`` naming the option or variable.  The user info is percent-decoded and sent as
``Proxy-Authorization: Basic`` (RFC 7617).

``no_grpc_proxy`` (else ``no_proxy``; lower case, then upper case) lists, separated by
commas, the hosts that are reached directly: ``*`` (every host), host names (``example.com``
matches it and its subdomains; ``.example.com`` and ``*.example.com`` the same), IP
addresses and CIDR ranges (``10.0.0.0/8``, ``fd00::/8``; these match IP-literal hosts only),
each optionally with ``:port`` (``[v6]:port`` for IPv6) to match that port only.  Entries
that cannot be read are ignored, as C-core does.

Nothing here prints a password: ``HttpProxy``'s repr and every message name only the
proxy's ``host:port``.
"""

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

__all__ = [
    "HttpProxy",
    "NoProxy",
    "ProxySettings",
    "parse_no_proxy",
    "parse_proxy_url",
    "proxy_settings",
]

OPTION_PROXY = "grpc.http_proxy"
OPTION_ENABLE = "grpc.enable_http_proxy"
_PROXY_VARIABLES = ("grpc_proxy", "https_proxy", "http_proxy")
_NO_PROXY_VARIABLES = ("no_grpc_proxy", "no_proxy")
_DEFAULT_PROXY_PORT = 443  # not 80: grpc resolves "proxy.corp" as a dns target

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpProxy:
    """One HTTP CONNECT proxy: its address, credentials and where it was configured."""

    host: str
    port: int
    source: str
    """Where it came from: "channel option 'grpc.http_proxy'" or "environment variable X"."""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    user_agent: str | None = None
    """Sent as ``User-Agent`` on the CONNECT request (grpc-go does the same)."""

    @property
    def address(self) -> str:
        """``host:port`` (``[v6]:port``): what messages, snapshots and trace events show."""
        return join_host_port(self.host, self.port)

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` header value, or None without user info."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __repr__(self) -> str:
        auth = " (with credentials)" if self.username is not None else ""
        return f"<HttpProxy {self.address}{auth} from {self.source}>"


def _ip(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Entry:
    port: int | None
    domain: str | None = None  # lower case, no leading dot
    ip: _IPAddress | None = None
    network: _IPNetwork | None = None


def _split_port(entry: str) -> tuple[str, int | None] | None:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address."""
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0:
            return None
        host, rest = entry[1:end], entry[end + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":" or not rest[1:].isdigit():
            return None
        return host, int(rest[1:])
    if entry.count(":") > 1:  # a bare IPv6 address (or CIDR): no port
        return entry, None
    host, sep, port = entry.partition(":")
    if not sep:
        return host, None
    if not port.isdigit():
        return None
    return host, int(port)


def _parse_entry(raw: str) -> _Entry | None:
    entry = raw.strip().lower()
    if not entry:
        return None
    if "/" in entry:
        try:
            return _Entry(port=None, network=ipaddress.ip_network(entry, strict=False))
        except ValueError:
            return None
    parts = _split_port(entry)
    if parts is None:
        return None
    host, port = parts
    ip = _ip(host)
    if ip is not None:
        return _Entry(port=port, ip=ip)
    domain = host.removeprefix("*").lstrip(".").rstrip(".")
    if not domain:
        return None
    return _Entry(port=port, domain=domain)


@dataclass(frozen=True, slots=True)
class NoProxy:
    """A parsed ``no_proxy`` list; ``matches(host, port)`` says whether to go direct."""

    source: str
    everything: bool = False
    entries: tuple[_Entry, ...] = ()

    def matches(self, host: str, port: int) -> bool:
        if self.everything:
            return True
        host = host.strip("[]").lower().rstrip(".")
        ip = _ip(host.split("%", 1)[0])
        for entry in self.entries:
            if entry.port is not None and entry.port != port:
                continue
            if entry.domain is not None:
                if ip is None and (host == entry.domain or host.endswith("." + entry.domain)):
                    return True
            elif ip is not None:
                if entry.ip is not None and _same_ip(ip, entry.ip):
                    return True
                if entry.network is not None and _in_network(ip, entry.network):
                    return True
        return False


def _same_ip(a: _IPAddress, b: _IPAddress) -> bool:
    if a.version != b.version:
        a = _unmapped(a)
        b = _unmapped(b)
    return a == b


def _unmapped(ip: _IPAddress) -> _IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _in_network(ip: _IPAddress, network: _IPNetwork) -> bool:
    ip = _unmapped(ip) if network.version == 4 else ip
    return ip.version == network.version and ip in network


def parse_no_proxy(value: str, source: str) -> NoProxy:
    """A ``no_proxy`` value; unreadable entries are skipped."""
    entries = []
    for raw in value.split(","):
        if raw.strip() == "*":
            return NoProxy(source, everything=True)
        entry = _parse_entry(raw)
        if entry is not None:
            entries.append(entry)
    return NoProxy(source, entries=tuple(entries))


def parse_proxy_url(value: str, source: str) -> HttpProxy:
    """``http://[user[:pass]@]host[:port][/]`` or ``host[:port]``; ValueError names ``source``."""

    def bad(why: str) -> ValueError:
        # The value itself is not echoed: it may hold a password.
        return ValueError(f"{source}: invalid HTTP proxy URL: {why}")

    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        rest = text
    elif scheme.lower() != "http":
        raise bad(
            f"scheme {scheme!r} is not supported (only http://; the tunnel to the backend "
            "still carries TLS when the channel is secure)"
        )
    authority = rest
    for stop in "/?#":
        authority = authority.split(stop, 1)[0]
    if rest[len(authority) :].strip("/"):
        raise bad("a proxy URL has no path, query or fragment")
    userinfo, at, hostport = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user)
        password = unquote(secret) if colon else None
    if not hostport:
        raise bad("no host")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise bad("missing ']'")
        host, port_text = hostport[1:end], hostport[end + 1 :]
        if _ip(host) is None or not isinstance(_ip(host), ipaddress.IPv6Address):
            raise bad(f"{host!r} in brackets is not an IPv6 address")
        if port_text and not port_text.startswith(":"):
            raise bad("junk after ']'")
        port_text = port_text[1:]
    else:
        host, _, port_text = hostport.partition(":")
        if ":" in port_text:
            raise bad("an IPv6 proxy address needs brackets: http://[addr]:port")
    if not host or any(c in host for c in " \t/\\@%") or any(ord(c) < 33 for c in host):
        raise bad(f"invalid host {host!r}")
    if not port_text:
        port = _DEFAULT_PROXY_PORT
    elif port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise bad(f"invalid port {port_text!r}")
    return HttpProxy(host=host, port=port, source=source, username=username, password=password)


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """A channel's proxy and the hosts that bypass it."""

    proxy: HttpProxy
    no_proxy: NoProxy | None = None

    def for_host(self, host: str, port: int) -> HttpProxy | None:
        """The proxy to reach ``host:port`` through, or None to go direct."""
        if self.no_proxy is not None and self.no_proxy.matches(host, port):
            return None
        return self.proxy


def _lookup(environ: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    """The first variable set (lower case before upper case): ``(name, value)``."""
    cgi = "REQUEST_METHOD" in environ
    for name in names:
        for key in (name, name.upper()):
            if key == "HTTP_PROXY" and cgi:
                continue  # httpoxy: a CGI request's "Proxy:" header lands in HTTP_PROXY
            value = environ.get(key)
            if value is not None:
                return key, value
    return None


def proxy_settings(
    option: str | None, enabled: bool, environ: Mapping[str, str]
) -> ProxySettings | None:
    """The proxy a channel uses (module docstring), or None; ValueError for a bad URL."""
    if not enabled:
        return None
    if option is not None:
        value, source = option, f"channel option {OPTION_PROXY!r}"
    else:
        found = _lookup(environ, _PROXY_VARIABLES)
        if found is None:
            return None
        value, source = found[1], f"environment variable {found[0]}"
    if not value.strip():
        return None
    proxy = parse_proxy_url(value, source)
    no_proxy = None
    found = _lookup(environ, _NO_PROXY_VARIABLES)
    if found is not None:
        no_proxy = parse_no_proxy(found[1], f"environment variable {found[0]}")
    return ProxySettings(proxy, no_proxy)

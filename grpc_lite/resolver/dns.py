"""The `dns` resolver (grpc/grpc doc/naming.md; gRFC A2).

Target syntax: `dns:[//authority/]host[:port]`. The authority, when present, is the DNS
server to ask, `ip[:port]` (port 53 by default). The default port is 443.

Behaviour, after grpc-go's internal/resolver/dns:

- IP-literal hosts skip DNS: one address, pushed once.
- Other hosts are looked up (A and AAAA, the hosts file first, so `localhost` works with no
  DNS server). Unless disabled, the TXT record `_grpc_config.<host>` is read for a service
  config (A2); never for `localhost` (A10).
- A failed lookup (or zero addresses, or an update the channel rejected) is reported to the
  channel, which keeps its last good addresses, and is retried with connection-backoff.md
  backoff (1 s, x1.6, jitter 0.2, at most 120 s).
- After a success, `resolve_now()` is honoured no sooner than
  `grpc.dns_min_time_between_resolutions_ms` (default 30 s) after that success, and the
  resolver re-resolves on its own every `grpc_lite.dns_refresh_interval_s` (default 30 s;
  0 turns it off). The refresh interval is used as given (the floor applies to
  on-demand re-resolutions only).

The resolver owns at most one background task (the lookup in flight) and one timer (the
channel's, `ResolverChannel.call_later`: it fires on the channel's serializer); both are
cancelled by `close()`. DNS itself is behind the `DnsLookup` protocol, so tests use
`tests.fakes.dns.FakeDnsLookup` and a fake clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from grpc_lite._backoff import BackoffConfig, ExponentialBackoff
from grpc_lite._clock import Clock, LoopClock, TimerHandle
from grpc_lite._hostport import is_ip_literal, join_host_port, parse_host_port
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

__all__ = [
    "DEFAULT_MIN_RESOLUTION_INTERVAL_S",
    "DEFAULT_PORT",
    "DEFAULT_REFRESH_INTERVAL_S",
    "AiodnsLookup",
    "DnsLookup",
    "DnsLookupFactory",
    "DnsResolutionError",
    "DnsResolver",
    "DnsResolverBuilder",
    "choose_service_config",
]

_LOGGER = logging.getLogger("grpc_lite.resolver.dns")

# naming.md: "If the port is not specified, 443 is used."
DEFAULT_PORT = 443
# The port of a DNS server named in the authority without one.
DEFAULT_DNS_SERVER_PORT = 53
# grpc-go MinResolutionInterval; grpcio's grpc.dns_min_time_between_resolutions_ms default.
DEFAULT_MIN_RESOLUTION_INTERVAL_S = 30.0
# grpc_lite's periodic refresh: catches backend changes even while every connection is
# healthy (a rolling update that adds backends), which resolve_now() alone never sees.
DEFAULT_REFRESH_INTERVAL_S = 30.0

OPTION_MIN_INTERVAL_MS = "grpc.dns_min_time_between_resolutions_ms"
OPTION_REFRESH_INTERVAL_S = "grpc_lite.dns_refresh_interval_s"
OPTION_DISABLE_SERVICE_CONFIG = "grpc.service_config_disable_resolution"

# A2: the TXT record holding the service config, and its attribute prefix.
TXT_NAME_PREFIX = "_grpc_config."
TXT_ATTRIBUTE = "grpc_config="
# A2: the clientLanguage this client matches.
CLIENT_LANGUAGE = "python"

# connection-backoff.md parameters for retrying a failed resolution (grpc-go uses the same
# defaults for its DNS resolver).
RESOLUTION_BACKOFF = BackoffConfig()


class DnsResolutionError(Exception):
    """A lookup failed or produced no addresses; the message names the host."""


class DnsLookup(Protocol):
    """The DNS seam: one object per resolution, closed after it.

    `lookup_host` returns IP address strings (A and AAAA, the hosts file first) and raises
    on failure (NXDOMAIN included). `lookup_txt` returns one string per TXT record, the
    record's character-strings concatenated.
    """

    async def lookup_host(self, host: str) -> Sequence[str]: ...

    async def lookup_txt(self, name: str) -> Sequence[str]: ...

    async def aclose(self) -> None: ...


DnsLookupFactory = Callable[[tuple[str, int] | None], DnsLookup]
"""Makes a DnsLookup that asks the given (server ip, port), or the system's servers."""


class AiodnsLookup:
    """DnsLookup on aiodns / c-ares.

    Host names go through c-ares `getaddrinfo` (A and AAAA, hosts file first, RFC 6761
    localhost), never a raw A query, so /etc/hosts names work as with the system resolver.
    """

    def __init__(self, nameserver: tuple[str, int] | None = None, *, timeout: float = 5.0):
        import aiodns

        kwargs: dict[str, Any] = {"timeout": timeout, "tries": 2}
        servers: list[str] | None = None
        if nameserver is not None:
            ip, port = nameserver
            servers = [ip]
            kwargs["udp_port"] = port
            kwargs["tcp_port"] = port
        self._resolver = aiodns.DNSResolver(nameservers=servers, **kwargs)

    async def lookup_host(self, host: str) -> Sequence[str]:
        result = await self._resolver.getaddrinfo(
            host, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM
        )
        addresses: list[str] = []
        for node in result.nodes:
            ip = node.addr[0]
            addresses.append(ip.decode() if isinstance(ip, bytes) else str(ip))
        return addresses

    async def lookup_txt(self, name: str) -> Sequence[str]:
        query_dns = getattr(self._resolver, "query_dns", None)
        if query_dns is None:  # aiodns < 4
            return [_text(r.text) for r in await self._resolver.query(name, "TXT")]
        result = await query_dns(name, "TXT")
        return [
            _text(record.data.data)
            for record in result.answer
            if hasattr(record.data, "data") and isinstance(record.data.data, bytes | str)
        ]

    async def aclose(self) -> None:
        await self._resolver.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def choose_service_config(
    records: Sequence[str],
    *,
    client_hostname: str,
    rand: Callable[[], float] = random.random,
) -> tuple[str | None, str | None]:
    """Pick the service config from `_grpc_config` TXT records (A2 "canarying").

    Returns `(service_config_json, None)`, `(None, None)` when there is no config for this
    client, or `(None, error)` when the record is invalid as a whole: bad JSON, not a list
    of objects, an unknown key in a choice, a bad `clientLanguage` / `percentage` /
    `clientHostname`, or a missing or non-object `serviceConfig` (A2; grpc-go canaryingSC).

    The first record that starts with `grpc_config=` is used; others are ignored. (grpc-go
    concatenates all records first; a record set that also holds unrelated TXT strings
    would then never match.) The first choice that matches this client wins.
    """
    text = next((r for r in records if r.startswith(TXT_ATTRIBUTE)), None)
    if text is None:
        return None, None
    try:
        choices = json.loads(text[len(TXT_ATTRIBUTE) :])
    except ValueError as exc:
        return None, f"TXT service config is not valid JSON: {exc}"
    if not isinstance(choices, list):
        return None, "TXT service config must be a JSON array of choices"
    for index, choice in enumerate(choices):
        problem = _choice_problem(choice)
        if problem is not None:
            return None, f"TXT service config choice {index}: {problem}"
    for choice in choices:
        if _choice_matches(choice, client_hostname, rand):
            return json.dumps(choice["serviceConfig"], separators=(",", ":")), None
    return None, None


_CHOICE_KEYS = frozenset({"clientLanguage", "percentage", "clientHostname", "serviceConfig"})


def _choice_problem(choice: object) -> str | None:
    if not isinstance(choice, dict):
        return "not a JSON object"
    unknown = sorted(set(choice) - _CHOICE_KEYS)
    if unknown:
        return f"unknown field(s) {', '.join(unknown)}"
    for key in ("clientLanguage", "clientHostname"):
        if key in choice:
            value = choice[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return f"{key} must be a list of strings"
    if "percentage" in choice:
        pct = choice["percentage"]
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            return "percentage must be an integer in 0-100"
    if "serviceConfig" not in choice:
        return "missing serviceConfig"
    if not isinstance(choice["serviceConfig"], dict):
        return "serviceConfig must be a JSON object"
    return None


def _choice_matches(
    choice: Mapping[str, Any], client_hostname: str, rand: Callable[[], float]
) -> bool:
    languages = choice.get("clientLanguage")
    if languages is not None and CLIENT_LANGUAGE not in {lang.lower() for lang in languages}:
        return False
    hostnames = choice.get("clientHostname")
    if hostnames is not None and client_hostname not in hostnames:
        return False
    pct = choice.get("percentage")
    # A random integer in 0-99 below the percentage: 0 never applies, 100 always does.
    return pct is None or int(rand() * 100) < pct


def _duration_option(
    options: Mapping[str, Any], key: str, default: float, *, scale: float
) -> float:
    """A non-negative number of (scaled) seconds from the channel options."""
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"channel option {key!r} must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"channel option {key!r} must be >= 0, got {value!r}")
    return float(value) * scale


class DnsResolverBuilder(ResolverBuilder):
    """Builds `DnsResolver`s; registered for "dns".

    Args:
        lookup_factory: makes the DnsLookup for each resolution; default `AiodnsLookup`.
        clock: overrides the channel's clock (`BuildOptions.clock`) for reading the time;
            default the real one. The timers are the channel's (`ResolverChannel.call_later`),
            so a test that injects a clock gives its fake channel the same one.
        rand: jitter for the resolution backoff and TXT `percentage` draws.
        client_hostname: matched against TXT `clientHostname`; default the host name.
    """

    scheme = "dns"

    def __init__(
        self,
        *,
        lookup_factory: DnsLookupFactory | None = None,
        clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
        client_hostname: str | None = None,
    ) -> None:
        self._lookup_factory: DnsLookupFactory = lookup_factory or AiodnsLookup
        self._clock = clock
        self._rand = rand
        self._client_hostname = client_hostname

    @staticmethod
    def parse(target: Target) -> tuple[str, int, tuple[str, int] | None]:
        """(host, port, nameserver) for a dns target; ValueError names the problem."""
        # grpc-go: ":port" means localhost.
        host, port = parse_host_port(target.endpoint, DEFAULT_PORT, empty_host="localhost")
        nameserver: tuple[str, int] | None = None
        if target.authority:
            try:
                ns_host, ns_port = parse_host_port(target.authority, DEFAULT_DNS_SERVER_PORT)
            except ValueError as exc:
                raise ValueError(f"dns: invalid authority {target.authority!r}: {exc}") from None
            if not is_ip_literal(ns_host):
                raise ValueError(
                    f"dns: authority {target.authority!r} must be a DNS server's IP[:port]"
                )
            nameserver = (ns_host, ns_port)
        return host, port, nameserver

    def validate_target(self, target: Target) -> None:
        self.parse(target)

    def build(self, target: Target, channel: ResolverChannel, options: BuildOptions) -> Resolver:
        host, port, nameserver = self.parse(target)
        if is_ip_literal(host):
            return StaticResolver(channel, ResolverState((Address(join_host_port(host, port)),)))
        opts = options.channel_options
        min_interval = _duration_option(
            opts, OPTION_MIN_INTERVAL_MS, DEFAULT_MIN_RESOLUTION_INTERVAL_S, scale=0.001
        )
        refresh = _duration_option(
            opts, OPTION_REFRESH_INTERVAL_S, DEFAULT_REFRESH_INTERVAL_S, scale=1.0
        )
        enable_txt = not (
            options.disable_service_config
            or bool(opts.get(OPTION_DISABLE_SERVICE_CONFIG, False))
            or host.lower() == "localhost"
        )
        return DnsResolver(
            host=host,
            port=port,
            channel=channel,
            lookup_factory=self._lookup_factory,
            nameserver=nameserver,
            clock=self._clock or options.clock or LoopClock(),
            min_interval=min_interval,
            refresh_interval=refresh,
            enable_txt=enable_txt,
            rand=self._rand,
            client_hostname=self._client_hostname,
        )


class DnsResolver(Resolver):
    """Resolves one host name for one channel (grpc-go: dnsResolver, internal/resolver/dns).

    Callers: `resolve_now`, `close` and the timer callback (`ResolverChannel.call_later`)
    from the channel's serializer; the lookup task on the loop. Lookups never overlap.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        channel: ResolverChannel,
        lookup_factory: DnsLookupFactory,
        nameserver: tuple[str, int] | None,
        clock: Clock,
        min_interval: float,
        refresh_interval: float,
        enable_txt: bool,
        rand: Callable[[], float] = random.random,
        client_hostname: str | None = None,
    ) -> None:
        # Immutable after __init__.
        self._host = host
        self._port = port
        self._channel = channel
        self._lookup_factory = lookup_factory
        self._nameserver = nameserver
        self._clock = clock
        self._min_interval = min_interval
        self._refresh_interval = refresh_interval
        self._enable_txt = enable_txt
        self._rand = rand
        self._client_hostname = client_hostname
        # Mutated by resolve_now/close and the timer (serializer) and the lookup task (loop).
        self._backoff = ExponentialBackoff(RESOLUTION_BACKOFF, rand)
        self._task: asyncio.Task[None] | None = None
        self._closing_task: asyncio.Task[None] | None = None
        self._timer: TimerHandle | None = None
        self._timer_when: float | None = None
        self._last_success: float | None = None
        self._failing = False
        self._resolve_now_pending = False
        self._closed = False
        self._start_lookup()

    @property
    def host(self) -> str:
        return self._host

    @property
    def busy(self) -> bool:
        """True while a lookup is in flight."""
        return self._task is not None

    @property
    def next_resolution_at(self) -> float | None:
        """When the next lookup is scheduled (clock time), or None."""
        return self._timer_when

    def resolve_now(self) -> None:
        if self._closed:
            return
        if self._task is not None:
            # Answer it once this lookup is done (paced like any other request).
            self._resolve_now_pending = True
            return
        if self._failing or self._last_success is None:
            # A backoff retry is already scheduled; asking again must not shorten it.
            return
        due = max(self._clock.now(), self._last_success + self._min_interval)
        if self._timer_when is not None and self._timer_when <= due:
            return
        if due <= self._clock.now():
            self._start_lookup()
        else:
            self._schedule(due)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        if self._task is not None:
            self._task.cancel()
            self._closing_task, self._task = self._task, None

    async def wait_closed(self) -> None:
        task, self._closing_task = self._closing_task, None
        if task is not None and task is not asyncio.current_task():
            # The lookup was cancelled by close(); its own outcome does not matter here.
            await asyncio.wait((task,))

    # -- internals -----------------------------------------------------------------------------

    def _schedule(self, when: float) -> None:
        self._cancel_timer()
        self._timer_when = when
        self._timer = self._channel.call_later(when - self._clock.now(), self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_when = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_when = None
        if not self._closed and self._task is None:
            self._start_lookup()

    def _start_lookup(self) -> None:
        self._cancel_timer()
        self._resolve_now_pending = False
        self._task = asyncio.get_running_loop().create_task(
            self._resolve_and_report(), name=f"grpc_lite dns resolver {self._host}"
        )

    async def _resolve_and_report(self) -> None:
        try:
            state = await self._lookup()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._closed:
                return
            _LOGGER.debug("dns: resolving %r failed: %s", self._host, exc)
            # _task stays set while the channel runs: a resolve_now() it makes in
            # response is recorded as pending rather than starting a second lookup.
            self._channel.report_error(exc)
            self._task = None
            self._after_attempt(ok=False)
            return
        if self._closed:
            return
        accepted = self._channel.update_state(state)
        self._task = None
        if not accepted:
            _LOGGER.debug("dns: the channel rejected the update for %r", self._host)
        self._after_attempt(ok=accepted)

    def _after_attempt(self, *, ok: bool) -> None:
        if self._closed:
            return
        now = self._clock.now()
        if not ok:
            self._failing = True
            self._resolve_now_pending = False
            self._schedule(now + self._backoff.next_delay())
            return
        self._failing = False
        self._backoff.reset()
        self._last_success = now
        if self._refresh_interval > 0:
            self._schedule(now + self._refresh_interval)
        if self._resolve_now_pending:
            self._resolve_now_pending = False
            self.resolve_now()

    async def _lookup(self) -> ResolverState:
        lookup = self._lookup_factory(self._nameserver)
        try:
            try:
                ips = await lookup.lookup_host(self._host)
            except Exception as exc:
                raise DnsResolutionError(
                    f"dns: A/AAAA lookup for {self._host!r} failed: {exc}"
                ) from exc
            unique = list(dict.fromkeys(ips))
            if not unique:
                raise DnsResolutionError(f"dns: resolving {self._host!r} produced zero addresses")
            addresses = tuple(Address(join_host_port(ip, self._port)) for ip in unique)
            service_config: str | None = None
            service_config_error: str | None = None
            if self._enable_txt:
                service_config, service_config_error = await self._lookup_service_config(lookup)
            return ResolverState(
                addresses,
                service_config=service_config,
                service_config_error=service_config_error,
            )
        finally:
            await lookup.aclose()

    async def _lookup_service_config(self, lookup: DnsLookup) -> tuple[str | None, str | None]:
        name = TXT_NAME_PREFIX + self._host
        try:
            records = await lookup.lookup_txt(name)
        except Exception as exc:
            # grpc-go ignores TXT lookup errors by default (GRPC_GO_IGNORE_TXT_ERRORS):
            # most names have no such record.
            _LOGGER.debug("dns: TXT lookup for %r failed: %s", name, exc)
            return None, None
        hostname = self._client_hostname
        if hostname is None:
            hostname = socket.gethostname()
        sc, error = choose_service_config(records, client_hostname=hostname, rand=self._rand)
        if error is not None:
            _LOGGER.warning("dns: invalid service config in TXT %r: %s", name, error)
        return sc, error

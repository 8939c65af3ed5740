"""FakeDns: a table-driven `grpc_lite.resolver.dns.DnsLookup` with a call log.

    dns = FakeDns(hosts={"svc.test": ["10.0.0.1"]}, txt={...})
    builder = DnsResolverBuilder(lookup_factory=dns.factory, clock=fake_clock)
    resolver = builder.build(target, FakeResolverChannel(clock=fake_clock), BuildOptions())

(the resolver reads the time from its clock and sets its timers on the channel, so both get
the same fake clock).

A host that is not in the table fails like NXDOMAIN. Set `dns.gate = asyncio.Event()` to
hold every lookup until the test sets it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["FakeDns", "FakeDnsLookup", "NotFoundError"]


class NotFoundError(Exception):
    """Stands in for NXDOMAIN."""


@dataclass
class FakeDns:
    hosts: dict[str, Sequence[str] | Exception] = field(default_factory=dict)
    txt: dict[str, Sequence[str] | Exception] = field(default_factory=dict)
    # ("host" | "txt", name, nameserver) per lookup, in order.
    calls: list[tuple[str, str, tuple[str, int] | None]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    opened: int = 0
    closed: int = 0

    def factory(self, nameserver: tuple[str, int] | None) -> FakeDnsLookup:
        self.opened += 1
        return FakeDnsLookup(self, nameserver)

    def host_lookups(self, name: str | None = None) -> int:
        return sum(1 for kind, n, _ in self.calls if kind == "host" and name in (None, n))

    def txt_lookups(self, name: str | None = None) -> int:
        return sum(1 for kind, n, _ in self.calls if kind == "txt" and name in (None, n))


class FakeDnsLookup:
    def __init__(self, dns: FakeDns, nameserver: tuple[str, int] | None) -> None:
        self._dns = dns
        self.nameserver = nameserver

    async def _answer(
        self, kind: str, table: dict[str, Sequence[str] | Exception], name: str
    ) -> Sequence[str]:
        self._dns.calls.append((kind, name, self.nameserver))
        if self._dns.gate is not None:
            await self._dns.gate.wait()
        answer = table.get(name)
        if answer is None:
            raise NotFoundError(f"{name}: NXDOMAIN")
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    async def lookup_host(self, host: str) -> Sequence[str]:
        return await self._answer("host", self._dns.hosts, host)

    async def lookup_txt(self, name: str) -> Sequence[str]:
        return await self._answer("txt", self._dns.txt, name)

    async def aclose(self) -> None:
        self._dns.closed += 1

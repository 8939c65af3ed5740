"""The interop matrix: every case of grpc_lite's interop client against every peer server,
over plaintext and TLS.

``python -m tests.peers.matrix`` builds and starts each server in turn, runs every case and
prints the matrix as a Markdown table (the README shows it). tests/e2e/interop/test_matrix.py
runs the same thing, one test per server and transport.

A case a server cannot run (``UNSUPPORTED`` in its peer module) is still run: the matrix says
"unsupported" with the reason, and the test checks that it really fails there (so a server
that gains the feature shows up, and nothing is silently dropped).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from grpc_lite.interop.client import CASES, CaseResult, Settings, run_cases
from tests.peers._base import PeerProcess, TlsFiles, make_tls_files

#: Peer modules under tests/peers, in the matrix's column order.
PEER_MODULES = ("grpcio", "go", "java", "node")


def peer_modules() -> list[ModuleType]:
    return [importlib.import_module(f"tests.peers.{name}") for name in PEER_MODULES]


def client_settings(peer: PeerProcess, tls: TlsFiles | None) -> Settings:
    settings = Settings(server_host="127.0.0.1", server_port=peer.port)
    if tls is not None:
        settings.use_tls = True
        settings.use_test_ca = True
        settings.ca_file = str(tls.ca)
        settings.server_host_override = tls.server_name
    return settings


@dataclass(frozen=True)
class Column:
    """One server over one transport: its results and what it cannot do."""

    peer: str
    version: str
    tls: bool
    results: dict[str, CaseResult]
    unsupported: dict[str, str]

    @property
    def title(self) -> str:
        return f"{self.peer} {self.version} {'TLS' if self.tls else 'plaintext'}"

    def problems(self) -> list[str]:
        """Cases that did not do what the matrix expects (pass, or fail where unsupported)."""
        wrong = []
        for name, result in self.results.items():
            if name in self.unsupported:
                if result.passed:
                    wrong.append(
                        f"{name}: listed as unsupported ({self.unsupported[name]}) "
                        "but it passed: take it off the list"
                    )
            elif not result.passed:
                wrong.append(f"{name}: {result.detail}")
        return wrong

    def cell(self, name: str) -> str:
        result = self.results[name]
        if name in self.unsupported:
            return "unsupported" if not result.passed else "**passes (listed unsupported)**"
        return "pass" if result.passed else "**FAIL**"


async def run_column(module: ModuleType, tls: TlsFiles | None) -> Column:
    peer = await asyncio.to_thread(module.start, tls)
    try:
        results = await run_cases(client_settings(peer, tls), list(CASES))
    finally:
        await asyncio.to_thread(peer.stop)
    return Column(
        module.NAME,
        module.VERSION,
        tls is not None,
        {r.name: r for r in results},
        dict(module.UNSUPPORTED),
    )


def markdown(columns: list[Column]) -> str:
    lines = [
        "| case | " + " | ".join(c.title for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name in CASES:
        lines.append(f"| {name} | " + " | ".join(c.cell(name) for c in columns) + " |")
    reasons = {
        (c.peer, name): reason
        for c in columns
        for name, reason in c.unsupported.items()
        if name in CASES
    }
    if reasons:
        lines.append("")
        lines.append("Unsupported, and why:")
        lines += [f"- {peer}, {name}: {reason}" for (peer, name), reason in sorted(reasons.items())]
    return "\n".join(lines)


def main() -> int:
    modules = peer_modules()
    for module in modules:
        module.build()
    columns = []
    with tempfile.TemporaryDirectory() as tmp:
        tls_files = make_tls_files(Path(tmp))
        for module in modules:
            for tls in (None, tls_files):
                columns.append(asyncio.run(run_column(module, tls)))
    print(markdown(columns))
    problems = [f"{c.title}: {p}" for c in columns for p in c.problems()]
    for problem in problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

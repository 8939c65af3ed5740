"""A real DNS server for tests: dnsmasq on 127.0.0.1 at a free port (CONFORMANCE [D]).

dnsmasq serves names from a hosts file we write (``--addn-hosts``, re-read on SIGHUP) and a
TXT ``_grpc_config.svc.test`` record selecting round_robin, and logs every query so that
tests can count them. :func:`start_dnsmasq` is a context manager; a test module wraps it in a
fixture (see ``tests/e2e/control_plane/conftest.py``).

Not collected (no ``test_`` prefix). Needs the ``dnsmasq`` binary (Debian package
``dnsmasq-base``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DNSMASQ",
    "DNS_SERVICE_CONFIG",
    "DNS_SERVICE_NAME",
    "Dnsmasq",
    "free_udp_tcp_port",
    "start_dnsmasq",
]

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None
)

#: The name served from the hosts file, and the service config its TXT record carries.
DNS_SERVICE_NAME = "svc.test"
DNS_SERVICE_CONFIG: dict[str, object] = {"loadBalancingConfig": [{"round_robin": {}}]}

_START_TIMEOUT = 10.0


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port")


@dataclass
class Dnsmasq:
    """A running dnsmasq: ``port`` to ask, the hosts file it serves and its query log."""

    port: int
    hosts_file: Path
    log_file: Path
    proc: subprocess.Popen[bytes]

    def set_hosts(self, name: str, ips: Sequence[str]) -> None:
        """Rewrite the hosts file so that ``name`` has exactly ``ips``; SIGHUP re-reads it."""
        self.hosts_file.write_text("".join(f"{ip} {name}\n" for ip in ips))
        self.proc.send_signal(signal.SIGHUP)

    def queries(self, qtype: str, name: str) -> int:
        """How many ``qtype name`` queries dnsmasq logged."""
        return self._log().count(f"query[{qtype}] {name} from")

    def all_queries(self) -> int:
        return self._log().count("query[")

    def _log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def _wait_sync(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def start_dnsmasq(
    directory: Path,
    hosts: Sequence[str] = ("127.0.0.1", "127.0.0.2", "127.0.0.3"),
    *,
    name: str = DNS_SERVICE_NAME,
    service_config: dict[str, object] | None = None,
) -> Iterator[Dnsmasq]:
    """Run dnsmasq serving ``name`` -> ``hosts`` and a TXT ``_grpc_config.<name>`` record
    with ``service_config`` (default :data:`DNS_SERVICE_CONFIG`); stopped on exit.

    Raises RuntimeError when dnsmasq is not installed or exits at start.
    """
    if DNSMASQ is None:
        raise RuntimeError("dnsmasq not installed (Debian package dnsmasq-base)")
    config = DNS_SERVICE_CONFIG if service_config is None else service_config
    hosts_file = directory / "hosts"
    hosts_file.write_text("".join(f"{ip} {name}\n" for ip in hosts))
    log = directory / "dnsmasq.log"
    # dnsmasq splits a --txt-record value into character-strings at commas (and drops
    # them); the config is written without commas except for that one split, so the record
    # carries two strings that the resolver must concatenate (A2).
    compact = json.dumps(config, separators=(",", ":"))
    if "," in compact:
        raise ValueError("the TXT service config must not contain commas")
    txt = 'grpc_config=[{"serviceConfig":' + "," + compact + "}]"
    port = free_udp_tcp_port()
    args = [
        DNSMASQ,
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        f"--addn-hosts={hosts_file}",
        f"--txt-record=_grpc_config.{name},{txt}",
        # Authoritative for .test: unknown names get NXDOMAIN rather than REFUSED.
        "--local=/test/",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--log-queries",
        f"--log-facility={log}",
        f"--pid-file={directory / 'dnsmasq.pid'}",
    ]
    if os.geteuid() == 0:
        args.append("--user=root")  # so it can keep writing the log in the directory
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Dnsmasq(port=port, hosts_file=hosts_file, log_file=log, proc=proc)
    try:
        _wait_sync(
            lambda: proc.poll() is not None or (log.exists() and "read " in log.read_text()),
            "dnsmasq to start",
        )
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"dnsmasq exited with {proc.returncode}: {stderr}")
        yield server
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()

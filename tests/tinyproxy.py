"""A real HTTP CONNECT proxy for tests: tinyproxy on 127.0.0.1 at a free port (gRFC A1).

:func:`start_tinyproxy` writes a config into a test's directory (``Port``, ``Listen
127.0.0.1``, ``Allow 127.0.0.1``, one ``ConnectPort`` per backend port, ``BasicAuth`` when
asked), runs ``tinyproxy -d -c CONF`` in the foreground with its log (LogLevel Connect) in a
file, waits until it accepts connections, and stops it on exit. ``Tinyproxy.connects()``
reads the CONNECT requests it logged, so a test can tell that a call went through it.

Not collected (no ``test_`` prefix). Needs the ``tinyproxy`` binary (Debian package
``tinyproxy-bin``; ``.ci/run`` installs it); without it the tests fail saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["TINYPROXY", "Tinyproxy", "free_port", "start_tinyproxy"]

TINYPROXY = shutil.which("tinyproxy") or (
    "/usr/bin/tinyproxy" if os.path.exists("/usr/bin/tinyproxy") else None
)

_START_TIMEOUT = 10.0
_REQUEST = re.compile(r"Request \(file descriptor \d+\): CONNECT (\S+) HTTP/1\.[01]")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tinyproxy:
    """A running tinyproxy: ``address`` ("127.0.0.1:PORT") and its log."""

    port: int
    log_file: Path
    proc: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def connects(self) -> list[str]:
        """The ``host:port`` of every CONNECT request it received, in order."""
        return _REQUEST.findall(self.log())

    def established(self) -> int:
        """How many tunnels it opened to a backend."""
        return self.log().count("Established connection to host")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _require_binary() -> str:
    if TINYPROXY is None:
        pytest.fail(
            "tinyproxy is not installed: the HTTP CONNECT proxy tests need it "
            "(Debian package tinyproxy-bin: apt-get install tinyproxy-bin; .ci/run does this)"
        )
    return TINYPROXY


@contextmanager
def start_tinyproxy(
    directory: Path,
    connect_ports: Sequence[int],
    *,
    basic_auth: tuple[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Tinyproxy]:
    """Run tinyproxy until the block ends; CONNECT allowed only to ``connect_ports``."""
    binary = _require_binary()
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / f"tinyproxy-{port}.conf"
    log_file = directory / f"tinyproxy-{port}.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 30",
        "Allow 127.0.0.1",
        "MaxClients 50",
        "LogLevel Connect",
        "DisableViaHeader Yes",
        *(f"ConnectPort {p}" for p in connect_ports),
    ]
    if basic_auth is not None:
        lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
    conf.write_text("\n".join(lines) + "\n")
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [binary, "-d", "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    proxy = Tinyproxy(port=port, log_file=log_file, proc=proc)
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tinyproxy exited with {proc.returncode}:\n{proxy.log()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"tinyproxy did not start:\n{proxy.log()}") from None
                time.sleep(0.02)
        yield proxy
    finally:
        proxy.stop()

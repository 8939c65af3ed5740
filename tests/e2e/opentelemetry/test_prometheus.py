"""``grpc-lite watch --prometheus-port``: the channel's metrics on a Prometheus endpoint."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.resilience._util import UNARY, start_flaky
from tests.servers.harness import ServerFactory

REPO = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:
        text: str = response.read().decode()
        return text


def test_watch_serves_prometheus_metrics(grpc_server_factory: ServerFactory) -> None:
    server = start_flaky(grpc_server_factory)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grpc_lite",
            "watch",
            server.address,
            "--call",
            UNARY,
            "--interval",
            "0.1",
            "--duration",
            "30",
            "--prometheus-port",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("metrics for Prometheus: http://127.0.0.1:"), line
        url = line.split(": ", 1)[1].strip()
        target = f'grpc_target="dns:///{server.address}"'
        wanted = [
            'grpc_client_attempt_started_total{grpc_method="resil.Flaky/Unary"',
            'grpc_client_call_duration_seconds_bucket{grpc_method="resil.Flaky/Unary"',
            "grpc_client_attempt_rcvd_total_compressed_message_size_bytes_count{",
            'grpc_status="OK"',
            f"grpc_subchannel_open_connections{{{target}",
            f"grpc_subchannel_connection_attempts_succeeded_total{{{target}",
            f"grpc_lb_pick_first_connection_attempts_succeeded_total{{{target}",
        ]
        deadline = time.monotonic() + 20
        text = ""
        while time.monotonic() < deadline:
            text = scrape(url)
            if all(w in text for w in wanted):
                break
            time.sleep(0.1)
        assert [w for w in wanted if w not in text] == []
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

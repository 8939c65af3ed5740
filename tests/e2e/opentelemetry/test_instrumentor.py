"""GrpcLiteInstrumentor: the opentelemetry_instrumentor entry point, instrument() and
uninstrument(), and ``opentelemetry-instrument`` instrumenting an unchanged program."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import grpc_lite
from grpc_lite import _observability
from grpc_lite.opentelemetry import GrpcLiteInstrumentor
from tests.e2e.opentelemetry._util import Telemetry
from tests.e2e.resilience._util import UNARY, start_flaky
from tests.servers.harness import ServerFactory

REPO = Path(__file__).resolve().parents[3]


def test_entry_point_is_registered() -> None:
    """``pip install -e .`` registers grpc_lite under opentelemetry_instrumentor."""
    found = {e.name: e for e in entry_points(group="opentelemetry_instrumentor")}
    assert found["grpc_lite"].value == "grpc_lite.opentelemetry:GrpcLiteInstrumentor"
    assert found["grpc_lite"].load() is GrpcLiteInstrumentor
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

    assert issubclass(GrpcLiteInstrumentor, BaseInstrumentor)
    assert list(GrpcLiteInstrumentor().instrumentation_dependencies()) == ["grpc-lite"]


@pytest.mark.integration
async def test_instrument_and_uninstrument(
    grpc_server_factory: ServerFactory, telemetry: Telemetry
) -> None:
    server = start_flaky(grpc_server_factory)
    instrumentor = GrpcLiteInstrumentor()
    instrumentor.instrument(
        meter_provider=telemetry.meter_provider, tracer_provider=telemetry.tracer_provider
    )
    try:
        assert instrumentor.plugin is not None
        assert _observability.global_plugins() == (instrumentor.plugin,)
        async with grpc_lite.insecure_channel(server.address) as ch:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
    finally:
        instrumentor.uninstrument()
    assert _observability.global_plugins() == ()
    async with grpc_lite.insecure_channel(server.address) as ch:
        await ch.unary_unary(UNARY)(b"x", timeout=5)
    [started] = telemetry.points("grpc.client.attempt.started")
    assert started.value == 1
    assert sorted(s.name for s in telemetry.spans()) == [
        "Attempt.resil.Flaky.Unary",
        "Sent.resil.Flaky.Unary",
    ]


APP = textwrap.dedent(
    """
    import asyncio
    import grpc_lite
    from grpc_lite.testing import Backend, helloworld_pb2

    async def main():
        async with Backend() as backend:
            async with grpc_lite.insecure_channel(backend.address) as ch:
                say = ch.unary_unary("/helloworld.Greeter/SayHello")
                request = helloworld_pb2.HelloRequest(name="auto").SerializeToString()
                print("reply:", await say(request, timeout=5))

    asyncio.run(main())
    """
)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_opentelemetry_instrument_needs_no_code_change(tmp_path: Path) -> None:
    """``opentelemetry-instrument python app.py`` on a program that knows nothing of
    OpenTelemetry: its call's spans and metrics reach the console exporters."""
    app = tmp_path / "app.py"
    app.write_text(APP)
    command = Path(sys.executable).parent / "opentelemetry-instrument"
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "grpc-lite-test",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "",
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [str(command), sys.executable, str(app)],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "reply: b'" in out
    assert '"name": "Sent.helloworld.Greeter.SayHello"' in out
    assert '"name": "Attempt.helloworld.Greeter.SayHello"' in out
    assert '"name": "grpc.client.call.duration"' in out
    assert '"grpc.method": "helloworld.Greeter/SayHello"' in out

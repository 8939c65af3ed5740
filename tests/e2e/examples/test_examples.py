"""The README's first command runs: examples/hello.py exercises every call kind."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.integration
def test_hello_example_runs() -> None:
    """examples/hello.py starts its server, makes all four call kinds and ends OK."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "hello.py")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "unary-unary:   Hello grpc_lite #0" in out
    assert out.count("unary-stream:") == 3
    assert "stream-unary:  Hello a, b, c #0" in out
    assert out.count("stream-stream:") == 3
    assert "status:        StatusCode.OK" in out

"""The generated protobuf modules are up to date and keep out of the default pool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GENERATED_DIRS = (Path("grpc_lite/_proto"), Path("tests/protos"))
HAND_WRITTEN = {Path("grpc_lite/_proto/__init__.py")}


def _committed_files() -> set[Path]:
    found: set[Path] = set()
    for rel_dir in GENERATED_DIRS:
        for path in (REPO / rel_dir).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(path.relative_to(REPO))
    return found - HAND_WRITTEN


def test_generated_protos_are_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    generated = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    committed = _committed_files()
    assert generated - committed == set(), "missing: run scripts/gen_protos.py"
    assert committed - generated == set(), "stale extra files: run scripts/gen_protos.py"
    stale = sorted(
        str(rel) for rel in generated if (tmp_path / rel).read_bytes() != (REPO / rel).read_bytes()
    )
    assert stale == [], f"stale generated files (run scripts/gen_protos.py): {stale}"


_HYGIENE = """
from google.protobuf import descriptor_pool
from grpc_lite._proto import (
    health_pb2, helloworld_pb2, reflection_v1_pb2, reflection_v1alpha_pb2, testing_pb2,
)
leaked = []
for name in [
    "grpc.health.v1.HealthCheckRequest", "helloworld.HelloRequest",
    "grpc.testing.SimpleRequest", "grpc.reflection.v1.ServerReflectionRequest",
    "grpc.reflection.v1alpha.ServerReflectionRequest",
]:
    try:
        descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError:
        continue
    leaked.append(name)
for file in ["grpc/health/v1/health.proto", "helloworld/helloworld.proto"]:
    try:
        descriptor_pool.Default().FindFileByName(file)
    except KeyError:
        continue
    leaked.append(file)
assert not leaked, leaked
print("clean")
"""


def test_private_protos_stay_out_of_default_pool() -> None:
    # A fresh interpreter: this process may already hold the tests' default-pool modules.
    result = subprocess.run(
        [sys.executable, "-c", _HYGIENE], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


_LITE_IMPORTS = """
from grpc_lite._proto import health_pb2 as lite_health, helloworld_pb2 as lite_hello
from grpc_lite._proto import testing_pb2 as lite_testing
"""
_USER_IMPORTS = """
from tests.protos.helloworld import helloworld_pb2 as user_hello
from tests.protos.grpc.testing import messages_pb2 as user_messages
from grpc_health.v1 import health_pb2 as grpcio_health
from grpc_reflection.v1alpha import reflection_pb2
"""
_COEXIST = """
assert lite_hello.HelloRequest is not user_hello.HelloRequest
wire = lite_hello.HelloRequest(name="x").SerializeToString()
assert user_hello.HelloRequest.FromString(wire).name == "x"
wire = grpcio_health.HealthCheckResponse(status=2).SerializeToString()
assert lite_health.HealthCheckResponse.FromString(wire).status == 2
wire = user_messages.SimpleRequest(response_size=7).SerializeToString()
assert lite_testing.SimpleRequest.FromString(wire).response_size == 7
print("ok")
"""


@pytest.mark.parametrize("lite_first", [True, False], ids=["lite-first", "user-first"])
def test_private_and_default_pool_modules_coexist(lite_first: bool) -> None:
    imports = [_LITE_IMPORTS, _USER_IMPORTS]
    if not lite_first:
        imports.reverse()
    code = "".join(imports) + _COEXIST
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_private_modules_expose_descriptors_and_classes() -> None:
    from grpc_lite._proto import health_pb2, helloworld_pb2, testing_pb2

    greeter = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"]
    assert greeter.methods_by_name["SayHello"].full_name == "helloworld.Greeter.SayHello"
    assert [m.name for m in testing_pb2.DESCRIPTOR.services_by_name["TestService"].methods] == [
        "EmptyCall",
        "UnaryCall",
        "CacheableUnaryCall",
        "StreamingOutputCall",
        "StreamingInputCall",
        "FullDuplexCall",
        "HalfDuplexCall",
        "UnimplementedCall",
    ]
    assert health_pb2.HealthCheckResponse.SERVICE_UNKNOWN == 3
    assert testing_pb2.COMPRESSABLE == 0
    request = testing_pb2.SimpleRequest(response_size=1, payload=testing_pb2.Payload(body=b"\0"))
    assert testing_pb2.SimpleRequest.FromString(request.SerializeToString()) == request

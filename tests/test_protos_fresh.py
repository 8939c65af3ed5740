"""The generated protobuf modules are up to date and keep out of the default pool."""

from __future__ import annotations

import importlib.metadata
import shutil
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


def _locked_version(package: str) -> str:
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and name.strip().lower() == package:
            return version.split(";")[0].strip()
    raise AssertionError(f"{package} is not pinned in constraints.txt")


def test_protoc_is_the_locked_one() -> None:
    """The stubs depend on grpcio-tools' version (protoc, the *_pb2_grpc.py version check):
    the suite runs with the locked one, so the freshness test below means the same on every
    machine. A different version here means the environment was not installed from the lock."""
    installed = importlib.metadata.version("grpcio-tools")
    locked = _locked_version("grpcio-tools")
    assert installed == locked, (
        f"grpcio-tools {installed} is installed but constraints.txt pins {locked}: "
        "install with `python -m pip install -c constraints.txt -e .[...]` (scripts/test does), "
        "or upgrade the lock and the stubs together with scripts/lock"
    )


def _generate(out: Path, proto_dir: Path = REPO / "proto") -> set[Path]:
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "gen_protos.py"),
            "--out",
            str(out),
            "--proto-dir",
            str(proto_dir),
        ],
        check=True,
        capture_output=True,
    )
    return {p.relative_to(out) for p in out.rglob("*") if p.is_file()}


def _stale(out: Path, generated: set[Path]) -> list[str]:
    return sorted(
        str(rel) for rel in generated if (out / rel).read_bytes() != (REPO / rel).read_bytes()
    )


def test_generated_protos_are_fresh(tmp_path: Path) -> None:
    generated = _generate(tmp_path)
    committed = _committed_files()
    assert generated - committed == set(), "missing: run scripts/gen_protos.py"
    assert committed - generated == set(), "stale extra files: run scripts/gen_protos.py"
    stale = _stale(tmp_path, generated)
    assert stale == [], f"stale generated files (run scripts/gen_protos.py): {stale}"


def test_freshness_check_sees_a_changed_proto(tmp_path: Path) -> None:
    """The check above compares against what the .proto files say today: a new field in
    helloworld.proto makes both generated helloworld modules stale."""
    protos = tmp_path / "proto"
    shutil.copytree(REPO / "proto", protos)
    hello = protos / "helloworld" / "helloworld.proto"
    text = hello.read_text()
    assert "string name = 1;" in text
    hello.write_text(text.replace("string name = 1;", "string name = 1;\n  int32 extra = 99;"))
    out = tmp_path / "out"
    stale = _stale(out, _generate(out, protos))
    assert "grpc_lite/_proto/helloworld_pb2.py" in stale
    assert "tests/protos/helloworld/helloworld_pb2.py" in stale


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

"""The method under load: its descriptor from server reflection, a .proto or a protoset.

Whatever the source, the result is a :class:`MethodInfo` holding a serialized
``FileDescriptorSet`` (the method's file and everything it imports), so worker processes
rebuild the same message classes without asking the server again.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from .._cli_shared import CliError, Reflection

__all__ = ["MethodInfo", "from_protoset_bytes", "parse_call", "protoc_command"]


def parse_call(text: str) -> tuple[str, str]:
    """``pkg.Service/Method``, ``pkg.Service.Method`` or ``/pkg.Service/Method``."""
    call = text.strip().lstrip("/")
    if "/" in call:
        service, _, method = call.partition("/")
    else:
        service, _, method = call.rpartition(".")
    if not service or not method or "/" in method or " " in call:
        raise CliError(f"--call must look like package.Service/Method, got {text!r}")
    return service, method


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """A method and the files that describe it (picklable)."""

    service: str
    method: str
    descriptor_set: bytes  # a serialized FileDescriptorSet

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"

    def descriptor(self) -> Any:
        """The MethodDescriptor, in a pool of its own."""
        return from_protoset_bytes(self.descriptor_set, self.service, self.method, "")[1]

    def kind(self) -> str:
        d = self.descriptor()
        return _kind(d)

    def message_classes(self) -> tuple[Any, Any]:
        d = self.descriptor()
        return (
            message_factory.GetMessageClass(d.input_type),
            message_factory.GetMessageClass(d.output_type),
        )


def _kind(method: Any) -> str:
    if method.client_streaming and method.server_streaming:
        return "bidi"
    if method.client_streaming:
        return "client-streaming"
    if method.server_streaming:
        return "server-streaming"
    return "unary"


def _file_set(method: Any) -> bytes:
    """The method's file and its transitive imports as a FileDescriptorSet."""
    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(file: Any) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dep in file.dependencies:
            add(dep)
        proto = out.file.add()
        file.CopyToProto(proto)

    add(method.containing_service.file)
    return bytes(out.SerializeToString())


def _find(pool: Any, service: str, method: str, source: str) -> Any:
    try:
        svc = pool.FindServiceByName(service)
    except KeyError:
        where = f" in {source}" if source else ""
        raise CliError(f"service {service!r} not found{where}") from None
    found = svc.methods_by_name.get(method)
    if found is None:
        raise CliError(f"service {service!r} has no method {method!r}")
    return found


def from_protoset_bytes(data: bytes, service: str, method: str, source: str) -> tuple[bytes, Any]:
    """Load a FileDescriptorSet and find the method in it."""
    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    except Exception:
        raise CliError(f"{source or 'protoset'} is not a FileDescriptorSet") from None
    pool = descriptor_pool.DescriptorPool()
    by_name = {f.name: f for f in fds.file}
    added: set[str] = set()

    def add(proto: descriptor_pb2.FileDescriptorProto, stack: tuple[str, ...]) -> None:
        if proto.name in added:
            return
        for dep in proto.dependency:
            if dep in stack:
                raise CliError(f"{source}: import cycle through {dep!r}")
            if dep in by_name:
                add(by_name[dep], (*stack, dep))
            elif dep not in added:
                raise CliError(f"{source}: {proto.name} imports {dep}, which is not in the set")
        try:
            pool.Add(proto)
        except Exception as exc:  # TypeError / ValueError from the pool
            raise CliError(f"{source}: cannot load {proto.name}: {exc}") from None
        added.add(proto.name)

    for proto in fds.file:
        add(proto, (proto.name,))
    found = _find(pool, service, method, source)
    return data, found


def from_protoset(path: str, service: str, method: str) -> MethodInfo:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CliError(f"cannot read --protoset {path!r}: {exc.strerror}") from None
    _, found = from_protoset_bytes(data, service, method, f"protoset {path!r}")
    return MethodInfo(service, method, _file_set(found))


def protoc_command() -> list[str] | None:
    """``protoc`` on PATH, else grpcio-tools' bundled one (run as a program), else None."""
    protoc = shutil.which("protoc")
    if protoc:
        return [protoc]
    if importlib.util.find_spec("grpc_tools") is not None:
        return [sys.executable, "-m", "grpc_tools.protoc"]
    return None


def from_proto(path: str, import_paths: list[str], service: str, method: str) -> MethodInfo:
    # As ghz: the file is found as given, or relative to an import path.
    candidates = [path] + [os.path.join(p, path) for p in import_paths]
    found_path = next((c for c in candidates if os.path.isfile(c)), None)
    if found_path is None:
        raise CliError(f"cannot read --proto {path!r}: no such file")
    try:
        with open(found_path, "rb"):
            pass
    except OSError as exc:
        raise CliError(f"cannot read --proto {path!r}: {exc.strerror}") from None
    path = found_path
    command = protoc_command()
    if command is None:
        raise CliError(
            "--proto needs a protobuf compiler: install protoc (Debian: protobuf-compiler) "
            "or grpcio-tools, or use --protoset or server reflection"
        )
    proto_dir = os.path.dirname(os.path.abspath(path))
    includes = [*import_paths, proto_dir, os.getcwd()]
    with tempfile.TemporaryDirectory(prefix="grpc_lite_load_") as tmp:
        out = os.path.join(tmp, "set.pb")
        argv = [
            *command,
            *(f"-I{os.path.abspath(p)}" for p in includes),
            f"--descriptor_set_out={out}",
            "--include_imports",
            os.path.abspath(path),
        ]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CliError(f"cannot run the protobuf compiler: {exc}") from None
        if done.returncode != 0:
            lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
            first = lines[0] if lines else f"exit status {done.returncode}"
            raise CliError(f"cannot compile --proto {path!r}: {first}")
        with open(out, "rb") as f:
            data = f.read()
    _, found = from_protoset_bytes(data, service, method, f"proto {path!r}")
    return MethodInfo(service, method, _file_set(found))


async def from_reflection(channel: Any, service: str, method: str, wait_s: float) -> MethodInfo:
    try:
        found = await Reflection(channel, wait_s).method(service, method)
    except CliError as exc:
        if str(exc).startswith("reflection: ") and service in str(exc):
            raise CliError(f"service {service!r} not found by server reflection") from None
        raise
    return MethodInfo(service, method, _file_set(found))

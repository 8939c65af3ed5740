"""docs/architecture.md "Layers": modules import only downward, and the public surface is exact."""

import ast
from pathlib import Path

import grpc_lite

PACKAGE = Path(grpc_lite.__file__).parent

# Module (dotted, relative to grpc_lite) -> layer.  A package entry covers its modules.
LAYERS: dict[str, int] = {
    "status": 0,
    "metadata": 0,
    "_observability": 0,  # plugin hooks (Protocols) and the global plugin registry
    "_clock": 0,
    "_serializer": 0,
    "_connectivity": 0,
    "_backoff": 0,
    "_snapshot": 0,
    "_codec": 1,
    "service_config": 1,
    "_retry": 1,
    "_options": 1,
    "_proxy": 1,
    "_credentials": 1,
    "_proto": 1,
    "_transport": 2,
    "resolver": 2,
    "balancer": 2,
    "_subchannel": 3,
    "_picker": 3,
    "health": 3,
    "_resolver_wrapper": 4,
    "_balancer_wrapper": 4,
    "_call": 5,
    "_attempts": 5,
    "_interceptors": 5,
    "_channel": 5,
    "__init__": 6,
    "__main__": 6,
    "_cli": 6,
    "_demo": 6,
    "_load": 6,  # grpc-lite load: beside _cli (it reuses its reflection client)
    "_stub": 6,
    "testing": 6,
    "interop": 7,  # the interop clients use only the public API (and the test protos)
    "contrib": 7,  # integrations with other tools (Locust): the public API only
    "opentelemetry": 6,  # a plugin on the hooks of _observability; the CLI's Prometheus endpoint
}

# Extension packages and the transport see the channel only through Protocols.
FORBIDDEN: dict[str, set[str]] = {
    "resolver": {"_transport", "_subchannel", "_channel", "_call", "balancer"},
    "balancer": {"_transport", "_subchannel", "_channel", "_call"},
    "_transport": {"_subchannel", "_channel", "_call", "resolver", "balancer"},
}


def _layer_key(module: str) -> str:
    return module.split(".")[0]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        out.append((".".join(parts), path))
    return out


def _imports(module: str, path: Path) -> set[str]:
    """grpc_lite-internal modules imported by ``module`` (relative to grpc_lite)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    if module == "__init__":
        base = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("grpc_lite."):
                    found.add(alias.name[len("grpc_lite.") :])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("grpc_lite."):
                    found.add(node.module[len("grpc_lite.") :])
                elif node.module == "grpc_lite":
                    found.update(a.name for a in node.names)
                continue
            anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = [*anchor, *(node.module.split(".") if node.module else [])]
            if node.module:
                found.add(".".join(target))
            else:
                found.update(".".join([*target, a.name]) for a in node.names)
    return {f for f in found if f}


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in the layer table."""
    missing = sorted({m for m, _ in _modules() if _layer_key(m) not in LAYERS})
    assert not missing, f"add these modules to LAYERS: {missing}"


def test_imports_only_go_downward() -> None:
    """docs/architecture.md: import only downward (same layer allowed), plus the hard bans."""
    problems = []
    for module, path in _modules():
        key = _layer_key(module)
        layer = LAYERS[key]
        for imported in _imports(module, path):
            ikey = _layer_key(imported)
            if ikey == key or ikey not in LAYERS:
                continue
            if LAYERS[ikey] > layer:
                problems.append(f"{module} (L{layer}) imports {imported} (L{LAYERS[ikey]})")
            if ikey in FORBIDDEN.get(key, set()):
                problems.append(f"{module} must not import {imported}")
    assert not problems, "\n".join(problems)


def test_no_grpcio_in_the_package() -> None:
    """grpcio is a test peer only: nothing under grpc_lite/ imports it."""
    offenders = []
    for module, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{module}: {n}" for n in names if n.split(".")[0] in ("grpc", "grpc_tools")
            ]
    assert not offenders


def test_citations_are_public() -> None:
    """Comments and docstrings cite what a reader can open (gRFCs, RFC 9113, grpc/grpc doc/,
    grpc-go), never the private conformance catalogue outside the repository (issue 16)."""
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py*"))
        if path.suffix in (".py", ".pyi")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "CONFORMANCE" in line or "../shared" in line
    ]
    assert not offenders, "\n".join(offenders)


def test_all_is_sorted_and_exact() -> None:
    """The public surface is __all__, sorted, and every name exists."""
    names = grpc_lite.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert hasattr(grpc_lite, name), name
    public = {
        n
        for n in vars(grpc_lite)
        if not n.startswith("_")
        and n not in {"ssl", "Sequence", "Any", "annotations"}
        and not isinstance(getattr(grpc_lite, n), type(grpc_lite))
    }
    assert public == set(names), public ^ set(names)


# The extension packages' public names, exactly (new names are added here on purpose).
BALANCER_ALL = [
    "Balancer",
    "BalancerBuilder",
    "BalancerChannel",
    "BalancerState",
    "ChannelState",
    "ChildBalancers",
    "ErrorPicker",
    "FixedResultPicker",
    "GracefulSwitchBalancer",
    "NoSubchannelAvailable",
    "PickFirstBuilder",
    "PickInfo",
    "PickResult",
    "Picker",
    "QueuePicker",
    "RoundRobinBuilder",
    "Subchannel",
    "SubchannelState",
    "TimerHandle",
    "aggregate_state",
    "get",
    "register",
    "unregister_for_testing",
]
RESOLVER_ALL = [
    "Address",
    "AddressKey",
    "BuildOptions",
    "DnsResolverBuilder",
    "Endpoint",
    "EndpointKey",
    "ManualResolver",
    "Resolver",
    "ResolverBuilder",
    "ResolverChannel",
    "ResolverState",
    "Target",
    "address_key",
    "default_authority",
    "endpoint_key",
    "get",
    "get_default_scheme",
    "parse_target",
    "register",
    "register_builtins",
    "set_default_scheme",
    "unregister_for_testing",
]


def test_extension_packages_all_is_exact() -> None:
    """grpc_lite.balancer and grpc_lite.resolver export exactly these names, all present."""
    from grpc_lite import balancer, resolver

    for package, expected in ((balancer, BALANCER_ALL), (resolver, RESOLVER_ALL)):
        assert package.__all__ == expected, package.__name__
        for name in expected:
            assert hasattr(package, name), f"{package.__name__}.{name}"


def test_api_md_names_exist() -> None:
    """The names the README promises at the top level (grpc.aio's)."""
    for name in (
        "insecure_channel",
        "secure_channel",
        "ssl_channel_credentials",
        "ChannelCredentials",
        "Channel",
        "RpcError",
        "AioRpcError",
        "UsageError",
        "StatusCode",
        "ChannelConnectivity",
        "ConnectivityState",
        "Compression",
        "EOF",
        "Metadata",
        "Stub",
    ):
        assert name in grpc_lite.__all__, name
    assert grpc_lite.AioRpcError is grpc_lite.RpcError
    assert issubclass(grpc_lite.UsageError, RuntimeError)
    assert [s.name for s in grpc_lite.ChannelConnectivity] == [
        "IDLE",
        "CONNECTING",
        "READY",
        "TRANSIENT_FAILURE",
        "SHUTDOWN",
    ]
    assert [int(c) for c in grpc_lite.StatusCode] == list(range(17))

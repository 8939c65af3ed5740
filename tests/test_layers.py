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
    "_deadlines": 0,  # call deadlines grouped by method and timeout, one loop timer each
    "_serializer": 0,
    "_connectivity": 0,
    "_backoff": 0,
    "_snapshot": 0,
    "_hostport": 0,  # host:port parsing (Go's net.SplitHostPort), for the channel and resolvers
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
    "_target_plan": 4,  # the channel's resolver, authority, TLS name and proxy plan
    "_loop_guard": 1,  # the channel's event-loop binding and fork guard
    "_channel_report": 4,  # subchannel snapshots, plugins' debug_info(), trace events
    "_call_factories": 5,  # the channel's unary_unary & co. and its interceptor chain
    "_call_config": 5,  # a call's config: the config selector's, the method config, late
    "__init__": 6,
    "__main__": 6,
    "_cli": 6,
    "_demo": 6,
    "_load": 6,  # grpc-lite load: beside _cli (it shares _cli_shared's reflection client)
    "_cli_shared": 6,  # what the CLI's subcommands share (errors, reflection, Prometheus)
    "_stub": 6,
    "testing": 6,
    "interop": 7,  # the interop clients use only the public API (and the test protos)
    "contrib": 7,  # integrations with other tools (Locust): the public API only
    "opentelemetry": 6,  # a plugin on the hooks of _observability
    "xds": 6,  # xds:/// (gRFC A27/A74): a resolver and LB policies on the public plugin APIs
    "_prometheus": 6,  # the CLI's --prometheus-port endpoint, on the opentelemetry plugin
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


# Where an import statement sits: at module level (run on import), under
# ``if TYPE_CHECKING:`` (never run), or inside a function (run late, when called).
MODULE_LEVEL, TYPE_CHECKING_ONLY, IN_FUNCTION = "module", "type-checking", "function"


def _import_edges(module: str, path: Path) -> list[tuple[str, str]]:
    """``(imported module, where)`` for each grpc_lite-internal import of ``module``.

    Modules are dotted and relative to grpc_lite (``"__init__"`` is the package itself);
    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, else
    of ``pkg``.
    """
    modules = {m for m, _ in _modules()}
    is_package = path.name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    if module == "__init__":
        base = []
    edges: list[tuple[str, str]] = []

    def add(parts: list[str], names: list[str] | None, where: str) -> None:
        dotted = ".".join(parts)
        if names is None:
            edges.append((dotted or "__init__", where))
            return
        for name in names:
            sub = f"{dotted}.{name}" if dotted else name
            edges.append((sub if sub in modules else dotted or "__init__", where))

    def visit(nodes: list[ast.stmt], where: str) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "grpc_lite" or alias.name.startswith("grpc_lite."):
                        add(alias.name.split(".")[1:], None, where)
            elif isinstance(node, ast.ImportFrom):
                names = [a.name for a in node.names]
                if node.level == 0:
                    mod = node.module or ""
                    if mod == "grpc_lite" or mod.startswith("grpc_lite."):
                        add(mod.split(".")[1:], names, where)
                    continue
                anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                add([*anchor, *(node.module.split(".") if node.module else [])], names, where)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.body, TYPE_CHECKING_ONLY)
                visit(node.orelse, where)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(node.body, IN_FUNCTION)
            else:  # class bodies, if/try/with at module level: still run on import
                for field in ("body", "orelse", "finalbody", "handlers"):
                    block = getattr(node, field, None)
                    if isinstance(block, list):
                        visit(block, where)

    visit(ast.parse(path.read_text()).body, MODULE_LEVEL)
    return edges


def _imports(module: str, path: Path) -> set[str]:
    """grpc_lite-internal modules imported by ``module`` (relative to grpc_lite), anywhere."""
    return {target for target, _ in _import_edges(module, path)}


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


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), or a module
    that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _import_graph(*wheres: str) -> dict[str, set[str]]:
    """Module -> the grpc_lite modules it imports, through imports placed in ``wheres``."""
    graph: dict[str, set[str]] = {}
    for module, path in _modules():
        graph[module] = {
            target
            for target, where in _import_edges(module, path)
            if where in wheres and target != module
        }
    return graph


def test_no_import_cycles() -> None:
    """No cycle between grpc_lite modules through the imports that run on import.

    Imports under ``if TYPE_CHECKING:`` are left out (they never run: annotations may name
    a module's user, as ``testing/_context.py`` names ``Backend``).  Importing a package
    runs its ``__init__`` first; that edge is not counted either, since a package's facade
    importing its own modules is the point.
    """
    cycles = _cycles(_import_graph(MODULE_LEVEL))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_import_cycles_through_imports_in_functions() -> None:
    """No cycle either when the imports inside functions are counted (issue 16: "no import
    cycle between grpc_lite modules").

    An import inside a function defers an optional or heavy dependency (the CLI loads a
    subcommand's module when it runs it; the transport's tunnel, the xDS resolver's client)
    but it is still a dependency: a cycle through it means two modules that each need the
    other, which is the tangle the layer rule exists to prevent.  What both sides share
    moves down into a module of its own (``_cli_shared``, ``_transport._errors``).
    """
    cycles = _cycles(_import_graph(MODULE_LEVEL, IN_FUNCTION))
    assert not cycles, "import cycles (in-function imports counted): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def _private_owner(target: str) -> str | None:
    """The package a module is private to: ``balancer._api`` -> ``balancer``,
    ``_transport._stream`` -> ``_transport``; None for a module private to nothing smaller
    than grpc_lite itself (``_call``, ``_codec``, ``_transport``: the core's own, which any
    grpc_lite module may import, downward)."""
    parts = target.split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("_"):
            return ".".join(parts[:i])
    return None


def test_no_imports_of_another_packages_private_modules() -> None:
    """A package's underscore modules are its own: everyone else imports its facade
    (``from grpc_lite.balancer import PickResult``, not ``grpc_lite.balancer._api``).

    Every import counts here, including TYPE_CHECKING-only and in-function ones."""
    problems = []
    for module, path in _modules():
        for target, where in _import_edges(module, path):
            owner = _private_owner(target)
            if owner is None:
                continue
            if module == owner or module.startswith(owner + "."):
                continue
            problems.append(f"{module} imports {target} ({where}), private to {owner}/")
    assert not problems, "\n".join(sorted(set(problems)))


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
    "DroppedRpcError",
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
    "ConfigSelector",
    "DnsResolverBuilder",
    "Endpoint",
    "EndpointKey",
    "ManualResolver",
    "Resolver",
    "ResolverBuilder",
    "ResolverChannel",
    "ResolverState",
    "RpcConfig",
    "RpcInfo",
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


MAX_CLASS_LINES = 600


def test_no_class_is_longer_than_600_lines() -> None:
    """Issue 16: the largest class in grpc_lite/ is at most 600 lines (split a class that
    grows past it into collaborators, as Channel, Connection and AttemptRunner were)."""
    too_long = []
    for module, path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    too_long.append(f"{module}.{node.name}: {lines} lines")
    assert not too_long, too_long

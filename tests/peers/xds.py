"""The xDS test rig (``peers/xds``, a Go program of our own) and its Python driver.

One process holds a real management server (go-control-plane's snapshot cache serving ADS,
state of the world), N grpc-go ``grpc.testing.TestService`` backends named ``b0``, ``b1``, ...
(each answers ``UnaryCall`` with ``server_id`` and ``hostname`` = its name, sets a ``hostname``
header, honours the interop ``rpc-behavior`` header of grpc/grpc doc/xds-test-descriptions.md)
and a loopback HTTP+JSON control API this module drives. Its binary also holds grpc-go's own
xDS client (``xdsrig client``), a reference to compare grpc_lite with.

Use::

    rig = xds.start()                       # or the xds_rig fixture of tests/e2e/xds
    rig.set_snapshot(xds.simple_scenario("svc", ["b0", "b1"]))
    env = {"GRPC_XDS_BOOTSTRAP_CONFIG": rig.bootstrap_json()}
    ...
    rig.stop()

Scenario JSON (``set_snapshot``; every field optional unless said, unknown fields are an
error)::

    {"node_id": "...",                      # default: the rig's node id
     "listeners": [{"name": "svc",          # required
                    "route_config_name": "r1"          # RDS, or
                    "inline_route": {<route config>}}],
     "routes": [{"name": "r1",              # required
                 "virtual_hosts": [{"name": "vh0", "domains": ["*"],   # domains required
                                    "routes": [{"prefix": "" | "path": "/S/M",
                                                "cluster": "c1" | "weighted_clusters":
                                                [{"name": "c1", "weight": 3}]}]}]}],
     "clusters": [{"name": "c1", "eds_service_name": "e1",
                   "lb_policy": "ROUND_ROBIN" (default) | "MAGLEV" | "RING_HASH" | ...,
                   "max_requests": 100}],              # circuit breaker, DEFAULT priority
     "endpoints": [{"cluster_name": "e1",   # the cluster's eds_service_name, else its name
                    "localities": [{"region": "r", "zone": "z", "sub_zone": "s",
                                    "weight": 1 (default), "priority": 0 (default),
                                    "health": "HEALTHY" | "UNKNOWN" (default) | "UNHEALTHY"..,
                                    "backends": ["b0", "b1"],          # rig backends
                                    "addresses": ["127.0.0.1:PORT"],   # anything else
                                    "endpoints": [{"backend": "b2" | "address": "h:p",
                                                   "health": "...", "weight": 2}]}],
                    "drop_overloads": [{"category": "lb", "ppm": 500000}]}],
     "raw": [<raw resource>, ...],          # replace the built resource of the same
                                            # type and name, or are added
     "skip_consistency": false}

A raw resource is a protojson ``Any`` (``{"@type": "type.googleapis.com/envoy.config.
cluster.v3.Cluster", "name": "c1", "type": "EDS", "lbPolicy": "MAGLEV", ...}``) or
``{"type_url": URL, "name": NAME, "malformed": true}`` (the message with NAME followed by
bytes no protobuf parser accepts) or ``{..., "append_bytes_b64": "..."}`` (your bytes).

Each snapshot gets the next version ("1", "2", ...; never reused, even across ``reset()``)
for every type. Unless ``skip_consistency``, the snapshot is checked first: go-control-plane's
``Snapshot.Consistent()`` (the endpoints are exactly those the clusters name) plus the same
check for the route configurations the listeners' ``api_listener`` names.

ADS mode (``start(ads=True)``, the default): the cache answers a request only when it names
every resource of that type in the snapshot (go-control-plane's ADS rule), so a snapshot must
not hold listeners or clusters the client does not ask for, and a name the client asks for
that the snapshot lacks gets no answer (the client's does-not-exist timer fires).
``start(ads=False)``: every request is answered with the subset it names; a missing listener
or cluster is then absent from the answer: a client that had it deletes it at once (gRFC A27
State of the World), one that never had it waits for its does-not-exist timer (gRFC A57).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.peers._base import BUILD_DIR, PEERS_DIR, PeerError, run_build

NAME = "xdsrig"
VERSION = "go-control-plane v0.14.0, envoy v1.40.0, grpc-go v1.85.0"

#: The Go module (go.mod, go.sum, *.go).
SOURCE_DIR = PEERS_DIR / "xds"
BINARY = BUILD_DIR / "xdsrig"

#: The node id the rig sets snapshots for and ``bootstrap()`` puts in the bootstrap.
NODE_ID = "grpc-lite-xds-test"

#: Type URLs (gRFC A27) by their short names.
TYPE_URLS = {
    "LDS": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "RDS": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "CDS": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "EDS": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
}


def _newest_source_mtime() -> float:
    newest = 0.0
    for path in [SOURCE_DIR / "go.mod", SOURCE_DIR / "go.sum", *SOURCE_DIR.glob("*.go")]:
        newest = max(newest, path.stat().st_mtime)
    return newest


def up_to_date() -> bool:
    """The binary exists and is newer than go.mod, go.sum and every .go file of peers/xds."""
    return BINARY.exists() and BINARY.stat().st_mtime > _newest_source_mtime()


def build() -> None:
    """``go build`` the rig into BUILD_DIR unless the binary is up to date.

    ``-mod=readonly``: the committed go.sum decides every version; a go.mod that needs
    updating fails the build. A cold build (module downloads and compiling the Envoy protos)
    takes about a minute on two cores; a warm one a few seconds."""
    if up_to_date():
        return
    if shutil.which("go") is None:
        raise PeerError(f"building {NAME}: `go` is not on PATH (the rig needs Go >= 1.26)")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    partial = BINARY.with_name(f"{BINARY.name}.partial-{os.getpid()}")
    try:
        run_build(
            NAME,
            ["go", "build", "-mod=readonly", "-trimpath", "-o", str(partial), "."],
            cwd=SOURCE_DIR,
        )
        # Renamed into place: a concurrent start() never runs a half-written binary.
        partial.replace(BINARY)
    finally:
        partial.unlink(missing_ok=True)


class RigError(RuntimeError):
    """The rig refused a request; the message is the rig's own (it names the problem)."""


# The control API is on loopback: never through an http_proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Backend:
    """One rig backend, by name."""

    rig: XdsRig
    name: str

    @property
    def address(self) -> str:
        """``host:port``; the same across stop/start/blackhole."""
        return self.rig.backend_addresses[self.name]

    def _act(self, action: str) -> dict[str, Any]:
        result: dict[str, Any] = self.rig._call("POST", f"/backend/{self.name}/{action}")
        return result

    def stop(self) -> dict[str, Any]:
        """Stop serving: the listener and every connection close at once (refused from now)."""
        return self._act("stop")

    def start(self) -> dict[str, Any]:
        """Serve again on the same port (a no-op when serving)."""
        return self._act("start")

    def blackhole(self) -> dict[str, Any]:
        """Accept TCP connections on the port and never send a byte (no SETTINGS)."""
        return self._act("blackhole")

    def set_serving(self, serving: bool) -> dict[str, Any]:
        """The status its grpc.health.v1 Health service reports for the "" service."""
        return self._act("serving" if serving else "not_serving")

    def stats(self) -> dict[str, Any]:
        """This backend's entry of ``rig.backends()``."""
        stats: dict[str, Any] = self.rig.backends()[self.name]
        return stats


@dataclass
class XdsRig:
    """A running rig; ``stop()`` ends it (closing its stdin, then SIGTERM, then SIGKILL)."""

    process: subprocess.Popen[bytes]
    ads_address: str
    control_address: str
    backend_addresses: dict[str, str]
    node_id: str
    ads_mode: bool
    log: Path
    _stdin: IO[bytes] | None = field(default=None, repr=False)

    # -- control API -------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://{self.control_address}{path}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        try:
            with _OPENER.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                message = text
            raise RigError(f"{method} {path}: {exc.code}: {message}") from None

    def set_snapshot(self, scenario: Mapping[str, Any]) -> int:
        """Build ``scenario`` (see the module docstring) and set it; returns its version."""
        result = self._call("PUT", "/snapshot", dict(scenario))
        return int(result["version"])

    def put_raw(
        self,
        resources: Sequence[Mapping[str, Any]],
        *,
        node_id: str | None = None,
        skip_consistency: bool = False,
    ) -> int:
        """Set a snapshot of raw resources only (see the module docstring); its version."""
        body: dict[str, Any] = {
            "resources": [dict(r) for r in resources],
            "skip_consistency": skip_consistency,
        }
        if node_id is not None:
            body["node_id"] = node_id
        return int(self._call("PUT", "/raw", body)["version"])

    def events(self) -> dict[str, Any]:
        """``{"requests": [...], "responses": [...], "streams": {"opened", "closed",
        "active": [stream ids]}}``: every DiscoveryRequest since the last reset
        (``seq``, ``time`` (Unix s), ``stream_id``, ``type_url``, ``type`` (LDS/RDS/CDS/EDS),
        ``version_info``, ``response_nonce``, ``resource_names``, ``error_detail``
        (None or {"code", "message"}), ``node_id``) and every DiscoveryResponse sent
        (``seq``, ``time``, ``stream_id``, ``type_url``, ``type``, ``version_info``, ``nonce``,
        ``resource_names``); ``seq`` orders both lists together."""
        events: dict[str, Any] = self._call("GET", "/events")
        return events

    def requests(self, type_: str | None = None) -> list[dict[str, Any]]:
        """The recorded DiscoveryRequests, of one short type (``"CDS"``) if given."""
        requests: list[dict[str, Any]] = self.events()["requests"]
        return [r for r in requests if type_ is None or r["type"] == type_]

    def acked(self, type_: str, version: int | str) -> bool:
        """Whether a request ACKed ``version`` of ``type_``: it echoes the nonce of a
        response that carried that version, with that version and no error_detail."""
        events = self.events()
        nonces = {
            r["nonce"]
            for r in events["responses"]
            if r["type"] == type_ and r["version_info"] == str(version)
        }
        return any(
            r["type"] == type_
            and r["version_info"] == str(version)
            and r["response_nonce"] in nonces
            and r["error_detail"] is None
            for r in events["requests"]
        )

    def nacks(self, type_: str | None = None) -> list[dict[str, Any]]:
        """The requests that carried an error_detail (NACKs), of one type if given."""
        return [r for r in self.requests(type_) if r["error_detail"] is not None]

    def backends(self) -> dict[str, dict[str, Any]]:
        """Per backend: ``address``, ``mode`` (serving/stopped/blackhole), ``serving_status``,
        ``unary``, ``empty``, ``rpcs`` (both), ``in_flight``, ``max_in_flight``,
        ``blackhole_accepted`` (connections accepted while a blackhole)."""
        backends: dict[str, dict[str, Any]] = self._call("GET", "/backends")
        return backends

    def rpc_counts(self) -> dict[str, int]:
        """``{backend name: RPCs served}`` since the last reset, for the backends that served."""
        return {name: s["rpcs"] for name, s in self.backends().items() if s["rpcs"]}

    def backend(self, name: str) -> Backend:
        if name not in self.backend_addresses:
            raise KeyError(f"no rig backend named {name!r} (have {sorted(self.backend_addresses)})")
        return Backend(self, name)

    def reset_counts(self) -> None:
        """Zero every backend's RPC counts and max in-flight."""
        self._call("POST", "/reset-counts")

    def reset(self) -> None:
        """Back to as started: every backend serving (health SERVING), counts and events at
        zero, the ADS listener up, no snapshot (the version counter keeps counting).
        Streams still open lose their watches: close the channels of a test before it ends."""
        self._call("POST", "/reset")

    def ads_stop(self) -> None:
        """Close the ADS listener and every ADS stream at once (as if the server died)."""
        self._call("POST", "/ads/stop")

    def ads_start(self) -> None:
        """Listen for ADS again on the same port, with the same snapshots."""
        self._call("POST", "/ads/start")

    # -- bootstrap ---------------------------------------------------------------------------

    def bootstrap(
        self,
        *,
        node_id: str | None = None,
        locality: Mapping[str, str] | None = None,
        server_uri: str | None = None,
        server_features: Iterable[str] = ("xds_v3",),
    ) -> dict[str, Any]:
        """The bootstrap (gRFC A27 format) pointing at this rig's ADS server."""
        return {
            "xds_servers": [
                {
                    "server_uri": server_uri or self.ads_address,
                    "channel_creds": [{"type": "insecure"}],
                    "server_features": list(server_features),
                }
            ],
            "node": {
                "id": node_id or self.node_id,
                "locality": dict(locality or {"region": "r", "zone": "z", "sub_zone": "s"}),
            },
        }

    def bootstrap_json(self, **kwargs: Any) -> str:
        """``bootstrap(**kwargs)`` as JSON text (for GRPC_XDS_BOOTSTRAP_CONFIG)."""
        return json.dumps(self.bootstrap(**kwargs))

    # -- grpc-go's own xDS client ------------------------------------------------------------

    def start_client(
        self,
        target: str,
        n: int,
        *,
        method: str = "unary",
        metadata: Mapping[str, str] | None = None,
        rpc_timeout: float = 5.0,
        interval: float = 0.0,
        wait_for_ready: str = "first",
        bootstrap: Mapping[str, Any] | None = None,
    ) -> ClientRun:
        """Start grpc-go's xDS client (``xdsrig client``) on a fresh channel to ``target``:
        ``n`` RPCs one after another, ``interval`` seconds apart, each with ``metadata`` and
        a ``rpc_timeout`` deadline; ``wait_for_ready``: which RPCs are wait-for-ready
        (``"first"``, ``"all"`` or ``"none"``). It runs in
        the background; ``ClientRun.wait()`` gives its result, ``stop()`` ends it."""
        fd, path = tempfile.mkstemp(suffix=".json", prefix="xds-bootstrap-")
        with os.fdopen(fd, "w") as f:
            json.dump(dict(bootstrap) if bootstrap is not None else self.bootstrap(), f)
        argv = [
            str(BINARY),
            "client",
            f"--target={target}",
            f"-n={n}",
            f"--method={method}",
            f"--timeout={rpc_timeout}s",
            f"--interval={interval}s",
            f"--wait-for-ready={wait_for_ready}",
            f"--bootstrap={path}",
        ]
        for key, value in (metadata or {}).items():
            argv.append(f"--metadata={key}={value}")
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        return ClientRun(process, Path(path))

    def run_client(
        self, target: str, n: int, *, timeout: float = 60.0, **kwargs: Any
    ) -> dict[str, Any]:
        """``start_client(target, n, **kwargs).wait(timeout)``."""
        run = self.start_client(target, n, **kwargs)
        try:
            return run.wait(timeout)
        finally:
            run.stop()

    # -- lifetime ----------------------------------------------------------------------------

    def output(self) -> str:
        """The rig's log (stderr)."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """End the rig: close its stdin (it exits on EOF), then SIGTERM, then SIGKILL."""
        if self._stdin is not None:
            try:
                self._stdin.close()
            except OSError:
                pass
            self._stdin = None
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class ClientRun:
    """A running ``xdsrig client``; ``wait()`` returns ``{"counts": {server_id: n}, "errors":
    {"Code: message": n}, "first_rpc_ms": float (-1 when no RPC succeeded)}``."""

    process: subprocess.Popen[bytes]
    bootstrap_file: Path

    def wait(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for the client to finish (ending it and raising RigError past ``timeout``)."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RigError(f"xdsrig client did not finish within {timeout} s") from None
        finally:
            self.bootstrap_file.unlink(missing_ok=True)
        if self.process.returncode != 0:
            stderr = err.decode(errors="replace")[-3000:]
            raise RigError(f"xdsrig client exited {self.process.returncode}: {stderr}")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    def stop(self) -> None:
        """End the client if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)
        self.bootstrap_file.unlink(missing_ok=True)


def start(
    *,
    backends: int = 8,
    ads: bool = True,
    backend_hosts: Sequence[str] = ("127.0.0.1",),
    node_id: str = NODE_ID,
    timeout: float = 30.0,
) -> XdsRig:
    """Build (if needed) and start a rig with ``backends`` backends b0..b{n-1} listening on
    ``backend_hosts`` in turn (loopback IPs); wait for its announcement line."""
    build()
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    log = BUILD_DIR / f"{NAME}-{os.getpid()}-{time.monotonic_ns()}.log"
    argv = [
        str(BINARY),
        f"--backends={backends}",
        f"--backend-hosts={','.join(backend_hosts)}",
        f"--ads={'true' if ads else 'false'}",
        f"--node-id={node_id}",
    ]
    with open(log, "wb") as err:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    assert process.stdout is not None
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                break
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            line += chunk
    if not line.endswith(b"\n"):
        process.kill()
        process.wait(timeout=10)
        process.stdout.close()
        if process.stdin is not None:
            process.stdin.close()
        raise PeerError(
            f"{NAME} did not announce itself within {timeout} s"
            f" (exit {process.returncode}):\n{log.read_text(errors='replace')[-4000:]}"
        )
    announced = json.loads(line)
    return XdsRig(
        process=process,
        ads_address=announced["ads"],
        control_address=announced["control"],
        backend_addresses=dict(announced["backends"]),
        node_id=announced["node_id"],
        ads_mode=bool(announced["ads_mode"]),
        log=log,
        _stdin=process.stdin,
    )


def locality(
    backends: Sequence[str],
    *,
    sub_zone: str = "s",
    weight: int = 1,
    priority: int = 0,
    region: str = "r",
    zone: str = "z",
    health: str | None = None,
) -> dict[str, Any]:
    """One ``localities`` entry of a scenario's endpoints: rig ``backends`` by name."""
    entry: dict[str, Any] = {
        "region": region,
        "zone": zone,
        "sub_zone": sub_zone,
        "weight": weight,
        "priority": priority,
        "backends": list(backends),
    }
    if health is not None:
        entry["health"] = health
    return entry


def simple_scenario(
    service: str = "svc",
    backends: Sequence[str] = ("b0", "b1", "b2", "b3"),
    *,
    localities: Sequence[Mapping[str, Any]] | None = None,
    drop_overloads: Sequence[Mapping[str, Any]] = (),
    inline_route: bool = False,
    lb_policy: str = "ROUND_ROBIN",
) -> dict[str, Any]:
    """LDS ``service`` -> RDS ``route-<service>`` (or inline) -> CDS ``cluster-<service>``
    -> EDS ``eds-<service>`` with ``localities`` (default: one, ``locality(backends)``) and
    ``drop_overloads`` (``[{"category": "lb", "ppm": 250000}]``)."""
    route = {
        "name": f"route-{service}",
        "virtual_hosts": [
            {"domains": ["*"], "routes": [{"prefix": "", "cluster": f"cluster-{service}"}]}
        ],
    }
    listener: dict[str, Any] = {"name": service}
    if inline_route:
        listener["inline_route"] = route
    else:
        listener["route_config_name"] = route["name"]
    endpoints: dict[str, Any] = {
        "cluster_name": f"eds-{service}",
        "localities": [dict(x) for x in localities]
        if localities is not None
        else [locality(backends)],
    }
    if drop_overloads:
        endpoints["drop_overloads"] = [dict(d) for d in drop_overloads]
    return {
        "listeners": [listener],
        "routes": [] if inline_route else [route],
        "clusters": [
            {
                "name": f"cluster-{service}",
                "eds_service_name": f"eds-{service}",
                "lb_policy": lb_policy,
            }
        ],
        "endpoints": [endpoints],
    }

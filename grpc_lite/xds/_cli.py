"""``grpc-lite xds``: check an xDS bootstrap and its management server; dump a channel's view.

    grpc-lite xds check [--bootstrap FILE] [--listener NAME] [--timeout 15s]
    grpc-lite xds dump xds:///NAME [--bootstrap FILE] [--timeout 10s]

``check`` loads the bootstrap the way a channel does (``GRPC_XDS_BOOTSTRAP``, else
``GRPC_XDS_BOOTSTRAP_CONFIG``; ``--bootstrap FILE`` instead of both), prints what it says,
then tries the management server: with ``--listener`` it subscribes to that listener on a
real ADS stream and reports the listener, its NACK reason, that it does not exist, or the
exact connection error; without it, it connects to ``server_uri`` with the bootstrap's
channel credentials. Exit status: 0 all good, 1 bad bootstrap or arguments, 2 the server
or the listener is the problem.

``dump`` opens a channel to an ``xds:///`` target, waits until its resolver has a config
(or failed, or ``--timeout``), and prints the CSDS-like JSON view: the resolver's
``debug_info()`` (the XdsClient's resources with version and status, what the channel
watches), the LB tree and the subchannels with their locality and priority. Exit status 0
when the config is good, 2 when it is failing or did not arrive, 1 on bad input.

This module must not import the ``grpc_lite`` package itself (``grpc_lite/__init__.py``
imports ``grpc_lite.xds`` to register the scheme): it uses the channel module directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from grpc_lite._channel import Channel
from grpc_lite._clock import LoopClock
from grpc_lite._connectivity import ConnectivityState
from grpc_lite._credentials import ssl_channel_credentials

__all__ = ["main"]

EXIT_OK, EXIT_BAD_INPUT, EXIT_SERVER = 0, 1, 2


class _Failure(Exception):
    """A user-facing failure: one line on stderr and an exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _duration(text: str) -> float:
    """``"1s"``, ``"500ms"``, ``"2m"`` or a plain number of seconds."""
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for suffix in ("ms", "s", "m"):
        if text.endswith(suffix):
            number, factor = text[: -len(suffix)], scale[suffix]
            break
    else:
        number, factor = text, 1.0
    try:
        value = float(number) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (try 5s, 500ms)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return value


def _environ(bootstrap_file: str | None) -> Mapping[str, str]:
    if bootstrap_file is None:
        return os.environ
    from grpc_lite.xds._bootstrap import BOOTSTRAP_ENV

    return {BOOTSTRAP_ENV: bootstrap_file}


def _load(bootstrap_file: str | None) -> Any:
    from grpc_lite.xds._bootstrap import BootstrapError, load_bootstrap

    try:
        return load_bootstrap({}, _environ(bootstrap_file))
    except BootstrapError as exc:
        raise _Failure(f"bootstrap: {exc}", EXIT_BAD_INPUT) from None


def _summary(bootstrap: Any) -> list[str]:
    node = bootstrap.node
    locality = node.locality
    where = "/".join(p for p in (locality.region, locality.zone, locality.sub_zone) if p)
    return [
        f"bootstrap: {bootstrap.source or 'given'}: ok",
        f"  server:    {bootstrap.server_uri} ({bootstrap.channel_creds})",
        f"  features:  {', '.join(bootstrap.server_features) or '-'}"
        + ("  (A53: resource deletions ignored)" if bootstrap.ignore_resource_deletion else ""),
        f"  node:      id={node.id!r} cluster={node.cluster!r} locality={where or '-'}",
        "  listener names: "
        + repr(bootstrap.client_default_listener_resource_name_template)
        + " (%s = the target's name)",
    ]


# ---------------------------------------------------------------------------- check


class _ListenerProbe:
    """An XdsWatcher that resolves a future on the first event."""

    def __init__(self) -> None:
        self.result: asyncio.Future[tuple[str, object]] = asyncio.get_running_loop().create_future()

    def _set(self, kind: str, value: object) -> None:
        if not self.result.done():
            self.result.set_result((kind, value))

    def on_resource(self, type_url: str, name: str, resource: object) -> None:
        self._set("resource", resource)

    def on_does_not_exist(self, type_url: str, name: str) -> None:
        self._set("does_not_exist", None)

    def on_error(self, type_url: str, name: str, error: str) -> None:
        self._set("error", error)


async def _check_listener(bootstrap: Any, name: str, wait_s: float) -> int:
    from grpc_lite.xds._client import acquire
    from grpc_lite.xds._resources import LISTENER

    client = acquire(bootstrap, resource_timeout=wait_s)
    probe = _ListenerProbe()
    try:
        cancel = client.watch(LISTENER, name, probe)  # starts the ADS channel
    except ValueError as exc:
        client.release()
        raise _Failure(
            f"bootstrap server_uri {bootstrap.server_uri!r}: {exc}", EXIT_BAD_INPUT
        ) from None
    try:
        try:
            kind, value = await asyncio.wait_for(probe.result, wait_s + 5.0)
        except TimeoutError:
            raise _Failure(
                f"server {bootstrap.server_uri}: no answer for listener {name!r} within "
                f"{wait_s + 5.0:g}s (stream {client.debug_info().get('stream_state')})",
                EXIT_SERVER,
            ) from None
        if kind == "error":
            raise _Failure(f"listener {name!r}: {value}", EXIT_SERVER)
        if kind == "does_not_exist":
            raise _Failure(
                f"server {bootstrap.server_uri}: the xDS listener resource {name!r} does not "
                f"exist (no answer within the {wait_s:g}s does-not-exist timer, gRFC A57)",
                EXIT_SERVER,
            )
        rds = getattr(value, "route_config_name", None)
        routes = f"RDS {rds!r}" if rds else "an inline route configuration"
        version = next(
            (
                r.get("version")
                for r in client.debug_info().get("resources", ())
                if r.get("type") == "LDS" and r.get("name") == name
            ),
            None,
        )
        print(f"server: {bootstrap.server_uri}: ADS stream ok")
        print(f"  listener {name!r}: ACKED (version {version!r}), routes from {routes}")
        return EXIT_OK
    finally:
        cancel()
        client.release()
        await client.wait_closed()


async def _check_connection(bootstrap: Any, wait_s: float) -> int:
    credentials = None
    if bootstrap.channel_creds == "tls":
        tls = bootstrap.tls
        credentials = ssl_channel_credentials(
            tls.root_certificates if tls else None,
            tls.private_key if tls else None,
            tls.certificate_chain if tls else None,
        )
    try:
        channel = Channel(bootstrap.server_uri, credentials=credentials)
    except ValueError as exc:
        raise _Failure(
            f"bootstrap server_uri {bootstrap.server_uri!r}: {exc}", EXIT_BAD_INPUT
        ) from None
    try:
        state = channel.get_state(try_to_connect=True)
        deadline = LoopClock().now() + wait_s
        while state is not ConnectivityState.READY:
            if state is ConnectivityState.TRANSIENT_FAILURE:
                snap = channel.snapshot()
                errors = [sc.last_error for sc in snap.subchannels if sc.last_error]
                reason = snap.resolver_error or (errors[0] if errors else "no error recorded")
                raise _Failure(f"server {bootstrap.server_uri}: {reason}", EXIT_SERVER)
            left = deadline - LoopClock().now()
            if left <= 0:
                raise _Failure(
                    f"server {bootstrap.server_uri}: not connected within {wait_s:g}s "
                    f"(channel {state.name})",
                    EXIT_SERVER,
                )
            try:
                await asyncio.wait_for(channel.wait_for_state_change(state), left)
            except TimeoutError:
                pass
            state = channel.get_state()
        print(f"server: {bootstrap.server_uri}: connected (give --listener NAME to subscribe)")
        return EXIT_OK
    finally:
        await channel.close()


async def _check(args: argparse.Namespace) -> int:
    bootstrap = _load(args.bootstrap)
    for line in _summary(bootstrap):
        print(line)
    sys.stdout.flush()
    if args.listener is not None:
        return await _check_listener(bootstrap, args.listener, args.timeout)
    return await _check_connection(bootstrap, args.timeout)


# ---------------------------------------------------------------------------- dump


def _has_config(snap: Any) -> bool:
    info = snap.resolver
    if snap.resolver_error:
        return True
    if not isinstance(info, dict):
        return False
    status = str(info.get("status", ""))
    if status.startswith("failing"):
        return True
    return status == "ok" and snap.state in (
        ConnectivityState.READY,
        ConnectivityState.TRANSIENT_FAILURE,
    )


async def _dump(args: argparse.Namespace) -> int:
    if not args.target.startswith("xds:"):
        raise _Failure(
            f"dump needs an xds: target (xds:///NAME), got {args.target!r}", EXIT_BAD_INPUT
        )
    _load(args.bootstrap)  # a bad bootstrap is bad input, said before any channel exists
    if args.bootstrap is not None:
        # The channel's resolver reads the same variable, so errors name the file.
        from grpc_lite.xds._bootstrap import BOOTSTRAP_CONFIG_ENV, BOOTSTRAP_ENV

        os.environ[BOOTSTRAP_ENV] = args.bootstrap
        os.environ.pop(BOOTSTRAP_CONFIG_ENV, None)
    try:
        channel = Channel(args.target)
    except ValueError as exc:
        raise _Failure(str(exc), EXIT_BAD_INPUT) from None
    started = time.monotonic()
    try:
        state = channel.get_state(try_to_connect=True)
        snap = channel.snapshot()
        while not _has_config(snap):
            left = args.timeout - (time.monotonic() - started)
            if left <= 0:
                break
            try:
                await asyncio.wait_for(channel.wait_for_state_change(state), min(left, 0.1))
            except TimeoutError:
                pass
            state = channel.get_state()
            snap = channel.snapshot()
    finally:
        await channel.close()
    view = {k: v for k, v in snap.to_dict().items() if k != "events"}
    view["waited_s"] = round(time.monotonic() - started, 3)
    print(json.dumps(view, indent=2, default=str))
    info = snap.resolver if isinstance(snap.resolver, dict) else {}
    if info.get("status") == "ok":
        return EXIT_OK
    reason = snap.resolver_error or info.get("status") or "no config"
    if not _has_config(snap):
        reason = f"no xDS config within {args.timeout:g}s ({reason})"
    print(f"grpc-lite xds dump: {reason}", file=sys.stderr)
    return EXIT_SERVER


# ---------------------------------------------------------------------------- main


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with status 1 (bad input), leaving 2 to server problems."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="grpc-lite xds",
        description="xDS (xds:/// targets): check a bootstrap and its management server, or "
        "dump what a channel got from it.",
    )
    sub = parser.add_subparsers(dest="xds_command", required=True)
    check = sub.add_parser(
        "check",
        help="validate the bootstrap and try the management server",
        description="Load the xDS bootstrap (GRPC_XDS_BOOTSTRAP, GRPC_XDS_BOOTSTRAP_CONFIG, "
        "or --bootstrap FILE), print it, then try the server: subscribe to --listener on an "
        "ADS stream, or just connect. Exit 0 ok, 1 bad bootstrap, 2 server/listener problem.",
        epilog="example: GRPC_XDS_BOOTSTRAP=/etc/xds.json grpc-lite xds check --listener svc",
    )
    check.add_argument("--bootstrap", metavar="FILE", help="bootstrap file (instead of the env)")
    check.add_argument("--listener", metavar="NAME", help="listener resource to subscribe to")
    check.add_argument(
        "--timeout", type=_duration, default=15.0, help="does-not-exist timer (default 15s)"
    )
    check.set_defaults(run=_check)
    dump = sub.add_parser(
        "dump",
        help="print a channel's xDS config, LB tree and subchannels as JSON",
        description="Open a channel to TARGET (xds:///NAME), wait until its resolver has a "
        "config (or --timeout), and print the CSDS-like view as JSON.",
        epilog="example: grpc-lite xds dump xds:///svc --timeout 5s",
    )
    dump.add_argument("target")
    dump.add_argument("--bootstrap", metavar="FILE", help="bootstrap file (instead of the env)")
    dump.add_argument("--timeout", type=_duration, default=10.0, help="default 10s")
    dump.set_defaults(run=_dump)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``grpc-lite xds ARGS``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.run(args))
    except _Failure as exc:
        print(f"grpc-lite xds {args.xds_command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return code

"""Channel and call credentials with grpcio's names (L1).

Channel credentials: TLS (``ssl_channel_credentials``), local (``local_channel_credentials``:
plaintext to a loopback address or a Unix socket), and either of them composed with call
credentials (``composite_channel_credentials``).

Call credentials add metadata to every call attempt, as C-core's client auth filter does
(it runs on the subchannel call, once per attempt).  A plugin is one of:

- grpcio's ``plugin(context, callback)``; ``callback(metadata, error)``.  It runs on the
  event loop's default executor (a thread), so a blocking token refresh never stalls the
  loop; the callback may be called from any thread, once.
- ``async def plugin(context) -> metadata`` (grpc_lite only), awaited on the channel's loop;
  cancelled when the call ends first (its deadline, a cancel).
- a fixed header (``access_token_call_credentials``): no thread, no task.

``context`` is an :class:`AuthMetadataContext`: ``service_url`` and ``method_name``, computed
as C-core does (``{url_scheme}://{authority}{/package.Service}``, port 443 dropped over TLS).

Nothing here prints a credential: every ``repr`` names only the plugin.
"""

import asyncio
import contextvars
import enum
import inspect
import ipaddress
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .metadata import Metadata, encode_outgoing

# grpcio's wording, so an application matching on it keeps working.
PLUGIN_FAILED = "Getting metadata from plugin failed with error: "
INSECURE_CALL_CREDENTIALS = "Call credentials are only valid on secure channels"


class LocalConnectionType(enum.Enum):
    """What ``local_channel_credentials`` accepts (grpc.LocalConnectionType).

    ``LOCAL_TCP``: TCP to a loopback address (127.0.0.0/8, ::1, ``localhost``).
    ``UDS``: a Unix domain socket (``unix:``, ``unix-abstract:``).
    """

    UDS = "uds"
    LOCAL_TCP = "local_tcp"


class AuthMetadataContext(NamedTuple):
    """What a plugin learns about the call (grpc.AuthMetadataContext)."""

    service_url: str
    method_name: str


def auth_context(url_scheme: str, authority: str, path: str) -> AuthMetadataContext:
    """C-core's ``MakeServiceUrlAndMethod``: the service is the path up to its last "/",
    the method what follows; over TLS a ``:443`` port is dropped from the authority."""
    last = path.rfind("/")
    if last < 0:
        service, method = "", ""
    elif last == 0:
        service, method = path, ""  # "/Foo": no service part, C-core keeps it all
    else:
        service, method = path[:last], path[last + 1 :]
    if url_scheme == "https":
        host, colon, port = authority.rpartition(":")
        if colon and port == "443":
            authority = host
    return AuthMetadataContext(f"{url_scheme}://{authority}{service}", method)


class PluginError(Exception):
    """A plugin failed; ``str()`` is its message (the call ends UNAVAILABLE with it)."""


class _Plugin:
    """One source of call metadata: ``kind`` is "static", "sync" or "async"."""

    __slots__ = ("fn", "kind", "name", "pairs")

    def __init__(
        self,
        kind: str,
        name: str,
        fn: Callable[..., Any] | None = None,
        pairs: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.kind = kind
        self.name = name
        self.fn = fn
        self.pairs = pairs  # "static": the header pairs, already validated

    def __repr__(self) -> str:
        return f"<{self.kind} metadata plugin {self.name!r}>"


class CallCredentials:
    """Call credentials: metadata plugins run for every call attempt, in order.

    Build with :func:`metadata_call_credentials`, :func:`access_token_call_credentials` or
    :func:`composite_call_credentials`; pass as ``credentials=`` to a call, or compose into
    channel credentials with :func:`composite_channel_credentials`.
    """

    __slots__ = ("_encoded", "_plugins", "_static")

    def __init__(self, plugins: tuple[_Plugin, ...]) -> None:
        self._plugins = plugins
        # Every plugin static: the header pairs, so a call needs no task at all.
        self._static: tuple[tuple[str, str], ...] | None = (
            tuple(pair for p in plugins for pair in p.pairs)
            if all(p.kind == "static" for p in plugins)
            else None
        )
        self._encoded: Any = None  # the call layer's cache of the encoded static block

    def __add__(self, other: "CallCredentials") -> "CallCredentials":
        return CallCredentials(self._plugins + other._plugins)

    def __repr__(self) -> str:
        names = ", ".join(repr(p.name) for p in self._plugins)
        return f"<CallCredentials {names}>"


class ChannelCredentials:
    """Channel credentials: a verifying ``ssl.SSLContext`` with ALPN ``h2`` (RFC 9113 §3.2),
    or local (no TLS), plus the call credentials composed into them.

    Never printed with its key material: ``repr`` names only what is configured.
    """

    __slots__ = ("_call_credentials", "_context", "_has_client_cert", "_has_root", "_local")

    def __init__(
        self,
        context: ssl.SSLContext | None,
        *,
        has_root: bool,
        has_client_cert: bool,
        local: LocalConnectionType | None = None,
        call_credentials: CallCredentials | None = None,
    ) -> None:
        if (context is None) == (local is None):
            raise ValueError("channel credentials are either TLS or local")
        self._context = context
        self._has_root = has_root
        self._has_client_cert = has_client_cert
        self._local = local
        self._call_credentials = call_credentials

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context (ValueError for local credentials, which have none)."""
        if self._context is None:
            raise ValueError("local channel credentials have no TLS context")
        return self._context

    @property
    def local(self) -> LocalConnectionType | None:
        return self._local

    @property
    def call_credentials(self) -> CallCredentials | None:
        return self._call_credentials

    def __repr__(self) -> str:
        if self._local is not None:
            what = f"local ({self._local.name})"
        else:
            roots = "custom roots" if self._has_root else "system roots"
            client = ", client certificate" if self._has_client_cert else ""
            what = f"TLS ({roots}{client})"
        if self._call_credentials is not None:
            what += f" + {self._call_credentials!r}"
        return f"<ChannelCredentials {what}>"


def prepare_context(context: ssl.SSLContext) -> ssl.SSLContext:
    """Offer ALPN h2 on a user-supplied context (grpc.aio does the same)."""
    context.set_alpn_protocols(["h2"])
    return context


def ssl_channel_credentials(
    root_certificates: bytes | None = None,
    private_key: bytes | None = None,
    certificate_chain: bytes | None = None,
) -> ChannelCredentials:
    """A verifying TLS context: server certificate and host name are checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if root_certificates is not None:
        try:
            context.load_verify_locations(cadata=root_certificates.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"invalid root_certificates: {exc}") from None
    if (private_key is None) != (certificate_chain is None):
        raise ValueError("private_key and certificate_chain must be given together")
    if private_key is not None and certificate_chain is not None:
        _load_client_cert(context, private_key, certificate_chain)
    context.set_alpn_protocols(["h2"])
    return ChannelCredentials(
        context, has_root=root_certificates is not None, has_client_cert=private_key is not None
    )


def local_channel_credentials(
    local_connect_type: LocalConnectionType = LocalConnectionType.LOCAL_TCP,
) -> ChannelCredentials:
    """Plaintext to a local peer, with call credentials allowed (grpc.local_channel_credentials).

    As in grpcio, ``LOCAL_TCP`` (the default) connects only to loopback TCP addresses and
    ``UDS`` only to Unix sockets; any other address fails to connect (UNAVAILABLE) and
    nothing is sent to it.
    """
    if not isinstance(local_connect_type, LocalConnectionType):
        raise ValueError(
            f"local_connect_type must be a grpc_lite.LocalConnectionType, "
            f"not {local_connect_type!r}"
        )
    return ChannelCredentials(None, has_root=False, has_client_cert=False, local=local_connect_type)


def local_address_error(kind: LocalConnectionType, address: str) -> str | None:
    """Why ``address`` (a resolved ``host:port``, ``[v6]:port``, ``unix:...``) is no peer for
    local credentials of ``kind``; None when it is one (C-core's local_check_peer)."""
    if address.startswith(("unix:", "unix-abstract:")):
        if kind is LocalConnectionType.UDS:
            return None
    elif kind is LocalConnectionType.LOCAL_TCP:
        host = address.rpartition(":")[0].strip("[]")
        if host == "localhost":
            return None
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if ip.is_loopback:
                return None
    want = "a loopback TCP address" if kind is LocalConnectionType.LOCAL_TCP else "a Unix socket"
    return f"local channel credentials ({kind.name}) connect only to {want}, not {address}"


def composite_channel_credentials(
    channel_credentials: ChannelCredentials, *call_credentials: CallCredentials
) -> ChannelCredentials:
    """Channel credentials whose calls all carry ``call_credentials`` (in order)."""
    if not isinstance(channel_credentials, ChannelCredentials):
        raise TypeError(
            f"channel_credentials must be grpc_lite.ChannelCredentials, "
            f"not {type(channel_credentials).__name__}"
        )
    combined = channel_credentials.call_credentials
    for creds in call_credentials:
        _check_call_credentials(creds)
        combined = creds if combined is None else combined + creds
    return ChannelCredentials(
        channel_credentials._context,
        has_root=channel_credentials._has_root,
        has_client_cert=channel_credentials._has_client_cert,
        local=channel_credentials._local,
        call_credentials=combined,
    )


def composite_call_credentials(*call_credentials: CallCredentials) -> CallCredentials:
    """One CallCredentials running each of ``call_credentials`` in order."""
    plugins: tuple[_Plugin, ...] = ()
    for creds in call_credentials:
        _check_call_credentials(creds)
        plugins += creds._plugins
    return CallCredentials(plugins)


def _check_call_credentials(creds: object) -> None:
    if not isinstance(creds, CallCredentials):
        raise TypeError(
            "call credentials must be grpc_lite.CallCredentials (from "
            "metadata_call_credentials, access_token_call_credentials or "
            f"composite_call_credentials), not {type(creds).__name__}"
        )


def access_token_call_credentials(access_token: str) -> CallCredentials:
    """``authorization: Bearer ACCESS_TOKEN`` on every call."""
    if not isinstance(access_token, str):
        raise TypeError(f"access_token must be a str, not {type(access_token).__name__}")
    value = f"Bearer {access_token}"
    if not (value.isascii() and value.isprintable()):
        raise ValueError("access_token must be printable ASCII")  # never echo the token
    return CallCredentials(
        (_Plugin("static", "AccessTokenAuthMetadataPlugin", pairs=(("authorization", value),)),)
    )


def metadata_call_credentials(
    metadata_plugin: Callable[..., Any], name: str | None = None
) -> CallCredentials:
    """Call credentials from a plugin (grpc.metadata_call_credentials).

    ``metadata_plugin(context, callback)`` is grpcio's AuthMetadataPlugin: it runs on the
    loop's default executor and calls ``callback(metadata, error)`` once (``error`` not None
    fails the call UNAVAILABLE with its text; so does an exception).  An ``async def
    metadata_plugin(context)`` returning the metadata runs on the channel's loop instead.
    """
    if not callable(metadata_plugin):
        raise TypeError(f"metadata_plugin must be callable, not {type(metadata_plugin).__name__}")
    if name is None:
        name = getattr(metadata_plugin, "__name__", None) or type(metadata_plugin).__name__
    is_async = inspect.iscoroutinefunction(metadata_plugin) or inspect.iscoroutinefunction(
        type(metadata_plugin).__call__
    )
    return CallCredentials((_Plugin("async" if is_async else "sync", name, fn=metadata_plugin),))


# ---------------------------------------------------------------------- running plugins


async def fetch_metadata(
    creds: CallCredentials, context: AuthMetadataContext
) -> list[tuple[str, str]]:
    """Run every plugin in order; the header pairs they produced, validated.

    Raises :class:`PluginError` when a plugin fails or returns invalid metadata.
    """
    out: list[tuple[str, str]] = []
    for plugin in creds._plugins:
        if plugin.kind == "static":
            out.extend(plugin.pairs)
            continue
        if plugin.kind == "async":
            assert plugin.fn is not None
            try:
                metadata = await plugin.fn(context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise PluginError(str(exc)) from None
        else:
            metadata = await _run_sync(plugin, context)
        out.extend(_validated(plugin, metadata))
    return out


def _validated(plugin: _Plugin, metadata: Any) -> list[tuple[str, str]]:
    if metadata is None:
        return []
    if isinstance(metadata, Metadata):
        items: Sequence[Any] = list(metadata)
    elif isinstance(metadata, (str, bytes)) or not isinstance(metadata, Sequence):
        raise PluginError(
            f"plugin {plugin.name!r} returned {type(metadata).__name__}, not metadata"
        )
    else:
        items = metadata
    for item in items:
        # Checked here so that no message below can quote a value.
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            raise PluginError(
                f"plugin {plugin.name!r} returned an item that is not a (key, value) pair"
            )
    try:
        return encode_outgoing([(k, v) for k, v in items])
    except ValueError as exc:
        raise PluginError(f"plugin {plugin.name!r} returned invalid metadata: {exc}") from None


def _run_sync(plugin: _Plugin, context: AuthMetadataContext) -> "asyncio.Future[Any]":
    """Run a grpcio-style plugin on the default executor; a future for its metadata."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[Any] = loop.create_future()
    lock = threading.Lock()
    called = False

    def settle(metadata: Any, error: Any) -> None:
        if result.done():  # the call ended meanwhile
            return
        if error is not None:
            result.set_exception(PluginError(str(error)))
        else:
            result.set_result(metadata)

    def deliver(metadata: Any, error: Any) -> None:
        try:
            loop.call_soon_threadsafe(settle, metadata, error)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    def callback(metadata: Any, error: Any) -> None:
        nonlocal called
        with lock:
            if called:
                raise RuntimeError("AuthMetadataPluginCallback invoked more than once!")
            called = True
        deliver(metadata, error)

    def run() -> None:
        nonlocal called
        assert plugin.fn is not None
        try:
            plugin.fn(context, callback)
        except Exception as exc:
            with lock:
                if called:
                    return  # grpcio too ignores an exception after the callback
                called = True
            deliver(None, exc)

    # The caller's contextvars reach the plugin, as grpcio arranges for its threads.
    try:
        loop.run_in_executor(None, contextvars.copy_context().run, run)
    except RuntimeError as exc:  # the default executor is shut down (the loop is ending)
        raise PluginError(f"cannot run plugin {plugin.name!r}: {exc}") from None
    return result


def _load_client_cert(context: ssl.SSLContext, key: bytes, chain: bytes) -> None:
    # ssl can only load a certificate chain from files: use private temp files.
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="grpc_lite_") as tmp:
        os.chmod(tmp, 0o700)
        cert_path = os.path.join(tmp, "chain.pem")
        key_path = os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(chain)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise ValueError(f"invalid client certificate or key: {exc.reason or exc}") from None

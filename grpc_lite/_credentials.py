"""TLS channel credentials (grpcio's ``ssl_channel_credentials``)."""

import ssl


class ChannelCredentials:
    """Holds a verifying ``ssl.SSLContext`` with ALPN ``h2`` (CONFORMANCE 18).

    Never printed with its key material: ``repr`` names only what is configured.
    """

    __slots__ = ("_context", "_has_client_cert", "_has_root")

    def __init__(self, context: ssl.SSLContext, *, has_root: bool, has_client_cert: bool) -> None:
        self._context = context
        self._has_root = has_root
        self._has_client_cert = has_client_cert

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._context

    def __repr__(self) -> str:
        roots = "custom roots" if self._has_root else "system roots"
        client = ", client certificate" if self._has_client_cert else ""
        return f"<ChannelCredentials TLS ({roots}{client})>"


def prepare_context(context: ssl.SSLContext) -> ssl.SSLContext:
    """Offer ALPN h2 on a user-supplied context (API.md "TLS")."""
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
